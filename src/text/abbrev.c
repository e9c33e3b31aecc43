/* abbrev.c: the abbreviation table (abbr -> expansion), TSV loading and
 * token expansion.
 *
 * Storage: an fm_strmap maps the abbreviation to an entry index (insertion
 * order); exp[] and support[] are indexed by it; order[] lists the entry
 * indices sorted by abbreviation (kept sorted on insert, so enumeration is
 * deterministic and needs no lazy state). */
#include "fm_text.h"

#include <string.h>

struct fm_abbrev {
  fm_strmap map; /* abbr -> entry index; owns the abbreviation strings */
  char **exp;    /* owned expansions */
  uint32_t *support;
  size_t cap;
  uint32_t *order; /* entry indices sorted by abbreviation */
  size_t ordercap;
  fm_strmap words; /* words of all expansions (fm_abbrev_index_words) */
  int indexed;
};

fm_rc fm_abbrev_new(fm_abbrev **out) {
  fm_abbrev *a;
  *out = NULL;
  a = fm_calloc(1, sizeof *a);
  if (!a) return FM_ERR_NOMEM;
  fm_strmap_init(&a->map);
  fm_strmap_init(&a->words);
  *out = a;
  return FM_OK;
}

void fm_abbrev_free(fm_abbrev *a) {
  if (!a) return;
  for (size_t i = 0; i < fm_strmap_count(&a->map); i++) fm_free(a->exp[i]);
  fm_free(a->exp);
  fm_free(a->support);
  fm_free(a->order);
  fm_strmap_free(&a->map);
  fm_strmap_free(&a->words);
  fm_free(a);
}

static const char *key_at(const fm_abbrev *a, uint32_t idx) {
  size_t len;
  return fm_strmap_key(&a->map, idx, &len);
}

