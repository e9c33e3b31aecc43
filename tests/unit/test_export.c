/* test_export.c: exports (CSV quoting, column order, JSON / JSON Lines
 * validity, candidates, filters, the streaming sink, allocation faults).
 * Import-mappings: test_import_mappings.c; the shared store fixture:
 * fm_test_export.h. */
#include "fm_store.h"
#include "fm_store_sql.h"
#include "fm_test.h"
#include "fm_test_util.h"
#include "fm_test_store.h"
#include "fm_test_export.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

/* ---- export ---------------------------------------------------------------- */

static void test_csv_quoting_and_order(void) {
  fm_store *st = fixture("q.db");
  if (!st) return;
  three_mappings(st);
  mem_sink m = {0};
  fm_error e;
  fm_error_init(&e);
  fm_export_opts o = {.format = FM_EXPORT_CSV};
  size_t n = 0;
  CHECK(export_mem(st, &o, &m, &n, &e) == FM_OK);
  CHECK(n == 3);
  const char *want_header =
      "mapping_key,query_vendor,query_id,query_name,ref_vendor,ref_id,ref_name,status,"
      "origin,score,decided_by,decided_at,comment,flag\n";
  CHECK(strncmp(m.b.buf, want_header, strlen(want_header)) == 0);
  /* Commas and quotes are quoted and doubled; the newline stays inside the
   * quotes; UTF-8 passes unchanged. */
  CHECK(strstr(m.b.buf, ",\"say \"\"hi\"\", then\nnewline; caf\xc3\xa9 \xe2\x82\xac\",") != NULL);
  CHECK(strstr(m.b.buf, ",\"Bid, \"\"best\"\"\",") != NULL);
  /* Scores: shortest round-trippable text; no score is an empty cell. */
  CHECK(strstr(m.b.buf, ",proposed,analyst,0.1,ana,") != NULL);
  CHECK(strstr(m.b.buf, ",accepted,analyst,,ana,") != NULL);
  /* Exactly one header and 3 records when read back by the RFC 4180 reader;
   * the rows are in mapping_key order. */
  write_bytes(tmp("q.csv"), m.b.buf, m.b.len);
  fm_csvfile *f = NULL;
  CHECK(fm_csvfile_open(tmp("q.csv"), &f, &e) == FM_OK);
  int got, rows = 0;
  char prev[32] = "";
  CHECK(fm_csvfile_next(f, &got, &e) == FM_OK && got);
  CHECK(fm_csvfile_ncells(f) == fm_export_ncolumns);
  for (size_t i = 0; i < fm_export_ncolumns; i++)
    CHECK_STR(fm_csvfile_cell(f, i), fm_export_columns[i]);
  while (fm_csvfile_next(f, &got, &e) == FM_OK && got) {
    rows++;
    CHECK(fm_csvfile_ncells(f) == fm_export_ncolumns);
    CHECK(strcmp(prev, fm_csvfile_cell(f, 0)) < 0);
    snprintf(prev, sizeof prev, "%s", fm_csvfile_cell(f, 0));
    if (!strcmp(fm_csvfile_cell(f, 2), "PX_LAST")) {
      CHECK_STR(fm_csvfile_cell(f, 12), "say \"hi\", then\nnewline; caf\xc3\xa9 \xe2\x82\xac");
      CHECK(fm_csvfile_line(f) == 2 || fm_csvfile_line(f) > 2);
    }
  }
  CHECK(rows == 3);
  fm_csvfile_close(f);

  /* CRLF on request: every record ends with CRLF, embedded LF untouched. */
  o.crlf = 1;
  CHECK(export_mem(st, &o, &m, &n, &e) == FM_OK);
  CHECK(strncmp(m.b.buf + strlen(want_header) - 1, "\r\n", 2) == 0);
  CHECK(strstr(m.b.buf, "then\nnewline") != NULL);
  fm_buf_free(&m.b);
  fm_store_close(st);
}

