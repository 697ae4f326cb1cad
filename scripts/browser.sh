#!/usr/bin/env bash
# Make sure headless Chromium, its WebDriver and axe-core are here for the browser tests
# (pytest mark `browser`); print nothing on stdout. Like scripts/postgres.sh: installs what is
# missing, so CI on a clean machine can run them. axe-core goes into tests/vendor/node_modules
# (gitignored), pinned to the version below.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "$@" >&2; }
AXE_VERSION="4.10.3"
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  log "installing chromium and chromium-driver…"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o=Dpkg::Use-Pty=0 \
    chromium chromium-driver) >&2
fi
if [ ! -f tests/vendor/node_modules/axe-core/axe.min.js ]; then
  log "installing axe-core $AXE_VERSION…"
  mkdir -p tests/vendor
  npm install --silent --no-audit --no-fund --prefix tests/vendor "axe-core@$AXE_VERSION" >&2
fi
