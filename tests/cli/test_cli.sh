#!/usr/bin/env bash
# test_cli.sh: the fieldmatch command end to end on the tiny fixture
# (tests/data/model): train, info, match (table, JSON, stdin), eval (plain,
# JSON, misses, the training-overlap warning, cross-validation), a config
# that extends another, map (CSV, JSON Lines), and the error paths: each
# must exit non-zero with a message naming the file or option, and leave no
# half-written output behind.
#
# Run by ctest from the repo root with FIELDMATCH = the binary; by hand:
#   FIELDMATCH=build/fieldmatch bash tests/cli/test_cli.sh
set -u

FM=${FIELDMATCH:-build/fieldmatch}
D=tests/data/model
if [[ ! -x $FM ]]; then
  echo "fieldmatch binary not found: $FM (set FIELDMATCH)" >&2
  exit 1
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/fm_cli.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# no temp files (name.tmp.PID) left in $T
no_temps() { ! compgen -G "$T/*.tmp.*" >/dev/null && ! compgen -G "$T/*/*.tmp.*" >/dev/null; }
py() { python3 -c "$@"; }

M=$T/tiny.fmm

# ---- train, info ---------------------------------------------------------
run "$FM" train --config $D/tiny.json -o "$M"
expect_rc "train tiny" 0
expect "train writes the model" test -s "$M"
expect_in "train reports" "$T/err" "trained 'tiny': 35 reference fields, 30 query fields"
expect "train leaves no temp file" no_temps
run "$FM" train --config $D/tiny.json -o "$T/again.fmm" --quiet
expect_rc "train --quiet" 0
expect "train --quiet is quiet" test ! -s "$T/err"
expect "training is deterministic" cmp -s "$M" "$T/again.fmm"

run "$FM" info "$M"
expect_rc "info" 0
expect "info counts" grep -Eq '^references: +35$' "$T/out"
expect "info queries" grep -Eq '^queries: +30$' "$T/out"
expect "info dims" grep -Eq '^dims: +8$' "$T/out"
expect "info train pairs" grep -Eq '^train pairs: +7$' "$T/out"
expect "info: the pairs rank as the model's own layer" grep -Eq '^pairs layer: +[1-7] queries$' "$T/out"
expect_in "info settings" "$T/out" '"seed":7'

# a config that extends tiny.json: the same model but for what it changes
mkdir -p "$T/ext"
printf '{"extends": "%s/%s/tiny.json", "name": "tiny-ext", "model": {"seed": 8}}\n' \
  "$PWD" "$D" > "$T/ext/ext.json"
run "$FM" train --config "$T/ext/ext.json" -o "$T/ext.fmm" --quiet
expect_rc "train an extending config" 0
run "$FM" info "$T/ext.fmm"
expect "extends: its own name" grep -Eq '^model: +tiny-ext$' "$T/out"
expect "extends: the base's pairs" grep -Eq '^train pairs: +7$' "$T/out"
expect_in "extends: its own seed, the base's dims" "$T/out" '"dims":8,'
expect_in "extends: its own seed" "$T/out" '"seed":8'
printf '{"extends": "b.json"}\n' > "$T/ext/a.json"
printf '{"extends": "a.json", "name": "b"}\n' > "$T/ext/b.json"
run "$FM" train --config "$T/ext/a.json" -o "$T/ext/cycle.fmm"
expect_rc "train an extends cycle" 1
expect_in "extends cycle explained" "$T/err" "(is there a cycle?)"
expect "extends cycle: no model" test ! -e "$T/ext/cycle.fmm"

# ---- match ----------------------------------------------------------------
run "$FM" match --model "$M" -k 3 PX_BID FOO_BAR
expect_rc "match table" 0
expect_in "match names the query" "$T/out" "PX_BID (Bid Price)"
expect "match ranks BID first" grep -Eq '^ +1\. BID +[0-9.-]+ +BID' "$T/out"
expect "match prints k rows for PX_BID" \
  test "$(sed -n '/^PX_BID/,/^FOO_BAR/p' "$T/out" | grep -Ec '^ +[0-9]+\. ')" = 3
