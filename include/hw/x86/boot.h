/*
 * Boot payloads without firmware: what to copy into guest RAM and the
 * register state the boot CPU starts with. Prepared once from the files
 * at startup, applied again at every reset.
 */
#ifndef HW_X86_BOOT_H
#define HW_X86_BOOT_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>


typedef enum X86BootMode {
    X86_BOOT_REAL_MODE,         /* CS:IP = 0:entry, paging and protection off */
    X86_BOOT_PROTECTED_32,      /* flat 32-bit segments, paging off */
} X86BootMode;

typedef struct X86Boot {
    GPtrArray *blobs;           /* X86BootBlob */
    X86BootMode mode;
    uint64_t entry;
    uint64_t rbx;
    uint64_t rsi;
    uint64_t rdx;
    uint64_t rsp;
} X86Boot;

/* Fixed low-memory addresses the loaders use. */
#define X86_BOOT_GDT_ADDR        0x500
#define X86_BOOT_PVH_INFO_ADDR   0x6000
#define X86_BOOT_ZERO_PAGE_ADDR  0x7000
#define X86_BOOT_CMDLINE_ADDR    0x20000
#define X86_BOOT_CMDLINE_MAX     0x10000
#define X86_BOOT_KERNEL_ADDR     0x100000

X86Boot *x86_boot_new(void);
void x86_boot_add_blob(X86Boot *boot, uint64_t gpa, const void *data, size_t len);

/* Validate and stage a blob: fails naming @what if it doesn't fit in RAM. */
bool x86_boot_stage(X86Boot *boot, uint64_t gpa, const void *data, size_t len,
                    const char *what, GError **errp);

/*
 * -kernel: an ELF with a PVH note, or a bzImage. @ram_low_end bounds where
 * the initrd and the kernel may go.
 */
bool x86_boot_load_kernel(X86Boot *boot, const char *kernel, const char *initrd,
                          const char *cmdline, GError **errp);
bool x86_boot_load_pvh(X86Boot *boot, const guint8 *elf, size_t elf_len, const char *path,
                       const char *initrd, const char *cmdline, GError **errp);
bool x86_boot_load_bzimage(X86Boot *boot, const guint8 *image, size_t len, const char *path,
                           const char *initrd, const char *cmdline, GError **errp);
/* No -kernel: the first sector of a raw drive, at 0x7c00 in real mode. */
bool x86_boot_load_bootsect(X86Boot *boot, const char *drive, GError **errp);

/* Load an initrd at the top of low RAM below @max_addr; returns its address. */
bool x86_boot_load_initrd(X86Boot *boot, const char *initrd, uint64_t max_addr,
                          uint64_t *addr, uint64_t *size, GError **errp);

/* Copy every blob into RAM and set the boot CPU's registers. */
void x86_boot_apply(X86Boot *boot, int bsp);

#endif
