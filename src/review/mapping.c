/* mapping.c: the one write path for mapping decisions (proposals from batch
 * runs, analyst accept / reject / pick, imported spreadsheets), each with its
 * audit row in the same transaction. */
#include "fm_review.h"
#include "fm_store_sql.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const status_names[] = {NULL, "proposed", "accepted", "rejected",
                                           "superseded", "no_equivalent"};

const char *fm_map_status_name(fm_map_status s) {
  return s >= FM_MAP_PROPOSED && s <= FM_MAP_NO_EQUIVALENT ? status_names[s] : "unknown";
}

int fm_map_status_parse(const char *s) {
  for (int i = FM_MAP_PROPOSED; i <= FM_MAP_NO_EQUIVALENT; i++)
    if (s && !strcmp(s, status_names[i])) return i;
  return -1;
}

/* A mapping row as JSON text for the audit log (caller frees with free()),
 * or NULL when the row does not exist. */
static char *row_json(fm_store *st, int64_t mapping_id) {
  sqlite3_stmt *s;
  if (sqlite3_prepare_v2(
          fm_store_db(st),
          "SELECT m.mapping_key, q.vendor, q.id, r.vendor, r.id, m.status, m.origin,"
          " m.score, m.decided_by, m.decided_at, m.comment, m.flag"
          " FROM mappings m JOIN fields q ON q.field_id = m.query_field_id"
          " LEFT JOIN fields r ON r.field_id = m.ref_field_id WHERE m.mapping_id = ?1",
          -1, &s, NULL) != SQLITE_OK)
    return NULL;
  sqlite3_bind_int64(s, 1, mapping_id);
  char *out = NULL;
  if (sqlite3_step(s) == SQLITE_ROW) {
    json_t *o = json_object();
    const char *keys[] = {"key", "query_vendor", "query", "ref_vendor", "ref", "status",
                          "origin", "score", "by", "at", "comment", "flag"};
    for (int i = 0; i < 12; i++) {
      int t = sqlite3_column_type(s, i);
      json_t *v = t == SQLITE_NULL    ? json_null()
                  : t == SQLITE_FLOAT ? json_real(sqlite3_column_double(s, i))
                  : t == SQLITE_INTEGER
                      ? json_integer(sqlite3_column_int64(s, i))
                      : json_string((const char *)sqlite3_column_text(s, i));
      json_object_set_new(o, keys[i], v ? v : json_null());
    }
    out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
  }
  sqlite3_finalize(s);
  return out;
}

typedef struct field_facts {
  int64_t id;
  char vendor[128], fid[256], role[16], status[16];
} field_facts;

static fm_rc load_field(fm_store *st, int64_t id, field_facts *f, const char *what,
                        fm_error *err) {
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(
      st, "SELECT vendor, id, role, status FROM fields WHERE field_id = ?1", &s, err);
  if (rc) return rc;
  sqlite3_bind_int64(s, 1, id);
  int step = sqlite3_step(s);
  if (step == SQLITE_ROW) {
    f->id = id;
    snprintf(f->vendor, sizeof f->vendor, "%s", sqlite3_column_text(s, 0));
    snprintf(f->fid, sizeof f->fid, "%s", sqlite3_column_text(s, 1));
    snprintf(f->role, sizeof f->role, "%s", sqlite3_column_text(s, 2));
    snprintf(f->status, sizeof f->status, "%s", sqlite3_column_text(s, 3));
  }
  sqlite3_finalize(s);
  if (step == SQLITE_DONE)
    return fm_error_set(err, FM_ERR_NOTFOUND, "%s field #%lld is not in the store", what,
                        (long long)id);
  if (step != SQLITE_ROW) return fm_store_steperr(st, step, err, "read field");
  return FM_OK;
}

