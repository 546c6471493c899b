/*
 * Character devices from the command line as users write them: -serial
 * file:, -chardev file + -serial chardev:, -serial stdio, -mon on a
 * -chardev socket in both modes, and -qtest-log.
 */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libferry.h"

typedef struct Spawned {
    GPid pid;
    int out_fd;
    GString *out;
} Spawned;

/* Start the binary with @args (split like a shell), stdout captured. */
static Spawned *spawn_ferry(const char *args)
{
    g_auto(GStrv) argv = NULL;
    g_autofree char *cmd = g_strdup_printf("'%s' %s", ferry_binary(), args);
    Spawned *s = g_new0(Spawned, 1);
    g_autoptr(GError) err = NULL;

    g_assert_true(g_shell_parse_argv(cmd, NULL, &argv, NULL));
    g_assert_true(g_spawn_async_with_pipes(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL,
                                           NULL, &s->pid, NULL, &s->out_fd, NULL, &err));
    s->out = g_string_new(NULL);
    return s;
}

static void spawned_stop(Spawned *s)
{
    int status;
    kill(s->pid, SIGTERM);
    waitpid(s->pid, &status, 0);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
    close(s->out_fd);
    g_string_free(s->out, TRUE);
    g_spawn_close_pid(s->pid);
    g_free(s);
}

typedef struct FileWait {
    const char *path;
    const char *needle;
} FileWait;

static bool file_contains(void *opaque)
{
    FileWait *w = opaque;
    g_autofree gchar *text = NULL;
    return g_file_get_contents(w->path, &text, NULL, NULL) && strstr(text, w->needle);
}

static bool stdout_contains(void *opaque)
{
    Spawned *s = ((void **)opaque)[0];
    const char *needle = ((void **)opaque)[1];
    char buf[4096];
    GPollFD p = { .fd = s->out_fd, .events = G_IO_IN };
    while (g_poll(&p, 1, 0) > 0) {
        ssize_t n = read(s->out_fd, buf, sizeof(buf));
        if (n <= 0) {
            break;
        }
        g_string_append_len(s->out, buf, n);
    }
    return strstr(s->out->str, needle) != NULL;
}

static void test_serial_file(void)
{
    FERRY_REQUIRE_ACCEL();
    FERRY_REQUIRE_GUEST(img, "bootsect");
    g_autofree char *f1 = g_build_filename(ferry_tmp_dir(), "serial1.log", NULL);
    g_autofree char *f2 = g_build_filename(ferry_tmp_dir(), "serial2.log", NULL);

    g_autofree char *a1 = g_strdup_printf("-nodefaults -display none -m 128 -serial file:%s "
                                          "-drive file=%s,format=raw", f1, img);
    Spawned *s1 = spawn_ferry(a1);
    FileWait w1 = { f1, "ABB" };
    g_assert_true(ferry_wait_until(file_contains, &w1, 30000));
    spawned_stop(s1);

    g_autofree char *a2 = g_strdup_printf("-nodefaults -display none -m 128 "
                                          "-chardev file,id=con0,path=%s -serial chardev:con0 "
                                          "-drive file=%s,format=raw", f2, img);
    Spawned *s2 = spawn_ferry(a2);
    FileWait w2 = { f2, "ABB" };
    g_assert_true(ferry_wait_until(file_contains, &w2, 30000));
    spawned_stop(s2);
}

static void test_serial_stdio(void)
{
    FERRY_REQUIRE_ACCEL();
    FERRY_REQUIRE_GUEST(img, "bootsect");
    g_autofree char *args = g_strdup_printf("-nodefaults -display none -m 128 -serial stdio "
                                            "-drive file=%s,format=raw", img);
    Spawned *s = spawn_ferry(args);
    void *ctx[2] = { s, "ABB" };
    g_assert_true(ferry_wait_until(stdout_contains, ctx, 30000));
    spawned_stop(s);

    /* -nographic puts the serial port on stdio by itself. */
    g_autofree char *args2 = g_strdup_printf("-nographic -m 128 -drive file=%s,format=raw", img);
    s = spawn_ferry(args2);
    ctx[0] = s;
    g_assert_true(ferry_wait_until(stdout_contains, ctx, 30000));
    spawned_stop(s);
}

