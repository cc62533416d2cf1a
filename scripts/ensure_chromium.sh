#!/usr/bin/env bash
# Install Debian's headless-capable Chromium when it is missing: the report tests render the HTML report
# in it (tests/report/test_browser.py). Needs root (apt-get); without root or apt it says what to run and
# exits 0, and those tests skip with the same hint.
set -euo pipefail

for candidate in chromium chromium-browser google-chrome; do
  if command -v "$candidate" >/dev/null 2>&1; then
    echo "ensure_chromium: $(command -v "$candidate") present"
    exit 0
  fi
done

if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure_chromium: no chromium and no apt-get; install Chromium with your package manager to run the browser tests" >&2
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure_chromium: no chromium; run as root: apt-get update && apt-get install -y chromium" >&2
  exit 0
fi

echo "ensure_chromium: installing Debian's chromium package"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
command -v chromium >/dev/null 2>&1 && echo "ensure_chromium: $(chromium --version 2>/dev/null || echo chromium) installed"
