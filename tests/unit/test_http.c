/* test_http.c: the HTTP service in process.  Trains the sample model,
 * starts the real server on 127.0.0.1 port 0 and talks to it with a minimal
 * blocking socket client (fm_test_http.h): success paths, each error status
 * (400, 401, 404, 405 with Allow, 413, 414, 429, 503), CORS preflight, auth
 * roles, the match renderers agreeing byte for byte, confidence, and the
 * contract test: every route of the static table is in api/openapi.yaml
 * and every path/method there is served.  The review, mapping and
 * batch-run endpoints on a database (403 among them) are in
 * test_http_store.c.  The end-to-end shell test (tests/cli/test_http.sh)
 * covers the CLI, the reconciliation schemas and shutdown under load. */
#include "fm_http.h"
#include "fm_store.h"
#include "fm_test.h"
#include "fm_test_util.h"
#include "fm_test_store.h"
#include "fm_test_http.h"
#include "http_internal.h" /* fm_http_load: the open connections */

#include <arpa/inet.h>
#include <ctype.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void test_routes_and_errors(void) {
  fm_http_opts o;
  fm_http_opts_default(&o);
  o.no_auth = 1;
  o.max_body = 2000;
  o.max_uri = 200;
  o.max_batch = 3;
  fm_http_server *srv = start(&o, NULL);
  if (!srv) return;
  uint16_t p = fm_http_server_port(srv);
  CHECK(get(p, "/healthz", NULL) == 200);
  CHECK(get(p, "/readyz", NULL) == 200);
  CHECK(get(p, "/v1/match?field=PX_LAST&k=3", NULL) == 200);
  CHECK(strstr(resp, "\"rank\":3") && strstr(resp, "\"curated\":false"));
  CHECK(strstr(resp, "Access-Control-Allow-Origin: *") != NULL);
  CHECK(get(p, "/v1/match?field=PX_LAST&k=0", NULL) == 400);
  CHECK(strstr(resp, "\"code\":1001") && strstr(resp, "\"hint\"") && strstr(resp, "\"detail\""));
  CHECK(get(p, "/v1/match", NULL) == 400);
  CHECK(get(p, "/v1/match?field=PX_LAST&min_score=abc", NULL) == 400);
  CHECK(get(p, "/v1/match?field=PX_LAST&min_score=1000", NULL) == 200);
  CHECK(strstr(resp, "\"candidates\":[]") != NULL);
  CHECK(get(p, "/nope", NULL) == 404);
  CHECK(strstr(resp, "\"code\":1200") != NULL);
  CHECK(get(p, "/v1/fields/refinitiv/TRDPRC_1", NULL) == 200);
  CHECK(strstr(resp, "\"role\":\"reference\"") != NULL);
  CHECK(get(p, "/v1/fields/bloomberg/PX_LAST", NULL) == 200);
  CHECK(get(p, "/v1/fields/bloomberg/NO_SUCH", NULL) == 404);
  CHECK(strstr(resp, "\"code\":1201") != NULL);
  CHECK(get(p, "/v1/fields?q=TRDPRC&prefix=1&limit=2", NULL) == 200);
  CHECK(strstr(resp, "TRDPRC_1") != NULL);
  CHECK(get(p, "/v1/fields?q=last%20price", NULL) == 200);
  CHECK(get(p, "/v1/fields?q=x&limit=1000", NULL) == 400);
  /* 405 names the methods the path has. */
  CHECK(http(p, "PUT /v1/match HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", resp,
             sizeof resp) == 405);
  CHECK(strstr(resp, "Allow: GET, HEAD, POST, OPTIONS") != NULL);
  CHECK(http(p, "OPTIONS /v1/match HTTP/1.1\r\nHost: x\r\nOrigin: http://a\r\n"
                "Access-Control-Request-Method: POST\r\nConnection: close\r\n\r\n",
             resp, sizeof resp) == 204);
  CHECK(strstr(resp, "Access-Control-Allow-Methods: GET, HEAD, POST, OPTIONS") != NULL);
  CHECK(strstr(resp, "Access-Control-Allow-Headers: Authorization") != NULL);
  /* 414 */
  char longpath[400] = "/v1/match?field=";
  memset(longpath + strlen(longpath), 'A', 300);
  CHECK(get(p, longpath, NULL) == 414);
  CHECK(strstr(resp, "\"code\":1402") != NULL);
  /* POST: batch, bad JSON, wrong shape, too many, too large */
  CHECK(post(p, "/v1/match", "application/json", "{\"fields\":[\"PX_LAST\",\"VOLUME\"],\"k\":2}") ==
        200);
  CHECK(strstr(resp, "\"results\":[") && strstr(resp, "\"field\":\"VOLUME\""));
  CHECK(post(p, "/v1/match", "application/json", "{\"fields\":[") == 400);
  CHECK(strstr(resp, "\"code\":1000") != NULL);
  CHECK(post(p, "/v1/match", "application/json", "{\"fields\":[1]}") == 400);
  CHECK(post(p, "/v1/match", "application/json", "[]") == 400);
  CHECK(post(p, "/v1/match", "application/json", "{\"fields\":[\"A\"],\"k\":1000}") == 400);
  CHECK(post(p, "/v1/match", "application/json", "{\"fields\":[\"A\",\"B\",\"C\",\"D\"]}") == 413);
  CHECK(strstr(resp, "\"code\":1401") != NULL);
  char big[3000];
  memset(big, ' ', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  big[0] = '{';
  big[sizeof big - 2] = '}';
  CHECK(post(p, "/v1/match", "application/json", big) == 413);
  CHECK(strstr(resp, "\"code\":1400") != NULL);
  /* Chunked body over the limit: read, discarded, then 413. */
  char req[8192];
  snprintf(req, sizeof req,
           "POST /v1/match HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
           "Connection: close\r\n\r\nbb8\r\n%s\r\n0\r\n\r\n", big);
  CHECK(http(p, req, resp, sizeof resp) == 413);
  /* Reconciliation */
  CHECK(get(p, "/reconcile", NULL) == 200);
  CHECK(strstr(resp, "\"versions\":[\"0.2\"]") != NULL);
  CHECK(get(p, "/reconcile?queries=%7B%22q0%22%3A%7B%22query%22%3A%22PX_LAST%22%2C%22limit%22%3A2%7D%7D",
            NULL) == 200);
  CHECK(strstr(resp, "\"q0\":{\"result\":[") != NULL);
  CHECK(post(p, "/reconcile", "application/x-www-form-urlencoded",
             "queries=%7B%22q0%22%3A%7B%22query%22%3A%22PX_LAST%22%7D%7D") == 200);
  CHECK(strstr(resp, "TRDPRC_1") != NULL);
  CHECK(post(p, "/reconcile", "application/x-www-form-urlencoded", "queries=nope") == 400);
  CHECK(post(p, "/reconcile", "application/x-www-form-urlencoded", "x=1") == 400);
  CHECK(get(p, "/reconcile/preview?id=TRDPRC_1", NULL) == 200);
  CHECK(strstr(resp, "text/html") != NULL);
  CHECK(get(p, "/reconcile/preview?id=NOPE", NULL) == 404);
  CHECK(get(p, "/reconcile/suggest/entity?prefix=TRD", NULL) == 200);
  CHECK(strstr(resp, "\"result\":[") != NULL);
  CHECK(get(p, "/metrics", NULL) == 200);
  CHECK(strstr(resp, "fm_http_requests_total{route=\"/v1/match\",method=\"GET\",status=\"200\"}"));
  CHECK(strstr(resp, "fm_http_request_duration_seconds_bucket{route=\"/v1/match\""));
  CHECK(strstr(resp, "fm_model_fields{role=\"reference\"}") != NULL);
  /* Not ready: 503 everywhere but health and metrics. */
  fm_http_server_set_ready(srv, 0);
  CHECK(get(p, "/v1/match?field=PX_LAST", NULL) == 503);
  CHECK(strstr(resp, "\"code\":1700") && strstr(resp, "Retry-After: 1"));
  CHECK(get(p, "/readyz", NULL) == 503);
  CHECK(get(p, "/healthz", NULL) == 200);
  fm_http_server_set_ready(srv, 1);
  CHECK(get(p, "/readyz", NULL) == 200);
  fm_http_server_stop(srv);
}

