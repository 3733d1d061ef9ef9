#!/usr/bin/env bash
# The packaging test: builds the Debian packages with CPack, checks them with
# lintian (any error fails), installs them on this machine with dpkg, checks
# users, permissions and conffiles, verifies the systemd units, runs the
# installed binaries with the installed config (HQ serving, a provisioned
# terminal syncing with it), upgrades to a newer version keeping data and a
# config edit, removes (data kept) and purges (data gone).
#
#   sudo bash scripts/package-test.sh [PRESET]     PRESET: release (default), ci
#
# It changes the machine it runs on (packages, two system users); it leaves
# the packages purged. CI runs it on its throwaway machine.
set -euo pipefail

preset="${1:-release}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
src="$PWD"
build="$src/build/$preset"
out="$build/packages"
work="$(mktemp -d /tmp/loyalty-pkg-XXXXXX)"
chmod 0755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  dpkg -P loyalty-terminal loyalty-hq >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "package-test: FAILED: $*" >&2
  exit 1
}
step() { printf '\n-- %s\n' "$*"; }

bash scripts/install-deps.sh
if ! dpkg-query -W -f='${db:Status-Status}' lintian 2>/dev/null | grep -qx installed; then
  apt-get install -y -qq lintian >/dev/null
fi

step "build and package ($preset)"
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j2 --target loyaltyd loyaltyctl loyalty-hq package_changelog
rm -rf "$out"
(cd "$build" && cpack -G DEB -B "$out" >/dev/null)
(cd "$build" && cpack -G DEB -B "$out/next" -D CPACK_PACKAGE_VERSION=0.1.99 >/dev/null)
ls -l "$out"/*.deb "$out"/next/*.deb

step "lintian (errors fail)"
lintian --fail-on error --suppress-tags maintainer-script-calls-systemctl \
  "$out"/*.deb

step "install with dpkg"
dpkg -P loyalty-terminal loyalty-hq >/dev/null 2>&1 || true
dpkg -i "$out"/loyalty-terminal_*.deb "$out"/loyalty-hq_*.deb | tee "$work/install.log"
grep -q "loyaltyd is installed but not started" "$work/install.log" ||
  fail "the terminal package does not say it needs provisioning"
for u in loyaltyd loyalty-hq; do
  id "$u" >/dev/null || fail "no system user $u"
  [[ "$(stat -c '%a %U' /var/lib/$u)" == "750 $u" ]] || fail "/var/lib/$u is not 0750 $u"
done
[[ "$(stat -c '%a %U:%G' /etc/loyalty/loyaltyd.conf)" == "640 root:loyaltyd" ]] ||
  fail "loyaltyd.conf permissions"
dpkg-query -W -f='${Conffiles}\n' loyalty-terminal | grep -q /etc/loyalty/loyaltyd.conf ||
  fail "loyaltyd.conf is not a conffile"
dpkg-query -W -f='${Conffiles}\n' loyalty-hq | grep -q /etc/loyalty/loyalty-hq.env ||
  fail "loyalty-hq.env is not a conffile"
dpkg-query -W -f='${Depends}\n' loyalty-terminal | grep -q libsqlite3 ||
  fail "the terminal package does not depend on libsqlite3"

step "systemd-analyze verify"
systemd-analyze verify /lib/systemd/system/loyaltyd.service /lib/systemd/system/loyalty-hq.service

step "systemd-analyze security: each unit's exposure 2.0 or better"
for u in loyaltyd loyalty-hq; do
  line="$(systemd-analyze security --offline=true /lib/systemd/system/$u.service | tail -n 1)"
  echo "$line"
  level="$(grep -oE 'level for [^:]+: [0-9.]+' <<<"$line" | grep -oE '[0-9.]+$')"
  [[ -n "$level" ]] || fail "no exposure level for $u.service"
  awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }' || fail "$u.service exposure $level is over 2.0"
done

step "run the installed binaries with the installed config"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
hq_port="$(free_port)"
api_port="$(free_port)"
# The unit's settings, as systemd would pass them, on free ports.
set -a
# shellcheck disable=SC1091
. /etc/loyalty/loyalty-hq.env
set +a
as_hq() { runuser -u loyalty-hq -- /usr/bin/loyalty-hq "$@" --dir /var/lib/loyalty-hq --db "$HQ_DB"; }
as_hq init >/dev/null
install -m 0644 "$src/examples/programs/coffee-chain.json" "$work/program.json"
as_hq publish "$work/program.json" --effective-from 0 >/dev/null
as_hq terminals add S001 T01 --out /var/lib/loyalty-hq/S001-T01.json \
  --url "https://127.0.0.1:$hq_port" >/dev/null
runuser -u loyalty-hq -- /usr/bin/loyalty-hq serve --dir /var/lib/loyalty-hq --db "$HQ_DB" \
  --listen "$HQ_LISTEN" --port "$hq_port" --admin-port "$(free_port)" 2>"$work/hq.log" &
pids+=($!)
/usr/bin/loyaltyctl provision /var/lib/loyalty-hq/S001-T01.json
[[ "$(stat -c '%a %U' /var/lib/loyaltyd/hq-bundle.json)" == "600 loyaltyd" ]] ||
  fail "the provisioned bundle is not 0600 loyaltyd"
start_terminal() {
  runuser -u loyaltyd -- /usr/bin/loyaltyd --config /etc/loyalty/loyaltyd.conf \
    --api.port "$api_port" 2>>"$work/loyaltyd.log" &
  pids+=($!)
}
ctl() { /usr/bin/loyaltyctl "$@" --url "127.0.0.1:$api_port" --token-file /var/lib/loyaltyd/api-token; }
wait_online() {
  for _ in $(seq 1 100); do
    if ctl status --json 2>/dev/null | grep -q '"online": *true'; then return 0; fi
    sleep 0.2
  done
  cat "$work/loyaltyd.log" "$work/hq.log" >&2
  fail "the installed loyaltyd did not come online with the installed HQ"
}
start_terminal
wait_online
ctl status
members_before="$(ctl status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["members_cached"])')"
kill "${pids[-1]}"
wait "${pids[-1]}" || true
[[ -f /var/lib/loyaltyd/loyaltyd.db ]] || fail "no database in /var/lib/loyaltyd"

step "upgrade to 0.1.99: data and a config edit are kept"
echo "# local edit: kept across upgrades" >>/etc/loyalty/loyaltyd.conf
dpkg -i --force-confold "$out"/next/loyalty-terminal_*.deb "$out"/next/loyalty-hq_*.deb >/dev/null
[[ "$(dpkg-query -W -f='${Version}' loyalty-terminal)" == "0.1.99" ]] || fail "not upgraded"
grep -q "local edit" /etc/loyalty/loyaltyd.conf || fail "the config edit was lost"
start_terminal
wait_online
[[ "$(ctl status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["members_cached"])')" == "$members_before" ]] ||
  fail "the member cache changed across the upgrade"
kill "${pids[-1]}"
wait "${pids[-1]}" || true

for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
wait || true
pids=()

step "remove keeps data; purge deletes it"
dpkg -r loyalty-terminal loyalty-hq >/dev/null
[[ ! -e /usr/bin/loyaltyd && -f /var/lib/loyaltyd/loyaltyd.db && -f /var/lib/loyalty-hq/ca.pem ]] ||
  fail "remove did not keep the data (or left the binaries)"
dpkg -P loyalty-terminal loyalty-hq >/dev/null
[[ ! -e /var/lib/loyaltyd && ! -e /var/lib/loyalty-hq && ! -e /etc/loyalty/loyaltyd.conf ]] ||
  fail "purge left data or config behind"

echo
echo "package-test: passed"
