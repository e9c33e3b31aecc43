/* review_pairs.c: decisions written as TSV for learning (split from
 * review.c): the training pairs of `review export-pairs` and the fields
 * decided no_equivalent (--none-output).  Reads only; the caller owns the
 * FILE and its fate (temp + rename in the CLI). */
#include "fm_review.h"
#include "fm_store_sql.h"

#include <stdio.h>

/* ---- training pairs -------------------------------------------------------- */

/* Write s with tabs and line breaks as spaces (they would break the TSV). */
static void put_clean(FILE *fp, const char *s) {
  for (; *s; s++) fputc(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s, fp);
}

/* Write header, then every row of s (its first ncols columns, cleaned,
 * tab-separated) to fp, and finalize s; *nrows (optional) gets the row
 * count on success.  The shared body of the two exports: a step error
 * names `what`, a write error is "export: write failed". */
static fm_rc write_tsv(fm_store *st, sqlite3_stmt *s, FILE *fp, const char *header, int ncols,
                       const char *what, size_t *nrows, fm_error *err) {
  fm_rc rc = FM_OK;
  fputs(header, fp);
  size_t n = 0;
  int step;
  while ((step = sqlite3_step(s)) == SQLITE_ROW) {
    for (int i = 0; i < ncols; i++) {
      if (i) fputc('\t', fp);
      const unsigned char *t = sqlite3_column_text(s, i);
      put_clean(fp, t ? (const char *)t : "");
    }
    fputc('\n', fp);
    n++;
  }
  if (step != SQLITE_DONE) rc = fm_store_steperr(st, step, err, what);
  sqlite3_finalize(s);
  if (!rc && ferror(fp)) rc = fm_error_set(err, FM_ERR_IO, "export: write failed");
  if (!rc && nrows) *nrows = n;
  return rc;
}

fm_rc fm_review_export_pairs(fm_store *st, FILE *fp, unsigned which, size_t *nrows,
                             fm_error *err) {
  if (nrows) *nrows = 0;
  which &= FM_EXPORT_ACCEPTED | FM_EXPORT_REJECTED;
  if (!which) return fm_error_set(err, FM_ERR_ARG, "export: no status selected");
  sqlite3_stmt *s;
  fm_rc rc = fm_store_query(
      st, &s, err,
      "SELECT q.id, r.id, m.status, m.decided_by, m.decided_at"
      " FROM mappings m JOIN fields q ON q.field_id = m.query_field_id"
      " JOIN fields r ON r.field_id = m.ref_field_id"
      " WHERE (m.status = 'accepted' AND ?1) OR (m.status = 'rejected' AND ?2)"
      " ORDER BY q.id, r.id, q.vendor, r.vendor",
      "ii", (int64_t)((which & FM_EXPORT_ACCEPTED) != 0),
      (int64_t)((which & FM_EXPORT_REJECTED) != 0));
  if (rc) return rc;
  return write_tsv(st, s, fp, "query_id\treference_id\tstatus\tby\tat\n", 5, "read decisions",
                   nrows, err);
}

fm_rc fm_review_export_none(fm_store *st, FILE *fp, size_t *nrows, fm_error *err) {
  if (nrows) *nrows = 0;
  sqlite3_stmt *s;
  fm_rc rc = fm_store_prepare(
      st,
      "SELECT q.id, q.vendor, m.decided_by, m.decided_at"
      " FROM mappings m JOIN fields q ON q.field_id = m.query_field_id"
      " WHERE m.status = 'no_equivalent' ORDER BY q.id, q.vendor",
      &s, err);
  if (rc) return rc;
  return write_tsv(st, s, fp, "query_id\tquery_vendor\tby\tat\n", 4,
                   "read no_equivalent fields", nrows, err);
}
