/*
 * fd: migration transport. The fd may be a socket, a pipe or a regular
 * file; the channel is whichever fstat says, on both sides.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "migration/channel.h"
#include "migration/channel-internal.h"
#include "migration/fd.h"

/*
 * Declared in system/monitor.h (getfd's table: removes and returns the fd
 * named @fdname, -1 if none). Repeated here because that header brings
 * json-glib and the chardev API into every user of this file, unit tests
 * included.
 */
int monitor_fd_take(const char *fdname);

int migration_fd_lookup(const char *name, GError **errp)
{
    if (g_ascii_isdigit(name[0])) {
        char *end;
        errno = 0;
        long n = strtol(name, &end, 10);
        if (errno || *end || n > G_MAXINT) {
            g_set_error(errp, MIG_CHANNEL_ERROR, EINVAL,
                        "Invalid file descriptor number '%s'", name);
            return -1;
        }
        if (fcntl((int)n, F_GETFD) < 0) {
            g_set_error(errp, MIG_CHANNEL_ERROR, EBADF, "fd:%s: %s", name, g_strerror(errno));
            return -1;
        }
        return (int)n;
    }
    int fd = monitor_fd_take(name);
    if (fd < 0) {
        g_set_error(errp, MIG_CHANNEL_ERROR, EBADF,
                    "File descriptor named '%s' has not been found", name);
        return -1;
    }
    return fd;
}

MigChannel *mig_fd_open(const MigUri *u, GError **errp)
{
    g_autofree char *desc = mig_uri_to_string(u);
    int fd = migration_fd_lookup(u->fdname, errp);

    if (fd < 0) {
        return NULL;
    }
    return mig_channel_new_fd(fd, desc, errp);
}