/* Run one UPDATE/INSERT with up to 8 text/int parameters already bound. */
static fm_rc step_done(fm_store *st, sqlite3_stmt *s, const char *what, fm_error *err) {
  int step = fm_store_step(st, s);
  sqlite3_finalize(s);
  if (step != SQLITE_DONE) return fm_store_steperr(st, step, err, what);
  return FM_OK;
}

/* Change one row's status with an audit row (before/after). */
static fm_rc set_status(fm_store *st, int64_t mapping_id, const char *key,
                        const char *status, const char *action, const fm_decision *d,
                        const char *now, fm_error *err) {
  char *before = row_json(st, mapping_id);
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(st,
                              "UPDATE mappings SET status = ?2, decided_by = ?3,"
                              " decided_at = ?4 WHERE mapping_id = ?1",
                              &s, err);
  if (rc) {
    free(before);
    return rc;
  }
  sqlite3_bind_int64(s, 1, mapping_id);
  sqlite3_bind_text(s, 2, status, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 3, d->actor ? d->actor : "", -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 4, now, -1, SQLITE_STATIC);
  rc = step_done(st, s, "update mapping", err);
  if (rc == FM_OK) {
    char *after = row_json(st, mapping_id);
    rc = fm_store_audit(st, d->actor, action, "mapping", key, before, after, err);
    free(after);
  }
  free(before);
  return rc;
}

typedef struct decide_ctx {
  const fm_decision *d;
  int64_t mapping_id;
} decide_ctx;

/* Check decision d on its fields q and r (r zeroed when d has no reference):
 * roles, status, and that only no_equivalent (or withdrawing it, a
 * rejection) goes without a reference.  Sets *err; owns nothing. */
static fm_rc check_decision(const fm_decision *d, const field_facts *q, const field_facts *r,
                            int none, fm_error *err) {
  if (strcmp(q->role, "query"))
    return fm_error_set(err, FM_ERR_ARG, "%s %s is a reference field, not a query field",
                        q->vendor, q->fid);
  if (!none && strcmp(r->role, "reference"))
    return fm_error_set(err, FM_ERR_ARG, "%s %s is a query field, not a reference field",
                        r->vendor, r->fid);
  if (d->status != FM_MAP_PROPOSED && d->status != FM_MAP_ACCEPTED &&
      d->status != FM_MAP_REJECTED && d->status != FM_MAP_NO_EQUIVALENT)
    return fm_error_set(err, FM_ERR_ARG,
                        "a decision is proposed, accepted, rejected or no_equivalent");
  if (none != (d->status == FM_MAP_NO_EQUIVALENT) && !(none && d->status == FM_MAP_REJECTED))
    return fm_error_set(err, FM_ERR_ARG,
                        none ? "%s: a %s decision needs a reference field"
                             : "%s: no_equivalent takes no reference field",
                        q->fid, fm_map_status_name(d->status));
  return FM_OK;
}

/* The first row of prepared statement s (bound by the caller, finalized
 * here): its column 0 into *id and column 1's text into text[n]; both left
 * as they are when there is no row.  `what` names the read in errors. */
static fm_rc read_id_text(fm_store *st, sqlite3_stmt *s, int64_t *id, char *text, size_t n,
                          const char *what, fm_error *err) {
  int step = sqlite3_step(s);
  if (step == SQLITE_ROW) {
    *id = sqlite3_column_int64(s, 0);
    snprintf(text, n, "%s", sqlite3_column_text(s, 1));
  }
  sqlite3_finalize(s);
  if (step != SQLITE_ROW && step != SQLITE_DONE) return fm_store_steperr(st, step, err, what);
  return FM_OK;
}

/* Supersede the open proposals of query field q other than the pair with
 * reference r (0: none), each with its audit row.  In chunks: each pass
 * supersedes what it read, so the next finds the rest. */
