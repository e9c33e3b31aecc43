/* test_import_mappings.c: import-mappings (per-row validation with line
 * numbers, all or nothing, dry run, malformed CSV, the export -> import ->
 * export round trip, retries after SQLITE_BUSY, allocation faults).  The
 * store fixture is fm_test_export.h's, shared with test_export.c. */
#include "fm_store.h"
#include "fm_store_sql.h"
#include "fm_test.h"
#include "fm_test_util.h"
#include "fm_test_store.h"
#include "fm_test_export.h"

#include <math.h>
#include <unistd.h>

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

/* Every allocation of an import may fail: the call fails cleanly (no leak,
 * no crash; ASan checks) and the database is unchanged. */
static void test_import_alloc_faults(void) {
  fm_store *st = fixture("af.db");
  if (!st) return;
  three_mappings(st);
  fm_error e;
  int failures = 0, n;
  const char *sheet = "query_id,ref_id,comment\nPX_BID,ASK,x\nVOLUME,ACVOL_1,y\n";
  fm_imap_opts o;
  fm_imap_opts_default(&o);
  o.col_query_vendor = NULL;
  write_bytes(tmp("af.csv"), sheet, strlen(sheet));
  char *before = dump(st);
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
  fm_store_close(st);
}

int main(void) {
  if (scratch_make("fm_imap_")) return 1;
  FM_RUN(test_import_validation);
  FM_RUN(test_import_dry_run_and_apply);
  FM_RUN(test_import_malformed);
  FM_RUN(test_round_trip);
  FM_RUN(test_import_busy_retry);
  FM_RUN(test_import_alloc_faults);
  scratch_remove();
  FM_TEST_EXIT();
}
