/* test_mfile.c: the model file container: round trip, alignment,
 * determinism, lookups, argument errors, and every way a file can be
 * damaged (byte flips everywhere, truncation, wrong version, wrong path),
 * plus allocation fault injection over writing and opening. */
#include "fm_test.h"
#include "fm_test_util.h"
#include "fm_util.h"
#include "mfile.h"

#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>


/* The sections of the standard test file. */
#define BIG_FLOATS (1u << 20) /* 4 MB */
static float *big;
static const char META[] = "{\"k\":256,\"seed\":42}";
static const unsigned char ODD[13] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13};

static fm_rc build(fm_mfile_writer **out, int with_big, fm_error *e) {
  fm_mfile_writer *w;
  fm_rc rc = fm_mfile_writer_new(&w);
  if (rc) return fm_error_set(e, rc, "out of memory");
  if (!rc) rc = fm_mfile_add(w, "meta", META, sizeof META - 1, e);
  if (!rc) rc = fm_mfile_add(w, "empty", NULL, 0, e);
  if (!rc) rc = fm_mfile_add(w, "odd", ODD, sizeof ODD, e);
  if (!rc) rc = fm_mfile_begin(w, "vocab", e);
  static const char *words[] = {"bid", "ask", "last", "price", "volume"};
  for (int i = 0; i < 5 && !rc; i++)
    rc = fm_mfile_append(w, words[i], strlen(words[i]) + 1, e);
  if (!rc) rc = fm_mfile_end(w, e);
  if (!rc && with_big)
    rc = fm_mfile_add_ref(w, "big", big, (uint64_t)BIG_FLOATS * sizeof *big, e);
  if (!rc) rc = fm_mfile_add(w, "u32.tail", ODD, 8, e);
  if (rc) {
    fm_mfile_writer_free(w);
    return rc;
  }
  *out = w;
  return FM_OK;
}

static fm_rc build_and_write(const char *path, int with_big, fm_error *e) {
  fm_mfile_writer *w;
  fm_rc rc = build(&w, with_big, e);
  if (rc) return rc;
  rc = fm_mfile_write(w, path, e);
  fm_mfile_writer_free(w);
  return rc;
}

static void check_section(fm_mfile *f, const char *tag, const void *want,
                          uint64_t want_len) {
  const void *p = NULL;
  uint64_t n = 99;
  fm_error e;
  fm_error_init(&e);
  CHECK(fm_mfile_section(f, tag, &p, &n, &e) == FM_OK);
  CHECK(n == want_len);
  CHECK(p != NULL);
  CHECK(((uintptr_t)p % FM_MFILE_ALIGN) == 0);
  if (p && n == want_len && n) CHECK(memcmp(p, want, (size_t)n) == 0);
}

static void test_roundtrip(void) {
  fm_error e;
  fm_error_init(&e);
  const char *path = tmp("rt.fmm");
  CHECK(build_and_write(path, 1, &e) == FM_OK);
  fm_mfile *f = NULL;
  CHECK(fm_mfile_open(path, &f, &e) == FM_OK);
  if (!f) {
    fprintf(stderr, "  %s\n", e.msg);
    return;
  }
  CHECK(fm_mfile_nsections(f) == 6);
  static const char *tags[] = {"meta", "empty", "odd", "vocab", "big",
                               "u32.tail"};
  for (size_t i = 0; i < 6; i++) CHECK_STR(fm_mfile_section_tag(f, i, NULL), tags[i]);
  uint64_t len = 0;
  CHECK(fm_mfile_section_tag(f, 6, &len) == NULL);
  CHECK(fm_mfile_section_tag(f, 4, &len) && len == BIG_FLOATS * 4ull);
  check_section(f, "meta", META, sizeof META - 1);
  check_section(f, "empty", NULL, 0);
  check_section(f, "odd", ODD, sizeof ODD);
  check_section(f, "vocab", "bid\0ask\0last\0price\0volume", 26);
  check_section(f, "big", big, BIG_FLOATS * 4ull);
  check_section(f, "u32.tail", ODD, 8);
  /* floats are usable in place */
  const void *p;
  CHECK(fm_mfile_section(f, "big", &p, &len, &e) == FM_OK);
  const float *fl = p;
  CHECK(fl[12345] == big[12345]);

  /* size and whole-file checksum agree with the bytes on disk */
  size_t n;
  unsigned char *bytes = read_bytes(path, &n);
  CHECK(bytes && fm_mfile_size(f) == n);
  if (bytes && n >= 64) {
    memset(bytes + 40, 0, 8);
    CHECK(fm_mfile_checksum(f) == fm_crc32c(0, bytes, n));
  }
  fm_free(bytes);
  CHECK_STR(fm_mfile_path(f), path);
  fm_mfile_close(f);
  fm_mfile_close(NULL);
  unlink(path);
}

