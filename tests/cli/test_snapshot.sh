#!/usr/bin/env bash
# test_snapshot.sh: `fieldmatch snapshot` end to end on a database filled
# with plain SQL: the written files parse back (gunzip + CSV / JSON Lines,
# in python3) to exactly the source rows; a second run is a no-op; SIGKILL
# at each stage then restart leaves one succeeded run per partition and no
# partial partition; two concurrent runners (one writes, one skips); a
# forced audit mismatch fails, runs --on-failure and POSTs to --webhook;
# backfill, status, catalog, jobs and the usage errors.
#
# Run by ctest from the repo root with FIELDMATCH = the binary; by hand:
#   FIELDMATCH=build/fieldmatch bash tests/cli/test_snapshot.sh
set -u

FM=${FIELDMATCH:-build/fieldmatch}
if [[ ! -x $FM ]]; then
  echo "fieldmatch binary not found: $FM (set FIELDMATCH)" >&2
  exit 1
fi
command -v python3 >/dev/null || { echo "python3 missing: skipped" >&2; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/fm_snap.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
q() { python3 - "$DB" "$@"; } # python3 with the database as argv[1]
scalar() { python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' "$DB" "$1"; }

DB=$T/fm.db
ROOT=$T/lake
HOUR=$(date -u +%Y-%m-%dT%H)
DT=${HOUR%T*}
HR=${HOUR#*T}

# ---- a database: the schema comes from fieldmatch, the rows from SQL -------
# snapshot never creates a store (issue 15): start from an empty file, which
# the first open migrates to the current schema
: >"$DB"
run "$FM" snapshot jobs --db "$DB"
expect_rc "jobs creates the schema" 0
expect_in "default jobs" "$T/out" '"name": "audit_log"'
q <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("INSERT INTO dictionaries VALUES (1,'bloomberg','bbg','query',1,'x',3,'t','t')")
db.execute("INSERT INTO dictionaries VALUES (2,'refinitiv','rdm','reference',1,'y',3,'t','t')")
for i, (v, fid, role, name, d) in enumerate([
    ('bloomberg', 'PX_BID', 'query', 'Bid, "best"', 1),
    ('bloomberg', 'PX_LAST', 'query', 'Last\nline', 1),
    ('bloomberg', 'PX_VOL', 'query', '', 1),
    ('refinitiv', 'BID', 'reference', 'Bid é', 2),
    ('refinitiv', 'TRDPRC_1', 'reference', 'Last', 2),
    ('refinitiv', 'ACVOL_1', 'reference', 'Volume', 2)]):
    db.execute("INSERT INTO fields (field_id, vendor, id, role, name, dict_id, content_hash)"
               " VALUES (?,?,?,?,?,?,?)", (i + 1, v, fid, role, name, d, 'h%d' % i))
db.execute("INSERT INTO mappings (mapping_key, query_field_id, ref_field_id, status, score, comment)"
           " VALUES ('m_1', 1, 4, 'accepted', 0.875, 'ok, \"fine\"')")
db.execute("INSERT INTO mappings (mapping_key, query_field_id, ref_field_id, status, score)"
           " VALUES ('m_2', 2, 5, 'proposed', NULL)")
db.execute("INSERT INTO audit_log (actor, action, entity, entity_key, after)"
           " VALUES ('ana', 'accept', 'mapping', 'm_1', '{\"a\":1}')")
# a new store's jobs are Parquet (schema 7); this script tests the gzip'd
# CSV / JSON Lines writers (Parquet: test_lake.sh)
assert {r[0] for r in db.execute("SELECT DISTINCT format FROM snapshot_jobs")} == {'parquet'}
db.execute("UPDATE snapshot_jobs SET format = CASE name WHEN 'audit_log' THEN 'jsonl.gz'"
           " ELSE 'csv.gz' END")
# the fixed hours below (2020..2023) lie inside the retention window
db.execute("UPDATE snapshot_jobs SET retention_hours = 1000000")
db.commit()
EOF

# ---- run, parse back, no-op -------------------------------------------------
run "$FM" snapshot run --db "$DB" --root "$ROOT"
expect_rc "run" 0
expect_in "run reports" "$T/err" "4 written, 0 skipped, 0 failed"
P=$ROOT/mappings/dt=$DT/hr=$HR
expect "partition written" test -f "$P/part-00000.csv.gz" -a -f "$P/_SUCCESS" -a -f "$P/_manifest.json"
expect "audit_log is JSON Lines" test -f "$ROOT/audit_log/dt=$DT/hr=$HR/part-00000.jsonl.gz"
expect "files parse back to exactly the source rows" q "$ROOT" "$DT" "$HR" <<'EOF'
import csv, gzip, hashlib, io, json, sqlite3, sys
db = sqlite3.connect(sys.argv[1]); root, dt, hr = sys.argv[2:5]
for table in ('mappings', 'fields', 'candidates'):
    part = f"{root}/{table}/dt={dt}/hr={hr}"
    raw = open(f"{part}/part-00000.csv.gz", 'rb').read()
    rows = list(csv.reader(io.StringIO(gzip.decompress(raw).decode(), newline='')))
    cur = db.execute(f"SELECT * FROM {table} ORDER BY rowid")
    header = [c[0] for c in cur.description]
    want = cur.fetchall()
    assert rows[0] == header, (table, rows[0])
    assert len(rows) - 1 == len(want), (table, len(rows), len(want))
    for r, w in zip(rows[1:], want):
        for x, v in zip(r, w):
            if v is None: assert x == '', (table, r, w)
            elif isinstance(v, float): assert float(x) == v, (table, r, w)
            else: assert x == str(v), (table, r, w)
    man = json.load(open(f"{part}/_manifest.json"))
    assert man['rows'] == len(want) == man['rows_read'], man
    assert man['files'][0]['sha256'] == hashlib.sha256(raw).hexdigest()
    assert man['files'][0]['bytes'] == len(raw)
    assert [c['name'] for c in man['columns']] == header
part = f"{root}/audit_log/dt={dt}/hr={hr}"
got = [json.loads(l) for l in gzip.open(f"{part}/part-00000.jsonl.gz", 'rt')]
cur = db.execute("SELECT * FROM audit_log ORDER BY rowid")
names = [c[0] for c in cur.description]
assert got == [dict(zip(names, r)) for r in cur.fetchall()], got
EOF
run "$FM" snapshot run --db "$DB" --root "$ROOT"
expect_rc "second run" 0
expect_in "second run is a no-op" "$T/err" "0 written, 4 skipped"
expect "one run row per partition" test "$(scalar "SELECT count(*) FROM snapshot_runs")" = 4

run "$FM" snapshot status --db "$DB"
expect_rc "status" 0
expect_in "status table" "$T/out" "succeeded"
run "$FM" snapshot catalog --db "$DB"
expect_rc "catalog" 0
expect "catalog.json matches the catalog table" python3 - "$ROOT/catalog.json" "$T/out" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert [t['job'] for t in a['tables']] == ['audit_log', 'candidates', 'fields', 'mappings']
assert a['tables'] == b['tables']
assert all(t['partitions'] and t['columns'] for t in a['tables'])
EOF

# ---- --force: a new version --------------------------------------------------
run "$FM" snapshot run --db "$DB" --root "$ROOT" --job mappings --force
expect_rc "force" 0
expect_in "force writes version 2" "$T/out" "written v2"
expect "force recorded" test "$(scalar "SELECT max(version) FROM snapshot_runs WHERE job='mappings'")" = 2

# ---- SIGKILL at each stage, then restart --------------------------------------
lease_out() {
  test "$(scalar "SELECT count(*) FROM snapshot_runs WHERE dt='2020-01-01' AND hr=5 AND lease_expires > strftime('%Y-%m-%dT%H:%M:%S.000Z', 'now')")" = 0
}
for stage in claimed written manifest renamed succeeded catalog; do
  R=$T/kill-$stage
  # In a subshell that reports the status, so bash's "Killed" line stays quiet.
  (FM_SNAPSHOT_DIE_AT=$stage "$FM" snapshot backfill --db "$DB" --root "$R" --lease 1 \
    --from 2020-01-01T05 --to 2020-01-01T05 --no-retention >/dev/null 2>&1
  echo $? >"$T/rc") 2>/dev/null
  rc=$(cat "$T/rc")
  expect_rc "killed at $stage" 137
  partial=$(find "$R" -path "$R/_tmp" -prune -o -path "$R/_trash" -prune -o -type d -name 'hr=*' -print |
    while read -r d; do [[ -f $d/_SUCCESS && -f $d/_manifest.json ]] || echo "$d"; done)
  expect "no partial partition visible after kill at $stage" test -z "$partial"
  # the restart must find the killed run's lease (--lease 1) run out, as
  # the runner compares it: ISO text against the current second
  wait_for "the lease of the run killed at $stage to run out" 60 lease_out
  run "$FM" snapshot backfill --db "$DB" --root "$R" --from 2020-01-01T05 --to 2020-01-01T05 --no-retention
  expect_rc "restart after $stage" 0
  expect "one succeeded run per partition after $stage" test \
    "$(scalar "SELECT count(*) FROM snapshot_runs WHERE dt='2020-01-01' AND hr=5 AND status='succeeded' AND rows_read=rows_written")" = 4
  expect "nothing else after $stage" test \
    "$(scalar "SELECT count(*) FROM snapshot_runs WHERE dt='2020-01-01' AND hr=5 AND status<>'succeeded'")" = 0
  run "$FM" snapshot backfill --db "$DB" --root "$R" --from 2020-01-01T05 --to 2020-01-01T05 --no-retention
  expect_in "then a no-op ($stage)" "$T/err" "0 written, 4 skipped"
  # Reset the 2030 rows so the next stage starts clean.
  python3 -c 'import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); d.execute("DELETE FROM snapshot_runs WHERE dt=?", ("2020-01-01",)); d.execute("DELETE FROM catalog WHERE dt=?", ("2020-01-01",)); d.commit()' "$DB"
done

# ---- two concurrent runners on one partition -----------------------------------
R=$T/two
# The first runner holds its lease (the test hook sleeps after the claim);
# once its claim is in the table it is stopped (SIGSTOP), so the second
# runner meets the lease however slowly it starts, then continued.  The
# hold (20 s) only bounds how late the claim may be seen (load 28 missed 5 s).
FM_SNAPSHOT_TEST_HOLD_MS=20000 "$FM" snapshot run --db "$DB" --root "$R" --at 2021-01-01T00 \
  --job fields --no-retention >"$T/a.out" 2>&1 &
A=$!
claimed_2021() { test "$(scalar "SELECT count(*) FROM snapshot_runs WHERE dt='2021-01-01' AND status='running'")" = 1; }
wait_for "the first runner to claim 2021-01-01T00" 60 claimed_2021
kill -STOP $A
"$FM" snapshot run --db "$DB" --root "$R" --at 2021-01-01T00 \
  --job fields --no-retention >"$T/b.out" 2>&1
kill -CONT $A
wait $A
expect_in "first runner writes" "$T/a.out" "1 written"
expect_in "second runner skips" "$T/b.out" "leased by"
expect "one run row" test "$(scalar "SELECT count(*) FROM snapshot_runs WHERE dt='2021-01-01'")" = 1

# ---- audit mismatch: fails, notifies (command and webhook) ------------------------
PORT_FILE=$T/port
python3 - "$T/hook.json" "$PORT_FILE" <<'EOF' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        open(sys.argv[1], 'wb').write(body)
        self.send_response(204); self.end_headers()
    def log_message(self, *a): pass
s = http.server.HTTPServer(('127.0.0.1', 0), H)
open(sys.argv[2], 'w').write(str(s.server_port))
s.handle_request()
EOF
W=$!
wait_for "the webhook receiver to write its port" 60 test -s "$PORT_FILE"
FM_SNAPSHOT_TEST_MISMATCH=mappings run "$FM" snapshot run --db "$DB" --root "$T/mm" --at 2022-01-01T07 \
  --job mappings --no-retention --webhook "http://127.0.0.1:$(cat "$PORT_FILE")/hook"
wait $W 2>/dev/null
expect_rc "mismatch fails" 1
expect_in "mismatch names the audit" "$T/err" "audit failed"
expect "no partition for the failed run" test ! -e "$T/mm/mappings/dt=2022-01-01/hr=07"
expect "status failed" test "$(scalar "SELECT status FROM snapshot_runs WHERE dt='2022-01-01'")" = failed
expect "webhook got the failure" python3 -c '
import json, sys; j = json.load(open(sys.argv[1]))
assert j["event"] == "snapshot.failed" and j["job"] == "mappings" and j["rows_read"] == 2 and j["rows_written"] == 1, j' "$T/hook.json"
HOOK_OUT=$T/hook.txt FM_SNAPSHOT_TEST_MISMATCH=mappings run "$FM" snapshot run --db "$DB" --root "$T/mm" \
  --at 2022-01-01T07 --job mappings --no-retention \
  --on-failure 'echo "$FM_SNAPSHOT_JOB $FM_SNAPSHOT_DT $FM_SNAPSHOT_HR $FM_SNAPSHOT_ROWS_READ $FM_SNAPSHOT_ROWS_WRITTEN" > "$HOOK_OUT"'
expect_rc "mismatch again fails" 1
expect "on-failure command ran" test "$(cat "$T/hook.txt" 2>/dev/null)" = "mappings 2022-01-01 07 2 1"
run "$FM" snapshot run --db "$DB" --root "$T/mm" --at 2022-01-01T07 --job mappings --no-retention
expect_rc "retry succeeds" 0
expect "retry is attempt 3" test "$(scalar "SELECT attempt FROM snapshot_runs WHERE dt='2022-01-01'")" = 3

# ---- backfill ---------------------------------------------------------------------------
run "$FM" snapshot backfill --db "$DB" --root "$T/bf" --from 2023-03-01T22 --to 2023-03-02T01 --job fields --no-retention
expect_rc "backfill" 0
expect_in "backfill writes 4 hours" "$T/err" "4 written"
expect "backfill crosses midnight" test -f "$T/bf/fields/dt=2023-03-02/hr=01/_SUCCESS"

# ---- a lake belongs to one store; verify re-reads it --------------------------------------
expect "the first run wrote the lake's identity" test -f "$ROOT/_fieldmatch_lake.json"
LAKE_ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["store_id"])' "$ROOT/_fieldmatch_lake.json")
expect_eq "identity names this store" "$LAKE_ID" "$(scalar "SELECT store_id FROM store_identity")"
DB2=$T/other.db
: >"$DB2" # an empty file is a store to migrate; a missing one is refused (issue 15)
run "$FM" snapshot run --db "$DB2" --root "$T/lake2"
expect_rc "another store, its own lake" 0
OTHER_ID=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT store_id FROM store_identity").fetchone()[0])' "$DB2")
expect "the two stores have different ids" test "$LAKE_ID" != "$OTHER_ID"
# Every file and directory with its size, mtime (ns) and, for files, SHA-256.
listing() {
  (cd "$1" && find . -printf '%y %p %s %T@\n' | sort &&
    find . -type f -exec sha256sum {} + | sort)
}
rows2() { python3 -c 'import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); print(d.execute("SELECT count(*) FROM snapshot_runs").fetchone()[0], d.execute("SELECT count(*) FROM catalog").fetchone()[0])' "$DB2"; }
listing "$ROOT" >"$T/lake.before"
R2=$(rows2)
for sub in run due; do
  run "$FM" snapshot $sub --db "$DB2" --root "$ROOT" --force
  expect_rc "snapshot $sub into another store's lake refused" 1
  expect_in "refusal names the lake's store" "$T/err" "$LAKE_ID"
  expect_in "refusal names this store" "$T/err" "$OTHER_ID"
done
listing "$ROOT" >"$T/lake.after"
expect "the refused runs changed no file of the lake" cmp -s "$T/lake.before" "$T/lake.after"
expect_eq "the refused runs wrote no status or catalog row" "$(rows2)" "$R2"

run "$FM" snapshot verify --root "$ROOT" --db "$DB"
expect_rc "verify: a clean lake" 0
expect_in "verify counts" "$T/err" "0 problems"
run "$FM" snapshot verify --root "$ROOT" --db "$DB2"
expect_rc "verify: the lake is not this store's" 1
expect_in "verify names the owner" "$T/out" "$LAKE_ID"
V=$ROOT/fields/dt=$DT/hr=$HR/part-00000.csv.gz
cp "$V" "$T/saved.gz"
python3 - "$V" <<'EOF2'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
b[len(b) // 2] ^= 0x01
open(p, 'wb').write(bytes(b))
EOF2
run "$FM" snapshot verify --root "$ROOT"
expect_rc "verify: a flipped byte" 1
expect_in "flipped byte reported" "$T/out" "fields/dt=$DT/hr=$HR: part-00000.csv.gz: SHA-256"
cp "$T/saved.gz" "$V"
run "$FM" snapshot verify --root "$ROOT"
expect_rc "verify: restored" 0
rm "$V"
run "$FM" snapshot verify --root "$ROOT" --db "$DB"
expect_rc "verify: a missing file" 1
expect_in "missing file reported" "$T/out" "part-00000.csv.gz: missing"
rm "$ROOT/mappings/dt=$DT/hr=$HR/_manifest.json"
run "$FM" snapshot verify --root "$ROOT"
expect_rc "verify: a missing manifest" 1
expect_in "missing manifest reported" "$T/out" "mappings/dt=$DT/hr=$HR: _manifest.json: missing"
cp "$T/saved.gz" "$V"
run "$FM" snapshot verify --root "$T/nolake"
expect_rc "verify: no such root" 1
expect "verify created nothing" test ! -e "$T/nolake"

# ---- usage errors ------------------------------------------------------------------------
run "$FM" snapshot run --db "$DB"
expect_rc "run without --root" 2
run "$FM" snapshot run --db "$DB" --root "$T/x" --at 2024-05-01T13:30:00Z
expect_rc "non-hour --at" 2
expect_in "non-hour message" "$T/err" "hourly"
run "$FM" snapshot backfill --db "$DB" --root "$T/x" --from 2024-05-02T00 --to 2024-05-01T00
expect_rc "backwards range" 2
run "$FM" snapshot run --db "$DB" --root "$T/x" --job nosuch
expect_rc "unknown job" 1
expect_in "unknown job named" "$T/err" "nosuch"
run "$FM" snapshot frobnicate --db "$DB"
expect_rc "unknown subcommand" 2

echo "test_snapshot.sh: $passed passed, $failed failed"
[[ $failed == 0 ]]
