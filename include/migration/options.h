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

/* QEMU's MultiFDCompression (multifd-compression). */
typedef enum MultiFDCompression {
    MULTIFD_COMPRESSION_NONE,
    MULTIFD_COMPRESSION_ZLIB,
    MULTIFD_COMPRESSION_ZSTD,
    MULTIFD_COMPRESSION__MAX,
} MultiFDCompression;

/* QEMU's ZeroPageDetection (zero-page-detection). */
typedef enum ZeroPageDetection {
    ZERO_PAGE_DETECTION_NONE,
    ZERO_PAGE_DETECTION_LEGACY,
    ZERO_PAGE_DETECTION_MULTIFD,
    ZERO_PAGE_DETECTION__MAX,
} ZeroPageDetection;

/* QEMU's MigMode (mode); only "normal" can be set today. */
typedef enum MigMode {
    MIG_MODE_NORMAL,
    MIG_MODE_CPR_REBOOT,
    MIG_MODE_CPR_TRANSFER,
    MIG_MODE__MAX,
} MigMode;

typedef struct MigrationParameters {
    uint64_t max_bandwidth;                 /* bytes/s, default 128 MiB/s; 0: no limit */
    uint64_t avail_switchover_bandwidth;    /* bytes/s, 0: use the measured rate */
    uint64_t downtime_limit;                /* ms, default 300 */
    uint8_t throttle_trigger_threshold;     /* %, 1..100, default 50 */
    uint8_t cpu_throttle_initial;           /* %, 1..99, default 20 */
    uint8_t cpu_throttle_increment;         /* %, 1..99, default 10 */
    bool cpu_throttle_tailslow;
    uint8_t max_cpu_throttle;               /* %, 1..99, default 99 */
    /* multifd and later issues add theirs here. */
    uint8_t multifd_channels;               /* 1..255, default 2 */
    MultiFDCompression multifd_compression; /* default none */
    uint8_t multifd_zlib_level;             /* 0..9, default 1 */
    uint8_t multifd_zstd_level;             /* 0..20, default 1 */
    ZeroPageDetection zero_page_detection;  /* default multifd */
    uint64_t max_postcopy_bandwidth;        /* bytes/s, 0: no limit */
    uint64_t xbzrle_cache_size;             /* bytes, default 64 MiB */
    uint32_t x_checkpoint_delay;            /* ms, default 20000 */
    uint64_t announce_initial;              /* ms, default 50 */
    uint64_t announce_max;                  /* ms, default 550 */
    uint64_t announce_rounds;               /* default 5 */
    uint64_t announce_step;                 /* ms, default 100 */
    uint64_t x_vcpu_dirty_limit_period;     /* ms, 1..1000, default 1000 */
    uint64_t vcpu_dirty_limit;              /* MB/s, default 1 */
    MigMode mode;                           /* default normal */
    bool direct_io;                         /* default off */
} MigrationParameters;

/*
 * Current values (main thread writes with the BQL; the migration thread
 * reads). A parameter changed during a migration is seen at the next read:
 * the core reads max_bandwidth at each rate window and downtime_limit at
 * each convergence check, so both take effect at once, as in QEMU.
 */
bool migrate_cap(MigrationCapability cap);
const MigrationParameters *migrate_params(void);

/* QMP/HMP plumbing: the commands and HMP commands live in options.c. */
void migration_options_register_commands(void);
/* True while a migration runs: capabilities cannot change then. */
void migration_options_set_busy(bool busy);

/* ---- additions: names, HMP helpers, registration ---- */

/* "xbzrle", "auto-converge", ...; NULL outside the enum. */
const char *migration_capability_name(MigrationCapability cap);
bool migration_capability_parse(const char *name, MigrationCapability *out);
/* Whether Ferry implements @cap (setting an unsupported one fails). */
bool migration_capability_supported(MigrationCapability cap);

const char *multifd_compression_name(MultiFDCompression c);
const char *zero_page_detection_name(ZeroPageDetection z);
const char *mig_mode_name(MigMode m);

/* tls-creds / tls-hostname / tls-authz as query-migrate-parameters shows them. */
char *migrate_tls_creds(void);
char *migrate_tls_hostname(void);
char *migrate_tls_authz(void);

/*
 * migrate-incoming's exit-on-error (default true): whether a failed
 * incoming migration ends the process, or leaves it running with the
 * failure in query-migrate and a MIGRATION event. Set by the command
 * before it starts the incoming side; read by the core.
 */
bool migrate_incoming_exit_on_error(void);
void migrate_set_incoming_exit_on_error(bool exit_on_error);

/*
 * HMP migrate_set_parameter: turn "max-bandwidth" "100M" into the
 * migrate-set-parameters arguments {"max-bandwidth": 104857600}, with
 * QEMU's HMP conventions (QEMU's names with '-'; sizes with suffixes;
 * max-bandwidth and avail-switchover-bandwidth in MiB/s without one;
 * on/off for booleans). NULL with @errp set on a bad name or value.
 */
JsonObject *migration_parameter_from_string(const char *name, const char *value,
                                            GError **errp);

/* Back to the defaults (tests; never during a migration). */
void migration_options_reset(void);

/*
 * Register every migration monitor command: the QMP rows (migrate,
 * migrate-incoming, query-migrate, migrate_cancel, migrate-continue,
 * getfd, closefd, the capability and parameter commands) and their HMP
 * forms. Safe to call more than once.
 */
void migration_monitor_register(void);
/* The HMP half (migration-hmp.c); migration_monitor_register() calls it. */
void migration_hmp_register_commands(void);

#endif
