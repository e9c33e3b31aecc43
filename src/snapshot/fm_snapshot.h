/* fm_snapshot.h: hourly, idempotent, atomic snapshots of the store's tables
 * as Hive-style partitions of gzip'd CSV or JSON Lines; the snapshot
 * module's one public header.  docs/snapshot.md describes the layout, the
 * manifest, the status table and the catalog.
 *
 * What to write is data: one snapshot_jobs row per job (table, columns or
 * "*", optional filter, format, retention).  Every partition
 * <root>/<job>/dt=YYYY-MM-DD/hr=HH/ is built in <root>/_tmp/, fsynced and
 * renamed into place whole, and only then is its snapshot_runs row marked
 * succeeded: a crash leaves either no visible partition or a complete one,
 * and the next run retries what did not succeed.  A lease in snapshot_runs
 * (taken in BEGIN IMMEDIATE) keeps two runners off one partition.
 *
 * Threads: the functions take an fm_store (one connection, one thread) and
 * open their own read-only connection for the consistent read.
 * Ownership: each function says who frees what it returns; strings handed to
 * callbacks are borrowed for the duration of the call. */
#ifndef FM_SNAPSHOT_H
#define FM_SNAPSHOT_H

#include <sqlite3.h>
#include <stdint.h>

#include "fm_store.h"
#include "fm_store_sql.h"
#include "fm_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the writer (shared with provisioning) ------------------------------- */

typedef enum fm_snapshot_format {
  FM_SNAPSHOT_CSV_GZ = 1,  /* RFC 4180 CSV with a header row, gzip'd */
  FM_SNAPSHOT_JSONL_GZ = 2, /* one JSON object per row, gzip'd */
  FM_SNAPSHOT_PARQUET = 3   /* Apache Parquet, ZSTD (src/parquet; the default
                             * for snapshot jobs) */
} fm_snapshot_format;

/* "csv.gz" / "jsonl.gz" / "parquet" (static storage); parse returns -1 when unknown. */
const char *fm_snapshot_format_name(fm_snapshot_format f);
int fm_snapshot_format_parse(const char *s);

/* What one written file holds. */
typedef struct fm_snapshot_file {
  uint64_t rows;     /* data rows written (the CSV header is not a row) */
  uint64_t bytes;    /* size of the file on disk (compressed) */
  char sha256[65];   /* lowercase hex SHA-256 of the file's bytes */
  char *schema_json; /* [{"name":..,"type":..},...]: owned, fm_snapshot_file_free */
} fm_snapshot_file;

void fm_snapshot_file_free(fm_snapshot_file *f); /* frees schema_json; keeps f */

/* Write every row of the SELECT `sql` (no parameters, read-only) to `path`
 * as `fmt`, atomically: the rows go to "<path>.tmp.<pid>", which is fsynced,
 * renamed over path, and the directory fsynced; on any error the temp file
 * is removed and path is untouched.  When db is in autocommit mode the
 * statement runs inside its own BEGIN ... COMMIT; otherwise it reads inside
 * the caller's transaction (how one snapshot run reads every job from one
 * read transaction).  CSV: NULL is an empty field, an empty string is "";
 * reals use 17 significant digits; blobs are written as lowercase hex.
 * JSON Lines: typed values (null, integer, real, string; blobs as hex
 * strings).  Parquet: one file, columns typed from their declared types
 * (INTEGER -> INT64, REAL -> DOUBLE, TEXT -> UTF8 string, TEXT "*_at" ->
 * TIMESTAMP(UTC), others -> string), OPTIONAL unless NOT NULL; row groups
 * bounded in memory (docs/snapshot.md).  On success fills *out (caller frees out->schema_json with
 * fm_snapshot_file_free).  Errors name path and the failing step. */
fm_rc fm_snapshot_write_sql(sqlite3 *db, const char *sql, fm_snapshot_format fmt,
                            const char *path, fm_snapshot_file *out, fm_error *err);

/* fm_snapshot_write_sql for a SELECT with parameters: params[i] is bound as
 * text to ?(i+1); the statement must have exactly nparams parameters.
 * Provisioning turns a requester's filters into such parameters, so no
 * requester text ever becomes SQL.  params is borrowed for the call. */
fm_rc fm_snapshot_write_sql_params(sqlite3 *db, const char *sql, const char *const *params,
                                   int nparams, fm_snapshot_format fmt, const char *path,
                                   fm_snapshot_file *out, fm_error *err);

