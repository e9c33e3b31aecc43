/* import_mappings.c: load a spreadsheet of mappings (CSV), all or nothing.
 *
 * Three stages:
 *   1. parse   read the whole file with the RFC 4180 reader; every row's
 *              cells stay in the reader's buffer (borrowed by imap_row) and
 *              row-local problems (empty id, bad status, score, time, a
 *              wrong number of cells) are recorded on the row;
 *   2. check   inside the transaction: resolve both fields, then the
 *              in-file rules (duplicate pair, two accepted references for
 *              one query) and the database rules (removed field, a proposal
 *              over an analyst's decision), and decide each row's action;
 *   3. apply   only when no row failed and this is not a dry run: every row
 *              through fm_store_decide in the same transaction.
 * The transaction body (check + apply) may run again after SQLITE_BUSY, so
 * it resets everything it computes; rows are reported only once the outcome
 * is final. */
#include "fm_import.h"
#include "fm_review.h"
#include "fm_store_sql.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *fm_imap_action_name(fm_imap_action a) {
  switch (a) {
  case FM_IMAP_ERROR: return "error";
  case FM_IMAP_NEW: return "new accepted";
  case FM_IMAP_SUPERSEDES: return "supersedes";
  case FM_IMAP_UNCHANGED: return "unchanged";
  case FM_IMAP_PROPOSED: return "proposed";
  case FM_IMAP_REJECTED: return "rejected";
  case FM_IMAP_SKIPPED: return "skipped";
  }
  return "unknown";
}

void fm_imap_opts_default(fm_imap_opts *o) { memset(o, 0, sizeof *o); }

/* ---- columns ----------------------------------------------------------------- */

enum {
  K_QUERY, K_REF, K_QVENDOR, K_RVENDOR, K_STATUS, K_COMMENT, K_SCORE, K_BY, K_AT, NKEY
};
static const char *const key_names[NKEY] = {"query",   "ref",   "query_vendor",
                                            "ref_vendor", "status", "comment",
                                            "score",   "decided_by", "decided_at"};
/* Default header names: the export's columns. */
static const char *const key_default[NKEY] = {"query_id",   "ref_id",   "query_vendor",
                                              "ref_vendor", "status",   "comment",
                                              "score",      "decided_by", "decided_at"};

static const char **opt_col(fm_imap_opts *o, int k) {
  const char **cols[NKEY] = {&o->col_query,   &o->col_ref,     &o->col_query_vendor,
                             &o->col_ref_vendor, &o->col_status, &o->col_comment,
                             &o->col_score,   &o->col_decided_by, &o->col_decided_at};
  return cols[k];
}

fm_rc fm_imap_parse_columns(fm_imap_opts *o, char *spec, fm_error *err) {
  fm_imap_opts work = *o; /* *o changes only when the whole spec parses */
  for (char *item = spec; item && *item;) {
    char *next = strchr(item, ',');
    if (next) *next++ = '\0';
    char *eq = strchr(item, '=');
    if (!eq || eq == item || !eq[1])
      return fm_error_set(err, FM_ERR_ARG,
                          "--columns: '%s' is not KEY=NAME (keys: query, ref, "
                          "query_vendor, ref_vendor, status, comment, score, "
                          "decided_by, decided_at)",
                          item);
    *eq = '\0';
    int k = 0;
    while (k < NKEY && strcmp(item, key_names[k])) k++;
    if (k == NKEY)
      return fm_error_set(err, FM_ERR_ARG,
                          "--columns: unknown key '%s' (keys: query, ref, query_vendor, "
                          "ref_vendor, status, comment, score, decided_by, decided_at)",
                          item);
    *opt_col(&work, k) = eq + 1;
    item = next;
  }
  *o = work;
  return FM_OK;
}

/* ---- rows -------------------------------------------------------------------- */

