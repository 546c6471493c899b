/*
 * Segmentation checks, the page-table walk and the software TLB.
 *
 * A TLB entry maps one linear page to a host pointer for one kind of
 * access (read, write, fetch) at one privilege (supervisor, user), with the
 * permission already checked, so a hit is an index, a compare and an add.
 * Write entries exist only for RAM pages already passed to mark_dirty() in
 * this dirty round; MMIO never gets an entry.
 */
#include "soft-internal.h"

#define PTE_P       (1ULL << 0)
#define PTE_RW      (1ULL << 1)
#define PTE_US      (1ULL << 2)
#define PTE_A       (1ULL << 5)
#define PTE_D       (1ULL << 6)
#define PTE_PS      (1ULL << 7)
#define PTE_G       (1ULL << 8)
#define PTE_NX      (1ULL << 63)
#define PTE_ADDR    0x000ffffffffff000ULL

#define PFERR_P     1
#define PFERR_W     2
#define PFERR_U     4
#define PFERR_RSVD  8
#define PFERR_I     16

static GMutex global_lock;

void soft_lock_global(void)
{
    g_mutex_lock(&global_lock);
}

void soft_unlock_global(void)
{
    g_mutex_unlock(&global_lock);
}

void soft_tlb_flush_all(SoftCPU *cpu)
{
    for (int m = 0; m < 2; m++) {
        for (int a = 0; a < ACC_NR; a++) {
            for (unsigned i = 0; i < TLB_SIZE; i++) {
                cpu->tlb[m][a][i].tag = TLB_INVALID;
            }
        }
    }
    cpu->tlb_has_large = false;
    cpu->fetch_gen++;
}

void soft_tlb_flush_nonglobal(SoftCPU *cpu)
{
    for (int m = 0; m < 2; m++) {
        for (int a = 0; a < ACC_NR; a++) {
            for (unsigned i = 0; i < TLB_SIZE; i++) {
                if (!cpu->tlbinfo[m][a][i].global) {
                    cpu->tlb[m][a][i].tag = TLB_INVALID;
                }
            }
        }
    }
    cpu->fetch_gen++;
}

void soft_tlb_flush_page(SoftCPU *cpu, uint64_t lin)
{
    unsigned i = (lin >> 12) & (TLB_SIZE - 1);

    if (cpu->tlb_has_large) {
        /* A large page covers many slots; forget everything rather than track. */
        soft_tlb_flush_all(cpu);
        return;
    }
    for (int m = 0; m < 2; m++) {
        for (int a = 0; a < ACC_NR; a++) {
            cpu->tlb[m][a][i].tag = TLB_INVALID;
        }
    }
    cpu->fetch_gen++;
}

void soft_tlb_drop_write_entries(SoftCPU *cpu)
{
    for (int m = 0; m < 2; m++) {
        for (unsigned i = 0; i < TLB_SIZE; i++) {
            cpu->tlb[m][ACC_WRITE][i].tag = TLB_INVALID;
        }
    }
}

/* A new dirty round: every page goes through mark_dirty() again. */
void soft_tlb_drop_writes(SoftCPU *cpu)
{
    soft_tlb_drop_write_entries(cpu);
    memset(cpu->dirty_marked, 0, sizeof(cpu->dirty_marked));
}

static uint8_t *ram_page(SoftCPU *cpu, uint64_t gpa)
{
    return cpu->hooks->ram_page(cpu->opaque, gpa & PAGE_MASK);
}

static void mark_dirty(SoftCPU *cpu, uint64_t gpa_page)
{
    uint64_t key = gpa_page | 1;
    uint64_t *slot = &cpu->dirty_marked[((gpa_page >> 12) ^ (gpa_page >> 24)) &
                                        (SOFT_DIRTY_FILTER - 1)];

    if (*slot != key) {
        *slot = key;
        if (cpu->hooks->mark_dirty) {
            cpu->hooks->mark_dirty(cpu->opaque, gpa_page);
        }
    }
}

/*
 * The walker set accessed/dirty bits in the table at @table_gpa: a write
 * like any other, for migration and for decoded code that shares the page.
 */
static void walker_wrote(SoftCPU *cpu, uint64_t table_gpa)
{
    mark_dirty(cpu, table_gpa & PAGE_MASK);
    if (soft_code_page(table_gpa)) {
        soft_code_written(table_gpa);
        cpu->exit_block = 1;
    }
}

