/* h_mappings.c: the curated mappings, listed and exported.
 *   GET /v1/mappings?status=&vendor=&changed_since=&limit=100&offset=0   reader
 *   GET /v1/mappings/export?format=csv|jsonl|json&status=&changed_since=
 *                          &with_candidates=K&crlf=1                     reader
 * Both read through fm_store_export, the function behind `fieldmatch
 * export`, so a row looks the same everywhere (docs/export.md) and the
 * export is byte-identical to the CLI's for the same options.
 *
 * The export streams: fm_store_export pushes rows into a sink, MHD pulls
 * bytes from a content-reader callback.  A producer thread runs the export
 * on its own read-only connection into a bounded ring (RING bytes); the
 * callback takes what is there, waiting only while the producer is
 * producing (never for the client).  Memory per export is the ring, not
 * the result.  The stream belongs to the MHD response: its free callback
 * (the response is done, sent or not) cancels the producer, joins it and
 * closes the connection.  At most MAX_EXPORTS stream at once (429 beyond).
 *
 * The list is one pass of the JSON Lines export through a sink that
 * filters by vendor and keeps the page: memory is the page, time is a scan
 * of the selected status (fine for the sizes of a curated store; the
 * export is what bulk consumers use). */
#include "http_internal.h"

#include <string.h>

#define RING (64 * 1024)
#define MAX_EXPORTS 8
#define LIST_DEFAULT 100
#define LIST_MAX 1000

static int exports_running; /* atomic, process-wide */

/* Parse the filters both routes share.  0 ok, else a 400 was queued. */
static int parse_filters(fm_http_req *r, fm_export_opts *o, char since[32],
                         enum MHD_Result *ret) {
  const char *status = fm_http_arg(r, "status"), *cs = fm_http_arg(r, "changed_since");
  memset(o, 0, sizeof *o);
  if (status && *status && strcmp(status, "all")) {
    o->status = fm_map_status_parse(status);
    if (o->status < 0) {
      *ret = fm_http_reply_error(r, FM_EC_BAD_PARAM,
                                 "status is accepted, proposed, rejected, superseded, no_equivalent or all");
      return -1;
    }
  }
  if (cs && *cs) {
    if (fm_store_time_normalize(cs, since, 32)) {
      *ret = fm_http_reply_error(r, FM_EC_BAD_PARAM,
                                 "changed_since is a UTC time YYYY-MM-DD[THH:MM[:SS[.mmm]]][Z]");
      return -1;
    }
    o->changed_since = since;
  }
  return 0;
}

/* ---- the list --------------------------------------------------------- */

typedef struct page {
  const char *vendor; /* NULL: any */
  size_t offset, limit;
  int64_t total;      /* rows passing the filter */
  json_t *items;
} page;

static fm_rc page_write(void *ctx, const void *p, size_t n, fm_error *err) {
  page *pg = ctx;
  json_t *row = json_loadb(p, n, 0, NULL);
  if (!row) return fm_error_set(err, FM_ERR_INTERNAL, "export row is not JSON");
  if (pg->vendor) {
    const char *qv = json_string_value(json_object_get(row, "query_vendor"));
    const char *rv = json_string_value(json_object_get(row, "ref_vendor"));
    if (!(qv && !strcmp(qv, pg->vendor)) && !(rv && !strcmp(rv, pg->vendor))) {
      json_decref(row);
      return FM_OK;
    }
  }
  size_t i = (size_t)pg->total++;
  if (i >= pg->offset && i - pg->offset < pg->limit) {
    if (json_array_append_new(pg->items, row))
      return fm_error_set(err, FM_ERR_NOMEM, "out of memory listing mappings");
  } else {
    json_decref(row);
  }
  return FM_OK;
}

