/* cli_opts.c: the one option parser of the fieldmatch commands.  Each
 * command describes its options in a static fm_cli_opt table (see cli.h);
 * this file parses argv against it, writes the values into the command's
 * argument struct, prints uniform usage errors and generates --help. */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int fm_cli_long(const char *s, long long min, long long max, long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (!*s || *end || errno || v < min || v > max) return -1;
  *out = v;
  return 0;
}

/* The largest value a destination of this kind holds. */
static long long kind_max(fm_cli_kind k) {
  switch (k) {
  case FM_CLI_INT: return INT_MAX;
  case FM_CLI_UINT: return UINT_MAX;
  case FM_CLI_LONG: return LONG_MAX;
  default: return LLONG_MAX; /* FM_CLI_I64, FM_CLI_SIZE (64-bit) */
  }
}

static void print_range(FILE *fp, const fm_cli_opt *o) {
  long long max = o->max ? o->max : kind_max(o->kind);
  if (max == kind_max(o->kind)) fprintf(fp, "an integer >= %lld", o->min);
  else fprintf(fp, "an integer in %lld..%lld", o->min, max);
}

/* Store the value of a valued option; FM_EXIT_USAGE after the message. */
static int store(const fm_cli_spec *sp, const fm_cli_opt *o, const char *v, void *args) {
  char *dst = (char *)args + o->off;
  /* Option text may end up in the store (comments, names, owners, paths):
   * invalid UTF-8 never gets that far. */
  size_t bad = fm_utf8_invalid_at(v, strlen(v));
  if (bad != (size_t)-1)
    return fm_cli_usage(sp->cmd, "%s: not valid UTF-8 (byte 0x%02X at offset %zu)", o->name,
                        (unsigned char)v[bad], bad);
  if (o->kind == FM_CLI_STR) {
    *(const char **)dst = v;
    return FM_EXIT_OK;
  }
  if (o->kind == FM_CLI_FN) return o->fn(sp->cmd, o->name, v, args);
  if (o->kind == FM_CLI_REAL || o->kind == FM_CLI_REAL_NONNEG || o->kind == FM_CLI_REAL_POS) {
    char *end;
    double d = strtod(v, &end);
    int ok = *v && !*end && isfinite(d);
    if (o->kind == FM_CLI_REAL_NONNEG) ok = ok && d >= 0;
    if (o->kind == FM_CLI_REAL_POS) ok = ok && d > 0;
    if (!ok)
      return fm_cli_usage(sp->cmd, "option %s needs a number%s, got '%s'", o->name,
                          o->kind == FM_CLI_REAL_NONNEG ? " >= 0"
                          : o->kind == FM_CLI_REAL_POS  ? " > 0"
                                                        : "",
                          v);
    *(double *)dst = d;
    return FM_EXIT_OK;
  }
  long long n;
  if (fm_cli_long(v, o->min, o->max ? o->max : kind_max(o->kind), &n)) {
    fprintf(stderr, "fieldmatch %s: option %s needs ", sp->cmd, o->name);
    print_range(stderr, o);
    fprintf(stderr, ", got '%s'\n(see 'fieldmatch %s --help')\n", v, sp->cmd);
    return FM_EXIT_USAGE;
  }
  switch (o->kind) {
  case FM_CLI_INT: *(int *)dst = (int)n; break;
  case FM_CLI_UINT: *(unsigned *)dst = (unsigned)n; break;
  case FM_CLI_LONG: *(long *)dst = (long)n; break;
  case FM_CLI_I64: *(int64_t *)dst = (int64_t)n; break;
  default: *(size_t *)dst = (size_t)n; break;
  }
  return FM_EXIT_OK;
}

/* The table row argv word a names (NULL if none); *val is set to the text
 * after '=' in --name=value (NULL without one). */
