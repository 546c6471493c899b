#!/usr/bin/env python3
"""Write the seeds of fuzz-soft-cpu (docs/devel/fuzzing.md) into a directory.

  gen-soft-cpu-corpus.py tests/fuzz/corpus/soft-cpu

Each seed is the target's 23-byte header (mode, flags, interrupt answers,
SMC warm-up, one byte per register) and a short program assembled with
GNU as (binutils). The programs touch what random bytes rarely reach on
their own: mode switches, the MMIO hole, the VMM ports, syscall, paging
changes, string instructions across pages, x87 and SSE.
"""
import os
import subprocess
import sys
import tempfile

REAL, PROT32, LONG0, LONG3 = range(4)
FL_IF, FL_RSP, FL_NMI, FL_SMC, FL_CR4, FL_DF, FL_AC, FL_IOPL3 = (1 << i for i in range(8))

# Register bytes: index into the target's table in the low nibble, offset
# (high nibble - 8) on top; 0x80 is the table's first value, 0 (see reg_value()).
REGS_ZERO = bytes([0x80] * 16)
REGS_MIX = bytes([0x81, 0x8c, 0x8d, 0x85, 0x80, 0x8f, 0x85, 0x8f,
                  0x89, 0x87, 0x8a, 0x8b, 0x8e, 0x83, 0x84, 0x82])


def assemble(code, bits):
    with tempfile.TemporaryDirectory() as d:
        src, obj, raw = (os.path.join(d, n) for n in ("s.S", "s.o", "s.bin"))
        with open(src, "w", encoding="utf-8") as f:
            f.write(".intel_syntax noprefix\n.code%d\n%s\n" % (bits, code))
        subprocess.run(["as", "--64", "-o", obj, src], check=True)
        subprocess.run(["objcopy", "-O", "binary", "-j", ".text", obj, raw], check=True)
        with open(raw, "rb") as f:
            return f.read()


def header(mode, flags=0, irq=b"\x00\x00\x00\x00", warmup=8, regs=REGS_ZERO):
    return bytes([mode, flags]) + irq + bytes([warmup]) + regs


BITS = {REAL: 16, PROT32: 32, LONG0: 64, LONG3: 64}

