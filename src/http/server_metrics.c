/* server_metrics.c: the server's request counters and latency histograms
 * (written by every worker thread with relaxed atomics) and the Prometheus
 * text of /metrics.  The server object is server_internal.h's. */
#include "server_internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Statuses the metrics keep apart; anything else counts as "other". */
static const unsigned metric_status[] = {0,   200, 202, 204, 400, 401, 403, 404,
                                         405, 409, 413, 414, 429, 500, 503};
_Static_assert(NSTATUS == sizeof metric_status / sizeof metric_status[0] + 1,
               "NSTATUS counts metric_status plus 'other'");
/* Latency histogram bucket bounds, seconds. */
static const double metric_le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                   0.05,   0.1,   0.25,   0.5,   1.0,  2.5};
_Static_assert(NBUCKET == sizeof metric_le / sizeof metric_le[0], "NBUCKET counts metric_le");

static size_t status_index(unsigned status) {
  for (size_t i = 0; i < NSTATUS - 1; i++)
    if (metric_status[i] == status) return i;
  return NSTATUS - 1;
}

void fm_http_metrics_record(fm_http_server *srv, int route, unsigned status, double secs) {
  size_t ri = route >= 0 && (size_t)route < fm_http_route_n ? (size_t)route : fm_http_route_n;
  metric_cell *c = &srv->cells[ri][status_index(status)];
  size_t b = 0;
  while (b < NBUCKET && secs > metric_le[b]) b++;
  __atomic_add_fetch(&c->count, 1, __ATOMIC_RELAXED);
  __atomic_add_fetch(&c->sum_us, (uint64_t)(secs * 1e6), __ATOMIC_RELAXED);
  if (b < NBUCKET) __atomic_add_fetch(&c->bucket[b], 1, __ATOMIC_RELAXED);
}

/* ---- metrics ---------------------------------------------------------- */

static const char *route_label(size_t ri) {
  return ri < fm_http_route_n ? fm_http_route_table[ri].pattern : "unmatched";
}
static const char *method_label(size_t ri) {
  return ri < fm_http_route_n ? fm_http_route_table[ri].method : "any";
}

static void status_label(size_t si, char out[8]) {
  if (si < NSTATUS - 1)
    snprintf(out, 8, "%u", metric_status[si]);
  else
    snprintf(out, 8, "other");
}

/* Resident set size in bytes from /proc/self/statm (0 when unreadable). */
static unsigned long long rss_bytes(void) {
  unsigned long long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  int n = fscanf(f, "%llu %llu", &pages, &resident);
  fclose(f);
  long psz = sysconf(_SC_PAGESIZE);
  return n == 2 && psz > 0 ? resident * (unsigned long long)psz : 0;
}

/* The process part of /metrics: memory and uptime (h_metrics.c writes
 * fm_model_info, whose checksum label changes when a new model serves). */
static fm_rc process_metrics(const fm_http_server *srv, fm_buf *b) {
  return fm_buf_printf(b,
                       "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                       "# TYPE process_resident_memory_bytes gauge\n"
                       "process_resident_memory_bytes %llu\n"
                       "# HELP process_start_time_seconds Start time of the server, Unix seconds.\n"
                       "# TYPE process_start_time_seconds gauge\n"
                       "process_start_time_seconds %.3f\n"
                       "# HELP fm_uptime_seconds Seconds since the server started.\n"
                       "# TYPE fm_uptime_seconds gauge\nfm_uptime_seconds %.3f\n",
                       rss_bytes(), srv->started_wall, fm_now() - srv->started_mono);
}


