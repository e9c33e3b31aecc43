/* test_parquet.c: the Parquet writer's pieces against bytes derived by hand
 * from the specifications (Thrift compact protocol, Encodings.md's RLE /
 * bit-packed hybrid), the statistics it records, the file frame (magic,
 * footer length), bad input, allocation failures and streaming.  DuckDB
 * reads the files back in test_parquet_duckdb.c. */
#include "fm_test.h"
#include "fm_test_util.h"
#include "pq_writer.h"

#include <math.h>
#include <stdint.h>
#include <sys/stat.h>

static int bytes_eq(const fm_buf *b, const unsigned char *want, size_t n) {
  if (b->len != n || memcmp(b->buf, want, n) != 0) {
    fprintf(stderr, "  got  ");
    for (size_t i = 0; i < b->len; i++) fprintf(stderr, "%02x ", (unsigned char)b->buf[i]);
    fprintf(stderr, "\n  want ");
    for (size_t i = 0; i < n; i++) fprintf(stderr, "%02x ", want[i]);
    fprintf(stderr, "\n");
    return 0;
  }
  return 1;
}
#define CHECK_BYTES(b, ...)                                                \
  do {                                                                     \
    static const unsigned char want_[] = {__VA_ARGS__};                    \
    CHECK(bytes_eq((b), want_, sizeof want_));                             \
  } while (0)

/* Compact protocol: field header = (id delta << 4) | type when the delta is
 * 1..15, else the type byte and the zigzag varint id; i32/i64 zigzag
 * varints; bool's value in the type nibble (1 true, 2 false); binary =
 * varint length + bytes; list header = (size << 4) | element type when
 * size < 15, else 0xF0 | type and a varint size; struct ends with 0x00. */
static void test_thrift_compact(void) {
  fm_buf b;
  fm_buf_init(&b);
  fm_tc t;
  fm_tc_init(&t, &b);
  fm_tc_i32(&t, 1, 0);       /* 15 00 */
  fm_tc_i32(&t, 2, -1);      /* 15 01: delta 1, zigzag(-1) = 1 */
  fm_tc_i32(&t, 3, 150);     /* 15 ac 02: zigzag(150) = 300 */
  fm_tc_i64(&t, 20, 1);      /* 06 28 02: delta 17, long form, zigzag(20) = 40 */
  fm_tc_bool(&t, 21, 1);     /* 11 */
  fm_tc_bool(&t, 22, 0);     /* 12 */
  fm_tc_binary(&t, 23, "ab", 2); /* 18 02 61 62 */
  fm_tc_struct_begin(&t, 24);    /* 1c */
  fm_tc_i32(&t, 1, 5);           /* 15 0a: ids restart in the struct */
  fm_tc_struct_end(&t);          /* 00 */
  fm_tc_list_begin(&t, 25, FM_TC_I32, 3); /* 19 35 */
  fm_tc_elem_i32(&t, 1);
  fm_tc_elem_i32(&t, 2);
  fm_tc_elem_i32(&t, -3); /* 02 04 05 */
  fm_tc_i32(&t, 1, 0);    /* 05 02 00: backwards, long form, zigzag(1) = 2 */
  CHECK(fm_tc_finish(&t) == FM_OK); /* 00 */
  CHECK_BYTES(&b, 0x15, 0x00, 0x15, 0x01, 0x15, 0xac, 0x02, 0x06, 0x28, 0x02, 0x11, 0x12,
              0x18, 0x02, 0x61, 0x62, 0x1c, 0x15, 0x0a, 0x00, 0x19, 0x35, 0x02, 0x04, 0x05,
              0x05, 0x02, 0x00, 0x00);

  /* A long list, extreme i64s, a list of structs. */
  fm_buf_reset(&b);
  fm_tc_init(&t, &b);
  fm_tc_list_begin(&t, 1, FM_TC_I32, 15); /* 19 f5 0f + 15 x 00 */
  for (int i = 0; i < 15; i++) fm_tc_elem_i32(&t, 0);
  fm_tc_i64(&t, 2, INT64_MIN); /* 16 ff*9 01 */
  fm_tc_i64(&t, 3, INT64_MAX); /* 16 fe ff*8 01 */
  fm_tc_list_begin(&t, 4, FM_TC_STRUCT, 2); /* 19 2c */
  fm_tc_elem_struct_begin(&t);
  fm_tc_struct_end(&t); /* 00: an empty struct */
  fm_tc_elem_struct_begin(&t);
  fm_tc_string(&t, 4, ""); /* 48 00 */
  fm_tc_struct_end(&t);    /* 00 */
  fm_tc_i16(&t, 5, -2);    /* 14 03 */
  CHECK(fm_tc_finish(&t) == FM_OK);
  CHECK_BYTES(&b, 0x19, 0xf5, 0x0f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x16, 0xff,
              0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x16, 0xfe, 0xff, 0xff,
              0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x19, 0x2c, 0x00, 0x48, 0x00, 0x00,
              0x14, 0x03, 0x00);

  /* Misuse is reported, not written silently. */
  fm_buf_reset(&b);
  fm_tc_init(&t, &b);
  fm_tc_struct_end(&t);
  CHECK(fm_tc_finish(&t) == FM_ERR_INTERNAL);
  fm_tc_init(&t, &b);
  fm_tc_struct_begin(&t, 1);
  CHECK(fm_tc_finish(&t) == FM_ERR_INTERNAL);
  fm_buf_free(&b);
}

