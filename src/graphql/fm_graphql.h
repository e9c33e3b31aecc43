/* fm_graphql.h: GraphQL (the October 2021 specification) for executable
 * documents, the graphql module's one public header.  No transport and no
 * knowledge of fieldmatch's data: a front end builds a schema in C (object,
 * scalar, enum and input object types, lists and non-null wrappers, one
 * resolver callback per field that needs one) and hands each request's
 * document, variables and operation name to fm_gql_execute, which parses,
 * validates, checks the limits, executes and returns the response object
 * {"data":..., "errors":[{"message","locations","path"}]}.
 *
 * Values: resolvers return jansson values.  An object type's value is a
 * JSON object; a field without a resolver reads the member of its parent
 * named like the field (the default resolver of the reference
 * implementation).  Introspection (__schema, __type, __typename) is built
 * in.  Interfaces, unions, subscriptions and custom directives are not
 * supported (no schema here needs them).
 *
 * Ownership: the schema owns every type, field and string given to it
 * (copied); fm_gql_schema_free frees all.  A schema is immutable once
 * fm_gql_schema_finish succeeded and can then be shared by threads.
 * docs/graphql.md describes the limits and the errors. */
#ifndef FM_GRAPHQL_H
#define FM_GRAPHQL_H

#include <jansson.h>
#include <stddef.h>

#include "fm_util.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fm_gql_schema fm_gql_schema;
typedef struct fm_gql_type fm_gql_type;
typedef struct fm_gql_field fm_gql_field;

/* What a resolver sees; everything is borrowed for the call. */
typedef struct fm_gql_resolve_info {
  void *ctx;                /* the request's ctx (fm_gql_request.ctx) */
  void *field_data;         /* the data given to fm_gql_field_add */
  const char *field_name;   /* the schema field's name */
  const json_t *parent;     /* the parent object's value (NULL at the root) */
  const json_t *args;       /* coerced arguments, defaults applied: an object */
} fm_gql_resolve_info;

/* Resolve one field: *out receives a new reference (the caller owns it) or
 * NULL for null.  A failure becomes a field error at the field's path
 * (err's message is the error's message), except FM_ERR_NOMEM, which ends
 * the request. */
typedef fm_rc (*fm_gql_resolve_fn)(const fm_gql_resolve_info *info, json_t **out,
                                   fm_error *err);

/* ---- building a schema --------------------------------------------------- */

/* A new schema holding the built-in scalars (Int, Float, String, Boolean,
 * ID), the directives @skip, @include and @deprecated and the introspection
 * types.  Caller owns *out (fm_gql_schema_free).  FM_ERR_NOMEM. */
fm_rc fm_gql_schema_new(fm_gql_schema **out, fm_error *err);
void fm_gql_schema_free(fm_gql_schema *s); /* NULL ok */

/* The building calls below never fail loudly: on a failure (out of memory,
 * a duplicate or invalid name) they return NULL, remember the first error
 * in the schema, and every later call is a no-op; fm_gql_schema_finish
 * reports it.  Any type argument may be NULL (after such a failure).
 * Returned pointers are borrowed from the schema. */

/* A named type (NULL when no such name). */
fm_gql_type *fm_gql_type_named(fm_gql_schema *s, const char *name);
fm_gql_type *fm_gql_object(fm_gql_schema *s, const char *name, const char *description);
fm_gql_type *fm_gql_input(fm_gql_schema *s, const char *name, const char *description);
/* An enum of the NULL-terminated values. */
fm_gql_type *fm_gql_enum(fm_gql_schema *s, const char *name, const char *description,
                         const char *const *values);
/* The wrappers [T] and T!; one instance per wrapped type. */
fm_gql_type *fm_gql_list(fm_gql_schema *s, fm_gql_type *of);
fm_gql_type *fm_gql_nonnull(fm_gql_schema *s, fm_gql_type *of);

/* Add a field to an object type, or to an input object (resolve and data
 * must then be NULL).  resolve NULL: the default resolver. */
fm_gql_field *fm_gql_field_add(fm_gql_schema *s, fm_gql_type *owner, const char *name,
                               fm_gql_type *type, const char *description,
                               fm_gql_resolve_fn resolve, void *data);
/* Add an argument to a field (input object fields take defaults through
 * fm_gql_field_default).  default_literal: a GraphQL value literal ("20",
 * "\"csv.gz\"", "ACCEPTED") or NULL for none. */
void fm_gql_arg_add(fm_gql_schema *s, fm_gql_field *f, const char *name, fm_gql_type *type,
                    const char *description, const char *default_literal);
/* An input object field's default value (a GraphQL literal). */
void fm_gql_field_default(fm_gql_schema *s, fm_gql_field *f, const char *default_literal);

/* Set the root types (mutation may be NULL), check the schema (every
 * object has a field, defaults are valid values of their types) and
 * freeze it.  Returns the first error of the building calls, if any. */
fm_rc fm_gql_schema_finish(fm_gql_schema *s, fm_gql_type *query, fm_gql_type *mutation,
                           fm_error *err);

/* ---- executing ---------------------------------------------------------- */

typedef struct fm_gql_limits {
  size_t max_bytes; /* document size in bytes (default 32768) */
  int max_depth;    /* nesting of selection sets, fragments expanded (12) */
  long max_cost;    /* estimated fields resolved (10000): each field costs
                       1 times the product of the `first` / `limit`
                       arguments of the list fields above it */
  size_t max_tokens; /* lexical tokens (5000) */
} fm_gql_limits;

void fm_gql_limits_default(fm_gql_limits *l);

typedef struct fm_gql_request {
  const char *query;          /* the document (need not be NUL-terminated) */
  size_t len;
  const json_t *variables;    /* an object or NULL */
  const char *operation_name; /* NULL: the document's only operation */
  int no_mutation;            /* refuse mutations (GET) */
  void *ctx;                  /* handed to resolvers */
} fm_gql_request;

/* How the request ended, for the transport's status code. */
typedef enum fm_gql_outcome {
  FM_GQL_EXECUTED = 0,   /* executed; errors, if any, are field errors */
  FM_GQL_REQUEST_ERROR,  /* not executed: syntax, validation, limits or
                            variables; the response has no "data" */
  FM_GQL_MUTATION_REFUSED /* the operation is a mutation and no_mutation */
} fm_gql_outcome;

/* Parse, validate, check limits, coerce the variables and execute.  On
 * FM_OK *response is the response object (caller owns, json_decref) and
 * *outcome says how it ended.  Errors of the request itself are in the
 * response, not in the return code: FM_ERR_NOMEM and FM_ERR_ARG (a NULL
 * or unfinished schema) are the only failures. */
fm_rc fm_gql_execute(const fm_gql_schema *s, const fm_gql_request *req,
                     const fm_gql_limits *lim, json_t **response, fm_gql_outcome *outcome,
                     fm_error *err);

/* Parse only (for tests and tools): FM_OK when query is a syntactically
 * valid executable document within lim (bytes, tokens, depth), else
 * FM_ERR_PARSE with "line:col: message" in err. */
fm_rc fm_gql_parse_check(const char *query, size_t len, const fm_gql_limits *lim,
                         fm_error *err);

#ifdef __cplusplus
}
#endif
#endif /* FM_GRAPHQL_H */
