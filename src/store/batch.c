/* batch.c: resumable batch mapping runs (docs/batch.md).
 *
 * A run ranks every query field of a model and routes each one: already
 * curated (an accepted mapping exists), proposed (confident best candidate,
 * through fm_store_decide) or queued for review (weak or no candidate).
 * Fields go in parts of batch_size in model order; part p (1-based) holds
 * query indexes [(p-1)*size, p*size).  Each part's matches are computed
 * OUTSIDE the database transaction; then one fm_store_tx writes the part's
 * candidates, decisions, queue entries and its batch_parts row.  The body
 * first checks that batch_parts has no row for (run, part): a part is either
 * wholly committed or absent, so resuming skips committed parts and redoes
 * the rest, and a body re-run after SQLITE_BUSY starts from a rolled-back
 * state with its counters reset.
 *
 * Ownership: everything allocated here is freed before the public functions
 * return, except fm_batch_info (fm_batch_info_free / fm_batch_list_free). */
#include "fm_fields.h"
#include "fm_review.h"
#include "fm_store_batch.h"
#include "fm_store_sql.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void fm_batch_opts_default(fm_batch_opts *o) {
  memset(o, 0, sizeof *o);
  o->batch_size = FM_BATCH_DEFAULT_SIZE;
  o->k = FM_BATCH_DEFAULT_K;
  o->threshold = FM_BATCH_DEFAULT_THRESHOLD;
  o->margin = FM_BATCH_DEFAULT_MARGIN;
}

static double clamp01(double x) { return x < 0 ? 0 : x > 1 ? 1 : x; }

double fm_batch_uncertainty(int ncand, double score, double margin, int has_runner_up,
                            double threshold, double margin_min) {
  if (ncand <= 0) return 1.0;
  double s = threshold > 0 ? clamp01(score / threshold) : 1.0;
  double m = !has_runner_up || margin_min <= 0 ? 1.0 : clamp01(margin / margin_min);
  return 1.0 - 0.5 * s - 0.5 * m;
}

/* ---- the kill test hook ----------------------------------------------- */

enum { STAGE_NONE = 0, STAGE_BEFORE_COMMIT, STAGE_AFTER_COMMIT };

typedef struct kill_hook {
  int64_t part;
  int stage;
} kill_hook;

static void kill_parse(const char *spec, kill_hook *k) {
  k->part = 0;
  k->stage = STAGE_NONE;
  if (!spec || !*spec) return;
  char *end;
  long long p = strtoll(spec, &end, 10);
  if (p <= 0 || *end != ':') {
    fm_warn("FM_BATCH_KILL_AT='%s' ignored (want PART:before_commit|after_commit)", spec);
    return;
  }
  if (!strcmp(end + 1, "before_commit")) k->stage = STAGE_BEFORE_COMMIT;
  else if (!strcmp(end + 1, "after_commit")) k->stage = STAGE_AFTER_COMMIT;
  else {
    fm_warn("FM_BATCH_KILL_AT='%s' ignored (want PART:before_commit|after_commit)", spec);
    return;
  }
  k->part = p;
}

static void kill_maybe(const kill_hook *k, int64_t part, int stage) {
  if (k->stage != stage || k->part != part) return;
  fflush(NULL);
  raise(SIGKILL);
}

/* ---- small statement helpers ------------------------------------------ */

static fm_rc step_done(fm_store *st, sqlite3_stmt *s, const char *what, fm_error *err) {
  int step = fm_store_step(st, s);
  sqlite3_reset(s);
  if (step != SQLITE_DONE) return fm_store_steperr(st, step, err, what);
  return FM_OK;
}

/* ---- run parameters and identity --------------------------------------- */

typedef struct run_params {
  int batch_size, k;
  double threshold, margin;
} run_params;

static char *params_json(const run_params *p) {
  json_t *o = json_pack("{s:i, s:i, s:f, s:f}", "batch_size", p->batch_size, "k", p->k,
                        "threshold", p->threshold, "margin", p->margin);
  char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(o);
  return s; /* caller frees with free() */
}

