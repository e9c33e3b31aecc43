/* h_match.c: the lookup endpoints.
 *   GET  /v1/match?field=PX_LAST&k=10&min_score=0.2&vendor=refinitiv
 *   POST /v1/match  {"fields": ["PX_LAST", ...], "k": 10, "min_score": .., "vendor": ..}
 * One Bloomberg field (a known query field of the model, or a bare
 * mnemonic) -> ranked reference fields with id, name, description, score
 * and whether the pair is curated. */
#include "http_internal.h"

#include <math.h>
#include <string.h>

#define MAX_FIELD_LEN 256

fm_rc fm_http_rank(fm_http_worker *w, const char *field, int k, double min_score,
                   const char *vendor, int *n, fm_error *err) {
  const fm_model *m = fm_http_model(w->srv);
  *n = 0;
  /* With a vendor filter, rank deeper so k survive the filter. */
  int want = k;
  if (vendor) {
    want = k * 10 < 200 ? 200 : k * 10;
    if (want > FM_HTTP_MAX_CAND) want = FM_HTTP_MAX_CAND;
  }
  size_t nrefs = fm_model_nrefs(m);
  if ((size_t)want > nrefs) want = (int)nrefs;
  if (want <= 0) return FM_OK;
  fm_rank_cache *cache = fm_http_rank_cache(w->srv);
  /* the learning layer of this lookup (learn_ref.c): its generation is
   * part of the cache key, so a decision's new layer is never served an
   * older ranking */
  fm_http_lref *lh = fm_http_learn_acquire(w->srv);
  uint64_t gen = fm_http_mref_gen(w->mref) ^ (fm_http_lref_gen(lh) << 32);
  unsigned char key[FM_RANK_KEY_MAX];
  size_t klen = cache ? fm_rank_cache_key(key, sizeof key, gen, field, k, min_score, vendor) : 0;
  if (klen && fm_rank_cache_get(cache, key, klen, w->cand, n)) {
    fm_http_learn_release(w->srv, lh);
    return FM_OK;
  }
  int got = 0;
  fm_rc rc = fm_match_learned(w->matcher, fm_http_lref_layer(lh), field, NULL, want, w->cand,
                              &got, err);
  fm_http_learn_release(w->srv, lh);
  if (rc) return rc;
  int out = 0;
  for (int i = 0; i < got && out < k; i++) {
    if (w->cand[i].score < min_score) break; /* best first */
    if (vendor) {
      fm_field rf;
      fm_model_ref(m, w->cand[i].ref, &rf);
      if (strcmp(rf.vendor, vendor) != 0) continue;
    }
    w->cand[out++] = w->cand[i];
  }
  *n = out;
  if (klen) fm_rank_cache_put(cache, key, klen, w->cand, out);
  return FM_OK;
}

/* CURATED-FIRST: the one place where the store's accepted mapping for the
 * field goes in front of the model's ranking.  The field is looked up as a
 * query field of the store (fm_review_resolve with no vendor: a bare,
 * unique id) on the worker thread's connection; its accepted mapping
 * (fm_review_accepted) becomes candidate 1 with "curated": true.  When the
 * model ranked that reference too, its entry moves up (keeping the model's
 * score); otherwise the curated one is added in front (score: the score
 * recorded on the mapping, null when it has none), so the list may hold
 * k + 1 entries.  Ranks are renumbered.  No database, an unknown or
 * ambiguous field: the model's ranking as it is.  A database error is
 * logged and the model's ranking served (a lookup should not fail because
 * the store is busy); only running out of memory fails. */
static fm_rc curated_first(fm_http_worker *w, const char *field, json_t *cands) {
  fm_store *st;
  fm_error err;
  fm_error_init(&err);
  int64_t qf = 0;
  if (fm_http_worker_store(w, &st, &err)) return FM_OK; /* no database */
  fm_rc rc = fm_review_resolve(st, NULL, field, FM_ROLE_QUERY, &qf, &err);
  if (rc == FM_ERR_NOTFOUND || rc == FM_ERR_ARG) return FM_OK;
  fm_arena arena;
  fm_arena_init(&arena);
  fm_mapping_row m;
  int found = 0;
  if (!rc) rc = fm_review_accepted(st, qf, &arena, &m, &found, &err);
  if (rc) {
    fm_arena_free(&arena);
    if (rc == FM_ERR_NOMEM) return rc;
    fm_warn("http: curated mapping of %s not read, serving the model's ranking: %s", field,
            err.msg);
    return FM_OK;
  }
  if (!found) {
    fm_arena_free(&arena);
    return FM_OK;
  }
  json_t *cur = NULL;
  size_t i;
  json_t *c;
  json_array_foreach(cands, i, c) {
    const char *id = json_string_value(json_object_get(c, "id"));
    const char *vendor = json_string_value(json_object_get(c, "vendor"));
    if (id && vendor && !strcmp(id, m.ref.id) && !strcmp(vendor, m.ref.vendor)) {
      cur = json_incref(c);
      json_array_remove(cands, i);
      break;
    }
  }
  if (!cur)
    cur = json_pack("{s:i,s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:b}", "rank", 1, "id", m.ref.id,
                    "vendor", m.ref.vendor, "name", m.ref.name, "description",
                    m.ref.description, "type", m.ref.type, "score",
                    isnan(m.score) ? json_null() : json_real(round(m.score * 1e4) / 1e4),
                    "confidence", json_null(), "curated", 0);
  fm_arena_free(&arena);
  if (!cur) return FM_ERR_NOMEM;
  if (json_object_set_new(cur, "curated", json_true())) {
    json_decref(cur);
    return FM_ERR_NOMEM;
  }
  if (json_array_insert_new(cands, 0, cur)) return FM_ERR_NOMEM; /* cur released */
  json_array_foreach(cands, i, c) json_object_set_new(c, "rank", json_integer((json_int_t)i + 1));
  return FM_OK;
}

