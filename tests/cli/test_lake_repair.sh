#!/usr/bin/env bash
# test_lake_repair.sh: a lake that repairs itself (issue 19.4), end to end
# through the CLI:
# - `snapshot due` writes every missing or failed hour inside the retention
#   window, oldest first, at most --max-hours per run (the current hour
#   always among them), and nothing older than the job's first hour;
# - `--at` outside a job's retention window, and future hours, are refused
#   with a clear message and touch nothing;
# - leftovers of crashed runs (_tmp/*, *.tmp.<pid>) are removed at the start
#   of the next run;
# - job names starting with '_' or '.' are refused by the table;
# - a catalog write that fails is reported with a non-zero exit;
# - provisioned files live outside the lake root; the request id is printed
#   before the work; `provision resume ID` / `provision fail ID`.
#
#   FIELDMATCH=build/fieldmatch bash tests/cli/test_lake_repair.sh
set -u

FM=${FIELDMATCH:-build/fieldmatch}
[[ -x $FM ]] || { echo "fieldmatch binary not found: $FM (set FIELDMATCH)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 missing: skip" >&2; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/fm_repair.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
scalar() { python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' "$DB" "$1"; }
sql() { python3 -c 'import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); d.executescript(sys.argv[2]); d.commit()' "$DB" "$1"; }

# Hours relative to now; stay clear of the top of the hour (the runner reads
# the clock itself), waiting with a deadline if it is close.
near_top() { (( $(date -u +%M) >= 58 )); }
for _ in $(seq 1 200); do near_top || break; sleep 1; done
NOW=$(date -u +%s)
hour() { date -u -d "@$((NOW - $1 * 3600))" +%Y-%m-%dT%H; }
pdir() { local h; h=$(hour "$1"); echo "$ROOT/$2/dt=${h%T*}/hr=${h#*T}"; }

DB=$T/fm.db
ROOT=$T/lake
run "$FM" import --config train/sample.json --db "$DB" --quiet
expect_rc "import the sample" 0
# one small job with a 4-hour window; the seeded jobs off
sql "UPDATE snapshot_jobs SET enabled = 0;
     INSERT INTO snapshot_jobs (name, source_table, retention_hours) VALUES ('recent', 'fields', 4);"

# ---- job names -------------------------------------------------------------------
for bad in _tmp _trash .hidden -dash; do
  if sql "INSERT INTO snapshot_jobs (name, source_table) VALUES ('$bad', 'fields')" 2>"$T/err"; then
    bad "job name '$bad' accepted"
  else ok; fi
done
expect_in "the table says why" "$T/err" "CHECK constraint failed"
expect "names starting with a letter or digit are fine" sql "INSERT INTO snapshot_jobs (name, source_table, enabled) VALUES ('9_x-y', 'fields', 0)"

# ---- hours a run must not write ----------------------------------------------------
run "$FM" snapshot run --db "$DB" --root "$ROOT" --at "$(hour 6)"
expect_rc "--at outside the retention window" 1
expect_in "says which job and window" "$T/err" "outside the retention window of snapshot job 'recent' (retention_hours 4"
expect_in "says nothing was written" "$T/err" "nothing was written"
run "$FM" snapshot run --db "$DB" --root "$ROOT" --at 9999-01-01T00
expect_rc "a future hour" 1
expect_in "future refused" "$T/err" "is in the future"
run "$FM" snapshot backfill --db "$DB" --root "$ROOT" --from "$(hour 1)" --to "$(date -u -d "@$((NOW + 7200))" +%Y-%m-%dT%H)"
expect_rc "a backfill reaching into the future" 1
expect "the refused runs touched nothing" test ! -e "$ROOT"

# ---- due: gaps and failures inside the window, oldest first, bounded ---------------
run "$FM" snapshot run --db "$DB" --root "$ROOT" --at "$(hour 3)" --quiet
expect_rc "first hour of the job" 0
run "$FM" snapshot due --db "$DB" --root "$ROOT" --max-hours 2
expect_rc "due, bounded to 2" 0
expect_in "2 written" "$T/err" "2 written"
expect "due wrote the oldest gap first" test -f "$(pdir 2 recent)/_SUCCESS"
expect "and the current hour" test -f "$(pdir 0 recent)/_SUCCESS"
expect "not yet the next gap" test ! -e "$(pdir 1 recent)"
# a partition that failed: owed again
FM_SNAPSHOT_TEST_MISMATCH=recent run "$FM" snapshot run --db "$DB" --root "$ROOT" --at "$(hour 1)"
expect_rc "hour -1 fails (forced audit mismatch)" 1
run "$FM" snapshot due --db "$DB" --root "$ROOT"
expect_rc "due repairs" 0
expect_in "the failed hour rewritten" "$T/err" "1 written"
expect "hour -1 now there" test -f "$(pdir 1 recent)/_SUCCESS"
expect "nothing before the job's first hour" test ! -e "$(pdir 4 recent)"
run "$FM" snapshot due --db "$DB" --root "$ROOT"
expect_in "then nothing owed" "$T/err" "0 written"

# ---- leftovers of crashed runs --------------------------------------------------------
(FM_SNAPSHOT_DIE_AT=written "$FM" snapshot run --db "$DB" --root "$ROOT" --at "$(hour 0)" --force \
  >/dev/null 2>&1; echo $? >"$T/rc") 2>/dev/null
expect_eq "killed while writing" "$(cat "$T/rc")" 137
(FM_SNAPSHOT_DIE_AT=catalog "$FM" snapshot run --db "$DB" --root "$ROOT" --at "$(hour 2)" --force \
  >/dev/null 2>&1; echo $? >"$T/rc") 2>/dev/null
expect_eq "killed writing catalog.json" "$(cat "$T/rc")" 137
echo x >"$ROOT/_fieldmatch_lake.json.tmp.999999999"
expect "leftovers in _tmp" test -n "$(ls -A "$ROOT/_tmp")"
# the killed run's lease must run out before its partition is claimed again
sql "UPDATE snapshot_runs SET lease_expires = '2000-01-01T00:00:00.000Z' WHERE status = 'running'"
run "$FM" snapshot due --db "$DB" --root "$ROOT"
expect_rc "the next run" 0
expect_eq "_tmp emptied at its start" "$(ls -A "$ROOT/_tmp")" ""
expect "a root temp file of a dead writer removed" test ! -e "$ROOT/_fieldmatch_lake.json.tmp.999999999"

# ---- a catalog write that fails is an error ---------------------------------------------
mv "$ROOT/catalog.json" "$T/catalog.saved"
mkdir -p "$ROOT/catalog.json/blocker"
run "$FM" snapshot run --db "$DB" --root "$ROOT" --at "$(hour 0)"
expect_rc "catalog.json cannot be written: exit 1" 1
expect_in "the message names catalog.json" "$T/err" "catalog.json"
rm -rf "$ROOT/catalog.json"
run "$FM" snapshot run --db "$DB" --root "$ROOT" --at "$(hour 0)"
expect_rc "and the next run writes it" 0
expect "catalog.json back" test -f "$ROOT/catalog.json"

# ---- provisioning: outside the lake, id first, resume, fail ---------------------------------
run "$FM" provision request --db "$DB" --root "$ROOT" --dataset fields --owner rita
expect_rc "provision request" 0
ID=$(head -1 "$T/out")
expect "the file is beside the lake, not in it" test -f "$ROOT.provision/$ID.csv.gz"
expect "nothing provisioned under the lake root" test -z "$(find "$ROOT" -name "$ID*")"
# a request whose work fails still printed its id first
run "$FM" provision request --db "$DB" --root "$ROOT" --dataset snapshot --owner rita \
  --filters "{\"job\":\"recent\",\"from\":\"$(hour 4)\",\"to\":\"$(hour 4)\"}"
expect_rc "a request that fails" 1
FID=$(head -1 "$T/out")
expect "its id was printed" python3 -c 'import re,sys; sys.exit(not re.fullmatch("[0-9a-f]{32}", sys.argv[1]))' "$FID"
expect_eq "and it is failed" "$(scalar "SELECT status FROM provision_requests WHERE id='$FID'")" failed
# a worker killed mid-write: the row stays running with a live lease, a temp file stays
run "$FM" provision request --db "$DB" --dataset fields --no-wait --owner rita
KID=$(head -1 "$T/out")
sql "UPDATE provision_requests SET status = 'running', attempts = 1,
     lease_expires = '2999-01-01T00:00:00.000Z', started_at = '2001-01-01T00:00:00.000Z' WHERE id = '$KID'"
echo partial >"$ROOT.provision/$KID.csv.gz.tmp.999999999"
run "$FM" provision resume --db "$DB" --root "$ROOT" "$KID" --owner ops
expect_rc "provision resume of a running request" 0
expect_eq "resumed and written" "$(scalar "SELECT status FROM provision_requests WHERE id='$KID'")" ready
expect "the dead worker's temp file removed" test ! -e "$ROOT.provision/$KID.csv.gz.tmp.999999999"
expect_eq "resume audited" "$(scalar "SELECT count(*) FROM audit_log WHERE action='provision_resume' AND entity_key='$KID' AND actor='ops'")" 1
run "$FM" provision resume --db "$DB" --root "$ROOT" "$KID"
expect_rc "a ready request cannot be resumed" 1
expect_in "says why" "$T/err" "is ready"
run "$FM" provision request --db "$DB" --dataset mappings --no-wait --owner rita
PID_=$(head -1 "$T/out")
run "$FM" provision fail --db "$DB" "$PID_" --reason "not needed any more" --owner ops
expect_rc "provision fail" 0
expect_eq "failed with the reason" "$(scalar "SELECT status || ': ' || error FROM provision_requests WHERE id='$PID_'")" "failed: failed by ops: not needed any more"
run "$FM" provision fail --db "$DB" "$PID_"
expect_rc "a failed request cannot be failed again" 1
run "$FM" provision resume --db "$DB" --root "$ROOT" "$PID_"
expect_rc "a failed request resumed" 0
expect_eq "and written" "$(scalar "SELECT status FROM provision_requests WHERE id='$PID_'")" ready
run "$FM" provision fail --db "$DB" 0123456789abcdef0123456789abcdef
expect_rc "an unknown id" 1
expect_in "named" "$T/err" "no provisioning request"

echo "test_lake_repair.sh: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