static fm_rc params_parse(const char *text, run_params *p, int64_t run, fm_error *err) {
  json_error_t je;
  json_t *o = json_loads(text ? text : "", 0, &je);
  int bs = 0, k = 0;
  double t = NAN, m = NAN;
  if (o) json_unpack(o, "{s?i, s?i, s?F, s?F}", "batch_size", &bs, "k", &k, "threshold",
                     &t, "margin", &m);
  json_decref(o);
  if (bs <= 0 || k <= 0 || isnan(t) || isnan(m))
    return fm_error_set(err, FM_ERR_CORRUPT,
                        "batch run %lld: its recorded parameters are unreadable: %s",
                        (long long)run, text ? text : "(null)");
  p->batch_size = bs;
  p->k = k;
  p->threshold = t;
  p->margin = m;
  return FM_OK;
}

/* ---- the state of one run ------------------------------------------------ */

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
  /* The part being written. */
  int64_t part_no;
  size_t lo, hi;
  const fm_candidate *cand; /* (hi-lo) x k */
  const int *ncand;
  fm_batch_counts counts;
  int skipped;
  fm_buf warnings; /* one line per failed field, emitted after commit */
} batch_ctx;

/* Build a field set from one side of the model (borrowed strings copied). */
static fm_rc model_fields(const fm_model *m, fm_role role, fm_fieldset *fs, fm_error *err) {
  size_t n = role == FM_ROLE_QUERY ? fm_model_nqueries(m) : fm_model_nrefs(m);
  for (size_t i = 0; i < n; i++) {
    fm_field f;
    if (role == FM_ROLE_QUERY) fm_model_query(m, i, &f);
    else fm_model_ref(m, i, &f);
    if (fm_fieldset_add(fs, &f))
      return fm_error_set(err, FM_ERR_NOMEM, "out of memory copying the model's fields");
  }
  return FM_OK;
}

static fm_rc sync_fields(fm_store *st, batch_ctx *c, fm_error *err) {
  const fm_role roles[2] = {FM_ROLE_REFERENCE, FM_ROLE_QUERY};
  fm_rc rc = FM_OK;
  for (int i = 0; i < 2 && !rc; i++) {
    fm_fieldset fs;
    fm_fieldset_init(&fs);
    char label[512];
    fm_store_dict_label(c->info.name, roles[i], label, sizeof label);
    rc = model_fields(c->m, roles[i], &fs, err);
    if (!rc) rc = fm_store_import_set(st, label, roles[i], &fs, c->by, NULL, err);
    fm_fieldset_free(&fs);
  }
  return rc;
}

/* field_id for every model field of one side; all must be in the store. */
static fm_rc resolve_ids(fm_store *st, batch_ctx *c, fm_role role, int64_t **out,
                         fm_error *err) {
  size_t n = role == FM_ROLE_QUERY ? fm_model_nqueries(c->m) : fm_model_nrefs(c->m);
  int64_t *ids = fm_calloc(n ? n : 1, sizeof *ids);
  if (!ids) return fm_error_set(err, FM_ERR_NOMEM, "out of memory resolving field ids");
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(st,
                              "SELECT field_id FROM fields WHERE vendor = ?1 AND id = ?2"
                              " AND role = ?3",
                              &s, err);
  for (size_t i = 0; i < n && !rc; i++) {
    fm_field f;
    if (role == FM_ROLE_QUERY) fm_model_query(c->m, i, &f);
    else fm_model_ref(c->m, i, &f);
    sqlite3_bind_text(s, 1, f.vendor, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, f.id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, role == FM_ROLE_QUERY ? "query" : "reference", -1,
                      SQLITE_STATIC);
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) ids[i] = sqlite3_column_int64(s, 0);
    else if (step == SQLITE_DONE)
      rc = fm_error_set(err, FM_ERR_NOTFOUND,
                        "%s field %s %s of model '%s' is not in the database",
                        role == FM_ROLE_QUERY ? "query" : "reference", f.vendor, f.id,
                        c->info.name);
    else rc = fm_store_steperr(st, step, err, "resolve field ids");
    sqlite3_reset(s);
  }
  sqlite3_finalize(s);
  if (rc) {
    fm_free(ids);
    return rc;
  }
  *out = ids;
  return FM_OK;
}

