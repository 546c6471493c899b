/*
 * Migration URIs and transports: the parser's good and bad forms, tcp
 * and unix listeners in a GMainLoop with real connections, connect errors
 * and cancel, exec: both ways, file: with an offset, fd: by number and by
 * monitor name.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "migration/channel.h"
#include "migration/qemu-file.h"
#include "stubs.h"

/* URI parsing */

typedef struct GoodUri {
    const char *uri;
    MigUriKind kind;
    const char *a;          /* host / path / fdname / command */
    const char *port;
    uint64_t offset;
} GoodUri;

static const GoodUri good_uris[] = {
    { "tcp:127.0.0.1:4444", MIG_URI_TCP, "127.0.0.1", "4444" },
    { "tcp:localhost:0", MIG_URI_TCP, "localhost", "0" },
    { "tcp::4444", MIG_URI_TCP, "", "4444" },
    { "tcp:[::1]:65535", MIG_URI_TCP, "::1", "65535" },
    { "tcp:[fe80::1%eth0]:1", MIG_URI_TCP, "fe80::1%eth0", "1" },
    { "tcp:[::]:49152", MIG_URI_TCP, "::", "49152" },
    { "unix:/tmp/mig.sock", MIG_URI_UNIX, "/tmp/mig.sock" },
    { "unix:relative,with,commas", MIG_URI_UNIX, "relative,with,commas" },
    { "fd:migfd", MIG_URI_FD, "migfd" },
    { "fd:42", MIG_URI_FD, "42" },
    { "exec:cat > /tmp/x", MIG_URI_EXEC, "cat > /tmp/x" },
    { "exec:gzip -c | ssh host 'cat > a:b'", MIG_URI_EXEC, "gzip -c | ssh host 'cat > a:b'" },
    { "file:/tmp/vm.img", MIG_URI_FILE, "/tmp/vm.img", NULL, 0 },
    { "file:/tmp/vm.img,offset=4096", MIG_URI_FILE, "/tmp/vm.img", NULL, 4096 },
    { "file:/tmp/a,b.img,offset=1M", MIG_URI_FILE, "/tmp/a,b.img", NULL, 1 << 20 },
    { "file:/tmp/vm.img,offset=0", MIG_URI_FILE, "/tmp/vm.img", NULL, 0 },
};

static void test_uri_good(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(good_uris); i++) {
        const GoodUri *g = &good_uris[i];
        g_autoptr(GError) err = NULL;
        g_autoptr(MigUri) u = mig_uri_parse(g->uri, &err);

        g_test_message("%s", g->uri);
        g_assert_no_error(err);
        g_assert_nonnull(u);
        g_assert_cmpint(u->kind, ==, g->kind);
        switch (g->kind) {
        case MIG_URI_TCP:
            g_assert_cmpstr(u->host, ==, g->a);
            g_assert_cmpstr(u->port, ==, g->port);
            break;
        case MIG_URI_UNIX:
            g_assert_cmpstr(u->path, ==, g->a);
            break;
        case MIG_URI_FD:
            g_assert_cmpstr(u->fdname, ==, g->a);
            break;
        case MIG_URI_EXEC:
            g_assert_cmpstr(u->command, ==, g->a);
            break;
        case MIG_URI_FILE:
            g_assert_cmpstr(u->path, ==, g->a);
            g_assert_cmpuint(u->offset, ==, g->offset);
            break;
        }
    }
}

typedef struct BadUri {
    const char *uri;
    const char *message;
} BadUri;

