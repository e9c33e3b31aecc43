#!/usr/bin/env bash
# test_review_none.sh: the terminal decision no_equivalent end to end on the
# sample data: 'review none' takes a field out of the queue with its audit
# row, a later pick supersedes it, it survives a re-import of the
# dictionaries, the export carries it as a row with an empty reference,
# 'review export-pairs --none-output' writes it to its own file, a batch run
# leaves it alone, and 'reject FIELD -' withdraws it (back to the queue).
#
# Run by ctest from the repo root with FIELDMATCH = the binary; by hand:
#   FIELDMATCH=build/fieldmatch bash tests/cli/test_review_none.sh
set -u

FM=${FIELDMATCH:-build/fieldmatch}
if [[ ! -x $FM ]]; then
  echo "fieldmatch binary not found: $FM (set FIELDMATCH)" >&2
  exit 1
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/fm_none.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DB=$T/none.db
M=$T/sample.fmm
run "$FM" import --config train/sample.json --db "$DB" --by setup
expect_rc "import sample" 0
run "$FM" train --config train/sample.json -o "$M"
expect_rc "train" 0
run "$FM" batch run --model "$M" --db "$DB"
expect_rc "batch run" 0
run "$FM" review queue --db "$DB" --json --limit 1000
expect_rc "queue" 0
F=$(python3 -c "import json; print(json.load(open('$T/out'))['items'][0]['field']['id'])")
N0=$(python3 -c "import json; print(json.load(open('$T/out'))['total'])")
expect "a queued field to decide" test -n "$F"

# ---- none: out of the queue, audited --------------------------------------
run "$FM" review none "$F" --db "$DB" --by ana --comment "no RDM counterpart"
expect_rc "review none" 0
expect_in "review none says so" "$T/out" "no equivalent: $F"
run "$FM" review queue --db "$DB" --json --limit 1000
expect "none leaves the queue" python3 -c "
import json; d=json.load(open('$T/out'))
assert d['total']==$N0-1 and '$F' not in [i['field']['id'] for i in d['items']], d['total']"
run "$FM" review show "$F" --db "$DB"
expect_in "show: no equivalent" "$T/out" "no equivalent: decided by ana"
run "$FM" review show "$F" --db "$DB" --json
expect "show JSON: no_equivalent member" python3 -c "
import json; d=json.load(open('$T/out'))
n=d['no_equivalent']; assert n['status']=='no_equivalent' and n['ref'] is None and n['by']=='ana', n
assert d['accepted'] is None"
run "$FM" review history "$F" --db "$DB" --json
expect "history: the no_equivalent step" python3 -c "
import json; d=json.load(open('$T/out'))
assert d[-1]['action']=='no_equivalent' and d[-1]['after']['status']=='no_equivalent', d[-1]
assert d[-1]['after']['comment']=='no RDM counterpart'"
# none again is idempotent in state, one more audit row; usage errors.
run "$FM" review none "$F" EXTRA --db "$DB"
expect_rc "none takes one field" 2

# ---- conditional decisions see it -------------------------------------------
run "$FM" review none "$F" --db "$DB" --by bob --expect none
expect_rc "expect none fails on a no_equivalent field" 1
expect_in "conflict message" "$T/err" "expected none, now no equivalent"

# ---- export: a row with an empty reference ----------------------------------
run "$FM" export --db "$DB" --status no_equivalent --format csv
expect_rc "export --status no_equivalent" 0
expect "export CSV: one row, empty ref" python3 -c "
import csv; rows=list(csv.DictReader(open('$T/out')))
assert len(rows)==1 and rows[0]['query_id']=='$F' and rows[0]['ref_id']=='' and rows[0]['status']=='no_equivalent', rows"
run "$FM" export --db "$DB" --status all --format jsonl
expect "export JSONL carries it" python3 -c "
import json; rows=[json.loads(l) for l in open('$T/out')]
r=[x for x in rows if x['status']=='no_equivalent']; assert len(r)==1 and r[0]['ref_id'] is None and r[0]['query_id']=='$F', r"

run "$FM" export --db "$DB" --status all --format csv -o "$T/all.csv"
run "$FM" import-mappings "$T/all.csv" --db "$DB" --dry-run
expect_rc "an export with a no_equivalent row imports (the row is skipped)" 0

# ---- export-pairs: its own file ---------------------------------------------
run "$FM" review export-pairs --db "$DB" -o "$T/pairs.tsv" --none-output "$T/none.tsv"
expect_rc "export-pairs --none-output" 0
expect "none file: header + the field" python3 -c "
lines=open('$T/none.tsv').read().splitlines()
assert lines[0]=='query_id\tquery_vendor\tby\tat' and len(lines)==2 and lines[1].startswith('$F\t'), lines"
expect "pairs file has no empty reference" python3 -c "
assert all(l.split('\t')[1] for l in open('$T/pairs.tsv').read().splitlines()[1:])"

# ---- a batch run leaves it decided ------------------------------------------
run "$FM" batch run --model "$M" --db "$DB"
expect_rc "second batch run" 0
run "$FM" review queue --db "$DB" --json --limit 1000
expect "batch run: still out of the queue" python3 -c "
import json; d=json.load(open('$T/out')); assert '$F' not in [i['field']['id'] for i in d['items']]"

# ---- a re-import keeps it -----------------------------------------------------
run "$FM" import --config train/sample.json --db "$DB" --by setup
expect_rc "re-import" 0
run "$FM" export --db "$DB" --status no_equivalent --format csv
expect "re-import keeps it" test "$(tail -n +2 "$T/out" | wc -l)" == 1

# ---- reversible: pick supersedes, none again supersedes the pick -------------
run "$FM" review show "$F" --db "$DB" --json
R=$(python3 -c "import json; print(json.load(open('$T/out'))['candidates'][0]['ref']['id'])")
run "$FM" review pick "$F" "$R" --db "$DB" --by carl --expect no_equivalent
expect_rc "pick over no_equivalent (expected)" 0
run "$FM" review show "$F" --db "$DB" --json
expect "pick supersedes it" python3 -c "
import json; d=json.load(open('$T/out'))
assert d['accepted']['ref']['id']=='$R' and d['no_equivalent'] is None
assert [x['status'] for x in d['decisions'] if x['ref'] is None]==['superseded']"
run "$FM" review none "$F" --db "$DB" --by dan
expect_rc "none over the pick" 0
run "$FM" review show "$F" --db "$DB" --json
expect "none supersedes the pick" python3 -c "
import json; d=json.load(open('$T/out'))
assert d['accepted'] is None and d['no_equivalent']['by']=='dan'
assert [x['status'] for x in d['decisions'] if x['ref'] and x['ref']['id']=='$R']==['superseded']"
run "$FM" review history "$F" --db "$DB"
expect_in "history text names it" "$T/out" "(none)"

# ---- withdraw: reject FIELD - puts it back in the queue ----------------------
run "$FM" review reject "$F" - --db "$DB" --by ana
expect_rc "reject -" 0
run "$FM" review queue --db "$DB" --json --limit 1000
expect "withdrawn: back in the queue" python3 -c "
import json; d=json.load(open('$T/out')); assert '$F' in [i['field']['id'] for i in d['items']]"
run "$FM" review reject "$F" - --db "$DB" --by ana
expect_rc "reject - on a field not marked" 1
expect_in "reject - names the problem" "$T/err" "not marked no_equivalent"

echo "test_review_none.sh: $passed passed, $failed failed" >&2
[[ $failed == 0 ]]
