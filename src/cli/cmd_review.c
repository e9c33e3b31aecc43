/* cmd_review.c: fieldmatch review queue|show|accept|reject|pick|none|comment|
 * history|export-pairs: the analyst's side of the store.  A thin front end:
 * every read and write is a review.c function the HTTP server calls too. */
#include "cli.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct review_args {
  const char *db, *by, *comment, *qvendor, *rvendor, *out, *status, *expect, *none_out;
  long limit, offset, wait_ms;
  int json;
  const char *pos[4]; /* positional arguments after the subcommand, from pos[1] */
  int npos;
} review_args;

static const fm_cli_opt opts[] = {
    FM_OPT_DB(review_args, db),
    FM_OPT_STR(review_args, by, "--by", 0, "NAME", "who decides (default $USER)"),
    FM_OPT_STR(review_args, comment, "--comment", 0, "TEXT", "a note kept with the decision"),
    FM_OPT_STR(review_args, expect, "--expect", 0, "REF|none|no_equivalent",
               "decide only if the field's decision is still\nthat"),
    FM_OPT_STR(review_args, qvendor, "--query-vendor", 0, "V",
               "when a query id is used by more than one vendor"),
    FM_OPT_STR(review_args, rvendor, "--ref-vendor", 0, "V", "the same for reference ids"),
    FM_OPT_NUM(review_args, limit, FM_CLI_LONG, "--limit", 1, 0, "N", "queue: rows (default 50)"),
    FM_OPT_NUM(review_args, offset, FM_CLI_LONG, "--offset", 0, 0, "N", "queue: rows to skip"),
    FM_OPT_FLAG(review_args, json, "--json", 0, "JSON output"),
    FM_OPT_STR(review_args, out, "--output", 'o', "FILE", "export-pairs: write FILE (default stdout)"),
    FM_OPT_STR(review_args, status, "--status", 0, "S", "export-pairs: accepted, rejected or all"),
    FM_OPT_STR(review_args, none_out, "--none-output", 0, "FILE",
               "export-pairs: also write the no_equivalent\nfields to FILE"),
    FM_OPT_NUM(review_args, wait_ms, FM_CLI_LONG, "--wait", 1, 0, "MS",
               "wait for a locked database per attempt\n(default 2000)"),
    FM_OPT_END};

static const fm_cli_spec spec = {
    .cmd = "review",
    .usage =
        "usage: fieldmatch review queue   [--limit N] [--offset N] [--json]\n"
        "       fieldmatch review show    FIELD [--json]\n"
        "       fieldmatch review accept  FIELD REF [--by NAME] [--comment TEXT] [--expect REF|none]\n"
        "       fieldmatch review reject  FIELD REF [--by NAME] [--comment TEXT] [--expect REF|none]\n"
        "       fieldmatch review pick    FIELD REF [--by NAME] [--comment TEXT] [--expect REF|none]\n"
        "       fieldmatch review none    FIELD [--by NAME] [--comment TEXT] [--expect REF|none]\n"
        "       fieldmatch review comment FIELD REF --comment TEXT [--by NAME]\n"
        "       fieldmatch review history FIELD [--json]\n"
        "       fieldmatch review export-pairs [-o FILE] [--status accepted|rejected|all]\n"
        "                                      [--none-output FILE]\n",
    .about =
        "FIELD is a query field id, REF a reference field id.  'accept' takes one of\n"
        "the field's candidates (or a proposed mapping); 'pick' takes any reference\n"
        "field in the database; 'none' records that the field has no equivalent\n"
        "(it leaves the queue; a later accept or pick replaces it, and 'reject FIELD\n"
        "-' withdraws it).  Accepting supersedes the field's previous accepted\n"
        "mapping; history keeps every step.  --by defaults to $USER.  --expect makes\n"
        "the decision conditional on the accepted mapping you saw ('none' = no\n"
        "accepted mapping): if someone changed it meanwhile, nothing is written and\n"
        "the command fails.\n"
        "\n"
        "export-pairs writes TSV (query_id, reference_id, status, by, at).  The\n"
        "default, --status accepted, can be used directly as a config's\n"
        "train_pairs; a file with rejected rows cannot (every row of a pairs file\n"
        "is read as a positive pair).  --none-output FILE writes the fields decided\n"
        "no_equivalent (query_id, query_vendor, by, at) to a file of their own.\n"
        "The database must exist (docs/store.md).\n",
    .opts = opts,
    .max_pos = 3};

/* Parse argv (argv[0] is the subcommand); -1 to go on, else the exit code. */
static int parse(int argc, char **argv, review_args *a) {
  memset(a, 0, sizeof *a);
  a->db = FM_CLI_DB_DEFAULT;
  int npos, prc = fm_cli_parse(&spec, argc, argv, a, &npos);
  if (prc >= 0) return prc;
  for (int i = 0; i < npos; i++) a->pos[++a->npos] = argv[i];
  if (!a->by) a->by = fm_cli_user();
  return -1;
}

