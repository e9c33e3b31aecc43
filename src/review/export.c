/* export.c: stream mappings out as CSV, JSON Lines or one JSON array.
 *
 * One SELECT, stepped row by row; each mapping is formatted into one reused
 * buffer and handed to the sink, so memory is independent of the number of
 * rows.  With candidates, the statement LEFT JOINs a mapping's top-K
 * candidates, which arrive as K consecutive result rows of that mapping
 * (ordered by mapping_key, then rank) and are folded into its output row. */
#include "fm_review.h"
#include "fm_store_sql.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- sinks ---------------------------------------------------------------- */

static fm_rc file_write(void *ctx, const void *p, size_t n, fm_error *err) {
  FILE *fp = ctx;
  if (n && fwrite(p, 1, n, fp) != n)
    return fm_error_set(err, FM_ERR_IO, "write: %s", strerror(errno ? errno : EIO));
  return FM_OK;
}

fm_sink fm_sink_file(FILE *fp) {
  fm_sink s = {file_write, fp};
  return s;
}

/* ---- options ---------------------------------------------------------------- */

int fm_export_format_parse(const char *s) {
  if (!s) return -1;
  if (!strcmp(s, "csv")) return FM_EXPORT_CSV;
  if (!strcmp(s, "jsonl")) return FM_EXPORT_JSONL;
  if (!strcmp(s, "json")) return FM_EXPORT_JSON;
  return -1;
}

/* Digits at s[0..n), all of them. */
static int digits(const char *s, int n) {
  for (int i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return 0;
  return 1;
}

int fm_store_time_normalize(const char *s, char *out, size_t n) {
  /* Template of the canonical form; the input overwrites a prefix of it. */
  static const char canon[] = "0000-00-00T00:00:00.000Z";
  if (n < sizeof canon) return -1;
  out[0] = '\0';
  if (!s) return -1;
  size_t len = strlen(s);
  if (len && s[len - 1] == 'Z') len--;
  /* The accepted lengths: date, +HH:MM, +:SS, +.m .. .mmm */
  if (!(len == 10 || len == 16 || len == 19 || (len >= 21 && len <= 23))) return -1;
  if (!digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
      !digits(s + 8, 2))
    return -1;
  if (len > 10 && (s[10] != 'T' || !digits(s + 11, 2) || s[13] != ':' ||
                   !digits(s + 14, 2)))
    return -1;
  if (len > 16 && (s[16] != ':' || !digits(s + 17, 2))) return -1;
  if (len > 19 && (s[19] != '.' || !digits(s + 20, (int)len - 20))) return -1;
  int mon = (s[5] - '0') * 10 + (s[6] - '0'), day = (s[8] - '0') * 10 + (s[9] - '0');
  if (mon < 1 || mon > 12 || day < 1 || day > 31) return -1;
  memcpy(out, canon, sizeof canon);
  memcpy(out, s, len);
  return 0;
}

/* ---- formatting ------------------------------------------------------------- */

const char *const fm_export_columns[] = {
    "mapping_key", "query_vendor", "query_id",   "query_name", "ref_vendor",
    "ref_id",      "ref_name",     "status",     "origin",     "score",
    "decided_by",  "decided_at",   "comment",    "flag"};
const size_t fm_export_ncolumns = sizeof fm_export_columns / sizeof fm_export_columns[0];

/* Result columns of the statement: the export columns above at 1..14 (with
 * the mapping_id at 0), then the candidate's rank, ref vendor, ref id, score. */
enum { C_ID = 0, C_FIRST = 1, C_SCORE = 10, C_RANK = 15, C_CVENDOR, C_CID, C_CSCORE };

/* The shortest "%.*g" text of x that reads back as exactly x (15 to 17
 * significant digits), so a score survives export -> import unchanged. */
static void fmt_double(double x, char *out, size_t n) {
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(out, n, "%.*g", prec, x);
    if (strtod(out, NULL) == x) return;
  }
}


/* Column i of the current result row as text ("" for NULL). */
static const char *col_text(sqlite3_stmt *s, int i, size_t *n) {
  const char *t = (const char *)sqlite3_column_text(s, i);
  *n = t ? (size_t)sqlite3_column_bytes(s, i) : 0;
  return t ? t : "";
}

/* A number column as text: "" for NULL or a non-finite value. */
static void col_number(sqlite3_stmt *s, int i, char *out, size_t n) {
  out[0] = '\0';
  if (sqlite3_column_type(s, i) == SQLITE_NULL) return;
  double x = sqlite3_column_double(s, i);
  if (isfinite(x)) fmt_double(x, out, n);
}

typedef struct exporter {
  const fm_export_opts *o;
  const fm_sink *sink;
  fm_buf row;
  size_t nrows;
  int ncand; /* candidates added to the current row */
} exporter;

/* One CSV cell, with its separator unless it starts the row. */
static fm_rc csv_cell(fm_buf *b, const char *s, size_t n, int first) {
  fm_rc rc = first ? FM_OK : fm_buf_putc(b, ',');
  return rc ? rc : fm_buf_csv_cell(b, s, n, 0);
}

