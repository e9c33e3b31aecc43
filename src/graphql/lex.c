/* lex.c: the lexical grammar of GraphQL (spec section 2.1): ignored tokens
 * (BOM, blanks, line terminators, comments, commas), punctuators, names,
 * int and float values, strings with escapes (\uXXXX with surrogate
 * pairs, \u{...}) and block strings (with the BlockStringValue
 * indentation rule).  Locations are 1-based lines and byte columns. */
#include "gql_internal.h"

#include <string.h>

void gql_lex_init(gql_lexer *lx, const char *src, size_t len, size_t max_tokens) {
  memset(lx, 0, sizeof *lx);
  lx->src = lx->p = lx->line_start = src;
  lx->end = src + len;
  lx->line = 1;
  lx->max_tokens = max_tokens;
  fm_buf_init(&lx->sval);
}

void gql_lex_free(gql_lexer *lx) { fm_buf_free(&lx->sval); }

static gql_loc here(const gql_lexer *lx, const char *p) {
  gql_loc l = {lx->line, (unsigned)(p - lx->line_start) + 1};
  return l;
}

static fm_rc fail(gql_lexer *lx, const char *p, fm_error *err, const char *msg) {
  lx->loc = here(lx, p);
  return fm_error_set(err, FM_ERR_PARSE, "%u:%u: Syntax Error: %s", lx->loc.line, lx->loc.col,
                      msg);
}

static void newline(gql_lexer *lx, const char *after) {
  lx->line++;
  lx->line_start = after;
}

