/* test_crc32c.c: fm_crc32c (SSE4.2 when the CPU has it) must equal the
 * table-driven fm_crc32c_soft for every length, alignment and split. */
#include "fm_test.h"
#include "fm_util.h"

#include <stdint.h>

static unsigned char buf[1 << 20];

static void fill(void) {
  uint64_t x = 0x9E3779B97F4A7C15ull; /* xorshift: fixed, reproducible */
  for (size_t i = 0; i < sizeof buf; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    buf[i] = (unsigned char)(x >> 32);
  }
}

static void test_known(void) {
  CHECK(fm_crc32c(0, "123456789", 9) == 0xE3069283u);
  CHECK(fm_crc32c_soft(0, "123456789", 9) == 0xE3069283u);
  CHECK(fm_crc32c(0, NULL, 0) == 0);
  /* RFC 3720 B.4: 32 bytes of zeros, of 0xff */
  unsigned char z[32];
  memset(z, 0, sizeof z);
  CHECK(fm_crc32c(0, z, 32) == 0x8A9136AAu);
  memset(z, 0xff, sizeof z);
  CHECK(fm_crc32c(0, z, 32) == 0x62A8AB43u);
}

static void test_equal_to_table(void) {
  int bad = 0;
  for (size_t off = 0; off < 16; off++)
    for (size_t n = 0; n < 300; n++) {
      if (fm_crc32c(0, buf + off, n) != fm_crc32c_soft(0, buf + off, n)) bad++;
      /* continuing a running CRC, with a seed from a previous chunk */
      uint32_t seed = fm_crc32c_soft(0, buf + 5000, n % 17);
      if (fm_crc32c(seed, buf + off, n) != fm_crc32c_soft(seed, buf + off, n))
        bad++;
    }
  CHECK(bad == 0);
  uint32_t whole = fm_crc32c_soft(0, buf, sizeof buf);
  CHECK(fm_crc32c(0, buf, sizeof buf) == whole);
  /* split at odd places */
  uint32_t c = fm_crc32c(0, buf, 3);
  c = fm_crc32c(c, buf + 3, 1000);
  c = fm_crc32c(c, buf + 1003, sizeof buf - 1003);
  CHECK(c == whole);
}

/* The hardware version runs three streams over blocks of 3 x 8192 and
 * 3 x 256 bytes and joins them: lengths around those block sizes, at every
 * alignment, continuing from random seeds, against the table version. */
static void test_interleaved(void) {
  static const size_t lens[] = {767, 768, 769, 775, 776, 1535, 1536, 1537,
                                24575, 24576, 24577, 24583, 24576 + 768,
                                24576 + 767, 49152, 49152 + 1, 49152 + 769,
                                3 * 24576 + 3 * 768 + 13};
  int bad = 0;
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
    for (size_t off = 0; off < 9; off++) {
      uint32_t seed = off ? fm_crc32c_soft(0, buf + 7, off * 3) : 0;
      if (fm_crc32c(seed, buf + off, lens[i]) != fm_crc32c_soft(seed, buf + off, lens[i]))
        bad++;
    }
  /* random lengths, alignments and seeds (xorshift, fixed) */
  uint64_t x = 0x2545F4914F6CDD1Dull;
  for (int r = 0; r < 3000; r++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    size_t off = (size_t)(x % 64), n = (size_t)((x >> 8) % (r < 2000 ? 4096 : 200000));
    uint32_t seed = (uint32_t)(x >> 32);
    if (fm_crc32c(seed, buf + off, n) != fm_crc32c_soft(seed, buf + off, n)) bad++;
  }
  CHECK(bad == 0);
}

/* crc(A||B) from crc(A), crc(B) and len(B), at every split of a few
 * lengths (including empty A or B). */
static void test_combine(void) {
  static const size_t lens[] = {0, 1, 7, 64, 1000, 24577};
  int bad = 0;
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
    size_t n = lens[i];
    uint32_t whole = fm_crc32c_soft(0, buf, n);
    for (size_t cut = 0; cut <= n; cut += n > 100 ? 97 : 1) {
      uint32_t a = fm_crc32c_soft(0, buf, cut), b = fm_crc32c_soft(0, buf + cut, n - cut);
      if (fm_crc32c_combine(a, b, n - cut) != whole) bad++;
    }
    if (fm_crc32c_combine(whole, 0, 0) != whole) bad++;
  }
  CHECK(bad == 0);
}

static void test_speed(void) {
  double best_hw = 1e9, best_sw = 1e9;
  uint32_t a = 0, b = 0;
  for (int r = 0; r < 20; r++) {
    double t0 = fm_now();
    a ^= fm_crc32c(0, buf, sizeof buf);
    double t1 = fm_now();
    b ^= fm_crc32c_soft(0, buf, sizeof buf);
    double t2 = fm_now();
    if (t1 - t0 < best_hw) best_hw = t1 - t0;
    if (t2 - t1 < best_sw) best_sw = t2 - t1;
  }
  CHECK(a == b);
  fprintf(stderr, "  fm_crc32c %.2f GB/s, fm_crc32c_soft %.2f GB/s\n",
          sizeof buf / best_hw / 1e9, sizeof buf / best_sw / 1e9);
}

int main(void) {
  fill();
  FM_RUN(test_known);
  FM_RUN(test_equal_to_table);
  FM_RUN(test_interleaved);
  FM_RUN(test_combine);
  FM_RUN(test_speed);
  FM_TEST_EXIT();
}
