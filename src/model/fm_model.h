/*
 * fm_model.h: training, the model file and ranking.  The public face of the
 * matcher.  It knows no database and no transport: front ends (CLI, HTTP)
 * call these functions and print or serve the results.
 *
 * Life cycle:
 *   fm_config_load  -> fm_train (imports, text pipeline, TF-IDF, SVD, priors)
 *                   -> fm_model_write (.fmm, atomic; or fm_train_input.output)
 *   fm_model_open (mmap) -> fm_matcher_new -> fm_match (one query) or
 *   fm_match_all / fm_match_all_ordered (every query, on threads) -> results
 *   fm_eval_* compute top-1 / recall / MRR against gold pairs.
 *
 * Ownership: opaque objects are created by *_new / *_open / fm_train and
 * freed by the matching *_free / *_close.  Strings returned from a model
 * (field ids, names, ...) are borrowed from its mapping and valid until
 * fm_model_close.  A loaded model is immutable and may be shared by any
 * number of threads; each thread needs its own fm_matcher.
 */
#ifndef FM_MODEL_H
#define FM_MODEL_H

#include "fm_import.h"
#include "fm_util.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FM_MODEL_FORMAT_VERSION 7

/* Auto-propose threshold on a candidate's calibrated confidence
 * (fm_candidate.confidence): batch routing proposes a field's best candidate
 * only at or above it, the reconciliation API marks "match": true only at or
 * above it, and `eval` reports auto_precision / auto_coverage at it
 * (docs/scoring.md, "Confidence"). */
#define FM_AUTO_CONFIDENCE 0.9

/* ---- configuration ----------------------------------------------------- */

/* Scoring weights: the final score of (query, reference) is
 *   w_title * cos(title words) + w_full * cos(all words)
 * + w_char * cos(char n-grams of names) + w_lsa * cos(LSA embeddings)
 * + w_prior * PMI(query category, reference type), clipped to [-3, 3]
 * - w_variant * copy + w_order * position - w_other * residual mismatch
 * - w_date * date mismatch.
 * Defaults were chosen by measurement (docs/scoring.md). */
typedef struct fm_weights {
  float title, full, chars, lsa, prior;
  float variant; /* penalty for a numbered copy ("NETCHNG_2" beside "NETCHNG_1") */
  float order;   /* bonus for a record early in an "order_prior" source */
  float other;   /* penalty when exactly one of the two titles names a
                    residual line item ("Other Financing Cash Flow") */
  float date;    /* penalty when one field's vendor type is a date or a
                    time and the other's is not ("52 WK HIGH DATE", type
                    DATE, against "52 WEEK HIGH", type PRICE) */
} fm_weights;

typedef struct fm_model_opts {
  int dims;            /* LSA dimensions (default 256; clamped to data) */
  int power_iters;     /* randomized SVD power iterations (default 2) */
  int oversample;      /* randomized SVD oversampling (default 10) */
  uint64_t seed;       /* default 42 */
  int candidates;      /* sparse candidates re-scored per query (default 64) */
  fm_weights w;
  uint32_t mine_min_support; /* abbreviation mining threshold (default 2) */
  uint32_t prose_min_count;  /* keep a word whole when names and descriptions
                                write it as prose this often (default 2; 0 off;
                                fm_abbrev_keep_words) */
  int threads;         /* 0 = number of online CPUs */
} fm_model_opts;

void fm_model_opts_default(fm_model_opts *o);

/* A training configuration (JSON, see docs/configs.md).  Paths inside are
 * resolved relative to the config file's folder.  Owns everything. */
