/* server.c: the daemon, request life cycle and cross-cutting checks.
 *
 * Life of a request (one fm_http_req, as in the GNU Taler exchange):
 *   uri_log      MHD saw the request line: allocate the context, count it
 *                in flight, remember the raw target length (for 414).
 *   handle (1st) limits -> route -> readiness -> rate -> auth -> body size;
 *                GET is dispatched now, POST waits for its body.
 *   handle (n)   append body chunks (over max_body: keep reading, discard,
 *                answer 413 at the end so the client sees the reply).
 *   completed    access log line, metrics, free the context.
 *
 * Threads: MHD's internal pool (MHD_OPTION_THREAD_POOL_SIZE, epoll).  Each
 * worker thread lazily creates its fm_http_worker (matcher, candidate
 * buffer, SQLite connection) under a pthread key whose destructor frees it
 * when MHD joins the thread.  Counters are relaxed atomics.
 *
 * Beside it: server_auth.c (rate limiter, token check), server_metrics.c
 * (counters, /metrics), server_internal.h (the server object they share). */
#include "http_internal.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server_internal.h"

static char over_limit_marker; /* socket context of connections over the limit */

/* ---- small accessors -------------------------------------------------- */

/* The model of the calling worker thread's request (pinned for the whole
 * request), or, off the worker threads, the current one. */
const fm_model *fm_http_model(const fm_http_server *srv) {
  fm_http_worker *w = pthread_getspecific(srv->key);
  if (w && w->mref) return fm_http_mref_model(w->mref);
  fm_http_mref *h = fm_http_server_mref_peek((fm_http_server *)srv);
  return fm_http_mref_model(h);
}

fm_http_mref *fm_http_server_mref_peek(fm_http_server *srv) {
  pthread_mutex_lock(&srv->model_mu);
  fm_http_mref *h = srv->cur;
  pthread_mutex_unlock(&srv->model_mu);
  return h;
}

fm_http_mref *fm_http_model_acquire(fm_http_server *srv) {
  return fm_http_mref_acquire(&srv->model_mu, &srv->cur);
}

void fm_http_model_release(fm_http_server *srv, fm_http_mref *h) {
  fm_http_mref_release(&srv->model_mu, h);
}

const fm_http_opts *fm_http_server_opts(const fm_http_server *srv) { return &srv->opts; }
uint16_t fm_http_server_port(const fm_http_server *srv) { return srv ? srv->port : 0; }
fm_rank_cache *fm_http_rank_cache(const fm_http_server *srv) { return srv->rank_cache; }
int fm_http_server_has_db(const fm_http_server *srv) { return srv->db_path != NULL; }
fm_http_learn_state *fm_http_server_learn(fm_http_server *srv) { return &srv->learn; }

void fm_http_server_set_ready(fm_http_server *srv, int ready) {
  __atomic_store_n(&srv->ready, ready ? 1 : 0, __ATOMIC_RELEASE);
}

int fm_http_server_ready(const fm_http_server *srv) {
  return __atomic_load_n(&srv->ready, __ATOMIC_ACQUIRE);
}

void fm_http_load(const fm_http_server *srv, long *connections, long *inflight) {
  *connections = __atomic_load_n(&srv->conns, __ATOMIC_RELAXED);
  *inflight = __atomic_load_n(&srv->inflight, __ATOMIC_RELAXED);
}

void fm_http_opts_default(fm_http_opts *o) {
  memset(o, 0, sizeof *o);
  o->listen = "127.0.0.1:8080";
  o->threads = 2;
  o->conn_limit = 1024;
  o->timeout_s = 30;
  o->mem_limit = 32 * 1024;
  o->max_header = 8 * 1024;
  o->max_body = 1024 * 1024;
  o->max_uri = 4096;
  o->max_batch = 100;
  o->drain_ms = 10000;
  o->match_cache = 16384;
  o->learn_wait_ms = 2000;
}

/* ---- per-thread worker state ------------------------------------------ */

static void worker_free(void *p) {
  fm_http_worker *w = p;
  if (!w) return;
  fm_matcher_free(w->matcher);
  fm_http_model_release(w->srv, w->mref);
  fm_free(w->cand);
  fm_store_close(w->store);
  fm_buf_free(&w->out);
  fm_free(w);
}

