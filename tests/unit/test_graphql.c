/* test_graphql.c: the GraphQL module (src/graphql) on a small schema built
 * here, with the tests as data: a table of documents (with variables,
 * operation name, limits) and the exact response each must give, or the
 * message its request error must contain.  Then the schema building
 * errors, and allocation failures injected at every allocation (jansson's
 * included) of a schema build and a request that touches every part. */
#include <jansson.h>

#include "fm_graphql.h"
#include "fm_test.h"
#include "fm_util.h"

/* ---- the test schema ------------------------------------------------------- */

static fm_rc r_hello(const fm_gql_resolve_info *info, json_t **out, fm_error *err) {
  const char *name = json_string_value(json_object_get(info->args, "name"));
  char b[256];
  snprintf(b, sizeof b, "hello, %s", name ? name : "nobody");
  *out = json_string(b);
  return *out ? FM_OK : fm_error_set(err, FM_ERR_NOMEM, "out of memory");
}

static fm_rc r_num(const fm_gql_resolve_info *info, json_t **out, fm_error *err) {
  (void)err;
  *out = json_incref(json_object_get(info->args, "x"));
  return FM_OK;
}

static fm_rc r_fail(const fm_gql_resolve_info *info, json_t **out, fm_error *err) {
  (void)info;
  *out = NULL;
  return fm_error_set(err, FM_ERR_ARG, "boom");
}

/* Items: {"id": "i<k>", "n": k, "tags": ["t", "u"], "child": {...}} down to
 * depth 5; item k's "bad" is null (a non-null field). */
static json_t *item(int k, int depth) {
  json_t *o = json_pack("{s:s++,s:i,s:[ss],s:n}", "id", "i", k == 0 ? "0" : k == 1 ? "1" : "2",
                        "", "n", k, "tags", "t", "u", "bad");
  if (o && depth < 5 && json_object_set_new(o, "child", item(k, depth + 1))) {
    json_decref(o);
    return NULL;
  }
  return o;
}

static fm_rc r_item(const fm_gql_resolve_info *info, json_t **out, fm_error *err) {
  (void)info;
  *out = item(0, 0);
  return *out ? FM_OK : fm_error_set(err, FM_ERR_NOMEM, "out of memory");
}

static fm_rc r_list(const fm_gql_resolve_info *info, json_t **out, fm_error *err) {
  json_int_t n = json_integer_value(json_object_get(info->args, "first"));
  if (n < 0 || n > 3) return fm_error_set(err, FM_ERR_ARG, "first must be 0..3");
  json_t *a = json_array();
  for (json_int_t i = 0; a && i < n; i++)
    if (json_array_append_new(a, item((int)i, 4))) {
      json_decref(a);
      a = NULL;
    }
  *out = a;
  return a ? FM_OK : fm_error_set(err, FM_ERR_NOMEM, "out of memory");
}

static fm_rc r_echo(const fm_gql_resolve_info *info, json_t **out, fm_error *err) {
  char *s = json_dumps(json_object_get(info->args, "in"), JSON_COMPACT | JSON_SORT_KEYS);
  *out = s ? json_string(s) : NULL;
  fm_free(s);
  return *out ? FM_OK : fm_error_set(err, FM_ERR_NOMEM, "out of memory");
}

