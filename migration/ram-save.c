/*
 * RAM migration, source side: find the next page marked in the migration
 * bitmaps, clear its bit, and send it as a ZERO record or as a PAGE
 * record whose 4 KiB are queued straight from guest memory (no copy, no
 * allocation per page). The records are defined in ram-format.h.
 */
#include <string.h>

#include "migration/migration.h"
#include "migration/multifd.h"
#include "migration/options.h"
#include "migration/ram.h"
#include "migration/ram-format.h"

#define BITS_PER_WORD       64
#define WORDS_FOR(bits)     (((bits) + BITS_PER_WORD - 1) / BITS_PER_WORD)

/* A rate-limited call returns after this long so the core stays responsive. */
#define RAM_SAVE_SLICE_US   (50 * 1000)
/* Pages between clock reads. */
#define RAM_SAVE_CLOCK_EVERY 64

/* Eight 32-byte lanes: 256 bytes per test of the accumulator. */
typedef uint64_t ram_save_vec __attribute__((vector_size(32), aligned(8), may_alias));

bool ram_page_is_zero(const void *page)
{
    const uint64_t *w = page;

    /* Data pages nearly always differ from zero in their first bytes. */
    if (w[0] | w[1] | w[2] | w[3]) {
        return false;
    }
    const ram_save_vec *v = page;
    const size_t per_vec = sizeof(ram_save_vec);
    for (size_t i = 0; i < TARGET_PAGE_SIZE / per_vec; i += 8) {
        ram_save_vec acc = v[i] | v[i + 1] | v[i + 2] | v[i + 3] |
                           v[i + 4] | v[i + 5] | v[i + 6] | v[i + 7];
        if (acc[0] | acc[1] | acc[2] | acc[3]) {
            return false;
        }
    }
    return true;
}

/* First set bit at or after @from, or @size when there is none. */
static uint64_t ram_save_next_dirty(const unsigned long *bmap, uint64_t size, uint64_t from)
{
    if (from >= size) {
        return size;
    }
    uint64_t words = WORDS_FOR(size);
    uint64_t i = from / BITS_PER_WORD;
    unsigned long w = bmap[i] & (~0UL << (from % BITS_PER_WORD));
    while (!w) {
        if (++i >= words) {
            return size;
        }
        w = bmap[i];
    }
    uint64_t page = i * BITS_PER_WORD + (uint64_t)__builtin_ctzl(w);
    return page < size ? page : size;
}

/*
 * The next dirty page from the cursor, wrapping around the blocks once.
 * Callers know some page is dirty; false means the counters disagree
 * with the bitmaps.
 */
static bool ram_save_find_dirty(RAMState *rs, RAMMigBlock **blockp, uint64_t *pagep)
{
    if (rs->nr_blocks == 0) {
        return false;
    }
    for (unsigned n = 0; n <= rs->nr_blocks; n++) {
        RAMMigBlock *b = &rs->blocks[rs->cur_block];
        if (b->dirty) {
            uint64_t page = ram_save_next_dirty(b->bmap, b->pages, rs->cur_page);
            if (page < b->pages) {
                *blockp = b;
                *pagep = page;
                return true;
            }
        }
        rs->cur_block = (rs->cur_block + 1) % rs->nr_blocks;
        rs->cur_page = 0;
    }
    return false;
}

/*
 * One record for @page of @b; returns true for a zero page. With
 * zero-page-detection=none every page goes with its data.
 */
static bool ram_save_page(RAMState *rs, QEMUFile *f, RAMMigBlock *b, uint64_t page,
                          bool zero)
{
    const uint8_t *host = b->rb->host + page * TARGET_PAGE_SIZE;
    uint64_t header = (page * TARGET_PAGE_SIZE) | (zero ? RAM_SAVE_FLAG_ZERO : RAM_SAVE_FLAG_PAGE);

    if (rs->last_sent == b) {
        qemu_put_be64(f, header | RAM_SAVE_FLAG_CONTINUE);
    } else {
        qemu_put_be64(f, header);
        qemu_put_counted_string(f, b->rb->idstr);
        rs->last_sent = b;
    }
    if (zero) {
        qemu_put_byte(f, 0);
    } else {
        qemu_put_buffer_nocopy(f, host, TARGET_PAGE_SIZE);
    }
    return zero;
}