static fm_rc put_value(exporter *x, sqlite3_stmt *s, int col, const char *name,
                       int first, int number) {
  size_t n;
  char num[40];
  int null = sqlite3_column_type(s, col) == SQLITE_NULL; /* before any conversion */
  const char *v = col_text(s, col, &n);
  if (number) {
    col_number(s, col, num, sizeof num);
    v = num;
    n = strlen(num);
  }
  if (x->o->format == FM_EXPORT_CSV) return csv_cell(&x->row, v, n, first);
  fm_rc rc = first ? FM_OK : fm_buf_putc(&x->row, ',');
  if (!rc) rc = fm_buf_printf(&x->row, "\"%s\":", name);
  if (rc) return rc;
  if (null || (number && !n))
    return fm_buf_puts(&x->row, "null");
  /* The store holds UTF-8 only (every importer checks it). */
  return number ? fm_buf_append(&x->row, v, n) : fm_buf_json_str(&x->row, v, n, NULL);
}

/* Start a mapping's output row from the current result row. */
static fm_rc row_begin(exporter *x, sqlite3_stmt *s) {
  fm_buf_reset(&x->row);
  x->ncand = 0;
  fm_rc rc = FM_OK;
  if (x->o->format == FM_EXPORT_JSON)
    rc = fm_buf_puts(&x->row, x->nrows ? ",\n" : "[\n");
  if (!rc && x->o->format != FM_EXPORT_CSV) rc = fm_buf_putc(&x->row, '{');
  for (size_t i = 0; !rc && i < fm_export_ncolumns; i++)
    rc = put_value(x, s, C_FIRST + (int)i, fm_export_columns[i], i == 0,
                   C_FIRST + (int)i == C_SCORE);
  if (!rc && x->o->format != FM_EXPORT_CSV && x->o->with_candidates > 0)
    rc = fm_buf_puts(&x->row, ",\"candidates\":[");
  return rc;
}

static fm_rc row_candidate(exporter *x, sqlite3_stmt *s) {
  fm_rc rc;
  if (x->o->format == FM_EXPORT_CSV) {
    if ((rc = put_value(x, s, C_CID, NULL, 0, 0))) return rc;
    rc = put_value(x, s, C_CSCORE, NULL, 0, 1);
  } else {
    rc = fm_buf_printf(&x->row, "%s{\"rank\":%d,", x->ncand ? "," : "",
                       sqlite3_column_int(s, C_RANK));
    if (!rc) rc = put_value(x, s, C_CVENDOR, "ref_vendor", 1, 0);
    if (!rc) rc = put_value(x, s, C_CID, "ref_id", 0, 0);
    if (!rc) rc = put_value(x, s, C_CSCORE, "score", 0, 1);
    if (!rc) rc = fm_buf_putc(&x->row, '}');
  }
  x->ncand++;
  return rc;
}

static fm_rc row_end(exporter *x, fm_error *err) {
  fm_rc rc = FM_OK;
  if (x->o->format == FM_EXPORT_CSV) {
    /* Fewer than K candidates: empty cells keep the columns aligned. */
    for (; !rc && x->ncand < x->o->with_candidates; x->ncand++)
      rc = fm_buf_puts(&x->row, ",,");
    if (!rc) rc = fm_buf_puts(&x->row, x->o->crlf ? "\r\n" : "\n");
  } else {
    if (x->o->with_candidates > 0) rc = fm_buf_putc(&x->row, ']');
    if (!rc) rc = fm_buf_putc(&x->row, '}');
    if (!rc && x->o->format == FM_EXPORT_JSONL) rc = fm_buf_putc(&x->row, '\n');
  }
  if (rc) return fm_error_set(err, rc, "export: out of memory");
  x->nrows++;
  return x->sink->write(x->sink->ctx, x->row.buf, x->row.len, err);
}

static fm_rc write_header(exporter *x, fm_error *err) {
  if (x->o->format != FM_EXPORT_CSV) return FM_OK;
  fm_buf_reset(&x->row);
  fm_rc rc = FM_OK;
  for (size_t i = 0; !rc && i < fm_export_ncolumns; i++)
    rc = csv_cell(&x->row, fm_export_columns[i], strlen(fm_export_columns[i]), i == 0);
  for (int k = 1; !rc && k <= x->o->with_candidates; k++)
    rc = fm_buf_printf(&x->row, ",cand%d_id,cand%d_score", k, k);
  if (!rc) rc = fm_buf_puts(&x->row, x->o->crlf ? "\r\n" : "\n");
  if (rc) return fm_error_set(err, rc, "export: out of memory");
  return x->sink->write(x->sink->ctx, x->row.buf, x->row.len, err);
}

