/*
 * Character devices: the backends behind -serial, -chardev, -qmp, -monitor
 * and -mon. A backend moves bytes; one frontend (a UART, a monitor) is
 * attached to it and receives what arrives.
 *
 * Threads: chardev_write() may be called from any thread (the UART writes
 * from vCPU threads under the BQL). Frontend callbacks run in the main
 * thread with the BQL held.
 */
#ifndef CHARDEV_CHAR_H
#define CHARDEV_CHAR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <glib.h>

typedef struct Chardev Chardev;

typedef struct CharFrontendOps {
    /* How many bytes the frontend can take now (0: hold input back). */
    size_t (*can_receive)(void *opaque);
    void (*receive)(void *opaque, const guint8 *buf, size_t len);
    /* A client connected (socket backends) or the backend opened. */
    void (*opened)(void *opaque);
    /* The client went away (socket backends). */
    void (*closed)(void *opaque);
} CharFrontendOps;

/*
 * Create from a -chardev option string ("socket,id=mon0,path=...,server=on,
 * wait=off", "file,id=x,path=...", "stdio,id=y", "null,id=z"). The chardev
 * is registered under its id.
 */
Chardev *chardev_new_from_opts(const char *opts, GError **errp);

/*
 * Create from the short forms -serial, -qmp and -monitor take: "stdio",
 * "file:PATH", "unix:PATH[,server=on,wait=off]", "tcp:HOST:PORT[,...]",
 * "null", "none" (returns NULL without error), "chardev:ID" (looks up).
 * @id_hint names the chardev when one is created ("serial0", "compat_monitor0").
 */
Chardev *chardev_new_from_legacy(const char *spec, const char *id_hint, GError **errp);

Chardev *chardev_find(const char *id);
const char *chardev_id(Chardev *chr);

/* Attach the one frontend; fails if one is attached already. */
bool chardev_attach_frontend(Chardev *chr, const CharFrontendOps *ops, void *opaque,
                             GError **errp);
void chardev_detach_frontend(Chardev *chr);

/*
 * Write all of @buf unless the backend is gone or has no client (then the
 * bytes are dropped, as a UART with nothing attached drops them). Returns
 * the number of bytes written or dropped, -1 on a backend error.
 */
ssize_t chardev_write(Chardev *chr, const void *buf, size_t len);

/*
 * The frontend can take input again after its can_receive() returned 0;
 * the backend resumes reading. Call with the BQL held (any thread).
 */
void chardev_accept_input(Chardev *chr);

/*
 * Bound the output a backend queues while its peer is not reading (bytes
 * beyond it are dropped). Default 1 MiB; 0 means no bound (monitors use
 * it so that no reply is lost).
 */
void chardev_set_output_limit(Chardev *chr, size_t limit);

/* Whether the backend is stdio (for -nographic / -daemonize checks). */
bool chardev_is_stdio(Chardev *chr);

/* Close every chardev (at exit); unlinks socket paths Ferry created. */
void chardev_cleanup_all(void);

/*
 * File descriptors a unix socket client sent as SCM_RIGHTS ancillary data,
 * queued in arrival order with the input they came with: returns the
 * oldest (the caller owns it) or -1 when none is queued or the chardev is
 * not a socket. Queued descriptors are closed when the client goes away.
 * Main thread.
 */
int chardev_take_received_fd(Chardev *chr);

#endif
