/*
 * Guest programs for test-soft-cpu, assembled into the test binary as data
 * (never executed on the host). Each is copied to its load address in the
 * test's guest RAM; absolute addresses are written as A(label), a
 * difference of labels, so the assembler emits no relocations.
 */

#define A(x)    ((x) - PROG + LOAD)

    .section .rodata, "a"

/* ---- Real mode, then protected mode. Loaded at 0x7c00. ---- */
#define PROG    rm_prog
#define LOAD    0x7c00
    .code16
    .globl rm_prog, rm_prog_end
rm_prog:
    cli
    ljmp    $0, $A(rm_1)
rm_1:
    xorw    %ax, %ax
    movw    %ax, %ds
    movw    %ax, %ss
    movw    $0x7000, %sp
    movw    $1234, %ax
    movw    $56, %bx
    mulw    %bx
    movw    %ax, 0x500
    movw    %dx, 0x502
    movw    $0x1000, %ax
    movw    %ax, %es
    movw    $0xbeef, %es:0x10
    movl    $0x12345678, %eax
    addl    $0x11111111, %eax
    movl    %eax, 0x504
    lcall   $0, $A(rm_far)
    movw    $A(rm_int42), 0x42*4
    movw    $0, 0x42*4+2
    int     $0x42
    movw    $A(rm_int43), 0x43*4
    movw    $0, 0x43*4+2
    sti
    hlt
    cli
    lgdtl   A(rm_gdtdesc)
    movl    %cr0, %eax
    orl     $1, %eax
    movl    %eax, %cr0
    ljmpl   $8, $A(rm_pm)
rm_far:
    movw    $0x5151, 0x50a
    lret
rm_int42:
    movw    $0x4242, 0x508
    iret
rm_int43:
    movw    $0x4343, 0x50c
    iret
    .code32
rm_pm:
    movw    $0x10, %ax
    movw    %ax, %ds
    movw    %ax, %es
    movw    %ax, %ss
    movl    $0x7000, %esp
    movl    $0xcafebabe, 0x100000
    call    rm_pm_fn
    movw    $0x3f8, %dx
    movb    $'P', %al
    outb    %al, %dx
    hlt
rm_pm_fn:
    movl    $0x600d, 0x100004
    ret
    .p2align 3
rm_gdt:
    .quad   0
    .quad   0x00cf9a000000ffff
    .quad   0x00cf92000000ffff
rm_gdtdesc:
    .word   23
    .long   A(rm_gdt)
rm_prog_end:
#undef PROG
#undef LOAD

/* ---- 32-bit flat protected mode to long mode. Loaded at 0x8000. ---- */
#define PROG    lm_prog
#define LOAD    0x8000
    .code32
    .globl lm_prog, lm_prog_end
lm_prog:
    lgdt    A(lm_gdtdesc)
    ljmp    $0x18, $A(lm_32)
lm_32:
    movl    $0x10, %eax
    movl    %eax, %ds
    movl    %eax, %es
    movl    %eax, %ss
    movl    $0x1000, %eax
    movl    %eax, %cr3
    movl    %cr4, %eax
    orl     $0x20, %eax
    movl    %eax, %cr4
    movl    $0xc0000080, %ecx
    rdmsr
    orl     $0x100, %eax
    wrmsr
    movl    %cr0, %eax
    orl     $0x80000001, %eax
    movl    %eax, %cr0
    ljmp    $0x08, $A(lm_64)
    .code64
lm_64:
    movl    $0x10, %eax
    movl    %eax, %ds
    movl    %eax, %ss
    movabsq $0x123456789abcdef0, %rax
    movq    %rax, 0x600000
    movq    0x600000, %rbx
    movq    $0x40300000, %rdx
    movq    $0x55, (%rdx)
    movq    0x300000, %rsi
    movw    $0x3f8, %dx
    movb    $'L', %al
    outb    %al, %dx
    hlt
    .p2align 3
lm_gdt:
    .quad   0
    .quad   0x00af9a000000ffff
    .quad   0x00cf92000000ffff
    .quad   0x00cf9a000000ffff
lm_gdtdesc:
    .word   31
    .long   A(lm_gdt)
lm_prog_end:
#undef PROG
#undef LOAD

