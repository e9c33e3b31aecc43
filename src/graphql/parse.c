/* parse.c: the syntactic grammar of executable documents (spec 2.2-2.12):
 * operations (query, mutation, subscription, the query shorthand),
 * variable definitions with defaults, selection sets, fields with aliases
 * and arguments, fragment spreads, inline fragments, directives and every
 * value literal.  Recursive descent; nesting is bounded (selection sets by
 * lim->max_depth, values and types by MAX_VALUE_DEPTH) so no document can
 * exhaust the stack.  Every node goes to the document's arena. */
#include "gql_internal.h"

#include <string.h>

#define MAX_VALUE_DEPTH 32

typedef struct P {
  gql_lexer lx;
  gql_doc *doc;
  fm_error *err;
  int depth, max_depth, vdepth;
} P;

static fm_rc nomem(P *p) { return fm_error_set(p->err, FM_ERR_NOMEM, "out of memory parsing"); }

static const char *tok_desc(P *p, char *buf, size_t n) {
  gql_lexer *lx = &p->lx;
  switch (lx->tok) {
  case GT_EOF: return "<EOF>";
  case GT_PUNCT:
    if (lx->punct == '.') return "\"...\"";
    snprintf(buf, n, "\"%c\"", lx->punct);
    return buf;
  case GT_NAME: snprintf(buf, n, "Name \"%.*s\"", (int)(lx->tn > 40 ? 40 : lx->tn), lx->ts); return buf;
  case GT_INT: snprintf(buf, n, "Int \"%.*s\"", (int)(lx->tn > 40 ? 40 : lx->tn), lx->ts); return buf;
  case GT_FLOAT: snprintf(buf, n, "Float \"%.*s\"", (int)(lx->tn > 40 ? 40 : lx->tn), lx->ts); return buf;
  case GT_STRING: return "String";
  case GT_BLOCK: return "BlockString";
  }
  return "?";
}

static fm_rc unexpected(P *p, const char *expected) {
  char buf[64];
  const char *found = tok_desc(p, buf, sizeof buf);
  if (expected)
    return fm_error_set(p->err, FM_ERR_PARSE, "%u:%u: Syntax Error: Expected %s, found %s.",
                        p->lx.loc.line, p->lx.loc.col, expected, found);
  return fm_error_set(p->err, FM_ERR_PARSE, "%u:%u: Syntax Error: Unexpected %s.",
                      p->lx.loc.line, p->lx.loc.col, found);
}

static fm_rc next(P *p) { return gql_lex_next(&p->lx, p->err); }

static int is_punct(P *p, char c) { return p->lx.tok == GT_PUNCT && p->lx.punct == c; }
static int is_kw(P *p, const char *kw) {
  return p->lx.tok == GT_NAME && p->lx.tn == strlen(kw) && !memcmp(p->lx.ts, kw, p->lx.tn);
}

static fm_rc expect(P *p, char c) {
  if (!is_punct(p, c)) {
    char e[8];
    snprintf(e, sizeof e, "\"%c\"", c);
    return unexpected(p, c == '.' ? "\"...\"" : e);
  }
  return next(p);
}

/* The current name into the arena (advancing). */
static fm_rc take_name(P *p, const char **out, gql_loc *loc) {
  if (p->lx.tok != GT_NAME) return unexpected(p, "Name");
  if (loc) *loc = p->lx.loc;
  if (!(*out = fm_arena_strndup(&p->doc->arena, p->lx.ts, p->lx.tn))) return nomem(p);
  return next(p);
}

/* A growable array of pointers, copied into the arena when done. */
typedef struct vec {
  void *v;
  size_t n, cap;
} vec;

static fm_rc vec_push(P *p, vec *v, const void *item, size_t elsz) {
  if (fm_grow(&v->v, &v->cap, v->n + 1, elsz)) return nomem(p);
  memcpy((char *)v->v + v->n * elsz, item, elsz);
  v->n++;
  return FM_OK;
}

