/*
 * Chardev core: the registry of chardevs by id, creating one from an option
 * string or a legacy short form, attaching the one frontend, and the write
 * path every thread may use.
 */
#include <string.h>

#include "chardev/chardev-internal.h"

static GHashTable *chardev_registry;   /* id -> Chardev */
static GPtrArray *chardev_order;       /* creation order, for cleanup */
/* Closed chardevs a frontend still points at; kept so late writes are safe. */
static GPtrArray *chardev_closed;

static const ChardevDriver *const chardev_drivers[] = {
    &chardev_driver_socket,
    &chardev_driver_file,
    &chardev_driver_stdio,
    &chardev_driver_null,
};

/* Other names QEMU accepts for a backend. */
static const struct {
    const char *alias;
    const char *name;
} chardev_aliases[] = {
    { "unix", "socket" },
    { "tcp", "socket" },
};

static const ChardevDriver *chardev_driver_find(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(chardev_aliases); i++) {
        if (!strcmp(name, chardev_aliases[i].alias)) {
            name = chardev_aliases[i].name;
            break;
        }
    }
    for (size_t i = 0; i < G_N_ELEMENTS(chardev_drivers); i++) {
        if (!strcmp(name, chardev_drivers[i]->name)) {
            return chardev_drivers[i];
        }
    }
    return NULL;
}

Chardev *chardev_new_from_parsed(OptList *opts, GError **errp)
{
    const char *backend = opts_get(opts, "backend");
    const char *id = opts_get(opts, "id");
    const ChardevDriver *drv;
    Chardev *chr;

    if (!id) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "chardev: no id specified");
        return NULL;
    }
    if (!backend) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "chardev: \"%s\" missing backend", id);
        return NULL;
    }
    drv = chardev_driver_find(backend);
    if (!drv) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "unknown chardev backend '%s'", backend);
        return NULL;
    }
    if (chardev_find(id)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_EXISTS,
                    "Duplicate ID '%s' for chardev", id);
        return NULL;
    }

    /* Check unknown keys before the backend opens anything. */
    const char *mux = opts_get(opts, "mux");
    if (mux && strcmp(mux, "off") != 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "chardev: mux=on is not supported");
        return NULL;
    }
    if (drv->keys) {
        for (const char *const *k = drv->keys; *k; k++) {
            (void)opts_get(opts, *k);
        }
    }
    if (!opts_check_all_used(opts, errp)) {
        return NULL;
    }

    chr = g_malloc0(drv->instance_size);
    chr->drv = drv;
    chr->id = g_strdup(id);
    chr->output_limit = CHARDEV_OUTPUT_LIMIT_DEFAULT;
    g_mutex_init(&chr->write_lock);

    if (!drv->open(chr, opts, errp)) {
        g_mutex_clear(&chr->write_lock);
        g_free(chr->id);
        g_free(chr);
        return NULL;
    }

    if (!chardev_registry) {
        chardev_registry = g_hash_table_new(g_str_hash, g_str_equal);
        chardev_order = g_ptr_array_new();
    }
    g_hash_table_insert(chardev_registry, chr->id, chr);
    g_ptr_array_add(chardev_order, chr);
    return chr;
}

bool chardev_opt_get_bool(OptList *opts, const char *key, bool def, bool *out,
                          GError **errp)
{
    g_autoptr(GError) err = NULL;

    *out = opts_get_bool(opts, key, def, &err);
    if (err) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "Parameter '%s' expects 'on' or 'off'", key);
        return false;
    }
    return true;
}

Chardev *chardev_new_from_opts(const char *str, GError **errp)
{
    g_autoptr(OptList) opts = opts_parse_ext(str, "backend", OPTS_NO_PREFIX_IS_OFF,
                                             errp);

    if (!opts) {
        return NULL;
    }
    return chardev_new_from_parsed(opts, errp);
}

/* "HOST:PORT" or "[V6ADDR]:PORT"; an empty host means any address. */
static bool chardev_legacy_split_hostport(const char *hp, OptList *opts,
                                          GError **errp)
{
    const char *colon = strrchr(hp, ':');
    g_autofree char *host = NULL;

    if (!colon) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "chardev: tcp: expected HOST:PORT in '%s'", hp);
        return false;
    }
    host = g_strndup(hp, colon - hp);
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        char *inner = g_strndup(host + 1, strlen(host) - 2);
        g_free(host);
        host = inner;
    }
    opts_set(opts, "host", host);
    opts_set(opts, "port", colon + 1);
    return true;
}

