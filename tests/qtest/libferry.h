/*
 * The test harness: start a VMM (Ferry, or QEMU for comparison) the way a
 * user would and drive it over QMP, the qtest protocol and its serial port.
 *
 * Every wait has a deadline and reacts to what it waits for (a socket
 * becoming readable, serial output arriving, a condition turning true);
 * timeouts are in milliseconds and are multiplied by FERRY_TIMEOUT_SCALE.
 * Functions whose name does not say "try" fail the test (a GLib assertion)
 * when the VMM misbehaves or a wait times out; they print the tail of the
 * serial output and the VMM's log first.
 *
 * Environment:
 *   FERRY_BINARY        the VMM to run (default: the build's
 *                       ferry-system-x86_64)
 *   FERRY_TEST_ARGS     extra arguments for every VM started with
 *                       ferry_vm_start(); with QEMU on a host like ours:
 *                       "-cpu host,-arch-capabilities -qtest-log /dev/null"
 *                       (QEMU otherwise logs qtest traffic to stderr)
 *   FERRY_TEST_SERIAL   "socket" (default: -serial unix:PATH, read live) or
 *                       "file" (-serial file:PATH, tailed)
 *   FERRY_TIMEOUT_SCALE multiply every timeout (a float, default 1)
 *   FERRY_TEST_VERBOSE  log command lines and QMP/qtest traffic
 *   FERRY_TEST_KEEP     keep the temporary directory after the run
 *   FERRY_GUEST_<NAME>  override the path of a built guest (see
 *                       ferry_guest_path())
 *
 * Threads: a FerryVM belongs to the thread that started it; only its serial
 * reader runs elsewhere.
 */
#ifndef TESTS_QTEST_LIBFERRY_H
#define TESTS_QTEST_LIBFERRY_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <glib.h>
#include <json-glib/json-glib.h>

typedef struct FerryVM FerryVM;

/* ---- environment ---- */

/* TRUE when /dev/kvm is a KVM device that opens read-write; else *why says why. */
bool ferry_kvm_available(char **why);

/*
 * The accelerator test VMs run on: FERRY_TEST_ACCEL ("kvm" or "tcg"; meson
 * runs every VM test once per accelerator), else kvm where /dev/kvm works
 * and tcg (the software CPU) elsewhere.
 */
const char *ferry_test_accel(void);

/* TRUE when ferry_test_accel() can run guest code here; else *why says why. */
bool ferry_accel_available(char **why);

/* Skip the current test (and return from it) when the accelerator cannot run. */
#define FERRY_REQUIRE_ACCEL()                                       \
    do {                                                            \
        g_autofree char *ferry_why_ = NULL;                         \
        if (!ferry_accel_available(&ferry_why_)) {                  \
            g_test_skip(ferry_why_);                                \
            return;                                                 \
        }                                                           \
    } while (0)

/* The VMM binary: FERRY_BINARY or the build's ferry-system-x86_64. */
const char *ferry_binary(void);

/*
 * A guest image built by meson: "bootsect" (the boot-sector image) or
 * "kernel" (the test kernel). FERRY_GUEST_<NAME> overrides the built path.
 * NULL when it was not built or the file is missing.
 */
const char *ferry_guest_path(const char *name);

/* Skip the current test (and return) when guest NAME is missing. */
#define FERRY_REQUIRE_GUEST(var, name)                              \
    const char *var = ferry_guest_path(name);                       \
    do {                                                            \
        if (!var) {                                                 \
            g_test_skip("guest '" name "' not built");              \
            return;                                                 \
        }                                                           \
    } while (0)

/* TIMEOUT_MS times FERRY_TIMEOUT_SCALE. */
int ferry_timeout(int timeout_ms);

/*
 * A directory private to this test process, removed at exit (also after a
 * failed assertion or a signal). Tests put their own files here.
 */
const char *ferry_tmp_dir(void);

/* Poll COND(DATA) every few milliseconds until it returns TRUE (TRUE) or
 * TIMEOUT_MS elapses (FALSE). */
typedef bool (*FerryCondFn)(void *data);
bool ferry_wait_until(FerryCondFn cond, void *data, int timeout_ms);

/* ---- running the binary with a command line of the test's choice ---- */

typedef struct FerryRunResult {
    int exit_code;      /* exit status, or -1 when killed by a signal */
    int term_signal;    /* the signal that ended it, or 0 */
    bool timed_out;     /* killed by the harness at the deadline */
    char *out;          /* everything written to stdout */
    char *err;          /* everything written to stderr */
} FerryRunResult;

