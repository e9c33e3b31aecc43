/* fields.c: importing dictionaries into the store, versioned, without ever
 * deleting an analyst's decision. */
#include "fm_fields.h"
#include "fm_store_sql.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static const char *role_name(fm_role r) {
  return r == FM_ROLE_QUERY ? "query" : "reference";
}

/* fm_hash64_parts as 16 hex digits. */
static void hash_hex(const char *const *parts, int n, char out[17]) {
  snprintf(out, 17, "%016llx",
           (unsigned long long)fm_hash64_parts(FM_HASH64_INIT, parts, n, 0x1f));
}

static void field_hash(const fm_field *f, char out[17]) {
  const char *parts[] = {f->name, f->description, f->type, f->category};
  hash_hex(parts, 4, out);
}

int64_t fm_store_field_id(fm_store *st, const char *vendor, const char *id,
                          fm_role role) {
  sqlite3_stmt *s;
  const char *sql =
      vendor ? "SELECT field_id FROM fields WHERE vendor = ?1 AND id = ?2"
               " AND (?3 = '' OR role = ?3)"
             : "SELECT field_id FROM fields WHERE id = ?2 AND (?3 = '' OR role = ?3)"
               " LIMIT 2";
  if (sqlite3_prepare_v2(fm_store_db(st), sql, -1, &s, NULL) != SQLITE_OK) return -1;
  if (vendor) sqlite3_bind_text(s, 1, vendor, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 3, role ? role_name(role) : "", -1, SQLITE_STATIC);
  int64_t fid = -1;
  if (sqlite3_step(s) == SQLITE_ROW) {
    fid = sqlite3_column_int64(s, 0);
    if (!vendor && sqlite3_step(s) == SQLITE_ROW) fid = -1; /* ambiguous */
  }
  sqlite3_finalize(s);
  return fid;
}

/* ---- import -------------------------------------------------------------- */

typedef struct import_ctx {
  const char *source;
  fm_role role;
  const fm_fieldset *fs;
  const char *actor;
  const char *vendor;
  char checksum[17];
  fm_dict_result res;
} import_ctx;

/* The newest version of c's dictionary: *version is the one this import
 * will get (1 when there is none). When the stored checksum equals
 * c->checksum, fills c->res as "unchanged" and sets *unchanged. The
 * statement is this function's; c stays the caller's. */
static fm_rc latest_version(fm_store *st, import_ctx *c, int *version, int *unchanged,
                            fm_error *err) {
  sqlite3_stmt *latest = NULL;
  fm_rc rc;
  *version = 1;
  *unchanged = 0;
  if ((rc = fm_store_prepare(st,
                             "SELECT dict_id, version, checksum FROM dictionaries"
                             " WHERE vendor = ?1 AND source = ?2"
                             " ORDER BY version DESC LIMIT 1",
                             &latest, err)))
    return rc;
  sqlite3_bind_text(latest, 1, c->vendor, -1, SQLITE_STATIC);
  sqlite3_bind_text(latest, 2, c->source, -1, SQLITE_STATIC);
  int step = fm_store_step(st, latest);
  if (step == SQLITE_ROW) {
    *version = sqlite3_column_int(latest, 1) + 1;
    if (!strcmp((const char *)sqlite3_column_text(latest, 2), c->checksum)) {
      c->res.dict_id = sqlite3_column_int64(latest, 0);
      c->res.version = *version - 1;
      c->res.unchanged = 1;
      c->res.kept = c->fs->n;
      *unchanged = 1;
    }
  } else if (step != SQLITE_DONE) {
    rc = fm_store_steperr(st, step, err, "read dictionaries");
  }
  sqlite3_finalize(latest);
  return rc;
}

/* Inserts the dictionaries row for version `version` of c's dictionary and
 * records its id in c->res and *dict_id. The statement is this function's;
 * c and now stay the caller's. */
