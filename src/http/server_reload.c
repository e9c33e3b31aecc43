/* server_reload.c: hot model reload (SIGHUP, POST /v1/admin/model/reload)
 * and the rebuild of the learning layer from the database that follows a
 * new model or a start.  The server object is server_internal.h's. */
#include "server_internal.h"

fm_rc fm_http_server_reload(fm_http_server *srv, const char *path, fm_model_info *info,
                            fm_error *err) {
  if (!path) path = srv->opts.model_path;
  if (!path) return fm_error_set(err, FM_ERR_ARG, "http: the server was started without a model path");
  pthread_mutex_lock(&srv->reload_mu);
  fm_model *m = NULL;
  fm_http_mref *h = NULL;
  fm_rc rc = fm_model_open(path, &m, err);
  if (!rc) rc = fm_http_mref_new(m, m, srv->model_gen + 1, &h, err);
  if (rc) {
    if (!h) fm_model_close(m);
    pthread_mutex_unlock(&srv->reload_mu);
    return rc;
  }
  pthread_mutex_lock(&srv->model_mu);
  fm_http_mref *old = srv->cur;
  srv->cur = h;
  srv->model_gen++;
  pthread_mutex_unlock(&srv->model_mu);
  fm_http_model_release(srv, old); /* closed when its last request ends */
  if (info) fm_model_info_get(m, info);
  fm_http_learn_from_db(srv); /* the layer of the new model */
  pthread_mutex_unlock(&srv->reload_mu);
  return FM_OK;
}

/* Rebuild the learning layer from the database on a connection of its own
 * (start, reload); a failure is logged: lookups go on with the old layer. */
void fm_http_learn_from_db(fm_http_server *srv) {
  if (!srv->db_path) return;
  fm_error err;
  fm_error_init(&err);
  fm_store *st;
  fm_rc rc = fm_store_open(srv->db_path, NULL, &st, &err);
  if (!rc) {
    rc = fm_http_learn_refresh(srv, st, &err);
    fm_store_close(st);
  }
  if (rc) fm_warn("http: learning layer not rebuilt: %s", err.msg);
}
