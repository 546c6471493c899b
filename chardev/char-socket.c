/*
 * Socket chardev: unix or tcp, as a server (one client at a time; a second
 * connection waits in the backlog until the first closes) or as a client.
 *
 * The connected fd is non-blocking. Input is read in the main thread when
 * a frontend is attached and can take it. Output may come from any thread:
 * what the socket does not take at once is queued (up to the chardev's
 * output limit) and flushed by a watch in the main context.
 *
 * On unix sockets, file descriptors sent as SCM_RIGHTS ancillary data are
 * received with the bytes they came with and queued, oldest first, until
 * the frontend takes them (chardev_take_received_fd(), e.g. QMP getfd);
 * the queue is closed when the client goes away. The kernel ends a read
 * right after the message that carried descriptors, so they always belong
 * to the last bytes handed to the frontend.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <glib-unix.h>

#include "chardev/chardev-internal.h"
#include "system/main-loop.h"

#define SOCKET_READ_CHUNK 4096
#define SOCKET_MAX_RECV_FDS 16     /* per message, as QEMU */
#define SOCKET_CLOSE_FLUSH_MS 2000

typedef struct SocketChardev {
    Chardev parent;
    bool is_unix;
    bool is_server;
    bool nodelay;
    int family;             /* tcp: AF_UNSPEC, or AF_INET/AF_INET6 if forced */
    char *path;
    char *host;
    char *port;
    char *desc;             /* "unix:/path,server=on" */
    bool unlink_on_close;
    int listen_fd;
    GSource *listen_src;
    GSource *read_src;
    bool input_blocked;
    GQueue recv_fds;        /* received descriptors (GINT_TO_POINTER), oldest first */
    /* Under parent.write_lock: */
    int fd;
    GByteArray *outbuf;
    GSource *write_src;
} SocketChardev;

static const char *const socket_keys[] = {
    "path", "host", "port", "server", "wait", "delay", "nodelay", "ipv4", "ipv6",
    NULL,
};

static void socket_source_remove(GSource **src)
{
    if (*src) {
        g_source_destroy(*src);
        g_source_unref(*src);
        *src = NULL;
    }
}

static GSource *socket_source_add(int fd, GIOCondition cond, GSourceFunc fn,
                                  SocketChardev *s)
{
    GSource *src = g_unix_fd_source_new(fd, cond);

    g_source_set_callback(src, fn, s, NULL);
    g_source_attach(src, main_loop_context());
    return src;
}

static gboolean socket_read_ready(gint fd, GIOCondition cond, gpointer opaque);
static gboolean socket_accept_ready(gint fd, GIOCondition cond, gpointer opaque);

static void socket_update_read_watch(SocketChardev *s)
{
    bool want = s->parent.fe_ops && s->fd >= 0 && !s->input_blocked;

    if (want && !s->read_src) {
        s->read_src = socket_source_add(s->fd, G_IO_IN | G_IO_HUP | G_IO_ERR,
                                        G_SOURCE_FUNC(socket_read_ready), s);
    } else if (!want) {
        socket_source_remove(&s->read_src);
    }
}

static void socket_listen_watch_start(SocketChardev *s)
{
    if (s->listen_fd >= 0 && !s->listen_src) {
        s->listen_src = socket_source_add(s->listen_fd, G_IO_IN,
                                          G_SOURCE_FUNC(socket_accept_ready), s);
    }
}

static void socket_set_connected(SocketChardev *s, int fd)
{
    if (!s->is_unix && s->nodelay) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    g_mutex_lock(&s->parent.write_lock);
    s->fd = fd;
    g_byte_array_set_size(s->outbuf, 0);
    g_mutex_unlock(&s->parent.write_lock);
    s->input_blocked = false;
}

static void socket_close_received_fds(SocketChardev *s)
{
    while (!g_queue_is_empty(&s->recv_fds)) {
        close(GPOINTER_TO_INT(g_queue_pop_head(&s->recv_fds)));
    }
}

int chardev_take_received_fd(Chardev *chr)
{
    SocketChardev *s = (SocketChardev *)chr;

    if (!chr || chr->drv != &chardev_driver_socket || g_queue_is_empty(&s->recv_fds)) {
        return -1;
    }
    return GPOINTER_TO_INT(g_queue_pop_head(&s->recv_fds));
}

