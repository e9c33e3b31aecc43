// check_parquet.mjs: read the Parquet files fieldmatch wrote with DuckDB (the
// reference reader) and compare them with what the writer was given.
//
//   node tests/duckdb/check_parquet.mjs expected.json
//
// expected.json: {"files": [{"path", "codec", "dictionary", "row_groups", "columns":
// [{"name", "type", "nullable"}], "rows": [[value, ...], ...]}]}, values as
// written by tests/unit/test_parquet_duckdb.c: int64 and timestamps as decimal
// strings (exact beyond 2^53), doubles as "%.17g" strings or "nan", "inf",
// "-inf", strings as they are, booleans, null for NULL.
//
// Checked per file: the column types DuckDB infers (BIGINT, DOUBLE, VARCHAR,
// TIMESTAMP WITH TIME ZONE, BOOLEAN), every value in file order (doubles bit
// for bit, -0.0 and NaN included), the row count, the number of row groups,
// the codec, the encodings (a dictionary page for strings unless turned off)
// and each row group's statistics (null count, min and max by the
// spec's order: signed for integers and timestamps, unsigned bytes for
// strings, NaN never a min or max, -0.0/+0.0 for a zero min/max).
// Exit 0 when everything matches; else 1 with the first mismatches listed.
import { DuckDBInstance } from '@duckdb/node-api';
import { readFileSync } from 'node:fs';

const DUCK_TYPE = {
  int64: 'BIGINT', double: 'DOUBLE', string: 'VARCHAR', bool: 'BOOLEAN',
  ts_us: 'TIMESTAMP WITH TIME ZONE', ts_ms: 'TIMESTAMP WITH TIME ZONE',
};
const MAX_REPORTS = 20;
const problems = [];
function problem(msg) {
  problems.push(msg);
  if (problems.length <= MAX_REPORTS) console.error('MISMATCH ' + msg);
}

const sqlStr = (s) => `'${s.replaceAll("'", "''")}'`;
const ident = (s) => `"${s.replaceAll('"', '""')}"`;

// Expected value -> canonical string as the SELECT below returns it.
function expDouble(s) {
  if (s === 'nan') return NaN;
  if (s === 'inf') return Infinity;
  if (s === '-inf') return -Infinity;
  return Number(s);
}
function sameDouble(a, b) { return Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b)); }
// Microseconds as BigInt for a timestamp column's expected value.
function expMicros(type, s) { return BigInt(s) * (type === 'ts_ms' ? 1000n : 1n); }

// The projection: integers and timestamps as exact decimal text.
function projection(columns) {
  return columns.map((c) => {
    if (c.type === 'int64') return `CAST(${ident(c.name)} AS VARCHAR)`;
    if (c.type === 'ts_us' || c.type === 'ts_ms') return `CAST(epoch_us(${ident(c.name)}) AS VARCHAR)`;
    return ident(c.name);
  }).join(', ');
}

function sameValue(c, got, want) {
  if (want === null || got === null) return got === want;
  switch (c.type) {
    case 'int64': return got === want;
    case 'ts_us': case 'ts_ms': return BigInt(got) === expMicros(c.type, want);
    case 'double': return sameDouble(got, expDouble(want));
    default: return got === want;
  }
}

// Compare by the spec's sort order for the column type.
function cmp(c, a, b) {
  switch (c.type) {
    case 'int64': { const x = BigInt(a), y = BigInt(b); return x < y ? -1 : x > y ? 1 : 0; }
    case 'ts_us': case 'ts_ms': { const x = expMicros(c.type, a), y = expMicros(c.type, b); return x < y ? -1 : x > y ? 1 : 0; }
    case 'double': return expDouble(a) - expDouble(b);
    case 'bool': return (a ? 1 : 0) - (b ? 1 : 0);
    default: return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
  }
}

// Expected statistics of rows[lo, hi) of column ci.
function expectStats(c, rows, ci, lo, hi) {
  let nulls = 0, min, max, any = false;
  for (let r = lo; r < hi; r++) {
    const v = rows[r][ci];
    if (v === null) { nulls++; continue; }
    if (c.type === 'double' && v === 'nan') continue;
    if (!any || cmp(c, v, min) < 0) min = v;
    if (!any || cmp(c, v, max) > 0) max = v;
    any = true;
  }
  return { nulls, any, min, max };
}

