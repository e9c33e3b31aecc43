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

void fm_snapshot_hour_parts(int64_t hour, char dt[16], int *hr) {
  int64_t days = hour >= 0 ? hour / 24 : (hour - 23) / 24;
  int y, m, d;
  civil_from_days(days, &y, &m, &d);
  snprintf(dt, 16, "%04d-%02d-%02d", y, m, d);
  *hr = (int)(hour - days * 24);
}

void fm_snapshot_hour_str(int64_t hour, char out[32]) {
  char dt[16];
  int hr;
  fm_snapshot_hour_parts(hour, dt, &hr);
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

void fm_snapshot_jobs_free(job *v, size_t n) {
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
fm_rc fm_snapshot_load_jobs(fm_store *st, const char *only, job **out, size_t *nout,
                       fm_error *err) {
  *out = NULL;
  *nout = 0;
  sqlite3_stmt *s;
  fm_rc rc = fm_store_query(st, &s, err,
                            "SELECT name, source_table, columns, filter, format, "
                            "retention_hours FROM snapshot_jobs WHERE enabled = 1 AND "
                            "(?1 IS NULL OR name = ?1) ORDER BY name",
                            "t", only);
  if (rc) return rc;
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
    fm_snapshot_jobs_free(v, n);
    return rc;
  }
  *out = v;
  *nout = n;
  return FM_OK;
}

/* Check job j against db's schema and build its SELECT and COUNT(*) (caller
 * frees both with sqlite3_free).  On a bad job returns FM_ERR_ARG with a
 * message naming the job, table and column. */
fm_rc fm_snapshot_job_sql(sqlite3 *db, const job *j, char **sql, char **count_sql,
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
    fm_rc rc = fm_store_run(st, "expire partition", NULL, err, sql[i], "tti", x->job, x->dt,
                            (int64_t)x->hr);
    if (rc) return rc;
  }
  return FM_OK;
}

fm_rc fm_snapshot_retention(fm_store *st, const char *root, int64_t now,
                            fm_snapshot_result *res, fm_error *err) {
  int64_t now_hour = fm_snapshot_hour_of(now);
  sqlite3_stmt *s;
  fm_rc rc = fm_snapshot_lake_check(st, root, 0, err);
  if (rc) return rc;
  rc = fm_store_prepare(st,
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
    if ((rc = fm_mkdirs(trash.buf, err))) break;
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
    /* The hour is no longer complete: its marker goes too. */
    char when[40];
    int64_t h;
    snprintf(when, sizeof when, "%sT%02d", v[i].dt, v[i].hr);
    if (fm_snapshot_parse_hour(when, &h, NULL) == FM_OK &&
        (rc = fm_snapshot_hour_marker(st, root, h, err)))
      break;
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
  fm_rc rc = fm_snapshot_lake_check(st, root, 0, err);
  if (!rc) rc = fm_snapshot_catalog_json(st, &j, err);
  if (rc) return rc;
  fm_buf path, tmp;
  fm_buf_init(&path);
  fm_buf_init(&tmp);
  if (fm_buf_printf(&path, "%s/catalog.json", root) ||
      fm_buf_printf(&tmp, "%s/_tmp", root))
    rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  if (rc == FM_OK) rc = fm_mkdirs(tmp.buf, err);
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
  if (rc == FM_OK) rc = fm_snapshot_write_engine_files(root, j, err);
  fm_free(j);
  fm_buf_free(&path);
  fm_buf_free(&tmp);
  return rc;
}

fm_rc fm_snapshot_status_json(fm_store *st, const char *job, int limit, char **json,
                              fm_error *err) {
  *json = NULL;
  sqlite3_stmt *s;
  fm_rc rc = fm_store_query(st, &s, err,
                            "SELECT snapshot_run_id, job, dt, hr, version, run_id, status,"
                            " attempt, started_at, finished_at, rows_read, rows_written, "
                            "bytes, sha256, location, error, lease_owner, lease_expires "
                            "FROM snapshot_runs WHERE (?1 IS NULL OR job = ?1) ORDER BY "
                            "dt DESC, hr DESC, job, version DESC LIMIT ?2",
                            "ti", job, (int64_t)(limit > 0 ? limit : 100));
  if (rc) return rc;
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
    fm_rc vr = fm_snapshot_job_sql(fm_store_db(st), &j, &sql, &csql, &e);
    sqlite3_free(sql);
    sqlite3_free(csql);
    json_object_set_new(o, "valid", json_boolean(vr == FM_OK));
    if (vr) json_object_set_new(o, "error", json_string(e.msg));
  }
  if (rc == FM_OK) rc = dump_owned(a, JSON_COMPACT, json, err);
  json_decref(a);
  return rc;
}
