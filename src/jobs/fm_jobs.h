/* fm_jobs.h: the jobs layer, the workflows that run above the model and the
 * store (its one public header): resumable batch mapping runs, and the
 * background threads of `fieldmatch serve` (a batch run started over HTTP,
 * the provisioning worker, the hourly snapshot scheduler).  Units of work
 * (batch parts, snapshot partitions, provisioning requests) are handed out
 * by the one lease mechanism of fm_lease.h.  docs/batch.md, docs/http.md.
 *
 * Threads: the batch functions take an fm_store (one connection, one
 * thread); every background thread opens its own store.
 * Ownership: each function says who frees what it returns. */
#ifndef FM_JOBS_H
#define FM_JOBS_H

#include <stdint.h>

#include "fm_model.h"
#include "fm_provision.h"
#include "fm_snapshot.h"
#include "fm_store.h"
#include "fm_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ==== the learning layer from a store (learn.c) ========================= */

/* Build the learning layer of model m from every decision in the store
 * (accepted: positives, rejected: negatives, "no equivalent": counted) and
 * the model's own training pairs (fm_learn_opts.model_pairs).  o may be
 * NULL (defaults).  Caller owns *out (fm_learn_free; before the model). */
fm_rc fm_jobs_learn_build(fm_store *st, const fm_model *m, const fm_learn_opts *o,
                          fm_learn **out, fm_error *err);

/* ==== batch runs (batch*.c, docs/batch.md) ============================== */

/* Resumable batch mapping: every query field of a model is ranked, in parts
 * of batch_size fields; each part writes its candidates, its proposals, its
 * review-queue entries and its batch_parts counts row in ONE transaction
 * keyed by (run, part number), so a run killed anywhere resumes where the
 * last committed part left off, with no duplicate and no missing field. */

/* The routing rule (docs/batch.md): a field's best candidate is proposed
 * when its calibrated confidence (fm_candidate.confidence) >= min_confidence
 * (default FM_AUTO_CONFIDENCE) and, as optional extra gates, score >=
 * threshold and score - runner-up >= margin (both off by default: the
 * confidence already weighs score and margin); otherwise the field is
 * queued for review, most uncertain (lowest confidence) first. */
#define FM_BATCH_DEFAULT_CONFIDENCE FM_AUTO_CONFIDENCE
#define FM_BATCH_DEFAULT_THRESHOLD 0.0
#define FM_BATCH_DEFAULT_MARGIN 0.0
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
  double min_confidence; /* minimum confidence of the best candidate to propose */
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
  size_t learnt_fields;     /* decided fields whose decisions this call ranked
                               with (the store's learning layer as it began) */
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

/* The review queue's sort key of a field the run could not propose is
 * 1 - the best candidate's confidence (1.0 with no candidate).  Runs
 * recorded before confidence existed (no min_confidence in their
 * parameters) resume with the score/margin key below:
 * The former sort key for a field the run could not propose:
 * 1.0 with no candidate, else
 *   1 - 0.5 * clamp(score / threshold, 0, 1) - 0.5 * clamp(margin / margin_min, 0, 1)
 * (a missing runner-up counts as a full margin; a zero threshold or margin_min
 * counts its half as satisfied), so 0 is "only just below the bar" and 1 is
 * "nothing to go on".  Higher = more uncertain. */
double fm_batch_uncertainty(int ncand, double score, double margin, int has_runner_up,
                            double threshold, double margin_min);

/* Lease length of a batch part (seconds): a runner that dies mid-part
 * leaves it to be taken over after this long. */
#define FM_BATCH_LEASE_SECONDS 600

/* ==== a batch run in the background (batch_bg.c) ========================== */

/* One background batch run at a time (what `POST /v1/batch-runs` starts).
 * The thread opens its own store and runs fm_batch_run in slices
 * (max_parts, then resume_run): the first slice is one part, after which
 * the run exists; later slices are about 1/16 of the run.  Between slices
 * it checks the stop flag, so stopping waits for at most one slice and
 * leaves the run 'running' in the store, resumable.  A part is the unit of
 * commit either way, so slicing changes no result. */