fm_rc fm_abbrev_add(fm_abbrev *a, const char *abbr, const char *expansion,
                    uint32_t support) {
  size_t n, klen, lo, hi;
  uint32_t idx;
  char *dup;
  int inserted;
  if (!a || !abbr || !*abbr || !expansion || !*expansion) return FM_ERR_ARG;
  klen = strlen(abbr);
  if (fm_strmap_get(&a->map, abbr, klen, &idx)) {
    if (!(dup = fm_strdup(expansion))) return FM_ERR_NOMEM;
    fm_free(a->exp[idx]);
    a->exp[idx] = dup;
    a->support[idx] = support;
    return FM_OK;
  }
  /* Grow everything first so that a failure leaves the table unchanged. */
  n = fm_strmap_count(&a->map);
  {
    size_t cap = a->cap;
    if (fm_grow((void **)&a->exp, &cap, n + 1, sizeof *a->exp)) return FM_ERR_NOMEM;
    cap = a->cap;
    if (fm_grow((void **)&a->support, &cap, n + 1, sizeof *a->support))
      return FM_ERR_NOMEM;
    a->cap = cap;
  }
  if (fm_grow((void **)&a->order, &a->ordercap, n + 1, sizeof *a->order))
    return FM_ERR_NOMEM;
  if (!(dup = fm_strdup(expansion))) return FM_ERR_NOMEM;
  if (fm_strmap_put(&a->map, abbr, klen, (uint32_t)n, &idx, &inserted)) {
    fm_free(dup);
    return FM_ERR_NOMEM;
  }
  a->exp[idx] = dup;
  a->support[idx] = support;
  /* Binary search the insertion point in order[]. */
  lo = 0;
  hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (strcmp(key_at(a, a->order[mid]), abbr) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  memmove(a->order + lo + 1, a->order + lo, (n - lo) * sizeof *a->order);
  a->order[lo] = idx;
  return FM_OK;
}

/* Expansion of s[0..n), or NULL (borrowed). */
static const char *exp_of(const fm_abbrev *a, const char *s, size_t n) {
  uint32_t idx;
  return fm_strmap_get(&a->map, s, n, &idx) ? a->exp[idx] : NULL;
}

const char *fm_abbrev_lookup(const fm_abbrev *a, const char *abbr) {
  if (!a || !abbr) return NULL;
  return exp_of(a, abbr, strlen(abbr));
}

size_t fm_abbrev_count(const fm_abbrev *a) { return a ? fm_strmap_count(&a->map) : 0; }

void fm_abbrev_entry(const fm_abbrev *a, size_t i, const char **abbr,
                     const char **expansion, uint32_t *support) {
  uint32_t idx;
  if (!a || i >= fm_strmap_count(&a->map)) {
    if (abbr) *abbr = NULL;
    if (expansion) *expansion = NULL;
    if (support) *support = 0;
    return;
  }
  idx = a->order[i];
  if (abbr) *abbr = key_at(a, idx);
  if (expansion) *expansion = a->exp[idx];
  if (support) *support = a->support[idx];
}

/* ---- TSV ---------------------------------------------------------------- */

/* A line "abbr<TAB>abbr" (expanding to itself) is allowed: it expands to
 * nothing new, and it keeps fm_abbrev_mine from mining a meaning for an
 * ambiguous part. */

/* Normalize s[0..len) with tk into *out as space-joined tokens. */
static fm_rc normalize_field(fm_tokenizer *tk, const char *s, size_t len,
                             unsigned flags, fm_tokens *toks, fm_buf *out,
                             fm_error *err) {
  fm_rc rc;
  fm_tokens_reset(toks);
  fm_buf_reset(out);
  if ((rc = fm_tokenize_text(tk, s, len, flags | FM_TOK_KEEP_STOPWORDS, toks, err)))
    return rc;
  for (size_t i = 0; i < toks->n; i++) {
    if (i && fm_buf_putc(out, ' ')) return FM_ERR_NOMEM;
    if (fm_buf_puts(out, fm_tokens_get(toks, i))) return FM_ERR_NOMEM;
  }
  return FM_OK;
}

fm_rc fm_abbrev_load_tsv(fm_abbrev *a, fm_tokenizer *tk, const char *path,
                         fm_error *err) {
  char *data = NULL;
  size_t len, pos = 0, lineno = 0;
  fm_tokens toks;
  fm_buf key, exp;
  fm_strmap seen; /* abbreviation -> line, to reject duplicates in a file */
  fm_rc rc = FM_OK;
  if (!a || !tk || !path) return fm_error_set(err, FM_ERR_ARG, "fm_abbrev_load_tsv: NULL argument");
  if ((rc = fm_read_file(path, &data, &len, err))) return rc;
  fm_tokens_init(&toks);
  fm_buf_init(&key);
  fm_buf_init(&exp);
  fm_strmap_init(&seen);
  while (pos < len) {
    const char *line = data + pos, *nl = memchr(line, '\n', len - pos);
    size_t llen = nl ? (size_t)(nl - line) : len - pos;
    const char *tab, *p;
    uint32_t first;
    int inserted;
    pos += llen + (nl ? 1 : 0);
    lineno++;
    if (llen && line[llen - 1] == '\r') llen--;
    for (p = line; p < line + llen && (*p == ' ' || *p == '\t'); p++) {
    }
    if (p == line + llen || *p == '#') continue; /* blank or comment */
    /* The tokenizer takes a NUL for a word break ("pr\0ice" -> "pr ice"):
     * not text, refuse it as the importers do. */
    if (memchr(line, '\0', llen)) {
      rc = fm_error_set(err, FM_ERR_PARSE, "%s:%zu: NUL byte in text", path, lineno);
      goto out;
    }
    tab = memchr(line, '\t', llen);
    if (!tab || memchr(tab + 1, '\t', llen - (size_t)(tab + 1 - line))) {
      rc = fm_error_set(err, FM_ERR_PARSE, "%s:%zu: expected abbreviation<TAB>expansion",
                        path, lineno);
      goto out;
    }
    /* The key must be what the tokenizer itself produces, i.e. one part:
     * "52WK" is fine, "PX_LAST" or "p/e" are not. */
    if ((rc = normalize_field(tk, line, (size_t)(tab - line), 0, &toks, &key, err)))
      goto field_error;
    if (toks.n != 1) {
      rc = fm_error_set(err, FM_ERR_PARSE,
                        "%s:%zu: abbreviation must be exactly one word, got %zu",
                        path, lineno, toks.n);
      goto out;
    }
    if ((rc = normalize_field(tk, tab + 1, llen - (size_t)(tab + 1 - line), 0, &toks,
                              &exp, err)))
      goto field_error;
    if (toks.n == 0) {
      rc = fm_error_set(err, FM_ERR_PARSE, "%s:%zu: empty expansion for '%s'", path,
                        lineno, key.buf);
      goto out;
    }
    if (fm_strmap_put(&seen, key.buf, key.len, (uint32_t)lineno, &first, &inserted)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "%s:%zu: out of memory", path, lineno);
      goto out;
    }
    if (!inserted) {
      rc = fm_error_set(err, FM_ERR_PARSE,
                        "%s:%zu: duplicate abbreviation '%s' (first at line %u)", path,
                        lineno, key.buf, first);
      goto out;
    }
    if (fm_abbrev_add(a, key.buf, exp.buf, FM_ABBREV_CURATED_SUPPORT)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "%s:%zu: out of memory", path, lineno);
      goto out;
    }
    continue;
  field_error:
    if (rc == FM_ERR_NOMEM)
      fm_error_set(err, rc, "%s:%zu: out of memory", path, lineno);
    else
      fm_error_prefix(err, "%s:%zu", path, lineno);
    goto out;
  }
