/* cmd_info.c: fieldmatch info MODEL */
#include "cli.h"

#include <string.h>

int fm_cmd_info(int argc, char **argv) {
  if (argc != 2 || !strcmp(argv[1], "--help")) {
    fputs("usage: fieldmatch info MODEL.fmm\n", argc == 2 ? stdout : stderr);
    return argc == 2 ? FM_EXIT_OK : FM_EXIT_USAGE;
  }
  fm_model *m = fm_cli_open_model(argv[1]);
  if (!m) return FM_EXIT_FAIL;
  fm_model_info i;
  fm_model_info_get(m, &i);
  printf("model:        %s\nformat:       %u\nchecksum:     %08x\nreferences:   %zu\n"
         "queries:      %zu\nterms:        %zu\ndims:         %d\nabbreviations: %zu\n"
         "train pairs:  %zu\nsettings:     %s\n",
         i.name, i.format_version, i.checksum, i.nrefs, i.nqueries, i.nterms, i.dims,
         i.nabbrev, i.ntrain_pairs, i.config_json);
  fm_model_close(m);
  return FM_EXIT_OK;
}
