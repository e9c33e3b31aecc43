/* snapshot.c: table-driven hourly snapshots.
 *
 * One run, for one hour:
 *   1. load the enabled snapshot_jobs rows;
 *   2. open a read-only connection and BEGIN a read transaction whose
 *      snapshot every job reads from (the first read pins it);
 *   3. per job: take the partition's lease in snapshot_runs (BEGIN
 *      IMMEDIATE through fm_store_tx); build the partition in
 *      <root>/_tmp/<job>.dt=<dt>.hr=<HH>.<run id>/ (part file, manifest,
 *      _SUCCESS, each fsynced); check rows read == rows written; renew the
 *      lease; rename the directory to <root>/<job>/dt=<dt>/hr=<HH> (an
 *      older version is first moved to <root>/_trash); fsync; mark the row
 *      succeeded and upsert the catalog row in one transaction;
 *   4. rewrite catalog.json; apply retention.
 * A crash before the rename leaves nothing visible; after it, a complete
 * partition whose row is still "running": its lease expires and the next
 * run rewrites it (attempt + 1).  Test hooks: FM_SNAPSHOT_DIE_AT=<stage>
 * raises SIGKILL at claimed|written|manifest|renamed|succeeded|catalog;
 * FM_SNAPSHOT_TEST_MISMATCH=<job or *> drops one row from the written file. */
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

/* ---- hours ------------------------------------------------------------------ */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = (int)(yoe + era * 400 + (*m <= 2));
}

int64_t fm_snapshot_hour_of(int64_t t) { return (t >= 0 ? t : t - 3599) / 3600; }

static void hour_parts(int64_t hour, char dt[16], int *hr) {
  int64_t days = hour >= 0 ? hour / 24 : (hour - 23) / 24;
  int y, m, d;
  civil_from_days(days, &y, &m, &d);
  snprintf(dt, 16, "%04d-%02d-%02d", y, m, d);
  *hr = (int)(hour - days * 24);
}

void fm_snapshot_hour_str(int64_t hour, char out[32]) {
  char dt[16];
  int hr;
  hour_parts(hour, dt, &hr);
  snprintf(out, 32, "%sT%02d:00:00Z", dt, hr);
}

fm_rc fm_snapshot_parse_hour(const char *s, int64_t *hour, fm_error *err) {
  if (!s) return fm_error_set(err, FM_ERR_ARG, "no time given");
  if (!strcmp(s, "now")) {
    *hour = fm_snapshot_hour_of((int64_t)time(NULL));
    return FM_OK;
  }
  int y, mo, d, h, mi = 0, se = 0, n = 0;
  size_t len = strlen(s);
  if (sscanf(s, "%4d-%2d-%2dT%2d%n", &y, &mo, &d, &h, &n) != 4 || n != 13) goto bad;
  const char *r = s + n;
  if (*r == ':') {
    int k = 0;
    if (sscanf(r, ":%2d%n", &mi, &k) != 1 || k != 3) goto bad;
    r += k;
    if (*r == ':') {
      if (sscanf(r, ":%2d%n", &se, &k) != 1 || k != 3) goto bad;
      r += k;
    }
  }
  if (*r == 'Z') r++;
  if (*r || (size_t)(r - s) != len) goto bad;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || h < 0) goto bad;
  if (mi || se)
    return fm_error_set(err, FM_ERR_ARG,
                        "time '%s': snapshots are hourly; give a whole hour "
                        "(YYYY-MM-DDTHH:00:00Z)", s);
  int64_t days = days_from_civil(y, mo, d);
  int cy, cm, cd;
  civil_from_days(days, &cy, &cm, &cd);
  if (cy != y || cm != mo || cd != d) goto bad; /* 2024-02-31 */
  *hour = days * 24 + h;
  return FM_OK;
bad:
  return fm_error_set(err, FM_ERR_ARG,
                      "time '%s': expected ISO-8601 UTC like 2024-05-01T13:00:00Z "
                      "(or 2024-05-01T13, or now)", s);
}

/* ---- jobs --------------------------------------------------------------------- */

typedef struct job {
  char *name, *table, *columns, *filter;
  fm_snapshot_format fmt;
  int retention_hours;
} job;

