/* schema.c: the type system (spec section 3) as the front end builds it:
 * named types (scalars, objects, enums, input objects), the list and
 * non-null wrappers, fields with arguments and defaults.  Building calls
 * keep the first failure in the schema (a sticky error, as a stream's
 * error flag) so a front end can build a whole schema and check once. */
#include "gql_internal.h"

#include <stdarg.h>
#include <string.h>

void fm_gql_limits_default(fm_gql_limits *l) {
  l->max_bytes = 32768;
  l->max_depth = 16;
  l->max_cost = 10000;
  l->max_tokens = 5000;
}

static void *fail(fm_gql_schema *s, fm_rc rc, const char *fmt, const char *what) {
  if (!s->rc) {
    s->rc = rc;
    fm_error_set(&s->err, rc, fmt, what ? what : "");
  }
  return NULL;
}

static int valid_name(const char *n) {
  if (!n || !*n) return 0;
  for (const char *p = n; *p; p++) {
    char c = *p;
    int ok = c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
             (p > n && c >= '0' && c <= '9');
    if (!ok) return 0;
  }
  return 1;
}

static void field_free(fm_gql_field *f) {
  if (!f) return;
  for (size_t i = 0; i < f->nargs; i++) field_free(f->args[i]);
  fm_free(f->args);
  fm_free(f->name);
  fm_free(f->description);
  fm_free(f->def_literal);
  json_decref(f->def_value);
  fm_free(f);
}

static void type_free(fm_gql_type *t) {
  for (size_t i = 0; i < t->nfields; i++) field_free(t->fields[i]);
  fm_free(t->fields);
  for (size_t i = 0; i < t->nvalues; i++) fm_free(t->values[i]);
  fm_free(t->values);
  fm_free(t->name);
  fm_free(t->description);
  fm_free(t);
}

void fm_gql_schema_free(fm_gql_schema *s) {
  if (!s) return;
  for (size_t i = 0; i < s->ntypes; i++) type_free(s->types[i]);
  fm_free(s->types);
  fm_free(s);
}

/* A new type registered in s (name copied; NULL for wrappers). */
static fm_gql_type *type_new(fm_gql_schema *s, gql_kind k, const char *name, const char *desc) {
  if (s->rc) return NULL;
  if (s->finished) return fail(s, FM_ERR_ARG, "schema: '%s' added after finish", name);
  if (name && !valid_name(name)) return fail(s, FM_ERR_ARG, "schema: invalid type name '%s'", name);
  if (name && fm_gql_type_named(s, name))
    return fail(s, FM_ERR_ARG, "schema: duplicate type name '%s'", name);
  if (fm_grow((void **)&s->types, &s->captypes, s->ntypes + 1, sizeof *s->types))
    return fail(s, FM_ERR_NOMEM, "out of memory building the schema%s", NULL);
  fm_gql_type *t = fm_calloc(1, sizeof *t);
  if (!t || (name && !(t->name = fm_strdup(name))) ||
      (desc && !(t->description = fm_strdup(desc)))) {
    if (t) type_free(t);
    return fail(s, FM_ERR_NOMEM, "out of memory building the schema%s", NULL);
  }
  t->kind = k;
  t->index = s->ntypes;
  s->types[s->ntypes++] = t;
  return t;
}

