/* test_eval.c: evaluation against gold pairs on the tiny fixture
 * (tests/data/model): the metrics and their order (top-1 <= R@5 <= R@10,
 * MRR between), per-query details, the training-overlap detector, gold
 * queries and answers the model does not know, argument errors, an empty
 * gold, the same figures from a model file, and k-fold cross-validation
 * (deterministic; fold counts refused). */
#include "fm_model.h"
#include "fm_test.h"
#include "fm_test_util.h"
#include "fm_test_train.h"

#define D "tests/data/model/"
#define TINY FM_TEST_TINY
#define GOLD D "tiny-gold.tsv"
#define TRAIN D "tiny-train.tsv"
#define NGOLDQ 14 /* distinct queries of tiny-gold.tsv (15 rows) */

/* ---- evaluation ------------------------------------------------------------- */

static void check_sane(const fm_eval_result *r) {
  CHECK(r->top1 >= 0 && r->top1 <= 1);
  CHECK(r->recall_at_5 >= 0 && r->recall_at_5 <= 1);
  CHECK(r->recall_at_10 >= 0 && r->recall_at_10 <= 1);
  CHECK(r->mrr_at_10 >= 0 && r->mrr_at_10 <= 1);
  CHECK(r->top1 <= r->recall_at_5 && r->recall_at_5 <= r->recall_at_10);
  CHECK(r->top1 <= r->mrr_at_10 + 1e-12 && r->mrr_at_10 <= r->recall_at_10 + 1e-12);
}

static void test_eval(void) {
  fm_model *m = train_tiny(0, 0);
  if (!m) return;
  fm_error err;
  fm_error_init(&err);
  fm_pairs gold, train;
  fm_pairs_init(&gold);
  fm_pairs_init(&train);
  CHECK(fm_pairs_load(GOLD, &gold, &err) == FM_OK);
  CHECK(fm_pairs_load(TRAIN, &train, &err) == FM_OK);
  CHECK(gold.n == 15);
  fm_eval_result r;
  fm_eval_query *d = NULL;
  size_t nd = 0;
  CHECK(fm_eval(m, &gold, &r, &d, &nd, &err) == FM_OK);
  CHECK(r.queries == NGOLDQ);
  CHECK(r.missing_queries == 0);
  CHECK(r.missing_refs == 0);
  check_sane(&r);
  CHECK(r.recall_at_10 >= 0.7); /* a tiny, easy fixture */
  CHECK(nd == NGOLDQ);
  for (size_t i = 0; d && i < nd; i++) {
    CHECK(d[i].qindex >= 0);
    CHECK(d[i].rank >= 0 && d[i].rank <= 10);
    CHECK(d[i].ntop > 0 && d[i].ntop <= 10);
    CHECK(sorted_desc(d[i].top, d[i].ntop));
  }
  if (d) {
    CHECK_STR(d[0].query, "PX_BID");
    CHECK_STR(d[2].query, "PX_LAST"); /* two acceptable answers, one entry */
    CHECK_STR(d[3].query, "CHG_NET_1D");
  }
  fm_free(d);

  /* the training-overlap detector: the gold was not trained on, the
   * training file was (every pair) */
  CHECK(fm_model_train_overlap(m, &gold) == 0);
  CHECK(fm_model_train_overlap(m, &train) == train.n);
  CHECK(train.n == 7);
  CHECK(fm_eval(m, &train, &r, NULL, NULL, &err) == FM_OK);
  CHECK(r.queries == 7);
  check_sane(&r);

  /* gold queries and answers the model does not know are counted apart */
  const char *odd = tmp("odd-gold.tsv");
  CHECK(write_text(odd, "q\tr\nNOT_A_FIELD\tBID\nPX_BID\tBID\nPX_ASK\tNOT_A_REF\n") == 0);
  fm_pairs og;
  fm_pairs_init(&og);
  CHECK(fm_pairs_load(odd, &og, &err) == FM_OK);
  CHECK(fm_eval(m, &og, &r, &d, &nd, &err) == FM_OK);
  CHECK(r.queries == 2);
  CHECK(r.missing_queries == 1);
  CHECK(r.missing_refs == 1);
  check_sane(&r);
  CHECK(nd == 3);
  if (d && nd == 3) CHECK(d[0].qindex == -1 && d[0].rank == 0);
  CHECK(r.recall_at_10 <= 0.5 + 1e-9); /* PX_ASK's answer cannot be found */
  fm_free(d);
  fm_pairs_free(&og);

  /* details without a place for their count is refused, not a crash */
  d = NULL;
  CHECK(fm_eval(m, &gold, &r, &d, NULL, &err) == FM_ERR_ARG);
  CHECK(d == NULL);
  CHECK(strstr(err.msg, "ndetails") != NULL);

  /* an empty gold: zero queries, zero metrics */
  fm_pairs empty;
  fm_pairs_init(&empty);
  CHECK(fm_eval(m, &empty, &r, NULL, NULL, &err) == FM_OK);
  CHECK(r.queries == 0 && r.top1 == 0);
  CHECK(fm_model_train_overlap(m, &empty) == 0);

  /* a loaded model: same figures, same overlap */
  CHECK(fm_model_write(m, tmp("eval.fmm"), &err) == FM_OK);
  fm_model *l = NULL;
  CHECK(fm_model_open(tmp("eval.fmm"), &l, &err) == FM_OK);
  if (l) {
    fm_eval_result a, b;
    CHECK(fm_eval(m, &gold, &a, NULL, NULL, &err) == FM_OK);
    CHECK(fm_eval(l, &gold, &b, NULL, NULL, &err) == FM_OK);
    CHECK(a.queries == b.queries);
    CHECK_NEAR(a.top1, b.top1, 1e-12);
    CHECK_NEAR(a.mrr_at_10, b.mrr_at_10, 1e-12);
    CHECK(fm_model_train_overlap(l, &train) == train.n);
    CHECK(fm_model_train_overlap(l, &gold) == 0);
    fm_model_close(l);
  }
  fm_pairs_free(&gold);
  fm_pairs_free(&train);
  fm_model_close(m);
}

