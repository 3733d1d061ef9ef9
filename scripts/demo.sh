#!/usr/bin/env bash
# The README's run command: builds and starts loyaltyd on loopback with the
# demo coffee-chain program and three demo members, runs one checkout through
# its API with loyaltyctl, prints how to try more, and keeps the daemon in the
# foreground until Ctrl-C.
#
#   bash scripts/demo.sh [--once]     --once: stop after the scripted checkout
#
# LOYALTY_DEMO_PORT (default 8787) and LOYALTY_DEMO_DIR (default ./demo-data,
# wiped at start) change where it listens and keeps its files.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
once=0
[[ "${1:-}" == "--once" ]] && once=1
port="${LOYALTY_DEMO_PORT:-8787}"
dir="${LOYALTY_DEMO_DIR:-$PWD/demo-data}"

bash scripts/install-deps.sh

log="$(mktemp)"
echo "Building loyaltyd and loyaltyctl (release preset)..."
if ! { cmake --preset release && cmake --build --preset release -j2 --target loyaltyd loyaltyctl; } \
  >"$log" 2>&1; then
  cat "$log" >&2
  echo "demo: build failed (output above)" >&2
  exit 1
fi
rm -f "$log"

rm -rf "$dir"
mkdir -p "$dir"
daemon=build/release/terminal/loyaltyd
ctl=build/release/terminal/loyaltyctl
"$daemon" \
  --store.id S001 --store.terminal T01 --store.time_zone Asia/Shanghai \
  --data.database "$dir/loyaltyd.db" --api.token_file "$dir/api-token" \
  --api.port "$port" --api.port_file "$dir/port" \
  --program.file examples/programs/coffee-chain.json \
  --program.members examples/members/demo-members.json \
  2>"$dir/loyaltyd.log" &
pid=$!
stop() {
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
trap stop EXIT INT TERM
for _ in $(seq 1 100); do
  [[ -s "$dir/port" ]] && break
  if ! kill -0 "$pid" 2>/dev/null; then
    cat "$dir/loyaltyd.log" >&2
    echo "demo: loyaltyd did not start (log above)" >&2
    exit 1
  fi
  sleep 0.1
done
export LOYALTYD_URL="127.0.0.1:$port" LOYALTYD_TOKEN_FILE="$dir/api-token"

cat <<TEXT

== loyaltyd is running on 127.0.0.1:$port (standalone, coffee-chain program) ==

-- loyaltyctl status --
TEXT
"$ctl" status
printf '\n-- a cashier scans member card 9000000000010018 --\n'
"$ctl" scan 9000000000010018
printf '\n-- the POS quotes the basket in examples/baskets/demo-basket.json --\n'
"$ctl" quote --member M1001 --basket examples/baskets/demo-basket.json
printf '\n-- and commits it (durable in SQLite before the answer) --\n'
"$ctl" commit --member M1001 --basket examples/baskets/demo-basket.json --key demo-sale-1
printf '\n-- the transaction waits in the outbox for HQ --\n'
"$ctl" outbox

cat <<TEXT

== try it yourself (another terminal) ==
  export LOYALTYD_URL=127.0.0.1:$port LOYALTYD_TOKEN_FILE=$dir/api-token
  $ctl scan --phone 13800138002
  $ctl commit --member M1002 --basket examples/baskets/demo-basket.json
  $ctl return S001-T01-00000001 0:1
  curl -s -H "Authorization: Bearer \$(cat $dir/api-token)" http://127.0.0.1:$port/v1/status
The API is described in docs/api/terminal.yaml; the daemon's log is $dir/loyaltyd.log.
TEXT

if ((once)); then
  exit 0
fi
echo
echo "loyaltyd keeps running; press Ctrl-C to stop it."
wait "$pid"
