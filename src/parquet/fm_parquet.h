/*
 * fm_parquet.h: a streaming Apache Parquet file writer (the subset of the
 * format described in docs/parquet.md): flat schemas of INT64, DOUBLE,
 * BOOLEAN, UTF-8 strings and UTC timestamps, REQUIRED or OPTIONAL; PLAIN
 * values (dictionary-encoded strings, falling back to PLAIN when a chunk's
 * dictionary grows too big), RLE/bit-packed definition levels, data pages
 * v1; ZSTD, SNAPPY or
 * no compression; column chunk statistics; the footer in the Thrift
 * compact protocol.
 *
 * Rows go in one at a time: give every column of the row a value (any
 * order) with fm_parquet_put_*, then fm_parquet_end_row.  Values are
 * encoded into per-column pages at once (the writer keeps no pointer to
 * caller memory); pages are compressed as they fill, and a row group is
 * written to the file as soon as its buffered (uncompressed) size passes
 * opts.row_group_bytes, so memory stays bounded however many rows come.
 *
 * Files: the writer creates exactly the path it is given (meant to be a
 * temporary name, such as a file in the snapshot's _tmp directory or
 * fm_atomic-style "<final>.tmp.<pid>"), writes it, and on a successful
 * close has flushed and fsynced it; the CALLER renames it to its final
 * name and fsyncs the directory.  On any failure (and on abort) the file
 * is removed: a half-written Parquet file never remains.
 *
 * Errors: every call returns an fm_rc and fills err.  After a failure of
 * a put/end_row call the writer is poisoned: later calls return the same
 * code and message; the only useful call left is abort (close also works
 * and reports the error).  One writer is used by one thread at a time.
 */
#ifndef FM_PARQUET_H
#define FM_PARQUET_H

#include "fm_util.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fm_pq_type {
  FM_PQ_INT64,            /* INT64, signed */
  FM_PQ_DOUBLE,           /* DOUBLE (NaN and +-inf stored as given) */
  FM_PQ_STRING,           /* BYTE_ARRAY, logical STRING (converted UTF8) */
  FM_PQ_TIMESTAMP_MICROS, /* INT64 microseconds since 1970-01-01T00:00Z */
  FM_PQ_TIMESTAMP_MILLIS, /* INT64 milliseconds since 1970-01-01T00:00Z */
  FM_PQ_BOOLEAN           /* BOOLEAN */
} fm_pq_type;

typedef enum fm_pq_codec {
  FM_PQ_ZSTD = 0, /* the default */
  FM_PQ_SNAPPY,
  FM_PQ_UNCOMPRESSED
} fm_pq_codec;

/* One column of the (flat) schema.  name: non-empty UTF-8, unique in the
 * schema; nullable: OPTIONAL (1) or REQUIRED (0). */
typedef struct fm_pq_column {
  const char *name;
  fm_pq_type type;
  int nullable;
} fm_pq_column;

/* Writer options; zero-initialize and set what you need (0 = default). */
typedef struct fm_pq_options {
  fm_pq_codec codec;      /* default ZSTD */
  int zstd_level;         /* default 3 */
  size_t row_group_bytes; /* buffered uncompressed bytes per row group;
                           * default 64 MiB, at least 4 KiB, at most 1 GiB */
  size_t page_bytes;      /* uncompressed bytes per data page; default
                           * 1 MiB, at least 1 KiB, at most 64 MiB */
  const char *created_by; /* default "fieldmatch version <v>" */
  int no_dictionary;      /* 1: PLAIN strings only (no dictionary pages) */
  size_t dictionary_bytes; /* per STRING column chunk before falling back
                            * to PLAIN; default 1 MiB, 1 KiB..64 MiB */
  /* Optional: called with every byte written to the file, in file order
   * (e.g. to hash it on the way: the snapshot's SHA-256); p is borrowed
   * for the call. */
  void (*observe)(void *ctx, const void *p, size_t n);
  void *observe_ctx;
} fm_pq_options;

