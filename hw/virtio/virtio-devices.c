/*
 * From the command line to virtio devices: -drive, -netdev user and
 * -device virtio-{blk,net}-{device,pci} are checked, then each device
 * gets the next virtio-mmio slot: first the -drive disks in order, then
 * the -device entries in order.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hw/virtio/virtio-blk.h"
#include "hw/virtio/virtio-devices.h"
#include "hw/virtio/virtio-mmio.h"
#include "hw/virtio/virtio-net.h"
#include "net/slirp.h"

#define VIRTIO_DEVICES_ERROR virtio_devices_error_quark()
G_DEFINE_QUARK(ferry-virtio-devices-error-quark, virtio_devices_error)

typedef struct DriveInfo {
    OptList *opts;
    const char *id;
    const char *file;
    bool readonly;
    bool in_use;                /* attached to a device (or to if=virtio/ide) */
} DriveInfo;

static GPtrArray *virtio_devices;

unsigned virtio_devices_count(void)
{
    return virtio_devices ? virtio_devices->len : 0;
}

VirtioDevice *virtio_devices_get(unsigned index)
{
    return index < virtio_devices_count() ? g_ptr_array_index(virtio_devices, index) : NULL;
}

void virtio_devices_reset(void)
{
    for (unsigned i = 0; i < virtio_devices_count(); i++) {
        virtio_mmio_reset(virtio_devices_get(i));
    }
}

/*
 * The option as the user wrote it, for messages. Reading values marks the
 * keys used, so this runs only once the option has failed.
 */
static char *virtio_devices_describe(OptList *opts, const char *implied_key)
{
    GString *s = g_string_new(NULL);

    for (unsigned i = 0; i < opts_count(opts); i++) {
        const char *key = opts_key_at(opts, i);
        const char *value = opts_get(opts, key);
        if (s->len) {
            g_string_append_c(s, ',');
        }
        if (!(i == 0 && implied_key && strcmp(key, implied_key) == 0)) {
            g_string_append_printf(s, "%s=", key);
        }
        for (const char *p = value; *p; p++) {
            if (*p == ',') {
                g_string_append_c(s, ',');      /* a comma in a value is written ",," */
            }
            g_string_append_c(s, *p);
        }
    }
    return g_string_free(s, FALSE);
}

static bool G_GNUC_PRINTF(5, 6)
virtio_devices_fail(GError **errp, const char *option, OptList *opts, const char *implied_key,
                    const char *fmt, ...)
{
    va_list ap;
    g_autofree char *what = virtio_devices_describe(opts, implied_key);

    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(errp, VIRTIO_DEVICES_ERROR, 0, "-%s %s: %s", option, what, msg);
    return false;
}

/* Pass on @err (which does not name the option) with the option in front. */
static bool virtio_devices_fail_with(GError **errp, const char *option, OptList *opts,
                                     const char *implied_key, GError *err)
{
    virtio_devices_fail(errp, option, opts, implied_key, "%s", err->message);
    g_error_free(err);
    return false;
}

static bool virtio_devices_check_drive(OptList *d, GPtrArray *drives, GError **errp)
{
    static const char *const caches[] = {
        "none", "writeback", "writethrough", "directsync", "unsafe",
    };
    DriveInfo *info = g_new0(DriveInfo, 1);
    GError *err = NULL;

    info->opts = d;
    info->id = opts_get(d, "id");
    info->file = opts_get(d, "file");
    const char *format = opts_get(d, "format");
    const char *iface = opts_get(d, "if");
    const char *media = opts_get(d, "media");
    const char *cache = opts_get(d, "cache");
    uint64_t index;
    g_ptr_array_add(drives, info);

    info->readonly = opts_get_bool(d, "readonly", false, &err);
    if (!err) {
        opts_get_uint(d, "index", 0, &index, &err);
    }
    if (err || !opts_check_all_used(d, &err)) {
        return virtio_devices_fail_with(errp, "drive", d, NULL, err);
    }
    if (format && strcmp(format, "raw") != 0) {
        return virtio_devices_fail(errp, "drive", d, NULL,
                                   "format '%s' is not supported (raw only)", format);
    }
    if (iface && strcmp(iface, "virtio") != 0 && strcmp(iface, "none") != 0 &&
        strcmp(iface, "ide") != 0) {
        return virtio_devices_fail(errp, "drive", d, NULL,
                                   "interface '%s' is not supported (virtio, none)", iface);
    }
    if (media && strcmp(media, "disk") != 0) {
        return virtio_devices_fail(errp, "drive", d, NULL,
                                   "media '%s' is not supported (disk only)", media);
    }
    if (cache) {
        bool known = false;
        for (unsigned i = 0; i < G_N_ELEMENTS(caches); i++) {
            known |= strcmp(cache, caches[i]) == 0;
        }
        if (!known) {
            return virtio_devices_fail(errp, "drive", d, NULL, "invalid cache option '%s'",
                                       cache);
        }
    }
    if (info->id) {
        for (guint i = 0; i + 1 < drives->len; i++) {
            DriveInfo *other = g_ptr_array_index(drives, i);
            if (other->id && strcmp(other->id, info->id) == 0) {
                return virtio_devices_fail(errp, "drive", d, NULL,
                                           "Duplicate ID '%s' for drive", info->id);
            }
        }
    }
    /* Only if=none drives are left for -device. */
    info->in_use = !iface || strcmp(iface, "none") != 0;
    return true;
}

