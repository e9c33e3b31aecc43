/* h_ui.c: GET /ui/ and GET /ui/{file}: the review app (web/, compiled in by
 * scripts/embed_web.py).  Public, like /openapi.yaml: the files hold no data
 * and no secret; every action the app takes is an API route called with the
 * token the analyst types in.  Each answer carries a strict
 * Content-Security-Policy (scripts and styles from this origin only, no
 * inline script, no framing), nosniff and no referrer.  Unknown names: 404. */
#include "http_internal.h"

#include <stdio.h>
#include <string.h>

typedef struct fm_web_file {
  const char *name, *ctype;
  const unsigned char *p;
  size_t n;
} fm_web_file;
extern const fm_web_file fm_web_files[];
extern const size_t fm_web_nfiles;

#define UI_CSP                                                                      \
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " \
  "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

enum MHD_Result fm_h_ui(fm_http_req *r) {
  const char *name = r->params[0] && *r->params[0] ? r->params[0] : "index.html";
  const fm_web_file *f = NULL;
  for (size_t i = 0; i < fm_web_nfiles && !f; i++)
    if (!strcmp(fm_web_files[i].name, name)) f = &fm_web_files[i];
  if (!f) return fm_http_reply_error(r, FM_EC_NO_ROUTE, "no file %s in the review app", name);
  char etag[24];
  snprintf(etag, sizeof etag, "\"%016llx\"", (unsigned long long)fm_hash64(f->p, f->n));
  const char *inm = MHD_lookup_connection_value(r->con, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_IF_NONE_MATCH);
  int fresh = inm && !strcmp(inm, etag);
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(fresh ? 0 : f->n, fresh ? NULL : (void *)f->p,
                                      MHD_RESPMEM_PERSISTENT);
  if (resp) {
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, f->ctype);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "Content-Security-Policy", UI_CSP);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
  }
  return fm_http_reply_response(r, fresh ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK, resp);
}
