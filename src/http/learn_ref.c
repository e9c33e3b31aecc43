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
 * With a database, one learner thread runs the rebuilds that decisions ask
 * for (fm_http_learn_request).  A rebuild ranks every decided query and
 * costs about 0.3 ms per decided field on the Bloomberg model
 * (tests/bench/bench_learn.c), so a store with thousands of decisions
 * takes seconds: a decision's answer waits for its rebuild only up to
 * learn_wait_ms, and the decisions made while a rebuild runs are served
 * by the next one together, instead of each holding a worker thread for a
 * rebuild of its own.
 *
 * Ownership: every holder and layer is the server's. */
#include "http_internal.h"

#include <errno.h>
#include <time.h>

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
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the waits' deadlines */
  pthread_cond_init(&s->work, &ca);
  pthread_cond_init(&s->done, &ca);
  pthread_condattr_destroy(&ca);
  s->cur = NULL;
  s->gen = 0;
  s->thr_ok = s->stop = 0;
  s->wanted = s->built = s->rebuilds = 0;
}

void fm_http_learn_destroy(fm_http_server *srv, fm_http_learn_state *s) {
  if (s->thr_ok) { /* a rebuild under way finishes first */
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_broadcast(&s->work);
    pthread_cond_broadcast(&s->done);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thr, NULL);
    s->thr_ok = 0;
  }
  pthread_cond_destroy(&s->work);
  pthread_cond_destroy(&s->done);
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

/* The learner: waits for requests, then rebuilds once for all of them on a
 * connection of its own (fm_http_learn_from_db logs a failure and keeps the
 * old layer; its waiters are released either way). */
static void *learner(void *arg) {
  fm_http_server *srv = arg;
  fm_http_learn_state *s = fm_http_server_learn(srv);
  pthread_mutex_lock(&s->mu);
  for (;;) {
    while (!s->stop && s->built >= s->wanted) pthread_cond_wait(&s->work, &s->mu);
    if (s->stop) break;
    uint64_t upto = s->wanted; /* every request made before the build reads */
    pthread_mutex_unlock(&s->mu);
    fm_http_learn_from_db(srv);
    pthread_mutex_lock(&s->mu);
    s->built = upto;
    s->rebuilds++;
    pthread_cond_broadcast(&s->done);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

fm_rc fm_http_learn_start(fm_http_server *srv, fm_error *err) {
  fm_http_learn_state *s = fm_http_server_learn(srv);
  if (s->thr_ok) return FM_OK;
  if (pthread_create(&s->thr, NULL, learner, srv) != 0)
    return fm_error_set(err, FM_ERR_INTERNAL, "http: cannot start the learning thread");
  s->thr_ok = 1;
  return FM_OK;
}

int fm_http_learn_request(fm_http_server *srv, unsigned wait_ms) {
  fm_http_learn_state *s = fm_http_server_learn(srv);
  if (!s->thr_ok) return 0; /* no database: no decision reaches here */
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += wait_ms / 1000;
  until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&s->mu);
  uint64_t mine = ++s->wanted;
  pthread_cond_signal(&s->work);
  while (wait_ms && !s->stop && s->built < mine)
    if (pthread_cond_timedwait(&s->done, &s->mu, &until) == ETIMEDOUT) break;
  int in = s->built >= mine;
  pthread_mutex_unlock(&s->mu);
  return in;
}

void fm_http_learn_stats(const fm_http_server *srv, uint64_t *rebuilds, uint64_t *pending) {
  /* reads only; the cast is for the mutex, which a reader locks too */
  fm_http_learn_state *s = fm_http_server_learn((fm_http_server *)srv);
  pthread_mutex_lock(&s->mu);
  *rebuilds = s->rebuilds;
  *pending = s->wanted - s->built;
  pthread_mutex_unlock(&s->mu);
}
