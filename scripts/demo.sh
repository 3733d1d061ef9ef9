#!/usr/bin/env bash
# The README's run command: builds loyalty-hq, loyaltyd and loyaltyctl; starts
# HQ (embedded SQLite) with the demo coffee-chain program and three members
# imported from CSV; provisions one store terminal against it over mutual
# TLS; runs a checkout through the terminal's local API; shows the sale
# reaching HQ; prints how to try more, and keeps both running until Ctrl-C.
#
#   bash scripts/demo.sh [--once]     --once: stop after the scripted checkout
#
# Ports: LOYALTY_DEMO_PORT (terminal API, 8787), LOYALTY_DEMO_HQ_PORT (8443),
# LOYALTY_DEMO_ADMIN_PORT (8444). Files: LOYALTY_DEMO_DIR (./demo-data, wiped
# at start).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
once=0
[[ "${1:-}" == "--once" ]] && once=1
port="${LOYALTY_DEMO_PORT:-8787}"
hq_port="${LOYALTY_DEMO_HQ_PORT:-8443}"
admin_port="${LOYALTY_DEMO_ADMIN_PORT:-8444}"
dir="${LOYALTY_DEMO_DIR:-$PWD/demo-data}"

bash scripts/install-deps.sh

log="$(mktemp)"
echo "Building loyalty-hq, loyaltyd and loyaltyctl (release preset)..."
if ! { cmake --preset release && cmake --build --preset release -j2 --target loyalty-hq loyaltyd loyaltyctl; } \
  >"$log" 2>&1; then
  cat "$log" >&2
  echo "demo: build failed (output above)" >&2
  exit 1
fi
rm -f "$log"

hq=build/release/hq/loyalty-hq
daemon=build/release/terminal/loyaltyd
ctl=build/release/terminal/loyaltyctl
rm -rf "$dir"
mkdir -p "$dir/hq" "$dir/terminal"

pids=()
stop() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap stop EXIT INT TERM

echo
echo "== headquarters: loyalty-hq =="
"$hq" init --dir "$dir/hq"
"$hq" publish examples/programs/coffee-chain.json --effective-from 0 --dir "$dir/hq" >/dev/null
"$hq" import-members examples/members/demo-members.csv --dir "$dir/hq" 2>/dev/null
# Counter sign-ins (staff number, PIN on standard input): a clerk and a supervisor.
echo 2468 | "$hq" staff add 1001 --name 王芳 --role clerk --stores S001 --dir "$dir/hq" >/dev/null
echo 1357 | "$hq" staff add 9001 --name 陈主管 --role supervisor --stores S001 --dir "$dir/hq" >/dev/null
"$hq" terminals add S001 T01 --url "https://127.0.0.1:$hq_port" --out "$dir/s001-t01.json" \
  --dir "$dir/hq"
"$hq" serve --dir "$dir/hq" --port "$hq_port" --admin-port "$admin_port" 2>"$dir/hq.log" &
pids+=($!)

echo
echo "== store S001, terminal T01: loyaltyd =="
"$ctl" provision "$dir/s001-t01.json" --to "$dir/terminal/hq-bundle.json"
"$daemon" --store.time_zone Asia/Shanghai \
  --hq.bundle "$dir/terminal/hq-bundle.json" \
  --data.database "$dir/terminal/loyaltyd.db" --api.token_file "$dir/terminal/api-token" \
  --api.port "$port" --api.port_file "$dir/terminal/port" \
  2>"$dir/loyaltyd.log" &
pids+=($!)
export LOYALTYD_URL="127.0.0.1:$port" LOYALTYD_TOKEN_FILE="$dir/terminal/api-token"

# The program and the members reach the terminal through HQ's change feed.
ready=0
for _ in $(seq 1 150); do
  if status="$("$ctl" status --json 2>/dev/null)" &&
    python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if s["online"] and s["program"] and s["members_cached"] >= 3 else 1)' <<<"$status"; then
    ready=1
    break
  fi
  sleep 0.2
done
if ((ready == 0)); then
  echo "demo: the terminal did not sync with HQ; logs:" >&2
  tail -n 20 "$dir/hq.log" "$dir/loyaltyd.log" >&2
  exit 1
fi

echo
echo "-- loyaltyctl status --"
"$ctl" status
printf '\n-- a cashier scans member card 9000000000010018 --\n'
"$ctl" scan 9000000000010018
printf '\n-- the POS quotes the basket in examples/baskets/morning-coffee.json --\n'
"$ctl" quote --member M1001 --basket examples/baskets/morning-coffee.json
printf '\n-- and commits it (durable in SQLite before the answer) --\n'
"$ctl" commit --member M1001 --basket examples/baskets/morning-coffee.json --key demo-sale-1
for _ in $(seq 1 50); do
  depth="$("$ctl" outbox --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["depth"])')"
  [[ "$depth" == "0" ]] && break
  sleep 0.2
done
printf '\n-- the sale reached HQ: its authoritative view of M1001 --\n'
"$hq" member M1001 --dir "$dir/hq" | python3 -c '
import json,sys
m=json.load(sys.stdin)
print("balance", m["balance"], "points; tier", m["member"].get("tier"), "; flags", len(m["flags"]))'
"$hq" verify --dir "$dir/hq" | python3 -c '
import json,sys
v=json.load(sys.stdin); print("loyalty-hq verify:", "ok" if v["ok"] else v["problems"])'

cat <<TEXT

== the counter page (a browser on this machine) ==
  http://127.0.0.1:$port/counter/
  sign in as clerk 1001 with PIN 2468, or as supervisor 9001 with PIN 1357;
  scan card 9000000000010018 (type it and Enter) or phone 13800138002

== try it yourself (another terminal) ==
  export LOYALTYD_URL=127.0.0.1:$port LOYALTYD_TOKEN_FILE=$dir/terminal/api-token
  $ctl scan --phone 13800138002
  $ctl commit --member M1002 --basket examples/baskets/morning-coffee.json
  $ctl return S001-T01-00000001 0:1
  $hq report sales 2026-01-01 2099-12-31 --csv --dir $dir/hq
  curl -s -H "Authorization: Bearer \$(cat $dir/terminal/api-token)" http://127.0.0.1:$port/v1/status
The terminal API is in docs/api/terminal.yaml, HQ in docs/hq.md; logs are in $dir/.
TEXT

if ((once)); then
  exit 0
fi
echo
echo "loyalty-hq and loyaltyd keep running; press Ctrl-C to stop them."
wait