enum MHD_Result fm_h_mappings_list(fm_http_req *r) {
  enum MHD_Result ret;
  fm_export_opts o;
  char since[32];
  long limit, offset;
  fm_store *st;
  if (parse_filters(r, &o, since, &ret) ||
      fm_http_arg_int(r, "limit", 1, LIST_MAX, LIST_DEFAULT, &limit, &ret) ||
      fm_http_arg_int(r, "offset", 0, 1L << 40, 0, &offset, &ret) ||
      fm_http_req_store(r, &st, &ret))
    return ret;
  const char *vendor = fm_http_arg(r, "vendor");
  page pg = {.vendor = vendor && *vendor ? vendor : NULL,
             .offset = (size_t)offset,
             .limit = (size_t)limit,
             .items = json_array()};
  if (!pg.items) return fm_http_reply_error(r, FM_EC_INTERNAL, "out of memory");
  o.format = FM_EXPORT_JSONL;
  fm_sink sink = {page_write, &pg};
  fm_error err;
  fm_error_init(&err);
  if (fm_store_export(st, &o, &sink, NULL, &err)) {
    json_decref(pg.items);
    return fm_http_reply_rc(r, &err);
  }
  return fm_http_reply_json(r, MHD_HTTP_OK,
                            json_pack("{s:I,s:i,s:I,s:o}", "total", (json_int_t)pg.total,
                                      "limit", (int)limit, "offset", (json_int_t)offset,
                                      "mappings", pg.items));
}

/* ---- the streamed export ---------------------------------------------- */

typedef struct stream {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char ring[RING];
  size_t head, len;  /* unread bytes: ring[head .. head+len) modulo RING */
  int done;          /* the producer returned */
  int cancel;        /* the response is gone: stop producing */
  fm_rc rc;          /* the export's result (valid when done) */
  fm_error err;
  size_t produced;   /* bytes the producer has handed over */
  fm_store *st;      /* the producer's own read-only connection */
  fm_export_opts o;
  char since[32];
  pthread_t th;
  int th_ok;
} stream;

/* The sink: copy into the ring, waiting while it is full. */
static fm_rc ring_write(void *ctx, const void *p, size_t n, fm_error *err) {
  stream *s = ctx;
  const char *b = p;
  pthread_mutex_lock(&s->mu);
  while (n) {
    while (s->len == RING && !s->cancel) pthread_cond_wait(&s->cv, &s->mu);
    if (s->cancel) {
      pthread_mutex_unlock(&s->mu);
      return fm_error_set(err, FM_ERR_IO, "export: the client went away");
    }
    size_t tail = (s->head + s->len) % RING;
    size_t room = RING - s->len, chunk = tail + room > RING ? RING - tail : room;
    if (chunk > n) chunk = n;
    memcpy(s->ring + tail, b, chunk);
    s->len += chunk;
    s->produced += chunk;
    b += chunk;
    n -= chunk;
    pthread_cond_broadcast(&s->cv);
  }
  pthread_mutex_unlock(&s->mu);
  return FM_OK;
}

static void *producer(void *arg) {
  stream *s = arg;
  fm_sink sink = {ring_write, s};
  fm_error err;
  fm_error_init(&err);
  fm_rc rc = fm_store_export(s->st, &s->o, &sink, NULL, &err);
  pthread_mutex_lock(&s->mu);
  if (rc && !s->cancel) fm_warn("http: export failed: %s", err.msg);
  s->rc = rc;
  s->err = err;
  s->done = 1;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

static void stream_free(void *cls) {
  stream *s = cls;
  if (!s) return;
  if (s->th_ok) {
    pthread_mutex_lock(&s->mu);
    s->cancel = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->th, NULL);
  }
  fm_store_close(s->st);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  fm_free(s);
  __atomic_sub_fetch(&exports_running, 1, __ATOMIC_RELAXED);
}

