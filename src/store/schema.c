/* schema.c: the kernel's own table, audit_log, as a schema step (the other
 * tables are registered by their owners: docs/architecture.md).  Its seq puts
 * it after the owners' version-1 tables, where it has always been. */
#include "fm_store_sql.h"

static const char *const audit_v1 =
    /* Append-only: who did what when, with the row before and after. */
    "CREATE TABLE audit_log ("
    "  audit_id   INTEGER PRIMARY KEY,"
    "  at         TEXT NOT NULL DEFAULT " FM_SQL_NOW ","
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

static const fm_schema_step audit_steps[] = {{1, 40, "store", audit_v1}};
FM_STORE_SCHEMA(store, audit_steps)