/* A reader of the hybrid encoding written from Encodings.md, to check
 * round trips of the encoder on many inputs. */
static int rle_decode(const unsigned char *p, size_t n, int w, uint32_t *out, size_t want) {
  size_t at = 0, got = 0;
  while (got < want) {
    uint64_t h = 0;
    int shift = 0;
    do {
      if (at >= n) return -1;
      h |= (uint64_t)(p[at] & 0x7f) << shift;
      shift += 7;
    } while (p[at++] & 0x80);
    if (h & 1) {
      size_t cnt = (size_t)(h >> 1) * 8;
      for (size_t k = 0; k < cnt; k++) {
        uint32_t v = 0;
        for (int bit = 0; bit < w; bit++) {
          size_t pos = k * (size_t)w + (size_t)bit;
          if (at + pos / 8 >= n) return -1;
          v |= (uint32_t)(p[at + pos / 8] >> (pos % 8) & 1) << bit;
        }
        if (got < want) out[got++] = v;
      }
      at += (size_t)(h >> 1) * (size_t)w;
    } else {
      uint32_t v = 0;
      for (int k = 0; k < (w + 7) / 8; k++) v |= (uint32_t)p[at++] << (8 * k);
      for (size_t k = 0; k < (size_t)(h >> 1) && got < want; k++) out[got++] = v;
    }
  }
  return at == n ? 0 : -1;
}

static void test_rle_hybrid(void) {
  fm_buf b;
  fm_buf_init(&b);
  uint8_t ones[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  CHECK(fm_pq_rle_encode(&b, ones, NULL, 10, 1) == FM_OK);
  CHECK_BYTES(&b, 0x14, 0x01); /* RLE run: header 10 << 1, value in 1 byte */
  fm_buf_reset(&b);
  uint8_t mix[8] = {1, 0, 1, 1, 0, 0, 0, 1};
  CHECK(fm_pq_rle_encode(&b, mix, NULL, 8, 1) == FM_OK);
  CHECK_BYTES(&b, 0x03, 0x8d); /* one group of 8: bits 0, 2, 3, 7 */
  fm_buf_reset(&b);
  uint8_t seq[8] = {0, 1, 2, 3, 4, 5, 6, 7}; /* the example of Encodings.md */
  CHECK(fm_pq_rle_encode(&b, seq, NULL, 8, 3) == FM_OK);
  CHECK_BYTES(&b, 0x03, 0x88, 0xc6, 0xfa);
  fm_buf_reset(&b);
  uint8_t tail[10] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 0};
  CHECK(fm_pq_rle_encode(&b, tail, NULL, 3, 1) == FM_OK); /* 0,0,0 padded to 8 */
  CHECK(fm_pq_rle_encode(&b, tail, NULL, 10, 1) == FM_OK);
  CHECK_BYTES(&b, 0x03, 0x00, 0x10, 0x00, 0x03, 0x01);
  fm_buf_reset(&b);
  uint32_t wide[8] = {300, 300, 300, 300, 300, 300, 300, 300};
  CHECK(fm_pq_rle_encode(&b, NULL, wide, 8, 9) == FM_OK);
  CHECK_BYTES(&b, 0x10, 0x2c, 0x01); /* the value in 2 little-endian bytes */

  /* Round trips: random runs and noise, widths 1..20. */
  uint32_t in[3000], out[3000];
  uint64_t s = 88172645463325252ULL;
  for (int trial = 0; trial < 200; trial++) {
    int w = 1 + trial % 20;
    size_t n = 1 + (size_t)(trial * 37) % 3000, i = 0;
    while (i < n) {
      s ^= s << 13, s ^= s >> 7, s ^= s << 17;
      uint32_t v = (uint32_t)(s >> 20) & ((1u << w) - 1);
      size_t run = (s & 3) ? 1 : 1 + (size_t)(s >> 50) % 40;
      while (run-- && i < n) in[i++] = v;
    }
    fm_buf_reset(&b);
    CHECK(fm_pq_rle_encode(&b, NULL, in, n, w) == FM_OK);
    int ok = rle_decode((unsigned char *)b.buf, b.len, w, out, n) == 0 &&
             memcmp(in, out, n * sizeof *in) == 0;
    CHECK(ok);
    if (!ok) break;
  }
  fm_buf_free(&b);
}

