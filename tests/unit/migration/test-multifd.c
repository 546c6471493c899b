/*
 * multifd wire format and compression, without channels or threads: the
 * handshake and packet codecs byte by byte and with every malformed field,
 * offsets against their block, and zlib/zstd streams over many packets
 * with the decoder fed truncated, corrupt, short, long and padded
 * payloads. Pages sit between guard bytes that decoding must never touch.
 */
#include <inttypes.h>
#include <string.h>
#include <gio/gio.h>
#include <zlib.h>
#include <zstd.h>

#include "migration/multifd.h"

#define PAGE            4096u
#define GUARD           64u
#define GUARD_BYTE      0xa5

/* ---- Helpers ---- */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, v >> 32);
    put32(p + 4, (uint32_t)v);
}

static void assert_invalid_data(GError *err, const char *msg)
{
    g_assert_nonnull(err);
    g_assert_true(g_error_matches(err, G_IO_ERROR, G_IO_ERROR_INVALID_DATA));
    g_assert_cmpstr(err->message, ==, msg);
}

/* ---- Handshake ---- */

static const MultiFDHandshake good_handshake = {
    .uuid = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
              0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff },
    .channel_id = 3,
    .channels = 4,
    .compression = MULTIFD_COMPRESSION_ZSTD,
};

static void test_handshake_round_trip(void)
{
    static const uint8_t expected[MULTIFD_HANDSHAKE_SIZE] = {
        0x46, 0x4d, 0x46, 0x43,     /* "FMFC" */
        0x00, 0x00, 0x00, 0x01,     /* version */
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
        0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
        0x00, 0x00, 0x00, 0x03,     /* channel id */
        0x00, 0x00, 0x00, 0x04,     /* channels */
        0x00, 0x00, 0x00, 0x02,     /* zstd */
        0x00, 0x00, 0x00, 0x00,     /* reserved */
    };
    uint8_t buf[MULTIFD_HANDSHAKE_SIZE];
    MultiFDHandshake h;
    GError *err = NULL;

    multifd_handshake_encode(&good_handshake, buf);
    g_assert_cmpmem(buf, sizeof(buf), expected, sizeof(expected));

    memset(&h, 0xee, sizeof(h));
    g_assert_true(multifd_handshake_decode(buf, &h, &err));
    g_assert_no_error(err);
    g_assert_cmpmem(h.uuid, sizeof(h.uuid), good_handshake.uuid, MULTIFD_UUID_LEN);
    g_assert_cmpuint(h.channel_id, ==, 3);
    g_assert_cmpuint(h.channels, ==, 4);
    g_assert_cmpuint(h.compression, ==, MULTIFD_COMPRESSION_ZSTD);

    /* The extremes that are still valid. */
    MultiFDHandshake edge = { .channel_id = 254, .channels = 255,
                              .compression = MULTIFD_COMPRESSION_NONE };
    multifd_handshake_encode(&edge, buf);
    g_assert_true(multifd_handshake_decode(buf, &h, &err));
    g_assert_cmpuint(h.channel_id, ==, 254);
    g_assert_cmpuint(h.channels, ==, 255);
    edge = (MultiFDHandshake) { .channel_id = 0, .channels = 1 };
    multifd_handshake_encode(&edge, buf);
    g_assert_true(multifd_handshake_decode(buf, &h, &err));
    g_assert_no_error(err);
}

typedef struct BadHandshake {
    size_t field;               /* byte offset of the be32 to overwrite */
    uint32_t value;
    const char *msg;
} BadHandshake;

static const BadHandshake bad_handshakes[] = {
    { 0, 0x12345678, "multifd channel handshake: bad magic 0x12345678" },
    { 0, MULTIFD_PACKET_MAGIC, "multifd channel handshake: bad magic 0x464d4650" },
    { 4, 0, "multifd channel handshake: version 0 (this Ferry speaks 1)" },
    { 4, 2, "multifd channel handshake: version 2 (this Ferry speaks 1)" },
    { 24, 4, "multifd channel handshake: channel id 4 of 4 channels" },
    { 24, 5, "multifd channel handshake: channel id 5 of 4 channels" },
    { 24, 0xffffffff, "multifd channel handshake: channel id 4294967295 of 4 channels" },
    { 28, 0, "multifd channel handshake: 0 channels (1 to 255)" },
    { 28, 256, "multifd channel handshake: 256 channels (1 to 255)" },
    { 28, 0x80000000, "multifd channel handshake: 2147483648 channels (1 to 255)" },
    { 32, 3, "multifd channel handshake: unknown compression 3 (at most 2)" },
    { 32, 0xffffffff, "multifd channel handshake: unknown compression 4294967295 (at most 2)" },
    { 36, 1, "multifd channel handshake: reserved field 0x1 (must be 0)" },
};

static void test_handshake_bad(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(bad_handshakes); i++) {
        const BadHandshake *b = &bad_handshakes[i];
        uint8_t buf[MULTIFD_HANDSHAKE_SIZE];
        MultiFDHandshake h;
        GError *err = NULL;

        multifd_handshake_encode(&good_handshake, buf);
        put32(buf + b->field, b->value);
        memset(&h, 0x5a, sizeof(h));
        g_assert_false(multifd_handshake_decode(buf, &h, &err));
        assert_invalid_data(err, b->msg);
        g_clear_error(&err);
    }
}

/* ---- Packet header ---- */

static MultiFDPacketHeader sample_header(uint32_t normal, uint32_t zero)
{
    MultiFDPacketHeader h = {
        .flags = 0,
        .normal = normal,
        .zero = zero,
        .payload_size = normal * PAGE,
        .packet_num = 0x0102030405060708ull,
    };
    strcpy(h.block, "pc.ram");
    return h;
}

