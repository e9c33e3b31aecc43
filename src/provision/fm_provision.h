/* fm_provision.h: provisioning requests, the provision module's one public
 * header.  A data scientist asks for a dataset (mappings, candidates, fields,
 * or a range of snapshot partitions) with filters and a format; a worker
 * materializes it with the snapshot writer (fm_snapshot_write_sql_params)
 * into <root>/provision/<id>.<format> and records status, rows, bytes,
 * SHA-256 and expiry in provision_requests.  docs/provision.md describes
 * the datasets, the filter whitelist and the life of a request.
 *
 * Trust: a requester never supplies SQL.  Filters are a JSON object whose
 * keys are checked against a per-dataset whitelist of columns; the values
 * become bound parameters of a SELECT built here from constant strings.
 *
 * Threads: functions take an fm_store (one connection, one thread);
 * materializing opens its own read-only connection to the same database.
 * The runner (fm_prov_runner_*, in fm_jobs.h) runs it in a background thread.
 * Ownership: each function says who frees what it returns. */
#ifndef FM_PROVISION_H
#define FM_PROVISION_H

#include <stdint.h>

#include "fm_snapshot.h"
#include "fm_review.h"
#include "fm_store.h"
#include "fm_tokens.h"
#include "fm_util.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fm_prov_status {
  FM_PROV_PENDING = 1, /* waiting for a worker */
  FM_PROV_RUNNING,     /* a worker holds its lease */
  FM_PROV_READY,       /* the file is there: rows, bytes, sha256, path set */
  FM_PROV_FAILED,      /* error says why; no file */
  FM_PROV_EXPIRED      /* past expires_at: the file was removed */
} fm_prov_status;

const char *fm_prov_status_name(fm_prov_status s); /* static "pending" ... */
int fm_prov_status_parse(const char *s);           /* -1 if unknown */

/* A request id: 128 random bits (getrandom) as 32 lowercase hex digits. */
#define FM_PROV_ID_LEN 32
/* Default life of a ready file (seconds) and the attempts a request gets
 * before a worker that keeps dying on it marks it failed. */
#define FM_PROV_DEFAULT_TTL (7 * 24 * 3600)
#define FM_PROV_MAX_ATTEMPTS 3
/* Bounds on the filters object. */
#define FM_PROV_MAX_FILTERS 8
#define FM_PROV_MAX_VALUE 256

/* One request as stored.  Strings are owned by the struct
 * (fm_prov_request_free); timestamps are "" when unset, rows and bytes -1. */
typedef struct fm_prov_request {
  char id[FM_PROV_ID_LEN + 1];
  char requester[FM_TOKEN_OWNER_MAX + 1];
  char dataset[16];
  char format[16];     /* "csv.gz" | "jsonl.gz" | "parquet" */
  fm_prov_status status;
  int64_t rows, bytes;
  int64_t ttl_seconds;
  int attempts;
  char sha256[65];     /* "" unless ready */
  char *filters;       /* canonical JSON object text (never NULL once loaded) */
  char *path;          /* relative to the root, NULL unless ready */
  char *error;         /* NULL unless failed */
  char created_at[32], started_at[32], finished_at[32], expires_at[32];
} fm_prov_request;

void fm_prov_request_free(fm_prov_request *r); /* frees the strings; keeps r */

/* The request as a JSON object (the REST body and `provision status
 * --json`): id, requester, dataset, filters (an object), format, status,
 * rows, bytes, sha256, error, created_at, started_at, finished_at,
 * expires_at (absent members are null).  Caller owns it (json_decref);
 * NULL on allocation failure. */
struct json_t *fm_prov_request_json(const fm_prov_request *r);

/* Validate dataset, filters and format and return the canonical filters
 * JSON (caller owns *canon, fm_free; canon may be NULL to only check).
 * filters_json may be NULL or "" (no filters).  Errors are FM_ERR_ARG with
 * a message naming the bad key or value; nothing else is checked against
 * the database except, for dataset "snapshot", that the job exists
 * (needs st; st NULL skips that check). */
fm_rc fm_prov_validate(fm_store *st, const char *dataset, const char *filters_json,
                       const char *format, char **canon, fm_error *err);

/* Create a pending request for requester (a token owner, 1..100 bytes),
 * after fm_prov_validate.  ttl_seconds <= 0 means FM_PROV_DEFAULT_TTL;
 * the file of a ready request is removed ttl_seconds after it was written.
 * format NULL means "csv.gz".  Writes an audit row.  id receives the new
 * id (NUL-terminated). */
