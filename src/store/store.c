/* store.c: the database kernel: opening the database, the migration
 * runner over the owners' registered schema steps, the transaction helper,
 * statement helpers, the audit log. */
#include "store_internal.h"

#include <stdarg.h>
#include <errno.h>
#include <pthread.h>
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

fm_rc fm_store_prepare_cached(fm_store *st, const char *sql, sqlite3_stmt **out,
                              fm_error *err) {
  *out = NULL;
  for (size_t i = 0; i < st->ncached; i++)
    if (!strcmp(st->cached[i].sql, sql)) {
      *out = st->cached[i].stmt;
      return FM_OK;
    }
  if (st->ncached == FM_STORE_MAX_CACHED)
    return fm_error_set(err, FM_ERR_INTERNAL, "%s: more than %d cached statements",
                        st->path, FM_STORE_MAX_CACHED);
  sqlite3_stmt *s = NULL;
  if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) !=
      SQLITE_OK) {
    sqlite3_finalize(s);
    return fm_store_sqlerr(st, err, "prepare");
  }
  st->cached[st->ncached].sql = sql;
  st->cached[st->ncached].stmt = s;
  st->ncached++;
  *out = s;
  return FM_OK;
}

/* Bind the arguments in ap from ?1 as `types` says (see fm_store_run); on a
 * bad type letter finalizes s and sets err naming `what`.  Shared by
 * fm_store_run and fm_store_query; s stays the caller's otherwise. */
static fm_rc bind_args(sqlite3_stmt *s, const char *what, fm_error *err,
                       const char *types, va_list ap) {
  for (int i = 0; types[i]; i++) {
    const char *t;
    switch (types[i]) {
    case 't':
      t = va_arg(ap, const char *);
      if (t) sqlite3_bind_text(s, i + 1, t, -1, SQLITE_TRANSIENT);
      break;
    case 'i': sqlite3_bind_int64(s, i + 1, va_arg(ap, int64_t)); break;
    case 'f': sqlite3_bind_double(s, i + 1, va_arg(ap, double)); break;
    default:
      sqlite3_finalize(s);
      return fm_error_set(err, FM_ERR_INTERNAL, "%s: bad parameter type '%c'", what, types[i]);
    }
  }
  return FM_OK;
}

fm_rc fm_store_run(fm_store *st, const char *what, int *changes, fm_error *err,
                   const char *sql, const char *types, ...) {
  if (changes) *changes = 0;
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(st, sql, &s, err);
  if (rc) return rc;
  va_list ap;
  va_start(ap, types);
  rc = bind_args(s, what, err, types, ap);
  va_end(ap);
  if (rc) return rc;
  int step = fm_store_step(st, s);
  sqlite3_finalize(s);
  if (step != SQLITE_DONE) return fm_store_steperr(st, step, err, what);
  if (changes) *changes = sqlite3_changes(st->db);
  return FM_OK;
}

fm_rc fm_store_query(fm_store *st, sqlite3_stmt **out, fm_error *err, const char *sql,
                     const char *types, ...) {
  fm_rc rc = fm_store_prepare(st, sql, out, err);
  if (rc) return rc;
  va_list ap;
  va_start(ap, types);
  rc = bind_args(*out, "query", err, types, ap);
  va_end(ap);
  if (rc) *out = NULL;
  return rc;
}

fm_rc fm_store_exec(fm_store *st, const char *sql, fm_error *err) {
  if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
    return fm_store_sqlerr(st, err, "exec");
  return FM_OK;
}

void fm_store_now(char *buf, size_t n) { fm_time_now_iso(buf, n); }

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

/* The registered step arrays.  Registration happens in load-time
 * constructors (one thread, before main), so no lock; the runner only
 * reads.  32 owners is far more than the library has. */
enum { MAX_SCHEMA_SETS = 32, MAX_STEPS_PER_VERSION = 32 };
static struct {
  const fm_schema_step *steps;
  size_t n;
} schema_sets[MAX_SCHEMA_SETS];
static size_t nschema_sets;
static int schema_overflow; /* a registration found no room: fail every open */

void fm_store_schema_register(const fm_schema_step *steps, size_t n) {
  if (nschema_sets == MAX_SCHEMA_SETS) {
    schema_overflow = 1;
    return;
  }
  schema_sets[nschema_sets].steps = steps;
  schema_sets[nschema_sets].n = n;
  nschema_sets++;
}

/* The steps of version v in seq order into out (at most MAX_STEPS_PER_VERSION);
 * returns how many, or -1 when there are more. */
