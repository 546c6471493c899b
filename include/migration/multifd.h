/*
 * multifd: guest pages over N extra connections, one thread per channel on
 * each side (docs/devel/multifd.md).
 *
 *   migration/multifd-packet.c    handshake and packet header codec (pure)
 *   migration/multifd-compress.c  per-channel zlib/zstd streams
 *   migration/multifd-send.c      source: channels, send threads, sync
 *   migration/multifd-recv.c      destination: channels, receive threads, sync
 *
 * Each channel opens with a handshake naming the migration (a random
 * UUID), the channel number, the channel count and the compression. Then
 * packets: a fixed header, the page offsets, the payload. A packet's pages
 * all lie in one RAM block. Pages queued before a sync point are loaded on
 * the destination before any page queued after it: the source sends a
 * SYNC packet on every channel and a MULTIFD_FLUSH record on the main
 * stream; a receive thread that has read a SYNC packet waits until the
 * load thread reaches that record.
 */
#ifndef MIGRATION_MULTIFD_H
#define MIGRATION_MULTIFD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#include "migration/channel.h"
#include "migration/options.h"

/* ---- Wire format (multifd-packet.c) ---- */

#define MULTIFD_CHANNEL_MAGIC       0x464d4643u     /* "FMFC": channel handshake */
#define MULTIFD_PACKET_MAGIC        0x464d4650u     /* "FMFP": packet header */
#define MULTIFD_VERSION             1
#define MULTIFD_UUID_LEN            16
/* Pages in one packet, at most (512 KiB of 4 KiB pages, as QEMU's). */
#define MULTIFD_PACKET_PAGES        128
#define MULTIFD_BLOCK_ID_LEN        256
/* Packet flags. */
#define MULTIFD_FLAG_SYNC           0x1u
/*
 * On a compressing channel: this packet's payload is its pages as they
 * are (exactly normal * 4 KiB), and the channel's compression stream
 * skips it. Sent after packets that did not shrink.
 */
#define MULTIFD_FLAG_RAW            0x2u

/* magic, version, uuid, channel id, channel count, compression, reserved */
#define MULTIFD_HANDSHAKE_SIZE      (4 + 4 + MULTIFD_UUID_LEN + 4 + 4 + 4 + 4)
/* magic, version, flags, normal, zero, payload size, packet number, block id */
#define MULTIFD_HEADER_SIZE         (4 * 6 + 8 + MULTIFD_BLOCK_ID_LEN)
/* Header plus the largest offset list. */
#define MULTIFD_HEADER_MAX          (MULTIFD_HEADER_SIZE + 8 * MULTIFD_PACKET_PAGES)

typedef struct MultiFDHandshake {
    uint8_t uuid[MULTIFD_UUID_LEN];
    uint32_t channel_id;
    uint32_t channels;
    uint32_t compression;       /* MultiFDCompression */
} MultiFDHandshake;

void multifd_handshake_encode(const MultiFDHandshake *h, uint8_t out[MULTIFD_HANDSHAKE_SIZE]);
/* Checks magic, version, channel id < count, count and compression in range. */
bool multifd_handshake_decode(const uint8_t in[MULTIFD_HANDSHAKE_SIZE], MultiFDHandshake *h,
                              GError **errp);

typedef struct MultiFDPacketHeader {
    uint32_t flags;
    uint32_t normal;            /* pages with data in the payload */
    uint32_t zero;              /* pages that are all zero: offsets only */
    uint32_t payload_size;      /* bytes after the offsets */
    uint64_t packet_num;
    char block[MULTIFD_BLOCK_ID_LEN];   /* NUL-terminated; "" only without pages */
} MultiFDPacketHeader;

/*
 * Header then normal + zero big-endian offsets (normal pages first) into
 * @out, which holds MULTIFD_HEADER_MAX bytes; returns the bytes written.
 */
size_t multifd_packet_encode(const MultiFDPacketHeader *h, const uint64_t *offsets, uint8_t *out);
/*
 * The fixed header from @in (MULTIFD_HEADER_SIZE bytes): magic, version,
 * known flags, normal + zero <= MULTIFD_PACKET_PAGES, a block id when
 * there are pages, and a payload size that fits @compression (exactly
 * normal * 4 KiB uncompressed or with MULTIFD_FLAG_RAW, at most
 * multifd_compress_bound() else).
 */
bool multifd_packet_decode_header(const uint8_t *in, MultiFDCompression compression,
                                  MultiFDPacketHeader *h, GError **errp);
/*
 * The @count offsets at @in into @offsets: each a multiple of 4 KiB and
 * inside @block_size.
 */
bool multifd_packet_decode_offsets(const uint8_t *in, uint32_t count, uint64_t block_size,
                                   uint64_t *offsets, GError **errp);

