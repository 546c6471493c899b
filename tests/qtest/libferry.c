/*
 * The test harness: VM processes, QMP client, qtest client, serial capture,
 * and the cleanup that removes all of them however a test ends.
 */
#define G_LOG_DOMAIN "ferry-test"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "libferry.h"

#define START_TIMEOUT_MS    30000
#define QUIT_TIMEOUT_MS     10000
#define QMP_TIMEOUT_MS      30000
#define QTEST_TIMEOUT_MS    30000
#define POLL_SLICE_MS       10
#define QTEST_CHUNK         65536
#define DUMP_SERIAL_TAIL    2048
#define DUMP_LOG_TAIL       4096

typedef enum SerialMode {
    SERIAL_SOCKET,
    SERIAL_FILE,
} SerialMode;

struct FerryVM {
    unsigned id;
    char *dir;
    char *qmp_path;
    char *qtest_path;
    char *serial_path;
    char *log_path;

    GPid pid;
    bool exited;
    int wait_status;

    int qmp_fd;
    GString *qmp_rx;
    bool qmp_eof;
    GQueue events;              /* JsonNode *, oldest first */

    int qtest_fd;
    GString *qtest_rx;

    SerialMode serial_mode;
    int serial_fd;
    GThread *serial_thread;
    GMutex serial_lock;
    GCond serial_cond;
    GString *serial;            /* all output; under serial_lock */
    size_t serial_mark;         /* under serial_lock */
    bool serial_eof;            /* under serial_lock */
    volatile bool serial_stop;
};

/* ---- process-wide state and cleanup ---- */

static GMutex registry_lock;
static GPtrArray *live_vms;     /* FerryVM *; read without the lock by the
                                 * signal handler */
static char *tmp_root;
static unsigned next_vm_id;
static unsigned next_run_id;
static volatile sig_atomic_t already_dumped;

static bool env_flag(const char *name)
{
    const char *v = g_getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

static bool verbose(void)
{
    return env_flag("FERRY_TEST_VERBOSE");
}

static int remove_one(const char *path, const struct stat *sb, int type,
                      struct FTW *ftw)
{
    remove(path);
    return 0;
}

static void remove_tree(const char *path)
{
    if (path && !env_flag("FERRY_TEST_KEEP")) {
        nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    }
}

static void write_all_fd(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return;
        }
        buf += n;
        len -= n;
    }
}

static void write_str_fd(int fd, const char *s)
{
    write_all_fd(fd, s, strlen(s));
}

/* Async-signal-safe enough for a dying process: no locks, no allocation. */
static void dump_vm_raw(FerryVM *vm)
{
    char buf[DUMP_LOG_TAIL];
    int fd;

    write_str_fd(2, "\n==== serial (tail) ====\n");
    if (vm->serial) {
        size_t len = vm->serial->len;
        size_t from = len > DUMP_SERIAL_TAIL ? len - DUMP_SERIAL_TAIL : 0;
        write_all_fd(2, vm->serial->str + from, len - from);
    }
    write_str_fd(2, "\n==== VMM log (tail) ====\n");
    fd = open(vm->log_path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        off_t size = lseek(fd, 0, SEEK_END);
        ssize_t n;
        if (size > (off_t)sizeof(buf)) {
            lseek(fd, size - (off_t)sizeof(buf), SEEK_SET);
        } else {
            lseek(fd, 0, SEEK_SET);
        }
        n = read(fd, buf, sizeof(buf));
        if (n > 0) {
            write_all_fd(2, buf, n);
        }
        close(fd);
    }
    write_str_fd(2, "==== end ====\n");
}

static void emergency_cleanup(bool dump)
{
    if (live_vms) {
        for (guint i = 0; i < live_vms->len; i++) {
            FerryVM *vm = g_ptr_array_index(live_vms, i);
            if (vm->pid > 0 && !vm->exited) {
                kill(vm->pid, SIGKILL);
            }
            if (dump) {
                dump_vm_raw(vm);
            }
        }
    }
    remove_tree(tmp_root);
}

static void fatal_signal_handler(int sig)
{
    emergency_cleanup(!already_dumped);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void exit_cleanup(void)
{
    GPtrArray *vms;

    g_mutex_lock(&registry_lock);
    vms = live_vms ? g_ptr_array_copy(live_vms, NULL, NULL) : NULL;
    g_mutex_unlock(&registry_lock);
    if (vms) {
        for (guint i = 0; i < vms->len; i++) {
            ferry_vm_free(g_ptr_array_index(vms, i));
        }
        g_ptr_array_unref(vms);
    }
    remove_tree(tmp_root);
}

static void harness_init(void)
{
    static gsize done;

    if (g_once_init_enter(&done)) {
        static const int sigs[] = {
            SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP,
            SIGTERM, SIGINT, SIGHUP,
        };
        g_autoptr(GError) err = NULL;
        struct sigaction sa = { 0 };

        tmp_root = g_dir_make_tmp("ferry-test-XXXXXX", &err);
        /* Keep unix socket paths well inside sun_path. */
        if (tmp_root && strlen(tmp_root) > 60) {
            remove_tree(tmp_root);
            g_free(tmp_root);
            tmp_root = g_strdup("/tmp/ferry-test-XXXXXX");
            if (!g_mkdtemp(tmp_root)) {
                g_clear_pointer(&tmp_root, g_free);
            }
        }
        if (!tmp_root) {
            g_error("cannot create a temporary directory: %s",
                    err ? err->message : g_strerror(errno));
        }
        live_vms = g_ptr_array_new();

        sa.sa_handler = fatal_signal_handler;
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < G_N_ELEMENTS(sigs); i++) {
            sigaction(sigs[i], &sa, NULL);
        }
        signal(SIGPIPE, SIG_IGN);
        atexit(exit_cleanup);
        g_once_init_leave(&done, 1);
    }
}

const char *ferry_tmp_dir(void)
{
    harness_init();
    return tmp_root;
}

/* ---- failing ---- */

static void fail_at(FerryVM *vm, const char *file, int line, const char *func,
                    const char *fmt, ...) G_GNUC_PRINTF(5, 6);

#define fail(vm, ...) fail_at(vm, __FILE__, __LINE__, G_STRFUNC, __VA_ARGS__)

static void fail_at(FerryVM *vm, const char *file, int line, const char *func,
                    const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_printerr("ferry-test: %s\n", msg);
    if (vm) {
        ferry_vm_dump(vm);
        already_dumped = 1;
    }
    g_assertion_message(G_LOG_DOMAIN, file, line, func, msg);
}

/* ---- environment, time ---- */

bool ferry_kvm_available(char **why)
{
    struct stat st;

    if (stat("/dev/kvm", &st) == 0 && !S_ISCHR(st.st_mode)) {
        if (why) {
            *why = g_strdup("KVM not available: /dev/kvm is not a character device");
        }
        return false;
    }
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        if (why) {
            *why = g_strdup_printf("KVM not available: /dev/kvm: %s",
                                   g_strerror(errno));
        }
        return false;
    }
    close(fd);
    return true;
}

const char *ferry_test_accel(void)
{
    const char *env = g_getenv("FERRY_TEST_ACCEL");

    if (env && *env) {
        return env;
    }
    return ferry_kvm_available(NULL) ? "kvm" : "tcg";
}

