#!/usr/bin/env bash
# The one install command (README, .ci/run): the Debian packages the tests use, then the npm packages.
# Debian packages: chromium (the HTML report is checked in a real browser through puppeteer-core,
# which downloads no browser), poppler-utils (pdftoppm, pdffonts, pdftotext check the PDF report),
# fonts-dejavu-core (a font with the degree sign and minus for Chromium's rendering).
# better-sqlite3 compiles from source with the machine's python3, make and g++.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(chromium poppler-utils fonts-dejavu-core)

missing=()
for p in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing Debian packages: ${missing[*]}"
    sudo=""
    [[ $(id -u) -ne 0 ]] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

npm ci
