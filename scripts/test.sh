#!/usr/bin/env bash
# Builds and runs every test. This is the README's test command.
#
#   bash scripts/test.sh [PRESET] [SUITE]
#     PRESET: release (default), ci, debug-asan
#     SUITE:  all (default); quick: `ctest -LE slow`, every unit, scenario,
#             daemon and HQ ledger test (under 2 minutes); slow: `ctest -L
#             slow`, the simulation seeds, SIGKILLs, chaos and end-to-end
#             tests with real daemons (tests/CMakeLists.txt)
#
# Exits non-zero if installing, configuring, building or any test fails.
set -euo pipefail

preset="${1:-release}"
suite="${2:-all}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

case "$suite" in
  all | quick | slow) ;;
  *)
    echo "scripts/test.sh: SUITE must be all, quick or slow, not '$suite'" >&2
    exit 2
    ;;
esac

bash scripts/install-deps.sh
cmake --preset "$preset"
cmake --build --preset "$preset" -j2
if [[ "$suite" != slow ]]; then
  echo "== quick tests (ctest -LE slow) =="
  ctest --preset "$preset" -LE slow
fi
if [[ "$suite" != quick ]]; then
  echo "== slow tests (ctest -L slow) =="
  ctest --preset "$preset" -L slow
fi
