/* test_lease.c: the lease mechanism (fm_lease.h) on a table of its own:
 * claim, a live lease held off, renew and finish only by the holder, a
 * taken-over lease fences the old holder out, reclaim (expired, all, dead
 * processes), attempts bounded, a table without an owner column. */
#include "fm_lease.h"
#include "fm_store.h"
#include "fm_store_sql.h"
#include "fm_test.h"
#include "fm_test_util.h"
#include "fm_test_store.h"

#include <sys/wait.h>
#include <unistd.h>

static const fm_lease_table units = {
    .table = "units", .status = "status", .owner = "owner", .expires = "expires",
    .attempts = "attempts", .started = "started", .finished = "finished", .error = "error",
    .pending = "pending", .running = "running", .ok = "done", .failed = "failed",
    .retry_failed = 1};

static fm_store *units_db(const char *name, int nrows) {
  fm_store *st = open_db(name);
  if (!st) return NULL;
  fm_error e;
  fm_error_init(&e);
  CHECK(fm_store_exec(st,
                      "CREATE TABLE units (status TEXT NOT NULL DEFAULT 'pending', owner TEXT,"
                      " expires TEXT, attempts INTEGER NOT NULL DEFAULT 0, started TEXT,"
                      " finished TEXT, error TEXT)",
                      &e) == FM_OK);
  for (int i = 0; i < nrows; i++)
    CHECK(fm_store_exec(st, "INSERT INTO units DEFAULT VALUES", &e) == FM_OK);
  return st;
}

static void set_expired(fm_store *st, int64_t unit) {
  char sql[128];
  snprintf(sql, sizeof sql, "UPDATE units SET expires = '2000-01-01T00:00:00.000Z'"
           " WHERE rowid = %lld", (long long)unit);
  fm_error e;
  CHECK(fm_store_exec(st, sql, &e) == FM_OK);
}

static void test_claim_renew_finish(void) {
  fm_store *st = units_db("a.db", 2);
  if (!st) return;
  fm_error e;
  fm_error_init(&e);
  fm_lease a, b;
  CHECK(fm_lease_claim(st, &units, 1, "alice", 60, &a, &e) == FM_OK);
  CHECK(a.outcome == FM_LEASE_CLAIMED && a.attempt == 1);
  CHECK(count(st, "SELECT count(*) FROM units WHERE rowid = 1 AND status = 'running'"
                  " AND owner = 'alice' AND started IS NOT NULL") == 1);
  /* A live lease is held off, naming its holder. */
  CHECK(fm_lease_claim(st, &units, 1, "bob", 60, &b, &e) == FM_OK);
  CHECK(b.outcome == FM_LEASE_HELD);
  CHECK_STR(b.holder, "alice");
  CHECK(fm_lease_renew(st, &units, &a, 120, &e) == FM_OK);
  /* Expired: bob takes over; alice is fenced out of renew and finish. */
  set_expired(st, 1);
  CHECK(fm_lease_claim(st, &units, 1, "bob", 60, &b, &e) == FM_OK);
  CHECK(b.outcome == FM_LEASE_CLAIMED && b.attempt == 2);
  CHECK(fm_lease_renew(st, &units, &a, 60, &e) == FM_ERR_CONFLICT);
  CHECK(strstr(e.msg, "lease lost") != NULL);
  CHECK(fm_lease_finish(st, &units, &a, 1, NULL, &e) == FM_ERR_CONFLICT);
  CHECK(fm_lease_finish(st, &units, &b, 1, NULL, &e) == FM_OK);
  CHECK(count(st, "SELECT count(*) FROM units WHERE rowid = 1 AND status = 'done'"
                  " AND owner IS NULL AND expires IS NULL AND finished IS NOT NULL") == 1);
  CHECK(fm_lease_claim(st, &units, 1, "carol", 60, &b, &e) == FM_OK);
  CHECK(b.outcome == FM_LEASE_DONE);
  CHECK_STR(b.status, "done");
  /* Failed is retried (retry_failed); its error is cleared by the claim. */
  CHECK(fm_lease_claim(st, &units, 2, "alice", 60, &a, &e) == FM_OK);
  CHECK(fm_lease_finish(st, &units, &a, 0, "boom", &e) == FM_OK);
  CHECK(count(st, "SELECT count(*) FROM units WHERE rowid = 2 AND status = 'failed'"
                  " AND error = 'boom'") == 1);
  CHECK(fm_lease_claim(st, &units, 2, "bob", 60, &b, &e) == FM_OK);
  CHECK(b.outcome == FM_LEASE_CLAIMED && b.attempt == 2);
  CHECK(count(st, "SELECT count(*) FROM units WHERE rowid = 2 AND error IS NULL") == 1);
  CHECK(fm_lease_claim(st, &units, 99, "bob", 60, &b, &e) == FM_ERR_NOTFOUND);
  fm_store_close(st);
}

