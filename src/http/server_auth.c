/* server_auth.c: who is asking: the per-client rate limiter (token buckets
 * keyed by the bearer token, else the IP) and authentication of a request's
 * token against the store (fm_http_authenticate, http_internal.h).  The
 * server object is server_internal.h's. */
#include "server_internal.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

static uint64_t client_key(fm_http_req *r) {
  const char *auth = MHD_lookup_connection_value(r->con, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_AUTHORIZATION);
  if (auth) return fm_hash64(auth, strlen(auth)) | 1;
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(r->con, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (!ci || !ci->client_addr) return 2;
  const struct sockaddr *sa = ci->client_addr;
  if (sa->sa_family == AF_INET6)
    return fm_hash64(&((const struct sockaddr_in6 *)sa)->sin6_addr, 16) & ~(uint64_t)1;
  return fm_hash64(&((const struct sockaddr_in *)sa)->sin_addr, 4) & ~(uint64_t)1;
}

/* 1 when the client may proceed: one token from its bucket (server_internal.h). */
int fm_http_rate_ok(fm_http_server *srv, fm_http_req *r) {
  if (srv->opts.rate <= 0) return 1;
  uint64_t key = client_key(r);
  double now = fm_now(), burst = srv->opts.burst > 0 ? srv->opts.burst : srv->opts.rate;
  if (burst < 1) burst = 1;
  int ok;
  pthread_mutex_lock(&srv->rate_mu);
  rate_slot *s = &srv->rate[key % RATE_SLOTS];
  if (s->key != key) {
    s->key = key;
    s->tokens = burst;
    s->last = now;
  }
  s->tokens += (now - s->last) * srv->opts.rate;
  if (s->tokens > burst) s->tokens = burst;
  s->last = now;
  ok = s->tokens >= 1.0;
  if (ok) s->tokens -= 1.0;
  pthread_mutex_unlock(&srv->rate_mu);
  return ok;
}

int fm_http_authenticate(fm_http_req *r, int need, enum MHD_Result *ret) {
  if (r->srv->opts.no_auth) {
    r->role = FM_TOKEN_ADMIN;
    snprintf(r->owner, sizeof r->owner, "local"); /* the analyst of decisions */
    return 0;
  }
  if (need == 0) return 0;
  const char *secret = r->path_secret; /* /t/{secret}/...: OpenRefine's browser */
  if (!secret) {
    const char *auth = MHD_lookup_connection_value(r->con, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_AUTHORIZATION);
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) {
      *ret = fm_http_reply_error(r, FM_EC_UNAUTHORIZED, "send 'Authorization: Bearer <token>'");
      return -1;
    }
    secret = auth + 7;
    while (*secret == ' ') secret++;
  }
  fm_error err;
  fm_error_init(&err);
  fm_http_worker *w = fm_http_worker_get(r->srv, &err);
  fm_store *st = NULL;
  fm_token_info t;
  fm_rc rc = w ? fm_http_worker_store(w, &st, &err) : err.rc;
  if (!rc) rc = fm_store_token_check(st, secret, &t, &err);
  if (rc == FM_ERR_DENIED) {
    *ret = fm_http_reply_error(r, FM_EC_UNAUTHORIZED, "invalid or revoked token");
    return -1;
  }
  if (rc) {
    *ret = fm_http_reply_rc(r, &err);
    return -1;
  }
  r->role = (int)t.role;
  snprintf(r->owner, sizeof r->owner, "%s", t.owner);
  if (r->role < need) {
    *ret = fm_http_reply_error(r, FM_EC_FORBIDDEN, "this route needs role %s, token has %s",
                               fm_token_role_name((fm_token_role)need),
                               fm_token_role_name(t.role));
    return -1;
  }
  return 0;
}
