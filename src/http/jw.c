/* jw.c: appending JSON text straight to a buffer, for replies hot enough
 * that building a jansson tree (an allocation per value, a hash table per
 * object) and dumping it costs more than the work behind them.
 *
 * Byte for byte what json_dumps(JSON_COMPACT | JSON_REAL_PRECISION(9))
 * writes for the same values, so a handler can switch writers without a
 * client seeing a difference (tests/unit/test_jw.c checks this against
 * jansson): the same escapes (\" \\ \b \f \n \r \t, other controls as
 * \u00XX, '/' and non-ASCII verbatim), the same UTF-8 validation (a
 * string jansson's json_string rejects is rejected here), the same reals
 * ("%.9g", ".0" added to integral values, exponents without '+' or
 * leading zeros). */
#include "http_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (n bytes available), 0 if
 * invalid: overlong forms, surrogates and code points past U+10FFFF are
 * invalid, as in jansson's utf8_check_string. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t len;
  uint32_t cp;
  if (c < 0x80) return 1;
  if (c < 0xC2) return 0; /* continuation byte or overlong 2-byte lead */
  if (c < 0xE0) {
    len = 2;
    cp = c & 0x1F;
  } else if (c < 0xF0) {
    len = 3;
    cp = c & 0x0F;
  } else if (c < 0xF5) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (len > n) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return 0; /* overlong */
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

fm_rc fm_jw_str(fm_buf *b, const char *s, size_t n, fm_error *err) {
  static const char hex[] = "0123456789ABCDEF";
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  /* worst case every byte becomes \u00XX */
  if (fm_grow((void **)&b->buf, &b->cap, b->len + 6 * n + 3, 1)) goto nomem;
  char *o = b->buf + b->len;
  *o++ = '"';
  while (p < end) {
    unsigned char c = *p;
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      *o++ = (char)c;
      p++;
      continue;
    }
    if (c >= 0x80) {
      size_t l = utf8_len(p, (size_t)(end - p));
      if (!l) {
        *o = '\0'; /* leave the buffer a valid C string; len unchanged */
        return fm_error_set(err, FM_ERR_ARG, "string is not valid UTF-8");
      }
      memcpy(o, p, l);
      o += l;
      p += l;
      continue;
    }
    *o++ = '\\';
    switch (c) {
      case '"': *o++ = '"'; break;
      case '\\': *o++ = '\\'; break;
      case '\b': *o++ = 'b'; break;
      case '\f': *o++ = 'f'; break;
      case '\n': *o++ = 'n'; break;
      case '\r': *o++ = 'r'; break;
      case '\t': *o++ = 't'; break;
      default:
        *o++ = 'u';
        *o++ = '0';
        *o++ = '0';
        *o++ = hex[c >> 4];
        *o++ = hex[c & 15];
    }
    p++;
  }
  *o++ = '"';
  *o = '\0';
  b->len = (size_t)(o - b->buf);
  return FM_OK;
nomem:
  return fm_error_set(err, FM_ERR_NOMEM, "out of memory building the reply");
}

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
