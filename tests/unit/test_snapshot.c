/* test_snapshot.c: the snapshot module: hour parsing, the writer (exact
 * bytes back, checksum, atomicity, refused queries), runs (idempotent,
 * --force versions, audit mismatch -> failed + notified, retry), SIGKILL at
 * every stage then restart, two concurrent runners, retention, backfill and
 * catch-up, job validation. */
#include "fm_snapshot.h"
#include "fm_store.h"
#include "fm_store_sql.h"
#include "fm_test.h"
#include "fm_test_util.h"
#include "fm_test_store.h"

#include <nettle/sha2.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

/* A store with two dictionaries and a few decisions. */
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
  fm_fieldset q, r;
  fm_fieldset_init(&q);
  fm_fieldset_init(&r);
  const char *qs[][2] = {{"PX_BID", "Bid Price"}, {"PX_ASK", "Ask, \"offer\" price"},
                         {"PX_LAST", "Last\nprice"}};
  const char *rs[][2] = {{"BID", "Bid"}, {"ASK", "Ask"}, {"TRDPRC_1", "Last trade é"}};
  for (int i = 0; i < 3; i++) {
    fm_field f = {.vendor = "bloomberg", .id = qs[i][0], .name = qs[i][1],
                  .description = "", .source = "t", .line = (uint32_t)i + 1};
    fm_fieldset_add(&q, &f);
    fm_field g = {.vendor = "refinitiv", .id = rs[i][0], .name = rs[i][1],
                  .description = "", .source = "t", .line = (uint32_t)i + 1};
    fm_fieldset_add(&r, &g);
  }
  fm_error e;
  fm_error_init(&e);
  fm_dict_result res;
  CHECK(fm_store_import_fields(st, "bbg", FM_ROLE_QUERY, &q, "test", &res, &e) == FM_OK);
  CHECK(fm_store_import_fields(st, "rdm", FM_ROLE_REFERENCE, &r, "test", &res, &e) == FM_OK);
  for (int i = 0; i < 3; i++) {
    fm_decision d = {.query_field = fm_store_field_id(st, "bloomberg", qs[i][0], FM_ROLE_QUERY),
                     .ref_field = fm_store_field_id(st, "refinitiv", rs[i][0], FM_ROLE_REFERENCE),
                     .status = i == 2 ? FM_MAP_PROPOSED : FM_MAP_ACCEPTED,
                     .actor = "ana", .comment = i ? NULL : "ok, \"sure\"",
                     .origin = "analyst", .score = i == 1 ? 0.5 : NAN,
                     .expect_accepted = -1};
    CHECK(fm_store_decide(st, &d, NULL, &e) == FM_OK);
  }
  fm_fieldset_free(&q);
  fm_fieldset_free(&r);
  return st;
}

static int64_t this_hour(void) { return fm_snapshot_hour_of((int64_t)time(NULL)); }

static void part_dir(char *out, size_t n, const char *root, const char *job, int64_t hour) {
  char at[32];
  fm_snapshot_hour_str(hour, at);
  snprintf(out, n, "%s/%s/dt=%.10s/hr=%.2s", root, job, at, at + 11);
}

/* ---- hours --------------------------------------------------------------------- */

