/* cmd_import_mappings.c: fieldmatch import-mappings: load a spreadsheet of
 * mappings into the database, all or nothing, with a per-row dry run. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

typedef struct imap_args {
  const char *db, *by, *status, *columns;
  int dry_run, verbose, busy_ms;
} imap_args;

static const fm_cli_opt opts[] = {
    FM_OPT_DB(imap_args, db),
    FM_OPT_STR(imap_args, status, "--status", 0, "S", "accepted or proposed, for every row"),
    FM_OPT_FLAG(imap_args, dry_run, "--dry-run", 'n', "print what each row would do, change nothing"),
    FM_OPT_STR(imap_args, by, "--by", 0, "NAME", "who imports (default $USER)"),
    FM_OPT_STR(imap_args, columns, "--columns", 0, "SPEC", "query=NAME,ref=NAME,comment=NAME,..."),
    FM_OPT_FLAG(imap_args, verbose, "--verbose", 'v', "the per-row lines for a real import too"),
    FM_OPT_NUM(imap_args, busy_ms, FM_CLI_INT, "--busy-timeout", 1, 600000, "MS",
               "wait for another writer per attempt\n(default 2000)"),
    FM_OPT_END};

static const fm_cli_spec spec = {
    .cmd = "import-mappings",
    .usage = "usage: fieldmatch import-mappings FILE.csv [--db " FM_CLI_DB_DEFAULT "]\n"
             "                         [--status accepted|proposed] [--dry-run] [--by NAME]\n"
             "                         [--columns query=NAME,ref=NAME,comment=NAME,...]\n"
             "                         [--verbose] [--busy-timeout MS]\n",
    .about =
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
        "2000 ms; a few attempts are made).  The database must exist: its fields come\n"
        "from 'fieldmatch import' (docs/store.md).  See docs/export.md.\n",
    .opts = opts,
    .max_pos = 1};

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
  imap_args a = {.db = FM_CLI_DB_DEFAULT};
  int npos, prc = fm_cli_parse(&spec, argc, argv, &a, &npos);
  if (prc >= 0) return prc;
  if (!npos) return fm_cli_usage("import-mappings", "FILE.csv is required");
  const char *file = argv[0], *columns_spec = a.columns;
  fm_imap_opts o;
  fm_imap_opts_default(&o);
  o.dry_run = a.dry_run;
  if (a.status) {
    if (strcmp(a.status, "accepted") && strcmp(a.status, "proposed"))
      return fm_cli_usage("import-mappings", "--status is accepted or proposed, not '%s'",
                          a.status);
    o.status = fm_map_status_parse(a.status);
  }
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
  o.actor = a.by ? a.by : fm_cli_user();
  fm_store *st = NULL;
  if (fm_cli_open_store(a.db, FM_CLI_OPEN, a.busy_ms, &st)) return FM_EXIT_FAIL;
  report_ctx rc_ctx = {.verbose = a.verbose || o.dry_run};
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
