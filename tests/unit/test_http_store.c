/* test_http_store.c: the HTTP service's review, mapping and batch-run
 * endpoints on a real database, in process (the server and client of
 * fm_test_http.h): a batch run started over HTTP (roles, 202, one at a
 * time, progress, counts that reconcile), the queue and a field's view,
 * decisions (roles, bad bodies, unknown fields, the owner recorded as
 * analyst, two concurrent decisions with the same expect: one 200, one
 * 409), history, curated-first lookup, the mapping list with filters and
 * paging, the streamed export's headers, and --no-auth recording "local".
 * The steps run in that order on one database, each after the one before
 * (test_store_endpoints). */
#include "fm_http.h"
#include "fm_store.h"
#include "fm_test.h"
#include "fm_test_util.h"
#include "fm_test_store.h"
#include "fm_test_http.h"

#include <jansson.h>
#include <pthread.h>
#include <unistd.h>

/* What the steps share: the server's port, the tokens' secrets, the
 * candidates the field PX_LAST is reviewed against, and who won the race. */
typedef struct store_ctx {
  uint16_t p;
  char reader[FM_TOKEN_SECRET_LEN + 1], analyst[FM_TOKEN_SECRET_LEN + 1],
      admin[FM_TOKEN_SECRET_LEN + 1], analyst2[FM_TOKEN_SECRET_LEN + 1];
  char ref1[128], ref2[128];
  const char *winner_ref, *winner; /* ref1 or ref2; "ana" or "bob" */
} store_ctx;

/* The decisions endpoint of the field every step reviews. */
static const char *const dec = "/v1/review/bloomberg/PX_LAST/decisions";

/* Two analysts decide on the same field at once, both having seen it with
 * no accepted mapping ("expect": null). */
typedef struct racer {
  uint16_t port;
  const char *secret, *path, *body;
  int status;
  char out[8192];
} racer;

static void *race(void *arg) {
  racer *r = arg;
  r->status = post_to(r->port, r->path, r->secret, r->body, r->out, sizeof r->out);
  return NULL;
}

/* Whether the batch run at path is still running: its status in *info
 * (replaced; the caller owns it). */
static int run_running(uint16_t p, const char *path, const char *token, json_t **info) {
  if (get(p, path, token) != 200) return 1;
  json_decref(*info);
  *info = body_json(resp);
  const char *stt = json_string_value(json_object_get(*info, "status"));
  return !stt || !strcmp(stt, "running");
}

/* Whether no batch run is active (the list's "active" flag). */
static int batch_idle(uint16_t p, const char *token) {
  return get(p, "/v1/batch-runs", token) == 200 && !strstr(resp, "\"active\":true");
}

/* Batch runs: roles, bad bodies, 202, then one at a time; the finished
 * run's counts reconcile; unknown runs are 404.  Returns with no run
 * active. */