static void test_hours(void) {
  int64_t h;
  char s[32];
  CHECK(fm_snapshot_parse_hour("1970-01-01T00:00:00Z", &h, NULL) == FM_OK && h == 0);
  CHECK(fm_snapshot_parse_hour("2024-05-01T13", &h, NULL) == FM_OK);
  fm_snapshot_hour_str(h, s);
  CHECK_STR(s, "2024-05-01T13:00:00Z");
  int64_t h2;
  CHECK(fm_snapshot_parse_hour("2024-05-01T13:00Z", &h2, NULL) == FM_OK && h2 == h);
  CHECK(fm_snapshot_parse_hour("2024-02-29T23Z", &h, NULL) == FM_OK);
  fm_snapshot_hour_str(h + 1, s);
  CHECK_STR(s, "2024-03-01T00:00:00Z");
  fm_error e;
  fm_error_init(&e);
  CHECK(fm_snapshot_parse_hour("2024-05-01T13:30:00Z", &h, &e) == FM_ERR_ARG);
  CHECK(strstr(e.msg, "hourly") != NULL);
  const char *bad[] = {"2024-02-30T01", "2024-05-01", "yesterday", "2024-05-01T24", "",
                       "2024-05-01T13:00:00+02:00"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    CHECK(fm_snapshot_parse_hour(bad[i], &h, NULL) == FM_ERR_ARG);
  CHECK(fm_snapshot_hour_of(3599) == 0 && fm_snapshot_hour_of(3600) == 1);
  CHECK(fm_snapshot_hour_of(-1) == -1);
}

/* ---- the writer --------------------------------------------------------------------- */

static void test_writer(void) {
  sqlite3 *db;
  CHECK(sqlite3_open(tmp("w.db"), &db) == SQLITE_OK);
  sqlite3_exec(db,
               "CREATE TABLE t(i INTEGER, r REAL, s TEXT, b BLOB);"
               "INSERT INTO t VALUES (1, 0.1, 'plain', NULL), (2, NULL, 'a,b \"q\"', x'00ff'),"
               "(3, -2.5, '', NULL), (NULL, 1e300, 'line\nbreak é', NULL);",
               NULL, NULL, NULL);
  fm_snapshot_file f;
  fm_error e;
  fm_error_init(&e);
  CHECK(fm_snapshot_write_sql(db, "SELECT * FROM t ORDER BY rowid", FM_SNAPSHOT_CSV_GZ,
                              tmp("t.csv.gz"), &f, &e) == FM_OK);
  CHECK(f.rows == 4);
  char *csv = gunzip(tmp("t.csv.gz"));
  CHECK_STR(csv, "i,r,s,b\n1,0.10000000000000001,plain,\n2,,\"a,b \"\"q\"\"\",00ff\n"
                 "3,-2.5,\"\",\n,1.0000000000000001e+300,\"line\nbreak é\",\n");
  free(csv);
  CHECK(f.schema_json && strstr(f.schema_json, "{\"name\":\"i\",\"type\":\"INTEGER\"}"));
  /* bytes and sha256 describe the file on disk. */
  size_t n = 0;
  unsigned char *raw = read_bytes(tmp("t.csv.gz"), &n);
  CHECK(raw && n == f.bytes);
  struct sha256_ctx c;
  uint8_t dg[32];
  char hex[65];
  sha256_init(&c);
  sha256_update(&c, n, raw);
  sha256_digest(&c, 32, dg);
  for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", dg[i]);
  CHECK_STR(f.sha256, hex);
  fm_free(raw);
  fm_snapshot_file_free(&f);

  CHECK(fm_snapshot_write_sql(db, "SELECT * FROM t ORDER BY rowid", FM_SNAPSHOT_JSONL_GZ,
                              tmp("t.jsonl.gz"), &f, &e) == FM_OK);
  char *jl = gunzip(tmp("t.jsonl.gz"));
  CHECK_STR(jl, "{\"i\":1,\"r\":0.10000000000000001,\"s\":\"plain\",\"b\":null}\n"
                "{\"i\":2,\"r\":null,\"s\":\"a,b \\\"q\\\"\",\"b\":\"00ff\"}\n"
                "{\"i\":3,\"r\":-2.5,\"s\":\"\",\"b\":null}\n"
                "{\"i\":null,\"r\":1.0000000000000001e300,\"s\":\"line\\nbreak é\",\"b\":null}\n");
  free(jl);
  fm_snapshot_file_free(&f);

  /* Refused: not a query, writes, two statements; the target stays as it was. */
  const char *badsql[] = {"SELECT nope FROM t", "DELETE FROM t",
                          "SELECT 1; DELETE FROM t", "CREATE TABLE u(x)"};
  for (size_t i = 0; i < 4; i++) {
    fm_error_init(&e);
    CHECK(fm_snapshot_write_sql(db, badsql[i], FM_SNAPSHOT_CSV_GZ, tmp("t.csv.gz"), &f, &e) ==
          FM_ERR_ARG);
    CHECK(strstr(e.msg, "t.csv.gz") != NULL);
  }
  csv = gunzip(tmp("t.csv.gz"));
  CHECK(csv && strncmp(csv, "i,r,s,b\n1,", 10) == 0);
  free(csv);
  /* An unwritable target: error names it, no temp left. */
  fm_error_init(&e);
  CHECK(fm_snapshot_write_sql(db, "SELECT 1", FM_SNAPSHOT_CSV_GZ, tmp("nodir/x.csv.gz"), &f,
                              &e) == FM_ERR_IO);
  CHECK(strstr(e.msg, "nodir") != NULL);
  CHECK(no_temp_files());
  /* Out of memory at every allocation: clean failure, never a crash. */
  for (long k = 1; k < 60; k++) {
    fm_fault_malloc_after(k);
    fm_error_init(&e);
    fm_rc rc = fm_snapshot_write_sql(db, "SELECT * FROM t", FM_SNAPSHOT_JSONL_GZ,
                                     tmp("oom.jsonl.gz"), &f, &e);
    fm_fault_malloc_after(0);
    CHECK(rc == FM_OK || rc == FM_ERR_NOMEM);
    if (rc == FM_OK) fm_snapshot_file_free(&f);
  }
  CHECK(no_temp_files());
  sqlite3_close(db);
}

/* The Parquet backend: a framed file (PAR1 ... PAR1) whose size and SHA-256
 * are what the writer reports; values that do not fit the declared type,
 * a "_at" text that is no UTC time and invalid UTF-8 fail naming the file,
 * row and column, and leave no temp file.  (Values are read back by DuckDB
 * in tests/cli/test_lake.sh.) */
static void test_writer_parquet(void) {
  sqlite3 *db;
  CHECK(sqlite3_open(tmp("p.db"), &db) == SQLITE_OK);
  sqlite3_exec(db,
               "CREATE TABLE t(i INTEGER PRIMARY KEY, r REAL, s TEXT NOT NULL, b BLOB,"
               " created_at TEXT);"
               "INSERT INTO t VALUES (1, 0.5, 'plain', NULL, '2026-12-04T17:46:58.123Z'),"
               "(2, NULL, '', x'00ff', NULL), (3, 2, 'é \"q\"', NULL, '2026-12-04');",
               NULL, NULL, NULL);
  fm_snapshot_file f;
  fm_error e;
  fm_error_init(&e);
  CHECK(fm_snapshot_write_sql(db, "SELECT * FROM t ORDER BY i", FM_SNAPSHOT_PARQUET,
                              tmp("t.parquet"), &f, &e) == FM_OK);
  CHECK(f.rows == 3);
  size_t n = 0;
  unsigned char *raw = read_bytes(tmp("t.parquet"), &n);
  CHECK(raw && n == f.bytes && n > 8 && !memcmp(raw, "PAR1", 4) && !memcmp(raw + n - 4, "PAR1", 4));
  struct sha256_ctx c;
  uint8_t dg[32];
  char hex[65];
  sha256_init(&c);
  sha256_update(&c, n, raw);
  sha256_digest(&c, 32, dg);
  for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", dg[i]);
  CHECK_STR(f.sha256, hex);
  fm_free(raw);
  fm_snapshot_file_free(&f);
  CHECK(!strcmp(fm_snapshot_format_name(FM_SNAPSHOT_PARQUET), "parquet") &&
        fm_snapshot_format_parse("parquet") == FM_SNAPSHOT_PARQUET);
  /* Refused values: the message names the row and the column. */
  struct {
    const char *sql, *want;
  } bad[] = {
      {"UPDATE t SET created_at = 'yesterday' WHERE i = 2", "created_at"},
      {"UPDATE t SET created_at = NULL, s = CAST(x'41ff42' AS TEXT) WHERE i = 2",
       "invalid UTF-8"},
      {"UPDATE t SET s = 'x', r = 'not a number' WHERE i = 2", "column 'r'"},
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    CHECK(sqlite3_exec(db, bad[k].sql, NULL, NULL, NULL) == SQLITE_OK);
    fm_error_init(&e);
    CHECK(fm_snapshot_write_sql(db, "SELECT * FROM t ORDER BY i", FM_SNAPSHOT_PARQUET,
                                tmp("bad.parquet"), &f, &e) != FM_OK);
    if (!strstr(e.msg, bad[k].want)) fprintf(stderr, "case %zu: %s\n", k, e.msg);
    CHECK(strstr(e.msg, bad[k].want) != NULL && strstr(e.msg, "row 2") != NULL);
    CHECK(access(tmp("bad.parquet"), F_OK) != 0);
  }
  CHECK(no_temp_files());
  sqlite3_exec(db, "UPDATE t SET r = NULL WHERE i = 2", NULL, NULL, NULL);
  for (long k = 1; k < 80; k++) {
    fm_fault_malloc_after(k);
    fm_error_init(&e);
    fm_rc rc = fm_snapshot_write_sql(db, "SELECT * FROM t WHERE i <> 2", FM_SNAPSHOT_PARQUET,
                                     tmp("oom.parquet"), &f, &e);
    fm_fault_malloc_after(0);
    CHECK(rc == FM_OK || rc == FM_ERR_NOMEM);
    if (rc == FM_OK) fm_snapshot_file_free(&f);
  }
  CHECK(no_temp_files());
  sqlite3_close(db);
}

/* ---- runs ------------------------------------------------------------------------------ */

static void on_part(void *ctx, const fm_snapshot_partition *p) {
  int *tally = ctx;
  tally[p->outcome]++;
}

static void test_run_idempotent_force(void) {
  fm_store *st = populated("run.db");
  if (!st) return;
  const char *root = tmp("root1");
  int64_t h = this_hour();
  int tally[8] = {0};
  fm_snapshot_opts o;
  fm_snapshot_opts_default(&o);
  o.on_partition = on_part;
  o.ctx = tally;
  fm_snapshot_result res = {0};
  fm_error e;
  fm_error_init(&e);
  CHECK(fm_snapshot_run(st, root, h, &o, &res, &e) == FM_OK);
  CHECK(res.written == 4 && res.failed == 0 && tally[FM_SNAPSHOT_WRITTEN] == 4);
  char d[512], p[600];
  part_dir(d, sizeof d, root, "mappings", h);
  snprintf(p, sizeof p, "%s/_SUCCESS", d);
  CHECK(exists(p));
  snprintf(p, sizeof p, "%s/part-00000.csv.gz", d);
  char *csv = gunzip(p);
  CHECK(csv && strstr(csv, "\"ok, \"\"sure\"\"\"") != NULL);
  /* header + 3 mappings */
  int lines = 0;
  for (char *c = csv; c && *c; c++) lines += *c == '\n';
  CHECK(lines == 4);
  free(csv);
  snprintf(p, sizeof p, "%s/_manifest.json", d);
  char *man = (char *)read_bytes(p, NULL);
  CHECK(man && strstr(man, "\"rows\": 3") && strstr(man, "\"schema_version\"") &&
        strstr(man, "\"sha256\"") && strstr(man, "run.db"));
  fm_free(man);
  CHECK(count(st, "SELECT count(*) FROM snapshot_runs WHERE status='succeeded' AND "
                  "rows_read = rows_written") == 4);
  CHECK(count(st, "SELECT count(*) FROM catalog") == 4);
  snprintf(p, sizeof p, "%s/catalog.json", root);
  char *cat = (char *)read_bytes(p, NULL);
  CHECK(cat && strstr(cat, "\"job\": \"audit_log\"") && strstr(cat, "mappings/dt="));
  fm_free(cat);

  /* Again: a no-op. */
  memset(&res, 0, sizeof res);
  CHECK(fm_snapshot_run(st, root, h, &o, &res, &e) == FM_OK);
  CHECK(res.written == 0 && res.skipped == 4);
  CHECK(count(st, "SELECT count(*) FROM snapshot_runs") == 4);

  /* --force: version 2, recorded, catalog follows, one visible partition. */
  o.force = 1;
  o.job = "mappings";
  memset(&res, 0, sizeof res);
  CHECK(fm_snapshot_run(st, root, h, &o, &res, &e) == FM_OK);
  CHECK(res.written == 1);
  CHECK(count(st, "SELECT max(version) FROM snapshot_runs WHERE job='mappings'") == 2);
  CHECK(count(st, "SELECT version FROM catalog WHERE job='mappings'") == 2);
  snprintf(p, sizeof p, "%s/_manifest.json", d);
  man = (char *)read_bytes(p, NULL);
  CHECK(man && strstr(man, "\"version\": 2"));
  fm_free(man);

  /* An unknown job is a clear error. */
  o.job = "nosuch";
  fm_error_init(&e);
  CHECK(fm_snapshot_run(st, root, h, &o, NULL, &e) == FM_ERR_NOTFOUND);
  CHECK(strstr(e.msg, "nosuch") != NULL);
  fm_store_close(st);
}

static void test_mismatch_notifies_then_retry(void) {
  fm_store *st = populated("mm.db");
  if (!st) return;
  const char *root = tmp("root2");
  int64_t h = this_hour();
  char cmd[512];
  snprintf(cmd, sizeof cmd,
           "echo \"$FM_SNAPSHOT_JOB $FM_SNAPSHOT_HR $FM_SNAPSHOT_ROWS_READ "
           "$FM_SNAPSHOT_ROWS_WRITTEN\" > %s",
           tmp("hook.out"));
  fm_snapshot_opts o;
  fm_snapshot_opts_default(&o);
  o.job = "fields";
  o.on_failure = cmd;
  setenv("FM_SNAPSHOT_TEST_MISMATCH", "fields", 1);
  fm_snapshot_result res = {0};
  fm_error e;
  fm_error_init(&e);
  CHECK(fm_snapshot_run(st, root, h, &o, &res, &e) == FM_ERR_CORRUPT);
  unsetenv("FM_SNAPSHOT_TEST_MISMATCH");
  CHECK(strstr(e.msg, "audit") && strstr(e.msg, "fields"));
  CHECK(res.failed == 1 && res.written == 0);
  char *hook = (char *)read_bytes(tmp("hook.out"), NULL);
  char want[64], at[32];
  fm_snapshot_hour_str(h, at);
  snprintf(want, sizeof want, "fields %.2s 6 5\n", at + 11);
  CHECK_STR(hook, want);
  fm_free(hook);
  char d[512];
  part_dir(d, sizeof d, root, "fields", h);
  CHECK(!exists(d)); /* nothing visible */
  CHECK(count(st, "SELECT count(*) FROM snapshot_runs WHERE status='failed' AND "
                  "error LIKE '%audit failed%'") == 1);
  CHECK(count(st, "SELECT count(*) FROM catalog") == 0);
  /* Fixed: the retry is attempt 2 of the same version. */
  o.on_failure = NULL;
  memset(&res, 0, sizeof res);
  CHECK(fm_snapshot_run(st, root, h, &o, &res, &e) == FM_OK);
  CHECK(res.written == 1);
  CHECK(count(st, "SELECT attempt FROM snapshot_runs WHERE status='succeeded'") == 2);
  CHECK(exists(d));
  fm_store_close(st);
}

/* No hr= directory under root/<job>/dt=*: visible partitions must be whole. */
static int partitions_whole(const char *root, const char *job, int64_t hour, int *visible) {
  char d[512], p[600];
  part_dir(d, sizeof d, root, job, hour);
  *visible = exists(d);
  if (!*visible) return 1;
  const char *need[] = {"_SUCCESS", "_manifest.json", "part-00000.csv.gz"};
  int ok = 1;
  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s/%s", d, need[i]);
    if (strcmp(job, "audit_log") == 0 && i == 2)
      snprintf(p, sizeof p, "%s/part-00000.jsonl.gz", d);
    ok &= exists(p);
  }
  return ok;
}

