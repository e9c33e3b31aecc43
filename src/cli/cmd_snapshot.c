/* cmd_snapshot.c: fieldmatch snapshot run|backfill|status|catalog|jobs,
 * a thin front end over fm_snapshot.h. */
#include "cli.h"
#include "fm_snapshot.h"
#include "fm_store.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage_text[] =
    "usage: fieldmatch snapshot run      --db DB --root DIR [--at TIME] [options]\n"
    "       fieldmatch snapshot backfill --db DB --root DIR --from TIME --to TIME [options]\n"
    "       fieldmatch snapshot due      --db DB --root DIR [options]\n"
    "       fieldmatch snapshot status   --db DB [--job NAME] [--limit N] [--json]\n"
    "       fieldmatch snapshot catalog  --db DB\n"
    "       fieldmatch snapshot jobs     --db DB\n"
    "       fieldmatch snapshot verify   --root DIR [--db DB] [--quiet]\n"
    "\n"
    "TIME is ISO-8601 UTC at hour granularity (2024-05-01T13:00:00Z, 2024-05-01T13)\n"
    "or 'now' (the default for run).  'due' writes the current hour and catches up\n"
    "missed hours (at most 48), as 'fieldmatch serve' does every hour.\n"
    "options:\n"
    "  --job NAME        only this snapshot job (default: every enabled job)\n"
    "  --force           write a new version of partitions that already succeeded\n"
    "  --on-failure CMD  run CMD (sh -c) when a partition fails; FM_SNAPSHOT_JOB,\n"
    "                    _DT, _HR, _ERROR, _ROWS_READ, _ROWS_WRITTEN, _RUN_ID describe it\n"
    "  --webhook URL     POST a JSON description of a failure to an http:// URL\n"
    "  --lease SECONDS   partition lease length (default 900)\n"
    "  --no-retention    do not remove expired partitions after the run\n"
    "  --quiet           print nothing but errors\n"
    "exit status: 0 all partitions written or skipped, 1 a partition failed, 2 usage\n";

static void print_partition(void *ctx, const fm_snapshot_partition *p) {
  if (*(int *)ctx) return;
  const char *what = p->outcome == FM_SNAPSHOT_WRITTEN          ? "written"
                     : p->outcome == FM_SNAPSHOT_SKIPPED_DONE   ? "skipped"
                     : p->outcome == FM_SNAPSHOT_SKIPPED_LEASED ? "skipped"
                                                                : "FAILED";
  printf("%-12s dt=%s hr=%02d  %-7s", p->job, p->dt, p->hr, what);
  if (p->outcome == FM_SNAPSHOT_WRITTEN)
    printf(" v%d attempt %d  %lld rows  %lld bytes  %s  sha256 %s\n", p->version,
           p->attempt, (long long)p->rows_written, (long long)p->bytes, p->location,
           p->sha256);
  else printf(" (%s)\n", p->detail);
}

static int print_json(const char *s, int pretty) {
  if (!pretty) {
    puts(s);
    return FM_EXIT_OK;
  }
  json_t *j = json_loads(s, 0, NULL);
  char *d = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
  puts(d ? d : s);
  free(d);
  json_decref(j);
  return FM_EXIT_OK;
}

static const char *jstr(json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return json_is_string(v) ? json_string_value(v) : "";
}

static long long jint(json_t *o, const char *k) {
  return (long long)json_integer_value(json_object_get(o, k));
}

static void print_status(const char *s) {
  json_t *a = json_loads(s, 0, NULL);
  size_t i;
  json_t *o;
  printf("%-12s %-10s %-2s %3s %-9s %4s %9s %9s  %s\n", "JOB", "DT", "HR", "VER", "STATUS",
         "TRY", "READ", "WRITTEN", "LOCATION / ERROR");
  json_array_foreach(a, i, o) {
    const char *err = jstr(o, "error");
    printf("%-12s %-10s %02lld %3lld %-9s %4lld %9lld %9lld  %s\n", jstr(o, "job"),
           jstr(o, "dt"), jint(o, "hr"), jint(o, "version"), jstr(o, "status"),
           jint(o, "attempt"), jint(o, "rows_read"), jint(o, "rows_written"),
           *err ? err : jstr(o, "location"));
  }
  json_decref(a);
}

static void print_problem(void *ctx, const char *where, const char *problem) {
  (void)ctx;
  printf("%s: %s\n", where, problem);
}

/* snapshot verify: re-read the lake; exit 1 when anything is wrong.  The
 * store (optional) is opened read-only: verifying never writes. */
static int cmd_verify(int argc, char **argv) {
  const char *db = NULL, *root = NULL;
  int quiet = 0;
  for (int i = 2; i < argc; i++) {
    int missing = 0;
    const char *v;
    if ((v = fm_cli_opt(argc, argv, &i, "--db", &missing))) db = v;
    else if ((v = fm_cli_opt(argc, argv, &i, "--root", &missing))) root = v;
    else if (!strcmp(argv[i], "--quiet")) quiet = 1;
    else return fm_cli_usage("snapshot", "unknown option '%s'", argv[i]);
    if (missing) return fm_cli_usage("snapshot", "%s needs a value", argv[i]);
  }
  if (!root) return fm_cli_usage("snapshot", "--root is required");
  fm_error err;
  fm_error_init(&err);
  fm_store *st = NULL;
  if (db) {
    fm_store_opts so;
    fm_store_opts_default(&so);
    so.readonly = 1;
    if (fm_store_open(db, &so, &st, &err)) return fm_cli_fail(&err);
  }
  fm_snapshot_verify_result res;
  fm_rc r = fm_snapshot_verify(root, st, print_problem, NULL, &res, &err);
  fm_store_close(st);
  if (r) return fm_cli_fail(&err);
  if (!quiet)
    fprintf(stderr, "snapshot verify: %zu partitions, %zu files, %zu problems\n",
            res.partitions, res.files, res.problems);
  return res.problems ? FM_EXIT_FAIL : FM_EXIT_OK;
}

