/* fm_review.h: mappings, review decisions, the review queue, export and
 * import of mappings (src/review, docs/review.md, docs/export.md): the one
 * owner of the tables mappings and review_queue, and the one writer of
 * mapping rows.  It reads the fields and candidates tables it joins with.
 *
 * Threads: one fm_store per thread (see fm_store.h).  Ownership: each
 * function says who frees what it returns. */
#ifndef FM_REVIEW_H
#define FM_REVIEW_H

#include <stdint.h>
#include <stdio.h>

#include "fm_util.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fm_store fm_store; /* fm_store.h */

/* The side of a field: the vendor being mapped (query) or the one mapped to
 * (reference).  Stored as fields.role "query" / "reference". */
typedef enum fm_role { FM_ROLE_QUERY = 1, FM_ROLE_REFERENCE = 2 } fm_role;

/* ---- mappings (the one write path for review decisions) ----------------- */

typedef enum fm_map_status {
  FM_MAP_PROPOSED = 1,
  FM_MAP_ACCEPTED,
  FM_MAP_REJECTED,
  FM_MAP_SUPERSEDED,
  /* The field has no equivalent in the reference dictionaries: a terminal
   * decision like an accepted mapping (the field leaves the review queue,
   * batch runs leave it alone), stored as a row with no reference field
   * (ref_field 0).  A later accept or pick supersedes it. */
  FM_MAP_NO_EQUIVALENT
} fm_map_status;

const char *fm_map_status_name(fm_map_status s); /* static "accepted" ... */
int fm_map_status_parse(const char *s);          /* -1 if unknown */

/* A decision about one (query field, reference field) pair. */
typedef struct fm_decision {
  int64_t query_field;  /* fields.field_id of a query-role field */
  int64_t ref_field;    /* fields.field_id of a reference-role field; 0 with
                           NO_EQUIVALENT, or REJECTED of a no-equivalent row */
  fm_map_status status; /* PROPOSED, ACCEPTED, REJECTED or NO_EQUIVALENT */
  const char *actor;    /* who (analyst name, token owner, "batch:<run>") */
  const char *comment;  /* may be NULL */
  const char *origin;   /* "model", "analyst", "import" */
  double score;         /* model score, or NAN */
  int64_t batch_run;    /* batch run that proposed it, or 0 */
  /* Optimistic concurrency: when >= 0, the decision fails with
   * FM_ERR_CONFLICT unless the query field's decided row (its accepted or
   * no_equivalent mapping) has this id (0 = none).  -1: no check. */
  int64_t expect_accepted;
  /* The audit action name; NULL: "propose", "accept" or "reject" from the
   * status ("pick" for an analyst's own choice, "import" ...). */
  const char *action;
  /* What the mapping row records as its decider and time; NULL: actor and
   * now.  import-mappings keeps a spreadsheet's own "decided_by/at" here,
   * while the audit row still names who ran the import and when. */
  const char *decided_by, *decided_at;
} fm_decision;

/* Apply a decision inside the caller's transaction (or its own when none is
 * open): one row per (query, ref) pair keeps its stable key (the pair
 * (query, none) for NO_EQUIVALENT); accepting or NO_EQUIVALENT supersedes
 * the field's previous accepted / no_equivalent row and its open proposals,
 * and resolves the field's review queue entry; rejecting the accepted (or
 * no_equivalent) row leaves the field undecided and queues it again.  Writes the audit row (before/after).  *mapping_id
 * (optional) receives the row's id. */
fm_rc fm_store_decide(fm_store *st, const fm_decision *d, int64_t *mapping_id,
                      fm_error *err);

/* Does a query field with this id (any vendor) have an accepted mapping?
 * One indexed lookup through a statement prepared once per store, for hot
 * paths (the HTTP lookup asks it on every request before deciding whether
 * a curated answer goes first).  *yes: 1 or 0. */
