/* test_parquet_duckdb.c: the reference reader.  Writes Parquet files with
 * every type x nullability x codec (edge values: quotes, newlines,
 * non-ASCII, "" vs NULL, huge and tiny INT64, NaN/inf/-0.0, timestamps
 * from year 1 to 9999, many row groups and pages), an expected.json with
 * every value and each file's row group count, and runs
 * tests/duckdb/check_parquet.mjs, which reads the files with DuckDB
 * (read_parquet, parquet_metadata) and compares every value, the types,
 * the row groups and the statistics.  Skips (77) only when node or the
 * npm package is missing (scripts/setup.sh installs both). */
#include "fm_parquet.h"
#include "fm_test.h"

#include <float.h>
#include <jansson.h>
#include <stdint.h>
#include <unistd.h>

#define NTYPES 6
static const fm_pq_type types[NTYPES] = {FM_PQ_INT64,           FM_PQ_DOUBLE,
                                         FM_PQ_STRING,          FM_PQ_TIMESTAMP_MICROS,
                                         FM_PQ_TIMESTAMP_MILLIS, FM_PQ_BOOLEAN};
static const char *type_names[NTYPES] = {"int64", "double", "string", "ts_us", "ts_ms", "bool"};

static const char *edge_strings[] = {
    "", "plain", "with \"quotes\", and, commas", "line\nbreak\r\nCRLF and\ttab",
    "Zürich – 東京 – 😀", " leading and trailing ", "\\back\\slash", "NULL", "'single'",
    "\xc3\xa9", "zzz-last-ascii", "\xf4\x8f\xbf\xbf max code point"};
#define NEDGE_S (sizeof edge_strings / sizeof *edge_strings)

static const int64_t edge_ints[] = {INT64_MIN, INT64_MAX, 0, -1, 9007199254740993LL,
                                    -9007199254740993LL, 1};
#define NEDGE_I (sizeof edge_ints / sizeof *edge_ints)

/* Microseconds: epoch, just before it, 2023-11-14T22:13:20.123456Z,
 * 9999-12-31T23:59:59.999999Z, 0001-01-01T00:00:00Z. */
static const int64_t edge_ts[] = {0, -1, 1700000000123456LL, 253402300799999999LL,
                                  -62135596800000000LL};
#define NEDGE_T (sizeof edge_ts / sizeof *edge_ts)

static double edge_double(size_t r, int *has) {
  *has = 1;
  switch (r) {
  case 0: return 0.0;
  case 1: return -0.0;
  case 2: return NAN;
  case 3: return INFINITY;
  case 4: return -INFINITY;
  case 5: return DBL_MAX;
  case 6: return 5e-324;
  case 7: return 0.1;
  case 8: return -1e-300;
  }
  *has = 0;
  return 0;
}

/* Row r of a column: NULL in nullable columns on every 5th row (3, 8,
 * ...), so "" (row 0) and NULL differ. */
static int is_null(int nullable, size_t r, int type) {
  return nullable && (r + (size_t)type) % 5 == 3;
}

/* Put the value of (type, r) into the writer and its JSON into row. */
static fm_rc put_value(fm_pq_writer *w, size_t col, int t, int nullable, size_t r,
                       json_t *row, fm_buf *tmp, fm_error *err) {
  if (is_null(nullable, r, t)) {
    json_array_append_new(row, json_null());
    return fm_parquet_put_null(w, col, err);
  }
  char num[64];
  int has;
  switch (types[t]) {
  case FM_PQ_INT64: {
    int64_t v = r < NEDGE_I ? edge_ints[r] : (int64_t)r * 1000003 - 5000000000LL;
    snprintf(num, sizeof num, "%lld", (long long)v);
    json_array_append_new(row, json_string(num));
    return fm_parquet_put_int64(w, col, v, err);
  }
  case FM_PQ_DOUBLE: {
    double v = edge_double(r, &has);
    if (!has) v = (double)r * 0.37 - 100.0;
    if (v != v) snprintf(num, sizeof num, "nan");
    else if (isinf(v)) snprintf(num, sizeof num, v > 0 ? "inf" : "-inf");
    else snprintf(num, sizeof num, "%.17g", v);
    json_array_append_new(row, json_string(num));
    return fm_parquet_put_double(w, col, v, err);
  }
  case FM_PQ_STRING: {
    fm_buf_reset(tmp);
    if (r < NEDGE_S) {
      fm_buf_puts(tmp, edge_strings[r]);
    } else if (r == NEDGE_S) { /* a long value: bigger than a test page */
      for (int k = 0; k < 1500; k++) fm_buf_puts(tmp, "long ü ");
    } else if (r < 1000) { /* few distinct values: dictionary pages */
      fm_buf_printf(tmp, "category %zu – ü", r % 7);
    } else { /* distinct values: the dictionary fills or does not pay */
      fm_buf_printf(tmp, "row %zu – ümlaut %zu", r, (r * 7919) % 1000);
    }
    json_array_append_new(row, json_stringn(tmp->buf, tmp->len));
    return fm_parquet_put_string(w, col, tmp->buf, tmp->len, err);
  }
  case FM_PQ_TIMESTAMP_MICROS:
  case FM_PQ_TIMESTAMP_MILLIS: {
    int64_t us = r < NEDGE_T ? edge_ts[r] : 1600000000000000LL + (int64_t)r * 3600000000LL;
    int64_t v = types[t] == FM_PQ_TIMESTAMP_MILLIS ? us / 1000 : us;
    if (types[t] == FM_PQ_TIMESTAMP_MILLIS && us < 0 && us % 1000) v--; /* floor */
    snprintf(num, sizeof num, "%lld", (long long)v);
    json_array_append_new(row, json_string(num));
    return fm_parquet_put_int64(w, col, v, err);
  }
  case FM_PQ_BOOLEAN:
    json_array_append_new(row, json_boolean(r % 3 == 1));
    return fm_parquet_put_bool(w, col, r % 3 == 1, err);
  }
  return FM_ERR_INTERNAL;
}

