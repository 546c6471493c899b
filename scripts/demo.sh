#!/bin/bash
# The demo: boot Ferry's test kernel on 2 vCPUs, show its serial console
# (boot token, heartbeats, page verification), pause and resume it over
# QMP, then shut it down. Usage: scripts/demo.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build}
ferry=$build/ferry-system-x86_64
kernel=$build/tests/guest/kernel/ferry-testkernel.elf
here=$(dirname "$0")
[ -x "$ferry" ] && [ -f "$kernel" ] || { echo "demo: build first (./configure && make)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
qmp=$tmp/qmp.sock

echo "== Booting the test kernel: 512 MiB, 2 vCPUs, the workload writing 64 MiB"
"$ferry" -nodefaults -display none -m 512 -smp 2 -serial stdio \
    -qmp "unix:$qmp,server=on,wait=off" \
    -kernel "$kernel" -append "mem=64 cpus=2 hb=500" &
pid=$!

# Wait until the guest has verified its memory a few times.
"$here/qmp-client.py" "$qmp" query-status >/dev/null
for _ in 1 2 3; do "$here/qmp-client.py" "$qmp" --events 1 >/dev/null; done

echo "== QMP: stop (the heartbeat pauses)"
"$here/qmp-client.py" "$qmp" stop >/dev/null
"$here/qmp-client.py" "$qmp" query-status
"$here/qmp-client.py" "$qmp" --events 2 >/dev/null
echo "== QMP: cont (same boot token, the ticks go on)"
"$here/qmp-client.py" "$qmp" cont >/dev/null
"$here/qmp-client.py" "$qmp" --events 2 >/dev/null
echo "== QMP: quit"
"$here/qmp-client.py" "$qmp" quit >/dev/null || true
wait "$pid"
echo "== Ferry exited with status $?"