static void test_auth_and_rate(void) {
  const char *db = tmp("http.db");
  unlink(db);
  fm_error err;
  fm_error_init(&err);
  fm_store *st;
  char reader[FM_TOKEN_SECRET_LEN + 1], admin[FM_TOKEN_SECRET_LEN + 1];
  int64_t rid = 0;
  CHECK(fm_store_open(db, create_opts(), &st, &err) == FM_OK);
  if (err.rc) return;
  CHECK(fm_store_token_create(st, "rita", FM_TOKEN_READER, "test", &rid, reader, &err) == FM_OK);
  CHECK(fm_store_token_create(st, "ada", FM_TOKEN_ADMIN, "test", NULL, admin, &err) == FM_OK);
  fm_http_opts o;
  fm_http_opts_default(&o);
  o.rate = 5;
  o.burst = 5;
  fm_http_server *srv = start(&o, db);
  if (!srv) {
    fm_store_close(st);
    return;
  }
  uint16_t p = fm_http_server_port(srv);
  CHECK(get(p, "/v1/match?field=PX_LAST", NULL) == 401);
  CHECK(get(p, "/v1/match?field=PX_LAST", "fm_bogus") == 401);
  CHECK(get(p, "/v1/match?field=PX_LAST", reader) == 200);
  CHECK(get(p, "/reconcile", NULL) == 200); /* the manifest is public */
  CHECK(get(p, "/reconcile?queries=%7B%7D", NULL) == 401);
  CHECK(get(p, "/reconcile?queries=%7B%7D", admin) == 200);
  CHECK(get(p, "/healthz", NULL) == 200);
  /* revoked: denied at once */
  CHECK(fm_store_token_revoke(st, rid, "test", &err) == FM_OK);
  CHECK(get(p, "/v1/match?field=PX_LAST", reader) == 401);
  /* the admin token has used 1 of 5; the next 4 pass, then 429 */
  int ok = 0, limited = 0;
  for (int i = 0; i < 8; i++) {
    int s = get(p, "/v1/fields/refinitiv/TRDPRC_1", admin);
    ok += s == 200;
    limited += s == 429;
  }
  CHECK(ok >= 4 && ok <= 5 && limited >= 3);
  CHECK(strstr(resp, "\"code\":1500") != NULL);
  fm_http_server_stop(srv);
  fm_store_close(st);
}

