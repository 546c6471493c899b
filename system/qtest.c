/*
 * The qtest protocol server. One command per line; every command gets
 * one reply line starting with "OK" or "FAIL".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "system/ioport.h"
#include "system/memory.h"
#include "system/qtest.h"

#define QTEST_MAX_TRANSFER (64u << 20)

typedef struct QtestServer {
    Chardev *chr;
    GString *inbuf;
    FILE *log;
    gint64 start_time;
} QtestServer;

static QtestServer qtest;

static bool qtest_parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !*s) {
        return false;
    }
    errno = 0;
    *out = strtoull(s, &end, 0);
    return errno == 0 && *end == '\0';
}

static int qtest_hex_nibble(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = (char)g_ascii_tolower(c);
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

static void qtest_read_sized(unsigned size, uint64_t addr, GString *reply)
{
    uint64_t v = 0;
    if (!guest_phys_read(addr, &v, size)) {
        v = io_dispatch_read(IO_SPACE_MMIO, addr, size);
    }
    g_string_append_printf(reply, "OK 0x%0*" G_GINT64_MODIFIER "x", (int)size * 2, v);
}

static void qtest_write_sized(unsigned size, uint64_t addr, uint64_t v, GString *reply)
{
    if (!guest_phys_write(addr, &v, size)) {
        io_dispatch_write(IO_SPACE_MMIO, addr, v, size);
    }
    g_string_append(reply, "OK");
}

static unsigned qtest_size_of(char suffix)
{
    switch (suffix) {
    case 'b': return 1;
    case 'w': return 2;
    case 'l': return 4;
    case 'q': return 8;
    default: return 0;
    }
}

/* The guest RAM that "@cmd ADDR LEN" names (*@len bytes), or NULL after a FAIL reply. */
static guint8 *qtest_read_range(char **words, const char *cmd, uint64_t *len, GString *reply)
{
    uint64_t addr;
    if (!qtest_parse_u64(words[1], &addr) || !qtest_parse_u64(words[2], len) ||
        *len > QTEST_MAX_TRANSFER) {
        g_string_append_printf(reply, "FAIL %s: expected ADDR LEN", cmd);
        return NULL;
    }
    g_autofree guint8 *buf = g_malloc0(*len ? *len : 1);
    if (*len && !guest_phys_read(addr, buf, *len)) {
        g_string_append_printf(reply, "FAIL %s: range is not guest RAM", cmd);
        return NULL;
    }
    return g_steal_pointer(&buf);
}

static void qtest_cmd_read(char **words, GString *reply)
{
    uint64_t len;
    g_autofree guint8 *buf = qtest_read_range(words, "read", &len, reply);

    if (!buf) {
        return;
    }
    g_string_append(reply, "OK 0x");
    for (uint64_t i = 0; i < len; i++) {
        g_string_append_printf(reply, "%02x", buf[i]);
    }
}

static void qtest_cmd_write(char **words, GString *reply)
{
    uint64_t addr, len;
    const char *hex = words[3];
    if (!qtest_parse_u64(words[1], &addr) || !qtest_parse_u64(words[2], &len) || !hex ||
        len > QTEST_MAX_TRANSFER) {
        g_string_append(reply, "FAIL write: expected ADDR LEN 0xDATA");
        return;
    }
    if (hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X')) {
        hex += 2;
    }
    g_autofree guint8 *buf = g_malloc0(len ? len : 1);
    size_t hexlen = strlen(hex);
    /* Missing trailing bytes are zero, as QEMU's qtest has it. */
    for (uint64_t i = 0; i < len && 2 * i + 1 < hexlen; i++) {
        int hi = qtest_hex_nibble(hex[2 * i]), lo = qtest_hex_nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            g_string_append(reply, "FAIL write: bad hex data");
            return;
        }
        buf[i] = (guint8)(hi << 4 | lo);
    }
    if (len && !guest_phys_write(addr, buf, len)) {
        g_string_append(reply, "FAIL write: range is not guest RAM");
        return;
    }
    g_string_append(reply, "OK");
}

static void qtest_cmd_memset(char **words, GString *reply)
{
    uint64_t addr, len, val;
    if (!qtest_parse_u64(words[1], &addr) || !qtest_parse_u64(words[2], &len) ||
        !qtest_parse_u64(words[3], &val) || len > QTEST_MAX_TRANSFER) {
        g_string_append(reply, "FAIL memset: expected ADDR LEN VALUE");
        return;
    }
    g_autofree guint8 *buf = g_malloc(len ? len : 1);
    memset(buf, (int)(val & 0xff), len);
    if (len && !guest_phys_write(addr, buf, len)) {
        g_string_append(reply, "FAIL memset: range is not guest RAM");
        return;
    }
    g_string_append(reply, "OK");
}

static void qtest_cmd_b64read(char **words, GString *reply)
{
    uint64_t len;
    g_autofree guint8 *buf = qtest_read_range(words, "b64read", &len, reply);

    if (!buf) {
        return;
    }
    g_autofree gchar *enc = g_base64_encode(buf, len);
    g_string_append_printf(reply, "OK %s", enc);
}

static void qtest_cmd_b64write(char **words, GString *reply)
{
    uint64_t addr, len;
    gsize dlen = 0;
    if (!qtest_parse_u64(words[1], &addr) || !qtest_parse_u64(words[2], &len) || !words[3] ||
        len > QTEST_MAX_TRANSFER) {
        g_string_append(reply, "FAIL b64write: expected ADDR LEN DATA");
        return;
    }
    g_autofree guchar *data = g_base64_decode(words[3], &dlen);
    g_autofree guint8 *buf = g_malloc0(len ? len : 1);
    memcpy(buf, data, MIN(dlen, len));
    if (len && !guest_phys_write(addr, buf, len)) {
        g_string_append(reply, "FAIL b64write: range is not guest RAM");
        return;
    }
    g_string_append(reply, "OK");
}