/* Write one file of nrows rows of every type x nullability; add its
 * description to files. */
static int write_file(const char *dir, const char *name, size_t nrows, const fm_pq_options *o,
                      json_t *files) {
  fm_pq_column cols[2 * NTYPES];
  char names[2 * NTYPES][32];
  json_t *jcols = json_array();
  for (int t = 0; t < NTYPES; t++)
    for (int nl = 0; nl < 2; nl++) {
      int c = 2 * t + nl;
      snprintf(names[c], sizeof names[c], "%s_%s", type_names[t], nl ? "opt" : "req");
      cols[c] = (fm_pq_column){names[c], types[t], nl};
      json_array_append_new(jcols, json_pack("{s:s, s:s, s:b}", "name", names[c], "type",
                                             type_names[t], "nullable", nl));
    }
  char path[4096];
  snprintf(path, sizeof path, "%s/%s.parquet", dir, name);
  fm_pq_writer *w;
  fm_error e;
  fm_error_init(&e);
  fm_rc rc = fm_parquet_writer_open(&w, path, cols, 2 * NTYPES, o, &e);
  CHECK(rc == FM_OK);
  if (rc) {
    fprintf(stderr, "open: %s\n", e.msg);
    json_decref(jcols);
    return 1;
  }
  json_t *rows = json_array();
  fm_buf tmp;
  fm_buf_init(&tmp);
  for (size_t r = 0; r < nrows && rc == FM_OK; r++) {
    json_t *row = json_array();
    for (int c = 0; c < 2 * NTYPES && rc == FM_OK; c++)
      rc = put_value(w, (size_t)c, c / 2, c % 2, r, row, &tmp, &e);
    if (rc == FM_OK) rc = fm_parquet_end_row(w, &e);
    json_array_append_new(rows, row);
  }
  fm_buf_free(&tmp);
  fm_pq_result res;
  if (rc == FM_OK) rc = fm_parquet_writer_close(w, &res, &e);
  else fm_parquet_writer_abort(w);
  CHECK(rc == FM_OK);
  if (rc) fprintf(stderr, "%s: %s\n", name, e.msg);
  json_array_append_new(files, json_pack("{s:s, s:s, s:b, s:o, s:o, s:I}", "path", path,
                                         "codec", fm_pq_codec_name(o->codec), "dictionary",
                                         !o->no_dictionary, "columns", jcols, "rows", rows,
                                         "row_groups", (json_int_t)res.row_groups));
  return rc != FM_OK;
}

int main(void) {
  if (system("node --version >/dev/null 2>&1") != 0) {
    fprintf(stderr, "SKIP: node is not installed (scripts/setup.sh installs nodejs)\n");
    return 77;
  }
  if (access("tests/duckdb/node_modules/@duckdb/node-api/package.json", R_OK) != 0) {
    fprintf(stderr, "SKIP: @duckdb/node-api is not installed "
                    "(scripts/setup.sh runs npm ci in tests/duckdb)\n");
    return 77;
  }
  char dir[] = "/tmp/fm_pq_duckdb.XXXXXX";
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  json_t *files = json_array();
  int bad = 0;
  /* Small row groups and pages: many of each, and a value wider than a
   * page.  zstd: a 1 KiB dictionary, so string chunks fall back from
   * dictionary to PLAIN pages midway; uncompressed: PLAIN strings only. */
  const fm_pq_options opts[] = {
      {.codec = FM_PQ_ZSTD, .row_group_bytes = 64 << 10, .page_bytes = 1 << 10,
       .dictionary_bytes = 1 << 10},
      {.codec = FM_PQ_SNAPPY, .row_group_bytes = 16 << 10, .page_bytes = 4 << 10},
      {.codec = FM_PQ_UNCOMPRESSED, .row_group_bytes = 32 << 10, .page_bytes = 2 << 10,
       .no_dictionary = 1},
      {.codec = FM_PQ_ZSTD},
      {.codec = FM_PQ_SNAPPY}};
  bad |= write_file(dir, "zstd", 3000, &opts[0], files);
  bad |= write_file(dir, "snappy", 3000, &opts[1], files);
  bad |= write_file(dir, "uncompressed", 3000, &opts[2], files);
  bad |= write_file(dir, "defaults", 20000, &opts[3], files);
  bad |= write_file(dir, "tiny", 3, &opts[3], files); /* doubles 0, -0, NaN */
  bad |= write_file(dir, "empty", 0, &opts[4], files);
  char exp[4200], cmd[8600];
  snprintf(exp, sizeof exp, "%s/expected.json", dir);
  json_t *doc = json_pack("{s:o}", "files", files);
  CHECK(json_dump_file(doc, exp, JSON_COMPACT) == 0);
  json_decref(doc);
  if (!bad) {
    snprintf(cmd, sizeof cmd, "node tests/duckdb/check_parquet.mjs '%s'", exp);
    int st = system(cmd);
    CHECK(st == 0);
  }
  if (fm_test_failures == 0 && !getenv("FM_PQ_KEEP")) {
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
  } else {
    fprintf(stderr, "files kept in %s\n", dir);
  }
  FM_TEST_EXIT();
}
