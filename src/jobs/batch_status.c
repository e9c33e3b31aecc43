/* batch_status.c: batch runs as stored (fm_batch_status, fm_batch_list).
 * Ownership: fm_batch_info owns its strings and parts (fm_batch_info_free,
 * fm_batch_list_free). */
#include "batch_internal.h"

#include <string.h>

/* ---- status and listing ---------------------------------------------------- */

static const char *arena_col(fm_arena *a, sqlite3_stmt *s, int i) {
  if (sqlite3_column_type(s, i) == SQLITE_NULL) return NULL;
  const char *t = (const char *)sqlite3_column_text(s, i);
  return fm_arena_strdup(a, t ? t : "");
}

#define RUN_COLUMNS                                                              \
  "SELECT r.batch_run_id, r.model_run_id, r.status, r.params, m.model_name,"     \
  " m.model_path, m.model_checksum, r.started_at, r.finished_at, r.started_by,"  \
  " r.error, r.n_fields, r.n_batches,"                                           \
  " (SELECT count(*) FROM batch_parts p WHERE p.batch_run_id = r.batch_run_id)," \
  " (SELECT total(n_in) FROM batch_parts p WHERE p.batch_run_id = r.batch_run_id),"\
  " (SELECT total(n_proposed) FROM batch_parts p"                                \
  "  WHERE p.batch_run_id = r.batch_run_id),"                                    \
  " (SELECT total(n_queued) FROM batch_parts p"                                  \
  "  WHERE p.batch_run_id = r.batch_run_id),"                                    \
  " (SELECT total(n_curated) FROM batch_parts p"                                 \
  "  WHERE p.batch_run_id = r.batch_run_id),"                                    \
  " (SELECT total(n_failed) FROM batch_parts p"                                  \
  "  WHERE p.batch_run_id = r.batch_run_id)"                                     \
  " FROM batch_runs r JOIN model_runs m ON m.model_run_id = r.model_run_id"

/* Fill info (arena initialised by the caller) from a RUN_COLUMNS row. */
static int info_from_row(fm_batch_info *info, sqlite3_stmt *s) {
  fm_arena *a = &info->arena;
  info->run_id = sqlite3_column_int64(s, 0);
  info->model_run_id = sqlite3_column_int64(s, 1);
  info->status = arena_col(a, s, 2);
  info->params = arena_col(a, s, 3);
  info->model_name = arena_col(a, s, 4);
  info->model_path = arena_col(a, s, 5);
  info->model_checksum = arena_col(a, s, 6);
  info->started_at = arena_col(a, s, 7);
  info->finished_at = arena_col(a, s, 8);
  info->started_by = arena_col(a, s, 9);
  info->error = arena_col(a, s, 10);
  info->n_fields = sqlite3_column_int64(s, 11);
  info->n_batches = sqlite3_column_int64(s, 12);
  info->nparts = (size_t)sqlite3_column_int64(s, 13);
  info->total.n_in = (int64_t)sqlite3_column_double(s, 14);
  info->total.n_proposed = (int64_t)sqlite3_column_double(s, 15);
  info->total.n_queued = (int64_t)sqlite3_column_double(s, 16);
  info->total.n_curated = (int64_t)sqlite3_column_double(s, 17);
  info->total.n_failed = (int64_t)sqlite3_column_double(s, 18);
  return info->status && info->params && info->model_name && info->started_at;
}

fm_rc fm_batch_status(fm_store *st, int64_t run_id, fm_batch_info *out, fm_error *err) {
  memset(out, 0, sizeof *out);
  fm_arena_init(&out->arena);
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(st,
                              run_id > 0 ? RUN_COLUMNS " WHERE r.batch_run_id = ?1"
                                         : RUN_COLUMNS " ORDER BY r.batch_run_id DESC"
                                                       " LIMIT 1",
                              &s, err);
  if (rc) return rc;
  if (run_id > 0) sqlite3_bind_int64(s, 1, run_id);
  int step = sqlite3_step(s);
  if (step == SQLITE_ROW && !info_from_row(out, s))
    rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory reading a batch run");
  else if (step == SQLITE_DONE)
    rc = run_id > 0 ? fm_error_set(err, FM_ERR_NOTFOUND,
                                   "%s: no batch run %lld (see 'batch list')", fm_store_path(st),
                                   (long long)run_id)
                    : fm_error_set(err, FM_ERR_NOTFOUND, "%s: no batch runs yet",
                                   fm_store_path(st));
  else if (step != SQLITE_ROW)
    rc = fm_store_steperr(st, step, err, "read batch run");
  sqlite3_finalize(s);
  if (rc) goto fail;

  /* Parts. */
  size_t cap = 0, n = 0;
  if ((rc = fm_store_prepare(st,
                             "SELECT part_no, n_in, n_proposed, n_queued, n_curated,"
                             " n_failed, finished_at FROM batch_parts"
                             " WHERE batch_run_id = ?1 ORDER BY part_no",
                             &s, err)))
    goto fail;
  sqlite3_bind_int64(s, 1, out->run_id);
  while (!rc && (step = sqlite3_step(s)) == SQLITE_ROW) {
    if (fm_grow((void **)&out->parts, &cap, n + 1, sizeof *out->parts)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory reading batch parts");
      break;
    }
    fm_batch_part *p = &out->parts[n++];
    p->part_no = sqlite3_column_int64(s, 0);
    p->c = (fm_batch_counts){sqlite3_column_int64(s, 1), sqlite3_column_int64(s, 2),
                             sqlite3_column_int64(s, 3), sqlite3_column_int64(s, 4),
                             sqlite3_column_int64(s, 5)};
    p->finished_at = arena_col(&out->arena, s, 6);
  }
  if (!rc && step != SQLITE_DONE) rc = fm_store_steperr(st, step, err, "read batch parts");
  sqlite3_finalize(s);
  out->nparts = n;
  if (!rc) return FM_OK;
fail:
  fm_batch_info_free(out);
  return rc;
}

void fm_batch_info_free(fm_batch_info *info) {
  if (!info) return;
  fm_free(info->parts);
  fm_arena_free(&info->arena);
  memset(info, 0, sizeof *info);
}

fm_rc fm_batch_list(fm_store *st, fm_batch_info **out, size_t *n, fm_error *err) {
  *out = NULL;
  *n = 0;
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(st, RUN_COLUMNS " ORDER BY r.batch_run_id DESC", &s, err);
  if (rc) return rc;
  fm_batch_info *v = NULL;
  size_t cap = 0, k = 0;
  int step;
  while (!rc && (step = sqlite3_step(s)) == SQLITE_ROW) {
    if (fm_grow((void **)&v, &cap, k + 1, sizeof *v)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory listing batch runs");
      break;
    }
    memset(&v[k], 0, sizeof v[k]);
    fm_arena_init(&v[k].arena);
    k++;
    if (!info_from_row(&v[k - 1], s))
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory listing batch runs");
  }
  if (!rc && step != SQLITE_DONE) rc = fm_store_steperr(st, step, err, "list batch runs");
  sqlite3_finalize(s);
  if (rc) {
    fm_batch_list_free(v, k);
    return rc;
  }
  *out = v;
  *n = k;
  return FM_OK;
}

void fm_batch_list_free(fm_batch_info *v, size_t n) {
  for (size_t i = 0; i < n; i++) fm_batch_info_free(&v[i]);
  fm_free(v);
}
