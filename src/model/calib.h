/* calib.h: the confidence calibrator (calib.c) and its training-time fit
 * (calib_fit.c).  Not a public header: the matcher fills
 * fm_candidate.confidence with fm_calib_fill; white-box tests use the rest.
 * docs/scoring.md ("Confidence") says what it models and how it is fitted. */
#ifndef FM_CALIB_H
#define FM_CALIB_H

#include <stddef.h>
#include <stdint.h>

#include "fm_model.h"

/* Features of one candidate, raw (not standardized):
 *   0 score            its combined score
 *   1 margin           score - the next candidate's score (0 for the last)
 *   2 gap              the top candidate's score - score (0 at rank 1)
 *   3 log rank         log(rank), rank 1-based
 *   4 bare             1 when the query had neither name nor description
 *                      (a bare mnemonic, e.g. a field the model does not know)
 *   5 title            the title-word cosine (fm_candidate.s_title)
 *   6 chars            the character n-gram cosine (s_chars)
 *   7 lsa              the LSA cosine (s_lsa) */
enum { FM_CALIB_NF = 8 };

/* The section "calib" of a format-5 model: FM_CALIB_NFLOATS floats.
 *   [0]            version of this layout (1)
 *   [1]            number of observations it was fitted on (0: the fallback)
 *   [2 .. 2+NF)    feature means, [2+NF .. 2+2NF) standard deviations (> 0)
 *   then three logistic models of NF+1 floats (bias, then one coefficient
 *   per standardized feature): rank 1 of a described query, rank 1 of a
 *   bare query, ranks 2 and below.
 * confidence = 1 / (1 + exp(-(bias + sum coef_j * (x_j - mean_j) / sd_j))). */
enum { FM_CALIB_NFLOATS = 2 + 2 * FM_CALIB_NF + 3 * (FM_CALIB_NF + 1) };
typedef struct fm_calib {
  float v[FM_CALIB_NFLOATS];
} fm_calib;

/* One labelled observation for the fit: features, label (1 = a right
 * answer) and weight. */
typedef struct fm_calib_obs {
  float x[FM_CALIB_NF];
  float y, w;
} fm_calib_obs;

/* The fallback calibrator (fitted once on the development gold, see
 * docs/scoring.md): what a model without a fitted one (a format-4 file, a
 * config with no pairs) uses. */
void fm_calib_fallback(fm_calib *c);

/* Fit c on obs[0..n) (rank read from x[3]: rank 1 when x[3] == 0; bare
 * from x[4]).  Ridge-regularized logistic regression (Newton steps) per
 * group (rank 1 described, rank 1 bare, ranks below), with the
 * coefficients of score and margin kept >= 0 and of gap and log rank
 * <= 0, so confidence never falls as the score or margin grows.  A group
 * with fewer than FM_CALIB_MIN_OBS observations or one class only keeps
 * the fallback's coefficients.  Returns FM_ERR_NOMEM or FM_OK. */
#define FM_CALIB_MIN_OBS 20
fm_rc fm_calib_fit(const fm_calib_obs *obs, size_t n, fm_calib *c);

/* Whether c is usable (finite, version 1, positive standard deviations). */
int fm_calib_valid(const fm_calib *c);

/* Confidence of a feature vector. */
double fm_calib_prob(const fm_calib *c, const float x[FM_CALIB_NF]);

/* Features of candidate i of cand[0..n) (best first); next_score is the
 * score of the candidate after the last one (NAN when there is none). */
void fm_calib_features(const fm_candidate *cand, int n, int i, float next_score, int bare,
                       float x[FM_CALIB_NF]);

/* Fill cand[i].confidence for every i < n from c (next_score as above),
 * capped at the confidence of the candidate above it. */
void fm_calib_fill(const fm_calib *c, fm_candidate *cand, int n, float next_score, int bare);

/* Expected calibration error of (p, y) pairs: 10 equal-width bins of p,
 * sum over bins of |bin| / n * |mean p - mean y|.  0 when n is 0. */
double fm_calib_ece(const double *p, const int *y, size_t n);
/* AUROC of scores pos[0..np) against neg[0..nn) (ties count half); NAN
 * when either is empty.  Allocates (FM_ERR_NOMEM -> NAN). */
double fm_calib_auroc(const double *pos, size_t np, const double *neg, size_t nn);

/* ---- training-time fit (calib_fit.c) ---------------------------------- */

/* Fit m's calibrator as fm_train's last step (docs/scoring.md):
 * training pairs are scored by models trained without them (cross-fitting,
 * `folds` inner trainings from in with its pairs minus one fold), the
 * calibration-only pairs and no-equivalent fields by m itself.  With no
 * data m keeps the fallback. */
fm_rc fm_calib_train(fm_model *m, const fm_train_input *in, const fm_pairs *train_pairs,
                     const fm_fieldset *refs, const fm_fieldset *qrys, fm_error *err);

#endif