static bool virtio_devices_add(VirtioDevice *vdev, GString *cmdline_extra)
{
    g_ptr_array_add(virtio_devices, vdev);
    virtio_mmio_cmdline(vdev, cmdline_extra);
    return true;
}

static bool virtio_devices_slot_free(GError **errp, const char *option, OptList *opts,
                                     const char *implied_key)
{
    if (virtio_devices->len >= VIRTIO_MMIO_MAX_DEVICES) {
        return virtio_devices_fail(errp, option, opts, implied_key,
                                   "too many virtio devices (at most %d)",
                                   VIRTIO_MMIO_MAX_DEVICES);
    }
    return true;
}

static bool virtio_devices_new_blk(OptList *opts, const char *option, const char *implied,
                                   DriveInfo *drive, const char *serial, GString *cmdline_extra,
                                   GError **errp)
{
    GError *err = NULL;

    if (!drive->file) {
        return virtio_devices_fail(errp, option, opts, implied,
                                   "Device needs media, but drive is empty");
    }
    if (!virtio_devices_slot_free(errp, option, opts, implied)) {
        return false;
    }
    VirtioBlk *blk = virtio_blk_new(virtio_devices->len, drive->file, drive->readonly, serial,
                                    &err);
    if (!blk) {
        return virtio_devices_fail_with(errp, option, opts, implied, err);
    }
    return virtio_devices_add(&blk->vdev, cmdline_extra);
}

static bool virtio_devices_parse_mac(const char *str, uint8_t mac[6])
{
    unsigned v[6];
    char end;

    if (strlen(str) != 17 ||
        sscanf(str, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
               &end) != 6) {
        return false;
    }
    for (int i = 0; i < 6; i++) {
        mac[i] = (uint8_t)v[i];
    }
    return true;
}

