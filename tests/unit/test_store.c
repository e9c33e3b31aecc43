/* test_store.c: the store core: migrations, the transaction helper,
 * dictionary import and re-import, the decision write path, the audit log. */
#include "fm_store.h"
#include "fm_store_sql.h"
#include "fm_test.h"
#include "fm_test_util.h"
#include "fm_test_store.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_open_and_migrate(void) {
  fm_store *st = open_db("m.db");
  CHECK(st != NULL);
  if (!st) return;
  CHECK(fm_store_schema_version(st) == FM_STORE_SCHEMA_VERSION);
  CHECK(count(st, "PRAGMA foreign_keys") == 1);
  fm_store_close(st);
  /* Reopening is a no-op. */
  st = open_db("m.db");
  CHECK(st && fm_store_schema_version(st) == FM_STORE_SCHEMA_VERSION);
  /* A database from a newer fieldmatch is refused, never downgraded. */
  fm_error e;
  fm_error_init(&e);
  char sql[64];
  snprintf(sql, sizeof sql, "PRAGMA user_version = %d", FM_STORE_SCHEMA_VERSION + 1);
  CHECK(fm_store_exec(st, sql, &e) == FM_OK);
  fm_store_close(st);
  fm_store *st2 = NULL;
  CHECK(fm_store_open(tmp("m.db"), NULL, &st2, &e) == FM_ERR_VERSION);
  CHECK(strstr(e.msg, "m.db") && strstr(e.msg, "newer"));
  CHECK(st2 == NULL);
  /* Not a database at all. */
  write_bytes(tmp("junk.db"), "this is not sqlite, just text long enough to matter....", 56);
  fm_error_init(&e);
  CHECK(fm_store_open(tmp("junk.db"), NULL, &st2, &e) != FM_OK);
  CHECK(strstr(e.msg, "junk.db") != NULL);
}

/* The owners' schema steps, applied by version and seq, create the objects
 * of a new database in the order one schema file used to (so `.schema` of a
 * new database is unchanged by the split); and fm_store_run binds and steps. */
static void test_schema_order_and_run(void) {
  fm_store *st = open_db("order.db");
  CHECK(st != NULL);
  if (!st) return;
  static const char *const want[] = {
      "dictionaries", "fields", "fields_role_id", "model_runs", "batch_runs", "batch_parts",
      "candidates", "candidates_query", "review_queue", "review_queue_open", "audit_log",
      "audit_entity", "audit_log_no_update", "audit_log_no_delete", "snapshot_runs",
      "snapshot_runs_status", "catalog", "api_tokens", "fields_id",
      /* v6 rebuilt mappings (no_equivalent): it and its indexes follow */
      "mappings", "mappings_one_accepted", "mappings_one_none", "mappings_status",
      "mappings_ref",
      /* version 7 rebuilds these two tables (new CHECKs), so they come last */
      "snapshot_jobs", "provision_requests", "provision_requests_status",
      "provision_requests_requester"};
  sqlite3_stmt *q;
  CHECK(sqlite3_prepare_v2(fm_store_db(st),
                           "SELECT name FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid",
                           -1, &q, NULL) == SQLITE_OK);
  size_t i = 0;
  while (sqlite3_step(q) == SQLITE_ROW) {
    const char *name = (const char *)sqlite3_column_text(q, 0);
    CHECK(i < sizeof want / sizeof want[0] && !strcmp(name, want[i]));
    i++;
  }
  sqlite3_finalize(q);
  CHECK(i == sizeof want / sizeof want[0]);

  fm_error e;
  fm_error_init(&e);
  CHECK(fm_store_exec(st, "CREATE TEMP TABLE t(a TEXT, b INTEGER, c REAL)", &e) == FM_OK);
  int changed = -1;
  CHECK(fm_store_run(st, "insert", &changed, &e, "INSERT INTO t VALUES (?1, ?2, ?3)", "tif",
                     "x", (int64_t)1 << 40, 0.25) == FM_OK && changed == 1);
  CHECK(fm_store_run(st, "insert", NULL, &e, "INSERT INTO t VALUES (?1, ?2, ?3)", "tif",
                     (const char *)NULL, (int64_t)-3, 1.5) == FM_OK);
  CHECK(count(st, "SELECT count(*) FROM t WHERE a = 'x' AND b = 1099511627776 AND c = 0.25") ==
        1);
  CHECK(count(st, "SELECT count(*) FROM t WHERE a IS NULL AND b = -3") == 1);
  CHECK(fm_store_run(st, "update", &changed, &e, "UPDATE t SET c = ?1 WHERE b < 0", "f", 2.0) ==
            FM_OK &&
        changed == 1);
  CHECK(fm_store_run(st, "odd", NULL, &e, "INSERT INTO t VALUES (?1, 0, 0)", "x", 1) ==
        FM_ERR_INTERNAL);
  CHECK(strstr(e.msg, "odd") != NULL);
  fm_error_init(&e);
  /* A statement that does not prepare is a database error. */
  CHECK(fm_store_run(st, "insert into nowhere", NULL, &e, "INSERT INTO t(zz) VALUES (1)", "") ==
        FM_ERR_DB);
  fm_store_close(st);
}

