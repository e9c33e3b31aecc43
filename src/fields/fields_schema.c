/* fields_schema.c: the tables of src/fields (dictionaries, fields) as
 * schema steps; docs/store.md describes them. */
#include "fm_store_sql.h"

static const char *const fields_v1 =
    /* One row per imported version of a vendor dictionary. */
    "CREATE TABLE dictionaries ("
    "  dict_id     INTEGER PRIMARY KEY,"
    "  vendor      TEXT NOT NULL,"
    "  source      TEXT NOT NULL,"
    "  role        TEXT NOT NULL CHECK (role IN ('query','reference')),"
    "  version     INTEGER NOT NULL,"
    "  checksum    TEXT NOT NULL,"
    "  n_fields    INTEGER NOT NULL,"
    "  imported_at TEXT NOT NULL DEFAULT " FM_SQL_NOW ","
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
    "  updated_at   TEXT NOT NULL DEFAULT " FM_SQL_NOW ","
    "  UNIQUE (vendor, id));"
    "CREATE INDEX fields_role_id ON fields(role, id);";

/* Looking a field up by id alone (review commands, the HTTP lookup's
 * curated-first check, import-mappings) scanned the whole fields table:
 * the (role, id) index cannot serve "WHERE id = ?".  60k fields made each
 * lookup cost milliseconds. */
static const char *const fields_v5 = "CREATE INDEX fields_id ON fields(id);";

static const fm_schema_step fields_steps[] = {{1, 10, "fields", fields_v1},
                                              {5, 10, "fields", fields_v5}};
FM_STORE_SCHEMA(fields, fields_steps)
