/* prov_admin.c: an operator's hand on one provisioning request
 * (fm_prov_resume, fm_prov_fail; docs/provision.md, "From the command
 * line"): a request killed mid-write stays running until its lease runs
 * out, and only a server start used to recover it.  Both change the row in
 * one transaction with its audit row; a worker still holding the old lease
 * is fenced (its finish matches no row: the status or attempt changed), so
 * it publishes nothing and removes its file.  The caller owns every
 * argument. */
#include "prov_internal.h"

#include <string.h>

typedef struct admin_ctx {
  const char *id, *by, *reason;
  int fail;     /* 1: fail, 0: resume */
  char was[16]; /* out: the status before */
} admin_ctx;

static fm_rc admin_tx(fm_store *st, void *arg, fm_error *err) {
  admin_ctx *c = arg;
  sqlite3_stmt *s = NULL;
  fm_rc rc = fm_store_query(st, &s, err,
                            "SELECT status FROM provision_requests WHERE id = ?1",
                            "t", c->id);
  if (rc) return rc;
  int step = sqlite3_step(s);
  if (step == SQLITE_ROW) fm_prov_copy_text(c->was, sizeof c->was, s, 0);
  sqlite3_finalize(s);
  if (step == SQLITE_DONE)
    return fm_error_set(err, FM_ERR_NOTFOUND, "no provisioning request '%s'", c->id);
  if (step != SQLITE_ROW) return fm_store_steperr(st, step, err, "reading the request");
  int open = !strcmp(c->was, "pending") || !strcmp(c->was, "running");
  if (c->fail ? !open : !(open || !strcmp(c->was, "failed")))
    return fm_error_set(err, FM_ERR_CONFLICT, "request %s is %s: it cannot be %s", c->id,
                        c->was, c->fail ? "failed" : "resumed");
  char msg[300];
  snprintf(msg, sizeof msg, "failed by %s%s%.200s", c->by, c->reason ? ": " : "",
           c->reason ? c->reason : "");
  /* resume: back to pending, the lease dropped; a failed request gets its
   * attempts back.  attempts is kept for a running one, so the next claim
   * (attempts + 1) fences the worker that held it. */
  const char *sql =
      c->fail ? "UPDATE provision_requests SET status = 'failed', error = ?2, lease_expires = NULL,"
                " finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),"
                " expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || ttl_seconds ||"
                " ' seconds') WHERE id = ?1"
              : "UPDATE provision_requests SET status = 'pending', error = NULL,"
                " lease_expires = NULL, finished_at = NULL, expires_at = NULL, path = NULL,"
                " attempts = CASE status WHEN 'failed' THEN 0 ELSE attempts END WHERE id = ?1";
  if ((rc = fm_store_prepare(st, sql, &s, err))) return rc;
  sqlite3_bind_text(s, 1, c->id, -1, SQLITE_STATIC);
  if (c->fail) sqlite3_bind_text(s, 2, msg, -1, SQLITE_STATIC);
  step = fm_store_step(st, s);
  sqlite3_finalize(s);
  if (step != SQLITE_DONE) return fm_store_steperr(st, step, err, "updating the request");
  return fm_store_audit(st, c->by, c->fail ? "provision_fail" : "provision_resume",
                        "provision_request", c->id, NULL, NULL, err);
}

fm_rc fm_prov_resume(fm_store *st, const char *id, const char *by, fm_error *err) {
  if (!fm_prov_valid_id(id))
    return fm_error_set(err, FM_ERR_NOTFOUND, "no provisioning request '%s'", id ? id : "");
  admin_ctx c = {.id = id, .by = by && *by ? by : "operator", .fail = 0};
  return fm_store_tx(st, admin_tx, &c, err);
}

fm_rc fm_prov_fail(fm_store *st, const char *id, const char *by, const char *reason,
                   fm_error *err) {
  if (!fm_prov_valid_id(id))
    return fm_error_set(err, FM_ERR_NOTFOUND, "no provisioning request '%s'", id ? id : "");
  admin_ctx c = {.id = id, .by = by && *by ? by : "operator", .reason = reason, .fail = 1};
  return fm_store_tx(st, admin_tx, &c, err);
}