out:
  fm_strmap_free(&seen);
  fm_buf_free(&key);
  fm_buf_free(&exp);
  fm_tokens_free(&toks);
  fm_free(data);
  return rc;
}

/* ---- expansion ---------------------------------------------------------- */

/* The word of an expansion at *e (words are separated by single spaces):
 * its length; *e moves past it and its space. */
static size_t next_word(const char **e) {
  const char *sp = strchr(*e, ' ');
  size_t l = sp ? (size_t)(sp - *e) : strlen(*e);
  *e += l + (sp ? 1 : 0);
  return l;
}

fm_rc fm_abbrev_index_words(fm_abbrev *a) {
  fm_strmap_free(&a->words);
  fm_strmap_init(&a->words);
  a->indexed = 1;
  for (size_t i = 0; i < fm_strmap_count(&a->map); i++)
    for (const char *e = a->exp[i]; *e;) {
      const char *w = e;
      size_t l = next_word(&e);
      if (l && fm_strmap_put(&a->words, w, l, 0, NULL, NULL)) {
        a->indexed = 0;
        return FM_ERR_NOMEM;
      }
    }
  return FM_OK;
}

/* A part of a compound: an abbreviation or a word of some expansion. */
static int known_part(const fm_abbrev *a, const char *s, size_t n) {
  return exp_of(a, s, n) || fm_strmap_get(&a->words, s, n, NULL);
}

/* Split an alphabetic token of n bytes that has no expansion into two known
 * parts ("netchg" -> "net" "chg", "peratio" -> "pe" "ratio"), the second of
 * three letters or more (two-letter tails such as "is" or "id" split real
 * words: "basis", "consid"), preferring the longest first part.  Returns the
 * length of the first part, or 0.  A token that is itself a word of some
 * expansion is split too: mined expansions keep the vendor's own
 * compounds ("bnc" -> "bid netchg"). */
static size_t split_compound(const fm_abbrev *a, const char *tok, size_t n) {
  if (!a->indexed || n < 5) return 0;
  for (size_t i = 0; i < n; i++)
    if (tok[i] < 'a' || tok[i] > 'z') return 0;
  for (size_t l = n - 3; l >= 2; l--)
    if (known_part(a, tok, l) && known_part(a, tok + l, n - l)) return l;
  return 0;
}

/* Append tok[0..len) expanded by e (its expansion, or NULL) to out. */
static fm_rc expand_one(const char *tok, size_t len, const char *e, int keep_original,
                        fm_tokens *out) {
  if (e && strlen(e) == len && memcmp(e, tok, len) == 0) e = NULL; /* identity */
  if (!e || keep_original)
    if (fm_tokens_push(out, tok, len)) return FM_ERR_NOMEM;
  while (e && *e) {
    const char *w = e;
    size_t l = next_word(&e);
    if (l && fm_tokens_push(out, w, l)) return FM_ERR_NOMEM;
  }
  return FM_OK;
}

fm_rc fm_abbrev_expand(const fm_abbrev *a, const fm_tokens *in, int keep_original,
                       fm_tokens *out) {
  if (!a || !in || !out || in == out) return FM_ERR_ARG;
  for (size_t i = 0; i < in->n; i++) {
    const char *tok = fm_tokens_get(in, i);
    size_t n = strlen(tok);
    const char *e = exp_of(a, tok, n);
    size_t l = e ? 0 : split_compound(a, tok, n);
    fm_rc rc = l ? expand_one(tok, l, exp_of(a, tok, l), keep_original, out)
                 : expand_one(tok, n, e, keep_original, out);
    if (!rc && l) rc = expand_one(tok + l, n - l, exp_of(a, tok + l, n - l), keep_original, out);
    if (rc) return rc;
  }
  return FM_OK;
}

