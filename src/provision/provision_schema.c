/* provision_schema.c: the table of src/provision (provision_requests) as a
 * schema step. */
#include "fm_store_sql.h"

/* Provisioning requests (docs/provision.md): a requester asks for a
 * dataset; a worker materializes it with the snapshot writer.  filters is
 * the validated, canonical JSON of the request (never SQL); path is
 * relative to the root.  A running row has a lease; attempts bounds
 * retries of a request that keeps killing its worker. */
static const char *const provision_v4 =
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
    "  created_at   TEXT NOT NULL DEFAULT " FM_SQL_NOW ","
    "  started_at   TEXT,"
    "  finished_at  TEXT,"
    "  expires_at   TEXT);"
    "CREATE INDEX provision_requests_status ON provision_requests(status, created_at);"
    "CREATE INDEX provision_requests_requester ON provision_requests(requester, created_at);";

/* Version 7 (issue 19): Parquet is a provisioning format.  The table is
 * rebuilt (SQLite cannot change a CHECK) with its rows and indexes. */
static const char *const provision_v7 =
    "CREATE TABLE provision_requests_v7 ("
    "  id           TEXT PRIMARY KEY CHECK (length(id) = 32),"
    "  requester    TEXT NOT NULL CHECK (length(requester) BETWEEN 1 AND 100),"
    "  dataset      TEXT NOT NULL CHECK (dataset IN"
    "               ('mappings','candidates','fields','snapshot')),"
    "  filters      TEXT NOT NULL DEFAULT '{}',"
    "  format       TEXT NOT NULL CHECK (format IN ('csv.gz','jsonl.gz','parquet')),"
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
    "  created_at   TEXT NOT NULL DEFAULT " FM_SQL_NOW ","
    "  started_at   TEXT,"
    "  finished_at  TEXT,"
    "  expires_at   TEXT);"
    "INSERT INTO provision_requests_v7 SELECT id, requester, dataset, filters, format,"
    "  status, ttl_seconds, attempts, lease_expires, rows, bytes, sha256, path, error,"
    "  created_at, started_at, finished_at, expires_at FROM provision_requests;"
    "DROP TABLE provision_requests;"
    "ALTER TABLE provision_requests_v7 RENAME TO provision_requests;"
    "CREATE INDEX provision_requests_status ON provision_requests(status, created_at);"
    "CREATE INDEX provision_requests_requester ON provision_requests(requester, created_at);";

static const fm_schema_step provision_steps[] = {{4, 10, "provision", provision_v4},
                                                 {7, 20, "provision", provision_v7}};
FM_STORE_SCHEMA(provision, provision_steps)
