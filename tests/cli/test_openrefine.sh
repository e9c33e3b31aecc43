#!/usr/bin/env bash
# test_openrefine.sh: plays OpenRefine's part.  A reader adds one service
# URL, {base}/t/{secret}/reconcile; everything else is reached from the
# manifest with no header at all: a query batch, preview, view, the three
# suggest services, the property proposal and a data extension.  Each body is
# validated against the reconciliation API 0.2 JSON Schemas (when
# ../shared has them).  Also: the curated mapping is the one "match": true,
# the secret never reaches the access log, a wrong secret is 401, and the
# Host header changes no URL (manifest URLs come from --public-url or the
# listen address).
#   FIELDMATCH=build/fieldmatch bash tests/cli/test_openrefine.sh
set -u
FM=${FIELDMATCH:-build/fieldmatch}
command -v curl >/dev/null || { echo "curl missing: skip"; exit 77; }
command -v python3 >/dev/null || { echo "python3 missing: skip"; exit 77; }
"$FM" --help | grep -q serve || { echo "built without HTTP: skip"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/fm_openrefine.XXXXXX") || exit 1
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill $p 2>/dev/null; done; rm -rf "$T"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$FM" train --config train/sample.json -o "$T/s.fmm" --quiet || { echo "train failed"; exit 1; }
DB=$T/db.sqlite
"$FM" import --config train/sample.json --db "$DB" -q >/dev/null 2>&1 || { echo "import failed"; exit 1; }
READER=$("$FM" token create --db "$DB" --role reader --owner rita 2>/dev/null)
# a curated decision: PX_LAST -> TRDPRC_1, by an analyst
run "$FM" review pick PX_LAST TRDPRC_1 --db "$DB" --by ana --comment "checked"
expect_rc "curated decision recorded" 0

start() { # start LOG [serve options...]: sets PORT
  local log=$1
  shift
  "$FM" serve --model "$T/s.fmm" --db "$DB" --listen 127.0.0.1:0 --threads 2 "$@" 2>"$log" &
  PIDS+=($!)
  for _ in $(seq 600); do grep -q "listening on port" "$log" && break; sleep 0.1; done
  PORT=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$log")
  [[ -n $PORT ]] || { echo "FAIL: server did not log its port within 60 s"; cat "$log"; exit 1; }
}
start "$T/log"
B=http://127.0.0.1:$PORT
SERVICE=$B/t/$READER/reconcile
SCH=${FM_SHARED:-../shared}/data/reconciliation-schemas/0.2/schemas
[[ -d $SCH ]] || { echo "reconciliation schemas absent ($SCH): schema checks skipped" >&2; SCH=; }

python3 - "$SERVICE" "$SCH" "$(dirname "${BASH_SOURCE[0]}")" >"$T/py.out" 2>&1 <<'PY'
import json, sys, urllib.parse, urllib.request, urllib.error
service, sch, here = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, here)
checks = 0
def check(cond, what):
    global checks
    checks += 1
    if not cond:
        raise SystemExit("FAIL: " + what)
def valid(name, doc):
    if sch:
        import recon_schema
        recon_schema.validate(sch, name, doc)
def get(url):  # no header at all, like a browser
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()
def post(url, form):
    data = urllib.parse.urlencode(form).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=60) as r:
        return r.status, r.read().decode()

st, ct, body = get(service)
manifest = json.loads(body)
valid("manifest", manifest)
check(manifest["view"]["url"].startswith(service), "view URL under the service URL")
check(manifest["preview"]["url"].startswith(service), "preview URL under the service URL")

st, body = post(service, {"queries": json.dumps({"q0": {"query": "PX_LAST", "limit": 3},
                                                  "q1": {"query": "VOLUME"}})})
res = json.loads(body)
valid("reconciliation-result-batch", res)
q0 = res["q0"]["result"]
check(q0[0]["id"] == "TRDPRC_1" and q0[0]["match"] is True, "curated mapping first with match true")
check(all(c["match"] is False for c in q0[1:] + res["q1"]["result"]), "no other match: true")