static void test_empty_file(void) {
  /* a container with no sections is valid: just the header */
  fm_error e;
  fm_error_init(&e);
  fm_mfile_writer *w;
  CHECK(fm_mfile_writer_new(&w) == FM_OK);
  const char *path = tmp("none.fmm");
  CHECK(fm_mfile_write(w, path, &e) == FM_OK);
  fm_mfile_writer_free(w);
  fm_mfile *f;
  CHECK(fm_mfile_open(path, &f, &e) == FM_OK);
  if (f) {
    CHECK(fm_mfile_nsections(f) == 0);
    CHECK(fm_mfile_size(f) == 64);
    fm_mfile_close(f);
  }
  unlink(path);
}

static void test_determinism(void) {
  fm_error e;
  fm_error_init(&e);
  fm_mfile_writer *w;
  CHECK(build(&w, 1, &e) == FM_OK);
  const char *a = tmp("det_a.fmm"), *b = tmp("det_b.fmm"),
             *c = tmp("det_c.fmm");
  CHECK(fm_mfile_write(w, a, &e) == FM_OK);
  CHECK(fm_mfile_write(w, b, &e) == FM_OK); /* same writer twice */
  fm_mfile_writer_free(w);
  CHECK(build_and_write(c, 1, &e) == FM_OK); /* a fresh writer */
  CHECK(files_equal(a, b));
  CHECK(files_equal(a, c));
  /* overwriting an existing file replaces it atomically */
  CHECK(build_and_write(a, 0, &e) == FM_OK);
  CHECK(!files_equal(a, b));
  CHECK(no_temp_files());
  unlink(a);
  unlink(b);
  unlink(c);
}

