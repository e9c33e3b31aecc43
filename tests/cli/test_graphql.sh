#!/usr/bin/env bash
# test_graphql.sh: POST/GET /graphql end to end against the reference
# implementation (npm graphql in tests/graphql, installed by
# scripts/setup.sh): the introspection builds a client schema, its SDL is
# api/schema.graphql's, every example of docs/graphql.md and the corner cases
# of valid.json validate and run,
# invalid documents are rejected by both (tests/graphql/check.mjs); then
# with curl: tokens and roles as REST (401, own provisioning requests,
# admins see all), GET for queries, 405 for a mutation over GET, the
# transport error body for a non-GraphQL request, the limits over HTTP.
#   FIELDMATCH=build/fieldmatch bash tests/cli/test_graphql.sh
set -u
FM=${FIELDMATCH:-build/fieldmatch}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GQL=$HERE/../graphql
command -v curl >/dev/null || { echo "curl missing: skip"; exit 77; }
command -v python3 >/dev/null || { echo "python3 missing: skip"; exit 77; }
command -v node >/dev/null || { echo "node missing (scripts/setup.sh installs it): skip"; exit 77; }
[[ -f $GQL/node_modules/graphql/package.json ]] ||
  { echo "npm graphql not installed in tests/graphql (run scripts/setup.sh): skip"; exit 77; }