/* A missing file is never created by accident: without opts.create (and
 * with NULL opts, and read-only even with create) the open fails with
 * FM_ERR_NOTFOUND and the exact message, and leaves no file, -wal or -shm;
 * with create it makes the database. */
static void test_open_never_creates(void) {
  char path[256], side[300], want[400];
  snprintf(path, sizeof path, "%s", tmp("absent.db"));
  snprintf(want, sizeof want, "no database at '%s' (create one with 'fieldmatch import')", path);
  fm_store_opts ro, plain, rocreate;
  fm_store_opts_default(&plain);
  CHECK(plain.create == 0);
  ro = plain;
  ro.readonly = 1;
  rocreate = ro;
  rocreate.create = 1;
  const fm_store_opts *cases[] = {NULL, &plain, &ro, &rocreate};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fm_store *st = (fm_store *)&st; /* must be reset to NULL */
    fm_error e;
    fm_error_init(&e);
    CHECK(fm_store_open(path, cases[i], &st, &e) == FM_ERR_NOTFOUND);
    CHECK(st == NULL);
    CHECK(!strcmp(e.msg, want));
    CHECK(!exists(path));
    snprintf(side, sizeof side, "%s-wal", path);
    CHECK(!exists(side));
    snprintf(side, sizeof side, "%s-shm", path);
    CHECK(!exists(side));
  }
  /* A missing directory on the way is the same "no database". */
  fm_store *st = NULL;
  fm_error e;
  fm_error_init(&e);
  CHECK(fm_store_open(tmp("nodir/x.db"), NULL, &st, &e) == FM_ERR_NOTFOUND && !st);
  CHECK(!exists(tmp("nodir")));
  /* With create, the file is made and migrated; reopening needs no create. */
  CHECK(fm_store_open(path, create_opts(), &st, &e) == FM_OK);
  CHECK(st && fm_store_schema_version(st) == FM_STORE_SCHEMA_VERSION);
  fm_store_close(st);
  CHECK(exists(path));
  st = NULL;
  CHECK(fm_store_open(path, NULL, &st, &e) == FM_OK && st);
  fm_store_close(st);
}

/* Every earlier schema version migrates forward with its rows intact. */
static void test_migrate_from_every_version(void) {
  for (int v = 0; v < FM_STORE_SCHEMA_VERSION; v++) {
    char name[32];
    snprintf(name, sizeof name, "v%d.db", v);
    fm_store_opts o;
    fm_store_opts_default(&o);
    o.target_version = v;
    o.create = 1;
    fm_store *st = NULL;
    fm_error e;
    fm_error_init(&e);
    if (v == 0) {
      /* Version 0: an empty SQLite file made by someone else. */
      sqlite3 *db;
      CHECK(sqlite3_open(tmp(name), &db) == SQLITE_OK);
      sqlite3_exec(db, "CREATE TABLE unrelated(x); INSERT INTO unrelated VALUES (1);", 0,
                   0, 0);
      sqlite3_close(db);
    } else {
      CHECK(fm_store_open(tmp(name), &o, &st, &e) == FM_OK);
      CHECK(st && fm_store_schema_version(st) == v);
      fm_store_close(st);
    }
    CHECK(fm_store_open(tmp(name), NULL, &st, &e) == FM_OK);
    CHECK(st && fm_store_schema_version(st) == FM_STORE_SCHEMA_VERSION);
    if (v == 0) CHECK(count(st, "SELECT count(*) FROM unrelated") == 1);
    fm_store_close(st);
  }
}

