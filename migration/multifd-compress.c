/*
 * multifd compression: one zlib or zstd stream per channel and direction,
 * alive for the whole migration. A packet's pages continue the channel's
 * stream and end with a flush (Z_SYNC_FLUSH, ZSTD_e_flush), so the
 * receiver can decode each packet completely on arrival while later
 * packets still find earlier pages in the window.
 *
 * zlib streams are raw deflate (no zlib header or checksum: the stream
 * never ends, so there is nothing for a trailer to check). Contexts and
 * scratch are allocated when a channel starts; compressing or decoding a
 * packet allocates nothing, except that libzstd sizes its window buffers
 * at the first packet. The window is fixed at MULTIFD_ZSTD_WINDOW_LOG on
 * both sides, so a stream cannot make the destination allocate more.
 *
 * The pages being compressed may change under us while the guest runs.
 * Both libraries copy each input byte once into their own window before
 * working on it, so a page written during compression arrives torn but
 * consistently encoded, and the dirty log sends it again.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <gio/gio.h>
#include <zlib.h>
#include <zstd.h>

#include "migration/multifd.h"

#define MULTIFD_PAGE_SIZE       4096u
/*
 * Added to the libraries' one-shot bounds: the flush blocks at the end of
 * a packet and the zstd frame header in a channel's first packet fit many
 * times over.
 */
#define MULTIFD_BOUND_MARGIN    4096u
#define MULTIFD_ZLIB_LEVEL_MAX  9
#define MULTIFD_ZSTD_LEVEL_MAX  20
/*
 * zstd window: 1 MiB covers a packet and the one before it, which is
 * where the similar pages are; a higher level would otherwise pick up to
 * 128 MiB per channel, on both sides.
 */
#define MULTIFD_ZSTD_WINDOW_LOG 20
/* RFC 8878: every zstd block starts with a 3-byte header. */
#define ZSTD_BLOCK_HEADER_LEN   3u
/* Output for the bytes that follow the last page: there must be none. */
#define MULTIFD_SCRATCH_LEN     64u

static const char *multifd_codec_name(MultiFDCompression c)
{
    switch (c) {
    case MULTIFD_COMPRESSION_NONE:
        return "none";
    case MULTIFD_COMPRESSION_ZLIB:
        return "zlib";
    case MULTIFD_COMPRESSION_ZSTD:
        return "zstd";
    default:
        return "unknown";
    }
}

static bool multifd_codec_fail(GError **errp, GIOErrorEnum code, MultiFDCompression c,
                               const char *fmt, ...) G_GNUC_PRINTF(4, 5);

static bool multifd_codec_fail(GError **errp, GIOErrorEnum code, MultiFDCompression c,
                               const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(errp, G_IO_ERROR, code, "multifd %s: %s", multifd_codec_name(c), msg);
    return false;
}

size_t multifd_compress_bound(MultiFDCompression compression, unsigned pages)
{
    size_t raw = (size_t)pages * MULTIFD_PAGE_SIZE;

    if (compression == MULTIFD_COMPRESSION_NONE) {
        return raw;
    }
    if (pages == 0) {
        return 0;
    }
    switch (compression) {
    case MULTIFD_COMPRESSION_ZLIB:
        return compressBound(raw) + MULTIFD_BOUND_MARGIN;
    case MULTIFD_COMPRESSION_ZSTD:
        return ZSTD_compressBound(raw) + MULTIFD_BOUND_MARGIN;
    default:
        return 0;
    }
}

static bool multifd_codec_check(MultiFDCompression c, GError **errp)
{
    if (c == MULTIFD_COMPRESSION_ZLIB || c == MULTIFD_COMPRESSION_ZSTD) {
        return true;
    }
    if (c == MULTIFD_COMPRESSION_NONE) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "multifd: no compression context for 'none'");
    } else {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "multifd: unknown compression %d", (int)c);
    }
    return false;
}

/* ---- Source ---- */

struct MultiFDCompressor {
    MultiFDCompression compression;
    bool failed;                /* the stream is unusable after an error */
    z_stream zs;
    ZSTD_CCtx *cctx;
};

