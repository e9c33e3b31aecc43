/* exec.c: execution (spec section 6): operation selection, variable and
 * argument coercion (6.1.2, 6.4.1), field collection with @skip/@include
 * (6.3.2), value completion with null propagation (6.4.3, 6.4.4), errors
 * with locations and paths (7.1.2), and the cost estimate checked before
 * anything runs.  fm_gql_execute is the module's entry point. */
#include "gql_internal.h"

#include <string.h>

enum { R_OK = 0, R_PROP = 1, R_NULLED = 2 };

typedef struct X {
  const fm_gql_schema *s;
  gql_doc *doc;
  json_t *vars;   /* coerced variables */
  json_t *errors;
  void *ctx;
  fm_rc fatal;    /* FM_ERR_NOMEM: stop */
  fm_error *err;
  long cost, max_cost;
} X;

typedef struct path {
  const struct path *prev;
  const char *key; /* NULL: index */
  size_t index;
} path;

/* One response key and the field selections merged under it. */
typedef struct group {
  const char *key;
  const gql_sel **sels;
  size_t n, cap;
} group;

typedef struct groups {
  group *v;
  size_t n, cap;
} groups;

static void groups_free(groups *g) {
  for (size_t i = 0; i < g->n; i++) fm_free(g->v[i].sels);
  fm_free(g->v);
  memset(g, 0, sizeof *g);
}

static json_t *path_json(const path *p) {
  json_t *a = json_array();
  for (; a && p; p = p->prev) {
    json_t *x = p->key ? json_string(p->key) : json_integer((json_int_t)p->index);
    if (json_array_insert_new(a, 0, x)) {
      json_decref(a);
      return NULL;
    }
  }
  return a;
}

/* A field error (7.1.2): message, the field's location, its path. */
static void field_error(X *x, const gql_sel *sel, const path *p, const char *msg) {
  char m[FM_ERRMSG_MAX];
  snprintf(m, sizeof m, "%s", msg);
  fm_utf8_scrub(m);
  json_t *pj = path_json(p);
  json_t *e = pj ? json_pack("{s:s,s:[{s:i,s:i}],s:o}", "message", m, "locations", "line",
                             (int)sel->loc.line, "column", (int)sel->loc.col, "path", pj)
                 : NULL;
  if (!e || json_array_append_new(x->errors, e)) x->fatal = FM_ERR_NOMEM;
}

/* ---- arguments and directives ---------------------------------------------- */

/* CoerceArgumentValues (6.4.1) for the field f of selection sel into a new
 * object *out.  FM_ERR_ARG with the message in err; FM_ERR_NOMEM. */
static fm_rc coerce_args(X *x, const fm_gql_field *f, const gql_arg *args, size_t nargs,
                         json_t **out, fm_error *err) {
  json_t *o = json_object();
  if (!o) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  fm_rc rc = FM_OK;
  for (size_t i = 0; !rc && i < f->nargs; i++) {
    const fm_gql_field *a = f->args[i];
    const gql_value *v = NULL;
    for (size_t j = 0; j < nargs; j++)
      if (!strcmp(args[j].name, a->name)) v = args[j].value;
    json_t *val = NULL;
    if (v && v->kind == GV_VAR && !json_object_get(x->vars, v->s)) v = NULL;
    if (v) {
      rc = gql_coerce_literal(a->type, v, x->vars, &val, err);
      if (rc && rc != FM_ERR_NOMEM) fm_error_prefix(err, "Argument \"%s\"", a->name);
    } else if (a->def_value) {
      val = json_incref(a->def_value);
    } else if (a->type->kind == GK_NONNULL) {
      rc = fm_error_set(err, FM_ERR_ARG, "Argument \"%s\" of required type was not provided.",
                        a->name);
    }
    if (!rc && val && json_object_set_new(o, a->name, val)) rc = FM_ERR_NOMEM;
  }
  if (rc) {
    json_decref(o);
    return rc == FM_ERR_NOMEM ? fm_error_set(err, rc, "out of memory") : rc;
  }
  *out = o;
  return FM_OK;
}