/* Invalid UTF-8 never enters the store: a field set built by any importer
 * and a decision are refused, naming source, line and attribute. */
static void test_invalid_utf8_refused(void) {
  fm_store *st = open_db("u8.db");
  if (!st) return;
  fm_error e;
  fm_error_init(&e);
  fm_fieldset q;
  fm_fieldset_init(&q);
  add_field(&q, "bloomberg", "PX_LAST", "Last Price", "last trade price");
  add_field(&q, "bloomberg", "PX_BAD", "Bad", "caf\xe9 au lait"); /* latin-1 */
  fm_dict_result res;
  CHECK(fm_store_import_fields(st, "bbg.csv", FM_ROLE_QUERY, &q, "tester", &res, &e) ==
        FM_ERR_PARSE);
  if (!strstr(e.msg, ":2: field 'description': invalid UTF-8 at byte 3 (0xE9) (id 'PX_BAD')"))
    fprintf(stderr, "got: %s\n", e.msg);
  CHECK(strstr(e.msg, ":2: field 'description': invalid UTF-8 at byte 3 (0xE9) (id 'PX_BAD')"));
  CHECK(count(st, "SELECT count(*) FROM fields") == 0);
  CHECK(count(st, "SELECT count(*) FROM dictionaries") == 0);
  fm_fieldset_free(&q);
  fm_fieldset_init(&q);
  add_field(&q, "bloomberg", "PX_LAST", "Last Price", "last trade price");
  CHECK(fm_store_import_fields(st, "bbg.csv", FM_ROLE_QUERY, &q, "tester", &res, &e) == FM_OK);
  int64_t px = fm_store_field_id(st, "bloomberg", "PX_LAST", FM_ROLE_QUERY);
  fm_decision d = {.query_field = px, .ref_field = px, .status = FM_MAP_REJECTED,
                   .actor = "ana", .comment = "bad \xc0\xaf overlong", .origin = "analyst",
                   .score = NAN, .expect_accepted = -1};
  fm_error_init(&e);
  CHECK(fm_store_decide(st, &d, NULL, &e) == FM_ERR_ARG);
  CHECK(strstr(e.msg, "comment: invalid UTF-8 at byte 4") != NULL);
  CHECK(count(st, "SELECT count(*) FROM mappings") == 0);
  fm_fieldset_free(&q);
  fm_store_close(st);
}

