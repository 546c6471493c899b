/*
 * Migration capabilities and parameters: storage, QEMU's names, types,
 * defaults and checks, and the QMP commands that set and query them
 * (migrate-set-capabilities, query-migrate-capabilities,
 * migrate-set-parameters, query-migrate-parameters).
 *
 * One table lists the parameters in QEMU's member order: it gives the
 * argument specs of migrate-set-parameters (so the dispatcher checks the
 * JSON types and rejects unknown names), the member order of
 * query-migrate-parameters, and the HMP value parsing. The value checks
 * run on the current parameters merged with the new ones, in QEMU's
 * order and with QEMU's texts, and nothing changes unless all pass.
 *
 * The main thread writes (BQL held); the migration threads read the
 * numbers through migrate_params() at any time, so each field is stored
 * with a single atomic write. The strings (tls-*) are kept apart under a
 * lock and handed out as copies.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "migration/migration.h"
#include "migration/options.h"
#include "migration/qmp-args.h"
#include "system/monitor.h"
#include "util/option.h"

#define MAX_MIGRATE_DOWNTIME_MS     2000000     /* 2000 seconds */
#define TARGET_PAGE_SIZE            4096

/* ---- capabilities ---- */

typedef struct CapabilityInfo {
    const char *name;
    bool supported;     /* false: listed, but setting it to true fails */
} CapabilityInfo;

static const CapabilityInfo cap_info[MIGRATION_CAPABILITY__MAX] = {
    [MIGRATION_CAPABILITY_XBZRLE] = { "xbzrle", false },
    [MIGRATION_CAPABILITY_RDMA_PIN_ALL] = { "rdma-pin-all", false },
    [MIGRATION_CAPABILITY_AUTO_CONVERGE] = { "auto-converge", true },
    [MIGRATION_CAPABILITY_ZERO_BLOCKS] = { "zero-blocks", true },
    [MIGRATION_CAPABILITY_EVENTS] = { "events", true },
    [MIGRATION_CAPABILITY_POSTCOPY_RAM] = { "postcopy-ram", false },
    [MIGRATION_CAPABILITY_X_COLO] = { "x-colo", false },
    [MIGRATION_CAPABILITY_RELEASE_RAM] = { "release-ram", false },
    [MIGRATION_CAPABILITY_RETURN_PATH] = { "return-path", true },
    [MIGRATION_CAPABILITY_PAUSE_BEFORE_SWITCHOVER] = { "pause-before-switchover", true },
    [MIGRATION_CAPABILITY_MULTIFD] = { "multifd", true },
    [MIGRATION_CAPABILITY_DIRTY_BITMAPS] = { "dirty-bitmaps", false },
    [MIGRATION_CAPABILITY_POSTCOPY_BLOCKTIME] = { "postcopy-blocktime", false },
    [MIGRATION_CAPABILITY_LATE_BLOCK_ACTIVATE] = { "late-block-activate", true },
    [MIGRATION_CAPABILITY_X_IGNORE_SHARED] = { "x-ignore-shared", false },
    [MIGRATION_CAPABILITY_VALIDATE_UUID] = { "validate-uuid", true },
    [MIGRATION_CAPABILITY_BACKGROUND_SNAPSHOT] = { "background-snapshot", false },
    [MIGRATION_CAPABILITY_ZERO_COPY_SEND] = { "zero-copy-send", false },
    [MIGRATION_CAPABILITY_POSTCOPY_PREEMPT] = { "postcopy-preempt", false },
    [MIGRATION_CAPABILITY_SWITCHOVER_ACK] = { "switchover-ack", false },
    [MIGRATION_CAPABILITY_DIRTY_LIMIT] = { "dirty-limit", false },
    [MIGRATION_CAPABILITY_MAPPED_RAM] = { "mapped-ram", false },
};

static bool caps[MIGRATION_CAPABILITY__MAX];
static bool options_busy;

const char *migration_capability_name(MigrationCapability cap)
{
    if ((unsigned)cap >= MIGRATION_CAPABILITY__MAX) {
        return NULL;
    }
    return cap_info[cap].name;
}

bool migration_capability_parse(const char *name, MigrationCapability *out)
{
    for (int i = 0; i < MIGRATION_CAPABILITY__MAX; i++) {
        if (!strcmp(name, cap_info[i].name)) {
            *out = i;
            return true;
        }
    }
    return false;
}

bool migration_capability_supported(MigrationCapability cap)
{
    return (unsigned)cap < MIGRATION_CAPABILITY__MAX && cap_info[cap].supported;
}

bool migrate_cap(MigrationCapability cap)
{
    return __atomic_load_n(&caps[cap], __ATOMIC_RELAXED);
}

void migration_options_set_busy(bool busy)
{
    __atomic_store_n(&options_busy, busy, __ATOMIC_RELAXED);
}

