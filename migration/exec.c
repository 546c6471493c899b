/*
 * exec: migration transport: `/bin/sh -c COMMAND`, writing the stream to
 * its stdin (source) or reading it from its stdout (destination).
 *
 * The unused standard stream goes to /dev/null, never to Ferry's own
 * stdin/stdout, which may be a monitor; stderr is inherited so the
 * command's complaints reach the log. g_spawn closes every other fd in the
 * child, so a long-lived command (ssh) holds no sockets or KVM fds.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "migration/channel.h"
#include "migration/channel-internal.h"

/*
 * After the last byte a command may still be compressing or pushing the
 * stream over a network (gzip, ssh): give it time to finish.
 */
#define EXEC_PATIENT_WAIT_MS 30000
/* A reader done with the command, or a cancelled channel: it should stop now. */
#define EXEC_BRIEF_WAIT_MS 200
#define EXEC_TERM_WAIT_MS 1000

/*
 * In the child, before exec: the command starts with default signal
 * handling, not Ferry's. SIGPIPE is ignored here, and an ignored signal
 * stays ignored across exec, so a shell loop writing to a closed pipe
 * would never end; the spawning migration thread may also block signals.
 *
 * Its own process group lets a stop reach everything the shell started
 * (`exec:gzip | ssh ...`), not just the shell.
 */
static void exec_child_setup(gpointer data)
{
    struct sigaction sa = { .sa_handler = SIG_DFL };
    sigset_t none;

    setpgid(0, 0);
    sigaction(SIGPIPE, &sa, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

MigChannel *mig_exec_open(const MigUri *u, bool outgoing, GError **errp)
{
    char *argv[] = { "/bin/sh", "-c", u->command, NULL };
    g_autoptr(GError) err = NULL;
    g_autofree char *desc = mig_uri_to_string(u);
    GSpawnFlags flags = G_SPAWN_DO_NOT_REAP_CHILD;
    GPid pid;
    int fd = -1;

    /* Without a pipe, stdin is /dev/null; stdout is inherited unless told otherwise. */
    if (outgoing) {
        flags |= G_SPAWN_STDOUT_TO_DEV_NULL;
    }
    if (!g_spawn_async_with_pipes(NULL, argv, NULL, flags, exec_child_setup, NULL, &pid,
                                  outgoing ? &fd : NULL, outgoing ? NULL : &fd, NULL, &err)) {
        g_set_error(errp, MIG_CHANNEL_ERROR, EIO, "Failed to run '%s': %s", u->command,
                    err->message);
        return NULL;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) {
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    }
    MigChannel *ch = mig_channel_wrap(fd, MIG_CHANNEL_PIPE, desc);
    mig_channel_set_child(ch, pid, outgoing);
    return ch;
}

/* True once @pid is reaped (or is not ours to reap). */
static bool exec_wait(pid_t pid, int timeout_ms)
{
    gint64 deadline = g_get_monotonic_time() + timeout_ms * 1000LL;
    gulong nap = 100;

    for (;;) {
        pid_t r = waitpid(pid, NULL, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR)) {
            return true;
        }
        if (g_get_monotonic_time() >= deadline) {
            return false;
        }
        g_usleep(nap);
        nap = MIN(nap * 2, 10000);
    }
}

void mig_exec_reap(pid_t pid, bool patient)
{
    if (exec_wait(pid, patient ? EXEC_PATIENT_WAIT_MS : EXEC_BRIEF_WAIT_MS)) {
        return;
    }
    /* The group is the shell's pid (see exec_child_setup); the shell is not reaped yet. */
    kill(-pid, SIGTERM);
    if (exec_wait(pid, EXEC_TERM_WAIT_MS)) {
        return;
    }
    kill(-pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
}
