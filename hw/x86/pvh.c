/*
 * Booting an ELF kernel through its PVH entry point: load the PT_LOAD
 * segments at their physical addresses, find the XEN_ELFNOTE_PHYS32_ENTRY
 * note, and hand the kernel a struct hvm_start_info (command line, memory
 * map, initrd as module 0) in EBX, in 32-bit protected mode.
 */
#include <elf.h>
#include <string.h>

#include "hw/x86/acpi-build.h"
#include "hw/x86/boot.h"
#include "hw/x86/e820.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC 0x336ec578

/* Layout fixed by the PVH ABI (version 1). */
struct hvm_start_info {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr;
    uint32_t memmap_entries;
    uint32_t reserved;
};

struct hvm_modlist_entry {
    uint64_t paddr;
    uint64_t size;
    uint64_t cmdline_paddr;
    uint64_t reserved;
};

struct hvm_memmap_table_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
    uint32_t reserved;
};

G_STATIC_ASSERT(sizeof(struct hvm_start_info) == 56);

#define PVH_MODLIST_ADDR (X86_BOOT_PVH_INFO_ADDR + 0x40)
#define PVH_MEMMAP_ADDR  (X86_BOOT_PVH_INFO_ADDR + 0x80)

/* A note's name and descriptor are padded to 4 bytes. */
static bool pvh_find_entry_in_notes(const guint8 *notes, size_t len, uint64_t *entry)
{
    size_t off = 0;
    while (len - off >= sizeof(Elf64_Nhdr)) {
        Elf64_Nhdr nh;
        memcpy(&nh, notes + off, sizeof(nh));
        size_t name_sz = ((size_t)nh.n_namesz + 3) & ~(size_t)3;
        size_t desc_sz = ((size_t)nh.n_descsz + 3) & ~(size_t)3;
        size_t body = off + sizeof(nh);
        if (name_sz > len - body || desc_sz > len - body - name_sz) {
            return false;
        }
        if (nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY && nh.n_namesz == 4 &&
            memcmp(notes + body, "Xen", 4) == 0 && nh.n_descsz >= 4) {
            uint64_t v = 0;
            memcpy(&v, notes + body + name_sz, nh.n_descsz >= 8 ? 8 : 4);
            *entry = nh.n_descsz >= 8 ? v : (uint32_t)v;
            return true;
        }
        off = body + name_sz + desc_sz;
    }
    return false;
}

typedef struct ElfSegment {
    uint64_t paddr;
    uint64_t offset;
    uint64_t filesz;
    uint64_t memsz;
    uint32_t type;
} ElfSegment;

/* Program headers of an ELF32 or ELF64 image, checked against the file. */
static GArray *pvh_read_segments(const guint8 *elf, size_t len, const char *path,
                                 GError **errp)
{
    bool is64 = elf[EI_CLASS] == ELFCLASS64;
    uint64_t phoff;
    unsigned phnum, phentsize;

    if (elf[EI_DATA] != ELFDATA2LSB || (elf[EI_CLASS] != ELFCLASS64 &&
                                        elf[EI_CLASS] != ELFCLASS32)) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "-kernel %s: not a little-endian ELF32/ELF64 file", path);
        return NULL;
    }
    if (is64) {
        Elf64_Ehdr eh;
        if (len < sizeof(eh)) {
            goto truncated;
        }
        memcpy(&eh, elf, sizeof(eh));
        phoff = eh.e_phoff;
        phnum = eh.e_phnum;
        phentsize = eh.e_phentsize;
        if (phentsize != sizeof(Elf64_Phdr)) {
            goto truncated;
        }
    } else {
        Elf32_Ehdr eh;
        if (len < sizeof(eh)) {
            goto truncated;
        }
        memcpy(&eh, elf, sizeof(eh));
        phoff = eh.e_phoff;
        phnum = eh.e_phnum;
        phentsize = eh.e_phentsize;
        if (phentsize != sizeof(Elf32_Phdr)) {
            goto truncated;
        }
    }
    if (phoff > len || (uint64_t)phnum * phentsize > len - phoff) {
        goto truncated;
    }

    GArray *segs = g_array_new(FALSE, TRUE, sizeof(ElfSegment));
    for (unsigned i = 0; i < phnum; i++) {
        ElfSegment s;
        if (is64) {
            Elf64_Phdr ph;
            memcpy(&ph, elf + phoff + (uint64_t)i * phentsize, sizeof(ph));
            s = (ElfSegment) { ph.p_paddr, ph.p_offset, ph.p_filesz, ph.p_memsz, ph.p_type };
        } else {
            Elf32_Phdr ph;
            memcpy(&ph, elf + phoff + (uint64_t)i * phentsize, sizeof(ph));
            s = (ElfSegment) { ph.p_paddr, ph.p_offset, ph.p_filesz, ph.p_memsz, ph.p_type };
        }
        if (s.offset > len || s.filesz > len - s.offset || s.filesz > s.memsz) {
            g_array_unref(segs);
            goto truncated;
        }
        g_array_append_val(segs, s);
    }
    return segs;

