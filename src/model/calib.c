/* calib.c: the confidence calibrator.  A candidate's confidence is the
 * probability that it is a right answer, from a ridge-regularized logistic
 * regression on a few features of the ranking (calib.h: score, margin to
 * the next candidate, gap to the top one, rank, bare query), one model for
 * rank 1 and one for the ranks below.  Fitted at training (calib_fit.c),
 * stored in the model's "calib" section, applied by the matcher.
 *
 * Ownership: nothing here allocates beyond the scope of a call (the fit's
 * and AUROC's scratch arrays are freed before they return). */
#include "calib.h"
#include "model_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { OFF_MU = 2, OFF_SD = 2 + FM_CALIB_NF, OFF_W = 2 + 2 * FM_CALIB_NF,
       NP = FM_CALIB_NF + 1, NGROUP = 3 };

/* The model of a feature vector: 0 rank 1 of a described query, 1 rank 1
 * of a bare query, 2 ranks below. */
static int group_of(const float x[FM_CALIB_NF]) {
  return x[3] > 0 ? 2 : x[4] > 0.5f ? 1 : 0;
}

/* Sign constraint of each coefficient: +1 kept >= 0, -1 kept <= 0, 0 free. */
static const int coef_sign[FM_CALIB_NF] = {+1, +1, -1, -1, 0, +1, +1, +1};

/* Ridge penalty on the standardized coefficients (not the bias), in units
 * of observations' weight: strong enough that a few pairs cannot swing a
 * coefficient, weak against the hundreds of a dev gold. */
#define RIDGE 2.0

void fm_calib_fallback(fm_calib *c) {
  /* Fitted with `fieldmatch train` on train/bbg-refinitiv.json plus the
   * dev gold of ../shared (both rounds) as calibration_pairs and the
   * round-2 no-equivalent lists as no_equivalent (weight 1): 4,390
   * candidates; coefficients that came out as 1e-14 written as 0
   * (docs/scoring.md, "Confidence"). */
  static const float fb[FM_CALIB_NFLOATS] = {
      1, 0, /* 0 observations: marks the fallback */
      /* mean */ 1.99425f, 0.0895552f, 0.597684f, 1.51044f, 0.605923f, 0.452974f, 0.490184f,
      0.638417f,
      /* sd   */ 0.569672f, 0.157123f, 0.480542f, 0.695408f, 0.488652f, 0.19507f, 0.207924f,
      0.180808f,
      /* rank 1, described */ -1.84741f, 0.474821f, 0.263649f, 0, 0, 0, 0.0940749f, 0.309422f, 0,
      /* rank 1, bare */ -2.43823f, 0.700246f, 0.38465f, 0, 0, 0, 0.125607f, 0.211655f, 0,
      /* ranks 2+ */ -4.06743f, 0.333217f, 0.318646f, -0.424569f, -0.588104f, -0.1614f,
      0.158884f, 0.00580974f, 0.00736296f};
  memcpy(c->v, fb, sizeof fb);
}

int fm_calib_valid(const fm_calib *c) {
  for (int i = 0; i < FM_CALIB_NFLOATS; i++)
    if (!isfinite(c->v[i])) return 0;
  if (c->v[0] != 1.0f || c->v[1] < 0) return 0;
  for (int j = 0; j < FM_CALIB_NF; j++)
    if (!(c->v[OFF_SD + j] > 0)) return 0;
  return 1;
}

static double sigmoid(double z) {
  if (z >= 0) return 1.0 / (1.0 + exp(-z));
  double e = exp(z);
  return e / (1.0 + e);
}

double fm_calib_prob(const fm_calib *c, const float x[FM_CALIB_NF]) {
  const float *w = c->v + OFF_W + group_of(x) * NP;
  double z = w[0];
  for (int j = 0; j < FM_CALIB_NF; j++)
    z += (double)w[1 + j] * ((double)x[j] - c->v[OFF_MU + j]) / c->v[OFF_SD + j];
  return sigmoid(z);
}

void fm_calib_features(const fm_candidate *cand, int n, int i, float next_score, int bare,
                       float x[FM_CALIB_NF]) {
  float s = cand[i].score;
  float next = i + 1 < n ? cand[i + 1].score : next_score;
  x[0] = s;
  x[1] = isfinite(next) ? s - next : 0.0f;
  x[2] = cand[0].score - s;
  x[3] = (float)log((double)i + 1.0);
  x[4] = bare ? 1.0f : 0.0f;
  x[5] = cand[i].s_title;
  x[6] = cand[i].s_chars;
  x[7] = cand[i].s_lsa;
}