static void jobs_free(job *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    fm_free(v[i].name);
    fm_free(v[i].table);
    fm_free(v[i].columns);
    fm_free(v[i].filter);
  }
  fm_free(v);
}

static char *col_dup(sqlite3_stmt *s, int c) {
  const char *t = (const char *)sqlite3_column_text(s, c);
  return t ? fm_strdup(t) : NULL;
}

/* Enabled jobs (or just `only`), by name; caller frees with jobs_free. */
static fm_rc load_jobs(fm_store *st, const char *only, job **out, size_t *nout,
                       fm_error *err) {
  *out = NULL;
  *nout = 0;
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(st,
                              "SELECT name, source_table, columns, filter, format, "
                              "retention_hours FROM snapshot_jobs WHERE enabled = 1 AND "
                              "(?1 IS NULL OR name = ?1) ORDER BY name",
                              &s, err);
  if (rc) return rc;
  sqlite3_bind_text(s, 1, only, -1, SQLITE_STATIC);
  job *v = NULL;
  size_t n = 0, cap = 0;
  int step;
  while ((step = sqlite3_step(s)) == SQLITE_ROW) {
    if (fm_grow((void **)&v, &cap, n + 1, sizeof *v)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory loading snapshot jobs");
      break;
    }
    job *j = &v[n++];
    memset(j, 0, sizeof *j);
    j->name = col_dup(s, 0);
    j->table = col_dup(s, 1);
    j->columns = col_dup(s, 2);
    j->filter = sqlite3_column_type(s, 3) == SQLITE_NULL ? NULL : col_dup(s, 3);
    const char *f = (const char *)sqlite3_column_text(s, 4);
    j->fmt = (fm_snapshot_format)fm_snapshot_format_parse(f);
    j->retention_hours = sqlite3_column_int(s, 5);
    if (!j->name || !j->table || !j->columns ||
        (sqlite3_column_type(s, 3) != SQLITE_NULL && !j->filter)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory loading snapshot jobs");
      break;
    }
  }
  if (rc == FM_OK && step != SQLITE_DONE) rc = fm_store_steperr(st, step, err, "read snapshot_jobs");
  sqlite3_finalize(s);
  if (rc == FM_OK && only && n == 0)
    rc = fm_error_set(err, FM_ERR_NOTFOUND,
                      "%s: snapshot job '%s' does not exist or is disabled (see "
                      "'fieldmatch snapshot jobs')",
                      fm_store_path(st), only);
  if (rc) {
    jobs_free(v, n);
    return rc;
  }
  *out = v;
  *nout = n;
  return FM_OK;
}

/* Check job j against db's schema and build its SELECT and COUNT(*) (caller
 * frees both with sqlite3_free).  On a bad job returns FM_ERR_ARG with a
 * message naming the job, table and column. */