/* ---- 32-bit paging: legacy 2-level with a 4 MiB page, then PAE. 0x8000. ---- */
#define PROG    pg32_prog
#define LOAD    0x8000
    .code32
    .globl pg32_prog, pg32_prog_end
pg32_prog:
    /* Legacy: page directory at 0x1000 built by the test. */
    movl    $0x1000, %eax
    movl    %eax, %cr3
    movl    %cr4, %eax
    orl     $0x10, %eax                 /* PSE */
    movl    %eax, %cr4
    movl    %cr0, %eax
    orl     $0x80010000, %eax           /* PG, WP */
    movl    %eax, %cr0
    movl    $0x11, 0x800100             /* 4 MiB page at 8 MiB -> 0 */
    movl    0x100, %ebx
    movl    $0x22, 0x401004             /* 4 KiB page 0x401000 -> 0x5000 */
    movl    0x5004, %ecx
    /* Off, then PAE with its PDPT at 0x3000. */
    movl    %cr0, %eax
    andl    $0x7fffffff, %eax
    movl    %eax, %cr0
    movl    $0x3000, %eax
    movl    %eax, %cr3
    movl    %cr4, %eax
    orl     $0x20, %eax
    movl    %eax, %cr4
    movl    %cr0, %eax
    orl     $0x80000000, %eax
    movl    %eax, %cr0
    movl    $0x33, 0x40000200           /* 2 MiB PAE page at 1 GiB -> 0 */
    movl    0x200, %edx
    hlt
pg32_prog_end:
#undef PROG
#undef LOAD

/* A write through a 4 MiB page, after a stop for a new dirty round. 0x8000. */
#define PROG    pse_dirty_prog
#define LOAD    0x8000
    .code32
    .globl pse_dirty_prog, pse_dirty_prog_end
pse_dirty_prog:
    movl    $0x1000, %eax
    movl    %eax, %cr3
    movl    %cr4, %eax
    orl     $0x10, %eax                 /* PSE */
    movl    %eax, %cr4
    movl    %cr0, %eax
    orl     $0x80010000, %eax           /* PG, WP */
    movl    %eax, %cr0
    hlt
    movl    $0x44, 0x800104             /* 4 MiB page at 8 MiB -> 0 */
    hlt
pse_dirty_prog_end:
#undef PROG
#undef LOAD

/* The 64-bit programs below run from 0x10000 in the test's long-mode setup. */
#define LOAD    0x10000
    .code64

/* A page fault with error code and CR2, fixed up and retried. */
#define PROG    pf_prog
    .globl pf_prog, pf_prog_end, pf_handler
pf_prog:
    movq    $0x1ff008, %rbx
    movq    $0x77, (%rbx)
    movq    (%rbx), %r14
    hlt
pf_handler:
    movq    %cr2, %r12
    popq    %r13
    orq     $1, 0x4ff8
    invlpg  (%r12)
    iretq
pf_prog_end:
#undef PROG

/* Ring 3 and back through INT, SYSCALL and a #UD. */
#define PROG    ring_prog
    .globl ring_prog, ring_prog_end, ring_user, ring_int80, ring_syscall, ring_ud, ring_ud_insn
    .globl ring_after_syscall
ring_prog:
    pushq   $0x23
    pushq   $0x28000
    pushq   $0x2
    pushq   $0x2b
    pushq   $A(ring_user)
    iretq
ring_user:
    movq    $5, %rdi
    int     $0x80
    movq    %rax, %r8
    movq    $7, %rdi
    syscall
ring_after_syscall:
    movq    %rax, %rsi
ring_ud_insn:
    ud2
ring_int80:
    movq    8(%rsp), %r10
    leaq    (%rdi,%rdi), %rax
    iretq
ring_syscall:
    movq    %rcx, %r9
    leaq    100(%rdi), %rax
    sysretq
ring_ud:
    movq    8(%rsp), %r15
    movq    (%rsp), %r14
    movq    24(%rsp), %r13
    hlt
ring_prog_end:
#undef PROG

/* Divide by zero. */
#define PROG    de_prog
    .globl de_prog, de_prog_end, de_handler, de_insn
de_prog:
    movl    $100, %eax
    xorl    %edx, %edx
    xorl    %ecx, %ecx
de_insn:
    divl    %ecx
    hlt
de_handler:
    movq    (%rsp), %r12
    movq    $0xde, %r13
    hlt
de_prog_end:
#undef PROG