static void test_import_and_reimport(void) {
  fm_store *st = open_db("i.db");
  if (!st) return;
  fm_error e;
  fm_error_init(&e);
  fm_fieldset q, r;
  fm_fieldset_init(&q);
  fm_fieldset_init(&r);
  add_field(&q, "bloomberg", "PX_LAST", "Last Price", "last trade price");
  add_field(&q, "bloomberg", "CUR_MKT_CAP", "Market Cap", "current market capitalization");
  add_field(&q, "bloomberg", "PX_LAST", "dup", "a repeated id: first wins");
  add_field(&r, "refinitiv", "TRDPRC_1", "LAST", "last trade price");
  add_field(&r, "refinitiv", "MKT_CAP", "MKT CAP", "market capitalization");
  add_field(&r, "refinitiv", "BID", "BID", "bid price");
  fm_dict_result res;
  CHECK(fm_store_import_fields(st, "bbg.csv", FM_ROLE_QUERY, &q, "tester", &res, &e) == FM_OK);
  CHECK(res.version == 1 && res.added == 2 && !res.unchanged);
  CHECK(fm_store_import_fields(st, "rdm", FM_ROLE_REFERENCE, &r, "tester", &res, &e) == FM_OK);
  CHECK(res.added == 3);
  /* Same content again: nothing written. */
  CHECK(fm_store_import_fields(st, "rdm", FM_ROLE_REFERENCE, &r, "tester", &res, &e) == FM_OK);
  CHECK(res.unchanged == 1 && res.version == 1);
  CHECK(count(st, "SELECT count(*) FROM dictionaries") == 2);

  int64_t px = fm_store_field_id(st, "bloomberg", "PX_LAST", FM_ROLE_QUERY);
  int64_t cap = fm_store_field_id(st, NULL, "CUR_MKT_CAP", FM_ROLE_QUERY);
  int64_t trd = fm_store_field_id(st, "refinitiv", "TRDPRC_1", FM_ROLE_REFERENCE);
  int64_t mcap = fm_store_field_id(st, "refinitiv", "MKT_CAP", 0);
  int64_t bid = fm_store_field_id(st, "refinitiv", "BID", FM_ROLE_REFERENCE);
  CHECK(px > 0 && cap > 0 && trd > 0 && mcap > 0 && bid > 0);
  CHECK(fm_store_field_id(st, "refinitiv", "PX_LAST", 0) == -1);

  fm_decision d = {.query_field = px, .ref_field = trd, .status = FM_MAP_ACCEPTED,
                   .actor = "ana", .comment = "checked", .origin = "analyst",
                   .score = NAN, .expect_accepted = -1};
  CHECK(fm_store_decide(st, &d, NULL, &e) == FM_OK);
  fm_decision d2 = {.query_field = cap, .ref_field = mcap, .status = FM_MAP_ACCEPTED,
                    .actor = "ana", .origin = "analyst", .score = 0.9,
                    .expect_accepted = -1};
  CHECK(fm_store_decide(st, &d2, NULL, &e) == FM_OK);

  /* v2 of the reference dictionary: MKT_CAP changed, BID gone, ASK new. */
  fm_fieldset r2;
  fm_fieldset_init(&r2);
  add_field(&r2, "refinitiv", "TRDPRC_1", "LAST", "last trade price");
  add_field(&r2, "refinitiv", "MKT_CAP", "MKT CAP", "market capitalisation, in millions");
  add_field(&r2, "refinitiv", "ASK", "ASK", "ask price");
  CHECK(fm_store_import_fields(st, "rdm", FM_ROLE_REFERENCE, &r2, "tester", &res, &e) == FM_OK);
  CHECK(res.version == 2 && res.added == 1 && res.changed == 1 && res.removed == 1 &&
        res.kept == 1 && res.flagged == 1);
  /* Decisions survive; the changed one is flagged, none deleted. */
  CHECK(count(st, "SELECT count(*) FROM mappings WHERE status='accepted'") == 2);
  CHECK(count(st, "SELECT count(*) FROM mappings WHERE flag='field_changed'") == 1);
  CHECK(count(st, "SELECT count(*) FROM fields WHERE id='BID' AND status='removed'") == 1);
  /* Map to BID, then drop BID in v3: that mapping gets field_removed. */
  fm_decision d3 = {.query_field = px, .ref_field = bid, .status = FM_MAP_PROPOSED,
                    .actor = "batch:1", .origin = "model", .score = 0.5,
                    .expect_accepted = -1};
  CHECK(fm_store_decide(st, &d3, NULL, &e) == FM_OK);
  fm_fieldset_free(&r2);
  fm_fieldset_init(&r2);
  add_field(&r2, "refinitiv", "TRDPRC_1", "LAST", "last trade price");
  add_field(&r2, "refinitiv", "BID", "BID", "bid price");
  CHECK(fm_store_import_fields(st, "rdm", FM_ROLE_REFERENCE, &r2, "tester", &res, &e) == FM_OK);
  CHECK(res.changed == 1 && res.removed == 2); /* BID back; MKT_CAP, ASK gone */
  fm_fieldset_free(&r2);
  fm_fieldset_init(&r2);
  add_field(&r2, "refinitiv", "TRDPRC_1", "LAST", "last trade price");
  CHECK(fm_store_import_fields(st, "rdm", FM_ROLE_REFERENCE, &r2, "tester", &res, &e) == FM_OK);
  CHECK(res.removed == 1 && res.flagged == 1);
  /* MKT_CAP went in v3, BID in v4: both their mappings are flagged. */
  CHECK(count(st, "SELECT count(*) FROM mappings WHERE flag='field_removed'") == 2);
  CHECK(count(st, "SELECT count(*) FROM mappings") == 3);

  /* A field set with two vendors is refused before anything is written. */
  add_field(&r2, "bloomberg", "X", "", "");
  fm_error_init(&e);
  CHECK(fm_store_import_fields(st, "rdm", FM_ROLE_REFERENCE, &r2, "t", &res, &e) == FM_ERR_ARG);
  CHECK(strstr(e.msg, "vendor") != NULL);
  /* A query field may not come back as a reference field. */
  fm_fieldset bad;
  fm_fieldset_init(&bad);
  add_field(&bad, "bloomberg", "PX_LAST", "", "");
  fm_error_init(&e);
  CHECK(fm_store_import_fields(st, "other", FM_ROLE_REFERENCE, &bad, "t", &res, &e) ==
        FM_ERR_CONFLICT);
  CHECK(count(st, "SELECT count(*) FROM dictionaries WHERE source='other'") == 0);
  fm_fieldset_free(&bad);
  fm_fieldset_free(&q);
  fm_fieldset_free(&r);
  fm_fieldset_free(&r2);
  fm_store_close(st);
}