static fm_rc build(fm_gql_schema **out, fm_error *err) {
  static const char *const colors[] = {"RED", "GREEN", NULL};
  fm_gql_schema *s;
  fm_rc rc = fm_gql_schema_new(&s, err);
  if (rc) return rc;
  fm_gql_type *S = fm_gql_type_named(s, "String"), *I = fm_gql_type_named(s, "Int"),
              *ID = fm_gql_type_named(s, "ID"), *F = fm_gql_type_named(s, "Float");
  fm_gql_type *color = fm_gql_enum(s, "Color", "A color.", colors);
  fm_gql_type *it = fm_gql_object(s, "Item", "An item.");
  fm_gql_field_add(s, it, "id", fm_gql_nonnull(s, ID), NULL, NULL, NULL);
  fm_gql_field_add(s, it, "n", I, NULL, NULL, NULL);
  fm_gql_field_add(s, it, "tags", fm_gql_list(s, S), NULL, NULL, NULL);
  fm_gql_field_add(s, it, "child", it, NULL, NULL, NULL);
  fm_gql_field_add(s, it, "bad", fm_gql_nonnull(s, S), NULL, NULL, NULL);
  fm_gql_field_add(s, it, "maybe", S, NULL, r_fail, NULL);
  fm_gql_type *in = fm_gql_input(s, "In", "An input.");
  fm_gql_field_add(s, in, "a", fm_gql_nonnull(s, I), NULL, NULL, NULL);
  fm_gql_field_default(s, fm_gql_field_add(s, in, "b", S, NULL, NULL, NULL), "\"x\"");
  fm_gql_field_add(s, in, "c", fm_gql_list(s, fm_gql_nonnull(s, color)), NULL, NULL, NULL);
  fm_gql_field_add(s, in, "f", F, NULL, NULL, NULL);
  fm_gql_type *q = fm_gql_object(s, "Query", NULL);
  fm_gql_field *f = fm_gql_field_add(s, q, "hello", fm_gql_nonnull(s, S), "Greets.", r_hello, NULL);
  fm_gql_arg_add(s, f, "name", S, NULL, "\"world\"");
  f = fm_gql_field_add(s, q, "num", I, NULL, r_num, NULL);
  fm_gql_arg_add(s, f, "x", fm_gql_nonnull(s, I), NULL, NULL);
  f = fm_gql_field_add(s, q, "list", fm_gql_nonnull(s, fm_gql_list(s, fm_gql_nonnull(s, it))), NULL,
                       r_list, NULL);
  fm_gql_arg_add(s, f, "first", I, NULL, "3");
  fm_gql_field_add(s, q, "item", it, NULL, r_item, NULL);
  fm_gql_field_add(s, q, "fail", S, NULL, r_fail, NULL);
  fm_gql_field_add(s, q, "failNN", fm_gql_nonnull(s, S), NULL, r_fail, NULL);
  fm_gql_type *m = fm_gql_object(s, "Mutation", NULL);
  f = fm_gql_field_add(s, m, "echo", fm_gql_nonnull(s, S), NULL, r_echo, NULL);
  fm_gql_arg_add(s, f, "in", fm_gql_nonnull(s, in), NULL, NULL);
  rc = fm_gql_schema_finish(s, q, m, err);
  if (rc) {
    fm_gql_schema_free(s);
    return rc;
  }
  *out = s;
  return FM_OK;
}

/* ---- the table -------------------------------------------------------------- */

typedef struct gcase {
  const char *doc;
  const char *vars;   /* JSON object text or NULL */
  const char *op;     /* operation name or NULL */
  int no_mutation;
  int max_depth;      /* 0: default limits; else these */
  long max_cost;
  size_t max_bytes, max_tokens;
  const char *want;   /* "{..." exact response, else part of the first error */
} gcase;

