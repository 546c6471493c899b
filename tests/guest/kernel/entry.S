/*
 * Ferry test kernel: PVH entry, the AP trampoline, the switch to long mode,
 * interrupt stubs and the boot-time descriptor tables.
 *
 * Ring 0 runs in an instruction emulator on the host this was written for,
 * so everything that can be computed by the assembler or the linker is: the
 * GDT and the page tables for the first 4 GiB are data in the image, not
 * built at boot.
 */
#include "kernel.h"

#define XEN_ELFNOTE_PHYS32_ENTRY    18

#define MSR_EFER        0xc0000080
#define EFER_LME        0x100
#define CR4_PAE         0x20
/* PG, WP, NE, ET, MP, PE. Writing the whole value also clears the CD and NW
 * bits that INIT leaves set on an AP. */
#define CR0_LONG        0x80010033

#define PTE_PRESENT     0x01
#define PTE_WRITE       0x02
#define PTE_USER        0x04
#define PTE_PWT         0x08
#define PTE_PCD         0x10
#define PTE_LARGE       0x80
#define PTE_TABLE       (PTE_PRESENT | PTE_WRITE | PTE_USER)
#define PDE_RAM         (PTE_PRESENT | PTE_WRITE | PTE_USER | PTE_LARGE)
#define PDE_MMIO        (PDE_RAM | PTE_PWT | PTE_PCD)
/* 2 MiB pages from here to 4 GiB hold the IOAPIC and the local APIC. */
#define FIRST_MMIO_PDE  (0xfe000000 >> 21)

/*
 * The PVH entry note. Its segment keeps 4-byte alignment: some loaders pad
 * the name to the segment's alignment rather than to 4.
 */
    .section .note.Xen, "a", @note
    .balign 4
    .long 4                             /* namesz: "Xen\0" */
    .long 4                             /* descsz */
    .long XEN_ELFNOTE_PHYS32_ENTRY
    .asciz "Xen"
    .balign 4
    .long pvh_entry
    .balign 4

/* Both entry paths end here: flat 32-bit protected mode, paging off. */
.macro ENTER_LONG_MODE target
    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov $CR4_PAE, %eax
    mov %eax, %cr4
    mov $MSR_EFER, %ecx
    rdmsr
    or $EFER_LME, %eax
    wrmsr
    mov $CR0_LONG, %eax
    mov %eax, %cr0
    ljmp $SEL_CODE64, $\target
.endm

    .section .text.entry, "ax"
    .code32
    .globl pvh_entry
/* EBX = physical address of struct hvm_start_info; no stack is given. */
pvh_entry:
    cli
    cld
    mov %ebx, %edi
    rdtsc
    mov %eax, boot_entry_tsc
    mov %edx, boot_entry_tsc + 4
    lgdt gdt_ptr
    ljmp $SEL_CODE32, $1f
1:  mov $SEL_DATA, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov %eax, %fs
    mov %eax, %gs
    ENTER_LONG_MODE bsp_entry64

    .code64
bsp_entry64:
    mov $SEL_DATA, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov $(kstacks + KSTACK_SIZE - 16), %rsp
    mov %edi, %edi                      /* start_info address, zero-extended */
    call boot_main
    jmp halt_forever

/*
 * The AP trampoline, copied to TRAMPOLINE_ADDR before the SIPI. It runs in
 * real mode with CS = TRAMPOLINE_ADDR >> 4, so it addresses its own data
 * relative to its start and leaves through an absolute far jump.
 */
    .code16
    .globl trampoline_start, trampoline_end
trampoline_start:
    cli
    cld
    mov %cs, %ax
    mov %ax, %ds
    lgdtl (trampoline_gdtr - trampoline_start)
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmpl $SEL_CODE32, $ap_entry32
    .balign 4
trampoline_gdtr:
    .word gdt_end - gdt - 1
    .long gdt
trampoline_end:

    .code32
ap_entry32:
    mov $SEL_DATA, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    ENTER_LONG_MODE ap_entry64

    .code64
ap_entry64:
    mov $SEL_DATA, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov $1, %eax
    lock xadd %eax, next_cpu_index(%rip)
    cmp $MAX_CPUS, %eax
    jae halt_forever                    /* no stack for it: park it */
    mov %eax, %edi
    lea 1(%rax), %rsp
    shl $13, %rsp                       /* KSTACK_SIZE */
    add $(kstacks - 16), %rsp
    call ap_main
    jmp halt_forever

    .text
    .globl halt_forever
halt_forever:
    cli
1:  hlt
    jmp 1b

/* enter_user(rip, rsp, arg): iret to ring 3 with interrupts on. */
    .globl enter_user
enter_user:
    mov $SEL_UDATA, %eax
    mov %eax, %ds
    mov %eax, %es
    pushq $SEL_UDATA
    pushq %rsi
    pushq $0x202
    pushq $SEL_UCODE64
    pushq %rdi
    mov %rdx, %rdi
    xor %esi, %esi
    xor %edx, %edx
    iretq

