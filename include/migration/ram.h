/*
 * RAM as a migration participant: every RAM block's pages, tracked dirty
 * through the accelerator's dirty log and the VMM's own bitmap, sent as records (zero
 * pages as a flag; pages the guest never touched not at all), loaded with
 * every offset checked. docs/devel/ram-migration.md has the records.
 *
 * The participant is split by job:
 *   migration/ram.c        SaveVMHandlers glue, pending sizes, statistics
 *   migration/ram-dirty.c  migration bitmaps, dirty logging, dirty sync
 *   migration/ram-save.c   page search and the record encoder
 *   migration/ram-load.c   the record decoder (destination)
 *   migration/ram-format.h the records' flags and layout
 */
#ifndef MIGRATION_RAM_H
#define MIGRATION_RAM_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "migration/qemu-file.h"
#include "system/ramblock.h"

/* Register the "ram" participant. */
void ram_mig_init(void);
/* Bytes of guest RAM in all blocks (query-migrate ram.total). */
uint64_t ram_bytes_total(void);

/* ---- Shared by the migration/ram*.c files ---- */

/* One RAM block on the source: which of its 4 KiB pages are still to send. */
typedef struct RAMMigBlock {
    RAMBlock *rb;
    unsigned long *bmap;        /* bit n: page n must be sent */
    uint64_t pages;             /* used_length / 4 KiB */
    uint64_t dirty;             /* bits set in bmap */
} RAMMigBlock;

/* One guest RAM slot of the accelerator, resolved to the block its host range lies in. */
typedef struct RAMMigSlot {
    int index;                  /* for accel_slot_*() */
    RAMMigBlock *block;
    uint64_t first_page;        /* the slot's first page in the block */
    uint64_t pages;
    unsigned long *log;         /* the slot's dirty log lands here */
    bool logging;               /* dirty logging turned on by us */
} RAMMigSlot;

/*
 * Source state, owned by the migration thread: the bitmaps are only
 * touched by it (sync with the BQL held, page search without).
 */
typedef struct RAMState {
    RAMMigBlock *blocks;
    unsigned nr_blocks;
    RAMMigSlot *slots;
    unsigned nr_slots;
    uint64_t dirty_pages;       /* sum of blocks[].dirty */

    /* dirty-pages-rate: newly dirty pages since period_start_us */
    int64_t period_start_us;
    uint64_t period_pages;

    /* Page search cursor and the block named by the last record sent. */
    unsigned cur_block;
    uint64_t cur_page;
    const RAMMigBlock *last_sent;

    /* Pages go over the multifd channels; zero-page-detection's value. */
    bool multifd;
    int zero_detection;         /* ZeroPageDetection */

    /* Set when a sync fails outside a handler that can report it. */
    GError *error;
} RAMState;

/* ram-dirty.c (BQL held) */
/*
 * Allocate the bitmaps, turn dirty logging on and mark every page that
 * exists in the host mapping (never-touched pages stay clear).
 */
bool ram_dirty_setup(RAMState *rs, GError **errp);
/* Merge the accelerator's dirty log and the VMM bitmaps into the migration bitmaps. */
bool ram_dirty_sync(RAMState *rs, GError **errp);
/* Dirty logging off, bitmaps freed; safe on a partly set up state. */
void ram_dirty_cleanup(RAMState *rs);
/*
 * Set the bits of @b->bmap for pages that exist in the host mapping
 * (anything else reads as zero) and count them in @b->dirty. Any thread.
 */
void ram_dirty_mark_existing(RAMMigBlock *b);

/* ram-save.c (migration thread) */
/* START payload: total size, the block list, EOS. */
void ram_save_block_list(RAMState *rs, QEMUFile *f);
/*
 * Send dirty pages as records (no EOS). With @rate_limited, stops when
 * migration_rate_exceeded() says so or after a time slice. Returns 1 when
 * no dirty page is left, 0 when it stopped early, -1 on a stream error.
 */
int ram_save_dirty_pages(RAMState *rs, QEMUFile *f, bool rate_limited);
/*
 * multifd: send a sync on every channel, then the MULTIFD_FLUSH record.
 * Nothing to do without multifd.
 */
bool ram_save_multifd_flush(RAMState *rs, QEMUFile *f, GError **errp);
/* End of a payload. */
void ram_save_eos(QEMUFile *f);
/* True when the 4 KiB at @page are all zero. */
bool ram_page_is_zero(const void *page);

/* ram-load.c (load thread) */
typedef struct RAMLoadState {
    /* Destination blocks (NULL: ramblock_list()); the block list must match. */
    GPtrArray *blocks;
    bool block_list_seen;
} RAMLoadState;

/* Make every destination block read as zero before pages arrive. */
bool ram_load_prepare(RAMLoadState *ls, GError **errp);
/* One START, PART or END payload, through its EOS. */
bool ram_load_payload(RAMLoadState *ls, QEMUFile *f, GError **errp);

#endif