static fm_store *open_store(const review_args *a) {
  fm_store *st = NULL;
  int ms = a->wait_ms > 600000 ? 600000 : (int)a->wait_ms;
  return fm_cli_open_store(a->db, FM_CLI_OPEN, ms, &st) ? NULL : st;
}

/* Print a JSON value (consumed) on stdout; NULL means allocation failed. */
static int print_json(json_t *j) {
  if (!j) {
    fprintf(stderr, "fieldmatch: error: out of memory building JSON\n");
    return FM_EXIT_FAIL;
  }
  char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(j);
  if (!s) {
    fprintf(stderr, "fieldmatch: error: out of memory building JSON\n");
    return FM_EXIT_FAIL;
  }
  puts(s);
  free(s);
  return FM_EXIT_OK;
}

/* Text of at most n bytes, "..." when cut; written to out (size n + 4). */
static const char *clip(const char *s, size_t n, char *out) {
  size_t len = strlen(s);
  if (len <= n) return s;
  /* Do not cut a UTF-8 sequence in half. */
  while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
  memcpy(out, s, n);
  memcpy(out + n, "...", 4);
  return out;
}

static int cmd_queue(fm_store *st, const review_args *a) {
  fm_queue_page p;
  fm_error err;
  fm_error_init(&err);
  int rc = FM_EXIT_OK;
  if (fm_review_queue(st, (size_t)(a->limit > 0 ? a->limit : 50), (size_t)a->offset, &p,
                      &err)) {
    rc = fm_cli_fail(&err);
  } else if (a->json) {
    rc = print_json(fm_review_queue_json(&p));
  } else {
    printf("%lld field(s) waiting for review", (long long)p.total);
    if (p.n < (size_t)p.total)
      printf(" (showing %zu from %ld)", p.n, a->offset + 1);
    printf("\n");
    if (p.n)
      printf("%-5s %-22s %-11s %-20s %-22s %s\n", "unc", "field", "vendor", "reason",
             "top candidate", "score");
    for (size_t i = 0; i < p.n; i++) {
      const fm_queue_item *it = &p.v[i];
      printf("%5.3f %-22s %-11s %-20s %-22s ", it->uncertainty, it->query.id,
             it->query.vendor, it->reason, it->has_top ? it->top.id : "-");
      if (it->has_top) printf("%.3f\n", it->top_cand_score);
      else printf("-\n");
    }
  }
  fm_queue_page_free(&p);
  return rc;
}

static const char *mark(fm_map_status s) {
  switch (s) {
  case FM_MAP_ACCEPTED: return "ACCEPTED";
  case FM_MAP_REJECTED: return "rejected";
  case FM_MAP_PROPOSED: return "proposed";
  case FM_MAP_SUPERSEDED: return "superseded";
  case FM_MAP_NO_EQUIVALENT: return "NO EQUIVALENT";
  }
  return "";
}

static void print_view(const fm_field_view *v) {
  char buf[512];
  const fm_field_row *f = &v->field;
  printf("%s %s  %s%s\n", f->vendor, f->id, f->name,
         strcmp(f->status, "active") ? "  [removed from its dictionary]" : "");
  if (f->type[0] || f->category[0]) printf("  type %s, category %s\n", f->type, f->category);
  if (f->description[0]) printf("  %s\n", clip(f->description, 400, buf));
  if (v->queued) printf("  in the review queue (%s)\n", v->queue_reason);
  if (v->accepted)
    printf("  accepted: %s %s by %s at %s%s%s\n", v->accepted->ref.vendor, v->accepted->ref.id,
           v->accepted->by, v->accepted->at, v->accepted->flag ? "  FLAGGED: " : "",
           v->accepted->flag ? v->accepted->flag : "");
  else if (v->no_equivalent)
    printf("  no equivalent: decided by %s at %s\n", v->no_equivalent->by, v->no_equivalent->at);
  else
    printf("  accepted: none\n");
  if (!v->batch_run) {
    printf("\nno candidates (no batch run has ranked this field)\n");
  } else {
    printf("\ncandidates from batch run %lld:\n", (long long)v->batch_run);
    for (size_t i = 0; i < v->ncands; i++) {
      const fm_review_cand *c = &v->cands[i];
      printf("  %2d. %-20s %6.3f  %-10s %s\n", c->rank, c->ref.id, c->score, mark(c->status),
             clip(c->ref.name, 40, buf));
      if (c->ref.description[0]) printf("      %s\n", clip(c->ref.description, 110, buf));
    }
  }
  /* Decisions about references that are not among the candidates (picks,
   * imports, older runs). */
  int header = 0;
  for (size_t i = 0; i < v->ndecisions; i++) {
    const fm_mapping_row *m = &v->decisions[i];
    int is_cand = 0;
    for (size_t j = 0; j < v->ncands && !is_cand; j++)
      is_cand = v->cands[j].ref.field_id == m->ref.field_id;
    if (is_cand || !m->ref.field_id) continue;
    if (!header++) printf("\nother decisions:\n");
    printf("  %-20s %-10s %-8s by %s at %s  %s\n", m->ref.id, mark(m->status), m->origin, m->by,
           m->at, clip(m->ref.name, 40, buf));
    if (m->ref.description[0]) printf("      %s\n", clip(m->ref.description, 110, buf));
  }
}