static void test_json_formats(void) {
  fm_store *st = fixture("j.db");
  if (!st) return;
  three_mappings(st);
  mem_sink m = {0};
  fm_error e;
  fm_error_init(&e);
  fm_export_opts o = {.format = FM_EXPORT_JSON};
  CHECK(export_mem(st, &o, &m, NULL, &e) == FM_OK);
  json_error_t je;
  json_t *arr = json_loads(m.b.buf, 0, &je);
  CHECK(arr && json_is_array(arr) && json_array_size(arr) == 3);
  size_t i;
  json_t *row;
  json_array_foreach(arr, i, row) {
    CHECK(json_object_size(row) == fm_export_ncolumns);
    const char *q = json_string_value(json_object_get(row, "query_id"));
    if (q && !strcmp(q, "PX_LAST")) {
      CHECK_STR(json_string_value(json_object_get(row, "comment")),
                "say \"hi\", then\nnewline; caf\xc3\xa9 \xe2\x82\xac");
      CHECK(json_is_null(json_object_get(row, "score")));
      CHECK(json_is_null(json_object_get(row, "flag")));
    }
    if (q && !strcmp(q, "PX_BID")) CHECK(json_real_value(json_object_get(row, "score")) == 0.1);
  }
  json_decref(arr);
  /* Members in the documented order. */
  const char *p = m.b.buf;
  for (size_t k = 0; k < fm_export_ncolumns; k++) {
    char key[64];
    snprintf(key, sizeof key, "\"%s\":", fm_export_columns[k]);
    const char *at = strstr(p, key);
    CHECK(at != NULL);
    if (at) p = at;
  }
  /* JSON Lines: one valid object per line, nothing else. */
  o.format = FM_EXPORT_JSONL;
  CHECK(export_mem(st, &o, &m, NULL, &e) == FM_OK);
  int lines = 0;
  for (char *line = m.b.buf, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
    *nl = '\0';
    json_t *obj = json_loads(line, 0, &je);
    CHECK(obj && json_is_object(obj));
    json_decref(obj);
    lines++;
  }
  CHECK(lines == 3);
  /* Empty selection: an empty array, a header-only CSV. */
  o.format = FM_EXPORT_JSON;
  o.status = FM_MAP_SUPERSEDED;
  CHECK(export_mem(st, &o, &m, NULL, &e) == FM_OK);
  CHECK_STR(m.b.buf, "[]\n");
  fm_buf_free(&m.b);
  fm_store_close(st);
}

static void test_filters(void) {
  fm_store *st = fixture("f.db");
  if (!st) return;
  three_mappings(st);
  mem_sink m = {0};
  fm_error e;
  fm_error_init(&e);
  size_t n;
  fm_export_opts o = {.format = FM_EXPORT_CSV, .status = FM_MAP_ACCEPTED};
  CHECK(export_mem(st, &o, &m, &n, &e) == FM_OK && n == 1);
  CHECK(strstr(m.b.buf, "PX_LAST") && !strstr(m.b.buf, "PX_BID"));
  o.status = FM_MAP_REJECTED;
  CHECK(export_mem(st, &o, &m, &n, &e) == FM_OK && n == 1 && strstr(m.b.buf, "PX_ASK"));
  /* Accepting PX_LAST -> BID supersedes TRDPRC_1. */
  CHECK(decide(st, "PX_LAST", "BID", FM_MAP_ACCEPTED, NULL, NAN) == FM_OK);
  o.status = FM_MAP_SUPERSEDED;
  CHECK(export_mem(st, &o, &m, &n, &e) == FM_OK && n == 1 && strstr(m.b.buf, "TRDPRC_1"));
  o.status = 0;
  CHECK(export_mem(st, &o, &m, &n, &e) == FM_OK && n == 4);
  /* changed-since: a past date keeps all, a future one none. */
  o.changed_since = "2000-01-01";
  CHECK(export_mem(st, &o, &m, &n, &e) == FM_OK && n == 4);
  o.changed_since = "2999-12-31T23:59Z";
  CHECK(export_mem(st, &o, &m, &n, &e) == FM_OK && n == 0);
  o.changed_since = "yesterday";
  CHECK(export_mem(st, &o, &m, &n, &e) == FM_ERR_ARG);
  CHECK(strstr(e.msg, "yesterday") != NULL);
  char t[32];
  CHECK(fm_store_time_normalize("2024-03-05", t, sizeof t) == 0);
  CHECK_STR(t, "2024-03-05T00:00:00.000Z");
  CHECK(fm_store_time_normalize("2024-03-05T07:08:09.5Z", t, sizeof t) == 0);
  CHECK_STR(t, "2024-03-05T07:08:09.500Z");
  CHECK(fm_store_time_normalize("2024-13-05", t, sizeof t) == -1);
  CHECK(fm_store_time_normalize("2024-03-05 07:08", t, sizeof t) == -1);
  fm_buf_free(&m.b);
  fm_store_close(st);
}

