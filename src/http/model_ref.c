/* model_ref.c: the served model, swappable while requests run (hot reload).
 *
 * The server holds the current model in a reference-counted holder.  Each
 * worker thread pins one holder (and keeps a matcher over its model) and,
 * at the start of every request, moves to the current holder if a reload
 * swapped it (fm_http_worker_sync).  A request therefore sees one model from
 * start to end; the old model is closed when the last thread or background
 * job that pinned it lets go.  Nothing is dropped: a reload only changes
 * what the next request pins.
 *
 * Generations number the holders (1, 2, ...); the ranking cache keys carry
 * the generation, so a ranking of the old model is never served for the new.
 *
 * Ownership: the first model is the caller's (fm_http_server_start) and is
 * never closed here; every model opened by fm_http_server_reload is the
 * holder's and is closed with it. */
#include "http_internal.h"

#include <stdlib.h>
#include <string.h>

struct fm_http_mref {
  const fm_model *m;
  fm_model *owned; /* closed with the holder; NULL for the caller's model */
  uint64_t gen;
  long refs; /* guarded by the server's model mutex */
};

fm_rc fm_http_mref_new(const fm_model *m, fm_model *owned, uint64_t gen, fm_http_mref **out,
                       fm_error *err) {
  fm_http_mref *h = fm_calloc(1, sizeof *h);
  if (!h) return fm_error_set(err, FM_ERR_NOMEM, "http: out of memory for the model holder");
  h->m = m;
  h->owned = owned;
  h->gen = gen;
  h->refs = 1;
  *out = h;
  return FM_OK;
}

const fm_model *fm_http_mref_model(const fm_http_mref *h) { return h->m; }
uint64_t fm_http_mref_gen(const fm_http_mref *h) { return h->gen; }

fm_http_mref *fm_http_mref_acquire(pthread_mutex_t *mu, fm_http_mref *const *cur) {
  pthread_mutex_lock(mu);
  fm_http_mref *h = *cur;
  h->refs++;
  pthread_mutex_unlock(mu);
  return h;
}

void fm_http_mref_release(pthread_mutex_t *mu, fm_http_mref *h) {
  if (!h) return;
  pthread_mutex_lock(mu);
  long left = --h->refs;
  pthread_mutex_unlock(mu);
  if (left) return;
  fm_model_close(h->owned);
  fm_free(h);
}

fm_rc fm_http_worker_sync(fm_http_worker *w, fm_error *err) {
  fm_http_mref *cur = fm_http_server_mref_peek(w->srv);
  if (w->mref == cur && w->matcher) return FM_OK;
  fm_http_mref *h = fm_http_model_acquire(w->srv);
  fm_matcher *mt = NULL;
  fm_rc rc = fm_matcher_new(fm_http_mref_model(h), &mt, err);
  if (rc) {
    fm_http_model_release(w->srv, h);
    return rc;
  }
  fm_matcher_free(w->matcher);
  fm_http_model_release(w->srv, w->mref);
  w->matcher = mt;
  w->mref = h;
  return FM_OK;
}