typedef struct fm_config {
  char *path;            /* the config file itself */
  char *name;
  fm_source_spec *reference; size_t nreference;
  fm_source_spec *query;     size_t nquery;
  char **train_pairs;        size_t ntrain_pairs;
  char *abbreviations;   /* curated table path, or NULL for the default */
  /* Calibration only (docs/configs.md): pairs the calibrator is fitted on
   * but the model does not learn from, and files of query fields with no
   * counterpart (one column, header row) it takes as negatives. */
  char **calibration_pairs;  size_t ncalibration_pairs;
  char **no_equivalent;      size_t nno_equivalent;
  int calibration_folds; /* cross-fitting folds over train_pairs (default 5;
                            0: train pairs do not feed the calibrator) */
  double no_equivalent_weight; /* weight of a no-equivalent field's
                                  observations in the fit (default 1) */
  fm_model_opts opts;
  fm_arena arena;        /* owns the strings of the specs */
} fm_config;

/* Parse a config file, over the configs it "extends" (docs/configs.md);
 * errors name the file and the offending key.  Caller owns *out
 * (fm_config_free). */
fm_rc fm_config_load(const char *path, fm_config **out, fm_error *err);
void fm_config_free(fm_config *c);

/* ---- training ---------------------------------------------------------- */

typedef struct fm_model fm_model;     /* a trained or loaded model */

/* Everything a training run needs besides the config: extra pairs to hold
 * out (for cross-validation), and progress reporting. */
typedef struct fm_train_input {
  const fm_config *config;
  /* Pairs to use instead of loading config->train_pairs (may be NULL). */
  const fm_pairs *pairs_override;
  int use_pairs_override;
  /* Already-imported dictionaries (may be NULL: then they are imported from
   * the config).  Borrowed; used by cross-validation to import once. */
  const fm_fieldset *refs, *queries;
  int quiet;             /* no progress bars */
  /* Optional: also write the model to this path (borrowed), as
   * fm_model_write would (same bytes, atomic), but overlapped with the last
   * training step: the sections that are final go to the file from a
   * background thread while the prior is computed.  On any error nothing is
   * left at the path (an existing file there is kept). */
  const char *output;
  /* Confidence calibration (calib_fit.c).  no_calibrate: keep the fallback
   * calibrator (the inner trainings of cross-fitting).  The overrides, when
   * their use_ flag is set, replace config->calibration_pairs and
   * config->no_equivalent (cross-validation holds a fold out of them). */
  int no_calibrate;
  const fm_pairs *calib_override; int use_calib_override;
  const fm_pairs *none_override; int use_none_override; /* .query only */
} fm_train_input;

/* Train a model in memory (and write it to in->output when set).  Caller
 * owns *out (fm_model_close). */
fm_rc fm_train(const fm_train_input *in, fm_model **out, fm_error *err);

/* Import the reference and query dictionaries of a config (query sources
 * merged by id).  Caller owns the sets (init'ed here). */
fm_rc fm_config_import(const fm_config *c, fm_fieldset *refs,
                       fm_fieldset *queries, int quiet, fm_error *err);

/* Write a model to path atomically.  Same inputs and seed give the same
 * bytes. */
fm_rc fm_model_write(const fm_model *m, const char *path, fm_error *err);

/* ---- loading ----------------------------------------------------------- */

/* mmap and validate a model file (magic, version, checksums, structure). */
fm_rc fm_model_open(const char *path, fm_model **out, fm_error *err);
void fm_model_close(fm_model *m);

/* Facts about a model (borrowed strings). */
typedef struct fm_model_info {
  const char *name;
  uint32_t format_version;
  uint32_t checksum;     /* CRC-32C of the file (0 for an unsaved model) */
  size_t nrefs, nqueries, nterms, nabbrev;
  int dims;
  const char *config_json; /* the training configuration as JSON */
  size_t ntrain_pairs;
  size_t pairs_layer_queries; /* query fields of the training pairs the model's
                                 own learning layer ranks with (format 7;
                                 docs/scoring.md), 0 when it has none */
} fm_model_info;
void fm_model_info_get(const fm_model *m, fm_model_info *info);

/* Override how many sparse candidates are re-scored per query (the
 * speed/recall trade-off; default from the config the model was trained with, 64).  Not thread-safe:
 * call before creating matchers. */
void fm_model_set_candidates(fm_model *m, int n);

