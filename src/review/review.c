/* review.c: the analyst review workflow over the store: the open queue, one
 * field's view (candidates side by side with decisions), its history, the
 * accepted mapping for curated-first lookups, analyst actions (through
 * fm_store_decide, the one write path), one at a time or in bulk.  The
 * TSV exports are in review_pairs.c, the JSON views in review_json.c.
 *
 * Every read result owns an arena holding its strings; a failed read still
 * leaves the result freeable.  Reads that take several statements run in
 * one read transaction so they see one snapshot. */
#include "fm_review.h"
#include "fm_store_sql.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* The columns of a field, in the order read_field expects; `a` is the
 * table alias. */
#define FIELD_COLS(a)                                                              \
  a ".field_id, " a ".vendor, " a ".id, " a ".role, " a ".name, " a ".description, " \
  a ".type, " a ".category, " a ".status"
#define NFIELD_COLS 9

/* Copy column i into the arena: NULL for SQL NULL when nullable, else ""
 * for NULL.  Returns -1 on allocation failure. */
static int col_str(fm_arena *a, sqlite3_stmt *s, int i, int nullable, const char **out) {
  const unsigned char *t = sqlite3_column_text(s, i);
  if (!t) {
    if (sqlite3_errcode(sqlite3_db_handle(s)) == SQLITE_NOMEM) return -1;
    *out = nullable ? NULL : "";
    return 0;
  }
  *out = fm_arena_strndup(a, (const char *)t, (size_t)sqlite3_column_bytes(s, i));
  return *out ? 0 : -1;
}

static double col_real(sqlite3_stmt *s, int i) {
  return sqlite3_column_type(s, i) == SQLITE_NULL ? NAN : sqlite3_column_double(s, i);
}

/* Read FIELD_COLS starting at column c0. */
static int read_field(fm_arena *a, sqlite3_stmt *s, int c0, fm_field_row *f) {
  f->field_id = sqlite3_column_int64(s, c0);
  return col_str(a, s, c0 + 1, 0, &f->vendor) || col_str(a, s, c0 + 2, 0, &f->id) ||
                 col_str(a, s, c0 + 3, 0, &f->role) || col_str(a, s, c0 + 4, 0, &f->name) ||
                 col_str(a, s, c0 + 5, 0, &f->description) ||
                 col_str(a, s, c0 + 6, 0, &f->type) ||
                 col_str(a, s, c0 + 7, 0, &f->category) ||
                 col_str(a, s, c0 + 8, 0, &f->status)
             ? -1
             : 0;
}

/* The columns of a mapping row with both fields, in read_mapping's order. */
#define MAPPING_SELECT                                                              \
  "SELECT m.mapping_id, m.mapping_key, m.status, m.origin, m.decided_by,"           \
  " m.decided_at, m.comment, m.flag, m.score, m.batch_run_id, " FIELD_COLS("q") ", " \
  FIELD_COLS("r")                                                                   \
  " FROM mappings m JOIN fields q ON q.field_id = m.query_field_id"                 \
  " LEFT JOIN fields r ON r.field_id = m.ref_field_id"

static int read_mapping(fm_arena *a, sqlite3_stmt *s, fm_mapping_row *m) {
  const char *status;
  m->mapping_id = sqlite3_column_int64(s, 0);
  if (col_str(a, s, 1, 0, &m->key) || col_str(a, s, 2, 0, &status) ||
      col_str(a, s, 3, 0, &m->origin) || col_str(a, s, 4, 0, &m->by) ||
      col_str(a, s, 5, 0, &m->at) || col_str(a, s, 6, 0, &m->comment) ||
      col_str(a, s, 7, 1, &m->flag))
    return -1;
  int st = fm_map_status_parse(status);
  m->status = st > 0 ? (fm_map_status)st : FM_MAP_PROPOSED;
  m->score = col_real(s, 8);
  m->batch_run = sqlite3_column_int64(s, 9); /* NULL reads as 0 */
  return read_field(a, s, 10, &m->query) || read_field(a, s, 10 + NFIELD_COLS, &m->ref)
             ? -1
             : 0;
}

