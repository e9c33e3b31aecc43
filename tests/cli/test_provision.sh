#!/usr/bin/env bash
# test_provision.sh: provisioning end to end (docs/provision.md).
#   serve --snapshot-root: the scheduler catches up missed snapshot hours at
#   start; POST a request -> poll -> download over HTTP with curl: the
#   checksum headers match the bytes, the file gunzips and parses to exactly
#   the source rows; another reader gets 404, an admin sees it; bad dataset,
#   filter or JSON -> 400 with the one error body; a failed request's
#   download -> 409; expires_at = ready + the server's TTL, and a request
#   past its expiry loses its file (410, status expired);
#   SIGTERM during a job exits 0 with no temp file, a request left running
#   is picked up by the next server; the CLI request/status/list/fetch.
#   FIELDMATCH=build/fieldmatch bash tests/cli/test_provision.sh
set -u
FM=${FIELDMATCH:-build/fieldmatch}
command -v curl >/dev/null || { echo "curl missing: skip"; exit 77; }
command -v python3 >/dev/null || { echo "python3 missing: skip"; exit 77; }
"$FM" --help | grep -q serve || { echo "built without HTTP: skip"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/fm_prov.XXXXXX") || exit 1
PID=
trap '[[ -n $PID ]] && kill $PID 2>/dev/null; [[ -n ${KEEP:-} ]] || rm -rf "$T"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$FM" train --config train/sample.json -o "$T/s.fmm" >/dev/null 2>&1 || { echo "train failed"; exit 1; }
DB=$T/db.sqlite
ROOT=$T/lake
RITA=$("$FM" token create --db "$DB" --role reader --owner rita 2>/dev/null)
SAM=$("$FM" token create --db "$DB" --role reader --owner sam 2>/dev/null)
ADA=$("$FM" token create --db "$DB" --role admin --owner ada 2>/dev/null)
python3 - "$DB" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("INSERT INTO dictionaries VALUES (1,'bloomberg','bbg','query',1,'x',3,'t','t')")
db.execute("INSERT INTO dictionaries VALUES (2,'refinitiv','rdm','reference',1,'y',3,'t','t')")
rows = [(1, 'bloomberg', 'PX_BID', 'query', 'Bid, "best"', 1),
        (2, 'bloomberg', 'PX_LAST', 'query', 'Last\nline', 1),
        (3, 'bloomberg', 'PX_VOL', 'query', '', 1),
        (4, 'refinitiv', 'BID', 'reference', 'Bid é', 2),
        (5, 'refinitiv', 'TRDPRC_1', 'reference', 'Last', 2),
        (6, 'refinitiv', 'ACVOL_1', 'reference', 'Volume', 2)]
# plenty of fields, so a job takes long enough to be interrupted
rows += [(7 + i, 'bloomberg', 'F%06d' % i, 'query', 'filler field %d' % i, 1) for i in range(150000)]
db.executemany("INSERT INTO fields (field_id, vendor, id, role, name, dict_id, content_hash)"
               " VALUES (?,?,?,?,?,?,'h')", rows)
db.execute("INSERT INTO mappings (mapping_key, query_field_id, ref_field_id, status, score, comment)"
           " VALUES ('m_1', 1, 4, 'accepted', 0.875, 'ok, \"fine\"')")
db.execute("INSERT INTO mappings (mapping_key, query_field_id, ref_field_id, status, score)"
           " VALUES ('m_2', 2, 5, 'proposed', NULL)")
db.execute("INSERT INTO mappings (mapping_key, query_field_id, ref_field_id, status, score)"
           " VALUES ('m_3', 3, 6, 'accepted', 2.5)")
# the snapshot-range requests below concatenate gzip'd CSV partitions: keep
# the mappings job at csv.gz (new stores snapshot as Parquet)
db.execute("UPDATE snapshot_jobs SET format = 'csv.gz' WHERE name = 'mappings'")
db.commit()
EOF
# The last snapshot of the mappings job is 3 hours old.
NOW=$(date -u +%s)
AGO=$(date -u -d "@$((NOW - 3 * 3600))" +%Y-%m-%dT%H)
"$FM" snapshot run --db "$DB" --root "$ROOT" --job mappings --at "$AGO" >/dev/null 2>&1
expect "old snapshot written" test -d "$ROOT/mappings/dt=${AGO%T*}/hr=${AGO#*T}"

start() {
  # a restart must not read the previous server's port from the old log:
  # remove it first, so the wait below sees only the new server's line
  rm -f "$T/log"
  "$FM" serve --model "$T/s.fmm" --db "$DB" --listen 127.0.0.1:0 --access-log off \
    --snapshot-root "$ROOT" --provision-ttl "$1" --provision-poll-ms 200 2>"$T/log" & PID=$!
  wait_for "the server to log its port" 60 grep -q "listening on port" "$T/log"
  PORT=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$T/log")
  B=http://127.0.0.1:$PORT
}
start 3600
expect "server started" test -n "$PORT"
code() { curl -s -o "$T/body" -w '%{http_code}' "$@"; }
J=(-H "Content-Type: application/json")
as() { local who=$1; shift; code -H "Authorization: Bearer $who" "$@"; }
jget() { python3 -c "import json,sys; print(json.load(open('$T/body'))$1)"; }

# ---- the scheduler caught up the missed hours -------------------------------
caught_up() {
  [[ $(python3 -c "import sqlite3; print(sqlite3.connect('$DB').execute(\"SELECT count(*) FROM snapshot_runs WHERE job='mappings' AND status='succeeded'\").fetchone()[0])") -ge 4 ]]
}
wait_for "4 succeeded mappings snapshots (the catch-up)" 60 caught_up
for k in 2 1 0; do
  H=$(date -u -d "@$((NOW - k * 3600))" +%Y-%m-%dT%H)
  expect "catch-up partition $H" test -f "$ROOT/mappings/dt=${H%T*}/hr=${H#*T}/_SUCCESS"
done

# ---- request, poll, download -----------------------------------------------
settled() { # settled ID WHO: ready, failed or expired (status in $ST, body in $T/body)
  as "$2" "$B/v1/provisioning/requests/$1" >/dev/null
  ST=$(jget "['status']")
  [[ $ST == ready || $ST == failed || $ST == expired ]]
}
poll() { wait_for "request $1 to be ready or failed" "${3:-60}" settled "$1" "$2"; } # ID WHO [SECS]
expect "POST 202" test "$(as "$RITA" "${J[@]}" -d '{"dataset":"mappings","filters":{"status":"accepted"},"format":"jsonl.gz"}' "$B/v1/provisioning/requests")" = 202
ID=$(jget "['id']")
expect "pending on creation" test "$(jget "['status']")" = pending
expect "id is 128-bit hex" python3 -c "import re,sys; sys.exit(not re.fullmatch('[0-9a-f]{32}', '$ID'))"
poll "$ID" "$RITA"
expect "ready" test "$ST" = ready
expect "rows 2" test "$(jget "['rows']")" = 2
expect "expires_at = finished_at + the server's TTL" python3 - "$T/body" 3600 <<'EOF'
import datetime, json, sys
r = json.load(open(sys.argv[1]))
t = lambda s: datetime.datetime.strptime(s, '%Y-%m-%dT%H:%M:%S.%fZ')
sys.exit((t(r['expires_at']) - t(r['finished_at'])).total_seconds() != int(sys.argv[2]))
EOF
SHA=$(jget "['sha256']")
expect "download 200" test "$(as "$RITA" -D "$T/hdr" "$B/v1/provisioning/requests/$ID/download")" = 200
cp "$T/body" "$T/dl.jsonl.gz"
expect "content-type gzip" grep -qi '^Content-Type: application/gzip' "$T/hdr"
expect "content-length" grep -qi "^Content-Length: $(stat -c %s "$T/dl.jsonl.gz")" "$T/hdr"
expect "X-Checksum-SHA256 = bytes" grep -qi "^X-Checksum-SHA256: $(sha256sum "$T/dl.jsonl.gz" | cut -d' ' -f1)" "$T/hdr"
expect "checksum = status" test "$(sha256sum "$T/dl.jsonl.gz" | cut -d' ' -f1)" = "$SHA"
B64=$(python3 -c "import base64,hashlib; print(base64.b64encode(hashlib.sha256(open('$T/dl.jsonl.gz','rb').read()).digest()).decode())")
expect "Digest header" grep -q "^Digest: sha-256=$B64" "$T/hdr"
expect "file = source rows" python3 - "$DB" "$T/dl.jsonl.gz" <<'EOF'
import gzip, json, sqlite3, sys
db = sqlite3.connect(sys.argv[1]); db.row_factory = sqlite3.Row
want = [dict(r) for r in db.execute("SELECT * FROM mappings WHERE status='accepted' ORDER BY mapping_id")]
got = [json.loads(l) for l in gzip.open(sys.argv[2], 'rt', encoding='utf-8')]
sys.exit(got != want)
EOF
# CSV of fields by role: header + rows, parsed back with the csv module.
as "$RITA" "${J[@]}" -d '{"dataset":"fields","filters":{"role":"reference"}}' "$B/v1/provisioning/requests" >/dev/null
ID2=$(jget "['id']"); poll "$ID2" "$RITA"
as "$RITA" "$B/v1/provisioning/requests/$ID2/download" >/dev/null; cp "$T/body" "$T/f.csv.gz"
expect "csv = source rows" python3 - "$DB" "$T/f.csv.gz" <<'EOF'
import csv, gzip, io, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
cur = db.execute("SELECT * FROM fields WHERE role='reference' ORDER BY field_id")
want = [[d[0] for d in cur.description]] + [['' if v is None else str(v) for v in r] for r in cur]
got = list(csv.reader(io.StringIO(gzip.open(sys.argv[2], 'rt', encoding='utf-8', newline='').read())))
sys.exit(got != want)
EOF

# ---- who may see what ----------------------------------------------------
expect "other reader: 404" test "$(as "$SAM" "$B/v1/provisioning/requests/$ID")" = 404
expect "404 body code 1250" test "$(jget "['code']")" = 1250
cp "$T/body" "$T/other"
as "$SAM" "$B/v1/provisioning/requests/0123456789abcdef0123456789abcdef" >/dev/null
expect "same answer as a missing id" test "$(jget "['hint']")" = "$(python3 -c "import json; print(json.load(open('$T/other'))['hint'])")"
expect "other reader: no download" test "$(as "$SAM" "$B/v1/provisioning/requests/$ID/download")" = 404
expect "other reader's list is empty" test "$(as "$SAM" "$B/v1/provisioning/requests")" = 200
expect "... empty" test "$(jget "['requests'].__len__()")" = 0
as "$RITA" "$B/v1/provisioning/requests" >/dev/null
expect "own list" test "$(jget "['requests'].__len__()")" = 2
expect "admin reads it" test "$(as "$ADA" "$B/v1/provisioning/requests/$ID")" = 200
expect "no token: 401" test "$(code "$B/v1/provisioning/requests/$ID")" = 401

# ---- bad requests --------------------------------------------------------
bad400() { # body code-want detail-substring
  local c; c=$(as "$RITA" "${J[@]}" -d "$1" "$B/v1/provisioning/requests")
  expect "400 for $1" test "$c" = 400
  expect "code $2 for $1" test "$(jget "['code']")" = "$2"
  expect "detail for $1" grep -q "$3" "$T/body"
  expect "hint for $1" python3 -c "import json; assert json.load(open('$T/body'))['hint']"
}
bad400 '{"dataset":"secrets"}' 1001 "unknown dataset"
bad400 '{"dataset":"mappings","filters":{"1=1; DROP TABLE mappings; --":"x"}}' 1001 "unknown filter"
bad400 '{"dataset":"mappings","filters":{"status":"maybe"}}' 1001 "not a valid value"
# invalid UTF-8 never enters the store: a body that is not UTF-8 is not JSON (jansson)
bad400 "$(printf '{"dataset":"mappings","filters":{"status":"acc\xffepted"}}')" 1000 "decode byte 0xff"
bad400 '{"dataset":"mappings","format":"xlsx"}' 1001 "unknown format"
bad400 '{"dataset":"mappings","sql":"SELECT 1"}' 1000 "unknown member"
bad400 '{"dataset":' 1000 "expected"
expect "mappings untouched" test "$(python3 -c "import sqlite3; print(sqlite3.connect('$DB').execute('SELECT count(*) FROM mappings').fetchone()[0])")" = 3

# ---- a failed request: 409 on download -------------------------------------
as "$RITA" "${J[@]}" -d '{"dataset":"snapshot","filters":{"job":"mappings","from":"2001-01-01T00","to":"2001-01-01T01"}}' "$B/v1/provisioning/requests" >/dev/null
ID3=$(jget "['id']"); poll "$ID3" "$RITA"
expect "failed" test "$ST" = failed
expect "error says why" grep -q "no succeeded partition" "$T/body"
expect "409 while not ready" test "$(as "$RITA" "$B/v1/provisioning/requests/$ID3/download")" = 409
# the snapshot dataset: the catch-up partitions, concatenated
H0=$(date -u -d "@$((NOW - 3 * 3600))" +%Y-%m-%dT%H); H1=$(date -u -d "@$NOW" +%Y-%m-%dT%H)
as "$RITA" "${J[@]}" -d "{\"dataset\":\"snapshot\",\"filters\":{\"job\":\"mappings\",\"from\":\"$H0\",\"to\":\"$H1\"}}" "$B/v1/provisioning/requests" >/dev/null
ID4=$(jget "['id']"); poll "$ID4" "$RITA"
expect "snapshot range ready" test "$ST" = ready
expect "4 partitions x 3 rows" test "$(jget "['rows']")" = 12
as "$RITA" "$B/v1/provisioning/requests/$ID4/download" >/dev/null
expect "one header, 12 rows" test "$(gunzip -c "$T/body" | python3 -c "import csv,sys; print(len(list(csv.reader(sys.stdin))))")" = 13

# ---- expiry -----------------------------------------------------------------
# The worker expires what is past expires_at on every wake (at least every
# --provision-poll-ms).  A short TTL would race the downloads above on a
# busy machine, so the first request's expiry is moved into the past.
python3 -c "import sqlite3; c=sqlite3.connect('$DB'); c.execute(\"UPDATE provision_requests SET expires_at='2000-01-01T00:00:00.000Z' WHERE id='$ID'\"); c.commit()"
F=$ROOT.provision/$ID.jsonl.gz
wait_for "the worker to remove the expired file" 60 test ! -f "$F"
# the worker removes the file first, then marks the row (docs/provision.md)
status_is() { as "$2" "$B/v1/provisioning/requests/$1" >/dev/null; [[ $(jget "['status']") == "$3" ]]; }
wait_for "request $ID to be marked expired" 60 status_is "$ID" "$RITA" expired
expect "410 once expired" test "$(as "$RITA" "$B/v1/provisioning/requests/$ID/download")" = 410
expect "410 code 1900" test "$(jget "['code']")" = 1900

# ---- SIGTERM during a job, then a restart picks up what was left ---------
as "$RITA" "${J[@]}" -d '{"dataset":"fields","format":"jsonl.gz"}' "$B/v1/provisioning/requests" >/dev/null
BIG=$(jget "['id']")
# SIGTERM once the worker has claimed it: while it runs (the 150,006 rows
# take a while), or just after it finished on a fast machine
claimed() { as "$RITA" "$B/v1/provisioning/requests/$BIG" >/dev/null; [[ $(jget "['status']") != pending ]]; }
wait_for "the worker to claim request $BIG" 60 claimed
kill -TERM $PID; wait $PID; rc=$?; PID=
expect "clean exit on SIGTERM" test $rc -eq 0
expect "no temp file left" test -z "$(ls "$ROOT.provision" | grep tmp)"
st=$(python3 -c "import sqlite3; print(sqlite3.connect('$DB').execute(\"SELECT status FROM provision_requests WHERE id='$BIG'\").fetchone()[0])")
expect "not left half-done ($st)" test "$st" = ready -o "$st" = pending
# a server killed outright leaves a request running: the next one retries it
python3 -c "import sqlite3; c=sqlite3.connect('$DB'); c.execute(\"UPDATE provision_requests SET status='running', lease_expires='2999-01-01T00:00:00.000Z', path=NULL WHERE id='$BIG'\"); c.commit()"
start 3600
poll "$BIG" "$RITA" 300
expect "recovered request ready" test "$ST" = ready
expect "all 150006 fields" test "$(jget "['rows']")" = 150006
kill -TERM $PID; wait $PID; PID=

# ---- the CLI -------------------------------------------------------------
CID=$("$FM" provision request --db "$DB" --root "$ROOT" --dataset mappings --filter status=proposed --owner rita 2>"$T/err")
expect "cli request" test ${#CID} -eq 32
"$FM" provision status --db "$DB" "$CID" --json >"$T/st"
expect "cli status ready" grep -q '"status":"ready"' "$T/st"
"$FM" provision fetch --db "$DB" --root "$ROOT" "$CID" -o "$T/got.csv.gz" 2>/dev/null
expect "cli fetch" test "$(gunzip -c "$T/got.csv.gz" | wc -l)" = 2
"$FM" provision list --db "$DB" --owner rita >"$T/list"
expect "cli list" grep -q "$CID" "$T/list"
echo x >>"$ROOT.provision/$CID.csv.gz"
"$FM" provision fetch --db "$DB" --root "$ROOT" "$CID" -o "$T/bad.csv.gz" 2>"$T/err"
expect "fetch refuses a damaged file" test $? -eq 1
expect "... and says so" grep -q "SHA-256" "$T/err"
expect "... and writes nothing" test ! -e "$T/bad.csv.gz"
"$FM" provision request --db "$DB" --root "$ROOT" --dataset nope >/dev/null 2>"$T/err"
expect "cli bad dataset is usage" test $? -eq 2
NW=$("$FM" provision request --db "$DB" --dataset fields --no-wait 2>/dev/null)
expect "no-wait stays pending" bash -c "'$FM' provision status --db '$DB' $NW | grep -q pending"

echo "test_provision.sh: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