/* Start: the model_runs row (one per checksum), the batch_runs row, the
 * audit row.  Re-runnable: everything it writes rolls back together. */
static fm_rc start_body(fm_store *st, void *vctx, fm_error *err) {
  batch_ctx *c = vctx;
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(st,
                              "SELECT model_run_id FROM model_runs WHERE model_checksum = ?1"
                              " ORDER BY model_run_id LIMIT 1",
                              &s, err);
  if (rc) return rc;
  sqlite3_bind_text(s, 1, c->checksum, -1, SQLITE_STATIC);
  int step = sqlite3_step(s);
  c->model_run_id = step == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
  sqlite3_finalize(s);
  if (step != SQLITE_ROW && step != SQLITE_DONE)
    return fm_store_steperr(st, step, err, "find model run");
  char now[32];
  fm_store_now(now, sizeof now);
  if (!c->model_run_id) {
    if ((rc = fm_store_prepare(st,
                               "INSERT INTO model_runs(model_path, model_checksum,"
                               " model_name, config, created_at) VALUES (?1,?2,?3,?4,?5)",
                               &s, err)))
      return rc;
    sqlite3_bind_text(s, 1, c->opts->model_path ? c->opts->model_path : "", -1,
                      SQLITE_STATIC);
    sqlite3_bind_text(s, 2, c->checksum, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, c->info.name ? c->info.name : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, c->info.config_json ? c->info.config_json : "{}", -1,
                      SQLITE_STATIC);
    sqlite3_bind_text(s, 5, now, -1, SQLITE_STATIC);
    rc = step_done(st, s, "register model run", err);
    sqlite3_finalize(s);
    if (rc) return rc;
    c->model_run_id = sqlite3_last_insert_rowid(fm_store_db(st));
  }
  char *params = params_json(&c->p);
  if (!params) return fm_error_set(err, FM_ERR_NOMEM, "out of memory writing parameters");
  rc = fm_store_prepare(st,
                        "INSERT INTO batch_runs(model_run_id, status, params, n_fields,"
                        " n_batches, started_at, started_by)"
                        " VALUES (?1, 'running', ?2, ?3, ?4, ?5, ?6)",
                        &s, err);
  if (!rc) {
    sqlite3_bind_int64(s, 1, c->model_run_id);
    sqlite3_bind_text(s, 2, params, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, c->n_fields);
    sqlite3_bind_int64(s, 4, c->n_parts);
    sqlite3_bind_text(s, 5, now, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, c->by, -1, SQLITE_STATIC);
    rc = step_done(st, s, "create batch run", err);
    sqlite3_finalize(s);
  }
  if (!rc) {
    c->run_id = sqlite3_last_insert_rowid(fm_store_db(st));
    char key[32], *after = NULL;
    snprintf(key, sizeof key, "%lld", (long long)c->run_id);
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:o}", "model", c->info.name,
                          "checksum", c->checksum, "path",
                          c->opts->model_path ? c->opts->model_path : "", "n_fields",
                          (json_int_t)c->n_fields, "n_parts", (json_int_t)c->n_parts,
                          "params", json_loads(params, 0, NULL));
    after = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    rc = fm_store_audit(st, c->by, "batch_start", "batch_run", key, NULL, after, err);
    free(after);
  }
  free(params);
  return rc;
}

