/*
 * Parser for QEMU-style comma-separated option strings.
 */
#include <errno.h>
#include <string.h>
#include <stdlib.h>

#include "util/option.h"

G_DEFINE_QUARK(ferry-option-error-quark, ferry_option_error)

typedef struct OptEntry {
    char *key;
    char *value;
    bool used;
} OptEntry;

struct OptList {
    GArray *entries;    /* OptEntry */
};

static void opt_entry_clear(gpointer p)
{
    OptEntry *e = p;
    g_free(e->key);
    g_free(e->value);
}

OptList *opts_new(void)
{
    OptList *opts = g_new0(OptList, 1);
    opts->entries = g_array_new(FALSE, TRUE, sizeof(OptEntry));
    g_array_set_clear_func(opts->entries, opt_entry_clear);
    return opts;
}

void opts_free(OptList *opts)
{
    if (!opts) {
        return;
    }
    g_array_unref(opts->entries);
    g_free(opts);
}

static OptEntry *opts_find(OptList *opts, const char *key)
{
    for (guint i = 0; i < opts->entries->len; i++) {
        OptEntry *e = &g_array_index(opts->entries, OptEntry, i);
        if (strcmp(e->key, key) == 0) {
            return e;
        }
    }
    return NULL;
}

void opts_set(OptList *opts, const char *key, const char *value)
{
    OptEntry *e = opts_find(opts, key);
    if (e) {
        g_free(e->value);
        e->value = g_strdup(value);
        return;
    }
    OptEntry n = { .key = g_strdup(key), .value = g_strdup(value) };
    g_array_append_val(opts->entries, n);
}

/* Read up to an unescaped ',' (or '=' when @stop_at_eq); ",," is a comma. */
static const char *opts_scan(const char *p, bool stop_at_eq, GString *out)
{
    while (*p) {
        if (*p == ',') {
            if (p[1] == ',') {
                g_string_append_c(out, ',');
                p += 2;
                continue;
            }
            break;
        }
        if (stop_at_eq && *p == '=') {
            break;
        }
        g_string_append_c(out, *p++);
    }
    return p;
}

OptList *opts_parse(const char *str, const char *implied_key, GError **errp)
{
    return opts_parse_ext(str, implied_key, 0, errp);
}

OptList *opts_parse_ext(const char *str, const char *implied_key, unsigned flags,
                        GError **errp)
{
    OptList *opts = opts_new();
    const char *p = str;
    bool first = true;

    while (*p) {
        g_autoptr(GString) key = g_string_new(NULL);
        g_autoptr(GString) value = g_string_new(NULL);

        p = opts_scan(p, true, key);
        if (*p == '=') {
            p = opts_scan(p + 1, false, value);
            if (key->len == 0) {
                g_set_error(errp, FERRY_OPTION_ERROR, 0,
                            "Expected parameter name before '=' in '%s'", str);
                opts_free(opts);
                return NULL;
            }
            opts_set(opts, key->str, value->str);
        } else if (first && implied_key) {
            opts_set(opts, implied_key, key->str);
        } else if ((flags & OPTS_NO_PREFIX_IS_OFF) && key->len > 2 &&
                   g_str_has_prefix(key->str, "no")) {
            opts_set(opts, key->str + 2, "off");
        } else if (key->len > 0) {
            /* A bare word means "on", as QEMU's boolean shorthand. */
            opts_set(opts, key->str, "on");
        }
        if (*p == ',') {
            p++;
        }
        first = false;
    }
    return opts;
}

void opts_merge(OptList *dst, const OptList *src)
{
    for (guint i = 0; i < src->entries->len; i++) {
        OptEntry *e = &g_array_index(src->entries, OptEntry, i);
        opts_set(dst, e->key, e->value);
    }
}

const char *opts_get(OptList *opts, const char *key)
{
    OptEntry *e = opts_find(opts, key);
    if (!e) {
        return NULL;
    }
    e->used = true;
    return e->value;
}

