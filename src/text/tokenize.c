/* tokenize.c: UTF-8 text and mnemonics -> normalized tokens, with ICU.
 *
 * Pipeline for free text (fm_tokenize_text):
 *   1. UTF-8 -> UTF-16 (u_strFromUTF8); ill-formed input is FM_ERR_PARSE.
 *   2. NFKC (case kept, because the mnemonic splitter needs case); skipped
 *      when unorm2_spanQuickCheckYes says the text is already NFKC, which
 *      is always true for ASCII.
 *   3. ICU word boundaries; segments whose rule status is UBRK_WORD_NONE
 *      (spaces, punctuation, emoji) are dropped, except "%" -> "pct" and
 *      "#" -> "num".
 *   4. Each word is split into mnemonic parts (split_word) unless
 *      FM_TOK_NO_SPLIT.
 *   5. Each part is NFKC_Casefolded (ASCII: plain lower-casing, which is
 *      identical for ASCII) and converted back to UTF-8.
 *   6. Stop words are dropped unless FM_TOK_KEEP_STOPWORDS.
 *
 * fm_tokenize_mnemonic does 1, 2, 4 and 5 on the whole string.
 *
 * Every buffer and the break iterator live in the fm_tokenizer and are
 * reused across calls, so steady-state tokenization does not allocate
 * except to grow the output list. */
#include "fm_text.h"

#include <string.h>

#include <unicode/ubrk.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>
#include <unicode/utf8.h>

struct fm_tokenizer {
  const UNormalizer2 *nfkc; /* ICU singletons: not owned */
  const UNormalizer2 *fold;
  UBreakIterator *brk; /* owned */
  UChar *u16;          /* input converted to UTF-16 */
  size_t u16cap;
  UChar *norm; /* NFKC of u16 when it was not already normalized */
  size_t normcap;
  UChar *fbuf; /* case-folded part */
  size_t fbufcap;
  char *u8; /* UTF-8 of one output token */
  size_t u8cap;
  struct seg *segs; /* parts of the current word */
  size_t segcap;
};

/* One part of a word: [start, end) in UTF-16 units.  kind: 'a' letters,
 * 'd' digits (with decimal points), 'p' a literal "pct" for '%', 'n' a
 * literal "num" for '#'. */
struct seg {
  int32_t start, end;
  char kind;
};

fm_rc fm_tokenizer_new(fm_tokenizer **out, fm_error *err) {
  UErrorCode st = U_ZERO_ERROR;
  fm_tokenizer *tk;
  *out = NULL;
  tk = fm_calloc(1, sizeof *tk);
  if (!tk) return fm_error_set(err, FM_ERR_NOMEM, "tokenizer: out of memory");
  tk->nfkc = unorm2_getNFKCInstance(&st);
  if (U_SUCCESS(st)) tk->fold = unorm2_getNFKCCasefoldInstance(&st);
  if (U_SUCCESS(st)) tk->brk = ubrk_open(UBRK_WORD, "", NULL, 0, &st);
  if (U_FAILURE(st)) {
    fm_tokenizer_free(tk);
    return fm_error_set(err, FM_ERR_ICU, "tokenizer: ICU initialization: %s",
                        u_errorName(st));
  }
  *out = tk;
  return FM_OK;
}

void fm_tokenizer_free(fm_tokenizer *tk) {
  if (!tk) return;
  if (tk->brk) ubrk_close(tk->brk);
  fm_free(tk->u16);
  fm_free(tk->norm);
  fm_free(tk->fbuf);
  fm_free(tk->u8);
  fm_free(tk->segs);
  fm_free(tk);
}

/* ---- helpers ------------------------------------------------------------ */

static fm_rc nomem(fm_error *err) {
  return fm_error_set(err, FM_ERR_NOMEM, "tokenizer: out of memory");
}

