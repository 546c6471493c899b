/*
 * QEMU-style option strings: "value,key=value,key2=value2". A comma inside
 * a value is written ",,". The first element may omit its key ("implied
 * key": -drive's "file", -machine's "type"). Keys keep their order;
 * repeated keys keep the last value.
 */
#ifndef UTIL_OPTION_H
#define UTIL_OPTION_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

typedef struct OptList OptList;

typedef enum OptsParseFlags {
    /*
     * A bare "noX" sets X to "off" ("nowait", "noserver"): the short form
     * QEMU still accepts for -chardev. Not the default because elsewhere a
     * bare word is a key set to "on", whatever it begins with.
     */
    OPTS_NO_PREFIX_IS_OFF = 1u << 0,
} OptsParseFlags;

OptList *opts_parse(const char *str, const char *implied_key, GError **errp);
/* opts_parse() with OptsParseFlags; opts_parse() passes none. */
OptList *opts_parse_ext(const char *str, const char *implied_key, unsigned flags,
                        GError **errp);
/*
 * An empty list to fill with opts_set(), for settings that come from
 * short forms rather than an option string ("-serial unix:PATH").
 */
OptList *opts_new(void);
void opts_free(OptList *opts);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(OptList, opts_free)

/* Set @key to @value; a key already present keeps its place. */
void opts_set(OptList *opts, const char *key, const char *value);

/* Merge @src into @dst (later values win), as repeated -machine options do. */
void opts_merge(OptList *dst, const OptList *src);

const char *opts_get(OptList *opts, const char *key);
bool opts_has(OptList *opts, const char *key);
/* on/off/yes/no/true/false; @def when absent. */
bool opts_get_bool(OptList *opts, const char *key, bool def, GError **errp);
/* Byte count with an optional K/M/G/T suffix (powers of 1024). */
bool opts_get_size(OptList *opts, const char *key, uint64_t def, uint64_t *out,
                   GError **errp);
bool opts_get_uint(OptList *opts, const char *key, uint64_t def, uint64_t *out,
                   GError **errp);

/*
 * Fail naming the first key that was never read, e.g. for "-drive
 * file=x,colour=red": "Invalid parameter 'colour'".
 */
bool opts_check_all_used(OptList *opts, GError **errp);

/* Number of keys (for "no parameters given" checks). */
unsigned opts_count(OptList *opts);
const char *opts_key_at(OptList *opts, unsigned index);

/*
 * Parse a size: digits with an optional fractional part and a suffix
 * B/K/M/G/T/P/E (case-insensitive, powers of 1024). @default_unit scales a
 * bare number (1 for bytes; 1 MiB for -m). Returns false on junk/overflow.
 */
bool parse_size(const char *str, uint64_t default_unit, uint64_t *out);
bool parse_bool_word(const char *str, bool *out);

#define FERRY_OPTION_ERROR ferry_option_error_quark()
GQuark ferry_option_error_quark(void);

#endif
