/*
 * Staging boot payloads in guest RAM and starting the boot CPU in the
 * mode its payload expects.
 */
#include <string.h>

#include "hw/x86/boot.h"
#include "hw/x86/e820.h"
#include "system/cpus.h"
#include "system/memory.h"

typedef struct X86BootBlob {
    uint64_t gpa;
    GBytes *data;
} X86BootBlob;

static void x86_boot_blob_free(gpointer p)
{
    X86BootBlob *b = p;
    g_bytes_unref(b->data);
    g_free(b);
}

X86Boot *x86_boot_new(void)
{
    X86Boot *boot = g_new0(X86Boot, 1);
    boot->blobs = g_ptr_array_new_with_free_func(x86_boot_blob_free);
    return boot;
}

void x86_boot_add_blob(X86Boot *boot, uint64_t gpa, const void *data, size_t len)
{
    X86BootBlob *b = g_new(X86BootBlob, 1);
    b->gpa = gpa;
    b->data = g_bytes_new(data, len);
    g_ptr_array_add(boot->blobs, b);
}

bool x86_boot_stage(X86Boot *boot, uint64_t gpa, const void *data, size_t len,
                    const char *what, GError **errp)
{
    if (!guest_phys_to_host(gpa, len)) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_NOSPC,
                    "%s (%zu bytes at 0x%" G_GINT64_MODIFIER "x) does not fit in guest RAM",
                    what, len, gpa);
        return false;
    }
    x86_boot_add_blob(boot, gpa, data, len);
    return true;
}

bool x86_boot_load_kernel(X86Boot *boot, const char *kernel, const char *initrd,
                          const char *cmdline, GError **errp)
{
    g_autofree gchar *contents = NULL;
    gsize len;

    if (!g_file_get_contents(kernel, &contents, &len, errp)) {
        return false;
    }
    const guint8 *p = (const guint8 *)contents;
    if (len >= 4 && memcmp(p, "\x7f" "ELF", 4) == 0) {
        return x86_boot_load_pvh(boot, p, len, kernel, initrd, cmdline, errp);
    }
    if (len >= 0x206 && memcmp(p + 0x202, "HdrS", 4) == 0) {
        return x86_boot_load_bzimage(boot, p, len, kernel, initrd, cmdline, errp);
    }
    g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                "-kernel %s: neither an ELF kernel with a PVH entry note nor a Linux bzImage",
                kernel);
    return false;
}

bool x86_boot_load_initrd(X86Boot *boot, const char *initrd, uint64_t max_addr,
                          uint64_t *addr, uint64_t *size, GError **errp)
{
    g_autofree gchar *contents = NULL;
    gsize len;

    if (!g_file_get_contents(initrd, &contents, &len, errp)) {
        return false;
    }
    /* The top of the highest RAM below max_addr, page aligned. */
    uint64_t top = 0;
    for (unsigned i = 0; i < e820_count(); i++) {
        const E820Entry *e = e820_entry(i);
        if (e->type != E820_RAM || e->addr >= max_addr) {
            continue;
        }
        uint64_t end = MIN(e->addr + e->size, max_addr);
        if (end > top && end - e->addr >= len) {
            top = end;
        }
    }
    uint64_t at = (top - len) & ~0xfffULL;
    if (top < len || at < X86_BOOT_KERNEL_ADDR) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_NOSPC,
                    "-initrd %s (%zu bytes) does not fit in guest RAM", initrd, (size_t)len);
        return false;
    }
    x86_boot_add_blob(boot, at, contents, len);
    *addr = at;
    *size = len;
    return true;
}

bool x86_boot_load_bootsect(X86Boot *boot, const char *drive, GError **errp)
{
    guint8 sector[512];
    g_autoptr(GError) local = NULL;
    g_autoptr(GMappedFile) f = g_mapped_file_new(drive, FALSE, &local);

    if (!f) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_NOENT, "cannot read boot drive: %s",
                    local->message);
        return false;
    }
    if (g_mapped_file_get_length(f) < sizeof(sector)) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "boot drive %s is shorter than one 512-byte sector", drive);
        return false;
    }
    memcpy(sector, g_mapped_file_get_contents(f), sizeof(sector));
    if (sector[510] != 0x55 || sector[511] != 0xaa) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "boot drive %s: first sector lacks the 0x55 0xAA boot signature", drive);
        return false;
    }
    x86_boot_add_blob(boot, 0x7c00, sector, sizeof(sector));
    boot->mode = X86_BOOT_REAL_MODE;
    boot->entry = 0x7c00;
    boot->rdx = 0x80;       /* boot drive number, as a BIOS passes it */
    boot->rsp = 0x7000;
    return true;
}

