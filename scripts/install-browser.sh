#!/usr/bin/env bash
# Debian's Chromium for the browser tests (tests/e2e/test_portal_browser.py).
#
#   scripts/install-browser.sh
#
# Playwright's own browser download does not work here, so the tests drive Debian's
# /usr/bin/chromium through the `playwright` Python package instead. Idempotent and
# non-interactive: does nothing when Chromium is already installed.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

log() { printf 'install-browser: %s\n' "$*"; }
die() { printf 'install-browser: error: %s\n' "$*" >&2; exit 1; }

if [[ -x "$CHROMIUM" ]]; then
  log "chromium already installed ($("$CHROMIUM" --version 2>/dev/null || echo unknown))"
  exit 0
fi
command -v apt-get >/dev/null || die "apt-get not found: install Chromium at $CHROMIUM yourself"
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || die "not root and no sudo: cannot install chromium"
  SUDO=(sudo -n)
fi
export DEBIAN_FRONTEND=noninteractive
if ! "${SUDO[@]}" apt-get install -y -q chromium; then
  log "apt-get install failed; updating the package lists and retrying"
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" apt-get install -y -q chromium
fi
[[ -x "$CHROMIUM" ]] || die "chromium installed but $CHROMIUM is missing"
log "installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)"
