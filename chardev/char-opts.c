/*
 * Option strings for chardevs: "socket,id=mon0,path=/tmp/s,server=on".
 *
 * Keys and values are separated by '=', pairs by ','; ",," inside a value
 * stands for one comma. A bare word is a boolean set to on ("server"),
 * "noX" sets X to off ("nowait"), as QEMU's short forms do.
 */
#include <string.h>

#include "chardev/chardev-internal.h"

typedef struct ChardevOpt {
    char *key;
    char *value;
    bool used;
} ChardevOpt;

struct ChardevOpts {
    GPtrArray *items;   /* ChardevOpt, in order of appearance */
};

static void chardev_opt_free(gpointer p)
{
    ChardevOpt *opt = p;

    g_free(opt->key);
    g_free(opt->value);
    g_free(opt);
}

ChardevOpts *chardev_opts_new(void)
{
    ChardevOpts *opts = g_new0(ChardevOpts, 1);

    opts->items = g_ptr_array_new_with_free_func(chardev_opt_free);
    return opts;
}

void chardev_opts_free(ChardevOpts *opts)
{
    if (!opts) {
        return;
    }
    g_ptr_array_free(opts->items, TRUE);
    g_free(opts);
}

static ChardevOpt *chardev_opts_lookup(ChardevOpts *opts, const char *key)
{
    for (guint i = 0; i < opts->items->len; i++) {
        ChardevOpt *opt = g_ptr_array_index(opts->items, i);
        if (!strcmp(opt->key, key)) {
            return opt;
        }
    }
    return NULL;
}

void chardev_opts_set(ChardevOpts *opts, const char *key, const char *value)
{
    ChardevOpt *opt = chardev_opts_lookup(opts, key);

    if (opt) {
        g_free(opt->value);
        opt->value = g_strdup(value);
        return;
    }
    opt = g_new0(ChardevOpt, 1);
    opt->key = g_strdup(key);
    opt->value = g_strdup(value);
    g_ptr_array_add(opts->items, opt);
}

/* Read one element up to an unescaped ',' into @out; returns the rest. */
static const char *chardev_opts_next_element(const char *p, GString *out)
{
    g_string_truncate(out, 0);
    while (*p) {
        if (*p == ',') {
            if (p[1] == ',') {
                g_string_append_c(out, ',');
                p += 2;
                continue;
            }
            return p + 1;
        }
        g_string_append_c(out, *p++);
    }
    return p;
}

bool chardev_opts_parse(ChardevOpts *opts, const char *str, bool backend_first,
                        GError **errp)
{
    g_autoptr(GString) elem = g_string_new(NULL);
    const char *p = str;
    bool first = true;

    while (*p) {
        p = chardev_opts_next_element(p, elem);
        if (elem->len == 0) {
            first = false;
            continue;
        }
        char *eq = strchr(elem->str, '=');
        if (eq) {
            *eq = '\0';
            if (elem->str[0] == '\0') {
                g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                            "Invalid parameter ''");
                return false;
            }
            chardev_opts_set(opts, elem->str, eq + 1);
        } else if (first && backend_first) {
            chardev_opts_set(opts, "backend", elem->str);
        } else if (g_str_has_prefix(elem->str, "no") && elem->len > 2) {
            chardev_opts_set(opts, elem->str + 2, "off");
        } else {
            chardev_opts_set(opts, elem->str, "on");
        }
        first = false;
    }
    return true;
}

const char *chardev_opts_get(ChardevOpts *opts, const char *key)
{
    ChardevOpt *opt = chardev_opts_lookup(opts, key);

    if (!opt) {
        return NULL;
    }
    opt->used = true;
    return opt->value;
}

bool chardev_opts_get_bool(ChardevOpts *opts, const char *key, bool def,
                           bool *out, GError **errp)
{
    const char *v = chardev_opts_get(opts, key);

    if (!v) {
        *out = def;
        return true;
    }
    if (!strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "true") ||
        !strcmp(v, "y")) {
        *out = true;
        return true;
    }
    if (!strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "false") ||
        !strcmp(v, "n")) {
        *out = false;
        return true;
    }
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "Parameter '%s' expects 'on' or 'off'", key);
    return false;
}

bool chardev_opts_check_unused(ChardevOpts *opts, GError **errp)
{
    for (guint i = 0; i < opts->items->len; i++) {
        ChardevOpt *opt = g_ptr_array_index(opts->items, i);
        if (!opt->used) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "Invalid parameter '%s'", opt->key);
            return false;
        }
    }
    return true;
}
