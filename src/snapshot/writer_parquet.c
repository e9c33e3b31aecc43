/* writer_parquet.c: the Parquet backend of the snapshot writer: one
 * SELECT's rows to one Parquet file through src/parquet (fm_parquet.h),
 * streaming (the Parquet writer flushes a row group whenever its buffer
 * passes FM_SNAPSHOT_PQ_ROW_GROUP_BYTES, so memory stays flat however many
 * rows the table has).
 *
 * Column types come from the statement's declared types (SQLite affinity
 * rules, docs/snapshot.md "Parquet"): INTEGER -> INT64, REAL -> DOUBLE,
 * TEXT -> UTF8 string, except TEXT columns named "at" or ending in "_at"
 * (the store's UTC timestamps) -> TIMESTAMP(UTC, micros); anything else (BLOB,
 * NUMERIC, an expression) -> string.  A column is REQUIRED only when it is
 * a NOT NULL (or INTEGER PRIMARY KEY) column of a table; otherwise
 * OPTIONAL. */
#include "snapshot_internal.h"

#include "fm_parquet.h"

#include <nettle/sha2.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Row group bound: 32 MiB of buffered (uncompressed) values. */
#define FM_SNAPSHOT_PQ_ROW_GROUP_BYTES ((size_t)32 << 20)

typedef struct pq_hash {
  struct sha256_ctx sha;
  uint64_t bytes;
} pq_hash;

static void pq_observe(void *ctx, const void *p, size_t n) {
  pq_hash *h = ctx;
  sha256_update(&h->sha, n, p);
  h->bytes += n;
}

static int has_ci(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (; *hay; hay++)
    if (!strncasecmp(hay, needle, n)) return 1;
  return 0;
}

static int ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && !strcmp(s + a - b, suf);
}

fm_pq_type fm_snapshot_pq_type(const char *decltype_, const char *name) {
  const char *t = decltype_ ? decltype_ : "";
  if (has_ci(t, "INT")) return FM_PQ_INT64;
  if (has_ci(t, "CHAR") || has_ci(t, "CLOB") || has_ci(t, "TEXT"))
    return name && (ends_with(name, "_at") || !strcmp(name, "at")) ? FM_PQ_TIMESTAMP_MICROS
                                                                   : FM_PQ_STRING;
  if (has_ci(t, "REAL") || has_ci(t, "FLOA") || has_ci(t, "DOUB")) return FM_PQ_DOUBLE;
  return FM_PQ_STRING;
}

/* 1 when result column c of s is a NOT NULL column of a table (or an
 * INTEGER PRIMARY KEY); 0 otherwise (expressions, views, unknown). */
static int column_required(sqlite3 *db, sqlite3_stmt *s, int c) {
  const char *dbn = sqlite3_column_database_name(s, c);
  const char *tab = sqlite3_column_table_name(s, c);
  const char *col = sqlite3_column_origin_name(s, c);
  int notnull = 0, pk = 0, autoinc = 0;
  const char *dt = NULL;
  if (!tab || !col) return 0;
  if (sqlite3_table_column_metadata(db, dbn, tab, col, &dt, NULL, &notnull, &pk, &autoinc) !=
      SQLITE_OK)
    return 0;
  if (notnull) return 1;
  return pk && dt && !strcasecmp(dt, "INTEGER"); /* a rowid alias is never NULL */
}

