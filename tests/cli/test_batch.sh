#!/usr/bin/env bash
# test_batch.sh: `fieldmatch batch` end to end on the sample model: a run
# killed with SIGKILL (test hook FM_BATCH_KILL_AT) at several points and
# resumed each time gives the same final tables as an uninterrupted run;
# counts reconcile; accepted mappings are not re-proposed; status/list (text
# and JSON); clear errors for an unknown run, a finished run, another model
# and a locked database (which must change nothing).  With the shared data,
# one timed run over the real model.
#
#   FIELDMATCH=build/fieldmatch bash tests/cli/test_batch.sh
set -u

FM=${FIELDMATCH:-build/fieldmatch}
if [[ ! -x $FM ]]; then
  echo "fieldmatch binary not found: $FM (set FIELDMATCH)" >&2
  exit 1
fi
if ! command -v sqlite3 >/dev/null; then
  echo "sqlite3 CLI not installed; skipping" >&2
  exit 77
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/fm_batch.XXXXXX") || exit 1
holder=
trap '[[ -n $holder ]] && kill $holder 2>/dev/null; rm -rf "$T"' EXIT

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
q() { sqlite3 "$1" "$2"; }

# The run-independent content of the result tables (no timestamps).
dump() {
  sqlite3 "$1" "
    SELECT 'c', q.id, c.rank, r.id, printf('%.6f', c.score), c.batch_run_id
      FROM candidates c JOIN fields q ON q.field_id = c.query_field_id
      JOIN fields r ON r.field_id = c.ref_field_id ORDER BY c.batch_run_id, q.id, c.rank;
    SELECT 'm', mapping_key, status, origin, printf('%.6f', score), batch_run_id, decided_by
      FROM mappings ORDER BY mapping_key;
    SELECT 'q', q.id, reason, printf('%.6f', top_score), printf('%.6f', margin),
           printf('%.6f', uncertainty), resolved_at IS NULL, batch_run_id
      FROM review_queue JOIN fields q ON q.field_id = query_field_id ORDER BY q.id;
    SELECT 'p', batch_run_id, part_no, n_in, n_proposed, n_queued, n_curated, n_failed
      FROM batch_parts ORDER BY 1, 2, 3;
    SELECT 'r', batch_run_id, status, n_fields, n_batches, error FROM batch_runs;"
}

M=$T/sample.fmm
run "$FM" train --config train/sample.json -o "$M"
expect_rc "train sample" 0
NQ=$("$FM" info "$M" 2>/dev/null | sed -n 's/^queries: *\([0-9]*\).*/\1/p' | head -1)
BS=50

# ---- an uninterrupted run ------------------------------------------------
A=$T/a.db
run "$FM" batch run --model "$M" --db "$A" --batch-size $BS -v --by tester
expect_rc "batch run" 0
expect_in "run summary" "$T/out" "batch run 1: succeeded"
expect_in "per-part lines with -v" "$T/err" "part 1/"
NP=$(q "$A" "SELECT n_batches FROM batch_runs WHERE batch_run_id = 1")
NF=$(q "$A" "SELECT n_fields FROM batch_runs WHERE batch_run_id = 1")
[[ -n $NQ ]] && expect_eq "n_fields = model's query fields" "$NF" "$NQ"
expect_eq "parts = ceil(fields / batch size)" "$NP" $(((NF + BS - 1) / BS))
expect_eq "sum of n_in = fields" "$(q "$A" "SELECT sum(n_in) FROM batch_parts")" "$NF"
expect_eq "every part reconciles" \
  "$(q "$A" "SELECT count(*) FROM batch_parts WHERE n_in <> n_proposed + n_queued + n_curated + n_failed")" 0
expect_eq "status succeeded" "$(q "$A" "SELECT status FROM batch_runs")" succeeded
expect_eq "proposals by the run" \
  "$(q "$A" "SELECT count(*) FROM mappings WHERE decided_by = 'batch:1' AND status = 'proposed'")" \
  "$(q "$A" "SELECT sum(n_proposed) FROM batch_parts")"

