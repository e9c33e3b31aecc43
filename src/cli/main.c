/* main.c: the fieldmatch command: a thin front end over libfieldmatch. */
#include "cli.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

static const fm_cmd commands[] = {
    {"train", fm_cmd_train, "train a model from a JSON config"},
    {"match", fm_cmd_match, "rank reference fields for query field ids"},
    {"eval", fm_cmd_eval, "score a model against gold pairs"},
    {"simulate", fm_cmd_simulate, "play an analyst: what learning from decisions gains"},
    {"map", fm_cmd_map, "map every query field to its top-k (CSV or JSON Lines)"},
    {"info", fm_cmd_info, "describe a model file"},
    {"import", fm_cmd_import, "load a config's dictionaries into the database"},
    {"review", fm_cmd_review, "the analyst review queue, decisions, history, pairs"},
    {"export", fm_cmd_export, "write mappings as CSV, JSON Lines or JSON"},
    {"import-mappings", fm_cmd_import_mappings, "load a spreadsheet of mappings (all or nothing)"},
    {"snapshot", fm_cmd_snapshot, "hourly snapshots of the store as partitioned files"},
    {"batch", fm_cmd_batch, "resumable batch mapping runs into the database"},
    {"token", fm_cmd_token, "create, list or revoke API tokens"},
    {"provision", fm_cmd_provision, "ask for a dataset as a file: request, status, list, fetch"},
#ifdef FM_HAVE_HTTP
    {"serve", fm_cmd_serve, "serve lookups and reconciliation over HTTP"},
#endif
};

int fm_cli_fail(const fm_error *err) {
  fprintf(stderr, "fieldmatch: error: %s\n",
          err && err->msg[0] ? err->msg : fm_rc_name(err ? err->rc : FM_ERR_INTERNAL));
  return FM_EXIT_FAIL;
}

int fm_cli_usage(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fieldmatch %s: ", cmd);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n(see 'fieldmatch %s --help')\n", cmd);
  va_end(ap);
  return FM_EXIT_USAGE;
}

void fm_cli_json_str(FILE *fp, const char *s) {
  json_t *j = json_string(s);
  if (!j) { /* not valid UTF-8: emit escaped bytes via jansson's nocheck */
    j = json_stringn_nocheck(s, strlen(s));
  }
  char *d = json_dumps(j, JSON_ENCODE_ANY);
  fputs(d ? d : "\"\"", fp);
  free(d);
  json_decref(j);
}

void fm_cli_json_num(const char *key, double v) {
  if (isnan(v)) printf(", \"%s\": null", key);
  else printf(", \"%s\": %.4f", key, v);
}

fm_model *fm_cli_open_model(const char *path) {
  fm_model *m;
  fm_error err;
  fm_error_init(&err);
  if (fm_model_open(path, &m, &err)) {
    fm_cli_fail(&err);
    return NULL;
  }
  return m;
}

static void usage(FILE *fp) {
  fprintf(fp, "usage: fieldmatch <command> [options]\n\ncommands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(fp, "  %-16s %s\n", commands[i].name, commands[i].summary);
  fprintf(fp, "\n'fieldmatch <command> --help' for a command's options.\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return FM_EXIT_USAGE;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return FM_EXIT_OK;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("fieldmatch %s (model format %d)\n", FM_VERSION, FM_MODEL_FORMAT_VERSION);
    return FM_EXIT_OK;
  }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "fieldmatch: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return FM_EXIT_USAGE;
}
