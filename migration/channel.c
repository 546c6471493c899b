/*
 * Migration channels: URI parsing, and the blocking I/O all transports
 * share.
 *
 * A socket or pipe is kept O_NONBLOCK and every wait is a poll() on the fd
 * and the channel's cancel eventfd, so mig_channel_shutdown() from another
 * thread wakes a blocked reader or writer however the peer behaves.
 * Regular files never block in the poll() sense; they are read and written
 * directly and the shutdown flag is checked between system calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "migration/channel.h"
#include "migration/channel-internal.h"
#include "util/option.h"

struct MigChannel {
    MigChannelKind kind;
    int fd;
    int cancel_fd;          /* eventfd; readable once shut down; -1 if none */
    int shut;               /* atomic: set once by mig_channel_shutdown() */
    pid_t child;            /* exec: the command, or 0 */
    bool child_outgoing;
    char *desc;
};

G_DEFINE_QUARK(mig-channel-error-quark, mig_channel_error)

/* URIs */

static bool uri_invalid(GError **errp, const char *uri, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

static bool uri_invalid(GError **errp, const char *uri, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    g_autofree char *why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(errp, MIG_CHANNEL_ERROR, EINVAL, "invalid migration URI '%s': %s", uri, why);
    return false;
}

static bool uri_port_valid(const char *port)
{
    size_t n = strlen(port);

    if (n == 0 || n > 5 || strspn(port, "0123456789") != n) {
        return false;
    }
    return atoi(port) <= 65535;
}

static bool uri_parse_tcp(MigUri *u, const char *uri, const char *rest, GError **errp)
{
    const char *port;

    if (rest[0] == '[') {
        const char *close = strchr(rest, ']');
        if (!close) {
            return uri_invalid(errp, uri, "missing ']' after the IPv6 address");
        }
        if (close == rest + 1) {
            return uri_invalid(errp, uri, "empty IPv6 address in brackets");
        }
        if (close[1] != ':') {
            return uri_invalid(errp, uri, "expected tcp:[ADDRESS]:PORT");
        }
        u->host = g_strndup(rest + 1, close - rest - 1);
        port = close + 2;
    } else {
        const char *colon = strchr(rest, ':');
        if (!colon) {
            return uri_invalid(errp, uri, "expected tcp:HOST:PORT");
        }
        u->host = g_strndup(rest, colon - rest);
        port = colon + 1;
        if (strchr(port, ':')) {
            /* "tcp:::1:4444" cannot be split unambiguously. */
            return uri_invalid(errp, uri, "an IPv6 address needs brackets: tcp:[ADDRESS]:PORT");
        }
    }
    if (!*port) {
        return uri_invalid(errp, uri, "missing port: expected tcp:HOST:PORT");
    }
    if (strchr(port, ',')) {
        return uri_invalid(errp, uri, "options after the port are not supported");
    }
    if (!uri_port_valid(port)) {
        return uri_invalid(errp, uri, "invalid port '%s': expected a number from 0 to 65535",
                           port);
    }
    u->port = g_strdup(port);
    return true;
}

static bool uri_parse_unix(MigUri *u, const char *uri, const char *rest, GError **errp)
{
    struct sockaddr_un sun;

    if (!*rest) {
        return uri_invalid(errp, uri, "expected unix:PATH");
    }
    if (strlen(rest) >= sizeof(sun.sun_path)) {
        return uri_invalid(errp, uri, "socket path longer than %zu bytes",
                           sizeof(sun.sun_path) - 1);
    }
    u->path = g_strdup(rest);
    return true;
}

static bool uri_parse_fd(MigUri *u, const char *uri, const char *rest, GError **errp)
{
    if (!*rest) {
        return uri_invalid(errp, uri, "expected fd:NAME");
    }
    /* Like QEMU, a name starting with a digit is an fd number. */
    if (g_ascii_isdigit(rest[0])) {
        size_t n = strlen(rest);
        if (n > 9 || strspn(rest, "0123456789") != n) {
            return uri_invalid(errp, uri, "invalid file descriptor number '%s'", rest);
        }
    }
    u->fdname = g_strdup(rest);
    return true;
}

static bool uri_parse_exec(MigUri *u, const char *uri, const char *rest, GError **errp)
{
    if (!*rest || strspn(rest, " \t") == strlen(rest)) {
        return uri_invalid(errp, uri, "expected exec:COMMAND");
    }
    u->command = g_strdup(rest);
    return true;
}

static bool uri_parse_file(MigUri *u, const char *uri, const char *rest, GError **errp)
{
    /* QEMU takes the first ",offset=" as the option; the path may hold other commas. */
    const char *opt = strstr(rest, ",offset=");
    size_t pathlen = opt ? (size_t)(opt - rest) : strlen(rest);

    if (pathlen == 0) {
        return uri_invalid(errp, uri, "expected file:PATH[,offset=N]");
    }
    if (opt) {
        const char *val = opt + strlen(",offset=");
        if (!parse_size(val, 1, &u->offset)) {
            return uri_invalid(errp, uri, "invalid offset '%s'", val);
        }
    }
    u->path = g_strndup(rest, pathlen);
    return true;
}

MigUri *mig_uri_parse(const char *uri, GError **errp)
{
    static const struct {
        const char *prefix;
        MigUriKind kind;
        bool (*parse)(MigUri *u, const char *uri, const char *rest, GError **errp);
    } forms[] = {
        { "tcp:", MIG_URI_TCP, uri_parse_tcp },
        { "unix:", MIG_URI_UNIX, uri_parse_unix },
        { "fd:", MIG_URI_FD, uri_parse_fd },
        { "exec:", MIG_URI_EXEC, uri_parse_exec },
        { "file:", MIG_URI_FILE, uri_parse_file },
    };
    static const char *const unsupported[] = { "rdma:", "vsock:" };

    if (!uri) {
        uri = "";
    }
    for (size_t i = 0; i < G_N_ELEMENTS(forms); i++) {
        if (g_str_has_prefix(uri, forms[i].prefix)) {
            g_autoptr(MigUri) u = g_new0(MigUri, 1);
            u->kind = forms[i].kind;
            if (!forms[i].parse(u, uri, uri + strlen(forms[i].prefix), errp)) {
                return NULL;
            }
            return g_steal_pointer(&u);
        }
    }
    for (size_t i = 0; i < G_N_ELEMENTS(unsupported); i++) {
        if (g_str_has_prefix(uri, unsupported[i])) {
            g_autofree char *proto = g_strndup(uri, strlen(unsupported[i]) - 1);
            g_set_error(errp, MIG_CHANNEL_ERROR, EINVAL,
                        "migration protocol '%s' is not supported: %s", proto, uri);
            return NULL;
        }
    }
    /* QEMU's wording, which management tools may already know. */
    g_set_error(errp, MIG_CHANNEL_ERROR, EINVAL, "unknown migration protocol: %s", uri);
    return NULL;
}

void mig_uri_free(MigUri *u)
{
    if (!u) {
        return;
    }
    g_free(u->host);
    g_free(u->port);
    g_free(u->path);
    g_free(u->fdname);
    g_free(u->command);
    g_free(u);
}

char *mig_uri_host_port(const MigUri *u)
{
    if (strchr(u->host, ':')) {
        return g_strdup_printf("[%s]:%s", u->host, u->port);
    }
    return g_strdup_printf("%s:%s", u->host, u->port);
}

char *mig_uri_to_string(const MigUri *u)
{
    switch (u->kind) {
    case MIG_URI_TCP: {
        g_autofree char *hp = mig_uri_host_port(u);
        return g_strconcat("tcp:", hp, NULL);
    }
    case MIG_URI_UNIX:
        return g_strconcat("unix:", u->path, NULL);
    case MIG_URI_FD:
        return g_strconcat("fd:", u->fdname, NULL);
    case MIG_URI_EXEC:
        return g_strconcat("exec:", u->command, NULL);
    case MIG_URI_FILE:
        if (u->offset) {
            return g_strdup_printf("file:%s,offset=%" G_GUINT64_FORMAT, u->path, u->offset);
        }
        return g_strconcat("file:", u->path, NULL);
    }
    g_assert_not_reached();
}

/* Opening */

MigChannel *mig_channel_open_outgoing(const MigUri *uri, int cancel_fd, GError **errp)
{
    switch (uri->kind) {
    case MIG_URI_TCP:
    case MIG_URI_UNIX:
        return mig_socket_connect(uri, cancel_fd, errp);
    case MIG_URI_FD:
        return mig_fd_open(uri, errp);
    case MIG_URI_EXEC:
        return mig_exec_open(uri, true, errp);
    case MIG_URI_FILE:
        return mig_file_open(uri, true, errp);
    }
    g_assert_not_reached();
}

MigChannel *mig_channel_open_incoming(const MigUri *uri, GError **errp)
{
    switch (uri->kind) {
    case MIG_URI_TCP:
    case MIG_URI_UNIX: {
        g_autofree char *s = mig_uri_to_string(uri);
        g_set_error(errp, MIG_CHANNEL_ERROR, EINVAL,
                    "'%s' needs a listener (mig_listener_new), not a channel", s);
        return NULL;
    }
    case MIG_URI_FD:
        return mig_fd_open(uri, errp);
    case MIG_URI_EXEC:
        return mig_exec_open(uri, false, errp);
    case MIG_URI_FILE:
        return mig_file_open(uri, false, errp);
    }
    g_assert_not_reached();
}

MigChannel *mig_channel_wrap(int fd, MigChannelKind kind, const char *desc)
{
    MigChannel *ch = g_new0(MigChannel, 1);

    ch->kind = kind;
    ch->fd = fd;
    ch->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    ch->desc = g_strdup(desc);
    return ch;
}

MigChannel *mig_channel_new_fd(int fd, const char *desc, GError **errp)
{
    struct stat st;
    MigChannelKind kind;

    if (fstat(fd, &st) < 0) {
        mig_channel_error_errno(errp, errno, "cannot use", desc);
        close(fd);
        return NULL;
    }
    if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) {
        kind = MIG_CHANNEL_FILE;
    } else {
        kind = S_ISSOCK(st.st_mode) ? MIG_CHANNEL_SOCKET : MIG_CHANNEL_PIPE;
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
            mig_channel_error_errno(errp, errno, "cannot use", desc);
            close(fd);
            return NULL;
        }
    }
    MigChannel *ch = mig_channel_wrap(fd, kind, desc);
    if (ch->cancel_fd < 0 && kind == MIG_CHANNEL_PIPE) {
        /* Nothing else could wake a thread blocked on a pipe. */
        mig_channel_error_errno(errp, errno, "no cancel event for", desc);
        mig_channel_free(ch);
        return NULL;
    }
    return ch;
}