/* REP MOVSB into a page that is not present until the #PF handler maps it. */
#define PROG    rep_prog
    .globl rep_prog, rep_prog_end, rep_pf_handler
rep_prog:
    cld
    movq    $0x30000, %rsi
    movq    $0x1fe800, %rdi
    movl    $0x1000, %ecx
    rep movsb
    hlt
rep_pf_handler:
    movq    %cr2, %r12
    movq    %rcx, %r13
    orq     $1, 0x4ff8
    invlpg  (%r12)
    addq    $8, %rsp
    iretq
rep_prog_end:
#undef PROG

/* Self-modifying code: patch an immediate, then run it. */
#define PROG    smc_prog
    .globl smc_prog, smc_prog_end
smc_prog:
    movl    $3, %ecx
smc_loop:
    movb    $2, A(smc_patch) + 1
smc_patch:
    movl    $1, %eax
    addl    %eax, %ebx
    decl    %ecx
    jnz     smc_loop
    hlt
smc_prog_end:
#undef PROG

/* LOCK ADD from several vCPUs. */
#define PROG    lock_prog
    .globl lock_prog, lock_prog_end
lock_prog:
    movl    $100000, %ecx
1:
    lock addq $1, 0x40000
    movl    $1, %edx
    lock xaddl %edx, 0x40010
    decl    %ecx
    jnz     1b
    hlt
lock_prog_end:
#undef PROG

/*
 * LOCKed accesses split across 0x1fe000/0x1ff000 that fault: first with
 * only a stale TLB entry for the missing page, then with none. The #PF
 * handler maps the page and the instruction is retried.
 */
#define PROG    splitlock_prog
    .globl splitlock_prog, splitlock_prog_end, splitlock_pf
splitlock_prog:
    xorl    %r14d, %r14d
    xorl    %r9d, %r9d
    movl    $0, 0x1feffe                /* write TLB entries for both pages */
    andq    $~1, 0x4ff8                 /* 0x1ff000 not present, not flushed */
    lock addl $0x01010101, 0x1feffe
    andq    $~1, 0x4ff8
    invlpg  0x1ff000
    lock addl $0x01010101, 0x1feffe     /* certain #PF */
    movl    $0x5a5a5a5a, %eax
    xchgl   %eax, 0x1fdffe
    movl    %eax, %r8d
    movl    $0x5a5a5a5a, %eax
    movl    $0x77777777, %ecx
    lock cmpxchgl %ecx, 0x1fdffe
    setz    %r9b
    hlt
splitlock_pf:
    movq    %cr2, %r12
    popq    %r13
    incq    %r14
    orq     $1, 0x4ff8
    invlpg  (%r12)
    iretq
splitlock_prog_end:
#undef PROG

/* Writes to three pages, many times. */
#define PROG    dirty_prog
    .globl dirty_prog, dirty_prog_end
dirty_prog:
    movq    $1, 0x50000
    movq    $2, 0x51000
    movq    $3, 0x52008
    movq    $4, 0x50010
    movl    $100, %ecx
1:
    incq    0x51000
    decl    %ecx
    jnz     1b
    hlt
dirty_prog_end:
#undef PROG

/* HLT until an interrupt. */
#define PROG    hlt_prog
    .globl hlt_prog, hlt_prog_end, hlt_irq
hlt_prog:
    sti
    hlt
    movq    $1, %r8
    cli
    hlt
hlt_irq:
    incq    %r9
    iretq
hlt_prog_end:
#undef PROG

/* An exception with no usable IDT: triple fault. */
#define PROG    triple_prog
    .globl triple_prog, triple_prog_end
triple_prog:
    lidt    A(triple_idt)
    ud2
    hlt
triple_idt:
    .word   0
    .quad   0
triple_prog_end:
#undef PROG

/* An instruction this CPU does not implement (PSHUFB, SSSE3). */
#define PROG    ud_prog
    .globl ud_prog, ud_prog_end, ud_handler, ud_insn
ud_prog:
ud_insn:
    .byte   0x66, 0x0f, 0x38, 0x00, 0xc1
    hlt
ud_handler:
    movq    (%rsp), %r12
    movq    $6, %r13
    hlt
ud_prog_end:
#undef PROG

/*
 * CR4 bits the CPU does not implement: each write is #GP(0) and leaves CR4
 * as it was. r8 counts the faults, r9 holds CR4 at the end.
 */