static const BadUri bad_uris[] = {
    { "", "unknown migration protocol: " },
    { "ftp://host/x", "unknown migration protocol: ftp://host/x" },
    { "tcp", "unknown migration protocol: tcp" },
    { "TCP:1.2.3.4:5", "unknown migration protocol: TCP:1.2.3.4:5" },
    { "rdma:host:4444", "migration protocol 'rdma' is not supported: rdma:host:4444" },
    { "vsock:3:4444", "migration protocol 'vsock' is not supported: vsock:3:4444" },
    { "tcp:nohost", "invalid migration URI 'tcp:nohost': expected tcp:HOST:PORT" },
    { "tcp:", "invalid migration URI 'tcp:': expected tcp:HOST:PORT" },
    { "tcp:host:", "invalid migration URI 'tcp:host:': missing port: expected tcp:HOST:PORT" },
    { "tcp:host:http", "invalid migration URI 'tcp:host:http': invalid port 'http': "
                       "expected a number from 0 to 65535" },
    { "tcp:host:65536", "invalid migration URI 'tcp:host:65536': invalid port '65536': "
                        "expected a number from 0 to 65535" },
    { "tcp:host:-1", "invalid port '-1'" },
    { "tcp:host:123456", "invalid port '123456'" },
    { "tcp:host:4444,ipv4=on", "invalid migration URI 'tcp:host:4444,ipv4=on': "
                               "options after the port are not supported" },
    { "tcp:::1:4444", "invalid migration URI 'tcp:::1:4444': an IPv6 address needs brackets: "
                      "tcp:[ADDRESS]:PORT" },
    { "tcp:[::1:4444", "invalid migration URI 'tcp:[::1:4444': "
                       "missing ']' after the IPv6 address" },
    { "tcp:[::1]4444", "invalid migration URI 'tcp:[::1]4444': expected tcp:[ADDRESS]:PORT" },
    { "tcp:[::1]", "invalid migration URI 'tcp:[::1]': expected tcp:[ADDRESS]:PORT" },
    { "tcp:[]:4444", "invalid migration URI 'tcp:[]:4444': empty IPv6 address in brackets" },
    { "tcp:[::1]:", "invalid migration URI 'tcp:[::1]:': missing port: expected tcp:HOST:PORT" },
    { "unix:", "invalid migration URI 'unix:': expected unix:PATH" },
    { "unix:/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaa", "socket path longer than 107 bytes" },
    { "fd:", "invalid migration URI 'fd:': expected fd:NAME" },
    { "fd:3x", "invalid migration URI 'fd:3x': invalid file descriptor number '3x'" },
    { "fd:99999999999", "invalid file descriptor number '99999999999'" },
    { "exec:", "invalid migration URI 'exec:': expected exec:COMMAND" },
    { "exec:   ", "invalid migration URI 'exec:   ': expected exec:COMMAND" },
    { "file:", "invalid migration URI 'file:': expected file:PATH[,offset=N]" },
    { "file:,offset=4", "invalid migration URI 'file:,offset=4': expected file:PATH[,offset=N]" },
    { "file:/x,offset=", "invalid migration URI 'file:/x,offset=': invalid offset ''" },
    { "file:/x,offset=abc", "invalid migration URI 'file:/x,offset=abc': invalid offset 'abc'" },
    { "file:/x,offset=-1", "invalid offset '-1'" },
    { "file:/x,offset=4k,foo", "invalid offset '4k,foo'" },
};

static void test_uri_bad(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(bad_uris); i++) {
        const BadUri *b = &bad_uris[i];
        g_autoptr(GError) err = NULL;
        g_autoptr(MigUri) u = mig_uri_parse(b->uri, &err);

        g_test_message("%s -> %s", b->uri, err ? err->message : "(accepted)");
        g_assert_null(u);
        g_assert_error(err, MIG_CHANNEL_ERROR, EINVAL);
        g_assert_nonnull(strstr(err->message, b->message));
    }
}

static void test_uri_incoming_needs_listener(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(MigUri) u = mig_uri_parse("tcp:[::1]:4444", &err);

    g_assert_null(mig_channel_open_incoming(u, &err));
    g_assert_error(err, MIG_CHANNEL_ERROR, EINVAL);
    g_assert_nonnull(strstr(err->message, "'tcp:[::1]:4444'"));
    g_clear_error(&err);

    g_autoptr(MigUri) f = mig_uri_parse("file:/x", &err);
    g_assert_null(mig_listener_new(f, NULL, NULL, &err));
    g_assert_error(err, MIG_CHANNEL_ERROR, EINVAL);
}

