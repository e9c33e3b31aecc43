/* batch_schema.c: the tables of the batch runs (model_runs, batch_runs,
 * batch_parts, candidates) as schema steps; docs/batch.md and docs/store.md
 * describe them; the batch code is batch*.c beside it. */
#include "fm_store_sql.h"

static const char *const batch_v1 =
    /* A model file used by a batch run. */
    "CREATE TABLE model_runs ("
    "  model_run_id   INTEGER PRIMARY KEY,"
    "  model_path     TEXT NOT NULL,"
    "  model_checksum TEXT NOT NULL,"
    "  model_name     TEXT NOT NULL DEFAULT '',"
    "  config         TEXT NOT NULL DEFAULT '{}',"
    "  created_at     TEXT NOT NULL DEFAULT " FM_SQL_NOW ");"
    /* A batch mapping run and its parts (keyed by run and batch number). */
    "CREATE TABLE batch_runs ("
    "  batch_run_id INTEGER PRIMARY KEY,"
    "  model_run_id INTEGER NOT NULL REFERENCES model_runs(model_run_id),"
    "  status       TEXT NOT NULL DEFAULT 'running'"
    "               CHECK (status IN ('running','succeeded','failed')),"
    "  params       TEXT NOT NULL DEFAULT '{}',"
    "  n_fields     INTEGER NOT NULL DEFAULT 0,"
    "  n_batches    INTEGER NOT NULL DEFAULT 0,"
    "  started_at   TEXT NOT NULL DEFAULT " FM_SQL_NOW ","
    "  finished_at  TEXT,"
    "  started_by   TEXT NOT NULL DEFAULT '',"
    "  error        TEXT);"
    "CREATE TABLE batch_parts ("
    "  batch_run_id INTEGER NOT NULL REFERENCES batch_runs(batch_run_id),"
    "  part_no      INTEGER NOT NULL,"
    "  n_in         INTEGER NOT NULL,"
    "  n_proposed   INTEGER NOT NULL,"
    "  n_queued     INTEGER NOT NULL,"
    "  n_curated    INTEGER NOT NULL,"
    "  n_failed     INTEGER NOT NULL,"
    "  finished_at  TEXT NOT NULL DEFAULT " FM_SQL_NOW ","
    "  PRIMARY KEY (batch_run_id, part_no));"
    /* Ranked candidates a batch run computed for a query field. */
    "CREATE TABLE candidates ("
    "  batch_run_id   INTEGER NOT NULL REFERENCES batch_runs(batch_run_id),"
    "  query_field_id INTEGER NOT NULL REFERENCES fields(field_id),"
    "  rank           INTEGER NOT NULL CHECK (rank >= 1),"
    "  ref_field_id   INTEGER NOT NULL REFERENCES fields(field_id),"
    "  score          REAL NOT NULL,"
    "  model_run_id   INTEGER NOT NULL REFERENCES model_runs(model_run_id),"
    "  PRIMARY KEY (batch_run_id, query_field_id, rank));"
    "CREATE INDEX candidates_query ON candidates(query_field_id);";

static const fm_schema_step batch_steps[] = {{1, 20, "batch", batch_v1}};
FM_STORE_SCHEMA(batch, batch_steps)