static const fm_cli_opt *lookup(const fm_cli_spec *sp, const char *a, const char **val) {
  *val = NULL;
  for (const fm_cli_opt *o = sp->opts; o->name; o++) {
    if (o->alias && a[0] == '-' && a[1] == o->alias && (a[2] == '\0' || a[2] == '=')) {
      if (a[2] == '=') *val = a + 3;
      return o;
    }
    size_t n = strlen(o->name);
    if (!strncmp(a, o->name, n) && (a[n] == '\0' || a[n] == '=')) {
      if (a[n] == '=') *val = a + n + 1;
      return o;
    }
  }
  return NULL;
}

int fm_cli_parse(const fm_cli_spec *sp, int argc, char **argv, void *args, int *npos) {
  int np = 0, dashdash = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (dashdash || a[0] != '-' || a[1] == '\0') { /* positional ("-": stdin) */
      if (np >= sp->max_pos && sp->max_pos >= 0)
        return fm_cli_usage(sp->cmd, "unexpected argument '%s'", a);
      argv[np++] = argv[i];
      continue;
    }
    if (!strcmp(a, "--")) {
      dashdash = 1;
      continue;
    }
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fm_cli_help(sp, stdout);
      return FM_EXIT_OK;
    }
    const char *v;
    const fm_cli_opt *o = lookup(sp, a, &v);
    if (!o) return fm_cli_usage(sp->cmd, "unknown option '%s'", a);
    if (o->kind == FM_CLI_FLAG) {
      if (v) return fm_cli_usage(sp->cmd, "option %s takes no value", o->name);
      *(int *)((char *)args + o->off) = 1;
      continue;
    }
    if (!v) {
      if (i + 1 >= argc) return fm_cli_usage(sp->cmd, "option %s needs a value", a);
      v = argv[++i];
    }
    int rc = store(sp, o, v, args);
    if (rc) return rc;
  }
  for (const fm_cli_opt *o = sp->opts; o->name; o++)
    if (o->required && !*(const char **)((char *)args + o->off))
      return fm_cli_usage(sp->cmd, "%s is required", o->name);
  *npos = np;
  return -1;
}

/* "  -o, --output FILE" for the left column; returns its width. */
static int opt_label(const fm_cli_opt *o, FILE *fp) {
  int w = 0;
  if (o->alias) w += fprintf(fp, "  -%c, %s", o->alias, o->name);
  else w += fprintf(fp, "  %s", o->name);
  if (o->kind != FM_CLI_FLAG) w += fprintf(fp, " %s", o->arg ? o->arg : "VALUE");
  return w;
}

void fm_cli_help(const fm_cli_spec *sp, FILE *fp) {
  fputs(sp->usage, fp);
  if (sp->about) fprintf(fp, "\n%s", sp->about);
  fprintf(fp, "\noptions:\n");
  enum { COL = 24 };
  for (const fm_cli_opt *o = sp->opts; o->name; o++) {
    int w = opt_label(o, fp);
    if (w >= COL) {
      fputc('\n', fp);
      w = 0;
    }
    fprintf(fp, "%*s", COL - w, "");
    /* help text: continuation lines after '\n' are indented to the column */
    for (const char *h = o->help; *h; h++) {
      fputc(*h, fp);
      if (*h == '\n') fprintf(fp, "%*s", COL, "");
    }
    if (o->required) fputs(" (required)", fp);
    fputc('\n', fp);
  }
  fprintf(fp, "  -h, --help%*sthis help\n", COL - 12, "");
}

const char *fm_cli_user(void) {
  const char *u = getenv("USER");
  return u && *u ? u : "cli";
}

int fm_cli_open_store(const char *path, unsigned how, int busy_ms, fm_store **out) {
  fm_store_opts o;
  fm_store_opts_default(&o);
  o.readonly = (how & FM_CLI_READONLY) != 0;
  o.create = (how & FM_CLI_CREATE) != 0;
  if (busy_ms > 0) o.busy_timeout_ms = busy_ms;
  fm_error err;
  fm_error_init(&err);
  fm_rc rc = fm_store_open(path, &o, out, &err);
  if (rc == FM_ERR_NOTFOUND) { /* the one line issue 15 names, as is */
    fprintf(stderr, "fieldmatch: %s\n", err.msg);
    return FM_EXIT_FAIL;
  }
  return rc ? fm_cli_fail(&err) : FM_EXIT_OK;
}
