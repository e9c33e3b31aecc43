/* test_review.c: the analyst review workflow (review.c): resolving ids,
 * queue order, one field's view, accept / reject / pick / supersede through
 * fm_review_apply, conflicts that change nothing, history, comments, the
 * export of decisions read back by fm_pairs_load, decisions surviving a
 * re-import of a changed dictionary, and allocation / busy faults. */
#include "fm_store.h"
#include "fm_store_sql.h"
#include "fm_test.h"
#include "fm_test_util.h"
#include "fm_test_store.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

static void refs_v1(fm_fieldset *r) {
  fm_fieldset_init(r);
  add_field(r, "refinitiv", "TRDPRC_1", "LAST", "last trade price");
  add_field(r, "refinitiv", "BID", "BID", "bid price");
  add_field(r, "refinitiv", "ASK", "ASK", "ask price");
  add_field(r, "refinitiv", "MKT_CAP", "MKT CAP", "market capitalization");
  add_field(r, "refinitiv", "VOLUME", "ACVOL_1", "accumulated volume");
  add_field(r, "other", "BID", "BID", "another vendor's bid"); /* an ambiguous id */
}

/* A store with 4 query fields, 6 reference fields, a batch run with ranked
 * candidates for three of them and an open queue of three (as the batch
 * command will leave it). */
static fm_store *fixture(const char *name) {
  fm_store *st = NULL;
  fm_error e;
  fm_error_init(&e);
  unlink(tmp(name));
  if (fm_store_open(tmp(name), create_opts(), &st, &e)) {
    fprintf(stderr, "open: %s\n", e.msg);
    return NULL;
  }
  fm_fieldset q, r;
  fm_fieldset_init(&q);
  add_field(&q, "bloomberg", "PX_LAST", "Last Price", "last trade price");
  add_field(&q, "bloomberg", "PX_BID", "Bid Price", "bid price");
  add_field(&q, "bloomberg", "PX_ASK", "Ask Price", "ask price");
  add_field(&q, "bloomberg", "CUR_MKT_CAP", "Market Cap", "current market capitalization");
  refs_v1(&r);
  CHECK(fm_store_import_set(st, "t:query", FM_ROLE_QUERY, &q, "tester", NULL, &e) == FM_OK);
  CHECK(fm_store_import_set(st, "t:reference", FM_ROLE_REFERENCE, &r, "tester", NULL, &e) ==
        FM_OK);
  fm_fieldset_free(&q);
  fm_fieldset_free(&r);
  const char *sql =
      "INSERT INTO model_runs(model_run_id, model_path, model_checksum) VALUES (1, 'm', 'c');"
      "INSERT INTO batch_runs(batch_run_id, model_run_id) VALUES (1, 1), (2, 1);"
      /* Run 1 (older): PX_LAST -> BID first, to check the latest run wins. */
      "INSERT INTO candidates SELECT 1, q.field_id, 1, r.field_id, 0.9, 1 FROM fields q, fields r"
      " WHERE q.id='PX_LAST' AND r.id='BID' AND r.vendor='refinitiv';"
      /* Run 2: PX_LAST: TRDPRC_1, BID; PX_BID: BID, ASK; PX_ASK: ASK. */
      "INSERT INTO candidates SELECT 2, q.field_id, 1, r.field_id, 0.8, 1 FROM fields q, fields r"
      " WHERE q.id='PX_LAST' AND r.id='TRDPRC_1';"
      "INSERT INTO candidates SELECT 2, q.field_id, 2, r.field_id, 0.3, 1 FROM fields q, fields r"
      " WHERE q.id='PX_LAST' AND r.id='BID' AND r.vendor='refinitiv';"
      "INSERT INTO candidates SELECT 2, q.field_id, 1, r.field_id, 0.5, 1 FROM fields q, fields r"
      " WHERE q.id='PX_BID' AND r.id='BID' AND r.vendor='refinitiv';"
      "INSERT INTO candidates SELECT 2, q.field_id, 2, r.field_id, 0.45, 1 FROM fields q, fields r"
      " WHERE q.id='PX_BID' AND r.id='ASK';"
      "INSERT INTO candidates SELECT 2, q.field_id, 1, r.field_id, 0.2, 1 FROM fields q, fields r"
      " WHERE q.id='PX_ASK' AND r.id='ASK';"
      "INSERT INTO review_queue(query_field_id, batch_run_id, reason, top_score, margin,"
      " uncertainty, queued_at) SELECT field_id, 2, 'close_call', 0.5, 0.05, 0.95,"
      " '2024-01-01T00:00:00.000Z' FROM fields WHERE id='PX_BID';"
      "INSERT INTO review_queue(query_field_id, batch_run_id, reason, top_score, margin,"
      " uncertainty, queued_at) SELECT field_id, 2, 'low_score', 0.2, NULL, 0.80,"
      " '2024-01-01T00:00:00.000Z' FROM fields WHERE id='PX_ASK';"
      "INSERT INTO review_queue(query_field_id, reason, uncertainty, queued_at)"
      " SELECT field_id, 'no_candidates', 0.95, '2023-12-31T00:00:00.000Z' FROM fields"
      " WHERE id='CUR_MKT_CAP';";
  CHECK(fm_store_exec(st, sql, &e) == FM_OK);
  return st;
}

