/*
 * The migration stream: the registry of participants and the sections
 * that carry their state. Format: docs/devel/migration-stream.md.
 */
#include <string.h>
#include <gio/gio.h>

#include "migration/multifd.h"
#include "migration/options.h"
#include "migration/register.h"
#include "migration/savevm.h"
#include "system/accel.h"
#include "system/cpus.h"
#include "system/machine.h"
#include "system/main-loop.h"
#include "system/ramblock.h"

#define SAVEVM_MAX_SECTIONS 4096
#define SAVEVM_CONFIG_MAX   (64 * 1024)

typedef struct SaveStateEntry {
    char *idstr;
    uint32_t instance_id;
    int version_id;
    uint32_t section_id;
    const SaveVMHandlers *ops;          /* live participants */
    const VMStateDescription *vmsd;     /* devices */
    void *opaque;
    bool loaded;                        /* destination: a START/FULL section arrived */
    bool ended;                         /* destination: a live participant's END arrived */
    /*
     * An older form of other registrations' state (vmstate_register_old_form()):
     * never saved, never required; loading it stands for loading those.
     */
    char **replaces;
    bool optional;                      /* may be absent from a stream */
} SaveStateEntry;

static GPtrArray *savevm_entries;

static GPtrArray *savevm_list(void)
{
    if (!savevm_entries) {
        savevm_entries = g_ptr_array_new();
    }
    return savevm_entries;
}

/* The registration of (@idstr, @instance_id) in its current form (not an old one). */
static SaveStateEntry *savevm_find(const char *idstr, uint32_t instance_id)
{
    GPtrArray *list = savevm_list();
    for (guint i = 0; i < list->len; i++) {
        SaveStateEntry *se = g_ptr_array_index(list, i);
        if (!se->replaces && se->instance_id == instance_id && strcmp(se->idstr, idstr) == 0) {
            return se;
        }
    }
    return NULL;
}

static bool savevm_version_ok(const SaveStateEntry *se, uint32_t version_id)
{
    int min = se->vmsd ? se->vmsd->minimum_version_id : 0;
    return version_id <= (uint32_t)se->version_id && (int64_t)version_id >= min;
}

/*
 * Who loads a section (@idstr, @instance_id) of @version_id: the current
 * form if it takes that version, else an old form of the same name that
 * does (a section whose layout changed with its version), else the
 * current form (which then refuses the version), else an old form.
 */
static SaveStateEntry *savevm_find_for_load(const char *idstr, uint32_t instance_id,
                                            uint32_t version_id)
{
    GPtrArray *list = savevm_list();
    SaveStateEntry *cur = savevm_find(idstr, instance_id), *old = NULL;

    if (cur && savevm_version_ok(cur, version_id)) {
        return cur;
    }
    for (guint i = 0; i < list->len; i++) {
        SaveStateEntry *se = g_ptr_array_index(list, i);
        if (se->replaces && se->instance_id == instance_id && strcmp(se->idstr, idstr) == 0) {
            if (savevm_version_ok(se, version_id)) {
                return se;
            }
            old = old ? old : se;
        }
    }
    return cur ? cur : old;
}

static void savevm_add(SaveStateEntry *se)
{
    GPtrArray *list = savevm_list();
    g_assert(strlen(se->idstr) <= 255);
    /* An old form may share its name with the current one (told apart by version). */
    g_assert(se->replaces || !savevm_find(se->idstr, se->instance_id));
    se->section_id = list->len;
    g_ptr_array_add(list, se);
}

void register_savevm_live(const char *idstr, uint32_t instance_id, int version_id,
                          const SaveVMHandlers *ops, void *opaque)
{
    SaveStateEntry *se = g_new0(SaveStateEntry, 1);
    se->idstr = g_strdup(idstr);
    se->instance_id = instance_id;
    se->version_id = version_id;
    se->ops = ops;
    se->opaque = opaque;
    savevm_add(se);
}

void vmstate_register(const char *idstr, uint32_t instance_id,
                      const VMStateDescription *vmsd, void *opaque)
{
    SaveStateEntry *se = g_new0(SaveStateEntry, 1);
    se->idstr = g_strdup(idstr ? idstr : vmsd->name);
    se->instance_id = instance_id;
    se->version_id = vmsd->version_id;
    se->vmsd = vmsd;
    se->opaque = opaque;
    savevm_add(se);
}

