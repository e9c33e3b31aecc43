/* cmd_simulate.c: fieldmatch simulate --config C --gold G [--seed S]
 * [--step N] [--json] [--folds K] [--loco] [--none FILE] [--seeds N]: what
 * learning from decisions buys (fm_simulate, fm_learn_cv; docs/scoring.md). */
#include "cli.h"

#include <math.h>
#include <string.h>

typedef struct sim_args {
  const char *config, *model, *gold, *none;
  int json, step, folds, loco, quiet, pool, seeds;
  int64_t seed_arg;
  double l2w, l2a, taken;
  unsigned parts;
  int parts_set;
} sim_args;

/* --learn weights,assoc,kind,taken (or none) */
static int set_parts(const char *cmd, const char *name, const char *v, void *args) {
  sim_args *a = args;
  (void)name;
  static const struct { const char *n; unsigned bit; } names[] = {
      {"weights", FM_LEARN_WEIGHTS}, {"assoc", FM_LEARN_ASSOC}, {"kind", FM_LEARN_KIND},
      {"taken", FM_LEARN_TAKEN}, {"prefix", FM_LEARN_PREFIX}, {"none", 0}};
  a->parts = 0;
  a->parts_set = 1;
  for (const char *p = v; *p;) {
    size_t len = strcspn(p, ",");
    size_t i = 0;
    for (; i < sizeof names / sizeof names[0]; i++)
      if (strlen(names[i].n) == len && !strncmp(p, names[i].n, len)) break;
    if (i == sizeof names / sizeof names[0])
      return fm_cli_usage(cmd, "--learn: unknown part '%.*s' (weights, assoc, kind, taken, prefix, none)",
                          (int)len, p);
    a->parts |= names[i].bit;
    p += len + (p[len] == ',');
  }
  return FM_EXIT_OK;
}

static const fm_cli_opt opts[] = {
    FM_OPT_STR(sim_args, config, "--config", 0, "CONFIG.json", "train the model from CONFIG"),
    FM_OPT_STR(sim_args, model, "--model", 0, "MODEL.fmm", "or use a trained model"),
    FM_OPT_REQ(sim_args, gold, "--gold", 0, "GOLD.tsv", "the analyst's answers (gold pairs)"),
    FM_OPT_NUM(sim_args, seed_arg, FM_CLI_I64, "--seed", 0, 0, "S",
               "the random split of the gold queries (default 42)"),
    FM_OPT_NUM(sim_args, step, FM_CLI_INT, "--step", 1, 0, "N",
               "re-learn after every N decisions (default 5)"),
    FM_OPT_NUM(sim_args, seeds, FM_CLI_INT, "--seeds", 1, 1000, "N",
               "also play seeds S .. S+N-1 and report the mean,\nspread and range of the gain (one split moves\nby whole queries)"),
    FM_OPT_FLAG(sim_args, json, "--json", 0, "one JSON object"),
    FM_OPT_NUM(sim_args, folds, FM_CLI_INT, "--folds", 2, 0, "K",
               "also K-fold cross-validation of the layer"),
    FM_OPT_FLAG(sim_args, loco, "--loco", 0, "also leave-one-category-out"),
    FM_OPT_STR(sim_args, none, "--none", 0, "NONE.tsv",
               "fields with no equivalent: half decided as such,\nhalf scored (none_proposed, none_auroc)"),
    FM_OPT_FN(set_parts, "--learn", "PARTS",
              "what is learnt: weights,assoc,kind,taken,prefix\nor none (default weights,assoc)"),
    FM_OPT_NUM(sim_args, l2w, FM_CLI_REAL_NONNEG, "--l2-weights", 0, 0, "X",
               "pull of the weights toward the model's (default 100)"),
    FM_OPT_NUM(sim_args, l2a, FM_CLI_REAL_NONNEG, "--l2-assoc", 0, 0, "X",
               "L2 on each association (default 0.1)"),
    FM_OPT_NUM(sim_args, taken, FM_CLI_REAL_NONNEG, "--taken", 0, 0, "X",
               "penalty for a reference accepted for another field (default 0.05)"),
    FM_OPT_NUM(sim_args, pool, FM_CLI_INT, "--pool", 1, 256, "N",
               "candidates re-ranked by the layer (default: all\nthe model's re-scored candidates)"),
    FM_OPT_FLAG(sim_args, quiet, "--quiet", 'q', "no progress on stderr"),
    FM_OPT_END};

