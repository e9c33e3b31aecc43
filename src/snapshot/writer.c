/* writer.c: one SELECT's rows to a gzip'd CSV or JSON Lines file (or, through
 * writer_parquet.c, a Parquet file),
 * atomically, with its row count, size and SHA-256; and the small
 * filesystem helpers (fsync a directory, mkdir -p, atomic small files) the
 * snapshot and provisioning code share. */
#include "snapshot_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <nettle/sha2.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

const char *fm_snapshot_format_name(fm_snapshot_format f) {
  switch (f) {
  case FM_SNAPSHOT_CSV_GZ: return "csv.gz";
  case FM_SNAPSHOT_JSONL_GZ: return "jsonl.gz";
  case FM_SNAPSHOT_PARQUET: return "parquet";
  }
  return "?";
}

int fm_snapshot_format_parse(const char *s) {
  if (s && !strcmp(s, "csv.gz")) return FM_SNAPSHOT_CSV_GZ;
  if (s && !strcmp(s, "jsonl.gz")) return FM_SNAPSHOT_JSONL_GZ;
  if (s && !strcmp(s, "parquet")) return FM_SNAPSHOT_PARQUET;
  return -1;
}

void fm_snapshot_file_free(fm_snapshot_file *f) {
  if (!f) return;
  fm_free(f->schema_json);
  f->schema_json = NULL;
}

void fm_snapshot_die_at(const char *stage) {
  const char *want = getenv("FM_SNAPSHOT_DIE_AT");
  if (stage && want && !strcmp(want, stage)) raise(SIGKILL);
}

/* ---- filesystem helpers ----------------------------------------------------- */

fm_rc fm_snapshot_fsync_dir(const char *path, fm_error *err) {
  int fd = open(path, O_RDONLY | O_DIRECTORY);
  if (fd < 0)
    return fm_error_set(err, FM_ERR_IO, "%s: cannot open directory: %s", path,
                        strerror(errno));
  int bad = fsync(fd) != 0 && errno != EINVAL; /* some file systems refuse */
  int e = errno;
  close(fd);
  if (bad) return fm_error_set(err, FM_ERR_IO, "%s: fsync failed: %s", path, strerror(e));
  return FM_OK;
}

fm_rc fm_snapshot_rmdir_flat(const char *path, fm_error *err) {
  DIR *d = opendir(path);
  if (!d) {
    if (errno == ENOENT) return FM_OK;
    return fm_error_set(err, FM_ERR_IO, "%s: cannot open directory: %s", path,
                        strerror(errno));
  }
  fm_rc rc = FM_OK;
  struct dirent *de;
  fm_buf b;
  fm_buf_init(&b);
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    fm_buf_reset(&b);
    if (fm_buf_printf(&b, "%s/%s", path, de->d_name)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
      break;
    }
    if (unlink(b.buf) != 0 && errno != ENOENT) {
      rc = fm_error_set(err, FM_ERR_IO, "%s: cannot remove: %s", b.buf, strerror(errno));
      break;
    }
  }
  closedir(d);
  fm_buf_free(&b);
  if (rc == FM_OK && rmdir(path) != 0 && errno != ENOENT)
    rc = fm_error_set(err, FM_ERR_IO, "%s: cannot remove directory: %s", path,
                      strerror(errno));
  return rc;
}

/* ---- the output stream: gzip -> fd, counting bytes and hashing them --------- */

typedef struct out_stream {
  int fd;
  const char *path; /* the temp path, for messages */
  z_stream z;
  int z_live;
  struct sha256_ctx sha;
  uint64_t bytes;
  unsigned char obuf[65536];
} out_stream;

static fm_rc write_all(out_stream *o, const unsigned char *p, size_t n, fm_error *err) {
  sha256_update(&o->sha, n, p);
  o->bytes += n;
  while (n > 0) {
    ssize_t w = write(o->fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return fm_error_set(err, FM_ERR_IO, "%s: write failed: %s", o->path, strerror(errno));
    }
    p += w;
    n -= (size_t)w;
  }
  return FM_OK;
}