void vmstate_register_old_form(const char *idstr, uint32_t instance_id,
                               const VMStateDescription *vmsd, void *opaque,
                               const char *const *replaces)
{
    SaveStateEntry *se = g_new0(SaveStateEntry, 1);
    se->idstr = g_strdup(idstr ? idstr : vmsd->name);
    se->instance_id = instance_id;
    se->version_id = vmsd->version_id;
    se->vmsd = vmsd;
    se->opaque = opaque;
    se->replaces = g_strdupv((char **)replaces);
    savevm_add(se);
}

void vmstate_register_optional(const char *idstr, uint32_t instance_id,
                               const VMStateDescription *vmsd, void *opaque)
{
    vmstate_register(idstr, instance_id, vmsd, opaque);
    savevm_find(idstr ? idstr : vmsd->name, instance_id)->optional = true;
}

void vmstate_register_load_only(const char *idstr, uint32_t instance_id,
                                const VMStateDescription *vmsd, void *opaque)
{
    static const char *const nothing[] = { NULL };
    vmstate_register_old_form(idstr, instance_id, vmsd, opaque, nothing);
}

void unregister_savevm(const char *idstr, uint32_t instance_id)
{
    SaveStateEntry *se;
    while ((se = savevm_find(idstr, instance_id)) ||
           (se = savevm_find_for_load(idstr, instance_id, 0))) {
        g_ptr_array_remove(savevm_list(), se);
        g_free(se->idstr);
        g_strfreev(se->replaces);
        g_free(se);
    }
}

/* ---------------------------------------------------------------- source */

static void save_section_header(QEMUFile *f, SaveStateEntry *se, uint8_t type)
{
    qemu_put_byte(f, type);
    qemu_put_be32(f, se->section_id);
    if (type == FERRY_VM_SECTION_START || type == FERRY_VM_SECTION_FULL) {
        qemu_put_counted_string(f, se->idstr);
        qemu_put_be32(f, se->instance_id);
        qemu_put_be32(f, (uint32_t)se->version_id);
    }
}

static void save_section_footer(QEMUFile *f, SaveStateEntry *se)
{
    qemu_put_byte(f, FERRY_VM_SECTION_FOOTER);
    qemu_put_be32(f, se->section_id);
}

/*
 * The configuration the destination checks before it loads anything:
 * machine type, vCPU count, target page size and the RAM blocks.
 */
static void savevm_put_configuration(QEMUFile *f)
{
    GPtrArray *blocks = ramblock_list();
    GByteArray *cfg = g_byte_array_new();
    guint8 b;

#define CFG_PUT(v, n) do { \
        uint64_t v_ = (v); \
        for (int i_ = (n) - 1; i_ >= 0; i_--) { \
            b = (guint8)(v_ >> (8 * i_)); \
            g_byte_array_append(cfg, &b, 1); \
        } \
    } while (0)
#define CFG_PUT_STR(s) do { \
        size_t l_ = strlen(s); \
        CFG_PUT(l_, 1); \
        g_byte_array_append(cfg, (const guint8 *)(s), (guint)l_); \
    } while (0)

    CFG_PUT_STR(machine_type_name());
    CFG_PUT(TARGET_PAGE_SIZE, 4);
    CFG_PUT(cpus_count(), 4);
    CFG_PUT(blocks->len, 4);
    for (guint i = 0; i < blocks->len; i++) {
        RAMBlock *rb = g_ptr_array_index(blocks, i);
        CFG_PUT_STR(rb->idstr);
        CFG_PUT(rb->used_length, 8);
    }
    /* multifd: the migration's identity and the settings both sides must share. */
    if (multifd_send_active()) {
        CFG_PUT(1, 1);
        g_byte_array_append(cfg, multifd_send_uuid(), MULTIFD_UUID_LEN);
        CFG_PUT(multifd_send_channels(), 4);
        CFG_PUT(multifd_send_compression(), 4);
    } else {
        CFG_PUT(0, 1);
    }
    /* Whose vCPU and interrupt-controller state the device sections carry. */
    CFG_PUT_STR(accel_current()->name);
    /*
     * What the guest sees of its CPU (absent in older streams, and for an
     * accelerator whose state moves nowhere else): 1, the CPUID words,
     * the TSC rate in kHz, kvmclock offered (0/1).
     */
    if (accel_current()->guest_abi) {
        AccelGuestABI abi = { 0 };
        accel_current()->guest_abi(&abi);
        accel_guest_abi_mask(&abi);
        CFG_PUT(1, 1);
        for (int i = 0; i < ACCEL_CPUID_WORDS; i++) {
            CFG_PUT(abi.cpuid[i], 4);
        }
        CFG_PUT(abi.tsc_khz, 4);
        CFG_PUT(abi.kvmclock, 1);
    }
