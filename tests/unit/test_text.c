/* test_text.c: tokenizer (data-driven, tests/data/text/tokenize.txt), stop
 * words, the abbreviation table, TSV loading, expansion, mining, fault
 * injection, and (when the shared data is present) real vendor files. */
#include "fm_test.h"
#include "fm_text.h"

#include <stdint.h>
#include <unistd.h>

/* Join tokens with single spaces into buf ("-" when there are none). */
static const char *joined(const fm_tokens *t, char *buf, size_t cap) {
  size_t len = 0;
  buf[0] = '\0';
  if (t->n == 0) {
    snprintf(buf, cap, "-");
    return buf;
  }
  for (size_t i = 0; i < t->n && len < cap; i++)
    len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? " " : "",
                            fm_tokens_get(t, i));
  return buf;
}

/* Strip a trailing "\n" / "\r\n". */
static void chomp(char *s) {
  size_t l = strlen(s);
  while (l && (s[l - 1] == '\n' || s[l - 1] == '\r')) s[--l] = '\0';
}

static void test_tokenize_file(void) {
  const char *path = "tests/data/text/tokenize.txt";
  FILE *fp = fopen(path, "r");
  char mode[256], input[4096], want[4096], got[8192];
  fm_tokenizer *tk = NULL;
  fm_tokens t;
  fm_error err;
  int lineno = 0, ntests = 0;
  CHECK(fp != NULL);
  if (!fp) return;
  fm_error_init(&err);
  CHECK(fm_tokenizer_new(&tk, &err) == FM_OK);
  fm_tokens_init(&t);
  for (;;) {
    /* Skip comments and blank lines up to the mode line. */
    if (!fgets(mode, sizeof mode, fp)) break;
    lineno++;
    chomp(mode);
    if (mode[0] == '#' || mode[0] == '\0') continue;
    int at = lineno;
    if (!fgets(input, sizeof input, fp) || !fgets(want, sizeof want, fp)) {
      fprintf(stderr, "%s:%d: truncated test\n", path, at);
      CHECK(0);
      break;
    }
    lineno += 2;
    chomp(input);
    chomp(want);
    unsigned flags = 0;
    if (strstr(mode, "keep")) flags |= FM_TOK_KEEP_STOPWORDS;
    if (strstr(mode, "nosplit")) flags |= FM_TOK_NO_SPLIT;
    fm_tokens_reset(&t);
    fm_rc rc = strncmp(mode, "mnemonic", 8) == 0
                   ? fm_tokenize_mnemonic(tk, input, strlen(input), &t, &err)
                   : fm_tokenize_text(tk, input, strlen(input), flags, &t, &err);
    fm_test_checks++;
    if (rc != FM_OK || strcmp(joined(&t, got, sizeof got), want) != 0) {
      fprintf(stderr, "%s:%d: %s \"%s\": got \"%s\" (%s), want \"%s\"\n", path, at,
              mode, input, rc ? err.msg : got, fm_rc_name(rc), want);
      fm_test_failures++;
    }
    ntests++;
  }
  fclose(fp);
  CHECK(ntests >= 30);
  fm_tokens_free(&t);
  fm_tokenizer_free(tk);
}

