/* bench_parquet.c: write N rows of a snapshot-like table (ids, vendor
 * field ids, names, descriptions, a score, timestamps, a flag, a mostly
 * NULL comment) as Parquet or as gzip CSV (the snapshot's current
 * format: zlib level 6, RFC 4180 cells), and print rows, bytes and
 * seconds.  tests/bench/bench_parquet.sh runs it under GNU time for the
 * peak RSS.  Built on demand: cmake --build build --target bench_parquet.
 *
 *   bench_parquet parquet|parquet-plain|csv.gz ROWS OUT [zstd|snappy|uncompressed]
 *
 * (parquet-plain: no dictionary encoding)
 */
#include "fm_parquet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static const char *words[] = {
    "last",  "price", "bid",    "ask",      "volume", "trade",  "close",  "open",
    "high",  "low",   "yield",  "spread",   "mid",    "change", "net",    "percent",
    "index", "value", "settle", "official", "vwap",   "turnover", "quote", "time",
    "date",  "real",  "time",   "exchange", "market", "day",    "previous", "adjusted"};
#define NWORDS (sizeof words / sizeof *words)

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return rng;
}

typedef struct row {
  int64_t id;
  char field[32], name[96], desc[400], comment[64];
  size_t nfield, nname, ndesc, ncomment;
  const char *vendor;
  double score;
  int64_t created_us, updated_us;
  int has_updated, has_comment, reviewed;
} row;

static size_t phrase(char *out, size_t cap, int nw, int upper) {
  size_t n = 0;
  for (int i = 0; i < nw && n + 16 < cap; i++) {
    const char *w = words[next() % NWORDS];
    if (i) out[n++] = upper ? '_' : ' ';
    for (; *w && n + 1 < cap; w++) out[n++] = upper ? (char)(*w - 32) : *w;
  }
  out[n] = '\0';
  return n;
}

static void make_row(row *r, int64_t i) {
  r->id = i + 1;
  r->vendor = next() % 2 ? "bloomberg" : "refinitiv";
  r->nfield = phrase(r->field, sizeof r->field, 2, 1);
  r->nfield += (size_t)snprintf(r->field + r->nfield, sizeof r->field - r->nfield, "_%lld",
                                (long long)(i % 997));
  r->nname = phrase(r->name, sizeof r->name, 3 + (int)(next() % 4), 0);
  r->ndesc = phrase(r->desc, sizeof r->desc, 10 + (int)(next() % 30), 0);
  r->score = (double)(next() % 10000) / 10000.0;
  r->created_us = 1700000000000000LL + i * 1000003LL;
  r->has_updated = next() % 3 != 0;
  r->updated_us = r->created_us + (int64_t)(next() % 86400000000ULL);
  r->reviewed = next() % 5 == 0;
  r->has_comment = next() % 20 == 0;
  r->ncomment = r->has_comment ? (size_t)snprintf(r->comment, sizeof r->comment,
                                                  "checked by \"ops\", ticket %lld",
                                                  (long long)(next() % 100000))
                               : 0;
}

static const fm_pq_column cols[] = {
    {"id", FM_PQ_INT64, 0},          {"vendor", FM_PQ_STRING, 0},
    {"field_id", FM_PQ_STRING, 0},   {"name", FM_PQ_STRING, 0},
    {"description", FM_PQ_STRING, 1}, {"score", FM_PQ_DOUBLE, 0},
    {"created_at", FM_PQ_TIMESTAMP_MICROS, 0}, {"updated_at", FM_PQ_TIMESTAMP_MICROS, 1},
    {"reviewed", FM_PQ_BOOLEAN, 0},  {"comment", FM_PQ_STRING, 1}};

