#!/usr/bin/env bash
# The one install command (README, `npm run setup`, .ci/run): the Debian packages the tests need,
# only those missing, then `npm ci`.
#   postgresql: the ingest tests start private PostgreSQL clusters (docs/ingest.md); its binaries
#               are enough, no system cluster is used
#   python3, make, g++: better-sqlite3 compiles from source when no prebuilt binary fits
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have_initdb() { command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; }
have_initdb || need+=(postgresql)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v make >/dev/null 2>&1 || need+=(make)
command -v g++ >/dev/null 2>&1 || need+=(g++)

if ((${#need[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    echo "setup: installing Debian packages: ${need[*]}"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${need[@]}"
fi
npm ci