/* read(), or recvmsg() on unix sockets so that SCM_RIGHTS descriptors are kept. */
static ssize_t socket_recv(SocketChardev *s, int fd, guint8 *buf, size_t len)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * SOCKET_MAX_RECV_FDS)];
        struct cmsghdr align;
    } control;
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    struct msghdr msg = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = control.buf,
        .msg_controllen = sizeof(control.buf),
    };
    ssize_t n;

    if (!s->is_unix) {
        return read(fd, buf, len);
    }
    n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0) {
        return n;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
            c->cmsg_len < CMSG_LEN(0)) {
            continue;
        }
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        int *fds = (int *)CMSG_DATA(c);
        for (size_t i = 0; i < count; i++) {
            int rfd;
            memcpy(&rfd, &fds[i], sizeof(rfd));
            g_queue_push_tail(&s->recv_fds, GINT_TO_POINTER(rfd));
        }
    }
    return n;
}

static void socket_disconnect(SocketChardev *s)
{
    socket_close_received_fds(s);
    socket_source_remove(&s->read_src);
    g_mutex_lock(&s->parent.write_lock);
    socket_source_remove(&s->write_src);
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
    g_byte_array_set_size(s->outbuf, 0);
    g_mutex_unlock(&s->parent.write_lock);
    s->input_blocked = false;

    chardev_frontend_closed(&s->parent);
    socket_listen_watch_start(s);
}

static gboolean socket_read_ready(gint fd, GIOCondition cond, gpointer opaque)
{
    SocketChardev *s = opaque;
    guint8 buf[SOCKET_READ_CHUNK];
    size_t want = chardev_frontend_can_receive(&s->parent);
    ssize_t n;

    if (want == 0) {
        /* Resumed by chardev_accept_input(). */
        s->input_blocked = true;
        socket_source_remove(&s->read_src);
        return G_SOURCE_REMOVE;
    }
    do {
        n = socket_recv(s, fd, buf, MIN(want, sizeof(buf)));
    } while (n < 0 && errno == EINTR);

    if (n > 0) {
        chardev_frontend_receive(&s->parent, buf, n);
        return G_SOURCE_CONTINUE;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return G_SOURCE_CONTINUE;
    }
    socket_disconnect(s);
    return G_SOURCE_REMOVE;
}

static gboolean socket_accept_ready(gint fd, GIOCondition cond, gpointer opaque)
{
    SocketChardev *s = opaque;
    int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

    if (cfd < 0) {
        return G_SOURCE_CONTINUE;
    }
    /* One client at a time: stop accepting until this one leaves. */
    socket_source_remove(&s->listen_src);
    socket_set_connected(s, cfd);
    socket_update_read_watch(s);
    chardev_frontend_opened(&s->parent);
    return G_SOURCE_REMOVE;
}

static gboolean socket_write_ready(gint fd, GIOCondition cond, gpointer opaque)
{
    SocketChardev *s = opaque;
    gboolean ret = G_SOURCE_CONTINUE;

    g_mutex_lock(&s->parent.write_lock);
    if (s->fd >= 0 && s->outbuf->len) {
        ssize_t n = send(s->fd, s->outbuf->data, s->outbuf->len, MSG_NOSIGNAL);
        if (n > 0) {
            g_byte_array_remove_range(s->outbuf, 0, n);
        } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                   errno != EINTR) {
            /* The peer is gone; the read side reports the hangup. */
            g_byte_array_set_size(s->outbuf, 0);
        }
    }
    if (s->fd < 0 || s->outbuf->len == 0) {
        g_source_unref(s->write_src);
        s->write_src = NULL;
        ret = G_SOURCE_REMOVE;
    }
    g_mutex_unlock(&s->parent.write_lock);
    return ret;
}

static ssize_t socket_write_locked(Chardev *chr, const guint8 *buf, size_t len)
{
    SocketChardev *s = (SocketChardev *)chr;
    size_t done = 0;

    if (s->fd < 0) {
        return len;     /* no client: dropped */
    }
    while (s->outbuf->len == 0 && done < len) {
        ssize_t n = send(s->fd, buf + done, len - done, MSG_NOSIGNAL);
        if (n > 0) {
            done += n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            return len;     /* peer gone: dropped */
        }
    }
    if (done < len) {
        if (s->outbuf->len + (len - done) <= chr->output_limit) {
            g_byte_array_append(s->outbuf, buf + done, len - done);
        }
        if (!s->write_src && s->outbuf->len) {
            s->write_src = socket_source_add(s->fd, G_IO_OUT,
                                             G_SOURCE_FUNC(socket_write_ready), s);
        }
    }
    return len;
}

