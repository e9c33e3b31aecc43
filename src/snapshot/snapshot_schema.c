/* snapshot_schema.c: the tables of src/snapshot (snapshot_jobs,
 * snapshot_runs, catalog) as schema steps. */
#include "fm_store_sql.h"

/* Snapshots (docs/snapshot.md): what to write every hour, what each
 * partition write did, and the catalog of partitions on disk. */
static const char *const snapshot_v2 =
    /* One row per snapshot job: adding a table to the snapshot is a row.
     * filter is an SQL expression from the operator's own database; it runs
     * on a read-only connection (see docs/snapshot.md, "Trust"). */
    "CREATE TABLE snapshot_jobs ("
    "  name            TEXT PRIMARY KEY CHECK (name GLOB '[A-Za-z0-9_]*'"
    "                  AND name NOT GLOB '*[^A-Za-z0-9_-]*'),"
    "  source_table    TEXT NOT NULL,"
    "  columns         TEXT NOT NULL DEFAULT '*',"
    "  filter          TEXT,"
    "  format          TEXT NOT NULL DEFAULT 'csv.gz'"
    "                  CHECK (format IN ('csv.gz','jsonl.gz')),"
    "  schedule        TEXT NOT NULL DEFAULT 'hourly' CHECK (schedule IN ('hourly')),"
    "  retention_hours INTEGER NOT NULL DEFAULT 720 CHECK (retention_hours > 0),"
    "  enabled         INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0,1)),"
    "  created_at      TEXT NOT NULL DEFAULT " FM_SQL_NOW ");"
    "INSERT INTO snapshot_jobs (name, source_table, format) VALUES"
    "  ('mappings','mappings','csv.gz'), ('candidates','candidates','csv.gz'),"
    "  ('fields','fields','csv.gz'), ('audit_log','audit_log','jsonl.gz');"
    /* One row per (job, partition, version); --force adds a version.  The
     * lease (owner, expiry) is taken in BEGIN IMMEDIATE; an expired lease
     * may be taken over. */
    "CREATE TABLE snapshot_runs ("
    "  snapshot_run_id INTEGER PRIMARY KEY,"
    "  job             TEXT NOT NULL,"
    "  dt              TEXT NOT NULL,"
    "  hr              INTEGER NOT NULL CHECK (hr BETWEEN 0 AND 23),"
    "  version         INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),"
    "  run_id          TEXT NOT NULL,"
    "  status          TEXT NOT NULL CHECK (status IN"
    "                  ('pending','running','succeeded','failed','expired')),"
    "  attempt         INTEGER NOT NULL DEFAULT 1,"
    "  started_at      TEXT NOT NULL DEFAULT " FM_SQL_NOW ","
    "  finished_at     TEXT,"
    "  rows_read       INTEGER,"
    "  rows_written    INTEGER,"
    "  bytes           INTEGER,"
    "  sha256          TEXT,"
    "  location        TEXT,"
    "  error           TEXT,"
    "  lease_owner     TEXT,"
    "  lease_expires   TEXT,"
    "  UNIQUE (job, dt, hr, version));"
    "CREATE INDEX snapshot_runs_status ON snapshot_runs(status, dt, hr);"
    /* The partitions on disk, one per (job, dt, hr): the latest succeeded
     * version.  catalog.json at the snapshot root is generated from it. */
    "CREATE TABLE catalog ("
    "  job          TEXT NOT NULL,"
    "  source_table TEXT NOT NULL,"
    "  dt           TEXT NOT NULL,"
    "  hr           INTEGER NOT NULL,"
    "  version      INTEGER NOT NULL,"
    "  format       TEXT NOT NULL,"
    "  location     TEXT NOT NULL,"
    "  columns      TEXT NOT NULL,"
    "  rows         INTEGER NOT NULL,"
    "  bytes        INTEGER NOT NULL,"
    "  sha256       TEXT NOT NULL,"
    "  run_id       TEXT NOT NULL,"
    "  added_at     TEXT NOT NULL DEFAULT " FM_SQL_NOW ","
    "  PRIMARY KEY (job, dt, hr));";

/* Version 7 (issue 19): Parquet is a format and the default; a job name
 * starts with a letter or digit, so no job lands in the runner's own
 * folders (_tmp, _trash) or a hidden one.  SQLite cannot change a CHECK,
 * so the table is rebuilt.  A job of an older store named otherwise is
 * kept, disabled (the CHECK allows that only disabled).  The seeded jobs
 * switch to Parquet only while nothing of them is in the catalog: an
 * existing lake does not change format under its readers. */
static const char *const snapshot_v7 =
    "CREATE TABLE snapshot_jobs_v7 ("
    "  name            TEXT PRIMARY KEY CHECK ((name GLOB '[A-Za-z0-9]*' OR enabled = 0)"
    "                  AND name GLOB '[A-Za-z0-9_]*'"
    "                  AND name NOT GLOB '*[^A-Za-z0-9_-]*'),"
    "  source_table    TEXT NOT NULL,"
    "  columns         TEXT NOT NULL DEFAULT '*',"
    "  filter          TEXT,"
    "  format          TEXT NOT NULL DEFAULT 'parquet'"
    "                  CHECK (format IN ('parquet','csv.gz','jsonl.gz')),"
    "  schedule        TEXT NOT NULL DEFAULT 'hourly' CHECK (schedule IN ('hourly')),"
    "  retention_hours INTEGER NOT NULL DEFAULT 720 CHECK (retention_hours > 0),"
    "  enabled         INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0,1)),"
    "  created_at      TEXT NOT NULL DEFAULT " FM_SQL_NOW ");"
    "INSERT INTO snapshot_jobs_v7 (name, source_table, columns, filter, format, schedule,"
    "  retention_hours, enabled, created_at)"
    "  SELECT name, source_table, columns, filter,"
    "  CASE WHEN ((name IN ('mappings','candidates','fields') AND source_table = name"
    "              AND format = 'csv.gz')"
    "          OR (name = 'audit_log' AND source_table = name AND format = 'jsonl.gz'))"
    "       AND NOT EXISTS (SELECT 1 FROM catalog c WHERE c.job = snapshot_jobs.name)"
    "       AND NOT EXISTS (SELECT 1 FROM snapshot_runs r WHERE r.job = snapshot_jobs.name)"
    "  THEN 'parquet' ELSE format END,"
    "  schedule, retention_hours,"
    "  CASE WHEN name GLOB '[A-Za-z0-9]*' THEN enabled ELSE 0 END, created_at"
    "  FROM snapshot_jobs;"
    "DROP TABLE snapshot_jobs;"
    "ALTER TABLE snapshot_jobs_v7 RENAME TO snapshot_jobs;";

static const fm_schema_step snapshot_steps[] = {{2, 10, "snapshot", snapshot_v2},
                                                {7, 10, "snapshot", snapshot_v7}};
FM_STORE_SCHEMA(snapshot, snapshot_steps)
