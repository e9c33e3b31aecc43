/* feat.c: one path from a field to its features, used by training and by
 * lookup alike (so a query is encoded exactly as the references were). */
#include "model_internal.h"

#include <string.h>

fm_rc fm_feat_init(fm_featurizer *f, const fm_abbrev *ab, fm_error *err) {
  memset(f, 0, sizeof *f);
  f->ab = ab;
  fm_tokens_init(&f->raw);
  fm_tokens_init(&f->exp);
  fm_tokens_init(&f->desc);
  fm_buf_init(&f->gram);
  return fm_tokenizer_new(&f->tk, err);
}

void fm_feat_free(fm_featurizer *f) {
  fm_tokenizer_free(f->tk);
  fm_tokens_free(&f->raw);
  fm_tokens_free(&f->exp);
  fm_tokens_free(&f->desc);
  fm_buf_free(&f->gram);
  f->tk = NULL;
}

/* Copy tokens of `in` that are not stop words to `out`, each in its
 * canonical form (fm_token_canon: plural and period spellings).  `in` is
 * rewritten in place (the canonical form is never longer). */
static fm_rc push_content(fm_tokens *in, fm_tokens *out) {
  for (size_t i = 0; i < in->n; i++) {
    char *t = in->text.buf + in->off[i];
    if (fm_is_stopword(t)) continue;
    size_t n = strlen(t);
    fm_token_canon(t, &n);
    if (fm_tokens_push(out, t, n)) return FM_ERR_NOMEM;
  }
  return FM_OK;
}

fm_rc fm_feat_field(fm_featurizer *f, const fm_field *fld, unsigned flags,
                    fm_tokens out[FM_NBLK], fm_error *err) {
  fm_rc rc;
  for (int b = 0; b < FM_NBLK; b++) fm_tokens_reset(&out[b]);
  fm_tokens_reset(&f->raw);
  fm_tokens_reset(&f->exp);
  /* title: mnemonic parts + name words, abbreviations expanded.  An id
   * that is a code (FM_FEAT_ID_CODE: "NINC" for "Net Income") is left out:
   * no other vendor shares it, its idf would outweigh the name in the title
   * vector, and its character n-grams are noise (measured in
   * docs/scoring.md). */
  if (!(flags & FM_FEAT_ID_CODE) &&
      (rc = fm_tokenize_mnemonic(f->tk, fld->id, strlen(fld->id), &f->raw, err)))
    return rc;
  if ((rc = fm_tokenize_text(f->tk, fld->name, strlen(fld->name), 0, &f->raw, err)))
    return rc;
  if ((rc = fm_abbrev_expand(f->ab, &f->raw, 0, &f->exp))) return rc;
  if ((rc = push_content(&f->exp, &out[FM_BLK_TITLE]))) return rc;
  /* full: title + description words, expanded */
  for (size_t i = 0; i < out[FM_BLK_TITLE].n; i++) {
    const char *t = fm_tokens_get(&out[FM_BLK_TITLE], i);
    if (fm_tokens_push(&out[FM_BLK_FULL], t, strlen(t))) return FM_ERR_NOMEM;
  }
  if (fld->description[0]) {
    fm_tokens_reset(&f->raw);
    fm_tokens_reset(&f->desc);
    if ((rc = fm_tokenize_text(f->tk, fld->description, strlen(fld->description), 0,
                               &f->raw, err)))
      return rc;
    if ((rc = fm_abbrev_expand(f->ab, &f->raw, 0, &f->desc))) return rc;
    if ((rc = push_content(&f->desc, &out[FM_BLK_FULL]))) return rc;
  }
  /* chars: 3- and 4-grams of " token " for each title token */
  if (flags & FM_FEAT_NO_CHARS) return FM_OK;
  for (size_t i = 0; i < out[FM_BLK_TITLE].n; i++)
    if (fm_feat_grams(&f->gram, fm_tokens_get(&out[FM_BLK_TITLE], i), &out[FM_BLK_CHARS]))
      return FM_ERR_NOMEM;
  return FM_OK;
}

fm_rc fm_feat_grams(fm_buf *gram, const char *tok, fm_tokens *out) {
  fm_buf_reset(gram);
  if (fm_buf_putc(gram, ' ') || fm_buf_puts(gram, tok) || fm_buf_putc(gram, ' '))
    return FM_ERR_NOMEM;
  const char *g = gram->buf;
  size_t gl = gram->len;
  for (size_t n = 3; n <= 4; n++)
    for (size_t s = 0; s + n <= gl; s++)
      if (fm_tokens_push(out, g + s, n)) return FM_ERR_NOMEM;
  return FM_OK;
}

fm_rc fm_feat_key(fm_buf *b, int blk, const char *tok) {
  fm_buf_reset(b);
  static const char tag[FM_NBLK] = {'t', 'f', 'c'};
  if (fm_buf_putc(b, tag[blk]) || fm_buf_puts(b, tok)) return FM_ERR_NOMEM;
  return FM_OK;
}

void fm_qvec_free(fm_qvec *q) {
  fm_free(q->term);
  fm_free(q->val);
  memset(q, 0, sizeof *q);
}

/* The head of a category: text before ';' (the bbdl importer appends asset
 * classes after it). */
static size_t head_len(const char *s) {
  const char *semi = strchr(s, ';');
  size_t n = semi ? (size_t)(semi - s) : strlen(s);
  while (n && s[n - 1] == ' ') n--;
  return n;
}

fm_rc fm_kind_query(fm_buf *b, const fm_field *f) {
  fm_buf_reset(b);
  if (fm_buf_puts(b, f->vendor) || fm_buf_putc(b, ':') ||
      fm_buf_append(b, f->category, head_len(f->category)))
    return FM_ERR_NOMEM;
  return FM_OK;
}

fm_rc fm_kind_ref(fm_buf *b, const fm_field *f) {
  fm_buf_reset(b);
  const char *base = strrchr(f->source, '/');
  base = base ? base + 1 : f->source;
  if (fm_buf_puts(b, base) || fm_buf_putc(b, ':') || fm_buf_puts(b, f->type))
    return FM_ERR_NOMEM;
  return FM_OK;
}
