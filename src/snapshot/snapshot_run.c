/* snapshot_run.c: one snapshot run (fm_snapshot_run, _backfill, _run_due):
 * per job and hour, claim the partition's lease in snapshot_runs through
 * the lease mechanism (fm_lease.h), build the partition in <root>/_tmp,
 * rename it into place and mark it succeeded with its catalog row in one
 * transaction.  The steps and crash behaviour are described at the top of
 * snapshot.c. */
#include "snapshot_internal.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- the status rows: claim, renew, finish -------------------------------------- */

/* A partition's lease lives in its snapshot_runs row; a failed partition is
 * retried by the next run. */
static const fm_lease_table snapshot_leases = {
    .table = "snapshot_runs", .status = "status", .owner = "lease_owner",
    .expires = "lease_expires", .attempts = "attempt", .started = "started_at",
    .finished = "finished_at", .error = "error", .pending = "pending",
    .running = "running", .ok = "succeeded", .failed = "failed", .retry_failed = 1};

typedef struct claim {
  /* in */
  const char *job, *dt, *run_id;
  int hr, force, lease_seconds;
  /* out */
  fm_snapshot_outcome outcome; /* 0: claimed */
  int64_t id;
  int version, attempt;
  char holder[160];
  fm_lease l;
} claim;

/* The latest version's row of (job, dt, hr): *have, c->id, c->version,
 * status. */
static fm_rc latest_row(fm_store *st, claim *c, int *have, char status[16], fm_error *err) {
  sqlite3_stmt *s;
  fm_rc rc = fm_store_query(st, &s, err,
                            "SELECT snapshot_run_id, status, version FROM snapshot_runs"
                            " WHERE job = ? AND dt = ? AND hr = ? ORDER BY version DESC"
                            " LIMIT 1",
                            "tti", c->job, c->dt, (int64_t)c->hr);
  if (rc) return rc;
  int step = fm_store_step(st, s);
  *have = step == SQLITE_ROW;
  status[0] = '\0';
  if (*have) {
    c->id = sqlite3_column_int64(s, 0);
    snprintf(status, 16, "%s", (const char *)sqlite3_column_text(s, 1));
    c->version = sqlite3_column_int(s, 2);
  }
  sqlite3_finalize(s);
  if (!*have && step != SQLITE_DONE) return fm_store_steperr(st, step, err, "read snapshot_runs");
  return FM_OK;
}

/* Run one statement on the claimed row: sql binds ?1 = row id and
 * ?2 = run id. */
static fm_rc row_exec(fm_store *st, const char *sql, int64_t id, const char *run_id,
                      const char *what, fm_error *err) {
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(st, sql, &s, err);
  if (rc) return rc;
  sqlite3_bind_int64(s, 1, id);
  if (sqlite3_bind_parameter_count(s) >= 2) sqlite3_bind_text(s, 2, run_id, -1, SQLITE_STATIC);
  int step = fm_store_step(st, s);
  sqlite3_finalize(s);
  if (step != SQLITE_DONE) return fm_store_steperr(st, step, err, what);
  return FM_OK;
}

