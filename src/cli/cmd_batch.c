/* cmd_batch.c: fieldmatch batch run|status|list: resumable batch mapping
 * runs over every query field of a model (docs/batch.md). */
#include "cli.h"
#include "fm_jobs.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: fieldmatch batch run --model MODEL.fmm [--db " FM_CLI_DB_DEFAULT "]\n"
    "                            [--batch-size 500] [--min-confidence P]\n"
    "                            [--threshold T] [--margin M]\n"
    "                            [-k 10] [--by NAME] [--threads N] [--max-parts N]\n"
    "                            [--busy-timeout MS] [-v] [--quiet]\n"
    "       fieldmatch batch run --resume RUN --model MODEL.fmm [--db D] [-v]\n"
    "       fieldmatch batch status [RUN] [--db D] [--json]\n"
    "       fieldmatch batch list [--db D] [--json]\n";

static const char about[] =
    "run: rank every query field of the model and route it: a field with an\n"
    "accepted mapping is left alone (already curated); a confident best\n"
    "candidate (calibrated confidence >= --min-confidence, default 0.9; and, when\n"
    "given, score >= --threshold and best - runner-up >= --margin) becomes a\n"
    "proposed mapping; the rest go to the review queue, lowest confidence first.\n"
    "Fields are written in parts of --batch-size, each part in one transaction,\n"
    "so a run that was killed resumes with --resume RUN (same model file; the\n"
    "run's recorded batch size, k, min confidence, threshold and margin are used).\n"
    "--max-parts N stops after N parts (resume later).  -v prints a line per\n"
    "part.  status: per-part counts and totals of RUN (default: the latest).\n"
    "A new run creates the database when it does not exist (it imports the\n"
    "model's dictionaries itself); --resume, status and list need an existing one.\n";

/* batch run's options; the tuning ones stay 0 / NAN unless given, so that
 * --resume can refuse them. */
typedef struct run_args {
  const char *db, *model, *by;
  int64_t resume;
  int batch_size, k, threads, busy_ms, verbose, quiet;
  double threshold, margin, min_confidence;
  int64_t max_parts;
} run_args;

static const fm_cli_opt run_opts[] = {
    FM_OPT_REQ(run_args, model, "--model", 0, "MODEL.fmm", "the model whose query fields to map"),
    FM_OPT_DB(run_args, db),
    FM_OPT_NUM(run_args, resume, FM_CLI_I64, "--resume", 1, 0, "RUN", "resume this run"),
    FM_OPT_NUM(run_args, batch_size, FM_CLI_INT, "--batch-size", 1, 1000000, "N",
               "query fields per part (default 500)"),
    FM_OPT_NUM(run_args, k, FM_CLI_INT, "-k", 1, 100, "K", "candidates kept per field (default 10)"),
    FM_OPT_NUM(run_args, min_confidence, FM_CLI_REAL_NONNEG, "--min-confidence", 0, 0, "P",
               "minimum confidence of the best candidate to propose (default 0.9)"),
    FM_OPT_NUM(run_args, threshold, FM_CLI_REAL, "--threshold", 0, 0, "T",
               "also: minimum best score to propose (default 0: off)"),
    FM_OPT_NUM(run_args, margin, FM_CLI_REAL_NONNEG, "--margin", 0, 0, "M",
               "also: minimum best - runner-up to propose (default 0: off)"),
    FM_OPT_STR(run_args, by, "--by", 0, "NAME", "who runs it (default $USER)"),
    FM_OPT_NUM(run_args, threads, FM_CLI_INT, "--threads", 1, 64, "N", "matching threads"),
    FM_OPT_NUM(run_args, max_parts, FM_CLI_I64, "--max-parts", 1, 0, "N", "stop after N parts"),
    FM_OPT_NUM(run_args, busy_ms, FM_CLI_INT, "--busy-timeout", 1, 0, "MS",
               "wait for a locked database (per attempt)"),
    FM_OPT_FLAG(run_args, verbose, "--verbose", 'v', "a line per part on stderr"),
    FM_OPT_FLAG(run_args, quiet, "--quiet", 'q', "no progress bar"),
    FM_OPT_END};

