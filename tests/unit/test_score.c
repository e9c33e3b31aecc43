/* test_score.c: the score's parts end to end, each on a small fixture
 * written here and trained from JSON: the position prior of an
 * "order_prior" source, numbered copies (NETCHNG_2 after NETCHNG_1) and
 * code ids kept out of the title ("id_is_code"), the residual-item penalty
 * ("Other ...") and the date-type penalty.  Each part is checked against
 * the same model with its weight 0: it moves exactly the candidates it
 * names, by exactly its weight, and survives the model file. */
#include "fm_model.h"
#include "fm_test.h"
#include "fm_test_util.h"
#include "fm_test_train.h"
#include "model_internal.h" /* fm_type_qual, FM_QUAL_* */

#include <math.h>

/* 1 when both models of a with/without pair trained; else closes the one
 * that did (the failure is already counted) and returns 0. */
static int both_trained(fm_model *m, fm_model *m0) {
  if (m && m0) return 1;
  fm_model_close(m);
  fm_model_close(m0);
  return 0;
}

/* ---- the position prior, end to end --------------------------------------- */

/* Four references with the same text in an "order_prior" source (when
 * `ordered`), and one more in a source without it.  The category prior is
 * off: its self-training sees the position prior, so it would differ
 * between the ordered and unordered models.  So is the LSA cosine: the
 * references differ only by their ids, and the second singular vector is
 * an arbitrary pick among four equal singular values, which moves with any
 * change of the SVD's arithmetic.  Caller owns the model;
 * NULL on failure (counted). */
static fm_model *train_order(int ordered, double w_order) {
  CHECK(write_text(tmp("ord-refs.jsonl"),
                   "{\"id\": \"PCA\", \"name\": \"percent change\"}\n"
                   "{\"id\": \"PCB\", \"name\": \"percent change\"}\n"
                   "{\"id\": \"PCC\", \"name\": \"percent change\"}\n"
                   "{\"id\": \"PCD\", \"name\": \"percent change\"}\n") == 0);
  CHECK(write_text(tmp("ord-other.jsonl"), "{\"id\": \"PCE\", \"name\": \"percent change\"}\n") == 0);
  CHECK(write_text(tmp("ord-q.jsonl"), "{\"id\": \"CHG_PCT\", \"name\": \"percent change\"}\n") == 0);
  char refs[256], model[128];
  snprintf(refs, sizeof refs,
           "[{\"vendor\": \"r\", \"format\": \"jsonl\", \"path\": \"ord-refs.jsonl\", \"order_prior\": %s},"
           " {\"vendor\": \"r\", \"format\": \"jsonl\", \"path\": \"ord-other.jsonl\"}]",
           ordered ? "true" : "false");
  snprintf(model, sizeof model, "{\"dims\": 2, \"weights\": {\"order\": %g, \"prior\": 0, \"lsa\": 0}}",
           w_order);
  return train_json("ord", refs, "[{\"vendor\": \"b\", \"format\": \"jsonl\", \"path\": \"ord-q.jsonl\"}]",
                    model, 0);
}

