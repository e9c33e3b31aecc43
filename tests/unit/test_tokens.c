/* test_tokens.c: API tokens in the store: create shows the secret once and
 * stores only its hash, check maps a secret to (owner, role), revoke denies
 * it afterwards and writes audit rows, bad input is refused clearly, and a
 * busy database during create re-runs the body without writing twice. */
#include "fm_store.h"
#include "fm_store_sql.h"
#include "fm_test.h"
#include "fm_test_util.h"

#include <stdlib.h>
#include <unistd.h>

static fm_store *open_db(const char *name) {
  fm_store *st = NULL;
  fm_error err;
  fm_error_init(&err);
  unlink(tmp(name));
  fm_store_opts o;
  fm_store_opts_default(&o);
  o.create = 1;
  CHECK(fm_store_open(tmp(name), &o, &st, &err) == FM_OK);
  return st;
}

static long count(fm_store *st, const char *sql) {
  sqlite3_stmt *s;
  long n = -1;
  if (sqlite3_prepare_v2(fm_store_db(st), sql, -1, &s, NULL) == SQLITE_OK &&
      sqlite3_step(s) == SQLITE_ROW)
    n = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  return n;
}

static void test_roles(void) {
  CHECK_STR(fm_token_role_name(FM_TOKEN_READER), "reader");
  CHECK_STR(fm_token_role_name(FM_TOKEN_ADMIN), "admin");
  CHECK(fm_token_role_parse("analyst") == FM_TOKEN_ANALYST);
  CHECK(fm_token_role_parse("root") == -1);
  CHECK(fm_token_role_parse(NULL) == -1);
}

static void test_lifecycle(void) {
  fm_store *st = open_db("tok.db");
  if (!st) return;
  fm_error err;
  fm_error_init(&err);
  char a[FM_TOKEN_SECRET_LEN + 1], b[FM_TOKEN_SECRET_LEN + 1];
  int64_t ida = 0, idb = 0;
  CHECK(fm_store_token_create(st, "alice", FM_TOKEN_ANALYST, "test", &ida, a, &err) == FM_OK);
  CHECK(fm_store_token_create(st, "bob", FM_TOKEN_READER, "test", &idb, b, &err) == FM_OK);
  CHECK(strlen(a) == FM_TOKEN_SECRET_LEN && !strncmp(a, "fm_", 3));
  CHECK(strcmp(a, b) != 0 && ida != idb);
  /* Only the hash is stored. */
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM api_tokens WHERE secret_sha256 LIKE '%%%s%%'",
           a + 3);
  CHECK(count(st, sql) == 0);
  CHECK(count(st, "SELECT count(*) FROM api_tokens WHERE length(secret_sha256) = 64") == 2);

  fm_token_info t;
  CHECK(fm_store_token_check(st, a, &t, &err) == FM_OK);
  CHECK_STR(t.owner, "alice");
  CHECK(t.role == FM_TOKEN_ANALYST && t.id == ida);
  CHECK(t.last_used_at[0] != '\0');
  /* Wrong, truncated, empty secrets are denied. */
  char wrong[FM_TOKEN_SECRET_LEN + 1];
  memcpy(wrong, a, sizeof wrong);
  wrong[10] = wrong[10] == '0' ? '1' : '0';
  CHECK(fm_store_token_check(st, wrong, &t, &err) == FM_ERR_DENIED);
  CHECK(fm_store_token_check(st, "fm_abc", &t, &err) == FM_ERR_DENIED);
  CHECK(fm_store_token_check(st, "", &t, &err) == FM_ERR_DENIED);
  CHECK(fm_store_token_check(st, NULL, &t, &err) == FM_ERR_DENIED);

  fm_token_info *list = NULL;
  size_t n = 0;
  CHECK(fm_store_token_list(st, &list, &n, &err) == FM_OK);
  CHECK(n == 2);
  if (n == 2) {
    CHECK_STR(list[0].owner, "alice");
    CHECK(list[1].role == FM_TOKEN_READER && list[1].revoked_at[0] == '\0');
  }
  fm_free(list);

  CHECK(fm_store_token_revoke(st, ida, "admin", &err) == FM_OK);
  CHECK(fm_store_token_check(st, a, &t, &err) == FM_ERR_DENIED);
  CHECK(fm_store_token_revoke(st, ida, "admin", &err) == FM_ERR_NOTFOUND);
  CHECK(fm_store_token_revoke(st, 9999, "admin", &err) == FM_ERR_NOTFOUND);
  CHECK(fm_store_token_check(st, b, &t, &err) == FM_OK);
  CHECK(count(st, "SELECT count(*) FROM audit_log WHERE entity = 'api_token'") == 3);
  CHECK(count(st, "SELECT count(*) FROM audit_log WHERE action = 'token_revoke'"
                  " AND actor = 'admin'") == 1);
  fm_store_close(st);
}

static void test_bad_input(void) {
  fm_store *st = open_db("bad.db");
  if (!st) return;
  fm_error err;
  fm_error_init(&err);
  char s[FM_TOKEN_SECRET_LEN + 1];
  char longname[FM_TOKEN_OWNER_MAX + 2];
  memset(longname, 'x', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  CHECK(fm_store_token_create(st, "", FM_TOKEN_READER, "t", NULL, s, &err) == FM_ERR_ARG);
  CHECK(s[0] == '\0');
  CHECK(fm_store_token_create(st, longname, FM_TOKEN_READER, "t", NULL, s, &err) == FM_ERR_ARG);
  fm_error_init(&err);
  CHECK(fm_store_token_create(st, "x", (fm_token_role)7, "t", NULL, s, &err) == FM_ERR_ARG);
  CHECK(strstr(err.msg, "role") != NULL);
  CHECK(count(st, "SELECT count(*) FROM api_tokens") == 0);
  /* SQLITE_BUSY inside the body: the transaction re-runs and the token is
   * written exactly once, with its one audit row. */
  fm_store_fault_busy_after(st, 0);
  fm_error_init(&err);
  CHECK(fm_store_token_create(st, "carol", FM_TOKEN_ADMIN, "t", NULL, s, &err) == FM_OK);
  fm_store_fault_busy_after(st, -1);
  CHECK(count(st, "SELECT count(*) FROM api_tokens") == 1);
  CHECK(count(st, "SELECT count(*) FROM audit_log WHERE action = 'token_create'") == 1);
  fm_store_close(st);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/fm_tokens_XXXXXX");
  if (!mkdtemp(dir)) return 1;
  FM_RUN(test_roles);
  FM_RUN(test_lifecycle);
  FM_RUN(test_bad_input);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd)) return 1;
  FM_TEST_EXIT();
}