static void add_candidates(fm_store *st) {
  /* Two batch runs rank PX_LAST; the export must use the latest. */
  char sql[1024];
  snprintf(sql, sizeof sql,
           "INSERT INTO model_runs(model_run_id, model_path, model_checksum) VALUES (1,'m','c');"
           "INSERT INTO batch_runs(batch_run_id, model_run_id) VALUES (1,1),(2,1);"
           "INSERT INTO candidates VALUES (1,%lld,1,%lld,0.5,1),(1,%lld,2,%lld,0.25,1),"
           "(2,%lld,1,%lld,0.875,1),(2,%lld,2,%lld,0.3333333333333333,1),"
           "(2,%lld,3,%lld,0.125,1);",
           (long long)fid(st, "bloomberg", "PX_LAST"), (long long)fid(st, "refinitiv", "BID"),
           (long long)fid(st, "bloomberg", "PX_LAST"), (long long)fid(st, "refinitiv", "ASK"),
           (long long)fid(st, "bloomberg", "PX_LAST"),
           (long long)fid(st, "refinitiv", "TRDPRC_1"),
           (long long)fid(st, "bloomberg", "PX_LAST"), (long long)fid(st, "refinitiv", "BID"),
           (long long)fid(st, "bloomberg", "PX_LAST"), (long long)fid(st, "refinitiv", "ASK"));
  fm_error e;
  fm_error_init(&e);
  CHECK(fm_store_exec(st, sql, &e) == FM_OK);
}

static void test_with_candidates(void) {
  fm_store *st = fixture("c.db");
  if (!st) return;
  three_mappings(st);
  add_candidates(st);
  mem_sink m = {0};
  fm_error e;
  fm_error_init(&e);
  size_t n;
  fm_export_opts o = {.format = FM_EXPORT_CSV, .with_candidates = 2};
  CHECK(export_mem(st, &o, &m, &n, &e) == FM_OK && n == 3);
  CHECK(strstr(m.b.buf, ",comment,flag,cand1_id,cand1_score,cand2_id,cand2_score\n") != NULL);
  /* Latest run (2), top 2, scores round-trippable; others padded. */
  CHECK(strstr(m.b.buf, ",TRDPRC_1,0.875,BID,0.3333333333333333\n") != NULL);
  CHECK(strstr(m.b.buf, ",,,,\n") != NULL);
  /* Every record has 14 + 2*2 cells. */
  write_bytes(tmp("c.csv"), m.b.buf, m.b.len);
  fm_csvfile *f = NULL;
  int got, rows = 0;
  CHECK(fm_csvfile_open(tmp("c.csv"), &f, &e) == FM_OK);
  while (f && fm_csvfile_next(f, &got, &e) == FM_OK && got) {
    CHECK(fm_csvfile_ncells(f) == fm_export_ncolumns + 4);
    rows++;
  }
  CHECK(rows == 4);
  fm_csvfile_close(f);

  o.format = FM_EXPORT_JSON;
  o.with_candidates = 5;
  CHECK(export_mem(st, &o, &m, &n, &e) == FM_OK);
  json_error_t je;
  json_t *arr = json_loads(m.b.buf, 0, &je);
  CHECK(arr != NULL);
  size_t i;
  json_t *row;
  json_array_foreach(arr, i, row) {
    json_t *c = json_object_get(row, "candidates");
    CHECK(json_is_array(c));
    const char *q = json_string_value(json_object_get(row, "query_id"));
    if (q && !strcmp(q, "PX_LAST")) {
      CHECK(json_array_size(c) == 3);
      json_t *c1 = json_array_get(c, 0);
      CHECK(json_integer_value(json_object_get(c1, "rank")) == 1);
      CHECK_STR(json_string_value(json_object_get(c1, "ref_id")), "TRDPRC_1");
      CHECK(json_real_value(json_object_get(c1, "score")) == 0.875);
    } else {
      CHECK(json_array_size(c) == 0);
    }
  }
  json_decref(arr);
  o.with_candidates = -1;
  CHECK(export_mem(st, &o, &m, &n, &e) == FM_ERR_ARG);
  fm_buf_free(&m.b);
  fm_store_close(st);
}