expect_in "match flags an unknown id" "$T/out" "FOO_BAR  [not a known query field: matched as a mnemonic]"

run "$FM" match --model "$M" -k 4 --json PX_LAST CHG_PCT_1D NOT_A_FIELD_PX
expect_rc "match --json" 0
expect "match --json parses" py '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 3, lines
objs = [json.loads(l) for l in lines]
assert [o["field"] for o in objs] == ["PX_LAST", "CHG_PCT_1D", "NOT_A_FIELD_PX"]
assert [o["known"] for o in objs] == [True, True, False]
for o in objs:
    c = o["candidates"]
    assert 1 <= len(c) <= 4, o
    assert [x["rank"] for x in c] == list(range(1, len(c) + 1))
    s = [x["score"] for x in c]
    assert s == sorted(s, reverse=True), s
    for x in c:
        assert set(x) >= {"id", "name", "description", "type", "vendor", "score", "components"}
        assert set(x["components"]) == {"title", "full", "chars", "lsa", "prior", "variant", "order", "other", "date"}
        assert x["vendor"] == "refinitiv"
assert objs[0]["candidates"][0]["id"] in ("TRDPRC_1", "CF_LAST")
' "$T/out"

printf 'PX_ASK\n\n  CRNCY\r\n' | { "$FM" match --model "$M" -k 2 --json - >"$T/out" 2>"$T/err"; }
rc=$?
expect_rc "match - (stdin)" 0
expect "match - reads every id" py '
import json, sys
objs = [json.loads(l) for l in open(sys.argv[1])]
assert [o["field"] for o in objs] == ["PX_ASK", "CRNCY"], objs
assert objs[0]["candidates"][0]["id"] == "ASK"
assert objs[1]["candidates"][0]["id"] == "CURRENCY"
' "$T/out"

# ---- eval -----------------------------------------------------------------
run "$FM" eval --model "$M" --gold $D/tiny-gold.tsv --json
expect_rc "eval --json" 0
expect "eval --json contract" py '
import json, sys
r = json.loads(open(sys.argv[1]).read())
for k in ("queries", "top1", "recall_at_5", "recall_at_10", "mrr_at_10", "missing_queries"):
    assert k in r, k
assert r["queries"] == 14 and r["missing_queries"] == 0, r
for k in ("top1", "recall_at_5", "recall_at_10", "mrr_at_10"):
    assert 0 <= r[k] <= 1, r
assert r["top1"] <= r["recall_at_5"] <= r["recall_at_10"], r
assert r["recall_at_10"] >= 0.7, r
# calibrated confidence (docs/scoring.md, "Confidence")
for k in ("ece", "ece_null", "auto_threshold", "auto_precision", "auto_coverage"):
    assert k in r, k
assert 0 <= r["ece"] <= 1 and 0 <= r["ece_null"] <= 1 and 0 <= r["auto_coverage"] <= 1, r
assert r["auto_threshold"] == 0.9, r
assert r["auto_precision"] is None or 0 <= r["auto_precision"] <= 1, r
assert "none_proposed" not in r, r
' "$T/out"
expect_not_in "eval of a held-out gold: no warning" "$T/err" "WARNING"

# --none: fields with no equivalent (one column, header row)
printf 'bloomberg_field\nPX_ASK\nNOT_IN_MODEL\n' >"$T/none.tsv"
run "$FM" eval --model "$M" --gold $D/tiny-gold.tsv --none "$T/none.tsv" --json
expect_rc "eval --none" 0
expect "eval --none JSON" py '
import json, sys
r = json.loads(open(sys.argv[1]).read())
for k in ("none_queries", "none_proposed", "none_auroc", "ece_all", "ece", "auto_precision",
          "auto_coverage"):
    assert k in r, k