MultiFDCompressor *multifd_compressor_new(MultiFDCompression compression, int level,
                                          GError **errp)
{
    g_autofree MultiFDCompressor *c = NULL;
    int ret;

    if (!multifd_codec_check(compression, errp)) {
        return NULL;
    }
    c = g_new0(MultiFDCompressor, 1);
    c->compression = compression;

    if (compression == MULTIFD_COMPRESSION_ZLIB) {
        if (level < 0 || level > MULTIFD_ZLIB_LEVEL_MAX) {
            multifd_codec_fail(errp, G_IO_ERROR_INVALID_ARGUMENT, compression,
                               "level %d (0 to %d)", level, MULTIFD_ZLIB_LEVEL_MAX);
            return NULL;
        }
        ret = deflateInit2(&c->zs, level, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
        if (ret != Z_OK) {
            multifd_codec_fail(errp, G_IO_ERROR_FAILED, compression,
                               "cannot set up a deflate stream (%s)",
                               c->zs.msg ? c->zs.msg : zError(ret));
            return NULL;
        }
        return g_steal_pointer(&c);
    }

    if (level < 0 || level > MULTIFD_ZSTD_LEVEL_MAX) {
        multifd_codec_fail(errp, G_IO_ERROR_INVALID_ARGUMENT, compression,
                           "level %d (0 to %d)", level, MULTIFD_ZSTD_LEVEL_MAX);
        return NULL;
    }
    c->cctx = ZSTD_createCCtx();
    if (!c->cctx) {
        multifd_codec_fail(errp, G_IO_ERROR_FAILED, compression,
                           "cannot allocate a compression context");
        return NULL;
    }
    size_t zret = ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_compressionLevel, level);
    if (!ZSTD_isError(zret)) {
        zret = ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_windowLog, MULTIFD_ZSTD_WINDOW_LOG);
    }
    if (ZSTD_isError(zret)) {
        multifd_codec_fail(errp, G_IO_ERROR_FAILED, compression, "level %d: %s", level,
                           ZSTD_getErrorName(zret));
        ZSTD_freeCCtx(c->cctx);
        return NULL;
    }
    return g_steal_pointer(&c);
}

static bool multifd_compress_overflow(MultiFDCompressor *c, size_t bound, GError **errp)
{
    c->failed = true;
    return multifd_codec_fail(errp, G_IO_ERROR_FAILED, c->compression,
                              "compressed packet would exceed %zu bytes", bound);
}

static bool multifd_zlib_compress(MultiFDCompressor *c, const uint8_t *const *pages,
                                  unsigned n, uint8_t *out, size_t bound, size_t *out_len,
                                  GError **errp)
{
    z_stream *zs = &c->zs;

    zs->next_out = out;
    zs->avail_out = bound;
    for (unsigned i = 0; i < n; i++) {
        int flush = i + 1 == n ? Z_SYNC_FLUSH : Z_NO_FLUSH;
        int ret;

        zs->next_in = (Bytef *)pages[i];
        zs->avail_in = MULTIFD_PAGE_SIZE;
        /*
         * One call takes all the input unless the output fills up. With
         * the flush, full output may also mean the flush is unfinished.
         */
        ret = deflate(zs, flush);
        if (ret != Z_OK) {
            c->failed = true;
            return multifd_codec_fail(errp, G_IO_ERROR_FAILED, c->compression,
                                      "deflate failed (%s)", zs->msg ? zs->msg : zError(ret));
        }
        if (zs->avail_in != 0 || zs->avail_out == 0) {
            return multifd_compress_overflow(c, bound, errp);
        }
    }
    zs->next_in = NULL;
    *out_len = bound - zs->avail_out;
    return true;
}

