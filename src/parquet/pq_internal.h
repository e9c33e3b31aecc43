/*
 * pq_internal.h: the parts of the Parquet writer that the module's files
 * share and its unit tests check byte for byte: the Thrift compact
 * protocol encoder (for page headers and the footer) and the
 * RLE/bit-packed hybrid encoder (definition levels).  Not a public API.
 */
#ifndef FM_PQ_INTERNAL_H
#define FM_PQ_INTERNAL_H

#include "fm_parquet.h"

#include <stdint.h>

/* Thrift compact protocol type codes (the Thrift compact protocol spec). */
enum {
  FM_TC_TRUE = 1,
  FM_TC_FALSE = 2,
  FM_TC_BYTE = 3,
  FM_TC_I16 = 4,
  FM_TC_I32 = 5,
  FM_TC_I64 = 6,
  FM_TC_DOUBLE = 7,
  FM_TC_BINARY = 8,
  FM_TC_LIST = 9,
  FM_TC_SET = 10,
  FM_TC_MAP = 11,
  FM_TC_STRUCT = 12
};

#define FM_TC_MAX_DEPTH 16

/* A compact-protocol writer of one top-level struct into out (borrowed).
 * Errors are sticky: the first allocation failure or misuse sets failed,
 * and fm_tc_finish reports it, so callers chain calls without checks. */
typedef struct fm_tc {
  fm_buf *out;
  int16_t last[FM_TC_MAX_DEPTH]; /* last field id written, per struct level */
  int depth;                     /* current struct level (0 = top) */
  int failed;                    /* 1 nomem, 2 misuse */
} fm_tc;

void fm_tc_init(fm_tc *t, fm_buf *out);
void fm_tc_i16(fm_tc *t, int16_t id, int16_t v);
void fm_tc_i32(fm_tc *t, int16_t id, int32_t v);
void fm_tc_i64(fm_tc *t, int16_t id, int64_t v);
void fm_tc_bool(fm_tc *t, int16_t id, int v);
void fm_tc_binary(fm_tc *t, int16_t id, const void *p, size_t n);
void fm_tc_string(fm_tc *t, int16_t id, const char *s); /* NUL-terminated */
void fm_tc_struct_begin(fm_tc *t, int16_t id);          /* a struct field */
void fm_tc_struct_end(fm_tc *t);                        /* its stop byte */
/* A list field header of n elements of type elem; then write n elements
 * with fm_tc_elem_* (struct elements: fm_tc_elem_struct_begin ... end). */
void fm_tc_list_begin(fm_tc *t, int16_t id, int elem, size_t n);
void fm_tc_elem_i32(fm_tc *t, int32_t v);
void fm_tc_elem_binary(fm_tc *t, const void *p, size_t n);
void fm_tc_elem_struct_begin(fm_tc *t);
/* Write the top-level stop byte: FM_OK, FM_ERR_NOMEM, or FM_ERR_INTERNAL
 * (unbalanced structs, too deep). */
fm_rc fm_tc_finish(fm_tc *t);

/* ULEB128 varint and zigzag (as the compact protocol and Parquet use). */
fm_rc fm_pq_varint(fm_buf *b, uint64_t v);
uint64_t fm_pq_zigzag(int64_t v);

/* Append the RLE/bit-packed hybrid encoding (Encodings.md, RLE = 3) of the
 * n values v8[i] (or v32[i] when v8 is NULL), each < 2^bit_width
 * (1 <= bit_width <= 32), without the 4-byte length prefix.  Runs of 8 or
 * more equal values become RLE runs, the rest bit-packed groups of 8 (the
 * last group zero-padded).  FM_ERR_NOMEM. */
fm_rc fm_pq_rle_encode(fm_buf *out, const uint8_t *v8, const uint32_t *v32,
                       size_t n, int bit_width);

/* Little-endian stores. */
static inline void fm_pq_le32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static inline void fm_pq_le64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

#endif /* FM_PQ_INTERNAL_H */
