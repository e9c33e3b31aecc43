/* snapshot_internal.h: what the snapshot module's files share; not installed. */
#ifndef FM_SNAPSHOT_INTERNAL_H
#define FM_SNAPSHOT_INTERNAL_H

#include "fm_lease.h"
#include "fm_parquet.h"
#include "fm_snapshot.h"
#include "fm_store_sql.h"

/* fm_snapshot_write_sql with a test hook: drop_rows > 0 leaves that many
 * rows out (how tests force an audit mismatch); die_stage, when not NULL,
 * names the FM_SNAPSHOT_DIE_AT stage raised after the temp file is fsynced
 * and before the rename. */
fm_rc fm_snapshot_write_sql_ex(sqlite3 *db, const char *sql, fm_snapshot_format fmt,
                               const char *path, int drop_rows, const char *die_stage,
                               fm_snapshot_file *out, fm_error *err);

/* The Parquet backend of the writer (writer_parquet.c): step s (prepared,
 * bound, not yet stepped) to its end, writing every row to the Parquet file
 * tmp_path (created; removed again on any failure); drop_rows as above.
 * Fills out->rows, bytes and sha256 (the caller renames the file). */
fm_rc fm_snapshot_write_parquet_rows(sqlite3 *db, sqlite3_stmt *s, const char *tmp_path,
                                     int drop_rows, fm_snapshot_file *out, fm_error *err);

/* The Parquet type of a column from its declared type and name (the rule
 * of docs/snapshot.md, "Parquet"); the engine DDL uses the same rule. */
fm_pq_type fm_snapshot_pq_type(const char *decltype_, const char *name);

/* Beside catalog.json: catalog.hive.sql and catalog.duckdb.sql (one
 * statement per job of catalog_json, the catalog as
 * fm_snapshot_catalog_json builds it), each written atomically through
 * <root>/_tmp.  Errors name the file. */
fm_rc fm_snapshot_write_engine_files(const char *root, const char *catalog_json,
                                     fm_error *err);

/* The hour-complete marker <root>/_hours/dt=YYYY-MM-DD/hr=HH/_HOUR_SUCCESS:
 * written (atomically, listing each job's version and rows) when every
 * enabled job has a succeeded partition of that hour in the catalog,
 * removed when not.  Errors name the file. */
fm_rc fm_snapshot_hour_marker(fm_store *st, const char *root, int64_t hour, fm_error *err);

/* snapshot_repair.c.  Refuse (FM_ERR_ARG, naming hour and job) an hour
 * after the current one, or older than a selected job's retention window
 * (its partition would be deleted by the same run's retention). */
fm_rc fm_snapshot_check_hours(fm_store *st, const char *only, const int64_t *hours, size_t n,
                              int64_t now, fm_error *err);
/* The hours `due` owes, oldest first, at most max_hours (<= 0: 48), the
 * current hour always among them: per selected job, every hour inside its
 * retention window, from its first attempted hour on, without a succeeded
 * (or expired) partition.  Caller owns *out (fm_free). */
fm_rc fm_snapshot_due_hours(fm_store *st, const char *only, int64_t now, int max_hours,
                            int64_t **out, size_t *nout, fm_error *err);

/* Test hook: raise SIGKILL when the environment variable FM_SNAPSHOT_DIE_AT
 * equals stage (the crash tests). */
void fm_snapshot_die_at(const char *stage);

/* fsync the directory at path. */
fm_rc fm_snapshot_fsync_dir(const char *path, fm_error *err);
/* Write len bytes to path atomically (temp, fsync, rename, fsync dir); the
 * temp file is tmp_path (same file system) or, when NULL, "<path>.tmp.<pid>".
 * die_stage as for fm_snapshot_write_sql_ex. */
fm_rc fm_snapshot_write_atomic(const char *path, const char *tmp_path, const void *p,
                               size_t len, const char *die_stage, fm_error *err);
/* mkdir -p (mode 0755). */
/* Remove a directory and the files in it (one level: partitions are flat);
 * a missing directory is not an error. */
fm_rc fm_snapshot_rmdir_flat(const char *path, fm_error *err);

/* Failure notification: run cmd with FM_SNAPSHOT_* variables describing p,
 * and/or POST a JSON body to an http:// webhook.  Failures to notify are
 * warnings (fm_warn), never a change of the run's outcome. */
void fm_snapshot_notify(const char *cmd, const char *webhook, const char *db_path,
                        const char *run_id, const fm_snapshot_partition *p);

/* fm_snapshot_lake_claim; with create = 0 a lake without an identity
 * file is left as it is (retention: nothing created by accident). */
fm_rc fm_snapshot_lake_check(fm_store *st, const char *root, int create, fm_error *err);

/* ---- shared by snapshot.c and snapshot_run.c ---- */

/* One snapshot_jobs row. */
typedef struct job {
  char *name, *table, *columns, *filter;
  fm_snapshot_format fmt;
  int retention_hours;
} job;

void fm_snapshot_jobs_free(job *v, size_t n);
/* The enabled jobs (or only the job named `only`), by name.  Caller owns
 * *out (fm_snapshot_jobs_free). */
fm_rc fm_snapshot_load_jobs(fm_store *st, const char *only, job **out, size_t *nout,
                            fm_error *err);
/* The SELECT of job j and its COUNT(*) twin, checked to compile read-only
 * on db.  Caller frees both with sqlite3_free. */
fm_rc fm_snapshot_job_sql(sqlite3 *db, const job *j, char **sql, char **count_sql,
                          fm_error *err);
/* dt ("YYYY-MM-DD") and hr of an hour number. */
void fm_snapshot_hour_parts(int64_t hour, char dt[16], int *hr);

#endif
