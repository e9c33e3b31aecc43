/* prov_run.c: working provisioning requests off (fm_provision.h): claim
 * one through the lease mechanism (fm_lease.h), materialize its file with
 * the snapshot writer, finish it; recovery after a crash and expiry of
 * old files. */
#include "prov_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

/* ---- claim and finish -------------------------------------------------------- */

/* A request's lease: no owner column, so the holder is fenced by the
 * attempt number; a failed request is not retried; a request claimed
 * FM_PROV_MAX_ATTEMPTS times is given up. */
const fm_lease_table fm_prov_leases = {
    .table = "provision_requests", .status = "status", .owner = NULL,
    .expires = "lease_expires", .attempts = "attempts", .started = "started_at",
    .finished = "finished_at", .error = "error", .pending = "pending",
    .running = "running", .ok = "ready", .failed = "failed", .retry_failed = 0,
    .max_attempts = FM_PROV_MAX_ATTEMPTS};

typedef struct claim_ctx {
  const char *id;
  int lease;
  fm_lease l; /* out */
} claim_ctx;

/* A finished (or given-up) request's file lives ttl_seconds from its
 * finished_at, the instant the lease recorded (from the C clock): counting
 * from SQLite's own 'now' instead would let the two clocks' readings differ
 * by a millisecond on a busy machine, and expires_at - finished_at would not
 * be the TTL the docs promise. */
static fm_rc set_expiry(fm_store *st, const char *id, fm_error *err) {
  return fm_store_run(st, "finishing a request", NULL, err,
                      "UPDATE provision_requests SET expires_at ="
                      " strftime('%Y-%m-%dT%H:%M:%fZ', COALESCE(finished_at, 'now'),"
                      " '+' || ttl_seconds ||"
                      " ' seconds') WHERE id = ?1",
                      "t", id);
}

static fm_rc claim_tx(fm_store *st, void *arg, fm_error *err) {
  claim_ctx *c = arg;
  sqlite3_stmt *s = NULL;
  fm_rc rc = fm_store_query(st, &s, err,
                            "SELECT rowid FROM provision_requests WHERE id = ?1",
                            "t", c->id);
  if (rc) return rc;
  int step = sqlite3_step(s);
  int64_t unit = step == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
  sqlite3_finalize(s);
  if (step != SQLITE_ROW)
    return step == SQLITE_DONE
               ? fm_error_set(err, FM_ERR_NOTFOUND, "no provisioning request '%s'", c->id)
               : fm_store_steperr(st, step, err, "reading a request");
  if ((rc = fm_lease_claim(st, &fm_prov_leases, unit, NULL, c->lease, &c->l, err))) return rc;
  if (c->l.outcome == FM_LEASE_EXHAUSTED) return set_expiry(st, c->id, err);
  if (c->l.outcome != FM_LEASE_CLAIMED)
    return fm_error_set(err, FM_ERR_CONFLICT, "request %s is %s, not claimable", c->id,
                        c->l.status);
  return FM_OK;
}

typedef struct finish_ctx {
  const char *id;
  const fm_lease *l;
  int ok;
  const fm_snapshot_file *f;
  const char *path, *error;
} finish_ctx;

static fm_rc finish_tx(fm_store *st, void *arg, fm_error *err) {
  finish_ctx *c = arg;
  fm_rc rc = fm_lease_finish(st, &fm_prov_leases, c->l, c->ok, c->ok ? NULL : c->error, err);
  if (rc == FM_ERR_CONFLICT)
    return fm_error_set(err, FM_ERR_CONFLICT,
                        "request %s is no longer running (expired or recovered)", c->id);
  if (rc) return rc;
  /* expires_at counts from finished_at, when the file became visible. */
  if ((rc = set_expiry(st, c->id, err)) || !c->ok) return rc;
  return fm_store_run(st, "finishing a request", NULL, err,
                      "UPDATE provision_requests SET rows = ?2, bytes = ?3,"
                      " sha256 = ?4, path = ?5 WHERE id = ?1",
                      "tiitt", c->id, (int64_t)c->f->rows, (int64_t)c->f->bytes, c->f->sha256,
                      c->path);
}

/* ---- writing a table dataset ------------------------------------------------- */

#define MAX_PARAMS (FM_PROV_MAX_FILTERS)

