/* stats.c: progress figures of the review for dashboards (the HTTP
 * /v1/review/stats and /v1/review/daily routes): how far each query
 * dictionary is, and how many decisions were made per day.  Reads only; it
 * joins the fields/dictionaries tables and reads the kernel's audit_log.
 * Results are plain structs owned by the caller (the *_free below). */
#include "fm_review.h"
#include "fm_store_sql.h"

#include <stdio.h>
#include <string.h>

/* Each active query field is in exactly one state, the first that holds:
 * accepted, no_equivalent, queued (an open queue entry), proposed (an open
 * proposal), rejected (only rejections), unmapped. */
static const char *const stats_sql =
    "WITH st AS (SELECT f.dict_id,"
    " CASE WHEN EXISTS (SELECT 1 FROM mappings m WHERE m.query_field_id = f.field_id"
    "                   AND m.status = 'accepted') THEN 0"
    "      WHEN EXISTS (SELECT 1 FROM mappings m WHERE m.query_field_id = f.field_id"
    "                   AND m.status = 'no_equivalent') THEN 1"
    "      WHEN EXISTS (SELECT 1 FROM review_queue q WHERE q.query_field_id = f.field_id"
    "                   AND q.resolved_at IS NULL) THEN 2"
    "      WHEN EXISTS (SELECT 1 FROM mappings m WHERE m.query_field_id = f.field_id"
    "                   AND m.status = 'proposed') THEN 3"
    "      WHEN EXISTS (SELECT 1 FROM mappings m WHERE m.query_field_id = f.field_id"
    "                   AND m.status = 'rejected') THEN 4"
    "      ELSE 5 END AS s"
    " FROM fields f WHERE f.role = 'query' AND f.status = 'active')"
    " SELECT d.vendor, d.source, count(*), sum(s = 0), sum(s = 1), sum(s = 2), sum(s = 3),"
    " sum(s = 4), sum(s = 5) FROM st JOIN dictionaries d ON d.dict_id = st.dict_id"
    " GROUP BY d.vendor, d.source ORDER BY d.vendor, d.source";

fm_rc fm_review_stats(fm_store *st, fm_review_dict_stats **out, size_t *n, fm_error *err) {
  *out = NULL;
  *n = 0;
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(st, stats_sql, &s, err);
  if (rc) return rc;
  size_t cap = 0;
  int step;
  while ((step = sqlite3_step(s)) == SQLITE_ROW) {
    if (fm_grow((void **)out, &cap, *n + 1, sizeof **out)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory reading review stats");
      break;
    }
    fm_review_dict_stats *d = &(*out)[(*n)++];
    memset(d, 0, sizeof *d);
    snprintf(d->vendor, sizeof d->vendor, "%s", sqlite3_column_text(s, 0));
    snprintf(d->source, sizeof d->source, "%s", sqlite3_column_text(s, 1));
    int64_t *v[] = {&d->total,    &d->accepted, &d->no_equivalent, &d->queued,
                    &d->proposed, &d->rejected, &d->unmapped};
    for (int i = 0; i < 7; i++) *v[i] = sqlite3_column_int64(s, 2 + i);
  }
  if (!rc && step != SQLITE_DONE) rc = fm_store_steperr(st, step, err, "read review stats");
  sqlite3_finalize(s);
  if (rc) {
    fm_free(*out);
    *out = NULL;
    *n = 0;
  }
  return rc;
}

fm_rc fm_review_daily(fm_store *st, int days, fm_review_day **out, size_t *n,
                      fm_error *err) {
  *out = NULL;
  *n = 0;
  if (days < 1 || days > 3660)
    return fm_error_set(err, FM_ERR_ARG, "days must be 1 to 3660, not %d", days);
  sqlite3_stmt *s;
  fm_rc rc = fm_store_query(st, &s, err,
                            "SELECT substr(at, 1, 10) AS day,"
                            " sum(action IN ('accept', 'pick')), sum(action = 'reject'),"
                            " sum(action = 'no_equivalent')"
                            " FROM audit_log WHERE entity = 'mapping'"
                            " AND action IN ('accept', 'pick', 'reject', 'no_equivalent')"
                            " AND at >= strftime('%Y-%m-%d', 'now', printf('-%d days', ?1 - 1))"
                            " GROUP BY day ORDER BY day",
                            "i", (int64_t)days);
  if (rc) return rc;
  size_t cap = 0;
  int step;
  while ((step = sqlite3_step(s)) == SQLITE_ROW) {
    if (fm_grow((void **)out, &cap, *n + 1, sizeof **out)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory reading decisions per day");
      break;
    }
    fm_review_day *d = &(*out)[(*n)++];
    snprintf(d->day, sizeof d->day, "%s", sqlite3_column_text(s, 0));
    d->accepted = sqlite3_column_int64(s, 1);
    d->rejected = sqlite3_column_int64(s, 2);
    d->no_equivalent = sqlite3_column_int64(s, 3);
  }
  if (!rc && step != SQLITE_DONE) rc = fm_store_steperr(st, step, err, "read decisions per day");
  sqlite3_finalize(s);
  if (rc) {
    fm_free(*out);
    *out = NULL;
    *n = 0;
  }
  return rc;
}