typedef struct imap_row {
  uint32_t line;
  const char *cell[NKEY]; /* borrowed from the reader; NULL: column absent */
  fm_map_status status;
  double score;           /* NAN when absent */
  char at[32];            /* normalized decided_at, or "" */
  const char *parse_error; /* stage 1 (arena); survives retries */
  /* stage 2, recomputed on every attempt: */
  int64_t qid, rid;
  fm_imap_action action;
  const char *error;      /* arena */
  const char *superseded; /* arena: ref id of the accepted mapping replaced */
} imap_row;

typedef struct imap {
  fm_store *st;
  const fm_imap_opts *o;
  const char *path;
  const char *actor;
  imap_row *rows;
  size_t n, cap;
  fm_arena arena; /* messages */
  size_t nerrors;
  /* Prepared once per attempt, finalized at its end. */
  sqlite3_stmt *find, *pair, *accepted;
} imap;

static const char *msgf(imap *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *msgf(imap *m, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return fm_arena_strdup(&m->arena, buf);
}

/* Trim blanks at both ends, in place (the cell is ours to modify). */
static const char *trim(const char *s) {
  while (*s == ' ' || *s == '\t') s++;
  char *e = (char *)s + strlen(s);
  while (e > s && (e[-1] == ' ' || e[-1] == '\t')) *--e = '\0';
  return s;
}

/* Stage 1: the file into m->rows. */
static fm_rc parse_file(imap *m, fm_csvfile *f, fm_error *err) {
  int got;
  fm_rc rc = fm_csvfile_next(f, &got, err);
  if (rc) return rc;
  if (!got)
    return fm_error_set(err, FM_ERR_PARSE, "%s:1: empty file (no header row)", m->path);
  long col[NKEY];
  for (int k = 0; k < NKEY; k++) {
    const char *want = *opt_col((fm_imap_opts *)m->o, k);
    col[k] = fm_csvfile_find_col(f, want ? want : key_default[k]);
    if (col[k] < 0 && (k == K_QUERY || k == K_REF || want))
      return fm_error_set(err, FM_ERR_PARSE,
                          "%s:%u: column '%s' (%s) not in the header; name it with "
                          "--columns %s=NAME",
                          m->path, fm_csvfile_line(f), want ? want : key_default[k],
                          key_names[k], key_names[k]);
  }
  size_t ncols = fm_csvfile_ncells(f);
  for (;;) {
    if ((rc = fm_csvfile_next(f, &got, err)) || !got) return rc;
    if (fm_grow((void **)&m->rows, &m->cap, m->n + 1, sizeof *m->rows))
      return fm_error_set(err, FM_ERR_NOMEM, "%s: out of memory", m->path);
    imap_row *r = &m->rows[m->n++];
    memset(r, 0, sizeof *r);
    r->line = fm_csvfile_line(f);
    r->score = NAN;
    for (int k = 0; k < NKEY; k++) r->cell[k] = col[k] < 0 ? NULL : fm_csvfile_cell(f, (size_t)col[k]);
    /* ROW_ERROR: record the message on the row and go on with the next
     * (A plain block, not do-while: its continue must reach the for loop.)
     */
#define ROW_ERROR(...)                                                     \
  {                                                                        \
    if (!(r->parse_error = msgf(m, __VA_ARGS__)))                          \
      return fm_error_set(err, FM_ERR_NOMEM, "%s: out of memory", m->path); \
    continue;                                                              \
  }
    if (fm_csvfile_ncells(f) != ncols)
      ROW_ERROR("%zu fields, but the header has %zu", fm_csvfile_ncells(f), ncols);
    for (int k = 0; k < NKEY; k++)
      if (r->cell[k] && k != K_COMMENT) r->cell[k] = trim(r->cell[k]);
    if (!*r->cell[K_QUERY]) ROW_ERROR("empty query id");
    for (int k = K_QVENDOR; k <= K_RVENDOR; k++)
      if (r->cell[k] && !*r->cell[k]) r->cell[k] = NULL; /* empty: any vendor */
    r->status = FM_MAP_ACCEPTED;
    if (m->o->status) {
      r->status = (fm_map_status)m->o->status;
    } else if (r->cell[K_STATUS] && *r->cell[K_STATUS]) {
      int st = fm_map_status_parse(r->cell[K_STATUS]);
      if (st < 0)
        ROW_ERROR("status '%s' is not accepted, proposed, rejected, superseded or "
                  "no_equivalent",
                  r->cell[K_STATUS]);
      r->status = (fm_map_status)st;
    }
    /* An export's no_equivalent row has no reference (and is skipped). */
    if (!*r->cell[K_REF] && r->status != FM_MAP_NO_EQUIVALENT)
      ROW_ERROR("%s: empty reference id", r->cell[K_QUERY]);
    if (r->cell[K_SCORE] && *r->cell[K_SCORE]) {
      char *end;
      r->score = strtod(r->cell[K_SCORE], &end);
      if (*end || !isfinite(r->score)) ROW_ERROR("score '%s' is not a number", r->cell[K_SCORE]);
    }
    if (r->cell[K_AT] && *r->cell[K_AT] &&
        fm_store_time_normalize(r->cell[K_AT], r->at, sizeof r->at))
      ROW_ERROR("decided_at '%s' is not a UTC time YYYY-MM-DD[THH:MM[:SS[.mmm]]][Z]",
                r->cell[K_AT]);
#undef ROW_ERROR
  }
}

/* ---- stage 2: check ---------------------------------------------------------- */

static fm_rc prep(imap *m, const char *sql, sqlite3_stmt **s, fm_error *err) {
  return *s ? FM_OK : fm_store_prepare(m->st, sql, s, err);
}

static void finalize_all(imap *m) {
  sqlite3_finalize(m->find);
  sqlite3_finalize(m->pair);
  sqlite3_finalize(m->accepted);
  m->find = m->pair = m->accepted = NULL;
}

/* Resolve (vendor, id) of `role` for row r: *fid, or an error message on
 * the row (and *fid = 0).  Fields of the other side and removed fields are
 * named as such; an id that two vendors share needs a vendor column. */
static fm_rc resolve(imap *m, imap_row *r, const char *vendor, const char *id,
                     const char *role, int64_t *fid, fm_error *err) {
  *fid = 0;
  fm_rc rc = prep(m,
                  "SELECT field_id, role, status, vendor FROM fields"
                  " WHERE id = ?1 AND (?2 IS NULL OR vendor = ?2)"
                  " ORDER BY role = ?3 DESC LIMIT 3",
                  &m->find, err);
  if (rc) return rc;
  sqlite3_stmt *s = m->find;
  sqlite3_reset(s);
  sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
  if (vendor) sqlite3_bind_text(s, 2, vendor, -1, SQLITE_STATIC);
  else sqlite3_bind_null(s, 2);
  sqlite3_bind_text(s, 3, role, -1, SQLITE_STATIC);
  int nmatch = 0, step;
  int64_t found = 0;
  char other_role[16] = "", fstatus[16] = "";
  while ((step = fm_store_step(m->st, s)) == SQLITE_ROW) {
    const char *frole = (const char *)sqlite3_column_text(s, 1);
    if (frole && !strcmp(frole, role)) {
      if (!nmatch++) {
        found = sqlite3_column_int64(s, 0);
        snprintf(fstatus, sizeof fstatus, "%s", sqlite3_column_text(s, 2));
      }
    } else if (!other_role[0] && frole) {
      snprintf(other_role, sizeof other_role, "%s", frole);
    }
  }
  if (step != SQLITE_DONE) rc = fm_store_steperr(m->st, step, err, "look up field");
  sqlite3_reset(s);
  if (rc) return rc;
  const char *side = !strcmp(role, "query") ? "query" : "reference";
  r->error = NULL;
  if (nmatch == 1 && strcmp(fstatus, "removed")) {
    *fid = found;
    return FM_OK;
  }
  if (nmatch > 1)
    r->error = msgf(m, "%s field '%s' exists for several vendors; add a %s column",
                    side, id, !strcmp(role, "query") ? "query_vendor" : "ref_vendor");
  else if (nmatch == 0 && other_role[0])
    r->error = msgf(m, "'%s' is a %s field, given as the %s", id,
                    !strcmp(other_role, "query") ? "query" : "reference", side);
  else if (nmatch == 0)
    r->error = msgf(m, "unknown %s field '%s'%s%s", side, id, vendor ? " of vendor " : "",
                    vendor ? vendor : "");
  else
    r->error = msgf(m, "%s field '%s' was removed from its dictionary", side, id);
  return r->error ? FM_OK : fm_error_set(err, FM_ERR_NOMEM, "out of memory");
}

/* The pair's status in the database ("" when there is no row) and the
 * query's accepted reference id ("" when none). */
static fm_rc db_state(imap *m, const imap_row *r, char pair_status[16], char acc_ref[256],
                      int64_t *acc_rid, fm_error *err) {
  pair_status[0] = acc_ref[0] = '\0';
  *acc_rid = 0;
  fm_rc rc;
  if ((rc = prep(m,
                 "SELECT status FROM mappings WHERE query_field_id = ?1"
                 " AND ref_field_id = ?2",
                 &m->pair, err)) ||
      (rc = prep(m,
                 "SELECT r.field_id, r.id FROM mappings m JOIN fields r"
                 " ON r.field_id = m.ref_field_id"
                 " WHERE m.query_field_id = ?1 AND m.status = 'accepted'",
                 &m->accepted, err)))
    return rc;
  sqlite3_reset(m->pair);
  sqlite3_bind_int64(m->pair, 1, r->qid);
  sqlite3_bind_int64(m->pair, 2, r->rid);
  int step = fm_store_step(m->st, m->pair);
  if (step == SQLITE_ROW)
    snprintf(pair_status, 16, "%s", sqlite3_column_text(m->pair, 0));
  sqlite3_reset(m->pair);
  if (step != SQLITE_ROW && step != SQLITE_DONE)
    return fm_store_steperr(m->st, step, err, "read mapping");
  sqlite3_reset(m->accepted);
  sqlite3_bind_int64(m->accepted, 1, r->qid);
  step = fm_store_step(m->st, m->accepted);
  if (step == SQLITE_ROW) {
    *acc_rid = sqlite3_column_int64(m->accepted, 0);
    snprintf(acc_ref, 256, "%s", sqlite3_column_text(m->accepted, 1));
  }
  sqlite3_reset(m->accepted);
  if (step != SQLITE_ROW && step != SQLITE_DONE)
    return fm_store_steperr(m->st, step, err, "read accepted mapping");
  return FM_OK;
}

static fm_rc check_rows(imap *m, fm_error *err) {
  fm_strmap pairs, acc; /* "qid:rid" -> row index; "qid" -> row index */
  fm_strmap_init(&pairs);
  fm_strmap_init(&acc);
  fm_rc rc = FM_OK;
  m->nerrors = 0;
  for (size_t i = 0; !rc && i < m->n; i++) {
    imap_row *r = &m->rows[i];
    r->qid = r->rid = 0;
    r->action = FM_IMAP_ERROR;
    r->error = r->parse_error;
    r->superseded = NULL;
    if (r->error) goto next;
    if ((rc = resolve(m, r, r->cell[K_QVENDOR], r->cell[K_QUERY], "query", &r->qid, err)))
      break;
    if (r->error) goto next;
    /* no_equivalent rows are skipped like superseded ones: a spreadsheet
     * carries them for reading; 'review none' records the decision. */
    if (r->status == FM_MAP_NO_EQUIVALENT) {
      r->action = FM_IMAP_SKIPPED;
      goto next;
    }
    if ((rc = resolve(m, r, r->cell[K_RVENDOR], r->cell[K_REF], "reference", &r->rid, err)))
      break;
    if (r->error) goto next;

    char key[48];
    int n = snprintf(key, sizeof key, "%lld:%lld", (long long)r->qid, (long long)r->rid);
    uint32_t first;
    int inserted;
    if (fm_strmap_put(&pairs, key, (size_t)n, (uint32_t)i, &first, &inserted)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "%s: out of memory", m->path);
      break;
    }
    if (!inserted) {
      r->error = msgf(m, "duplicate row: %s -> %s is already on line %u", r->cell[K_QUERY],
                      r->cell[K_REF], m->rows[first].line);
      goto next;
    }
    if (r->status == FM_MAP_ACCEPTED) {
      n = snprintf(key, sizeof key, "%lld", (long long)r->qid);
      if (fm_strmap_put(&acc, key, (size_t)n, (uint32_t)i, &first, &inserted)) {
        rc = fm_error_set(err, FM_ERR_NOMEM, "%s: out of memory", m->path);
        break;
      }
      if (!inserted) {
        r->error = msgf(m,
                        "%s is accepted as %s here but as %s on line %u; one accepted "
                        "reference per query field",
                        r->cell[K_QUERY], r->cell[K_REF], m->rows[first].cell[K_REF],
                        m->rows[first].line);
        goto next;
      }
    }

    char pair_status[16], acc_ref[256];
    int64_t acc_rid;
    if ((rc = db_state(m, r, pair_status, acc_ref, &acc_rid, err))) break;
    if (r->status == FM_MAP_SUPERSEDED) {
      r->action = FM_IMAP_SKIPPED;
    } else if (!strcmp(pair_status, fm_map_status_name(r->status))) {
      r->action = FM_IMAP_UNCHANGED;
    } else if (r->status == FM_MAP_PROPOSED &&
               (!strcmp(pair_status, "accepted") || !strcmp(pair_status, "rejected"))) {
      r->error = msgf(m,
                      "%s -> %s is %s in the database; a proposal does not override an "
                      "analyst's decision",
                      r->cell[K_QUERY], r->cell[K_REF], pair_status);
    } else if (r->status == FM_MAP_ACCEPTED) {
      r->action = acc_rid && acc_rid != r->rid ? FM_IMAP_SUPERSEDES : FM_IMAP_NEW;
      if (r->action == FM_IMAP_SUPERSEDES &&
          !(r->superseded = fm_arena_strdup(&m->arena, acc_ref)))
        r->error = NULL, rc = fm_error_set(err, FM_ERR_NOMEM, "%s: out of memory", m->path);
    } else {
      r->action = r->status == FM_MAP_PROPOSED ? FM_IMAP_PROPOSED : FM_IMAP_REJECTED;
    }
  next:
    if (!rc && r->action == FM_IMAP_ERROR) {
      if (!r->error) rc = fm_error_set(err, FM_ERR_NOMEM, "%s: out of memory", m->path);
      m->nerrors++;
    }
  }
  fm_strmap_free(&pairs);
  fm_strmap_free(&acc);
  return rc;
}

