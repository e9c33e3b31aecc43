/* h_reconcile_pages.c: the two HTML pages of the reconciliation service,
 * which OpenRefine opens in the browser (so they also exist under
 * /t/{secret}/, where the token travels in the path).
 *   GET /reconcile/preview?id=X   a small card of reference field X
 *   GET /reconcile/view?id=X      a page of field X: for a Refinitiv
 *       (reference) field, its attributes and the Bloomberg fields curated
 *       onto it; for a Bloomberg (query) field, its curated mapping and the
 *       model's top candidates
 * Every text is HTML-escaped; the pages load nothing (CSP default-src
 * 'none'), so a vendor description holding markup is shown as text. */
#include "http_internal.h"

#include <math.h>
#include <string.h>

#define VIEW_CANDIDATES 10
#define VIEW_MAPPED 50

fm_rc fm_http_html(fm_buf *b, const char *s) {
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

/* Append markup as it is (may be NULL), then text HTML-escaped (may be
 * NULL). */
static fm_rc put(fm_buf *b, const char *markup, const char *text) {
  fm_rc rc = markup ? fm_buf_puts(b, markup) : FM_OK;
  if (!rc && text) rc = fm_http_html(b, text);
  return rc;
}

static enum MHD_Result reply_html(fm_http_req *r, fm_rc rc, fm_buf *b) {
  enum MHD_Result ret;
  if (rc) {
    ret = fm_http_reply_error(r, FM_EC_INTERNAL, "out of memory");
  } else {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(b->len, b->buf, MHD_RESPMEM_MUST_COPY);
    if (resp) {
      MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/html; charset=utf-8");
      MHD_add_response_header(resp, "Content-Security-Policy", "default-src 'none'");
      MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    }
    ret = fm_http_reply_response(r, MHD_HTTP_OK, resp);
  }
  fm_buf_free(b);
  return ret;
}

static fm_rc field_block(fm_buf *b, const fm_field *f, const char *head) {
  fm_rc rc = put(b, "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>", f->id);
  if (!rc) rc = put(b, "</title></head><body><", head);
  if (!rc) rc = put(b, ">", f->id);
  if (!rc) rc = put(b, "</", head);
  if (!rc) rc = put(b, "><dl><dt>Name</dt><dd>", f->name);
  if (!rc && f->code && *f->code) rc = put(b, "</dd><dt>FID</dt><dd>", f->code);
  if (!rc) rc = put(b, "</dd><dt>Type</dt><dd>", f->type);
  if (!rc) rc = put(b, "</dd><dt>Dictionary</dt><dd>", f->vendor);
  if (!rc && f->category && *f->category) rc = put(b, "</dd><dt>Category</dt><dd>", f->category);
  if (!rc) rc = put(b, "</dd><dt>Description</dt><dd>", f->description);
  if (!rc) rc = fm_buf_puts(b, "</dd></dl>");
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
  fm_rc rc = put(&b, "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>", f.id);
  if (!rc) rc = put(&b, "</title></head><body><b>", f.id);
  if (!rc) rc = put(&b, "</b> ", f.name);
  if (!rc) rc = put(&b, " <i>", f.type);
  if (!rc) rc = put(&b, "</i><p>", f.description);
  if (!rc) rc = fm_buf_puts(&b, "</p></body></html>\n");
  return reply_html(r, rc, &b);
}

/* The Bloomberg fields curated onto reference field f (store rows). */
static fm_rc mapped_list(fm_http_req *r, fm_buf *b, const fm_field *f) {
  fm_store *st;
  fm_error err;
  fm_error_init(&err);
  fm_http_worker *w = fm_http_worker_get(r->srv, &err);
  int64_t rf;
  fm_rc rc = put(b, "<h2>Curated mappings onto this field</h2>", NULL);
  if (rc) return rc;
  if (!w || fm_http_worker_store(w, &st, &err) ||
      fm_review_resolve(st, f->vendor, f->id, FM_ROLE_REFERENCE, &rf, &err))
    return put(b, "<p>No database, or the field is not in it.</p>", NULL);
  fm_arena a;
  fm_arena_init(&a);
  fm_ref_mapping v[VIEW_MAPPED];
  size_t n = 0;
  if (fm_review_mapped_to(st, rf, &a, v, VIEW_MAPPED, &n, &err)) n = 0;
  rc = put(b, n ? "<ul>" : "<p>None yet.</p>", NULL);
  for (size_t i = 0; !rc && i < n; i++) {
    rc = put(b, "<li>", v[i].query_id);
    if (!rc) rc = put(b, " (", v[i].query_vendor);
    if (!rc) rc = put(b, ", ", v[i].status);
    if (!rc) rc = put(b, ")</li>", NULL);
  }
  if (!rc && n) rc = put(b, "</ul>", NULL);
  fm_arena_free(&a);
  return rc;
}

/* A query field's page: its curated mapping and top candidates. */
static fm_rc query_page(fm_http_req *r, fm_buf *b, const fm_model *m, const fm_field *f) {
  fm_error err;
  fm_error_init(&err);
  fm_http_worker *w = fm_http_worker_get(r->srv, &err);
  fm_rc rc = field_block(b, f, "h1");
  fm_store *st;
  int64_t qf;
  if (!rc && w && !fm_http_worker_store(w, &st, &err) &&
      !fm_review_resolve(st, f->vendor, f->id, FM_ROLE_QUERY, &qf, &err)) {
    fm_arena a;
    fm_arena_init(&a);
    fm_mapping_row row;
    int found = 0;
    if (!fm_review_accepted(st, qf, &a, &row, &found, &err) && found) {
      rc = put(b, "<h2>Curated mapping</h2><p>", row.ref.id);
      if (!rc) rc = put(b, " (accepted by ", row.by);
      if (!rc) rc = put(b, ")</p>", NULL);
    }
    fm_arena_free(&a);
  }
  int n = 0;
  if (!rc && w && !fm_http_rank(w, f->id, VIEW_CANDIDATES, -INFINITY, NULL, &n, &err)) {
    rc = put(b, "<h2>Top candidates</h2><ol>", NULL);
    for (int i = 0; !rc && i < n; i++) {
      fm_field c;
      fm_model_ref(m, w->cand[i].ref, &c);
      char sc[32];
      snprintf(sc, sizeof sc, " %.3f", w->cand[i].score);
      rc = put(b, "<li><b>", c.id);
      if (!rc) rc = put(b, "</b> ", c.name);
      if (!rc) rc = put(b, " <i>", c.type);
      if (!rc) rc = put(b, "</i> score", sc);
      if (!rc) rc = put(b, "</li>", NULL);
    }
    if (!rc) rc = put(b, "</ol>", NULL);
  }
  return rc;
}

enum MHD_Result fm_h_reconcile_view(fm_http_req *r) {
  const char *id = fm_http_arg(r, "id");
  if (!id || !*id) return fm_http_reply_error(r, FM_EC_BAD_PARAM, "id is required");
  const fm_model *m = fm_http_model(r->srv);
  fm_buf b;
  fm_buf_init(&b);
  fm_field f;
  fm_rc rc;
  long i = fm_model_find_ref(m, id);
  if (i >= 0) {
    fm_model_ref(m, (size_t)i, &f);
    rc = field_block(&b, &f, "h1");
    if (!rc) rc = mapped_list(r, &b, &f);
  } else if ((i = fm_model_find_query(m, id)) >= 0) {
    fm_model_query(m, (size_t)i, &f);
    rc = query_page(r, &b, m, &f);
  } else {
    fm_buf_free(&b);
    return fm_http_reply_error(r, FM_EC_FIELD_NOT_FOUND, "no field %s", id);
  }
  if (!rc) rc = fm_buf_puts(&b, "</body></html>\n");
  return reply_html(r, rc, &b);
}
