/* batch_run.c: the run loop of fm_batch_run.  Part by part, in model order:
 * skip a committed part, claim the part's lease (a part another live runner
 * holds is left to it), rank its query fields with fm_match_range_ordered
 * OUTSIDE any transaction, then write it in one transaction
 * (fm_batch_part_body).  When every part is in, reconcile the counts and
 * mark the run succeeded or failed.
 *
 * Ownership: everything allocated here is freed before fm_batch_run
 * returns. */
#include "batch_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Buffers and counters of one fm_batch_run call. */
typedef struct run_state {
  int threads;
  fm_candidate *cand; /* batch_size x k */
  int *ncand;         /* batch_size */
  unsigned char *done; /* committed parts, by part number - 1 */
  int64_t ran, skipped, held;
  fm_learn *layer;    /* owned: the store's decisions as the run (or this
                         resume) began; NULL when there are none */
} run_state;

static fm_rc check_opts(fm_store *st, const fm_model *m, const fm_batch_opts *opts,
                        fm_error *err) {
  if (!st || !m) return fm_error_set(err, FM_ERR_ARG, "batch run: no store or no model");
  if (opts->resume_run < 0)
    return fm_error_set(err, FM_ERR_ARG, "batch run: bad run id %lld",
                        (long long)opts->resume_run);
  if (opts->resume_run) return FM_OK;
  if (opts->batch_size < 1)
    return fm_error_set(err, FM_ERR_ARG, "batch size must be at least 1 (got %d)",
                        opts->batch_size);
  if (opts->k < 1 || opts->k > 100)
    return fm_error_set(err, FM_ERR_ARG, "k must be in 1..100 (got %d)", opts->k);
  if (!isfinite(opts->threshold) || !isfinite(opts->margin) || opts->margin < 0)
    return fm_error_set(err, FM_ERR_ARG, "threshold must be a number and margin a number >= 0");
  if (!(opts->min_confidence >= 0 && opts->min_confidence <= 1))
    return fm_error_set(err, FM_ERR_ARG, "min_confidence must be a number from 0 to 1");
  return FM_OK;
}

static fm_rc state_alloc(batch_ctx *c, run_state *rs, fm_error *err) {
  int nthreads = c->opts->threads;
  if (nthreads <= 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    nthreads = n > 0 ? (int)n : 1;
  }
  if (nthreads > 64) nthreads = 64;
  if (nthreads > c->p.batch_size) nthreads = c->p.batch_size;
  rs->threads = nthreads;
  rs->cand = fm_calloc((size_t)c->p.batch_size * (size_t)c->p.k, sizeof *rs->cand);
  rs->ncand = fm_calloc((size_t)c->p.batch_size, sizeof *rs->ncand);
  rs->done = fm_calloc((size_t)c->n_parts + 1, 1);
  if (!rs->cand || !rs->ncand || !rs->done)
    return fm_error_set(err, FM_ERR_NOMEM, "out of memory for a batch of %d fields",
                        c->p.batch_size);
  return FM_OK;
}

/* Record that the current part failed on its lease (best effort: a lease
 * that cannot be finished expires). */
static void lease_failed(fm_store *st, batch_ctx *c, const fm_error *why) {
  fm_error e;
  fm_error_init(&e);
  if (fm_lease_finish(st, &fm_batch_part_leases, &c->lease, 0, why->msg, &e))
    fm_warn("batch run %lld part %lld: could not record the failure: %s",
            (long long)c->run_id, (long long)c->part_no, e.msg);
}

/* Claim, match and write the current part.  *skipped: 1 when it was not
 * this call's to write (committed meanwhile, or held by another runner). */
static fm_rc one_part(fm_store *st, batch_ctx *c, run_state *rs, int *skipped,
                      fm_error *err) {
  *skipped = 0;
  fm_rc rc = fm_batch_claim_part(st, c, err);
  if (rc) return rc;
  if (c->lease.outcome == FM_LEASE_HELD) {
    fm_warn("batch run %lld part %lld: leased by %s until %s; left to it",
            (long long)c->run_id, (long long)c->part_no, c->lease.holder, c->lease.expires);
    rs->held++;
    *skipped = 1;
    return FM_OK;
  }
  if (c->lease.outcome != FM_LEASE_CLAIMED) { /* committed by another runner */
    *skipped = 1;
    rs->skipped++;
    return FM_OK;
  }
  rc = fm_match_range_learned(c->m, rs->layer, c->lo, c->hi, c->p.k, rs->threads, 1, 0,
                              rs->cand, rs->ncand, NULL, NULL, err);
  if (rc) {
    /* Some matcher paths return a bare code; say at least where. */
    if (err && !err->msg[0]) fm_error_set(err, rc, "%s", fm_rc_name(rc));
    fm_error_prefix(err, "batch run %lld part %lld: matching", (long long)c->run_id,
                    (long long)c->part_no);
    if (err) lease_failed(st, c, err);
    return rc;
  }
  c->cand = rs->cand;
  c->ncand = rs->ncand;
  if ((rc = fm_store_tx(st, fm_batch_part_body, c, err))) {
    fm_error_prefix(err, "batch run %lld part %lld", (long long)c->run_id,
                    (long long)c->part_no);
    if (err && rc != FM_ERR_CONFLICT) lease_failed(st, c, err);
    return rc;
  }
  fm_batch_flush_warnings(&c->warnings);
  fm_batch_kill_maybe(&c->kill, c->part_no, STAGE_AFTER_COMMIT);
  if (c->skipped) rs->skipped++;
  else rs->ran++;
  return FM_OK;
}

