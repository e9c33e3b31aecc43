#!/usr/bin/env bash
# run.sh: the review app's end-to-end tests (issue 17).  Builds a store from
# the sample in data/ (import, train, batch run), plants a description
# holding <script>, makes tokens for two analysts, a reader and an admin,
# starts `fieldmatch serve` on a free port (waiting on its log with a
# deadline) and runs run.mjs, which drives Debian's chromium with
# playwright-core.  Skips (77) with a clear message when node, the npm
# packages (scripts/setup.sh: npm ci in tests/e2e) or chromium are missing
# or chromium cannot start.  Screenshots go to $FM_E2E_OUT (default
# build/e2e).
#
# Run by ctest from the repo root; by hand:
#   FIELDMATCH=build/fieldmatch bash tests/e2e/run.sh
set -u
FM=${FIELDMATCH:-build/fieldmatch}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${FM_E2E_OUT:-$(pwd)/build/e2e}
CHROME=${FM_CHROMIUM:-/usr/bin/chromium}
command -v node >/dev/null || { echo "SKIP: node is not installed (scripts/setup.sh)"; exit 77; }
[[ -d $HERE/node_modules/playwright-core && -d $HERE/node_modules/axe-core ]] ||
  { echo "SKIP: tests/e2e/node_modules missing: run scripts/setup.sh (npm ci in tests/e2e)"; exit 77; }
[[ -x $CHROME ]] || { echo "SKIP: $CHROME missing: install Debian's chromium (scripts/setup.sh)"; exit 77; }
"$FM" --help | grep -q serve || { echo "SKIP: built without HTTP"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/fm_e2e.XXXXXX") || exit 1
PID=
trap '[[ -n $PID ]] && kill $PID 2>/dev/null; rm -rf "$T"' EXIT
source "$HERE/../cli/lib.sh"
mkdir -p "$OUT"

DB=$T/db.sqlite
"$FM" import --config train/sample.json --db "$DB" >/dev/null 2>&1 || { echo "import failed"; exit 1; }
"$FM" train --config train/sample.json -o "$T/s.fmm" >/dev/null 2>&1 || { echo "train failed"; exit 1; }
"$FM" batch run --model "$T/s.fmm" --db "$DB" >/dev/null 2>&1 || { echo "batch run failed"; exit 1; }
# A vendor description with markup: the app must show it as text.  The field
# is the last of the queue so the tests that walk the queue from its head
# do not reach it.
XSS=$(python3 - "$DB" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
fid, ident = db.execute("SELECT q.field_id, q.id FROM review_queue rq JOIN fields q ON q.field_id ="
                        " rq.query_field_id WHERE rq.resolved_at IS NULL"
                        " ORDER BY rq.uncertainty, rq.queued_at DESC, q.vendor DESC, q.id DESC LIMIT 1").fetchone()
db.execute("UPDATE fields SET description = ? WHERE field_id = ?",
           ('<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2"> & "quoted" <b>bold</b>', fid))
db.commit()
print(ident)
EOF
)
export FM_E2E_ANA=$("$FM" token create --db "$DB" --role analyst --owner ana 2>/dev/null)
export FM_E2E_BOB=$("$FM" token create --db "$DB" --role analyst --owner bob 2>/dev/null)
export FM_E2E_READER=$("$FM" token create --db "$DB" --role reader --owner rita 2>/dev/null)
export FM_E2E_ADMIN=$("$FM" token create --db "$DB" --role admin --owner ada 2>/dev/null)
"$FM" serve --model "$T/s.fmm" --db "$DB" --listen 127.0.0.1:0 --threads 4 2>"$T/log" & PID=$!
wait_for "the server to log its port" 60 grep -q "listening on port" "$T/log" || { cat "$T/log"; exit 1; }
PORT=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$T/log")
export FM_E2E_BASE=http://127.0.0.1:$PORT FM_E2E_DB=$DB FM_E2E_OUT=$OUT FM_E2E_XSS=$XSS
export FM_E2E_FIELDMATCH=$FM FM_E2E_CHROMIUM=$CHROME FM_E2E_MODEL=$T/s.fmm
node "$HERE/run.mjs"
rc=$?
[[ $rc != 0 && $rc != 77 ]] && tail -n 20 "$T/log" >&2
exit $rc