/* QEMU's migration_is_running(): the states in which options are locked. */
static bool migration_options_locked(void)
{
    if (__atomic_load_n(&options_busy, __ATOMIC_RELAXED)) {
        return true;
    }
    switch (migration_outgoing_status()) {
    case MIGRATION_STATUS_SETUP:
    case MIGRATION_STATUS_ACTIVE:
    case MIGRATION_STATUS_POSTCOPY_ACTIVE:
    case MIGRATION_STATUS_POSTCOPY_PAUSED:
    case MIGRATION_STATUS_POSTCOPY_RECOVER_SETUP:
    case MIGRATION_STATUS_POSTCOPY_RECOVER:
    case MIGRATION_STATUS_PRE_SWITCHOVER:
    case MIGRATION_STATUS_DEVICE:
    case MIGRATION_STATUS_WAIT_UNPLUG:
    case MIGRATION_STATUS_CANCELLING:
    case MIGRATION_STATUS_COLO:
        return true;
    default:
        return false;
    }
}

/* ---- enum names ---- */

static const char *const multifd_compression_names[] = { "none", "zlib", "zstd", NULL };
static const char *const zero_page_detection_names[] = { "none", "legacy", "multifd", NULL };
static const char *const mig_mode_names[] = { "normal", "cpr-reboot", "cpr-transfer", NULL };

G_STATIC_ASSERT(G_N_ELEMENTS(multifd_compression_names) == MULTIFD_COMPRESSION__MAX + 1);
G_STATIC_ASSERT(G_N_ELEMENTS(zero_page_detection_names) == ZERO_PAGE_DETECTION__MAX + 1);
G_STATIC_ASSERT(G_N_ELEMENTS(mig_mode_names) == MIG_MODE__MAX + 1);

const char *multifd_compression_name(MultiFDCompression c)
{
    return (unsigned)c < MULTIFD_COMPRESSION__MAX ? multifd_compression_names[c] : NULL;
}

const char *zero_page_detection_name(ZeroPageDetection z)
{
    return (unsigned)z < ZERO_PAGE_DETECTION__MAX ? zero_page_detection_names[z] : NULL;
}

const char *mig_mode_name(MigMode m)
{
    return (unsigned)m < MIG_MODE__MAX ? mig_mode_names[m] : NULL;
}

static int enum_lookup(const char *const *names, const char *value)
{
    for (int i = 0; names[i]; i++) {
        if (!strcmp(names[i], value)) {
            return i;
        }
    }
    return -1;
}

/* ---- parameters ---- */

typedef enum ParamType {
    PARAM_SIZE,         /* QAPI 'size' */
    PARAM_U8,
    PARAM_U32,
    PARAM_U64,
    PARAM_BOOL,
    PARAM_ENUM,         /* stored as an enum (unsigned int) */
    PARAM_STR_OR_NULL,  /* tls-*: kept outside MigrationParameters */
    PARAM_MAPPING,      /* block-bitmap-mapping */
} ParamType;

typedef enum ParamHmpForm {
    HMP_DEFAULT,        /* by type: sizes in bytes, integers, on/off, names */
    HMP_MIB,            /* a size, MiB without a suffix (bandwidths) */
    HMP_QMP_ONLY,       /* block-bitmap-mapping */
} ParamHmpForm;

typedef struct ParamDesc {
    const char *name;
    ParamType type;
    size_t offset;              /* in MigrationParameters */
    const char *const *values;  /* PARAM_ENUM */
    ParamHmpForm hmp;
} ParamDesc;

#define PARAM_AT(field) offsetof(MigrationParameters, field)

/* QEMU's MigrateSetParameters / MigrationParameters members, in order. */
static const ParamDesc param_table[] = {
    { "announce-initial", PARAM_SIZE, PARAM_AT(announce_initial) },
    { "announce-max", PARAM_SIZE, PARAM_AT(announce_max) },
    { "announce-rounds", PARAM_SIZE, PARAM_AT(announce_rounds) },
    { "announce-step", PARAM_SIZE, PARAM_AT(announce_step) },
    { "throttle-trigger-threshold", PARAM_U8, PARAM_AT(throttle_trigger_threshold) },
    { "cpu-throttle-initial", PARAM_U8, PARAM_AT(cpu_throttle_initial) },
    { "cpu-throttle-increment", PARAM_U8, PARAM_AT(cpu_throttle_increment) },
    { "cpu-throttle-tailslow", PARAM_BOOL, PARAM_AT(cpu_throttle_tailslow) },
    { "tls-creds", PARAM_STR_OR_NULL, 0 },
    { "tls-hostname", PARAM_STR_OR_NULL, 0 },
    { "tls-authz", PARAM_STR_OR_NULL, 0 },
    { "max-bandwidth", PARAM_SIZE, PARAM_AT(max_bandwidth), NULL, HMP_MIB },
    { "avail-switchover-bandwidth", PARAM_SIZE, PARAM_AT(avail_switchover_bandwidth),
      NULL, HMP_MIB },
    { "downtime-limit", PARAM_U64, PARAM_AT(downtime_limit) },
    { "x-checkpoint-delay", PARAM_U32, PARAM_AT(x_checkpoint_delay) },
    { "multifd-channels", PARAM_U8, PARAM_AT(multifd_channels) },
    { "xbzrle-cache-size", PARAM_SIZE, PARAM_AT(xbzrle_cache_size) },
    { "max-postcopy-bandwidth", PARAM_SIZE, PARAM_AT(max_postcopy_bandwidth) },
    { "max-cpu-throttle", PARAM_U8, PARAM_AT(max_cpu_throttle) },
    { "multifd-compression", PARAM_ENUM, PARAM_AT(multifd_compression),
      multifd_compression_names },
    { "multifd-zlib-level", PARAM_U8, PARAM_AT(multifd_zlib_level) },
    { "multifd-zstd-level", PARAM_U8, PARAM_AT(multifd_zstd_level) },
    { "block-bitmap-mapping", PARAM_MAPPING, 0, NULL, HMP_QMP_ONLY },
    { "x-vcpu-dirty-limit-period", PARAM_U64, PARAM_AT(x_vcpu_dirty_limit_period) },
    { "vcpu-dirty-limit", PARAM_U64, PARAM_AT(vcpu_dirty_limit) },
    { "mode", PARAM_ENUM, PARAM_AT(mode), mig_mode_names },
    { "zero-page-detection", PARAM_ENUM, PARAM_AT(zero_page_detection),
      zero_page_detection_names },
    { "direct-io", PARAM_BOOL, PARAM_AT(direct_io) },
};