fm_rc fm_http_metrics_write(const fm_http_server *srv, fm_buf *b) {
  fm_rc rc = fm_buf_puts(b,
                         "# HELP fm_http_requests_total Requests by route, method and status "
                         "(status 0: the client went away before a reply).\n"
                         "# TYPE fm_http_requests_total counter\n");
  for (size_t ri = 0; !rc && ri <= fm_http_route_n; ri++)
    for (size_t si = 0; !rc && si < NSTATUS; si++) {
      uint64_t n = __atomic_load_n(&srv->cells[ri][si].count, __ATOMIC_RELAXED);
      if (!n) continue;
      char st[8];
      status_label(si, st);
      rc = fm_buf_printf(b, "fm_http_requests_total{route=\"%s\",method=\"%s\",status=\"%s\"} %llu\n",
                         route_label(ri), method_label(ri), st, (unsigned long long)n);
    }
  if (!rc)
    rc = fm_buf_puts(b,
                     "# HELP fm_http_request_duration_seconds Time from request line to the "
                     "end of the reply, by route and status.\n"
                     "# TYPE fm_http_request_duration_seconds histogram\n");
  for (size_t ri = 0; !rc && ri <= fm_http_route_n; ri++)
    for (size_t si = 0; !rc && si < NSTATUS; si++) {
      const metric_cell *c = &srv->cells[ri][si];
      uint64_t n = __atomic_load_n(&c->count, __ATOMIC_RELAXED);
      if (!n) continue;
      char st[8], labels[256];
      status_label(si, st);
      snprintf(labels, sizeof labels, "route=\"%s\",method=\"%s\",status=\"%s\"", route_label(ri),
               method_label(ri), st);
      uint64_t cum = 0;
      for (size_t bi = 0; !rc && bi < NBUCKET; bi++) {
        cum += __atomic_load_n(&c->bucket[bi], __ATOMIC_RELAXED);
        rc = fm_buf_printf(b, "fm_http_request_duration_seconds_bucket{%s,le=\"%g\"} %llu\n",
                           labels, metric_le[bi], (unsigned long long)cum);
      }
      if (!rc)
        rc = fm_buf_printf(b,
                           "fm_http_request_duration_seconds_bucket{%s,le=\"+Inf\"} %llu\n"
                           "fm_http_request_duration_seconds_sum{%s} %.6f\n"
                           "fm_http_request_duration_seconds_count{%s} %llu\n",
                           labels, (unsigned long long)n, labels,
                           (double)__atomic_load_n(&c->sum_us, __ATOMIC_RELAXED) / 1e6, labels,
                           (unsigned long long)n);
    }
  uint64_t hits, misses;
  size_t cap;
  fm_rank_cache_stats(srv->rank_cache, &hits, &misses, &cap);
  if (!rc)
    rc = fm_buf_printf(b,
                       "# HELP fm_http_match_cache_hits_total Rankings answered from the match cache.\n"
                       "# TYPE fm_http_match_cache_hits_total counter\n"
                       "fm_http_match_cache_hits_total %llu\n"
                       "# HELP fm_http_match_cache_misses_total Rankings computed (cache on, not found).\n"
                       "# TYPE fm_http_match_cache_misses_total counter\n"
                       "fm_http_match_cache_misses_total %llu\n"
                       "# HELP fm_http_match_cache_capacity Rankings the match cache holds at most (0: off).\n"
                       "# TYPE fm_http_match_cache_capacity gauge\n"
                       "fm_http_match_cache_capacity %zu\n",
                       (unsigned long long)hits, (unsigned long long)misses, cap);
  uint64_t rebuilds, pending;
  fm_http_learn_stats(srv, &rebuilds, &pending);
  if (!rc)
    rc = fm_buf_printf(b,
                       "# HELP fm_http_learn_rebuilds_total Learning-layer rebuilds run for decisions.\n"
                       "# TYPE fm_http_learn_rebuilds_total counter\n"
                       "fm_http_learn_rebuilds_total %llu\n"
                       "# HELP fm_http_learn_pending Decisions not yet in the served learning layer.\n"
                       "# TYPE fm_http_learn_pending gauge\n"
                       "fm_http_learn_pending %llu\n",
                       (unsigned long long)rebuilds, (unsigned long long)pending);
  long conns, inflight;
  fm_http_load(srv, &conns, &inflight);
  if (!rc)
    rc = fm_buf_printf(b,
                       "# HELP fm_http_connections Open connections.\n"
                       "# TYPE fm_http_connections gauge\nfm_http_connections %ld\n"
                       "# HELP fm_http_inflight Requests being handled.\n"
                       "# TYPE fm_http_inflight gauge\nfm_http_inflight %ld\n"
                       "# HELP fm_http_ready 1 when serving.\n"
                       "# TYPE fm_http_ready gauge\nfm_http_ready %d\n",
                       conns, inflight, fm_http_server_ready(srv));
  if (!rc) rc = process_metrics(srv, b);
  return rc;
}