static fm_rc nomem(fm_error *err, const char *what) {
  return fm_error_set(err, FM_ERR_NOMEM, "out of memory reading %s", what);
}

/* ---- resolving ids -------------------------------------------------------- */

static const char *role_name(fm_role r) {
  return r == FM_ROLE_QUERY ? "query" : "reference";
}

fm_rc fm_review_resolve(fm_store *st, const char *vendor, const char *id, fm_role role,
                        int64_t *field_id, fm_error *err) {
  *field_id = 0;
  if (!id || !*id) return fm_error_set(err, FM_ERR_ARG, "empty %s field id", role_name(role));
  sqlite3_stmt *s;
  fm_rc rc = fm_store_query(st, &s, err,
                            "SELECT field_id, vendor, role FROM fields WHERE id = ?1"
                            " AND (?2 IS NULL OR vendor = ?2) ORDER BY vendor",
                            "tt", id, vendor);
  if (rc) return rc;
  /* Matches of the wanted role (their vendors listed for an ambiguity), and
   * whether the id exists in the other role. */
  fm_buf vendors;
  fm_buf_init(&vendors);
  int nrole = 0, nother = 0, step;
  int64_t found = 0;
  while ((step = sqlite3_step(s)) == SQLITE_ROW) {
    const char *v = (const char *)sqlite3_column_text(s, 1);
    if (!strcmp((const char *)sqlite3_column_text(s, 2), role_name(role))) {
      found = sqlite3_column_int64(s, 0);
      if ((nrole++ && fm_buf_puts(&vendors, ", ")) || fm_buf_puts(&vendors, v ? v : "")) {
        rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory resolving %s", id);
        break;
      }
    } else {
      nother++;
    }
  }
  sqlite3_finalize(s);
  if (!rc && step != SQLITE_DONE) rc = fm_store_steperr(st, step, err, "look up field");
  if (!rc) {
    const char *other = role == FM_ROLE_QUERY ? "reference" : "query";
    if (nrole == 1)
      *field_id = found;
    else if (nrole > 1)
      rc = fm_error_set(err, FM_ERR_ARG,
                        "%s field '%s' is ambiguous: vendors %s (choose one with "
                        "--%s-vendor)",
                        role_name(role), id, vendors.buf, role == FM_ROLE_QUERY ? "query" : "ref");
    else if (nother)
      rc = fm_error_set(err, FM_ERR_ARG, "'%s' is a %s field, not a %s field", id, other,
                        role_name(role));
    else
      rc = fm_error_set(err, FM_ERR_NOTFOUND, "unknown %s field '%s'%s%s%s", role_name(role),
                        id, vendor ? " (vendor " : "", vendor ? vendor : "",
                        vendor ? ")" : "");
  }
  fm_buf_free(&vendors);
  return rc;
}

/* Free a result that holds its rows in the array v and their text in
 * arena, and zero the result (p, size bytes): the shared end of the
 * page/list free functions below. */
static void rows_free(void *v, fm_arena *arena, void *p, size_t size) {
  fm_free(v);
  fm_arena_free(arena);
  memset(p, 0, size);
}

/* ---- the queue ------------------------------------------------------------ */

/* Zero the result out (size bytes), start its arena and open a read
 * snapshot (fm_store_read_begin): the opening of the reads that fill a
 * result holding its text in an arena.  The caller ends the read. */
static fm_rc read_open(fm_store *st, void *out, size_t size, fm_arena *arena, int *began,
                       fm_error *err) {
  memset(out, 0, size);
  fm_arena_init(arena);
  return fm_store_read_begin(st, began, err);
}

void fm_queue_page_free(fm_queue_page *p) {
  if (p) rows_free(p->v, &p->arena, p, sizeof *p);
}