static bool multifd_zstd_compress(MultiFDCompressor *c, const uint8_t *const *pages,
                                  unsigned n, uint8_t *out, size_t bound, size_t *out_len,
                                  GError **errp)
{
    ZSTD_outBuffer dst = { out, bound, 0 };
    size_t ret;

    for (unsigned i = 0; i < n; i++) {
        ZSTD_inBuffer src = { pages[i], MULTIFD_PAGE_SIZE, 0 };
        while (src.pos < src.size) {
            size_t in_before = src.pos, out_before = dst.pos;
            ret = ZSTD_compressStream2(c->cctx, &dst, &src, ZSTD_e_continue);
            if (ZSTD_isError(ret)) {
                c->failed = true;
                return multifd_codec_fail(errp, G_IO_ERROR_FAILED, c->compression,
                                          "compression failed (%s)", ZSTD_getErrorName(ret));
            }
            if (src.pos < src.size &&
                (dst.pos == dst.size || (src.pos == in_before && dst.pos == out_before))) {
                return multifd_compress_overflow(c, bound, errp);
            }
        }
    }
    do {
        ZSTD_inBuffer none = { NULL, 0, 0 };
        size_t before = dst.pos;
        ret = ZSTD_compressStream2(c->cctx, &dst, &none, ZSTD_e_flush);
        if (ZSTD_isError(ret)) {
            c->failed = true;
            return multifd_codec_fail(errp, G_IO_ERROR_FAILED, c->compression,
                                      "flush failed (%s)", ZSTD_getErrorName(ret));
        }
        if (ret != 0 && (dst.pos == dst.size || dst.pos == before)) {
            return multifd_compress_overflow(c, bound, errp);
        }
    } while (ret != 0);
    *out_len = dst.pos;
    return true;
}

bool multifd_compress_pages(MultiFDCompressor *c, const uint8_t *const *pages, unsigned n,
                            uint8_t *out, size_t *out_len, GError **errp)
{
    size_t bound = multifd_compress_bound(c->compression, n);

    if (c->failed) {
        return multifd_codec_fail(errp, G_IO_ERROR_FAILED, c->compression,
                                  "the channel's stream failed earlier");
    }
    if (n == 0) {
        *out_len = 0;
        return true;
    }
    if (bound > UINT32_MAX) {
        /* More than a packet's payload field can describe (and zlib's uInt). */
        return multifd_codec_fail(errp, G_IO_ERROR_INVALID_ARGUMENT, c->compression,
                                  "%u pages in one packet", n);
    }
    if (c->compression == MULTIFD_COMPRESSION_ZLIB) {
        return multifd_zlib_compress(c, pages, n, out, bound, out_len, errp);
    }
    return multifd_zstd_compress(c, pages, n, out, bound, out_len, errp);
}

void multifd_compressor_free(MultiFDCompressor *c)
{
    if (!c) {
        return;
    }
    if (c->compression == MULTIFD_COMPRESSION_ZLIB) {
        deflateEnd(&c->zs);
    } else {
        ZSTD_freeCCtx(c->cctx);
    }
    g_free(c);
}

/* ---- Destination ---- */

struct MultiFDDecompressor {
    MultiFDCompression compression;
    bool failed;
    z_stream zs;
    ZSTD_DCtx *dctx;
    uint8_t scratch[MULTIFD_SCRATCH_LEN];
};

MultiFDDecompressor *multifd_decompressor_new(MultiFDCompression compression, GError **errp)
{
    g_autofree MultiFDDecompressor *d = NULL;

    if (!multifd_codec_check(compression, errp)) {
        return NULL;
    }
    d = g_new0(MultiFDDecompressor, 1);
    d->compression = compression;

    if (compression == MULTIFD_COMPRESSION_ZLIB) {
        int ret = inflateInit2(&d->zs, -MAX_WBITS);
        if (ret != Z_OK) {
            multifd_codec_fail(errp, G_IO_ERROR_FAILED, compression,
                               "cannot set up an inflate stream (%s)",
                               d->zs.msg ? d->zs.msg : zError(ret));
            return NULL;
        }
        return g_steal_pointer(&d);
    }

    d->dctx = ZSTD_createDCtx();
    if (!d->dctx) {
        multifd_codec_fail(errp, G_IO_ERROR_FAILED, compression,
                           "cannot allocate a decompression context");
        return NULL;
    }
    /* A frame asking for a larger window is refused, not allocated for. */
    size_t zret = ZSTD_DCtx_setParameter(d->dctx, ZSTD_d_windowLogMax, MULTIFD_ZSTD_WINDOW_LOG);
    if (ZSTD_isError(zret)) {
        multifd_codec_fail(errp, G_IO_ERROR_FAILED, compression, "window limit: %s",
                           ZSTD_getErrorName(zret));
        ZSTD_freeDCtx(d->dctx);
        return NULL;
    }
    return g_steal_pointer(&d);
}