static void test_sigkill_each_stage(void) {
  const char *stages[] = {"claimed", "written", "manifest", "renamed", "succeeded", "catalog"};
  for (size_t k = 0; k < sizeof stages / sizeof *stages; k++) {
    char name[32], rootname[32];
    snprintf(name, sizeof name, "kill%zu.db", k);
    snprintf(rootname, sizeof rootname, "kroot%zu", k);
    fm_store *st = populated(name);
    if (!st) return;
    fm_store_close(st);
    const char *root = tmp(rootname);
    int64_t h = this_hour();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
      setenv("FM_SNAPSHOT_DIE_AT", stages[k], 1);
      fm_store *cst = open_db(name);
      fm_snapshot_opts o;
      fm_snapshot_opts_default(&o);
      o.lease_seconds = 1;
      fm_snapshot_run(cst, root, h, &o, NULL, NULL);
      _exit(3); /* not reached when the stage fires */
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    const char *jobs[] = {"audit_log", "candidates", "fields", "mappings"};
    for (int j = 0; j < 4; j++) {
      int vis;
      CHECK(partitions_whole(root, jobs[j], h, &vis));
    }
    /* Restart after the lease (1 s) ran out, as the runner compares it:
     * ISO text against the current second. */
    st = open_db(name);
    WAIT_FOR("the killed run's lease to run out",
             count(st, "SELECT count(*) FROM snapshot_runs WHERE lease_expires > "
                       "strftime('%Y-%m-%dT%H:%M:%S.000Z', 'now')") == 0);
    fm_snapshot_result res = {0};
    fm_error e;
    fm_error_init(&e);
    CHECK(fm_snapshot_run(st, root, h, NULL, &res, &e) == FM_OK);
    if (e.rc) fprintf(stderr, "stage %s: %s\n", stages[k], e.msg);
    CHECK(count(st, "SELECT count(*) FROM snapshot_runs WHERE status='succeeded'") == 4);
    CHECK(count(st, "SELECT count(*) FROM snapshot_runs WHERE status<>'succeeded'") == 0);
    CHECK(count(st, "SELECT count(*) FROM snapshot_runs WHERE rows_read<>rows_written") == 0);
    CHECK(count(st, "SELECT count(*) FROM catalog") == 4);
    for (int j = 0; j < 4; j++) {
      int vis;
      CHECK(partitions_whole(root, jobs[j], h, &vis) && vis);
    }
    char p[512];
    snprintf(p, sizeof p, "%s/catalog.json", root);
    char *cat = (char *)read_bytes(p, NULL);
    CHECK(cat && strstr(cat, "\"job\": \"mappings\""));
    fm_free(cat);
    /* And once more: nothing to do. */
    memset(&res, 0, sizeof res);
    CHECK(fm_snapshot_run(st, root, h, NULL, &res, &e) == FM_OK);
    CHECK(res.written == 0 && res.skipped == 4);
    fm_store_close(st);
  }
}

