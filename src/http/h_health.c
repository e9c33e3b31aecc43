/* h_health.c: GET /healthz (the process answers) and GET /readyz (it
 * serves: model loaded, database reachable, not shutting down). */
#include "http_internal.h"

enum MHD_Result fm_h_healthz(fm_http_req *r) {
  return fm_http_reply_json(r, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"));
}

enum MHD_Result fm_h_readyz(fm_http_req *r) {
  if (!fm_http_server_ready(r->srv))
    return fm_http_reply_error(r, FM_EC_NOT_READY, "starting up or shutting down");
  fm_error err;
  fm_error_init(&err);
  fm_http_worker *w = fm_http_worker_get(r->srv, &err);
  fm_store *st = NULL;
  if (!w) return fm_http_reply_rc(r, &err);
  fm_rc rc = fm_http_worker_store(w, &st, &err);
  if (rc && rc != FM_ERR_ARG) return fm_http_reply_rc(r, &err);
  fm_model_info mi;
  fm_model_info_get(fm_http_model(r->srv), &mi);
  return fm_http_reply_json(r, MHD_HTTP_OK,
                            json_pack("{s:s,s:s,s:b}", "status", "ready", "model",
                                      mi.name ? mi.name : "", "database", st != NULL));
}
