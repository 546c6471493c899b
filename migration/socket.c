/*
 * tcp: and unix: migration transports: the source's connect and the
 * destination's listener.
 *
 * Connecting is non-blocking with a poll() on the caller's cancel eventfd,
 * so migrate_cancel is not stuck behind a SYN that nobody answers. The
 * listener lives in the main loop and hands every accepted connection to
 * its owner (the main stream first, then multifd or postcopy channels).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <glib-unix.h>

#include "migration/channel.h"
#include "migration/channel-internal.h"
#include "system/main-loop.h"

/* Longer than any sane network round trip; the kernel gives up at ~2 min anyway. */
#define MIG_CONNECT_TIMEOUT_MS 60000
/* Room for the main channel, multifd channels and the postcopy preempt channel at once. */
#define MIG_LISTEN_BACKLOG 64

/*
 * Migration streams are sent in batches much larger than a segment, and
 * the small messages that do occur (return path, postcopy page requests)
 * are latency-critical: Nagle's algorithm can only hurt.
 *
 * Buffer sizes are left alone on tcp: setting SO_SNDBUF/SO_RCVBUF turns
 * off the kernel's autotuning, which grows them past what
 * net.core.wmem_max would let us ask for. Unix sockets have no
 * autotuning; a larger buffer lets the writer run further ahead.
 */
static void socket_tune(int fd)
{
    int one = 1;
    int domain = 0;
    socklen_t len = sizeof(domain);

    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0) {
        return;
    }
    if (domain == AF_INET || domain == AF_INET6) {
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    } else if (domain == AF_UNIX) {
        int size = 4 << 20;     /* the kernel caps it at 2 * wmem_max */
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    }
}

MigChannel *mig_channel_new_socket(int fd, const char *desc)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl >= 0 && !(fl & O_NONBLOCK)) {
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    }
    socket_tune(fd);
    return mig_channel_wrap(fd, MIG_CHANNEL_SOCKET, desc);
}

/* Outgoing */

/*
 * Connect @fd (non-blocking) to @sa, waiting at most until @deadline
 * (monotonic, us) and no longer than @cancel_fd stays quiet. Returns 0 or
 * an errno value.
 */
static int socket_connect_one(int fd, const struct sockaddr *sa, socklen_t salen,
                              int cancel_fd, gint64 deadline)
{
    for (;;) {
        if (connect(fd, sa, salen) == 0) {
            return 0;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EINPROGRESS) {
            break;
        }
        if (errno != EAGAIN || sa->sa_family != AF_UNIX) {
            return errno;
        }
        /*
         * A unix listener's backlog is full: there is no in-progress
         * state to wait on, so retry after a short pause.
         */
        struct pollfd cpfd = { .fd = cancel_fd, .events = POLLIN };
        gint64 left = (deadline - g_get_monotonic_time()) / 1000;
        if (left <= 0) {
            return ETIMEDOUT;
        }
        if (poll(&cpfd, 1, MIN(left, 10)) > 0) {
            return ECANCELED;
        }
    }

    struct pollfd pfd[2] = {
        { .fd = fd, .events = POLLOUT },
        { .fd = cancel_fd, .events = POLLIN },
    };
    for (;;) {
        gint64 left = (deadline - g_get_monotonic_time()) / 1000;
        if (left <= 0) {
            return ETIMEDOUT;
        }
        int r = poll(pfd, 2, MIN(left, INT_MAX));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            return errno;
        }
        if (pfd[1].revents) {
            return ECANCELED;
        }
        if (pfd[0].revents) {
            int err = 0;
            socklen_t len = sizeof(err);
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
                return errno;
            }
            return err;
        }
    }
}

static void connect_error(GError **errp, int err, const char *target)
{
    const char *why = err == ECANCELED ? "connection cancelled" : g_strerror(err);

    g_set_error(errp, MIG_CHANNEL_ERROR, err, "Failed to connect to '%s': %s", target, why);
}

static MigChannel *socket_connect_unix(const MigUri *u, int cancel_fd, GError **errp)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    g_autofree char *desc = mig_uri_to_string(u);

    g_strlcpy(sun.sun_path, u->path, sizeof(sun.sun_path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        connect_error(errp, errno, u->path);
        return NULL;
    }
    int err = socket_connect_one(fd, (struct sockaddr *)&sun, sizeof(sun), cancel_fd,
                                 g_get_monotonic_time() + MIG_CONNECT_TIMEOUT_MS * 1000LL);
    if (err) {
        close(fd);
        connect_error(errp, err, u->path);
        return NULL;
    }
    return mig_channel_new_socket(fd, desc);
}

