/*
 * fm_import.h: vendor dictionaries in their native formats -> fields.
 *
 * Formats: "rdm" (Refinitiv RDMFieldDictionary), "bbdl" (Bloomberg Data
 * License field list), "csv" (RFC 4180, BOM, quoted multi-line fields, a
 * column mapping) and "jsonl" (one JSON object per line, same mapping).
 * Also the gold / train-pair TSV reader.
 *
 * Ownership: an fm_fieldset owns every string of its fields (in its arena);
 * field pointers are borrowed from the set and valid until it is freed.
 */
#ifndef FM_IMPORT_H
#define FM_IMPORT_H

#include "fm_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One field of a vendor dictionary.  No string is NULL: absent is "". */
typedef struct fm_field {
  const char *vendor;      /* "bloomberg", "refinitiv", ... from the config */
  const char *id;          /* mnemonic / acronym / code, trimmed */
  const char *name;        /* long name (RDM DDE acronym, CSV name column) */
  const char *description; /* free text, whitespace runs collapsed */
  const char *type;        /* vendor type (PRICE, Real, Income, ...) */
  const char *category;    /* vendor category (Data License Category, book) */
  const char *code;        /* the vendor's numeric code of the field: the RDM FID
                              ("22" for BID); "" where the source has none.
                              Not matched on: it only travels with the field
                              (model file, reconciliation data extension) */
  const char *source;      /* path of the file it came from */
  uint32_t line;           /* 1-based line where its record starts */
} fm_field;

typedef struct fm_fieldset {
  fm_field *v;
  size_t n, cap;
  fm_arena arena; /* owns all strings */
} fm_fieldset;

void fm_fieldset_init(fm_fieldset *s);
void fm_fieldset_free(fm_fieldset *s);
/* Append a copy of *f (all strings copied into the set's arena; NULL
 * strings become ""). */
fm_rc fm_fieldset_add(fm_fieldset *s, const fm_field *f);

/* Merge query sources: append every field of `in` to `out`; a field whose id
 * is already in `out` is merged into it (the longer description wins, empty
 * name/type/category are filled), not appended.  Repeats of one id inside
 * `in` merge the same way.  The merged field keeps its vendor, source and
 * line.  `in` is not modified; out copies the strings it takes.  On failure
 * (FM_ERR_NOMEM) *out is unchanged. */
fm_rc fm_fieldset_merge(fm_fieldset *out, const fm_fieldset *in, fm_error *err);

/* Where a source is and how to read it.  Column names apply to csv and
 * jsonl (NULL: use "id", "name", "description", "type", "category"; a NULL
 * optional column that is absent is simply empty).  All strings borrowed. */
typedef struct fm_source_spec {
  const char *vendor;
  const char *format; /* "rdm" | "bbdl" | "csv" | "jsonl" */
  const char *path;
  const char *col_id, *col_name, *col_description, *col_type, *col_category;
  int id_is_code; /* the id is an opaque code ("NINC"), not words: features
                     leave it out of the word blocks (docs/configs.md) */
  int order_prior; /* the source lists its core fields first (an RDM
                      dictionary, in FID order): earlier records get a small
                      bonus, w_order (docs/scoring.md) */
} fm_source_spec;

/* Read one source and append its fields to *out.  Duplicate ids inside the
 * source are kept and warned about once (fm_warn) with file:line of the first
 * repeat and the count.  Malformed input (unterminated quote, missing
 * mapped column, invalid UTF-8, a line that is not a definition) fails with
 * FM_ERR_PARSE and a message "path:line: what" naming the column/field;
 * *out is then left as it was before the call (same fields; its arena may
 * hold unreachable bytes until fm_fieldset_free).  Unreadable file:
 * FM_ERR_IO; unknown format or NULL path: FM_ERR_ARG.  The mapping choices
 * of each format are in docs/formats.md. */
fm_rc fm_import_source(const fm_source_spec *spec, fm_fieldset *out,
                       fm_error *err);

/* ---- pairs (gold / train_pairs TSV) ----------------------------------- */

/* Gold or training pairs: a header row, then query id TAB reference id
 * (extra columns ignored, blank lines skipped).  Owns its strings. */
typedef struct fm_pair {
  const char *query;
  const char *ref;
} fm_pair;

typedef struct fm_pairs {
  fm_pair *v;
  size_t n, cap;
  fm_arena arena;
} fm_pairs;

void fm_pairs_init(fm_pairs *p);
void fm_pairs_free(fm_pairs *p);
/* Append the pairs of one TSV file; a row with fewer than two columns is
 * FM_ERR_PARSE naming path:line. */
fm_rc fm_pairs_load(const char *path, fm_pairs *out, fm_error *err);


/* ---- CSV row iterator (RFC 4180) -------------------------------------- */

/* The RFC 4180 reader the "csv" format uses, for other modules' tables
 * (import-mappings).  The file is read whole, checked to be UTF-8 (a BOM is
 * skipped), and unquoted in place: every cell pointer returned stays valid,
 * unchanged, until fm_csvfile_close, so callers may keep them across rows.
 * Quoted cells may hold commas, doubled quotes and line breaks; LF or CRLF
 * line ends (a CR ending no line outside quotes is FM_ERR_PARSE); blank
 * lines between records are skipped. */
typedef struct fm_csvfile fm_csvfile;

/* Open path.  Caller owns *out (fm_csvfile_close).  Unreadable: FM_ERR_IO;
 * invalid UTF-8: FM_ERR_PARSE "path:line: ...". */
fm_rc fm_csvfile_open(const char *path, fm_csvfile **out, fm_error *err);
void fm_csvfile_close(fm_csvfile *f);
/* Next record: *got = 1 with its cells, or *got = 0 at end of file.  An
 * unterminated quote or junk after a closing quote is FM_ERR_PARSE naming
 * "path:line" where the bad cell starts. */
fm_rc fm_csvfile_next(fm_csvfile *f, int *got, fm_error *err);
size_t fm_csvfile_ncells(const fm_csvfile *f);             /* of the last record */
const char *fm_csvfile_cell(const fm_csvfile *f, size_t i); /* borrowed; "" past the end */
int fm_csvfile_quoted(const fm_csvfile *f, size_t i);      /* was cell i quoted? */
uint32_t fm_csvfile_line(const fm_csvfile *f); /* 1-based line where it starts */
const char *fm_csvfile_path(const fm_csvfile *f);           /* borrowed */
/* Index of the last record's cell equal to name once blanks are trimmed
 * (for header rows), or -1. */
long fm_csvfile_find_col(const fm_csvfile *f, const char *name);

#ifdef __cplusplus
}
#endif
#endif /* FM_IMPORT_H */