static void check_batch_runs(const store_ctx *s) {
  uint16_t p = s->p;
  const char *reader = s->reader, *analyst = s->analyst, *admin = s->admin;
  CHECK(post_auth(p, "/v1/batch-runs", NULL, "{}") == 401);
  CHECK(post_auth(p, "/v1/batch-runs", analyst, "{}") == 403);
  CHECK(strstr(resp, "\"code\":1101") != NULL);
  CHECK(post_auth(p, "/v1/batch-runs", admin, "{\"k\":0}") == 400);
  CHECK(post_auth(p, "/v1/batch-runs", admin, "{\"nope\":1}") == 400);
  CHECK(post_auth(p, "/v1/batch-runs", admin, "{\"resume\":999}") == 404);
  int st202 = post_auth(p, "/v1/batch-runs", admin, "{\"batch_size\":7}");
  if (st202 != 202) fprintf(stderr, "%s\n", resp);
  CHECK(st202 == 202);
  json_t *j = body_json(resp);
  json_int_t run = json_integer_value(json_object_get(j, "run"));
  json_decref(j);
  CHECK(run > 0);
  int second = post_auth(p, "/v1/batch-runs", admin, "{}");
  CHECK(second == 409 || second == 202); /* 202 only if the first had finished */
  if (second == 409) CHECK(strstr(resp, "\"code\":1801") != NULL);
  char path[512];
  snprintf(path, sizeof path, "/v1/batch-runs/%lld", (long long)run);
  json_t *info = NULL;
  WAIT_FOR("the batch run to finish", !run_running(p, path, reader, &info));
  CHECK(info && !strcmp(json_string_value(json_object_get(info, "status")), "succeeded"));
  json_t *tot = json_object_get(info, "total");
  json_int_t n_in = json_integer_value(json_object_get(tot, "n_in"));
  CHECK(n_in > 0 && n_in == json_integer_value(json_object_get(info, "n_fields")));
  CHECK(n_in == json_integer_value(json_object_get(tot, "n_proposed")) +
                    json_integer_value(json_object_get(tot, "n_queued")) +
                    json_integer_value(json_object_get(tot, "n_curated")) +
                    json_integer_value(json_object_get(tot, "n_failed")));
  CHECK(json_integer_value(json_object_get(info, "parts_committed")) ==
        json_integer_value(json_object_get(info, "n_parts")));
  CHECK(json_array_size(json_object_get(info, "parts")) ==
        (size_t)json_integer_value(json_object_get(info, "n_parts")));
  CHECK(!strcmp(json_string_value(json_object_get(info, "started_by")), "ada"));
  json_decref(info);
  if (second == 409) {
    /* the run's status is final before its worker lets go of the slot */
    WAIT_FOR("the first run's worker to finish", batch_idle(p, reader));
    CHECK(post_auth(p, "/v1/batch-runs", admin, "{}") == 202);
  }
  /* let the latest run finish before deciding */
  WAIT_FOR("no batch run active", batch_idle(p, reader));
  CHECK(strstr(resp, "\"runs\":[") != NULL);
  CHECK(get(p, "/v1/batch-runs/999", reader) == 404);
  CHECK(strstr(resp, "\"code\":1202") != NULL);
  CHECK(get(p, "/v1/batch-runs/x", reader) == 404);
}

/* The queue and one field: roles, unknown and reference fields, and
 * PX_LAST's view with no accepted mapping; its first two candidates go to
 * s->ref1 and s->ref2. */
static void check_queue_and_field(store_ctx *s) {
  uint16_t p = s->p;
  const char *reader = s->reader;
  CHECK(get(p, "/v1/review/queue?limit=5", reader) == 200);
  CHECK(strstr(resp, "\"total\":") && strstr(resp, "\"items\":["));
  CHECK(get(p, "/v1/review/queue?limit=0", reader) == 400);
  CHECK(get(p, "/v1/review/bloomberg/PX_LAST", NULL) == 401);
  CHECK(get(p, "/v1/review/bloomberg/NO_SUCH", reader) == 404);
  CHECK(get(p, "/v1/review/refinitiv/TRDPRC_1", reader) == 404); /* a reference field */
  CHECK(get(p, "/v1/review/bloomberg/PX_LAST", reader) == 200);
  json_t *j = body_json(resp);
  json_t *cands = json_object_get(j, "candidates");
  CHECK(json_array_size(cands) >= 2);
  snprintf(s->ref1, sizeof s->ref1, "%s",
           json_string_value(json_object_get(json_object_get(json_array_get(cands, 0), "ref"), "id")));
  snprintf(s->ref2, sizeof s->ref2, "%s",
           json_string_value(json_object_get(json_object_get(json_array_get(cands, 1), "ref"), "id")));
  CHECK(json_is_null(json_object_get(j, "accepted")));
  json_decref(j);
}

/* Decisions refused: roles, bad bodies, unknown things. */
static void check_decision_errors(const store_ctx *s) {
  uint16_t p = s->p;
  const char *analyst = s->analyst;
  char body[512];
  snprintf(body, sizeof body, "{\"action\":\"accept\",\"ref\":\"%s\",\"expect\":null}", s->ref1);
  CHECK(post_auth(p, dec, s->reader, body) == 403);
  CHECK(post_auth(p, dec, NULL, body) == 401);
  CHECK(post_auth(p, "/v1/review/bloomberg/NO_SUCH/decisions", analyst, body) == 404);
  CHECK(post_auth(p, dec, analyst, "{\"action\":\"accept\"") == 400);
  CHECK(strstr(resp, "\"code\":1000") != NULL);
  CHECK(post_auth(p, dec, analyst, "{\"action\":\"approve\",\"ref\":\"X\"}") == 400);
  CHECK(post_auth(p, dec, analyst, "{\"action\":\"accept\",\"ref\":\"NOPE\"}") == 400);
  CHECK(post_auth(p, dec, analyst, "{\"action\":\"comment\",\"ref\":\"TRDPRC_1\"}") == 400);
  CHECK(post_auth(p, dec, analyst, "{\"action\":\"accept\",\"ref\":\"TRDPRC_1\",\"by\":\"x\"}") == 400);
  CHECK(post_auth(p, dec, analyst, "{\"action\":\"accept\",\"ref\":\"TRDPRC_1\",\"expect\":5}") == 400);
}