typedef struct fm_jobs_batch fm_jobs_batch;

/* Caller owns *out (fm_jobs_batch_free). */
fm_rc fm_jobs_batch_new(fm_jobs_batch **out, fm_error *err);
/* Ask a running thread to stop after its slice, join it, free b (NULL ok). */
void fm_jobs_batch_free(fm_jobs_batch *b);

/* Start (or, with o->resume_run, resume) a batch run of model m on the
 * database at db_path, by actor, and wait for its first slice.  m is
 * borrowed until release(release_ctx) is called (release may be NULL: then
 * m must outlive b): exactly once per call, when the controller is done
 * with m (its thread joined, at the next start or at fm_jobs_batch_free),
 * or at once when the thread could not start or a run is already going.
 * A server that swaps models drops its reference there.  When a run is
 * already going: *busy = 1, *run_id = its id, FM_ERR_CONFLICT.  Otherwise *busy = 0, *run_id = the run's id (0
 * when it was never created) and the first slice's result: FM_OK, or its
 * error (with *run_id != 0 the run exists and its status shows the
 * failure).  The options are copied; o->quiet, on_part and kill_at are the
 * controller's. */
fm_rc fm_jobs_batch_start(fm_jobs_batch *b, const char *db_path, const fm_model *m,
                          void (*release)(void *ctx), void *release_ctx,
                          const fm_batch_opts *o, const char *actor, int64_t *run_id,
                          int *busy, fm_error *err);

/* 1 when run_id is the run this controller is working on; then *last_part
 * (optional) is the last part it committed (0: none yet) and last_at
 * (optional, >= 32 bytes) when. */
int fm_jobs_batch_active(fm_jobs_batch *b, int64_t run_id, int64_t *last_part,
                         char *last_at);

/* ==== the provisioning worker and the snapshot scheduler (runner.c) ===== */

/* Two threads, each with its own store connection:
 *   provisioning  recovers running requests at start, then materializes
 *                 pending requests one at a time; it wakes on
 *                 fm_prov_runner_wake (a new request) or every poll_ms (for
 *                 requests created by other processes), and expires files
 *                 on each wake.
 *   scheduler     fm_snapshot_run_due at start (catching up missed hours),
 *                 then at the top of every UTC hour.
 * Both wait on one condition variable with a deadline, so stop is prompt:
 * it signals, then joins; a write in progress finishes first (it is
 * atomic and bounded by the dataset's size). */
typedef struct fm_prov_runner fm_prov_runner;

typedef struct fm_prov_runner_opts {
  const char *db_path;       /* required; borrowed for the runner's life */
  const char *root;          /* provisioning root, or NULL: no provisioning thread */
  const char *snapshot_root; /* snapshot root, or NULL: no scheduler thread */
  const fm_snapshot_opts *snapshot; /* scheduler options (borrowed) or NULL: defaults */
  int poll_ms;               /* provisioning poll interval (default 2000) */
  int lease_seconds;         /* provisioning lease (default 600) */
  /* Called (from a runner thread) with a one-line message for each
   * materialized request, scheduler run and error; may be NULL. */
  void (*log)(void *ctx, const char *msg);
  void *log_ctx;
} fm_prov_runner_opts;

void fm_prov_runner_opts_default(fm_prov_runner_opts *o);

/* Start the threads.  Caller owns *out (fm_prov_runner_stop). */
fm_rc fm_prov_runner_start(const fm_prov_runner_opts *o, fm_prov_runner **out,
                           fm_error *err);
/* Wake the provisioning thread now (thread-safe; r may be NULL). */
void fm_prov_runner_wake(fm_prov_runner *r);
/* Stop both threads, wait for them and free r (NULL is fine). */
void fm_prov_runner_stop(fm_prov_runner *r);

#ifdef __cplusplus
}
#endif
#endif /* FM_JOBS_H */
