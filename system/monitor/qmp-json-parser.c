/*
 * The JSON stream reader behind QMP. json-glib parses; this file only does
 * what json-glib cannot do for a byte stream: cut it into top-level values
 * (following strings and bracket depth), rewrite QEMU's single-quoted
 * strings into strict JSON on the way, bound a value's size and nesting,
 * and resynchronise after bad input so one bad line does not poison the
 * connection.
 *
 * A value ends when its brackets balance, a top-level string at its
 * closing quote, and a bare top-level number or keyword at the first byte
 * that cannot continue it. Errors read "JSON parse error, <reason>"; after
 * one, input is dropped up to the next line end or the next '{' outside
 * any value.
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "system/monitor/monitor-internal.h"

#define JSON_MAX_VALUE_SIZE  (64u << 20)
#define JSON_MAX_NESTING     1024

struct QmpJsonParser {
    QmpJsonEmitFn emit;
    void *opaque;
    GString *value;     /* the value being collected, as strict JSON */
    gssize word;        /* offset in @value of the number/keyword being read, or -1 */
    guint depth;        /* open '{' and '[' */
    char quote;         /* the quote of the string we are in, or 0 */
    bool escape;        /* the last byte was a backslash inside a string */
    bool skipping;      /* after an error: dropping input until a resync point */
};

/* Bytes of a number or keyword; everything else outside strings is structure. */
static bool json_word_char(guint8 c)
{
    return g_ascii_isalnum(c) || c == '-' || c == '+' || c == '.';
}

static void json_drop_value(QmpJsonParser *p)
{
    /* Don't hold on to a huge value's buffer for the life of the connection. */
    if (p->value->allocated_len > 65536) {
        g_string_free(p->value, TRUE);
        p->value = g_string_new(NULL);
    } else {
        g_string_truncate(p->value, 0);
    }
    p->word = -1;
}

/* State is settled before @emit runs: it may reset the parser (peer gone). */
static void G_GNUC_PRINTF(2, 3) json_error(QmpJsonParser *p, const char *fmt, ...)
{
    g_autofree char *reason = NULL;
    va_list ap;

    va_start(ap, fmt);
    reason = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    json_drop_value(p);
    p->skipping = true;
    p->emit(p->opaque, NULL,
            g_error_new(QMP_ERROR, QMP_ERROR_GENERIC, "JSON parse error, %s", reason));
}

static void json_finish(QmpJsonParser *p)
{
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GError) err = NULL;
    JsonNode *node;

    if (!json_parser_load_from_data(parser, p->value->str, p->value->len, &err)) {
        /* "<data>:1:15: Parse error: ..." - a position inside one request is noise. */
        const char *reason = strstr(err->message, "Parse error: ");
        json_error(p, "%s", reason ? reason + strlen("Parse error: ") : err->message);
        return;
    }
    node = json_parser_steal_root(parser);
    if (!node) {
        json_error(p, "expecting value");
        return;
    }
    json_drop_value(p);
    p->emit(p->opaque, node, NULL);
}

/*
 * json-glib 1.6 wraps integers outside int64 (2^63 reads as -2^63, 2^64-1
 * as -1) instead of failing. Give such a literal a fraction so it arrives
 * as a double, which the argument checks then judge as a number.
 */
static void json_end_word(QmpJsonParser *p)
{
    const char *word = p->value->str + p->word;
    const char *digits = word + (word[0] == '-');
    size_t len = strlen(digits);

    p->word = -1;
    if (len > 18 && strspn(digits, "0123456789") == len) {
        errno = 0;
        g_ascii_strtoll(word, NULL, 10);
        if (errno == ERANGE) {
            g_string_append(p->value, ".0");
        }
    }
}

/*
 * After an error: follow strings and brackets without keeping them. A line
 * end, or a '{' outside the broken value, starts afresh; returns true when
 * @c is that '{' and must be read as the start of a value.
 */
static bool json_skip_byte(QmpJsonParser *p, guint8 c)
{
    if (c == '\n') {
        p->depth = 0;
        p->quote = 0;
        p->escape = false;
        p->skipping = false;
        return false;
    }
    if (p->quote) {
        if (p->escape) {
            p->escape = false;
        } else if (c == '\\') {
            p->escape = true;
        } else if (c == (guint8)p->quote) {
            p->quote = 0;
        }
        return false;
    }
    switch (c) {
    case '"':
    case '\'':
        p->quote = c;
        break;
    case '{':
        if (p->depth == 0) {
            p->skipping = false;
            return true;
        }
        p->depth++;
        break;
    case '[':
        p->depth++;
        break;
    case '}':
    case ']':
        if (p->depth) {
            p->depth--;
        }
        break;
    }
    return false;
}