static fm_rc claim_tx(fm_store *st, void *ctx, fm_error *err) {
  claim *c = ctx;
  c->outcome = 0;
  c->id = 0;
  c->holder[0] = '\0';
  char status[16];
  int have;
  fm_rc rc = latest_row(st, c, &have, status, err);
  if (rc) return rc;
  int done = have && (!strcmp(status, "succeeded") || !strcmp(status, "expired"));
  if (done && !c->force) {
    c->outcome = FM_SNAPSHOT_SKIPPED_DONE;
    snprintf(c->holder, sizeof c->holder, "version %d %s", c->version, status);
    return FM_OK;
  }
  if (!have || done) { /* first write, or --force: a new version to claim */
    c->version = have ? c->version + 1 : 1;
    if ((rc = fm_store_run(st, "claim snapshot partition", NULL, err,
                           "INSERT INTO snapshot_runs (job, dt, hr, version, run_id,"
                           " status, attempt) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0)",
                           "ttiit", c->job, c->dt, (int64_t)c->hr, (int64_t)c->version,
                           c->run_id)))
      return rc;
    c->id = sqlite3_last_insert_rowid(fm_store_db(st));
  }
  if ((rc = fm_lease_claim(st, &snapshot_leases, c->id, c->run_id, c->lease_seconds, &c->l,
                           err)))
    return rc;
  if (c->l.outcome == FM_LEASE_HELD) {
    c->outcome = FM_SNAPSHOT_SKIPPED_LEASED;
    /* a long owner is cut, never overflowed (the check is for GCC at -O0) */
    int w = snprintf(c->holder, sizeof c->holder, "leased by %.100s until %.31s", c->l.holder,
                     c->l.expires);
    (void)w;
    return FM_OK;
  }
  if (c->l.outcome != FM_LEASE_CLAIMED)
    return fm_error_set(err, FM_ERR_INTERNAL, "snapshot_runs row %lld: status %s",
                        (long long)c->id, c->l.status);
  c->attempt = c->l.attempt;
  /* A retry starts from a clean row under this run's id. */
  return row_exec(st,
                  "UPDATE snapshot_runs SET run_id = ?2, rows_read = NULL, rows_written = NULL,"
                  " bytes = NULL, sha256 = NULL, location = NULL WHERE snapshot_run_id = ?1",
                  c->id, c->run_id, "claim snapshot partition", err);
}

/* What finishing a partition writes. */
typedef struct finish {
  const fm_lease *l;
  const char *now;
  int ok;
  int64_t rows_read, rows_written, bytes;
  const char *sha256, *location, *error;
  /* catalog row (ok only) */
  const job *j;
  const char *dt, *columns;
  int hr, version;
} finish;

static fm_rc finish_tx(fm_store *st, void *ctx, fm_error *err) {
  finish *f = ctx;
  fm_rc rc = fm_lease_finish(st, &snapshot_leases, f->l, f->ok, f->ok ? NULL : f->error, err);
  if (rc) return rc;
  sqlite3_stmt *s;
  rc = fm_store_query(st, &s, err,
                      "UPDATE snapshot_runs SET rows_read = ?2, rows_written = ?3, bytes = ?4,"
                      " sha256 = ?5, location = ?6 WHERE snapshot_run_id = ?1",
                      "iii", (int64_t)f->l->unit, (int64_t)f->rows_read, (int64_t)f->rows_written);
  if (rc) return rc;
  if (f->ok) {
    sqlite3_bind_int64(s, 4, f->bytes);
    sqlite3_bind_text(s, 5, f->sha256, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, f->location, -1, SQLITE_STATIC);
  }
  int step = fm_store_step(st, s);
  sqlite3_finalize(s);
  if (step != SQLITE_DONE) return fm_store_steperr(st, step, err, "update snapshot_runs");
  if (!f->ok) return FM_OK;
  return fm_store_run(st, "update catalog", NULL, err,
                      "INSERT OR REPLACE INTO catalog (job, source_table, dt, hr, version,"
                      " format, location, columns, rows, bytes, sha256, run_id, added_at)"
                      " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                      "tttiitttiittt", f->j->name, f->j->table, f->dt, (int64_t)f->hr,
                      (int64_t)f->version, fm_snapshot_format_name(f->j->fmt), f->location,
                      f->columns, (int64_t)f->rows_written, (int64_t)f->bytes, f->sha256,
                      f->l->owner, f->now);
}

/* ---- one run -------------------------------------------------------------------- */

typedef struct run {
  fm_store *st;
  const char *root;
  const fm_snapshot_opts *o;
  fm_snapshot_result *res;
  char run_id[160];
  sqlite3 *rdb;        /* read-only connection holding the read transaction */
  int schema_version;
  json_t *models;      /* model_runs rows read in the transaction */
  fm_error first;      /* first failure */
} run;

