/* lease.c: claim, renew, finish and reclaim units of work (fm_lease.h).
 *
 * The statements are built from the owner's fm_lease_table (identifiers
 * quoted with %w) and bound with the values; each runs in fm_store_tx, so
 * a claim's read and its update are one BEGIN IMMEDIATE transaction (or
 * part of the caller's). */
#include "fm_lease.h"
#include "fm_store_sql.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_LEASE 600

void fm_lease_expiry(int lease_seconds, char out[32]) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  time_t t = tv.tv_sec + (lease_seconds > 0 ? lease_seconds : DEFAULT_LEASE);
  struct tm tm;
  gmtime_r(&t, &tm);
  char base[24];
  strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, 32, "%s.%03dZ", base, (int)(tv.tv_usec / 1000));
}

void fm_lease_owner_name(const char *prefix, char *out, size_t n) {
  static atomic_uint counter;
  char host[64] = "host";
  gethostname(host, sizeof host - 1);
  host[sizeof host - 1] = '\0';
  snprintf(out, n, "%s@%s:%ld:%u", prefix ? prefix : "runner", host, (long)getpid(),
           atomic_fetch_add(&counter, 1) + 1);
}

static void copy_col(char *dst, size_t n, sqlite3_stmt *s, int col) {
  const char *v = (const char *)sqlite3_column_text(s, col);
  snprintf(dst, n, "%s", v ? v : "");
}

/* ---- claim ------------------------------------------------------------------ */

typedef struct claim_ctx {
  const fm_lease_table *t;
  int64_t unit;
  const char *owner;
  int lease_seconds;
  fm_lease *l;
} claim_ctx;

/* Step a prepared UPDATE to its end and finalize it. */
static fm_rc run_update(fm_store *st, sqlite3_stmt *s, const char *what, fm_error *err) {
  int step = fm_store_step(st, s);
  sqlite3_finalize(s);
  if (step != SQLITE_DONE) return fm_store_steperr(st, step, err, what);
  return FM_OK;
}

/* Prepare sql, a statement built by sqlite3_mprintf from the table's
 * column names (NULL when that ran out of memory), and free it: the sql is
 * this function's, the statement the caller's (run_update or finalize). */
static fm_rc prepare_built(fm_store *st, char *sql, sqlite3_stmt **s, fm_error *err) {
  *s = NULL;
  if (!sql) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  fm_rc rc = fm_store_prepare(st, sql, s, err);
  sqlite3_free(sql);
  return rc;
}

/* Read the unit's state: status, owner, expiry, attempts. */
static fm_rc read_unit(fm_store *st, const claim_ctx *c, char status[32], char expires[32],
                       int *attempts, fm_error *err) {
  const fm_lease_table *t = c->t;
  char *sql = sqlite3_mprintf("SELECT \"%w\", %s%w%s, \"%w\", \"%w\" FROM \"%w\" WHERE rowid = ?1",
                              t->status, t->owner ? "\"" : "", t->owner ? t->owner : "NULL",
                              t->owner ? "\"" : "", t->expires, t->attempts, t->table);
  sqlite3_stmt *s;
  fm_rc rc = prepare_built(st, sql, &s, err);
  if (rc) return rc;
  sqlite3_bind_int64(s, 1, c->unit);
  int step = fm_store_step(st, s);
  if (step == SQLITE_ROW) {
    copy_col(status, 32, s, 0);
    copy_col(c->l->holder, sizeof c->l->holder, s, 1);
    copy_col(expires, 32, s, 2);
    *attempts = sqlite3_column_int(s, 3);
  } else if (step == SQLITE_DONE) {
    rc = fm_error_set(err, FM_ERR_NOTFOUND, "%s: no %s row %lld", fm_store_path(st),
                      t->table, (long long)c->unit);
  } else {
    rc = fm_store_steperr(st, step, err, "read a lease");
  }
  sqlite3_finalize(s);
  return rc;
}