static int64_t qid(fm_store *st, const char *id) {
  int64_t f = 0;
  fm_review_resolve(st, "bloomberg", id, FM_ROLE_QUERY, &f, NULL);
  return f;
}

static int64_t rid(fm_store *st, const char *id) {
  int64_t f = 0;
  fm_review_resolve(st, "refinitiv", id, FM_ROLE_REFERENCE, &f, NULL);
  return f;
}

static fm_rc act(fm_store *st, fm_review_action a, const char *q, const char *r,
                 const char *by, const char *comment, fm_error *e) {
  fm_review_req req = {.action = a, .query_field = qid(st, q), .ref_field = rid(st, r),
                       .by = by, .comment = comment, .expect_ref = -1};
  fm_error_init(e);
  return fm_review_apply(st, &req, NULL, e);
}

static void test_resolve(void) {
  fm_store *st = fixture("res.db");
  if (!st) return;
  fm_error e;
  fm_error_init(&e);
  int64_t f = -1;
  CHECK(fm_review_resolve(st, NULL, "PX_LAST", FM_ROLE_QUERY, &f, &e) == FM_OK && f > 0);
  CHECK(fm_review_resolve(st, NULL, "NOPE", FM_ROLE_QUERY, &f, &e) == FM_ERR_NOTFOUND);
  CHECK(strstr(e.msg, "unknown query field 'NOPE'") != NULL);
  fm_error_init(&e);
  /* A reference id given as the query. */
  CHECK(fm_review_resolve(st, NULL, "TRDPRC_1", FM_ROLE_QUERY, &f, &e) == FM_ERR_ARG);
  CHECK(strstr(e.msg, "TRDPRC_1") && strstr(e.msg, "is a reference field"));
  fm_error_init(&e);
  /* An id two vendors use: the error lists them; a vendor settles it. */
  CHECK(fm_review_resolve(st, NULL, "BID", FM_ROLE_REFERENCE, &f, &e) == FM_ERR_ARG);
  CHECK(strstr(e.msg, "ambiguous") && strstr(e.msg, "other, refinitiv"));
  CHECK(fm_review_resolve(st, "other", "BID", FM_ROLE_REFERENCE, &f, &e) == FM_OK && f > 0);
  fm_error_init(&e);
  CHECK(fm_review_resolve(st, NULL, "", FM_ROLE_QUERY, &f, &e) == FM_ERR_ARG);
  fm_store_close(st);
}