/* ---- prose words are not compounds ------------------------------------- */

/* Is s[0..n) written as a prose word: ASCII letters, all lower case, or one
 * capital then lower case ("short", "Short"; not "SHORT", which is how
 * mnemonics and RDM long names write their parts, nor "short2")? */
static int prose_case(const char *s, size_t n) {
  for (size_t i = 1; i < n; i++)
    if (s[i] < 'a' || s[i] > 'z') return 0;
  return (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z');
}

static int word_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '_' || c >= 0x80;
}

/* Does expansion rewrite the part s[0..n): an abbreviation whose expansion
 * is not the part itself ("sh" -> "shares")? */
static int rewrites(const fm_abbrev *a, const char *s, size_t n) {
  const char *e = exp_of(a, s, n);
  return e && !(strlen(e) == n && memcmp(e, s, n) == 0);
}

fm_rc fm_abbrev_keep_words(fm_abbrev *a, const char *const *texts, size_t n,
                           uint32_t min_count, size_t *nkept) {
  if (nkept) *nkept = 0;
  if (!a || (n && !texts)) return FM_ERR_ARG;
  if (!a->indexed || min_count == 0) return FM_OK;
  /* count, per candidate word, its prose occurrences; a word is a maximal
   * run of ASCII letters between bytes that cannot continue a token */
  fm_strmap seen;
  fm_strmap_init(&seen);
  uint32_t *count = NULL;
  size_t cap = 0;
  fm_rc rc = FM_OK;
  char low[64];
  for (size_t t = 0; t < n && rc == FM_OK; t++) {
    const char *s = texts[t];
    if (!s) continue;
    for (size_t i = 0; s[i];) {
      if (!word_byte((unsigned char)s[i])) {
        i++;
        continue;
      }
      /* a run of token bytes is a prose word only if it is all letters in
       * prose case: digits, '_' or UTF-8 glued on make it something else */
      size_t b = i;
      while (word_byte((unsigned char)s[i])) i++;
      size_t l = i - b;
      if (l < 5 || l >= sizeof low || !prose_case(s + b, l)) continue;
      for (size_t j = 0; j < l; j++) low[j] = (char)(s[b + j] | 0x20);
      /* every distinct word is judged once: count[id] is its prose count,
       * or UINT32_MAX when it is no candidate */
      uint32_t id;
      int ins;
      if (fm_strmap_put(&seen, low, l, (uint32_t)fm_strmap_count(&seen), &id, &ins) ||
          (ins && fm_grow((void **)&count, &cap, fm_strmap_count(&seen), sizeof *count))) {
        rc = FM_ERR_NOMEM;
        break;
      }
      if (ins) {
        size_t h = exp_of(a, low, l) ? 0 : split_compound(a, low, l);
        /* "cashflow" -> "cash" "flow" only separates words: no candidate */
        count[id] = h && (rewrites(a, low, h) || rewrites(a, low + h, l - h)) ? 0 : UINT32_MAX;
      }
      if (count[id] != UINT32_MAX) count[id]++;
    }
  }
  /* identity entries, in first-seen order (the table keeps its own sorted
   * order); every word was judged against the table as it was before any
   * of them, and from now on each is also a known part of compounds */
  size_t kept = 0;
  for (size_t i = 0; rc == FM_OK && i < fm_strmap_count(&seen); i++) {
    if (count[i] == UINT32_MAX || count[i] < min_count) continue;
    size_t l;
    const char *w = fm_strmap_key(&seen, (uint32_t)i, &l);
    char *dup = fm_strndup(w, l);
    if (!dup) rc = FM_ERR_NOMEM;
    else rc = fm_abbrev_add(a, dup, dup, count[i]);
    fm_free(dup);
    if (rc == FM_OK) kept++;
  }
  fm_free(count);
  fm_strmap_free(&seen);
  if (rc == FM_OK && kept) rc = fm_abbrev_index_words(a);
  if (nkept) *nkept = kept;
  return rc;
}