/* The result object of one field; NULL with err set on failure. */
static json_t *match_json(fm_http_worker *w, const char *field, int k, double min_score,
                          const char *vendor, int parts, fm_error *err) {
  const fm_model *m = fm_http_model(w->srv);
  int n = 0;
  if (fm_http_rank(w, field, k, min_score, vendor, &n, err)) return NULL;
  json_t *o = json_object(), *cands = json_array();
  if (!o || !cands) goto oom;
  json_t *fs = json_string(field);
  if (!fs) {
    fm_error_set(err, FM_ERR_ARG, "field is not valid UTF-8");
    json_decref(o);
    json_decref(cands);
    return NULL;
  }
  json_object_set_new(o, "field", fs);
  long qi = fm_model_find_query(m, field);
  json_object_set_new(o, "known", json_boolean(qi >= 0));
  if (qi >= 0) {
    fm_field q;
    fm_model_query(m, (size_t)qi, &q);
    json_object_set_new(o, "query", fm_http_field_json(&q, "query"));
  }
  for (int i = 0; i < n; i++) {
    fm_field rf;
    fm_model_ref(m, w->cand[i].ref, &rf);
    json_t *c = json_pack("{s:i,s:s?,s:s?,s:s?,s:s?,s:s?,s:f,s:f,s:b}", "rank", i + 1, "id",
                          rf.id, "vendor", rf.vendor, "name", rf.name, "description",
                          rf.description, "type", rf.type, "score",
                          round(w->cand[i].score * 1e4) / 1e4, "confidence",
                          round(w->cand[i].confidence * 1e4) / 1e4, "curated", 0);
    /* parts=1: the score's unweighted components, for the review app's
     * "why" bars (docs/scoring.md); penalty sums the 0/1 penalty flags. */
    const fm_candidate *cd = &w->cand[i];
    if (c && parts &&
        json_object_set_new(
            c, "parts",
            json_pack("{s:f,s:f,s:f,s:f,s:f,s:f}", "title", (double)cd->s_title, "description",
                      (double)cd->s_full, "chars", (double)cd->s_chars, "lsa",
                      (double)cd->s_lsa, "prior", (double)cd->s_prior, "penalty",
                      (double)(cd->s_variant + cd->s_other + cd->s_date)))) {
      json_decref(c);
      goto oom;
    }
    if (!c || json_array_append_new(cands, c)) goto oom;
  }
  if (curated_first(w, field, cands)) goto oom;
  json_object_set_new(o, "candidates", cands);
  return o;
oom:
  json_decref(o);
  json_decref(cands);
  fm_error_set(err, FM_ERR_NOMEM, "out of memory building the reply");
  return NULL;
}

/* The result object of one field as JSON text appended to b, the bytes
 * match_json + json_dumps would give (without a tree: an allocation per
 * value and a hash table per object cost more than the lookup when the
 * ranking comes from the cache).  Only for rankings curated_first cannot
 * change: see fm_h_match_get. */
