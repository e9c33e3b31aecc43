/* http_internal.h: what the HTTP front end's files share (the GNU Taler
 * exchange layout): the request context, the static route table, the
 * error-code enum, reply helpers and the per-thread worker state.  One file
 * per endpoint (h_*.c) implements handlers with the fm_http_handler
 * signature and is listed in routes.c. */
#ifndef FM_HTTP_INTERNAL_H
#define FM_HTTP_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>

#include "fm_http.h"
#include "fm_jobs.h"

/* Numeric error codes of the error body {"code","hint","detail"}: one enum,
 * grouped by HTTP status; never renumber (clients key on them). */
typedef enum fm_http_ec {
  FM_EC_BAD_JSON = 1000,        /* 400 body is not the JSON expected */
  FM_EC_BAD_PARAM = 1001,       /* 400 a query parameter is missing or bad */
  FM_EC_UNAUTHORIZED = 1100,    /* 401 no or unknown bearer token */
  FM_EC_FORBIDDEN = 1101,       /* 403 token's role is too low */
  FM_EC_NO_ROUTE = 1200,        /* 404 no such path */
  FM_EC_FIELD_NOT_FOUND = 1201, /* 404 no such field */
  FM_EC_RUN_NOT_FOUND = 1202,   /* 404 no such batch run */
  FM_EC_TOKEN_NOT_FOUND = 1203, /* 404 no such token, or already revoked */
  FM_EC_METHOD = 1300,          /* 405 path exists, method does not */
  FM_EC_BODY_TOO_LARGE = 1400,  /* 413 body over max_body */
  FM_EC_BATCH_TOO_LARGE = 1401, /* 413 more fields than max_batch */
  FM_EC_URI_TOO_LONG = 1402,    /* 414 request target over max_uri */
  FM_EC_HEADER_TOO_LARGE = 1403, /* 431 request header over max_header */
  FM_EC_RATE_LIMITED = 1500,    /* 429 over the request rate */
  FM_EC_CONN_LIMIT = 1501,      /* 429 over the connection limit */
  FM_EC_EXPORT_LIMIT = 1502,    /* 429 too many exports streaming at once */
  FM_EC_INTERNAL = 1600,        /* 500 a bug or out of memory */
  FM_EC_DB = 1601,              /* 500 the database failed */
  FM_EC_NOT_READY = 1700,       /* 503 starting or shutting down */
  FM_EC_DB_BUSY = 1701,         /* 503 the database stayed locked */
  FM_EC_PROVISION_NOT_FOUND = 1250, /* 404 no such request (or not the caller's) */
  FM_EC_PROVISION_NOT_READY = 1850, /* 409 the request's file is not ready */
  FM_EC_PROVISION_GONE = 1900,      /* 410 the request expired: its file is removed */
  FM_EC_PROVISION_OFF = 1750,       /* 503 the server has no provisioning root */
  FM_EC_NO_DATABASE = 1702,     /* 503 the server runs without a database */
  FM_EC_CONFLICT = 1800,        /* 409 the accepted mapping changed meanwhile */
  FM_EC_BATCH_RUNNING = 1801,   /* 409 a batch run is already running */
  FM_EC_RELOAD_FAILED = 1450    /* 422 the model file did not open; old one serves */
} fm_http_ec;

typedef struct fm_http_req fm_http_req;
typedef enum MHD_Result (*fm_http_handler)(fm_http_req *r);

/* Role a route needs: 0 none (health, metrics, manifest), else a token role. */
typedef struct fm_http_route {
  const char *method;
  const char *pattern; /* segments; "{name}" matches one segment */
  fm_http_handler handler;
  int role;            /* 0 or fm_token_role */
} fm_http_route;

extern const fm_http_route fm_http_route_table[];
extern const size_t fm_http_route_n;

#define FM_HTTP_MAX_PARAMS 4

/* Per worker thread: a matcher and candidate buffer over the shared model,
 * and a lazily opened SQLite connection.  Freed when the thread exits. */
