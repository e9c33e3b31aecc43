#!/usr/bin/env bash
# test_http_review_app.sh: the HTTP routes the review app uses (issue 17):
# GET /v1/me, the queue's filters, POST decisions with no_equivalent,
# /v1/review/stats and /daily, POST /v1/review/bulk (one transaction: all or
# nothing, an audit row each), and /ui/ served with its CSP.  A store made
# from the sample (import, train, batch run), a server on a free port, every
# wait on state with a deadline.
set -u
FM=${FIELDMATCH:-build/fieldmatch}
command -v curl >/dev/null || { echo "curl missing: skip"; exit 77; }
"$FM" --help | grep -q serve || { echo "built without HTTP: skip"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/fm_httpapp.XXXXXX") || exit 1
PID=
trap '[[ -n $PID ]] && kill $PID 2>/dev/null; rm -rf "$T"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DB=$T/db.sqlite
"$FM" import --config train/sample.json --db "$DB" >/dev/null 2>&1 || { echo "import failed"; exit 1; }
"$FM" train --config train/sample.json -o "$T/s.fmm" >/dev/null 2>&1 || { echo "train failed"; exit 1; }
"$FM" batch run --model "$T/s.fmm" --db "$DB" >/dev/null 2>&1 || { echo "batch failed"; exit 1; }
READER=$("$FM" token create --db "$DB" --role reader --owner rita 2>/dev/null)
ANA=$("$FM" token create --db "$DB" --role analyst --owner ana 2>/dev/null)
"$FM" serve --model "$T/s.fmm" --db "$DB" --listen 127.0.0.1:0 --threads 2 2>"$T/log" & PID=$!
wait_for "the server to log its port" 60 grep -q "listening on port" "$T/log"
PORT=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$T/log")
B=http://127.0.0.1:$PORT
code() { curl -s -o "$T/body" -w '%{http_code}' "$@"; }
RD=(-H "Authorization: Bearer $READER")
AN=(-H "Authorization: Bearer $ANA" -H "Content-Type: application/json")
j() { python3 -c "import json,sys; d=json.load(open('$T/body')); $1"; }

expect "me: 401 without a token" test "$(code "$B/v1/me")" = 401
expect "me: reader" test "$(code "${RD[@]}" "$B/v1/me")" = 200
expect "me: owner and role" j "assert d=={'owner':'rita','role':'reader'}, d"

# ---- queue filters -----------------------------------------------------------
expect "queue" test "$(code "${RD[@]}" "$B/v1/review/queue?limit=1000")" = 200
cp "$T/body" "$T/queue.json"
N=$(python3 -c "import json; print(json.load(open('$T/queue.json'))['total'])")
expect "the sample run queues fields" test "$N" -gt 3
F1=$(python3 -c "import json; print(json.load(open('$T/queue.json'))['items'][0]['field']['id'])")
expect "queue q= finds the field" test "$(code "${RD[@]}" "$B/v1/review/queue?q=$F1")" = 200
expect "q= result" j "assert '$F1' in [i['field']['id'] for i in d['items']] and d['total']<=$N"
expect "queue band" test "$(code "${RD[@]}" "$B/v1/review/queue?min_unc=2&limit=5")" = 200
expect "band above 1 is empty" j "assert d['total']==0, d"
expect "queue bad band" test "$(code "${RD[@]}" "$B/v1/review/queue?min_unc=abc")" = 400

# ---- no_equivalent over HTTP --------------------------------------------------
expect "reader cannot decide" test "$(code "${RD[@]}" -X POST -d '{"action":"no_equivalent"}' \
  "$B/v1/review/bloomberg/$F1/decisions")" = 403
expect "none: 200" test "$(code "${AN[@]}" -X POST -d '{"action":"no_equivalent","expect":null}' \
  "$B/v1/review/bloomberg/$F1/decisions")" = 200
expect "none: the view" j "assert d['no_equivalent']['status']=='no_equivalent' and d['no_equivalent']['ref'] is None and not d['queued']"
expect "none with a ref: 400" test "$(code "${AN[@]}" -X POST -d '{"action":"no_equivalent","ref":"BID"}' \
  "$B/v1/review/bloomberg/$F1/decisions")" = 400
expect "stale expect: 409" test "$(code "${AN[@]}" -X POST -d '{"action":"no_equivalent","expect":null}' \
  "$B/v1/review/bloomberg/$F1/decisions")" = 409
expect "409 says what changed" j "assert d['code']==1800 and 'no equivalent' in d['detail'], d"

# ---- stats, daily ---------------------------------------------------------------
expect "stats" test "$(code "${RD[@]}" "$B/v1/review/stats")" = 200
expect "stats: one query dictionary, states add up" j "
x=d['dictionaries'][0]
assert x['no_equivalent']==1 and x['queued']==$N-1, x
assert x['total']==sum(x[k] for k in ('accepted','no_equivalent','queued','proposed','rejected','unmapped')), x"
expect "daily" test "$(code "${RD[@]}" "$B/v1/review/daily?days=7")" = 200
expect "daily: today's decision" j "assert d['days']==7 and sum(i['no_equivalent'] for i in d['items'])==1, d"
expect "daily: bad days" test "$(code "${RD[@]}" "$B/v1/review/daily?days=0")" = 400

# ---- bulk: all or nothing ---------------------------------------------------------
read -r A1 R1 A2 R2 A3 R3 < <(python3 -c "
import json; d=json.load(open('$T/queue.json'))
it=[i for i in d['items'] if i['top'] and i['field']['id']!='$F1'][:3]
print(' '.join(x for i in it for x in (i['field']['id'], i['top']['ref']['id'])))")
audit0=$(sqlite3 "$DB" "SELECT count(*) FROM audit_log")
body="{\"decisions\":[{\"field\":\"$A1\",\"action\":\"accept\",\"ref\":\"$R1\"},{\"field\":\"$A2\",\"action\":\"accept\",\"ref\":\"$R2\"},{\"field\":\"$A3\",\"action\":\"accept\",\"ref\":\"NO_SUCH_REF\"}]}"
expect "bulk with a bad item: 400" test "$(code "${AN[@]}" -X POST -d "$body" "$B/v1/review/bulk")" = 400
expect "bulk names the item" j "assert d['detail'].startswith('decision 3:'), d"
expect "bulk: nothing written" test "$(sqlite3 "$DB" "SELECT count(*) FROM audit_log")" = "$audit0"
body="{\"decisions\":[{\"field\":\"$A1\",\"action\":\"accept\",\"ref\":\"$R1\"},{\"field\":\"$A2\",\"action\":\"accept\",\"ref\":\"$R2\"},{\"field\":\"$A3\",\"action\":\"accept\",\"ref\":\"$R3\",\"expect\":\"$R3\"}]}"
expect "bulk with a conflict: 409" test "$(code "${AN[@]}" -X POST -d "$body" "$B/v1/review/bulk")" = 409
expect "bulk: still nothing written" test "$(sqlite3 "$DB" "SELECT count(*) FROM audit_log")" = "$audit0"
body="{\"comment\":\"bulk\",\"decisions\":[{\"field\":\"$A1\",\"action\":\"accept\",\"ref\":\"$R1\"},{\"field\":\"$A2\",\"action\":\"accept\",\"ref\":\"$R2\"},{\"field\":\"$A3\",\"action\":\"accept\",\"ref\":\"$R3\"}]}"
expect "bulk accept of three: 200" test "$(code "${AN[@]}" -X POST -d "$body" "$B/v1/review/bulk")" = 200
expect "bulk result" j "assert d['applied']==3 and [r['field'] for r in d['results']]==['$A1','$A2','$A3'], d"
expect "bulk: an audit row each, by ana" test "$(sqlite3 "$DB" "SELECT count(*) FROM audit_log WHERE action='accept' AND actor='ana'")" = 3
expect "bulk: by a reader 403" test "$(code "${RD[@]}" -X POST -d "$body" "$B/v1/review/bulk")" = 403

# ---- the app's files ---------------------------------------------------------------
curl -s -D "$T/h" -o "$T/index.html" "$B/ui/"
expect "ui: 200" grep -q "^HTTP/1.1 200" "$T/h"
expect "ui: CSP without inline scripts" grep -qi "^content-security-policy: default-src 'none'; script-src 'self';" "$T/h"
expect "ui: html" grep -qi "^content-type: text/html" "$T/h"
expect "ui: unknown file 404" test "$(code "$B/ui/nope.js")" = 404

echo "test_http_review_app.sh: $passed passed, $failed failed" >&2
[[ $failed == 0 ]]
