/*
 * The JSON stream parser behind QMP: a byte-at-a-time lexer, a splitter
 * that cuts the token stream into top-level values by counting brackets,
 * and a recursive-descent parser that turns one value's tokens into a
 * JsonNode. Error texts are QEMU's ("JSON parse error, ..."), since
 * clients and tests match them.
 *
 * After a lexical error the lexer skips input until a bracket or brace, a
 * control character (a line end) or a byte that is never valid UTF-8
 * (0xFE, 0xFF), so one bad line does not poison the connection.
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "system/monitor/monitor-internal.h"

#define JSON_MAX_TOKEN_SIZE   (64u << 20)
#define JSON_MAX_TOKEN_COUNT  (2u << 20)
#define JSON_MAX_NESTING      1024

typedef enum JsonTokenType {
    TOK_LCURLY,
    TOK_RCURLY,
    TOK_LSQUARE,
    TOK_RSQUARE,
    TOK_COLON,
    TOK_COMMA,
    TOK_STRING,
    TOK_INTEGER,
    TOK_FLOAT,
    TOK_KEYWORD,
    TOK_ERROR,
} JsonTokenType;

typedef struct JsonToken {
    JsonTokenType type;
    char text[];
} JsonToken;

typedef enum JsonLexState {
    LEX_START,
    LEX_RECOVERY,
    LEX_STRING,
    LEX_STRING_ESCAPE,
    LEX_MINUS,          /* "-" */
    LEX_ZERO,           /* "0", "-0" */
    LEX_INT,            /* "12" */
    LEX_FRAC_START,     /* "1." */
    LEX_FRAC,           /* "1.5" */
    LEX_EXP_START,      /* "1e" */
    LEX_EXP_SIGN,       /* "1e-" */
    LEX_EXP,            /* "1e5" */
    LEX_KEYWORD,
} JsonLexState;

struct QmpJsonParser {
    QmpJsonEmitFn emit;
    void *opaque;
    JsonLexState state;
    char quote;
    GString *tok;           /* text of the token being lexed */
    GPtrArray *tokens;      /* JsonToken of the value being collected */
    int braces;
    int brackets;
    size_t token_bytes;
};

/* ---- parser: tokens of one value -> JsonNode ---- */

typedef struct JsonParseCtx {
    GPtrArray *tokens;
    guint pos;
    GError *err;
} JsonParseCtx;

static JsonNode *json_parse_value(JsonParseCtx *ctx);

static void G_GNUC_PRINTF(2, 3) json_parse_error(JsonParseCtx *ctx, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    if (ctx->err) {
        return;     /* the first error is the one reported */
    }
    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    ctx->err = g_error_new(QMP_ERROR, QMP_ERROR_GENERIC, "JSON parse error, %s", msg);
}

static JsonToken *json_peek(JsonParseCtx *ctx)
{
    return ctx->pos < ctx->tokens->len ? g_ptr_array_index(ctx->tokens, ctx->pos) : NULL;
}

static JsonToken *json_pop(JsonParseCtx *ctx)
{
    JsonToken *t = json_peek(ctx);

    if (t) {
        ctx->pos++;
    }
    return t;
}

static int json_hex4(const char *s)
{
    int v = 0;

    for (int i = 0; i < 4; i++) {
        if (!g_ascii_isxdigit(s[i])) {
            return -1;
        }
        v = (v << 4) | g_ascii_xdigit_value(s[i]);
    }
    return v;
}

static bool json_unichar_ok(gint64 cp)
{
    return cp > 0 && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
}