tmpl = lambda u, i: u.replace("{{id}}", urllib.parse.quote(i))
st, ct, html = get(tmpl(manifest["preview"]["url"], "TRDPRC_1"))
check(st == 200 and ct.startswith("text/html") and "TRDPRC_1" in html, "preview is an HTML card")
st, ct, html = get(tmpl(manifest["view"]["url"], "TRDPRC_1"))
check(st == 200 and ct.startswith("text/html") and "PX_LAST" in html, "view names the curated field")
check("<dt>FID</dt><dd>6</dd>" in html, "view shows the FID")
st, ct, html = get(tmpl(manifest["view"]["url"], "PX_LAST"))
check("Top candidates" in html and "TRDPRC_1" in html, "view of a Bloomberg field")

for kind, name, prefix in (("entity", "suggest-entities-response", "TRD"),
                           ("property", "suggest-properties-response", "ty"),
                           ("type", "suggest-types-response", "fie")):
    s = manifest["suggest"][kind]
    st, ct, body = get(s["service_url"] + s["service_path"] + "?prefix=" + prefix)
    doc = json.loads(body)
    valid(name, doc)
    check(len(doc["result"]) >= 1, "suggest %s finds %s" % (kind, prefix))

p = manifest["extend"]["propose_properties"]
st, ct, body = get(p["service_url"] + p["service_path"] + "?type=field")
props = json.loads(body)
valid("data-extension-property-proposal", props)
ids = [x["id"] for x in props["properties"]]
check({"fid", "type", "description", "dictionary", "curated_mapping", "mapping_status"} <= set(ids),
      "proposed properties")

ext = {"ids": ["TRDPRC_1", "NO_SUCH_FIELD"], "properties": [{"id": i} for i in ids]}
valid("data-extension-query", ext)
st, body = post(service, {"extend": json.dumps(ext)})
doc = json.loads(body)
valid("data-extension-response", doc)
row = doc["rows"]["TRDPRC_1"]
check(row["curated_mapping"] == [{"str": "PX_LAST"}], "extend: curated mapping")
check(row["mapping_status"] == [{"str": "accepted"}], "extend: mapping status")
check(row["type"] and row["description"], "extend: type and description")
check(row["fid"] == [{"int": 6}], "extend: FID of TRDPRC_1 from the RDM dictionary")
check(all(v == [] for v in doc["rows"]["NO_SUCH_FIELD"].values()), "extend: unknown id is empty")

bad = service.replace("/t/fm_", "/t/fm_0")
try:
    get(bad)
    check(False, "a wrong secret is refused")
except urllib.error.HTTPError as e:
    check(e.code == 401, "a wrong secret: 401")
print("python checks", checks)
PY
rc=$?
if [[ $rc -eq 0 ]]; then ok; else bad "OpenRefine walk: $(tail -3 "$T/py.out")"; fi
expect_in "python walk ran" "$T/py.out" "python checks"
expect_not_in "the secret never reaches the log" "$T/log" "${READER:3}"
expect_in "the log says where the secret was" "$T/log" "/t/REDACTED/reconcile"

# Host spoofing changes no URL; without --public-url URLs name the listen address
run curl -s -H "Host: evil.example:1" "$B/reconcile"
expect_not_in "plain manifest ignores Host" "$T/out" "evil.example"
expect_in "plain manifest names the listen address" "$T/out" "\"$B/reconcile/view?id={{id}}\""
run curl -s -H "Host: evil.example:1" "$SERVICE"
expect_not_in "token manifest ignores Host" "$T/out" "evil.example"
start "$T/log2" --public-url https://fm.example.com/base/
P2=http://127.0.0.1:$PORT
run curl -s -H "Host: evil.example:1" -H "X-Forwarded-Host: evil2.example" "$P2/reconcile"
expect_in "--public-url builds the URLs" "$T/out" '"https://fm.example.com/base/reconcile/preview?id={{id}}"'
expect_not_in "no spoofed host" "$T/out" "evil"
run "$FM" serve --model "$T/s.fmm" --db "$DB" --public-url 'ftp://x' --listen 127.0.0.1:0
expect_rc "--public-url must be http(s)" 2

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
