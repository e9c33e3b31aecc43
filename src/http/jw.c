/* jw.c: appending JSON text straight to a buffer, for replies hot enough
 * that building a jansson tree (an allocation per value, a hash table per
 * object) and dumping it costs more than the work behind them.
 *
 * Byte for byte what json_dumps(JSON_COMPACT | JSON_REAL_PRECISION(9))
 * writes for the same values, so a handler can switch writers without a
 * client seeing a difference (tests/unit/test_http_parts.c checks this
 * against jansson): the same escapes (\" \\ \b \f \n \r \t, other controls as
 * \u00XX, '/' and non-ASCII verbatim), the same UTF-8 validation (a
 * string jansson's json_string rejects is rejected here), the same reals
 * ("%.9g", ".0" added to integral values, exponents without '+' or
 * leading zeros). */
#include "http_internal.h"

/* Strings go through fm_buf_json_str (src/util/json.c), which the store's
 * exports use too; this file adds the numbers. */

#include <math.h>
#include <stdio.h>
#include <string.h>

fm_rc fm_jw_real(fm_buf *b, double v, fm_error *err) {
  if (!isfinite(v)) return fm_error_set(err, FM_ERR_INTERNAL, "a score is not finite");
  char t[40];
  int len = snprintf(t, sizeof t - 2, "%.9g", v);
  if (len < 0 || (size_t)len >= sizeof t - 2)
    return fm_error_set(err, FM_ERR_INTERNAL, "cannot format a number");
  /* "%.9g" uses the C locale's '.', which is all this process runs in. */
  if (!strchr(t, '.') && !strchr(t, 'e')) {
    t[len++] = '.';
    t[len++] = '0';
    t[len] = '\0';
  }
  char *e = strchr(t, 'e');
  if (e) { /* "1e+05" -> "1e5", "1e-05" -> "1e-5" */
    char *start = e + 1, *digits = e + 2;
    if (*start == '-') start++;
    while (*digits == '0') digits++;
    if (digits != start) {
      memmove(start, digits, strlen(digits) + 1);
      len = (int)strlen(t);
    }
  }
  if (fm_buf_append(b, t, (size_t)len))
    return fm_error_set(err, FM_ERR_NOMEM, "out of memory building the reply");
  return FM_OK;
}

fm_rc fm_jw_score4(fm_buf *b, double v, fm_error *err) {
  double r = round(v * 1e4);
  /* |r| < 1e9: the decimal r / 10^4 has at most 9 significant digits, so
   * "%.9g" of the double nearest to it prints exactly that decimal, in
   * fixed notation (|v| is 0 or in [1e-4, 1e5)): write it from the integer. */
  if (!(fabs(r) < 1e9)) return fm_jw_real(b, r / 1e4, err);
  char t[24], *o = t + sizeof t, *end = o;
  uint64_t n = (uint64_t)fabs(r);
  unsigned frac = (unsigned)(n % 10000);
  uint64_t whole = n / 10000;
  int fd = 4;
  while (fd > 0 && frac % 10 == 0) { /* "%g" drops trailing zeros */
    frac /= 10;
    fd--;
  }
  if (fd == 0) { /* integral: jansson adds ".0" */
    *--o = '0';
  } else {
    for (int i = 0; i < fd; i++) {
      *--o = (char)('0' + frac % 10);
      frac /= 10;
    }
  }
  *--o = '.';
  do {
    *--o = (char)('0' + whole % 10);
    whole /= 10;
  } while (whole);
  if (signbit(r)) *--o = '-'; /* -0.0 too, as "%.9g" writes it */
  if (fm_buf_append(b, o, (size_t)(end - o)))
    return fm_error_set(err, FM_ERR_NOMEM, "out of memory building the reply");
  return FM_OK;
}

fm_rc fm_jw_int(fm_buf *b, long long v, fm_error *err) {
  char t[24], *o = t + sizeof t, *end = o;
  unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
  do {
    *--o = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) *--o = '-';
  if (fm_buf_append(b, o, (size_t)(end - o)))
    return fm_error_set(err, FM_ERR_NOMEM, "out of memory building the reply");
  return FM_OK;
}