/* Decode a quoted token ("..." or '...'); NULL with ctx->err set. */
static char *json_decode_string(JsonParseCtx *ctx, const char *text)
{
    g_autoptr(GString) out = g_string_new(NULL);
    char quote = text[0];
    const char *p = text + 1;

    while (*p && *p != quote) {
        if (*p != '\\') {
            gunichar c = g_utf8_get_char_validated(p, -1);
            if (c == (gunichar)-1 || c == (gunichar)-2) {
                json_parse_error(ctx, "invalid UTF-8 sequence in string");
                return NULL;
            }
            const char *next = g_utf8_next_char(p);
            g_string_append_len(out, p, next - p);
            p = next;
            continue;
        }

        const char *esc = p++;
        char e = *p++;
        switch (e) {
        case '"':
        case '\'':
        case '\\':
        case '/':
            g_string_append_c(out, e);
            break;
        case 'b':
            g_string_append_c(out, '\b');
            break;
        case 'f':
            g_string_append_c(out, '\f');
            break;
        case 'n':
            g_string_append_c(out, '\n');
            break;
        case 'r':
            g_string_append_c(out, '\r');
            break;
        case 't':
            g_string_append_c(out, '\t');
            break;
        case 'u': {
            gint64 cp = json_hex4(p);
            size_t seen = strnlen(p, 4);

            p += seen;
            if (cp >= 0xD800 && cp <= 0xDBFF && p[0] == '\\' && p[1] == 'u') {
                int low = json_hex4(p + 2);
                if (low >= 0xDC00 && low <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    p += 6;
                } else {
                    cp = -1;
                }
            }
            if (seen < 4 || !json_unichar_ok(cp)) {
                json_parse_error(ctx, "%.*s is not a valid Unicode character",
                                 (int)(p - esc), esc);
                return NULL;
            }
            g_string_append_unichar(out, (gunichar)cp);
            break;
        }
        default:
            json_parse_error(ctx, "invalid escape sequence in string");
            return NULL;
        }
    }
    return g_string_free(g_steal_pointer(&out), FALSE);
}

static JsonNode *json_parse_literal(JsonParseCtx *ctx)
{
    JsonToken *t = json_pop(ctx);
    JsonNode *node;

    switch (t->type) {
    case TOK_STRING: {
        char *s = json_decode_string(ctx, t->text);
        if (!s) {
            return NULL;
        }
        node = json_node_init_string(json_node_alloc(), s);
        g_free(s);
        return node;
    }
    case TOK_INTEGER: {
        char *end;
        gint64 v;

        errno = 0;
        v = g_ascii_strtoll(t->text, &end, 10);
        if (errno != ERANGE) {
            return json_node_init_int(json_node_alloc(), v);
        }
        /* Beyond 64 bits signed: carry it as a number, as QEMU does past u64. */
        return json_node_init_double(json_node_alloc(), g_ascii_strtod(t->text, NULL));
    }
    case TOK_FLOAT:
        return json_node_init_double(json_node_alloc(), g_ascii_strtod(t->text, NULL));
    default:
        g_assert_not_reached();
    }
}

static JsonNode *json_parse_keyword(JsonParseCtx *ctx)
{
    JsonToken *t = json_pop(ctx);

    if (!strcmp(t->text, "true")) {
        return json_node_init_boolean(json_node_alloc(), TRUE);
    }
    if (!strcmp(t->text, "false")) {
        return json_node_init_boolean(json_node_alloc(), FALSE);
    }
    if (!strcmp(t->text, "null")) {
        return json_node_init_null(json_node_alloc());
    }
    json_parse_error(ctx, "invalid keyword '%s'", t->text);
    return NULL;
}

static bool json_parse_member(JsonParseCtx *ctx, JsonObject *obj)
{
    g_autoptr(JsonNode) key = NULL;
    JsonNode *value;
    JsonToken *t;

    if (!json_peek(ctx)) {
        json_parse_error(ctx, "premature EOI");
        return false;
    }
    key = json_parse_value(ctx);
    if (!key || !JSON_NODE_HOLDS_VALUE(key) ||
        json_node_get_value_type(key) != G_TYPE_STRING) {
        json_parse_error(ctx, "key is not a string in object");
        return false;
    }
    t = json_pop(ctx);
    if (!t) {
        json_parse_error(ctx, "premature EOI");
        return false;
    }
    if (t->type != TOK_COLON) {
        json_parse_error(ctx, "missing : in object pair");
        return false;
    }
    value = json_parse_value(ctx);
    if (!value) {
        json_parse_error(ctx, "Missing value in dict");
        return false;
    }
    if (json_object_has_member(obj, json_node_get_string(key))) {
        json_node_unref(value);
        json_parse_error(ctx, "duplicate key");
        return false;
    }
    json_object_set_member(obj, json_node_get_string(key), value);
    return true;
}

