/* test_export.c: exports (CSV quoting, column order, JSON / JSON Lines
 * validity, candidates, filters, the streaming sink) and import-mappings
 * (per-row validation with line numbers, all or nothing, dry run, malformed
 * CSV, the round trip, retries after SQLITE_BUSY, allocation faults). */
#include "fm_store.h"
#include "fm_store_sql.h"
#include "fm_test.h"
#include "fm_test_util.h"
#include "fm_test_store.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

/* ---- fixtures ------------------------------------------------------------ */

static void add(fm_fieldset *fs, const char *vendor, const char *id, const char *name) {
  fm_field f = {.vendor = vendor, .id = id, .name = name, .source = "test",
                .line = (uint32_t)fs->n + 1};
  fm_fieldset_add(fs, &f);
}

/* A database with 4 Bloomberg query fields (one shared with another vendor)
 * and 5 Refinitiv reference fields. */
static fm_store *fixture(const char *name) {
  unlink(tmp(name));
  fm_store *st = NULL;
  fm_error e;
  fm_error_init(&e);
  if (fm_store_open(tmp(name), create_opts(), &st, &e)) {
    fprintf(stderr, "open: %s\n", e.msg);
    return NULL;
  }
  fm_fieldset q, q2, r;
  fm_fieldset_init(&q);
  fm_fieldset_init(&q2);
  fm_fieldset_init(&r);
  add(&q, "bloomberg", "PX_LAST", "Last Price");
  add(&q, "bloomberg", "PX_BID", "Bid, \"best\"");
  add(&q, "bloomberg", "PX_ASK", "Ask");
  add(&q, "bloomberg", "VOLUME", "Volume");
  add(&q2, "ice", "VOLUME", "Volume (ICE)");
  add(&r, "refinitiv", "TRDPRC_1", "LAST");
  add(&r, "refinitiv", "BID", "BID");
  add(&r, "refinitiv", "ASK", "ASK");
  add(&r, "refinitiv", "ACVOL_1", "VOLUME");
  add(&r, "refinitiv", "OLD_FIELD", "gone soon");
  int ok = fm_store_import_fields(st, "bbg", FM_ROLE_QUERY, &q, "t", NULL, &e) == FM_OK &&
           fm_store_import_fields(st, "ice", FM_ROLE_QUERY, &q2, "t", NULL, &e) == FM_OK &&
           fm_store_import_fields(st, "rdm", FM_ROLE_REFERENCE, &r, "t", NULL, &e) == FM_OK;
  /* v2 of the reference dictionary drops OLD_FIELD: a removed field. */
  fm_fieldset_free(&r);
  fm_fieldset_init(&r);
  add(&r, "refinitiv", "TRDPRC_1", "LAST");
  add(&r, "refinitiv", "BID", "BID");
  add(&r, "refinitiv", "ASK", "ASK");
  add(&r, "refinitiv", "ACVOL_1", "VOLUME");
  ok = ok && fm_store_import_fields(st, "rdm", FM_ROLE_REFERENCE, &r, "t", NULL, &e) == FM_OK;
  fm_fieldset_free(&q);
  fm_fieldset_free(&q2);
  fm_fieldset_free(&r);
  if (!ok) {
    fprintf(stderr, "fixture: %s\n", e.msg);
    fm_store_close(st);
    return NULL;
  }
  return st;
}

static int64_t fid(fm_store *st, const char *vendor, const char *id) {
  return fm_store_field_id(st, vendor, id, 0);
}

static fm_rc decide(fm_store *st, const char *q, const char *r, fm_map_status s,
                    const char *comment, double score) {
  fm_decision d = {.query_field = fid(st, "bloomberg", q),
                   .ref_field = fid(st, "refinitiv", r),
                   .status = s,
                   .actor = "ana",
                   .comment = comment,
                   .origin = "analyst",
                   .score = score,
                   .expect_accepted = -1};
  fm_error e;
  fm_error_init(&e);
  fm_rc rc = fm_store_decide(st, &d, NULL, &e);
  if (rc) fprintf(stderr, "decide: %s\n", e.msg);
  return rc;
}