static bool virtio_devices_device(OptList *dev, GPtrArray *drives, GHashTable *ids,
                                  unsigned *nics, GString *cmdline_extra, GError **errp)
{
    const char *driver = opts_get(dev, "driver");
    const char *id = opts_get(dev, "id");
    GError *err = NULL;
    bool blk, net;

    if (!driver || !*driver) {
        return virtio_devices_fail(errp, "device", dev, "driver",
                                   "Parameter 'driver' is missing");
    }
    /* The -pci names map onto virtio-mmio: the machine has no PCI bus. */
    blk = !strcmp(driver, "virtio-blk-device") || !strcmp(driver, "virtio-blk-pci") ||
          !strcmp(driver, "virtio-blk");
    net = !strcmp(driver, "virtio-net-device") || !strcmp(driver, "virtio-net-pci") ||
          !strcmp(driver, "virtio-net");
    if (!blk && !net) {
        return virtio_devices_fail(errp, "device", dev, "driver",
                                   "'%s' is not a valid device model name", driver);
    }
    if (id) {
        if (g_hash_table_contains(ids, id)) {
            return virtio_devices_fail(errp, "device", dev, "driver",
                                       "Duplicate ID '%s' for device", id);
        }
        g_hash_table_add(ids, (gpointer)id);
    }

    if (blk) {
        const char *drive_id = opts_get(dev, "drive");
        const char *serial = opts_get(dev, "serial");
        DriveInfo *drive = NULL;

        if (!opts_check_all_used(dev, &err)) {
            return virtio_devices_fail_with(errp, "device", dev, "driver", err);
        }
        if (!drive_id) {
            return virtio_devices_fail(errp, "device", dev, "driver", "drive property not set");
        }
        for (guint i = 0; i < drives->len && !drive; i++) {
            DriveInfo *d = g_ptr_array_index(drives, i);
            if (d->id && strcmp(d->id, drive_id) == 0) {
                drive = d;
            }
        }
        if (!drive) {
            return virtio_devices_fail(errp, "device", dev, "driver", "drive '%s' not found",
                                       drive_id);
        }
        if (drive->in_use) {
            return virtio_devices_fail(errp, "device", dev, "driver",
                                       "drive '%s' is already in use", drive_id);
        }
        drive->in_use = true;
        return virtio_devices_new_blk(dev, "device", "driver", drive, serial, cmdline_extra,
                                      errp);
    }

    const char *netdev = opts_get(dev, "netdev");
    const char *mac_str = opts_get(dev, "mac");
    uint8_t mac[6] = VIRTIO_NET_DEFAULT_MAC;

    if (!opts_check_all_used(dev, &err)) {
        return virtio_devices_fail_with(errp, "device", dev, "driver", err);
    }
    if (!netdev) {
        return virtio_devices_fail(errp, "device", dev, "driver", "netdev property not set");
    }
    NetSlirp *peer = net_slirp_find(netdev);
    if (!peer) {
        return virtio_devices_fail(errp, "device", dev, "driver", "netdev '%s' not found",
                                   netdev);
    }
    if (mac_str) {
        if (!virtio_devices_parse_mac(mac_str, mac)) {
            return virtio_devices_fail(errp, "device", dev, "driver",
                                       "Property 'mac' expects a MAC address like "
                                       "52:54:00:12:34:56, not '%s'", mac_str);
        }
        if (mac[0] & 1) {
            return virtio_devices_fail(errp, "device", dev, "driver",
                                       "mac=%s is a multicast address", mac_str);
        }
    } else {
        mac[5] = (uint8_t)(mac[5] + *nics);
    }
    if (!virtio_devices_slot_free(errp, "device", dev, "driver")) {
        return false;
    }
    VirtioNet *nic = virtio_net_new(virtio_devices->len, mac, peer, &err);
    if (!nic) {
        return virtio_devices_fail_with(errp, "device", dev, "driver", err);
    }
    (*nics)++;
    return virtio_devices_add(&nic->vdev, cmdline_extra);
}

bool virtio_devices_create(FerryConfig *cfg, GString *cmdline_extra, GError **errp)
{
    g_autoptr(GPtrArray) drives = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GHashTable) ids = g_hash_table_new(g_str_hash, g_str_equal);
    unsigned nics = 0;

    if (!virtio_devices) {
        virtio_devices = g_ptr_array_new();
    }

    for (guint i = 0; i < cfg->drives->len; i++) {
        if (!virtio_devices_check_drive(g_ptr_array_index(cfg->drives, i), drives, errp)) {
            return false;
        }
    }
    for (guint i = 0; i < cfg->netdevs->len; i++) {
        OptList *nd = g_ptr_array_index(cfg->netdevs, i);
        const char *type = opts_get(nd, "type");
        GError *err = NULL;

        if (!type || !*type) {
            return virtio_devices_fail(errp, "netdev", nd, "type", "Parameter 'type' is missing");
        }
        if (strcmp(type, "user") != 0) {
            return virtio_devices_fail(errp, "netdev", nd, "type",
                                       "network backend '%s' is not supported (user only)",
                                       type);
        }
        if (!net_slirp_new(nd, &err)) {
            return virtio_devices_fail_with(errp, "netdev", nd, "type", err);
        }
    }
    /* Disks from -drive if=virtio, or with no if= (Ferry's default interface). */
    for (guint i = 0; i < drives->len; i++) {
        DriveInfo *d = g_ptr_array_index(drives, i);
        const char *iface = opts_get(d->opts, "if");
        if ((!iface || strcmp(iface, "virtio") == 0) &&
            !virtio_devices_new_blk(d->opts, "drive", NULL, d, NULL, cmdline_extra, errp)) {
            return false;
        }
    }
    for (guint i = 0; i < cfg->devices->len; i++) {
        if (!virtio_devices_device(g_ptr_array_index(cfg->devices, i), drives, ids, &nics,
                                   cmdline_extra, errp)) {
            return false;
        }
    }
    return true;
}
