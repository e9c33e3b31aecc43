/* store_internal.h: what the store's own files share; not installed. */
#ifndef FM_STORE_INTERNAL_H
#define FM_STORE_INTERNAL_H

#include "fm_store.h"
#include "fm_store_sql.h"

struct fm_store {
  sqlite3 *db;
  char *path;
  fm_store_opts opts;
  int tx_depth;     /* > 0 while fm_store_tx runs a body */
  long fault_busy;  /* fm_store_fault_busy_after countdown; < 0 off */
  sqlite3_stmt *has_accepted; /* fm_store_has_accepted, prepared once */
};

/* Migration SQL for version v (1-based), NULL past the last. */
const char *fm_store_migration(int version);
int fm_store_nmigrations(void);

#endif
