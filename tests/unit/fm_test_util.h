/* fm_test_util.h: helpers shared by several unit tests: a scratch
 * directory with whole-file read/write/compare, and looking a field up in a
 * field set.  Header-only, like fm_test.h. */
#ifndef FM_TEST_UTIL_H
#define FM_TEST_UTIL_H

#include "fm_import.h"
#include "fm_util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The test's scratch directory; main() fills it with mkdtemp. */
static char dir[64];

/* Path of a scratch file in dir (rotating static buffers, so a few can be
 * live at once). */
static inline const char *tmp(const char *name) {
  static char bufs[8][sizeof dir + 256]; /* dir + '/' + any d_name */
  static int k;
  char *b = bufs[k++ & 7];
  snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
  return b;
}

static inline int write_bytes(const char *path, const void *p, size_t n) {
  FILE *fp = fopen(path, "wb");
  if (!fp) return -1;
  size_t w = n ? fwrite(p, 1, n, fp) : 0;
  return (fclose(fp) == 0 && w == n) ? 0 : -1;
}

/* A NUL-terminated text as the whole file at path; 0 or -1. */
static inline int write_text(const char *path, const char *s) {
  return write_bytes(path, s, strlen(s));
}

/* Whole file, caller frees with fm_free; NULL on error. */
static inline unsigned char *read_bytes(const char *path, size_t *n) {
  char *buf = NULL;
  fm_error e;
  fm_error_init(&e);
  if (fm_read_file(path, &buf, n, &e) != FM_OK) return NULL;
  return (unsigned char *)buf;
}

static inline int files_equal(const char *a, const char *b) {
  size_t na = 0, nb = 0;
  unsigned char *pa = read_bytes(a, &na), *pb = read_bytes(b, &nb);
  int eq = pa && pb && na == nb && memcmp(pa, pb, na) == 0;
  fm_free(pa);
  fm_free(pb);
  return eq;
}

/* No "<anything>.tmp.<pid>" file left in dir. */
static inline int no_temp_files(void) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  struct dirent *de;
  int clean = 1;
  while ((de = readdir(d)))
    if (strstr(de->d_name, ".tmp.")) clean = 0;
  closedir(d);
  return clean;
}

/* Create the scratch directory, /tmp/<prefix>XXXXXX; 0, or -1 (said on
 * stderr). */
static inline int scratch_make(const char *prefix) {
  snprintf(dir, sizeof dir, "/tmp/%sXXXXXX", prefix);
  if (mkdtemp(dir)) return 0;
  perror("mkdtemp");
  return -1;
}

/* Remove the scratch directory and the files in it. */
static inline void scratch_remove(void) {
  DIR *dd = opendir(dir);
  if (dd) {
    struct dirent *de;
    while ((de = readdir(dd)))
      if (de->d_name[0] != '.') unlink(tmp(de->d_name));
    closedir(dd);
  }
  rmdir(dir);
}

/* First field with this id, or NULL (borrowed from the set). */
static inline const fm_field *find(const fm_fieldset *s, const char *id) {
  for (size_t i = 0; i < s->n; i++)
    if (strcmp(s->v[i].id, id) == 0) return &s->v[i];
  return NULL;
}

/* Declare f as the field `id` of set, failing the check and returning from
 * the test when it is missing. */
#define FIELD(set, id, f)                                                  \
  const fm_field *f = find(set, id);                                       \
  CHECK(f != NULL);                                                        \
  if (!f) return

#endif
