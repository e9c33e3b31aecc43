#!/usr/bin/env bash
# demo.sh: the first command of the README.  Installs what is missing,
# builds, trains a model on the bundled sample dictionaries, then runs the
# main job on the embedded default (SQLite): loads the dictionaries into a
# database, maps every Bloomberg field in a resumable batch run, shows the
# review queue, records an analyst decision, answers a lookup curated-first,
# exports the mappings and snapshots the curated tables.  The database and
# files go to build/demo/ (recreated on each run).  Works from any directory.
# It ends by serving the review app on that database: it prints the URL and
# an analyst token to paste, and serves until Ctrl-C.  Scripted runs skip
# that step with --no-serve (or FM_DEMO_NO_SERVE=1; CI=true does the same).
# FM_DEMO_PORT chooses the port (default 8080).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

serve=1
for arg in "$@"; do
  case $arg in
    --no-serve) serve=0 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "demo: unknown argument '$arg' (--no-serve)" >&2; exit 2 ;;
  esac
done
[ "${FM_DEMO_NO_SERVE:-0}" = 1 ] && serve=0
[ "${CI:-}" = true ] && serve=0

step() { printf '\n== %s\n' "$*"; }

if [ ! -f train/sample.json ] || [ ! -f data/sample/gold-test.tsv ]; then
  echo "demo: train/sample.json or data/sample/gold-test.tsv is missing: this checkout has no sample dataset" >&2
  exit 1
fi

step "packages"
bash scripts/setup.sh

step "build (build/)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
fm=build/fieldmatch

step "train: train/sample.json -> models/sample.fmm"
mkdir -p models
"$fm" train --config train/sample.json -o models/sample.fmm
"$fm" info models/sample.fmm
echo

step "lookup: fieldmatch match --model models/sample.fmm PX_LAST CUR_MKT_CAP CHG_PCT_1D"
"$fm" match --model models/sample.fmm PX_LAST CUR_MKT_CAP CHG_PCT_1D

step "evaluation: fieldmatch eval --model models/sample.fmm --gold data/sample/gold-test.tsv"
"$fm" eval --model models/sample.fmm --gold data/sample/gold-test.tsv

demo=build/demo
db=$demo/fieldmatch.db
rm -rf "$demo"
mkdir -p "$demo"

step "store: fieldmatch import --config train/sample.json --db $db"
"$fm" import --config train/sample.json --db "$db"

step "batch mapping: fieldmatch batch run --model models/sample.fmm --db $db"
"$fm" batch run --model models/sample.fmm --db "$db"

step "review queue (most uncertain first): fieldmatch review queue --db $db --limit 5"
"$fm" review queue --db "$db" --limit 5

step "an analyst decision: review show PX_LAST, then accept TRDPRC_1"
"$fm" review show PX_LAST --db "$db" | head -12
"$fm" review accept PX_LAST TRDPRC_1 --db "$db" --by demo --comment "last trade, checked"

step "curated first: fieldmatch match --model models/sample.fmm --db $db -k 3 PX_LAST"
"$fm" match --model models/sample.fmm --db "$db" -k 3 PX_LAST

step "export: fieldmatch export --db $db --status all --format csv -o $demo/mappings.csv"
"$fm" export --db "$db" --status all --format csv -o "$demo/mappings.csv"
head -3 "$demo/mappings.csv"

step "snapshot: fieldmatch snapshot run --db $db --root $demo/lake"
"$fm" snapshot run --db "$db" --root "$demo/lake"
find "$demo/lake" -name '*.gz' | sort

printf '\ndemo: done.  Database: %s.  Try: %s review queue --db %s\n' "$db" "$fm" "$db"
[ "$serve" = 1 ] || exit 0

step "the review app: fieldmatch serve --model models/sample.fmm --db $db"
token=$("$fm" token create --db "$db" --role analyst --owner analyst)
port=${FM_DEMO_PORT:-8080}
printf '\nOpen   http://127.0.0.1:%s/ui/\nToken  %s   (an analyst token: paste it into "API token")\nStop   Ctrl-C\n\n' "$port" "$token"
exec "$fm" serve --model models/sample.fmm --db "$db" --listen "127.0.0.1:$port"
