/* h_batch.c: batch mapping runs over HTTP.
 *   POST /v1/batch-runs        admin   start (or resume) a run: 202 {"run": id}
 *   GET  /v1/batch-runs        reader  every run, newest first
 *   GET  /v1/batch-runs/{id}   reader  one run: status, parts done / total,
 *                                      per-part and total audit counts
 * A run is fm_batch_run, the function behind `fieldmatch batch run`, in a
 * background thread with its own store connection (the workers' per-thread
 * connections stay free for requests; SQLite's locking and fm_store_tx's
 * BUSY retries let both write).  One run at a time per server: a second
 * POST while one runs is 409.
 *
 * The thread runs the batch in slices (fm_batch_opts.max_parts, then
 * resume_run): the first slice is one part, after which the run exists and
 * the POST answers 202 with its id; later slices are about 1/16 of the run.
 * Between slices the thread checks the stop flag, so stopping the server
 * waits for at most one slice and leaves the run 'running' in the store,
 * resumable with {"resume": id} (or `fieldmatch batch run --resume`).  A
 * part is the unit of commit either way (docs/batch.md), so slicing changes
 * no result.  Progress (parts committed / total, counts) is read from the
 * store, which is the truth also for runs of other processes; the
 * controller only adds whether this server is running it. */
#include "http_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SLICES 16 /* later slices are about n_parts / SLICES parts */

struct fm_http_batchctl {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t th;
  int joinable;   /* th was started and not joined yet */
  int running;    /* the thread works on a run (set by the POST) */
  int stop;       /* ask the thread to stop after its slice */
  int started;    /* the first slice returned (run_id set, or failed) */
  int64_t run_id; /* the run being worked on (0 until it exists) */
  fm_rc rc;       /* the first slice's result, for the POST */
  fm_error err;
  int64_t last_part; /* last part committed by this server, from on_part */
  char last_part_at[32];
  /* The thread's inputs, owned here while it runs. */
  char *db_path;
  const fm_model *model; /* mref's model */
  fm_http_server *srv;   /* for releasing mref */
  fm_http_mref *mref;    /* a reference to the model the run uses: a reload
                            meanwhile does not close it under the run */
  fm_batch_opts o;
  char actor[FM_TOKEN_OWNER_MAX + 1];
};

fm_rc fm_http_batchctl_new(fm_http_batchctl **out, fm_error *err) {
  *out = fm_calloc(1, sizeof **out);
  if (!*out) return fm_error_set(err, FM_ERR_NOMEM, "http: out of memory");
  pthread_mutex_init(&(*out)->mu, NULL);
  pthread_cond_init(&(*out)->cv, NULL);
  return FM_OK;
}

/* Join a finished (or stopping) thread.  Call with mu held; returns with
 * it held. */
static void join_locked(fm_http_batchctl *b) {
  if (!b->joinable) return;
  pthread_mutex_unlock(&b->mu);
  pthread_join(b->th, NULL);
  pthread_mutex_lock(&b->mu);
  b->joinable = 0;
  fm_free(b->db_path);
  b->db_path = NULL;
  fm_http_model_release(b->srv, b->mref);
  b->mref = NULL;
}

void fm_http_batchctl_free(fm_http_batchctl *b) {
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
  fm_http_batchctl *b = ctx;
  if (skipped) return; /* a slice passing parts an earlier slice committed */
  pthread_mutex_lock(&b->mu);
  b->last_part = part_no;
  fm_store_now(b->last_part_at, sizeof b->last_part_at);
  pthread_mutex_unlock(&b->mu);
}