Chardev *chardev_new_from_legacy(const char *spec, const char *id_hint, GError **errp)
{
    g_autoptr(OptList) opts = opts_new();

    if (!strcmp(spec, "none")) {
        return NULL;
    }
    if (g_str_has_prefix(spec, "chardev:")) {
        Chardev *chr = chardev_find(spec + strlen("chardev:"));
        if (!chr) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                        "chardev '%s' not found", spec + strlen("chardev:"));
        }
        return chr;
    }

    opts_set(opts, "id", id_hint);
    if (!strcmp(spec, "stdio") || !strcmp(spec, "null")) {
        opts_set(opts, "backend", spec);
    } else if (g_str_has_prefix(spec, "file:")) {
        opts_set(opts, "backend", "file");
        opts_set(opts, "path", spec + strlen("file:"));
    } else if (g_str_has_prefix(spec, "unix:") || g_str_has_prefix(spec, "tcp:")) {
        bool is_unix = spec[0] == 'u';
        const char *addr = strchr(spec, ':') + 1;
        const char *comma = strchr(addr, ',');
        g_autofree char *target = comma ? g_strndup(addr, comma - addr)
                                        : g_strdup(addr);

        opts_set(opts, "backend", "socket");
        if (is_unix) {
            opts_set(opts, "path", target);
        } else if (!chardev_legacy_split_hostport(target, opts, errp)) {
            return NULL;
        }
        if (comma) {
            /* The options after the address add to (or override) it. */
            g_autoptr(OptList) extra = opts_parse_ext(comma + 1, NULL,
                                                      OPTS_NO_PREFIX_IS_OFF, errp);
            if (!extra) {
                return NULL;
            }
            opts_merge(opts, extra);
        }
    } else if (g_str_has_prefix(spec, "mon:")) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "chardev: multiplexing with 'mon:' is not supported");
        return NULL;
    } else {
        size_t n = strcspn(spec, ":,");
        g_autofree char *name = g_strndup(spec, n);
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "unknown chardev backend '%s'", name);
        return NULL;
    }
    return chardev_new_from_parsed(opts, errp);
}

Chardev *chardev_find(const char *id)
{
    if (!chardev_registry) {
        return NULL;
    }
    return g_hash_table_lookup(chardev_registry, id);
}

const char *chardev_id(Chardev *chr)
{
    return chr->id;
}

bool chardev_attach_frontend(Chardev *chr, const CharFrontendOps *ops, void *opaque,
                             GError **errp)
{
    if (chr->fe_ops) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_BUSY,
                    "Device '%s' is in use", chr->id);
        return false;
    }
    chr->fe_ops = ops;
    chr->fe_opaque = opaque;
    if (chr->closed) {
        return true;
    }
    if (chr->drv->frontend_changed) {
        chr->drv->frontend_changed(chr);
    }
    if (!chr->drv->is_connected || chr->drv->is_connected(chr)) {
        chardev_frontend_opened(chr);
    }
    return true;
}

void chardev_detach_frontend(Chardev *chr)
{
    chr->fe_ops = NULL;
    chr->fe_opaque = NULL;
    if (!chr->closed && chr->drv->frontend_changed) {
        chr->drv->frontend_changed(chr);
    }
}

void chardev_accept_input(Chardev *chr)
{
    if (!chr->closed && chr->drv->accept_input) {
        chr->drv->accept_input(chr);
    }
}

void chardev_set_output_limit(Chardev *chr, size_t limit)
{
    g_mutex_lock(&chr->write_lock);
    chr->output_limit = limit ? limit : G_MAXSIZE;
    g_mutex_unlock(&chr->write_lock);
}

ssize_t chardev_write(Chardev *chr, const void *buf, size_t len)
{
    ssize_t ret;

    if (!chr) {
        return len;
    }
    g_mutex_lock(&chr->write_lock);
    ret = chr->closed ? (ssize_t)len : chr->drv->write_locked(chr, buf, len);
    g_mutex_unlock(&chr->write_lock);
    return ret;
}

bool chardev_is_stdio(Chardev *chr)
{
    return chr && chr->drv == &chardev_driver_stdio;
}

void chardev_cleanup_all(void)
{
    if (!chardev_order) {
        return;
    }
    for (guint i = chardev_order->len; i-- > 0;) {
        Chardev *chr = g_ptr_array_index(chardev_order, i);
        g_hash_table_remove(chardev_registry, chr->id);
        g_mutex_lock(&chr->write_lock);
        chr->closed = true;         /* no writer reaches the backend from now */
        g_mutex_unlock(&chr->write_lock);
        chr->drv->close(chr);
        if (chr->fe_ops) {
            /* A monitor or device may still write (an event at exit). */
            if (!chardev_closed) {
                chardev_closed = g_ptr_array_new();
            }
            g_ptr_array_add(chardev_closed, chr);
            continue;
        }
        g_mutex_clear(&chr->write_lock);
        g_free(chr->id);
        g_free(chr);
    }
    g_ptr_array_set_size(chardev_order, 0);
}

size_t chardev_frontend_can_receive(Chardev *chr)
{
    if (!chr->fe_ops) {
        return 0;
    }
    if (!chr->fe_ops->can_receive) {
        return 4096;
    }
    return chr->fe_ops->can_receive(chr->fe_opaque);
}

void chardev_frontend_receive(Chardev *chr, const guint8 *buf, size_t len)
{
    if (chr->fe_ops && chr->fe_ops->receive) {
        chr->fe_ops->receive(chr->fe_opaque, buf, len);
    }
}

void chardev_frontend_opened(Chardev *chr)
{
    if (chr->fe_ops && chr->fe_ops->opened) {
        chr->fe_ops->opened(chr->fe_opaque);
    }
}

void chardev_frontend_closed(Chardev *chr)
{
    if (chr->fe_ops && chr->fe_ops->closed) {
        chr->fe_ops->closed(chr->fe_opaque);
    }
}