static int resolve(fm_store *st, const char *vendor, const char *id, fm_role role,
                   int64_t *out) {
  fm_error err;
  fm_error_init(&err);
  if (fm_review_resolve(st, vendor, id, role, out, &err)) return fm_cli_fail(&err);
  return FM_EXIT_OK;
}

static int cmd_show(fm_store *st, const review_args *a) {
  int64_t q;
  if (resolve(st, a->qvendor, a->pos[1], FM_ROLE_QUERY, &q)) return FM_EXIT_FAIL;
  fm_field_view v;
  fm_error err;
  fm_error_init(&err);
  int rc = FM_EXIT_OK;
  if (fm_review_show(st, q, &v, &err)) rc = fm_cli_fail(&err);
  else if (a->json) rc = print_json(fm_review_view_json(&v));
  else print_view(&v);
  fm_field_view_free(&v);
  return rc;
}

static int cmd_history(fm_store *st, const review_args *a) {
  int64_t q;
  if (resolve(st, a->qvendor, a->pos[1], FM_ROLE_QUERY, &q)) return FM_EXIT_FAIL;
  fm_audit_list l;
  fm_error err;
  fm_error_init(&err);
  int rc = FM_EXIT_OK;
  if (fm_review_history(st, q, &l, &err)) {
    rc = fm_cli_fail(&err);
  } else if (a->json) {
    rc = print_json(fm_review_history_json(&l));
  } else {
    if (!l.n) printf("%s: no decisions yet\n", a->pos[1]);
    for (size_t i = 0; i < l.n; i++) {
      const fm_audit_row *r = &l.v[i];
      /* The pair and what changed, from the after image. */
      json_t *after = r->after ? json_loads(r->after, 0, NULL) : NULL;
      const char *ref = json_string_value(json_object_get(after, "ref"));
      const char *status = json_string_value(json_object_get(after, "status"));
      const char *comment = json_string_value(json_object_get(after, "comment"));
      int none_row = after && json_is_null(json_object_get(after, "ref"));
      printf("%s  %-10s %-16s %-20s %s", r->at, r->action, r->actor,
             ref ? ref : none_row ? "(none)" : r->entity_key,
             status ? status : "");
      /* every action's comment but a supersede's, whose after image
       * carries the superseded decision's comment */
      if (comment && *comment && strcmp(r->action, "supersede") != 0)
        printf("  \"%s\"", comment);
      printf("\n");
      json_decref(after);
    }
  }
  fm_audit_list_free(&l);
  return rc;
}

static int cmd_decide(fm_store *st, const review_args *a, fm_review_action action) {
  fm_review_req r = {.action = action, .by = a->by, .comment = a->comment, .expect_ref = -1};
  /* REF "-" (reject, comment): the field's no-equivalent row. */
  int no_ref = action == FM_REVIEW_NONE || !strcmp(a->pos[2], "-");
  if (resolve(st, a->qvendor, a->pos[1], FM_ROLE_QUERY, &r.query_field) ||
      (!no_ref && resolve(st, a->rvendor, a->pos[2], FM_ROLE_REFERENCE, &r.ref_field)))
    return FM_EXIT_FAIL;
  if (a->expect) {
    if (!strcmp(a->expect, "none")) r.expect_ref = 0;
    else if (!strcmp(a->expect, "no_equivalent")) r.expect_ref = 0, r.expect_none = 1;
    else if (resolve(st, a->rvendor, a->expect, FM_ROLE_REFERENCE, &r.expect_ref))
      return FM_EXIT_FAIL;
  }
  fm_error err;
  fm_error_init(&err);
  int64_t mid = 0;
  if (fm_review_apply(st, &r, &mid, &err)) return fm_cli_fail(&err);
  static const char *const done[] = {"",         "accepted",     "rejected",
                                     "picked",   "commented on", "no equivalent:"};
  printf("%s %s -> %s (mapping #%lld, by %s)\n", done[action], a->pos[1],
         no_ref ? "(none)" : a->pos[2], (long long)mid, a->by);
  return FM_EXIT_OK;
}

