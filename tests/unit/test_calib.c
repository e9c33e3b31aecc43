/* test_calib.c: the confidence calibrator (src/model/calib.c) on synthetic
 * data: the fit recovers a known logistic relation well enough that its
 * ECE on a fresh draw stays within a stated tolerance; confidence is within
 * [0, 1] and never falls as score or margin grows; too little data keeps
 * the fallback; ECE and AUROC give the textbook values on small cases. */
#include "fm_test.h"

#include "calib.h"
#include "model_internal.h"

static uint64_t rng = 0x1234567ULL;
static double unif(void) { return (double)(fm_splitmix64(&rng) >> 11) * 0x1p-53; }

/* The true probability of a synthetic rank-1 observation. */
static double truth(const float *x) {
  double z = -6.0 + 2.5 * x[0] + 4.0 * x[1] + 1.5 * x[5];
  return 1.0 / (1.0 + exp(-z));
}

static void draw(fm_calib_obs *o, int rank1) {
  memset(o, 0, sizeof *o);
  o->x[0] = (float)(1.0 + 2.0 * unif()); /* score 1..3 */
  o->x[1] = (float)(0.5 * unif());       /* margin */
  o->x[2] = rank1 ? 0.0f : (float)unif();
  o->x[3] = rank1 ? 0.0f : (float)log(2.0 + (double)(fm_splitmix64(&rng) % 8));
  o->x[5] = (float)unif();
  o->x[6] = (float)unif();
  o->x[7] = (float)unif();
  double p = rank1 ? truth(o->x) : 0.05;
  o->y = unif() < p ? 1.0f : 0.0f;
  o->w = 1.0f;
}

static void test_fit_calibrated(void) {
  enum { NTRAIN = 6000, NTEST = 20000 };
  fm_calib_obs *obs = fm_malloc(NTRAIN * sizeof *obs);
  for (int i = 0; i < NTRAIN; i++) draw(&obs[i], i % 3 != 0);
  fm_calib c;
  CHECK(fm_calib_fit(obs, NTRAIN, &c) == FM_OK);
  CHECK(fm_calib_valid(&c));
  CHECK(c.v[1] == (float)NTRAIN);
  /* fresh rank-1 draws: ECE against the labels, and the largest gap to the
   * true probability */
  double *p = fm_malloc(NTEST * sizeof *p);
  int *y = fm_malloc(NTEST * sizeof *y);
  double worst = 0;
  for (int i = 0; i < NTEST; i++) {
    fm_calib_obs o;
    draw(&o, 1);
    p[i] = fm_calib_prob(&c, o.x);
    y[i] = o.y > 0.5f;
    CHECK(p[i] >= 0 && p[i] <= 1);
    double d = fabs(p[i] - truth(o.x));
    if (d > worst) worst = d;
  }
  double ece = fm_calib_ece(p, y, NTEST);
  fprintf(stderr, "  synthetic ECE %.4f, largest error %.4f\n", ece, worst);
  /* tolerance: sampling noise of 20,000 labels over 10 bins is ~0.01, the
   * ridge shrinks the extremes a little */
  CHECK(ece < 0.03);
  CHECK(worst < 0.15);
  fm_free(p);
  fm_free(y);
  fm_free(obs);

  /* monotone: never lower with a higher score or margin, other features
   * fixed, for rank 1 and below, described and bare queries */
  for (int g = 0; g < 3; g++) {
    float x[FM_CALIB_NF] = {0, 0.1f, 0, 0, 0, 0.5f, 0.5f, 0.5f};
    if (g == 1) x[4] = 1;
    if (g == 2) { x[2] = 0.3f; x[3] = (float)log(3.0); }
    double prev = -1;
    for (int s = 0; s <= 60; s++) {
      x[0] = -1.0f + 0.1f * (float)s;
      double v = fm_calib_prob(&c, x);
      CHECK(v >= prev && v >= 0 && v <= 1);
      prev = v;
    }
    x[0] = 2.0f;
    prev = -1;
    for (int s = 0; s <= 30; s++) {
      x[1] = 0.05f * (float)s;
      double v = fm_calib_prob(&c, x);
      CHECK(v >= prev);
      prev = v;
    }
  }
}

static void test_too_little_data(void) {
  fm_calib fb, c;
  fm_calib_fallback(&fb);
  CHECK(fm_calib_valid(&fb));
  CHECK(fm_calib_fit(NULL, 0, &c) == FM_OK);
  CHECK(memcmp(&c, &fb, sizeof c) == 0);
  /* a handful of rank-1 observations, one class: the fallback's
   * probabilities (re-expressed on the new standardization) */
  fm_calib_obs obs[5];
  for (int i = 0; i < 5; i++) {
    draw(&obs[i], 1);
    obs[i].y = 1;
  }
  CHECK(fm_calib_fit(obs, 5, &c) == FM_OK);
  float x[FM_CALIB_NF] = {2.0f, 0.2f, 0, 0, 0, 0.5f, 0.5f, 0.5f};
  CHECK_NEAR(fm_calib_prob(&c, x), fm_calib_prob(&fb, x), 1e-4);
  /* filled down a ranking: within [0, 1] and non-increasing */
  fm_candidate cand[4];
  memset(cand, 0, sizeof cand);
  float sc[4] = {2.5f, 2.4f, 1.0f, 0.9f};
  for (int i = 0; i < 4; i++) cand[i].score = sc[i];
  fm_calib_fill(&c, cand, 4, 0.5f, 0);
  for (int i = 0; i < 4; i++) {
    CHECK(cand[i].confidence >= 0 && cand[i].confidence <= 1);
    if (i) CHECK(cand[i].confidence <= cand[i - 1].confidence);
  }
}

static void test_metrics(void) {
  double p[4] = {0.05, 0.15, 0.95, 0.85};
  int y[4] = {0, 0, 1, 1};
  /* bins 0, 1, 9, 8: |0.05 - 0| + |0.15 - 0| + |0.95 - 1| + |0.85 - 1| over 4 */
  CHECK_NEAR(fm_calib_ece(p, y, 4), (0.05 + 0.15 + 0.05 + 0.15) / 4, 1e-12);
  CHECK_NEAR(fm_calib_ece(p, y, 0), 0, 0);
  double pos[3] = {0.9, 0.8, 0.5}, neg[3] = {0.1, 0.5, 0.2};
  /* pairs: 0.9 beats 3, 0.8 beats 3, 0.5 beats 2 and ties 1: 8.5 / 9 */
  CHECK_NEAR(fm_calib_auroc(pos, 3, neg, 3), 8.5 / 9, 1e-12);
  CHECK(isnan(fm_calib_auroc(pos, 3, neg, 0)));
}

int main(void) {
  FM_RUN(test_fit_calibrated);
  FM_RUN(test_too_little_data);
  FM_RUN(test_metrics);
  FM_TEST_EXIT();
}