void qtest_execute_line(const char *line, GString *reply)
{
    g_auto(GStrv) words = g_strsplit_set(line, " \t", -1);
    unsigned n = g_strv_length(words);
    const char *cmd = n ? words[0] : "";
    uint64_t a, b;

    if (n == 0 || !*cmd) {
        g_string_append(reply, "FAIL empty command");
    } else if (strcmp(cmd, "endianness") == 0) {
        g_string_append(reply, "OK little");
    } else if (strlen(cmd) == 5 && g_str_has_prefix(cmd, "read") && qtest_size_of(cmd[4])) {
        if (n < 2 || !qtest_parse_u64(words[1], &a)) {
            g_string_append_printf(reply, "FAIL %s: expected ADDR", cmd);
        } else {
            qtest_read_sized(qtest_size_of(cmd[4]), a, reply);
        }
    } else if (strlen(cmd) == 6 && g_str_has_prefix(cmd, "write") && qtest_size_of(cmd[5])) {
        if (n < 3 || !qtest_parse_u64(words[1], &a) || !qtest_parse_u64(words[2], &b)) {
            g_string_append_printf(reply, "FAIL %s: expected ADDR VALUE", cmd);
        } else {
            qtest_write_sized(qtest_size_of(cmd[5]), a, b, reply);
        }
    } else if (strcmp(cmd, "read") == 0 && n >= 3) {
        qtest_cmd_read(words, reply);
    } else if (strcmp(cmd, "write") == 0 && n >= 4) {
        qtest_cmd_write(words, reply);
    } else if (strcmp(cmd, "memset") == 0 && n >= 4) {
        qtest_cmd_memset(words, reply);
    } else if (strcmp(cmd, "b64read") == 0 && n >= 3) {
        qtest_cmd_b64read(words, reply);
    } else if (strcmp(cmd, "b64write") == 0 && n >= 4) {
        qtest_cmd_b64write(words, reply);
    } else if ((strcmp(cmd, "outb") == 0 || strcmp(cmd, "outw") == 0 ||
                strcmp(cmd, "outl") == 0) && n >= 3) {
        unsigned size = cmd[3] == 'b' ? 1 : cmd[3] == 'w' ? 2 : 4;
        if (!qtest_parse_u64(words[1], &a) || !qtest_parse_u64(words[2], &b) || a > 0xffff) {
            g_string_append_printf(reply, "FAIL %s: expected PORT VALUE", cmd);
        } else {
            io_dispatch_write(IO_SPACE_PIO, a, b, size);
            g_string_append(reply, "OK");
        }
    } else if ((strcmp(cmd, "inb") == 0 || strcmp(cmd, "inw") == 0 ||
                strcmp(cmd, "inl") == 0) && n >= 2) {
        unsigned size = cmd[2] == 'b' ? 1 : cmd[2] == 'w' ? 2 : 4;
        if (!qtest_parse_u64(words[1], &a) || a > 0xffff) {
            g_string_append_printf(reply, "FAIL %s: expected PORT", cmd);
        } else {
            g_string_append_printf(reply, "OK 0x%04" G_GINT64_MODIFIER "x",
                                   io_dispatch_read(IO_SPACE_PIO, a, size));
        }
    } else {
        g_string_append_printf(reply, "FAIL Unknown command '%s'", cmd);
    }
}

static void qtest_log(char dir, const char *text)
{
    if (!qtest.log) {
        return;
    }
    double t = (double)(g_get_monotonic_time() - qtest.start_time) / 1e6;
    fprintf(qtest.log, "[%c +%0.6f] %s\n", dir, t, text);
    fflush(qtest.log);
}

static size_t qtest_can_receive(void *opaque)
{
    return 4096;
}

static void qtest_receive(void *opaque, const guint8 *buf, size_t len)
{
    g_string_append_len(qtest.inbuf, (const char *)buf, (gssize)len);
    char *nl;
    while ((nl = memchr(qtest.inbuf->str, '\n', qtest.inbuf->len))) {
        g_autofree char *line = g_strndup(qtest.inbuf->str, nl - qtest.inbuf->str);
        g_string_erase(qtest.inbuf, 0, nl - qtest.inbuf->str + 1);
        g_strchomp(line);
        g_autoptr(GString) reply = g_string_new(NULL);
        qtest_log('R', line);
        qtest_execute_line(line, reply);
        qtest_log('S', reply->str);
        g_string_append_c(reply, '\n');
        chardev_write(qtest.chr, reply->str, reply->len);
    }
}

static const CharFrontendOps qtest_chr_ops = {
    .can_receive = qtest_can_receive,
    .receive = qtest_receive,
};

bool qtest_server_init(Chardev *chr, const char *log_path, GError **errp)
{
    qtest.chr = chr;
    qtest.inbuf = g_string_new(NULL);
    qtest.start_time = g_get_monotonic_time();
    if (log_path) {
        qtest.log = strcmp(log_path, "/dev/stderr") == 0 ? stderr : fopen(log_path, "w");
        if (!qtest.log) {
            g_set_error(errp, G_FILE_ERROR, g_file_error_from_errno(errno),
                        "-qtest-log %s: %s", log_path, g_strerror(errno));
            return false;
        }
    }
    /* A read of many MiB is one reply line: never drop it, as the monitors don't. */
    chardev_set_output_limit(chr, 0);
    return chardev_attach_frontend(chr, &qtest_chr_ops, NULL, errp);
}
