#!/usr/bin/env python3
"""The Ferry demo: live-migrate a running guest between two Ferry processes.

Boots the project's test kernel in process A (its workload rewrites and
verifies memory on two vCPUs), starts process B waiting for an incoming
migration on TCP, migrates A to B while the guest keeps dirtying memory,
shows the progress, then shows the guest's heartbeat (same boot token)
and page verification carrying on in B.

  scripts/demo.py [--build-dir build]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from importlib import import_module  # noqa: E402

QMPClient = import_module("qmp-client").QMPClient


class SerialTail(threading.Thread):
    """Prints a VM's serial lines with a prefix and remembers them."""

    def __init__(self, proc, prefix, quiet_hb=False):
        super().__init__(daemon=True)
        self.proc, self.prefix, self.lines = proc, prefix, []
        self.quiet_hb = quiet_hb
        self.echo = True

    def run(self):
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            if self.echo and not (self.quiet_hb and line.startswith("VERIFY OK")):
                print(f"  {self.prefix} | {line}", flush=True)

    def wait_for(self, pattern, timeout=30.0, start=0):
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            for line in self.lines[start:]:
                if rx.search(line):
                    return line
            time.sleep(0.05)
        raise TimeoutError(f"{self.prefix}: no line matching {pattern!r}")


def human(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024.0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--build-dir", default="build")
    p.add_argument("--mem", type=int, default=256, help="MiB the guest's workload rewrites")
    args = p.parse_args()
    ferry = os.path.join(args.build_dir, "ferry-system-x86_64")
    kernel = os.path.join(args.build_dir, "tests/guest/kernel/ferry-testkernel.elf")
    if not (os.path.exists(ferry) and os.path.exists(kernel)):
        sys.exit("demo: build first (./configure && make)")

    tmp = tempfile.mkdtemp(prefix="ferry-demo-")
    append = f"mem={args.mem} cpus=2 rate=50000 hb=500"
    common = [ferry, "-nodefaults", "-display", "none", "-m", "1G", "-smp", "2",
              "-kernel", kernel, "-append", append, "-serial", "stdio"]
    procs = []
    try:
        print(f"== A: booting the test kernel (1 GiB, 2 vCPUs, rewriting {args.mem} MiB "
              "at 50000 pages/s and verifying every page)")
        a = subprocess.Popen(common + ["-qmp", f"unix:{tmp}/a.qmp,server=on,wait=off"],
                             stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        procs.append(a)
        tail_a = SerialTail(a, "A")
        tail_a.start()
        qa = QMPClient(f"{tmp}/a.qmp")
        boot = tail_a.wait_for(r"boot token=")
        token = boot.split("token=")[1].strip()
        tail_a.wait_for(r"VERIFY OK", 30)
        time.sleep(1.5)

        print("== B: waiting for the incoming migration on TCP (port chosen by Ferry)")
        b = subprocess.Popen(common + ["-qmp", f"unix:{tmp}/b.qmp,server=on,wait=off",
                                       "-incoming", "tcp:127.0.0.1:0"],
                             stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        procs.append(b)
        tail_b = SerialTail(b, "B")
        tail_b.start()
        qb = QMPClient(f"{tmp}/b.qmp")
        addr = qb.command("query-migrate")["return"]["socket-address"][0]
        uri = f"tcp:{addr['host']}:{addr['port']}"

        print(f"== migrate A -> B ({uri}) while the guest keeps writing")
        tail_a.echo = False
        qa.command("migrate-set-parameters", {"max-bandwidth": 1 << 30})
        qa.command("migrate", {"uri": uri})
        while True:
            info = qa.command("query-migrate")["return"]
            ram = info.get("ram", {})
            status = info.get("status")
            if ram:
                done = ram.get("transferred", 0)
                print(f"   {status:10s} sent {human(done):>10s}  remaining "
                      f"{human(ram.get('remaining', 0)):>10s}  {ram.get('mbps', 0):8.0f} Mbit/s"
                      f"  passes {ram.get('dirty-sync-count', 0)}", flush=True)
            if status in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.2)
        if status != "completed":
            sys.exit(f"demo: migration {status}: {info.get('error-desc', '')}")
        print(f"== completed in {info['total-time']} ms, the guest was stopped for "
              f"{info['downtime']} ms; A is now {qa.command('query-status')['return']['status']}")

        start = len(tail_b.lines)
        hb = tail_b.wait_for(r"HB token=", 30, start)
        same = token in hb
        tail_b.wait_for(r"VERIFY OK", 30, start)
        tail_b.wait_for(r"VERIFY OK", 30, len(tail_b.lines))
        print(f"== B runs the same guest (boot token {token}: "
              f"{'unchanged' if same else 'CHANGED'}) and its memory verifies")
        failed = any("VERIFY FAIL" in ln for ln in tail_b.lines)
        qb.command("quit")
        qa.command("quit")
        return 1 if failed or not same else 0
    finally:
        for proc in procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        for name in ("a.qmp", "b.qmp"):
            try:
                os.unlink(os.path.join(tmp, name))
            except OSError:
                pass
        os.rmdir(tmp)


if __name__ == "__main__":
    sys.exit(main())