static void test_lookup_and_args(void) {
  fm_error e;
  fm_error_init(&e);
  const char *path = tmp("args.fmm");
  CHECK(build_and_write(path, 0, &e) == FM_OK);
  fm_mfile *f;
  CHECK(fm_mfile_open(path, &f, &e) == FM_OK);
  if (f) {
    const void *p = (const void *)1;
    uint64_t n = 7;
    CHECK(fm_mfile_section(f, "nosuch", &p, &n, &e) == FM_ERR_NOTFOUND);
    CHECK(p == NULL && n == 0);
    CHECK(strstr(e.msg, "nosuch") && strstr(e.msg, path));
    fm_mfile_close(f);
  }
  unlink(path);

  fm_mfile_writer *w;
  CHECK(fm_mfile_writer_new(&w) == FM_OK);
  CHECK(fm_mfile_add(w, "a", "x", 1, NULL) == FM_OK);
  fm_error_init(&e);
  CHECK(fm_mfile_add(w, "a", "y", 1, &e) == FM_ERR_ARG);
  CHECK(strstr(e.msg, "duplicate") && strstr(e.msg, "'a'"));
  CHECK(fm_mfile_add_ref(w, "a", "y", 1, NULL) == FM_ERR_ARG);
  CHECK(fm_mfile_begin(w, "a", NULL) == FM_ERR_ARG);
  CHECK(fm_mfile_add(w, "", "y", 1, NULL) == FM_ERR_ARG);
  CHECK(fm_mfile_add(w, "0123456789abcdef", "y", 1, NULL) == FM_ERR_ARG);
  CHECK(fm_mfile_add(w, "0123456789abcde", "y", 1, NULL) == FM_OK); /* 15 */
  CHECK(fm_mfile_add(w, "a b", "y", 1, NULL) == FM_ERR_ARG);
  CHECK(fm_mfile_add(w, "t\n", "y", 1, NULL) == FM_ERR_ARG);
  CHECK(fm_mfile_add(w, NULL, "y", 1, NULL) == FM_ERR_ARG);
  CHECK(fm_mfile_add(w, "nul", NULL, 5, NULL) == FM_ERR_ARG);
  /* streaming misuse */
  CHECK(fm_mfile_append(w, "z", 1, NULL) == FM_ERR_ARG);
  CHECK(fm_mfile_end(w, NULL) == FM_ERR_ARG);
  CHECK(fm_mfile_begin(w, "s", NULL) == FM_OK);
  CHECK(fm_mfile_add(w, "t", "y", 1, NULL) == FM_ERR_ARG);
  CHECK(fm_mfile_begin(w, "t", NULL) == FM_ERR_ARG);
  CHECK(fm_mfile_append(w, NULL, 3, NULL) == FM_ERR_ARG);
  fm_error_init(&e);
  CHECK(fm_mfile_write(w, path, &e) == FM_ERR_ARG);
  CHECK(strstr(e.msg, path) && strstr(e.msg, "'s'"));
  CHECK(access(path, F_OK) != 0);
  CHECK(fm_mfile_end(w, NULL) == FM_OK);
  CHECK(fm_mfile_write(w, path, NULL) == FM_OK);
  fm_mfile_writer_free(w);
  fm_mfile_writer_free(NULL);
  CHECK(fm_mfile_open(path, &f, NULL) == FM_OK);
  if (f) {
    CHECK(fm_mfile_nsections(f) == 3);
    uint64_t n;
    CHECK_STR(fm_mfile_section_tag(f, 2, &n), "s");
    CHECK(n == 0);
    fm_mfile_close(f);
  }
  unlink(path);
}

/* Open a damaged copy; it must fail with want_rc and name the path. */
static int expect_open_fails(const char *path, const unsigned char *bytes,
                             size_t n, fm_rc want_rc, const char *what,
                             size_t at) {
  if (write_bytes(path, bytes, n) != 0) return 0;
  fm_mfile *f = (fm_mfile *)1;
  fm_error e;
  fm_error_init(&e);
  fm_rc rc = fm_mfile_open(path, &f, &e);
  int ok = rc == want_rc && f == NULL && e.rc == rc && strstr(e.msg, path);
  if (rc == FM_OK) fm_mfile_close(f);
  if (!ok)
    fprintf(stderr, "  %s at %zu: got %s (%s), want %s\n", what, at,
            fm_rc_name(rc), e.msg, fm_rc_name(want_rc));
  return ok;
}

