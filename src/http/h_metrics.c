/* h_metrics.c: GET /metrics in the Prometheus text format: request counts
 * and latency histograms by route and status (server.c), model facts, and
 * database facts read through this worker's connection. */
#include "http_internal.h"
#include "fm_review.h"
#include "fm_tokens.h"

#include <stdlib.h>
#include <string.h>

/* Database facts: schema version, active tokens, mappings by status. */
static fm_rc db_facts(fm_http_req *r, fm_buf *b) {
  fm_error err;
  fm_error_init(&err);
  fm_http_worker *w = fm_http_worker_get(r->srv, &err);
  fm_store *st = NULL;
  if (!w || fm_http_worker_store(w, &st, &err)) return FM_OK; /* no database: no facts */
  fm_rc rc = fm_buf_printf(b,
                           "# HELP fm_db_schema_version The database's schema version.\n"
                           "# TYPE fm_db_schema_version gauge\nfm_db_schema_version %d\n",
                           fm_store_schema_version(st));
  int64_t ntokens;
  if (!rc && !fm_store_token_count_active(st, &ntokens, &err))
    rc = fm_buf_printf(b,
                       "# HELP fm_db_api_tokens_active Tokens not revoked.\n"
                       "# TYPE fm_db_api_tokens_active gauge\nfm_db_api_tokens_active %lld\n",
                       (long long)ntokens);
  fm_status_count counts[16];
  size_t ncounts;
  if (!rc && !fm_review_count_by_status(st, counts, 16, &ncounts, &err)) {
    rc = fm_buf_puts(b,
                     "# HELP fm_db_mappings Mappings by review status.\n"
                     "# TYPE fm_db_mappings gauge\n");
    for (size_t i = 0; !rc && i < ncounts; i++)
      rc = fm_buf_printf(b, "fm_db_mappings{status=\"%s\"} %lld\n", counts[i].status,
                         (long long)counts[i].n);
  }
  return rc;
}

enum MHD_Result fm_h_metrics(fm_http_req *r) {
  fm_buf b;
  fm_buf_init(&b);
  fm_rc rc = fm_http_metrics_write(r->srv, &b);
  fm_model_info mi;
  fm_model_info_get(fm_http_model(r->srv), &mi);
  json_t *name = json_string(mi.name ? mi.name : "");
  char *qname = name ? json_dumps(name, JSON_ENCODE_ANY) : NULL; /* quoted, escaped */
  json_decref(name);
  if (!rc)
    rc = fm_buf_printf(&b,
                       "# HELP fm_model_info The served model (value always 1).\n"
                       "# TYPE fm_model_info gauge\n"
                       "fm_model_info{name=%s,checksum=\"%08x\",format=\"%u\"} 1\n"
                       "# HELP fm_model_fields Fields in the model by role.\n"
                       "# TYPE fm_model_fields gauge\n"
                       "fm_model_fields{role=\"reference\"} %zu\n"
                       "fm_model_fields{role=\"query\"} %zu\n"
                       "# HELP fm_model_terms Vocabulary size.\n"
                       "# TYPE fm_model_terms gauge\nfm_model_terms %zu\n"
                       "# HELP fm_model_dims LSA dimensions.\n"
                       "# TYPE fm_model_dims gauge\nfm_model_dims %d\n",
                       qname ? qname : "\"\"", mi.checksum, mi.format_version, mi.nrefs,
                       mi.nqueries, mi.nterms, mi.dims);
  free(qname);
  if (!rc) rc = db_facts(r, &b);
  if (rc) {
    fm_buf_free(&b);
    return fm_http_reply_error(r, FM_EC_INTERNAL, "out of memory writing metrics");
  }
  enum MHD_Result ret = fm_http_reply_bytes(r, MHD_HTTP_OK, "text/plain; version=0.0.4",
                                            b.buf, b.len);
  fm_buf_free(&b);
  return ret;
}