"$FM" --help | grep -q serve || { echo "built without HTTP: skip"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/fm_gql.XXXXXX") || exit 1
PID=
trap '[[ -n $PID ]] && kill $PID 2>/dev/null; [[ -n ${KEEP:-} ]] || rm -rf "$T"' EXIT
source "$HERE/lib.sh"

"$FM" train --config train/sample.json -o "$T/s.fmm" >/dev/null 2>&1 || { echo "train failed"; exit 1; }
DB=$T/db.sqlite
RITA=$("$FM" token create --db "$DB" --role reader --owner rita 2>/dev/null)
SAM=$("$FM" token create --db "$DB" --role reader --owner sam 2>/dev/null)
ADA=$("$FM" token create --db "$DB" --role admin --owner ada 2>/dev/null)
python3 - "$DB" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("INSERT INTO dictionaries VALUES (1,'bloomberg','bbg','query',1,'x',3,'t','t')")
db.execute("INSERT INTO dictionaries VALUES (2,'refinitiv','rdm','reference',1,'y',3,'t','t')")
rows = [(1, 'bloomberg', 'PX_BID', 'query', 'Bid', 1), (2, 'bloomberg', 'PX_LAST', 'query', 'Last', 1),
        (4, 'refinitiv', 'BID', 'reference', 'Bid é', 2), (5, 'refinitiv', 'TRDPRC_1', 'reference', 'Last', 2)]
db.executemany("INSERT INTO fields (field_id, vendor, id, role, name, dict_id, content_hash)"
               " VALUES (?,?,?,?,?,?,'h')", rows)
db.execute("INSERT INTO mappings (mapping_key, query_field_id, ref_field_id, status, score, comment)"
           " VALUES ('m_1', 1, 4, 'accepted', 0.875, 'ok, \"fine\"')")
db.execute("INSERT INTO mappings (mapping_key, query_field_id, ref_field_id, status, score)"
           " VALUES ('m_2', 2, 5, 'proposed', NULL)")
db.commit()
PY

"$FM" serve --model "$T/s.fmm" --db "$DB" --listen 127.0.0.1:0 --threads 2 \
  --snapshot-root "$T/lake" 2>"$T/log" & PID=$!
# wait on state: the log line with the port (generous deadline for a busy machine)
for _ in $(seq 600); do grep -q "listening on port" "$T/log" && break; sleep 0.1; done
PORT=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$T/log")
[[ -n $PORT ]] || { echo "FAIL: the server did not log its port within 60 s"; cat "$T/log"; exit 1; }
B=http://127.0.0.1:$PORT
# the scheduler's first run writes partitions: wait for the catalog to list one
for _ in $(seq 600); do [[ -s $T/lake/catalog.json ]] && grep -q '"dt"' "$T/lake/catalog.json" && break; sleep 0.1; done

run node "$GQL/check.mjs" "$B/graphql" "$ADA" docs/graphql.md api/schema.graphql
expect_rc "graphql-js checks" 0
cat "$T/out"
sed 's/^/    /' "$T/err" | head -20 >&2

code() { curl -s -o "$T/body" -w '%{http_code}' "$@"; }
gql() { # TOKEN JSON-BODY
  code -H "Authorization: Bearer $1" -H 'Content-Type: application/json' --data "$2" "$B/graphql"
}
expect_eq "401 without a token" "$(code --data '{"query":"{ datasets { name } }"}' "$B/graphql")" 401
expect_eq "reader creates a request" \
  "$(gql "$RITA" '{"query":"mutation { createProvisioningRequest(input: {dataset: \"mappings\"}) { id requester status } }"}')" 200
expect_in "requester is the token owner" "$T/body" '"requester":"rita"'
ID=$(python3 -c "import json; print(json.load(open('$T/body'))['data']['createProvisioningRequest']['id'])")
gql "$SAM" '{"query":"{ provisioningRequests { id } }"}' >/dev/null
expect_not_in "another reader does not list it" "$T/body" "$ID"
gql "$SAM" "{\"query\":\"{ provisioningRequest(id: \\\"$ID\\\") { id } }\"}" >/dev/null
expect_in "another reader gets null" "$T/body" '{"data":{"provisioningRequest":null}}'
gql "$ADA" '{"query":"{ provisioningRequests { id requester } }"}' >/dev/null
expect_in "an admin lists it" "$T/body" "$ID"
gql "$RITA" "{\"query\":\"{ provisioningRequest(id: \\\"$ID\\\") { id } }\"}" >/dev/null
expect_in "its owner gets it" "$T/body" "\"id\":\"$ID\""

# GET: queries only
expect_eq "GET query" "$(code -H "Authorization: Bearer $RITA" -G --data-urlencode 'query={ mappings { total } }' "$B/graphql")" 200
expect_in "GET answers" "$T/body" '{"data":{"mappings":{"total":2}}}'
expect_eq "GET with variables and operationName" "$(code -H "Authorization: Bearer $RITA" -G \
  --data-urlencode 'query=query A { a: mappings { total } } query B($s: MappingStatus) { b: mappings(status: $s) { total } }' \
  --data-urlencode 'variables={"s":"PROPOSED"}' --data-urlencode 'operationName=B' "$B/graphql")" 200
expect_in "GET ran operation B with its variable" "$T/body" '{"data":{"b":{"total":1}}}'
expect_eq "GET mutation is 405" "$(code -H "Authorization: Bearer $RITA" -G \
  --data-urlencode 'query=mutation { createProvisioningRequest(input: {dataset: "fields"}) { id } }' "$B/graphql")" 405
expect_in "405 has the error body" "$T/body" '"code":1300'

# not a GraphQL request: the transport error body
expect_eq "body not JSON" "$(gql "$RITA" 'nope')" 400
expect_in "transport error body" "$T/body" '"code":1000'
expect_eq "no query" "$(gql "$RITA" '{"variables":{}}')" 400
# a GraphQL request error: 200 for application/json clients, 400 for the new media type
expect_eq "validation error, legacy client" "$(gql "$RITA" '{"query":"{ nope }"}')" 200
expect_in "GraphQL error format" "$T/body" '"locations":[{"line":1,"column":3}]'
# a field error: data with null and the error's path
gql "$RITA" '{"query":"{ fields(q: \"last\", first: 500) { nodes { id } } }"}' >/dev/null
expect_in "field error has a path" "$T/body" '"path":["fields"]'

expect_eq "field error with the GraphQL media type is 200" "$(code -H "Authorization: Bearer $RITA" \
  -H 'Accept: application/graphql-response+json' -H 'Content-Type: application/json' \
  --data '{"query":"{ fields(q: \"last\", first: 500) { nodes { id } } }"}' "$B/graphql")" 200

# limits over HTTP
deep="{ __schema { types { fields { type $(printf 'ofType { %.0s' $(seq 14)) name $(printf '} %.0s' $(seq 14)) } } } }"
python3 -c "import json,sys; print(json.dumps({'query': sys.argv[1]}))" "$deep" >"$T/deep.json"
gql "$RITA" "@$T/deep.json" >/dev/null
expect_in "depth limit" "$T/body" 'depth limit'
gql "$RITA" '{"query":"{ datasets { partitions(first: 20000) { dt } } }"}' >/dev/null
expect_in "cost limit" "$T/body" 'estimated cost is over the limit'
python3 -c "import json; print(json.dumps({'query': '{ datasets { name } }' + ' ' * 40000}))" >"$T/big.json"
gql "$RITA" "@$T/big.json" >/dev/null
expect_in "size limit" "$T/body" 'over the limit of 32768'

kill $PID && wait $PID
expect_eq "server exits 0 on SIGTERM" "$?" 0
PID=
echo "passed=$passed failed=$failed"
[[ $failed -eq 0 ]]