static const gcase cases[] = {
    /* lexing and parsing edge cases */
    {"{ hello }", NULL, NULL, 0, 0, 0, 0, 0, "{\"data\":{\"hello\":\"hello, world\"}}"},
    {"\xEF\xBB\xBF# a comment\n,,{ ,hello, }\r\n", NULL, NULL, 0, 0, 0, 0, 0,
     "{\"data\":{\"hello\":\"hello, world\"}}"},
    {"{ hello(name: \"\"\"\n    a\n      b \\\"\"\" \n\n    \"\"\") }", NULL, NULL, 0, 0, 0, 0, 0,
     "{\"data\":{\"hello\":\"hello, a\\n  b \\\"\\\"\\\" \"}}"},
    {"{ hello(name: \"\\u00e9\\uD83D\\uDE00\\u{1F600}\\n\\t\\\"\\\\\\/\") }", NULL, NULL, 0, 0, 0, 0, 0,
     "{\"data\":{\"hello\":\"hello, \xC3\xA9\xF0\x9F\x98\x80\xF0\x9F\x98\x80\\n\\t\\\"\\\\/\"}}"},
    {"{ hello(name: \"\"\"\"\"\") }", NULL, NULL, 0, 0, 0, 0, 0, "{\"data\":{\"hello\":\"hello, \"}}"},
    {"", NULL, NULL, 0, 0, 0, 0, 0, "Syntax Error: Unexpected <EOF>."},
    {"{}", NULL, NULL, 0, 0, 0, 0, 0, "Syntax Error: Expected Name, found \"}\"."},
    {"{ num(x: 1a) }", NULL, NULL, 0, 0, 0, 0, 0, "Invalid number"},
    {"{ num(x: 00) }", NULL, NULL, 0, 0, 0, 0, 0, "unexpected digit after 0"},
    {"{ num(x: 1.) }", NULL, NULL, 0, 0, 0, 0, 0, "expected digit after '.'"},
    {"{ hello(name: \"a\nb\") }", NULL, NULL, 0, 0, 0, 0, 0, "Unterminated string"},
    {"{ hello(name: \"\\uD800\") }", NULL, NULL, 0, 0, 0, 0, 0, "Invalid Unicode escape"},
    {"{ hello(name: \"\\q\") }", NULL, NULL, 0, 0, 0, 0, 0, "Invalid character escape"},
    {"{ hello(name: \"\xC3\") }", NULL, NULL, 0, 0, 0, 0, 0, "Invalid UTF-8"},
    {"{ hello(name: \"a\x01\") }", NULL, NULL, 0, 0, 0, 0, 0, "Invalid character within String"},
    {"{ hello .. }", NULL, NULL, 0, 0, 0, 0, 0, "did you mean '...'"},
    {"{ hello ? }", NULL, NULL, 0, 0, 0, 0, 0, "Unexpected character '?'"},
    {"{ hello() }", NULL, NULL, 0, 0, 0, 0, 0, "Expected Name, found \")\""},
    {"fragment on on Query { hello } { hello }", NULL, NULL, 0, 0, 0, 0, 0, "Unexpected Name \"on\""},
    {"type Q { a: Int }", NULL, NULL, 0, 0, 0, 0, 0, "Unexpected Name \"type\""},
    {"{ num(x: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]) }", NULL, NULL, 0,
     0, 0, 0, 0, "values nest deeper than 32 levels"},
    /* values, coercion, variables */
    {"{ num(x: -0) a: num(x: 2147483647) }", NULL, NULL, 0, 0, 0, 0, 0,
     "{\"data\":{\"num\":0,\"a\":2147483647}}"},
    {"{ num(x: 2147483648) }", NULL, NULL, 0, 0, 0, 0, 0, "non 32-bit signed integer"},
    {"{ num(x: 1.0) }", NULL, NULL, 0, 0, 0, 0, 0, "expected a value of type Int, found 1.0"},
    {"{ x: hello y: hello(name: \"y\") }", NULL, NULL, 0, 0, 0, 0, 0,
     "{\"data\":{\"x\":\"hello, world\",\"y\":\"hello, y\"}}"},
    {"query ($n: String = \"v\") { hello(name: $n) }", NULL, NULL, 0, 0, 0, 0, 0,
     "{\"data\":{\"hello\":\"hello, v\"}}"},
    {"query ($n: String = \"v\") { hello(name: $n) }", "{\"n\":\"w\"}", NULL, 0, 0, 0, 0, 0,
     "{\"data\":{\"hello\":\"hello, w\"}}"},
    {"query ($n: String) { hello(name: $n) }", "{\"n\":null}", NULL, 0, 0, 0, 0, 0,
     "{\"data\":{\"hello\":\"hello, nobody\"}}"},
    {"query ($n: String) { hello(name: $n) }", NULL, NULL, 0, 0, 0, 0, 0,
     "{\"data\":{\"hello\":\"hello, world\"}}"},
    {"query ($x: Int!) { num(x: $x) }", "{\"x\":\"7\"}", NULL, 0, 0, 0, 0, 0,
     "Variable \"$x\" got invalid value: expected a value of type Int, found a non-integer."},
    {"query ($x: Int!) { num(x: $x) }", "{}", NULL, 0, 0, 0, 0, 0,
     "Variable \"$x\" got invalid value: expected a value of type Int!, found null."},
    {"query ($x: Int!) { num(x: $x) }", "{\"x\":7.0}", NULL, 0, 0, 0, 0, 0,
     "{\"data\":{\"num\":7}}"},
    {"mutation { echo(in: {a: 1, c: RED}) }", NULL, NULL, 0, 0, 0, 0, 0,
     "{\"data\":{\"echo\":\"{\\\"a\\\":1,\\\"b\\\":\\\"x\\\",\\\"c\\\":[\\\"RED\\\"]}\"}}"},
    {"mutation ($i: In!) { echo(in: $i) }", "{\"i\":{\"a\":2,\"b\":null,\"c\":[\"GREEN\"],\"f\":1}}",
     NULL, 0, 0, 0, 0, 0,
     "{\"data\":{\"echo\":\"{\\\"a\\\":2,\\\"b\\\":null,\\\"c\\\":[\\\"GREEN\\\"],\\\"f\\\":1}\"}}"},
    {"mutation ($i: In!) { echo(in: $i) }", "{\"i\":{\"a\":2,\"z\":1}}", NULL, 0, 0, 0, 0, 0,
     "field 'z' is not defined by type In"},
    {"mutation ($c: Color) { echo(in: {a: 1, c: [$c, RED]}) }", "{\"c\":\"GREEN\"}", NULL, 0, 0, 0, 0, 0,
     "Variable \"$c\" of type \"Color\" used in position expecting type \"Color!\"."},
    {"mutation ($c: Color!) { echo(in: {a: 1, c: [$c, RED]}) }", "{\"c\":\"GREEN\"}", NULL, 0, 0, 0, 0, 0,
     "{\"data\":{\"echo\":\"{\\\"a\\\":1,\\\"b\\\":\\\"x\\\",\\\"c\\\":[\\\"GREEN\\\",\\\"RED\\\"]}\"}}"},
    {"mutation { echo(in: {a: 1, a: 2}) }", NULL, NULL, 0, 0, 0, 0, 0, "only one input field named 'a'"},
    {"mutation { echo(in: {b: \"q\"}) }", NULL, NULL, 0, 0, 0, 0, 0, "field 'a' of required type"},
    {"mutation { echo(in: {a: 1}) }", NULL, NULL, 1, 0, 0, 0, 0, "Mutations are not allowed over GET"},
    /* fragments, directives, operations */
    {"query ($s: Boolean!) { ...F hello @skip(if: $s) ... @include(if: $s) { y: hello } }\n"
     "fragment F on Query { x: hello @include(if: $s) }",
     "{\"s\":true}", NULL, 0, 0, 0, 0, 0,
     "{\"data\":{\"x\":\"hello, world\",\"y\":\"hello, world\"}}"},
    {"query A { a: hello } query B { b: hello }", NULL, "B", 0, 0, 0, 0, 0,
     "{\"data\":{\"b\":\"hello, world\"}}"},
    {"query A { a: hello } query B { b: hello }", NULL, NULL, 0, 0, 0, 0, 0,
     "Must provide operation name"},
    {"query A { a: hello }", NULL, "C", 0, 0, 0, 0, 0, "Unknown operation named \"C\"."},
    {"{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }", NULL, NULL, 0, 0, 0, 0, 0,
     "Cannot spread fragment \"A\" within itself."},
    {"{ item { ... on Query { hello } } }", NULL, NULL, 0, 0, 0, 0, 0,
     "can never be of type \"Query\""},
    {"{ hello @skip(if: \"yes\") }", NULL, NULL, 0, 0, 0, 0, 0, "expected a value of type Boolean, found yes"},
    {"{ item { id } item: hello }", NULL, NULL, 0, 0, 0, 0, 0, "are different fields"},
    {"{ num(x: 1) num(x: 2) }", NULL, NULL, 0, 0, 0, 0, 0, "differing arguments"},
    {"{ item { a: id } ... on Query { item { a: n } } }", NULL, NULL, 0, 0, 0, 0, 0,
     "\"id\" and \"n\" are different fields"},
    {"{ item { a: id } ...F } fragment F on Query { item { a: id child { n } } }", NULL, NULL, 0, 0,
     0, 0, 0, "{\"data\":{\"item\":{\"a\":\"i0\",\"child\":{\"n\":0}}}}"},
    {"{ num }", NULL, NULL, 0, 0, 0, 0, 0,
     "field \"Query.num\" argument \"x\" of type \"Int!\" is required"},
    {"{ hello { x } }", NULL, NULL, 0, 0, 0, 0, 0, "must not have a selection"},
    {"{ item }", NULL, NULL, 0, 0, 0, 0, 0, "must have a selection of subfields"},
    {"query ($v: In) { hello }", NULL, NULL, 0, 0, 0, 0, 0, "Variable \"$v\" is never used."},
    {"query ($v: Item) { hello }", NULL, NULL, 0, 0, 0, 0, 0, "cannot be non-input type \"Item\""},
    {"subscription { hello }", NULL, NULL, 0, 0, 0, 0, 0, "The schema has no subscription type."},
    /* execution: errors, paths, null propagation */
    {"{ fail hello }", NULL, NULL, 0, 0, 0, 0, 0,
     "{\"errors\":[{\"message\":\"boom\",\"locations\":[{\"line\":1,\"column\":3}],\"path\":[\"fail\"]}],"
     "\"data\":{\"fail\":null,\"hello\":\"hello, world\"}}"},
    {"{ hello failNN }", NULL, NULL, 0, 0, 0, 0, 0,
     "{\"errors\":[{\"message\":\"boom\",\"locations\":[{\"line\":1,\"column\":9}],\"path\":[\"failNN\"]}],"
     "\"data\":null}"},
    {"{ item { id bad } }", NULL, NULL, 0, 0, 0, 0, 0,
     "{\"errors\":[{\"message\":\"Cannot return null for non-nullable field.\",\"locations\":[{\"line\":1,"
     "\"column\":13}],\"path\":[\"item\",\"bad\"]}],\"data\":{\"item\":null}}"},
    {"{ list(first: 2) { id maybe tags } }", NULL, NULL, 0, 0, 0, 0, 0,
     "{\"errors\":[{\"message\":\"boom\",\"locations\":[{\"line\":1,\"column\":23}],\"path\":[\"list\",0,"
     "\"maybe\"]},{\"message\":\"boom\",\"locations\":[{\"line\":1,\"column\":23}],\"path\":[\"list\",1,"
     "\"maybe\"]}],\"data\":{\"list\":[{\"id\":\"i0\",\"maybe\":null,\"tags\":[\"t\",\"u\"]},{\"id\":\"i1\","
     "\"maybe\":null,\"tags\":[\"t\",\"u\"]}]}}"},
    {"{ list(first: 9) { id } }", NULL, NULL, 0, 0, 0, 0, 0,
     "{\"errors\":[{\"message\":\"first must be 0..3\",\"locations\":[{\"line\":1,\"column\":3}],"
     "\"path\":[\"list\"]}],\"data\":null}"},
    {"{ item { child { child { n } } } }", NULL, NULL, 0, 0, 0, 0, 0,
     "{\"data\":{\"item\":{\"child\":{\"child\":{\"n\":0}}}}}"},
    /* introspection */
    {"{ __typename item { __typename } }", NULL, NULL, 0, 0, 0, 0, 0,
     "{\"data\":{\"__typename\":\"Query\",\"item\":{\"__typename\":\"Item\"}}}"},
    {"{ __type(name: \"Color\") { kind name description enumValues { name } fields { name } } }", NULL,
     NULL, 0, 0, 0, 0, 0,
     "{\"data\":{\"__type\":{\"kind\":\"ENUM\",\"name\":\"Color\",\"description\":\"A color.\","
     "\"enumValues\":[{\"name\":\"RED\"},{\"name\":\"GREEN\"}],\"fields\":null}}}"},
    {"{ __type(name: \"Query\") { fields { name type { kind ofType { name } } args { name "
     "defaultValue } } } }",
     NULL, NULL, 0, 0, 0, 0, 0,
     "{\"data\":{\"__type\":{\"fields\":[{\"name\":\"hello\",\"type\":{\"kind\":\"NON_NULL\",\"ofType\":{"
     "\"name\":\"String\"}},\"args\":[{\"name\":\"name\",\"defaultValue\":\"\\\"world\\\"\"}]},{\"name\":"
     "\"num\",\"type\":{\"kind\":\"SCALAR\",\"ofType\":null},\"args\":[{\"name\":\"x\",\"defaultValue\":"
     "null}]},{\"name\":\"list\",\"type\":{\"kind\":\"NON_NULL\",\"ofType\":{\"name\":null}},\"args\":[{"
     "\"name\":\"first\",\"defaultValue\":\"3\"}]},{\"name\":\"item\",\"type\":{\"kind\":\"OBJECT\","
     "\"ofType\":null},\"args\":[]},{\"name\":\"fail\",\"type\":{\"kind\":\"SCALAR\",\"ofType\":null},"
     "\"args\":[]},{\"name\":\"failNN\",\"type\":{\"kind\":\"NON_NULL\",\"ofType\":{\"name\":\"String\"}},"
     "\"args\":[]}]}}}"},
    {"{ __type(name: \"Nope\") { name } __schema { queryType { name } mutationType { name } } }", NULL,
     NULL, 0, 0, 0, 0, 0,
     "{\"data\":{\"__type\":null,\"__schema\":{\"queryType\":{\"name\":\"Query\"},\"mutationType\":{"
     "\"name\":\"Mutation\"}}}}"},
    {"{ item { __schema { description } } }", NULL, NULL, 0, 0, 0, 0, 0,
     "Cannot query field \"__schema\" on type \"Item\"."},
    /* limits */
    {"{ item { child { ...C } } } fragment C on Item { child { child { n } } }", NULL, NULL, 0, 4, 100,
     1000, 1000, "nests 5 levels deep, over the depth limit of 4"},
    {"{ item { child { child { child { child { n } } } } } }", NULL, NULL, 0, 4, 100, 1000, 1000,
     "selection sets nest deeper than 4 levels"},
    {"{ list(first: 3) { id child { id } } }", NULL, NULL, 0, 8, 10, 1000, 1000,
     "{\"data\":{\"list\":[{\"id\":\"i0\",\"child\":{\"id\":\"i0\"}},{\"id\":\"i1\",\"child\":{\"id\":"
     "\"i1\"}},{\"id\":\"i2\",\"child\":{\"id\":\"i2\"}}]}}"},
    {"{ list(first: 3) { id child { id } } }", NULL, NULL, 0, 8, 9, 1000, 1000,
     "estimated cost is over the limit of 9"},
    {"{ list { id child { id } } }", NULL, NULL, 0, 8, 6, 1000, 1000,
     "estimated cost is over the limit of 6"},
    {"{ hello                                       }", NULL, NULL, 0, 8, 100, 20, 1000,
     "the document is 47 bytes, over the limit of 20"},
    {"{ a: hello b: hello c: hello }", NULL, NULL, 0, 8, 100, 1000, 8,
     "more than 8 tokens"},
};