static MigChannel *socket_connect_tcp(const MigUri *u, int cancel_fd, GError **errp)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC };
    struct addrinfo *res = NULL;
    g_autofree char *target = mig_uri_host_port(u);
    g_autofree char *desc = mig_uri_to_string(u);
    gint64 deadline = g_get_monotonic_time() + MIG_CONNECT_TIMEOUT_MS * 1000LL;
    int err = EHOSTUNREACH;

    int rc = getaddrinfo(*u->host ? u->host : NULL, u->port, &hints, &res);
    if (rc != 0) {
        g_set_error(errp, MIG_CHANNEL_ERROR, rc == EAI_SYSTEM ? errno : EHOSTUNREACH,
                    "Failed to resolve '%s': %s", target,
                    rc == EAI_SYSTEM ? g_strerror(errno) : gai_strerror(rc));
        return NULL;
    }
    /* Every address in turn, as a host with both IPv6 and IPv4 may listen on one only. */
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        err = socket_connect_one(fd, ai->ai_addr, ai->ai_addrlen, cancel_fd, deadline);
        if (err == 0) {
            freeaddrinfo(res);
            return mig_channel_new_socket(fd, desc);
        }
        close(fd);
        if (err == ECANCELED || err == ETIMEDOUT) {
            break;
        }
    }
    freeaddrinfo(res);
    connect_error(errp, err, target);
    return NULL;
}

MigChannel *mig_socket_connect(const MigUri *u, int cancel_fd, GError **errp)
{
    if (u->kind == MIG_URI_UNIX) {
        return socket_connect_unix(u, cancel_fd, errp);
    }
    return socket_connect_tcp(u, cancel_fd, errp);
}

/* Listener */

struct MigListener {
    GArray *fds;            /* int: every bound address (tcp may have several) */
    GPtrArray *sources;     /* GSource *, one per fd */
    MigAcceptFn accepted;
    void *opaque;
    char *address;
    char *path;             /* unix: unlinked on free if still ours */
    dev_t dev;
    ino_t ino;
};

static char *sockaddr_to_string(const struct sockaddr *sa)
{
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    socklen_t len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);

    if (getnameinfo(sa, len, host, sizeof(host), serv, sizeof(serv),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        return g_strdup("tcp:?");
    }
    if (sa->sa_family == AF_INET6) {
        return g_strdup_printf("tcp:[%s]:%s", host, serv);
    }
    return g_strdup_printf("tcp:%s:%s", host, serv);
}

static gboolean listener_accept_ready(gint fd, GIOCondition cond, gpointer opaque)
{
    MigListener *l = opaque;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);

    int cfd = accept4(fd, (struct sockaddr *)&ss, &sslen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0) {
        /* EAGAIN (another accept won), ECONNABORTED, or out of fds: try on the next wakeup. */
        return G_SOURCE_CONTINUE;
    }
    g_autofree char *desc = ss.ss_family == AF_UNIX ? g_strdup(l->address)
                                                    : sockaddr_to_string((struct sockaddr *)&ss);
    MigChannel *ch = mig_channel_new_socket(cfd, desc);
    /* The callback may free the listener: @l is not touched after it. */
    l->accepted(ch, l->opaque);
    return G_SOURCE_CONTINUE;
}

static void listener_add_fd(MigListener *l, int fd)
{
    GSource *src = g_unix_fd_source_new(fd, G_IO_IN);

    g_source_set_callback(src, G_SOURCE_FUNC(listener_accept_ready), l, NULL);
    g_source_attach(src, main_loop_context());
    g_array_append_val(l->fds, fd);
    g_ptr_array_add(l->sources, src);
}