/* Remove the leftovers of crashed writers in dir: with all = 1 every
 * entry (files, and flat directories such as a partition being built),
 * with all = 0 only "*.tmp.*" files; in both cases only those no live
 * writer owns: the pid in the name ("<name>.<pid>", "<name>.tmp.<pid>", a
 * run id "...-<pid>-<n>") is not a process of this host, or, without a
 * pid, the entry is older than a day.  A missing dir is not an error.
 * *removed (optional) is incremented per entry removed.  Runs call it at
 * their start (snapshot: <root>/_tmp and <root>; provisioning: its file
 * directory). */
fm_rc fm_snapshot_remove_leftovers(const char *dir, int all, size_t *removed, fm_error *err);

/* ---- hours ---------------------------------------------------------------- */

/* Partitions are UTC hours, counted as hours since 1970-01-01T00Z. */

/* Parse ISO-8601 UTC at hour granularity: "2024-05-01T13", "2024-05-01T13Z",
 * "2024-05-01T13:00", "2024-05-01T13:00:00Z" (minutes and seconds, when
 * given, must be zero), or "now" (the current hour). */
fm_rc fm_snapshot_parse_hour(const char *s, int64_t *hour, fm_error *err);
/* "YYYY-MM-DDTHH:00:00Z" into out. */
void fm_snapshot_hour_str(int64_t hour, char out[32]);
/* The hour that contains the Unix time t. */
int64_t fm_snapshot_hour_of(int64_t unix_seconds);

/* ---- running jobs ----------------------------------------------------------- */

typedef enum fm_snapshot_outcome {
  FM_SNAPSHOT_WRITTEN = 1,    /* this call wrote the partition */
  FM_SNAPSHOT_SKIPPED_DONE,   /* already succeeded (or expired): nothing to do */
  FM_SNAPSHOT_SKIPPED_LEASED, /* another runner holds the lease */
  FM_SNAPSHOT_FAILED          /* written nothing visible; status row says why */
} fm_snapshot_outcome;

/* One partition's outcome, for the on_partition callback; all strings are
 * borrowed for the duration of the callback. */
typedef struct fm_snapshot_partition {
  const char *job, *table, *dt;
  int hr, version, attempt;
  fm_snapshot_outcome outcome;
  int64_t rows_read, rows_written, bytes;
  const char *sha256;   /* "" unless written */
  const char *location; /* relative to root, "" unless written */
  const char *detail;   /* error text, or who holds the lease; "" otherwise */
} fm_snapshot_partition;

typedef struct fm_snapshot_result {
  size_t written, skipped, failed, expired; /* partitions */
} fm_snapshot_result;

typedef struct fm_snapshot_opts {
  const char *job;        /* only this job (NULL: every enabled job) */
  int force;              /* write a new version even of succeeded partitions */
  const char *on_failure; /* shell command run on a failed partition, or NULL */
  const char *webhook;    /* http://host[:port]/path to POST failures to, or NULL */
  int lease_seconds;      /* lease length (default 900); must exceed a write */
  int max_catchup_hours;  /* fm_snapshot_run_due's bound (default 48) */
  int retention;          /* apply retention after the run (default 1) */
  /* Called once per partition considered (may be NULL). */
  void (*on_partition)(void *ctx, const fm_snapshot_partition *p);
  void *ctx;
} fm_snapshot_opts;

void fm_snapshot_opts_default(fm_snapshot_opts *o);

/* Snapshot every selected job for `hour`: take each partition's lease, read
 * all jobs inside ONE read transaction, write, audit counts (rows read by
 * COUNT(*) in that transaction must equal rows written), rename into place,
 * mark succeeded and add it to the catalog; then rewrite catalog.json and
 * apply retention.  A failed partition (including an audit mismatch) is
 * marked failed, runs opts->on_failure / opts->webhook, and the other jobs
 * go on.  Returns FM_OK when nothing failed, else the first failure's code
 * with its message (naming job and partition) in err.  res may be NULL. */
fm_rc fm_snapshot_run(fm_store *st, const char *root, int64_t hour,
                      const fm_snapshot_opts *opts, fm_snapshot_result *res,
                      fm_error *err);

/* fm_snapshot_run for every hour from..to (inclusive, oldest first; at most
 * 10000 hours).  res accumulates. */