static const fm_cli_spec run_spec = {
    .cmd = "batch run", .usage = usage, .about = about, .opts = run_opts};

typedef struct status_args {
  const char *db;
  int json;
} status_args;

static const fm_cli_opt status_opts[] = {
    FM_OPT_DB(status_args, db),
    FM_OPT_FLAG(status_args, json, "--json", 0, "JSON instead of a table"),
    FM_OPT_END};

static const fm_cli_spec status_spec = {
    .cmd = "batch status", .usage = usage, .about = about, .opts = status_opts, .max_pos = 1};
static const fm_cli_spec list_spec = {
    .cmd = "batch list", .usage = usage, .about = about, .opts = status_opts};

static void on_part(void *ctx, int64_t part, int64_t n, const fm_batch_counts *c,
                    int skipped) {
  (void)ctx;
  if (skipped)
    fprintf(stderr, "part %lld/%lld: already committed, skipped\n", (long long)part,
            (long long)n);
  else
    fprintf(stderr,
            "part %lld/%lld: %lld in, %lld proposed, %lld queued, %lld curated, "
            "%lld failed\n",
            (long long)part, (long long)n, (long long)c->n_in, (long long)c->n_proposed,
            (long long)c->n_queued, (long long)c->n_curated, (long long)c->n_failed);
}

static void print_counts(const fm_batch_counts *c) {
  printf("%lld fields in: %lld proposed, %lld queued for review, %lld already curated, "
         "%lld failed",
         (long long)c->n_in, (long long)c->n_proposed, (long long)c->n_queued,
         (long long)c->n_curated, (long long)c->n_failed);
}

static int cmd_run(int argc, char **argv) {
  run_args a = {.db = FM_CLI_DB_DEFAULT, .threshold = NAN, .margin = NAN,
                .min_confidence = NAN};
  int npos, prc = fm_cli_parse(&run_spec, argc, argv, &a, &npos);
  if (prc >= 0) return prc;
  const char *db = a.db, *model = a.model;
  fm_batch_opts o;
  fm_batch_opts_default(&o);
  int tuned = a.batch_size || a.k || !isnan(a.threshold) || !isnan(a.margin) ||
              !isnan(a.min_confidence);
  if (!isnan(a.min_confidence) && a.min_confidence > 1)
    return fm_cli_usage("batch run", "--min-confidence must be from 0 to 1");
  if (!isnan(a.min_confidence)) o.min_confidence = a.min_confidence;
  if (a.batch_size) o.batch_size = a.batch_size;
  if (a.k) o.k = a.k;
  if (!isnan(a.threshold)) o.threshold = a.threshold;
  if (!isnan(a.margin)) o.margin = a.margin;
  o.resume_run = a.resume;
  o.threads = a.threads;
  o.max_parts = a.max_parts;
  o.quiet = a.quiet;
  if (o.resume_run && tuned)
    return fm_cli_usage("batch run",
                        "--resume uses the run's recorded --batch-size, -k, "
                        "--min-confidence, --threshold and --margin; do not pass them");
  o.actor = a.by ? a.by : fm_cli_user();
  o.model_path = model;
  if (a.verbose) o.on_part = on_part;

  fm_model *m = fm_cli_open_model(model);
  if (!m) return FM_EXIT_FAIL;
  fm_store *st = NULL;
  /* A new run may create the database (it imports the model's
   * dictionaries); resuming a run needs the one that holds it. */
  int rc = fm_cli_open_store(db, o.resume_run ? FM_CLI_OPEN : FM_CLI_CREATE, a.busy_ms, &st);
  if (rc) {
    fm_model_close(m);
    return rc;
  }
  fm_error err;
  fm_error_init(&err);
  int64_t run = 0;
  fm_batch_report r;
  fm_rc frc = fm_batch_run(st, m, &o, &run, &r, &err);
  if (frc) {
    fm_cli_fail(&err);
    if (run && frc != FM_ERR_CORRUPT)
      fprintf(stderr,
              "fieldmatch: batch run %lld is unfinished; resume it with "
              "'fieldmatch batch run --resume %lld --model %s --db %s'\n",
              (long long)run, (long long)run, model, db);
    rc = FM_EXIT_FAIL;
  } else if (r.finished) {
    if (a.verbose && r.learnt_fields)
      fprintf(stderr, "batch run %lld: ranked with what %zu decided field(s) teach\n",
              (long long)r.run_id, r.learnt_fields);
    printf("batch run %lld: succeeded in %lld part(s)%s, %.1fs: ", (long long)r.run_id,
           (long long)r.n_parts, r.parts_skipped ? " (resumed)" : "", r.seconds);
    print_counts(&r.total);
    printf("\n");
  } else {
    printf("batch run %lld: stopped after %lld part(s); %lld of %lld committed so far: ",
           (long long)r.run_id, (long long)r.parts_run,
           (long long)(r.parts_run + r.parts_skipped), (long long)r.n_parts);
    print_counts(&r.total);
    printf("\nresume with 'fieldmatch batch run --resume %lld --model %s --db %s'\n",
           (long long)r.run_id, model, db);
  }
  fm_store_close(st);
  fm_model_close(m);
  return rc;
}