fm_rc fm_review_queue(fm_store *st, size_t limit, size_t offset, fm_queue_page *out,
                      fm_error *err) {
  return fm_review_queue_find(st, NULL, limit, offset, out, err);
}

/* The filter's WHERE terms; parameters ?3.. bound by bind_filter. */
#define QUEUE_FILTER                                                                \
  " AND (?3 IS NULL OR q.vendor = ?3) AND (?4 IS NULL OR q.category = ?4)"          \
  " AND (?5 IS NULL OR rq.reason = ?5)"                                             \
  " AND (?6 IS NULL OR instr(lower(q.id), lower(?6)) > 0"                           \
  "      OR instr(lower(q.name), lower(?6)) > 0)"                                   \
  " AND (?7 IS NULL OR rq.uncertainty >= ?7) AND (?8 IS NULL OR rq.uncertainty <= ?8)"

static void bind_filter(sqlite3_stmt *s, const fm_queue_filter *f) {
  if (!f) return;
  const char *t[] = {f->vendor, f->category, f->reason, f->text};
  for (int i = 0; i < 4; i++)
    if (t[i] && *t[i]) sqlite3_bind_text(s, 3 + i, t[i], -1, SQLITE_STATIC);
  if (!isnan(f->min_unc)) sqlite3_bind_double(s, 7, f->min_unc);
  if (!isnan(f->max_unc)) sqlite3_bind_double(s, 8, f->max_unc);
}

fm_rc fm_review_queue_find(fm_store *st, const fm_queue_filter *f, size_t limit,
                           size_t offset, fm_queue_page *out, fm_error *err) {
  int began;
  fm_rc rc = read_open(st, out, sizeof *out, &out->arena, &began, err);
  if (rc) return rc;
  sqlite3_stmt *s = NULL;
  size_t cap = 0;
  int step;
  if ((rc = fm_store_query(st, &s, err,
                           "SELECT count(*) + 0 * ?1 * ?2 FROM review_queue rq"
                           " JOIN fields q ON q.field_id = rq.query_field_id"
                           " WHERE rq.resolved_at IS NULL" QUEUE_FILTER,
                           "ii", (int64_t)0, (int64_t)0)))
    goto out;
  bind_filter(s, f);
  if ((step = sqlite3_step(s)) != SQLITE_ROW) {
    rc = fm_store_steperr(st, step, err, "count review queue");
    goto out;
  }
  out->total = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  /* The top candidate comes from the field's latest batch run with any. */
  if ((rc = fm_store_query(
             st, &s, err,
             "SELECT rq.reason, rq.queued_at, rq.uncertainty, rq.top_score, rq.margin,"
             " rq.batch_run_id, " FIELD_COLS("q") ", c.score, " FIELD_COLS("r")
             " FROM review_queue rq JOIN fields q ON q.field_id = rq.query_field_id"
             " LEFT JOIN candidates c ON c.query_field_id = rq.query_field_id AND c.rank = 1"
             "  AND c.batch_run_id = (SELECT max(batch_run_id) FROM candidates c2"
             "                        WHERE c2.query_field_id = rq.query_field_id)"
             " LEFT JOIN fields r ON r.field_id = c.ref_field_id"
             " WHERE rq.resolved_at IS NULL" QUEUE_FILTER
             " ORDER BY rq.uncertainty DESC, rq.queued_at, q.vendor, q.id"
             " LIMIT ?1 OFFSET ?2",
             "ii", (int64_t)(limit ? (sqlite3_int64)limit : -1), (int64_t)(sqlite3_int64)offset)))
    goto out;
  bind_filter(s, f);
  while ((step = sqlite3_step(s)) == SQLITE_ROW) {
    if (fm_grow((void **)&out->v, &cap, out->n + 1, sizeof *out->v)) {
      rc = nomem(err, "the review queue");
      goto out;
    }
    fm_queue_item *it = &out->v[out->n];
    memset(it, 0, sizeof *it);
    const int top0 = 6 + NFIELD_COLS + 1;
    if (col_str(&out->arena, s, 0, 0, &it->reason) ||
        col_str(&out->arena, s, 1, 0, &it->queued_at) ||
        read_field(&out->arena, s, 6, &it->query)) {
      rc = nomem(err, "the review queue");
      goto out;
    }
    it->uncertainty = col_real(s, 2);
    it->top_score = col_real(s, 3);
    it->margin = col_real(s, 4);
    it->batch_run = sqlite3_column_int64(s, 5);
    if (sqlite3_column_type(s, top0) != SQLITE_NULL) {
      it->has_top = 1;
      it->top_cand_score = col_real(s, top0 - 1);
      if (read_field(&out->arena, s, top0, &it->top)) {
        rc = nomem(err, "the review queue");
        goto out;
      }
    }
    out->n++;
  }
  if (step != SQLITE_DONE) rc = fm_store_steperr(st, step, err, "read review queue");
out:
  sqlite3_finalize(s);
  fm_store_read_end(st, began);
  return rc;
}

