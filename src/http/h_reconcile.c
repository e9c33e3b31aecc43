/* h_reconcile.c: the W3C Entity Reconciliation API 0.2 (what OpenRefine
 * speaks), so a spreadsheet column of Bloomberg mnemonics can be reconciled
 * against the Refinitiv fields of the model.
 *   GET  /reconcile                     service manifest
 *   GET  /reconcile?queries={...}       batched queries (also as a form POST)
 *   POST /reconcile   queries={...}     application/x-www-form-urlencoded
 *   GET  /reconcile/preview?id=X        small HTML card of a field
 *   GET  /reconcile/suggest/entity?prefix=X[&cursor=N]
 * A query's "query" string is matched like GET /v1/match's field.  No
 * candidate is marked "match": true: a model score is not a certainty, so
 * OpenRefine leaves the choice to the analyst. */
#include "http_internal.h"

#include <math.h>
#include <string.h>

#define TYPE_ID "field"
#define TYPE_NAME "Market data field"
#define MAX_QUERIES 100
#define DEFAULT_LIMIT 5

/* "http://host" from the Host header, for absolute URLs in the manifest. */
static void base_url(fm_http_req *r, char *out, size_t n) {
  const char *host = MHD_lookup_connection_value(r->con, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
  if (!host || !*host || strpbrk(host, "\"<> /\\")) host = "localhost";
  snprintf(out, n, "http://%s", host);
}

static enum MHD_Result manifest(fm_http_req *r) {
  char base[300], view[400], preview[400];
  base_url(r, base, sizeof base);
  const fm_model *m = fm_http_model(r->srv);
  fm_field f0 = {0};
  if (fm_model_nrefs(m)) fm_model_ref(m, 0, &f0);
  const char *vendor = f0.vendor && *f0.vendor ? f0.vendor : "refinitiv";
  snprintf(view, sizeof view, "%s/v1/fields/%s/{{id}}", base, vendor);
  snprintf(preview, sizeof preview, "%s/reconcile/preview?id={{id}}", base);
  json_t *j = json_pack(
      "{s:[s],s:s,s:s,s:s,s:s,s:[{s:s,s:s}],s:{s:s},s:{s:s,s:i,s:i},s:{s:{s:s,s:s}}}",
      "versions", "0.2", "name", "fieldmatch: Bloomberg fields to Refinitiv", "identifierSpace",
      "https://fieldmatch.invalid/ns/field", "schemaSpace", "https://fieldmatch.invalid/ns/schema",
      "serviceVersion", FM_VERSION, "defaultTypes", "id", TYPE_ID, "name", TYPE_NAME, "view",
      "url", view, "preview", "url", preview, "width", 420, "height", 160, "suggest", "entity",
      "service_url", base, "service_path", "/reconcile/suggest/entity");
  return fm_http_reply_json(r, MHD_HTTP_OK, j);
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
    int n = 0;
    if (fm_http_rank(w, json_string_value(qs), k, -INFINITY, NULL, &n, &err)) {
      ret = fm_http_reply_rc(r, &err);
      goto done;
    }
    json_t *res = json_array();
    for (int i = 0; res && i < n; i++) {
      fm_field f;
      fm_model_ref(m, w->cand[i].ref, &f);
      json_t *c = json_pack("{s:s,s:s,s:s,s:f,s:b,s:[{s:s,s:s}]}", "id", f.id, "name",
                            f.name && *f.name ? f.name : f.id, "description",
                            f.description ? f.description : "", "score",
                            round(w->cand[i].score * 1e4) / 1e4, "match", 0, "type", "id",
                            TYPE_ID, "name", TYPE_NAME);
      if (json_array_append_new(res, c)) {
        json_decref(res);
        res = NULL;
      }
    }
    if (!out || !res || json_object_set_new(out, key, json_pack("{s:o}", "result", res))) {
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
  const char *queries = fm_http_arg(r, "queries");
  if (!queries) return manifest(r);
  /* The manifest is public; queries need a reader like every other read. */
  enum MHD_Result ret;
  if (fm_http_authenticate(r, FM_TOKEN_READER, &ret)) return ret;
  return answer(r, queries);
}

enum MHD_Result fm_h_reconcile_post(fm_http_req *r) {
  char *queries = fm_http_form_value(r->body.buf ? r->body.buf : "", r->body.len, "queries");
  if (!queries)
    return fm_http_reply_error(r, FM_EC_BAD_PARAM,
                               "want a form body queries=<JSON> (x-www-form-urlencoded)");
  enum MHD_Result ret = answer(r, queries);
  fm_free(queries);
  return ret;
}

/* HTML-escape s into b. */
static fm_rc html(fm_buf *b, const char *s) {
  fm_rc rc = FM_OK;
  for (; s && *s && !rc; s++) switch (*s) {
      case '<': rc = fm_buf_puts(b, "&lt;"); break;
      case '>': rc = fm_buf_puts(b, "&gt;"); break;
      case '&': rc = fm_buf_puts(b, "&amp;"); break;
      case '"': rc = fm_buf_puts(b, "&quot;"); break;
      case '\'': rc = fm_buf_puts(b, "&#39;"); break;
      default: rc = fm_buf_putc(b, *s);
    }
  return rc;
}

enum MHD_Result fm_h_reconcile_preview(fm_http_req *r) {
  const char *id = fm_http_arg(r, "id");
  if (!id || !*id) return fm_http_reply_error(r, FM_EC_BAD_PARAM, "id is required");
  const fm_model *m = fm_http_model(r->srv);
  long i = fm_model_find_ref(m, id);
  if (i < 0) return fm_http_reply_error(r, FM_EC_FIELD_NOT_FOUND, "no reference field %s", id);
  fm_field f;
  fm_model_ref(m, (size_t)i, &f);
  fm_buf b;
  fm_buf_init(&b);
  fm_rc rc = fm_buf_puts(&b, "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>");
  if (!rc) rc = html(&b, f.id);
  if (!rc) rc = fm_buf_puts(&b, "</title></head><body style=\"font-family:sans-serif\"><b>");
  if (!rc) rc = html(&b, f.id);
  if (!rc) rc = fm_buf_puts(&b, "</b> ");
  if (!rc) rc = html(&b, f.name);
  if (!rc) rc = fm_buf_puts(&b, " <i>");
  if (!rc) rc = html(&b, f.type);
  if (!rc) rc = fm_buf_puts(&b, "</i><p>");
  if (!rc) rc = html(&b, f.description);
  if (!rc) rc = fm_buf_puts(&b, "</p></body></html>\n");
  enum MHD_Result ret =
      rc ? fm_http_reply_error(r, FM_EC_INTERNAL, "out of memory")
         : fm_http_reply_bytes(r, MHD_HTTP_OK, "text/html; charset=utf-8", b.buf, b.len);
  fm_buf_free(&b);
  return ret;
}

enum MHD_Result fm_h_reconcile_suggest(fm_http_req *r) {
  enum MHD_Result ret;
  const char *prefix = fm_http_arg(r, "prefix");
  if (!prefix || !*prefix || strlen(prefix) > 256)
    return fm_http_reply_error(r, FM_EC_BAD_PARAM, "prefix is required (1..256 bytes)");
  long cursor;
  if (fm_http_arg_int(r, "cursor", 0, 1000, 0, &cursor, &ret)) return ret;
  const fm_model *m = fm_http_model(r->srv);
  enum { PAGE = 10 };
  fm_http_hit hits[1000 + PAGE];
  size_t n = fm_http_search(m, prefix, NULL, 0, 1, (size_t)cursor + PAGE, hits);
  json_t *arr = json_array();
  for (size_t i = (size_t)cursor; arr && i < n; i++) {
    fm_field f;
    fm_model_ref(m, hits[i].index, &f);
    json_t *e = json_pack("{s:s,s:s,s:s}", "id", f.id, "name", f.name && *f.name ? f.name : f.id,
                          "description", f.description ? f.description : "");
    if (json_array_append_new(arr, e)) {
      json_decref(arr);
      arr = NULL;
    }
  }
  if (!arr) return fm_http_reply_error(r, FM_EC_INTERNAL, "out of memory");
  return fm_http_reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "result", arr));
}