/* Physical access for page-table entries: RAM only, else all ones. */
static uint64_t *pte_ptr(SoftCPU *cpu, uint64_t gpa)
{
    uint8_t *page = ram_page(cpu, gpa);

    return page ? (uint64_t *)(page + (gpa & 0xff8)) : NULL;
}

static uint32_t *pte32_ptr(SoftCPU *cpu, uint64_t gpa)
{
    uint8_t *page = ram_page(cpu, gpa);

    return page ? (uint32_t *)(page + (gpa & 0xffc)) : NULL;
}

static void __attribute__((noreturn))
page_fault(SoftCPU *cpu, uint64_t lin, uint32_t err)
{
    cpu->cr2 = lin;
    soft_raise(cpu, EXC_PF, err);
}

/*
 * Walk the guest's page tables for @lin. Returns the guest-physical address
 * and sets *global and *large; raises #PF on a missing or forbidden mapping.
 * Accessed and dirty bits are set atomically once the access is allowed.
 */
static uint64_t page_walk(SoftCPU *cpu, uint64_t lin, int acc, bool user,
                          bool *global, bool *large)
{
    bool nxe = cpu->efer & X86_EFER_NXE;
    uint32_t err_base = (acc == ACC_WRITE ? PFERR_W : 0) | (user ? PFERR_U : 0) |
                        (acc == ACC_FETCH && nxe ? PFERR_I : 0);
    uint64_t rw = 1, us = 1, nx = 0;
    uint64_t gpa;
    bool leaf_global = false;

    *large = false;

    if (!(cpu->cr4 & X86_CR4_PAE)) {
        /* Legacy two-level paging, 4 KiB or 4 MiB (PSE) pages. */
        uint32_t *pde_p = pte32_ptr(cpu, (cpu->cr3 & 0xfffff000) + ((lin >> 22) & 0x3ff) * 4);
        uint32_t pde = pde_p ? __atomic_load_n(pde_p, __ATOMIC_RELAXED) : 0;
        uint32_t *pte_p;
        uint32_t pte;

        if (!(pde & PTE_P)) {
            page_fault(cpu, lin, err_base);
        }
        rw &= pde >> 1;
        us &= pde >> 2;
        if ((pde & PTE_PS) && (cpu->cr4 & X86_CR4_PSE)) {
            pte_p = NULL;
            pte = pde;
            gpa = (pde & 0xffc00000) | (lin & 0x3fffff) |
                  ((uint64_t)((pde >> 13) & 0xff) << 32);
            *large = true;
        } else {
            pte_p = pte32_ptr(cpu, (pde & 0xfffff000) + ((lin >> 12) & 0x3ff) * 4);
            pte = pte_p ? __atomic_load_n(pte_p, __ATOMIC_RELAXED) : 0;
            if (!(pte & PTE_P)) {
                page_fault(cpu, lin, err_base);
            }
            rw &= pte >> 1;
            us &= pte >> 2;
            gpa = (pte & 0xfffff000) | (lin & 0xfff);
        }
        leaf_global = (pte & PTE_G) && (cpu->cr4 & X86_CR4_PGE);
        if ((user && !(us & 1)) ||
            (acc == ACC_WRITE && !(rw & 1) && (user || (cpu->cr0 & X86_CR0_WP)))) {
            page_fault(cpu, lin, err_base | PFERR_P);
        }
        if (!(pde & PTE_A)) {
            __atomic_fetch_or(pde_p, (uint32_t)PTE_A, __ATOMIC_SEQ_CST);
            walker_wrote(cpu, cpu->cr3 & 0xfffff000);
        }
        if (pte_p) {
            uint32_t set = PTE_A | (acc == ACC_WRITE ? PTE_D : 0);
            if ((pte & set) != set) {
                __atomic_fetch_or(pte_p, set, __ATOMIC_SEQ_CST);
                walker_wrote(cpu, pde & 0xfffff000);
            }
        } else if (acc == ACC_WRITE && !(pde & PTE_D)) {
            /* With A already set the branch above did not report the PD page. */
            __atomic_fetch_or(pde_p, (uint32_t)PTE_D, __ATOMIC_SEQ_CST);
            walker_wrote(cpu, cpu->cr3 & 0xfffff000);
        }
        *global = leaf_global;
        return gpa;
    }

    /* PAE (three levels) or long mode (four levels). */
    uint64_t *ptrs[4];
    uint64_t ptr_gpa[4];
    int nptrs = 0;
    uint64_t entry = 0, table;
    int level;
    uint64_t rsvd_nx = nxe ? 0 : PTE_NX;

    if (cpu_lma(cpu)) {
        table = cpu->cr3 & PTE_ADDR;
        level = 4;
    } else {
        /* The PDPTE holds no permission bits in legacy PAE mode. */
        uint64_t *p = pte_ptr(cpu, (cpu->cr3 & 0xffffffe0) + ((lin >> 30) & 3) * 8);
        entry = p ? __atomic_load_n(p, __ATOMIC_RELAXED) : 0;
        if (!(entry & PTE_P)) {
            page_fault(cpu, lin, err_base);
        }
        table = entry & PTE_ADDR;
        level = 2;
    }
    for (;;) {
        unsigned shift = 12 + 9 * (level - 1);
        uint64_t *p = pte_ptr(cpu, table + ((lin >> shift) & 0x1ff) * 8);

        entry = p ? __atomic_load_n(p, __ATOMIC_RELAXED) : 0;
        if (!(entry & PTE_P)) {
            page_fault(cpu, lin, err_base);
        }
        if (entry & rsvd_nx) {
            page_fault(cpu, lin, err_base | PFERR_P | PFERR_RSVD);
        }
        ptr_gpa[nptrs] = table;
        ptrs[nptrs++] = p;
        rw &= entry >> 1;
        us &= entry >> 2;
        nx |= entry >> 63;
        if (level == 1) {
            gpa = (entry & PTE_ADDR) | (lin & 0xfff);
            break;
        }
        if (entry & PTE_PS) {
            if (level == 4 || (level == 3 && !cpu_lma(cpu))) {
                page_fault(cpu, lin, err_base | PFERR_P | PFERR_RSVD);
            }
            uint64_t psize = 1ULL << shift;
            gpa = (entry & PTE_ADDR & ~(psize - 1)) | (lin & (psize - 1));
            *large = true;
            break;
        }
        table = entry & PTE_ADDR;
        level--;
    }
    leaf_global = (entry & PTE_G) && (cpu->cr4 & X86_CR4_PGE);
    if ((user && !(us & 1)) ||
        (acc == ACC_WRITE && !(rw & 1) && (user || (cpu->cr0 & X86_CR0_WP))) ||
        (acc == ACC_FETCH && nxe && (nx & 1))) {
        page_fault(cpu, lin, err_base | PFERR_P);
    }
    for (int i = 0; i < nptrs; i++) {
        uint64_t set = PTE_A;
        if (i == nptrs - 1 && acc == ACC_WRITE) {
            set |= PTE_D;
        }
        if ((__atomic_load_n(ptrs[i], __ATOMIC_RELAXED) & set) != set) {
            __atomic_fetch_or(ptrs[i], set, __ATOMIC_SEQ_CST);
            walker_wrote(cpu, ptr_gpa[i]);
        }
    }
    *global = leaf_global;
    return gpa;
}

