/* h_review_bulk.c: POST /v1/review/bulk (analyst): several decisions in ONE
 * transaction, all or nothing (fm_review_apply_bulk: each with the checks,
 * decision path and audit row of a single decision).  Body:
 *   {"decisions": [{"field", "field_vendor"?, "action", "ref"?, "ref_vendor"?,
 *                   "expect"?}], "comment"?}
 * action: accept, reject, pick or no_equivalent; at most 500 decisions.
 * 200 {"applied": n, "results": [{"field", "mapping_id"}]}; a bad item is
 * 400 and a conflict 409, naming the item ("decision 3: ..."); then nothing
 * was written.  The analyst recorded is the token's owner. */
#include "http_internal.h"

#include <string.h>

#define BULK_MAX 500

static const char *str_member(json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Resolve item i into req; NULL or the error text (in buf). */
static const char *parse_item(fm_store *st, json_t *it, fm_review_req *req, char *buf,
                              size_t n) {
  static const char *const known[] = {"field", "field_vendor", "action", "ref",
                                      "ref_vendor", "expect", "expect_vendor"};
  if (!json_is_object(it)) return "must be an object";
  const char *key;
  json_t *v;
  json_object_foreach(it, key, v) {
    int ok = 0;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) ok |= !strcmp(key, known[i]);
    if (!ok) {
      snprintf(buf, n, "unknown member '%s'", key);
      return buf;
    }
    if (!json_is_string(v) && !(json_is_null(v) && !strcmp(key, "expect")))
      return "members are strings (expect may be null)";
  }
  const char *a = str_member(it, "action"), *field = str_member(it, "field"),
             *ref = str_member(it, "ref");
  if (!a) return "action is required";
  if (!strcmp(a, "accept")) req->action = FM_REVIEW_ACCEPT;
  else if (!strcmp(a, "reject")) req->action = FM_REVIEW_REJECT;
  else if (!strcmp(a, "pick")) req->action = FM_REVIEW_PICK;
  else if (!strcmp(a, "no_equivalent")) req->action = FM_REVIEW_NONE;
  else return "action is accept, reject, pick or no_equivalent";
  if (!field || !*field) return "field (the query field id) is required";
  if (req->action == FM_REVIEW_NONE ? ref != NULL
                                    : req->action != FM_REVIEW_REJECT && (!ref || !*ref))
    return "ref is required for accept and pick, absent for no_equivalent";
  fm_error err;
  fm_error_init(&err);
  if (fm_review_resolve(st, str_member(it, "field_vendor"), field, FM_ROLE_QUERY,
                        &req->query_field, &err) ||
      (ref && fm_review_resolve(st, str_member(it, "ref_vendor"), ref, FM_ROLE_REFERENCE,
                                &req->ref_field, &err))) {
    snprintf(buf, n, "%s", err.msg);
    return buf;
  }
  json_t *e = json_object_get(it, "expect");
  if (e) {
    req->expect_ref = 0;
    const char *es = json_string_value(e);
    if (es && !strcmp(es, "no_equivalent")) req->expect_none = 1;
    else if (es && fm_review_resolve(st, str_member(it, "expect_vendor"), es,
                                     FM_ROLE_REFERENCE, &req->expect_ref, &err)) {
      snprintf(buf, n, "%s", err.msg);
      return buf;
    }
  }
  return NULL;
}

enum MHD_Result fm_h_review_bulk(fm_http_req *r) {
  enum MHD_Result ret;
  fm_store *st;
  json_error_t jerr;
  json_t *in = json_loadb(r->body.buf ? r->body.buf : "", r->body.len,
                          JSON_REJECT_DUPLICATES, &jerr);
  if (!in)
    return fm_http_reply_error(r, FM_EC_BAD_JSON, "%s (at byte %d)", jerr.text, jerr.position);
  json_t *list = json_object_get(in, "decisions"), *cj = json_object_get(in, "comment");
  size_t n = json_array_size(list);
  fm_review_req *reqs = NULL;
  int64_t *ids = NULL;
  if (!json_is_object(in) || !json_is_array(list) || !n || n > BULK_MAX ||
      (cj && !json_is_string(cj) && !json_is_null(cj))) {
    ret = fm_http_reply_error(r, FM_EC_BAD_JSON,
                              "the body is {\"decisions\": [1 to %d items], \"comment\"?: "
                              "string}",
                              BULK_MAX);
    goto done;
  }
  if (fm_http_req_store(r, &st, &ret)) goto done;
  reqs = fm_calloc(n, sizeof *reqs);
  ids = fm_calloc(n, sizeof *ids);
  if (!reqs || !ids) {
    ret = fm_http_reply_error(r, FM_EC_INTERNAL, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    char buf[1100];
    reqs[i] = (fm_review_req){.by = r->owner, .expect_ref = -1,
                              .comment = json_string_value(cj)};
    const char *bad = parse_item(st, json_array_get(list, i), &reqs[i], buf, sizeof buf);
    if (bad) {
      ret = fm_http_reply_error(r, FM_EC_BAD_PARAM, "decision %zu: %s", i + 1, bad);
      goto done;
    }
  }
  fm_error err;
  fm_error_init(&err);
  size_t failed = 0;
  fm_rc rc = fm_review_apply_bulk(st, reqs, n, ids, &failed, &err);
  if (rc == FM_ERR_ARG || rc == FM_ERR_NOTFOUND) {
    ret = fm_http_reply_error(r, FM_EC_BAD_PARAM, "decision %zu: %s", failed + 1, err.msg);
  } else if (rc == FM_ERR_CONFLICT) {
    ret = fm_http_reply_error(r, FM_EC_CONFLICT, "decision %zu: %s", failed + 1, err.msg);
  } else if (rc) {
    ret = fm_http_reply_rc(r, &err);
  } else {
    json_t *res = json_array();
    for (size_t i = 0; res && i < n; i++)
      if (json_array_append_new(
              res, json_pack("{s:O,s:I}", "field",
                             json_object_get(json_array_get(list, i), "field"), "mapping_id",
                             (json_int_t)ids[i]))) {
        json_decref(res);
        res = NULL;
      }
    ret = res ? fm_http_reply_json(r, MHD_HTTP_OK,
                                   json_pack("{s:I,s:o}", "applied", (json_int_t)n, "results",
                                             res))
              : fm_http_reply_error(r, FM_EC_INTERNAL, "out of memory");
  }
done:
  fm_free(reqs);
  fm_free(ids);
  json_decref(in);
  return ret;
}