/*
 * Run ferry_binary() with ARGS (split like a shell would) and nothing else,
 * stdin from /dev/null, and wait at most TIMEOUT_MS; kill -9 after that.
 */
FerryRunResult *ferry_run(int timeout_ms, const char *args_fmt, ...)
    G_GNUC_PRINTF(2, 3);
FerryRunResult *ferry_run_argv(int timeout_ms, const char *const *args);
void ferry_run_result_free(FerryRunResult *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FerryRunResult, ferry_run_result_free)

/* ---- VM lifetime ---- */

/*
 * Start a VM: ferry_binary() with
 *   -nodefaults -display none -qmp unix:DIR/qmp.sock,server=on,wait=off
 *   -qtest unix:DIR/qtest.sock -serial unix:DIR/serial.sock
 *   -accel ferry_test_accel() (left out when the arguments name -accel)
 *   $FERRY_TEST_ARGS  ARGS
 * ARGS is split like a shell would. Waits until the VMM has connected the
 * qtest and serial sockets and QMP has answered qmp_capabilities. Fails the
 * test if any of that does not happen within 30 s (scaled).
 */
FerryVM *ferry_vm_start(const char *args_fmt, ...) G_GNUC_PRINTF(1, 2);

/*
 * Send "quit", wait for the process to exit (kill -9 after 10 s), free the
 * VM. Returns the exit status as ferry_vm_wait_exit() does.
 */
int ferry_vm_quit(FerryVM *vm);

/* Kill -9, reap and free the VM. */
void ferry_vm_kill(FerryVM *vm);

/*
 * Wait for the process to exit by itself. Returns its exit code, 128 + the
 * signal if a signal ended it, or -1 on timeout (the VM keeps running).
 * The VM is not freed: its serial output stays readable.
 */
int ferry_vm_wait_exit(FerryVM *vm, int timeout_ms);

/* Kill the process if it still runs, close everything, remove its files. */
void ferry_vm_free(FerryVM *vm);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FerryVM, ferry_vm_free)

/* TRUE while the process has not exited. */
bool ferry_vm_is_running(FerryVM *vm);
pid_t ferry_vm_pid(FerryVM *vm);
/* The VM's private directory (sockets, log); removed by ferry_vm_free(). */
const char *ferry_vm_dir(FerryVM *vm);
/* What the VMM wrote to stdout and stderr so far. */
char *ferry_vm_log(FerryVM *vm);
/* Print the tail of the serial output and of the VMM's log to stderr. */
void ferry_vm_dump(FerryVM *vm);

/* ---- QMP ---- */

/*
 * Send a command and return the whole reply object ({"return": ...} or
 * {"error": ...}); unref with json_node_unref(). FMT is printf-style JSON
 * in which strings may be single-quoted, as in QEMU's tests:
 *   ferry_qmp(vm, "{'execute': 'migrate', 'arguments': {'uri': '%s'}}", uri)
 * Events that arrive before the reply are queued for ferry_qmp_wait_event().
 */