/* ---- stage 3: apply ---------------------------------------------------------- */

static fm_rc apply_rows(imap *m, fm_error *err) {
  /* Decisions before proposals, so a proposal in the file is not
   * superseded by an acceptance further down the same file. */
  static const fm_map_status order[] = {FM_MAP_REJECTED, FM_MAP_ACCEPTED, FM_MAP_PROPOSED};
  for (size_t p = 0; p < sizeof order / sizeof order[0]; p++) {
    for (size_t i = 0; i < m->n; i++) {
      imap_row *r = &m->rows[i];
      if (r->status != order[p] || r->action == FM_IMAP_UNCHANGED ||
          r->action == FM_IMAP_SKIPPED)
        continue;
      fm_decision d = {.query_field = r->qid,
                       .ref_field = r->rid,
                       .status = r->status,
                       .actor = m->actor,
                       .comment = r->cell[K_COMMENT],
                       .origin = "import",
                       .score = r->score,
                       .expect_accepted = -1,
                       /* The sheet's own provenance, when it has one. */
                       .decided_by = r->cell[K_BY] && *r->cell[K_BY] ? r->cell[K_BY] : NULL,
                       .decided_at = r->at[0] ? r->at : NULL};
      int64_t mid = 0;
      fm_rc rc = fm_store_decide(m->st, &d, &mid, err);
      if (rc) {
        fm_error_prefix(err, "%s:%u", m->path, r->line);
        return rc;
      }
    }
  }
  return FM_OK;
}

