/*
 * RAM migration bitmaps: which pages of each block the source still has
 * to send. Filled at setup with the pages that exist in the host mapping,
 * then at every sync with the accelerator's dirty log (vCPU writes) and the blocks'
 * VMM bitmaps (Ferry's own writes). Runs with the BQL held; every pass is
 * a word at a time, so a sync costs O(RAM / 64 pages).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <gio/gio.h>

#include "system/accel.h"
#include "migration/migration.h"
#include "migration/ram.h"

#define BITS_PER_WORD       64
#define WORDS_FOR(bits)     (((bits) + BITS_PER_WORD - 1) / BITS_PER_WORD)

/* /proc/self/pagemap: one u64 per virtual page. */
#define PAGEMAP_PRESENT     (1ULL << 63)
#define PAGEMAP_SWAPPED     (1ULL << 62)
#define PAGEMAP_CHUNK       65536       /* entries per read: 512 KiB, 256 MiB of RAM */

/* Mask of the bits of the last word that lie inside a bitmap of @bits bits. */
static inline unsigned long ram_dirty_tail_mask(uint64_t bits)
{
    unsigned rem = bits % BITS_PER_WORD;
    return rem ? (1UL << rem) - 1 : ~0UL;
}

/* OR @w into *@dst; returns how many bits were new. */
static inline uint64_t ram_dirty_or_word(unsigned long *dst, unsigned long w)
{
    unsigned long old = *dst;
    *dst = old | w;
    return (uint64_t)__builtin_popcountl(w & ~old);
}

static void ram_dirty_set_range(RAMMigBlock *b, uint64_t first, uint64_t end)
{
    if (end > b->pages) {
        end = b->pages;
    }
    while (first < end) {
        unsigned bit = first % BITS_PER_WORD;
        uint64_t n = MIN(end - first, (uint64_t)(BITS_PER_WORD - bit));
        unsigned long mask = n == BITS_PER_WORD ? ~0UL : ((1UL << n) - 1) << bit;
        b->dirty += ram_dirty_or_word(&b->bmap[first / BITS_PER_WORD], mask);
        first += n;
    }
}

static void ram_dirty_mark_all(RAMMigBlock *b)
{
    ram_dirty_set_range(b, 0, b->pages);
}

/*
 * Pages of the mapping that are in our page tables (present) or swapped
 * out: for anonymous memory exactly the pages that are not zero-fill.
 * Returns false if pagemap can't be read (the caller marks everything).
 */
static bool ram_dirty_mark_pagemap(RAMMigBlock *b, int pagemap_fd, uint64_t *buf)
{
    uint64_t vpage = (uintptr_t)b->rb->host / TARGET_PAGE_SIZE;

    for (uint64_t first = 0; first < b->pages; first += PAGEMAP_CHUNK) {
        uint64_t n = MIN((uint64_t)PAGEMAP_CHUNK, b->pages - first);
        size_t want = n * sizeof(uint64_t);
        size_t got = 0;
        while (got < want) {
            ssize_t r = pread(pagemap_fd, (char *)buf + got, want - got,
                              (off_t)((vpage + first) * sizeof(uint64_t) + got));
            if (r < 0 && errno == EINTR) {
                continue;
            }
            if (r <= 0) {
                return false;
            }
            got += (size_t)r;
        }
        /* PAGEMAP_CHUNK is a multiple of 64: words of the chunk are words of the bitmap. */
        for (uint64_t i = 0; i < n; i += BITS_PER_WORD) {
            uint64_t m = MIN((uint64_t)BITS_PER_WORD, n - i);
            unsigned long w = 0;
            for (uint64_t j = 0; j < m; j++) {
                w |= (unsigned long)((buf[i + j] & (PAGEMAP_PRESENT | PAGEMAP_SWAPPED)) != 0) << j;
            }
            if (w) {
                b->dirty += ram_dirty_or_word(&b->bmap[(first + i) / BITS_PER_WORD], w);
            }
        }
    }
    return true;
}