/* Resume: the run must exist, not have succeeded, and be of this model. */
static fm_rc load_for_resume(fm_store *st, batch_ctx *c, fm_error *err) {
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(
      st,
      "SELECT r.status, r.params, r.n_fields, r.n_batches, r.model_run_id,"
      " m.model_checksum, m.model_name FROM batch_runs r"
      " JOIN model_runs m ON m.model_run_id = r.model_run_id WHERE r.batch_run_id = ?1",
      &s, err);
  if (rc) return rc;
  int64_t run = c->opts->resume_run;
  sqlite3_bind_int64(s, 1, run);
  int step = sqlite3_step(s);
  if (step == SQLITE_DONE) {
    sqlite3_finalize(s);
    return fm_error_set(err, FM_ERR_NOTFOUND, "%s: no batch run %lld (see 'batch list')",
                        fm_store_path(st), (long long)run);
  }
  if (step != SQLITE_ROW) {
    rc = fm_store_steperr(st, step, err, "read batch run");
    sqlite3_finalize(s);
    return rc;
  }
  const char *status = (const char *)sqlite3_column_text(s, 0);
  const char *sum = (const char *)sqlite3_column_text(s, 5);
  if (!strcmp(status, "succeeded"))
    rc = fm_error_set(err, FM_ERR_ARG,
                      "batch run %lld already finished (succeeded); nothing to resume",
                      (long long)run);
  else if (strcmp(sum, c->checksum))
    rc = fm_error_set(err, FM_ERR_CONFLICT,
                      "batch run %lld was made with model '%s' (checksum %s), not this "
                      "model (checksum %s); resume it with the same model file",
                      (long long)run, sqlite3_column_text(s, 6), sum, c->checksum);
  else
    rc = params_parse((const char *)sqlite3_column_text(s, 1), &c->p, run, err);
  if (!rc) {
    c->run_id = run;
    c->n_fields = sqlite3_column_int64(s, 2);
    c->n_parts = sqlite3_column_int64(s, 3);
    c->model_run_id = sqlite3_column_int64(s, 4);
    if (c->n_fields != (int64_t)fm_model_nqueries(c->m))
      rc = fm_error_set(err, FM_ERR_CORRUPT,
                        "batch run %lld counts %lld query fields, the model has %zu",
                        (long long)run, (long long)c->n_fields, fm_model_nqueries(c->m));
  }
  sqlite3_finalize(s);
  return rc;
}

static fm_rc resume_body(fm_store *st, void *vctx, fm_error *err) {
  batch_ctx *c = vctx;
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(st,
                              "UPDATE batch_runs SET status = 'running', error = NULL,"
                              " finished_at = NULL WHERE batch_run_id = ?1",
                              &s, err);
  if (rc) return rc;
  sqlite3_bind_int64(s, 1, c->run_id);
  rc = step_done(st, s, "mark batch run running", err);
  sqlite3_finalize(s);
  if (rc) return rc;
  char key[32];
  snprintf(key, sizeof key, "%lld", (long long)c->run_id);
  return fm_store_audit(st, c->by, "batch_resume", "batch_run", key, NULL, NULL, err);
}

/* ---- matching one part (outside any transaction) ------------------------ */

typedef struct match_job {
  const fm_model *m;
  fm_matcher *mt;
  size_t lo, hi, base; /* query indexes [lo, hi); out row = i - base */
  int k;
  fm_candidate *out;
  int *nout;
  fm_rc rc;
  fm_error err;
} match_job;

static void *match_thread(void *arg) {
  match_job *j = arg;
  for (size_t i = j->lo; i < j->hi && !j->rc; i++) {
    fm_field q;
    fm_model_query(j->m, i, &q);
    j->rc = fm_match(j->mt, q.id, NULL, j->k, j->out + (i - j->base) * (size_t)j->k,
                     &j->nout[i - j->base], &j->err);
  }
  return NULL;
}