void mig_channel_set_child(MigChannel *ch, pid_t pid, bool outgoing)
{
    ch->child = pid;
    ch->child_outgoing = outgoing;
}

MigChannelKind mig_channel_kind(MigChannel *ch)
{
    return ch->kind;
}

const char *mig_channel_desc(MigChannel *ch)
{
    return ch->desc;
}

int mig_channel_fd(MigChannel *ch)
{
    return ch->fd;
}

/* I/O */

void mig_channel_error_errno(GError **errp, int err, const char *what, const char *desc)
{
    g_set_error(errp, MIG_CHANNEL_ERROR, err, "%s %s: %s", what, desc, g_strerror(err));
}

static bool chan_shut_error(MigChannel *ch, const char *what, GError **errp)
{
    g_set_error(errp, MIG_CHANNEL_ERROR, ESHUTDOWN, "%s %s: migration channel was shut down",
                what, ch->desc);
    return false;
}

static bool chan_fail(MigChannel *ch, int err, const char *what, GError **errp)
{
    /* shutdown(2) makes the pending call fail with EPIPE & co: report the cause. */
    if (mig_channel_is_shutdown(ch)) {
        return chan_shut_error(ch, what, errp);
    }
    mig_channel_error_errno(errp, err, what, ch->desc);
    return false;
}