static void test_two_runners(void) {
  fm_store *st = populated("two.db");
  if (!st) return;
  fm_store_close(st);
  const char *root = tmp("root3");
  int64_t h = this_hour();
  pid_t kids[2];
  fflush(NULL);
  for (int i = 0; i < 2; i++) {
    kids[i] = fork();
    if (kids[i] == 0) {
      setenv("FM_SNAPSHOT_TEST_HOLD_MS", "400", 1);
      fm_store *cst = open_db("two.db");
      fm_snapshot_opts o;
      fm_snapshot_opts_default(&o);
      o.job = "mappings";
      fm_snapshot_result res = {0};
      fm_rc rc = fm_snapshot_run(cst, root, h, &o, &res, NULL);
      fm_store_close(cst);
      _exit(rc != FM_OK ? 9 : res.written == 1 ? 1 : res.skipped == 1 ? 2 : 8);
    }
  }
  int got[10] = {0};
  for (int i = 0; i < 2; i++) {
    int status = 0;
    waitpid(kids[i], &status, 0);
    if (WIFEXITED(status)) got[WEXITSTATUS(status)]++;
  }
  CHECK(got[1] == 1 && got[2] == 1); /* one wrote, the other skipped */
  st = open_db("two.db");
  CHECK(count(st, "SELECT count(*) FROM snapshot_runs WHERE status='succeeded' AND "
                  "attempt=1") == 1);
  CHECK(count(st, "SELECT count(*) FROM snapshot_runs") == 1);
  fm_store_close(st);
}