static fm_rc match_part(const fm_model *m, fm_matcher **mts, int nthreads, size_t lo,
                        size_t hi, int k, fm_candidate *out, int *nout, fm_error *err) {
  match_job jobs[64];
  pthread_t tids[64];
  int started[64] = {0};
  size_t n = hi - lo, per = (n + (size_t)nthreads - 1) / (size_t)nthreads;
  for (int t = 0; t < nthreads; t++) {
    jobs[t] = (match_job){.m = m, .mt = mts[t], .lo = lo + (size_t)t * per, .k = k,
                          .base = lo, .out = out, .nout = nout};
    if (jobs[t].lo > hi) jobs[t].lo = hi;
    jobs[t].hi = jobs[t].lo + per > hi ? hi : jobs[t].lo + per;
    fm_error_init(&jobs[t].err);
    if (t == 0 || pthread_create(&tids[t], NULL, match_thread, &jobs[t]) != 0)
      continue; /* thread 0 (and any that could not start) runs below */
    started[t] = 1;
  }
  for (int t = 0; t < nthreads; t++)
    if (!started[t]) match_thread(&jobs[t]);
  for (int t = 0; t < nthreads; t++)
    if (started[t]) pthread_join(tids[t], NULL);
  for (int t = 0; t < nthreads; t++)
    if (jobs[t].rc) {
      if (err) *err = jobs[t].err;
      return jobs[t].rc;
    }
  return FM_OK;
}

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
                             " AND status IN ('accepted', 'rejected')",
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
    if ((rc = step_done(st, p->cand, "write candidate", err))) return rc;
  }

  /* What analysts decided already: an accepted mapping, rejected pairs. */
  int curated = 0, nrej = 0;
  int64_t rejected[128];
  sqlite3_bind_int64(p->decided, 1, q);
  int step;
  while ((step = sqlite3_step(p->decided)) == SQLITE_ROW) {
    if (!strcmp((const char *)sqlite3_column_text(p->decided, 0), "accepted")) curated = 1;
    else if (nrej < 128) rejected[nrej++] = sqlite3_column_int64(p->decided, 1);
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
  const char *reason = best < 0                          ? "no_candidates"
                       : score < c->p.threshold          ? "low_score"
                       : second >= 0 && margin < c->p.margin ? "small_margin"
                                                         : NULL;
  if (reason) {
    double u = fm_batch_uncertainty(best < 0 ? 0 : 1, score, margin, second >= 0,
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
    if ((rc = step_done(st, p->queue, "queue field for review", err))) return rc;
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

static fm_rc part_body(fm_store *st, void *vctx, fm_error *err) {
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
    return FM_OK;
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
    rc = step_done(st, p.part, "write batch part", err);
  }
  stmts_free(&p);
  if (!rc) kill_maybe(&c->kill, c->part_no, STAGE_BEFORE_COMMIT);
  return rc;
}

/* ---- finishing: reconcile and mark ---------------------------------------- */

typedef struct finish_ctx {
  batch_ctx *c;
  fm_batch_counts total;
  char problem[512]; /* empty when the counts reconcile */
} finish_ctx;

static fm_rc finish_body(fm_store *st, void *vctx, fm_error *err) {
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
  rc = step_done(st, s, "finish batch run", err);
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

/* Parts already committed: a bitmap by part number (1-based). */
static fm_rc committed_parts(fm_store *st, batch_ctx *c, unsigned char *done,
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

/* Emit the collected per-field warnings, one fm_warn per line. */
static void flush_warnings(fm_buf *b) {
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
  if (!st || !m) return fm_error_set(err, FM_ERR_ARG, "batch run: no store or no model");
  if (opts->resume_run < 0)
    return fm_error_set(err, FM_ERR_ARG, "batch run: bad run id %lld",
                        (long long)opts->resume_run);
  if (!opts->resume_run) {
    if (opts->batch_size < 1)
      return fm_error_set(err, FM_ERR_ARG, "batch size must be at least 1 (got %d)",
                          opts->batch_size);
    if (opts->k < 1 || opts->k > 100)
      return fm_error_set(err, FM_ERR_ARG, "k must be in 1..100 (got %d)", opts->k);
    if (!isfinite(opts->threshold) || !isfinite(opts->margin) || opts->margin < 0)
      return fm_error_set(err, FM_ERR_ARG,
                          "threshold must be a number and margin a number >= 0");
  }

  batch_ctx c;
  memset(&c, 0, sizeof c);
  c.m = m;
  c.opts = opts;
  c.by = opts->actor && *opts->actor ? opts->actor : "unknown";
  fm_buf_init(&c.warnings);
  fm_model_info_get(m, &c.info);
  if (!c.info.name) c.info.name = "";
  snprintf(c.checksum, sizeof c.checksum, "%08x", (unsigned)c.info.checksum);
  kill_parse(opts->kill_at ? opts->kill_at : getenv("FM_BATCH_KILL_AT"), &c.kill);
  c.p = (run_params){opts->batch_size, opts->k, opts->threshold, opts->margin};
  c.n_fields = (int64_t)fm_model_nqueries(m);
  if (c.n_fields == 0)
    return fm_error_set(err, FM_ERR_ARG, "model '%s' has no query fields", c.info.name);

  fm_rc rc = FM_OK;
  fm_matcher *mts[64] = {0};
  int nthreads = opts->threads;
  fm_candidate *cand = NULL;
  int *ncand = NULL;
  unsigned char *done = NULL;
  if (opts->resume_run) {
    if ((rc = load_for_resume(st, &c, err))) goto out;
  } else {
    c.n_parts = (c.n_fields + c.p.batch_size - 1) / c.p.batch_size;
    if ((rc = sync_fields(st, &c, err))) goto out;
  }
  if ((rc = resolve_ids(st, &c, FM_ROLE_QUERY, &c.qfid, err)) ||
      (rc = resolve_ids(st, &c, FM_ROLE_REFERENCE, &c.rfid, err)))
    goto out;
  if (opts->resume_run) rc = fm_store_tx(st, resume_body, &c, err);
  else rc = fm_store_tx(st, start_body, &c, err);
  if (rc) goto out;
  if (run_id) *run_id = c.run_id;
  snprintf(c.actor, sizeof c.actor, "batch:%lld", (long long)c.run_id);

  if (nthreads <= 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    nthreads = n > 0 ? (int)n : 1;
  }
  if (nthreads > 64) nthreads = 64;
  if (nthreads > c.p.batch_size) nthreads = c.p.batch_size;
  for (int t = 0; t < nthreads && !rc; t++) rc = fm_matcher_new(m, &mts[t], err);
  cand = fm_calloc((size_t)c.p.batch_size * (size_t)c.p.k, sizeof *cand);
  ncand = fm_calloc((size_t)c.p.batch_size, sizeof *ncand);
  done = fm_calloc((size_t)c.n_parts + 1, 1);
  if (!rc && (!cand || !ncand || !done))
    rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory for a batch of %d fields",
                      c.p.batch_size);
  if (!rc) rc = committed_parts(st, &c, done, err);
  if (rc) goto out;

  fm_progress prog;
  fm_progress_start(&prog, "batch", (uint64_t)c.n_fields);
  if (opts->quiet) prog.enabled = 0;
  int64_t ran = 0, skipped = 0;
  for (int64_t part = 1; part <= c.n_parts && !rc; part++) {
    c.part_no = part;
    c.lo = (size_t)((part - 1) * c.p.batch_size);
    c.hi = c.lo + (size_t)c.p.batch_size;
    if (c.hi > (size_t)c.n_fields) c.hi = (size_t)c.n_fields;
    if (done[part - 1]) {
      skipped++;
      if (opts->on_part) opts->on_part(opts->on_part_ctx, part, c.n_parts, NULL, 1);
      fm_progress_update(&prog, c.hi);
      continue;
    }
    if (opts->max_parts > 0 && ran >= opts->max_parts) break;
    if ((rc = match_part(m, mts, nthreads, c.lo, c.hi, c.p.k, cand, ncand, err))) {
      /* Some matcher paths return a bare code; say at least where. */
      if (err && !err->msg[0]) fm_error_set(err, rc, "%s", fm_rc_name(rc));
      fm_error_prefix(err, "batch run %lld part %lld: matching", (long long)c.run_id,
                      (long long)part);
      break;
    }
    c.cand = cand;
    c.ncand = ncand;
    if ((rc = fm_store_tx(st, part_body, &c, err))) {
      fm_error_prefix(err, "batch run %lld part %lld", (long long)c.run_id,
                      (long long)part);
      break;
    }
    flush_warnings(&c.warnings);
    kill_maybe(&c.kill, part, STAGE_AFTER_COMMIT);
    if (c.skipped) skipped++;
    else ran++;
    if (opts->on_part)
      opts->on_part(opts->on_part_ctx, part, c.n_parts, c.skipped ? NULL : &c.counts,
                    c.skipped);
    fm_progress_update(&prog, c.hi);
  }
  if (!rc) fm_progress_finish(&prog);
  else if (prog.enabled) fputc('\n', stderr);
  if (report) {
    report->parts_run = ran;
    report->parts_skipped = skipped;
  }
  if (rc) goto out;

  /* Totals and, when every part is in, the reconciliation. */
  memset(done, 0, (size_t)c.n_parts + 1);
  if ((rc = committed_parts(st, &c, done, err))) goto out;
  int64_t have = 0;
  for (int64_t i = 0; i < c.n_parts; i++) have += done[i];
  if (have == c.n_parts) {
    finish_ctx f = {.c = &c};
    if ((rc = fm_store_tx(st, finish_body, &f, err))) goto out;
    if (report) {
      report->finished = 1;
      report->total = f.total;
    }
    if (f.problem[0])
      rc = fm_error_set(err, FM_ERR_CORRUPT,
                        "batch run %lld failed: its counts do not reconcile: %s",
                        (long long)c.run_id, f.problem);
  } else if (report) {
    fm_batch_info info;
    if ((rc = fm_batch_status(st, c.run_id, &info, err))) goto out;
    report->total = info.total;
    fm_batch_info_free(&info);
  }

out:
  if (report) {
    report->run_id = c.run_id;
    report->model_run_id = c.model_run_id;
    report->n_parts = c.n_parts;
    report->seconds = fm_now() - t0;
  }
  for (int t = 0; t < 64; t++) fm_matcher_free(mts[t]);
  fm_free(cand);
  fm_free(ncand);
  fm_free(done);
  fm_free(c.qfid);
  fm_free(c.rfid);
  fm_buf_free(&c.warnings);
  return rc;
}

/* ---- status and listing ---------------------------------------------------- */

static const char *arena_col(fm_arena *a, sqlite3_stmt *s, int i) {
  if (sqlite3_column_type(s, i) == SQLITE_NULL) return NULL;
  const char *t = (const char *)sqlite3_column_text(s, i);
  return fm_arena_strdup(a, t ? t : "");
}

#define RUN_COLUMNS                                                              \
  "SELECT r.batch_run_id, r.model_run_id, r.status, r.params, m.model_name,"     \
  " m.model_path, m.model_checksum, r.started_at, r.finished_at, r.started_by,"  \
  " r.error, r.n_fields, r.n_batches,"                                           \
  " (SELECT count(*) FROM batch_parts p WHERE p.batch_run_id = r.batch_run_id)," \
  " (SELECT total(n_in) FROM batch_parts p WHERE p.batch_run_id = r.batch_run_id),"\
  " (SELECT total(n_proposed) FROM batch_parts p"                                \
  "  WHERE p.batch_run_id = r.batch_run_id),"                                    \
  " (SELECT total(n_queued) FROM batch_parts p"                                  \
  "  WHERE p.batch_run_id = r.batch_run_id),"                                    \
  " (SELECT total(n_curated) FROM batch_parts p"                                 \
  "  WHERE p.batch_run_id = r.batch_run_id),"                                    \
  " (SELECT total(n_failed) FROM batch_parts p"                                  \
  "  WHERE p.batch_run_id = r.batch_run_id)"                                     \
  " FROM batch_runs r JOIN model_runs m ON m.model_run_id = r.model_run_id"

/* Fill info (arena initialised by the caller) from a RUN_COLUMNS row. */
static int info_from_row(fm_batch_info *info, sqlite3_stmt *s) {
  fm_arena *a = &info->arena;
  info->run_id = sqlite3_column_int64(s, 0);
  info->model_run_id = sqlite3_column_int64(s, 1);
  info->status = arena_col(a, s, 2);
  info->params = arena_col(a, s, 3);
  info->model_name = arena_col(a, s, 4);
  info->model_path = arena_col(a, s, 5);
  info->model_checksum = arena_col(a, s, 6);
  info->started_at = arena_col(a, s, 7);
  info->finished_at = arena_col(a, s, 8);
  info->started_by = arena_col(a, s, 9);
  info->error = arena_col(a, s, 10);
  info->n_fields = sqlite3_column_int64(s, 11);
  info->n_batches = sqlite3_column_int64(s, 12);
  info->nparts = (size_t)sqlite3_column_int64(s, 13);
  info->total.n_in = (int64_t)sqlite3_column_double(s, 14);
  info->total.n_proposed = (int64_t)sqlite3_column_double(s, 15);
  info->total.n_queued = (int64_t)sqlite3_column_double(s, 16);
  info->total.n_curated = (int64_t)sqlite3_column_double(s, 17);
  info->total.n_failed = (int64_t)sqlite3_column_double(s, 18);
  return info->status && info->params && info->model_name && info->started_at;
}

fm_rc fm_batch_status(fm_store *st, int64_t run_id, fm_batch_info *out, fm_error *err) {
  memset(out, 0, sizeof *out);
  fm_arena_init(&out->arena);
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(st,
                              run_id > 0 ? RUN_COLUMNS " WHERE r.batch_run_id = ?1"
                                         : RUN_COLUMNS " ORDER BY r.batch_run_id DESC"
                                                       " LIMIT 1",
                              &s, err);
  if (rc) return rc;
  if (run_id > 0) sqlite3_bind_int64(s, 1, run_id);
  int step = sqlite3_step(s);
  if (step == SQLITE_ROW && !info_from_row(out, s))
    rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory reading a batch run");
  else if (step == SQLITE_DONE)
    rc = run_id > 0 ? fm_error_set(err, FM_ERR_NOTFOUND,
                                   "%s: no batch run %lld (see 'batch list')", fm_store_path(st),
                                   (long long)run_id)
                    : fm_error_set(err, FM_ERR_NOTFOUND, "%s: no batch runs yet",
                                   fm_store_path(st));
  else if (step != SQLITE_ROW)
    rc = fm_store_steperr(st, step, err, "read batch run");
  sqlite3_finalize(s);
  if (rc) goto fail;

  /* Parts. */
  size_t cap = 0, n = 0;
  if ((rc = fm_store_prepare(st,
                             "SELECT part_no, n_in, n_proposed, n_queued, n_curated,"
                             " n_failed, finished_at FROM batch_parts"
                             " WHERE batch_run_id = ?1 ORDER BY part_no",
                             &s, err)))
    goto fail;
  sqlite3_bind_int64(s, 1, out->run_id);
  while (!rc && (step = sqlite3_step(s)) == SQLITE_ROW) {
    if (fm_grow((void **)&out->parts, &cap, n + 1, sizeof *out->parts)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory reading batch parts");
      break;
    }
    fm_batch_part *p = &out->parts[n++];
    p->part_no = sqlite3_column_int64(s, 0);
    p->c = (fm_batch_counts){sqlite3_column_int64(s, 1), sqlite3_column_int64(s, 2),
                             sqlite3_column_int64(s, 3), sqlite3_column_int64(s, 4),
                             sqlite3_column_int64(s, 5)};
    p->finished_at = arena_col(&out->arena, s, 6);
  }
  if (!rc && step != SQLITE_DONE) rc = fm_store_steperr(st, step, err, "read batch parts");
  sqlite3_finalize(s);
  out->nparts = n;
  if (!rc) return FM_OK;
fail:
  fm_batch_info_free(out);
  return rc;
}

void fm_batch_info_free(fm_batch_info *info) {
  if (!info) return;
  fm_free(info->parts);
  fm_arena_free(&info->arena);
  memset(info, 0, sizeof *info);
}

fm_rc fm_batch_list(fm_store *st, fm_batch_info **out, size_t *n, fm_error *err) {
  *out = NULL;
  *n = 0;
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(st, RUN_COLUMNS " ORDER BY r.batch_run_id DESC", &s, err);
  if (rc) return rc;
  fm_batch_info *v = NULL;
  size_t cap = 0, k = 0;
  int step;
  while (!rc && (step = sqlite3_step(s)) == SQLITE_ROW) {
    if (fm_grow((void **)&v, &cap, k + 1, sizeof *v)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory listing batch runs");
      break;
    }
    memset(&v[k], 0, sizeof v[k]);
    fm_arena_init(&v[k].arena);
    k++;
    if (!info_from_row(&v[k - 1], s))
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory listing batch runs");
  }
  if (!rc && step != SQLITE_DONE) rc = fm_store_steperr(st, step, err, "list batch runs");
  sqlite3_finalize(s);
  if (rc) {
    fm_batch_list_free(v, k);
    return rc;
  }
  *out = v;
  *n = k;
  return FM_OK;
}

void fm_batch_list_free(fm_batch_info *v, size_t n) {
  for (size_t i = 0; i < n; i++) fm_batch_info_free(&v[i]);
  fm_free(v);
}