SEEDS = {
    # Real mode: arithmetic, a software interrupt, then protected mode by hand.
    "real-to-prot": (REAL, FL_IF, b"\x40\x00\x41\x00", """
        mov ax, 1234
        mov bx, 56
        mul bx
        mov [0x500], ax
        int 0x21
        div cx
        cli
        lgdt [cs:gdtr - 0]
        mov eax, cr0
        or al, 1
        mov cr0, eax
        .byte 0x66, 0xea
        .long 0x10000 + pm
        .word 0x40
    gdtr:
        .word 0x4f
        .long 0x5000
    .code32
    pm:
        mov ax, 0x10
        mov ds, ax
        mov ss, ax
        mov esp, 0x80000
        sti
        hlt
        jmp pm
    """),
    # Flat 32-bit: faults the stubs step over, I/O, paging on with 4 MiB pages.
    "prot32-faults": (PROT32, FL_IF | FL_NMI, b"\x30\x00\x31\x00", """
    top:
        ud2
        xor edx, edx
        div edx
        mov eax, [0x300000]
        mov dword ptr [0x300004], 0x12345678
        mov dx, 0x3f8
        out dx, al
        in al, dx
        int3
        into
        bound eax, [0x20000]
        mov esi, 0x2fff00
        mov edi, 0x20000
        mov ecx, 0x200
        rep movsb
        mov dword ptr [0x20000], 0x87
        mov eax, 0x20000
        mov cr3, eax
        mov eax, cr4
        or eax, 0x10
        mov cr4, eax
        mov eax, cr0
        or eax, 0x80000000
        mov cr0, eax
        sti
        hlt
        jmp top
    """),
    # 64-bit ring 0: MSRs the hooks refuse, MMIO, CPUID, TSC, syscall, VMM ports.
    "long0-system": (LONG0, FL_IF, b"\x20\x21\x00\x22", """
        mov ecx, 0x1b
        rdmsr
        mov ecx, 0x6e0
        wrmsr
        mov ecx, 0xc0000080
        rdmsr
        mov rax, [0x300000]
        mov [0x300008], rax
        mov eax, 0xfee00000
        mov ebx, [rax + 0x20]
        cpuid
        rdtsc
        rdtscp
        mov dx, 0x501
        out dx, al
        mov dx, 0x502
        out dx, al
        mov dx, 0x503
        out dx, al
        mov dx, 0x504
        out dx, al
        mov dx, 0x505
        mov eax, 0x00109090
        out dx, eax
        syscall
        mov rax, cr8
        mov cr8, rax
        invlpg [0x20000]
        mov rax, cr3
        mov cr3, rax
        lidt [0x20000]
        sti
        hlt
        jmp $-2
    """),
    # 64-bit ring 3: everything privileged must fault, syscall and int 0x80 must not.
    "long3-user": (LONG3, FL_IF, b"\x80\x00\x00\x00", """
    top:
        syscall
        int 0x80
        int3
        cli
        hlt
        in al, 0x60
        mov rax, cr3
        rdmsr
        lgdt [0x20000]
        mov rax, [0x5000]
        mov qword ptr [0x8000], 0
        mov ax, 0x10
        mov ds, ax
        mov ss, ax
        sysenter
        iretq
        pushfq
        popfq
        jmp top
    """),
    # 64-bit ring 0, the VMM rewrites the code of a loop; first and second halves.
    "long0-smc": (LONG0, FL_SMC, b"\x00\x00\x00\x00", None),
    # String instructions into the MMIO hole and past the end of RAM, DF set.
    "long0-strings": (LONG0, FL_DF, b"\x00\x00\x00\x00", """
        mov rdi, 0x300ff0
        mov rsi, 0x20000
        mov rcx, 0x40
        rep movsb
        cld
        mov rdi, 0x3ffff0
        mov rcx, 0x100
        rep stosq
        mov rsi, 0x2fff00
        mov rcx, 0x300
        rep lodsd
        mov rdi, 0x20000
        mov rcx, 0x10000
        repne scasb
        mov dx, 0x80
        mov rcx, 8
        rep outsb
        rep insw
    """),
    # x87 and SSE with exceptions unmasked, then a divide by zero.
    "long0-fpu": (LONG0, FL_CR4, b"\x00\x00\x00\x00", """
        fninit
        fld1
        fldz
        fdivp
        fldpi
        fsqrt
        fstp qword ptr [0x20000]
        fnstenv [0x20010]
        push 0x1f00
        ldmxcsr [rsp]
        pxor xmm0, xmm0
        movaps xmm1, [0x20000]
        divps xmm1, xmm0
        movups [0x20001], xmm1
        fxsave [0x21000]
        fxrstor [0x21000]
        xgetbv
        fldcw [0x20100]
        fwait
        fld qword ptr [0x300000]
    """),
    # 64-bit ring 0 leaving long mode for 32-bit compatibility and legacy mode.
    "long0-modes": (LONG0, 0, b"\x00\x00\x00\x00", """
        lea rax, [rip + compat]
        push 0x40
        push rax
        retfq
    .code32
    compat:
        mov eax, cr0
        and eax, 0x7fffffff
        mov cr0, eax
        mov ecx, 0xc0000080
        rdmsr
        and eax, 0xfffffeff
        wrmsr
        mov eax, cr0
        and eax, 0xfffffffe
        mov cr0, eax
        hlt
    """),
}

SMC_OLD = """
    loop1:
        inc rax
        add rbx, rax
        jmp loop1
"""
SMC_NEW = """
    loop2:
        dec rax
        sub rbx, 7
        mov rcx, rbx
        jmp loop2
"""


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen-soft-cpu-corpus.py DIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, (mode, flags, irq, code) in SEEDS.items():
        if code is None:
            old, new = assemble(SMC_OLD, 64), assemble(SMC_NEW, 64)
            length = max(len(old), len(new))
            body = old.ljust(length, b"\x90") + new.ljust(length, b"\x90")
        else:
            body = assemble(code, BITS[mode])
        regs = REGS_MIX if mode in (LONG0, LONG3) and name != "long0-strings" else REGS_ZERO
        with open(os.path.join(out, name), "wb") as f:
            f.write(header(mode, flags, irq, regs=regs) + body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
