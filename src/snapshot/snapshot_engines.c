/* snapshot_engines.c: what query engines need beside catalog.json: the
 * Hive/Athena DDL (catalog.hive.sql: CREATE EXTERNAL TABLE ... PARTITIONED
 * BY (dt, hr) STORED AS PARQUET LOCATION ...), the DuckDB view script
 * (catalog.duckdb.sql), and the hour-complete marker
 * _hours/dt=.../hr=.../_HOUR_SUCCESS that downstream jobs wait on
 * (docs/snapshot.md, "Engines").  Everything is generated from the catalog
 * (the table and catalog.json) and written atomically; the caller owns
 * every argument, this file owns nothing past a call. */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE /* realpath */
#endif
#include "snapshot_internal.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *hive_type(const char *decl, const char *name) {
  switch (fm_snapshot_pq_type(decl, name)) {
  case FM_PQ_INT64: return "BIGINT";
  case FM_PQ_DOUBLE: return "DOUBLE";
  case FM_PQ_TIMESTAMP_MICROS:
  case FM_PQ_TIMESTAMP_MILLIS: return "TIMESTAMP";
  case FM_PQ_BOOLEAN: return "BOOLEAN";
  default: return "STRING";
  }
}

/* s with every `quote` doubled (SQL) or backslash-escaped (Hive strings). */
static fm_rc put_quoted(fm_buf *b, const char *s, char quote, int backslash) {
  if (fm_buf_putc(b, quote)) return FM_ERR_NOMEM;
  for (; *s; s++) {
    if (*s == quote && (backslash ? fm_buf_putc(b, '\\') : fm_buf_putc(b, quote)))
      return FM_ERR_NOMEM;
    if (backslash && *s == '\\' && fm_buf_putc(b, '\\')) return FM_ERR_NOMEM;
    if (fm_buf_putc(b, *s)) return FM_ERR_NOMEM;
  }
  return fm_buf_putc(b, quote);
}

/* One Hive/Athena statement for table t of the catalog (Parquet jobs; the
 * others get a comment saying why not). */
static fm_rc hive_table(fm_buf *b, json_t *t, const char *loc) {
  const char *job = json_string_value(json_object_get(t, "job"));
  const char *fmt = json_string_value(json_object_get(t, "format"));
  json_t *cols = json_object_get(t, "columns");
  if (!job || !fmt) return FM_OK;
  if (strcmp(fmt, "parquet") != 0)
    return fm_buf_printf(b,
                         "\n-- %s is written as %s: no Parquet table (see docs/snapshot.md,\n"
                         "-- \"Querying the partitions\", for its SerDe).\n",
                         job, fmt);
  fm_rc rc = fm_buf_puts(b, "\nCREATE EXTERNAL TABLE IF NOT EXISTS ");
  if (!rc) rc = put_quoted(b, job, '`', 0);
  if (!rc) rc = fm_buf_puts(b, " (");
  size_t i;
  json_t *c;
  json_array_foreach(cols, i, c) {
    const char *n = json_string_value(json_object_get(c, "name"));
    const char *d = json_string_value(json_object_get(c, "type"));
    if (rc || !n) break;
    rc = fm_buf_puts(b, i ? ",\n  " : "\n  ");
    if (!rc) rc = put_quoted(b, n, '`', 0);
    if (!rc) rc = fm_buf_printf(b, " %s", hive_type(d, n));
  }
  if (!rc) rc = fm_buf_puts(b, ")\nPARTITIONED BY (`dt` STRING, `hr` INT)\nSTORED AS PARQUET\nLOCATION ");
  fm_buf where;
  fm_buf_init(&where);
  if (!rc) rc = fm_buf_printf(&where, "file://%s/%s/", loc, job);
  if (!rc) rc = put_quoted(b, where.buf, '\'', 1);
  fm_buf_free(&where);
  if (!rc) rc = fm_buf_puts(b, ";\nMSCK REPAIR TABLE ");
  if (!rc) rc = put_quoted(b, job, '`', 0);
  if (!rc) rc = fm_buf_puts(b, ";\n");
  return rc;
}

