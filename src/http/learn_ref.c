/* learn_ref.c: the served learning layer, rebuilt after each decision
 * without a restart (docs/scoring.md, "Learning from decisions").
 *
 * Like the model (model_ref.c), the layer sits in a reference-counted
 * holder.  A lookup takes a reference to the current holder, ranks with its
 * immutable layer and lets go; the writer (a decision, a reload, the start)
 * builds a new layer from the store on its own connection, then swaps the
 * holder in under the mutex.  The old layer is freed when its last reader
 * lets go.  Rebuilds are serialized (build_mu), so two decisions never race
 * to install an older layer over a newer one.  Each holder pins the model
 * it was built for, so its term ids stay valid; a layer of a model that a
 * reload replaced is ignored by fm_match_learned until the next rebuild.
 *
 * Generations number the holders; the ranking cache keys carry it, so a
 * ranking of an old layer is never served.
 *
 * Ownership: every holder and layer is the server's. */
#include "http_internal.h"

struct fm_http_lref {
  fm_http_server *srv;
  fm_learn *L;         /* owned */
  fm_http_mref *mref;  /* pinned: the model L was built for */
  uint64_t gen;
  long refs;           /* guarded by the state's mu */
};

void fm_http_learn_init(fm_http_learn_state *s) {
  pthread_mutex_init(&s->mu, NULL);
  pthread_mutex_init(&s->build_mu, NULL);
  s->cur = NULL;
  s->gen = 0;
}

void fm_http_learn_destroy(fm_http_server *srv, fm_http_learn_state *s) {
  fm_http_learn_release(srv, s->cur);
  s->cur = NULL;
  pthread_mutex_destroy(&s->mu);
  pthread_mutex_destroy(&s->build_mu);
}

fm_http_lref *fm_http_learn_acquire(fm_http_server *srv) {
  fm_http_learn_state *s = fm_http_server_learn(srv);
  pthread_mutex_lock(&s->mu);
  fm_http_lref *h = s->cur;
  if (h) h->refs++;
  pthread_mutex_unlock(&s->mu);
  return h;
}

void fm_http_learn_release(fm_http_server *srv, fm_http_lref *h) {
  if (!h) return;
  fm_http_learn_state *s = fm_http_server_learn(srv);
  pthread_mutex_lock(&s->mu);
  long left = --h->refs;
  pthread_mutex_unlock(&s->mu);
  if (left) return;
  fm_learn_free(h->L); /* before its model */
  fm_http_model_release(srv, h->mref);
  fm_free(h);
}

const fm_learn *fm_http_lref_layer(const fm_http_lref *h) { return h ? h->L : NULL; }
uint64_t fm_http_lref_gen(const fm_http_lref *h) { return h ? h->gen : 0; }

fm_rc fm_http_learn_refresh(fm_http_server *srv, fm_store *st, fm_error *err) {
  fm_http_learn_state *s = fm_http_server_learn(srv);
  pthread_mutex_lock(&s->build_mu);
  fm_http_mref *mref = fm_http_model_acquire(srv);
  fm_learn *L = NULL;
  fm_rc rc = fm_jobs_learn_build(st, fm_http_mref_model(mref), NULL, &L, err);
  fm_http_lref *h = NULL;
  if (!rc && !(h = fm_calloc(1, sizeof *h)))
    rc = fm_error_set(err, FM_ERR_NOMEM, "http: out of memory for the learning layer");
  if (rc) {
    fm_learn_free(L);
    fm_http_model_release(srv, mref);
    pthread_mutex_unlock(&s->build_mu);
    return rc;
  }
  *h = (fm_http_lref){.srv = srv, .L = L, .mref = mref, .refs = 1};
  pthread_mutex_lock(&s->mu);
  fm_http_lref *old = s->cur;
  h->gen = ++s->gen;
  s->cur = h;
  pthread_mutex_unlock(&s->mu);
  fm_http_learn_release(srv, old);
  pthread_mutex_unlock(&s->build_mu);
  return FM_OK;
}
