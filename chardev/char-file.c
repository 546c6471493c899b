/*
 * File chardev: output goes to a file (path=, append=on|off); no input.
 * Writes are blocking; a regular file takes them at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "chardev/chardev-internal.h"

typedef struct FileChardev {
    Chardev parent;
    int fd;
} FileChardev;

static const char *const file_keys[] = { "path", "append", NULL };

static bool file_open(Chardev *chr, OptList *opts, GError **errp)
{
    FileChardev *f = (FileChardev *)chr;
    const char *path = opts_get(opts, "path");
    bool append;

    if (!path) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "chardev: file: no filename given");
        return false;
    }
    if (!chardev_opt_get_bool(opts, "append", false, &append, errp)) {
        return false;
    }
    f->fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC),
                 0666);
    if (f->fd < 0) {
        int err = errno;
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(err),
                    "Could not open '%s': %s", path, g_strerror(err));
        return false;
    }
    return true;
}

static ssize_t file_write_locked(Chardev *chr, const guint8 *buf, size_t len)
{
    FileChardev *f = (FileChardev *)chr;
    size_t done = 0;

    while (done < len) {
        ssize_t n = write(f->fd, buf + done, len - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        done += n;
    }
    return len;
}

static void file_close(Chardev *chr)
{
    FileChardev *f = (FileChardev *)chr;

    if (f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
}

const ChardevDriver chardev_driver_file = {
    .name = "file",
    .instance_size = sizeof(FileChardev),
    .keys = file_keys,
    .open = file_open,
    .write_locked = file_write_locked,
    .close = file_close,
};
