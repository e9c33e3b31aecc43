/* fm_test_export.h: the store fixture shared by test_export.c (exports)
 * and test_import_mappings.c (import-mappings): a database with 4 Bloomberg
 * query fields (one shared with another vendor) and 5 Refinitiv reference
 * fields, decisions, a dump of what an import could touch, and an export
 * into memory through a sink that can be told to fail.  Header-only, like
 * fm_test_util.h; include after fm_test.h, fm_test_util.h and
 * fm_test_store.h.  Every function returning memory says who frees it. */
#ifndef FM_TEST_EXPORT_H
#define FM_TEST_EXPORT_H

#include "fm_store.h"
#include "fm_store_sql.h"
#include "fm_test.h"
#include "fm_test_store.h"
#include "fm_test_util.h"

#include <math.h>
#include <stdio.h>
#include <unistd.h>

static inline void add(fm_fieldset *fs, const char *vendor, const char *id, const char *name) {
  fm_field f = {.vendor = vendor, .id = id, .name = name, .source = "test",
                .line = (uint32_t)fs->n + 1};
  fm_fieldset_add(fs, &f);
}

/* A database with 4 Bloomberg query fields (one shared with another vendor)
 * and 5 Refinitiv reference fields.  Caller closes it; NULL on failure
 * (printed). */
static inline fm_store *fixture(const char *name) {
  unlink(tmp(name));
  fm_store *st = NULL;
  fm_error e;
  fm_error_init(&e);
  if (fm_store_open(tmp(name), create_opts(), &st, &e)) {
    fprintf(stderr, "open: %s\n", e.msg);
    return NULL;
  }
  fm_fieldset q, q2, r;
  fm_fieldset_init(&q);
  fm_fieldset_init(&q2);
  fm_fieldset_init(&r);
  add(&q, "bloomberg", "PX_LAST", "Last Price");
  add(&q, "bloomberg", "PX_BID", "Bid, \"best\"");
  add(&q, "bloomberg", "PX_ASK", "Ask");
  add(&q, "bloomberg", "VOLUME", "Volume");
  add(&q2, "ice", "VOLUME", "Volume (ICE)");
  add(&r, "refinitiv", "TRDPRC_1", "LAST");
  add(&r, "refinitiv", "BID", "BID");
  add(&r, "refinitiv", "ASK", "ASK");
  add(&r, "refinitiv", "ACVOL_1", "VOLUME");
  add(&r, "refinitiv", "OLD_FIELD", "gone soon");
  int ok = fm_store_import_fields(st, "bbg", FM_ROLE_QUERY, &q, "t", NULL, &e) == FM_OK &&
           fm_store_import_fields(st, "ice", FM_ROLE_QUERY, &q2, "t", NULL, &e) == FM_OK &&
           fm_store_import_fields(st, "rdm", FM_ROLE_REFERENCE, &r, "t", NULL, &e) == FM_OK;
  /* v2 of the reference dictionary drops OLD_FIELD: a removed field. */
  fm_fieldset_free(&r);
  fm_fieldset_init(&r);
  add(&r, "refinitiv", "TRDPRC_1", "LAST");
  add(&r, "refinitiv", "BID", "BID");
  add(&r, "refinitiv", "ASK", "ASK");
  add(&r, "refinitiv", "ACVOL_1", "VOLUME");
  ok = ok && fm_store_import_fields(st, "rdm", FM_ROLE_REFERENCE, &r, "t", NULL, &e) == FM_OK;
  fm_fieldset_free(&q);
  fm_fieldset_free(&q2);
  fm_fieldset_free(&r);
  if (!ok) {
    fprintf(stderr, "fixture: %s\n", e.msg);
    fm_store_close(st);
    return NULL;
  }
  return st;
}

static inline int64_t fid(fm_store *st, const char *vendor, const char *id) {
  return fm_store_field_id(st, vendor, id, 0);
}

static inline fm_rc decide(fm_store *st, const char *q, const char *r, fm_map_status s,
                           const char *comment, double score) {
  fm_decision d = {.query_field = fid(st, "bloomberg", q),
                   .ref_field = fid(st, "refinitiv", r),
                   .status = s,
                   .actor = "ana",
                   .comment = comment,
                   .origin = "analyst",
                   .score = score,
                   .expect_accepted = -1};
  fm_error e;
  fm_error_init(&e);
  fm_rc rc = fm_store_decide(st, &d, NULL, &e);
  if (rc) fprintf(stderr, "decide: %s\n", e.msg);
  return rc;
}

/* Everything an import could touch, as one text, to compare before/after.
 * Caller frees (fm_free). */
static inline char *dump(fm_store *st) {
  fm_buf b;
  fm_buf_init(&b);
  const char *sql[] = {
      ("SELECT mapping_key, status, origin, score, decided_by, decided_at, comment, flag"
       " FROM mappings ORDER BY mapping_key"),
      "SELECT audit_id, action, entity_key FROM audit_log ORDER BY audit_id",
      "SELECT query_field_id, resolved_at FROM review_queue ORDER BY 1"};
  for (size_t k = 0; k < sizeof sql / sizeof sql[0]; k++) {
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(fm_store_db(st), sql[k], -1, &s, NULL) != SQLITE_OK) break;
    while (sqlite3_step(s) == SQLITE_ROW) {
      for (int i = 0; i < sqlite3_column_count(s); i++) {
        const unsigned char *t = sqlite3_column_text(s, i);
        fm_buf_printf(&b, "%s|", t ? (const char *)t : "NULL");
      }
      fm_buf_putc(&b, '\n');
    }
    sqlite3_finalize(s);
  }
  return b.buf ? b.buf : fm_strdup("");
}

/* A sink into an fm_buf that can be told to fail on its Nth call. */
typedef struct mem_sink {
  fm_buf b;
  int calls, fail_at;
  size_t max_chunk;
} mem_sink;

static inline fm_rc mem_write(void *ctx, const void *p, size_t n, fm_error *err) {
  mem_sink *m = ctx;
  if (++m->calls == m->fail_at) return fm_error_set(err, FM_ERR_IO, "client went away");
  if (n > m->max_chunk) m->max_chunk = n;
  return fm_buf_append(&m->b, p, n) ? fm_error_set(err, FM_ERR_NOMEM, "oom") : FM_OK;
}

static inline fm_rc export_mem(fm_store *st, const fm_export_opts *o, mem_sink *m,
                               size_t *n, fm_error *e) {
  fm_buf_reset(&m->b);
  m->calls = 0;
  fm_sink sink = {mem_write, m};
  fm_rc rc = fm_store_export(st, o, &sink, n, e);
  if (!m->b.buf) fm_buf_puts(&m->b, "");
  return rc;
}

/* Three mappings: PX_LAST accepted (awkward comment), PX_BID proposed
 * (score), PX_ASK rejected. */
static inline void three_mappings(fm_store *st) {
  CHECK(decide(st, "PX_LAST", "TRDPRC_1", FM_MAP_ACCEPTED,
               "say \"hi\", then\nnewline; caf\xc3\xa9 \xe2\x82\xac", NAN) == FM_OK);
  CHECK(decide(st, "PX_BID", "BID", FM_MAP_PROPOSED, NULL, 0.1) == FM_OK);
  CHECK(decide(st, "PX_ASK", "ASK", FM_MAP_REJECTED, "no", NAN) == FM_OK);
}

#endif