/* Totals of a closed file. */
typedef struct fm_pq_result {
  uint64_t rows;       /* rows written */
  uint64_t row_groups; /* row groups written */
  uint64_t bytes;      /* file size in bytes */
} fm_pq_result;

typedef struct fm_pq_writer fm_pq_writer;

/* Short names: "zstd", "snappy", "uncompressed" (static storage), and the
 * reverse (-1 for an unknown name). */
const char *fm_pq_codec_name(fm_pq_codec c);
int fm_pq_codec_parse(const char *s);

/* Create path (truncating a file of that name) and start a file with the
 * given schema (ncols >= 1, copied: cols and the strings in it need not
 * outlive the call).  opts may be NULL.  *out (caller owns; release with
 * close or abort) is NULL on failure.  FM_ERR_ARG (bad schema or option:
 * the message names the column or option), FM_ERR_IO (names the path),
 * FM_ERR_NOMEM. */
fm_rc fm_parquet_writer_open(fm_pq_writer **out, const char *path,
                             const fm_pq_column *cols, size_t ncols,
                             const fm_pq_options *opts, fm_error *err);

/* Values of the current row; col is the index into the schema.  Each
 * column gets exactly one value per row.  The writer copies what it needs
 * (s is borrowed only during the call).  FM_ERR_ARG names the column and
 * the row (1-based) for: a type that does not match the column (put_int64
 * serves INT64 and both TIMESTAMP types, in the column's unit), NULL in a
 * REQUIRED column, a second value for the same column in a row, a string
 * that is not valid UTF-8 (the message also gives the byte offset) or
 * longer than 256 MiB. */
fm_rc fm_parquet_put_int64(fm_pq_writer *w, size_t col, int64_t v, fm_error *err);
fm_rc fm_parquet_put_double(fm_pq_writer *w, size_t col, double v, fm_error *err);
fm_rc fm_parquet_put_bool(fm_pq_writer *w, size_t col, int v, fm_error *err);
fm_rc fm_parquet_put_string(fm_pq_writer *w, size_t col, const char *s, size_t n,
                            fm_error *err);
fm_rc fm_parquet_put_null(fm_pq_writer *w, size_t col, fm_error *err);

/* A TIMESTAMP column's value from UTC text, as the store writes it
 * ("2026-12-04T17:46:58.123Z"): YYYY-MM-DD, optionally followed by 'T' or
 * ' ' and HH:MM, :SS, .fraction (1-9 digits), then optionally 'Z' or
 * "+00:00"; years 0001-9999.  Digits beyond the column's unit are
 * dropped (rounding toward the past).  FM_ERR_ARG names the column, the
 * row and the text when it is not such a time (other offsets included). */
fm_rc fm_parquet_put_timestamp_text(fm_pq_writer *w, size_t col, const char *s, size_t n,
                                    fm_error *err);
/* The parser behind it: seconds since the epoch and nanoseconds (0..1e9-1)
 * of s[0..n); 0 on success, -1 when s is not such a time. */
int fm_pq_parse_utc(const char *s, size_t n, int64_t *sec, int32_t *nsec);

/* Finish the current row: FM_ERR_ARG (naming the column) when a column got
 * no value.  May write a row group to the file (FM_ERR_IO, FM_ERR_NOMEM). */
fm_rc fm_parquet_end_row(fm_pq_writer *w, fm_error *err);

/* Rows finished so far. */
uint64_t fm_parquet_rows(const fm_pq_writer *w);

/* Write the last row group and the footer, flush, fsync and close; frees
 * w in every case.  A started but unfinished row is an FM_ERR_ARG.  On
 * failure the file is removed.  res (optional) gets the totals. */
fm_rc fm_parquet_writer_close(fm_pq_writer *w, fm_pq_result *res, fm_error *err);

/* Close and remove the file, free w.  NULL is a no-op. */
void fm_parquet_writer_abort(fm_pq_writer *w);

#ifdef __cplusplus
}
#endif
#endif /* FM_PARQUET_H */
