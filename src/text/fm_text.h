/*
 * fm_text.h: the text pipeline, built on ICU.  NFKC + case folding, word
 * break iteration, mnemonic splitting, stop words, and vendor abbreviation
 * expansion (a curated table plus one mined from mnemonic/long-name pairs).
 *
 * Everything here is UTF-8 in, UTF-8 out.  A tokenizer is not thread-safe;
 * use one per thread (they are cheap).
 */
#ifndef FM_TEXT_H
#define FM_TEXT_H

#include "fm_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A list of tokens: NUL-terminated strings packed in one buffer.  Owns its
 * memory; token pointers are borrowed and valid until the next append,
 * reset or free. */
typedef struct fm_tokens {
  fm_buf text;   /* "tok0\0tok1\0..." */
  uint32_t *off; /* start offset of each token in text */
  size_t n, cap;
} fm_tokens;

void fm_tokens_init(fm_tokens *t);
void fm_tokens_free(fm_tokens *t);
void fm_tokens_reset(fm_tokens *t);
fm_rc fm_tokens_push(fm_tokens *t, const char *s, size_t len);
static inline const char *fm_tokens_get(const fm_tokens *t, size_t i) {
  return t->text.buf + t->off[i];
}

typedef struct fm_tokenizer fm_tokenizer;

/* Create a tokenizer (ICU normalizer + word break iterator).  Caller owns
 * *out; free with fm_tokenizer_free. */
fm_rc fm_tokenizer_new(fm_tokenizer **out, fm_error *err);
void fm_tokenizer_free(fm_tokenizer *tk);

enum {
  FM_TOK_KEEP_STOPWORDS = 1u << 0, /* do not drop stop words */
  FM_TOK_NO_SPLIT = 1u << 1        /* do not split words into mnemonic parts */
};

/* Free text -> normalized tokens, appended to *out.  NFKC_Casefold, ICU word
 * boundaries, only words with a letter or digit kept; each word is further
 * split like a mnemonic (so "PX_LAST" or "NetChange" inside prose split
 * too) unless FM_TOK_NO_SPLIT; stop words dropped unless
 * FM_TOK_KEEP_STOPWORDS.  Invalid UTF-8 is FM_ERR_PARSE.  Empty input gives
 * no tokens. */
fm_rc fm_tokenize_text(fm_tokenizer *tk, const char *utf8, size_t len,
                       unsigned flags, fm_tokens *out, fm_error *err);

/* A mnemonic / identifier -> parts, appended to *out: split on
 * non-alphanumerics, on lower->Upper case changes ("NetChange"), and between
 * letters and digits, except that a digit run followed by a unit letter
 * stays one token ("1D", "3M", "5Y", "12M" -> "1d" ...).  Case folded.
 * No stop-word removal. */
fm_rc fm_tokenize_mnemonic(fm_tokenizer *tk, const char *utf8, size_t len,
                           fm_tokens *out, fm_error *err);

/* Is this (normalized) token a stop word? */
int fm_is_stopword(const char *tok);
/* The stop-word list, sorted by strcmp (for docs and tests).  Static
 * storage; fm_stopword_at returns NULL past the end. */
size_t fm_stopword_count(void);
const char *fm_stopword_at(size_t i);

/* The last normalization of a token before it becomes a feature, in
 * place (the token only shrinks; *len is updated and tok stays
 * NUL-terminated): plain lower-case ASCII words of four letters or more lose
 * an English plural ("revenues" -> "revenue", "liabilities" -> "liability",
 * "taxes" -> "tax"; "loss", "bonus", "basis" stay), and a period keeps one
 * spelling per unit ("1yr" -> "1y", "52wk" -> "52w", "3mo"/"3mth" -> "3m").
 * Anything else is left alone. */
void fm_token_canon(char *tok, size_t *len);

/* ---- abbreviations ------------------------------------------------------ */

/* A table abbreviation -> expansion ("px" -> "price", "chg" -> "change",
 * "bs" -> "balance sheet").  Keys and expansions are normalized tokens;
 * an expansion is one or more space-separated tokens.  Owns its strings. */
typedef struct fm_abbrev fm_abbrev;

fm_rc fm_abbrev_new(fm_abbrev **out);
void fm_abbrev_free(fm_abbrev *a);
/* Support recorded for curated (hand-written, TSV-loaded) entries. */
#define FM_ABBREV_CURATED_SUPPORT 1000000u

