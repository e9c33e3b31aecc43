/* cli.h: shared pieces of the fieldmatch command-line front end. */
#ifndef FM_CLI_H
#define FM_CLI_H

#include "fm_model.h"

/* Exit codes: 0 ok, 1 a failure while doing the work (bad input file,
 * corrupt model, I/O), 2 bad usage. */
enum { FM_EXIT_OK = 0, FM_EXIT_FAIL = 1, FM_EXIT_USAGE = 2 };

typedef struct fm_cmd {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} fm_cmd;

int fm_cmd_train(int argc, char **argv);
int fm_cmd_match(int argc, char **argv);
int fm_cmd_eval(int argc, char **argv);
int fm_cmd_map(int argc, char **argv);
int fm_cmd_info(int argc, char **argv);
int fm_cmd_import(int argc, char **argv);
int fm_cmd_review(int argc, char **argv);
int fm_cmd_export(int argc, char **argv);
int fm_cmd_import_mappings(int argc, char **argv);
int fm_cmd_snapshot(int argc, char **argv);
int fm_cmd_batch(int argc, char **argv);
int fm_cmd_token(int argc, char **argv);
int fm_cmd_provision(int argc, char **argv);
#ifdef FM_HAVE_HTTP
int fm_cmd_serve(int argc, char **argv);
#endif

/* Print "fieldmatch: error: <msg>" and return FM_EXIT_FAIL. */
int fm_cli_fail(const fm_error *err);
/* Print a usage error and return FM_EXIT_USAGE. */
int fm_cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Simple long-option scanner: returns the value of --name VALUE or
 * --name=VALUE at argv[*i] (advancing *i), or NULL if argv[*i] is not that
 * option.  Sets *missing when the option is there without its value. */
const char *fm_cli_opt(int argc, char **argv, int *i, const char *name, int *missing);

/* Parse a positive integer option value; -1 on error. */
long fm_cli_int(const char *s);

/* JSON string output (jansson-escaped) of s to fp. */
void fm_cli_json_str(FILE *fp, const char *s);

/* Load a model or print the error; NULL on failure. */
fm_model *fm_cli_open_model(const char *path);

#endif
