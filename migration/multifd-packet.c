/*
 * multifd wire format: the channel handshake and the packet header with
 * its page offsets (include/migration/multifd.h has the layouts). Pure
 * functions over byte buffers, no I/O. The decoders check every field
 * against what this Ferry can load before anyone acts on it, and each
 * error names the field and the value that was refused.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <gio/gio.h>

#include "migration/multifd.h"

#define MULTIFD_PAGE_SIZE           4096u
#define MULTIFD_HANDSHAKE_RESERVED  0u
#define MULTIFD_MAX_CHANNELS        255u
#define MULTIFD_KNOWN_FLAGS         (MULTIFD_FLAG_SYNC | MULTIFD_FLAG_RAW)

G_STATIC_ASSERT(MULTIFD_HANDSHAKE_SIZE == 40);
G_STATIC_ASSERT(MULTIFD_HEADER_SIZE == 288);

/* ---- Big-endian fields ---- */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, v >> 32);
    put_be32(p + 4, (uint32_t)v);
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
    return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static bool multifd_wire_fail(GError **errp, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static bool multifd_wire_fail(GError **errp, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error_literal(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, msg);
    return false;
}

/* ---- Channel handshake ---- */

/* Byte offsets of the handshake fields. */
enum {
    HS_MAGIC = 0,
    HS_VERSION = 4,
    HS_UUID = 8,
    HS_CHANNEL_ID = HS_UUID + MULTIFD_UUID_LEN,
    HS_CHANNELS = HS_CHANNEL_ID + 4,
    HS_COMPRESSION = HS_CHANNELS + 4,
    HS_RESERVED = HS_COMPRESSION + 4,
};
G_STATIC_ASSERT(HS_RESERVED + 4 == MULTIFD_HANDSHAKE_SIZE);

void multifd_handshake_encode(const MultiFDHandshake *h, uint8_t out[MULTIFD_HANDSHAKE_SIZE])
{
    put_be32(out + HS_MAGIC, MULTIFD_CHANNEL_MAGIC);
    put_be32(out + HS_VERSION, MULTIFD_VERSION);
    memcpy(out + HS_UUID, h->uuid, MULTIFD_UUID_LEN);
    put_be32(out + HS_CHANNEL_ID, h->channel_id);
    put_be32(out + HS_CHANNELS, h->channels);
    put_be32(out + HS_COMPRESSION, h->compression);
    put_be32(out + HS_RESERVED, MULTIFD_HANDSHAKE_RESERVED);
}

bool multifd_handshake_decode(const uint8_t in[MULTIFD_HANDSHAKE_SIZE], MultiFDHandshake *h,
                              GError **errp)
{
    uint32_t magic = get_be32(in + HS_MAGIC);
    uint32_t version = get_be32(in + HS_VERSION);
    uint32_t channel_id = get_be32(in + HS_CHANNEL_ID);
    uint32_t channels = get_be32(in + HS_CHANNELS);
    uint32_t compression = get_be32(in + HS_COMPRESSION);
    uint32_t reserved = get_be32(in + HS_RESERVED);

    if (magic != MULTIFD_CHANNEL_MAGIC) {
        return multifd_wire_fail(errp, "multifd channel handshake: bad magic 0x%08" PRIx32,
                                 magic);
    }
    if (version != MULTIFD_VERSION) {
        return multifd_wire_fail(errp, "multifd channel handshake: version %" PRIu32
                                 " (this Ferry speaks %d)", version, MULTIFD_VERSION);
    }
    if (channels == 0 || channels > MULTIFD_MAX_CHANNELS) {
        return multifd_wire_fail(errp, "multifd channel handshake: %" PRIu32
                                 " channels (1 to %u)", channels, MULTIFD_MAX_CHANNELS);
    }
    if (channel_id >= channels) {
        return multifd_wire_fail(errp, "multifd channel handshake: channel id %" PRIu32
                                 " of %" PRIu32 " channels", channel_id, channels);
    }
    if (compression >= MULTIFD_COMPRESSION__MAX) {
        return multifd_wire_fail(errp, "multifd channel handshake: unknown compression %"
                                 PRIu32 " (at most %d)", compression,
                                 MULTIFD_COMPRESSION__MAX - 1);
    }
    if (reserved != MULTIFD_HANDSHAKE_RESERVED) {
        return multifd_wire_fail(errp, "multifd channel handshake: reserved field 0x%"
                                 PRIx32 " (must be 0)", reserved);
    }

    memcpy(h->uuid, in + HS_UUID, MULTIFD_UUID_LEN);
    h->channel_id = channel_id;
    h->channels = channels;
    h->compression = compression;
    return true;
}

/* ---- Packet header and offsets ---- */

/* Byte offsets of the header fields; the offsets list follows the block id. */
enum {
    PK_MAGIC = 0,
    PK_VERSION = 4,
    PK_FLAGS = 8,
    PK_NORMAL = 12,
    PK_ZERO = 16,
    PK_PAYLOAD_SIZE = 20,
    PK_PACKET_NUM = 24,
    PK_BLOCK = 32,
    PK_OFFSETS = PK_BLOCK + MULTIFD_BLOCK_ID_LEN,
};
G_STATIC_ASSERT(PK_OFFSETS == MULTIFD_HEADER_SIZE);

size_t multifd_packet_encode(const MultiFDPacketHeader *h, const uint64_t *offsets, uint8_t *out)
{
    uint64_t count = (uint64_t)h->normal + h->zero;
    size_t id_len = strnlen(h->block, MULTIFD_BLOCK_ID_LEN);

    g_assert(count <= MULTIFD_PACKET_PAGES);
    g_assert(id_len < MULTIFD_BLOCK_ID_LEN);

    put_be32(out + PK_MAGIC, MULTIFD_PACKET_MAGIC);
    put_be32(out + PK_VERSION, MULTIFD_VERSION);
    put_be32(out + PK_FLAGS, h->flags);
    put_be32(out + PK_NORMAL, h->normal);
    put_be32(out + PK_ZERO, h->zero);
    put_be32(out + PK_PAYLOAD_SIZE, h->payload_size);
    put_be64(out + PK_PACKET_NUM, h->packet_num);
    memcpy(out + PK_BLOCK, h->block, id_len);
    memset(out + PK_BLOCK + id_len, 0, MULTIFD_BLOCK_ID_LEN - id_len);
    for (size_t i = 0; i < count; i++) {
        put_be64(out + PK_OFFSETS + 8 * i, offsets[i]);
    }
    return PK_OFFSETS + 8 * (size_t)count;
}

static const char *multifd_compression_label(MultiFDCompression c)
{
    switch (c) {
    case MULTIFD_COMPRESSION_ZLIB:
        return "zlib";
    case MULTIFD_COMPRESSION_ZSTD:
        return "zstd";
    default:
        return "none";
    }
}

bool multifd_packet_decode_header(const uint8_t *in, MultiFDCompression compression,
                                  MultiFDPacketHeader *h, GError **errp)
{
    uint32_t magic = get_be32(in + PK_MAGIC);
    uint32_t version = get_be32(in + PK_VERSION);
    uint32_t flags = get_be32(in + PK_FLAGS);
    uint32_t normal = get_be32(in + PK_NORMAL);
    uint32_t zero = get_be32(in + PK_ZERO);
    uint32_t payload_size = get_be32(in + PK_PAYLOAD_SIZE);
    uint64_t pages = (uint64_t)normal + zero;
    const char *block = (const char *)in + PK_BLOCK;
    size_t id_len;

    g_assert((unsigned)compression < MULTIFD_COMPRESSION__MAX);

    if (magic != MULTIFD_PACKET_MAGIC) {
        return multifd_wire_fail(errp, "multifd packet: bad magic 0x%08" PRIx32, magic);
    }
    if (version != MULTIFD_VERSION) {
        return multifd_wire_fail(errp, "multifd packet: version %" PRIu32
                                 " (this Ferry speaks %d)", version, MULTIFD_VERSION);
    }
    if (flags & ~MULTIFD_KNOWN_FLAGS) {
        return multifd_wire_fail(errp, "multifd packet: unknown flags 0x%" PRIx32,
                                 flags & ~MULTIFD_KNOWN_FLAGS);
    }
    if (pages > MULTIFD_PACKET_PAGES) {
        return multifd_wire_fail(errp, "multifd packet: %" PRIu64 " pages (at most %d)",
                                 pages, MULTIFD_PACKET_PAGES);
    }
    id_len = strnlen(block, MULTIFD_BLOCK_ID_LEN);
    if (id_len == MULTIFD_BLOCK_ID_LEN) {
        return multifd_wire_fail(errp, "multifd packet: block id not NUL-terminated");
    }
    if (id_len == 0 && pages > 0) {
        return multifd_wire_fail(errp, "multifd packet: %" PRIu64 " pages without a block id",
                                 pages);
    }

    if (compression == MULTIFD_COMPRESSION_NONE || normal == 0 || (flags & MULTIFD_FLAG_RAW)) {
        uint32_t expected = normal * MULTIFD_PAGE_SIZE;
        if (payload_size != expected) {
            return multifd_wire_fail(errp, "multifd packet: payload of %" PRIu32
                                     " bytes for %" PRIu32 " pages (expected %" PRIu32 ")",
                                     payload_size, normal, expected);
        }
    } else {
        size_t bound = multifd_compress_bound(compression, normal);
        if (payload_size == 0 || payload_size > bound) {
            return multifd_wire_fail(errp, "multifd packet: payload of %" PRIu32
                                     " bytes for %" PRIu32 " pages (expected 1 to %zu with %s)",
                                     payload_size, normal, bound,
                                     multifd_compression_label(compression));
        }
    }

    h->flags = flags;
    h->normal = normal;
    h->zero = zero;
    h->payload_size = payload_size;
    h->packet_num = get_be64(in + PK_PACKET_NUM);
    memcpy(h->block, block, id_len);
    memset(h->block + id_len, 0, MULTIFD_BLOCK_ID_LEN - id_len);
    return true;
}

bool multifd_packet_decode_offsets(const uint8_t *in, uint32_t count, uint64_t block_size,
                                   uint64_t *offsets, GError **errp)
{
    g_assert(count <= MULTIFD_PACKET_PAGES);

    for (uint32_t i = 0; i < count; i++) {
        uint64_t offset = get_be64(in + 8 * i);
        if (offset % MULTIFD_PAGE_SIZE) {
            return multifd_wire_fail(errp, "multifd packet: page offset 0x%" PRIx64
                                     " is not 4 KiB aligned", offset);
        }
        if (offset >= block_size || block_size - offset < MULTIFD_PAGE_SIZE) {
            return multifd_wire_fail(errp, "multifd packet: page offset 0x%" PRIx64
                                     " is outside the block (size 0x%" PRIx64 ")",
                                     offset, block_size);
        }
        offsets[i] = offset;
    }
    return true;
}
