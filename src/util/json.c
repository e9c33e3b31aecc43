/* json.c: appending a JSON string literal straight to a buffer, byte for
 * byte as jansson's compact dump writes it (the same escapes: \" \\ \b \f
 * \n \r \t, other controls as \u00XX, '/' and non-ASCII verbatim; the same
 * UTF-8 validation).  Used where building a jansson tree per value costs
 * more than the work behind it: the HTTP lookup replies and the streamed
 * mapping exports. */
#include "fm_util.h"

#include <stdint.h>
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

size_t fm_utf8_char_len(const char *s, size_t n) {
  return n ? utf8_len((const unsigned char *)s, n) : 0;
}

size_t fm_utf8_invalid_at(const char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    if ((unsigned char)s[i] < 0x80) {
      if (!s[i]) return i;
      i++;
      continue;
    }
    size_t l = utf8_len((const unsigned char *)s + i, n - i);
    if (!l) return i;
    i += l;
  }
  return (size_t)-1;
}

void fm_utf8_scrub(char *s) {
  unsigned char *p = (unsigned char *)s;
  size_t n = strlen(s);
  while (*p) {
    size_t l = utf8_len(p, n);
    if (!l) {
      *p = '?';
      l = 1;
    }
    p += l;
    n -= l;
  }
}

fm_rc fm_buf_json_str(fm_buf *b, const char *s, size_t n, fm_error *err) {
  static const char hex[] = "0123456789ABCDEF";
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  /* worst case every byte becomes \u00XX */
  if (fm_grow((void **)&b->buf, &b->cap, b->len + 6 * n + 3, 1)) goto nomem;
  char *o = b->buf + b->len;
  *o++ = '"';
  while (p < end) {
    /* eight plain bytes at a time (no control byte, quote, backslash or
     * non-ASCII byte: the word tests below are exact for "any such byte") */
    while (end - p >= 8) {
      uint64_t v;
      memcpy(&v, p, 8);
      const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
      uint64_t q = v ^ (ones * '"'), bs = v ^ (ones * '\\');
      if ((((v - ones * 0x20) & ~v) | ((q - ones) & ~q) | ((bs - ones) & ~bs) | v) & high)
        break;
      memcpy(o, p, 8);
      o += 8;
      p += 8;
    }
    if (p == end) break;
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
  return fm_error_set(err, FM_ERR_NOMEM, "out of memory writing JSON");
}

