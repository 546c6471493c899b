#!/bin/sh
# scripts/analyze-migration.py on the fuzz seed streams (tests/fuzz/corpus/loadvm,
# saved by the real migration code): every section is named and its footer
# checked, RAM records are counted, --json parses, --offset and stdin work,
# and damaged streams fail with the offset of the damage.
#   test-analyze-migration.sh ANALYZER CORPUS_DIR
set -eu
analyzer=$1
corpus=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

fail() {
    echo "FAIL: $*" >&2
    fails=$((fails + 1))
}

# Output of a successful run: exit 0, and every pattern after the file appears.
expect_ok() {
    file=$1
    shift
    if ! python3 "$analyzer" "$file" >"$tmp/out" 2>"$tmp/err"; then
        fail "$file: exit status $?: $(cat "$tmp/err")"
        return
    fi
    for pat in "$@"; do
        grep -q -- "$pat" "$tmp/out" || fail "$file: no '$pat' in the output"
    done
    if grep -q "footer" "$tmp/out" && grep "footer" "$tmp/out" | grep -vq "footer ok"; then
        fail "$file: a footer is not ok"
    fi
}

# A damaged stream: exit 1 and "offset 0x..." plus the pattern on stderr.
expect_error() {
    file=$1 pat=$2
    shift 2
    set +e
    python3 "$analyzer" "$@" "$file" >/dev/null 2>"$tmp/err"
    rc=$?
    set -e
    [ "$rc" -eq 1 ] || fail "$file: exit status $rc, expected 1"
    grep -q "offset 0x" "$tmp/err" || fail "$file: no offset in: $(cat "$tmp/err")"
    grep -q -- "$pat" "$tmp/err" || fail "$file: no '$pat' in: $(cat "$tmp/err")"
}

for f in "$corpus"/*; do
    # The vCPU: the neutral form and KVM's part; KVM's one section in older streams.
    case $f in
    *-cpu-v1) vcpu="'cpu' instance 0" vcpu2="'cpu' instance 0" ;;
    *) vcpu="'kvm-cpu' instance 0" vcpu2="'x86-cpu' instance 0 version 2" ;;
    esac
    expect_ok "$f" "magic FERR, format version 1" "machine 'ferry', page size 4096, 1 vCPU" \
        "RAM block 'pc.ram': 8 MiB" "START id 0    'ram' instance 0 version 1" \
        "END   id 0    'ram'" "'globalstate' instance 0" "'virtio-blk' instance 0" \
        "'virtio-net' instance 1" "'serial' instance 0" "'pc-pm' instance 0" \
        "$vcpu" "$vcpu2" "  EOF" "device state (vmstate payload bytes)"
done

f=$corpus/ram-pages
expect_ok "$f" "run state 'running'" "PART  id 0    'ram'" "block 'pc.ram': 8 PAGE (32768 bytes of data), 2 ZERO"
expect_ok "$corpus/paused" "run state 'paused'" "accelerator 'kvm'"

python3 "$analyzer" --ram-records "$f" >"$tmp/records" || fail "--ram-records failed"
grep -q "PAGE (continue) 'pc.ram' offset 0x3000" "$tmp/records" || fail "--ram-records: no record list"
grep -q "ZERO (continue) 'pc.ram' offset 0x6000" "$tmp/records" || fail "--ram-records: no ZERO record"

python3 "$analyzer" --json --ram-records "$f" >"$tmp/json" || fail "--json failed"
python3 - "$tmp/json" <<'EOF' || fail "--json output is not what was expected"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["header"]["version"] == 1
assert r["configuration"]["machine"] == "ferry"
assert r["configuration"]["ram_blocks"] == [{"id": "pc.ram", "size": 8 << 20}]
ids = [s["idstr"] for s in r["sections"] if s["type"] == "FULL"]
assert ids == ["globalstate", "virtio-blk", "virtio-net", "serial", "pc-pm", "kvm-cpu",
               "x86-cpu"], ids
assert all(s["footer"] == "ok" for s in r["sections"])
assert r["ram"]["blocks"]["pc.ram"]["page"] == 8
assert r["ram"]["eos"] == 5
assert any(rec["kind"] == "PAGE" for s in r["sections"] for rec in s.get("ram_records", []))
assert {d["idstr"]: d["size"] for d in r["devices"]}["pc-pm"] == 7
assert r["eof_offset"] == r["size"] - 1 and r["trailing_bytes"] == 0
assert r["warnings"] == [], r["warnings"]
EOF

# Standard input, and a stream after 16 bytes of something else (file:PATH,offset=16).
python3 "$analyzer" - <"$f" | grep -q "'x86-cpu' instance 0" || fail "reading stdin"
{ printf '0123456789abcdef'; cat "$f"; } >"$tmp/offset"
python3 "$analyzer" --offset 16 "$tmp/offset" | grep -q "^0x00000010  header" || fail "--offset 16"

# Damage: truncated, not a stream, a bad footer, a bad RAM record, junk after a section.
head -c 5000 "$f" >"$tmp/truncated"
expect_error "$tmp/truncated" "unexpected end of stream"
printf 'QEMU' | cat - "$f" >"$tmp/magic"
expect_error "$tmp/magic" "not a Ferry migration stream"
python3 - "$f" "$tmp/footer" "$tmp/record" "$tmp/section" <<'EOF'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
# The START section's footer: after 'ram' START header and the block list (31 bytes).
footer = 0x44 + 31
assert data[footer] == 0x7e, hex(data[footer])
bad = bytearray(data); bad[footer + 4] = 9
open(sys.argv[2], "wb").write(bad)
# The first record of the first PART section: an unknown flag.
bad = bytearray(data); bad[0x6d + 7] |= 0x40
open(sys.argv[3], "wb").write(bad)
# The first PART section's type byte: not a section type.
bad = bytearray(data); bad[0x68] = 0x09
open(sys.argv[4], "wb").write(bad)
EOF
# Well-formed but incomplete: no END for the RAM section (loads, but pages are lost).
python3 - "$f" "$tmp/noend" <<'EOF'
import sys
data = open(sys.argv[1], "rb").read()
start_end = 0x68            # the START section ends here: the first PART follows
first_full = data.index(b"\x04\x00\x00\x00\x01\x0bglobalstate")
open(sys.argv[2], "wb").write(data[:start_end] + data[first_full:])
EOF
expect_ok "$tmp/noend" "warning: section 'ram' (id 0) started but never ended"
expect_error "$tmp/footer" "bad footer"
expect_error "$tmp/record" "unknown flags 0x40"
expect_error "$tmp/section" "unknown section type 0x09"

if [ "$fails" -ne 0 ]; then
    echo "$fails check(s) failed" >&2
    exit 1
fi
echo "analyze-migration: all checks passed on $(ls "$corpus" | wc -l) streams"