/* Compress n bytes (flush = Z_NO_FLUSH) or finish the stream (Z_FINISH). */
static fm_rc deflate_some(out_stream *o, const void *p, size_t n, int flush,
                          fm_error *err) {
  o->z.next_in = (Bytef *)(uintptr_t)p;
  o->z.avail_in = (uInt)n;
  for (;;) {
    o->z.next_out = o->obuf;
    o->z.avail_out = sizeof o->obuf;
    int zr = deflate(&o->z, flush);
    if (zr == Z_STREAM_ERROR)
      return fm_error_set(err, FM_ERR_INTERNAL, "%s: zlib deflate failed", o->path);
    size_t have = sizeof o->obuf - o->z.avail_out;
    if (have) {
      fm_rc rc = write_all(o, o->obuf, have, err);
      if (rc) return rc;
    }
    if (flush == Z_FINISH ? zr == Z_STREAM_END : o->z.avail_out != 0) break;
  }
  return FM_OK;
}

/* Rows are batched in line so deflate sees 64 KiB at a time. */
static fm_rc emit(out_stream *o, fm_buf *line, int force, fm_error *err) {
  if (!force && line->len < 65536) return FM_OK;
  fm_rc rc = deflate_some(o, line->buf, line->len, Z_NO_FLUSH, err);
  fm_buf_reset(line);
  return rc;
}

/* ---- row formatting ----------------------------------------------------------- */

static fm_rc put_hex(fm_buf *b, const unsigned char *p, int n) {
  if (fm_grow((void **)&b->buf, &b->cap, b->len + 2 * (size_t)n + 1, 1)) return FM_ERR_NOMEM;
  fm_hex(p, (size_t)n, b->buf + b->len);
  b->len += 2 * (size_t)n;
  return FM_OK;
}


static fm_rc csv_row(sqlite3_stmt *s, int ncol, fm_buf *b) {
  for (int c = 0; c < ncol; c++) {
    if (c && fm_buf_putc(b, ',')) return FM_ERR_NOMEM;
    fm_rc rc = FM_OK;
    switch (sqlite3_column_type(s, c)) {
    case SQLITE_NULL: break;
    case SQLITE_INTEGER:
      rc = fm_buf_printf(b, "%lld", (long long)sqlite3_column_int64(s, c));
      break;
    case SQLITE_FLOAT: rc = fm_buf_printf(b, "%.17g", sqlite3_column_double(s, c)); break;
    case SQLITE_BLOB:
      rc = put_hex(b, sqlite3_column_blob(s, c), sqlite3_column_bytes(s, c));
      break;
    default: {
      const char *t = (const char *)sqlite3_column_text(s, c);
      rc = fm_buf_csv_cell(b, t ? t : "", (size_t)sqlite3_column_bytes(s, c), 1);
    }
    }
    if (rc) return FM_ERR_NOMEM;
  }
  return fm_buf_putc(b, '\n');
}

/* One JSON object; FM_ERR_PARSE when a text value is not UTF-8. */
static fm_rc json_row(sqlite3_stmt *s, int ncol, fm_buf *b, int *badcol) {
  json_t *o = json_object();
  if (!o) return FM_ERR_NOMEM;
  fm_rc rc = FM_OK;
  fm_buf hex;
  fm_buf_init(&hex);
  for (int c = 0; c < ncol && rc == FM_OK; c++) {
    json_t *v = NULL;
    switch (sqlite3_column_type(s, c)) {
    case SQLITE_NULL: v = json_null(); break;
    case SQLITE_INTEGER: v = json_integer((json_int_t)sqlite3_column_int64(s, c)); break;
    case SQLITE_FLOAT: v = json_real(sqlite3_column_double(s, c)); break;
    case SQLITE_BLOB:
      fm_buf_reset(&hex);
      if (put_hex(&hex, sqlite3_column_blob(s, c), sqlite3_column_bytes(s, c)) ||
          fm_buf_append(&hex, "", 0))
        rc = FM_ERR_NOMEM;
      else v = json_stringn(hex.buf, hex.len);
      break;
    default: {
      const char *t = (const char *)sqlite3_column_text(s, c);
      v = json_stringn(t ? t : "", (size_t)sqlite3_column_bytes(s, c));
      if (!v) {
        *badcol = c;
        rc = FM_ERR_PARSE;
      }
    }
    }
    if (rc == FM_OK && (!v || json_object_set_new(o, sqlite3_column_name(s, c), v)))
      rc = FM_ERR_NOMEM;
  }
  fm_buf_free(&hex);
  if (rc == FM_OK) {
    char *d = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    if (!d || fm_buf_puts(b, d) || fm_buf_putc(b, '\n')) rc = FM_ERR_NOMEM;
    free(d);
  }
  json_decref(o);
  return rc;
}

