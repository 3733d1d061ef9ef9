#!/usr/bin/env bash
# Installs the Debian 12 packages the build, the tests and the format check
# need. Idempotent and silent when everything is already there, so the test,
# demo and CI scripts can call it every time.
set -euo pipefail

packages=(
  build-essential
  cmake
  ninja-build
  pkg-config
  git
  libsqlite3-dev
  libboost1.81-dev
  libboost-program-options1.81-dev
  libsystemd-dev
  nlohmann-json3-dev
  catch2
  libssl-dev
  libhowardhinnant-date-dev
  tzdata
  libpq-dev
  libjemalloc-dev
  libsimdjson-dev
  libfaketime
  postgresql
  clang-format
  clang-16
  libclang-rt-16-dev
  # The counter page's browser tests (tests/browser): Debian's chromium,
  # driven by playwright-core on Node.js; CJK fonts for its screens.
  chromium
  fonts-noto-cjk
  nodejs
)

missing=()
for pkg in "${packages[@]}"; do
  # db:Status-Status is exactly "installed" only for a fully installed package;
  # half-installed or config-files states count as missing.
  status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
  if [[ "$status" != "installed" ]]; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

sudo_cmd=()
if ((EUID != 0)); then
  if command -v sudo >/dev/null 2>&1; then
    sudo_cmd=(sudo)
  else
    echo "install-deps: missing packages: ${missing[*]}" >&2
    echo "install-deps: not root and sudo is not available; install them as root." >&2
    exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"

# Debian's nodejs comes without npm (NodeSource's includes it).
if ! command -v npm >/dev/null 2>&1; then
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends npm
fi