/* Listeners and connections */

typedef struct Accepted {
    GMainLoop *loop;
    GPtrArray *channels;
    guint want;
} Accepted;

static void on_accepted(MigChannel *ch, void *opaque)
{
    Accepted *a = opaque;

    g_ptr_array_add(a->channels, ch);
    if (a->channels->len == a->want) {
        g_main_loop_quit(a->loop);
    }
}

static gboolean on_timeout(gpointer opaque)
{
    g_error("timed out waiting for connections");
    return G_SOURCE_REMOVE;
}

/* Both directions, through QEMUFile on each side. */
static void exchange(MigChannel *client, MigChannel *server)
{
    g_autoptr(GError) err = NULL;
    uint8_t buf[5];

    QEMUFile *out = qemu_file_new_output(client);
    qemu_put_be64(out, 0x1122334455667788ULL);
    qemu_put_buffer(out, "hello", 5);
    g_assert_cmpint(qemu_fflush(out), ==, 0);

    QEMUFile *in = qemu_file_new_input(server);
    g_assert_cmpuint(qemu_get_be64(in), ==, 0x1122334455667788ULL);
    g_assert_cmpuint(qemu_get_buffer(in, buf, 5), ==, 5);
    g_assert_cmpmem(buf, 5, "hello", 5);

    /* The return path runs the other way on the same sockets. */
    struct iovec iov = { "back", 4 };
    g_assert_true(mig_channel_writev_all(server, &iov, 1, &err));
    g_assert_no_error(err);
    g_assert_cmpint(mig_channel_read(client, buf, 4, &err), ==, 4);
    g_assert_cmpmem(buf, 4, "back", 4);

    g_assert_cmpint(qemu_fclose(out), ==, 0);
    g_assert_cmpint(qemu_peek_byte(in), ==, -1);
    g_assert_true(qemu_file_at_eof(in));
    g_assert_cmpint(qemu_fclose(in), ==, 0);
}

/* Listen on @listen_uri, connect @n clients to @connect_uri (NULL: the listener's address). */
static void run_listener(const char *listen_uri, const char *connect_uri, guint n,
                         const char *want_prefix)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(MigUri) lu = mig_uri_parse(listen_uri, &err);
    g_assert_no_error(err);
    Accepted a = { .loop = g_main_loop_new(NULL, FALSE), .channels = g_ptr_array_new(),
                   .want = n };
    MigListener *l = mig_listener_new(lu, on_accepted, &a, &err);
    g_assert_no_error(err);

    const char *addr = mig_listener_address(l);
    g_test_message("%s listens at %s", listen_uri, addr);
    g_assert_true(g_str_has_prefix(addr, want_prefix));
    g_assert_false(g_str_has_suffix(addr, ":0"));
    g_autoptr(MigUri) cu = mig_uri_parse(connect_uri ? connect_uri : addr, &err);
    g_assert_no_error(err);
    if (connect_uri && cu->kind == MIG_URI_TCP && g_str_equal(cu->port, "0")) {
        /* Same host as given, the port the listener got. */
        g_free(cu->port);
        cu->port = g_strdup(strrchr(addr, ':') + 1);
    }

    MigChannel *clients[4];
    g_assert_cmpuint(n, <=, G_N_ELEMENTS(clients));
    for (guint i = 0; i < n; i++) {
        clients[i] = mig_channel_open_outgoing(cu, -1, &err);
        g_assert_no_error(err);
        g_assert_cmpint(mig_channel_kind(clients[i]), ==, MIG_CHANNEL_SOCKET);
    }
    guint timeout = g_timeout_add_seconds(10, on_timeout, NULL);
    g_main_loop_run(a.loop);
    g_source_remove(timeout);
    mig_listener_free(l);

    /* Accepted in connect order: the backlog is a queue. */
    for (guint i = 0; i < n; i++) {
        MigChannel *server = g_ptr_array_index(a.channels, i);
        g_assert_cmpint(mig_channel_kind(server), ==, MIG_CHANNEL_SOCKET);
        exchange(clients[i], server);
    }
    g_ptr_array_free(a.channels, TRUE);
    g_main_loop_unref(a.loop);
}

