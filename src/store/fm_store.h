/* fm_store.h: curated mappings in SQLite, the store module's one public header.
 *
 * One database file holds the dictionaries and their fields, the model runs,
 * the candidates of batch runs, the mappings with their review status, the
 * review queue and an append-only audit log (schema in schema.c, described
 * in docs/store.md).  Every write goes through fm_store_tx, which runs a
 * callback inside BEGIN IMMEDIATE ... COMMIT and retries SQLITE_BUSY a
 * bounded number of times; every change to a mapping writes its audit row in
 * the same transaction.
 *
 * Threads: an fm_store is one SQLite connection; use one per thread.
 * Ownership: functions that return strings or arrays say who frees them;
 * borrowed pointers live until the next call on the same store. */
#ifndef FM_STORE_H
#define FM_STORE_H

#include <sqlite3.h>
#include <stdint.h>

#include "fm_import.h"
#include "fm_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The schema version this build writes (PRAGMA user_version).  Opening a
 * database with a higher version fails with FM_ERR_VERSION. */
#define FM_STORE_SCHEMA_VERSION 2

typedef struct fm_store fm_store;

typedef struct fm_store_opts {
  int readonly;        /* open read-only; no migrations (fails if behind) */
  int busy_timeout_ms; /* sqlite3_busy_timeout per attempt (default 2000) */
  int max_retries;     /* fm_store_tx attempts after SQLITE_BUSY (default 5) */
  int target_version;  /* migrate only up to this version (tests); 0 = latest */
} fm_store_opts;

void fm_store_opts_default(fm_store_opts *o);

/* Open (creating if needed) the database at path, set WAL, foreign keys and
 * the busy timeout, and apply pending migrations, each in its own
 * transaction.  opts may be NULL.  Caller owns *out (fm_store_close). */
fm_rc fm_store_open(const char *path, const fm_store_opts *opts, fm_store **out,
                    fm_error *err);
void fm_store_close(fm_store *st);

/* The underlying connection (borrowed), for modules that read the tables
 * directly (snapshot, provision).  Writes must still go through fm_store_tx. */
sqlite3 *fm_store_db(fm_store *st);
const char *fm_store_path(const fm_store *st); /* borrowed */
int fm_store_schema_version(fm_store *st);      /* PRAGMA user_version */

/* Translate the connection's last SQLite error into err, prefixed by what
 * was being done; returns FM_ERR_BUSY, FM_ERR_CONFLICT (constraint) or
 * FM_ERR_DB. */
fm_rc fm_store_sqlerr(fm_store *st, fm_error *err, const char *what);

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

/* Test hook: make the next n statements stepped through fm_store_step fail
 * as if SQLite returned SQLITE_BUSY (n < 0: off). */
void fm_store_fault_busy_after(fm_store *st, long n);

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

/* ---- dictionaries and fields ------------------------------------------- */

typedef enum fm_role { FM_ROLE_QUERY = 1, FM_ROLE_REFERENCE = 2 } fm_role;

/* What a dictionary import did. */
typedef struct fm_dict_result {
  int64_t dict_id;   /* the dictionaries row (new version, or the same one) */
  int version;       /* 1 for the first import of (vendor, source) */
  int unchanged;     /* same checksum as the latest version: nothing written */
  size_t added, changed, removed, kept; /* fields */
  size_t flagged;    /* mappings flagged because a field changed or went */
} fm_dict_result;

/* Import one dictionary (all fields of `fs` must share one vendor) under the
 * label `source` with role `role`, as one transaction.  A (vendor, source)
 * seen before gets a new version when its checksum differs: new fields are
 * added, changed ones updated (their mappings flagged "field_changed"),
 * fields of this dictionary that are gone are marked removed (their mappings
 * flagged "field_removed"); no mapping is ever deleted.  Repeated ids in fs:
 * the first wins.  actor names who did it in the audit log. */
fm_rc fm_store_import_fields(fm_store *st, const char *source, fm_role role,
                             const fm_fieldset *fs, const char *actor,
                             fm_dict_result *res, fm_error *err);

/* The field_id of (vendor, id), or -1 when unknown.  vendor may be NULL:
 * then the id must be unique among fields of that role (role 0: any). */
int64_t fm_store_field_id(fm_store *st, const char *vendor, const char *id,
                          fm_role role);

/* ---- mappings (the one write path for review decisions) ----------------- */

