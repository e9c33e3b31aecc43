/* csv.c: an RFC 4180 reader (in-place unquoting) and the generic "csv"
 * importer with its column mapping. */
#include "fm_import_int.h"

#include <string.h>

/* ---- the reader ------------------------------------------------------------- */

void fm_csv_init(fm_csv *r, const char *path, char *buf, size_t len) {
  memset(r, 0, sizeof *r);
  r->path = path;
  r->p = buf;
  r->end = buf + len;
  r->line = 1;
}

void fm_csv_free(fm_csv *r) {
  fm_free(r->cell);
  fm_free(r->quoted);
  r->cell = NULL;
  r->quoted = NULL;
  r->n = r->cap = 0;
}

static fm_rc push_cell(fm_csv *r, char *cell, int quoted, fm_error *err) {
  if (r->n == r->cap) {
    size_t cap = r->cap, qcap = r->cap;
    if (fm_grow((void **)&r->cell, &cap, r->n + 1, sizeof *r->cell) ||
        fm_grow((void **)&r->quoted, &qcap, r->n + 1, sizeof *r->quoted))
      return fm_error_set(err, FM_ERR_NOMEM, "%s:%u: out of memory", r->path,
                          r->rec_line);
    r->cap = cap < qcap ? cap : qcap;
  }
  r->cell[r->n] = cell;
  r->quoted[r->n] = (unsigned char)quoted;
  r->n++;
  return FM_OK;
}

/* Does a line end start at p (LF, CRLF, or a lone CR right before EOF)? */
static int at_eol(const fm_csv *r, const char *p) {
  return *p == '\n' || (*p == '\r' && (p + 1 == r->end || p[1] == '\n'));
}

fm_rc fm_csv_next(fm_csv *r, int *got, fm_error *err) {
  *got = 0;
  /* Skip blank lines. */
  while (r->p < r->end && at_eol(r, r->p)) {
    r->p += *r->p == '\r' ? (r->p + 1 < r->end ? 2 : 1) : 1;
    r->line++;
  }
  if (r->p >= r->end) return FM_OK;
  r->rec_line = r->line;
  r->n = 0;
  for (;;) {
    char *start = r->p, *w;
    int quoted = 0;
    uint32_t cell_line = r->line;
    if (*r->p == '"') {
      /* Quoted: copy content down over the opening quote; the write
       * pointer never passes the read pointer. */
      quoted = 1;
      w = start;
      r->p++;
      for (;;) {
        if (r->p >= r->end)
          return fm_error_set(err, FM_ERR_PARSE,
                              "%s:%u: unterminated quoted field (no closing "
                              "quote before end of file)",
                              r->path, cell_line);
        char c = *r->p;
        if (c == '"') {
          if (r->p + 1 < r->end && r->p[1] == '"') {
            *w++ = '"';
            r->p += 2;
            continue;
          }
          r->p++;
          break;
        }
        if (c == '\n') r->line++;
        *w++ = c;
        r->p++;
      }
      if (r->p < r->end && *r->p != ',' && !at_eol(r, r->p)) {
        /* Show the whole character, not its first byte, so that the
         * message stays UTF-8 (the text was checked to be). */
        size_t cl = fm_utf8_char_len(r->p, (size_t)(r->end - r->p));
        if (cl == 0) cl = 1;
        return fm_error_set(err, FM_ERR_PARSE,
                            "%s:%u: unexpected character '%.*s' after "
                            "closing quote (column %zu)",
                            r->path, r->line, (int)cl, r->p, r->n + 1);
      }
    } else {
      /* Unquoted: a stray '"' inside is kept literally.  A CR that does
       * not end the line is refused: it is how CR-only (classic Mac) line
       * ends look, which would otherwise read as one long record. */
      while (r->p < r->end && *r->p != ',' && !at_eol(r, r->p)) {
        if (*r->p == '\r')
          return fm_error_set(err, FM_ERR_PARSE,
                              "%s:%u: carriage return without a line feed in "
                              "unquoted field (column %zu); line ends must be "
                              "LF or CRLF",
                              r->path, r->line, r->n + 1);
        r->p++;
      }
      w = r->p;
    }
    int eol = 1;
    if (r->p >= r->end) {
      /* end of file ends the record */
    } else if (*r->p == ',') {
      r->p++;
      eol = 0;
    } else {
      r->p += *r->p == '\r' ? (r->p + 1 < r->end ? 2 : 1) : 1;
      r->line++;
    }
    *w = '\0'; /* w <= the consumed delimiter, or the buffer's final NUL */
    fm_rc rc = push_cell(r, start, quoted, err);
    if (rc) return rc;
    if (eol) break;
  }
  *got = 1;
  return FM_OK;
}

/* ---- the "csv" importer ----------------------------------------------------- */