static const fm_pq_column schema3[] = {
    {"id", FM_PQ_INT64, 0}, {"name", FM_PQ_STRING, 1}, {"x", FM_PQ_DOUBLE, 1}};

static void observe_crc(void *ctx, const void *p, size_t n) {
  uint32_t *crc = ctx;
  *crc = fm_crc32c(*crc, p, n);
}

/* A small file: PAR1 at both ends, the footer length before the last
 * magic, the FileMetaData starting with version = 1 (15 02) and holding
 * created_by. */
static void test_file_frame(void) {
  fm_pq_writer *w;
  fm_error e;
  fm_error_init(&e);
  uint32_t crc = 0;
  fm_pq_options o = {.codec = FM_PQ_UNCOMPRESSED, .created_by = "fm-test-writer",
                     .observe = observe_crc, .observe_ctx = &crc};
  CHECK(fm_parquet_writer_open(&w, tmp("frame.parquet"), schema3, 3, &o, &e) == FM_OK);
  for (int r = 0; r < 5; r++) {
    CHECK(fm_parquet_put_int64(w, 0, r, &e) == FM_OK);
    CHECK(fm_parquet_put_string(w, 1, "ab", 2, &e) == FM_OK);
    CHECK((r % 2 ? fm_parquet_put_null(w, 2, &e) : fm_parquet_put_double(w, 2, r, &e)) == FM_OK);
    CHECK(fm_parquet_end_row(w, &e) == FM_OK);
  }
  CHECK(fm_parquet_rows(w) == 5);
  fm_pq_result res;
  CHECK(fm_parquet_writer_close(w, &res, &e) == FM_OK);
  CHECK(res.rows == 5 && res.row_groups == 1);
  size_t n;
  unsigned char *p = read_bytes(tmp("frame.parquet"), &n);
  CHECK(p && n == res.bytes && n > 12);
  if (!p || n <= 12) return;
  CHECK(memcmp(p, "PAR1", 4) == 0 && memcmp(p + n - 4, "PAR1", 4) == 0);
  CHECK(crc == fm_crc32c(0, p, n)); /* the observer saw every byte, in order */
  uint32_t flen = (uint32_t)p[n - 8] | (uint32_t)p[n - 7] << 8 | (uint32_t)p[n - 6] << 16 |
                  (uint32_t)p[n - 5] << 24;
  CHECK(flen > 2 && flen < n - 12);
  const unsigned char *f = p + n - 8 - flen;
  CHECK(f[0] == 0x15 && f[1] == 0x02);
  CHECK(f[flen - 1] == 0x00);
  int found = 0;
  for (size_t i = 0; i + 14 <= flen; i++) found |= !memcmp(f + i, "fm-test-writer", 14);
  CHECK(found);
  /* The first page follows the magic: a PageHeader, type DATA_PAGE (15 00). */
  CHECK(p[4] == 0x15 && p[5] == 0x00);
  fm_free(p);
}

/* Statistics as they go into the footer: signed integers, unsigned-byte
 * strings, NaN never a bound (nan_count instead), -0.0/+0.0 for zero,
 * infinities kept, none at all for an all-NaN chunk. */
