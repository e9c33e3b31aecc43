/* validate.c: the validation rules of spec section 5 that apply to a
 * schema without interfaces, unions or subscriptions:
 *   5.2 operation name uniqueness, lone anonymous operation, (no
 *       subscriptions: refused);
 *   5.3 fields exist on their type, same response name means the same
 *       field with the same arguments, leaf field selections;
 *   5.4 argument names known, unique, required ones present;
 *   5.5 fragment names unique, type conditions exist and are object
 *       types, every fragment used, spreads defined, acyclic and possible;
 *   5.6 values of the correct type, input fields known, unique, required
 *       ones present;
 *   5.7 directives defined (@skip, @include), in valid locations, unique;
 *   5.8 variables unique, of input types, defined, used, and every use
 *       allowed by the variable's type (5.8.5).
 * Plus the depth limit (selection sets nested, fragments expanded). */
#include "gql_internal.h"

#include <stdarg.h>
#include <string.h>

/* A variable used at a position of a type (5.8.5). */
typedef struct usage {
  const char *name;
  const fm_gql_type *type;
  int has_default; /* the position has a default value */
  gql_loc loc;
  size_t owner;    /* the definition it appears in (index in doc->defs) */
} usage;

typedef struct V {
  const fm_gql_schema *s;
  const gql_doc *doc;
  const fm_gql_limits *lim;
  json_t *errors;
  fm_error *err;
  fm_rc rc;          /* FM_ERR_NOMEM once out of memory */
  size_t cur;        /* the definition being walked */
  usage *uses;
  size_t nuses, capuses;
  unsigned char *reach; /* per definition: reached from the operation */
  fm_arena arena;       /* variables' types */
  fm_gql_field type_name; /* __type's argument name: String! */
  fm_gql_field *type_args[1];
} V;

fm_rc gql_error_add(json_t *errors, const gql_loc *loc, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fm_utf8_scrub(msg);
  json_t *e = loc && loc->line
                  ? json_pack("{s:s,s:[{s:i,s:i}]}", "message", msg, "locations", "line",
                              (int)loc->line, "column", (int)loc->col)
                  : json_pack("{s:s}", "message", msg);
  if (!e || json_array_append_new(errors, e)) return FM_ERR_NOMEM;
  return FM_OK;
}

#define VERR(v, loc, ...)                                                        \
  do {                                                                           \
    if (gql_error_add((v)->errors, (loc), __VA_ARGS__)) (v)->rc = FM_ERR_NOMEM; \
  } while (0)

static const char *tname(V *v, const fm_gql_type *t, char *buf, size_t n) {
  fm_buf b;
  fm_buf_init(&b);
  if (gql_type_print(t, &b)) v->rc = FM_ERR_NOMEM;
  snprintf(buf, n, "%s", b.buf ? b.buf : "?");
  fm_buf_free(&b);
  return buf;
}

static const gql_def *fragment(const gql_doc *d, const char *name, size_t *idx) {
  for (size_t i = 0; i < d->ndefs; i++)
    if (d->defs[i].kind == GD_FRAGMENT && !strcmp(d->defs[i].name, name)) {
      if (idx) *idx = i;
      return &d->defs[i];
    }
  return NULL;
}

/* ---- values and variable uses ---------------------------------------------- */

static void add_use(V *v, const gql_value *val, const fm_gql_type *t, int has_default) {
  if (fm_grow((void **)&v->uses, &v->capuses, v->nuses + 1, sizeof *v->uses)) {
    v->rc = FM_ERR_NOMEM;
    return;
  }
  usage u = {val->s, t, has_default, val->loc, v->cur};
  v->uses[v->nuses++] = u;
}

/* Record the variables in a value at their positions' types. */
static void record_vars(V *v, const fm_gql_type *t, const gql_value *val, int has_default) {
  if (val->kind == GV_VAR) {
    add_use(v, val, t, has_default);
    return;
  }
  const fm_gql_type *u = t->kind == GK_NONNULL ? t->of : t;
  if (val->kind == GV_LIST) {
    for (size_t i = 0; i < val->n; i++)
      record_vars(v, u->kind == GK_LIST ? u->of : u, val->items[i], 0);
  } else if (val->kind == GV_OBJECT && u->kind == GK_INPUT) {
    for (size_t i = 0; i < val->n; i++) {
      const fm_gql_field *f = gql_field_of(u, val->keys[i]);
      if (f) record_vars(v, f->type, val->items[i], f->def_literal != NULL);
    }
  }
}