static void test_queue(void) {
  fm_store *st = fixture("q.db");
  if (!st) return;
  fm_error e;
  fm_error_init(&e);
  fm_queue_page p;
  CHECK(fm_review_queue(st, 0, 0, &p, &e) == FM_OK);
  CHECK(p.total == 3 && p.n == 3);
  if (p.n == 3) {
    /* Most uncertain first; ties: oldest first. */
    CHECK_STR(p.v[0].query.id, "CUR_MKT_CAP");
    CHECK(!p.v[0].has_top && isnan(p.v[0].top_score) && p.v[0].batch_run == 0);
    CHECK_STR(p.v[1].query.id, "PX_BID");
    CHECK(p.v[1].has_top);
    CHECK_STR(p.v[1].top.id, "BID");
    CHECK_STR(p.v[1].top.vendor, "refinitiv");
    CHECK_NEAR(p.v[1].top_cand_score, 0.5, 1e-9);
    CHECK_NEAR(p.v[1].margin, 0.05, 1e-9);
    CHECK_STR(p.v[1].reason, "close_call");
    CHECK_STR(p.v[2].query.id, "PX_ASK");
    CHECK(isnan(p.v[2].margin));
  }
  json_t *j = fm_review_queue_json(&p);
  CHECK(j && json_integer_value(json_object_get(j, "total")) == 3);
  CHECK(json_array_size(json_object_get(j, "items")) == 3);
  json_decref(j);
  fm_queue_page_free(&p);
  /* Paging. */
  CHECK(fm_review_queue(st, 1, 1, &p, &e) == FM_OK);
  CHECK(p.total == 3 && p.n == 1 && p.n && !strcmp(p.v[0].query.id, "PX_BID"));
  fm_queue_page_free(&p);
  /* Accepting resolves the entry. */
  CHECK(act(st, FM_REVIEW_ACCEPT, "PX_BID", "BID", "ana", NULL, &e) == FM_OK);
  CHECK(fm_review_queue(st, 0, 0, &p, &e) == FM_OK);
  CHECK(p.total == 2 && p.n == 2);
  for (size_t i = 0; i < p.n; i++) CHECK(strcmp(p.v[i].query.id, "PX_BID") != 0);
  fm_queue_page_free(&p);
  fm_store_close(st);
}