static void test_tokenize_edge(void) {
  fm_tokenizer *tk;
  fm_tokens t;
  fm_error err;
  fm_error_init(&err);
  CHECK(fm_tokenizer_new(&tk, &err) == FM_OK);
  fm_tokens_init(&t);

  /* Empty input. */
  CHECK(fm_tokenize_text(tk, "", 0, 0, &t, &err) == FM_OK && t.n == 0);
  CHECK(fm_tokenize_text(tk, NULL, 0, 0, &t, &err) == FM_OK && t.n == 0);
  CHECK(fm_tokenize_mnemonic(tk, "", 0, &t, &err) == FM_OK && t.n == 0);

  /* Invalid UTF-8: overlong, lone continuation, truncated sequence. */
  static const char *bad[] = {"abc \xc0\xaf", "\x80", "price \xe2\x82", "\xff"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    fm_error_init(&err);
    CHECK(fm_tokenize_text(tk, bad[i], strlen(bad[i]), 0, &t, &err) == FM_ERR_PARSE);
    CHECK(strstr(err.msg, "UTF-8") != NULL);
    CHECK(fm_tokenize_mnemonic(tk, bad[i], strlen(bad[i]), &t, &err) == FM_ERR_PARSE);
  }
  fm_error_init(&err);
  CHECK(fm_tokenize_text(tk, "abc \xc0\xaf", 6, 0, &t, &err) == FM_ERR_PARSE);
  CHECK(strstr(err.msg, "byte 4") != NULL);
  CHECK(t.n == 0);

  /* Tokens appended, not replaced; an embedded NUL is just a separator. */
  fm_tokens_reset(&t);
  CHECK(fm_tokenize_text(tk, "bid\0ask", 7, 0, &t, &err) == FM_OK);
  CHECK(fm_tokenize_mnemonic(tk, "PX_LAST", 7, &t, &err) == FM_OK);
  CHECK(t.n == 4);
  if (t.n == 4) {
    CHECK_STR(fm_tokens_get(&t, 0), "bid");
    CHECK_STR(fm_tokens_get(&t, 3), "last");
  }

  /* A huge input (8 MB of mixed prose and mnemonics) works. */
  {
    static const char chunk[] = "PX_LAST the last price, NetChange 1.5% über 52WK_HIGH. ";
    size_t n = (8u << 20) / (sizeof chunk - 1), len = n * (sizeof chunk - 1);
    char *big = malloc(len);
    CHECK(big != NULL);
    if (big) {
      for (size_t i = 0; i < n; i++) memcpy(big + i * (sizeof chunk - 1), chunk, sizeof chunk - 1);
      fm_tokens_reset(&t);
      double t0 = fm_now();
      CHECK(fm_tokenize_text(tk, big, len, 0, &t, &err) == FM_OK);
      fprintf(stderr, "  8 MB in one call: %.3f s, %zu tokens\n", fm_now() - t0, t.n);
      CHECK(t.n == n * 11); /* px last last price net change 1.5 pct über 52wk high */
      if (t.n > 11) CHECK_STR(fm_tokens_get(&t, t.n - 3), "über");
      free(big);
    }
  }
  fm_tokens_free(&t);
  fm_tokenizer_free(tk);
}

static void test_stopwords(void) {
  for (size_t i = 1; i < fm_stopword_count(); i++)
    CHECK(strcmp(fm_stopword_at(i - 1), fm_stopword_at(i)) < 0);
  CHECK(fm_stopword_at(fm_stopword_count()) == NULL);
  /* every word of the list is found (the length bound covers them all) */
  for (size_t i = 0; i < fm_stopword_count(); i++) CHECK(fm_is_stopword(fm_stopword_at(i)));
  static const char *stop[] = {"the", "of", "a", "an", "and", "or", "for", "in", "on",
                               "to", "is", "by", "with", "as", "at", "from", "this",
                               "that", "which", "be", "are", "it", "its"};
  for (size_t i = 0; i < sizeof stop / sizeof *stop; i++) CHECK(fm_is_stopword(stop[i]));
  static const char *domain[] = {"net", "high", "low",  "last", "open", "close", "ask",
                                 "bid", "per",  "over", "up",   "down", "no",    "other",
                                 "all", "",     "px",   "The",  "whethe", "whethers",
                                 "thereof", "zz", "ab", "yours"};
  for (size_t i = 0; i < sizeof domain / sizeof *domain; i++)
    CHECK(!fm_is_stopword(domain[i]));
  CHECK(!fm_is_stopword(NULL));
}

/* Write text to a temp file; returns its path (static buffer). */
static const char *write_temp(const char *text) {
  static char path[64];
  snprintf(path, sizeof path, "/tmp/fm_test_text_%ld.tsv", (long)getpid());
  FILE *fp = fopen(path, "w");
  if (!fp) return NULL;
  fputs(text, fp);
  fclose(fp);
  return path;
}