fm_rc fm_store_has_accepted(fm_store *st, const char *query_id, int *yes, fm_error *err);

/* The stable surrogate key of a (query, reference) pair:
 * "m_" + 16 hex digits of a hash of "qvendor\tqid\trvendor\trid". */
void fm_store_mapping_key(const char *qvendor, const char *qid,
                          const char *rvendor, const char *rid, char out[20]);


/* Flag the live (accepted or proposed) mappings that touch field field_id
 * with flag ("field_changed" or "field_removed"), one audit row each by
 * actor; call inside the caller's transaction (the dictionary import's).
 * *nflagged is incremented per mapping flagged. */
fm_rc fm_review_flag_field(fm_store *st, int64_t field_id, const char *flag,
                           const char *actor, size_t *nflagged, fm_error *err);

/* How many mappings have one status (for monitoring). */
typedef struct fm_status_count {
  char status[24]; /* as stored: "accepted" ... */
  int64_t n;
} fm_status_count;

/* The statuses that have mappings, ordered by name, into out[0..cap);
 * *n receives how many were written (statuses past cap are dropped).  A read
 * of its own. */
fm_rc fm_review_count_by_status(fm_store *st, fm_status_count *out, size_t cap, size_t *n,
                                fm_error *err);

/* ==== review: the analyst workflow (review.c) ============================
 * Reads return plain structs whose strings live in the struct's own arena
 * (freed by the matching *_free), so front ends (CLI, HTTP) print or serve
 * them; fm_review_*_json build jansson objects from them (caller owns the
 * json_t, json_decref).  Writes go through fm_store_decide. */

struct json_t; /* jansson's json_t, forward-declared to keep this header light */

/* A field as stored (strings borrowed from the owning result's arena; none
 * is NULL). */
typedef struct fm_field_row {
  int64_t field_id;
  const char *vendor, *id, *role, *name, *description, *type, *category;
  const char *status; /* "active" or "removed" */
} fm_field_row;

/* A mapping row with both of its fields.  flag may be NULL; score is NAN
 * when the mapping has none. */
typedef struct fm_mapping_row {
  int64_t mapping_id;
  const char *key;
  fm_field_row query, ref;
  fm_map_status status;
  const char *origin, *by, *at, *comment, *flag;
  double score;
  int64_t batch_run; /* 0 when not from a batch run */
} fm_mapping_row;

/* Resolve a field id given on a command line or in a URL.  vendor may be
 * NULL (then id must name one field of that role).  Errors, each naming
 * the id: FM_ERR_NOTFOUND (no such field), FM_ERR_ARG (it exists only in
 * the other role: "X is a reference field, not a query field"; or it is
 * ambiguous: the message lists the vendors to choose from). */
fm_rc fm_review_resolve(fm_store *st, const char *vendor, const char *id,
                        fm_role role, int64_t *field_id, fm_error *err);

/* -- the open review queue -- */
typedef struct fm_queue_item {
  fm_field_row query;
  const char *reason, *queued_at;
  double uncertainty, top_score, margin; /* NAN when unknown */
  int64_t batch_run;                     /* 0 when none */
  int has_top;                           /* top: the field's rank-1 candidate */
  fm_field_row top;                      /* from its latest batch run */
  double top_cand_score;
} fm_queue_item;

typedef struct fm_queue_page {
  fm_queue_item *v;
  size_t n;
  int64_t total; /* open entries in all */
  fm_arena arena;
} fm_queue_page;

/* Open queue entries, most uncertain first (uncertainty descending, then
 * oldest first, then field), rows [offset, offset + limit).  limit 0 = all.
 * Caller owns *out (fm_queue_page_free), also on failure. */
fm_rc fm_review_queue(fm_store *st, size_t limit, size_t offset, fm_queue_page *out,
                      fm_error *err);
void fm_queue_page_free(fm_queue_page *p);

