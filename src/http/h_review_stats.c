/* h_review_stats.c: GET /v1/review/stats (reader): the review's progress
 * per query dictionary (fm_review_stats: accepted / no_equivalent / queued /
 * proposed / rejected / unmapped fields), for the review app's dashboard. */
#include "http_internal.h"

enum MHD_Result fm_h_review_stats(fm_http_req *r) {
  enum MHD_Result ret;
  fm_store *st;
  if (fm_http_req_store(r, &st, &ret)) return ret;
  fm_review_dict_stats *v = NULL;
  size_t n = 0;
  fm_error err;
  fm_error_init(&err);
  if (fm_review_stats(st, &v, &n, &err)) return fm_http_reply_rc(r, &err);
  json_t *a = json_array();
  for (size_t i = 0; a && i < n; i++) {
    const fm_review_dict_stats *d = &v[i];
    json_t *o = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "vendor", d->vendor,
                          "source", d->source, "total", (json_int_t)d->total, "accepted",
                          (json_int_t)d->accepted, "no_equivalent",
                          (json_int_t)d->no_equivalent, "queued", (json_int_t)d->queued,
                          "proposed", (json_int_t)d->proposed, "rejected",
                          (json_int_t)d->rejected, "unmapped", (json_int_t)d->unmapped);
    if (!o || json_array_append_new(a, o)) {
      json_decref(a);
      a = NULL;
    }
  }
  fm_free(v);
  if (!a) return fm_http_reply_error(r, FM_EC_INTERNAL, "out of memory");
  return fm_http_reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "dictionaries", a));
}