static void test_abbrev_table(void) {
  fm_abbrev *a;
  const char *k, *e;
  uint32_t s;
  CHECK(fm_abbrev_new(&a) == FM_OK);
  CHECK(fm_abbrev_add(a, "px", "price", 5) == FM_OK);
  CHECK(fm_abbrev_add(a, "chg", "change", 3) == FM_OK);
  CHECK(fm_abbrev_add(a, "bs", "balance sheet", 9) == FM_OK);
  CHECK(fm_abbrev_add(a, "", "x", 1) == FM_ERR_ARG);
  CHECK(fm_abbrev_add(a, "x", "", 1) == FM_ERR_ARG);
  CHECK(fm_abbrev_count(a) == 3);
  CHECK_STR(fm_abbrev_lookup(a, "px"), "price");
  CHECK(fm_abbrev_lookup(a, "price") == NULL);
  CHECK(fm_abbrev_add(a, "px", "prices", 7) == FM_OK); /* replace */
  CHECK(fm_abbrev_count(a) == 3);
  CHECK_STR(fm_abbrev_lookup(a, "px"), "prices");
  fm_abbrev_entry(a, 0, &k, &e, &s);
  CHECK_STR(k, "bs");
  fm_abbrev_entry(a, 1, &k, &e, &s);
  CHECK_STR(k, "chg");
  fm_abbrev_entry(a, 2, &k, &e, &s);
  CHECK_STR(k, "px");
  CHECK_STR(e, "prices");
  CHECK(s == 7);
  fm_abbrev_entry(a, 3, &k, &e, &s);
  CHECK(k == NULL && e == NULL && s == 0);

  /* Expansion. */
  fm_tokens in, out;
  char buf[256];
  fm_tokens_init(&in);
  fm_tokens_init(&out);
  fm_tokens_push(&in, "bs", 2);
  fm_tokens_push(&in, "chg", 3);
  fm_tokens_push(&in, "net", 3);
  CHECK(fm_abbrev_expand(a, &in, 0, &out) == FM_OK);
  CHECK_STR(joined(&out, buf, sizeof buf), "balance sheet change net");
  fm_tokens_reset(&out);
  CHECK(fm_abbrev_expand(a, &in, 1, &out) == FM_OK);
  CHECK_STR(joined(&out, buf, sizeof buf), "bs balance sheet chg change net");
  CHECK(fm_abbrev_expand(a, &in, 0, &in) == FM_ERR_ARG);
  fm_tokens_free(&in);
  fm_tokens_free(&out);
  fm_abbrev_free(a);
  fm_abbrev_free(NULL);
}