assert r["none_queries"] == 1, r   # NOT_IN_MODEL is not a query field of the model
assert r["none_proposed"] in (0, 1), r
assert 0 <= r["none_auroc"] <= 1, r
' "$T/out"
run "$FM" eval --model "$M" --gold $D/tiny-gold.tsv --none "$T/no-such.tsv"
expect_rc "eval --none missing file" 1
expect_in "eval --none missing file named" "$T/err" "no-such.tsv"

# a format-4 model (tests/data/model/tiny-v4.fmm, trained on tiny.json by the
# release before the calibrator) is still read, with the fallback calibrator
run "$FM" info $D/tiny-v4.fmm
expect_rc "info of a format-4 model" 0
expect "info says format 4" grep -Eq '^format: +4$' "$T/out"
run "$FM" match --model $D/tiny-v4.fmm --json PX_BID
expect_rc "match with a format-4 model" 0
expect "format-4 model: confidence from the fallback calibrator" py '
import json, sys
c = json.loads(open(sys.argv[1]).read())["candidates"]
assert c and all(0 <= x["confidence"] <= 1 for x in c), c
' "$T/out"
# a format-5 model (tests/data/model/tiny-v5.fmm, trained on tiny.json by the
# release before field codes) is still read: its fields have no code
run "$FM" info $D/tiny-v5.fmm
expect "info says format 5" grep -Eq '^format: +5$' "$T/out"
run "$FM" match --model $D/tiny-v5.fmm --json PX_BID
expect_rc "match with a format-5 model" 0
run "$FM" info "$M"
expect "a new model is format 7" grep -Eq '^format: +7$' "$T/out"

# plain output lists the misses with the expected answers and the top hits
printf 'bloomberg_field\trefinitiv_field\nPX_BID\tTURNOVER\nPX_ASK\tNO_SUCH_REF\nPX_OPEN\tOPEN_PRC\nNOT_IN_MODEL\tBID\n' \
  >"$T/miss.tsv"
run "$FM" eval --model "$M" --gold "$T/miss.tsv"
expect_rc "eval plain" 0
expect_in "eval plain summary" "$T/out" "$T/miss.tsv: queries=3 "
expect_in "eval plain missing queries" "$T/out" "missing_queries=1"
expect_in "eval lists a miss" "$T/out" "PX_BID (Bid Price) expected: TURNOVER (TURNOVER)"
expect_in "eval lists an answer outside the reference" "$T/out" "NO_SUCH_REF (not in reference)"
expect "eval shows the top candidates of a miss" grep -Eq '^ +1\. BID ' "$T/out"
expect_not_in "eval does not list a hit" "$T/out" "PX_OPEN (Open Price) expected"
run "$FM" eval --model "$M" --gold "$T/miss.tsv" --misses 0
expect_rc "eval --misses 0" 0
expect_not_in "eval --misses 0 lists none" "$T/out" "expected:"

# a gold file that was a training file: a loud warning on stderr
run "$FM" eval --model "$M" --gold $D/tiny-train.tsv --json
expect_rc "eval on a training file" 0
expect_in "eval warns about training pairs" "$T/err" "WARNING: 7 of the 7 pairs in $D/tiny-train.tsv were used to TRAIN"
expect "eval --json reports the overlap" py '
import json, sys
r = json.loads(open(sys.argv[1]).read())
assert r["train_overlap"] == 7 and r["queries"] == 7, r
' "$T/out"

# several gold files, one line each
run "$FM" eval --model "$M" --gold $D/tiny-gold.tsv --gold $D/tiny-train.tsv --json
expect_rc "eval two golds" 0
expect "eval two golds: two results" test "$(wc -l <"$T/out")" = 2

