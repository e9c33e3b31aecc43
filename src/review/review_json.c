/* review_json.c: the JSON views of review.c's results (split from
 * review.c), for `review ... --json` and the HTTP server.  Each function
 * returns a new jansson value the caller owns (json_decref), NULL on
 * allocation failure. */
#include "fm_review.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

/* ---- JSON views ------------------------------------------------------------- */

/* json_real for a number, null for NAN. */
static json_t *jnum(double v) { return isnan(v) ? json_null() : json_real(v); }

/* Set key to v (a new reference); on failure of either, mark *bad. */
static void jset(json_t *o, const char *key, json_t *v, int *bad) {
  /* json_object_set_new drops v when o is NULL or not an object. */
  if (!v || json_object_set_new(o, key, v)) *bad = 1;
}

/* v, or NULL (v released) when building it failed (bad): the shared end
 * of the builders below, which return a new reference or NULL. */
static json_t *built(json_t *v, int bad) {
  if (bad) {
    json_decref(v);
    return NULL;
  }
  return v;
}

static json_t *jstr(const char *s) {
  if (!s) return json_null();
  json_t *j = json_string(s);
  return j ? j : json_stringn_nocheck(s, strlen(s));
}

json_t *fm_review_field_json(const fm_field_row *f) {
  json_t *o = json_object();
  int bad = 0;
  jset(o, "vendor", jstr(f->vendor), &bad);
  jset(o, "id", jstr(f->id), &bad);
  jset(o, "role", jstr(f->role), &bad);
  jset(o, "name", jstr(f->name), &bad);
  jset(o, "description", jstr(f->description), &bad);
  jset(o, "type", jstr(f->type), &bad);
  jset(o, "category", jstr(f->category), &bad);
  jset(o, "status", jstr(f->status), &bad);
  return built(o, bad);
}

json_t *fm_review_mapping_json(const fm_mapping_row *m) {
  json_t *o = json_object();
  int bad = 0;
  jset(o, "mapping_id", json_integer(m->mapping_id), &bad);
  jset(o, "key", jstr(m->key), &bad);
  jset(o, "query", fm_review_field_json(&m->query), &bad);
  jset(o, "ref", m->ref.field_id ? fm_review_field_json(&m->ref) : json_null(), &bad);
  jset(o, "status", jstr(fm_map_status_name(m->status)), &bad);
  jset(o, "origin", jstr(m->origin), &bad);
  jset(o, "score", jnum(m->score), &bad);
  jset(o, "by", jstr(m->by), &bad);
  jset(o, "at", jstr(m->at), &bad);
  jset(o, "comment", jstr(m->comment), &bad);
  jset(o, "flag", jstr(m->flag), &bad);
  jset(o, "batch_run", m->batch_run ? json_integer(m->batch_run) : json_null(), &bad);
  return built(o, bad);
}

json_t *fm_review_queue_json(const fm_queue_page *p) {
  json_t *o = json_object(), *items = json_array();
  int bad = !items;
  for (size_t i = 0; i < p->n && !bad; i++) {
    const fm_queue_item *it = &p->v[i];
    json_t *j = json_object();
    jset(j, "field", fm_review_field_json(&it->query), &bad);
    jset(j, "reason", jstr(it->reason), &bad);
    jset(j, "queued_at", jstr(it->queued_at), &bad);
    jset(j, "uncertainty", jnum(it->uncertainty), &bad);
    jset(j, "top_score", jnum(it->top_score), &bad);
    jset(j, "margin", jnum(it->margin), &bad);
    jset(j, "batch_run", it->batch_run ? json_integer(it->batch_run) : json_null(), &bad);
    if (it->has_top) {
      json_t *t = json_object();
      jset(t, "ref", fm_review_field_json(&it->top), &bad);
      jset(t, "score", jnum(it->top_cand_score), &bad);
      jset(j, "top", t, &bad);
    } else {
      jset(j, "top", json_null(), &bad);
    }
    if (!j || json_array_append_new(items, j)) bad = 1;
  }
  jset(o, "total", json_integer(p->total), &bad);
  jset(o, "items", items, &bad);
  return built(o, bad);
}

json_t *fm_review_view_json(const fm_field_view *v) {
  json_t *o = json_object(), *cands = json_array(), *decs = json_array();
  int bad = !cands || !decs;
  jset(o, "field", fm_review_field_json(&v->field), &bad);
  jset(o, "queued", json_boolean(v->queued), &bad);
  jset(o, "queue_reason", jstr(v->queue_reason), &bad);
  jset(o, "batch_run", v->batch_run ? json_integer(v->batch_run) : json_null(), &bad);
  for (size_t i = 0; i < v->ncands && !bad; i++) {
    json_t *j = json_object();
    jset(j, "rank", json_integer(v->cands[i].rank), &bad);
    jset(j, "score", jnum(v->cands[i].score), &bad);
    jset(j, "ref", fm_review_field_json(&v->cands[i].ref), &bad);
    jset(j, "status",
         v->cands[i].status ? jstr(fm_map_status_name(v->cands[i].status)) : json_null(),
         &bad);
    if (!j || json_array_append_new(cands, j)) bad = 1;
  }
  for (size_t i = 0; i < v->ndecisions && !bad; i++) {
    json_t *j = fm_review_mapping_json(&v->decisions[i]);
    if (!j || json_array_append_new(decs, j)) bad = 1;
  }
  jset(o, "candidates", cands, &bad);
  jset(o, "decisions", decs, &bad);
  jset(o, "accepted", v->accepted ? fm_review_mapping_json(v->accepted) : json_null(), &bad);
  jset(o, "no_equivalent",
       v->no_equivalent ? fm_review_mapping_json(v->no_equivalent) : json_null(), &bad);
  return built(o, bad);
}

json_t *fm_review_history_json(const fm_audit_list *l) {
  json_t *a = json_array();
  int bad = !a;
  for (size_t i = 0; i < l->n && !bad; i++) {
    const fm_audit_row *r = &l->v[i];
    json_t *j = json_object();
    jset(j, "audit_id", json_integer(r->audit_id), &bad);
    jset(j, "at", jstr(r->at), &bad);
    jset(j, "actor", jstr(r->actor), &bad);
    jset(j, "action", jstr(r->action), &bad);
    jset(j, "key", jstr(r->entity_key), &bad);
    /* before/after are JSON texts: embed them as values. */
    json_t *b = r->before ? json_loads(r->before, 0, NULL) : json_null();
    json_t *af = r->after ? json_loads(r->after, 0, NULL) : json_null();
    jset(j, "before", b ? b : jstr(r->before), &bad);
    jset(j, "after", af ? af : jstr(r->after), &bad);
    if (!j || json_array_append_new(a, j)) bad = 1;
  }
  return built(a, bad);
}
