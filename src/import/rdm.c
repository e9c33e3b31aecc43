/* rdm.c: the Refinitiv RDMFieldDictionary.
 *
 * A definition line is
 *   ACRONYM "DDE ACRONYM" FID RIPPLES_TO FIELD_TYPE LENGTH [( n )] RWF_TYPE RWF_LEN
 * with blanks/tabs between columns; the DDE acronym runs from the first to
 * the last double quote of the line (it may hold blanks and apostrophes).
 * Lines whose first non-blank character is '!' are comments.  The comment
 * block that follows a definition, or a run of consecutive definitions, is
 * the description of each of them; comments before the first definition
 * (the file header) describe nothing.  Mapping: id = ACRONYM, name = DDE
 * acronym, type = Marketfeed FIELD_TYPE, category = "" (the RWF type only
 * restates the field type in wire terms), description = the comment block
 * without its '!'s, whitespace collapsed.
 *
 * The file is ASCII in practice; any byte that is not part of well-formed
 * UTF-8 is read as ISO-8859-1 (rdm only: older dictionaries are latin-1).
 */
#include "fm_import_int.h"

#include <string.h>

static int is_blank(char c) { return c == ' ' || c == '\t'; }

/* Split s in place at blanks: up to max tokens into t; returns the count
 * (max + 1 when there were more). */
static size_t tokenize(char *s, char **t, size_t max) {
  size_t n = 0;
  for (;;) {
    while (is_blank(*s)) s++;
    if (!*s) return n;
    if (n == max) return max + 1;
    t[n++] = s;
    while (*s && !is_blank(*s)) s++;
    if (*s) *s++ = '\0';
  }
}

/* Number of blank-separated tokens in [s, e). */
static size_t count_tokens(const char *s, const char *e) {
  size_t n = 0;
  for (int in = 0; s < e; s++) {
    if (is_blank(*s)) in = 0;
    else if (!in) in = 1, n++;
  }
  return n;
}

/* Is s an optionally signed decimal integer? */
static int is_int(const char *s) {
  if (*s == '-' || *s == '+') s++;
  if (!*s) return 0;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return 0;
  return 1;
}

/* Parse one definition line (NUL-terminated, mutated in place).  On success
 * sets *acr, *dde, *fid, *ftype and returns NULL; else returns what is
 * wrong. */
static const char *parse_def(char *s, char **acr, char **dde, char **fid,
                             char **ftype) {
  while (is_blank(*s)) s++;
  *acr = s;
  while (*s && !is_blank(*s) && *s != '"') s++;
  if (s == *acr) return "missing ACRONYM";
  if (*s == '"') return "no blank between ACRONYM and DDE acronym";
  if (*s) *s++ = '\0';
  while (is_blank(*s)) s++;
  if (*s != '"') return "missing the quoted DDE acronym";
  char *open = s, *close = strrchr(s, '"');
  if (close == open) return "unterminated DDE acronym (no closing quote)";
  *close = '\0';
  *dde = open + 1;
  char *rest = close + 1;
  if (*rest && !is_blank(*rest)) return "no blank after the DDE acronym";
  /* The optional enumeration length "( n )" (any spacing) goes first,
   * blanked out so that exactly six columns remain:
   * FID RIPPLES_TO FIELD_TYPE LENGTH RWF_TYPE RWF_LEN. */
  char *lp = strchr(rest, '(');
  if (lp) {
    char *rp = strchr(lp, ')');
    if (!rp) return "unclosed '(' after LENGTH";
    if (count_tokens(rest, lp) != 4) return "'( n )' not right after LENGTH";
    char num[32];
    size_t nl = 0;
    for (char *c = lp + 1; c < rp; c++) {
      if (is_blank(*c)) continue;
      if (nl + 1 >= sizeof num) return "enumeration length too long";
      num[nl++] = *c;
    }
    num[nl] = '\0';
    if (!is_int(num)) return "enumeration length in '( n )' is not an integer";
    for (char *c = lp; c <= rp; c++) *c = ' ';
  }
  char *t[7];
  size_t n = tokenize(rest, t, 6);
  if (n < 6) return "too few columns after the DDE acronym";
  if (n > 6) return "too many columns";
  if (!is_int(t[0])) return "FID is not an integer";
  if (!is_int(t[3])) return "LENGTH is not an integer";
  if (!is_int(t[5])) return "RWF_LEN is not an integer";
  *fid = t[0];
  *ftype = t[2];
  return NULL;
}

