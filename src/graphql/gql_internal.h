/* gql_internal.h: what the graphql module's files share: the syntax tree of
 * an executable document (lex.c, parse.c), the type system's structs
 * (schema.c), introspection (introspect.c), validation (validate.c) and
 * coercion (coerce.c) used by execution (exec.c). */
#ifndef FM_GQL_INTERNAL_H
#define FM_GQL_INTERNAL_H

#include "fm_graphql.h"

/* ---- syntax tree (every node lives in the document's arena) ------------- */

typedef struct gql_loc {
  unsigned line, col;
} gql_loc;

typedef enum gql_vkind {
  GV_VAR, GV_INT, GV_FLOAT, GV_STRING, GV_BOOL, GV_NULL, GV_ENUM, GV_LIST, GV_OBJECT
} gql_vkind;

typedef struct gql_value gql_value;
struct gql_value {
  gql_vkind kind;
  gql_loc loc;
  const char *s;       /* name, number text, string content, "true"/"false" */
  size_t slen;         /* bytes of s (strings may hold NUL) */
  size_t n;            /* list items / object fields */
  gql_value **items;
  const char **keys;   /* object field names */
  gql_loc *key_locs;
};

typedef struct gql_arg {
  const char *name;
  gql_loc loc;
  gql_value *value;
} gql_arg;

typedef struct gql_directive {
  const char *name;
  gql_loc loc;
  gql_arg *args;
  size_t nargs;
} gql_directive;

typedef struct gql_typeref gql_typeref;
struct gql_typeref {
  enum { GT_NAMED, GT_LIST, GT_NONNULL } kind;
  const char *name;
  gql_typeref *of;
  gql_loc loc;
};

typedef struct gql_sel gql_sel;
typedef struct gql_selset {
  gql_sel **v;
  size_t n;
  gql_loc loc;
} gql_selset;

struct gql_sel {
  enum { GS_FIELD, GS_SPREAD, GS_INLINE } kind;
  gql_loc loc;
  const char *alias;     /* NULL: none */
  const char *name;      /* field or fragment name */
  gql_arg *args;
  size_t nargs;
  gql_directive *dirs;
  size_t ndirs;
  const char *type_cond; /* inline fragment's, NULL: none */
  gql_loc cond_loc;
  gql_selset sels;       /* n 0: none (a leaf field) */
  int has_sels;
};

typedef struct gql_vardef {
  const char *name;
  gql_loc loc;
  gql_typeref *type;
  gql_value *def; /* NULL: none */
} gql_vardef;

typedef struct gql_def {
  enum { GD_QUERY, GD_MUTATION, GD_SUBSCRIPTION, GD_FRAGMENT } kind;
  gql_loc loc;
  const char *name; /* NULL: anonymous operation */
  gql_vardef *vars;
  size_t nvars;
  gql_directive *dirs;
  size_t ndirs;
  const char *type_cond; /* fragments */
  gql_loc cond_loc;
  gql_selset sels;
} gql_def;

typedef struct gql_doc {
  fm_arena arena;
  gql_def *defs;
  size_t ndefs;
} gql_doc;

/* Parse an executable document within lim.  *doc is initialized either way
 * (gql_doc_free it).  FM_ERR_PARSE: err holds "line:col: message" and
 * *where the location; FM_ERR_ARG: a limit (message says which);
 * FM_ERR_NOMEM. */
fm_rc gql_parse(const char *src, size_t len, const fm_gql_limits *lim, gql_doc *doc,
                gql_loc *where, fm_error *err);
void gql_doc_free(gql_doc *doc);
/* Parse a lone value literal (schema defaults); no variables allowed. */
fm_rc gql_parse_value(const char *src, gql_doc *doc, gql_value **out, fm_error *err);

/* ---- lexer (lex.c) ------------------------------------------------------- */

typedef enum gql_tok {
  GT_EOF, GT_PUNCT, GT_NAME, GT_INT, GT_FLOAT, GT_STRING, GT_BLOCK
} gql_tok;

typedef struct gql_lexer {
  const char *src, *end, *p;
  unsigned line;
  const char *line_start;
  /* the current token */
  gql_tok tok;
  char punct;             /* '!', '$', '&', '(', ')', '.' for "...", ':', ... */
  const char *ts;         /* token text (names, numbers) */
  size_t tn;
  gql_loc loc;
  fm_buf sval;            /* a string token's value */
  size_t ntokens, max_tokens;
} gql_lexer;

void gql_lex_init(gql_lexer *lx, const char *src, size_t len, size_t max_tokens);
void gql_lex_free(gql_lexer *lx);
/* Advance to the next token.  FM_ERR_PARSE ("line:col: ..." in err),
 * FM_ERR_ARG (token limit), FM_ERR_NOMEM. */
fm_rc gql_lex_next(gql_lexer *lx, fm_error *err);

