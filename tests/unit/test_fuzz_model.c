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
 * Before it, fixed regression checks: one or more per bug the fuzzer (or
 * reading the loader) found.
 *
 * Environment, for long local campaigns:
 *   FM_FUZZ_ITERS  mutants to try (default 3000)
 *   FM_FUZZ_SEED   PRNG seed (default 1)
 *   FM_FUZZ_MODEL  fuzz this model file instead of training the fixture
 *   FM_FUZZ_KEEP   directory where failing mutants are copied
 *   FM_FUZZ_TRACE  set: print every mutation before trying it (to tell
 *                  which one a sanitizer stopped at) */
#include "fm_model.h"
#include "fm_test.h"
#include "fm_test_mfile.h"
#include "fm_test_util.h"
#include "mfile.h"
#include "model_internal.h" /* the loaded abbreviation table */

#include <float.h>
#include <stdint.h>
#include <time.h>

#define TINY "tests/data/model/tiny.json"
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

/* ---- the model under test, as sections ---------------------------------- */

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

typedef struct sec {
  char tag[FM_MFILE_TAG_MAX + 1];
  unsigned char *p;
  size_t len;
} sec;

static sec secs[64];
static size_t nsecs;
/* Counts a boundary value may be taken relative to: the dims, the
 * non-zeros, the length of strings. */
static uint64_t counts[16];
static size_t ncounts;

static int load_sections(const char *path) {
  fm_error err;
  fm_error_init(&err);
  fm_mfile *f = NULL;
  if (fm_mfile_open(path, &f, &err)) {
    fprintf(stderr, "  %s\n", err.msg);
    return -1;
  }
  nsecs = 0;
  for (size_t i = 0; i < fm_mfile_nsections(f) && nsecs < 64; i++) {
    uint64_t len;
    const void *p;
    const char *t = fm_mfile_section_tag(f, i, &len);
    fm_mfile_section(f, t, &p, &len, &err);
    sec *s = &secs[nsecs++];
    snprintf(s->tag, sizeof s->tag, "%s", t);
    s->len = (size_t)len;
    s->p = fm_malloc(len ? len : 1);
    if (len) memcpy(s->p, p, len);
  }
  fm_mfile_close(f);
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
  return 0;
}

static void free_sections(void) {
  for (size_t i = 0; i < nsecs; i++) fm_free(secs[i].p);
  nsecs = 0;
}

static sec *find_sec(const char *tag) {
  for (size_t i = 0; i < nsecs; i++)
    if (!strcmp(secs[i].tag, tag)) return &secs[i];
  return NULL;
}

