/* tokens.c: fm_tokens, a packed list of NUL-terminated token strings. */
#include "fm_text.h"

#include <string.h>

void fm_tokens_init(fm_tokens *t) {
  fm_buf_init(&t->text);
  t->off = NULL;
  t->n = t->cap = 0;
}

void fm_tokens_free(fm_tokens *t) {
  fm_buf_free(&t->text);
  fm_free(t->off);
  fm_tokens_init(t);
}

void fm_tokens_reset(fm_tokens *t) {
  fm_buf_reset(&t->text);
  t->n = 0;
}

/* Append a copy of s[0..len).  On failure the list is unchanged (a partly
 * appended text tail is rolled back). */
fm_rc fm_tokens_push(fm_tokens *t, const char *s, size_t len) {
  size_t start = t->text.len;
  if (start > UINT32_MAX - 1 || len > UINT32_MAX - 1 - start) return FM_ERR_NOMEM;
  if (fm_grow((void **)&t->off, &t->cap, t->n + 1, sizeof *t->off))
    return FM_ERR_NOMEM;
  /* "tok\0": append the bytes and the separator NUL in one step. */
  if (fm_buf_append(&t->text, s, len) || fm_buf_append(&t->text, "", 1)) {
    t->text.len = start;
    if (t->text.buf) t->text.buf[start] = '\0';
    return FM_ERR_NOMEM;
  }
  t->off[t->n++] = (uint32_t)start;
  return FM_OK;
}
