/* test_import.c: the importers on small fixtures (tests/data/import), their
 * failure modes, merge semantics and fault injection.  The real vendor
 * files are in test_import_real.c (a separate executable so that it can be
 * skipped with 77 when the shared folder is absent). */
#include "fm_import.h"
#include "fm_test.h"
#include "fm_test_util.h"

#define D "tests/data/import/"

/* ---- helpers ------------------------------------------------------------- */

typedef struct warn_log {
  int count;
  char last[FM_ERRMSG_MAX];
} warn_log;

static void capture_warn(void *ctx, const char *msg) {
  warn_log *w = ctx;
  w->count++;
  snprintf(w->last, sizeof w->last, "%s", msg);
}

static fm_source_spec spec_of(const char *format, const char *path) {
  fm_source_spec s = {0};
  s.vendor = "test";
  s.format = format;
  s.path = path;
  return s;
}

/* The mapping of mini.csv / mini.jsonl. */
static fm_source_spec mapped(const char *format, const char *path) {
  fm_source_spec s = spec_of(format, path);
  s.col_id = "code";
  s.col_name = "label";
  s.col_description = "text";
  s.col_type = "kind";
  s.col_category = "grp";
  return s;
}


/* ---- rdm ------------------------------------------------------------------- */

static void test_rdm(void) {
  fm_fieldset s;
  fm_fieldset_init(&s);
  fm_error err;
  fm_error_init(&err);
  fm_source_spec sp = spec_of("rdm", D "mini.rdm");
  sp.vendor = "refinitiv";
  CHECK(fm_import_source(&sp, &s, &err) == FM_OK);
  CHECK_STR(err.msg, "");
  CHECK(s.n == 8);
  {
    FIELD(&s, "PROD_PERM", f);
    CHECK_STR(f->name, "PERMISSION");
    CHECK_STR(f->type, "INTEGER");
    CHECK_STR(f->category, "");
    CHECK_STR(f->vendor, "refinitiv");
    CHECK_STR(f->source, D "mini.rdm");
    CHECK(f->line == 7);
    CHECK_STR(f->code, "1"); /* the FID */
    /* the file header comment is not a description; lines are joined */
    CHECK_STR(f->description, "Product permissions information.");
  }
  {
    FIELD(&s, "TRDPRC_1", f);
    CHECK_STR(f->name, "LAST");
    CHECK_STR(f->type, "PRICE");
    CHECK_STR(f->description, "Last trade price or value.");
  }
  /* a run of consecutive definitions shares the block after it */
  static const char *const run[] = {"TRDPRC_2", "TRDPRC_3"};
  for (size_t i = 0; i < 2; i++) {
    FIELD(&s, run[i], f);
    CHECK_STR(f->description, "Previous last trade prices or values.");
  }
  {
    FIELD(&s, "HIGH_1", f); /* tab separated, apostrophe in the name */
    CHECK_STR(f->name, "TODAY'S HIGH");
    CHECK_STR(f->description, "Identifier for the market.");
  }
  {
    FIELD(&s, "RDN_EXCHID", f); /* "( 3 )" enumeration length */
    CHECK_STR(f->name, "IDN EXCHANGE ID");
    CHECK_STR(f->code, "4");
    CHECK_STR(f->type, "ENUMERATED");
    CHECK_STR(f->description, "Identifier for the market.");
  }
  {
    FIELD(&s, "NEG_FID", f); /* an empty comment block ends the run */
    CHECK_STR(f->description, "");
    CHECK_STR(f->code, "-22"); /* negative FIDs are real (RDM's local fields) */
  }
  {
    FIELD(&s, "CAF_LAT1", f); /* valid UTF-8 passes through */
    CHECK_STR(f->name, "CAF\xC3\x89");
    CHECK_STR(f->description, "Valid UTF-8 caf\xC3\xA9 passes.");
  }
  fm_fieldset_free(&s);

  /* latin-1 bytes are converted to UTF-8 */
  fm_fieldset_init(&s);
  sp = spec_of("rdm", D "latin1.rdm");
  CHECK(fm_import_source(&sp, &s, &err) == FM_OK);
  CHECK(s.n == 1);
  if (s.n == 1) {
    CHECK_STR(s.v[0].name, "CAF\xC3\x89 OLD");
    CHECK_STR(s.v[0].description, "caf\xC3\xA9 cr\xC3\xA8me");
  }
  fm_fieldset_free(&s);
}

/* ---- csv ------------------------------------------------------------------- */