#define PARAM_COUNT G_N_ELEMENTS(param_table)

#define PARAM_DEFAULTS {                                        \
    .max_bandwidth = 128 << 20,                             \
    .avail_switchover_bandwidth = 0,                        \
    .downtime_limit = 300,                                  \
    .throttle_trigger_threshold = 50,                       \
    .cpu_throttle_initial = 20,                             \
    .cpu_throttle_increment = 10,                           \
    .cpu_throttle_tailslow = false,                         \
    .max_cpu_throttle = 99,                                 \
    .multifd_channels = 2,                                  \
    .multifd_compression = MULTIFD_COMPRESSION_NONE,        \
    .multifd_zlib_level = 1,                                \
    .multifd_zstd_level = 1,                                \
    .zero_page_detection = ZERO_PAGE_DETECTION_MULTIFD,     \
    .max_postcopy_bandwidth = 0,                            \
    .xbzrle_cache_size = 64 << 20,                          \
    .x_checkpoint_delay = 200 * 100,                        \
    .announce_initial = 50,                                 \
    .announce_max = 550,                                    \
    .announce_rounds = 5,                                   \
    .announce_step = 100,                                   \
    .x_vcpu_dirty_limit_period = 1000,                      \
    .vcpu_dirty_limit = 1,                                  \
    .mode = MIG_MODE_NORMAL,                                \
    .direct_io = false,                                     \
}

static const MigrationParameters param_defaults = PARAM_DEFAULTS;
static MigrationParameters params = PARAM_DEFAULTS;


/* tls-creds, tls-hostname ("" by default), tls-authz (NULL: unset). */
static GMutex tls_lock;
static char *tls_creds;
static char *tls_hostname;
static char *tls_authz;
/* block-bitmap-mapping as given; NULL until set. */
static JsonNode *bitmap_mapping;

static bool incoming_exit_on_error = true;

const MigrationParameters *migrate_params(void)
{
    return &params;
}

static char *tls_get(char *const *field)
{
    g_mutex_lock(&tls_lock);
    char *v = g_strdup(*field ? *field : "");
    g_mutex_unlock(&tls_lock);
    return v;
}

char *migrate_tls_creds(void)
{
    return tls_get(&tls_creds);
}

char *migrate_tls_hostname(void)
{
    return tls_get(&tls_hostname);
}

char *migrate_tls_authz(void)
{
    return tls_get(&tls_authz);
}

bool migrate_incoming_exit_on_error(void)
{
    return incoming_exit_on_error;
}

void migrate_set_incoming_exit_on_error(bool exit_on_error)
{
    incoming_exit_on_error = exit_on_error;
}

void migration_options_reset(void)
{
    for (int i = 0; i < MIGRATION_CAPABILITY__MAX; i++) {
        __atomic_store_n(&caps[i], false, __ATOMIC_RELAXED);
    }
    params = param_defaults;
    g_mutex_lock(&tls_lock);
    g_clear_pointer(&tls_creds, g_free);
    g_clear_pointer(&tls_hostname, g_free);
    g_clear_pointer(&tls_authz, g_free);
    g_mutex_unlock(&tls_lock);
    g_clear_pointer(&bitmap_mapping, json_node_unref);
    incoming_exit_on_error = true;
    options_busy = false;
}

/* Numeric/bool/enum fields of a MigrationParameters, by descriptor. */
static uint64_t param_get(const MigrationParameters *p, const ParamDesc *d)
{
    const char *base = (const char *)p + d->offset;

    switch (d->type) {
    case PARAM_SIZE:
    case PARAM_U64:
        return *(const uint64_t *)base;
    case PARAM_U32:
        return *(const uint32_t *)base;
    case PARAM_U8:
        return *(const uint8_t *)base;
    case PARAM_BOOL:
        return *(const bool *)base;
    case PARAM_ENUM:
        return *(const unsigned int *)base;
    default:
        g_assert_not_reached();
    }
}