static void test_corruption(void) {
  fm_error e;
  fm_error_init(&e);
  const char *path = tmp("good.fmm"), *bad = tmp("bad.fmm");
  CHECK(build_and_write(path, 0, &e) == FM_OK);
  size_t n;
  unsigned char *good = read_bytes(path, &n);
  CHECK(good != NULL && n > 400);
  if (!good) return;
  unsigned char *copy = fm_malloc(n + 1);
  /* every byte of a small file, two kinds of flip: magic -> FORMAT,
   * version -> VERSION, anything else -> CORRUPT; never a success */
  int fails = 0;
  static const unsigned char flips[] = {0xff, 0x01, 0x80};
  for (size_t k = 0; k < sizeof flips; k++)
    for (size_t i = 0; i < n; i++) {
      memcpy(copy, good, n);
      copy[i] ^= flips[k];
      fm_rc want = i < 8 ? FM_ERR_FORMAT : i < 12 ? FM_ERR_VERSION
                                                  : FM_ERR_CORRUPT;
      /* a flip that lands on another readable version (5 -> 4) is caught
       * by the header checksum instead */
      uint32_t fv = (uint32_t)copy[8] | (uint32_t)copy[9] << 8 | (uint32_t)copy[10] << 16 |
                    (uint32_t)copy[11] << 24;
      if (want == FM_ERR_VERSION && fv >= FM_MFILE_VERSION_MIN && fv <= FM_MFILE_VERSION)
        want = FM_ERR_CORRUPT;
      if (!expect_open_fails(bad, copy, n, want, "flip", i)) fails++;
    }
  CHECK(fails == 0);

  /* truncation at many lengths, and trailing garbage */
  size_t tab_end = 64 + 6 * 40;
  size_t lens[] = {0, 1, 7, 8, 11, 12, 40, 63, 64, 65, 64 + 40 * 3 + 5,
                   tab_end - 1, tab_end, tab_end + 1, n / 2, n - 9, n - 1};
  fails = 0;
  for (size_t i = 0; i < sizeof lens / sizeof *lens; i++)
    if (!expect_open_fails(bad, good, lens[i],
                           lens[i] == 0 ? FM_ERR_FORMAT : FM_ERR_CORRUPT,
                           "truncate", lens[i]))
      fails++;
  CHECK(fails == 0);
  memcpy(copy, good, n);
  copy[n] = 0;
  CHECK(expect_open_fails(bad, copy, n + 1, FM_ERR_CORRUPT, "append", n));
  fm_error_init(&e);
  write_bytes(bad, good, n / 2);
  CHECK(fm_mfile_open(bad, &(fm_mfile *){NULL}, &e) == FM_ERR_CORRUPT);
  CHECK(strstr(e.msg, "truncated") != NULL);

  /* a payload flip names the section */
  fm_mfile *f;
  memcpy(copy, good, n);
  /* offset of "vocab": read it from the table (entry 3, offset field) */
  uint64_t voff = 0;
  for (int b = 7; b >= 0; b--) voff = voff << 8 | good[64 + 3 * 40 + 16 + b];
  CHECK(voff % 64 == 0 && voff < n);
  copy[voff + 2] ^= 0x20;
  write_bytes(bad, copy, n);
  fm_error_init(&e);
  CHECK(fm_mfile_open(bad, &f, &e) == FM_ERR_CORRUPT);
  CHECK(strstr(e.msg, "'vocab'") && strstr(e.msg, "checksum"));

  /* not a model file at all */
  fm_error_init(&e);
  write_bytes(bad, "hello, world, this is text\n", 27);
  CHECK(fm_mfile_open(bad, &f, &e) == FM_ERR_FORMAT);
  CHECK(strstr(e.msg, bad) && strstr(e.msg, "not a fieldmatch model"));
  fm_error_init(&e);
  write_bytes(bad, "", 0);
  CHECK(fm_mfile_open(bad, &f, &e) == FM_ERR_FORMAT);
  CHECK(strstr(e.msg, bad) && strstr(e.msg, "empty"));
  /* a byte-swapped header: the other byte order */
  memcpy(copy, good, n);
  copy[12] = 1, copy[13] = 2, copy[14] = 3, copy[15] = 4;
  CHECK(expect_open_fails(bad, copy, n, FM_ERR_FORMAT, "endian", 12));

  fm_free(copy);
  fm_free(good);
  unlink(bad);
  unlink(path);
}