#undef CFG_PUT
#undef CFG_PUT_STR

    qemu_put_byte(f, FERRY_VM_CONFIGURATION);
    qemu_put_be32(f, cfg->len);
    qemu_put_buffer(f, cfg->data, cfg->len);
    g_byte_array_unref(cfg);
}

void qemu_savevm_state_header(QEMUFile *f)
{
    qemu_put_be32(f, FERRY_VM_FILE_MAGIC);
    qemu_put_be32(f, FERRY_VM_FILE_VERSION);
    savevm_put_configuration(f);
}

static bool savevm_file_ok(QEMUFile *f, GError **errp)
{
    if (qemu_file_get_error(f)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", qemu_file_error_message(f));
        return false;
    }
    return true;
}

bool qemu_savevm_state_setup(QEMUFile *f, GError **errp)
{
    GPtrArray *list = savevm_list();
    for (guint i = 0; i < list->len; i++) {
        SaveStateEntry *se = g_ptr_array_index(list, i);
        if (!se->ops || !se->ops->save_setup) {
            continue;
        }
        save_section_header(f, se, FERRY_VM_SECTION_START);
        if (!se->ops->save_setup(f, se->opaque, errp)) {
            return false;
        }
        save_section_footer(f, se);
    }
    return savevm_file_ok(f, errp);
}

int qemu_savevm_state_iterate(QEMUFile *f, GError **errp)
{
    GPtrArray *list = savevm_list();
    int all_done = 1;

    for (guint i = 0; i < list->len; i++) {
        SaveStateEntry *se = g_ptr_array_index(list, i);
        if (!se->ops || !se->ops->save_live_iterate) {
            continue;
        }
        save_section_header(f, se, FERRY_VM_SECTION_PART);
        int r = se->ops->save_live_iterate(f, se->opaque, errp);
        save_section_footer(f, se);
        if (r < 0) {
            return -1;
        }
        if (r == 0) {
            all_done = 0;
            break;      /* rate limited: the rest waits for the next window */
        }
    }
    if (!savevm_file_ok(f, errp)) {
        return -1;
    }
    return all_done;
}

bool qemu_savevm_state_complete_precopy(QEMUFile *f, GError **errp)
{
    GPtrArray *list = savevm_list();

    for (guint i = 0; i < list->len; i++) {
        SaveStateEntry *se = g_ptr_array_index(list, i);
        if (!se->ops || !se->ops->save_live_complete_precopy) {
            continue;
        }
        save_section_header(f, se, FERRY_VM_SECTION_END);
        if (!se->ops->save_live_complete_precopy(f, se->opaque, errp)) {
            return false;
        }
        save_section_footer(f, se);
    }
    for (guint i = 0; i < list->len; i++) {
        SaveStateEntry *se = g_ptr_array_index(list, i);
        if (!se->vmsd || se->replaces) {
            continue;
        }
        save_section_header(f, se, FERRY_VM_SECTION_FULL);
        if (!vmstate_save(f, se->vmsd, se->opaque, errp)) {
            g_prefix_error(errp, "saving '%s' (instance %u): ", se->idstr, se->instance_id);
            return false;
        }
        save_section_footer(f, se);
    }
    qemu_put_byte(f, FERRY_VM_EOF);
    qemu_fflush(f);
    return savevm_file_ok(f, errp);
}

