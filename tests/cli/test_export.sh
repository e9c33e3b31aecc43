#!/usr/bin/env bash
# test_export.sh: fieldmatch export / import-mappings end to end on the
# repo's sample: the 265 gold pairs (as a spreadsheet with a status column
# and an awkward comment) go into one database, out as CSV, into a fresh
# database, and out again byte-identical.  Bad inputs (unknown fields,
# malformed CSV, bad options) and a database locked by another process
# must fail with a clear message and leave the database unchanged.
#
# Run by ctest from the repo root with FIELDMATCH = the binary; by hand:
#   FIELDMATCH=build/fieldmatch bash tests/cli/test_export.sh
set -u

FM=${FIELDMATCH:-build/fieldmatch}
if [[ ! -x $FM ]]; then
  echo "fieldmatch binary not found: $FM (set FIELDMATCH)" >&2
  exit 1
fi
if ! command -v sqlite3 >/dev/null; then
  echo "sqlite3 CLI not found: skipping" >&2
  exit 77
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/fm_export.XXXXXX") || exit 1
LOCK_FD_OPEN=0
cleanup() {
  if [[ $LOCK_FD_OPEN == 1 ]]; then exec 3>&-; fi
  rm -rf "$T"
}
trap cleanup EXIT

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# A digest of everything in a database (schema and rows).
digest() { sqlite3 "$1" .dump | sha256sum | cut -d' ' -f1; }

fresh_db() {
  rm -f "$1" "$1-wal" "$1-shm"
  run "$FM" import --config train/sample.json --db "$1"
  expect_rc "import dictionaries into $(basename "$1")" 0
}

# ---- the gold pairs as a spreadsheet -----------------------------------------
# First pair of a query field accepted, later ones proposed (one accepted
# reference per query field); the second row carries a comment with a comma,
# quotes, a line break and UTF-8.
awk -F'\t' 'NR == 1 { print "query_id,ref_id,status,comment"; next }
  { st = seen[$1]++ ? "proposed" : "accepted"
    c = NR == 3 ? "\"bid, \"\"best\"\" side\nsecond line caf\303\251\"" : ""
    print $1 "," $2 "," st "," c }' data/sample/gold.tsv >"$T/gold.csv"

DB1=$T/one.db
DB2=$T/two.db
fresh_db "$DB1"

# ---- dry run: reports per row, changes nothing -----------------------------
before=$(digest "$DB1")
run "$FM" import-mappings "$T/gold.csv" --db "$DB1" --dry-run --by alice
expect_rc "dry run" 0
expect_in "dry run per row" "$T/out" "gold.csv:2: PX_LAST -> TRDPRC_1: new accepted"
expect_in "dry run summary" "$T/out" "dry run: $T/gold.csv: 265 row(s): 260 new accepted"
expect "dry run changes nothing" test "$(digest "$DB1")" == "$before"

# ---- import, export, round trip -----------------------------------------------
run "$FM" import-mappings "$T/gold.csv" --db "$DB1" --by alice
expect_rc "import-mappings gold" 0
expect_in "import summary" "$T/out" "265 row(s): 260 new accepted, 0 superseding, 5 proposed"
expect "accepted rows" test "$(sqlite3 "$DB1" "SELECT count(*) FROM mappings WHERE status='accepted' AND origin='import'")" == 260

run "$FM" export --db "$DB1" --status all -o "$T/e1.csv"
expect_rc "export all" 0
expect_in "export says where" "$T/err" "exported 265 mapping(s)"
expect "export header" test "$(head -1 "$T/e1.csv")" == \
  "mapping_key,query_vendor,query_id,query_name,ref_vendor,ref_id,ref_name,status,origin,score,decided_by,decided_at,comment,flag"
expect_in "comment quoted" "$T/e1.csv" '"bid, ""best"" side'
run "$FM" export --db "$DB1" --status all
expect "stdout equals -o" cmp -s "$T/out" "$T/e1.csv"
expect "no temp files left" test -z "$(ls "$T" | grep '\.tmp\.')"

fresh_db "$DB2"
run "$FM" import-mappings "$T/e1.csv" --db "$DB2" --by bob
expect_rc "import the export" 0
run "$FM" export --db "$DB2" --status all -o "$T/e2.csv"
expect_rc "export again" 0
expect "round trip: identical bytes" cmp "$T/e1.csv" "$T/e2.csv"
run "$FM" import-mappings "$T/e1.csv" --db "$DB2" --dry-run
expect_in "re-import is all unchanged" "$T/out" "265 unchanged"

# JSON Lines and JSON are valid and hold the same rows.
run "$FM" export --db "$DB1" --status accepted --format jsonl -o "$T/e.jsonl"
expect_rc "export jsonl" 0
run "$FM" export --db "$DB1" --status accepted --format json -o "$T/e.json"
expect_rc "export json" 0
if command -v python3 >/dev/null; then
  run python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