static fm_rc job_sql(sqlite3 *db, const job *j, char **sql, char **count_sql,
                     fm_error *err) {
  *sql = *count_sql = NULL;
  if ((int)j->fmt < 0)
    return fm_error_set(err, FM_ERR_ARG, "snapshot job '%s': unknown format", j->name);
  char *q = sqlite3_mprintf("SELECT name FROM pragma_table_info(%Q) ORDER BY cid", j->table);
  sqlite3_stmt *s = NULL;
  if (!q) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  int prc = sqlite3_prepare_v2(db, q, -1, &s, NULL);
  sqlite3_free(q);
  if (prc != SQLITE_OK)
    return fm_error_set(err, FM_ERR_DB, "snapshot job '%s': reading the columns of '%s': %s",
                        j->name, j->table, sqlite3_errmsg(db));
  fm_buf all, list;
  fm_buf_init(&all);
  fm_buf_init(&list);
  fm_rc rc = FM_OK;
  size_t ncols = 0;
  while (sqlite3_step(s) == SQLITE_ROW) {
    const char *c = (const char *)sqlite3_column_text(s, 0);
    if (fm_buf_puts(&all, c ? c : "") || fm_buf_putc(&all, '\0')) rc = FM_ERR_NOMEM;
    ncols++;
  }
  sqlite3_finalize(s);
  if (rc) goto nomem;
  if (ncols == 0) {
    rc = fm_error_set(err, FM_ERR_ARG, "snapshot job '%s': table '%s' does not exist",
                      j->name, j->table);
    goto done;
  }
  if (!strcmp(j->columns, "*")) {
    const char *c = all.buf;
    for (size_t i = 0; i < ncols; i++, c += strlen(c) + 1) {
      char *qi = sqlite3_mprintf("%s\"%w\"", i ? ", " : "", c);
      if (!qi || fm_buf_puts(&list, qi)) rc = FM_ERR_NOMEM;
      sqlite3_free(qi);
      if (rc) goto nomem;
    }
  } else {
    const char *p = j->columns;
    int k = 0;
    while (*p) {
      const char *e = strchr(p, ',');
      size_t n = e ? (size_t)(e - p) : strlen(p);
      const char *a = p, *b = p + n;
      while (a < b && (*a == ' ' || *a == '\t')) a++;
      while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
      int found = 0;
      const char *c = all.buf;
      for (size_t i = 0; i < ncols && !found; i++, c += strlen(c) + 1)
        found = strlen(c) == (size_t)(b - a) && !strncmp(c, a, (size_t)(b - a));
      if (!found) {
        rc = fm_error_set(err, FM_ERR_ARG,
                          "snapshot job '%s': table '%s' has no column '%.*s'", j->name,
                          j->table, (int)(b - a), a);
        goto done;
      }
      char *name = fm_strndup(a, (size_t)(b - a));
      char *qi = name ? sqlite3_mprintf("%s\"%w\"", k++ ? ", " : "", name) : NULL;
      if (!qi || fm_buf_puts(&list, qi)) rc = FM_ERR_NOMEM;
      sqlite3_free(qi);
      fm_free(name);
      if (rc) goto nomem;
      p += n;
      if (*p == ',') p++;
    }
    if (k == 0) {
      rc = fm_error_set(err, FM_ERR_ARG, "snapshot job '%s': no columns listed", j->name);
      goto done;
    }
  }
  /* Row order: rowid when the table has one, so the same data gives the
   * same bytes. */
  char *probe = sqlite3_mprintf("SELECT rowid FROM \"%w\" LIMIT 0", j->table);
  int has_rowid = probe && sqlite3_prepare_v2(db, probe, -1, &s, NULL) == SQLITE_OK;
  sqlite3_finalize(s);
  sqlite3_free(probe);
  const char *f = j->filter && *j->filter ? j->filter : NULL;
  *sql = sqlite3_mprintf("SELECT %s FROM \"%w\"%s%s%s%s", list.buf, j->table,
                         f ? " WHERE (" : "", f ? f : "", f ? "\n)" : "",
                         has_rowid ? " ORDER BY rowid" : "");
  *count_sql = sqlite3_mprintf("SELECT count(*) FROM \"%w\"%s%s%s", j->table,
                               f ? " WHERE (" : "", f ? f : "", f ? "\n)" : "");
  if (!*sql || !*count_sql) goto nomem;
  /* The filter must compile as part of exactly one read-only statement. */
  const char *tail = NULL;
  s = NULL;
  if (sqlite3_prepare_v2(db, *sql, -1, &s, &tail) != SQLITE_OK || !s ||
      !sqlite3_stmt_readonly(s) || (tail && *tail)) {
    rc = fm_error_set(err, FM_ERR_ARG, "snapshot job '%s': bad filter '%s': %s", j->name,
                      f ? f : "", s ? "not a single read-only expression" : sqlite3_errmsg(db));
    sqlite3_finalize(s);
    goto done;
  }
  sqlite3_finalize(s);
  goto done;
nomem:
  rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory building snapshot job '%s'", j->name);
done:
  if (rc) {
    sqlite3_free(*sql);
    sqlite3_free(*count_sql);
    *sql = *count_sql = NULL;
  }
  fm_buf_free(&all);
  fm_buf_free(&list);
  return rc;
}

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
  fm_rc rc = fm_store_prepare(st,
                              "SELECT snapshot_run_id, status, version FROM snapshot_runs"
                              " WHERE job = ? AND dt = ? AND hr = ? ORDER BY version DESC"
                              " LIMIT 1",
                              &s, err);
  if (rc) return rc;
  sqlite3_bind_text(s, 1, c->job, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, c->dt, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 3, c->hr);
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
    sqlite3_stmt *s;
    if ((rc = fm_store_prepare(st,
                               "INSERT INTO snapshot_runs (job, dt, hr, version, run_id,"
                               " status, attempt) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0)",
                               &s, err)))
      return rc;
    sqlite3_bind_text(s, 1, c->job, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, c->dt, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, c->hr);
    sqlite3_bind_int(s, 4, c->version);
    sqlite3_bind_text(s, 5, c->run_id, -1, SQLITE_STATIC);
    int step = fm_store_step(st, s);
    sqlite3_finalize(s);
    if (step != SQLITE_DONE) return fm_store_steperr(st, step, err, "claim snapshot partition");
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
  rc = fm_store_prepare(st,
                        "UPDATE snapshot_runs SET rows_read = ?2, rows_written = ?3, bytes = ?4,"
                        " sha256 = ?5, location = ?6 WHERE snapshot_run_id = ?1",
                        &s, err);
  if (rc) return rc;
  sqlite3_bind_int64(s, 1, f->l->unit);
  sqlite3_bind_int64(s, 2, f->rows_read);
  sqlite3_bind_int64(s, 3, f->rows_written);
  if (f->ok) {
    sqlite3_bind_int64(s, 4, f->bytes);
    sqlite3_bind_text(s, 5, f->sha256, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, f->location, -1, SQLITE_STATIC);
  }
  int step = fm_store_step(st, s);
  sqlite3_finalize(s);
  if (step != SQLITE_DONE) return fm_store_steperr(st, step, err, "update snapshot_runs");
  if (!f->ok) return FM_OK;
  rc = fm_store_prepare(st,
                        "INSERT OR REPLACE INTO catalog (job, source_table, dt, hr, version,"
                        " format, location, columns, rows, bytes, sha256, run_id, added_at)"
                        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        &s, err);
  if (rc) return rc;
  sqlite3_bind_text(s, 1, f->j->name, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, f->j->table, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 3, f->dt, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 4, f->hr);
  sqlite3_bind_int(s, 5, f->version);
  sqlite3_bind_text(s, 6, fm_snapshot_format_name(f->j->fmt), -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 7, f->location, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 8, f->columns, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s, 9, f->rows_written);
  sqlite3_bind_int64(s, 10, f->bytes);
  sqlite3_bind_text(s, 11, f->sha256, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 12, f->l->owner, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 13, f->now, -1, SQLITE_STATIC);
  step = fm_store_step(st, s);
  sqlite3_finalize(s);
  if (step != SQLITE_DONE) return fm_store_steperr(st, step, err, "update catalog");
  return FM_OK;
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
  if ((rc = fm_snapshot_mkdirs(tmproot.buf, &e))) goto fail;
  clean_leftovers(tmproot.buf, prefix.buf);
  if (mkdir(tmpdir.buf, 0755) != 0) {
    rc = fm_error_set(&e, FM_ERR_IO, "%s: cannot create directory: %s", tmpdir.buf,
                      strerror(errno));
    goto fail;
  }
  if ((rc = job_sql(r->rdb, j, &sql, &count_sql, &e))) goto fail;
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
  if ((rc = fm_snapshot_mkdirs(dtdir.buf, &e))) goto fail;
  struct stat sb;
  if (stat(final.buf, &sb) == 0) { /* --force, or a crash after the rename */
    char *tr = fm_path_dirname(trash.buf);
    rc = tr ? fm_snapshot_mkdirs(tr, &e) : fm_error_set(&e, FM_ERR_NOMEM, "out of memory");
    fm_free(tr);
    if (rc) goto fail;
    if (rename(final.buf, trash.buf) != 0) {
      rc = fm_error_set(&e, FM_ERR_IO, "%s: cannot move the old version aside: %s",
                        final.buf, strerror(errno));
      goto fail;
    }
  }
  if (rename(tmpdir.buf, final.buf) != 0) {
    rc = fm_error_set(&e, FM_ERR_IO, "%s: cannot rename to %s: %s", tmpdir.buf, final.buf,
                      strerror(errno));
    goto fail;
  }
  if ((rc = fm_snapshot_fsync_dir(dtdir.buf, &e)) ||
      (rc = fm_snapshot_fsync_dir(tmproot.buf, &e)))
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
  hour_parts(hour, dt, &hr);
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