/* One DuckDB view for table t. */
static fm_rc duckdb_view(fm_buf *b, json_t *t, const char *loc) {
  const char *job = json_string_value(json_object_get(t, "job"));
  const char *fmt = json_string_value(json_object_get(t, "format"));
  if (!job || !fmt) return FM_OK;
  const char *fn = !strcmp(fmt, "parquet")   ? "read_parquet"
                   : !strcmp(fmt, "csv.gz") ? "read_csv"
                                             : "read_json";
  const char *extra = !strcmp(fmt, "parquet") ? ""
                      : !strcmp(fmt, "csv.gz")
                          ? ", header = true, allow_quoted_nulls = false" /* "" is not NULL */
                          : ", format = 'newline_delimited'";
  fm_buf glob;
  fm_buf_init(&glob);
  fm_rc rc = fm_buf_printf(&glob, "%s/%s/*/*/*.%s", loc, job, fmt);
  if (!rc) rc = fm_buf_puts(b, "CREATE OR REPLACE VIEW ");
  if (!rc) rc = put_quoted(b, job, '"', 0);
  if (!rc) rc = fm_buf_printf(b, " AS SELECT * FROM %s(", fn);
  if (!rc) rc = put_quoted(b, glob.buf, '\'', 0);
  if (!rc)
    rc = fm_buf_printf(b,
                       ", hive_partitioning = true, union_by_name = true,\n"
                       "  hive_types = {'dt': 'DATE', 'hr': 'INTEGER'}%s);\n",
                       extra);
  fm_buf_free(&glob);
  return rc;
}

static fm_rc write_file(const char *root, const char *name, const fm_buf *body, fm_error *err) {
  fm_buf path, tmp;
  fm_buf_init(&path);
  fm_buf_init(&tmp);
  fm_rc rc = FM_OK;
  if (fm_buf_printf(&path, "%s/%s", root, name) ||
      fm_buf_printf(&tmp, "%s/_tmp/%s.%ld", root, name, (long)getpid()))
    rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  if (rc == FM_OK)
    rc = fm_snapshot_write_atomic(path.buf, tmp.buf, body->buf ? body->buf : "", body->len,
                                  NULL, err);
  fm_buf_free(&path);
  fm_buf_free(&tmp);
  return rc;
}

fm_rc fm_snapshot_write_engine_files(const char *root, const char *catalog_json,
                                     fm_error *err) {
  json_t *cat = json_loads(catalog_json, 0, NULL);
  json_t *tables = cat ? json_object_get(cat, "tables") : NULL;
  if (!json_is_array(tables)) {
    json_decref(cat);
    return fm_error_set(err, FM_ERR_INTERNAL, "%s: the catalog is not valid JSON", root);
  }
  char real[PATH_MAX];
  const char *loc = realpath(root, real) ? real : root;
  fm_buf hive, duck;
  fm_buf_init(&hive);
  fm_buf_init(&duck);
  fm_rc rc = fm_buf_printf(&hive,
                           "-- catalog.hive.sql: Hive / Athena / Spark SQL tables of this lake,\n"
                           "-- generated by fieldmatch with catalog.json (docs/snapshot.md).\n"
                           "-- LOCATION is the lake on this machine: replace the prefix\n"
                           "-- 'file://%s' with the lake's URI (s3://bucket/lake) when the\n"
                           "-- files are copied there.  MSCK REPAIR TABLE adds the partitions.\n",
                           loc);
  if (!rc)
    rc = fm_buf_puts(&duck,
                     "-- catalog.duckdb.sql: one DuckDB view per snapshot job of this lake,\n"
                     "-- generated by fieldmatch with catalog.json (docs/snapshot.md).\n"
                     "-- In DuckDB: .read catalog.duckdb.sql  (or run the statements)\n");
  size_t i;
  json_t *t;
  json_array_foreach(tables, i, t) {
    if (rc) break;
    rc = hive_table(&hive, t, loc);
    if (!rc) rc = duckdb_view(&duck, t, loc);
  }
  json_decref(cat);
  if (rc) rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory building the engine DDL");
  if (!rc) rc = write_file(root, "catalog.hive.sql", &hive, err);
  if (!rc) rc = write_file(root, "catalog.duckdb.sql", &duck, err);
  fm_buf_free(&hive);
  fm_buf_free(&duck);
  return rc;
}