static long open_conns(const fm_http_server *srv) {
  long conns, inflight;
  fm_http_load(srv, &conns, &inflight);
  return conns;
}

static void test_conn_limit(void) {
  fm_http_opts o;
  fm_http_opts_default(&o);
  o.no_auth = 1;
  o.conn_limit = 1;
  fm_http_server *srv = start(&o, NULL);
  if (!srv) return;
  uint16_t p = fm_http_server_port(srv);
  /* Hold one idle connection open; the next one gets 429. */
  int fd = connect_local(p);
  CHECK(fd >= 0);
  WAIT_FOR("the server to count the idle connection", open_conns(srv) == 1);
  CHECK(get(p, "/v1/match?field=PX_LAST", NULL) == 429);
  CHECK(strstr(resp, "\"code\":1501") != NULL);
  if (fd >= 0) close(fd);
  WAIT_FOR("the server to see the idle connection closed", open_conns(srv) == 0);
  CHECK(get(p, "/v1/match?field=PX_LAST", NULL) == 200);
  fm_http_server_stop(srv);
}

static void test_bad_start(void) {
  fm_http_opts o;
  fm_http_opts_default(&o);
  fm_error err;
  fm_error_init(&err);
  fm_http_server *srv = (fm_http_server *)1;
  CHECK(fm_http_server_start(&o, model, NULL, &srv, &err) == FM_ERR_ARG && srv == NULL);
  o.no_auth = 1;
  o.listen = "nonsense";
  fm_error_init(&err);
  CHECK(fm_http_server_start(&o, model, NULL, &srv, &err) == FM_ERR_ARG);
  CHECK(strstr(err.msg, "nonsense") != NULL);
  o.listen = "127.0.0.1:99999";
  CHECK(fm_http_server_start(&o, model, NULL, &srv, &err) == FM_ERR_ARG);
  o.listen = "127.0.0.1:0";
  o.threads = 0;
  CHECK(fm_http_server_start(&o, model, NULL, &srv, &err) == FM_ERR_ARG);
  fm_http_server_stop(NULL);
}

/* The contract: api/openapi.yaml's paths and methods == the route table.
 * Paths are the two-space-indented keys under "paths:", methods the
 * four-space-indented keys under them. */