/* 0: include the selection, 1: skip it (6.3.2 steps 2.a-b). */
static int skipped(X *x, const gql_directive *d, size_t n) {
  for (size_t i = 0; i < n; i++) {
    int is_skip = !strcmp(d[i].name, "skip");
    if (!is_skip && strcmp(d[i].name, "include")) continue;
    const gql_value *v = d[i].nargs ? d[i].args[0].value : NULL;
    json_t *b = NULL;
    fm_rc rc = v ? gql_coerce_literal(x->s->t_boolean, v, x->vars, &b, NULL) : FM_ERR_ARG;
    if (rc == FM_ERR_NOMEM) x->fatal = rc;
    if (rc) continue; /* validated: only out of memory gets here */
    int t = json_is_true(b);
    json_decref(b);
    if (is_skip ? t : !t) return 1;
  }
  return 0;
}

/* ---- field collection (6.3.2) ------------------------------------------------- */

static void collect(X *x, const fm_gql_type *type, const gql_selset *ss, groups *g,
                    unsigned char *visited) {
  for (size_t i = 0; i < ss->n && !x->fatal; i++) {
    const gql_sel *sel = ss->v[i];
    if (skipped(x, sel->dirs, sel->ndirs)) continue;
    if (sel->kind == GS_FIELD) {
      const char *key = sel->alias ? sel->alias : sel->name;
      size_t k = 0;
      while (k < g->n && strcmp(g->v[k].key, key)) k++;
      if (k == g->n) {
        if (fm_grow((void **)&g->v, &g->cap, g->n + 1, sizeof *g->v)) {
          x->fatal = FM_ERR_NOMEM;
          return;
        }
        memset(&g->v[g->n], 0, sizeof g->v[0]);
        g->v[g->n++].key = key;
      }
      group *gr = &g->v[k];
      if (fm_grow((void **)&gr->sels, &gr->cap, gr->n + 1, sizeof *gr->sels)) {
        x->fatal = FM_ERR_NOMEM;
        return;
      }
      gr->sels[gr->n++] = sel;
    } else if (sel->kind == GS_INLINE) {
      if (sel->type_cond && strcmp(sel->type_cond, type->name)) continue;
      collect(x, type, &sel->sels, g, visited);
    } else {
      size_t k;
      for (k = 0; k < x->doc->ndefs; k++)
        if (x->doc->defs[k].kind == GD_FRAGMENT && !strcmp(x->doc->defs[k].name, sel->name))
          break;
      if (k == x->doc->ndefs || visited[k]) continue;
      visited[k] = 1;
      if (strcmp(x->doc->defs[k].type_cond, type->name)) continue;
      collect(x, type, &x->doc->defs[k].sels, g, visited);
    }
  }
}

/* The fields of every selection set of a group's selections. */
static void collect_sub(X *x, const fm_gql_type *type, const group *gr, groups *out) {
  unsigned char *visited = fm_calloc(x->doc->ndefs + 1, 1);
  if (!visited) {
    x->fatal = FM_ERR_NOMEM;
    return;
  }
  for (size_t i = 0; i < gr->n; i++) collect(x, type, &gr->sels[i]->sels, out, visited);
  fm_free(visited);
}

/* ---- fields ---------------------------------------------------------------------- */

static int exec_selset(X *x, const fm_gql_type *type, const json_t *parent, const groups *g,
                       const path *p, json_t **out);

