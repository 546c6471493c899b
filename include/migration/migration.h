/*
 * The migration state machine and its statistics, shared by the core
 * (migration.c), the participants (ram.c) and the monitor commands.
 */
#ifndef MIGRATION_MIGRATION_H
#define MIGRATION_MIGRATION_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <json-glib/json-glib.h>

#include "migration/qemu-file.h"

/* QEMU's MigrationStatus names, in query-migrate and the MIGRATION event. */
typedef enum MigrationStatus {
    MIGRATION_STATUS_NONE,
    MIGRATION_STATUS_SETUP,
    MIGRATION_STATUS_CANCELLING,
    MIGRATION_STATUS_CANCELLED,
    MIGRATION_STATUS_ACTIVE,
    MIGRATION_STATUS_POSTCOPY_ACTIVE,
    MIGRATION_STATUS_POSTCOPY_PAUSED,
    MIGRATION_STATUS_POSTCOPY_RECOVER_SETUP,
    MIGRATION_STATUS_POSTCOPY_RECOVER,
    MIGRATION_STATUS_COMPLETED,
    MIGRATION_STATUS_FAILED,
    MIGRATION_STATUS_COLO,
    MIGRATION_STATUS_PRE_SWITCHOVER,
    MIGRATION_STATUS_DEVICE,
    MIGRATION_STATUS_WAIT_UNPLUG,
    MIGRATION_STATUS__MAX,
} MigrationStatus;

const char *migration_status_name(MigrationStatus s);
bool migration_status_parse(const char *name, MigrationStatus *out);

/*
 * Counters the migration thread (source) or load thread (destination)
 * updates and query-migrate reads: 64-bit values accessed with
 * mig_stat_add()/mig_stat_get()/mig_stat_set() (relaxed atomics).
 */
typedef struct MigrationStats {
    uint64_t transferred;           /* bytes on the wire, all channels */
    uint64_t precopy_bytes;         /* RAM bytes sent while the VM ran */
    uint64_t downtime_bytes;        /* bytes sent with the VM stopped */
    uint64_t zero_pages;            /* "duplicate" */
    uint64_t normal_pages;          /* "normal" */
    uint64_t dirty_sync_count;
    uint64_t dirty_pages_rate;      /* pages/s dirtied in the last period */
    uint64_t dirty_bytes_last_sync; /* bytes dirty right after the last sync */
    uint64_t remaining;             /* bytes still to send (estimate) */
    uint64_t multifd_bytes;
    uint64_t dirty_limit_throttle;
} MigrationStats;

extern MigrationStats mig_stats;

static inline void mig_stat_add(uint64_t *c, uint64_t v)
{
    __atomic_fetch_add(c, v, __ATOMIC_RELAXED);
}

static inline uint64_t mig_stat_get(const uint64_t *c)
{
    return __atomic_load_n(c, __ATOMIC_RELAXED);
}

static inline void mig_stat_set(uint64_t *c, uint64_t v)
{
    __atomic_store_n(c, v, __ATOMIC_RELAXED);
}

/*
 * Bandwidth limit for the outgoing stream: true when the current 100 ms
 * window's budget (max-bandwidth / 10) is used up; a participant's
 * iterate returns then and the migration thread waits for the next window.
 */
bool migration_rate_exceeded(QEMUFile *f);

/* The current outgoing / incoming status (BQL not needed). */
MigrationStatus migration_outgoing_status(void);
MigrationStatus migration_incoming_status(void);

/* Commands the monitor calls (main thread, BQL held). */
bool qmp_migrate_start(const char *uri, bool resume, GError **errp);
bool qmp_migrate_incoming_start(const char *uri, GError **errp);
void qmp_migrate_cancel_now(void);
bool qmp_migrate_continue_from(MigrationStatus state, GError **errp);

/* Built for query-migrate: the reply object (see docs/user/migration.md). */
JsonObject *migration_query_info(void);

/* -incoming URI|defer at startup (main thread, BQL held, before the VM runs). */
bool migration_incoming_init(const char *uri, GError **errp);
/* migrate_cancel on a destination: end the incoming migration (the VM exits 1). */
void migration_incoming_cancel(void);
/* Resume the guest after an incoming migration (false with -S). */
extern bool migration_autostart;

/* Register every migration participant that is not a device (RAM, global state). */
void migration_init(void);

#endif