static void savevm_pending(bool exact, uint64_t *must_precopy, uint64_t *can_postcopy)
{
    GPtrArray *list = savevm_list();
    *must_precopy = 0;
    *can_postcopy = 0;
    for (guint i = 0; i < list->len; i++) {
        SaveStateEntry *se = g_ptr_array_index(list, i);
        if (!se->ops) {
            continue;
        }
        if (exact && se->ops->state_pending_exact) {
            se->ops->state_pending_exact(se->opaque, must_precopy, can_postcopy);
        } else if (se->ops->state_pending_estimate) {
            se->ops->state_pending_estimate(se->opaque, must_precopy, can_postcopy);
        }
    }
}

void qemu_savevm_state_pending_estimate(uint64_t *must_precopy, uint64_t *can_postcopy)
{
    savevm_pending(false, must_precopy, can_postcopy);
}

void qemu_savevm_state_pending_exact(uint64_t *must_precopy, uint64_t *can_postcopy)
{
    savevm_pending(true, must_precopy, can_postcopy);
}

void qemu_savevm_state_cleanup(void)
{
    GPtrArray *list = savevm_list();
    for (guint i = 0; i < list->len; i++) {
        SaveStateEntry *se = g_ptr_array_index(list, i);
        if (se->ops && se->ops->save_cleanup) {
            se->ops->save_cleanup(se->opaque);
        }
    }
}

/* ----------------------------------------------------------- destination */

static bool loadvm_fail(GError **errp, QEMUFile *f, const char *what)
{
    if (qemu_file_get_error(f)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: %s", what,
                    qemu_file_error_message(f));
    } else {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s", what);
    }
    return false;
}

typedef struct ConfigReader {
    const guint8 *p;
    size_t left;
    bool bad;
} ConfigReader;

static uint64_t cfg_get(ConfigReader *r, unsigned n)
{
    uint64_t v = 0;
    if (r->left < n) {
        r->bad = true;
        return 0;
    }
    for (unsigned i = 0; i < n; i++) {
        v = (v << 8) | r->p[i];
    }
    r->p += n;
    r->left -= n;
    return v;
}

static char *cfg_get_str(ConfigReader *r)
{
    size_t len = (size_t)cfg_get(r, 1);
    if (r->bad || r->left < len) {
        r->bad = true;
        return g_strdup("");
    }
    char *s = g_strndup((const char *)r->p, len);
    r->p += len;
    r->left -= len;
    return s;
}

/* The multifd part of the configuration: set up the receive side, or refuse. */
static bool loadvm_check_multifd(QEMUFile *f, ConfigReader *r, GError **errp)
{
    bool multifd = r->left > 0 && cfg_get(r, 1) == 1;
    uint8_t uuid[MULTIFD_UUID_LEN];

    if (!multifd) {
        if (migrate_cap(MIGRATION_CAPABILITY_MULTIFD)) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                        "the multifd capability is on here, but the source does not use "
                        "multifd: set it the same on both sides");
            return false;
        }
        return true;
    }
    for (unsigned i = 0; i < MULTIFD_UUID_LEN; i++) {
        uuid[i] = (uint8_t)cfg_get(r, 1);
    }
    uint32_t channels = (uint32_t)cfg_get(r, 4);
    uint32_t compression = (uint32_t)cfg_get(r, 4);
    if (r->bad || channels < 1 || channels > 255 || compression >= MULTIFD_COMPRESSION__MAX) {
        return loadvm_fail(errp, f, "malformed multifd part of the configuration section");
    }
    return multifd_recv_setup(uuid, channels, (MultiFDCompression)compression,
                              qemu_file_channel(f), errp);
}

/*
 * The source's accelerator and what its guest saw of the CPU (@src, NULL
 * in older streams), against this VM. Device state moves between KVM and
 * the software CPU in the neutral forms, as long as the guest keeps what
 * it relies on: no CPUID feature it was offered goes away, its TSC keeps
 * its rate, and kvmclock only on KVM. Anything else is refused here,
 * before any state is loaded, with what differs.
 */