static void test_openapi_contract(void) {
  char *text = NULL;
  size_t n;
  fm_error err;
  fm_error_init(&err);
  CHECK(fm_read_file("api/openapi.yaml", &text, &n, &err) == FM_OK);
  if (!text) return;
  char spec[160][160];
  int nspec = 0, in_paths = 0;
  char path[128] = "";
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    if (!strncmp(line, "paths:", 6)) {
      in_paths = 1;
      continue;
    }
    if (!in_paths) continue;
    if (line[0] != ' ' && line[0] != '#') break; /* next top-level key */
    size_t len = strlen(line);
    if (!strncmp(line, "  /", 3) && line[len - 1] == ':') {
      snprintf(path, sizeof path, "%.*s", (int)(len - 3), line + 2);
    } else if (!strncmp(line, "    ", 4) && line[4] != ' ' && nspec < 160) {
      char m[16];
      if (sscanf(line + 4, "%15[a-z]:", m) == 1 &&
          (!strcmp(m, "get") || !strcmp(m, "post") || !strcmp(m, "put") ||
           !strcmp(m, "delete") || !strcmp(m, "patch"))) {
        for (char *c = m; *c; c++) *c = (char)(*c - 'a' + 'A');
        snprintf(spec[nspec++], sizeof spec[0], "%s %s", m, path);
      }
    }
  }
  fm_free(text);
  size_t nr = fm_http_route_count();
  CHECK(nr > 0 && (size_t)nspec == nr);
  for (size_t i = 0; i < nr; i++) {
    fm_http_route_info ri = fm_http_route_at(i);
    char want[160];
    snprintf(want, sizeof want, "%s %s", ri.method, ri.pattern);
    int found = 0;
    for (int j = 0; j < nspec; j++) found |= !strcmp(spec[j], want);
    if (!found) fprintf(stderr, "route %s is not in api/openapi.yaml\n", want);
    CHECK(found);
  }
  for (int j = 0; j < nspec; j++) {
    int found = 0;
    for (size_t i = 0; i < nr; i++) {
      fm_http_route_info ri = fm_http_route_at(i);
      char have[160];
      snprintf(have, sizeof have, "%s %s", ri.method, ri.pattern);
      found |= !strcmp(spec[j], have);
    }
    if (!found) fprintf(stderr, "api/openapi.yaml names %s, which is not served\n", spec[j]);
    CHECK(found);
  }
  CHECK(fm_http_route_at(nr).method == NULL);
}

/* GET /v1/match renders straight to text when the server has no database
 * (nothing curated to put first) and through jansson when it has one; with
 * and without the match cache, first request and repeat.  All four must
 * send the same bytes, for every sample query field and for fields that
 * need escaping or are not UTF-8. */
static const char *body_of(const char *r) {
  const char *b = strstr(r, "\r\n\r\n");
  return b ? b + 4 : r;
}

static void test_match_renderers_agree(void) {
  const char *db = tmp("render.db");
  unlink(db);
  fm_http_opts o;
  fm_http_opts_default(&o);
  o.no_auth = 1;
  /* A server never creates its database: a missing one is refused, by
   * name, and nothing is left behind. */
  fm_error err;
  fm_error_init(&err);
  fm_http_server *none = NULL;
  o.listen = "127.0.0.1:0";
  o.access_log = NULL;
  CHECK(fm_http_server_start(&o, model, db, &none, &err) == FM_ERR_NOTFOUND && !none);
  CHECK(strstr(err.msg, db) != NULL);
  CHECK(access(db, F_OK) != 0);
  fm_store *st = NULL;
  CHECK(fm_store_open(db, create_opts(), &st, &err) == FM_OK);
  fm_store_close(st);
  fm_http_server *direct = start(&o, NULL), *tree = start(&o, db);
  o.match_cache = 0;
  fm_http_server *nocache = start(&o, NULL);
  if (!direct || !tree || !nocache) goto done;
  static const char *extra[] = {"PX_LASTX", "a%22b%5Cc%2Fd", "caf%C3%A9%20%E2%80%A8%F0%9F%98%80",
                                "%01%1F%09%0A", "%FF%FE", "%C0%80", "ZZZ"};
  static const char *args[] = {"k=10", "k=1", "k=100", "k=5&min_score=1.2",
                               "k=7&vendor=refinitiv", "vendor=nobody"};
  size_t nq = fm_model_nqueries(model), nx = sizeof extra / sizeof extra[0];
  static char a[1 << 16], b[1 << 16];
  int bad = 0;
  for (size_t i = 0; i < nq + nx && bad < 3; i++) {
    char field[600], path[800];
    if (i < nq) {
      fm_field q;
      fm_model_query(model, i, &q);
      size_t o2 = 0; /* percent-encode everything but [A-Za-z0-9_] */
      for (const unsigned char *c = (const unsigned char *)q.id; *c && o2 + 4 < sizeof field; c++)
        o2 += (size_t)snprintf(field + o2, sizeof field - o2,
                               (isalnum(*c) || *c == '_') ? "%c" : "%%%02X", *c);
      field[o2] = '\0';
    } else {
      snprintf(field, sizeof field, "%s", extra[i - nq]);
    }
    for (size_t j = 0; j < (i < nq && i % 8 ? 1 : sizeof args / sizeof args[0]); j++) {
      snprintf(path, sizeof path, "/v1/match?%s&field=%s", args[j], field);
      int sa = get(fm_http_server_port(tree), path, NULL);
      memcpy(a, resp, sizeof a);
      fm_http_server *other[] = {direct, direct, nocache}; /* direct twice: miss, then hit */
      for (int s = 0; s < 3; s++) {
        int sb = get(fm_http_server_port(other[s]), path, NULL);
        memcpy(b, resp, sizeof b);
        if (sa != sb || strcmp(body_of(a), body_of(b)) != 0) {
          if (bad++ < 3)
            fprintf(stderr, "  %s (server %d): %d %.200s\n  vs %d %.200s\n", path, s, sa,
                    body_of(a), sb, body_of(b));
        }
      }
    }
  }
  CHECK(bad == 0);
done:
  fm_http_server_stop(direct);
  fm_http_server_stop(tree);
  fm_http_server_stop(nocache);
}