fm_rc fm_gql_schema_new(fm_gql_schema **out, fm_error *err) {
  *out = NULL;
  fm_gql_schema *s = fm_calloc(1, sizeof *s);
  if (!s) return fm_error_set(err, FM_ERR_NOMEM, "out of memory creating a schema");
  fm_error_init(&s->err);
  s->t_int = type_new(s, GK_SCALAR, "Int",
                      "The `Int` scalar type represents non-fractional signed whole numeric "
                      "values. Int can represent values between -(2^31) and 2^31 - 1.");
  s->t_float = type_new(s, GK_SCALAR, "Float",
                        "The `Float` scalar type represents signed double-precision fractional "
                        "values as specified by [IEEE 754](https://en.wikipedia.org/wiki/IEEE_floating_point).");
  s->t_string = type_new(s, GK_SCALAR, "String",
                         "The `String` scalar type represents textual data, represented as UTF-8 "
                         "character sequences. The String type is most often used by GraphQL to "
                         "represent free-form human-readable text.");
  s->t_boolean = type_new(s, GK_SCALAR, "Boolean", "The `Boolean` scalar type represents `true` or `false`.");
  s->t_id = type_new(s, GK_SCALAR, "ID",
                     "The `ID` scalar type represents a unique identifier, often used to refetch "
                     "an object or as key for a cache. The ID type appears in a JSON response as "
                     "a String; however, it is not intended to be human-readable. When expected "
                     "as an input type, any string (such as `\"4\"`) or integer (such as `4`) "
                     "input value will be accepted as an ID.");
  gql_introspection_add(s);
  if (s->rc) {
    fm_rc rc = fm_error_set(err, s->rc, "%s", s->err.msg);
    fm_gql_schema_free(s);
    return rc;
  }
  *out = s;
  return FM_OK;
}

fm_gql_type *fm_gql_type_named(fm_gql_schema *s, const char *name) {
  for (size_t i = 0; s && name && i < s->ntypes; i++)
    if (s->types[i]->name && !strcmp(s->types[i]->name, name)) return s->types[i];
  return NULL;
}

fm_gql_type *fm_gql_object(fm_gql_schema *s, const char *name, const char *description) {
  return type_new(s, GK_OBJECT, name, description);
}

fm_gql_type *fm_gql_input(fm_gql_schema *s, const char *name, const char *description) {
  return type_new(s, GK_INPUT, name, description);
}

fm_gql_type *fm_gql_enum(fm_gql_schema *s, const char *name, const char *description,
                         const char *const *values) {
  fm_gql_type *t = type_new(s, GK_ENUM, name, description);
  if (!t) return NULL;
  size_t n = 0;
  while (values && values[n]) n++;
  if (!n) return fail(s, FM_ERR_ARG, "schema: enum '%s' has no values", name);
  if (!(t->values = fm_calloc(n, sizeof *t->values)))
    return fail(s, FM_ERR_NOMEM, "out of memory building the schema%s", NULL);
  for (size_t i = 0; i < n; i++) {
    if (!valid_name(values[i]) || !strcmp(values[i], "true") || !strcmp(values[i], "false") ||
        !strcmp(values[i], "null"))
      return fail(s, FM_ERR_ARG, "schema: invalid enum value '%s'", values[i]);
    if (!(t->values[i] = fm_strdup(values[i])))
      return fail(s, FM_ERR_NOMEM, "out of memory building the schema%s", NULL);
    t->nvalues = i + 1;
  }
  return t;
}

/* The wrapper type of kind k (list or non-null) around of, made once and
 * kept in *cache (of->as_list or of->as_nonnull), so every [T] / T! is one
 * type owned by the schema. */
static fm_gql_type *wrapper(fm_gql_schema *s, gql_kind k, fm_gql_type *of,
                            fm_gql_type **cache) {
  if (*cache) return *cache;
  fm_gql_type *t = type_new(s, k, NULL, NULL);
  if (t) {
    t->of = of;
    *cache = t;
  }
  return t;
}

fm_gql_type *fm_gql_list(fm_gql_schema *s, fm_gql_type *of) {
  if (!of || s->rc) return NULL;
  return wrapper(s, GK_LIST, of, &of->as_list);
}

fm_gql_type *fm_gql_nonnull(fm_gql_schema *s, fm_gql_type *of) {
  if (!of || s->rc) return NULL;
  if (of->kind == GK_NONNULL) return fail(s, FM_ERR_ARG, "schema: non-null of non-null%s", NULL);
  return wrapper(s, GK_NONNULL, of, &of->as_nonnull);
}