/* --none-output FILE: the no_equivalent fields, written atomically. */
static int export_none(fm_store *st, const review_args *a) {
  if (!a->none_out) return FM_EXIT_OK;
  fm_error err;
  fm_error_init(&err);
  fm_atomic at;
  size_t n = 0;
  if (fm_atomic_open(&at, a->none_out, &err)) return fm_cli_fail(&err);
  if (fm_review_export_none(st, at.fp, &n, &err)) {
    fm_atomic_abort(&at);
    return fm_cli_fail(&err);
  }
  if (fm_atomic_commit(&at, &err)) return fm_cli_fail(&err);
  fprintf(stderr, "wrote %zu no_equivalent field(s) to %s\n", n, a->none_out);
  return FM_EXIT_OK;
}

static int cmd_export(fm_store *st, const review_args *a) {
  unsigned which = FM_EXPORT_ACCEPTED;
  if (a->status) {
    if (!strcmp(a->status, "accepted")) which = FM_EXPORT_ACCEPTED;
    else if (!strcmp(a->status, "rejected")) which = FM_EXPORT_REJECTED;
    else if (!strcmp(a->status, "all")) which = FM_EXPORT_ACCEPTED | FM_EXPORT_REJECTED;
    else
      return fm_cli_usage("review", "--status is accepted, rejected or all, not '%s'",
                          a->status);
  }
  fm_error err;
  fm_error_init(&err);
  size_t n = 0;
  if (!a->out || !strcmp(a->out, "-")) {
    if (fm_review_export_pairs(st, stdout, which, &n, &err)) return fm_cli_fail(&err);
    if (fflush(stdout)) return FM_EXIT_FAIL;
    return export_none(st, a);
  }
  fm_atomic at;
  if (fm_atomic_open(&at, a->out, &err)) return fm_cli_fail(&err);
  if (fm_review_export_pairs(st, at.fp, which, &n, &err)) {
    fm_atomic_abort(&at);
    return fm_cli_fail(&err);
  }
  if (fm_atomic_commit(&at, &err)) return fm_cli_fail(&err);
  fprintf(stderr, "wrote %zu decision(s) to %s\n", n, a->out);
  return export_none(st, a);
}

int fm_cmd_review(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    fm_cli_help(&spec, argc < 2 ? stderr : stdout);
    return argc < 2 ? FM_EXIT_USAGE : FM_EXIT_OK;
  }
  static const struct {
    const char *name;
    int nargs; /* positional arguments after the subcommand */
    const char *what;
  } subs[] = {{"queue", 0, ""},          {"show", 1, "FIELD"},       {"accept", 2, "FIELD REF"},
              {"reject", 2, "FIELD REF"}, {"pick", 2, "FIELD REF"},   {"comment", 2, "FIELD REF"},
              {"history", 1, "FIELD"},    {"export-pairs", 0, ""},    {"none", 1, "FIELD"}};
  int sub = -1;
  for (int i = 0; i < (int)(sizeof subs / sizeof subs[0]); i++)
    if (!strcmp(argv[1], subs[i].name)) sub = i;
  if (sub < 0) return fm_cli_usage("review", "unknown review command '%s'", argv[1]);
  review_args a;
  int prc = parse(argc - 1, argv + 1, &a);
  if (prc >= 0) return prc;
  if (a.npos != subs[sub].nargs)
    return fm_cli_usage("review", "review %s takes %s (got %d argument%s)", subs[sub].name,
                        subs[sub].nargs ? subs[sub].what : "no arguments", a.npos,
                        a.npos == 1 ? "" : "s");
  if (sub == 5 && (!a.comment || !*a.comment))
    return fm_cli_usage("review", "review comment needs --comment TEXT");
  fm_store *st = open_store(&a);
  if (!st) return FM_EXIT_FAIL;
  int rc;
  switch (sub) {
  case 0: rc = cmd_queue(st, &a); break;
  case 1: rc = cmd_show(st, &a); break;
  case 2: rc = cmd_decide(st, &a, FM_REVIEW_ACCEPT); break;
  case 3: rc = cmd_decide(st, &a, FM_REVIEW_REJECT); break;
  case 4: rc = cmd_decide(st, &a, FM_REVIEW_PICK); break;
  case 5: rc = cmd_decide(st, &a, FM_REVIEW_COMMENT); break;
  case 6: rc = cmd_history(st, &a); break;
  case 7: rc = cmd_export(st, &a); break;
  default: rc = cmd_decide(st, &a, FM_REVIEW_NONE); break;
  }
  fm_store_close(st);
  return rc;
}