/* A reference-counted holder of a served model (model_ref.c). */
typedef struct fm_http_mref fm_http_mref;

typedef struct fm_http_worker {
  fm_http_server *srv;
  fm_http_mref *mref;  /* the model this thread's requests use (pinned) */
  fm_matcher *matcher; /* over mref's model */
  fm_candidate *cand;  /* FM_HTTP_MAX_CAND entries */
  fm_store *store;     /* NULL until first needed */
  fm_buf out;          /* reply text, reused by the direct JSON renderer */
} fm_http_worker;

#define FM_HTTP_MAX_K 100
/* How every JSON reply body is written (fm_http_reply_json); the direct
 * renderers (jw.c, match_text) give these bytes without a tree. */
#define FM_HTTP_JSON_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9))
#define FM_HTTP_MAX_CAND 1000

/* Longest X-Request-Id taken from a client; a longer one, or one with a
 * byte outside [A-Za-z0-9._:-], is replaced by a generated id. */
#define FM_HTTP_REQID_MAX 64

/* One per request: allocated when MHD sees the request line (URI log
 * callback), freed in the completed callback. */
struct fm_http_req {
  fm_http_server *srv;
  struct MHD_Connection *con;
  const char *method;           /* borrowed from MHD */
  const char *url;              /* decoded path, borrowed from MHD */
  size_t uri_len;               /* raw request target length */
  double start;
  int started;                  /* first handler call done */
  int checked;                  /* precheck ran (route, limits, auth) */
  int route;                    /* index in the table, or -1 */
  char *params[FM_HTTP_MAX_PARAMS]; /* path parameters ({vendor}, {id}) */
  char *path_copy;              /* owns the params' bytes */
  fm_buf body;
  int body_too_large;
  unsigned status;              /* the status queued (0 before) */
  char owner[FM_TOKEN_OWNER_MAX + 1]; /* token owner, "-" when none */
  int role;                     /* caller's role (0 when anonymous) */
  char reqid[FM_HTTP_REQID_MAX + 1]; /* X-Request-Id: the client's or ours */
  const char *path_secret;      /* the token of a /t/{secret}/ route (params[0]) */
};

struct fm_http_server;

/* ---- server.c --------------------------------------------------------- */

/* Authenticate the request for a route needing role `need` (0: none; with
 * no_auth everyone is admin).  0 ok (r->owner, r->role set), else an error
 * reply (401/403/503) was queued and its result is in *ret. */
int fm_http_authenticate(fm_http_req *r, int need, enum MHD_Result *ret);

/* Routes under this prefix take the bearer token from the path instead of
 * the Authorization header: OpenRefine opens the view and preview URLs of
 * a service in the browser, which cannot add a header. */
#define FM_HTTP_TOKEN_PREFIX "/t/{secret}/"

/* Replace the secret of a "/t/<secret>/..." path (in place) by REDACTED,
 * for logs.  Other paths are left alone. */
void fm_http_redact_path(char *path);

/* The absolute base every URL the server writes starts with: --public-url
 * when given, else http://<listen address>:<port> (a wildcard address
 * becomes loopback), never the request's Host header; plus "/t/<secret>"
 * when the request came in under FM_HTTP_TOKEN_PREFIX.  No trailing '/'. */
void fm_http_base_url(fm_http_req *r, char *out, size_t n);

/* The methods served on url, comma-separated, into out ("GET, POST");
 * returns how many. */
int fm_http_allow(const char *url, char *out, size_t n);

/* The calling thread's worker state (created on first use), or NULL on
 * allocation failure. */
fm_http_worker *fm_http_worker_get(fm_http_server *srv, fm_error *err);
/* The worker's store connection, opened lazily; FM_ERR_ARG when the server
 * has no database. */
fm_rc fm_http_worker_store(fm_http_worker *w, fm_store **out, fm_error *err);

