/* h_openapi.c: GET /openapi.yaml and GET /openapi.json, the HTTP contract
 * (api/openapi.yaml, compiled in by scripts/embed_openapi.py; the JSON is the
 * same document converted at build time).  Public: the contract is no
 * secret, and tools fetch it before they hold a token.  The ETag is a hash
 * of the bytes, so clients revalidate cheaply. */
#include "http_internal.h"

#include <stdio.h>
#include <string.h>

extern const unsigned char fm_openapi_yaml[], fm_openapi_json[];
extern const unsigned long fm_openapi_yaml_len, fm_openapi_json_len;

static enum MHD_Result serve(fm_http_req *r, const unsigned char *p, size_t n,
                             const char *ctype) {
  char etag[24];
  snprintf(etag, sizeof etag, "\"%016llx\"", (unsigned long long)fm_hash64(p, n));
  const char *inm = MHD_lookup_connection_value(r->con, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_IF_NONE_MATCH);
  int fresh = inm && !strcmp(inm, etag);
  struct MHD_Response *resp = fresh
      ? MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT)
      : MHD_create_response_from_buffer(n, (void *)p, MHD_RESPMEM_PERSISTENT);
  if (resp) {
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
  }
  return fm_http_reply_response(r, fresh ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK, resp);
}

enum MHD_Result fm_h_openapi_yaml(fm_http_req *r) {
  return serve(r, fm_openapi_yaml, fm_openapi_yaml_len, "application/yaml; charset=utf-8");
}

enum MHD_Result fm_h_openapi_json(fm_http_req *r) {
  return serve(r, fm_openapi_json, fm_openapi_json_len, "application/json");
}