static void test_order_prior(void) {
  fm_model *m = train_order(1, 1.0), *m0 = train_order(0, 1.0);
  if (!both_trained(m, m0)) return;
  /* the expected prior: 1 - log(1 + i) / log(1 + n), centered on the source */
  double want[4], mean = 0;
  for (int i = 0; i < 4; i++) mean += (want[i] = 1 - log1p(i + 1.0) / log1p(4.0)) / 4;
  fm_candidate c[8], c0[8];
  int n = rank(m, "CHG_PCT", c, 8), n0 = rank(m0, "CHG_PCT", c0, 8);
  CHECK(n == 5 && n0 == 5);
  /* the ordered source in file order, first first */
  static const char *const order[] = {"PCA", "PCB", "PCC", "PCD"};
  int seen = 0;
  for (int i = 0; i < n; i++) {
    const char *id = ref_id(m, &c[i]);
    if (!strcmp(id, "PCE")) {
      CHECK(c[i].s_order == 0); /* not an ordered source */
      continue;
    }
    CHECK_STR(id, order[seen]);
    CHECK(fabs(c[i].s_order - (want[seen] - mean)) < 1e-6);
    seen++;
  }
  CHECK(seen == 4);
  /* without the flag the prior is 0, and the flag adds exactly
   * w_order * s_order to each score */
  int matched = 0;
  for (int i = 0; i < n0; i++) {
    CHECK(c0[i].s_order == 0);
    for (int j = 0; j < n; j++)
      if (c[j].ref == c0[i].ref) {
        matched++;
        CHECK(fabsf(c[j].score - c0[i].score - c[j].s_order) < 1e-5f);
      }
  }
  CHECK(matched == 5);
  /* the prior survives the model file */
  const char *p = tmp("ord.fmm");
  fm_error err;
  fm_error_init(&err);
  fm_model *l = NULL;
  CHECK(fm_model_write(m, p, &err) == FM_OK);
  CHECK(fm_model_open(p, &l, &err) == FM_OK);
  if (l) {
    fm_candidate cl[8];
    int nl = rank(l, "CHG_PCT", cl, 8);
    CHECK(nl == n);
    for (int i = 0; i < nl && i < n; i++)
      CHECK(cl[i].ref == c[i].ref && cl[i].s_order == c[i].s_order && cl[i].score == c[i].score);
    fm_model_close(l);
  }
  fm_model_close(m);
  /* weight 0 turns it off: the scores of the model without the flag */
  m = train_order(1, 0);
  if (m) {
    n = rank(m, "CHG_PCT", c, 8);
    CHECK(n == n0);
    for (int i = 0; i < n && i < n0; i++) CHECK(c[i].ref == c0[i].ref && c[i].score == c0[i].score);
    fm_model_close(m);
  }
  fm_model_close(m0);
}

/* ---- numbered copies and code ids, end to end ------------------------------ */

/* Train a small jsonl fixture; id_is_code marks the second reference
 * source.  Caller owns the model; NULL on failure (counted). */
static fm_model *train_variants(int id_is_code, double w_variant) {
  CHECK(write_text(tmp("var-refs.jsonl"),
                   "{\"id\": \"NETCHNG_1\", \"name\": \"NET CHANGE\"}\n"
                   "{\"id\": \"NETCHNG_2\", \"name\": \"NET CHANGE\"}\n"
                   "{\"id\": \"NETCHNG_3\", \"name\": \"NET CHANGE\"}\n"
                   "{\"id\": \"TRDPRC_1\", \"name\": \"LAST\"}\n"
                   "{\"id\": \"VOLUME_2\", \"name\": \"VOLUME\"}\n"
                   "{\"id\": \"BID\", \"name\": \"BID\"}\n") == 0);
  CHECK(write_text(tmp("var-codes.jsonl"),
                   "{\"id\": \"QZXW\", \"name\": \"Total Revenue\"}\n"
                   "{\"id\": \"QZXV\", \"name\": \"Net Income\"}\n") == 0);
  CHECK(write_text(tmp("var-q.jsonl"),
                   "{\"id\": \"CHG_NET\", \"name\": \"net change\"}\n"
                   "{\"id\": \"CHG_NET_2\", \"name\": \"net change\"}\n"
                   "{\"id\": \"TOTAL_REVENUE\", \"name\": \"total revenue\"}\n"
                   "{\"id\": \"PX_VOLUME\", \"name\": \"volume\"}\n") == 0);
  char refs[256], model[128];
  snprintf(refs, sizeof refs,
           "[{\"vendor\": \"r\", \"format\": \"jsonl\", \"path\": \"var-refs.jsonl\"},"
           " {\"vendor\": \"r\", \"format\": \"jsonl\", \"path\": \"var-codes.jsonl\", \"id_is_code\": %s}]",
           id_is_code ? "true" : "false");
  snprintf(model, sizeof model, "{\"dims\": 2, \"weights\": {\"variant\": %g}}", w_variant);
  return train_json("var", refs, "[{\"vendor\": \"b\", \"format\": \"jsonl\", \"path\": \"var-q.jsonl\"}]",
                    model, 0);
}

/* ---- residual items ("Other ...") --------------------------------------- */

/* A cash-flow statement's residual line, its total, a "Misc." line and an
 * interest line, against queries that do and do not name a residual item
 * (and one that says "oth", which the curated table expands to "other").
 * The prior is off, so the scores of the two models differ by the residual
 * term alone. */