/* Build the SELECT and its parameters for dataset d and canonical filters
 * f.  vals holds the integer renderings (params point into it or into f). */
static fm_rc build_query(const dataset *d, json_t *f, fm_buf *sql, const char **params,
                         int *np, char vals[][32], fm_error *err) {
  *np = 0;
  if (fm_buf_puts(sql, d->select)) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  const char *key;
  json_t *v;
  json_object_foreach(f, key, v) {
    const char *column = NULL;
    const char *op = " = ";
    if (!strcmp(key, "changed_since")) {
      column = d->changed;
      op = " >= ";
    } else {
      const col_filter *c = fm_prov_find_col(d, key);
      column = c ? c->column : NULL;
    }
    const char *text = fm_prov_value_text(v, vals[*np]);
    if (!column || !text || *np >= MAX_PARAMS) /* validated at create: a bug */
      return fm_error_set(err, FM_ERR_INTERNAL, "stored filter '%s' is not valid", key);
    params[*np] = text;
    (*np)++;
    if (fm_buf_printf(sql, "%s%s%s?%d", *np == 1 ? " WHERE " : " AND ", column, op, *np))
      return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  }
  if (fm_buf_puts(sql, d->order)) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  return FM_OK;
}

static fm_rc write_table(fm_store *st, const dataset *d, json_t *f, fm_snapshot_format fmt,
                         const char *path, fm_snapshot_file *out, fm_error *err) {
  fm_buf sql;
  fm_buf_init(&sql);
  const char *params[MAX_PARAMS];
  char vals[MAX_PARAMS][32];
  int np = 0;
  sqlite3 *rdb = NULL;
  fm_rc rc = build_query(d, f, &sql, params, &np, vals, err);
  if (rc) goto done;
  /* Read-only connection: even a bug in build_query cannot write. */
  if (sqlite3_open_v2(fm_store_path(st), &rdb, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
    rc = fm_error_set(err, FM_ERR_DB, "%s: cannot open read-only: %s", fm_store_path(st),
                      rdb ? sqlite3_errmsg(rdb) : "out of memory");
    goto done;
  }
  sqlite3_busy_timeout(rdb, 5000);
  rc = fm_snapshot_write_sql_params(rdb, sql.buf, params, np, fmt, path, out, err);
done:
  sqlite3_close(rdb);
  fm_buf_free(&sql);
  return rc;
}

/* ---- writing a snapshot range ------------------------------------------------ *
 * The catalog's partitions of the job whose hour lies in [from, to], oldest
 * first, each checked against the SHA-256 the catalog recorded.  JSON Lines
 * parts are concatenated byte for byte (a concatenation of gzip members is
 * one valid gzip stream, RFC 1952 2.2).  CSV parts each start with a header
 * row: the first part is copied whole, every later one is decompressed,
 * its header compared with the first one's and dropped, and the rest
 * re-compressed as a new gzip member.  Rows come from the catalog. */

typedef struct cat_out {
  int fd;
  struct sha256_ctx sha;
  uint64_t bytes;
  const char *tmp;
} cat_out;

static fm_rc out_write(cat_out *o, const void *p, size_t n, fm_error *err) {
  const char *c = p;
  sha256_update(&o->sha, n, (const uint8_t *)p);
  o->bytes += n;
  while (n > 0) {
    ssize_t w = write(o->fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return fm_error_set(err, FM_ERR_IO, "%s: write failed: %s", o->tmp, strerror(errno));
    c += w;
    n -= (size_t)w;
  }
  return FM_OK;
}


static fm_rc copy_raw(cat_out *o, const char *path, fm_error *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fm_error_set(err, FM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  unsigned char buf[65536];
  ssize_t r;
  fm_rc rc = FM_OK;
  while (rc == FM_OK && (r = read(fd, buf, sizeof buf)) != 0) {
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      rc = fm_error_set(err, FM_ERR_IO, "%s: read failed: %s", path, strerror(errno));
      break;
    }
    rc = out_write(o, buf, (size_t)r, err);
  }
  close(fd);
  return rc;
}

/* Read a gzip'd CSV's header line (without the newline) into hdr. */
static fm_rc read_csv_header(gzFile g, const char *path, fm_buf *hdr, fm_error *err) {
  fm_buf_reset(hdr);
  int c;
  while ((c = gzgetc(g)) != -1 && c != '\n')
    if (fm_buf_putc(hdr, (char)c)) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  if (c == -1) return fm_error_set(err, FM_ERR_CORRUPT, "%s: no CSV header row", path);
  return FM_OK;
}

/* Append part `path` minus its header row as a new gzip member; its header
 * must equal first_hdr. */
static fm_rc copy_csv_body(cat_out *o, const char *path, const fm_buf *first_hdr,
                           fm_error *err) {
  gzFile g = gzopen(path, "rb");
  if (!g) return fm_error_set(err, FM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  fm_buf hdr;
  fm_buf_init(&hdr);
  z_stream z;
  memset(&z, 0, sizeof z);
  int z_live = 0;
  fm_rc rc = read_csv_header(g, path, &hdr, err);
  if (rc) goto done;
  if (hdr.len != first_hdr->len || memcmp(hdr.buf, first_hdr->buf, hdr.len) != 0) {
    rc = fm_error_set(err, FM_ERR_CONFLICT,
                      "%s: its columns differ from the first partition's; request the "
                      "partitions separately",
                      path);
    goto done;
  }
  if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    rc = fm_error_set(err, FM_ERR_NOMEM, "zlib init failed");
    goto done;
  }
  z_live = 1;
  unsigned char in[65536], outb[65536];
  int n, flush = Z_NO_FLUSH;
  do {
    n = gzread(g, in, sizeof in);
    if (n < 0) {
      int e;
      rc = fm_error_set(err, FM_ERR_CORRUPT, "%s: %s", path, gzerror(g, &e));
      goto done;
    }
    flush = n == 0 ? Z_FINISH : Z_NO_FLUSH;
    z.next_in = in;
    z.avail_in = (uInt)n;
    do {
      z.next_out = outb;
      z.avail_out = sizeof outb;
      deflate(&z, flush);
      if ((rc = out_write(o, outb, sizeof outb - z.avail_out, err))) goto done;
    } while (z.avail_out == 0);
  } while (flush != Z_FINISH);
done:
  if (z_live) deflateEnd(&z);
  gzclose(g);
  fm_buf_free(&hdr);
  return rc;
}

/* Append one catalog row's partition (location, format, rows, sha256 of
 * the range query) to o after checking its format and checksum; the first
 * CSV part gives the header, later ones only their bodies. */
static fm_rc append_partition(cat_out *o, sqlite3_stmt *s, const char *root,
                              fm_snapshot_format fmt, size_t nparts, fm_buf *part, fm_buf *hdr,
                              fm_error *err) {
  const char *loc = (const char *)sqlite3_column_text(s, 0);
  const char *pf = (const char *)sqlite3_column_text(s, 1);
  const char *want = (const char *)sqlite3_column_text(s, 3);
  if ((int)fmt != fm_snapshot_format_parse(pf))
    return fm_error_set(err, FM_ERR_CONFLICT, "partition %s is %s, the request is %s", loc, pf,
                        fm_snapshot_format_name(fmt));
  fm_buf_reset(part);
  if (fm_buf_printf(part, "%s/%s/part-00000.%s", root, loc, pf))
    return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  char got[65];
  fm_rc rc = fm_file_sha256(part->buf, got, err);
  if (rc) return rc;
  if (strcmp(got, want ? want : "") != 0)
    return fm_error_set(err, FM_ERR_CORRUPT, "%s: SHA-256 %s, the catalog says %s", part->buf,
                        got, want ? want : "(none)");
  if (fmt == FM_SNAPSHOT_PARQUET && nparts > 0) /* a Parquet file has one footer */
    return fm_error_set(err, FM_ERR_CONFLICT,
                        "%s: a Parquet snapshot range is provisioned one partition per "
                        "request; request each hour separately (or read the lake directly)",
                        loc);
  if (fmt == FM_SNAPSHOT_CSV_GZ && nparts > 0) return copy_csv_body(o, part->buf, hdr, err);
  if (fmt == FM_SNAPSHOT_CSV_GZ) { /* remember the first part's header */
    gzFile g = gzopen(part->buf, "rb");
    if (!g) return fm_error_set(err, FM_ERR_IO, "%s: cannot open", part->buf);
    rc = read_csv_header(g, part->buf, hdr, err);
    gzclose(g);
    if (rc) return rc;
  }
  return copy_raw(o, part->buf, err);
}

static fm_rc write_snapshot_range(fm_store *st, const char *root, json_t *f,
                                  fm_snapshot_format fmt, const char *path,
                                  fm_snapshot_file *out, fm_error *err) {
  const char *job = json_string_value(json_object_get(f, "job"));
  const char *from = json_string_value(json_object_get(f, "from"));
  const char *to = json_string_value(json_object_get(f, "to"));
  if (!job || !from || !to)
    return fm_error_set(err, FM_ERR_INTERNAL, "stored snapshot filters are not valid");
  sqlite3_stmt *s = NULL;
  /* Hours compare as "YYYY-MM-DDTHH"; from/to are "YYYY-MM-DDTHH:00:00Z". */
  fm_rc rc = fm_store_query(
      st, &s, err,
      "SELECT location, format, rows, sha256, columns FROM catalog WHERE job = ?1"
      " AND dt || 'T' || printf('%02d', hr) BETWEEN substr(?2, 1, 13) AND substr(?3, 1, 13)"
      " ORDER BY dt, hr",
      "ttt", job, from, to);
  if (rc) return rc;
  fm_buf tmp, part, hdr;
  fm_buf_init(&tmp);
  fm_buf_init(&part);
  fm_buf_init(&hdr);
  cat_out o = {.fd = -1};
  char *dir = NULL;
  size_t nparts = 0;
  if (fm_buf_printf(&tmp, "%s.tmp.%ld", path, (long)getpid()) || !(dir = fm_path_dirname(path))) {
    rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
    goto done;
  }
  o.tmp = tmp.buf;
  sha256_init(&o.sha);
  o.fd = open(tmp.buf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (o.fd < 0) {
    rc = fm_error_set(err, FM_ERR_IO, "%s: cannot create: %s", tmp.buf, strerror(errno));
    goto done;
  }
  int step;
  while ((step = sqlite3_step(s)) == SQLITE_ROW) {
    if ((rc = append_partition(&o, s, root, fmt, nparts, &part, &hdr, err))) goto done;
    if (nparts == 0 && !(out->schema_json = fm_prov_dup_text(s, 4, &(int){0}))) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
      goto done;
    }
    out->rows += (uint64_t)sqlite3_column_int64(s, 2);
    nparts++;
  }
  if (step != SQLITE_DONE) {
    rc = fm_store_steperr(st, step, err, "reading the catalog");
    goto done;
  }
  if (nparts == 0) {
    rc = fm_error_set(err, FM_ERR_NOTFOUND,
                      "no succeeded partition of snapshot job '%s' from %s to %s", job, from,
                      to);
    goto done;
  }
  if (fsync(o.fd) != 0 || close(o.fd) != 0) {
    o.fd = -1;
    rc = fm_error_set(err, FM_ERR_IO, "%s: fsync/close failed: %s", tmp.buf, strerror(errno));
    goto done;
  }
  o.fd = -1;
  if (rename(tmp.buf, path) != 0) {
    rc = fm_error_set(err, FM_ERR_IO, "%s: cannot rename to %s: %s", tmp.buf, path,
                      strerror(errno));
    goto done;
  }
  {
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      fsync(dfd);
      close(dfd);
    }
  }
  out->bytes = o.bytes;
  uint8_t dg[SHA256_DIGEST_SIZE];
  sha256_digest(&o.sha, sizeof dg, dg);
  fm_hex(dg, sizeof dg, out->sha256);
done:
  if (o.fd >= 0) close(o.fd);
  if (rc != FM_OK) {
    if (tmp.buf) unlink(tmp.buf);
    fm_snapshot_file_free(out);
    out->rows = out->bytes = 0;
  }
  sqlite3_finalize(s);
  fm_buf_free(&tmp);
  fm_buf_free(&part);
  fm_buf_free(&hdr);
  fm_free(dir);
  return rc;
}

/* ---- materialize ------------------------------------------------------------- */


fm_rc fm_prov_materialize(fm_store *st, const char *root, const char *id, int lease_seconds,
                          fm_error *err) {
  if (!root || !*root) return fm_error_set(err, FM_ERR_ARG, "no provisioning root");
  if (!fm_prov_valid_id(id))
    return fm_error_set(err, FM_ERR_NOTFOUND, "no provisioning request '%s'", id ? id : "");
  claim_ctx cc = {.id = id, .lease = lease_seconds > 0 ? lease_seconds : 600};
  fm_rc rc = fm_store_tx(st, claim_tx, &cc, err);
  if (rc) return rc;
  if (cc.l.outcome == FM_LEASE_EXHAUSTED)
    return fm_error_set(err, FM_ERR_INTERNAL, "request %s: gave up after %d attempts", id,
                        FM_PROV_MAX_ATTEMPTS);
  fm_prov_request r;
  if ((rc = fm_prov_get(st, id, &r, err))) return rc;
  /* Temp files of writers that died (a killed worker's "<id>.<fmt>.tmp.<pid>"). */
  {
    char *pd = fm_prov_dir(root);
    fm_error le;
    fm_error_init(&le);
    if (pd && fm_snapshot_remove_leftovers(pd, 0, NULL, &le))
      fm_warn("provisioning: %s", le.msg);
    fm_free(pd);
  }
  fm_error e;
  fm_error_init(&e);
  fm_snapshot_file f;
  memset(&f, 0, sizeof f);
  fm_buf rel, dir, path;
  fm_buf_init(&rel);
  fm_buf_init(&dir);
  fm_buf_init(&path);
  char *pdir = NULL;
  json_t *filters = json_loads(r.filters, 0, NULL);
  const dataset *d = fm_prov_find_dataset(r.dataset);
  int fmt = fm_snapshot_format_parse(r.format);
  fm_rc wrc;
  if (!filters || !d || fmt < 0) {
    wrc = fm_error_set(&e, filters ? FM_ERR_INTERNAL : FM_ERR_NOMEM,
                       "request %s: stored dataset, format or filters are not valid", id);
  } else if (fm_buf_printf(&rel, "%s.%s", r.id, r.format) || !(pdir = fm_prov_dir(root)) ||
             fm_buf_puts(&dir, pdir) || fm_buf_printf(&path, "%s/%s", pdir, rel.buf)) {
    wrc = fm_error_set(&e, FM_ERR_NOMEM, "out of memory");
  } else if ((wrc = fm_mkdirs(dir.buf, &e)) == FM_OK) {
    wrc = d->cols ? write_table(st, d, filters, (fm_snapshot_format)fmt, path.buf, &f, &e)
                  : write_snapshot_range(st, root, filters, (fm_snapshot_format)fmt,
                                         path.buf, &f, &e);
  }
  finish_ctx fc = {id, &cc.l, wrc == FM_OK, &f, rel.buf, e.msg};
  fm_error ferr;
  fm_error_init(&ferr);
  rc = fm_store_tx(st, finish_tx, &fc, &ferr);
  if (rc != FM_OK && wrc == FM_OK) unlink(path.buf); /* never a file without a ready row */
  if (wrc != FM_OK) {
    fm_error_set(err, wrc, "request %s: %s", id, e.msg);
    rc = wrc;
  } else if (rc != FM_OK) {
    fm_error_set(err, rc, "%s", ferr.msg);
  }
  json_decref(filters);
  fm_snapshot_file_free(&f);
  fm_prov_request_free(&r);
  fm_buf_free(&rel);
  fm_buf_free(&dir);
  fm_buf_free(&path);
  fm_free(pdir);
  return rc;
}

fm_rc fm_prov_run_next(fm_store *st, const char *root, int lease_seconds, int *did,
                       fm_error *err) {
  if (did) *did = 0;
  /* A few tries: another worker may claim the one we picked first. */
  for (int tries = 0; tries < 8; tries++) {
    char now[32], id[FM_PROV_ID_LEN + 1] = "";
    fm_store_now(now, sizeof now);
    sqlite3_stmt *s = NULL;
    fm_rc rc = fm_store_query(st, &s, err,
                              "SELECT id FROM provision_requests WHERE status = 'pending'"
                              " OR (status = 'running' AND lease_expires < ?1)"
                              " ORDER BY created_at, id LIMIT 1",
                              "t", now);
    if (rc) return rc;
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) fm_prov_copy_text(id, sizeof id, s, 0);
    sqlite3_finalize(s);
    if (step == SQLITE_DONE) return FM_OK;
    if (step != SQLITE_ROW) return fm_store_steperr(st, step, err, "finding pending requests");
    fm_error e;
    fm_error_init(&e);
    rc = fm_prov_materialize(st, root, id, lease_seconds, &e);
    if (rc == FM_ERR_CONFLICT && strstr(e.msg, "not claimable")) continue;
    if (did) *did = 1;
    if (rc) fm_error_set(err, rc, "%s", e.msg);
    return rc;
  }
  return FM_OK;
}