/* ---- one field ------------------------------------------------------------ */

void fm_field_view_free(fm_field_view *v) {
  if (!v) return;
  fm_free(v->cands);
  fm_free(v->decisions);
  fm_arena_free(&v->arena);
  memset(v, 0, sizeof *v);
}

fm_rc fm_review_show(fm_store *st, int64_t query_field, fm_field_view *out,
                     fm_error *err) {
  int began;
  fm_rc rc = read_open(st, out, sizeof *out, &out->arena, &began, err);
  if (rc) return rc;
  sqlite3_stmt *s = NULL;
  size_t cap = 0;
  int step;
  /* The field, its open queue entry and its latest batch run with
   * candidates. */
  if ((rc = fm_store_query(
             st, &s, err,
             "SELECT " FIELD_COLS("f") ", rq.reason,"
             " (SELECT max(batch_run_id) FROM candidates WHERE query_field_id = f.field_id)"
             " FROM fields f LEFT JOIN review_queue rq ON rq.query_field_id = f.field_id"
             "  AND rq.resolved_at IS NULL WHERE f.field_id = ?1",
             "i", (int64_t)query_field)))
    goto out;
  step = sqlite3_step(s);
  if (step == SQLITE_DONE) {
    rc = fm_error_set(err, FM_ERR_NOTFOUND, "query field #%lld is not in the store",
                      (long long)query_field);
    goto out;
  }
  if (step != SQLITE_ROW) {
    rc = fm_store_steperr(st, step, err, "read field");
    goto out;
  }
  if (read_field(&out->arena, s, 0, &out->field) ||
      col_str(&out->arena, s, NFIELD_COLS, 1, &out->queue_reason)) {
    rc = nomem(err, "a field");
    goto out;
  }
  out->queued = out->queue_reason != NULL;
  out->batch_run = sqlite3_column_int64(s, NFIELD_COLS + 1);
  sqlite3_finalize(s);
  s = NULL;
  if (strcmp(out->field.role, "query")) {
    rc = fm_error_set(err, FM_ERR_ARG, "%s %s is a reference field, not a query field",
                      out->field.vendor, out->field.id);
    goto out;
  }

  if (out->batch_run) {
    if ((rc = fm_store_query(st, &s, err,
                             "SELECT c.rank, c.score, m.status, " FIELD_COLS("r")
                             " FROM candidates c JOIN fields r ON r.field_id = c.ref_field_id"
                             " LEFT JOIN mappings m ON m.query_field_id = c.query_field_id"
                             "  AND m.ref_field_id = c.ref_field_id"
                             " WHERE c.batch_run_id = ?1 AND c.query_field_id = ?2 ORDER BY c.rank",
                             "ii", (int64_t)out->batch_run, (int64_t)query_field)))
      goto out;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
      if (fm_grow((void **)&out->cands, &cap, out->ncands + 1, sizeof *out->cands)) {
        rc = nomem(err, "candidates");
        goto out;
      }
      fm_review_cand *c = &out->cands[out->ncands];
      c->rank = sqlite3_column_int(s, 0);
      c->score = col_real(s, 1);
      const char *status;
      if (col_str(&out->arena, s, 2, 1, &status) || read_field(&out->arena, s, 3, &c->ref)) {
        rc = nomem(err, "candidates");
        goto out;
      }
      int ps = status ? fm_map_status_parse(status) : 0;
      c->status = ps > 0 ? (fm_map_status)ps : 0;
      out->ncands++;
    }
    sqlite3_finalize(s);
    s = NULL;
    if (step != SQLITE_DONE) {
      rc = fm_store_steperr(st, step, err, "read candidates");
      goto out;
    }
  }

  cap = 0;
  if ((rc = fm_store_query(st, &s, err,
                           MAPPING_SELECT " WHERE m.query_field_id = ?1"
                           " ORDER BY m.decided_at DESC, m.mapping_id DESC",
                           "i", (int64_t)query_field)))
    goto out;
  while ((step = sqlite3_step(s)) == SQLITE_ROW) {
    if (fm_grow((void **)&out->decisions, &cap, out->ndecisions + 1,
                sizeof *out->decisions) ||
        read_mapping(&out->arena, s, &out->decisions[out->ndecisions])) {
      rc = nomem(err, "mappings");
      goto out;
    }
    out->ndecisions++;
  }
  if (step != SQLITE_DONE) rc = fm_store_steperr(st, step, err, "read mappings");
  for (size_t i = 0; !rc && i < out->ndecisions; i++) {
    if (out->decisions[i].status == FM_MAP_ACCEPTED) out->accepted = &out->decisions[i];
    if (out->decisions[i].status == FM_MAP_NO_EQUIVALENT) out->no_equivalent = &out->decisions[i];
  }
