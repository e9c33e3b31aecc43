/* store_internal.h: the kernel's private state (src/store only). */
#ifndef FM_STORE_INTERNAL_H
#define FM_STORE_INTERNAL_H

#include "fm_store.h"
#include "fm_store_sql.h"

enum { FM_STORE_MAX_CACHED = 8 };

struct fm_store {
  sqlite3 *db;
  char *path;
  fm_store_opts opts;
  int tx_depth;     /* > 0 while fm_store_tx runs a body */
  long fault_busy;  /* fm_store_fault_busy_after countdown; < 0 off */
  struct {
    const char *sql; /* borrowed: the caller's static text */
    sqlite3_stmt *stmt;
  } cached[FM_STORE_MAX_CACHED]; /* fm_store_prepare_cached */
  size_t ncached;
};

#endif
