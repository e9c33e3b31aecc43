#!/usr/bin/env bash
# bench_parquet.sh: Parquet (zstd, snappy) vs gzip CSV for a snapshot-like
# table of 100k and 1M rows: file size, wall and CPU seconds, and peak RSS
# (GNU time), which must stay flat once a file passes one row group
# (64 MiB of raw values, ~230k rows of this table): the writer streams.
# "parquet-plain" is Parquet without dictionary encoding.  When DuckDB is installed (tests/duckdb), it
# also times a full scan of the largest files.
#
#   tests/bench/bench_parquet.sh [build-dir]     (default: build)
#   ROWS="100000 1000000 3000000" FORMATS="parquet zstd" tests/bench/bench_parquet.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
cmake --build "$build" -j2 --target bench_parquet >/dev/null
bin="$build/tests/bench_parquet"
[ -x /usr/bin/time ] || { echo "bench_parquet: GNU time missing (apt-get install time)" >&2; exit 1; }
out=$(mktemp -d /tmp/fm_bench_parquet.XXXXXX)
trap 'rm -rf "$out"' EXIT

printf '%-16s %8s %12s %8s %8s %9s\n' format rows bytes wall_s cpu_s peak_rss_MB
IFS=, read -r -a formats <<<"${FORMATS:-parquet zstd,parquet snappy,parquet-plain zstd,csv.gz}"
for rows in ${ROWS:-100000 1000000}; do
  for fmt in "${formats[@]}"; do
    # shellcheck disable=SC2086
    set -- $fmt
    f="$out/t$rows.${fmt// /.}"
    /usr/bin/time -f '%e %U %S %M' -o "$out/time" "$bin" "$1" "$rows" "$f" ${2:-} >"$out/line" 2>/dev/null
    read -r _ _ _ _ bytes _ _ <"$out/line"
    read -r wall user sys rss <"$out/time"
    awk -v f="$fmt" -v r="$rows" -v b="$bytes" -v w="$wall" -v u="$user" -v s="$sys" -v m="$rss" \
      'BEGIN { printf "%-16s %8d %12d %8.2f %8.2f %9.1f\n", f, r, b, w, u + s, m / 1024 }'
  done
done

if command -v node >/dev/null && [ -d tests/duckdb/node_modules/@duckdb/node-api ]; then
  cat >"$out/scan.mjs" <<'EOF'
import { DuckDBInstance } from '@duckdb/node-api';
const con = await (await DuckDBInstance.create(':memory:')).connect();
for (const [label, src] of [['parquet zstd', `read_parquet('${process.argv[2]}')`],
                            ['parquet snappy', `read_parquet('${process.argv[3]}')`],
                            ['csv.gz', `read_csv('${process.argv[4]}', allow_quoted_nulls = false)`]]) {
  const t0 = performance.now();
  const r = (await con.runAndReadAll(
    `SELECT count(*) AS n, count(DISTINCT field_id) AS f, max(length(description)) AS d,
            max(updated_at) AS u FROM ${src}`)).getRowObjectsJS()[0];
  console.log(`duckdb scan ${label}: ${r.n} rows in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
}
EOF
  cp "$out/scan.mjs" tests/duckdb/.bench_scan.mjs
  trap 'rm -rf "$out" tests/duckdb/.bench_scan.mjs' EXIT
  last=${ROWS:-100000 1000000}
  last=${last##* }
  if [ -f "$out/t$last.parquet.zstd" ] && [ -f "$out/t$last.parquet.snappy" ] &&
     [ -f "$out/t$last.csv.gz" ]; then
    node tests/duckdb/.bench_scan.mjs "$out/t$last.parquet.zstd" "$out/t$last.parquet.snappy" \
      "$out/t$last.csv.gz"
  fi
fi
