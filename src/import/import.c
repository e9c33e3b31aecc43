/* import.c: fm_import_source dispatch and the helpers every importer
 * shares (UTF-8 checks with ICU, text normalization, the import context
 * with rollback and the duplicate-id warning). */
#include "fm_import_int.h"

#include <string.h>
#include <unicode/uchar.h>
#include <unicode/utf8.h>

/* ---- UTF-8 --------------------------------------------------------------- */

/* Decode one code point at s[pos] (pos < n) with ICU; returns it (< 0 when
 * ill-formed) and sets *len to the bytes consumed.  The window keeps ICU's
 * int32_t indices safe for buffers of any size. */
static UChar32 next_cp(const char *s, size_t pos, size_t n, int32_t *len) {
  const uint8_t *w = (const uint8_t *)s + pos;
  int32_t wl = n - pos > 8 ? 8 : (int32_t)(n - pos);
  int32_t k = 0;
  UChar32 c;
  U8_NEXT(w, k, wl, c);
  *len = k;
  return c;
}

/* For a delimited file (a header line split by ',', tab or '|', the one it
 * holds most; not JSON): the header cell above byte i of the line that
 * starts at ls, into out (cap bytes; "" when there is none).  Quotes are
 * respected on both lines.  The caller's buffer is only read. */
static void header_cell(const char *s, size_t n, size_t ls, size_t i, char *out, size_t cap) {
  out[0] = '\0';
  size_t he = 0;
  while (he < n && s[he] != '\n') he++;
  if (ls == 0 || he == 0 || s[0] == '{' || s[0] == '[') return;
  size_t cnt[3] = {0, 0, 0};
  const char delims[3] = {',', '\t', '|'};
  for (size_t k = 0; k < he; k++)
    for (int d = 0; d < 3; d++) cnt[d] += s[k] == delims[d];
  int d = cnt[1] > cnt[0] ? 1 : 0;
  if (cnt[2] > cnt[d]) d = 2;
  if (!cnt[d]) return;
  char dl = delims[d];
  size_t col = 0;
  int q = 0;
  for (size_t k = ls; k < i; k++) {
    if (s[k] == '"') q = !q;
    else if (s[k] == dl && !q) col++;
  }
  size_t start = 0, c = 0;
  q = 0;
  for (size_t k = 0; k <= he; k++) {
    if (k < he && s[k] == '"') q = !q;
    if (k == he || (s[k] == dl && !q)) {
      if (c == col) {
        while (start < k && (s[start] == ' ' || s[start] == '"' || s[start] == '\r')) start++;
        size_t end = k;
        while (end > start && (s[end - 1] == ' ' || s[end - 1] == '"' || s[end - 1] == '\r'))
          end--;
        size_t len = end - start < cap - 1 ? end - start : cap - 1;
        memcpy(out, s + start, len);
        out[len] = '\0';
        fm_utf8_scrub(out); /* the header may be cut mid-character */
        return;
      }
      c++;
      start = k + 1;
    }
  }
}

fm_rc fm_imp_utf8_check(const char *path, const char *s, size_t n,
                        fm_error *err) {
  uint32_t line = 1;
  size_t i = 0, line_start = 0;
  while (i < n) {
    unsigned char b = (unsigned char)s[i];
    if (b < 0x80) {
      if (b == '\n') {
        line++;
        line_start = i + 1;
      }
      else if (b == 0)
        return fm_error_set(err, FM_ERR_PARSE, "%s:%u: NUL byte in text",
                            path, line);
      i++;
      continue;
    }
    int32_t len;
    if (next_cp(s, i, n, &len) < 0) {
      char field[64];
      header_cell(s, n, line_start, i, field, sizeof field);
      return fm_error_set(err, FM_ERR_PARSE,
                          "%s:%u: invalid UTF-8 (byte 0x%02X at column %zu%s%s%s); "
                          "convert the file to UTF-8",
                          path, line, b, i - line_start + 1, field[0] ? ", field '" : "",
                          field, field[0] ? "'" : "");
    }
    i += (size_t)len;
  }
  return FM_OK;
}

