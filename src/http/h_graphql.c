/* h_graphql.c: the GraphQL endpoint (docs/graphql.md), GraphQL over HTTP:
 *   POST /graphql  {"query","variables","operationName"}   reader
 *   GET  /graphql?query=&variables=&operationName=         reader, queries only
 * The same bearer tokens and roles as REST: the route needs a reader; what
 * a resolver shows follows the REST rules (provisioning requests: the
 * caller's own, an admin's all).  A request that is not a GraphQL request
 * (body not JSON, no query) gets the transport error body
 * {"code","hint","detail"} with 400; a mutation over GET gets 405.  A
 * GraphQL request gets the GraphQL response {"data","errors"}: with
 * `Accept: application/graphql-response+json` as that media type, 200 when
 * it executed and 400 when it did not (syntax, validation, limits,
 * variables); otherwise as application/json with 200 (the draft's rule
 * for legacy clients). */
#include "http_internal.h"

#include <string.h>

#include "fm_graphql.h"

#define GQL_MEDIA "application/graphql-response+json"

static enum MHD_Result execute(fm_http_req *r, const char *query, const json_t *vars,
                               const char *opname, int is_get) {
  fm_error err;
  fm_error_init(&err);
  const fm_gql_schema *s = fm_http_gql_schema(&err);
  if (!s) return fm_http_reply_error(r, FM_EC_INTERNAL, "the GraphQL schema: %s", err.msg);
  fm_gql_request req = {query, strlen(query), vars, opname, is_get, r};
  fm_gql_limits lim;
  fm_gql_limits_default(&lim);
  json_t *resp = NULL;
  fm_gql_outcome out;
  if (fm_gql_execute(s, &req, &lim, &resp, &out, &err)) return fm_http_reply_rc(r, &err);
  if (out == FM_GQL_MUTATION_REFUSED) {
    json_decref(resp);
    return fm_http_reply_error(r, FM_EC_METHOD, "mutations need POST /graphql");
  }
  const char *accept = MHD_lookup_connection_value(r->con, MHD_HEADER_KIND, "Accept");
  int modern = accept && strstr(accept, GQL_MEDIA);
  char *text = json_dumps(resp, JSON_COMPACT);
  json_decref(resp);
  if (!text) return fm_http_reply_error(r, FM_EC_INTERNAL, "out of memory");
  unsigned status = modern && out != FM_GQL_EXECUTED ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_OK;
  enum MHD_Result ret = fm_http_reply_bytes(r, status, modern ? GQL_MEDIA : "application/json",
                                            text, strlen(text));
  free(text);
  return ret;
}

enum MHD_Result fm_h_graphql_post(fm_http_req *r) {
  json_error_t je;
  json_t *body = json_loadb(r->body.buf ? r->body.buf : "", r->body.len, JSON_REJECT_DUPLICATES, &je);
  if (!json_is_object(body)) {
    int parsed = body != NULL;
    json_decref(body);
    return fm_http_reply_error(r, FM_EC_BAD_JSON, "expected {\"query\",\"variables\",\"operationName\"}: %s",
                               parsed ? "not an object" : je.text);
  }
  json_t *q = json_object_get(body, "query"), *v = json_object_get(body, "variables"),
         *op = json_object_get(body, "operationName");
  const char *bad = !json_is_string(q)                       ? "query must be a string"
                    : v && !json_is_object(v) && !json_is_null(v) ? "variables must be an object"
                    : op && !json_is_string(op) && !json_is_null(op) ? "operationName must be a string"
                                                                 : NULL;
  if (bad) {
    json_decref(body);
    return fm_http_reply_error(r, FM_EC_BAD_JSON, "%s", bad);
  }
  enum MHD_Result ret = execute(r, json_string_value(q), json_is_object(v) ? v : NULL,
                                json_string_value(op), 0);
  json_decref(body);
  return ret;
}

enum MHD_Result fm_h_graphql_get(fm_http_req *r) {
  const char *q = fm_http_arg(r, "query"), *vt = fm_http_arg(r, "variables"),
             *op = fm_http_arg(r, "operationName");
  if (!q) return fm_http_reply_error(r, FM_EC_BAD_PARAM, "query is required");
  json_t *v = NULL;
  if (vt && *vt) {
    json_error_t je;
    v = json_loads(vt, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(v) && !json_is_null(v)) {
      json_decref(v);
      return fm_http_reply_error(r, FM_EC_BAD_PARAM, "variables must be a JSON object");
    }
  }
  enum MHD_Result ret = execute(r, q, json_is_object(v) ? v : NULL, op && *op ? op : NULL, 1);
  json_decref(v);
  return ret;
}