static void param_put(MigrationParameters *p, const ParamDesc *d, uint64_t v)
{
    char *base = (char *)p + d->offset;

    switch (d->type) {
    case PARAM_SIZE:
    case PARAM_U64:
        __atomic_store_n((uint64_t *)base, v, __ATOMIC_RELAXED);
        break;
    case PARAM_U32:
        __atomic_store_n((uint32_t *)base, (uint32_t)v, __ATOMIC_RELAXED);
        break;
    case PARAM_U8:
        __atomic_store_n((uint8_t *)base, (uint8_t)v, __ATOMIC_RELAXED);
        break;
    case PARAM_BOOL:
        __atomic_store_n((bool *)base, v != 0, __ATOMIC_RELAXED);
        break;
    case PARAM_ENUM:
        __atomic_store_n((unsigned int *)base, (unsigned int)v, __ATOMIC_RELAXED);
        break;
    default:
        g_assert_not_reached();
    }
}

static const ParamDesc *param_find(const char *name)
{
    for (size_t i = 0; i < PARAM_COUNT; i++) {
        if (!strcmp(param_table[i].name, name)) {
            return &param_table[i];
        }
    }
    return NULL;
}

static bool json_is_type(JsonNode *node, GType type)
{
    return node && JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == type;
}

/* ---- migrate-set-capabilities / query-migrate-capabilities ---- */

/* QEMU's compatibility rules between capabilities (and parameters). */
static bool caps_check(const bool *old_caps, const bool *new_caps, GError **errp)
{
    MultiFDCompression comp = params.multifd_compression;
    g_autofree char *creds = migrate_tls_creds();
    bool tls = creds[0] != '\0';
    bool incoming_started = migration_incoming_status() != MIGRATION_STATUS_NONE;

    if (new_caps[MIGRATION_CAPABILITY_POSTCOPY_RAM] &&
        new_caps[MIGRATION_CAPABILITY_X_IGNORE_SHARED]) {
        mig_qmp_error(errp, "Postcopy is not compatible with ignore-shared");
        return false;
    }
    if (new_caps[MIGRATION_CAPABILITY_ZERO_COPY_SEND] &&
        (!new_caps[MIGRATION_CAPABILITY_MULTIFD] ||
         new_caps[MIGRATION_CAPABILITY_XBZRLE] || comp != MULTIFD_COMPRESSION_NONE || tls)) {
        mig_qmp_error(errp, "Zero copy only available for non-compressed"
                      " non-TLS multifd migration");
        return false;
    }
    if (new_caps[MIGRATION_CAPABILITY_POSTCOPY_PREEMPT]) {
        if (!new_caps[MIGRATION_CAPABILITY_POSTCOPY_RAM]) {
            mig_qmp_error(errp, "Postcopy preempt requires postcopy-ram");
            return false;
        }
        if (!old_caps[MIGRATION_CAPABILITY_POSTCOPY_PREEMPT] && incoming_started) {
            mig_qmp_error(errp, "Postcopy preempt must be set before incoming starts");
            return false;
        }
    }
    if (new_caps[MIGRATION_CAPABILITY_MULTIFD] && !old_caps[MIGRATION_CAPABILITY_MULTIFD] &&
        incoming_started) {
        mig_qmp_error(errp, "Multifd must be set before incoming starts");
        return false;
    }
    if (new_caps[MIGRATION_CAPABILITY_SWITCHOVER_ACK] &&
        !new_caps[MIGRATION_CAPABILITY_RETURN_PATH]) {
        mig_qmp_error(errp, "Capability 'switchover-ack' requires capability 'return-path'");
        return false;
    }
    if (new_caps[MIGRATION_CAPABILITY_DIRTY_LIMIT] &&
        new_caps[MIGRATION_CAPABILITY_AUTO_CONVERGE]) {
        mig_qmp_error(errp, "dirty-limit conflicts with auto-converge"
                      " either of then available currently");
        return false;
    }
    if (new_caps[MIGRATION_CAPABILITY_MULTIFD] && new_caps[MIGRATION_CAPABILITY_XBZRLE]) {
        mig_qmp_error(errp, "Multifd is not compatible with xbzrle");
        return false;
    }
    if (new_caps[MIGRATION_CAPABILITY_MAPPED_RAM]) {
        if (new_caps[MIGRATION_CAPABILITY_XBZRLE]) {
            mig_qmp_error(errp, "Mapped-ram migration is incompatible with xbzrle");
            return false;
        }
        if (new_caps[MIGRATION_CAPABILITY_POSTCOPY_RAM]) {
            mig_qmp_error(errp, "Mapped-ram migration is incompatible with postcopy");
            return false;
        }
    }
    return true;
}

