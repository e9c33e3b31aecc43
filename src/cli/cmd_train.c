/* cmd_train.c: fieldmatch train --config C -o MODEL */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

typedef struct train_args {
  const char *config, *out;
  int quiet;
} train_args;

static const fm_cli_opt opts[] = {
    FM_OPT_REQ(train_args, config, "--config", 0, "CONFIG.json", "the training config"),
    FM_OPT_REQ(train_args, out, "--output", 'o', "MODEL.fmm", "the model file to write"),
    FM_OPT_FLAG(train_args, quiet, "--quiet", 'q', "no progress or summary on stderr"),
    FM_OPT_END};

static const fm_cli_spec spec = {
    .cmd = "train",
    .usage = "usage: fieldmatch train --config CONFIG.json -o MODEL.fmm [--quiet]\n",
    .about = "Imports the dictionaries named in CONFIG, builds the text features,\n"
             "TF-IDF, the SVD and the priors, and writes MODEL atomically.\n",
    .opts = opts};

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
  fm_model *m;
  if (fm_train(&in, &m, &err)) {
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
