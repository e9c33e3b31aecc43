#!/usr/bin/env bash
# setup.sh: make sure the Debian packages fieldmatch needs are installed.
#
# Idempotent and fast when everything is present: each package is checked
# with dpkg-query first, and apt-get (update + install) runs only for the
# missing ones.  Installing needs root; without root and with packages
# missing it stops with the list and the command to run.
set -euo pipefail

# Build: compiler, CMake, pkg-config and the libraries of CMakeLists.txt.
# zlib writes the gzip snapshot files; nettle (SHA-256 of snapshot files and
# API tokens) comes with libmicrohttpd-dev but is named so it never goes.
# Build: python3-yaml turns api/openapi.yaml into the JSON the server serves
# (scripts/embed_openapi.py).
# Tests: clang, the suite's second compiler; sqlite3 and curl to poke at
# databases and the server; jsonschema to check reconciliation responses
# against the W3C schemas.
# The review app's browser tests (tests/e2e) drive Debian's chromium.
# Benchmarks: scikit-learn for the peer pipeline, GNU time for peak RSS, wrk
# to load the HTTP server.
# Parquet (src/parquet): libzstd and libsnappy compress its pages.
packages=(
  build-essential cmake pkg-config
  libicu-dev libopenblas-dev liblapacke-dev
  libjansson-dev libsqlite3-dev libmicrohttpd-dev
  zlib1g-dev nettle-dev libzstd-dev libsnappy-dev
  clang sqlite3 curl python3-jsonschema python3-yaml
  python3-sklearn time wrk chromium
)

# Node.js and npm run the reference GraphQL implementation (npm graphql,
# tests/graphql, for tests/cli/test_graphql.sh) and the reference Parquet
# reader (npm @duckdb/node-api, tests/duckdb, for test_parquet_duckdb): Debian's nodejs and npm,
# only when no node is on PATH already (a newer one from elsewhere is fine).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  packages+=(nodejs npm)
fi

# The npm packages the tests use, from their committed lockfiles.
npm_ci() {
  local here dir
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  command -v npm >/dev/null || return 0
  for dir in "$here/tests/graphql" "$here/tests/duckdb" "$here/tests/e2e"; do
    if [ ! -f "$dir/node_modules/.package-lock.json" ] ||
       [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
      echo "setup: npm ci in ${dir#"$here"/}"
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    fi
  done
}

missing=()
for p in "${packages[@]}"; do
  # "install ok installed" only: a removed package whose config files remain
  # is still known to dpkg but is not usable.
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  npm_ci
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing Debian packages: ${missing[*]}" >&2
  echo "setup: run as root (sudo $0), or: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
npm_ci
echo "setup: done"
