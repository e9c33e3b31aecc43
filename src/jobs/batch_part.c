/* batch_part.c: writing one part of a batch run in one transaction (its
 * candidates, proposals, review-queue entries, batch_parts counts row and
 * the end of its lease), and reconciling a run whose parts are all in. */
#include "batch_internal.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writing one part (the transaction body) ----------------------------- */

typedef struct part_stmts {
  sqlite3_stmt *exists, *cand, *decided, *queue, *part;
} part_stmts;

static void stmts_free(part_stmts *p) {
  sqlite3_finalize(p->exists);
  sqlite3_finalize(p->cand);
  sqlite3_finalize(p->decided);
  sqlite3_finalize(p->queue);
  sqlite3_finalize(p->part);
  memset(p, 0, sizeof *p);
}

static fm_rc stmts_prepare(fm_store *st, part_stmts *p, fm_error *err) {
  fm_rc rc;
  memset(p, 0, sizeof *p);
  if ((rc = fm_store_prepare(st,
                             "SELECT 1 FROM batch_parts WHERE batch_run_id = ?1"
                             " AND part_no = ?2",
                             &p->exists, err)) ||
      (rc = fm_store_prepare(st,
                             "INSERT INTO candidates(batch_run_id, query_field_id, rank,"
                             " ref_field_id, score, model_run_id)"
                             " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                             &p->cand, err)) ||
      (rc = fm_store_prepare(st,
                             "SELECT status, ref_field_id FROM mappings"
                             " WHERE query_field_id = ?1"
                             " AND status IN ('accepted', 'no_equivalent', 'rejected')",
                             &p->decided, err)) ||
      (rc = fm_store_prepare(
           st,
           "INSERT INTO review_queue(query_field_id, batch_run_id, reason, top_score,"
           " margin, uncertainty, queued_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
           " ON CONFLICT(query_field_id) DO UPDATE SET"
           " batch_run_id = excluded.batch_run_id, reason = excluded.reason,"
           " top_score = excluded.top_score, margin = excluded.margin,"
           " uncertainty = excluded.uncertainty,"
           " queued_at = CASE WHEN resolved_at IS NULL THEN queued_at"
           "             ELSE excluded.queued_at END,"
           " resolved_at = NULL, resolved_by = NULL",
           &p->queue, err)) ||
      (rc = fm_store_prepare(st,
                             "INSERT INTO batch_parts(batch_run_id, part_no, n_in,"
                             " n_proposed, n_queued, n_curated, n_failed, finished_at)"
                             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                             &p->part, err))) {
    stmts_free(p);
    return rc;
  }
  return FM_OK;
}

/* A decision failure that is the field's problem (counted, warned), as
 * opposed to one that must abort the whole part (busy, no memory, I/O). */
static int field_failure(fm_rc rc) {
  return rc == FM_ERR_CONFLICT || rc == FM_ERR_NOTFOUND || rc == FM_ERR_ARG;
}

/* Route query index i.  Returns non-FM_OK only for errors that abort the
 * part; a field that cannot be routed is counted in n_failed. */
static fm_rc route_field(fm_store *st, batch_ctx *c, part_stmts *p, size_t i,
                         const char *now, fm_error *err) {
  const fm_candidate *cand = c->cand + (i - c->lo) * (size_t)c->p.k;
  int n = c->ncand[i - c->lo];
  int64_t q = c->qfid[i];
  fm_rc rc;
  c->counts.n_in++;

  for (int r = 0; r < n; r++) {
    sqlite3_bind_int64(p->cand, 1, c->run_id);
    sqlite3_bind_int64(p->cand, 2, q);
    sqlite3_bind_int(p->cand, 3, r + 1);
    sqlite3_bind_int64(p->cand, 4, c->rfid[cand[r].ref]);
    sqlite3_bind_double(p->cand, 5, (double)cand[r].score);
    sqlite3_bind_int64(p->cand, 6, c->model_run_id);
    if ((rc = fm_batch_step_done(st, p->cand, "write candidate", err))) return rc;
  }

  /* What analysts decided already: an accepted mapping or no_equivalent
   * (the field is curated), rejected pairs (a rejected no-equivalent row
   * has no reference and excludes nothing). */
  int curated = 0, nrej = 0;
  int64_t rejected[128];
  sqlite3_bind_int64(p->decided, 1, q);
  int step;
  while ((step = sqlite3_step(p->decided)) == SQLITE_ROW) {
    const char *dst = (const char *)sqlite3_column_text(p->decided, 0);
    if (dst && (!strcmp(dst, "accepted") || !strcmp(dst, "no_equivalent"))) curated = 1;
    else if (sqlite3_column_type(p->decided, 1) != SQLITE_NULL && nrej < 128) rejected[nrej++] = sqlite3_column_int64(p->decided, 1);
  }
  sqlite3_reset(p->decided);
  if (step != SQLITE_DONE) return fm_store_steperr(st, step, err, "read decisions");
  if (curated) {
    c->counts.n_curated++;
    return FM_OK;
  }

  /* The best two candidates the analysts have not rejected. */
  int best = -1, second = -1;
  for (int r = 0; r < n && second < 0; r++) {
    int64_t rf = c->rfid[cand[r].ref];
    int rej = 0;
    for (int j = 0; j < nrej && !rej; j++) rej = rejected[j] == rf;
    if (rej) continue;
    if (best < 0) best = r;
    else second = r;
  }
  double score = best >= 0 ? cand[best].score : NAN;
  double margin = second >= 0 ? score - cand[second].score : NAN;
  double conf = best >= 0 ? cand[best].confidence : 0;
  int use_conf = !isnan(c->p.min_confidence); /* NAN: a run recorded before confidence */
  const char *reason = best < 0                                  ? "no_candidates"
                       : use_conf && conf < c->p.min_confidence   ? "low_confidence"
                       : score < c->p.threshold                  ? "low_score"
                       : second >= 0 && margin < c->p.margin     ? "small_margin"
                                                                 : NULL;
  if (reason) {
    double u = use_conf ? (best < 0 ? 1.0 : 1.0 - conf)
                        : fm_batch_uncertainty(best < 0 ? 0 : 1, score, margin, second >= 0,
                                               c->p.threshold, c->p.margin);
    sqlite3_bind_int64(p->queue, 1, q);
    sqlite3_bind_int64(p->queue, 2, c->run_id);
    sqlite3_bind_text(p->queue, 3, reason, -1, SQLITE_STATIC);
    if (best >= 0) sqlite3_bind_double(p->queue, 4, score);
    else sqlite3_bind_null(p->queue, 4);
    if (second >= 0) sqlite3_bind_double(p->queue, 5, margin);
    else sqlite3_bind_null(p->queue, 5);
    sqlite3_bind_double(p->queue, 6, u);
    sqlite3_bind_text(p->queue, 7, now, -1, SQLITE_STATIC);
    if ((rc = fm_batch_step_done(st, p->queue, "queue field for review", err))) return rc;
    c->counts.n_queued++;
    return FM_OK;
  }

  /* Confident: propose, in a savepoint so a refused decision leaves no
   * trace but its count and warning. */
  fm_decision d = {.query_field = q,
                   .ref_field = c->rfid[cand[best].ref],
                   .status = FM_MAP_PROPOSED,
                   .actor = c->actor,
                   .origin = "model",
                   .score = score,
                   .batch_run = c->run_id,
                   .expect_accepted = 0};
  if ((rc = fm_store_exec(st, "SAVEPOINT batch_field", err))) return rc;
  fm_error ferr;
  fm_error_init(&ferr);
  rc = fm_store_decide(st, &d, NULL, &ferr);
  if (rc == FM_OK) {
    c->counts.n_proposed++;
    return fm_store_exec(st, "RELEASE batch_field", err);
  }
  fm_store_exec(st, "ROLLBACK TO batch_field", NULL);
  fm_store_exec(st, "RELEASE batch_field", NULL);
  if (!field_failure(rc)) {
    if (err) *err = ferr;
    return rc;
  }
  fm_field qf;
  fm_model_query(c->m, i, &qf);
  c->counts.n_failed++;
  if (fm_buf_printf(&c->warnings, "batch run %lld part %lld: field %s failed: %s\n",
                    (long long)c->run_id, (long long)c->part_no, qf.id, ferr.msg))
    return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  char key[300], *after = NULL;
  snprintf(key, sizeof key, "%s:%s", qf.vendor, qf.id);
  json_t *o = json_pack("{s:I, s:I, s:s, s:s}", "run", (json_int_t)c->run_id, "part",
                        (json_int_t)c->part_no, "rc", fm_rc_name(rc), "error", ferr.msg);
  after = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  rc = fm_store_audit(st, c->actor, "batch_field_failed", "field", key, NULL, after, err);
  free(after);
  return rc;
}

fm_rc fm_batch_part_body(fm_store *st, void *vctx, fm_error *err) {
  batch_ctx *c = vctx;
  memset(&c->counts, 0, sizeof c->counts);
  c->skipped = 0;
  fm_buf_reset(&c->warnings);
  part_stmts p;
  fm_rc rc = stmts_prepare(st, &p, err);
  if (rc) return rc;
  sqlite3_bind_int64(p.exists, 1, c->run_id);
  sqlite3_bind_int64(p.exists, 2, c->part_no);
  int step = sqlite3_step(p.exists);
  if (step == SQLITE_ROW) {
    c->skipped = 1; /* another process committed it meanwhile */
    stmts_free(&p);
    return fm_lease_finish(st, &fm_batch_part_leases, &c->lease, 1, NULL, err);
  }
  if (step != SQLITE_DONE) rc = fm_store_steperr(st, step, err, "read batch part");
  char now[32];
  fm_store_now(now, sizeof now);
  for (size_t i = c->lo; i < c->hi && !rc; i++) rc = route_field(st, c, &p, i, now, err);
  if (!rc) {
    sqlite3_bind_int64(p.part, 1, c->run_id);
    sqlite3_bind_int64(p.part, 2, c->part_no);
    sqlite3_bind_int64(p.part, 3, c->counts.n_in);
    sqlite3_bind_int64(p.part, 4, c->counts.n_proposed);
    sqlite3_bind_int64(p.part, 5, c->counts.n_queued);
    sqlite3_bind_int64(p.part, 6, c->counts.n_curated);
    sqlite3_bind_int64(p.part, 7, c->counts.n_failed);
    sqlite3_bind_text(p.part, 8, now, -1, SQLITE_STATIC);
    rc = fm_batch_step_done(st, p.part, "write batch part", err);
  }
  /* The part and the end of its lease commit together. */
  if (!rc) rc = fm_lease_finish(st, &fm_batch_part_leases, &c->lease, 1, NULL, err);
  stmts_free(&p);
  if (!rc) fm_batch_kill_maybe(&c->kill, c->part_no, STAGE_BEFORE_COMMIT);
  return rc;
}

/* ---- finishing: reconcile and mark ---------------------------------------- */

fm_rc fm_batch_finish_body(fm_store *st, void *vctx, fm_error *err) {
  finish_ctx *f = vctx;
  batch_ctx *c = f->c;
  memset(&f->total, 0, sizeof f->total);
  f->problem[0] = '\0';
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(st,
                              "SELECT part_no, n_in, n_proposed, n_queued, n_curated,"
                              " n_failed FROM batch_parts WHERE batch_run_id = ?1"
                              " ORDER BY part_no",
                              &s, err);
  if (rc) return rc;
  sqlite3_bind_int64(s, 1, c->run_id);
  int64_t expect_part = 1;
  int step;
  while ((step = sqlite3_step(s)) == SQLITE_ROW) {
    int64_t part = sqlite3_column_int64(s, 0);
    fm_batch_counts k = {sqlite3_column_int64(s, 1), sqlite3_column_int64(s, 2),
                         sqlite3_column_int64(s, 3), sqlite3_column_int64(s, 4),
                         sqlite3_column_int64(s, 5)};
    int64_t lo = (part - 1) * c->p.batch_size;
    int64_t size = c->n_fields - lo < c->p.batch_size ? c->n_fields - lo : c->p.batch_size;
    int64_t sum = k.n_proposed + k.n_queued + k.n_curated + k.n_failed;
    if (!f->problem[0]) {
      if (part != expect_part)
        snprintf(f->problem, sizeof f->problem, "part %lld is missing",
                 (long long)expect_part);
      else if (k.n_in != sum)
        snprintf(f->problem, sizeof f->problem,
                 "part %lld: %lld fields in != %lld proposed + %lld queued + %lld "
                 "curated + %lld failed",
                 (long long)part, (long long)k.n_in, (long long)k.n_proposed,
                 (long long)k.n_queued, (long long)k.n_curated, (long long)k.n_failed);
      else if (k.n_in != size)
        snprintf(f->problem, sizeof f->problem,
                 "part %lld: %lld fields in, the part holds %lld", (long long)part,
                 (long long)k.n_in, (long long)size);
    }
    expect_part = part + 1;
    f->total.n_in += k.n_in;
    f->total.n_proposed += k.n_proposed;
    f->total.n_queued += k.n_queued;
    f->total.n_curated += k.n_curated;
    f->total.n_failed += k.n_failed;
  }
  sqlite3_finalize(s);
  if (step != SQLITE_DONE) return fm_store_steperr(st, step, err, "read batch parts");
  if (!f->problem[0] && expect_part - 1 != c->n_parts)
    snprintf(f->problem, sizeof f->problem, "%lld of %lld parts committed",
             (long long)(expect_part - 1), (long long)c->n_parts);
  if (!f->problem[0] && f->total.n_in != c->n_fields)
    snprintf(f->problem, sizeof f->problem,
             "total: %lld fields in over all parts, the model has %lld",
             (long long)f->total.n_in, (long long)c->n_fields);

  char now[32];
  fm_store_now(now, sizeof now);
  const char *status = f->problem[0] ? "failed" : "succeeded";
  if ((rc = fm_store_prepare(st,
                             "UPDATE batch_runs SET status = ?2, finished_at = ?3,"
                             " error = ?4 WHERE batch_run_id = ?1",
                             &s, err)))
    return rc;
  sqlite3_bind_int64(s, 1, c->run_id);
  sqlite3_bind_text(s, 2, status, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 3, now, -1, SQLITE_STATIC);
  if (f->problem[0]) sqlite3_bind_text(s, 4, f->problem, -1, SQLITE_STATIC);
  rc = fm_batch_step_done(st, s, "finish batch run", err);
  sqlite3_finalize(s);
  if (rc) return rc;
  char key[32], *after;
  snprintf(key, sizeof key, "%lld", (long long)c->run_id);
  json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:s?}", "status", status, "n_in",
                        (json_int_t)f->total.n_in, "n_proposed",
                        (json_int_t)f->total.n_proposed, "n_queued",
                        (json_int_t)f->total.n_queued, "n_curated",
                        (json_int_t)f->total.n_curated, "n_failed",
                        (json_int_t)f->total.n_failed, "error",
                        f->problem[0] ? f->problem : NULL);
  after = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(o);
  rc = fm_store_audit(st, c->by, "batch_finish", "batch_run", key, NULL, after, err);
  free(after);
  return rc;
}

fm_rc fm_batch_committed_parts(fm_store *st, batch_ctx *c, unsigned char *done,
                             fm_error *err) {
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(st, "SELECT part_no FROM batch_parts WHERE batch_run_id = ?1",
                              &s, err);
  if (rc) return rc;
  sqlite3_bind_int64(s, 1, c->run_id);
  int step;
  while ((step = sqlite3_step(s)) == SQLITE_ROW) {
    int64_t p = sqlite3_column_int64(s, 0);
    if (p >= 1 && p <= c->n_parts) done[p - 1] = 1;
  }
  sqlite3_finalize(s);
  if (step != SQLITE_DONE) return fm_store_steperr(st, step, err, "read batch parts");
  return FM_OK;
}

void fm_batch_flush_warnings(fm_buf *b) {
  char *line = b->buf;
  while (line && *line) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = '\0';
    fm_warn("%s", line);
    if (!nl) break;
    line = nl + 1;
  }
  fm_buf_reset(b);
}