static void test_listen_tcp(void)
{
    run_listener("tcp:127.0.0.1:0", NULL, 3, "tcp:127.0.0.1:");
}

static bool have_ipv6(void)
{
    struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0;

    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

/* The usual owner: done listening once the main channel is in. */
typedef struct OneShot {
    MigListener *l;
    MigChannel *ch;
    GMainLoop *loop;
} OneShot;

static void on_accepted_free_listener(MigChannel *ch, void *opaque)
{
    OneShot *o = opaque;

    o->ch = ch;
    mig_listener_free(o->l);
    o->l = NULL;
    g_main_loop_quit(o->loop);
}

static void test_listen_free_in_callback(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(MigUri) u = mig_uri_parse("tcp:localhost:0", &err);
    OneShot o = { .loop = g_main_loop_new(NULL, FALSE) };

    o.l = mig_listener_new(u, on_accepted_free_listener, &o, &err);
    g_assert_no_error(err);
    g_autoptr(MigUri) cu = mig_uri_parse(mig_listener_address(o.l), &err);
    /* Two clients: the second is never accepted once the listener is gone. */
    MigChannel *c1 = mig_channel_open_outgoing(cu, -1, &err);
    g_assert_no_error(err);
    MigChannel *c2 = mig_channel_open_outgoing(cu, -1, &err);
    g_assert_no_error(err);
    guint timeout = g_timeout_add_seconds(10, on_timeout, NULL);
    g_main_loop_run(o.loop);
    g_source_remove(timeout);
    g_assert_null(o.l);
    /* Nothing left to dispatch for the freed listener. */
    while (g_main_context_iteration(NULL, FALSE)) {
    }
    exchange(c1, o.ch);
    mig_channel_free(c2);
    g_main_loop_unref(o.loop);
}

static void test_listen_tcp6(void)
{
    if (!have_ipv6()) {
        g_test_skip("no IPv6 loopback");
        return;
    }
    run_listener("tcp:[::1]:0", NULL, 1, "tcp:[::1]:");
}

/* No host: every address, IPv4 clients included. */
static void test_listen_tcp_any(void)
{
    run_listener("tcp::0", "tcp:127.0.0.1:0", 2, "tcp:");
}

static void test_listen_unix(void)
{
    g_autofree char *dir = g_dir_make_tmp("mig-unix-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "sock", NULL);
    g_autofree char *uri = g_strconcat("unix:", path, NULL);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };

    /* A socket file left behind, as by a crashed run, is replaced. */
    g_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    g_assert_cmpint(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), ==, 0);
    close(fd);
    run_listener(uri, NULL, 2, "unix:");
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));  /* unlinked on free */

    /* A listener whose path was taken over unlinks nothing on free. */
    g_autoptr(GError) err = NULL;
    g_autoptr(MigUri) u = mig_uri_parse(uri, &err);
    MigListener *first = mig_listener_new(u, on_accepted, NULL, &err);
    g_assert_no_error(err);
    MigListener *second = mig_listener_new(u, on_accepted, NULL, &err);
    g_assert_no_error(err);
    mig_listener_free(first);
    g_assert_true(g_file_test(path, G_FILE_TEST_EXISTS));
    mig_listener_free(second);
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
    g_rmdir(dir);
}