static fm_rc vec_done(P *p, vec *v, size_t elsz, void **out, size_t *n) {
  *out = NULL;
  *n = v->n;
  if (v->n) {
    *out = fm_arena_alloc(&p->doc->arena, v->n * elsz);
    if (!*out) {
      fm_free(v->v);
      return nomem(p);
    }
    memcpy(*out, v->v, v->n * elsz);
  }
  fm_free(v->v);
  v->v = NULL;
  return FM_OK;
}

static gql_value *new_value(P *p, gql_vkind k) {
  gql_value *v = fm_arena_alloc(&p->doc->arena, sizeof *v);
  if (v) {
    memset(v, 0, sizeof *v);
    v->kind = k;
    v->loc = p->lx.loc;
  }
  return v;
}

static fm_rc parse_value(P *p, int is_const, gql_value **out);

static fm_rc parse_list_value(P *p, int is_const, gql_value *v) {
  vec items = {0};
  fm_rc rc = next(p);
  while (!rc && !is_punct(p, ']')) {
    gql_value *it;
    if (p->lx.tok == GT_EOF) rc = unexpected(p, NULL);
    if (!rc) rc = parse_value(p, is_const, &it);
    if (!rc) rc = vec_push(p, &items, &it, sizeof it);
  }
  if (!rc) rc = next(p);
  if (rc) {
    fm_free(items.v);
    return rc;
  }
  return vec_done(p, &items, sizeof(gql_value *), (void **)&v->items, &v->n);
}

static fm_rc parse_object_value(P *p, int is_const, gql_value *v) {
  vec items = {0}, keys = {0}, locs = {0};
  fm_rc rc = next(p);
  while (!rc && !is_punct(p, '}')) {
    /* set on every path that reaches the pushes; initialised because gcc
     * -O3 (a Release build) cannot see that through take_name */
    const char *k = NULL;
    gql_loc kl = {0};
    gql_value *it = NULL;
    rc = take_name(p, &k, &kl);
    if (!rc) rc = expect(p, ':');
    if (!rc) rc = parse_value(p, is_const, &it);
    if (!rc) rc = vec_push(p, &items, &it, sizeof it);
    if (!rc) rc = vec_push(p, &keys, &k, sizeof k);
    if (!rc) rc = vec_push(p, &locs, &kl, sizeof kl);
  }
  if (!rc) rc = next(p);
  size_t n;
  if (!rc) rc = vec_done(p, &items, sizeof(gql_value *), (void **)&v->items, &v->n);
  if (!rc) rc = vec_done(p, &keys, sizeof(char *), (void **)&v->keys, &n);
  if (!rc) rc = vec_done(p, &locs, sizeof(gql_loc), (void **)&v->key_locs, &n);
  fm_free(items.v);
  fm_free(keys.v);
  fm_free(locs.v);
  return rc;
}

static fm_rc parse_value(P *p, int is_const, gql_value **out) {
  gql_lexer *lx = &p->lx;
  if (++p->vdepth > MAX_VALUE_DEPTH)
    return fm_error_set(p->err, FM_ERR_ARG, "%u:%u: values nest deeper than %d levels",
                        lx->loc.line, lx->loc.col, MAX_VALUE_DEPTH);
  gql_value *v = NULL;
  fm_rc rc = FM_OK;
  if (is_punct(p, '$') && !is_const) {
    if (!(v = new_value(p, GV_VAR))) return nomem(p);
    rc = next(p);
    if (!rc) rc = take_name(p, &v->s, NULL);
  } else if (is_punct(p, '[')) {
    if (!(v = new_value(p, GV_LIST))) return nomem(p);
    rc = parse_list_value(p, is_const, v);
  } else if (is_punct(p, '{')) {
    if (!(v = new_value(p, GV_OBJECT))) return nomem(p);
    rc = parse_object_value(p, is_const, v);
  } else if (lx->tok == GT_INT || lx->tok == GT_FLOAT) {
    if (!(v = new_value(p, lx->tok == GT_INT ? GV_INT : GV_FLOAT))) return nomem(p);
    v->slen = lx->tn;
    if (!(v->s = fm_arena_strndup(&p->doc->arena, lx->ts, lx->tn))) return nomem(p);
    rc = next(p);
  } else if (lx->tok == GT_STRING || lx->tok == GT_BLOCK) {
    if (!(v = new_value(p, GV_STRING))) return nomem(p);
    v->slen = lx->sval.len;
    if (!(v->s = fm_arena_strndup(&p->doc->arena, lx->sval.buf ? lx->sval.buf : "", lx->sval.len)))
      return nomem(p);
    rc = next(p);
  } else if (lx->tok == GT_NAME) {
    gql_vkind k = is_kw(p, "true") || is_kw(p, "false") ? GV_BOOL
                  : is_kw(p, "null")                   ? GV_NULL
                                                       : GV_ENUM;
    if (!(v = new_value(p, k))) return nomem(p);
    rc = take_name(p, &v->s, NULL);
  } else {
    return unexpected(p, NULL);
  }
  p->vdepth--;
  *out = v;
  return rc;
}