void fm_snapshot_opts_default(fm_snapshot_opts *o) {
  memset(o, 0, sizeof *o);
  o->lease_seconds = 900;
  o->max_catchup_hours = 48;
  o->retention = 1;
}

static void make_run_id(char *out, size_t n) {
  static atomic_uint counter;
  char host[64] = "host";
  gethostname(host, sizeof host - 1);
  host[sizeof host - 1] = '\0';
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  char ts[24];
  strftime(ts, sizeof ts, "%Y%m%dT%H%M%SZ", &tm);
  snprintf(out, n, "%s-%s-%ld-%u", ts, host, (long)getpid(),
           atomic_fetch_add(&counter, 1) + 1);
}

static fm_rc open_read(run *r, fm_error *err) {
  const char *path = fm_store_path(r->st);
  if (sqlite3_open_v2(path, &r->rdb, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
      SQLITE_OK)
    return fm_error_set(err, FM_ERR_DB, "%s: open for reading: %s", path,
                        r->rdb ? sqlite3_errmsg(r->rdb) : "out of memory");
  sqlite3_busy_timeout(r->rdb, 5000);
  if (sqlite3_exec(r->rdb, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
    return fm_error_set(err, FM_ERR_DB, "%s: begin read: %s", path, sqlite3_errmsg(r->rdb));
  /* The first read pins the snapshot every job of this run reads. */
  sqlite3_stmt *s;
  if (sqlite3_prepare_v2(r->rdb,
                         "SELECT model_run_id, model_name, model_checksum, model_path, "
                         "created_at FROM model_runs ORDER BY model_run_id",
                         -1, &s, NULL) != SQLITE_OK)
    return fm_error_set(err, FM_ERR_DB, "%s: read model_runs: %s", path,
                        sqlite3_errmsg(r->rdb));
  r->models = json_array();
  int step;
  while ((step = sqlite3_step(s)) == SQLITE_ROW) {
    json_t *m = json_pack("{s:I, s:s, s:s, s:s, s:s}", "model_run_id",
                          (json_int_t)sqlite3_column_int64(s, 0), "model_name",
                          (const char *)sqlite3_column_text(s, 1), "model_checksum",
                          (const char *)sqlite3_column_text(s, 2), "model_path",
                          (const char *)sqlite3_column_text(s, 3), "created_at",
                          (const char *)sqlite3_column_text(s, 4));
    if (!r->models || !m || json_array_append_new(r->models, m)) {
      sqlite3_finalize(s);
      return fm_error_set(err, FM_ERR_NOMEM, "out of memory reading model_runs");
    }
  }
  sqlite3_finalize(s);
  if (step != SQLITE_DONE)
    return fm_error_set(err, FM_ERR_DB, "%s: read model_runs: %s", path,
                        sqlite3_errmsg(r->rdb));
  if (sqlite3_prepare_v2(r->rdb, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK &&
      sqlite3_step(s) == SQLITE_ROW)
    r->schema_version = sqlite3_column_int(s, 0);
  sqlite3_finalize(s);
  return FM_OK;
}

static void close_read(run *r) {
  if (r->rdb) {
    if (!sqlite3_get_autocommit(r->rdb)) sqlite3_exec(r->rdb, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(r->rdb);
  }
  r->rdb = NULL;
  json_decref(r->models);
  r->models = NULL;
}

static int64_t count_rows(sqlite3 *db, const char *sql, fm_error *err, const char *job) {
  sqlite3_stmt *s;
  int64_t n = -1;
  if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
    fm_error_set(err, FM_ERR_DB, "snapshot job '%s': count rows: %s", job, sqlite3_errmsg(db));
    return -1;
  }
  if (sqlite3_step(s) == SQLITE_ROW) n = sqlite3_column_int64(s, 0);
  else fm_error_set(err, FM_ERR_DB, "snapshot job '%s': count rows: %s", job, sqlite3_errmsg(db));
  sqlite3_finalize(s);
  return n;
}

/* Remove <root>/_tmp/<prefix>* leftovers of crashed writers of a partition
 * we now hold the lease of. */
static void clean_leftovers(const char *tmpdir, const char *prefix) {
  fm_buf b;
  fm_buf_init(&b);
  DIR *d = opendir(tmpdir);
  struct dirent *de;
  while (d && (de = readdir(d))) {
    if (strncmp(de->d_name, prefix, strlen(prefix)) != 0) continue;
    fm_buf_reset(&b);
    if (fm_buf_printf(&b, "%s/%s", tmpdir, de->d_name) == FM_OK)
      fm_snapshot_rmdir_flat(b.buf, NULL);
  }
  if (d) closedir(d);
  fm_buf_free(&b);
}

static char *manifest_json(const run *r, const job *j, const claim *c,
                           const fm_snapshot_file *f, int64_t rows_read, const char *fname,
                           int64_t hour) {
  char at[32], now[32];
  fm_snapshot_hour_str(hour, at);
  fm_store_now(now, sizeof now);
  json_error_t je;
  json_t *cols = json_loads(f->schema_json, 0, &je);
  json_t *m = json_pack(
      "{s:i, s:s, s:s, s:s, s:i, s:s, s:i, s:i, s:s, s:s, s:s, s:s?, s:o, s:I, s:I,"
      " s:[{s:s, s:I, s:I, s:s}], s:{s:s, s:i}, s:O}",
      "manifest_version", 1, "job", j->name, "table", j->table, "dt", c->dt, "hr", c->hr,
      "partition_time", at, "version", c->version, "attempt", c->attempt, "run_id",
      r->run_id, "written_at", now, "format", fm_snapshot_format_name(j->fmt), "filter",
      j->filter, "columns", cols ? cols : json_array(), "rows", (json_int_t)f->rows,
      "rows_read", (json_int_t)rows_read, "files", "path", fname, "rows",
      (json_int_t)f->rows, "bytes", (json_int_t)f->bytes, "sha256", f->sha256, "source",
      "database", fm_store_path(r->st), "schema_version", r->schema_version, "models",
      r->models);
  char *d = m ? json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
  json_decref(m);
  char *out = d ? fm_strdup(d) : NULL;
  free(d);
  return out;
}

static void report(run *r, const job *j, const claim *c, fm_snapshot_outcome oc,
                   int64_t rows_read, int64_t rows_written, const fm_snapshot_file *f,
                   const char *location, const char *detail) {
  fm_snapshot_partition p = {
      .job = j->name, .table = j->table, .dt = c->dt, .hr = c->hr,
      .version = c->version, .attempt = c->attempt, .outcome = oc,
      .rows_read = rows_read, .rows_written = rows_written,
      .bytes = f ? (int64_t)f->bytes : 0, .sha256 = f ? f->sha256 : "",
      .location = location ? location : "", .detail = detail ? detail : ""};
  if (r->res) {
    if (oc == FM_SNAPSHOT_WRITTEN) r->res->written++;
    else if (oc == FM_SNAPSHOT_FAILED) r->res->failed++;
    else r->res->skipped++;
  }
  if (oc == FM_SNAPSHOT_FAILED)
    fm_snapshot_notify(r->o->on_failure, r->o->webhook, fm_store_path(r->st), r->run_id, &p);
  if (r->o->on_partition) r->o->on_partition(r->o->ctx, &p);
}

/* Rename the built partition tmpdir to final (an older version there is
 * first moved to trash), then fsync both directories. */
static fm_rc move_into_place(const char *tmpdir, const char *final, const char *dtdir,
                             const char *trash, const char *tmproot, fm_error *e) {
  fm_rc rc = fm_mkdirs(dtdir, e);
  if (rc) return rc;
  struct stat sb;
  if (stat(final, &sb) == 0) { /* --force, or a crash after the rename */
    char *tr = fm_path_dirname(trash);
    rc = tr ? fm_mkdirs(tr, e) : fm_error_set(e, FM_ERR_NOMEM, "out of memory");
    fm_free(tr);
    if (rc) return rc;
    if (rename(final, trash) != 0) {
      return fm_error_set(e, FM_ERR_IO, "%s: cannot move the old version aside: %s", final,
                          strerror(errno));
    }
  }
  if (rename(tmpdir, final) != 0) {
    return fm_error_set(e, FM_ERR_IO, "%s: cannot rename to %s: %s", tmpdir, final,
                        strerror(errno));
  }
  if ((rc = fm_snapshot_fsync_dir(dtdir, e))) return rc;
  return fm_snapshot_fsync_dir(tmproot, e);
}

/* Write one claimed partition; on failure mark the row failed and notify. */
static fm_rc write_partition(run *r, const job *j, claim *c, int64_t hour) {
  fm_error e;
  fm_error_init(&e);
  fm_rc rc = FM_OK;
  char *sql = NULL, *count_sql = NULL, *manifest = NULL;
  fm_snapshot_file f;
  memset(&f, 0, sizeof f);
  int64_t rows_read = -1;
  fm_buf tmpdir, tmproot, prefix, rel, final, dtdir, path, trash;
  fm_buf *bufs[] = {&tmpdir, &tmproot, &prefix, &rel, &final, &dtdir, &path, &trash};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) fm_buf_init(bufs[i]);
  char fname[32];
  snprintf(fname, sizeof fname, "part-00000.%s", fm_snapshot_format_name(j->fmt));
  if (fm_buf_printf(&tmproot, "%s/_tmp", r->root) ||
      fm_buf_printf(&prefix, "%s.dt=%s.hr=%02d.", j->name, c->dt, c->hr) ||
      fm_buf_printf(&tmpdir, "%s/%s%s", tmproot.buf, prefix.buf, r->run_id) ||
      fm_buf_printf(&rel, "%s/dt=%s/hr=%02d", j->name, c->dt, c->hr) ||
      fm_buf_printf(&dtdir, "%s/%s/dt=%s", r->root, j->name, c->dt) ||
      fm_buf_printf(&final, "%s/%s", r->root, rel.buf) ||
      fm_buf_printf(&trash, "%s/_trash/%s%s", r->root, prefix.buf, r->run_id)) {
    rc = fm_error_set(&e, FM_ERR_NOMEM, "out of memory");
    goto fail;
  }
  if ((rc = fm_mkdirs(tmproot.buf, &e))) goto fail;
  clean_leftovers(tmproot.buf, prefix.buf);
  if (mkdir(tmpdir.buf, 0755) != 0) {
    rc = fm_error_set(&e, FM_ERR_IO, "%s: cannot create directory: %s", tmpdir.buf,
                      strerror(errno));
    goto fail;
  }
  if ((rc = fm_snapshot_job_sql(r->rdb, j, &sql, &count_sql, &e))) goto fail;
  if ((rows_read = count_rows(r->rdb, count_sql, &e, j->name)) < 0) {
    rc = e.rc;
    goto fail;
  }
  const char *mm = getenv("FM_SNAPSHOT_TEST_MISMATCH");
  int drop = mm && (!strcmp(mm, "*") || !strcmp(mm, j->name)) ? 1 : 0;
  fm_buf_reset(&path);
  if (fm_buf_printf(&path, "%s/%s", tmpdir.buf, fname)) {
    rc = fm_error_set(&e, FM_ERR_NOMEM, "out of memory");
    goto fail;
  }
  if ((rc = fm_snapshot_write_sql_ex(r->rdb, sql, j->fmt, path.buf, drop, "written", &f, &e)))
    goto fail;
  if ((int64_t)f.rows != rows_read) {
    rc = fm_error_set(&e, FM_ERR_CORRUPT,
                      "audit failed: %lld rows read from '%s' but %llu written to %s",
                      (long long)rows_read, j->table, (unsigned long long)f.rows, fname);
    goto fail;
  }
  if (!(manifest = manifest_json(r, j, c, &f, rows_read, fname, hour))) {
    rc = fm_error_set(&e, FM_ERR_NOMEM, "out of memory building the manifest");
    goto fail;
  }
  fm_buf_reset(&path);
  if (fm_buf_printf(&path, "%s/_manifest.json", tmpdir.buf) ||
      (rc = fm_snapshot_write_atomic(path.buf, NULL, manifest, strlen(manifest), NULL, &e)))
    goto fail_nomem_or_rc;
  fm_snapshot_die_at("manifest");
  fm_buf_reset(&path);
  if (fm_buf_printf(&path, "%s/_SUCCESS", tmpdir.buf) ||
      (rc = fm_snapshot_write_atomic(path.buf, NULL, "", 0, NULL, &e)))
    goto fail_nomem_or_rc;
  /* Still ours?  Extend the lease over the rename and the status update. */
  char now[32];
  if ((rc = fm_lease_renew(r->st, &snapshot_leases, &c->l, r->o->lease_seconds, &e))) goto fail;
  if ((rc = move_into_place(tmpdir.buf, final.buf, dtdir.buf, trash.buf, tmproot.buf, &e)))
    goto fail;
  fm_snapshot_die_at("renamed");
  fm_snapshot_rmdir_flat(trash.buf, NULL);
  fm_store_now(now, sizeof now);
  finish done = {.l = &c->l, .now = now, .ok = 1,
                 .rows_read = rows_read, .rows_written = (int64_t)f.rows,
                 .bytes = (int64_t)f.bytes, .sha256 = f.sha256, .location = rel.buf,
                 .j = j, .dt = c->dt, .columns = f.schema_json, .hr = c->hr,
                 .version = c->version};
  if ((rc = fm_store_tx(r->st, finish_tx, &done, &e))) goto fail_visible;
  fm_snapshot_die_at("succeeded");
  report(r, j, c, FM_SNAPSHOT_WRITTEN, rows_read, (int64_t)f.rows, &f, rel.buf, NULL);
  goto out;

fail_nomem_or_rc:
  if (!rc) rc = fm_error_set(&e, FM_ERR_NOMEM, "out of memory");
fail:
  fm_snapshot_rmdir_flat(tmpdir.buf, NULL);
fail_visible:
  fm_error_prefix(&e, "snapshot %s dt=%s hr=%02d", j->name, c->dt, c->hr);
  {
    char now2[32];
    fm_store_now(now2, sizeof now2);
    finish bad = {.l = &c->l, .now = now2, .ok = 0,
                  .rows_read = rows_read < 0 ? 0 : rows_read,
                  .rows_written = (int64_t)f.rows, .error = e.msg};
    fm_error e2;
    fm_error_init(&e2);
    if (fm_store_tx(r->st, finish_tx, &bad, &e2))
      fm_warn("snapshot %s: could not record the failure: %s", j->name, e2.msg);
  }
  if (!r->first.rc) r->first = e;
  report(r, j, c, FM_SNAPSHOT_FAILED, rows_read < 0 ? 0 : rows_read, (int64_t)f.rows, NULL,
         NULL, e.msg);
out:
  sqlite3_free(sql);
  sqlite3_free(count_sql);
  fm_free(manifest);
  fm_snapshot_file_free(&f);
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) fm_buf_free(bufs[i]);
  return rc;
}

/* One hour for the given jobs, reading in one transaction. */
static fm_rc run_hour(run *r, const job *jobs, size_t n, int64_t hour, fm_error *err) {
  char dt[16];
  int hr;
  fm_snapshot_hour_parts(hour, dt, &hr);
  fm_rc rc = open_read(r, err);
  if (rc) {
    close_read(r);
    return rc;
  }
  for (size_t i = 0; i < n; i++) {
    claim c = {.job = jobs[i].name, .dt = dt, .hr = hr, .run_id = r->run_id,
               .force = r->o->force, .lease_seconds = r->o->lease_seconds};
    fm_error e;
    fm_error_init(&e);
    if ((rc = fm_store_tx(r->st, claim_tx, &c, &e))) {
      /* The status table itself failed: nothing was claimed. */
      fm_error_prefix(&e, "snapshot %s dt=%s hr=%02d", jobs[i].name, dt, hr);
      if (!r->first.rc) r->first = e;
      report(r, &jobs[i], &c, FM_SNAPSHOT_FAILED, 0, 0, NULL, NULL, e.msg);
      continue;
    }
    if (c.outcome) {
      report(r, &jobs[i], &c, c.outcome, 0, 0, NULL, NULL, c.holder);
      continue;
    }
    fm_snapshot_die_at("claimed");
    /* Test hook for the two-runner test: hold the lease a while. */
    const char *hold = getenv("FM_SNAPSHOT_TEST_HOLD_MS");
    if (hold && atoi(hold) > 0) {
      struct timespec ts = {atoi(hold) / 1000, (long)(atoi(hold) % 1000) * 1000000L};
      nanosleep(&ts, NULL);
    }
    write_partition(r, &jobs[i], &c, hour);
  }
  close_read(r);
  return FM_OK;
}

/* The opening of the run entry points: *opts, or when it is NULL the
 * defaults filled into *def (the caller's storage); then a store and a root
 * directory are required. */
static fm_rc entry_check(fm_store *st, const char *root, const fm_snapshot_opts **opts,
                         fm_snapshot_opts *def, fm_error *err) {
  if (!*opts) {
    fm_snapshot_opts_default(def);
    *opts = def;
  }
  if (!st || !root || !*root)
    return fm_error_set(err, FM_ERR_ARG, "snapshot: no store or no root directory given");
  return FM_OK;
}

/* Run the given hours (ascending) for the selected jobs. */
static fm_rc run_hours(fm_store *st, const char *root, const int64_t *hours, size_t nh,
                       const fm_snapshot_opts *opts, fm_snapshot_result *res, fm_error *err) {
  fm_snapshot_opts def;
  fm_rc rc = entry_check(st, root, &opts, &def, err);
  if (rc) return rc;
  if (opts->lease_seconds <= 0)
    return fm_error_set(err, FM_ERR_ARG, "snapshot: the lease must be at least 1 second");
  fm_snapshot_result local = {0};
  run r;
  memset(&r, 0, sizeof r);
  r.st = st;
  r.root = root;
  r.o = opts;
  r.res = res ? res : &local;
  fm_error_init(&r.first);
  make_run_id(r.run_id, sizeof r.run_id);
  /* No future hour, none its own retention would delete (touch nothing). */
  rc = fm_snapshot_check_hours(st, opts->job, hours, nh, (int64_t)time(NULL), err);
  if (rc) return rc;
  /* The lake must be this store's (first: a refused run touches nothing). */
  if ((rc = fm_snapshot_lake_claim(st, root, err))) return rc;
  /* Leftovers of crashed runs: _tmp entries and temp files at the root. */
  {
    fm_buf t;
    fm_buf_init(&t);
    if (fm_buf_printf(&t, "%s/_tmp", root)) rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
    if (!rc) rc = fm_snapshot_remove_leftovers(t.buf, 1, NULL, err);
    if (!rc) rc = fm_snapshot_remove_leftovers(root, 0, NULL, err);
    fm_buf_free(&t);
    if (rc) return rc;
  }
  /* Old versions moved aside by earlier runs that died before removing them. */
  fm_buf trash;
  fm_buf_init(&trash);
  if (fm_buf_printf(&trash, "%s/_trash", root) == FM_OK) {
    DIR *d = opendir(trash.buf);
    struct dirent *de;
    fm_buf p;
    fm_buf_init(&p);
    while (d && (de = readdir(d))) {
      if (de->d_name[0] == '.') continue;
      fm_buf_reset(&p);
      if (fm_buf_printf(&p, "%s/%s", trash.buf, de->d_name) == FM_OK)
        fm_snapshot_rmdir_flat(p.buf, NULL);
    }
    if (d) closedir(d);
    fm_buf_free(&p);
  }
  fm_buf_free(&trash);
  job *jobs;
  size_t n;
  if ((rc = fm_snapshot_load_jobs(st, opts->job, &jobs, &n, err))) return rc;
  for (size_t i = 0; i < nh && rc == FM_OK; i++) rc = run_hour(&r, jobs, n, hours[i], err);
  fm_snapshot_jobs_free(jobs, n);
  if (rc) return rc;
  fm_error ce;
  fm_error_init(&ce);
  fm_rc crc = fm_snapshot_write_catalog(st, root, &ce);
  for (size_t i = 0; i < nh && crc == FM_OK; i++)
    crc = fm_snapshot_hour_marker(st, root, hours[i], &ce);
  if (crc == FM_OK && opts->retention)
    crc = fm_snapshot_retention(st, root, (int64_t)time(NULL), r.res, &ce);
  if (r.first.rc) {
    if (crc) fm_warn("%s", ce.msg); /* reported too, not lost behind the first failure */
    if (err) *err = r.first;
    return r.first.rc;
  }
  if (crc && err) *err = ce;
  return crc;
}

static fm_rc run_span(fm_store *st, const char *root, int64_t from, int64_t to,
                      const fm_snapshot_opts *opts, fm_snapshot_result *res, fm_error *err) {
  if (to < from || to - from >= 10000)
    return fm_error_set(err, FM_ERR_ARG, "snapshot: bad hour range (%lld hours)",
                        (long long)(to - from + 1));
  int64_t *hours = fm_calloc((size_t)(to - from + 1), sizeof *hours);
  if (!hours) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  for (int64_t h = from; h <= to; h++) hours[h - from] = h;
  fm_rc rc = run_hours(st, root, hours, (size_t)(to - from + 1), opts, res, err);
  fm_free(hours);
  return rc;
}

fm_rc fm_snapshot_run(fm_store *st, const char *root, int64_t hour,
                      const fm_snapshot_opts *opts, fm_snapshot_result *res, fm_error *err) {
  return run_span(st, root, hour, hour, opts, res, err);
}

fm_rc fm_snapshot_backfill(fm_store *st, const char *root, int64_t from_hour,
                           int64_t to_hour, const fm_snapshot_opts *opts,
                           fm_snapshot_result *res, fm_error *err) {
  return run_span(st, root, from_hour, to_hour, opts, res, err);
}

fm_rc fm_snapshot_run_due(fm_store *st, const char *root, int64_t now,
                          const fm_snapshot_opts *opts, fm_snapshot_result *res,
                          fm_error *err) {
  fm_snapshot_opts def;
  fm_rc rc = entry_check(st, root, &opts, &def, err);
  if (rc) return rc;
  /* Every missing or failed hour inside the retention windows, oldest
   * first, bounded (snapshot_repair.c). */
  int64_t *hours = NULL;
  size_t n = 0;
  rc = fm_snapshot_due_hours(st, opts->job, now, opts->max_catchup_hours, &hours, &n, err);
  if (rc == FM_OK) rc = run_hours(st, root, hours, n, opts, res, err);
  fm_free(hours);
  return rc;
}
