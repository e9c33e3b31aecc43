/* fm_test_store.h: helpers shared by the tests of the store and of what
 * reads it (batch runs, review, exports, snapshots, provisioning): open a
 * scratch database, count rows, build a field set, read a gzip file back.
 * Header-only, like fm_test_util.h (include that first: it owns `dir`). */
#ifndef FM_TEST_STORE_H
#define FM_TEST_STORE_H

#include "fm_store.h"
#include "fm_store_sql.h"
#include "fm_test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <zlib.h>

/* Store options that create the file when it is not there (a test's
 * scratch database is new). */
static inline const fm_store_opts *create_opts(void) {
  static fm_store_opts o;
  fm_store_opts_default(&o);
  o.create = 1;
  return &o;
}

/* Open (creating) the scratch database `name`; NULL after printing why. */
static inline fm_store *open_db(const char *name) {
  fm_store *st = NULL;
  fm_error e;
  fm_error_init(&e);
  if (fm_store_open(tmp(name), create_opts(), &st, &e)) fprintf(stderr, "open: %s\n", e.msg);
  return st;
}

/* The first column of the first row of sql (a count); -1 with no row, -2
 * when sql does not prepare. */
static inline long long count(fm_store *st, const char *sql) {
  sqlite3_stmt *s;
  long long n = -1;
  if (sqlite3_prepare_v2(fm_store_db(st), sql, -1, &s, NULL) != SQLITE_OK) return -2;
  if (sqlite3_step(s) == SQLITE_ROW) n = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  return n;
}

/* Append a field (source "test", line = its position) to fs. */
static inline void add_field(fm_fieldset *fs, const char *vendor, const char *id,
                             const char *name, const char *desc) {
  fm_field f = {.vendor = vendor, .id = id, .name = name, .description = desc,
                .source = "test", .line = (uint32_t)fs->n + 1};
  fm_fieldset_add(fs, &f);
}

/* Whole gunzipped file into a malloc'd string (free()); NULL on error. */
static inline char *gunzip(const char *path) {
  gzFile g = gzopen(path, "rb");
  if (!g) return NULL;
  size_t cap = 1 << 16, n = 0;
  char *b = malloc(cap);
  int r;
  while (b && (r = gzread(g, b + n, (unsigned)(cap - n - 1))) > 0) {
    n += (size_t)r;
    if (cap - n < 2) b = realloc(b, cap *= 2);
  }
  gzclose(g);
  if (b) b[n] = '\0';
  return b;
}

static inline int exists(const char *p) {
  struct stat sb;
  return stat(p, &sb) == 0;
}

#endif
