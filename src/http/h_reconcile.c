/* h_reconcile.c: the W3C Entity Reconciliation API 0.2 (what OpenRefine
 * speaks), so a spreadsheet column of Bloomberg mnemonics can be reconciled
 * against the Refinitiv fields of the model, and Refinitiv attributes pulled
 * into columns (data extension, h_reconcile_extend.c).
 *   GET  /reconcile                     service manifest
 *   GET  /reconcile?queries={...}       batched queries (also as a form POST)
 *   GET  /reconcile?extend={...}        data extension (also as a form POST)
 *   POST /reconcile   queries=... | extend=...   x-www-form-urlencoded
 *   preview, view:   h_reconcile_pages.c;   suggest: h_reconcile_suggest.c
 * Every route also exists under /t/{secret}/ (FM_HTTP_TOKEN_PREFIX): one
 * service URL carries the reader's token, so the browser-opened preview and
 * view URLs work without a header.  Absolute URLs come from
 * fm_http_base_url (--public-url or the listen address, never Host).
 *
 * A query's "query" string is matched like GET /v1/match's field.  The
 * field's accepted (curated) mapping, when it has one, comes first and is
 * the only candidate with "match": true: an analyst decided it.  Without
 * one, the model's best candidate has "match": true when its calibrated
 * confidence is at least FM_AUTO_CONFIDENCE (the batch auto-propose
 * threshold), so OpenRefine auto-matches exactly what a batch run would
 * propose; every candidate carries its confidence as the feature
 * "confidence" (docs/http.md, "OpenRefine"). */
#include "http_internal.h"

#include <math.h>
#include <string.h>

#define MAX_QUERIES 100
#define DEFAULT_LIMIT 5

static enum MHD_Result manifest(fm_http_req *r) {
  char base[600], view[700], preview[700];
  fm_http_base_url(r, base, sizeof base);
  snprintf(view, sizeof view, "%s/reconcile/view?id={{id}}", base);
  snprintf(preview, sizeof preview, "%s/reconcile/preview?id={{id}}", base);
  json_t *j = json_pack(
      "{s:[s],s:s,s:s,s:s,s:s,s:[{s:s,s:s}],s:{s:s},s:{s:s,s:i,s:i},"
      "s:{s:{s:s,s:s},s:{s:s,s:s},s:{s:s,s:s}},s:{s:{s:s,s:s},s:[]}}",
      "versions", "0.2", "name", "fieldmatch: Bloomberg fields to Refinitiv", "identifierSpace",
      FM_RECON_ID_SPACE, "schemaSpace", FM_RECON_SCHEMA_SPACE, "serviceVersion", FM_VERSION,
      "defaultTypes", "id", FM_RECON_TYPE_ID, "name", FM_RECON_TYPE_NAME, "view", "url", view,
      "preview", "url", preview, "width", 420, "height", 180, "suggest", "entity", "service_url",
      base, "service_path", "/reconcile/suggest/entity", "property", "service_url", base,
      "service_path", "/reconcile/suggest/property", "type", "service_url", base,
      "service_path", "/reconcile/suggest/type", "extend", "propose_properties", "service_url",
      base, "service_path", "/reconcile/extend/propose", "property_settings");
  return fm_http_reply_json(r, MHD_HTTP_OK, j);
}

/* The curated reference of query text q (its accepted mapping), or -1:
 * q must name one query field of the store.  No database: -1. */
static long curated_ref(fm_http_worker *w, const fm_model *m, const char *q) {
  fm_store *st;
  fm_error err;
  fm_error_init(&err);
  if (fm_http_worker_store(w, &st, &err)) return -1;
  int64_t qf;
  if (fm_review_resolve(st, NULL, q, FM_ROLE_QUERY, &qf, &err)) return -1;
  fm_arena a;
  fm_arena_init(&a);
  fm_mapping_row row;
  int found = 0;
  long ref = -1;
  if (!fm_review_accepted(st, qf, &a, &row, &found, &err) && found)
    ref = fm_model_find_ref(m, row.ref.id);
  fm_arena_free(&a);
  return ref;
}

/* One candidate; conf < 0: none known (a curated reference the model did
 * not rank), no "confidence" feature. */
static json_t *candidate(const fm_model *m, size_t ref, double score, double conf, int match) {
  fm_field f;
  fm_model_ref(m, ref, &f);
  json_t *c = json_pack("{s:s,s:s,s:s,s:f,s:b,s:[{s:s,s:s}]}", "id", f.id, "name",
                        f.name && *f.name ? f.name : f.id, "description",
                        f.description ? f.description : "", "score", round(score * 1e4) / 1e4,
                        "match", match, "type", "id", FM_RECON_TYPE_ID, "name",
                        FM_RECON_TYPE_NAME);
  if (c && conf >= 0 &&
      json_object_set_new(c, "features",
                          json_pack("[{s:s,s:f}]", "id", "confidence", "value",
                                    round(conf * 1e4) / 1e4))) {
    json_decref(c);
    return NULL;
  }
  return c;
}