/* Train the scratch fixture name: references and queries are JSON Lines
 * texts, the prior is off and weight key is w, the references' ids are
 * codes when id_is_code.  Caller owns the model; NULL on failure
 * (counted). */
static fm_model *train_penalty(const char *name, const char *refs, const char *queries,
                               const char *key, double w, int id_is_code) {
  char rf[64], qf[64], rsrc[192], qsrc[128], model[128];
  snprintf(rf, sizeof rf, "%s-refs.jsonl", name);
  snprintf(qf, sizeof qf, "%s-q.jsonl", name);
  CHECK(write_text(tmp(rf), refs) == 0);
  CHECK(write_text(tmp(qf), queries) == 0);
  snprintf(rsrc, sizeof rsrc, "[{\"vendor\": \"r\", \"format\": \"jsonl\", \"path\": \"%s\", \"id_is_code\": %s}]",
           rf, id_is_code ? "true" : "false");
  snprintf(qsrc, sizeof qsrc, "[{\"vendor\": \"b\", \"format\": \"jsonl\", \"path\": \"%s\"}]", qf);
  snprintf(model, sizeof model, "{\"dims\": 2, \"weights\": {\"prior\": 0, \"%s\": %g}}", key, w);
  return train_json(name, rsrc, qsrc, model, 0);
}

static fm_model *train_residual(double w_other) {
  return train_penalty("res",
                       "{\"id\": \"FFCF\", \"name\": \"Other Financing Cash Flow\"}\n"
                       "{\"id\": \"FTLF\", \"name\": \"Cash From Financing Activities\"}\n"
                       "{\"id\": \"MSCI\", \"name\": \"Miscellaneous Income\"}\n"
                       "{\"id\": \"IINC\", \"name\": \"Interest Income\"}\n",
                       "{\"id\": \"OTHER_FINANCING_ACTIVITIES\", \"name\": \"other financing activities\"}\n"
                       "{\"id\": \"TOT_CASH_FROM_FINANCING\", \"name\": \"total cash from financing\"}\n"
                       "{\"id\": \"OTH_INCOME\", \"name\": \"\"}\n",
                       "other", w_other, 1);
}

/* One penalty flag of a candidate: s_date when date, else s_other. */
static float pen_flag(const fm_candidate *c, int date) { return date ? c->s_date : c->s_other; }

/* The penalty flag (pen_flag) of each candidate of query id: want[] lists
 * "REF=flag" pairs.  Against the same candidates under m0, which differs
 * from m only in that penalty's weight (w in m, 0 in m0), each score must
 * be w * flag lower.  Returns the top id. */
static const char *check_penalty(fm_model *m, fm_model *m0, const char *id, float w,
                                 const char *const *want, int nwant, int date) {
  fm_candidate c[8], c0[8];
  int n = rank(m, id, c, 8), n0 = rank(m0, id, c0, 8);
  CHECK(n >= 2 && n == n0);
  for (int i = 0; i < n; i++) {
    const char *r = ref_id(m, &c[i]);
    for (int j = 0; j < nwant; j++)
      if (!strncmp(want[j], r, strlen(r)) && want[j][strlen(r)] == '=')
        CHECK(pen_flag(&c[i], date) == (float)(want[j][strlen(r) + 1] - '0'));
    for (int j = 0; j < n0; j++)
      if (c0[j].ref == c[i].ref) {
        CHECK(pen_flag(&c0[j], date) == pen_flag(&c[i], date));
        CHECK(fabsf(c0[j].score - c[i].score - w * pen_flag(&c[i], date)) < 1e-5f);
      }
  }
  return n ? ref_id(m, &c[0]) : "";
}

