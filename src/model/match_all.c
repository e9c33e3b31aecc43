/* match_all.c: every query (or a range) matched on threads, results in
 * query order, optionally handed to a sink while matching continues.  One
 * query at a time is match.c's. */
#include "model_internal.h"
#include "linalg_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- all queries, in threads ------------------------------------------- */
/* Workers take units of `chunk` queries from a shared cursor.  With a sink,
 * finished units are handed to it in query order: the worker that completes
 * the next unit to deliver (or finds it completed when it takes the token)
 * delivers it and every completed unit after it, while the other workers
 * keep matching.  So the sink's work (formatting, writing) runs beside the
 * matching instead of after it, one call at a time. */
typedef struct job {
  const fm_model *m;
  const fm_learn *L;    /* borrowed, may be NULL: fm_match_learned */
  int k;
  fm_candidate *out;    /* row of query i: out + (i - lo) * k */
  int *nout;            /* of query i: nout[i - lo] */
  size_t lo, hi;        /* the queries [lo, hi) */
  size_t chunk, nunits;
  size_t next;          /* shared cursor (queries), under lock */
  pthread_mutex_t lock;
  fm_progress *pg;
  size_t done;
  unsigned char *unit_done; /* per unit, under lock (sink only) */
  size_t deliver;           /* next unit to hand to the sink, under lock */
  int delivering;           /* a worker holds the delivery token */
  fm_match_sink sink;
  void *sink_ctx;
  fm_rc rc;
  fm_error err;
} job;

#define CHUNK 256

/* Record a failure (the first one wins); under lock. */
static void job_fail(job *j, fm_rc rc, const fm_error *err) {
  if (rc != FM_OK && j->rc == FM_OK) {
    j->rc = rc;
    j->err = *err;
  }
}

/* Unit u is matched: mark it, and deliver what is now deliverable unless
 * another worker holds the token.  Called with the lock held; returns with
 * it held. */
static void job_unit_done(job *j, size_t u) {
  j->unit_done[u] = 1;
  if (j->delivering) return;
  j->delivering = 1;
  while (j->rc == FM_OK && j->deliver < j->nunits && j->unit_done[j->deliver]) {
    size_t d = j->deliver, first = j->lo + d * j->chunk;
    size_t n = first + j->chunk < j->hi ? j->chunk : j->hi - first;
    pthread_mutex_unlock(&j->lock);
    fm_error err;
    fm_error_init(&err);
    fm_rc rc = j->sink(j->sink_ctx, first, n, j->out + (first - j->lo) * (size_t)j->k,
                       j->nout + (first - j->lo), &err);
    pthread_mutex_lock(&j->lock);
    job_fail(j, rc, &err);
    j->deliver = d + 1;
  }
  j->delivering = 0;
}

static void *worker(void *arg) {
  job *j = arg;
  fm_matcher *mt = NULL;
  fm_error err;
  fm_error_init(&err);
  fm_rc rc = fm_matcher_new(j->m, &mt, &err);
  for (;;) {
    pthread_mutex_lock(&j->lock);
    size_t start = j->next;
    int stop = rc != FM_OK || j->rc != FM_OK || start >= j->hi;
    if (!stop) j->next += j->chunk;
    pthread_mutex_unlock(&j->lock);
    if (stop) break;
    size_t end = start + j->chunk < j->hi ? start + j->chunk : j->hi;
    for (size_t i = start; i < end && rc == FM_OK; i++) {
      fm_field f;
      fm_rec_to_field(j->m, &j->m->qrys[i], &f);
      fm_candidate *o = j->out + (i - j->lo) * (size_t)j->k;
      rc = j->L ? fm_match_learned(mt, j->L, NULL, &f, j->k, o, &j->nout[i - j->lo], &err)
                : fm_match_vec(mt, &f, j->m->qrys[i].kind, j->k, o, &j->nout[i - j->lo], &err);
    }
    pthread_mutex_lock(&j->lock);
    j->done += end - start;
    fm_progress_update(j->pg, j->done);
    if (rc == FM_OK && j->sink) job_unit_done(j, (start - j->lo) / j->chunk);
    pthread_mutex_unlock(&j->lock);
  }
  pthread_mutex_lock(&j->lock);
  job_fail(j, rc, &err);
  pthread_mutex_unlock(&j->lock);
  fm_matcher_free(mt);
  return NULL;
}

fm_rc fm_match_range_ordered(const fm_model *m, size_t lo, size_t hi, int k, int threads,
                             int quiet, size_t chunk, fm_candidate *out, int *nout,
                             fm_match_sink sink, void *sink_ctx, fm_error *err) {
  return fm_match_range_learned(m, NULL, lo, hi, k, threads, quiet, chunk, out, nout, sink,
                                sink_ctx, err);
}

fm_rc fm_match_range_learned(const fm_model *m, const fm_learn *L, size_t lo, size_t hi, int k,
                             int threads, int quiet, size_t chunk, fm_candidate *out,
                             int *nout, fm_match_sink sink, void *sink_ctx, fm_error *err) {
  if (k <= 0) return fm_error_set(err, FM_ERR_ARG, "k must be positive");
  if (lo > hi || hi > m->nqrys)
    return fm_error_set(err, FM_ERR_ARG, "query range [%zu, %zu) outside the model's %zu",
                        lo, hi, (size_t)m->nqrys);
  if (threads <= 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    threads = n > 0 ? (int)n : 1;
  }
  if (threads > 64) threads = 64;
  if (chunk == 0) chunk = CHUNK;
  if (!fm_learn_active(L)) L = NULL; /* the model alone: fm_match_vec */
  job j = {.m = m, .L = L, .k = k, .out = out, .nout = nout, .lo = lo, .hi = hi, .next = lo,
           .chunk = chunk, .sink = sink, .sink_ctx = sink_ctx, .rc = FM_OK};
  j.nunits = (hi - lo) / chunk + ((hi - lo) % chunk != 0);
  if (sink && !(j.unit_done = fm_calloc(j.nunits ? j.nunits : 1, 1)))
    return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  fm_progress pg;
  fm_progress_start(&pg, "map", hi - lo);
  if (quiet) pg.enabled = 0;
  j.pg = &pg;
  fm_error_init(&j.err);
  pthread_mutex_init(&j.lock, NULL);
  pthread_t tid[64];
  int started = 0;
  for (int i = 0; i < threads; i++) {
    if (pthread_create(&tid[i], NULL, worker, &j) != 0) break;
    started++;
  }
  if (started == 0) worker(&j);
  for (int i = 0; i < started; i++) pthread_join(tid[i], NULL);
  pthread_mutex_destroy(&j.lock);
  fm_progress_finish(&pg);
  fm_free(j.unit_done);
  if (j.rc != FM_OK) {
    if (err) *err = j.err;
    return j.rc;
  }
  return FM_OK;
}

fm_rc fm_match_all_ordered(const fm_model *m, int k, int threads, int quiet, size_t chunk,
                           fm_candidate *out, int *nout, fm_match_sink sink, void *sink_ctx,
                           fm_error *err) {
  return fm_match_range_ordered(m, 0, m->nqrys, k, threads, quiet, chunk, out, nout, sink,
                                sink_ctx, err);
}

fm_rc fm_match_all(const fm_model *m, int k, int threads, int quiet, fm_candidate *out,
                   int *nout, fm_error *err) {
  return fm_match_all_ordered(m, k, threads, quiet, 0, out, nout, NULL, NULL, err);
}