/* The race: ana accepts ref1 and bob ref2 at once, both having seen no
 * accepted mapping; exactly one wins (recorded as the deciding analyst,
 * into s->winner and s->winner_ref), the other gets 409 and decides again
 * with the new expect. */
static void check_decision_race(store_ctx *s) {
  uint16_t p = s->p;
  racer ra[2];
  char b0[512], b1[512];
  snprintf(b0, sizeof b0, "{\"action\":\"accept\",\"ref\":\"%s\",\"expect\":null}", s->ref1);
  snprintf(b1, sizeof b1, "{\"action\":\"accept\",\"ref\":\"%s\",\"expect\":null}", s->ref2);
  ra[0] = (racer){.port = p, .secret = s->analyst, .path = dec, .body = b0};
  ra[1] = (racer){.port = p, .secret = s->analyst2, .path = dec, .body = b1};
  pthread_t th[2];
  for (int i = 0; i < 2; i++) CHECK(pthread_create(&th[i], NULL, race, &ra[i]) == 0);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  CHECK((ra[0].status == 200 && ra[1].status == 409) ||
        (ra[0].status == 409 && ra[1].status == 200));
  racer *won = ra[0].status == 200 ? &ra[0] : &ra[1], *lost = won == &ra[0] ? &ra[1] : &ra[0];
  s->winner_ref = won == &ra[0] ? s->ref1 : s->ref2;
  s->winner = won == &ra[0] ? "ana" : "bob";
  CHECK(strstr(lost->out, "\"code\":1800") && strstr(lost->out, "GET the field again") &&
        strstr(lost->out, "expected none"));
  json_t *j = body_json(won->out);
  CHECK(!strcmp(json_string_value(json_object_get(json_object_get(j, "decision"), "by")), s->winner));
  CHECK(!strcmp(json_string_value(json_object_get(json_object_get(json_object_get(j, "accepted"), "ref"), "id")),
                s->winner_ref));
  json_decref(j);
  /* The loser re-reads and decides again with the new expect. */
  char body[512];
  snprintf(body, sizeof body,
           "{\"action\":\"comment\",\"ref\":\"%s\",\"comment\":\"checked\",\"expect\":\"%s\"}",
           s->winner_ref, s->winner_ref);
  CHECK(post_auth(p, dec, s->analyst, body) == 200);
}

/* History: the decisions with their analysts (the winner's accept, ana's
 * comment). */
static void check_history(const store_ctx *s) {
  CHECK(get(s->p, "/v1/review/bloomberg/PX_LAST/history", s->reader) == 200);
  json_t *j = body_json(resp);
  json_t *h = json_object_get(j, "history");
  CHECK(json_array_size(h) >= 2);
  int saw_accept = 0, saw_comment = 0;
  size_t i;
  json_t *row;
  json_array_foreach(h, i, row) {
    const char *act = json_string_value(json_object_get(row, "action"));
    const char *by = json_string_value(json_object_get(row, "actor"));
    saw_accept |= act && by && !strcmp(act, "accept") && !strcmp(by, s->winner);
    saw_comment |= act && by && !strcmp(act, "comment") && !strcmp(by, "ana");
  }
  CHECK(saw_accept && saw_comment);
  json_decref(j);
}

/* Lookup: the accepted mapping first, curated, the rest not. */
static void check_curated_lookup(const store_ctx *s) {
  CHECK(get(s->p, "/v1/match?field=PX_LAST&k=3", s->reader) == 200);
  json_t *j = body_json(resp);
  json_t *c0 = json_array_get(json_object_get(j, "candidates"), 0);
  CHECK(json_is_true(json_object_get(c0, "curated")) &&
        !strcmp(json_string_value(json_object_get(c0, "id")), s->winner_ref) &&
        json_integer_value(json_object_get(c0, "rank")) == 1);
  CHECK(json_is_false(json_object_get(json_array_get(json_object_get(j, "candidates"), 1), "curated")));
  json_decref(j);
}

/* Mappings: list, filters, paging, bad parameters, and the streamed
 * export's headers (CSV, JSON lines, an unknown format). */