static void test_csv(void) {
  warn_log w = {0};
  fm_set_warn_handler(capture_warn, &w);
  fm_fieldset s;
  fm_fieldset_init(&s);
  fm_error err;
  fm_error_init(&err);
  fm_source_spec sp = mapped("csv", D "mini.csv");
  CHECK(fm_import_source(&sp, &s, &err) == FM_OK);
  CHECK_STR(err.msg, "");
  CHECK(s.n == 5); /* duplicates are kept */
  if (s.n == 5) {
    /* BOM skipped, CRLF, quoted multi-line field with doubled quotes */
    CHECK_STR(s.v[0].id, "A1");
    CHECK_STR(s.v[0].name, "Alpha");
    CHECK_STR(s.v[0].description, "line one line \"two\"");
    CHECK_STR(s.v[0].type, "Real");
    CHECK_STR(s.v[0].category, "G1");
    CHECK(s.v[0].line == 2);
    /* bare NA is missing; quoted "NA" is text */
    CHECK_STR(s.v[1].id, "B2");
    CHECK_STR(s.v[1].name, "");
    CHECK_STR(s.v[1].description, "");
    CHECK_STR(s.v[1].type, "NA");
    CHECK(s.v[1].line == 4);
    /* blank line skipped, id trimmed, comma inside quotes, spaces collapsed */
    CHECK_STR(s.v[2].id, "C3");
    CHECK_STR(s.v[2].name, "Gamma, the third");
    CHECK_STR(s.v[2].description, "spaced out");
    CHECK(s.v[2].line == 6);
  }
  /* one warning for the source, naming the first repeat and the count */
  CHECK(w.count == 1);
  CHECK(strstr(w.last, D "mini.csv:7: duplicate id 'A1' (first at line 2); "
                         "2 duplicate ids") != NULL);
  fm_fieldset_free(&s);

  /* default column names, absent optional columns are empty */
  fm_fieldset_init(&s);
  w.count = 0;
  sp = spec_of("csv", D "default.csv");
  CHECK(fm_import_source(&sp, &s, &err) == FM_OK);
  CHECK(s.n == 2);
  if (s.n == 2) {
    CHECK_STR(s.v[0].description, "only a description");
    CHECK_STR(s.v[0].name, "");
    CHECK_STR(s.v[1].description, "");
  }
  CHECK(w.count == 0);
  fm_fieldset_free(&s);
  fm_set_warn_handler(NULL, NULL);
}

/* ---- bbdl ------------------------------------------------------------------ */

static void test_bbdl(void) {
  fm_fieldset s;
  fm_fieldset_init(&s);
  fm_error err;
  fm_error_init(&err);
  fm_source_spec sp = spec_of("bbdl", D "mini.bbdl.csv");
  CHECK(fm_import_source(&sp, &s, &err) == FM_OK);
  CHECK(s.n == 3);
  {
    FIELD(&s, "PX_LAST", f);
    CHECK_STR(f->category,
              "Pricing - Intraday; Equity Pfd Govt Corp Index Curncy");
    CHECK_STR(f->type, "Price");
    CHECK_STR(f->name, "");
    CHECK_STR(f->description, "");
    CHECK(f->line == 2);
  }
  {
    FIELD(&s, "NAME", f);
    CHECK_STR(f->category, "Security Master; Comdty Equity Muni Pfd M-Mkt "
                           "Govt Corp Index Curncy Mtge");
  }
  {
    FIELD(&s, "NO_CLASS", f);
    CHECK_STR(f->category, "Misc");
    CHECK_STR(f->code, ""); /* only the RDM dictionary has codes */
    CHECK_STR(f->type, "Real");
  }
  fm_fieldset_free(&s);
}

/* ---- jsonl ----------------------------------------------------------------- */

static void test_jsonl(void) {
  fm_fieldset s;
  fm_fieldset_init(&s);
  fm_error err;
  fm_error_init(&err);
  fm_source_spec sp = mapped("jsonl", D "mini.jsonl");
  sp.col_category = NULL; /* "category" is absent: fine when not named */
  CHECK(fm_import_source(&sp, &s, &err) == FM_OK);
  CHECK_STR(err.msg, "");
  CHECK(s.n == 3);
  if (s.n == 3) {
    CHECK_STR(s.v[0].id, "J1");
    CHECK_STR(s.v[0].name, "Jay one");
    CHECK_STR(s.v[0].description, "first field text");
    CHECK_STR(s.v[0].type, "Real");
    CHECK(s.v[0].line == 1);
    CHECK_STR(s.v[1].id, "J2");
    CHECK_STR(s.v[1].name, ""); /* null */
    CHECK_STR(s.v[1].type, "3");
    CHECK(s.v[1].line == 3); /* blank line 2 skipped */
    CHECK_STR(s.v[2].id, "42");
    CHECK_STR(s.v[2].description, "numeric id");
  }
  fm_fieldset_free(&s);
}