static json_t *serialize_leaf(const fm_gql_type *t, const json_t *v, const char **why) {
  const char *n = t->name;
  *why = NULL;
  if (t->kind == GK_ENUM) {
    if (json_is_string(v) && gql_enum_has(t, json_string_value(v))) return json_incref((json_t *)v);
    *why = "is not one of the enum's values";
  } else if (!strcmp(n, "Int")) {
    if (json_is_integer(v) && json_integer_value(v) >= -2147483648LL &&
        json_integer_value(v) <= 2147483647LL)
      return json_incref((json_t *)v);
    if (json_is_boolean(v)) return json_integer(json_is_true(v));
    *why = "cannot be represented as a 32-bit Int";
  } else if (!strcmp(n, "Float")) {
    if (json_is_number(v)) return json_incref((json_t *)v);
    *why = "is not a number";
  } else if (!strcmp(n, "Boolean")) {
    if (json_is_boolean(v)) return json_incref((json_t *)v);
    *why = "is not a boolean";
  } else if (json_is_string(v)) {
    return json_incref((json_t *)v);
  } else if (json_is_integer(v)) {
    char b[32];
    snprintf(b, sizeof b, "%lld", (long long)json_integer_value(v));
    return json_string(b);
  } else if (!strcmp(n, "String") && json_is_boolean(v)) {
    return json_string(json_is_true(v) ? "true" : "false");
  } else {
    *why = "is not a string";
  }
  return NULL;
}

/* CompleteValue (6.4.3): R_OK with *out (maybe null), R_NULLED (null, the
 * error reported), R_PROP (null that must reach the nearest nullable). */
static int complete(X *x, const fm_gql_type *t, const group *gr, const json_t *v,
                    const path *p, json_t **out) {
  *out = NULL;
  if (t->kind == GK_NONNULL) {
    int r = complete(x, t->of, gr, v, p, out);
    if (r == R_OK && json_is_null(*out)) {
      field_error(x, gr->sels[0], p, "Cannot return null for non-nullable field.");
      r = R_PROP;
    }
    if (r != R_OK) {
      json_decref(*out);
      *out = NULL;
      return R_PROP;
    }
    return R_OK;
  }
  if (!v || json_is_null(v)) {
    *out = json_null();
    return R_OK;
  }
  if (t->kind == GK_LIST) {
    if (!json_is_array(v)) {
      field_error(x, gr->sels[0], p, "Expected a list for a list field.");
      *out = json_null();
      return R_NULLED;
    }
    json_t *a = json_array();
    if (!a) {
      x->fatal = FM_ERR_NOMEM;
      return R_NULLED;
    }
    for (size_t i = 0; i < json_array_size(v) && !x->fatal; i++) {
      path ip = {p, NULL, i};
      json_t *item;
      int r = complete(x, t->of, gr, json_array_get(v, i), &ip, &item);
      if (r == R_PROP) {
        json_decref(a);
        *out = json_null();
        return R_NULLED;
      }
      if (json_array_append_new(a, item)) x->fatal = FM_ERR_NOMEM;
    }
    *out = a;
    return R_OK;
  }
  if (t->kind == GK_OBJECT) {
    if (!json_is_object(v)) {
      field_error(x, gr->sels[0], p, "Expected an object for an object field.");
      *out = json_null();
      return R_NULLED;
    }
    groups sub = {0};
    collect_sub(x, t, gr, &sub);
    int r = x->fatal ? R_NULLED : exec_selset(x, t, v, &sub, p, out);
    groups_free(&sub);
    if (r == R_PROP) {
      *out = json_null();
      return R_NULLED;
    }
    return r;
  }
  const char *why;
  *out = serialize_leaf(t, v, &why);
  if (!*out) {
    char m[160];
    snprintf(m, sizeof m, "The value of a %s field %s.", t->name, why ? why : "failed");
    if (!why) x->fatal = FM_ERR_NOMEM;
    field_error(x, gr->sels[0], p, m);
    *out = json_null();
    return R_NULLED;
  }
  return R_OK;
}