static void test_listen_unix_keeps_files(void)
{
    g_autofree char *dir = g_dir_make_tmp("mig-unix-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "precious", NULL);
    g_autofree char *uri = g_strconcat("unix:", path, NULL);
    g_autoptr(GError) err = NULL;

    g_assert_true(g_file_set_contents(path, "data", 4, NULL));
    g_autoptr(MigUri) u = mig_uri_parse(uri, &err);
    g_assert_null(mig_listener_new(u, on_accepted, NULL, &err));
    g_assert_error(err, MIG_CHANNEL_ERROR, EADDRINUSE);
    g_assert_true(g_str_has_prefix(err->message, "Failed to listen on '"));
    g_assert_true(g_file_test(path, G_FILE_TEST_IS_REGULAR));
    g_unlink(path);
    g_rmdir(dir);
}

static void test_listen_tcp_in_use(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(MigUri) u = mig_uri_parse("tcp:127.0.0.1:0", &err);
    MigListener *l = mig_listener_new(u, on_accepted, NULL, &err);
    g_assert_no_error(err);

    g_autoptr(MigUri) again = mig_uri_parse(mig_listener_address(l), &err);
    g_assert_null(mig_listener_new(again, on_accepted, NULL, &err));
    g_assert_error(err, MIG_CHANNEL_ERROR, EADDRINUSE);
    g_autofree char *want = g_strdup_printf("Failed to listen on '127.0.0.1:%s': %s",
                                            again->port, g_strerror(EADDRINUSE));
    g_assert_cmpstr(err->message, ==, want);
    mig_listener_free(l);
}

/* A port nobody listens on: bind one, and close it again. */
static int free_tcp_port(void)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    g_assert_cmpint(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), ==, 0);
    getsockname(fd, (struct sockaddr *)&sin, &len);
    close(fd);
    return ntohs(sin.sin_port);
}

static void test_connect_refused(void)
{
    g_autoptr(GError) err = NULL;
    int port = free_tcp_port();
    g_autofree char *uri = g_strdup_printf("tcp:127.0.0.1:%d", port);
    g_autoptr(MigUri) u = mig_uri_parse(uri, &err);

    g_assert_null(mig_channel_open_outgoing(u, -1, &err));
    g_assert_error(err, MIG_CHANNEL_ERROR, ECONNREFUSED);
    g_autofree char *want = g_strdup_printf("Failed to connect to '127.0.0.1:%d': %s", port,
                                            g_strerror(ECONNREFUSED));
    g_assert_cmpstr(err->message, ==, want);

    g_clear_error(&err);
    g_autoptr(MigUri) nx = mig_uri_parse("unix:/nonexistent/mig.sock", &err);
    g_assert_null(mig_channel_open_outgoing(nx, -1, &err));
    g_assert_error(err, MIG_CHANNEL_ERROR, ENOENT);
    g_assert_cmpstr(err->message, ==, "Failed to connect to '/nonexistent/mig.sock': "
                                      "No such file or directory");

    g_clear_error(&err);
    g_autoptr(MigUri) bad = mig_uri_parse("tcp:no-such-host.invalid:4444", &err);
    g_assert_null(mig_channel_open_outgoing(bad, -1, &err));
    g_assert_nonnull(err);
    g_assert_true(g_str_has_prefix(err->message,
                                   "Failed to resolve 'no-such-host.invalid:4444': "));
}

static gpointer cancel_later(gpointer opaque)
{
    uint64_t one = 1;

    g_usleep(200 * 1000);
    g_assert_cmpint(write(GPOINTER_TO_INT(opaque), &one, sizeof(one)), ==, sizeof(one));
    return NULL;
}

/*
 * A connect that cannot complete (a unix listener whose backlog is full
 * and who never accepts) ends as soon as the cancel eventfd fires.
 */