static void test_reclaim(void) {
  fm_store *st = units_db("b.db", 3);
  if (!st) return;
  fm_error e;
  fm_error_init(&e);
  fm_lease l[3];
  for (int i = 0; i < 3; i++)
    CHECK(fm_lease_claim(st, &units, i + 1, "w", 60, &l[i], &e) == FM_OK);
  set_expired(st, 2);
  size_t n = 9;
  CHECK(fm_lease_reclaim(st, &units, 0, &n, &e) == FM_OK && n == 1);
  CHECK(count(st, "SELECT count(*) FROM units WHERE status = 'pending' AND rowid = 2") == 1);
  CHECK(fm_lease_reclaim(st, &units, 1, &n, &e) == FM_OK && n == 2);
  CHECK(count(st, "SELECT count(*) FROM units WHERE status = 'pending' AND owner IS NULL") == 3);
  /* A holder that is a dead process of this host is reclaimed at once; a
   * live one (this process) is not. */
  char dead[160], live[160];
  pid_t pid = fork();
  if (pid == 0) _exit(0); /* a process that is gone once reaped */
  int status;
  waitpid(pid, &status, 0);
  char host[64] = "host";
  gethostname(host, sizeof host - 1);
  host[sizeof host - 1] = '\0';
  snprintf(dead, sizeof dead, "child@%s:%ld:1", host, (long)pid);
  fm_lease_owner_name("me", live, sizeof live);
  CHECK(fm_lease_claim(st, &units, 1, dead, 600, &l[0], &e) == FM_OK);
  CHECK(fm_lease_claim(st, &units, 2, live, 600, &l[1], &e) == FM_OK);
  CHECK(fm_lease_reclaim_dead(st, &units, &n, &e) == FM_OK && n == 1);
  CHECK(count(st, "SELECT count(*) FROM units WHERE rowid = 1 AND status = 'pending'") == 1);
  CHECK(count(st, "SELECT count(*) FROM units WHERE rowid = 2 AND status = 'running'") == 1);
  fm_store_close(st);
}

static void test_no_owner_and_attempts(void) {
  fm_store *st = open_db("c.db");
  if (!st) return;
  fm_error e;
  fm_error_init(&e);
  CHECK(fm_store_exec(st,
                      "CREATE TABLE reqs (status TEXT NOT NULL DEFAULT 'pending', lease TEXT,"
                      " tries INTEGER NOT NULL DEFAULT 0, error TEXT);"
                      "INSERT INTO reqs DEFAULT VALUES",
                      &e) == FM_OK);
  const fm_lease_table reqs = {.table = "reqs", .status = "status", .expires = "lease",
                               .attempts = "tries", .error = "error", .pending = "pending",
                               .running = "running", .ok = "ready", .failed = "failed",
                               .max_attempts = 2};
  fm_lease a, b;
  CHECK(fm_lease_claim(st, &reqs, 1, NULL, 60, &a, &e) == FM_OK && a.outcome == FM_LEASE_CLAIMED);
  CHECK(fm_lease_claim(st, &reqs, 1, NULL, 60, &b, &e) == FM_OK && b.outcome == FM_LEASE_HELD);
  CHECK(fm_store_exec(st, "UPDATE reqs SET lease = '2000-01-01T00:00:00.000Z'", &e) == FM_OK);
  CHECK(fm_lease_claim(st, &reqs, 1, NULL, 60, &b, &e) == FM_OK && b.attempt == 2);
  CHECK(fm_lease_finish(st, &reqs, &a, 1, NULL, &e) == FM_ERR_CONFLICT); /* fenced by tries */
  CHECK(fm_store_exec(st, "UPDATE reqs SET lease = '2000-01-01T00:00:00.000Z'", &e) == FM_OK);
  CHECK(fm_lease_claim(st, &reqs, 1, NULL, 60, &b, &e) == FM_OK);
  CHECK(b.outcome == FM_LEASE_EXHAUSTED);
  CHECK(count(st, "SELECT count(*) FROM reqs WHERE status = 'failed'"
                  " AND error = 'gave up after 2 attempts' AND lease IS NULL") == 1);
  CHECK(fm_lease_claim(st, &reqs, 1, NULL, 60, &b, &e) == FM_OK && b.outcome == FM_LEASE_DONE);
  CHECK(fm_lease_reclaim_dead(st, &reqs, NULL, &e) == FM_ERR_ARG);
  fm_store_close(st);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/fm_lease.XXXXXX");
  if (!mkdtemp(dir)) return 1;
  FM_RUN(test_claim_renew_finish);
  FM_RUN(test_reclaim);
  FM_RUN(test_no_owner_and_attempts);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (!fm_test_failures && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  FM_TEST_EXIT();
}