/* ---- malformed input --------------------------------------------------------- */

typedef struct bad_case {
  const char *format, *path;
  int mapped;           /* use the mini.csv mapping */
  const char *col_name; /* override col_name when non-NULL */
  fm_rc rc;
  const char *want; /* substring of the message */
} bad_case;

static const bad_case bad_cases[] = {
    {"rdm", D "garbage.rdm", 0, NULL, FM_ERR_PARSE, D "garbage.rdm:3:"},
    {"rdm", D "bad_fid.rdm", 0, NULL, FM_ERR_PARSE, D "bad_fid.rdm:1: not a field definition (FID"},
    {"rdm", D "paren.rdm", 0, NULL, FM_ERR_PARSE, D "paren.rdm:1: not a field definition ('( n )' not right after LENGTH)"},
    {"csv", D "unterminated.csv", 0, NULL, FM_ERR_PARSE, D "unterminated.csv:2: unterminated quoted"},
    {"csv", D "bad_utf8.csv", 0, NULL, FM_ERR_PARSE,
     D "bad_utf8.csv:3: invalid UTF-8 (byte 0xE9 at column 9, field 'description')"},
    {"csv", D "short_row.csv", 0, NULL, FM_ERR_PARSE, D "short_row.csv:3: 2 fields"},
    {"csv", D "mini.csv", 1, "nope", FM_ERR_PARSE, D "mini.csv:1: column 'nope' (col_name)"},
    {"csv", D "nomap.csv", 0, NULL, FM_ERR_PARSE, D "nomap.csv:1: column 'id' (col_id)"},
    {"bbdl", D "mini.csv", 0, NULL, FM_ERR_PARSE, D "mini.csv:1: column 'Field Mnemonic'"},
    {"jsonl", D "bad.jsonl", 1, NULL, FM_ERR_PARSE, D "bad.jsonl:2:"},
    {"jsonl", D "mini.jsonl", 1, NULL, FM_ERR_PARSE, "key 'grp' (col_category)"},
    {"jsonl", D "mini.csv", 0, NULL, FM_ERR_PARSE, D "mini.csv:1:"},
    {"csv", D "junk_quote.csv", 0, NULL, FM_ERR_PARSE, D "junk_quote.csv:3: unexpected character 'b'"},
    {"csv", D "nul.csv", 0, NULL, FM_ERR_PARSE, D "nul.csv:2: NUL byte"},
    {"jsonl", D "array.jsonl", 0, NULL, FM_ERR_PARSE, D "array.jsonl:1: key 'name' holds an array"},
    {"csv", D "no_such_file.csv", 0, NULL, FM_ERR_IO, D "no_such_file.csv"},
    {"xml", D "mini.csv", 0, NULL, FM_ERR_ARG, "unknown format 'xml'"},
};

static void test_malformed(void) {
  for (size_t i = 0; i < sizeof bad_cases / sizeof *bad_cases; i++) {
    const bad_case *c = &bad_cases[i];
    fm_fieldset s;
    fm_fieldset_init(&s);
    fm_field keep = {.vendor = "v", .id = "KEEP", .description = "kept"};
    CHECK(fm_fieldset_add(&s, &keep) == FM_OK);
    fm_source_spec sp = c->mapped ? mapped(c->format, c->path)
                                  : spec_of(c->format, c->path);
    if (c->col_name) sp.col_name = c->col_name;
    fm_error err;
    fm_error_init(&err);
    fm_rc rc = fm_import_source(&sp, &s, &err);
    if (rc != c->rc || !strstr(err.msg, c->want))
      fprintf(stderr, "  case %zu (%s): rc=%s msg='%s'\n", i, c->path,
              fm_rc_name(rc), err.msg);
    CHECK(rc == c->rc);
    CHECK(strstr(err.msg, c->want) != NULL);
    /* the set is as before */
    CHECK(s.n == 1);
    CHECK_STR(s.v[0].id, "KEEP");
    CHECK_STR(s.v[0].description, "kept");
    CHECK_STR(s.v[0].name, "");
    fm_fieldset_free(&s);
  }
}

/* ---- merge ------------------------------------------------------------------- */

