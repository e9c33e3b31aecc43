/* h_review_daily.c: GET /v1/review/daily?days=30 (reader): analyst
 * decisions per UTC day from the audit log (fm_review_daily), for the
 * review app's chart.  Days without decisions are left out. */
#include "http_internal.h"

enum MHD_Result fm_h_review_daily(fm_http_req *r) {
  enum MHD_Result ret;
  long days;
  fm_store *st;
  if (fm_http_arg_int(r, "days", 1, 3660, 30, &days, &ret) || fm_http_req_store(r, &st, &ret))
    return ret;
  fm_review_day *v = NULL;
  size_t n = 0;
  fm_error err;
  fm_error_init(&err);
  if (fm_review_daily(st, (int)days, &v, &n, &err)) return fm_http_reply_rc(r, &err);
  json_t *a = json_array();
  for (size_t i = 0; a && i < n; i++) {
    json_t *o = json_pack("{s:s,s:I,s:I,s:I}", "day", v[i].day, "accepted",
                          (json_int_t)v[i].accepted, "rejected", (json_int_t)v[i].rejected,
                          "no_equivalent", (json_int_t)v[i].no_equivalent);
    if (!o || json_array_append_new(a, o)) {
      json_decref(a);
      a = NULL;
    }
  }
  fm_free(v);
  if (!a) return fm_http_reply_error(r, FM_EC_INTERNAL, "out of memory");
  return fm_http_reply_json(r, MHD_HTTP_OK, json_pack("{s:i,s:o}", "days", (int)days, "items", a));
}