/* ---- recovery and expiry ----------------------------------------------------- */

typedef struct count_ctx {
  const char *sql;
  const char *arg;
  size_t n;
} count_ctx;

static fm_rc exec_count_tx(fm_store *st, void *arg, fm_error *err) {
  count_ctx *c = arg;
  c->n = 0;
  sqlite3_stmt *s = NULL;
  fm_rc rc = fm_store_query(st, &s, err, c->sql, "t", c->arg);
  if (rc) return rc;
  int step = fm_store_step(st, s);
  sqlite3_finalize(s);
  if (step != SQLITE_DONE) return fm_store_steperr(st, step, err, "updating requests");
  c->n = (size_t)sqlite3_changes(fm_store_db(st));
  return FM_OK;
}

fm_rc fm_prov_recover(fm_store *st, size_t *n, fm_error *err) {
  return fm_lease_reclaim(st, &fm_prov_leases, 1, n, err);
}

typedef struct expire_ctx {
  const char *id;
  int changed;
} expire_ctx;

static fm_rc expire_one_tx(fm_store *st, void *arg, fm_error *err) {
  expire_ctx *c = arg;
  count_ctx cc = {"UPDATE provision_requests SET status = 'expired', path = NULL"
                  " WHERE id = ?1 AND status IN ('ready','failed')",
                  c->id, 0};
  fm_rc rc = exec_count_tx(st, &cc, err);
  c->changed = (int)cc.n;
  if (rc == FM_OK && cc.n)
    rc = fm_store_audit(st, "provisioning", "provision_expire", "provision_request", c->id,
                        NULL, NULL, err);
  return rc;
}

