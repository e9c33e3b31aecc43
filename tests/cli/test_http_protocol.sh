#!/usr/bin/env bash
# test_http_protocol.sh: HTTP/1.1 persistent connections and pipelining,
# request ids and the JSON access log, and JSON bodies for protocol errors.
# One TCP connection carries several requests (curl reuses it), pipelined
# requests are all answered in order, a POST with a body keeps the
# connection too, "Connection: close" is honoured, and HEAD is served on
# every GET route (headers only).
#   FIELDMATCH=build/fieldmatch bash tests/cli/test_http_protocol.sh
set -u
FM=${FIELDMATCH:-build/fieldmatch}
command -v curl >/dev/null || { echo "curl missing: skip"; exit 77; }
command -v python3 >/dev/null || { echo "python3 missing: skip"; exit 77; }
"$FM" --help | grep -q serve || { echo "built without HTTP: skip"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/fm_protocol.XXXXXX") || exit 1
PID=
trap '[[ -n $PID ]] && kill $PID 2>/dev/null; rm -rf "$T"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$FM" train --config train/sample.json -o "$T/s.fmm" >/dev/null 2>&1 || { echo "train failed"; exit 1; }
"$FM" serve --model "$T/s.fmm" --listen 127.0.0.1:0 --threads 2 --no-auth \
  --access-log-json 2>"$T/log" & PID=$!
# wait on state: the log line that names the port (60 s deadline)
for _ in $(seq 600); do grep -q "listening on port" "$T/log" && break
  kill -0 $PID 2>/dev/null || break; sleep 0.1; done
PORT=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$T/log")
[[ -n $PORT ]] || { echo "FAIL: server did not log its port within 60 s"; cat "$T/log"; exit 1; }
B=http://127.0.0.1:$PORT

# request ids: the client's is echoed; otherwise one is generated
run curl -s -D - -o /dev/null -H "X-Request-Id: abc-123" "$B/healthz"
expect_in "client's X-Request-Id echoed" "$T/out" "X-Request-Id: abc-123"
run curl -s -D - -o /dev/null -H "X-Request-Id: bad id <script>" "$B/healthz"
expect "unsafe X-Request-Id replaced by a generated one" grep -qE "^X-Request-Id: [0-9a-f]{16}" "$T/out"
# the line is written when the request completes, maybe after the client
# has its response: poll the log (60 s deadline)
python3 - "$T/log" <<'PY' && ok || bad "JSON access log lines (waited 60 s for request abc-123)"
import json, sys, time
deadline = time.monotonic() + 60
while True:
    lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
    mine = [l for l in lines if l["request_id"] == "abc-123"]
    if mine or time.monotonic() > deadline:
        break
    time.sleep(0.05)
assert mine and mine[0]["path"] == "/healthz" and mine[0]["status"] == 200, lines
assert all(set(l) >= {"ts", "request_id", "method", "path", "status", "ms", "owner"} for l in lines)
PY

# curl: two URLs in one invocation share one connection
curl -sv -o /dev/null -o /dev/null "$B/v1/match?field=PX_LAST&k=3" "$B/healthz" 2>"$T/v"
expect_in "curl reuses the connection" "$T/v" "Re-using existing connection"
expect_not_in "no Connection: close" "$T/v" "Connection: close"

# raw socket: pipelined requests, a POST with a body, then Connection: close
python3 - "$PORT" >"$T/pipe" 2>&1 <<'PY'
import socket, sys
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port), timeout=60)
body = b'{"fields":["PX_LAST","PX_BID"],"k":2}'
reqs = (b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
        b"GET /v1/match?field=PX_LAST&k=2 HTTP/1.1\r\nHost: t\r\n\r\n"
        b"POST /v1/match HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body +
        b"GET /readyz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
s.sendall(reqs)
data = b""
while True:  # the server closes after the last request (Connection: close)
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
# split into responses by Content-Length
out, i = [], 0
while i < len(data):
    head_end = data.index(b"\r\n\r\n", i)
    head = data[i:head_end].decode()
    n = 0
    for line in head.split("\r\n")[1:]:
        k, v = line.split(":", 1)
        if k.lower() == "content-length":
            n = int(v)
    out.append((head.split("\r\n")[0], data[head_end + 4:head_end + 4 + n]))
    i = head_end + 4 + n
for status, b in out:
    print(status, b[:40])
print("responses", len(out))
PY
expect_in "four pipelined responses on one connection" "$T/pipe" "responses 4"
expect "all 200" test "$(grep -c '^HTTP/1.1 200' "$T/pipe")" -eq 4
expect_in "the POST answered in order" "$T/pipe" "b'{\"results\""

# HEAD on a GET route: headers only; HEAD where only POST is served: 405
run curl -s -I "$B/healthz"
expect_in "HEAD /healthz 200" "$T/out" "HTTP/1.1 200"
expect_in "HEAD keeps Content-Length" "$T/out" "Content-Length: 15"
run curl -s -o /dev/null -w '%{http_code}' -X OPTIONS "$B/v1/match"
expect_eq "OPTIONS preflight" "$(cat "$T/out")" 204
run curl -s -D - -o /dev/null "$B/v1/match" -X PUT
expect_in "Allow lists HEAD for a GET route" "$T/out" "GET, HEAD"

# the contract, served: YAML and JSON are the same document; ETag revalidates
run curl -s -D "$T/h" -o "$T/oa.json" "$B/openapi.json"
expect_in "openapi.json is JSON" "$T/h" "Content-Type: application/json"
run curl -s -o "$T/oa.yaml" "$B/openapi.yaml"
expect "openapi.yaml is api/openapi.yaml byte for byte" cmp -s "$T/oa.yaml" api/openapi.yaml
expect "openapi.json has the paths" python3 -c "
import json, sys; d = json.load(open('$T/oa.json')); sys.exit(not ('/v1/match' in d['paths'] and d['openapi'].startswith('3.')))"
ETAG=$(sed -n 's/^ETag: *\(.*\)\r$/\1/p' "$T/h")
run curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $ETAG" "$B/openapi.json"
expect_eq "If-None-Match: 304" "$(cat "$T/out")" 304

# process metrics
run curl -s "$B/metrics"
expect "metrics: resident memory" grep -qE '^process_resident_memory_bytes [1-9][0-9]*$' "$T/out"
expect "metrics: uptime" grep -qE '^fm_uptime_seconds [0-9.]+$' "$T/out"
expect "metrics: start time" grep -qE '^process_start_time_seconds [1-9][0-9.]+$' "$T/out"

# a header over the limit: our JSON error body, not libmicrohttpd's page
BIG=$(python3 -c 'print("x" * 10000)')
run curl -s -w '\n%{http_code}' -H "X-Big: $BIG" "$B/healthz"
expect_in "431 for a 10 kB header" "$T/out" "431"
expect_in "431 body is the JSON error" "$T/out" '"code":1403'
run curl -s -w '\n%{http_code}' "$B/v1/match?field=$(python3 -c 'print("A" * 5000)')"
expect_in "414 JSON for a long target" "$T/out" '"code":1402'

kill $PID; wait $PID; PID=
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
