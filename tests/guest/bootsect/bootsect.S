/*
 * The boot-sector test guest: 512 bytes, no firmware services used.
 *
 * Entered in real mode at 0x7c00 (by Ferry directly, or by SeaBIOS when
 * booted as a raw disk under QEMU). It opens the A20 gate, switches to
 * 32-bit protected mode with a flat GDT, writes 'A' to COM1, then loops
 * forever: each pass adds one to the first byte of every 4 KiB page in
 * [1 MiB, 100 MiB) and writes 'B' to COM1 when the pass is done.
 *
 * Assembled as one section and copied out flat with objcopy; there is no
 * link step, so absolute addresses are written as ABS(label).
 */

#define LOAD_ADDR   0x7c00
#define ABS(x)      ((x) - start + LOAD_ADDR)

#define COM1_THR    0x3f8
#define COM1_LSR    0x3fd
#define LSR_THRE    0x20

#define PORT_A      0x92
#define PORT_A_A20  0x02
#define PORT_A_RST  0x01

#define MEM_START   0x00100000      /* 1 MiB */
#define MEM_END     0x06400000      /* 100 MiB */
#define PAGE_SIZE   0x1000

#define SEL_CODE    0x08
#define SEL_DATA    0x10

    .text
    .code16
    .globl start
start:
    cli
    cld
    /* Some loaders enter at 07c0:0000; make CS 0 so offsets are absolute. */
    ljmp    $0, $ABS(real_entry)

real_entry:
    xorw    %ax, %ax
    movw    %ax, %ds
    movw    %ax, %es
    movw    %ax, %ss
    movw    $LOAD_ADDR, %sp

    /* Fast A20 gate; keep the reset bit clear. */
    inb     $PORT_A, %al
    orb     $PORT_A_A20, %al
    andb    $~PORT_A_RST, %al
    outb    %al, $PORT_A

    lgdtl   ABS(gdt_desc)
    movl    %cr0, %eax
    orl     $1, %eax                /* CR0.PE */
    movl    %eax, %cr0
    ljmpl   $SEL_CODE, $ABS(prot_entry)

    .code32
prot_entry:
    movw    $SEL_DATA, %ax
    movw    %ax, %ds
    movw    %ax, %es
    movw    %ax, %fs
    movw    %ax, %gs
    movw    %ax, %ss
    movl    $LOAD_ADDR, %esp

    movb    $'A', %bl
    call    serial_putc

pass:
    movl    $MEM_START, %eax
touch:
    incb    (%eax)
    addl    $PAGE_SIZE, %eax
    cmpl    $MEM_END, %eax
    jb      touch

    movb    $'B', %bl
    call    serial_putc
    jmp     pass

/* Write %bl to COM1 once the transmit holding register is empty. */
serial_putc:
    movw    $COM1_LSR, %dx
1:
    inb     %dx, %al
    testb   $LSR_THRE, %al
    jz      1b
    movw    $COM1_THR, %dx
    movb    %bl, %al
    outb    %al, %dx
    ret

    .p2align 3
gdt:
    .quad   0                       /* null */
    .quad   0x00cf9a000000ffff      /* 0x08: code, base 0, 4 GiB, 32-bit */
    .quad   0x00cf92000000ffff      /* 0x10: data, base 0, 4 GiB */
gdt_end:

gdt_desc:
    .word   gdt_end - gdt - 1
    .long   ABS(gdt)

    .org    510
    .byte   0x55, 0xaa
