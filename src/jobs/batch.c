/* batch.c: resumable batch mapping runs (docs/batch.md): options, the
 * test hooks, and setting a run up (its rows, or checking a resumed one).
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
 * state with its counters reset.  Each part is claimed through the lease
 * mechanism (fm_lease.h, table batch_part_leases) before it is matched, so
 * two processes working on one run never rank the same part at once.
 *
 * Ownership: everything allocated here is freed before the public functions
 * return, except fm_batch_info (fm_batch_info_free / fm_batch_list_free). */
#include "batch_internal.h"

#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

void fm_batch_opts_default(fm_batch_opts *o) {
  memset(o, 0, sizeof *o);
  o->batch_size = FM_BATCH_DEFAULT_SIZE;
  o->k = FM_BATCH_DEFAULT_K;
  o->min_confidence = FM_BATCH_DEFAULT_CONFIDENCE;
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

void fm_batch_kill_parse(const char *spec, kill_hook *k) {
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

void fm_batch_kill_maybe(const kill_hook *k, int64_t part, int stage) {
  if (k->stage != stage || k->part != part) return;
  fflush(NULL);
  raise(SIGKILL);
}

/* ---- small statement helpers ------------------------------------------ */

fm_rc fm_batch_step_done(fm_store *st, sqlite3_stmt *s, const char *what, fm_error *err) {
  int step = fm_store_step(st, s);
  sqlite3_reset(s);
  if (step != SQLITE_DONE) return fm_store_steperr(st, step, err, what);
  return FM_OK;
}

/* ---- run parameters ------------------------------------------------------- */

static char *params_json(const run_params *p) {
  json_t *o = json_pack("{s:i, s:i, s:f, s:f}", "batch_size", p->batch_size, "k", p->k,
                        "threshold", p->threshold, "margin", p->margin);
  if (o && !isnan(p->min_confidence))
    json_object_set_new(o, "min_confidence", json_real(p->min_confidence));
  char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(o);
  return s; /* caller frees with free() */
}

static fm_rc params_parse(const char *text, run_params *p, int64_t run, fm_error *err) {
  json_error_t je;
  json_t *o = json_loads(text ? text : "", 0, &je);
  int bs = 0, k = 0;
  double t = NAN, m = NAN, mc = NAN;
  if (o) json_unpack(o, "{s?i, s?i, s?F, s?F, s?F}", "batch_size", &bs, "k", &k, "threshold",
                     &t, "margin", &m, "min_confidence", &mc);
  json_decref(o);
  if (bs <= 0 || k <= 0 || isnan(t) || isnan(m))
    return fm_error_set(err, FM_ERR_CORRUPT,
                        "batch run %lld: its recorded parameters are unreadable: %s",
                        (long long)run, text ? text : "(null)");
  p->batch_size = bs;
  p->k = k;
  p->threshold = t;
  p->margin = m;
  p->min_confidence = mc; /* absent in runs recorded before confidence */
  return FM_OK;
}

/* ---- setting a run up ------------------------------------------------------ */

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
    rc = fm_batch_step_done(st, s, "register model run", err);
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
    rc = fm_batch_step_done(st, s, "create batch run", err);
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
  rc = fm_batch_step_done(st, s, "mark batch run running", err);
  sqlite3_finalize(s);
  if (rc) return rc;
  char key[32];
  snprintf(key, sizeof key, "%lld", (long long)c->run_id);
  return fm_store_audit(st, c->by, "batch_resume", "batch_run", key, NULL, NULL, err);
}


/* The lease table of batch parts.  Its schema step: created with a run's
 * first claim (CREATE TABLE IF NOT EXISTS), so stores made before it work
 * unchanged. */
#define PART_LEASES_SCHEMA                                                        \
  "CREATE TABLE IF NOT EXISTS batch_part_leases ("                                \
  "  batch_run_id  INTEGER NOT NULL REFERENCES batch_runs(batch_run_id),"         \
  "  part_no       INTEGER NOT NULL CHECK (part_no >= 1),"                        \
  "  status        TEXT NOT NULL DEFAULT 'pending' CHECK (status IN"              \
  "                ('pending','running','succeeded','failed')),"                  \
  "  lease_owner   TEXT,"                                                         \
  "  lease_expires TEXT,"                                                         \
  "  attempts      INTEGER NOT NULL DEFAULT 0,"                                   \
  "  started_at    TEXT,"                                                         \
  "  finished_at   TEXT,"                                                         \
  "  error         TEXT,"                                                         \
  "  PRIMARY KEY (batch_run_id, part_no))"

const fm_lease_table fm_batch_part_leases = {
    .table = "batch_part_leases", .status = "status", .owner = "lease_owner",
    .expires = "lease_expires", .attempts = "attempts", .started = "started_at",
    .finished = "finished_at", .error = "error", .pending = "pending",
    .running = "running", .ok = "succeeded", .failed = "failed", .retry_failed = 1};

fm_rc fm_batch_begin(fm_store *st, batch_ctx *c, fm_error *err) {
  fm_rc rc;
  if (c->opts->resume_run) {
    if ((rc = load_for_resume(st, c, err))) return rc;
  } else {
    c->n_parts = (c->n_fields + c->p.batch_size - 1) / c->p.batch_size;
    if ((rc = sync_fields(st, c, err))) return rc;
  }
  if ((rc = resolve_ids(st, c, FM_ROLE_QUERY, &c->qfid, err)) ||
      (rc = resolve_ids(st, c, FM_ROLE_REFERENCE, &c->rfid, err)))
    return rc;
  if ((rc = fm_store_exec(st, PART_LEASES_SCHEMA, err))) return rc;
  rc = fm_store_tx(st, c->opts->resume_run ? resume_body : start_body, c, err);
  if (rc) return rc;
  snprintf(c->actor, sizeof c->actor, "batch:%lld", (long long)c->run_id);
  fm_lease_owner_name(c->actor, c->lease_owner, sizeof c->lease_owner);
  return FM_OK;
}

/* The lease row of the current part, then the claim, in one transaction. */
static fm_rc claim_body(fm_store *st, void *vctx, fm_error *err) {
  batch_ctx *c = vctx;
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(st,
                              "INSERT INTO batch_part_leases(batch_run_id, part_no)"
                              " VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                              &s, err);
  if (rc) return rc;
  sqlite3_bind_int64(s, 1, c->run_id);
  sqlite3_bind_int64(s, 2, c->part_no);
  rc = fm_batch_step_done(st, s, "create a part lease", err);
  sqlite3_finalize(s);
  if (rc) return rc;
  if ((rc = fm_store_prepare(st,
                             "SELECT rowid FROM batch_part_leases WHERE batch_run_id = ?1"
                             " AND part_no = ?2",
                             &s, err)))
    return rc;
  sqlite3_bind_int64(s, 1, c->run_id);
  sqlite3_bind_int64(s, 2, c->part_no);
  int step = fm_store_step(st, s);
  int64_t unit = step == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
  sqlite3_finalize(s);
  if (step != SQLITE_ROW) return fm_store_steperr(st, step, err, "read a part lease");
  return fm_lease_claim(st, &fm_batch_part_leases, unit, c->lease_owner,
                        FM_BATCH_LEASE_SECONDS, &c->lease, err);
}

fm_rc fm_batch_claim_part(fm_store *st, batch_ctx *c, fm_error *err) {
  return fm_store_tx(st, claim_body, c, err);
}

fm_rc fm_batch_reclaim_dead(fm_store *st, batch_ctx *c, fm_error *err) {
  size_t n = 0;
  fm_rc rc = fm_lease_reclaim_dead(st, &fm_batch_part_leases, &n, err);
  if (rc == FM_OK && n)
    fm_warn("batch run %lld: %zu part lease(s) of a process that is gone released",
            (long long)c->run_id, n);
  return rc;
}
