#!/usr/bin/env bash
# test_import.sh: `fieldmatch import` loads a config's dictionaries into the
# store; a changed dictionary becomes a new version that flags, and never
# deletes, the mappings of changed or removed fields; bad input changes
# nothing.
#
#   FIELDMATCH=build/fieldmatch bash tests/cli/test_import.sh
set -u

FM=${FIELDMATCH:-build/fieldmatch}
[[ -x $FM ]] || { echo "fieldmatch binary not found: $FM" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "sqlite3 CLI missing: skipped"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/fm_import.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
q() { sqlite3 "$T/fm.db" "$1"; }

# A private copy of the sample, so the test can change a dictionary.
S=data/sample
mkdir -p "$T/s/refinitiv" "$T/s/bloomberg"
cp $S/refinitiv/RDMFieldDictionary.sample $S/refinitiv/fundamentals.csv "$T/s/refinitiv/"
cp $S/bloomberg/fields.csv $S/bloomberg/datalicense.csv "$T/s/bloomberg/"
sed -e "s|\.\./data/sample/|$T/s/|g" -e '/train_pairs/d' train/sample.json >"$T/c.json"

run "$FM" import --config "$T/c.json" --db "$T/fm.db" --by tester
expect_rc "first import" 0
expect_in "first import adds" "$T/out" "reference version 1: 308 added"
expect_in "first import adds queries" "$T/out" "query     version 1: 364 added"
expect_eq "fields" "$(q 'SELECT count(*) FROM fields')" 672
expect_eq "audit rows" "$(q "SELECT count(*) FROM audit_log WHERE action='import' AND actor='tester'")" 2

run "$FM" import --config "$T/c.json" --db "$T/fm.db"
expect_rc "same again" 0
expect_in "same again is a no-op" "$T/out" "reference unchanged (version 1, 308 fields)"
expect_eq "no new version" "$(q 'SELECT count(*) FROM dictionaries')" 2

# Two analyst decisions, written as the store writes them (the review CLI
# has its own tests); then change TRDPRC_1's description and drop BID.
ref_of() { q "SELECT field_id FROM fields WHERE vendor='refinitiv' AND id='$1'"; }
qry_of() { q "SELECT field_id FROM fields WHERE vendor='bloomberg' AND id='$1'"; }
q "INSERT INTO mappings(mapping_key, query_field_id, ref_field_id, status, decided_by)
   VALUES ('m_a', $(qry_of PX_LAST), $(ref_of TRDPRC_1), 'accepted', 'ana'),
          ('m_b', $(qry_of PX_BID), $(ref_of BID), 'accepted', 'ana')"
python3 - "$T/s/refinitiv/RDMFieldDictionary.sample" <<'PY'
import sys
p = sys.argv[1]
lines = open(p, encoding="utf-8").read().split("\n")
out = []
for l in lines:
    if l.split() and l.split()[0] == "BID":
        continue
    out.append(l)
    if l.split() and l.split()[0] == "TRDPRC_1":
        out.append("! changed: last trade price, now in minor units")
open(p, "w", encoding="utf-8").write("\n".join(out))
PY
run "$FM" import --config "$T/c.json" --db "$T/fm.db" --by tester
expect_rc "changed import" 0
expect_in "new version" "$T/out" "reference version 2"
expect_in "one removed" "$T/out" "1 removed"
expect_eq "decisions kept" "$(q "SELECT count(*) FROM mappings WHERE status='accepted'")" 2
expect_eq "changed flagged" "$(q "SELECT flag FROM mappings WHERE mapping_key='m_a'")" field_changed
expect_eq "removed flagged" "$(q "SELECT flag FROM mappings WHERE mapping_key='m_b'")" field_removed
expect_eq "BID kept as removed" "$(q "SELECT status FROM fields WHERE id='BID'")" removed

# Bad input: nothing changes.
before=$(q 'SELECT count(*) FROM audit_log')
run "$FM" import --db "$T/fm.db"
expect_rc "no config" 2
run "$FM" import --config "$T/missing.json" --db "$T/fm.db"
expect_rc "missing config" 1
expect_in "missing config named" "$T/err" "missing.json"
printf 'COA Code,Name\n"BROKEN,x\n' >"$T/s/refinitiv/fundamentals.csv"
run "$FM" import --config "$T/c.json" --db "$T/fm.db"
expect_rc "malformed csv" 1
expect_in "malformed csv names the file" "$T/err" "fundamentals.csv"
expect_eq "nothing written" "$(q 'SELECT count(*) FROM audit_log')" "$before"
cp $S/refinitiv/fundamentals.csv "$T/s/refinitiv/"
# Invalid UTF-8 never enters the store: a bad byte is refused, naming the
# file, line and column, and nothing is written.
python3 - "$T/s/bloomberg/fields.csv" <<'PY'
import sys
p = sys.argv[1]
lines = open(p, 'rb').read().split(b'\n')
lines[4] = lines[4][:6] + b'\xff' + lines[4][6:]
open(p, 'wb').write(b'\n'.join(lines))
PY
run "$FM" import --config "$T/c.json" --db "$T/fm.db"
expect_rc "a bad byte" 1
expect_in "bad byte: file, line and column named" "$T/err" "fields.csv:5: invalid UTF-8 (byte 0xFF at column 7, field 'mnemonic')"
expect_eq "bad byte: nothing written" "$(q 'SELECT count(*) FROM audit_log')" "$before"
cp $S/bloomberg/fields.csv "$T/s/bloomberg/"
run "$FM" import --config "$T/c.json" --db "$T/fm.db" --by "$(printf 'an\xe9')"
expect_rc "an option that is not UTF-8" 2
expect_in "option named" "$T/err" "--by: not valid UTF-8 (byte 0xE9 at offset 2)"
expect_eq "bad option: nothing written" "$(q 'SELECT count(*) FROM audit_log')" "$before"
run "$FM" import --config "$T/c.json" --db "$T/nodir/x.db"
expect_rc "unwritable db" 1
expect_in "db named" "$T/err" "x.db"

# A database from a newer fieldmatch is refused.
q 'PRAGMA user_version = 999'
run "$FM" import --config "$T/c.json" --db "$T/fm.db"
expect_rc "newer schema" 1
expect_in "newer schema message" "$T/err" "newer than this fieldmatch"

echo "test_import: $passed passed, $failed failed"
[[ $failed == 0 ]]
