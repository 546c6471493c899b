/*
 * Stdio chardev: input from stdin, read in the main loop when it is
 * readable; output to stdout with blocking writes. When stdin is a
 * terminal it is switched to raw-ish mode (no echo, no line editing;
 * signal=on keeps ^C as SIGINT) and restored at exit.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>
#include <glib-unix.h>

#include "chardev/chardev-internal.h"
#include "system/main-loop.h"

#define STDIO_READ_CHUNK 4096

typedef struct StdioChardev {
    Chardev parent;
    GSource *read_src;
    bool input_blocked;
    bool eof;
} StdioChardev;

static const char *const stdio_keys[] = { "signal", NULL };

static bool stdio_in_use;
static bool stdio_termios_saved;
static struct termios stdio_saved_termios;

static void stdio_restore_terminal(void)
{
    if (stdio_termios_saved) {
        tcsetattr(STDIN_FILENO, TCSANOW, &stdio_saved_termios);
    }
}

static void stdio_setup_terminal(bool allow_signals)
{
    static bool atexit_registered;
    struct termios tty;

    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &tty) < 0) {
        return;
    }
    if (!stdio_termios_saved) {
        stdio_saved_termios = tty;
        stdio_termios_saved = true;
    }
    if (!atexit_registered) {
        atexit(stdio_restore_terminal);
        atexit_registered = true;
    }
    tty.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    tty.c_oflag |= OPOST;
    tty.c_lflag &= ~(ECHO | ECHONL | ICANON | IEXTEN);
    if (!allow_signals) {
        tty.c_lflag &= ~ISIG;
    }
    tty.c_cc[VMIN] = 1;
    tty.c_cc[VTIME] = 0;
    tcsetattr(STDIN_FILENO, TCSANOW, &tty);
}

static gboolean stdio_read_ready(gint fd, GIOCondition cond, gpointer opaque);

static void stdio_update_read_watch(StdioChardev *s)
{
    bool want = s->parent.fe_ops && !s->input_blocked && !s->eof;

    if (want && !s->read_src) {
        s->read_src = g_unix_fd_source_new(STDIN_FILENO, G_IO_IN | G_IO_HUP | G_IO_ERR);
        g_source_set_callback(s->read_src, G_SOURCE_FUNC(stdio_read_ready), s, NULL);
        g_source_attach(s->read_src, main_loop_context());
    } else if (!want && s->read_src) {
        g_source_destroy(s->read_src);
        g_source_unref(s->read_src);
        s->read_src = NULL;
    }
}

static gboolean stdio_read_ready(gint fd, GIOCondition cond, gpointer opaque)
{
    StdioChardev *s = opaque;
    guint8 buf[STDIO_READ_CHUNK];
    size_t want = chardev_frontend_can_receive(&s->parent);
    ssize_t n;

    if (want == 0) {
        s->input_blocked = true;
        stdio_update_read_watch(s);
        return G_SOURCE_REMOVE;
    }
    n = read(fd, buf, MIN(want, sizeof(buf)));
    if (n > 0) {
        chardev_frontend_receive(&s->parent, buf, n);
        return G_SOURCE_CONTINUE;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
        return G_SOURCE_CONTINUE;
    }
    s->eof = true;
    stdio_update_read_watch(s);
    chardev_frontend_closed(&s->parent);
    return G_SOURCE_REMOVE;
}

static bool stdio_open(Chardev *chr, OptList *opts, GError **errp)
{
    bool allow_signals;

    if (stdio_in_use) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_BUSY,
                    "cannot use stdio by multiple character devices");
        return false;
    }
    if (!chardev_opt_get_bool(opts, "signal", true, &allow_signals, errp)) {
        return false;
    }
    stdio_in_use = true;
    stdio_setup_terminal(allow_signals);
    return true;
}

static ssize_t stdio_write_locked(Chardev *chr, const guint8 *buf, size_t len)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = write(STDOUT_FILENO, buf + done, len - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = { .fd = STDOUT_FILENO, .events = POLLOUT };
            poll(&pfd, 1, -1);
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        done += n;
    }
    return len;
}

static void stdio_frontend_changed(Chardev *chr)
{
    stdio_update_read_watch((StdioChardev *)chr);
}

static void stdio_accept_input(Chardev *chr)
{
    StdioChardev *s = (StdioChardev *)chr;

    s->input_blocked = false;
    stdio_update_read_watch(s);
}

static void stdio_close(Chardev *chr)
{
    StdioChardev *s = (StdioChardev *)chr;

    s->eof = true;
    stdio_update_read_watch(s);
    stdio_restore_terminal();
    stdio_in_use = false;
}

const ChardevDriver chardev_driver_stdio = {
    .name = "stdio",
    .instance_size = sizeof(StdioChardev),
    .keys = stdio_keys,
    .open = stdio_open,
    .write_locked = stdio_write_locked,
    .frontend_changed = stdio_frontend_changed,
    .accept_input = stdio_accept_input,
    .close = stdio_close,
};
