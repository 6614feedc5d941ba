#!/usr/bin/env bash
# The UI test (tests/test_ui_browser.py) drives Debian's Chromium through Playwright.
# Installs it once; a no-op when /usr/bin/chromium is already there.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
# a stale package index is the usual cause of "Unable to locate package"
$SUDO apt-get install -y chromium \
  || { $SUDO apt-get update && $SUDO apt-get install -y chromium; }
test -x /usr/bin/chromium