#define PROG    cr4_prog
    .globl cr4_prog, cr4_prog_end, cr4_handler
cr4_prog:
    xorl    %r8d, %r8d
    movq    %cr4, %rbx
    movq    %rbx, %rax
    orq     $0x1, %rax              /* VME */
    movq    %rax, %cr4
    movq    %rbx, %rax
    orq     $0x2, %rax              /* PVI */
    movq    %rax, %cr4
    movq    %rbx, %rax
    orq     $0x40, %rax             /* MCE */
    movq    %rax, %cr4
    movq    %rbx, %rax
    orq     $0x800, %rax            /* UMIP */
    movq    %rax, %cr4
    movq    %cr4, %r9
    hlt
cr4_handler:
    incl    %r8d
    addq    $8, %rsp                /* the error code */
    addq    $3, (%rsp)              /* past the 3-byte mov to CR4 */
    iretq
cr4_prog_end:
#undef PROG

/*
 * Code that shares a page with page tables: the immediate of a MOVABS at
 * 0x4fee is the PTE of 0x1fe000 (0x4ff0). Reading 0x1fe000 makes the walker
 * set that PTE's accessed bit, which must reach the decoded MOVABS:
 * r8 = the PTE before, r9 = after.
 */
#define PROG    ptcode_prog
    .globl ptcode_prog, ptcode_prog_end
ptcode_prog:
    movq    $0x1fe003, %rax         /* present, writable, accessed clear */
    movq    %rax, 0x4ff0
    movw    $0xb848, 0x4fee         /* movabs rax, imm64 (the PTE) */
    movb    $0xc3, 0x4ff8           /* ret */
    invlpg  0x1fe000
    movl    $0x4fee, %ebx
    call    *%rbx
    movq    %rax, %r8
    movq    0x1fe000, %rcx
    call    *%rbx
    movq    %rax, %r9
    hlt
ptcode_prog_end:
#undef PROG

/* Cross-modifying code: one vCPU patches a function another keeps calling. */
#define PROG    xmc_prog
    .globl xmc_prog, xmc_prog_end, xmc_writer
xmc_prog:
    movl    $0x11000, %ebx
    call    *%rbx
    movl    $1, 0x40000
1:
    call    *%rbx
    cmpl    $2, %eax
    jne     1b
    hlt
xmc_writer:
1:
    cmpl    $0, 0x40000
    je      1b
    movb    $2, 0x11001
    hlt
xmc_prog_end:
#undef PROG

/* XSETBV/XGETBV, XSAVE and XRSTOR of x87+SSE state. */
#define PROG    xsave_prog
    .globl xsave_prog, xsave_prog_end
xsave_prog:
    movq    %cr4, %rax
    orq     $0x40000, %rax
    movq    %rax, %cr4
    xorl    %ecx, %ecx
    movl    $3, %eax
    xorl    %edx, %edx
    xsetbv
    xgetbv
    movq    %rax, %r8
    movq    $0x1234, %rax
    movq    %rax, %xmm0
    movl    $3, %eax
    xorl    %edx, %edx
    xsave   0x60000
    pxor    %xmm0, %xmm0
    xrstor  0x60000
    movq    %xmm0, %r9
    movq    0x60200, %r10
    hlt
xsave_prog_end:
#undef PROG

/* CPUID: the maximum basic leaf, then leaves 15H (TSC/crystal) and 16H. */
#define PROG    tscfreq_prog
    .globl tscfreq_prog, tscfreq_prog_end
tscfreq_prog:
    xorl    %eax, %eax
    cpuid
    movq    %rax, %r8
    movl    $0x15, %eax
    xorl    %ecx, %ecx
    cpuid
    movq    %rax, %r9
    movq    %rbx, %r10
    movq    %rcx, %r11
    movl    $0x16, %eax
    xorl    %ecx, %ecx
    cpuid
    movq    %rax, %r12
    hlt
tscfreq_prog_end:
#undef PROG

/* Single-stepping with TF: a #DB after each instruction. */
#define PROG    tf_prog
    .globl tf_prog, tf_prog_end, tf_handler
tf_prog:
    pushfq
    orq     $0x100, (%rsp)
    popfq
    nop
    nop
    pushfq
    andq    $~0x100, (%rsp)
    popfq
    nop
    hlt