fm_rc fm_prov_create(fm_store *st, const char *requester, const char *dataset,
                     const char *filters_json, const char *format, int64_t ttl_seconds,
                     char id[FM_PROV_ID_LEN + 1], fm_error *err);

/* Load request id.  FM_ERR_NOTFOUND when there is none (also for a
 * malformed id).  On success the caller owns out's strings
 * (fm_prov_request_free); on failure out holds nothing to free. */
fm_rc fm_prov_get(fm_store *st, const char *id, fm_prov_request *out, fm_error *err);

/* Requests of requester (NULL: everyone's), newest first, at most limit
 * (<= 0: 100).  Caller owns *out (fm_prov_list_free(*out, *n)), also when
 * empty. */
fm_rc fm_prov_list(fm_store *st, const char *requester, int limit, fm_prov_request **out,
                   size_t *n, fm_error *err);
void fm_prov_list_free(fm_prov_request *v, size_t n);

/* Claim and materialize request id: in one transaction take it (pending,
 * or running with an expired lease) and mark it running with a lease of
 * lease_seconds (<= 0: 600) and attempts + 1; then write
 * fm_prov_dir(root)/<id>.<format> atomically with the snapshot writer,
 * reading through a read-only connection; then mark it ready (rows,
 * bytes, sha256, path, finished_at, expires_at = finished_at + ttl) or
 * failed (error).  A request claimed FM_PROV_MAX_ATTEMPTS times already is
 * marked failed without another try.  Returns FM_ERR_CONFLICT when it is
 * not claimable (someone else holds it, or it is done), FM_ERR_NOTFOUND
 * when unknown, else the outcome of the write (the row records it too). */
fm_rc fm_prov_materialize(fm_store *st, const char *root, const char *id,
                          int lease_seconds, fm_error *err);

/* Materialize the oldest claimable request, if any.  *did (optional) is 1
 * when one was attempted (whatever its outcome), 0 when none was waiting.
 * A failed materialization is recorded on its row and returned. */
fm_rc fm_prov_run_next(fm_store *st, const char *root, int lease_seconds, int *did,
                       fm_error *err);

/* After a crash: put every running request back to pending (their
 * workers are gone).  Call only when no other worker uses the database
 * (server start).  *n (optional) receives how many. */
fm_rc fm_prov_recover(fm_store *st, size_t *n, fm_error *err);

/* Remove the files of ready or failed requests whose expires_at is at or
 * before `now` (Unix seconds) and mark them expired (path cleared).  The
 * file goes first: a crash in between leaves a ready row without a file,
 * which the next call expires.  *n (optional) receives how many. */
fm_rc fm_prov_expire(fm_store *st, const char *root, int64_t now, size_t *n,
                     fm_error *err);

/* An operator's hand on one request, each with its audit row
 * (provision_resume / provision_fail, actor by):
 * resume: a pending, running (e.g. its worker was killed mid-write) or
 *   failed request goes back to pending (lease dropped; a failed one gets
 *   its attempts back), to be materialized by the next worker or at once
 *   by the caller (fm_prov_materialize).  A worker still holding the old
 *   lease is fenced by the next claim and publishes nothing.
 * fail: a pending or running request becomes failed with error "failed by
 *   <by>[: reason]" and expires ttl from now; a worker still writing it is
 *   fenced (its finish finds the row failed) and removes its file.
 * FM_ERR_NOTFOUND for an unknown id; FM_ERR_CONFLICT (naming the status)
 * for a request in a state the action does not apply to. */
fm_rc fm_prov_resume(fm_store *st, const char *id, const char *by, fm_error *err);
fm_rc fm_prov_fail(fm_store *st, const char *id, const char *by, const char *reason,
                   fm_error *err);

/* Where a lake's provisioned files go: "<root>.provision", a sibling of
 * the lake root (trailing slashes of root dropped), so a reader that globs
 * the lake never reads them and the lake's runner never sees them.  Caller
 * owns the string (fm_free); NULL on allocation failure. */
char *fm_prov_dir(const char *root);

/* The absolute path of a ready request's file (caller owns, fm_free): its
 * stored path is a file name in fm_prov_dir(root), or, for a request
 * written before that layout, "provision/<file>" under root.  NULL when r
 * has no path or on allocation failure. */
char *fm_prov_file_path(const char *root, const fm_prov_request *r);
/* The same for a stored path. */
char *fm_prov_resolve(const char *root, const char *stored);

#ifdef __cplusplus
}
#endif
#endif /* FM_PROVISION_H */