static void test_connect_cancel(void)
{
    g_autofree char *dir = g_dir_make_tmp("mig-unix-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "sock", NULL);
    g_autofree char *uri = g_strconcat("unix:", path, NULL);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    g_autoptr(GError) err = NULL;
    GArray *fillers = g_array_new(FALSE, FALSE, sizeof(int));

    g_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    g_assert_cmpint(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), ==, 0);
    g_assert_cmpint(listen(lfd, 0), ==, 0);
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
            g_assert_cmpint(errno, ==, EAGAIN);
            close(fd);
            break;
        }
        g_array_append_val(fillers, fd);
    }

    int cancel = eventfd(0, EFD_CLOEXEC);
    g_autoptr(MigUri) u = mig_uri_parse(uri, &err);
    GThread *th = g_thread_new("cancel", cancel_later, GINT_TO_POINTER(cancel));
    gint64 t0 = g_get_monotonic_time();
    g_assert_null(mig_channel_open_outgoing(u, cancel, &err));
    gint64 took = g_get_monotonic_time() - t0;
    g_thread_join(th);
    g_assert_error(err, MIG_CHANNEL_ERROR, ECANCELED);
    g_autofree char *want = g_strdup_printf("Failed to connect to '%s': connection cancelled",
                                            path);
    g_assert_cmpstr(err->message, ==, want);
    g_assert_cmpint(took, >=, 150 * 1000);
    g_assert_cmpint(took, <, 2 * G_USEC_PER_SEC);

    for (guint i = 0; i < fillers->len; i++) {
        close(g_array_index(fillers, int, i));
    }
    g_array_free(fillers, TRUE);
    close(cancel);
    close(lfd);
    g_unlink(path);
    g_rmdir(dir);
}

/* exec: */

static void put_payload(QEMUFile *f, size_t len)
{
    for (size_t i = 0; i < len; i += 4) {
        qemu_put_be32(f, i);
    }
}

static void check_payload(QEMUFile *f, size_t len)
{
    for (size_t i = 0; i < len; i += 4) {
        g_assert_cmpuint(qemu_get_be32(f), ==, i);
    }
}

static MigChannel *open_uri(const char *uri, bool outgoing)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(MigUri) u = mig_uri_parse(uri, &err);
    g_assert_no_error(err);
    MigChannel *ch = outgoing ? mig_channel_open_outgoing(u, -1, &err)
                              : mig_channel_open_incoming(u, &err);
    g_assert_no_error(err);
    return ch;
}

static void test_exec(void)
{
    g_autofree char *dir = g_dir_make_tmp("mig-exec-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "out with space", NULL);
    g_autofree char *quoted = g_shell_quote(path);
    g_autofree char *out_uri = g_strdup_printf("exec:cat > %s", quoted);
    g_autofree char *in_uri = g_strdup_printf("exec:cat %s", quoted);
    const size_t len = 3 << 20;

    MigChannel *w = open_uri(out_uri, true);
    g_assert_cmpint(mig_channel_kind(w), ==, MIG_CHANNEL_PIPE);
    g_assert_cmpstr(mig_channel_desc(w), ==, out_uri);
    QEMUFile *out = qemu_file_new_output(w);
    put_payload(out, len);
    /* Closing reaps cat, which has written everything by then. */
    g_assert_cmpint(qemu_fclose(out), ==, 0);

    struct stat st;
    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, len);

    QEMUFile *in = qemu_file_new_input(open_uri(in_uri, false));
    check_payload(in, len);
    g_assert_cmpint(qemu_peek_byte(in), ==, -1);
    g_assert_true(qemu_file_at_eof(in));
    g_assert_cmpint(qemu_fclose(in), ==, 0);
    g_unlink(path);
    g_rmdir(dir);
}