/* fm_token_canon as data: input, expected canonical form, why. */
static void test_token_canon(void) {
  static const struct { const char *in, *out, *why; } cases[] = {
      {"revenues", "revenue", "plural s"},
      {"liabilities", "liability", "ies -> y"},
      {"activities", "activity", "ies -> y"},
      {"taxes", "tax", "xes"},
      {"losses", "loss", "sses"},
      {"branches", "branch", "ches"},
      {"shares", "share", "plural s after e"},
      {"loss", "loss", "ss is no plural"},
      {"bonus", "bonus", "us is no plural"},
      {"basis", "basis", "is is no plural"},
      {"ties", "ties", "ies needs five letters"},
      {"eps", "eps", "short: a mnemonic part"},
      {"days", "day", "four letters"},
      {"1yr", "1y", "period: yr"},
      {"52wk", "52w", "period: wk"},
      {"3mo", "3m", "period: mo"},
      {"12mth", "12m", "period: mth"},
      {"1d", "1d", "already canonical"},
      {"2024", "2024", "a number"},
      {"10s", "10s", "digits first: not a word"},
      {"prix", "prix", "no s"},
      {"éts", "éts", "non-ASCII: left alone"},
      {"", "", "empty"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char buf[64];
    size_t n = strlen(cases[i].in);
    memcpy(buf, cases[i].in, n + 1);
    fm_token_canon(buf, &n);
    if (strcmp(buf, cases[i].out) != 0)
      fprintf(stderr, "  canon(%s) = %s, want %s (%s)\n", cases[i].in, buf, cases[i].out,
              cases[i].why);
    CHECK_STR(buf, cases[i].out);
    CHECK(n == strlen(buf));
  }
}

/* Compound splitting, once the table's words are indexed. */
static void test_abbrev_compounds(void) {
  fm_abbrev *a;
  CHECK(fm_abbrev_new(&a) == FM_OK);
  CHECK(fm_abbrev_add(a, "chg", "change", 3) == FM_OK);
  CHECK(fm_abbrev_add(a, "netchng", "net change", 3) == FM_OK);
  CHECK(fm_abbrev_add(a, "pe", "price earnings", 3) == FM_OK);
  CHECK(fm_abbrev_add(a, "rat", "ratio", 3) == FM_OK);
  CHECK(fm_abbrev_add(a, "id", "identifier", 3) == FM_OK);
  CHECK(fm_abbrev_add(a, "bas", "base", 3) == FM_OK);
  static const struct { const char *in, *before, *after; } cases[] = {
      /* token, expansion before indexing, after */
      {"netchg", "netchg", "net change"},        /* known word + abbreviation */
      {"peratio", "peratio", "price earnings ratio"}, /* abbreviation + word */
      {"netchng", "net change", "net change"},   /* has its own expansion */
      {"basis", "basis", "basis"},               /* "bas" + "is": tail too short */
      {"ratid", "ratid", "ratid"},               /* "rat" + "id": tail too short */
      {"chgx", "chgx", "chgx"},                  /* shorter than five letters */
      {"net2chg", "net2chg", "net2chg"},         /* not alphabetic */
      {"changeratio", "changeratio", "change ratio"},
      {"zzzzzz", "zzzzzz", "zzzzzz"},            /* nothing known */
  };
  char buf[256];
  fm_tokens in, out;
  fm_tokens_init(&in);
  fm_tokens_init(&out);
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 1) CHECK(fm_abbrev_index_words(a) == FM_OK);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
      fm_tokens_reset(&in);
      fm_tokens_reset(&out);
      fm_tokens_push(&in, cases[i].in, strlen(cases[i].in));
      CHECK(fm_abbrev_expand(a, &in, 0, &out) == FM_OK);
      CHECK_STR(joined(&out, buf, sizeof buf), pass ? cases[i].after : cases[i].before);
    }
  }
  /* keep_original keeps both parts */
  fm_tokens_reset(&in);
  fm_tokens_reset(&out);
  fm_tokens_push(&in, "netchg", 6);
  CHECK(fm_abbrev_expand(a, &in, 1, &out) == FM_OK);
  CHECK_STR(joined(&out, buf, sizeof buf), "net chg change");
  fm_tokens_free(&in);
  fm_tokens_free(&out);
  fm_abbrev_free(a);
}

/* Prose words stay whole: fm_abbrev_keep_words.  Each case: the texts
 * the table learns from, the minimum count, then a token and its expansion
 * afterwards. */