/*
 * Exceptions: push a dummy error code where the CPU pushes none, then the
 * vector, then all general registers in struct trap_frame order.
 */
.macro EXCEPTION vec, has_error
    .balign 16
exception_\vec:
    .if \has_error == 0
    pushq $0
    .endif
    pushq $\vec
    jmp trap_common
.endm

    EXCEPTION 0, 0
    EXCEPTION 1, 0
    EXCEPTION 2, 0
    EXCEPTION 3, 0
    EXCEPTION 4, 0
    EXCEPTION 5, 0
    EXCEPTION 6, 0
    EXCEPTION 7, 0
    EXCEPTION 8, 1
    EXCEPTION 9, 0
    EXCEPTION 10, 1
    EXCEPTION 11, 1
    EXCEPTION 12, 1
    EXCEPTION 13, 1
    EXCEPTION 14, 1
    EXCEPTION 15, 0
    EXCEPTION 16, 0
    EXCEPTION 17, 1
    EXCEPTION 18, 0
    EXCEPTION 19, 0
    EXCEPTION 20, 0
    EXCEPTION 21, 1
    EXCEPTION 22, 0
    EXCEPTION 23, 0
    EXCEPTION 24, 0
    EXCEPTION 25, 0
    EXCEPTION 26, 0
    EXCEPTION 27, 0
    EXCEPTION 28, 0
    EXCEPTION 29, 1
    EXCEPTION 30, 1
    EXCEPTION 31, 0

    .section .rodata
    .balign 8
    .globl exception_stubs
exception_stubs:
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad exception_\v
    .endr

    .text
trap_common:
    push %r15
    push %r14
    push %r13
    push %r12
    push %r11
    push %r10
    push %r9
    push %r8
    push %rbp
    push %rdi
    push %rsi
    push %rdx
    push %rcx
    push %rbx
    push %rax
    mov %rsp, %rdi
    cld
    call trap
    pop %rax
    pop %rbx
    pop %rcx
    pop %rdx
    pop %rsi
    pop %rdi
    pop %rbp
    pop %r8
    pop %r9
    pop %r10
    pop %r11
    pop %r12
    pop %r13
    pop %r14
    pop %r15
    add $16, %rsp
    iretq

/*
 * The timer: the hot path of ring 0, kept to a few instructions. The CPU's
 * struct cpu pointer sits in the top slot of its kernel stack, found by
 * rounding the stack pointer up (kernel stacks are aligned to their size).
 */
    .balign 16
    .globl timer_stub
timer_stub:
    push %rax
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %r8
    push %r9
    push %r10
    push %r11
    mov %rsp, %rax
    or $(KSTACK_SIZE - 1), %rax
    mov -7(%rax), %rax
    incq CPU_TICKS_OFF(%rax)
    cmpl $0, CPU_INDEX_OFF(%rax)
    jne 1f
    cld
    call bsp_tick
1:  mov $(LAPIC_BASE + LAPIC_EOI), %eax
    movl $0, (%rax)
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rax
    iretq

    .balign 16
    .globl spurious_stub
spurious_stub:
    iretq

    .data
    .balign 8
    .globl boot_entry_tsc, next_cpu_index
boot_entry_tsc:
    .quad 0
next_cpu_index:
    .long 1

/* TSS descriptors (16 bytes per CPU) follow the fixed entries; cpu.c fills
 * each one as its CPU comes up. */
    .balign 16
    .globl gdt, gdt_ptr
gdt:
    .quad 0
    .quad 0x00af9a000000ffff            /* 0x08 kernel code, 64-bit */
    .quad 0x00cf92000000ffff            /* 0x10 kernel data */
    .quad 0x00cf9a000000ffff            /* 0x18 kernel code, 32-bit */
    .quad 0x00cff2000000ffff            /* 0x20 user data */
    .quad 0x00affa000000ffff            /* 0x28 user code, 64-bit */
    .fill MAX_CPUS * 2, 8, 0
gdt_end:
    .balign 8
    .word 0, 0, 0                       /* puts the base on an 8-byte boundary */
gdt_ptr:
    .word gdt_end - gdt - 1
    .quad gdt

/*
 * Identity map of the first 4 GiB in 2 MiB pages, user-accessible, built by
 * the assembler. boot.c adds page directories for RAM above 4 GiB.
 */
    .balign 4096
    .globl boot_pml4, boot_pdpt
boot_pml4:
    .quad boot_pdpt + PTE_TABLE
    .fill 511, 8, 0
boot_pdpt:
    .quad boot_pd + 0x0000 + PTE_TABLE
    .quad boot_pd + 0x1000 + PTE_TABLE
    .quad boot_pd + 0x2000 + PTE_TABLE
    .quad boot_pd + 0x3000 + PTE_TABLE
    .fill 508, 8, 0
boot_pd:
    .set pde, 0
    .rept 2048
    .if pde < FIRST_MMIO_PDE
    .quad (pde << 21) | PDE_RAM
    .else
    .quad (pde << 21) | PDE_MMIO
    .endif
    .set pde, pde + 1
    .endr

    .section .note.GNU-stack, "", @progbits