# cross-validation
run "$FM" eval --config $D/tiny.json --gold $D/tiny-gold.tsv --folds 2 --json
expect_rc "eval --folds 2" 0
expect "eval --folds JSON" py '
import json, sys
r = json.loads(open(sys.argv[1]).read())
assert r["queries"] == 14 and r["folds"] == 2, r
assert 0 <= r["top1"] <= r["recall_at_5"] <= r["recall_at_10"] <= 1, r
assert 0 <= r["ece"] <= 1 and 0 <= r["auto_coverage"] <= 1, r
' "$T/out"
run "$FM" eval --config $D/tiny.json --gold $D/tiny-gold.tsv --none "$T/none.tsv" --folds 2 --json
expect_rc "eval --folds 2 --none" 0
expect "eval --folds --none JSON" py '
import json, sys
r = json.loads(open(sys.argv[1]).read())
assert r["folds"] == 2 and r["none_queries"] == 1 and "none_auroc" in r, r
' "$T/out"
run "$FM" eval --config $D/tiny.json --gold $D/tiny-gold.tsv --folds 1
expect_rc "eval --folds 1" 2
run "$FM" eval --model "$M" --gold $D/tiny-gold.tsv --folds 2
expect_rc "eval --folds without --config" 2

# ---- map ------------------------------------------------------------------
HEADER=query_id,rank,reference_id,score,query_name,reference_name,reference_type
# map_check FILE FORMAT K: parse, header, every query 1..n ranks, row counts.
map_check() {
  py '
import csv, json, sys
path, fmt, k, nq = sys.argv[1], sys.argv[2], int(sys.argv[3]), 30
if fmt == "csv":
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert ",".join(rows[0]) == sys.argv[4], rows[0]
    rows = [dict(zip(rows[0], r)) for r in rows[1:]]
else:
    rows = [json.loads(l) for l in open(path)]
    for r in rows:
        assert set(r) == set(sys.argv[4].split(",")), r
by = {}
for r in rows:
    by.setdefault(r["query_id"], []).append(r)
assert len(by) == nq, len(by)
for q, rs in by.items():
    assert [int(r["rank"]) for r in rs] == list(range(1, len(rs) + 1)), q
    s = [float(r["score"]) for r in rs]
    assert s == sorted(s, reverse=True), q
assert len(rows) <= nq * k
if k == 1:
    assert len(rows) == nq, len(rows)
assert by["PX_BID"][0]["reference_id"] == "BID"
' "$1" "$2" "$3" "$HEADER"
}
run "$FM" map --model "$M" -k 1 -o "$T/m1.csv"
expect_rc "map -k 1 csv" 0
expect "map -k 1: one row per query" map_check "$T/m1.csv" csv 1
expect_in "map reports" "$T/err" "mapped 30 query fields (30 rows)"
run "$FM" map --model "$M" -k 3 -o "$T/m3.csv" --quiet --threads 2
expect_rc "map -k 3 csv" 0
expect "map -k 3 csv parses" map_check "$T/m3.csv" csv 3
expect "map csv header" test "$(head -1 "$T/m3.csv")" = "$HEADER"
run "$FM" map --model "$M" -k 3 -o "$T/m3.jsonl" --quiet
expect_rc "map -k 3 jsonl" 0
expect "map -k 3 jsonl parses" map_check "$T/m3.jsonl" jsonl 3
expect "map csv and jsonl agree" test "$(($(wc -l <"$T/m3.csv") - 1))" = "$(wc -l <"$T/m3.jsonl")"
run "$FM" map --model "$M" -k 2 -o "$T/m2.out" --format jsonl --quiet
expect_rc "map --format jsonl" 0
expect "map --format jsonl parses" map_check "$T/m2.out" jsonl 2
expect "map leaves no temp file" no_temps
# the output is written while the matching runs, in units of FM_MAP_CHUNK
# queries handed over in order: any unit size and thread count, same bytes
run "$FM" map --model "$M" -k 3 -o "$T/m3b.jsonl" --quiet --threads 2
for ch in 1 7 30 1000; do
  for th in 1 3; do
    FM_MAP_CHUNK=$ch run "$FM" map --model "$M" -k 3 -o "$T/c.csv" --quiet --threads $th
    expect_rc "map chunk $ch threads $th" 0
    expect "map chunk $ch threads $th: same CSV" cmp -s "$T/c.csv" "$T/m3.csv"
    FM_MAP_CHUNK=$ch run "$FM" map --model "$M" -k 3 -o "$T/c.jsonl" --quiet --threads $th
    expect "map chunk $ch threads $th: same JSONL" cmp -s "$T/c.jsonl" "$T/m3b.jsonl"
  done
