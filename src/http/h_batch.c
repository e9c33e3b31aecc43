/* h_batch.c: batch mapping runs over HTTP.
 *   POST /v1/batch-runs        admin   start (or resume) a run: 202 {"run": id}
 *   GET  /v1/batch-runs        reader  every run, newest first
 *   GET  /v1/batch-runs/{id}   reader  one run: status, parts done / total,
 *                                      per-part and total audit counts
 * A run is fm_batch_run, the function behind `fieldmatch batch run`, in the
 * jobs layer's background thread (fm_jobs_batch_*, src/jobs/batch_bg.c):
 * this file parses the request and shapes the response.  One run at a time
 * per server: a second POST while one runs is 409.  The POST answers 202
 * once the run's first part is in (then the run exists); stopping the
 * server waits for at most one slice and leaves the run 'running' in the
 * store, resumable with {"resume": id} (or `fieldmatch batch run
 * --resume`).  Progress (parts committed / total, counts) is read from the
 * store, which is the truth also for runs of other processes; the
 * controller only adds whether this server is running it. */
#include "http_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* A reference to the model a run uses, handed to the jobs layer. */
typedef struct model_pin {
  fm_http_server *srv;
  fm_http_mref *mref;
} model_pin;

/* The jobs layer's release callback: drops the run's model reference and
 * frees the pin (owned by the controller from fm_jobs_batch_start on). */
static void release_pin(void *ctx) {
  model_pin *p = ctx;
  fm_http_model_release(p->srv, p->mref);
  fm_free(p);
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
          strcmp(key, "margin") && strcmp(key, "min_confidence") && strcmp(key, "threads") &&
          strcmp(key, "resume"))
        bad = "unknown member (allowed: batch_size, k, min_confidence, threshold, margin, "
              "threads, resume)";
    }
  if (!bad && num_member(in, "batch_size", 1, 1000000, 1, &bs)) bad = "batch_size: 1..1000000";
  if (!bad && num_member(in, "k", 1, 100, 1, &k)) bad = "k: 1..100";
  if (!bad && num_member(in, "threshold", -1e300, 1e300, 0, &o.threshold))
    bad = "threshold must be a number";
  if (!bad && num_member(in, "margin", 0, 1e300, 0, &o.margin)) bad = "margin: a number >= 0";
  if (!bad && num_member(in, "min_confidence", 0, 1, 0, &o.min_confidence))
    bad = "min_confidence: a number from 0 to 1";
  if (!bad && num_member(in, "threads", 1, 64, 1, &th)) bad = "threads: 1..64";
  if (!bad && num_member(in, "resume", 1, 9e15, 1, &resume)) bad = "resume: a run id";
  json_decref(in);
  if (bad) return fm_http_reply_error(r, FM_EC_BAD_JSON, "%s", bad);
  o.batch_size = (int)bs;
  o.k = (int)k;
  o.threads = (int)th;
  o.resume_run = (int64_t)resume;

  int64_t id = 0;
  int busy = 0;
  fm_error err;
  fm_error_init(&err);
  /* The run holds a reference to the model it started with: a reload
   * meanwhile does not close it under the run.  The controller calls
   * release_pin once it is done with the model (or did not start). */
  model_pin *pin = fm_calloc(1, sizeof *pin);
  if (!pin) return fm_http_reply_error(r, FM_EC_INTERNAL, "out of memory");
  pin->srv = r->srv;
  pin->mref = fm_http_model_acquire(r->srv);
  fm_rc rc = fm_jobs_batch_start(fm_http_batchctl_get(r->srv), fm_store_path(st),
                                 fm_http_mref_model(pin->mref), release_pin, pin, &o,
                                 r->owner, &id, &busy, &err);
  if (busy)
    return fm_http_reply_error(r, FM_EC_BATCH_RUNNING, "batch run %lld is running",
                               (long long)id);
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
static json_t *info_json(fm_jobs_batch *b, const fm_batch_info *i, int with_parts) {
  json_t *params = json_loads(i->params ? i->params : "{}", 0, NULL);
  char last_at[32];
  int64_t last = 0;
  int active = fm_jobs_batch_active(b, i->run_id, &last, last_at);
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
  fm_jobs_batch *b = fm_http_batchctl_get(r->srv);
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