/* Give the collected comment block to the pending run [from, out->n). */
static fm_rc flush(fm_fieldset *out, size_t from, const fm_buf *desc) {
  if (from >= out->n) return FM_OK;
  const char *d =
      fm_imp_text(&out->arena, desc->buf ? desc->buf : "", desc->len, 1);
  if (!d) return FM_ERR_NOMEM;
  for (size_t i = from; i < out->n; i++) out->v[i].description = d;
  return FM_OK;
}

fm_rc fm_import_rdm(const fm_source_spec *spec, fm_fieldset *out,
                    fm_error *err) {
  const char *path = spec->path;
  char *raw, *buf;
  size_t rawlen, len;
  fm_rc rc = fm_read_file(path, &raw, &rawlen, err);
  if (rc) return rc;
  if ((rc = fm_imp_latin1_repair(path, raw, rawlen, &buf, &len, err))) {
    fm_free(raw);
    return rc;
  }
  fm_buf desc;
  fm_buf_init(&desc);
  fm_imp im;
  rc = fm_imp_begin(&im, spec, out, err);
  size_t from = out->n; /* first definition still waiting for its comment */
  int saw_comment = 0;  /* a comment line since the last definition */
  uint32_t line = 0;
  char *p = buf + fm_imp_skip_bom(buf, len), *end = buf + len;
  char *s, *e;
  while (!rc && (s = fm_imp_next_line(&p, end, &e))) {
    line++;
    *e = '\0';
    while (is_blank(*s)) s++;
    if (!*s) continue;
    if (*s == '!') {
      if (from < out->n) { /* inside a description, not the file header */
        saw_comment = 1;
        if (fm_buf_putc(&desc, ' ') || fm_buf_puts(&desc, s + 1))
          rc = fm_error_set(err, FM_ERR_NOMEM, "%s:%u: out of memory", path,
                            line);
      }
      continue;
    }
    if (saw_comment) {
      if (flush(out, from, &desc)) {
        rc = fm_error_set(err, FM_ERR_NOMEM, "%s:%u: out of memory", path,
                          line);
        break;
      }
      from = out->n;
      saw_comment = 0;
      fm_buf_reset(&desc);
    }
    /* The line as the message shows it (parse_def cuts s up): at most 63
     * bytes, cut before a character, not inside one, so that the message
     * stays UTF-8 (it may end up in a JSON reply). */
    char shown[64];
    size_t sl = strlen(s), cut = sl < sizeof shown ? sl : sizeof shown - 1;
    while (cut < sl && cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80) cut--;
    memcpy(shown, s, cut);
    shown[cut] = '\0';
    char *acr, *dde, *fid, *ftype;
    const char *why = parse_def(s, &acr, &dde, &fid, &ftype);
    if (why) {
      rc = fm_error_set(err, FM_ERR_PARSE,
                        "%s:%u: not a field definition (%s): '%s%s'", path,
                        line, why, shown, cut < sl ? "..." : "");
      break;
    }
    size_t at;
    rc = fm_imp_add(&im, acr, dde, "", ftype, "", line, &at, err);
    if (!rc && at != SIZE_MAX &&
        !(out->v[at].code = fm_imp_text(&out->arena, fid, strlen(fid), 0)))
      rc = fm_error_set(err, FM_ERR_NOMEM, "%s:%u: out of memory", path, line);
  }
  if (!rc && flush(out, from, &desc))
    rc = fm_error_set(err, FM_ERR_NOMEM, "%s: out of memory", path);
  rc = fm_imp_end(&im, rc);
  fm_buf_free(&desc);
  if (buf != raw) fm_free(buf);
  fm_free(raw);
  return rc;
}
