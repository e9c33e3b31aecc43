/* fm_test_fuzz.h: what the model-file fuzz tests share (test_fuzz_model.c,
 * the mutation fuzzer, and test_fuzz_regressions.c, the fixed checks for
 * the bugs it found): the model under test (FM_FUZZ_MODEL, or the tiny
 * fixture trained into the scratch directory) with its sections loaded
 * into memory, little-endian field access, recomputing every checksum of a
 * file image, and running every kind of lookup on a model that opened.
 * Header-only, like fm_test_util.h; include after fm_test.h and
 * fm_test_util.h. */
#ifndef FM_TEST_FUZZ_H
#define FM_TEST_FUZZ_H

#include "fm_model.h"
#include "fm_test.h"
#include "fm_test_util.h"
#include "fm_util.h"
#include "mfile.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FM_FUZZ_TINY "tests/data/model/tiny.json"

/* ---- the model under test, as sections ---------------------------------- */

typedef struct sec {
  char tag[FM_MFILE_TAG_MAX + 1];
  unsigned char *p;
  size_t len;
} sec;

static sec secs[64];
static size_t nsecs;

/* Copy every section of the model file at path into secs[].  0 on
 * success. */
static inline int load_sections(const char *path) {
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
  return 0;
}

static inline void free_sections(void) {
  for (size_t i = 0; i < nsecs; i++) fm_free(secs[i].p);
  nsecs = 0;
}

static inline sec *find_sec(const char *tag) {
  for (size_t i = 0; i < nsecs; i++)
    if (!strcmp(secs[i].tag, tag)) return &secs[i];
  return NULL;
}

/* Train the tiny fixture and write it to out.  0 on success. */
static inline int fuzz_train_tiny(const char *out) {
  fm_error err;
  fm_error_init(&err);
  fm_config *c = NULL;
  fm_model *m = NULL;
  fm_rc rc = fm_config_load(FM_FUZZ_TINY, &c, &err);
  fm_train_input in = {.config = c, .quiet = 1, .output = out};
  if (rc == FM_OK) rc = fm_train(&in, &m, &err);
  if (rc) fprintf(stderr, "  train: %s\n", err.msg);
  fm_model_close(m);
  fm_config_free(c);
  return rc ? -1 : 0;
}

/* The model file the tests start from, its sections loaded into secs[]:
 * FM_FUZZ_MODEL when set, else the tiny fixture trained to the scratch
 * file good.fmm (call after scratch_make).  Failures are counted checks. */
static inline const char *fuzz_good_model(void) {
  const char *good = getenv("FM_FUZZ_MODEL");
  if (!good || !*good) {
    good = tmp("good.fmm");
    CHECK(fuzz_train_tiny(good) == 0);
  }
  CHECK(load_sections(good) == 0);
  return good;
}

/* ---- file image fields and checksums (docs/model-format.md) ------------- */

static inline void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static inline uint32_t get32(const unsigned char *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static inline uint64_t get64(const unsigned char *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

/* Recompute every checksum of the file image b[0..n) (docs/model-format.md)
 * as far as its header and table let one: each section's CRC when its
 * bounds are inside the file, then the file CRC and the header CRC. */
static inline void fix_crcs(unsigned char *b, size_t n) {
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

/* ---- exercising a model that opened ------------------------------------- */

static inline size_t touch(const char *s) { return s ? strlen(s) : 0; }

static inline size_t touch_field(const fm_field *f) {
  return touch(f->vendor) + touch(f->id) + touch(f->name) + touch(f->description) +
         touch(f->type) + touch(f->category) + touch(f->source);
}

/* Candidates are in range and sorted best first (NaN scores never get
 * there: the heaps drop them). */
static inline int sane(const fm_model *m, const fm_candidate *c, int n, int k) {
  if (n < 0 || n > k) return 0;
  for (int i = 0; i < n; i++) {
    if (c[i].ref >= fm_model_nrefs(m) || c[i].score != c[i].score) return 0;
    if (i && c[i].score > c[i - 1].score) return 0;
  }
  return 1;
}

/* Every kind of lookup on m; 1 when each answered sanely. */
static inline int exercise(fm_model *m) {
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

#endif