/* Candidates come from the latest batch run that ranked the mapping's query
 * field (the largest batch_run_id among its candidates), at most K of them.
 * The ORDER BY follows the mappings_key index and the candidates' primary
 * key, so SQLite walks indexes instead of sorting the result (EXPLAIN QUERY
 * PLAN shows no temp b-tree).  Without candidates the LEFT JOINs are left
 * out altogether: the correlated subquery would still cost about 3x. */
#define EXPORT_COLUMNS                                                           \
  "SELECT m.mapping_id, m.mapping_key, q.vendor, q.id, q.name, r.vendor, r.id,"   \
  " r.name, m.status, m.origin, m.score, m.decided_by, m.decided_at, m.comment,"  \
  " m.flag"
#define EXPORT_FROM                                                              \
  " FROM mappings m"                                                             \
  " JOIN fields q ON q.field_id = m.query_field_id"                              \
  " LEFT JOIN fields r ON r.field_id = m.ref_field_id"
#define EXPORT_WHERE " WHERE (?1 IS NULL OR m.status = ?1) AND (?2 IS NULL OR m.decided_at >= ?2)"

static const char export_sql[] =
    EXPORT_COLUMNS ", NULL, NULL, NULL, NULL" EXPORT_FROM EXPORT_WHERE
    " AND ?3 = 0 ORDER BY m.mapping_key";

static const char export_cand_sql[] =
    EXPORT_COLUMNS ", c.rank, cr.vendor, cr.id, c.score" EXPORT_FROM
    " LEFT JOIN candidates c ON c.query_field_id = m.query_field_id"
    "  AND c.batch_run_id = (SELECT max(c2.batch_run_id) FROM candidates c2"
    "                        WHERE c2.query_field_id = m.query_field_id)"
    "  AND c.rank <= ?3"
    " LEFT JOIN fields cr ON cr.field_id = c.ref_field_id" EXPORT_WHERE
    " ORDER BY m.mapping_key, c.rank";

fm_rc fm_store_export(fm_store *st, const fm_export_opts *o, const fm_sink *sink,
                      size_t *nrows, fm_error *err) {
  if (nrows) *nrows = 0;
  if (!st || !o || !sink || !sink->write)
    return fm_error_set(err, FM_ERR_ARG, "export: missing store, options or sink");
  fm_export_opts opts = *o;
  if (!opts.format) opts.format = FM_EXPORT_CSV;
  if (opts.format < FM_EXPORT_CSV || opts.format > FM_EXPORT_JSON)
    return fm_error_set(err, FM_ERR_ARG, "export: unknown format %d", (int)opts.format);
  if (opts.status && (opts.status < FM_MAP_PROPOSED || opts.status > FM_MAP_NO_EQUIVALENT))
    return fm_error_set(err, FM_ERR_ARG, "export: unknown status %d", opts.status);
  if (opts.with_candidates < 0 || opts.with_candidates > 1000)
    return fm_error_set(err, FM_ERR_ARG,
                        "export: --with-candidates must be 0..1000, not %d",
                        opts.with_candidates);
  char since[32];
  if (opts.changed_since && fm_store_time_normalize(opts.changed_since, since, sizeof since))
    return fm_error_set(err, FM_ERR_ARG,
                        "export: changed-since '%s' is not a UTC time "
                        "YYYY-MM-DD[THH:MM[:SS[.mmm]]][Z]",
                        opts.changed_since);

  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(
      st, opts.with_candidates > 0 ? export_cand_sql : export_sql, &s, err);
  if (rc) return rc;
  if (opts.status)
    sqlite3_bind_text(s, 1, fm_map_status_name((fm_map_status)opts.status), -1,
                      SQLITE_STATIC);
  if (opts.changed_since) sqlite3_bind_text(s, 2, since, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 3, opts.with_candidates);

  exporter x = {.o = &opts, .sink = sink};
  fm_buf_init(&x.row);
  rc = write_header(&x, err);
  int64_t cur = 0;
  int have = 0, step = SQLITE_DONE;
  while (!rc && (step = fm_store_step(st, s)) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(s, C_ID);
    if (!have || id != cur) {
      if (have && (rc = row_end(&x, err))) break;
      if ((rc = row_begin(&x, s))) {
        fm_error_set(err, rc, "export: out of memory");
        break;
      }
      have = 1;
      cur = id;
    }
    if (opts.with_candidates > 0 && sqlite3_column_type(s, C_RANK) != SQLITE_NULL &&
        x.ncand < opts.with_candidates && (rc = row_candidate(&x, s))) {
      fm_error_set(err, rc, "export: out of memory");
      break;
    }
  }
  if (!rc && step != SQLITE_DONE) rc = fm_store_steperr(st, step, err, "export mappings");
  if (!rc && have) rc = row_end(&x, err);
  if (!rc && opts.format == FM_EXPORT_JSON)
    rc = sink->write(sink->ctx, x.nrows ? "\n]\n" : "[]\n", 3, err);
  sqlite3_finalize(s);
  fm_buf_free(&x.row);
  if (!rc && nrows) *nrows = x.nrows;
  return rc;
}