static bool loadvm_check_guest_abi(const char *accel, const AccelGuestABI *src, GError **errp)
{
    const AccelOps *ops = accel_current();
    bool same = strcmp(accel, ops->name) == 0;

    if (!same && (!src || !ops->guest_abi || !ops->adopt_guest_abi)) {
        g_autofree char *quoted = g_strescape(accel, NULL);
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "accelerator mismatch: the source ran on %s, this VM runs on %s, and "
                    "their vCPU and interrupt controller state differ (use the same -accel "
                    "on both sides)", quoted, ops->name);
        return false;
    }
    if (!src || !ops->guest_abi) {
        return true;
    }
    AccelGuestABI here = { 0 };
    ops->guest_abi(&here);
    accel_guest_abi_mask(&here);
    GString *lacking = g_string_new(NULL);
    for (int i = 0; i < ACCEL_CPUID_WORDS; i++) {
        uint32_t bits = src->cpuid[i] & ~here.cpuid[i];
        if (bits) {
            g_autofree char *names = accel_cpuid_bit_names(i, bits);
            g_string_append_printf(lacking, "%s%s", lacking->len ? " " : "", names);
        }
    }
    if (lacking->len) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "CPU features the source offered and this %s CPU lacks: %s (start the "
                    "source with a CPU model both sides offer, such as -cpu qemu64)", ops->name,
                    lacking->str);
        g_string_free(lacking, TRUE);
        return false;
    }
    g_string_free(lacking, TRUE);
    if (src->kvmclock && strcmp(ops->name, "kvm") != 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "the source's CPU offers kvmclock (KVM's paravirtual clock, which its "
                    "guest may use), which %s does not emulate (a CPU model without KVM's "
                    "paravirtual leaves, such as -cpu qemu64, keeps a guest off kvmclock)",
                    ops->name);
        return false;
    }
    return (same && src->tsc_khz == here.tsc_khz) || ops->adopt_guest_abi(src, errp);
}

static bool loadvm_check_configuration(QEMUFile *f, GError **errp)
{
    if (qemu_get_byte(f) != FERRY_VM_CONFIGURATION) {
        return loadvm_fail(errp, f, "the stream lacks its configuration section");
    }
    uint32_t len = qemu_get_be32(f);
    if (len > SAVEVM_CONFIG_MAX) {
        return loadvm_fail(errp, f, "configuration section too large");
    }
    g_autofree guint8 *buf = g_malloc(len ? len : 1);
    if (qemu_get_buffer(f, buf, len) != len) {
        return loadvm_fail(errp, f, "truncated configuration section");
    }
    ConfigReader r = { .p = buf, .left = len };
    g_autofree char *machine = cfg_get_str(&r);
    uint32_t page_size = (uint32_t)cfg_get(&r, 4);
    uint32_t ncpus = (uint32_t)cfg_get(&r, 4);
    uint32_t nblocks = (uint32_t)cfg_get(&r, 4);
    if (r.bad) {
        return loadvm_fail(errp, f, "malformed configuration section");
    }
    if (strcmp(machine, machine_type_name()) != 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "machine type mismatch: the stream is for '%s', this VM is '%s'",
                    machine, machine_type_name());
        return false;
    }
    if (page_size != TARGET_PAGE_SIZE) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "target page size mismatch: stream %u, this VM %llu", page_size,
                    (unsigned long long)TARGET_PAGE_SIZE);
        return false;
    }
    if (ncpus != (uint32_t)cpus_count()) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "vCPU count mismatch: the source has %u, this VM has %d (-smp)", ncpus,
                    cpus_count());
        return false;
    }
    GPtrArray *blocks = ramblock_list();
    for (uint32_t i = 0; i < nblocks; i++) {
        g_autofree char *id = cfg_get_str(&r);
        uint64_t size = cfg_get(&r, 8);
        if (r.bad) {
            return loadvm_fail(errp, f, "malformed configuration section");
        }
        RAMBlock *rb = ramblock_find(id);
        if (!rb) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                        "RAM block '%s' of the source does not exist here", id);
            return false;
        }
        if (rb->used_length != size) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                        "RAM block '%s' size mismatch: the source has %" G_GUINT64_FORMAT
                        " MiB, this VM %" G_GUINT64_FORMAT " MiB (-m)", id, size >> 20,
                        rb->used_length >> 20);
            return false;
        }
    }
    if (nblocks != blocks->len) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "RAM block count mismatch: the source has %u, this VM %u", nblocks,
                    blocks->len);
        return false;
    }
    if (!loadvm_check_multifd(f, &r, errp)) {
        return false;
    }
    /* Streams from before the software CPU carry no accelerator: they are KVM's. */
    g_autofree char *accel = r.left > 0 ? cfg_get_str(&r) : g_strdup("kvm");
    AccelGuestABI abi = { 0 };
    bool has_abi = r.left > 0 && cfg_get(&r, 1) == 1;
    for (int i = 0; has_abi && i < ACCEL_CPUID_WORDS; i++) {
        abi.cpuid[i] = (uint32_t)cfg_get(&r, 4);
    }
    if (has_abi) {
        abi.tsc_khz = (uint32_t)cfg_get(&r, 4);
        abi.kvmclock = cfg_get(&r, 1) != 0;
    }
    if (r.bad) {
        return loadvm_fail(errp, f, "malformed configuration section");
    }
    return loadvm_check_guest_abi(accel, has_abi ? &abi : NULL, errp);
}

