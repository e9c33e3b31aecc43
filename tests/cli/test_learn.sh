#!/usr/bin/env bash
# test_learn.sh: learning from decisions end to end (docs/scoring.md):
# `simulate --json` keys and determinism for a seed, `train --db` reading
# the decisions, and `serve` re-ranking a sibling field after a decision,
# without a restart (waiting for the rebuild, or with --learn-wait 0 not).  Fixture: tests/data/learn (every glossary total has a
# "Supplemental" twin; the XR_ fields' answers are the twins).
#   FIELDMATCH=build/fieldmatch bash tests/cli/test_learn.sh
set -u
FM=${FIELDMATCH:-build/fieldmatch}
T=$(mktemp -d "${TMPDIR:-/tmp}/fm_learn.XXXXXX") || exit 1
PID=
trap '[[ -n $PID ]] && kill $PID 2>/dev/null; rm -rf "$T"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CONF=tests/data/learn/learn.json
GOLD=tests/data/learn/gold.tsv

# ---- simulate ----
run "$FM" simulate --config "$CONF" --gold "$GOLD" --seed 1 --step 1 --json --folds 2 --loco
expect_rc "simulate --json" 0
cp "$T/out" "$T/sim1"
expect "simulate keys" python3 - "$T/sim1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("queries", "decided", "static_top1", "learned_top1", "learning_gain", "keystrokes", "curve", "cv", "loco"):
    assert k in d, k
assert d["queries"] == 8 and d["decided"] == 4, d
assert abs(d["learning_gain"] - (d["learned_top1"] - d["static_top1"])) < 1e-3, d
c = d["curve"]
assert c[0]["decided"] == 0 and c[-1]["decided"] == d["decided"], c
assert all(set(p) == {"decided", "top1_remaining"} for p in c)
assert abs(c[0]["top1_remaining"] - d["static_top1"]) < 1e-9 and abs(c[-1]["top1_remaining"] - d["learned_top1"]) < 1e-9
assert d["learning_gain"] > 0, d
PY
run "$FM" simulate --config "$CONF" --gold "$GOLD" --seed 1 --step 1 --json --folds 2 --loco
expect "same seed, same output" cmp -s "$T/out" "$T/sim1"
# --seeds: the first split is the one reported above, the rest follow it
run "$FM" simulate --config "$CONF" --gold "$GOLD" --seed 1 --step 1 --json --seeds 4 -q
expect_rc "simulate --seeds" 0
expect "simulate --seeds summary" python3 - "$T/out" "$T/sim1" <<'PY'
import json, sys
d, one = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
s = d["seeds"]
assert s["n"] == 4 and s["first"] == 1 and len(s["gains"]) == 4, s
assert abs(s["gains"][0] - one["learning_gain"]) < 1e-3, (s, one["learning_gain"])
g = s["gains"]
lg = s["learning_gain"]
assert abs(lg["mean"] - sum(g) / 4) < 1e-3 and lg["min"] == min(g) and lg["max"] == max(g), s
assert lg["min"] <= lg["mean"] <= lg["max"] and lg["sd"] >= 0, s
assert abs(s["learned_top1_mean"] - s["static_top1_mean"] - lg["mean"]) < 1e-3, s
PY
run "$FM" simulate --config "$CONF" --gold "$GOLD" --seeds 0
expect_rc "--seeds 0 is usage" 2
# --none: half the no-equivalent fields decided as such, half scored with
# and without the layer (a field the model does not hold is left out)
printf 'bloomberg_field\nCASH_EQUIV\nNET_INCOME\nNOT_A_FIELD\n' >"$T/none.tsv"
run "$FM" simulate --config "$CONF" --gold "$GOLD" --seed 1 --json --none "$T/none.tsv"
expect_rc "simulate --none" 0
expect "simulate --none keys" python3 - "$T/out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
n = d["none"]
assert n["queries"] == 2 and n["decided"] == 1 and n["tested"] == 1, n
for w in ("static", "learned"):
    assert 0 <= n[w]["none_proposed"] <= 1 and 0 <= n[w]["none_auroc"] <= 1, n