/* Mark a unit that used up its attempts failed. */
static fm_rc give_up(fm_store *st, const claim_ctx *c, const char *now, int attempts,
                     fm_error *err) {
  const fm_lease_table *t = c->t;
  char msg[64];
  snprintf(msg, sizeof msg, "gave up after %d attempts", attempts);
  char *sql = sqlite3_mprintf(
      "UPDATE \"%w\" SET \"%w\" = ?2, \"%w\" = NULL%s%w%s%s%w%s%s%w%s WHERE rowid = ?1",
      t->table, t->status, t->expires, t->owner ? ", \"" : "", t->owner ? t->owner : "",
      t->owner ? "\" = NULL" : "", t->finished ? ", \"" : "", t->finished ? t->finished : "",
      t->finished ? "\" = ?3" : "", t->error ? ", \"" : "", t->error ? t->error : "",
      t->error ? "\" = ?4" : "");
  sqlite3_stmt *s;
  fm_rc rc = prepare_built(st, sql, &s, err);
  if (rc) return rc;
  sqlite3_bind_int64(s, 1, c->unit);
  sqlite3_bind_text(s, 2, t->failed, -1, SQLITE_STATIC);
  if (t->finished) sqlite3_bind_text(s, 3, now, -1, SQLITE_STATIC);
  if (t->error) sqlite3_bind_text(s, 4, msg, -1, SQLITE_TRANSIENT);
  return run_update(st, s, "give a unit up", err);
}

static fm_rc take(fm_store *st, const claim_ctx *c, const char *now, fm_error *err) {
  const fm_lease_table *t = c->t;
  char *sql = sqlite3_mprintf(
      "UPDATE \"%w\" SET \"%w\" = ?2, \"%w\" = ?3, \"%w\" = \"%w\" + 1%s%w%s%s%w%s%s%w%s%s%w%s"
      " WHERE rowid = ?1",
      t->table, t->status, t->expires, t->attempts, t->attempts, t->owner ? ", \"" : "",
      t->owner ? t->owner : "", t->owner ? "\" = ?4" : "", t->started ? ", \"" : "",
      t->started ? t->started : "", t->started ? "\" = ?5" : "", t->finished ? ", \"" : "",
      t->finished ? t->finished : "", t->finished ? "\" = NULL" : "", t->error ? ", \"" : "",
      t->error ? t->error : "", t->error ? "\" = NULL" : "");
  sqlite3_stmt *s;
  fm_rc rc = prepare_built(st, sql, &s, err);
  if (rc) return rc;
  sqlite3_bind_int64(s, 1, c->unit);
  sqlite3_bind_text(s, 2, t->running, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 3, c->l->expires, -1, SQLITE_STATIC);
  if (t->owner) sqlite3_bind_text(s, 4, c->owner, -1, SQLITE_STATIC);
  if (t->started) sqlite3_bind_text(s, 5, now, -1, SQLITE_STATIC);
  return run_update(st, s, "claim a unit", err);
}

static fm_rc claim_tx(fm_store *st, void *vctx, fm_error *err) {
  claim_ctx *c = vctx;
  const fm_lease_table *t = c->t;
  fm_lease *l = c->l;
  memset(l, 0, sizeof *l);
  l->unit = c->unit;
  snprintf(l->owner, sizeof l->owner, "%s", c->owner ? c->owner : "");
  char status[32], expires[32], now[32];
  int attempts = 0;
  fm_rc rc = read_unit(st, c, status, expires, &attempts, err);
  if (rc) return rc;
  fm_store_now(now, sizeof now);
  snprintf(l->status, sizeof l->status, "%s", status);
  l->attempt = attempts;
  int active = !strcmp(status, t->running) || !strcmp(status, t->pending);
  if (active && expires[0] && strcmp(expires, now) > 0) {
    l->outcome = FM_LEASE_HELD;
    snprintf(l->expires, sizeof l->expires, "%s", expires);
    return FM_OK;
  }
  l->holder[0] = '\0';
  if (!active && !(t->retry_failed && !strcmp(status, t->failed))) {
    l->outcome = FM_LEASE_DONE;
    return FM_OK;
  }
  if (t->max_attempts > 0 && attempts >= t->max_attempts) {
    l->outcome = FM_LEASE_EXHAUSTED;
    return give_up(st, c, now, attempts, err);
  }
  fm_lease_expiry(c->lease_seconds, l->expires);
  if ((rc = take(st, c, now, err))) return rc;
  l->outcome = FM_LEASE_CLAIMED;
  l->attempt = attempts + 1;
  snprintf(l->status, sizeof l->status, "%s", t->running);
  return FM_OK;
}

fm_rc fm_lease_claim(fm_store *st, const fm_lease_table *t, int64_t unit, const char *owner,
                     int lease_seconds, fm_lease *l, fm_error *err) {
  if (!st || !t || !l || (t->owner && (!owner || !*owner)))
    return fm_error_set(err, FM_ERR_ARG, "lease claim: no store, table or owner");
  claim_ctx c = {t, unit, owner, lease_seconds, l};
  return fm_store_tx(st, claim_tx, &c, err);
}