static bool listener_open_unix(MigListener *l, const MigUri *u, GError **errp)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    struct stat st;

    g_strlcpy(sun.sun_path, u->path, sizeof(sun.sun_path));
    /* A socket left behind by a previous run would make bind fail; anything else is kept. */
    if (lstat(u->path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        unlink(u->path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        listen(fd, MIG_LISTEN_BACKLOG) < 0) {
        int err = errno;
        g_set_error(errp, MIG_CHANNEL_ERROR, err, "Failed to listen on '%s': %s",
                    u->path, g_strerror(err));
        if (fd >= 0) {
            close(fd);
        }
        return false;
    }
    if (stat(u->path, &st) == 0) {
        l->dev = st.st_dev;
        l->ino = st.st_ino;
        l->path = g_strdup(u->path);
    }
    l->address = g_strconcat("unix:", u->path, NULL);
    listener_add_fd(l, fd);
    return true;
}

static int listener_bind_tcp(const struct addrinfo *ai, const char *port_override)
{
    struct sockaddr_storage ss;
    int one = 1, zero = 0;

    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    if (port_override) {
        in_port_t port = htons(atoi(port_override));
        if (ss.ss_family == AF_INET6) {
            ((struct sockaddr_in6 *)&ss)->sin6_port = port;
        } else {
            ((struct sockaddr_in *)&ss)->sin_port = port;
        }
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        return -errno;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ai->ai_family == AF_INET6) {
        /* "::" takes IPv4 clients too, as QEMU's listener does. */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    }
    if (bind(fd, (struct sockaddr *)&ss, ai->ai_addrlen) < 0 ||
        listen(fd, MIG_LISTEN_BACKLOG) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

static bool listener_open_tcp(MigListener *l, const MigUri *u, GError **errp)
{
    struct addrinfo hints = {
        .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC, .ai_flags = AI_PASSIVE,
    };
    struct addrinfo *res = NULL;
    g_autofree char *target = mig_uri_host_port(u);
    g_autofree char *bound_port = NULL;
    int err = EADDRNOTAVAIL;

    int rc = getaddrinfo(*u->host ? u->host : NULL, u->port, &hints, &res);
    if (rc != 0) {
        g_set_error(errp, MIG_CHANNEL_ERROR, rc == EAI_SYSTEM ? errno : EADDRNOTAVAIL,
                    "Failed to resolve '%s': %s", target,
                    rc == EAI_SYSTEM ? g_strerror(errno) : gai_strerror(rc));
        return false;
    }
    /*
     * Bind every address the name resolves to ("localhost": ::1 and
     * 127.0.0.1). IPv6 first, so a wildcard becomes one dual-stack
     * socket and the IPv4 wildcard after it is skipped as in use.
     */
    for (int pass = 0; pass < 2; pass++) {
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
            if ((ai->ai_family == AF_INET6) != (pass == 0)) {
                continue;
            }
            /* Port 0: every further address gets the port the first one got. */
            int fd = listener_bind_tcp(ai, bound_port);
            if (fd < 0) {
                err = -fd;
                continue;
            }
            if (!bound_port) {
                struct sockaddr_storage ss;
                socklen_t len = sizeof(ss);
                getsockname(fd, (struct sockaddr *)&ss, &len);
                l->address = sockaddr_to_string((struct sockaddr *)&ss);
                bound_port = g_strdup(strrchr(l->address, ':') + 1);
            }
            listener_add_fd(l, fd);
        }
    }
    freeaddrinfo(res);
    if (l->fds->len == 0) {
        g_set_error(errp, MIG_CHANNEL_ERROR, err, "Failed to listen on '%s': %s",
                    target, g_strerror(err));
        return false;
    }
    return true;
}

MigListener *mig_listener_new(const MigUri *uri, MigAcceptFn accepted, void *opaque,
                              GError **errp)
{
    if (uri->kind != MIG_URI_TCP && uri->kind != MIG_URI_UNIX) {
        g_autofree char *s = mig_uri_to_string(uri);
        g_set_error(errp, MIG_CHANNEL_ERROR, EINVAL,
                    "'%s' has no listener: only tcp: and unix: accept connections", s);
        return NULL;
    }
    MigListener *l = g_new0(MigListener, 1);
    l->fds = g_array_new(FALSE, FALSE, sizeof(int));
    l->sources = g_ptr_array_new();
    l->accepted = accepted;
    l->opaque = opaque;
    bool ok = uri->kind == MIG_URI_UNIX ? listener_open_unix(l, uri, errp)
                                        : listener_open_tcp(l, uri, errp);
    if (!ok) {
        mig_listener_free(l);
        return NULL;
    }
    return l;
}

const char *mig_listener_address(MigListener *l)
{
    return l->address;
}

void mig_listener_free(MigListener *l)
{
    struct stat st;

    if (!l) {
        return;
    }
    for (guint i = 0; i < l->sources->len; i++) {
        GSource *src = g_ptr_array_index(l->sources, i);
        g_source_destroy(src);
        g_source_unref(src);
    }
    for (guint i = 0; i < l->fds->len; i++) {
        close(g_array_index(l->fds, int, i));
    }
    /* Only our own socket: another listener may have taken the path since. */
    if (l->path && stat(l->path, &st) == 0 && st.st_dev == l->dev && st.st_ino == l->ino) {
        unlink(l->path);
    }
    g_ptr_array_free(l->sources, TRUE);
    g_array_free(l->fds, TRUE);
    g_free(l->path);
    g_free(l->address);
    g_free(l);
}
