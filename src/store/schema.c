/* schema.c: the store's schema as forward-only migrations.
 *
 * Migration i (1-based) takes a database from user_version i-1 to i; each
 * runs in its own transaction together with the user_version bump.  Never
 * edit a migration that has shipped: add the next one.  docs/store.md
 * describes the tables. */
#include "store_internal.h"

/* Timestamps are UTC ISO-8601 with milliseconds, so text order is time
 * order and "changed since" filters are string comparisons. */
#define NOW "(strftime('%Y-%m-%dT%H:%M:%fZ','now'))"

static const char *const migration_1 =
    /* One row per imported version of a vendor dictionary. */
    "CREATE TABLE dictionaries ("
    "  dict_id     INTEGER PRIMARY KEY,"
    "  vendor      TEXT NOT NULL,"
    "  source      TEXT NOT NULL,"
    "  role        TEXT NOT NULL CHECK (role IN ('query','reference')),"
    "  version     INTEGER NOT NULL,"
    "  checksum    TEXT NOT NULL,"
    "  n_fields    INTEGER NOT NULL,"
    "  imported_at TEXT NOT NULL DEFAULT " NOW ","
    "  imported_by TEXT NOT NULL DEFAULT '',"
    "  UNIQUE (vendor, source, version));"
    /* A field of either vendor; (vendor, id) is its identity across
     * dictionary versions.  Removed fields stay (mappings point at them). */
    "CREATE TABLE fields ("
    "  field_id     INTEGER PRIMARY KEY,"
    "  vendor       TEXT NOT NULL,"
    "  id           TEXT NOT NULL,"
    "  role         TEXT NOT NULL CHECK (role IN ('query','reference')),"
    "  name         TEXT NOT NULL DEFAULT '',"
    "  description  TEXT NOT NULL DEFAULT '',"
    "  type         TEXT NOT NULL DEFAULT '',"
    "  category     TEXT NOT NULL DEFAULT '',"
    "  dict_id      INTEGER NOT NULL REFERENCES dictionaries(dict_id),"
    "  content_hash TEXT NOT NULL,"
    "  status       TEXT NOT NULL DEFAULT 'active'"
    "               CHECK (status IN ('active','removed')),"
    "  updated_at   TEXT NOT NULL DEFAULT " NOW ","
    "  UNIQUE (vendor, id));"
    "CREATE INDEX fields_role_id ON fields(role, id);"
    /* A model file used by a batch run. */
    "CREATE TABLE model_runs ("
    "  model_run_id   INTEGER PRIMARY KEY,"
    "  model_path     TEXT NOT NULL,"
    "  model_checksum TEXT NOT NULL,"
    "  model_name     TEXT NOT NULL DEFAULT '',"
    "  config         TEXT NOT NULL DEFAULT '{}',"
    "  created_at     TEXT NOT NULL DEFAULT " NOW ");"
    /* A batch mapping run and its parts (keyed by run and batch number). */
    "CREATE TABLE batch_runs ("
    "  batch_run_id INTEGER PRIMARY KEY,"
    "  model_run_id INTEGER NOT NULL REFERENCES model_runs(model_run_id),"
    "  status       TEXT NOT NULL DEFAULT 'running'"
    "               CHECK (status IN ('running','succeeded','failed')),"
    "  params       TEXT NOT NULL DEFAULT '{}',"
    "  n_fields     INTEGER NOT NULL DEFAULT 0,"
    "  n_batches    INTEGER NOT NULL DEFAULT 0,"
    "  started_at   TEXT NOT NULL DEFAULT " NOW ","
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
    "  finished_at  TEXT NOT NULL DEFAULT " NOW ","
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
    "CREATE INDEX candidates_query ON candidates(query_field_id);"
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
    "  decided_at     TEXT NOT NULL DEFAULT " NOW ","
    "  comment        TEXT NOT NULL DEFAULT '',"
    "  flag           TEXT CHECK (flag IN ('field_changed','field_removed')),"
    "  created_at     TEXT NOT NULL DEFAULT " NOW ","
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
    "  queued_at      TEXT NOT NULL DEFAULT " NOW ","
    "  resolved_at    TEXT,"
    "  resolved_by    TEXT);"
    "CREATE INDEX review_queue_open ON review_queue(resolved_at, uncertainty);"
    /* Append-only: who did what when, with the row before and after. */
    "CREATE TABLE audit_log ("
    "  audit_id   INTEGER PRIMARY KEY,"
    "  at         TEXT NOT NULL DEFAULT " NOW ","
    "  actor      TEXT NOT NULL,"
    "  action     TEXT NOT NULL,"
    "  entity     TEXT NOT NULL,"
    "  entity_key TEXT NOT NULL,"
    "  before     TEXT,"
    "  after      TEXT);"
    "CREATE INDEX audit_entity ON audit_log(entity, entity_key);"
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log"
    "  BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;"
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log"
    "  BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;";