static void test_retention_backfill_due(void) {
  fm_store *st = populated("ret.db");
  if (!st) return;
  const char *root = tmp("root4");
  /* one clock reading for the whole test: an hour may end while it runs */
  int64_t now = (int64_t)time(NULL), h = fm_snapshot_hour_of(now);
  fm_error e;
  fm_error_init(&e);
  CHECK(fm_store_exec(st, "UPDATE snapshot_jobs SET retention_hours = 5 WHERE name='fields'",
                      &e) == FM_OK);
  fm_snapshot_opts o;
  fm_snapshot_opts_default(&o);
  o.job = "fields";
  o.retention = 0;
  fm_snapshot_result res = {0};
  /* Hours the job's retention would delete at once, and future hours, are
   * refused before anything is touched. */
  CHECK(fm_snapshot_backfill(st, root, h - 7, h - 3, &o, &res, &e) == FM_ERR_ARG);
  CHECK(strstr(e.msg, "outside the retention window of snapshot job 'fields'") != NULL);
  fm_error_init(&e);
  CHECK(fm_snapshot_run(st, root, h + 1, &o, &res, &e) == FM_ERR_ARG);
  CHECK(strstr(e.msg, "in the future") != NULL);
  CHECK(res.written == 0 && !exists(root));
  CHECK(fm_store_exec(st, "UPDATE snapshot_jobs SET retention_hours = 8 WHERE name='fields'",
                      &e) == FM_OK);
  CHECK(fm_snapshot_backfill(st, root, h - 7, h - 3, &o, &res, &e) == FM_OK);
  CHECK(res.written == 5);
  CHECK(count(st, "SELECT count(*) FROM catalog") == 5);
  /* Catch up: h-2 .. h. */
  memset(&res, 0, sizeof res);
  CHECK(fm_snapshot_run_due(st, root, now, &o, &res, &e) == FM_OK);
  CHECK(res.written == 3 && res.skipped == 0);
  memset(&res, 0, sizeof res);
  CHECK(fm_snapshot_run_due(st, root, now, &o, &res, &e) == FM_OK);
  CHECK(res.written == 0 && res.failed == 0);
  /* A failed hour in the middle is owed again: due rewrites it. */
  CHECK(fm_store_exec(st,
                      "UPDATE snapshot_runs SET status = 'failed' WHERE job = 'fields' AND"
                      " snapshot_run_id = (SELECT min(snapshot_run_id) + 3 FROM snapshot_runs"
                      " WHERE job = 'fields')",
                      &e) == FM_OK);
  memset(&res, 0, sizeof res);
  CHECK(fm_snapshot_run_due(st, root, now, &o, &res, &e) == FM_OK);
  CHECK(res.written == 1 && res.failed == 0);
  CHECK(fm_store_exec(st, "UPDATE snapshot_jobs SET retention_hours = 5 WHERE name='fields'",
                      &e) == FM_OK);
  /* Retention 5 h: h-7 .. h-5 go (files and catalog rows), the rest stay. */
  memset(&res, 0, sizeof res);
  CHECK(fm_snapshot_retention(st, root, now, &res, &e) == FM_OK);
  CHECK(res.expired == 3);
  CHECK(count(st, "SELECT count(*) FROM catalog") == 5);
  CHECK(count(st, "SELECT count(*) FROM snapshot_runs WHERE status='expired'") == 3);
  char d[512];
  part_dir(d, sizeof d, root, "fields", h - 5);
  CHECK(!exists(d));
  part_dir(d, sizeof d, root, "fields", h - 4);
  CHECK(exists(d));
  /* An expired hour is not rewritten by a later backfill (it is outside
   * the window, so refused). */
  memset(&res, 0, sizeof res);
  CHECK(fm_snapshot_backfill(st, root, h - 6, h - 6, &o, &res, &e) == FM_ERR_ARG);
  CHECK(res.written == 0);
  /* The catch-up bound. */
  fm_store *st2 = populated("due.db");
  o.max_catchup_hours = 4;
  memset(&res, 0, sizeof res);
  CHECK(fm_snapshot_backfill(st2, tmp("root5"), h - 100, h - 100, &o, &res, &e) == FM_OK);
  memset(&res, 0, sizeof res);
  CHECK(fm_snapshot_run_due(st2, tmp("root5"), now, &o, &res, &e) == FM_OK);
  CHECK(res.written == 4); /* the 3 oldest missing hours and the current one */
  part_dir(d, sizeof d, tmp("root5"), "fields", h - 99);
  CHECK(exists(d));
  part_dir(d, sizeof d, tmp("root5"), "fields", h);
  CHECK(exists(d));
  memset(&res, 0, sizeof res);
  CHECK(fm_snapshot_run_due(st2, tmp("root5"), now, &o, &res, &e) == FM_OK);
  CHECK(res.written == 4); /* the next 4 oldest: the gap closes a bounded step per run */
  part_dir(d, sizeof d, tmp("root5"), "fields", h - 93);
  CHECK(exists(d));
  fm_store_close(st2);
  fm_store_close(st);
}