/* Everything an import could touch, as one text, to compare before/after. */
static char *dump(fm_store *st) {
  fm_buf b;
  fm_buf_init(&b);
  const char *sql[] = {
      ("SELECT mapping_key, status, origin, score, decided_by, decided_at, comment, flag"
       " FROM mappings ORDER BY mapping_key"),
      "SELECT audit_id, action, entity_key FROM audit_log ORDER BY audit_id",
      "SELECT query_field_id, resolved_at FROM review_queue ORDER BY 1"};
  for (size_t k = 0; k < sizeof sql / sizeof sql[0]; k++) {
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(fm_store_db(st), sql[k], -1, &s, NULL) != SQLITE_OK) break;
    while (sqlite3_step(s) == SQLITE_ROW) {
      for (int i = 0; i < sqlite3_column_count(s); i++) {
        const unsigned char *t = sqlite3_column_text(s, i);
        fm_buf_printf(&b, "%s|", t ? (const char *)t : "NULL");
      }
      fm_buf_putc(&b, '\n');
    }
    sqlite3_finalize(s);
  }
  return b.buf ? b.buf : fm_strdup("");
}

/* A sink into an fm_buf that can be told to fail on its Nth call. */
typedef struct mem_sink {
  fm_buf b;
  int calls, fail_at;
  size_t max_chunk;
} mem_sink;

static fm_rc mem_write(void *ctx, const void *p, size_t n, fm_error *err) {
  mem_sink *m = ctx;
  if (++m->calls == m->fail_at) return fm_error_set(err, FM_ERR_IO, "client went away");
  if (n > m->max_chunk) m->max_chunk = n;
  return fm_buf_append(&m->b, p, n) ? fm_error_set(err, FM_ERR_NOMEM, "oom") : FM_OK;
}

static fm_rc export_mem(fm_store *st, const fm_export_opts *o, mem_sink *m, size_t *n,
                        fm_error *e) {
  fm_buf_reset(&m->b);
  m->calls = 0;
  fm_sink sink = {mem_write, m};
  fm_rc rc = fm_store_export(st, o, &sink, n, e);
  if (!m->b.buf) fm_buf_puts(&m->b, "");
  return rc;
}

/* Three mappings: PX_LAST accepted (awkward comment), PX_BID proposed
 * (score), PX_ASK rejected. */
static void three_mappings(fm_store *st) {
  CHECK(decide(st, "PX_LAST", "TRDPRC_1", FM_MAP_ACCEPTED,
               "say \"hi\", then\nnewline; caf\xc3\xa9 \xe2\x82\xac", NAN) == FM_OK);
  CHECK(decide(st, "PX_BID", "BID", FM_MAP_PROPOSED, NULL, 0.1) == FM_OK);
  CHECK(decide(st, "PX_ASK", "ASK", FM_MAP_REJECTED, "no", NAN) == FM_OK);
}

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

/* ---- import-mappings ------------------------------------------------------- */

typedef struct collected {
  fm_buf lines; /* "LINE:action:detail\n" per report */
  int calls;
} collected;

static void collect(void *ctx, const fm_imap_row *r) {
  collected *c = ctx;
  c->calls++;
  fm_buf_printf(&c->lines, "%u:%s:%s\n", r->line, fm_imap_action_name(r->action),
                r->error ? r->error : r->superseded ? r->superseded : "");
}

static fm_rc import_text(fm_store *st, const char *name, const char *text,
                         const fm_imap_opts *o, collected *c, fm_imap_result *res,
                         fm_error *e) {
  write_bytes(tmp(name), text, strlen(text));
  fm_buf_reset(&c->lines);
  c->calls = 0;
  fm_error_init(e);
  fm_rc rc = fm_store_import_mappings(st, tmp(name), o, collect, c, res, e);
  if (!c->lines.buf) fm_buf_puts(&c->lines, "");
  return rc;
}

