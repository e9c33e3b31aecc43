/* test_fuzz_inputs.c: deterministic mutation fuzzing of the input parsers
 * (the rdm, csv, bbdl and jsonl importers, the pairs TSV, the training
 * config JSON and the curated abbreviation TSV), plus the minimized inputs
 * of the bugs it found.
 *
 * Each mutant is written to a scratch file and parsed; the contract is
 * rc == FM_OK, or a non-OK rc with a message that names the file (and the
 * line where one applies) and is itself valid UTF-8 (messages reach JSON
 * replies).  A failed import must leave the field set as it was; accepted
 * input must hold trimmed, non-empty, valid UTF-8 ids.  Crashes, sanitizer
 * reports, leaks and hangs fail the run by themselves (a hang trips the
 * per-mutant alarm).
 *
 * Fixed seed, fixed iteration count: the same mutants every run, and each
 * parser's mutants do not depend on which other parsers run.  For long
 * local campaigns:
 *   FM_FUZZ_ITERS=n   mutants per seed file (default below)
 *   FM_FUZZ_SEED=n    another PRNG seed
 *   FM_FUZZ_ONLY=name only that parser (rdm, csv, csv-default, csv-bbg,
 *                     bbdl, jsonl, pairs, config, abbrev)
 * The scratch directory printed at the start is kept when the run fails:
 * a mutant that broke the contract is saved there as
 * "fail.<parser>.<mutant>", and when the process dies the mutant it died
 * on is "current.<parser>". */
#include "fm_import.h"
#include "fm_model.h"
#include "fm_test.h"
#include "fm_test_util.h"
#include "fm_text.h"

#include <signal.h>
#include <stdint.h>

#define D "tests/data/import/"

/* Mutants per seed file in the committed run (< 5 s Release, < 30 s ASan). */
#define DEFAULT_ITERS 400

static long iters = DEFAULT_ITERS;
static uint64_t rng_seed = 0x5EED0F1E1D5ULL, rng_state;
static const char *only;
static const char *current_what = "";
static long current_iter;

/* ---- PRNG (splitmix64) -------------------------------------------------- */

