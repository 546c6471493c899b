#!/bin/sh
# Install every build and test dependency from Debian's packages.
# Idempotent: installs only what is missing. With --check, only reports
# (exit 1 when something is missing).
set -eu

PACKAGES="
gcc
make
meson
ninja-build
pkg-config
binutils
libglib2.0-dev
libjson-glib-dev
zlib1g-dev
libzstd-dev
libslirp-dev
libcap-ng-dev
busybox-static
cpio
python3
socat
clang
libclang-rt-14-dev
linux-source-6.1
bc
flex
bison
libelf-dev
libssl-dev
xz-utils
patch
musl-tools
"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done

if [ "${1:-}" = "--check" ]; then
    if [ -n "$missing" ]; then
        echo "missing packages:$missing (run scripts/install-deps.sh)" >&2
        exit 1
    fi
    exit 0
fi

if [ -z "$missing" ]; then
    echo "install-deps: all dependencies present"
    exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO="sudo"
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