static void test_jobs_validation(void) {
  fm_store *st = populated("jobs.db");
  if (!st) return;
  fm_error e;
  fm_error_init(&e);
  CHECK(fm_store_exec(st,
                      "INSERT INTO snapshot_jobs (name, source_table, columns, filter) VALUES"
                      " ('accepted', 'mappings', 'mapping_key, status', 'status = ''accepted''')"
                      ",('badcol', 'mappings', 'mapping_key, nope', NULL)"
                      ",('badtable', 'nosuch', '*', NULL)"
                      ",('badfilter', 'mappings', '*', '1) UNION SELECT 1 --')",
                      &e) == FM_OK);
  char *js = NULL;
  CHECK(fm_snapshot_jobs_json(st, &js, &e) == FM_OK);
  CHECK(js && strstr(js, "no column 'nope'") && strstr(js, "table 'nosuch' does not exist") &&
        strstr(js, "bad filter"));
  fm_free(js);
  fm_snapshot_opts o;
  fm_snapshot_opts_default(&o);
  fm_snapshot_result res = {0};
  const char *root = tmp("root6");
  fm_rc rc = fm_snapshot_run(st, root, this_hour(), &o, &res, &e);
  CHECK(rc == FM_ERR_ARG);
  CHECK(res.written == 5 && res.failed == 3);
  CHECK(count(st, "SELECT rows_written FROM snapshot_runs WHERE job='accepted'") == 2);
  CHECK(count(st, "SELECT count(*) FROM snapshot_runs WHERE status='failed' AND "
                  "error LIKE '%nope%'") == 1);
  /* Status JSON lists them, newest first. */
  CHECK(fm_snapshot_status_json(st, "badcol", 10, &js, &e) == FM_OK);
  CHECK(js && strstr(js, "\"status\":\"failed\""));
  fm_free(js);
  fm_store_close(st);
}

