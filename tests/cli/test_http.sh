#!/usr/bin/env bash
# test_http.sh: `fieldmatch serve` end to end with curl: token CLI, auth
# roles, the reconciliation responses validated against the W3C 0.2 JSON
# Schemas (when FM_SHARED has them), the access log, and SIGTERM while
# requests are in flight (they complete, exit 0).
#   FIELDMATCH=build/fieldmatch bash tests/cli/test_http.sh
set -u
FM=${FIELDMATCH:-build/fieldmatch}
command -v curl >/dev/null || { echo "curl missing: skip"; exit 77; }
"$FM" --help | grep -q serve || { echo "built without HTTP: skip"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/fm_http.XXXXXX") || exit 1
PID=
trap '[[ -n $PID ]] && kill $PID 2>/dev/null; rm -rf "$T"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$FM" train --config train/sample.json -o "$T/s.fmm" >/dev/null 2>&1 || { echo "train failed"; exit 1; }
DB=$T/db.sqlite
READER=$("$FM" token create --db "$DB" --role reader --owner rita 2>/dev/null)
ADMIN=$("$FM" token create --db "$DB" --role admin --owner ada 2>/dev/null)
ANA=$("$FM" token create --db "$DB" --role analyst --owner ana 2>/dev/null)
BOB=$("$FM" token create --db "$DB" --role analyst --owner bob 2>/dev/null)
expect "token secret shape" test ${#READER} -eq 67
"$FM" token create --db "$DB" --role root --owner x >/dev/null 2>&1; expect "bad role is usage" test $? -eq 2
"$FM" token list --db "$DB" >"$T/list"
expect "list shows owners" grep -q "rita .*reader" "$T/list"
expect "list never shows secrets" bash -c "! grep -q '${READER:3:20}' '$T/list'"
sqlite3 "$DB" "SELECT secret_sha256 FROM api_tokens" | grep -q "${READER:3}" && bad "secret stored in clear" || ok

# start on a free port (port 0) and read it back from the log line
"$FM" serve --model "$T/s.fmm" --db "$DB" --listen 127.0.0.1:0 --threads 2 --drain-ms 5000 \
  2>"$T/log" & PID=$!
wait_for "the server to log its port" 60 grep -q "listening on port" "$T/log"
PORT=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$T/log")
expect "server started" test -n "$PORT"
B=http://127.0.0.1:$PORT
code() { curl -s -o "$T/body" -w '%{http_code}' "$@"; }

expect "401 without token" test "$(code "$B/v1/match?field=PX_LAST")" = 401
expect "200 with reader" test "$(code -H "Authorization: Bearer $READER" "$B/v1/match?field=PX_LAST&k=3")" = 200
expect "match body" grep -q '"id":"TRDPRC_1"' "$T/body"
expect "healthz" test "$(code "$B/healthz")" = 200
expect "readyz" test "$(code "$B/readyz")" = 200
expect "access log line" grep -q "GET /v1/match 200 .*ms rita" "$T/log"

# reconciliation, validated against the schemas
R=(-H "Authorization: Bearer $READER")
code "$B/reconcile" >/dev/null; cp "$T/body" "$T/manifest.json"
code "${R[@]}" --data-urlencode 'queries={"q0":{"query":"PX_LAST","limit":3},"q1":{"query":"VOLUME"}}' \
  "$B/reconcile" >/dev/null; cp "$T/body" "$T/results.json"
code "${R[@]}" -G --data-urlencode 'queries={"a":{"query":"PX_BID"}}' "$B/reconcile" >/dev/null
cp "$T/body" "$T/results_get.json"
code "${R[@]}" "$B/reconcile/suggest/entity?prefix=TRD" >/dev/null; cp "$T/body" "$T/suggest.json"
expect "preview" test "$(code "${R[@]}" "$B/reconcile/preview?id=TRDPRC_1")" = 200
expect "results have q0 and q1" python3 -c "import json,sys; d=json.load(open('$T/results.json')); sys.exit(not (d['q0']['result'] and d['q1']['result']))"
SCH=${FM_SHARED:-../shared}/data/reconciliation-schemas/0.2/schemas
if [[ -d $SCH ]] && python3 -c 'import jsonschema' 2>/dev/null; then
  for pair in manifest:manifest results:reconciliation-result-batch \
              results_get:reconciliation-result-batch suggest:suggest-entities-response; do
    f=${pair%%:*} s=${pair#*:}
    if python3 - "$SCH/$s.json" "$T/$f.json" <<'PY'
import glob, json, os, sys, jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7
schema = json.load(open(sys.argv[1])); doc = json.load(open(sys.argv[2]))
# The schemas refer to each other by relative name (type.json): a registry
# that knows every schema of the folder by its $id.
resources = []
for f in glob.glob(os.path.join(os.path.dirname(sys.argv[1]), "*.json")):
    s = json.load(open(f))
    if "$id" in s:
        resources.append((s["$id"], Resource.from_contents(s, default_specification=DRAFT7)))
registry = Registry().with_resources(resources)
jsonschema.Draft7Validator(schema, registry=registry).validate(doc)
PY
    then ok; else bad "$f.json does not validate against $s.json"; fi
  done
else
  echo "reconciliation schemas or python3-jsonschema absent: schema checks skipped" >&2
fi

# CORS preflight
curl -s -i -X OPTIONS -H "Origin: http://x" -H "Access-Control-Request-Method: POST" \
  "$B/reconcile" >"$T/pre"
expect "preflight 204" grep -q "^HTTP/1.1 204" "$T/pre"
expect "preflight methods" grep -qi "^Access-Control-Allow-Methods: GET, HEAD, POST" "$T/pre"

# store endpoints: a batch run over HTTP whose counts reconcile with the
# database, two curl processes racing the same decision, and the streamed
# export byte-identical to `fieldmatch export` of the same database
A=(-H "Authorization: Bearer $ADMIN")
expect "analyst cannot start a batch" test "$(code -H "Authorization: Bearer $ANA" -X POST -d '{}' "$B/v1/batch-runs")" = 403
expect "batch run 202" test "$(code "${A[@]}" -X POST -d '{"batch_size":5}' "$B/v1/batch-runs")" = 202
RUN=$(python3 -c "import json; print(json.load(open('$T/body'))['run'])")
run_done() { code "${R[@]}" "$B/v1/batch-runs/$RUN" >/dev/null; ! grep -q '"status":"running"' "$T/body"; }
wait_for "batch run $RUN to finish" 300 run_done
cp "$T/body" "$T/run.json"
expect "batch run succeeded" grep -q '"status":"succeeded"' "$T/run.json"
expect "batch counts reconcile with the database" python3 - "$T/run.json" "$DB" "$RUN" <<'PY'
import json, sqlite3, sys
r = json.load(open(sys.argv[1])); db = sqlite3.connect(sys.argv[2]); run = int(sys.argv[3])
t = r["total"]
assert t["n_in"] == r["n_fields"] == t["n_proposed"] + t["n_queued"] + t["n_curated"] + t["n_failed"], t
assert r["parts_committed"] == r["n_parts"] == len(r["parts"]), r
assert sum(p["n_in"] for p in r["parts"]) == t["n_in"]
cands = db.execute("SELECT count(DISTINCT query_field_id) FROM candidates WHERE batch_run_id=?", (run,)).fetchone()[0]
assert cands == t["n_in"] - t["n_curated"] - t["n_failed"], (cands, t)
PY
"$FM" batch status "$RUN" --db "$DB" --json >"$T/cli_run.json" 2>/dev/null
expect "HTTP and CLI agree on the run's totals" python3 -c "
import json; a=json.load(open('$T/run.json')); b=json.load(open('$T/cli_run.json'))
assert a['total']==b['total'] and a['parts_committed']==b['parts_committed']"

expect "reader cannot decide" test "$(code "${R[@]}" -X POST -d '{"action":"accept","ref":"TRDPRC_1"}' "$B/v1/review/bloomberg/PX_LAST/decisions")" = 403
code "${R[@]}" "$B/v1/review/bloomberg/VOLUME" >/dev/null
read -r C1 C2 < <(python3 -c "import json; c=json.load(open('$T/body'))['candidates']; print(c[0]['ref']['id'], c[1]['ref']['id'])")
RACERS=()
for who in "$ANA:$C1" "$BOB:$C2"; do
  curl -s -o "$T/race.${who%%:*}" -w '%{http_code}\n' -H "Authorization: Bearer ${who%%:*}" \
    -d "{\"action\":\"accept\",\"ref\":\"${who#*:}\",\"expect\":null}" \
    "$B/v1/review/bloomberg/VOLUME/decisions" >>"$T/race_codes" & RACERS+=($!)
done
wait "${RACERS[@]}"
expect "race: one 200" test "$(grep -c '^200$' "$T/race_codes")" = 1
expect "race: one 409" test "$(grep -c '^409$' "$T/race_codes")" = 1
expect "race: the loser is told why" bash -c "cat '$T'/race.* | grep -q '\"code\":1800.*GET the field again'"
expect "one accepted mapping" test "$(sqlite3 "$DB" "SELECT count(*) FROM mappings m JOIN fields q ON q.field_id=m.query_field_id WHERE q.id='VOLUME' AND m.status='accepted'")" = 1
expect "the winner is the analyst of record" test "$(sqlite3 "$DB" "SELECT decided_by FROM mappings m JOIN fields q ON q.field_id=m.query_field_id WHERE q.id='VOLUME' AND m.status='accepted'" | grep -c '^ana$\|^bob$')" = 1
code "${R[@]}" "$B/v1/review/bloomberg/VOLUME/history" >/dev/null
expect "history names the analyst" grep -Eq '"actor":"(ana|bob)","action":"accept"' "$T/body"
code "${R[@]}" "$B/v1/match?field=VOLUME&k=3" >/dev/null
expect "curated mapping first" python3 -c "import json; c=json.load(open('$T/body'))['candidates'][0]; assert c['curated'] and c['rank']==1"
# a batch POST gives each field the bytes GET gives it: a curated field
# (VOLUME, the tree path) and model-only ones (the direct renderer)
cp "$T/body" "$T/get.VOLUME"
code "${R[@]}" "$B/v1/match?field=PX_LAST&k=3" >/dev/null
cp "$T/body" "$T/get.PX_LAST"
code "${R[@]}" "$B/v1/match?field=NO_SUCH_FIELD_QQ&k=3" >/dev/null
cp "$T/body" "$T/get.NO_SUCH_FIELD_QQ"
code "${R[@]}" -H "Content-Type: application/json" \
  -d '{"fields":["PX_LAST","VOLUME","NO_SUCH_FIELD_QQ"],"k":3}' "$B/v1/match" >/dev/null
printf '{"results":[%s,%s,%s]}' "$(cat "$T/get.PX_LAST")" "$(cat "$T/get.VOLUME")" \
  "$(cat "$T/get.NO_SUCH_FIELD_QQ")" >"$T/want.post"
expect "batch POST: each result byte-identical to its GET" cmp -s "$T/body" "$T/want.post"

for f in csv jsonl; do
  for st in all accepted proposed; do
    curl -s -D "$T/h.$f" "${R[@]}" "$B/v1/mappings/export?format=$f&status=$st" -o "$T/http.$f.$st"
    "$FM" export --db "$DB" --format "$f" --status "$st" -o "$T/cli.$f.$st" 2>/dev/null
    expect "export $f $st byte-identical to the CLI" cmp -s "$T/http.$f.$st" "$T/cli.$f.$st"
  done
done
expect "export csv rows" test "$(wc -l <"$T/http.csv.all")" -gt 2
expect "csv content type" grep -qi '^Content-Type: text/csv' "$T/h.csv"
expect "jsonl content type" grep -qi '^Content-Type: application/x-ndjson' "$T/h.jsonl"
expect "attachment" grep -qi '^Content-Disposition: attachment; filename="mappings-proposed.jsonl"' "$T/h.jsonl"
expect "streamed (chunked)" grep -qi '^Transfer-Encoding: chunked' "$T/h.csv"
curl -s "${R[@]}" "$B/v1/mappings/export?format=csv&status=all&with_candidates=3&crlf=1" -o "$T/http.cand"
"$FM" export --db "$DB" --status all --with-candidates 3 --crlf -o "$T/cli.cand" 2>/dev/null
expect "export with candidates byte-identical" cmp -s "$T/http.cand" "$T/cli.cand"
code "${R[@]}" "$B/v1/mappings?status=accepted&limit=1" >/dev/null
expect "mappings list" python3 -c "import json; d=json.load(open('$T/body')); assert d['total']>=1 and len(d['mappings'])==1"

# shutdown during load: 40 parallel lookups in flight, then SIGTERM
for i in $(seq 40); do
  curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $ADMIN" \
    "$B/v1/match?field=PX_LAST&k=50" >>"$T/codes" &
done
# SIGTERM once the server is answering them: the first reply is in, most
# of the others are in flight or queued
wait_for "the first reply of the 40 lookups" 60 test -s "$T/codes"
echo "SIGTERM with $((40 - $(wc -l <"$T/codes"))) of 40 lookups unanswered" >&2
kill -TERM $PID
wait $PID; rc=$?; PID=
wait
expect "exit 0 after SIGTERM" test $rc -eq 0
expect "stopped message" grep -q "stopped" "$T/log"
n200=$(grep -c '^200$' "$T/codes"); nbad=$(grep -vc -e '^200$' -e '^000$' -e '^503$' "$T/codes")
expect "requests in flight completed ($n200 x 200)" test "$n200" -gt 0
expect "no broken replies during shutdown" test "$nbad" -eq 0

echo "test_http.sh: $passed passed, $failed failed"
[[ $failed == 0 ]]
