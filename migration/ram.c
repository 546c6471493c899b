/*
 * RAM as a migration participant: the "ram" SaveVMHandlers (version 1,
 * instance 0). The work is done by ram-dirty.c (bitmaps, sync),
 * ram-save.c (page search, records) and ram-load.c (decoding); this file
 * runs them at each step of a migration and keeps the statistics.
 */
#include <string.h>
#include <gio/gio.h>

#include "migration/migration.h"
#include "migration/multifd.h"
#include "migration/options.h"
#include "migration/ram.h"
#include "migration/ram-format.h"
#include "migration/register.h"
#include "system/main-loop.h"

typedef struct RAMMigration {
    RAMState *rs;               /* source: from save_setup to save_cleanup */
    RAMLoadState load;          /* destination */
} RAMMigration;

static RAMMigration ram_migration;

uint64_t ram_bytes_total(void)
{
    GPtrArray *list = ramblock_list();
    uint64_t total = 0;
    for (guint i = 0; i < list->len; i++) {
        total += ((RAMBlock *)g_ptr_array_index(list, i))->used_length;
    }
    return total;
}

static uint64_t ram_dirty_bytes(const RAMState *rs)
{
    return rs ? rs->dirty_pages * TARGET_PAGE_SIZE : 0;
}

static bool ram_file_failed(QEMUFile *f, GError **errp)
{
    int err = qemu_file_get_error(f);
    if (!err) {
        return false;
    }
    const char *msg = qemu_file_error_message(f);
    g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(-err), "ram: %s",
                msg ? msg : g_strerror(-err));
    return true;
}

static void ram_state_free(RAMMigration *rm)
{
    if (rm->rs) {
        ram_dirty_cleanup(rm->rs);
        g_clear_error(&rm->rs->error);
        g_clear_pointer(&rm->rs, g_free);
    }
}

/* ---------------------------------------------------------------- source */

static bool ram_save_setup(QEMUFile *f, void *opaque, GError **errp)
{
    RAMMigration *rm = opaque;
    GPtrArray *list = ramblock_list();

    for (guint i = 0; i < list->len; i++) {
        RAMBlock *rb = g_ptr_array_index(list, i);
        if (strlen(rb->idstr) > 255) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "ram: block id '%s' is longer than 255 bytes", rb->idstr);
            return false;
        }
    }
    ram_state_free(rm);
    rm->rs = g_new0(RAMState, 1);
    rm->rs->multifd = multifd_send_active();
    rm->rs->zero_detection = migrate_params()->zero_page_detection;
    if (!ram_dirty_setup(rm->rs, errp)) {
        ram_state_free(rm);
        return false;
    }
    ram_save_block_list(rm->rs, f);
    mig_stat_set(&mig_stats.remaining, ram_dirty_bytes(rm->rs));
    return !ram_file_failed(f, errp);
}

static int ram_save_iterate(QEMUFile *f, void *opaque, GError **errp)
{
    RAMMigration *rm = opaque;
    RAMState *rs = rm->rs;

    if (!rs) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "ram: iterate without setup");
        return -1;
    }
    if (rs->error) {
        g_propagate_error(errp, g_error_copy(rs->error));
        return -1;
    }
    uint64_t before = qemu_file_transferred(f);
    int r = ram_save_dirty_pages(rs, f, true);
    if (r < 0 && rs->multifd && multifd_send_error()) {
        g_propagate_error(errp, g_error_copy(multifd_send_error()));
        return -1;
    }
    /* A pass is over: what it queued lands before anything of the next pass. */
    if (r == 1 && !ram_save_multifd_flush(rs, f, errp)) {
        return -1;
    }
    ram_save_eos(f);
    mig_stat_add(&mig_stats.precopy_bytes, qemu_file_transferred(f) - before);
    mig_stat_set(&mig_stats.remaining, ram_dirty_bytes(rs));
    if (r < 0 || ram_file_failed(f, errp)) {
        if (errp && !*errp) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "ram: sending pages failed");
        }
        return -1;
    }
    return r;
}

static bool ram_save_complete(QEMUFile *f, void *opaque, GError **errp)
{
    RAMMigration *rm = opaque;
    RAMState *rs = rm->rs;

    if (!rs) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "ram: complete without setup");
        return false;
    }
    if (rs->error) {
        g_propagate_error(errp, g_error_copy(rs->error));
        return false;
    }
    /* The VM is stopped: this sync sees every write there will be. */
    if (!ram_dirty_sync(rs, errp)) {
        return false;
    }
    if (ram_save_dirty_pages(rs, f, false) < 0 && rs->multifd && multifd_send_error()) {
        g_propagate_error(errp, g_error_copy(multifd_send_error()));
        return false;
    }
    if (!ram_save_multifd_flush(rs, f, errp)) {
        return false;
    }
    ram_save_eos(f);
    mig_stat_set(&mig_stats.remaining, ram_dirty_bytes(rs));
    return !ram_file_failed(f, errp);
}

static void ram_state_pending_estimate(void *opaque, uint64_t *must_precopy,
                                       uint64_t *can_postcopy)
{
    RAMMigration *rm = opaque;
    *must_precopy += ram_dirty_bytes(rm->rs);
}

static void ram_state_pending_exact(void *opaque, uint64_t *must_precopy,
                                    uint64_t *can_postcopy)
{
    RAMMigration *rm = opaque;
    RAMState *rs = rm->rs;

    if (rs && !rs->error) {
        bool locked = bql_locked();
        if (!locked) {
            bql_lock();
        }
        if (!ram_dirty_sync(rs, &rs->error)) {
            g_prefix_error(&rs->error, "ram: dirty sync: ");
        }
        if (!locked) {
            bql_unlock();
        }
    }
    *must_precopy += ram_dirty_bytes(rs);
    mig_stat_set(&mig_stats.remaining, ram_dirty_bytes(rs));
}

static void ram_save_cleanup(void *opaque)
{
    ram_state_free(opaque);
}

/* ----------------------------------------------------------- destination */

static bool ram_load_setup(QEMUFile *f, void *opaque, GError **errp)
{
    RAMMigration *rm = opaque;
    rm->load = (RAMLoadState) { 0 };
    return ram_load_prepare(&rm->load, errp);
}

static bool ram_load_state(QEMUFile *f, void *opaque, int version_id, GError **errp)
{
    RAMMigration *rm = opaque;

    if (version_id != RAM_MIG_VERSION) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "ram: stream version %d, this build reads version %d",
                    version_id, RAM_MIG_VERSION);
        return false;
    }
    return ram_load_payload(&rm->load, f, errp);
}

static void ram_load_cleanup(void *opaque)
{
    RAMMigration *rm = opaque;
    rm->load = (RAMLoadState) { 0 };
}

static const SaveVMHandlers savevm_ram_handlers = {
    .save_setup = ram_save_setup,
    .save_live_iterate = ram_save_iterate,
    .save_live_complete_precopy = ram_save_complete,
    .state_pending_estimate = ram_state_pending_estimate,
    .state_pending_exact = ram_state_pending_exact,
    .save_cleanup = ram_save_cleanup,
    .load_setup = ram_load_setup,
    .load_state = ram_load_state,
    .load_cleanup = ram_load_cleanup,
};

void ram_mig_init(void)
{
    register_savevm_live("ram", 0, RAM_MIG_VERSION, &savevm_ram_handlers, &ram_migration);
}