/* -- one query field -- */
typedef struct fm_review_cand {
  int rank;
  double score;
  fm_field_row ref;
  fm_map_status status; /* of the (field, ref) mapping; 0 when there is none */
} fm_review_cand;

typedef struct fm_field_view {
  fm_field_row field;
  int64_t batch_run;       /* the latest batch run with candidates; 0 = none */
  fm_review_cand *cands;   /* its ranked candidates */
  size_t ncands;
  fm_mapping_row *decisions; /* every mapping row of the field, newest first */
  size_t ndecisions;
  const fm_mapping_row *accepted; /* into decisions[], NULL when none */
  const fm_mapping_row *no_equivalent; /* the field's no_equivalent row, or NULL */
  int queued;              /* an open review queue entry */
  const char *queue_reason; /* NULL unless queued */
  fm_arena arena;
} fm_field_view;

/* The view of query field `query_field` (a fields.field_id) an analyst
 * decides from, read in one snapshot.  Caller owns *out (fm_field_view_free),
 * also on failure. */
fm_rc fm_review_show(fm_store *st, int64_t query_field, fm_field_view *out,
                     fm_error *err);
void fm_field_view_free(fm_field_view *v);

/* The accepted mapping of a query field (for curated-first lookups).
 * *found = 0 when it has none.  Strings are copied into `arena` (the
 * caller's). */
fm_rc fm_review_accepted(fm_store *st, int64_t query_field, fm_arena *arena,
                         fm_mapping_row *out, int *found, fm_error *err);

/* The mappings that point at reference field ref_field (a fields.field_id)
 * with status accepted or proposed, accepted first, at most max into out;
 * *n how many.  Strings are copied into arena (the caller's).  The other
 * direction of fm_review_accepted: the reconciliation service's view page
 * and data extension (which Bloomberg fields are curated onto this one). */
typedef struct fm_ref_mapping {
  const char *query_vendor, *query_id, *status;
} fm_ref_mapping;
fm_rc fm_review_mapped_to(fm_store *st, int64_t ref_field, fm_arena *arena,
                          fm_ref_mapping *out, size_t max, size_t *n, fm_error *err);

/* -- history -- */
typedef struct fm_audit_row {
  int64_t audit_id;
  const char *at, *actor, *action, *entity, *entity_key;
  const char *before, *after; /* JSON texts, NULL when absent */
} fm_audit_row;

typedef struct fm_audit_list {
  fm_audit_row *v;
  size_t n;
  fm_arena arena;
} fm_audit_list;

/* The audit rows of every mapping of a query field, oldest first.  Caller
 * owns *out (fm_audit_list_free), also on failure. */
fm_rc fm_review_history(fm_store *st, int64_t query_field, fm_audit_list *out,
                        fm_error *err);
void fm_audit_list_free(fm_audit_list *l);

/* -- decisions -- */
typedef enum fm_review_action {
  FM_REVIEW_ACCEPT = 1, /* accept a candidate or a proposed mapping */
  FM_REVIEW_REJECT,     /* reject a pair (a candidate, a proposal, the accepted one) */
  FM_REVIEW_PICK,       /* accept any reference field of the store */
  FM_REVIEW_COMMENT,    /* append a comment to an existing mapping */
  FM_REVIEW_NONE        /* the field has no equivalent (ref_field 0) */
} fm_review_action;

typedef struct fm_review_req {
  fm_review_action action;
  int64_t query_field, ref_field; /* fields.field_id (fm_review_resolve); ref_field
                                     0: NONE, or REJECT / COMMENT of the field's
                                     no-equivalent row */
  const char *by;                 /* who; required */
  const char *comment;            /* may be NULL (required for COMMENT) */
  /* Optimistic check: when >= 0, fail with FM_ERR_CONFLICT unless the
   * field's accepted reference is this field_id (0 = none accepted) and it
   * is marked no_equivalent exactly when expect_none is set. */
  int64_t expect_ref;
  int expect_none;
} fm_review_req;