/* ---- renew and finish ------------------------------------------------------- */

typedef struct held_ctx {
  const fm_lease_table *t;
  const fm_lease *l;
  int renew, ok;
  const char *expires, *error;
} held_ctx;

/* The fence: the row is still running under this claim. */
static char *fenced(const char *set, const fm_lease_table *t) {
  return sqlite3_mprintf("UPDATE \"%w\" SET %s WHERE rowid = ?1 AND \"%w\" = ?2 AND \"%w\" = ?3"
                         "%s%w%s",
                         t->table, set, t->status, t->attempts, t->owner ? " AND \"" : "",
                         t->owner ? t->owner : "", t->owner ? "\" = ?4" : "");
}

static fm_rc held_tx(fm_store *st, void *vctx, fm_error *err) {
  held_ctx *h = vctx;
  const fm_lease_table *t = h->t;
  char *set;
  if (h->renew)
    set = sqlite3_mprintf("\"%w\" = ?5", t->expires);
  else
    set = sqlite3_mprintf("\"%w\" = ?5, \"%w\" = NULL%s%w%s%s%w%s%s%w%s", t->status, t->expires,
                          t->owner ? ", \"" : "", t->owner ? t->owner : "",
                          t->owner ? "\" = NULL" : "", t->finished ? ", \"" : "",
                          t->finished ? t->finished : "", t->finished ? "\" = ?6" : "",
                          t->error ? ", \"" : "", t->error ? t->error : "",
                          t->error ? "\" = ?7" : "");
  char *sql = set ? fenced(set, t) : NULL;
  sqlite3_free(set);
  sqlite3_stmt *s;
  fm_rc rc = prepare_built(st, sql, &s, err);
  if (rc) return rc;
  char now[32];
  fm_store_now(now, sizeof now);
  sqlite3_bind_int64(s, 1, h->l->unit);
  sqlite3_bind_text(s, 2, t->running, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 3, h->l->attempt);
  if (t->owner) sqlite3_bind_text(s, 4, h->l->owner, -1, SQLITE_STATIC);
  if (h->renew) {
    sqlite3_bind_text(s, 5, h->expires, -1, SQLITE_STATIC);
  } else {
    sqlite3_bind_text(s, 5, h->ok ? t->ok : t->failed, -1, SQLITE_STATIC);
    if (t->finished) sqlite3_bind_text(s, 6, now, -1, SQLITE_STATIC);
    if (t->error && h->error) sqlite3_bind_text(s, 7, h->error, -1, SQLITE_STATIC);
  }
  if ((rc = run_update(st, s, h->renew ? "renew a lease" : "finish a unit", err))) return rc;
  if (sqlite3_changes(fm_store_db(st)) != 1)
    return fm_error_set(err, FM_ERR_CONFLICT,
                        "%s: %s row %lld: lease lost to another runner (raise the lease "
                        "length above the time the work takes)",
                        fm_store_path(st), t->table, (long long)h->l->unit);
  return FM_OK;
}

fm_rc fm_lease_renew(fm_store *st, const fm_lease_table *t, fm_lease *l, int lease_seconds,
                     fm_error *err) {
  char expires[32];
  fm_lease_expiry(lease_seconds, expires);
  held_ctx h = {.t = t, .l = l, .renew = 1, .expires = expires};
  fm_rc rc = fm_store_tx(st, held_tx, &h, err);
  if (rc == FM_OK) snprintf(l->expires, sizeof l->expires, "%s", expires);
  return rc;
}

fm_rc fm_lease_finish(fm_store *st, const fm_lease_table *t, const fm_lease *l, int ok,
                      const char *error, fm_error *err) {
  held_ctx h = {.t = t, .l = l, .ok = ok, .error = error};
  return fm_store_tx(st, held_tx, &h, err);
}

/* ---- reclaim ------------------------------------------------------------------ */

typedef struct reclaim_ctx {
  const fm_lease_table *t;
  int all;
  size_t n;
} reclaim_ctx;