static void test_merge(void) {
  fm_fieldset a, b;
  fm_fieldset_init(&a);
  fm_fieldset_init(&b);
  fm_field fa[] = {
      {.vendor = "bbg", .id = "PX", .name = "", .description = "short",
       .type = "", .category = "Pricing", .source = "a.csv", .line = 2},
      {.vendor = "bbg", .id = "ONLY_A", .description = "a"},
  };
  fm_field fb[] = {
      {.vendor = "bbg", .id = "PX", .name = "Last price",
       .description = "the longer description", .type = "Price",
       .category = "Other", .source = "b.csv", .line = 9},
      {.vendor = "bbg", .id = "ONLY_B", .description = "b"},
      {.vendor = "bbg", .id = "ONLY_B", .description = "b, longer"},
      {.vendor = "bbg", .id = "ONLY_A", .description = ""},
  };
  for (size_t i = 0; i < 2; i++) CHECK(fm_fieldset_add(&a, &fa[i]) == FM_OK);
  for (size_t i = 0; i < 4; i++) CHECK(fm_fieldset_add(&b, &fb[i]) == FM_OK);
  fm_error err;
  fm_error_init(&err);
  CHECK(fm_fieldset_merge(&a, &b, &err) == FM_OK);
  CHECK(a.n == 3);
  if (a.n == 3) {
    CHECK_STR(a.v[0].id, "PX");
    CHECK_STR(a.v[0].description, "the longer description");
    CHECK_STR(a.v[0].name, "Last price");  /* empty: filled */
    CHECK_STR(a.v[0].type, "Price");       /* empty: filled */
    CHECK_STR(a.v[0].category, "Pricing"); /* present: kept */
    CHECK_STR(a.v[0].source, "a.csv");
    CHECK(a.v[0].line == 2);
    CHECK_STR(a.v[1].id, "ONLY_A");
    CHECK_STR(a.v[1].description, "a"); /* shorter one does not win */
    CHECK_STR(a.v[2].id, "ONLY_B");
    CHECK_STR(a.v[2].description, "b, longer");
  }
  /* b is untouched and still owns its own strings */
  CHECK(b.n == 4);
  fm_fieldset_free(&b);
  if (a.n == 3) CHECK_STR(a.v[0].name, "Last price");
  fm_fieldset_free(&a);
}

/* ---- pairs ------------------------------------------------------------------- */

static void test_pairs(void) {
  fm_pairs p;
  fm_pairs_init(&p);
  fm_error err;
  fm_error_init(&err);
  CHECK(fm_pairs_load(D "pairs.tsv", &p, &err) == FM_OK);
  CHECK(p.n == 2);
  if (p.n == 2) {
    CHECK_STR(p.v[0].query, "PX_LAST");
    CHECK_STR(p.v[0].ref, "TRDPRC_1");
    CHECK_STR(p.v[1].query, "PX_OPEN");
    CHECK_STR(p.v[1].ref, "OPEN_PRC"); /* CR stripped */
  }
  CHECK(fm_pairs_load(D "bad_pairs.tsv", &p, &err) == FM_ERR_PARSE);
  CHECK(strstr(err.msg, D "bad_pairs.tsv:3:") != NULL);
  CHECK(p.n == 2);
  fm_pairs_free(&p);
}

/* ---- fault injection ----------------------------------------------------------- */

/* Run op with the k-th allocation failing for k = 1, 2, ... until it has
 * succeeded many times in a row (k beyond its allocation count).  Every run
 * must succeed or fail with FM_ERR_NOMEM leaving the set as it was. */
typedef fm_rc (*fault_op)(fm_fieldset *s, fm_error *err);

static fm_rc op_rdm(fm_fieldset *s, fm_error *err) {
  fm_source_spec sp = spec_of("rdm", D "mini.rdm");
  return fm_import_source(&sp, s, err);
}
static fm_rc op_rdm_latin1(fm_fieldset *s, fm_error *err) {
  fm_source_spec sp = spec_of("rdm", D "latin1.rdm");
  return fm_import_source(&sp, s, err);
}
static fm_rc op_csv(fm_fieldset *s, fm_error *err) {
  fm_source_spec sp = mapped("csv", D "mini.csv");
  return fm_import_source(&sp, s, err);
}
static fm_rc op_bbdl(fm_fieldset *s, fm_error *err) {
  fm_source_spec sp = spec_of("bbdl", D "mini.bbdl.csv");
  return fm_import_source(&sp, s, err);
}
static fm_rc op_jsonl(fm_fieldset *s, fm_error *err) {
  fm_source_spec sp = mapped("jsonl", D "mini.jsonl");
  sp.col_category = NULL;
  return fm_import_source(&sp, s, err);
}
static void warn_sink(void *ctx, const char *msg) {
  (void)ctx;
  (void)msg;
}