/* Field access (index -> borrowed field view). */
size_t fm_model_nrefs(const fm_model *m);
size_t fm_model_nqueries(const fm_model *m);
void fm_model_ref(const fm_model *m, size_t i, fm_field *out);
void fm_model_query(const fm_model *m, size_t i, fm_field *out);
/* Index of a field by id, or -1. */
long fm_model_find_query(const fm_model *m, const char *id);
long fm_model_find_ref(const fm_model *m, const char *id);

/* Was this gold/pairs file (by content checksum) used for training, and how
 * many of its pairs did the model learn from?  Returns the overlap count. */
size_t fm_model_train_overlap(const fm_model *m, const fm_pairs *gold);

/* ---- matching ---------------------------------------------------------- */

typedef struct fm_candidate {
  uint32_t ref;      /* reference index */
  float score;       /* combined score (higher is better) */
  float s_title, s_full, s_chars, s_lsa, s_prior; /* components, unweighted */
  float s_variant; /* 1 for a numbered copy (scored as -w_variant), else 0 */
  float s_order;   /* position prior of the reference (scored as +w_order):
                      centered on its source's mean, 0 for other sources */
  float s_other;   /* 1 when exactly one of the query's and the reference's
                      titles names a residual item ("other", "misc",
                      "miscellaneous"; scored as -w_other), else 0 */
  float s_date;    /* 1 when both fields have a vendor type and exactly one
                      of them is a date or a time (scored as -w_date),
                      else 0 */
  float confidence; /* calibrated probability that this candidate is a right
                       answer (docs/scoring.md, "Confidence") */
} fm_candidate;

typedef struct fm_matcher fm_matcher; /* per-thread scratch space */

fm_rc fm_matcher_new(const fm_model *m, fm_matcher **out, fm_error *err);
void fm_matcher_free(fm_matcher *mt);

/* Rank the reference universe for a query.  If `id` is a known query field
 * its stored name/description/category are used; otherwise the id is
 * treated as a bare mnemonic.  `q` (optional) gives a field explicitly
 * (then id is ignored).  Writes up to k candidates, best first, into out[]
 * and their count into *nout. */
fm_rc fm_match(fm_matcher *mt, const char *id, const fm_field *q, int k,
               fm_candidate *out, int *nout, fm_error *err);

/* Rank every query field of the model (threads, progress bar).  out is
 * nqueries x k, row-major; nout[i] the count for query i. Caller allocates. */
fm_rc fm_match_all(const fm_model *m, int k, int threads, int quiet,
                   fm_candidate *out, int *nout, fm_error *err);

/* Receives finished queries from fm_match_all_ordered: queries
 * [first, first + count), their candidates at rows[0 .. count * k) (row i
 * holds nout[i] of them, best first).  rows and nout point into the caller's
 * out and nout arrays (borrowed; the caller owns them and may read them
 * again after the call returns).  Return FM_OK to go on; any other code
 * (with *err set) stops the matching, and fm_match_all_ordered returns it. */
typedef fm_rc (*fm_match_sink)(void *ctx, size_t first, size_t count,
                               const fm_candidate *rows, const int *nout,
                               fm_error *err);

/* fm_match_all that hands results over while it runs: the queries are
 * matched in units of `chunk` (0 = the default, 256), and as the units
 * finish `sink` is called with each one, in query order, one call at a time
 * (never concurrently), from one of the matching threads, so a caller can
 * format and write results while later ones are being matched.  Everything
 * else as fm_match_all (out, nout, threads, progress bar); the results do
 * not depend on chunk or threads.  sink may be NULL (then this is
 * fm_match_all).  On an error no further unit is delivered. */
fm_rc fm_match_all_ordered(const fm_model *m, int k, int threads, int quiet,
                           size_t chunk, fm_candidate *out, int *nout,
                           fm_match_sink sink, void *ctx, fm_error *err);