done
expect "map jsonl: threads do not matter" cmp -s "$T/m3.jsonl" "$T/m3b.jsonl"

# train writes the model while its prior is computed: a write that fails
# (here the file size limit, in a subshell ignoring SIGXFSZ) leaves nothing
# at the path, no temp file, and an existing model untouched
cp "$M" "$T/keep.fmm"
run bash -c 'trap "" XFSZ; ulimit -f 4; exec "$@"' _ "$FM" train --config $D/tiny.json -o "$T/keep.fmm"
expect_rc "train with a failing write" 1
expect_in "train write failure explained" "$T/err" "write failed"
expect "train write failure: model kept" cmp -s "$M" "$T/keep.fmm"
run bash -c 'trap "" XFSZ; ulimit -f 4; exec "$@"' _ "$FM" train --config $D/tiny.json -o "$T/none.fmm"
expect_rc "train with a failing write (new path)" 1
expect "train write failure: no file" test ! -e "$T/none.fmm"
expect "train write failure: no temp file" no_temps

# ---- errors: non-zero exit, a message naming the file or option ------------
run "$FM" train --config "$T/nope.json" -o "$T/x.fmm"
expect_rc "missing config" 1
expect_in "missing config named" "$T/err" "$T/nope.json"
expect_not_in "missing config: no made-up line" "$T/err" ":-1:"
expect "missing config: no output" test ! -e "$T/x.fmm"

printf '{\n  "name": "x",\n  "reference": [,]\n}\n' >"$T/bad.json"
run "$FM" train --config "$T/bad.json" -o "$T/x.fmm"
expect_rc "config with bad JSON" 1
expect_in "bad JSON: file and line" "$T/err" "$T/bad.json:3:"

sed 's/"train_pairs"/"train_pair"/' $D/tiny.json >"$T/typo.json"
run "$FM" train --config "$T/typo.json" -o "$T/x.fmm"
expect_rc "config with an unknown key" 1
expect_in "unknown key named" "$T/err" 'unknown key "train_pair"'

printf '{"reference": [{"vendor": "r", "format": "rdm", "path": "missing.rdm"}], "query": [{"vendor": "b", "format": "csv", "path": "q.csv"}]}' \
  >"$T/nodict.json"
run "$FM" train --config "$T/nodict.json" -o "$T/x.fmm"
expect_rc "config naming a missing dictionary" 1
expect_in "missing dictionary named" "$T/err" "missing.rdm"
expect "failed train: no output" test ! -e "$T/x.fmm"

head -c 100 "$M" >"$T/trunc.fmm"
for cmd in info match eval map; do
  case $cmd in
    info) run "$FM" info "$T/trunc.fmm" ;;
    match) run "$FM" match --model "$T/trunc.fmm" PX_BID ;;
    eval) run "$FM" eval --model "$T/trunc.fmm" --gold $D/tiny-gold.tsv ;;
    map) run "$FM" map --model "$T/trunc.fmm" -o "$T/trunc.csv" ;;
  esac
  expect_rc "$cmd on a truncated model" 1
  expect_in "$cmd: truncated model named" "$T/err" "$T/trunc.fmm"
  expect_in "$cmd: says truncated" "$T/err" "truncated"
done
expect "map of a truncated model: no output" test ! -e "$T/trunc.csv"

run "$FM" info $D/tiny.json
expect_rc "info on a non-model file" 1
expect_in "non-model file named" "$T/err" "$D/tiny.json: not a fieldmatch model file"
run "$FM" match --model "$T/absent.fmm" PX_BID
expect_rc "missing model" 1
expect_in "missing model named" "$T/err" "$T/absent.fmm"