static void run_faults(const char *name, fault_op op) {
  fm_set_warn_handler(warn_sink, NULL);
  int ok_run = 0, nomem = 0;
  for (long k = 1; k < 5000 && ok_run < 50; k++) {
    fm_fieldset s;
    fm_fieldset_init(&s);
    fm_field keep = {.id = "KEEP", .description = "kept"};
    CHECK(fm_fieldset_add(&s, &keep) == FM_OK);
    fm_error err;
    fm_error_init(&err);
    fm_fault_malloc_after(k);
    fm_rc rc = op(&s, &err);
    fm_fault_malloc_after(0);
    if (rc == FM_OK) {
      ok_run++;
      CHECK(s.n > 1);
    } else {
      ok_run = 0;
      nomem++;
      if (rc != FM_ERR_NOMEM)
        fprintf(stderr, "  %s k=%ld: rc=%s %s\n", name, k, fm_rc_name(rc),
                err.msg);
      CHECK(rc == FM_ERR_NOMEM);
      CHECK(s.n == 1);
      CHECK_STR(s.v[0].id, "KEEP");
    }
    fm_fieldset_free(&s);
    if (rc != FM_OK && rc != FM_ERR_NOMEM) break;
  }
  CHECK(nomem > 0);
  CHECK(ok_run == 50);
  fm_set_warn_handler(NULL, NULL);
}

/* The merge itself under faults: out must be unchanged on failure. */
static void test_fault_merge(void) {
  fm_fieldset in;
  fm_fieldset_init(&in);
  fm_source_spec sp = mapped("csv", D "mini.csv");
  fm_set_warn_handler(warn_sink, NULL);
  CHECK(fm_import_source(&sp, &in, NULL) == FM_OK);
  int ok_run = 0, nomem = 0;
  for (long k = 1; k < 5000 && ok_run < 50; k++) {
    fm_fieldset out;
    fm_fieldset_init(&out);
    fm_field keep = {.id = "A1", .description = "x"};
    CHECK(fm_fieldset_add(&out, &keep) == FM_OK);
    fm_error err;
    fm_error_init(&err);
    fm_fault_malloc_after(k);
    fm_rc rc = fm_fieldset_merge(&out, &in, &err);
    fm_fault_malloc_after(0);
    if (rc == FM_OK) {
      ok_run++;
      CHECK(out.n == 3); /* A1 merged, B2 and C3 appended (dups merged) */
    } else {
      ok_run = 0;
      nomem++;
      CHECK(rc == FM_ERR_NOMEM);
      CHECK(out.n == 1);
      CHECK_STR(out.v[0].description, "x");
    }
    fm_fieldset_free(&out);
    if (rc != FM_OK && rc != FM_ERR_NOMEM) break;
  }
  CHECK(nomem > 0);
  fm_fieldset_free(&in);
  fm_set_warn_handler(NULL, NULL);
}

static void test_faults(void) {
  run_faults("rdm", op_rdm);
  run_faults("rdm_latin1", op_rdm_latin1);
  run_faults("csv", op_csv);
  run_faults("bbdl", op_bbdl);
  run_faults("jsonl", op_jsonl);
  test_fault_merge();
  /* pairs */
  int ok_run = 0, nomem = 0;
  for (long k = 1; k < 5000 && ok_run < 50; k++) {
    fm_pairs p;
    fm_pairs_init(&p);
    fm_fault_malloc_after(k);
    fm_rc rc = fm_pairs_load(D "pairs.tsv", &p, NULL);
    fm_fault_malloc_after(0);
    if (rc == FM_OK) {
      ok_run++;
      CHECK(p.n == 2);
    } else {
      ok_run = 0;
      nomem++;
      CHECK(rc == FM_ERR_NOMEM);
      CHECK(p.n == 0);
    }
    fm_pairs_free(&p);
    if (rc != FM_OK && rc != FM_ERR_NOMEM) break;
  }
  CHECK(nomem > 0);
}

int main(void) {
  FM_RUN(test_rdm);
  FM_RUN(test_csv);
  FM_RUN(test_bbdl);
  FM_RUN(test_jsonl);
  FM_RUN(test_malformed);
  FM_RUN(test_merge);
  FM_RUN(test_pairs);
  FM_RUN(test_faults);
  FM_TEST_EXIT();
}
