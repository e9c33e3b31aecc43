#!/usr/bin/env bash
# test_nodb.sh: a store is opened, never created by accident (issue 15):
# every command that reads or changes a store, given a --db that does not
# exist, exits non-zero, prints "fieldmatch: no database at 'PATH' (create
# one with 'fieldmatch import')" and leaves no file (no -wal/-shm either);
# snapshot run does not create or touch the lake.  The commands that may
# create one (import, a new batch run, token create; docs/store.md) do.
# Also: the option parser's uniform usage errors (exit 2).
#   FIELDMATCH=build/fieldmatch bash tests/cli/test_nodb.sh
set -u
FM=${FIELDMATCH:-build/fieldmatch}
if [[ ! -x $FM ]]; then
  echo "fieldmatch binary not found: $FM (set FIELDMATCH)" >&2
  exit 1
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/fm_nodb.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

run "$FM" train --config train/sample.json -o "$T/s.fmm" --quiet
expect_rc "train sample" 0
M=$T/s.fmm
DB=$T/missing.db
WANT="fieldmatch: no database at '$DB' (create one with 'fieldmatch import')"

# nothing named missing.db* anywhere under $T, and the lake as it was
nothing_left() { [[ -z $(find "$T" -name 'missing.db*') ]]; }
refused() { # DESCRIPTION: the last run was refused for the missing store
  expect_rc "$1: exit" 1
  expect_in "$1: path named" "$T/err" "$WANT"
  expect "$1: no file left" nothing_left
}

run "$FM" review queue --db "$DB"
refused "review queue"
run "$FM" review accept PX_LAST TRDPRC_1 --db "$DB"
refused "review accept"
run "$FM" export --db "$DB" --status all
refused "export"
run "$FM" export --db "$DB" --status all -o "$T/out.csv"
refused "export -o"
expect "export -o: no output" test ! -e "$T/out.csv"

# snapshot run must not create the lake ...
run "$FM" snapshot run --db "$DB" --root "$T/lake"
refused "snapshot run"
expect "snapshot run: lake not created" test ! -e "$T/lake"
# ... nor change one that is there
mkdir -p "$T/lake2/mappings"
echo keep >"$T/lake2/catalog.json"
echo part >"$T/lake2/mappings/part.csv.gz"
touch -d '2020-01-01 00:00' "$T/lake2/catalog.json" "$T/lake2/mappings/part.csv.gz" \
  "$T/lake2/mappings" "$T/lake2"
lake_state() { find "$T/lake2" -printf '%p %s %T@\n' | sort; }
before=$(lake_state)
run "$FM" snapshot run --db "$DB" --root "$T/lake2"
refused "snapshot run over a lake"
expect_eq "snapshot run: lake unchanged" "$(lake_state)" "$before"
run "$FM" snapshot status --db "$DB"
refused "snapshot status"

if "$FM" --help | grep -q serve; then
  run "$FM" serve --db "$DB" --model "$M" --listen 127.0.0.1:0 --access-log off
  refused "serve"
  run "$FM" serve --db "$DB" --model "$M" --listen 127.0.0.1:0 --snapshot-root "$T/lake3"
  refused "serve --snapshot-root"
  expect "serve: no lake" test ! -e "$T/lake3"
fi
run "$FM" match --model "$M" --db "$DB" PX_LAST
refused "match --db"
run "$FM" batch status --db "$DB"
refused "batch status"
run "$FM" batch list --db "$DB"
refused "batch list"
run "$FM" batch run --resume 1 --model "$M" --db "$DB"
refused "batch run --resume"
run "$FM" token list --db "$DB"
refused "token list"
run "$FM" token revoke --db "$DB" --id 1
refused "token revoke"
run "$FM" provision list --db "$DB"
refused "provision list"
run "$FM" provision request --db "$DB" --root "$T/lake4" --dataset fields
refused "provision request"
expect "provision request: no lake" test ! -e "$T/lake4"
printf 'query_id,ref_id\nPX_LAST,TRDPRC_1\n' >"$T/m.csv"
run "$FM" import-mappings "$T/m.csv" --db "$DB"
refused "import-mappings"
# the default --db (fieldmatch.db in the working directory) is no exception
FMABS=$(realpath "$FM")
(cd "$T" && "$FMABS" review queue >out 2>err)
expect "default --db: refused" test $? -eq 1
expect_in "default --db: named" "$T/err" "no database at 'fieldmatch.db'"
expect "default --db: no file" test ! -e "$T/fieldmatch.db"

# The commands that create one.
run "$FM" token create --db "$T/tok.db" --role reader --owner rita
expect_rc "token create on a new path" 0
expect "token create: made the store" test -s "$T/tok.db"
run "$FM" batch run --model "$M" --db "$T/batch.db" --quiet
expect_rc "batch run on a new path" 0
run "$FM" batch status --db "$T/batch.db"
expect_rc "batch status after" 0
run "$FM" import --config train/sample.json --db "$T/imp.db" --quiet
expect_rc "import on a new path" 0
run "$FM" review queue --db "$T/imp.db"
expect_rc "review queue after import" 0

# ---- the option parser: uniform usage errors, exit 2 -----------------------
run "$FM" review queue --db "$T/imp.db" --limit abc
expect_rc "--limit abc" 2
expect_in "--limit abc explained" "$T/err" "fieldmatch review: option --limit needs an integer >= 1, got 'abc'"
run "$FM" export --db "$T/imp.db" --status all --with-candidates 0
expect_rc "--with-candidates 0" 2
expect_in "--with-candidates 0 explained" "$T/err" "option --with-candidates needs an integer in 1..1000, got '0'"
run "$FM" batch run --model "$M" --db "$T/batch.db" --margin -1
expect_rc "--margin -1" 2
expect_in "--margin -1 explained" "$T/err" "option --margin needs a number >= 0, got '-1'"
run "$FM" export --db "$T/imp.db" --status all --x
expect_rc "unknown option" 2
expect_in "unknown option named" "$T/err" "fieldmatch export: unknown option '--x'"
run "$FM" export --db "$T/imp.db" --status
expect_rc "missing value" 2
expect_in "missing value named" "$T/err" "option --status needs a value"
run "$FM" export --db "$T/imp.db"
expect_rc "required option" 2
expect_in "required option named" "$T/err" "--status is required"
run "$FM" export --db="$T/imp.db" --status=all --crlf=1
expect_rc "flag with a value" 2
expect_in "flag with a value explained" "$T/err" "option --crlf takes no value"
run "$FM" export --db="$T/imp.db" --status=all
expect_rc "--name=value" 0
run "$FM" token list --db "$T/tok.db" extra
expect_rc "unexpected argument" 2
expect_in "unexpected argument named" "$T/err" "unexpected argument 'extra'"
# --help comes from the same table: every option is listed
for cmd in import export train map match eval import-mappings review snapshot token provision \
  "batch run" "batch status"; do
  run "$FM" $cmd --help
  expect_rc "$cmd --help" 0
  expect_in "$cmd --help: usage" "$T/out" "usage: fieldmatch ${cmd%% *}"
  expect_in "$cmd --help: options" "$T/out" "  -h, --help"
done
run "$FM" export --help
expect_in "export --help lists --with-candidates" "$T/out" "--with-candidates K"
expect_in "export --help: the one default" "$T/out" "(default fieldmatch.db)"

echo "test_nodb: $passed passed, $failed failed"
[[ $failed == 0 ]]
