/*
 * fd: migration transport: a file descriptor passed to the monitor
 * (getfd / add-fd) or, like QEMU, a raw fd number.
 */
#ifndef MIGRATION_FD_H
#define MIGRATION_FD_H

#include <glib.h>

/*
 * The fd named @name: a monitor fd (taken: the caller owns it and closes
 * it) or, when @name starts with a digit, that fd number itself. Returns
 * -1 with @errp set if there is no such fd.
 */
int migration_fd_lookup(const char *name, GError **errp);

#endif