static fm_rc parse_args(P *p, int is_const, gql_arg **out, size_t *n) {
  *out = NULL;
  *n = 0;
  if (!is_punct(p, '(')) return FM_OK;
  vec args = {0};
  fm_rc rc = next(p);
  do {
    gql_arg a;
    if (!rc) rc = take_name(p, &a.name, &a.loc);
    if (!rc) rc = expect(p, ':');
    if (!rc) rc = parse_value(p, is_const, &a.value);
    if (!rc) rc = vec_push(p, &args, &a, sizeof a);
  } while (!rc && !is_punct(p, ')'));
  if (!rc) rc = next(p);
  if (rc) {
    fm_free(args.v);
    return rc;
  }
  return vec_done(p, &args, sizeof(gql_arg), (void **)out, n);
}

static fm_rc parse_directives(P *p, int is_const, gql_directive **out, size_t *n) {
  vec dirs = {0};
  fm_rc rc = FM_OK;
  while (!rc && is_punct(p, '@')) {
    gql_directive d;
    d.loc = p->lx.loc;
    rc = next(p);
    if (!rc) rc = take_name(p, &d.name, NULL);
    if (!rc) rc = parse_args(p, is_const, &d.args, &d.nargs);
    if (!rc) rc = vec_push(p, &dirs, &d, sizeof d);
  }
  if (rc) {
    fm_free(dirs.v);
    return rc;
  }
  return vec_done(p, &dirs, sizeof(gql_directive), (void **)out, n);
}

static fm_rc parse_selset(P *p, gql_selset *out);

static fm_rc parse_selection(P *p, gql_sel **out) {
  gql_sel *s = fm_arena_alloc(&p->doc->arena, sizeof *s);
  if (!s) return nomem(p);
  memset(s, 0, sizeof *s);
  s->loc = p->lx.loc;
  *out = s;
  fm_rc rc;
  if (is_punct(p, '.')) {
    if ((rc = next(p))) return rc;
    if (p->lx.tok == GT_NAME && !is_kw(p, "on")) {
      s->kind = GS_SPREAD;
      rc = take_name(p, &s->name, NULL);
      if (!rc) rc = parse_directives(p, 0, &s->dirs, &s->ndirs);
      return rc;
    }
    s->kind = GS_INLINE;
    if (is_kw(p, "on")) {
      if ((rc = next(p))) return rc;
      if ((rc = take_name(p, &s->type_cond, &s->cond_loc))) return rc;
    }
    if ((rc = parse_directives(p, 0, &s->dirs, &s->ndirs))) return rc;
    s->has_sels = 1;
    return parse_selset(p, &s->sels);
  }
  s->kind = GS_FIELD;
  if ((rc = take_name(p, &s->name, NULL))) return rc;
  if (is_punct(p, ':')) {
    s->alias = s->name;
    if ((rc = next(p)) || (rc = take_name(p, &s->name, NULL))) return rc;
  }
  if ((rc = parse_args(p, 0, &s->args, &s->nargs))) return rc;
  if ((rc = parse_directives(p, 0, &s->dirs, &s->ndirs))) return rc;
  if (is_punct(p, '{')) {
    s->has_sels = 1;
    return parse_selset(p, &s->sels);
  }
  return FM_OK;
}

