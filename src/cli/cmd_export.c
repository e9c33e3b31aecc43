/* cmd_export.c: fieldmatch export: stream the mappings of a database as
 * CSV, JSON Lines or a JSON array, to stdout or atomically to a file. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

typedef struct export_args {
  const char *db, *out, *status, *format;
  fm_export_opts o;
} export_args;

static const fm_cli_opt opts[] = {
    FM_OPT_REQ(export_args, status, "--status", 0, "S",
               "accepted, proposed, rejected, superseded or all"),
    FM_OPT_STR(export_args, format, "--format", 0, "F", "csv (default), jsonl or json"),
    FM_OPT_DB(export_args, db),
    FM_OPT_STR(export_args, out, "--output", 'o', "FILE",
               "write FILE atomically (default: stdout)"),
    FM_OPT_NUM(export_args, o.with_candidates, FM_CLI_INT, "--with-candidates", 1, 1000, "K",
               "add the top K candidates of the latest batch run"),
    FM_OPT_STR(export_args, o.changed_since, "--changed-since", 0, "TIME",
               "only mappings decided at or after TIME"),
    FM_OPT_FLAG(export_args, o.crlf, "--crlf", 0, "CSV with CRLF line ends"),
    FM_OPT_END};

static const fm_cli_spec spec = {
    .cmd = "export",
    .usage = "usage: fieldmatch export --status accepted|proposed|rejected|superseded|all\n"
             "                         [--format csv|jsonl|json] [--db " FM_CLI_DB_DEFAULT "] [-o FILE]\n"
             "                         [--with-candidates K] [--changed-since TIME] [--crlf]\n",
    .about =
        "Write the mappings with the given status, ordered by mapping_key, as CSV\n"
        "(RFC 4180, one header row, LF line ends; --crlf for CRLF), JSON Lines or one\n"
        "JSON array (default csv).  Columns, in this order: mapping_key, query_vendor,\n"
        "query_id, query_name, ref_vendor, ref_id, ref_name, status, origin, score,\n"
        "decided_by, decided_at, comment, flag; --with-candidates K adds the top K\n"
        "candidates of the latest batch run (cand1_id, cand1_score, ... in CSV, a\n"
        "\"candidates\" array in JSON).  --changed-since keeps mappings decided at or\n"
        "after TIME (UTC, YYYY-MM-DD[THH:MM[:SS[.mmm]]]).  Output streams row by row;\n"
        "with -o the file is replaced atomically once complete.  The database must\n"
        "exist (docs/store.md).  See docs/export.md.\n",
    .opts = opts};

int fm_cmd_export(int argc, char **argv) {
  export_args x = {.db = FM_CLI_DB_DEFAULT, .format = "csv"};
  int npos, prc = fm_cli_parse(&spec, argc, argv, &x, &npos);
  if (prc >= 0) return prc;
  const char *db = x.db, *out = x.out, *status = x.status, *format = x.format;
  fm_export_opts o = x.o;
  if (strcmp(status, "all")) {
    o.status = fm_map_status_parse(status);
    if (o.status < 0)
      return fm_cli_usage("export", "unknown --status '%s' (accepted, proposed, rejected, "
                                    "superseded, no_equivalent or all)", status);
  }
  int f = fm_export_format_parse(format);
  if (f < 0) return fm_cli_usage("export", "unknown --format '%s' (csv, jsonl, json)", format);
  o.format = (fm_export_format)f;
  char since[32];
  if (o.changed_since && fm_store_time_normalize(o.changed_since, since, sizeof since))
    return fm_cli_usage("export", "--changed-since '%s' is not YYYY-MM-DD[THH:MM[:SS[.mmm]]]",
                        o.changed_since);

  fm_error err;
  fm_error_init(&err);
  fm_store *st = NULL;
  if (fm_cli_open_store(db, FM_CLI_READONLY, 0, &st)) return FM_EXIT_FAIL;
  fm_atomic a = {0};
  FILE *fp = stdout;
  int rc = FM_EXIT_FAIL;
  if (out) {
    if (fm_atomic_open(&a, out, &err)) goto done;
    fp = a.fp;
  }
  fm_sink sink = fm_sink_file(fp);
  size_t n = 0;
  if (fm_store_export(st, &o, &sink, &n, &err)) {
    if (out) fm_atomic_abort(&a);
    goto done;
  }
  if (out ? fm_atomic_commit(&a, &err) : (fflush(stdout) != 0
                                              ? fm_error_set(&err, FM_ERR_IO, "stdout: write failed")
                                              : FM_OK))
    goto done;
  if (out) fprintf(stderr, "fieldmatch: exported %zu mapping(s) to %s\n", n, out);
  rc = FM_EXIT_OK;
done:
  if (rc != FM_EXIT_OK) fm_cli_fail(&err);
  fm_store_close(st);
  return rc;
}
