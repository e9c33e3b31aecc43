/*
 * pq_writer.h: the writer's state, shared by writer.c (rows, pages, row
 * groups) and footer.c (FileMetaData).  Not a public API.
 */
#ifndef FM_PQ_WRITER_H
#define FM_PQ_WRITER_H

#include "pq_internal.h"

#include <stdio.h>
#include <zstd.h>

/* Statistics of a column chunk.  Values are kept as they are compared;
 * min/max strings are owned copies. */
typedef struct pq_stats {
  uint64_t nulls, nans;
  int has_minmax;
  int64_t imin, imax; /* INT64, TIMESTAMP, BOOLEAN */
  double dmin, dmax;  /* DOUBLE (NaN never enters) */
  fm_buf smin, smax;  /* STRING */
} pq_stats;

/* One column chunk as the footer describes it (owned by the writer). */
typedef struct pq_chunk_meta {
  int64_t data_page_offset;
  int64_t dict_page_offset; /* -1: no dictionary page */
  int plain_pages, dict_pages; /* data pages of each encoding */
  int64_t total_compressed, total_uncompressed;
  int64_t num_values;
  int64_t null_count, nan_count;
  int has_minmax;
  unsigned char *min, *max; /* PLAIN-encoded statistic values, owned */
  size_t min_len, max_len;
} pq_chunk_meta;

typedef struct pq_rowgroup {
  pq_chunk_meta *cols; /* ncols entries, owned */
  int64_t num_rows, file_offset, total_byte_size, total_compressed;
} pq_rowgroup;

typedef struct pq_col {
  char *name; /* owned */
  fm_pq_type type;
  int nullable;
  int filled; /* got its value for the current row */
  /* The current page: PLAIN values (BOOLEAN: one byte per value until the
   * page is packed) and the definition levels (OPTIONAL only). */
  fm_buf values;
  uint8_t *defs;
  size_t ndefs, defcap;
  size_t page_values;
  size_t page_raw; /* PLAIN size of the page's values and levels */
  /* The current chunk: page headers and (compressed) data pages. */
  fm_buf chunk;
  int64_t chunk_uncompressed, chunk_values;
  int plain_pages, dict_pages;
  pq_stats stats;
  /* Dictionary encoding (STRING): while dict_on, the page's non-null
   * values are indices (idx) into dict, this chunk's dictionary; when the
   * dictionary would pass w->dict_bytes the chunk falls back to PLAIN. */
  int dict_on;
  fm_strmap dict;
  size_t dict_bytes; /* PLAIN size of the dictionary */
  uint32_t *idx;
  size_t nidx, idxcap;
} pq_col;

struct fm_pq_writer {
  FILE *fp;
  char *path; /* owned */
  uint64_t offset;
  pq_col *cols; /* owned */
  size_t ncols;
  fm_pq_codec codec;
  int zstd_level;
  size_t row_group_bytes, page_bytes, dict_bytes; /* dict_bytes 0: off */
  char *created_by; /* owned */
  uint64_t rows, rg_rows;
  size_t rg_bytes; /* uncompressed bytes buffered in the row group */
  pq_rowgroup *rgs; /* owned */
  size_t nrgs, rgcap;
  fm_buf page, comp, hdr; /* scratch */
  ZSTD_CCtx *zctx;
  void (*observe)(void *ctx, const void *p, size_t n);
  void *observe_ctx;
  fm_rc failed; /* sticky */
  fm_error failmsg;
};

/* writer.c: record the first failure of w (sticky) and set err. */
fm_rc fm_pq_fail(fm_pq_writer *w, fm_error *err, fm_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* writer.c: the checks of every put: the writer is healthy, col exists
 * and has no value yet in this row, and ok_type (the column's type accepts
 * a `what` value); else FM_ERR_ARG naming the column and row. */
fm_rc fm_pq_begin_put(fm_pq_writer *w, size_t col, int ok_type, const char *what,
                      fm_error *err);
/* writer.c: compress w->page; *data is w->page or w->comp. */
fm_rc fm_pq_compress(fm_pq_writer *w, const char **data, size_t *n, fm_error *err);
/* writer.c: append to the file, advancing w->offset. */
fm_rc fm_pq_write(fm_pq_writer *w, const void *p, size_t n, fm_error *err);

/* dict.c: the value s (valid UTF-8) as a dictionary index of col: *used
 * is 1 when it went in as an index, 0 when the chunk is PLAIN, -1 when
 * the dictionary is full or not paying (the caller then flushes the page,
 * still dictionary-encoded, and writes the rest of the chunk PLAIN). */
fm_rc fm_pq_dict_put(fm_pq_writer *w, pq_col *col, const char *s, size_t n, int *used,
                     fm_error *err);
/* dict.c: append the page's indices (bit width byte + RLE hybrid) to
 * w->page.  FM_ERR_NOMEM. */
fm_rc fm_pq_dict_indices(fm_pq_writer *w, pq_col *col);
/* dict.c: when the chunk has dictionary-encoded pages, write its
 * dictionary page to the file (*offset its position, *compressed and
 * *uncompressed its sizes with the header), else *offset = -1.  Then
 * start a new dictionary for the next chunk. */
fm_rc fm_pq_dict_flush(fm_pq_writer *w, pq_col *col, int64_t *offset, int64_t *compressed,
                       int64_t *uncompressed, fm_error *err);

/* footer.c: append the FileMetaData of w to out.  FM_ERR_NOMEM. */
fm_rc fm_pq_footer(const fm_pq_writer *w, fm_buf *out);

#endif /* FM_PQ_WRITER_H */