static fm_rc parse_selset(P *p, gql_selset *out) {
  out->loc = p->lx.loc;
  if (!is_punct(p, '{')) return unexpected(p, "\"{\"");
  if (++p->depth > p->max_depth)
    return fm_error_set(p->err, FM_ERR_ARG,
                        "%u:%u: selection sets nest deeper than %d levels (the depth limit)",
                        p->lx.loc.line, p->lx.loc.col, p->max_depth);
  vec sels = {0};
  fm_rc rc = next(p);
  do {
    gql_sel *s = NULL; /* initialised for gcc -O3, as above */
    if (!rc) rc = parse_selection(p, &s);
    if (!rc) rc = vec_push(p, &sels, &s, sizeof s);
  } while (!rc && !is_punct(p, '}'));
  if (!rc) rc = next(p);
  p->depth--;
  if (rc) {
    fm_free(sels.v);
    return rc;
  }
  return vec_done(p, &sels, sizeof(gql_sel *), (void **)&out->v, &out->n);
}

static fm_rc parse_type(P *p, gql_typeref **out) {
  gql_typeref *t = fm_arena_alloc(&p->doc->arena, sizeof *t);
  if (!t) return nomem(p);
  memset(t, 0, sizeof *t);
  t->loc = p->lx.loc;
  fm_rc rc;
  if (is_punct(p, '[')) {
    if (++p->vdepth > MAX_VALUE_DEPTH)
      return fm_error_set(p->err, FM_ERR_ARG, "%u:%u: types nest deeper than %d levels",
                          t->loc.line, t->loc.col, MAX_VALUE_DEPTH);
    t->kind = GT_LIST;
    if ((rc = next(p)) || (rc = parse_type(p, &t->of)) || (rc = expect(p, ']'))) return rc;
    p->vdepth--;
  } else {
    t->kind = GT_NAMED;
    if ((rc = take_name(p, &t->name, NULL))) return rc;
  }
  if (is_punct(p, '!')) {
    gql_typeref *nn = fm_arena_alloc(&p->doc->arena, sizeof *nn);
    if (!nn) return nomem(p);
    memset(nn, 0, sizeof *nn);
    nn->kind = GT_NONNULL;
    nn->of = t;
    nn->loc = t->loc;
    t = nn;
    if ((rc = next(p))) return rc;
  }
  *out = t;
  return FM_OK;
}

static fm_rc parse_vardefs(P *p, gql_def *d) {
  if (!is_punct(p, '(')) return FM_OK;
  vec vars = {0};
  fm_rc rc = next(p);
  do {
    gql_vardef v;
    memset(&v, 0, sizeof v);
    v.loc = p->lx.loc;
    gql_directive *dirs;
    size_t nd;
    if (!rc) rc = expect(p, '$');
    if (!rc) rc = take_name(p, &v.name, NULL);
    if (!rc) rc = expect(p, ':');
    if (!rc) rc = parse_type(p, &v.type);
    if (!rc && is_punct(p, '=')) {
      rc = next(p);
      if (!rc) rc = parse_value(p, 1, &v.def);
    }
    if (!rc) rc = parse_directives(p, 1, &dirs, &nd);
    if (!rc) rc = vec_push(p, &vars, &v, sizeof v);
  } while (!rc && !is_punct(p, ')'));
  if (!rc) rc = next(p);
  if (rc) {
    fm_free(vars.v);
    return rc;
  }
  return vec_done(p, &vars, sizeof(gql_vardef), (void **)&d->vars, &d->nvars);
}