void fm_calib_fill(const fm_calib *c, fm_candidate *cand, int n, float next_score, int bare) {
  for (int i = 0; i < n; i++) {
    float x[FM_CALIB_NF];
    fm_calib_features(cand, n, i, next_score, bare, x);
    cand[i].confidence = (float)fm_calib_prob(c, x);
    /* a candidate ranked lower is never the surer one: the rank-1 and the
     * lower ranks' models are fitted apart and could cross */
    if (i > 0 && cand[i].confidence > cand[i - 1].confidence)
      cand[i].confidence = cand[i - 1].confidence;
  }
}

/* Solve A x = b (NP x NP, row-major, A overwritten) by Gaussian elimination
 * with partial pivoting.  Returns 0 when A is singular. */
static int solve(double *A, double *b, double *x) {
  for (int k = 0; k < NP; k++) {
    int piv = k;
    for (int i = k + 1; i < NP; i++)
      if (fabs(A[i * NP + k]) > fabs(A[piv * NP + k])) piv = i;
    if (fabs(A[piv * NP + k]) < 1e-12) return 0;
    if (piv != k) {
      for (int j = 0; j < NP; j++) {
        double t = A[k * NP + j]; A[k * NP + j] = A[piv * NP + j]; A[piv * NP + j] = t;
      }
      double t = b[k]; b[k] = b[piv]; b[piv] = t;
    }
    for (int i = k + 1; i < NP; i++) {
      double f = A[i * NP + k] / A[k * NP + k];
      for (int j = k; j < NP; j++) A[i * NP + j] -= f * A[k * NP + j];
      b[i] -= f * b[k];
    }
  }
  for (int k = NP - 1; k >= 0; k--) {
    double s = b[k];
    for (int j = k + 1; j < NP; j++) s -= A[k * NP + j] * x[j];
    x[k] = s / A[k * NP + k];
  }
  return 1;
}

/* Fit one logistic model (bias + NF coefficients, standardized features z,
 * n x NF row-major) by Newton steps with the ridge penalty, projecting the
 * coefficients onto their sign constraints after each step.  w[] holds the
 * start and receives the result. */
static void fit_group(const double *z, const double *y, const double *wt, size_t n, double *w) {
  for (int it = 0; it < 50; it++) {
    double H[NP * NP], g[NP], step[NP];
    memset(H, 0, sizeof H);
    memset(g, 0, sizeof g);
    for (size_t i = 0; i < n; i++) {
      double f[NP];
      f[0] = 1;
      for (int j = 0; j < FM_CALIB_NF; j++) f[1 + j] = z[i * FM_CALIB_NF + j];
      double eta = 0;
      for (int j = 0; j < NP; j++) eta += w[j] * f[j];
      double p = sigmoid(eta), r = wt[i] * (p - y[i]), h = wt[i] * p * (1 - p);
      for (int a = 0; a < NP; a++) {
        g[a] += r * f[a];
        for (int b = 0; b < NP; b++) H[a * NP + b] += h * f[a] * f[b];
      }
    }
    for (int j = 1; j < NP; j++) {
      g[j] += RIDGE * w[j];
      H[j * NP + j] += RIDGE;
    }
    H[0] += 1e-9;
    if (!solve(H, g, step)) break;
    double delta = 0;
    for (int j = 0; j < NP; j++) {
      w[j] -= step[j];
      delta += fabs(step[j]);
    }
    for (int j = 0; j < FM_CALIB_NF; j++)
      if (coef_sign[j] * w[1 + j] < 0) w[1 + j] = 0;
    if (delta < 1e-7) break;
  }
}

