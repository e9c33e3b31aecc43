/* writer.c: the streaming Parquet writer: rows into per-column pages,
 * pages compressed into per-column chunks, chunks written to the file as
 * a row group when the buffered size passes the bound, then the footer. */
#include "pq_writer.h"

#include <errno.h>
#include <snappy-c.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#ifndef FM_VERSION
#define FM_VERSION "unknown"
#endif

#define PQ_MAX_VALUE (256u << 20) /* longest string value */
#define PQ_MAX_STAT 4096          /* longest string min/max statistic */

const char *fm_pq_codec_name(fm_pq_codec c) {
  switch (c) {
  case FM_PQ_ZSTD: return "zstd";
  case FM_PQ_SNAPPY: return "snappy";
  case FM_PQ_UNCOMPRESSED: return "uncompressed";
  }
  return "?";
}

int fm_pq_codec_parse(const char *s) {
  for (int c = FM_PQ_ZSTD; c <= FM_PQ_UNCOMPRESSED; c++)
    if (s && !strcmp(s, fm_pq_codec_name((fm_pq_codec)c))) return c;
  return -1;
}

/* ---- lifetime ---------------------------------------------------------- */

static void free_rowgroups(fm_pq_writer *w) {
  for (size_t g = 0; g < w->nrgs; g++) {
    for (size_t c = 0; c < w->ncols; c++) {
      fm_free(w->rgs[g].cols[c].min);
      fm_free(w->rgs[g].cols[c].max);
    }
    fm_free(w->rgs[g].cols);
  }
  fm_free(w->rgs);
}

static void writer_free(fm_pq_writer *w) {
  if (w->fp) fclose(w->fp);
  for (size_t c = 0; c < w->ncols; c++) {
    pq_col *col = &w->cols[c];
    fm_free(col->name);
    fm_buf_free(&col->values);
    fm_free(col->defs);
    fm_free(col->idx);
    fm_strmap_free(&col->dict);
    fm_buf_free(&col->chunk);
    fm_buf_free(&col->stats.smin);
    fm_buf_free(&col->stats.smax);
  }
  fm_free(w->cols);
  free_rowgroups(w);
  fm_buf_free(&w->page);
  fm_buf_free(&w->comp);
  fm_buf_free(&w->hdr);
  ZSTD_freeCCtx(w->zctx);
  fm_free(w->created_by);
  fm_free(w->path);
  fm_free(w);
}

void fm_parquet_writer_abort(fm_pq_writer *w) {
  if (!w) return;
  if (w->fp) {
    fclose(w->fp);
    w->fp = NULL;
    unlink(w->path);
  }
  writer_free(w);
}