static const fm_cli_spec spec = {
    .cmd = "simulate",
    .usage = "usage: fieldmatch simulate --config CONFIG.json --gold GOLD.tsv [--seed S]\n"
             "                           [--step N] [--json] [--folds K] [--loco] [--seeds N]\n"
             "       fieldmatch simulate --model MODEL.fmm --gold GOLD.tsv ...\n",
    .about = "Plays an analyst who knows the gold answers.  The gold queries are split\n"
             "at random (--seed) into halves; the first half is decided in review-queue\n"
             "order (most uncertain first): the answer is accepted when it is among the\n"
             "top 10 (rank r costs r keystrokes), else picked (its id and Enter).  The\n"
             "learning layer is re-learnt every --step decisions.  The second half is\n"
             "scored with what was learnt and without: learning_gain = learned_top1 -\n"
             "static_top1; curve[] is the second half's top-1 as decisions accumulate.\n"
             "--folds K and --loco add the layer's top-1 under K-fold and leave-one-\n"
             "category-out cross-validation (learnt from the other folds' gold pairs).\n"
             "--seeds N repeats the play over N splits: the gain of one split of a\n"
             "small gold moves by whole queries, its mean over splits much less.\n",
    .opts = opts};

static void print_cv(const char *name, const fm_learn_cv_result *r, int json) {
  if (json)
    printf(", \"%s\": {\"folds\": %zu, \"queries\": %zu, \"static_top1\": %.4f, "
           "\"learned_top1\": %.4f}",
           name, r->folds, r->queries, r->static_top1, r->learned_top1);
  else
    printf("%s: %zu folds, %zu queries, top-1 static %.3f, learned %.3f (%+.3f)\n", name,
           r->folds, r->queries, r->static_top1, r->learned_top1,
           r->learned_top1 - r->static_top1);
}

/* The gain over seeds o->seed .. o->seed + n - 1 (--seeds): the first
 * split is `first`, already played; the others are played as it was
 * (without o->none), with progress on stderr unless quiet.  out->gains is
 * the caller's to fm_free, also after an error (then the summary is
 * partial and must not be printed). */
typedef struct seeds_summary {
  int n;
  double gain_mean, gain_sd, gain_min, gain_max, static_mean, learned_mean;
  double *gains; /* n, owned (fm_free) */
} seeds_summary;

static fm_rc play_seeds(const fm_model *m, const fm_pairs *gold, const fm_sim_opts *o,
                        const fm_sim_result *first, int n, int quiet, seeds_summary *out,
                        fm_error *err) {
  memset(out, 0, sizeof *out);
  out->gains = fm_calloc((size_t)n, sizeof *out->gains);
  if (!out->gains) return fm_error_set(err, FM_ERR_NOMEM, "simulate: out of memory");
  out->n = n;
  out->gain_min = INFINITY;
  out->gain_max = -INFINITY;
  for (int i = 0; i < n; i++) {
    fm_sim_result r = {0};
    const fm_sim_result *ri = first;
    if (i > 0) {
      fm_sim_opts so = *o;
      so.seed = o->seed + (uint64_t)i;
      so.none = NULL; /* the none fields' figures are the first split's */
      if (!quiet)
        fprintf(stderr, "simulate: seed %llu (%d of %d)\n", (unsigned long long)so.seed, i + 1, n);
      fm_rc rc = fm_simulate(m, gold, &so, &r, err);
      if (rc) {
        fm_sim_result_free(&r);
        return rc;
      }
      ri = &r;
    }
    double g = ri->learned_top1 - ri->static_top1;
    out->static_mean += ri->static_top1 / n;
    out->learned_mean += ri->learned_top1 / n;
    out->gains[i] = g;
    out->gain_mean += g / n;
    if (g < out->gain_min) out->gain_min = g;
    if (g > out->gain_max) out->gain_max = g;
    fm_sim_result_free(&r);
  }
  double ss = 0;
  for (int i = 0; i < n; i++) ss += (out->gains[i] - out->gain_mean) * (out->gains[i] - out->gain_mean);
  out->gain_sd = n > 1 ? sqrt(ss / (n - 1)) : 0;
  return FM_OK;
}