static fm_rc parse_definition(P *p, gql_def *d) {
  memset(d, 0, sizeof *d);
  d->loc = p->lx.loc;
  fm_rc rc;
  if (is_punct(p, '{')) {
    d->kind = GD_QUERY;
    return parse_selset(p, &d->sels);
  }
  if (p->lx.tok != GT_NAME) return unexpected(p, NULL);
  if (is_kw(p, "fragment")) {
    d->kind = GD_FRAGMENT;
    if ((rc = next(p))) return rc;
    if (is_kw(p, "on")) return unexpected(p, NULL);
    if ((rc = take_name(p, &d->name, NULL))) return rc;
    if (!is_kw(p, "on")) return unexpected(p, "\"on\"");
    if ((rc = next(p)) || (rc = take_name(p, &d->type_cond, &d->cond_loc))) return rc;
  } else if (is_kw(p, "query") || is_kw(p, "mutation") || is_kw(p, "subscription")) {
    d->kind = is_kw(p, "query") ? GD_QUERY : is_kw(p, "mutation") ? GD_MUTATION : GD_SUBSCRIPTION;
    if ((rc = next(p))) return rc;
    if (p->lx.tok == GT_NAME && (rc = take_name(p, &d->name, NULL))) return rc;
    if ((rc = parse_vardefs(p, d))) return rc;
  } else {
    /* Type system definitions (type, schema, ...) are not executable. */
    return unexpected(p, NULL);
  }
  if ((rc = parse_directives(p, 0, &d->dirs, &d->ndirs))) return rc;
  return parse_selset(p, &d->sels);
}

static void parser_init(P *p, const char *src, size_t len, size_t max_tokens, int max_depth,
                        gql_doc *doc, fm_error *err) {
  memset(p, 0, sizeof *p);
  gql_lex_init(&p->lx, src, len, max_tokens);
  p->doc = doc;
  p->err = err;
  p->max_depth = max_depth;
  memset(doc, 0, sizeof *doc);
  fm_arena_init(&doc->arena);
}

fm_rc gql_parse(const char *src, size_t len, const fm_gql_limits *lim, gql_doc *doc,
                gql_loc *where, fm_error *err) {
  P p;
  parser_init(&p, src, len, lim->max_tokens, lim->max_depth, doc, err);
  where->line = where->col = 0;
  if (lim->max_bytes && len > lim->max_bytes) {
    gql_lex_free(&p.lx);
    return fm_error_set(err, FM_ERR_ARG, "the document is %zu bytes, over the limit of %zu",
                        len, lim->max_bytes);
  }
  vec defs = {0};
  fm_rc rc = next(&p);
  if (!rc && p.lx.tok == GT_EOF) rc = unexpected(&p, NULL);
  while (!rc && p.lx.tok != GT_EOF) {
    gql_def d;
    rc = parse_definition(&p, &d);
    if (!rc) rc = vec_push(&p, &defs, &d, sizeof d);
  }
  if (!rc)
    rc = vec_done(&p, &defs, sizeof(gql_def), (void **)&doc->defs, &doc->ndefs);
  else
    fm_free(defs.v);
  if (rc) *where = p.lx.loc;
  gql_lex_free(&p.lx);
  return rc;
}

fm_rc gql_parse_value(const char *src, gql_doc *doc, gql_value **out, fm_error *err) {
  P p;
  parser_init(&p, src, strlen(src), 0, 1, doc, err);
  fm_rc rc = next(&p);
  if (!rc) rc = parse_value(&p, 1, out);
  if (!rc && p.lx.tok != GT_EOF) rc = unexpected(&p, "<EOF>");
  gql_lex_free(&p.lx);
  return rc;
}

void gql_doc_free(gql_doc *doc) {
  if (doc) fm_arena_free(&doc->arena);
}

fm_rc fm_gql_parse_check(const char *query, size_t len, const fm_gql_limits *lim,
                         fm_error *err) {
  fm_gql_limits def;
  lim = gql_limits_or_default(lim, &def);
  gql_doc doc;
  gql_loc where;
  fm_rc rc = gql_parse(query, len, lim, &doc, &where, err);
  gql_doc_free(&doc);
  return rc;
}
