// check_lake.mjs: read a fieldmatch lake back with DuckDB (the reference
// engine) the way a lake user does, and compare it with the store's rows at
// snapshot time.
//
//   node tests/duckdb/check_lake.mjs expected.json
//
// expected.json (written by tests/cli/test_lake.sh from the store):
//   {"root": LAKE,
//    "partitions": [{"job", "dt", "hr", "order_by": [col...],
//                    "columns": [{"name", "kind"}],   kind: int|double|string|ts
//                    "rows": [[value...]...]}],        ints and ts (epoch micros)
//                                                      as decimal strings
//    "views": PATH,                                    catalog.duckdb.sql: run it, then
//                                                      every job's view has its rows
//    "provisioned": [{"path", "rows"}],                Parquet files from provisioning
//    "sql": [{"query", "want"}]}                       extra checks: first column of
//                                                      the first row, as a string
//
// Per job: every partition through ONE read_parquet over
// <root>/<job>/*/*/*.parquet with hive_partitioning = true and
// union_by_name = true: the row count, every value of every expected
// column (NULL and '' distinct; timestamps exact to the microsecond), the
// DuckDB type of each column (BIGINT, DOUBLE, VARCHAR, TIMESTAMP WITH TIME
// ZONE), and every column a later partition has but this one's rows did
// not (a column added by a migration) is NULL.  Also: a recursive glob over
// the whole root reads exactly the rows of all partitions (no leftovers).
// Exit 0 when everything matches; else 1 with the mismatches listed.
import { DuckDBInstance } from '@duckdb/node-api';
import { readFileSync } from 'node:fs';

const DUCK = { int: 'BIGINT', double: 'DOUBLE', string: 'VARCHAR', ts: 'TIMESTAMP WITH TIME ZONE' };
const problems = [];
const problem = (m) => { problems.push(m); if (problems.length <= 30) console.error('MISMATCH ' + m); };
const sqlStr = (s) => `'${String(s).replaceAll("'", "''")}'`;
const ident = (s) => `"${s.replaceAll('"', '""')}"`;
const proj = (c) => (c.kind === 'int' ? `CAST(${ident(c.name)} AS VARCHAR)`
  : c.kind === 'ts' ? `CAST(epoch_us(${ident(c.name)}) AS VARCHAR)` : ident(c.name));

function same(kind, got, want) {
  if (got === null || want === null) return got === want;
  if (kind === 'double') return Object.is(Number(got), Number(want)) || Math.abs(got - want) <= 1e-12 * Math.abs(want);
  return got === want;
}

const exp = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const instance = await DuckDBInstance.create(':memory:');
const con = await instance.connect();
await con.run(`SET TimeZone = 'UTC'`);
const q = async (sql) => (await con.runAndReadAll(sql)).getRowsJS();
const qo = async (sql) => (await con.runAndReadAll(sql)).getRowObjectsJS();

const byJob = new Map();
for (const p of exp.partitions) {
  if (!byJob.has(p.job)) byJob.set(p.job, []);
  byJob.get(p.job).push(p);
}
let total = 0;
for (const [job, parts] of byJob) {
  const src = `read_parquet(${sqlStr(`${exp.root}/${job}/*/*/*.parquet`)}, hive_partitioning = true, union_by_name = true)`;
  const types = new Map((await qo(`DESCRIBE SELECT * FROM ${src}`)).map((d) => [d.column_name, d.column_type]));
  const n = Number((await q(`SELECT count(*) FROM ${src}`))[0][0]);
  const want = parts.reduce((a, p) => a + p.rows.length, 0);
  total += want;
  if (n !== want) problem(`${job}: ${n} rows over all partitions, want ${want}`);
  for (const p of parts) {
    const where = `WHERE CAST(dt AS VARCHAR) = ${sqlStr(p.dt)} AND CAST(hr AS INTEGER) = ${p.hr}`;
    const tag = `${job}/dt=${p.dt}/hr=${String(p.hr).padStart(2, '0')}`;
    for (const c of p.columns)
      if (types.get(c.name) !== DUCK[c.kind]) problem(`${tag}: column ${c.name} is ${types.get(c.name)}, want ${DUCK[c.kind]}`);
    const rows = await q(`SELECT ${p.columns.map(proj).join(', ')} FROM ${src} ${where}
                          ORDER BY ${p.order_by.map(ident).join(', ')}`);
    if (rows.length !== p.rows.length) problem(`${tag}: ${rows.length} rows, want ${p.rows.length}`);
    for (let r = 0; r < Math.min(rows.length, p.rows.length); r++)
      p.columns.forEach((c, i) => {
        if (!same(c.kind, rows[r][i], p.rows[r][i]))
          problem(`${tag}: row ${r + 1}, column ${c.name}: got ${JSON.stringify(rows[r][i])}, want ${JSON.stringify(p.rows[r][i])}`);
      });
    // Columns of the job's union schema this partition did not have: NULL.
    const mine = new Set(p.columns.map((c) => c.name).concat(['dt', 'hr']));
    for (const [name] of types) {
      if (mine.has(name)) continue;
      const nn = Number((await q(`SELECT count(${ident(name)}) FROM ${src} ${where}`))[0][0]);
      if (nn !== 0) problem(`${tag}: column ${name} (added later) has ${nn} non-NULL values, want all NULL`);
      else console.log(`${tag}: column ${name} (added later) reads as NULL (${p.rows.length} rows)`);
    }
  }
  console.log(`${job}: ${parts.length} partition(s), ${n} rows`);
}
// A recursive glob over the root: only the partitions (nothing in _tmp or a leftover).
const all = Number((await q(`SELECT count(*) FROM read_parquet(${sqlStr(`${exp.root}/**/*.parquet`)}, union_by_name = true)`))[0][0]);
if (all !== total) problem(`${exp.root}/**/*.parquet: ${all} rows, want ${total} (leftovers read?)`);
for (const f of exp.provisioned || []) {
  const n = Number((await q(`SELECT count(*) FROM read_parquet(${sqlStr(f.path)})`))[0][0]);
  if (n !== f.rows) problem(`${f.path}: ${n} rows, want ${f.rows}`);
  else console.log(`${f.path}: ${n} rows`);
}
// The view script beside catalog.json: one view per job, every row, hr a number.
if (exp.views) {
  await con.run(readFileSync(exp.views, 'utf8'));
  for (const [job, parts] of byJob) {
    const n = Number((await q(`SELECT count(*) FROM ${ident(job)}`))[0][0]);
    const want = parts.reduce((a, p) => a + p.rows.length, 0);
    if (n !== want) problem(`view ${job}: ${n} rows, want ${want}`);
    const t = (await q(`SELECT typeof(hr) FROM ${ident(job)} LIMIT 1`))[0][0];
    if (t !== 'INTEGER') problem(`view ${job}: hr is ${t}, want INTEGER`);
  }
  console.log(`${exp.views}: ${byJob.size} views read`);
}
for (const s of exp.sql || []) {
  const r = await q(s.query);
  const got = r.length ? String(r[0][0]) : null;
  if (got !== s.want) problem(`${s.query}: got ${JSON.stringify(got)}, want ${JSON.stringify(s.want)}`);
}
if (problems.length) {
  console.error(`${problems.length} mismatch(es)`);
  process.exit(1);
}
console.log('lake matches the store');