/* Apply one analyst action in one transaction: checks, then
 * fm_store_decide (or the comment update), each with its audit row.
 * ACCEPT of a reference that is neither a candidate of the field nor in a
 * mapping row fails with FM_ERR_ARG (use PICK); COMMENT on a pair with no
 * mapping row is FM_ERR_NOTFOUND.  On failure nothing is changed.
 * *mapping_id (optional) receives the row's id. */
fm_rc fm_review_apply(fm_store *st, const fm_review_req *req, int64_t *mapping_id,
                      fm_error *err);

/* -- training pairs -- */
enum { FM_EXPORT_ACCEPTED = 1, FM_EXPORT_REJECTED = 2 };

/* Write decisions as TSV to fp: the header
 * "query_id\treference_id\tstatus\tby\tat", then one row per mapping whose
 * status is in `which` (FM_EXPORT_* bits), ordered by query id, reference
 * id.  fm_pairs_load reads the first two columns of every row as a
 * positive pair, so only an accepted-only file is fit for train_pairs.
 * Tabs and line breaks inside `by` become spaces.  *nrows optional. */
fm_rc fm_review_export_pairs(fm_store *st, FILE *fp, unsigned which, size_t *nrows,
                             fm_error *err);

/* Write the query fields decided no_equivalent as TSV to fp: the header
 * "query_id\tquery_vendor\tby\tat", one row per field ordered by id (the
 * negatives a learner needs: issue 9).  *nrows optional. */
fm_rc fm_review_export_none(fm_store *st, FILE *fp, size_t *nrows, fm_error *err);

/* -- progress (stats.c) -- */
typedef struct fm_review_dict_stats {
  char vendor[64], source[192]; /* the query dictionary */
  /* Its active fields, each in exactly one state (the first that holds):
   * accepted, no_equivalent, queued (open queue entry), proposed (an open
   * proposal), rejected (only rejections), unmapped. */
  int64_t total, accepted, no_equivalent, queued, proposed, rejected, unmapped;
} fm_review_dict_stats;

/* One row per query dictionary (vendor, source), ordered by them.  Caller
 * owns *out (fm_free), NULL when *n is 0. */
fm_rc fm_review_stats(fm_store *st, fm_review_dict_stats **out, size_t *n, fm_error *err);

typedef struct fm_review_day {
  char day[11]; /* YYYY-MM-DD (UTC) */
  int64_t accepted, rejected, no_equivalent; /* accept + pick; reject; no_equivalent */
} fm_review_day;

/* Analyst decisions per UTC day over the last `days` days (1..3660), from
 * the audit log, days with none left out, oldest first.  Caller owns *out
 * (fm_free). */
fm_rc fm_review_daily(fm_store *st, int days, fm_review_day **out, size_t *n, fm_error *err);

/* Apply n analyst actions (ACCEPT, REJECT, PICK or NONE) in ONE transaction,
 * each through the same checks, decision path and audit row as
 * fm_review_apply: all or nothing.  On failure nothing is changed and
 * *failed (optional) is the index of the request that failed.
 * mapping_ids (optional, n entries) receives each row's id. */
fm_rc fm_review_apply_bulk(fm_store *st, const fm_review_req *reqs, size_t n,
                           int64_t *mapping_ids, size_t *failed, fm_error *err);

/* -- the open review queue, filtered -- */
typedef struct fm_queue_filter {
  const char *vendor;   /* the query field's vendor; NULL: any */
  const char *category; /* exact category; NULL: any */
  const char *reason;   /* the queue reason; NULL: any */
  const char *text;     /* substring of the id or name (case-insensitive); NULL: any */
  double min_unc, max_unc; /* uncertainty band [min, max]; NAN: open */
} fm_queue_filter;

/* fm_review_queue over the entries passing f (NULL: all); total counts
 * those. */
