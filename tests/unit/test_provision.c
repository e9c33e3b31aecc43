/* test_provision.c: provisioning requests in the library: validation of
 * dataset / filters / format (a whitelist; values never become SQL), the
 * file parsing back to exactly the source rows in both formats, snapshot
 * ranges concatenated from partitions, per-requester lists, expiry,
 * recovery of running requests, the attempts bound, BUSY and allocation
 * faults, and the background runner (materializes on wake, catches up
 * snapshot hours, stops promptly). */
#include "fm_jobs.h"
#include "fm_store.h"
#include "fm_store_sql.h"
#include "fm_test.h"
#include "fm_test_util.h"
#include "fm_test_store.h"

#include <jansson.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

static size_t count_lines(const char *s) {
  size_t n = 0;
  for (; s && *s; s++) n += *s == '\n';
  return n;
}

/* Two dictionaries of four fields and four decisions (3 accepted). */
static fm_store *populated(const char *name) {
  fm_store *st = open_db(name);
  if (!st) return NULL;
  /* These tests read the gzip'd CSV / JSON Lines files back: keep the jobs
   * at those formats (Parquet, the default since schema 7, has its own
   * tests: test_snapshot_parquet and tests/cli/test_lake.sh). */
  CHECK(fm_store_exec(st,
                      "UPDATE snapshot_jobs SET format = CASE name WHEN 'audit_log'"
                      " THEN 'jsonl.gz' ELSE 'csv.gz' END",
                      NULL) == FM_OK);
  /* The fixed hours of these tests (2024) lie inside the retention window. */
  CHECK(fm_store_exec(st, "UPDATE snapshot_jobs SET retention_hours = 1000000", NULL) == FM_OK);
  fm_fieldset q, r;
  fm_fieldset_init(&q);
  fm_fieldset_init(&r);
  const char *qs[] = {"PX_BID", "PX_ASK", "PX_LAST", "VOLUME"};
  const char *rs[] = {"BID", "ASK", "TRDPRC_1", "ACVOL_1"};
  for (int i = 0; i < 4; i++) {
    fm_field f = {.vendor = "bloomberg", .id = qs[i], .name = qs[i], .description = "d, \"q\"",
                  .source = "t", .line = (uint32_t)i + 1};
    fm_fieldset_add(&q, &f);
    fm_field g = {.vendor = "refinitiv", .id = rs[i], .name = rs[i], .description = "",
                  .source = "t", .line = (uint32_t)i + 1};
    fm_fieldset_add(&r, &g);
  }
  fm_error e;
  fm_error_init(&e);
  fm_dict_result res;
  CHECK(fm_store_import_fields(st, "bbg", FM_ROLE_QUERY, &q, "test", &res, &e) == FM_OK);
  CHECK(fm_store_import_fields(st, "rdm", FM_ROLE_REFERENCE, &r, "test", &res, &e) == FM_OK);
  for (int i = 0; i < 4; i++) {
    fm_decision d = {.query_field = fm_store_field_id(st, "bloomberg", qs[i], FM_ROLE_QUERY),
                     .ref_field = fm_store_field_id(st, "refinitiv", rs[i], FM_ROLE_REFERENCE),
                     .status = i == 3 ? FM_MAP_PROPOSED : FM_MAP_ACCEPTED,
                     .actor = i == 1 ? "bob" : "ana", .origin = "analyst", .score = NAN,
                     .expect_accepted = -1};
    CHECK(fm_store_decide(st, &d, NULL, &e) == FM_OK);
  }
  fm_fieldset_free(&q);
  fm_fieldset_free(&r);
  return st;
}

/* Create + materialize; returns the rc of materialize, id filled. */
static fm_rc make(fm_store *st, const char *root, const char *who, const char *ds,
                  const char *filters, const char *fmt, int64_t ttl, char id[33],
                  fm_error *e) {
  fm_rc rc = fm_prov_create(st, who, ds, filters, fmt, ttl, id, e);
  if (rc) return rc;
  return fm_prov_materialize(st, root, id, 0, e);
}

