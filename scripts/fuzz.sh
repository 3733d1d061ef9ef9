#!/usr/bin/env bash
# Builds the libFuzzer targets (preset fuzz: clang, ASan + UBSan) and runs
# each for SECONDS (default 60) from its seed corpus in fuzz/corpus/<target>.
# New inputs that reach new code go to build/fuzz/corpus/<target> (not the
# repository); a crash leaves its input in build/fuzz/artifacts/ and fails.
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]
#
# CI runs a short pass (bash scripts/fuzz.sh 20); a long run is e.g.
# bash scripts/fuzz.sh 3600. Replay a crash: build/fuzz/fuzz/TARGET FILE.
# FUZZ_SEED (default 1) seeds libFuzzer's mutations; vary it on long runs.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=(fuzz_program fuzz_request fuzz_member_code fuzz_hq_answer)
fi

bash scripts/install-deps.sh
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j2 --target "${targets[@]}"

mkdir -p build/fuzz/artifacts
total=0
for t in "${targets[@]}"; do
  seeds="fuzz/corpus/${t#fuzz_}"
  work="build/fuzz/corpus/${t#fuzz_}"
  mkdir -p "$work"
  log="build/fuzz/$t.log"
  echo "== $t: ${seconds}s from $seeds"
  if ! "build/fuzz/fuzz/$t" "$work" "$seeds" -max_total_time="$seconds" -max_len=65536 \
    -seed="${FUZZ_SEED:-1}" \
    -rss_limit_mb=2048 -timeout=10 -artifact_prefix=build/fuzz/artifacts/ -print_final_stats=1 \
    >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz: $t FAILED; the input is in build/fuzz/artifacts/" >&2
    exit 1
  fi
  runs="$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)"
  total=$((total + runs))
  echo "   $runs executions, no crash"
done
echo "fuzz: ${#targets[@]} targets, $total executions in all, no crash"