/* Byte offset of the first ill-formed sequence in s[0..len), for messages. */
static size_t bad_utf8_offset(const char *s, size_t len) {
  int32_t i = 0, n = (int32_t)len;
  while (i < n) {
    int32_t at = i;
    UChar32 c;
    U8_NEXT(s, i, n, c);
    if (c < 0) return (size_t)at;
  }
  return len;
}

/* s (UTF-8) -> tk->u16; sets *n16.  Ill-formed UTF-8 is FM_ERR_PARSE. */
static fm_rc to_u16(fm_tokenizer *tk, const char *s, size_t len, int32_t *n16,
                    fm_error *err) {
  UErrorCode st = U_ZERO_ERROR;
  if (len >= (size_t)INT32_MAX)
    return fm_error_set(err, FM_ERR_ARG, "tokenizer: input of %zu bytes is too large", len);
  /* A UTF-8 string never has more UTF-16 units than bytes. */
  if (fm_grow((void **)&tk->u16, &tk->u16cap, len + 1, sizeof *tk->u16)) return nomem(err);
  u_strFromUTF8(tk->u16, (int32_t)tk->u16cap, n16, s, (int32_t)len, &st);
  if (st == U_INVALID_CHAR_FOUND || st == U_ILLEGAL_CHAR_FOUND ||
      st == U_TRUNCATED_CHAR_FOUND)
    return fm_error_set(err, FM_ERR_PARSE, "invalid UTF-8 at byte %zu",
                        bad_utf8_offset(s, len));
  if (U_FAILURE(st))
    return fm_error_set(err, FM_ERR_ICU, "u_strFromUTF8: %s", u_errorName(st));
  return FM_OK;
}

/* NFKC of tk->u16[0..n); *text points at the result (tk->u16 itself when it
 * is already normalized, else tk->norm). */
static fm_rc to_nfkc(fm_tokenizer *tk, int32_t n, const UChar **text, int32_t *tn,
                     fm_error *err) {
  UErrorCode st = U_ZERO_ERROR;
  int32_t span = unorm2_spanQuickCheckYes(tk->nfkc, tk->u16, n, &st);
  if (U_FAILURE(st))
    return fm_error_set(err, FM_ERR_ICU, "NFKC check: %s", u_errorName(st));
  if (span == n) {
    *text = tk->u16;
    *tn = n;
    return FM_OK;
  }
  for (;;) {
    int32_t need;
    st = U_ZERO_ERROR;
    if (!tk->norm || tk->normcap < (size_t)n + 16) {
      if (fm_grow((void **)&tk->norm, &tk->normcap, (size_t)n + 16, sizeof *tk->norm))
        return nomem(err);
    }
    need = unorm2_normalize(tk->nfkc, tk->u16, n, tk->norm,
                            (int32_t)(tk->normcap > INT32_MAX ? INT32_MAX : tk->normcap), &st);
    if (st == U_BUFFER_OVERFLOW_ERROR) {
      if (fm_grow((void **)&tk->norm, &tk->normcap, (size_t)need + 1, sizeof *tk->norm))
        return nomem(err);
      continue;
    }
    if (U_FAILURE(st))
      return fm_error_set(err, FM_ERR_ICU, "NFKC: %s", u_errorName(st));
    *text = tk->norm;
    *tn = need;
    return FM_OK;
  }
}

/* Is s[0..n) (UTF-16) a unit suffix that stays glued to a number ("1D",
 * "52WK", "3M", "1YR")?  Case-insensitive. */
static int is_unit(const UChar *s, int32_t n) {
  static const char *const units[] = {"d", "w", "m", "y", "q", "h",
                                      "wk", "mo", "yr", "mth"};
  char lower[4];
  if (n < 1 || n > 3) return 0;
  for (int32_t i = 0; i < n; i++) {
    UChar c = s[i];
    if (c >= 'A' && c <= 'Z') c = (UChar)(c + 32);
    if (c < 'a' || c > 'z') return 0;
    lower[i] = (char)c;
  }
  lower[n] = '\0';
  for (size_t i = 0; i < sizeof units / sizeof *units; i++)
    if (strcmp(lower, units[i]) == 0) return 1;
  return 0;
}

