/* mine.c: mining abbreviations from (mnemonic, long name) pairs.
 *
 * For each pair the mnemonic is split into parts (fm_tokenize_mnemonic) and
 * the name into words (fm_tokenize_text, stop words kept).  Parts are
 * aligned to words left to right (monotone, skipping at most MAX_SKIP
 * unmatched words before each part):
 *   - a part equal to a word consumes it and yields nothing;
 *   - an alphabetic part that abbreviates 1..MAX_SPAN consecutive
 *     alphabetic words yields part -> "word ..." (see abbreviates());
 *   - a part that aligns to nothing is skipped.
 * Each mapping counts once per pair.  Afterwards, for each part (in sorted
 * order) the most frequent expansion (ties: the smallest string) is added if
 * it has enough support and the part is not already in the table.
 *
 * Guards against junk: parts of one letter are never mined, parts of two
 * letters need 2 * min_support, a mapping must account for at least half of
 * its part's attestations, stop words are never keys, an expansion may not
 * start or end with a stop word, and a one-word expansion must be at least
 * two letters longer than the part and not just an inflection of it
 * ("asset" -> "assets").  Expansion words that are already in the table
 * are expanded once, so "askbmk" / "ASK BMK" becomes "ask benchmark". */
#include "fm_text.h"

#include <stdlib.h>
#include <string.h>

#define MAX_SKIP 2 /* name words that may be skipped before a part */
#define MAX_SPAN 3 /* words one part may cover ("trdprc" -> 2) */
#define SEP '\x01' /* between part and expansion in count keys */

static int is_alpha_ascii(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (*s < 'a' || *s > 'z') return 0;
  return 1;
}

/* Is p[0..n) an ordered subsequence of word that starts with its first
 * letter? */
static int subseq_of(const char *p, size_t n, const char *word) {
  size_t i = 0;
  if (n == 0 || p[0] != word[0]) return 0;
  for (const char *w = word; *w && i < n; w++)
    if (*w == p[i]) i++;
  return i == n;
}

/* Does p[0..n) split into k pieces, piece i abbreviating words[i]
 * (subseq_of)? */
static int abbreviates(const char *p, size_t n, const char *const *words, size_t k) {
  if (k == 0) return n == 0;
  if (n < k) return 0;
  for (size_t e = n - (k - 1); e >= 1; e--) {
    if (subseq_of(p, e, words[0]) && abbreviates(p + e, n - e, words + 1, k - 1))
      return 1;
  }
  return 0;
}

struct count {
  const char *key; /* "part\x01expansion", borrowed from the count map */
  uint32_t n;
};

static int cmp_count(const void *a, const void *b) {
  return strcmp(((const struct count *)a)->key, ((const struct count *)b)->key);
}

/* Align one pair and record its mappings (once each) in counts. */
static fm_rc align_pair(const fm_tokens *parts, const fm_tokens *words, fm_strmap *counts,
                        fm_tokens *seen, fm_buf *key) {
  size_t j = 0;
  fm_tokens_reset(seen);
  for (size_t pi = 0; pi < parts->n; pi++) {
    const char *p = fm_tokens_get(parts, pi);
    size_t plen = strlen(p);
    int alpha = is_alpha_ascii(p);
    for (size_t jj = j; jj < words->n && jj <= j + MAX_SKIP; jj++) {
      const char *w = fm_tokens_get(words, jj);
      size_t k, found = 0;
      if (strcmp(p, w) == 0) {
        j = jj + 1;
        break;
      }
      if (!alpha) continue;
      for (k = 1; k <= MAX_SPAN && jj + k <= words->n && !found; k++) {
        const char *span[MAX_SPAN];
        size_t t;
        for (t = 0; t < k; t++) {
          span[t] = fm_tokens_get(words, jj + t);
          if (!is_alpha_ascii(span[t])) break;
        }
        if (t < k) break; /* a non-alphabetic word ends the span */
        if (abbreviates(p, plen, span, k)) found = k;
      }
      if (!found) continue;
      fm_buf_reset(key);
      if (fm_buf_puts(key, p) || fm_buf_putc(key, SEP)) return FM_ERR_NOMEM;
      for (size_t t = 0; t < found; t++) {
        if (t && fm_buf_putc(key, ' ')) return FM_ERR_NOMEM;
        if (fm_buf_puts(key, fm_tokens_get(words, jj + t))) return FM_ERR_NOMEM;
      }
      j = jj + found;
      {
        int dup = 0;
        uint32_t c = 0;
        for (size_t s = 0; s < seen->n && !dup; s++)
          dup = strcmp(fm_tokens_get(seen, s), key->buf) == 0;
        if (dup) break;
        if (fm_tokens_push(seen, key->buf, key->len)) return FM_ERR_NOMEM;
        fm_strmap_get(counts, key->buf, key->len, &c);
        if (fm_strmap_set(counts, key->buf, key->len, c + 1)) return FM_ERR_NOMEM;
      }
      break;
    }
  }
  return FM_OK;
}