static void test_show_and_decide(void) {
  fm_store *st = fixture("s.db");
  if (!st) return;
  fm_error e;
  fm_error_init(&e);
  fm_field_view v;
  CHECK(fm_review_show(st, qid(st, "PX_LAST"), &v, &e) == FM_OK);
  CHECK_STR(v.field.name, "Last Price");
  CHECK(v.batch_run == 2 && v.ncands == 2 && !v.accepted && v.ndecisions == 0 && !v.queued);
  if (v.ncands == 2) {
    CHECK(v.cands[0].rank == 1);
    CHECK_STR(v.cands[0].ref.id, "TRDPRC_1");
    CHECK_STR(v.cands[0].ref.description, "last trade price");
    CHECK(v.cands[0].status == 0);
  }
  fm_field_view_free(&v);

  /* Accept a candidate. */
  CHECK(act(st, FM_REVIEW_ACCEPT, "PX_LAST", "TRDPRC_1", "ana", "looks right", &e) == FM_OK);
  /* Accept of something not offered is refused: pick is for that. */
  CHECK(act(st, FM_REVIEW_ACCEPT, "PX_LAST", "MKT_CAP", "ana", NULL, &e) == FM_ERR_ARG);
  CHECK(strstr(e.msg, "review pick") && strstr(e.msg, "MKT_CAP"));
  /* Reject the other candidate. */
  CHECK(act(st, FM_REVIEW_REJECT, "PX_LAST", "BID", "bob", "bid is not last", &e) == FM_OK);
  CHECK(fm_review_show(st, qid(st, "PX_LAST"), &v, &e) == FM_OK);
  CHECK(v.accepted && !strcmp(v.accepted->ref.id, "TRDPRC_1"));
  CHECK(v.accepted && !strcmp(v.accepted->comment, "looks right"));
  CHECK(v.accepted && !strcmp(v.accepted->by, "ana"));
  CHECK(v.accepted && fabs(v.accepted->score - 0.8) < 1e-9); /* the candidate's score */
  CHECK(v.ncands == 2 && v.cands[0].status == FM_MAP_ACCEPTED &&
        v.cands[1].status == FM_MAP_REJECTED);
  CHECK(v.ndecisions == 2);
  json_t *j = fm_review_view_json(&v);
  CHECK(j && json_array_size(json_object_get(j, "candidates")) == 2);
  CHECK(j && !strcmp(json_string_value(json_object_get(json_object_get(j, "accepted"), "status")),
                     "accepted"));
  json_decref(j);
  fm_field_view_free(&v);

  /* Pick a reference that was never a candidate: supersedes TRDPRC_1. */
  CHECK(act(st, FM_REVIEW_PICK, "PX_LAST", "VOLUME", "carl", NULL, &e) == FM_OK);
  CHECK(count(st, "SELECT count(*) FROM mappings WHERE status='accepted'") == 1);
  CHECK(count(st, "SELECT count(*) FROM mappings WHERE status='superseded'") == 1);
  fm_arena a;
  fm_arena_init(&a);
  fm_mapping_row m;
  int found = 0;
  CHECK(fm_review_accepted(st, qid(st, "PX_LAST"), &a, &m, &found, &e) == FM_OK && found);
  CHECK(found && !strcmp(m.ref.id, "VOLUME") && !strcmp(m.origin, "analyst"));
  CHECK(found && isnan(m.score));
  CHECK(fm_review_accepted(st, qid(st, "PX_ASK"), &a, &m, &found, &e) == FM_OK && !found);
  fm_arena_free(&a);

  /* Many-to-one: a second query field may map to the same reference. */
  CHECK(act(st, FM_REVIEW_PICK, "CUR_MKT_CAP", "VOLUME", "ana", NULL, &e) == FM_OK);
  CHECK(count(st, "SELECT count(*) FROM mappings WHERE status='accepted'") == 2);

  /* Comment on an existing mapping; on a pair with none it is not found. */
  CHECK(act(st, FM_REVIEW_COMMENT, "PX_LAST", "VOLUME", "dan", "odd but confirmed", &e) ==
        FM_OK);
  CHECK(act(st, FM_REVIEW_COMMENT, "PX_LAST", "ASK", "dan", "x", &e) == FM_ERR_NOTFOUND);
  CHECK(act(st, FM_REVIEW_COMMENT, "PX_LAST", "VOLUME", "dan", NULL, &e) == FM_ERR_ARG);
  CHECK(act(st, FM_REVIEW_PICK, "PX_LAST", "VOLUME", "", NULL, &e) == FM_ERR_ARG);
  CHECK(count(st, "SELECT count(*) FROM mappings WHERE comment='odd but confirmed'") == 1);

  /* History: every step, in order, each with its actor. */
  fm_audit_list h;
  CHECK(fm_review_history(st, qid(st, "PX_LAST"), &h, &e) == FM_OK);
  const char *want[][2] = {{"accept", "ana"}, {"reject", "bob"}, {"supersede", "carl"},
                           {"pick", "carl"}, {"comment", "dan"}};
  CHECK(h.n == 5);
  for (size_t i = 0; i < h.n && i < 5; i++) {
    CHECK_STR(h.v[i].action, want[i][0]);
    CHECK_STR(h.v[i].actor, want[i][1]);
    if (i) CHECK(h.v[i].audit_id > h.v[i - 1].audit_id);
  }
  j = fm_review_history_json(&h);
  CHECK(j && json_array_size(j) == 5);
  /* before/after are embedded as JSON values, not strings. */
  CHECK(j && json_is_object(json_object_get(json_array_get(j, 0), "after")));
  json_decref(j);
  fm_audit_list_free(&h);

  /* Rejecting the accepted mapping leaves none and puts the field back in
   * the queue. */
  CHECK(act(st, FM_REVIEW_REJECT, "PX_LAST", "VOLUME", "ana", NULL, &e) == FM_OK);
  CHECK(count(st, "SELECT count(*) FROM review_queue rq JOIN fields f ON"
                  " f.field_id = rq.query_field_id WHERE f.id = 'PX_LAST'"
                  " AND rq.resolved_at IS NULL") == 1);
  fm_store_close(st);
}

/* A conflict (or any failure) changes nothing: not the mapping, not the
 * audit log, not the queue. */
