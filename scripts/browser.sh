#!/usr/bin/env bash
# Debian's chromium, the real browser that tests/e2e/test_report_browser.py opens the HTML report in
# (through Playwright, which drives it; Playwright's own browser downloads are never used). Run as root.
#
#   scripts/browser.sh install   apt package: chromium (once; nothing to do when it is installed)
set -euo pipefail

PACKAGES=(chromium)

say() { echo "browser: $*"; }

install() {
  if command -v chromium >/dev/null; then
    say "chromium already installed"
    return
  fi
  export DEBIAN_FRONTEND=noninteractive
  # The package lists of a clean machine are empty: update them once, only when apt cannot find the package.
  apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null; }
  command -v chromium >/dev/null || { say "apt could not install ${PACKAGES[*]}"; exit 1; }
  say "installed $(chromium --version 2>/dev/null || echo chromium)"
}

case "${1:-}" in
  install) install ;;
  *) echo "usage: $0 install" >&2; exit 2 ;;
esac
