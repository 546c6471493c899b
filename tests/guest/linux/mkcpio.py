#!/usr/bin/env python3
"""Write an uncompressed newc cpio archive from a gen_init_cpio-style list.

    mkcpio.py LIST OUTPUT

LIST has one entry a line (the format of the kernel's usr/gen_init_cpio):

    dir   NAME MODE UID GID
    file  NAME SOURCE MODE UID GID
    slink NAME TARGET MODE UID GID
    nod   NAME MODE UID GID c|b MAJOR MINOR

Blank lines and lines starting with '#' are ignored. Every entry gets mtime 0,
so the same inputs give the same archive byte for byte. Device nodes need no
privileges: they are only described in the archive.
"""
import os
import stat
import sys


def pad4(n):
    return (4 - n % 4) % 4


class Writer:
    def __init__(self, out):
        self.out = out
        self.ino = 721

    def entry(self, name, mode, uid, gid, data=b"", rdev=(0, 0), nlink=1):
        name_b = name.lstrip("/").encode() + b"\0"
        self.ino += 1
        fields = [
            self.ino, mode, uid, gid, nlink, 0, len(data),
            0, 0, rdev[0], rdev[1], len(name_b), 0,
        ]
        hdr = b"070701" + b"".join(b"%08X" % f for f in fields)
        self.out.write(hdr + name_b + b"\0" * pad4(len(hdr) + len(name_b)))
        self.out.write(data + b"\0" * pad4(len(data)))

    def trailer(self):
        self.entry("TRAILER!!!", 0, 0, 0)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: mkcpio.py LIST OUTPUT")
    with open(sys.argv[1]) as f:
        lines = [l.split() for l in f if l.strip() and not l.lstrip().startswith("#")]
    tmp = sys.argv[2] + ".tmp"
    with open(tmp, "wb") as out:
        w = Writer(out)
        for ln, f in enumerate(lines, 1):
            kind = f[0]
            if kind == "dir" and len(f) == 5:
                w.entry(f[1], stat.S_IFDIR | int(f[2], 8), int(f[3]), int(f[4]), nlink=2)
            elif kind == "file" and len(f) == 6:
                with open(f[2], "rb") as src:
                    data = src.read()
                w.entry(f[1], stat.S_IFREG | int(f[3], 8), int(f[4]), int(f[5]), data)
            elif kind == "slink" and len(f) == 6:
                w.entry(f[1], stat.S_IFLNK | int(f[3], 8), int(f[4]), int(f[5]),
                        f[2].encode())
            elif kind == "nod" and len(f) == 8 and f[5] in ("c", "b"):
                kind_bits = stat.S_IFCHR if f[5] == "c" else stat.S_IFBLK
                w.entry(f[1], kind_bits | int(f[2], 8), int(f[3]), int(f[4]),
                        rdev=(int(f[6]), int(f[7])))
            else:
                sys.exit("mkcpio.py: %s: bad entry %d: %s" % (sys.argv[1], ln, " ".join(f)))
        w.trailer()
    os.replace(tmp, sys.argv[2])


if __name__ == "__main__":
    main()