static void test_abbrev_keep_words(void) {
  static const struct {
    const char *texts[3];
    uint32_t min;
    const char *tok, *want, *why;
  } cases[] = {
      {{"Short term debt.", "short interest", NULL}, 2, "short", "short",
       "written as prose twice: kept whole"},
      {{"Short term debt.", NULL, NULL}, 2, "short", "shares ort", "once is not enough"},
      {{"SHORT TERM DEBT", "SHORT_INT", "SHORT"}, 1, "short", "shares ort",
       "capitals are how mnemonics write their parts"},
      {{"ShOrt", "shortfall; short2", "x_short"}, 1, "short", "shares ort",
       "mixed case, or glued to a digit or an underscore: no prose"},
      {{"PRICE NETCHG 1Y", "see NETCHG_1Y", NULL}, 1, "netchg", "net change",
       "a vendor compound, written in capitals, still splits"},
      {{"cashflow cashflow", NULL, NULL}, 1, "cashflow", "cash flow",
       "both parts are words: splitting only separates them"},
      {{"Primary primary", NULL, NULL}, 1, "primary", "primary",
       "\"prim\" + \"ary\" would rewrite the word"},
      {{"short short", NULL, NULL}, 0, "short", "shares ort", "min_count 0: off"},
      {{"h\xc3\xa9short short short", NULL, NULL}, 3, "short", "shares ort",
       "a word glued to UTF-8 letters is not a prose word"},
  };
  char buf[256];
  fm_tokens in, out;
  fm_tokens_init(&in);
  fm_tokens_init(&out);
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    fm_abbrev *a;
    CHECK(fm_abbrev_new(&a) == FM_OK);
    CHECK(fm_abbrev_add(a, "sh", "shares", 3) == FM_OK);
    CHECK(fm_abbrev_add(a, "oort", "ort", 3) == FM_OK); /* "ort": an expansion word */
    CHECK(fm_abbrev_add(a, "prim", "primary", 3) == FM_OK);
    CHECK(fm_abbrev_add(a, "ary", "array", 3) == FM_OK);
    CHECK(fm_abbrev_add(a, "chg", "change", 3) == FM_OK);
    CHECK(fm_abbrev_add(a, "nc", "net change", 3) == FM_OK);
    CHECK(fm_abbrev_add(a, "cf", "cash flow", 3) == FM_OK);
    size_t nt = 0, kept = 99;
    while (nt < 3 && cases[i].texts[nt]) nt++;
    /* before indexing it does nothing */
    CHECK(fm_abbrev_keep_words(a, cases[i].texts, nt, cases[i].min, &kept) == FM_OK);
    CHECK(kept == 0);
    CHECK(fm_abbrev_index_words(a) == FM_OK);
    CHECK(fm_abbrev_keep_words(a, cases[i].texts, nt, cases[i].min, &kept) == FM_OK);
    fm_tokens_reset(&in);
    fm_tokens_reset(&out);
    fm_tokens_push(&in, cases[i].tok, strlen(cases[i].tok));
    CHECK(fm_abbrev_expand(a, &in, 0, &out) == FM_OK);
    const char *got = joined(&out, buf, sizeof buf);
    if (strcmp(got, cases[i].want) != 0)
      fprintf(stderr, "  case %zu (%s): %s -> %s, want %s\n", i, cases[i].why, cases[i].tok,
              got, cases[i].want);
    CHECK_STR(got, cases[i].want);
    /* a kept word is an identity entry whose support is its count */
    if (!strcmp(cases[i].want, cases[i].tok))
      CHECK(kept == 1 && fm_abbrev_lookup(a, cases[i].tok) != NULL);
    else
      CHECK(kept == 0);
    fm_abbrev_free(a);
  }
  CHECK(fm_abbrev_keep_words(NULL, NULL, 0, 1, NULL) == FM_ERR_ARG);
  fm_tokens_free(&in);
  fm_tokens_free(&out);
}

static void test_abbrev_tsv(void) {
  fm_tokenizer *tk;
  fm_abbrev *a;
  fm_error err;
  const char *path;
  char want[128];
  fm_error_init(&err);
  CHECK(fm_tokenizer_new(&tk, &err) == FM_OK);

  /* The curated table loads and has the core entries. */
  CHECK(fm_abbrev_new(&a) == FM_OK);
  CHECK(fm_abbrev_load_tsv(a, tk, "data/abbreviations.tsv", &err) == FM_OK);
  if (err.rc) fprintf(stderr, "  %s\n", err.msg);
  CHECK(fm_abbrev_count(a) >= 150);
  CHECK_STR(fm_abbrev_lookup(a, "px"), "price");
  CHECK_STR(fm_abbrev_lookup(a, "chg"), "change");
  CHECK_STR(fm_abbrev_lookup(a, "bs"), "balance sheet");
  CHECK_STR(fm_abbrev_lookup(a, "eps"), "earnings per share");
  CHECK_STR(fm_abbrev_lookup(a, "netchng"), "net change");
  CHECK_STR(fm_abbrev_lookup(a, "is"), "is"); /* identity: never expanded */
  CHECK(fm_abbrev_lookup(a, "net") == NULL);
  fm_abbrev_free(a);

  /* Normalization of keys and expansions; comments, blank lines, CRLF. */
  CHECK(fm_abbrev_new(&a) == FM_OK);
  path = write_temp("# comment\n\nPX\tPrice\r\n52WK\tFifty-Two Week\nbs\tBalance  SHEET\n");
  CHECK(fm_abbrev_load_tsv(a, tk, path, &err) == FM_OK);
  CHECK_STR(fm_abbrev_lookup(a, "px"), "price");
  CHECK_STR(fm_abbrev_lookup(a, "52wk"), "fifty two week");
  CHECK_STR(fm_abbrev_lookup(a, "bs"), "balance sheet");
  fm_abbrev_free(a);

  /* Bad lines name path:line. */
  static const char *bad[] = {
      "px\tprice\nno tab here\n",          /* line 2: no tab */
      "px\tprice\nchg\tchange\textra\n",   /* line 2: two tabs */
      "px\tprice\nPX_LAST\tlast price\n",  /* line 2: two-token key */
      "px\tprice\nchg\t...\n",             /* line 2: empty expansion */
      "px\tprice\nPX\tprices\n",           /* line 2: duplicate */
      "px\tprice\nchg\tchange \xff\n",     /* line 2: bad UTF-8 */
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    CHECK(fm_abbrev_new(&a) == FM_OK);
    fm_error_init(&err);
    path = write_temp(bad[i]);
    CHECK(fm_abbrev_load_tsv(a, tk, path, &err) == FM_ERR_PARSE);
    snprintf(want, sizeof want, "%s:2:", path);
    CHECK(strstr(err.msg, want) != NULL);
    if (!strstr(err.msg, want)) fprintf(stderr, "  got: %s\n", err.msg);
    fm_abbrev_free(a);
  }
  unlink(path);
  CHECK(fm_abbrev_new(&a) == FM_OK);
  fm_error_init(&err);
  CHECK(fm_abbrev_load_tsv(a, tk, "tests/data/text/no-such-file.tsv", &err) == FM_ERR_IO);
  CHECK(strstr(err.msg, "no-such-file.tsv") != NULL);
  fm_abbrev_free(a);
  fm_tokenizer_free(tk);
}

