/* mapped_to.c: the mappings that point at one reference field (the other
 * direction of fm_review_accepted), for the reconciliation service's view
 * page and data extension: which Bloomberg fields are curated onto this
 * Refinitiv field. */
#include "fm_review.h"
#include "fm_store_sql.h"

#include <string.h>

fm_rc fm_review_mapped_to(fm_store *st, int64_t ref_field, fm_arena *arena,
                          fm_ref_mapping *out, size_t max, size_t *n, fm_error *err) {
  *n = 0;
  if (max == 0) return FM_OK;
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(
      st,
      "SELECT q.vendor, q.id, m.status FROM mappings m"
      " JOIN fields q ON q.field_id = m.query_field_id"
      " WHERE m.ref_field_id = ?1 AND m.status IN ('accepted', 'proposed')"
      " ORDER BY m.status = 'accepted' DESC, q.vendor, q.id LIMIT ?2",
      &s, err);
  if (rc) return rc;
  sqlite3_bind_int64(s, 1, ref_field);
  sqlite3_bind_int64(s, 2, (sqlite3_int64)max);
  int step;
  while ((step = sqlite3_step(s)) == SQLITE_ROW) {
    fm_ref_mapping *m = &out[*n];
    m->query_vendor = fm_arena_strdup(arena, (const char *)sqlite3_column_text(s, 0));
    m->query_id = fm_arena_strdup(arena, (const char *)sqlite3_column_text(s, 1));
    m->status = fm_arena_strdup(arena, (const char *)sqlite3_column_text(s, 2));
    if (!m->query_vendor || !m->query_id || !m->status) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory reading mappings");
      break;
    }
    (*n)++;
  }
  if (!rc && step != SQLITE_DONE) rc = fm_store_steperr(st, step, err, "read mappings of a reference");
  sqlite3_finalize(s);
  return rc;
}
