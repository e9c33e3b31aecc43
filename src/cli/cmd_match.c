/* cmd_match.c: fieldmatch match --model M [--db D] [-k K] [--json] ID... | -
 * With --db, curated first: a query field's accepted mapping is answered
 * before the model's candidates and marked curated; and the candidates are
 * ranked with the learning layer built from that database's decisions. */
#include "cli.h"
#include "fm_jobs.h"

#include <math.h>
#include <string.h>

typedef struct match_args {
  const char *model, *db;
  int k, json;
} match_args;

static const fm_cli_opt opts[] = {
    FM_OPT_REQ(match_args, model, "--model", 0, "MODEL.fmm", "the model"),
    FM_OPT_STR(match_args, db, "--db", 0, "FILE",
               "curated first from this database (read-only;\nit must exist)"),
    FM_OPT_NUM(match_args, k, FM_CLI_INT, "-k", 1, 1000, "K", "candidates per field (default 10)"),
    FM_OPT_FLAG(match_args, json, "--json", 0, "one JSON object per field"),
    FM_OPT_END};

static const fm_cli_spec spec = {
    .cmd = "match",
    .usage = "usage: fieldmatch match --model MODEL.fmm [--db D] [-k K] [--json] FIELD... \n"
             "       fieldmatch match --model MODEL.fmm [--db D] [-k K] [--json] -   (stdin)\n",
    .about = "Ranks the reference fields for each query field id.  An id that is not a\n"
             "query field of the model is matched as a bare mnemonic.\n"
             "With --db D, a field's accepted mapping in that database (see 'fieldmatch\n"
             "review') comes first, marked curated (\"curated\": true in --json); the\n"
             "model's candidates follow without repeating it, ranked with what the\n"
             "decisions in D teach (the learning layer, docs/scoring.md).\n",
    .opts = opts,
    .max_pos = -1};

/* The accepted mapping of query field id in st (borrowed into arena), or
 * found = 0.  A field the store does not know has none; a store error is
 * an error. */
static int curated(fm_store *st, const char *vendor, const char *id, fm_arena *arena,
                   fm_mapping_row *out, int *found) {
  fm_error err;
  fm_error_init(&err);
  int64_t fid;
  *found = 0;
  fm_rc rc = fm_review_resolve(st, vendor, id, FM_ROLE_QUERY, &fid, &err);
  if (rc == FM_ERR_NOTFOUND || rc == FM_ERR_ARG) return FM_EXIT_OK;
  if (rc || fm_review_accepted(st, fid, arena, out, found, &err)) return fm_cli_fail(&err);
  return FM_EXIT_OK;
}

/* The reference field's keys of a --json candidate, from "id" to "vendor"
 * (strings borrowed from the caller). */
static void print_ref(const char *id, const char *name, const char *description,
                      const char *type, const char *vendor) {
  const char *key[] = {"id", "name", "description", "type", "vendor"};
  const char *val[] = {id, name, description, type, vendor};
  for (int i = 0; i < 5; i++) {
    printf("%s\"%s\": ", i ? ", " : "", key[i]);
    fm_cli_json_str(stdout, val[i]);
  }
}