/* 5.6: a literal (variables accepted anywhere) is a value of type t. */
static void check_value(V *v, const fm_gql_type *t, const gql_value *val, int has_default,
                        const char *what) {
  record_vars(v, t, val, has_default);
  json_t *out = NULL;
  fm_error e;
  fm_error_init(&e);
  fm_rc rc = gql_coerce_literal(t, val, GQL_VARS_ANY, &out, &e);
  json_decref(out);
  if (rc == FM_ERR_NOMEM)
    v->rc = rc;
  else if (rc)
    VERR(v, &val->loc, "%s has an invalid value: %s.", what, e.msg);
}

static void check_args(V *v, const gql_arg *args, size_t nargs, const fm_gql_field *f,
                       const char *owner, const gql_loc *loc) {
  for (size_t i = 0; i < nargs; i++) {
    const fm_gql_field *a = gql_arg_of(f, args[i].name);
    for (size_t j = 0; j < i; j++)
      if (!strcmp(args[i].name, args[j].name))
        VERR(v, &args[i].loc, "There can be only one argument named \"%s\".", args[i].name);
    if (!a) {
      VERR(v, &args[i].loc, "Unknown argument \"%s\" on %s.", args[i].name, owner);
      continue;
    }
    char what[160];
    snprintf(what, sizeof what, "Argument \"%s\" of %s", args[i].name, owner);
    check_value(v, a->type, args[i].value, a->def_literal != NULL, what);
  }
  for (size_t k = 0; k < f->nargs; k++) {
    const fm_gql_field *a = f->args[k];
    if (a->type->kind != GK_NONNULL || a->def_literal) continue;
    size_t j = 0;
    while (j < nargs && strcmp(args[j].name, a->name)) j++;
    char tb[128];
    if (j == nargs)
      VERR(v, loc, "%s argument \"%s\" of type \"%s\" is required, but it was not provided.",
           owner, a->name, tname(v, a->type, tb, sizeof tb));
  }
}

/* 5.7: @skip and @include on fields, spreads and inline fragments only. */
static void check_directives(V *v, const gql_directive *d, size_t n, int allowed,
                             const char *where) {
  for (size_t i = 0; i < n; i++) {
    int known = !strcmp(d[i].name, "skip") || !strcmp(d[i].name, "include");
    if (!known) {
      VERR(v, &d[i].loc, "Unknown directive \"@%s\".", d[i].name);
      continue;
    }
    if (!allowed) {
      VERR(v, &d[i].loc, "Directive \"@%s\" may not be used on %s.", d[i].name, where);
      continue;
    }
    for (size_t j = 0; j < i; j++)
      if (!strcmp(d[i].name, d[j].name))
        VERR(v, &d[i].loc, "The directive \"@%s\" can only be used once at this location.",
             d[i].name);
    /* Build the directive's one argument as a field to reuse check_args. */
    fm_gql_field ifarg = {.name = "if", .type = v->s->t_boolean->as_nonnull};
    fm_gql_field *argv[1] = {&ifarg};
    fm_gql_field dir = {.name = (char *)d[i].name, .args = argv, .nargs = 1};
    char owner[64];
    snprintf(owner, sizeof owner, "directive \"@%s\"", d[i].name);
    check_args(v, d[i].args, d[i].nargs, &dir, owner, &d[i].loc);
  }
}

/* ---- selections --------------------------------------------------------------- */

static void walk_selset(V *v, const gql_selset *ss, const fm_gql_type *parent);

/* The schema field a selection names on parent (meta-fields included), or
 * NULL (an error was added). */
static const fm_gql_field *field_def(V *v, const gql_sel *sel, const fm_gql_type *parent,
                                     fm_gql_field *meta) {
  const fm_gql_schema *s = v->s;
  memset(meta, 0, sizeof *meta);
  meta->name = (char *)sel->name;
  if (!strcmp(sel->name, "__typename")) {
    meta->type = s->t_string->as_nonnull;
    return meta;
  }
  if (parent == s->query && !strcmp(sel->name, "__schema")) {
    meta->type = s->t_schema->as_nonnull;
    return meta;
  }
  if (parent == s->query && !strcmp(sel->name, "__type")) {
    meta->type = s->t_type;
    meta->args = v->type_args;
    meta->nargs = 1;
    return meta;
  }
  const fm_gql_field *f = gql_field_of(parent, sel->name);
  if (!f) VERR(v, &sel->loc, "Cannot query field \"%s\" on type \"%s\".", sel->name, parent->name);
  return f;
}