const fm_model *fm_http_model(const fm_http_server *srv);
/* 1 when the server was started with a database (tokens, curated mappings). */
int fm_http_server_has_db(const fm_http_server *srv);
const fm_http_opts *fm_http_server_opts(const fm_http_server *srv);
/* Connections open now, requests in flight now. */
void fm_http_load(const fm_http_server *srv, long *connections, long *inflight);
/* Append the request counters and latency histograms (Prometheus text). */
fm_rc fm_http_metrics_write(const fm_http_server *srv, fm_buf *out);

/* The calling worker thread's store connection for a request.  0 ok, else
 * an error reply (503 without a database, 500/503 when it cannot be
 * opened) was queued and its result is in *ret.  *st is borrowed: it
 * belongs to the worker thread and lives as long as the thread. */
int fm_http_req_store(fm_http_req *r, fm_store **st, enum MHD_Result *ret);

/* ---- batch runs (h_batch.c) -------------------------------------------- */

/* The server's batch-run controller: at most one run at a time, in a
 * background thread with its own store connection.  Created by
 * fm_http_server_start, stopped (the thread asked to stop after its current
 * slice of parts and joined; the run stays resumable) and freed by
 * fm_http_server_stop.  The server owns it. */
fm_jobs_batch *fm_http_batchctl_get(fm_http_server *srv); /* borrowed */

/* ---- reply.c ---------------------------------------------------------- */

/* Queue a JSON reply (takes the reference to j, also on failure). */
enum MHD_Result fm_http_reply_json(fm_http_req *r, unsigned status, json_t *j);
/* Queue a response the caller built (a file, say, or a stream from MHD_create_response_from_
 * callback), adding what every response carries; takes resp (destroyed
 * here, also on failure; NULL means out of memory). */
enum MHD_Result fm_http_reply_response(fm_http_req *r, unsigned status,
                                       struct MHD_Response *resp);
/* Queue a reply from a buffer (copied) with a content type. */
enum MHD_Result fm_http_reply_bytes(fm_http_req *r, unsigned status, const char *ctype,
                                    const void *p, size_t n);
/* Queue the one error body {"code","hint","detail"}; the status and hint
 * come from the code; detail is printf-style (may be NULL). */
