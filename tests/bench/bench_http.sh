#!/usr/bin/env bash
# bench_http.sh: drive GET /v1/match with wrk on loopback for a fixed time,
# cycling through real Bloomberg ids of the model, and print requests/s,
# latency percentiles and the non-2xx count.  A benchmark, not a test.
#   tests/bench/bench_http.sh [build/fieldmatch] [config] [seconds] [connections]
# Defaults: sample config, 10 s, 32 connections, 2 server threads, wrk on
# 2 threads (wrk and the server share the machine's cores).
# FM_BENCH_CACHE=N sets the server's --match-cache (0 or off: no cache, so
# every request ranks; default: the server's default).
# FM_BENCH_DB=1 serves with a database too (the config's dictionaries
# imported, a batch run's proposals, and one accepted mapping per 10 fields),
# so every lookup also asks SQLite for a curated mapping, as in production.
set -eu
FM=${1:-build/fieldmatch}
CONFIG=${2:-train/sample.json}
SECS=${3:-10}
CONNS=${4:-32}
THREADS=${FM_BENCH_THREADS:-2}
CACHE=${FM_BENCH_CACHE:-}
USE_DB=${FM_BENCH_DB:-}
command -v wrk >/dev/null || { echo "wrk is not installed" >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/fm_bench_http.XXXXXX")
PID=
trap '[[ -n $PID ]] && kill $PID 2>/dev/null; rm -rf "$T"' EXIT
"$FM" train --config "$CONFIG" -o "$T/m.fmm" >/dev/null 2>&1
# the query ids of the model, as a Lua list
"$FM" map --model "$T/m.fmm" -k 1 --quiet -o "$T/map.jsonl" >/dev/null 2>&1 || true
python3 -c '
import json, sys, urllib.parse
ids = []
for line in open(sys.argv[1]) if len(sys.argv) > 1 else []:
    try: ids.append(json.loads(line)["query_id"])
    except Exception: pass
ids = ids[:5000] or ["PX_LAST"]
print("ids = {" + ",".join(json.dumps(urllib.parse.quote(i, safe="")) for i in ids) + "}")
' "$T/map.jsonl" >"$T/ids.lua" || echo 'ids = {"PX_LAST"}' >"$T/ids.lua"
DBARGS=()
if [[ -n $USE_DB ]]; then
  "$FM" import --config "$CONFIG" --db "$T/fm.db" -q >/dev/null 2>&1
  "$FM" batch run --model "$T/m.fmm" --db "$T/fm.db" --quiet >/dev/null 2>&1
  # Every 10th field gets an accepted mapping (its model top 1), so the bench
  # mixes curated and uncurated lookups.
  python3 - "$T/map.jsonl" "$T/fm.db" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[2])
rows = [json.loads(l) for l in open(sys.argv[1])][::10]
for r in rows:
    q = db.execute("SELECT field_id FROM fields WHERE role='query' AND id=?", (r["query_id"],)).fetchone()
    f = db.execute("SELECT field_id FROM fields WHERE role='reference' AND id=?", (r["reference_id"],)).fetchone()
    if q and f:
        db.execute("UPDATE mappings SET status='superseded' WHERE query_field_id=? AND status='accepted'", (q[0],))
        db.execute("INSERT INTO mappings(mapping_key, query_field_id, ref_field_id, status, origin, decided_by)"
                   " VALUES (?, ?, ?, 'accepted', 'analyst', 'bench') ON CONFLICT(query_field_id, ref_field_id)"
                   " DO UPDATE SET status='accepted'", ("bench_%d" % q[0], q[0], f[0]))
db.commit()
PY
  DBARGS=(--db "$T/fm.db")
fi
cat "$T/ids.lua" - >"$T/mix.lua" <<'LUA'
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/v1/match?k=10&field=" .. ids[(n % #ids) + 1])
end
LUA
"$FM" serve --model "$T/m.fmm" --no-auth --listen 127.0.0.1:0 --threads "$THREADS" \
  --access-log off ${CACHE:+--match-cache "$CACHE"} "${DBARGS[@]}" 2>"$T/log" & PID=$!
for _ in $(seq 100); do grep -q "listening on port" "$T/log" && break; sleep 0.1; done
PORT=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$T/log")
echo "model: $CONFIG ($(grep -o '","' "$T/ids.lua" | wc -l) ids), $SECS s, $CONNS connections, $THREADS server threads, match cache ${CACHE:-default}, database $([[ -n $USE_DB ]] && echo "yes (curated-first)" || echo no)"
wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$T/mix.lua" "http://127.0.0.1:$PORT" | tee "$T/wrk"
non2xx=$(sed -n 's/.*Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$T/wrk")
echo "non-2xx responses: ${non2xx:-0}"
kill -TERM $PID; wait $PID || true; PID=