static void walk_field(V *v, const gql_sel *sel, const fm_gql_type *parent) {
  fm_gql_field meta;
  check_directives(v, sel->dirs, sel->ndirs, 1, "FIELD");
  const fm_gql_field *f = field_def(v, sel, parent, &meta);
  if (!f) return;
  char owner[160], tb[128];
  snprintf(owner, sizeof owner, "field \"%s.%s\"", parent->name, sel->name);
  check_args(v, sel->args, sel->nargs, f, owner, &sel->loc);
  const fm_gql_type *nt = gql_named(f->type);
  if (gql_is_leaf(f->type)) {
    if (sel->has_sels)
      VERR(v, &sel->loc,
           "Field \"%s\" must not have a selection since type \"%s\" has no subfields.",
           sel->name, tname(v, f->type, tb, sizeof tb));
  } else if (!sel->has_sels) {
    VERR(v, &sel->loc, "Field \"%s\" of type \"%s\" must have a selection of subfields. Did you mean \"%s { ... }\"?",
         sel->name, tname(v, f->type, tb, sizeof tb), sel->name);
  } else {
    walk_selset(v, &sel->sels, nt);
  }
}

/* A type condition names an object type (5.5.1.2, 5.5.1.3). */
static const fm_gql_type *cond_type(V *v, const char *name, const gql_loc *loc) {
  const fm_gql_type *t = fm_gql_type_named((fm_gql_schema *)v->s, name);
  if (!t) {
    VERR(v, loc, "Unknown type \"%s\".", name);
    return NULL;
  }
  if (t->kind != GK_OBJECT) {
    VERR(v, loc, "Fragment cannot condition on non composite type \"%s\".", name);
    return NULL;
  }
  return t;
}

static void walk_selset(V *v, const gql_selset *ss, const fm_gql_type *parent) {
  for (size_t i = 0; i < ss->n && !v->rc; i++) {
    const gql_sel *sel = ss->v[i];
    if (sel->kind == GS_FIELD) {
      walk_field(v, sel, parent);
    } else if (sel->kind == GS_INLINE) {
      check_directives(v, sel->dirs, sel->ndirs, 1, "INLINE_FRAGMENT");
      const fm_gql_type *t = parent;
      if (sel->type_cond && !(t = cond_type(v, sel->type_cond, &sel->cond_loc))) continue;
      if (t != parent) {
        VERR(v, &sel->loc,
             "Fragment cannot be spread here as objects of type \"%s\" can never be of type \"%s\".",
             parent->name, t->name);
        continue;
      }
      walk_selset(v, &sel->sels, t);
    } else {
      check_directives(v, sel->dirs, sel->ndirs, 1, "FRAGMENT_SPREAD");
      const gql_def *fr = fragment(v->doc, sel->name, NULL);
      if (!fr) {
        VERR(v, &sel->loc, "Unknown fragment \"%s\".", sel->name);
        continue;
      }
      const fm_gql_type *t = fm_gql_type_named((fm_gql_schema *)v->s, fr->type_cond);
      if (t && t->kind == GK_OBJECT && t != parent)
        VERR(v, &sel->loc,
             "Fragment \"%s\" cannot be spread here as objects of type \"%s\" can never be of type \"%s\".",
             sel->name, parent->name, t->name);
    }
  }
}

/* ---- field merging (5.3.2, same selection set level) ------------------------ */

typedef struct fieldref {
  const gql_sel *sel;
} fieldref;

static void collect(V *v, const gql_selset *ss, fieldref **out, size_t *n, size_t *cap,
                    int depth) {
  for (size_t i = 0; i < ss->n && !v->rc; i++) {
    const gql_sel *sel = ss->v[i];
    if (sel->kind == GS_FIELD) {
      if (fm_grow((void **)out, cap, *n + 1, sizeof **out)) {
        v->rc = FM_ERR_NOMEM;
        return;
      }
      (*out)[(*n)++].sel = sel;
    } else if (sel->kind == GS_INLINE) {
      collect(v, &sel->sels, out, n, cap, depth);
    } else {
      const gql_def *fr = fragment(v->doc, sel->name, NULL);
      if (fr && depth < 64) collect(v, &fr->sels, out, n, cap, depth + 1);
    }
  }
}