enum MHD_Result fm_http_reply_error(fm_http_req *r, fm_http_ec ec, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Map a library failure to an error reply (BUSY -> 503, DB -> 500, ...). */
enum MHD_Result fm_http_reply_rc(fm_http_req *r, const fm_error *err);
/* The HTTP status of an error code. */
unsigned fm_http_ec_status(fm_http_ec ec);
/* Add the CORS headers every response carries. */
void fm_http_add_cors(struct MHD_Response *resp);

/* ---- args.c ----------------------------------------------------------- */

/* Query-string argument (decoded, borrowed from MHD) or NULL. */
const char *fm_http_arg(fm_http_req *r, const char *name);
/* Parse an integer argument in [lo, hi] (default when absent).  0 ok, else
 * an error reply was queued and *ret holds its result. */
int fm_http_arg_int(fm_http_req *r, const char *name, long lo, long hi, long def,
                    long *out, enum MHD_Result *ret);
int fm_http_arg_double(fm_http_req *r, const char *name, double def, double *out,
                       enum MHD_Result *ret);
/* Value of name in an application/x-www-form-urlencoded body; caller owns
 * the result (fm_free); NULL when absent or out of memory. */
char *fm_http_form_value(const char *body, size_t len, const char *name);

/* ---- direct JSON text (jw.c) ------------------------------------------ */

/* Strings: fm_buf_json_str (fm_util.h). */
/* Append a finite real as JSON_REAL_PRECISION(9) writes it; FM_ERR_INTERNAL
 * for NaN and infinities (which JSON cannot carry). */
fm_rc fm_jw_real(fm_buf *b, double v, fm_error *err);
/* fm_jw_real(round(v * 1e4) / 1e4), the way scores are sent, without
 * printf: the same bytes, several times faster. */
fm_rc fm_jw_score4(fm_buf *b, double v, fm_error *err);
/* Append an integer as jansson writes it. */
fm_rc fm_jw_int(fm_buf *b, long long v, fm_error *err);

/* ---- reconciliation (h_reconcile*.c) ------------------------------------ */

#define FM_RECON_TYPE_ID "field"
#define FM_RECON_TYPE_NAME "Market data field"
#define FM_RECON_ID_SPACE "https://fieldmatch.invalid/ns/field"
#define FM_RECON_SCHEMA_SPACE "https://fieldmatch.invalid/ns/schema"

/* A data-extension property (h_reconcile_extend.c). */
typedef struct fm_recon_prop {
  const char *id, *name, *description;
} fm_recon_prop;
extern const fm_recon_prop fm_recon_props[];
extern const size_t fm_recon_nprops;

/* Answer a data-extension request (the JSON text of extend=). */
enum MHD_Result fm_http_reconcile_extend(fm_http_req *r, const char *text);

/* HTML-escape s (may be NULL) into b. */
fm_rc fm_http_html(fm_buf *b, const char *s);

/* ---- the served model (model_ref.c) ------------------------------------ */

/* A holder with one reference (the caller's) for model m of generation gen;
 * owned (may be NULL) is closed when the last reference goes. */
fm_rc fm_http_mref_new(const fm_model *m, fm_model *owned, uint64_t gen, fm_http_mref **out,
                       fm_error *err);
const fm_model *fm_http_mref_model(const fm_http_mref *h);
uint64_t fm_http_mref_gen(const fm_http_mref *h);
/* Take a reference to *cur / drop one (h may be NULL), under mu. */
fm_http_mref *fm_http_mref_acquire(pthread_mutex_t *mu, fm_http_mref *const *cur);
void fm_http_mref_release(pthread_mutex_t *mu, fm_http_mref *h);
/* The server's current holder, for comparison only (no reference taken). */
fm_http_mref *fm_http_server_mref_peek(fm_http_server *srv);
/* A reference to the current model, for work that outlives a request (a
 * batch run): pair with fm_http_model_release. */
fm_http_mref *fm_http_model_acquire(fm_http_server *srv);
void fm_http_model_release(fm_http_server *srv, fm_http_mref *h);
/* Move the worker to the current model (new matcher) if a reload swapped
 * it; FM_ERR_NOMEM leaves the worker as it was. */
fm_rc fm_http_worker_sync(fm_http_worker *w, fm_error *err);

/* ---- the served learning layer (learn_ref.c) --------------------------- */

typedef struct fm_http_lref fm_http_lref; /* a reference-counted layer holder */
typedef struct fm_http_learn_state {
  pthread_mutex_t mu;       /* guards cur, every holder's refs and the
                               learner's counters below */
  pthread_mutex_t build_mu; /* one rebuild at a time */
  fm_http_lref *cur;        /* NULL until the first build */
  uint64_t gen;             /* the last generation handed out */
  /* The learner thread (with a database): decisions ask for a rebuild and
   * wait for it up to learn_wait_ms; requests that arrive during a rebuild
   * are served together by the next one. */
  pthread_cond_t work;      /* wanted moved past built, or stop */
  pthread_cond_t done;      /* built moved */
  pthread_t thr;
  int thr_ok, stop;
  uint64_t wanted;          /* rebuilds asked for (one per decision) */
  uint64_t built;           /* requests up to this one are in the layer */
  uint64_t rebuilds;        /* rebuilds the learner ran */
} fm_http_learn_state;
/* The server's state (server.c). */
fm_http_learn_state *fm_http_server_learn(fm_http_server *srv);
void fm_http_learn_init(fm_http_learn_state *s);
void fm_http_learn_destroy(fm_http_server *srv, fm_http_learn_state *s);
/* A reference to the current layer (NULL when none): pair with release. */
fm_http_lref *fm_http_learn_acquire(fm_http_server *srv);
void fm_http_learn_release(fm_http_server *srv, fm_http_lref *h);
const fm_learn *fm_http_lref_layer(const fm_http_lref *h); /* NULL for NULL */
uint64_t fm_http_lref_gen(const fm_http_lref *h);          /* 0 for NULL */
/* Rebuild the layer from the store's decisions (on st, the caller's
 * connection) for the current model and swap it in. */
fm_rc fm_http_learn_refresh(fm_http_server *srv, fm_store *st, fm_error *err);
/* Rebuild the layer from the database on a connection of its own (start,
 * reload, the learner thread); a failure is logged and the old layer stays
 * (server_reload.c). */
void fm_http_learn_from_db(fm_http_server *srv);
/* Start the learner thread (fm_http_learn_destroy stops and joins it). */
fm_rc fm_http_learn_start(fm_http_server *srv, fm_error *err);
/* After a decision committed: ask the learner for a layer that includes it
 * and wait up to wait_ms for it.  1: a rebuild that includes it has run
 * (one that failed was logged and kept the old layer, as at start); 0:
 * still being built (it will be, without another request).  The thread
 * runs whenever the server has a database, the only way to decide. */
int fm_http_learn_request(fm_http_server *srv, unsigned wait_ms);
/* The learner's counters, for /metrics: rebuilds run, and decisions not yet
 * in the served layer. */
void fm_http_learn_stats(const fm_http_server *srv, uint64_t *rebuilds, uint64_t *pending);

/* ---- ranking cache (rank_cache.c) -------------------------------------- */

/* A bounded, thread-safe cache of fm_http_rank results (the model's
 * ranking only; keys carry the model's generation, so a reload never serves
 * an old model's ranking).  NULL is a valid,
 * disabled cache for every call but get/put. */
typedef struct fm_rank_cache fm_rank_cache;
/* entries 0: *out = NULL (no cache).  FM_ERR_NOMEM. */
fm_rc fm_rank_cache_new(size_t entries, fm_rank_cache **out);
void fm_rank_cache_free(fm_rank_cache *c);
/* The key bytes of a ranking request into buf; 0 when it does not fit. */
#define FM_RANK_KEY_MAX 1024
size_t fm_rank_cache_key(unsigned char *buf, size_t cap, uint64_t gen, const char *field,
                         int k, double min_score, const char *vendor);
/* 1 on a hit: the n cached candidates copied to out. */
int fm_rank_cache_get(fm_rank_cache *c, const unsigned char *key, size_t klen,
                      fm_candidate *out, int *n);
/* Remember a result (silently not, out of memory). */
void fm_rank_cache_put(fm_rank_cache *c, const unsigned char *key, size_t klen,
                       const fm_candidate *cand, int n);
void fm_rank_cache_stats(const fm_rank_cache *c, uint64_t *hits, uint64_t *misses,
                         size_t *capacity);
/* The server's cache (NULL when disabled). */
fm_rank_cache *fm_http_rank_cache(const fm_http_server *srv);

/* ---- ranking (h_match.c) --------------------------------------------- */

/* Rank reference fields for a Bloomberg field id (or bare mnemonic) into
 * w->cand: at most k, score >= min_score, vendor (may be NULL) matching the
 * reference vendor.  *n receives the count. */
fm_rc fm_http_rank(fm_http_worker *w, const char *field, int k, double min_score,
                   const char *vendor, int *n, fm_error *err);

/* ---- shared JSON builders (h_fields.c) -------------------------------- */

/* Field search over the model's fields (no database: the model is what is
 * served).  prefix: q is a case-insensitive prefix of the id; else every
 * whitespace-separated word of q must occur (case-insensitively) in the id,
 * name or description.  Exact id matches come first, then id prefixes, then
 * the rest in model order.  Writes at most limit hits into hits[]; returns
 * the count. */
typedef struct fm_http_hit {
  int query;    /* 1: a query (Bloomberg) field, 0: a reference field */
  size_t index; /* in the model */
} fm_http_hit;
size_t fm_http_search(const fm_model *m, const char *q, const char *vendor, int prefix,
                      int refs_only, size_t limit, fm_http_hit *hits);

/* A field of the model as a JSON object (new reference, NULL on OOM). */
json_t *fm_http_field_json(const fm_field *f, const char *role);

/* ---- handlers --------------------------------------------------------- */

enum MHD_Result fm_h_healthz(fm_http_req *r);
enum MHD_Result fm_h_readyz(fm_http_req *r);
enum MHD_Result fm_h_metrics(fm_http_req *r);
enum MHD_Result fm_h_match_get(fm_http_req *r);
enum MHD_Result fm_h_match_post(fm_http_req *r);
enum MHD_Result fm_h_fields_get(fm_http_req *r);
enum MHD_Result fm_h_fields_search(fm_http_req *r);
enum MHD_Result fm_h_reconcile_get(fm_http_req *r);
enum MHD_Result fm_h_reconcile_post(fm_http_req *r);
enum MHD_Result fm_h_reconcile_preview(fm_http_req *r);
enum MHD_Result fm_h_reconcile_suggest(fm_http_req *r);
enum MHD_Result fm_h_reconcile_suggest_property(fm_http_req *r);
enum MHD_Result fm_h_reconcile_suggest_type(fm_http_req *r);
enum MHD_Result fm_h_reconcile_view(fm_http_req *r);
enum MHD_Result fm_h_reconcile_propose(fm_http_req *r);
enum MHD_Result fm_h_provision_create(fm_http_req *r);
enum MHD_Result fm_h_provision_list(fm_http_req *r);
enum MHD_Result fm_h_provision_get(fm_http_req *r);
enum MHD_Result fm_h_provision_download(fm_http_req *r);
enum MHD_Result fm_h_review_queue(fm_http_req *r);
enum MHD_Result fm_h_review_stats(fm_http_req *r);
enum MHD_Result fm_h_review_daily(fm_http_req *r);
enum MHD_Result fm_h_review_bulk(fm_http_req *r);
enum MHD_Result fm_h_me(fm_http_req *r);
enum MHD_Result fm_h_ui(fm_http_req *r);
enum MHD_Result fm_h_review_show(fm_http_req *r);
enum MHD_Result fm_h_review_decide(fm_http_req *r);
enum MHD_Result fm_h_review_history(fm_http_req *r);
enum MHD_Result fm_h_mappings_list(fm_http_req *r);
enum MHD_Result fm_h_mappings_export(fm_http_req *r);
enum MHD_Result fm_h_batch_start(fm_http_req *r);
enum MHD_Result fm_h_batch_list(fm_http_req *r);
enum MHD_Result fm_h_batch_get(fm_http_req *r);
enum MHD_Result fm_h_graphql_post(fm_http_req *r);
enum MHD_Result fm_h_graphql_get(fm_http_req *r);

/* ---- GraphQL (gql_schema.c) -------------------------------------------- */

/* fieldmatch's GraphQL schema, built on first use and shared by every
 * thread for the life of the process (borrowed; NULL, err set, when it
 * could not be built: the next call tries again).  Resolvers take the
 * fm_http_req as the request's ctx. */
struct fm_gql_schema;
const struct fm_gql_schema *fm_http_gql_schema(fm_error *err);
enum MHD_Result fm_h_admin_model_reload(fm_http_req *r);
enum MHD_Result fm_h_openapi_yaml(fm_http_req *r);
enum MHD_Result fm_h_openapi_json(fm_http_req *r);
enum MHD_Result fm_h_tokens_create(fm_http_req *r);
enum MHD_Result fm_h_tokens_list(fm_http_req *r);
enum MHD_Result fm_h_tokens_revoke(fm_http_req *r);

#endif