/* Does the space-separated expansion start or end with a stop word? */
static int stop_at_edge(const char *e) {
  char w[64];
  const char *sp = strchr(e, ' '), *last = strrchr(e, ' ');
  size_t l = sp ? (size_t)(sp - e) : strlen(e);
  if (l < sizeof w) {
    memcpy(w, e, l);
    w[l] = '\0';
    if (fm_is_stopword(w)) return 1;
  }
  return last && fm_is_stopword(last + 1);
}

/* Is s a word plus an inflection ("assets", "cleared", "breaker")? */
static int inflection_of(const char *part, size_t plen, const char *word) {
  static const char *const suffixes[] = {"s",   "es",  "ed",   "d",   "er",   "ers",
                                         "ing", "ings", "est", "ly",  "ance", "ment",
                                         "ments", "ies", "ion", "ions", "al", "e"};
  if (strncmp(part, word, plen) != 0) return 0;
  for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++)
    if (strcmp(word + plen, suffixes[i]) == 0) return 1;
  return 0;
}

/* The junk filters (see the file comment): key is "part\x01expansion". */
static int acceptable(const fm_abbrev *a, const char *key, size_t plen, uint32_t n,
                      uint64_t total, uint32_t min_support) {
  const char *exp = key + plen + 1;
  char part[128];
  uint64_t need = plen == 2 ? 2 * (uint64_t)min_support : min_support;
  if (plen < 2 || plen >= sizeof part) return 0;
  memcpy(part, key, plen);
  part[plen] = '\0';
  if (n < need || 2 * (uint64_t)n < total) return 0;
  if (fm_is_stopword(part) || stop_at_edge(exp) || fm_abbrev_lookup(a, part)) return 0;
  if (!strchr(exp, ' ')) {
    /* One word: it must be clearly longer ("ac" -> "acc" and "acvl" ->
     * "acvol" are abbreviations of abbreviations) and not merely an
     * inflected form of the part ("asset" -> "assets"). */
    if (strlen(exp) < plen + 2 || inflection_of(part, plen, exp)) return 0;
  }
  return 1;
}

/* Expansion words that are themselves in the table are replaced by their
 * expansions, once ("ask bmk" -> "ask benchmark"). Appends to out. */
static fm_rc rewrite(const fm_abbrev *a, const char *exp, fm_buf *out) {
  char w[128];
  while (*exp) {
    const char *sp = strchr(exp, ' ');
    size_t l = sp ? (size_t)(sp - exp) : strlen(exp);
    const char *e = NULL;
    if (l < sizeof w) {
      memcpy(w, exp, l);
      w[l] = '\0';
      e = fm_abbrev_lookup(a, w);
    }
    if (out->len && fm_buf_putc(out, ' ')) return FM_ERR_NOMEM;
    if (e ? fm_buf_puts(out, e) : fm_buf_append(out, exp, l)) return FM_ERR_NOMEM;
    exp += l + (sp ? 1 : 0);
  }
  return FM_OK;
}