static bool multifd_decompress_fail(MultiFDDecompressor *d, GError **errp, const char *fmt,
                                    ...) G_GNUC_PRINTF(3, 4);

static bool multifd_decompress_fail(MultiFDDecompressor *d, GError **errp, const char *fmt,
                                    ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    d->failed = true;
    return multifd_codec_fail(errp, G_IO_ERROR_INVALID_DATA, d->compression, "%s", msg);
}

static bool multifd_decompress_short(MultiFDDecompressor *d, size_t in_len, size_t got,
                                     unsigned n, GError **errp)
{
    return multifd_decompress_fail(d, errp, "payload of %zu bytes decodes to %zu bytes "
                                   "(expected %zu for %u pages)", in_len, got,
                                   (size_t)n * MULTIFD_PAGE_SIZE, n);
}

static bool multifd_decompress_long(MultiFDDecompressor *d, size_t in_len, unsigned n,
                                    GError **errp)
{
    return multifd_decompress_fail(d, errp, "payload of %zu bytes decodes to more than %zu "
                                   "bytes (%u pages)", in_len,
                                   (size_t)n * MULTIFD_PAGE_SIZE, n);
}

/* An inflate() result other than progress or "needs more input". */
static bool multifd_inflate_fail(MultiFDDecompressor *d, int ret, GError **errp)
{
    if (ret == Z_STREAM_END) {
        return multifd_decompress_fail(d, errp, "payload ends the deflate stream "
                                       "(it must continue)");
    }
    return multifd_decompress_fail(d, errp, "corrupt payload (%s)",
                                   d->zs.msg ? d->zs.msg : zError(ret));
}

static bool multifd_zlib_decompress(MultiFDDecompressor *d, const uint8_t *in, size_t in_len,
                                    uint8_t *const *pages, unsigned n, GError **errp)
{
    z_stream *zs = &d->zs;
    int ret;

    if (in_len > UINT_MAX) {
        return multifd_decompress_fail(d, errp, "payload of %zu bytes is too large", in_len);
    }
    zs->next_in = (Bytef *)in;
    zs->avail_in = in_len;

    for (unsigned i = 0; i < n; i++) {
        zs->next_out = pages[i];
        zs->avail_out = MULTIFD_PAGE_SIZE;
        while (zs->avail_out > 0) {
            ret = inflate(zs, Z_NO_FLUSH);
            if (ret == Z_BUF_ERROR) {
                /* No progress: the input is used up. */
                return multifd_decompress_short(d, in_len, (size_t)i * MULTIFD_PAGE_SIZE +
                                                MULTIFD_PAGE_SIZE - zs->avail_out, n, errp);
            }
            if (ret != Z_OK) {
                return multifd_inflate_fail(d, ret, errp);
            }
        }
    }

    /*
     * The flush's empty stored block (and anything else) may still be in
     * the input, or output may be pending: it must all decode to nothing
     * and stop between two blocks on a byte boundary, where a sync flush
     * leaves the stream. inflate() reports that in data_type (128: just
     * after a block, low 6 bits: bits held back), for the call that got
     * there: so call it only while input is left or the stream is not at
     * a boundary, and with Z_BLOCK to stop at each one.
     */
    while (zs->avail_in > 0 || !(zs->data_type & 128)) {
        zs->next_out = d->scratch;
        zs->avail_out = sizeof(d->scratch);
        ret = inflate(zs, Z_BLOCK);
        if (ret != Z_OK && ret != Z_BUF_ERROR) {
            return multifd_inflate_fail(d, ret, errp);
        }
        if (zs->avail_out != sizeof(d->scratch)) {
            return multifd_decompress_long(d, in_len, n, errp);
        }
        if (ret == Z_BUF_ERROR) {
            break;              /* input used up inside a block */
        }
    }
    if (zs->avail_in > 0) {
        return multifd_decompress_fail(d, errp, "%u of the payload's %zu bytes left unused",
                                       zs->avail_in, in_len);
    }
    if (!(zs->data_type & 128) || (zs->data_type & 63) != 0) {
        return multifd_decompress_fail(d, errp, "payload of %zu bytes does not end on a "
                                       "sync flush (truncated or trailing bytes)", in_len);
    }
    zs->next_in = NULL;
    zs->next_out = NULL;
    return true;
}