static void test_statistics(void) {
  fm_pq_writer *w;
  fm_error e;
  fm_error_init(&e);
  static const fm_pq_column sch[] = {{"i", FM_PQ_INT64, 0},  {"s", FM_PQ_STRING, 1},
                                     {"d", FM_PQ_DOUBLE, 0}, {"z", FM_PQ_DOUBLE, 0},
                                     {"n", FM_PQ_DOUBLE, 1}, {"b", FM_PQ_BOOLEAN, 0}};
  CHECK(fm_parquet_writer_open(&w, tmp("stats.parquet"), sch, 6, NULL, &e) == FM_OK);
  const int64_t iv[4] = {5, -7, INT64_MAX, 0};
  const char *sv[4] = {"z", "\xc3\xa9", NULL, "a"};
  const double dv[4] = {NAN, -INFINITY, 2.5, INFINITY};
  const double zv[4] = {0.0, -0.0, 0.0, NAN};
  for (int r = 0; r < 4; r++) {
    CHECK(fm_parquet_put_int64(w, 0, iv[r], &e) == FM_OK);
    CHECK((sv[r] ? fm_parquet_put_string(w, 1, sv[r], strlen(sv[r]), &e)
                 : fm_parquet_put_null(w, 1, &e)) == FM_OK);
    CHECK(fm_parquet_put_double(w, 2, dv[r], &e) == FM_OK);
    CHECK(fm_parquet_put_double(w, 3, zv[r], &e) == FM_OK);
    CHECK((r % 2 ? fm_parquet_put_null(w, 4, &e) : fm_parquet_put_double(w, 4, NAN, &e)) == FM_OK);
    CHECK(fm_parquet_put_bool(w, 5, r == 2, &e) == FM_OK);
    CHECK(fm_parquet_end_row(w, &e) == FM_OK);
  }
  /* Force the row group out, then read what the footer will say. */
  w->row_group_bytes = 1;
  CHECK(fm_parquet_put_int64(w, 0, 1, &e) == FM_OK);
  CHECK(fm_parquet_put_string(w, 1, "m", 1, &e) == FM_OK);
  CHECK(fm_parquet_put_double(w, 2, 0, &e) == FM_OK);
  CHECK(fm_parquet_put_double(w, 3, 0, &e) == FM_OK);
  CHECK(fm_parquet_put_null(w, 4, &e) == FM_OK);
  CHECK(fm_parquet_put_bool(w, 5, 0, &e) == FM_OK);
  CHECK(fm_parquet_end_row(w, &e) == FM_OK);
  CHECK(w->nrgs == 1);
  if (w->nrgs != 1) {
    fm_parquet_writer_abort(w);
    return;
  }
  const pq_chunk_meta *m = w->rgs[0].cols;
  unsigned char le[8];
  fm_pq_le64(le, (uint64_t)-7);
  CHECK(m[0].has_minmax && m[0].min_len == 8 && !memcmp(m[0].min, le, 8));
  fm_pq_le64(le, (uint64_t)INT64_MAX);
  CHECK(m[0].max_len == 8 && !memcmp(m[0].max, le, 8));
  CHECK(m[1].null_count == 1 && m[1].min_len == 1 && m[1].min[0] == 'a');
  CHECK(m[1].max_len == 2 && !memcmp(m[1].max, "\xc3\xa9", 2)); /* 0xc3 > 'z' unsigned */
  double d;
  uint64_t u;
  memcpy(&u, m[2].min, 8), memcpy(&d, &u, 8);
  CHECK(isinf(d) && d < 0);
  memcpy(&u, m[2].max, 8), memcpy(&d, &u, 8);
  CHECK(isinf(d) && d > 0);
  CHECK(m[2].nan_count == 1 && m[2].null_count == 0);
  memcpy(&u, m[3].min, 8), memcpy(&d, &u, 8);
  CHECK(d == 0 && signbit(d)); /* -0.0 */
  memcpy(&u, m[3].max, 8), memcpy(&d, &u, 8);
  CHECK(d == 0 && !signbit(d)); /* +0.0 */
  CHECK(!m[4].has_minmax && m[4].nan_count == 2 && m[4].null_count == 3);
  CHECK(m[5].min_len == 1 && m[5].min[0] == 0 && m[5].max[0] == 1);
  CHECK(m[0].num_values == 5 && w->rgs[0].num_rows == 5 && m[4].num_values == 5);

  /* A string bound longer than 4 KiB: no min/max for that chunk. */
  w->row_group_bytes = 64 << 20;
  char big[5000];
  memset(big, 'y', sizeof big);
  CHECK(fm_parquet_put_int64(w, 0, 1, &e) == FM_OK);
  CHECK(fm_parquet_put_string(w, 1, big, sizeof big, &e) == FM_OK);
  CHECK(fm_parquet_put_double(w, 2, 0, &e) == FM_OK);
  CHECK(fm_parquet_put_double(w, 3, 0, &e) == FM_OK);
  CHECK(fm_parquet_put_null(w, 4, &e) == FM_OK);
  CHECK(fm_parquet_put_bool(w, 5, 0, &e) == FM_OK);
  CHECK(fm_parquet_end_row(w, &e) == FM_OK);
  CHECK(fm_parquet_put_int64(w, 0, 2, &e) == FM_OK);
  CHECK(fm_parquet_put_string(w, 1, NULL, 0, &e) == FM_OK); /* (NULL, 0) is "" */
  CHECK(fm_parquet_put_double(w, 2, 0, &e) == FM_OK);
  CHECK(fm_parquet_put_double(w, 3, 0, &e) == FM_OK);
  CHECK(fm_parquet_put_null(w, 4, &e) == FM_OK);
  CHECK(fm_parquet_put_bool(w, 5, 0, &e) == FM_OK);
  w->row_group_bytes = 1;
  CHECK(fm_parquet_end_row(w, &e) == FM_OK);
  CHECK(w->nrgs == 2);
  if (w->nrgs == 2) {
    m = w->rgs[1].cols;
    CHECK(!m[1].has_minmax && m[1].null_count == 0 && m[0].has_minmax);
  }
  CHECK(fm_parquet_writer_close(w, NULL, &e) == FM_OK);
}

