/*
 * What the transports (socket.c, exec.c, fd.c, file.c) share with the
 * channel core in channel.c. Not for use outside migration/.
 */
#ifndef MIGRATION_CHANNEL_INTERNAL_H
#define MIGRATION_CHANNEL_INTERNAL_H

#include <stdbool.h>
#include <sys/types.h>
#include <glib.h>

#include "migration/channel.h"

/*
 * Wrap @fd (owned from here on) as a channel of @kind. Sockets and pipes
 * must already be O_NONBLOCK. Never fails: without an eventfd a socket is
 * still woken by shutdown(2), a pipe or file only between system calls.
 */
MigChannel *mig_channel_wrap(int fd, MigChannelKind kind, const char *desc);

/* exec: the command behind a channel, reaped by mig_channel_free(). */
void mig_channel_set_child(MigChannel *ch, pid_t pid, bool outgoing);
/*
 * Wait for the command to exit; when @patient it gets time to finish
 * writing its output (a completed outgoing migration), else it is asked
 * to stop soon (a read side done with it, or a cancelled channel).
 */
void mig_exec_reap(pid_t pid, bool patient);

/* Set @errp from an errno value: "<what> <desc>: strerror(err)". */
void mig_channel_error_errno(GError **errp, int err, const char *what, const char *desc);

/* "tcp:[::1]:4444", "unix:/p", ...: the canonical text of @u. */
char *mig_uri_to_string(const MigUri *u);
/* "[::1]:4444" / "host:4444": a tcp address as connect errors show it. */
char *mig_uri_host_port(const MigUri *u);

/* The transports behind mig_channel_open_outgoing/incoming. */
MigChannel *mig_socket_connect(const MigUri *u, int cancel_fd, GError **errp);
MigChannel *mig_exec_open(const MigUri *u, bool outgoing, GError **errp);
MigChannel *mig_fd_open(const MigUri *u, GError **errp);
MigChannel *mig_file_open(const MigUri *u, bool outgoing, GError **errp);

#endif