/* ---- the hour-complete marker ---------------------------------------------- */

fm_rc fm_snapshot_hour_marker(fm_store *st, const char *root, int64_t hour, fm_error *err) {
  char dt[16];
  int hr;
  fm_snapshot_hour_parts(hour, dt, &hr);
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(st,
                              "SELECT j.name, c.version, c.rows FROM snapshot_jobs j"
                              " LEFT JOIN catalog c ON c.job = j.name AND c.dt = ?1 AND c.hr = ?2"
                              " WHERE j.enabled = 1 ORDER BY j.name",
                              &s, err);
  if (rc) return rc;
  sqlite3_bind_text(s, 1, dt, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 2, hr);
  char at[32], now[32];
  fm_snapshot_hour_str(hour, at);
  fm_store_now(now, sizeof now);
  json_t *m = json_pack("{s:i, s:s, s:i, s:s, s:s, s:[]}", "marker_version", 1, "dt", dt, "hr",
                        hr, "partition_time", at, "written_at", now, "jobs");
  int complete = 1, n = 0, step;
  while (m && (step = sqlite3_step(s)) == SQLITE_ROW) {
    n++;
    if (sqlite3_column_type(s, 1) == SQLITE_NULL) {
      complete = 0;
      continue;
    }
    json_t *j = json_pack("{s:s, s:i, s:I}", "job", (const char *)sqlite3_column_text(s, 0),
                          "version", sqlite3_column_int(s, 1), "rows",
                          (json_int_t)sqlite3_column_int64(s, 2));
    if (!j || json_array_append_new(json_object_get(m, "jobs"), j)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
      break;
    }
  }
  if (!m) rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  else if (rc == FM_OK && step != SQLITE_DONE) rc = fm_store_steperr(st, step, err, "read catalog");
  sqlite3_finalize(s);
  fm_buf dir, path, tmp;
  fm_buf_init(&dir);
  fm_buf_init(&path);
  fm_buf_init(&tmp);
  char *body = NULL;
  if (rc == FM_OK && (fm_buf_printf(&dir, "%s/_hours/dt=%s/hr=%02d", root, dt, hr) ||
                      fm_buf_printf(&path, "%s/_HOUR_SUCCESS", dir.buf) ||
                      fm_buf_printf(&tmp, "%s/_tmp/_HOUR_SUCCESS.%s.%02d.%ld", root, dt, hr,
                                    (long)getpid())))
    rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  if (rc == FM_OK && (!complete || n == 0)) {
    if (unlink(path.buf) != 0 && errno != ENOENT)
      rc = fm_error_set(err, FM_ERR_IO, "%s: cannot remove: %s", path.buf, strerror(errno));
    else
      rmdir(dir.buf); /* best effort: the empty hour directory */
  } else if (rc == FM_OK) {
    char *d = json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    body = d ? fm_strdup(d) : NULL;
    free(d);
    if (!body) rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
    if (rc == FM_OK) rc = fm_mkdirs(dir.buf, err);
    if (rc == FM_OK)
      rc = fm_snapshot_write_atomic(path.buf, tmp.buf, body, strlen(body), NULL, err);
  }
  json_decref(m);
  fm_free(body);
  fm_buf_free(&dir);
  fm_buf_free(&path);
  fm_buf_free(&tmp);
  return rc;
}
