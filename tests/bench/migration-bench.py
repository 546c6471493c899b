#!/usr/bin/env python3
"""Precopy migration benchmark: Ferry and (where installed) QEMU, same test
kernel, same RAM, same arguments, in one run.

Scenarios (1 vCPU; each run --runs times, medians printed):
  idle-1g              -m 1G, mem=16 rate=1: effectively idle (16 MiB written at boot)
  idle-1g-paused       -m 1G started with -S: the guest never ran (the floor: only the
                       loaded image exists); no heartbeat, so no resume figures
  written-512m         -m 1G, mem=512 rate=1: 512 MiB written once, then idle
  written-512m-prealloc  the same, RAM from memory-backend-ram (prealloc=on at the
                       destination): the destination's page faults out of the way
  written-512m-dl10    the same as written-512m with downtime-limit 10 ms
  dirty-moderate       -m 1G, mem=256 rate=20000 (pages/s, ~80 MB/s)
  dirty-moderate-dl10  the same with downtime-limit 10 ms
  dirty-max-capped     -m 1G, mem=256 rate=max, auto-converge, max-bandwidth --cap-bandwidth
  save-restore         -m 1G, mem=512 rate=1 saved to a file and restored (Ferry file:
                       and exec:cat; QEMU 7.2 exec:cat, it has no file: URI)
  dirty-max-4g         -m 4G, mem=3072 rate=max, auto-converge, uncapped
  (these ten are the group "precopy", the default)

  multifd-written-512m-cN-COMP    as written-512m, and
  multifd-dirty-moderate-cN-COMP  as dirty-moderate, with the multifd capability on
                       both sides, N = 1, 2, 4 channels, COMP = none, zlib, zstd (level 1);
                       the destination starts with -incoming defer and listens on
                       migrate-incoming once it has the capability and parameters;
                       migrate_cancel after --multifd-timeout (60 s). Group "multifd";
                       "all" is both groups.

--scenarios takes names, groups, globs (multifd-*-c4-none) and prefixes that end at
a '-' (multifd-written, multifd-dirty-moderate-c2), comma-separated.

--accel kvm|tcg|both|auto (default auto: tcg, and kvm too where /dev/kvm is a
character device that opens) runs the selection under each accelerator: Ferry
with -accel ACCEL (its default CPU model), QEMU with -machine q35 -accel kvm -cpu
host,-arch-capabilities or -accel tcg -cpu max. JSON keys are ACCEL/NAME
(kvm/written-512m, tcg/written-512m). Without --scenarios, kvm runs "precopy" and
tcg runs "tcg-default": idle-1g, idle-1g-paused, written-512m, dirty-moderate,
save-restore and the multifd scenarios with none and zstd. A software CPU writes
guest memory far more slowly than KVM, so under tcg the test kernel's mem= and
rate= are divided by --tcg-scale (4: written-512m writes 128 MiB, dirty-moderate
dirties 5000 pages/s over 64 MiB) and the destination has --tcg-resume-timeout
(60 s) to show its heartbeat and VERIFY OK; the names stay, and each tcg scenario
says in "tcg_scaled" (and params.tcg) what changed.

Live migration goes over tcp loopback (destination -incoming tcp:127.0.0.1:PORT),
max-bandwidth 100 GB/s unless the scenario caps it, downtime-limit 300 ms unless
it says otherwise, events capability on both sides. Per run, from query-migrate on
the source after completion: total-time, setup-time, downtime, ram.transferred,
throughput = transferred / (total-time - setup-time); and measured here:
multifd-bytes, migrate_to_dst_hb_ms (the QMP migrate command to the destination
guest's first heartbeat line), the CPU time (user + system, /proc/PID/stat) of the
source from migrate to its "completed" and of the destination from migrate to its
own "completed", stop_to_resume_ms (source STOP event to destination RESUME
event, both QMP event timestamps: what the guest really lost), hb_gap_ms (last
source heartbeat line to first destination one) and a timeline of MIGRATION
events on both sides.

Also measured: this machine's tcp loopback throughput (one stream, two
processes; and, when multifd scenarios run, 1/2/4 parallel streams between as many
sender and receiver processes, against which the multifd runs without compression
are put as ferry_vs_loopback / qemu_vs_loopback), and the load average, since other
work may share the machine.

Prints one JSON object. Not a test: nothing here is asserted.
"""
import argparse
import fnmatch
import json
import mmap
import os
import queue
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from bench_accel import accels_for

HB_RE = re.compile(r"HB token=([0-9a-f]+) ticks=(\d+) pass=(\d+) writes=(\d+)")
VERIFY_RE = re.compile(r"VERIFY OK (\d+)")
FAIL_RE = re.compile(r"VERIFY FAIL|FAULT cpu=")
BOOT_RE = re.compile(r"FERRY-TESTKERNEL boot token=([0-9a-f]+)")

MiB = 1 << 20
GiB = 1 << 30
UNCAPPED = 100 * 1000 * 1000 * 1000          # 100 GB/s: "no limit"
# Realtime minus monotonic: QMP event timestamps are realtime.
CLOCK_OFFSET = time.time() - time.monotonic()


def mono():
    return time.monotonic()


class BenchError(Exception):
    pass


# ------------------------------------------------------------------ serial

class Serial:
    """The guest's serial port (the VMM's stdout), line by line, timestamped."""

    def __init__(self, stream):
        self.lines = []                 # (monotonic time, text)
        self.cond = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self.thread.start()

    def _run(self, stream):
        fd = stream.fileno()
        buf = b""
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            now = mono()
            if not chunk:
                break
            buf += chunk
            new = []
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                new.append((now, line.decode("latin-1").rstrip("\r")))
            if new:
                with self.cond:
                    self.lines.extend(new)
                    self.cond.notify_all()
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def wait(self, regex, timeout, start=0, after_t=None):
        """First line from index start (and received after after_t) matching regex.
        Returns (index, time, match)."""
        deadline = mono() + timeout
        i = start
        with self.cond:
            while True:
                while i < len(self.lines):
                    t, text = self.lines[i]
                    m = regex.search(text)
                    if m and (after_t is None or t >= after_t):
                        return i, t, m
                    i += 1
                left = deadline - mono()
                if self.closed or left <= 0:
                    raise BenchError("serial: no line matching %r within %.0f s%s" %
                                     (regex.pattern, timeout, " (VMM exited)" if self.closed
                                      else ""))
                self.cond.wait(min(left, 0.5))

    def last(self, regex):
        with self.cond:
            for t, text in reversed(self.lines):
                m = regex.search(text)
                if m:
                    return t, m
        return None, None

    def heartbeats(self, t_from=None, t_to=None):
        """(time, writes) of every heartbeat line received in [t_from, t_to]."""
        out = []
        with self.cond:
            for t, text in self.lines:
                if (t_from is not None and t < t_from) or (t_to is not None and t > t_to):
                    continue
                m = HB_RE.search(text)
                if m:
                    out.append((t, int(m.group(4))))
        return out

    def failure(self):
        with self.cond:
            for _, text in self.lines:
                if FAIL_RE.search(text):
                    return text
        return None