typedef enum fm_map_status {
  FM_MAP_PROPOSED = 1,
  FM_MAP_ACCEPTED,
  FM_MAP_REJECTED,
  FM_MAP_SUPERSEDED
} fm_map_status;

const char *fm_map_status_name(fm_map_status s); /* static "accepted" ... */
int fm_map_status_parse(const char *s);          /* -1 if unknown */

/* A decision about one (query field, reference field) pair. */
typedef struct fm_decision {
  int64_t query_field;  /* fields.field_id of a query-role field */
  int64_t ref_field;    /* fields.field_id of a reference-role field */
  fm_map_status status; /* PROPOSED, ACCEPTED or REJECTED */
  const char *actor;    /* who (analyst name, token owner, "batch:<run>") */
  const char *comment;  /* may be NULL */
  const char *origin;   /* "model", "analyst", "import" */
  double score;         /* model score, or NAN */
  int64_t batch_run;    /* batch run that proposed it, or 0 */
  /* Optimistic concurrency: when >= 0, the decision fails with
   * FM_ERR_CONFLICT unless the query field's accepted mapping id is this
   * value (0 = none accepted).  -1: no check. */
  int64_t expect_accepted;
} fm_decision;

/* Apply a decision inside the caller's transaction (or its own when none is
 * open): one row per (query, ref) pair keeps its stable key; accepting
 * supersedes the field's previously accepted mapping; rejecting an accepted
 * mapping leaves the field without one; accepting resolves the field's
 * review queue entry.  Writes the audit row (before/after).  *mapping_id
 * (optional) receives the row's id. */
fm_rc fm_store_decide(fm_store *st, const fm_decision *d, int64_t *mapping_id,
                      fm_error *err);

/* The stable surrogate key of a (query, reference) pair:
 * "m_" + 16 hex digits of a hash of "qvendor\tqid\trvendor\trid". */
void fm_store_mapping_key(const char *qvendor, const char *qid,
                          const char *rvendor, const char *rid, char out[20]);

/* ---- API tokens (tokens.c) ---------------------------------------------- */

/* What a token may do; each role includes the ones below it. */
typedef enum fm_token_role {
  FM_TOKEN_READER = 1, /* reads: lookup, fields, mappings */
  FM_TOKEN_ANALYST,    /* + review decisions */
  FM_TOKEN_ADMIN       /* + batch runs and token management */
} fm_token_role;

const char *fm_token_role_name(fm_token_role r); /* static "reader" ... */
int fm_token_role_parse(const char *s);          /* -1 if unknown */

/* A secret is "fm_" followed by 64 hex digits (32 bytes from getrandom). */
#define FM_TOKEN_SECRET_LEN 67
#define FM_TOKEN_OWNER_MAX 100

/* One token row; no secret (only its hash is stored).  Timestamps are ""
 * when unset. */
typedef struct fm_token_info {
  int64_t id;
  char owner[FM_TOKEN_OWNER_MAX + 1];
  fm_token_role role;
  char created_at[32], revoked_at[32], last_used_at[32];
} fm_token_info;

/* Create a token for owner (1..100 bytes of UTF-8) with role, recording
 * actor in the audit log.  The secret is written to secret (NUL-terminated)
 * and exists nowhere else: the database keeps its SHA-256.  *id (optional)
 * receives the token id. */
fm_rc fm_store_token_create(fm_store *st, const char *owner, fm_token_role role,
                            const char *actor, int64_t *id,
                            char secret[FM_TOKEN_SECRET_LEN + 1], fm_error *err);

/* All tokens, oldest first.  Caller owns *out (fm_free); *n its length. */
fm_rc fm_store_token_list(fm_store *st, fm_token_info **out, size_t *n,
                          fm_error *err);

/* Revoke token id (audit row by actor).  FM_ERR_NOTFOUND when there is no
 * such token or it is already revoked. */
fm_rc fm_store_token_revoke(fm_store *st, int64_t id, const char *actor,
                            fm_error *err);

/* Look a presented secret up.  FM_OK fills *out; FM_ERR_DENIED for an
 * unknown, malformed or revoked secret (the message does not say which).
 * Updates last_used_at at most once a minute per token, so checking on
 * every request does not turn reads into writes. */
fm_rc fm_store_token_check(fm_store *st, const char *secret, fm_token_info *out,
                           fm_error *err);

#ifdef __cplusplus
}
#endif
#endif /* FM_STORE_H */