/*
 * Pages with data in the backing file (memfd, file), by SEEK_DATA/SEEK_HOLE:
 * holes read as zero on both sides. Returns false if the file system can't
 * say (the caller marks everything).
 */
static bool ram_dirty_mark_file_data(RAMMigBlock *b)
{
    off_t end = (off_t)b->rb->used_length;
    off_t pos = 0;

    while (pos < end) {
        off_t data = lseek(b->rb->fd, pos, SEEK_DATA);
        if (data < 0) {
            return errno == ENXIO;      /* no data past pos */
        }
        if (data >= end) {
            break;
        }
        off_t hole = lseek(b->rb->fd, data, SEEK_HOLE);
        if (hole < 0) {
            return false;
        }
        if (hole <= data) {
            return false;
        }
        ram_dirty_set_range(b, (uint64_t)data / TARGET_PAGE_SIZE,
                            ((uint64_t)hole + TARGET_PAGE_SIZE - 1) / TARGET_PAGE_SIZE);
        pos = hole;
    }
    return true;
}

/*
 * Pages of a shared anonymous (shmem) mapping that sit in the page cache
 * but not in our page tables, as mincore() reports them.
 */
static bool ram_dirty_mark_resident(RAMMigBlock *b)
{
    g_autofree unsigned char *vec = g_malloc(PAGEMAP_CHUNK);

    for (uint64_t first = 0; first < b->pages; first += PAGEMAP_CHUNK) {
        uint64_t n = MIN((uint64_t)PAGEMAP_CHUNK, b->pages - first);
        if (mincore(b->rb->host + first * TARGET_PAGE_SIZE, n * TARGET_PAGE_SIZE, vec) < 0) {
            return false;
        }
        for (uint64_t i = 0; i < n; i += BITS_PER_WORD) {
            uint64_t m = MIN((uint64_t)BITS_PER_WORD, n - i);
            unsigned long w = 0;
            for (uint64_t j = 0; j < m; j++) {
                w |= (unsigned long)(vec[i + j] & 1) << j;
            }
            if (w) {
                b->dirty += ram_dirty_or_word(&b->bmap[(first + i) / BITS_PER_WORD], w);
            }
        }
    }
    return true;
}

/* Swapped-out shmem pages may be invisible to pagemap and mincore. */
static bool ram_dirty_host_has_swap(void)
{
    g_autofree char *swaps = NULL;
    if (!g_file_get_contents("/proc/swaps", &swaps, NULL, NULL)) {
        return true;
    }
    /* A header line, then one line per swap area. */
    char *nl = strchr(swaps, '\n');
    return nl && nl[1] != '\0';
}

/*
 * Mark the pages of @b that exist in the host mapping. What "exists"
 * means depends on the backing:
 *   anonymous private: present or swapped in pagemap (else zero-fill);
 *   anonymous shared:  the same, plus page-cache residency; everything
 *                      if the host has swap;
 *   memfd/file shared: file data (SEEK_DATA);
 *   memfd/file private: file data plus our private copies (pagemap).
 * Anything that can't be determined counts as existing.
 */
void ram_dirty_mark_existing(RAMMigBlock *b)
{
    RAMBlock *rb = b->rb;
    bool need_pagemap = rb->fd < 0 || !rb->shared;
    int pagemap_fd = -1;
    g_autofree uint64_t *buf = NULL;
    bool ok = true;

    if (need_pagemap) {
        pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
        buf = g_new(uint64_t, PAGEMAP_CHUNK);
    }
    if (rb->fd >= 0) {
        ok = ram_dirty_mark_file_data(b);
    } else if (rb->shared) {
        ok = !ram_dirty_host_has_swap() && ram_dirty_mark_resident(b);
    }
    if (ok && need_pagemap) {
        ok = pagemap_fd >= 0 && ram_dirty_mark_pagemap(b, pagemap_fd, buf);
    }
    if (pagemap_fd >= 0) {
        close(pagemap_fd);
    }
    if (!ok) {
        ram_dirty_mark_all(b);
    }
}