static fm_gql_field *field_new(fm_gql_schema *s, const char *name, fm_gql_type *type,
                               const char *desc) {
  if (!type || s->rc) return NULL;
  if (!valid_name(name)) return fail(s, FM_ERR_ARG, "schema: invalid field name '%s'", name);
  fm_gql_field *f = fm_calloc(1, sizeof *f);
  if (!f || !(f->name = fm_strdup(name)) || (desc && !(f->description = fm_strdup(desc)))) {
    field_free(f);
    return fail(s, FM_ERR_NOMEM, "out of memory building the schema%s", NULL);
  }
  f->type = type;
  return f;
}

fm_gql_field *fm_gql_field_add(fm_gql_schema *s, fm_gql_type *owner, const char *name,
                               fm_gql_type *type, const char *description,
                               fm_gql_resolve_fn resolve, void *data) {
  if (!owner || !type || s->rc) return NULL;
  if (owner->kind != GK_OBJECT && owner->kind != GK_INPUT)
    return fail(s, FM_ERR_ARG, "schema: fields go on objects and input objects ('%s')", name);
  if (gql_field_of(owner, name)) return fail(s, FM_ERR_ARG, "schema: duplicate field '%s'", name);
  if (owner->kind == GK_INPUT ? !gql_is_input(type) : gql_named(type)->kind == GK_INPUT)
    return fail(s, FM_ERR_ARG, "schema: field '%s' has a type of the wrong kind", name);
  if (owner->kind == GK_INPUT && resolve)
    return fail(s, FM_ERR_ARG, "schema: input field '%s' cannot have a resolver", name);
  if (fm_grow((void **)&owner->fields, &owner->capfields, owner->nfields + 1,
              sizeof *owner->fields))
    return fail(s, FM_ERR_NOMEM, "out of memory building the schema%s", NULL);
  fm_gql_field *f = field_new(s, name, type, description);
  if (!f) return NULL;
  f->resolve = resolve;
  f->data = data;
  owner->fields[owner->nfields++] = f;
  return f;
}

void fm_gql_field_default(fm_gql_schema *s, fm_gql_field *f, const char *lit) {
  if (!f || s->rc || !lit) return;
  fm_free(f->def_literal);
  if (!(f->def_literal = fm_strdup(lit)))
    fail(s, FM_ERR_NOMEM, "out of memory building the schema%s", NULL);
}

void fm_gql_arg_add(fm_gql_schema *s, fm_gql_field *f, const char *name, fm_gql_type *type,
                    const char *description, const char *default_literal) {
  if (!f || !type || s->rc) return;
  if (!gql_is_input(type)) {
    fail(s, FM_ERR_ARG, "schema: argument '%s' is not of an input type", name);
    return;
  }
  if (gql_arg_of(f, name)) {
    fail(s, FM_ERR_ARG, "schema: duplicate argument '%s'", name);
    return;
  }
  if (fm_grow((void **)&f->args, &f->capargs, f->nargs + 1, sizeof *f->args)) {
    fail(s, FM_ERR_NOMEM, "out of memory building the schema%s", NULL);
    return;
  }
  fm_gql_field *a = field_new(s, name, type, description);
  if (!a) return;
  f->args[f->nargs++] = a;
  fm_gql_field_default(s, a, default_literal);
}

/* Coerce a default literal to its value. */
static fm_rc finish_default(fm_gql_schema *s, fm_gql_field *f, fm_error *err) {
  if (!f->def_literal) return FM_OK;
  gql_doc doc;
  gql_value *v;
  fm_rc rc = gql_parse_value(f->def_literal, &doc, &v, err);
  if (!rc) rc = gql_coerce_literal(f->type, v, NULL, &f->def_value, err);
  gql_doc_free(&doc);
  if (rc && rc != FM_ERR_NOMEM)
    fm_error_prefix(err, "schema: default of '%s' (%s)", f->name, f->def_literal);
  (void)s;
  return rc;
}