fm_rc fm_imp_latin1_repair(const char *path, char *s, size_t n, char **out,
                           size_t *outlen, fm_error *err) {
  *out = s;
  *outlen = n;
  fm_buf b;
  fm_buf_init(&b);
  uint32_t line = 1;
  size_t i = 0, copied = 0; /* s[copied..i) is pending verbatim output */
  while (i < n) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x80) {
      if (c == '\n') line++;
      else if (c == 0) {
        fm_buf_free(&b);
        return fm_error_set(err, FM_ERR_PARSE, "%s:%u: NUL byte in text",
                            path, line);
      }
      i++;
      continue;
    }
    int32_t len;
    if (next_cp(s, i, n, &len) >= 0) {
      i += (size_t)len;
      continue;
    }
    /* Ill-formed: this one byte is ISO-8859-1, i.e. U+0080..U+00FF. */
    char enc[2] = {(char)(0xC0 | (c >> 6)), (char)(0x80 | (c & 0x3F))};
    if (fm_buf_append(&b, s + copied, i - copied) ||
        fm_buf_append(&b, enc, 2)) {
      fm_buf_free(&b);
      return fm_error_set(err, FM_ERR_NOMEM, "%s: out of memory", path);
    }
    copied = ++i;
  }
  if (!b.buf) return FM_OK; /* already valid UTF-8 */
  if (fm_buf_append(&b, s + copied, n - copied)) {
    fm_buf_free(&b);
    return fm_error_set(err, FM_ERR_NOMEM, "%s: out of memory", path);
  }
  *out = b.buf;
  *outlen = b.len;
  return FM_OK;
}

size_t fm_imp_skip_bom(const char *s, size_t n) {
  return n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
}

fm_rc fm_imp_read_utf8(const char *path, char **buf, char **body,
                       size_t *bodylen, fm_error *err) {
  size_t len;
  fm_rc rc = fm_read_file(path, buf, &len, err);
  if (rc) return rc;
  if ((rc = fm_imp_utf8_check(path, *buf, len, err))) {
    fm_free(*buf);
    *buf = NULL;
    return rc;
  }
  size_t bom = fm_imp_skip_bom(*buf, len);
  *body = *buf + bom;
  *bodylen = len - bom;
  return FM_OK;
}

/* Is s[i] the start of whitespace?  Returns its byte length, else 0. */
static int32_t space_at(const char *s, size_t i, size_t n) {
  unsigned char b = (unsigned char)s[i];
  if (b < 0x80)
    return (b == ' ' || (b >= '\t' && b <= '\r')) ? 1 : 0;
  int32_t len;
  UChar32 c = next_cp(s, i, n, &len);
  return (c >= 0 && u_isUWhiteSpace(c)) ? len : 0;
}

const char *fm_imp_text(fm_arena *a, const char *s, size_t n, int collapse) {
  size_t i = 0, len;
  while (i < n && (len = (size_t)space_at(s, i, n)) > 0) i += len;
  /* Trim the end: find the end of the last non-space character. */
  size_t end = i, j = i;
  while (j < n) {
    if ((len = (size_t)space_at(s, j, n)) > 0) {
      j += len;
    } else {
      j++;
      while (j < n && ((unsigned char)s[j] & 0xC0) == 0x80) j++;
      end = j;
    }
  }
  if (!collapse) return fm_arena_strndup(a, s + i, end - i);
  char *d = fm_arena_alloc(a, end - i + 1);
  if (!d) return NULL;
  size_t o = 0;
  while (i < end) {
    if ((len = (size_t)space_at(s, i, end)) > 0) {
      i += len;
      while (i < end && (len = (size_t)space_at(s, i, end)) > 0) i += len;
      d[o++] = ' ';
    } else {
      d[o++] = s[i++];
    }
  }
  d[o] = '\0';
  return d;
}

/* ---- the import context ------------------------------------------------ */

