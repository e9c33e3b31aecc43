/* h_review.c: the analyst's review workflow over HTTP.
 *   GET  /v1/review/queue?limit=50&offset=0          reader
 *        (filters: vendor, category, reason, q (id or name), min_unc, max_unc)
 *   GET  /v1/review/{vendor}/{id}                    reader
 *   POST /v1/review/{vendor}/{id}/decisions          analyst
 *   GET  /v1/review/{vendor}/{id}/history            reader
 * A thin front end, like src/cli/cmd_review.c: every read and write is a
 * review.c function (fm_review_queue / show / apply / history and their
 * fm_review_*_json views) on the worker thread's store connection, so a
 * decision made here is the same transaction, checks and audit row as
 * `fieldmatch review accept ...`.  The analyst recorded is the token's
 * owner ("local" with --no-auth), never a name from the body. */
#include "http_internal.h"

#include <math.h>
#include <string.h>

#define QUEUE_DEFAULT 50
#define QUEUE_MAX 1000
#define MAX_COMMENT 4000

/* 200 with the body j (taken), or 500 "out of memory" when building j
 * failed (NULL). */
static enum MHD_Result reply_ok(fm_http_req *r, json_t *j) {
  return j ? fm_http_reply_json(r, MHD_HTTP_OK, j)
           : fm_http_reply_error(r, FM_EC_INTERNAL, "out of memory");
}

/* Resolve the {vendor}/{id} of the path to a query field.  An unknown id,
 * or one that is only a reference field, is 404 (the resource does not
 * exist); other failures go through fm_http_reply_rc. */
static int path_field(fm_http_req *r, fm_store *st, int64_t *fid, enum MHD_Result *ret) {
  fm_error err;
  fm_error_init(&err);
  fm_rc rc = fm_review_resolve(st, r->params[0], r->params[1], FM_ROLE_QUERY, fid, &err);
  if (!rc) return 0;
  if (rc == FM_ERR_NOTFOUND || rc == FM_ERR_ARG)
    *ret = fm_http_reply_error(r, FM_EC_FIELD_NOT_FOUND, "%s", err.msg);
  else
    *ret = fm_http_reply_rc(r, &err);
  return -1;
}

/* Reply with the field's current view (200) or the error reading it. */
static enum MHD_Result reply_view(fm_http_req *r, fm_store *st, int64_t fid, json_t *extra) {
  fm_field_view v;
  fm_error err;
  fm_error_init(&err);
  enum MHD_Result ret;
  if (fm_review_show(st, fid, &v, &err)) {
    json_decref(extra);
    ret = fm_http_reply_rc(r, &err);
  } else {
    json_t *j = fm_review_view_json(&v);
    if (j && extra && json_object_update(j, extra)) {
      json_decref(j);
      j = NULL;
    }
    json_decref(extra);
    ret = reply_ok(r, j);
  }
  fm_field_view_free(&v);
  return ret;
}

enum MHD_Result fm_h_review_queue(fm_http_req *r) {
  enum MHD_Result ret;
  long limit, offset;
  fm_store *st;
  fm_queue_filter f = {.vendor = fm_http_arg(r, "vendor"),
                       .category = fm_http_arg(r, "category"),
                       .reason = fm_http_arg(r, "reason"),
                       .text = fm_http_arg(r, "q")};
  if (fm_http_arg_int(r, "limit", 1, QUEUE_MAX, QUEUE_DEFAULT, &limit, &ret) ||
      fm_http_arg_int(r, "offset", 0, 1L << 40, 0, &offset, &ret) ||
      fm_http_arg_double(r, "min_unc", NAN, &f.min_unc, &ret) ||
      fm_http_arg_double(r, "max_unc", NAN, &f.max_unc, &ret) ||
      fm_http_req_store(r, &st, &ret))
    return ret;
  fm_queue_page p;
  fm_error err;
  fm_error_init(&err);
  if (fm_review_queue_find(st, &f, (size_t)limit, (size_t)offset, &p, &err)) {
    ret = fm_http_reply_rc(r, &err);
  } else {
    json_t *j = fm_review_queue_json(&p);
    if (j) {
      json_object_set_new(j, "limit", json_integer(limit));
      json_object_set_new(j, "offset", json_integer(offset));
    }
    ret = reply_ok(r, j);
  }
  fm_queue_page_free(&p);
  return ret;
}