# --------------------------------------------------------------------- QMP

class QMP:
    """QMP over a unix socket; a reader thread keeps events with their arrival."""

    def __init__(self, path, timeout=30.0):
        deadline = mono() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if mono() > deadline:
                    raise BenchError("QMP socket %s did not appear" % path)
                time.sleep(0.02)
        self.rfile = self.sock.makefile("rb")
        self.replies = queue.Queue()
        self.events = []                # (arrival monotonic, event)
        self.cond = threading.Condition()
        self.lock = threading.Lock()
        self.greeting = json.loads(self.rfile.readline())
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.cmd("qmp_capabilities")

    def _run(self):
        while True:
            try:
                line = self.rfile.readline()
            except OSError:
                line = b""
            if not line:
                self.replies.put(None)
                with self.cond:
                    self.cond.notify_all()
                return
            now = mono()
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if "event" in msg:
                with self.cond:
                    self.events.append((now, msg))
                    self.cond.notify_all()
            else:
                self.replies.put(msg)

    def cmd(self, name, args=None, timeout=30.0, check=True):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        with self.lock:
            self.sock.sendall(json.dumps(msg).encode() + b"\n")
            try:
                reply = self.replies.get(timeout=timeout)
            except queue.Empty:
                raise BenchError("QMP %s: no reply within %.0f s" % (name, timeout))
        if reply is None:
            raise BenchError("QMP %s: connection closed" % name)
        if check and "error" in reply:
            raise BenchError("QMP %s %s: %s" % (name, json.dumps(args or {}),
                                                reply["error"].get("desc")))
        return reply.get("return", reply)

    def wait_event(self, pred, timeout, start=0):
        """First event from index start for which pred(event) holds, or None."""
        deadline = mono() + timeout
        i = start
        with self.cond:
            while True:
                while i < len(self.events):
                    if pred(self.events[i][1]):
                        return self.events[i]
                    i += 1
                left = deadline - mono()
                if left <= 0:
                    return None
                self.cond.wait(min(left, 0.2))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def event_mono(ev):
    """An event's own timestamp, on this script's monotonic clock."""
    ts = ev.get("timestamp") or {}
    return ts.get("seconds", 0) + ts.get("microseconds", 0) / 1e6 - CLOCK_OFFSET


# ---------------------------------------------------------------------- VMs

class VM:
    def __init__(self, cmd, tmp, name):
        self.name = name
        self.qmp_path = os.path.join(tmp, name + ".qmp")
        self.err_path = os.path.join(tmp, name + ".stderr")
        self.cmd = cmd + ["-qmp", "unix:%s,server=on,wait=off" % self.qmp_path]
        self.proc = None
        self.qmp = None
        self.serial = None
        self.write_window = None

    def start(self):
        self.t_start = mono()
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=err,
                                         start_new_session=True)
        self.serial = Serial(self.proc.stdout)
        try:
            self.qmp = QMP(self.qmp_path)
        except BenchError:
            raise BenchError("%s did not start: %s" % (self.name, self.stderr_tail()))
        return self

    def stderr_tail(self):
        try:
            with open(self.err_path, "rb") as f:
                return f.read()[-600:].decode("latin-1").strip()
        except OSError:
            return ""

    def kill(self):
        if self.qmp:
            self.qmp.close()
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self.proc:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            self.proc.stdout.close()


def parse_size(text):
    units = {"K": 1 << 10, "M": MiB, "G": GiB, "T": 1 << 40}
    if text[-1].upper() in units:
        return int(text[:-1]) * units[text[-1].upper()]
    return int(text) * MiB


def populate(nbytes):
    """Fault in nbytes of anonymous memory the way the VMMs' guest RAM gets it
    (transparent huge pages where allowed); seconds taken."""
    m = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        if hasattr(mmap, "MADV_HUGEPAGE"):
            m.madvise(mmap.MADV_HUGEPAGE)
        t = mono()
        try:
            m.madvise(getattr(mmap, "MADV_POPULATE_WRITE", 23))
        except OSError:
            for off in range(0, nbytes, 4096):       # kernels before 5.14
                m[off] = 1
        return mono() - t
    finally:
        m.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Side:
    """One VMM: how to start it."""

    def __init__(self, name, binary, extra, kernel, args):
        self.name = name
        self.binary = binary
        self.extra = extra
        self.kernel = kernel
        self.args = args

    def command(self, ram, append, more=()):
        return ([self.binary] + self.extra +
                ["-m", ram, "-smp", "1", "-kernel", self.kernel, "-append", append,
                 "-nodefaults", "-display", "none", "-serial", "stdio"] + list(more))

    def vm(self, tmp, name, ram, append, more=()):
        return VM(self.command(ram, append, more), tmp, name)


def append_for(sc, args):
    return "%s hb=%d" % (sc["append"], args.hb)


# Under tcg, a dirtying guest's migration starts this long after a VERIFY OK line.
AFTER_VERIFY_S = 0.3


def boot_and_settle(vm, args, settle_hb=2, after_verify=False):
    """Start a source and wait for its first VERIFY OK, then a few heartbeats.
    vm.write_window is the span of heartbeats to take the guest's write rate
    before migration from (None: the 1.2 s before migrate).

    after_verify (dirtying guests under tcg): then wait for the next VERIFY OK
    and AFTER_VERIFY_S more. The test kernel verifies its whole area at least
    every second (tests/guest/kernel/workload.c) and writes nothing meanwhile;
    under KVM that takes milliseconds, on a software CPU it can take longer than
    the second of writing between passes. Without this the migration would start
    ~1 s after the first VERIFY OK, just as the next pass begins, and a short
    migration would see a guest that is only reading. The write rate before
    migration is then taken over the settling second (writing only), not over
    the last 1.2 s (which would include a pass)."""
    vm.start()
    vm.write_window = None
    _, _, m = vm.serial.wait(BOOT_RE, args.boot_timeout)
    token = m.group(1)
    i, t, _ = vm.serial.wait(VERIFY_RE, args.boot_timeout)
    for _ in range(settle_hb):
        i, t_a, _ = vm.serial.wait(HB_RE, 30, start=i + 1)
    # A little longer: the write rate before migration, untracked.
    i, t_b, _ = vm.serial.wait(HB_RE, 30, start=i + 1, after_t=mono() + 1.0)
    if after_verify:
        # Stop short of the second after VERIFY OK, when the next pass begins.
        vm.write_window = (t_a, min(t_b, t_a + 0.8))
        i, t_ok, _ = vm.serial.wait(VERIFY_RE, args.boot_timeout, start=i + 1)
        vm.serial.wait(HB_RE, 30, start=i + 1, after_t=t_ok + AFTER_VERIFY_S)
    return token