static fm_rc run_span(fm_store *st, const char *root, int64_t from, int64_t to,
                      const fm_snapshot_opts *opts, fm_snapshot_result *res, fm_error *err) {
  fm_snapshot_opts def;
  if (!opts) {
    fm_snapshot_opts_default(&def);
    opts = &def;
  }
  if (!st || !root || !*root)
    return fm_error_set(err, FM_ERR_ARG, "snapshot: no store or no root directory given");
  if (to < from || to - from >= 10000)
    return fm_error_set(err, FM_ERR_ARG, "snapshot: bad hour range (%lld hours)",
                        (long long)(to - from + 1));
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
  fm_rc rc = fm_snapshot_mkdirs(root, err);
  if (rc) return rc;
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
  if ((rc = load_jobs(st, opts->job, &jobs, &n, err))) return rc;
  for (int64_t h = from; h <= to && rc == FM_OK; h++) rc = run_hour(&r, jobs, n, h, err);
  jobs_free(jobs, n);
  if (rc) return rc;
  fm_error ce;
  fm_error_init(&ce);
  fm_rc crc = fm_snapshot_write_catalog(st, root, &ce);
  if (crc == FM_OK && opts->retention)
    crc = fm_snapshot_retention(st, root, (int64_t)time(NULL), r.res, &ce);
  if (r.first.rc) {
    if (err) *err = r.first;
    return r.first.rc;
  }
  if (crc && err) *err = ce;
  return crc;
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
  if (!opts) {
    fm_snapshot_opts_default(&def);
    opts = &def;
  }
  int64_t to = fm_snapshot_hour_of(now);
  int cap = opts->max_catchup_hours > 0 ? opts->max_catchup_hours : 48;
  /* The oldest "latest succeeded hour" over the selected jobs; jobs never
   * written start now. */
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(
      st,
      "SELECT min(last) FROM (SELECT j.name, (SELECT max(r.dt || 'T' || printf('%02d', r.hr))"
      " FROM snapshot_runs r WHERE r.job = j.name AND r.status IN ('succeeded','expired'))"
      " AS last FROM snapshot_jobs j WHERE j.enabled = 1 AND (?1 IS NULL OR j.name = ?1))"
      " WHERE last IS NOT NULL",
      &s, err);
  if (rc) return rc;
  sqlite3_bind_text(s, 1, opts->job, -1, SQLITE_STATIC);
  int64_t from = to;
  if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL) {
    int64_t last;
    fm_error pe;
    if (fm_snapshot_parse_hour((const char *)sqlite3_column_text(s, 0), &last, &pe) == FM_OK &&
        last + 1 < to)
      from = last + 1;
  }
  sqlite3_finalize(s);
  if (to - from + 1 > cap) from = to - cap + 1;
  return run_span(st, root, from, to, opts, res, err);
}

