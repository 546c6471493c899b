#!/usr/bin/env python3
"""Build a libFuzzer binary with clang, outside meson's (gcc) toolchain.

Used by tests/fuzz/meson.build as a custom_target command:

  clang-build.py --cc CLANG --out OUT --depfile DEP --objdir DIR
                 [--cflag=FLAG]... [--ldflag=FLAG]... SOURCE...

Each source is compiled to DIR (in parallel, skipped when its object is
newer than the source, every header it read and the flags), then all are
linked into OUT. DEP lists every file read, so ninja rebuilds OUT when a
header changes.
"""
import argparse
import concurrent.futures
import hashlib
import os
import subprocess
import sys


def parse_depfile(path):
    """The prerequisites of a make-style depfile written by clang -MD."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None
    text = text.replace("\\\n", " ")
    _, _, deps = text.partition(": ")
    out, cur, i = [], "", 0
    while i < len(deps):
        c = deps[i]
        if c == "\\" and i + 1 < len(deps) and deps[i + 1] == " ":
            cur += " "
            i += 2
            continue
        if c.isspace():
            if cur:
                out.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    if cur:
        out.append(cur)
    return out


def up_to_date(obj, dep, stamp, flags_hash):
    try:
        with open(stamp, encoding="utf-8") as f:
            if f.read().strip() != flags_hash:
                return False
        obj_time = os.stat(obj).st_mtime_ns
    except OSError:
        return False
    deps = parse_depfile(dep)
    if not deps:
        return False
    for d in deps:
        try:
            if os.stat(d).st_mtime_ns > obj_time:
                return False
        except OSError:
            return False
    return True


def compile_one(cc, cflags, src, objdir, flags_hash):
    base = hashlib.sha1(os.path.abspath(src).encode()).hexdigest()[:10]
    name = os.path.splitext(os.path.basename(src))[0] + "-" + base
    obj = os.path.join(objdir, name + ".o")
    dep = os.path.join(objdir, name + ".d")
    stamp = os.path.join(objdir, name + ".flags")
    if not up_to_date(obj, dep, stamp, flags_hash):
        cmd = [cc] + cflags + ["-MD", "-MF", dep, "-c", src, "-o", obj]
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, check=False)
        if r.returncode != 0:
            return obj, dep, " ".join(cmd) + "\n" + r.stdout
        if r.stdout:
            sys.stderr.write(r.stdout)
        with open(stamp, "w", encoding="utf-8") as f:
            f.write(flags_hash + "\n")
    return obj, dep, None


def escape(path):
    return path.replace(" ", "\\ ")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cc", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--depfile", required=True)
    ap.add_argument("--objdir", required=True)
    ap.add_argument("--cflag", action="append", default=[])
    ap.add_argument("--ldflag", action="append", default=[])
    ap.add_argument("sources", nargs="+")
    a = ap.parse_args()

    os.makedirs(a.objdir, exist_ok=True)
    flags_hash = hashlib.sha1("\0".join([a.cc] + a.cflag).encode()).hexdigest()
    jobs = max(1, min(len(a.sources), os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as ex:
        results = list(ex.map(lambda s: compile_one(a.cc, a.cflag, s, a.objdir, flags_hash),
                              a.sources))
    failed = [err for _, _, err in results if err]
    if failed:
        for err in failed:
            sys.stderr.write(err)
        return 1

    objs = [obj for obj, _, _ in results]
    link = [a.cc] + a.cflag + objs + ["-o", a.out] + a.ldflag
    r = subprocess.run(link, check=False)
    if r.returncode != 0:
        sys.stderr.write("link failed: " + " ".join(link) + "\n")
        return 1

    deps = []
    seen = set()
    for _, dep, _ in results:
        for d in parse_depfile(dep) or []:
            if d not in seen:
                seen.add(d)
                deps.append(d)
    with open(a.depfile, "w", encoding="utf-8") as f:
        f.write(escape(a.out) + ": " + " \\\n  ".join(escape(d) for d in deps) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
