/*
 * Unit tests of the chardev backends: option strings and legacy short
 * forms (and their errors), file and null backends, and the socket backend
 * through real unix sockets: server and client exchange, one client at a
 * time, buffered output to a slow reader, writes from another thread,
 * unlinking the path at exit.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "chardev/char.h"
#include "tests/unit/stubs.h"

typedef struct TestFrontend {
    GString *rx;
    int opened;
    int closed;
    size_t window;      /* can_receive() answer; 0 holds input back */
} TestFrontend;

static size_t fe_can_receive(void *opaque)
{
    TestFrontend *fe = opaque;

    return fe->window;
}

static void fe_receive(void *opaque, const guint8 *buf, size_t len)
{
    TestFrontend *fe = opaque;

    g_string_append_len(fe->rx, (const char *)buf, len);
}

static void fe_opened(void *opaque)
{
    ((TestFrontend *)opaque)->opened++;
}

static void fe_closed(void *opaque)
{
    ((TestFrontend *)opaque)->closed++;
}

static const CharFrontendOps fe_ops = {
    .can_receive = fe_can_receive,
    .receive = fe_receive,
    .opened = fe_opened,
    .closed = fe_closed,
};

static void fe_init(TestFrontend *fe)
{
    fe->rx = g_string_new(NULL);
    fe->opened = fe->closed = 0;
    fe->window = 4096;
}

static void fe_fini(TestFrontend *fe)
{
    g_string_free(fe->rx, TRUE);
}

typedef bool (*PumpCond)(void *opaque);

/* Run the main context until @cond holds (5 s at most). */
static void pump_until(PumpCond cond, void *opaque)
{
    gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

    while (!cond(opaque)) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        if (!g_main_context_iteration(NULL, FALSE)) {
            g_usleep(1000);
        }
    }
}

static void pump_for_ms(int ms)
{
    gint64 end = g_get_monotonic_time() + ms * 1000;

    while (g_get_monotonic_time() < end) {
        if (!g_main_context_iteration(NULL, FALSE)) {
            g_usleep(1000);
        }
    }
}

static void assert_opts_error(const char *opts, const char *expected)
{
    g_autoptr(GError) err = NULL;
    Chardev *chr = chardev_new_from_opts(opts, &err);

    g_assert_null(chr);
    g_assert_nonnull(err);
    g_assert_cmpstr(err->message, ==, expected);
}

static void assert_legacy_error(const char *spec, const char *expected)
{
    g_autoptr(GError) err = NULL;
    Chardev *chr = chardev_new_from_legacy(spec, "legacy0", &err);

    g_assert_null(chr);
    g_assert_nonnull(err);
    g_assert_cmpstr(err->message, ==, expected);
}