int ram_save_dirty_pages(RAMState *rs, QEMUFile *f, bool rate_limited)
{
    uint64_t zero_pages = 0, normal_pages = 0, handled = 0;
    int64_t deadline = g_get_monotonic_time() + RAM_SAVE_SLICE_US;
    int ret = 1;

    /* Each payload names its first block: decodable on its own. */
    rs->last_sent = NULL;

    while (rs->dirty_pages) {
        RAMMigBlock *b;
        uint64_t page;

        if (!ram_save_find_dirty(rs, &b, &page)) {
            /* Counters out of step with the bitmaps: nothing is really left. */
            g_warning("ram: %" G_GUINT64_FORMAT " pages counted dirty, none marked",
                      rs->dirty_pages);
            rs->dirty_pages = 0;
            break;
        }
        b->bmap[page / BITS_PER_WORD] &= ~(1UL << (page % BITS_PER_WORD));
        b->dirty--;
        rs->dirty_pages--;
        rs->cur_page = page + 1;

        if (rs->multifd) {
            /*
             * The channel threads count what they send. With legacy
             * detection, zero pages stay on the main stream as records.
             */
            const uint8_t *host = b->rb->host + page * TARGET_PAGE_SIZE;
            if (rs->zero_detection == ZERO_PAGE_DETECTION_LEGACY && ram_page_is_zero(host)) {
                ram_save_page(rs, f, b, page, true);
                zero_pages++;
            } else if (!multifd_queue_page(b->rb, page * TARGET_PAGE_SIZE)) {
                ret = -1;
                break;
            }
        } else {
            const uint8_t *host = b->rb->host + page * TARGET_PAGE_SIZE;
            bool zero = rs->zero_detection != ZERO_PAGE_DETECTION_NONE && ram_page_is_zero(host);
            ram_save_page(rs, f, b, page, zero);
            if (zero) {
                zero_pages++;
            } else {
                normal_pages++;
            }
        }
        handled++;
        if (qemu_file_get_error(f)) {
            ret = -1;
            break;
        }
        if (rate_limited) {
            if (migration_rate_exceeded(f)) {
                ret = 0;
                break;
            }
            if (handled % RAM_SAVE_CLOCK_EVERY == 0 &&
                g_get_monotonic_time() >= deadline) {
                ret = rs->dirty_pages ? 0 : 1;
                break;
            }
        }
    }
    mig_stat_add(&mig_stats.zero_pages, zero_pages);
    mig_stat_add(&mig_stats.normal_pages, normal_pages);
    if (ret == 0 && !rs->dirty_pages) {
        ret = 1;
    }
    return ret;
}

void ram_save_block_list(RAMState *rs, QEMUFile *f)
{
    uint64_t total = 0;

    for (unsigned i = 0; i < rs->nr_blocks; i++) {
        total += rs->blocks[i].rb->used_length;
    }
    qemu_put_be64(f, total | RAM_SAVE_FLAG_MEM_SIZE);
    for (unsigned i = 0; i < rs->nr_blocks; i++) {
        qemu_put_counted_string(f, rs->blocks[i].rb->idstr);
        qemu_put_be64(f, rs->blocks[i].rb->used_length);
    }
    ram_save_eos(f);
}

bool ram_save_multifd_flush(RAMState *rs, QEMUFile *f, GError **errp)
{
    if (!rs->multifd) {
        return true;
    }
    if (!multifd_send_sync(errp)) {
        return false;
    }
    qemu_put_be64(f, RAM_SAVE_FLAG_MULTIFD_FLUSH);
    /* The destination forgets the block at a flush; so do we. */
    rs->last_sent = NULL;
    /*
     * The receive threads wait at their SYNC packets until the load thread
     * reads this record: it must not sit in our buffer while the next
     * pass fills the channels.
     */
    qemu_fflush(f);
    if (qemu_file_get_error(f)) {
        const char *msg = qemu_file_error_message(f);
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "ram: multifd flush: %s",
                    msg ? msg : g_strerror(-qemu_file_get_error(f)));
        return false;
    }
    return true;
}

void ram_save_eos(QEMUFile *f)
{
    qemu_put_be64(f, RAM_SAVE_FLAG_EOS);
}
