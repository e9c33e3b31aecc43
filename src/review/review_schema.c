/* review_schema.c: the tables of src/review (mappings, review_queue) as
 * schema steps; docs/store.md describes them. */
#include "fm_store_sql.h"

static const char *const review_v1 =
    /* One row per (query, reference) pair ever proposed or decided; its
     * status moves, its history is in audit_log. */
    "CREATE TABLE mappings ("
    "  mapping_id     INTEGER PRIMARY KEY,"
    "  mapping_key    TEXT NOT NULL UNIQUE,"
    "  query_field_id INTEGER NOT NULL REFERENCES fields(field_id),"
    "  ref_field_id   INTEGER NOT NULL REFERENCES fields(field_id),"
    "  status         TEXT NOT NULL CHECK (status IN"
    "                 ('proposed','accepted','rejected','superseded')),"
    "  origin         TEXT NOT NULL DEFAULT 'model'"
    "                 CHECK (origin IN ('model','analyst','import')),"
    "  score          REAL,"
    "  batch_run_id   INTEGER REFERENCES batch_runs(batch_run_id),"
    "  decided_by     TEXT NOT NULL DEFAULT '',"
    "  decided_at     TEXT NOT NULL DEFAULT " FM_SQL_NOW ","
    "  comment        TEXT NOT NULL DEFAULT '',"
    "  flag           TEXT CHECK (flag IN ('field_changed','field_removed')),"
    "  created_at     TEXT NOT NULL DEFAULT " FM_SQL_NOW ","
    "  UNIQUE (query_field_id, ref_field_id));"
    "CREATE UNIQUE INDEX mappings_one_accepted ON mappings(query_field_id)"
    "  WHERE status = 'accepted';"
    "CREATE INDEX mappings_status ON mappings(status, decided_at);"
    "CREATE INDEX mappings_ref ON mappings(ref_field_id);"
    /* Query fields waiting for an analyst, most uncertain first. */
    "CREATE TABLE review_queue ("
    "  query_field_id INTEGER PRIMARY KEY REFERENCES fields(field_id),"
    "  batch_run_id   INTEGER REFERENCES batch_runs(batch_run_id),"
    "  reason         TEXT NOT NULL,"
    "  top_score      REAL,"
    "  margin         REAL,"
    "  uncertainty    REAL NOT NULL,"
    "  queued_at      TEXT NOT NULL DEFAULT " FM_SQL_NOW ","
    "  resolved_at    TEXT,"
    "  resolved_by    TEXT);"
    "CREATE INDEX review_queue_open ON review_queue(resolved_at, uncertainty);";

/* Version 6 belongs to the review branch (issue 6 review work); on the lake
 * branch it is an empty placeholder so the migration runner, which wants a
 * step for every version, reaches 7.  The merge replaces it with the real
 * step 6. */
static const char *const review_v6_placeholder = "SELECT 1;";

static const fm_schema_step review_steps[] = {{1, 30, "review", review_v1},
                                              {6, 99, "review", review_v6_placeholder}};
FM_STORE_SCHEMA(review, review_steps)
