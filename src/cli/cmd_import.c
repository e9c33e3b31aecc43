/* cmd_import.c: fieldmatch import --db D --config C: load a training
 * config's dictionaries into the store (versioned; curated mappings kept). */
#include "cli.h"
#include "fm_store.h"

#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: fieldmatch import --config CONFIG.json [--db fieldmatch.db] [--by NAME]\n"
    "                         [--quiet]\n"
    "\n"
    "Import the reference and query dictionaries named by a training config into\n"
    "the database, as dictionaries '<config name>:reference' and\n"
    "'<config name>:query'.  Importing a changed file again records a new version:\n"
    "new fields are added, changed and removed fields flag the mappings that use\n"
    "them, and no analyst decision is ever deleted.  An unchanged file is a no-op.\n";

static void report(const char *what, const fm_dict_result *r) {
  if (r->unchanged)
    printf("%-9s unchanged (version %d, %zu fields)\n", what, r->version, r->kept);
  else
    printf("%-9s version %d: %zu added, %zu changed, %zu removed, %zu kept; "
           "%zu mapping(s) flagged\n",
           what, r->version, r->added, r->changed, r->removed, r->kept, r->flagged);
}

int fm_cmd_import(int argc, char **argv) {
  const char *db = "fieldmatch.db", *config = NULL, *by = NULL;
  int quiet = 0;
  for (int i = 1; i < argc; i++) {
    int missing = 0;
    const char *v;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(usage_text, stdout);
      return FM_EXIT_OK;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--db", &missing))) {
      db = v;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--config", &missing))) {
      config = v;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--by", &missing))) {
      by = v;
    } else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) {
      quiet = 1;
    } else if (missing) {
      return fm_cli_usage("import", "%s needs a value", argv[i]);
    } else {
      return fm_cli_usage("import", "unknown argument '%s'", argv[i]);
    }
  }
  if (!config) return fm_cli_usage("import", "--config is required");
  if (!by) by = getenv("USER") ? getenv("USER") : "cli";

  fm_error err;
  fm_error_init(&err);
  fm_config *c = NULL;
  fm_store *st = NULL;
  fm_fieldset refs, queries;
  fm_fieldset_init(&refs);
  fm_fieldset_init(&queries);
  int rc = FM_EXIT_FAIL;
  if (fm_config_load(config, &c, &err) ||
      fm_config_import(c, &refs, &queries, quiet, &err) ||
      fm_store_open(db, NULL, &st, &err)) {
    fm_cli_fail(&err);
    goto out;
  }
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