/* ---- retention ------------------------------------------------------------------- */

typedef struct expire {
  const char *job, *dt;
  int hr;
} expire;

static fm_rc expire_tx(fm_store *st, void *ctx, fm_error *err) {
  expire *x = ctx;
  static const char *const sql[] = {
      "DELETE FROM catalog WHERE job = ?1 AND dt = ?2 AND hr = ?3",
      "UPDATE snapshot_runs SET status = 'expired' WHERE job = ?1 AND dt = ?2 AND hr = ?3 "
      "AND status = 'succeeded'"};
  for (int i = 0; i < 2; i++) {
    sqlite3_stmt *s;
    fm_rc rc = fm_store_prepare(st, sql[i], &s, err);
    if (rc) return rc;
    sqlite3_bind_text(s, 1, x->job, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, x->dt, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, x->hr);
    int step = fm_store_step(st, s);
    sqlite3_finalize(s);
    if (step != SQLITE_DONE) return fm_store_steperr(st, step, err, "expire partition");
  }
  return FM_OK;
}

fm_rc fm_snapshot_retention(fm_store *st, const char *root, int64_t now,
                            fm_snapshot_result *res, fm_error *err) {
  int64_t now_hour = fm_snapshot_hour_of(now);
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(st,
                              "SELECT c.job, c.dt, c.hr, c.location, j.retention_hours "
                              "FROM catalog c JOIN snapshot_jobs j ON j.name = c.job "
                              "ORDER BY c.job, c.dt, c.hr",
                              &s, err);
  if (rc) return rc;
  fm_buf dir, trash;
  fm_buf_init(&dir);
  fm_buf_init(&trash);
  size_t expired = 0;
  int step;
  /* Collect first: the loop below writes the tables being read. */
  typedef struct victim { char *job, *dt, *loc; int hr; } victim;
  victim *v = NULL;
  size_t nv = 0, cap = 0;
  while ((step = sqlite3_step(s)) == SQLITE_ROW) {
    int64_t h;
    char when[40];
    snprintf(when, sizeof when, "%sT%02d", (const char *)sqlite3_column_text(s, 1),
             sqlite3_column_int(s, 2));
    if (fm_snapshot_parse_hour(when, &h, NULL) != FM_OK) continue;
    if (h > now_hour - sqlite3_column_int(s, 4)) continue;
    if (fm_grow((void **)&v, &cap, nv + 1, sizeof *v)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory applying retention");
      break;
    }
    v[nv].job = col_dup(s, 0);
    v[nv].dt = col_dup(s, 1);
    v[nv].loc = col_dup(s, 3);
    v[nv].hr = sqlite3_column_int(s, 2);
    nv++;
    if (!v[nv - 1].job || !v[nv - 1].dt || !v[nv - 1].loc) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory applying retention");
      break;
    }
  }
  sqlite3_finalize(s);
  for (size_t i = 0; i < nv && rc == FM_OK; i++) {
    /* Out of sight first (atomic rename), then the catalog, then the bytes:
     * a crash leaves at worst a catalog row whose directory is gone, which
     * the next pass removes. */
    fm_buf_reset(&dir);
    fm_buf_reset(&trash);
    if (fm_buf_printf(&dir, "%s/%s", root, v[i].loc) ||
        fm_buf_printf(&trash, "%s/_trash", root)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
      break;
    }
    if ((rc = fm_snapshot_mkdirs(trash.buf, err))) break;
    if (fm_buf_printf(&trash, "/expired.%s.dt=%s.hr=%02d.%ld", v[i].job, v[i].dt, v[i].hr,
                      (long)getpid())) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
      break;
    }
    if (rename(dir.buf, trash.buf) != 0 && errno != ENOENT) {
      rc = fm_error_set(err, FM_ERR_IO, "%s: cannot remove expired partition: %s", dir.buf,
                        strerror(errno));
      break;
    }
    expire x = {v[i].job, v[i].dt, v[i].hr};
    if ((rc = fm_store_tx(st, expire_tx, &x, err))) break;
    fm_snapshot_rmdir_flat(trash.buf, NULL);
    /* Drop now-empty dt= directories (rmdir fails harmlessly when not empty). */
    char *dtd = fm_path_dirname(dir.buf);
    if (dtd) rmdir(dtd);
    fm_free(dtd);
    expired++;
  }
  for (size_t i = 0; i < nv; i++) {
    fm_free(v[i].job);
    fm_free(v[i].dt);
    fm_free(v[i].loc);
  }
  fm_free(v);
  fm_buf_free(&dir);
  fm_buf_free(&trash);
  if (res) res->expired += expired;
  if (rc == FM_OK && step != SQLITE_DONE && step != SQLITE_ROW)
    rc = fm_store_steperr(st, step, err, "read catalog");
  if (rc == FM_OK && expired) rc = fm_snapshot_write_catalog(st, root, err);
  return rc;
}