static fm_rc match_text(fm_http_worker *w, const char *field, int k, double min_score,
                        const char *vendor, fm_buf *b, fm_error *err) {
  const fm_model *m = fm_http_model(w->srv);
  int n = 0;
  fm_rc rc = fm_http_rank(w, field, k, min_score, vendor, &n, err);
  if (rc) return rc;
#define PUT(s) do { if ((rc = fm_buf_append(b, s, sizeof s - 1))) goto nomem; } while (0)
  fm_error jerr; /* the writer's own message is not the one to send */
  fm_error_init(&jerr);
#define STR(s) do { if ((rc = fm_buf_json_str(b, s, strlen(s), &jerr))) goto fail; } while (0)
  PUT("{\"field\":");
  if ((rc = fm_buf_json_str(b, field, strlen(field), &jerr)))
    return rc == FM_ERR_ARG ? fm_error_set(err, rc, "field is not valid UTF-8")
                            : fm_error_set(err, rc, "%s", jerr.msg);
  long qi = fm_model_find_query(m, field);
  if (qi >= 0) {
    fm_field q;
    fm_model_query(m, (size_t)qi, &q);
    PUT(",\"known\":true,\"query\":{\"vendor\":");
    STR(q.vendor);
    PUT(",\"id\":");
    STR(q.id);
    PUT(",\"name\":");
    STR(q.name);
    PUT(",\"description\":");
    STR(q.description);
    PUT(",\"type\":");
    STR(q.type);
    PUT(",\"category\":");
    STR(q.category);
    PUT(",\"role\":\"query\"}");
  } else {
    PUT(",\"known\":false");
  }
  PUT(",\"candidates\":[");
  for (int i = 0; i < n; i++) {
    fm_field rf;
    fm_model_ref(m, w->cand[i].ref, &rf);
    if (i) PUT(",");
    PUT("{\"rank\":");
    if ((rc = fm_jw_int(b, i + 1, &jerr))) goto fail;
    PUT(",\"id\":");
    STR(rf.id);
    PUT(",\"vendor\":");
    STR(rf.vendor);
    PUT(",\"name\":");
    STR(rf.name);
    PUT(",\"description\":");
    STR(rf.description);
    PUT(",\"type\":");
    STR(rf.type);
    PUT(",\"score\":");
    if ((rc = fm_jw_score4(b, w->cand[i].score, &jerr))) goto fail;
    PUT(",\"confidence\":");
    if ((rc = fm_jw_score4(b, w->cand[i].confidence, &jerr))) goto fail;
    PUT(",\"curated\":false}");
  }
  PUT("]}");
#undef PUT
#undef STR
  return FM_OK;
fail:
  if (rc == FM_ERR_INTERNAL) return fm_error_set(err, rc, "%s", jerr.msg);
  /* out of memory, or a model string jansson would refuse: the answer
   * match_json gives for both */
nomem:
  return fm_error_set(err, FM_ERR_NOMEM, "out of memory building the reply");
}

/* The result object of one field appended to b as JSON text: the bytes of
 * match_json + json_dumps with the reply's flags, for GET and for each field
 * of a POST.  When no curated mapping can go first (no database, or the
 * field has no accepted mapping: one indexed lookup on a statement prepared
 * once per worker), the text is rendered straight (match_text).  Otherwise
 * the jansson tree is built for curated_first to edit, then dumped.  A
 * failed lookup takes the tree path, which reports or tolerates it as
 * before.  On failure b may hold part of the object; err is set. */
static fm_rc match_one(fm_http_worker *w, const char *field, int k, double min_score,
                       const char *vendor, int parts, fm_buf *b, fm_error *err) {
  int curated = 0;
  if (fm_http_server_has_db(w->srv)) {
    fm_store *st;
    fm_error serr;
    fm_error_init(&serr);
    curated = 1;
    if (fm_http_worker_store(w, &st, &serr) == FM_OK &&
        fm_store_has_accepted(st, field, &curated, &serr) != FM_OK)
      curated = 1;
  }
  if (!curated && !parts) return match_text(w, field, k, min_score, vendor, b, err);
  json_t *o = match_json(w, field, k, min_score, vendor, parts, err);
  if (!o) return err->rc;
  char *text = json_dumps(o, FM_HTTP_JSON_FLAGS);
  json_decref(o);
  fm_rc rc = text ? fm_buf_append(b, text, strlen(text)) : FM_ERR_NOMEM;
  free(text);
  if (rc) return fm_error_set(err, FM_ERR_NOMEM, "out of memory building the reply");
  return FM_OK;
}

static int field_ok(const char *f) {
  size_t n = f ? strlen(f) : 0;
  return n > 0 && n <= MAX_FIELD_LEN;
}

enum MHD_Result fm_h_match_get(fm_http_req *r) {
  enum MHD_Result ret;
  const char *field = fm_http_arg(r, "field");
  if (!field_ok(field))
    return fm_http_reply_error(r, FM_EC_BAD_PARAM, "field is required (1..%d bytes)",
                               MAX_FIELD_LEN);
  long k;
  double min_score;
  if (fm_http_arg_int(r, "k", 1, FM_HTTP_MAX_K, 10, &k, &ret)) return ret;
  if (fm_http_arg_double(r, "min_score", -INFINITY, &min_score, &ret)) return ret;
  long parts;
  if (fm_http_arg_int(r, "parts", 0, 1, 0, &parts, &ret)) return ret;
  const char *vendor = fm_http_arg(r, "vendor");
  if (vendor && !*vendor) vendor = NULL;
  fm_error err;
  fm_error_init(&err);
  fm_http_worker *w = fm_http_worker_get(r->srv, &err);
  if (!w) return fm_http_reply_rc(r, &err);
  fm_buf_reset(&w->out);
  if (match_one(w, field, (int)k, min_score, vendor, (int)parts, &w->out, &err))
    return fm_http_reply_rc(r, &err);
  return fm_http_reply_bytes(r, MHD_HTTP_OK, "application/json", w->out.buf, w->out.len);
}

