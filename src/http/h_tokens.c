/* h_tokens.c: API token administration over HTTP (admin), the same store
 * functions as `fieldmatch token create|list|revoke`.
 *   POST   /v1/admin/tokens        {"role":"reader|analyst|admin","owner":"..."}
 *          201 {"id","owner","role","secret"}: the secret is shown this once
 *          (the store keeps only its SHA-256)
 *   GET    /v1/admin/tokens        every token, oldest first, never a secret
 *   DELETE /v1/admin/tokens/{id}   revoke: 200 with the token; 404 when there
 *          is no such token or it is already revoked
 * The actor in the audit log is the calling admin's token owner. */
#include "http_internal.h"

#include <stdlib.h>
#include <string.h>

static json_t *token_json(const fm_token_info *t) {
  return json_pack("{s:I,s:s,s:s,s:s,s:s*,s:s*}", "id", (json_int_t)t->id, "owner", t->owner,
                   "role", fm_token_role_name(t->role), "created_at", t->created_at,
                   "revoked_at", t->revoked_at[0] ? t->revoked_at : NULL, "last_used_at",
                   t->last_used_at[0] ? t->last_used_at : NULL);
}

enum MHD_Result fm_h_tokens_create(fm_http_req *r) {
  json_error_t jerr;
  json_t *in = json_loadb(r->body.buf ? r->body.buf : "", r->body.len,
                          JSON_REJECT_DUPLICATES, &jerr);
  if (!in)
    return fm_http_reply_error(r, FM_EC_BAD_JSON, "%s (at byte %d)", jerr.text, jerr.position);
  enum MHD_Result ret;
  const char *role_s = json_string_value(json_object_get(in, "role"));
  const char *owner = json_string_value(json_object_get(in, "owner"));
  int role = role_s ? fm_token_role_parse(role_s) : -1;
  if (!json_is_object(in) || role < 0 || !owner) {
    ret = fm_http_reply_error(r, FM_EC_BAD_JSON,
                              "want {\"role\": \"reader\"|\"analyst\"|\"admin\", \"owner\": \"name\"}");
    goto done;
  }
  fm_store *st;
  if (fm_http_req_store(r, &st, &ret)) goto done;
  fm_error err;
  fm_error_init(&err);
  int64_t id = 0;
  char secret[FM_TOKEN_SECRET_LEN + 1];
  fm_rc rc = fm_store_token_create(st, owner, (fm_token_role)role, r->owner, &id, secret, &err);
  if (rc == FM_ERR_ARG) {
    ret = fm_http_reply_error(r, FM_EC_BAD_PARAM, "%s", err.msg);
  } else if (rc) {
    ret = fm_http_reply_rc(r, &err);
  } else {
    ret = fm_http_reply_json(r, MHD_HTTP_CREATED,
                             json_pack("{s:I,s:s,s:s,s:s}", "id", (json_int_t)id, "owner", owner,
                                       "role", fm_token_role_name((fm_token_role)role),
                                       "secret", secret));
  }
  memset(secret, 0, sizeof secret);
done:
  json_decref(in);
  return ret;
}

enum MHD_Result fm_h_tokens_list(fm_http_req *r) {
  enum MHD_Result ret;
  fm_store *st;
  if (fm_http_req_store(r, &st, &ret)) return ret;
  fm_error err;
  fm_error_init(&err);
  fm_token_info *v = NULL;
  size_t n = 0;
  if (fm_store_token_list(st, &v, &n, &err)) return fm_http_reply_rc(r, &err);
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < n; i++)
    if (json_array_append_new(arr, token_json(&v[i]))) {
      json_decref(arr);
      arr = NULL;
    }
  fm_free(v);
  if (!arr) return fm_http_reply_error(r, FM_EC_INTERNAL, "out of memory");
  return fm_http_reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "tokens", arr));
}

enum MHD_Result fm_h_tokens_revoke(fm_http_req *r) {
  char *end = NULL;
  long long id = strtoll(r->params[0], &end, 10);
  if (!*r->params[0] || *end || id < 1)
    return fm_http_reply_error(r, FM_EC_BAD_PARAM, "token id must be a positive integer");
  enum MHD_Result ret;
  fm_store *st;
  if (fm_http_req_store(r, &st, &ret)) return ret;
  fm_error err;
  fm_error_init(&err);
  fm_rc rc = fm_store_token_revoke(st, id, r->owner, &err);
  if (rc == FM_ERR_NOTFOUND) return fm_http_reply_error(r, FM_EC_TOKEN_NOT_FOUND, "%s", err.msg);
  if (rc) return fm_http_reply_rc(r, &err);
  return fm_http_reply_json(r, MHD_HTTP_OK,
                            json_pack("{s:I,s:b}", "id", (json_int_t)id, "revoked", 1));
}