/* The meta-fields (4.1, 4.2): *handled 1 when sel is one of them. */
static json_t *meta_field(X *x, const fm_gql_type *type, const gql_sel *sel, int *handled) {
  *handled = 1;
  if (!strcmp(sel->name, "__typename")) return json_string(type->name);
  if (type == x->s->query && !strcmp(sel->name, "__schema")) return gql_schema_value(x->s);
  if (type == x->s->query && !strcmp(sel->name, "__type")) {
    const char *name = NULL;
    json_t *b = NULL;
    fm_rc rc = sel->nargs ? gql_coerce_literal(x->s->t_string, sel->args[0].value, x->vars, &b, NULL)
                          : FM_ERR_ARG;
    if (rc == FM_ERR_NOMEM) return NULL;
    if (!rc) name = json_string_value(b);
    fm_gql_type *t = fm_gql_type_named((fm_gql_schema *)x->s, name);
    json_decref(b);
    return t ? gql_type_value(x->s, t) : json_null();
  }
  *handled = 0;
  return NULL;
}

static int exec_field(X *x, const fm_gql_type *type, const json_t *parent, const group *gr,
                      const path *p, json_t **out) {
  const gql_sel *sel = gr->sels[0];
  int handled;
  json_t *v = meta_field(x, type, sel, &handled);
  if (handled) {
    if (!v) x->fatal = FM_ERR_NOMEM;
    const fm_gql_type *mt = !strcmp(sel->name, "__typename") ? x->s->t_string
                            : !strcmp(sel->name, "__schema") ? x->s->t_schema
                                                             : x->s->t_type;
    int r = x->fatal ? R_NULLED : complete(x, mt, gr, v, p, out);
    json_decref(v);
    return r;
  }
  const fm_gql_field *f = gql_field_of(type, sel->name);
  if (!f) return fm_error_set(x->err, FM_ERR_INTERNAL, "unvalidated field %s", sel->name), R_PROP;
  fm_error e;
  fm_error_init(&e);
  json_t *args = NULL;
  fm_rc rc = coerce_args(x, f, sel->args, sel->nargs, &args, &e);
  if (!rc) {
    if (f->resolve) {
      fm_gql_resolve_info info = {x->ctx, f->data, f->name, parent, args};
      rc = f->resolve(&info, &v, &e);
    } else {
      v = json_incref(json_object_get(parent, f->name));
    }
  }
  json_decref(args);
  if (rc == FM_ERR_NOMEM) {
    x->fatal = rc;
    json_decref(v);
    return R_PROP;
  }
  if (rc) {
    json_decref(v);
    field_error(x, sel, p, e.msg[0] ? e.msg : fm_rc_name(rc));
    *out = json_null();
    return f->type->kind == GK_NONNULL ? R_PROP : R_NULLED;
  }
  int r = complete(x, f->type, gr, v, p, out);
  json_decref(v);
  return r;
}

static int exec_selset(X *x, const fm_gql_type *type, const json_t *parent, const groups *g,
                       const path *p, json_t **out) {
  json_t *o = json_object();
  if (!o) {
    x->fatal = FM_ERR_NOMEM;
    return R_PROP;
  }
  for (size_t i = 0; i < g->n && !x->fatal; i++) {
    path fp = {p, g->v[i].key, 0};
    json_t *v = NULL;
    int r = exec_field(x, type, parent, &g->v[i], &fp, &v);
    if (r == R_PROP) {
      json_decref(v);
      json_decref(o);
      *out = NULL;
      return R_PROP;
    }
    if (json_object_set_new(o, g->v[i].key, v ? v : json_null())) x->fatal = FM_ERR_NOMEM;
  }
  *out = o;
  return R_OK;
}

/* ---- cost ---------------------------------------------------------------------- */

/* Add the estimated cost of g's fields on type, each counting mult; a
 * field with a `first` or `limit` argument multiplies what is below it. */
