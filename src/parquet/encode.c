/* encode.c: the Thrift compact protocol encoder and the RLE/bit-packed
 * hybrid encoder of the Parquet writer (see pq_internal.h). */
#include "pq_internal.h"

#include <string.h>

fm_rc fm_pq_varint(fm_buf *b, uint64_t v) {
  unsigned char tmp[10];
  size_t n = 0;
  do {
    unsigned char byte = (unsigned char)(v & 0x7f);
    v >>= 7;
    tmp[n++] = (unsigned char)(byte | (v ? 0x80 : 0));
  } while (v);
  return fm_buf_append(b, tmp, n);
}

uint64_t fm_pq_zigzag(int64_t v) {
  return ((uint64_t)v << 1) ^ (v < 0 ? ~(uint64_t)0 : 0);
}

/* ---- Thrift compact protocol ------------------------------------------- */

void fm_tc_init(fm_tc *t, fm_buf *out) {
  t->out = out;
  t->depth = 0;
  t->last[0] = 0;
  t->failed = 0;
}

static void tc_bytes(fm_tc *t, const void *p, size_t n) {
  if (!t->failed && fm_buf_append(t->out, p, n)) t->failed = 1;
}

static void tc_byte(fm_tc *t, unsigned v) {
  unsigned char c = (unsigned char)v;
  tc_bytes(t, &c, 1);
}

static void tc_varint(fm_tc *t, uint64_t v) {
  if (!t->failed && fm_pq_varint(t->out, v)) t->failed = 1;
}

/* A field header: the id as a delta from the previous field of the same
 * struct when 1..15 (short form), else the type byte and the id as a
 * zigzag varint i16 (long form). */
static void tc_field(fm_tc *t, int16_t id, int type) {
  int delta = (int)id - (int)t->last[t->depth];
  if (delta > 0 && delta <= 15) {
    tc_byte(t, (unsigned)(delta << 4 | type));
  } else {
    tc_byte(t, (unsigned)type);
    tc_varint(t, fm_pq_zigzag(id));
  }
  t->last[t->depth] = id;
}

void fm_tc_i16(fm_tc *t, int16_t id, int16_t v) {
  tc_field(t, id, FM_TC_I16);
  tc_varint(t, fm_pq_zigzag(v));
}

void fm_tc_i32(fm_tc *t, int16_t id, int32_t v) {
  tc_field(t, id, FM_TC_I32);
  tc_varint(t, fm_pq_zigzag(v));
}

void fm_tc_i64(fm_tc *t, int16_t id, int64_t v) {
  tc_field(t, id, FM_TC_I64);
  tc_varint(t, fm_pq_zigzag(v));
}

void fm_tc_bool(fm_tc *t, int16_t id, int v) {
  tc_field(t, id, v ? FM_TC_TRUE : FM_TC_FALSE); /* the value is the type */
}

void fm_tc_binary(fm_tc *t, int16_t id, const void *p, size_t n) {
  tc_field(t, id, FM_TC_BINARY);
  fm_tc_elem_binary(t, p, n);
}

void fm_tc_string(fm_tc *t, int16_t id, const char *s) {
  fm_tc_binary(t, id, s, strlen(s));
}

static void tc_push(fm_tc *t) {
  if (t->depth + 1 >= FM_TC_MAX_DEPTH) {
    t->failed = 2;
    return;
  }
  t->last[++t->depth] = 0;
}

void fm_tc_struct_begin(fm_tc *t, int16_t id) {
  tc_field(t, id, FM_TC_STRUCT);
  tc_push(t);
}

void fm_tc_elem_struct_begin(fm_tc *t) { tc_push(t); }

void fm_tc_struct_end(fm_tc *t) {
  tc_byte(t, 0);
  if (t->depth == 0) t->failed = 2;
  else t->depth--;
}

void fm_tc_list_begin(fm_tc *t, int16_t id, int elem, size_t n) {
  tc_field(t, id, FM_TC_LIST);
  if (n < 15) {
    tc_byte(t, (unsigned)(n << 4 | (unsigned)elem));
  } else {
    tc_byte(t, 0xf0u | (unsigned)elem);
    tc_varint(t, n);
  }
}

