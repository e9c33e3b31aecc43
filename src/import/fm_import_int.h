/*
 * fm_import_int.h: internals shared by the importers (not public API).
 *
 * Every importer follows the same shape:
 *
 *   fm_read_file -> fm_imp_utf8_check (or the rdm latin-1 repair)
 *   fm_imp_begin(&im, spec, out)       remembers out->n
 *   fm_imp_add(&im, raw fields) ...    normalizes into out's arena
 *   fm_imp_end(&im, rc)                on failure: out->n restored;
 *                                      on success: duplicate-id warning
 *
 * so a failed import leaves *out with exactly the fields it had before
 * (its arena may keep some unreachable bytes until fm_fieldset_free).
 */
#ifndef FM_IMPORT_INT_H
#define FM_IMPORT_INT_H

#include "fm_import.h"

#include <string.h>

/* ---- text helpers ------------------------------------------------------ */

/* Check that s[0..n) is well-formed UTF-8 without NUL bytes (ICU U8_NEXT).
 * On failure: FM_ERR_PARSE "path:line: invalid UTF-8 byte 0xXX". */
fm_rc fm_imp_utf8_check(const char *path, const char *s, size_t n,
                        fm_error *err);

/* Repair text that is mostly UTF-8 but may hold ISO-8859-1 bytes: every
 * byte that does not start a well-formed UTF-8 sequence is taken as a
 * latin-1 code point and re-encoded.  *out is s itself when nothing needed
 * fixing, else a new buffer the caller owns (fm_free); *outlen its length.
 * NUL bytes are FM_ERR_PARSE "path:line: NUL byte". */
fm_rc fm_imp_latin1_repair(const char *path, char *s, size_t n, char **out,
                           size_t *outlen, fm_error *err);

/* Skip a UTF-8 byte order mark; returns the number of bytes skipped. */
size_t fm_imp_skip_bom(const char *s, size_t n);

/* The next line of the text [*p, end): returns its first byte and stores in
 * *e the end of its content (the '\n', or a '\r' just before it, or end),
 * then moves *p past the line.  The caller may write a NUL at *e.  Returns
 * NULL, leaving everything alone, when *p == end.  Nothing is allocated. */
static inline char *fm_imp_next_line(char **p, char *end, char **e) {
  char *s = *p;
  if (s >= end) return NULL;
  char *nl = memchr(s, '\n', (size_t)(end - s));
  char *x = nl ? nl : end;
  *p = nl ? nl + 1 : end;
  if (x > s && x[-1] == '\r') x--;
  *e = x;
  return s;
}

/* The common prologue of the UTF-8 formats: read path whole, check it is
 * well-formed UTF-8 (fm_imp_utf8_check), skip a BOM.  On success *buf is
 * the file (caller owns, fm_free) and *body, *bodylen the text after the
 * BOM, inside *buf.  On failure nothing is left allocated. */
fm_rc fm_imp_read_utf8(const char *path, char **buf, char **body,
                       size_t *bodylen, fm_error *err);

/* Copy s[0..n) into the arena: leading/trailing whitespace removed and,
 * when collapse is set, every inner whitespace run (ASCII or Unicode
 * White_Space, newlines included) replaced by one space.  s must be valid
 * UTF-8.  Returns the arena copy, or NULL on allocation failure. */
const char *fm_imp_text(fm_arena *a, const char *s, size_t n, int collapse);

/* ---- one import in progress ------------------------------------------ */

typedef struct fm_imp {
  fm_fieldset *out;
  size_t base_n;       /* out->n when the import began (rollback point) */
  const char *path;    /* arena copy, shared by all fields of the source */
  const char *vendor;  /* arena copy */
  fm_strmap ids;       /* id -> line of first occurrence */
  size_t ndup;         /* rows whose id was seen before */
  uint32_t dup_line, dup_first_line; /* first repeat and its original */
  size_t dup_idx;      /* index in out of the first repeated field */
  size_t nempty;       /* rows without an id (skipped) */
  uint32_t empty_line; /* first of them */
} fm_imp;

/* Start importing spec->path into out.  Always pair with fm_imp_end. */
fm_rc fm_imp_begin(fm_imp *im, const fm_source_spec *spec, fm_fieldset *out,
                   fm_error *err);

