#!/usr/bin/env bash
# bench_export.sh: does `fieldmatch export` stream?
#
#   tests/bench/bench_export.sh [N...]     (default: 10000 100000)
#
# For each N it builds a scratch database with N query fields, N reference
# fields, N mappings (a quarter proposed, the rest accepted; every tenth with
# a comment that needs CSV quoting) and 3 candidates per query field from one
# batch run, straight with the sqlite3 CLI (the point is the export, not the
# import).  Then it times whole `fieldmatch export` processes with
# /usr/bin/time -v, output to /dev/null: CSV, JSON, and CSV with
# --with-candidates 3.  Reported: rows, wall seconds, peak RSS (KiB).  If
# the export streams, peak RSS is the same for 10k and 100k rows.  Nothing is
# written to the repository.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

FM=${FIELDMATCH:-build/fieldmatch}
for tool in /usr/bin/time sqlite3 "$FM"; do
  command -v "$tool" >/dev/null || { echo "bench_export: $tool is missing" >&2; exit 1; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/fm_bench_export.XXXXXX")
trap 'rm -rf "$T"' EXIT

sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10000 100000)

make_db() { # make_db PATH N
  local db=$1 n=$2
  rm -f "$db"
  # A database at the current schema, made by fieldmatch itself (it also
  # holds the sample dictionaries; the generated rows use ids above them).
  "$FM" import --config train/sample.json --db "$db" >/dev/null
  sqlite3 "$db" <<SQL
BEGIN;
INSERT INTO dictionaries(dict_id, vendor, source, role, version, checksum, n_fields)
  VALUES (1001, 'bloomberg', 'bench:query', 'query', 1, 'x', $n),
         (1002, 'refinitiv', 'bench:reference', 'reference', 1, 'y', $n);
WITH RECURSIVE i(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM i WHERE k < $n)
INSERT INTO fields(field_id, vendor, id, role, name, dict_id, content_hash)
  SELECT 1000000 + k, 'bloomberg', printf('BBG_FIELD_%07d', k), 'query',
         printf('Bloomberg field number %d', k), 1001, 'h' FROM i;
WITH RECURSIVE i(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM i WHERE k < $n)
INSERT INTO fields(field_id, vendor, id, role, name, dict_id, content_hash)
  SELECT 2000000 + k, 'refinitiv', printf('RDN_%07d', k), 'reference',
         printf('REFINITIV FIELD %d', k), 1002, 'h' FROM i;
INSERT INTO model_runs(model_run_id, model_path, model_checksum) VALUES (1, 'bench.fmm', 'c');
INSERT INTO batch_runs(batch_run_id, model_run_id) VALUES (1, 1);
WITH RECURSIVE i(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM i WHERE k < $n)
INSERT INTO mappings(mapping_key, query_field_id, ref_field_id, status, origin, score,
                     batch_run_id, decided_by, comment)
  SELECT printf('m_%016x', (k * 2654435761) % 4294967296 * 4096 + k % 4096),
         1000000 + k, 2000000 + k,
         CASE WHEN k % 4 = 0 THEN 'proposed' ELSE 'accepted' END, 'model',
         1.0 / (k + 2), 1, 'bench',
         CASE WHEN k % 10 = 0 THEN 'checked, "twice"' ELSE '' END FROM i;
WITH RECURSIVE i(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM i WHERE k < $n),
     r(rank) AS (VALUES (1), (2), (3))
INSERT INTO candidates(batch_run_id, query_field_id, rank, ref_field_id, score, model_run_id)
  SELECT 1, 1000000 + k, rank, 2000000 + ((k + rank - 2) % $n) + 1, 1.0 / (rank + 1), 1
  FROM i, r;
COMMIT;
SQL
}

measure() { # measure LABEL N ARGS...: one line of the table
  local label=$1 n=$2
  shift 2
  /usr/bin/time -v "$FM" export "$@" >"$T/out" 2>"$T/time" || {
    cat "$T/time" >&2
    exit 1
  }
  local rows wall rss
  rows=$(grep -c '' "$T/out" || true)
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$T/time")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$T/time")
  printf '%-28s %8d %10d lines %10s wall %8s KiB peak RSS\n' "$label" "$n" "$rows" "$wall" "$rss"
}

for n in "${sizes[@]}"; do
  db=$T/bench_$n.db
  make_db "$db" "$n"
  echo "mappings: $(sqlite3 "$db" 'SELECT count(*) FROM mappings'), database $(du -k "$db" | cut -f1) KiB"
  measure "csv --status all" "$n" --db "$db" --status all
  measure "json --status all" "$n" --db "$db" --status all --format json
  measure "csv --with-candidates 3" "$n" --db "$db" --status all --with-candidates 3
  measure "jsonl --status accepted" "$n" --db "$db" --status accepted --format jsonl
  [ -n "${KEEP:-}" ] && cp "$db" "$KEEP" || true
  rm -f "$db" "$db-wal" "$db-shm"
done
