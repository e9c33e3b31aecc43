/* cmd_match.c: fieldmatch match --model M [-k K] [--json] ID... | - */
#include "cli.h"

#include <string.h>

static const char *help =
    "usage: fieldmatch match --model MODEL.fmm [-k K] [--json] FIELD... \n"
    "       fieldmatch match --model MODEL.fmm [-k K] [--json] -   (ids on stdin)\n"
    "Ranks the reference fields for each query field id.  An id that is not a\n"
    "query field of the model is matched as a bare mnemonic.\n";

static int one(fm_matcher *mt, const fm_model *m, const char *id, int k, int json,
               fm_candidate *c) {
  fm_error err;
  fm_error_init(&err);
  int n = 0;
  if (fm_match(mt, id, NULL, k, c, &n, &err)) return fm_cli_fail(&err);
  long qi = fm_model_find_query(m, id);
  fm_field q;
  if (qi >= 0) fm_model_query(m, (size_t)qi, &q);
  if (json) {
    printf("{\"field\": ");
    fm_cli_json_str(stdout, id);
    printf(", \"known\": %s, \"candidates\": [", qi >= 0 ? "true" : "false");
    for (int i = 0; i < n; i++) {
      fm_field r;
      fm_model_ref(m, c[i].ref, &r);
      printf("%s{\"rank\": %d, \"id\": ", i ? ", " : "", i + 1);
      fm_cli_json_str(stdout, r.id);
      printf(", \"name\": ");
      fm_cli_json_str(stdout, r.name);
      printf(", \"description\": ");
      fm_cli_json_str(stdout, r.description);
      printf(", \"type\": ");
      fm_cli_json_str(stdout, r.type);
      printf(", \"vendor\": ");
      fm_cli_json_str(stdout, r.vendor);
      printf(", \"score\": %.4f, \"components\": {\"title\": %.4f, \"full\": %.4f, "
             "\"chars\": %.4f, \"lsa\": %.4f, \"prior\": %.4f}}",
             c[i].score, c[i].s_title, c[i].s_full, c[i].s_chars, c[i].s_lsa, c[i].s_prior);
    }
    printf("]}\n");
  } else {
    printf("%s%s%s%s\n", id, qi >= 0 && q.name[0] ? " (" : "", qi >= 0 ? q.name : "",
           qi >= 0 && q.name[0] ? ")" : qi < 0 ? "  [not a known query field: matched as a mnemonic]" : "");
    if (n == 0) printf("   no candidates (no known terms)\n");
    for (int i = 0; i < n; i++) {
      fm_field r;
      fm_model_ref(m, c[i].ref, &r);
      char desc[61];
      snprintf(desc, sizeof desc, "%s", r.description);
      printf("  %2d. %-14s %6.3f  %-32.32s %s%s\n", i + 1, r.id, c[i].score, r.name, desc,
             strlen(r.description) > 60 ? "..." : "");
    }
  }
  return FM_EXIT_OK;
}

int fm_cmd_match(int argc, char **argv) {
  const char *model = NULL;
  int k = 10, json = 0, from_stdin = 0;
  const char **ids = fm_calloc((size_t)argc, sizeof *ids);
  int nids = 0;
  if (!ids) return FM_EXIT_FAIL;
  for (int i = 1; i < argc; i++) {
    int missing = 0;
    const char *v;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(help, stdout);
      fm_free(ids);
      return FM_EXIT_OK;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--model", &missing))) {
      model = v;
    } else if ((v = fm_cli_opt(argc, argv, &i, "-k", &missing))) {
      long kv = fm_cli_int(v);
      if (kv < 1 || kv > 1000) {
        fm_free(ids);
        return fm_cli_usage("match", "-k needs an integer in 1..1000, not '%s'", v);
      }
      k = (int)kv;
    } else if (!strcmp(argv[i], "--json")) {
      json = 1;
    } else if (!strcmp(argv[i], "-")) {
      from_stdin = 1;
    } else if (missing || (argv[i][0] == '-' && argv[i][1])) {
      fm_free(ids);
      return fm_cli_usage("match", missing ? "option %s needs a value" : "unknown option '%s'",
                          argv[i]);
    } else {
      ids[nids++] = argv[i];
    }
  }
  if (!model) {
    fm_free(ids);
    return fm_cli_usage("match", "--model is required");
  }
  if (!nids && !from_stdin) {
    fm_free(ids);
    return fm_cli_usage("match", "give field ids, or - to read them from stdin");
  }
  fm_model *m = fm_cli_open_model(model);
  if (!m) {
    fm_free(ids);
    return FM_EXIT_FAIL;
  }
  fm_error err;
  fm_error_init(&err);
  fm_matcher *mt;
  fm_candidate *c = fm_calloc((size_t)k, sizeof *c);
  int status = FM_EXIT_OK;
  if (!c || fm_matcher_new(m, &mt, &err)) {
    fm_free(c);
    fm_free(ids);
    fm_model_close(m);
    return fm_cli_fail(&err);
  }
  for (int i = 0; i < nids && status == FM_EXIT_OK; i++) status = one(mt, m, ids[i], k, json, c);
  if (from_stdin) {
    char line[4096];
    while (status == FM_EXIT_OK && fgets(line, sizeof line, stdin)) {
      line[strcspn(line, "\r\n")] = '\0';
      char *s = line;
      while (*s == ' ' || *s == '\t') s++;
      if (!*s) continue;
      status = one(mt, m, s, k, json, c);
    }
  }
  fm_matcher_free(mt);
  fm_free(c);
  fm_free(ids);
  fm_model_close(m);
  return status;
}
