/* fm_store.h: the database kernel's public header (src/store).
 *
 * One SQLite file holds every table of fieldmatch; each table has one owning
 * module that holds its schema and all its SQL (docs/architecture.md has the
 * table): src/fields (fm_fields.h), src/review (fm_review.h), src/tokens
 * (fm_tokens.h), the batch runs, snapshots and provisioning.  The kernel
 * opens the connection (WAL, foreign keys, busy timeout), runs the schema
 * migrations the owners register (fm_store_sql.h), and runs every write
 * through fm_store_tx: a callback inside BEGIN IMMEDIATE ... COMMIT that
 * retries SQLITE_BUSY a bounded number of times.  It owns the append-only
 * audit_log, which every owner writes in the transaction of the change it
 * records.  Owners reach SQLite through fm_store_sql.h; this header exposes
 * no SQLite type and no raw handle.
 *
 * Threads: an fm_store is one SQLite connection; use one per thread.
 * Ownership: functions that return strings or arrays say who frees them;
 * borrowed pointers live until the next call on the same store. */
#ifndef FM_STORE_H
#define FM_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "fm_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The schema version this build writes (PRAGMA user_version).  Opening a
 * database with a higher version fails with FM_ERR_VERSION. */
#define FM_STORE_SCHEMA_VERSION 7

typedef struct fm_store fm_store;

typedef struct fm_store_opts {
  int readonly;        /* open read-only; no migrations (fails if behind) */
  int busy_timeout_ms; /* sqlite3_busy_timeout per attempt (default 2000) */
  int max_retries;     /* fm_store_tx attempts after SQLITE_BUSY (default 5) */
  int target_version;  /* migrate only up to this version (tests); 0 = latest */
  int create;          /* create the database file when it does not exist;
                          default 0 (never with readonly) */
} fm_store_opts;

void fm_store_opts_default(fm_store_opts *o);

/* Open the database at path, set WAL, foreign keys and the busy timeout,
 * and apply pending migrations, each in its own transaction.  opts may be
 * NULL (the defaults).  Unless opts->create, a path with no file fails with
 * FM_ERR_NOTFOUND ("no database at 'PATH' (create one with 'fieldmatch
 * import')") and creates nothing, not even -wal/-shm files.  Caller owns
 * *out (fm_store_close). */
fm_rc fm_store_open(const char *path, const fm_store_opts *opts, fm_store **out,
                    fm_error *err);
void fm_store_close(fm_store *st);

const char *fm_store_path(const fm_store *st); /* borrowed */
int fm_store_schema_version(fm_store *st);      /* PRAGMA user_version */

/* ---- transactions ------------------------------------------------------ */

/* The body of a transaction.  It may run more than once (after SQLITE_BUSY),
 * so it must not keep state across attempts except through ctx it resets. */
typedef fm_rc (*fm_store_tx_fn)(fm_store *st, void *ctx, fm_error *err);

/* Run fn inside BEGIN IMMEDIATE ... COMMIT.  fn returning non-FM_OK rolls
 * back and returns that code.  SQLITE_BUSY (at BEGIN, inside fn, or at
 * COMMIT) rolls back and retries with a growing pause, at most max_retries
 * times, then fails with FM_ERR_BUSY naming the database.  Nested calls run
 * fn inside the outer transaction. */
fm_rc fm_store_tx(fm_store *st, fm_store_tx_fn fn, void *ctx, fm_error *err);

/* A read snapshot for reads that take several statements: BEGIN (deferred:
 * no write lock) unless a transaction is already open, in which case the
 * reads join it and *began stays 0.  Pair with fm_store_read_end(st, began),
 * which commits only what it began. */
fm_rc fm_store_read_begin(fm_store *st, int *began, fm_error *err);
void fm_store_read_end(fm_store *st, int began);

/* Test hook: make the next n statements stepped through fm_store_step fail
 * as if SQLite returned SQLITE_BUSY (n < 0: off). */
void fm_store_fault_busy_after(fm_store *st, long n);

/* Current UTC time as "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf (>= 32 bytes). */
void fm_store_now(char *buf, size_t n);

/* ---- audit log ---------------------------------------------------------- */

/* Append one audit row; call inside the transaction of the change it
 * records.  before/after are JSON texts or NULL.  The table rejects UPDATE
 * and DELETE (triggers). */
fm_rc fm_store_audit(fm_store *st, const char *actor, const char *action,
                     const char *entity, const char *entity_key,
                     const char *before_json, const char *after_json,
                     fm_error *err);


/* ---- the table owners' headers (transition) ------------------------------
 * The kernel above knows no table but audit_log.  Front ends that include
 * only fm_store.h (src/cli today) still see every owner's functions through
 * these includes; the library's own modules are compiled with
 * FM_STORE_KERNEL_ONLY and include the owners they use by name, so the
 * build catches an upward include.  New code includes the owner's header. */
#ifndef FM_STORE_KERNEL_ONLY
#include "fm_fields.h"
#include "fm_review.h"
#include "fm_tokens.h"
#endif

#ifdef __cplusplus
}
#endif
#endif /* FM_STORE_H */
