#!/usr/bin/env bash
# The one install command (README, `npm run setup`, .ci/run): the Debian packages the tests use,
# only those missing, then the npm packages (`npm ci`). The list is kept here and only here:
#   chromium           the HTML report is checked in a real browser through puppeteer-core (which
#                      downloads no browser)
#   poppler-utils      pdftoppm, pdffonts, pdftotext check the PDF report
#   fonts-dejavu-core  a font with the degree sign and minus for Chromium's rendering
#   postgresql         the ingest tests start private PostgreSQL clusters (docs/ingest.md); its
#                      binaries are enough, no system cluster is used
#   python3 make g++   better-sqlite3 compiles from source when no prebuilt binary fits
#   socat              the USB tests join two pseudo-terminals into a serial cable (docs/technician.md)
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(chromium poppler-utils fonts-dejavu-core postgresql python3 make g++ socat)

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
