/* reply.c: every response goes out through these helpers, so every one
 * carries CORS headers and every error has the one body
 * {"code": <int>, "hint": "...", "detail": "..."}. */
#include "http_internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Status and hint of each error code. */
static const struct {
  fm_http_ec ec;
  unsigned status;
  const char *hint;
} ec_table[] = {
    {FM_EC_BAD_JSON, MHD_HTTP_BAD_REQUEST, "the request body is not the JSON expected"},
    {FM_EC_BAD_PARAM, MHD_HTTP_BAD_REQUEST, "a parameter is missing or invalid"},
    {FM_EC_UNAUTHORIZED, MHD_HTTP_UNAUTHORIZED, "a valid bearer token is required"},
    {FM_EC_FORBIDDEN, MHD_HTTP_FORBIDDEN, "the token's role does not allow this"},
    {FM_EC_NO_ROUTE, MHD_HTTP_NOT_FOUND, "no such route"},
    {FM_EC_FIELD_NOT_FOUND, MHD_HTTP_NOT_FOUND, "no such field"},
    {FM_EC_RUN_NOT_FOUND, MHD_HTTP_NOT_FOUND, "no such batch run"},
    {FM_EC_TOKEN_NOT_FOUND, MHD_HTTP_NOT_FOUND, "no such token, or it is already revoked"},
    {FM_EC_METHOD, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed on this route"},
    {FM_EC_BODY_TOO_LARGE, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large"},
    {FM_EC_BATCH_TOO_LARGE, MHD_HTTP_CONTENT_TOO_LARGE, "too many fields in one batch"},
    {FM_EC_URI_TOO_LONG, MHD_HTTP_URI_TOO_LONG, "request target too long"},
    {FM_EC_HEADER_TOO_LARGE, MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE,
     "request header fields too large"},
    {FM_EC_RATE_LIMITED, MHD_HTTP_TOO_MANY_REQUESTS, "request rate limit exceeded"},
    {FM_EC_CONN_LIMIT, MHD_HTTP_TOO_MANY_REQUESTS, "connection limit exceeded"},
    {FM_EC_EXPORT_LIMIT, MHD_HTTP_TOO_MANY_REQUESTS, "too many exports at once, retry later"},
    {FM_EC_INTERNAL, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error"},
    {FM_EC_DB, MHD_HTTP_INTERNAL_SERVER_ERROR, "database error"},
    {FM_EC_NOT_READY, MHD_HTTP_SERVICE_UNAVAILABLE, "service not ready"},
    {FM_EC_DB_BUSY, MHD_HTTP_SERVICE_UNAVAILABLE, "database busy, retry later"},
    {FM_EC_PROVISION_NOT_FOUND, MHD_HTTP_NOT_FOUND, "no such provisioning request"},
    {FM_EC_PROVISION_NOT_READY, MHD_HTTP_CONFLICT, "the request's file is not ready"},
    {FM_EC_PROVISION_GONE, MHD_HTTP_GONE, "the request expired; its file was removed"},
    {FM_EC_PROVISION_OFF, MHD_HTTP_SERVICE_UNAVAILABLE, "provisioning is not enabled"},
    {FM_EC_NO_DATABASE, MHD_HTTP_SERVICE_UNAVAILABLE, "the server runs without a database"},
    {FM_EC_CONFLICT, MHD_HTTP_CONFLICT,
     "the field's accepted mapping changed since you read it: GET the field again and "
     "decide again with the new 'expect'"},
    {FM_EC_RELOAD_FAILED, MHD_HTTP_UNPROCESSABLE_CONTENT,
     "the model file did not open; the previous model keeps serving"},
    {FM_EC_BATCH_RUNNING, MHD_HTTP_CONFLICT,
     "a batch run is already running: wait for it (GET /v1/batch-runs/{id})"},
};

static int ec_index(fm_http_ec ec) {
  for (size_t i = 0; i < sizeof ec_table / sizeof ec_table[0]; i++)
    if (ec_table[i].ec == ec) return (int)i;
  return -1;
}

unsigned fm_http_ec_status(fm_http_ec ec) {
  int i = ec_index(ec);
  return i < 0 ? MHD_HTTP_INTERNAL_SERVER_ERROR : ec_table[i].status;
}

void fm_http_add_cors(struct MHD_Response *resp) {
  MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
  MHD_add_response_header(resp, "Access-Control-Expose-Headers",
                          "Allow, Retry-After, X-Request-Id");
}

static enum MHD_Result queue(fm_http_req *r, unsigned status, struct MHD_Response *resp) {
  if (!resp) return MHD_NO; /* out of memory: MHD closes the connection */
  fm_http_add_cors(resp);
  if (r->reqid[0]) MHD_add_response_header(resp, "X-Request-Id", r->reqid);
  if (!fm_http_server_ready(r->srv))
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
  if (status == MHD_HTTP_TOO_MANY_REQUESTS || status == MHD_HTTP_SERVICE_UNAVAILABLE)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
  if (status == MHD_HTTP_METHOD_NOT_ALLOWED && r->url) {
    /* Allow: the methods the path does have. */
    char allow[64] = "OPTIONS";
    fm_http_allow(r->url, allow, sizeof allow);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
  }
  enum MHD_Result ret = MHD_queue_response(r->con, status, resp);
  MHD_destroy_response(resp);
  if (ret == MHD_YES) r->status = status;
  return ret;
}

enum MHD_Result fm_http_reply_response(fm_http_req *r, unsigned status,
                                       struct MHD_Response *resp) {
  return queue(r, status, resp);
}

enum MHD_Result fm_http_reply_bytes(fm_http_req *r, unsigned status, const char *ctype,
                                    const void *p, size_t n) {
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(n, (void *)p, MHD_RESPMEM_MUST_COPY);
  if (resp && ctype) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
  return queue(r, status, resp);
}

enum MHD_Result fm_http_reply_json(fm_http_req *r, unsigned status, json_t *j) {
  char *text = j ? json_dumps(j, FM_HTTP_JSON_FLAGS) : NULL;
  json_decref(j);
  if (!text) {
    /* Out of memory building the body: a fixed error, no allocation. */
    static const char oom[] =
        "{\"code\":1600,\"hint\":\"internal error\",\"detail\":\"out of memory\"}";
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        sizeof oom - 1, (void *)oom, MHD_RESPMEM_PERSISTENT);
    if (resp) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    return queue(r, MHD_HTTP_INTERNAL_SERVER_ERROR, resp);
  }
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
  if (!resp) {
    free(text);
    return MHD_NO;
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
  return queue(r, status, resp);
}

enum MHD_Result fm_http_reply_error(fm_http_req *r, fm_http_ec ec, const char *fmt, ...) {
  char detail[512] = "";
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
  }
  int i = ec_index(ec);
  json_t *j = json_object();
  if (j) {
    json_object_set_new(j, "code", json_integer(ec));
    json_object_set_new(j, "hint", json_string(i < 0 ? "internal error" : ec_table[i].hint));
    /* detail may quote client input that is not UTF-8 */
    json_t *d = json_string(detail);
    json_object_set_new(j, "detail", d ? d : json_string("(detail not valid UTF-8)"));
  }
  return fm_http_reply_json(r, fm_http_ec_status(ec), j);
}

enum MHD_Result fm_http_reply_rc(fm_http_req *r, const fm_error *err) {
  fm_http_ec ec;
  switch (err->rc) {
    case FM_ERR_BUSY: ec = FM_EC_DB_BUSY; break;
    case FM_ERR_DB: ec = FM_EC_DB; break;
    case FM_ERR_ARG: case FM_ERR_PARSE: ec = FM_EC_BAD_PARAM; break;
    case FM_ERR_NOTFOUND: ec = FM_EC_FIELD_NOT_FOUND; break;
    case FM_ERR_DENIED: ec = FM_EC_FORBIDDEN; break;
    case FM_ERR_CONFLICT: ec = FM_EC_CONFLICT; break;
    default: ec = FM_EC_INTERNAL; break;
  }
  return fm_http_reply_error(r, ec, "%s", err->msg[0] ? err->msg : fm_rc_name(err->rc));
}