static JsonNode *qmp_migrate_set_capabilities(JsonObject *args, GError **errp)
{
    JsonArray *list = json_object_get_array_member(args, "capabilities");
    guint n = json_array_get_length(list);
    g_autofree MigrationCapability *which = g_new0(MigrationCapability, n + 1);
    g_autofree bool *state = g_new0(bool, n + 1);
    bool new_caps[MIGRATION_CAPABILITY__MAX];
    static const char *const known[] = { "capability", "state", NULL };

    /* The arguments first, as QEMU's visitor checks them before the command runs. */
    for (guint i = 0; i < n; i++) {
        JsonNode *el = json_array_get_element(list, i);
        g_autofree char *path = g_strdup_printf("capabilities[%u]", i);
        JsonObject *obj;

        obj = mig_qmp_object_element(el, path, errp);
        if (!obj || !mig_qmp_member(obj, path, "capability", MIG_QMP_STR, errp)) {
            return NULL;
        }
        const char *name = json_object_get_string_member(obj, "capability");
        if (!migration_capability_parse(name, &which[i])) {
            mig_qmp_error(errp, "Parameter 'capability' does not accept value '%s'", name);
            return NULL;
        }
        if (!mig_qmp_member(obj, path, "state", MIG_QMP_BOOL, errp) ||
            !mig_qmp_no_extra_members(obj, path, known, errp)) {
            return NULL;
        }
        state[i] = json_object_get_boolean_member(obj, "state");
    }

    if (migration_options_locked()) {
        mig_qmp_error(errp, "There's a migration process in progress");
        return NULL;
    }

    for (int c = 0; c < MIGRATION_CAPABILITY__MAX; c++) {
        new_caps[c] = migrate_cap(c);
    }
    for (guint i = 0; i < n; i++) {
        if (state[i] && !cap_info[which[i]].supported) {
            mig_qmp_error(errp, "Capability '%s' is not supported by Ferry yet",
                          cap_info[which[i]].name);
            return NULL;
        }
        new_caps[which[i]] = state[i];
    }
    if (!caps_check(caps, new_caps, errp)) {
        return NULL;
    }
    for (int c = 0; c < MIGRATION_CAPABILITY__MAX; c++) {
        __atomic_store_n(&caps[c], new_caps[c], __ATOMIC_RELAXED);
    }
    return NULL;
}

static JsonNode *qmp_query_migrate_capabilities(JsonObject *args, GError **errp)
{
    JsonArray *list = json_array_new();

    for (int c = 0; c < MIGRATION_CAPABILITY__MAX; c++) {
        JsonObject *entry = json_object_new();
        json_object_set_string_member(entry, "capability", cap_info[c].name);
        json_object_set_boolean_member(entry, "state", migrate_cap(c));
        json_array_add_object_element(list, entry);
    }
    JsonNode *node = json_node_new(JSON_NODE_ARRAY);

    json_node_take_array(node, list);
    return node;
}

/* ---- migrate-set-parameters / query-migrate-parameters ---- */

/* BitmapMigrationNodeAlias list: shape and uniqueness of names and aliases. */
static bool check_bitmap_mapping(JsonArray *list, GError **errp)
{
    static const char *const node_known[] = { "node-name", "alias", "bitmaps", NULL };
    static const char *const bitmap_known[] = { "name", "alias", "transform", NULL };
    static const char *const transform_known[] = { "persistent", NULL };
    g_autoptr(GHashTable) node_names = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GHashTable) node_aliases = g_hash_table_new(g_str_hash, g_str_equal);

    for (guint i = 0; i < json_array_get_length(list); i++) {
        JsonNode *el = json_array_get_element(list, i);
        g_autofree char *path = g_strdup_printf("block-bitmap-mapping[%u]", i);

        JsonObject *node = mig_qmp_object_element(el, path, errp);
        if (!node || !mig_qmp_member(node, path, "node-name", MIG_QMP_STR, errp) ||
            !mig_qmp_member(node, path, "alias", MIG_QMP_STR, errp) ||
            !mig_qmp_member(node, path, "bitmaps", MIG_QMP_ARRAY, errp) ||
            !mig_qmp_no_extra_members(node, path, node_known, errp)) {
            return false;
        }
        JsonArray *bitmaps = json_object_get_array_member(node, "bitmaps");
        for (guint j = 0; j < json_array_get_length(bitmaps); j++) {
            JsonNode *bel = json_array_get_element(bitmaps, j);
            g_autofree char *bpath = g_strdup_printf("%s.bitmaps[%u]", path, j);

            JsonObject *bm = mig_qmp_object_element(bel, bpath, errp);
            if (!bm || !mig_qmp_member(bm, bpath, "name", MIG_QMP_STR, errp) ||
                !mig_qmp_member(bm, bpath, "alias", MIG_QMP_STR, errp) ||
                !mig_qmp_optional_member(bm, bpath, "transform", MIG_QMP_OBJECT, errp) ||
                !mig_qmp_no_extra_members(bm, bpath, bitmap_known, errp)) {
                return false;
            }
            if (json_object_has_member(bm, "transform")) {
                JsonObject *tr = json_object_get_object_member(bm, "transform");
                g_autofree char *tpath = g_strdup_printf("%s.transform", bpath);
                if (!mig_qmp_optional_member(tr, tpath, "persistent", MIG_QMP_BOOL, errp) ||
                    !mig_qmp_no_extra_members(tr, tpath, transform_known, errp)) {
                    return false;
                }
            }
        }
        const char *name = json_object_get_string_member(node, "node-name");
        const char *alias = json_object_get_string_member(node, "alias");
        if (!g_hash_table_add(node_names, (gpointer)name)) {
            mig_qmp_error(errp, "Invalid mapping given for block-bitmap-mapping: "
                          "Duplicate node name '%s'", name);
            return false;
        }
        if (!g_hash_table_add(node_aliases, (gpointer)alias)) {
            mig_qmp_error(errp, "Invalid mapping given for block-bitmap-mapping: "
                          "Duplicate node alias '%s'", alias);
            return false;
        }
    }
    return true;
}