/* ---- JSON views -------------------------------------------------------------------- */

/* Every row of s as an object (column name -> typed value) appended to a. */
static fm_rc rows_to_json(fm_store *st, sqlite3_stmt *s, json_t *a, fm_error *err,
                          const char *what) {
  int step;
  while ((step = sqlite3_step(s)) == SQLITE_ROW) {
    json_t *o = json_object();
    for (int c = 0; o && c < sqlite3_column_count(s); c++) {
      json_t *v;
      switch (sqlite3_column_type(s, c)) {
      case SQLITE_NULL: v = json_null(); break;
      case SQLITE_INTEGER: v = json_integer((json_int_t)sqlite3_column_int64(s, c)); break;
      case SQLITE_FLOAT: v = json_real(sqlite3_column_double(s, c)); break;
      default: v = json_string((const char *)sqlite3_column_text(s, c));
      }
      if (!v || json_object_set_new(o, sqlite3_column_name(s, c), v)) {
        json_decref(o);
        o = NULL;
      }
    }
    if (!o || json_array_append_new(a, o))
      return fm_error_set(err, FM_ERR_NOMEM, "out of memory reading %s", what);
  }
  if (step != SQLITE_DONE) return fm_store_steperr(st, step, err, what);
  return FM_OK;
}

static fm_rc dump_owned(json_t *j, size_t flags, char **out, fm_error *err) {
  char *d = json_dumps(j, flags | JSON_PRESERVE_ORDER);
  *out = d ? fm_strdup(d) : NULL;
  free(d);
  return *out ? FM_OK : fm_error_set(err, FM_ERR_NOMEM, "out of memory");
}

