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
# Benchmarks: scikit-learn for the peer pipeline, GNU time for peak RSS, wrk
# to load the HTTP server.
packages=(
  build-essential cmake pkg-config
  libicu-dev libopenblas-dev liblapacke-dev
  libjansson-dev libsqlite3-dev libmicrohttpd-dev
  zlib1g-dev nettle-dev
  clang sqlite3 curl python3-jsonschema python3-yaml
  python3-sklearn time wrk
)

missing=()
for p in "${packages[@]}"; do
  # "install ok installed" only: a removed package whose config files remain
  # is still known to dpkg but is not usable.
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
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
echo "setup: done"
