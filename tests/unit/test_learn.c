/* test_learn.c: the learning layer (src/model/learn.c) and the analyst
 * simulation (src/model/simulate.c) on the fixture tests/data/learn: a
 * glossary where every total has a "Supplemental" twin, and Bloomberg-like
 * "XR_" fields whose answer is the twin. */
#include "fm_model.h"
#include "fm_test.h"
#include "fm_test_util.h"

#include <math.h>
#include <string.h>

#define CONF "tests/data/learn/learn.json"
#define GOLD "tests/data/learn/gold.tsv"

/* The fixture's model, trained with the config's own pairs, or with
 * `pairs` when not NULL; written to `output` too when not NULL. */
static fm_model *train_fixture_with(const fm_pairs *pairs, const char *output) {
  fm_error err;
  fm_error_init(&err);
  fm_config *c = NULL;
  fm_model *m = NULL;
  if (fm_config_load(CONF, &c, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    return NULL;
  }
  fm_train_input in = {.config = c, .quiet = 1, .pairs_override = pairs,
                       .use_pairs_override = pairs != NULL, .output = output};
  if (fm_train(&in, &m, &err)) fprintf(stderr, "%s\n", err.msg);
  fm_config_free(c);
  return m;
}

static fm_model *train_fixture(void) { return train_fixture_with(NULL, NULL); }

/* Rank of reference `ref` for query `q` (1-based; 0 when not in the top k),
 * and its score into *score (optional). */
static int rank_of(fm_matcher *mt, const fm_model *m, const fm_learn *L, const char *q,
                   const char *ref, float *score) {
  fm_candidate c[10];
  int n = 0;
  fm_error err;
  fm_error_init(&err);
  if (fm_match_learned(mt, L, q, NULL, 10, c, &n, &err)) return -1;
  for (int i = 0; i < n; i++) {
    fm_field f;
    fm_model_ref(m, c[i].ref, &f);
    if (!strcmp(f.id, ref)) {
      if (score) *score = c[i].score;
      return i + 1;
    }
  }
  return 0;
}

/* No layer, an empty one, or one of another model: exactly fm_match,
 * bit for bit (test_match_golden's figures stand). */
static void test_empty_is_noop(void) {
  fm_model *m = train_fixture(), *m2 = train_fixture();
  CHECK(m && m2);
  if (!m || !m2) return;
  fm_error err;
  fm_error_init(&err);
  fm_learn *E = NULL, *other = NULL;
  CHECK(fm_learn_build(m, NULL, 0, NULL, &E, &err) == FM_OK);
  fm_learn_pair p = {"XR_TOT_ASSETS", "SUPA", FM_LEARN_ACCEPT};
  CHECK(fm_learn_build(m2, &p, 1, NULL, &other, &err) == FM_OK);
  fm_matcher *mt;
  CHECK(fm_matcher_new(m, &mt, &err) == FM_OK);
  for (size_t qi = 0; qi < fm_model_nqueries(m); qi++) {
    fm_field q;
    fm_model_query(m, qi, &q);
    fm_candidate a[5], b[5], c[5], d[5];
    int na = 0, nb = 0, nc = 0, nd = 0;
    CHECK(fm_match(mt, q.id, NULL, 5, a, &na, &err) == FM_OK);
    CHECK(fm_match_learned(mt, NULL, q.id, NULL, 5, b, &nb, &err) == FM_OK);
    CHECK(fm_match_learned(mt, E, q.id, NULL, 5, c, &nc, &err) == FM_OK);
    CHECK(fm_match_learned(mt, other, q.id, NULL, 5, d, &nd, &err) == FM_OK);
    CHECK(na == nb && na == nc && na == nd);
    CHECK(!memcmp(a, b, (size_t)na * sizeof *a));
    CHECK(!memcmp(a, c, (size_t)na * sizeof *a));
    CHECK(!memcmp(a, d, (size_t)na * sizeof *a));
  }
  fm_learn_info info;
  fm_learn_info_get(E, &info);
  CHECK(info.positives == 0 && info.queries == 0 && info.associations == 0);
  fm_matcher_free(mt);
  fm_learn_free(E);
  fm_learn_free(other);
  fm_model_close(m);
  fm_model_close(m2);
}

/* Two decisions on "XR_" fields (accepted the Supplemental twin) move the
 * twin of a sibling the layer never saw to the top: the association of the
 * query's words with "supplemental" carries over. */
static void test_sibling_moves(void) {
  fm_model *m = train_fixture();
  CHECK(m != NULL);
  if (!m) return;
  fm_error err;
  fm_error_init(&err);
  fm_matcher *mt;
  CHECK(fm_matcher_new(m, &mt, &err) == FM_OK);
  float s_sup0 = 0, s_tot0 = 0, s_sup1 = 0, s_tot1 = 0;
  CHECK(rank_of(mt, m, NULL, "XR_TOT_LIAB", "TOTL", &s_tot0) == 1);
  CHECK(rank_of(mt, m, NULL, "XR_TOT_LIAB", "SUPL", &s_sup0) == 2);
  fm_learn_pair p[] = {{"XR_TOT_ASSETS", "SUPA", FM_LEARN_ACCEPT},
                       {"XR_TOT_EQUITY", "SUPE", FM_LEARN_ACCEPT},
                       {"NOT_A_FIELD", "SUPE", FM_LEARN_ACCEPT},
                       {"XR_TOT_EQUITY", "NOPE", FM_LEARN_REJECT},
                       {"XR_TOT_REVENUE", NULL, FM_LEARN_NONE}};
  fm_learn *L = NULL;
  CHECK(fm_learn_build(m, p, 5, NULL, &L, &err) == FM_OK);
  fm_learn_info info;
  fm_learn_info_get(L, &info);
  CHECK(info.positives == 2 && info.skipped == 2 && info.none == 1 && info.queries == 2);
  CHECK(info.associations > 0);
  CHECK(rank_of(mt, m, L, "XR_TOT_LIAB", "SUPL", &s_sup1) == 1);
  CHECK(rank_of(mt, m, L, "XR_TOT_LIAB", "TOTL", &s_tot1) == 2);
  CHECK(s_sup1 - s_tot1 > s_sup0 - s_tot0);
  /* the decided fields themselves rank their answer first */
  CHECK(rank_of(mt, m, L, "XR_TOT_ASSETS", "SUPA", NULL) == 1);
  /* a field without the XR words keeps the plain total first */
  CHECK(rank_of(mt, m, L, "TOT_LIAB", "TOTL", NULL) == 1);
  fm_learn_free(L);
  /* a rejection alone pushes the rejected candidate down */
  fm_learn_pair r = {"XR_TOT_ASSETS", "TOTA", FM_LEARN_REJECT};
  CHECK(fm_learn_build(m, &r, 1, NULL, &L, &err) == FM_OK);
  fm_learn_info_get(L, &info);
  CHECK(info.negatives == 1);
  float s_rej = 0, s_rej0 = 0;
  CHECK(rank_of(mt, m, NULL, "XR_TOT_ASSETS", "TOTA", &s_rej0) == 1);
  CHECK(rank_of(mt, m, L, "XR_TOT_ASSETS", "TOTA", &s_rej) >= 1);
  CHECK(s_rej < s_rej0);
  fm_learn_free(L);
  fm_matcher_free(mt);
  fm_model_close(m);
}

/* The model's own pairs layer (format 7): a model trained with the two
 * "XR_" pairs ranks the Supplemental twin of their sibling first with no
 * decision at all, keeps the plain total for a field without the XR
 * words, ranks the same after a write and an open (the layer is rebuilt
 * from the pairs section), and a decisions layer on it learns on top of the
 * pairs instead of counting them again.  A format-5 file with pairs has no
 * layer (it keeps the ranking its calibrator was fitted on). */
static void test_pairs_layer(void) {
  fm_error err;
  fm_error_init(&err);
  fm_pairs tp;
  fm_pairs_init(&tp);
  tp.n = tp.cap = 2;
  tp.v = (fm_pair[]){{.query = "XR_TOT_ASSETS", .ref = "SUPA"},
                     {.query = "XR_TOT_EQUITY", .ref = "SUPE"}};
  const char *path = tmp("pairs.fmm");
  fm_model *m = train_fixture_with(&tp, path), *f = NULL;
  CHECK(m != NULL); /* the config loaded and the model trained */
  if (!m) return;
  CHECK(fm_model_nqueries(m) == 8);
  fm_model_info info;
  fm_model_info_get(m, &info);
  CHECK(info.ntrain_pairs == 2 && info.pairs_layer_queries == 2);
  fm_matcher *mt = NULL, *mf = NULL;
  CHECK(fm_matcher_new(m, &mt, &err) == FM_OK);
  CHECK(rank_of(mt, m, NULL, "XR_TOT_LIAB", "SUPL", NULL) == 1);
  CHECK(rank_of(mt, m, NULL, "TOT_LIAB", "TOTL", NULL) == 1);
  CHECK(fm_model_open(path, &f, &err) == FM_OK);
  if (f) {
    fm_model_info_get(f, &info);
    CHECK(info.format_version == FM_MODEL_FORMAT_VERSION && info.pairs_layer_queries == 2);
    CHECK(fm_matcher_new(f, &mf, &err) == FM_OK);
    for (size_t qi = 0; mf && qi < fm_model_nqueries(m); qi++) {
      fm_field q;
      fm_model_query(m, qi, &q);
      fm_candidate a[5], b[5];
      int na = 0, nb = 0;
      CHECK(fm_match(mt, q.id, NULL, 5, a, &na, &err) == FM_OK);
      CHECK(fm_match(mf, q.id, NULL, 5, b, &nb, &err) == FM_OK);
      CHECK(na == nb);
      for (int i = 0; i < na && i < nb; i++) /* same process: same arithmetic */
        CHECK(a[i].ref == b[i].ref && a[i].score == b[i].score &&
              a[i].confidence == b[i].confidence);
    }
  }
  /* decisions stack on the pairs: the model's pairs are not positives again */
  fm_learn_pair d = {"XR_TOT_LIAB", "SUPL", FM_LEARN_ACCEPT};
  fm_learn *L = NULL;
  CHECK(fm_learn_build(m, &d, 1, NULL, &L, &err) == FM_OK);
  fm_learn_info li;
  fm_learn_info_get(L, &li);
  CHECK(li.positives == 1 && li.queries == 1);
  CHECK(rank_of(mt, m, L, "XR_TOT_LIAB", "SUPL", NULL) == 1);
  fm_learn_free(L);
  fm_matcher_free(mt);
  fm_matcher_free(mf);
  fm_model_close(m);
  fm_model_close(f);
  /* an older file keeps its ranking: no layer */
  fm_model *old = NULL;
  CHECK(fm_model_open("tests/data/model/tiny-v5.fmm", &old, &err) == FM_OK);
  if (old) {
    fm_model_info_get(old, &info);
    CHECK(info.format_version == 5 && info.ntrain_pairs > 0 && info.pairs_layer_queries == 0);
  }
  fm_model_close(old);
}

/* Regularisation: at the optimum, l2_weights * d_j = -(gradient of the
 * loss), and one query's loss gradient is at most beta * D_j, D_j the
 * spread of component j among its candidates (cosines: <= 1; the prior:
 * <= 6).  So one pair moves a cosine weight by at most beta / l2_weights
 * and any weight by at most 6 beta / l2_weights.  Tolerance 1e-3 for the
 * optimiser's float arithmetic. */
static void test_one_pair_bounded(void) {
  fm_model *m = train_fixture();
  CHECK(m != NULL);
  if (!m) return;
  fm_error err;
  fm_error_init(&err);
  const float l2s[] = {100.0f, 1000.0f, 10.0f};
  for (size_t t = 0; t < sizeof l2s / sizeof l2s[0]; t++) {
    fm_learn_opts o;
    fm_learn_opts_default(&o);
    o.parts = FM_LEARN_WEIGHTS;
    o.l2_weights = l2s[t];
    fm_learn_pair p = {"XR_TOT_ASSETS", "SUPA", FM_LEARN_ACCEPT};
    fm_learn *L = NULL;
    CHECK(fm_learn_build(m, &p, 1, &o, &L, &err) == FM_OK);
    fm_learn_info info;
    fm_learn_info_get(L, &info);
    double cos_bound = o.beta / o.l2_weights + 1e-3, any_bound = 6 * o.beta / o.l2_weights + 1e-3;
    double moved = 0;
    for (int j = 0; j < 9; j++) {
      CHECK(fabs(info.weights[j]) <= any_bound);
      moved += fabs(info.weights[j]);
    }
    for (int j = 0; j < 4; j++) CHECK(fabs(info.weights[j]) <= cos_bound);
    CHECK(moved > 0); /* it learnt something, in the right direction: */
    CHECK(info.weights[0] < 0); /* the answer's title cosine is the lower one */
    fm_learn_free(L);
  }
  fm_model_close(m);
}

/* The simulation: deterministic for a seed, a curve from 0 decisions to
 * all of the first half, and a gain on the fixture. */
static void test_simulate(void) {
  fm_model *m = train_fixture();
  CHECK(m != NULL);
  if (!m) return;
  fm_error err;
  fm_error_init(&err);
  fm_pairs gold;
  fm_pairs_init(&gold);
  CHECK(fm_pairs_load(GOLD, &gold, &err) == FM_OK);
  fm_sim_opts o;
  fm_sim_opts_default(&o);
  o.seed = 1;
  o.step = 1;
  fm_sim_result a, b;
  CHECK(fm_simulate(m, &gold, &o, &a, &err) == FM_OK);
  CHECK(fm_simulate(m, &gold, &o, &b, &err) == FM_OK);
  CHECK(a.queries == 8 && a.decided == 4 && a.tested == 4);
  CHECK(a.ncurve == 5 && a.curve[0].decided == 0 && a.curve[4].decided == 4);
  CHECK_NEAR(a.curve[0].top1_remaining, a.static_top1, 1e-12);
  CHECK_NEAR(a.curve[4].top1_remaining, a.learned_top1, 1e-12);
  CHECK(a.keystrokes == b.keystrokes && a.ncurve == b.ncurve);
  CHECK_NEAR(a.learned_top1, b.learned_top1, 1e-12);
  CHECK(a.learned_top1 > a.static_top1);
  fm_sim_result_free(&a);
  fm_sim_result_free(&b);
  fm_learn_cv_result cv;
  CHECK(fm_learn_cv(m, &gold, 2, 1, NULL, &cv, &err) == FM_OK);
  CHECK(cv.queries == 8 && cv.folds == 2);
  CHECK(fm_learn_cv(m, &gold, 0, 1, NULL, &cv, &err) == FM_OK);
  CHECK(cv.folds == 2); /* categories Reported and Standard */
  o.step = 0;
  CHECK(fm_simulate(m, &gold, &o, &a, &err) == FM_ERR_ARG);
  fm_pairs_free(&gold);
  fm_model_close(m);
}

int main(void) {
  if (scratch_make("fm_learn_")) return 1;
  FM_RUN(test_empty_is_noop);
  FM_RUN(test_sibling_moves);
  FM_RUN(test_pairs_layer);
  FM_RUN(test_one_pair_bounded);
  FM_RUN(test_simulate);
  scratch_remove();
  FM_TEST_EXIT();
}