/*
 * Translate @lin for @acc at privilege @midx (1: user). Fills the TLB when
 * the page is RAM and returns its host pointer in *host (NULL for MMIO).
 * A write to a page holding decoded code gets its host pointer but no TLB
 * entry, and *code set: the writer must call soft_code_written() after.
 */
static uint64_t translate(SoftCPU *cpu, uint64_t lin, int acc, int midx, uint8_t **host,
                          bool *code)
{
    unsigned i = (lin >> 12) & (TLB_SIZE - 1);
    TLBEntry *e = &cpu->tlb[midx][acc][i];
    bool global = false, large = false;
    uint64_t gpa;
    uint8_t *page;

    *code = false;
    if (e->tag == (lin & PAGE_MASK)) {
        *host = (uint8_t *)(e->addend + lin);
        return cpu->tlbinfo[midx][acc][i].gpa | (lin & 0xfff);
    }
    if (cpu->cr0 & X86_CR0_PG) {
        gpa = page_walk(cpu, lin, acc, midx == 1, &global, &large);
    } else {
        gpa = cpu_lma(cpu) ? lin : lin & 0xffffffff;
    }
    page = ram_page(cpu, gpa);
    if (!page) {
        *host = NULL;
        return gpa;
    }
    *code = false;
    if (acc == ACC_WRITE) {
        mark_dirty(cpu, gpa & PAGE_MASK);
        if (soft_code_page(gpa)) {
            *code = true;
            *host = page + (gpa & 0xfff);
            return gpa;
        }
    }
    if (acc == ACC_FETCH) {
        cpu->fetch_gen++;       /* the slot may have held another mapping */
    }
    e->tag = lin & PAGE_MASK;
    e->addend = (uintptr_t)page - (lin & PAGE_MASK);
    cpu->tlbinfo[midx][acc][i].gpa = gpa & PAGE_MASK;
    cpu->tlbinfo[midx][acc][i].global = global;
    if (large) {
        cpu->tlb_has_large = true;
    }
    *host = page + (gpa & 0xfff);
    return gpa;
}