fm_rc fm_gql_schema_finish(fm_gql_schema *s, fm_gql_type *query, fm_gql_type *mutation,
                           fm_error *err) {
  if (!s) return fm_error_set(err, FM_ERR_ARG, "schema: NULL");
  if (s->rc) return fm_error_set(err, s->rc, "%s", s->err.msg);
  if (!query || query->kind != GK_OBJECT || (mutation && mutation->kind != GK_OBJECT))
    return fm_error_set(err, FM_ERR_ARG, "schema: the root types must be object types");
  s->query = query;
  s->mutation = mutation;
  for (size_t i = 0; i < s->ntypes; i++) {
    fm_gql_type *t = s->types[i];
    if ((t->kind == GK_OBJECT || t->kind == GK_INPUT) && !t->nfields)
      return fm_error_set(err, FM_ERR_ARG, "schema: type '%s' has no fields", t->name);
    for (size_t j = 0; j < t->nfields; j++) {
      fm_gql_field *f = t->fields[j];
      fm_rc rc = finish_default(s, f, err);
      for (size_t k = 0; !rc && k < f->nargs; k++) rc = finish_default(s, f->args[k], err);
      if (rc) return rc;
    }
  }
  s->finished = 1;
  return FM_OK;
}

/* ---- helpers --------------------------------------------------------------- */

const fm_gql_type *gql_named(const fm_gql_type *t) {
  while (t && t->of) t = t->of;
  return t;
}

int gql_is_leaf(const fm_gql_type *t) {
  t = gql_named(t);
  return t && (t->kind == GK_SCALAR || t->kind == GK_ENUM);
}

int gql_is_input(const fm_gql_type *t) {
  t = gql_named(t);
  return t && (t->kind == GK_SCALAR || t->kind == GK_ENUM || t->kind == GK_INPUT);
}

const fm_gql_field *gql_field_of(const fm_gql_type *t, const char *name) {
  for (size_t i = 0; t && i < t->nfields; i++)
    if (!strcmp(t->fields[i]->name, name)) return t->fields[i];
  return NULL;
}

const fm_gql_field *gql_arg_of(const fm_gql_field *f, const char *name) {
  for (size_t i = 0; f && i < f->nargs; i++)
    if (!strcmp(f->args[i]->name, name)) return f->args[i];
  return NULL;
}

int gql_enum_has(const fm_gql_type *t, const char *v) {
  for (size_t i = 0; t && i < t->nvalues; i++)
    if (!strcmp(t->values[i], v)) return 1;
  return 0;
}

fm_rc gql_type_print(const fm_gql_type *t, fm_buf *b) {
  if (t->kind == GK_LIST) {
    fm_rc rc = fm_buf_putc(b, '[');
    if (!rc) rc = gql_type_print(t->of, b);
    return rc ? rc : fm_buf_putc(b, ']');
  }
  if (t->kind == GK_NONNULL) {
    fm_rc rc = gql_type_print(t->of, b);
    return rc ? rc : fm_buf_putc(b, '!');
  }
  return fm_buf_puts(b, t->name);
}

const fm_gql_type *gql_typeref_type(const fm_gql_schema *s, const gql_typeref *r,
                                    fm_arena *arena) {
  if (r->kind == GT_NAMED) {
    for (size_t i = 0; i < s->ntypes; i++)
      if (s->types[i]->name && !strcmp(s->types[i]->name, r->name)) return s->types[i];
    return NULL;
  }
  const fm_gql_type *of = gql_typeref_type(s, r->of, arena);
  if (!of) return NULL;
  fm_gql_type *t = fm_arena_alloc(arena, sizeof *t);
  if (!t) return NULL;
  memset(t, 0, sizeof *t);
  t->kind = r->kind == GT_LIST ? GK_LIST : GK_NONNULL;
  t->of = (fm_gql_type *)of;
  return t;
}
