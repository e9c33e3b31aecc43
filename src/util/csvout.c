/* csvout.c: writing one RFC 4180 CSV cell (the readers are in
 * src/import/csv.c).  The one writer behind the mapping exports, the
 * snapshot files and `fieldmatch map`. */
#include "fm_util.h"

static int needs_quotes(const char *s, size_t n, int quote_empty) {
  if (n == 0) return quote_empty;
  if (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t') return 1;
  for (size_t i = 0; i < n; i++)
    if (s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n') return 1;
  return 0;
}

fm_rc fm_buf_csv_cell(fm_buf *b, const char *s, size_t n, int quote_empty) {
  if (!needs_quotes(s, n, quote_empty)) return fm_buf_append(b, s, n);
  fm_rc rc = fm_buf_putc(b, '"');
  for (size_t i = 0, from = 0; !rc && i <= n; i++) {
    if (i == n || s[i] == '"') {
      /* The run before the quote, then the quote doubled. */
      rc = fm_buf_append(b, s + from, i - from);
      if (!rc && i < n) rc = fm_buf_append(b, "\"\"", 2);
      from = i + 1;
    }
  }
  return rc ? rc : fm_buf_putc(b, '"');
}
