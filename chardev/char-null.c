/*
 * Null chardev: drops output, never produces input.
 */
#include "chardev/chardev-internal.h"

static bool null_open(Chardev *chr, OptList *opts, GError **errp)
{
    return true;
}

static ssize_t null_write_locked(Chardev *chr, const guint8 *buf, size_t len)
{
    return len;
}

static void null_close(Chardev *chr)
{
}

const ChardevDriver chardev_driver_null = {
    .name = "null",
    .instance_size = sizeof(Chardev),
    .open = null_open,
    .write_locked = null_write_locked,
    .close = null_close,
};
