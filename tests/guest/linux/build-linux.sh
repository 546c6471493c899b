#!/bin/bash
# Build Ferry's Linux test guest kernel from Debian's linux-source-6.1.
#
#   build-linux.sh OUTDIR
#
# Unpacks /usr/src/linux-source-6.1.tar.xz into OUTDIR/linux-src, applies
# patches/*.patch, configures `make tinyconfig` + ferry.config and builds
# bzImage out of tree in OUTDIR/linux-obj. Leaves OUTDIR/vmlinux (ELF with the
# PVH note) and OUTDIR/bzImage.
#
# Cached: when the outputs exist and nothing that feeds them changed (this
# script, ferry.config, the patches, the source tarball, the compiler), it
# does nothing. A change to the patches or the tarball unpacks the source
# anew; a change to the config or this script only rebuilds (incrementally).
#
# Installs nothing: needs linux-source-6.1, gcc, make, bc, flex, bison,
# libelf-dev, libssl-dev, xz-utils, patch (scripts/install-deps.sh).
#
# Environment: LINUX_SOURCE_TARBALL overrides the tarball, FERRY_LINUX_JOBS
# the make -j count (default 2).
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi

here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
tarball=${LINUX_SOURCE_TARBALL:-/usr/src/linux-source-6.1.tar.xz}
jobs=${FERRY_LINUX_JOBS:-2}
src=$out/linux-src
obj=$out/linux-obj
fragment=$here/ferry.config
mk=(make -C "$src" O="$obj" ARCH=x86_64
    KBUILD_BUILD_USER=ferry KBUILD_BUILD_HOST=ferry
    KBUILD_BUILD_TIMESTAMP="2000-01-01")

log() { echo "build-linux: $*"; }

if [ ! -r "$tarball" ]; then
    echo "build-linux: $tarball not found (apt-get install linux-source-6.1)" >&2
    exit 1
fi

# One build at a time per OUTDIR.
exec 9>"$out/.build-linux.lock"
flock 9

shopt -s nullglob
patches=("$here"/patches/*.patch)
shopt -u nullglob

# What the unpacked, patched source depends on.
src_hash=$( {
    echo "tarball $tarball $(stat -L -c '%s %Y' "$tarball")"
    for p in "${patches[@]}"; do
        echo "patch $(basename "$p")"
        cat "$p"
    done
} | sha256sum | cut -d' ' -f1)

# What the outputs depend on.
build_hash=$( {
    echo "src $src_hash"
    cat "$0" "$fragment"
    gcc --version | head -n1
} | sha256sum | cut -d' ' -f1)

if [ -f "$out/vmlinux" ] && [ -f "$out/bzImage" ] &&
   [ "$(cat "$out/.build-linux.stamp" 2>/dev/null)" = "$build_hash" ]; then
    log "up to date ($out)"
    exit 0
fi
rm -f "$out/.build-linux.stamp"

t0=$(date +%s)

# 1. Source: unpack and patch, unless the tree already matches.
if [ "$(cat "$src/.ferry-src.stamp" 2>/dev/null)" != "$src_hash" ]; then
    log "unpacking $tarball"
    rm -rf "$src" "$obj"
    mkdir -p "$src"
    tar -xf "$tarball" -C "$src" --strip-components=1
    for p in "${patches[@]}"; do
        log "applying $(basename "$p")"
        patch -d "$src" -p1 --forward --quiet < "$p"
    done
    echo "$src_hash" > "$src/.ferry-src.stamp"
fi

# 2. Configuration: tinyconfig, our fragment on top, then olddefconfig.
log "configuring (tinyconfig + $(basename "$fragment"))"
mkdir -p "$obj"
"${mk[@]}" -s tinyconfig
(cd "$obj" && "$src/scripts/kconfig/merge_config.sh" -m -O "$obj" \
    "$obj/.config" "$fragment" > "$obj/merge_config.log")
"${mk[@]}" -s olddefconfig

# Every option the fragment asks for must have survived olddefconfig (an
# unmet dependency silently drops it).
bad=0
while IFS= read -r line; do
    case $line in
    CONFIG_*=*)
        if ! grep -qxF "$line" "$obj/.config"; then
            echo "build-linux: wanted $line, got: $(grep -E "^(# )?${line%%=*}[= ]" "$obj/.config" || echo unset)" >&2
            bad=1
        fi
        ;;
    "# CONFIG_"*" is not set")
        opt=${line#\# }
        opt=${opt%% *}
        if grep -qE "^$opt=" "$obj/.config"; then
            echo "build-linux: wanted $opt off, got: $(grep -E "^$opt=" "$obj/.config")" >&2
            bad=1
        fi
        ;;
    esac
done < "$fragment"
if [ $bad -ne 0 ]; then
    echo "build-linux: configuration does not match $fragment" >&2
    exit 1
fi

# 3. Build.
log "building bzImage with -j$jobs"
"${mk[@]}" -j"$jobs" bzImage

# The PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY, type 18) must be there.
if ! readelf -n "$obj/vmlinux" | grep -qE '^ *Xen[[:space:]].*(0x00000012|PHYS32)'; then
    echo "build-linux: vmlinux has no PVH entry note" >&2
    exit 1
fi

cp "$obj/vmlinux" "$out/vmlinux.tmp"
cp "$obj/arch/x86/boot/bzImage" "$out/bzImage.tmp"
mv -f "$out/vmlinux.tmp" "$out/vmlinux"
mv -f "$out/bzImage.tmp" "$out/bzImage"
echo "$build_hash" > "$out/.build-linux.stamp"
log "done in $(( $(date +%s) - t0 )) s: $out/vmlinux, $out/bzImage"