arr = json.load(open(sys.argv[2], encoding="utf-8"))
assert rows == arr and len(rows) == 260, (len(rows), len(arr))
assert any(r["comment"].startswith("bid, \"best\" side\nsecond") for r in rows)
' "$T/e.jsonl" "$T/e.json"
  expect_rc "jsonl == json, 260 rows" 0
fi
run "$FM" export --db "$DB1" --status accepted --with-candidates 3
expect_rc "with candidates (none yet)" 0
expect_in "candidate columns" "$T/out" ",flag,cand1_id,cand1_score,cand2_id,cand2_score,cand3_id,cand3_score"

# ---- bad inputs: non-zero exit, clear message, database unchanged -------------
before=$(digest "$DB2")
printf 'query_id,ref_id\nPX_LAST,TRDPRC_1\nNOT_A_FIELD,BID\nPX_BID,PX_LAST\nPX_OPEN,OPEN_PRC\nPX_OPEN,OPEN_PRC\n' >"$T/bad.csv"
run "$FM" import-mappings "$T/bad.csv" --db "$DB2"
expect_rc "unknown fields" 1
expect_in "unknown query" "$T/err" "bad.csv:3: unknown query field 'NOT_A_FIELD'"
expect_in "query as reference" "$T/err" "bad.csv:4: 'PX_LAST' is a query field, given as the reference"
expect_in "duplicate" "$T/err" "bad.csv:6: duplicate row: PX_OPEN -> OPEN_PRC is already on line 5"
expect_in "summary" "$T/err" "3 of 5 rows with errors; nothing imported"
expect "unchanged after bad rows" test "$(digest "$DB2")" == "$before"

printf 'query_id,ref_id,comment\nPX_LAST,BID,ok\nPX_BID,BID,"no closing quote\n' >"$T/malformed.csv"
run "$FM" import-mappings "$T/malformed.csv" --db "$DB2"
expect_rc "malformed csv" 1
expect_in "malformed names the line" "$T/err" "malformed.csv:3: unterminated quoted field"
expect "unchanged after malformed" test "$(digest "$DB2")" == "$before"

run "$FM" import-mappings "$T/e1.csv" --db "$DB2" --columns query=Nope
expect_rc "missing named column" 1
expect_in "missing column named" "$T/err" "column 'Nope' (query) not in the header"
run "$FM" import-mappings "$T/e1.csv" --db "$DB2" --columns colour=red
expect_rc "unknown --columns key" 2
run "$FM" import-mappings "$T/e1.csv" --db "$DB2" --status superseded
expect_rc "bad --status" 2
run "$FM" import-mappings "$T/e1.csv" --db "$T/none.db"
expect_rc "missing database" 1
expect_in "missing database named" "$T/err" "no database at '$T/none.db' (create one with 'fieldmatch import')"
expect "no database created" test ! -e "$T/none.db"
run "$FM" export --db "$DB2" --status maybe
expect_rc "export bad --status" 2
run "$FM" export --db "$DB2" --status all --format xml
expect_rc "export bad --format" 2
run "$FM" export --db "$DB2" --status all --changed-since yesterday
expect_rc "export bad --changed-since" 2
run "$FM" export --db "$DB2" --status all -o "$T/nodir/x.csv"
expect_rc "export to a missing directory" 1
expect "unchanged after option errors" test "$(digest "$DB2")" == "$before"

# ---- a database locked by another writer -----------------------------------------
mkfifo "$T/lockfifo"
sqlite3 "$DB2" <"$T/lockfifo" >"$T/lock.out" 2>&1 &
lock_pid=$!
exec 3>"$T/lockfifo"
LOCK_FD_OPEN=1
printf "BEGIN IMMEDIATE;\nSELECT 'locked';\n" >&3
wait_for "sqlite3 to take the write lock" 60 grep -q locked "$T/lock.out"
printf 'query_id,ref_id\nPX_OPEN,OPEN_PRC\n' >"$T/one.csv"
run "$FM" import-mappings "$T/one.csv" --db "$DB2" --busy-timeout 100
expect_rc "locked database" 1
expect_in "locked message" "$T/err" "database is locked"
# Readers are not blocked by a writer (WAL): export still works.
run "$FM" export --db "$DB2" --status all -o "$T/e3.csv"
expect_rc "export while locked" 0
expect "export while locked: same rows" cmp -s "$T/e2.csv" "$T/e3.csv"
printf "ROLLBACK;\n" >&3
exec 3>&-
LOCK_FD_OPEN=0
wait "$lock_pid"
expect "unchanged after the lock" test "$(digest "$DB2")" == "$before"
# Once the lock is gone the same import works.
run "$FM" import-mappings "$T/one.csv" --db "$DB2" --busy-timeout 100
expect_rc "import after the lock" 0

echo "test_export.sh: $passed passed, $failed failed"
[[ $failed == 0 ]]