static json_t *counts_json(const fm_batch_counts *c) {
  return json_pack("{s:I, s:I, s:I, s:I, s:I}", "n_in", (json_int_t)c->n_in, "n_proposed",
                   (json_int_t)c->n_proposed, "n_queued", (json_int_t)c->n_queued,
                   "n_curated", (json_int_t)c->n_curated, "n_failed",
                   (json_int_t)c->n_failed);
}

static json_t *info_json(const fm_batch_info *b, int with_parts) {
  json_t *params = json_loads(b->params, 0, NULL);
  json_t *o = json_pack(
      "{s:I, s:s, s:{s:s, s:s, s:s}, s:o, s:I, s:I, s:I, s:s, s:s?, s:s, s:s?, s:o}",
      "run", (json_int_t)b->run_id, "status", b->status, "model", "name", b->model_name,
      "checksum", b->model_checksum, "path", b->model_path ? b->model_path : "", "params",
      params ? params : json_object(), "n_fields", (json_int_t)b->n_fields, "n_parts",
      (json_int_t)b->n_batches, "parts_committed", (json_int_t)b->nparts, "started_at",
      b->started_at, "finished_at", b->finished_at, "started_by",
      b->started_by ? b->started_by : "", "error", b->error, "total",
      counts_json(&b->total));
  if (o && with_parts) {
    json_t *a = json_array();
    for (size_t i = 0; i < b->nparts; i++) {
      json_t *p = counts_json(&b->parts[i].c);
      json_object_set_new(p, "part", json_integer(b->parts[i].part_no));
      json_object_set_new(p, "finished_at", json_string(b->parts[i].finished_at));
      json_array_append_new(a, p);
    }
    json_object_set_new(o, "parts", a);
  }
  return o;
}

