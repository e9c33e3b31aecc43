/* test_import_real.c: the importers on the real vendor dictionaries of the
 * shared folder (FM_SHARED): record counts, known records, timing.  Exits
 * 77 (skipped) when the shared folder or the files are absent. */
#include "fm_import.h"
#include "fm_test.h"
#include "fm_test_util.h"

typedef struct warn_log {
  int count;
  char last[FM_ERRMSG_MAX];
} warn_log;

static void capture_warn(void *ctx, const char *msg) {
  warn_log *w = ctx;
  w->count++;
  fprintf(stderr, "  warning: %s\n", msg);
  snprintf(w->last, sizeof w->last, "%s", msg);
}

static fm_source_spec spec_of(const char *format, const char *path) {
  fm_source_spec s = {0};
  s.vendor = "test";
  s.format = format;
  s.path = path;
  return s;
}


static void test_real(void) {
  const char *sh = fm_test_shared();
  if (!sh) {
    fprintf(stderr, "shared data absent: skipped\n");
    exit(77);
  }
  char p_rdm[4096], p_bbdl[4096], p_bbg[4096], p_fund[4096];
  snprintf(p_rdm, sizeof p_rdm,
           "%s/data/vendor/lseg-Example.EMA.Java.Kotlin/RDMFieldDictionary", sh);
  snprintf(p_bbdl, sizeof p_bbdl, "%s/data/vendor/bissli-bbdl/fields.csv", sh);
  snprintf(p_bbg, sizeof p_bbg,
           "%s/data/vendor/bautheac-BBGsymbols/fields.from_rda.csv", sh);
  snprintf(p_fund, sizeof p_fund,
           "%s/data/vendor/fintechsandbox-project-sandcastle/"
           "Fundamentals_Glossary_Parsed.from_xlsx.csv",
           sh);
  FILE *probe = fopen(p_rdm, "rb");
  if (!probe) {
    fprintf(stderr, "shared data absent: skipped\n");
    exit(77);
  }
  fclose(probe);

  fm_source_spec sp[4];
  sp[0] = spec_of("rdm", p_rdm);
  sp[0].vendor = "refinitiv";
  sp[1] = spec_of("bbdl", p_bbdl);
  sp[1].vendor = "bloomberg";
  sp[2] = spec_of("csv", p_bbg);
  sp[2].vendor = "bloomberg";
  sp[2].col_id = "symbol";
  sp[2].col_name = "name";
  sp[2].col_description = "description";
  sp[2].col_category = "book";
  sp[3] = spec_of("csv", p_fund);
  sp[3].vendor = "refinitiv";
  sp[3].col_id = "COA Code";
  sp[3].col_name = "Name";
  sp[3].col_description = "Definition";
  sp[3].col_type = "Data Type";
  static const size_t want_n[4] = {15085, 44823, 961, 1235};

  warn_log w = {0};
  fm_set_warn_handler(capture_warn, &w);
  fm_fieldset s[4];
  double t0 = fm_now();
  for (int i = 0; i < 4; i++) {
    fm_error err;
    fm_error_init(&err);
    fm_fieldset_init(&s[i]);
    fm_rc rc = fm_import_source(&sp[i], &s[i], &err);
    if (rc) fprintf(stderr, "  %s\n", err.msg);
    CHECK(rc == FM_OK);
  }
  double dt = fm_now() - t0;
  fm_set_warn_handler(NULL, NULL);
  fprintf(stderr, "  real files: rdm %zu, bbdl %zu, BBGsymbols %zu, "
                  "fundamentals %zu fields in %.3f s; %d warnings\n",
          s[0].n, s[1].n, s[2].n, s[3].n, dt, w.count);
  for (int i = 0; i < 4; i++) CHECK(s[i].n == want_n[i]);
  /* (no timed assertion: the import time is printed above; speed lives in
   * tests/bench/, and a busy machine must not fail this test) */

  {
    FIELD(&s[0], "TRDPRC_1", f);
    CHECK_STR(f->name, "LAST");
    CHECK_STR(f->description, "Last trade price or value.");
    CHECK_STR(f->type, "PRICE");
  }
  {
    FIELD(&s[0], "TRDPRC_3", f);
    CHECK_STR(f->description, "Previous last trade prices or values.");
  }
  {
    FIELD(&s[0], "NETCHNG_1", f);
    CHECK_STR(f->name, "NET CHANGE");
  }
  {
    FIELD(&s[0], "HIGH_1", f);
    CHECK_STR(f->name, "TODAY'S HIGH");
  }
  {
    FIELD(&s[0], "PROD_PERM", f);
    CHECK_STR(f->description, "Product permissions information.");
  }
  {
    FIELD(&s[1], "PX_LAST", f);
    CHECK(strncmp(f->category, "Pricing", 7) == 0);
    CHECK(strchr(f->category, ';') != NULL);
  }
  {
    FIELD(&s[2], "HISTORICAL_MARKET_CAP", f);
    CHECK_STR(f->name, "market capitalization");
    CHECK_STR(f->category, "key stats");
    CHECK(strncmp(f->description, "Total market value of all", 25) == 0);
    CHECK(strchr(f->description, '\n') == NULL);
  }
  {
    FIELD(&s[3], "RNTS", f);
    CHECK_STR(f->name, "Net Sales");
    CHECK_STR(f->type, "Income");
    CHECK(strncmp(f->description, "Net Sales [RNTS] represents", 27) == 0);
  }
  for (int i = 0; i < 4; i++) fm_fieldset_free(&s[i]);
}

int main(void) {
  FM_RUN(test_real);
  FM_TEST_EXIT();
}
