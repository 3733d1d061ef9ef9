#!/usr/bin/env bash
# The terminal for arm64 store hardware, from a Debian 12 amd64 machine:
# installs Debian's cross toolchain, qemu-user and the arm64 -dev packages
# (multiarch), cross-builds with the arm64 preset, runs the core tests and
# the terminal tests under qemu-user, and builds loyalty-terminal for arm64.
#
#   bash scripts/cross-arm64.sh [TEST_FILTER]
#
# TEST_FILTER is a ctest -R regex (default: everything in core and terminal;
# "^core:" runs only the engine tests, the quick subset). The .deb lands in
# build/arm64/packages/.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
filter="${1:-^(core|terminal):}"

bash scripts/install-deps.sh
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  dpkg --add-architecture arm64
  apt-get update -qq
fi
packages=(g++-aarch64-linux-gnu qemu-user libsqlite3-dev:arm64 libssl-dev:arm64
  libboost1.81-dev:arm64 libboost-program-options1.81-dev:arm64 libsystemd-dev:arm64
  libhowardhinnant-date-dev:arm64)
# Not libpq-dev:arm64: it cannot be installed next to the amd64 one (it would
# remove it), and the arm64 build is the terminal only (LOYALTY_BUILD_HQ=OFF).
missing=()
for p in "${packages[@]}"; do
  [[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" == installed ]] ||
    missing+=("$p")
done
if ((${#missing[@]} > 0)); then
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cmake --preset arm64
cmake --build --preset arm64 -j2
readelf -h build/arm64/terminal/loyaltyd | grep -q AArch64 ||
  { echo "cross-arm64: loyaltyd is not an arm64 binary" >&2; exit 1; }
# The test binaries run under qemu-user (ctest uses the toolchain's
# emulator); the loyaltyd and loyaltyctl they start go through qemu too
# (LOYALTY_EXEC_WRAPPER), so no binfmt registration is needed. They run on
# the multiarch libc6:arm64 and its own loader ("-L /"), never on
# /usr/aarch64-linux-gnu: that loader is from another glibc build than the
# libc.so.6 it ends up loading, and the first pthread_create hangs (see
# packaging/cross/aarch64-linux-gnu.cmake).
export QEMU_LD_PREFIX=/
export LOYALTY_EXEC_WRAPPER="qemu-aarch64 -L /"
(cd build/arm64 && cpack -G DEB -B packages >/dev/null)
ls -l build/arm64/packages/*.deb
ctest --test-dir build/arm64 -R "$filter" --output-on-failure --timeout 120
