#!/usr/bin/env bash
# test_lake.sh: the lake read by a real engine.  A store is built from the
# sample data (import, train, batch run, plus rows with quotes, newlines,
# non-ASCII, NULL next to '', timestamps); `snapshot run` writes Parquet
# (the default) for two hours, a column is added to mappings in between;
# DuckDB (@duckdb/node-api, tests/duckdb/check_lake.mjs) reads every job and
# every partition with hive_partitioning = true and union_by_name = true and
# must see exactly the store's rows at snapshot time, the added column as
# NULL in the older partition, and a Parquet provisioning file whole.
# Skips (77) only when node is unavailable (a missing npm package fails:
# scripts/setup.sh installs it).
#
#   FIELDMATCH=build/fieldmatch bash tests/cli/test_lake.sh
set -u

FM=${FIELDMATCH:-build/fieldmatch}
[[ -x $FM ]] || { echo "fieldmatch binary not found: $FM (set FIELDMATCH)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 missing: skip" >&2; exit 77; }
command -v node >/dev/null || { echo "node missing (scripts/setup.sh installs it): skip" >&2; exit 77; }
# with node there, a missing DuckDB package is a broken setup, not a skip
[[ -f tests/duckdb/node_modules/@duckdb/node-api/package.json ]] ||
  { echo "npm @duckdb/node-api is not installed in tests/duckdb: run scripts/setup.sh (npm ci)" >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/fm_lake.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DB=$T/fm.db
ROOT=$T/lake
NOW=$(date -u +%s)
H1=$(date -u -d "@$((NOW - 2 * 3600))" +%Y-%m-%dT%H)
H2=$(date -u -d "@$((NOW - 3600))" +%Y-%m-%dT%H)

# ---- the sample store ----------------------------------------------------------
run "$FM" import --config train/sample.json --db "$DB" --quiet
expect_rc "import the sample dictionaries" 0
run "$FM" train --config train/sample.json -o "$T/s.fmm" --quiet
expect_rc "train the sample model" 0
run "$FM" batch run --model "$T/s.fmm" --db "$DB" --quiet
expect_rc "batch run: candidates and proposals" 0
python3 - "$DB" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
m = [r[0] for r in db.execute("SELECT mapping_id FROM mappings ORDER BY mapping_id LIMIT 4")]
db.execute("UPDATE mappings SET comment = ?, flag = NULL WHERE mapping_id = ?", ('say "yes", then\nnewline; é ü 日本 🙂', m[0]))
db.execute("UPDATE mappings SET comment = '' WHERE mapping_id = ?", (m[1],))
db.execute("UPDATE mappings SET score = NULL, decided_at = '2024-02-29T23:59:59.999Z' WHERE mapping_id = ?", (m[2],))
db.execute("UPDATE fields SET description = 'tab\tand ''single'' \"double\"' WHERE field_id = 1")
db.execute("INSERT INTO audit_log (actor, action, entity, entity_key, before, after)"
           " VALUES ('zoë', 'note', 'mapping', 'k', NULL, '')")
db.commit()
EOF
jobs=$(python3 -c 'import sqlite3,sys; print(" ".join(r[0] for r in sqlite3.connect(sys.argv[1]).execute("SELECT name FROM snapshot_jobs WHERE enabled=1 AND format=\"parquet\" ORDER BY name")))' "$DB")
expect_eq "every seeded job is Parquet" "$jobs" "audit_log candidates fields mappings"

# The store's rows as the lake must hold them, appended to $T/parts.jsonl.
dump() { # dump HOUR
  python3 - "$DB" "$1" >>"$T/parts.jsonl" <<'EOF'
import calendar, datetime, json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
dt, hr = sys.argv[2].split('T')
def kind(decl, name):  # the snapshot writer's mapping (docs/snapshot.md, "Parquet")
    d = (decl or '').upper()
    if 'INT' in d: return 'int'
    if any(k in d for k in ('CHAR', 'CLOB', 'TEXT')):
        return 'ts' if name == 'at' or name.endswith('_at') else 'string'
    if any(k in d for k in ('REAL', 'FLOA', 'DOUB')): return 'double'
    return 'string'
def micros(s):
    t = datetime.datetime.fromisoformat(s.replace('Z', '+00:00'))
    return str(calendar.timegm(t.utctimetuple()) * 1000000 + t.microsecond)
def val(k, v):
    if v is None: return None
    if k == 'int': return str(v)
    if k == 'ts': return micros(v)
    return v
for job, table in db.execute("SELECT name, source_table FROM snapshot_jobs WHERE enabled = 1"):
    info = db.execute("SELECT name, type, pk FROM pragma_table_info(?) ORDER BY cid", (table,)).fetchall()
    cols = [{'name': n, 'kind': kind(t, n)} for n, t, _ in info]
    pk = [n for n, _, p in sorted(info, key=lambda x: x[2]) if p > 0]
    rows = db.execute('SELECT %s FROM "%s" ORDER BY %s' % (
        ', '.join('"%s"' % c['name'] for c in cols), table, ', '.join('"%s"' % c for c in pk))).fetchall()
    print(json.dumps({'job': job, 'dt': dt, 'hr': int(hr), 'order_by': pk, 'columns': cols,
                      'rows': [[val(c['kind'], v) for c, v in zip(cols, r)] for r in rows]}))
EOF
}

# ---- two hours, a column added in between -------------------------------------
run "$FM" snapshot run --db "$DB" --root "$ROOT" --at "$H1" --quiet
expect_rc "snapshot run $H1" 0
dump "$H1"
for j in $jobs; do
  expect "$j: one Parquet file in $H1" test -f "$ROOT/$j/dt=${H1%T*}/hr=${H1#*T}/part-00000.parquet"
done
python3 - "$DB" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("ALTER TABLE mappings ADD COLUMN note TEXT")
db.execute("UPDATE mappings SET note = 'reviewed ' || mapping_id WHERE mapping_id % 3 = 0")
db.execute("INSERT INTO audit_log (actor, action, entity, entity_key) VALUES ('ana', 'x', 'y', 'z')")
db.commit()
EOF
run "$FM" snapshot run --db "$DB" --root "$ROOT" --at "$H2" --quiet
expect_rc "snapshot run $H2" 0
dump "$H2"
expect "catalog.json lists Parquet" grep -q '"format": "parquet"' "$ROOT/catalog.json"

# ---- the catalog for engines ----------------------------------------------------------
expect "catalog.hive.sql and catalog.duckdb.sql beside catalog.json" \
  test -f "$ROOT/catalog.hive.sql" -a -f "$ROOT/catalog.duckdb.sql"
# every job's Hive table: columns and types as the store declares them,
# partitioned by (dt, hr), Parquet, at the job's directory
cat >"$T/hive.py" <<'EOF'
import os, re, sqlite3, sys
db, root = sqlite3.connect(sys.argv[1]), sys.argv[2]
ddl = open(root + '/catalog.hive.sql').read()
loc = os.path.realpath(root)
def hive(decl, name):
    d = (decl or '').upper()
    if 'INT' in d: return 'BIGINT'
    if any(k in d for k in ('CHAR', 'CLOB', 'TEXT')):
        return 'TIMESTAMP' if name == 'at' or name.endswith('_at') else 'STRING'
    if any(k in d for k in ('REAL', 'FLOA', 'DOUB')): return 'DOUBLE'
    return 'STRING'
for job, table in db.execute("SELECT name, source_table FROM snapshot_jobs WHERE enabled = 1"):
    m = re.search(r"CREATE EXTERNAL TABLE IF NOT EXISTS `%s` \((.*?)\)\nPARTITIONED BY \(`dt` STRING, `hr` INT\)\n"
                  r"STORED AS PARQUET\nLOCATION 'file://%s/%s/';\nMSCK REPAIR TABLE `%s`;"
                  % (job, re.escape(loc), job, job), ddl, re.S)
    assert m, job
    got = [tuple(l.strip().rstrip(',').split(' ')) for l in m.group(1).strip().split('\n')]
    want = [('`%s`' % n, hive(t, n)) for n, t in
            db.execute("SELECT name, type FROM pragma_table_info(?) ORDER BY cid", (table,))]
    assert got == want, (job, got, want)
EOF
expect "Hive DDL of every job" python3 "$T/hive.py" "$DB" "$ROOT"
# the hour marker: every enabled job of the hour succeeded
M1=$ROOT/_hours/dt=${H1%T*}/hr=${H1#*T}/_HOUR_SUCCESS
expect "_HOUR_SUCCESS of $H1 lists the 4 jobs" python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); assert sorted(j["job"] for j in m["jobs"]) == ["audit_log","candidates","fields","mappings"], m' "$M1"
H0=$(date -u -d "@$((NOW - 3 * 3600))" +%Y-%m-%dT%H)
M0=$ROOT/_hours/dt=${H0%T*}/hr=${H0#*T}/_HOUR_SUCCESS
FM_SNAPSHOT_TEST_MISMATCH=fields run "$FM" snapshot run --db "$DB" --root "$ROOT" --at "$H0" --quiet
expect_rc "a failed job fails the run" 1
expect "no _HOUR_SUCCESS while a job of the hour failed" test ! -e "$M0"
run "$FM" snapshot run --db "$DB" --root "$ROOT" --at "$H0" --job fields --quiet
expect_rc "the failed job rewritten" 0
expect "_HOUR_SUCCESS once every job of the hour succeeded" test -f "$M0"
# H0 holds later state than the others: out of the comparison below
rm -rf "$ROOT"/*/dt="${H0%T*}"/hr="${H0#*T}"

# ---- a Parquet provisioning file ---------------------------------------------------
run "$FM" provision request --db "$DB" --root "$ROOT" --dataset mappings --format parquet
expect_rc "provision request --format parquet" 0
PID_=$(grep -oE '[0-9a-f]{32}' "$T/out" | head -1)
run "$FM" provision fetch --db "$DB" --root "$ROOT" "$PID_" -o "$T/prov.parquet"
expect_rc "provision fetch" 0
MROWS=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM mappings").fetchone()[0])' "$DB")

# ---- DuckDB reads it all back --------------------------------------------------------
python3 - "$T" "$ROOT" "$MROWS" "${H1%T*}" "$((10#${H1#*T}))" <<'EOF'
import json, sys
t, root, mrows, d1, h1 = sys.argv[1:]
parts = [json.loads(l) for l in open(t + '/parts.jsonl')]
# the samples the check must meet: present in the expectation, so it cannot pass empty
flat = json.dumps(parts, ensure_ascii=False)
for s in ('say \\"yes\\", then\\nnewline; é ü 日本 🙂', 'zoë', '"1709251199999000"'):
    assert s in flat, s
al = "read_parquet('%s/audit_log/*/*/*.parquet', hive_partitioning = true)" % root
sql = [{'query': "SELECT count(*) FROM %s WHERE actor = 'zoë' AND after = '' AND before IS NULL" % al, 'want': '2'},
       # hr=05 is text to DuckDB's guess; hive_types makes it a number (the view script does)
       {'query': "SELECT typeof(hr) || ' ' || typeof(dt) FROM read_parquet('%s/fields/*/*/*.parquet', hive_partitioning = true,"
                 " hive_types = {'dt': 'DATE', 'hr': 'INTEGER'}) WHERE hr = %s LIMIT 1" % (root, h1), 'want': 'INTEGER DATE'}]
json.dump({'root': root, 'partitions': parts, 'views': root + '/catalog.duckdb.sql', 'provisioned': [{'path': t + '/prov.parquet', 'rows': int(mrows)}],
           'sql': sql}, open(t + '/expected.json', 'w'), ensure_ascii=False)
EOF
if node tests/duckdb/check_lake.mjs "$T/expected.json" >"$T/duck.out" 2>&1; then ok; else
  bad "DuckDB reads the lake as the store holds it"
fi
cat "$T/duck.out" >&2
expect_in "the added column is NULL in the old partition" "$T/duck.out" "mappings/dt=${H1%T*}/hr=${H1#*T}: column note (added later) reads as NULL"

echo "test_lake.sh: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