/* Dictionary encoding: a low-cardinality column stays dictionary-encoded
 * (one dictionary page, RLE_DICTIONARY data pages); a column of distinct
 * values falls back to PLAIN when its dictionary passes dictionary_bytes;
 * the next row group starts a new dictionary; no_dictionary means PLAIN. */
static void test_dictionary(void) {
  static const fm_pq_column sch[] = {
      {"vendor", FM_PQ_STRING, 0}, {"desc", FM_PQ_STRING, 1}, {"code", FM_PQ_STRING, 0}};
  for (int off = 0; off < 2; off++) {
    fm_pq_writer *w;
    fm_error e;
    fm_error_init(&e);
    fm_pq_options o = {.page_bytes = 1024, .dictionary_bytes = 1024, .no_dictionary = off};
    CHECK(fm_parquet_writer_open(&w, tmp("dict.parquet"), sch, 3, &o, &e) == FM_OK);
    char s[64], code[32];
    for (int r = 0; r < 1000; r++) {
      int n = snprintf(s, sizeof s, "description number %d", r);
      CHECK(fm_parquet_put_string(w, 0, r % 3 ? "bloomberg" : "refinitiv", 9, &e) == FM_OK);
      CHECK((r % 4 ? fm_parquet_put_string(w, 1, s, (size_t)n, &e) : fm_parquet_put_null(w, 1, &e)) == FM_OK);
      /* code: 10 values, then distinct ones until the 1 KiB dictionary is full */
      n = r < 200 ? snprintf(code, sizeof code, "k%02d", r % 10)
                  : snprintf(code, sizeof code, "value-%04d", r);
      CHECK(fm_parquet_put_string(w, 2, code, (size_t)n, &e) == FM_OK);
      if (r == 499) w->row_group_bytes = 1; /* end the first row group here */
      CHECK(fm_parquet_end_row(w, &e) == FM_OK);
      if (r == 499) w->row_group_bytes = 64 << 20;
    }
    CHECK(w->nrgs == 1);
    if (w->nrgs != 1) {
      fm_parquet_writer_abort(w);
      continue;
    }
    const pq_chunk_meta *m = w->rgs[0].cols;
    if (!off) {
      CHECK(m[0].dict_page_offset > 0 && m[0].dict_pages >= 1 && m[0].plain_pages == 0);
      CHECK(m[0].data_page_offset > m[0].dict_page_offset);
      CHECK(m[1].dict_page_offset > 0 && m[1].dict_pages >= 1 && m[1].plain_pages >= 1);
      CHECK(!w->cols[1].dict_on && w->cols[0].dict_on); /* desc fell back in chunk 2 */
      CHECK(m[2].dict_pages >= 2 && m[2].plain_pages >= 1); /* code: dictionary full */
      CHECK(fm_strmap_count(&w->cols[0].dict) == 2);
    } else {
      CHECK(m[0].dict_page_offset == -1 && m[0].dict_pages == 0 && m[0].plain_pages >= 1);
      CHECK(m[1].dict_page_offset == -1 && m[1].dict_pages == 0);
    }
    /* The file remains whole: DuckDB reads dictionary files in
     * test_parquet_duckdb.c. */
    fm_pq_result res;
    CHECK(fm_parquet_writer_close(w, &res, &e) == FM_OK && res.rows == 1000);
  }
  fm_error e;
  fm_error_init(&e);
  fm_pq_writer *w;
  fm_pq_options o = {.dictionary_bytes = 100};
  CHECK(fm_parquet_writer_open(&w, tmp("dict.parquet"), sch, 3, &o, &e) == FM_ERR_ARG);
  CHECK(strstr(e.msg, "dictionary_bytes 100 outside") != NULL);
}

static int exists(const char *path);

/* UTC text -> seconds + nanoseconds, then the column's unit (expected
 * values from Python's datetime; the rest by hand). */
