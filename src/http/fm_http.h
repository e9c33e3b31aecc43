/* fm_http.h: the fieldmatch HTTP service, the HTTP front end's one public
 * header.  A libmicrohttpd daemon (internal thread pool, epoll) serving the
 * lookup, field, reconciliation and health routes over a shared, read-only
 * model and a per-thread SQLite connection.  docs/http.md describes the
 * routes; api/openapi.yaml is their contract.
 *
 * Ownership: fm_http_server_start returns a server the caller owns and ends
 * with fm_http_server_stop.  The model and the options' strings and FILE*
 * are borrowed: they must outlive the server. */
#ifndef FM_HTTP_H
#define FM_HTTP_H

#include <stdint.h>
#include <stdio.h>

#include "fm_model.h"
#include "fm_util.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fm_http_opts {
  const char *listen;     /* "HOST:PORT" or "[V6]:PORT"; port 0 = any free port
                             (default "127.0.0.1:8080") */
  unsigned threads;       /* worker threads in MHD's pool (default 2) */
  unsigned conn_limit;    /* connections served at once; more get 429 (1024) */
  unsigned per_ip_limit;  /* connections per client IP; MHD refuses more (0 = off) */
  unsigned timeout_s;     /* idle connection timeout, seconds (30) */
  size_t mem_limit;       /* memory per connection, bytes (32 KiB) */
  size_t max_body;        /* request body limit; more gets 413 (1 MiB) */
  size_t max_uri;         /* request-target limit; longer gets 414 (4096) */
  size_t max_header;      /* request header bytes (names, values, separators);
                             more gets a JSON 431 (8192).  Headers that do not
                             fit mem_limit at all get libmicrohttpd's own 431. */
  unsigned max_batch;     /* fields per POST /v1/match; more gets 413 (100) */
  double rate;            /* requests per second per client (bearer token, else
                             IP); over it gets 429.  0 = no rate limit (default) */
  double burst;           /* bucket size for rate (default max(rate, 1)) */
  int no_auth;            /* serve without tokens (everyone is admin) */
  const char *model_path; /* the model file, for reloads (NULL: none) */
  const char *public_url; /* base of every absolute URL the server writes,
                             e.g. https://fm.example.com (NULL: the listen
                             address); never taken from the Host header */
  FILE *access_log;       /* one line per request, or NULL for none */
  int access_log_json;    /* 1: the lines are JSON objects (docs/http.md) */
  unsigned drain_ms;      /* stop waits this long for in-flight requests (10000) */
  size_t match_cache;     /* rankings remembered across requests, shared by the
                             threads; 0 = off (default 16384; see docs/http.md) */
  unsigned learn_wait_ms; /* a decision's answer waits this long for the learning
                             layer that includes it (default 2000); past it the
                             rebuild goes on in the background and the answer
                             says "pending"; 0 = never wait (docs/http.md) */
  /* Provisioning (h_provision.c, docs/provision.md): the root files are
   * written under (<root>.provision/, beside the lake), or NULL to answer the provisioning
   * routes with 503.  ttl: seconds a ready file is kept (0: the library's
   * default).  wake (may be NULL) is called after a request is created, so
   * the worker (fm_prov_runner_wake) starts on it at once. */
  const char *provision_root;
  long provision_ttl;
  void (*provision_wake)(void *ctx);
  void *provision_ctx;
} fm_http_opts;

void fm_http_opts_default(fm_http_opts *o);

typedef struct fm_http_server fm_http_server;

/* Start serving.  model (borrowed, shared by all threads) must outlive the
 * server (a reloaded model replaces it for new requests; the server closes
 * only the models it opened itself).  db_path is opened once here (creating it and applying
 * migrations) and then lazily once per worker thread; it may be NULL only
 * with no_auth (then the database facts and tokens are absent).  The server
 * is ready when this returns.  Caller owns *out (fm_http_server_stop). */
fm_rc fm_http_server_start(const fm_http_opts *opts, const fm_model *model,
                           const char *db_path, fm_http_server **out,
                           fm_error *err);

/* Hot reload: open and check the model file at path (NULL: opts.model_path)
 * and serve it from the next request on; requests running meanwhile finish
 * on the model they started with, which is closed after the last of them.
 * A file that does not open leaves the old model serving and the reason in
 * err.  info (may be NULL) receives the new model's facts (borrowed until
 * the next reload).  Safe from any thread, one reload at a time. */
fm_rc fm_http_server_reload(fm_http_server *srv, const char *path, fm_model_info *info,
                            fm_error *err);

/* The TCP port actually bound (useful with port 0). */
uint16_t fm_http_server_port(const fm_http_server *srv);

/* Readiness: while 0, /readyz and every route but /healthz and /metrics
 * answer 503. */
void fm_http_server_set_ready(fm_http_server *srv, int ready);
int fm_http_server_ready(const fm_http_server *srv);

/* Graceful stop: mark not ready, stop accepting connections, wait up to
 * drain_ms for in-flight requests to finish, then stop the threads and free
 * everything.  srv may be NULL. */
void fm_http_server_stop(fm_http_server *srv);

/* The static route table, for the OpenAPI contract test and docs: route i
 * (0 <= i < fm_http_route_count()).  Strings are static. */
typedef struct fm_http_route_info {
  const char *method;  /* "GET", "POST" */
  const char *pattern; /* "/v1/fields/{vendor}/{id}" */
  const char *role;    /* "none", "reader", "analyst", "admin" */
} fm_http_route_info;
size_t fm_http_route_count(void);
fm_http_route_info fm_http_route_at(size_t i);

#ifdef __cplusplus
}
#endif
#endif /* FM_HTTP_H */