static int same_value(const gql_value *a, const gql_value *b) {
  if (a->kind != b->kind || a->n != b->n) return 0;
  if (a->s && (!b->s || a->slen != b->slen || strcmp(a->s, b->s))) return 0;
  for (size_t i = 0; i < a->n; i++)
    if (!same_value(a->items[i], b->items[i]) ||
        (a->keys && strcmp(a->keys[i], b->keys[i])))
      return 0;
  return 1;
}

static int same_args(const gql_sel *a, const gql_sel *b) {
  if (a->nargs != b->nargs) return 0;
  for (size_t i = 0; i < a->nargs; i++) {
    size_t j = 0;
    while (j < b->nargs && strcmp(a->args[i].name, b->args[j].name)) j++;
    if (j == b->nargs || !same_value(a->args[i].value, b->args[j].value)) return 0;
  }
  return 1;
}

/* Check the fields of the selection sets sets[0..nsets) (merged into one
 * level, as execution merges them) and, for each response name, the union
 * of the selection sets below it. */
static void check_merge(V *v, const gql_selset *const *sets, size_t nsets, int depth) {
  fieldref *fs = NULL;
  size_t n = 0, cap = 0;
  for (size_t k = 0; k < nsets; k++) collect(v, sets[k], &fs, &n, &cap, 0);
  const gql_selset **sub = n ? fm_calloc(n, sizeof *sub) : NULL;
  if (n && !sub) v->rc = FM_ERR_NOMEM;
  for (size_t i = 0; i < n && !v->rc; i++) {
    const gql_sel *a = fs[i].sel;
    const char *ka = a->alias ? a->alias : a->name;
    int first = 1;
    for (size_t j = 0; j < i; j++) {
      const gql_sel *b = fs[j].sel;
      if (strcmp(ka, b->alias ? b->alias : b->name)) continue;
      first = 0;
      if (strcmp(a->name, b->name))
        VERR(v, &a->loc,
             "Fields \"%s\" conflict because \"%s\" and \"%s\" are different fields. Use different aliases on the fields to fetch both if this was intentional.",
             ka, b->name, a->name);
      else if (!same_args(a, b))
        VERR(v, &a->loc,
             "Fields \"%s\" conflict because they have differing arguments. Use different aliases on the fields to fetch both if this was intentional.",
             ka);
      break;
    }
    if (!first || depth >= 64) continue;
    size_t ns = 0;
    for (size_t j = i; j < n; j++) {
      const gql_sel *b = fs[j].sel;
      if (b->has_sels && !strcmp(ka, b->alias ? b->alias : b->name)) sub[ns++] = &b->sels;
    }
    if (ns) check_merge(v, sub, ns, depth + 1);
  }
  fm_free(sub);
  fm_free(fs);
}

/* ---- fragments: cycles, reachability, depth --------------------------------- */

/* Mark the fragments reachable from ss; returns 1 on a cycle through
 * `stack` (a definition on the current path). */
static void reach(V *v, const gql_selset *ss, unsigned char *onpath, int *cycle) {
  for (size_t i = 0; i < ss->n; i++) {
    const gql_sel *sel = ss->v[i];
    if (sel->kind == GS_FIELD || sel->kind == GS_INLINE) {
      reach(v, &sel->sels, onpath, cycle);
      continue;
    }
    size_t k;
    if (!fragment(v->doc, sel->name, &k)) continue;
    if (onpath[k]) {
      if (!*cycle)
        VERR(v, &sel->loc, "Cannot spread fragment \"%s\" within itself.", sel->name);
      *cycle = 1;
      continue;
    }
    if (v->reach[k]) continue;
    v->reach[k] = 1;
    onpath[k] = 1;
    reach(v, &v->doc->defs[k].sels, onpath, cycle);
    onpath[k] = 0;
  }
}

/* Depth of a selection set, fragments expanded (they are acyclic here). */
static int depth_of(V *v, const gql_selset *ss) {
  int d = 0;
  for (size_t i = 0; i < ss->n; i++) {
    const gql_sel *sel = ss->v[i];
    int x;
    if (sel->kind == GS_FIELD)
      x = sel->has_sels ? 1 + depth_of(v, &sel->sels) : 1;
    else if (sel->kind == GS_INLINE)
      x = depth_of(v, &sel->sels);
    else {
      const gql_def *fr = fragment(v->doc, sel->name, NULL);
      x = fr ? depth_of(v, &fr->sels) : 0;
    }
    if (x > d) d = x;
    if (d > v->lim->max_depth) break;
  }
  return d;
}