static void test_residual_items(void) {
  fm_model *m = train_residual(1), *m0 = train_residual(0);
  if (!both_trained(m, m0)) return;
  /* the weight is stored in the model file and read back */
  fm_error err;
  fm_error_init(&err);
  fm_model *back = NULL;
  CHECK(fm_model_write(m, tmp("res.fmm"), &err) == FM_OK);
  CHECK(fm_model_open(tmp("res.fmm"), &back, &err) == FM_OK);
  if (back) {
    fm_model_close(m);
    m = back;
  }
  static const char *const fin_other[] = {"FFCF=0", "FTLF=1", "MSCI=0", "IINC=1"};
  static const char *const fin_total[] = {"FFCF=1", "FTLF=0", "MSCI=1", "IINC=0"};
  /* "other financing activities" shares two words with each cash-flow
   * line; without the penalty the total, whose title is shorter, wins;
   * with it the residual line does */
  CHECK_STR(check_penalty(m, m0, "OTHER_FINANCING_ACTIVITIES", 1, fin_other, 4, 0), "FFCF");
  CHECK_STR(check_penalty(m0, m0, "OTHER_FINANCING_ACTIVITIES", 0, fin_other, 4, 0), "FTLF");
  /* and the total is not the residual line */
  CHECK_STR(check_penalty(m, m0, "TOT_CASH_FROM_FINANCING", 1, fin_total, 4, 0), "FTLF");
  /* "oth" (curated: other) and "Miscellaneous" both name a residual item */
  CHECK_STR(check_penalty(m, m0, "OTH_INCOME", 1, fin_other, 4, 0), "MSCI");
  /* a mnemonic the model has never seen is encoded afresh, same flags */
  CHECK_STR(check_penalty(m, m0, "OTHER_FINANCING_ACTIVITY_X", 1, fin_other, 4, 0), "FFCF");
  fm_model_close(m);
  fm_model_close(m0);
}

/* ---- date and time types --------------------------------------------- */

/* A date, the value it dates, an untyped field and a timestamp, against
 * queries typed as a date, as a price, and not at all.  Only the date
 * weight differs between the two models. */
static fm_model *train_dates(double w_date) {
  return train_penalty("date",
                       "{\"id\": \"52W_HDAT\", \"name\": \"52 WK HIGH DATE\", \"type\": \"DATE\"}\n"
                       "{\"id\": \"52WK_HIGH\", \"name\": \"52 WEEK HIGH\", \"type\": \"PRICE\"}\n"
                       "{\"id\": \"HIGH_52W\", \"name\": \"HIGH 52 WEEK\"}\n"
                       "{\"id\": \"HIGH_TS\", \"name\": \"HIGH 52 WEEK TIME\", \"type\": \"TIMESTAMP\"}\n",
                       "{\"id\": \"HIGH_52WEEK_D\", \"name\": \"52 week high\", \"type\": \"Date\"}\n"
                       "{\"id\": \"HIGH_52WEEK_P\", \"name\": \"52 week high date\", \"type\": \"Price\"}\n"
                       "{\"id\": \"HIGH_52WEEK_U\", \"name\": \"52 week high\"}\n",
                       "date", w_date, 0);
}

/* 1-based rank of reference ref among query id's top 8, or 99. */
static int rank_of(fm_model *m, const char *id, const char *ref) {
  fm_candidate c[8];
  int n = rank(m, id, c, 8);
  for (int i = 0; i < n; i++)
    if (!strcmp(ref_id(m, &c[i]), ref)) return i + 1;
  return 99;
}