/* Sleep until @ch->fd is ready for @events or the channel is shut down. */
static bool chan_wait(MigChannel *ch, short events, const char *what, GError **errp)
{
    struct pollfd pfd[2] = {
        { .fd = ch->fd, .events = events },
        { .fd = ch->cancel_fd, .events = POLLIN },
    };

    for (;;) {
        if (mig_channel_is_shutdown(ch)) {
            return chan_shut_error(ch, what, errp);
        }
        int r = poll(pfd, 2, -1);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return chan_fail(ch, errno, what, errp);
        }
        if (pfd[0].revents & POLLNVAL) {
            return chan_fail(ch, EBADF, what, errp);
        }
        if (pfd[1].revents) {
            return chan_shut_error(ch, what, errp);
        }
        /* Ready, or POLLERR/POLLHUP: the next system call reports which. */
        return true;
    }
}

/* Move @iov past @n bytes done, emptying or trimming entries. */
static void chan_iov_advance(struct iovec **iovp, int *iovcnt, size_t n)
{
    struct iovec *iov = *iovp;

    while (n > 0) {
        if (n >= iov->iov_len) {
            n -= iov->iov_len;
            iov->iov_len = 0;
            iov++;
            (*iovcnt)--;
        } else {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= n;
            n = 0;
        }
    }
    *iovp = iov;
}

static ssize_t chan_writev(MigChannel *ch, const struct iovec *iov, int iovcnt)
{
    if (ch->kind == MIG_CHANNEL_SOCKET) {
        struct msghdr msg = { .msg_iov = (struct iovec *)iov, .msg_iovlen = iovcnt };
        return sendmsg(ch->fd, &msg, MSG_NOSIGNAL);
    }
    return writev(ch->fd, iov, iovcnt);
}