static void check_mappings(const store_ctx *s) {
  uint16_t p = s->p;
  const char *reader = s->reader, *winner_ref = s->winner_ref;
  CHECK(get(p, "/v1/mappings?status=accepted", reader) == 200);
  json_t *j = body_json(resp);
  CHECK(json_integer_value(json_object_get(j, "total")) == 1);
  CHECK(!strcmp(json_string_value(json_object_get(json_array_get(json_object_get(j, "mappings"), 0),
                                                  "ref_id")), winner_ref));
  json_decref(j);
  CHECK(get(p, "/v1/mappings?status=accepted&vendor=nobody", reader) == 200);
  CHECK(strstr(resp, "\"total\":0") != NULL);
  CHECK(get(p, "/v1/mappings?status=accepted&changed_since=2999-01-01", reader) == 200);
  CHECK(strstr(resp, "\"total\":0") != NULL);
  CHECK(get(p, "/v1/mappings?limit=2&offset=1", reader) == 200);
  j = body_json(resp);
  json_int_t total = json_integer_value(json_object_get(j, "total"));
  CHECK(total > 2 && json_array_size(json_object_get(j, "mappings")) == 2);
  json_decref(j);
  CHECK(get(p, "/v1/mappings?status=maybe", reader) == 400);
  CHECK(get(p, "/v1/mappings?changed_since=yesterday", reader) == 400);
  CHECK(get(p, "/v1/mappings/export?format=csv&status=accepted", reader) == 200);
  CHECK(strstr(resp, "Content-Type: text/csv; charset=utf-8") &&
        strstr(resp, "Content-Disposition: attachment; filename=\"mappings-accepted.csv\"") &&
        strstr(resp, "mapping_key,query_vendor,query_id") && strstr(resp, winner_ref));
  CHECK(get(p, "/v1/mappings/export?format=jsonl", reader) == 200);
  CHECK(strstr(resp, "application/x-ndjson") && strstr(resp, "\"mapping_key\":"));
  CHECK(get(p, "/v1/mappings/export?format=xml", reader) == 400);
}

/* --no-auth: a server over db records the analyst as "local". */
static void check_no_auth_local(const char *db, const char *winner_ref) {
  fm_http_opts o;
  fm_http_opts_default(&o);
  o.no_auth = 1;
  fm_http_server *srv = start(&o, db);
  if (!srv) return;
  uint16_t p = fm_http_server_port(srv);
  char body[512];
  snprintf(body, sizeof body, "{\"action\":\"comment\",\"ref\":\"%s\",\"comment\":\"ok\"}",
           winner_ref);
  CHECK(post_auth(p, dec, NULL, body) == 200);
  CHECK(strstr(resp, "\"by\":\"local\"") != NULL);
  fm_http_server_stop(srv);
}

/* The steps in order on one new database with a reader (rita), two
 * analysts (ana, bob) and an admin (ada). */
static void test_store_endpoints(void) {
  const char *db = tmp("store.db");
  unlink(db);
  fm_error err;
  fm_error_init(&err);
  fm_store *st;
  store_ctx s = {0};
  CHECK(fm_store_open(db, create_opts(), &st, &err) == FM_OK);
  if (err.rc) return;
  CHECK(fm_store_token_create(st, "rita", FM_TOKEN_READER, "test", NULL, s.reader, &err) == 0);
  CHECK(fm_store_token_create(st, "ana", FM_TOKEN_ANALYST, "test", NULL, s.analyst, &err) == 0);
  CHECK(fm_store_token_create(st, "bob", FM_TOKEN_ANALYST, "test", NULL, s.analyst2, &err) == 0);
  CHECK(fm_store_token_create(st, "ada", FM_TOKEN_ADMIN, "test", NULL, s.admin, &err) == 0);
  fm_store_close(st);
  fm_http_opts o;
  fm_http_opts_default(&o);
  fm_http_server *srv = start(&o, db);
  if (!srv) return;
  s.p = fm_http_server_port(srv);
  check_batch_runs(&s);
  check_queue_and_field(&s);
  check_decision_errors(&s);
  check_decision_race(&s);
  check_history(&s);
  check_curated_lookup(&s);
  check_mappings(&s);
  fm_http_server_stop(srv);
  check_no_auth_local(db, s.winner_ref);
}

int main(void) {
  fm_config *c = NULL;
  if (fm_http_fixture_begin("fm_http_store_", &c)) return 1;
  FM_RUN(test_store_endpoints);
  if (fm_http_fixture_end(c)) return 1;
  FM_TEST_EXIT();
}