static void test_timestamp_text(void) {
  struct {
    const char *s;
    int64_t sec;
    int32_t ns;
  } ok[] = {
      {"1970-01-01T00:00:00Z", 0, 0},
      {"1970-01-01T00:00:00.001Z", 0, 1000000},
      {"2026-12-04T17:46:58.123Z", 1796406418, 123000000},
      {"2026-12-04T17:46", 1796406360, 0},
      {"2024-02-29", 1709164800, 0},
      {"2024-02-29Z", 1709164800, 0},
      {"1969-12-31T23:59:59.9999999Z", -1, 999999900},
      {"0001-01-01T00:00:00Z", -62135596800LL, 0},
      {"9999-12-31 23:59:59.999999999+00:00", 253402300799LL, 999999999},
  };
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
    int64_t sec = 7;
    int32_t ns = 7;
    int r = fm_pq_parse_utc(ok[i].s, strlen(ok[i].s), &sec, &ns);
    if (r || sec != ok[i].sec || ns != ok[i].ns)
      fprintf(stderr, "  %s -> %d %lld %d\n", ok[i].s, r, (long long)sec, (int)ns);
    CHECK(r == 0 && sec == ok[i].sec && ns == ok[i].ns);
  }
  const char *bad[] = {"", "2023-02-29", "2026-13-01", "2026-12-04T24:00", "1900-02-29",
                       "2026-12-04T17:46:58+01:00", "2026-12-04T17:46:58.", "0000-01-01",
                       "2026-12-04T17:46:60", "2026-12-04T17", "26-12-04", "2026-12-04x",
                       "2026-12-04T17:46:58.1234567890Z"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    int64_t sec;
    int32_t ns;
    int r = fm_pq_parse_utc(bad[i], strlen(bad[i]), &sec, &ns);
    if (r == 0) fprintf(stderr, "  accepted %s\n", bad[i]);
    CHECK(r == -1);
  }
  /* Into both units; rounding toward the past; errors name column and row. */
  static const fm_pq_column sch[] = {{"us", FM_PQ_TIMESTAMP_MICROS, 0},
                                     {"ms", FM_PQ_TIMESTAMP_MILLIS, 1},
                                     {"n", FM_PQ_INT64, 0}};
  fm_pq_writer *w;
  fm_error e;
  fm_error_init(&e);
  CHECK(fm_parquet_writer_open(&w, tmp("ts.parquet"), sch, 3, NULL, &e) == FM_OK);
  const char *t = "1969-12-31T23:59:59.9999999Z";
  CHECK(fm_parquet_put_timestamp_text(w, 0, t, strlen(t), &e) == FM_OK);
  CHECK(fm_parquet_put_timestamp_text(w, 1, t, strlen(t), &e) == FM_OK);
  CHECK(fm_parquet_put_timestamp_text(w, 2, t, strlen(t), &e) == FM_ERR_ARG);
  CHECK(strstr(e.msg, "column \"n\", row 1: a timestamp text value for a INT64 column") != NULL);
  fm_parquet_writer_abort(w);
  CHECK(fm_parquet_writer_open(&w, tmp("ts.parquet"), sch, 3, NULL, &e) == FM_OK);
  CHECK(fm_parquet_put_timestamp_text(w, 0, t, strlen(t), &e) == FM_OK);
  CHECK(fm_parquet_put_timestamp_text(w, 1, t, strlen(t), &e) == FM_OK);
  CHECK(w->cols[0].stats.imin == -1 && w->cols[1].stats.imin == -1);
  CHECK(fm_parquet_put_int64(w, 2, 0, &e) == FM_OK);
  CHECK(fm_parquet_end_row(w, &e) == FM_OK);
  fm_error_init(&e);
  CHECK(fm_parquet_put_timestamp_text(w, 0, "2026-12-04 noon", 15, &e) == FM_ERR_ARG);
  CHECK(strstr(e.msg, "column \"us\", row 2: '2026-12-04 noon' is not a UTC time") != NULL);
  fm_parquet_writer_abort(w);
  CHECK(!exists(tmp("ts.parquet")));
}

static int exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

/* Bad input: a clear FM_ERR_ARG naming the column and row; the writer is
 * poisoned and the file removed. */