static fm_rc tx_body(fm_store *st, void *ctx, fm_error *err) {
  (void)st;
  imap *m = ctx;
  fm_rc rc = check_rows(m, err);
  if (!rc && !m->nerrors && !m->o->dry_run) rc = apply_rows(m, err);
  finalize_all(m);
  return rc;
}

/* ---- entry point ------------------------------------------------------------- */

fm_rc fm_store_import_mappings(fm_store *st, const char *path, const fm_imap_opts *o,
                               fm_imap_report_fn report, void *ctx, fm_imap_result *res,
                               fm_error *err) {
  fm_imap_opts dflt;
  fm_imap_opts_default(&dflt);
  if (!o) o = &dflt;
  if (res) memset(res, 0, sizeof *res);
  if (!st || !path) return fm_error_set(err, FM_ERR_ARG, "import-mappings: no store or file");
  if (o->status && o->status != FM_MAP_ACCEPTED && o->status != FM_MAP_PROPOSED &&
      o->status != FM_MAP_REJECTED)
    return fm_error_set(err, FM_ERR_ARG,
                        "import-mappings: status must be accepted, proposed or rejected");
  imap m = {.st = st, .o = o, .path = path, .actor = o->actor ? o->actor : "import"};
  fm_arena_init(&m.arena);
  fm_csvfile *f = NULL;
  fm_rc rc = fm_csvfile_open(path, &f, err);
  if (!rc) rc = parse_file(&m, f, err);
  if (!rc && o->dry_run) {
    /* A read transaction: one consistent snapshot, no write lock taken. */
    int began;
    if (!(rc = fm_store_read_begin(st, &began, err))) {
      rc = tx_body(st, &m, err);
      fm_store_read_end(st, began);
    }
  } else if (!rc) {
    rc = fm_store_tx(st, tx_body, &m, err);
  }
  finalize_all(&m);
  if (!rc && m.nerrors)
    rc = fm_error_set(err, FM_ERR_PARSE, "%s: %zu of %zu row%s with errors; nothing %s",
                      path, m.nerrors, m.n, m.n == 1 ? "" : "s",
                      o->dry_run ? "would be imported" : "imported");
  /* Report final outcomes: every row when it worked or for a dry run, the
   * failing rows otherwise. */
  int checked = rc == FM_OK || (rc == FM_ERR_PARSE && m.nerrors);
  fm_imap_result sum = {.rows = m.n, .errors = m.nerrors};
  for (size_t i = 0; checked && i < m.n; i++) {
    const imap_row *r = &m.rows[i];
    switch (r->action) {
    case FM_IMAP_NEW: sum.new_accepted++; break;
    case FM_IMAP_SUPERSEDES: sum.superseded++; break;
    case FM_IMAP_UNCHANGED: sum.unchanged++; break;
    case FM_IMAP_PROPOSED: sum.proposed++; break;
    case FM_IMAP_REJECTED: sum.rejected++; break;
    case FM_IMAP_SKIPPED: sum.skipped++; break;
    case FM_IMAP_ERROR: break;
    }
    if (!report || (m.nerrors && r->action != FM_IMAP_ERROR)) continue;
    fm_imap_row out = {.path = path,
                       .line = r->line,
                       .query = r->cell[K_QUERY] ? r->cell[K_QUERY] : "",
                       .ref = r->cell[K_REF] ? r->cell[K_REF] : "",
                       .status = r->status,
                       .action = r->action,
                       .superseded = r->superseded,
                       .error = r->error};
    report(ctx, &out);
  }
  if (res && checked) *res = sum;
  fm_csvfile_close(f);
  fm_free(m.rows);
  fm_arena_free(&m.arena);
  return rc;
}
