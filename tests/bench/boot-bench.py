#!/usr/bin/env python3
"""Boot benchmark: time from process start to the guest's first serial byte
and to the test kernel's first heartbeat, and the workload's page-write
rate, for Ferry and (where installed) QEMU with the same test kernel.

Prints one JSON object: medians over --runs runs and Ferry/QEMU ratios.
Not a test: nothing here is asserted.
"""
import argparse
import json
import os
import re
import select
import shutil
import statistics
import subprocess
import sys
import time

from bench_accel import accels_for

HB_RE = re.compile(rb"HB token=([0-9a-f]+) ticks=(\d+) pass=(\d+) writes=(\d+)")


def run_once(cmd, mem_mib, hb_needed, timeout):
    """Start cmd, read its stdout (the guest's serial port) with timestamps."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    first_byte = None
    first_hb = None
    heartbeats = []
    buf = b""
    try:
        while time.monotonic() - t0 < timeout:
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            now = time.monotonic() - t0
            if not chunk:
                break
            if first_byte is None:
                first_byte = now
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                m = HB_RE.search(line)
                if m:
                    if first_hb is None:
                        first_hb = now
                    heartbeats.append((now, int(m.group(4))))
            if len(heartbeats) >= hb_needed:
                break
    finally:
        proc.kill()
        proc.wait()
    rate = None
    if len(heartbeats) >= 3:
        # Skip the first heartbeat: the initial fill is not the steady state.
        (t_a, w_a), (t_b, w_b) = heartbeats[1], heartbeats[-1]
        if t_b > t_a:
            rate = (w_b - w_a) / (t_b - t_a)
    return {"first_byte_s": first_byte, "first_heartbeat_s": first_hb,
            "write_pages_per_s": rate}


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def bench(name, cmd, args):
    runs = [run_once(cmd, args.mem, args.heartbeats, args.timeout) for _ in range(args.runs)]
    return {
        "command": " ".join(cmd),
        "runs": runs,
        "median": {k: median([r[k] for r in runs])
                   for k in ("first_byte_s", "first_heartbeat_s", "write_pages_per_s")},
    }




def ratio(f, q):
    return (f / q) if f and q else None


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--build-dir", default="build")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--mem", type=int, default=64, help="MiB the workload writes")
    p.add_argument("--ram", default="512M")
    p.add_argument("--smp", default="1,4", help="comma-separated vCPU counts")
    p.add_argument("--accel", default="auto",
                   help="kvm, tcg or both; auto: tcg, and kvm too where /dev/kvm works")
    p.add_argument("--heartbeats", type=int, default=12)
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--no-qemu", action="store_true")
    args = p.parse_args()

    kernel = os.path.join(args.build_dir, "tests/guest/kernel/ferry-testkernel.elf")
    ferry = os.path.join(args.build_dir, "ferry-system-x86_64")
    if not os.path.exists(kernel) or not os.path.exists(ferry):
        sys.exit("boot-bench: build first (make): %s or %s missing" % (ferry, kernel))
    accels = accels_for(args.accel)
    qemu = shutil.which("qemu-system-x86_64")
    result = {"benchmark": "boot", "params": {"ram": args.ram, "smp": args.smp,
                                              "mem_mib": args.mem, "runs": args.runs},
              "scenarios": {}}
    for accel in accels:
        for smp in [int(n) for n in args.smp.split(",")]:
            append = "mem=%d rate=max cpus=%d hb=100" % (args.mem, smp)
            common = ["-m", args.ram, "-smp", str(smp), "-kernel", kernel, "-append", append,
                      "-nodefaults", "-display", "none", "-serial", "stdio"]
            row = {"ferry": bench("ferry", [ferry, "-accel", accel] + common, args)}
            if qemu and not args.no_qemu:
                cpu = ["-cpu", "host,-arch-capabilities"] if accel == "kvm" else ["-cpu", "max"]
                row["qemu"] = bench("qemu", [qemu, "-accel", accel] + cpu +
                                    ["-machine", "q35"] + common, args)
                row["ferry_over_qemu"] = {
                    k: ratio(row["ferry"]["median"][k], row["qemu"]["median"][k])
                    for k in ("first_byte_s", "first_heartbeat_s", "write_pages_per_s")}
            for side in ("ferry", "qemu"):
                if side in row:
                    del row[side]["runs"]
            result["scenarios"]["%s-smp%d" % (accel, smp)] = row
            print("boot-bench: %s-smp%d done" % (accel, smp), file=sys.stderr)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