static void test_mine(void) {
  static const char *const mn[] = {
      "NETCHNG_1", "NETCHNG_2", "TRDPRC_1",  "TRDPRC_2",  "PCTCHG_3M", "PCTCHG_6M",
      "BS_SH_OUT", "SH_OUTSTD", "EQY_SH_OUTSTD", "HST_CLOSE", "HST_CLOSE2", "CHNG_X",
      "CHNG_Y",    "ACVOL_1",   "PX_LAST",   "PX_OPEN",   "A_B",       "A_C",
      "ASSET_X",   "ASSET_Y",   "ASSET_Z"};
  static const char *const nm[] = {
      "NET CHANGE", "NET CHANGE 2", "TRADE PRICE", "TRADE PRICE 2", "PERCENT CHANGE 3M",
      "PERCENT CHANGE 6M", "balance sheet shares outstanding", "shares outstanding",
      "equity shares outstanding", "historical close", "historical close 2",
      "change x", "change y", "accumulated volume", "Last Price", "Open Price",
      "apple b", "apple c", "assets x", "assets y", "assets z"};
  size_t n = sizeof mn / sizeof *mn;
  fm_tokenizer *tk;
  fm_abbrev *a;
  fm_error err;
  uint32_t s;
  fm_error_init(&err);
  CHECK(fm_tokenizer_new(&tk, &err) == FM_OK);

  CHECK(fm_abbrev_new(&a) == FM_OK);
  CHECK(fm_abbrev_add(a, "px", "pixel", FM_ABBREV_CURATED_SUPPORT) == FM_OK);
  CHECK(fm_abbrev_mine(a, tk, mn, nm, n, 2, &err) == FM_OK);
  CHECK_STR(fm_abbrev_lookup(a, "netchng"), "net change");
  CHECK_STR(fm_abbrev_lookup(a, "trdprc"), "trade price");
  CHECK_STR(fm_abbrev_lookup(a, "pctchg"), "percent change");
  CHECK_STR(fm_abbrev_lookup(a, "outstd"), "outstanding");
  CHECK_STR(fm_abbrev_lookup(a, "hst"), "historical");
  CHECK_STR(fm_abbrev_lookup(a, "chng"), "change");
  CHECK_STR(fm_abbrev_lookup(a, "px"), "pixel");      /* curated wins */
  CHECK(fm_abbrev_lookup(a, "acvol") == NULL);         /* support 1 < 2 */
  CHECK(fm_abbrev_lookup(a, "a") == NULL);             /* one letter */
  CHECK(fm_abbrev_lookup(a, "asset") == NULL);         /* only an inflection */
  CHECK(fm_abbrev_lookup(a, "sh") == NULL);            /* 2 letters need 4 */
  for (size_t i = 0; i < fm_abbrev_count(a); i++) {
    const char *k, *e;
    fm_abbrev_entry(a, i, &k, &e, &s);
    if (i) {
      const char *pk;
      fm_abbrev_entry(a, i - 1, &pk, NULL, NULL);
      CHECK(strcmp(pk, k) < 0);
    }
  }
  {
    const char *k, *e;
    size_t i;
    for (i = 0; i < fm_abbrev_count(a); i++) {
      fm_abbrev_entry(a, i, &k, &e, &s);
      if (strcmp(k, "netchng") == 0) break;
    }
    CHECK(i < fm_abbrev_count(a) && s == 2);
  }
  size_t count2 = fm_abbrev_count(a);
  fm_abbrev_free(a);

  /* min_support 1 admits more; the existing entry is still not replaced. */
  CHECK(fm_abbrev_new(&a) == FM_OK);
  CHECK(fm_abbrev_add(a, "hst", "history", FM_ABBREV_CURATED_SUPPORT) == FM_OK);
  CHECK(fm_abbrev_mine(a, tk, mn, nm, n, 1, &err) == FM_OK);
  CHECK_STR(fm_abbrev_lookup(a, "acvol"), "accumulated volume");
  CHECK_STR(fm_abbrev_lookup(a, "hst"), "history");
  CHECK(fm_abbrev_count(a) > count2);
  fm_abbrev_free(a);

  /* Bad UTF-8 in a pair is reported with the pair. */
  {
    const char *bm[] = {"PX\xff"}, *bn[] = {"price"};
    CHECK(fm_abbrev_new(&a) == FM_OK);
    fm_error_init(&err);
    CHECK(fm_abbrev_mine(a, tk, bm, bn, 1, 1, &err) == FM_ERR_PARSE);
    CHECK(strstr(err.msg, "pair 0") != NULL);
    fm_abbrev_free(a);
  }
  fm_tokenizer_free(tk);
}