static void test_table(void) {
  fm_error err;
  fm_error_init(&err);
  fm_gql_schema *s = NULL;
  CHECK(build(&s, &err) == FM_OK);
  if (!s) {
    fprintf(stderr, "schema: %s\n", err.msg);
    return;
  }
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const gcase *c = &cases[i];
    json_t *vars = c->vars ? json_loads(c->vars, 0, NULL) : NULL;
    fm_gql_request req = {c->doc, strlen(c->doc), vars, c->op, c->no_mutation, NULL};
    fm_gql_limits lim;
    fm_gql_limits_default(&lim);
    if (c->max_depth) {
      lim.max_depth = c->max_depth;
      lim.max_cost = c->max_cost;
      lim.max_bytes = c->max_bytes;
      lim.max_tokens = c->max_tokens;
    }
    json_t *resp = NULL;
    fm_gql_outcome out;
    CHECK(fm_gql_execute(s, &req, &lim, &resp, &out, &err) == FM_OK);
    char *got = resp ? json_dumps(resp, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    int ok;
    if (c->want[0] == '{') {
      json_t *want = json_loads(c->want, 0, NULL);
      ok = want && resp && json_equal(want, resp);
      if (!want) fprintf(stderr, "case %zu: bad expected JSON\n", i);
      json_decref(want);
    } else {
      const char *msg = json_string_value(
          json_object_get(json_array_get(json_object_get(resp, "errors"), 0), "message"));
      ok = msg && strstr(msg, c->want) && !json_object_get(resp, "data") &&
           out != FM_GQL_EXECUTED;
    }
    CHECK(ok);
    if (!ok) fprintf(stderr, "case %zu: %s\n  got  %s\n  want %s\n", i, c->doc, got, c->want);
    fm_free(got);
    json_decref(resp);
    json_decref(vars);
  }
  fm_gql_schema_free(s);
}

