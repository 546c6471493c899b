/*
 * file: migration transport: the stream written to or read from a regular
 * file, starting at an optional byte offset (QEMU's file:PATH,offset=N),
 * sequentially. The fd is available (mig_channel_fd) for positioned I/O
 * by the mapped-ram layout.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "migration/channel.h"
#include "migration/channel-internal.h"

MigChannel *mig_file_open(const MigUri *u, bool outgoing, GError **errp)
{
    g_autofree char *desc = mig_uri_to_string(u);
    int flags = O_CLOEXEC;

    if (outgoing) {
        /* With an offset, the bytes before it belong to someone else (a header): keep them. */
        flags |= O_WRONLY | O_CREAT | (u->offset ? 0 : O_TRUNC);
    } else {
        flags |= O_RDONLY;
    }
    int fd = open(u->path, flags, 0660);
    if (fd < 0) {
        int err = errno;
        g_set_error(errp, MIG_CHANNEL_ERROR, err, "Failed to open file '%s': %s", u->path,
                    g_strerror(err));
        return NULL;
    }
    if (u->offset && lseek(fd, (off_t)u->offset, SEEK_SET) < 0) {
        int err = errno;
        g_set_error(errp, MIG_CHANNEL_ERROR, err,
                    "Failed to seek file '%s' to offset %" G_GUINT64_FORMAT ": %s",
                    u->path, u->offset, g_strerror(err));
        close(fd);
        return NULL;
    }
    /* Usually a regular file; a FIFO or device gets the kind that suits it. */
    return mig_channel_new_fd(fd, desc, errp);
}