/* Confidence (issues 16.5, 18.3): every /v1/match candidate carries a
 * calibrated confidence in [0, 1], non-increasing down the list; a query the
 * model does not know whose text matches nothing well is "known": false
 * with a low confidence, and the reconciliation API does not call any of
 * its candidates a match. */
static void test_confidence(void) {
  fm_http_opts o;
  fm_http_opts_default(&o);
  o.no_auth = 1;
  fm_http_server *srv = start(&o, NULL);
  if (!srv) return;
  uint16_t p = fm_http_server_port(srv);
  double top[2] = {-1, -1};
  const char *fields[2] = {"PX_LAST", "ZZZ_NOT_A_FIELD_QQ"};
  for (int f = 0; f < 2; f++) {
    char path[128];
    snprintf(path, sizeof path, "/v1/match?field=%s&k=5", fields[f]);
    CHECK(get(p, path, NULL) == 200);
    json_t *j = body_json(resp);
    CHECK(j != NULL);
    if (!j) continue;
    CHECK(json_is_true(json_object_get(j, "known")) == (f == 0));
    json_t *cands = json_object_get(j, "candidates");
    CHECK(json_array_size(cands) > 0);
    double prev = 1.0;
    size_t i;
    json_t *c;
    json_array_foreach(cands, i, c) {
      json_t *cf = json_object_get(c, "confidence");
      CHECK(json_is_number(cf));
      double v = json_number_value(cf);
      CHECK(v >= 0 && v <= 1 && v <= prev + 1e-9);
      prev = v;
      if (i == 0) top[f] = v;
    }
    json_decref(j);
  }
  /* the nonsense query: low, far below the auto-propose threshold and below
   * a real field's */
  CHECK(top[1] >= 0 && top[1] < 0.2);
  CHECK(top[1] < top[0]);
  CHECK(top[1] < FM_AUTO_CONFIDENCE);
  /* the batch POST form says the same */
  CHECK(post(p, "/v1/match", "application/json",
             "{\"fields\":[\"ZZZ_NOT_A_FIELD_QQ\"],\"k\":2}") == 200);
  CHECK(strstr(resp, "\"known\": false") || strstr(resp, "\"known\":false"));
  CHECK(strstr(resp, "\"confidence\""));
  /* reconciliation: match only at or above the threshold */
  CHECK(get(p, "/reconcile?queries=%7B%22q0%22%3A%7B%22query%22%3A%22ZZZ_NOT_A_FIELD_QQ%22%7D%7D",
            NULL) == 200);
  json_t *j = body_json(resp);
  json_t *res = json_object_get(json_object_get(j, "q0"), "result");
  CHECK(json_array_size(res) > 0);
  size_t i;
  json_t *c;
  json_array_foreach(res, i, c) {
    CHECK(json_is_false(json_object_get(c, "match")));
    json_t *feat = json_array_get(json_object_get(c, "features"), 0);
    CHECK_STR(json_string_value(json_object_get(feat, "id")), "confidence");
    CHECK(json_number_value(json_object_get(feat, "value")) < FM_AUTO_CONFIDENCE);
  }
  json_decref(j);
  fm_http_server_stop(srv);
}

int main(void) {
  fm_config *c = NULL;
  if (fm_http_fixture_begin("fm_http_", &c)) return 1;
  FM_RUN(test_openapi_contract);
  FM_RUN(test_bad_start);
  FM_RUN(test_routes_and_errors);
  FM_RUN(test_auth_and_rate);
  FM_RUN(test_conn_limit);
  FM_RUN(test_match_renderers_agree);
  FM_RUN(test_confidence);
  if (fm_http_fixture_end(c)) return 1;
  FM_TEST_EXIT();
}
