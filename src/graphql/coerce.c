/* coerce.c: input coercion (spec 3.5 scalars, 3.9 enums, 3.10 input
 * objects, 3.11 lists, 3.12 non-null): literals of the document (with
 * variables) and the JSON values of variables, to JSON values the
 * resolvers read; and the reverse, a value printed as a literal for
 * introspection's defaultValue. */
#include "gql_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char gql_vars_any_marker = 0;

static fm_rc type_err(fm_error *err, const fm_gql_type *t, const char *found) {
  fm_buf b;
  fm_buf_init(&b);
  if (gql_type_print(t, &b)) {
    fm_buf_free(&b);
    return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  }
  fm_rc rc = fm_error_set(err, FM_ERR_ARG, "expected a value of type %s, found %s", b.buf, found);
  fm_buf_free(&b);
  return rc;
}

static fm_rc nomem(fm_error *err) { return fm_error_set(err, FM_ERR_NOMEM, "out of memory"); }

/* A leaf literal (not null, not a variable). */
static fm_rc leaf_literal(const fm_gql_type *t, const gql_value *v, json_t **out, fm_error *err) {
  const char *n = t->name;
  json_t *j = NULL;
  if (t->kind == GK_ENUM) {
    if (v->kind != GV_ENUM || !gql_enum_has(t, v->s)) return type_err(err, t, v->s ? v->s : "a non-enum value");
    j = json_string(v->s);
  } else if (!strcmp(n, "Int") || (!strcmp(n, "ID") && v->kind == GV_INT)) {
    if (v->kind != GV_INT) return type_err(err, t, v->s ? v->s : "a list or object");
    errno = 0;
    long long x = strtoll(v->s, NULL, 10);
    if (!strcmp(n, "ID")) {
      j = json_string(v->s);
    } else {
      if (errno || x < -2147483648LL || x > 2147483647LL)
        return fm_error_set(err, FM_ERR_ARG, "Int cannot represent non 32-bit signed integer value: %s", v->s);
      j = json_integer(x);
    }
  } else if (!strcmp(n, "Float")) {
    if (v->kind != GV_INT && v->kind != GV_FLOAT) return type_err(err, t, v->s ? v->s : "a list or object");
    double d = strtod(v->s, NULL);
    j = json_real(d);
  } else if (!strcmp(n, "String") || !strcmp(n, "ID")) {
    if (v->kind != GV_STRING) return type_err(err, t, v->kind == GV_ENUM || v->s ? v->s : "a list or object");
    j = json_stringn(v->s, v->slen);
  } else if (!strcmp(n, "Boolean")) {
    if (v->kind != GV_BOOL) return type_err(err, t, v->s ? v->s : "a list or object");
    j = json_boolean(!strcmp(v->s, "true"));
  } else {
    return fm_error_set(err, FM_ERR_INTERNAL, "no coercion for scalar %s", n);
  }
  if (!j) return nomem(err);
  *out = j;
  return FM_OK;
}

static fm_rc object_literal(const fm_gql_type *t, const gql_value *v, const json_t *vars,
                            json_t **out, fm_error *err) {
  if (v->kind != GV_OBJECT) return type_err(err, t, v->s ? v->s : "a list");
  json_t *o = json_object();
  if (!o) return nomem(err);
  fm_rc rc = FM_OK;
  for (size_t i = 0; !rc && i < v->n; i++) {
    if (!gql_field_of(t, v->keys[i]))
      rc = fm_error_set(err, FM_ERR_ARG, "field '%s' is not defined by type %s", v->keys[i], t->name);
    for (size_t j = 0; !rc && j < i; j++)
      if (!strcmp(v->keys[i], v->keys[j]))
        rc = fm_error_set(err, FM_ERR_ARG, "there can be only one input field named '%s'", v->keys[i]);
  }
  for (size_t i = 0; !rc && i < t->nfields; i++) {
    const fm_gql_field *f = t->fields[i];
    const gql_value *fv = NULL;
    for (size_t j = 0; j < v->n; j++)
      if (!strcmp(v->keys[j], f->name)) fv = v->items[j];
    json_t *x = NULL;
    if (fv && fv->kind == GV_VAR && vars && vars != GQL_VARS_ANY && !json_object_get(vars, fv->s))
      fv = NULL; /* an absent variable: as if the field were absent */
    if (fv) {
      rc = gql_coerce_literal(f->type, fv, vars, &x, err);
      if (rc && rc != FM_ERR_NOMEM) fm_error_prefix(err, "in field '%s'", f->name);
    } else if (f->def_value) {
      x = json_incref(f->def_value);
    } else if (f->type->kind == GK_NONNULL) {
      rc = fm_error_set(err, FM_ERR_ARG, "field '%s' of required type is not provided", f->name);
    }
    if (!rc && x && json_object_set_new(o, f->name, x)) rc = nomem(err);
  }
  if (rc) {
    json_decref(o);
    return rc;
  }
  *out = o;
  return FM_OK;
}