static void test_import_validation(void) {
  fm_store *st = fixture("v.db");
  if (!st) return;
  CHECK(decide(st, "PX_ASK", "ASK", FM_MAP_ACCEPTED, NULL, NAN) == FM_OK);
  char *before = dump(st);
  collected c = {0};
  fm_imap_result res;
  fm_error e;
  fm_imap_opts o;
  fm_imap_opts_default(&o);
  const char *sheet =
      "query_id,ref_id,status\n"       /* 1 */
      "PX_LAST,TRDPRC_1,accepted\n"    /* 2 ok */
      "NOPE,BID,accepted\n"            /* 3 unknown query field */
      "PX_BID,NOPE,accepted\n"         /* 4 unknown reference field */
      "PX_BID,PX_LAST,accepted\n"      /* 5 a query id given as the reference */
      "PX_LAST,TRDPRC_1,accepted\n"    /* 6 duplicate of 2 */
      "PX_LAST,BID,accepted\n"         /* 7 second accepted ref for PX_LAST */
      "PX_ASK,ASK,proposed\n"          /* 8 proposal over an accepted decision */
      "VOLUME,ACVOL_1,accepted\n"      /* 9 VOLUME exists for two vendors */
      "PX_BID,OLD_FIELD,accepted\n"    /* 10 removed reference field */
      "PX_BID,BID,maybe\n"             /* 11 bad status */
      "PX_BID,BID\n"                   /* 12 short row */
      "\"PX_BID\",\"\",accepted\n"     /* 13 empty reference */
      "PX_BID,BID,accepted\n";         /* 14 ok */
  CHECK(import_text(st, "v.csv", sheet, &o, &c, &res, &e) == FM_ERR_PARSE);
  CHECK(strstr(e.msg, "11 of 13 rows") && strstr(e.msg, "nothing imported"));
  CHECK(res.errors == 11 && res.rows == 13);
  CHECK(c.calls == 11); /* only the failing rows are reported */
  const char *want[] = {"3:error:unknown query field 'NOPE'",
                        "4:error:unknown reference field 'NOPE'",
                        "5:error:'PX_LAST' is a query field, given as the reference",
                        "6:error:duplicate row: PX_LAST -> TRDPRC_1 is already on line 2",
                        "7:error:PX_LAST is accepted as BID here but as TRDPRC_1 on line 2",
                        "8:error:PX_ASK -> ASK is accepted in the database",
                        "9:error:query field 'VOLUME' exists for several vendors",
                        "10:error:reference field 'OLD_FIELD' was removed",
                        "11:error:status 'maybe' is not",
                        "12:error:2 fields, but the header has 3",
                        "13:error:PX_BID: empty reference id"};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    int found = strstr(c.lines.buf, want[i]) != NULL;
    CHECK(found);
    if (!found) fprintf(stderr, "  missing: %s\n  in:\n%s", want[i], c.lines.buf);
  }
  /* Nothing changed: no mapping, no audit row. */
  char *after = dump(st);
  CHECK_STR(after, before);
  fm_free(after);

  /* A vendor column resolves the shared id. */
  CHECK(import_text(st, "v2.csv",
                    "query_vendor,query_id,ref_id\nice,VOLUME,ACVOL_1\nbloomberg,VOLUME,ACVOL_1\n",
                    &o, &c, &res, &e) == FM_OK);
  CHECK(res.new_accepted == 2);
  CHECK(count(st, "SELECT count(*) FROM mappings WHERE origin='import'") == 2);
  fm_free(before);
  fm_buf_free(&c.lines);
  fm_store_close(st);
}

static void test_import_dry_run_and_apply(void) {
  fm_store *st = fixture("d.db");
  if (!st) return;
  CHECK(decide(st, "PX_LAST", "TRDPRC_1", FM_MAP_ACCEPTED, NULL, NAN) == FM_OK);
  CHECK(decide(st, "PX_ASK", "ASK", FM_MAP_ACCEPTED, NULL, NAN) == FM_OK);
  collected c = {0};
  fm_imap_result res;
  fm_error e;
  fm_imap_opts o;
  fm_imap_opts_default(&o);
  o.dry_run = 1;
  o.actor = "importer";
  const char *sheet = "Bloomberg Field,Refinitiv Field,Note\n"
                      "PX_LAST,BID,\"better, says \"\"desk\"\"\"\n" /* supersedes TRDPRC_1 */
                      "PX_ASK,ASK,\n"                            /* unchanged */
                      "PX_BID,BID,\n";                           /* new */
  char spec[] = "query=Bloomberg Field,ref=Refinitiv Field,comment=Note";
  CHECK(fm_imap_parse_columns(&o, spec, &e) == FM_OK);
  char bad[] = "query=A,colour=B";
  fm_error_init(&e);
  CHECK(fm_imap_parse_columns(&o, bad, &e) == FM_ERR_ARG && strstr(e.msg, "colour"));
  CHECK_STR(o.col_query, "Bloomberg Field"); /* a failed spec changes nothing */
  char *before = dump(st);
  CHECK(import_text(st, "d.csv", sheet, &o, &c, &res, &e) == FM_OK);
  CHECK(c.calls == 3);
  CHECK(strstr(c.lines.buf, "2:supersedes:TRDPRC_1\n3:unchanged:\n4:new accepted:\n") != NULL);
  CHECK(res.rows == 3 && res.superseded == 1 && res.unchanged == 1 && res.new_accepted == 1);
  char *after = dump(st);
  CHECK_STR(after, before);
  fm_free(after);

  /* The same file for real: one transaction, through fm_store_decide. */
  o.dry_run = 0;
  CHECK(import_text(st, "d.csv", sheet, &o, &c, &res, &e) == FM_OK);
  CHECK(res.superseded == 1 && res.new_accepted == 1 && res.unchanged == 1);
  CHECK(count(st, "SELECT count(*) FROM mappings WHERE status='superseded'") == 1);
  CHECK(count(st, "SELECT count(*) FROM mappings WHERE status='accepted'"
                  " AND origin='import' AND decided_by='importer'") == 2);
  CHECK(count(st, "SELECT count(*) FROM mappings WHERE comment='better, says \"desk\"'") == 1);
  CHECK(count(st, "SELECT count(*) FROM audit_log WHERE actor='importer'") == 3);
  /* Again: everything unchanged, nothing written. */
  char *mid = dump(st);
  CHECK(import_text(st, "d.csv", sheet, &o, &c, &res, &e) == FM_OK);
  CHECK(res.unchanged == 3);
  after = dump(st);
  CHECK_STR(after, mid);
  fm_free(after);
  fm_free(mid);
  fm_free(before);
  fm_buf_free(&c.lines);
  fm_store_close(st);
}