fm_rc fm_review_queue_find(fm_store *st, const fm_queue_filter *f, size_t limit,
                           size_t offset, fm_queue_page *out, fm_error *err);

/* -- decisions, for the learning layer (decisions.c) -- */
typedef struct fm_decided {
  const char *query_id, *ref_id; /* field ids */
  const char *status;            /* "accepted", "rejected" or "no_equivalent" */
} fm_decided;

/* Every mapping decided accepted, rejected or "no equivalent", oldest
 * decision first.  *out is the caller's (fm_free), its strings in `arena`
 * (the caller's); *out is NULL and *n 0 when there are none. */
fm_rc fm_review_decisions(fm_store *st, fm_arena *arena, fm_decided **out, size_t *n,
                          fm_error *err);

/* -- JSON views (for --json and the HTTP server); NULL on allocation
 * failure; caller owns the result (json_decref). -- */
struct json_t *fm_review_field_json(const fm_field_row *f);
struct json_t *fm_review_mapping_json(const fm_mapping_row *m);
struct json_t *fm_review_queue_json(const fm_queue_page *p);
struct json_t *fm_review_view_json(const fm_field_view *v);
struct json_t *fm_review_history_json(const fm_audit_list *l);
/* ==== end review ========================================================= */


/* ---- export / import-mappings (export.c, import_mappings.c) -------------- */

/* A byte sink: where an export streams its output.  write must take all n
 * bytes or fail (filling err); it is called once per row (and for the
 * header / array brackets), never with the whole result.  The CLI writes to
 * a FILE*; the HTTP server plugs in a callback that writes to a response. */
typedef fm_rc (*fm_sink_write_fn)(void *ctx, const void *p, size_t n, fm_error *err);
typedef struct fm_sink {
  fm_sink_write_fn write;
  void *ctx;
} fm_sink;

/* A sink writing to fp (borrowed; not closed).  A short write is FM_ERR_IO
 * with strerror(errno). */
fm_sink fm_sink_file(FILE *fp);

typedef enum fm_export_format {
  FM_EXPORT_CSV = 1, /* RFC 4180, one header row */
  FM_EXPORT_JSONL,   /* one JSON object per line */
  FM_EXPORT_JSON     /* one JSON array of those objects */
} fm_export_format;

int fm_export_format_parse(const char *s); /* "csv" ...; -1 if unknown */

/* Normalize a UTC time "YYYY-MM-DD[THH:MM[:SS[.mmm]]][Z]" to the store's
 * form "YYYY-MM-DDTHH:MM:SS.mmmZ" (missing parts are zero) into out (size
 * n >= 25).  Returns 0, or -1 when s is not of that shape (out is then ""). */
int fm_store_time_normalize(const char *s, char *out, size_t n);

typedef struct fm_export_opts {
  int status;                /* an fm_map_status, or 0 for every status */
  fm_export_format format;   /* 0 means CSV */
  int with_candidates;       /* K >= 0: top-K candidates of the latest batch run */
  const char *changed_since; /* decided_at >= this (fm_store_time_normalize
                                form); NULL: every row */
  int crlf;                  /* CSV only: CRLF line ends (RFC 4180) instead of LF */
} fm_export_opts;

/* The CSV / JSON member names of an export, in order (static storage);
 * the candidate columns cand<i>_id, cand<i>_score follow them. */
extern const char *const fm_export_columns[];
extern const size_t fm_export_ncolumns;

/* Stream the mappings selected by o (ordered by mapping_key) to sink, one
 * SQLite statement stepped row by row: memory does not grow with the number
 * of rows.  The column order and number format are documented in
 * docs/export.md.  *nrows (optional) receives the number of mappings written.
 * Errors: FM_ERR_ARG (bad option), FM_ERR_DB/BUSY, the sink's error; the
 * sink may then have received a partial document. */