/* ---- a lake belongs to one store; verify ------------------------------------------ */

static void count_problem(void *ctx, const char *where, const char *problem) {
  (void)where;
  (void)problem;
  (*(int *)ctx)++;
}

static void test_lake_owner_and_verify(void) {
  fm_store *a = populated("lake_a.db"), *b = populated("lake_b.db");
  if (!a || !b) return;
  const char *root = tmp("lake");
  int64_t h = this_hour();
  fm_snapshot_opts o;
  fm_snapshot_opts_default(&o);
  fm_error e;
  fm_error_init(&e);
  char ida[33], idb[33], again[33];
  CHECK(fm_snapshot_store_id(a, 0, ida, &e) == FM_OK && ida[0] == '\0'); /* none yet */
  CHECK(fm_snapshot_run(a, root, h, &o, NULL, &e) == FM_OK);
  CHECK(fm_snapshot_store_id(a, 0, ida, &e) == FM_OK && strlen(ida) == 32);
  CHECK(fm_snapshot_store_id(a, 1, again, &e) == FM_OK);
  CHECK_STR(again, ida); /* created once */
  char idfile[600];
  snprintf(idfile, sizeof idfile, "%s/%s", root, FM_SNAPSHOT_LAKE_FILE);
  size_t n0 = 0, n1 = 0;
  unsigned char *before = read_bytes(idfile, &n0);
  CHECK(before && strstr((const char *)before, ida) != NULL);
  /* Another store: refused, both ids named, nothing written. */
  CHECK(fm_snapshot_store_id(b, 1, idb, &e) == FM_OK && strcmp(ida, idb) != 0);
  fm_error_init(&e);
  o.force = 1;
  CHECK(fm_snapshot_run(b, root, h, &o, NULL, &e) == FM_ERR_CONFLICT);
  CHECK(strstr(e.msg, ida) && strstr(e.msg, idb));
  CHECK(fm_snapshot_retention(b, root, (int64_t)time(NULL) + 1000 * 3600, NULL, &e) ==
        FM_ERR_CONFLICT);
  unsigned char *after = read_bytes(idfile, &n1);
  CHECK(after && n0 == n1 && !memcmp(before, after, n0));
  fm_free(before);
  fm_free(after);
  sqlite3_stmt *s;
  CHECK(sqlite3_prepare_v2(fm_store_db(b), "SELECT count(*) FROM snapshot_runs", -1, &s,
                           NULL) == SQLITE_OK);
  CHECK(sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int(s, 0) == 0);
  sqlite3_finalize(s);
  /* Verify: clean for a; b is not the owner; a flipped byte and a missing
   * file are problems. */
  fm_snapshot_verify_result vr;
  int np = 0;
  CHECK(fm_snapshot_verify(root, a, count_problem, &np, &vr, &e) == FM_OK);
  CHECK(vr.partitions == 4 && vr.files == 4 && vr.problems == 0 && np == 0);
  CHECK(fm_snapshot_verify(root, b, count_problem, &np, &vr, &e) == FM_OK);
  CHECK(vr.problems == 1 && np == 1);
  char d[512], p[600];
  part_dir(d, sizeof d, root, "mappings", h);
  snprintf(p, sizeof p, "%s/part-00000.csv.gz", d);
  size_t n;
  unsigned char *bytes = read_bytes(p, &n);
  CHECK(bytes && n > 10);
  if (bytes) {
    bytes[n / 2] ^= 0x80;
    CHECK(write_bytes(p, bytes, n) == 0);
  }
  fm_free(bytes);
  CHECK(fm_snapshot_verify(root, NULL, NULL, NULL, &vr, &e) == FM_OK && vr.problems == 1);
  CHECK(unlink(p) == 0);
  CHECK(fm_snapshot_verify(root, NULL, NULL, NULL, &vr, &e) == FM_OK && vr.problems == 1);
  CHECK(fm_snapshot_verify(tmp("no_such_lake"), NULL, NULL, NULL, &vr, &e) == FM_ERR_NOTFOUND);
  CHECK(!exists(tmp("no_such_lake")));
  fm_store_close(a);
  fm_store_close(b);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/fm_snapshot.XXXXXX");
  if (!mkdtemp(dir)) return 1;
  FM_RUN(test_hours);
  FM_RUN(test_writer);
  FM_RUN(test_writer_parquet);
  FM_RUN(test_run_idempotent_force);
  FM_RUN(test_mismatch_notifies_then_retry);
  FM_RUN(test_sigkill_each_stage);
  FM_RUN(test_two_runners);
  FM_RUN(test_retention_backfill_due);
  FM_RUN(test_jobs_validation);
  FM_RUN(test_lake_owner_and_verify);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (!fm_test_failures && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  FM_TEST_EXIT();
}