enum MHD_Result fm_h_match_post(fm_http_req *r) {
  json_error_t jerr;
  json_t *in = json_loadb(r->body.buf ? r->body.buf : "", r->body.len, JSON_REJECT_DUPLICATES,
                          &jerr);
  if (!in) return fm_http_reply_error(r, FM_EC_BAD_JSON, "%s (at byte %d)", jerr.text, jerr.position);
  json_t *fields = json_object_get(in, "fields"), *jk = json_object_get(in, "k"),
         *jmin = json_object_get(in, "min_score"), *jv = json_object_get(in, "vendor");
  const fm_http_opts *o = fm_http_server_opts(r->srv);
  enum MHD_Result ret;
  long k = 10;
  double min_score = -INFINITY;
  const char *vendor = NULL;
  if (!json_is_object(in) || !json_is_array(fields)) {
    ret = fm_http_reply_error(r, FM_EC_BAD_JSON, "want {\"fields\": [\"ID\", ...]}");
    goto done;
  }
  if (json_array_size(fields) > o->max_batch) {
    ret = fm_http_reply_error(r, FM_EC_BATCH_TOO_LARGE, "%zu fields; at most %u per request",
                              json_array_size(fields), o->max_batch);
    goto done;
  }
  if (jk && (!json_is_integer(jk) || json_integer_value(jk) < 1 ||
             json_integer_value(jk) > FM_HTTP_MAX_K)) {
    ret = fm_http_reply_error(r, FM_EC_BAD_JSON, "k must be an integer in 1..%d", FM_HTTP_MAX_K);
    goto done;
  }
  if (jk) k = (long)json_integer_value(jk);
  if (jmin && !json_is_number(jmin)) {
    ret = fm_http_reply_error(r, FM_EC_BAD_JSON, "min_score must be a number");
    goto done;
  }
  if (jmin) min_score = json_number_value(jmin);
  if (jv && !json_is_string(jv) && !json_is_null(jv)) {
    ret = fm_http_reply_error(r, FM_EC_BAD_JSON, "vendor must be a string");
    goto done;
  }
  if (jv && json_is_string(jv) && *json_string_value(jv)) vendor = json_string_value(jv);
  size_t i;
  json_t *f;
  json_array_foreach(fields, i, f) {
    if (!json_is_string(f) || !field_ok(json_string_value(f))) {
      ret = fm_http_reply_error(r, FM_EC_BAD_JSON, "fields[%zu] must be a string of 1..%d bytes",
                                i, MAX_FIELD_LEN);
      goto done;
    }
  }
  fm_error err;
  fm_error_init(&err);
  fm_http_worker *w = fm_http_worker_get(r->srv, &err);
  if (!w) {
    ret = fm_http_reply_rc(r, &err);
    goto done;
  }
  /* {"results":[one,...]}: each field's object as GET renders it.  The
   * fields' curated mappings are read in one snapshot of the store (one
   * read transaction for the batch, not one per field); without it (no
   * database, BEGIN refused) each lookup reads on its own, as GET does. */
  fm_store *st = NULL;
  int began = 0;
  fm_error serr;
  fm_error_init(&serr);
  if (fm_http_server_has_db(r->srv) && fm_http_worker_store(w, &st, &serr) == FM_OK &&
      fm_store_read_begin(st, &began, &serr) != FM_OK)
    began = 0;
  fm_buf_reset(&w->out);
  fm_rc rc = fm_buf_append(&w->out, "{\"results\":[", 12);
  json_array_foreach(fields, i, f) {
    if (!rc && i) rc = fm_buf_append(&w->out, ",", 1);
    if (!rc) rc = match_one(w, json_string_value(f), (int)k, min_score, vendor, 0, &w->out, &err);
    if (rc) break;
  }
  if (st) fm_store_read_end(st, began);
  if (!rc) rc = fm_buf_append(&w->out, "]}", 2);
  if (rc) {
    if (!err.rc) fm_error_set(&err, FM_ERR_NOMEM, "out of memory building the reply");
    ret = fm_http_reply_rc(r, &err);
    goto done;
  }
  ret = fm_http_reply_bytes(r, MHD_HTTP_OK, "application/json", w->out.buf, w->out.len);
done:
  json_decref(in);
  return ret;
}
