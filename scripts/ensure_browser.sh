#!/usr/bin/env bash
# Finds or gets the Chromium the end-to-end tests drive, and records its path in
# $TOOLS/browser (one line: an executable path, or "playwright" for the browser
# Playwright downloaded itself). `make test` runs this before pytest, so a fresh
# clone needs nothing installed by hand. In order:
#   1. $ENTAIL_CHROMIUM, or a system Chromium on PATH (chromium, chromium-browser,
#      google-chrome);
#   2. `playwright install chromium` (works wherever its download host is reachable;
#      bounded so a closed network fails in seconds, not minutes);
#   3. `apt-get install chromium` when running as root (Debian, Ubuntu);
#   4. otherwise stop with one line that says what to install.
set -euo pipefail

TOOLS=${TOOLS:-.tools}
VENV=${VENV:-.venv}
OUT="$TOOLS/browser"
mkdir -p "$TOOLS"

record() {
    echo "$1" >"$OUT"
    echo "browser for the e2e tests: $1"
}

find_system() {
    if [ -n "${ENTAIL_CHROMIUM:-}" ] && [ -x "${ENTAIL_CHROMIUM}" ]; then
        echo "$ENTAIL_CHROMIUM"
        return 0
    fi
    local name
    for name in chromium chromium-browser google-chrome google-chrome-stable; do
        if command -v "$name" >/dev/null 2>&1; then
            command -v "$name"
            return 0
        fi
    done
    return 1
}

if path=$(find_system); then
    record "$path"
    exit 0
fi

# Playwright's own download: only where its host answers. `timeout` bounds a
# network that drops packets instead of refusing them.
if [ -x "$VENV/bin/playwright" ]; then
    if timeout 300 "$VENV/bin/playwright" install chromium >"$TOOLS/playwright-install.log" 2>&1; then
        record playwright
        exit 0
    fi
    echo "playwright install chromium failed (see $TOOLS/playwright-install.log); trying the system's package manager"
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq >"$TOOLS/apt-chromium.log" 2>&1 || true
    if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >>"$TOOLS/apt-chromium.log" 2>&1 \
        && path=$(find_system); then
        record "$path"
        exit 0
    fi
    echo "apt-get install chromium failed (see $TOOLS/apt-chromium.log)"
fi

echo "no Chromium for the e2e tests: install one (Debian/Ubuntu: sudo apt-get install chromium) or set ENTAIL_CHROMIUM=/path/to/chrome" >&2
exit 1