/* Inside a string: rewrite 'single-quoted' strings and \' into strict JSON. */
static void json_string_byte(QmpJsonParser *p, guint8 c)
{
    if (c < 0x20) {
        json_error(p, "%s", c == '\n' ? "unterminated string" : "control character in string");
        if (c == '\n') {
            json_skip_byte(p, c);   /* the line end is itself the resync point */
        }
        return;
    }
    if (p->escape) {
        p->escape = false;
        if (c != '\'') {
            g_string_append_c(p->value, '\\');
        }
        g_string_append_c(p->value, c);
    } else if (c == '\\') {
        p->escape = true;
    } else if (c == (guint8)p->quote) {
        p->quote = 0;
        g_string_append_c(p->value, '"');
        if (p->depth == 0) {
            json_finish(p);
        }
    } else {
        if (c == '"') {
            g_string_append_c(p->value, '\\');  /* only reached inside '...' */
        }
        g_string_append_c(p->value, c);
    }
}

static void json_feed_byte(QmpJsonParser *p, guint8 c)
{
    if (p->word >= 0 && !json_word_char(c)) {
        json_end_word(p);
        if (p->depth == 0) {
            json_finish(p);
        }
    }
    if (p->skipping && !json_skip_byte(p, c)) {
        return;
    }
    if (p->quote) {
        json_string_byte(p, c);
        return;
    }

    switch (c) {
    case ' ':
    case '\t':
    case '\r':
    case '\n':
        if (p->depth) {
            g_string_append_c(p->value, c);   /* it may separate two words */
        }
        return;
    case '"':
    case '\'':
        p->quote = c;
        g_string_append_c(p->value, '"');
        return;
    case '{':
    case '[':
        if (++p->depth > JSON_MAX_NESTING) {
            json_error(p, "nesting deeper than %d levels", JSON_MAX_NESTING);
            return;
        }
        g_string_append_c(p->value, c);
        return;
    case '}':
    case ']':
        if (p->depth == 0) {
            break;
        }
        g_string_append_c(p->value, c);
        if (--p->depth == 0) {
            json_finish(p);
        }
        return;
    case ':':
    case ',':
        if (p->depth == 0) {
            break;
        }
        g_string_append_c(p->value, c);
        return;
    default:
        if (json_word_char(c)) {
            if (p->word < 0) {
                p->word = p->value->len;
            }
            g_string_append_c(p->value, c);
            return;
        }
    }

    /*
     * A byte that never occurs outside a string. Failing now rather than
     * when the brackets balance keeps a bad line from swallowing the next.
     */
    if (g_ascii_isprint(c)) {
        json_error(p, "stray '%c'", c);
    } else {
        json_error(p, "stray byte 0x%02x", c);
    }
}

QmpJsonParser *qmp_json_parser_new(QmpJsonEmitFn emit, void *opaque)
{
    QmpJsonParser *p = g_new0(QmpJsonParser, 1);

    p->emit = emit;
    p->opaque = opaque;
    p->value = g_string_new(NULL);
    p->word = -1;
    return p;
}

void qmp_json_parser_feed(QmpJsonParser *p, const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        json_feed_byte(p, (guint8)buf[i]);
        if (p->value->len > JSON_MAX_VALUE_SIZE) {
            json_error(p, "value larger than %u MiB", JSON_MAX_VALUE_SIZE >> 20);
        }
    }
}

void qmp_json_parser_reset(QmpJsonParser *p)
{
    json_drop_value(p);
    p->depth = 0;
    p->quote = 0;
    p->escape = false;
    p->skipping = false;
}

void qmp_json_parser_free(QmpJsonParser *p)
{
    if (!p) {
        return;
    }
    g_string_free(p->value, TRUE);
    g_free(p);
}

typedef struct JsonParseOne {
    JsonNode *value;
    GError *err;
    bool done;
} JsonParseOne;

static void json_parse_one_emit(void *opaque, JsonNode *value, GError *err)
{
    JsonParseOne *one = opaque;

    if (one->done) {
        if (value) {
            json_node_unref(value);
        }
        g_clear_error(&err);
        return;
    }
    one->done = true;
    one->value = value;
    one->err = err;
}

JsonNode *qmp_json_parse_string(const char *str, GError **errp)
{
    JsonParseOne one = { 0 };
    QmpJsonParser *p = qmp_json_parser_new(json_parse_one_emit, &one);

    qmp_json_parser_feed(p, str, strlen(str));
    qmp_json_parser_feed(p, "\n", 1);     /* ends a trailing number or keyword */
    if (!one.done) {
        one.err = g_error_new(QMP_ERROR, QMP_ERROR_GENERIC, "JSON parse error, %s",
                              p->depth ? "premature EOI" : "expecting value");
    }
    qmp_json_parser_free(p);
    if (one.err) {
        g_propagate_error(errp, one.err);
        return NULL;
    }
    return one.value;
}