static void test_opts_errors(void)
{
    g_autoptr(GError) err = NULL;
    Chardev *chr;

    assert_opts_error("xyz,id=a", "unknown chardev backend 'xyz'");
    assert_opts_error("null", "chardev: no id specified");
    assert_opts_error("id=n0", "chardev: \"n0\" missing backend");
    assert_opts_error("null,id=n0,foo=bar", "Invalid parameter 'foo'");
    assert_opts_error("socket,id=s0", "chardev: socket: no host given");
    assert_opts_error("socket,id=s0,host=localhost", "chardev: socket: no port given");
    assert_opts_error("socket,id=s0,path=/nonexistent/x,server=maybe",
                      "Parameter 'server' expects 'on' or 'off'");
    assert_opts_error("socket,id=s0,path=/nonexistent/x,wait=off",
                      "'wait' option is incompatible with socket in client connect mode");
    assert_opts_error("socket,id=s0,path=/nonexistent/dir/sock",
                      "Failed to connect to '/nonexistent/dir/sock': No such file or directory");
    assert_opts_error("file,id=f0", "chardev: file: no filename given");
    assert_opts_error("null,id=n0,mux=on", "chardev: mux=on is not supported");

    assert_legacy_error("xyz", "unknown chardev backend 'xyz'");
    assert_legacy_error("pty:foo", "unknown chardev backend 'pty'");
    assert_legacy_error("chardev:missing", "chardev 'missing' not found");
    assert_legacy_error("tcp:nohostport", "chardev: tcp: expected HOST:PORT in 'nohostport'");
    /* Options after a legacy address: the "noX" short form, unknown keys. */
    assert_legacy_error("unix:/nonexistent/x,nowait",
                        "'wait' option is incompatible with socket in client connect mode");
    assert_legacy_error("unix:/nonexistent/x,colour=red", "Invalid parameter 'colour'");

    chr = chardev_new_from_legacy("none", "serial0", &err);
    g_assert_null(chr);
    g_assert_no_error(err);

    chr = chardev_new_from_opts("null,id=n0", &err);
    g_assert_no_error(err);
    g_assert_true(chardev_find("n0") == chr);
    g_assert_cmpstr(chardev_id(chr), ==, "n0");
    g_assert_false(chardev_is_stdio(chr));
    assert_opts_error("null,id=n0", "Duplicate ID 'n0' for chardev");
    g_assert_true(chardev_new_from_legacy("chardev:n0", "x", &err) == chr);
    g_assert_no_error(err);
    chardev_cleanup_all();
    g_assert_null(chardev_find("n0"));
}

static void test_null(void)
{
    g_autoptr(GError) err = NULL;
    TestFrontend fe, fe2;
    Chardev *chr;

    fe_init(&fe);
    fe_init(&fe2);
    chr = chardev_new_from_legacy("null", "null0", &err);
    g_assert_no_error(err);
    g_assert_cmpstr(chardev_id(chr), ==, "null0");
    g_assert_true(chardev_attach_frontend(chr, &fe_ops, &fe, &err));
    g_assert_cmpint(fe.opened, ==, 1);
    g_assert_false(chardev_attach_frontend(chr, &fe_ops, &fe2, &err));
    g_assert_cmpstr(err->message, ==, "Device 'null0' is in use");
    g_clear_error(&err);
    g_assert_cmpint(chardev_write(chr, "abc", 3), ==, 3);
    chardev_detach_frontend(chr);
    g_assert_true(chardev_attach_frontend(chr, &fe_ops, &fe2, &err));
    chardev_cleanup_all();
    fe_fini(&fe);
    fe_fini(&fe2);
}

static void test_file(void)
{
    g_autofree char *dir = g_dir_make_tmp("ferry-chr-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "out,with,commas.txt", NULL);
    g_autofree char *escaped = NULL;
    g_autofree char *opts = NULL;
    g_autofree char *legacy = NULL;
    g_autofree char *contents = NULL;
    g_autoptr(GError) err = NULL;
    g_auto(GStrv) parts = NULL;
    Chardev *chr;

    /* ",," in an option value is a literal comma. */
    parts = g_strsplit(path, ",", -1);
    escaped = g_strjoinv(",,", parts);
    opts = g_strdup_printf("file,id=f0,path=%s", escaped);
    chr = chardev_new_from_opts(opts, &err);
    g_assert_no_error(err);
    g_assert_cmpint(chardev_write(chr, "hello ", 6), ==, 6);
    chardev_cleanup_all();

    g_free(opts);
    opts = g_strdup_printf("file,id=f0,path=%s,append=on", escaped);
    chr = chardev_new_from_opts(opts, &err);
    g_assert_no_error(err);
    g_assert_cmpint(chardev_write(chr, "world", 5), ==, 5);
    chardev_cleanup_all();
    g_assert_true(g_file_get_contents(path, &contents, NULL, NULL));
    g_assert_cmpstr(contents, ==, "hello world");
    g_clear_pointer(&contents, g_free);

    /* Without append the file starts over; the legacy form takes the path as is. */
    g_unlink(path);
    g_free(path);
    path = g_build_filename(dir, "legacy.txt", NULL);
    legacy = g_strdup_printf("file:%s", path);
    g_assert_true(g_file_set_contents(path, "old contents", -1, NULL));
    chr = chardev_new_from_legacy(legacy, "serial0", &err);
    g_assert_no_error(err);
    g_assert_cmpstr(chardev_id(chr), ==, "serial0");
    g_assert_cmpint(chardev_write(chr, "new", 3), ==, 3);
    chardev_cleanup_all();
    g_assert_true(g_file_get_contents(path, &contents, NULL, NULL));
    g_assert_cmpstr(contents, ==, "new");

    g_unlink(path);
    g_rmdir(dir);
}

static int unix_connect(const char *path)
{
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    g_strlcpy(un.sun_path, path, sizeof(un.sun_path));
    g_assert_cmpint(connect(fd, (struct sockaddr *)&un, sizeof(un)), ==, 0);
    return fd;
}

/* Read what is available on @fd into @buf while pumping the loop. */
static void read_until_len(int fd, GString *buf, size_t want)
{
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

    while (buf->len < want) {
        char tmp[65536];
        ssize_t n;

        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_main_context_iteration(NULL, FALSE);
        n = recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT);
        if (n > 0) {
            g_string_append_len(buf, tmp, n);
        } else {
            g_usleep(500);
        }
    }
}