static int one(fm_matcher *mt, const fm_learn *L, const fm_model *m, fm_store *st,
               const char *id, int k, int json, fm_candidate *c) {
  fm_error err;
  fm_error_init(&err);
  int n = 0;
  if (fm_match_learned(mt, L, id, NULL, k, c, &n, &err)) return fm_cli_fail(&err);
  long qi = fm_model_find_query(m, id);
  fm_field q;
  if (qi >= 0) fm_model_query(m, (size_t)qi, &q);

  /* Curated first: the accepted reference takes rank 1 and leaves the
   * model's list; the model's own score for it is kept when it had one. */
  fm_arena arena;
  fm_arena_init(&arena);
  fm_mapping_row cur;
  int has_cur = 0;
  float cur_score = NAN;
  if (st && curated(st, qi >= 0 ? q.vendor : NULL, id, &arena, &cur, &has_cur)) {
    fm_arena_free(&arena);
    return FM_EXIT_FAIL;
  }
  if (has_cur) {
    int w = 0;
    for (int i = 0; i < n; i++) {
      fm_field r;
      fm_model_ref(m, c[i].ref, &r);
      if (!strcmp(r.id, cur.ref.id) && !strcmp(r.vendor, cur.ref.vendor)) cur_score = c[i].score;
      else if (w < k - 1) c[w++] = c[i];
    }
    n = w;
  }
  int base = has_cur ? 1 : 0; /* rank offset of the model's candidates */

  if (json) {
    printf("{\"field\": ");
    fm_cli_json_str(stdout, id);
    printf(", \"known\": %s, \"candidates\": [", qi >= 0 ? "true" : "false");
    if (has_cur) {
      printf("{\"rank\": 1, ");
      print_ref(cur.ref.id, cur.ref.name, cur.ref.description, cur.ref.type, cur.ref.vendor);
      if (isnan(cur_score)) printf(", \"score\": null");
      else printf(", \"score\": %.4f", cur_score);
      printf(", \"curated\": true, \"by\": ");
      fm_cli_json_str(stdout, cur.by);
      printf(", \"at\": ");
      fm_cli_json_str(stdout, cur.at);
      printf(", \"mapping_key\": ");
      fm_cli_json_str(stdout, cur.key);
      printf("}");
    }
    for (int i = 0; i < n; i++) {
      fm_field r;
      fm_model_ref(m, c[i].ref, &r);
      printf("%s{\"rank\": %d, ", i + base ? ", " : "", i + 1 + base);
      print_ref(r.id, r.name, r.description, r.type, r.vendor);
      printf(", \"score\": %.4f, \"confidence\": %.4f, %s\"components\": {\"title\": %.4f, "
             "\"full\": %.4f, \"chars\": %.4f, \"lsa\": %.4f, \"prior\": %.4f, "
             "\"variant\": %.0f, \"order\": %.4f, \"other\": %.0f, \"date\": %.0f}}",
             c[i].score, c[i].confidence, st ? "\"curated\": false, " : "", c[i].s_title, c[i].s_full,
             c[i].s_chars, c[i].s_lsa, c[i].s_prior, c[i].s_variant, c[i].s_order,
             c[i].s_other, c[i].s_date);
    }
    printf("]}\n");
  } else {
    printf("%s%s%s%s\n", id, qi >= 0 && q.name[0] ? " (" : "", qi >= 0 ? q.name : "",
           qi >= 0 && q.name[0] ? ")" : qi < 0 ? "  [not a known query field: matched as a mnemonic]" : "");
    if (n + base == 0) printf("   no candidates (no known terms)\n");
    if (has_cur) {
      char desc[61];
      snprintf(desc, sizeof desc, "%s", cur.ref.description);
      printf("   1. %-14s curated %-32.32s %s%s  (accepted by %s)\n", cur.ref.id, cur.ref.name,
             desc, strlen(cur.ref.description) > 60 ? "..." : "", cur.by);
    }
    for (int i = 0; i < n; i++) {
      fm_field r;
      fm_model_ref(m, c[i].ref, &r);
      char desc[61];
      snprintf(desc, sizeof desc, "%s", r.description);
      printf("  %2d. %-14s %6.3f  %-32.32s %s%s\n", i + 1 + base, r.id, c[i].score, r.name,
             desc, strlen(r.description) > 60 ? "..." : "");
    }
  }
  fm_arena_free(&arena);
  return FM_EXIT_OK;
}

int fm_cmd_match(int argc, char **argv) {
  match_args a = {.k = 10};
  int npos, prc = fm_cli_parse(&spec, argc, argv, &a, &npos);
  if (prc >= 0) return prc;
  const char *model = a.model;
  int k = a.k, json = a.json, from_stdin = 0, nids = 0;
  /* The field ids, in argv's place (fm_cli_parse moved them to the front);
   * "-" reads more from stdin. */
  char **ids = argv;
  for (int i = 0; i < npos; i++) {
    if (!strcmp(argv[i], "-")) from_stdin = 1;
    else ids[nids++] = argv[i];
  }
  if (!nids && !from_stdin) return fm_cli_usage("match", "give field ids, or - to read them from stdin");
  fm_error err;
  fm_error_init(&err);
  /* Read-only: looking answers up must never migrate, lock or create
   * anything. */
  fm_store *st = NULL;
  if (a.db && fm_cli_open_store(a.db, FM_CLI_READONLY, 0, &st)) return FM_EXIT_FAIL;
  fm_model *m = fm_cli_open_model(model);
  if (!m) {
    fm_store_close(st);
    return FM_EXIT_FAIL;
  }
  fm_matcher *mt;
  fm_learn *L = NULL;
  fm_candidate *c = fm_calloc((size_t)k, sizeof *c);
  int status = FM_EXIT_OK;
  if (!c || (st && fm_jobs_learn_build(st, m, NULL, &L, &err)) || fm_matcher_new(m, &mt, &err)) {
    fm_learn_free(L);
    fm_free(c);
    fm_model_close(m);
    fm_store_close(st);
    return fm_cli_fail(&err);
  }
  for (int i = 0; i < nids && status == FM_EXIT_OK; i++) status = one(mt, L, m, st, ids[i], k, json, c);
  if (from_stdin) {
    char line[4096];
    while (status == FM_EXIT_OK && fgets(line, sizeof line, stdin)) {
      line[strcspn(line, "\r\n")] = '\0';
      char *s = line;
      while (*s == ' ' || *s == '\t') s++;
      if (!*s) continue;
      status = one(mt, L, m, st, s, k, json, c);
    }
  }
  fm_matcher_free(mt);
  fm_learn_free(L); /* before its model */
  fm_free(c);
  fm_model_close(m);
  fm_store_close(st);
  return status;
}
