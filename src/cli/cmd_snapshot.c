/* cmd_snapshot.c: fieldmatch snapshot run|backfill|status|catalog|jobs,
 * a thin front end over fm_snapshot.h. */
#include "cli.h"
#include "fm_snapshot.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct snap_args {
  const char *db, *root, *at, *from, *to;
  int json, quiet, no_retention;
  long limit;
  fm_snapshot_opts o;
} snap_args;

static const fm_cli_opt opts[] = {
    FM_OPT_DB(snap_args, db),
    FM_OPT_STR(snap_args, root, "--root", 0, "DIR", "the lake: run, backfill and due write here"),
    FM_OPT_STR(snap_args, at, "--at", 0, "TIME", "run: the hour (default now)"),
    FM_OPT_STR(snap_args, from, "--from", 0, "TIME", "backfill: the first hour"),
    FM_OPT_STR(snap_args, to, "--to", 0, "TIME", "backfill: the last hour"),
    FM_OPT_STR(snap_args, o.job, "--job", 0, "NAME", "only this snapshot job (default: every\nenabled job)"),
    FM_OPT_FLAG(snap_args, o.force, "--force", 0, "write a new version of partitions that\nalready succeeded"),
    FM_OPT_STR(snap_args, o.on_failure, "--on-failure", 0, "CMD",
               "run CMD (sh -c) when a partition fails;\nFM_SNAPSHOT_JOB, _DT, _HR, _ERROR, "
               "_ROWS_READ,\n_ROWS_WRITTEN, _RUN_ID describe it"),
    FM_OPT_STR(snap_args, o.webhook, "--webhook", 0, "URL",
               "POST a JSON description of a failure to an\nhttp:// URL"),
    FM_OPT_NUM(snap_args, o.lease_seconds, FM_CLI_INT, "--lease", 1, 86400, "SECONDS",
               "partition lease length (default 900)"),
    FM_OPT_NUM(snap_args, o.max_catchup_hours, FM_CLI_INT, "--max-hours", 1, 10000, "N",
               "due: hours written per run at most (default 48)"),
    FM_OPT_FLAG(snap_args, no_retention, "--no-retention", 0,
                "do not remove expired partitions after the run"),
    FM_OPT_NUM(snap_args, limit, FM_CLI_LONG, "--limit", 1, 0, "N", "status: rows"),
    FM_OPT_FLAG(snap_args, json, "--json", 0, "status: JSON instead of a table; jobs:\ncompact JSON"),
    FM_OPT_FLAG(snap_args, quiet, "--quiet", 0, "print nothing but errors"),
    FM_OPT_END};

static const fm_cli_spec spec = {
    .cmd = "snapshot",
    .usage = "usage: fieldmatch snapshot run      --db DB --root DIR [--at TIME] [options]\n"
             "       fieldmatch snapshot backfill --db DB --root DIR --from TIME --to TIME [options]\n"
             "       fieldmatch snapshot due      --db DB --root DIR [options]\n"
             "       fieldmatch snapshot status   --db DB [--job NAME] [--limit N] [--json]\n"
             "       fieldmatch snapshot catalog  --db DB\n"
             "       fieldmatch snapshot jobs     --db DB\n"
             "       fieldmatch snapshot verify   --root DIR [--db DB] [--quiet]\n",
    .about =
        "TIME is ISO-8601 UTC at hour granularity (2024-05-01T13:00:00Z, 2024-05-01T13)\n"
        "or 'now' (the default for run).  'due' writes every missing or failed hour\n"
        "inside each job's retention window, oldest first, at most --max-hours (48) per\n"
        "run with the current hour always among them, as 'fieldmatch serve' does every\n"
        "hour.  An hour in the future or outside a job's retention window is refused.\n"
        "Leftovers of crashed runs are removed at the start of a run.  DB must\n"
        "exist: a missing one is an error and the lake is not touched.  'verify'\n"
        "re-reads the lake (and, with --db, checks it belongs to that store).\n"
        "exit status: 0 all partitions written or skipped, 1 a partition failed, 2 usage\n",
    .opts = opts};

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
 * store (optional: no --db, no store check) is opened read-only: verifying
 * never writes. */
static int cmd_verify(const snap_args *a) {
  if (!a->root) return fm_cli_usage("snapshot", "--root is required");
  fm_error err;
  fm_error_init(&err);
  fm_store *st = NULL;
  if (a->db && fm_cli_open_store(a->db, FM_CLI_READONLY, 0, &st)) return FM_EXIT_FAIL;
  fm_snapshot_verify_result res;
  fm_rc r = fm_snapshot_verify(a->root, st, print_problem, NULL, &res, &err);
  fm_store_close(st);
  if (r) return fm_cli_fail(&err);
  if (!a->quiet)
    fprintf(stderr, "snapshot verify: %zu partitions, %zu files, %zu problems\n",
            res.partitions, res.files, res.problems);
  return res.problems ? FM_EXIT_FAIL : FM_EXIT_OK;
}

int fm_cmd_snapshot(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    fm_cli_help(&spec, argc < 2 ? stderr : stdout);
    return argc < 2 ? FM_EXIT_USAGE : FM_EXIT_OK;
  }
  const char *sub = argv[1];
  int writes = !strcmp(sub, "run") || !strcmp(sub, "backfill") || !strcmp(sub, "due");
  int verify = !strcmp(sub, "verify");
  if (!writes && !verify && strcmp(sub, "status") && strcmp(sub, "catalog") &&
      strcmp(sub, "jobs"))
    return fm_cli_usage("snapshot", "unknown subcommand '%s'", sub);
  snap_args a = {.db = verify ? NULL : FM_CLI_DB_DEFAULT};
  fm_snapshot_opts_default(&a.o);
  int npos, prc = fm_cli_parse(&spec, argc - 1, argv + 1, &a, &npos);
  if (prc >= 0) return prc;
  if (verify) return cmd_verify(&a);
  const char *db = a.db, *root = a.root, *at = a.at, *from = a.from, *to = a.to;
  int json = a.json, quiet = a.quiet;
  long limit = a.limit;
  fm_snapshot_opts o = a.o;
  if (a.no_retention) o.retention = 0;
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

  /* Before the lake is touched: a mistyped --db must not look like an
   * empty store and rewrite the partitions (issue 15). */
  fm_store *st = NULL;
  if (fm_cli_open_store(db, FM_CLI_OPEN, 0, &st)) return FM_EXIT_FAIL;
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
