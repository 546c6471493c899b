/*
 * Stand-ins for the main loop and the monitor's fd table: the listener
 * attaches to the default GMainContext, and fd: names come from a table
 * the test fills.
 */
#include <glib.h>

#include "system/main-loop.h"
#include "system/monitor.h"
#include "stubs.h"

static GHashTable *stub_fds;

GMainContext *main_loop_context(void)
{
    return g_main_context_default();
}

void stub_monitor_add_fd(const char *name, int fd)
{
    if (!stub_fds) {
        stub_fds = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    }
    g_hash_table_insert(stub_fds, g_strdup(name), GINT_TO_POINTER(fd));
}

int monitor_fd_take(const char *fdname)
{
    gpointer key, value;

    if (!stub_fds || !g_hash_table_steal_extended(stub_fds, fdname, &key, &value)) {
        return -1;
    }
    g_free(key);
    return GPOINTER_TO_INT(value);
}
