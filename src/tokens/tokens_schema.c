/* tokens_schema.c: the table of src/tokens (api_tokens) as a schema step. */
#include "fm_store_sql.h"

/* API tokens for the HTTP service: only the SHA-256 of a secret is kept, so
 * a stolen database does not hand out working tokens.  Revoked tokens stay
 * (the audit log names their owners). */
static const char *const tokens_v3 =
    "CREATE TABLE api_tokens ("
    "  token_id      INTEGER PRIMARY KEY,"
    "  owner         TEXT NOT NULL CHECK (length(owner) BETWEEN 1 AND 100),"
    "  role          TEXT NOT NULL CHECK (role IN ('reader','analyst','admin')),"
    "  secret_sha256 TEXT NOT NULL UNIQUE,"
    "  created_at    TEXT NOT NULL DEFAULT " FM_SQL_NOW ","
    "  revoked_at    TEXT,"
    "  last_used_at  TEXT);";

static const fm_schema_step tokens_steps[] = {{3, 10, "tokens", tokens_v3}};
FM_STORE_SCHEMA(tokens, tokens_steps)