static void test_import_malformed(void) {
  fm_store *st = fixture("mf.db");
  if (!st) return;
  char *before = dump(st);
  collected c = {0};
  fm_imap_result res;
  fm_error e;
  fm_imap_opts o;
  fm_imap_opts_default(&o);
  CHECK(import_text(st, "mf.csv",
                    "query_id,ref_id,comment\nPX_LAST,TRDPRC_1,fine\n"
                    "PX_BID,BID,\"never closed\nPX_ASK,ASK,x\n",
                    &o, &c, &res, &e) == FM_ERR_PARSE);
  CHECK(strstr(e.msg, "mf.csv:3:") && strstr(e.msg, "unterminated"));
  CHECK(import_text(st, "mf2.csv", "", &o, &c, &res, &e) == FM_ERR_PARSE);
  CHECK(strstr(e.msg, "empty file") != NULL);
  CHECK(import_text(st, "mf3.csv", "bbg,rdm\nPX_LAST,TRDPRC_1\n", &o, &c, &res, &e) ==
        FM_ERR_PARSE);
  CHECK(strstr(e.msg, "mf3.csv:1:") && strstr(e.msg, "query_id"));
  CHECK(import_text(st, "mf4.csv", "query_id,ref_id\nPX_LAST,\"TRD\xff\"\n", &o, &c, &res,
                    &e) == FM_ERR_PARSE);
  CHECK(strstr(e.msg, "mf4.csv:2:") && strstr(e.msg, "UTF-8"));
  fm_error_init(&e);
  CHECK(fm_store_import_mappings(st, tmp("missing.csv"), &o, NULL, NULL, &res, &e) ==
        FM_ERR_IO);
  /* A BOM and CRLF line ends are fine. */
  CHECK(import_text(st, "bom.csv", "\xef\xbb\xbfquery_id,ref_id\r\nPX_LAST,TRDPRC_1\r\n", &o,
                    &c, &res, &e) == FM_OK);
  CHECK(res.new_accepted == 1);
  fm_free(before);
  fm_buf_free(&c.lines);
  fm_store_close(st);
}