/* ---- Compression (multifd-compress.c) ---- */

/* Largest payload @pages pages can take with @compression. */
size_t multifd_compress_bound(MultiFDCompression compression, unsigned pages);

typedef struct MultiFDCompressor MultiFDCompressor;
/* NULL compressor for MULTIFD_COMPRESSION_NONE is not needed: callers skip it. */
MultiFDCompressor *multifd_compressor_new(MultiFDCompression compression, int level,
                                          GError **errp);
/*
 * Compress @n 4 KiB pages into @out (multifd_compress_bound() bytes) as
 * the continuation of this channel's stream, flushed so the receiver can
 * decode everything so far; *@out_len gets the payload size.
 */
bool multifd_compress_pages(MultiFDCompressor *c, const uint8_t *const *pages, unsigned n,
                            uint8_t *out, size_t *out_len, GError **errp);
void multifd_compressor_free(MultiFDCompressor *c);

typedef struct MultiFDDecompressor MultiFDDecompressor;
MultiFDDecompressor *multifd_decompressor_new(MultiFDCompression compression, GError **errp);
/*
 * Decode @in (one packet's payload) into exactly @n pages: fails when the
 * data is malformed, decodes to more or less than @n * 4 KiB, or leaves
 * input unused. Never writes outside the @n pages.
 */
bool multifd_decompress_pages(MultiFDDecompressor *d, const uint8_t *in, size_t in_len,
                              uint8_t *const *pages, unsigned n, GError **errp);
void multifd_decompressor_free(MultiFDDecompressor *d);

/* ---- Source (multifd-send.c) ---- */

struct RAMBlock;

/*
 * Migration thread, before the stream header: choose this migration's
 * identity and allocate the channels (nothing is connected yet; only
 * tcp: and unix: URIs qualify). The header then carries the identity.
 */
bool multifd_send_setup(const char *uri, GError **errp);
/*
 * Migration thread, once the header and configuration are flushed (so a
 * destination with multifd off can say why it refuses): connect every
 * channel, send its handshake and start its thread. @cancel_fd wakes a
 * connect. Fails naming the channel and cause.
 */
bool multifd_send_connect(int cancel_fd, GError **errp);
/* Whether multifd_send_setup() succeeded for this migration. */
bool multifd_send_active(void);
/* This migration's identity and settings, for the configuration section. */
const uint8_t *multifd_send_uuid(void);
uint32_t multifd_send_channels(void);
MultiFDCompression multifd_send_compression(void);
/*
 * Queue one page (migration thread). Pages are batched per block and a
 * full batch goes to an idle channel. False once multifd failed.
 */
bool multifd_queue_page(struct RAMBlock *rb, uint64_t offset);
/*
 * Hand the partial batch out, send a SYNC packet on every channel and
 * wait until each went out (migration thread). The caller then writes
 * RAM_SAVE_FLAG_MULTIFD_FLUSH on the main stream.
 */
bool multifd_send_sync(GError **errp);
/* The first channel error, or NULL (copy it). */
const GError *multifd_send_error(void);
/* Any thread: fail every channel's I/O at once (cancel). */
void multifd_send_shutdown(void);
/* Migration thread: stop the threads, join them, close the channels. */
void multifd_send_cleanup(void);

/* ---- Destination (multifd-recv.c) ---- */

/*
 * An accepted connection whose first bytes are a multifd handshake
 * (main thread). Takes @ch in every case. A channel of another migration,
 * a duplicate or a malformed one is refused and closed.
 */
void multifd_recv_new_channel(MigChannel *ch, const MultiFDHandshake *h);
/* True while the listener must stay open for more multifd channels. */
bool multifd_recv_wants_channels(void);
/* An incoming migration begins (main thread): forget earlier channels. */
void multifd_recv_reset(void);
/*
 * Load thread, on the configuration section: the source's settings must
 * match ours; waits (cancellable, bounded) for every channel of
 * migration @uuid. @main_channel is shut down when a channel fails, so
 * the load thread stops too.
 */
bool multifd_recv_setup(const uint8_t *uuid, uint32_t channels, MultiFDCompression compression,
                        MigChannel *main_channel, GError **errp);
/* Load thread, once the RAM blocks are prepared: start the receive threads. */
void multifd_recv_start(void);
bool multifd_recv_active(void);
/* Load thread, on RAM_SAVE_FLAG_MULTIFD_FLUSH: wait for every channel's SYNC, release them. */
bool multifd_recv_sync_main(GError **errp);
/* The first channel failure of this incoming migration, or NULL. */
const GError *multifd_recv_error(void);
/* Any thread: fail the channels' I/O (incoming cancel). */
void multifd_recv_shutdown(void);
/* Load thread at the end: shut down, join, close. */
void multifd_recv_cleanup(void);

#endif