static void cost_of(X *x, const fm_gql_type *type, const groups *g, long mult) {
  for (size_t i = 0; i < g->n && !x->fatal && x->cost <= x->max_cost; i++) {
    const group *gr = &g->v[i];
    const gql_sel *sel = gr->sels[0];
    x->cost += mult;
    const fm_gql_field *f = gql_field_of(type, sel->name);
    const fm_gql_type *ft = f ? f->type
                            : !strcmp(sel->name, "__schema") ? x->s->t_schema
                            : !strcmp(sel->name, "__type")   ? x->s->t_type
                                                             : NULL;
    if (!ft || gql_is_leaf(ft)) continue;
    long m = mult;
    if (f && (gql_arg_of(f, "first") || gql_arg_of(f, "limit"))) {
      json_t *args = NULL;
      fm_rc rc = coerce_args(x, f, sel->args, sel->nargs, &args, NULL);
      if (rc == FM_ERR_NOMEM) x->fatal = rc;
      if (!rc) {
        json_t *n = json_object_get(args, "first");
        if (!json_is_integer(n)) n = json_object_get(args, "limit");
        if (json_is_integer(n) && json_integer_value(n) > 1)
          m = json_integer_value(n) > x->max_cost ? x->max_cost + 1 : m * (long)json_integer_value(n);
      }
      json_decref(args);
    }
    if (m > x->max_cost) m = x->max_cost + 1;
    groups sub = {0};
    collect_sub(x, gql_named(ft), gr, &sub);
    cost_of(x, gql_named(ft), &sub, m);
    groups_free(&sub);
  }
}

/* ---- the request ------------------------------------------------------------------ */

/* CoerceVariableValues (6.1.2) into x->vars; errors go to x->errors. */
static fm_rc coerce_vars(X *x, const gql_def *op, const json_t *in) {
  x->vars = json_object();
  if (!x->vars) return FM_ERR_NOMEM;
  for (size_t i = 0; i < op->nvars; i++) {
    const gql_vardef *d = &op->vars[i];
    const fm_gql_type *t = gql_typeref_type(x->s, d->type, &x->doc->arena);
    if (!t) return FM_ERR_NOMEM; /* validation saw the named type */
    const json_t *v = in ? json_object_get(in, d->name) : NULL;
    json_t *val = NULL;
    fm_error e;
    fm_error_init(&e);
    fm_rc rc = FM_OK;
    if (!v && d->def)
      rc = gql_coerce_literal(t, d->def, NULL, &val, &e);
    else if (v || t->kind == GK_NONNULL)
      rc = gql_coerce_input(t, v, &val, &e);
    if (rc == FM_ERR_NOMEM) return rc;
    if (rc) {
      if (gql_error_add(x->errors, &d->loc, "Variable \"$%s\" got invalid value: %s.", d->name,
                        e.msg))
        return FM_ERR_NOMEM;
      continue;
    }
    if (val && json_object_set_new(x->vars, d->name, val)) return FM_ERR_NOMEM;
  }
  return FM_OK;
}

static const gql_def *pick_operation(X *x, const char *name) {
  const gql_def *op = NULL;
  size_t nops = 0;
  for (size_t i = 0; i < x->doc->ndefs; i++) {
    const gql_def *d = &x->doc->defs[i];
    if (d->kind == GD_FRAGMENT) continue;
    nops++;
    if (name ? d->name && !strcmp(d->name, name) : !op) op = d;
  }
  fm_rc rc = FM_OK;
  if (name && !op)
    rc = gql_error_add(x->errors, NULL, "Unknown operation named \"%s\".", name);
  else if (!name && nops > 1)
    rc = gql_error_add(x->errors, NULL,
                       "Must provide operation name if query contains multiple operations.");
  if (rc) x->fatal = rc;
  return !name && nops > 1 ? NULL : op;
}