static char *schema_of(sqlite3_stmt *s, int ncol) {
  json_t *a = json_array();
  for (int c = 0; a && c < ncol; c++) {
    const char *t = sqlite3_column_decltype(s, c);
    json_t *col = json_pack("{s:s, s:s}", "name", sqlite3_column_name(s, c), "type",
                            t && *t ? t : "ANY");
    if (!col || json_array_append_new(a, col)) {
      json_decref(a);
      return NULL;
    }
  }
  char *d = a ? json_dumps(a, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(a);
  char *r = d ? fm_strdup(d) : NULL;
  free(d);
  return r;
}

/* ---- the writer ----------------------------------------------------------------- */

/* Prepares sql as exactly one read-only SELECT that returns columns and binds
 * params (may be NULL when nparams is 0) as text to ?1..?nparams. *s is the
 * caller's to finalize, on failure too; sql, params and path stay the
 * caller's. */
static fm_rc prepare_query(sqlite3 *db, const char *sql, const char *const *params,
                           int nparams, const char *path, sqlite3_stmt **s, fm_error *err) {
  const char *tail = NULL;
  if (sqlite3_prepare_v2(db, sql, -1, s, &tail) != SQLITE_OK)
    return fm_error_set(err, FM_ERR_ARG, "%s: bad query: %s", path, sqlite3_errmsg(db));
  while (tail && (*tail == ' ' || *tail == '\n' || *tail == '\t' || *tail == ';')) tail++;
  if (!*s || (tail && *tail) || !sqlite3_stmt_readonly(*s) || sqlite3_column_count(*s) == 0)
    return fm_error_set(err, FM_ERR_ARG,
                        "%s: the query must be exactly one read-only SELECT", path);
  if (nparams < 0 || sqlite3_bind_parameter_count(*s) != nparams)
    return fm_error_set(err, FM_ERR_ARG, "%s: the query has %d parameters, %d given", path,
                        sqlite3_bind_parameter_count(*s), nparams);
  for (int i = 0; i < nparams; i++)
    if (!params[i] ||
        sqlite3_bind_text(*s, i + 1, params[i], -1, SQLITE_TRANSIENT) != SQLITE_OK)
      return fm_error_set(err, params[i] ? FM_ERR_NOMEM : FM_ERR_ARG,
                          "%s: cannot bind parameter %d", path, i + 1);
  return FM_OK;
}

/* The last step of every format: the FM_SNAPSHOT_DIE_AT hook, the rename of
 * the finished temp file onto path, and an fsync of dir. All strings stay
 * the caller's; the caller unlinks tmp when this fails. */
static fm_rc publish(const char *tmp, const char *path, const char *dir,
                     const char *die_stage, fm_error *err) {
  fm_snapshot_die_at(die_stage);
  if (rename(tmp, path) != 0)
    return fm_error_set(err, FM_ERR_IO, "%s: cannot rename to %s: %s", tmp, path,
                        strerror(errno));
  return fm_snapshot_fsync_dir(dir, err);
}

/* The CSV header (the column names) into line, which stays the caller's. */
static fm_rc csv_header(sqlite3_stmt *s, int ncol, fm_buf *line, const char *path,
                        fm_error *err) {
  for (int c = 0; c < ncol; c++) {
    const char *n = sqlite3_column_name(s, c);
    if ((c && fm_buf_putc(line, ',')) || fm_buf_csv_cell(line, n, strlen(n), 1))
      return fm_error_set(err, FM_ERR_NOMEM, "%s: out of memory", path);
  }
  if (fm_buf_putc(line, '\n')) return fm_error_set(err, FM_ERR_NOMEM, "%s: out of memory", path);
  return FM_OK;
}

/* Streams s's rows as a gzip'd CSV or JSON Lines file into o->path (the temp
 * file), counting them in out->rows, then fsyncs and closes it. o and line
 * are write_core's: it frees o's zlib state, closes o->fd when still >= 0
 * and unlinks the temp file on failure. drop_rows is a test hook. */
static fm_rc write_gz(sqlite3 *db, sqlite3_stmt *s, int ncol, fm_snapshot_format fmt,
                      out_stream *o, fm_buf *line, const char *path, int drop_rows,
                      fm_snapshot_file *out, fm_error *err) {
  fm_rc rc;
  sha256_init(&o->sha);
  o->fd = open(o->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (o->fd < 0)
    return fm_error_set(err, FM_ERR_IO, "%s: cannot create: %s", o->path, strerror(errno));
  /* windowBits 15 + 16: a gzip wrapper with mtime 0, so the same rows give
   * the same bytes. */
  if (deflateInit2(&o->z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return fm_error_set(err, FM_ERR_NOMEM, "%s: zlib init failed", path);
  o->z_live = 1;
  if (fmt == FM_SNAPSHOT_CSV_GZ && (rc = csv_header(s, ncol, line, path, err))) return rc;
  int step;
  while ((step = sqlite3_step(s)) == SQLITE_ROW) {
    if (drop_rows > 0) { /* test hook: lose a row on the way out */
      drop_rows--;
      continue;
    }
    int badcol = -1;
    fm_rc r = fmt == FM_SNAPSHOT_CSV_GZ ? csv_row(s, ncol, line)
                                         : json_row(s, ncol, line, &badcol);
    if (r == FM_ERR_PARSE)
      return fm_error_set(err, FM_ERR_PARSE,
                          "%s: row %llu, column '%s': text is not valid UTF-8", path,
                          (unsigned long long)out->rows + 1, sqlite3_column_name(s, badcol));
    if (r) return fm_error_set(err, FM_ERR_NOMEM, "%s: out of memory", path);
    out->rows++;
    if ((rc = emit(o, line, 0, err))) return rc;
  }
  if (step != SQLITE_DONE)
    return fm_error_set(err, (step & 0xff) == SQLITE_BUSY ? FM_ERR_BUSY : FM_ERR_DB,
                        "%s: reading rows: %s", path, sqlite3_errmsg(db));
  if ((rc = emit(o, line, 1, err))) return rc;
  if ((rc = deflate_some(o, NULL, 0, Z_FINISH, err))) return rc;
  if (fsync(o->fd) != 0)
    return fm_error_set(err, FM_ERR_IO, "%s: fsync failed: %s", o->path, strerror(errno));
  if (close(o->fd) != 0) {
    o->fd = -1;
    return fm_error_set(err, FM_ERR_IO, "%s: close failed: %s", o->path, strerror(errno));
  }
  o->fd = -1;
  return FM_OK;
}

/* The writer behind every public entry point: params (may be NULL when
 * nparams is 0) are bound as text to ?1..?nparams. Owns the statement, the
 * output stream, the temp path and the read transaction (when it began
 * one); out is the caller's, its schema_json freed again on failure. */
static fm_rc write_core(sqlite3 *db, const char *sql, const char *const *params,
                        int nparams, fm_snapshot_format fmt, const char *path,
                        int drop_rows, const char *die_stage, fm_snapshot_file *out,
                        fm_error *err) {
  memset(out, 0, sizeof *out);
  if (!db || !sql || !path || fm_snapshot_format_parse(fm_snapshot_format_name(fmt)) < 0)
    return fm_error_set(err, FM_ERR_ARG, "snapshot writer: bad arguments for %s",
                        path ? path : "(no path)");
  fm_rc rc = FM_OK;
  sqlite3_stmt *s = NULL;
  out_stream *o = NULL;
  fm_buf line, tmp;
  fm_buf_init(&line);
  fm_buf_init(&tmp);
  char *dir = NULL;
  int own_tx = sqlite3_get_autocommit(db);
  int ncol = 0;

  if (own_tx && sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
    rc = fm_error_set(err, FM_ERR_DB, "%s: begin read: %s", path, sqlite3_errmsg(db));
    own_tx = 0;
    goto done;
  }
  if ((rc = prepare_query(db, sql, params, nparams, path, &s, err))) goto done;
  ncol = sqlite3_column_count(s);
  if (!(out->schema_json = schema_of(s, ncol))) {
    rc = fm_error_set(err, FM_ERR_NOMEM, "%s: out of memory", path);
    goto done;
  }
  if (!(o = fm_calloc(1, sizeof *o)) || fm_buf_printf(&tmp, "%s.tmp.%ld", path, (long)getpid()) ||
      !(dir = fm_path_dirname(path))) {
    rc = fm_error_set(err, FM_ERR_NOMEM, "%s: out of memory", path);
    goto done;
  }
  o->fd = -1;
  o->path = tmp.buf;
  if (fmt == FM_SNAPSHOT_PARQUET) { /* its own streaming encoder; same rename */
    if ((rc = fm_snapshot_write_parquet_rows(db, s, tmp.buf, drop_rows, out, err))) goto done;
    rc = publish(tmp.buf, path, dir, die_stage, err);
    goto done;
  }
  if ((rc = write_gz(db, s, ncol, fmt, o, &line, path, drop_rows, out, err)) ||
      (rc = publish(tmp.buf, path, dir, die_stage, err)))
    goto done;
  out->bytes = o->bytes;
  uint8_t dg[SHA256_DIGEST_SIZE];
  sha256_digest(&o->sha, sizeof dg, dg);
  fm_hex(dg, sizeof dg, out->sha256);

done:
  if (o) {
    if (o->z_live) deflateEnd(&o->z);
    if (o->fd >= 0) close(o->fd);
    if (rc != FM_OK && tmp.buf) unlink(tmp.buf);
    fm_free(o);
  }
  sqlite3_finalize(s);
  if (own_tx) sqlite3_exec(db, rc == FM_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
  if (rc != FM_OK) {
    fm_snapshot_file_free(out);
    out->rows = out->bytes = 0;
  }
  fm_buf_free(&line);
  fm_buf_free(&tmp);
  fm_free(dir);
  return rc;
}

fm_rc fm_snapshot_write_sql_ex(sqlite3 *db, const char *sql, fm_snapshot_format fmt,
                               const char *path, int drop_rows, const char *die_stage,
                               fm_snapshot_file *out, fm_error *err) {
  return write_core(db, sql, NULL, 0, fmt, path, drop_rows, die_stage, out, err);
}

fm_rc fm_snapshot_write_sql(sqlite3 *db, const char *sql, fm_snapshot_format fmt,
                            const char *path, fm_snapshot_file *out, fm_error *err) {
  return write_core(db, sql, NULL, 0, fmt, path, 0, NULL, out, err);
}

fm_rc fm_snapshot_write_sql_params(sqlite3 *db, const char *sql, const char *const *params,
                                   int nparams, fm_snapshot_format fmt, const char *path,
                                   fm_snapshot_file *out, fm_error *err) {
  return write_core(db, sql, params, nparams, fmt, path, 0, NULL, out, err);
}

fm_rc fm_snapshot_write_atomic(const char *path, const char *tmp_path, const void *p,
                               size_t len, const char *die_stage, fm_error *err) {
  fm_buf tmp;
  fm_buf_init(&tmp);
  char *dir = fm_path_dirname(path);
  if (!dir || (tmp_path ? fm_buf_puts(&tmp, tmp_path)
                        : fm_buf_printf(&tmp, "%s.tmp.%ld", path, (long)getpid()))) {
    fm_free(dir);
    fm_buf_free(&tmp);
    return fm_error_set(err, FM_ERR_NOMEM, "out of memory writing %s", path);
  }
  fm_rc rc = FM_OK;
  int fd = open(tmp.buf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    rc = fm_error_set(err, FM_ERR_IO, "%s: cannot create: %s", tmp.buf, strerror(errno));
    goto done;
  }
  const char *c = p;
  size_t left = len;
  while (left > 0) {
    ssize_t w = write(fd, c, left);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      rc = fm_error_set(err, FM_ERR_IO, "%s: write failed: %s", tmp.buf, strerror(errno));
      break;
    }
    c += w;
    left -= (size_t)w;
  }
  if (rc == FM_OK && fsync(fd) != 0)
    rc = fm_error_set(err, FM_ERR_IO, "%s: fsync failed: %s", tmp.buf, strerror(errno));
  if (close(fd) != 0 && rc == FM_OK)
    rc = fm_error_set(err, FM_ERR_IO, "%s: close failed: %s", tmp.buf, strerror(errno));
  if (rc == FM_OK) fm_snapshot_die_at(die_stage);
  if (rc == FM_OK && rename(tmp.buf, path) != 0)
    rc = fm_error_set(err, FM_ERR_IO, "%s: cannot rename to %s: %s", tmp.buf, path,
                      strerror(errno));
  if (rc == FM_OK) rc = fm_snapshot_fsync_dir(dir, err);
  if (rc != FM_OK) unlink(tmp.buf);
done:
  fm_free(dir);
  fm_buf_free(&tmp);
  return rc;
}