static void print_seeds(const seeds_summary *s, uint64_t first, int json) {
  if (json) {
    printf(", \"seeds\": {\"n\": %d, \"first\": %llu, \"static_top1_mean\": %.4f, "
           "\"learned_top1_mean\": %.4f, \"learning_gain\": {\"mean\": %.4f, \"sd\": %.4f, "
           "\"min\": %.4f, \"max\": %.4f}, \"gains\": [",
           s->n, (unsigned long long)first, s->static_mean, s->learned_mean, s->gain_mean,
           s->gain_sd, s->gain_min, s->gain_max);
    for (int i = 0; i < s->n; i++) printf("%s%.4f", i ? ", " : "", s->gains[i]);
    printf("]}");
    return;
  }
  printf("over %d seeds (%llu .. %llu): top-1 static %.3f, learned %.3f; gain mean %+.3f "
         "(sd %.3f, min %+.3f, max %+.3f)\n",
         s->n, (unsigned long long)first, (unsigned long long)(first + (uint64_t)s->n - 1),
         s->static_mean, s->learned_mean, s->gain_mean, s->gain_sd, s->gain_min, s->gain_max);
}

/* The no-equivalent part (--none): JSON "none" object, or text lines. */
static void print_none(const fm_sim_result *r, int json) {
  if (json) {
    printf(", \"none\": {\"queries\": %zu, \"decided\": %zu, \"tested\": %zu",
           r->none_queries, r->none_decided, r->none_tested);
    for (int w = 0; w < 2; w++) {
      printf(", \"%s\": {\"threshold\": %.2f", w ? "learned" : "static", FM_AUTO_CONFIDENCE);
      fm_cli_json_num("none_proposed", r->none_proposed[w]);
      fm_cli_json_num("none_auroc", r->none_auroc[w]);
      printf("}");
    }
    printf("}");
    return;
  }
  printf("  no equivalent: %zu fields, %zu decided as such, %zu scored; proposed at %.2f "
         "static %.3f, learned %.3f; AUROC against the gold static %.3f, learned %.3f\n",
         r->none_queries, r->none_decided, r->none_tested, FM_AUTO_CONFIDENCE,
         r->none_proposed[0], r->none_proposed[1], r->none_auroc[0], r->none_auroc[1]);
}