fm_rc gql_coerce_literal(const fm_gql_type *t, const gql_value *v, const json_t *vars,
                         json_t **out, fm_error *err) {
  *out = NULL;
  if (v->kind == GV_VAR) {
    if (vars == GQL_VARS_ANY || !vars) {
      if (!vars) return fm_error_set(err, FM_ERR_ARG, "variable $%s in a constant value", v->s);
      *out = json_null();
      return FM_OK;
    }
    json_t *x = json_object_get(vars, v->s);
    if ((!x || json_is_null(x)) && t->kind == GK_NONNULL)
      return fm_error_set(err, FM_ERR_ARG, "variable $%s is null where a value is required", v->s);
    *out = x ? json_incref(x) : json_null();
    return FM_OK;
  }
  if (t->kind == GK_NONNULL) {
    if (v->kind == GV_NULL) return type_err(err, t, "null");
    return gql_coerce_literal(t->of, v, vars, out, err);
  }
  if (v->kind == GV_NULL) {
    *out = json_null();
    return FM_OK;
  }
  if (t->kind == GK_LIST) {
    json_t *a = json_array();
    if (!a) return nomem(err);
    size_t n = v->kind == GV_LIST ? v->n : 1;
    for (size_t i = 0; i < n; i++) {
      json_t *x;
      fm_rc rc = gql_coerce_literal(t->of, v->kind == GV_LIST ? v->items[i] : v, vars, &x, err);
      if (!rc && json_array_append_new(a, x)) rc = nomem(err);
      if (rc) {
        json_decref(a);
        return rc;
      }
    }
    *out = a;
    return FM_OK;
  }
  if (t->kind == GK_INPUT) return object_literal(t, v, vars, out, err);
  if (v->kind == GV_LIST || v->kind == GV_OBJECT)
    return type_err(err, t, v->kind == GV_LIST ? "a list" : "an object");
  return leaf_literal(t, v, out, err);
}

/* ---- variables' JSON values ------------------------------------------------ */

static fm_rc leaf_input(const fm_gql_type *t, const json_t *in, json_t **out, fm_error *err) {
  const char *n = t->name;
  json_t *j = NULL;
  if (t->kind == GK_ENUM) {
    if (!json_is_string(in) || !gql_enum_has(t, json_string_value(in)))
      return type_err(err, t, "a value that is not one of its names");
    j = json_incref((json_t *)in);
  } else if (!strcmp(n, "Int")) {
    double d = json_is_real(in) ? json_real_value(in) : 0;
    if (json_is_real(in) && d == (double)(long long)d) {
      j = json_integer((json_int_t)d);
    } else {
      if (!json_is_integer(in)) return type_err(err, t, "a non-integer");
      json_int_t x = json_integer_value(in);
      if (x < -2147483648LL || x > 2147483647LL)
        return fm_error_set(err, FM_ERR_ARG, "Int cannot represent non 32-bit signed integer value: %lld", (long long)x);
      j = json_incref((json_t *)in);
    }
  } else if (!strcmp(n, "Float")) {
    if (!json_is_number(in)) return type_err(err, t, "a non-number");
    j = json_incref((json_t *)in);
  } else if (!strcmp(n, "String")) {
    if (!json_is_string(in)) return type_err(err, t, "a non-string");
    j = json_incref((json_t *)in);
  } else if (!strcmp(n, "ID")) {
    if (json_is_integer(in)) {
      char b[32];
      snprintf(b, sizeof b, "%lld", (long long)json_integer_value(in));
      j = json_string(b);
    } else if (json_is_string(in)) {
      j = json_incref((json_t *)in);
    } else {
      return type_err(err, t, "a value that is neither a string nor an integer");
    }
  } else if (!strcmp(n, "Boolean")) {
    if (!json_is_boolean(in)) return type_err(err, t, "a non-boolean");
    j = json_incref((json_t *)in);
  } else {
    return fm_error_set(err, FM_ERR_INTERNAL, "no coercion for scalar %s", n);
  }
  if (!j) return nomem(err);
  *out = j;
  return FM_OK;
}

