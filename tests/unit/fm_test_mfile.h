/* fm_test_mfile.h: rewriting sections of a model file for tests of what
 * checksums cannot catch: every CRC of the copy is recomputed, so only the
 * model's own validation (fm_model_open) stands between the bytes and a
 * lookup.  Header-only, like fm_test.h. */
#ifndef FM_TEST_MFILE_H
#define FM_TEST_MFILE_H

#include "fm_model.h"
#include "fm_util.h"
#include "mfile.h"

#include <stdio.h>
#include <string.h>

/* Section tag of the model file src, as uint32s: *n of them, into a copy the
 * caller frees (NULL when the file or section is missing). */
static inline uint32_t *section_u32(const char *src, const char *tag, size_t *n) {
  fm_error err;
  fm_error_init(&err);
  fm_mfile *f = NULL;
  uint32_t *c = NULL;
  const void *p;
  uint64_t len;
  *n = 0;
  if (fm_mfile_open(src, &f, &err) == FM_OK &&
      fm_mfile_section(f, tag, &p, &len, &err) == FM_OK && (c = fm_malloc(len ? len : 1))) {
    memcpy(c, p, len);
    *n = len / 4;
  }
  fm_mfile_close(f);
  return c;
}

/* A replacement for one section of a rewrite (resave_secs): its payload
 * is p[0..len), or the section is left out when p is NULL. */
typedef struct fm_test_sec {
  const char *tag;
  const void *p;
  uint64_t len;
} fm_test_sec;

/* Write to dst a copy of the model file src with the n sections ch[] as
 * given instead (same place in the file order; a tag src lacks is added at
 * the end): every checksum is recomputed, so only the model's own
 * validation can tell.  Returns 0 on success. */
static inline int resave_secs(const char *src, const char *dst, const fm_test_sec *ch,
                              size_t n) {
  fm_error err;
  fm_error_init(&err);
  fm_mfile *f = NULL;
  fm_mfile_writer *w = NULL;
  int rc = -1;
  if (fm_mfile_open(src, &f, &err) || fm_mfile_writer_new(&w)) goto out;
  for (size_t i = 0; i < fm_mfile_nsections(f); i++) {
    uint64_t len;
    const void *p;
    const char *t = fm_mfile_section_tag(f, i, &len);
    if (fm_mfile_section(f, t, &p, &len, &err)) goto out;
    for (size_t j = 0; j < n; j++)
      if (strcmp(t, ch[j].tag) == 0) {
        p = ch[j].p;
        len = ch[j].len;
      }
    if (p && fm_mfile_add_ref(w, t, len ? p : "", len, &err)) goto out;
  }
  for (size_t j = 0; j < n; j++) {
    const void *p;
    uint64_t len;
    if (ch[j].p && fm_mfile_section(f, ch[j].tag, &p, &len, NULL) == FM_ERR_NOTFOUND &&
        fm_mfile_add_ref(w, ch[j].tag, ch[j].len ? ch[j].p : "", ch[j].len, &err))
      goto out;
  }
  rc = fm_mfile_write(w, dst, &err) == FM_OK ? 0 : -1;
out:
  fm_mfile_writer_free(w);
  fm_mfile_close(f);
  return rc;
}

/* Write to dst a copy of the model file src whose section tag is v[0..n)
 * (uint32s) instead.  Returns 0 on success. */
static inline int resave_with(const char *src, const char *dst, const char *tag,
                              const uint32_t *v, size_t n) {
  fm_test_sec ch = {tag, v, (uint64_t)n * 4};
  return resave_secs(src, dst, &ch, 1);
}

/* The file good with entry i of section tag set to v opens with
 * FM_ERR_CORRUPT and a message naming the path and what. */
static inline int rejects_u32(const char *good, const char *bad, const char *tag, size_t i, uint32_t v,
                       const char *what) {
  size_t n;
  uint32_t *c = section_u32(good, tag, &n);
  int ok = 0;
  if (c && i < n) {
    c[i] = v;
    if (resave_with(good, bad, tag, c, n) == 0) {
      fm_model *m = (fm_model *)1;
      fm_error err;
      fm_error_init(&err);
      fm_rc rc = fm_model_open(bad, &m, &err);
      ok = rc == FM_ERR_CORRUPT && m == NULL && strstr(err.msg, bad) && strstr(err.msg, what);
      if (!ok) fprintf(stderr, "  %s[%zu] = %u: rc=%s msg=%s\n", tag, i, v, fm_rc_name(rc), err.msg);
      if (rc == FM_OK) fm_model_close(m);
    }
  }
  fm_free(c);
  return ok;
}

#endif