enum MHD_Result fm_h_review_show(fm_http_req *r) {
  enum MHD_Result ret;
  fm_store *st;
  int64_t fid;
  if (fm_http_req_store(r, &st, &ret) || path_field(r, st, &fid, &ret)) return ret;
  return reply_view(r, st, fid, NULL);
}

enum MHD_Result fm_h_review_history(fm_http_req *r) {
  enum MHD_Result ret;
  fm_store *st;
  int64_t fid;
  if (fm_http_req_store(r, &st, &ret) || path_field(r, st, &fid, &ret)) return ret;
  fm_audit_list l;
  fm_error err;
  fm_error_init(&err);
  if (fm_review_history(st, fid, &l, &err)) {
    ret = fm_http_reply_rc(r, &err);
  } else {
    json_t *h = fm_review_history_json(&l);
    ret = h ? fm_http_reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "history", h))
            : fm_http_reply_error(r, FM_EC_INTERNAL, "out of memory");
  }
  fm_audit_list_free(&l);
  return ret;
}

/* ---- decisions ------------------------------------------------------------ */

static const struct {
  const char *name;
  fm_review_action action;
} actions[] = {{"accept", FM_REVIEW_ACCEPT},
               {"reject", FM_REVIEW_REJECT},
               {"pick", FM_REVIEW_PICK},
               {"comment", FM_REVIEW_COMMENT},
               {"no_equivalent", FM_REVIEW_NONE}};

/* An optional member that must be a string (or null / absent: *out NULL).
 * Returns 0, or -1 when it has another type. */
static int opt_string(json_t *o, const char *key, const char **out) {
  json_t *v = json_object_get(o, key);
  *out = NULL;
  if (!v || json_is_null(v)) return 0;
  if (!json_is_string(v)) return -1;
  *out = json_string_value(v);
  return 0;
}

/* The decision body, checked: {"action", "ref", "ref_vendor"?, "comment"?,
 * "expect"?, "expect_vendor"?}.  Strings point into `in` (borrowed).
 * *expect_mode: -1 no check (absent), 0 expect none (null), 1 expect the
 * reference named by *expect, 2 expect the field marked no_equivalent
 * ("expect": "no_equivalent" without expect_vendor).  ref is
 * optional for no_equivalent (none allowed) and for reject / comment (the
 * field's no-equivalent row).  Returns NULL or the error detail. */
static const char *parse_decision(json_t *in, fm_review_action *action, const char **ref,
                                  const char **ref_vendor, const char **comment,
                                  int *expect_mode, const char **expect,
                                  const char **expect_vendor) {
  static const char *const known[] = {"action", "ref", "ref_vendor", "comment", "expect",
                                      "expect_vendor"};
  if (!json_is_object(in)) return "the body must be a JSON object";
  const char *key;
  json_t *v;
  json_object_foreach(in, key, v) {
    int ok = 0;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) ok |= !strcmp(key, known[i]);
    if (!ok) return "unknown member (allowed: action, ref, ref_vendor, comment, expect, "
                    "expect_vendor)";
  }
  const char *a;
  static const char *const bad_action =
      "action must be accept, reject, pick, comment or no_equivalent";
  if (opt_string(in, "action", &a) || !a) return bad_action;
  *action = 0;
  for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
    if (!strcmp(a, actions[i].name)) *action = actions[i].action;
  if (!*action) return bad_action;
  if (opt_string(in, "ref", ref)) return "ref must be a string";
  if (*action == FM_REVIEW_NONE && *ref) return "no_equivalent takes no ref";
  if ((*action == FM_REVIEW_ACCEPT || *action == FM_REVIEW_PICK) && (!*ref || !**ref))
    return "ref (the reference field id) is required";
  if (*ref && !**ref) return "ref must not be empty";
  if (opt_string(in, "ref_vendor", ref_vendor)) return "ref_vendor must be a string";
  if (opt_string(in, "comment", comment)) return "comment must be a string";
  if (*comment && strlen(*comment) > MAX_COMMENT) return "comment is longer than 4000 bytes";
  if (*action == FM_REVIEW_COMMENT && (!*comment || !**comment))
    return "action comment needs a non-empty comment";
  if (opt_string(in, "expect_vendor", expect_vendor)) return "expect_vendor must be a string";
  json_t *e = json_object_get(in, "expect");
  if (!e) *expect_mode = -1;
  else if (json_is_null(e)) *expect_mode = 0;
  else if (json_is_string(e) && !strcmp(json_string_value(e), "no_equivalent") &&
           !*expect_vendor)
    *expect_mode = 2;
  else if (json_is_string(e) && *json_string_value(e)) {
    *expect_mode = 1;
    *expect = json_string_value(e);
  } else
    return "expect must be the accepted reference id you saw, \"no_equivalent\", or null for "
           "none";
  return NULL;
}