static void test_decisions(void) {
  fm_store *st = open_db("d.db");
  if (!st) return;
  fm_error e;
  fm_error_init(&e);
  fm_fieldset q, r;
  fm_fieldset_init(&q);
  fm_fieldset_init(&r);
  add_field(&q, "bloomberg", "PX_LAST", "Last Price", "");
  add_field(&q, "bloomberg", "PX_CLOSE", "Close", "");
  add_field(&r, "refinitiv", "TRDPRC_1", "", "");
  add_field(&r, "refinitiv", "HST_CLOSE", "", "");
  CHECK(fm_store_import_fields(st, "q", FM_ROLE_QUERY, &q, "t", NULL, &e) == FM_OK);
  CHECK(fm_store_import_fields(st, "r", FM_ROLE_REFERENCE, &r, "t", NULL, &e) == FM_OK);
  int64_t px = fm_store_field_id(st, NULL, "PX_LAST", FM_ROLE_QUERY);
  int64_t cl = fm_store_field_id(st, NULL, "PX_CLOSE", FM_ROLE_QUERY);
  int64_t trd = fm_store_field_id(st, NULL, "TRDPRC_1", FM_ROLE_REFERENCE);
  int64_t hst = fm_store_field_id(st, NULL, "HST_CLOSE", FM_ROLE_REFERENCE);

  sqlite3_exec(fm_store_db(st),
               "INSERT INTO review_queue(query_field_id, reason, uncertainty)"
               " SELECT field_id, 'low_score', 0.5 FROM fields WHERE id='PX_LAST'",
               0, 0, 0);
  fm_decision d = {.query_field = px, .ref_field = hst, .status = FM_MAP_PROPOSED,
                   .actor = "batch:1", .origin = "model", .score = 0.4,
                   .expect_accepted = -1};
  int64_t m1 = 0, m2 = 0, m3 = 0;
  CHECK(fm_store_decide(st, &d, &m1, &e) == FM_OK);
  d.status = FM_MAP_ACCEPTED;
  d.ref_field = trd;
  d.actor = "ana";
  d.expect_accepted = 0;
  CHECK(fm_store_decide(st, &d, &m2, &e) == FM_OK);
  CHECK(m2 != m1);
  /* The proposal was superseded; the queue entry resolved. */
  CHECK(count(st, "SELECT count(*) FROM mappings WHERE status='superseded'") == 1);
  CHECK(count(st, "SELECT count(*) FROM review_queue WHERE resolved_at IS NULL") == 0);
  /* A stale view (expects no accepted mapping) conflicts and changes nothing. */
  long long audits = count(st, "SELECT count(*) FROM audit_log");
  d.ref_field = hst;
  fm_error_init(&e);
  CHECK(fm_store_decide(st, &d, NULL, &e) == FM_ERR_CONFLICT);
  CHECK(strstr(e.msg, "PX_LAST") != NULL);
  CHECK(count(st, "SELECT count(*) FROM audit_log") == audits);
  /* Accepting another supersedes the first, one accepted at a time. */
  d.expect_accepted = m2;
  CHECK(fm_store_decide(st, &d, &m3, &e) == FM_OK);
  CHECK(m3 == m1); /* same pair, same row and key */
  CHECK(count(st, "SELECT count(*) FROM mappings WHERE status='accepted'") == 1);
  /* Many-to-one is fine. */
  fm_decision d2 = {.query_field = cl, .ref_field = hst, .status = FM_MAP_ACCEPTED,
                    .actor = "bo", .origin = "analyst", .score = NAN,
                    .expect_accepted = -1};
  CHECK(fm_store_decide(st, &d2, NULL, &e) == FM_OK);
  CHECK(count(st, "SELECT count(*) FROM mappings WHERE status='accepted'") == 2);
  /* A proposal cannot override an analyst's decision. */
  d2.status = FM_MAP_PROPOSED;
  fm_error_init(&e);
  CHECK(fm_store_decide(st, &d2, NULL, &e) == FM_ERR_CONFLICT);
  /* Rejecting the accepted mapping puts the field back in the queue. */
  d2.status = FM_MAP_REJECTED;
  d2.comment = "wrong period";
  CHECK(fm_store_decide(st, &d2, NULL, &e) == FM_OK);
  CHECK(count(st, "SELECT count(*) FROM review_queue WHERE resolved_at IS NULL"
                  " AND reason='accepted_rejected'") == 1);
  /* Reference/query roles are checked. */
  fm_decision bad = {.query_field = trd, .ref_field = px, .status = FM_MAP_ACCEPTED,
                     .actor = "x", .score = NAN, .expect_accepted = -1};
  fm_error_init(&e);
  CHECK(fm_store_decide(st, &bad, NULL, &e) == FM_ERR_ARG);
  bad.query_field = 99999;
  CHECK(fm_store_decide(st, &bad, NULL, &e) == FM_ERR_NOTFOUND);

  /* The audit log: one row per change, before and after, append-only. */
  CHECK(count(st, "SELECT count(*) FROM audit_log WHERE entity='mapping'") == 7);
  CHECK(count(st, "SELECT count(*) FROM audit_log WHERE action='supersede'") == 2);
  CHECK(count(st, "SELECT count(*) FROM audit_log WHERE action='accept' AND before IS NULL"
                  " AND json_extract(after,'$.status')='accepted'") == 2);
  CHECK(sqlite3_exec(fm_store_db(st), "DELETE FROM audit_log", 0, 0, 0) != SQLITE_OK);
  CHECK(sqlite3_exec(fm_store_db(st), "UPDATE audit_log SET actor='x'", 0, 0, 0) != SQLITE_OK);
  /* Stable keys. */
  char k1[20], k2[20];
  fm_store_mapping_key("bloomberg", "PX_LAST", "refinitiv", "TRDPRC_1", k1);
  fm_store_mapping_key("bloomberg", "PX_LAST", "refinitiv", "TRDPRC_1", k2);
  CHECK_STR(k1, k2);
  CHECK(strlen(k1) == 18 && !strncmp(k1, "m_", 2));
  fm_fieldset_free(&q);
  fm_fieldset_free(&r);
  fm_store_close(st);
}