static uint64_t rnd(void) {
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
static size_t below(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

/* ---- mutations ---------------------------------------------------------- */

/* Insert p[0..n) at b[at]; p must not point into b. */
static void put(fm_buf *b, size_t at, const void *p, size_t n) {
  size_t old = b->len;
  if (fm_buf_append(b, p, n)) abort(); /* grow, then move into place */
  memmove(b->buf + at + n, b->buf + at, old - at);
  memcpy(b->buf + at, p, n);
}

static void cut(fm_buf *b, size_t at, size_t n) {
  memmove(b->buf + at, b->buf + at + n, b->len - at - n);
  b->len -= n;
  b->buf[b->len] = '\0';
}

/* Tokens that matter to some parser, or break UTF-8 in some way. */
static const struct { const char *s; size_t n; } tokens[] = {
#define T(x) {x, sizeof x - 1}
    T("\""), T("\"\""), T(","), T("\t"), T("\n"), T("\r"), T("\r\n"),
    T("\0"), T(" "), T("!"), T("("), T(")"), T("( 3 )"), T("{"), T("}"),
    T("["), T("]"), T(":"), T("null"), T("NA"), T("#"), T("\\"),
    T("\\u0000"), T("\\ud800"), T("\\"), T("-"), T("+"), T("9999999999999999999"),
    T("1e999"), T("-1"), T("0"), T("\xEF\xBB\xBF"),           /* BOM */
    T("\xC0\xAF"), T("\xE0\x80\xAF"),                          /* overlong */
    T("\x80"), T("\xBF"),                                      /* lone continuation */
    T("\xED\xA0\x80"), T("\xED\xBF\xBF"),                      /* surrogates */
    T("\xF4\x90\x80\x80"), T("\xF8\x88\x80\x80\x80"),          /* > U+10FFFF */
    T("\xE2\x82"), T("\xC3"), T("\xFF"), T("\xFE"),            /* truncated, invalid */
    T("\xC3\xA9"), T("\xE2\x80\xA8"), T("\xC2\xA0"), T("\xE3\x80\x80"), /* é, LS, NBSP, ideographic space */
    T("\xF0\x9F\x98\x80"), T("\xCC\x81"), T("\xEF\xBC\xA1"),    /* emoji, combining, fullwidth A */
    T("\"id\":"), T("\"code\":"), T("{\"code\":\"X\"}"), T("Field Mnemonic"),
    T("Width"), T("\"dims\":"), T("\"reference\":"), T("\"path\":"),
    T("\"columns\":"), T("\"model\":"), T("\"weights\":"),
#undef T
};
#define NTOKENS (sizeof tokens / sizeof tokens[0])

/* Offsets just after a structural byte (line end, separator, quote). */
static size_t boundary(const fm_buf *b) {
  if (!b->len) return 0;
  size_t start = below(b->len);
  for (size_t k = 0; k < b->len; k++) {
    size_t i = (start + k) % b->len;
    char c = b->buf[i];
    if (c == '\n' || c == '\r' || c == ',' || c == '\t' || c == '"' ||
        c == '{' || c == ':' || (unsigned char)c >= 0xC0)
      return i + 1;
  }
  return start;
}

static void mutate_once(fm_buf *b, const fm_buf *other) {
  size_t len = b->len;
  switch (below(16)) {
  case 0: /* bit flips */
    if (len)
      for (int k = 1 + (int)below(4); k > 0; k--)
        b->buf[below(len)] ^= (char)(1u << below(8));
    break;
  case 1: /* random bytes */
  {
    char r[8];
    size_t n = 1 + below(sizeof r);
    for (size_t i = 0; i < n; i++) r[i] = (char)rnd();
    put(b, below(len + 1), r, n);
    break;
  }
  case 2: /* delete a range */
    if (len) {
      size_t at = below(len), n = 1 + below(len - at < 64 ? len - at : 64);
      cut(b, at, n);
    }
    break;
  case 3: /* duplicate a range */
    if (len) {
      size_t at = below(len), n = 1 + below(len - at < 256 ? len - at : 256);
      char *copy = fm_strndup(b->buf + at, n);
      if (!copy) abort();
      put(b, below(len + 1), copy, n);
      fm_free(copy);
    }
    break;
  case 4: /* truncate at a boundary (or anywhere) */
    if (len) {
      size_t at = below(2) ? boundary(b) : below(len);
      cut(b, at, len - at);
    }
    break;
  case 5: /* splice: our head, the other's tail */
    if (other->len) {
      size_t at = below(len + 1), from = below(other->len);
      cut(b, at, len - at);
      put(b, at, other->buf + from, other->len - from);
    }
    break;
  case 6: case 7: case 8: /* insert a token */
  {
    size_t t = below(NTOKENS);
    put(b, below(2) ? boundary(b) : below(len + 1), tokens[t].s, tokens[t].n);
    break;
  }
  case 9: /* overwrite a byte with an interesting one */
    if (len) {
      static const char v[] = {'\0', '"', ',', '\t', '\n', '\r', ' ', '!',
                               '(', '{', '\x7f', '\x80', '\xff', '\xc0'};
      b->buf[below(len)] = v[below(sizeof v)];
    }
    break;
  case 10: /* duplicate a whole line */
    if (len) {
      size_t at = boundary(b);
      const char *nl = memchr(b->buf + at, '\n', len - at);
      size_t n = nl ? (size_t)(nl - (b->buf + at)) + 1 : len - at;
      char *copy = fm_strndup(b->buf + at, n);
      if (!copy) abort();
      put(b, boundary(b), copy, n);
      fm_free(copy);
    }
    break;
  case 11: /* a long run of one byte (field, blanks, separators) */
  {
    static const char v[] = {'A', ' ', ',', '\t', '"', '\n', '[', '!', '\xe9'};
    size_t n = 1 + below(below(8) ? 300 : 70000);
    char *run = fm_malloc(n);
    if (!run) abort();
    memset(run, v[below(sizeof v)], n);
    put(b, below(len + 1), run, n);
    fm_free(run);
    break;
  }
  case 12: /* line ends: LF <-> CRLF <-> CR */
    for (size_t i = 0; i < b->len; i++)
      if (b->buf[i] == '\n' && below(3) == 0) {
        if (below(2)) {
          put(b, i, "\r", 1);
          i++;
        } else {
          b->buf[i] = '\r';
        }
      }
    break;
  case 13: /* empty the file */
    if (below(8) == 0) cut(b, 0, len);
    break;
  default: /* swap two bytes */
    if (len > 1) {
      size_t i = below(len), j = below(len);
      char c = b->buf[i];
      b->buf[i] = b->buf[j];
      b->buf[j] = c;
    }
    break;
  }
}

/* ---- checks ------------------------------------------------------------- */

static int valid_utf8(const char *s) {
  fm_buf j;
  fm_error e;
  fm_buf_init(&j);
  fm_error_init(&e);
  int ok = fm_buf_json_str(&j, s, strlen(s), &e) == FM_OK;
  fm_buf_free(&j);
  return ok;
}

/* An error message: non-empty, names path (followed by ":<line>" when
 * with_line), valid UTF-8.  Prints the first ten offenders. */
static void check_error(const char *what, fm_rc rc, const fm_error *err,
                        const char *path, int with_line) {
  static int said;
  const char *at = strstr(err->msg, path);
  int ok = rc != FM_OK && err->msg[0] && at;
  if (ok && with_line) {
    const char *after = at + strlen(path);
    ok = after[0] == ':' && after[1] >= '1' && after[1] <= '9';
  }
  ok = ok && valid_utf8(err->msg);
  CHECK(ok);
  if (!ok && said++ < 10)
    fprintf(stderr, "  %s mutant %ld: rc %d, message: %s\n", what,
            current_iter, (int)rc, err->msg);
}

static void say(const char *s) { (void)!write(2, s, strlen(s)); }

/* A mutant took 20 s: say which (write(2) only: async-signal-safe) and
 * stop; "current.<parser>" in the scratch directory is the mutant. */
static void on_alarm(int sig) {
  (void)sig;
  char num[24], *p = num + sizeof num;
  unsigned long v = current_iter < 0 ? 0 : (unsigned long)current_iter;
  *--p = '\0';
  do *--p = (char)('0' + v % 10); while (v /= 10);
  say("\nhang: ");
  say(current_what);
  say(current_iter < 0 ? " seed or fixed shape" : " mutant ");
  say(current_iter < 0 ? "" : p);
  say(", left in ");
  say(dir);
  say("\n");
  _exit(3);
}

static void quiet_warn(void *ctx, const char *msg) {
  (void)ctx;
  (void)msg;
}

/* ---- the parsers under test --------------------------------------------- */

typedef struct target {
  const char *name;
  const char *format; /* importer format, or NULL */
  int mapped;         /* 1: the code/label/text/kind/grp mapping of
                         mini.csv; 2: the same without grp (mini.jsonl);
                         3: the sample fields.csv (mnemonic, name, ...) */
  void (*run)(const struct target *t, const char *path, int must_pass);
} target;

static fm_tokenizer *tk;
static fm_error last_err; /* of the last parse that failed */
static long n_ok, n_failed; /* parses of the current target */

static void run_import(const target *t, const char *path, int must_pass) {
  fm_fieldset s;
  fm_fieldset_init(&s);
  fm_error err;
  fm_error_init(&err);
  fm_field pre = {0};
  pre.id = "PRE";
  CHECK(fm_fieldset_add(&s, &pre) == FM_OK);
  fm_source_spec sp = {0};
  sp.vendor = "fuzz";
  sp.format = t->format;
  sp.path = path;
  if (t->mapped == 1 || t->mapped == 2) {
    sp.col_id = "code";
    sp.col_name = "label";
    sp.col_description = "text";
    sp.col_type = "kind";
    sp.col_category = t->mapped == 1 ? "grp" : NULL;
  } else if (t->mapped == 3) {
    sp.col_id = "mnemonic";
    sp.col_name = "name";
    sp.col_description = "description";
    sp.col_type = "type";
    sp.col_category = "category";
  }
  fm_rc rc = fm_import_source(&sp, &s, &err);
  if (must_pass) {
    CHECK(rc == FM_OK);
    if (rc) fprintf(stderr, "  seed rejected: %s\n", err.msg);
  }
  if (rc == FM_OK) n_ok++;
  else n_failed++;
  if (rc == FM_OK) {
    for (size_t i = 1; i < s.n; i++) {
      const fm_field *f = &s.v[i];
      size_t l = strlen(f->id);
      int ok = l > 0 && f->id[0] != ' ' && f->id[l - 1] != ' ' &&
               valid_utf8(f->id) && valid_utf8(f->name) &&
               valid_utf8(f->description) && valid_utf8(f->type) &&
               valid_utf8(f->category) && f->line >= 1;
      CHECK(ok);
      if (!ok) {
        fprintf(stderr, "  %s mutant %ld: bad field %zu id '%s'\n", t->name,
                current_iter, i, f->id);
        break;
      }
    }
  } else {
    last_err = err;
    check_error(t->name, rc, &err, path, 1);
    CHECK(rc == FM_ERR_PARSE);
    CHECK(s.n == 1 && strcmp(s.v[0].id, "PRE") == 0);
  }
  fm_fieldset_free(&s);
}

static void run_pairs(const target *t, const char *path, int must_pass) {
  fm_pairs p;
  fm_pairs_init(&p);
  fm_error err;
  fm_error_init(&err);
  fm_rc rc = fm_pairs_load(path, &p, &err);
  if (must_pass) CHECK(rc == FM_OK);
  if (rc == FM_OK) n_ok++;
  else n_failed++;
  if (rc == FM_OK) {
    for (size_t i = 0; i < p.n; i++) {
      int ok = p.v[i].query[0] && p.v[i].ref[0] && !strchr(p.v[i].query, '\t') &&
               !strchr(p.v[i].ref, '\t') && valid_utf8(p.v[i].query) &&
               valid_utf8(p.v[i].ref);
      CHECK(ok);
      if (!ok) break;
    }
  } else {
    last_err = err;
    check_error(t->name, rc, &err, path, 1);
    CHECK(rc == FM_ERR_PARSE);
    CHECK(p.n == 0);
  }
  fm_pairs_free(&p);
}

static void run_config(const target *t, const char *path, int must_pass) {
  fm_config *c = NULL;
  fm_error err;
  fm_error_init(&err);
  fm_rc rc = fm_config_load(path, &c, &err);
  if (must_pass) CHECK(rc == FM_OK);
  if (rc == FM_OK) n_ok++;
  else n_failed++;
  if (rc == FM_OK) {
    CHECK(c && c->name && c->nreference > 0 && c->nquery > 0);
  } else {
    CHECK(c == NULL);
    last_err = err;
    check_error(t->name, rc, &err, path, 0);
    CHECK(rc == FM_ERR_PARSE || rc == FM_ERR_ARG);
  }
  fm_config_free(c);
}

static void run_abbrev(const target *t, const char *path, int must_pass) {
  fm_abbrev *a = NULL;
  fm_error err;
  fm_error_init(&err);
  CHECK(fm_abbrev_new(&a) == FM_OK);
  if (!a) return;
  fm_rc rc = fm_abbrev_load_tsv(a, tk, path, &err);
  if (must_pass) CHECK(rc == FM_OK);
  if (rc == FM_OK) n_ok++;
  else n_failed++;
  if (rc == FM_OK) {
    for (size_t i = 0; i < fm_abbrev_count(a); i++) {
      const char *ab, *ex;
      uint32_t sup;
      fm_abbrev_entry(a, i, &ab, &ex, &sup);
      CHECK(ab[0] && ex[0] && valid_utf8(ab) && valid_utf8(ex));
    }
  } else {
    last_err = err;
    check_error(t->name, rc, &err, path, 1);
    CHECK(rc == FM_ERR_PARSE);
  }
  fm_abbrev_free(a);
}

static const target t_rdm = {"rdm", "rdm", 0, run_import};
static const target t_csv = {"csv", "csv", 1, run_import};
static const target t_csvd = {"csv-default", "csv", 0, run_import};
static const target t_csvb = {"csv-bbg", "csv", 3, run_import};
static const target t_bbdl = {"bbdl", "bbdl", 0, run_import};
static const target t_jsonl = {"jsonl", "jsonl", 2, run_import};
static const target t_pairs = {"pairs", NULL, 0, run_pairs};
static const target t_config = {"config", NULL, 0, run_config};
static const target t_abbrev = {"abbrev", NULL, 0, run_abbrev};

/* ---- regressions: minimized inputs of the bugs found ---------------------- */

typedef struct regression {
  const char *target; /* name of a target above */
  const char *bytes; /* the file */
  const char *want;  /* part of the error message it must give */
  size_t len;        /* of bytes when it holds a NUL, else 0 */
} regression;

static const regression regressions[] = {
    /* rdm quoted the first 63 bytes of a bad line, cutting 'é' in half:
     * an invalid UTF-8 message (and a broken JSON reply downstream). */
    {"rdm",
     "XY\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
     "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
     "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
     "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\n",
     ":1: not a field definition (missing the quoted DDE acronym): 'XY", 0},
    /* csv named the junk after a closing quote by its first byte only. */
    {"csv-default", "id\n\"a\"\xC3\xA9\n",
     ":2: unexpected character '\xC3\xA9' after closing quote (column 1)", 0},
    /* CR-only line ends read as one record: a header and nothing else,
     * silently (csv), or one header line (pairs). */
    {"csv-default", "id,description\rA,x\rB,y\r",
     ":1: carriage return without a line feed in unquoted field (column 2)", 0},
    {"pairs", "query\tref\rPX_LAST\tTRDPRC_1\r",
     ":1: carriage return without a line feed", 0},
    /* A fractional count was rounded down without a word. */
    {"config",
     "{\"reference\": [{\"vendor\": \"r\", \"format\": \"rdm\", \"path\": \"r\"}],"
     " \"query\": [{\"vendor\": \"b\", \"format\": \"bbdl\", \"path\": \"b\"}],"
     " \"model\": {\"dims\": 64.5}}",
     ": model.dims = 64.5 must be a whole number", 0},
    /* jansson's error text quoted half of the 'é' after a backslash. */
    {"jsonl", "{\"code\": \"\\\xC3\xA9\"}\n", ":1:12: bad JSON: invalid escape near '\"\\?'", 0},
    {"config", "{\"name\": \"\\\xC3\xA9\"}\n", ":1: invalid escape", 0},
    /* The abbreviation tokenizer took a NUL for a word break. */
    {"abbrev", "px\tpr\0ice\n", ":1: NUL byte in text", 10},
};

static void test_regressions(void) {
  static const target *const all[] = {&t_rdm, &t_csv, &t_csvd, &t_csvb, &t_bbdl,
                                      &t_jsonl, &t_pairs, &t_config,
                                      &t_abbrev};
  for (size_t i = 0; i < sizeof regressions / sizeof regressions[0]; i++) {
    const regression *r = &regressions[i];
    const target *t = NULL;
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
      if (strcmp(all[k]->name, r->target) == 0) t = all[k];
    CHECK(t != NULL);
    if (!t) continue;
    current_what = r->target;
    current_iter = (long)i;
    fm_error_init(&last_err);
    const char *path = tmp("regression");
    CHECK(write_bytes(path, r->bytes, r->len ? r->len : strlen(r->bytes)) == 0);
    t->run(t, path, 0); /* checks the contract */
    int ok = strstr(last_err.msg, r->want) != NULL;
    CHECK(ok);
    if (!ok) fprintf(stderr, "  regression %zu: '%s'\n", i, last_err.msg);
  }
}

/* ---- the driver ----------------------------------------------------------- */

static int load_seed(const char *path, fm_buf *b) {
  size_t n;
  unsigned char *p = read_bytes(path, &n);
  fm_buf_init(b);
  if (!p) return -1;
  fm_rc rc = fm_buf_append(b, p, n);
  fm_free(p);
  return rc ? -1 : 0;
}

/* Parse one buffer as t would read a file. */
static void parse_bytes(const target *t, const fm_buf *b, const char *file,
                        int must_pass) {
  const char *path = tmp(file);
  CHECK(write_bytes(path, b->buf, b->len) == 0);
  int before = fm_test_failures;
  static int saved;
  alarm(20);
  t->run(t, path, must_pass);
  alarm(0);
  if (fm_test_failures > before && saved++ < 20) {
    char name[96];
    snprintf(name, sizeof name, "fail.%s.%ld", t->name, current_iter);
    if (rename(path, tmp(name)) == 0)
      fprintf(stderr, "  saved as %s\n", tmp(name));
  }
}

static void fuzz(const target *t, const char *const *seeds, size_t nseeds) {
  if (only && strcmp(only, t->name) != 0) return;
  current_what = t->name;
  rng_state = rng_seed; /* a stream of its own per parser (FNV-1a of name) */
  for (const char *c = t->name; *c; c++)
    rng_state = (rng_state ^ (unsigned char)*c) * 0x100000001B3ULL;
  fm_buf seed[8], m;
  char file[64];
  snprintf(file, sizeof file, "current.%s", t->name);
  for (size_t i = 0; i < nseeds; i++) {
    CHECK(load_seed(seeds[i], &seed[i]) == 0);
    current_iter = -1;
    parse_bytes(t, &seed[i], file, 1); /* valid input still parses */
  }
  fm_buf_init(&m);
  n_ok = n_failed = 0;
  for (size_t i = 0; i < nseeds; i++)
    for (long k = 0; k < iters; k++) {
      current_iter = k;
      fm_buf_reset(&m);
      if (fm_buf_append(&m, seed[i].buf, seed[i].len)) abort();
      for (int j = 1 + (int)below(below(4) ? 3 : 12); j > 0; j--)
        mutate_once(&m, &seed[below(nseeds)]);
      parse_bytes(t, &m, file, 0);
    }
  fprintf(stderr, "  %s: %ld mutants, %ld accepted, %ld refused\n", t->name,
          n_ok + n_failed, n_ok, n_failed);
  /* Sizes and shapes a random walk rarely reaches: empty, only a BOM,
   * a 1 MB line, a 1 MB quoted field, 100000 columns, deep nesting. */
  current_iter = -2;
  static const char *const fill[] = {"", "\xEF\xBB\xBF", "\n", "\"", "\r",
                                     "\xEF\xBB\xBF\xEF\xBB\xBF"};
  for (size_t i = 0; i < sizeof fill / sizeof fill[0]; i++) {
    fm_buf_reset(&m);
    CHECK(fm_buf_puts(&m, fill[i]) == FM_OK);
    parse_bytes(t, &m, file, 0);
  }
  static const char unit[] = {'A', ',', '\t', '[', '"', ' '};
  for (size_t u = 0; u < sizeof unit; u++) {
    fm_buf_reset(&m);
    if (fm_buf_append(&m, seed[0].buf, seed[0].len)) abort();
    size_t n = 1u << 20, at = boundary(&m);
    char *run = fm_malloc(n);
    if (!run) abort();
    memset(run, unit[u], n);
    put(&m, at, run, n);
    fm_free(run);
    parse_bytes(t, &m, file, 0);
  }
  for (size_t i = 0; i < nseeds; i++) fm_buf_free(&seed[i]);
  fm_buf_free(&m);
}

static void test_fuzz_rdm(void) {
  const char *s[] = {D "mini.rdm", D "latin1.rdm",
                     "data/sample/refinitiv/RDMFieldDictionary.sample"};
  fuzz(&t_rdm, s, 3);
}
static void test_fuzz_csv(void) {
  const char *s[] = {D "mini.csv"};
  fuzz(&t_csv, s, 1);
  const char *d[] = {D "default.csv"};
  fuzz(&t_csvd, d, 1);
  const char *b[] = {"data/sample/bloomberg/fields.csv"};
  fuzz(&t_csvb, b, 1);
}
static void test_fuzz_bbdl(void) {
  const char *s[] = {D "mini.bbdl.csv", "data/sample/bloomberg/datalicense.csv"};
  fuzz(&t_bbdl, s, 2);
}
static void test_fuzz_jsonl(void) {
  const char *s[] = {D "mini.jsonl"};
  fuzz(&t_jsonl, s, 1);
}
static void test_fuzz_pairs(void) {
  const char *s[] = {D "pairs.tsv", "data/sample/gold-train.tsv"};
  fuzz(&t_pairs, s, 2);
}
static void test_fuzz_config(void) {
  const char *s[] = {"train/sample.json"};
  fuzz(&t_config, s, 1);
}
static void test_fuzz_abbrev(void) {
  const char *s[] = {"data/abbreviations.tsv"};
  fuzz(&t_abbrev, s, 1);
}

int main(void) {
  const char *e = getenv("FM_FUZZ_ITERS");
  if (e && *e) iters = atol(e);
  if ((e = getenv("FM_FUZZ_SEED")) && *e) rng_seed = strtoull(e, NULL, 0);
  if ((e = getenv("FM_FUZZ_ONLY")) && *e) only = e;
  if (scratch_make("fm_fuzzin_")) return 1;
  fprintf(stderr, "fuzz: %ld mutants per seed file, scratch %s\n", iters, dir);
  signal(SIGALRM, on_alarm);
  fm_set_warn_handler(quiet_warn, NULL);
  fm_error err;
  fm_error_init(&err);
  if (fm_tokenizer_new(&tk, &err) != FM_OK) {
    fprintf(stderr, "tokenizer: %s\n", err.msg);
    return 1;
  }
  FM_RUN(test_regressions);
  FM_RUN(test_fuzz_rdm);
  FM_RUN(test_fuzz_csv);
  FM_RUN(test_fuzz_bbdl);
  FM_RUN(test_fuzz_jsonl);
  FM_RUN(test_fuzz_pairs);
  FM_RUN(test_fuzz_config);
  FM_RUN(test_fuzz_abbrev);
  fm_tokenizer_free(tk);
  if (!fm_test_failures) scratch_remove();
  FM_TEST_EXIT();
}
