/* snapshot_lake.c: a lake belongs to one store, and its partitions can be
 * checked against their manifests (docs/snapshot.md, "The lake's owner",
 * "Verifying a lake").
 *
 * The store's id is 128 random bits as 32 hex digits in the one-row table
 * store_identity, created the first time a snapshot needs it (its schema
 * step lives here: only snapshots use it).  The first snapshot run into a
 * root writes <root>/_fieldmatch_lake.json naming that id and the
 * database; a run from another store reads it, refuses, and writes
 * nothing.  Verify walks <root>/<job>/dt=*\/hr=* and re-reads every
 * partition's _manifest.json, the files it lists (size and SHA-256) and
 * _SUCCESS; with a store it also checks the lake's owner
 * (snapshot_verify.c). */
#include "snapshot_internal.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define IDENTITY_SCHEMA                                              \
  "CREATE TABLE IF NOT EXISTS store_identity ("                      \
  "  one        INTEGER PRIMARY KEY CHECK (one = 1),"                \
  "  store_id   TEXT NOT NULL CHECK (length(store_id) = 32),"        \
  "  created_at TEXT NOT NULL)"

/* ---- the store's id ------------------------------------------------------ */

/* Read the id: FM_OK with id "" when the store has none yet. */
static fm_rc read_id(fm_store *st, char id[33], fm_error *err) {
  id[0] = '\0';
  sqlite3_stmt *s;
  if (sqlite3_prepare_v2(fm_store_db(st), "SELECT store_id FROM store_identity WHERE one = 1",
                         -1, &s, NULL) != SQLITE_OK)
    return FM_OK; /* no table yet: no id yet */
  int step = sqlite3_step(s);
  if (step == SQLITE_ROW) {
    const char *v = (const char *)sqlite3_column_text(s, 0);
    snprintf(id, 33, "%s", v ? v : "");
  }
  sqlite3_finalize(s);
  if (step != SQLITE_ROW && step != SQLITE_DONE)
    return fm_store_steperr(st, step, err, "read the store's id");
  return FM_OK;
}

static fm_rc create_id_tx(fm_store *st, void *ctx, fm_error *err) {
  char *id = ctx;
  fm_rc rc = fm_store_exec(st, IDENTITY_SCHEMA, err);
  if (rc || (rc = read_id(st, id, err)) || id[0]) return rc;
  unsigned char b[16];
  if ((rc = fm_random_bytes(b, sizeof b, err))) return rc;
  fm_hex(b, sizeof b, id);
  char now[32];
  fm_store_now(now, sizeof now);
  sqlite3_stmt *s;
  if ((rc = fm_store_prepare(st,
                             "INSERT INTO store_identity (one, store_id, created_at)"
                             " VALUES (1, ?1, ?2)",
                             &s, err)))
    return rc;
  sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, now, -1, SQLITE_STATIC);
  int step = fm_store_step(st, s);
  sqlite3_finalize(s);
  if (step != SQLITE_DONE) return fm_store_steperr(st, step, err, "create the store's id");
  return FM_OK;
}

fm_rc fm_snapshot_store_id(fm_store *st, int create, char id[33], fm_error *err) {
  fm_rc rc = read_id(st, id, err);
  if (rc || id[0] || !create) return rc;
  return fm_store_tx(st, create_id_tx, id, err);
}

/* ---- the lake's owner ------------------------------------------------------ */

/* Read <root>/_fieldmatch_lake.json: *found 0 when there is none; else
 * owner (32 hex) and db (its database path, may be cut). */
static fm_rc read_lake(const char *root, int *found, char owner[33], char *db, size_t dbn,
                       fm_error *err) {
  *found = 0;
  char *path = fm_path_join(root, FM_SNAPSHOT_LAKE_FILE);
  if (!path) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  struct stat sb;
  fm_rc rc = FM_OK;
  if (stat(path, &sb) != 0) {
    if (errno != ENOENT) rc = fm_error_set(err, FM_ERR_IO, "%s: %s", path, strerror(errno));
    fm_free(path);
    return rc;
  }
  json_error_t je;
  json_t *j = json_load_file(path, 0, &je);
  const char *id = j ? json_string_value(json_object_get(j, "store_id")) : NULL;
  const char *d = j ? json_string_value(json_object_get(j, "database")) : NULL;
  if (!id || strlen(id) != 32)
    rc = fm_error_set(err, FM_ERR_PARSE, "%s:%d: not a lake identity file (field store_id)",
                      path, j ? 1 : je.line);
  else {
    *found = 1;
    snprintf(owner, 33, "%s", id);
    snprintf(db, dbn, "%s", d ? d : "");
  }
  json_decref(j);
  fm_free(path);
  return rc;
}

fm_rc fm_snapshot_lake_check(fm_store *st, const char *root, int create, fm_error *err) {
  int found;
  char owner[33], db[1024], ours[33];
  fm_rc rc = read_lake(root, &found, owner, db, sizeof db, err);
  if (rc) return rc;
  if (found) {
    if ((rc = fm_snapshot_store_id(st, 0, ours, err))) return rc;
    if (!strcmp(owner, ours)) return FM_OK;
    return fm_error_set(err, FM_ERR_CONFLICT,
                        "%s: this lake belongs to store %s (database %s), not to store %s "
                        "(database %s); refusing to write to it, nothing was changed",
                        root, owner, db[0] ? db : "?", ours[0] ? ours : "(none yet)",
                        fm_store_path(st));
  }
  if (!create) return FM_OK;
  /* A new lake (or one from before identity files): it is ours now. */
  if ((rc = fm_snapshot_store_id(st, 1, ours, err)) || (rc = fm_mkdirs(root, err)))
    return rc;
  char now[32];
  fm_store_now(now, sizeof now);
  json_t *j = json_pack("{s:i, s:s, s:s, s:s}", "lake_version", 1, "store_id", ours,
                        "database", fm_store_path(st), "created_at", now);
  char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
  json_decref(j);
  char *path = fm_path_join(root, FM_SNAPSHOT_LAKE_FILE);
  if (!text || !path)
    rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  else
    rc = fm_snapshot_write_atomic(path, NULL, text, strlen(text), NULL, err);
  free(text);
  fm_free(path);
  return rc;
}

fm_rc fm_snapshot_lake_claim(fm_store *st, const char *root, fm_error *err) {
  return fm_snapshot_lake_check(st, root, 1, err);
}