fm_rc fm_imp_begin(fm_imp *im, const fm_source_spec *spec, fm_fieldset *out,
                   fm_error *err) {
  memset(im, 0, sizeof *im);
  im->out = out;
  im->base_n = out->n;
  fm_strmap_init(&im->ids);
  im->path = fm_arena_strdup(&out->arena, spec->path);
  im->vendor = fm_arena_strdup(&out->arena, spec->vendor ? spec->vendor : "");
  if (!im->path || !im->vendor)
    return fm_error_set(err, FM_ERR_NOMEM, "%s: out of memory", spec->path);
  return FM_OK;
}

fm_rc fm_imp_add(fm_imp *im, const char *id, const char *name,
                 const char *description, const char *type,
                 const char *category, uint32_t line, size_t *idx,
                 fm_error *err) {
  fm_fieldset *s = im->out;
  fm_arena *a = &s->arena;
  if (idx) *idx = SIZE_MAX;
  if (!id) id = "";
  fm_field f;
  f.vendor = im->vendor;
  f.source = im->path;
  f.code = ""; /* set by the caller through *idx where the format has one */
  f.line = line;
  if (!(f.id = fm_imp_text(a, id, strlen(id), 0))) goto nomem;
  if (!*f.id) {
    if (im->nempty++ == 0) im->empty_line = line;
    return FM_OK;
  }
#define TEXT(dst, src)                                                  \
  if (!(dst = fm_imp_text(a, (src) ? (src) : "", (src) ? strlen(src) : 0, \
                          1)))                                          \
  goto nomem
  TEXT(f.name, name);
  TEXT(f.description, description);
  TEXT(f.type, type);
  TEXT(f.category, category);
#undef TEXT
  if (fm_grow((void **)&s->v, &s->cap, s->n + 1, sizeof *s->v)) goto nomem;
  uint32_t first;
  int inserted;
  if (fm_strmap_put(&im->ids, f.id, strlen(f.id), line, &first, &inserted))
    goto nomem;
  if (!inserted && im->ndup++ == 0) {
    im->dup_line = line;
    im->dup_first_line = first;
    im->dup_idx = s->n;
  }
  if (idx) *idx = s->n;
  s->v[s->n++] = f;
  return FM_OK;
nomem:
  return fm_error_set(err, FM_ERR_NOMEM, "%s:%u: out of memory", im->path,
                      line);
}

fm_rc fm_imp_end(fm_imp *im, fm_rc rc) {
  if (rc != FM_OK) {
    im->out->n = im->base_n;
  } else {
    if (im->ndup)
      fm_warn("%s:%u: duplicate id '%s' (first at line %u); %zu duplicate "
              "ids in this source",
              im->path, im->dup_line, im->out->v[im->dup_idx].id,
              im->dup_first_line, im->ndup);
    if (im->nempty)
      fm_warn("%s:%u: row without an id skipped; %zu such rows in this "
              "source",
              im->path, im->empty_line, im->nempty);
  }
  fm_strmap_free(&im->ids);
  return rc;
}

/* ---- dispatch -------------------------------------------------------------- */

fm_rc fm_import_source(const fm_source_spec *spec, fm_fieldset *out,
                       fm_error *err) {
  if (!spec || !out)
    return fm_error_set(err, FM_ERR_ARG, "fm_import_source: NULL argument");
  if (!spec->path || !*spec->path)
    return fm_error_set(err, FM_ERR_ARG, "source of vendor '%s': no path",
                        spec->vendor ? spec->vendor : "");
  const char *fmt = spec->format ? spec->format : "";
  if (strcmp(fmt, "rdm") == 0) return fm_import_rdm(spec, out, err);
  if (strcmp(fmt, "bbdl") == 0) return fm_import_bbdl(spec, out, err);
  if (strcmp(fmt, "csv") == 0) return fm_import_csv(spec, out, err);
  if (strcmp(fmt, "jsonl") == 0) return fm_import_jsonl(spec, out, err);
  return fm_error_set(err, FM_ERR_ARG,
                      "%s: unknown format '%s' (want rdm, bbdl, csv or jsonl)",
                      spec->path, fmt);
}