static void test_packet_round_trip(void)
{
    uint64_t offsets[MULTIFD_PACKET_PAGES], back[MULTIFD_PACKET_PAGES];
    uint8_t buf[MULTIFD_HEADER_MAX];
    MultiFDPacketHeader h = sample_header(3, 2), d;
    GError *err = NULL;

    for (unsigned i = 0; i < 5; i++) {
        offsets[i] = (uint64_t)(i * 7 + 1) * PAGE;
    }
    memset(buf, 0xcc, sizeof(buf));
    size_t len = multifd_packet_encode(&h, offsets, buf);
    g_assert_cmpuint(len, ==, MULTIFD_HEADER_SIZE + 5 * 8);

    static const uint8_t fixed[32] = {
        0x46, 0x4d, 0x46, 0x50,     /* "FMFP" */
        0, 0, 0, 1,                 /* version */
        0, 0, 0, 0,                 /* flags */
        0, 0, 0, 3,                 /* normal */
        0, 0, 0, 2,                 /* zero */
        0, 0, 0x30, 0,              /* payload 3 * 4096 */
        1, 2, 3, 4, 5, 6, 7, 8,     /* packet number */
    };
    g_assert_cmpmem(buf, 32, fixed, sizeof(fixed));
    g_assert_cmpmem(buf + 32, 7, "pc.ram", 7);
    for (unsigned i = 32 + 7; i < MULTIFD_HEADER_SIZE; i++) {
        g_assert_cmpuint(buf[i], ==, 0);
    }
    static const uint8_t first_offset[8] = { 0, 0, 0, 0, 0, 0, 0x10, 0 };
    g_assert_cmpmem(buf + MULTIFD_HEADER_SIZE, 8, first_offset, 8);
    g_assert_cmpuint(buf[len], ==, 0xcc);     /* nothing beyond the offsets */

    memset(&d, 0x77, sizeof(d));
    g_assert_true(multifd_packet_decode_header(buf, MULTIFD_COMPRESSION_NONE, &d, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(d.flags, ==, 0);
    g_assert_cmpuint(d.normal, ==, 3);
    g_assert_cmpuint(d.zero, ==, 2);
    g_assert_cmpuint(d.payload_size, ==, 3 * PAGE);
    g_assert_cmpuint(d.packet_num, ==, 0x0102030405060708ull);
    g_assert_cmpstr(d.block, ==, "pc.ram");
    for (unsigned i = strlen("pc.ram"); i < MULTIFD_BLOCK_ID_LEN; i++) {
        g_assert_cmpint(d.block[i], ==, 0);
    }
    g_assert_true(multifd_packet_decode_offsets(buf + MULTIFD_HEADER_SIZE, 5, 1 << 20, back,
                                                &err));
    g_assert_no_error(err);
    g_assert_cmpmem(back, 5 * 8, offsets, 5 * 8);

    /* A full packet, the longest block id, compressed payload sizes. */
    h = sample_header(100, 28);
    memset(h.block, 'b', MULTIFD_BLOCK_ID_LEN - 1);
    h.block[MULTIFD_BLOCK_ID_LEN - 1] = '\0';
    for (unsigned i = 0; i < MULTIFD_PACKET_PAGES; i++) {
        offsets[i] = (uint64_t)(MULTIFD_PACKET_PAGES - i) * PAGE + (1ull << 40);
    }
    len = multifd_packet_encode(&h, offsets, buf);
    g_assert_cmpuint(len, ==, MULTIFD_HEADER_MAX);
    g_assert_true(multifd_packet_decode_header(buf, MULTIFD_COMPRESSION_NONE, &d, &err));
    g_assert_cmpstr(d.block, ==, h.block);
    g_assert_true(multifd_packet_decode_offsets(buf + MULTIFD_HEADER_SIZE, 128, 1ull << 41,
                                                back, &err));
    g_assert_cmpmem(back, sizeof(back), offsets, sizeof(offsets));

    for (MultiFDCompression c = MULTIFD_COMPRESSION_ZLIB; c <= MULTIFD_COMPRESSION_ZSTD; c++) {
        size_t bound = multifd_compress_bound(c, 100);
        g_assert_cmpuint(bound, >, 100 * PAGE);
        g_assert_cmpuint(bound, <, UINT32_MAX);
        h.payload_size = 1;
        multifd_packet_encode(&h, offsets, buf);
        g_assert_true(multifd_packet_decode_header(buf, c, &d, &err));
        h.payload_size = bound;
        multifd_packet_encode(&h, offsets, buf);
        g_assert_true(multifd_packet_decode_header(buf, c, &d, &err));
        g_assert_cmpuint(d.payload_size, ==, bound);
    }
    g_assert_no_error(err);

    /* SYNC without pages, without a block; zero pages only. */
    memset(&h, 0, sizeof(h));
    h.flags = MULTIFD_FLAG_SYNC;
    h.packet_num = 9;
    len = multifd_packet_encode(&h, NULL, buf);
    g_assert_cmpuint(len, ==, MULTIFD_HEADER_SIZE);
    for (MultiFDCompression c = 0; c < MULTIFD_COMPRESSION__MAX; c++) {
        g_assert_true(multifd_packet_decode_header(buf, c, &d, &err));
        g_assert_no_error(err);
        g_assert_cmpuint(d.flags, ==, MULTIFD_FLAG_SYNC);
        g_assert_cmpuint(d.normal + d.zero + d.payload_size, ==, 0);
        g_assert_cmpstr(d.block, ==, "");
    }
    h = sample_header(0, 128);
    len = multifd_packet_encode(&h, offsets, buf);
    for (MultiFDCompression c = 0; c < MULTIFD_COMPRESSION__MAX; c++) {
        g_assert_true(multifd_packet_decode_header(buf, c, &d, &err));
        g_assert_no_error(err);
        g_assert_cmpuint(d.zero, ==, 128);
    }
}

typedef struct BadHeader {
    const char *name;
    MultiFDCompression compression;
    size_t field;               /* byte offset of the be32 to overwrite */
    uint32_t value;             /* BOUND_PLUS_1: one byte over the bound */
    const char *msg;            /* %zu: the bound for 3 pages */
} BadHeader;

#define N MULTIFD_COMPRESSION_NONE
#define ZL MULTIFD_COMPRESSION_ZLIB
#define ZS MULTIFD_COMPRESSION_ZSTD
#define BOUND_PLUS_1 0xb0b0b0b0u

/* Against sample_header(3, 2): 3 normal pages, 2 zero, 12288 payload bytes. */
static const BadHeader bad_headers[] = {
    { "magic", N, 0, 0x12345678, "multifd packet: bad magic 0x12345678" },
    { "magic-handshake", N, 0, MULTIFD_CHANNEL_MAGIC, "multifd packet: bad magic 0x464d4643" },
    { "version-0", N, 4, 0, "multifd packet: version 0 (this Ferry speaks 1)" },
    { "version-2", N, 4, 2, "multifd packet: version 2 (this Ferry speaks 1)" },
    { "flags", N, 8, 0x4, "multifd packet: unknown flags 0x4" },
    { "flags-with-sync", N, 8, 0x80000001, "multifd packet: unknown flags 0x80000000" },
    { "normal-over", N, 12, 127, "multifd packet: 129 pages (at most 128)" },
    { "zero-over", N, 16, 200, "multifd packet: 203 pages (at most 128)" },
    { "normal-huge", N, 12, 0xffffffff, "multifd packet: 4294967297 pages (at most 128)" },
    { "zero-huge", N, 16, 0xfffffffe, "multifd packet: 4294967297 pages (at most 128)" },
    { "none-short", N, 20, 3 * PAGE - 1,
      "multifd packet: payload of 12287 bytes for 3 pages (expected 12288)" },
    { "none-long", N, 20, 3 * PAGE + 1,
      "multifd packet: payload of 12289 bytes for 3 pages (expected 12288)" },
    { "none-zero", N, 20, 0, "multifd packet: payload of 0 bytes for 3 pages (expected 12288)" },
    { "zlib-empty", ZL, 20, 0,
      "multifd packet: payload of 0 bytes for 3 pages (expected 1 to %zu with zlib)" },
    { "zlib-over", ZL, 20, BOUND_PLUS_1,
      "multifd packet: payload of %zu bytes for 3 pages (expected 1 to %zu with zlib)" },
    { "zlib-huge", ZL, 20, 0xffffffff,
      "multifd packet: payload of 4294967295 bytes for 3 pages (expected 1 to %zu with zlib)" },
    { "zstd-empty", ZS, 20, 0,
      "multifd packet: payload of 0 bytes for 3 pages (expected 1 to %zu with zstd)" },
    { "zstd-over", ZS, 20, BOUND_PLUS_1,
      "multifd packet: payload of %zu bytes for 3 pages (expected 1 to %zu with zstd)" },
    { "zstd-huge", ZS, 20, 0xffffffff,
      "multifd packet: payload of 4294967295 bytes for 3 pages (expected 1 to %zu with zstd)" },
};

#undef N
#undef ZL
#undef ZS

/* A compressing channel's uncompressed packet: the payload is exactly the pages. */
static void test_packet_raw_flag(void)
{
    uint8_t buf[MULTIFD_HEADER_MAX];
    uint64_t offsets[8] = { 0 };
    MultiFDPacketHeader d;

    for (MultiFDCompression c = 0; c < MULTIFD_COMPRESSION__MAX; c++) {
        g_autoptr(GError) err = NULL;
        MultiFDPacketHeader h = sample_header(8, 0);
        h.flags = MULTIFD_FLAG_RAW;
        multifd_packet_encode(&h, offsets, buf);
        g_assert_true(multifd_packet_decode_header(buf, c, &d, &err));
        g_assert_no_error(err);
        g_assert_cmpuint(d.flags, ==, MULTIFD_FLAG_RAW);
        g_assert_cmpuint(d.payload_size, ==, 8 * PAGE);
        /* Anything but exactly the pages is refused, even what would fit compressed. */
        h.payload_size = 8 * PAGE - 1;
        multifd_packet_encode(&h, offsets, buf);
        g_assert_false(multifd_packet_decode_header(buf, c, &d, &err));
        g_assert_nonnull(strstr(err->message, "expected 32768"));
    }
}

static void test_packet_bad_header(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(bad_headers); i++) {
        const BadHeader *b = &bad_headers[i];
        size_t bound = multifd_compress_bound(b->compression, 3);
        MultiFDPacketHeader h = sample_header(3, 2), d;
        uint64_t offsets[5] = { 0, PAGE, 2 * PAGE, 3 * PAGE, 4 * PAGE };
        uint8_t buf[MULTIFD_HEADER_MAX];
        g_autofree char *msg = NULL;
        GError *err = NULL;

        if (g_test_verbose()) {
            g_test_message("%s", b->name);
        }
        if (b->compression != MULTIFD_COMPRESSION_NONE) {
            h.payload_size = 100;
        }
        multifd_packet_encode(&h, offsets, buf);
        g_assert_true(multifd_packet_decode_header(buf, b->compression, &d, &err));
        if (b->value == BOUND_PLUS_1) {
            put32(buf + b->field, bound + 1);
            msg = g_strdup_printf(b->msg, bound + 1, bound);
        } else {
            put32(buf + b->field, b->value);
            msg = g_strdup_printf(b->msg, bound);
        }
        g_assert_false(multifd_packet_decode_header(buf, b->compression, &d, &err));
        assert_invalid_data(err, msg);
        g_clear_error(&err);
    }
}

static void test_packet_bad_block(void)
{
    MultiFDPacketHeader h = sample_header(1, 0), d;
    uint64_t offset = 0;
    uint8_t buf[MULTIFD_HEADER_MAX];
    GError *err = NULL;

    /* No NUL in the 256 bytes. */
    multifd_packet_encode(&h, &offset, buf);
    memset(buf + 32, 'x', MULTIFD_BLOCK_ID_LEN);
    g_assert_false(multifd_packet_decode_header(buf, MULTIFD_COMPRESSION_NONE, &d, &err));
    assert_invalid_data(err, "multifd packet: block id not NUL-terminated");
    g_clear_error(&err);

    /* Missing NUL even on a packet that needs no block. */
    h = sample_header(0, 0);
    multifd_packet_encode(&h, NULL, buf);
    memset(buf + 32, 'x', MULTIFD_BLOCK_ID_LEN);
    g_assert_false(multifd_packet_decode_header(buf, MULTIFD_COMPRESSION_NONE, &d, &err));
    assert_invalid_data(err, "multifd packet: block id not NUL-terminated");
    g_clear_error(&err);

    /* Pages, but the block id is empty: normal, zero and both. */
    static const struct { uint32_t normal, zero; const char *msg; } empty[] = {
        { 1, 0, "multifd packet: 1 pages without a block id" },
        { 0, 4, "multifd packet: 4 pages without a block id" },
        { 64, 64, "multifd packet: 128 pages without a block id" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(empty); i++) {
        uint64_t offsets[MULTIFD_PACKET_PAGES] = { 0 };
        h = sample_header(empty[i].normal, empty[i].zero);
        h.block[0] = '\0';
        multifd_packet_encode(&h, offsets, buf);
        g_assert_false(multifd_packet_decode_header(buf, MULTIFD_COMPRESSION_NONE, &d, &err));
        assert_invalid_data(err, empty[i].msg);
        g_clear_error(&err);
    }

    /* A stale id after the NUL is ignored (and not handed back). */
    h = sample_header(1, 0);
    multifd_packet_encode(&h, &offset, buf);
    memset(buf + 32 + 7, 'z', 100);
    g_assert_true(multifd_packet_decode_header(buf, MULTIFD_COMPRESSION_NONE, &d, &err));
    g_assert_cmpstr(d.block, ==, "pc.ram");
    g_assert_cmpint(d.block[8], ==, 0);
}

static void test_packet_payload_without_pages(void)
{
    MultiFDPacketHeader h = sample_header(0, 2), d;
    uint64_t offsets[2] = { 0, PAGE };
    uint8_t buf[MULTIFD_HEADER_MAX];
    GError *err = NULL;

    for (MultiFDCompression c = 0; c < MULTIFD_COMPRESSION__MAX; c++) {
        h.payload_size = 1;
        multifd_packet_encode(&h, offsets, buf);
        g_assert_false(multifd_packet_decode_header(buf, c, &d, &err));
        assert_invalid_data(err, "multifd packet: payload of 1 bytes for 0 pages (expected 0)");
        g_clear_error(&err);
    }
}

/* ---- Offsets ---- */

static void test_offsets(void)
{
    static const struct { uint64_t offset, block_size; const char *msg; } cases[] = {
        { 0, PAGE, NULL },
        { 0x1ff000, 0x200000, NULL },
        { 0xffffffffffffe000ull, UINT64_MAX, NULL },
        { 0xfffffffffffff000ull, UINT64_MAX,
          "multifd packet: page offset 0xfffffffffffff000 is outside the block "
          "(size 0xffffffffffffffff)" },
        { 0x1001, 0x200000, "multifd packet: page offset 0x1001 is not 4 KiB aligned" },
        { 0x800, 0x200000, "multifd packet: page offset 0x800 is not 4 KiB aligned" },
        { UINT64_MAX, UINT64_MAX,
          "multifd packet: page offset 0xffffffffffffffff is not 4 KiB aligned" },
        { 0x40000000, 0x20000000,
          "multifd packet: page offset 0x40000000 is outside the block (size 0x20000000)" },
        { 0x20000000, 0x20000000,
          "multifd packet: page offset 0x20000000 is outside the block (size 0x20000000)" },
        { 0xfffffffffffff000ull, 0x20000000,
          "multifd packet: page offset 0xfffffffffffff000 is outside the block "
          "(size 0x20000000)" },
        { 0, 0, "multifd packet: page offset 0x0 is outside the block (size 0x0)" },
        /* A block whose size is not a page multiple: the last part page can't be sent. */
        { 0x1000, 0x1800, "multifd packet: page offset 0x1000 is outside the block (size 0x1800)" },
        { 0, 0x800, "multifd packet: page offset 0x0 is outside the block (size 0x800)" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        uint8_t buf[3 * 8];
        uint64_t out[3] = { 0 };
        GError *err = NULL;

        /* The bad offset comes last: earlier good ones don't hide it. */
        put64(buf, 0);
        put64(buf + 8, 0);
        put64(buf + 16, cases[i].offset);
        if (cases[i].block_size < PAGE) {
            put64(buf, cases[i].offset);
            put64(buf + 8, cases[i].offset);
        }
        bool ok = multifd_packet_decode_offsets(buf, 3, cases[i].block_size, out, &err);
        if (!cases[i].msg) {
            g_assert_no_error(err);
            g_assert_true(ok);
            g_assert_cmpuint(out[2], ==, cases[i].offset);
        } else {
            g_assert_false(ok);
            assert_invalid_data(err, cases[i].msg);
            g_clear_error(&err);
        }
    }

    /* No offsets at all. */
    GError *err = NULL;
    g_assert_true(multifd_packet_decode_offsets(NULL, 0, 0, NULL, &err));
    g_assert_no_error(err);
}

/* ---- Compression ---- */

/* n pages, each between guard bytes, in one allocation. */
typedef struct PageSet {
    uint8_t *mem;
    uint8_t *pages[MULTIFD_PACKET_PAGES + 1];
    unsigned n;
} PageSet;

static void pageset_init(PageSet *ps, unsigned n)
{
    g_assert_cmpuint(n, <=, MULTIFD_PACKET_PAGES + 1);
    ps->n = n;
    ps->mem = g_malloc(GUARD + (size_t)n * (PAGE + GUARD) + 1);
    memset(ps->mem, GUARD_BYTE, GUARD + (size_t)n * (PAGE + GUARD) + 1);
    for (unsigned i = 0; i < n; i++) {
        ps->pages[i] = ps->mem + GUARD + (size_t)i * (PAGE + GUARD);
    }
}

static void pageset_check_guards(const PageSet *ps)
{
    for (unsigned i = 0; i <= ps->n; i++) {
        const uint8_t *g = i < ps->n ? ps->pages[i] - GUARD : ps->mem + GUARD +
                                       (size_t)ps->n * (PAGE + GUARD) - GUARD;
        size_t len = i < ps->n ? GUARD : GUARD + 1;
        for (size_t j = 0; j < len; j++) {
            if (g[j] != GUARD_BYTE) {
                g_error("guard byte %zu before page %u was written", j, i);
            }
        }
    }
}

static void pageset_free(PageSet *ps)
{
    g_free(ps->mem);
    ps->mem = NULL;
}

typedef enum PageKind {
    PAGE_RANDOM,
    PAGE_ZERO,
    PAGE_TEXT,          /* compressible */
    PAGE_REPEAT,        /* a copy of an earlier page: matches across packets */
    PAGE_SPARSE,        /* mostly zero, a few random bytes */
    PAGE_KINDS,
} PageKind;

static void fill_page(uint8_t *p, PageKind kind, GRand *r, const uint8_t *earlier)
{
    switch (kind) {
    case PAGE_RANDOM:
        for (unsigned i = 0; i < PAGE; i += 4) {
            uint32_t v = g_rand_int(r);
            memcpy(p + i, &v, 4);
        }
        break;
    case PAGE_ZERO:
        memset(p, 0, PAGE);
        break;
    case PAGE_TEXT: {
        static const char words[] = "the quick brown fox jumps over the lazy dog; "
                                    "kvm_run exit reason io, port 0x3f8 ";
        unsigned start = g_rand_int_range(r, 0, sizeof(words) - 1);
        for (unsigned i = 0; i < PAGE; i++) {
            p[i] = words[(start + i) % (sizeof(words) - 1)];
        }
        break;
    }
    case PAGE_REPEAT:
        if (earlier) {
            memcpy(p, earlier, PAGE);
        } else {
            memset(p, 0x42, PAGE);
        }
        break;
    case PAGE_SPARSE:
        memset(p, 0, PAGE);
        for (unsigned i = 0; i < 16; i++) {
            p[g_rand_int_range(r, 0, PAGE)] = g_rand_int(r);
        }
        break;
    default:
        g_assert_not_reached();
    }
}

typedef struct Codec {
    MultiFDCompression c;
    MultiFDCompressor *comp;
    MultiFDDecompressor *dec;
    uint8_t *out;               /* bound for MULTIFD_PACKET_PAGES + 1 pages */
    size_t out_size;
} Codec;

static void codec_init(Codec *k, MultiFDCompression c, int level)
{
    GError *err = NULL;

    k->c = c;
    k->comp = multifd_compressor_new(c, level, &err);
    g_assert_no_error(err);
    g_assert_nonnull(k->comp);
    k->dec = multifd_decompressor_new(c, &err);
    g_assert_no_error(err);
    g_assert_nonnull(k->dec);
    k->out_size = multifd_compress_bound(c, MULTIFD_PACKET_PAGES + 1);
    k->out = g_malloc(k->out_size);
}

static void codec_free(Codec *k)
{
    multifd_compressor_free(k->comp);
    multifd_decompressor_free(k->dec);
    g_free(k->out);
}

/* Compress src's pages, check the payload fits the header rules. */
static size_t codec_compress(Codec *k, const PageSet *src)
{
    GError *err = NULL;
    size_t len = SIZE_MAX;

    g_assert_true(multifd_compress_pages(k->comp, (const uint8_t *const *)src->pages, src->n,
                                         k->out, &len, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(len, <=, multifd_compress_bound(k->c, src->n));
    if (src->n == 0) {
        g_assert_cmpuint(len, ==, 0);
    } else {
        g_assert_cmpuint(len, >, 0);
    }
    if (src->n <= MULTIFD_PACKET_PAGES) {
        MultiFDPacketHeader h = sample_header(src->n, 0), d;
        uint64_t offsets[MULTIFD_PACKET_PAGES] = { 0 };
        uint8_t hdr[MULTIFD_HEADER_MAX];
        h.payload_size = len;
        multifd_packet_encode(&h, offsets, hdr);
        g_assert_true(multifd_packet_decode_header(hdr, k->c, &d, &err));
        g_assert_no_error(err);
    }
    return len;
}

static void codec_round_trip(MultiFDCompression c, int level, unsigned packets)
{
    g_autoptr(GRand) r = g_rand_new_with_seed(g_test_rand_int());
    uint8_t *history = g_malloc(PAGE);
    bool have_history = false;
    size_t raw = 0, compressed = 0;
    Codec k;

    codec_init(&k, c, level);
    for (unsigned p = 0; p < packets; p++) {
        /* Packet sizes: full, single, empty, and random between. */
        unsigned n = p % 7 == 0 ? MULTIFD_PACKET_PAGES : p % 7 == 1 ? 1 : p % 11 == 5 ? 0 :
                     g_rand_int_range(r, 1, MULTIFD_PACKET_PAGES + 1);
        PageKind all = p % 13 == 3 ? PAGE_ZERO : p % 13 == 4 ? PAGE_RANDOM : PAGE_KINDS;
        PageSet src, dst;

        pageset_init(&src, n);
        pageset_init(&dst, n);
        for (unsigned i = 0; i < n; i++) {
            PageKind kind = all != PAGE_KINDS ? all : (PageKind)g_rand_int_range(r, 0, PAGE_KINDS);
            fill_page(src.pages[i], kind, r, have_history ? history : NULL);
            if (kind == PAGE_RANDOM || kind == PAGE_TEXT) {
                memcpy(history, src.pages[i], PAGE);
                have_history = true;
            }
            memset(dst.pages[i], 0x3c, PAGE);
        }

        size_t len = codec_compress(&k, &src);
        raw += (size_t)n * PAGE;
        compressed += len;

        GError *err = NULL;
        multifd_decompress_pages(k.dec, k.out, len, dst.pages, n, &err);
        g_assert_no_error(err);
        for (unsigned i = 0; i < n; i++) {
            if (memcmp(src.pages[i], dst.pages[i], PAGE) != 0) {
                g_error("packet %u page %u differs after the round trip", p, i);
            }
        }
        pageset_check_guards(&src);
        pageset_check_guards(&dst);
        pageset_free(&src);
        pageset_free(&dst);
    }
    if (g_test_verbose()) {
        g_test_message("%s level %d: %zu bytes -> %zu", c == MULTIFD_COMPRESSION_ZLIB ?
                       "zlib" : "zstd", level, raw, compressed);
    }
    if (level > 0 || c == MULTIFD_COMPRESSION_ZSTD) {
        g_assert_cmpuint(compressed, <, raw);
    }
    codec_free(&k);
    g_free(history);
}

static void test_zlib_round_trip(void)
{
    codec_round_trip(MULTIFD_COMPRESSION_ZLIB, 1, 60);
}

static void test_zlib_levels(void)
{
    codec_round_trip(MULTIFD_COMPRESSION_ZLIB, 0, 20);
    codec_round_trip(MULTIFD_COMPRESSION_ZLIB, 6, 20);
    codec_round_trip(MULTIFD_COMPRESSION_ZLIB, 9, 20);
}

static void test_zstd_round_trip(void)
{
    codec_round_trip(MULTIFD_COMPRESSION_ZSTD, 1, 60);
}

static void test_zstd_levels(void)
{
    codec_round_trip(MULTIFD_COMPRESSION_ZSTD, 0, 20);
    codec_round_trip(MULTIFD_COMPRESSION_ZSTD, 3, 20);
    codec_round_trip(MULTIFD_COMPRESSION_ZSTD, 20, 8);
}

/* Worst cases for the bound: full packets of random data at every level. */
static void test_bound_random(void)
{
    g_autoptr(GRand) r = g_rand_new_with_seed(g_test_rand_int());
    static const struct { MultiFDCompression c; int level; } cases[] = {
        { MULTIFD_COMPRESSION_ZLIB, 0 }, { MULTIFD_COMPRESSION_ZLIB, 1 },
        { MULTIFD_COMPRESSION_ZLIB, 9 }, { MULTIFD_COMPRESSION_ZSTD, 0 },
        { MULTIFD_COMPRESSION_ZSTD, 1 }, { MULTIFD_COMPRESSION_ZSTD, 19 },
    };

    g_assert_cmpuint(multifd_compress_bound(MULTIFD_COMPRESSION_NONE, 128), ==, 128 * PAGE);
    g_assert_cmpuint(multifd_compress_bound(MULTIFD_COMPRESSION_NONE, 0), ==, 0);
    g_assert_cmpuint(multifd_compress_bound(MULTIFD_COMPRESSION_ZLIB, 0), ==, 0);
    g_assert_cmpuint(multifd_compress_bound(MULTIFD_COMPRESSION_ZSTD, 0), ==, 0);

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        Codec k;
        codec_init(&k, cases[i].c, cases[i].level);
        for (unsigned p = 0; p < 3; p++) {
            PageSet src, dst;
            GError *err = NULL;
            pageset_init(&src, MULTIFD_PACKET_PAGES);
            pageset_init(&dst, MULTIFD_PACKET_PAGES);
            for (unsigned j = 0; j < src.n; j++) {
                fill_page(src.pages[j], PAGE_RANDOM, r, NULL);
            }
            size_t len = codec_compress(&k, &src);
            g_assert_cmpuint(len, >=, MULTIFD_PACKET_PAGES * PAGE);
            multifd_decompress_pages(k.dec, k.out, len, dst.pages, dst.n, &err);
            g_assert_no_error(err);
            for (unsigned j = 0; j < src.n; j++) {
                g_assert_cmpmem(src.pages[j], PAGE, dst.pages[j], PAGE);
            }
            pageset_free(&src);
            pageset_free(&dst);
        }
        codec_free(&k);
    }
}

static void test_codec_setup_errors(void)
{
    GError *err = NULL;

    g_assert_null(multifd_compressor_new(MULTIFD_COMPRESSION_NONE, 1, &err));
    g_assert_error(err, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    g_assert_cmpstr(err->message, ==, "multifd: no compression context for 'none'");
    g_clear_error(&err);
    g_assert_null(multifd_decompressor_new(MULTIFD_COMPRESSION_NONE, &err));
    g_assert_cmpstr(err->message, ==, "multifd: no compression context for 'none'");
    g_clear_error(&err);
    g_assert_null(multifd_decompressor_new(MULTIFD_COMPRESSION__MAX, &err));
    g_assert_cmpstr(err->message, ==, "multifd: unknown compression 3");
    g_clear_error(&err);

    static const struct { MultiFDCompression c; int level; const char *msg; } levels[] = {
        { MULTIFD_COMPRESSION_ZLIB, -1, "multifd zlib: level -1 (0 to 9)" },
        { MULTIFD_COMPRESSION_ZLIB, 10, "multifd zlib: level 10 (0 to 9)" },
        { MULTIFD_COMPRESSION_ZSTD, -1, "multifd zstd: level -1 (0 to 20)" },
        { MULTIFD_COMPRESSION_ZSTD, 21, "multifd zstd: level 21 (0 to 20)" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(levels); i++) {
        g_assert_null(multifd_compressor_new(levels[i].c, levels[i].level, &err));
        g_assert_error(err, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
        g_assert_cmpstr(err->message, ==, levels[i].msg);
        g_clear_error(&err);
    }
}

/*
 * A stream primed by @warmup good packets, then one packet of @n pages
 * whose payload @mangle changes before it is decoded into @dec_n pages.
 * The decoder must fail with a message containing @expect, leave every
 * guard byte alone, and refuse the stream afterwards.
 */
typedef size_t (*MangleFn)(uint8_t *payload, size_t len, size_t cap, GRand *r);

static void codec_expect_failure(MultiFDCompression c, unsigned n, unsigned dec_n,
                                 MangleFn mangle, const char *expect)
{
    g_autoptr(GRand) r = g_rand_new_with_seed(g_test_rand_int());
    PageSet src, dst;
    GError *err = NULL;
    Codec k;

    codec_init(&k, c, 1);
    for (unsigned w = 0; w < 3; w++) {
        pageset_init(&src, 8);
        pageset_init(&dst, 8);
        for (unsigned i = 0; i < src.n; i++) {
            fill_page(src.pages[i], (w + i) % 3 == 0 ? PAGE_RANDOM : PAGE_TEXT, r, NULL);
        }
        size_t len = codec_compress(&k, &src);
        g_assert_true(multifd_decompress_pages(k.dec, k.out, len, dst.pages, dst.n, &err));
        g_assert_no_error(err);
        pageset_free(&src);
        pageset_free(&dst);
    }

    pageset_init(&src, n);
    for (unsigned i = 0; i < n; i++) {
        fill_page(src.pages[i], i % 2 ? PAGE_RANDOM : PAGE_TEXT, r, NULL);
    }
    size_t len = codec_compress(&k, &src);
    len = mangle ? mangle(k.out, len, k.out_size, r) : len;

    pageset_init(&dst, dec_n);
    g_assert_false(multifd_decompress_pages(k.dec, k.out, len, dst.pages, dst.n, &err));
    g_assert_nonnull(err);
    if (g_test_verbose()) {
        g_test_message("%s", err->message);
    }
    g_assert_true(g_error_matches(err, G_IO_ERROR, G_IO_ERROR_INVALID_DATA));
    if (!strstr(err->message, expect)) {
        g_error("error \"%s\" does not mention \"%s\"", err->message, expect);
    }
    g_clear_error(&err);
    pageset_check_guards(&dst);

    /* The stream is broken for good. */
    g_assert_false(multifd_decompress_pages(k.dec, k.out, len, dst.pages, dst.n, &err));
    g_assert_nonnull(strstr(err->message, "failed earlier"));
    g_clear_error(&err);
    pageset_check_guards(&dst);

    pageset_free(&src);
    pageset_free(&dst);
    codec_free(&k);
}

static size_t mangle_drop_last(uint8_t *p, size_t len, size_t cap, GRand *r)
{
    return len - 1;
}

static size_t mangle_half(uint8_t *p, size_t len, size_t cap, GRand *r)
{
    return len / 2;
}

/*
 * The packet starts a new block (the last one ended with a flush); all
 * ones there is a reserved block type in deflate and in zstd. Page data
 * itself has no checksum: corrupting it is undetectable, see
 * test_mutations().
 */
static size_t mangle_corrupt(uint8_t *p, size_t len, size_t cap, GRand *r)
{
    memset(p, 0xff, MIN(len, 8));
    return len;
}

static size_t mangle_garbage(uint8_t *p, size_t len, size_t cap, GRand *r)
{
    static const uint8_t junk[] = { 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03 };
    g_assert_cmpuint(len + sizeof(junk), <=, cap);
    memcpy(p + len, junk, sizeof(junk));
    return len + sizeof(junk);
}

static size_t mangle_one_byte(uint8_t *p, size_t len, size_t cap, GRand *r)
{
    p[len] = 0;
    return len + 1;
}

/* A second copy of the payload: it decodes to twice the pages. */
static size_t mangle_twice(uint8_t *p, size_t len, size_t cap, GRand *r)
{
    g_assert_cmpuint(2 * len, <=, cap);
    memcpy(p + len, p, len);
    return 2 * len;
}

static void codec_errors(MultiFDCompression c)
{
    const char *ends = c == MULTIFD_COMPRESSION_ZLIB ? "does not end on a sync flush"
                                                    : "does not end on a flush";

    /* Truncated by one byte: the flush marker is cut. */
    codec_expect_failure(c, 4, 4, mangle_drop_last, "");
    /* Truncated by half: too few bytes. */
    codec_expect_failure(c, 4, 4, mangle_half, "decodes to");
    codec_expect_failure(c, 4, 4, mangle_corrupt, "corrupt payload");
    /* Fewer pages than the payload holds, more pages than it holds. */
    codec_expect_failure(c, 4, 3, NULL, "decodes to more than 12288 bytes (3 pages)");
    codec_expect_failure(c, 4, 5, NULL, "decodes to 16384 bytes (expected 20480 for 5 pages)");
    codec_expect_failure(c, 1, 2, NULL, "decodes to 4096 bytes (expected 8192 for 2 pages)");
    codec_expect_failure(c, 4, 4, mangle_garbage, "");
    codec_expect_failure(c, 4, 4, mangle_one_byte, ends);
    codec_expect_failure(c, 4, 4, mangle_twice, "decodes to more than 16384 bytes (4 pages)");
}

static void test_zlib_errors(void)
{
    codec_errors(MULTIFD_COMPRESSION_ZLIB);
}

static void test_zstd_errors(void)
{
    codec_errors(MULTIFD_COMPRESSION_ZSTD);
}

/* Payloads no Ferry sends: a finished stream, garbage, the wrong codec. */
static void test_foreign_payloads(void)
{
    g_autoptr(GRand) r = g_rand_new_with_seed(g_test_rand_int());
    uint8_t *page = g_malloc(PAGE);
    size_t cap = compressBound(PAGE) + ZSTD_compressBound(PAGE) + 64;
    uint8_t *buf = g_malloc(cap);
    GError *err = NULL;
    PageSet dst;

    fill_page(page, PAGE_TEXT, r, NULL);
    pageset_init(&dst, 1);

    /* A raw deflate stream that ends (Z_FINISH). */
    z_stream zs = { 0 };
    g_assert_cmpint(deflateInit2(&zs, 1, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY), ==,
                    Z_OK);
    zs.next_in = page;
    zs.avail_in = PAGE;
    zs.next_out = buf;
    zs.avail_out = cap;
    g_assert_cmpint(deflate(&zs, Z_FINISH), ==, Z_STREAM_END);
    size_t zlen = cap - zs.avail_out;
    deflateEnd(&zs);

    MultiFDDecompressor *d = multifd_decompressor_new(MULTIFD_COMPRESSION_ZLIB, &err);
    g_assert_false(multifd_decompress_pages(d, buf, zlen, dst.pages, 1, &err));
    g_assert_cmpstr(err->message, ==, "multifd zlib: payload ends the deflate stream "
                    "(it must continue)");
    g_clear_error(&err);
    multifd_decompressor_free(d);
    pageset_check_guards(&dst);

    /* A whole zstd frame. */
    size_t flen = ZSTD_compress(buf, cap, page, PAGE, 1);
    g_assert_false(ZSTD_isError(flen));
    d = multifd_decompressor_new(MULTIFD_COMPRESSION_ZSTD, &err);
    g_assert_false(multifd_decompress_pages(d, buf, flen, dst.pages, 1, &err));
    g_assert_cmpstr(err->message, ==, "multifd zstd: payload ends the zstd frame "
                    "(it must continue)");
    g_clear_error(&err);
    multifd_decompressor_free(d);
    pageset_check_guards(&dst);

    /* Nothing at all for a page. */
    d = multifd_decompressor_new(MULTIFD_COMPRESSION_ZSTD, &err);
    g_assert_false(multifd_decompress_pages(d, buf + flen, 0, dst.pages, 1, &err));
    g_assert_cmpstr(err->message, ==, "multifd zstd: payload of 0 bytes decodes to 0 bytes "
                    "(expected 4096 for 1 pages)");
    g_clear_error(&err);
    multifd_decompressor_free(d);

    /* Random bytes: an error or (improbably) a page, never a write outside. */
    for (unsigned t = 0; t < 200; t++) {
        size_t len = g_rand_int_range(r, 1, 2048);
        for (size_t i = 0; i < len; i++) {
            buf[i] = g_rand_int(r);
        }
        if (t % 2) {
            buf[0] = 0x28;      /* a zstd magic number, so the frame header is parsed */
            buf[1] = 0xb5;
            buf[2] = 0x2f;
            buf[3] = 0xfd;
        }
        for (MultiFDCompression c = MULTIFD_COMPRESSION_ZLIB; c <= MULTIFD_COMPRESSION_ZSTD;
             c++) {
            d = multifd_decompressor_new(c, &err);
            if (!multifd_decompress_pages(d, buf, len, dst.pages, 1, &err)) {
                g_assert_true(g_error_matches(err, G_IO_ERROR, G_IO_ERROR_INVALID_DATA));
                g_clear_error(&err);
            }
            multifd_decompressor_free(d);
            pageset_check_guards(&dst);
        }
    }

    /* Zero pages: no payload, and no payload accepted. */
    d = multifd_decompressor_new(MULTIFD_COMPRESSION_ZLIB, &err);
    g_assert_true(multifd_decompress_pages(d, NULL, 0, NULL, 0, &err));
    g_assert_no_error(err);
    g_assert_false(multifd_decompress_pages(d, buf, 5, NULL, 0, &err));
    g_assert_cmpstr(err->message, ==, "multifd zlib: payload of 5 bytes for 0 pages");
    g_clear_error(&err);
    multifd_decompressor_free(d);

    pageset_free(&dst);
    g_free(buf);
    g_free(page);
}

/*
 * Random damage to real payloads (bytes flipped, cut short, extended):
 * decoding fails or yields n pages, and never writes outside them.
 */
static void test_mutations(void)
{
    g_autoptr(GRand) r = g_rand_new_with_seed(g_test_rand_int());
    unsigned failed = 0, trials = 0;

    for (MultiFDCompression c = MULTIFD_COMPRESSION_ZLIB; c <= MULTIFD_COMPRESSION_ZSTD; c++) {
        for (unsigned t = 0; t < 150; t++) {
            unsigned n = g_rand_int_range(r, 1, 9);
            GError *err = NULL;
            PageSet src, dst;
            Codec k;

            codec_init(&k, c, 1);
            pageset_init(&src, n);
            pageset_init(&dst, n);
            for (unsigned i = 0; i < n; i++) {
                fill_page(src.pages[i], g_rand_int_range(r, 0, PAGE_KINDS), r, NULL);
            }
            size_t len = codec_compress(&k, &src);
            switch (t % 3) {
            case 0:
                for (unsigned f = g_rand_int_range(r, 1, 4); f > 0; f--) {
                    k.out[g_rand_int_range(r, 0, len)] ^= 1u << g_rand_int_range(r, 0, 8);
                }
                break;
            case 1:
                len = g_rand_int_range(r, 0, len);
                break;
            default:
                for (unsigned e = g_rand_int_range(r, 1, 32); e > 0; e--) {
                    k.out[len++] = g_rand_int(r);
                }
                break;
            }
            if (!multifd_decompress_pages(k.dec, k.out, len, dst.pages, n, &err)) {
                g_assert_true(g_error_matches(err, G_IO_ERROR, G_IO_ERROR_INVALID_DATA));
                g_clear_error(&err);
                failed++;
            }
            trials++;
            pageset_check_guards(&dst);
            pageset_free(&src);
            pageset_free(&dst);
            codec_free(&k);
        }
    }
    /* Cuts and extensions are always caught; flips inside page data are not. */
    g_assert_cmpuint(failed, >=, trials * 2 / 3);
}

/* Zero pages compress to nothing and leave the stream as it was. */
static void test_empty_packets(void)
{
    for (MultiFDCompression c = MULTIFD_COMPRESSION_ZLIB; c <= MULTIFD_COMPRESSION_ZSTD; c++) {
        g_autoptr(GRand) r = g_rand_new_with_seed(g_test_rand_int());
        GError *err = NULL;
        PageSet src, dst;
        Codec k;

        codec_init(&k, c, 1);
        pageset_init(&src, 0);
        g_assert_cmpuint(codec_compress(&k, &src), ==, 0);
        g_assert_true(multifd_decompress_pages(k.dec, k.out, 0, src.pages, 0, &err));
        pageset_free(&src);

        pageset_init(&src, 2);
        pageset_init(&dst, 2);
        fill_page(src.pages[0], PAGE_TEXT, r, NULL);
        fill_page(src.pages[1], PAGE_RANDOM, r, NULL);
        size_t len = codec_compress(&k, &src);
        g_assert_true(multifd_decompress_pages(k.dec, k.out, len, dst.pages, 2, &err));
        g_assert_no_error(err);
        g_assert_cmpmem(src.pages[0], PAGE, dst.pages[0], PAGE);
        g_assert_cmpmem(src.pages[1], PAGE, dst.pages[1], PAGE);
        pageset_free(&src);
        pageset_free(&dst);
        codec_free(&k);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/multifd/handshake/round-trip", test_handshake_round_trip);
    g_test_add_func("/multifd/handshake/bad", test_handshake_bad);
    g_test_add_func("/multifd/packet/round-trip", test_packet_round_trip);
    g_test_add_func("/multifd/packet/bad-header", test_packet_bad_header);
    g_test_add_func("/multifd/packet/raw-flag", test_packet_raw_flag);
    g_test_add_func("/multifd/packet/bad-block", test_packet_bad_block);
    g_test_add_func("/multifd/packet/payload-without-pages", test_packet_payload_without_pages);
    g_test_add_func("/multifd/packet/offsets", test_offsets);
    g_test_add_func("/multifd/compress/setup-errors", test_codec_setup_errors);
    g_test_add_func("/multifd/compress/bound-random", test_bound_random);
    g_test_add_func("/multifd/compress/empty-packets", test_empty_packets);
    g_test_add_func("/multifd/compress/zlib/round-trip", test_zlib_round_trip);
    g_test_add_func("/multifd/compress/zlib/levels", test_zlib_levels);
    g_test_add_func("/multifd/compress/zlib/errors", test_zlib_errors);
    g_test_add_func("/multifd/compress/zstd/round-trip", test_zstd_round_trip);
    g_test_add_func("/multifd/compress/zstd/levels", test_zstd_levels);
    g_test_add_func("/multifd/compress/zstd/errors", test_zstd_errors);
    g_test_add_func("/multifd/compress/foreign-payloads", test_foreign_payloads);
    g_test_add_func("/multifd/compress/mutations", test_mutations);

    return g_test_run();
}
