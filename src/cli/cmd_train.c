/* cmd_train.c: fieldmatch train --config C -o MODEL [--db D] */
#include "cli.h"
#include "fm_review.h"

#include <stdlib.h>
#include <string.h>

typedef struct train_args {
  const char *config, *out, *db;
  int quiet;
} train_args;

static const fm_cli_opt opts[] = {
    FM_OPT_REQ(train_args, config, "--config", 0, "CONFIG.json", "the training config"),
    FM_OPT_REQ(train_args, out, "--output", 'o', "MODEL.fmm", "the model file to write"),
    FM_OPT_STR(train_args, db, "--db", 0, "FILE",
               "also learn from this database's accepted decisions\n(read-only; it must exist)"),
    FM_OPT_FLAG(train_args, quiet, "--quiet", 'q', "no progress or summary on stderr"),
    FM_OPT_END};

static const fm_cli_spec spec = {
    .cmd = "train",
    .usage = "usage: fieldmatch train --config CONFIG.json -o MODEL.fmm [--db D] [--quiet]\n",
    .about = "Imports the dictionaries named in CONFIG, builds the text features,\n"
             "TF-IDF, the SVD and the priors, and writes MODEL atomically.\n"
             "With --db, the accepted decisions of that database are training pairs\n"
             "too, beside CONFIG's train_pairs (a full retrain picks up what the\n"
             "analysts decided; docs/scoring.md).\n",
    .opts = opts};

/* The config's train_pairs followed by the accepted decisions of the
 * store at db (opened read-only), into pairs (the caller's); *ndb the
 * decisions' count.  FM_EXIT_OK, or FM_EXIT_FAIL after printing. */
static int db_pairs(const char *db, const fm_config *c, fm_pairs *pairs, size_t *ndb) {
  fm_error err;
  fm_error_init(&err);
  for (size_t i = 0; i < c->ntrain_pairs; i++)
    if (fm_pairs_load(c->train_pairs[i], pairs, &err)) return fm_cli_fail(&err);
  fm_store *st;
  if (fm_cli_open_store(db, FM_CLI_READONLY, 0, &st)) return FM_EXIT_FAIL;
  fm_decided *d = NULL;
  size_t n = 0;
  fm_rc rc = fm_review_decisions(st, &pairs->arena, &d, &n, &err);
  for (size_t i = 0; !rc && i < n; i++) {
    if (strcmp(d[i].status, "accepted") != 0) continue;
    if (fm_grow((void **)&pairs->v, &pairs->cap, pairs->n + 1, sizeof *pairs->v)) {
      rc = fm_error_set(&err, FM_ERR_NOMEM, "out of memory");
      break;
    }
    pairs->v[pairs->n++] = (fm_pair){d[i].query_id, d[i].ref_id};
    (*ndb)++;
  }
  fm_free(d);
  fm_store_close(st);
  return rc ? fm_cli_fail(&err) : FM_EXIT_OK;
}

int fm_cmd_train(int argc, char **argv) {
  train_args a = {0};
  int npos, prc = fm_cli_parse(&spec, argc, argv, &a, &npos);
  if (prc >= 0) return prc;
  const char *config = a.config, *outp = a.out;
  int quiet = a.quiet;
  fm_error err;
  fm_error_init(&err);
  fm_config *c;
  if (fm_config_load(config, &c, &err)) return fm_cli_fail(&err);
  double t0 = fm_now();
  /* fm_train writes the model itself, overlapping the write with its last
   * step */
  fm_train_input in = {.config = c, .quiet = quiet, .output = outp};
  fm_pairs pairs;
  fm_pairs_init(&pairs);
  size_t ndb = 0;
  if (a.db && db_pairs(a.db, c, &pairs, &ndb) != FM_EXIT_OK) {
    fm_pairs_free(&pairs);
    fm_config_free(c);
    return FM_EXIT_FAIL;
  }
  if (a.db) {
    in.pairs_override = &pairs;
    in.use_pairs_override = 1;
    if (!quiet) fprintf(stderr, "%zu accepted decisions from %s\n", ndb, a.db);
  }
  fm_model *m;
  fm_rc trc = fm_train(&in, &m, &err);
  fm_pairs_free(&pairs);
  if (trc) {
    fm_config_free(c);
    return fm_cli_fail(&err);
  }
  double t1 = fm_now();
  if (!quiet) {
    fm_model_info info;
    fm_model_info_get(m, &info);
    fprintf(stderr,
            "trained '%s': %zu reference fields, %zu query fields, %zu terms, %d dims, "
            "%zu abbreviations, %zu training pairs in %.2fs -> %s\n",
            info.name, info.nrefs, info.nqueries, info.nterms, info.dims, info.nabbrev,
            info.ntrain_pairs, t1 - t0, outp);
  }
  fm_model_close(m);
  fm_config_free(c);
  return FM_EXIT_OK;
}
