/*
 * Migration capabilities and parameters: QEMU's names, types, defaults
 * and checks. migrate-set-capabilities / migrate-set-parameters and their
 * HMP forms go through here; the migration core reads the values.
 */
#ifndef MIGRATION_OPTIONS_H
#define MIGRATION_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <json-glib/json-glib.h>

typedef enum MigrationCapability {
    MIGRATION_CAPABILITY_XBZRLE,
    MIGRATION_CAPABILITY_RDMA_PIN_ALL,
    MIGRATION_CAPABILITY_AUTO_CONVERGE,
    MIGRATION_CAPABILITY_ZERO_BLOCKS,
    MIGRATION_CAPABILITY_EVENTS,
    MIGRATION_CAPABILITY_POSTCOPY_RAM,
    MIGRATION_CAPABILITY_X_COLO,
    MIGRATION_CAPABILITY_RELEASE_RAM,
    MIGRATION_CAPABILITY_RETURN_PATH,
    MIGRATION_CAPABILITY_PAUSE_BEFORE_SWITCHOVER,
    MIGRATION_CAPABILITY_MULTIFD,
    MIGRATION_CAPABILITY_DIRTY_BITMAPS,
    MIGRATION_CAPABILITY_POSTCOPY_BLOCKTIME,
    MIGRATION_CAPABILITY_LATE_BLOCK_ACTIVATE,
    MIGRATION_CAPABILITY_X_IGNORE_SHARED,
    MIGRATION_CAPABILITY_VALIDATE_UUID,
    MIGRATION_CAPABILITY_BACKGROUND_SNAPSHOT,
    MIGRATION_CAPABILITY_ZERO_COPY_SEND,
    MIGRATION_CAPABILITY_POSTCOPY_PREEMPT,
    MIGRATION_CAPABILITY_SWITCHOVER_ACK,
    MIGRATION_CAPABILITY_DIRTY_LIMIT,
    MIGRATION_CAPABILITY_MAPPED_RAM,
    MIGRATION_CAPABILITY__MAX,
} MigrationCapability;

typedef struct MigrationParameters {
    uint64_t max_bandwidth;                 /* bytes/s, default 128 MiB/s */
    uint64_t avail_switchover_bandwidth;    /* bytes/s, 0: use the measured rate */
    uint64_t downtime_limit;                /* ms, default 300 */
    uint8_t throttle_trigger_threshold;     /* %, 1..100, default 50 */
    uint8_t cpu_throttle_initial;           /* %, 1..99, default 20 */
    uint8_t cpu_throttle_increment;         /* %, 1..99, default 10 */
    bool cpu_throttle_tailslow;
    uint8_t max_cpu_throttle;               /* %, 1..99, default 99 */
    /* multifd and later issues add theirs here. */
    uint8_t multifd_channels;               /* 1..255, default 2 */
} MigrationParameters;

/* Current values (main thread writes with the BQL; the migration thread reads). */
bool migrate_cap(MigrationCapability cap);
const MigrationParameters *migrate_params(void);

/* QMP/HMP plumbing: the commands and HMP commands live in options.c. */
void migration_options_register_commands(void);
/* True while a migration runs: capabilities cannot change then. */
void migration_options_set_busy(bool busy);

#endif