static bool loadvm_check_footer(QEMUFile *f, SaveStateEntry *se, uint32_t section_id,
                                GError **errp)
{
    uint8_t mark = qemu_get_byte(f);
    uint32_t id = qemu_get_be32(f);
    if (qemu_file_get_error(f)) {
        return loadvm_fail(errp, f, "reading a section footer");
    }
    if (mark != FERRY_VM_SECTION_FOOTER || id != section_id) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "section '%s' (instance %u): bad footer (mark 0x%02x, id %u, expected id %u)",
                    se->idstr, se->instance_id, mark, id, section_id);
        return false;
    }
    return true;
}

static bool loadvm_section_body(QEMUFile *f, SaveStateEntry *se, int version_id,
                                GError **errp)
{
    bool ok;
    if (se->vmsd) {
        /* Device state: the main loop must not touch it meanwhile. */
        bql_lock();
        ok = vmstate_load(f, se->vmsd, se->opaque, version_id, errp);
        bql_unlock();
    } else if (se->ops && se->ops->load_state) {
        ok = se->ops->load_state(f, se->opaque, version_id, errp);
    } else {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "section '%s' cannot be loaded", se->idstr);
        ok = false;
    }
    if (!ok && errp && *errp) {
        g_prefix_error(errp, "loading '%s' (instance %u): ", se->idstr, se->instance_id);
    }
    return ok;
}

static bool loadvm_setup(QEMUFile *f, GError **errp)
{
    GPtrArray *list = savevm_list();
    for (guint i = 0; i < list->len; i++) {
        SaveStateEntry *se = g_ptr_array_index(list, i);
        se->loaded = false;
        se->ended = false;
        if (se->ops && se->ops->load_setup && !se->ops->load_setup(f, se->opaque, errp)) {
            return false;
        }
    }
    return true;
}

static void loadvm_cleanup(void)
{
    GPtrArray *list = savevm_list();
    for (guint i = 0; i < list->len; i++) {
        SaveStateEntry *se = g_ptr_array_index(list, i);
        if (se->ops && se->ops->load_cleanup) {
            se->ops->load_cleanup(se->opaque);
        }
    }
}

