/* fm_lease.h: the one lease/claim/finish mechanism of the workflow layer,
 * the lease module's one public header.  Batch parts (src/jobs), snapshot
 * partitions (src/snapshot) and provisioning requests (src/provision) all
 * hand units of work to runners through it.
 *
 * A unit is one row of its owner's table, named by rowid.  The owner
 * describes where the lease lives in that row (fm_lease_table: the status
 * column and its words, the lease owner, expiry and attempt counter) and
 * keeps all its other columns and SQL; this module holds the state machine:
 *
 *   pending | failed (when retried) | running with an expired lease
 *        --claim-->  running (owner, expires = now + lease, attempts + 1)
 *   running --renew--> running (expires pushed out; only by its holder)
 *   running --finish--> ok | failed (owner and expiry cleared; only by its
 *                       holder: a runner whose lease was taken over gets
 *                       FM_ERR_CONFLICT and must not publish anything)
 *   running with an expired lease (or any running, at a restart when no
 *   runner is alive) --reclaim--> pending
 *
 * The holder is fenced by the attempt number (and the owner, when the table
 * has an owner column): a claim after expiry increments attempts, so the
 * old holder's renew or finish matches no row.  Every function runs its
 * SQL through fm_store_tx, so a call inside the owner's transaction joins
 * it (the owner then writes its own columns in the same commit) and a call
 * outside one is its own transaction.  Timestamps are the store's
 * "YYYY-MM-DDTHH:MM:SS.mmmZ" (fm_store_now), compared as text.
 *
 * Threads: as fm_store (one connection, one thread).
 * Ownership: the caller owns every struct; nothing is allocated for it. */
#ifndef FM_LEASE_H
#define FM_LEASE_H

#include <stdint.h>

#include "fm_store.h"
#include "fm_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where a table keeps its lease.  All names are SQL identifiers written by
 * the owning module (constants, never input).  owner, started, finished and
 * error may be NULL when the table has no such column. */
typedef struct fm_lease_table {
  const char *table;
  const char *status;   /* status column */
  const char *owner;    /* lease holder column, or NULL (fenced by attempts only) */
  const char *expires;  /* lease expiry column */
  const char *attempts; /* attempt counter column (claim increments it) */
  const char *started, *finished, *error; /* set by claim / finish, or NULL */
  /* Status words. */
  const char *pending, *running, *ok, *failed;
  int retry_failed;     /* 1: a failed unit may be claimed again */
  int max_attempts;     /* > 0: a unit claimed that often is given up (failed) */
} fm_lease_table;

typedef enum fm_lease_outcome {
  FM_LEASE_CLAIMED = 1, /* the caller holds the unit now */
  FM_LEASE_HELD,        /* another runner holds a live lease (holder, expires) */
  FM_LEASE_DONE,        /* finished (status says how); nothing to do */
  FM_LEASE_EXHAUSTED    /* max_attempts reached: marked failed, not claimed */
} fm_lease_outcome;

/* One claim.  Filled by fm_lease_claim; pass it back to renew and finish. */
typedef struct fm_lease {
  int64_t unit;          /* rowid in the owner's table */
  char owner[160];       /* who holds it (the caller's owner string) */
  int attempt;           /* the unit's attempt number under this claim (fence) */
  char expires[32];      /* current expiry */
  fm_lease_outcome outcome;
  char status[32];       /* the status found (HELD, DONE, EXHAUSTED) */
  char holder[160];      /* HELD: the other holder ("" without an owner column) */
} fm_lease;

/* A lease expiry lease_seconds from now into out (the store's form). */
void fm_lease_expiry(int lease_seconds, char out[32]);

/* Try to take unit (a rowid of t->table) for owner for lease_seconds
 * (<= 0: 600).  FM_OK with l->outcome saying what happened; FM_ERR_NOTFOUND
 * when there is no such row; database errors as fm_store_tx. */
fm_rc fm_lease_claim(fm_store *st, const fm_lease_table *t, int64_t unit, const char *owner,
                     int lease_seconds, fm_lease *l, fm_error *err);

/* Push the expiry of a held lease lease_seconds (<= 0: 600) past now.
 * FM_ERR_CONFLICT when the lease was lost (taken over, reclaimed, finished). */
fm_rc fm_lease_renew(fm_store *st, const fm_lease_table *t, fm_lease *l, int lease_seconds,
                     fm_error *err);

/* Finish a held unit: status ok or failed, finished = now, error = error
 * (NULL clears it), owner and expiry cleared.  FM_ERR_CONFLICT when the
 * lease was lost; then nothing changed. */
fm_rc fm_lease_finish(fm_store *st, const fm_lease_table *t, const fm_lease *l, int ok,
                      const char *error, fm_error *err);

/* Put running units back to pending (owner and expiry cleared): those whose
 * lease expired, or with all = 1 every running unit (a restart: call only
 * when no runner of this table is alive).  *n (optional): how many. */
fm_rc fm_lease_reclaim(fm_store *st, const fm_lease_table *t, int all, size_t *n,
                       fm_error *err);

/* Put back to pending the running units whose holder (an owner named by
 * fm_lease_owner_name) is a process of this host that no longer exists:
 * a run killed mid-unit, taken over at once instead of after its lease.
 * Needs an owner column (else FM_ERR_ARG).  *n (optional): how many. */
fm_rc fm_lease_reclaim_dead(fm_store *st, const fm_lease_table *t, size_t *n, fm_error *err);

/* A unique owner name for this process and call: "<prefix>@<host>:<pid>:<n>". */
void fm_lease_owner_name(const char *prefix, char *out, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* FM_LEASE_H */
