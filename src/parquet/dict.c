/* dict.c: dictionary encoding of STRING columns (Encodings.md,
 * "Dictionary Encoding"): one dictionary page per column chunk, PLAIN
 * encoded and written before the chunk's data pages; data pages hold the
 * bit width (1 byte) and the indices in the RLE/bit-packed hybrid
 * (encoding RLE_DICTIONARY).  When a chunk's dictionary would pass
 * dict_bytes, or when most of its first values are distinct, the chunk
 * falls back to PLAIN pages for the rest of it. */
#include "pq_writer.h"

#include <string.h>

fm_rc fm_pq_dict_put(fm_pq_writer *w, pq_col *col, const char *s, size_t n, int *used,
                     fm_error *err) {
  *used = 0;
  if (!col->dict_on) return FM_OK;
  /* After 1024 values of a chunk's first page: when most were new, the
   * dictionary would not pay (indices on top of the same distinct bytes):
   * PLAIN for the rest of the chunk. */
  if (col->dict_pages == 0 && col->nidx == 1024 && fm_strmap_count(&col->dict) * 2 > col->nidx) {
    *used = -1;
    return FM_OK;
  }
  uint32_t id;
  if (!fm_strmap_get(&col->dict, s, n, &id)) {
    size_t count = fm_strmap_count(&col->dict);
    if (col->dict_bytes + 4 + n > w->dict_bytes || count >= INT32_MAX) {
      *used = -1; /* full: the caller flushes the page and goes PLAIN */
      return FM_OK;
    }
    id = (uint32_t)count;
    if (fm_strmap_put(&col->dict, s, n, id, NULL, NULL))
      return fm_pq_fail(w, err, FM_ERR_NOMEM, "out of memory");
    col->dict_bytes += 4 + n;
  }
  if (fm_grow((void **)&col->idx, &col->idxcap, col->nidx + 1, sizeof *col->idx))
    return fm_pq_fail(w, err, FM_ERR_NOMEM, "out of memory");
  col->idx[col->nidx++] = id;
  *used = 1;
  return FM_OK;
}

static int bit_width(size_t count) {
  int b = 1; /* at least 1, even for a one-entry dictionary */
  while (b < 32 && ((size_t)1 << b) < count) b++;
  return b;
}

fm_rc fm_pq_dict_indices(fm_pq_writer *w, pq_col *col) {
  int bw = bit_width(fm_strmap_count(&col->dict));
  if (fm_buf_putc(&w->page, (char)bw)) return FM_ERR_NOMEM;
  return fm_pq_rle_encode(&w->page, NULL, col->idx, col->nidx, bw);
}

fm_rc fm_pq_dict_flush(fm_pq_writer *w, pq_col *col, int64_t *offset, int64_t *compressed,
                       int64_t *uncompressed, fm_error *err) {
  fm_rc rc = FM_OK;
  *offset = -1;
  *compressed = *uncompressed = 0;
  if (col->dict_pages > 0) {
    size_t count = fm_strmap_count(&col->dict);
    fm_buf_reset(&w->page);
    for (size_t i = 0; i < count; i++) {
      size_t len;
      const char *k = fm_strmap_key(&col->dict, i, &len);
      unsigned char len4[4];
      fm_pq_le32(len4, (uint32_t)len);
      if (fm_buf_append(&w->page, len4, 4) || fm_buf_append(&w->page, k, len))
        return fm_pq_fail(w, err, FM_ERR_NOMEM, "out of memory");
    }
    const char *data = NULL;
    size_t n = 0;
    if ((rc = fm_pq_compress(w, &data, &n, err))) return rc;
    fm_buf_reset(&w->hdr);
    fm_tc t;
    fm_tc_init(&t, &w->hdr);
    fm_tc_i32(&t, 1, 2); /* type: DICTIONARY_PAGE */
    fm_tc_i32(&t, 2, (int32_t)w->page.len);
    fm_tc_i32(&t, 3, (int32_t)n);
    fm_tc_struct_begin(&t, 7); /* dictionary_page_header */
    fm_tc_i32(&t, 1, (int32_t)count);
    fm_tc_i32(&t, 2, 0); /* encoding: PLAIN */
    fm_tc_struct_end(&t);
    if ((rc = fm_tc_finish(&t)))
      return fm_pq_fail(w, err, rc, "%s: cannot encode the dictionary page of column \"%s\"",
                        w->path, col->name);
    *offset = (int64_t)w->offset;
    *compressed = (int64_t)(w->hdr.len + n);
    *uncompressed = (int64_t)(w->hdr.len + w->page.len);
    if ((rc = fm_pq_write(w, w->hdr.buf, w->hdr.len, err)) ||
        (rc = fm_pq_write(w, data, n, err)))
      return rc;
  }
  fm_strmap_free(&col->dict);
  col->dict_bytes = 0;
  col->dict_on = w->dict_bytes > 0 && col->type == FM_PQ_STRING;
  return FM_OK;
}
