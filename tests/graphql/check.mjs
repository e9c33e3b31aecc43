// check.mjs: fieldmatch's GraphQL endpoint against the reference
// implementation (npm graphql), driven by tests/cli/test_graphql.sh.
//   node check.mjs URL TOKEN docs/graphql.md api/schema.graphql [--print-sdl]
// 1. the introspection result builds a client schema (buildClientSchema);
// 2. its printed SDL equals api/schema.graphql's (buildSchema, printSchema);
// 3. every ```graphql block of the docs validates against it and runs on
//    the server without errors (a "# variables: {...}" line gives variables);
// 4. every document of valid.json (lexical and syntactic corners) is
//    accepted by graphql-js and runs on the server without errors;
// 5. every document of invalid.json is rejected by graphql-js (parse,
//    validate or variable coercion) and by the server (errors, no data,
//    HTTP 400 with the graphql-response media type).
// Prints one line per failure; exit 1 when any.
import fs from 'node:fs';
import {
  buildClientSchema, buildSchema, getIntrospectionQuery, getVariableValues, parse, printSchema,
  validate,
} from 'graphql';

const [url, token, docsPath, sdlPath, flag] = process.argv.slice(2);
let failures = 0;
const fail = (msg) => { failures++; console.log(`FAIL: ${msg}`); };

async function post(query, variables, operationName) {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      Accept: 'application/graphql-response+json',
      Authorization: `Bearer ${token}`,
    },
    body: JSON.stringify({ query, variables, operationName }),
  });
  return { status: res.status, type: res.headers.get('content-type'), body: await res.json() };
}

const intro = await post(getIntrospectionQuery({ descriptions: true }));
if (intro.status !== 200 || intro.body.errors) {
  console.log(`FAIL: introspection: ${intro.status} ${JSON.stringify(intro.body.errors)}`);
  process.exit(1);
}
let schema;
try {
  schema = buildClientSchema(intro.body.data);
} catch (e) {
  console.log(`FAIL: buildClientSchema: ${e.message}`);
  process.exit(1);
}
const printed = printSchema(schema);
if (flag === '--print-sdl') {
  process.stdout.write(`${printed}\n`);
  process.exit(0);
}
const sdl = printSchema(buildSchema(fs.readFileSync(sdlPath, 'utf8')));
if (sdl !== printed) {
  const a = sdl.split('\n');
  const b = printed.split('\n');
  const i = a.findIndex((line, k) => line !== b[k]);
  fail(`${sdlPath} differs from the introspection at line ${i + 1}: '${a[i]}' vs '${b[i]}'`);
}

// 3. the documentation's examples
const docs = fs.readFileSync(docsPath, 'utf8');
const blocks = [...docs.matchAll(/```graphql\n([\s\S]*?)```/g)].map((m) => m[1]);
if (blocks.length < 5) fail(`only ${blocks.length} graphql examples in ${docsPath}`);
let ran = 0;
for (const text of blocks) {
  const vm = text.match(/^# variables: (.*)$/m);
  const variables = vm ? JSON.parse(vm[1]) : undefined;
  let errs;
  try {
    errs = validate(schema, parse(text));
  } catch (e) {
    errs = [e];
  }
  const head = text.split('\n').find((l) => l && !l.startsWith('#')) || text;
  if (errs.length) {
    fail(`graphql-js rejects the docs example '${head}': ${errs[0].message}`);
    continue;
  }
  const r = await post(text, variables);
  if (r.status !== 200 || r.body.errors || !r.body.data)
    fail(`server on '${head}': ${r.status} ${JSON.stringify(r.body)}`);
  else ran++;
}
console.log(`docs examples: ${blocks.length}, ran cleanly: ${ran}`);

// 4. tricky valid documents: both must accept, and the server runs them
const valid = JSON.parse(fs.readFileSync(new URL('./valid.json', import.meta.url), 'utf8'));
let accepted = 0;
for (const { doc, variables, operationName, why } of valid) {
  let errs;
  try {
    errs = validate(schema, parse(doc));
  } catch (e) {
    errs = [e];
  }
  if (errs.length) fail(`graphql-js rejects the valid document (${why}): ${errs[0].message}`);
  const r = await post(doc, variables, operationName);
  if (r.status !== 200 || r.body.errors || !r.body.data)
    fail(`server on the valid document (${why}): ${r.status} ${JSON.stringify(r.body)}`);
  else accepted++;
}
console.log(`valid documents: ${valid.length}, run cleanly by the server: ${accepted}`);

// 5. invalid documents: both must reject
const invalid = JSON.parse(fs.readFileSync(new URL('./invalid.json', import.meta.url), 'utf8'));
let rejected = 0;
for (const { doc, variables, why } of invalid) {
  let jsErrs;
  try {
    const ast = parse(doc);
    jsErrs = validate(schema, ast);
    // Bad variable values: graphql-js's variable coercion must refuse them.
    if (!jsErrs.length && variables)
      jsErrs = getVariableValues(schema, ast.definitions[0].variableDefinitions, variables).errors || [];
  } catch (e) {
    jsErrs = [e];
  }
  if (!jsErrs.length) fail(`graphql-js accepts the invalid document (${why}): ${doc}`);
  const r = await post(doc, variables);
  if (r.status !== 400 || !r.body.errors || 'data' in r.body || !/graphql-response/.test(r.type))
    fail(`server accepts the invalid document (${why}): ${r.status} ${JSON.stringify(r.body)}`);
  else rejected++;
}
console.log(`invalid documents: ${invalid.length}, rejected by the server: ${rejected}`);
process.exit(failures ? 1 : 0);