static void *batch_thread(void *arg) {
  fm_http_batchctl *b = arg;
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

/* A number member in [lo, hi] or absent (keeps *out).  0 ok. */
static int num_member(json_t *in, const char *key, double lo, double hi, int integer,
                      double *out) {
  json_t *v = json_object_get(in, key);
  if (!v || json_is_null(v)) return 0;
  if (integer ? !json_is_integer(v) : !json_is_number(v)) return -1;
  double x = json_number_value(v);
  if (!isfinite(x) || x < lo || x > hi) return -1;
  *out = x;
  return 0;
}

enum MHD_Result fm_h_batch_start(fm_http_req *r) {
  enum MHD_Result ret;
  fm_store *st;
  if (fm_http_req_store(r, &st, &ret)) return ret;
  json_t *in = NULL;
  if (r->body.len) {
    json_error_t jerr;
    in = json_loadb(r->body.buf, r->body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!in)
      return fm_http_reply_error(r, FM_EC_BAD_JSON, "%s (at byte %d)", jerr.text,
                                 jerr.position);
  } else {
    in = json_object();
  }
  fm_batch_opts o;
  fm_batch_opts_default(&o);
  o.threads = 1; /* the server's workers keep the other cores */
  double bs = o.batch_size, k = o.k, th = o.threads, resume = 0;
  const char *key;
  json_t *v;
  const char *bad = json_is_object(in) ? NULL : "the body must be a JSON object";
  if (!bad) json_object_foreach(in, key, v) {
      if (strcmp(key, "batch_size") && strcmp(key, "k") && strcmp(key, "threshold") &&
          strcmp(key, "margin") && strcmp(key, "threads") && strcmp(key, "resume"))
        bad = "unknown member (allowed: batch_size, k, threshold, margin, threads, resume)";
    }
  if (!bad && num_member(in, "batch_size", 1, 1000000, 1, &bs)) bad = "batch_size: 1..1000000";
  if (!bad && num_member(in, "k", 1, 100, 1, &k)) bad = "k: 1..100";
  if (!bad && num_member(in, "threshold", -1e300, 1e300, 0, &o.threshold))
    bad = "threshold must be a number";
  if (!bad && num_member(in, "margin", 0, 1e300, 0, &o.margin)) bad = "margin: a number >= 0";
  if (!bad && num_member(in, "threads", 1, 64, 1, &th)) bad = "threads: 1..64";
  if (!bad && num_member(in, "resume", 1, 9e15, 1, &resume)) bad = "resume: a run id";
  json_decref(in);
  if (bad) return fm_http_reply_error(r, FM_EC_BAD_JSON, "%s", bad);
  o.batch_size = (int)bs;
  o.k = (int)k;
  o.threads = (int)th;
  o.resume_run = (int64_t)resume;

  fm_http_batchctl *b = fm_http_batchctl_get(r->srv);
  pthread_mutex_lock(&b->mu);
  if (b->running) {
    int64_t id = b->run_id;
    pthread_mutex_unlock(&b->mu);
    return fm_http_reply_error(r, FM_EC_BATCH_RUNNING, "batch run %lld is running",
                               (long long)id);
  }
  join_locked(b); /* the previous run's thread, finished */
  b->db_path = fm_strdup(fm_store_path(st));
  if (!b->db_path) {
    pthread_mutex_unlock(&b->mu);
    return fm_http_reply_error(r, FM_EC_INTERNAL, "out of memory");
  }
  b->srv = r->srv;
  b->mref = fm_http_model_acquire(r->srv);
  b->model = fm_http_mref_model(b->mref);
  b->o = o;
  snprintf(b->actor, sizeof b->actor, "%s", r->owner);
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
    fm_http_model_release(b->srv, b->mref);
    b->mref = NULL;
    pthread_mutex_unlock(&b->mu);
    return fm_http_reply_error(r, FM_EC_INTERNAL, "cannot start the batch thread");
  }
  b->joinable = 1;
  /* Wait for the first slice: then the run exists (or failed to start).
   * When it failed the thread is ending: wait for that too, so the next
   * POST does not find it "running". */
  while (!b->started || (b->rc && b->running)) pthread_cond_wait(&b->cv, &b->mu);
  int64_t id = b->run_id;
  fm_error err = b->err;
  fm_rc rc = b->rc;
  pthread_mutex_unlock(&b->mu);
  if (rc && !id) {
    if (rc == FM_ERR_NOTFOUND)
      return fm_http_reply_error(r, FM_EC_RUN_NOT_FOUND, "%s", err.msg);
    if (rc == FM_ERR_ARG)
      return fm_http_reply_error(r, FM_EC_BAD_PARAM, "%s", err.msg);
    return fm_http_reply_rc(r, &err);
  }
  /* Started (a failure after the run exists shows in its status). */
  char href[64];
  snprintf(href, sizeof href, "/v1/batch-runs/%lld", (long long)id);
  json_t *j = json_pack("{s:I,s:s,s:s}", "run", (json_int_t)id, "status",
                        rc ? "failed" : "running", "href", href);
  return fm_http_reply_json(r, MHD_HTTP_ACCEPTED, j);
}

/* ---- reading runs --------------------------------------------------------- */

static json_t *counts_json(const fm_batch_counts *c) {
  return json_pack("{s:I,s:I,s:I,s:I,s:I}", "n_in", (json_int_t)c->n_in, "n_proposed",
                   (json_int_t)c->n_proposed, "n_queued", (json_int_t)c->n_queued,
                   "n_curated", (json_int_t)c->n_curated, "n_failed",
                   (json_int_t)c->n_failed);
}

