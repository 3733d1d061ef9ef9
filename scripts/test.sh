#!/usr/bin/env bash
# Builds and runs every test. This is the README's test command.
#
#   bash scripts/test.sh [PRESET]    PRESET: release (default), ci, debug-asan
#
# Exits non-zero if installing, configuring, building or any test fails.
set -euo pipefail

preset="${1:-release}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh
cmake --preset "$preset"
cmake --build --preset "$preset" -j2
ctest --preset "$preset"