fm_http_worker *fm_http_worker_get(fm_http_server *srv, fm_error *err) {
  fm_http_worker *w = pthread_getspecific(srv->key);
  if (w) return w;
  w = fm_calloc(1, sizeof *w);
  if (!w) {
    fm_error_set(err, FM_ERR_NOMEM, "out of memory for worker state");
    return NULL;
  }
  w->srv = srv;
  fm_buf_init(&w->out);
  w->cand = fm_calloc(FM_HTTP_MAX_CAND, sizeof *w->cand);
  if (!w->cand) {
    fm_error_set(err, FM_ERR_NOMEM, "out of memory for candidates");
    worker_free(w);
    return NULL;
  }
  if (fm_http_worker_sync(w, err) != FM_OK || pthread_setspecific(srv->key, w) != 0) {
    if (!err || !err->rc) fm_error_set(err, FM_ERR_NOMEM, "cannot keep worker state");
    worker_free(w);
    return NULL;
  }
  return w;
}

fm_jobs_batch *fm_http_batchctl_get(fm_http_server *srv) { return srv->batch; }

int fm_http_req_store(fm_http_req *r, fm_store **st, enum MHD_Result *ret) {
  *st = NULL;
  if (!r->srv->db_path) {
    *ret = fm_http_reply_error(r, FM_EC_NO_DATABASE, "start the server with --db");
    return -1;
  }
  fm_error err;
  fm_error_init(&err);
  fm_http_worker *w = fm_http_worker_get(r->srv, &err);
  if (!w || fm_http_worker_store(w, st, &err)) {
    *ret = fm_http_reply_rc(r, &err);
    return -1;
  }
  return 0;
}

fm_rc fm_http_worker_store(fm_http_worker *w, fm_store **out, fm_error *err) {
  *out = NULL;
  if (!w->srv->db_path) return fm_error_set(err, FM_ERR_ARG, "the server runs without a database");
  if (!w->store) {
    fm_rc rc = fm_store_open(w->srv->db_path, NULL, &w->store, err);
    if (rc) return rc;
  }
  *out = w->store;
  return FM_OK;
}

/* ---- routing ---------------------------------------------------------- */

void fm_http_redact_path(char *path) {
  if (strncmp(path, "/t/", 3) != 0) return;
  char *seg = path + 3, *end = strchr(seg, '/');
  size_t n = end ? (size_t)(end - seg) : strlen(seg);
  static const char mask[] = "REDACTED";
  if (n < sizeof mask - 1) return; /* never longer than the original */
  memcpy(seg, mask, sizeof mask - 1);
  memmove(seg + sizeof mask - 1, seg + n, strlen(seg + n) + 1);
}

