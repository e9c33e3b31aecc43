/* introspect.c: the introspection system (spec section 4): the types
 * __Schema, __Type, __Field, __InputValue, __EnumValue, __Directive and
 * the enums __TypeKind and __DirectiveLocation, added to every schema, and
 * the values the executor hands out for __schema and __type.
 *
 * A __Type value is a JSON object with its scalar members (kind, name,
 * description, specifiedByURL) and a hidden member "$t", the type's index
 * in the schema ('$' cannot start a GraphQL name, so no selection can read
 * it); the members that lead to other types (fields, inputFields,
 * enumValues, interfaces, possibleTypes, ofType, and type of a field or an
 * input value) are resolved on demand from "$t", so a recursive walk costs
 * what the query selects. */
#include "gql_internal.h"

#include <string.h>

static const char *kind_name(gql_kind k) {
  switch (k) {
  case GK_SCALAR: return "SCALAR";
  case GK_OBJECT: return "OBJECT";
  case GK_ENUM: return "ENUM";
  case GK_INPUT: return "INPUT_OBJECT";
  case GK_LIST: return "LIST";
  case GK_NONNULL: return "NON_NULL";
  }
  return "SCALAR";
}

json_t *gql_type_value(const fm_gql_schema *s, const fm_gql_type *t) {
  (void)s;
  if (!t) return NULL;
  return json_pack("{s:s,s:s?,s:s?,s:n,s:I}", "kind", kind_name(t->kind), "name", t->name,
                   "description", t->description, "specifiedByURL", "$t", (json_int_t)t->index);
}

/* An argument or input field as an __InputValue (new reference). */
static json_t *input_value(const fm_gql_field *a) {
  char *def = NULL;
  if (a->def_value) {
    fm_buf b;
    fm_buf_init(&b);
    if (gql_print_json_literal(a->type, a->def_value, &b)) {
      fm_buf_free(&b);
      return NULL;
    }
    def = b.buf;
  }
  json_t *j = json_pack("{s:s,s:s?,s:s?,s:b,s:n,s:I}", "name", a->name, "description",
                        a->description, "defaultValue", def, "isDeprecated", 0,
                        "deprecationReason", "$t", (json_int_t)a->type->index);
  fm_free(def);
  return j;
}

static json_t *field_value(const fm_gql_field *f) {
  json_t *args = json_array();
  for (size_t i = 0; args && i < f->nargs; i++)
    if (json_array_append_new(args, input_value(f->args[i]))) {
      json_decref(args);
      args = NULL;
    }
  if (!args) return NULL;
  return json_pack("{s:s,s:s?,s:o,s:b,s:n,s:I}", "name", f->name, "description",
                   f->description, "args", args, "isDeprecated", 0, "deprecationReason", "$t",
                   (json_int_t)f->type->index);
}

/* The built-in directives (spec 3.13). */
static json_t *directives_value(const fm_gql_schema *s) {
  static const char *const cond_locs[] = {"FIELD", "FRAGMENT_SPREAD", "INLINE_FRAGMENT", NULL};
  static const char *const dep_locs[] = {"FIELD_DEFINITION", "ARGUMENT_DEFINITION",
                                         "INPUT_FIELD_DEFINITION", "ENUM_VALUE", NULL};
  static const char *const spec_locs[] = {"SCALAR", NULL};
  struct {
    const char *name, *desc, *arg, *argdesc, *def;
    const fm_gql_type *argtype;
    const char *const *locs;
  } d[] = {
      {"include", "Directs the executor to include this field or fragment only when the `if` argument is true.",
       "if", "Included when true.", NULL, s->t_boolean->as_nonnull, cond_locs},
      {"skip", "Directs the executor to skip this field or fragment when the `if` argument is true.",
       "if", "Skipped when true.", NULL, s->t_boolean->as_nonnull, cond_locs},
      {"deprecated", "Marks an element of a GraphQL schema as no longer supported.", "reason",
       "Explains why this element was deprecated, usually also including a suggestion for how to access supported similar data. Formatted using the Markdown syntax, as specified by [CommonMark](https://commonmark.org/).",
       "\"No longer supported\"", s->t_string, dep_locs},
      {"specifiedBy", "Exposes a URL that specifies the behavior of this scalar.", "url",
       "The URL that specifies the behavior of this scalar.", NULL, s->t_string->as_nonnull,
       spec_locs},
  };
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < sizeof d / sizeof d[0]; i++) {
    json_t *locs = json_array();
    for (size_t k = 0; locs && d[i].locs[k]; k++)
      if (json_array_append_new(locs, json_string(d[i].locs[k]))) {
        json_decref(locs);
        locs = NULL;
      }
    json_t *arg = json_pack("{s:s,s:s,s:s?,s:b,s:n,s:I}", "name", d[i].arg, "description",
                            d[i].argdesc, "defaultValue", d[i].def, "isDeprecated", 0,
                            "deprecationReason", "$t", (json_int_t)d[i].argtype->index);
    json_t *dj = locs && arg ? json_pack("{s:s,s:s,s:b,s:o,s:[o]}", "name", d[i].name,
                                         "description", d[i].desc, "isRepeatable", 0,
                                         "locations", locs, "args", arg)
                             : NULL;
    if (!dj) {
      if (!locs || !arg) {
        json_decref(locs);
        json_decref(arg);
      }
      json_decref(arr);
      return NULL;
    }
    if (json_array_append_new(arr, dj)) {
      json_decref(arr);
      return NULL;
    }
  }
  return arr;
}

