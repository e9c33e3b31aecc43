/* cmd_train.c: fieldmatch train --config C -o MODEL */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const char *help =
    "usage: fieldmatch train --config CONFIG.json -o MODEL.fmm [--quiet]\n"
    "Imports the dictionaries named in CONFIG, builds the text features,\n"
    "TF-IDF, the SVD and the priors, and writes MODEL atomically.\n";

int fm_cmd_train(int argc, char **argv) {
  const char *config = NULL, *outp = NULL;
  int quiet = 0;
  for (int i = 1; i < argc; i++) {
    int missing = 0;
    const char *v;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(help, stdout);
      return FM_EXIT_OK;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--config", &missing))) {
      config = v;
    } else if ((v = fm_cli_opt(argc, argv, &i, "-o", &missing)) ||
               (v = fm_cli_opt(argc, argv, &i, "--output", &missing))) {
      outp = v;
    } else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) {
      quiet = 1;
    } else {
      return fm_cli_usage("train", missing ? "option %s needs a value" : "unknown argument '%s'",
                          argv[i]);
    }
  }
  if (!config) return fm_cli_usage("train", "--config is required");
  if (!outp) return fm_cli_usage("train", "-o MODEL is required");
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