static bool loadvm_sections(QEMUFile *f, GError **errp)
{
    /* section id on the wire -> our entry; ids are small and bounded. */
    g_autofree SaveStateEntry **by_id = g_new0(SaveStateEntry *, SAVEVM_MAX_SECTIONS);

    for (;;) {
        int type = qemu_get_byte(f);
        if (qemu_file_get_error(f)) {
            return loadvm_fail(errp, f, "reading the next section");
        }
        switch (type) {
        case FERRY_VM_EOF:
            return true;
        case FERRY_VM_SECTION_START:
        case FERRY_VM_SECTION_FULL: {
            char idstr[256];
            uint32_t section_id = qemu_get_be32(f);
            bool got_id = qemu_get_counted_string(f, idstr);
            uint32_t instance_id = qemu_get_be32(f);
            uint32_t version_id = qemu_get_be32(f);
            if (!got_id || qemu_file_get_error(f)) {
                return loadvm_fail(errp, f, "reading a section header");
            }
            if (section_id >= SAVEVM_MAX_SECTIONS) {
                g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                            "section '%s': id %u out of range", idstr, section_id);
                return false;
            }
            SaveStateEntry *se = savevm_find_for_load(idstr, instance_id, version_id);
            if (!se) {
                g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                            "unknown section '%s' (instance %u): the source has a device "
                            "this VM lacks", idstr, instance_id);
                return false;
            }
            if ((type == FERRY_VM_SECTION_FULL) != (se->vmsd != NULL)) {
                g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                            "section '%s' (instance %u) has the wrong section type 0x%02x",
                            idstr, instance_id, type);
                return false;
            }
            if (version_id > (uint32_t)se->version_id) {
                g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                            "section '%s': version %u is newer than this Ferry supports (%d)",
                            idstr, version_id, se->version_id);
                return false;
            }
            by_id[section_id] = se;
            if (!loadvm_section_body(f, se, (int)version_id, errp) ||
                !loadvm_check_footer(f, se, section_id, errp)) {
                return false;
            }
            se->loaded = true;
            /* An older form of other registrations' state stands for them. */
            for (char **r = se->replaces; r && *r; r++) {
                SaveStateEntry *new_form = savevm_find(*r, instance_id);
                if (new_form) {
                    new_form->loaded = true;
                }
            }
            break;
        }
        case FERRY_VM_SECTION_PART:
        case FERRY_VM_SECTION_END: {
            uint32_t section_id = qemu_get_be32(f);
            if (qemu_file_get_error(f)) {
                return loadvm_fail(errp, f, "reading a section header");
            }
            SaveStateEntry *se = section_id < SAVEVM_MAX_SECTIONS ? by_id[section_id] : NULL;
            if (!se || se->vmsd) {
                g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                            "section id %u continues a section that never started", section_id);
                return false;
            }
            if (!loadvm_section_body(f, se, se->version_id, errp) ||
                !loadvm_check_footer(f, se, section_id, errp)) {
                return false;
            }
            if (type == FERRY_VM_SECTION_END) {
                se->ended = true;
            }
            break;
        }
        default:
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                        "unknown section type 0x%02x in the stream", type);
            return false;
        }
    }
}

bool qemu_loadvm_state(QEMUFile *f, GError **errp)
{
    uint32_t magic = qemu_get_be32(f);
    uint32_t version = qemu_get_be32(f);

    if (qemu_file_get_error(f)) {
        return loadvm_fail(errp, f, "reading the stream header");
    }
    if (magic == MULTIFD_CHANNEL_MAGIC) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "a multifd channel arrived as the main stream: the source uses multifd, "
                    "but the multifd capability is off here (set it on both sides)");
        return false;
    }
    if (magic != FERRY_VM_FILE_MAGIC) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "not a Ferry migration stream (magic 0x%08x)", magic);
        return false;
    }
    if (version != FERRY_VM_FILE_VERSION) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "stream format version %u is not supported (this Ferry reads %d)",
                    version, FERRY_VM_FILE_VERSION);
        return false;
    }
    if (!loadvm_check_configuration(f, errp)) {
        return false;
    }
    bool ok = loadvm_setup(f, errp);
    if (ok) {
        /* RAM is prepared (zeroed): pages may land now. */
        multifd_recv_start();
        ok = loadvm_sections(f, errp);
    }
    loadvm_cleanup();
    if (!ok) {
        return false;
    }
    GPtrArray *list = savevm_list();
    for (guint i = 0; i < list->len; i++) {
        SaveStateEntry *se = g_ptr_array_index(list, i);
        if (se->vmsd && !se->loaded && !se->replaces && !se->optional) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                        "the stream has no state for '%s' (instance %u): this VM has a "
                        "device the source lacks", se->idstr, se->instance_id);
            return false;
        }
        /* A live participant (RAM) must have started and finished, or pages are lost. */
        if (se->ops && se->ops->load_state && (!se->loaded || !se->ended)) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                        "the stream ended without the %s of '%s' (instance %u)",
                        se->loaded ? "END section" : "sections", se->idstr, se->instance_id);
            return false;
        }
    }
    return true;
}