json_t *gql_schema_value(const fm_gql_schema *s) {
  json_t *types = json_array();
  for (size_t i = 0; types && i < s->ntypes; i++)
    if (s->types[i]->name && json_array_append_new(types, gql_type_value(s, s->types[i]))) {
      json_decref(types);
      types = NULL;
    }
  json_t *q = gql_type_value(s, s->query), *m = s->mutation ? gql_type_value(s, s->mutation)
                                                             : json_null();
  json_t *dirs = directives_value(s);
  if (!types || !q || !m || !dirs) {
    json_decref(types);
    json_decref(q);
    json_decref(m);
    json_decref(dirs);
    return NULL;
  }
  return json_pack("{s:n,s:o,s:o,s:o,s:n,s:o}", "description", "types", types, "queryType", q,
                   "mutationType", m, "subscriptionType", "directives", dirs);
}

/* Resolve a member of an introspection object that leads to types. */
static fm_rc introspect_resolve(const fm_gql_resolve_info *info, json_t **out, fm_error *err) {
  const fm_gql_schema *s = info->field_data;
  json_t *ti = json_object_get(info->parent, "$t");
  *out = NULL;
  if (!json_is_integer(ti) || (size_t)json_integer_value(ti) >= s->ntypes)
    return fm_error_set(err, FM_ERR_INTERNAL, "introspection value without a type");
  const fm_gql_type *t = s->types[json_integer_value(ti)];
  const char *f = info->field_name;
  json_t *arr = NULL;
  if (!strcmp(f, "type")) {
    *out = gql_type_value(s, t);
  } else if (!strcmp(f, "ofType")) {
    if (t->of) *out = gql_type_value(s, t->of);
    return t->of && !*out ? FM_ERR_NOMEM : FM_OK;
  } else if (!strcmp(f, "interfaces")) {
    if (t->kind == GK_OBJECT) *out = json_array();
    return t->kind == GK_OBJECT && !*out ? FM_ERR_NOMEM : FM_OK;
  } else if (!strcmp(f, "possibleTypes")) {
    return FM_OK;
  } else if (!strcmp(f, "fields") || !strcmp(f, "inputFields")) {
    if (t->kind != (f[0] == 'f' ? GK_OBJECT : GK_INPUT)) return FM_OK;
    arr = json_array();
    for (size_t i = 0; arr && i < t->nfields; i++)
      if (json_array_append_new(arr, f[0] == 'f' ? field_value(t->fields[i])
                                                 : input_value(t->fields[i]))) {
        json_decref(arr);
        arr = NULL;
      }
    *out = arr;
  } else if (!strcmp(f, "enumValues")) {
    if (t->kind != GK_ENUM) return FM_OK;
    arr = json_array();
    for (size_t i = 0; arr && i < t->nvalues; i++)
      if (json_array_append_new(arr, json_pack("{s:s,s:n,s:b,s:n}", "name", t->values[i],
                                               "description", "isDeprecated", 0,
                                               "deprecationReason"))) {
        json_decref(arr);
        arr = NULL;
      }
    *out = arr;
  } else {
    return fm_error_set(err, FM_ERR_INTERNAL, "no introspection resolver for %s", f);
  }
  return *out ? FM_OK : fm_error_set(err, FM_ERR_NOMEM, "out of memory in introspection");
}