uint64_t soft_translate(SoftCPU *cpu, uint64_t lin, int acc, int midx, uint8_t **host)
{
    bool code;
    uint64_t gpa = translate(cpu, lin, acc, midx, host, &code);

    if (code) {
        *host = NULL;           /* callers take their slow path */
    }
    return gpa;
}

uint64_t soft_lin_read(SoftCPU *cpu, uint64_t lin, unsigned size, int midx)
{
    uint8_t *host;
    uint64_t gpa;

    if (((lin & 0xfff) + size) > PAGE_SIZE) {
        /* Both pages are checked before anything is read. */
        unsigned first = PAGE_SIZE - (lin & 0xfff);
        uint64_t lo, hi;

        soft_translate(cpu, lin, ACC_READ, midx, &host);
        soft_translate(cpu, lin + first, ACC_READ, midx, &host);
        lo = 0;
        hi = 0;
        for (unsigned k = 0; k < first; k++) {
            lo |= soft_lin_read(cpu, lin + k, 1, midx) << (8 * k);
        }
        for (unsigned k = first; k < size; k++) {
            hi |= soft_lin_read(cpu, lin + k, 1, midx) << (8 * k);
        }
        return lo | hi;
    }
    gpa = soft_translate(cpu, lin, ACC_READ, midx, &host);
    if (host) {
        return soft_host_load(host, size);
    }
    return cpu->hooks->mmio_read(cpu->opaque, gpa, size);
}

void soft_lin_write(SoftCPU *cpu, uint64_t lin, unsigned size, uint64_t v, int midx)
{
    uint8_t *host;
    uint64_t gpa;

    if (((lin & 0xfff) + size) > PAGE_SIZE) {
        unsigned first = PAGE_SIZE - (lin & 0xfff);

        soft_translate(cpu, lin, ACC_WRITE, midx, &host);
        soft_translate(cpu, lin + first, ACC_WRITE, midx, &host);
        for (unsigned k = 0; k < size; k++) {
            soft_lin_write(cpu, lin + k, 1, v >> (8 * k), midx);
        }
        return;
    }
    {
        bool code;
        gpa = translate(cpu, lin, ACC_WRITE, midx, &host, &code);
        if (host) {
            soft_host_store(host, size, v);
            if (code) {
                /* After the data: a racing decoder then sees the new bytes. */
                soft_code_written(gpa);
                cpu->exit_block = 1;
            }
            return;
        }
    }
    cpu->hooks->mmio_write(cpu->opaque, gpa, v & size_mask(size), size);
}

/* Host pointer to [lin, lin+size) if it is RAM within one page, else NULL. */
uint8_t *soft_lin_ptr(SoftCPU *cpu, uint64_t lin, unsigned size, int acc, int midx)
{
    uint8_t *host;

    if (((lin & 0xfff) + size) > PAGE_SIZE) {
        unsigned first = PAGE_SIZE - (lin & 0xfff);
        soft_translate(cpu, lin, acc, midx, &host);
        soft_translate(cpu, lin + first, acc, midx, &host);
        return NULL;
    }
    soft_translate(cpu, lin, acc, midx, &host);
    return host;
}

/*
 * A locked access that host atomics cannot do (split across pages, MMIO,
 * a page holding decoded code). Every check that can raise an exception
 * happens here, before the caller takes the global lock: an exception
 * leaves by siglongjmp and would keep the lock held for good. Write
 * permission implies read permission, so one write translation per page
 * covers the whole read-modify-write.
 */