static JsonNode *json_parse_object(JsonParseCtx *ctx)
{
    g_autoptr(JsonObject) obj = json_object_new();
    JsonNode *node;
    JsonToken *t;

    json_pop(ctx);      /* '{' */
    t = json_peek(ctx);
    if (!t) {
        json_parse_error(ctx, "premature EOI");
        return NULL;
    }
    if (t->type == TOK_RCURLY) {
        json_pop(ctx);
    } else {
        if (!json_parse_member(ctx, obj)) {
            return NULL;
        }
        for (;;) {
            t = json_pop(ctx);
            if (!t) {
                json_parse_error(ctx, "premature EOI");
                return NULL;
            }
            if (t->type == TOK_RCURLY) {
                break;
            }
            if (t->type != TOK_COMMA) {
                json_parse_error(ctx, "expected separator in dict");
                return NULL;
            }
            if (!json_parse_member(ctx, obj)) {
                return NULL;
            }
        }
    }
    node = json_node_new(JSON_NODE_OBJECT);
    json_node_take_object(node, g_steal_pointer(&obj));
    return node;
}

static JsonNode *json_parse_array(JsonParseCtx *ctx)
{
    g_autoptr(JsonArray) arr = json_array_new();
    JsonNode *node;
    JsonToken *t;

    json_pop(ctx);      /* '[' */
    t = json_peek(ctx);
    if (!t) {
        json_parse_error(ctx, "premature EOI");
        return NULL;
    }
    if (t->type == TOK_RSQUARE) {
        json_pop(ctx);
    } else {
        for (;;) {
            JsonNode *elem = json_parse_value(ctx);
            if (!elem) {
                json_parse_error(ctx, "expecting value");
                return NULL;
            }
            json_array_add_element(arr, elem);
            t = json_pop(ctx);
            if (!t) {
                json_parse_error(ctx, "premature EOI");
                return NULL;
            }
            if (t->type == TOK_RSQUARE) {
                break;
            }
            if (t->type != TOK_COMMA) {
                json_parse_error(ctx, "expected separator in list");
                return NULL;
            }
        }
    }
    node = json_node_new(JSON_NODE_ARRAY);
    json_node_take_array(node, g_steal_pointer(&arr));
    return node;
}

static JsonNode *json_parse_value(JsonParseCtx *ctx)
{
    JsonToken *t = json_peek(ctx);

    if (!t) {
        json_parse_error(ctx, "premature EOI");
        return NULL;
    }
    switch (t->type) {
    case TOK_LCURLY:
        return json_parse_object(ctx);
    case TOK_LSQUARE:
        return json_parse_array(ctx);
    case TOK_STRING:
    case TOK_INTEGER:
    case TOK_FLOAT:
        return json_parse_literal(ctx);
    case TOK_KEYWORD:
        return json_parse_keyword(ctx);
    default:
        json_parse_error(ctx, "expecting value");
        return NULL;
    }
}

static JsonNode *json_parse_tokens(GPtrArray *tokens, GError **errp)
{
    JsonParseCtx ctx = { .tokens = tokens };
    JsonNode *node = json_parse_value(&ctx);

    if (ctx.err) {
        if (node) {
            json_node_unref(node);
        }
        g_propagate_error(errp, ctx.err);
        return NULL;
    }
    return node;
}

/* ---- splitter: tokens -> one top-level value at a time ---- */

static void json_stream_emit(QmpJsonParser *p, JsonNode *value, GError *err)
{
    g_ptr_array_set_size(p->tokens, 0);
    p->braces = 0;
    p->brackets = 0;
    p->token_bytes = 0;
    p->emit(p->opaque, value, err);
}