async function checkStats(con, f) {
  const md = (await con.runAndReadAll(
    `SELECT row_group_id, row_group_num_rows, column_id, path_in_schema, compression,
            encodings, dictionary_page_offset, num_values, stats_null_count, stats_min_value, stats_max_value,
            try_cast(stats_min_value AS DOUBLE) AS dmin, try_cast(stats_max_value AS DOUBLE) AS dmax,
            CAST(epoch_us(try_cast(stats_min_value AS TIMESTAMPTZ)) AS VARCHAR) AS tmin,
            CAST(epoch_us(try_cast(stats_max_value AS TIMESTAMPTZ)) AS VARCHAR) AS tmax
     FROM parquet_metadata(${sqlStr(f.path)}) ORDER BY row_group_id, column_id`)).getRowObjectsJS();
  const ncols = f.columns.length;
  if (md.length !== f.row_groups * ncols) {
    problem(`${f.path}: parquet_metadata has ${md.length} column chunks, want ${f.row_groups} row groups x ${ncols}`);
    return;
  }
  let lo = 0;
  for (let g = 0; g < f.row_groups; g++) {
    const n = Number(md[g * ncols].row_group_num_rows);
    if (n <= 0) problem(`${f.path}: row group ${g} is empty`);
    for (let ci = 0; ci < ncols; ci++) {
      const m = md[g * ncols + ci], c = f.columns[ci];
      const where = `${f.path}: row group ${g}, column ${c.name}`;
      if (m.path_in_schema !== c.name) problem(`${where}: path_in_schema ${m.path_in_schema}`);
      if (m.compression !== f.codec.toUpperCase()) problem(`${where}: compression ${m.compression}, want ${f.codec}`);
      if (Number(m.num_values) !== n) problem(`${where}: num_values ${m.num_values}, want ${n}`);
      // Strings are dictionary-encoded unless the file was written without.
      const dict = c.type === 'string' && f.dictionary;
      if (m.encodings.includes('RLE_DICTIONARY') !== dict || (m.dictionary_page_offset !== null) !== dict)
        problem(`${where}: encodings ${m.encodings}, dictionary page at ${m.dictionary_page_offset}`);
      const e = expectStats(c, f.rows, ci, lo, lo + n);
      if (Number(m.stats_null_count) !== e.nulls) problem(`${where}: null_count ${m.stats_null_count}, want ${e.nulls}`);
      if (!e.any) {
        if (m.stats_min_value !== null || m.stats_max_value !== null)
          problem(`${where}: min/max ${m.stats_min_value}/${m.stats_max_value}, want none`);
        continue;
      }
      if (c.type === 'double' && !(Number.isFinite(expDouble(e.min)) && Number.isFinite(expDouble(e.max)))) {
        // DuckDB does not report (or use) DOUBLE statistics with an infinite
        // bound; the unit test checks those bytes (test_parquet.c).
        if (m.stats_min_value !== null || m.stats_max_value !== null)
          problem(`${where}: DuckDB shows infinite double bounds ${m.stats_min_value}/${m.stats_max_value}`);
        continue;
      }
      let okMin, okMax;
      switch (c.type) {
        case 'int64': okMin = m.stats_min_value === e.min; okMax = m.stats_max_value === e.max; break;
        case 'ts_us': case 'ts_ms':
          okMin = BigInt(m.tmin) === expMicros(c.type, e.min);
          okMax = BigInt(m.tmax) === expMicros(c.type, e.max);
          break;
        case 'double': {
          // A zero min is written -0.0 and a zero max +0.0.
          const wmin = expDouble(e.min) === 0 ? -0 : expDouble(e.min);
          const wmax = expDouble(e.max) === 0 ? 0 : expDouble(e.max);
          okMin = sameDouble(m.dmin, wmin); okMax = sameDouble(m.dmax, wmax);
          break;
        }
        case 'bool': okMin = m.stats_min_value === String(e.min); okMax = m.stats_max_value === String(e.max); break;
        default: okMin = m.stats_min_value === e.min; okMax = m.stats_max_value === e.max;
      }
      if (!okMin) problem(`${where}: min ${JSON.stringify(m.stats_min_value)}, want ${JSON.stringify(e.min)}`);
      if (!okMax) problem(`${where}: max ${JSON.stringify(m.stats_max_value)}, want ${JSON.stringify(e.max)}`);
    }
    lo += n;
  }
  if (lo !== f.rows.length) problem(`${f.path}: row groups hold ${lo} rows, want ${f.rows.length}`);
}

async function checkFile(con, f) {
  const desc = (await con.runAndReadAll(
    `DESCRIBE SELECT * FROM read_parquet(${sqlStr(f.path)})`)).getRowObjectsJS();
  if (desc.length !== f.columns.length) problem(`${f.path}: ${desc.length} columns, want ${f.columns.length}`);
  f.columns.forEach((c, i) => {
    const d = desc[i] || {};
    if (d.column_name !== c.name || d.column_type !== DUCK_TYPE[c.type])
      problem(`${f.path}: column ${i} is ${d.column_name} ${d.column_type}, want ${c.name} ${DUCK_TYPE[c.type]}`);
  });
  const rows = (await con.runAndReadAll(
    `SELECT ${projection(f.columns)} FROM read_parquet(${sqlStr(f.path)}, file_row_number = true)
     ORDER BY file_row_number`)).getRowsJS();
  if (rows.length !== f.rows.length) problem(`${f.path}: ${rows.length} rows, want ${f.rows.length}`);
  const n = Math.min(rows.length, f.rows.length);
  for (let r = 0; r < n; r++) {
    f.columns.forEach((c, i) => {
      if (!sameValue(c, rows[r][i], f.rows[r][i]))
        problem(`${f.path}: row ${r + 1}, column ${c.name}: got ${JSON.stringify(String(rows[r][i]))}, want ${JSON.stringify(f.rows[r][i])}`);
    });
  }
  await checkStats(con, f);
}

const expected = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const instance = await DuckDBInstance.create(':memory:');
const con = await instance.connect();
await con.run(`SET TimeZone = 'UTC'`);
let values = 0;
for (const f of expected.files) {
  await checkFile(con, f);
  values += f.rows.length * f.columns.length;
  console.error(`checked ${f.path}: ${f.rows.length} rows, ${f.row_groups} row groups, ${f.codec}`);
}
if (problems.length) {
  console.error(`${problems.length} mismatches`);
  process.exit(1);
}
console.error(`duckdb: all ${values} values, types and statistics match`);