bool mig_channel_writev_all(MigChannel *ch, struct iovec *iov, int iovcnt, GError **errp)
{
    static const char what[] = "writing to";

    for (;;) {
        while (iovcnt > 0 && iov->iov_len == 0) {
            iov++;
            iovcnt--;
        }
        if (iovcnt == 0) {
            return true;
        }
        if (mig_channel_is_shutdown(ch)) {
            return chan_shut_error(ch, what, errp);
        }
        ssize_t n = chan_writev(ch, iov, MIN(iovcnt, IOV_MAX));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (!chan_wait(ch, POLLOUT, what, errp)) {
                    return false;
                }
                continue;
            }
            return chan_fail(ch, errno, what, errp);
        }
        if (n == 0) {
            /* No progress and no error (a full device that will not say so). */
            return chan_fail(ch, EIO, what, errp);
        }
        chan_iov_advance(&iov, &iovcnt, (size_t)n);
    }
}

ssize_t mig_channel_read(MigChannel *ch, void *buf, size_t len, GError **errp)
{
    static const char what[] = "reading from";

    for (;;) {
        if (mig_channel_is_shutdown(ch)) {
            chan_shut_error(ch, what, errp);
            return -1;
        }
        ssize_t n = read(ch->fd, buf, len);
        if (n > 0) {
            return n;
        }
        if (n == 0) {
            /* shutdown(2) reads as end of stream; it is not one. */
            if (mig_channel_is_shutdown(ch)) {
                chan_shut_error(ch, what, errp);
                return -1;
            }
            return 0;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (!chan_wait(ch, POLLIN, what, errp)) {
                return -1;
            }
            continue;
        }
        chan_fail(ch, errno, what, errp);
        return -1;
    }
}

int mig_channel_readv_all(MigChannel *ch, struct iovec *iov, int iovcnt, GError **errp)
{
    static const char what[] = "reading from";
    bool started = false;

    for (;;) {
        while (iovcnt > 0 && iov->iov_len == 0) {
            iov++;
            iovcnt--;
        }
        if (iovcnt == 0) {
            return 1;
        }
        if (mig_channel_is_shutdown(ch)) {
            chan_shut_error(ch, what, errp);
            return -1;
        }
        ssize_t n = readv(ch->fd, iov, MIN(iovcnt, IOV_MAX));
        if (n == 0) {
            if (mig_channel_is_shutdown(ch)) {
                chan_shut_error(ch, what, errp);
                return -1;
            }
            if (!started) {
                return 0;
            }
            g_set_error(errp, MIG_CHANNEL_ERROR, EPIPE, "%s %s: unexpected end of stream",
                        what, ch->desc);
            return -1;
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (!chan_wait(ch, POLLIN, what, errp)) {
                    return -1;
                }
                continue;
            }
            chan_fail(ch, errno, what, errp);
            return -1;
        }
        started = true;
        chan_iov_advance(&iov, &iovcnt, (size_t)n);
    }
}

bool mig_channel_peer_closed(MigChannel *ch)
{
    char b;

    if (ch->kind != MIG_CHANNEL_SOCKET) {
        return false;
    }
    ssize_t n = recv(ch->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

void mig_channel_shutdown(MigChannel *ch)
{
    if (__atomic_exchange_n(&ch->shut, 1, __ATOMIC_SEQ_CST)) {
        return;
    }
    if (ch->cancel_fd >= 0) {
        uint64_t one = 1;
        ssize_t r = write(ch->cancel_fd, &one, sizeof(one));
        (void)r;    /* an eventfd write of 1 cannot fail short of overflow */
    }
    if (ch->kind == MIG_CHANNEL_SOCKET) {
        /* Also tells the peer, whose reads end at once instead of at a timeout. */
        shutdown(ch->fd, SHUT_RDWR);
    }
}

bool mig_channel_is_shutdown(MigChannel *ch)
{
    return __atomic_load_n(&ch->shut, __ATOMIC_ACQUIRE);
}

void mig_channel_free(MigChannel *ch)
{
    if (!ch) {
        return;
    }
    /* Close first: the command sees end of input (or a broken pipe) and can exit. */
    if (ch->fd >= 0) {
        close(ch->fd);
    }
    if (ch->cancel_fd >= 0) {
        close(ch->cancel_fd);
    }
    if (ch->child > 0) {
        mig_exec_reap(ch->child, ch->child_outgoing && !mig_channel_is_shutdown(ch));
    }
    g_free(ch->desc);
    g_free(ch);
}