/* BUSY inside a transaction is retried; past the bound it fails cleanly and
 * leaves nothing behind. */
static int busy_body_runs;
static fm_rc busy_body(fm_store *st, void *ctx, fm_error *err) {
  (void)ctx;
  busy_body_runs++;
  return fm_store_audit(st, "t", "test", "x", "k", NULL, NULL, err);
}

static void test_busy_retry(void) {
  fm_store *st = open_db("b.db");
  if (!st) return;
  fm_error e;
  fm_error_init(&e);
  busy_body_runs = 0;
  fm_store_fault_busy_after(st, 0);
  CHECK(fm_store_tx(st, busy_body, NULL, &e) == FM_OK);
  CHECK(busy_body_runs == 2);
  CHECK(count(st, "SELECT count(*) FROM audit_log") == 1);
  fm_store_close(st);

  /* A real second writer holding the lock: bounded retries, clear error. */
  fm_store_opts o;
  fm_store_opts_default(&o);
  o.busy_timeout_ms = 20;
  o.max_retries = 2;
  CHECK(fm_store_open(tmp("b.db"), &o, &st, &e) == FM_OK);
  sqlite3 *other;
  CHECK(sqlite3_open(tmp("b.db"), &other) == SQLITE_OK);
  CHECK(sqlite3_exec(other, "BEGIN IMMEDIATE", 0, 0, 0) == SQLITE_OK);
  busy_body_runs = 0;
  fm_error_init(&e);
  CHECK(fm_store_tx(st, busy_body, NULL, &e) == FM_ERR_BUSY);
  CHECK(strstr(e.msg, "b.db") && strstr(e.msg, "locked"));
  sqlite3_exec(other, "ROLLBACK", 0, 0, 0);
  sqlite3_close(other);
  CHECK(count(st, "SELECT count(*) FROM audit_log") == 1);
  fm_store_close(st);
}