/* Record the first failure (rc and message) so later calls repeat it. */
fm_rc fm_pq_fail(fm_pq_writer *w, fm_error *err, fm_rc rc, const char *fmt, ...) {
  char msg[FM_ERRMSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (w->failed == FM_OK) {
    w->failed = rc;
    fm_error_set(&w->failmsg, rc, "%s", msg);
  }
  return fm_error_set(err, rc, "%s", msg);
}

static fm_rc check_schema(const fm_pq_column *cols, size_t ncols, const char *path,
                          fm_error *err) {
  if (!cols || ncols == 0 || ncols > 32767)
    return fm_error_set(err, FM_ERR_ARG, "%s: a Parquet schema needs 1 to 32767 columns",
                        path);
  for (size_t c = 0; c < ncols; c++) {
    const char *n = cols[c].name;
    size_t len = n ? strlen(n) : 0, at = 0, l;
    if (len == 0)
      return fm_error_set(err, FM_ERR_ARG, "%s: column %zu has no name", path, c + 1);
    while (at < len && (l = fm_utf8_char_len(n + at, len - at)) > 0) at += l;
    if (at < len)
      return fm_error_set(err, FM_ERR_ARG, "%s: column %zu: name is not valid UTF-8",
                          path, c + 1);
    if ((unsigned)cols[c].type > FM_PQ_BOOLEAN)
      return fm_error_set(err, FM_ERR_ARG, "%s: column \"%s\": unknown type %d", path, n,
                          (int)cols[c].type);
    for (size_t d = 0; d < c; d++)
      if (!strcmp(cols[d].name, n))
        return fm_error_set(err, FM_ERR_ARG, "%s: column \"%s\" appears twice", path, n);
  }
  return FM_OK;
}

static fm_rc set_options(fm_pq_writer *w, const fm_pq_options *o, fm_error *err) {
  fm_pq_options d = {0};
  if (!o) o = &d;
  w->codec = o->codec;
  w->zstd_level = o->zstd_level ? o->zstd_level : 3;
  w->row_group_bytes = o->row_group_bytes ? o->row_group_bytes : (size_t)64 << 20;
  w->page_bytes = o->page_bytes ? o->page_bytes : (size_t)1 << 20;
  if ((unsigned)w->codec > FM_PQ_UNCOMPRESSED)
    return fm_error_set(err, FM_ERR_ARG, "%s: unknown compression codec %d", w->path,
                        (int)o->codec);
  if (w->zstd_level < ZSTD_minCLevel() || w->zstd_level > ZSTD_maxCLevel())
    return fm_error_set(err, FM_ERR_ARG, "%s: zstd level %d outside %d..%d", w->path,
                        w->zstd_level, ZSTD_minCLevel(), ZSTD_maxCLevel());
  if (w->row_group_bytes < 4096 || w->row_group_bytes > ((size_t)1 << 30))
    return fm_error_set(err, FM_ERR_ARG, "%s: row_group_bytes %zu outside 4 KiB..1 GiB",
                        w->path, w->row_group_bytes);
  if (w->page_bytes < 1024 || w->page_bytes > ((size_t)64 << 20))
    return fm_error_set(err, FM_ERR_ARG, "%s: page_bytes %zu outside 1 KiB..64 MiB", w->path,
                        w->page_bytes);
  w->dict_bytes = o->dictionary_bytes ? o->dictionary_bytes : (size_t)1 << 20;
  if (w->dict_bytes < 1024 || w->dict_bytes > ((size_t)64 << 20))
    return fm_error_set(err, FM_ERR_ARG, "%s: dictionary_bytes %zu outside 1 KiB..64 MiB",
                        w->path, w->dict_bytes);
  if (o->no_dictionary) w->dict_bytes = 0;
  w->observe = o->observe;
  w->observe_ctx = o->observe_ctx;
  w->created_by = fm_strdup(o->created_by ? o->created_by : "fieldmatch version " FM_VERSION);
  if (!w->created_by) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  return FM_OK;
}

fm_rc fm_parquet_writer_open(fm_pq_writer **out, const char *path,
                             const fm_pq_column *cols, size_t ncols,
                             const fm_pq_options *opts, fm_error *err) {
  *out = NULL;
  if (!path || !*path) return fm_error_set(err, FM_ERR_ARG, "parquet writer: no path");
  fm_rc rc = check_schema(cols, ncols, path, err);
  if (rc) return rc;
  fm_pq_writer *w = fm_calloc(1, sizeof *w);
  if (!w) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  fm_error_init(&w->failmsg);
  w->path = fm_strdup(path);
  w->cols = fm_calloc(ncols, sizeof *w->cols);
  if (!w->path || !w->cols) {
    writer_free(w);
    return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  }
  w->ncols = ncols;
  for (size_t c = 0; c < ncols; c++) {
    w->cols[c].type = cols[c].type;
    w->cols[c].nullable = cols[c].nullable != 0;
    if (!(w->cols[c].name = fm_strdup(cols[c].name))) {
      writer_free(w);
      return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
    }
  }
  if ((rc = set_options(w, opts, err))) {
    writer_free(w);
    return rc;
  }
  for (size_t c = 0; c < ncols; c++) {
    fm_strmap_init(&w->cols[c].dict);
    w->cols[c].dict_on = w->dict_bytes > 0 && w->cols[c].type == FM_PQ_STRING;
  }
  if (w->codec == FM_PQ_ZSTD && !(w->zctx = ZSTD_createCCtx())) {
    writer_free(w);
    return fm_error_set(err, FM_ERR_NOMEM, "out of memory (zstd context)");
  }
  w->fp = fopen(path, "wbe"); /* e: close-on-exec (glibc) */
  if (!w->fp) {
    rc = fm_error_set(err, FM_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    writer_free(w);
    return rc;
  }
  if ((rc = fm_pq_write(w, "PAR1", 4, err))) {
    fm_parquet_writer_abort(w);
    return rc;
  }
  *out = w;
  return FM_OK;
}

uint64_t fm_parquet_rows(const fm_pq_writer *w) { return w ? w->rows : 0; }

/* ---- pages ------------------------------------------------------------- */

/* Compress w->page into w->comp (or point at w->page when uncompressed);
 * sets *data and *n. */
fm_rc fm_pq_compress(fm_pq_writer *w, const char **data, size_t *n, fm_error *err) {
  const char *src = w->page.buf;
  size_t len = w->page.len, cap, got;
  if (w->codec == FM_PQ_UNCOMPRESSED) {
    *data = src;
    *n = len;
    return FM_OK;
  }
  cap = w->codec == FM_PQ_ZSTD ? ZSTD_compressBound(len) : snappy_max_compressed_length(len);
  if (fm_grow((void **)&w->comp.buf, &w->comp.cap, cap + 1, 1))
    return fm_pq_fail(w, err, FM_ERR_NOMEM, "out of memory");
  if (w->codec == FM_PQ_ZSTD) {
    got = ZSTD_compressCCtx(w->zctx, w->comp.buf, cap, src, len, w->zstd_level);
    if (ZSTD_isError(got))
      return fm_pq_fail(w, err, FM_ERR_INTERNAL, "%s: zstd: %s", w->path, ZSTD_getErrorName(got));
  } else {
    got = cap;
    if (snappy_compress(src, len, w->comp.buf, &got) != SNAPPY_OK)
      return fm_pq_fail(w, err, FM_ERR_INTERNAL, "%s: snappy compression failed", w->path);
  }
  *data = w->comp.buf;
  *n = got;
  return FM_OK;
}

/* The body of a data page v1: definition levels (4-byte length, RLE
 * hybrid, bit width 1) when OPTIONAL, then the values: dictionary indices
 * when the page has any (a page of NULLs only is PLAIN and empty), else
 * PLAIN. */
static fm_rc build_page(fm_pq_writer *w, pq_col *col) {
  fm_buf *p = &w->page;
  fm_buf_reset(p);
  if (col->nullable) {
    unsigned char len4[4] = {0};
    if (fm_buf_append(p, len4, 4) ||
        fm_pq_rle_encode(p, col->defs, NULL, col->ndefs, 1))
      return FM_ERR_NOMEM;
    fm_pq_le32((unsigned char *)p->buf, (uint32_t)(p->len - 4));
  }
  if (col->nidx > 0) return fm_pq_dict_indices(w, col);
  if (col->type != FM_PQ_BOOLEAN) return fm_buf_append(p, col->values.buf, col->values.len);
  /* BOOLEAN PLAIN: bit-packed, least significant bit first. */
  size_t nv = col->values.len, at = p->len, nb = (nv + 7) / 8;
  if (fm_grow((void **)&p->buf, &p->cap, at + nb + 1, 1)) return FM_ERR_NOMEM;
  memset(p->buf + at, 0, nb);
  for (size_t i = 0; i < nv; i++)
    if (col->values.buf[i]) p->buf[at + i / 8] |= (char)(1u << (i % 8));
  p->len = at + nb;
  return FM_OK;
}

/* Encode, compress and append the current page of col to its chunk. */
static fm_rc flush_page(fm_pq_writer *w, pq_col *col, fm_error *err) {
  if (col->page_values == 0) return FM_OK;
  if (build_page(w, col)) return fm_pq_fail(w, err, FM_ERR_NOMEM, "out of memory");
  const char *data = NULL;
  size_t n = 0;
  fm_rc rc = fm_pq_compress(w, &data, &n, err);
  if (rc) return rc;
  fm_buf_reset(&w->hdr);
  fm_tc t;
  fm_tc_init(&t, &w->hdr);
  fm_tc_i32(&t, 1, 0); /* type: DATA_PAGE */
  fm_tc_i32(&t, 2, (int32_t)w->page.len);
  fm_tc_i32(&t, 3, (int32_t)n);
  fm_tc_struct_begin(&t, 5); /* data_page_header */
  fm_tc_i32(&t, 1, (int32_t)col->page_values);
  fm_tc_i32(&t, 2, col->nidx ? 8 : 0); /* encoding: RLE_DICTIONARY or PLAIN */
  fm_tc_i32(&t, 3, 3); /* definition_level_encoding: RLE */
  fm_tc_i32(&t, 4, 3); /* repetition_level_encoding: RLE */
  fm_tc_struct_end(&t);
  if ((rc = fm_tc_finish(&t)) || fm_buf_append(&col->chunk, w->hdr.buf, w->hdr.len) ||
      fm_buf_append(&col->chunk, data, n))
    return fm_pq_fail(w, err, rc == FM_ERR_INTERNAL ? rc : FM_ERR_NOMEM,
                "%s: cannot encode a page of column \"%s\"", w->path, col->name);
  col->chunk_uncompressed += (int64_t)(w->hdr.len + w->page.len);
  col->chunk_values += (int64_t)col->page_values;
  if (col->nidx) {
    /* A first page where most values were new: the dictionary would not
     * pay (indices on top of the same distinct bytes), so the rest of
     * the chunk is PLAIN. */
    if (++col->dict_pages == 1 && fm_strmap_count(&col->dict) * 2 > col->nidx)
      col->dict_on = 0;
  } else {
    col->plain_pages++;
  }
  fm_buf_reset(&col->values);
  col->ndefs = col->nidx = 0;
  col->page_values = col->page_raw = 0;
  return FM_OK;
}

/* ---- row groups -------------------------------------------------------- */

/* The chunk's statistics as PLAIN-encoded min/max (owned copies). */
static fm_rc stats_to_meta(const pq_col *col, pq_chunk_meta *m) {
  const pq_stats *s = &col->stats;
  m->null_count = (int64_t)s->nulls;
  m->nan_count = (int64_t)s->nans;
  m->has_minmax = s->has_minmax;
  if (!s->has_minmax) return FM_OK;
  unsigned char a[8], b[8];
  const void *pmin = a, *pmax = b;
  size_t nmin = 8, nmax = 8;
  switch (col->type) {
  case FM_PQ_DOUBLE: {
    /* Zero: the minimum is written -0.0 and the maximum +0.0 so a reader
     * pruning on them never misses the other zero. */
    double lo = s->dmin == 0.0 ? -0.0 : s->dmin, hi = s->dmax == 0.0 ? 0.0 : s->dmax;
    uint64_t u;
    memcpy(&u, &lo, 8);
    fm_pq_le64(a, u);
    memcpy(&u, &hi, 8);
    fm_pq_le64(b, u);
    break;
  }
  case FM_PQ_STRING:
    /* Exact bounds only, and only short ones: a chunk whose min or max
     * string is longer than PQ_MAX_STAT keeps its null count but gets no
     * min/max (the footer stays small; readers then cannot prune it). */
    if (s->smin.len > PQ_MAX_STAT || s->smax.len > PQ_MAX_STAT) {
      m->has_minmax = 0;
      return FM_OK;
    }
    pmin = s->smin.buf ? s->smin.buf : "";
    nmin = s->smin.len;
    pmax = s->smax.buf ? s->smax.buf : "";
    nmax = s->smax.len;
    break;
  case FM_PQ_BOOLEAN:
    a[0] = (unsigned char)s->imin;
    b[0] = (unsigned char)s->imax;
    nmin = nmax = 1;
    break;
  default:
    fm_pq_le64(a, (uint64_t)s->imin);
    fm_pq_le64(b, (uint64_t)s->imax);
  }
  m->min = fm_malloc(nmin ? nmin : 1);
  m->max = fm_malloc(nmax ? nmax : 1);
  if (!m->min || !m->max) return FM_ERR_NOMEM;
  memcpy(m->min, pmin, nmin);
  memcpy(m->max, pmax, nmax);
  m->min_len = nmin;
  m->max_len = nmax;
  return FM_OK;
}

fm_rc fm_pq_write(fm_pq_writer *w, const void *p, size_t n, fm_error *err) {
  if (n && fwrite(p, 1, n, w->fp) != n)
    return fm_pq_fail(w, err, FM_ERR_IO, "%s: write failed: %s", w->path, strerror(errno));
  if (n && w->observe) w->observe(w->observe_ctx, p, n);
  w->offset += n;
  return FM_OK;
}

static void reset_stats(pq_stats *s) {
  s->nulls = s->nans = 0;
  s->has_minmax = 0;
  fm_buf_reset(&s->smin);
  fm_buf_reset(&s->smax);
}

/* Write every column's chunk of the buffered rows, remember its metadata
 * for the footer, and start a new row group. */
static fm_rc flush_rowgroup(fm_pq_writer *w, fm_error *err) {
  fm_rc rc;
  if (w->rg_rows == 0) return FM_OK;
  for (size_t c = 0; c < w->ncols; c++)
    if ((rc = flush_page(w, &w->cols[c], err))) return rc;
  if (fm_grow((void **)&w->rgs, &w->rgcap, w->nrgs + 1, sizeof *w->rgs))
    return fm_pq_fail(w, err, FM_ERR_NOMEM, "out of memory");
  pq_rowgroup *g = &w->rgs[w->nrgs];
  memset(g, 0, sizeof *g);
  if (!(g->cols = fm_calloc(w->ncols, sizeof *g->cols)))
    return fm_pq_fail(w, err, FM_ERR_NOMEM, "out of memory");
  w->nrgs++; /* from here on freed with the writer */
  g->num_rows = (int64_t)w->rg_rows;
  g->file_offset = (int64_t)w->offset;
  for (size_t c = 0; c < w->ncols; c++) {
    pq_col *col = &w->cols[c];
    pq_chunk_meta *m = &g->cols[c];
    if (stats_to_meta(col, m)) return fm_pq_fail(w, err, FM_ERR_NOMEM, "out of memory");
    int64_t dcomp, duncomp;
    if ((rc = fm_pq_dict_flush(w, col, &m->dict_page_offset, &dcomp, &duncomp, err)))
      return rc;
    m->data_page_offset = (int64_t)w->offset;
    m->total_compressed = (int64_t)col->chunk.len + dcomp;
    m->total_uncompressed = col->chunk_uncompressed + duncomp;
    m->num_values = col->chunk_values;
    m->plain_pages = col->plain_pages;
    m->dict_pages = col->dict_pages;
    col->plain_pages = col->dict_pages = 0;
    if ((rc = fm_pq_write(w, col->chunk.buf, col->chunk.len, err))) return rc;
    g->total_byte_size += m->total_uncompressed;
    g->total_compressed += m->total_compressed;
    fm_buf_reset(&col->chunk);
    col->chunk_uncompressed = col->chunk_values = 0;
    reset_stats(&col->stats);
  }
  w->rg_rows = 0;
  w->rg_bytes = 0;
  return FM_OK;
}

/* ---- rows -------------------------------------------------------------- */

static const char *type_name(fm_pq_type t) {
  switch (t) {
  case FM_PQ_INT64: return "INT64";
  case FM_PQ_DOUBLE: return "DOUBLE";
  case FM_PQ_STRING: return "STRING";
  case FM_PQ_TIMESTAMP_MICROS: return "TIMESTAMP(MICROS)";
  case FM_PQ_TIMESTAMP_MILLIS: return "TIMESTAMP(MILLIS)";
  case FM_PQ_BOOLEAN: return "BOOLEAN";
  }
  return "?";
}

fm_rc fm_pq_begin_put(fm_pq_writer *w, size_t col, int ok_type, const char *what,
                      fm_error *err) {
  if (!w) return fm_error_set(err, FM_ERR_ARG, "parquet writer: NULL writer");
  if (w->failed) return fm_error_set(err, w->failed, "%s", w->failmsg.msg);
  if (col >= w->ncols)
    return fm_pq_fail(w, err, FM_ERR_ARG, "%s: row %llu: no column %zu (the schema has %zu)",
                w->path, (unsigned long long)w->rows + 1, col, w->ncols);
  pq_col *c = &w->cols[col];
  if (c->filled)
    return fm_pq_fail(w, err, FM_ERR_ARG, "%s: column \"%s\", row %llu: a second value", w->path,
                c->name, (unsigned long long)w->rows + 1);
  if (!ok_type)
    return fm_pq_fail(w, err, FM_ERR_ARG, "%s: column \"%s\", row %llu: a %s value for a %s column",
                w->path, c->name, (unsigned long long)w->rows + 1, what, type_name(c->type));
  return FM_OK;
}

/* Record a value's bytes (p, n: appended to the PLAIN values) and its
 * definition level; raw is its PLAIN size, which the page and row group
 * bounds count.  Flush the page when it is full. */
static fm_rc end_put(fm_pq_writer *w, pq_col *col, const void *p, size_t n, size_t raw,
                     int present, fm_error *err) {
  if (col->nullable) {
    if (fm_grow((void **)&col->defs, &col->defcap, col->ndefs + 1, 1))
      return fm_pq_fail(w, err, FM_ERR_NOMEM, "out of memory");
    col->defs[col->ndefs++] = (uint8_t)present;
    raw++;
  }
  if (present && n && fm_buf_append(&col->values, p, n))
    return fm_pq_fail(w, err, FM_ERR_NOMEM, "out of memory");
  w->rg_bytes += raw;
  col->page_raw += raw;
  col->page_values++;
  col->filled = 1;
  if (col->page_raw >= w->page_bytes) return flush_page(w, col, err);
  return FM_OK;
}

static fm_rc put_i64(fm_pq_writer *w, pq_col *col, int64_t v, fm_error *err) {
  pq_stats *s = &col->stats;
  unsigned char b[8];
  if (!s->has_minmax || v < s->imin) s->imin = v;
  if (!s->has_minmax || v > s->imax) s->imax = v;
  s->has_minmax = 1;
  fm_pq_le64(b, (uint64_t)v);
  return end_put(w, col, b, 8, 8, 1, err);
}

fm_rc fm_parquet_put_int64(fm_pq_writer *w, size_t col, int64_t v, fm_error *err) {
  int ok = w && col < w->ncols &&
           (w->cols[col].type == FM_PQ_INT64 || w->cols[col].type == FM_PQ_TIMESTAMP_MICROS ||
            w->cols[col].type == FM_PQ_TIMESTAMP_MILLIS);
  fm_rc rc = fm_pq_begin_put(w, col, ok, "INT64", err);
  return rc ? rc : put_i64(w, &w->cols[col], v, err);
}

fm_rc fm_parquet_put_bool(fm_pq_writer *w, size_t col, int v, fm_error *err) {
  int ok = w && col < w->ncols && w->cols[col].type == FM_PQ_BOOLEAN;
  fm_rc rc = fm_pq_begin_put(w, col, ok, "BOOLEAN", err);
  if (rc) return rc;
  pq_stats *s = &w->cols[col].stats;
  unsigned char b = v != 0;
  if (!s->has_minmax || b < s->imin) s->imin = b;
  if (!s->has_minmax || b > s->imax) s->imax = b;
  s->has_minmax = 1;
  return end_put(w, &w->cols[col], &b, 1, 1, 1, err);
}

fm_rc fm_parquet_put_double(fm_pq_writer *w, size_t col, double v, fm_error *err) {
  int ok = w && col < w->ncols && w->cols[col].type == FM_PQ_DOUBLE;
  fm_rc rc = fm_pq_begin_put(w, col, ok, "DOUBLE", err);
  if (rc) return rc;
  pq_stats *s = &w->cols[col].stats;
  if (v != v) {
    s->nans++; /* NaN never becomes a min or max */
  } else {
    if (!s->has_minmax || v < s->dmin) s->dmin = v;
    if (!s->has_minmax || v > s->dmax) s->dmax = v;
    s->has_minmax = 1;
  }
  uint64_t u;
  unsigned char b[8];
  memcpy(&u, &v, 8);
  fm_pq_le64(b, u);
  return end_put(w, &w->cols[col], b, 8, 8, 1, err);
}

/* Unsigned byte-wise order, a prefix first (the spec's order for UTF8). */
static int bytes_cmp(const char *a, size_t na, const char *b, size_t nb) {
  int d = memcmp(a, b, na < nb ? na : nb);
  if (d) return d;
  return na < nb ? -1 : na > nb;
}

fm_rc fm_parquet_put_string(fm_pq_writer *w, size_t col, const char *s, size_t n,
                            fm_error *err) {
  int ok = w && col < w->ncols && w->cols[col].type == FM_PQ_STRING;
  fm_rc rc = fm_pq_begin_put(w, col, ok, "STRING", err);
  if (rc) return rc;
  pq_col *c = &w->cols[col];
  if (n > PQ_MAX_VALUE)
    return fm_pq_fail(w, err, FM_ERR_ARG, "%s: column \"%s\", row %llu: a string of %zu bytes "
                "(at most %u)", w->path, c->name, (unsigned long long)w->rows + 1, n,
                PQ_MAX_VALUE);
  if (!s && n) return fm_pq_fail(w, err, FM_ERR_ARG, "%s: column \"%s\": NULL string pointer",
                           w->path, c->name);
  if (!s) s = ""; /* (NULL, 0): the empty string */
  size_t at = 0, l;
  while (at < n && (l = fm_utf8_char_len(s + at, n - at)) > 0) at += l;
  if (at < n)
    return fm_pq_fail(w, err, FM_ERR_ARG, "%s: column \"%s\", row %llu: invalid UTF-8 at byte %zu",
                w->path, c->name, (unsigned long long)w->rows + 1, at);
  pq_stats *st = &c->stats;
  if (!st->has_minmax || bytes_cmp(s, n, st->smin.buf, st->smin.len) < 0) {
    fm_buf_reset(&st->smin);
    if (fm_buf_append(&st->smin, s, n)) return fm_pq_fail(w, err, FM_ERR_NOMEM, "out of memory");
  }
  if (!st->has_minmax || bytes_cmp(s, n, st->smax.buf, st->smax.len) > 0) {
    fm_buf_reset(&st->smax);
    if (fm_buf_append(&st->smax, s, n)) return fm_pq_fail(w, err, FM_ERR_NOMEM, "out of memory");
  }
  st->has_minmax = 1;
  int used;
  if ((rc = fm_pq_dict_put(w, c, s, n, &used, err))) return rc;
  if (used > 0) return end_put(w, c, NULL, 0, 4 + n, 1, err);
  if (used < 0) { /* the dictionary is full: PLAIN from here on */
    if ((rc = flush_page(w, c, err))) return rc;
    c->dict_on = 0;
  }
  /* PLAIN BYTE_ARRAY: 4-byte little-endian length, then the bytes. */
  unsigned char len4[4];
  fm_pq_le32(len4, (uint32_t)n);
  if (fm_buf_append(&c->values, len4, 4)) return fm_pq_fail(w, err, FM_ERR_NOMEM, "out of memory");
  return end_put(w, c, s, n, 4 + n, 1, err);
}

fm_rc fm_parquet_put_null(fm_pq_writer *w, size_t col, fm_error *err) {
  fm_rc rc = fm_pq_begin_put(w, col, 1, "NULL", err);
  if (rc) return rc;
  pq_col *c = &w->cols[col];
  if (!c->nullable)
    return fm_pq_fail(w, err, FM_ERR_ARG, "%s: column \"%s\", row %llu: NULL in a REQUIRED column",
                w->path, c->name, (unsigned long long)w->rows + 1);
  c->stats.nulls++;
  return end_put(w, c, NULL, 0, 0, 0, err);
}

fm_rc fm_parquet_end_row(fm_pq_writer *w, fm_error *err) {
  if (!w) return fm_error_set(err, FM_ERR_ARG, "parquet writer: NULL writer");
  if (w->failed) return fm_error_set(err, w->failed, "%s", w->failmsg.msg);
  for (size_t c = 0; c < w->ncols; c++)
    if (!w->cols[c].filled)
      return fm_pq_fail(w, err, FM_ERR_ARG, "%s: column \"%s\", row %llu: no value", w->path,
                  w->cols[c].name, (unsigned long long)w->rows + 1);
  for (size_t c = 0; c < w->ncols; c++) w->cols[c].filled = 0;
  w->rows++;
  w->rg_rows++;
  if (w->rg_bytes >= w->row_group_bytes) return flush_rowgroup(w, err);
  return FM_OK;
}

/* ---- close ------------------------------------------------------------- */

static fm_rc finish_file(fm_pq_writer *w, fm_error *err) {
  fm_rc rc;
  for (size_t c = 0; c < w->ncols; c++)
    if (w->cols[c].filled)
      return fm_pq_fail(w, err, FM_ERR_ARG, "%s: row %llu was started but not ended", w->path,
                  (unsigned long long)w->rows + 1);
  if ((rc = flush_rowgroup(w, err))) return rc;
  fm_buf_reset(&w->hdr);
  if ((rc = fm_pq_footer(w, &w->hdr)))
    return fm_pq_fail(w, err, rc, "%s: cannot encode the footer", w->path);
  unsigned char tail[8];
  fm_pq_le32(tail, (uint32_t)w->hdr.len);
  memcpy(tail + 4, "PAR1", 4);
  if ((rc = fm_pq_write(w, w->hdr.buf, w->hdr.len, err)) ||
      (rc = fm_pq_write(w, tail, 8, err)))
    return rc;
  if (fflush(w->fp) != 0 || ferror(w->fp))
    return fm_pq_fail(w, err, FM_ERR_IO, "%s: write failed: %s", w->path, strerror(errno));
  if (fsync(fileno(w->fp)) != 0)
    return fm_pq_fail(w, err, FM_ERR_IO, "%s: fsync failed: %s", w->path, strerror(errno));
  FILE *fp = w->fp;
  w->fp = NULL;
  if (fclose(fp) != 0) {
    unlink(w->path);
    return fm_pq_fail(w, err, FM_ERR_IO, "%s: close failed: %s", w->path, strerror(errno));
  }
  return FM_OK;
}

fm_rc fm_parquet_writer_close(fm_pq_writer *w, fm_pq_result *res, fm_error *err) {
  if (res) memset(res, 0, sizeof *res);
  if (!w) return fm_error_set(err, FM_ERR_ARG, "parquet writer: NULL writer");
  fm_rc rc = w->failed ? fm_error_set(err, w->failed, "%s", w->failmsg.msg)
                       : finish_file(w, err);
  if (rc == FM_OK && res) {
    res->rows = w->rows;
    res->row_groups = w->nrgs;
    res->bytes = w->offset;
  }
  if (rc) fm_parquet_writer_abort(w);
  else writer_free(w);
  return rc;
}
