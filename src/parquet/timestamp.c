/* timestamp.c: UTC timestamp text (ISO 8601, as the store writes it) to the
 * INT64 units of a TIMESTAMP column. */
#include "pq_writer.h"

#include <string.h>

/* Days since 1970-01-01 of a proleptic Gregorian date (the civil-from-days
 * inverse of Howard Hinnant's public-domain algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/* n digits at s[*at] as a number; -1 when they are not all digits. */
static int64_t digits(const char *s, size_t len, size_t *at, int n) {
  int64_t v = 0;
  for (int i = 0; i < n; i++, (*at)++) {
    if (*at >= len || s[*at] < '0' || s[*at] > '9') return -1;
    v = v * 10 + (s[*at] - '0');
  }
  return v;
}

static int expect(const char *s, size_t len, size_t *at, char c) {
  if (*at < len && s[*at] == c) {
    (*at)++;
    return 1;
  }
  return 0;
}

int fm_pq_parse_utc(const char *s, size_t len, int64_t *sec, int32_t *nsec) {
  static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  size_t at = 0;
  int64_t y = digits(s, len, &at, 4), mo, d, h = 0, mi = 0, se = 0, frac = 0;
  if (y < 1 || !expect(s, len, &at, '-') || (mo = digits(s, len, &at, 2)) < 1 || mo > 12 ||
      !expect(s, len, &at, '-') || (d = digits(s, len, &at, 2)) < 1 || d > mdays[mo - 1])
    return -1;
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (mo == 2 && d == 29 && !leap) return -1;
  if (at < len && (s[at] == 'T' || s[at] == ' ')) {
    at++;
    if ((h = digits(s, len, &at, 2)) < 0 || h > 23 || !expect(s, len, &at, ':') ||
        (mi = digits(s, len, &at, 2)) < 0 || mi > 59)
      return -1;
    if (expect(s, len, &at, ':')) {
      if ((se = digits(s, len, &at, 2)) < 0 || se > 59) return -1;
      if (expect(s, len, &at, '.')) {
        int nd = 0;
        while (at < len && s[at] >= '0' && s[at] <= '9' && nd < 9) {
          frac = frac * 10 + (s[at++] - '0');
          nd++;
        }
        if (nd == 0) return -1;
        for (; nd < 9; nd++) frac *= 10;
      }
    }
  }
  if (!expect(s, len, &at, 'Z') && at + 6 <= len && s[at] == '+') {
    size_t o = at + 1;
    if (digits(s, len, &o, 2) != 0 || !expect(s, len, &o, ':') || digits(s, len, &o, 2) != 0)
      return -1;
    at = o;
  }
  if (at != len) return -1;
  *sec = days_from_civil(y, (int)mo, (int)d) * 86400 + h * 3600 + mi * 60 + se;
  *nsec = (int32_t)frac;
  return 0;
}

fm_rc fm_parquet_put_timestamp_text(fm_pq_writer *w, size_t col, const char *s, size_t n,
                                    fm_error *err) {
  int ok = w && col < w->ncols &&
           (w->cols[col].type == FM_PQ_TIMESTAMP_MICROS ||
            w->cols[col].type == FM_PQ_TIMESTAMP_MILLIS);
  fm_rc rc = fm_pq_begin_put(w, col, ok, "timestamp text", err);
  if (rc) return rc;
  if (!s) s = "";
  int64_t sec;
  int32_t ns;
  if (fm_pq_parse_utc(s, n, &sec, &ns) != 0) {
    char shown[64];
    size_t k = n < sizeof shown - 1 ? n : sizeof shown - 1;
    memcpy(shown, s, k);
    shown[k] = '\0';
    fm_utf8_scrub(shown);
    return fm_pq_fail(w, err, FM_ERR_ARG,
                      "%s: column \"%s\", row %llu: '%s' is not a UTC time "
                      "YYYY-MM-DD[THH:MM[:SS[.fff]]][Z]",
                      w->path, w->cols[col].name, (unsigned long long)w->rows + 1, shown);
  }
  int64_t v = w->cols[col].type == FM_PQ_TIMESTAMP_MICROS ? sec * 1000000 + ns / 1000
                                                          : sec * 1000 + ns / 1000000;
  return fm_parquet_put_int64(w, col, v, err);
}
