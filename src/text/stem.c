/* stem.c: the last normalization step of a token before it becomes a
 * feature: a conservative English plural stemmer and one spelling per
 * period unit.  Both vendors write the same quantity in the singular and
 * the plural ("Total Revenues" / "REVENUE", "liabilities" / "liability")
 * and spell periods differently ("CHG_NET_1YR" / "NETCHG_1Y",
 * "52WK" / "52W"); without this the TF-IDF vectors do not meet. */
#include "fm_text.h"

#include <string.h>

static int ends(const char *s, size_t n, const char *suf) {
  size_t m = strlen(suf);
  return n >= m && memcmp(s + n - m, suf, m) == 0;
}

/* "<digits><unit>" with a unit the tokenizer keeps glued: the canonical
 * unit is one letter (wk -> w, mo/mth -> m, yr -> y). */
static void period(char *tok, size_t *len) {
  size_t n = *len, d = 0;
  while (d < n && tok[d] >= '0' && tok[d] <= '9') d++;
  if (d == 0 || d == n) return;
  const char *u = tok + d;
  size_t un = n - d;
  static const struct { const char *from, *to; } canon[] = {
      {"wk", "w"}, {"mo", "m"}, {"mth", "m"}, {"yr", "y"}};
  for (size_t i = 0; i < sizeof canon / sizeof *canon; i++)
    if (un == strlen(canon[i].from) && memcmp(u, canon[i].from, un) == 0) {
      size_t tn = strlen(canon[i].to);
      memcpy(tok + d, canon[i].to, tn);
      *len = d + tn;
      tok[*len] = '\0';
      return;
    }
}

void fm_token_canon(char *tok, size_t *len) {
  size_t n = *len;
  if (n == 0) return;
  if (tok[0] >= '0' && tok[0] <= '9') {
    period(tok, len);
    return;
  }
  /* only plain ASCII words of four letters or more: short tokens are
   * mostly mnemonic parts ("bs", "eps", "ops") whose final s is no plural */
  if (n < 4) return;
  for (size_t i = 0; i < n; i++)
    if (tok[i] < 'a' || tok[i] > 'z') return;
  if (tok[n - 1] != 's') return;
  if (ends(tok, n, "ss") || ends(tok, n, "us") || ends(tok, n, "is")) return;
  if (ends(tok, n, "ies")) {
    if (n < 5 || ends(tok, n, "eies") || ends(tok, n, "aies")) return;
    tok[n - 3] = 'y';
    n -= 2; /* "liabilities" -> "liability" */
  } else if (ends(tok, n, "sses") || ends(tok, n, "xes") || ends(tok, n, "ches") ||
             ends(tok, n, "shes") || ends(tok, n, "zes")) {
    n -= 2; /* "losses" -> "loss", "taxes" -> "tax" */
  } else if (ends(tok, n, "aes") || ends(tok, n, "ees") || ends(tok, n, "oes")) {
    return;
  } else {
    n -= 1; /* "revenues" -> "revenue", "shares" -> "share" */
  }
  tok[n] = '\0';
  *len = n;
}
