/* cmd_batch.c: fieldmatch batch run|status|list: resumable batch mapping
 * runs over every query field of a model (docs/batch.md). */
#include "cli.h"
#include "fm_jobs.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: fieldmatch batch run --model MODEL.fmm [--db fieldmatch.db]\n"
    "                            [--batch-size 500] [--threshold T] [--margin M]\n"
    "                            [-k 10] [--by NAME] [--threads N] [--max-parts N]\n"
    "                            [--busy-timeout MS] [-v] [--quiet]\n"
    "       fieldmatch batch run --resume RUN --model MODEL.fmm [--db D] [-v]\n"
    "       fieldmatch batch status [RUN] [--db D] [--json]\n"
    "       fieldmatch batch list [--db D] [--json]\n"
    "\n"
    "run: rank every query field of the model and route it: a field with an\n"
    "accepted mapping is left alone (already curated); a confident best\n"
    "candidate (score >= threshold, default 2.0, and best - runner-up >= margin,\n"
    "default 0.5) becomes a proposed mapping; the rest go to the review queue.\n"
    "Fields are written in parts of --batch-size, each part in one transaction,\n"
    "so a run that was killed resumes with --resume RUN (same model file; the\n"
    "run's recorded batch size, k, threshold and margin are used).\n"
    "--max-parts N stops after N parts (resume later).  -v prints a line per\n"
    "part.  status: per-part counts and totals of RUN (default: the latest).\n";

static int parse_double(const char *s, double *out) {
  char *end;
  double v = strtod(s, &end);
  if (!*s || *end || !isfinite(v)) return -1;
  *out = v;
  return 0;
}

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

static int open_store(const char *db, int readonly, int busy_ms, fm_store **st) {
  fm_error err;
  fm_error_init(&err);
  fm_store_opts o;
  fm_store_opts_default(&o);
  o.readonly = readonly;
  if (busy_ms > 0) o.busy_timeout_ms = busy_ms;
  if (fm_store_open(db, &o, st, &err)) return fm_cli_fail(&err);
  return FM_EXIT_OK;
}

static int cmd_run(int argc, char **argv) {
  const char *db = "fieldmatch.db", *model = NULL, *by = NULL;
  fm_batch_opts o;
  fm_batch_opts_default(&o);
  int verbose = 0, tuned = 0;
  long busy_ms = 0;
  for (int i = 1; i < argc; i++) {
    int missing = 0;
    const char *v;
    long n;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(usage_text, stdout);
      return FM_EXIT_OK;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--db", &missing))) {
      db = v;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--model", &missing))) {
      model = v;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--by", &missing))) {
      by = v;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--resume", &missing))) {
      if ((n = fm_cli_int(v)) < 0)
        return fm_cli_usage("batch run", "--resume needs a run id (a positive integer)");
      o.resume_run = n;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--batch-size", &missing))) {
      if ((n = fm_cli_int(v)) < 0 || n > 1000000)
        return fm_cli_usage("batch run", "--batch-size needs an integer in 1..1000000");
      o.batch_size = (int)n;
      tuned = 1;
    } else if ((v = fm_cli_opt(argc, argv, &i, "-k", &missing))) {
      if ((n = fm_cli_int(v)) < 0 || n > 100)
        return fm_cli_usage("batch run", "-k needs an integer in 1..100");
      o.k = (int)n;
      tuned = 1;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--threshold", &missing))) {
      if (parse_double(v, &o.threshold))
        return fm_cli_usage("batch run", "--threshold needs a number");
      tuned = 1;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--margin", &missing))) {
      if (parse_double(v, &o.margin) || o.margin < 0)
        return fm_cli_usage("batch run", "--margin needs a number >= 0");
      tuned = 1;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--threads", &missing))) {
      if ((n = fm_cli_int(v)) < 0 || n > 64)
        return fm_cli_usage("batch run", "--threads needs an integer in 1..64");
      o.threads = (int)n;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--max-parts", &missing))) {
      if ((n = fm_cli_int(v)) < 0)
        return fm_cli_usage("batch run", "--max-parts needs a positive integer");
      o.max_parts = n;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--busy-timeout", &missing))) {
      if ((busy_ms = fm_cli_int(v)) < 0)
        return fm_cli_usage("batch run", "--busy-timeout needs milliseconds (> 0)");
    } else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) {
      verbose = 1;
    } else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) {
      o.quiet = 1;
    } else if (missing) {
      return fm_cli_usage("batch run", "%s needs a value", argv[i]);
    } else {
      return fm_cli_usage("batch run", "unknown argument '%s'", argv[i]);
    }
  }
  if (!model) return fm_cli_usage("batch run", "--model is required");
  if (o.resume_run && tuned)
    return fm_cli_usage("batch run",
                        "--resume uses the run's recorded --batch-size, -k, --threshold "
                        "and --margin; do not pass them");
  if (!by) by = getenv("USER") ? getenv("USER") : "cli";
  o.actor = by;
  o.model_path = model;
  if (verbose) o.on_part = on_part;

  fm_model *m = fm_cli_open_model(model);
  if (!m) return FM_EXIT_FAIL;
  fm_store *st = NULL;
  int rc = open_store(db, 0, (int)busy_ms, &st);
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
  const char *cmd = list ? "batch list" : "batch status";
  const char *db = "fieldmatch.db";
  int json = 0;
  long run = 0;
  for (int i = 1; i < argc; i++) {
    int missing = 0;
    const char *v;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(usage_text, stdout);
      return FM_EXIT_OK;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--db", &missing))) {
      db = v;
    } else if (!strcmp(argv[i], "--json")) {
      json = 1;
    } else if (missing) {
      return fm_cli_usage(cmd, "%s needs a value", argv[i]);
    } else if (!list && argv[i][0] != '-' && !run) {
      if ((run = fm_cli_int(argv[i])) < 0)
        return fm_cli_usage(cmd, "RUN must be a run id (a positive integer)");
    } else {
      return fm_cli_usage(cmd, "unknown argument '%s'", argv[i]);
    }
  }
  fm_store *st = NULL;
  int rc = open_store(db, 1, 0, &st);
  if (rc) return rc;
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
    fputs(usage_text, stdout);
    return FM_EXIT_OK;
  }
  if (!strcmp(argv[1], "run")) return cmd_run(argc - 1, argv + 1);
  if (!strcmp(argv[1], "status")) return cmd_status(argc - 1, argv + 1, 0);
  if (!strcmp(argv[1], "list")) return cmd_status(argc - 1, argv + 1, 1);
  return fm_cli_usage("batch", "unknown subcommand '%s' (run, status, list)", argv[1]);
}
