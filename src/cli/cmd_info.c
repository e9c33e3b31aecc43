/* cmd_info.c: fieldmatch info MODEL */
#include "cli.h"

static const fm_cli_opt opts[] = {FM_OPT_END};

static const fm_cli_spec spec = {
    .cmd = "info",
    .usage = "usage: fieldmatch info MODEL.fmm\n",
    .about = "Prints a model file's name, format, checksum, sizes and settings.\n",
    .opts = opts,
    .max_pos = 1};

int fm_cmd_info(int argc, char **argv) {
  char dummy;
  int npos, prc = fm_cli_parse(&spec, argc, argv, &dummy, &npos);
  if (prc >= 0) return prc;
  if (npos != 1) return fm_cli_usage("info", "give the model file");
  fm_model *m = fm_cli_open_model(argv[0]);
  if (!m) return FM_EXIT_FAIL;
  fm_model_info i;
  fm_model_info_get(m, &i);
  printf("model:        %s\nformat:       %u\nchecksum:     %08x\nreferences:   %zu\n"
         "queries:      %zu\nterms:        %zu\ndims:         %d\nabbreviations: %zu\n"
         "train pairs:  %zu\npairs layer:  %zu queries\nsettings:     %s\n",
         i.name, i.format_version, i.checksum, i.nrefs, i.nqueries, i.nterms, i.dims,
         i.nabbrev, i.ntrain_pairs, i.pairs_layer_queries, i.config_json);
  fm_model_close(m);
  return FM_EXIT_OK;
}
