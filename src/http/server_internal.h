/* server_internal.h: the server object, shared by server.c (the daemon and
 * request life cycle) and server_metrics.c (counters and /metrics).  Private
 * to those two files; everything else uses the accessors of http_internal.h. */
#ifndef FM_SERVER_INTERNAL_H
#define FM_SERVER_INTERNAL_H

#include "http_internal.h"

/* Statuses the metrics keep apart (server_metrics.c), plus "other". */
#define NSTATUS 16
/* Latency histogram buckets (bounds in server_metrics.c). */
#define NBUCKET 12
#define MAX_ROUTES 64 /* route slots in the metrics (table + "unmatched") */

typedef struct metric_cell {
  uint64_t count, sum_us;
  uint64_t bucket[NBUCKET]; /* non-cumulative; summed when written */
} metric_cell;

/* Rate limiter: a fixed table of token buckets keyed by a hash of the
 * client (bearer token, else IP).  Two clients that collide in a slot evict
 * each other, which only ever makes the limit more lenient; memory stays
 * bounded whatever the number of clients. */
#define RATE_SLOTS 4096
typedef struct rate_slot {
  uint64_t key;
  double tokens, last;
} rate_slot;

struct fm_http_server {
  struct MHD_Daemon *d;
  fm_http_opts opts;
  pthread_mutex_t model_mu; /* guards cur and every holder's refs */
  fm_http_mref *cur;        /* the model new requests pin (model_ref.c) */
  uint64_t model_gen;       /* the last generation handed out */
  pthread_mutex_t reload_mu; /* one reload at a time */
  char *db_path;
  pthread_key_t key;
  int key_ok;
  int ready;           /* atomic */
  long conns, inflight; /* atomic */
  uint64_t reqid_base, reqid_next; /* request ids: random base, atomic counter */
  double started_wall, started_mono; /* Unix time and fm_now() at start */
  uint16_t port;
  struct sockaddr_storage addr;
  pthread_mutex_t rate_mu;
  rate_slot *rate;
  fm_rank_cache *rank_cache; /* NULL when disabled */
  fm_jobs_batch *batch; /* the batch-run thread (fm_jobs_batch_*) */
  fm_http_learn_state learn; /* the learning layer (learn_ref.c) */
  metric_cell cells[MAX_ROUTES][NSTATUS];
};

/* Count one finished request of route (-1: unmatched) with its status and
 * duration (server_metrics.c; relaxed atomics, any thread). */
void fm_http_metrics_record(fm_http_server *srv, int route, unsigned status, double secs);

/* 1 when the client of r may proceed under --rate/--burst, taking one token
 * from its bucket; 0 when it must get 429 (server_auth.c; any thread). */
int fm_http_rate_ok(fm_http_server *srv, fm_http_req *r);

#endif