/* The shape of `fieldmatch batch status --json`, plus "active" (this server
 * is running it) and "progress".  NULL on allocation failure. */
static json_t *info_json(fm_http_batchctl *b, const fm_batch_info *i, int with_parts) {
  json_t *params = json_loads(i->params ? i->params : "{}", 0, NULL);
  pthread_mutex_lock(&b->mu);
  int active = b->running && b->run_id == i->run_id;
  char last_at[32];
  int64_t last = active ? b->last_part : 0;
  snprintf(last_at, sizeof last_at, "%s", active ? b->last_part_at : "");
  pthread_mutex_unlock(&b->mu);
  json_t *o = json_pack(
      "{s:I,s:s,s:b,s:{s:s,s:s,s:s},s:o,s:I,s:I,s:I,s:{s:I,s:I,s:f},s:s,s:s?,s:s,s:s?,s:o}",
      "run", (json_int_t)i->run_id, "status", i->status, "active", active, "model", "name",
      i->model_name, "checksum", i->model_checksum, "path", i->model_path ? i->model_path : "",
      "params", params ? params : json_object(), "n_fields", (json_int_t)i->n_fields,
      "n_parts", (json_int_t)i->n_batches, "parts_committed", (json_int_t)i->nparts,
      "progress", "parts_done", (json_int_t)i->nparts, "parts_total", (json_int_t)i->n_batches,
      "fraction", i->n_batches > 0 ? (double)i->nparts / (double)i->n_batches : 0.0,
      "started_at", i->started_at, "finished_at", i->finished_at, "started_by",
      i->started_by ? i->started_by : "", "error", i->error, "total", counts_json(&i->total));
  if (o && active && last) {
    json_t *p = json_object_get(o, "progress");
    json_object_set_new(p, "last_part", json_integer(last));
    json_object_set_new(p, "last_part_at", json_string(last_at));
  }
  if (o && with_parts) {
    json_t *a = json_array();
    for (size_t k = 0; a && k < i->nparts; k++) {
      json_t *p = counts_json(&i->parts[k].c);
      if (!p || json_object_set_new(p, "part", json_integer(i->parts[k].part_no)) ||
          json_object_set_new(p, "finished_at", json_string(i->parts[k].finished_at)) ||
          json_array_append_new(a, p)) {
        json_decref(a);
        a = NULL;
      }
    }
    if (!a || json_object_set_new(o, "parts", a)) {
      json_decref(o);
      o = NULL;
    }
  }
  return o;
}

enum MHD_Result fm_h_batch_list(fm_http_req *r) {
  enum MHD_Result ret;
  fm_store *st;
  if (fm_http_req_store(r, &st, &ret)) return ret;
  fm_batch_info *v = NULL;
  size_t n = 0;
  fm_error err;
  fm_error_init(&err);
  if (fm_batch_list(st, &v, &n, &err)) return fm_http_reply_rc(r, &err);
  fm_http_batchctl *b = fm_http_batchctl_get(r->srv);
  json_t *a = json_array();
  for (size_t i = 0; a && i < n; i++)
    if (json_array_append_new(a, info_json(b, &v[i], 0))) {
      json_decref(a);
      a = NULL;
    }
  fm_batch_list_free(v, n);
  if (!a) return fm_http_reply_error(r, FM_EC_INTERNAL, "out of memory");
  return fm_http_reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "runs", a));
}

enum MHD_Result fm_h_batch_get(fm_http_req *r) {
  enum MHD_Result ret;
  fm_store *st;
  const char *ids = r->params[0];
  char *end;
  long long id = strtoll(ids, &end, 10);
  if (!*ids || *end || id < 1)
    return fm_http_reply_error(r, FM_EC_RUN_NOT_FOUND, "'%s' is not a run id", ids);
  if (fm_http_req_store(r, &st, &ret)) return ret;
  fm_batch_info info;
  fm_error err;
  fm_error_init(&err);
  fm_rc rc = fm_batch_status(st, (int64_t)id, &info, &err);
  if (rc) {
    fm_batch_info_free(&info); /* zeroed or partly filled: free is safe */
    return rc == FM_ERR_NOTFOUND ? fm_http_reply_error(r, FM_EC_RUN_NOT_FOUND, "%s", err.msg)
                                 : fm_http_reply_rc(r, &err);
  }
  json_t *j = info_json(fm_http_batchctl_get(r->srv), &info, 1);
  fm_batch_info_free(&info);
  if (!j) return fm_http_reply_error(r, FM_EC_INTERNAL, "out of memory");
  return fm_http_reply_json(r, MHD_HTTP_OK, j);
}