/* QEMU's checks of the merged parameters, in QEMU's order and words. */
static bool params_check(const MigrationParameters *p, bool tls, GError **errp)
{
    if (p->throttle_trigger_threshold < 1 || p->throttle_trigger_threshold > 100) {
        mig_qmp_error(errp, "Parameter 'throttle_trigger_threshold' expects "
                      "an integer in the range of 1 to 100");
        return false;
    }
    if (p->cpu_throttle_initial < 1 || p->cpu_throttle_initial > 99) {
        mig_qmp_error(errp, "Parameter 'cpu_throttle_initial' expects "
                      "an integer in the range of 1 to 99");
        return false;
    }
    if (p->cpu_throttle_increment < 1 || p->cpu_throttle_increment > 99) {
        mig_qmp_error(errp, "Parameter 'cpu_throttle_increment' expects "
                      "an integer in the range of 1 to 99");
        return false;
    }
    if (p->downtime_limit > MAX_MIGRATE_DOWNTIME_MS) {
        mig_qmp_error(errp, "Parameter 'downtime_limit' expects "
                      "an integer in the range of 0 to %d ms", MAX_MIGRATE_DOWNTIME_MS);
        return false;
    }
    if (p->multifd_channels < 1) {
        mig_qmp_error(errp, "Parameter 'multifd_channels' expects a value between 1 and 255");
        return false;
    }
    if (p->multifd_zlib_level > 9) {
        mig_qmp_error(errp, "Parameter 'multifd_zlib_level' expects a value between 0 and 9");
        return false;
    }
    if (p->multifd_zstd_level > 20) {
        mig_qmp_error(errp, "Parameter 'multifd_zstd_level' expects a value between 0 and 20");
        return false;
    }
    if (p->xbzrle_cache_size < TARGET_PAGE_SIZE ||
        (p->xbzrle_cache_size & (p->xbzrle_cache_size - 1))) {
        mig_qmp_error(errp, "Parameter 'xbzrle_cache_size' expects "
                      "a power of two no less than the target page size");
        return false;
    }
    if (p->max_cpu_throttle < p->cpu_throttle_initial || p->max_cpu_throttle > 99) {
        mig_qmp_error(errp, "Parameter 'max_cpu_throttle' expects "
                      "an integer in the range of cpu_throttle_initial to 99");
        return false;
    }
    if (p->announce_initial > 100000) {
        mig_qmp_error(errp, "Parameter 'announce_initial' expects a value between 0 and 100000");
        return false;
    }
    if (p->announce_max > 100000) {
        mig_qmp_error(errp, "Parameter 'announce_max' expects a value between 0 and 100000");
        return false;
    }
    if (p->announce_rounds > 1000) {
        mig_qmp_error(errp, "Parameter 'announce_rounds' expects a value between 0 and 1000");
        return false;
    }
    if (p->announce_step < 1 || p->announce_step > 10000) {
        mig_qmp_error(errp, "Parameter 'announce_step' expects a value between 0 and 10000");
        return false;
    }
    if (migrate_cap(MIGRATION_CAPABILITY_ZERO_COPY_SEND) &&
        (p->multifd_compression != MULTIFD_COMPRESSION_NONE || tls)) {
        mig_qmp_error(errp, "Zero copy only available for non-compressed"
                      " non-TLS multifd migration");
        return false;
    }
    if (migrate_cap(MIGRATION_CAPABILITY_MAPPED_RAM) &&
        (p->multifd_compression != MULTIFD_COMPRESSION_NONE || tls)) {
        mig_qmp_error(errp, "Mapped-ram only available for non-compressed"
                      " non-TLS multifd migration");
        return false;
    }
    if (p->x_vcpu_dirty_limit_period < 1 || p->x_vcpu_dirty_limit_period > 1000) {
        mig_qmp_error(errp, "Parameter 'x-vcpu-dirty-limit-period' expects "
                      "a value between 1 and 1000");
        return false;
    }
    if (p->vcpu_dirty_limit < 1) {
        mig_qmp_error(errp, "Parameter 'vcpu_dirty_limit' must be greater than 1 MB/s");
        return false;
    }
    return true;
}

/* What Ferry cannot do yet, after QEMU's own checks passed. */
static bool params_check_ferry(const MigrationParameters *p, bool tls, GError **errp)
{
    if (tls) {
        mig_qmp_error(errp, "TLS (tls-creds) is not supported by Ferry yet");
        return false;
    }
    if (p->mode != MIG_MODE_NORMAL) {
        mig_qmp_error(errp, "Migration mode '%s' is not supported by Ferry yet",
                      mig_mode_names[p->mode]);
        return false;
    }
    return true;
}

