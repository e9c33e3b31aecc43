/* cli.h: shared pieces of the fieldmatch command-line front end. */
#ifndef FM_CLI_H
#define FM_CLI_H

#include "fm_model.h"
#include "fm_store.h"

#include <stddef.h>
#include <stdio.h>

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
int fm_cmd_simulate(int argc, char **argv);
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

/* The database every command but serve (which needs --db or --no-auth)
 * uses when --db is not given: defined here only. */
#define FM_CLI_DB_DEFAULT "fieldmatch.db"

/* Print "fieldmatch: error: <msg>" and return FM_EXIT_FAIL. */
int fm_cli_fail(const fm_error *err);
/* Print a usage error and return FM_EXIT_USAGE. */
int fm_cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- options (cli_opts.c) ------------------------------------------------
 * Each command has a static table of its options; fm_cli_parse writes each
 * value at its offset in the command's argument struct (zeroed and given
 * its defaults by the caller), and fm_cli_help prints --help from it. */
typedef enum fm_cli_kind {
  FM_CLI_FLAG,        /* int: set to 1 */
  FM_CLI_STR,         /* const char *: the value, borrowed from argv */
  FM_CLI_INT,         /* integers in [min, max] (max 0: the type's maximum), */
  FM_CLI_UINT,        /*   into an int, unsigned, long, int64_t or size_t */
  FM_CLI_LONG,
  FM_CLI_I64,
  FM_CLI_SIZE,
  FM_CLI_REAL,        /* double: any finite number */
  FM_CLI_REAL_NONNEG, /* double >= 0 */
  FM_CLI_REAL_POS,    /* double > 0 */
  FM_CLI_FN,          /* fn(cmd, name, value, args): 0 or the usage exit code */
} fm_cli_kind;

typedef int (*fm_cli_opt_fn)(const char *cmd, const char *name, const char *value, void *args);

typedef struct fm_cli_opt {
  const char *name; /* "--db", or a short-only option like "-k"; NULL ends */
  char alias;       /* one-letter short form ('o' for -o), or 0 */
  fm_cli_kind kind;
  size_t off;       /* offsetof the destination in the argument struct */
  long long min, max;
  const char *arg;  /* the value's name in --help ("FILE") */
  const char *help; /* '\n' continues on the next line */
  int required;     /* FM_CLI_STR: must be given */
  fm_cli_opt_fn fn; /* FM_CLI_FN */
} fm_cli_opt;

/* Rows, for a struct type T and its field F. */
#define FM_OPT_FLAG(T, F, NAME, AL, HELP) \
  {.name = NAME, .alias = AL, .kind = FM_CLI_FLAG, .off = offsetof(T, F), .help = HELP}
#define FM_OPT_STR(T, F, NAME, AL, ARG, HELP) \
  {.name = NAME, .alias = AL, .kind = FM_CLI_STR, .off = offsetof(T, F), .arg = ARG, .help = HELP}
#define FM_OPT_REQ(T, F, NAME, AL, ARG, HELP)                                                     \
  {.name = NAME, .alias = AL, .kind = FM_CLI_STR, .off = offsetof(T, F), .arg = ARG, .help = HELP, \
   .required = 1}
#define FM_OPT_NUM(T, F, KIND, NAME, MIN, MAX, ARG, HELP)                                     \
  {.name = NAME, .kind = KIND, .off = offsetof(T, F), .min = MIN, .max = MAX, .arg = ARG, \
   .help = HELP}
#define FM_OPT_FN(FN, NAME, ARG, HELP) \
  {.name = NAME, .kind = FM_CLI_FN, .fn = FN, .arg = ARG, .help = HELP}
#define FM_OPT_END {.name = NULL}
/* --db with the one default. */
#define FM_OPT_DB(T, F) \
  FM_OPT_STR(T, F, "--db", 0, "FILE", "the database (default " FM_CLI_DB_DEFAULT ")")

typedef struct fm_cli_spec {
  const char *cmd;        /* "import", "batch run": named in every message */
  const char *usage;      /* the synopsis, "usage: fieldmatch ...\n" lines */
  const char *about;      /* what it does (NULL: nothing more) */
  const fm_cli_opt *opts; /* ends with FM_OPT_END */
  int max_pos;            /* positional arguments allowed; -1: any number */
} fm_cli_spec;

/* Parse argv[1..argc) against the spec into args.  Positional arguments
 * are moved, in order, to argv[0..*npos).  Returns -1 when the command
 * should go on, else the exit status to return now: 0 after printing
 * --help, FM_EXIT_USAGE after printing a usage error ("unknown option
 * '--x'", "option --k needs a value", "option -k needs an integer in
 * 1..1000, got 'abc'", "--config is required"). */
int fm_cli_parse(const fm_cli_spec *sp, int argc, char **argv, void *args, int *npos);
void fm_cli_help(const fm_cli_spec *sp, FILE *fp);

/* An integer in [min, max] from all of s: 0, or -1 if it is not one. */
int fm_cli_long(const char *s, long long min, long long max, long long *out);

/* Who the command acts as (--by/--owner default): $USER, else "cli". */
const char *fm_cli_user(void);

/* ---- the store ------------------------------------------------------------ */
enum { FM_CLI_OPEN = 0, FM_CLI_CREATE = 1, FM_CLI_READONLY = 2 };

/* The one way the commands open a store: `how` is FM_CLI_OPEN (it must
 * exist), FM_CLI_CREATE (only import, a new batch run and token create:
 * see docs/store.md) or FM_CLI_READONLY; busy_ms > 0 sets the busy
 * timeout.  A missing database prints "fieldmatch: no database at 'PATH'
 * (create one with 'fieldmatch import')" and creates nothing.  Returns
 * FM_EXIT_OK, or FM_EXIT_FAIL after printing the error.  Caller owns *out
 * (fm_store_close). */
int fm_cli_open_store(const char *path, unsigned how, int busy_ms, fm_store **out);

/* JSON string output (jansson-escaped) of s to fp. */
void fm_cli_json_str(FILE *fp, const char *s);
/* `, "key": v` on stdout, v with 4 decimals, or null when v is NAN (an
 * AUROC with an empty side, an ECE of nothing). */
void fm_cli_json_num(const char *key, double v);

/* Load a model or print the error; NULL on failure. */
fm_model *fm_cli_open_model(const char *path);

#endif