/* A well-formed file of another version (header checksum recomputed). */
static void test_version(void) {
  fm_error e;
  fm_error_init(&e);
  const char *path = tmp("v.fmm");
  CHECK(build_and_write(path, 0, &e) == FM_OK);
  size_t n;
  unsigned char *b = read_bytes(path, &n);
  if (!b) return;
  size_t tab_end = 64 + 6 * 40;
  static const uint32_t versions[] = {FM_MFILE_VERSION_MIN - 1, FM_MFILE_VERSION + 1, 0, 1000};
  for (size_t k = 0; k < sizeof versions / sizeof *versions; k++) {
    uint32_t v = versions[k];
    for (int i = 0; i < 4; i++) b[8 + i] = (unsigned char)(v >> (8 * i));
    memset(b + 40, 0, 4);
    uint32_t c = fm_crc32c(0, b, tab_end);
    for (int i = 0; i < 4; i++) b[40 + i] = (unsigned char)(c >> (8 * i));
    write_bytes(path, b, n);
    fm_mfile *f = NULL;
    fm_error_init(&e);
    CHECK(fm_mfile_open(path, &f, &e) == FM_ERR_VERSION);
    CHECK(f == NULL);
    char want[512];
    snprintf(want, sizeof want,
             "model file %s has format version %u; this build reads versions %d to %d",
             path, v, FM_MFILE_VERSION_MIN, FM_MFILE_VERSION);
    CHECK_STR(e.msg, want);
  }
  /* every version from FM_MFILE_VERSION_MIN up opens (with both checksums
   * right), and says which it is: a format-4 model is read with the
   * fallback calibrator (docs/model-format.md) */
  for (uint32_t v = FM_MFILE_VERSION_MIN; v <= FM_MFILE_VERSION; v++) {
    for (int i = 0; i < 4; i++) b[8 + i] = (unsigned char)(v >> (8 * i));
    memset(b + 40, 0, 8);
    uint32_t fc = fm_crc32c(0, b, n);
    for (int i = 0; i < 4; i++) b[44 + i] = (unsigned char)(fc >> (8 * i));
    size_t nsec = (size_t)b[16] | (size_t)b[17] << 8; /* this file's own table */
    uint32_t c = fm_crc32c(0, b, 64 + nsec * 40);
    for (int i = 0; i < 4; i++) b[40 + i] = (unsigned char)(c >> (8 * i));
    write_bytes(path, b, n);
    fm_mfile *f = NULL;
    fm_error_init(&e);
    CHECK(fm_mfile_open(path, &f, &e) == FM_OK);
    if (!f) fprintf(stderr, "  version %u: %s\n", v, e.msg);
    if (f) CHECK(fm_mfile_version(f) == v);
    fm_mfile_close(f);
  }
  fm_free(b);
  unlink(path);
}

static void test_io_errors(void) {
  fm_error e;
  fm_error_init(&e);
  fm_mfile *f = (fm_mfile *)1;
  const char *nope = tmp("does-not-exist.fmm");
  CHECK(fm_mfile_open(nope, &f, &e) == FM_ERR_IO);
  CHECK(f == NULL);
  CHECK(strstr(e.msg, nope) && strstr(e.msg, "No such file"));
  /* a directory is not a model file */
  fm_error_init(&e);
  CHECK(fm_mfile_open(dir, &f, &e) == FM_ERR_IO);
  CHECK(strstr(e.msg, dir) != NULL);

  /* writing into a missing directory */
  const char *missing = tmp("no/such/dir/m.fmm");
  fm_error_init(&e);
  CHECK(build_and_write(missing, 0, &e) == FM_ERR_IO);
  CHECK(strstr(e.msg, missing) != NULL);
  CHECK(access(tmp("no"), F_OK) != 0);
  /* writing over a directory: the rename fails, the temp file goes away */
  const char *sub = tmp("subdir");
  CHECK(mkdir(sub, 0700) == 0);
  fm_error_init(&e);
  CHECK(build_and_write(sub, 0, &e) == FM_ERR_IO);
  CHECK(strstr(e.msg, sub) != NULL);
  CHECK(no_temp_files());
  rmdir(sub);
}