truncated:
    g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                "-kernel %s: truncated or malformed ELF headers", path);
    return NULL;
}

bool x86_boot_load_pvh(X86Boot *boot, const guint8 *elf, size_t len, const char *path,
                       const char *initrd, const char *cmdline, GError **errp)
{
    g_autoptr(GArray) segs = pvh_read_segments(elf, len, path, errp);
    uint64_t entry = 0;
    bool have_entry = false;
    uint64_t kernel_end = 0;

    if (!segs) {
        return false;
    }
    for (guint i = 0; i < segs->len; i++) {
        ElfSegment *s = &g_array_index(segs, ElfSegment, i);
        if (s->type == PT_NOTE && !have_entry) {
            have_entry = pvh_find_entry_in_notes(elf + s->offset, s->filesz, &entry);
        }
    }
    if (!have_entry) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "-kernel %s: ELF kernel without a PVH entry note "
                    "(XEN_ELFNOTE_PHYS32_ENTRY); Ferry boots ELF kernels only through PVH",
                    path);
        return false;
    }
    for (guint i = 0; i < segs->len; i++) {
        ElfSegment *s = &g_array_index(segs, ElfSegment, i);
        if (s->type != PT_LOAD || s->memsz == 0) {
            continue;
        }
        if (s->paddr < X86_BOOT_KERNEL_ADDR) {
            g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                        "-kernel %s: segment at 0x%" G_GINT64_MODIFIER "x is below 1 MiB",
                        path, s->paddr);
            return false;
        }
        g_autofree guint8 *image = g_malloc0(s->memsz);
        memcpy(image, elf + s->offset, s->filesz);
        if (!x86_boot_stage(boot, s->paddr, image, s->memsz, "-kernel segment", errp)) {
            return false;
        }
        kernel_end = MAX(kernel_end, s->paddr + s->memsz);
    }
    if (entry < X86_BOOT_KERNEL_ADDR || entry >= kernel_end) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "-kernel %s: PVH entry 0x%" G_GINT64_MODIFIER "x lies outside the kernel",
                    path, entry);
        return false;
    }

    struct hvm_start_info info = {
        .magic = HVM_START_MAGIC,
        .version = 1,
        .cmdline_paddr = X86_BOOT_CMDLINE_ADDR,
        .memmap_paddr = PVH_MEMMAP_ADDR,
        .memmap_entries = e820_count(),
        .rsdp_paddr = ACPI_TABLES_ADDR,
    };

    size_t cmdlen = strlen(cmdline ? cmdline : "") + 1;
    if (cmdlen > X86_BOOT_CMDLINE_MAX) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "-append: command line of %zu bytes exceeds %d", cmdlen,
                    X86_BOOT_CMDLINE_MAX);
        return false;
    }
    x86_boot_add_blob(boot, X86_BOOT_CMDLINE_ADDR, cmdline ? cmdline : "", cmdlen);

    struct hvm_memmap_table_entry map[E820_MAX];
    for (unsigned i = 0; i < e820_count(); i++) {
        const E820Entry *e = e820_entry(i);
        map[i] = (struct hvm_memmap_table_entry) { e->addr, e->size, e->type, 0 };
    }
    x86_boot_add_blob(boot, PVH_MEMMAP_ADDR, map, e820_count() * sizeof(map[0]));

    if (initrd) {
        uint64_t addr, size;
        if (!x86_boot_load_initrd(boot, initrd, 0x100000000ULL, &addr, &size, errp)) {
            return false;
        }
        if (addr < kernel_end) {
            g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_NOSPC,
                        "-initrd %s does not fit in guest RAM above the kernel", initrd);
            return false;
        }
        struct hvm_modlist_entry mod = { .paddr = addr, .size = size };
        x86_boot_add_blob(boot, PVH_MODLIST_ADDR, &mod, sizeof(mod));
        info.nr_modules = 1;
        info.modlist_paddr = PVH_MODLIST_ADDR;
    }
    x86_boot_add_blob(boot, X86_BOOT_PVH_INFO_ADDR, &info, sizeof(info));

    boot->mode = X86_BOOT_PROTECTED_32;
    boot->entry = entry;
    boot->rbx = X86_BOOT_PVH_INFO_ADDR;
    return true;
}