fm_rc fm_prov_expire(fm_store *st, const char *root, int64_t now, size_t *n, fm_error *err) {
  if (n) *n = 0;
  if (!root || !*root) return fm_error_set(err, FM_ERR_ARG, "no provisioning root");
  char at[32];
  fm_prov_iso_at(now, at);
  sqlite3_stmt *s = NULL;
  fm_rc rc = fm_store_query(st, &s, err,
                            "SELECT id, path FROM provision_requests WHERE status IN"
                            " ('ready','failed') AND expires_at <= ?1 ORDER BY expires_at",
                            "t", at);
  if (rc) return rc;
  /* Collect first: the updates need the write lock, not an open read. */
  typedef struct item {
    char id[FM_PROV_ID_LEN + 1];
    char *path;
  } item;
  item *v = NULL;
  size_t nv = 0, cap = 0;
  int step;
  while ((step = sqlite3_step(s)) == SQLITE_ROW) {
    if (fm_grow((void **)&v, &cap, nv + 1, sizeof *v)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
      break;
    }
    fm_prov_copy_text(v[nv].id, sizeof v[nv].id, s, 0);
    const char *p = (const char *)sqlite3_column_text(s, 1);
    v[nv].path = p ? fm_prov_resolve(root, p) : NULL;
    if (p && !v[nv].path) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
      break;
    }
    nv++;
  }
  if (rc == FM_OK && step != SQLITE_DONE)
    rc = fm_store_steperr(st, step, err, "finding expired requests");
  sqlite3_finalize(s);
  for (size_t i = 0; rc == FM_OK && i < nv; i++) {
    if (v[i].path && unlink(v[i].path) != 0 && errno != ENOENT) {
      rc = fm_error_set(err, FM_ERR_IO, "cannot remove %s: %s", v[i].path, strerror(errno));
      break;
    }
    expire_ctx c = {v[i].id, 0};
    if ((rc = fm_store_tx(st, expire_one_tx, &c, err))) break;
    if (n) *n += (size_t)c.changed;
  }
  for (size_t i = 0; i < nv; i++) fm_free(v[i].path);
  fm_free(v);
  return rc;
}