def write_rate(hbs):
    """Guest page writes per second between the first and last heartbeat given."""
    if len(hbs) < 2 or hbs[-1][0] <= hbs[0][0]:
        return None
    return (hbs[-1][1] - hbs[0][1]) / (hbs[-1][0] - hbs[0][0])


def set_migration(vm, caps, params):
    vm.qmp.cmd("migrate-set-capabilities",
               {"capabilities": [{"capability": c, "state": s} for c, s in caps.items()]})
    if params:
        vm.qmp.cmd("migrate-set-parameters", params)


def is_end(ev):
    return (ev.get("event") == "MIGRATION" and
            ev.get("data", {}).get("status") in ("completed", "failed", "cancelled"))


def wait_migration_end(vm, timeout, poll=1.0, samples=None):
    """Wait for the source's final MIGRATION event (polling query-migrate now and
    then for the throttle and pass counts). Returns its status, or None on timeout."""
    deadline = mono() + timeout
    while True:
        ev = vm.qmp.wait_event(is_end, min(poll, max(deadline - mono(), 0)))
        if ev:
            return ev[1]["data"]["status"]
        if mono() >= deadline:
            return None
        if samples is not None:
            q = vm.qmp.cmd("query-migrate")
            samples.append(q)


def final_query(vm):
    """query-migrate after the end. QEMU 7.2 announces "completed" before it fills
    in total-time and downtime (migration_iteration_finish), so ask until they are."""
    deadline = mono() + 3.0
    while True:
        q = vm.qmp.cmd("query-migrate")
        if q.get("status") != "completed" or q.get("total-time") or mono() > deadline:
            return q
        time.sleep(0.02)


