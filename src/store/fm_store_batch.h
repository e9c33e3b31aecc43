/* fm_store_batch.h: batch runs (src/store/batch.c, docs/batch.md).
 * TRANSITIONAL (issue 20): the jobs layer (src/jobs) takes batch.c and these
 * declarations over; until then this is the one header of the library's
 * middle that includes fm_model.h, and fm_store.h no longer does. */
#ifndef FM_STORE_BATCH_H
#define FM_STORE_BATCH_H

#include <stdint.h>

#include "fm_model.h"
#include "fm_util.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fm_store fm_store; /* fm_store.h */

/* ==== batch runs (src/store/batch.c, docs/batch.md) ===================== */

/* Resumable batch mapping: every query field of a model is ranked, in parts
 * of batch_size fields; each part writes its candidates, its proposals, its
 * review-queue entries and its batch_parts counts row in ONE transaction
 * keyed by (run, part number), so a run killed anywhere resumes where the
 * last committed part left off, with no duplicate and no missing field. */

/* Defaults for the routing rule, chosen by measurement (docs/batch.md): a
 * field's best candidate is proposed when score >= threshold and
 * score - runner-up >= margin; otherwise the field is queued for review. */
#define FM_BATCH_DEFAULT_THRESHOLD 2.0
#define FM_BATCH_DEFAULT_MARGIN 0.5
#define FM_BATCH_DEFAULT_SIZE 500
#define FM_BATCH_DEFAULT_K 10

typedef struct fm_batch_counts {
  int64_t n_in;       /* query fields the part (or run) took in */
  int64_t n_proposed; /* became (or stayed) a proposed mapping */
  int64_t n_queued;   /* went to the review queue */
  int64_t n_curated;  /* already had an accepted mapping: left alone */
  int64_t n_failed;   /* could not be routed (warning names the field) */
} fm_batch_counts;

/* Called after each part commits (or is found committed on resume, with
 * skipped = 1); borrowed counts.  For per-part progress lines. */
typedef void (*fm_batch_part_fn)(void *ctx, int64_t part_no, int64_t n_parts,
                                 const fm_batch_counts *c, int skipped);

typedef struct fm_batch_opts {
  int64_t resume_run;  /* > 0: resume this run (its recorded batch_size, k,
                          threshold and margin win over the fields below) */
  int batch_size;      /* query fields per part (default 500) */
  int k;               /* candidates stored per field (default 10, 1..100) */
  double threshold;    /* minimum best score to propose */
  double margin;       /* minimum best - runner-up to propose */
  int threads;         /* matching threads; 0 = online CPUs */
  const char *model_path; /* recorded in model_runs (may be NULL) */
  const char *actor;   /* who started it (audit rows); NULL = "unknown" */
  int quiet;           /* no progress bar */
  int64_t max_parts;   /* > 0: stop after committing this many parts, leaving
                          the run 'running' (to time-box; tests) */
  /* Test hook "<part>:before_commit|after_commit": raise SIGKILL at that
   * point of that part.  NULL: read env FM_BATCH_KILL_AT. */
  const char *kill_at;
  fm_batch_part_fn on_part; /* may be NULL */
  void *on_part_ctx;
} fm_batch_opts;

void fm_batch_opts_default(fm_batch_opts *o);

/* What fm_batch_run did. */
typedef struct fm_batch_report {
  int64_t run_id, model_run_id;
  int64_t n_parts;          /* parts of the whole run */
  int64_t parts_run;        /* committed by this call */
  int64_t parts_skipped;    /* found already committed (resume) */
  int finished;             /* 1: run reconciled and marked succeeded/failed */
  fm_batch_counts total;    /* over all committed parts of the run */
  double seconds;           /* wall time of this call */
} fm_batch_report;

/* Run (or, with opts->resume_run, resume) a batch mapping run of model m
 * into st.  A new run first syncs the model's reference and query fields
 * into the store as dictionaries fm_store_dict_label(model name, role)
 * (unchanged ones are a no-op) and registers the model in model_runs (one
 * row per model checksum).  *run_id (optional) is set as soon as the run
 * exists, so a caller can name it even when a later part fails.  Errors:
 * FM_ERR_NOTFOUND unknown run; FM_ERR_ARG resuming a succeeded run or bad
 * options; FM_ERR_CONFLICT the model's checksum differs from the run's;
 * FM_ERR_BUSY the database stayed locked; FM_ERR_CORRUPT the counts did
 * not reconcile (the run is then marked 'failed', error names the part).
 * report may be NULL. */
fm_rc fm_batch_run(fm_store *st, const fm_model *m, const fm_batch_opts *opts,
                   int64_t *run_id, fm_batch_report *report, fm_error *err);

/* One committed part. */
typedef struct fm_batch_part {
  int64_t part_no; /* 1-based */
  fm_batch_counts c;
  const char *finished_at; /* borrowed from the owning fm_batch_info */
} fm_batch_part;

/* A batch run as stored.  Strings and parts are owned by the struct
 * (fm_batch_info_free). */
typedef struct fm_batch_info {
  int64_t run_id, model_run_id;
  const char *status;       /* running | succeeded | failed */
  const char *params;       /* JSON: batch_size, k, threshold, margin */
  const char *model_name, *model_path, *model_checksum;
  const char *started_at, *finished_at; /* finished_at may be NULL */
  const char *started_by;
  const char *error;        /* NULL unless failed */
  int64_t n_fields, n_batches;
  fm_batch_part *parts;     /* committed parts by part_no (status only) */
  size_t nparts;            /* committed parts */
  fm_batch_counts total;    /* sums over committed parts */
  fm_arena arena;
} fm_batch_info;

/* Load run run_id (0 = the latest run) with its parts.  FM_ERR_NOTFOUND
 * when there is no such run.  Caller frees with fm_batch_info_free. */
fm_rc fm_batch_status(fm_store *st, int64_t run_id, fm_batch_info *out,
                      fm_error *err);
void fm_batch_info_free(fm_batch_info *info);

/* All runs, newest first, without their parts (totals and nparts filled).
 * Caller frees with fm_batch_list_free. */
fm_rc fm_batch_list(fm_store *st, fm_batch_info **out, size_t *n, fm_error *err);
void fm_batch_list_free(fm_batch_info *v, size_t n);

/* The review queue's sort key for a field the run could not propose:
 * 1.0 with no candidate, else
 *   1 - 0.5 * clamp(score / threshold, 0, 1) - 0.5 * clamp(margin / margin_min, 0, 1)
 * (a missing runner-up counts as a full margin; a zero threshold or margin_min
 * counts its half as satisfied), so 0 is "only just below the bar" and 1 is
 * "nothing to go on".  Higher = more uncertain. */
double fm_batch_uncertainty(int ncand, double score, double margin, int has_runner_up,
                            double threshold, double margin_min);

#ifdef __cplusplus
}
#endif

#endif /* FM_STORE_BATCH_H */
