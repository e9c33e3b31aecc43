/* fm_store_sql.h: the store kernel's SQL interface, for the modules that
 * own tables (they hold their schema and all their SQL) and for nobody else:
 * front ends (src/http, src/cli) and the layers below the store never
 * include it.  fm_store.h, the public header, exposes no SQLite type.
 *
 * Ownership: statements from fm_store_prepare belong to the caller
 * (sqlite3_finalize); the connection from fm_store_db is borrowed and lives
 * as long as the store. */
#ifndef FM_STORE_SQL_H
#define FM_STORE_SQL_H

#include <sqlite3.h>

#include "fm_store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The underlying connection (borrowed), for the table owners.  Writes must
 * still go through fm_store_tx. */
sqlite3 *fm_store_db(fm_store *st);

/* Translate the connection's last SQLite error into err, prefixed by what
 * was being done; returns FM_ERR_BUSY, FM_ERR_CONFLICT (constraint) or
 * FM_ERR_DB. */
fm_rc fm_store_sqlerr(fm_store *st, fm_error *err, const char *what);

/* sqlite3_step with the fault hook; use it for every write statement. */
int fm_store_step(fm_store *st, sqlite3_stmt *stmt);

/* Error for a step result that was not SQLITE_DONE/ROW: FM_ERR_BUSY for
 * SQLITE_BUSY (real or injected), else as fm_store_sqlerr. */
fm_rc fm_store_steperr(fm_store *st, int step, fm_error *err, const char *what);

/* Prepare a statement or set err; caller owns *out (sqlite3_finalize). */
fm_rc fm_store_prepare(fm_store *st, const char *sql, sqlite3_stmt **out,
                       fm_error *err);

/* Execute SQL without results (no parameters). */
fm_rc fm_store_exec(fm_store *st, const char *sql, fm_error *err);

/* One write statement in one call: prepare sql, bind the arguments that
 * follow from ?1 as `types` says, one letter each ('t' const char * text,
 * NULL binds NULL; 'i' int64_t, pass an int64_t; 'f' double), step it
 * through fm_store_step (the busy fault hook applies) to SQLITE_DONE and
 * finalize it.  *changes (optional) receives sqlite3_changes.  Errors name
 * `what` (fm_store_steperr); an unknown type letter is FM_ERR_INTERNAL. */
fm_rc fm_store_run(fm_store *st, const char *what, int *changes, fm_error *err,
                   const char *sql, const char *types, ...);

/* Prepare sql and bind the arguments that follow from ?1 as `types` says
 * (the letters of fm_store_run: 't' text, copied, NULL binds NULL; 'i'
 * int64_t; 'f' double).  The caller owns *out (steps it, sqlite3_finalize);
 * on error *out is NULL.  The shared opening of every one-off query. */
fm_rc fm_store_query(fm_store *st, sqlite3_stmt **out, fm_error *err, const char *sql,
                     const char *types, ...);

/* A statement for a hot path, prepared once per store (persistent) and
 * finalized by fm_store_close; sql is the cache key (compared as text).
 * The statement stays the store's: the caller binds, steps, then
 * sqlite3_reset and sqlite3_clear_bindings it before returning. */
fm_rc fm_store_prepare_cached(fm_store *st, const char *sql, sqlite3_stmt **out,
                              fm_error *err);

/* ---- schema migrations ----------------------------------------------------
 * The schema is a sequence of versions 1..FM_STORE_SCHEMA_VERSION (PRAGMA
 * user_version).  Each owner registers the steps that create or change its
 * own tables; the kernel applies, for each pending version, all the steps of
 * that version in ascending seq order, in ONE transaction together with the
 * user_version bump.  seq orders the steps of a version across owners, so a
 * new database gets its tables in the same order (and the same
 * sqlite_master) whichever order the owners register in.  Never edit a step
 * that has shipped: add one with the next version (and bump
 * FM_STORE_SCHEMA_VERSION).  Opening fails with FM_ERR_INTERNAL, naming the
 * version, when a version up to FM_STORE_SCHEMA_VERSION has no step. */

/* Timestamps are UTC ISO-8601 with milliseconds, so text order is time
 * order and "changed since" filters are string comparisons. */
#define FM_SQL_NOW "(strftime('%Y-%m-%dT%H:%M:%fZ','now'))"

typedef struct fm_schema_step {
  int version;       /* the user_version this step is part of, 1-based */
  int seq;           /* order among the steps of that version (ascending) */
  const char *owner; /* the owning module, for messages ("review") */
  const char *sql;   /* one or more statements, no parameters */
} fm_schema_step;

/* Register n steps (static storage; not copied).  Call from a load-time
 * constructor: FM_STORE_SCHEMA(name, steps) below defines one. */
void fm_store_schema_register(const fm_schema_step *steps, size_t n);

/* Define a constructor that registers the array `steps` when the library is
 * loaded, before any fm_store_open.  name must be unique in the library. */
#define FM_STORE_SCHEMA(name, steps)                                              \
  __attribute__((constructor)) static void fm_schema_register_##name(void) {    \
    fm_store_schema_register(steps, sizeof steps / sizeof steps[0]);             \
  }

#ifdef __cplusplus
}
#endif

#endif