/* fm_match_all_ordered over the queries [lo, hi) only: the candidates of
 * query i go to out[(i - lo) * k ..] and nout[i - lo]; the sink's `first`
 * is a query index (>= lo) and its rows point into out.  The batch runs
 * (src/jobs) rank their parts with it.  lo > hi or hi past the model's
 * queries: FM_ERR_ARG. */
fm_rc fm_match_range_ordered(const fm_model *m, size_t lo, size_t hi, int k, int threads,
                             int quiet, size_t chunk, fm_candidate *out, int *nout,
                             fm_match_sink sink, void *ctx, fm_error *err);

/* fm_match_range_ordered ranking with a learning layer (fm_match_learned
 * for every query; L borrowed, NULL or empty: exactly
 * fm_match_range_ordered).  Batch runs rank with the store's decisions. */
typedef struct fm_learn fm_learn;
fm_rc fm_match_range_learned(const fm_model *m, const fm_learn *L, size_t lo, size_t hi, int k,
                             int threads, int quiet, size_t chunk, fm_candidate *out,
                             int *nout, fm_match_sink sink, void *ctx, fm_error *err);

/* ---- evaluation -------------------------------------------------------- */

#define FM_EVAL_CURVE 10
typedef struct fm_eval_result {
  size_t queries;          /* gold queries found in the model */
  size_t missing_queries;  /* gold queries not in the model's query fields */
  size_t missing_refs;     /* gold answers not in the reference universe */
  double top1, recall_at_3, recall_at_5, recall_at_10, mrr_at_10;
  /* Confidence of the top candidate (docs/scoring.md, "Confidence"): ECE
   * over 10 equal-width bins; share of queries at or above
   * FM_AUTO_CONFIDENCE (auto_coverage) and the share of those whose top
   * candidate is right (auto_precision, NAN when none is). */
  double ece, auto_precision, auto_coverage;
  /* ece_null: the ECE a perfectly calibrated predictor with the same
   * confidences would show on this many queries (the mean over 200 draws of
   * labels from the confidences: the noise floor of ece); ece_all: the ECE
   * over the gold queries and the no-equivalent fields together (a none
   * field's top candidate is wrong), NAN without none fields. */
  double ece_null, ece_all;
  /* With no-equivalent fields (fm_eval_none, fm_eval_cv_none): how many
   * were in the model, the share of them at or above FM_AUTO_CONFIDENCE, and
   * the AUROC of top-1 confidence, answered gold queries against them. */
  size_t none_queries;
  double none_proposed, none_auroc;
  /* The same at other thresholds: curve_t[i] = 0.5 + 0.05 i (0.5 .. 0.95):
   * precision (NAN when no query reaches it), coverage, none proposed. */
  double curve_t[FM_EVAL_CURVE], curve_precision[FM_EVAL_CURVE],
      curve_coverage[FM_EVAL_CURVE], curve_none[FM_EVAL_CURVE];
} fm_eval_result;

/* Per-query detail for reports (optional). */
typedef struct fm_eval_query {
  const char *query;       /* borrowed from gold */
  long qindex;             /* query index in the model */
  int rank;                /* 1-based rank of the first acceptable answer
                              in the top 10, 0 when not found */
  fm_candidate top[10];
  int ntop;
} fm_eval_query;

/* Evaluate a model against gold pairs.  details (optional) receives one
 * entry per distinct gold query in first-appearance order (caller owns the
 * array, fm_free), and *ndetails their number (0 when details is NULL):
 * details without ndetails is FM_ERR_ARG. */
fm_rc fm_eval(const fm_model *m, const fm_pairs *gold, fm_eval_result *res,
              fm_eval_query **details, size_t *ndetails, fm_error *err);

/* k-fold cross-validation: split the distinct queries of `gold` into K
 * folds (deterministic by seed); for each fold train with
 * train_pairs = (config pairs + gold) minus that fold and score the fold.
 * Pairs from the config's own train_pairs files that share a query with the
 * fold are held out too.  Aggregated over all folds.  folds = FM_EVAL_LOCO:
 * one fold per query category (leave one category out). */