static bool multifd_zstd_decompress(MultiFDDecompressor *d, const uint8_t *in, size_t in_len,
                                    uint8_t *const *pages, unsigned n, GError **errp)
{
    ZSTD_inBuffer src = { in, in_len, 0 };
    size_t ret;

    for (unsigned i = 0; i < n; i++) {
        ZSTD_outBuffer dst = { pages[i], MULTIFD_PAGE_SIZE, 0 };
        while (dst.pos < dst.size) {
            size_t in_before = src.pos, out_before = dst.pos;
            ret = ZSTD_decompressStream(d->dctx, &dst, &src);
            if (ZSTD_isError(ret)) {
                return multifd_decompress_fail(d, errp, "corrupt payload (%s)",
                                               ZSTD_getErrorName(ret));
            }
            if (ret == 0) {
                return multifd_decompress_fail(d, errp, "payload ends the zstd frame "
                                               "(it must continue)");
            }
            if (src.pos == in_before && dst.pos == out_before) {
                return multifd_decompress_short(d, in_len, (size_t)i * MULTIFD_PAGE_SIZE +
                                                dst.pos, n, errp);
            }
        }
    }

    /* What follows the last page, and output zstd still holds, must be nothing. */
    do {
        ZSTD_outBuffer dst = { d->scratch, sizeof(d->scratch), 0 };
        size_t in_before = src.pos;
        ret = ZSTD_decompressStream(d->dctx, &dst, &src);
        if (ZSTD_isError(ret)) {
            return multifd_decompress_fail(d, errp, "corrupt payload (%s)",
                                           ZSTD_getErrorName(ret));
        }
        if (dst.pos > 0) {
            return multifd_decompress_long(d, in_len, n, errp);
        }
        if (ret == 0) {
            return multifd_decompress_fail(d, errp, "payload ends the zstd frame "
                                           "(it must continue)");
        }
        if (src.pos == in_before) {
            break;
        }
    } while (src.pos < src.size);

    if (src.pos < src.size) {
        return multifd_decompress_fail(d, errp, "%zu of the payload's %zu bytes left unused",
                                       src.size - src.pos, in_len);
    }
    /*
     * Between blocks, with nothing loaded, zstd asks for exactly a block
     * header next; anything else means the payload stopped inside a block
     * (or a frame header). The unit tests pin this on the linked libzstd.
     */
    if (ret != ZSTD_BLOCK_HEADER_LEN) {
        return multifd_decompress_fail(d, errp, "payload of %zu bytes does not end on a "
                                       "flush (truncated or trailing bytes)", in_len);
    }
    return true;
}

bool multifd_decompress_pages(MultiFDDecompressor *d, const uint8_t *in, size_t in_len,
                              uint8_t *const *pages, unsigned n, GError **errp)
{
    if (d->failed) {
        return multifd_codec_fail(errp, G_IO_ERROR_FAILED, d->compression,
                                  "the channel's stream failed earlier");
    }
    if (n == 0) {
        if (in_len != 0) {
            return multifd_decompress_fail(d, errp, "payload of %zu bytes for 0 pages",
                                           in_len);
        }
        return true;
    }
    if (d->compression == MULTIFD_COMPRESSION_ZLIB) {
        return multifd_zlib_decompress(d, in, in_len, pages, n, errp);
    }
    return multifd_zstd_decompress(d, in, in_len, pages, n, errp);
}

void multifd_decompressor_free(MultiFDDecompressor *d)
{
    if (!d) {
        return;
    }
    if (d->compression == MULTIFD_COMPRESSION_ZLIB) {
        inflateEnd(&d->zs);
    } else {
        ZSTD_freeDCtx(d->dctx);
    }
    g_free(d);
}
