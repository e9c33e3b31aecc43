/* flag.c: what a dictionary import does to the mappings of a field that
 * changed or went (fm_review_flag_field), and the stable mapping key. */
#include "fm_review.h"
#include "fm_store_sql.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

void fm_store_mapping_key(const char *qvendor, const char *qid, const char *rvendor,
                          const char *rid, char out[20]) {
  const char *parts[] = {qvendor, qid, rvendor, rid};
  snprintf(out, 20, "m_%016llx",
           (unsigned long long)fm_hash64_parts(FM_HASH64_INIT, parts, 4, 0x1f));
}

fm_rc fm_review_flag_field(fm_store *st, int64_t fid, const char *flag,
                           const char *actor, size_t *nflagged, fm_error *err) {
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(
      st,
      "UPDATE mappings SET flag = ?2 WHERE (query_field_id = ?1 OR ref_field_id = ?1)"
      " AND status IN ('accepted','proposed','no_equivalent') AND flag IS NOT ?2"
      " RETURNING mapping_key, status",
      &s, err);
  if (rc) return rc;
  sqlite3_bind_int64(s, 1, fid);
  sqlite3_bind_text(s, 2, flag, -1, SQLITE_STATIC);
  /* Collect first: no other statement may run while RETURNING is pending. */
  json_t *keys = json_array();
  int step;
  while ((step = fm_store_step(st, s)) == SQLITE_ROW) {
    json_array_append_new(keys, json_pack("{s:s, s:s}", "key",
                                          (const char *)sqlite3_column_text(s, 0),
                                          "status",
                                          (const char *)sqlite3_column_text(s, 1)));
  }
  sqlite3_finalize(s);
  if (step != SQLITE_DONE) {
    json_decref(keys);
    return fm_store_steperr(st, step, err, "flag mappings");
  }
  size_t i;
  json_t *k;
  json_array_foreach(keys, i, k) {
    char after[96];
    snprintf(after, sizeof after, "{\"flag\":\"%s\"}", flag);
    rc = fm_store_audit(st, actor, "flag", "mapping",
                        json_string_value(json_object_get(k, "key")), NULL, after, err);
    if (rc) break;
    (*nflagged)++;
  }
  json_decref(keys);
  return rc;
}

fm_rc fm_review_count_by_status(fm_store *st, fm_status_count *out, size_t cap, size_t *n,
                                fm_error *err) {
  *n = 0;
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(
      st, "SELECT status, count(*) FROM mappings GROUP BY status ORDER BY status", &s, err);
  if (rc) return rc;
  int step;
  while ((step = sqlite3_step(s)) == SQLITE_ROW) {
    if (*n == cap) continue;
    snprintf(out[*n].status, sizeof out[*n].status, "%s",
             (const char *)sqlite3_column_text(s, 0));
    out[*n].n = sqlite3_column_int64(s, 1);
    (*n)++;
  }
  sqlite3_finalize(s);
  if (step != SQLITE_DONE) return fm_store_steperr(st, step, err, "count mappings");
  return FM_OK;
}