/* One value of row `row` (1-based) into column c. */
static fm_rc put_value(fm_pq_writer *w, sqlite3_stmt *s, int c, fm_pq_type t,
                       const char *path, uint64_t row, fm_error *err) {
  int vt = sqlite3_column_type(s, c);
  if (vt == SQLITE_NULL) return fm_parquet_put_null(w, (size_t)c, err);
  switch (t) {
  case FM_PQ_INT64:
    if (vt == SQLITE_INTEGER) return fm_parquet_put_int64(w, (size_t)c, sqlite3_column_int64(s, c), err);
    if (vt == SQLITE_FLOAT) {
      double d = sqlite3_column_double(s, c);
      if (d >= -9.2e18 && d <= 9.2e18 && d == (double)(int64_t)d)
        return fm_parquet_put_int64(w, (size_t)c, (int64_t)d, err);
    }
    break;
  case FM_PQ_DOUBLE:
    if (vt == SQLITE_INTEGER || vt == SQLITE_FLOAT)
      return fm_parquet_put_double(w, (size_t)c, sqlite3_column_double(s, c), err);
    break;
  case FM_PQ_TIMESTAMP_MICROS:
    if (vt == SQLITE_TEXT)
      return fm_parquet_put_timestamp_text(w, (size_t)c, (const char *)sqlite3_column_text(s, c),
                                           (size_t)sqlite3_column_bytes(s, c), err);
    break;
  default:
    if (vt == SQLITE_BLOB) {
      int n = sqlite3_column_bytes(s, c);
      char *hex = fm_malloc(2 * (size_t)n + 1);
      if (!hex) return fm_error_set(err, FM_ERR_NOMEM, "%s: out of memory", path);
      fm_hex(sqlite3_column_blob(s, c), (size_t)n, hex);
      fm_rc rc = fm_parquet_put_string(w, (size_t)c, hex, 2 * (size_t)n, err);
      fm_free(hex);
      return rc;
    }
    {
      const char *txt = (const char *)sqlite3_column_text(s, c);
      return fm_parquet_put_string(w, (size_t)c, txt ? txt : "",
                                   (size_t)sqlite3_column_bytes(s, c), err);
    }
  }
  return fm_error_set(err, FM_ERR_PARSE,
                      "%s: row %llu, column '%s': a %s value in a column declared %s",
                      path, (unsigned long long)row, sqlite3_column_name(s, c),
                      vt == SQLITE_INTEGER ? "integer"
                      : vt == SQLITE_FLOAT ? "real"
                      : vt == SQLITE_TEXT  ? "text"
                                           : "blob",
                      sqlite3_column_decltype(s, c) ? sqlite3_column_decltype(s, c) : "?");
}

fm_rc fm_snapshot_write_parquet_rows(sqlite3 *db, sqlite3_stmt *s, const char *tmp_path,
                                     int drop_rows, fm_snapshot_file *out, fm_error *err) {
  int ncol = sqlite3_column_count(s);
  fm_pq_column *cols = fm_calloc((size_t)ncol, sizeof *cols);
  fm_pq_type *types = fm_calloc((size_t)ncol, sizeof *types);
  if (!cols || !types) {
    fm_free(cols);
    fm_free(types);
    return fm_error_set(err, FM_ERR_NOMEM, "%s: out of memory", tmp_path);
  }
  for (int c = 0; c < ncol; c++) {
    cols[c].name = sqlite3_column_name(s, c);
    cols[c].type = types[c] = fm_snapshot_pq_type(sqlite3_column_decltype(s, c), cols[c].name);
    cols[c].nullable = !column_required(db, s, c);
  }
  pq_hash h;
  sha256_init(&h.sha);
  h.bytes = 0;
  fm_pq_options o;
  memset(&o, 0, sizeof o);
  o.codec = FM_PQ_ZSTD;
  o.row_group_bytes = FM_SNAPSHOT_PQ_ROW_GROUP_BYTES;
  o.observe = pq_observe;
  o.observe_ctx = &h;
  fm_pq_writer *w = NULL;
  fm_rc rc = fm_parquet_writer_open(&w, tmp_path, cols, (size_t)ncol, &o, err);
  int step = SQLITE_DONE;
  while (rc == FM_OK && (step = sqlite3_step(s)) == SQLITE_ROW) {
    if (drop_rows > 0) { /* test hook: lose a row on the way out */
      drop_rows--;
      continue;
    }
    for (int c = 0; c < ncol && rc == FM_OK; c++)
      rc = put_value(w, s, c, types[c], tmp_path, out->rows + 1, err);
    if (rc == FM_OK) rc = fm_parquet_end_row(w, err);
    if (rc == FM_OK) out->rows++;
  }
  if (rc == FM_OK && step != SQLITE_DONE)
    rc = fm_error_set(err, (step & 0xff) == SQLITE_BUSY ? FM_ERR_BUSY : FM_ERR_DB,
                      "%s: reading rows: %s", tmp_path, sqlite3_errmsg(db));
  if (rc == FM_OK) {
    rc = fm_parquet_writer_close(w, NULL, err); /* removes the file on failure */
  } else if (w) {
    fm_parquet_writer_abort(w);
  }
  if (rc == FM_OK) {
    out->bytes = h.bytes;
    uint8_t dg[SHA256_DIGEST_SIZE];
    sha256_digest(&h.sha, sizeof dg, dg);
    fm_hex(dg, sizeof dg, out->sha256);
  }
  fm_free(cols);
  fm_free(types);
  return rc;
}
