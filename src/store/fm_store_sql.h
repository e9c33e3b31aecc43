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

/* The underlying connection (borrowed), for modules that read the tables
 * directly (snapshot, provision).  Writes must still go through fm_store_tx. */
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

#ifdef __cplusplus
}
#endif

#endif