enum MHD_Result fm_h_review_decide(fm_http_req *r) {
  enum MHD_Result ret;
  fm_store *st;
  int64_t fid;
  json_error_t jerr;
  json_t *in = json_loadb(r->body.buf ? r->body.buf : "", r->body.len,
                          JSON_REJECT_DUPLICATES, &jerr);
  if (!in)
    return fm_http_reply_error(r, FM_EC_BAD_JSON, "%s (at byte %d)", jerr.text, jerr.position);
  fm_review_req req = {.by = r->owner, .expect_ref = -1};
  const char *ref = NULL, *ref_vendor = NULL, *expect = NULL, *expect_vendor = NULL;
  int expect_mode = -1;
  const char *bad = parse_decision(in, &req.action, &ref, &ref_vendor, &req.comment,
                                   &expect_mode, &expect, &expect_vendor);
  if (bad) {
    ret = fm_http_reply_error(r, FM_EC_BAD_JSON, "%s", bad);
    goto done;
  }
  if (fm_http_req_store(r, &st, &ret) || path_field(r, st, &fid, &ret)) goto done;
  req.query_field = fid;
  fm_error err;
  fm_error_init(&err);
  fm_rc rc =
      ref ? fm_review_resolve(st, ref_vendor, ref, FM_ROLE_REFERENCE, &req.ref_field, &err)
          : FM_OK;
  if (!rc && (expect_mode == 0 || expect_mode == 2)) req.expect_ref = 0;
  if (expect_mode == 2) req.expect_none = 1;
  if (!rc && expect_mode == 1)
    rc = fm_review_resolve(st, expect_vendor, expect, FM_ROLE_REFERENCE, &req.expect_ref, &err);
  int64_t mid = 0;
  if (!rc) rc = fm_review_apply(st, &req, &mid, &err);
  if (rc == FM_ERR_ARG || rc == FM_ERR_NOTFOUND) {
    /* An unknown or wrong-side ref, accept of a non-candidate, a comment
     * on no mapping: the request is wrong, the field exists. */
    ret = fm_http_reply_error(r, FM_EC_BAD_PARAM, "%s", err.msg);
  } else if (rc) {
    ret = fm_http_reply_rc(r, &err); /* CONFLICT -> 409, BUSY -> 503 */
  } else {
    /* learn from it at once: the next lookup of a sibling field ranks with
     * the new layer (learn_ref.c), unless the rebuild outlasts learn_wait_ms
     * ("pending": it goes on); a failure does not undo the decision */
    int learnt = fm_http_learn_request(r->srv, fm_http_server_opts(r->srv)->learn_wait_ms);
    const char *aname = "";
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
      if (actions[i].action == req.action) aname = actions[i].name;
    json_t *extra = json_pack("{s:{s:s,s:I,s:s,s:s}}", "decision", "action", aname, "mapping_id",
                              (json_int_t)mid, "by", req.by, "learning",
                              learnt ? "applied" : "pending");
    ret = extra ? reply_view(r, st, fid, extra)
                : fm_http_reply_error(r, FM_EC_INTERNAL, "out of memory");
  }
done:
  json_decref(in);
  return ret;
}