int fm_cmd_snapshot(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    fputs(usage_text, argc < 2 ? stderr : stdout);
    return argc < 2 ? FM_EXIT_USAGE : FM_EXIT_OK;
  }
  const char *sub = argv[1];
  if (!strcmp(sub, "verify")) return cmd_verify(argc, argv);
  const char *db = NULL, *root = NULL, *at = NULL, *from = NULL, *to = NULL;
  int json = 0, quiet = 0;
  long limit = 0;
  fm_snapshot_opts o;
  fm_snapshot_opts_default(&o);
  for (int i = 2; i < argc; i++) {
    int missing = 0;
    const char *v;
    if ((v = fm_cli_opt(argc, argv, &i, "--db", &missing))) db = v;
    else if ((v = fm_cli_opt(argc, argv, &i, "--root", &missing))) root = v;
    else if ((v = fm_cli_opt(argc, argv, &i, "--at", &missing))) at = v;
    else if ((v = fm_cli_opt(argc, argv, &i, "--from", &missing))) from = v;
    else if ((v = fm_cli_opt(argc, argv, &i, "--to", &missing))) to = v;
    else if ((v = fm_cli_opt(argc, argv, &i, "--job", &missing))) o.job = v;
    else if ((v = fm_cli_opt(argc, argv, &i, "--on-failure", &missing))) o.on_failure = v;
    else if ((v = fm_cli_opt(argc, argv, &i, "--webhook", &missing))) o.webhook = v;
    else if ((v = fm_cli_opt(argc, argv, &i, "--lease", &missing))) {
      long n = fm_cli_int(v);
      if (n < 0 || n > 86400)
        return fm_cli_usage("snapshot", "--lease: want 1..86400 seconds, got '%s'", v);
      o.lease_seconds = (int)n;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--limit", &missing))) {
      if ((limit = fm_cli_int(v)) < 0)
        return fm_cli_usage("snapshot", "--limit: want a positive number, got '%s'", v);
    } else if (!strcmp(argv[i], "--force")) o.force = 1;
    else if (!strcmp(argv[i], "--json")) json = 1;
    else if (!strcmp(argv[i], "--quiet")) quiet = 1;
    else if (!strcmp(argv[i], "--no-retention")) o.retention = 0;
    else return fm_cli_usage("snapshot", "unknown option '%s'", argv[i]);
    if (missing) return fm_cli_usage("snapshot", "%s needs a value", argv[i]);
  }
  int writes = !strcmp(sub, "run") || !strcmp(sub, "backfill") || !strcmp(sub, "due");
  if (!writes && strcmp(sub, "status") && strcmp(sub, "catalog") && strcmp(sub, "jobs"))
    return fm_cli_usage("snapshot", "unknown subcommand '%s'", sub);
  if (!db) return fm_cli_usage("snapshot", "--db is required");
  if (writes && !root) return fm_cli_usage("snapshot", "--root is required");
  if (!strcmp(sub, "backfill") && (!from || !to))
    return fm_cli_usage("snapshot", "backfill needs --from and --to");

  fm_error err;
  fm_error_init(&err);
  int64_t h_from = 0, h_to = 0;
  if (!strcmp(sub, "run") && fm_snapshot_parse_hour(at ? at : "now", &h_from, &err))
    return fm_cli_usage("snapshot", "--at: %s", err.msg);
  if (!strcmp(sub, "backfill")) {
    if (fm_snapshot_parse_hour(from, &h_from, &err))
      return fm_cli_usage("snapshot", "--from: %s", err.msg);
    if (fm_snapshot_parse_hour(to, &h_to, &err))
      return fm_cli_usage("snapshot", "--to: %s", err.msg);
    if (h_to < h_from) return fm_cli_usage("snapshot", "--to is before --from");
  }

  fm_store *st = NULL;
  if (fm_store_open(db, NULL, &st, &err)) return fm_cli_fail(&err);
  int rc = FM_EXIT_OK;
  if (writes) {
    o.on_partition = print_partition;
    o.ctx = &quiet;
    fm_snapshot_result res = {0};
    fm_rc r = !strcmp(sub, "run") ? fm_snapshot_run(st, root, h_from, &o, &res, &err)
              : !strcmp(sub, "backfill")
                  ? fm_snapshot_backfill(st, root, h_from, h_to, &o, &res, &err)
                  : fm_snapshot_run_due(st, root, (int64_t)time(NULL), &o, &res, &err);
    if (!quiet)
      fprintf(stderr, "snapshot: %zu written, %zu skipped, %zu failed, %zu expired\n",
              res.written, res.skipped, res.failed, res.expired);
    if (r) rc = fm_cli_fail(&err);
  } else {
    char *out = NULL;
    fm_rc r = !strcmp(sub, "status")
                  ? fm_snapshot_status_json(st, o.job, (int)limit, &out, &err)
              : !strcmp(sub, "catalog") ? fm_snapshot_catalog_json(st, &out, &err)
                                        : fm_snapshot_jobs_json(st, &out, &err);
    if (r) rc = fm_cli_fail(&err);
    else if (!strcmp(sub, "status") && !json) print_status(out);
    else print_json(out, !strcmp(sub, "catalog") ? 0 : !json);
    fm_free(out);
  }
  fm_store_close(st);
  return rc;
}