/*
 * The boot GDT: null, null, then flat 32-bit code at 0x10 and flat data at
 * 0x18, the selectors both Linux's 32-bit boot protocol and PVH name.
 */
static const uint64_t x86_boot_gdt[] = {
    0,
    0,
    0x00cf9b000000ffffULL,  /* 0x10: code, base 0, limit 4 GiB, 32-bit */
    0x00cf93000000ffffULL,  /* 0x18: data, base 0, limit 4 GiB */
    0x00808b000000ffffULL,  /* 0x20: TSS, for a valid TR */
};

static void x86_boot_set_flat_segments(X86CPUState *s)
{
    X86Segment code = {
        .base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 0xb,
        .present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
    };
    X86Segment data = code;
    data.selector = 0x18;
    data.type = 0x3;
    X86Segment tr = {
        .base = 0, .limit = 0xffff, .selector = 0x20, .type = 0xb, .present = 1,
    };
    X86Segment ldt = { .limit = 0xffff, .type = 0x2, .present = 1 };
    s->segs[X86_SEG_CS] = code;
    for (int i = 0; i < 6; i++) {
        if (i != X86_SEG_CS) {
            s->segs[i] = data;
        }
    }
    s->segs[X86_SEG_TR] = tr;
    s->segs[X86_SEG_LDT] = ldt;
    s->gdt.base = X86_BOOT_GDT_ADDR;
    s->gdt.limit = sizeof(x86_boot_gdt) - 1;
    s->idt.base = 0;
    s->idt.limit = 0;
    s->cr0 = 0x11;          /* PE, ET */
    s->cr3 = 0;
    s->cr4 = 0;
    s->efer = 0;
}

static void x86_boot_set_real_mode(X86CPUState *s)
{
    X86Segment seg = {
        .base = 0, .limit = 0xffff, .selector = 0, .type = 0x3, .present = 1, .s = 1,
    };
    for (int i = 0; i < 6; i++) {
        s->segs[i] = seg;
    }
    s->segs[X86_SEG_CS].type = 0xb;
    s->idt.base = 0;
    s->idt.limit = 0x3ff;
    s->cr0 = 0x60000010;
    s->cr3 = 0;
    s->cr4 = 0;
    s->efer = 0;
}

void x86_boot_apply(X86Boot *boot, int bsp)
{
    for (guint i = 0; i < boot->blobs->len; i++) {
        X86BootBlob *b = g_ptr_array_index(boot->blobs, i);
        gsize len;
        const void *data = g_bytes_get_data(b->data, &len);
        guest_phys_write(b->gpa, data, len);
    }

    g_autofree X86CPUState *st = g_new0(X86CPUState, 1);
    g_autoptr(GError) err = NULL;
    if (!cpu_get_state(bsp, st, &err)) {
        g_error("reading the boot CPU's state: %s", err->message);
    }
    if (boot->mode == X86_BOOT_PROTECTED_32) {
        guest_phys_write(X86_BOOT_GDT_ADDR, x86_boot_gdt, sizeof(x86_boot_gdt));
        x86_boot_set_flat_segments(st);
    } else {
        x86_boot_set_real_mode(st);
    }
    memset(st->regs, 0, sizeof(st->regs));
    st->rip = boot->entry;
    st->rflags = 0x2;
    st->regs[X86_RBX] = boot->rbx;
    st->regs[X86_RSI] = boot->rsi;
    st->regs[X86_RDX] = boot->rdx;
    st->regs[X86_RSP] = boot->rsp;
    st->mp_state = X86_MP_RUNNABLE;
    if (!cpu_set_state(bsp, st, &err)) {
        g_error("setting the boot CPU's state: %s", err->message);
    }
}