out:
  sqlite3_finalize(s);
  fm_store_read_end(st, began);
  return rc;
}

fm_rc fm_review_accepted(fm_store *st, int64_t query_field, fm_arena *arena,
                         fm_mapping_row *out, int *found, fm_error *err) {
  *found = 0;
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(
      st, MAPPING_SELECT " WHERE m.query_field_id = ?1 AND m.status = 'accepted'", &s, err);
  if (rc) return rc;
  sqlite3_bind_int64(s, 1, query_field);
  int step = sqlite3_step(s);
  if (step == SQLITE_ROW) {
    if (read_mapping(arena, s, out)) rc = nomem(err, "the accepted mapping");
    else *found = 1;
  } else if (step != SQLITE_DONE) {
    rc = fm_store_steperr(st, step, err, "read accepted mapping");
  }
  sqlite3_finalize(s);
  return rc;
}

/* ---- history -------------------------------------------------------------- */

void fm_audit_list_free(fm_audit_list *l) {
  if (l) rows_free(l->v, &l->arena, l, sizeof *l);
}

fm_rc fm_review_history(fm_store *st, int64_t query_field, fm_audit_list *out,
                        fm_error *err) {
  memset(out, 0, sizeof *out);
  fm_arena_init(&out->arena);
  sqlite3_stmt *s;
  fm_rc rc = fm_store_query(st, &s, err,
                            "SELECT audit_id, at, actor, action, entity, entity_key, before, after"
                            " FROM audit_log WHERE entity = 'mapping' AND entity_key IN"
                            " (SELECT mapping_key FROM mappings WHERE query_field_id = ?1)"
                            " ORDER BY audit_id",
                            "i", (int64_t)query_field);
  if (rc) return rc;
  size_t cap = 0;
  int step;
  while ((step = sqlite3_step(s)) == SQLITE_ROW) {
    if (fm_grow((void **)&out->v, &cap, out->n + 1, sizeof *out->v)) {
      rc = nomem(err, "history");
      break;
    }
    fm_audit_row *a = &out->v[out->n];
    a->audit_id = sqlite3_column_int64(s, 0);
    if (col_str(&out->arena, s, 1, 0, &a->at) || col_str(&out->arena, s, 2, 0, &a->actor) ||
        col_str(&out->arena, s, 3, 0, &a->action) ||
        col_str(&out->arena, s, 4, 0, &a->entity) ||
        col_str(&out->arena, s, 5, 0, &a->entity_key) ||
        col_str(&out->arena, s, 6, 1, &a->before) ||
        col_str(&out->arena, s, 7, 1, &a->after)) {
      rc = nomem(err, "history");
      break;
    }
    out->n++;
  }
  if (!rc && step != SQLITE_DONE) rc = fm_store_steperr(st, step, err, "read history");
  sqlite3_finalize(s);
  return rc;
}