static int cmd_status(int argc, char **argv, int list) {
  status_args a = {.db = FM_CLI_DB_DEFAULT};
  int npos, prc = fm_cli_parse(list ? &list_spec : &status_spec, argc, argv, &a, &npos);
  if (prc >= 0) return prc;
  int json = a.json;
  long long run = 0;
  if (npos && fm_cli_long(argv[0], 1, INT64_MAX, &run))
    return fm_cli_usage("batch status", "RUN must be a run id (a positive integer)");
  fm_store *st = NULL;
  if (fm_cli_open_store(a.db, FM_CLI_READONLY, 0, &st)) return FM_EXIT_FAIL;
  fm_error err;
  fm_error_init(&err);
  if (list) {
    fm_batch_info *v;
    size_t n;
    if (fm_batch_list(st, &v, &n, &err)) {
      fm_store_close(st);
      return fm_cli_fail(&err);
    }
    if (json) {
      json_t *a = json_array();
      for (size_t i = 0; i < n; i++) json_array_append_new(a, info_json(&v[i], 0));
      char *s = json_dumps(a, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
      printf("%s\n", s ? s : "[]");
      free(s);
      json_decref(a);
    } else {
      printf("%-5s %-9s %-20s %9s %11s %9s %9s %8s %7s  %s\n", "run", "status", "model",
             "fields", "parts", "proposed", "queued", "curated", "failed", "started");
      for (size_t i = 0; i < n; i++) {
        char parts[32];
        snprintf(parts, sizeof parts, "%zu/%lld", v[i].nparts, (long long)v[i].n_batches);
        printf("%-5lld %-9s %-20s %9lld %11s %9lld %9lld %8lld %7lld  %s\n",
               (long long)v[i].run_id, v[i].status, v[i].model_name,
               (long long)v[i].n_fields, parts, (long long)v[i].total.n_proposed,
               (long long)v[i].total.n_queued, (long long)v[i].total.n_curated,
               (long long)v[i].total.n_failed, v[i].started_at);
      }
    }
    fm_batch_list_free(v, n);
    fm_store_close(st);
    return FM_EXIT_OK;
  }
  fm_batch_info b;
  if (fm_batch_status(st, run, &b, &err)) {
    fm_store_close(st);
    return fm_cli_fail(&err);
  }
  if (json) {
    json_t *o = info_json(&b, 1);
    char *s = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    printf("%s\n", s ? s : "{}");
    free(s);
    json_decref(o);
  } else {
    printf("batch run %lld: %s\n", (long long)b.run_id, b.status);
    printf("model:    %s (checksum %s) %s\n", b.model_name, b.model_checksum,
           b.model_path ? b.model_path : "");
    printf("params:   %s\n", b.params);
    printf("started:  %s by %s\n", b.started_at, b.started_by ? b.started_by : "");
    if (b.finished_at) printf("finished: %s\n", b.finished_at);
    if (b.error) printf("error:    %s\n", b.error);
    printf("parts:    %zu of %lld committed, %lld query fields\n\n", b.nparts,
           (long long)b.n_batches, (long long)b.n_fields);
    printf("%6s %7s %9s %7s %8s %7s  %s\n", "part", "in", "proposed", "queued", "curated",
           "failed", "finished_at");
    for (size_t i = 0; i < b.nparts; i++) {
      const fm_batch_counts *c = &b.parts[i].c;
      printf("%6lld %7lld %9lld %7lld %8lld %7lld  %s\n", (long long)b.parts[i].part_no,
             (long long)c->n_in, (long long)c->n_proposed, (long long)c->n_queued,
             (long long)c->n_curated, (long long)c->n_failed, b.parts[i].finished_at);
    }
    const fm_batch_counts *t = &b.total;
    printf("%6s %7lld %9lld %7lld %8lld %7lld\n", "total", (long long)t->n_in,
           (long long)t->n_proposed, (long long)t->n_queued, (long long)t->n_curated,
           (long long)t->n_failed);
  }
  fm_batch_info_free(&b);
  fm_store_close(st);
  return FM_EXIT_OK;
}

int fm_cmd_batch(int argc, char **argv) {
  if (argc < 2)
    return fm_cli_usage("batch", "a subcommand is required: run, status or list");
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    fm_cli_help(&run_spec, stdout);
    return FM_EXIT_OK;
  }
  if (!strcmp(argv[1], "run")) return cmd_run(argc - 1, argv + 1);
  if (!strcmp(argv[1], "status")) return cmd_status(argc - 1, argv + 1, 0);
  if (!strcmp(argv[1], "list")) return cmd_status(argc - 1, argv + 1, 1);
  return fm_cli_usage("batch", "unknown subcommand '%s' (run, status, list)", argv[1]);
}