/* Merge @src (@nbits bits) into @dst from bit @at; returns the new bits. */
static uint64_t ram_dirty_merge(unsigned long *dst, uint64_t at,
                                const unsigned long *src, uint64_t nbits)
{
    uint64_t words = WORDS_FOR(nbits);
    uint64_t base = at / BITS_PER_WORD;
    unsigned shift = at % BITS_PER_WORD;
    uint64_t added = 0;

    for (uint64_t i = 0; i < words; i++) {
        unsigned long w = src[i];
        if (!w) {
            continue;
        }
        if (i == words - 1) {
            w &= ram_dirty_tail_mask(nbits);
        }
        if (shift == 0) {
            added += ram_dirty_or_word(&dst[base + i], w);
        } else {
            added += ram_dirty_or_word(&dst[base + i], w << shift);
            unsigned long hi = w >> (BITS_PER_WORD - shift);
            if (hi) {
                /* Only bits of pages inside the block spill over. */
                added += ram_dirty_or_word(&dst[base + i + 1], hi);
            }
        }
    }
    return added;
}

/* Take the VMM bitmap of @b (exchange-and-clear per word); merge unless @discard. */
static uint64_t ram_dirty_take_vmm(RAMMigBlock *b, bool discard)
{
    unsigned long *vmm = b->rb->vmm_dirty;
    uint64_t words = WORDS_FOR(b->pages);
    uint64_t added = 0;

    for (uint64_t i = 0; i < words; i++) {
        if (!__atomic_load_n(&vmm[i], __ATOMIC_RELAXED)) {
            continue;
        }
        unsigned long w = __atomic_exchange_n(&vmm[i], 0UL, __ATOMIC_ACQ_REL);
        if (i == words - 1) {
            w &= ram_dirty_tail_mask(b->pages);
        }
        if (!discard && w) {
            added += ram_dirty_or_word(&b->bmap[i], w);
        }
    }
    return added;
}

/* Fetch every dirty source; with @discard only reset them. */
static bool ram_dirty_collect(RAMState *rs, bool discard, GError **errp)
{
    uint64_t added_total = 0;

    for (unsigned i = 0; i < rs->nr_slots; i++) {
        RAMMigSlot *s = &rs->slots[i];
        if (!accel_slot_get_dirty_log(s->index, s->log, errp)) {
            return false;
        }
        if (!discard) {
            uint64_t added = ram_dirty_merge(s->block->bmap, s->first_page, s->log, s->pages);
            s->block->dirty += added;
            added_total += added;
        }
    }
    for (unsigned i = 0; i < rs->nr_blocks; i++) {
        uint64_t added = ram_dirty_take_vmm(&rs->blocks[i], discard);
        rs->blocks[i].dirty += added;
        added_total += added;
    }
    rs->dirty_pages += added_total;
    rs->period_pages += added_total;
    return true;
}

/* The block whose mapping holds the whole of slot @ks, or NULL. */
static RAMMigBlock *ram_dirty_slot_block(RAMState *rs, const AccelSlot *ks, uint64_t *first_page)
{
    uintptr_t host = (uintptr_t)ks->host;
    for (unsigned i = 0; i < rs->nr_blocks; i++) {
        RAMMigBlock *b = &rs->blocks[i];
        uintptr_t start = (uintptr_t)b->rb->host;
        if (host >= start && host - start < b->rb->used_length &&
            ks->size <= b->rb->used_length - (host - start) &&
            (host - start) % TARGET_PAGE_SIZE == 0) {
            *first_page = (host - start) / TARGET_PAGE_SIZE;
            return b;
        }
    }
    return NULL;
}