bool opts_has(OptList *opts, const char *key)
{
    return opts_find(opts, key) != NULL;
}

bool parse_bool_word(const char *str, bool *out)
{
    static const char *const yes[] = { "on", "yes", "true", "y", NULL };
    static const char *const no[] = { "off", "no", "false", "n", NULL };
    for (int i = 0; yes[i]; i++) {
        if (g_ascii_strcasecmp(str, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (g_ascii_strcasecmp(str, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

bool opts_get_bool(OptList *opts, const char *key, bool def, GError **errp)
{
    const char *v = opts_get(opts, key);
    bool b;
    if (!v) {
        return def;
    }
    if (!parse_bool_word(v, &b)) {
        g_set_error(errp, FERRY_OPTION_ERROR, 0,
                    "Parameter '%s' expects 'on' or 'off', not '%s'", key, v);
        return def;
    }
    return b;
}

bool parse_size(const char *str, uint64_t default_unit, uint64_t *out)
{
    char *end;
    double frac = 0;
    uint64_t mult = default_unit;

    if (!str || !g_ascii_isdigit(*str)) {
        return false;
    }
    errno = 0;
    uint64_t whole = g_ascii_strtoull(str, &end, 10);
    if (errno) {
        return false;
    }
    if (*end == '.') {
        char *fend;
        frac = g_ascii_strtod(end, &fend);
        end = fend;
    }
    if (*end) {
        switch (g_ascii_toupper(*end)) {
        case 'B': mult = 1; break;
        case 'K': mult = 1ULL << 10; break;
        case 'M': mult = 1ULL << 20; break;
        case 'G': mult = 1ULL << 30; break;
        case 'T': mult = 1ULL << 40; break;
        case 'P': mult = 1ULL << 50; break;
        case 'E': mult = 1ULL << 60; break;
        default: return false;
        }
        end++;
        if (*end == 'i' || *end == 'I') {
            end++;
        }
        if ((*end == 'b' || *end == 'B') && mult != 1) {
            end++;
        }
        if (*end) {
            return false;
        }
    } else if (frac != 0) {
        /* A fraction of a byte-counted unit makes no sense. */
        if (default_unit == 1) {
            return false;
        }
    }
    if (whole > UINT64_MAX / mult) {
        return false;
    }
    *out = whole * mult + (uint64_t)(frac * (double)mult);
    return true;
}

bool opts_get_size(OptList *opts, const char *key, uint64_t def, uint64_t *out,
                   GError **errp)
{
    const char *v = opts_get(opts, key);
    if (!v) {
        *out = def;
        return true;
    }
    if (!parse_size(v, 1, out)) {
        g_set_error(errp, FERRY_OPTION_ERROR, 0,
                    "Parameter '%s' expects a size (e.g. 512M, 2G), not '%s'", key, v);
        return false;
    }
    return true;
}

bool opts_get_uint(OptList *opts, const char *key, uint64_t def, uint64_t *out,
                   GError **errp)
{
    const char *v = opts_get(opts, key);
    char *end;
    if (!v) {
        *out = def;
        return true;
    }
    errno = 0;
    *out = g_ascii_strtoull(v, &end, 0);
    if (!g_ascii_isdigit(*v) || *end || errno) {
        g_set_error(errp, FERRY_OPTION_ERROR, 0,
                    "Parameter '%s' expects a number, not '%s'", key, v);
        return false;
    }
    return true;
}

bool opts_check_all_used(OptList *opts, GError **errp)
{
    for (guint i = 0; i < opts->entries->len; i++) {
        OptEntry *e = &g_array_index(opts->entries, OptEntry, i);
        if (!e->used) {
            g_set_error(errp, FERRY_OPTION_ERROR, 0, "Invalid parameter '%s'", e->key);
            return false;
        }
    }
    return true;
}

unsigned opts_count(OptList *opts)
{
    return opts->entries->len;
}

const char *opts_key_at(OptList *opts, unsigned index)
{
    return g_array_index(opts->entries, OptEntry, index).key;
}
