/* test_fuzz_model.c: model files whose checksums are all right and whose
 * contents are wrong.  A writer bug or a hostile file must never make
 * fm_model_open or a later lookup crash, read out of bounds, hit undefined
 * behaviour, loop or allocate absurd memory: the file is either refused
 * with FM_ERR_CORRUPT (or FM_ERR_FORMAT / FM_ERR_VERSION for a header that
 * is not this format) and a message naming the file and, for a payload,
 * the section, or it is accepted and every lookup answers safely.
 *
 * A deterministic mutation fuzzer over the tiny fixture model
 * (tests/data/model), fixed seed: each mutant changes ONE section's payload
 * (bit flips, an integer or float set to a boundary value, two entries
 * swapped, a cut or an extension, a number in the JSON metadata replaced)
 * and every CRC is recomputed, so only fm_model_open's own validation
 * stands in the way; a share of the mutants edit a header or section table
 * field instead (with the header and file CRCs recomputed).  Accepted
 * mutants are opened, queried (a model query by id, an unknown mnemonic, a
 * free-text field, all queries) and closed; under ASan/UBSan
 * (-DFM_SANITIZE=ON) any bad access fails the run.
 *
 * The fixed regression checks, one or more per bug the fuzzer (or reading
 * the loader) found, are test_fuzz_regressions.c; the code both use (the
 * model's sections, checksums, the lookups on an opened model) is
 * fm_test_fuzz.h.
 *
 * Environment, for long local campaigns:
 *   FM_FUZZ_ITERS  mutants to try (default 3000)
 *   FM_FUZZ_SEED   PRNG seed (default 1)
 *   FM_FUZZ_MODEL  fuzz this model file instead of training the fixture
 *                  (test_fuzz_regressions.c checks it too)
 *   FM_FUZZ_KEEP   directory where failing mutants are copied
 *   FM_FUZZ_TRACE  set: print every mutation before trying it (to tell
 *                  which one a sanitizer stopped at) */
#include "fm_model.h"
#include "fm_test.h"
#include "fm_test_fuzz.h"
#include "fm_test_util.h"
#include "mfile.h"

#include <float.h>
#include <stdint.h>
#include <time.h>

#define ITERS_DEFAULT 3000

/* ---- PRNG (splitmix64: fixed seed, same mutants on every host) -------- */