fm_rc fm_snapshot_catalog_json(fm_store *st, char **json, fm_error *err) {
  *json = NULL;
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(st,
                              "SELECT job, source_table, format, columns, dt, hr, version, "
                              "location, rows, bytes, sha256, run_id, added_at FROM catalog "
                              "ORDER BY job, dt, hr",
                              &s, err);
  if (rc) return rc;
  char now[32];
  fm_store_now(now, sizeof now);
  json_t *root = json_pack("{s:i, s:s, s:[]}", "catalog_version", 1, "generated_at", now,
                           "tables");
  json_t *tables = root ? json_object_get(root, "tables") : NULL;
  json_t *cur = NULL;
  int step;
  while (root && (step = sqlite3_step(s)) == SQLITE_ROW) {
    const char *jobname = (const char *)sqlite3_column_text(s, 0);
    if (!cur || strcmp(json_string_value(json_object_get(cur, "job")), jobname) != 0) {
      cur = json_pack("{s:s, s:s, s:s, s:s, s:[{s:s, s:s}, {s:s, s:s}], s:[]}", "job",
                      jobname, "table", (const char *)sqlite3_column_text(s, 1), "format",
                      (const char *)sqlite3_column_text(s, 2), "path", jobname,
                      "partition_keys", "name", "dt", "type", "string", "name", "hr",
                      "type", "int", "partitions");
      if (!cur || json_array_append_new(tables, cur)) {
        rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory building the catalog");
        break;
      }
    }
    /* The table's columns: those of its newest partition. */
    json_t *cols = json_loads((const char *)sqlite3_column_text(s, 3), 0, NULL);
    if (cols) json_object_set_new(cur, "columns", cols);
    json_t *p = json_pack("{s:s, s:i, s:i, s:s, s:I, s:I, s:s, s:s, s:s}", "dt",
                          (const char *)sqlite3_column_text(s, 4), "hr",
                          sqlite3_column_int(s, 5), "version", sqlite3_column_int(s, 6),
                          "location", (const char *)sqlite3_column_text(s, 7), "rows",
                          (json_int_t)sqlite3_column_int64(s, 8), "bytes",
                          (json_int_t)sqlite3_column_int64(s, 9), "sha256",
                          (const char *)sqlite3_column_text(s, 10), "run_id",
                          (const char *)sqlite3_column_text(s, 11), "added_at",
                          (const char *)sqlite3_column_text(s, 12));
    if (!p || json_array_append_new(json_object_get(cur, "partitions"), p)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory building the catalog");
      break;
    }
  }
  if (!root) rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory building the catalog");
  else if (rc == FM_OK && step != SQLITE_DONE) rc = fm_store_steperr(st, step, err, "read catalog");
  sqlite3_finalize(s);
  if (rc == FM_OK) rc = dump_owned(root, JSON_INDENT(2), json, err);
  json_decref(root);
  return rc;
}