/* Skip ignored tokens. */
static void skip_ignored(gql_lexer *lx) {
  const char *p = lx->p;
  for (;;) {
    if (p < lx->end && (*p == ' ' || *p == '\t' || *p == ',')) {
      p++;
    } else if (p < lx->end && *p == '\n') {
      newline(lx, ++p);
    } else if (p < lx->end && *p == '\r') {
      p++;
      if (p < lx->end && *p == '\n') p++;
      newline(lx, p);
    } else if (lx->end - p >= 3 && (unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB &&
               (unsigned char)p[2] == 0xBF) {
      p += 3;
    } else if (p < lx->end && *p == '#') {
      while (p < lx->end && *p != '\n' && *p != '\r') p++;
    } else {
      break;
    }
  }
  lx->p = p;
}

static int name_start(char c) {
  return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}
static int name_cont(char c) { return name_start(c) || (c >= '0' && c <= '9'); }
static int digit(char c) { return c >= '0' && c <= '9'; }

static fm_rc lex_number(gql_lexer *lx, fm_error *err) {
  const char *s = lx->p, *p = s;
  int is_float = 0;
  if (*p == '-') p++;
  if (p < lx->end && *p == '0') {
    p++;
    if (p < lx->end && digit(*p)) return fail(lx, p, err, "Invalid number, unexpected digit after 0");
  } else if (p < lx->end && digit(*p)) {
    while (p < lx->end && digit(*p)) p++;
  } else {
    return fail(lx, p, err, "Invalid number, expected digit");
  }
  if (p < lx->end && *p == '.') {
    is_float = 1;
    p++;
    if (p >= lx->end || !digit(*p)) return fail(lx, p, err, "Invalid number, expected digit after '.'");
    while (p < lx->end && digit(*p)) p++;
  }
  if (p < lx->end && (*p == 'e' || *p == 'E')) {
    is_float = 1;
    p++;
    if (p < lx->end && (*p == '+' || *p == '-')) p++;
    if (p >= lx->end || !digit(*p)) return fail(lx, p, err, "Invalid number, expected digit in exponent");
    while (p < lx->end && digit(*p)) p++;
  }
  if (p < lx->end && (*p == '.' || name_start(*p)))
    return fail(lx, p, err, "Invalid number, unexpected character after the number");
  lx->tok = is_float ? GT_FLOAT : GT_INT;
  lx->ts = s;
  lx->tn = (size_t)(p - s);
  lx->p = p;
  return FM_OK;
}

static fm_rc put_cp(gql_lexer *lx, unsigned long cp) {
  char b[4];
  size_t n;
  if (cp < 0x80) {
    b[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    b[0] = (char)(0xC0 | (cp >> 6));
    b[1] = (char)(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    b[0] = (char)(0xE0 | (cp >> 12));
    b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    b[2] = (char)(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    b[0] = (char)(0xF0 | (cp >> 18));
    b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    b[3] = (char)(0x80 | (cp & 0x3F));
    n = 4;
  }
  return fm_buf_append(&lx->sval, b, n);
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* \uXXXX or \u{X...} at p (pointing after 'u'); -1 when malformed. */
static long read_hex(const gql_lexer *lx, const char **pp) {
  const char *p = *pp;
  long v = 0;
  if (p < lx->end && *p == '{') {
    p++;
    int n = 0;
    while (p < lx->end && *p != '}') {
      int h = hexval(*p++);
      if (h < 0 || ++n > 6) return -1;
      v = v * 16 + h;
    }
    if (p >= lx->end || n == 0 || v > 0x10FFFF) return -1;
    *pp = p + 1;
    return v;
  }
  if (lx->end - p < 4) return -1;
  for (int i = 0; i < 4; i++) {
    int h = hexval(p[i]);
    if (h < 0) return -1;
    v = v * 16 + h;
  }
  *pp = p + 4;
  return v;
}

static fm_rc lex_escape(gql_lexer *lx, const char **pp, fm_error *err) {
  const char *p = *pp, *at = p - 1;
  if (p >= lx->end) return fail(lx, at, err, "Unterminated string");
  static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
  const char *k = memchr(from, *p, 8);
  if (k && *p) {
    *pp = p + 1;
    return fm_buf_putc(&lx->sval, to[k - from]);
  }
  if (*p != 'u') return fail(lx, at, err, "Invalid character escape sequence");
  p++;
  long cp = read_hex(lx, &p);
  if (cp >= 0xD800 && cp <= 0xDBFF && lx->end - p >= 2 && p[0] == '\\' && p[1] == 'u') {
    const char *q = p + 2;
    long lo = read_hex(lx, &q);
    if (lo >= 0xDC00 && lo <= 0xDFFF) {
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      p = q;
    }
  }
  if (cp < 0 || (cp >= 0xD800 && cp <= 0xDFFF))
    return fail(lx, at, err, "Invalid Unicode escape sequence");
  *pp = p;
  return put_cp(lx, (unsigned long)cp);
}

/* One source character of a string at *pp: valid UTF-8, no control
 * character but tab. */
static fm_rc string_char(gql_lexer *lx, const char **pp, fm_error *err) {
  const char *p = *pp;
  unsigned char c = (unsigned char)*p;
  if (c < 0x20 && c != '\t') return fail(lx, p, err, "Invalid character within String");
  size_t n = fm_utf8_char_len(p, (size_t)(lx->end - p));
  if (!n) return fail(lx, p, err, "Invalid UTF-8 within String");
  *pp = p + n;
  return fm_buf_append(&lx->sval, p, n);
}

static fm_rc lex_string(gql_lexer *lx, fm_error *err) {
  const char *p = lx->p + 1;
  fm_buf_reset(&lx->sval);
  for (;;) {
    if (p >= lx->end || *p == '\n' || *p == '\r') return fail(lx, p, err, "Unterminated string");
    fm_rc rc;
    if (*p == '"') break;
    if (*p == '\\') {
      p++;
      rc = lex_escape(lx, &p, err);
    } else {
      rc = string_char(lx, &p, err);
    }
    if (rc) return rc;
  }
  if (fm_buf_putc(&lx->sval, '\0')) return FM_ERR_NOMEM;
  lx->sval.len--;
  lx->tok = GT_STRING;
  lx->p = p + 1;
  return FM_OK;
}

/* BlockStringValue (spec 2.9.4) over the raw text in lx->sval, in place. */
static fm_rc block_value(gql_lexer *lx) {
  char *raw = lx->sval.buf;
  size_t n = lx->sval.len;
  /* split into lines at \r\n, \n, \r */
  size_t nl = 1;
  for (size_t i = 0; i < n; i++)
    if (raw[i] == '\n' || (raw[i] == '\r' && !(i + 1 < n && raw[i + 1] == '\n'))) nl++;
  size_t *st = fm_malloc(nl * 2 * sizeof *st);
  if (!st) return FM_ERR_NOMEM;
  size_t *en = st + nl, k = 0, s = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i == n || raw[i] == '\n' || raw[i] == '\r') {
      st[k] = s;
      en[k++] = i;
      if (i < n && raw[i] == '\r' && i + 1 < n && raw[i + 1] == '\n') i++;
      s = i + 1;
    }
  }
  size_t common = (size_t)-1;
  for (size_t i = 1; i < nl; i++) {
    size_t ind = 0;
    while (st[i] + ind < en[i] && (raw[st[i] + ind] == ' ' || raw[st[i] + ind] == '\t')) ind++;
    if (st[i] + ind < en[i] && ind < common) common = ind;
  }
  if (common != (size_t)-1)
    for (size_t i = 1; i < nl; i++) st[i] = en[i] - st[i] < common ? en[i] : st[i] + common;
  size_t first = 0, last = nl;
  for (; first < nl; first++) {
    size_t j = st[first];
    while (j < en[first] && (raw[j] == ' ' || raw[j] == '\t')) j++;
    if (j < en[first]) break;
  }
  while (last > first) {
    size_t j = st[last - 1];
    while (j < en[last - 1] && (raw[j] == ' ' || raw[j] == '\t')) j++;
    if (j < en[last - 1]) break;
    last--;
  }
  size_t out = 0;
  for (size_t i = first; i < last; i++) {
    if (i > first) raw[out++] = '\n';
    memmove(raw + out, raw + st[i], en[i] - st[i]);
    out += en[i] - st[i];
  }
  raw[out] = '\0';
  lx->sval.len = out;
  fm_free(st);
  return FM_OK;
}

static fm_rc lex_block(gql_lexer *lx, fm_error *err) {
  const char *p = lx->p + 3;
  fm_buf_reset(&lx->sval);
  for (;;) {
    if (p >= lx->end) return fail(lx, p, err, "Unterminated string");
    fm_rc rc = FM_OK;
    if (lx->end - p >= 3 && !memcmp(p, "\"\"\"", 3)) break;
    if (lx->end - p >= 4 && !memcmp(p, "\\\"\"\"", 4)) {
      rc = fm_buf_append(&lx->sval, "\"\"\"", 3);
      p += 4;
    } else if (*p == '\n' || *p == '\r') {
      const char *q = p + 1;
      if (*p == '\r' && q < lx->end && *q == '\n') q++;
      rc = fm_buf_append(&lx->sval, p, (size_t)(q - p));
      newline(lx, q);
      p = q;
    } else {
      rc = string_char(lx, &p, err);
    }
    if (rc) return rc;
  }
  if (fm_buf_putc(&lx->sval, '\0')) return FM_ERR_NOMEM;
  lx->sval.len--;
  if (block_value(lx)) return FM_ERR_NOMEM;
  lx->tok = GT_BLOCK;
  lx->p = p + 3;
  return FM_OK;
}

fm_rc gql_lex_next(gql_lexer *lx, fm_error *err) {
  skip_ignored(lx);
  const char *p = lx->p;
  lx->loc = here(lx, p);
  if (p >= lx->end) {
    lx->tok = GT_EOF;
    return FM_OK;
  }
  if (lx->max_tokens && ++lx->ntokens > lx->max_tokens)
    return fm_error_set(err, FM_ERR_ARG,
                        "%u:%u: the document has more than %zu tokens (the limit)", lx->loc.line,
                        lx->loc.col, lx->max_tokens);
  char c = *p;
  if (strchr("!$&()=:@[]{}|", c) && c) {
    lx->tok = GT_PUNCT;
    lx->punct = c;
    lx->p = p + 1;
    return FM_OK;
  }
  if (c == '.') {
    if (lx->end - p >= 3 && p[1] == '.' && p[2] == '.') {
      lx->tok = GT_PUNCT;
      lx->punct = '.';
      lx->p = p + 3;
      return FM_OK;
    }
    return fail(lx, p, err, "Unexpected '.', did you mean '...'?");
  }
  if (name_start(c)) {
    const char *q = p;
    while (q < lx->end && name_cont(*q)) q++;
    lx->tok = GT_NAME;
    lx->ts = p;
    lx->tn = (size_t)(q - p);
    lx->p = q;
    return FM_OK;
  }
  if (c == '-' || digit(c)) return lex_number(lx, err);
  if (c == '"') {
    if (lx->end - p >= 3 && p[1] == '"' && p[2] == '"') return lex_block(lx, err);
    return lex_string(lx, err);
  }
  char what[48];
  if ((unsigned char)c < 0x20 || c == 0x7f)
    snprintf(what, sizeof what, "Unexpected character U+%04X", (unsigned)(unsigned char)c);
  else if ((unsigned char)c < 0x80)
    snprintf(what, sizeof what, "Unexpected character '%c'", c);
  else
    snprintf(what, sizeof what, "Unexpected character (byte 0x%02X)", (unsigned)(unsigned char)c);
  return fail(lx, p, err, what);
}