static void test_date_types(void) {
  fm_model *m = train_dates(2), *m0 = train_dates(0);
  if (!both_trained(m, m0)) return;
  /* a date query: the value it dates is scored down, the untyped field is
   * not, and a timestamp is a date or a time too */
  static const char *const dq[] = {"52W_HDAT=0", "52WK_HIGH=1", "HIGH_52W=0", "HIGH_TS=0"};
  check_penalty(m, m0, "HIGH_52WEEK_D", 2, dq, 4, 1);
  /* ... so the date now ranks above the value, which won without it */
  CHECK(rank_of(m, "HIGH_52WEEK_D", "52W_HDAT") < rank_of(m, "HIGH_52WEEK_D", "52WK_HIGH"));
  CHECK(rank_of(m0, "HIGH_52WEEK_D", "52W_HDAT") > rank_of(m0, "HIGH_52WEEK_D", "52WK_HIGH"));
  /* a price query: the date and the timestamp are scored down, even though
   * its name says "date" (the type decides, not the words) */
  static const char *const pq[] = {"52W_HDAT=1", "52WK_HIGH=0", "HIGH_52W=0", "HIGH_TS=1"};
  check_penalty(m, m0, "HIGH_52WEEK_P", 2, pq, 4, 1);
  /* an untyped query: no penalty at all */
  static const char *const uq[] = {"52W_HDAT=0", "52WK_HIGH=0", "HIGH_52W=0", "HIGH_TS=0"};
  check_penalty(m, m0, "HIGH_52WEEK_U", 2, uq, 4, 1);
  /* which vendor types are dates or times */
  static const struct { const char *type; unsigned want; } types[] = {
      {"DATE", FM_QUAL_TYPED | FM_QUAL_TIME}, {"Date or Time", FM_QUAL_TYPED | FM_QUAL_TIME},
      {"TIMESTAMP", FM_QUAL_TYPED | FM_QUAL_TIME}, {"datetime", FM_QUAL_TYPED | FM_QUAL_TIME},
      {"TIME", FM_QUAL_TYPED | FM_QUAL_TIME}, {"PRICE", FM_QUAL_TYPED}, {"Real", FM_QUAL_TYPED},
      {"Dat", FM_QUAL_TYPED}, {"", 0}, {NULL, 0}};
  for (size_t i = 0; i < sizeof types / sizeof *types; i++)
    CHECK(fm_type_qual(types[i].type) == types[i].want);
  fm_model_close(m);
  fm_model_close(m0);
}

static void test_variants_and_codes(void) {
  fm_candidate c[8], c0[8];
  fm_model *m0 = train_variants(1, 0);
  fm_model *m = train_variants(1, 0.2);
  if (!both_trained(m, m0)) return;
  /* NETCHNG_2/_3 copy NETCHNG_1: flagged, ranked after it, and scored
   * w_variant below what they score without the penalty */
  int n = rank(m, "CHG_NET", c, 8);
  int n0 = rank(m0, "CHG_NET", c0, 8);
  CHECK(n >= 3 && n == n0);
  CHECK_STR(ref_id(m, &c[0]), "NETCHNG_1");
  CHECK(c[0].s_variant == 0);
  int copies = 0;
  for (int i = 0; i < n; i++) {
    const char *id = ref_id(m, &c[i]);
    int copy = !strcmp(id, "NETCHNG_2") || !strcmp(id, "NETCHNG_3");
    copies += copy;
    CHECK(c[i].s_variant == (float)copy);
    for (int j = 0; j < n0; j++)
      if (c0[j].ref == c[i].ref) CHECK(fabsf(c0[j].score - c[i].score - 0.2f * (float)copy) < 1e-5f);
  }
  CHECK(copies == 2);
  fm_model_close(m0);
  /* a numbered query asks for a numbered copy: no penalty at all */
  n = rank(m, "CHG_NET_2", c, 8);
  for (int i = 0; i < n; i++) CHECK(c[i].s_variant == 0);
  /* VOLUME_2 has no VOLUME / VOLUME_1 beside it: not a copy */
  n = rank(m, "PX_VOLUME", c, 8);
  CHECK(n >= 1);
  CHECK_STR(ref_id(m, &c[0]), "VOLUME_2");
  CHECK(c[0].s_variant == 0);
  /* the code id is out of the title: the name alone meets the query's */
  n = rank(m, "TOTAL_REVENUE", c, 8);
  CHECK(n >= 1);
  CHECK_STR(ref_id(m, &c[0]), "QZXW");
  float with_code_out = n ? c[0].s_title : 0;
  CHECK(with_code_out > 0.99f);
  fm_model_close(m);
  /* the same without id_is_code: the code dilutes the title */
  m = train_variants(0, 0.2);
  if (!m) return;
  n = rank(m, "TOTAL_REVENUE", c, 8);
  CHECK(n >= 1);
  CHECK_STR(ref_id(m, &c[0]), "QZXW");
  CHECK(n && c[0].s_title < with_code_out - 0.1f);
  fm_model_close(m);
}

int main(void) {
  if (scratch_make("fm_score_")) return 1;
  FM_RUN(test_order_prior);
  FM_RUN(test_variants_and_codes);
  FM_RUN(test_residual_items);
  FM_RUN(test_date_types);
  scratch_remove();
  FM_TEST_EXIT();
}