static void test_conflicts(void) {
  fm_store *st = fixture("c.db");
  if (!st) return;
  fm_error e;
  CHECK(act(st, FM_REVIEW_ACCEPT, "PX_BID", "BID", "ana", NULL, &e) == FM_OK);
  long long audits = count(st, "SELECT count(*) FROM audit_log");
  long long maps = count(st, "SELECT count(*) FROM mappings");
  /* Bob read the field when nothing was accepted, then decides. */
  fm_review_req r = {.action = FM_REVIEW_ACCEPT, .query_field = qid(st, "PX_BID"),
                     .ref_field = rid(st, "ASK"), .by = "bob", .expect_ref = 0};
  fm_error_init(&e);
  CHECK(fm_review_apply(st, &r, NULL, &e) == FM_ERR_CONFLICT);
  CHECK(strstr(e.msg, "PX_BID") && strstr(e.msg, "expected none") &&
        strstr(e.msg, "now refinitiv BID"));
  CHECK(count(st, "SELECT count(*) FROM audit_log") == audits);
  CHECK(count(st, "SELECT count(*) FROM mappings") == maps);
  /* With the right expectation it goes through. */
  r.expect_ref = rid(st, "BID");
  fm_error_init(&e);
  CHECK(fm_review_apply(st, &r, NULL, &e) == FM_OK);
  /* The batch path cannot override an analyst's decision. */
  fm_decision d = {.query_field = qid(st, "PX_BID"), .ref_field = rid(st, "ASK"),
                   .status = FM_MAP_PROPOSED, .actor = "batch:3", .origin = "model",
                   .score = 0.4, .expect_accepted = -1};
  fm_error_init(&e);
  CHECK(fm_store_decide(st, &d, NULL, &e) == FM_ERR_CONFLICT);
  /* Query and reference swapped. */
  fm_review_req sw = {.action = FM_REVIEW_PICK, .query_field = rid(st, "ASK"),
                      .ref_field = qid(st, "PX_ASK"), .by = "x", .expect_ref = -1};
  fm_error_init(&e);
  CHECK(fm_review_apply(st, &sw, NULL, &e) == FM_ERR_ARG);
  CHECK(strstr(e.msg, "not a query field") != NULL);
  fm_error_init(&e);
  fm_field_view v; /* the caller frees a view also when show fails */
  CHECK(fm_review_show(st, rid(st, "ASK"), &v, &e) == FM_ERR_ARG);
  fm_field_view_free(&v);
  fm_store_close(st);
}

/* Exported accepted decisions are train_pairs as fm_pairs_load reads them;
 * rejected ones go to their own file. */
static void test_export_pairs(void) {
  fm_store *st = fixture("x.db");
  if (!st) return;
  fm_error e;
  CHECK(act(st, FM_REVIEW_ACCEPT, "PX_LAST", "TRDPRC_1", "ana", NULL, &e) == FM_OK);
  CHECK(act(st, FM_REVIEW_ACCEPT, "PX_BID", "BID", "a\tb\nc", NULL, &e) == FM_OK);
  CHECK(act(st, FM_REVIEW_PICK, "CUR_MKT_CAP", "MKT_CAP", "ana", NULL, &e) == FM_OK);
  CHECK(act(st, FM_REVIEW_REJECT, "PX_ASK", "ASK", "bob", NULL, &e) == FM_OK);
  /* A superseded decision is not exported. */
  CHECK(act(st, FM_REVIEW_PICK, "PX_LAST", "VOLUME", "ana", NULL, &e) == FM_OK);
  CHECK(act(st, FM_REVIEW_PICK, "PX_LAST", "TRDPRC_1", "ana", NULL, &e) == FM_OK);

  FILE *fp = fopen(tmp("acc.tsv"), "w");
  size_t n = 0;
  CHECK(fp && fm_review_export_pairs(st, fp, FM_EXPORT_ACCEPTED, &n, &e) == FM_OK);
  if (fp) fclose(fp);
  CHECK(n == 3);
  fm_pairs p;
  fm_pairs_init(&p);
  CHECK(fm_pairs_load(tmp("acc.tsv"), &p, &e) == FM_OK);
  CHECK(p.n == 3);
  if (p.n == 3) { /* ordered by query id */
    CHECK_STR(p.v[0].query, "CUR_MKT_CAP");
    CHECK_STR(p.v[0].ref, "MKT_CAP");
    CHECK_STR(p.v[1].query, "PX_BID");
    CHECK_STR(p.v[2].query, "PX_LAST");
    CHECK_STR(p.v[2].ref, "TRDPRC_1");
  }
  fm_pairs_free(&p);
  size_t len;
  char *text = (char *)read_bytes(tmp("acc.tsv"), &len);
  CHECK(text && !strncmp(text, "query_id\treference_id\tstatus\tby\tat\n", 35));
  CHECK(text && strstr(text, "PX_BID\tBID\taccepted\ta b c\t")); /* by cleaned */
  CHECK(text && !strstr(text, "rejected"));
  fm_free(text);

  fp = fopen(tmp("rej.tsv"), "w");
  CHECK(fp && fm_review_export_pairs(st, fp, FM_EXPORT_REJECTED, &n, &e) == FM_OK);
  if (fp) fclose(fp);
  CHECK(n == 1);
  fp = fopen(tmp("all.tsv"), "w");
  CHECK(fp && fm_review_export_pairs(st, fp, FM_EXPORT_ACCEPTED | FM_EXPORT_REJECTED, &n,
                                     &e) == FM_OK);
  if (fp) fclose(fp);
  CHECK(n == 4);
  CHECK(fm_review_export_pairs(st, stdout, 0, &n, &e) == FM_ERR_ARG);
  fm_store_close(st);
}