/* Every allocation failure during tokenizer creation, tokenization, TSV
 * loading and mining fails cleanly (ASan checks for leaks). */
static void test_faults(void) {
  static const char *text = "PX_LAST net change of the ﬁnance Straße 52WK_HIGH 1.5% café";
  static const char *const mn[] = {"NETCHNG_1", "NETCHNG_2", "TRDPRC_1", "TRDPRC_2"};
  static const char *const nm[] = {"NET CHANGE", "NET CHANGE 2", "TRADE PRICE", "TRADE PRICE 2"};
  int ok_seen = 0, fail_seen = 0;
  char tsv[64];
  snprintf(tsv, sizeof tsv, "%s", write_temp("px\tprice\nchg\tchange\nbs\tbalance sheet\n"));
  for (long k = 1; k < 5000 && !ok_seen; k++) {
    fm_tokenizer *tk = NULL;
    fm_abbrev *a = NULL;
    fm_tokens t;
    fm_error err;
    fm_rc rc;
    fm_error_init(&err);
    fm_tokens_init(&t);
    fm_fault_malloc_after(k);
    rc = fm_tokenizer_new(&tk, &err);
    if (rc == FM_OK) rc = fm_tokenize_text(tk, text, strlen(text), 0, &t, &err);
    if (rc == FM_OK) rc = fm_tokenize_mnemonic(tk, "EQY_SH_OUT", 10, &t, &err);
    if (rc == FM_OK) rc = fm_abbrev_new(&a);
    if (rc == FM_OK) rc = fm_abbrev_load_tsv(a, tk, tsv, &err);
    if (rc == FM_OK) rc = fm_abbrev_mine(a, tk, mn, nm, 4, 2, &err);
    fm_fault_malloc_after(0);
    if (rc == FM_OK) {
      ok_seen = 1;
      CHECK(t.n == 14);
      CHECK_STR(fm_abbrev_lookup(a, "trdprc"), "trade price");
    } else {
      fail_seen++;
      CHECK(rc == FM_ERR_NOMEM);
      if (rc != FM_ERR_NOMEM) fprintf(stderr, "  k=%ld: %s %s\n", k, fm_rc_name(rc), err.msg);
    }
    fm_abbrev_free(a);
    fm_tokens_free(&t);
    fm_tokenizer_free(tk);
  }
  unlink(tsv);
  fprintf(stderr, "  %d injected failures, then success\n", fail_seen);
  CHECK(ok_seen);
  CHECK(fail_seen > 10);
}