static void json_stream_token(QmpJsonParser *p, JsonTokenType type, const GString *text)
{
    GError *err = NULL;
    JsonNode *value;
    JsonToken *t;

    switch (type) {
    case TOK_ERROR:
        json_stream_emit(p, NULL, g_error_new(QMP_ERROR, QMP_ERROR_GENERIC,
                                              "JSON parse error, stray '%s'", text->str));
        return;
    case TOK_LCURLY:
        p->braces++;
        break;
    case TOK_RCURLY:
        p->braces--;
        break;
    case TOK_LSQUARE:
        p->brackets++;
        break;
    case TOK_RSQUARE:
        p->brackets--;
        break;
    default:
        break;
    }

    if (p->token_bytes + text->len + 1 > JSON_MAX_TOKEN_SIZE) {
        json_stream_emit(p, NULL, g_error_new(QMP_ERROR, QMP_ERROR_GENERIC,
                                              "JSON token size limit exceeded"));
        return;
    }
    if (p->tokens->len + 1 > JSON_MAX_TOKEN_COUNT) {
        json_stream_emit(p, NULL, g_error_new(QMP_ERROR, QMP_ERROR_GENERIC,
                                              "JSON token count limit exceeded"));
        return;
    }
    if (p->braces + p->brackets > JSON_MAX_NESTING) {
        json_stream_emit(p, NULL, g_error_new(QMP_ERROR, QMP_ERROR_GENERIC,
                                              "JSON nesting depth limit exceeded"));
        return;
    }

    t = g_malloc(sizeof(*t) + text->len + 1);
    t->type = type;
    memcpy(t->text, text->str, text->len + 1);
    g_ptr_array_add(p->tokens, t);
    p->token_bytes += text->len;

    if ((p->braces > 0 || p->brackets > 0) && p->braces >= 0 && p->brackets >= 0) {
        return;     /* value still open */
    }
    value = json_parse_tokens(p->tokens, &err);
    json_stream_emit(p, value, err);
}

/* ---- lexer: bytes -> tokens ---- */

static void json_lex_finish(QmpJsonParser *p, JsonTokenType type)
{
    json_stream_token(p, type, p->tok);
    g_string_truncate(p->tok, 0);
    p->state = LEX_START;
}

static void json_lex_error(QmpJsonParser *p)
{
    json_stream_token(p, TOK_ERROR, p->tok);
    g_string_truncate(p->tok, 0);
    p->state = LEX_RECOVERY;
}

static void json_lex_structural(QmpJsonParser *p, JsonTokenType type, guint8 c)
{
    g_string_append_c(p->tok, c);
    json_lex_finish(p, type);
}

/* Consume @c in the current token or end the token before it. */
static bool json_lex_number_char(QmpJsonParser *p, guint8 c)
{
    bool digit = c >= '0' && c <= '9';

    switch (p->state) {
    case LEX_MINUS:
        p->state = c == '0' ? LEX_ZERO : digit ? LEX_INT : LEX_START;
        break;
    case LEX_ZERO:
        if (digit) {
            p->state = LEX_START;   /* leading zero: an error below */
        } else if (c == '.') {
            p->state = LEX_FRAC_START;
        } else {
            return false;
        }
        break;
    case LEX_INT:
        if (c == '.') {
            p->state = LEX_FRAC_START;
        } else if (c == 'e' || c == 'E') {
            p->state = LEX_EXP_START;
        } else if (!digit) {
            return false;
        }
        break;
    case LEX_FRAC_START:
        p->state = digit ? LEX_FRAC : LEX_START;
        break;
    case LEX_FRAC:
        if (c == 'e' || c == 'E') {
            p->state = LEX_EXP_START;
        } else if (!digit) {
            return false;
        }
        break;
    case LEX_EXP_START:
        p->state = (c == '+' || c == '-') ? LEX_EXP_SIGN : digit ? LEX_EXP : LEX_START;
        break;
    case LEX_EXP_SIGN:
        p->state = digit ? LEX_EXP : LEX_START;
        break;
    case LEX_EXP:
        if (!digit) {
            return false;
        }
        break;
    default:
        g_assert_not_reached();
    }
    g_string_append_c(p->tok, c);
    if (p->state == LEX_START) {
        json_lex_error(p);
    }
    return true;
}

