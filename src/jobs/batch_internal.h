/* batch_internal.h: what the batch run's files share (batch.c: options,
 * setup and the start/resume rows; batch_part.c: writing and reconciling
 * parts; batch_run.c: the run loop; batch_status.c: reading runs back).
 * Not installed. */
#ifndef FM_BATCH_INTERNAL_H
#define FM_BATCH_INTERNAL_H

#include "fm_fields.h"
#include "fm_jobs.h"
#include "fm_lease.h"
#include "fm_review.h"
#include "fm_tokens.h"
#include "fm_store_sql.h"

/* The kill test hook: raise SIGKILL at a point of a part. */
enum { STAGE_NONE = 0, STAGE_BEFORE_COMMIT, STAGE_AFTER_COMMIT };

typedef struct kill_hook {
  int64_t part;
  int stage;
} kill_hook;

void fm_batch_kill_parse(const char *spec, kill_hook *k);
void fm_batch_kill_maybe(const kill_hook *k, int64_t part, int stage);

typedef struct run_params {
  int batch_size, k;
  double threshold, margin;
  double min_confidence; /* NAN: a run recorded before confidence (old key) */
} run_params;

/* The state of one run. */
typedef struct batch_ctx {
  const fm_model *m;
  fm_model_info info;
  char checksum[16];
  const fm_batch_opts *opts;
  run_params p;
  int64_t run_id, model_run_id, n_fields, n_parts;
  char actor[64];   /* "batch:<run id>" */
  const char *by;   /* opts->actor or "unknown" */
  int64_t *qfid;    /* field_id per model query index */
  int64_t *rfid;    /* field_id per model reference index */
  kill_hook kill;
  char lease_owner[160]; /* this call's name in batch_part_leases */
  /* The part being written. */
  int64_t part_no;
  size_t lo, hi;
  const fm_candidate *cand; /* (hi-lo) x k */
  const int *ncand;
  fm_lease lease;           /* the part's claim */
  fm_batch_counts counts;
  int skipped;
  fm_buf warnings; /* one line per failed field, emitted after commit */
} batch_ctx;

/* Where batch parts keep their leases (batch_part_leases, one row per
 * (run, part), created with the run's first claim). */
extern const fm_lease_table fm_batch_part_leases;

/* sqlite3_step a write statement that must finish, then reset it. */
fm_rc fm_batch_step_done(fm_store *st, sqlite3_stmt *s, const char *what, fm_error *err);

/* Set the run up: a new run syncs the model's fields and creates its rows;
 * a resumed one is checked against the model and marked running.  Resolves
 * c->qfid and c->rfid.  c->run_id is set when it returns FM_OK. */
fm_rc fm_batch_begin(fm_store *st, batch_ctx *c, fm_error *err);

/* Claim part c->part_no (its lease row is created when missing):
 * c->lease.outcome says whether this call holds it. */
fm_rc fm_batch_claim_part(fm_store *st, batch_ctx *c, fm_error *err);

/* Put back the part leases of run c->run_id whose holder was a process of
 * this host that is gone (a killed run being resumed). */
fm_rc fm_batch_reclaim_dead(fm_store *st, batch_ctx *c, fm_error *err);

/* The transaction body writing part c->part_no from c->cand / c->ncand,
 * and finishing its lease. */
fm_rc fm_batch_part_body(fm_store *st, void *vctx, fm_error *err);

/* Reconciling a run whose parts are all in: the transaction body of
 * fm_batch_finish_ctx. */
typedef struct finish_ctx {
  batch_ctx *c;
  fm_batch_counts total;
  char problem[512]; /* empty when the counts reconcile */
} finish_ctx;
fm_rc fm_batch_finish_body(fm_store *st, void *vctx, fm_error *err);

/* Parts already committed: done[p - 1] = 1 for each committed part p. */
fm_rc fm_batch_committed_parts(fm_store *st, batch_ctx *c, unsigned char *done,
                               fm_error *err);

/* Emit the collected per-field warnings, one fm_warn per line. */
void fm_batch_flush_warnings(fm_buf *b);

#endif