/* ---- real vendor data (skipped without the shared folder) ------------- */

/* Parse RDMFieldDictionary: "ACRONYM "DDE NAME" ..." lines. Pairs are
 * pointers into data (modified in place). */
static size_t rdm_pairs(char *data, const char **mn, const char **nm, size_t cap) {
  size_t n = 0;
  for (char *p = data; *p && n < cap;) {
    char *nl = strchr(p, '\n');
    if (nl) *nl = '\0';
    if (*p != '!' && *p) {
      char *sp = strpbrk(p, " \t"), *q1 = sp ? strchr(sp, '"') : NULL;
      char *q2 = q1 ? strchr(q1 + 1, '"') : NULL;
      if (q2) {
        *sp = '\0';
        *q2 = '\0';
        mn[n] = p;
        nm[n] = q1 + 1;
        n++;
      }
    }
    if (!nl) break;
    p = nl + 1;
  }
  return n;
}

static void test_real_data(void) {
  const char *shared = fm_test_shared();
  char path[4096];
  char *data = NULL;
  size_t len;
  fm_error err;
  fm_tokenizer *tk;
  fm_tokens t;
  if (!shared) {
    fprintf(stderr, "  (shared data not found: skipped)\n");
    return;
  }
  fm_error_init(&err);
  CHECK(fm_tokenizer_new(&tk, &err) == FM_OK);
  fm_tokens_init(&t);

  /* Throughput on the BBGsymbols file, tokenized line by line. */
  snprintf(path, sizeof path, "%s/data/vendor/bautheac-BBGsymbols/fields.from_rda.csv", shared);
  if (fm_read_file(path, &data, &len, &err) == FM_OK) {
    size_t lines = 0, toks = 0;
    double t0 = fm_now();
    for (int rep = 0; rep < 4; rep++)
      for (char *p = data; p < data + len;) {
        char *nl = memchr(p, '\n', (size_t)(data + len - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(data + len - p);
        fm_tokens_reset(&t);
        CHECK(fm_tokenize_text(tk, p, l, 0, &t, &err) == FM_OK);
        lines++;
        toks += t.n;
        p += l + 1;
      }
    double dt = fm_now() - t0;
    fprintf(stderr, "  BBGsymbols x4: %zu lines, %zu tokens, %.1f MB/s\n", lines, toks,
            4.0 * (double)len / dt / 1e6);
    fm_free(data);
    data = NULL;
  }

  /* Mining from the RDM dictionary produces a useful table. */
  snprintf(path, sizeof path, "%s/data/vendor/lseg-Example.EMA.Java.Kotlin/RDMFieldDictionary",
           shared);
  if (fm_read_file(path, &data, &len, &err) == FM_OK) {
    static const char *mn[40000], *nm[40000];
    size_t n = rdm_pairs(data, mn, nm, 40000);
    fm_abbrev *a;
    CHECK(n > 5000);
    CHECK(fm_abbrev_new(&a) == FM_OK);
    CHECK(fm_abbrev_load_tsv(a, tk, "data/abbreviations.tsv", &err) == FM_OK);
    size_t before = fm_abbrev_count(a);
    CHECK(fm_abbrev_mine(a, tk, mn, nm, n, 2, &err) == FM_OK);
    fprintf(stderr, "  RDM: %zu pairs, %zu mined entries\n", n, fm_abbrev_count(a) - before);
    CHECK(fm_abbrev_count(a) > before + 100);
    CHECK_STR(fm_abbrev_lookup(a, "px"), "price"); /* curated kept */
    fm_abbrev_free(a);
    fm_free(data);
  }
  fm_tokens_free(&t);
  fm_tokenizer_free(tk);
}

int main(void) {
  FM_RUN(test_tokenize_file);
  FM_RUN(test_tokenize_edge);
  FM_RUN(test_stopwords);
  FM_RUN(test_token_canon);
  FM_RUN(test_abbrev_compounds);
  FM_RUN(test_abbrev_keep_words);
  FM_RUN(test_abbrev_table);
  FM_RUN(test_abbrev_tsv);
  FM_RUN(test_mine);
  FM_RUN(test_faults);
  FM_RUN(test_real_data);
  FM_TEST_EXIT();
}
