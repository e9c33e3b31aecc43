/* csvfile.c: the RFC 4180 reader of csv.c behind a small public row
 * iterator (fm_import.h), so tables other than dictionaries (import-mappings)
 * parse CSV exactly as dictionaries do. */
#include "fm_import_int.h"

struct fm_csvfile {
  char *buf; /* the whole file (owned); cells point into it */
  char *path; /* owned copy */
  fm_csv r;
};

fm_rc fm_csvfile_open(const char *path, fm_csvfile **out, fm_error *err) {
  *out = NULL;
  fm_csvfile *f = fm_calloc(1, sizeof *f);
  char *path_copy = fm_strdup(path);
  if (!f || !path_copy) {
    fm_free(f);
    fm_free(path_copy);
    return fm_error_set(err, FM_ERR_NOMEM, "%s: out of memory", path);
  }
  char *body;
  size_t len;
  fm_rc rc = fm_imp_read_utf8(path, &f->buf, &body, &len, err);
  if (rc) {
    fm_free(path_copy);
    fm_free(f);
    return rc;
  }
  f->path = path_copy;
  fm_csv_init(&f->r, f->path, body, len);
  *out = f;
  return FM_OK;
}

void fm_csvfile_close(fm_csvfile *f) {
  if (!f) return;
  fm_csv_free(&f->r);
  fm_free(f->buf);
  fm_free(f->path);
  fm_free(f);
}

fm_rc fm_csvfile_next(fm_csvfile *f, int *got, fm_error *err) {
  return fm_csv_next(&f->r, got, err);
}

size_t fm_csvfile_ncells(const fm_csvfile *f) { return f->r.n; }

const char *fm_csvfile_cell(const fm_csvfile *f, size_t i) {
  return i < f->r.n ? f->r.cell[i] : "";
}

int fm_csvfile_quoted(const fm_csvfile *f, size_t i) {
  return i < f->r.n ? f->r.quoted[i] : 0;
}

uint32_t fm_csvfile_line(const fm_csvfile *f) { return f->r.rec_line; }
const char *fm_csvfile_path(const fm_csvfile *f) { return f->path; }

long fm_csvfile_find_col(const fm_csvfile *f, const char *name) {
  return fm_csv_find_col(&f->r, name);
}