/* Every prefix of every document of the table, and every document with
 * one byte replaced by each of a few troublemakers, gives a response (a
 * request error or data): never a crash, a failure or a response that
 * is neither. */
static void test_mangled(void) {
  fm_error err;
  fm_gql_schema *s = NULL;
  CHECK(build(&s, &err) == FM_OK);
  if (!s) return;
  static const char bytes[] = {'{', '}', '"', '\\', '$', '.', '@', '\0', '\x80', '#'};
  long runs = 0, bad = 0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t n = strlen(cases[i].doc);
    char *d = fm_malloc(n + 1);
    if (!d) continue;
    for (size_t cut = 0; cut <= n; cut++)
      for (size_t b = 0; b <= sizeof bytes; b++) {
        memcpy(d, cases[i].doc, n + 1);
        size_t len = cut;
        if (b < sizeof bytes) {
          if (cut == n) continue;
          d[cut] = bytes[b];
          len = n;
        } /* else: the prefix of length cut */
        fm_gql_request req = {d, len, NULL, NULL, 0, NULL};
        json_t *resp = NULL;
        fm_gql_outcome out;
        fm_rc rc = fm_gql_execute(s, &req, NULL, &resp, &out, &err);
        runs++;
        int ok = rc == FM_OK && resp &&
                 (out == FM_GQL_EXECUTED ? json_object_get(resp, "data") != NULL
                                         : json_array_size(json_object_get(resp, "errors")) > 0);
        if (!ok) bad++;
        json_decref(resp);
      }
    fm_free(d);
  }
  fprintf(stderr, "  %ld mangled documents, %ld bad\n", runs, bad);
  CHECK(runs > 10000);
  CHECK(bad == 0);
  fm_gql_schema_free(s);
}

