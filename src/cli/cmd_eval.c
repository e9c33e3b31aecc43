/* cmd_eval.c: fieldmatch eval --model M --gold G [--json] [--folds K --config C] */
#include "cli.h"

#include <string.h>

static const char *help =
    "usage: fieldmatch eval --model MODEL.fmm --gold GOLD.tsv [--gold ...] [--json]\n"
    "                       [--misses N] [--candidates N]\n"
    "       fieldmatch eval --config CONFIG.json --gold GOLD.tsv --folds K [--json]\n"
    "Scores ranking against gold pairs (TSV: header, query id, reference id).\n"
    "--folds K runs K-fold cross-validation: each gold pair is scored by a\n"
    "model trained (from CONFIG) without the pairs of its fold.\n";

static void print_json(const fm_eval_result *r, size_t overlap, int folds) {
  printf("{\"queries\": %zu, \"top1\": %.4f, \"recall_at_3\": %.4f, \"recall_at_5\": %.4f, \"recall_at_10\": %.4f, "
         "\"mrr_at_10\": %.4f, \"missing_queries\": %zu, \"missing_refs\": %zu, "
         "\"train_overlap\": %zu, \"folds\": %d}\n",
         r->queries, r->top1, r->recall_at_3, r->recall_at_5, r->recall_at_10, r->mrr_at_10,
         r->missing_queries, r->missing_refs, overlap, folds);
}

static void print_plain(const char *gold, const fm_eval_result *r) {
  printf("%s: queries=%zu top1=%.3f recall@3=%.3f recall@5=%.3f recall@10=%.3f mrr@10=%.3f"
         " missing_queries=%zu\n",
         gold, r->queries, r->top1, r->recall_at_3, r->recall_at_5, r->recall_at_10, r->mrr_at_10,
         r->missing_queries);
}

/* The worst misses: queries whose answer is not in the top 10, then those
 * ranked lowest, with the top candidates, so a person sees why. */
static void print_misses(const fm_model *m, const fm_pairs *gold, const fm_eval_query *d,
                         size_t nd, int limit) {
  int shown = 0;
  for (int pass = 0; pass < 2 && shown < limit; pass++)
    for (size_t i = 0; i < nd && shown < limit; i++) {
      if (d[i].qindex < 0) continue;
      if (pass == 0 ? d[i].rank != 0 : d[i].rank <= 1) continue;
      fm_field q;
      fm_model_query(m, (size_t)d[i].qindex, &q);
      printf("\n  %s (%s) expected:", q.id, q.name[0] ? q.name : "no name");
      for (size_t g = 0; g < gold->n; g++)
        if (!strcmp(gold->v[g].query, d[i].query)) {
          long r = fm_model_find_ref(m, gold->v[g].ref);
          fm_field rf;
          if (r >= 0) fm_model_ref(m, (size_t)r, &rf);
          printf(" %s%s%s%s", gold->v[g].ref, r >= 0 ? " (" : " (not in reference", r >= 0 ? rf.name : "", ")");
        }
      if (d[i].rank) printf("  found at rank %d\n", d[i].rank);
      else printf("  not in the top 10\n");
      for (int k = 0; k < d[i].ntop && k < 3; k++) {
        fm_field rf;
        fm_model_ref(m, d[i].top[k].ref, &rf);
        printf("    %d. %-14s %.3f  %s\n", k + 1, rf.id, d[i].top[k].score, rf.name);
      }
      shown++;
    }
}

int fm_cmd_eval(int argc, char **argv) {
  const char *model = NULL, *config = NULL;
  const char *golds[64];
  int ngold = 0, json = 0, folds = 0, candidates = 0;
  long misses = 10;
  for (int i = 1; i < argc; i++) {
    int missing = 0;
    const char *v;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(help, stdout);
      return FM_EXIT_OK;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--candidates", &missing))) {
      candidates = (int)fm_cli_int(v);
      if (candidates < 1) return fm_cli_usage("eval", "--candidates needs a positive integer");
    } else if ((v = fm_cli_opt(argc, argv, &i, "--model", &missing))) {
      model = v;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--config", &missing))) {
      config = v;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--gold", &missing))) {
      if (ngold == 64) return fm_cli_usage("eval", "too many --gold files");
      golds[ngold++] = v;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--folds", &missing))) {
      folds = (int)fm_cli_int(v);
      if (folds < 2) return fm_cli_usage("eval", "--folds needs an integer >= 2, not '%s'", v);
    } else if ((v = fm_cli_opt(argc, argv, &i, "--misses", &missing))) {
      if (!strcmp(v, "0")) misses = 0;
      else if ((misses = fm_cli_int(v)) < 0) return fm_cli_usage("eval", "bad --misses '%s'", v);
    } else if (!strcmp(argv[i], "--json")) {
      json = 1;
    } else {
      return fm_cli_usage("eval", missing ? "option %s needs a value" : "unknown argument '%s'",
                          argv[i]);
    }
  }
  if (!ngold) return fm_cli_usage("eval", "--gold is required");
  if (folds && !config) return fm_cli_usage("eval", "--folds needs --config");
  if (!folds && !model) return fm_cli_usage("eval", "--model is required");
  fm_error err;
  fm_error_init(&err);
  int status = FM_EXIT_OK;
  fm_model *m = NULL;
  fm_config *c = NULL;
  if (folds) {
    if (fm_config_load(config, &c, &err)) return fm_cli_fail(&err);
  } else if (!(m = fm_cli_open_model(model))) {
    return FM_EXIT_FAIL;
  } else if (candidates) {
    fm_model_set_candidates(m, candidates);
  }
  for (int gi = 0; gi < ngold && status == FM_EXIT_OK; gi++) {
    fm_pairs gold;
    fm_pairs_init(&gold);
    if (fm_pairs_load(golds[gi], &gold, &err)) {
      status = fm_cli_fail(&err);
      fm_pairs_free(&gold);
      break;
    }
    fm_eval_result r;
    size_t overlap = 0;
    if (folds) {
      if (fm_eval_cv(c, &gold, folds, json, &r, &err)) status = fm_cli_fail(&err);
      else if (json) print_json(&r, 0, folds);
      else {
        printf("[%d-fold cross-validation] ", folds);
        print_plain(golds[gi], &r);
      }
    } else {
      overlap = fm_model_train_overlap(m, &gold);
      if (overlap)
        fprintf(stderr,
                "fieldmatch: WARNING: %zu of the %zu pairs in %s were used to TRAIN this model;\n"
                "fieldmatch: WARNING: these figures overstate accuracy. Use --folds K with "
                "--config for a fair estimate.\n",
                overlap, gold.n, golds[gi]);
      fm_eval_query *d = NULL;
      size_t nd = 0;
      if (fm_eval(m, &gold, &r, json ? NULL : &d, &nd, &err)) status = fm_cli_fail(&err);
      else if (json) print_json(&r, overlap, 0);
      else {
        print_plain(golds[gi], &r);
        if (overlap) printf("  (WARNING: %zu pairs of this file were training pairs)\n", overlap);
        if (misses) print_misses(m, &gold, d, nd, (int)misses);
      }
      fm_free(d);
    }
    fm_pairs_free(&gold);
  }
  fm_model_close(m);
  fm_config_free(c);
  return status;
}