static void test_exec_failing_command(void)
{
    /* The command exits without reading: the writer sees a broken pipe. */
    QEMUFile *out = qemu_file_new_output(open_uri("exec:exit 3", true));
    put_payload(out, 4 << 20);
    g_assert_cmpint(qemu_fflush(out), ==, -EPIPE);
    g_assert_cmpstr(qemu_file_error_message(out), ==, "writing to exec:exit 3: Broken pipe");
    g_assert_cmpint(qemu_fclose(out), ==, -EPIPE);

    /* A reader that stops early does not wait for a command that never ends. */
    MigChannel *r = open_uri("exec:while :; do echo y; done", false);
    uint8_t buf[4];
    g_autoptr(GError) err = NULL;
    g_assert_cmpint(mig_channel_read(r, buf, 1, &err), ==, 1);
    gint64 t0 = g_get_monotonic_time();
    mig_channel_free(r);
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 3 * G_USEC_PER_SEC);

    /* Cancelled: a command that ignores its input is stopped, not waited for. */
    MigChannel *w = open_uri("exec:sleep 100", true);
    mig_channel_shutdown(w);
    t0 = g_get_monotonic_time();
    mig_channel_free(w);
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 3 * G_USEC_PER_SEC);
}

/* file: */

static void test_file_offset(void)
{
    g_autofree char *dir = g_dir_make_tmp("mig-file-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "vm.img", NULL);
    g_autofree char *uri = g_strdup_printf("file:%s,offset=4k", path);
    g_autofree char *plain = g_strdup_printf("file:%s", path);
    const size_t len = 1 << 20;
    g_autofree char *contents = NULL;
    gsize clen;

    /* A header someone else wrote, and stale bytes past it. */
    g_autofree char *pre = g_malloc(8192);
    memset(pre, 'H', 4096);
    memset(pre + 4096, 'S', 4096);
    g_assert_true(g_file_set_contents(path, pre, 8192, NULL));

    MigChannel *w = open_uri(uri, true);
    g_assert_cmpint(mig_channel_kind(w), ==, MIG_CHANNEL_FILE);
    g_autofree char *desc = g_strdup_printf("file:%s,offset=4096", path);
    g_assert_cmpstr(mig_channel_desc(w), ==, desc);
    QEMUFile *out = qemu_file_new_output(w);
    put_payload(out, len);
    g_assert_cmpint(qemu_fclose(out), ==, 0);

    g_assert_true(g_file_get_contents(path, &contents, &clen, NULL));
    g_assert_cmpuint(clen, ==, 4096 + len);
    for (size_t i = 0; i < 4096; i++) {
        g_assert_cmpint(contents[i], ==, 'H');
    }

    QEMUFile *in = qemu_file_new_input(open_uri(uri, false));
    check_payload(in, len);
    g_assert_cmpint(qemu_peek_byte(in), ==, -1);
    g_assert_true(qemu_file_at_eof(in));
    g_assert_cmpint(qemu_fclose(in), ==, 0);

    /* Without an offset the file is replaced. */
    out = qemu_file_new_output(open_uri(plain, true));
    qemu_put_be32(out, 7);
    g_assert_cmpint(qemu_fclose(out), ==, 0);
    struct stat st;
    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, 4);

    /* Reading a missing file. */
    g_autoptr(GError) err = NULL;
    g_autofree char *missing = g_strdup_printf("file:%s/none", dir);
    g_autoptr(MigUri) mu = mig_uri_parse(missing, &err);
    g_assert_null(mig_channel_open_incoming(mu, &err));
    g_assert_error(err, MIG_CHANNEL_ERROR, ENOENT);
    g_autofree char *want = g_strdup_printf("Failed to open file '%s/none': %s", dir,
                                            g_strerror(ENOENT));
    g_assert_cmpstr(err->message, ==, want);

    /* Shutdown applies to files too. */
    MigChannel *f = open_uri(plain, false);
    mig_channel_shutdown(f);
    uint8_t buf[4];
    g_clear_error(&err);
    g_assert_cmpint(mig_channel_read(f, buf, 4, &err), ==, -1);
    g_assert_error(err, MIG_CHANNEL_ERROR, ESHUTDOWN);
    mig_channel_free(f);

    g_unlink(path);
    g_rmdir(dir);
}

/* fd: */