fm_rc fm_calib_fit(const fm_calib_obs *obs, size_t n, fm_calib *c) {
  fm_calib_fallback(c);
  if (n == 0) return FM_OK;
  /* standardization over all observations (weighted) */
  double mu[FM_CALIB_NF] = {0}, sd[FM_CALIB_NF] = {0}, W = 0;
  for (size_t i = 0; i < n; i++) {
    W += obs[i].w;
    for (int j = 0; j < FM_CALIB_NF; j++) mu[j] += obs[i].w * obs[i].x[j];
  }
  if (!(W > 0)) return FM_OK;
  for (int j = 0; j < FM_CALIB_NF; j++) mu[j] /= W;
  for (size_t i = 0; i < n; i++)
    for (int j = 0; j < FM_CALIB_NF; j++) {
      double d = obs[i].x[j] - mu[j];
      sd[j] += obs[i].w * d * d;
    }
  for (int j = 0; j < FM_CALIB_NF; j++) {
    sd[j] = sqrt(sd[j] / W);
    if (!(sd[j] > 1e-6)) sd[j] = 1;
  }
  double *z = fm_malloc(n * FM_CALIB_NF * sizeof *z);
  double *y = fm_malloc(n * sizeof *y), *wt = fm_malloc(n * sizeof *wt);
  if (!z || !y || !wt) {
    fm_free(z);
    fm_free(y);
    fm_free(wt);
    return FM_ERR_NOMEM;
  }
  fm_calib fb = *c;
  for (int j = 0; j < FM_CALIB_NF; j++) {
    c->v[OFF_MU + j] = (float)mu[j];
    c->v[OFF_SD + j] = (float)sd[j];
  }
  c->v[1] = (float)n;
  for (int grp = 0; grp < NGROUP; grp++) {
    size_t m = 0, pos = 0;
    for (size_t i = 0; i < n; i++) {
      if (group_of(obs[i].x) != grp) continue;
      for (int j = 0; j < FM_CALIB_NF; j++)
        z[m * FM_CALIB_NF + j] = (obs[i].x[j] - mu[j]) / sd[j];
      y[m] = obs[i].y > 0.5f;
      wt[m] = obs[i].w;
      pos += obs[i].y > 0.5f;
      m++;
    }
    float *dst = c->v + OFF_W + grp * NP;
    const float *fbw = fb.v + OFF_W + grp * NP;
    if (m < FM_CALIB_MIN_OBS || pos == 0 || pos == m) {
      /* too little to fit: the fallback's model, re-expressed on this
       * standardization (same probabilities for the same raw features) */
      double b = fbw[0];
      for (int j = 0; j < FM_CALIB_NF; j++) {
        double cj = fbw[1 + j] / fb.v[OFF_SD + j];
        dst[1 + j] = (float)(cj * sd[j]);
        b += cj * (mu[j] - fb.v[OFF_MU + j]);
      }
      dst[0] = (float)b;
      continue;
    }
    double w[NP] = {0};
    double py = (double)pos / (double)m;
    w[0] = log(py / (1 - py));
    fit_group(z, y, wt, m, w);
    for (int j = 0; j < NP; j++) dst[j] = (float)w[j];
  }
  fm_free(z);
  fm_free(y);
  fm_free(wt);
  if (!fm_calib_valid(c)) fm_calib_fallback(c);
  return FM_OK;
}

double fm_calib_ece(const double *p, const int *y, size_t n) {
  if (n == 0) return 0;
  double sp[10] = {0}, sy[10] = {0};
  size_t cnt[10] = {0};
  for (size_t i = 0; i < n; i++) {
    int b = (int)(p[i] * 10);
    b = b < 0 ? 0 : b > 9 ? 9 : b;
    sp[b] += p[i];
    sy[b] += y[i] ? 1 : 0;
    cnt[b]++;
  }
  double e = 0;
  for (int b = 0; b < 10; b++)
    if (cnt[b]) e += fabs(sp[b] - sy[b]) / (double)n;
  return e;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double fm_calib_auroc(const double *pos, size_t np, const double *neg, size_t nn) {
  if (np == 0 || nn == 0) return NAN;
  double *s = fm_malloc(nn * sizeof *s);
  if (!s) return NAN;
  memcpy(s, neg, nn * sizeof *s);
  qsort(s, nn, sizeof *s, cmp_double);
  double sum = 0;
  for (size_t i = 0; i < np; i++) {
    /* negatives below pos[i], and ties (counted half): two binary searches */
    size_t lo = 0, hi = nn;
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (s[mid] < pos[i]) lo = mid + 1; else hi = mid;
    }
    size_t below = lo;
    hi = nn;
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (s[mid] <= pos[i]) lo = mid + 1; else hi = mid;
    }
    sum += (double)below + 0.5 * (double)(lo - below);
  }
  fm_free(s);
  return sum / ((double)np * (double)nn);
}