/* MHD's content reader: the bytes ready now (waiting only while the
 * producer works), end of stream, or an error that cuts the chunked body
 * short so the client sees an incomplete response. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)pos;
  stream *s = cls;
  pthread_mutex_lock(&s->mu);
  while (!s->len && !s->done) pthread_cond_wait(&s->cv, &s->mu);
  ssize_t n;
  if (s->len) {
    size_t chunk = s->head + s->len > RING ? RING - s->head : s->len;
    if (chunk > max) chunk = max;
    memcpy(buf, s->ring + s->head, chunk);
    s->head = (s->head + chunk) % RING;
    s->len -= chunk;
    pthread_cond_broadcast(&s->cv);
    n = (ssize_t)chunk;
  } else {
    n = s->rc ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
  }
  pthread_mutex_unlock(&s->mu);
  return n;
}

enum MHD_Result fm_h_mappings_export(fm_http_req *r) {
  enum MHD_Result ret;
  fm_export_opts o;
  char since[32];
  long k, crlf;
  fm_store *wst;
  const char *fmt = fm_http_arg(r, "format");
  int f = fmt && *fmt ? fm_export_format_parse(fmt) : FM_EXPORT_CSV;
  if (f < 0) return fm_http_reply_error(r, FM_EC_BAD_PARAM, "format is csv, jsonl or json");
  if (parse_filters(r, &o, since, &ret) ||
      fm_http_arg_int(r, "with_candidates", 0, 1000, 0, &k, &ret) ||
      fm_http_arg_int(r, "crlf", 0, 1, 0, &crlf, &ret) || fm_http_req_store(r, &wst, &ret))
    return ret;
  if (__atomic_add_fetch(&exports_running, 1, __ATOMIC_RELAXED) > MAX_EXPORTS) {
    __atomic_sub_fetch(&exports_running, 1, __ATOMIC_RELAXED);
    return fm_http_reply_error(r, FM_EC_EXPORT_LIMIT, "at most %d exports stream at once",
                               MAX_EXPORTS);
  }
  stream *s = fm_calloc(1, sizeof *s);
  if (!s) {
    __atomic_sub_fetch(&exports_running, 1, __ATOMIC_RELAXED);
    return fm_http_reply_error(r, FM_EC_INTERNAL, "out of memory");
  }
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  s->o = o;
  s->o.format = (fm_export_format)f;
  s->o.with_candidates = (int)k;
  s->o.crlf = (int)crlf;
  if (o.changed_since) {
    memcpy(s->since, since, sizeof s->since);
    s->o.changed_since = s->since;
  }
  fm_error err;
  fm_error_init(&err);
  fm_store_opts so;
  fm_store_opts_default(&so);
  so.readonly = 1;
  if (fm_store_open(fm_store_path(wst), &so, &s->st, &err)) {
    stream_free(s);
    return fm_http_reply_rc(r, &err);
  }
  if (pthread_create(&s->th, NULL, producer, s) != 0) {
    stream_free(s);
    return fm_http_reply_error(r, FM_EC_INTERNAL, "cannot start the export thread");
  }
  s->th_ok = 1;
  /* Wait for the first bytes (or the end), so an export that fails before
   * writing anything (a bad statement, a locked database) still gets a
   * proper error status instead of a cut 200. */
  pthread_mutex_lock(&s->mu);
  while (!s->produced && !s->done) pthread_cond_wait(&s->cv, &s->mu);
  int failed_early = s->done && s->rc && !s->produced;
  if (failed_early) err = s->err;
  pthread_mutex_unlock(&s->mu);
  if (failed_early) {
    stream_free(s);
    return fm_http_reply_rc(r, &err);
  }
  struct MHD_Response *resp =
      MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 8192, stream_read, s, stream_free);
  if (!resp) {
    stream_free(s);
    return MHD_NO;
  }
  static const char *const ctype[] = {"", "text/csv; charset=utf-8",
                                      "application/x-ndjson", "application/json"};
  static const char *const ext[] = {"", "csv", "jsonl", "json"};
  char disp[96];
  snprintf(disp, sizeof disp, "attachment; filename=\"mappings-%s.%s\"",
           o.status ? fm_map_status_name((fm_map_status)o.status) : "all", ext[f]);
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype[f]);
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disp);
  return fm_http_reply_response(r, MHD_HTTP_OK, resp);
}