for k in 0 -3 abc 1001 2.5 ''; do
  run "$FM" match --model "$M" -k "$k" PX_BID
  expect_rc "match -k '$k'" 2
  expect_in "match -k '$k' explained" "$T/err" "-k needs an integer"
  run "$FM" map --model "$M" -k "$k" -o "$T/k.csv"
  expect_rc "map -k '$k'" 2
  expect_in "map -k '$k' explained" "$T/err" "-k needs an integer"
done
expect "bad -k: no output" test ! -e "$T/k.csv"
run "$FM" match --model "$M" -k
expect_rc "match -k without a value" 2
expect_in "-k without a value explained" "$T/err" "option -k needs a value"
run "$FM" match --model "$M" -x PX_BID
expect_rc "match: unknown short option" 2
expect_in "match: unknown short option named" "$T/err" "unknown option '-x'"

run "$FM" frobnicate
expect_rc "unknown command" 2
expect_in "unknown command named" "$T/err" "unknown command 'frobnicate'"
run "$FM"
expect_rc "no command" 2
for cmd in train match eval map; do
  run "$FM" $cmd --bogus
  expect_rc "$cmd: unknown option" 2
  expect_in "$cmd: unknown option named" "$T/err" "'--bogus'"
done
run "$FM" info
expect_rc "info without a model" 2
run "$FM" match --model "$M"
expect_rc "match without ids" 2
run "$FM" map --model "$M" -o "$T/out.txt"
expect_rc "map to an unknown extension" 2
expect_in "map format explained" "$T/err" "cannot tell the format"
run "$FM" map --model "$M" -o "$T/x.csv" --format xml
expect_rc "map --format xml" 2
run "$FM" train -o "$T/x.fmm"
expect_rc "train without --config" 2
expect_in "train --config required" "$T/err" "--config is required"

run "$FM" eval --model "$M" --gold "$T/nope.tsv"
expect_rc "gold file missing" 1
expect_in "missing gold named" "$T/err" "$T/nope.tsv"
printf 'q\tr\nPX_BID\n' >"$T/badgold.tsv"
run "$FM" eval --model "$M" --gold "$T/badgold.tsv"
expect_rc "malformed gold" 1
expect_in "malformed gold: file and line" "$T/err" "$T/badgold.tsv:2"

# ---- failed writes leave nothing half-written -------------------------------
run "$FM" train --config $D/tiny.json -o "$T/no/such/dir/m.fmm"
expect_rc "train into a missing directory" 1
expect_in "train into a missing directory: named" "$T/err" "$T/no/such/dir/m.fmm"
expect "train into a missing directory: nothing written" test ! -e "$T/no"

mkdir "$T/adir"
run "$FM" map --model "$M" -o "$T/adir" --format csv
expect_rc "map onto a directory" 1
expect_in "map onto a directory: named" "$T/err" "$T/adir"
expect "map onto a directory: still an empty directory" test -d "$T/adir" -a -z "$(ls -A "$T/adir")"
expect "map onto a directory: no temp file" no_temps

# an existing output survives a failed run untouched
echo keep >"$T/keep.csv"
run "$FM" map --model "$T/trunc.fmm" -o "$T/keep.csv"
expect_rc "map with a bad model over an existing file" 1
expect "existing map output untouched" test "$(cat "$T/keep.csv")" = keep
cp "$M" "$T/keep.fmm"
run "$FM" train --config "$T/bad.json" -o "$T/keep.fmm"
expect_rc "failed train over an existing model" 1
expect "existing model untouched" cmp -s "$M" "$T/keep.fmm"
expect "no temp files anywhere" no_temps

# ---- help -------------------------------------------------------------------
for cmd in train match eval map info; do
  run "$FM" $cmd --help
  expect_rc "$cmd --help" 0
  expect_in "$cmd --help usage" "$T/out" "usage: fieldmatch $cmd"
done
run "$FM" --help
expect_rc "--help" 0
run "$FM" --version
expect_rc "--version" 0
expect_in "--version" "$T/out" "model format"

echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
