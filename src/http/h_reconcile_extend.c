/* h_reconcile_extend.c: data extension of the reconciliation API, so an
 * OpenRefine user pulls Refinitiv attributes of reconciled cells into new
 * columns.
 *   GET /reconcile/extend/propose[?type=field&limit=N]  the properties
 *   /reconcile with extend={"ids":[...],"properties":[{"id":...}]}
 * The properties (fm_recon_props) are the reference field's own attributes
 * from the model (its FID as an integer: fm_field.code), and, from the
 * store, the Bloomberg fields curated onto it and that mapping's status.  An id that is not a reference field gets
 * empty values (OpenRefine leaves the cells blank). */
#include "http_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IDS 1000
#define MAX_MAPPED 20

const fm_recon_prop fm_recon_props[] = {
    {"fid", "FID", "the field's number in the RDM field dictionary (real-time fields only)"},
    {"name", "Name", "the field's long name (RDM DDE acronym, glossary name)"},
    {"type", "Vendor type", "the vendor's type of the field (PRICE, Real, ...)"},
    {"description", "Description", "the vendor's definition of the field"},
    {"dictionary", "Dictionary", "the vendor and the dictionary file the field comes from"},
    {"category", "Category", "the vendor's category of the field, when it has one"},
    {"curated_mapping", "Curated mapping",
     "the Bloomberg fields mapped onto this field in the store (accepted first)"},
    {"mapping_status", "Mapping status",
     "accepted, proposed, or none: the best status of a mapping onto this field"},
};
const size_t fm_recon_nprops = sizeof fm_recon_props / sizeof fm_recon_props[0];

static const fm_recon_prop *find_prop(const char *id) {
  for (size_t i = 0; id && i < fm_recon_nprops; i++)
    if (!strcmp(fm_recon_props[i].id, id)) return &fm_recon_props[i];
  return NULL;
}

enum MHD_Result fm_h_reconcile_propose(fm_http_req *r) {
  enum MHD_Result ret;
  const char *type = fm_http_arg(r, "type");
  long limit;
  if (fm_http_arg_int(r, "limit", 1, 1000, (long)fm_recon_nprops, &limit, &ret)) return ret;
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < fm_recon_nprops && (long)i < limit; i++)
    if (json_array_append_new(arr, json_pack("{s:s,s:s,s:s}", "id", fm_recon_props[i].id, "name",
                                             fm_recon_props[i].name, "description",
                                             fm_recon_props[i].description))) {
      json_decref(arr);
      arr = NULL;
    }
  if (!arr) return fm_http_reply_error(r, FM_EC_INTERNAL, "out of memory");
  return fm_http_reply_json(r, MHD_HTTP_OK,
                            json_pack("{s:s,s:I,s:o}", "type", type ? type : FM_RECON_TYPE_ID,
                                      "limit", (json_int_t)limit, "properties", arr));
}

/* [{"str": s}] or [] when s is empty. */
static json_t *str_values(const char *s) {
  json_t *a = json_array();
  if (a && s && *s && json_array_append_new(a, json_pack("{s:s}", "str", s))) {
    json_decref(a);
    return NULL;
  }
  return a;
}

/* The store's mappings onto reference field f (none without a database). */
static void mapped(fm_http_req *r, const fm_field *f, fm_arena *a, fm_ref_mapping *v,
                   size_t *n) {
  fm_error err;
  fm_error_init(&err);
  fm_http_worker *w = fm_http_worker_get(r->srv, &err);
  fm_store *st;
  int64_t rf;
  *n = 0;
  if (!w || fm_http_worker_store(w, &st, &err) ||
      fm_review_resolve(st, f->vendor, f->id, FM_ROLE_REFERENCE, &rf, &err) ||
      fm_review_mapped_to(st, rf, a, v, MAX_MAPPED, n, &err))
    *n = 0;
}

/* [{"int": n}] for a field's numeric code (the RDM FID), [] without one. */
static json_t *int_values(const char *code) {
  json_t *a = json_array();
  char *end;
  errno = 0;
  long long v = code && *code ? strtoll(code, &end, 10) : 0;
  if (a && code && *code && !*end && !errno &&
      json_array_append_new(a, json_pack("{s:I}", "int", (json_int_t)v))) {
    json_decref(a);
    return NULL;
  }
  return a;
}

