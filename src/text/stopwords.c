/* stopwords.c: a small English stop-word list.
 *
 * Deliberately short: only function words that carry no meaning in a field
 * description.  Domain words that look generic but distinguish fields
 * ("net", "high", "low", "last", "open", "close", "ask", "bid", "per",
 * "before", "after", "up", "down", "over", "under", "no", "not", "other",
 * "all") are NOT
 * stop words: "price per share" and "change over 1 year" need them. */
#include "fm_text.h"

#include <string.h>

/* Sorted (strcmp order) for the binary search; test_text checks the order. */
static const char *const stopwords[] = {
    "a",     "also",  "an",    "and",   "any",    "are",   "as",
    "at",    "be",    "been",  "being", "but",   "by",     "can",   "could",
    "do",    "does",  "each",  "either","etc",   "for",    "from",  "had",
    "has",   "have",  "he",    "her",   "his",   "how",    "i",     "if",
    "in",    "into",  "is",    "it",    "its",   "may",    "might", "must",
    "of",    "on",    "or",    "our",   "shall",  "she",   "should",
    "such",  "than",  "that",  "the",   "their", "them",   "then",  "there",
    "these", "they",  "this",  "those", "thus",  "to",     "via",   "was",
    "we",    "were",  "what",  "when",  "where", "whether","which", "while",
    "who",   "whom",  "whose", "will",  "with",  "within", "would", "you",
    "your",
};

/* The longest stop word's length ("whether"): a longer token, which most
 * are, is rejected without a search.  test_text checks every word of the
 * list is found, so a longer one added later fails there. */
enum { STOP_MAXLEN = 7 };

/* Called for every token of every field (training featurizes ~60k fields):
 * bsearch's strcmp through a comparison callback was ~10% of
 * featurization.  Here a token longer than any stop word stops after
 * STOP_MAXLEN + 1 bytes, and the search compares first bytes inline,
 * calling strcmp only on a match. */
int fm_is_stopword(const char *tok) {
  if (!tok || !*tok) return 0;
  size_t n = 1;
  while (n <= STOP_MAXLEN && tok[n]) n++;
  if (n > STOP_MAXLEN) return 0;
  size_t lo = 0, hi = sizeof stopwords / sizeof *stopwords;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const char *w = stopwords[mid];
    int c = (unsigned char)w[0] - (unsigned char)tok[0];
    if (c == 0) c = strcmp(w, tok);
    if (c == 0) return 1;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return 0;
}

size_t fm_stopword_count(void) { return sizeof stopwords / sizeof *stopwords; }
const char *fm_stopword_at(size_t i) {
  return i < fm_stopword_count() ? stopwords[i] : NULL;
}