fm_rc fm_store_export(fm_store *st, const fm_export_opts *o, const fm_sink *sink,
                      size_t *nrows, fm_error *err);

/* What import-mappings does with one row. */
typedef enum fm_imap_action {
  FM_IMAP_ERROR = 0,  /* the row is invalid (see error) */
  FM_IMAP_NEW,        /* a new accepted mapping (the field had none) */
  FM_IMAP_SUPERSEDES, /* accepted, superseding the field's accepted mapping */
  FM_IMAP_UNCHANGED,  /* the pair already has this status: nothing to do */
  FM_IMAP_PROPOSED,   /* a proposal (new or re-proposed) */
  FM_IMAP_REJECTED,   /* a rejection */
  FM_IMAP_SKIPPED     /* a "superseded" row of an export: history, not imported */
} fm_imap_action;

const char *fm_imap_action_name(fm_imap_action a); /* static "new accepted" ... */

/* One row's outcome, handed to the report callback (all strings borrowed
 * for the duration of the call). */
typedef struct fm_imap_row {
  const char *path;
  uint32_t line;          /* where the record starts */
  const char *query, *ref; /* the ids as written */
  fm_map_status status;   /* the status the row asks for */
  fm_imap_action action;
  const char *superseded; /* SUPERSEDES: the reference id it replaces */
  const char *error;      /* ERROR: what is wrong */
} fm_imap_row;

typedef void (*fm_imap_report_fn)(void *ctx, const fm_imap_row *row);

typedef struct fm_imap_opts {
  int status;           /* force this status on every row; 0: the file's
                           status column when present, else accepted */
  int dry_run;          /* validate and report; change nothing */
  const char *actor;    /* who imports (audit log); NULL: "import" */
  /* Column names (NULL: the export's names).  query and ref are required;
   * the others are used when present in the header. */
  const char *col_query, *col_ref, *col_query_vendor, *col_ref_vendor, *col_status,
      *col_comment, *col_score, *col_decided_by, *col_decided_at;
} fm_imap_opts;

void fm_imap_opts_default(fm_imap_opts *o);

/* Apply a "--columns" spec "key=NAME,key=NAME" (keys: query, ref,
 * query_vendor, ref_vendor, status, comment, score, decided_by, decided_at)
 * to o.  The names point into spec (borrowed: keep spec alive); spec is
 * modified in place.  Unknown key or a malformed item: FM_ERR_ARG, and o is
 * left as it was. */
fm_rc fm_imap_parse_columns(fm_imap_opts *o, char *spec, fm_error *err);

typedef struct fm_imap_result {
  size_t rows, errors;
  size_t new_accepted, superseded, unchanged, proposed, rejected, skipped;
} fm_imap_result;

/* Import the spreadsheet of mappings at path, all or nothing.  Every row is
 * validated first, inside the write transaction (unknown or removed field,
 * a field of the wrong side, duplicate pair, two accepted references for one
 * query, a proposal over an analyst's decision, bad status / score / time);
 * if any row fails nothing is written and the call returns FM_ERR_PARSE
 * ("path: N of M rows have errors; nothing imported").  Otherwise every row
 * goes through fm_store_decide (origin "import") in ONE transaction:
 * rejections, then acceptances, then proposals, each in file order.  A
 * row's decided_by / decided_at, when given, are kept on the mapping (so an
 * export round-trips); the audit log records the import by o->actor.
 * report (optional) is called once per row after the outcome is final (for
 * a failed import: for the rows with errors).  Malformed CSV: FM_ERR_PARSE
 * naming path:line.  A locked database: FM_ERR_BUSY, nothing changed. */
fm_rc fm_store_import_mappings(fm_store *st, const char *path, const fm_imap_opts *o,
                               fm_imap_report_fn report, void *ctx, fm_imap_result *res,
                               fm_error *err);


#ifdef __cplusplus
}
#endif

#endif /* FM_REVIEW_H */