static int write_parquet(const char *out, int64_t n, fm_pq_codec codec, int plain,
                         uint64_t *bytes) {
  fm_pq_writer *w;
  fm_error e;
  fm_error_init(&e);
  fm_pq_options o = {.codec = codec, .no_dictionary = plain};
  fm_rc rc = fm_parquet_writer_open(&w, out, cols, sizeof cols / sizeof *cols, &o, &e);
  row r;
  for (int64_t i = 0; i < n && rc == FM_OK; i++) {
    make_row(&r, i);
    if ((rc = fm_parquet_put_int64(w, 0, r.id, &e)) ||
        (rc = fm_parquet_put_string(w, 1, r.vendor, strlen(r.vendor), &e)) ||
        (rc = fm_parquet_put_string(w, 2, r.field, r.nfield, &e)) ||
        (rc = fm_parquet_put_string(w, 3, r.name, r.nname, &e)) ||
        (rc = fm_parquet_put_string(w, 4, r.desc, r.ndesc, &e)) ||
        (rc = fm_parquet_put_double(w, 5, r.score, &e)) ||
        (rc = fm_parquet_put_int64(w, 6, r.created_us, &e)) ||
        (rc = r.has_updated ? fm_parquet_put_int64(w, 7, r.updated_us, &e)
                            : fm_parquet_put_null(w, 7, &e)) ||
        (rc = fm_parquet_put_bool(w, 8, r.reviewed, &e)) ||
        (rc = r.has_comment ? fm_parquet_put_string(w, 9, r.comment, r.ncomment, &e)
                            : fm_parquet_put_null(w, 9, &e)) ||
        (rc = fm_parquet_end_row(w, &e)))
      break;
  }
  fm_pq_result res;
  if (rc == FM_OK) rc = fm_parquet_writer_close(w, &res, &e);
  else fm_parquet_writer_abort(w);
  if (rc) {
    fprintf(stderr, "bench_parquet: %s\n", e.msg);
    return 1;
  }
  *bytes = res.bytes;
  fprintf(stderr, "row_groups %llu\n", (unsigned long long)res.row_groups);
  return 0;
}

static void ts_text(fm_buf *b, int64_t us) {
  /* ISO 8601 UTC, as the CSV snapshots write timestamps. */
  int64_t s = us / 1000000, days = s / 86400, sod = s % 86400;
  /* civil from days (Howard Hinnant's algorithm) */
  int64_t z = days + 719468, era = z / 146097, doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1;
  int64_t m = mp < 10 ? mp + 3 : mp - 9;
  fm_buf_printf(b, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%06lldZ",
                (long long)(y + (m <= 2)), (long long)m, (long long)d,
                (long long)(sod / 3600), (long long)(sod / 60 % 60), (long long)(sod % 60),
                (long long)(us % 1000000));
}

static int write_csv_gz(const char *out, int64_t n, uint64_t *bytes) {
  gzFile gz = gzopen(out, "wb6");
  if (!gz) return 1;
  fm_buf b;
  fm_buf_init(&b);
  fm_buf_puts(&b, "id,vendor,field_id,name,description,score,created_at,updated_at,reviewed,"
                  "comment\n");
  row r;
  for (int64_t i = 0; i < n; i++) {
    make_row(&r, i);
    fm_buf_printf(&b, "%lld,%s,", (long long)r.id, r.vendor);
    fm_buf_csv_cell(&b, r.field, r.nfield, 1);
    fm_buf_putc(&b, ',');
    fm_buf_csv_cell(&b, r.name, r.nname, 1);
    fm_buf_putc(&b, ',');
    fm_buf_csv_cell(&b, r.desc, r.ndesc, 1);
    fm_buf_printf(&b, ",%.17g,", r.score);
    ts_text(&b, r.created_us);
    fm_buf_putc(&b, ',');
    if (r.has_updated) ts_text(&b, r.updated_us);
    fm_buf_printf(&b, ",%d,", r.reviewed);
    if (r.has_comment) fm_buf_csv_cell(&b, r.comment, r.ncomment, 1);
    fm_buf_putc(&b, '\n');
    if (b.len > 65536) {
      if (gzwrite(gz, b.buf, (unsigned)b.len) != (int)b.len) return 1;
      fm_buf_reset(&b);
    }
  }
  if (b.len && gzwrite(gz, b.buf, (unsigned)b.len) != (int)b.len) return 1;
  fm_buf_free(&b);
  if (gzclose(gz) != Z_OK) return 1;
  FILE *fp = fopen(out, "rb");
  if (!fp) return 1;
  fseek(fp, 0, SEEK_END);
  *bytes = (uint64_t)ftell(fp);
  fclose(fp);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: bench_parquet parquet|parquet-plain|csv.gz ROWS OUT "
                    "[zstd|snappy|uncompressed]\n");
    return 2;
  }
  int64_t n = atoll(argv[2]);
  int codec = argc > 4 ? fm_pq_codec_parse(argv[4]) : FM_PQ_ZSTD;
  if (n < 0 || codec < 0) {
    fprintf(stderr, "bench_parquet: bad rows or codec\n");
    return 2;
  }
  uint64_t bytes = 0;
  double t0 = fm_now();
  int plain = !strcmp(argv[1], "parquet-plain");
  int bad = plain || !strcmp(argv[1], "parquet")
                ? write_parquet(argv[3], n, (fm_pq_codec)codec, plain, &bytes)
            : !strcmp(argv[1], "csv.gz") ? write_csv_gz(argv[3], n, &bytes)
                                         : 2;
  if (bad) return bad;
  printf("%s rows %lld bytes %llu seconds %.3f\n", argv[1], (long long)n,
         (unsigned long long)bytes, fm_now() - t0);
  return 0;
}