static fm_rc reclaim_tx(fm_store *st, void *vctx, fm_error *err) {
  reclaim_ctx *c = vctx;
  const fm_lease_table *t = c->t;
  c->n = 0;
  char *sql = sqlite3_mprintf(
      "UPDATE \"%w\" SET \"%w\" = ?1, \"%w\" = NULL%s%w%s WHERE \"%w\" = ?2%s%w%s", t->table,
      t->status, t->expires, t->owner ? ", \"" : "", t->owner ? t->owner : "",
      t->owner ? "\" = NULL" : "", t->status, c->all ? "" : " AND \"",
      c->all ? "" : t->expires, c->all ? "" : "\" < ?3");
  sqlite3_stmt *s;
  fm_rc rc = prepare_built(st, sql, &s, err);
  if (rc) return rc;
  char now[32];
  fm_store_now(now, sizeof now);
  sqlite3_bind_text(s, 1, t->pending, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, t->running, -1, SQLITE_STATIC);
  if (!c->all) sqlite3_bind_text(s, 3, now, -1, SQLITE_STATIC);
  if ((rc = run_update(st, s, "reclaim leases", err))) return rc;
  c->n = (size_t)sqlite3_changes(fm_store_db(st));
  return FM_OK;
}

fm_rc fm_lease_reclaim(fm_store *st, const fm_lease_table *t, int all, size_t *n,
                       fm_error *err) {
  reclaim_ctx c = {t, all, 0};
  fm_rc rc = fm_store_tx(st, reclaim_tx, &c, err);
  if (n) *n = rc ? 0 : c.n;
  return rc;
}

/* 1 when owner names a process of this host that is gone. */
static int owner_dead(const char *owner) {
  const char *at = strrchr(owner, '@');
  if (!at) return 0;
  char host[64] = "host";
  gethostname(host, sizeof host - 1);
  host[sizeof host - 1] = '\0';
  size_t hl = strlen(host);
  if (strncmp(at + 1, host, hl) != 0 || at[1 + hl] != ':') return 0;
  char *end;
  long pid = strtol(at + 2 + hl, &end, 10);
  if (pid <= 0 || *end != ':') return 0;
  if (pid == (long)getpid()) return 0; /* ours: alive by definition */
  return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

static fm_rc reclaim_dead_tx(fm_store *st, void *vctx, fm_error *err) {
  reclaim_ctx *c = vctx;
  const fm_lease_table *t = c->t;
  c->n = 0;
  char *sel = sqlite3_mprintf("SELECT rowid, \"%w\" FROM \"%w\" WHERE \"%w\" = ?1"
                              " AND \"%w\" IS NOT NULL",
                              t->owner, t->table, t->status, t->owner);
  char *upd = sqlite3_mprintf("UPDATE \"%w\" SET \"%w\" = ?3, \"%w\" = NULL, \"%w\" = NULL"
                              " WHERE rowid = ?1 AND \"%w\" = ?2",
                              t->table, t->status, t->owner, t->expires, t->owner);
  sqlite3_stmt *s = NULL, *u = NULL;
  fm_rc rc = sel && upd ? FM_OK : fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  if (!rc) rc = fm_store_prepare(st, sel, &s, err);
  if (!rc) rc = fm_store_prepare(st, upd, &u, err);
  if (!rc) sqlite3_bind_text(s, 1, t->running, -1, SQLITE_STATIC);
  int step = SQLITE_DONE;
  while (!rc && (step = fm_store_step(st, s)) == SQLITE_ROW) {
    const char *owner = (const char *)sqlite3_column_text(s, 1);
    if (!owner || !owner_dead(owner)) continue;
    sqlite3_bind_int64(u, 1, sqlite3_column_int64(s, 0));
    sqlite3_bind_text(u, 2, owner, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(u, 3, t->pending, -1, SQLITE_STATIC);
    int us = fm_store_step(st, u);
    sqlite3_reset(u);
    if (us != SQLITE_DONE) rc = fm_store_steperr(st, us, err, "release a lease");
    else c->n += (size_t)sqlite3_changes(fm_store_db(st));
  }
  if (!rc && step != SQLITE_DONE) rc = fm_store_steperr(st, step, err, "read leases");
  sqlite3_finalize(s);
  sqlite3_finalize(u);
  sqlite3_free(sel);
  sqlite3_free(upd);
  return rc;
}

fm_rc fm_lease_reclaim_dead(fm_store *st, const fm_lease_table *t, size_t *n, fm_error *err) {
  if (n) *n = 0;
  if (!t->owner)
    return fm_error_set(err, FM_ERR_ARG, "%s has no lease owner column", t->table);
  reclaim_ctx c = {t, 0, 0};
  fm_rc rc = fm_store_tx(st, reclaim_dead_tx, &c, err);
  if (n) *n = rc ? 0 : c.n;
  return rc;
}