/* A changed dictionary imported again: decisions stay, the changed one is
 * flagged, the view still shows the removed reference. */
static void test_reimport(void) {
  fm_store *st = fixture("r.db");
  if (!st) return;
  fm_error e;
  CHECK(act(st, FM_REVIEW_ACCEPT, "PX_LAST", "TRDPRC_1", "ana", NULL, &e) == FM_OK);
  CHECK(act(st, FM_REVIEW_PICK, "CUR_MKT_CAP", "MKT_CAP", "ana", NULL, &e) == FM_OK);
  CHECK(act(st, FM_REVIEW_REJECT, "PX_BID", "ASK", "bob", NULL, &e) == FM_OK);
  fm_fieldset r;
  fm_fieldset_init(&r);
  add_field(&r, "refinitiv", "TRDPRC_1", "LAST", "last trade price, changed wording");
  add_field(&r, "refinitiv", "BID", "BID", "bid price");
  add_field(&r, "refinitiv", "ASK", "ASK", "ask price");
  add_field(&r, "refinitiv", "VOLUME", "ACVOL_1", "accumulated volume");
  /* MKT_CAP is gone. */
  fm_dict_result res;
  fm_error_init(&e);
  CHECK(fm_store_import_set(st, "t:reference", FM_ROLE_REFERENCE, &r, "tester", &res, &e) ==
        FM_OK);
  fm_fieldset_free(&r);
  CHECK(res.changed == 1 && res.removed == 1 && res.flagged == 2);
  fm_field_view v;
  CHECK(fm_review_show(st, qid(st, "PX_LAST"), &v, &e) == FM_OK);
  CHECK(v.accepted && v.accepted->flag && !strcmp(v.accepted->flag, "field_changed"));
  CHECK(v.accepted && !strcmp(v.accepted->ref.description, "last trade price, changed wording"));
  fm_field_view_free(&v);
  CHECK(fm_review_show(st, qid(st, "CUR_MKT_CAP"), &v, &e) == FM_OK);
  CHECK(v.accepted && !strcmp(v.accepted->ref.status, "removed") && v.accepted->flag &&
        !strcmp(v.accepted->flag, "field_removed"));
  fm_field_view_free(&v);
  CHECK(count(st, "SELECT count(*) FROM mappings WHERE status='rejected'") == 1);
  /* Re-accepting clears the flag. */
  CHECK(act(st, FM_REVIEW_ACCEPT, "PX_LAST", "TRDPRC_1", "ana", "re-checked", &e) == FM_OK);
  CHECK(count(st, "SELECT count(*) FROM mappings m JOIN fields r ON"
                  " r.field_id = m.ref_field_id WHERE r.id='TRDPRC_1' AND flag IS NULL") == 1);
  fm_store_close(st);
}

/* Allocation failures and a locked database: every call fails cleanly (no
 * leak under ASan, a message) and a failed decision writes nothing. */
/* The review app's reads and writes: the queue's filters, the
 * no_equivalent action through fm_review_apply, progress per dictionary,
 * decisions per day, and a bulk of decisions that is all or nothing. */
