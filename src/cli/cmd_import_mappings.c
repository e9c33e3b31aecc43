/* cmd_import_mappings.c: fieldmatch import-mappings: load a spreadsheet of
 * mappings into the database, all or nothing, with a per-row dry run. */
#include "cli.h"
#include "fm_store.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: fieldmatch import-mappings FILE.csv [--db fieldmatch.db]\n"
    "                         [--status accepted|proposed] [--dry-run] [--by NAME]\n"
    "                         [--columns query=NAME,ref=NAME,comment=NAME,...]\n"
    "                         [--verbose] [--busy-timeout MS]\n"
    "\n"
    "Load a CSV of mappings (a header row, then one query/reference pair per row).\n"
    "Columns default to an export's names (query_id, ref_id; optional query_vendor,\n"
    "ref_vendor, status, comment, score, decided_by, decided_at), so an export\n"
    "imports back unchanged; --columns names other headers.  Every row is checked\n"
    "first (unknown field, a field of the wrong side, duplicate pair, two accepted\n"
    "references for one query, a proposal over a decision); any error prints\n"
    "FILE:LINE: message and imports nothing.  Otherwise all rows are applied in\n"
    "one transaction.  --status forces a status on every row (default: the file's\n"
    "status column, else accepted).  --dry-run prints what each row would do and\n"
    "changes nothing (--verbose prints the same per-row lines for a real import).\n"
    "--busy-timeout sets how long each attempt waits for another writer (default\n"
    "2000 ms; a few attempts are made).  See docs/export.md.\n";

typedef struct report_ctx {
  int verbose;
} report_ctx;

static void report(void *vctx, const fm_imap_row *r) {
  report_ctx *c = vctx;
  if (r->action == FM_IMAP_ERROR) {
    fprintf(stderr, "%s:%u: %s\n", r->path, r->line, r->error);
    return;
  }
  if (!c->verbose) return;
  if (r->action == FM_IMAP_SUPERSEDES)
    printf("%s:%u: %s -> %s: supersedes %s\n", r->path, r->line, r->query, r->ref,
           r->superseded);
  else
    printf("%s:%u: %s -> %s: %s\n", r->path, r->line, r->query, r->ref,
           fm_imap_action_name(r->action));
}

int fm_cmd_import_mappings(int argc, char **argv) {
  const char *db = "fieldmatch.db", *file = NULL, *by = NULL;
  fm_imap_opts o;
  fm_imap_opts_default(&o);
  const char *columns_spec = NULL;
  int verbose = 0;
  fm_store_opts so;
  fm_store_opts_default(&so);
  for (int i = 1; i < argc; i++) {
    int missing = 0;
    const char *v;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(usage_text, stdout);
      return FM_EXIT_OK;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--db", &missing))) {
      db = v;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--by", &missing))) {
      by = v;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--status", &missing))) {
      if (strcmp(v, "accepted") && strcmp(v, "proposed"))
        return fm_cli_usage("import-mappings", "--status is accepted or proposed, not '%s'", v);
      o.status = fm_map_status_parse(v);
    } else if ((v = fm_cli_opt(argc, argv, &i, "--columns", &missing))) {
      columns_spec = v;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--busy-timeout", &missing))) {
      long ms = fm_cli_int(v);
      if (ms < 1 || ms > 600000)
        return fm_cli_usage("import-mappings", "--busy-timeout needs 1..600000 ms, not '%s'", v);
      so.busy_timeout_ms = (int)ms;
    } else if (!strcmp(argv[i], "--dry-run") || !strcmp(argv[i], "-n")) {
      o.dry_run = 1;
    } else if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v")) {
      verbose = 1;
    } else if (missing) {
      return fm_cli_usage("import-mappings", "%s needs a value", argv[i]);
    } else if (argv[i][0] == '-' && argv[i][1]) {
      return fm_cli_usage("import-mappings", "unknown argument '%s'", argv[i]);
    } else if (file) {
      return fm_cli_usage("import-mappings", "one FILE.csv only ('%s' and '%s')", file, argv[i]);
    } else {
      file = argv[i];
    }
  }
  if (!file) return fm_cli_usage("import-mappings", "FILE.csv is required");
  fm_error err;
  fm_error_init(&err);
  /* The parsed column names point into this copy; it lives until return. */
  char columns[1024];
  if (columns_spec) {
    if (strlen(columns_spec) >= sizeof columns)
      return fm_cli_usage("import-mappings", "--columns is too long");
    strcpy(columns, columns_spec);
    if (fm_imap_parse_columns(&o, columns, &err))
      return fm_cli_usage("import-mappings", "%s", err.msg);
  }
  if (!by) by = getenv("USER") ? getenv("USER") : "cli";
  o.actor = by;
  if (access(db, F_OK) != 0) {
    fm_error_set(&err, FM_ERR_NOTFOUND,
                 "%s: no such database (load dictionaries with 'fieldmatch import' first)", db);
    return fm_cli_fail(&err);
  }
  fm_store *st = NULL;
  if (fm_store_open(db, &so, &st, &err)) return fm_cli_fail(&err);
  report_ctx rc_ctx = {.verbose = verbose || o.dry_run};
  fm_imap_result res;
  fm_rc rc = fm_store_import_mappings(st, file, &o, report, &rc_ctx, &res, &err);
  fm_store_close(st);
  if (rc) return fm_cli_fail(&err);
  printf("%s%s: %zu row(s): %zu new accepted, %zu superseding, %zu proposed, %zu rejected, "
         "%zu unchanged, %zu skipped\n",
         o.dry_run ? "dry run: " : "", file, res.rows, res.new_accepted, res.superseded,
         res.proposed, res.rejected, res.unchanged, res.skipped);
  return FM_EXIT_OK;
}