# ---- killed at several points, resumed each time ---------------------------
B=$T/b.db
kill_run() { # kill_run SPEC ARGS...: expect death by SIGKILL
  local spec=$1
  shift
  # Through sh -c so the "Killed" notice goes to $T/err, not the log.
  FM_BATCH_KILL_AT=$spec sh -c '"$@"' sh "$FM" batch run "$@" >"$T/out" 2>"$T/err"
  rc=$?
  expect_eq "killed at $spec" "$rc" 137
}
kill_run 2:before_commit --model "$M" --db "$B" --batch-size $BS --by tester
expect_eq "part 2 not committed" "$(q "$B" "SELECT group_concat(part_no) FROM batch_parts")" 1
kill_run 3:after_commit --resume 1 --model "$M" --db "$B" --by tester
expect_eq "parts 1-3 committed" "$(q "$B" "SELECT group_concat(part_no) FROM batch_parts")" 1,2,3
kill_run 5:before_commit --resume 1 --model "$M" --db "$B" --by tester
kill_run 6:after_commit --resume 1 --model "$M" --db "$B" --by tester
expect_eq "still running" "$(q "$B" "SELECT status FROM batch_runs")" running
run "$FM" batch status 1 --db "$B"
expect_rc "status of an unfinished run" 0
expect_in "status shows committed parts" "$T/out" "6 of $NP committed"
run "$FM" batch run --resume 1 --model "$M" --db "$B" -v --by tester
expect_rc "final resume" 0
expect_in "resume says so" "$T/out" "(resumed)"
expect_in "skipped parts named" "$T/err" "already committed, skipped"
dump "$A" >"$T/a.dump"
dump "$B" >"$T/b.dump"
if cmp -s "$T/a.dump" "$T/b.dump"; then ok; else
  bad "killed+resumed tables differ from the uninterrupted run"
  diff "$T/a.dump" "$T/b.dump" | head -10 >&2
fi
expect_eq "one start, 4 resumes audited" \
  "$(q "$B" "SELECT count(*) FROM audit_log WHERE action IN ('batch_start','batch_resume')")" 5

# ---- status, list, errors ----------------------------------------------------
run "$FM" batch status --db "$A" --json
expect_rc "status --json" 0
expect_eq "status JSON totals reconcile" "$(python3 -c '
import json,sys
d=json.load(open(sys.argv[1])); t=d["total"]
print(int(t["n_in"]==t["n_proposed"]+t["n_queued"]+t["n_curated"]+t["n_failed"]
      and len(d["parts"])==d["n_parts"] and d["status"]=="succeeded"))' "$T/out")" 1
run "$FM" batch list --db "$A"
expect_rc "list" 0
expect_in "list shows the run" "$T/out" "succeeded"
run "$FM" batch run --resume 1 --model "$M" --db "$A"
expect_rc "resume a finished run" 1
expect_in "finished run error" "$T/err" "already finished"
run "$FM" batch run --resume 42 --model "$M" --db "$A"
expect_rc "resume an unknown run" 1
expect_in "unknown run error" "$T/err" "no batch run 42"
run "$FM" batch status 42 --db "$A"
expect_rc "status of an unknown run" 1
run "$FM" batch run --resume 1 --batch-size 10 --model "$M" --db "$A"
expect_rc "resume with parameters" 2
M2=$T/other.fmm
sed 's/"dims": 64/"dims": 32/' train/sample.json >train/.batch-test-other.json
"$FM" train --config train/.batch-test-other.json -o "$M2" >/dev/null 2>&1
rm -f train/.batch-test-other.json
C=$T/c.db
FM_BATCH_KILL_AT=1:after_commit sh -c '"$@"' sh "$FM" batch run --model "$M" --db "$C" \
  --batch-size $BS >/dev/null 2>&1