/* Every part not committed yet, in order (up to opts->max_parts written). */
static fm_rc run_parts(fm_store *st, batch_ctx *c, run_state *rs, fm_error *err) {
  const fm_batch_opts *opts = c->opts;
  fm_progress prog;
  fm_progress_start(&prog, "batch", (uint64_t)c->n_fields);
  if (opts->quiet) prog.enabled = 0;
  fm_rc rc = FM_OK;
  for (int64_t part = 1; part <= c->n_parts && !rc; part++) {
    c->part_no = part;
    c->lo = (size_t)((part - 1) * c->p.batch_size);
    c->hi = c->lo + (size_t)c->p.batch_size;
    if (c->hi > (size_t)c->n_fields) c->hi = (size_t)c->n_fields;
    if (rs->done[part - 1]) {
      rs->skipped++;
      if (opts->on_part) opts->on_part(opts->on_part_ctx, part, c->n_parts, NULL, 1);
      fm_progress_update(&prog, c->hi);
      continue;
    }
    if (opts->max_parts > 0 && rs->ran >= opts->max_parts) break;
    int skipped;
    if ((rc = one_part(st, c, rs, &skipped, err))) break;
    skipped = skipped || c->skipped;
    if (opts->on_part && c->lease.outcome != FM_LEASE_HELD)
      opts->on_part(opts->on_part_ctx, part, c->n_parts, skipped ? NULL : &c->counts,
                    skipped);
    fm_progress_update(&prog, c->hi);
  }
  if (!rc) fm_progress_finish(&prog);
  else if (prog.enabled) fputc('\n', stderr);
  return rc;
}

/* After the parts: reconcile and mark the run when every part is in, else
 * report the totals so far. */
static fm_rc conclude(fm_store *st, batch_ctx *c, run_state *rs, fm_batch_report *report,
                      fm_error *err) {
  memset(rs->done, 0, (size_t)c->n_parts + 1);
  fm_rc rc = fm_batch_committed_parts(st, c, rs->done, err);
  if (rc) return rc;
  int64_t have = 0;
  for (int64_t i = 0; i < c->n_parts; i++) have += rs->done[i];
  if (have == c->n_parts) {
    finish_ctx f = {.c = c};
    if ((rc = fm_store_tx(st, fm_batch_finish_body, &f, err))) return rc;
    if (report) {
      report->finished = 1;
      report->total = f.total;
    }
    if (f.problem[0])
      return fm_error_set(err, FM_ERR_CORRUPT,
                          "batch run %lld failed: its counts do not reconcile: %s",
                          (long long)c->run_id, f.problem);
    return FM_OK;
  }
  if (!report) return FM_OK;
  fm_batch_info info;
  if ((rc = fm_batch_status(st, c->run_id, &info, err))) return rc;
  report->total = info.total;
  fm_batch_info_free(&info);
  return FM_OK;
}

fm_rc fm_batch_run(fm_store *st, const fm_model *m, const fm_batch_opts *opts,
                   int64_t *run_id, fm_batch_report *report, fm_error *err) {
  double t0 = fm_now();
  fm_batch_opts defaults;
  if (!opts) {
    fm_batch_opts_default(&defaults);
    opts = &defaults;
  }
  if (report) memset(report, 0, sizeof *report);
  if (run_id) *run_id = 0;
  fm_rc rc = check_opts(st, m, opts, err);
  if (rc) return rc;

  batch_ctx c;
  memset(&c, 0, sizeof c);
  c.m = m;
  c.opts = opts;
  c.by = opts->actor && *opts->actor ? opts->actor : "unknown";
  fm_buf_init(&c.warnings);
  fm_model_info_get(m, &c.info);
  if (!c.info.name) c.info.name = "";
  snprintf(c.checksum, sizeof c.checksum, "%08x", (unsigned)c.info.checksum);
  fm_batch_kill_parse(opts->kill_at ? opts->kill_at : getenv("FM_BATCH_KILL_AT"), &c.kill);
  c.p = (run_params){opts->batch_size, opts->k, opts->threshold, opts->margin,
                     opts->min_confidence};
  c.n_fields = (int64_t)fm_model_nqueries(m);
  if (c.n_fields == 0)
    return fm_error_set(err, FM_ERR_ARG, "model '%s' has no query fields", c.info.name);

  run_state rs;
  memset(&rs, 0, sizeof rs);
  if ((rc = fm_batch_begin(st, &c, err))) goto out;
  if (run_id) *run_id = c.run_id;
  if (opts->resume_run && (rc = fm_batch_reclaim_dead(st, &c, err))) goto out;
  if ((rc = state_alloc(&c, &rs, err)) ||
      (rc = fm_batch_committed_parts(st, &c, rs.done, err)))
    goto out;
  /* rank with what the analysts' decisions teach (docs/scoring.md,
   * "Learning from decisions"): the decisions as of now; a resume learns
   * from the decisions as of the resume */
  if ((rc = fm_jobs_learn_build(st, m, NULL, &rs.layer, err))) {
    fm_error_prefix(err, "batch run %lld: learning from decisions", (long long)c.run_id);
    goto out;
  }
  if (report) {
    fm_learn_info li;
    fm_learn_info_get(rs.layer, &li);
    report->learnt_fields = li.queries;
  }
  rc = run_parts(st, &c, &rs, err);
  if (report) {
    report->parts_run = rs.ran;
    report->parts_skipped = rs.skipped;
  }
  if (!rc) rc = conclude(st, &c, &rs, report, err);

out:
  if (report) {
    report->run_id = c.run_id;
    report->model_run_id = c.model_run_id;
    report->n_parts = c.n_parts;
    report->seconds = fm_now() - t0;
  }
  fm_learn_free(rs.layer);
  fm_free(rs.cand);
  fm_free(rs.ncand);
  fm_free(rs.done);
  fm_free(c.qfid);
  fm_free(c.rfid);
  fm_buf_free(&c.warnings);
  return rc;
}