static fm_rc supersede_proposals(fm_store *st, int64_t q, int64_t r, const fm_decision *d,
                                 const char *now, fm_error *err) {
  fm_rc rc;
  for (int n = 64; n == 64;) {
    sqlite3_stmt *s;
    if ((rc = fm_store_prepare(st,
                               "SELECT mapping_id, mapping_key FROM mappings"
                               " WHERE query_field_id = ?1 AND status = 'proposed'"
                               " AND ref_field_id IS NOT ?2 LIMIT 64",
                               &s, err)))
      return rc;
    sqlite3_bind_int64(s, 1, q);
    if (r) sqlite3_bind_int64(s, 2, r);
    int64_t ids[64];
    char keys[64][20];
    int step;
    n = 0;
    while (n < 64 && (step = sqlite3_step(s)) == SQLITE_ROW) {
      ids[n] = sqlite3_column_int64(s, 0);
      snprintf(keys[n], sizeof keys[n], "%s", sqlite3_column_text(s, 1));
      n++;
    }
    sqlite3_finalize(s);
    for (int i = 0; i < n; i++)
      if ((rc = set_status(st, ids[i], keys[i], "superseded", "supersede", d, now, err)))
        return rc;
  }
  return FM_OK;
}

/* Write the pair's row: update row *mid, or insert it under key when *mid
 * is 0 (then *mid is the new id); then its audit row with the row before
 * and after.  The JSON copies are this function's (freed here). */
static fm_rc write_row(fm_store *st, const fm_decision *d, const field_facts *q,
                       const field_facts *r, int none, const char *key, const char *now,
                       int64_t *mid, fm_error *err) {
  sqlite3_stmt *s = NULL;
  fm_rc rc;
  char *before = *mid ? row_json(st, *mid) : NULL;
  if (*mid) {
    rc = fm_store_prepare(st,
                          "UPDATE mappings SET status = ?2, decided_by = ?3,"
                          " decided_at = ?4, comment = CASE WHEN ?5 IS NULL THEN comment"
                          " ELSE ?5 END, score = COALESCE(?6, score),"
                          " batch_run_id = COALESCE(?7, batch_run_id),"
                          " flag = CASE WHEN ?2 = 'proposed' THEN flag ELSE NULL END"
                          " WHERE mapping_id = ?1",
                          &s, err);
    if (!rc) sqlite3_bind_int64(s, 1, *mid);
  } else {
    rc = fm_store_prepare(st,
                          "INSERT INTO mappings(mapping_key, query_field_id, ref_field_id,"
                          " status, decided_by, decided_at, comment, score, batch_run_id,"
                          " origin, created_at)"
                          " VALUES (?8, ?9, ?10, ?2, ?3, ?4, COALESCE(?5, ''), ?6, ?7,"
                          " ?11, ?4)",
                          &s, err);
    if (!rc) {
      sqlite3_bind_text(s, 8, key, -1, SQLITE_STATIC);
      sqlite3_bind_int64(s, 9, q->id);
      if (!none) sqlite3_bind_int64(s, 10, r->id);
      sqlite3_bind_text(s, 11, d->origin ? d->origin : "analyst", -1, SQLITE_STATIC);
    }
  }
  if (rc) {
    free(before);
    return rc;
  }
  sqlite3_bind_text(s, 2, fm_map_status_name(d->status), -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 3, d->decided_by ? d->decided_by : d->actor ? d->actor : "", -1,
                    SQLITE_STATIC);
  sqlite3_bind_text(s, 4, d->decided_at ? d->decided_at : now, -1, SQLITE_STATIC);
  if (d->comment) sqlite3_bind_text(s, 5, d->comment, -1, SQLITE_STATIC);
  if (!isnan(d->score)) sqlite3_bind_double(s, 6, d->score);
  if (d->batch_run > 0) sqlite3_bind_int64(s, 7, d->batch_run);
  if ((rc = step_done(st, s, *mid ? "update mapping" : "insert mapping", err))) {
    free(before);
    return rc;
  }
  if (!*mid) *mid = sqlite3_last_insert_rowid(fm_store_db(st));
  char *after = row_json(st, *mid);
  const char *action = d->action                           ? d->action
                       : d->status == FM_MAP_NO_EQUIVALENT ? "no_equivalent"
                       : d->status == FM_MAP_ACCEPTED      ? "accept"
                       : d->status == FM_MAP_REJECTED ? "reject"
                                                      : "propose";
  rc = fm_store_audit(st, d->actor, action, "mapping", key, before, after, err);
  free(before);
  free(after);
  return rc;
}

