/* stopwords.c: a small English stop-word list.
 *
 * Deliberately short: only function words that carry no meaning in a field
 * description.  Domain words that look generic but distinguish fields
 * ("net", "high", "low", "last", "open", "close", "ask", "bid", "per",
 * "before", "after", "up", "down", "over", "under", "no", "not", "other",
 * "all") are NOT
 * stop words: "price per share" and "change over 1 year" need them. */
#include "fm_text.h"

#include <stdlib.h>
#include <string.h>

/* Sorted (strcmp order) for bsearch; test_text checks the order. */
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

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int fm_is_stopword(const char *tok) {
  if (!tok || !*tok) return 0;
  return bsearch(&tok, stopwords, sizeof stopwords / sizeof *stopwords,
                 sizeof *stopwords, cmp_str) != NULL;
}

size_t fm_stopword_count(void) { return sizeof stopwords / sizeof *stopwords; }
const char *fm_stopword_at(size_t i) {
  return i < fm_stopword_count() ? stopwords[i] : NULL;
}