void soft_locked_prepare(SoftCPU *cpu, int seg, uint64_t ea, unsigned size,
                         SoftLockedAccess *la)
{
    uint64_t lin = soft_seg_check(cpu, seg, ea, size, true);
    unsigned room = PAGE_SIZE - (lin & 0xfff);

    la->len[0] = size < room ? size : room;
    la->len[1] = size - la->len[0];
    for (int i = 0; i < 2; i++) {
        la->host[i] = NULL;
        la->code[i] = false;
        la->gpa[i] = 0;
    }
    la->gpa[0] = translate(cpu, lin, ACC_WRITE, cpu->midx, &la->host[0], &la->code[0]);
    if (la->len[1]) {
        la->gpa[1] = translate(cpu, lin + la->len[0], ACC_WRITE, cpu->midx,
                               &la->host[1], &la->code[1]);
    }
}

/* Which page byte @off of the access is in, and its offset there. */
static int locked_piece(const SoftLockedAccess *la, unsigned off, unsigned *poff)
{
    if (off < la->len[0]) {
        *poff = off;
        return 0;
    }
    *poff = off - la->len[0];
    return 1;
}

uint64_t soft_locked_load(SoftCPU *cpu, const SoftLockedAccess *la, unsigned off,
                          unsigned size)
{
    unsigned po;
    int i = locked_piece(la, off, &po);
    uint64_t v = 0;

    if (po + size <= la->len[i]) {
        if (la->host[i]) {
            return soft_host_load(la->host[i] + po, size);
        }
        return cpu->hooks->mmio_read(cpu->opaque, la->gpa[i] + po, size);
    }
    /* Straddles the two pages: bytewise, as soft_lin_read() does. */
    for (unsigned k = 0; k < size; k++) {
        uint64_t b;

        i = locked_piece(la, off + k, &po);
        b = la->host[i] ? la->host[i][po]
                        : cpu->hooks->mmio_read(cpu->opaque, la->gpa[i] + po, 1) & 0xff;
        v |= b << (8 * k);
    }
    return v;
}

static void locked_wrote(SoftCPU *cpu, const SoftLockedAccess *la, int i, unsigned po)
{
    if (la->code[i]) {
        soft_code_written(la->gpa[i] + po);
        cpu->exit_block = 1;
    }
}

void soft_locked_store(SoftCPU *cpu, const SoftLockedAccess *la, unsigned off,
                       unsigned size, uint64_t v)
{
    unsigned po;
    int i = locked_piece(la, off, &po);

    if (po + size <= la->len[i]) {
        if (la->host[i]) {
            soft_host_store(la->host[i] + po, size, v);
            locked_wrote(cpu, la, i, po);
        } else {
            cpu->hooks->mmio_write(cpu->opaque, la->gpa[i] + po, v & size_mask(size), size);
        }
        return;
    }
    for (unsigned k = 0; k < size; k++) {
        uint8_t b = v >> (8 * k);

        i = locked_piece(la, off + k, &po);
        if (la->host[i]) {
            la->host[i][po] = b;
            locked_wrote(cpu, la, i, po);
        } else {
            cpu->hooks->mmio_write(cpu->opaque, la->gpa[i] + po, b, 1);
        }
    }
}

uint64_t soft_phys_read(SoftCPU *cpu, uint64_t gpa, unsigned size)
{
    uint8_t *page = ram_page(cpu, gpa);

    if (page && (gpa & 0xfff) + size <= PAGE_SIZE) {
        return soft_host_load(page + (gpa & 0xfff), size);
    }
    return cpu->hooks->mmio_read(cpu->opaque, gpa, size);
}

void soft_phys_write(SoftCPU *cpu, uint64_t gpa, unsigned size, uint64_t v)
{
    uint8_t *page = ram_page(cpu, gpa);

    if (page && (gpa & 0xfff) + size <= PAGE_SIZE) {
        mark_dirty(cpu, gpa & PAGE_MASK);
        soft_host_store(page + (gpa & 0xfff), size, v);
        soft_code_written(gpa);
        return;
    }
    cpu->hooks->mmio_write(cpu->opaque, gpa, v, size);
}

static void __attribute__((noreturn)) seg_fault(SoftCPU *cpu, int seg)
{
    soft_raise(cpu, seg == X86_SEG_SS ? EXC_SS : EXC_GP, 0);
}

/*
 * Effective address -> linear address, with the limit, type and canonical
 * checks of the current mode.
 */