def timeline(vm, t0):
    """MIGRATION/STOP/RESUME events (and the MIGRATION_PASS count), times in ms from t0,
    by the events' own timestamps."""
    out = []
    passes = 0
    for _, ev in list(vm.qmp.events):
        name = ev.get("event")
        if name == "MIGRATION_PASS":
            passes += 1
            continue
        if name == "MIGRATION":
            name += " " + ev.get("data", {}).get("status", "?")
        elif name not in ("STOP", "RESUME"):
            continue
        out.append([name, round((event_mono(ev) - t0) * 1000, 2)])
    return out, passes


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    """User + system CPU seconds of process pid so far: every thread, also those
    that have exited (/proc/PID/stat utime + stime). None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def cpu_delta(before, after):
    if before is None or after is None:
        return None
    return after - before


MULTIFD_PARAMS = ("multifd-channels", "multifd-compression", "multifd-zlib-level",
                  "multifd-zstd-level", "zero-page-detection")


def multifd_setup(mf):
    """The multifd capability and parameters (one VM; caps and params that
    both sides need). QEMU 7.2 has no zero-page-detection: left alone on both."""
    caps = {"multifd": True}
    params = {"multifd-channels": mf["channels"], "multifd-compression": mf["compression"]}
    if mf["compression"] == "zlib":
        params["multifd-zlib-level"] = MULTIFD_LEVEL
    elif mf["compression"] == "zstd":
        params["multifd-zstd-level"] = MULTIFD_LEVEL
    return caps, params


def first_event(vm, name, status=None):
    for _, ev in list(vm.qmp.events):
        if ev.get("event") == name and (status is None or
                                         ev.get("data", {}).get("status") == status):
            return ev
    return None


def query_figures(q):
    ram = q.get("ram", {})
    total = q.get("total-time")
    setup = q.get("setup-time", 0)
    xfer = ram.get("transferred")
    normal = ram.get("normal")
    thr = normal_thr = None
    if total is not None and total - setup > 0:
        if xfer is not None:
            thr = xfer / ((total - setup) / 1000.0)
        if normal is not None:
            normal_thr = normal * ram.get("page-size", 4096) / ((total - setup) / 1000.0)
    return {
        "total_time_ms": total,
        "setup_time_ms": setup,
        "downtime_ms": q.get("downtime"),
        "transferred_bytes": xfer,
        "throughput_bytes_per_s": thr,
        "dirty_sync_count": ram.get("dirty-sync-count"),
        "downtime_bytes": ram.get("downtime-bytes"),
        "normal_pages": normal,
        "zero_pages": ram.get("duplicate"),
        "normal_bytes_per_s": normal_thr,
        "multifd_bytes": ram.get("multifd-bytes"),
    }


# ----------------------------------------------------------------- live runs

def live_run(side, sc, args, tmp):
    ram = sc["ram"]
    rto = sc.get("resume_timeout", args.resume_timeout)
    paused = sc.get("paused", False)
    append = append_for(sc, args)
    src_more = ["-S"] if paused else []
    dst_more = []
    if sc.get("prealloc_dst"):
        backend = "memory-backend-ram,id=ram0,size=%d" % parse_size(ram)
        machine = ["-machine", "q35,memory-backend=ram0"]
        src_more += ["-object", backend] + machine
        dst_more += ["-object", backend + ",prealloc=on"] + machine
    mf = sc.get("multifd")
    src = side.vm(tmp, "src", ram, append, src_more)
    port = free_port()
    uri = "tcp:127.0.0.1:%d" % port
    # multifd: the destination needs the capability and the channel count before
    # it listens, so it starts with -incoming defer and listens on migrate-incoming.
    dst = side.vm(tmp, "dst", ram, append,
                  dst_more + ["-incoming", "defer" if mf else uri])
    res = {}
    try:
        if paused:
            src.start()
            token = None
        else:
            token = boot_and_settle(src, args, after_verify=sc.get("after_verify", False))
        dst.start()
        caps = {"events": True, "auto-converge": bool(sc.get("auto_converge"))}
        params = {"max-bandwidth": sc.get("max_bandwidth", UNCAPPED),
                  "downtime-limit": sc.get("downtime_limit", 300)}
        if mf:
            mcaps, mparams = multifd_setup(mf)
            set_migration(dst, dict(mcaps, events=True), mparams)
            dst.qmp.cmd("migrate-incoming", {"uri": uri})
            caps.update(mcaps)
            params.update(mparams)
        else:
            set_migration(dst, {"events": True}, None)
        set_migration(src, caps, params)
        if mf:
            qp = src.qmp.cmd("query-migrate-parameters")
            res["multifd_params"] = {k: qp[k] for k in MULTIFD_PARAMS if k in qp}
        samples = []
        t0 = mono()
        if not paused:
            res["guest_writes_per_s_before"] = write_rate(src.serial.heartbeats(
                *(src.write_window or (t0 - 1.2, t0))))
        cpu0_src, cpu0_dst = proc_cpu(src.proc.pid), proc_cpu(dst.proc.pid)
        src.qmp.cmd("migrate", {"uri": uri})
        status = wait_migration_end(src, sc.get("timeout", args.mig_timeout),
                                    samples=samples)
        cpu1_src = proc_cpu(src.proc.pid)
        res["status"] = status or "timeout"
        if status is None:
            q = src.qmp.cmd("query-migrate")
            res["at_timeout"] = query_figures(q)
            res["at_timeout"]["cpu_throttle_percentage"] = q.get("cpu-throttle-percentage")
            ram_q = q.get("ram", {})
            res["error"] = ("not completed within %.0f s: %s transferred, %s remaining, "
                            "%s dirty syncs, %s B/s dirtied, %.0f B/s sent" % (
                                sc.get("timeout", args.mig_timeout),
                                ram_q.get("transferred"), ram_q.get("remaining"),
                                ram_q.get("dirty-sync-count"),
                                ram_q.get("dirty-pages-rate", 0) * ram_q.get("page-size", 4096),
                                (ram_q.get("transferred") or 0) / max(mono() - t0, 1e-3)))
            src.qmp.cmd("migrate_cancel")
            wait_migration_end(src, 30)
            res["converged"] = False
            return res
        q = final_query(src)
        res.update(query_figures(q))
        if status != "completed":
            res["error"] = q.get("error-desc")
            return res
        # The destination's CPU up to its own "completed" (it has loaded
        # everything; its guest starts right after).
        if dst.qmp.wait_event(is_end, rto):
            cpu1_dst = proc_cpu(dst.proc.pid)
        else:
            cpu1_dst = None
        res["cpu_src_s"] = cpu_delta(cpu0_src, cpu1_src)
        res["cpu_dst_s"] = cpu_delta(cpu0_dst, cpu1_dst)
        if res["cpu_src_s"] is not None and res["cpu_dst_s"] is not None:
            res["cpu_total_s"] = res["cpu_src_s"] + res["cpu_dst_s"]
        if sc.get("auto_converge") or sc.get("multifd"):
            res["converged"] = True
        if sc.get("auto_converge"):
            res["max_cpu_throttle_seen"] = max(
                [s.get("cpu-throttle-percentage", 0) for s in samples] +
                [q.get("cpu-throttle-percentage", 0)])
        if not paused:
            _, t_hb, m = dst.serial.wait(HB_RE, rto)
            res["migrate_to_dst_hb_ms"] = (t_hb - t0) * 1000
            res["token_kept"] = (m.group(1) == token)
            t_last, _ = src.serial.last(HB_RE)
            if t_last is not None:
                res["hb_gap_ms"] = (t_hb - t_last) * 1000
            stop = first_event(src, "STOP")
            if stop:
                res["guest_writes_per_s_during"] = write_rate(
                    src.serial.heartbeats(t0, event_mono(stop)))
            resume = first_event(dst, "RESUME")
            if stop and resume:
                res["stop_to_resume_ms"] = (event_mono(resume) - event_mono(stop)) * 1000
            # The guest still verifies its memory at the destination.
            try:
                dst.serial.wait(VERIFY_RE, rto)
                res["verify_ok_after"] = dst.serial.failure() is None
            except BenchError:
                res["verify_ok_after"] = False
        res["timeline_src_ms"], passes = timeline(src, t0)
        res["timeline_dst_ms"], _ = timeline(dst, t0)
        res["migration_pass_events"] = passes
        return res
    finally:
        if res.get("status") not in (None, "completed"):
            res["stderr_src"] = src.stderr_tail()
            res["stderr_dst"] = dst.stderr_tail()
        src.kill()
        dst.kill()


# ----------------------------------------------------------- save / restore

def save_restore_run(side, sc, args, tmp, save_uri, restore_uri, path):
    append = append_for(sc, args)
    rto = sc.get("resume_timeout", args.resume_timeout)
    src = side.vm(tmp, "src", sc["ram"], append)
    dst = None
    res = {}
    try:
        token = boot_and_settle(src, args)
        set_migration(src, {"events": True}, {"max-bandwidth": UNCAPPED,
                                               "downtime-limit": 300})
        t0 = mono()
        src.qmp.cmd("migrate", {"uri": save_uri})
        status = wait_migration_end(src, args.mig_timeout)
        t_done = mono()
        res["status"] = status or "timeout"
        q = final_query(src)
        res.update(query_figures(q))
        if status != "completed":
            res["error"] = q.get("error-desc")
            return res
        res["save_wall_ms"] = (t_done - t0) * 1000
        res["file_bytes"] = os.path.getsize(path)
        src.kill()
        src = None

        dst = side.vm(tmp, "dst", sc["ram"], append, ["-incoming", restore_uri])
        dst.start()
        _, t_hb, m = dst.serial.wait(HB_RE, rto)
        res["restore_to_hb_ms"] = (t_hb - dst.t_start) * 1000
        res["token_kept"] = (m.group(1) == token)
        resume = first_event(dst, "RESUME")
        if resume:
            res["restore_to_resume_event_ms"] = (event_mono(resume) - dst.t_start) * 1000
        try:
            dst.serial.wait(VERIFY_RE, rto)
            res["verify_ok_after"] = dst.serial.failure() is None
        except BenchError:
            res["verify_ok_after"] = False
        return res
    finally:
        if src:
            src.kill()
        if dst:
            dst.kill()
        try:
            os.unlink(path)
        except OSError:
            pass


# ------------------------------------------------------------------ helpers

NUMERIC = ("total_time_ms", "setup_time_ms", "downtime_ms", "transferred_bytes",
           "throughput_bytes_per_s", "dirty_sync_count", "migrate_to_dst_hb_ms",
           "stop_to_resume_ms", "hb_gap_ms", "max_cpu_throttle_seen", "save_wall_ms",
           "file_bytes", "restore_to_hb_ms", "restore_to_resume_event_ms", "normal_pages",
           "zero_pages", "migration_pass_events", "downtime_bytes",
           "guest_writes_per_s_before", "guest_writes_per_s_during", "normal_bytes_per_s",
           "multifd_bytes", "cpu_src_s", "cpu_dst_s", "cpu_total_s")


def median(values):
    values = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return statistics.median(values) if values else None


def summarize(runs):
    ok = [r for r in runs if r.get("status") == "completed"]
    med = {}
    for k in NUMERIC:
        v = median([r.get(k) for r in ok])
        if v is not None:
            med[k] = round(v, 3) if isinstance(v, float) else v
    out = {"runs_ok": len(ok), "runs": len(runs), "median": med}
    if any("converged" in r for r in runs):
        out["converged"] = sum(1 for r in runs if r.get("converged"))
    for flag in ("token_kept", "verify_ok_after"):
        vals = [r.get(flag) for r in ok if flag in r]
        if vals:
            out[flag] = all(vals)
    for r in runs:
        if "multifd_params" in r:
            out["multifd_params"] = r["multifd_params"]
            break
    return out


def compact(run):
    """A run as printed: rounded, without the long timelines unless asked."""
    out = {}
    for k, v in run.items():
        out[k] = round(v, 3) if isinstance(v, float) else v
    return out


def ratios(f, q):
    out = {}
    for k, fv in f.get("median", {}).items():
        qv = q.get("median", {}).get(k)
        if isinstance(fv, (int, float)) and isinstance(qv, (int, float)) and qv:
            out[k] = round(fv / qv, 3)
    return out


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[:4]
    except OSError:
        return None


# ----------------------------------------------------------------- loopback

def loopback_once(total, chunk, region):
    """One tcp stream over 127.0.0.1 between two processes. The sender writes
    `chunk` bytes per call cycling through `region` bytes of memory; the receiver
    reads into the same kind of region. Returns bytes/s seen by the receiver."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    addr = ls.getsockname()
    pid = os.fork()
    if pid == 0:
        try:
            ls.close()
            s = socket.create_connection(addr)
            buf = bytearray(b"\x5a" * region)
            mv = memoryview(buf)
            sent = 0
            off = 0
            while sent < total:
                n = min(chunk, total - sent)
                if off + n > region:
                    off = 0
                s.sendall(mv[off:off + n])
                sent += n
                off += n
            s.close()
        finally:
            os._exit(0)
    try:
        conn, _ = ls.accept()
        buf = bytearray(region)
        mv = memoryview(buf)
        got = 0
        off = 0
        t0 = None
        while got < total:
            if off + chunk > region:
                off = 0
            n = conn.recv_into(mv[off:off + chunk])
            if n == 0:
                break
            if t0 is None:
                t0 = mono()
            got += n
            off += n
        t1 = mono()
        conn.close()
        return got / (t1 - t0) if t0 and t1 > t0 else None
    finally:
        ls.close()
        os.waitpid(pid, 0)