static bool socket_is_connected(Chardev *chr)
{
    return ((SocketChardev *)chr)->fd >= 0;
}

static void socket_frontend_changed(Chardev *chr)
{
    socket_update_read_watch((SocketChardev *)chr);
}

static void socket_accept_input(Chardev *chr)
{
    SocketChardev *s = (SocketChardev *)chr;

    s->input_blocked = false;
    socket_update_read_watch(s);
}

static bool socket_fill_unix_addr(SocketChardev *s, struct sockaddr_un *un,
                                  GError **errp)
{
    memset(un, 0, sizeof(*un));
    un->sun_family = AF_UNIX;
    if (strlen(s->path) >= sizeof(un->sun_path)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "UNIX socket path '%s' is too long", s->path);
        return false;
    }
    strcpy(un->sun_path, s->path);
    return true;
}

static int socket_unix_listen(SocketChardev *s, GError **errp)
{
    struct sockaddr_un un;
    struct stat st;
    int fd;

    if (!socket_fill_unix_addr(s, &un, errp)) {
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "Failed to create socket: %s", g_strerror(errno));
        return -1;
    }
    /* A stale socket from an earlier run would make bind() fail. */
    if (stat(s->path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        unlink(s->path);
    }
    if (bind(fd, (struct sockaddr *)&un, sizeof(un)) < 0) {
        int err = errno;
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(err),
                    "Failed to bind socket to %s: %s", s->path, g_strerror(err));
        close(fd);
        return -1;
    }
    s->unlink_on_close = true;
    if (listen(fd, 1) < 0) {
        int err = errno;
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(err),
                    "Failed to listen on socket: %s", g_strerror(err));
        close(fd);
        return -1;
    }
    return fd;
}

static int socket_unix_connect(SocketChardev *s, GError **errp)
{
    struct sockaddr_un un;
    int fd;

    if (!socket_fill_unix_addr(s, &un, errp)) {
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "Failed to create socket: %s", g_strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&un, sizeof(un)) < 0) {
        int err = errno;
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(err),
                    "Failed to connect to '%s': %s", s->path, g_strerror(err));
        close(fd);
        return -1;
    }
    return fd;
}

static int socket_tcp_open(SocketChardev *s, GError **errp)
{
    struct addrinfo hints = {
        .ai_family = s->family,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = s->is_server ? AI_PASSIVE : 0,
    };
    struct addrinfo *res = NULL;
    const char *host = s->host[0] ? s->host : (s->is_server ? NULL : "localhost");
    int err = 0;
    int rc;
    int fd = -1;

    rc = getaddrinfo(host, s->port, &hints, &res);
    if (rc != 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "address resolution failed for %s:%s: %s",
                    s->host, s->port, gai_strerror(rc));
        return -1;
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (s->is_server) {
            int one = 1;
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
            if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1) == 0) {
                break;
            }
        } else if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            break;
        }
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0 && s->is_server) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(err),
                    "Failed to bind socket: %s", g_strerror(err));
    } else if (fd < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(err),
                    "Failed to connect to '%s:%s': %s", s->host, s->port,
                    g_strerror(err));
    }
    return fd;
}

static bool socket_wait_first_client(SocketChardev *s, GError **errp)
{
    struct pollfd pfd = { .fd = s->listen_fd, .events = POLLIN };
    int cfd;

    fprintf(stderr, "Ferry waiting for connection on: disconnected:%s\n", s->desc);
    for (;;) {
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR) {
            g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                        "Failed waiting for a connection: %s", g_strerror(errno));
            return false;
        }
        cfd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd >= 0) {
            socket_set_connected(s, cfd);
            return true;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
            errno != ECONNABORTED) {
            g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                        "Failed to accept a connection: %s", g_strerror(errno));
            return false;
        }
    }
}

static void socket_free_config(SocketChardev *s)
{
    g_free(s->path);
    g_free(s->host);
    g_free(s->port);
    g_free(s->desc);
    if (s->outbuf) {
        g_byte_array_unref(s->outbuf);
    }
}

