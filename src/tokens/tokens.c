/* tokens.c: API tokens for the HTTP service.
 *
 * A secret is 32 bytes from getrandom(2), shown once as "fm_" + 64 hex
 * digits; the table keeps only its SHA-256 (nettle), so checking a token is
 * one indexed lookup of the hash.  Creating and revoking write audit rows in
 * the same transaction. */
#include "fm_tokens.h"
#include "fm_store_sql.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const role_names[] = {NULL, "reader", "analyst", "admin"};

const char *fm_token_role_name(fm_token_role r) {
  return r >= FM_TOKEN_READER && r <= FM_TOKEN_ADMIN ? role_names[r] : "unknown";
}

int fm_token_role_parse(const char *s) {
  for (int i = FM_TOKEN_READER; i <= FM_TOKEN_ADMIN; i++)
    if (s && !strcmp(s, role_names[i])) return i;
  return -1;
}


/* SHA-256 of s as 64 hex digits into out[65]. */
static void sha256_hex(const char *s, char out[65]) { fm_sha256_hex(s, strlen(s), out); }

typedef struct create_ctx {
  const char *owner, *actor, *hash;
  fm_token_role role;
  int64_t id;
} create_ctx;

static fm_rc create_tx(fm_store *st, void *vctx, fm_error *err) {
  create_ctx *c = vctx;
  char now[32];
  fm_store_now(now, sizeof now);
  fm_rc rc = fm_store_run(
      st, "create token", NULL, err,
      "INSERT INTO api_tokens(owner, role, secret_sha256, created_at) VALUES (?1,?2,?3,?4)",
      "tttt", c->owner, fm_token_role_name(c->role), c->hash, now);
  if (rc) return rc;
  c->id = sqlite3_last_insert_rowid(fm_store_db(st));
  char key[32], after[256];
  snprintf(key, sizeof key, "%lld", (long long)c->id);
  /* The owner is in the row itself; the audit text holds only fixed words,
   * so it needs no JSON escaping. */
  snprintf(after, sizeof after, "{\"role\":\"%s\"}", fm_token_role_name(c->role));
  return fm_store_audit(st, c->actor, "token_create", "api_token", key, NULL, after, err);
}

fm_rc fm_store_token_create(fm_store *st, const char *owner, fm_token_role role,
                            const char *actor, int64_t *id,
                            char secret[FM_TOKEN_SECRET_LEN + 1], fm_error *err) {
  if (!st || !secret) return fm_error_set(err, FM_ERR_ARG, "token create: no store or buffer");
  secret[0] = '\0';
  if (!owner || !*owner || strlen(owner) > FM_TOKEN_OWNER_MAX)
    return fm_error_set(err, FM_ERR_ARG, "token owner must be 1..%d bytes",
                        FM_TOKEN_OWNER_MAX);
  if (role < FM_TOKEN_READER || role > FM_TOKEN_ADMIN)
    return fm_error_set(err, FM_ERR_ARG, "token role must be reader, analyst or admin");
  uint8_t raw[32];
  char sec[FM_TOKEN_SECRET_LEN + 1], hash[65];
  fm_rc rc = fm_random_bytes(raw, sizeof raw, err);
  if (rc) return rc;
  memcpy(sec, "fm_", 3);
  fm_hex(raw, sizeof raw, sec + 3);
  sha256_hex(sec, hash);
  create_ctx c = {owner, actor, hash, role, 0};
  rc = fm_store_tx(st, create_tx, &c, err);
  if (rc) return rc;
  memcpy(secret, sec, sizeof sec);
  if (id) *id = c.id;
  return FM_OK;
}

static void copy_col(sqlite3_stmt *s, int i, char *out, size_t n) {
  const unsigned char *t = sqlite3_column_text(s, i);
  snprintf(out, n, "%s", t ? (const char *)t : "");
}

static void row_info(sqlite3_stmt *s, fm_token_info *t) {
  t->id = sqlite3_column_int64(s, 0);
  copy_col(s, 1, t->owner, sizeof t->owner);
  const unsigned char *r = sqlite3_column_text(s, 2);
  int role = fm_token_role_parse((const char *)r);
  t->role = role < 0 ? FM_TOKEN_READER : (fm_token_role)role;
  copy_col(s, 3, t->created_at, sizeof t->created_at);
  copy_col(s, 4, t->revoked_at, sizeof t->revoked_at);
  copy_col(s, 5, t->last_used_at, sizeof t->last_used_at);
}

#define TOKEN_COLS "token_id, owner, role, created_at, revoked_at, last_used_at"

fm_rc fm_store_token_list(fm_store *st, fm_token_info **out, size_t *n, fm_error *err) {
  *out = NULL;
  *n = 0;
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(st, "SELECT " TOKEN_COLS " FROM api_tokens ORDER BY token_id",
                              &s, err);
  if (rc) return rc;
  fm_token_info *v = NULL;
  size_t cap = 0, len = 0;
  int step;
  while ((step = sqlite3_step(s)) == SQLITE_ROW) {
    if (fm_grow((void **)&v, &cap, len + 1, sizeof *v)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "token list: out of memory");
      break;
    }
    row_info(s, &v[len++]);
  }
  if (!rc && step != SQLITE_DONE) rc = fm_store_steperr(st, step, err, "list tokens");
  sqlite3_finalize(s);
  if (rc) {
    fm_free(v);
    return rc;
  }
  *out = v;
  *n = len;
  return FM_OK;
}