typedef struct WaitCounts {
    TestFrontend *fe;
    int opened;
    int closed;
    const char *rx;
} WaitCounts;

static bool wait_counts(void *opaque)
{
    WaitCounts *w = opaque;

    return w->fe->opened >= w->opened && w->fe->closed >= w->closed &&
           (!w->rx || strstr(w->fe->rx->str, w->rx));
}

static void test_socket_server_one_client(void)
{
    g_autofree char *dir = g_dir_make_tmp("ferry-chr-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "s.sock", NULL);
    g_autofree char *spec = g_strdup_printf("unix:%s,server=on,wait=off", path);
    g_autoptr(GError) err = NULL;
    g_autoptr(GString) got = g_string_new(NULL);
    TestFrontend fe;
    Chardev *chr;
    int c1, c2;

    fe_init(&fe);
    chr = chardev_new_from_legacy(spec, "serial0", &err);
    g_assert_no_error(err);
    g_assert_true(chardev_attach_frontend(chr, &fe_ops, &fe, &err));
    g_assert_cmpint(fe.opened, ==, 0);

    /* Nobody connected: output is dropped, not queued. */
    g_assert_cmpint(chardev_write(chr, "lost", 4), ==, 4);

    c1 = unix_connect(path);
    pump_until(wait_counts, &(WaitCounts){ &fe, 1, 0, NULL });
    g_assert_cmpint(send(c1, "from-one", 8, 0), ==, 8);
    pump_until(wait_counts, &(WaitCounts){ &fe, 1, 0, "from-one" });
    g_assert_cmpint(chardev_write(chr, "to-one", 6), ==, 6);
    read_until_len(c1, got, 6);
    g_assert_cmpstr(got->str, ==, "to-one");

    /* A second client waits in the backlog until the first leaves. */
    c2 = unix_connect(path);
    g_assert_cmpint(send(c2, "from-two", 8, 0), ==, 8);
    pump_for_ms(50);
    g_assert_cmpint(fe.opened, ==, 1);
    g_assert_null(strstr(fe.rx->str, "from-two"));

    close(c1);
    pump_until(wait_counts, &(WaitCounts){ &fe, 2, 1, "from-two" });
    g_string_truncate(got, 0);
    g_assert_cmpint(chardev_write(chr, "to-two", 6), ==, 6);
    read_until_len(c2, got, 6);
    g_assert_cmpstr(got->str, ==, "to-two");

    /* Input held back while the frontend cannot take it. */
    fe.window = 0;
    g_assert_cmpint(send(c2, "held", 4, 0), ==, 4);
    pump_for_ms(30);
    g_assert_null(strstr(fe.rx->str, "held"));
    fe.window = 4096;
    chardev_accept_input(chr);
    pump_until(wait_counts, &(WaitCounts){ &fe, 2, 1, "held" });

    close(c2);
    pump_until(wait_counts, &(WaitCounts){ &fe, 2, 2, NULL });
    g_assert_true(g_file_test(path, G_FILE_TEST_EXISTS));
    chardev_cleanup_all();
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
    fe_fini(&fe);
    g_rmdir(dir);
}

static void test_socket_client(void)
{
    g_autofree char *dir = g_dir_make_tmp("ferry-chr-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "c.sock", NULL);
    g_autofree char *srv_opts = g_strdup_printf("socket,id=srv,path=%s,server,nowait", path);
    g_autofree char *cli_opts = g_strdup_printf("socket,id=cli,path=%s", path);
    g_autoptr(GError) err = NULL;
    TestFrontend srv_fe, cli_fe;
    Chardev *srv, *cli;

    fe_init(&srv_fe);
    fe_init(&cli_fe);
    srv = chardev_new_from_opts(srv_opts, &err);
    g_assert_no_error(err);
    g_assert_true(chardev_attach_frontend(srv, &fe_ops, &srv_fe, &err));
    cli = chardev_new_from_opts(cli_opts, &err);
    g_assert_no_error(err);
    /* A connected client backend reports opened as the frontend attaches. */
    g_assert_true(chardev_attach_frontend(cli, &fe_ops, &cli_fe, &err));
    g_assert_cmpint(cli_fe.opened, ==, 1);
    pump_until(wait_counts, &(WaitCounts){ &srv_fe, 1, 0, NULL });

    g_assert_cmpint(chardev_write(cli, "ping", 4), ==, 4);
    pump_until(wait_counts, &(WaitCounts){ &srv_fe, 1, 0, "ping" });
    g_assert_cmpint(chardev_write(srv, "pong", 4), ==, 4);
    pump_until(wait_counts, &(WaitCounts){ &cli_fe, 1, 0, "pong" });

    chardev_cleanup_all();
    fe_fini(&srv_fe);
    fe_fini(&cli_fe);
    g_rmdir(dir);
}

/* A client that does not read: output queues without loss, then drains. */
static void test_socket_buffered_output(void)
{
    g_autofree char *dir = g_dir_make_tmp("ferry-chr-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "b.sock", NULL);
    g_autofree char *opts = g_strdup_printf("socket,id=b0,path=%s,server=on,wait=off", path);
    g_autoptr(GError) err = NULL;
    g_autoptr(GString) got = g_string_new(NULL);
    g_autoptr(GString) sent = g_string_new(NULL);
    TestFrontend fe;
    Chardev *chr;
    int c;

    fe_init(&fe);
    chr = chardev_new_from_opts(opts, &err);
    g_assert_no_error(err);
    chardev_set_output_limit(chr, 0);
    g_assert_true(chardev_attach_frontend(chr, &fe_ops, &fe, &err));
    c = unix_connect(path);
    pump_until(wait_counts, &(WaitCounts){ &fe, 1, 0, NULL });

    for (int i = 0; i < 40000; i++) {
        char line[64];
        int n = g_snprintf(line, sizeof(line), "line %08d of the buffered output\n", i);
        g_string_append_len(sent, line, n);
        g_assert_cmpint(chardev_write(chr, line, n), ==, n);
    }
    read_until_len(c, got, sent->len);
    g_assert_cmpuint(got->len, ==, sent->len);
    g_assert_true(memcmp(got->str, sent->str, sent->len) == 0);

    close(c);
    chardev_cleanup_all();
    fe_fini(&fe);
    g_rmdir(dir);
}

typedef struct WriterArgs {
    Chardev *chr;
    int count;
} WriterArgs;

static gpointer writer_thread(gpointer opaque)
{
    WriterArgs *a = opaque;

    for (int i = 0; i < a->count; i++) {
        chardev_write(a->chr, "0123456789abcdef", 16);
    }
    return NULL;
}

static void test_socket_threaded_writes(void)
{
    g_autofree char *dir = g_dir_make_tmp("ferry-chr-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "t.sock", NULL);
    g_autofree char *opts = g_strdup_printf("socket,id=t0,path=%s,server=on,wait=off", path);
    g_autoptr(GError) err = NULL;
    g_autoptr(GString) got = g_string_new(NULL);
    TestFrontend fe;
    WriterArgs a1, a2;
    GThread *t1, *t2;
    Chardev *chr;
    int c;

    fe_init(&fe);
    chr = chardev_new_from_opts(opts, &err);
    g_assert_no_error(err);
    chardev_set_output_limit(chr, 0);
    g_assert_true(chardev_attach_frontend(chr, &fe_ops, &fe, &err));
    c = unix_connect(path);
    pump_until(wait_counts, &(WaitCounts){ &fe, 1, 0, NULL });

    a1 = (WriterArgs){ chr, 20000 };
    a2 = (WriterArgs){ chr, 20000 };
    t1 = g_thread_new("w1", writer_thread, &a1);
    t2 = g_thread_new("w2", writer_thread, &a2);
    read_until_len(c, got, 16 * 40000);
    g_thread_join(t1);
    g_thread_join(t2);
    g_assert_cmpuint(got->len, ==, 16 * 40000);
    /* Writes are atomic: every 16-byte record arrives whole. */
    for (size_t off = 0; off < got->len; off += 16) {
        g_assert_true(memcmp(got->str + off, "0123456789abcdef", 16) == 0);
    }

    close(c);
    chardev_cleanup_all();
    fe_fini(&fe);
    g_rmdir(dir);
}

static void test_socket_tcp(void)
{
    g_autoptr(GError) err = NULL;
    TestFrontend srv_fe, cli_fe;
    Chardev *srv, *cli;
    int port = 0;

    fe_init(&srv_fe);
    fe_init(&cli_fe);
    /* Find a port the server can bind. */
    for (port = 47000 + (getpid() % 1000); port < 48500; port++) {
        g_autofree char *spec = g_strdup_printf("tcp:127.0.0.1:%d,server=on,wait=off", port);
        srv = chardev_new_from_legacy(spec, "tcpsrv", &err);
        if (srv) {
            break;
        }
        g_clear_error(&err);
    }
    g_assert_nonnull(srv);
    g_assert_true(chardev_attach_frontend(srv, &fe_ops, &srv_fe, &err));
    {
        g_autofree char *opts = g_strdup_printf("socket,id=tcpcli,host=127.0.0.1,port=%d", port);
        cli = chardev_new_from_opts(opts, &err);
    }
    g_assert_no_error(err);
    g_assert_true(chardev_attach_frontend(cli, &fe_ops, &cli_fe, &err));
    pump_until(wait_counts, &(WaitCounts){ &srv_fe, 1, 0, NULL });
    chardev_write(cli, "over tcp", 8);
    pump_until(wait_counts, &(WaitCounts){ &srv_fe, 1, 0, "over tcp" });
    chardev_cleanup_all();
    fe_fini(&srv_fe);
    fe_fini(&cli_fe);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_main_context_acquire(g_main_context_default());

    g_test_add_func("/chardev/opts-errors", test_opts_errors);
    g_test_add_func("/chardev/null", test_null);
    g_test_add_func("/chardev/file", test_file);
    g_test_add_func("/chardev/socket/server-one-client", test_socket_server_one_client);
    g_test_add_func("/chardev/socket/client", test_socket_client);
    g_test_add_func("/chardev/socket/buffered-output", test_socket_buffered_output);
    g_test_add_func("/chardev/socket/threaded-writes", test_socket_threaded_writes);
    g_test_add_func("/chardev/socket/tcp", test_socket_tcp);
    return g_test_run();
}
