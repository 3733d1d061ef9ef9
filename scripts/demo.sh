#!/usr/bin/env bash
# The README's run command: builds loyaltyctl and shows the rules engine
# quoting a demo basket against the demo coffee-chain program.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
echo "Building loyaltyctl (release preset)..."
if ! { cmake --preset release && cmake --build --preset release -j2 --target loyaltyctl; } \
  >"$log" 2>&1; then
  cat "$log" >&2
  echo "demo: build failed (output above)" >&2
  exit 1
fi

ctl=build/release/terminal/loyaltyctl
args=(
  quote
  --program examples/programs/coffee-chain.json
  --member examples/members/demo-member.json
  --basket examples/baskets/demo-basket.json
  --at 2026-11-23T08:15:00
  --tz Asia/Shanghai
)

cat <<'TEXT'

== loyaltyctl quote: the loyalty engine, offline ==
A demo member checks out a demo basket at a coffee-chain store in Shanghai on
Monday 2026-11-23 at 08:15 store-local time. The engine evaluates the program
in examples/programs/coffee-chain.json and prints what the POS would get back:
discounts, points, stamps, vouchers and the receipt lines.
(The store daemon loyaltyd and the central ledger loyalty-hq are planned; once
they exist this script will start both on loopback.)

-- receipt --
TEXT
"$ctl" "${args[@]}"

printf '\n-- the same quote as JSON (what the POS API returns) --\n'
"$ctl" "${args[@]}" --json