fm_rc fm_snapshot_backfill(fm_store *st, const char *root, int64_t from_hour,
                           int64_t to_hour, const fm_snapshot_opts *opts,
                           fm_snapshot_result *res, fm_error *err);

/* What the server calls every hour: snapshot the hour of `now` (Unix
 * seconds) and catch up hours missed since the latest succeeded partition
 * of the selected jobs, at most opts->max_catchup_hours back.  A catch-up
 * partition holds the state read when it was written (its manifest says
 * when).  res may be NULL. */
fm_rc fm_snapshot_run_due(fm_store *st, const char *root, int64_t now,
                          const fm_snapshot_opts *opts, fm_snapshot_result *res,
                          fm_error *err);

/* Remove partitions older than their job's retention_hours relative to
 * `now` (Unix seconds): the directory first (renamed out of sight, then
 * deleted), then the catalog row (status row -> expired); then rewrite
 * catalog.json.  res->expired counts them (res may be NULL). */
fm_rc fm_snapshot_retention(fm_store *st, const char *root, int64_t now,
                            fm_snapshot_result *res, fm_error *err);

/* ---- the lake's owner and its integrity ---------------------------------------- */

/* A lake (a snapshot root) belongs to one store: the first run writes this
 * file at the root, naming the store's id and database. */
#define FM_SNAPSHOT_LAKE_FILE "_fieldmatch_lake.json"

/* The store's id: 32 lowercase hex digits (128 random bits) kept in the
 * one-row table store_identity.  create = 0 only reads it (id "" when the
 * store has none yet); create = 1 makes it the first time. */
fm_rc fm_snapshot_store_id(fm_store *st, int create, char id[33], fm_error *err);

/* Make sure root is st's lake before anything is written to it: when
 * <root>/_fieldmatch_lake.json names another store, FM_ERR_CONFLICT with a
 * message naming both ids and databases, and nothing is created or changed;
 * when there is none, the store's id is created if needed, root is created
 * and the file written (atomically).  fm_snapshot_run, _backfill, _run_due
 * and _retention call it first. */
fm_rc fm_snapshot_lake_claim(fm_store *st, const char *root, fm_error *err);

/* Called once per problem found by fm_snapshot_verify: where is a
 * partition ("job/dt=.../hr=..") or the identity file, problem a sentence;
 * both borrowed for the call. */
typedef void (*fm_snapshot_problem_fn)(void *ctx, const char *where, const char *problem);

typedef struct fm_snapshot_verify_result {
  size_t partitions, files, problems;
} fm_snapshot_verify_result;

/* Re-read every partition <root>/<job>/dt=*\/hr=*: its _SUCCESS, its
 * _manifest.json, and every file the manifest lists (present, size and
 * SHA-256 as listed).  With st (may be NULL) also: the lake names st as its
 * store.  Reads only.  FM_OK when the walk completed (res->problems
 * says whether the lake is clean); FM_ERR_NOTFOUND when root is not a
 * directory; database errors. */
fm_rc fm_snapshot_verify(const char *root, fm_store *st, fm_snapshot_problem_fn fn, void *ctx,
                         fm_snapshot_verify_result *res, fm_error *err);

/* ---- catalog, status, jobs as JSON ---------------------------------------------- */

/* The catalog as catalog.json holds it: {"tables":[{"job","table","format",
 * "columns":[...],"partitions":[...]}]}.  Caller owns *json (fm_free). */
fm_rc fm_snapshot_catalog_json(fm_store *st, char **json, fm_error *err);
/* Regenerate <root>/catalog.json from the catalog table, atomically. */
fm_rc fm_snapshot_write_catalog(fm_store *st, const char *root, fm_error *err);
/* snapshot_runs rows, newest first (job may be NULL, limit <= 0: 100), as a
 * JSON array.  Caller owns *json (fm_free). */
fm_rc fm_snapshot_status_json(fm_store *st, const char *job, int limit, char **json,
                              fm_error *err);
/* snapshot_jobs rows as a JSON array, each with "valid" and, when invalid,
 * "error" (table or column missing, bad filter).  Caller owns *json. */
fm_rc fm_snapshot_jobs_json(fm_store *st, char **json, fm_error *err);

#ifdef __cplusplus
}
#endif
#endif /* FM_SNAPSHOT_H */
