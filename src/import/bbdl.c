/* bbdl.c: the Bloomberg Data License field list (fields.csv).
 *
 * Header: Field Mnemonic, Data License Category, <asset class flag columns
 * such as Comdty, Equity, ...>, Field Type, Width.  Mapping:
 *   id       = Field Mnemonic
 *   type     = Field Type
 *   category = "<Data License Category>; <asset classes>", the asset
 *              classes being the header names of the flag columns whose
 *              cell is not blank, space-separated in header order
 *   name, description = "" (the file has none)
 * Every column other than the three named ones and Width is taken as an
 * asset class flag.  The source spec's column mapping is not used. */
#include "fm_import_int.h"

#include <string.h>

static int blank(const char *s) {
  for (; *s; s++)
    if (*s != ' ' && *s != '\t') return 0;
  return 1;
}

fm_rc fm_import_bbdl(const fm_source_spec *spec, fm_fieldset *out,
                     fm_error *err) {
  char **hdr = NULL; /* header cells (pointers into buf) */
  unsigned char *is_class = NULL;
  size_t ncols = 0;
  long c_id = -1, c_cat = -1, c_type = -1;
  fm_csv r;
  fm_imp im;
  char *buf;
  fm_rc rc = fm_imp_csv_open(spec, out, &buf, &r, &im, err);
  if (!buf) return rc;
  const char *path = spec->path;
  fm_buf cat;
  fm_buf_init(&cat);
  int got = 0;
  if (!rc) {
    static const char *const need[3] = {"Field Mnemonic",
                                        "Data License Category", "Field Type"};
    long *slot[3] = {&c_id, &c_cat, &c_type};
    for (int k = 0; k < 3 && !rc; k++)
      if ((*slot[k] = fm_csv_find_col(&r, need[k])) < 0)
        rc = fm_error_set(err, FM_ERR_PARSE,
                          "%s:%u: column '%s' not in the header (not a Data "
                          "License field list?)",
                          path, r.rec_line, need[k]);
  }
  if (!rc) {
    ncols = r.n;
    hdr = fm_calloc(ncols, sizeof *hdr);
    is_class = fm_calloc(ncols, sizeof *is_class);
    if (!hdr || !is_class)
      rc = fm_error_set(err, FM_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; !rc && i < ncols; i++) {
      hdr[i] = r.cell[i];
      is_class[i] = (long)i != c_id && (long)i != c_cat &&
                    (long)i != c_type && strcmp(hdr[i], "Width") != 0;
    }
  }
  while (!rc) {
    if ((rc = fm_csv_next_row(&r, ncols, &got, err)) || !got) break;
    fm_buf_reset(&cat);
    const char *dlc = r.cell[c_cat];
    int nclass = 0;
    if (fm_buf_puts(&cat, dlc)) rc = FM_ERR_NOMEM;
    for (size_t i = 0; !rc && i < ncols; i++) {
      if (!is_class[i] || blank(r.cell[i])) continue;
      const char *sep = nclass++ ? " " : (blank(dlc) ? "" : "; ");
      if (fm_buf_puts(&cat, sep) || fm_buf_puts(&cat, hdr[i]))
        rc = FM_ERR_NOMEM;
    }
    if (rc) {
      rc = fm_error_set(err, rc, "%s:%u: out of memory", path, r.rec_line);
      break;
    }
    rc = fm_imp_add(&im, r.cell[c_id], "", "", r.cell[c_type],
                    cat.buf ? cat.buf : "", r.rec_line, NULL, err);
  }
  fm_free(hdr);
  fm_free(is_class);
  fm_buf_free(&cat);
  return fm_imp_csv_close(buf, &r, &im, rc);
}