/* Allocation failures anywhere in open/import/decide: an error, no crash,
 * no leak. */
static void test_alloc_faults(void) {
  fm_fieldset q;
  fm_fieldset_init(&q);
  add_field(&q, "bloomberg", "PX_LAST", "Last Price", "");
  for (long n = 0; n < 40; n++) {
    unlink(tmp("f.db"));
    fm_store *st = NULL;
    fm_error e;
    fm_error_init(&e);
    fm_fault_malloc_after(n);
    fm_rc rc = fm_store_open(tmp("f.db"), create_opts(), &st, &e);
    if (rc == FM_OK) rc = fm_store_import_fields(st, "q", FM_ROLE_QUERY, &q, "t", NULL, &e);
    fm_fault_malloc_after(-1);
    CHECK(rc == FM_OK || e.msg[0]);
    fm_store_close(st);
  }
  fm_fieldset_free(&q);
}

/* v5 -> v6: the mappings table is rebuilt (ref_field_id may be NULL, the
 * status no_equivalent) with its rows, ids and indexes intact; then the
 * terminal decision goes through fm_store_decide: audited, the field leaves
 * the queue, a later accept supersedes it, rejecting it queues the field. */
static void test_migrate_v5_v6_no_equivalent(void) {
  fm_store_opts o;
  fm_store_opts_default(&o);
  o.target_version = 5;
  o.create = 1;
  fm_store *st = NULL;
  fm_error e;
  fm_error_init(&e);
  CHECK(fm_store_open(tmp("v56.db"), &o, &st, &e) == FM_OK);
  if (!st) return;
  CHECK(fm_store_schema_version(st) == 5);
  fm_fieldset q, r;
  fm_fieldset_init(&q);
  fm_fieldset_init(&r);
  add_field(&q, "bloomberg", "PX_LAST", "Last Price", "");
  add_field(&q, "bloomberg", "EQY_FREE_FLOAT", "Free float", "");
  add_field(&r, "refinitiv", "TRDPRC_1", "", "");
  CHECK(fm_store_import_fields(st, "q", FM_ROLE_QUERY, &q, "t", NULL, &e) == FM_OK);
  CHECK(fm_store_import_fields(st, "r", FM_ROLE_REFERENCE, &r, "t", NULL, &e) == FM_OK);
  int64_t px = fm_store_field_id(st, NULL, "PX_LAST", FM_ROLE_QUERY);
  int64_t ff = fm_store_field_id(st, NULL, "EQY_FREE_FLOAT", FM_ROLE_QUERY);
  int64_t trd = fm_store_field_id(st, NULL, "TRDPRC_1", FM_ROLE_REFERENCE);
  fm_decision d = {.query_field = px, .ref_field = trd, .status = FM_MAP_ACCEPTED,
                   .actor = "ana", .origin = "analyst", .score = NAN, .expect_accepted = -1};
  int64_t m1 = 0;
  CHECK(fm_store_decide(st, &d, &m1, &e) == FM_OK);
  /* A v5 store refuses the new status. */
  CHECK(sqlite3_exec(fm_store_db(st),
                     "INSERT INTO mappings(mapping_key, query_field_id, ref_field_id, status)"
                     " VALUES ('x', 1, 1, 'no_equivalent')",
                     0, 0, 0) != SQLITE_OK);
  fm_store_close(st);

  st = NULL;
  CHECK(fm_store_open(tmp("v56.db"), NULL, &st, &e) == FM_OK);
  if (!st) return;
  CHECK(fm_store_schema_version(st) == FM_STORE_SCHEMA_VERSION);
  CHECK(count(st, "SELECT count(*) FROM mappings WHERE status='accepted'") == 1);
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT mapping_id FROM mappings WHERE ref_field_id = %lld",
           (long long)trd);
  CHECK(count(st, sql) == m1);
  CHECK(count(st, "SELECT count(*) FROM sqlite_master WHERE tbl_name='mappings'"
                  " AND type='index' AND name LIKE 'mappings_%'") == 4);
  CHECK(count(st, "SELECT count(*) FROM sqlite_master WHERE name='mappings_v6'") == 0);
  CHECK(count(st, "SELECT count(*) FROM pragma_foreign_key_check") == 0);

  sqlite3_exec(fm_store_db(st),
               "INSERT INTO review_queue(query_field_id, reason, uncertainty)"
               " SELECT field_id, 'low_score', 0.5 FROM fields WHERE id='EQY_FREE_FLOAT'",
               0, 0, 0);
  long long audits = count(st, "SELECT count(*) FROM audit_log");
  fm_decision n = {.query_field = ff, .status = FM_MAP_NO_EQUIVALENT, .actor = "ana",
                   .comment = "none in RDM", .origin = "analyst", .score = NAN,
                   .expect_accepted = 0};
  int64_t mn = 0;
  CHECK(fm_store_decide(st, &n, &mn, &e) == FM_OK);
  CHECK(mn > 0);
  CHECK(count(st, "SELECT count(*) FROM audit_log") == audits + 1);
  CHECK(count(st, "SELECT count(*) FROM audit_log WHERE action='no_equivalent'") == 1);
  CHECK(count(st, "SELECT count(*) FROM review_queue WHERE resolved_at IS NULL") == 0);
  CHECK(count(st, "SELECT count(*) FROM mappings WHERE status='no_equivalent'"
                  " AND ref_field_id IS NULL") == 1);
  /* With a reference it is refused; a stale expectation conflicts. */
  n.ref_field = trd;
  CHECK(fm_store_decide(st, &n, NULL, &e) == FM_ERR_ARG);
  n.ref_field = 0;
  n.expect_accepted = 0;
  CHECK(fm_store_decide(st, &n, NULL, &e) == FM_ERR_CONFLICT);
  /* Again (expecting itself): the same row, one more audit row. */
  n.expect_accepted = mn;
  int64_t mn2 = 0;
  CHECK(fm_store_decide(st, &n, &mn2, &e) == FM_OK && mn2 == mn);
  /* A later accept supersedes it. */
  fm_decision a = {.query_field = ff, .ref_field = trd, .status = FM_MAP_ACCEPTED,
                   .actor = "bob", .origin = "analyst", .score = NAN, .expect_accepted = mn};
  CHECK(fm_store_decide(st, &a, NULL, &e) == FM_OK);
  snprintf(sql, sizeof sql, "SELECT status = 'superseded' FROM mappings WHERE mapping_id = %lld",
           (long long)mn);
  CHECK(count(st, sql) == 1);
  /* no_equivalent again supersedes the accept; rejecting it requeues. */
  n.expect_accepted = -1;
  CHECK(fm_store_decide(st, &n, NULL, &e) == FM_OK);
  CHECK(count(st, "SELECT count(*) FROM mappings WHERE query_field_id IN"
                  " (SELECT field_id FROM fields WHERE id='EQY_FREE_FLOAT')"
                  " AND status IN ('accepted','no_equivalent')") == 1);
  fm_decision rj = {.query_field = ff, .status = FM_MAP_REJECTED, .actor = "bob",
                    .origin = "analyst", .score = NAN, .expect_accepted = -1};
  CHECK(fm_store_decide(st, &rj, NULL, &e) == FM_OK);
  CHECK(count(st, "SELECT count(*) FROM review_queue WHERE resolved_at IS NULL") == 1);
  fm_status_count sc[8];
  size_t nsc = 0;
  CHECK(fm_review_count_by_status(st, sc, 8, &nsc, &e) == FM_OK);
  fm_store_close(st);
  fm_fieldset_free(&q);
  fm_fieldset_free(&r);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/fm_store_XXXXXX");
  if (!mkdtemp(dir)) return 1;
  FM_RUN(test_open_and_migrate);
  FM_RUN(test_open_never_creates);
  FM_RUN(test_migrate_from_every_version);
  FM_RUN(test_invalid_utf8_refused);
  FM_RUN(test_schema_order_and_run);
  FM_RUN(test_import_and_reimport);
  FM_RUN(test_decisions);
  FM_RUN(test_migrate_v5_v6_no_equivalent);
  FM_RUN(test_busy_retry);
  FM_RUN(test_alloc_faults);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd)) return 1;
  FM_TEST_EXIT();
}