static JsonNode *qmp_migrate_set_parameters(JsonObject *args, GError **errp)
{
    MigrationParameters next = params;
    g_autofree char *creds = migrate_tls_creds();

    /* Values the JSON type alone does not bound (uint8, uint32, enums, StrOrNull). */
    for (size_t i = 0; i < PARAM_COUNT; i++) {
        const ParamDesc *d = &param_table[i];
        JsonNode *v = json_object_get_member(args, d->name);

        if (!v) {
            continue;
        }
        switch (d->type) {
        case PARAM_U8:
        case PARAM_U32: {
            uint64_t max = d->type == PARAM_U8 ? G_MAXUINT8 : G_MAXUINT32;
            if ((uint64_t)json_node_get_int(v) > max) {
                mig_qmp_error(errp, "Parameter '%s' expects %s", d->name,
                              d->type == PARAM_U8 ? "uint8" : "uint32");
                return NULL;
            }
            param_put(&next, d, json_node_get_int(v));
            break;
        }
        case PARAM_SIZE:
        case PARAM_U64:
            param_put(&next, d, json_node_get_int(v));
            break;
        case PARAM_BOOL:
            param_put(&next, d, json_node_get_boolean(v));
            break;
        case PARAM_ENUM: {
            int idx = enum_lookup(d->values, json_node_get_string(v));
            if (idx < 0) {
                mig_qmp_error(errp, "Parameter '%s' does not accept value '%s'", d->name,
                              json_node_get_string(v));
                return NULL;
            }
            param_put(&next, d, idx);
            break;
        }
        case PARAM_STR_OR_NULL:
            if (!JSON_NODE_HOLDS_NULL(v) && !json_is_type(v, G_TYPE_STRING)) {
                mig_qmp_error(errp, "Invalid parameter type for '%s', expected: StrOrNull",
                              d->name);
                return NULL;
            }
            if (!strcmp(d->name, "tls-creds")) {
                g_free(creds);
                creds = g_strdup(JSON_NODE_HOLDS_NULL(v) ? "" : json_node_get_string(v));
            }
            break;
        case PARAM_MAPPING:
            if (!check_bitmap_mapping(json_node_get_array(v), errp)) {
                return NULL;
            }
            break;
        }
    }
    bool tls = creds[0] != '\0';
    if (!params_check(&next, tls, errp) || !params_check_ferry(&next, tls, errp)) {
        return NULL;
    }

    /* All checks passed: apply, one atomic store per field. */
    for (size_t i = 0; i < PARAM_COUNT; i++) {
        const ParamDesc *d = &param_table[i];
        JsonNode *v = json_object_get_member(args, d->name);

        if (!v) {
            continue;
        }
        if (d->type == PARAM_STR_OR_NULL) {
            char **field = !strcmp(d->name, "tls-creds") ? &tls_creds
                         : !strcmp(d->name, "tls-hostname") ? &tls_hostname : &tls_authz;
            g_mutex_lock(&tls_lock);
            g_free(*field);
            /* null resets: to "" for creds and hostname, to unset for authz */
            *field = JSON_NODE_HOLDS_NULL(v) ? NULL : g_strdup(json_node_get_string(v));
            g_mutex_unlock(&tls_lock);
        } else if (d->type == PARAM_MAPPING) {
            g_clear_pointer(&bitmap_mapping, json_node_unref);
            bitmap_mapping = json_node_copy(v);
        } else {
            param_put(&params, d, param_get(&next, d));
        }
    }
    return NULL;
}

static JsonNode *qmp_query_migrate_parameters(JsonObject *args, GError **errp)
{
    JsonObject *obj = json_object_new();

    for (size_t i = 0; i < PARAM_COUNT; i++) {
        const ParamDesc *d = &param_table[i];

        switch (d->type) {
        case PARAM_SIZE:
        case PARAM_U8:
        case PARAM_U32:
        case PARAM_U64:
            json_object_set_int_member(obj, d->name, (gint64)param_get(&params, d));
            break;
        case PARAM_BOOL:
            json_object_set_boolean_member(obj, d->name, param_get(&params, d) != 0);
            break;
        case PARAM_ENUM:
            json_object_set_string_member(obj, d->name, d->values[param_get(&params, d)]);
            break;
        case PARAM_STR_OR_NULL: {
            g_autofree char *s = !strcmp(d->name, "tls-creds") ? migrate_tls_creds()
                               : !strcmp(d->name, "tls-hostname") ? migrate_tls_hostname()
                               : migrate_tls_authz();
            json_object_set_string_member(obj, d->name, s);
            break;
        }
        case PARAM_MAPPING:
            if (bitmap_mapping) {
                json_object_set_member(obj, d->name, json_node_copy(bitmap_mapping));
            }
            break;
        }
    }
    JsonNode *node = json_node_new(JSON_NODE_OBJECT);

    json_node_take_object(node, obj);
    return node;
}

/* ---- HMP value parsing (QEMU's string visitor conventions) ---- */