static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const unsigned char *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static uint64_t get64(const unsigned char *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

static void fix_crcs(unsigned char *b, size_t n);

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

/* ---- exercising a model that opened ------------------------------------- */

static size_t touch(const char *s) { return s ? strlen(s) : 0; }

static size_t touch_field(const fm_field *f) {
  return touch(f->vendor) + touch(f->id) + touch(f->name) + touch(f->description) +
         touch(f->type) + touch(f->category) + touch(f->source);
}

/* Candidates are in range and sorted best first (NaN scores never get
 * there: the heaps drop them). */
static int sane(const fm_model *m, const fm_candidate *c, int n, int k) {
  if (n < 0 || n > k) return 0;
  for (int i = 0; i < n; i++) {
    if (c[i].ref >= fm_model_nrefs(m) || c[i].score != c[i].score) return 0;
    if (i && c[i].score > c[i - 1].score) return 0;
  }
  return 1;
}

/* Every kind of lookup on m; 1 when each answered sanely. */
static int exercise(fm_model *m) {
  int ok = 1;
  fm_model_info info;
  fm_model_info_get(m, &info);
  volatile size_t sink = touch(info.name) + touch(info.config_json) + info.ntrain_pairs;
  size_t nr = fm_model_nrefs(m), nq = fm_model_nqueries(m);
  fm_field f;
  for (size_t i = 0; i < nr; i++) {
    fm_model_ref(m, i, &f);
    sink += touch_field(&f);
    ok &= fm_model_find_ref(m, f.id) >= 0;
  }
  for (size_t i = 0; i < nq; i++) {
    fm_model_query(m, i, &f);
    sink += touch_field(&f);
    ok &= fm_model_find_query(m, f.id) >= 0;
  }
  (void)sink;
  fm_error err;
  fm_error_init(&err);
  fm_matcher *mt = NULL;
  if (fm_matcher_new(m, &mt, &err) != FM_OK) return 0;
  enum { K = 5 };
  fm_candidate c[K];
  int n;
  const char *ids[3] = {NULL, NULL, "ZZ_NO_SUCH_FIELD"};
  fm_field q0, q1;
  if (nq) {
    fm_model_query(m, 0, &q0);
    fm_model_query(m, nq - 1, &q1);
    ids[0] = q0.id;
    ids[1] = q1.id;
  }
  for (int i = 0; i < 3; i++) {
    if (!ids[i]) continue;
    fm_error_init(&err);
    ok &= fm_match(mt, ids[i], NULL, K, c, &n, &err) == FM_OK && sane(m, c, n, K);
  }
  fm_field text = {.vendor = "bloomberg", .id = "PX_LAST_NEW", .name = "Last Price",
                   .description = "Last traded price of the security, bid ask yield",
                   .type = "Price", .category = "Market Activity", .source = "fields.csv"};
  fm_error_init(&err);
  ok &= fm_match(mt, NULL, &text, K, c, &n, &err) == FM_OK && sane(m, c, n, K);
  /* every query of the model, as fm_match_all's workers run them (its
   * threads would cost more than the lookups) */
  for (size_t i = 0; i < nq && i < 1000; i++) {
    fm_model_query(m, i, &f);
    fm_error_init(&err);
    fm_rc rc = i & 1 ? fm_match(mt, f.id, NULL, 3, c, &n, &err)
                     : fm_match(mt, NULL, &f, 3, c, &n, &err);
    ok &= rc == FM_OK && sane(m, c, n, 3);
  }
  fm_matcher_free(mt);
  return ok;
}

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

/* Recompute every checksum of the file image b[0..n) (docs/model-format.md)
 * as far as its header and table let one: each section's CRC when its
 * bounds are inside the file, then the file CRC and the header CRC. */
static void fix_crcs(unsigned char *b, size_t n) {
  uint32_t nsec = get32(b + 16);
  uint64_t tab_end = 64 + (uint64_t)nsec * 40;
  if (tab_end > n) return;
  for (uint32_t i = 0; i < nsec; i++) {
    unsigned char *e = b + 64 + (size_t)i * 40;
    uint64_t off = get64(e + 16), len = get64(e + 24);
    if (off <= n && len <= n - off) put32(e + 32, fm_crc32c(0, b + off, (size_t)len));
  }
  static const unsigned char zeros[8];
  uint32_t c = fm_crc32c(0, b, 40);
  c = fm_crc32c(c, zeros, 8);
  put32(b + 44, fm_crc32c(c, b + 48, n - 48));
  c = fm_crc32c(0, b, 40);
  c = fm_crc32c(c, zeros, 4);
  put32(b + 40, fm_crc32c(c, b + 44, (size_t)(tab_end - 44)));
}

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

/* ---- fixed regression checks ---------------------------------------------------- */

/* A container of n empty sections tagged s0, s1, ... (the last one's tag
 * that of the first when dup), every CRC right, written to path. */
static int write_empty_sections(const char *path, uint32_t n, int dup) {
  size_t tab_end = 64 + (size_t)40 * n, size = (tab_end + 63) & ~(size_t)63;
  unsigned char *b = fm_calloc(1, size);
  if (!b) return -1;
  memcpy(b, "FMMODEL", 8);
  put32(b + 8, FM_MFILE_VERSION);
  put32(b + 12, 0x01020304u);
  put32(b + 16, n);
  put64(b + 24, size);
  put64(b + 32, 64);
  for (uint32_t i = 0; i < n; i++) {
    unsigned char *e = b + 64 + (size_t)40 * i;
    snprintf((char *)e, 16, "s%u", dup && i == n - 1 ? 0 : i);
    put64(e + 16, size);
  }
  fix_crcs(b, size);
  int rc = write_bytes(path, b, size);
  fm_free(b);
  return rc;
}

/* The model file at path is refused with FM_ERR_CORRUPT and a message
 * naming it and holding what. */
static int opens_corrupt(const char *path, const char *what) {
  fm_model *m = (fm_model *)1;
  fm_error err;
  fm_error_init(&err);
  fm_rc rc = fm_model_open(path, &m, &err);
  int ok = rc == FM_ERR_CORRUPT && m == NULL && strstr(err.msg, path) && strstr(err.msg, what);
  if (!ok) fprintf(stderr, "  %s: rc=%s msg=%s\n", what, fm_rc_name(rc), err.msg);
  if (rc == FM_OK) fm_model_close(m);
  return ok;
}

/* Files that fm_model_open mishandled (a lookup out of bounds, a wrong
 * error, a read past a section, absurd memory or time), each found by the
 * fuzzer or by reading the loader: now refused at open, or read right. */
static void test_regressions(const char *good) {
  const char *bad = tmp("regression.fmm");
  /* a reference without a kind (FM_NO_KIND): the matcher indexed the
   * query kind's prior row with it (a read 16 GB past the prior) */
  CHECK(rejects_u32(good, bad, "refs", 8, UINT32_MAX, "'refs': field kind out of range"));
  /* an abbreviation line with an empty field ("\tprice\t3"): fm_abbrev_add's
   * FM_ERR_ARG came back as FM_ERR_NOMEM, "out of memory" */
  static const char empty_abbr[] = "px\tprice\t3\n\tprice\t3\n";
  static const char empty_exp[] = "px\t\t3\n";
  fm_test_sec ab = {"abbrev", empty_abbr, sizeof empty_abbr - 1};
  CHECK(resave_secs(good, bad, &ab, 1) == 0);
  CHECK(opens_corrupt(bad, "'abbrev': empty abbreviation"));
  ab.p = empty_exp;
  ab.len = sizeof empty_exp - 1;
  CHECK(resave_secs(good, bad, &ab, 1) == 0);
  CHECK(opens_corrupt(bad, "'abbrev': empty abbreviation or expansion"));
  /* the last abbreviation line without its newline, the section a multiple
   * of 64 bytes long so that the next section ('pairs') follows at once:
   * the support number was read with strtoul on the mapping, on into
   * 'pairs' ("7" then "9\t..." gave 79), and past the end of the file
   * had 'abbrev' been last */
  static const char abl[] = "px\tprice\t3\n"
                            "ffffffffffffffffffffffffffffffffff\tfiller\t1\n"
                            "zq\tzulu\t7";
  CHECK(sizeof abl - 1 == 64);
  fm_test_sec two[2] = {{"abbrev", abl, 64}, {"pairs", "9\tX\n", 4}};
  CHECK(resave_secs(good, bad, two, 2) == 0);
  fm_model *m = NULL;
  fm_error err;
  fm_error_init(&err);
  CHECK(fm_model_open(bad, &m, &err) == FM_OK);
  uint32_t support = 0;
  for (size_t i = 0; m && i < fm_abbrev_count(m->abbrev); i++) {
    const char *a;
    fm_abbrev_entry(m->abbrev, i, &a, NULL, NULL);
    if (!strcmp(a, "zq")) fm_abbrev_entry(m->abbrev, i, NULL, NULL, &support);
  }
  CHECK(support == 7);
  fm_model_close(m);
  /* non-zeros whose byte count wraps around: inv_ptr and csr_ptr ending at
   * 2^62 (or at UINT64_MAX, once get_sec's "any length" marker) with the
   * four non-zero sections empty matched 2^62 * 4 = 0 bytes, and
   * validate() then walked 2^62 inv_ref entries off the mapping */
  const uint64_t huge[] = {(uint64_t)1 << 62, UINT64_MAX, UINT64_MAX / 4 + 1};
  for (size_t h = 0; h < sizeof huge / sizeof *huge; h++) {
    size_t ni, nc;
    uint32_t *ip = section_u32(good, "inv_ptr", &ni), *cp = section_u32(good, "csr_ptr", &nc);
    CHECK(ip && cp && ni >= 2 && nc >= 2);
    if (!ip || !cp || ni < 2 || nc < 2) {
      fm_free(ip);
      fm_free(cp);
      break;
    }
    memcpy(ip + ni - 2, &huge[h], 8);
    memcpy(cp + nc - 2, &huge[h], 8);
    fm_test_sec nz[6] = {{"inv_ptr", ip, (uint64_t)ni * 4}, {"csr_ptr", cp, (uint64_t)nc * 4},
                         {"inv_ref", "", 0}, {"inv_val", "", 0}, {"csr_col", "", 0},
                         {"csr_val", "", 0}};
    CHECK(resave_secs(good, bad, nz, h == 1 ? 2 : 6) == 0);
    CHECK(opens_corrupt(bad, "'inv_ref' has"));
    fm_free(ip);
    fm_free(cp);
  }
  /* "candidates" in the metadata sizes every matcher's buffers: 2^31 - 1
   * asked fm_matcher_new for ~110 GB (ASan aborts on it); the most a
   * config allows still opens */
  const sec *meta = find_sec("meta");
  const char *c64 = meta ? strstr((const char *)meta->p, "\"candidates\":64,") : NULL;
  CHECK(c64 != NULL);
  if (c64) {
    const char *vals[] = {"2147483647", "100001", "100000"};
    for (int v = 0; v < 3; v++) {
      char json[4096];
      size_t pre = (size_t)(c64 - (const char *)meta->p) + strlen("\"candidates\":");
      int n = snprintf(json, sizeof json, "%.*s%s%.*s", (int)pre, (const char *)meta->p,
                       vals[v], (int)(meta->len - pre - 2), (const char *)meta->p + pre + 2);
      CHECK(n > 0 && (size_t)n < sizeof json);
      fm_test_sec ms = {"meta", json, (uint64_t)n};
      CHECK(resave_secs(good, bad, &ms, 1) == 0);
      if (v < 2) {
        CHECK(opens_corrupt(bad, "'meta': candidates"));
        continue;
      }
      fm_error_init(&err);
      CHECK(fm_model_open(bad, &m, &err) == FM_OK);
      if (m) CHECK(exercise(m));
      fm_model_close(m);
    }
  }
  /* many sections: fm_mfile_open compared every tag with every earlier
   * one, so 100,000 empty sections (a 4 MB file) took ~10 s to refuse
   * and a 160 MB file hours; now a sort, milliseconds (the bound leaves
   * a wide margin for a slow or sanitized build) */
  for (int dup = 0; dup < 2; dup++) {
    CHECK(write_empty_sections(bad, 100000, dup) == 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(opens_corrupt(bad, dup ? "two sections 's0'" : "no section 'meta'"));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    /* The time is reported, not asserted (a busy machine must not fail a
     * test): an O(n^2) tag check shows as tens of seconds here. */
    double secs_taken = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    fprintf(stderr, "  100000 sections: %.2fs to refuse\n", secs_taken);
  }
  /* a weight in the metadata out of a config's range 0..100: 1e40 became
   * an infinite float weight (every score NaN or infinite), -1 or 101 a
   * scoring no config can ask for */
  const char *w1 = meta ? strstr((const char *)meta->p, "\"lsa\":1.0") : NULL;
  CHECK(w1 != NULL);
  const char *wvals[] = {"1e40", "-1", "101"};
  for (int v = 0; w1 && v < 3; v++) {
    char json[4096];
    size_t pre = (size_t)(w1 - (const char *)meta->p) + strlen("\"lsa\":");
    int n = snprintf(json, sizeof json, "%.*s%s%.*s", (int)pre, (const char *)meta->p, wvals[v],
                     (int)(meta->len - pre - 3), (const char *)meta->p + pre + 3);
    CHECK(n > 0 && (size_t)n < sizeof json);
    fm_test_sec ms = {"meta", json, (uint64_t)n};
    CHECK(resave_secs(good, bad, &ms, 1) == 0);
    CHECK(opens_corrupt(bad, "'meta': weight 'lsa'"));
  }
  /* a NaN or an infinity in any float section: scored as NaN (candidates
   * silently dropped) until validate() refused them */
  static const char *const fsecs[] = {"idf",   "inv_val", "csr_val", "qcsr_val",
                                      "lsa_v", "ref_emb", "prior",   "ref_order"};
  const float nonfinite[] = {NAN, INFINITY, -INFINITY};
  for (size_t i = 0; i < sizeof fsecs / sizeof *fsecs; i++) {
    size_t n;
    uint32_t *v = section_u32(good, fsecs[i], &n);
    CHECK(v && n > 0);
    if (v && n > 0) {
      memcpy(&v[n / 2], &nonfinite[i % 3], 4);
      char what[64];
      snprintf(what, sizeof what, "'%s': a value is not finite", fsecs[i]);
      CHECK(resave_with(good, bad, fsecs[i], v, n) == 0);
      CHECK(opens_corrupt(bad, what));
    }
    fm_free(v);
  }
}

static int train_tiny(const char *out) {
  fm_error err;
  fm_error_init(&err);
  fm_config *c = NULL;
  fm_model *m = NULL;
  fm_rc rc = fm_config_load(TINY, &c, &err);
  fm_train_input in = {.config = c, .quiet = 1, .output = out};
  if (rc == FM_OK) rc = fm_train(&in, &m, &err);
  if (rc) fprintf(stderr, "  train: %s\n", err.msg);
  fm_model_close(m);
  fm_config_free(c);
  return rc ? -1 : 0;
}

static const char *good_path;
static void run_fuzz(void) { test_fuzz(good_path); }
static void run_regressions(void) { test_regressions(good_path); }

int main(void) {
  if (scratch_make("fm_fuzz_")) return 1;
  good_path = getenv("FM_FUZZ_MODEL");
  if (!good_path || !*good_path) {
    good_path = tmp("good.fmm");
    CHECK(train_tiny(good_path) == 0);
  }
  CHECK(load_sections(good_path) == 0);
  FM_RUN(run_regressions);
  FM_RUN(run_fuzz);
  free_sections();
  scratch_remove();
  FM_TEST_EXIT();
}
