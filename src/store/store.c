/* store.c: opening the database, migrations, the transaction helper, the
 * audit log. */
#include "store_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

void fm_store_opts_default(fm_store_opts *o) {
  memset(o, 0, sizeof *o);
  o->busy_timeout_ms = 2000;
  o->max_retries = 5;
  o->create = 0; /* open, never create, unless asked */
}

sqlite3 *fm_store_db(fm_store *st) { return st->db; }
const char *fm_store_path(const fm_store *st) { return st->path; }

fm_rc fm_store_sqlerr(fm_store *st, fm_error *err, const char *what) {
  int ec = st && st->db ? sqlite3_extended_errcode(st->db) : SQLITE_ERROR;
  const char *msg = st && st->db ? sqlite3_errmsg(st->db) : "no database";
  fm_rc rc = FM_ERR_DB;
  if ((ec & 0xff) == SQLITE_BUSY || (ec & 0xff) == SQLITE_LOCKED) rc = FM_ERR_BUSY;
  else if ((ec & 0xff) == SQLITE_CONSTRAINT) rc = FM_ERR_CONFLICT;
  else if ((ec & 0xff) == SQLITE_NOMEM) rc = FM_ERR_NOMEM;
  return fm_error_set(err, rc, "%s: %s: %s", st && st->path ? st->path : "database",
                      what, msg);
}

fm_rc fm_store_steperr(fm_store *st, int step, fm_error *err, const char *what) {
  if (step == SQLITE_BUSY || step == SQLITE_LOCKED)
    return fm_error_set(err, FM_ERR_BUSY, "%s: %s: database is locked", st->path, what);
  return fm_store_sqlerr(st, err, what);
}

void fm_store_fault_busy_after(fm_store *st, long n) { st->fault_busy = n; }

int fm_store_step(fm_store *st, sqlite3_stmt *stmt) {
  if (st->fault_busy >= 0) {
    if (st->fault_busy == 0) {
      st->fault_busy = -1;
      return SQLITE_BUSY;
    }
    st->fault_busy--;
  }
  return sqlite3_step(stmt);
}

fm_rc fm_store_prepare(fm_store *st, const char *sql, sqlite3_stmt **out,
                       fm_error *err) {
  *out = NULL;
  if (sqlite3_prepare_v2(st->db, sql, -1, out, NULL) != SQLITE_OK) {
    sqlite3_finalize(*out);
    *out = NULL;
    return fm_store_sqlerr(st, err, "prepare");
  }
  return FM_OK;
}

fm_rc fm_store_exec(fm_store *st, const char *sql, fm_error *err) {
  if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
    return fm_store_sqlerr(st, err, "exec");
  return FM_OK;
}

void fm_store_now(char *buf, size_t n) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  char base[24];
  strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
  /* tv_nsec is in [0, 1e9); the % 1000 only shows gcc -O3 the width */
  snprintf(buf, n, "%s.%03uZ", base, (unsigned)(ts.tv_nsec / 1000000L) % 1000u);
}

int fm_store_schema_version(fm_store *st) {
  sqlite3_stmt *s;
  int v = -1;
  if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
    return -1;
  if (sqlite3_step(s) == SQLITE_ROW) v = sqlite3_column_int(s, 0);
  sqlite3_finalize(s);
  return v;
}

/* ---- transactions ------------------------------------------------------- */

static void pause_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int is_busy(fm_store *st, fm_rc rc) {
  if (rc == FM_ERR_BUSY) return 1;
  int ec = sqlite3_errcode(st->db) & 0xff;
  return rc == FM_ERR_DB && (ec == SQLITE_BUSY || ec == SQLITE_LOCKED);
}

