/* batch_bg.c: one batch run in a background thread (fm_jobs_batch_*), what
 * `POST /v1/batch-runs` starts.  The thread has its own store connection
 * (the server's per-worker connections stay free for requests; SQLite's
 * locking and fm_store_tx's BUSY retries let both write) and runs
 * fm_batch_run in slices: the first is one part, after which the run exists
 * and the caller gets its id; later slices are about 1/16 of the run.
 * Between slices it checks the stop flag.  Progress is read from the store,
 * which is the truth also for runs of other processes; the controller only
 * adds whether it is running a run and its last committed part. */
#include "fm_jobs.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define SLICES 16 /* later slices are about n_parts / SLICES parts */

struct fm_jobs_batch {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t th;
  int joinable;   /* th was started and not joined yet */
  int running;    /* the thread works on a run */
  int stop;       /* ask the thread to stop after its slice */
  int started;    /* the first slice returned (run_id set, or failed) */
  int64_t run_id; /* the run being worked on (0 until it exists) */
  fm_rc rc;       /* the first slice's result */
  fm_error err;
  int64_t last_part; /* last part committed by this controller, from on_part */
  char last_part_at[32];
  /* The thread's inputs, owned here while it runs. */
  char *db_path;
  const fm_model *model; /* borrowed from the caller until release */
  void (*release)(void *ctx); /* the caller's "done with model", or NULL */
  void *release_ctx;
  fm_batch_opts o;
  char actor[FM_TOKEN_OWNER_MAX + 1];
};

fm_rc fm_jobs_batch_new(fm_jobs_batch **out, fm_error *err) {
  *out = fm_calloc(1, sizeof **out);
  if (!*out) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  pthread_mutex_init(&(*out)->mu, NULL);
  pthread_cond_init(&(*out)->cv, NULL);
  return FM_OK;
}

/* Hand the model back to the caller (once). */
static void release_model(fm_jobs_batch *b) {
  if (b->release) b->release(b->release_ctx);
  b->release = NULL;
  b->release_ctx = NULL;
  b->model = NULL;
}

/* Join a finished (or stopping) thread.  Call with mu held; returns with
 * it held. */
static void join_locked(fm_jobs_batch *b) {
  if (!b->joinable) return;
  pthread_mutex_unlock(&b->mu);
  pthread_join(b->th, NULL);
  pthread_mutex_lock(&b->mu);
  b->joinable = 0;
  fm_free(b->db_path);
  b->db_path = NULL;
  release_model(b);
}

void fm_jobs_batch_free(fm_jobs_batch *b) {
  if (!b) return;
  pthread_mutex_lock(&b->mu);
  b->stop = 1;
  join_locked(b);
  pthread_mutex_unlock(&b->mu);
  pthread_cond_destroy(&b->cv);
  pthread_mutex_destroy(&b->mu);
  fm_free(b);
}

static void on_part(void *ctx, int64_t part_no, int64_t n_parts, const fm_batch_counts *c,
                    int skipped) {
  (void)n_parts;
  (void)c;
  fm_jobs_batch *b = ctx;
  if (skipped) return; /* a slice passing parts an earlier slice committed */
  pthread_mutex_lock(&b->mu);
  b->last_part = part_no;
  fm_store_now(b->last_part_at, sizeof b->last_part_at);
  pthread_mutex_unlock(&b->mu);
}

static void *batch_thread(void *arg) {
  fm_jobs_batch *b = arg;
  fm_error err;
  fm_error_init(&err);
  fm_store *st = NULL;
  fm_batch_opts o = b->o;
  o.quiet = 1;
  o.actor = b->actor;
  o.on_part = on_part;
  o.on_part_ctx = b;
  o.kill_at = ""; /* never the test hook's environment variable in a server */
  fm_rc rc = fm_store_open(b->db_path, NULL, &st, &err);
  int64_t slice = 1;
  while (!rc) {
    fm_batch_report rep;
    int64_t run = 0;
    o.max_parts = slice;
    rc = fm_batch_run(st, b->model, &o, &run, &rep, &err);
    pthread_mutex_lock(&b->mu);
    if (!b->started) {
      b->started = 1;
      b->run_id = run;
      b->rc = rc;
      b->err = err;
      pthread_cond_broadcast(&b->cv);
    }
    int stop = b->stop;
    pthread_mutex_unlock(&b->mu);
    if (rc) {
      fm_warn("http: batch run %lld: %s", (long long)run, err.msg);
      break;
    }
    if (rep.finished || stop) break;
    o.resume_run = run;
    slice = rep.n_parts / SLICES > 1 ? rep.n_parts / SLICES : 1;
  }
  fm_store_close(st);
  pthread_mutex_lock(&b->mu);
  if (!b->started) { /* the store did not open */
    b->started = 1;
    b->rc = rc;
    b->err = err;
  }
  b->running = 0;
  pthread_cond_broadcast(&b->cv);
  pthread_mutex_unlock(&b->mu);
  return NULL;
}

fm_rc fm_jobs_batch_start(fm_jobs_batch *b, const char *db_path, const fm_model *m,
                          void (*release)(void *ctx), void *release_ctx,
                          const fm_batch_opts *o, const char *actor, int64_t *run_id,
                          int *busy, fm_error *err) {
  *run_id = 0;
  *busy = 0;
  pthread_mutex_lock(&b->mu);
  if (b->running) {
    *run_id = b->run_id;
    *busy = 1;
    pthread_mutex_unlock(&b->mu);
    if (release) release(release_ctx); /* exactly once, also when refused */
    return fm_error_set(err, FM_ERR_CONFLICT, "batch run %lld is running",
                        (long long)*run_id);
  }
  join_locked(b); /* the previous run's thread, finished */
  b->model = m;
  b->release = release;
  b->release_ctx = release_ctx;
  b->db_path = fm_strdup(db_path);
  if (!b->db_path) {
    release_model(b);
    pthread_mutex_unlock(&b->mu);
    return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  }
  b->o = *o;
  snprintf(b->actor, sizeof b->actor, "%s", actor ? actor : "");
  b->running = 1;
  b->stop = 0;
  b->started = 0;
  b->run_id = 0;
  b->last_part = 0;
  b->last_part_at[0] = '\0';
  fm_error_init(&b->err);
  if (pthread_create(&b->th, NULL, batch_thread, b) != 0) {
    b->running = 0;
    fm_free(b->db_path);
    b->db_path = NULL;
    release_model(b);
    pthread_mutex_unlock(&b->mu);
    return fm_error_set(err, FM_ERR_INTERNAL, "cannot start the batch thread");
  }
  b->joinable = 1;
  /* Wait for the first slice: then the run exists (or failed to start).
   * When it failed the thread is ending: wait for that too, so the next
   * start does not find it "running". */
  while (!b->started || (b->rc && b->running)) pthread_cond_wait(&b->cv, &b->mu);
  *run_id = b->run_id;
  fm_rc rc = b->rc;
  if (rc && err) *err = b->err;
  pthread_mutex_unlock(&b->mu);
  return rc;
}

int fm_jobs_batch_active(fm_jobs_batch *b, int64_t run_id, int64_t *last_part,
                         char *last_at) {
  pthread_mutex_lock(&b->mu);
  int active = b->running && b->run_id == run_id;
  if (last_part) *last_part = active ? b->last_part : 0;
  if (last_at) snprintf(last_at, 32, "%s", active ? b->last_part_at : "");
  pthread_mutex_unlock(&b->mu);
  return active;
}
