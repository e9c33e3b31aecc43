/* pairs.c: gold / training pairs, a TSV with a header row:
 * query id TAB reference id [TAB anything...].  LF or CRLF (a CR alone
 * is FM_ERR_PARSE); blank lines are skipped; ids are trimmed; a row with
 * fewer than two columns or an empty id is FM_ERR_PARSE "path:line: ...". */
#include "fm_import_int.h"

#include <string.h>

void fm_pairs_init(fm_pairs *p) {
  p->v = NULL;
  p->n = p->cap = 0;
  fm_arena_init(&p->arena);
}

void fm_pairs_free(fm_pairs *p) {
  if (!p) return;
  fm_free(p->v);
  fm_arena_free(&p->arena);
  fm_pairs_init(p);
}

/* Trimmed arena copy of s[0..n); NULL on allocation failure. */
static const char *trimmed(fm_arena *a, const char *s, size_t n) {
  return fm_imp_text(a, s, n, 0);
}

fm_rc fm_pairs_load(const char *path, fm_pairs *out, fm_error *err) {
  if (!path || !out)
    return fm_error_set(err, FM_ERR_ARG, "fm_pairs_load: NULL argument");
  char *buf, *body;
  size_t len;
  fm_rc rc = fm_imp_read_utf8(path, &buf, &body, &len, err);
  if (rc) return rc;
  size_t base = out->n;
  uint32_t line = 0;
  char *p = body, *end = body + len;
  char *s, *e;
  while (!rc && (s = fm_imp_next_line(&p, end, &e))) {
    line++;
    /* fm_imp_next_line took a CR before the LF; one left inside the line is
     * a CR-only line end, which would glue rows (or the whole file, into
     * the header) into one. */
    if (memchr(s, '\r', (size_t)(e - s))) {
      rc = fm_error_set(err, FM_ERR_PARSE,
                        "%s:%u: carriage return without a line feed; line "
                        "ends must be LF or CRLF",
                        path, line);
      break;
    }
    if (line == 1) continue; /* the header row */
    const char *c = s;
    while (c < e && (*c == ' ' || *c == '\t')) c++;
    if (c == e) continue; /* blank */
    char *tab1 = memchr(s, '\t', (size_t)(e - s));
    if (!tab1) {
      rc = fm_error_set(err, FM_ERR_PARSE,
                        "%s:%u: expected query id TAB reference id, found "
                        "one column",
                        path, line);
      break;
    }
    char *tab2 = memchr(tab1 + 1, '\t', (size_t)(e - tab1 - 1));
    char *rend = tab2 ? tab2 : e;
    const char *q = trimmed(&out->arena, s, (size_t)(tab1 - s));
    const char *r = q ? trimmed(&out->arena, tab1 + 1,
                                (size_t)(rend - tab1 - 1))
                      : NULL;
    if (!q || !r ||
        fm_grow((void **)&out->v, &out->cap, out->n + 1, sizeof *out->v)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "%s:%u: out of memory", path, line);
      break;
    }
    if (!*q || !*r) {
      rc = fm_error_set(err, FM_ERR_PARSE, "%s:%u: empty %s id", path, line,
                        *q ? "reference" : "query");
      break;
    }
    out->v[out->n].query = q;
    out->v[out->n].ref = r;
    out->n++;
  }
  if (rc) out->n = base;
  fm_free(buf);
  return rc;
}
