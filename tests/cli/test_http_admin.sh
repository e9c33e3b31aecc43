#!/usr/bin/env bash
# test_http_admin.sh: the admin routes.  Token administration over HTTP
# (create shows the secret once, list never shows it, revoke stops it).
# Hot model reload under load:  While wrk keeps the
# server busy, the model file is replaced and reloaded twice (once by
# POST /v1/admin/model/reload, once by SIGHUP); a file that does not open
# is refused with 422 and the old model keeps serving.  No request may fail
# (wrk counts non-2xx answers and socket errors) and /metrics must name the
# new model's checksum after each reload.
#   FIELDMATCH=build/fieldmatch bash tests/cli/test_http_admin.sh
set -u
FM=${FIELDMATCH:-build/fieldmatch}
command -v curl >/dev/null || { echo "curl missing: skip"; exit 77; }
command -v wrk >/dev/null || { echo "wrk missing (scripts/setup.sh installs it): skip"; exit 77; }
"$FM" --help | grep -q serve || { echo "built without HTTP: skip"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/fm_admin.XXXXXX") || exit 1
PID= WRK=
trap '[[ -n $PID ]] && kill $PID 2>/dev/null; [[ -n $WRK ]] && kill $WRK 2>/dev/null; rm -rf "$T"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# two models that differ: the sample, and the sample under another name and seed
python3 - train/sample.json "$T/b.json" <<'PY'
import json, os, sys
src = sys.argv[1]
c = json.load(open(src))
base = os.path.dirname(os.path.abspath(src))
for side in ("reference", "query"):
    for d in c[side]:
        d["path"] = os.path.normpath(os.path.join(base, d["path"]))
c["train_pairs"] = [os.path.normpath(os.path.join(base, p)) for p in c.get("train_pairs", [])]
c["name"] = "sample-reloaded"
c["model"]["seed"] = 7
json.dump(c, open(sys.argv[2], "w"))
PY
"$FM" train --config train/sample.json -o "$T/a.fmm" --quiet || { echo "train a failed"; exit 1; }
"$FM" train --config "$T/b.json" -o "$T/b.fmm" --quiet || { echo "train b failed"; exit 1; }
cp "$T/a.fmm" "$T/m.fmm"
DB=$T/db.sqlite
ADMIN=$("$FM" token create --db "$DB" --role admin --owner ada 2>/dev/null)
READER=$("$FM" token create --db "$DB" --role reader --owner rita 2>/dev/null)
"$FM" serve --model "$T/m.fmm" --db "$DB" --listen 127.0.0.1:0 --threads 2 --access-log off \
  2>"$T/log" & PID=$!
for _ in $(seq 600); do grep -q "listening on port" "$T/log" && break
  kill -0 $PID 2>/dev/null || break; sleep 0.1; done
PORT=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$T/log")
[[ -n $PORT ]] || { echo "FAIL: server did not log its port within 60 s"; cat "$T/log"; exit 1; }
B=http://127.0.0.1:$PORT
checksum() { curl -s "$B/metrics" | sed -n 's/^fm_model_info{.*checksum="\([0-9a-f]*\)".*/\1/p'; }
requests() { curl -s "$B/metrics" | awk '/^fm_http_requests_total\{route="\/v1\/match"/ {n += $2} END {print n + 0}'; }
SUM_A=$(checksum)
expect "metrics names the first model" test -n "$SUM_A"

# load: keep-alive lookups of a few ids, long enough to span the reloads
cat >"$T/ids.lua" <<'LUA'
local ids = {"PX_LAST", "PX_BID", "PX_ASK", "VOLUME", "CUR_MKT_CAP", "PX_OPEN"}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "/v1/match?k=5&field=" .. ids[i % #ids + 1])
end
LUA
# (60 s at most; stopped with SIGINT, on which wrk prints its summary, once
# the reloads are done).  A lookup counts as failed when it is refused or
# unanswered for 10 s (times FM_TEST_WAIT_SCALE): wrk's own 2 s timeout
# measured the machine's load, not the server (a TSan build on two busy
# cores answered some lookups in more)
wrk -t2 -c8 -d60s --timeout "$((10 * ${FM_TEST_WAIT_SCALE:-1}))s" -s "$T/ids.lua" \
  -H "Authorization: Bearer $READER" "$B" >"$T/wrk" 2>&1 & WRK=$!
# wait on state: lookups are being answered (60 s deadline)
for _ in $(seq 600); do [[ $(requests) -gt 200 ]] && break; sleep 0.1; done
expect "load is running" test "$(requests)" -gt 200

# reload 1: a new file, by the admin route
cp "$T/b.fmm" "$T/m.tmp" && mv "$T/m.tmp" "$T/m.fmm"
run curl -s -w '\n%{http_code}' -X POST -H "Authorization: Bearer $READER" "$B/v1/admin/model/reload"
expect_in "reload needs admin" "$T/out" "403"
run curl -s -w '\n%{http_code}' -X POST -H "Authorization: Bearer $ADMIN" "$B/v1/admin/model/reload"
expect_in "reload 200" "$T/out" "200"
expect_in "reload names the new model" "$T/out" '"name":"sample-reloaded"'
SUM_B=$(checksum)
expect "metrics: checksum changed" test -n "$SUM_B" -a "$SUM_B" != "$SUM_A"

# a broken file: refused, the old model keeps serving
head -c 100 "$T/a.fmm" >"$T/m.tmp" && mv "$T/m.tmp" "$T/m.fmm"
run curl -s -w '\n%{http_code}' -X POST -H "Authorization: Bearer $ADMIN" "$B/v1/admin/model/reload"
expect_in "broken file: 422" "$T/out" "422"
expect_in "broken file: code 1450" "$T/out" '"code":1450'
expect_eq "broken file: old model serves" "$(checksum)" "$SUM_B"

# reload 2: SIGHUP back to the first model
cp "$T/a.fmm" "$T/m.tmp" && mv "$T/m.tmp" "$T/m.fmm"
kill -HUP $PID
for _ in $(seq 600); do [[ $(checksum) == "$SUM_A" ]] && break; sleep 0.1; done
expect_eq "SIGHUP: first model serves again" "$(checksum)" "$SUM_A"
expect_in "SIGHUP logged" "$T/log" "SIGHUP: model reloaded: sample"

expect "wrk was running through the reloads" kill -0 $WRK
kill -INT $WRK; wait $WRK; WRK=
expect_in "wrk ran" "$T/wrk" "requests in"
expect_not_in "no request failed (non-2xx)" "$T/wrk" "Non-2xx"
expect_not_in "no socket errors" "$T/wrk" "Socket errors"
expect "server still up" kill -0 $PID
sed 's/^/    wrk: /' "$T/wrk" | grep -E 'Requests/sec|requests in|Socket errors|Non-2xx' >&2
# token administration: create (secret once), list (no secrets), revoke
run curl -s -w '\n%{http_code}' -X POST -H "Authorization: Bearer $READER" \
  -d '{"role":"analyst","owner":"nina"}' "$B/v1/admin/tokens"
expect_in "token create needs admin" "$T/out" "403"
run curl -s -w '\n%{http_code}' -X POST -H "Authorization: Bearer $ADMIN" \
  -d '{"role":"analyst","owner":"nina"}' "$B/v1/admin/tokens"
expect_in "token create 201" "$T/out" "201"
NINA=$(sed -n 's/.*"secret":"\(fm_[0-9a-f]*\)".*/\1/p' "$T/out")
NID=$(sed -n 's/.*"id":\([0-9]*\).*/\1/p' "$T/out")
expect "secret shape" test ${#NINA} -eq 67
run curl -s -w '\n%{http_code}' -H "Authorization: Bearer $NINA" "$B/v1/review/queue"
expect_in "the new token works" "$T/out" "200"
run curl -s -H "Authorization: Bearer $ADMIN" "$B/v1/admin/tokens"
expect_in "list names the owner" "$T/out" '"owner":"nina"'
expect_in "list gives the role" "$T/out" '"role":"analyst"'
expect_not_in "list never shows a secret" "$T/out" "${NINA:3:20}"
expect_not_in "list has no secret key" "$T/out" '"secret"'
run curl -s -w '\n%{http_code}' -X POST -H "Authorization: Bearer $ADMIN" \
  -d '{"role":"root","owner":"x"}' "$B/v1/admin/tokens"
expect_in "bad role: 400" "$T/out" "400"
run curl -s -w '\n%{http_code}' -X DELETE -H "Authorization: Bearer $ADMIN" "$B/v1/admin/tokens/$NID"
expect_in "revoke 200" "$T/out" "200"
run curl -s -w '\n%{http_code}' -H "Authorization: Bearer $NINA" "$B/v1/review/queue"
expect_in "a revoked token is refused" "$T/out" "401"
run curl -s -w '\n%{http_code}' -X DELETE -H "Authorization: Bearer $ADMIN" "$B/v1/admin/tokens/$NID"
expect_in "revoking twice: 404" "$T/out" "404"
run curl -s -w '\n%{http_code}' -X DELETE -H "Authorization: Bearer $ADMIN" "$B/v1/admin/tokens/x1"
expect_in "bad id: 400" "$T/out" "400"
expect "the audit log names the admin" test "$(sqlite3 "$DB" "SELECT count(*) FROM audit_log WHERE actor='ada' AND entity='api_token'" 2>/dev/null || echo skip)" != 0

kill $PID; wait $PID; PID=
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