/* Building mistakes are reported once, by finish. */
static void test_schema_errors(void) {
  static const char *const bad_enum[] = {"true", NULL};
  struct {
    int what;
    const char *want;
  } t[] = {{0, "duplicate type name 'String'"}, {1, "invalid type name '9x'"},
           {2, "invalid enum value 'true'"},    {3, "duplicate field 'a'"},
           {4, "has no fields"},                {5, "default of 'a'"},
           {6, "not of an input type"}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    fm_error err;
    fm_error_init(&err);
    fm_gql_schema *s;
    CHECK(fm_gql_schema_new(&s, &err) == FM_OK);
    fm_gql_type *q = fm_gql_object(s, "Query", NULL), *S = fm_gql_type_named(s, "String");
    fm_gql_field *f = t[i].what == 4 ? NULL : fm_gql_field_add(s, q, "a", S, NULL, NULL, NULL);
    switch (t[i].what) {
    case 0: fm_gql_object(s, "String", NULL); break;
    case 1: fm_gql_object(s, "9x", NULL); break;
    case 2: fm_gql_enum(s, "E", NULL, bad_enum); break;
    case 3: fm_gql_field_add(s, q, "a", S, NULL, NULL, NULL); break;
    case 5: fm_gql_arg_add(s, f, "a", fm_gql_type_named(s, "Int"), NULL, "\"text\""); break;
    case 6: fm_gql_arg_add(s, f, "a", q, NULL, NULL); break;
    default: break;
    }
    fm_rc rc = fm_gql_schema_finish(s, q, NULL, &err);
    CHECK(rc == FM_ERR_ARG);
    CHECK(strstr(err.msg, t[i].want) != NULL);
    if (rc != FM_ERR_ARG || !strstr(err.msg, t[i].want))
      fprintf(stderr, "schema error %zu: got '%s' want '%s'\n", i, err.msg, t[i].want);
    fm_gql_schema_free(s);
  }
  fm_gql_request req = {"{ a }", 5, NULL, NULL, 0, NULL};
  json_t *resp;
  fm_gql_outcome out;
  fm_error err;
  CHECK(fm_gql_execute(NULL, &req, NULL, &resp, &out, &err) == FM_ERR_ARG);
}

