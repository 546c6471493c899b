/*
 * What the chardev core shares with its backends: the Chardev base every
 * backend embeds first, the driver table a backend fills in, and the parsed
 * option list a driver reads its settings from.
 */
#ifndef CHARDEV_INTERNAL_H
#define CHARDEV_INTERNAL_H

#include <gio/gio.h>

#include "chardev/char.h"
#include "util/option.h"

/* Output a backend queues beyond what the fd takes at once (default). */
#define CHARDEV_OUTPUT_LIMIT_DEFAULT (1u << 20)

typedef struct ChardevDriver {
    const char *name;
    size_t instance_size;
    /* Option keys the backend reads (besides "id"); NULL-terminated. */
    const char *const *keys;
    bool (*open)(Chardev *chr, OptList *opts, GError **errp);
    /* Called with chr->write_lock held; bytes taken (written, queued or
     * dropped), -1 on a backend error. */
    ssize_t (*write_locked)(Chardev *chr, const guint8 *buf, size_t len);
    /* Whether a frontend attaching now should get opened() at once. */
    bool (*is_connected)(Chardev *chr);
    /* A frontend was attached or detached: start or stop reading input. */
    void (*frontend_changed)(Chardev *chr);
    /* The frontend can take input again after can_receive() said 0. */
    void (*accept_input)(Chardev *chr);
    /* Flush what is queued (best effort, bounded) and release everything. */
    void (*close)(Chardev *chr);
} ChardevDriver;

struct Chardev {
    const ChardevDriver *drv;
    char *id;
    GMutex write_lock;
    size_t output_limit;
    const CharFrontendOps *fe_ops;
    void *fe_opaque;
    /* Set by chardev_cleanup_all(); writes are dropped from then on. */
    bool closed;
};

extern const ChardevDriver chardev_driver_socket;
extern const ChardevDriver chardev_driver_file;
extern const ChardevDriver chardev_driver_stdio;
extern const ChardevDriver chardev_driver_null;

/*
 * A backend's boolean option; @def when absent. Wraps opts_get_bool() so
 * that a bad value fails with QEMU's chardev wording ("Parameter 'server'
 * expects 'on' or 'off'") and the return tells it apart from "off".
 */
bool chardev_opt_get_bool(OptList *opts, const char *key, bool def, bool *out,
                          GError **errp);

/* Create and register a chardev from parsed options (char.c). */
Chardev *chardev_new_from_parsed(OptList *opts, GError **errp);

/* Input helpers for the backends (char.c); main thread. */
size_t chardev_frontend_can_receive(Chardev *chr);
void chardev_frontend_receive(Chardev *chr, const guint8 *buf, size_t len);
void chardev_frontend_opened(Chardev *chr);
void chardev_frontend_closed(Chardev *chr);

#endif
