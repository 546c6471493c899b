/*
 * Migration channels: the byte pipes a migration stream travels over, for
 * every URI form QEMU accepts: tcp:HOST:PORT, unix:PATH, fd:NAME, exec:CMD,
 * file:PATH[,offset=N].
 *
 * A channel is a file descriptor (socket, pipe or regular file) used with
 * blocking semantics from one migration thread. Every blocking wait also
 * watches a cancel event, so mig_channel_shutdown() from any thread wakes
 * the thread and makes the pending and all further I/O fail at once.
 */
#ifndef MIGRATION_CHANNEL_H
#define MIGRATION_CHANNEL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <glib.h>

typedef enum MigChannelKind {
    MIG_CHANNEL_SOCKET,
    MIG_CHANNEL_PIPE,           /* exec: */
    MIG_CHANNEL_FILE,           /* file: (seekable) */
} MigChannelKind;

typedef struct MigChannel MigChannel;

/* "tcp:127.0.0.1:4444" -> what it names; checks the form, opens nothing. */
typedef enum MigUriKind {
    MIG_URI_TCP,
    MIG_URI_UNIX,
    MIG_URI_FD,
    MIG_URI_EXEC,
    MIG_URI_FILE,
} MigUriKind;

typedef struct MigUri {
    MigUriKind kind;
    char *host;                 /* tcp */
    char *port;                 /* tcp, as given ("0" picks one on listen) */
    char *path;                 /* unix, file */
    char *fdname;               /* fd */
    char *command;              /* exec */
    uint64_t offset;            /* file */
} MigUri;

/*
 * Channel and URI errors use this domain; the code is an errno value
 * (EINVAL for a malformed URI, ESHUTDOWN after mig_channel_shutdown(),
 * ECANCELED for a cancelled connect, else what the system call said).
 */
#define MIG_CHANNEL_ERROR mig_channel_error_quark()
GQuark mig_channel_error_quark(void);

/* Errors name the URI and what is wrong: "invalid migration URI 'tcp:x'". */
MigUri *mig_uri_parse(const char *uri, GError **errp);
void mig_uri_free(MigUri *u);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigUri, mig_uri_free)

/*
 * Source side: connect (tcp/unix), spawn (exec: the command's stdin),
 * take a monitor fd (fd:, see monitor_fd_take()), or create/truncate the
 * file (file:, writing from offset). Blocking; @cancel_fd (an eventfd,
 * -1 for none) interrupts a slow connect.
 */
MigChannel *mig_channel_open_outgoing(const MigUri *uri, int cancel_fd, GError **errp);

/*
 * Destination side for exec:/fd:/file: (a channel at once: exec's stdout,
 * the fd, the file opened for reading at offset).
 */
MigChannel *mig_channel_open_incoming(const MigUri *uri, GError **errp);

/* Wrap an accepted socket (the listener uses this). */
MigChannel *mig_channel_new_socket(int fd, const char *desc);

/*
 * Wrap an fd of any kind (socket, pipe or regular file, told apart with
 * fstat); the channel owns @fd from here on, even on failure. Sockets and
 * pipes are switched to O_NONBLOCK.
 */
MigChannel *mig_channel_new_fd(int fd, const char *desc, GError **errp);

MigChannelKind mig_channel_kind(MigChannel *ch);
const char *mig_channel_desc(MigChannel *ch);
int mig_channel_fd(MigChannel *ch);

/*
 * Write everything or fail (GError names the channel and cause). @iov is
 * used as scratch space: entries are advanced past what was written.
 */
bool mig_channel_writev_all(MigChannel *ch, struct iovec *iov, int iovcnt, GError **errp);
/* Read up to @len; 0 at end of stream; -1 with @errp on error or shutdown. */
ssize_t mig_channel_read(MigChannel *ch, void *buf, size_t len, GError **errp);

/*
 * Fill every byte of @iov (used as scratch, like writev_all). Returns 1
 * when full, 0 at end of stream before the first byte, -1 with @errp on
 * an error, a shutdown or an end of stream part way.
 */
int mig_channel_readv_all(MigChannel *ch, struct iovec *iov, int iovcnt, GError **errp);

/*
 * Sockets: true once the peer has closed or reset the connection and no
 * unread byte is left. Reads nothing; other kinds always say false.
 */
bool mig_channel_peer_closed(MigChannel *ch);

/* Thread-safe: fail all pending and future I/O on @ch (cancel, errors). */
void mig_channel_shutdown(MigChannel *ch);
bool mig_channel_is_shutdown(MigChannel *ch);

/* Close and free; for exec: reap the command (its failure is not an error here). */
void mig_channel_free(MigChannel *ch);

/*
 * Destination listeners for tcp: and unix:, in the main loop: each
 * accepted connection is handed to @accepted (main thread, BQL held).
 * tcp port 0 binds a free port; mig_listener_address() reports the real one.
 */
typedef struct MigListener MigListener;
typedef void (*MigAcceptFn)(MigChannel *ch, void *opaque);
MigListener *mig_listener_new(const MigUri *uri, MigAcceptFn accepted, void *opaque,
                              GError **errp);
/* "tcp:127.0.0.1:45123" / "unix:/path": the address a source should use. */
const char *mig_listener_address(MigListener *l);
void mig_listener_free(MigListener *l);

#endif