/* The parse-only entry point. */
static void test_parse_check(void) {
  fm_error err;
  fm_error_init(&err);
  const char *d = "query Q($a: [Int!]! = [1, 2]) @x { f(a: {b: [$a, null, ENUM, 1.5e3, true]}) "
                  "{ ...F ... on T @y { g } } } fragment F on T { h }";
  CHECK(fm_gql_parse_check(d, strlen(d), NULL, &err) == FM_OK);
  CHECK(fm_gql_parse_check("{ a(b: $c) ", 11, NULL, &err) == FM_ERR_PARSE);
  CHECK_STR(err.msg, "1:12: Syntax Error: Expected Name, found <EOF>.");
  CHECK(fm_gql_parse_check("query ($a: Int = $b) { a }", 26, NULL, &err) == FM_ERR_PARSE);
}

/* After a run with fm_fault_malloc_after(n), n counting up from 1: 1 when
 * the run made fewer than n allocations (the countdown is then at 1, so
 * this probe is the one that fails). */
static int fault_unused(void) {
  void *p = fm_malloc(1);
  fm_fault_malloc_after(0);
  fm_free(p);
  return p == NULL;
}

/* Allocation failures everywhere: a schema build and a request through
 * every phase must fail cleanly (FM_ERR_NOMEM, or a response) and leak
 * nothing (ASan's leak check in the sanitizer build); with no failure left
 * to inject, the response is the reference. */