/* Normalize and append one field (strings NUL-terminated raw text, NULL
 * means "").  The id is trimmed, the rest whitespace-collapsed.  A row with
 * an empty id is skipped (counted for one warning); *idx (optional) is set
 * to the new field's index in out, or SIZE_MAX when skipped. */
fm_rc fm_imp_add(fm_imp *im, const char *id, const char *name,
                 const char *description, const char *type,
                 const char *category, uint32_t line, size_t *idx,
                 fm_error *err);

/* Finish: when rc != FM_OK roll out back to base_n; otherwise emit the
 * per-source warnings.  Frees the import's own memory.  Returns rc. */
fm_rc fm_imp_end(fm_imp *im, fm_rc rc);

/* ---- RFC 4180 reader --------------------------------------------------- */

/* Reads records from a mutable NUL-terminated buffer, unquoting cells in
 * place: cell[i] points into the buffer (borrowed) and is NUL-terminated.
 * Blank lines between records are skipped.  LF or CRLF line ends. */
typedef struct fm_csv {
  const char *path;
  char *p, *end;         /* cursor; *end == '\0' */
  uint32_t line;         /* physical line of the cursor (1-based) */
  uint32_t rec_line;     /* line where the last record started */
  char **cell;           /* cells of the last record */
  unsigned char *quoted; /* was cell i quoted? */
  size_t n, cap;
} fm_csv;

void fm_csv_init(fm_csv *r, const char *path, char *buf, size_t len);
void fm_csv_free(fm_csv *r);
/* Index of the cell of the last record equal to name once surrounding
 * blanks are trimmed (used on header rows), or -1. */
long fm_csv_find_col(const fm_csv *r, const char *name);
/* Read the next record: *got = 1 and cells filled, or *got = 0 at end.
 * Unterminated quote / junk after a closing quote: FM_ERR_PARSE with the
 * line where the bad cell starts. */
fm_rc fm_csv_next(fm_csv *r, int *got, fm_error *err);

/* The common opening of the CSV-shaped importers (csv, bbdl): read
 * spec->path as UTF-8 (fm_imp_read_utf8), start *r on it, fm_imp_begin *im
 * and read the header row into *r ("path:1: empty file (no header row)"
 * when there is none).  *buf is NULL when the file could not be read, and
 * then nothing else was started; otherwise the caller owns *buf (fm_free),
 * *r (fm_csv_free) and *im (fm_imp_end, even when this returns an error). */
fm_rc fm_imp_csv_open(const fm_source_spec *spec, fm_fieldset *out, char **buf,
                      fm_csv *r, fm_imp *im, fm_error *err);

/* The common closing of the CSV-shaped importers: fm_imp_end(im, rc), then
 * free *r and buf (from fm_imp_csv_open).  Returns what fm_imp_end does. */
fm_rc fm_imp_csv_close(char *buf, fm_csv *r, fm_imp *im, fm_rc rc);

/* The next data record into *r, checked against the header's width:
 * *got = 0 at the end; a record of another width is FM_ERR_PARSE
 * "path:line: N fields, but the header has M". */
fm_rc fm_csv_next_row(fm_csv *r, size_t ncols, int *got, fm_error *err);

/* ---- the field columns (csv) and keys (jsonl) ------------------------- */

enum { FM_IMP_ID, FM_IMP_NAME, FM_IMP_DESC, FM_IMP_TYPE, FM_IMP_CAT, FM_IMP_NCOL };

/* The spec option behind each column ("col_id", ...), for messages. */
extern const char *const fm_imp_col_what[FM_IMP_NCOL];

/* want[k]: the name spec gives column k (NULL when it names none);
 * name[k]: the name to look for, want[k] or the default ("id", "name",
 * "description", "type", "category"). */
void fm_imp_col_names(const fm_source_spec *spec, const char *want[FM_IMP_NCOL],
                      const char *name[FM_IMP_NCOL]);

/* ---- per-format importers (all: append to out, roll back on failure) --- */

fm_rc fm_import_rdm(const fm_source_spec *spec, fm_fieldset *out,
                    fm_error *err);
fm_rc fm_import_bbdl(const fm_source_spec *spec, fm_fieldset *out,
                     fm_error *err);
fm_rc fm_import_csv(const fm_source_spec *spec, fm_fieldset *out,
                    fm_error *err);
fm_rc fm_import_jsonl(const fm_source_spec *spec, fm_fieldset *out,
                      fm_error *err);

#endif /* FM_IMPORT_INT_H */
