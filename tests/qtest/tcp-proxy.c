/*
 * A TCP forwarder that can cut one chosen connection (see tcp-proxy.h).
 *
 * Each forwarded connection is a pair of non-blocking sockets with one
 * buffer per direction: the proxy reads from a side only when the buffer
 * towards the other side is empty, and polls for POLLOUT while it is not.
 * End of stream on one side becomes shutdown(SHUT_WR) on the other once
 * the buffer is flushed; an error on either side closes the pair.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>

#include "tcp-proxy.h"

#define PROXY_BUF_SIZE 65536

typedef struct ProxyDir {
    uint8_t buf[PROXY_BUF_SIZE];
    size_t len;         /* bytes in buf */
    size_t off;         /* bytes of buf already written */
    bool eof;           /* the reading side ended its stream */
    bool done;          /* ... and the writing side was shut for writing */
} ProxyDir;

typedef struct ProxyConn {
    int cfd;            /* accepted from the client */
    int tfd;            /* connected to the target */
    bool connecting;    /* tfd's connect() has not finished */
    ProxyDir c2t, t2c;
    uint8_t first[4];   /* the client's first bytes */
    unsigned first_len;
    bool doomed;        /* the connection the test asked to cut */
    uint64_t c2t_bytes;
    int cidx, tidx;     /* in this round's pollfd array, or -1 */
} ProxyConn;

struct TcpProxy {
    int listen_fd;
    int port;
    int wake[2];        /* pipe: a byte in wake[0] means "look at stop" */
    struct sockaddr_storage target;
    socklen_t target_len;
    GThread *thread;
    GPtrArray *conns;   /* ProxyConn *; the proxy thread's only */
    gint stop;          /* atomic */
    guint accepted;     /* atomic */

    GMutex lock;        /* guards the kill request and its outcome */
    bool kill_armed;
    uint32_t kill_magic;
    int kill_nth;
    uint64_t kill_after;
    int kill_seen;      /* connections seen with kill_magic */
    bool killed;
};

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    g_assert_cmpint(fl, >=, 0);
    g_assert_cmpint(fcntl(fd, F_SETFL, fl | O_NONBLOCK), ==, 0);
}

static void proxy_conn_close(ProxyConn *c)
{
    if (c->cfd >= 0) {
        close(c->cfd);
    }
    if (c->tfd >= 0) {
        close(c->tfd);
    }
    g_free(c);
}