fm_rc gql_coerce_input(const fm_gql_type *t, const json_t *in, json_t **out, fm_error *err) {
  *out = NULL;
  if (t->kind == GK_NONNULL) {
    if (!in || json_is_null(in)) return type_err(err, t, "null");
    return gql_coerce_input(t->of, in, out, err);
  }
  if (!in || json_is_null(in)) {
    if (!(*out = json_null())) return nomem(err);
    return FM_OK;
  }
  if (t->kind == GK_LIST) {
    json_t *a = json_array();
    if (!a) return nomem(err);
    size_t n = json_is_array(in) ? json_array_size(in) : 1;
    for (size_t i = 0; i < n; i++) {
      json_t *x;
      fm_rc rc = gql_coerce_input(t->of, json_is_array(in) ? json_array_get(in, i) : in, &x, err);
      if (rc && rc != FM_ERR_NOMEM) fm_error_prefix(err, "at index %zu", i);
      if (!rc && json_array_append_new(a, x)) rc = nomem(err);
      if (rc) {
        json_decref(a);
        return rc;
      }
    }
    *out = a;
    return FM_OK;
  }
  if (t->kind == GK_INPUT) {
    if (!json_is_object(in)) return type_err(err, t, "a non-object");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)in, k, v) if (!gql_field_of(t, k))
      return fm_error_set(err, FM_ERR_ARG, "field '%s' is not defined by type %s", k, t->name);
    json_t *o = json_object();
    if (!o) return nomem(err);
    for (size_t i = 0; i < t->nfields; i++) {
      const fm_gql_field *f = t->fields[i];
      json_t *fv = json_object_get(in, f->name), *x = NULL;
      fm_rc rc = FM_OK;
      if (!fv && f->def_value)
        x = json_incref(f->def_value);
      else if (fv || f->type->kind == GK_NONNULL)
        rc = gql_coerce_input(f->type, fv, &x, err);
      if (rc && rc != FM_ERR_NOMEM) fm_error_prefix(err, "at field '%s'", f->name);
      if (!rc && x && json_object_set_new(o, f->name, x)) rc = nomem(err);
      if (rc) {
        json_decref(o);
        return rc;
      }
    }
    *out = o;
    return FM_OK;
  }
  return leaf_input(t, in, out, err);
}

/* ---- printing a value as a literal ----------------------------------------- */

fm_rc gql_print_json_literal(const fm_gql_type *t, const json_t *v, fm_buf *b) {
  if (t->kind == GK_NONNULL) t = t->of;
  if (json_is_null(v)) return fm_buf_puts(b, "null");
  if (t->kind == GK_LIST) {
    if (!json_is_array(v)) return gql_print_json_literal(t->of, v, b);
    fm_rc rc = fm_buf_putc(b, '[');
    for (size_t i = 0; !rc && i < json_array_size(v); i++) {
      if (i) rc = fm_buf_puts(b, ", ");
      if (!rc) rc = gql_print_json_literal(t->of, json_array_get(v, i), b);
    }
    return rc ? rc : fm_buf_putc(b, ']');
  }
  if (t->kind == GK_INPUT) {
    fm_rc rc = fm_buf_putc(b, '{');
    int first = 1;
    for (size_t i = 0; !rc && i < t->nfields; i++) {
      json_t *x = json_object_get(v, t->fields[i]->name);
      if (!x) continue;
      if (!first) rc = fm_buf_puts(b, ", ");
      first = 0;
      if (!rc) rc = fm_buf_printf(b, "%s: ", t->fields[i]->name);
      if (!rc) rc = gql_print_json_literal(t->fields[i]->type, x, b);
    }
    return rc ? rc : fm_buf_putc(b, '}');
  }
  if (t->kind == GK_ENUM) return fm_buf_puts(b, json_string_value(v));
  if (json_is_string(v)) return fm_buf_json_str(b, json_string_value(v), json_string_length(v), NULL);
  if (json_is_boolean(v)) return fm_buf_puts(b, json_is_true(v) ? "true" : "false");
  if (json_is_integer(v)) return fm_buf_printf(b, "%lld", (long long)json_integer_value(v));
  return fm_buf_printf(b, "%.17g", json_real_value(v));
}