static const char *const col_default[FM_IMP_NCOL] = {"id", "name", "description",
                                                     "type", "category"};
const char *const fm_imp_col_what[FM_IMP_NCOL] = {"col_id", "col_name", "col_description",
                                                  "col_type", "col_category"};

void fm_imp_col_names(const fm_source_spec *spec, const char *want[FM_IMP_NCOL],
                      const char *name[FM_IMP_NCOL]) {
  want[FM_IMP_ID] = spec->col_id;
  want[FM_IMP_NAME] = spec->col_name;
  want[FM_IMP_DESC] = spec->col_description;
  want[FM_IMP_TYPE] = spec->col_type;
  want[FM_IMP_CAT] = spec->col_category;
  for (int k = 0; k < FM_IMP_NCOL; k++) name[k] = want[k] ? want[k] : col_default[k];
}

fm_rc fm_imp_csv_open(const fm_source_spec *spec, fm_fieldset *out, char **buf,
                      fm_csv *r, fm_imp *im, fm_error *err) {
  char *body;
  size_t len;
  fm_rc rc = fm_imp_read_utf8(spec->path, buf, &body, &len, err);
  if (rc) {
    *buf = NULL;
    return rc;
  }
  fm_csv_init(r, spec->path, body, len);
  rc = fm_imp_begin(im, spec, out, err);
  int got = 0;
  if (!rc) rc = fm_csv_next(r, &got, err);
  if (!rc && !got)
    rc = fm_error_set(err, FM_ERR_PARSE, "%s:1: empty file (no header row)",
                      spec->path);
  return rc;
}

fm_rc fm_imp_csv_close(char *buf, fm_csv *r, fm_imp *im, fm_rc rc) {
  rc = fm_imp_end(im, rc);
  fm_csv_free(r);
  fm_free(buf);
  return rc;
}

fm_rc fm_csv_next_row(fm_csv *r, size_t ncols, int *got, fm_error *err) {
  fm_rc rc = fm_csv_next(r, got, err);
  if (rc || !*got) return rc;
  if (r->n != ncols)
    return fm_error_set(err, FM_ERR_PARSE,
                        "%s:%u: %zu fields, but the header has %zu", r->path,
                        r->rec_line, r->n, ncols);
  return FM_OK;
}

/* Index of the header cell equal to name after trimming spaces, or -1. */
long fm_csv_find_col(const fm_csv *r, const char *name) {
  size_t nl = strlen(name);
  for (size_t i = 0; i < r->n; i++) {
    const char *h = r->cell[i];
    while (*h == ' ' || *h == '\t') h++;
    size_t hl = strlen(h);
    while (hl && (h[hl - 1] == ' ' || h[hl - 1] == '\t')) hl--;
    if (hl == nl && memcmp(h, name, nl) == 0) return (long)i;
  }
  return -1;
}

fm_rc fm_import_csv(const fm_source_spec *spec, fm_fieldset *out,
                    fm_error *err) {
  const char *path = spec->path;
  char *buf;
  fm_csv r;
  fm_imp im;
  fm_rc rc = fm_imp_csv_open(spec, out, &buf, &r, &im, err);
  if (!buf) return rc;
  int got = 0;
  long col[FM_IMP_NCOL];
  const char *want[FM_IMP_NCOL], *names[FM_IMP_NCOL];
  fm_imp_col_names(spec, want, names);
  size_t ncols = r.n;
  for (int k = 0; !rc && k < FM_IMP_NCOL; k++) {
    const char *name = names[k];
    col[k] = fm_csv_find_col(&r, name);
    /* The id column is always required; another column only when the
     * caller named it explicitly. */
    if (col[k] < 0 && (k == FM_IMP_ID || want[k]))
      rc = fm_error_set(err, FM_ERR_PARSE,
                        "%s:%u: column '%s' (%s) not in the header", path,
                        r.rec_line, name, fm_imp_col_what[k]);
  }
  while (!rc) {
    if ((rc = fm_csv_next_row(&r, ncols, &got, err)) || !got) break;
    const char *v[FM_IMP_NCOL];
    for (int k = 0; k < FM_IMP_NCOL; k++) {
      v[k] = "";
      if (col[k] < 0) continue;
      v[k] = r.cell[col[k]];
      /* R's write.csv writes missing values as a bare NA. */
      if (!r.quoted[col[k]] && strcmp(v[k], "NA") == 0) v[k] = "";
    }
    rc = fm_imp_add(&im, v[FM_IMP_ID], v[FM_IMP_NAME], v[FM_IMP_DESC], v[FM_IMP_TYPE],
                    v[FM_IMP_CAT], r.rec_line, NULL, err);
  }
  return fm_imp_csv_close(buf, &r, &im, rc);
}