static void proxy_accept(TcpProxy *p)
{
    for (;;) {
        int cfd = accept4(p->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            /* EAGAIN: all taken; anything else: try again on the next wakeup. */
            return;
        }
        int tfd = socket(p->target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (tfd < 0) {
            close(cfd);
            continue;
        }
        bool connecting = false;
        if (connect(tfd, (struct sockaddr *)&p->target, p->target_len) < 0) {
            if (errno != EINPROGRESS) {
                /* The target is gone: the client sees its connection closed. */
                close(tfd);
                close(cfd);
                continue;
            }
            connecting = true;
        }
        ProxyConn *c = g_new0(ProxyConn, 1);
        c->cfd = cfd;
        c->tfd = tfd;
        c->connecting = connecting;
        c->cidx = c->tidx = -1;
        g_ptr_array_add(p->conns, c);
        g_atomic_int_inc(&p->accepted);
    }
}

/* The client's first four bytes arrived: is this the connection to cut? */
static void proxy_classify(TcpProxy *p, ProxyConn *c)
{
    uint32_t magic = (uint32_t)c->first[0] << 24 | (uint32_t)c->first[1] << 16 |
                     (uint32_t)c->first[2] << 8 | c->first[3];
    g_mutex_lock(&p->lock);
    if (p->kill_armed && magic == p->kill_magic && ++p->kill_seen == p->kill_nth) {
        c->doomed = true;
    }
    g_mutex_unlock(&p->lock);
}

/* Write out what DIR holds; false on an error that ends the pair. */
static bool proxy_flush(ProxyDir *d, int to)
{
    while (d->off < d->len) {
        ssize_t n = send(to, d->buf + d->off, d->len - d->off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return true;
        }
        if (n <= 0) {
            return false;
        }
        d->off += (size_t)n;
    }
    d->len = d->off = 0;
    if (d->eof && !d->done) {
        shutdown(to, SHUT_WR);
        d->done = true;
    }
    return true;
}

/* Read once into an empty DIR; false on an error that ends the pair. */
static bool proxy_read(TcpProxy *p, ProxyConn *c, ProxyDir *d, int from, bool c2t)
{
    if (d->len || d->eof) {
        return true;
    }
    ssize_t n = recv(from, d->buf, sizeof(d->buf), MSG_DONTWAIT);
    if (n < 0) {
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    }
    if (n == 0) {
        d->eof = true;
        return true;
    }
    d->len = (size_t)n;
    d->off = 0;
    if (c2t) {
        c->c2t_bytes += (uint64_t)n;
        if (c->first_len < 4) {
            size_t take = MIN((size_t)n, 4 - c->first_len);
            memcpy(c->first + c->first_len, d->buf, take);
            c->first_len += (unsigned)take;
            if (c->first_len == 4) {
                proxy_classify(p, c);
            }
        }
    }
    return true;
}

/* Handle one pair's events; false when the pair is finished and must go. */
static bool proxy_service(TcpProxy *p, ProxyConn *c, const struct pollfd *pfds)
{
    short crev = c->cidx >= 0 ? pfds[c->cidx].revents : 0;
    short trev = c->tidx >= 0 ? pfds[c->tidx].revents : 0;

    if (c->connecting) {
        if (!trev) {
            return true;
        }
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(c->tfd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
            return false;
        }
        c->connecting = false;
        return true;
    }
    if (crev && !proxy_read(p, c, &c->c2t, c->cfd, true)) {
        return false;
    }
    if (trev && !proxy_read(p, c, &c->t2c, c->tfd, false)) {
        return false;
    }
    if (c->doomed) {
        g_mutex_lock(&p->lock);
        bool cut = c->c2t_bytes > p->kill_after;
        if (cut) {
            p->killed = true;
        }
        g_mutex_unlock(&p->lock);
        if (cut) {
            shutdown(c->cfd, SHUT_RDWR);
            shutdown(c->tfd, SHUT_RDWR);
            return false;
        }
    }
    if (!proxy_flush(&c->c2t, c->tfd) || !proxy_flush(&c->t2c, c->cfd)) {
        return false;
    }
    return !(c->c2t.done && c->t2c.done);
}

static gpointer proxy_thread(gpointer opaque)
{
    TcpProxy *p = opaque;
    g_autoptr(GArray) pfds = g_array_new(FALSE, FALSE, sizeof(struct pollfd));

    while (!g_atomic_int_get(&p->stop)) {
        g_array_set_size(pfds, 0);
        struct pollfd w = { .fd = p->wake[0], .events = POLLIN };
        struct pollfd l = { .fd = p->listen_fd, .events = POLLIN };
        g_array_append_val(pfds, w);
        g_array_append_val(pfds, l);
        for (guint i = 0; i < p->conns->len; i++) {
            ProxyConn *c = g_ptr_array_index(p->conns, i);
            short cev = 0, tev = 0;
            if (c->connecting) {
                tev = POLLOUT;
            } else {
                cev = (short)((!c->c2t.len && !c->c2t.eof ? POLLIN : 0) |
                              (c->t2c.len ? POLLOUT : 0));
                tev = (short)((!c->t2c.len && !c->t2c.eof ? POLLIN : 0) |
                              (c->c2t.len ? POLLOUT : 0));
            }
            c->cidx = c->tidx = -1;
            if (cev) {
                struct pollfd pc = { .fd = c->cfd, .events = cev };
                c->cidx = (int)pfds->len;
                g_array_append_val(pfds, pc);
            }
            if (tev) {
                struct pollfd pt = { .fd = c->tfd, .events = tev };
                c->tidx = (int)pfds->len;
                g_array_append_val(pfds, pt);
            }
        }
        /* The timeout only bounds how long a lost wakeup could delay stop. */
        int n = poll((struct pollfd *)pfds->data, pfds->len, 1000);
        if (n < 0 && errno != EINTR) {
            g_error("tcp-proxy: poll: %s", g_strerror(errno));
        }
        if (n <= 0) {
            continue;
        }
        const struct pollfd *pf = (const struct pollfd *)pfds->data;
        if (pf[0].revents) {
            char drain[64];
            while (read(p->wake[0], drain, sizeof(drain)) > 0) {
            }
        }
        /* Service the pairs polled this round before adding new ones. */
        for (guint i = 0; i < p->conns->len;) {
            ProxyConn *c = g_ptr_array_index(p->conns, i);
            if (!proxy_service(p, c, pf)) {
                g_ptr_array_remove_index(p->conns, i);
                proxy_conn_close(c);
            } else {
                i++;
            }
        }
        if (pf[1].revents) {
            proxy_accept(p);
        }
    }
    return NULL;
}

TcpProxy *tcp_proxy_new(const char *target_host, int target_port)
{
    TcpProxy *p = g_new0(TcpProxy, 1);
    g_autofree char *port = g_strdup_printf("%d", target_port);
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
    struct addrinfo *ai = NULL;

    int rc = getaddrinfo(target_host, port, &hints, &ai);
    if (rc != 0) {
        g_error("tcp-proxy: cannot resolve %s: %s", target_host, gai_strerror(rc));
    }
    memcpy(&p->target, ai->ai_addr, ai->ai_addrlen);
    p->target_len = ai->ai_addrlen;
    freeaddrinfo(ai);

    p->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(p->listen_fd, >=, 0);
    int one = 1;
    setsockopt(p->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sin = { .sin_family = AF_INET,
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    g_assert_cmpint(bind(p->listen_fd, (struct sockaddr *)&sin, sizeof(sin)), ==, 0);
    g_assert_cmpint(listen(p->listen_fd, 64), ==, 0);
    socklen_t slen = sizeof(sin);
    g_assert_cmpint(getsockname(p->listen_fd, (struct sockaddr *)&sin, &slen), ==, 0);
    p->port = ntohs(sin.sin_port);
    set_nonblock(p->listen_fd);

    g_assert_cmpint(pipe2(p->wake, O_CLOEXEC | O_NONBLOCK), ==, 0);
    p->conns = g_ptr_array_new();
    g_mutex_init(&p->lock);
    p->thread = g_thread_new("tcp-proxy", proxy_thread, p);
    return p;
}

int tcp_proxy_port(TcpProxy *p)
{
    return p->port;
}

void tcp_proxy_kill_connection_with_magic(TcpProxy *p, uint32_t magic_prefix, int nth,
                                          uint64_t after_bytes)
{
    g_assert_cmpint(nth, >=, 1);
    g_mutex_lock(&p->lock);
    p->kill_armed = true;
    p->kill_magic = magic_prefix;
    p->kill_nth = nth;
    p->kill_after = after_bytes;
    p->kill_seen = 0;
    p->killed = false;
    g_mutex_unlock(&p->lock);
}

bool tcp_proxy_killed(TcpProxy *p)
{
    g_mutex_lock(&p->lock);
    bool killed = p->killed;
    g_mutex_unlock(&p->lock);
    return killed;
}

unsigned tcp_proxy_connections(TcpProxy *p)
{
    return g_atomic_int_get(&p->accepted);
}

void tcp_proxy_free(TcpProxy *p)
{
    if (!p) {
        return;
    }
    g_atomic_int_set(&p->stop, 1);
    ssize_t n;
    do {
        n = write(p->wake[1], "x", 1);
    } while (n < 0 && errno == EINTR);
    g_thread_join(p->thread);
    for (guint i = 0; i < p->conns->len; i++) {
        proxy_conn_close(g_ptr_array_index(p->conns, i));
    }
    g_ptr_array_free(p->conns, TRUE);
    close(p->listen_fd);
    close(p->wake[0]);
    close(p->wake[1]);
    g_mutex_clear(&p->lock);
    g_free(p);
}