fm_rc fm_abbrev_mine(fm_abbrev *a, fm_tokenizer *tk, const char *const *mnemonics,
                     const char *const *names, size_t n, uint32_t min_support,
                     fm_error *err) {
  fm_tokens parts, words, seen;
  fm_strmap counts;
  fm_buf key;
  struct count *cs = NULL;
  size_t nc, i, nwin;
  fm_rc rc = FM_OK;
  if (!a || !tk || (n && (!mnemonics || !names)))
    return fm_error_set(err, FM_ERR_ARG, "fm_abbrev_mine: NULL argument");
  if (min_support == 0) min_support = 1;
  fm_tokens_init(&parts);
  fm_tokens_init(&words);
  fm_tokens_init(&seen);
  fm_strmap_init(&counts);
  fm_buf_init(&key);
  for (i = 0; i < n; i++) {
    if (!mnemonics[i] || !names[i]) continue;
    fm_tokens_reset(&parts);
    fm_tokens_reset(&words);
    if ((rc = fm_tokenize_mnemonic(tk, mnemonics[i], strlen(mnemonics[i]), &parts, err)) ||
        (rc = fm_tokenize_text(tk, names[i], strlen(names[i]), FM_TOK_KEEP_STOPWORDS,
                               &words, err))) {
      fm_error_prefix(err, "abbreviation mining, pair %zu (%s)", i, mnemonics[i]);
      goto out;
    }
    if (align_pair(&parts, &words, &counts, &seen, &key)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "abbreviation mining: out of memory");
      goto out;
    }
  }
  /* Sort the (part, expansion) counts so parts group together. */
  nc = fm_strmap_count(&counts);
  if (nc) {
    cs = fm_calloc(nc, sizeof *cs);
    if (!cs) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "abbreviation mining: out of memory");
      goto out;
    }
  }
  for (i = 0; i < nc; i++) {
    size_t l;
    cs[i].key = fm_strmap_key(&counts, i, &l);
    cs[i].n = fm_strmap_val(&counts, i);
  }
  if (nc) qsort(cs, nc, sizeof *cs, cmp_count);
  /* Choose the winners first (the table still holds only the entries that
   * were there before mining, so rewriting expansions through it does not
   * depend on the order mined entries are added in), then add them. */
  nwin = 0;
  for (i = 0; i < nc;) {
    const char *k0 = cs[i].key, *sep = strchr(k0, SEP);
    size_t plen = (size_t)(sep - k0), g, best = i;
    uint64_t total = 0;
    for (g = i; g < nc && strncmp(cs[g].key, k0, plen + 1) == 0; g++) {
      total += cs[g].n;
      if (cs[g].n > cs[best].n) best = g; /* ties keep the smaller string */
    }
    i = g;
    if (acceptable(a, cs[best].key, plen, cs[best].n, total, min_support))
      cs[nwin++] = cs[best];
  }
  for (i = 0; i < nwin; i++) {
    const char *k = cs[i].key, *sep = strchr(k, SEP);
    fm_buf_reset(&key);
    if (rewrite(a, sep + 1, &key) ||
        fm_buf_append(&key, "", 1) || /* part follows the expansion */
        fm_buf_append(&key, k, (size_t)(sep - k))) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "abbreviation mining: out of memory");
      goto out;
    }
    if (fm_abbrev_add(a, key.buf + strlen(key.buf) + 1, key.buf, cs[i].n)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "abbreviation mining: out of memory");
      goto out;
    }
  }
out:
  fm_free(cs);
  fm_buf_free(&key);
  fm_strmap_free(&counts);
  fm_tokens_free(&seen);
  fm_tokens_free(&words);
  fm_tokens_free(&parts);
  return rc;
}