static void json_lex_char(QmpJsonParser *p, guint8 c)
{
    for (;;) {
        switch (p->state) {
        case LEX_RECOVERY:
            if ((c < 0x20 && c != '\t') || c >= 0xFE ||
                c == '{' || c == '}' || c == '[' || c == ']') {
                p->state = LEX_START;
                continue;
            }
            return;

        case LEX_START:
            switch (c) {
            case ' ':
            case '\t':
            case '\r':
            case '\n':
                return;
            case '{':
                json_lex_structural(p, TOK_LCURLY, c);
                return;
            case '}':
                json_lex_structural(p, TOK_RCURLY, c);
                return;
            case '[':
                json_lex_structural(p, TOK_LSQUARE, c);
                return;
            case ']':
                json_lex_structural(p, TOK_RSQUARE, c);
                return;
            case ':':
                json_lex_structural(p, TOK_COLON, c);
                return;
            case ',':
                json_lex_structural(p, TOK_COMMA, c);
                return;
            case '"':
            case '\'':
                p->quote = c;
                p->state = LEX_STRING;
                break;
            case '-':
                p->state = LEX_MINUS;
                break;
            case '0':
                p->state = LEX_ZERO;
                break;
            default:
                if (c >= '1' && c <= '9') {
                    p->state = LEX_INT;
                } else if (c >= 'a' && c <= 'z') {
                    p->state = LEX_KEYWORD;
                } else {
                    g_string_append_c(p->tok, c);
                    json_lex_error(p);
                    return;
                }
            }
            g_string_append_c(p->tok, c);
            return;

        case LEX_STRING:
            g_string_append_c(p->tok, c);
            if (c == (guint8)p->quote) {
                json_lex_finish(p, TOK_STRING);
            } else if (c == '\\') {
                p->state = LEX_STRING_ESCAPE;
            } else if (c < 0x20 || c > 0xFD) {
                json_lex_error(p);
            }
            break;

        case LEX_STRING_ESCAPE:
            g_string_append_c(p->tok, c);
            if (c < 0x20 || c > 0xFD) {
                json_lex_error(p);
            } else {
                p->state = LEX_STRING;
            }
            break;

        case LEX_KEYWORD:
            if (c >= 'a' && c <= 'z') {
                g_string_append_c(p->tok, c);
                break;
            }
            if (c >= 0x80) {
                g_string_append_c(p->tok, c);
                json_lex_error(p);
                return;
            }
            json_lex_finish(p, TOK_KEYWORD);
            continue;

        default: {
            JsonLexState before = p->state;
            if (c >= 0x80) {
                g_string_append_c(p->tok, c);
                json_lex_error(p);
                return;
            }
            if (json_lex_number_char(p, c)) {
                return;
            }
            json_lex_finish(p, (before == LEX_ZERO || before == LEX_INT) ? TOK_INTEGER
                                                                        : TOK_FLOAT);
            continue;
        }
        }

        if (p->tok->len > JSON_MAX_TOKEN_SIZE) {
            g_string_truncate(p->tok, 0);
            p->state = LEX_RECOVERY;
            json_stream_emit(p, NULL, g_error_new(QMP_ERROR, QMP_ERROR_GENERIC,
                                                  "JSON token size limit exceeded"));
        }
        return;
    }
}

QmpJsonParser *qmp_json_parser_new(QmpJsonEmitFn emit, void *opaque)
{
    QmpJsonParser *p = g_new0(QmpJsonParser, 1);

    p->emit = emit;
    p->opaque = opaque;
    p->tok = g_string_new(NULL);
    p->tokens = g_ptr_array_new_with_free_func(g_free);
    p->state = LEX_START;
    return p;
}

void qmp_json_parser_feed(QmpJsonParser *p, const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        json_lex_char(p, (guint8)buf[i]);
    }
}

void qmp_json_parser_reset(QmpJsonParser *p)
{
    g_string_truncate(p->tok, 0);
    g_ptr_array_set_size(p->tokens, 0);
    p->state = LEX_START;
    p->braces = 0;
    p->brackets = 0;
    p->token_bytes = 0;
}

void qmp_json_parser_free(QmpJsonParser *p)
{
    if (!p) {
        return;
    }
    g_string_free(p->tok, TRUE);
    g_ptr_array_free(p->tokens, TRUE);
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
        if (p->tokens->len) {
            one.value = json_parse_tokens(p->tokens, &one.err);
        } else {
            one.err = g_error_new(QMP_ERROR, QMP_ERROR_GENERIC,
                                  "JSON parse error, expecting value");
        }
    }
    qmp_json_parser_free(p);
    if (one.err) {
        g_propagate_error(errp, one.err);
        return NULL;
    }
    return one.value;
}
