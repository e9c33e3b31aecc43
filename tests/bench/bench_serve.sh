#!/usr/bin/env bash
# bench_serve.sh: the HTTP service against its in-process limit, in one run.
# A benchmark, not a test (never run by ctest).
#
# Trains the real model (train/bbg-refinitiv.json, needs ../shared), builds a
# store (import + batch run, so curated-first lookups ask SQLite as in
# production), creates a reader token, and starts `fieldmatch serve` WITH
# auth on 2 threads.  Then, on the same machine and in the same run:
#   1. in-process: bench_lookup's mean single-lookup time (by id, k=10) over
#      the model's query fields; the limit is 2 cores / that mean;
#   2. wrk -t2 -c64 -d15s of GET /v1/match?k=10 over every real query id in
#      the model's own order (a realistic mix), bearer token on every request,
#      with the server's default match cache and again with --match-cache off;
#   3. wrk -t2 -c64 -d15s of POST /v1/match with 100 real ids per request.
# Prints req/s, p50, p99, non-2xx, fields/s, and each as a share of the
# in-process limit, beside the issue's targets (>= 30,000 lookups/s with
# auth and p99 < 5 ms; >= 25,000 fields/s through batch POSTs).
#   tests/bench/bench_serve.sh [build-dir] [seconds] [connections]
set -eu
BUILD=${1:-build}
SECS=${2:-15}
CONNS=${3:-64}
FM=$BUILD/fieldmatch
CONFIG=train/bbg-refinitiv.json
SHARED=${FM_SHARED:-../shared}
[[ -d $SHARED/data/vendor ]] || { echo "bench_serve: needs $SHARED (the vendor dictionaries); stopping" >&2; exit 1; }
command -v wrk >/dev/null || { echo "bench_serve: wrk is not installed (scripts/setup.sh)" >&2; exit 1; }
cmake --build "$BUILD" --target bench_lookup fieldmatch-cli -j2 >/dev/null
T=$(mktemp -d "${TMPDIR:-/tmp}/fm_bench_serve.XXXXXX")
PID=
trap '[[ -n $PID ]] && kill $PID 2>/dev/null; rm -rf "$T"' EXIT

echo "== setup: train, import, batch run (not timed)"
"$FM" train --config "$CONFIG" -o "$T/m.fmm" --quiet 2>/dev/null
"$FM" import --config "$CONFIG" --db "$T/fm.db" -q >/dev/null 2>&1
"$FM" batch run --model "$T/m.fmm" --db "$T/fm.db" --quiet >/dev/null
TOKEN=$("$FM" token create --db "$T/fm.db" --role reader --owner bench 2>/dev/null)
"$FM" map --model "$T/m.fmm" -k 1 --quiet -o "$T/map.jsonl" >/dev/null
python3 - "$T/map.jsonl" "$T" <<'PY'
import json, sys, urllib.parse
ids = [json.loads(l)["query_id"] for l in open(sys.argv[1])]
out = sys.argv[2]
with open(out + "/get.lua", "w") as f:
    f.write("ids = {" + ",".join(json.dumps(urllib.parse.quote(i, safe="")) for i in ids) + "}\n")
    f.write('local n = 0\nrequest = function()\n  n = n + 1\n'
            '  return wrk.format("GET", "/v1/match?k=10&field=" .. ids[(n % #ids) + 1])\nend\n')
bodies = [json.dumps({"fields": ids[i:i + 100], "k": 10}) for i in range(0, len(ids) - 99, 100)]
with open(out + "/post.lua", "w") as f:
    f.write("bodies = {" + ",".join(json.dumps(b) for b in bodies) + "}\n")
    # wrk.format with a headers table does not add -H's headers: copy them
    f.write('local n = 0\nlocal h = {}\nrequest = function()\n  n = n + 1\n'
            '  if n == 1 then for k, v in pairs(wrk.headers) do h[k] = v end\n'
            '    h["Content-Type"] = "application/json" end\n'
            '  return wrk.format("POST", "/v1/match", h, bodies[(n % #bodies) + 1])\nend\n')
print("ids: %d real query ids; %d batch bodies of 100" % (len(ids), len(bodies)))
PY

echo "== in-process (bench_lookup, k=10, by id)"
"$BUILD/tests/bench_lookup" "$T/m.fmm" 5000 3 10 | tee "$T/inproc"
MEAN_US=$(sed -n 's/^by id: *mean \([0-9.]*\) us.*/\1/p' "$T/inproc")
LIMIT=$(python3 -c "print(round(2 / ($MEAN_US * 1e-6)))")
echo "in-process limit: 2 cores / ${MEAN_US} us = ${LIMIT} lookups/s"

serve() { # serve [extra options...]
  "$FM" serve --model "$T/m.fmm" --db "$T/fm.db" --listen 127.0.0.1:0 --threads 2 \
    --access-log off "$@" 2>"$T/log" & PID=$!
  for _ in $(seq 600); do grep -q "listening on port" "$T/log" && break; sleep 0.1; done
  PORT=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$T/log")
  [[ -n $PORT ]] || { echo "server did not start" >&2; cat "$T/log" >&2; exit 1; }
}
stop() { kill -TERM $PID; wait $PID || true; PID=; }
wrkrun() { # wrkrun NAME SCRIPT
  wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$T/$2" -H "Authorization: Bearer $TOKEN" \
    "http://127.0.0.1:$PORT" >"$T/$1.wrk"
  python3 - "$T/$1.wrk" "$1" <<'PY' >>"$T/rows"
import re, sys
t = open(sys.argv[1]).read()
def ms(v, u): return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[u]
rps = float(re.search(r"Requests/sec:\s*([\d.]+)", t).group(1))
p50 = ms(*re.search(r"50%\s+([\d.]+)(us|ms|s)", t).groups())
p99 = ms(*re.search(r"99%\s+([\d.]+)(us|ms|s)", t).groups())
bad = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", t)
err = re.search(r"Socket errors:(.*)", t)
print("%s\t%.0f\t%.2f\t%.2f\t%s\t%s" % (sys.argv[2], rps, p50, p99, bad.group(1) if bad else "0",
                                        err.group(1).strip() if err else "none"))
PY
}
: >"$T/rows"
serve; wrkrun get-cache get.lua; wrkrun post-cache post.lua; stop
serve --match-cache off; wrkrun get-nocache get.lua; wrkrun post-nocache post.lua; stop

echo
echo "== results (wrk -t2 -c$CONNS -d${SECS}s, auth on, 2 server threads, same machine)"
python3 - "$T/rows" "$LIMIT" "$MEAN_US" <<'PY'
import sys
limit, mean = float(sys.argv[2]), float(sys.argv[3])
print("%-14s %10s %9s %9s %8s %12s %9s  %s" % ("run", "req/s", "p50 ms", "p99 ms", "non-2xx",
                                             "fields/s", "of limit", "target"))
for line in open(sys.argv[1]):
    name, rps, p50, p99, bad, err = line.rstrip("\n").split("\t")
    rps = float(rps)
    fields = rps * (100 if name.startswith("post") else 1)
    target = (">= 25,000 fields/s" if name.startswith("post") else ">= 30,000 req/s, p99 < 5 ms")
    print("%-14s %10.0f %9s %9s %8s %12.0f %8.2fx  %s%s" % (name, rps, p50, p99, bad, fields,
          fields / limit, target, "" if err == "none" else "  socket errors: " + err))
print("in-process limit: %.0f lookups/s (2 cores / %.1f us mean lookup)" % (limit, mean))
PY