int fm_cmd_simulate(int argc, char **argv) {
  sim_args a = {.step = 5, .seed_arg = 42, .l2w = -1, .l2a = -1, .taken = -1};
  int npos, prc = fm_cli_parse(&spec, argc, argv, &a, &npos);
  if (prc >= 0) return prc;
  if (!a.config == !a.model) return fm_cli_usage("simulate", "give one of --config or --model");
  fm_error err;
  fm_error_init(&err);
  fm_learn_opts lo;
  fm_learn_opts_default(&lo);
  if (a.parts_set) lo.parts = a.parts;
  if (a.l2w >= 0) lo.l2_weights = (float)a.l2w;
  if (a.l2a >= 0) lo.l2_assoc = (float)a.l2a;
  if (a.taken >= 0) lo.taken = (float)a.taken;
  if (a.pool) lo.pool = a.pool;
  fm_pairs gold;
  fm_pairs_init(&gold);
  if (fm_pairs_load(a.gold, &gold, &err)) {
    fm_pairs_free(&gold);
    return fm_cli_fail(&err);
  }
  fm_pairs none;
  fm_pairs_init(&none);
  if (a.none && fm_none_load(a.none, &none, &err)) {
    fm_pairs_free(&gold);
    fm_pairs_free(&none);
    return fm_cli_fail(&err);
  }
  fm_model *m = NULL;
  int status = FM_EXIT_OK;
  if (a.model) {
    if (!(m = fm_cli_open_model(a.model))) status = FM_EXIT_FAIL;
  } else {
    fm_config *c;
    if (fm_config_load(a.config, &c, &err)) {
      status = fm_cli_fail(&err);
    } else {
      fm_train_input in = {.config = c, .quiet = 1};
      if (fm_train(&in, &m, &err)) status = fm_cli_fail(&err);
      fm_config_free(c);
    }
  }
  size_t overlap = m ? fm_model_train_overlap(m, &gold) : 0;
  if (overlap)
    fprintf(stderr, "fieldmatch: WARNING: %zu gold pairs are training pairs of the model\n",
            overlap);
  fm_sim_opts so;
  fm_sim_opts_default(&so);
  so.seed = (uint64_t)a.seed_arg;
  so.step = a.step;
  so.learn = &lo;
  so.none = a.none ? &none : NULL;
  fm_sim_result r = {0};
  if (status == FM_EXIT_OK && fm_simulate(m, &gold, &so, &r, &err)) status = fm_cli_fail(&err);
  seeds_summary seeds = {0};
  if (status == FM_EXIT_OK && a.seeds &&
      play_seeds(m, &gold, &so, &r, a.seeds, a.quiet, &seeds, &err))
    status = fm_cli_fail(&err);
  fm_learn_cv_result cv = {0}, loco = {0};
  if (status == FM_EXIT_OK && a.folds && fm_learn_cv(m, &gold, a.folds, so.seed, &lo, &cv, &err))
    status = fm_cli_fail(&err);
  if (status == FM_EXIT_OK && a.loco && fm_learn_cv(m, &gold, 0, so.seed, &lo, &loco, &err))
    status = fm_cli_fail(&err);
  if (status == FM_EXIT_OK && a.json) {
    printf("{\"queries\": %zu, \"decided\": %zu, \"tested\": %zu, \"static_top1\": %.4f, "
           "\"learned_top1\": %.4f, \"learning_gain\": %.4f, \"keystrokes\": %zu, "
           "\"keystrokes_static\": %zu, "
           "\"seed\": %llu, \"step\": %d, \"curve\": [",
           r.queries, r.decided, r.tested, r.static_top1, r.learned_top1,
           r.learned_top1 - r.static_top1, r.keystrokes, r.keystrokes_static,
           (unsigned long long)so.seed, so.step);
    for (size_t i = 0; i < r.ncurve; i++)
      printf("%s{\"decided\": %zu, \"top1_remaining\": %.4f}", i ? ", " : "",
             r.curve[i].decided, r.curve[i].top1_remaining);
    printf("]");
    if (a.folds) print_cv("cv", &cv, 1);
    if (a.loco) print_cv("loco", &loco, 1);
    if (a.none) print_none(&r, 1);
    if (a.seeds) print_seeds(&seeds, so.seed, 1);
    printf("}\n");
  } else if (status == FM_EXIT_OK) {
    printf("%s: %zu queries, %zu decided, %zu scored; top-1 static %.3f, learned %.3f "
           "(gain %+.3f); %zu keystrokes (%zu without learning)\n",
           a.gold, r.queries, r.decided, r.tested, r.static_top1, r.learned_top1,
           r.learned_top1 - r.static_top1, r.keystrokes, r.keystrokes_static);
    for (size_t i = 0; i < r.ncurve; i++)
      printf("  after %3zu decisions: top-1 of the rest %.3f\n", r.curve[i].decided,
             r.curve[i].top1_remaining);
    if (a.folds) print_cv("cross-validation", &cv, 0);
    if (a.loco) print_cv("leave-one-category-out", &loco, 0);
    if (a.none) print_none(&r, 0);
    if (a.seeds) print_seeds(&seeds, so.seed, 0);
  }
  fm_free(seeds.gains);
  fm_sim_result_free(&r);
  fm_model_close(m);
  fm_pairs_free(&gold);
  fm_pairs_free(&none);
  return status;
}