/* Snapshots (docs/snapshot.md): what to write every hour, what each
 * partition write did, and the catalog of partitions on disk. */
static const char *const migration_2 =
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
    "  created_at      TEXT NOT NULL DEFAULT " NOW ");"
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
    "  started_at      TEXT NOT NULL DEFAULT " NOW ","
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
    "  added_at     TEXT NOT NULL DEFAULT " NOW ","
    "  PRIMARY KEY (job, dt, hr));";

/* API tokens for the HTTP service: only the SHA-256 of a secret is kept, so
 * a stolen database does not hand out working tokens.  Revoked tokens stay
 * (the audit log names their owners). */
static const char *const migration_3 =
    "CREATE TABLE api_tokens ("
    "  token_id      INTEGER PRIMARY KEY,"
    "  owner         TEXT NOT NULL CHECK (length(owner) BETWEEN 1 AND 100),"
    "  role          TEXT NOT NULL CHECK (role IN ('reader','analyst','admin')),"
    "  secret_sha256 TEXT NOT NULL UNIQUE,"
    "  created_at    TEXT NOT NULL DEFAULT " NOW ","
    "  revoked_at    TEXT,"
    "  last_used_at  TEXT);";

/* Provisioning requests (docs/provision.md): a requester asks for a
 * dataset; a worker materializes it with the snapshot writer.  filters is
 * the validated, canonical JSON of the request (never SQL); path is
 * relative to the root.  A running row has a lease; attempts bounds
 * retries of a request that keeps killing its worker. */
static const char *const migration_4 =
    "CREATE TABLE provision_requests ("
    "  id           TEXT PRIMARY KEY CHECK (length(id) = 32),"
    "  requester    TEXT NOT NULL CHECK (length(requester) BETWEEN 1 AND 100),"
    "  dataset      TEXT NOT NULL CHECK (dataset IN"
    "               ('mappings','candidates','fields','snapshot')),"
    "  filters      TEXT NOT NULL DEFAULT '{}',"
    "  format       TEXT NOT NULL CHECK (format IN ('csv.gz','jsonl.gz')),"
    "  status       TEXT NOT NULL DEFAULT 'pending' CHECK (status IN"
    "               ('pending','running','ready','failed','expired')),"
    "  ttl_seconds  INTEGER NOT NULL CHECK (ttl_seconds > 0),"
    "  attempts     INTEGER NOT NULL DEFAULT 0,"
    "  lease_expires TEXT,"
    "  rows         INTEGER,"
    "  bytes        INTEGER,"
    "  sha256       TEXT,"
    "  path         TEXT,"
    "  error        TEXT,"
    "  created_at   TEXT NOT NULL DEFAULT " NOW ","
    "  started_at   TEXT,"
    "  finished_at  TEXT,"
    "  expires_at   TEXT);"
    "CREATE INDEX provision_requests_status ON provision_requests(status, created_at);"
    "CREATE INDEX provision_requests_requester ON provision_requests(requester, created_at);";

/* Looking a field up by id alone (review commands, the HTTP lookup's
 * curated-first check, import-mappings) scanned the whole fields table:
 * the (role, id) index cannot serve "WHERE id = ?".  60k fields made each
 * lookup cost milliseconds. */
static const char *const migration_5 = "CREATE INDEX fields_id ON fields(id);";

static const char *const migrations[] = {
    migration_1,
    migration_2,
    migration_3,
    migration_4,
    migration_5,
};

int fm_store_nmigrations(void) {
  return (int)(sizeof migrations / sizeof migrations[0]);
}

const char *fm_store_migration(int version) {
  if (version < 1 || version > fm_store_nmigrations()) return NULL;
  return migrations[version - 1];
}

_Static_assert(sizeof migrations / sizeof migrations[0] == FM_STORE_SCHEMA_VERSION,
               "FM_STORE_SCHEMA_VERSION must equal the number of migrations");
