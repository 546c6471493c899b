#!/bin/bash
# Build the initramfs of Ferry's Linux test guest.
#
#   build-initramfs.sh OUTDIR
#
# Leaves OUTDIR/initramfs.cpio: an UNCOMPRESSED newc cpio (decompressing
# gzip costs ~100 s in this host's ring-0 emulator) holding
#   /init                 init.c + workload.c, `musl-gcc -static -O2` (60 KB;
#                         with glibc's gcc -static, the fallback, 770 KB)
#   /bin/ferry-workload   a link to /init (it looks at argv[0])
#   /bin/busybox          Debian's busybox-static, with a link per applet
#   /etc/ferry-test.sh    the disk, net and shell tests
#
# Cached: does nothing when the output exists and its inputs (this script,
# init.c, workload.c, ferry-test.sh, mkcpio.py, the busybox binary, the
# compiler) are unchanged. Installs nothing: needs busybox-static,
# musl-tools (or gcc and libc6-dev), python3.
#
# Environment: BUSYBOX overrides the busybox binary (default /bin/busybox),
# CC the compiler (default musl-gcc if installed, else gcc). Every byte of
# the archive is copied by the emulated guest kernel at boot, so small
# matters.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi

here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
busybox=${BUSYBOX:-/bin/busybox}
if [ -z "${CC:-}" ] && command -v musl-gcc > /dev/null; then
    cc=musl-gcc
else
    cc=${CC:-gcc}
fi
stage=$out/initramfs.d
cpio=$out/initramfs.cpio

if [ ! -x "$busybox" ]; then
    echo "build-initramfs: $busybox not found (apt-get install busybox-static)" >&2
    exit 1
fi
if readelf -l "$busybox" | grep -q 'INTERP'; then
    echo "build-initramfs: $busybox is dynamically linked; need busybox-static" >&2
    exit 1
fi

exec 9>"$out/.build-initramfs.lock"
flock 9

hash=$( {
    cat "$0" "$here/init.c" "$here/workload.c" "$here/ferry-test.sh" "$here/mkcpio.py"
    sha256sum < "$busybox"
    echo "cc $cc $(command -v "$cc")"
    "$cc" --version | head -n1
} | sha256sum | cut -d' ' -f1)

if [ -f "$cpio" ] && [ "$(cat "$out/.build-initramfs.stamp" 2>/dev/null)" = "$hash" ]; then
    echo "build-initramfs: up to date ($cpio)"
    exit 0
fi
rm -f "$out/.build-initramfs.stamp"

rm -rf "$stage"
mkdir -p "$stage"
"$cc" -static -O2 -pthread -Wall -Wextra -Werror \
    -o "$stage/init" "$here/init.c" "$here/workload.c"
strip "$stage/init"

# The archive's table of contents (gen_init_cpio's format, see mkcpio.py).
list=$out/initramfs.list
{
    echo "dir /bin 0755 0 0"
    echo "dir /dev 0755 0 0"
    echo "dir /etc 0755 0 0"
    echo "dir /proc 0755 0 0"
    echo "dir /sys 0755 0 0"
    echo "dir /tmp 1777 0 0"
    echo "dir /root 0700 0 0"
    # The kernel opens /dev/console for /init before anything mounts /dev.
    echo "nod /dev/console 0600 0 0 c 5 1"
    echo "nod /dev/null 0666 0 0 c 1 3"
    echo "file /init $stage/init 0755 0 0"
    echo "slink /bin/ferry-workload /init 0777 0 0"
    echo "file /etc/ferry-test.sh $here/ferry-test.sh 0755 0 0"
    echo "slink /bin/ferry-dhcp /etc/ferry-test.sh 0777 0 0"
    echo "file /bin/busybox $busybox 0755 0 0"
    "$busybox" --list | sort -u | while read -r applet; do
        case $applet in
        busybox | "") ;;
        *) echo "slink /bin/$applet busybox 0777 0 0" ;;
        esac
    done
} > "$list"

python3 "$here/mkcpio.py" "$list" "$cpio"
echo "$hash" > "$out/.build-initramfs.stamp"
echo "build-initramfs: $cpio ($(stat -c %s "$cpio") bytes)"