PY
run "$FM" simulate --config "$CONF" --gold "$GOLD" --none "$T/absent.tsv"
expect_rc "simulate --none: a missing file fails" 1
expect_in "and names it" "$T/err" "absent.tsv"
run "$FM" simulate --config "$CONF" --gold "$GOLD" --step 0
expect_rc "--step 0 is usage" 2
run "$FM" simulate --config "$CONF"
expect_rc "--gold required" 2
expect_in "names --gold" "$T/err" "--gold"
run "$FM" simulate --config "$CONF" --gold "$GOLD" --learn weights,bogus
expect_rc "--learn unknown part" 2
run "$FM" simulate --config "$CONF" --gold "$T/none.tsv"
expect_rc "missing gold file" 1
run "$FM" simulate --help
expect_in "help names learning_gain" "$T/out" "learning_gain"

# ---- train --db ----
DB=$T/db.sqlite
run "$FM" train --config "$CONF" -o "$T/m.fmm" --db "$DB"
expect_rc "train --db without a database fails" 1
expect_in "and says so" "$T/err" "no database"
run "$FM" import --config "$CONF" --db "$DB"
expect_rc "import" 0
run "$FM" review pick XR_TOT_ASSETS SUPA --db "$DB" --by ana
expect_rc "pick" 0
run "$FM" train --config "$CONF" -o "$T/m.fmm" --db "$DB"
expect_rc "train --db" 0
expect_in "reads the decisions" "$T/err" "1 accepted decisions"
expect_in "as training pairs" "$T/err" "1 training pairs"
run "$FM" train --config "$CONF" -o "$T/m0.fmm" -q
expect_rc "train without --db" 0

# ---- match --db ranks with what the database's decisions teach ----
run "$FM" review pick XR_TOT_EQUITY SUPE --db "$DB" --by ana
run "$FM" match --model "$T/m0.fmm" -k 1 XR_TOT_LIAB
expect_in "match without --db: the plain total" "$T/out" "TOTL"
run "$FM" match --model "$T/m0.fmm" --db "$DB" -k 1 XR_TOT_LIAB
expect_rc "match --db" 0
expect_in "match --db: the learnt twin" "$T/out" "SUPL"

# ---- a full retrain picks the decisions up: its pairs are the model's own
# layer (format 7), so the model ranks the twin without any --db ----
run "$FM" train --config "$CONF" -o "$T/m2.fmm" --db "$DB" -q
expect_rc "train --db (two decisions)" 0
run "$FM" info "$T/m2.fmm"
expect "info: two pair queries in the model's own layer" grep -Eq '^pairs layer: +2 queries$' "$T/out"
run "$FM" match --model "$T/m2.fmm" -k 1 XR_TOT_LIAB
expect_in "retrained model, no --db: the learnt twin" "$T/out" "SUPL"
run "$FM" match --model "$T/m2.fmm" -k 1 TOT_LIAB
expect_in "retrained model: the plain field keeps the plain total" "$T/out" "TOTL"

# ---- a batch run ranks with the store's decisions ----
run "$FM" batch run --model "$T/m0.fmm" --db "$DB" -v --quiet --by tester
expect_rc "batch run" 0
expect_in "batch run says what it learnt from" "$T/err" "ranked with what 2 decided field(s) teach"
run "$FM" review show XR_TOT_LIAB --db "$DB" --json
expect "batch candidates: the sibling's twin first" python3 - "$T/out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
c = d["candidates"]
assert c[0]["ref"]["id"] == "SUPL" and c[1]["ref"]["id"] == "TOTL", [x["ref"]["id"] for x in c]
PY

# ---- serve: a decision re-ranks a sibling without a restart ----
if ! command -v curl >/dev/null || ! "$FM" --help | grep -q serve; then
  echo "curl or HTTP missing: serve part skipped" >&2
