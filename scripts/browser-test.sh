#!/usr/bin/env bash
# The counter page's browser tests (tests/browser, docs/counter.md): installs
# their npm packages as tests/browser/package-lock.json pins them (no browser
# download: they drive Debian's /usr/bin/chromium), then runs them against
# the binaries of BUILD_DIR. Screenshots go to BUILD_DIR/screenshots.
#
#   bash scripts/browser-test.sh BUILD_DIR      (ctest runs it: label browser-slow)
set -euo pipefail

build="$(cd "${1:?usage: browser-test.sh BUILD_DIR}" && pwd)"
cd "$(dirname "${BASH_SOURCE[0]}")/../tests/browser"

for tool in node npm /usr/bin/chromium; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "browser-test: $tool is missing; run scripts/install-deps.sh" >&2
    exit 1
  fi
done
# npm ci only when the lock file changed since the last install.
if ! cmp -s package-lock.json node_modules/.package-lock.json.ci 2>/dev/null; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.package-lock.json.ci
fi
export LOYALTY_BUILD_DIR="$build" LOYALTY_SCREENSHOTS="$build/screenshots"
exec node --test --test-concurrency=1 --test-reporter=spec