static void test_validation(void) {
  fm_store *st = populated("v.sqlite");
  if (!st) return;
  fm_error e;
  char id[33];
  struct {
    const char *ds, *filters, *fmt, *want;
  } bad[] = {
      {"nope", NULL, NULL, "unknown dataset"},
      {"mappings", NULL, "orc", "unknown format"},
      {"mappings", "[1]", NULL, "must be a JSON object"},
      {"mappings", "{\"x\":1", NULL, "not JSON"},
      {"mappings", "{\"mapping_id; DROP TABLE mappings\":1}", NULL, "unknown filter"},
      {"mappings", "{\"status\":\"maybe\"}", NULL, "not a valid value"},
      {"mappings", "{\"status\":true}", NULL, "string"},
      {"mappings", "{\"status\":[\"accepted\"]}", NULL, "string"},
      {"mappings", "{\"changed_since\":\"yesterday\"}", NULL, "changed_since"},
      {"candidates", "{\"changed_since\":\"2024-01-01\"}", NULL, "no changed_since"},
      {"fields", "{\"role\":\"both\"}", NULL, "not a valid value"},
      {"snapshot", "{\"job\":\"mappings\"}", NULL, "job, from and to"},
      {"snapshot", "{\"job\":\"nojob\",\"from\":\"2024-01-01T00\",\"to\":\"2024-01-01T01\"}",
       NULL, "no snapshot job"},
      {"snapshot", "{\"job\":\"mappings\",\"from\":\"2024-01-02T00\",\"to\":\"2024-01-01T01\"}",
       NULL, "after"},
      {"snapshot", "{\"job\":\"mappings\",\"from\":\"x\",\"to\":\"2024-01-01T01\"}", NULL,
       "filter 'from'"},
      {"snapshot",
       "{\"job\":\"audit_log\",\"from\":\"2024-01-01T00\",\"to\":\"2024-01-01T01\"}",
       "csv.gz", "jsonl.gz, not csv.gz"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    fm_error_init(&e);
    fm_rc rc = fm_prov_create(st, "rita", bad[i].ds, bad[i].filters, bad[i].fmt, 0, id, &e);
    CHECK(rc == FM_ERR_ARG);
    if (!strstr(e.msg, bad[i].want)) fprintf(stderr, "case %zu: '%s'\n", i, e.msg);
    CHECK(strstr(e.msg, bad[i].want) != NULL);
    CHECK(id[0] == '\0');
  }
  CHECK(fm_prov_create(st, "", "mappings", NULL, NULL, 0, id, &e) == FM_ERR_ARG);
  CHECK(count(st, "SELECT count(*) FROM provision_requests") == 0);
  /* Canonical filters: sorted keys, normalized time. */
  fm_error_init(&e);
  CHECK(fm_prov_create(st, "rita", "mappings",
                       "{\"status\":\"accepted\",\"changed_since\":\"2024-01-01\"}", NULL, 0,
                       id, &e) == FM_OK);
  CHECK(strlen(id) == 32);
  fm_prov_request r;
  CHECK(fm_prov_get(st, id, &r, &e) == FM_OK);
  CHECK_STR(r.filters,
            "{\"changed_since\":\"2024-01-01T00:00:00.000Z\",\"status\":\"accepted\"}");
  CHECK(r.status == FM_PROV_PENDING && r.rows == -1 && !r.path);
  CHECK_STR(r.format, "csv.gz");
  fm_prov_request_free(&r);
  CHECK(count(st, "SELECT count(*) FROM audit_log WHERE action = 'provision_request'") == 1);
  CHECK(fm_prov_get(st, "0123456789abcdef0123456789abcdef", &r, &e) == FM_ERR_NOTFOUND);
  CHECK(fm_prov_get(st, "../../etc/passwd", &r, &e) == FM_ERR_NOTFOUND);
  fm_store_close(st);
}

static void test_materialize_rows(void) {
  fm_store *st = populated("m.sqlite");
  if (!st) return;
  const char *root = tmp("root_m");
  fm_error e;
  fm_error_init(&e);
  char id[33];
  /* JSON Lines: each line is exactly one accepted mapping row. */
  CHECK(make(st, root, "rita", "mappings", "{\"status\":\"accepted\"}", "jsonl.gz", 0, id,
             &e) == FM_OK);
  fm_prov_request r;
  CHECK(fm_prov_get(st, id, &r, &e) == FM_OK);
  CHECK(r.status == FM_PROV_READY && r.rows == 3 && r.bytes > 0 && strlen(r.sha256) == 64);
  CHECK(r.attempts == 1 && r.started_at[0] && r.finished_at[0] && r.expires_at[0]);
  CHECK(strcmp(r.expires_at, r.finished_at) > 0);
  char *path = fm_prov_file_path(root, &r);
  CHECK(path && strstr(path, ".provision/") && strncmp(path, root, strlen(root) + 1) != 0 && exists(path));
  char *text = path ? gunzip(path) : NULL;
  CHECK(text && count_lines(text) == 3);
  sqlite3_stmt *s;
  sqlite3_prepare_v2(fm_store_db(st),
                     "SELECT mapping_id, mapping_key, status, decided_by FROM mappings"
                     " WHERE status = 'accepted' ORDER BY mapping_id",
                     -1, &s, NULL);
  char *line = text;
  while (line && sqlite3_step(s) == SQLITE_ROW) {
    char *nl = strchr(line, '\n');
    if (!nl) break;
    *nl = '\0';
    json_t *j = json_loads(line, 0, NULL);
    CHECK(j && json_integer_value(json_object_get(j, "mapping_id")) == sqlite3_column_int64(s, 0));
    CHECK_STR(json_string_value(json_object_get(j, "mapping_key")),
              (const char *)sqlite3_column_text(s, 1));
    CHECK_STR(json_string_value(json_object_get(j, "status")), "accepted");
    CHECK(json_object_size(j) == 13); /* every column of mappings */
    json_decref(j);
    line = nl + 1;
  }
  sqlite3_finalize(s);
  free(text);
  fm_free(path);
  fm_prov_request_free(&r);
  /* The request is done: it cannot be claimed again. */
  CHECK(fm_prov_materialize(st, root, id, 0, &e) == FM_ERR_CONFLICT);
  /* CSV with two filters: a header and the matching rows. */
  CHECK(make(st, root, "rita", "mappings", "{\"status\":\"accepted\",\"decided_by\":\"bob\"}",
             NULL, 0, id, &e) == FM_OK);
  CHECK(fm_prov_get(st, id, &r, &e) == FM_OK && r.rows == 1);
  path = fm_prov_file_path(root, &r);
  text = path ? gunzip(path) : NULL;
  CHECK(text && !strncmp(text, "mapping_id,mapping_key,", 23) && count_lines(text) == 2);
  CHECK(text && strstr(text, ",bob,") != NULL);
  free(text);
  fm_free(path);
  fm_prov_request_free(&r);
  /* A value that would be an injection if it were SQL matches nothing. */
  CHECK(make(st, root, "rita", "mappings", "{\"decided_by\":\"x' OR '1'='1\"}", NULL, 0, id,
             &e) == FM_OK);
  CHECK(fm_prov_get(st, id, &r, &e) == FM_OK && r.rows == 0);
  fm_prov_request_free(&r);
  CHECK(count(st, "SELECT count(*) FROM mappings") == 4);
  /* Integer filters bind against integer columns; fields by role. */
  CHECK(make(st, root, "rita", "fields", "{\"role\":\"reference\",\"dict_id\":2}", NULL, 0, id,
             &e) == FM_OK);
  CHECK(fm_prov_get(st, id, &r, &e) == FM_OK && r.rows == 4);
  fm_prov_request_free(&r);
  CHECK(make(st, root, "rita", "candidates", NULL, "jsonl.gz", 0, id, &e) == FM_OK);
  CHECK(fm_prov_get(st, id, &r, &e) == FM_OK && r.rows == 0 && r.status == FM_PROV_READY);
  fm_prov_request_free(&r);
  /* Lists: per requester, newest first; NULL lists everyone's. */
  CHECK(fm_prov_create(st, "sam", "fields", NULL, NULL, 0, id, &e) == FM_OK);
  fm_prov_request *v;
  size_t n;
  CHECK(fm_prov_list(st, "sam", 0, &v, &n, &e) == FM_OK && n == 1 && !strcmp(v[0].id, id));
  json_t *j = n ? fm_prov_request_json(&v[0]) : NULL;
  CHECK(j && json_is_null(json_object_get(j, "rows")) &&
        !strcmp(json_string_value(json_object_get(j, "status")), "pending"));
  json_decref(j);
  fm_prov_list_free(v, n);
  CHECK(fm_prov_list(st, "rita", 0, &v, &n, &e) == FM_OK && n == 5);
  fm_prov_list_free(v, n);
  CHECK(fm_prov_list(st, NULL, 2, &v, &n, &e) == FM_OK && n == 2);
  fm_prov_list_free(v, n);
  /* run_next takes the pending one; then there is none. */
  int did = 0;
  CHECK(fm_prov_run_next(st, root, 0, &did, &e) == FM_OK && did == 1);
  CHECK(fm_prov_run_next(st, root, 0, &did, &e) == FM_OK && did == 0);
  fm_store_close(st);
}

static void test_snapshot_range(void) {
  fm_store *st = populated("s.sqlite");
  if (!st) return;
  const char *root = tmp("root_s");
  fm_error e;
  fm_error_init(&e);
  int64_t h;
  CHECK(fm_snapshot_parse_hour("2024-05-01T10", &h, &e) == FM_OK);
  fm_snapshot_opts so;
  fm_snapshot_opts_default(&so);
  so.retention = 0;
  CHECK(fm_snapshot_backfill(st, root, h, h + 2, &so, NULL, &e) == FM_OK);
  char id[33];
  /* CSV: one header, the rows of hours 11 and 12. */
  CHECK(make(st, root, "rita", "snapshot",
             "{\"job\":\"mappings\",\"from\":\"2024-05-01T11\",\"to\":\"2024-05-01T12:00:00Z\"}",
             NULL, 0, id, &e) == FM_OK);
  fm_prov_request r;
  CHECK(fm_prov_get(st, id, &r, &e) == FM_OK && r.rows == 8);
  char *path = fm_prov_file_path(root, &r);
  char *text = path ? gunzip(path) : NULL;
  CHECK(text && count_lines(text) == 9);
  CHECK(text && strstr(text + 1, "mapping_id,mapping_key") == NULL);
  free(text);
  fm_free(path);
  fm_prov_request_free(&r);
  /* JSON Lines (audit_log): gzip members concatenated. */
  CHECK(make(st, root, "rita", "snapshot",
             "{\"job\":\"audit_log\",\"from\":\"2024-05-01T10\",\"to\":\"2024-05-01T12\"}",
             NULL, 0, id, &e) == FM_OK);
  CHECK(fm_prov_get(st, id, &r, &e) == FM_OK);
  CHECK_STR(r.format, "jsonl.gz");
  long long audit = count(st, "SELECT count(*) FROM audit_log WHERE action != 'provision_request'");
  CHECK(r.rows >= 3 * audit);
  path = fm_prov_file_path(root, &r);
  text = path ? gunzip(path) : NULL;
  CHECK(text && (long long)count_lines(text) == r.rows);
  free(text);
  fm_free(path);
  fm_prov_request_free(&r);
  /* No partition in range: failed, with the reason; no file. */
  fm_error_init(&e);
  CHECK(make(st, root, "rita", "snapshot",
             "{\"job\":\"mappings\",\"from\":\"2023-01-01T00\",\"to\":\"2023-01-01T05\"}", NULL,
             0, id, &e) == FM_ERR_NOTFOUND);
  CHECK(fm_prov_get(st, id, &r, &e) == FM_OK && r.status == FM_PROV_FAILED && r.error &&
        strstr(r.error, "no succeeded partition"));
  fm_prov_request_free(&r);
  /* A damaged partition is refused (checksum), never served. */
  char part[512];
  snprintf(part, sizeof part, "%s/mappings/dt=2024-05-01/hr=11/part-00000.csv.gz", root);
  FILE *fp = fopen(part, "ab");
  if (fp) {
    fputc('x', fp);
    fclose(fp);
  }
  fm_error_init(&e);
  CHECK(make(st, root, "rita", "snapshot",
             "{\"job\":\"mappings\",\"from\":\"2024-05-01T11\",\"to\":\"2024-05-01T11\"}", NULL,
             0, id, &e) == FM_ERR_CORRUPT);
  CHECK(strstr(e.msg, "SHA-256") != NULL);
  fm_store_close(st);
}

/* Parquet: a table dataset is one Parquet file; a snapshot range of a
 * Parquet job is served for one partition (the file as it is, checked) and
 * refused for more (a Parquet file has one footer). */
static void test_parquet(void) {
  fm_store *st = populated("pq.sqlite");
  if (!st) return;
  const char *root = tmp("root_pq");
  fm_error e;
  fm_error_init(&e);
  char id[33];
  CHECK(make(st, root, "rita", "mappings", NULL, "parquet", 0, id, &e) == FM_OK);
  fm_prov_request r;
  CHECK(fm_prov_get(st, id, &r, &e) == FM_OK && r.rows == 4 && !strcmp(r.format, "parquet"));
  char *path = fm_prov_file_path(root, &r);
  size_t n = 0;
  unsigned char *raw = path ? read_bytes(path, &n) : NULL;
  CHECK(raw && n == (size_t)r.bytes && !memcmp(raw, "PAR1", 4) && !memcmp(raw + n - 4, "PAR1", 4));
  fm_free(raw);
  fm_free(path);
  fm_prov_request_free(&r);
  CHECK(fm_store_exec(st, "UPDATE snapshot_jobs SET format = 'parquet' WHERE name = 'fields'",
                      &e) == FM_OK);
  int64_t h;
  CHECK(fm_snapshot_parse_hour("2024-05-01T10", &h, &e) == FM_OK);
  fm_snapshot_opts so;
  fm_snapshot_opts_default(&so);
  so.retention = 0;
  so.job = "fields";
  CHECK(fm_snapshot_backfill(st, root, h, h + 1, &so, NULL, &e) == FM_OK);
  CHECK(make(st, root, "rita", "snapshot",
             "{\"job\":\"fields\",\"from\":\"2024-05-01T10\",\"to\":\"2024-05-01T10\"}",
             NULL, 0, id, &e) == FM_OK);
  CHECK(fm_prov_get(st, id, &r, &e) == FM_OK && r.status == FM_PROV_READY && r.rows == 8);
  fm_prov_request_free(&r);
  fm_error_init(&e);
  CHECK(make(st, root, "rita", "snapshot",
             "{\"job\":\"fields\",\"from\":\"2024-05-01T10\",\"to\":\"2024-05-01T11\"}",
             NULL, 0, id, &e) == FM_ERR_CONFLICT);
  CHECK(strstr(e.msg, "one partition per request") != NULL);
  fm_store_close(st);
}

static void test_expire_recover_attempts(void) {
  fm_store *st = populated("x.sqlite");
  if (!st) return;
  const char *root = tmp("root_x");
  fm_error e;
  fm_error_init(&e);
  char id[33], id2[33];
  /* TTLs far apart, and expiry passes at times between and around them,
   * so no pause of the test (a loaded machine) can move a request across */
  CHECK(make(st, root, "rita", "mappings", NULL, NULL, 1000, id, &e) == FM_OK);
  CHECK(make(st, root, "rita", "mappings", NULL, NULL, 100000, id2, &e) == FM_OK);
  fm_prov_request r;
  CHECK(fm_prov_get(st, id, &r, &e) == FM_OK);
  char *path = fm_prov_file_path(root, &r);
  fm_prov_request_free(&r);
  CHECK(path && exists(path));
  size_t n = 9;
  CHECK(fm_prov_expire(st, root, (int64_t)time(NULL), &n, &e) == FM_OK && n == 0);
  CHECK(fm_prov_expire(st, root, (int64_t)time(NULL) + 50000, &n, &e) == FM_OK && n == 1);
  CHECK(path && !exists(path));
  CHECK(fm_prov_get(st, id, &r, &e) == FM_OK && r.status == FM_PROV_EXPIRED && !r.path);
  fm_prov_request_free(&r);
  CHECK(fm_prov_get(st, id2, &r, &e) == FM_OK && r.status == FM_PROV_READY);
  fm_prov_request_free(&r);
  fm_free(path);
  /* A crashed server's running request: recovered to pending. */
  CHECK(fm_prov_create(st, "rita", "fields", NULL, NULL, 0, id, &e) == FM_OK);
  char sql[256];
  snprintf(sql, sizeof sql,
           "UPDATE provision_requests SET status='running', attempts=1,"
           " lease_expires='2999-01-01T00:00:00.000Z' WHERE id='%s'", id);
  CHECK(fm_store_exec(st, sql, &e) == FM_OK);
  int did = 1;
  CHECK(fm_prov_run_next(st, root, 0, &did, &e) == FM_OK && did == 0); /* leased */
  CHECK(fm_prov_recover(st, &n, &e) == FM_OK && n == 1);
  CHECK(fm_prov_run_next(st, root, 0, &did, &e) == FM_OK && did == 1);
  CHECK(fm_prov_get(st, id, &r, &e) == FM_OK && r.status == FM_PROV_READY && r.attempts == 2);
  fm_prov_request_free(&r);
  /* A request that keeps killing its worker is given up. */
  CHECK(fm_prov_create(st, "rita", "fields", NULL, NULL, 0, id, &e) == FM_OK);
  snprintf(sql, sizeof sql, "UPDATE provision_requests SET attempts=%d WHERE id='%s'",
           FM_PROV_MAX_ATTEMPTS, id);
  CHECK(fm_store_exec(st, sql, &e) == FM_OK);
  CHECK(fm_prov_materialize(st, root, id, 0, &e) == FM_ERR_INTERNAL);
  CHECK(fm_prov_get(st, id, &r, &e) == FM_OK && r.status == FM_PROV_FAILED && r.error &&
        strstr(r.error, "gave up"));
  fm_prov_request_free(&r);
  fm_store_close(st);
}

static void test_faults(void) {
  fm_store *st = populated("f.sqlite");
  if (!st) return;
  const char *root = tmp("root_f");
  fm_error e;
  char id[33];
  /* BUSY inside the transaction: retried, one row. */
  fm_error_init(&e);
  fm_store_fault_busy_after(st, 1);
  CHECK(fm_prov_create(st, "rita", "mappings", NULL, NULL, 0, id, &e) == FM_OK);
  fm_store_fault_busy_after(st, -1);
  CHECK(count(st, "SELECT count(*) FROM provision_requests") == 1);
  /* Every allocation failing in turn: NOMEM or OK, never a crash or leak,
   * and never a ready row without its file. */
  int oks = 0;
  for (long k = 1; k < 400; k++) {
    fm_error_init(&e);
    fm_fault_malloc_after(k);
    fm_rc rc = make(st, root, "rita", "mappings", "{\"status\":\"accepted\"}", "jsonl.gz", 0,
                    id, &e);
    fm_fault_malloc_after(0);
    CHECK(rc == FM_OK || rc == FM_ERR_NOMEM || rc == FM_ERR_INTERNAL || rc == FM_ERR_DB);
    if (rc == FM_OK) oks++;
  }
  CHECK(oks > 0);
  fm_prov_request *v;
  size_t n;
  fm_error_init(&e);
  CHECK(fm_prov_list(st, NULL, 1000, &v, &n, &e) == FM_OK);
  for (size_t i = 0; i < n; i++) {
    if (v[i].status != FM_PROV_READY) continue;
    char *p = fm_prov_file_path(root, &v[i]);
    CHECK(p && exists(p));
    fm_free(p);
  }
  fm_prov_list_free(v, n);
  fm_store_close(st);
}

static int is_ready(fm_store *st, const char *id) {
  fm_prov_request r;
  if (fm_prov_get(st, id, &r, NULL) != FM_OK) return 0;
  int s = r.status;
  fm_prov_request_free(&r);
  return s == FM_PROV_READY;
}

static void test_runner(void) {
  fm_store *st = populated("r.sqlite");
  if (!st) return;
  const char *root = tmp("root_r");
  fm_error e;
  fm_error_init(&e);
  /* The last snapshot is 3 hours old: the scheduler catches up. */
  int64_t now_h = fm_snapshot_hour_of((int64_t)time(NULL));
  fm_snapshot_opts so;
  fm_snapshot_opts_default(&so);
  so.job = "mappings";
  CHECK(fm_snapshot_run(st, root, now_h - 3, &so, NULL, &e) == FM_OK);
  char id[33];
  CHECK(fm_prov_create(st, "rita", "mappings", NULL, NULL, 0, id, &e) == FM_OK);
  fm_prov_runner_opts o;
  fm_prov_runner_opts_default(&o);
  o.db_path = fm_store_path(st);
  o.root = root;
  o.snapshot_root = root;
  o.snapshot = &so;
  o.poll_ms = 300000; /* only a wake (or the start) runs the queue */
  fm_prov_runner *run = NULL;
  CHECK(fm_prov_runner_start(&o, &run, &e) == FM_OK);
  WAIT_FOR("the runner to make the first request ready (at its start)", is_ready(st, id));
  char id2[33];
  CHECK(fm_prov_create(st, "rita", "fields", NULL, NULL, 0, id2, &e) == FM_OK);
  fm_prov_runner_wake(run);
  WAIT_FOR("the runner to make the second request ready (on the wake)", is_ready(st, id2));
  WAIT_FOR("the scheduler to catch up 4 mappings snapshots",
           count(st, "SELECT count(*) FROM snapshot_runs WHERE job='mappings' AND "
                     "status='succeeded'") >= 4);
  CHECK(count(st, "SELECT count(*) FROM snapshot_runs WHERE job='mappings' AND "
                  "status='succeeded'") == 4);
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  fm_prov_runner_stop(run);
  clock_gettime(CLOCK_MONOTONIC, &b);
  double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
  fprintf(stderr, "runner stopped in %.3f s\n", secs);
  /* Stop wakes the thread: it does not sleep out its 300 s poll.  Not a
   * speed check: half the poll interval is the bound, far above any pause
   * of a loaded machine. */
  CHECK(secs < 150.0);
  fm_store_close(st);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/fm_provision.XXXXXX");
  if (!mkdtemp(dir)) return 1;
  FM_RUN(test_validation);
  FM_RUN(test_materialize_rows);
  FM_RUN(test_snapshot_range);
  FM_RUN(test_parquet);
  FM_RUN(test_expire_recover_attempts);
  FM_RUN(test_faults);
  FM_RUN(test_runner);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (!fm_test_failures && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  FM_TEST_EXIT();
}