/* Execute the chosen operation into *data (NULL on a propagated null). */
static fm_rc run(X *x, const gql_def *op, const fm_gql_limits *lim, json_t **data,
                 fm_gql_outcome *outcome) {
  const fm_gql_type *root = op->kind == GD_MUTATION ? x->s->mutation : x->s->query;
  groups g = {0};
  unsigned char *visited = fm_calloc(x->doc->ndefs + 1, 1);
  if (!visited) return FM_ERR_NOMEM;
  collect(x, root, &op->sels, &g, visited);
  fm_free(visited);
  x->max_cost = lim->max_cost;
  if (!x->fatal) cost_of(x, root, &g, 1);
  if (!x->fatal && x->cost > lim->max_cost) {
    *outcome = FM_GQL_REQUEST_ERROR;
    groups_free(&g);
    if (gql_error_add(x->errors, &op->loc,
                      "The operation's estimated cost is over the limit of %ld (fields "
                      "resolved, each list multiplied by its first/limit argument).",
                      lim->max_cost))
      return FM_ERR_NOMEM;
    return FM_OK;
  }
  if (!x->fatal) {
    int r = exec_selset(x, root, NULL, &g, NULL, data);
    if (r == R_PROP) *data = NULL;
  }
  groups_free(&g);
  return x->fatal;
}

static json_t *response(json_t *data, int with_data, json_t *errors) {
  json_t *r = json_object();
  if (!r) return NULL;
  if (json_array_size(errors) && json_object_set(r, "errors", errors)) goto fail;
  if (with_data && json_object_set(r, "data", data ? data : json_null())) goto fail;
  return r;
fail:
  json_decref(r);
  return NULL;
}

fm_rc fm_gql_execute(const fm_gql_schema *s, const fm_gql_request *req,
                     const fm_gql_limits *lim, json_t **resp, fm_gql_outcome *outcome,
                     fm_error *err) {
  *resp = NULL;
  *outcome = FM_GQL_REQUEST_ERROR;
  if (!s || !s->finished) return fm_error_set(err, FM_ERR_ARG, "graphql: the schema is not finished");
  fm_gql_limits def;
  lim = gql_limits_or_default(lim, &def);
  gql_doc doc;
  gql_loc where;
  fm_error e;
  fm_error_init(&e);
  X x = {.s = s, .doc = &doc, .ctx = req->ctx, .err = err};
  json_t *data = NULL;
  x.errors = json_array();
  if (!x.errors) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  fm_rc rc = gql_parse(req->query ? req->query : "", req->query ? req->len : 0, lim, &doc,
                       &where, &e);
  if (rc == FM_ERR_PARSE || rc == FM_ERR_ARG) {
    /* "line:col: " leads the message: the location goes to locations. */
    const char *m = e.msg;
    if (where.line) {
      const char *c = strchr(m, ' ');
      if (c) m = c + 1;
    }
    rc = gql_error_add(x.errors, where.line ? &where : NULL, "%s", m);
  } else if (!rc) {
    size_t before = 0;
    rc = gql_validate(s, &doc, lim, x.errors, &e);
    if (!rc && json_array_size(x.errors) == before) {
      const gql_def *op = pick_operation(&x, req->operation_name);
      if (op && op->kind == GD_MUTATION && req->no_mutation) {
        *outcome = FM_GQL_MUTATION_REFUSED;
        rc = gql_error_add(x.errors, &op->loc, "Mutations are not allowed over GET; use POST.");
      } else if (op) {
        rc = coerce_vars(&x, op, req->variables);
        if (!rc && !json_array_size(x.errors)) {
          *outcome = FM_GQL_EXECUTED;
          rc = run(&x, op, lim, &data, outcome);
        }
      } else {
        rc = x.fatal;
      }
    }
  }
  if (!rc) {
    *resp = response(data, *outcome == FM_GQL_EXECUTED, x.errors);
    if (!*resp) rc = FM_ERR_NOMEM;
  }
  json_decref(data);
  json_decref(x.errors);
  json_decref(x.vars);
  gql_doc_free(&doc);
  if (rc) return fm_error_set(err, FM_ERR_NOMEM, "out of memory executing a GraphQL request");
  return FM_OK;
}