/* ---- decisions ------------------------------------------------------------ */

typedef struct apply_ctx {
  const fm_review_req *req;
  int64_t mapping_id;
} apply_ctx;

/* One integer from a query with up to two int64 parameters; *out = 0 when
 * there is no row. */
static fm_rc one_int(fm_store *st, const char *sql, int64_t a, int64_t b, int64_t *out,
                     fm_error *err) {
  sqlite3_stmt *s;
  fm_rc rc = fm_store_query(st, &s, err, sql, "ii", (int64_t)a, (int64_t)b);
  if (rc) return rc;
  int step = sqlite3_step(s);
  *out = step == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
  sqlite3_finalize(s);
  if (step != SQLITE_ROW && step != SQLITE_DONE)
    return fm_store_steperr(st, step, err, "read");
  return FM_OK;
}

/* "vendor id" of a field for messages. */
static void field_label(fm_store *st, int64_t fid, char *out, size_t n) {
  sqlite3_stmt *s;
  snprintf(out, n, "#%lld", (long long)fid);
  if (sqlite3_prepare_v2(fm_store_db(st), "SELECT vendor, id FROM fields WHERE field_id = ?1",
                         -1, &s, NULL) != SQLITE_OK)
    return;
  sqlite3_bind_int64(s, 1, fid);
  if (sqlite3_step(s) == SQLITE_ROW)
    snprintf(out, n, "%s %s", sqlite3_column_text(s, 0), sqlite3_column_text(s, 1));
  sqlite3_finalize(s);
}

static fm_rc comment_body(fm_store *st, const fm_review_req *r, int64_t mid,
                          fm_error *err) {
  char key[20];
  sqlite3_stmt *s;
  fm_rc rc = fm_store_query(st, &s, err,
                            "SELECT mapping_key FROM mappings WHERE mapping_id = ?1",
                            "i", (int64_t)mid);
  if (rc) return rc;
  int step = sqlite3_step(s);
  if (step == SQLITE_ROW) snprintf(key, sizeof key, "%s", sqlite3_column_text(s, 0));
  sqlite3_finalize(s);
  if (step != SQLITE_ROW) return fm_store_steperr(st, step, err, "read mapping");
  /* Comments accumulate, one per line; the audit row carries the new one. */
  if ((rc = fm_store_query(st, &s, err,
                           "UPDATE mappings SET comment = CASE WHEN comment = '' THEN ?2"
                           " ELSE comment || char(10) || ?2 END WHERE mapping_id = ?1",
                           "it", (int64_t)mid, r->comment)))
    return rc;
  step = fm_store_step(st, s);
  sqlite3_finalize(s);
  if (step != SQLITE_DONE) return fm_store_steperr(st, step, err, "add comment");
  json_t *after = json_pack("{s:s}", "comment", r->comment);
  char *txt = after ? json_dumps(after, JSON_COMPACT) : NULL;
  json_decref(after);
  if (!txt) return fm_error_set(err, FM_ERR_NOMEM, "out of memory writing a comment");
  rc = fm_store_audit(st, r->by, "comment", "mapping", key, NULL, txt, err);
  free(txt);
  return rc;
}