fm_rc fm_snapshot_write_catalog(fm_store *st, const char *root, fm_error *err) {
  char *j = NULL;
  fm_rc rc = fm_snapshot_catalog_json(st, &j, err);
  if (rc) return rc;
  fm_buf path, tmp;
  fm_buf_init(&path);
  fm_buf_init(&tmp);
  if (fm_buf_printf(&path, "%s/catalog.json", root) ||
      fm_buf_printf(&tmp, "%s/_tmp", root))
    rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  if (rc == FM_OK) rc = fm_snapshot_mkdirs(tmp.buf, err);
  if (rc == FM_OK && fm_buf_printf(&tmp, "/catalog.json.%ld", (long)getpid()))
    rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  if (rc == FM_OK) {
    fm_buf body;
    fm_buf_init(&body);
    if (fm_buf_puts(&body, j) || fm_buf_putc(&body, '\n'))
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
    else
      rc = fm_snapshot_write_atomic(path.buf, tmp.buf, body.buf, body.len, "catalog", err);
    fm_buf_free(&body);
  }
  fm_free(j);
  fm_buf_free(&path);
  fm_buf_free(&tmp);
  return rc;
}

fm_rc fm_snapshot_status_json(fm_store *st, const char *job, int limit, char **json,
                              fm_error *err) {
  *json = NULL;
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(st,
                              "SELECT snapshot_run_id, job, dt, hr, version, run_id, status,"
                              " attempt, started_at, finished_at, rows_read, rows_written, "
                              "bytes, sha256, location, error, lease_owner, lease_expires "
                              "FROM snapshot_runs WHERE (?1 IS NULL OR job = ?1) ORDER BY "
                              "dt DESC, hr DESC, job, version DESC LIMIT ?2",
                              &s, err);
  if (rc) return rc;
  sqlite3_bind_text(s, 1, job, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 2, limit > 0 ? limit : 100);
  json_t *a = json_array();
  rc = a ? rows_to_json(st, s, a, err, "snapshot_runs")
         : fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  sqlite3_finalize(s);
  if (rc == FM_OK) rc = dump_owned(a, JSON_COMPACT, json, err);
  json_decref(a);
  return rc;
}

fm_rc fm_snapshot_jobs_json(fm_store *st, char **json, fm_error *err) {
  *json = NULL;
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(st,
                              "SELECT name, source_table, columns, filter, format, schedule, "
                              "retention_hours, enabled FROM snapshot_jobs ORDER BY name",
                              &s, err);
  if (rc) return rc;
  json_t *a = json_array();
  rc = a ? rows_to_json(st, s, a, err, "snapshot_jobs")
         : fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  sqlite3_finalize(s);
  size_t i;
  json_t *o;
  json_array_foreach(a, i, o) {
    if (rc) break;
    job j = {.name = (char *)json_string_value(json_object_get(o, "name")),
             .table = (char *)json_string_value(json_object_get(o, "source_table")),
             .columns = (char *)json_string_value(json_object_get(o, "columns")),
             .filter = (char *)json_string_value(json_object_get(o, "filter")),
             .fmt = (fm_snapshot_format)fm_snapshot_format_parse(
                 json_string_value(json_object_get(o, "format")))};
    char *sql = NULL, *csql = NULL;
    fm_error e;
    fm_error_init(&e);
    fm_rc vr = job_sql(fm_store_db(st), &j, &sql, &csql, &e);
    sqlite3_free(sql);
    sqlite3_free(csql);
    json_object_set_new(o, "valid", json_boolean(vr == FM_OK));
    if (vr) json_object_set_new(o, "error", json_string(e.msg));
  }
  if (rc == FM_OK) rc = dump_owned(a, JSON_COMPACT, json, err);
  json_decref(a);
  return rc;
}
