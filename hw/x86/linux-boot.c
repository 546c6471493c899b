/*
 * Booting a Linux bzImage through the 32-bit boot protocol: the setup
 * header goes into a zero page (struct boot_params) with the e820 map,
 * command line and initrd; the protected-mode kernel goes to 1 MiB and
 * starts at code32_start with ESI pointing at the zero page.
 */
#include <string.h>

#include "hw/x86/boot.h"
#include "hw/x86/e820.h"

/* Offsets into struct boot_params / the setup header (Documentation/arch/x86/boot.rst). */
#define BP_E820_ENTRIES     0x1e8
#define BP_SETUP_SECTS      0x1f1
#define BP_BOOT_FLAG        0x1fe
#define BP_JUMP             0x200
#define BP_HEADER           0x202
#define BP_VERSION          0x206
#define BP_TYPE_OF_LOADER   0x210
#define BP_LOADFLAGS        0x211
#define BP_CODE32_START     0x214
#define BP_RAMDISK_IMAGE    0x218
#define BP_RAMDISK_SIZE     0x21c
#define BP_HEAP_END_PTR     0x224
#define BP_CMD_LINE_PTR     0x228
#define BP_INITRD_ADDR_MAX  0x22c
#define BP_CMDLINE_SIZE     0x238
#define BP_E820_TABLE       0x2d0
#define BP_E820_MAX         128

#define LOADFLAG_LOADED_HIGH   0x01
#define LOADFLAG_CAN_USE_HEAP  0x80

static uint32_t rd32(const guint8 *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint16_t rd16(const guint8 *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

static void wr32(guint8 *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static void wr16(guint8 *p, uint16_t v)
{
    memcpy(p, &v, 2);
}

bool x86_boot_load_bzimage(X86Boot *boot, const guint8 *image, size_t len, const char *path,
                           const char *initrd, const char *cmdline, GError **errp)
{
    uint16_t version = rd16(image + BP_VERSION);
    unsigned setup_sects = image[BP_SETUP_SECTS] ? image[BP_SETUP_SECTS] : 4;
    size_t setup_size = (setup_sects + 1) * 512;
    guint8 zero_page[4096] = { 0 };

    if (version < 0x0206) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "-kernel %s: boot protocol %u.%02u is too old (2.06 or later needed)",
                    path, version >> 8, version & 0xff);
        return false;
    }
    if (!(image[BP_LOADFLAGS] & LOADFLAG_LOADED_HIGH)) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "-kernel %s: a zImage that loads low is not supported", path);
        return false;
    }
    if (setup_size >= len) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "-kernel %s: truncated bzImage (setup of %zu bytes, file of %zu)",
                    path, setup_size, len);
        return false;
    }

    /* The setup header runs from 0x1f1 to 0x202 + the byte at 0x201. */
    size_t hdr_end = MIN((size_t)0x202 + image[BP_JUMP + 1], sizeof(zero_page));
    memcpy(zero_page + BP_SETUP_SECTS, image + BP_SETUP_SECTS, hdr_end - BP_SETUP_SECTS);

    zero_page[BP_TYPE_OF_LOADER] = 0xff;
    zero_page[BP_LOADFLAGS] |= LOADFLAG_CAN_USE_HEAP;
    wr16(zero_page + BP_HEAP_END_PTR, 0xfe00 - 0x200);

    uint32_t cmdline_max = rd32(image + BP_CMDLINE_SIZE);
    size_t cmdlen = strlen(cmdline ? cmdline : "");
    if (cmdline_max == 0) {
        cmdline_max = 255;
    }
    if (cmdlen > cmdline_max || cmdlen + 1 > X86_BOOT_CMDLINE_MAX) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "-append: command line of %zu bytes exceeds the kernel's limit of %u",
                    cmdlen, cmdline_max);
        return false;
    }
    x86_boot_add_blob(boot, X86_BOOT_CMDLINE_ADDR, cmdline ? cmdline : "", cmdlen + 1);
    wr32(zero_page + BP_CMD_LINE_PTR, X86_BOOT_CMDLINE_ADDR);

    unsigned n = MIN(e820_count(), BP_E820_MAX);
    for (unsigned i = 0; i < n; i++) {
        const E820Entry *e = e820_entry(i);
        guint8 *slot = zero_page + BP_E820_TABLE + i * 20;
        memcpy(slot, &e->addr, 8);
        memcpy(slot + 8, &e->size, 8);
        memcpy(slot + 16, &e->type, 4);
    }
    zero_page[BP_E820_ENTRIES] = (guint8)n;

    size_t kernel_len = len - setup_size;
    if (!x86_boot_stage(boot, X86_BOOT_KERNEL_ADDR, image + setup_size, kernel_len,
                        "-kernel", errp)) {
        return false;
    }

    if (initrd) {
        uint64_t max = rd32(image + BP_INITRD_ADDR_MAX);
        uint64_t addr, size;
        if (max == 0) {
            max = 0x37ffffff;
        }
        if (!x86_boot_load_initrd(boot, initrd, max + 1, &addr, &size, errp)) {
            return false;
        }
        if (addr < X86_BOOT_KERNEL_ADDR + kernel_len) {
            g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_NOSPC,
                        "-initrd %s does not fit in guest RAM above the kernel", initrd);
            return false;
        }
        wr32(zero_page + BP_RAMDISK_IMAGE, (uint32_t)addr);
        wr32(zero_page + BP_RAMDISK_SIZE, (uint32_t)size);
    }
    x86_boot_add_blob(boot, X86_BOOT_ZERO_PAGE_ADDR, zero_page, sizeof(zero_page));

    boot->mode = X86_BOOT_PROTECTED_32;
    boot->entry = rd32(zero_page + BP_CODE32_START);
    if (boot->entry == 0) {
        boot->entry = X86_BOOT_KERNEL_ADDR;
    }
    boot->rsi = X86_BOOT_ZERO_PAGE_ADDR;
    return true;
}
