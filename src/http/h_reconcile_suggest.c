/* h_reconcile_suggest.c: the suggest services of the reconciliation API
 * (autocomplete in OpenRefine's dialogs).
 *   GET /reconcile/suggest/entity?prefix=X[&cursor=N]    reference fields
 *   GET /reconcile/suggest/property?prefix=X[&cursor=N]  extension properties
 *   GET /reconcile/suggest/type?prefix=X[&cursor=N]      the one type
 * A page is 10 results from cursor. */
#include "http_internal.h"

#include <string.h>
#include <strings.h>

enum { PAGE = 10, MAX_CURSOR = 1000 };

static int args(fm_http_req *r, const char **prefix, long *cursor, enum MHD_Result *ret) {
  *prefix = fm_http_arg(r, "prefix");
  if (!*prefix || strlen(*prefix) > 256) {
    *ret = fm_http_reply_error(r, FM_EC_BAD_PARAM, "prefix is required (0..256 bytes)");
    return -1;
  }
  return fm_http_arg_int(r, "cursor", 0, MAX_CURSOR, 0, cursor, ret);
}

static enum MHD_Result reply_result(fm_http_req *r, json_t *arr) {
  if (!arr) return fm_http_reply_error(r, FM_EC_INTERNAL, "out of memory");
  return fm_http_reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "result", arr));
}

enum MHD_Result fm_h_reconcile_suggest(fm_http_req *r) {
  enum MHD_Result ret;
  const char *prefix;
  long cursor;
  if (args(r, &prefix, &cursor, &ret)) return ret;
  if (!*prefix) return fm_http_reply_error(r, FM_EC_BAD_PARAM, "prefix is required (1..256 bytes)");
  const fm_model *m = fm_http_model(r->srv);
  fm_http_hit hits[MAX_CURSOR + PAGE];
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
  return reply_result(r, arr);
}

/* 1 when prefix starts a word of s (case-insensitive), or is empty. */
static int word_prefix(const char *s, const char *prefix) {
  size_t n = strlen(prefix);
  if (!n) return 1;
  for (const char *p = s; *p; p++)
    if ((p == s || p[-1] == ' ' || p[-1] == '_') && !strncasecmp(p, prefix, n)) return 1;
  return 0;
}

enum MHD_Result fm_h_reconcile_suggest_property(fm_http_req *r) {
  enum MHD_Result ret;
  const char *prefix;
  long cursor;
  if (args(r, &prefix, &cursor, &ret)) return ret;
  json_t *arr = json_array();
  long seen = 0;
  for (size_t i = 0; arr && i < fm_recon_nprops && json_array_size(arr) < PAGE; i++) {
    const fm_recon_prop *p = &fm_recon_props[i];
    if (!word_prefix(p->id, prefix) && !word_prefix(p->name, prefix)) continue;
    if (seen++ < cursor) continue;
    if (json_array_append_new(arr, json_pack("{s:s,s:s,s:s}", "id", p->id, "name", p->name,
                                             "description", p->description))) {
      json_decref(arr);
      arr = NULL;
    }
  }
  return reply_result(r, arr);
}

enum MHD_Result fm_h_reconcile_suggest_type(fm_http_req *r) {
  enum MHD_Result ret;
  const char *prefix;
  long cursor;
  if (args(r, &prefix, &cursor, &ret)) return ret;
  json_t *arr = json_array();
  if (arr && cursor == 0 &&
      (word_prefix(FM_RECON_TYPE_ID, prefix) || word_prefix(FM_RECON_TYPE_NAME, prefix)) &&
      json_array_append_new(arr, json_pack("{s:s,s:s}", "id", FM_RECON_TYPE_ID, "name",
                                           FM_RECON_TYPE_NAME))) {
    json_decref(arr);
    arr = NULL;
  }
  return reply_result(r, arr);
}
