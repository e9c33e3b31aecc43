/* cmd_eval.c: fieldmatch eval --model M --gold G [--json] [--folds K --config C] */
#include "cli.h"

#include <math.h>
#include <string.h>

typedef struct eval_args {
  const char *model, *config, *none;
  const char *golds[64];
  int ngold, json, folds, candidates, loco;
  long misses;
} eval_args;

static int add_gold(const char *cmd, const char *name, const char *v, void *args) {
  eval_args *a = args;
  (void)name;
  if (a->ngold == 64) return fm_cli_usage(cmd, "too many --gold files");
  a->golds[a->ngold++] = v;
  return FM_EXIT_OK;
}

static const fm_cli_opt opts[] = {
    FM_OPT_STR(eval_args, model, "--model", 0, "MODEL.fmm", "the model to score"),
    FM_OPT_FN(add_gold, "--gold", "GOLD.tsv", "gold pairs (header, query id, reference id);\n"
                                              "repeat for more files"),
    FM_OPT_FLAG(eval_args, json, "--json", 0, "one JSON object per gold file"),
    FM_OPT_NUM(eval_args, misses, FM_CLI_LONG, "--misses", 0, 0, "N",
               "show the N worst misses (default 10)"),
    FM_OPT_NUM(eval_args, candidates, FM_CLI_INT, "--candidates", 1, 0, "N",
               "re-scored per query (default: the model's)"),
    FM_OPT_STR(eval_args, config, "--config", 0, "CONFIG.json", "with --folds: the training config"),
    FM_OPT_STR(eval_args, none, "--none", 0, "NONE.tsv",
               "fields with no equivalent (header, one id a line): report\n"
               "none_proposed and none_auroc"),
    FM_OPT_NUM(eval_args, folds, FM_CLI_INT, "--folds", 2, 0, "K", "K-fold cross-validation"),
    FM_OPT_FLAG(eval_args, loco, "--loco", 0,
                "with --config: leave one query category out\n(one fold per category)"),
    FM_OPT_END};

static const fm_cli_spec spec = {
    .cmd = "eval",
    .usage = "usage: fieldmatch eval --model MODEL.fmm --gold GOLD.tsv [--gold ...] [--json]\n"
             "                       [--misses N] [--candidates N]\n"
             "       fieldmatch eval --config CONFIG.json --gold GOLD.tsv --folds K [--json]\n"
             "       fieldmatch eval --config CONFIG.json --gold GOLD.tsv --loco [--json]\n"
             "       (either form: [--none NONE.tsv])\n",
    .about = "Scores ranking against gold pairs (TSV: header, query id, reference id).\n"
             "--folds K runs K-fold cross-validation: each gold pair is scored by a\n"
             "model trained (from CONFIG) without the pairs of its fold.  --loco does\n"
             "the same with one fold per query category (Data License category,\n"
             "BBGsymbols book): the honest proxy for fields of an unseen kind.\n",
    .opts = opts};

static void print_json(const fm_eval_result *r, size_t overlap, int folds, int none) {
  printf("{\"queries\": %zu, \"top1\": %.4f, \"recall_at_3\": %.4f, \"recall_at_5\": %.4f, \"recall_at_10\": %.4f, "
         "\"mrr_at_10\": %.4f, \"missing_queries\": %zu, \"missing_refs\": %zu, "
         "\"train_overlap\": %zu, \"folds\": %d",
         r->queries, r->top1, r->recall_at_3, r->recall_at_5, r->recall_at_10, r->mrr_at_10,
         r->missing_queries, r->missing_refs, overlap, folds);
  fm_cli_json_num("ece", r->ece);
  fm_cli_json_num("ece_null", r->ece_null);
  fm_cli_json_num("auto_threshold", FM_AUTO_CONFIDENCE);
  fm_cli_json_num("auto_precision", r->auto_precision);
  fm_cli_json_num("auto_coverage", r->auto_coverage);
  if (none) {
    printf(", \"none_queries\": %zu", r->none_queries);
    fm_cli_json_num("none_proposed", r->none_proposed);
    fm_cli_json_num("none_auroc", r->none_auroc);
    fm_cli_json_num("ece_all", r->ece_all);
  }
  printf(", \"auto_curve\": [");
  for (int i = 0; i < FM_EVAL_CURVE; i++) {
    printf("%s{\"threshold\": %.2f", i ? ", " : "", r->curve_t[i]);
    fm_cli_json_num("precision", r->curve_precision[i]);
    fm_cli_json_num("coverage", r->curve_coverage[i]);
    if (none) fm_cli_json_num("none_proposed", r->curve_none[i]);
    printf("}");
  }
  printf("]");
  printf("}\n");
}