static void test_app_support(void) {
  fm_store *st = fixture("app.db");
  if (!st) return;
  fm_error e;
  fm_error_init(&e);
  fm_queue_page p;
  fm_queue_filter f = {.text = "bid", .min_unc = NAN, .max_unc = NAN};
  CHECK(fm_review_queue_find(st, &f, 0, 0, &p, &e) == FM_OK);
  CHECK(p.total == 1 && p.n == 1 && !strcmp(p.v[0].query.id, "PX_BID"));
  fm_queue_page_free(&p);
  f = (fm_queue_filter){.reason = "low_score", .min_unc = 0.5, .max_unc = 0.9};
  CHECK(fm_review_queue_find(st, &f, 0, 0, &p, &e) == FM_OK);
  CHECK(p.total == 1 && p.n == 1 && !strcmp(p.v[0].query.id, "PX_ASK"));
  fm_queue_page_free(&p);
  f = (fm_queue_filter){.vendor = "nobody", .min_unc = NAN, .max_unc = NAN};
  CHECK(fm_review_queue_find(st, &f, 0, 0, &p, &e) == FM_OK && p.total == 0 && p.n == 0);
  fm_queue_page_free(&p);

  /* no_equivalent: out of the queue; a comment on it (ref 0). */
  fm_review_req none = {.action = FM_REVIEW_NONE, .query_field = qid(st, "CUR_MKT_CAP"),
                        .by = "ana", .expect_ref = 0};
  int64_t mid = 0;
  CHECK(fm_review_apply(st, &none, &mid, &e) == FM_OK && mid > 0);
  CHECK(fm_review_apply(st, &none, NULL, &e) == FM_ERR_CONFLICT); /* expected none */
  none.expect_none = 1;
  CHECK(fm_review_apply(st, &none, NULL, &e) == FM_OK);
  fm_review_req cm = {.action = FM_REVIEW_COMMENT, .query_field = qid(st, "CUR_MKT_CAP"),
                      .by = "ana", .comment = "no RDM field", .expect_ref = -1};
  CHECK(fm_review_apply(st, &cm, NULL, &e) == FM_OK);
  fm_field_view v;
  CHECK(fm_review_show(st, qid(st, "CUR_MKT_CAP"), &v, &e) == FM_OK);
  CHECK(v.no_equivalent && !v.accepted && !v.queued && v.no_equivalent->ref.field_id == 0);
  CHECK(v.no_equivalent && !strcmp(v.no_equivalent->comment, "no RDM field"));
  fm_field_view_free(&v);

  /* A bulk with a bad second item writes nothing. */
  long long audits = count(st, "SELECT count(*) FROM audit_log");
  fm_review_req bulk[2] = {
      {.action = FM_REVIEW_ACCEPT, .query_field = qid(st, "PX_BID"), .ref_field = rid(st, "BID"),
       .by = "ana", .expect_ref = -1},
      {.action = FM_REVIEW_ACCEPT, .query_field = qid(st, "PX_ASK"),
       .ref_field = rid(st, "MKT_CAP"), .by = "ana", .expect_ref = -1}};
  size_t failed = 99;
  int64_t ids[2] = {0, 0};
  CHECK(fm_review_apply_bulk(st, bulk, 2, ids, &failed, &e) == FM_ERR_ARG && failed == 1);
  CHECK(count(st, "SELECT count(*) FROM audit_log") == audits);
  bulk[1].ref_field = rid(st, "ASK");
  CHECK(fm_review_apply_bulk(st, bulk, 2, ids, &failed, &e) == FM_OK && ids[0] && ids[1]);
  CHECK(count(st, "SELECT count(*) FROM audit_log") == audits + 2);

  fm_review_dict_stats *ds = NULL;
  size_t n = 0;
  CHECK(fm_review_stats(st, &ds, &n, &e) == FM_OK && n == 1);
  if (n == 1) {
    CHECK(ds[0].total == 4 && ds[0].accepted == 2 && ds[0].no_equivalent == 1);
    CHECK(ds[0].queued + ds[0].proposed + ds[0].rejected + ds[0].unmapped == 1);
  }
  fm_free(ds);
  fm_review_day *days = NULL;
  CHECK(fm_review_daily(st, 7, &days, &n, &e) == FM_OK && n == 1);
  if (n == 1) CHECK(days[0].accepted == 2 && days[0].no_equivalent == 2 && days[0].rejected == 0);
  fm_free(days);
  CHECK(fm_review_daily(st, 0, &days, &n, &e) == FM_ERR_ARG);
  fm_store_close(st);
}