void fm_http_base_url(fm_http_req *r, char *out, size_t n) {
  const fm_http_server *srv = r->srv;
  size_t len;
  if (srv->opts.public_url && *srv->opts.public_url) {
    snprintf(out, n, "%s", srv->opts.public_url);
  } else {
    char host[INET6_ADDRSTRLEN] = "127.0.0.1";
    int v6 = srv->addr.ss_family == AF_INET6;
    const void *a = v6 ? (const void *)&((const struct sockaddr_in6 *)&srv->addr)->sin6_addr
                       : (const void *)&((const struct sockaddr_in *)&srv->addr)->sin_addr;
    if (!inet_ntop(srv->addr.ss_family, a, host, sizeof host)) snprintf(host, sizeof host, "127.0.0.1");
    if (!strcmp(host, "0.0.0.0")) snprintf(host, sizeof host, "127.0.0.1"); /* wildcard: */
    if (!strcmp(host, "::")) snprintf(host, sizeof host, "::1"); /* use --public-url */
    v6 = strchr(host, ':') != NULL;
    snprintf(out, n, "http://%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "", (unsigned)srv->port);
  }
  len = strlen(out);
  while (len && out[len - 1] == '/') out[--len] = '\0';
  if (r->path_secret) snprintf(out + len, n - len, "/t/%s", r->path_secret);
}

/* Does url match pattern?  When r is given, capture the {params}. */
static int route_match(const char *pattern, const char *url, fm_http_req *r) {
  const char *p = pattern, *u = url;
  int np = 0;
  while (*p && *u) {
    if (*p != '/' || *u != '/') return 0;
    p++;
    u++;
    const char *pe = strchr(p, '/'), *ue = strchr(u, '/');
    size_t pl = pe ? (size_t)(pe - p) : strlen(p), ul = ue ? (size_t)(ue - u) : strlen(u);
    if (pl > 1 && p[0] == '{' && p[pl - 1] == '}') {
      if (ul == 0 || np >= FM_HTTP_MAX_PARAMS) return 0;
      if (r) r->params[np] = (char *)(r->path_copy + (u - url));
      np++;
    } else if (pl != ul || memcmp(p, u, pl) != 0) {
      return 0;
    }
    p += pl;
    u += ul;
  }
  if (*p || *u) return 0;
  if (r) /* cut the captured segments out of the copy */
    for (int i = 0; i < np; i++) {
      char *slash = strchr(r->params[i], '/');
      if (slash) *slash = '\0';
    }
  return 1;
}

int fm_http_allow(const char *url, char *out, size_t n) {
  int k = 0;
  size_t len = 0;
  out[0] = '\0';
  for (size_t i = 0; i < fm_http_route_n; i++) {
    if (!route_match(fm_http_route_table[i].pattern, url, NULL)) continue;
    const char *m = fm_http_route_table[i].method;
    int w = snprintf(out + len, n - len, "%s%s%s", k ? ", " : "", m,
                     strcmp(m, "GET") ? "" : ", HEAD");
    if (w < 0 || (size_t)w >= n - len) break;
    len += (size_t)w;
    k++;
  }
  if (k) snprintf(out + len, n - len, ", OPTIONS");
  return k;
}

/* ---- limits ----------------------------------------------------------- */

static int is_health(const fm_http_route *rt) {
  return rt->handler == fm_h_healthz || rt->handler == fm_h_readyz ||
         rt->handler == fm_h_metrics;
}

static enum MHD_Result preflight(fm_http_req *r) {
  char allow[64];
  fm_http_allow(r->url, allow, sizeof allow);
  struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
  if (!resp) return MHD_NO;
  fm_http_add_cors(resp);
  MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
  MHD_add_response_header(resp, "Access-Control-Allow-Methods", allow);
  MHD_add_response_header(resp, "Access-Control-Allow-Headers", "Authorization, Content-Type");
  MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
  enum MHD_Result ret = MHD_queue_response(r->con, MHD_HTTP_NO_CONTENT, resp);
  MHD_destroy_response(resp);
  if (ret == MHD_YES) r->status = MHD_HTTP_NO_CONTENT;
  return ret;
}

/* MHD_KeyValueIterator: add one header line's size ("Name: value\r\n"). */
static enum MHD_Result add_header_size(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value) {
  (void)kind;
  *(size_t *)cls += strlen(key) + (value ? strlen(value) : 0) + 4;
  return MHD_YES;
}

/* Everything checked before a handler runs.  Returns 1 when a reply was
 * queued (into *ret), 0 to go on. */
static int precheck(fm_http_req *r, enum MHD_Result *ret) {
  fm_http_server *srv = r->srv;
  if (r->uri_len > srv->opts.max_uri) {
    *ret = fm_http_reply_error(r, FM_EC_URI_TOO_LONG, "the limit is %zu bytes",
                               srv->opts.max_uri);
    return 1;
  }
  size_t hbytes = 0;
  MHD_get_connection_values(r->con, MHD_HEADER_KIND, add_header_size, &hbytes);
  if (hbytes > srv->opts.max_header) {
    *ret = fm_http_reply_error(r, FM_EC_HEADER_TOO_LARGE, "the limit is %zu bytes, got %zu",
                               srv->opts.max_header, hbytes);
    return 1;
  }
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(r->con, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  if (ci && ci->socket_context == &over_limit_marker) {
    *ret = fm_http_reply_error(r, FM_EC_CONN_LIMIT, "the server holds %u connections at most",
                               srv->opts.conn_limit);
    return 1;
  }
  int path_known = 0;
  for (size_t i = 0; i < fm_http_route_n; i++) {
    if (!route_match(fm_http_route_table[i].pattern, r->url, NULL)) continue;
    path_known = 1;
    /* HEAD is GET without the body (MHD sends only the headers). */
    const char *m = fm_http_route_table[i].method;
    if (!strcmp(m, r->method) || (!strcmp(r->method, "HEAD") && !strcmp(m, "GET"))) {
      r->route = (int)i;
      break;
    }
  }
  if (r->route < 0) {
    if (!path_known) {
      *ret = fm_http_reply_error(r, FM_EC_NO_ROUTE, "no route for %s", r->url);
    } else if (!strcmp(r->method, "OPTIONS")) {
      *ret = preflight(r);
    } else {
      *ret = fm_http_reply_error(r, FM_EC_METHOD, "%s is not served on %s", r->method, r->url);
    }
    return 1;
  }
  const fm_http_route *rt = &fm_http_route_table[r->route];
  r->path_copy = fm_strdup(r->url);
  if (!r->path_copy) {
    *ret = MHD_NO;
    return 1;
  }
  route_match(rt->pattern, r->url, r);
  if (!strncmp(rt->pattern, FM_HTTP_TOKEN_PREFIX, strlen(FM_HTTP_TOKEN_PREFIX)))
    r->path_secret = r->params[0];
  if (!is_health(rt) && !fm_http_server_ready(srv)) {
    *ret = fm_http_reply_error(r, FM_EC_NOT_READY, "starting up or shutting down");
    return 1;
  }
  if (!is_health(rt) && !fm_http_rate_ok(srv, r)) {
    *ret = fm_http_reply_error(r, FM_EC_RATE_LIMITED, "at most %g requests/s per client",
                               srv->opts.rate);
    return 1;
  }
  if (fm_http_authenticate(r, rt->role, ret)) return 1;
  const char *cl = MHD_lookup_connection_value(r->con, MHD_HEADER_KIND,
                                               MHD_HTTP_HEADER_CONTENT_LENGTH);
  if (cl && strtoull(cl, NULL, 10) > srv->opts.max_body) {
    *ret = fm_http_reply_error(r, FM_EC_BODY_TOO_LARGE, "the limit is %zu bytes",
                               srv->opts.max_body);
    return 1;
  }
  return 0;
}

/* Run the route's handler on this thread's worker state, moved to the
 * current model first if a reload swapped it (model_ref.c). */
static enum MHD_Result dispatch(fm_http_req *r) {
  fm_error err;
  fm_error_init(&err);
  fm_http_worker *w = fm_http_worker_get(r->srv, &err);
  if (!w || fm_http_worker_sync(w, &err)) return fm_http_reply_rc(r, &err);
  return fm_http_route_table[r->route].handler(r);
}

/* 1 when the request header says a body follows (Content-Length > 0 or
 * any Transfer-Encoding). */
static int announces_body(struct MHD_Connection *con) {
  const char *cl = MHD_lookup_connection_value(con, MHD_HEADER_KIND,
                                               MHD_HTTP_HEADER_CONTENT_LENGTH);
  if (cl && strtoull(cl, NULL, 10) > 0) return 1;
  return MHD_lookup_connection_value(con, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
}

/* r->reqid: the client's X-Request-Id when it is short and plain, else a
 * fresh one: 16 hex digits of the server's random prefix and a counter, so
 * ids are unique within a process and unlikely to repeat across restarts. */
static void set_request_id(fm_http_server *srv, fm_http_req *r) {
  const char *h = MHD_lookup_connection_value(r->con, MHD_HEADER_KIND, "X-Request-Id");
  size_t n = h ? strlen(h) : 0;
  int plain = n > 0 && n <= FM_HTTP_REQID_MAX;
  for (size_t i = 0; plain && i < n; i++) {
    unsigned char c = (unsigned char)h[i];
    plain = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            c == '.' || c == '_' || c == ':' || c == '-';
  }
  if (plain) {
    memcpy(r->reqid, h, n + 1);
    return;
  }
  uint64_t k = __atomic_add_fetch(&srv->reqid_next, 1, __ATOMIC_RELAXED);
  snprintf(r->reqid, sizeof r->reqid, "%016llx",
           (unsigned long long)(srv->reqid_base ^ fm_hash64(&k, sizeof k)));
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *con, const char *url,
                              const char *method, const char *version,
                              const char *upload_data, size_t *upload_data_size,
                              void **con_cls) {
  (void)version;
  fm_http_req *r = *con_cls;
  if (!r) return MHD_NO; /* the context could not be allocated */
  if (!r->started) {
    r->started = 1;
    r->srv = cls;
    r->con = con;
    r->method = method;
    r->url = url;
    set_request_id(r->srv, r);
    /* A request that announces a body is checked now, before its body is
     * read (a refusal then closes the connection: the unread body would
     * otherwise be taken for the next request).  Every other request is
     * answered in the next call: libmicrohttpd 0.9.75 closes the connection
     * after a response queued in the first call ("queued early"), which
     * would cost every lookup a new TCP connection. */
    if (announces_body(con)) {
      enum MHD_Result ret;
      r->checked = 1;
      if (precheck(r, &ret)) return ret;
    }
    return MHD_YES;
  }
  if (*upload_data_size) {
    if (!r->status && !r->body_too_large) {
      if (r->body.len + *upload_data_size > r->srv->opts.max_body) {
        r->body_too_large = 1;
        fm_buf_free(&r->body);
      } else if (fm_buf_append(&r->body, upload_data, *upload_data_size)) {
        return MHD_NO; /* out of memory: drop the connection */
      }
    }
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (r->status) return MHD_YES;
  if (!r->checked) {
    enum MHD_Result ret;
    r->checked = 1;
    if (precheck(r, &ret)) return ret;
  }
  if (r->body_too_large)
    return fm_http_reply_error(r, FM_EC_BODY_TOO_LARGE, "the limit is %zu bytes",
                               r->srv->opts.max_body);
  return dispatch(r);
}

/* ---- request start and end -------------------------------------------- */

static void *uri_log(void *cls, const char *uri, struct MHD_Connection *con) {
  (void)con;
  fm_http_server *srv = cls;
  fm_http_req *r = fm_calloc(1, sizeof *r);
  if (!r) return NULL;
  r->srv = srv;
  r->route = -1;
  r->start = fm_now();
  r->uri_len = uri ? strlen(uri) : 0;
  snprintf(r->owner, sizeof r->owner, "-");
  fm_buf_init(&r->body);
  __atomic_add_fetch(&srv->inflight, 1, __ATOMIC_RELAXED);
  return r;
}

/* Copy s for a log line: control bytes, spaces and quotes become '?', at
 * most n-1 bytes. */
static void log_safe(char *out, size_t n, const char *s) {
  size_t i = 0;
  for (; s && *s && i + 1 < n; s++) {
    unsigned char c = (unsigned char)*s;
    out[i++] = c < 0x21 || c == 0x7f || c == '"' ? '?' : (char)c;
  }
  out[i] = '\0';
}

/* One access-log line: plain text, or a JSON object (--access-log-json)
 * whose strings jansson escapes.  The path never carries a query string
 * (MHD hands the handler the path alone), so no token in a URL reaches it. */
static void access_log(fm_http_server *srv, fm_http_req *r, double secs) {
  char path[256], owner[sizeof r->owner], now[32];
  log_safe(path, sizeof path, r->url ? r->url : "?");
  fm_http_redact_path(path);
  log_safe(owner, sizeof owner, r->owner);
  fm_store_now(now, sizeof now);
  if (!srv->opts.access_log_json) {
    fprintf(srv->opts.access_log, "%s %s %s %u %.3fms %s %s\n", now,
            r->method ? r->method : "?", path, r->status, secs * 1e3, owner,
            r->reqid[0] ? r->reqid : "-");
    return;
  }
  json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:i,s:f,s:s}", "ts", now, "request_id",
                        r->reqid[0] ? r->reqid : "-", "method", r->method ? r->method : "?",
                        "path", path, "status", (json_int_t)r->status, "ms",
                        (double)(long long)(secs * 1e6) / 1e3, "owner", owner);
  char *text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  if (text) fprintf(srv->opts.access_log, "%s\n", text);
  free(text);
  json_decref(j);
}

static void completed(void *cls, struct MHD_Connection *con, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
  (void)con;
  (void)toe;
  fm_http_server *srv = cls;
  fm_http_req *r = *con_cls;
  if (!r) return;
  *con_cls = NULL;
  double secs = fm_now() - r->start;
  fm_http_metrics_record(srv, r->route, r->status, secs);
  if (srv->opts.access_log) access_log(srv, r, secs);
  fm_buf_free(&r->body);
  fm_free(r->path_copy);
  fm_free(r);
  __atomic_sub_fetch(&srv->inflight, 1, __ATOMIC_RELAXED);
}

static void notify_connection(void *cls, struct MHD_Connection *con, void **socket_context,
                              enum MHD_ConnectionNotificationCode toe) {
  (void)con;
  fm_http_server *srv = cls;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    long n = __atomic_add_fetch(&srv->conns, 1, __ATOMIC_RELAXED);
    *socket_context = n > (long)srv->opts.conn_limit ? &over_limit_marker : NULL;
  } else {
    __atomic_sub_fetch(&srv->conns, 1, __ATOMIC_RELAXED);
  }
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  msg[strcspn(msg, "\n")] = '\0';
  fm_warn("http: %s", msg);
}

/* ---- start and stop --------------------------------------------------- */

static fm_rc parse_listen(const char *listen, struct sockaddr_storage *ss, int *v6,
                          fm_error *err) {
  char host[256];
  const char *port;
  if (!listen || !*listen) return fm_error_set(err, FM_ERR_ARG, "empty listen address");
  if (listen[0] == '[') {
    const char *close = strchr(listen, ']');
    if (!close || close[1] != ':' || (size_t)(close - listen - 1) >= sizeof host)
      return fm_error_set(err, FM_ERR_ARG, "listen address '%s': want [V6ADDR]:PORT", listen);
    memcpy(host, listen + 1, (size_t)(close - listen - 1));
    host[close - listen - 1] = '\0';
    port = close + 2;
  } else {
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof host)
      return fm_error_set(err, FM_ERR_ARG, "listen address '%s': want HOST:PORT", listen);
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    port = colon + 1;
  }
  char *end;
  long p = strtol(port, &end, 10);
  if (!*port || *end || p < 0 || p > 65535)
    return fm_error_set(err, FM_ERR_ARG, "listen address '%s': bad port", listen);
  struct addrinfo hints, *ai = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  hints.ai_socktype = SOCK_STREAM;
  int g = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
  if (g || !ai)
    return fm_error_set(err, FM_ERR_ARG, "listen address '%s': %s (numeric address expected)",
                        listen, gai_strerror(g));
  memcpy(ss, ai->ai_addr, ai->ai_addrlen);
  *v6 = ai->ai_family == AF_INET6;
  freeaddrinfo(ai);
  return FM_OK;
}

