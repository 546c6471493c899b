#!/usr/bin/env python3
"""Dump a Ferry migration stream or snapshot file section by section.

  scripts/analyze-migration.py FILE [--ram-records] [--json] [--offset N]

FILE is what a migration channel carries, e.g. written by QMP
`migrate file:PATH` (a snapshot; with `file:PATH,offset=N`, pass --offset N),
or `-` for standard input. The format is docs/devel/migration-stream.md
(header, configuration, sections, EOF) with RAM records as in
docs/devel/ram-migration.md.

Printed: the header; the configuration (machine type, page size, vCPUs,
RAM blocks); every section (type, section id, id string, instance,
version, payload offset and size, footer check) with, for RAM, the counts
of PAGE and ZERO records per block and the EOS markers (each record with
--ram-records); the vmstate payload size of every device; EOF; warnings
about what a source always sends but the stream lacks (no RAM block list,
a RAM section without its END), which a destination does not refuse.
--json prints the same as one JSON object.

Device payloads carry no length on the wire: their end is found as the
first footer (0x7e + section id) that is followed by a well-formed section
header or by the final EOF. RAM payloads are decoded record by record.

A malformed stream gives "analyze-migration: FILE: offset 0xN: what" on
stderr and exit status 1. Python 3 standard library only.
"""
import argparse
import json
import mmap
import os
import sys

MAGIC = 0x46455252            # "FERR"
FORMAT_VERSION = 1

SEC_EOF = 0x00
SEC_START = 0x01
SEC_PART = 0x02
SEC_END = 0x03
SEC_FULL = 0x04
SEC_CONFIG = 0x07
SEC_COMMAND = 0x08
FOOTER = 0x7E
SECTION_NAMES = {SEC_START: "START", SEC_PART: "PART", SEC_END: "END",
                 SEC_FULL: "FULL", SEC_COMMAND: "COMMAND", SEC_EOF: "EOF"}

MAX_SECTIONS = 4096           # section ids the loader accepts (savevm.c)
CONFIG_MAX = 64 * 1024

PAGE_SIZE = 4096
RAM_ZERO = 0x002
RAM_MEM_SIZE = 0x004
RAM_PAGE = 0x008
RAM_EOS = 0x010
RAM_CONTINUE = 0x020
RAM_MULTIFD_FLUSH = 0x200
RAM_FLAGS_KNOWN = RAM_ZERO | RAM_MEM_SIZE | RAM_PAGE | RAM_EOS | RAM_CONTINUE | RAM_MULTIFD_FLUSH
MULTIFD_COMPRESSION = {0: "none", 1: "zlib", 2: "zstd"}
RAM_FLAGS_DEFINED = 0x3FF
RAM_FLAGS_MASK = PAGE_SIZE - 1

LIVE_PARTICIPANTS = ("ram",)


class StreamError(Exception):
    def __init__(self, offset, message):
        super().__init__(message)
        self.offset = offset
        self.message = message


def quote(raw):
    """A byte string from the stream, printable."""
    out = []
    for b in raw:
        if 0x20 <= b < 0x7F and b not in (0x27, 0x5C):
            out.append(chr(b))
        else:
            out.append("\\x%02x" % b)
    return "".join(out)


def size_str(n):
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return "%d %s" % (n >> shift, unit)
    return "%d bytes" % n


class Reader:
    """Big-endian reads from buf[start:end]; offsets are offsets in the file."""

    def __init__(self, buf, start, end):
        self.buf = buf
        self.pos = start
        self.end = end

    def off(self):
        return self.pos

    def need(self, n, what):
        if self.pos + n > self.end:
            raise StreamError(self.off(), "%s: unexpected end of stream (%d bytes needed, "
                              "%d left)" % (what, n, self.end - self.pos))

    def uint(self, n, what):
        self.need(n, what)
        v = int.from_bytes(self.buf[self.pos:self.pos + n], "big")
        self.pos += n
        return v

    def u8(self, what):
        return self.uint(1, what)

    def u16(self, what):
        return self.uint(2, what)

    def u32(self, what):
        return self.uint(4, what)

    def u64(self, what):
        return self.uint(8, what)

    def raw(self, n, what):
        self.need(n, what)
        v = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return v

    def skip(self, n, what):
        self.need(n, what)
        self.pos += n

    def counted(self, what):
        n = self.u8(what + " length")
        return self.raw(n, what)