static bool hmp_parse_u64(const char *s, uint64_t *out)
{
    char *end;

    if (!*s) {
        return false;
    }
    errno = 0;
    *out = g_ascii_strtoull(s, &end, 0);
    return !errno && end != s && !*end;
}

JsonObject *migration_parameter_from_string(const char *name, const char *value,
                                            GError **errp)
{
    const ParamDesc *d = param_find(name);
    g_autoptr(JsonObject) obj = json_object_new();
    uint64_t v;

    if (!d) {
        mig_qmp_error(errp, "invalid parameter value: %s", name);
        return NULL;
    }
    if (d->hmp == HMP_QMP_ONLY) {
        mig_qmp_error(errp, "The %s parameter can only be set through QMP", name);
        return NULL;
    }
    if (d->hmp == HMP_MIB) {
        if (!parse_size(value, 1 << 20, &v) || v > G_MAXINT64) {
            mig_qmp_error(errp, "Invalid size %s", value);
            return NULL;
        }
        json_object_set_int_member(obj, name, (gint64)v);
        return g_steal_pointer(&obj);
    }
    switch (d->type) {
    case PARAM_SIZE:
    case PARAM_U64:
        if (!parse_size(value, 1, &v)) {
            mig_qmp_error(errp, "Parameter '%s' expects a size value", name);
            return NULL;
        }
        if (v > G_MAXINT64) {
            mig_qmp_error(errp, "Invalid size %s", value);
            return NULL;
        }
        json_object_set_int_member(obj, name, (gint64)v);
        break;
    case PARAM_U8:
    case PARAM_U32:
        if (!hmp_parse_u64(value, &v)) {
            mig_qmp_error(errp, "Parameter '%s' expects a uint64 value", name);
            return NULL;
        }
        if (v > (d->type == PARAM_U8 ? G_MAXUINT8 : G_MAXUINT32)) {
            mig_qmp_error(errp, "Parameter '%s' expects %s", name,
                          d->type == PARAM_U8 ? "uint8" : "uint32");
            return NULL;
        }
        json_object_set_int_member(obj, name, (gint64)v);
        break;
    case PARAM_BOOL:
        if (!strcmp(value, "on") || !strcmp(value, "yes") || !strcmp(value, "true")) {
            json_object_set_boolean_member(obj, name, TRUE);
        } else if (!strcmp(value, "off") || !strcmp(value, "no") ||
                   !strcmp(value, "false")) {
            json_object_set_boolean_member(obj, name, FALSE);
        } else {
            mig_qmp_error(errp, "Invalid parameter type for '%s', expected: boolean", name);
            return NULL;
        }
        break;
    case PARAM_ENUM:
        if (enum_lookup(d->values, value) < 0) {
            mig_qmp_error(errp, "Parameter '%s' does not accept value '%s'", name, value);
            return NULL;
        }
        json_object_set_string_member(obj, name, value);
        break;
    case PARAM_STR_OR_NULL:
        json_object_set_string_member(obj, name, value);
        break;
    case PARAM_MAPPING:
        g_assert_not_reached();
    }
    return g_steal_pointer(&obj);
}

/* ---- registration ---- */

static const QmpArgSpec set_capabilities_args[] = {
    { "capabilities", QMP_ARG_ARRAY, false },
    { NULL },
};

/* Built from param_table: every member optional, typed as QEMU declares it. */
static QmpArgSpec set_parameters_args[PARAM_COUNT + 1];

static void build_set_parameters_args(void)
{
    for (size_t i = 0; i < PARAM_COUNT; i++) {
        QmpArgType t = QMP_ARG_ANY;

        switch (param_table[i].type) {
        case PARAM_SIZE:
            t = QMP_ARG_SIZE;
            break;
        case PARAM_U8:
        case PARAM_U32:
        case PARAM_U64:
            t = QMP_ARG_UINT;
            break;
        case PARAM_BOOL:
            t = QMP_ARG_BOOL;
            break;
        case PARAM_ENUM:
            t = QMP_ARG_STR;
            break;
        case PARAM_STR_OR_NULL:
            t = QMP_ARG_ANY;    /* string or null, checked by the command */
            break;
        case PARAM_MAPPING:
            t = QMP_ARG_ARRAY;
            break;
        }
        set_parameters_args[i] = (QmpArgSpec){ param_table[i].name, t, true };
    }
    set_parameters_args[PARAM_COUNT] = (QmpArgSpec){ NULL };
}

void migration_options_register_commands(void)
{
    static bool registered;
    static const QmpCommand cmds[] = {
        { "migrate-set-capabilities", qmp_migrate_set_capabilities, set_capabilities_args,
          0 },
        { "query-migrate-capabilities", qmp_query_migrate_capabilities, NULL, 0 },
        { "migrate-set-parameters", qmp_migrate_set_parameters, set_parameters_args, 0 },
        { "query-migrate-parameters", qmp_query_migrate_parameters, NULL, 0 },
    };

    if (registered) {
        return;
    }
    registered = true;
    build_set_parameters_args();
    qmp_register_commands(cmds, G_N_ELEMENTS(cmds));
}