static void test_errors(void) {
  fm_pq_writer *w;
  fm_error e;
  fm_error_init(&e);
  CHECK(fm_parquet_writer_open(&w, tmp("bad.parquet"), schema3, 3, NULL, &e) == FM_OK);
  CHECK(fm_parquet_put_int64(w, 0, 1, &e) == FM_OK);
  CHECK(fm_parquet_put_string(w, 1, "ok", 2, &e) == FM_OK);
  CHECK(fm_parquet_put_double(w, 2, 1, &e) == FM_OK);
  CHECK(fm_parquet_end_row(w, &e) == FM_OK);
  CHECK(fm_parquet_put_int64(w, 0, 2, &e) == FM_OK);
  CHECK(fm_parquet_put_string(w, 1, "ab\xff", 3, &e) == FM_ERR_ARG);
  CHECK(strstr(e.msg, "column \"name\", row 2: invalid UTF-8 at byte 2") != NULL);
  CHECK(strstr(e.msg, "bad.parquet") != NULL);
  fm_error_init(&e);
  CHECK(fm_parquet_put_double(w, 2, 1, &e) == FM_ERR_ARG); /* poisoned */
  CHECK(strstr(e.msg, "invalid UTF-8") != NULL);
  CHECK(fm_parquet_writer_close(w, NULL, &e) == FM_ERR_ARG);
  CHECK(!exists(tmp("bad.parquet")));

  struct {
    int what;
    const char *msg;
  } cases[] = {
      {0, "column \"id\", row 1: NULL in a REQUIRED column"},
      {1, "column \"x\", row 1: a STRING value for a DOUBLE column"},
      {2, "column \"id\", row 1: a second value"},
      {3, "column \"x\", row 1: no value"},
      {4, "row 1 was started but not ended"},
      {5, "row 1: no column 3"},
      {6, "column \"name\", row 1: invalid UTF-8 at byte 0"}, /* a lone continuation byte */
      {7, "column \"name\", row 1: invalid UTF-8 at byte 1"}, /* an encoded surrogate */
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    fm_error_init(&e);
    CHECK(fm_parquet_writer_open(&w, tmp("bad.parquet"), schema3, 3, NULL, &e) == FM_OK);
    fm_rc rc = FM_OK;
    switch (cases[k].what) {
    case 0: rc = fm_parquet_put_null(w, 0, &e); break;
    case 1: rc = fm_parquet_put_string(w, 2, "1", 1, &e); break;
    case 2:
      fm_parquet_put_int64(w, 0, 1, &e);
      rc = fm_parquet_put_int64(w, 0, 1, &e);
      break;
    case 3:
      fm_parquet_put_int64(w, 0, 1, &e);
      fm_parquet_put_null(w, 1, &e);
      rc = fm_parquet_end_row(w, &e);
      break;
    case 4:
      fm_parquet_put_int64(w, 0, 1, &e);
      rc = fm_parquet_writer_close(w, NULL, &e);
      w = NULL;
      break;
    case 5: rc = fm_parquet_put_int64(w, 3, 1, &e); break;
    case 6: rc = fm_parquet_put_string(w, 1, "\x80", 1, &e); break;
    case 7: rc = fm_parquet_put_string(w, 1, "a\xed\xa0\x80", 4, &e); break;
    }
    CHECK(rc == FM_ERR_ARG);
    if (!strstr(e.msg, cases[k].msg)) fprintf(stderr, "  case %zu: %s\n", k, e.msg);
    CHECK(strstr(e.msg, cases[k].msg) != NULL);
    fm_parquet_writer_abort(w);
    CHECK(!exists(tmp("bad.parquet")));
  }

  /* Schemas and options. */
  fm_pq_column dup[] = {{"a", FM_PQ_INT64, 0}, {"a", FM_PQ_STRING, 1}};
  fm_error_init(&e);
  CHECK(fm_parquet_writer_open(&w, tmp("s.parquet"), dup, 2, NULL, &e) == FM_ERR_ARG && !w);
  CHECK(strstr(e.msg, "column \"a\" appears twice") != NULL);
  fm_pq_column noname[] = {{"", FM_PQ_INT64, 0}};
  CHECK(fm_parquet_writer_open(&w, tmp("s.parquet"), noname, 1, NULL, &e) == FM_ERR_ARG);
  CHECK(fm_parquet_writer_open(&w, tmp("s.parquet"), schema3, 0, NULL, &e) == FM_ERR_ARG);
  fm_pq_options o = {.page_bytes = 10};
  CHECK(fm_parquet_writer_open(&w, tmp("s.parquet"), schema3, 3, &o, &e) == FM_ERR_ARG);
  CHECK(!exists(tmp("s.parquet")));
  fm_error_init(&e);
  CHECK(fm_parquet_writer_open(&w, tmp("no/such/dir.parquet"), schema3, 3, NULL, &e) ==
        FM_ERR_IO);
  CHECK(strstr(e.msg, "no/such/dir.parquet: cannot create") != NULL);
  CHECK(fm_pq_codec_parse("snappy") == FM_PQ_SNAPPY && fm_pq_codec_parse("gzip") == -1);
}