#define FM_EVAL_LOCO (-1)
fm_rc fm_eval_cv(const fm_config *c, const fm_pairs *gold, int folds,
                 int quiet, fm_eval_result *res, fm_error *err);

/* ---- the learning layer (learn.c, docs/scoring.md "Learning from
 * decisions") ------------------------------------------------------------
 * A structure learnt from analysts' decisions and handed to the matcher at
 * query time; the matcher knows no database: a front end or the jobs layer
 * reads the decisions (src/review) and builds the layer.  A layer is
 * immutable once built and may be shared by any number of threads; it
 * belongs to the model it was built for (borrowed: close the model after
 * the layer).  A NULL or empty layer changes nothing. */
typedef enum fm_learn_kind {
  FM_LEARN_ACCEPT = 1, /* accepted (or a training pair): a positive */
  FM_LEARN_REJECT = 2, /* rejected: a negative */
  FM_LEARN_NONE = 3    /* "no equivalent": counted, not ranked on */
} fm_learn_kind;

typedef struct fm_learn_pair {
  const char *query, *ref; /* field ids (ref is ignored for FM_LEARN_NONE) */
  fm_learn_kind kind;
} fm_learn_pair;

/* What is learnt (bits of fm_learn_opts.parts). */
enum {
  FM_LEARN_WEIGHTS = 1u << 0, /* deltas of the score's nine weights */
  FM_LEARN_ASSOC = 1u << 1,   /* query title word ~ reference title word
                                 the query lacks */
  FM_LEARN_KIND = 1u << 2,    /* query title word ~ reference kind */
  FM_LEARN_TAKEN = 1u << 3,   /* penalty: reference accepted for another field */
  FM_LEARN_PREFIX = 1u << 4   /* the query id's first part ("ARDR") ~ reference
                                 kind, and ~ reference words the query lacks */
};

typedef struct fm_learn_opts {
  unsigned parts;   /* FM_LEARN_* (default: WEIGHTS | ASSOC) */
  int pool;         /* candidates re-ranked per query (default 0: all the
                       model's re-scored candidates, fm_model_opts.candidates) */
  float beta;       /* score scale of the pairwise logistic loss (default 10) */
  float l2_weights; /* L2 pull of the weight deltas toward 0 (default 100) */
  float l2_assoc;   /* L2 on each association (default 0.1) */
  float taken;      /* the taken penalty (default 0.05) */
  int epochs;       /* gradient steps (default 200) */
  int model_pairs;  /* also learn from the model's training pairs, when there
                       is at least one decision and the model has no pairs
                       layer of its own (a format-6 or older file; default 1) */
} fm_learn_opts;
void fm_learn_opts_default(fm_learn_opts *o);

/* (fm_learn is declared with fm_match_range_learned above.) */

/* Build a layer for model m from decisions (borrowed; copied as needed).
 * Pairs naming a field the model does not know are skipped (counted in
 * fm_learn_info).  o may be NULL (defaults).  Caller owns *out
 * (fm_learn_free). */
fm_rc fm_learn_build(const fm_model *m, const fm_learn_pair *pairs, size_t n,
                     const fm_learn_opts *o, fm_learn **out, fm_error *err);
void fm_learn_free(fm_learn *L);

typedef struct fm_learn_info {
  size_t positives, negatives, none, skipped; /* pairs by kind, unknown ids */
  size_t queries;        /* decided queries ranked on */
  size_t associations;   /* non-zero learnt associations (word and kind) */
  float weights[9];      /* the learnt deltas, in fm_weights order */
} fm_learn_info;
void fm_learn_info_get(const fm_learn *L, fm_learn_info *info);

/* fm_match with a layer: the best `pool` candidates are re-scored (score +=
 * learnt deltas x components + associations - taken penalty) and the top k
 * kept.  L NULL, empty, or built for another model: exactly fm_match. */
fm_rc fm_match_learned(fm_matcher *mt, const fm_learn *L, const char *id, const fm_field *q,
                       int k, fm_candidate *out, int *nout, fm_error *err);