/* Send @input to a unix socket with socat and return what came back. */
static char *run_socat(const char *input, const char *path)
{
    g_autofree char *in_path = g_build_filename(ferry_tmp_dir(), "socat-input", NULL);
    g_assert_true(g_file_set_contents(in_path, input, -1, NULL));
    g_autofree char *cmd = g_strdup_printf("sh -c 'socat -t2 - UNIX-CONNECT:%s < %s'", path,
                                           in_path);
    char *out = NULL;
    gint status;
    g_assert_true(g_spawn_command_line_sync(cmd, &out, NULL, &status, NULL));
    g_assert_true(g_spawn_check_wait_status(status, NULL));
    return out;
}

/* -mon on -chardev sockets: QMP in control mode, HMP in readline mode. */
static void test_mon_chardev(void)
{
    FERRY_REQUIRE_ACCEL();
    FERRY_REQUIRE_GUEST(img, "bootsect");
    g_autofree char *qsock = g_build_filename(ferry_tmp_dir(), "mon-qmp.sock", NULL);
    g_autofree char *hsock = g_build_filename(ferry_tmp_dir(), "mon-hmp.sock", NULL);
    FerryVM *vm = ferry_vm_start("-m 128 -drive file=%s,format=raw "
                                 "-chardev socket,id=mq,path=%s,server=on,wait=off "
                                 "-mon chardev=mq,mode=control "
                                 "-chardev socket,id=mh,path=%s,server=on,wait=off "
                                 "-mon chardev=mh,mode=readline", img, qsock, hsock);
    ferry_serial_wait_marker(vm, "A", 30000);

    g_autofree char *q = run_socat("{\"execute\":\"qmp_capabilities\"}\n"
                                   "{\"execute\":\"query-status\"}\n", qsock);
    g_assert_nonnull(strstr(q, "\"QMP\""));
    g_assert_nonnull(strstr(q, "\"status\": \"running\""));

    g_autofree char *h = run_socat("info status\n", hsock);
    g_assert_nonnull(strstr(h, "VM status: running"));
    g_assert_cmpint(ferry_vm_quit(vm), ==, 0);
}

static void test_qtest_log(void)
{
    FERRY_REQUIRE_ACCEL();
    g_autofree char *log = g_build_filename(ferry_tmp_dir(), "qtest.log", NULL);
    FerryVM *vm = ferry_vm_start("-S -m 64 -accel qtest -qtest-log %s", log);
    g_autofree char *reply = ferry_qtest(vm, "endianness");
    g_assert_cmpstr(reply, ==, "little");  /* the harness strips "OK " */
    ferry_writel(vm, 0x10000, 0xdeadbeef);
    g_assert_cmphex(ferry_readl(vm, 0x10000), ==, 0xdeadbeef);
    g_assert_cmpint(ferry_vm_quit(vm), ==, 0);

    g_autofree gchar *text = NULL;
    g_assert_true(g_file_get_contents(log, &text, NULL, NULL));
    g_assert_nonnull(strstr(text, "] endianness"));
    g_assert_nonnull(strstr(text, "] writel 0x10000 0xdeadbeef"));
    g_assert_nonnull(strstr(text, "] OK 0xdeadbeef"));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/chardev/serial-file", test_serial_file);
    g_test_add_func("/chardev/serial-stdio", test_serial_stdio);
    g_test_add_func("/chardev/mon-chardev", test_mon_chardev);
    g_test_add_func("/chardev/qtest-log", test_qtest_log);
    return g_test_run();
}