tf_handler:
    incq    %r15
    iretq
tf_prog_end:
#undef PROG

/* Protection faults: WP, NX and U/S, each fixed up by the #PF handler. */
#define PROG    prot_prog
    .globl prot_prog, prot_prog_end, prot_pf, prot_ud
prot_prog:
    xorl    %r11d, %r11d
    movq    $1, 0x1fe000            /* read-only page, CR0.WP */
    movq    $0x1fd000, %rax
    call    *%rax                   /* no-execute page holding "ret" */
    pushq   $0x23
    pushq   $0x28000
    pushq   $0x2
    pushq   $0x2b
    pushq   $A(prot_user)
    iretq
prot_user:
    movq    0x1fc000, %rbx          /* supervisor-only page */
    ud2
prot_pf:
    movq    %cr2, %r12
    popq    %r13
    movq    %r13, 0x61000(,%r11,8)
    incq    %r11
    movq    %r12, %rax
    shrq    $12, %rax
    andq    $0x1ff, %rax
    leaq    0x4000(,%rax,8), %rax
    testq   $2, %r13
    jz      1f
    orq     $2, (%rax)
1:  testq   $0x10, %r13
    jz      2f
    btrq    $63, (%rax)
2:  testq   $4, %r13
    jz      3f
    orq     $4, (%rax)
3:  invlpg  (%r12)
    iretq
prot_ud:
    hlt
prot_prog_end:
#undef PROG

/* Global pages survive a CR3 reload; INVLPG drops them. */
#define PROG    glob_prog
    .globl glob_prog, glob_prog_end
glob_prog:
    movq    %cr4, %rax
    orq     $0x80, %rax             /* PGE */
    movq    %rax, %cr4
    movq    0x1f0000, %r8           /* global page -> 0x1f0000 */
    movq    0x1f1000, %r9           /* ordinary page -> 0x1f1000 */
    movq    $0x1f2000 | 0x107, %rax /* both now -> 0x1f2000, no INVLPG */
    movq    %rax, 0x4000 + 0x1f0 * 8
    movq    $0x1f2000 | 0x7, %rax
    movq    %rax, 0x4000 + 0x1f1 * 8
    movq    %cr3, %rax
    movq    %rax, %cr3
    movq    0x1f0000, %r10          /* still the old global translation */
    movq    0x1f1000, %r11          /* re-walked */
    invlpg  0x1f0000
    movq    0x1f0000, %r12
    hlt
glob_prog_end:
#undef PROG

/*
 * MTRRs and this vCPU's TSC written, then, in a fresh CPU given the first
 * one's state after the hlt, read back.
 */
.macro wrmsr_imm msr, hi, lo
    movl    $\msr, %ecx
    movl    $\lo, %eax
    movl    $\hi, %edx
    wrmsr
.endm
.macro rdmsr_to msr, reg
    movl    $\msr, %ecx
    rdmsr
    shlq    $32, %rdx
    orq     %rdx, %rax
    movq    %rax, \reg
.endm
#define PROG    mtrr_prog
    .globl mtrr_prog, mtrr_prog_end
mtrr_prog:
    wrmsr_imm 0x2ff, 0, 0xc06                   /* MTRRdefType: E, FE, WB */
    wrmsr_imm 0x200, 0, 0x80000006              /* PHYSBASE0 */
    wrmsr_imm 0x20f, 0xff, 0xf0000800           /* PHYSMASK7 */
    wrmsr_imm 0x250, 0x05050505, 0x06060606     /* FIX64K_00000 */
    wrmsr_imm 0x26f, 0x06060606, 0x01000504     /* FIX4K_F8000 */
    wrmsr_imm 0x10, 0x10, 0                     /* TSC = 2^36 */
    hlt
    rdmsr_to 0x2ff, %r8
    rdmsr_to 0x200, %r9
    rdmsr_to 0x20f, %r10
    rdmsr_to 0x250, %r11
    rdmsr_to 0x26f, %r12
    rdmsr_to 0xfe, %r13                         /* MTRRcap */
    rdtsc
    shlq    $32, %rdx
    orq     %rdx, %rax
    movq    %rax, %r14
    hlt
mtrr_prog_end:
#undef PROG

#undef LOAD

    .section .note.GNU-stack, "", @progbits