/* Write rows 0..nrows of schema3 (small row groups and pages); the rc. */
static fm_rc write_some(const char *path, size_t nrows, fm_pq_codec codec, fm_pq_result *res,
                        fm_error *e) {
  fm_pq_writer *w;
  fm_pq_options o = {.codec = codec, .row_group_bytes = 4096, .page_bytes = 1024};
  fm_rc rc = fm_parquet_writer_open(&w, path, schema3, 3, &o, e);
  char s[64];
  for (size_t r = 0; r < nrows && rc == FM_OK; r++) {
    int n = snprintf(s, sizeof s, "name %zu ü", r * 7);
    if ((rc = fm_parquet_put_int64(w, 0, (int64_t)r, e)) ||
        (rc = r % 4 ? fm_parquet_put_string(w, 1, s, (size_t)n, e) : fm_parquet_put_null(w, 1, e)) ||
        (rc = fm_parquet_put_double(w, 2, (double)r / 3, e)) || (rc = fm_parquet_end_row(w, e)))
      break;
  }
  if (rc == FM_OK) return fm_parquet_writer_close(w, res, e);
  fm_parquet_writer_abort(w);
  return rc;
}

/* Every allocation may fail: the call fails with FM_ERR_NOMEM, nothing
 * leaks (ASan), and no file remains. */
static void test_alloc_faults(void) {
  for (int codec = FM_PQ_ZSTD; codec <= FM_PQ_UNCOMPRESSED; codec++) {
    int failures = 0, n;
    fm_error e;
    for (n = 1; n < 2000; n++) {
      fm_error_init(&e);
      fm_fault_malloc_after(n);
      fm_pq_result res;
      fm_rc rc = write_some(tmp("af.parquet"), 300, (fm_pq_codec)codec, &res, &e);
      fm_fault_malloc_after(0);
      if (rc == FM_OK) {
        CHECK(res.rows == 300 && res.row_groups > 1);
        break;
      }
      CHECK(rc == FM_ERR_NOMEM);
      CHECK(!exists(tmp("af.parquet")));
      failures++;
    }
    CHECK(n < 2000 && failures > 10);
    unlink(tmp("af.parquet"));
  }
}

/* Streaming: many row groups, and the writer's buffers bounded by the
 * row group size however many rows go in. */
static void test_streaming(void) {
  fm_pq_writer *w;
  fm_error e;
  fm_error_init(&e);
  fm_pq_options o = {.row_group_bytes = 64 << 10, .page_bytes = 8 << 10};
  CHECK(fm_parquet_writer_open(&w, tmp("stream.parquet"), schema3, 3, &o, &e) == FM_OK);
  char s[64];
  size_t peak = 0;
  for (size_t r = 0; r < 200000; r++) {
    int n = snprintf(s, sizeof s, "streamed row %zu", r);
    CHECK(fm_parquet_put_int64(w, 0, (int64_t)r, &e) == FM_OK);
    CHECK(fm_parquet_put_string(w, 1, s, (size_t)n, &e) == FM_OK);
    CHECK(fm_parquet_put_double(w, 2, (double)r, &e) == FM_OK);
    CHECK(fm_parquet_end_row(w, &e) == FM_OK);
    if (r % 1000 == 0) {
      size_t held = w->page.cap + w->comp.cap + w->hdr.cap;
      for (size_t c = 0; c < 3; c++)
        held += w->cols[c].values.cap + w->cols[c].defcap + w->cols[c].chunk.cap;
      if (held > peak) peak = held;
    }
  }
  size_t rgs = w->nrgs;
  fm_pq_result res;
  CHECK(fm_parquet_writer_close(w, &res, &e) == FM_OK);
  CHECK(res.rows == 200000 && res.row_groups == rgs + 1 && res.row_groups > 50);
  /* Buffers: capacities double, so at most ~4x the row group bound. */
  CHECK(peak < 4 * (64 << 10) + 3 * 2 * (8 << 10) + 65536);
  if (peak >= 4 * (64 << 10)) fprintf(stderr, "  peak buffers %zu bytes\n", peak);
}

int main(void) {
  if (scratch_make("fm_parquet_")) return 1;
  FM_RUN(test_thrift_compact);
  FM_RUN(test_rle_hybrid);
  FM_RUN(test_file_frame);
  FM_RUN(test_statistics);
  FM_RUN(test_dictionary);
  FM_RUN(test_timestamp_text);
  FM_RUN(test_errors);
  FM_RUN(test_alloc_faults);
  FM_RUN(test_streaming);
  if (fm_test_failures == 0) scratch_remove();
  FM_TEST_EXIT();
}