static uint64_t rng_state;
static uint64_t rnd(void) {
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
/* Uniform in [0, n) (n > 0; the bias is irrelevant here). */
static uint64_t below(uint64_t n) { return rnd() % n; }

/* ---- the sections' types and sizes ------------------------------------- */

typedef enum { T_TEXT, T_U32, T_U64, T_F32 } stype;

/* How each section's payload is read (docs/model-format.md). */
static stype sec_type(const char *tag) {
  static const char *const u32[] = {"dims",    "refs",    "queries", "terms",  "inv_ref",
                                    "csr_col", "qcsr_col", "lsa_row", "qkinds", "rkinds"};
  static const char *const u64[] = {"inv_ptr", "csr_ptr", "qcsr_ptr"};
  static const char *const f32[] = {"idf",   "inv_val", "csr_val", "qcsr_val",
                                    "lsa_v", "ref_emb", "prior",   "ref_order"};
  for (size_t i = 0; i < sizeof u32 / sizeof *u32; i++)
    if (!strcmp(tag, u32[i])) return T_U32;
  for (size_t i = 0; i < sizeof u64 / sizeof *u64; i++)
    if (!strcmp(tag, u64[i])) return T_U64;
  for (size_t i = 0; i < sizeof f32 / sizeof *f32; i++)
    if (!strcmp(tag, f32[i])) return T_F32;
  return T_TEXT; /* meta, strings, abbrev, pairs */
}

static size_t elem_size(stype t) { return t == T_U64 ? 8 : t == T_TEXT ? 1 : 4; }

/* Counts a boundary value may be taken relative to: the dims, the
 * non-zeros, the length of strings. */
static uint64_t counts[16];
static size_t ncounts;

/* Fill counts[] from the loaded sections (load_sections). */
static void collect_counts(void) {
  ncounts = 0;
  for (size_t i = 0; i < nsecs; i++) {
    if (!strcmp(secs[i].tag, "dims"))
      for (size_t j = 0; j < 10 && j * 4 < secs[i].len; j++) {
        uint32_t v;
        memcpy(&v, secs[i].p + 4 * j, 4);
        counts[ncounts++] = v;
      }
    if (!strcmp(secs[i].tag, "strings")) counts[ncounts++] = secs[i].len;
    if (!strcmp(secs[i].tag, "inv_ref")) counts[ncounts++] = secs[i].len / 4;
    if (!strcmp(secs[i].tag, "qcsr_col")) counts[ncounts++] = secs[i].len / 4;
  }
}

/* ---- rewriting one section ----------------------------------------------- */

/* The file image of the model with section `tag` replaced by p[0..len)
 * (or left out when p is NULL), laid out as docs/model-format.md says and
 * every CRC right, into *out (caller frees; *n bytes).  Built in memory
 * and written without fm_mfile_write's fsync, which would be most of the
 * run time.  0 on success. */
static int build_with(const char *tag, const void *p, size_t len, unsigned char **out,
                      size_t *n) {
  const unsigned char *d[64];
  size_t l[64], k = 0;
  const char *t[64];
  for (size_t i = 0; i < nsecs; i++) {
    d[k] = secs[i].p;
    l[k] = secs[i].len;
    t[k] = secs[i].tag;
    if (tag && !strcmp(tag, secs[i].tag)) {
      if (!p) continue;
      d[k] = p;
      l[k] = len;
    }
    k++;
  }
  size_t tab_end = 64 + 40 * k, size = tab_end, off[64];
  for (size_t i = 0; i < k; i++) {
    off[i] = (size + 63) & ~(size_t)63;
    size = off[i] + l[i];
  }
  unsigned char *b = *out = fm_calloc(1, size);
  if (!b) return -1;
  static const unsigned char magic[8] = {'F', 'M', 'M', 'O', 'D', 'E', 'L', 0};
  memcpy(b, magic, 8);
  put32(b + 8, FM_MFILE_VERSION);
  put32(b + 12, 0x01020304u);
  put32(b + 16, (uint32_t)k);
  put64(b + 24, size);
  put64(b + 32, 64);
  for (size_t i = 0; i < k; i++) {
    unsigned char *e = b + 64 + 40 * i;
    memcpy(e, t[i], strlen(t[i]));
    put64(e + 16, off[i]);
    put64(e + 24, l[i]);
    if (l[i]) memcpy(b + off[i], d[i], l[i]);
  }
  fix_crcs(b, size);
  *n = size;
  return 0;
}

/* build_with, written to path.  0 on success. */
static int write_with(const char *path, const char *tag, const void *p, size_t len) {
  unsigned char *b;
  size_t n;
  int rc = build_with(tag, p, len, &b, &n);
  if (rc == 0) rc = write_bytes(path, b, n);
  fm_free(b);
  return rc;
}

/* ---- checking one mutant ------------------------------------------------- */

/* Whether msg names a section of the model ('tag'). */
static int names_section(const char *msg) {
  for (size_t i = 0; i < nsecs; i++) {
    size_t tl = strlen(secs[i].tag);
    for (const char *h = strstr(msg, secs[i].tag); h; h = strstr(h + 1, secs[i].tag))
      if (h > msg && h[-1] == '\'' && h[tl] == '\'') return 1;
  }
  return 0;
}

static const char *keep_dir;
static int kept;
static int last_opened; /* the last mutant checked got past validation */

/* Open the mutant at path: refused cleanly, or accepted and sane.  raw:
 * the header or table was edited (then the message need not name a
 * section and FM_ERR_VERSION is a right answer too).  Returns 1 when
 * fine, else says why on stderr (what: the mutation). */
static int check_mutant(const char *path, int raw, const char *what) {
  fm_model *m = (fm_model *)1;
  fm_error err;
  fm_error_init(&err);
  fm_rc rc = fm_model_open(path, &m, &err);
  int ok;
  last_opened = rc == FM_OK;
  if (rc != FM_OK)
    ok = (rc == FM_ERR_CORRUPT || rc == FM_ERR_FORMAT || (raw && rc == FM_ERR_VERSION)) &&
         m == NULL && strstr(err.msg, path) && (raw || names_section(err.msg));
  else {
    ok = exercise(m);
    fm_model_close(m);
  }
  if (!ok) {
    fprintf(stderr, "  mutant %s: rc=%s msg=%s\n", what, fm_rc_name(rc),
            rc ? err.msg : "(opened; a lookup misbehaved)");
    if (keep_dir) {
      char dst[4096];
      size_t n = 0;
      unsigned char *b = read_bytes(path, &n);
      snprintf(dst, sizeof dst, "%s/mutant-%d.fmm", keep_dir, kept++);
      if (b && write_bytes(dst, b, n) == 0) fprintf(stderr, "  kept as %s\n", dst);
      fm_free(b);
    }
  }
  return ok;
}

/* ---- mutations ------------------------------------------------------------ */

static uint64_t pick_count(size_t nelem) {
  uint64_t r = below(ncounts + 1);
  return r < ncounts ? counts[r] : nelem;
}

static uint32_t boundary_u32(uint32_t old, size_t nelem) {
  uint32_t n = (uint32_t)pick_count(nelem);
  const uint32_t v[] = {0, 1, n - 1, n, n + 1, UINT32_MAX, UINT32_MAX - 1, 0x7fffffffu,
                        0x80000000u, old + 1, old - 1, old ^ 0x80000000u, (uint32_t)rnd()};
  return v[below(sizeof v / sizeof *v)];
}

static uint64_t boundary_u64(uint64_t old, size_t nelem) {
  uint64_t n = pick_count(nelem);
  const uint64_t v[] = {0, 1, n - 1, n, n + 1, UINT64_MAX, UINT64_MAX - 1,
                        (uint64_t)1 << 62, (uint64_t)1 << 63, UINT64_MAX / 4 + 1,
                        UINT64_MAX / 8, UINT32_MAX, (uint64_t)UINT32_MAX + 1, old + 1, old - 1,
                        rnd()};
  return v[below(sizeof v / sizeof *v)];
}

static float boundary_f32(float old) {
  const float v[] = {NAN, -NAN, INFINITY, -INFINITY, -0.0f, 0.0f, FLT_MAX, -FLT_MAX, 1e30f,
                     -1e30f, FLT_TRUE_MIN, FLT_MIN, 1.0f, -1.0f, 0x1p-70f, old * 2, -old};
  return v[below(sizeof v / sizeof *v)];
}

static unsigned char boundary_byte(void) {
  const unsigned char v[] = {0, '\t', '\n', '\r', '"', '\\', '{', '}', '[', ':', ',', '-',
                             '0', '9', 'e', ' ', 0x80, 0xff, 0xc3};
  return below(4) ? v[below(sizeof v / sizeof *v)] : (unsigned char)rnd();
}

/* JSON numbers a hostile "meta" might carry. */
static const char *const META_NUMS[] = {
    "0", "-1", "1", "9", "10", "100000", "100001", "2147483647", "2147483648", "4294967296",
    "4294967297", "9223372036854775807", "-9223372036854775808", "1e308", "-1e308", "1e-320",
    "0.5", "1e40", "-1e40", "99999999999999999999", "null", "\"x\"", "[]", "{}", "true"};

/* Replace one number of the JSON text p[0..*len) (capacity cap) by one of
 * META_NUMS.  0 when there is no number. */
static int meta_number(unsigned char *p, size_t *len, size_t cap) {
  size_t starts[256], n = 0;
  for (size_t i = 0; i < *len && n < 256; i++)
    if ((p[i] >= '0' && p[i] <= '9') && (i == 0 || !((p[i - 1] >= '0' && p[i - 1] <= '9') ||
                                                      p[i - 1] == '.' || p[i - 1] == '-')))
      starts[n++] = i;
  if (!n) return 0;
  size_t s = starts[below(n)], e = s;
  while (e < *len && ((p[e] >= '0' && p[e] <= '9') || p[e] == '.' || p[e] == 'e' ||
                      p[e] == 'E' || p[e] == '-' || p[e] == '+'))
    e++;
  const char *r = META_NUMS[below(sizeof META_NUMS / sizeof *META_NUMS)];
  size_t rl = strlen(r);
  if (*len - (e - s) + rl > cap) return 0;
  memmove(p + s + rl, p + e, *len - e);
  memcpy(p + s, r, rl);
  *len = *len - (e - s) + rl;
  return 1;
}

enum { M_FLIP, M_VALUE, M_SWAP, M_CUT, M_EXTEND, M_RUN, M_META, M_NMUT };
static const char *const MUT_NAMES[] = {"flip", "value", "swap", "cut", "extend", "run", "meta"};

/* Mutate a copy of section s into buf (capacity cap); its new length in
 * *len and what was done in what. */
static void mutate(const sec *s, unsigned char *buf, size_t cap, size_t *len, char *what,
                   size_t wn) {
  stype t = sec_type(s->tag);
  size_t es = elem_size(t), n = s->len;
  memcpy(buf, s->p, n);
  size_t nelem = n / es;
  int op = (int)below(M_NMUT);
  if (op == M_META && strcmp(s->tag, "meta")) op = M_VALUE;
  if ((op == M_VALUE || op == M_SWAP || op == M_RUN) && nelem == 0) op = M_EXTEND;
  if ((op == M_FLIP || op == M_CUT) && n == 0) op = M_EXTEND;
  size_t at = nelem ? below(nelem) : 0;
  snprintf(what, wn, "%s %s", s->tag, MUT_NAMES[op]);
  switch (op) {
    case M_FLIP: {
      int k = 1 + (int)below(4);
      for (int i = 0; i < k; i++) buf[below(n)] ^= (unsigned char)(1u << below(8));
      break;
    }
    case M_VALUE:
    case M_RUN: {
      size_t run = op == M_RUN ? 1 + below(nelem - at < 8 ? nelem - at : 8) : 1;
      if (t == T_U32) {
        uint32_t old, v;
        memcpy(&old, buf + at * 4, 4);
        v = boundary_u32(old, nelem);
        for (size_t i = 0; i < run; i++) memcpy(buf + (at + i) * 4, &v, 4);
        snprintf(what, wn, "%s[%zu..+%zu] = %u", s->tag, at, run, v);
      } else if (t == T_U64) {
        uint64_t old, v;
        memcpy(&old, buf + at * 8, 8);
        v = boundary_u64(old, nelem);
        for (size_t i = 0; i < run; i++) memcpy(buf + (at + i) * 8, &v, 8);
        snprintf(what, wn, "%s[%zu..+%zu] = %llu", s->tag, at, run, (unsigned long long)v);
      } else if (t == T_F32) {
        float old, v;
        memcpy(&old, buf + at * 4, 4);
        v = boundary_f32(old);
        for (size_t i = 0; i < run; i++) memcpy(buf + (at + i) * 4, &v, 4);
        snprintf(what, wn, "%s[%zu..+%zu] = %g", s->tag, at, run, (double)v);
      } else {
        unsigned char v = boundary_byte();
        for (size_t i = 0; i < run; i++) buf[at + i] = v;
        snprintf(what, wn, "%s[%zu..+%zu] = byte %u", s->tag, at, run, v);
      }
      break;
    }
    case M_SWAP: {
      size_t b = below(nelem);
      unsigned char tmpb[8];
      memcpy(tmpb, buf + at * es, es);
      memcpy(buf + at * es, buf + b * es, es);
      memcpy(buf + b * es, tmpb, es);
      snprintf(what, wn, "%s swap %zu %zu", s->tag, at, b);
      break;
    }
    case M_CUT:
      n = below(2) ? below(n) : (below(nelem + 1) < nelem ? nelem - 1 : 0) * es;
      snprintf(what, wn, "%s cut to %zu bytes", s->tag, n);
      break;
    case M_EXTEND: {
      size_t add = below(2) ? es * (1 + below(4)) : 1 + below(64);
      if (n + add > cap) add = cap - n;
      for (size_t i = 0; i < add; i++) buf[n + i] = below(2) ? 0 : (unsigned char)rnd();
      n += add;
      snprintf(what, wn, "%s extended by %zu bytes", s->tag, add);
      break;
    }
    case M_META:
      if (!meta_number(buf, &n, cap)) buf[below(n)] ^= 1;
      snprintf(what, wn, "meta number replaced: %.*s", (int)(n < 200 ? n : 200), buf);
      break;
  }
  *len = n;
}

/* ---- header and table edits ------------------------------------------------ */

/* One header or table field of the file image set to a boundary value. */
static void mutate_raw(unsigned char *b, size_t n, char *what, size_t wn) {
  uint32_t nsec = get32(b + 16);
  if (below(3) == 0) {
    static const size_t f32[] = {8, 12, 16, 20, 48, 52, 56, 60};
    static const size_t f64[] = {24, 32};
    if (below(2)) {
      size_t off = f32[below(sizeof f32 / sizeof *f32)];
      uint32_t v = boundary_u32(get32(b + off), nsec);
      put32(b + off, v);
      snprintf(what, wn, "header u32 at %zu = %u", off, v);
    } else {
      size_t off = f64[below(2)];
      uint64_t v = boundary_u64(get64(b + off), n);
      put64(b + off, v);
      snprintf(what, wn, "header u64 at %zu = %llu", off, (unsigned long long)v);
    }
  } else {
    size_t i = below(nsec), f = below(4);
    unsigned char *e = b + 64 + i * 40;
    if (f == 0) {
      size_t at = below(16);
      e[at] = boundary_byte();
      snprintf(what, wn, "table entry %zu tag byte %zu = %u", i, at, e[at]);
    } else if (f == 3) {
      put32(e + 36, boundary_u32(get32(e + 36), nsec));
      snprintf(what, wn, "table entry %zu reserved = %u", i, get32(e + 36));
    } else {
      size_t off = f == 1 ? 16 : 24;
      uint64_t v = boundary_u64(get64(e + off), n);
      put64(e + off, v);
      snprintf(what, wn, "table entry %zu %s = %llu", i, f == 1 ? "offset" : "length",
               (unsigned long long)v);
    }
  }
  fix_crcs(b, n);
}

/* ---- the campaign ------------------------------------------------------------ */

static long env_long(const char *name, long dflt) {
  const char *s = getenv(name);
  return s && *s ? strtol(s, NULL, 10) : dflt;
}

static void test_fuzz(const char *good) {
  if (!nsecs) return;
  /* an unchanged rewrite opens and answers: the harness itself is sound */
  const char *mut = tmp("mutant.fmm");
  CHECK(write_with(mut, NULL, NULL, 0) == 0);
  CHECK(files_equal(mut, good)); /* the builder lays files out as the writer does */
  CHECK(check_mutant(mut, 0, "unchanged"));
  size_t good_n = 0;
  unsigned char *good_bytes = read_bytes(mut, &good_n);
  CHECK(good_bytes != NULL);
  size_t maxlen = 0;
  for (size_t i = 0; i < nsecs; i++)
    if (secs[i].len > maxlen) maxlen = secs[i].len;
  size_t cap = maxlen + 4096;
  unsigned char *buf = fm_malloc(cap), *raw = fm_malloc(good_n ? good_n : 1);
  long iters = env_long("FM_FUZZ_ITERS", ITERS_DEFAULT);
  rng_state = (uint64_t)env_long("FM_FUZZ_SEED", 1);
  keep_dir = getenv("FM_FUZZ_KEEP");
  int trace = getenv("FM_FUZZ_TRACE") != NULL;
  long fails = 0, opened = 0;
  char what[512];
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long it = 0; it < iters && buf && raw && good_bytes; it++) {
    int is_raw = below(10) == 0;
    if (is_raw) {
      memcpy(raw, good_bytes, good_n);
      mutate_raw(raw, good_n, what, sizeof what);
      CHECK(write_bytes(mut, raw, good_n) == 0);
    } else {
      const sec *s = &secs[below(nsecs)];
      size_t len;
      mutate(s, buf, cap, &len, what, sizeof what);
      if (write_with(mut, s->tag, buf, len)) {
        fails++;
        continue;
      }
    }
    if (trace) fprintf(stderr, "  try %ld: %s\n", it, what);
    if (!check_mutant(mut, is_raw, what)) {
      fprintf(stderr, "  (iteration %ld)\n", it);
      fails++;
    }
    opened += last_opened;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  fprintf(stderr, "  %ld mutants (%ld opened), %ld bad, %.2fs\n", iters, opened, fails,
          (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
  CHECK(fails == 0);
  fm_free(buf);
  fm_free(raw);
  fm_free(good_bytes);
}

static const char *good_path;
static void run_fuzz(void) { test_fuzz(good_path); }

int main(void) {
  if (scratch_make("fm_fuzz_")) return 1;
  good_path = fuzz_good_model();
  collect_counts();
  FM_RUN(run_fuzz);
  free_sections();
  scratch_remove();
  FM_TEST_EXIT();
}