static void test_eval_cv(void) {
  fm_error err;
  fm_error_init(&err);
  fm_config *c = NULL;
  CHECK(fm_config_load(TINY, &c, &err) == FM_OK);
  if (!c) return;
  fm_pairs gold;
  fm_pairs_init(&gold);
  CHECK(fm_pairs_load(GOLD, &gold, &err) == FM_OK);
  fm_eval_result r;
  fm_rc rc = fm_eval_cv(c, &gold, 2, 1, &r, &err);
  CHECK(rc == FM_OK);
  if (rc) fprintf(stderr, "  cv: %s\n", err.msg);
  CHECK(r.queries == NGOLDQ);
  CHECK(r.missing_queries == 0);
  check_sane(&r);
  /* deterministic */
  fm_eval_result r2;
  CHECK(fm_eval_cv(c, &gold, 2, 1, &r2, &err) == FM_OK);
  CHECK(r2.top1 == r.top1 && r2.mrr_at_10 == r.mrr_at_10);
  /* more folds than queries, or fewer than two: argument errors */
  fm_error_init(&err);
  CHECK(fm_eval_cv(c, &gold, NGOLDQ + 1, 1, &r, &err) == FM_ERR_ARG);
  CHECK(strstr(err.msg, "folds") != NULL);
  fm_error_init(&err);
  CHECK(fm_eval_cv(c, &gold, 1, 1, &r, &err) == FM_ERR_ARG);
  fm_pairs_free(&gold);
  fm_config_free(c);
}

int main(void) {
  if (scratch_make("fm_eval_")) return 1;
  FM_RUN(test_eval);
  FM_RUN(test_eval_cv);
  scratch_remove();
  FM_TEST_EXIT();
}
