/* decisions.c: every decided mapping (accepted, rejected, "no equivalent")
 * as (query id, reference id, status), for the learning layer (the jobs
 * layer and the front ends build it from these; docs/scoring.md). */
#include "fm_review.h"
#include "fm_store_sql.h"

#include <string.h>

fm_rc fm_review_decisions(fm_store *st, fm_arena *arena, fm_decided **out, size_t *n,
                          fm_error *err) {
  *out = NULL;
  *n = 0;
  sqlite3_stmt *s;
  /* 'no_equivalent' is a status of issue 8; listed so it is read once a
   * store has it */
  fm_rc rc = fm_store_prepare(
      st,
      "SELECT q.id, r.id, m.status FROM mappings m"
      " JOIN fields q ON q.field_id = m.query_field_id"
      " JOIN fields r ON r.field_id = m.ref_field_id"
      " WHERE m.status IN ('accepted', 'rejected', 'no_equivalent')"
      " ORDER BY m.decided_at, m.mapping_id",
      &s, err);
  if (rc) return rc;
  fm_decided *v = NULL;
  size_t cap = 0;
  int step;
  while ((step = sqlite3_step(s)) == SQLITE_ROW) {
    if (fm_grow((void **)&v, &cap, *n + 1, sizeof *v)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory reading decisions");
      break;
    }
    fm_decided *d = &v[*n];
    d->query_id = fm_arena_strdup(arena, (const char *)sqlite3_column_text(s, 0));
    d->ref_id = fm_arena_strdup(arena, (const char *)sqlite3_column_text(s, 1));
    d->status = fm_arena_strdup(arena, (const char *)sqlite3_column_text(s, 2));
    if (!d->query_id || !d->ref_id || !d->status) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory reading decisions");
      break;
    }
    (*n)++;
  }
  if (!rc && step != SQLITE_DONE) rc = fm_store_steperr(st, step, err, "read decisions");
  sqlite3_finalize(s);
  if (rc) {
    fm_free(v);
    *n = 0;
    return rc;
  }
  *out = v;
  return FM_OK;
}