static int version_steps(int v, const fm_schema_step **out) {
  int n = 0;
  for (size_t i = 0; i < nschema_sets; i++)
    for (size_t j = 0; j < schema_sets[i].n; j++) {
      const fm_schema_step *step = &schema_sets[i].steps[j];
      if (step->version != v) continue;
      if (n == MAX_STEPS_PER_VERSION) return -1;
      int k = n++;
      for (; k > 0 && out[k - 1]->seq > step->seq; k--) out[k] = out[k - 1];
      out[k] = step;
    }
  return n;
}

/* SQLite's process-wide settings, made once before its first use.  Memory
 * statistics off: with them on, every allocation of every connection takes
 * one global mutex, which serialised the server's workers on the per-request
 * token and curated-mapping reads (nothing here reads sqlite3_memory_used).
 * sqlite3_config fails harmlessly with SQLITE_MISUSE when the host program
 * initialised SQLite first; the setting is then SQLite's default. */
static void sqlite_settings(void) {
  (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/* Every version up to FM_STORE_SCHEMA_VERSION has at least one step, and
 * none has two steps with the same seq (their order would be undefined). */
static fm_rc check_registry(const char *path, fm_error *err) {
  if (schema_overflow)
    return fm_error_set(err, FM_ERR_INTERNAL, "%s: more than %d schema owners registered",
                        path, MAX_SCHEMA_SETS);
  for (int v = 1; v <= FM_STORE_SCHEMA_VERSION; v++) {
    const fm_schema_step *steps[MAX_STEPS_PER_VERSION];
    int n = version_steps(v, steps);
    if (n <= 0)
      return fm_error_set(err, FM_ERR_INTERNAL,
                          n < 0 ? "%s: schema version %d has more than 32 steps"
                                : "%s: schema version %d has no registered step (an owner "
                                  "module is missing from the library)",
                          path, v);
    for (int i = 1; i < n; i++)
      if (steps[i]->seq == steps[i - 1]->seq)
        return fm_error_set(err, FM_ERR_INTERNAL,
                            "%s: schema version %d: steps of %s and %s share seq %d", path,
                            v, steps[i - 1]->owner, steps[i]->owner, steps[i]->seq);
  }
  return FM_OK;
}

/* Apply version v's steps and bump user_version; inside BEGIN IMMEDIATE. */
static fm_rc apply_version(fm_store *st, int v, fm_error *err) {
  const fm_schema_step *steps[MAX_STEPS_PER_VERSION];
  int n = version_steps(v, steps);
  for (int i = 0; i < n; i++)
    if (sqlite3_exec(st->db, steps[i]->sql, NULL, NULL, NULL) != SQLITE_OK) {
      char what[96];
      snprintf(what, sizeof what, "migration (%s)", steps[i]->owner);
      return fm_store_sqlerr(st, err, what);
    }
  char bump[64];
  snprintf(bump, sizeof bump, "PRAGMA user_version = %d", v);
  if (sqlite3_exec(st->db, bump, NULL, NULL, NULL) != SQLITE_OK)
    return fm_store_sqlerr(st, err, "migration");
  return FM_OK;
}

static fm_rc migrate(fm_store *st, int target, fm_error *err) {
  int have = fm_store_schema_version(st);
  if (have < 0) return fm_store_sqlerr(st, err, "read schema version");
  if (have > FM_STORE_SCHEMA_VERSION)
    return fm_error_set(err, FM_ERR_VERSION,
                        "%s: database schema version %d is newer than this fieldmatch "
                        "understands (%d); use a newer fieldmatch, never an older one",
                        st->path, have, FM_STORE_SCHEMA_VERSION);
  for (int v = have + 1; v <= target; v++) {
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
      return fm_store_sqlerr(st, err, "begin migration");
    /* Re-read inside the write lock: another process may have migrated. */
    int now = fm_store_schema_version(st);
    if (now >= v) {
      sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
      continue;
    }
    if (apply_version(st, v, err)) {
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
  fm_rc rc = FM_OK;
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
  static pthread_once_t settings_once = PTHREAD_ONCE_INIT;
  pthread_once(&settings_once, sqlite_settings);
  if ((rc = check_registry(path, err))) goto fail;
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
  for (size_t i = 0; i < st->ncached; i++) sqlite3_finalize(st->cached[i].stmt);
  if (st->db) sqlite3_close_v2(st->db);
  fm_free(st->path);
  fm_free(st);
}

/* ---- audit log ---------------------------------------------------------- */

fm_rc fm_store_audit(fm_store *st, const char *actor, const char *action,
                     const char *entity, const char *entity_key,
                     const char *before_json, const char *after_json,
                     fm_error *err) {
  char now[32];
  fm_store_now(now, sizeof now);
  return fm_store_run(st, "write audit row", NULL, err,
                      "INSERT INTO audit_log(at, actor, action, entity, entity_key, before, after)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                      "ttttttt", now, actor && *actor ? actor : "unknown", action, entity,
                      entity_key ? entity_key : "", before_json, after_json);
}
