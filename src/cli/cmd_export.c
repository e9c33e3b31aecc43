/* cmd_export.c: fieldmatch export: stream the mappings of a database as
 * CSV, JSON Lines or a JSON array, to stdout or atomically to a file. */
#include "cli.h"
#include "fm_store.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: fieldmatch export --status accepted|proposed|rejected|superseded|all\n"
    "                         [--format csv|jsonl|json] [--db fieldmatch.db] [-o FILE]\n"
    "                         [--with-candidates K] [--changed-since TIME] [--crlf]\n"
    "\n"
    "Write the mappings with the given status, ordered by mapping_key, as CSV\n"
    "(RFC 4180, one header row, LF line ends; --crlf for CRLF), JSON Lines or one\n"
    "JSON array (default csv).  Columns, in this order: mapping_key, query_vendor,\n"
    "query_id, query_name, ref_vendor, ref_id, ref_name, status, origin, score,\n"
    "decided_by, decided_at, comment, flag; --with-candidates K adds the top K\n"
    "candidates of the latest batch run (cand1_id, cand1_score, ... in CSV, a\n"
    "\"candidates\" array in JSON).  --changed-since keeps mappings decided at or\n"
    "after TIME (UTC, YYYY-MM-DD[THH:MM[:SS[.mmm]]]).  Output streams row by row;\n"
    "with -o the file is replaced atomically once complete.  See docs/export.md.\n";

int fm_cmd_export(int argc, char **argv) {
  const char *db = "fieldmatch.db", *out = NULL, *status = NULL, *format = "csv";
  fm_export_opts o = {0};
  for (int i = 1; i < argc; i++) {
    int missing = 0;
    const char *v;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(usage_text, stdout);
      return FM_EXIT_OK;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--db", &missing))) {
      db = v;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--status", &missing))) {
      status = v;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--format", &missing))) {
      format = v;
    } else if ((v = fm_cli_opt(argc, argv, &i, "-o", &missing)) ||
               (v = fm_cli_opt(argc, argv, &i, "--output", &missing))) {
      out = v;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--with-candidates", &missing))) {
      long k = fm_cli_int(v);
      if (k < 1 || k > 1000)
        return fm_cli_usage("export", "--with-candidates needs a number 1..1000, not '%s'", v);
      o.with_candidates = (int)k;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--changed-since", &missing))) {
      o.changed_since = v;
    } else if (!strcmp(argv[i], "--crlf")) {
      o.crlf = 1;
    } else if (missing) {
      return fm_cli_usage("export", "%s needs a value", argv[i]);
    } else {
      return fm_cli_usage("export", "unknown argument '%s'", argv[i]);
    }
  }
  if (!status) return fm_cli_usage("export", "--status is required");
  if (strcmp(status, "all")) {
    o.status = fm_map_status_parse(status);
    if (o.status < 0)
      return fm_cli_usage("export", "unknown --status '%s' (accepted, proposed, rejected, "
                                    "superseded or all)", status);
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
  if (access(db, F_OK) != 0) {
    fm_error_set(&err, FM_ERR_NOTFOUND, "%s: no such database", db);
    return fm_cli_fail(&err);
  }
  fm_store_opts so;
  fm_store_opts_default(&so);
  so.readonly = 1;
  fm_store *st = NULL;
  if (fm_store_open(db, &so, &st, &err)) return fm_cli_fail(&err);
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