fm_rc fm_http_server_start(const fm_http_opts *opts, const fm_model *model,
                           const char *db_path, fm_http_server **out, fm_error *err) {
  *out = NULL;
  fm_http_opts o;
  if (opts)
    o = *opts;
  else
    fm_http_opts_default(&o);
  if (!model) return fm_error_set(err, FM_ERR_ARG, "http: no model");
  if (!db_path && !o.no_auth)
    return fm_error_set(err, FM_ERR_ARG, "http: a database is needed for tokens (or no_auth)");
  if (o.threads < 1 || o.threads > 256)
    return fm_error_set(err, FM_ERR_ARG, "http: threads must be in 1..256");
  if (o.conn_limit < 1 || o.max_body < 1 || o.max_uri < 16 || o.max_header < 256 ||
      o.max_batch < 1 ||
      o.mem_limit < 4096 || o.rate < 0)
    return fm_error_set(err, FM_ERR_ARG, "http: a limit is out of range");
  if (fm_http_route_n + 1 > MAX_ROUTES)
    return fm_error_set(err, FM_ERR_INTERNAL, "http: route table larger than the metrics");

  fm_http_server *srv = fm_calloc(1, sizeof *srv);
  if (!srv) return fm_error_set(err, FM_ERR_NOMEM, "http: out of memory");
  srv->opts = o;
  pthread_mutex_init(&srv->model_mu, NULL);
  pthread_mutex_init(&srv->reload_mu, NULL);
  fm_http_learn_init(&srv->learn);
  srv->model_gen = 1;
  srv->started_mono = fm_now();
  struct timespec wall;
  clock_gettime(CLOCK_REALTIME, &wall);
  srv->started_wall = (double)wall.tv_sec + wall.tv_nsec / 1e9;
  pthread_mutex_init(&srv->rate_mu, NULL);
  int v6 = 0;
  fm_rc rc = parse_listen(o.listen, &srv->addr, &v6, err);
  if (!rc) rc = fm_http_mref_new(model, NULL, 1, &srv->cur, err);
  if (!rc) rc = fm_random_bytes(&srv->reqid_base, sizeof srv->reqid_base, err);
  if (!rc && db_path && !(srv->db_path = fm_strdup(db_path)))
    rc = fm_error_set(err, FM_ERR_NOMEM, "http: out of memory");
  if (!rc && !(srv->rate = fm_calloc(RATE_SLOTS, sizeof *srv->rate)))
    rc = fm_error_set(err, FM_ERR_NOMEM, "http: out of memory");
  if (!rc && fm_rank_cache_new(o.match_cache, &srv->rank_cache))
    rc = fm_error_set(err, FM_ERR_NOMEM, "http: out of memory for the match cache");
  if (!rc && db_path) { /* open (it must exist) and migrate once, before the threads race */
    fm_store *st;
    rc = fm_store_open(db_path, NULL, &st, err);
    if (!rc) fm_store_close(st);
  }
  if (!rc) fm_http_learn_from_db(srv);
  if (!rc && db_path) rc = fm_http_learn_start(srv, err);
  if (!rc) rc = fm_jobs_batch_new(&srv->batch, err);
  if (!rc) {
    if (pthread_key_create(&srv->key, worker_free) != 0)
      rc = fm_error_set(err, FM_ERR_INTERNAL, "http: pthread_key_create failed");
    else
      srv->key_ok = 1;
  }
  if (rc) {
    fm_http_server_stop(srv);
    return rc;
  }
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_TURBO |
                   MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
  /* Headroom over conn_limit so clients past the limit still get a 429
   * instead of a reset. */
  unsigned hard_limit = o.conn_limit + 64;
  srv->d = MHD_start_daemon(
      flags, 0, NULL, NULL, handle, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
      MHD_OPTION_THREAD_POOL_SIZE, o.threads,
      MHD_OPTION_CONNECTION_LIMIT, hard_limit, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
      o.per_ip_limit, MHD_OPTION_CONNECTION_TIMEOUT, o.timeout_s,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, o.mem_limit, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024,
      MHD_OPTION_NOTIFY_COMPLETED, completed, srv, MHD_OPTION_NOTIFY_CONNECTION,
      notify_connection, srv, MHD_OPTION_URI_LOG_CALLBACK, uri_log, srv,
      MHD_OPTION_SOCK_ADDR, &srv->addr,
      MHD_OPTION_END);
  if (!srv->d) {
    fm_error_set(err, FM_ERR_IO, "http: cannot listen on %s (address in use or not local?)",
                 o.listen);
    fm_http_server_stop(srv);
    return FM_ERR_IO;
  }
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT);
  srv->port = di ? di->port : 0;
  fm_http_server_set_ready(srv, 1);
  *out = srv;
  return FM_OK;
}

void fm_http_server_stop(fm_http_server *srv) {
  if (!srv) return;
  fm_http_server_set_ready(srv, 0);
  if (srv->d) {
    MHD_socket fd = MHD_quiesce_daemon(srv->d);
    if (fd != MHD_INVALID_SOCKET) close(fd);
    double until = fm_now() + srv->opts.drain_ms / 1000.0;
    while (__atomic_load_n(&srv->inflight, __ATOMIC_ACQUIRE) > 0 && fm_now() < until) {
      struct timespec ts = {0, 5 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(srv->d); /* joins the workers: their state is freed */
  }
  fm_jobs_batch_free(srv->batch); /* a running batch stops after its slice */
  if (srv->key_ok) pthread_key_delete(srv->key);
  fm_http_learn_destroy(srv, &srv->learn); /* its holder pins a model: first */
  fm_http_model_release(srv, srv->cur); /* the last holder: its model closes */
  pthread_mutex_destroy(&srv->model_mu);
  pthread_mutex_destroy(&srv->reload_mu);
  pthread_mutex_destroy(&srv->rate_mu);
  fm_free(srv->rate);
  fm_rank_cache_free(srv->rank_cache);
  fm_free(srv->db_path);
  fm_free(srv);
}