/* export -> import into a second database -> export: identical bytes. */
static void test_round_trip(void) {
  fm_store *a = fixture("rt_a.db"), *b = fixture("rt_b.db");
  if (!a || !b) {
    fm_store_close(a);
    fm_store_close(b);
    return;
  }
  fm_error e;
  fm_error_init(&e);
  fm_imap_opts o;
  fm_imap_opts_default(&o);
  collected c = {0};
  fm_imap_result res;
  /* Fill a through an import too (origin "import" on both sides). */
  CHECK(import_text(a, "rt_in.csv",
                    "query_id,ref_id,status,score,comment\n"
                    "PX_LAST,TRDPRC_1,accepted,0.1,\"a, \"\"b\"\"\nc \xc3\xa9\"\n"
                    "PX_BID,BID,proposed,0.30000000000000004,\n"
                    "PX_ASK,ASK,rejected,,no\n",
                    &o, &c, &res, &e) == FM_OK);
  mem_sink m1 = {0}, m2 = {0};
  fm_export_opts eo = {.format = FM_EXPORT_CSV};
  CHECK(export_mem(a, &eo, &m1, NULL, &e) == FM_OK);
  write_bytes(tmp("rt1.csv"), m1.b.buf, m1.b.len);
  fm_error_init(&e);
  CHECK(fm_store_import_mappings(b, tmp("rt1.csv"), &o, NULL, NULL, &res, &e) == FM_OK);
  CHECK(res.new_accepted == 1 && res.proposed == 1 && res.rejected == 1);
  CHECK(export_mem(b, &eo, &m2, NULL, &e) == FM_OK);
  CHECK(m1.b.len == m2.b.len && memcmp(m1.b.buf, m2.b.buf, m1.b.len) == 0);
  CHECK(strstr(m2.b.buf, ",0.30000000000000004,") != NULL);
  fm_buf_free(&m1.b);
  fm_buf_free(&m2.b);
  fm_buf_free(&c.lines);
  fm_store_close(a);
  fm_store_close(b);
}

/* The transaction body re-runs after SQLITE_BUSY: the outcome and the
 * reports are those of one run. */
static void test_import_busy_retry(void) {
  const char *sheet = "query_id,ref_id\nPX_LAST,TRDPRC_1\nPX_BID,BID\nPX_ASK,ASK\n";
  write_bytes(tmp("br.csv"), sheet, strlen(sheet));
  /* Statement 1..18 are the checks, the rest the decisions and audit rows. */
  const long points[] = {0, 9, 20, 30, 45};
  for (size_t k = 0; k < sizeof points / sizeof points[0]; k++) {
    fm_store *st = fixture("br.db");
    if (!st) return;
    collected c = {0};
    fm_imap_result res;
    fm_error e;
    fm_imap_opts o;
    fm_imap_opts_default(&o);
    fm_store_fault_busy_after(st, points[k]);
    fm_error_init(&e);
    CHECK(fm_store_import_mappings(st, tmp("br.csv"), &o, collect, &c, &res, &e) == FM_OK);
    CHECK(c.calls == 3 && res.new_accepted == 3);
    CHECK(count(st, "SELECT count(*) FROM mappings WHERE status='accepted'") == 3);
    CHECK(count(st, "SELECT count(*) FROM audit_log WHERE entity='mapping'") == 3);
    fm_buf_free(&c.lines);
    fm_store_close(st);
  }
}

/* Every allocation of an export and an import may fail: the call fails
 * cleanly (no leak, no crash; ASan checks) and the database is unchanged. */
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

  const char *sheet = "query_id,ref_id,comment\nPX_BID,ASK,x\nVOLUME,ACVOL_1,y\n";
  fm_imap_opts o;
  fm_imap_opts_default(&o);
  o.col_query_vendor = NULL;
  write_bytes(tmp("af.csv"), sheet, strlen(sheet));
  char *before = dump(st);
  failures = 0;
  for (n = 1; n < 500; n++) {
    fm_error_init(&e);
    fm_imap_result res;
    fm_fault_malloc_after(n);
    fm_rc rc = fm_store_import_mappings(st, tmp("af.csv"), &o, NULL, NULL, &res, &e);
    fm_fault_malloc_after(0);
    if (rc == FM_ERR_PARSE) break; /* VOLUME is ambiguous: the full validation ran */
    CHECK(rc == FM_ERR_NOMEM);
    char *now = dump(st);
    CHECK_STR(now, before);
    fm_free(now);
    failures++;
  }
  CHECK(n < 500 && failures > 0);
  fm_free(before);
  fm_buf_free(&m.b);
  fm_store_close(st);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/fm_export_XXXXXX");
  if (!mkdtemp(dir)) return 1;
  FM_RUN(test_csv_quoting_and_order);
  FM_RUN(test_json_formats);
  FM_RUN(test_filters);
  FM_RUN(test_with_candidates);
  FM_RUN(test_streaming_sink);
  FM_RUN(test_import_validation);
  FM_RUN(test_import_dry_run_and_apply);
  FM_RUN(test_import_malformed);
  FM_RUN(test_round_trip);
  FM_RUN(test_import_busy_retry);
  FM_RUN(test_alloc_faults);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd)) return 1;
  FM_TEST_EXIT();
}