def _child_pipe_write(fd, text):
    os.write(fd, text.encode())


def loopback_parallel_once(streams, seconds, region, chunk=MiB):
    """`streams` tcp connections over 127.0.0.1 at once, each between its own
    sender and receiver process (2 * streams processes, no GIL in the way). Every
    sender send()s `chunk` bytes per call, cycling through its share of `region`
    bytes of written memory (region / streams each: beyond the cache, like guest
    pages), for `seconds`; every receiver recv_into()s its own pre-touched share.
    Returns the receivers' bytes together over the span from the first receiver's
    first byte to the last one's EOF, in bytes/s."""
    share = max(chunk, region // streams // chunk * chunk)
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(streams)
    addr = ls.getsockname()
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    res_r, res_w = os.pipe()
    pids = []

    def fork(fn):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.close(ready_r)
                os.close(go_w)
                os.close(res_r)
                fn()
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        pids.append(pid)

    def sender():
        ls.close()
        s = socket.create_connection(addr)
        buf = bytearray(b"\x5a" * share)           # written: real pages, not the zero page
        mv = memoryview(buf)
        _child_pipe_write(ready_w, "r")
        if os.read(go_r, 1) != b"g":
            return
        end = mono() + seconds
        off = 0
        while mono() < end:
            s.sendall(mv[off:off + chunk])
            off += chunk
            if off + chunk > share:
                off = 0
        s.close()

    def receiver():
        conn, _ = ls.accept()
        ls.close()
        buf = bytearray(b"\x00" * share)           # faulted in before the clock starts
        mv = memoryview(buf)
        _child_pipe_write(ready_w, "r")
        got = 0
        off = 0
        t0 = None
        while True:
            if off + chunk > share:
                off = 0
            n = conn.recv_into(mv[off:off + chunk])
            if n == 0:
                break
            if t0 is None:
                t0 = mono()
            got += n
            off += n
        t1 = mono()
        conn.close()
        _child_pipe_write(res_w, "%d %.6f %.6f\n" % (got, t0 or t1, t1))

    try:
        for _ in range(streams):
            fork(receiver)
        for _ in range(streams):
            fork(sender)
        os.close(ready_w)
        ready_w = -1
        readies = b""
        deadline = mono() + 60
        while len(readies) < 2 * streams and mono() < deadline:
            r, _, _ = select.select([ready_r], [], [], 1.0)
            if r:
                chunk_in = os.read(ready_r, 64)
                if not chunk_in:
                    break
                readies += chunk_in
        if len(readies) < 2 * streams:
            return None
        os.write(go_w, b"g" * streams)
        os.close(res_w)
        res_w = -1
        data = b""
        while True:
            b = os.read(res_r, 4096)
            if not b:
                break
            data += b
        rows = [line.split() for line in data.decode().splitlines() if line.strip()]
        if len(rows) < streams:
            return None
        got = sum(int(r[0]) for r in rows)
        t0 = min(float(r[1]) for r in rows)
        t1 = max(float(r[2]) for r in rows)
        return got / (t1 - t0) if t1 > t0 else None
    finally:
        ls.close()
        for fd in (ready_r, ready_w, go_r, go_w, res_r, res_w):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                os.waitpid(pid, 0)
            except OSError:
                pass


def loopback_streams(args, counts):
    """loopback_parallel_once for each stream count, --loopback-repeats times each;
    medians in bytes/s."""
    out = {"seconds": args.loopback_seconds, "write_size": MiB,
           "region_bytes_per_side": LOOPBACK_REGION, "repeats": args.loopback_repeats,
           "bytes_per_s": {}, "runs": {}}
    for n in counts:
        vals = [loopback_parallel_once(n, args.loopback_seconds, LOOPBACK_REGION)
                for _ in range(args.loopback_repeats)]
        out["bytes_per_s"][str(n)] = median(vals)
        out["runs"][str(n)] = [round(v) for v in vals if v]
    return out


def fresh_memory():
    """What faulting in anonymous memory costs here: the first time (pages the host
    may not back yet) and again at once (pages just freed)."""
    n = 512 * MiB
    first = populate(n)
    again = populate(n)
    return {"bytes": n, "first_bytes_per_s": n / first, "again_bytes_per_s": n / again}


def git_head(build_dir):
    try:
        src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        return subprocess.run(["git", "-C", src, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


LOOPBACK_REGION = 256 * MiB     # per side, split among the streams


def loopback(args):
    total = args.loopback_gib * GiB
    hot = [loopback_once(total, 1 * MiB, 4 * MiB) for _ in range(3)]
    cold = [loopback_once(total, 1 * MiB, 256 * MiB) for _ in range(3)]
    return {"bytes_per_stream": total, "write_size": MiB,
            "hot_4MiB_buffers_bytes_per_s": median(hot),
            "cold_256MiB_buffers_bytes_per_s": median(cold),
            "runs_hot": [round(x) for x in hot if x], "runs_cold": [round(x) for x in cold if x]}


# --------------------------------------------------------------------- main

MULTIFD_BASES = (
    # (name, append, what)
    ("written-512m", "mem=512 rate=1", "1 GiB guest, 512 MiB written once at boot, then ~idle"),
    ("dirty-moderate", "mem=256 rate=20000", "1 GiB guest dirtying 20000 pages/s over 256 MiB"),
)
MULTIFD_CHANNELS = (1, 2, 4)
MULTIFD_COMPRESSION = ("none", "zlib", "zstd")
MULTIFD_LEVEL = 1                               # zlib and zstd level


def multifd_scenarios(args):
    out = []
    for base, append, what in MULTIFD_BASES:
        for ch in MULTIFD_CHANNELS:
            for comp in MULTIFD_COMPRESSION:
                out.append({
                    "name": "multifd-%s-c%d-%s" % (base, ch, comp), "ram": "1G",
                    "append": append, "group": "multifd", "timeout": args.multifd_timeout,
                    "multifd": {"channels": ch, "compression": comp},
                    "what": "%s; multifd, %d channel%s, compression %s%s" % (
                        what, ch, "s" if ch > 1 else "", comp,
                        "" if comp == "none" else " level %d" % MULTIFD_LEVEL)})
    return out


def scenarios(args):
    return precopy_scenarios(args) + multifd_scenarios(args)


def select_scenarios(all_sc, spec):
    """Scenarios named by a comma-separated spec. Each item is an exact name, a
    group (all, precopy, multifd, tcg-default), a glob (multifd-*-c4-none) or a prefix ending
    at a '-' boundary (multifd-written, multifd-dirty-moderate-c2). Returns the
    scenarios in their usual order, or raises ValueError naming what matched
    nothing."""
    names = [s["name"] for s in all_sc]
    groups = {"all": set(names),
              "precopy": {s["name"] for s in all_sc if s.get("group") != "multifd"},
              "multifd": {s["name"] for s in all_sc if s.get("group") == "multifd"},
              "tcg-default": {n for n in names
                              if any(fnmatch.fnmatchcase(n, g) for g in TCG_DEFAULT)}}
    want = set()
    unknown = []
    for item in [x.strip() for x in spec.split(",") if x.strip()]:
        if item in names:
            hit = {item}
        elif item in groups:
            hit = groups[item]
        elif any(c in item for c in "*?["):
            hit = set(fnmatch.filter(names, item))
        else:
            hit = {n for n in names if n.startswith(item + "-")}
        if not hit:
            unknown.append(item)
        want |= hit
    if unknown:
        raise ValueError(", ".join(unknown))
    return [s for s in all_sc if s["name"] in want]


def precopy_scenarios(args):
    cap = args.cap_bandwidth
    return [
        {"name": "idle-1g", "ram": "1G", "append": "mem=16 rate=1",
         "what": "1 GiB guest, 16 MiB written at boot, ~1 page write/s"},
        {"name": "idle-1g-paused", "ram": "1G", "append": "mem=16 rate=1", "paused": True,
         "what": "1 GiB guest started with -S (never ran): only the loaded image exists"},
        {"name": "written-512m", "ram": "1G", "append": "mem=512 rate=1",
         "what": "1 GiB guest, 512 MiB written once at boot, then ~idle"},
        {"name": "written-512m-prealloc", "ram": "1G", "append": "mem=512 rate=1",
         "prealloc_dst": True,
         "what": "as written-512m, RAM from -object memory-backend-ram (id ram0) on both "
                 "sides, prealloc=on at the destination: takes the destination's page "
                 "faults (and the host's first-touch cost) out of the migration"},
        {"name": "written-512m-dl10", "ram": "1G", "append": "mem=512 rate=1",
         "downtime_limit": 10, "what": "as written-512m, downtime-limit 10 ms"},
        {"name": "dirty-moderate", "ram": "1G", "append": "mem=256 rate=20000",
         "what": "1 GiB guest dirtying 20000 pages/s over 256 MiB"},
        {"name": "dirty-moderate-dl10", "ram": "1G", "append": "mem=256 rate=20000",
         "downtime_limit": 10, "what": "as dirty-moderate, downtime-limit 10 ms"},
        {"name": "dirty-max-capped", "ram": "1G", "append": "mem=256 rate=max",
         "auto_converge": True, "max_bandwidth": cap, "timeout": args.converge_timeout,
         "what": "1 GiB guest dirtying flat out over 256 MiB, auto-converge, "
                 "max-bandwidth %d B/s" % cap},
        {"name": "save-restore", "ram": "1G", "append": "mem=512 rate=1", "kind": "save",
         "what": "512 MiB-written guest saved to a file and restored"},
        {"name": "dirty-max-4g", "ram": "4G", "append": "mem=3072 rate=max",
         "auto_converge": True, "timeout": args.converge_timeout,
         "what": "4 GiB guest dirtying 3 GiB flat out, auto-converge, uncapped"},
    ]


# The scenarios that run under tcg when --scenarios is not given: the KVM default
# (precopy) costs too long on a software CPU, and zlib adds nothing here.
TCG_DEFAULT = ("idle-1g", "idle-1g-paused", "written-512m", "dirty-moderate",
               "save-restore", "multifd-*-none", "multifd-*-zstd")


def tcg_scale(sc, args):
    """The scenario as it runs under tcg. A software CPU writes guest pages far
    more slowly than KVM (Ferry's interpreter ~25k pages/s against ~800k; the
    fill at boot and every verification pass are as slow), so the test area
    (mem=, not below the kernel's 16 MiB minimum) and the write rate (rate=N;
    rate=max stays) are divided by --tcg-scale, and the destination gets
    --tcg-resume-timeout to print its heartbeat and VERIFY OK. -m stays: RAM
    the guest never wrote costs little to send. The names stay, so the rows
    line up with the kvm ones; "tcg_scaled" says what changed."""
    div = args.tcg_scale
    sc = dict(sc)
    words = sc["append"].split()
    scaled = {}
    for i, w in enumerate(words):
        key, _, val = w.partition("=")
        if key in ("mem", "rate") and val.isdigit() and div > 1:
            new = max(int(val) // div, 16 if key == "mem" else 1)
            if new != int(val):
                words[i] = "%s=%d" % (key, new)
                scaled[key] = {"kvm": int(val), "tcg": new}
    sc["append"] = " ".join(words)
    sc["resume_timeout"] = args.tcg_resume_timeout
    sc["tcg_scaled"] = dict(scaled, divisor=div, resume_timeout_s=args.tcg_resume_timeout)
    # A guest that dirties memory (rate above 1) is migrated right after one of
    # its verification passes (boot_and_settle).
    rate = [w.partition("=")[2] for w in words if w.startswith("rate=")]
    if not sc.get("paused") and rate and rate[-1] != "1":
        sc["after_verify"] = True
        sc["tcg_scaled"]["migrate_after_verify_ok_s"] = AFTER_VERIFY_S
    if scaled:
        sc["what"] += " (under tcg: %s)" % ", ".join(
            "%s=%d instead of %d" % (k, v["tcg"], v["kvm"]) for k, v in scaled.items())
    return sc


def run_scenario(sides, sc, args, log, streams_limit=None):
    out = {"what": sc["what"], "ram": sc["ram"], "append": append_for(sc, args),
           "accel": sc["accel"], "load_before": loadavg()}
    if "tcg_scaled" in sc:
        out["tcg_scaled"] = sc["tcg_scaled"]
    if sc.get("multifd"):
        out["multifd"] = dict(sc["multifd"])
        if sc["multifd"]["compression"] != "none":
            out["multifd"]["level"] = MULTIFD_LEVEL
    for side in sides:
        variants = [(side.name, None)]
        if sc.get("kind") == "save":
            variants = ([(side.name, "file"), (side.name + "-exec", "exec")]
                        if side.name == "ferry" else [(side.name, "exec")])
        for label, how in variants:
            runs = []
            for i in range(args.runs):
                tmp = tempfile.mkdtemp(prefix="migbench-")
                try:
                    if how is None:
                        r = live_run(side, sc, args, tmp)
                    else:
                        path = os.path.join(tmp, "state.mig")
                        if how == "file":
                            save, restore = "file:" + path, "file:" + path
                        else:
                            save, restore = "exec:cat > " + path, "exec:cat " + path
                        r = save_restore_run(side, sc, args, tmp, save, restore, path)
                except BenchError as e:
                    r = {"status": "error", "error": str(e)}
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
                runs.append(compact(r))
                log("%s %s run %d: %s" % (sc["key"], label, i + 1, json.dumps(
                    {k: r.get(k) for k in ("status", "total_time_ms", "downtime_ms",
                                           "transferred_bytes", "multifd_bytes",
                                           "migrate_to_dst_hb_ms", "stop_to_resume_ms",
                                           "cpu_src_s", "cpu_dst_s", "save_wall_ms",
                                           "restore_to_hb_ms", "error") if k in r})))
            out[label] = summarize(runs)
            if args.all_runs:
                out[label]["all_runs"] = runs
            else:
                # Keep the first completed run's timeline as an example.
                for r in runs:
                    if r.get("status") == "completed" and "timeline_src_ms" in r:
                        out[label]["example_timeline_ms"] = {
                            "src": r["timeline_src_ms"], "dst": r["timeline_dst_ms"]}
                        break
                errs = [r.get("error") for r in runs if r.get("status") != "completed"]
                if errs:
                    out[label]["errors"] = errs
    if "ferry" in out and "qemu" in out:
        out["ferry_over_qemu"] = ratios(out["ferry"], out["qemu"])
    mf = sc.get("multifd")
    if mf and mf["compression"] == "none" and streams_limit:
        # Against what this machine's loopback moves with as many streams.
        lim = streams_limit.get(str(mf["channels"]))
        if lim:
            out["loopback_bytes_per_s"] = round(lim)
            for label in ("ferry", "qemu"):
                thr = out.get(label, {}).get("median", {}).get("throughput_bytes_per_s")
                if thr:
                    out[label + "_vs_loopback"] = round(thr / lim, 3)
    out["load_after"] = loadavg()
    return out


MULTIFD_TABLE_KEYS = ("total_time_ms", "downtime_ms", "stop_to_resume_ms",
                      "transferred_bytes", "multifd_bytes", "throughput_bytes_per_s",
                      "cpu_src_s", "cpu_dst_s")


def multifd_table(scs):
    """One line per multifd scenario: the medians side by side, for reading."""
    rows = {}
    for name, r in scs.items():
        if "multifd" not in r:
            continue
        row = {}
        for label in ("ferry", "qemu"):
            med = r.get(label, {}).get("median")
            if med:
                row[label] = {k: med[k] for k in MULTIFD_TABLE_KEYS if k in med}
            elif label in r:
                row[label] = {"runs_ok": 0, "errors": r[label].get("errors")}
        for k in ("ferry_vs_loopback", "qemu_vs_loopback"):
            if k in r:
                row[k] = r[k]
        fq = r.get("ferry_over_qemu", {})
        if fq:
            row["ferry_over_qemu"] = {k: fq[k] for k in MULTIFD_TABLE_KEYS if k in fq}
        rows[name] = row
    return rows




def on_sigterm(signum, frame):
    raise KeyboardInterrupt()


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build-dir", default="build")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--accel", default="auto", choices=("kvm", "tcg", "both", "auto"),
                   help="kvm, tcg or both; auto: tcg, and kvm too where /dev/kvm works")
    p.add_argument("--scenarios", default=None,
                   help="comma-separated scenario names, groups (precopy, multifd, all, "
                        "tcg-default), globs (multifd-*-c4-none) or dash-bounded prefixes "
                        "(multifd-written, multifd-dirty-moderate-c2), the same for every "
                        "accelerator; default: precopy under kvm, tcg-default under tcg")
    p.add_argument("--tcg-scale", type=int, default=4,
                   help="under tcg, divide the test kernel's mem= and rate= by this "
                        "(1: as under kvm)")
    p.add_argument("--tcg-resume-timeout", type=float, default=60.0,
                   help="under tcg, the destination's time to a heartbeat and VERIFY OK")
    p.add_argument("--hb", type=int, default=20, help="guest heartbeat interval, ms")
    p.add_argument("--cap-bandwidth", type=int, default=100 * 1000 * 1000,
                   help="max-bandwidth (bytes/s) for dirty-max-capped")
    p.add_argument("--boot-timeout", type=float, default=120.0)
    p.add_argument("--mig-timeout", type=float, default=120.0)
    p.add_argument("--converge-timeout", type=float, default=90.0)
    p.add_argument("--multifd-timeout", type=float, default=60.0,
                   help="give up (migrate_cancel) on a multifd migration after this long")
    p.add_argument("--resume-timeout", type=float, default=30.0)
    p.add_argument("--loopback-gib", type=int, default=2)
    p.add_argument("--loopback-seconds", type=float, default=1.5,
                   help="per parallel-stream loopback measurement (multifd scenarios)")
    p.add_argument("--loopback-repeats", type=int, default=3)
    p.add_argument("--no-loopback", action="store_true")
    p.add_argument("--no-qemu", action="store_true")
    p.add_argument("--no-ferry", action="store_true")
    p.add_argument("--only", choices=("ferry", "qemu"),
                   help="run one VMM only (--no-qemu / --no-ferry)")
    p.add_argument("--all-runs", action="store_true", help="print every run, not only medians")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = p.parse_args()
    if args.only == "ferry":
        args.no_qemu = True
    elif args.only == "qemu":
        args.no_ferry = True

    def log(msg):
        if not args.quiet:
            print("migration-bench: " + msg, file=sys.stderr, flush=True)

    kernel = os.path.join(args.build_dir, "tests/guest/kernel/ferry-testkernel.elf")
    ferry = os.path.join(args.build_dir, "ferry-system-x86_64")
    if not os.path.exists(kernel) or not os.path.exists(ferry):
        sys.exit("migration-bench: build first (make): %s or %s missing" % (ferry, kernel))
    # Run copies: a rebuild during the benchmark must not mix binaries.
    snap = tempfile.mkdtemp(prefix="migbench-bin-")
    try:
        run_main(args, log, os.path.abspath(ferry), os.path.abspath(kernel), snap)
    finally:
        shutil.rmtree(snap, ignore_errors=True)


def run_main(args, log, ferry_path, kernel_path, snap):
    ferry = os.path.join(snap, "ferry-system-x86_64")
    kernel = os.path.join(snap, "ferry-testkernel.elf")
    shutil.copy2(ferry_path, ferry)
    shutil.copy2(kernel_path, kernel)

    accels = accels_for(args.accel)
    base = scenarios(args)
    all_sc = []                 # (accel, scenario) in running order
    for accel in accels:
        spec = args.scenarios or ("tcg-default" if accel == "tcg" else "precopy")
        try:
            chosen = select_scenarios(base, spec)
        except ValueError as e:
            sys.exit("migration-bench: no scenario matches %s; known: %s (groups: all, "
                     "precopy, multifd, tcg-default; globs and dash-bounded prefixes work "
                     "too)" % (e, ", ".join(s["name"] for s in base)))
        for sc in chosen:
            if accel == "tcg":
                sc = tcg_scale(sc, args)
            all_sc.append(dict(sc, accel=accel, key="%s/%s" % (accel, sc["name"])))

    result = {"benchmark": "migration",
              "params": {"runs": args.runs, "hb_ms": args.hb, "smp": 1,
                         "accels": accels,
                         "transport": "tcp:127.0.0.1", "max_bandwidth": UNCAPPED,
                         "downtime_limit_ms": 300, "cap_bandwidth": args.cap_bandwidth,
                         "scenarios": [s["key"] for s in all_sc],
                         "cpus": os.cpu_count(), "ferry_binary": ferry_path,
                         "ferry_binary_mtime": time.strftime(
                             "%Y-%m-%dT%H:%M:%S", time.localtime(os.path.getmtime(ferry_path))),
                         "git_head": git_head(args.build_dir)},
              "load_start": loadavg()}
    if "tcg" in accels:
        scaled = {s["name"]: {k: v for k, v in s["tcg_scaled"].items()
                              if k in ("mem", "rate")}
                  for s in all_sc if s["accel"] == "tcg"}
        result["params"]["tcg"] = {
            "ferry": "-accel tcg (its default CPU model)",
            "qemu": "-machine q35 -accel tcg -cpu max",
            "divisor": args.tcg_scale,
            "scaled": "test kernel mem= and rate= divided by the divisor (mem= not below "
                      "16); -m, timeouts for the migration itself unchanged",
            "migrate_after_verify_ok_s": "%g, for guests with rate= other than 1; their "
                                         "write rate before is over the settling 0.8 s"
                                         % AFTER_VERIFY_S,
            "resume_timeout_s": args.tcg_resume_timeout,
            "append_scaled": {k: v for k, v in scaled.items() if v}}

    # Loopback first: it forks, and no thread exists yet.
    streams_limit = None
    if not args.no_loopback:
        log("loopback throughput")
        result["loopback_tcp"] = loopback(args)
        counts = sorted({s["multifd"]["channels"] for s in all_sc if s.get("multifd")})
        if counts:
            log("loopback throughput, %s parallel streams" % "/".join(map(str, counts)))
            result["loopback_tcp_streams"] = loopback_streams(args, counts)
            streams_limit = result["loopback_tcp_streams"]["bytes_per_s"]
    log("fresh memory first-touch cost")
    result["fresh_memory"] = fresh_memory()

    sides = {accel: [] for accel in accels}
    qemu = shutil.which("qemu-system-x86_64")
    for accel in accels:
        if not args.no_ferry:
            # Ferry: its default CPU model under either accelerator.
            sides[accel].append(Side("ferry", ferry, ["-accel", accel], kernel, args))
        if qemu and not args.no_qemu:
            # QEMU's tcg has no "host" CPU; "max" is all it can emulate.
            cpu = "host,-arch-capabilities" if accel == "kvm" else "max"
            sides[accel].append(Side("qemu", qemu, ["-machine", "q35", "-accel", accel,
                                                    "-cpu", cpu], kernel, args))
    if qemu and not args.no_qemu:
        try:
            result["params"]["qemu_version"] = subprocess.run(
                [qemu, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
        except OSError:
            pass
    elif not args.no_qemu:
        result["qemu"] = "qemu-system-x86_64 not found: Ferry only"

    # Stop cleanly on ^C or SIGTERM: the finally blocks kill every VM.
    signal.signal(signal.SIGTERM, on_sigterm)
    result["scenarios"] = {}
    try:
        for sc in all_sc:
            log("scenario %s" % sc["key"])
            result["scenarios"][sc["key"]] = run_scenario(sides[sc["accel"]], sc, args, log,
                                                          streams_limit)
    except KeyboardInterrupt:
        result["interrupted"] = True
    if any(s.get("multifd") for s in all_sc):
        result["multifd_summary"] = multifd_table(result["scenarios"])
    result["load_end"] = loadavg()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