/* The sink sees one call per row (plus the header), never the whole result,
 * and its failure stops the export with its error. */
static void test_streaming_sink(void) {
  fm_store *st = fixture("s.db");
  if (!st) return;
  three_mappings(st);
  mem_sink m = {0};
  fm_error e;
  fm_error_init(&e);
  size_t n;
  fm_export_opts o = {.format = FM_EXPORT_CSV};
  CHECK(export_mem(st, &o, &m, &n, &e) == FM_OK);
  CHECK(m.calls == 4);
  CHECK(m.max_chunk < m.b.len / 2);
  o.format = FM_EXPORT_JSON;
  CHECK(export_mem(st, &o, &m, &n, &e) == FM_OK);
  CHECK(m.calls == 4); /* three rows (the first opens the array), the close */
  m.fail_at = 3;
  fm_error_init(&e);
  CHECK(export_mem(st, &o, &m, &n, &e) == FM_ERR_IO);
  CHECK(strstr(e.msg, "client went away") != NULL);
  CHECK(m.calls == 3);
  m.fail_at = 0;
  /* A busy database mid-export is reported, not truncated silently. */
  fm_store_fault_busy_after(st, 1);
  fm_error_init(&e);
  CHECK(export_mem(st, &o, &m, &n, &e) == FM_ERR_BUSY);
  fm_store_fault_busy_after(st, -1);
  /* The FILE* sink. */
  FILE *fp = fopen(tmp("s.json"), "w");
  fm_sink fs = fm_sink_file(fp);
  CHECK(fm_store_export(st, &o, &fs, &n, &e) == FM_OK && n == 3);
  fclose(fp);
  json_error_t je;
  json_t *arr = json_load_file(tmp("s.json"), 0, &je);
  CHECK(arr && json_array_size(arr) == 3);
  json_decref(arr);
  fm_buf_free(&m.b);
  fm_store_close(st);
}

/* Every allocation of an export may fail: the call fails cleanly (no leak,
 * no crash; ASan checks).  Import-mappings: test_import_mappings.c. */
static void test_alloc_faults(void) {
  fm_store *st = fixture("af.db");
  if (!st) return;
  three_mappings(st);
  add_candidates(st);
  mem_sink m = {0};
  fm_buf_puts(&m.b, ""); /* the sink's own buffer allocated up front */
  fm_error e;
  fm_export_opts eo = {.format = FM_EXPORT_JSON, .with_candidates = 2};
  int failures = 0, n;
  for (n = 1; n < 500; n++) {
    fm_error_init(&e);
    fm_fault_malloc_after(n);
    fm_rc rc = export_mem(st, &eo, &m, NULL, &e);
    fm_fault_malloc_after(0);
    if (rc == FM_OK) break;
    CHECK(rc == FM_ERR_NOMEM);
    failures++;
  }
  CHECK(n < 500 && failures > 0);
  fm_buf_free(&m.b);
  fm_store_close(st);
}

int main(void) {
  if (scratch_make("fm_export_")) return 1;
  FM_RUN(test_csv_quoting_and_order);
  FM_RUN(test_json_formats);
  FM_RUN(test_filters);
  FM_RUN(test_with_candidates);
  FM_RUN(test_streaming_sink);
  FM_RUN(test_alloc_faults);
  scratch_remove();
  FM_TEST_EXIT();
}