JsonNode *ferry_qmp(FerryVM *vm, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* Send a command, assert that it succeeded, return a new reference to the
 * "return" value. */
JsonNode *ferry_qmp_ok(FerryVM *vm, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* Send a command, assert that it failed with error class ERR_CLASS (NULL:
 * any), return the error's "desc". */
char *ferry_qmp_fail(FerryVM *vm, const char *err_class,
                     const char *fmt, ...) G_GNUC_PRINTF(3, 4);

/* Send a command without waiting for its reply (see ferry_qmp_receive()). */
void ferry_qmp_send(FerryVM *vm, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* Send bytes as they are: for malformed-input tests. */
void ferry_qmp_send_raw(FerryVM *vm, const void *data, size_t len);
/* Pass @fd to the VM with QMP getfd under @fdname (SCM_RIGHTS). */
void ferry_qmp_getfd(FerryVM *vm, int fd, const char *fdname);

/* The next message that is not an event (events are queued); fails the test
 * on timeout or when the connection closes. */
JsonNode *ferry_qmp_receive(FerryVM *vm, int timeout_ms);

/* Like ferry_qmp_receive() but returns NULL on timeout or end of stream. */
JsonNode *ferry_qmp_try_receive(FerryVM *vm, int timeout_ms);

/*
 * Take the first queued or arriving event named NAME (NULL: any) and return
 * it; fails the test when none arrives within TIMEOUT_MS. Other events stay
 * queued in order.
 */
JsonNode *ferry_qmp_wait_event(FerryVM *vm, const char *name, int timeout_ms);

/* Like ferry_qmp_wait_event() but returns NULL on timeout. */
JsonNode *ferry_qmp_try_wait_event(FerryVM *vm, const char *name,
                                   int timeout_ms);

/* Drop every queued event (after reading whatever has already arrived). */
void ferry_qmp_clear_events(FerryVM *vm);

/* ---- JSON helpers (reply objects) ---- */

/*
 * Look up a dotted path ("return.status", "data.offset") in an object node.
 * NULL when a member is missing; the node belongs to ROOT.
 */
JsonNode *ferry_json_get(JsonNode *root, const char *path);
bool ferry_json_has(JsonNode *root, const char *path);
/* These fail the test when the member is missing or of another type. */
const char *ferry_json_get_str(JsonNode *root, const char *path);
gint64 ferry_json_get_int(JsonNode *root, const char *path);
bool ferry_json_get_bool(JsonNode *root, const char *path);
/* Compact JSON text, for messages. */
char *ferry_json_to_string(JsonNode *node);

/* ---- qtest ---- */

/* Send a raw qtest command line and return the reply without "OK"
 * (possibly ""); fails the test on FAIL or timeout. */
char *ferry_qtest(FerryVM *vm, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

uint8_t ferry_readb(FerryVM *vm, uint64_t addr);
uint16_t ferry_readw(FerryVM *vm, uint64_t addr);
uint32_t ferry_readl(FerryVM *vm, uint64_t addr);
uint64_t ferry_readq(FerryVM *vm, uint64_t addr);
void ferry_writeb(FerryVM *vm, uint64_t addr, uint8_t val);
void ferry_writew(FerryVM *vm, uint64_t addr, uint16_t val);
void ferry_writel(FerryVM *vm, uint64_t addr, uint32_t val);
void ferry_writeq(FerryVM *vm, uint64_t addr, uint64_t val);
void ferry_memread(FerryVM *vm, uint64_t addr, void *buf, size_t len);
void ferry_memwrite(FerryVM *vm, uint64_t addr, const void *buf, size_t len);
uint8_t ferry_inb(FerryVM *vm, uint16_t port);
void ferry_outb(FerryVM *vm, uint16_t port, uint8_t val);

/* ---- serial (COM1) ---- */

/*
 * The harness keeps all output and a mark: waits look only after the mark
 * and move it past what they matched, so two waits for the same text see
 * two occurrences.
 */

/* Everything received so far (the caller frees it). */
char *ferry_serial_text(FerryVM *vm);
/* Whether the serial output so far contains @needle. */
bool ferry_serial_contains(FerryVM *vm, const char *needle);
/* Type @text into the guest's serial port (socket mode only). */
void ferry_serial_write(FerryVM *vm, const char *text);
/* Move the mark to the end of what has arrived; returns the new offset. */
size_t ferry_serial_mark(FerryVM *vm);

/*
 * Wait until NEEDLE appears after the mark and its line is complete (a
 * '\n' follows); return that line without the line end and move the mark
 * past it. Fails the test on timeout.
 */
char *ferry_serial_wait(FerryVM *vm, const char *needle, int timeout_ms);

/* Like ferry_serial_wait() but returns NULL on timeout. */
char *ferry_serial_try_wait(FerryVM *vm, const char *needle, int timeout_ms);

/* Wait until NEEDLE appears after the mark (no line end needed) and move the
 * mark past it. Fails the test on timeout. */
void ferry_serial_wait_marker(FerryVM *vm, const char *needle, int timeout_ms);

/* Occurrences of NEEDLE in all output so far (not overlapping). */
unsigned ferry_serial_count(FerryVM *vm, const char *needle);

/* Wait until ferry_serial_count(NEEDLE) >= COUNT; fails on timeout. */
void ferry_serial_wait_count(FerryVM *vm, const char *needle, unsigned count,
                             int timeout_ms);

/* ---- A plain client for extra monitor sockets (HMP, a second QMP) ---- */
typedef struct FerryLineClient FerryLineClient;
FerryLineClient *ferry_line_client_connect(const char *path);
void ferry_line_client_send(FerryLineClient *c, const char *text);
/* Everything up to and including @needle; fails the test at the deadline. */
char *ferry_line_client_read_until(FerryLineClient *c, const char *needle, int timeout_ms);
void ferry_line_client_free(FerryLineClient *c);

#endif /* TESTS_QTEST_LIBFERRY_H */