/* Character classes for splitting. */
enum { C_SEP, C_UPPER, C_LOWER, C_DIGIT };

static int char_class(UChar32 c) {
  if (c < 0x80) {
    if (c >= 'a' && c <= 'z') return C_LOWER;
    if (c >= 'A' && c <= 'Z') return C_UPPER;
    if (c >= '0' && c <= '9') return C_DIGIT;
    return C_SEP;
  }
  if (u_isdigit(c)) return C_DIGIT;
  if (u_isupper(c) || u_istitle(c)) return C_UPPER;
  if (u_isalpha(c)) return C_LOWER; /* lower case and caseless letters */
  return C_SEP;
}

static int is_mark(UChar32 c) {
  return c >= 0x300 && (U_GET_GC_MASK(c) & U_GC_M_MASK) != 0;
}

static fm_rc push_seg(fm_tokenizer *tk, size_t *ns, int32_t start, int32_t end,
                      char kind) {
  if (fm_grow((void **)&tk->segs, &tk->segcap, *ns + 1, sizeof *tk->segs))
    return FM_ERR_NOMEM;
  tk->segs[*ns].start = start;
  tk->segs[*ns].end = end;
  tk->segs[*ns].kind = kind;
  (*ns)++;
  return FM_OK;
}

/* Split w[0..n) into parts (tk->segs, *nseg):
 *   - non-alphanumerics separate parts ('%' becomes a "pct" part, '#' a
 *     "num" part; an apostrophe tail of 1-2 letters at the end of the word,
 *     "'s", "'t", "'ll", is dropped);
 *   - lower -> Upper starts a part ("NetChange" -> Net|Change);
 *   - Upper Upper lower splits before the last capital ("IPOPrice" ->
 *     IPO|Price);
 *   - letters <-> digits split ("ASK1" -> ASK|1), but a digit run directly
 *     followed by a unit letter run (is_unit) is one part ("52WK", "1D");
 *   - a '.' between two digits stays inside the number ("1.5").
 * Combining marks continue the current part. */
static fm_rc split_word(fm_tokenizer *tk, const UChar *w, int32_t n, size_t *nseg) {
  size_t ns = 0;
  int32_t i = 0, seg_start = -1;
  int prev = C_SEP, prev2 = C_SEP; /* classes of the previous two chars */
  int32_t prev_start = 0;          /* where the previous char starts */
  while (i < n) {
    int32_t at = i;
    UChar32 c;
    int cls;
    U16_NEXT(w, i, n, c);
    cls = char_class(c);
    if (cls == C_SEP && is_mark(c) && prev != C_SEP) cls = prev; /* combining */
    if (cls == C_SEP && c == '.' && prev == C_DIGIT && i < n && w[i] >= '0' &&
        w[i] <= '9')
      cls = C_DIGIT; /* decimal point */
    if (cls == C_SEP) {
      if (seg_start >= 0 && push_seg(tk, &ns, seg_start, at, prev == C_DIGIT ? 'd' : 'a'))
        return FM_ERR_NOMEM;
      seg_start = -1;
      if ((c == '%' || c == '#') && push_seg(tk, &ns, at, i, c == '%' ? 'p' : 'n'))
        return FM_ERR_NOMEM;
      if (c == '\'' || c == 0x2019) {
        /* Drop a contraction or possessive tail of 1-2 letters ("'s",
         * "n't" leaves "n", "'re", "'ll"), which only adds noise. */
        int32_t e = i;
        while (e < n && e - i < 3 && w[e] < 0x80 && char_class(w[e]) >= C_UPPER &&
               char_class(w[e]) <= C_LOWER)
          e++;
        if (e > i && e - i <= 2 && (e == n || char_class(w[e]) == C_SEP)) {
          i = e;
          prev = prev2 = C_SEP;
          continue;
        }
      }
      prev2 = prev;
      prev = C_SEP;
      continue;
    }
    if (seg_start < 0) {
      seg_start = at;
    } else {
      int cut = -1; /* where to end the current part, or -1 */
      if ((prev == C_DIGIT) != (cls == C_DIGIT))
        cut = at;
      else if (prev == C_LOWER && cls == C_UPPER)
        cut = at;
      else if (prev == C_UPPER && cls == C_LOWER && prev2 == C_UPPER &&
               prev_start > seg_start)
        cut = prev_start;
      if (cut >= 0) {
        if (push_seg(tk, &ns, seg_start, cut, prev == C_DIGIT ? 'd' : 'a'))
          return FM_ERR_NOMEM;
        seg_start = cut;
      }
    }
    prev2 = prev;
    prev = cls;
    prev_start = at;
  }
  if (seg_start >= 0 &&
      push_seg(tk, &ns, seg_start, n, prev == C_DIGIT ? 'd' : 'a'))
    return FM_ERR_NOMEM;
  *nseg = ns;
  return FM_OK;
}