static void test_alloc_failures(void) {
  const char *doc =
      "query Q($s: Boolean = true, $n: Int = 2) { num(x: $n)  ...F list(first: 2) { id tags maybe } "
      "__type(name: \"In\") { inputFields { name defaultValue type { name ofType { name } } } } "
      "item { bad } } fragment F on Query { hello @include(if: $s) fail } "
      "fragment G on Item { n } query R { item { ...G } }";
  fm_error err;
  int clean = 0;
  long n;
  for (n = 1; n < 100000 && !clean; n++) {
    fm_gql_schema *s = NULL;
    fm_fault_malloc_after(n);
    fm_rc rc = build(&s, &err);
    clean = fault_unused();
    CHECK(clean ? rc == FM_OK : rc == FM_ERR_NOMEM);
    fm_gql_schema_free(s);
  }
  fprintf(stderr, "  schema build: %ld allocation points\n", n - 1);
  fm_gql_schema *s = NULL;
  CHECK(build(&s, &err) == FM_OK);
  if (!s) return;
  json_t *vars = json_pack("{s:b}", "s", 1);
  fm_gql_request req = {doc, strlen(doc), vars, "Q", 0, NULL};
  json_t *ref = NULL;
  fm_gql_outcome out;
  CHECK(fm_gql_execute(s, &req, NULL, &ref, &out, &err) == FM_OK && out == FM_GQL_EXECUTED);
  if (out != FM_GQL_EXECUTED) {
    char *t = json_dumps(ref, 0);
    fprintf(stderr, "  reference: %s\n", t);
    fm_free(t);
  }
  int reached = 0, nomem = 0;
  for (n = 1; n < 200000 && !reached; n++) {
    json_t *resp = NULL;
    fm_fault_malloc_after(n);
    fm_rc rc = fm_gql_execute(s, &req, NULL, &resp, &out, &err);
    reached = fault_unused();
    CHECK(rc == FM_OK || rc == FM_ERR_NOMEM);
    CHECK(rc ? resp == NULL : resp != NULL);
    if (rc) nomem++;
    if (reached) CHECK(!rc && json_equal(resp, ref));
    json_decref(resp);
  }
  fprintf(stderr, "  request: %ld allocation points, %d ended with nomem\n", n - 1, nomem);
  CHECK(reached);
  /* every injected failure ends the request with nomem: none is swallowed
   * into a wrong answer */
  CHECK(nomem > 100 && nomem == n - 2);
  json_decref(ref);
  json_decref(vars);
  fm_gql_schema_free(s);
}

int main(void) {
  /* jansson allocates through the util allocator, so faults reach it too. */
  json_set_alloc_funcs(fm_malloc, fm_free);
  FM_RUN(test_table);
  FM_RUN(test_mangled);
  FM_RUN(test_schema_errors);
  FM_RUN(test_parse_check);
  FM_RUN(test_alloc_failures);
  FM_TEST_EXIT();
}