static json_t *prop_values(fm_http_req *r, const fm_field *f, const char *prop) {
  if (!strcmp(prop, "fid")) return int_values(f->code);
  if (!strcmp(prop, "name")) return str_values(f->name);
  if (!strcmp(prop, "type")) return str_values(f->type);
  if (!strcmp(prop, "description")) return str_values(f->description);
  if (!strcmp(prop, "category")) return str_values(f->category);
  if (!strcmp(prop, "dictionary")) {
    const char *src = f->source ? strrchr(f->source, '/') : NULL;
    char buf[512];
    snprintf(buf, sizeof buf, "%s %s", f->vendor, src ? src + 1 : f->source ? f->source : "");
    return str_values(buf);
  }
  fm_arena a;
  fm_arena_init(&a);
  fm_ref_mapping v[MAX_MAPPED];
  size_t n;
  mapped(r, f, &a, v, &n);
  json_t *out;
  if (!strcmp(prop, "mapping_status")) {
    out = str_values(n ? v[0].status : "none");
  } else { /* curated_mapping */
    out = json_array();
    for (size_t i = 0; out && i < n; i++)
      if (json_array_append_new(out, json_pack("{s:s}", "str", v[i].query_id))) {
        json_decref(out);
        out = NULL;
      }
  }
  fm_arena_free(&a);
  return out;
}

static json_t *extend_rows(fm_http_req *r, json_t *ids, json_t *props) {
  const fm_model *m = fm_http_model(r->srv);
  json_t *rows = json_object();
  size_t i, j;
  json_t *id, *p;
  json_array_foreach(ids, i, id) {
    json_t *row = json_object();
    long ref = fm_model_find_ref(m, json_string_value(id));
    fm_field f;
    if (ref >= 0) fm_model_ref(m, (size_t)ref, &f);
    json_array_foreach(props, j, p) {
      const char *pid = json_string_value(json_object_get(p, "id"));
      json_t *vals = ref >= 0 ? prop_values(r, &f, pid) : json_array();
      if (!row || !vals || json_object_set_new(row, pid, vals)) {
        json_decref(row);
        row = NULL;
        break;
      }
    }
    if (!rows || !row || json_object_set_new(rows, json_string_value(id), row)) {
      json_decref(rows);
      return NULL;
    }
  }
  return rows;
}

enum MHD_Result fm_http_reconcile_extend(fm_http_req *r, const char *text) {
  json_error_t jerr;
  json_t *in = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
  json_t *ids = json_object_get(in, "ids"), *props = json_object_get(in, "properties");
  const char *bad = !in ? jerr.text
                    : !json_is_array(ids) || !json_is_array(props)
                        ? "want {\"ids\": [...], \"properties\": [{\"id\": ...}]}"
                    : json_array_size(ids) > MAX_IDS ? "at most 1000 ids per request"
                                                     : NULL;
  size_t i;
  json_t *v;
  json_array_foreach(ids, i, v) if (!bad && !json_is_string(v)) bad = "every id must be a string";
  json_t *meta = json_array();
  json_array_foreach(props, i, v) {
    const fm_recon_prop *p = find_prop(json_string_value(json_object_get(v, "id")));
    if (!bad && !p) bad = "unknown property (GET /reconcile/extend/propose lists them)";
    if (!bad && meta && json_array_append_new(meta, json_pack("{s:s,s:s}", "id", p->id, "name", p->name))) {
      json_decref(meta);
      meta = NULL;
    }
  }
  enum MHD_Result ret;
  if (bad) {
    ret = fm_http_reply_error(r, FM_EC_BAD_JSON, "extend: %s", bad);
  } else {
    json_t *rows = meta ? extend_rows(r, ids, props) : NULL;
    ret = rows ? fm_http_reply_json(r, MHD_HTTP_OK, json_pack("{s:O,s:o}", "meta", meta, "rows", rows))
               : fm_http_reply_error(r, FM_EC_INTERNAL, "out of memory");
  }
  json_decref(meta);
  json_decref(in);
  return ret;
}