/* The "name: String!" and "description: String" fields that open __Field,
 * __InputValue, __EnumValue and __Directive (in that order). */
static void add_name_description(fm_gql_schema *s, fm_gql_type *t, fm_gql_type *str_nn,
                                 fm_gql_type *str) {
  fm_gql_field_add(s, t, "name", str_nn, NULL, NULL, NULL);
  fm_gql_field_add(s, t, "description", str, NULL, NULL, NULL);
}

/* The "isDeprecated: Boolean!" and "deprecationReason: String" fields that
 * close __Field, __InputValue and __EnumValue (in that order). */
static void add_deprecation(fm_gql_schema *s, fm_gql_type *t, fm_gql_type *boo_nn,
                            fm_gql_type *str) {
  fm_gql_field_add(s, t, "isDeprecated", boo_nn, NULL, NULL, NULL);
  fm_gql_field_add(s, t, "deprecationReason", str, NULL, NULL, NULL);
}

void gql_introspection_add(fm_gql_schema *s) {
  static const char *const kinds[] = {"SCALAR", "OBJECT", "INTERFACE", "UNION", "ENUM",
                                      "INPUT_OBJECT", "LIST", "NON_NULL", NULL};
  static const char *const locs[] = {
      "QUERY", "MUTATION", "SUBSCRIPTION", "FIELD", "FRAGMENT_DEFINITION", "FRAGMENT_SPREAD",
      "INLINE_FRAGMENT", "VARIABLE_DEFINITION", "SCHEMA", "SCALAR", "OBJECT",
      "FIELD_DEFINITION", "ARGUMENT_DEFINITION", "INTERFACE", "UNION", "ENUM", "ENUM_VALUE",
      "INPUT_OBJECT", "INPUT_FIELD_DEFINITION", NULL};
  fm_gql_type *str = s->t_string, *boo = s->t_boolean;
  fm_gql_type *str_nn = fm_gql_nonnull(s, str), *boo_nn = fm_gql_nonnull(s, boo);
  fm_gql_type *sch = fm_gql_object(s, "__Schema", "A GraphQL Schema defines the capabilities of a GraphQL server. It exposes all available types and directives on the server, as well as the entry points for query, mutation, and subscription operations.");
  fm_gql_type *typ = fm_gql_object(s, "__Type", "The fundamental unit of any GraphQL Schema is the type. There are many kinds of types in GraphQL as represented by the `__TypeKind` enum.\n\nDepending on the kind of a type, certain fields describe information about that type. Scalar types provide no information beyond a name, description and optional `specifiedByURL`, while Enum types provide their values. Object and Interface types provide the fields they describe. Abstract types, Union and Interface, provide the Object types possible at runtime. List and NonNull types compose other types.");
  fm_gql_type *fld = fm_gql_object(s, "__Field", "Object and Interface types are described by a list of Fields, each of which has a name, potentially a list of arguments, and a return type.");
  fm_gql_type *inv = fm_gql_object(s, "__InputValue", "Arguments provided to Fields or Directives and the input fields of an InputObject are represented as Input Values which describe their type and optionally a default value.");
  fm_gql_type *env = fm_gql_object(s, "__EnumValue", "One possible value for a given Enum. Enum values are unique values, not a placeholder for a string or numeric value. However an Enum value is returned in a JSON response as a string.");
  fm_gql_type *dir = fm_gql_object(s, "__Directive", "A Directive provides a way to describe alternate runtime execution and type evaluation behavior in a GraphQL document.\n\nIn some cases, you need to provide options to alter GraphQL's execution behavior in ways field arguments will not suffice, such as conditionally including or skipping a field. Directives provide this by describing additional information to the executor.");
  fm_gql_type *tk = fm_gql_enum(s, "__TypeKind", "An enum describing what kind of type a given `__Type` is.", kinds);
  fm_gql_type *dl = fm_gql_enum(s, "__DirectiveLocation", "A Directive can be adjacent to many parts of the GraphQL language, a __DirectiveLocation describes one such possible adjacencies.", locs);
  s->t_schema = sch;
  fm_gql_nonnull(s, sch); /* __schema: __Schema! */
  s->t_type = typ;
  fm_gql_type *typ_nn = fm_gql_nonnull(s, typ);
  fm_gql_type *typ_list = fm_gql_list(s, typ_nn);
  fm_gql_type *inv_list = fm_gql_nonnull(s, fm_gql_list(s, fm_gql_nonnull(s, inv)));
  fm_gql_resolve_fn R = introspect_resolve;
  fm_gql_field *f;

  fm_gql_field_add(s, sch, "description", str, NULL, NULL, NULL);
  fm_gql_field_add(s, sch, "types", fm_gql_nonnull(s, typ_list), "A list of all types supported by this server.", NULL, NULL);
  fm_gql_field_add(s, sch, "queryType", typ_nn, "The type that query operations will be rooted at.", NULL, NULL);
  fm_gql_field_add(s, sch, "mutationType", typ, "If this server supports mutation, the type that mutation operations will be rooted at.", NULL, NULL);
  fm_gql_field_add(s, sch, "subscriptionType", typ, "If this server support subscription, the type that subscription operations will be rooted at.", NULL, NULL);
  fm_gql_field_add(s, sch, "directives", fm_gql_nonnull(s, fm_gql_list(s, fm_gql_nonnull(s, dir))), "A list of all directives supported by this server.", NULL, NULL);

  fm_gql_field_add(s, typ, "kind", fm_gql_nonnull(s, tk), NULL, NULL, NULL);
  fm_gql_field_add(s, typ, "name", str, NULL, NULL, NULL);
  fm_gql_field_add(s, typ, "description", str, NULL, NULL, NULL);
  fm_gql_field_add(s, typ, "specifiedByURL", str, NULL, NULL, NULL);
  f = fm_gql_field_add(s, typ, "fields", fm_gql_list(s, fm_gql_nonnull(s, fld)), NULL, R, s);
  fm_gql_arg_add(s, f, "includeDeprecated", boo, NULL, "false");
  fm_gql_field_add(s, typ, "interfaces", typ_list, NULL, R, s);
  fm_gql_field_add(s, typ, "possibleTypes", typ_list, NULL, R, s);
  f = fm_gql_field_add(s, typ, "enumValues", fm_gql_list(s, fm_gql_nonnull(s, env)), NULL, R, s);
  fm_gql_arg_add(s, f, "includeDeprecated", boo, NULL, "false");
  f = fm_gql_field_add(s, typ, "inputFields", fm_gql_list(s, fm_gql_nonnull(s, inv)), NULL, R, s);
  fm_gql_arg_add(s, f, "includeDeprecated", boo, NULL, "false");
  fm_gql_field_add(s, typ, "ofType", typ, NULL, R, s);

  add_name_description(s, fld, str_nn, str);
  f = fm_gql_field_add(s, fld, "args", inv_list, NULL, NULL, NULL);
  fm_gql_arg_add(s, f, "includeDeprecated", boo, NULL, "false");
  fm_gql_field_add(s, fld, "type", typ_nn, NULL, R, s);
  add_deprecation(s, fld, boo_nn, str);

  add_name_description(s, inv, str_nn, str);
  fm_gql_field_add(s, inv, "type", typ_nn, NULL, R, s);
  fm_gql_field_add(s, inv, "defaultValue", str, "A GraphQL-formatted string representing the default value for this input value.", NULL, NULL);
  add_deprecation(s, inv, boo_nn, str);

  add_name_description(s, env, str_nn, str);
  add_deprecation(s, env, boo_nn, str);

  add_name_description(s, dir, str_nn, str);
  fm_gql_field_add(s, dir, "isRepeatable", boo_nn, NULL, NULL, NULL);
  fm_gql_field_add(s, dir, "locations", fm_gql_nonnull(s, fm_gql_list(s, fm_gql_nonnull(s, dl))), NULL, NULL, NULL);
  f = fm_gql_field_add(s, dir, "args", inv_list, NULL, NULL, NULL);
  fm_gql_arg_add(s, f, "includeDeprecated", boo, NULL, "false");
}