static fm_rc apply_body(fm_store *st, void *vctx, fm_error *err) {
  apply_ctx *c = vctx;
  const fm_review_req *r = c->req;
  c->mapping_id = 0;
  char ql[400], rl[400];
  field_label(st, r->query_field, ql, sizeof ql);
  if (r->ref_field) field_label(st, r->ref_field, rl, sizeof rl);
  else snprintf(rl, sizeof rl, "no equivalent");
  fm_rc rc;
  int64_t accepted_ref = 0, accepted_id = 0, mid = 0, none_now = 0;
  if ((rc = one_int(st,
                    "SELECT ref_field_id FROM mappings WHERE query_field_id = ?1"
                    " AND status = 'accepted'",
                    r->query_field, 0, &accepted_ref, err)) ||
      (rc = one_int(st,
                    "SELECT mapping_id FROM mappings WHERE query_field_id = ?1"
                    " AND status IN ('accepted', 'no_equivalent')",
                    r->query_field, 0, &accepted_id, err)) ||
      (rc = one_int(st,
                    "SELECT 1 FROM mappings WHERE query_field_id = ?1"
                    " AND status = 'no_equivalent'",
                    r->query_field, 0, &none_now, err)) ||
      (rc = one_int(st,
                    r->ref_field ? "SELECT mapping_id FROM mappings WHERE query_field_id = ?1"
                                   " AND ref_field_id = ?2"
                                 : "SELECT mapping_id FROM mappings WHERE query_field_id = ?1"
                                   " AND ref_field_id IS NULL AND ?2 = 0",
                    r->query_field, r->ref_field, &mid, err)))
    return rc;
  if (r->expect_ref >= 0 &&
      (r->expect_ref != accepted_ref || (r->expect_none != 0) != (none_now != 0))) {
    char el[400], al[400];
    if (r->expect_ref) field_label(st, r->expect_ref, el, sizeof el);
    else snprintf(el, sizeof el, r->expect_none ? "no equivalent" : "none");
    if (accepted_ref) field_label(st, accepted_ref, al, sizeof al);
    else snprintf(al, sizeof al, none_now ? "no equivalent" : "none");
    return fm_error_set(err, FM_ERR_CONFLICT,
                        "%s: the accepted mapping changed since it was read (expected %s, "
                        "now %s); look again and decide again",
                        ql, el, al);
  }
  if (r->action == FM_REVIEW_COMMENT) {
    if (!mid)
      return fm_error_set(err, FM_ERR_NOTFOUND,
                          "%s -> %s: no mapping to comment on (accept, reject or pick it "
                          "first)",
                          ql, rl);
    c->mapping_id = mid;
    return comment_body(st, r, mid, err);
  }
  if (r->action == FM_REVIEW_ACCEPT && !mid) {
    int64_t is_cand = 0;
    if ((rc = one_int(st,
                      "SELECT 1 FROM candidates WHERE query_field_id = ?1"
                      " AND ref_field_id = ?2 LIMIT 1",
                      r->query_field, r->ref_field, &is_cand, err)))
      return rc;
    if (!is_cand)
      return fm_error_set(err, FM_ERR_ARG,
                          "%s is not a candidate of %s; to map to a reference field the "
                          "model did not offer, use 'review pick'",
                          rl, ql);
  }
  if (r->action == FM_REVIEW_REJECT && !r->ref_field && !none_now)
    return fm_error_set(err, FM_ERR_ARG,
                        "%s is not marked no_equivalent: name the reference to reject", ql);
  fm_decision d = {.query_field = r->query_field,
                   .ref_field = r->action == FM_REVIEW_NONE ? 0 : r->ref_field,
                   .status = r->action == FM_REVIEW_REJECT ? FM_MAP_REJECTED
                             : r->action == FM_REVIEW_NONE ? FM_MAP_NO_EQUIVALENT
                                                           : FM_MAP_ACCEPTED,
                   .actor = r->by,
                   .comment = r->comment,
                   .origin = "analyst",
                   .score = NAN,
                   .expect_accepted = accepted_id,
                   .action = r->action == FM_REVIEW_PICK ? "pick" : NULL};
  /* The score of the candidate being decided, for the record. */
  sqlite3_stmt *s;
  if ((rc = fm_store_query(st, &s, err,
                           "SELECT score FROM candidates WHERE query_field_id = ?1"
                           " AND ref_field_id = ?2 ORDER BY batch_run_id DESC LIMIT 1",
                           "ii", (int64_t)r->query_field, (int64_t)r->ref_field)))
    return rc;
  if (sqlite3_step(s) == SQLITE_ROW) d.score = sqlite3_column_double(s, 0);
  sqlite3_finalize(s);
  return fm_store_decide(st, &d, &c->mapping_id, err);
}