/* ---- variables ------------------------------------------------------------- */

/* 5.8.5 AreTypesCompatible(variable type, location type). */
static int compatible(const fm_gql_type *var, const fm_gql_type *loc) {
  if (loc->kind == GK_NONNULL) {
    if (var->kind != GK_NONNULL) return 0;
    return compatible(var->of, loc->of);
  }
  if (var->kind == GK_NONNULL) return compatible(var->of, loc);
  if (loc->kind == GK_LIST) return var->kind == GK_LIST && compatible(var->of, loc->of);
  if (var->kind == GK_LIST) return 0;
  return var == loc;
}

static void check_variables(V *v, size_t opi) {
  const gql_def *op = &v->doc->defs[opi];
  unsigned char *used = op->nvars ? fm_calloc(op->nvars, 1) : NULL;
  if (op->nvars && !used) {
    v->rc = FM_ERR_NOMEM;
    return;
  }
  const fm_gql_type **types = op->nvars ? fm_calloc(op->nvars, sizeof *types) : NULL;
  if (op->nvars && !types) {
    fm_free(used);
    v->rc = FM_ERR_NOMEM;
    return;
  }
  for (size_t i = 0; i < op->nvars; i++) {
    const gql_vardef *d = &op->vars[i];
    for (size_t j = 0; j < i; j++)
      if (!strcmp(d->name, op->vars[j].name))
        VERR(v, &d->loc, "There can be only one variable named \"$%s\".", d->name);
    const gql_typeref *r = d->type;
    while (r->kind != GT_NAMED) r = r->of;
    const fm_gql_type *nt = fm_gql_type_named((fm_gql_schema *)v->s, r->name);
    if (!nt) {
      VERR(v, &r->loc, "Unknown type \"%s\".", r->name);
      continue;
    }
    if (!gql_is_input(nt)) {
      VERR(v, &d->loc, "Variable \"$%s\" cannot be non-input type \"%s\".", d->name, r->name);
      continue;
    }
    types[i] = gql_typeref_type(v->s, d->type, &v->arena);
    if (!types[i]) {
      v->rc = FM_ERR_NOMEM;
      break;
    }
    if (types[i] && d->def) {
      char what[160];
      snprintf(what, sizeof what, "Variable \"$%s\"", d->name);
      check_value(v, types[i], d->def, 0, what);
    }
  }
  for (size_t u = 0; u < v->nuses; u++) {
    const usage *us = &v->uses[u];
    if (us->owner != opi && !(v->doc->defs[us->owner].kind == GD_FRAGMENT && v->reach[us->owner]))
      continue;
    size_t i = 0;
    while (i < op->nvars && strcmp(op->vars[i].name, us->name)) i++;
    if (i == op->nvars) {
      if (op->name)
        VERR(v, &us->loc, "Variable \"$%s\" is not defined by operation \"%s\".", us->name, op->name);
      else
        VERR(v, &us->loc, "Variable \"$%s\" is not defined.", us->name);
      continue;
    }
    used[i] = 1;
    const fm_gql_type *vt = types[i];
    if (!vt) continue;
    /* 5.8.5: a nullable variable may feed a non-null position that has a
     * default, when the variable has a non-null default itself. */
    const fm_gql_type *lt = us->type;
    if (lt->kind == GK_NONNULL && vt->kind != GK_NONNULL) {
      int var_default = op->vars[i].def && op->vars[i].def->kind != GV_NULL;
      if (!var_default && !us->has_default) goto bad;
      lt = lt->of;
    }
    if (compatible(vt, lt)) continue;
  bad:;
    char a[128], b[128];
    VERR(v, &us->loc, "Variable \"$%s\" of type \"%s\" used in position expecting type \"%s\".",
         us->name, tname(v, vt, a, sizeof a), tname(v, us->type, b, sizeof b));
  }
  for (size_t i = 0; i < op->nvars; i++)
    if (!used[i] && types[i] != NULL)
      VERR(v, &op->vars[i].loc,
           op->name ? "Variable \"$%s\" is never used in operation \"%s\"."
                    : "Variable \"$%s\" is never used.%s",
           op->vars[i].name, op->name ? op->name : "");
  fm_free(used);
  fm_free(types);
}

/* ---- the document ------------------------------------------------------------- */