bool ferry_accel_available(char **why)
{
    const char *accel = ferry_test_accel();

    if (strcmp(accel, "kvm") == 0) {
        return ferry_kvm_available(why);
    }
    if (strcmp(accel, "tcg") == 0) {
#if FERRY_TCG_RUNS_GUESTS
        return true;
#else
        if (why) {
            *why = g_strdup("tcg: the software CPU does not run guests in this build yet");
        }
        return false;
#endif
    }
    if (why) {
        *why = g_strdup_printf("FERRY_TEST_ACCEL=%s: not an accelerator that runs guests "
                               "(kvm, tcg)", accel);
    }
    return false;
}

const char *ferry_binary(void)
{
    const char *b = g_getenv("FERRY_BINARY");

    if (b && *b) {
        return b;
    }
#ifdef FERRY_DEFAULT_BINARY
    return FERRY_DEFAULT_BINARY;
#else
    return "ferry-system-x86_64";
#endif
}

const char *ferry_guest_path(const char *name)
{
    g_autofree char *up = g_ascii_strup(name, -1);
    g_autofree char *var = g_strconcat("FERRY_GUEST_", up, NULL);
    const char *path = g_getenv(var);

    if (!path || !*path) {
        path = NULL;
#ifdef FERRY_GUEST_BOOTSECT_DEFAULT
        if (strcmp(name, "bootsect") == 0) {
            path = FERRY_GUEST_BOOTSECT_DEFAULT;
        }
#endif
#ifdef FERRY_GUEST_KERNEL_DEFAULT
        if (strcmp(name, "kernel") == 0) {
            path = FERRY_GUEST_KERNEL_DEFAULT;
        }
#endif
    }
    if (!path || !g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
        return NULL;
    }
    return g_intern_string(path);
}

int ferry_timeout(int timeout_ms)
{
    const char *s = g_getenv("FERRY_TIMEOUT_SCALE");
    double scale = s ? g_ascii_strtod(s, NULL) : 1.0;

    if (scale <= 0) {
        scale = 1.0;
    }
    return (int)(timeout_ms * scale);
}

static gint64 deadline_after(int timeout_ms)
{
    return g_get_monotonic_time() + (gint64)ferry_timeout(timeout_ms) * 1000;
}

/* Milliseconds left until DEADLINE, at least 0, at most CAP (if > 0). */
static int ms_left(gint64 deadline, int cap)
{
    gint64 left = (deadline - g_get_monotonic_time() + 999) / 1000;

    if (left < 0) {
        left = 0;
    }
    if (cap > 0 && left > cap) {
        left = cap;
    }
    return (int)left;
}

bool ferry_wait_until(FerryCondFn cond, void *data, int timeout_ms)
{
    gint64 deadline = deadline_after(timeout_ms);

    for (;;) {
        if (cond(data)) {
            return true;
        }
        if (g_get_monotonic_time() >= deadline) {
            return cond(data);
        }
        g_usleep((gulong)ms_left(deadline, POLL_SLICE_MS) * 1000);
    }
}

/* 1 when FD is readable (or at EOF/error), 0 at DEADLINE. */
static int wait_readable(int fd, gint64 deadline)
{
    for (;;) {
        GPollFD pfd = { .fd = fd, .events = G_IO_IN | G_IO_HUP | G_IO_ERR };
        int r = g_poll(&pfd, 1, ms_left(deadline, 0));
        if (r > 0) {
            return 1;
        }
        if (r == 0) {
            return 0;
        }
        if (errno != EINTR) {
            return 1;
        }
    }
}

static bool send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        buf += n;
        len -= n;
    }
    return true;
}

/* Read what is available into RX; false at end of stream. */
static bool recv_some(int fd, GString *rx)
{
    char buf[65536];

    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        g_string_append_len(rx, buf, n);
        return true;
    }
}

/* ---- sockets ---- */

static int unix_listen(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    g_assert(strlen(path) < sizeof(sa.sun_path));
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert(fd >= 0);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
        g_error("listen on %s: %s", path, g_strerror(errno));
    }
    return fd;
}