/* Case fold s[0..n) and append it as one token (unless it folds to nothing,
 * or it is a stop word and drop_stop). */
static fm_rc emit(fm_tokenizer *tk, const UChar *s, int32_t n, int drop_stop,
                  fm_tokens *out, fm_error *err) {
  int32_t i, u8len;
  int ascii = 1;
  for (i = 0; i < n; i++)
    if (s[i] >= 0x80) {
      ascii = 0;
      break;
    }
  if (ascii) {
    if (fm_grow((void **)&tk->u8, &tk->u8cap, (size_t)n + 1, 1)) return nomem(err);
    for (i = 0; i < n; i++) {
      UChar c = s[i];
      tk->u8[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    u8len = n;
  } else {
    UErrorCode st;
    int32_t fn;
    const UChar *f = s;
    st = U_ZERO_ERROR;
    /* NFKC_Casefold can expand ("ß" -> "ss"); retry once with the size. */
    for (;;) {
      st = U_ZERO_ERROR;
      if (fm_grow((void **)&tk->fbuf, &tk->fbufcap, (size_t)n * 3 + 8, sizeof *tk->fbuf))
        return nomem(err);
      fn = unorm2_normalize(tk->fold, s, n, tk->fbuf, (int32_t)tk->fbufcap, &st);
      if (st == U_BUFFER_OVERFLOW_ERROR) {
        if (fm_grow((void **)&tk->fbuf, &tk->fbufcap, (size_t)fn + 1, sizeof *tk->fbuf))
          return nomem(err);
        continue;
      }
      break;
    }
    if (U_FAILURE(st))
      return fm_error_set(err, FM_ERR_ICU, "case folding: %s", u_errorName(st));
    f = tk->fbuf;
    for (;;) {
      st = U_ZERO_ERROR;
      if (fm_grow((void **)&tk->u8, &tk->u8cap, (size_t)fn * 3 + 1, 1)) return nomem(err);
      u_strToUTF8(tk->u8, (int32_t)tk->u8cap, &u8len, f, fn, &st);
      if (U_FAILURE(st))
        return fm_error_set(err, FM_ERR_ICU, "u_strToUTF8: %s", u_errorName(st));
      break;
    }
  }
  if (u8len == 0) return FM_OK;
  tk->u8[u8len] = '\0';
  if (drop_stop && fm_is_stopword(tk->u8)) return FM_OK;
  if (fm_tokens_push(out, tk->u8, (size_t)u8len)) return nomem(err);
  return FM_OK;
}

/* '%' is emitted as "pct" and '#' as "num" (as in "%_CHG" or "#_OF_..."):
 * vendor mnemonics use the symbols where long names say the word. */
static fm_rc emit_symbol(fm_tokenizer *tk, char kind, int drop_stop, fm_tokens *out,
                         fm_error *err) {
  static const UChar pct[] = {'p', 'c', 't'}, num[] = {'n', 'u', 'm'};
  return emit(tk, kind == 'p' ? pct : num, 3, drop_stop, out, err);
}

/* Split w[0..n) into parts and emit them, gluing number+unit pairs. */
static fm_rc emit_parts(fm_tokenizer *tk, const UChar *w, int32_t n, int drop_stop,
                        fm_tokens *out, fm_error *err) {
  size_t ns, k;
  fm_rc rc;
  if (split_word(tk, w, n, &ns)) return nomem(err);
  for (k = 0; k < ns; k++) {
    const struct seg *s = &tk->segs[k];
    int32_t end = s->end;
    if (s->kind == 'p' || s->kind == 'n') {
      if ((rc = emit_symbol(tk, s->kind, drop_stop, out, err))) return rc;
      continue;
    }
    if (s->kind == 'd' && k + 1 < ns && tk->segs[k + 1].kind == 'a' &&
        tk->segs[k + 1].start == s->end &&
        is_unit(w + s->end, tk->segs[k + 1].end - s->end)) {
      end = tk->segs[k + 1].end;
      k++;
    }
    if ((rc = emit(tk, w + s->start, end - s->start, drop_stop, out, err))) return rc;
  }
  return FM_OK;
}

/* ---- public ------------------------------------------------------------- */

fm_rc fm_tokenize_text(fm_tokenizer *tk, const char *utf8, size_t len,
                       unsigned flags, fm_tokens *out, fm_error *err) {
  UErrorCode st = U_ZERO_ERROR;
  const UChar *text;
  int32_t n16, tn, start, end;
  int drop_stop = !(flags & FM_TOK_KEEP_STOPWORDS);
  fm_rc rc;
  if (!tk || !out || (!utf8 && len))
    return fm_error_set(err, FM_ERR_ARG, "fm_tokenize_text: NULL argument");
  if (len == 0) return FM_OK;
  if ((rc = to_u16(tk, utf8, len, &n16, err))) return rc;
  if ((rc = to_nfkc(tk, n16, &text, &tn, err))) return rc;
  ubrk_setText(tk->brk, text, tn, &st);
  if (U_FAILURE(st))
    return fm_error_set(err, FM_ERR_ICU, "ubrk_setText: %s", u_errorName(st));
  start = ubrk_first(tk->brk);
  for (end = ubrk_next(tk->brk); end != UBRK_DONE;
       start = end, end = ubrk_next(tk->brk)) {
    if (ubrk_getRuleStatus(tk->brk) < UBRK_WORD_NONE_LIMIT) {
      /* Not a word; '%' still means "percent" in field descriptions. */
      if (end - start == 1 && (text[start] == '%' || text[start] == '#') &&
          (rc = emit_symbol(tk, text[start] == '%' ? 'p' : 'n', drop_stop, out, err)))
        goto done;
      continue;
    }
    if (flags & FM_TOK_NO_SPLIT)
      rc = emit(tk, text + start, end - start, drop_stop, out, err);
    else
      rc = emit_parts(tk, text + start, end - start, drop_stop, out, err);
    if (rc) goto done;
  }
  rc = FM_OK;
done:
  /* Do not keep a pointer into our buffers past this call. */
  st = U_ZERO_ERROR;
  ubrk_setText(tk->brk, NULL, 0, &st);
  return rc;
}

fm_rc fm_tokenize_mnemonic(fm_tokenizer *tk, const char *utf8, size_t len,
                           fm_tokens *out, fm_error *err) {
  const UChar *text;
  int32_t n16, tn;
  fm_rc rc;
  if (!tk || !out || (!utf8 && len))
    return fm_error_set(err, FM_ERR_ARG, "fm_tokenize_mnemonic: NULL argument");
  if (len == 0) return FM_OK;
  if ((rc = to_u16(tk, utf8, len, &n16, err))) return rc;
  if ((rc = to_nfkc(tk, n16, &text, &tn, err))) return rc;
  return emit_parts(tk, text, tn, 0, out, err);
}