static bool socket_open(Chardev *chr, OptList *opts, GError **errp)
{
    SocketChardev *s = (SocketChardev *)chr;
    const char *path = opts_get(opts, "path");
    const char *host = opts_get(opts, "host");
    const char *port = opts_get(opts, "port");
    bool wait, delay, nodelay, ipv4, ipv6;

    s->fd = -1;
    s->listen_fd = -1;
    if (!chardev_opt_get_bool(opts, "server", false, &s->is_server, errp) ||
        !chardev_opt_get_bool(opts, "wait", s->is_server, &wait, errp) ||
        !chardev_opt_get_bool(opts, "delay", true, &delay, errp) ||
        !chardev_opt_get_bool(opts, "nodelay", !delay, &nodelay, errp) ||
        !chardev_opt_get_bool(opts, "ipv4", false, &ipv4, errp) ||
        !chardev_opt_get_bool(opts, "ipv6", false, &ipv6, errp)) {
        return false;
    }
    s->family = ipv4 && !ipv6 ? AF_INET : ipv6 && !ipv4 ? AF_INET6 : AF_UNSPEC;
    if (opts_get(opts, "wait") && !s->is_server) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "'wait' option is incompatible with socket in client connect mode");
        return false;
    }
    s->nodelay = nodelay;
    if (path) {
        s->is_unix = true;
        s->path = g_strdup(path);
        s->desc = g_strdup_printf("unix:%s%s", path, s->is_server ? ",server=on" : "");
    } else {
        if (!host) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "chardev: socket: no host given");
            return false;
        }
        if (!port) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "chardev: socket: no port given");
            return false;
        }
        s->host = g_strdup(host);
        s->port = g_strdup(port);
        s->desc = g_strdup_printf("tcp:%s:%s%s", host, port,
                                  s->is_server ? ",server=on" : "");
    }
    s->outbuf = g_byte_array_new();

    if (s->is_server) {
        s->listen_fd = s->is_unix ? socket_unix_listen(s, errp)
                                  : socket_tcp_open(s, errp);
        if (s->listen_fd < 0) {
            socket_free_config(s);
            return false;
        }
        if (!s->is_unix) {
            fcntl(s->listen_fd, F_SETFL, fcntl(s->listen_fd, F_GETFL) | O_NONBLOCK);
        }
        if (wait && !socket_wait_first_client(s, errp)) {
            close(s->listen_fd);
            if (s->unlink_on_close) {
                unlink(s->path);
            }
            socket_free_config(s);
            return false;
        }
        if (s->fd < 0) {
            socket_listen_watch_start(s);
        }
        return true;
    }

    int fd = s->is_unix ? socket_unix_connect(s, errp) : socket_tcp_open(s, errp);
    if (fd < 0) {
        socket_free_config(s);
        return false;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    socket_set_connected(s, fd);
    return true;
}

/* Give queued output a bounded chance to reach the peer before closing. */
static void socket_flush_before_close(SocketChardev *s)
{
    gint64 deadline = g_get_monotonic_time() + SOCKET_CLOSE_FLUSH_MS * 1000;

    while (s->fd >= 0 && s->outbuf->len) {
        gint64 left_ms = (deadline - g_get_monotonic_time()) / 1000;
        struct pollfd pfd = { .fd = s->fd, .events = POLLOUT };

        if (left_ms <= 0 || poll(&pfd, 1, left_ms) <= 0) {
            break;
        }
        ssize_t n = send(s->fd, s->outbuf->data, s->outbuf->len, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            break;
        }
        if (n > 0) {
            g_byte_array_remove_range(s->outbuf, 0, n);
        }
    }
}

static void socket_close(Chardev *chr)
{
    SocketChardev *s = (SocketChardev *)chr;

    socket_close_received_fds(s);
    socket_source_remove(&s->listen_src);
    socket_source_remove(&s->read_src);
    g_mutex_lock(&chr->write_lock);
    socket_source_remove(&s->write_src);
    socket_flush_before_close(s);
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
    g_mutex_unlock(&chr->write_lock);
    if (s->listen_fd >= 0) {
        close(s->listen_fd);
        s->listen_fd = -1;
    }
    if (s->unlink_on_close) {
        unlink(s->path);
    }
    socket_free_config(s);
}

const ChardevDriver chardev_driver_socket = {
    .name = "socket",
    .instance_size = sizeof(SocketChardev),
    .keys = socket_keys,
    .open = socket_open,
    .write_locked = socket_write_locked,
    .is_connected = socket_is_connected,
    .frontend_changed = socket_frontend_changed,
    .accept_input = socket_accept_input,
    .close = socket_close,
};