/* ---- type system (schema.c) ---------------------------------------------- */

typedef enum gql_kind {
  GK_SCALAR, GK_OBJECT, GK_ENUM, GK_INPUT, GK_LIST, GK_NONNULL
} gql_kind;

struct fm_gql_field {
  char *name, *description;
  fm_gql_type *type;
  fm_gql_resolve_fn resolve;
  void *data;
  fm_gql_field **args; /* arguments (fields of an object type only) */
  size_t nargs, capargs;
  char *def_literal;   /* argument / input field default, NULL: none */
  json_t *def_value;   /* its coerced value (fm_gql_schema_finish) */
};

struct fm_gql_type {
  gql_kind kind;
  char *name, *description; /* name NULL for wrappers */
  fm_gql_type *of;          /* wrappers */
  fm_gql_type *as_list, *as_nonnull;
  fm_gql_field **fields;    /* objects, input objects */
  size_t nfields, capfields;
  char **values;            /* enums */
  size_t nvalues;
  size_t index;             /* in schema->types */
};

struct fm_gql_schema {
  fm_gql_type **types;      /* named and wrapper types, in creation order */
  size_t ntypes, captypes;
  fm_gql_type *query, *mutation;
  fm_rc rc;                 /* the first building error */
  fm_error err;
  int finished;
  fm_gql_type *t_int, *t_float, *t_string, *t_boolean, *t_id;
  fm_gql_type *t_schema, *t_type; /* __Schema, __Type */
};

/* The named type (no wrappers) at the bottom of t. */
const fm_gql_type *gql_named(const fm_gql_type *t);
int gql_is_leaf(const fm_gql_type *t);  /* scalar or enum, under wrappers */
int gql_is_input(const fm_gql_type *t); /* scalar, enum or input object */
const fm_gql_field *gql_field_of(const fm_gql_type *t, const char *name);
const fm_gql_field *gql_arg_of(const fm_gql_field *f, const char *name);
/* "[String!]!" into b. */
fm_rc gql_type_print(const fm_gql_type *t, fm_buf *b);
int gql_enum_has(const fm_gql_type *t, const char *v);

/* The type a variable definition names, its wrappers allocated in arena;
 * NULL when the named type is unknown or out of memory. */
const fm_gql_type *gql_typeref_type(const fm_gql_schema *s, const gql_typeref *r,
                                    fm_arena *arena);

/* Add the introspection types and root fields' resolvers (introspect.c). */
void gql_introspection_add(fm_gql_schema *s);
/* The value of __schema / __type(name) (new reference; NULL for an
 * unknown type name). */
json_t *gql_schema_value(const fm_gql_schema *s);
json_t *gql_type_value(const fm_gql_schema *s, const fm_gql_type *t);

/* ---- coercion (coerce.c) ------------------------------------------------- */

/* Pass as vars to accept any variable (as null) where validation checks
 * literals before variables have values. */
extern const char gql_vars_any_marker;
#define GQL_VARS_ANY ((const json_t *)(const void *)&gql_vars_any_marker)

/* Coerce a literal (variables from vars, NULL: none allowed) to a value of
 * type t.  FM_OK with *out (new reference, json_null for null); FM_ERR_ARG
 * with a message (no location) when it is not a valid value. */
fm_rc gql_coerce_literal(const fm_gql_type *t, const gql_value *v, const json_t *vars,
                         json_t **out, fm_error *err);
/* Coerce a variable's JSON input value to type t (spec 3.5 / 3.10); in:
 * NULL means absent.  FM_ERR_ARG with a message naming the path. */
fm_rc gql_coerce_input(const fm_gql_type *t, const json_t *in, json_t **out, fm_error *err);
/* Print a value literal (GraphQL syntax) into b, for defaultValue. */
fm_rc gql_print_json_literal(const fm_gql_type *t, const json_t *v, fm_buf *b);

/* ---- validation (validate.c) --------------------------------------------- */

/* Append one error {"message","locations"} to errors (an array). */
fm_rc gql_error_add(json_t *errors, const gql_loc *loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Check doc against the schema and the depth / cost limits (spec section 5).
 * Errors go to `errors`; FM_OK also when the document is invalid (the
 * array is then non-empty); FM_ERR_NOMEM. */
fm_rc gql_validate(const fm_gql_schema *s, const gql_doc *doc, const fm_gql_limits *lim,
                   json_t *errors, fm_error *err);

/* lim, or when it is NULL the defaults filled into *def (the caller's
 * storage, which must outlive the use): how the entry points read
 * "NULL limits mean the defaults". */
static inline const fm_gql_limits *gql_limits_or_default(const fm_gql_limits *lim,
                                                         fm_gql_limits *def) {
  if (lim) return lim;
  fm_gql_limits_default(def);
  return def;
}

#endif