uint64_t soft_seg_check(SoftCPU *cpu, int seg, uint64_t ea, unsigned size, bool write)
{
    const X86Segment *s = &cpu->segs[seg];

    if (unlikely(cpu->ac_check) && size <= 8 && (ea & (size - 1))) {
        /* Segment bases are 16-byte aligned in practice; the offset decides. */
        if (((s->base + ea) & (size - 1)) != 0) {
            soft_raise(cpu, EXC_AC, 0);
        }
    }
    if (cpu->long64) {
        uint64_t lin = ea;
        if (seg >= X86_SEG_FS) {
            lin += s->base;
        }
        /* Canonical: bits 63..47 all equal, for first and last byte. */
        if (unlikely((uint64_t)(((int64_t)lin >> 47) + 1) > 1 ||
                     (uint64_t)(((int64_t)(lin + size - 1) >> 47) + 1) > 1)) {
            seg_fault(cpu, seg);
        }
        return lin;
    }
    if (cpu_pe(cpu) && !cpu_vm86(cpu)) {
        if (unlikely(s->unusable || !s->present)) {
            seg_fault(cpu, seg);
        }
        if (write && ((s->type & 0xa) != 0x2)) {
            soft_raise(cpu, seg == X86_SEG_SS ? EXC_SS : EXC_GP, 0);
        }
        if (!write && (s->type & 0xa) == 0x8) {
            seg_fault(cpu, seg);        /* execute-only code */
        }
    }
    if ((s->type & 0xc) == 0x4 && cpu_pe(cpu)) {
        /* Expand-down data: valid offsets are above the limit. */
        uint64_t top = s->db ? 0xffffffffULL : 0xffff;
        if (ea <= s->limit || ea + size - 1 > top) {
            seg_fault(cpu, seg);
        }
    } else if (unlikely(ea + size - 1 > s->limit)) {
        seg_fault(cpu, seg);
    }
    return (s->base + ea) & 0xffffffffULL;
}

uint64_t soft_read_slow(SoftCPU *cpu, int seg, uint64_t ea, unsigned size)
{
    uint64_t lin = soft_seg_check(cpu, seg, ea, size, false);

    return soft_tlb_load(cpu, lin, size, cpu->midx);
}

void soft_write_slow(SoftCPU *cpu, int seg, uint64_t ea, unsigned size, uint64_t v)
{
    uint64_t lin = soft_seg_check(cpu, seg, ea, size, true);
    TLBEntry *e = &cpu->tlb[cpu->midx][ACC_WRITE][(lin >> 12) & (TLB_SIZE - 1)];

    if (likely(e->tag == (lin & PAGE_MASK) && (lin & 0xfff) + size <= PAGE_SIZE)) {
        soft_host_store((uint8_t *)(e->addend + lin), size, v);
        return;
    }
    soft_lin_write(cpu, lin, size, v, cpu->midx);
}

void soft_read_bytes(SoftCPU *cpu, int seg, uint64_t ea, void *buf, unsigned n)
{
    uint64_t lin = soft_seg_check(cpu, seg, ea, n, false);
    uint8_t *out = buf;
    uint8_t *p = soft_lin_ptr(cpu, lin, n, ACC_READ, cpu->midx);

    if (p) {
        memcpy(out, p, n);
        return;
    }
    for (unsigned k = 0; k < n; k++) {
        out[k] = soft_lin_read(cpu, lin + k, 1, cpu->midx);
    }
}

void soft_write_bytes(SoftCPU *cpu, int seg, uint64_t ea, const void *buf, unsigned n)
{
    uint64_t lin = soft_seg_check(cpu, seg, ea, n, true);
    const uint8_t *in = buf;
    uint8_t *p = soft_lin_ptr(cpu, lin, n, ACC_WRITE, cpu->midx);

    if (p) {
        memcpy(p, in, n);
        return;
    }
    for (unsigned k = 0; k < n; k++) {
        soft_lin_write(cpu, lin + k, 1, in[k], cpu->midx);
    }
}

uint8_t *soft_rmw_ptr(SoftCPU *cpu, int seg, uint64_t ea, unsigned size)
{
    uint64_t lin = soft_seg_check(cpu, seg, ea, size, true);
    TLBEntry *e = &cpu->tlb[cpu->midx][ACC_WRITE][(lin >> 12) & (TLB_SIZE - 1)];

    if (likely(e->tag == (lin & PAGE_MASK) && (lin & 0xfff) + size <= PAGE_SIZE)) {
        return (uint8_t *)(e->addend + lin);
    }
    return soft_lin_ptr(cpu, lin, size, ACC_WRITE, cpu->midx);
}