fm_rc fm_store_tx(fm_store *st, fm_store_tx_fn fn, void *ctx, fm_error *err) {
  if (st->tx_depth > 0) return fn(st, ctx, err); /* nested: join the outer one */
  int attempts = st->opts.max_retries < 0 ? 0 : st->opts.max_retries;
  for (int attempt = 0;; attempt++) {
    fm_error local;
    fm_error_init(&local);
    fm_rc rc = FM_OK;
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
      rc = fm_store_sqlerr(st, &local, "begin transaction");
    if (rc == FM_OK) {
      st->tx_depth++;
      rc = fn(st, ctx, &local);
      st->tx_depth--;
      if (rc == FM_OK && sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = fm_store_sqlerr(st, &local, "commit");
      if (rc != FM_OK && !sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    }
    if (rc == FM_OK) return FM_OK;
    if (!is_busy(st, rc) || attempt >= attempts) {
      if (is_busy(st, rc))
        return fm_error_set(err, FM_ERR_BUSY,
                            "%s: database is locked by another writer (gave up after "
                            "%d attempts): %s",
                            st->path, attempt + 1, local.msg);
      if (err) {
        err->rc = rc;
        if (!err->msg[0]) snprintf(err->msg, sizeof err->msg, "%s", local.msg);
      }
      return rc;
    }
    pause_ms(10 << (attempt < 6 ? attempt : 6));
  }
}

fm_rc fm_store_read_begin(fm_store *st, int *began, fm_error *err) {
  *began = 0;
  if (!sqlite3_get_autocommit(st->db)) return FM_OK;
  if (sqlite3_exec(st->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
    return fm_store_sqlerr(st, err, "begin read");
  *began = 1;
  return FM_OK;
}

void fm_store_read_end(fm_store *st, int began) {
  if (began && !sqlite3_get_autocommit(st->db))
    sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
}

/* ---- migrations ----------------------------------------------------------- */

static fm_rc migrate(fm_store *st, int target, fm_error *err) {
  int have = fm_store_schema_version(st);
  if (have < 0) return fm_store_sqlerr(st, err, "read schema version");
  if (have > FM_STORE_SCHEMA_VERSION)
    return fm_error_set(err, FM_ERR_VERSION,
                        "%s: database schema version %d is newer than this fieldmatch "
                        "understands (%d); use a newer fieldmatch, never an older one",
                        st->path, have, FM_STORE_SCHEMA_VERSION);
  for (int v = have + 1; v <= target; v++) {
    char bump[64];
    snprintf(bump, sizeof bump, "PRAGMA user_version = %d", v);
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
      return fm_store_sqlerr(st, err, "begin migration");
    /* Re-read inside the write lock: another process may have migrated. */
    int now = fm_store_schema_version(st);
    if (now >= v) {
      sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
      continue;
    }
    if (sqlite3_exec(st->db, fm_store_migration(v), NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(st->db, bump, NULL, NULL, NULL) != SQLITE_OK) {
      fm_store_sqlerr(st, err, "migration");
      sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
      fm_error_prefix(err, "schema migration %d -> %d failed", v - 1, v);
      return err ? err->rc : FM_ERR_DB;
    }
    if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
      fm_rc rc = fm_store_sqlerr(st, err, "commit migration");
      sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
      return rc;
    }
  }
  return FM_OK;
}

fm_rc fm_store_open(const char *path, const fm_store_opts *opts, fm_store **out,
                    fm_error *err) {
  *out = NULL;
  if (!path || !*path) return fm_error_set(err, FM_ERR_ARG, "no database path given");
  fm_store *st = fm_calloc(1, sizeof *st);
  if (!st) return fm_error_set(err, FM_ERR_NOMEM, "out of memory opening %s", path);
  if (opts) st->opts = *opts;
  else fm_store_opts_default(&st->opts);
  if (st->opts.busy_timeout_ms <= 0) st->opts.busy_timeout_ms = 2000;
  st->fault_busy = -1;
  st->path = fm_strdup(path);
  if (!st->path) {
    fm_free(st);
    return fm_error_set(err, FM_ERR_NOMEM, "out of memory opening %s", path);
  }
  /* Nothing is created by accident: without opts.create a missing file is
   * an error before SQLite sees the path, and SQLite itself is not allowed
   * to create one either (so a file removed after the stat is not re-made).
   * Other stat errors (permissions, a file in the way) are left to SQLite,
   * whose message names them. */
  int create = st->opts.create && !st->opts.readonly;
  struct stat sb;
  if (!create && stat(path, &sb) != 0 && errno == ENOENT) {
    fm_rc nf = fm_error_set(err, FM_ERR_NOTFOUND,
                            "no database at '%s' (create one with 'fieldmatch import')", path);
    fm_store_close(st);
    return nf;
  }
  int flags = st->opts.readonly ? SQLITE_OPEN_READONLY
                                : SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
  flags |= SQLITE_OPEN_NOMUTEX; /* one connection per thread */
  fm_rc rc = FM_OK;
  if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK) {
    rc = fm_store_sqlerr(st, err, "open");
    goto fail;
  }
  sqlite3_extended_result_codes(st->db, 1);
  sqlite3_busy_timeout(st->db, st->opts.busy_timeout_ms);
  if ((rc = fm_store_exec(st, "PRAGMA foreign_keys = ON", err))) goto fail;
  if (!st->opts.readonly) {
    sqlite3_stmt *s;
    if ((rc = fm_store_prepare(st, "PRAGMA journal_mode = WAL", &s, err))) goto fail;
    int step = sqlite3_step(s);
    int wal = step == SQLITE_ROW &&
              !strcmp((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    if (!wal) {
      rc = step == SQLITE_ROW ? fm_error_set(err, FM_ERR_DB,
                                             "%s: cannot switch to WAL journal mode", path)
                              : fm_store_sqlerr(st, err, "set WAL journal mode");
      goto fail;
    }
    if ((rc = fm_store_exec(st, "PRAGMA synchronous = FULL", err))) goto fail;
  }
  int target = st->opts.target_version > 0 ? st->opts.target_version
                                           : FM_STORE_SCHEMA_VERSION;
  if (target > FM_STORE_SCHEMA_VERSION) target = FM_STORE_SCHEMA_VERSION;
  if (st->opts.readonly) {
    int have = fm_store_schema_version(st);
    if (have < 0) {
      rc = fm_store_sqlerr(st, err, "read schema version");
      goto fail;
    }
    if (have != FM_STORE_SCHEMA_VERSION) {
      rc = fm_error_set(err, have > FM_STORE_SCHEMA_VERSION ? FM_ERR_VERSION : FM_ERR_ARG,
                        "%s: schema version %d, this fieldmatch needs %d%s", path, have,
                        FM_STORE_SCHEMA_VERSION,
                        have < FM_STORE_SCHEMA_VERSION
                            ? " (open it read-write once to migrate)"
                            : "");
      goto fail;
    }
  } else if ((rc = migrate(st, target, err))) {
    goto fail;
  }
  *out = st;
  return FM_OK;
fail:
  fm_store_close(st);
  return rc;
}

void fm_store_close(fm_store *st) {
  if (!st) return;
  sqlite3_finalize(st->has_accepted);
  if (st->db) sqlite3_close_v2(st->db);
  fm_free(st->path);
  fm_free(st);
}

/* ---- audit log ---------------------------------------------------------- */

fm_rc fm_store_audit(fm_store *st, const char *actor, const char *action,
                     const char *entity, const char *entity_key,
                     const char *before_json, const char *after_json,
                     fm_error *err) {
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(
      st,
      "INSERT INTO audit_log(at, actor, action, entity, entity_key, before, after)"
      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
      &s, err);
  if (rc) return rc;
  char now[32];
  fm_store_now(now, sizeof now);
  sqlite3_bind_text(s, 1, now, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s, 2, actor && *actor ? actor : "unknown", -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 3, action, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 4, entity, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 5, entity_key ? entity_key : "", -1, SQLITE_STATIC);
  if (before_json) sqlite3_bind_text(s, 6, before_json, -1, SQLITE_STATIC);
  if (after_json) sqlite3_bind_text(s, 7, after_json, -1, SQLITE_STATIC);
  int step = fm_store_step(st, s);
  sqlite3_finalize(s);
  if (step != SQLITE_DONE) return fm_store_steperr(st, step, err, "write audit row");
  return FM_OK;
}