typedef struct revoke_ctx {
  int64_t id;
  const char *actor;
} revoke_ctx;

static fm_rc revoke_tx(fm_store *st, void *vctx, fm_error *err) {
  revoke_ctx *c = vctx;
  char now[32];
  fm_store_now(now, sizeof now);
  int changed;
  fm_rc rc = fm_store_run(
      st, "revoke token", &changed, err,
      "UPDATE api_tokens SET revoked_at = ?2 WHERE token_id = ?1 AND revoked_at IS NULL", "it",
      c->id, now);
  if (rc) return rc;
  if (changed != 1)
    return fm_error_set(err, FM_ERR_NOTFOUND, "no active token with id %lld",
                        (long long)c->id);
  char key[32];
  snprintf(key, sizeof key, "%lld", (long long)c->id);
  return fm_store_audit(st, c->actor, "token_revoke", "api_token", key, NULL,
                        "{\"revoked\":true}", err);
}

fm_rc fm_store_token_revoke(fm_store *st, int64_t id, const char *actor, fm_error *err) {
  revoke_ctx c = {id, actor};
  return fm_store_tx(st, revoke_tx, &c, err);
}

static fm_rc touch_tx(fm_store *st, void *vctx, fm_error *err) {
  const fm_token_info *t = vctx;
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(st, "UPDATE api_tokens SET last_used_at = ?2 WHERE token_id = ?1",
                              &s, err);
  if (rc) return rc;
  sqlite3_bind_int64(s, 1, t->id);
  sqlite3_bind_text(s, 2, t->last_used_at, -1, SQLITE_STATIC);
  int step = fm_store_step(st, s);
  sqlite3_finalize(s);
  return step == SQLITE_DONE ? FM_OK : fm_store_steperr(st, step, err, "touch token");
}

static const char *const token_check_sql =
    "SELECT " TOKEN_COLS " FROM api_tokens WHERE secret_sha256 = ?1";

fm_rc fm_store_token_check(fm_store *st, const char *secret, fm_token_info *out,
                           fm_error *err) {
  memset(out, 0, sizeof *out);
  if (!secret || strlen(secret) != FM_TOKEN_SECRET_LEN || strncmp(secret, "fm_", 3) != 0)
    return fm_error_set(err, FM_ERR_DENIED, "invalid or revoked token");
  char hash[65];
  sha256_hex(secret, hash);
  /* every authenticated request comes here: the statement is prepared once
   * per connection (the store owns it; reset, never finalized, here) */
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare_cached(st, token_check_sql, &s, err);
  if (rc) return rc;
  sqlite3_bind_text(s, 1, hash, -1, SQLITE_STATIC);
  int step = sqlite3_step(s);
  if (step == SQLITE_ROW) row_info(s, out);
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  if (step != SQLITE_ROW && step != SQLITE_DONE)
    return fm_store_steperr(st, step, err, "check token");
  if (step == SQLITE_DONE || out->revoked_at[0]) {
    memset(out, 0, sizeof *out);
    return fm_error_set(err, FM_ERR_DENIED, "invalid or revoked token");
  }
  /* Touch last_used_at when it is more than a minute old (ISO text compares
   * in time order).  A failure here (busy) must not deny a valid token. */
  /* The threshold is formatted once per second per thread, not per request
   * (this runs on every authenticated request). */
  static _Thread_local int64_t stale_sec = -1;
  static _Thread_local char stale[32];
  int64_t sec = (int64_t)time(NULL);
  if (sec != stale_sec) {
    fm_time_utc(sec - 60, "%Y-%m-%dT%H:%M:%S", stale, sizeof stale);
    stale_sec = sec;
  }
  if (strcmp(out->last_used_at, stale) < 0) {
    char now[32];
    fm_store_now(now, sizeof now);
    fm_token_info touched = *out;
    snprintf(touched.last_used_at, sizeof touched.last_used_at, "%s", now);
    if (fm_store_tx(st, touch_tx, &touched, NULL) == FM_OK)
      snprintf(out->last_used_at, sizeof out->last_used_at, "%s", now);
  }
  return FM_OK;
}

fm_rc fm_store_token_count_active(fm_store *st, int64_t *n, fm_error *err) {
  *n = 0;
  sqlite3_stmt *s;
  fm_rc rc =
      fm_store_prepare(st, "SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL", &s, err);
  if (rc) return rc;
  int step = sqlite3_step(s);
  if (step == SQLITE_ROW) *n = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  if (step != SQLITE_ROW) return fm_store_steperr(st, step, err, "count tokens");
  return FM_OK;
}