static void test_faults(void) {
  fm_store *st = fixture("f.db");
  if (!st) return;
  fm_error e;
  int64_t px = qid(st, "PX_LAST");
  CHECK(act(st, FM_REVIEW_ACCEPT, "PX_LAST", "TRDPRC_1", "ana", "so it has history", &e) ==
        FM_OK);
  for (long n = 1; n < 40; n++) {
    fm_queue_page p;
    fm_field_view v;
    fm_audit_list h;
    fm_error_init(&e);
    fm_fault_malloc_after(n);
    fm_rc a = fm_review_queue(st, 0, 0, &p, &e);
    fm_fault_malloc_after(-1);
    CHECK(a == FM_OK || a == FM_ERR_NOMEM);
    fm_queue_page_free(&p);
    fm_fault_malloc_after(n);
    a = fm_review_show(st, px, &v, &e);
    fm_fault_malloc_after(-1);
    CHECK(a == FM_OK || a == FM_ERR_NOMEM);
    fm_field_view_free(&v);
    fm_fault_malloc_after(n);
    a = fm_review_history(st, px, &h, &e);
    fm_fault_malloc_after(-1);
    CHECK(a == FM_OK || a == FM_ERR_NOMEM);
    fm_audit_list_free(&h);
  }
  /* Injected SQLITE_BUSY on every retry: the decision gives up with
   * FM_ERR_BUSY and nothing is written. */
  long long audits = count(st, "SELECT count(*) FROM audit_log");
  for (long n = 0; n < 8; n++) {
    fm_store_fault_busy_after(st, n);
    fm_rc rc = act(st, FM_REVIEW_ACCEPT, "PX_ASK", "ASK", "ana", NULL, &e);
    fm_store_fault_busy_after(st, -1);
    /* One injected BUSY is retried, so the decision lands on a retry. */
    CHECK(rc == FM_OK);
    if (rc == FM_OK) break;
  }
  CHECK(count(st, "SELECT count(*) FROM mappings WHERE status='accepted'") == 2);
  CHECK(count(st, "SELECT count(*) FROM audit_log") == audits + 1);
  fm_store_close(st);

  /* A second connection holds the write lock: FM_ERR_BUSY naming the
   * database, nothing changed. */
  fm_store_opts o;
  fm_store_opts_default(&o);
  o.busy_timeout_ms = 20;
  o.max_retries = 1;
  fm_store *a = NULL, *b = NULL;
  fm_error_init(&e);
  CHECK(fm_store_open(tmp("f.db"), &o, &a, &e) == FM_OK);
  CHECK(fm_store_open(tmp("f.db"), &o, &b, &e) == FM_OK);
  if (a && b) {
    CHECK(fm_store_exec(b, "BEGIN IMMEDIATE", &e) == FM_OK);
    long long before = count(a, "SELECT count(*) FROM audit_log");
    CHECK(act(a, FM_REVIEW_PICK, "PX_BID", "MKT_CAP", "ana", NULL, &e) == FM_ERR_BUSY);
    CHECK(strstr(e.msg, "f.db") && strstr(e.msg, "locked"));
    CHECK(fm_store_exec(b, "ROLLBACK", &e) == FM_OK);
    CHECK(count(a, "SELECT count(*) FROM audit_log") == before);
  }
  fm_store_close(a);
  fm_store_close(b);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/fm_review_XXXXXX");
  if (!mkdtemp(dir)) return 1;
  FM_RUN(test_resolve);
  FM_RUN(test_queue);
  FM_RUN(test_show_and_decide);
  FM_RUN(test_conflicts);
  FM_RUN(test_export_pairs);
  FM_RUN(test_reimport);
  FM_RUN(test_app_support);
  FM_RUN(test_faults);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd)) return 1;
  FM_TEST_EXIT();
}