static void check_definitions(V *v) {
  const gql_doc *d = v->doc;
  size_t nops = 0, anon = 0;
  for (size_t i = 0; i < d->ndefs; i++) {
    const gql_def *x = &d->defs[i];
    if (x->kind == GD_FRAGMENT) {
      for (size_t j = 0; j < i; j++)
        if (d->defs[j].kind == GD_FRAGMENT && !strcmp(d->defs[j].name, x->name))
          VERR(v, &x->loc, "There can be only one fragment named \"%s\".", x->name);
      continue;
    }
    nops++;
    if (!x->name) anon++;
    for (size_t j = 0; x->name && j < i; j++)
      if (d->defs[j].kind != GD_FRAGMENT && d->defs[j].name && !strcmp(d->defs[j].name, x->name))
        VERR(v, &x->loc, "There can be only one operation named \"%s\".", x->name);
  }
  for (size_t i = 0; anon && nops > 1 && i < d->ndefs; i++)
    if (d->defs[i].kind != GD_FRAGMENT && !d->defs[i].name)
      VERR(v, &d->defs[i].loc, "This anonymous operation must be the only defined operation.");
}

fm_rc gql_validate(const fm_gql_schema *s, const gql_doc *doc, const fm_gql_limits *lim,
                   json_t *errors, fm_error *err) {
  V v = {.s = s, .doc = doc, .lim = lim, .errors = errors, .err = err};
  fm_arena_init(&v.arena);
  v.type_name.name = "name";
  v.type_name.type = s->t_string->as_nonnull;
  v.type_args[0] = &v.type_name;
  unsigned char *onpath = fm_calloc(doc->ndefs + 1, 1);
  v.reach = fm_calloc(doc->ndefs + 1, 1);
  unsigned char *used = fm_calloc(doc->ndefs + 1, 1);
  if (!onpath || !v.reach || !used) v.rc = FM_ERR_NOMEM;
  if (!v.rc) check_definitions(&v);
  /* Walk every definition against its type (usages recorded per def). */
  int cycle = 0;
  for (size_t i = 0; i < doc->ndefs && !v.rc; i++) {
    const gql_def *d = &doc->defs[i];
    v.cur = i;
    const fm_gql_type *root = NULL;
    if (d->kind == GD_FRAGMENT) {
      check_directives(&v, d->dirs, d->ndirs, 0, "FRAGMENT_DEFINITION");
      root = cond_type(&v, d->type_cond, &d->cond_loc);
    } else {
      check_directives(&v, d->dirs, d->ndirs, 0, d->kind == GD_MUTATION ? "MUTATION" : "QUERY");
      root = d->kind == GD_QUERY ? s->query : d->kind == GD_MUTATION ? s->mutation : NULL;
      if (!root)
        VERR(&v, &d->loc, "The schema has no %s type.",
             d->kind == GD_MUTATION ? "mutation" : "subscription");
    }
    if (root) walk_selset(&v, &d->sels, root);
    const gql_selset *top = &d->sels;
    if (!v.rc) check_merge(&v, &top, 1, 0);
    /* cycles, from every fragment */
    memset(v.reach, 0, doc->ndefs);
    reach(&v, &d->sels, onpath, &cycle);
    for (size_t k = 0; k < doc->ndefs; k++) used[k] |= v.reach[k];
  }
  for (size_t i = 0; i < doc->ndefs && !v.rc; i++)
    if (doc->defs[i].kind == GD_FRAGMENT && !used[i])
      VERR(&v, &doc->defs[i].loc, "Fragment \"%s\" is never used.", doc->defs[i].name);
  for (size_t i = 0; i < doc->ndefs && !v.rc; i++) {
    if (doc->defs[i].kind == GD_FRAGMENT) continue;
    memset(v.reach, 0, doc->ndefs);
    int c = 1; /* cycles were reported above */
    reach(&v, &doc->defs[i].sels, onpath, &c);
    check_variables(&v, i);
    if (!cycle && !v.rc) {
      int dep = depth_of(&v, &doc->defs[i].sels);
      if (dep > lim->max_depth)
        VERR(&v, &doc->defs[i].loc,
             "The operation nests %d levels deep, over the depth limit of %d.", dep > lim->max_depth ? lim->max_depth + 1 : dep,
             lim->max_depth);
    }
  }
  fm_free(onpath);
  fm_free(v.reach);
  fm_free(used);
  fm_free(v.uses);
  fm_arena_free(&v.arena);
  if (v.rc) return fm_error_set(err, FM_ERR_NOMEM, "out of memory validating");
  return FM_OK;
}