/* The review queue follows field q's state: a terminal decision (accepted
 * or no_equivalent) resolves its entry; rejecting the decided row
 * (requeue set) puts the field back in the queue. */
static fm_rc follow_queue(fm_store *st, const fm_decision *d, int64_t q, int terminal,
                          int requeue, const char *now, fm_error *err) {
  sqlite3_stmt *s;
  fm_rc rc;
  if (terminal) {
    if ((rc = fm_store_prepare(st,
                               "UPDATE review_queue SET resolved_at = ?2, resolved_by = ?3"
                               " WHERE query_field_id = ?1 AND resolved_at IS NULL",
                               &s, err)))
      return rc;
    sqlite3_bind_int64(s, 1, q);
    sqlite3_bind_text(s, 2, now, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, d->actor ? d->actor : "", -1, SQLITE_STATIC);
    return step_done(st, s, "resolve review queue", err);
  }
  if (!requeue) return FM_OK;
  if ((rc = fm_store_prepare(
           st,
           "INSERT INTO review_queue(query_field_id, reason, uncertainty, queued_at)"
           " VALUES (?1, 'accepted_rejected', 1.0, ?2)"
           " ON CONFLICT(query_field_id) DO UPDATE SET resolved_at = NULL,"
           " resolved_by = NULL, reason = 'accepted_rejected', queued_at = ?2",
           &s, err)))
    return rc;
  sqlite3_bind_int64(s, 1, q);
  sqlite3_bind_text(s, 2, now, -1, SQLITE_STATIC);
  return step_done(st, s, "requeue field", err);
}

/* The one decision path (fm_store_decide's transaction body): check, read
 * the field's decided row and the pair's row, supersede, write the row and
 * its audit, and let the queue follow. */
