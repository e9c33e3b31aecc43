#define _GNU_SOURCE /* strcasestr */
/* h_fields.c: reading and searching fields of either vendor.
 *   GET /v1/fields/{vendor}/{id}
 *   GET /v1/fields?q=last price&vendor=&prefix=1&limit=20
 * Backed by the model's fields (the served universe, mmapped and shared):
 * no database round trip and the same answers the lookup ranks over.  A
 * linear scan: ~100k fields take a few milliseconds, fine for pickers. */
#include "http_internal.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#define MAX_Q 256
#define MAX_WORDS 8

json_t *fm_http_field_json(const fm_field *f, const char *role) {
  return json_pack("{s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:s}", "vendor", f->vendor, "id", f->id,
                   "name", f->name, "description", f->description, "type", f->type,
                   "category", f->category, "role", role);
}

typedef struct search {
  const char *q;
  size_t qlen;
  char words[MAX_WORDS][MAX_Q + 1];
  int nwords;
  const char *vendor;
  int prefix;
} search;

/* 0 no match, 3 exact id, 2 id prefix, 1 other match. */
static int rank_field(const search *s, const fm_field *f) {
  if (s->vendor && strcmp(f->vendor, s->vendor) != 0) return 0;
  if (!strcasecmp(f->id, s->q)) return 3;
  int pre = !strncasecmp(f->id, s->q, s->qlen);
  if (s->prefix) return pre ? 2 : 0;
  if (pre) return 2;
  for (int i = 0; i < s->nwords; i++)
    if (!strcasestr(f->id, s->words[i]) && !strcasestr(f->name, s->words[i]) &&
        !strcasestr(f->description, s->words[i]))
      return 0;
  return s->nwords > 0;
}

size_t fm_http_search(const fm_model *m, const char *q, const char *vendor, int prefix,
                      int refs_only, size_t limit, fm_http_hit *hits) {
  search s;
  memset(&s, 0, sizeof s);
  s.q = q;
  s.qlen = strlen(q);
  s.vendor = vendor;
  s.prefix = prefix;
  for (const char *p = q; *p && s.nwords < MAX_WORDS;) {
    while (*p && isspace((unsigned char)*p)) p++;
    size_t n = 0;
    while (p[n] && !isspace((unsigned char)p[n])) n++;
    if (n && n <= MAX_Q) {
      memcpy(s.words[s.nwords], p, n);
      s.words[s.nwords++][n] = '\0';
    }
    p += n;
  }
  /* Three passes by rank keep the order stable without sorting or memory. */
  size_t got = 0;
  for (int want = 3; want >= 1 && got < limit; want--)
    for (int role = 0; role <= (refs_only ? 0 : 1) && got < limit; role++) {
      size_t n = role ? fm_model_nqueries(m) : fm_model_nrefs(m);
      for (size_t i = 0; i < n && got < limit; i++) {
        fm_field f;
        if (role)
          fm_model_query(m, i, &f);
        else
          fm_model_ref(m, i, &f);
        if (rank_field(&s, &f) == want) {
          hits[got].query = role;
          hits[got++].index = i;
        }
      }
    }
  return got;
}

enum MHD_Result fm_h_fields_get(fm_http_req *r) {
  const fm_model *m = fm_http_model(r->srv);
  const char *vendor = r->params[0], *id = r->params[1];
  fm_field f;
  long i = fm_model_find_ref(m, id);
  if (i >= 0) {
    fm_model_ref(m, (size_t)i, &f);
    if (!strcmp(f.vendor, vendor))
      return fm_http_reply_json(r, MHD_HTTP_OK, fm_http_field_json(&f, "reference"));
  }
  i = fm_model_find_query(m, id);
  if (i >= 0) {
    fm_model_query(m, (size_t)i, &f);
    if (!strcmp(f.vendor, vendor))
      return fm_http_reply_json(r, MHD_HTTP_OK, fm_http_field_json(&f, "query"));
  }
  return fm_http_reply_error(r, FM_EC_FIELD_NOT_FOUND, "no field %s/%s", vendor, id);
}

enum MHD_Result fm_h_fields_search(fm_http_req *r) {
  enum MHD_Result ret;
  const char *q = fm_http_arg(r, "q"), *vendor = fm_http_arg(r, "vendor");
  if (!q || !*q || strlen(q) > MAX_Q)
    return fm_http_reply_error(r, FM_EC_BAD_PARAM, "q is required (1..%d bytes)", MAX_Q);
  long limit, prefix;
  if (fm_http_arg_int(r, "limit", 1, 200, 20, &limit, &ret)) return ret;
  if (fm_http_arg_int(r, "prefix", 0, 1, 0, &prefix, &ret)) return ret;
  if (vendor && !*vendor) vendor = NULL;
  const fm_model *m = fm_http_model(r->srv);
  fm_http_hit hits[200];
  size_t n = fm_http_search(m, q, vendor, (int)prefix, 0, (size_t)limit, hits);
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < n; i++) {
    fm_field f;
    if (hits[i].query)
      fm_model_query(m, hits[i].index, &f);
    else
      fm_model_ref(m, hits[i].index, &f);
    if (json_array_append_new(arr, fm_http_field_json(&f, hits[i].query ? "query" : "reference"))) {
      json_decref(arr);
      arr = NULL;
    }
  }
  if (!arr) return fm_http_reply_error(r, FM_EC_INTERNAL, "out of memory");
  return fm_http_reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "fields", arr));
}