run "$FM" batch run --resume 1 --model "$M2" --db "$C"
expect_rc "resume with another model" 1
expect_in "model checksum error" "$T/err" "checksum"

# ---- accepted mappings are not re-proposed --------------------------------------
# An analyst accepted one field's proposal (test setup: straight into the
# table) and another field's mapping to a different reference.
FA=$(q "$A" "SELECT query_field_id FROM mappings WHERE status = 'proposed' ORDER BY mapping_key LIMIT 1")
q "$A" "UPDATE mappings SET status = 'accepted', decided_by = 'alice' WHERE query_field_id = $FA"
before=$(q "$A" "SELECT mapping_key, status, decided_by FROM mappings WHERE query_field_id = $FA")
run "$FM" batch run --model "$M" --db "$A" --batch-size $BS
expect_rc "second run" 0
expect_eq "one field already curated" "$(q "$A" "SELECT sum(n_curated) FROM batch_parts WHERE batch_run_id = 2")" 1
expect_eq "accepted mapping untouched" \
  "$(q "$A" "SELECT mapping_key, status, decided_by FROM mappings WHERE query_field_id = $FA")" "$before"
expect_eq "run 2 reconciles" "$(q "$A" "SELECT sum(n_in) FROM batch_parts WHERE batch_run_id = 2")" "$NF"
expect_eq "no duplicate mappings" \
  "$(q "$A" "SELECT count(*) FROM (SELECT 1 FROM mappings GROUP BY query_field_id, ref_field_id HAVING count(*) > 1)")" 0
expect_eq "one model run row" "$(q "$A" "SELECT count(*) FROM model_runs")" 1

# ---- a locked database: clear error, nothing changed ------------------------------
dump "$A" >"$T/before.dump"
q "$A" "SELECT count(*) FROM audit_log" >>"$T/before.dump"
mkfifo "$T/hold"
sqlite3 "$A" <"$T/hold" >"$T/hold.out" 2>&1 &
holder=$!
exec 9>"$T/hold"
echo "BEGIN IMMEDIATE; INSERT INTO audit_log(actor, action, entity, entity_key) VALUES ('x','x','x','x'); SELECT 'locked';" >&9
wait_for "sqlite3 to take the write lock" 60 grep -q locked "$T/hold.out"
run "$FM" batch run --model "$M" --db "$A" --batch-size $BS --busy-timeout 100
expect_rc "locked database" 1
expect_in "locked error" "$T/err" "locked"
echo "ROLLBACK;" >&9
exec 9>&-
wait $holder 2>/dev/null
holder=
dump "$A" >"$T/after.dump"
q "$A" "SELECT count(*) FROM audit_log" >>"$T/after.dump"
if cmp -s "$T/before.dump" "$T/after.dump"; then ok; else bad "locked run changed the database"; fi

# ---- the real model (shared data) -------------------------------------------------
SH=${FM_SHARED:-../shared}
if [[ -f $SH/gold/README.md && -f train/bbg-refinitiv.json ]]; then
  R=$T/real.fmm
  if "$FM" train --config train/bbg-refinitiv.json -o "$R" >/dev/null 2>&1; then
    t0=$(date +%s.%N)
    run "$FM" batch run --model "$R" --db "$T/real.db" --quiet
    t1=$(date +%s.%N)
    expect_rc "real batch run" 0
    echo "real model: $(cat "$T/out") [wall $(python3 -c "print(round($t1-$t0,1))")s]" >&2
    expect_eq "real run reconciles" \
      "$(q "$T/real.db" "SELECT sum(n_in) = (SELECT n_fields FROM batch_runs) FROM batch_parts")" 1
  else
    bad "training the real model failed"
  fi
fi

echo "test_batch.sh: $passed passed, $failed failed" >&2
[[ $failed == 0 ]]