static fm_rc decide_body(fm_store *st, void *vctx, fm_error *err) {
  decide_ctx *c = vctx;
  const fm_decision *d = c->d;
  field_facts q, r;
  fm_rc rc;
  /* No reference: the pair (query, none), the field's no-equivalent row. */
  int none = d->ref_field == 0;
  memset(&r, 0, sizeof r);
  if ((rc = load_field(st, d->query_field, &q, "query", err)) ||
      (!none && (rc = load_field(st, d->ref_field, &r, "reference", err))) ||
      (rc = check_decision(d, &q, &r, none, err)))
    return rc;

  char now[32];
  fm_store_now(now, sizeof now);
  char key[20];
  fm_store_mapping_key(q.vendor, q.fid, r.vendor, r.fid, key);

  /* The field's decided row now, accepted or no_equivalent (0 = none). */
  sqlite3_stmt *s;
  if ((rc = fm_store_prepare(st,
                             "SELECT mapping_id, mapping_key FROM mappings"
                             " WHERE query_field_id = ?1"
                             " AND status IN ('accepted', 'no_equivalent')",
                             &s, err)))
    return rc;
  sqlite3_bind_int64(s, 1, q.id);
  int64_t accepted = 0;
  char accepted_key[20] = "";
  if ((rc = read_id_text(st, s, &accepted, accepted_key, sizeof accepted_key,
                         "read accepted mapping", err)))
    return rc;
  if (d->expect_accepted >= 0 && d->expect_accepted != accepted)
    return fm_error_set(err, FM_ERR_CONFLICT,
                        "%s: its decision changed since it was read (expected "
                        "#%lld, now #%lld); reload and decide again",
                        q.fid, (long long)d->expect_accepted, (long long)accepted);

  /* The pair's row, if any. */
  if ((rc = fm_store_prepare(st,
                             "SELECT mapping_id, status FROM mappings"
                             " WHERE query_field_id = ?1 AND ref_field_id IS ?2",
                             &s, err)))
    return rc;
  sqlite3_bind_int64(s, 1, q.id);
  if (!none) sqlite3_bind_int64(s, 2, r.id);
  int64_t mid = 0;
  char old_status[16] = "";
  if ((rc = read_id_text(st, s, &mid, old_status, sizeof old_status, "read mapping", err)))
    return rc;

  if (d->status == FM_MAP_PROPOSED && mid &&
      (!strcmp(old_status, "accepted") || !strcmp(old_status, "rejected")))
    return fm_error_set(err, FM_ERR_CONFLICT,
                        "%s -> %s was already %s by an analyst; a proposal does not "
                        "override that",
                        q.fid, r.fid, old_status);

  /* Accepting (or no_equivalent) supersedes the field's other decided row
   * and its open proposals. */
  int terminal = d->status == FM_MAP_ACCEPTED || d->status == FM_MAP_NO_EQUIVALENT;
  if (terminal) {
    if (accepted && accepted != mid &&
        (rc = set_status(st, accepted, accepted_key, "superseded", "supersede", d, now, err)))
      return rc;
    if ((rc = supersede_proposals(st, q.id, none ? 0 : r.id, d, now, err))) return rc;
  }
  int was_decided = accepted && accepted == mid;
  if ((rc = write_row(st, d, &q, &r, none, key, now, &mid, err))) return rc;
  if ((rc = follow_queue(st, d, q.id, terminal, d->status == FM_MAP_REJECTED && was_decided,
                         now, err)))
    return rc;
  c->mapping_id = mid;
  return FM_OK;
}

fm_rc fm_store_decide(fm_store *st, const fm_decision *d, int64_t *mapping_id,
                      fm_error *err) {
  /* Invalid UTF-8 never enters the store (the HTTP API's JSON is valid by
   * construction; this is every other caller's gate). */
  const char *texts[] = {d->actor, d->comment, d->origin};
  static const char *const names[] = {"actor", "comment", "origin"};
  for (int k = 0; k < 3; k++) {
    size_t bad = texts[k] ? fm_utf8_invalid_at(texts[k], strlen(texts[k])) : (size_t)-1;
    if (bad != (size_t)-1)
      return fm_error_set(err, FM_ERR_ARG, "decision: %s: invalid UTF-8 at byte %zu (0x%02X)",
                          names[k], bad, (unsigned char)texts[k][bad]);
  }
  decide_ctx c = {.d = d};
  fm_rc rc = fm_store_tx(st, decide_body, &c, err);
  if (rc == FM_OK && mapping_id) *mapping_id = c.mapping_id;
  return rc;
}

/* fm_store_has_accepted's statement, prepared once per store. */
static const char *const has_accepted_sql =
    "SELECT 1 FROM fields f JOIN mappings m"
    " ON m.query_field_id = f.field_id AND m.status = 'accepted'"
    " WHERE f.role = 'query' AND f.id = ?1 LIMIT 1";

fm_rc fm_store_has_accepted(fm_store *st, const char *query_id, int *yes, fm_error *err) {
  *yes = 0;
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare_cached(st, has_accepted_sql, &s, err);
  if (rc) return rc;
  sqlite3_bind_text(s, 1, query_id, -1, SQLITE_STATIC);
  int step = sqlite3_step(s);
  if (step == SQLITE_ROW) *yes = 1;
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  if (step != SQLITE_ROW && step != SQLITE_DONE)
    return fm_store_steperr(st, step, err, "look up accepted mapping");
  return FM_OK;
}