/* Add or replace an entry; support is how many pairs attested it (curated
 * entries use FM_ABBREV_CURATED_SUPPORT).  abbr and expansion are copied;
 * they must already be normalized (abbr one token, expansion one or more
 * tokens separated by single spaces).  FM_ERR_ARG when empty, FM_ERR_NOMEM
 * leaves the table unchanged. */
fm_rc fm_abbrev_add(fm_abbrev *a, const char *abbr, const char *expansion,
                    uint32_t support);
/* Expansion of a token, or NULL (borrowed from the table). */
const char *fm_abbrev_lookup(const fm_abbrev *a, const char *abbr);
size_t fm_abbrev_count(const fm_abbrev *a);
/* Entry i in a deterministic order (sorted by abbreviation). Borrowed. */
void fm_abbrev_entry(const fm_abbrev *a, size_t i, const char **abbr,
                     const char **expansion, uint32_t *support);

/* Load a curated table: UTF-8 TSV "abbr<TAB>expansion", '#' comments and
 * blank lines allowed; keys and expansions are normalized with the
 * tokenizer (the key must normalize to exactly one token).  An entry whose
 * expansion is the key itself ("comm<TAB>comm") marks an ambiguous part:
 * expansion leaves it alone and mining will not add a meaning for it.
 * Duplicate keys within one file are an error.  Errors name path:line. */
fm_rc fm_abbrev_load_tsv(fm_abbrev *a, fm_tokenizer *tk, const char *path,
                         fm_error *err);

/* Mine abbreviations from (mnemonic, long name) pairs such as
 * RDM NETCHNG_1 / "NET CHANGE" or "PCTCHG_3M" / "PERCENT CHANGE 3M": align
 * mnemonic parts to name words (a part that is a prefix or ordered
 * subsequence of a word, starting with its first letter, and whole parts
 * that cover several consecutive words, "netchng" -> "net change"), count
 * how many pairs attest each mapping, and add those with at least
 * min_support attestations that are the part's most frequent expansion.
 * Entries already present (curated) are not overwritten. */
fm_rc fm_abbrev_mine(fm_abbrev *a, fm_tokenizer *tk, const char *const *mnemonics,
                     const char *const *names, size_t n, uint32_t min_support,
                     fm_error *err);

/* Index the words of all expansions, after the table is complete: from
 * then on fm_abbrev_expand also splits an alphabetic token of five letters
 * or more that has no expansion into two known parts (abbreviations or
 * expansion words; the second of three letters or more; the longest first
 * part that works): RDM writes "NETCHG" beside
 * "NETCHNG", "PERATIO" beside "PE_RATIO".  Call again after changing the
 * table.  FM_ERR_NOMEM leaves splitting off. */
fm_rc fm_abbrev_index_words(fm_abbrev *a);

/* Keep prose words whole.  After fm_abbrev_index_words, an alphabetic
 * token with no expansion may split into two known parts; that is right
 * for vendor compounds ("netchg", "trdqte") and wrong for English words
 * that happen to read as two parts ("short" -> "sh" "ort", "primary" ->
 * "prim" "ary").  Words of five letters or more that the texts (names and
 * descriptions) write as prose, in lower case or capitalised, at least
 * min_count times, and that would split, get an identity entry (support =
 * their count), so expansion leaves them alone; mnemonics and RDM long
 * names write their parts in capitals and do not count.  texts[] is
 * borrowed (NULL entries skipped); *nkept (optional) is the number of
 * entries added.  Does nothing before fm_abbrev_index_words or with
 * min_count 0; re-indexes the words when it adds any.  FM_ERR_NOMEM may
 * leave a prefix of the entries added. */
fm_rc fm_abbrev_keep_words(fm_abbrev *a, const char *const *texts, size_t n,
                           uint32_t min_count, size_t *nkept);

/* Replace each token that has an expansion by the expansion's tokens,
 * appending the result to *out (tokens without one are copied).  When
 * keep_original is set the abbreviation itself is kept too, before its
 * expansion.  in and out must differ (FM_ERR_ARG).  On FM_ERR_NOMEM *out
 * holds a prefix of the result. */
fm_rc fm_abbrev_expand(const fm_abbrev *a, const fm_tokens *in,
                       int keep_original, fm_tokens *out);

#ifdef __cplusplus
}
#endif
#endif /* FM_TEXT_H */