static void print_plain(const char *gold, const fm_eval_result *r, int none) {
  printf("%s: queries=%zu top1=%.3f recall@3=%.3f recall@5=%.3f recall@10=%.3f mrr@10=%.3f"
         " missing_queries=%zu\n",
         gold, r->queries, r->top1, r->recall_at_3, r->recall_at_5, r->recall_at_10, r->mrr_at_10,
         r->missing_queries);
  printf("  confidence: ece=%.3f auto(>=%.2f) precision=%.3f coverage=%.3f\n", r->ece,
         FM_AUTO_CONFIDENCE, r->auto_precision, r->auto_coverage);
  if (none)
    printf("  no equivalent: fields=%zu proposed=%.3f auroc=%.3f\n", r->none_queries,
           r->none_proposed, r->none_auroc);
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
  eval_args a = {.misses = 10};
  int npos, prc = fm_cli_parse(&spec, argc, argv, &a, &npos);
  if (prc >= 0) return prc;
  const char *model = a.model, *config = a.config;
  const char *const *golds = a.golds;
  int ngold = a.ngold, json = a.json, folds = a.folds, candidates = a.candidates;
  long misses = a.misses;
  if (!ngold) return fm_cli_usage("eval", "--gold is required");
  if (a.loco && folds) return fm_cli_usage("eval", "give --folds or --loco, not both");
  if (a.loco) folds = FM_EVAL_LOCO;
  if (folds && !config) return fm_cli_usage("eval", "--folds and --loco need --config");
  if (!folds && !model) return fm_cli_usage("eval", "--model is required");
  fm_error err;
  fm_error_init(&err);
  int status = FM_EXIT_OK;
  fm_pairs none;
  fm_pairs_init(&none);
  if (a.none && fm_none_load(a.none, &none, &err)) {
    fm_pairs_free(&none);
    return fm_cli_fail(&err);
  }
  const fm_pairs *nonep = a.none ? &none : NULL;
  int hasnone = a.none != NULL;
  fm_model *m = NULL;
  fm_config *c = NULL;
  if (folds) {
    if (fm_config_load(config, &c, &err)) {
      fm_pairs_free(&none);
      return fm_cli_fail(&err);
    }
  } else if (!(m = fm_cli_open_model(model))) {
    fm_pairs_free(&none);
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
      if (fm_eval_cv_none(c, &gold, nonep, folds, json, &r, &err)) status = fm_cli_fail(&err);
      else if (json) print_json(&r, 0, folds, hasnone);
      else {
        if (folds == FM_EVAL_LOCO) printf("[leave-one-category-out] ");
        else printf("[%d-fold cross-validation] ", folds);
        print_plain(golds[gi], &r, hasnone);
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
      if (fm_eval_none(m, &gold, nonep, &r, json ? NULL : &d, &nd, &err))
        status = fm_cli_fail(&err);
      else if (json) print_json(&r, overlap, 0, hasnone);
      else {
        print_plain(golds[gi], &r, hasnone);
        if (overlap) printf("  (WARNING: %zu pairs of this file were training pairs)\n", overlap);
        if (misses) print_misses(m, &gold, d, nd, (int)misses);
      }
      fm_free(d);
    }
    fm_pairs_free(&gold);
  }
  fm_model_close(m);
  fm_config_free(c);
  fm_pairs_free(&none);
  return status;
}