static int unix_connect(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    g_assert(strlen(path) < sizeof(sa.sun_path));
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert(fd >= 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- child processes ---- */

typedef struct ChildIO {
    const char *in_path;
    const char *out_path;
    const char *err_path;   /* may equal out_path */
} ChildIO;

static void redirect(const char *path, int flags, int target)
{
    int fd = open(path, flags, 0600);

    if (fd >= 0 && fd != target) {
        dup2(fd, target);
        close(fd);
    }
}

/* Runs in the child between fork and exec. */
static void child_setup(gpointer opaque)
{
    ChildIO *io = opaque;

    /* Never outlive the test, however it ends. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    redirect(io->in_path, O_RDONLY, 0);
    redirect(io->out_path, O_WRONLY | O_CREAT | O_APPEND, 1);
    if (io->err_path == io->out_path) {
        dup2(1, 2);
    } else {
        redirect(io->err_path, O_WRONLY | O_CREAT | O_APPEND, 2);
    }
}

static GPid spawn(char **argv, ChildIO *io, GError **errp)
{
    GPid pid = 0;

    if (!g_spawn_async(NULL, argv, NULL,
                       G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_SEARCH_PATH,
                       child_setup, io, &pid, errp)) {
        return 0;
    }
    return pid;
}

static char *argv_to_string(char **argv)
{
    GString *s = g_string_new(NULL);

    for (char **a = argv; *a; a++) {
        g_autofree char *q = g_shell_quote(*a);
        if (s->len) {
            g_string_append_c(s, ' ');
        }
        g_string_append(s, strchr(*a, ' ') || strchr(*a, '\'') ? q : *a);
    }
    return g_string_free(s, FALSE);
}

static void append_shell_args(GPtrArray *argv, const char *args,
                              const char *what)
{
    g_auto(GStrv) split = NULL;
    g_autoptr(GError) err = NULL;

    if (!args || !*args || strspn(args, " \t\n") == strlen(args)) {
        return;
    }
    if (!g_shell_parse_argv(args, NULL, &split, &err)) {
        g_error("cannot split %s '%s': %s", what, args, err->message);
    }
    for (char **a = split; *a; a++) {
        g_ptr_array_add(argv, g_strdup(*a));
    }
}

FerryRunResult *ferry_run_argv(int timeout_ms, const char *const *args)
{
    FerryRunResult *r = g_new0(FerryRunResult, 1);
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = NULL;
    g_autofree char *out_path = NULL;
    g_autofree char *err_path = NULL;
    g_autofree char *cmd = NULL;
    ChildIO io;
    gint64 deadline;
    int status = 0;
    GPid pid;

    harness_init();
    dir = g_strdup_printf("%s/run%u", tmp_root,
                          g_atomic_int_add(&next_run_id, 1));
    if (mkdir(dir, 0700) < 0) {
        g_error("mkdir %s: %s", dir, g_strerror(errno));
    }
    out_path = g_build_filename(dir, "stdout", NULL);
    err_path = g_build_filename(dir, "stderr", NULL);
    io = (ChildIO){ "/dev/null", out_path, err_path };

    g_ptr_array_add(argv, g_strdup(ferry_binary()));
    for (const char *const *a = args; a && *a; a++) {
        g_ptr_array_add(argv, g_strdup(*a));
    }
    g_ptr_array_add(argv, NULL);
    cmd = argv_to_string((char **)argv->pdata);
    g_test_message("run: %s", cmd);

    pid = spawn((char **)argv->pdata, &io, &err);
    if (!pid) {
        fail(NULL, "cannot run %s: %s", cmd, err->message);
        r->exit_code = -1;
        return r;
    }

    deadline = deadline_after(timeout_ms);
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid || (w < 0 && errno != EINTR)) {
            break;
        }
        if (g_get_monotonic_time() >= deadline) {
            r->timed_out = true;
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            break;
        }
        g_usleep((gulong)ms_left(deadline, POLL_SLICE_MS) * 1000);
    }
    if (WIFEXITED(status)) {
        r->exit_code = WEXITSTATUS(status);
    } else {
        r->exit_code = -1;
        r->term_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    }
    if (!g_file_get_contents(out_path, &r->out, NULL, NULL)) {
        r->out = g_strdup("");
    }
    if (!g_file_get_contents(err_path, &r->err, NULL, NULL)) {
        r->err = g_strdup("");
    }
    remove_tree(dir);
    if (verbose()) {
        g_test_message("exit %d signal %d%s\nstdout: %s\nstderr: %s",
                       r->exit_code, r->term_signal,
                       r->timed_out ? " (timed out)" : "", r->out, r->err);
    }
    return r;
}

FerryRunResult *ferry_run(int timeout_ms, const char *args_fmt, ...)
{
    g_autofree char *args = NULL;
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    va_list ap;

    va_start(ap, args_fmt);
    args = g_strdup_vprintf(args_fmt, ap);
    va_end(ap);
    append_shell_args(argv, args, "arguments");
    g_ptr_array_add(argv, NULL);
    return ferry_run_argv(timeout_ms, (const char *const *)argv->pdata);
}

void ferry_run_result_free(FerryRunResult *r)
{
    if (r) {
        g_free(r->out);
        g_free(r->err);
        g_free(r);
    }
}

/* ---- VM process state ---- */

static void vm_reap(FerryVM *vm, bool block)
{
    int status;
    pid_t w;

    if (vm->exited || vm->pid <= 0) {
        return;
    }
    do {
        w = waitpid(vm->pid, &status, block ? 0 : WNOHANG);
    } while (w < 0 && errno == EINTR);
    if (w == vm->pid) {
        vm->exited = true;
        vm->wait_status = status;
    } else if (w < 0) {
        /* Not our child any more: treat as gone. */
        vm->exited = true;
        vm->wait_status = 0;
    }
}

bool ferry_vm_is_running(FerryVM *vm)
{
    vm_reap(vm, false);
    return !vm->exited;
}

pid_t ferry_vm_pid(FerryVM *vm)
{
    return vm->pid;
}

const char *ferry_vm_dir(FerryVM *vm)
{
    return vm->dir;
}

char *ferry_vm_log(FerryVM *vm)
{
    char *text = NULL;

    if (!g_file_get_contents(vm->log_path, &text, NULL, NULL)) {
        text = g_strdup("");
    }
    return text;
}

static int exit_status_code(int status)
{
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    if (WIFSIGNALED(status)) {
        return 128 + WTERMSIG(status);
    }
    return -1;
}

static bool vm_exited_cond(void *opaque)
{
    return !ferry_vm_is_running(opaque);
}

int ferry_vm_wait_exit(FerryVM *vm, int timeout_ms)
{
    if (!ferry_wait_until(vm_exited_cond, vm, timeout_ms)) {
        g_test_message("VM %u (pid %d) still running after %d ms",
                       vm->id, vm->pid, ferry_timeout(timeout_ms));
        return -1;
    }
    return exit_status_code(vm->wait_status);
}

static void vm_fail_if_dead(FerryVM *vm, const char *doing)
{
    if (!ferry_vm_is_running(vm)) {
        fail(vm, "VM %u exited (status %d) while %s", vm->id,
             exit_status_code(vm->wait_status), doing);
    }
}

/*
 * Why a QMP wait of TIMEOUT_MS ended empty: the timeout, or the connection
 * closing (and then the exit status, once the process has had a moment).
 */
static char *vm_why_closed(FerryVM *vm, int timeout_ms)
{
    if (!vm->qmp_eof) {
        return g_strdup_printf("within %d ms", ferry_timeout(timeout_ms));
    }
    if (ferry_vm_wait_exit(vm, 2000) < 0) {
        return g_strdup("(QMP connection closed)");
    }
    return g_strdup_printf("(QMP connection closed, VMM exited with "
                           "status %d)", exit_status_code(vm->wait_status));
}

void ferry_vm_dump(FerryVM *vm)
{
    g_autofree char *log = ferry_vm_log(vm);
    size_t loglen = strlen(log);
    g_autofree char *serial = NULL;
    size_t len;

    g_mutex_lock(&vm->serial_lock);
    len = vm->serial->len;
    serial = g_strndup(vm->serial->str +
                       (len > DUMP_SERIAL_TAIL ? len - DUMP_SERIAL_TAIL : 0),
                       DUMP_SERIAL_TAIL);
    g_mutex_unlock(&vm->serial_lock);
    for (char *p = serial; *p; p++) {
        if (!g_ascii_isprint(*p) && *p != '\n' && *p != '\t') {
            *p = '.';
        }
    }
    g_printerr("\n==== VM %u serial (last %d bytes) ====\n%s\n"
               "==== VM %u log (%s) ====\n%s\n==== end ====\n",
               vm->id, DUMP_SERIAL_TAIL, serial, vm->id, ferry_binary(),
               log + (loglen > DUMP_LOG_TAIL ? loglen - DUMP_LOG_TAIL : 0));
}

/* ---- serial capture ---- */

static void serial_append(FerryVM *vm, const char *buf, size_t len)
{
    g_mutex_lock(&vm->serial_lock);
    g_string_append_len(vm->serial, buf, len);
    g_cond_broadcast(&vm->serial_cond);
    g_mutex_unlock(&vm->serial_lock);
}

static gpointer serial_thread_fn(gpointer opaque)
{
    FerryVM *vm = opaque;
    char buf[4096];

    while (!vm->serial_stop) {
        ssize_t n = read(vm->serial_fd, buf, sizeof(buf));
        if (n > 0) {
            serial_append(vm, buf, n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n == 0 && vm->serial_mode == SERIAL_FILE) {
            /* A file has no end while the VMM may still write: tail it. */
            g_usleep(POLL_SLICE_MS * 1000);
        } else {
            break;
        }
    }
    g_mutex_lock(&vm->serial_lock);
    vm->serial_eof = true;
    g_cond_broadcast(&vm->serial_cond);
    g_mutex_unlock(&vm->serial_lock);
    return NULL;
}

static void serial_start(FerryVM *vm)
{
    g_autofree char *name = g_strdup_printf("serial-vm%u", vm->id);
    vm->serial_thread = g_thread_new(name, serial_thread_fn, vm);
}

static void serial_stop(FerryVM *vm)
{
    if (!vm->serial_thread) {
        return;
    }
    vm->serial_stop = true;
    if (vm->serial_mode == SERIAL_SOCKET) {
        shutdown(vm->serial_fd, SHUT_RDWR);
    }
    g_thread_join(vm->serial_thread);
    vm->serial_thread = NULL;
}

void ferry_serial_write(FerryVM *vm, const char *text)
{
    g_assert(vm->serial_mode == SERIAL_SOCKET && vm->serial_fd >= 0);
    write_all_fd(vm->serial_fd, text, strlen(text));
}

bool ferry_serial_contains(FerryVM *vm, const char *needle)
{
    g_mutex_lock(&vm->serial_lock);
    bool found = strstr(vm->serial->str, needle) != NULL;
    g_mutex_unlock(&vm->serial_lock);
    return found;
}

char *ferry_serial_text(FerryVM *vm)
{
    char *text;

    g_mutex_lock(&vm->serial_lock);
    text = g_strndup(vm->serial->str, vm->serial->len);
    g_mutex_unlock(&vm->serial_lock);
    return text;
}

size_t ferry_serial_mark(FerryVM *vm)
{
    size_t mark;

    g_mutex_lock(&vm->serial_lock);
    mark = vm->serial_mark = vm->serial->len;
    g_mutex_unlock(&vm->serial_lock);
    return mark;
}

static unsigned count_locked(FerryVM *vm, const char *needle)
{
    size_t nlen = strlen(needle);
    const char *p = vm->serial->str;
    const char *end = p + vm->serial->len;
    unsigned count = 0;

    if (nlen == 0) {
        return 0;
    }
    while ((p = memmem(p, end - p, needle, nlen)) != NULL) {
        count++;
        p += nlen;
    }
    return count;
}

unsigned ferry_serial_count(FerryVM *vm, const char *needle)
{
    unsigned count;

    g_mutex_lock(&vm->serial_lock);
    count = count_locked(vm, needle);
    g_mutex_unlock(&vm->serial_lock);
    return count;
}

/*
 * Look for NEEDLE after the mark. With WHOLE_LINE, also require the end of
 * its line and return the line; otherwise return "". NULL: not there yet.
 */
static char *serial_match_locked(FerryVM *vm, const char *needle,
                                 bool whole_line)
{
    const char *buf = vm->serial->str;
    size_t len = vm->serial->len;
    size_t nlen = strlen(needle);
    const char *hit, *start, *eol;

    if (vm->serial_mark > len) {
        vm->serial_mark = len;
    }
    hit = memmem(buf + vm->serial_mark, len - vm->serial_mark, needle, nlen);
    if (!hit) {
        return NULL;
    }
    if (!whole_line) {
        vm->serial_mark = hit + nlen - buf;
        return g_strdup("");
    }
    eol = memchr(hit + nlen, '\n', buf + len - (hit + nlen));
    if (nlen > 0 && needle[nlen - 1] == '\n') {
        eol = hit + nlen - 1;
    }
    if (!eol) {
        return NULL;
    }
    start = hit;
    while (start > buf && start[-1] != '\n') {
        start--;
    }
    vm->serial_mark = eol + 1 - buf;
    while (eol > start && eol[-1] == '\r') {
        eol--;
    }
    return g_strndup(start, eol - start);
}

static char *serial_wait(FerryVM *vm, const char *needle, bool whole_line,
                         int timeout_ms)
{
    gint64 deadline = deadline_after(timeout_ms);
    char *res;

    g_mutex_lock(&vm->serial_lock);
    for (;;) {
        res = serial_match_locked(vm, needle, whole_line);
        if (res || vm->serial_eof) {
            break;
        }
        if (!g_cond_wait_until(&vm->serial_cond, &vm->serial_lock, deadline)) {
            res = serial_match_locked(vm, needle, whole_line);
            break;
        }
    }
    g_mutex_unlock(&vm->serial_lock);
    if (verbose() && res) {
        g_test_message("serial VM %u: '%s'", vm->id, whole_line ? res : needle);
    }
    return res;
}

char *ferry_serial_try_wait(FerryVM *vm, const char *needle, int timeout_ms)
{
    return serial_wait(vm, needle, true, timeout_ms);
}

char *ferry_serial_wait(FerryVM *vm, const char *needle, int timeout_ms)
{
    char *line = serial_wait(vm, needle, true, timeout_ms);

    if (!line) {
        fail(vm, "VM %u: no line with '%s' on serial within %d ms%s", vm->id,
             needle, ferry_timeout(timeout_ms),
             vm->serial_eof ? " (serial closed)" : "");
    }
    return line;
}

void ferry_serial_wait_marker(FerryVM *vm, const char *needle, int timeout_ms)
{
    g_autofree char *res = serial_wait(vm, needle, false, timeout_ms);

    if (!res) {
        fail(vm, "VM %u: no '%s' on serial within %d ms%s", vm->id, needle,
             ferry_timeout(timeout_ms),
             vm->serial_eof ? " (serial closed)" : "");
    }
}

void ferry_serial_wait_count(FerryVM *vm, const char *needle, unsigned count,
                             int timeout_ms)
{
    gint64 deadline = deadline_after(timeout_ms);
    unsigned seen;

    g_mutex_lock(&vm->serial_lock);
    for (;;) {
        seen = count_locked(vm, needle);
        if (seen >= count || vm->serial_eof) {
            break;
        }
        if (!g_cond_wait_until(&vm->serial_cond, &vm->serial_lock, deadline)) {
            seen = count_locked(vm, needle);
            break;
        }
    }
    g_mutex_unlock(&vm->serial_lock);
    if (seen < count) {
        fail(vm, "VM %u: %u of %u '%s' on serial within %d ms", vm->id, seen,
             count, needle, ferry_timeout(timeout_ms));
    }
}

/* ---- JSON ---- */

/*
 * Turn QEMU-test style JSON (strings in single quotes) into standard JSON.
 * Double-quoted strings pass through untouched.
 */
static char *json_normalize(const char *in)
{
    GString *out = g_string_sized_new(strlen(in) + 16);

    for (const char *p = in; *p; p++) {
        if (*p == '"') {
            g_string_append_c(out, *p);
            for (p++; *p && *p != '"'; p++) {
                g_string_append_c(out, *p);
                if (*p == '\\' && p[1]) {
                    g_string_append_c(out, *++p);
                }
            }
            if (!*p) {
                break;
            }
            g_string_append_c(out, '"');
        } else if (*p == '\'') {
            g_string_append_c(out, '"');
            for (p++; *p && *p != '\''; p++) {
                if (*p == '\\' && p[1] == '\'') {
                    g_string_append_c(out, *++p);
                } else if (*p == '\\' && p[1]) {
                    g_string_append_c(out, *p);
                    g_string_append_c(out, *++p);
                } else if (*p == '"') {
                    g_string_append(out, "\\\"");
                } else {
                    g_string_append_c(out, *p);
                }
            }
            if (!*p) {
                break;
            }
            g_string_append_c(out, '"');
        } else {
            g_string_append_c(out, *p);
        }
    }
    return g_string_free(out, FALSE);
}

static JsonNode *json_parse(const char *text, size_t len, GError **errp)
{
    g_autoptr(JsonParser) parser = json_parser_new();

    if (!json_parser_load_from_data(parser, text, len, errp)) {
        return NULL;
    }
    if (!json_parser_get_root(parser)) {
        g_set_error(errp, JSON_PARSER_ERROR, JSON_PARSER_ERROR_PARSE,
                    "empty document");
        return NULL;
    }
    return json_node_copy(json_parser_get_root(parser));
}

char *ferry_json_to_string(JsonNode *node)
{
    g_autoptr(JsonGenerator) gen = json_generator_new();

    if (!node) {
        return g_strdup("(null)");
    }
    json_generator_set_root(gen, node);
    return json_generator_to_data(gen, NULL);
}

JsonNode *ferry_json_get(JsonNode *root, const char *path)
{
    g_auto(GStrv) parts = g_strsplit(path, ".", -1);
    JsonNode *node = root;

    for (char **p = parts; node && *p; p++) {
        if (JSON_NODE_HOLDS_OBJECT(node)) {
            JsonObject *obj = json_node_get_object(node);
            node = json_object_has_member(obj, *p)
                   ? json_object_get_member(obj, *p) : NULL;
        } else if (JSON_NODE_HOLDS_ARRAY(node) && g_ascii_isdigit(**p)) {
            JsonArray *arr = json_node_get_array(node);
            guint64 idx = g_ascii_strtoull(*p, NULL, 10);
            node = idx < json_array_get_length(arr)
                   ? json_array_get_element(arr, idx) : NULL;
        } else {
            node = NULL;
        }
    }
    return node;
}

bool ferry_json_has(JsonNode *root, const char *path)
{
    return ferry_json_get(root, path) != NULL;
}

static JsonNode *json_get_value(JsonNode *root, const char *path, GType type)
{
    JsonNode *node = ferry_json_get(root, path);

    if (!node || !JSON_NODE_HOLDS_VALUE(node) ||
        json_node_get_value_type(node) != type) {
        g_autofree char *text = ferry_json_to_string(root);
        fail(NULL, "'%s' is missing or not a %s in %s", path,
             g_type_name(type), text);
        return NULL;
    }
    return node;
}

const char *ferry_json_get_str(JsonNode *root, const char *path)
{
    JsonNode *node = json_get_value(root, path, G_TYPE_STRING);
    return node ? json_node_get_string(node) : NULL;
}

gint64 ferry_json_get_int(JsonNode *root, const char *path)
{
    JsonNode *node = json_get_value(root, path, G_TYPE_INT64);
    return node ? json_node_get_int(node) : 0;
}

bool ferry_json_get_bool(JsonNode *root, const char *path)
{
    JsonNode *node = json_get_value(root, path, G_TYPE_BOOLEAN);
    return node ? json_node_get_boolean(node) : false;
}

/* ---- QMP ---- */

/*
 * Find the first complete JSON object in BUF: *start is where it begins
 * (bytes before it are not JSON and are dropped), the result is its length,
 * 0 when it is not complete yet.
 */
static size_t json_object_extent(const char *buf, size_t len, size_t *start)
{
    size_t i = 0;
    int depth = 0;
    bool in_str = false, esc = false;

    while (i < len && buf[i] != '{') {
        i++;
    }
    *start = i;
    for (; i < len; i++) {
        char c = buf[i];
        if (in_str) {
            if (esc) {
                esc = false;
            } else if (c == '\\') {
                esc = true;
            } else if (c == '"') {
                in_str = false;
            }
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (--depth == 0) {
                return i + 1 - *start;
            }
        }
    }
    return 0;
}

/* The next message of any kind, or NULL at DEADLINE or end of stream. */
static JsonNode *qmp_next(FerryVM *vm, gint64 deadline)
{
    for (;;) {
        size_t start, n = json_object_extent(vm->qmp_rx->str, vm->qmp_rx->len,
                                             &start);
        if (n > 0) {
            g_autoptr(GError) err = NULL;
            JsonNode *msg = json_parse(vm->qmp_rx->str + start, n, &err);
            if (verbose()) {
                g_test_message("VM %u qmp <- %.*s", vm->id, (int)n,
                               vm->qmp_rx->str + start);
            }
            if (!msg) {
                fail(vm, "VM %u sent invalid JSON on QMP: %.*s (%s)", vm->id,
                     (int)n, vm->qmp_rx->str + start, err->message);
            }
            g_string_erase(vm->qmp_rx, 0, start + n);
            return msg;
        }
        if (vm->qmp_eof || vm->qmp_fd < 0) {
            return NULL;
        }
        if (!wait_readable(vm->qmp_fd, deadline)) {
            return NULL;
        }
        if (!recv_some(vm->qmp_fd, vm->qmp_rx)) {
            vm->qmp_eof = true;
        }
    }
}

static bool is_event(JsonNode *msg)
{
    return JSON_NODE_HOLDS_OBJECT(msg) &&
           json_object_has_member(json_node_get_object(msg), "event");
}

JsonNode *ferry_qmp_try_receive(FerryVM *vm, int timeout_ms)
{
    gint64 deadline = deadline_after(timeout_ms);
    JsonNode *msg;

    while ((msg = qmp_next(vm, deadline)) != NULL) {
        if (!is_event(msg)) {
            return msg;
        }
        g_queue_push_tail(&vm->events, msg);
    }
    return NULL;
}

JsonNode *ferry_qmp_receive(FerryVM *vm, int timeout_ms)
{
    JsonNode *msg = ferry_qmp_try_receive(vm, timeout_ms);

    if (!msg) {
        g_autofree char *why = vm_why_closed(vm, timeout_ms);
        fail(vm, "VM %u: no QMP reply %s", vm->id, why);
    }
    return msg;
}

void ferry_qmp_send_raw(FerryVM *vm, const void *data, size_t len)
{
    if (verbose()) {
        g_test_message("VM %u qmp -> %.*s", vm->id, (int)len,
                       (const char *)data);
    }
    if (vm->qmp_fd < 0 || !send_all(vm->qmp_fd, data, len)) {
        fail(vm, "VM %u: cannot send on QMP: %s", vm->id, g_strerror(errno));
    }
}

void ferry_qmp_getfd(FerryVM *vm, int fd, const char *fdname)
{
    g_autofree char *line = g_strdup_printf("{\"execute\": \"getfd\", \"arguments\": "
                                            "{\"fdname\": \"%s\"}}\n", fdname);
    struct iovec iov = { .iov_base = line, .iov_len = strlen(line) };
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = u.buf, .msg_controllen = sizeof(u.buf),
    };
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    if (vm->qmp_fd < 0 || sendmsg(vm->qmp_fd, &msg, MSG_NOSIGNAL) != (ssize_t)iov.iov_len) {
        fail(vm, "VM %u: cannot send getfd on QMP: %s", vm->id, g_strerror(errno));
    }
    g_autoptr(JsonNode) reply = ferry_qmp_receive(vm, 10000);
    if (!ferry_json_has(reply, "return")) {
        g_autofree char *text = ferry_json_to_string(reply);
        fail(vm, "VM %u: getfd failed: %s", vm->id, text);
    }
}

static void qmp_send_v(FerryVM *vm, const char *fmt, va_list ap)
{
    g_autofree char *text = g_strdup_vprintf(fmt, ap);
    g_autofree char *json = json_normalize(text);
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonNode) check = json_parse(json, strlen(json), &err);
    g_autofree char *line = NULL;

    if (!check || !JSON_NODE_HOLDS_OBJECT(check)) {
        fail(NULL, "test wrote a bad QMP command: %s (%s)", text,
             err ? err->message : "not an object");
        return;
    }
    line = g_strconcat(json, "\n", NULL);
    ferry_qmp_send_raw(vm, line, strlen(line));
}

void ferry_qmp_send(FerryVM *vm, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    qmp_send_v(vm, fmt, ap);
    va_end(ap);
}

static JsonNode *qmp_v(FerryVM *vm, const char *fmt, va_list ap)
{
    qmp_send_v(vm, fmt, ap);
    return ferry_qmp_receive(vm, QMP_TIMEOUT_MS);
}

JsonNode *ferry_qmp(FerryVM *vm, const char *fmt, ...)
{
    JsonNode *reply;
    va_list ap;

    va_start(ap, fmt);
    reply = qmp_v(vm, fmt, ap);
    va_end(ap);
    return reply;
}

JsonNode *ferry_qmp_ok(FerryVM *vm, const char *fmt, ...)
{
    g_autoptr(JsonNode) reply = NULL;
    JsonNode *ret;
    va_list ap;

    va_start(ap, fmt);
    reply = qmp_v(vm, fmt, ap);
    va_end(ap);
    ret = reply ? ferry_json_get(reply, "return") : NULL;
    if (!ret) {
        g_autofree char *text = ferry_json_to_string(reply);
        fail(vm, "VM %u: QMP command failed: %s", vm->id, text);
        return NULL;
    }
    return json_node_copy(ret);
}

char *ferry_qmp_fail(FerryVM *vm, const char *err_class, const char *fmt, ...)
{
    g_autoptr(JsonNode) reply = NULL;
    g_autofree char *text = NULL;
    JsonNode *cls, *desc;
    va_list ap;

    va_start(ap, fmt);
    reply = qmp_v(vm, fmt, ap);
    va_end(ap);
    if (!reply) {
        return NULL;
    }
    text = ferry_json_to_string(reply);
    cls = ferry_json_get(reply, "error.class");
    desc = ferry_json_get(reply, "error.desc");
    if (!cls || !desc || !JSON_NODE_HOLDS_VALUE(cls) ||
        !JSON_NODE_HOLDS_VALUE(desc)) {
        fail(vm, "VM %u: expected a QMP error, got %s", vm->id, text);
        return NULL;
    }
    if (err_class && g_strcmp0(json_node_get_string(cls), err_class) != 0) {
        fail(vm, "VM %u: expected error class %s, got %s", vm->id, err_class,
             text);
        return NULL;
    }
    return g_strdup(json_node_get_string(desc));
}

static JsonNode *event_take_queued(FerryVM *vm, const char *name)
{
    for (GList *l = vm->events.head; l; l = l->next) {
        JsonNode *ev = l->data;
        JsonNode *ename = ferry_json_get(ev, "event");
        if (!name || (ename && JSON_NODE_HOLDS_VALUE(ename) &&
                      g_strcmp0(json_node_get_string(ename), name) == 0)) {
            g_queue_delete_link(&vm->events, l);
            return ev;
        }
    }
    return NULL;
}

JsonNode *ferry_qmp_try_wait_event(FerryVM *vm, const char *name,
                                   int timeout_ms)
{
    gint64 deadline = deadline_after(timeout_ms);
    JsonNode *msg;

    msg = event_take_queued(vm, name);
    if (msg) {
        return msg;
    }
    while ((msg = qmp_next(vm, deadline)) != NULL) {
        if (!is_event(msg)) {
            g_autofree char *text = ferry_json_to_string(msg);
            g_test_message("VM %u: dropping unexpected QMP reply %s", vm->id,
                           text);
            json_node_unref(msg);
            continue;
        }
        g_queue_push_tail(&vm->events, msg);
        msg = event_take_queued(vm, name);
        if (msg) {
            return msg;
        }
    }
    return NULL;
}

JsonNode *ferry_qmp_wait_event(FerryVM *vm, const char *name, int timeout_ms)
{
    JsonNode *ev = ferry_qmp_try_wait_event(vm, name, timeout_ms);

    if (!ev) {
        g_autofree char *why = vm_why_closed(vm, timeout_ms);
        fail(vm, "VM %u: no QMP event %s %s", vm->id, name ? name : "(any)",
             why);
    }
    return ev;
}

void ferry_qmp_clear_events(FerryVM *vm)
{
    JsonNode *msg;

    /* Nothing is waiting for a reply here: drop whatever has arrived. */
    while ((msg = qmp_next(vm, g_get_monotonic_time())) != NULL) {
        json_node_unref(msg);
    }
    g_queue_clear_full(&vm->events, (GDestroyNotify)json_node_unref);
}

/* ---- qtest ---- */

static char *qtest_line(FerryVM *vm, gint64 deadline)
{
    for (;;) {
        char *nl = memchr(vm->qtest_rx->str, '\n', vm->qtest_rx->len);
        if (nl) {
            size_t n = nl - vm->qtest_rx->str;
            char *line = g_strndup(vm->qtest_rx->str, n);
            g_string_erase(vm->qtest_rx, 0, n + 1);
            g_strchomp(line);
            /* Asynchronous interrupt notifications are not replies. */
            if (g_str_has_prefix(line, "IRQ ")) {
                g_free(line);
                continue;
            }
            return line;
        }
        if (!wait_readable(vm->qtest_fd, deadline) ||
            !recv_some(vm->qtest_fd, vm->qtest_rx)) {
            return NULL;
        }
    }
}

static char *qtest_v(FerryVM *vm, const char *fmt, va_list ap)
{
    g_autofree char *cmd = g_strdup_vprintf(fmt, ap);
    g_autofree char *out = g_strconcat(cmd, "\n", NULL);
    g_autofree char *line = NULL;

    if (verbose()) {
        g_test_message("VM %u qtest -> %.200s", vm->id, cmd);
    }
    if (!send_all(vm->qtest_fd, out, strlen(out))) {
        vm_fail_if_dead(vm, "sending a qtest command");
        fail(vm, "VM %u: cannot send qtest command '%.80s'", vm->id, cmd);
        return NULL;
    }
    line = qtest_line(vm, deadline_after(QTEST_TIMEOUT_MS));
    if (verbose() && line) {
        g_test_message("VM %u qtest <- %.200s", vm->id, line);
    }
    if (!line) {
        vm_fail_if_dead(vm, "waiting for a qtest reply");
        fail(vm, "VM %u: no reply to qtest command '%.80s'", vm->id, cmd);
        return NULL;
    }
    if (strcmp(line, "OK") == 0) {
        return g_strdup("");
    }
    if (g_str_has_prefix(line, "OK ")) {
        return g_strdup(line + 3);
    }
    fail(vm, "VM %u: qtest command '%.80s' answered '%s'", vm->id, cmd, line);
    return NULL;
}

char *ferry_qtest(FerryVM *vm, const char *fmt, ...)
{
    char *reply;
    va_list ap;

    va_start(ap, fmt);
    reply = qtest_v(vm, fmt, ap);
    va_end(ap);
    return reply;
}

static uint64_t qtest_value(FerryVM *vm, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);

static uint64_t qtest_value(FerryVM *vm, const char *fmt, ...)
{
    g_autofree char *reply = NULL;
    char *end = NULL;
    uint64_t val;
    va_list ap;

    va_start(ap, fmt);
    reply = qtest_v(vm, fmt, ap);
    va_end(ap);
    if (!reply) {
        return 0;
    }
    val = g_ascii_strtoull(reply, &end, 0);
    if (end == reply || *end) {
        fail(vm, "VM %u: qtest value '%s' is not a number", vm->id, reply);
    }
    return val;
}

static void qtest_ok(FerryVM *vm, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void qtest_ok(FerryVM *vm, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    g_free(qtest_v(vm, fmt, ap));
    va_end(ap);
}

uint8_t ferry_readb(FerryVM *vm, uint64_t addr)
{
    return qtest_value(vm, "readb 0x%" PRIx64, addr);
}

uint16_t ferry_readw(FerryVM *vm, uint64_t addr)
{
    return qtest_value(vm, "readw 0x%" PRIx64, addr);
}

uint32_t ferry_readl(FerryVM *vm, uint64_t addr)
{
    return qtest_value(vm, "readl 0x%" PRIx64, addr);
}

uint64_t ferry_readq(FerryVM *vm, uint64_t addr)
{
    return qtest_value(vm, "readq 0x%" PRIx64, addr);
}

void ferry_writeb(FerryVM *vm, uint64_t addr, uint8_t val)
{
    qtest_ok(vm, "writeb 0x%" PRIx64 " 0x%x", addr, val);
}

void ferry_writew(FerryVM *vm, uint64_t addr, uint16_t val)
{
    qtest_ok(vm, "writew 0x%" PRIx64 " 0x%x", addr, val);
}

void ferry_writel(FerryVM *vm, uint64_t addr, uint32_t val)
{
    qtest_ok(vm, "writel 0x%" PRIx64 " 0x%x", addr, val);
}

void ferry_writeq(FerryVM *vm, uint64_t addr, uint64_t val)
{
    qtest_ok(vm, "writeq 0x%" PRIx64 " 0x%" PRIx64, addr, val);
}

uint8_t ferry_inb(FerryVM *vm, uint16_t port)
{
    return qtest_value(vm, "inb 0x%x", port);
}

void ferry_outb(FerryVM *vm, uint16_t port, uint8_t val)
{
    qtest_ok(vm, "outb 0x%x 0x%x", port, val);
}

static int hex_nibble(char c)
{
    return g_ascii_xdigit_value(c);
}

void ferry_memread(FerryVM *vm, uint64_t addr, void *buf, size_t len)
{
    uint8_t *out = buf;

    while (len > 0) {
        size_t n = MIN(len, QTEST_CHUNK);
        g_autofree char *reply = ferry_qtest(vm, "read 0x%" PRIx64 " 0x%zx",
                                             addr, n);
        const char *hex;

        if (!reply) {
            return;
        }
        hex = g_str_has_prefix(reply, "0x") ? reply + 2 : reply;
        if (strlen(hex) != n * 2) {
            fail(vm, "VM %u: qtest read of %zu bytes returned %zu digits",
                 vm->id, n, strlen(hex));
            return;
        }
        for (size_t i = 0; i < n; i++) {
            int hi = hex_nibble(hex[2 * i]), lo = hex_nibble(hex[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                fail(vm, "VM %u: bad hex in qtest read reply", vm->id);
                return;
            }
            out[i] = (uint8_t)(hi << 4 | lo);
        }
        out += n;
        addr += n;
        len -= n;
    }
}

void ferry_memwrite(FerryVM *vm, uint64_t addr, const void *buf, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *in = buf;

    while (len > 0) {
        size_t n = MIN(len, QTEST_CHUNK);
        g_autofree char *hex = g_malloc(n * 2 + 1);

        for (size_t i = 0; i < n; i++) {
            hex[2 * i] = digits[in[i] >> 4];
            hex[2 * i + 1] = digits[in[i] & 0xf];
        }
        hex[n * 2] = '\0';
        qtest_ok(vm, "write 0x%" PRIx64 " 0x%zx 0x%s", addr, n, hex);
        in += n;
        addr += n;
        len -= n;
    }
}

/* ---- VM lifetime ---- */

static bool args_name_accel(GPtrArray *argv, guint from)
{
    for (guint i = from; i < argv->len; i++) {
        const char *a = g_ptr_array_index(argv, i);
        if (strcmp(a, "-accel") == 0 || strcmp(a, "--accel") == 0 ||
            g_str_has_prefix(a, "-accel=") || g_str_has_prefix(a, "--accel=")) {
            return true;
        }
    }
    return false;
}

/* Accept the VMM's connections to the qtest and serial sockets. */
static void vm_accept(FerryVM *vm, int qtest_lfd, int serial_lfd,
                      gint64 deadline)
{
    while (vm->qtest_fd < 0 || (serial_lfd >= 0 && vm->serial_fd < 0)) {
        GPollFD pfd[2];
        int n = 0;

        if (vm->qtest_fd < 0) {
            pfd[n++] = (GPollFD){ .fd = qtest_lfd, .events = G_IO_IN };
        }
        if (serial_lfd >= 0 && vm->serial_fd < 0) {
            pfd[n++] = (GPollFD){ .fd = serial_lfd, .events = G_IO_IN };
        }
        if (g_poll(pfd, n, ms_left(deadline, 100)) > 0) {
            for (int i = 0; i < n; i++) {
                if (pfd[i].revents & G_IO_IN) {
                    int fd = accept4(pfd[i].fd, NULL, NULL, SOCK_CLOEXEC);
                    if (fd < 0) {
                        continue;
                    }
                    if (pfd[i].fd == qtest_lfd) {
                        vm->qtest_fd = fd;
                    } else {
                        vm->serial_fd = fd;
                        serial_start(vm);
                    }
                }
            }
            continue;
        }
        vm_fail_if_dead(vm, "starting (no qtest/serial connection yet)");
        if (g_get_monotonic_time() >= deadline) {
            fail(vm, "VM %u did not connect its %s socket", vm->id,
                 vm->qtest_fd < 0 ? "qtest" : "serial");
            return;
        }
    }
}

static void vm_connect_qmp(FerryVM *vm, gint64 deadline)
{
    g_autoptr(JsonNode) greeting = NULL;
    g_autoptr(JsonNode) reply = NULL;

    for (;;) {
        vm->qmp_fd = unix_connect(vm->qmp_path);
        if (vm->qmp_fd >= 0) {
            break;
        }
        vm_fail_if_dead(vm, "starting (no QMP socket yet)");
        if (g_get_monotonic_time() >= deadline) {
            fail(vm, "VM %u: cannot connect to QMP at %s", vm->id,
                 vm->qmp_path);
            return;
        }
        g_usleep((gulong)ms_left(deadline, POLL_SLICE_MS) * 1000);
    }
    greeting = qmp_next(vm, deadline);
    if (!greeting) {
        g_autofree char *why = vm_why_closed(vm, START_TIMEOUT_MS);
        fail(vm, "VM %u: no QMP greeting %s", vm->id, why);
        return;
    }
    if (!ferry_json_has(greeting, "QMP")) {
        g_autofree char *text = ferry_json_to_string(greeting);
        fail(vm, "VM %u: bad QMP greeting %s", vm->id, text);
        return;
    }
    reply = ferry_qmp_ok(vm, "{'execute': 'qmp_capabilities'}");
}

static void vm_register(FerryVM *vm, bool add)
{
    g_mutex_lock(&registry_lock);
    if (add) {
        g_ptr_array_add(live_vms, vm);
    } else {
        g_ptr_array_remove_fast(live_vms, vm);
    }
    g_mutex_unlock(&registry_lock);
}

FerryVM *ferry_vm_start(const char *args_fmt, ...)
{
    FerryVM *vm = g_new0(FerryVM, 1);
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GError) err = NULL;
    g_autofree char *args = NULL;
    g_autofree char *cmd = NULL;
    const char *mode = g_getenv("FERRY_TEST_SERIAL");
    ChildIO io;
    int qtest_lfd, serial_lfd = -1;
    gint64 deadline;
    guint user_from;
    va_list ap;

    harness_init();
    va_start(ap, args_fmt);
    args = g_strdup_vprintf(args_fmt, ap);
    va_end(ap);

    vm->id = g_atomic_int_add(&next_vm_id, 1);
    vm->dir = g_strdup_printf("%s/vm%u", tmp_root, vm->id);
    if (mkdir(vm->dir, 0700) < 0) {
        g_error("mkdir %s: %s", vm->dir, g_strerror(errno));
    }
    vm->qmp_path = g_build_filename(vm->dir, "qmp.sock", NULL);
    vm->qtest_path = g_build_filename(vm->dir, "qtest.sock", NULL);
    vm->log_path = g_build_filename(vm->dir, "vmm.log", NULL);
    vm->qmp_fd = vm->qtest_fd = vm->serial_fd = -1;
    vm->qmp_rx = g_string_new(NULL);
    vm->qtest_rx = g_string_new(NULL);
    vm->serial = g_string_new(NULL);
    g_mutex_init(&vm->serial_lock);
    g_cond_init(&vm->serial_cond);
    g_queue_init(&vm->events);
    vm->serial_mode = g_strcmp0(mode, "file") == 0 ? SERIAL_FILE
                                                   : SERIAL_SOCKET;
    if (vm->serial_mode == SERIAL_FILE) {
        vm->serial_path = g_build_filename(vm->dir, "serial.txt", NULL);
        if (!g_file_set_contents(vm->serial_path, "", 0, NULL)) {
            g_error("cannot create %s", vm->serial_path);
        }
    } else {
        vm->serial_path = g_build_filename(vm->dir, "serial.sock", NULL);
    }

    qtest_lfd = unix_listen(vm->qtest_path);
    if (vm->serial_mode == SERIAL_SOCKET) {
        serial_lfd = unix_listen(vm->serial_path);
    }

    g_ptr_array_add(argv, g_strdup(ferry_binary()));
    g_ptr_array_add(argv, g_strdup("-nodefaults"));
    g_ptr_array_add(argv, g_strdup("-display"));
    g_ptr_array_add(argv, g_strdup("none"));
    g_ptr_array_add(argv, g_strdup("-qmp"));
    g_ptr_array_add(argv, g_strdup_printf("unix:%s,server=on,wait=off",
                                          vm->qmp_path));
    g_ptr_array_add(argv, g_strdup("-qtest"));
    g_ptr_array_add(argv, g_strdup_printf("unix:%s", vm->qtest_path));
    g_ptr_array_add(argv, g_strdup("-serial"));
    g_ptr_array_add(argv, g_strdup_printf("%s:%s",
                                          vm->serial_mode == SERIAL_FILE
                                          ? "file" : "unix",
                                          vm->serial_path));
    user_from = argv->len;
    append_shell_args(argv, g_getenv("FERRY_TEST_ARGS"), "FERRY_TEST_ARGS");
    append_shell_args(argv, args, "VM arguments");
    if (!args_name_accel(argv, user_from)) {
        g_ptr_array_insert(argv, user_from, g_strdup("-accel"));
        g_ptr_array_insert(argv, user_from + 1, g_strdup(ferry_test_accel()));
    }
    g_ptr_array_add(argv, NULL);
    cmd = argv_to_string((char **)argv->pdata);
    g_test_message("VM %u: %s", vm->id, cmd);

    io = (ChildIO){ "/dev/null", vm->log_path, vm->log_path };
    vm->pid = spawn((char **)argv->pdata, &io, &err);
    if (!vm->pid) {
        close(qtest_lfd);
        if (serial_lfd >= 0) {
            close(serial_lfd);
        }
        fail(NULL, "cannot start %s: %s", cmd, err->message);
        vm->exited = true;
        return vm;
    }
    vm_register(vm, true);

    if (vm->serial_mode == SERIAL_FILE) {
        vm->serial_fd = open(vm->serial_path, O_RDONLY | O_CLOEXEC);
        g_assert(vm->serial_fd >= 0);
        serial_start(vm);
    }
    deadline = deadline_after(START_TIMEOUT_MS);
    vm_accept(vm, qtest_lfd, serial_lfd, deadline);
    close(qtest_lfd);
    if (serial_lfd >= 0) {
        close(serial_lfd);
    }
    vm_connect_qmp(vm, deadline);
    return vm;
}

void ferry_vm_free(FerryVM *vm)
{
    if (!vm) {
        return;
    }
    if (vm->pid > 0 && !vm->exited) {
        kill(vm->pid, SIGKILL);
        vm_reap(vm, true);
    }
    serial_stop(vm);
    if (vm->serial_fd >= 0) {
        close(vm->serial_fd);
    }
    if (vm->qmp_fd >= 0) {
        close(vm->qmp_fd);
    }
    if (vm->qtest_fd >= 0) {
        close(vm->qtest_fd);
    }
    vm_register(vm, false);
    remove_tree(vm->dir);
    g_queue_clear_full(&vm->events, (GDestroyNotify)json_node_unref);
    g_string_free(vm->qmp_rx, TRUE);
    g_string_free(vm->qtest_rx, TRUE);
    g_string_free(vm->serial, TRUE);
    g_mutex_clear(&vm->serial_lock);
    g_cond_clear(&vm->serial_cond);
    g_free(vm->dir);
    g_free(vm->qmp_path);
    g_free(vm->qtest_path);
    g_free(vm->serial_path);
    g_free(vm->log_path);
    g_free(vm);
}

void ferry_vm_kill(FerryVM *vm)
{
    ferry_vm_free(vm);
}

int ferry_vm_quit(FerryVM *vm)
{
    int status = -1;

    if (ferry_vm_is_running(vm) && vm->qmp_fd >= 0 && !vm->qmp_eof) {
        static const char quit[] = "{\"execute\": \"quit\"}\n";
        if (send_all(vm->qmp_fd, quit, strlen(quit))) {
            /* The reply may or may not make it before the socket closes. */
            JsonNode *reply = ferry_qmp_try_receive(vm, QMP_TIMEOUT_MS);
            if (reply) {
                json_node_unref(reply);
            }
        }
    }
    if (vm->exited || ferry_vm_wait_exit(vm, QUIT_TIMEOUT_MS) >= 0) {
        status = exit_status_code(vm->wait_status);
    } else {
        g_test_message("VM %u ignored quit; killing it", vm->id);
        kill(vm->pid, SIGKILL);
        vm_reap(vm, true);
        status = exit_status_code(vm->wait_status);
    }
    ferry_vm_free(vm);
    return status;
}

/* ---- Line-oriented clients for extra monitor sockets ---- */

struct FerryLineClient {
    int fd;
    GString *buf;
};

FerryLineClient *ferry_line_client_connect(const char *path)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    FerryLineClient *c = g_new0(FerryLineClient, 1);
    gint64 deadline = g_get_monotonic_time() + ferry_timeout(10000) * 1000LL;

    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    for (;;) {
        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        g_assert_cmpint(c->fd, >=, 0);
        if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
            break;
        }
        close(c->fd);
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        struct pollfd none = { .fd = -1 };
        poll(&none, 1, 20);     /* socket not there yet: retry until the deadline */
    }
    c->buf = g_string_new(NULL);
    return c;
}

void ferry_line_client_free(FerryLineClient *c)
{
    close(c->fd);
    g_string_free(c->buf, TRUE);
    g_free(c);
}

void ferry_line_client_send(FerryLineClient *c, const char *text)
{
    size_t len = strlen(text);
    g_assert_true(send_all(c->fd, text, len));
}

char *ferry_line_client_read_until(FerryLineClient *c, const char *needle, int timeout_ms)
{
    gint64 deadline = g_get_monotonic_time() + ferry_timeout(timeout_ms) * 1000LL;
    for (;;) {
        char *hit = strstr(c->buf->str, needle);
        if (hit) {
            size_t n = (size_t)(hit - c->buf->str) + strlen(needle);
            char *out = g_strndup(c->buf->str, n);
            g_string_erase(c->buf, 0, (gssize)n);
            return out;
        }
        gint64 left = (deadline - g_get_monotonic_time()) / 1000;
        if (left <= 0) {
            fail(NULL, "no '%s' from the monitor socket within %d ms (got: %s)", needle,
                 timeout_ms, c->buf->str);
        }
        struct pollfd p = { .fd = c->fd, .events = POLLIN };
        if (poll(&p, 1, (int)left) > 0) {
            char tmp[4096];
            ssize_t r = read(c->fd, tmp, sizeof(tmp));
            if (r <= 0) {
                fail(NULL, "monitor socket closed while waiting for '%s'", needle);
            }
            g_string_append_len(c->buf, tmp, r);
        }
    }
}
