/* runner.c: the background threads of `fieldmatch serve` (fm_provision.h):
 * the provisioning worker and the hourly snapshot scheduler.
 *
 * One mutex and one condition variable (CLOCK_MONOTONIC for the poll,
 * the wall clock only to compute how far away the next UTC hour is) carry
 * "stop" and "wake"; each thread waits with a deadline, never sleeps, so
 * fm_prov_runner_stop returns as soon as the current unit of work (one
 * request, one snapshot run) is done.  Each thread opens its own store:
 * an fm_store is one connection for one thread. */
#include "fm_jobs.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct fm_prov_runner {
  fm_prov_runner_opts o;
  fm_snapshot_opts snap;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stop, wake; /* under mu */
  pthread_t prov, sched;
  int prov_live, sched_live;
};

void fm_prov_runner_opts_default(fm_prov_runner_opts *o) {
  memset(o, 0, sizeof *o);
  o->poll_ms = 2000;
  o->lease_seconds = 600;
}

static void logf_(fm_prov_runner *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(fm_prov_runner *r, const char *fmt, ...) {
  if (!r->o.log) return;
  char msg[FM_ERRMSG_MAX + 128];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  r->o.log(r->o.log_ctx, msg);
}

/* Wait until woken, stopped or `ms` milliseconds (monotonic) have passed.
 * Returns 1 when stopping.  Consumes a pending wake only when want_wake. */
static int wait_ms(fm_prov_runner *r, long ms, int want_wake) {
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += ms / 1000;
  until.tv_nsec += (ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&r->mu);
  int rc = 0;
  while (!r->stop && !(want_wake && r->wake) && rc != ETIMEDOUT)
    rc = pthread_cond_timedwait(&r->cv, &r->mu, &until);
  if (want_wake) r->wake = 0;
  int stop = r->stop;
  pthread_mutex_unlock(&r->mu);
  return stop;
}

static int stopping(fm_prov_runner *r) {
  pthread_mutex_lock(&r->mu);
  int s = r->stop;
  pthread_mutex_unlock(&r->mu);
  return s;
}

static void *prov_main(void *arg) {
  fm_prov_runner *r = arg;
  fm_store *st = NULL;
  fm_error err;
  fm_error_init(&err);
  if (fm_store_open(r->o.db_path, NULL, &st, &err)) {
    logf_(r, "provisioning: cannot open the database: %s", err.msg);
    return NULL;
  }
  size_t n = 0;
  fm_error_init(&err);
  if (fm_prov_recover(st, &n, &err))
    logf_(r, "provisioning: recovery failed: %s", err.msg);
  else if (n)
    logf_(r, "provisioning: %zu request(s) left running by a previous server are pending again",
          n);
  while (!stopping(r)) {
    fm_error_init(&err);
    if (fm_prov_expire(st, r->o.root, (int64_t)time(NULL), &n, &err))
      logf_(r, "provisioning: expiry: %s", err.msg);
    else if (n)
      logf_(r, "provisioning: expired %zu request(s)", n);
    /* Drain the queue, one request at a time, checking stop between. */
    int did = 1;
    while (did && !stopping(r)) {
      fm_error_init(&err);
      fm_rc rc = fm_prov_run_next(st, r->o.root, r->o.lease_seconds, &did, &err);
      if (rc) {
        logf_(r, "provisioning: %s", err.msg);
        if (!did) break; /* the queue itself cannot be read: wait for the next poll */
      }
    }
    if (wait_ms(r, r->o.poll_ms, 1)) break;
  }
  fm_store_close(st);
  return NULL;
}

static void on_partition(void *ctx, const fm_snapshot_partition *p) {
  fm_prov_runner *r = ctx;
  if (p->outcome == FM_SNAPSHOT_WRITTEN)
    logf_(r, "snapshot: %s dt=%s hr=%02d: %lld rows", p->job, p->dt, p->hr,
          (long long)p->rows_written);
  else if (p->outcome == FM_SNAPSHOT_FAILED)
    logf_(r, "snapshot: %s dt=%s hr=%02d failed: %s", p->job, p->dt, p->hr, p->detail);
}

static void *sched_main(void *arg) {
  fm_prov_runner *r = arg;
  fm_store *st = NULL;
  fm_error err;
  fm_error_init(&err);
  if (fm_store_open(r->o.db_path, NULL, &st, &err)) {
    logf_(r, "snapshot scheduler: cannot open the database: %s", err.msg);
    return NULL;
  }
  while (!stopping(r)) {
    fm_snapshot_result res;
    memset(&res, 0, sizeof res);
    fm_error_init(&err);
    if (fm_snapshot_run_due(st, r->o.snapshot_root, (int64_t)time(NULL), &r->snap, &res, &err))
      logf_(r, "snapshot scheduler: %s", err.msg);
    logf_(r, "snapshot scheduler: %zu written, %zu skipped, %zu failed, %zu expired",
          res.written, res.skipped, res.failed, res.expired);
    /* Until the top of the next UTC hour (plus a second, so the hour has
     * begun), measured on the wall clock, waited on the monotonic one. */
    time_t now = time(NULL);
    long ms = (long)(3600 - now % 3600) * 1000 + 1000;
    if (wait_ms(r, ms, 0)) break;
  }
  fm_store_close(st);
  return NULL;
}

fm_rc fm_prov_runner_start(const fm_prov_runner_opts *o, fm_prov_runner **out,
                           fm_error *err) {
  *out = NULL;
  if (!o || !o->db_path) return fm_error_set(err, FM_ERR_ARG, "the runner needs a database");
  fm_prov_runner *r = fm_calloc(1, sizeof *r);
  if (!r) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  r->o = *o;
  if (r->o.poll_ms <= 0) r->o.poll_ms = 2000;
  if (r->o.lease_seconds <= 0) r->o.lease_seconds = 600;
  if (o->snapshot)
    r->snap = *o->snapshot;
  else
    fm_snapshot_opts_default(&r->snap);
  if (!r->snap.on_partition) {
    r->snap.on_partition = on_partition;
    r->snap.ctx = r;
  }
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  int ok = pthread_mutex_init(&r->mu, NULL) == 0;
  if (ok && pthread_cond_init(&r->cv, &ca) != 0) {
    pthread_mutex_destroy(&r->mu);
    ok = 0;
  }
  pthread_condattr_destroy(&ca);
  if (!ok) {
    fm_free(r);
    return fm_error_set(err, FM_ERR_NOMEM, "cannot create the runner's lock");
  }
  if (r->o.root && pthread_create(&r->prov, NULL, prov_main, r) == 0) r->prov_live = 1;
  if (r->o.snapshot_root && pthread_create(&r->sched, NULL, sched_main, r) == 0)
    r->sched_live = 1;
  if ((r->o.root && !r->prov_live) || (r->o.snapshot_root && !r->sched_live)) {
    fm_prov_runner_stop(r);
    return fm_error_set(err, FM_ERR_NOMEM, "cannot start the runner's threads");
  }
  *out = r;
  return FM_OK;
}

void fm_prov_runner_wake(fm_prov_runner *r) {
  if (!r) return;
  pthread_mutex_lock(&r->mu);
  r->wake = 1;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

void fm_prov_runner_stop(fm_prov_runner *r) {
  if (!r) return;
  pthread_mutex_lock(&r->mu);
  r->stop = 1;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  if (r->prov_live) pthread_join(r->prov, NULL);
  if (r->sched_live) pthread_join(r->sched, NULL);
  pthread_cond_destroy(&r->cv);
  pthread_mutex_destroy(&r->mu);
  fm_free(r);
}
