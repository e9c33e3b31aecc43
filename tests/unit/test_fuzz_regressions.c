/* test_fuzz_regressions.c: the fixed regression checks of the model-file
 * fuzzer (test_fuzz_model.c), one or more per bug it (or reading the
 * loader) found: files with every checksum right and contents that
 * fm_model_open once mishandled (a lookup out of bounds, a wrong error, a
 * read past a section, absurd memory or time), each now refused at open
 * with FM_ERR_CORRUPT and a message naming the file and what is wrong, or
 * read right.  Grouped by what they check: an entry of a table (a
 * reference's kind, abbreviation lines), non-zero counts whose byte size
 * wraps around, numbers in the JSON metadata, a huge section table, and
 * non-finite floats.
 *
 * The model is the tiny fixture (tests/data/model), trained at the start,
 * or the file FM_FUZZ_MODEL names (as for test_fuzz_model.c; the metadata
 * checks expect the fixture's "candidates":64 and "lsa":1.0). */
#include "fm_model.h"
#include "fm_test.h"
#include "fm_test_fuzz.h"
#include "fm_test_mfile.h"
#include "fm_test_util.h"
#include "mfile.h"
#include "model_internal.h" /* the loaded abbreviation table */

#include <stdint.h>
#include <time.h>

/* The model file under test (fuzz_good_model). */
static const char *good;

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

/* An entry of a table: a reference's kind, abbreviation lines. */
static void test_entries(void) {
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
}

/* Non-zeros whose byte count wraps around: inv_ptr and csr_ptr ending at
 * 2^62 (or at UINT64_MAX, once get_sec's "any length" marker) with the
 * four non-zero sections empty matched 2^62 * 4 = 0 bytes, and validate()
 * then walked 2^62 inv_ref entries off the mapping. */
static void test_wrapping_sizes(void) {
  const char *bad = tmp("regression.fmm");
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
}

/* Numbers in the JSON metadata out of a config's range. */
static void test_meta_numbers(void) {
  const char *bad = tmp("regression.fmm");
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
      fm_model *m = NULL;
      fm_error err;
      fm_error_init(&err);
      CHECK(fm_model_open(bad, &m, &err) == FM_OK);
      if (m) CHECK(exercise(m));
      fm_model_close(m);
    }
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
}

/* Many sections: fm_mfile_open compared every tag with every earlier one,
 * so 100,000 empty sections (a 4 MB file) took ~10 s to refuse and a
 * 160 MB file hours; now a sort, milliseconds (the bound leaves a wide
 * margin for a slow or sanitized build). */
static void test_many_sections(void) {
  const char *bad = tmp("regression.fmm");
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
}

/* A NaN or an infinity in any float section: scored as NaN (candidates
 * silently dropped) until validate() refused them. */
static void test_nonfinite(void) {
  const char *bad = tmp("regression.fmm");
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

int main(void) {
  if (scratch_make("fm_fuzz_")) return 1;
  good = fuzz_good_model();
  FM_RUN(test_entries);
  FM_RUN(test_wrapping_sizes);
  FM_RUN(test_meta_numbers);
  FM_RUN(test_many_sections);
  FM_RUN(test_nonfinite);
  free_sections();
  scratch_remove();
  FM_TEST_EXIT();
}