else
  DB2=$T/db2.sqlite
  "$FM" import --config "$CONF" --db "$DB2" >/dev/null 2>&1
  ANA=$("$FM" token create --db "$DB2" --role analyst --owner ana 2>/dev/null)
  ADM=$("$FM" token create --db "$DB2" --role admin --owner ada 2>/dev/null)
  # serve_on NAME DB [serve options...]: start a server on any free port
  # (PID, B); its log is $T/NAME
  serve_on() {
    local log=$T/$1 db=$2
    shift 2
    "$FM" serve --model "$T/m0.fmm" --db "$db" --listen 127.0.0.1:0 --threads 2 "$@" 2>"$log" & PID=$!
    wait_for "the server ($log) to log its port" 60 grep -q "listening on port" "$log"
    B=http://127.0.0.1:$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$log")
  }
  # pick_twins LABEL LEARNING: pick the Supplemental twin of two XR_ fields;
  # each answer is 200 and says "learning": LEARNING
  pick_twins() {
    local d c
    for d in XR_TOT_ASSETS:SUPA XR_TOT_EQUITY:SUPE; do
      c=$(curl -s -o "$T/body" -w '%{http_code}' "${H[@]}" -d "{\"action\":\"pick\",\"ref\":\"${d#*:}\"}" \
        "$B/v1/review/bloomberg/${d%%:*}/decisions")
      expect_eq "$1decision ${d%%:*} 200" "$c" 200
      expect_eq "$1decision ${d%%:*}: learning $2" \
        "$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['decision']['learning'])" "$T/body")" "$2"
    done
  }
  serve_on log "$DB2"
  H=(-H "Authorization: Bearer $ANA")
  first() { curl -s "${H[@]}" "$B/v1/match?field=$1&k=3" | python3 -c "import json,sys; print(json.load(sys.stdin)['candidates'][0]['id'])"; }
  expect_eq "before: the plain total first" "$(first XR_TOT_LIAB)" TOTL
  expect_eq "before (cached)" "$(first XR_TOT_LIAB)" TOTL
  pick_twins "" applied # in the layer when answered
  expect_eq "after: the sibling's Supplemental twin first" "$(first XR_TOT_LIAB)" SUPL
  expect_eq "a field without the XR words is unchanged" "$(first TOT_LIAB)" TOTL
  c=$(curl -s -o "$T/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $ADM" "$B/v1/admin/model/reload")
  expect_eq "reload 200" "$c" 200
  expect_eq "after a reload: the layer is rebuilt for the new model" "$(first XR_TOT_LIAB)" SUPL
  kill $PID; wait $PID 2>/dev/null; PID=
  # a restart learns from the same decisions
  serve_on log2 "$DB2"
  expect_eq "after a restart: learnt from the store" "$(first XR_TOT_LIAB)" SUPL
  kill $PID; wait $PID 2>/dev/null; PID=

  # --learn-wait 0: the answers do not wait for the rebuild ("pending"); the
  # learner thread builds the layer anyway, and /metrics counts it
  run "$FM" serve --model "$T/m0.fmm" --db "$DB2" --learn-wait -1
  expect_rc "--learn-wait -1 is usage" 2
  DB3=$T/db3.sqlite
  "$FM" import --config "$CONF" --db "$DB3" >/dev/null 2>&1
  ANA=$("$FM" token create --db "$DB3" --role analyst --owner ana 2>/dev/null)
  H=(-H "Authorization: Bearer $ANA")
  serve_on log3 "$DB3" --learn-wait 0
  expect_eq "no wait, before: the plain total first" "$(first XR_TOT_LIAB)" TOTL
  pick_twins "no wait: " pending # answered before its layer
  twin_first() { [[ "$(first XR_TOT_LIAB)" == SUPL ]]; }
  wait_for "the learner to apply both decisions" 60 twin_first
  learnt() {
    curl -s "$B/metrics" >"$T/metrics"
    grep -q '^fm_http_learn_pending 0$' "$T/metrics" &&
      awk '$1 == "fm_http_learn_rebuilds_total" && $2 >= 1 { f = 1 } END { exit !f }' "$T/metrics"
  }
  wait_for "/metrics: rebuilds counted, none pending" 60 learnt
  kill $PID; wait $PID 2>/dev/null; PID=
fi

echo "test_learn: $passed passed, $failed failed"
((failed == 0))