static fm_rc insert_dictionary(fm_store *st, import_ctx *c, int version, const char *now,
                               int64_t *dict_id, fm_error *err) {
  sqlite3_stmt *ins_dict = NULL;
  fm_rc rc;
  if ((rc = fm_store_prepare(st,
                             "INSERT INTO dictionaries(vendor, source, role, version,"
                             " checksum, n_fields, imported_at, imported_by)"
                             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                             &ins_dict, err)))
    return rc;
  sqlite3_bind_text(ins_dict, 1, c->vendor, -1, SQLITE_STATIC);
  sqlite3_bind_text(ins_dict, 2, c->source, -1, SQLITE_STATIC);
  sqlite3_bind_text(ins_dict, 3, role_name(c->role), -1, SQLITE_STATIC);
  sqlite3_bind_int(ins_dict, 4, version);
  sqlite3_bind_text(ins_dict, 5, c->checksum, -1, SQLITE_STATIC);
  sqlite3_bind_int64(ins_dict, 6, (sqlite3_int64)c->fs->n);
  sqlite3_bind_text(ins_dict, 7, now, -1, SQLITE_STATIC);
  sqlite3_bind_text(ins_dict, 8, c->actor ? c->actor : "", -1, SQLITE_STATIC);
  int step = fm_store_step(st, ins_dict);
  if (step != SQLITE_DONE) {
    rc = fm_store_steperr(st, step, err, "insert dictionary");
  } else {
    *dict_id = sqlite3_last_insert_rowid(fm_store_db(st));
    c->res.dict_id = *dict_id;
    c->res.version = version;
  }
  sqlite3_finalize(ins_dict);
  return rc;
}

/* The statements the field loop reuses for every field; import_fields
 * prepares and finalizes them, import_field only resets and binds. */
typedef struct field_stmts {
  sqlite3_stmt *get, *ins, *upd, *keep;
} field_stmts;

/* One field of the new version: added, kept (same content, dict_id moved
 * on), or changed (and its mappings flagged). q is import_fields'; f, c and
 * now stay the caller's. */
