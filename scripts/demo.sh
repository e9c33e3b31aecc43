#!/usr/bin/env bash
# demo.sh: the first command of the README.  Installs what is missing,
# builds, trains a model on the bundled sample dictionaries, then does what a
# user does with it: looks up a few Bloomberg fields and scores the model
# against the sample's held-out gold pairs.  Works from any directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

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

printf '\ndemo: done.  Try: %s match --model models/sample.fmm -k 5 <FIELD>...\n' "$fm"