fm_rc fm_review_apply(fm_store *st, const fm_review_req *req, int64_t *mapping_id,
                      fm_error *err) {
  if (!req || req->action < FM_REVIEW_ACCEPT || req->action > FM_REVIEW_NONE)
    return fm_error_set(err, FM_ERR_ARG, "unknown review action");
  if (!req->by || !*req->by)
    return fm_error_set(err, FM_ERR_ARG, "a review decision needs who made it (--by)");
  if (req->action == FM_REVIEW_COMMENT && (!req->comment || !*req->comment))
    return fm_error_set(err, FM_ERR_ARG, "a comment needs text (--comment)");
  /* No reference: NONE always; REJECT of the no-equivalent row. */
  int ref_optional = req->action == FM_REVIEW_NONE || req->action == FM_REVIEW_REJECT ||
                     req->action == FM_REVIEW_COMMENT;
  if (req->query_field <= 0 || req->ref_field < 0 || (!ref_optional && !req->ref_field))
    return fm_error_set(err, FM_ERR_ARG, "a review decision needs a query and a reference field");
  if (req->action == FM_REVIEW_NONE && req->ref_field)
    return fm_error_set(err, FM_ERR_ARG, "no_equivalent takes no reference field");
  apply_ctx c = {.req = req};
  fm_rc rc = fm_store_tx(st, apply_body, &c, err);
  if (rc == FM_OK && mapping_id) *mapping_id = c.mapping_id;
  return rc;
}

typedef struct bulk_ctx {
  const fm_review_req *reqs;
  size_t n, at;
  int64_t *ids;
} bulk_ctx;

static fm_rc bulk_body(fm_store *st, void *vctx, fm_error *err) {
  bulk_ctx *b = vctx;
  for (b->at = 0; b->at < b->n; b->at++) {
    apply_ctx c = {.req = &b->reqs[b->at]};
    fm_rc rc = apply_body(st, &c, err);
    if (rc) return rc;
    if (b->ids) b->ids[b->at] = c.mapping_id;
  }
  return FM_OK;
}

fm_rc fm_review_apply_bulk(fm_store *st, const fm_review_req *reqs, size_t n,
                           int64_t *mapping_ids, size_t *failed, fm_error *err) {
  for (size_t i = 0; i < n; i++) {
    const fm_review_req *r = &reqs[i];
    const char *bad = !r->by || !*r->by ? "a review decision needs who made it"
                      : r->action == FM_REVIEW_COMMENT || r->action < FM_REVIEW_ACCEPT ||
                              r->action > FM_REVIEW_NONE
                          ? "a bulk decision is accept, reject, pick or no_equivalent"
                      : r->query_field <= 0 ? "a review decision needs a query field"
                      : (r->action == FM_REVIEW_NONE) != (r->ref_field == 0) &&
                              r->action != FM_REVIEW_REJECT
                          ? "a review decision needs a reference field (none for "
                            "no_equivalent)"
                          : NULL;
    if (bad) {
      if (failed) *failed = i;
      return fm_error_set(err, FM_ERR_ARG, "decision %zu: %s", i + 1, bad);
    }
  }
  bulk_ctx b = {.reqs = reqs, .n = n, .ids = mapping_ids};
  fm_rc rc = fm_store_tx(st, bulk_body, &b, err);
  if (rc && failed) *failed = b.at;
  return rc;
}