/* The result list of one query: the curated reference first (match: true),
 * then the model's ranking without it; with no curated reference, the
 * model's best candidate is a match when confident (FM_AUTO_CONFIDENCE). */
static json_t *one_query(fm_http_worker *w, const fm_model *m, const char *q, int k,
                         fm_error *err) {
  int n = 0;
  if (fm_http_rank(w, q, k, -INFINITY, NULL, &n, err)) return NULL;
  long cur = curated_ref(w, m, q);
  json_t *res = json_array();
  if (res && cur >= 0) {
    double sc = 1.0, cf = -1;
    for (int i = 0; i < n; i++)
      if (w->cand[i].ref == (size_t)cur) {
        sc = w->cand[i].score;
        cf = w->cand[i].confidence;
      }
    if (json_array_append_new(res, candidate(m, (size_t)cur, sc, cf, 1))) goto oom;
  }
  for (int i = 0; res && i < n && (int)json_array_size(res) < k; i++) {
    if (cur >= 0 && w->cand[i].ref == (size_t)cur) continue;
    int match = cur < 0 && i == 0 && w->cand[i].confidence >= FM_AUTO_CONFIDENCE;
    if (json_array_append_new(res, candidate(m, w->cand[i].ref, w->cand[i].score,
                                             w->cand[i].confidence, match)))
      goto oom;
  }
  if (res) return res;
oom:
  json_decref(res);
  fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  return NULL;
}

/* Answer a batch {"q0": {"query": "...", "limit": 3}, ...}. */
static enum MHD_Result answer(fm_http_req *r, const char *text) {
  json_error_t jerr;
  json_t *in = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
  if (!in || !json_is_object(in)) {
    json_decref(in);
    return fm_http_reply_error(r, FM_EC_BAD_JSON, "queries: %s",
                               in ? "must be a JSON object" : jerr.text);
  }
  if (json_object_size(in) > MAX_QUERIES) {
    json_decref(in);
    return fm_http_reply_error(r, FM_EC_BATCH_TOO_LARGE, "at most %d queries per batch",
                               MAX_QUERIES);
  }
  fm_error err;
  fm_error_init(&err);
  fm_http_worker *w = fm_http_worker_get(r->srv, &err);
  if (!w) {
    json_decref(in);
    return fm_http_reply_rc(r, &err);
  }
  const fm_model *m = fm_http_model(r->srv);
  json_t *out = json_object();
  const char *key;
  json_t *q;
  enum MHD_Result ret;
  json_object_foreach(in, key, q) {
    json_t *qs = json_object_get(q, "query"), *lim = json_object_get(q, "limit");
    if (!json_is_object(q) || !json_is_string(qs) || !json_string_length(qs) ||
        json_string_length(qs) > 256 || (lim && !json_is_number(lim))) {
      ret = fm_http_reply_error(r, FM_EC_BAD_JSON,
                                "%s: want {\"query\": \"<1..256 bytes>\", \"limit\": <n>}", key);
      goto done;
    }
    double lv = lim ? json_number_value(lim) : DEFAULT_LIMIT;
    int k = lv < 1 ? 1 : lv > FM_HTTP_MAX_K ? FM_HTTP_MAX_K : (int)lv;
    json_t *res = one_query(w, m, json_string_value(qs), k, &err);
    if (!res) {
      ret = fm_http_reply_rc(r, &err);
      goto done;
    }
    if (!out || json_object_set_new(out, key, json_pack("{s:o}", "result", res))) {
      ret = fm_http_reply_error(r, FM_EC_INTERNAL, "out of memory");
      goto done;
    }
  }
  ret = fm_http_reply_json(r, MHD_HTTP_OK, out);
  out = NULL;
done:
  json_decref(out);
  json_decref(in);
  return ret;
}

enum MHD_Result fm_h_reconcile_get(fm_http_req *r) {
  const char *queries = fm_http_arg(r, "queries"), *extend = fm_http_arg(r, "extend");
  if (!queries && !extend) return manifest(r);
  /* The manifest is public; queries need a reader like every other read. */
  enum MHD_Result ret;
  if (fm_http_authenticate(r, FM_TOKEN_READER, &ret)) return ret;
  return queries ? answer(r, queries) : fm_http_reconcile_extend(r, extend);
}

enum MHD_Result fm_h_reconcile_post(fm_http_req *r) {
  const char *body = r->body.buf ? r->body.buf : "";
  char *queries = fm_http_form_value(body, r->body.len, "queries");
  char *extend = queries ? NULL : fm_http_form_value(body, r->body.len, "extend");
  if (!queries && !extend)
    return fm_http_reply_error(r, FM_EC_BAD_PARAM,
                               "want a form body queries=<JSON> or extend=<JSON> "
                               "(x-www-form-urlencoded)");
  enum MHD_Result ret = queries ? answer(r, queries) : fm_http_reconcile_extend(r, extend);
  fm_free(queries);
  fm_free(extend);
  return ret;
}
