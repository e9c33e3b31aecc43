/* prov_internal.h: what the provision module's files share (provision.c:
 * datasets, validation, reading and creating requests; prov_run.c: claiming
 * and materializing them, recovery and expiry).  Not installed. */
#ifndef FM_PROV_INTERNAL_H
#define FM_PROV_INTERNAL_H

#include <jansson.h>

#include "fm_lease.h"
#include "fm_provision.h"
#include "fm_store_sql.h"

/* A filterable column: a requester's key maps to `column = ?`.  values,
 * when not NULL, is the NULL-terminated set of allowed values. */
typedef struct col_filter {
  const char *key;
  const char *column;
  const char *const *values;
} col_filter;

typedef struct dataset {
  const char *name;
  const char *select;   /* "SELECT ... FROM t" (constant) */
  const char *order;    /* " ORDER BY ..." (constant) */
  const char *changed;  /* column changed_since compares with, or NULL */
  const col_filter *cols;
} dataset;

/* The dataset called name, or NULL. */
const dataset *fm_prov_find_dataset(const char *name);
/* The filterable column of d for a requester's key, or NULL. */
const col_filter *fm_prov_find_col(const dataset *d, const char *key);
/* A filter value as text (strings and integers only; buf receives
 * integers), or NULL when v is neither. */
const char *fm_prov_value_text(json_t *v, char buf[32]);
/* 32 lowercase hex digits. */
int fm_prov_valid_id(const char *id);
/* Column col of s into dst (n bytes; "" for NULL). */
void fm_prov_copy_text(char *dst, size_t n, sqlite3_stmt *s, int col);
/* Column col of s as a new string (fm_free), NULL for NULL; *oom set when
 * the copy failed. */
char *fm_prov_dup_text(sqlite3_stmt *s, int col, int *oom);
/* The store's timestamp form for Unix time t. */
void fm_prov_iso_at(int64_t t, char out[32]);

/* Where a request keeps its lease (fm_lease.h). */
extern const fm_lease_table fm_prov_leases;

#endif