class Analyzer:
    def __init__(self, buf, start, end, want_records):
        self.r = Reader(buf, start, end)
        self.want_records = want_records
        self.result = {
            "size": end - start,
            "header": None,
            "configuration": None,
            "sections": [],
            "ram": {"blocks": {}, "eos": 0, "payload_bytes": 0, "records": 0},
            "devices": [],
            "eof_offset": None,
            "trailing_bytes": 0,
            "warnings": [],
        }
        self.config_blocks = {}       # block id (bytes) -> used length
        self.live = {}                # section id -> idstr of a started live section
        self.ended = set()            # live section ids that got their END
        self.ram_block_list = None    # from the START payload: block id -> size
        self.touched = {}             # block name -> bitmap of the pages records named

    # ---------------------------------------------------------- header

    def parse_header(self):
        r = self.r
        at = r.off()
        magic = r.u32("stream header")
        if magic != MAGIC:
            raise StreamError(at, "not a Ferry migration stream (magic 0x%08x, expected "
                              "0x%08x \"FERR\")" % (magic, MAGIC))
        version = r.u32("stream header")
        if version != FORMAT_VERSION:
            raise StreamError(at + 4, "stream format version %d, this tool reads version %d"
                              % (version, FORMAT_VERSION))
        self.result["header"] = {"offset": at, "magic": "FERR", "version": version}

    def parse_configuration(self):
        r = self.r
        at = r.off()
        t = r.u8("configuration section")
        if t != SEC_CONFIG:
            raise StreamError(at, "the stream lacks its configuration section (type 0x%02x, "
                              "expected 0x07)" % t)
        length = r.u32("configuration section length")
        if length > CONFIG_MAX:
            raise StreamError(at + 1, "configuration section of %d bytes, at most %d"
                              % (length, CONFIG_MAX))
        r.need(length, "configuration section")
        c = Reader(r.buf, r.pos, r.pos + length)
        r.pos += length
        try:
            machine = c.counted("machine type")
            page_size = c.u32("target page size")
            vcpus = c.u32("vCPU count")
            nblocks = c.u32("RAM block count")
            blocks = []
            for _ in range(nblocks):
                bid = c.counted("RAM block id")
                used = c.u64("RAM block size")
                blocks.append((bid, used))
                self.config_blocks[bid] = used
            # multifd (absent in older streams: off)
            multifd = None
            if c.pos < c.end and c.u8("multifd flag") == 1:
                uuid = c.raw(16, "multifd uuid")
                channels = c.u32("multifd channels")
                comp = c.u32("multifd compression")
                multifd = {"uuid": uuid.hex(), "channels": channels,
                           "compression": MULTIFD_COMPRESSION.get(comp, "unknown %d" % comp)}
            # The source's accelerator (absent in older streams: kvm), then
            # what its guest saw of the CPU (absent in older streams, qtest).
            accel = c.counted("accelerator") if c.pos < c.end else None
            guest_cpu = None
            if c.pos < c.end and c.u8("guest CPU flag") == 1:
                words = [c.u32("CPUID word") for _ in range(8)]
                tsc_khz = c.u32("TSC kHz")
                kvmclock = c.u8("kvmclock")
                guest_cpu = {"cpuid": ["0x%08x" % w for w in words], "tsc_khz": tsc_khz,
                             "kvmclock": bool(kvmclock)}
        except StreamError as e:
            raise StreamError(e.offset, "malformed configuration section: " + e.message)
        if page_size != PAGE_SIZE:
            raise StreamError(at + 5, "target page size %d, this tool reads %d"
                              % (page_size, PAGE_SIZE))
        self.result["configuration"] = {
            "offset": at,
            "length": length,
            "machine": quote(machine),
            "page_size": page_size,
            "vcpus": vcpus,
            "ram_blocks": [{"id": quote(b), "size": s} for b, s in blocks],
            "multifd": multifd,
            "accelerator": quote(accel) if accel is not None else None,
            "guest_cpu": guest_cpu,
            "unused_bytes": c.end - c.pos,
        }

    # ------------------------------------------------------------- RAM

    def ram_block_stats(self, bid):
        blocks = self.result["ram"]["blocks"]
        name = quote(bid)
        if name not in blocks:
            pages = self.ram_block_list[bid] // PAGE_SIZE
            blocks[name] = {"page": 0, "zero": 0, "page_bytes": 0, "pages_touched": 0}
            self.touched[name] = bytearray((pages + 7) // 8)
        return blocks[name]

    def parse_ram_payload(self, sec):
        r = self.r
        start = r.pos
        stats = {"page": 0, "zero": 0, "eos": 0, "blocks": {}}
        records = [] if self.want_records else None
        at = r.off()
        header = r.u64("RAM record header")
        if header & RAM_MEM_SIZE:
            if self.ram_block_list is not None:
                raise StreamError(at, "a second RAM block list (record 0x%016x)" % header)
            self.parse_ram_block_list(header, at, sec)
            self.result["ram"]["payload_bytes"] += r.pos - start
            sec["payload_size"] = r.pos - start
            return
        if self.ram_block_list is None:
            raise StreamError(at, "RAM records before the block list (record 0x%016x)" % header)
        block = None
        while True:
            flags = header & RAM_FLAGS_MASK
            offset = header & ~RAM_FLAGS_MASK
            if flags & ~RAM_FLAGS_DEFINED:
                raise StreamError(at, "RAM record 0x%016x: page offset 0x%x is not "
                                  "page-aligned" % (header, header & ~RAM_FLAGS_DEFINED))
            if flags & ~RAM_FLAGS_KNOWN:
                raise StreamError(at, "RAM record 0x%016x: unknown flags 0x%x"
                                  % (header, flags & ~RAM_FLAGS_KNOWN))
            if header == RAM_EOS:
                stats["eos"] += 1
                self.result["ram"]["eos"] += 1
                if records is not None:
                    records.append({"offset": at, "kind": "EOS"})
                break
            if header == RAM_MULTIFD_FLUSH:
                # A multifd sync point: the pages themselves went over the channels.
                self.result["ram"].setdefault("multifd_flushes", 0)
                self.result["ram"]["multifd_flushes"] += 1
                if records is not None:
                    records.append({"offset": at, "kind": "MULTIFD_FLUSH"})
                block = None
                at = r.off()
                header = r.u64("RAM record header")
                continue
            kind = flags & ~RAM_CONTINUE
            if kind not in (RAM_ZERO, RAM_PAGE):
                raise StreamError(at, "RAM record 0x%016x: invalid flag combination 0x%x"
                                  % (header, flags))
            cont = bool(flags & RAM_CONTINUE)
            if cont:
                if block is None:
                    raise StreamError(at, "RAM record 0x%016x continues a block, but none "
                                      "was named in this section" % header)
            else:
                block = r.counted("RAM block id")
                if block not in self.ram_block_list:
                    raise StreamError(at + 8, "RAM page offset 0x%x in block '%s', which is "
                                      "not in the block list" % (offset, quote(block)))
            used = self.ram_block_list[block]
            if offset >= used:
                raise StreamError(at, "RAM page offset 0x%x outside block '%s' (size 0x%x)"
                                  % (offset, quote(block), used))
            if kind == RAM_ZERO:
                fill = r.u8("zero page fill byte")
                if fill != 0:
                    raise StreamError(r.off() - 1, "zero page at offset 0x%x of block '%s' "
                                      "has fill byte 0x%02x (must be 0)"
                                      % (offset, quote(block), fill))
                name = "ZERO"
            else:
                r.skip(PAGE_SIZE, "page offset 0x%x of block '%s'" % (offset, quote(block)))
                name = "PAGE"
            key = "zero" if kind == RAM_ZERO else "page"
            stats[key] += 1
            per = stats["blocks"].setdefault(quote(block), {"page": 0, "zero": 0})
            per[key] += 1
            total = self.ram_block_stats(block)
            total[key] += 1
            if kind == RAM_PAGE:
                total["page_bytes"] += PAGE_SIZE
            bitmap = self.touched[quote(block)]
            page = offset // PAGE_SIZE
            if not bitmap[page >> 3] & (1 << (page & 7)):
                bitmap[page >> 3] |= 1 << (page & 7)
                total["pages_touched"] += 1
            self.result["ram"]["records"] += 1
            if records is not None:
                records.append({"offset": at, "kind": name, "continue": cont,
                                "block": quote(block), "page_offset": offset})
            at = r.off()
            header = r.u64("RAM record header")
        self.result["ram"]["payload_bytes"] += r.pos - start
        sec["payload_size"] = r.pos - start
        sec["ram"] = stats
        if records is not None:
            sec["ram_records"] = records

    def parse_ram_block_list(self, header, at, sec):
        r = self.r
        if header & RAM_FLAGS_MASK != RAM_MEM_SIZE:
            raise StreamError(at, "RAM block list header 0x%016x has other flags than "
                              "MEM_SIZE" % header)
        total = header & ~RAM_FLAGS_MASK
        if total == 0:
            raise StreamError(at, "empty RAM block list (total size 0)")
        remaining = total
        blocks = {}
        listed = []
        while remaining > 0:
            bat = r.off()
            bid = r.counted("RAM block id")
            used = r.u64("RAM block size")
            if bid in blocks:
                raise StreamError(bat, "RAM block '%s' is listed twice" % quote(bid))
            if used == 0 or used % PAGE_SIZE:
                raise StreamError(bat, "RAM block '%s' has size 0x%x (not a non-zero multiple "
                                  "of the page size)" % (quote(bid), used))
            if used > remaining:
                raise StreamError(bat, "RAM block '%s' goes past the total RAM size 0x%x of "
                                  "the block list" % (quote(bid), total))
            if self.config_blocks and self.config_blocks.get(bid) != used:
                raise StreamError(bat, "RAM block '%s' (size 0x%x) does not match the "
                                  "configuration section" % (quote(bid), used))
            blocks[bid] = used
            listed.append({"id": quote(bid), "size": used})
            remaining -= used
        eat = r.off()
        eos = r.u64("end of the RAM block list")
        if eos != RAM_EOS:
            raise StreamError(eat, "RAM block list not followed by EOS (0x%016x)" % eos)
        self.result["ram"]["eos"] += 1
        self.ram_block_list = blocks
        sec["ram_block_list"] = {"total": total, "blocks": listed}

    # ------------------------------------------------------- sections

    def plausible_next(self, pos):
        """What a section footer ending at @pos may be followed by: 'strong', 'weak' or None."""
        buf, end = self.r.buf, self.r.end
        if pos >= end:
            return None
        t = buf[pos]
        if t == SEC_EOF:
            return "strong" if pos == end - 1 else "weak"
        if t in (SEC_START, SEC_FULL):
            if pos + 6 > end:
                return None
            sid = int.from_bytes(buf[pos + 1:pos + 5], "big")
            n = buf[pos + 5]
            if sid >= MAX_SECTIONS or n == 0 or pos + 6 + n + 8 > end:
                return None
            name = buf[pos + 6:pos + 6 + n]
            if any(b < 0x21 or b > 0x7E for b in name):
                return None
            return "strong"
        if t in (SEC_PART, SEC_END):
            if pos + 5 > end:
                return None
            sid = int.from_bytes(buf[pos + 1:pos + 5], "big")
            return "strong" if sid in self.live else None
        return None

    def find_footer(self, sec, start):
        """The stream position of the footer closing the section whose payload starts at @start."""
        buf, end = self.r.buf, self.r.end
        pattern = bytes([FOOTER]) + sec["section_id"].to_bytes(4, "big")
        weak = None
        pos = buf.find(pattern, start, end)
        while pos >= 0:
            kind = self.plausible_next(pos + 5)
            if kind == "strong":
                return pos
            if kind == "weak" and weak is None:
                weak = pos
            pos = buf.find(pattern, pos + 1, end)
        if weak is not None:
            return weak
        raise StreamError(start, "section '%s' (id %d): no footer (7e %s) "
                          "followed by a section header or EOF"
                          % (sec.get("idstr", "?"), sec["section_id"],
                             " ".join("%02x" % b for b in pattern[1:])))

    def check_footer(self, sec):
        r = self.r
        at = r.off()
        mark = r.u8("section footer")
        sid = r.u32("section footer")
        if mark != FOOTER or sid != sec["section_id"]:
            raise StreamError(at, "section '%s' (id %d): bad footer (mark 0x%02x, id %d, "
                              "expected 0x7e and id %d)" % (sec.get("idstr", "?"),
                                                            sec["section_id"], mark, sid,
                                                            sec["section_id"]))
        sec["footer"] = "ok"

    def parse_device_payload(self, sec):
        r = self.r
        start = r.pos
        footer = self.find_footer(sec, start)
        sec["payload_size"] = footer - start
        if sec.get("idstr") == "globalstate":
            raw = bytes(r.buf[start:footer])
            name, _, _ = raw.partition(b"\0")
            sec["run_state"] = quote(name)
        r.pos = footer
        self.check_footer(sec)
        self.result["devices"].append({"idstr": sec["idstr"], "instance": sec["instance"],
                                       "version": sec["version"], "size": sec["payload_size"]})

    def check_complete(self):
        """What a source always sends but the stream lacks (a destination may not notice)."""
        warn = self.result["warnings"]
        if self.config_blocks and self.ram_block_list is None:
            warn.append("the configuration lists %d RAM block(s), but no RAM block list "
                        "(ram START section) arrived: the destination's RAM stays zero"
                        % len(self.config_blocks))
        for sid, idstr in sorted(self.live.items()):
            if sid not in self.ended:
                warn.append("section '%s' (id %d) started but never ended (no END section): "
                            "the source's final pages are missing" % (idstr, sid))

    def parse_sections(self):
        r = self.r
        while True:
            at = r.off()
            t = r.u8("section type")
            if t == SEC_EOF:
                self.result["eof_offset"] = at
                self.result["trailing_bytes"] = r.end - r.pos
                self.check_complete()
                return
            sec = {"offset": at, "type": SECTION_NAMES.get(t, "0x%02x" % t)}
            if t in (SEC_START, SEC_FULL):
                sid = r.u32("section id")
                idstr = r.counted("section id string")
                sec.update(section_id=sid, idstr=quote(idstr),
                           instance=r.u32("instance id"), version=r.u32("version"))
                if sid >= MAX_SECTIONS:
                    raise StreamError(at + 1, "section '%s': id %d out of range (at most %d)"
                                      % (quote(idstr), sid, MAX_SECTIONS - 1))
                live = quote(idstr) in LIVE_PARTICIPANTS
                if t == SEC_START and live:
                    self.live[sid] = sec["idstr"]
                    self.ended.discard(sid)
                elif t == SEC_FULL and live:
                    raise StreamError(at, "live participant '%s' in a FULL section"
                                      % sec["idstr"])
                else:
                    self.live.pop(sid, None)
            elif t in (SEC_PART, SEC_END):
                sid = r.u32("section id")
                if sid not in self.live:
                    raise StreamError(at + 1, "section id %d continues a section that never "
                                      "started" % sid)
                sec.update(section_id=sid, idstr=self.live[sid])
                if t == SEC_END:
                    self.ended.add(sid)
            elif t == SEC_COMMAND:
                cmd = r.u16("command")
                length = r.u16("command length")
                r.skip(length, "command data")
                sec.update(command=cmd, length=length)
                self.result["sections"].append(sec)
                continue
            else:
                raise StreamError(at, "unknown section type 0x%02x" % t)
            sec["payload_offset"] = r.off()
            self.result["sections"].append(sec)
            if sec["idstr"] in LIVE_PARTICIPANTS and t != SEC_FULL:
                self.parse_ram_payload(sec)
                self.check_footer(sec)
            else:
                self.parse_device_payload(sec)

    def run(self):
        self.parse_header()
        self.parse_configuration()
        self.parse_sections()
        return self.result


# ------------------------------------------------------------- output

def print_text(name, res, out):
    w = out.write
    w("%s: %d bytes\n" % (name, res["size"]))
    h = res["header"]
    if h:
        w("0x%08x  header         magic FERR, format version %d\n" % (h["offset"], h["version"]))
    c = res["configuration"]
    if c:
        w("0x%08x  configuration  %d bytes: machine '%s', page size %d, %d vCPU%s, "
          "%d RAM block%s\n" % (c["offset"], c["length"], c["machine"], c["page_size"],
                                c["vcpus"], "" if c["vcpus"] == 1 else "s",
                                len(c["ram_blocks"]), "" if len(c["ram_blocks"]) == 1 else "s"))
        for b in c["ram_blocks"]:
            w("%26s RAM block '%s': %s (0x%x)\n" % ("", b["id"], size_str(b["size"]), b["size"]))
        if c.get("multifd"):
            m = c["multifd"]
            w("%26s multifd: %d channels, compression %s, migration %s (pages travel on "
              "the channels, not in this stream)\n"
              % ("", m["channels"], m["compression"], m["uuid"]))
        if c.get("accelerator"):
            w("%26s accelerator '%s'\n" % ("", c["accelerator"]))
        if c.get("guest_cpu"):
            g = c["guest_cpu"]
            w("%26s guest CPU: CPUID %s, TSC %d kHz, kvmclock %s\n"
              % ("", " ".join(g["cpuid"]), g["tsc_khz"], "offered" if g["kvmclock"] else "no"))
        if c["unused_bytes"]:
            w("%26s %d unused bytes at the end\n" % ("", c["unused_bytes"]))
    for s in res["sections"]:
        if s["type"] == "COMMAND":
            w("0x%08x  COMMAND        command 0x%04x, %d bytes of data (reserved for "
              "postcopy: this Ferry's loader refuses it)\n"
              % (s["offset"], s["command"], s["length"]))
            continue
        if s["type"] in ("START", "FULL"):
            what = "'%s' instance %d version %d" % (s["idstr"], s["instance"], s["version"])
        else:
            what = "'%s'" % s["idstr"]
        line = "0x%08x  %-5s id %-4d %s: payload %d bytes at 0x%x, footer %s" % (
            s["offset"], s["type"], s["section_id"], what, s.get("payload_size", 0),
            s["payload_offset"], s.get("footer", "?"))
        w(line + "\n")
        if "ram_block_list" in s:
            bl = s["ram_block_list"]
            w("%26s RAM block list, total %s: %s\n" % (
                "", size_str(bl["total"]),
                ", ".join("'%s' %s" % (b["id"], size_str(b["size"])) for b in bl["blocks"])))
        if "ram" in s:
            st = s["ram"]
            parts = ["%s: %d PAGE, %d ZERO" % (b, v["page"], v["zero"])
                     for b, v in st["blocks"].items()]
            w("%26s RAM records: %s%sEOS\n" % ("", "; ".join(parts), "; " if parts else ""))
        for rec in s.get("ram_records", []):
            if rec["kind"] in ("EOS", "MULTIFD_FLUSH"):
                w("%14s0x%08x  %s\n" % ("", rec["offset"], rec["kind"]))
            else:
                w("%14s0x%08x  %-4s %s'%s' offset 0x%x\n" % (
                    "", rec["offset"], rec["kind"], "(continue) " if rec["continue"] else "",
                    rec["block"], rec["page_offset"]))
        if "run_state" in s:
            w("%26s run state '%s'\n" % ("", s["run_state"]))
    if res["eof_offset"] is not None:
        w("0x%08x  EOF\n" % res["eof_offset"])
        if res["trailing_bytes"]:
            w("%26s %d bytes after EOF (not read by a destination)\n"
              % ("", res["trailing_bytes"]))

    for msg in res["warnings"]:
        w("warning: %s\n" % msg)

    w("\nSummary\n")
    counts = {}
    for s in res["sections"]:
        counts[s["type"]] = counts.get(s["type"], 0) + 1
    w("  sections: %d (%s)\n" % (len(res["sections"]),
                                 ", ".join("%s %d" % kv for kv in counts.items())))
    ram = res["ram"]
    w("  RAM: %d records, %d EOS, %d bytes of RAM payload\n"
      % (ram["records"], ram["eos"], ram["payload_bytes"]))
    for b, v in ram["blocks"].items():
        w("    block '%s': %d PAGE (%d bytes of data), %d ZERO, %d distinct pages\n"
          % (b, v["page"], v["page_bytes"], v["zero"], v["pages_touched"]))
    if res["devices"]:
        w("  device state (vmstate payload bytes):\n")
        for d in res["devices"]:
            w("    %-14s instance %-3d version %-3d %6d\n"
              % (d["idstr"], d["instance"], d["version"], d["size"]))


def main():
    ap = argparse.ArgumentParser(
        description="Dump a Ferry migration stream or snapshot file section by section "
                    "(docs/devel/migration-stream.md).")
    ap.add_argument("file", help="the stream (e.g. written by migrate file:PATH), or - for stdin")
    ap.add_argument("--ram-records", action="store_true", help="list every RAM record")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--offset", type=lambda v: int(v, 0), default=0,
                    help="where the stream starts in FILE (migrate file:PATH,offset=N)")
    args = ap.parse_args()

    name = args.file
    buf = None
    try:
        if name == "-":
            buf = sys.stdin.buffer.read()
        else:
            with open(name, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size > 0:
                    try:
                        buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                    except (OSError, ValueError):
                        buf = f.read()
                else:
                    buf = f.read()
    except OSError as e:
        sys.stderr.write("analyze-migration: %s: %s\n" % (name, e.strerror or e))
        return 1
    if args.offset < 0 or args.offset > len(buf):
        sys.stderr.write("analyze-migration: %s: offset %d is past the end (%d bytes)\n"
                         % (name, args.offset, len(buf)))
        return 1

    an = Analyzer(buf, args.offset, len(buf), args.ram_records)
    try:
        res = an.run()
    except StreamError as e:
        if not args.json:
            # What was understood before the error, for context.
            print_text(name, an.result, sys.stdout)
            sys.stdout.flush()
        sys.stderr.write("analyze-migration: %s: offset 0x%x (%d): %s\n"
                         % (name, e.offset, e.offset, e.message))
        return 1
    if args.json:
        json.dump(res, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_text(name, res, sys.stdout)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        sys.exit(1)
