/* h_admin.c: POST /v1/admin/model/reload (admin): open and check the
 * server's model file again and serve it from the next request on, without
 * dropping a request (fm_http_server_reload, model_ref.c).  The file is the
 * one the server was started with (--model); a client cannot name another
 * path.  A file that does not open leaves the old model serving: 422 with
 * the reason, which is also logged. */
#include "http_internal.h"

#include <stdio.h>

enum MHD_Result fm_h_admin_model_reload(fm_http_req *r) {
  fm_error err;
  fm_error_init(&err);
  fm_model_info mi;
  if (fm_http_server_reload(r->srv, NULL, &mi, &err)) {
    fm_warn("http: model reload failed, the old model keeps serving: %s", err.msg);
    if (err.rc == FM_ERR_NOMEM) return fm_http_reply_rc(r, &err);
    return fm_http_reply_error(r, FM_EC_RELOAD_FAILED, "%s", err.msg);
  }
  char sum[16];
  snprintf(sum, sizeof sum, "%08x", (unsigned)mi.checksum);
  fprintf(stderr, "fieldmatch serve: model reloaded: %s (checksum %s)\n",
          mi.name ? mi.name : "", sum);
  return fm_http_reply_json(r, MHD_HTTP_OK,
                            json_pack("{s:b,s:{s:s,s:s,s:i,s:I,s:I}}", "reloaded", 1, "model",
                                      "name", mi.name ? mi.name : "", "checksum", sum,
                                      "format", (int)mi.format_version, "references",
                                      (json_int_t)mi.nrefs, "queries",
                                      (json_int_t)mi.nqueries));
}