/* ---- simulating an analyst (simulate.c) --------------------------------- */
typedef struct fm_sim_opts {
  uint64_t seed;      /* the split of the gold queries (default 42) */
  int step;           /* re-learn after every `step` decisions (default 5) */
  double threshold, margin; /* the review queue's uncertainty (docs/batch.md;
                               defaults 2.0 and 0.5, the batch defaults) */
  const fm_learn_opts *learn; /* NULL: defaults */
  const fm_pairs *none; /* fields with no equivalent (.query only; NULL: none):
                           split by the seed like the gold, the first half
                           decided "no equivalent", the second half scored */
} fm_sim_opts;
void fm_sim_opts_default(fm_sim_opts *o);

typedef struct fm_sim_point { size_t decided; double top1_remaining; } fm_sim_point;

typedef struct fm_sim_result {
  size_t queries;     /* distinct gold queries the model knows */
  size_t decided;     /* the first half, decided */
  size_t tested;      /* the second half, scored */
  double static_top1, learned_top1; /* on the second half */
  size_t keystrokes;  /* rank r accepted: r keys; a pick: the id + 1 */
  size_t keystrokes_static; /* the same decisions without learning */
  fm_sim_point *curve; size_t ncurve; /* owned (fm_sim_result_free) */
  /* with opts.none: its fields the model knows, decided and scored; of the
   * scored ones the share whose top-1 confidence is at or above
   * FM_AUTO_CONFIDENCE, and the AUROC of top-1 confidence between the
   * scored gold and them, without ([0]) and with ([1]) the final layer
   * (NAN when either side is empty) */
  size_t none_queries, none_decided, none_tested;
  double none_proposed[2], none_auroc[2];
} fm_sim_result;

/* Play an analyst who knows the gold (docs/scoring.md): split the gold
 * queries at random (seed) into halves, decide the first half in queue
 * order (most uncertain first under the model alone), accepting the
 * answer when it is among the top 10 and picking it otherwise, re-learning
 * every step decisions; score the second half with and without the layer.
 * Caller frees res with fm_sim_result_free. */
fm_rc fm_simulate(const fm_model *m, const fm_pairs *gold, const fm_sim_opts *o,
                  fm_sim_result *res, fm_error *err);
void fm_sim_result_free(fm_sim_result *r);

typedef struct fm_learn_cv_result {
  size_t queries, folds;
  double static_top1, learned_top1;
} fm_learn_cv_result;

/* Top-1 of the gold under cross-validation of the layer: folds >= 2 random
 * folds (seed), or folds == 0 one fold per query category (leave one
 * category out); each fold is scored with a layer learnt from the other
 * folds' pairs and without one. */
fm_rc fm_learn_cv(const fm_model *m, const fm_pairs *gold, int folds, uint64_t seed,
                  const fm_learn_opts *lo, fm_learn_cv_result *res, fm_error *err);

/* fm_eval and fm_eval_cv with no-equivalent fields too (none: .query only,
 * may be NULL): fills none_queries, none_proposed and none_auroc.  Under
 * cross-validation the none fields are split into the same number of folds
 * (by seed); each fold's model is calibrated with the others as negatives
 * (besides the config's no_equivalent files, minus this fold's fields). */
fm_rc fm_eval_none(const fm_model *m, const fm_pairs *gold, const fm_pairs *none,
                   fm_eval_result *res, fm_eval_query **details, size_t *ndetails,
                   fm_error *err);
fm_rc fm_eval_cv_none(const fm_config *c, const fm_pairs *gold, const fm_pairs *none,
                      int folds, int quiet, fm_eval_result *res, fm_error *err);

/* Load a file of query ids (header row, first column; further columns
 * ignored) into out as pairs with an empty reference: the no-equivalent
 * lists (the round-2 none-dev files of ../shared/gold). */
fm_rc fm_none_load(const char *path, fm_pairs *out, fm_error *err);

#ifdef __cplusplus
}
#endif
#endif /* FM_MODEL_H */