static void test_faults(void) {
  /* writer + write: every allocation fails in turn */
  const char *path = tmp("fault.fmm");
  int succeeded = 0;
  for (long k = 1; k < 200 && !succeeded; k++) {
    fm_error e;
    fm_error_init(&e);
    fm_fault_malloc_after(k);
    fm_rc rc = build_and_write(path, 1, &e);
    fm_fault_malloc_after(0);
    CHECK(rc == FM_OK || rc == FM_ERR_NOMEM);
    if (rc == FM_OK) {
      succeeded = 1;
    } else {
      CHECK(e.msg[0] != '\0');
      CHECK(access(path, F_OK) != 0); /* nothing half-written */
    }
    CHECK(no_temp_files());
  }
  CHECK(succeeded);
  /* open: every allocation fails in turn */
  succeeded = 0;
  for (long k = 1; k < 50 && !succeeded; k++) {
    fm_error e;
    fm_error_init(&e);
    fm_mfile *f = (fm_mfile *)1;
    fm_fault_malloc_after(k);
    fm_rc rc = fm_mfile_open(path, &f, &e);
    fm_fault_malloc_after(0);
    CHECK(rc == FM_OK || rc == FM_ERR_NOMEM);
    if (rc == FM_OK) {
      succeeded = 1;
      CHECK(fm_mfile_nsections(f) == 6);
      fm_mfile_close(f);
    } else {
      CHECK(f == NULL && strstr(e.msg, path));
    }
  }
  CHECK(succeeded);
  unlink(path);
}

/* Cost of validating a ~30 MB model at open (all checksums). */
static void test_timing(void) {
  size_t nf = 30u << 18; /* 30 MB of floats */
  float *m = fm_malloc(nf * sizeof *m);
  CHECK(m != NULL);
  if (!m) return;
  for (size_t i = 0; i < nf; i++) m[i] = (float)(i % 1000) * 0.001f;
  fm_mfile_writer *w;
  fm_error e;
  fm_error_init(&e);
  CHECK(fm_mfile_writer_new(&w) == FM_OK);
  CHECK(fm_mfile_add_ref(w, "docvec", m, nf * sizeof *m / 2, &e) == FM_OK);
  CHECK(fm_mfile_add_ref(w, "svd_v", m + nf / 2, nf * sizeof *m / 2, &e) ==
        FM_OK);
  const char *path = tmp("big.fmm");
  double t0 = fm_now();
  CHECK(fm_mfile_write(w, path, &e) == FM_OK);
  double t1 = fm_now();
  fm_mfile_writer_free(w);
  fm_mfile *f = NULL;
  double best = 1e9;
  for (int r = 0; r < 5; r++) {
    double a = fm_now();
    CHECK(fm_mfile_open(path, &f, &e) == FM_OK);
    double b = fm_now();
    if (b - a < best) best = b - a;
    fm_mfile_close(f);
  }
  double c0 = fm_now();
  uint32_t crc = fm_crc32c(0, m, nf * sizeof *m);
  double c1 = fm_now();
  (void)crc;
  fprintf(stderr,
          "  30 MB model: write %.1f ms (incl. fsync), open+validate %.1f ms;"
          " fm_crc32c %.2f GB/s\n",
          (t1 - t0) * 1e3, best * 1e3,
          (double)(nf * sizeof *m) / (c1 - c0) / 1e9);
  fm_free(m);
  unlink(path);
}

int main(void) {
  if (scratch_make("fm_mfile_")) return 1;
  big = fm_malloc(BIG_FLOATS * sizeof *big);
  if (!big) return 1;
  for (uint32_t i = 0; i < BIG_FLOATS; i++) big[i] = (float)i * 0.5f - 7.0f;
  FM_RUN(test_roundtrip);
  FM_RUN(test_empty_file);
  FM_RUN(test_determinism);
  FM_RUN(test_lookup_and_args);
  FM_RUN(test_corruption);
  FM_RUN(test_version);
  FM_RUN(test_io_errors);
  FM_RUN(test_faults);
  FM_RUN(test_timing);
  fm_free(big);
  scratch_remove();
  FM_TEST_EXIT();
}