static void test_fd(void)
{
    g_autoptr(GError) err = NULL;
    int sv[2];
    uint8_t buf[4];

    /* By number. */
    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
    g_autofree char *uri = g_strdup_printf("fd:%d", sv[0]);
    MigChannel *a = open_uri(uri, true);
    g_assert_cmpint(mig_channel_kind(a), ==, MIG_CHANNEL_SOCKET);
    g_assert_cmpint(mig_channel_fd(a), ==, sv[0]);

    /* By monitor name, taken once. */
    stub_monitor_add_fd("migfd", sv[1]);
    MigChannel *b = open_uri("fd:migfd", false);
    g_assert_cmpstr(mig_channel_desc(b), ==, "fd:migfd");
    exchange(a, b);

    g_autoptr(MigUri) again = mig_uri_parse("fd:migfd", &err);
    g_assert_null(mig_channel_open_incoming(again, &err));
    g_assert_error(err, MIG_CHANNEL_ERROR, EBADF);
    g_assert_cmpstr(err->message, ==, "File descriptor named 'migfd' has not been found");
    g_clear_error(&err);

    /* A number that is not an open fd. */
    g_autoptr(MigUri) closed = mig_uri_parse("fd:999999", &err);
    g_assert_null(mig_channel_open_outgoing(closed, -1, &err));
    g_assert_error(err, MIG_CHANNEL_ERROR, EBADF);
    g_clear_error(&err);

    /* A pipe and a regular file through fd: get their own kinds. */
    int p[2];
    g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
    stub_monitor_add_fd("pipe", p[0]);
    MigChannel *pc = open_uri("fd:pipe", false);
    g_assert_cmpint(mig_channel_kind(pc), ==, MIG_CHANNEL_PIPE);
    g_assert_cmpint(write(p[1], "abcd", 4), ==, 4);
    g_assert_cmpint(mig_channel_read(pc, buf, 4, &err), ==, 4);
    close(p[1]);
    g_assert_cmpint(mig_channel_read(pc, buf, 4, &err), ==, 0);
    g_assert_no_error(err);
    mig_channel_free(pc);

    FILE *tmp = tmpfile();
    stub_monitor_add_fd("file", dup(fileno(tmp)));
    fclose(tmp);
    MigChannel *fc = open_uri("fd:file", true);
    g_assert_cmpint(mig_channel_kind(fc), ==, MIG_CHANNEL_FILE);
    mig_channel_free(fc);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    /* As the VMM does (main.c): a closed peer is an EPIPE, not a signal. */
    signal(SIGPIPE, SIG_IGN);

    g_test_add_func("/migration/uri/good", test_uri_good);
    g_test_add_func("/migration/uri/bad", test_uri_bad);
    g_test_add_func("/migration/uri/incoming-needs-listener", test_uri_incoming_needs_listener);
    g_test_add_func("/migration/socket/listen-tcp", test_listen_tcp);
    g_test_add_func("/migration/socket/listen-tcp6", test_listen_tcp6);
    g_test_add_func("/migration/socket/listen-free-in-callback", test_listen_free_in_callback);
    g_test_add_func("/migration/socket/listen-tcp-any", test_listen_tcp_any);
    g_test_add_func("/migration/socket/listen-tcp-in-use", test_listen_tcp_in_use);
    g_test_add_func("/migration/socket/listen-unix", test_listen_unix);
    g_test_add_func("/migration/socket/listen-unix-keeps-files", test_listen_unix_keeps_files);
    g_test_add_func("/migration/socket/connect-refused", test_connect_refused);
    g_test_add_func("/migration/socket/connect-cancel", test_connect_cancel);
    g_test_add_func("/migration/exec/roundtrip", test_exec);
    g_test_add_func("/migration/exec/failing-command", test_exec_failing_command);
    g_test_add_func("/migration/file/offset", test_file_offset);
    g_test_add_func("/migration/fd/roundtrip", test_fd);
    return g_test_run();
}