static void ram_dirty_update_stats(RAMState *rs)
{
    int64_t now = g_get_monotonic_time();
    int64_t elapsed = now - rs->period_start_us;

    mig_stat_add(&mig_stats.dirty_sync_count, 1);
    mig_stat_set(&mig_stats.dirty_bytes_last_sync, rs->dirty_pages * TARGET_PAGE_SIZE);
    /* Like QEMU: the rate over periods of at least a second. */
    if (elapsed >= G_USEC_PER_SEC) {
        mig_stat_set(&mig_stats.dirty_pages_rate,
                     rs->period_pages * G_USEC_PER_SEC / (uint64_t)elapsed);
        rs->period_pages = 0;
        rs->period_start_us = now;
    }
}

bool ram_dirty_setup(RAMState *rs, GError **errp)
{
    GPtrArray *list = ramblock_list();

    rs->nr_blocks = list->len;
    rs->blocks = g_new0(RAMMigBlock, MAX(rs->nr_blocks, 1));
    for (unsigned i = 0; i < rs->nr_blocks; i++) {
        RAMMigBlock *b = &rs->blocks[i];
        b->rb = g_ptr_array_index(list, i);
        b->pages = b->rb->used_length / TARGET_PAGE_SIZE;
        b->bmap = g_new0(unsigned long, MAX(WORDS_FOR(b->pages), 1));
    }

    int nr = accel_slot_count();
    rs->nr_slots = nr > 0 ? (unsigned)nr : 0;
    rs->slots = g_new0(RAMMigSlot, MAX(rs->nr_slots, 1));
    for (unsigned i = 0; i < rs->nr_slots; i++) {
        RAMMigSlot *s = &rs->slots[i];
        const AccelSlot *ks = accel_slot_get((int)i);
        s->index = (int)i;
        s->block = ks ? ram_dirty_slot_block(rs, ks, &s->first_page) : NULL;
        if (!s->block) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED,
                        "ram: guest RAM slot %u is not inside any RAM block", i);
            return false;
        }
        s->pages = ks->size / TARGET_PAGE_SIZE;
        s->log = g_new0(unsigned long, MAX(WORDS_FOR(s->pages), 1));
    }

    /*
     * Order matters. Logging goes on first and the first fetch throws its
     * bits away; only then is the host mapping scanned. A page the guest
     * creates before that fetch is seen by the scan, one it writes after
     * it is in the next sync's log, so none falls between the two.
     */
    for (unsigned i = 0; i < rs->nr_slots; i++) {
        if (!accel_slot_set_dirty_logging(rs->slots[i].index, true, errp)) {
            return false;
        }
        rs->slots[i].logging = true;
    }
    if (!ram_dirty_collect(rs, true, errp)) {
        return false;
    }

    rs->dirty_pages = 0;
    for (unsigned i = 0; i < rs->nr_blocks; i++) {
        ram_dirty_mark_existing(&rs->blocks[i]);
        rs->dirty_pages += rs->blocks[i].dirty;
    }

    rs->period_start_us = g_get_monotonic_time();
    rs->period_pages = 0;
    ram_dirty_update_stats(rs);
    return true;
}

bool ram_dirty_sync(RAMState *rs, GError **errp)
{
    if (!ram_dirty_collect(rs, false, errp)) {
        return false;
    }
    ram_dirty_update_stats(rs);
    return true;
}

void ram_dirty_cleanup(RAMState *rs)
{
    for (unsigned i = 0; rs->slots && i < rs->nr_slots; i++) {
        RAMMigSlot *s = &rs->slots[i];
        if (s->logging) {
            g_autoptr(GError) err = NULL;
            if (!accel_slot_set_dirty_logging(s->index, false, &err)) {
                g_warning("ram: turning dirty logging off: %s", err->message);
            }
            s->logging = false;
        }
        g_free(s->log);
    }
    g_clear_pointer(&rs->slots, g_free);
    rs->nr_slots = 0;
    for (unsigned i = 0; rs->blocks && i < rs->nr_blocks; i++) {
        g_free(rs->blocks[i].bmap);
    }
    g_clear_pointer(&rs->blocks, g_free);
    rs->nr_blocks = 0;
    rs->dirty_pages = 0;
}
