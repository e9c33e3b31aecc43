/* fm_tokens.h: API tokens of the HTTP service (src/tokens, docs/http.md):
 * the one owner of the table api_tokens.
 *
 * Threads: one fm_store per thread (see fm_store.h). */
#ifndef FM_TOKENS_H
#define FM_TOKENS_H

#include <stdint.h>

#include "fm_util.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fm_store fm_store; /* fm_store.h */

/* ---- API tokens (tokens.c) ---------------------------------------------- */

/* What a token may do; each role includes the ones below it. */
typedef enum fm_token_role {
  FM_TOKEN_READER = 1, /* reads: lookup, fields, mappings */
  FM_TOKEN_ANALYST,    /* + review decisions */
  FM_TOKEN_ADMIN       /* + batch runs and token management */
} fm_token_role;

const char *fm_token_role_name(fm_token_role r); /* static "reader" ... */
int fm_token_role_parse(const char *s);          /* -1 if unknown */

/* A secret is "fm_" followed by 64 hex digits (32 bytes from getrandom). */
#define FM_TOKEN_SECRET_LEN 67
#define FM_TOKEN_OWNER_MAX 100

/* One token row; no secret (only its hash is stored).  Timestamps are ""
 * when unset. */
typedef struct fm_token_info {
  int64_t id;
  char owner[FM_TOKEN_OWNER_MAX + 1];
  fm_token_role role;
  char created_at[32], revoked_at[32], last_used_at[32];
} fm_token_info;

/* Create a token for owner (1..100 bytes of UTF-8) with role, recording
 * actor in the audit log.  The secret is written to secret (NUL-terminated)
 * and exists nowhere else: the database keeps its SHA-256.  *id (optional)
 * receives the token id. */
fm_rc fm_store_token_create(fm_store *st, const char *owner, fm_token_role role,
                            const char *actor, int64_t *id,
                            char secret[FM_TOKEN_SECRET_LEN + 1], fm_error *err);

/* All tokens, oldest first.  Caller owns *out (fm_free); *n its length. */
fm_rc fm_store_token_list(fm_store *st, fm_token_info **out, size_t *n,
                          fm_error *err);

/* Revoke token id (audit row by actor).  FM_ERR_NOTFOUND when there is no
 * such token or it is already revoked. */
fm_rc fm_store_token_revoke(fm_store *st, int64_t id, const char *actor,
                            fm_error *err);

/* Look a presented secret up.  FM_OK fills *out; FM_ERR_DENIED for an
 * unknown, malformed or revoked secret (the message does not say which).
 * Updates last_used_at at most once a minute per token, so checking on
 * every request does not turn reads into writes. */
fm_rc fm_store_token_check(fm_store *st, const char *secret, fm_token_info *out,
                           fm_error *err);


/* Tokens not revoked, for monitoring; a read of its own. */
fm_rc fm_store_token_count_active(fm_store *st, int64_t *n, fm_error *err);

#ifdef __cplusplus
}
#endif

#endif /* FM_TOKENS_H */