static fm_rc import_field(fm_store *st, import_ctx *c, const field_stmts *q,
                          const fm_field *f, int64_t dict_id, const char *now,
                          fm_error *err) {
  fm_rc rc;
  char h[17];
  field_hash(f, h);
  sqlite3_reset(q->get);
  sqlite3_bind_text(q->get, 1, c->vendor, -1, SQLITE_STATIC);
  sqlite3_bind_text(q->get, 2, f->id, -1, SQLITE_STATIC);
  int step = fm_store_step(st, q->get);
  if (step == SQLITE_DONE) {
    sqlite3_reset(q->ins);
    sqlite3_bind_text(q->ins, 1, c->vendor, -1, SQLITE_STATIC);
    sqlite3_bind_text(q->ins, 2, f->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q->ins, 3, role_name(c->role), -1, SQLITE_STATIC);
    sqlite3_bind_text(q->ins, 4, f->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(q->ins, 5, f->description, -1, SQLITE_STATIC);
    sqlite3_bind_text(q->ins, 6, f->type, -1, SQLITE_STATIC);
    sqlite3_bind_text(q->ins, 7, f->category, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q->ins, 8, dict_id);
    sqlite3_bind_text(q->ins, 9, h, -1, SQLITE_STATIC);
    sqlite3_bind_text(q->ins, 10, now, -1, SQLITE_STATIC);
    if ((step = fm_store_step(st, q->ins)) != SQLITE_DONE) {
      rc = fm_store_steperr(st, step, err, "insert field");
      fm_error_prefix(err, "%s:%u: field %s", f->source, f->line, f->id);
      return rc;
    }
    c->res.added++;
    return FM_OK;
  }
  if (step != SQLITE_ROW) return fm_store_steperr(st, step, err, "read field");
  int64_t fid = sqlite3_column_int64(q->get, 0);
  int same = !strcmp((const char *)sqlite3_column_text(q->get, 1), h);
  int removed = !strcmp((const char *)sqlite3_column_text(q->get, 2), "removed");
  if (strcmp((const char *)sqlite3_column_text(q->get, 3), role_name(c->role)))
    return fm_error_set(err, FM_ERR_CONFLICT,
                        "%s:%u: field %s of vendor %s is already in the store as a %s "
                        "field, not a %s field",
                        f->source, f->line, f->id, c->vendor,
                        (const char *)sqlite3_column_text(q->get, 3), role_name(c->role));
  sqlite3_reset(q->get);
  if (same && !removed) {
    sqlite3_reset(q->keep);
    sqlite3_bind_int64(q->keep, 1, fid);
    sqlite3_bind_int64(q->keep, 2, dict_id);
    if ((step = fm_store_step(st, q->keep)) != SQLITE_DONE)
      return fm_store_steperr(st, step, err, "update field");
    c->res.kept++;
    return FM_OK;
  }
  sqlite3_reset(q->upd);
  sqlite3_bind_int64(q->upd, 1, fid);
  sqlite3_bind_text(q->upd, 2, f->name, -1, SQLITE_STATIC);
  sqlite3_bind_text(q->upd, 3, f->description, -1, SQLITE_STATIC);
  sqlite3_bind_text(q->upd, 4, f->type, -1, SQLITE_STATIC);
  sqlite3_bind_text(q->upd, 5, f->category, -1, SQLITE_STATIC);
  sqlite3_bind_int64(q->upd, 6, dict_id);
  sqlite3_bind_text(q->upd, 7, h, -1, SQLITE_STATIC);
  sqlite3_bind_text(q->upd, 8, now, -1, SQLITE_STATIC);
  if ((step = fm_store_step(st, q->upd)) != SQLITE_DONE)
    return fm_store_steperr(st, step, err, "update field");
  c->res.changed++;
  /* A field that comes back after removal is "changed" too: whoever
   * accepted a mapping to it should look again. */
  return fm_review_flag_field(st, fid, "field_changed", c->actor, &c->res.flagged, err);
}

/* Every field of c->fs into version dict_id, in file order; a repeated id:
 * the first wins. The statements and the seen-id map are this function's;
 * c and now stay the caller's. */
static fm_rc import_fields(fm_store *st, import_ctx *c, int64_t dict_id, const char *now,
                           fm_error *err) {
  field_stmts q = {0};
  fm_strmap seen;
  fm_strmap_init(&seen);
  fm_rc rc;
  if ((rc = fm_store_prepare(st,
                             "SELECT field_id, content_hash, status, role FROM fields"
                             " WHERE vendor = ?1 AND id = ?2",
                             &q.get, err)) ||
      (rc = fm_store_prepare(st,
                             "INSERT INTO fields(vendor, id, role, name, description, type,"
                             " category, dict_id, content_hash, updated_at)"
                             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                             &q.ins, err)) ||
      (rc = fm_store_prepare(st,
                             "UPDATE fields SET name = ?2, description = ?3, type = ?4,"
                             " category = ?5, dict_id = ?6, content_hash = ?7,"
                             " status = 'active', updated_at = ?8 WHERE field_id = ?1",
                             &q.upd, err)) ||
      (rc = fm_store_prepare(st, "UPDATE fields SET dict_id = ?2 WHERE field_id = ?1",
                             &q.keep, err)))
    goto out;

  for (size_t i = 0; i < c->fs->n; i++) {
    const fm_field *f = &c->fs->v[i];
    int inserted = 0;
    if (fm_strmap_put(&seen, f->id, strlen(f->id), 1, NULL, &inserted)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory importing %s", c->source);
      goto out;
    }
    if (!inserted) continue; /* a repeated id: the first wins */
    if ((rc = import_field(st, c, &q, f, dict_id, now, err))) goto out;
  }

out:
  sqlite3_finalize(q.get);
  sqlite3_finalize(q.ins);
  sqlite3_finalize(q.upd);
  sqlite3_finalize(q.keep);
  fm_strmap_free(&seen);
  return rc;
}

/* Fields of earlier versions of c's dictionary that are gone now: marks them
 * removed and flags their mappings. The statement and the id list are this
 * function's; c and now stay the caller's. */
static fm_rc mark_gone(fm_store *st, import_ctx *c, int64_t dict_id, const char *now,
                       fm_error *err) {
  sqlite3_stmt *gone = NULL;
  fm_rc rc;
  if ((rc = fm_store_prepare(st,
                             "UPDATE fields SET status = 'removed', updated_at = ?4"
                             " WHERE status = 'active' AND dict_id IN (SELECT dict_id"
                             " FROM dictionaries WHERE vendor = ?1 AND source = ?2"
                             " AND dict_id <> ?3) RETURNING field_id",
                             &gone, err)))
    return rc;
  sqlite3_bind_text(gone, 1, c->vendor, -1, SQLITE_STATIC);
  sqlite3_bind_text(gone, 2, c->source, -1, SQLITE_STATIC);
  sqlite3_bind_int64(gone, 3, dict_id);
  sqlite3_bind_text(gone, 4, now, -1, SQLITE_STATIC);
  int64_t *ids = NULL;
  size_t nids = 0, cap = 0;
  int step;
  while ((step = fm_store_step(st, gone)) == SQLITE_ROW) {
    if (fm_grow((void **)&ids, &cap, nids + 1, sizeof *ids)) {
      fm_free(ids);
      sqlite3_finalize(gone);
      return fm_error_set(err, FM_ERR_NOMEM, "out of memory importing %s", c->source);
    }
    ids[nids++] = sqlite3_column_int64(gone, 0);
  }
  sqlite3_finalize(gone);
  if (step != SQLITE_DONE) {
    fm_free(ids);
    return fm_store_steperr(st, step, err, "mark removed fields");
  }
  c->res.removed = nids;
  for (size_t i = 0; i < nids && !rc; i++)
    rc = fm_review_flag_field(st, ids[i], "field_removed", c->actor, &c->res.flagged, err);
  fm_free(ids);
  return rc;
}

/* The import transaction (run by fm_store_tx): a new dictionary version
 * unless the checksum is unchanged, its fields, the removed ones, and one
 * audit row. c (the caller's) receives the counts in c->res. */
static fm_rc import_body(fm_store *st, void *vctx, fm_error *err) {
  import_ctx *c = vctx;
  memset(&c->res, 0, sizeof c->res);
  fm_rc rc;
  char now[32];
  fm_store_now(now, sizeof now);

  int version, unchanged;
  if ((rc = latest_version(st, c, &version, &unchanged, err)) || unchanged) return rc;
  int64_t dict_id = 0;
  if ((rc = insert_dictionary(st, c, version, now, &dict_id, err)) ||
      (rc = import_fields(st, c, dict_id, now, err)) ||
      (rc = mark_gone(st, c, dict_id, now, err)))
    return rc;

  char key[512], after[256];
  snprintf(key, sizeof key, "%s/%s", c->vendor, c->source);
  snprintf(after, sizeof after,
           "{\"version\":%d,\"checksum\":\"%s\",\"added\":%zu,\"changed\":%zu,"
           "\"removed\":%zu,\"kept\":%zu,\"flagged\":%zu}",
           version, c->checksum, c->res.added, c->res.changed, c->res.removed,
           c->res.kept, c->res.flagged);
  return fm_store_audit(st, c->actor, "import", "dictionary", key, NULL, after, err);
}

fm_rc fm_store_import_fields(fm_store *st, const char *source, fm_role role,
                             const fm_fieldset *fs, const char *actor,
                             fm_dict_result *res, fm_error *err) {
  if (!source || !*source) return fm_error_set(err, FM_ERR_ARG, "dictionary has no source name");
  if (role != FM_ROLE_QUERY && role != FM_ROLE_REFERENCE)
    return fm_error_set(err, FM_ERR_ARG, "%s: role must be query or reference", source);
  if (fs->n == 0)
    return fm_error_set(err, FM_ERR_ARG,
                        "%s: dictionary has no fields (refusing to mark every field "
                        "removed)",
                        source);
  import_ctx c = {.source = source, .role = role, .fs = fs, .actor = actor,
                  .vendor = fs->v[0].vendor};
  /* Checksum over the whole dictionary in file order. */
  uint64_t h = FM_HASH64_INIT;
  for (size_t i = 0; i < fs->n; i++) {
    const fm_field *f = &fs->v[i];
    if (strcmp(f->vendor, c.vendor))
      return fm_error_set(err, FM_ERR_ARG,
                          "%s:%u: field %s has vendor '%s', the dictionary is '%s'",
                          f->source, f->line, f->id, f->vendor, c.vendor);
    const char *parts[] = {f->id, f->name, f->description, f->type, f->category};
    /* Invalid UTF-8 never enters the store, whatever importer built fs. */
    static const char *const names[] = {"id", "name", "description", "type", "category"};
    for (int k = 0; k < 5; k++) {
      size_t bad = parts[k] ? fm_utf8_invalid_at(parts[k], strlen(parts[k])) : (size_t)-1;
      if (bad != (size_t)-1)
        return fm_error_set(err, FM_ERR_PARSE,
                            "%s:%u: field '%s': invalid UTF-8 at byte %zu (0x%02X)%s%s%s",
                            f->source ? f->source : source, f->line, names[k], bad,
                            (unsigned char)parts[k][bad], k ? " (id '" : "",
                            k && fm_utf8_invalid_at(f->id, strlen(f->id)) == (size_t)-1 ? f->id
                                                                                    : "",
                            k ? "')" : "");
    }
    h = fm_hash64_parts(h, parts, 5, 0x1e);
  }
  snprintf(c.checksum, sizeof c.checksum, "%016llx", (unsigned long long)h);
  fm_rc rc = fm_store_tx(st, import_body, &c, err);
  if (rc == FM_OK && res) *res = c.res;
  return rc;
}

void fm_store_dict_label(const char *name, fm_role role, char *out, size_t n) {
  snprintf(out, n, "%s:%s", name && *name ? name : "default", role_name(role));
}

fm_rc fm_store_import_set(fm_store *st, const char *name, fm_role role,
                          const fm_fieldset *fs, const char *actor,
                          fm_dict_result *total, fm_error *err) {
  if (total) memset(total, 0, sizeof *total);
  if (fs->n == 0)
    return fm_error_set(err, FM_ERR_ARG, "%s: no %s fields to import", name,
                        role_name(role));
  /* Distinct vendors in first-appearance order. */
  fm_strmap vendors;
  fm_strmap_init(&vendors);
  fm_rc rc = FM_OK;
  for (size_t i = 0; i < fs->n && !rc; i++)
    if (fm_strmap_put(&vendors, fs->v[i].vendor, strlen(fs->v[i].vendor), 0, NULL, NULL))
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory importing %s", name);
  for (size_t vi = 0; vi < fm_strmap_count(&vendors) && !rc; vi++) {
    size_t vlen;
    const char *vendor = fm_strmap_key(&vendors, vi, &vlen);
    fm_fieldset part;
    fm_fieldset_init(&part);
    for (size_t i = 0; i < fs->n && !rc; i++)
      if (strlen(fs->v[i].vendor) == vlen && !memcmp(fs->v[i].vendor, vendor, vlen) &&
          fm_fieldset_add(&part, &fs->v[i]))
        rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory importing %s", name);
    fm_dict_result r = {0};
    if (!rc) rc = fm_store_import_fields(st, name, role, &part, actor, &r, err);
    fm_fieldset_free(&part);
    if (!rc && total) {
      total->dict_id = r.dict_id;
      if (r.version > total->version) total->version = r.version;
      total->unchanged = vi == 0 ? r.unchanged : (total->unchanged && r.unchanged);
      total->added += r.added;
      total->changed += r.changed;
      total->removed += r.removed;
      total->kept += r.kept;
      total->flagged += r.flagged;
    }
  }
  fm_strmap_free(&vendors);
  return rc;
}
