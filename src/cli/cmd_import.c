/* cmd_import.c: fieldmatch import --db D --config C: load a training
 * config's dictionaries into the store (versioned; curated mappings kept). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

typedef struct import_args {
  const char *db, *config, *by;
  int quiet;
} import_args;

static const fm_cli_opt opts[] = {
    FM_OPT_REQ(import_args, config, "--config", 0, "CONFIG.json", "the training config"),
    FM_OPT_DB(import_args, db),
    FM_OPT_STR(import_args, by, "--by", 0, "NAME", "who imports (default $USER)"),
    FM_OPT_FLAG(import_args, quiet, "--quiet", 'q', "print less while reading the dictionaries"),
    FM_OPT_END};

static const fm_cli_spec spec = {
    .cmd = "import",
    .usage = "usage: fieldmatch import --config CONFIG.json [--db " FM_CLI_DB_DEFAULT "] [--by NAME]\n"
             "                         [--quiet]\n",
    .about =
        "Import the reference and query dictionaries named by a training config into\n"
        "the database, as dictionaries '<config name>:reference' and\n"
        "'<config name>:query'.  Importing a changed file again records a new version:\n"
        "new fields are added, changed and removed fields flag the mappings that use\n"
        "them, and no analyst decision is ever deleted.  An unchanged file is a no-op.\n"
        "import creates the database when it does not exist (docs/store.md).\n",
    .opts = opts};

static void report(const char *what, const fm_dict_result *r) {
  if (r->unchanged)
    printf("%-9s unchanged (version %d, %zu fields)\n", what, r->version, r->kept);
  else
    printf("%-9s version %d: %zu added, %zu changed, %zu removed, %zu kept; "
           "%zu mapping(s) flagged\n",
           what, r->version, r->added, r->changed, r->removed, r->kept, r->flagged);
}

int fm_cmd_import(int argc, char **argv) {
  import_args a = {.db = FM_CLI_DB_DEFAULT};
  int npos, prc = fm_cli_parse(&spec, argc, argv, &a, &npos);
  if (prc >= 0) return prc;
  if (!a.by) a.by = fm_cli_user();
  const char *by = a.by;

  fm_error err;
  fm_error_init(&err);
  fm_config *c = NULL;
  fm_store *st = NULL;
  fm_fieldset refs, queries;
  fm_fieldset_init(&refs);
  fm_fieldset_init(&queries);
  int rc = FM_EXIT_FAIL;
  if (fm_config_load(a.config, &c, &err) ||
      fm_config_import(c, &refs, &queries, a.quiet, &err)) {
    fm_cli_fail(&err);
    goto out;
  }
  if (fm_cli_open_store(a.db, FM_CLI_CREATE, 0, &st)) goto out;
  char label[512];
  fm_dict_result r;
  fm_store_dict_label(c->name, FM_ROLE_REFERENCE, label, sizeof label);
  if (fm_store_import_set(st, label, FM_ROLE_REFERENCE, &refs, by, &r, &err)) {
    fm_cli_fail(&err);
    goto out;
  }
  report("reference", &r);
  fm_store_dict_label(c->name, FM_ROLE_QUERY, label, sizeof label);
  if (fm_store_import_set(st, label, FM_ROLE_QUERY, &queries, by, &r, &err)) {
    fm_cli_fail(&err);
    goto out;
  }
  report("query", &r);
  rc = FM_EXIT_OK;
out:
  fm_store_close(st);
  fm_fieldset_free(&refs);
  fm_fieldset_free(&queries);
  fm_config_free(c);
  return rc;
}