void fm_tc_elem_i32(fm_tc *t, int32_t v) { tc_varint(t, fm_pq_zigzag(v)); }

void fm_tc_elem_binary(fm_tc *t, const void *p, size_t n) {
  tc_varint(t, n);
  if (n) tc_bytes(t, p, n);
}

fm_rc fm_tc_finish(fm_tc *t) {
  tc_byte(t, 0);
  if (t->failed == 1) return FM_ERR_NOMEM;
  if (t->failed || t->depth != 0) return FM_ERR_INTERNAL;
  return FM_OK;
}

/* ---- RLE / bit-packed hybrid ------------------------------------------- */

static inline uint32_t val_at(const uint8_t *v8, const uint32_t *v32, size_t i) {
  return v8 ? v8[i] : v32[i];
}

/* Length of the run of equal values starting at i (capped at 2^31 - 1,
 * the largest run the spec allows). */
static size_t run_length(const uint8_t *v8, const uint32_t *v32, size_t i, size_t n) {
  uint32_t x = val_at(v8, v32, i);
  size_t j = i + 1;
  while (j < n && j - i < 0x7fffffffu && val_at(v8, v32, j) == x) j++;
  return j - i;
}

static fm_rc rle_run(fm_buf *out, uint32_t value, size_t count, int bit_width) {
  unsigned char vb[4];
  int nbytes = (bit_width + 7) / 8;
  for (int k = 0; k < nbytes; k++) vb[k] = (unsigned char)(value >> (8 * k));
  if (fm_pq_varint(out, (uint64_t)count << 1)) return FM_ERR_NOMEM;
  return fm_buf_append(out, vb, (size_t)nbytes);
}

/* Bit-pack values [i, i + 8 * groups) (zero past n): each value's bits go
 * least significant first, filling each byte from its least significant
 * bit (Encodings.md, "packed from the least significant bit"). */
static fm_rc bitpacked_run(fm_buf *out, const uint8_t *v8, const uint32_t *v32,
                           size_t i, size_t n, size_t groups, int bit_width) {
  if (fm_pq_varint(out, (uint64_t)groups << 1 | 1)) return FM_ERR_NOMEM;
  size_t nbytes = groups * (size_t)bit_width; /* 8 values * width bits / 8 */
  size_t at = out->len;
  if (fm_grow((void **)&out->buf, &out->cap, at + nbytes + 1, 1)) return FM_ERR_NOMEM;
  unsigned char *p = (unsigned char *)out->buf + at;
  memset(p, 0, nbytes);
  uint64_t bit = 0;
  for (size_t k = 0; k < groups * 8; k++, bit += (uint64_t)bit_width) {
    uint32_t x = i + k < n ? val_at(v8, v32, i + k) : 0;
    for (int b = 0; b < bit_width; b++)
      if (x >> b & 1) p[(bit + (uint64_t)b) / 8] |= (unsigned char)(1u << ((bit + (uint64_t)b) % 8));
  }
  out->len = at + nbytes;
  out->buf[out->len] = '\0';
  return FM_OK;
}

fm_rc fm_pq_rle_encode(fm_buf *out, const uint8_t *v8, const uint32_t *v32,
                       size_t n, int bit_width) {
  size_t i = 0;
  while (i < n) {
    size_t r = run_length(v8, v32, i, n);
    if (r >= 8) {
      if (rle_run(out, val_at(v8, v32, i), r, bit_width)) return FM_ERR_NOMEM;
      i += r;
      continue;
    }
    /* Bit-pack groups of 8 until a run of 8 or more starts at a group
     * boundary, or the values end (then the last group is padded). */
    size_t j = i, groups = 0;
    do {
      j += 8;
      groups++;
    } while (j < n && groups < 0x3fffffff && run_length(v8, v32, j, n) < 8);
    if (bitpacked_run(out, v8, v32, i, n, groups, bit_width)) return FM_ERR_NOMEM;
    i = j < n ? j : n;
  }
  return FM_OK;
}
