/*
 * RAM migration, destination side: decode the records of ram-format.h
 * into the destination's RAM blocks. Everything read from the stream is
 * checked before use (block ids, offsets, flags, the fill byte); nothing
 * is allocated or looped over on the stream's say-so, and a bad stream
 * gives an error naming the block and offset, never an abort.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <gio/gio.h>

#include "migration/multifd.h"
#include "migration/ram.h"
#include "migration/ram-format.h"

#define BITS_PER_WORD       64
#define WORDS_FOR(bits)     (((bits) + BITS_PER_WORD - 1) / BITS_PER_WORD)

static GPtrArray *ram_load_blocks(RAMLoadState *ls)
{
    return ls->blocks ? ls->blocks : ramblock_list();
}

static int ram_load_find(RAMLoadState *ls, const char *idstr)
{
    GPtrArray *blocks = ram_load_blocks(ls);
    for (guint i = 0; i < blocks->len; i++) {
        RAMBlock *rb = g_ptr_array_index(blocks, i);
        if (strcmp(rb->idstr, idstr) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static bool ram_load_fail(GError **errp, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static bool ram_load_fail(GError **errp, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error_literal(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, msg);
    return false;
}

static bool ram_load_stream_fail(QEMUFile *f, GError **errp, const char *what)
{
    const char *msg = qemu_file_error_message(f);
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "ram: %s: %s", what,
                msg ? msg : g_strerror(-qemu_file_get_error(f)));
    return false;
}

/* Block ids from the stream may hold any byte: quote them printably. */
static char *ram_load_quote(const char *idstr)
{
    return g_strescape(idstr, NULL);
}

/* ---------------------------------------------------- a zeroed start */

/* Zero every page of @rb that exists and is not zero already. */
static void ram_load_zero_existing(RAMBlock *rb)
{
    RAMMigBlock b = {
        .rb = rb,
        .pages = rb->used_length / TARGET_PAGE_SIZE,
    };
    b.bmap = g_new0(unsigned long, MAX(WORDS_FOR(b.pages), 1));
    ram_dirty_mark_existing(&b);
    for (uint64_t w = 0; w < WORDS_FOR(b.pages); w++) {
        unsigned long bits = b.bmap[w];
        while (bits) {
            uint64_t page = w * BITS_PER_WORD + (uint64_t)__builtin_ctzl(bits);
            bits &= bits - 1;
            uint8_t *host = rb->host + page * TARGET_PAGE_SIZE;
            if (!ram_page_is_zero(host)) {
                memset(host, 0, TARGET_PAGE_SIZE);
            }
        }
    }
    g_free(b.bmap);
}

/* True when the backing file has data in [0, used_length). */
static bool ram_load_file_has_data(RAMBlock *rb)
{
    off_t data = lseek(rb->fd, 0, SEEK_DATA);
    if (data < 0) {
        return errno != ENXIO;
    }
    return (uint64_t)data < rb->used_length;
}

/*
 * The source sends only pages that exist on its side: everything else
 * must read as zero here before the first record arrives. A freshly
 * mapped anonymous block or memfd already does, but the machine may have
 * written into RAM at startup (boot blobs), and a file backend may hold
 * an earlier run's memory.
 *   anonymous private:  zero the pages that exist and are not zero (no
 *                       pages are dropped, so preallocation stays);
 *   anonymous shared:   drop the pages (MADV_REMOVE frees the shmem
 *                       behind them), else as above;
 *   memfd/file shared:  punch a hole over the block (or, where the file
 *                       system can't, shrink the file and grow it back);
 *   memfd/file private: drop our private copies, then zero (privately)
 *                       the file's non-zero pages; the file is not touched.
 */
static bool ram_load_zero_block(RAMBlock *rb, GError **errp)
{
    if (rb->fd < 0) {
        if (!rb->shared || madvise(rb->host, rb->used_length, MADV_REMOVE) < 0) {
            ram_load_zero_existing(rb);
        }
        return true;
    }
    if (rb->shared) {
        if (!ram_load_file_has_data(rb)) {
            return true;
        }
        if (fallocate(rb->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
                      (off_t)rb->used_length) == 0) {
            return true;
        }
        struct stat st;
        if (fstat(rb->fd, &st) == 0 && (uint64_t)st.st_size == rb->used_length &&
            ftruncate(rb->fd, 0) == 0) {
            if (ftruncate(rb->fd, (off_t)rb->used_length) < 0) {
                g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                            "ram: block '%s': can't grow the backing file back to "
                            "0x%" G_GINT64_MODIFIER "x bytes: %s",
                            rb->idstr, rb->used_length, g_strerror(errno));
                return false;
            }
            return true;
        }
        ram_load_zero_existing(rb);
        return true;
    }
    /* Should this fail, the private copies are checked below like the rest. */
    (void)madvise(rb->host, rb->used_length, MADV_DONTNEED);
    ram_load_zero_existing(rb);
    return true;
}

bool ram_load_prepare(RAMLoadState *ls, GError **errp)
{
    GPtrArray *blocks = ram_load_blocks(ls);

    ls->block_list_seen = false;
    for (guint i = 0; i < blocks->len; i++) {
        if (!ram_load_zero_block(g_ptr_array_index(blocks, i), errp)) {
            return false;
        }
    }
    return true;
}

/* --------------------------------------------------------- the records */

/* START: total | MEM_SIZE (already read as @header), the block list, EOS. */
static bool ram_load_block_list(RAMLoadState *ls, QEMUFile *f, uint64_t header, GError **errp)
{
    GPtrArray *blocks = ram_load_blocks(ls);
    g_autofree bool *listed = g_new0(bool, MAX(blocks->len, 1));
    uint64_t total = header & ~RAM_SAVE_FLAGS_MASK;
    uint64_t remaining = total;

    if ((header & RAM_SAVE_FLAGS_MASK) != RAM_SAVE_FLAG_MEM_SIZE) {
        return ram_load_fail(errp, "ram: block list header 0x%" G_GINT64_MODIFIER "x has "
                             "other flags than MEM_SIZE", header);
    }
    /* Every pass lists a different destination block or fails. */
    while (remaining > 0) {
        char idstr[256];
        if (!qemu_get_counted_string(f, idstr)) {
            return ram_load_stream_fail(f, errp, "reading the block list");
        }
        uint64_t len = qemu_get_be64(f);
        if (qemu_file_get_error(f)) {
            return ram_load_stream_fail(f, errp, "reading the block list");
        }
        int idx = ram_load_find(ls, idstr);
        if (idx < 0) {
            g_autofree char *q = ram_load_quote(idstr);
            return ram_load_fail(errp, "ram: the source has RAM block '%s', which does "
                                 "not exist here", q);
        }
        RAMBlock *rb = g_ptr_array_index(blocks, idx);
        if (listed[idx]) {
            return ram_load_fail(errp, "ram: block '%s' is listed twice", rb->idstr);
        }
        listed[idx] = true;
        if (len != rb->used_length) {
            return ram_load_fail(errp, "ram: block '%s' has size 0x%" G_GINT64_MODIFIER "x "
                                 "on the source but 0x%" G_GINT64_MODIFIER "x here",
                                 rb->idstr, len, rb->used_length);
        }
        if (len > remaining) {
            return ram_load_fail(errp, "ram: block '%s' goes past the total RAM size "
                                 "0x%" G_GINT64_MODIFIER "x of the block list",
                                 rb->idstr, total);
        }
        remaining -= len;
    }
    for (guint i = 0; i < blocks->len; i++) {
        if (!listed[i]) {
            RAMBlock *rb = g_ptr_array_index(blocks, i);
            return ram_load_fail(errp, "ram: block '%s' (size 0x%" G_GINT64_MODIFIER "x) "
                                 "is missing from the source's block list",
                                 rb->idstr, rb->used_length);
        }
    }
    uint64_t eos = qemu_get_be64(f);
    if (qemu_file_get_error(f)) {
        return ram_load_stream_fail(f, errp, "reading the end of the block list");
    }
    if (eos != RAM_SAVE_FLAG_EOS) {
        return ram_load_fail(errp, "ram: block list not followed by EOS "
                             "(0x%" G_GINT64_MODIFIER "x)", eos);
    }
    ls->block_list_seen = true;
    return true;
}

/* ZERO and PAGE records from @header on, through EOS. */
static bool ram_load_records(RAMLoadState *ls, QEMUFile *f, uint64_t header, GError **errp)
{
    RAMBlock *block = NULL;     /* named by the last record of this payload */

    /* One record per pass; each consumes at least 9 bytes of the stream. */
    for (;;) {
        uint64_t flags = header & RAM_SAVE_FLAGS_MASK;
        uint64_t offset = header & ~RAM_SAVE_FLAGS_MASK;

        if (flags & ~(uint64_t)RAM_SAVE_FLAGS_DEFINED) {
            return ram_load_fail(errp, "ram: record 0x%" G_GINT64_MODIFIER "x: page offset "
                                 "0x%" G_GINT64_MODIFIER "x is not page-aligned",
                                 header, header & ~(uint64_t)RAM_SAVE_FLAGS_DEFINED);
        }
        if (flags & ~(uint64_t)RAM_SAVE_FLAGS_KNOWN) {
            return ram_load_fail(errp, "ram: record 0x%" G_GINT64_MODIFIER "x: unknown flags "
                                 "0x%" G_GINT64_MODIFIER "x", header,
                                 flags & ~(uint64_t)RAM_SAVE_FLAGS_KNOWN);
        }
        if (header == RAM_SAVE_FLAG_EOS) {
            return true;
        }
        if (header == RAM_SAVE_FLAG_MULTIFD_FLUSH) {
            if (!multifd_recv_sync_main(errp)) {
                g_prefix_error(errp, "ram: ");
                return false;
            }
            /* The next record names its block again (the source forgot it too). */
            block = NULL;
            header = qemu_get_be64(f);
            if (qemu_file_get_error(f)) {
                return ram_load_stream_fail(f, errp, "reading a record header");
            }
            continue;
        }
        uint64_t kind = flags & ~(uint64_t)RAM_SAVE_FLAG_CONTINUE;
        if (kind != RAM_SAVE_FLAG_ZERO && kind != RAM_SAVE_FLAG_PAGE) {
            return ram_load_fail(errp, "ram: record 0x%" G_GINT64_MODIFIER "x: invalid flag "
                                 "combination 0x%" G_GINT64_MODIFIER "x", header, flags);
        }

        if (flags & RAM_SAVE_FLAG_CONTINUE) {
            if (!block) {
                return ram_load_fail(errp, "ram: record 0x%" G_GINT64_MODIFIER "x continues "
                                     "a block, but none was named in this section", header);
            }
        } else {
            char idstr[256];
            if (!qemu_get_counted_string(f, idstr)) {
                return ram_load_stream_fail(f, errp, "reading a block id");
            }
            int idx = ram_load_find(ls, idstr);
            if (idx < 0) {
                g_autofree char *q = ram_load_quote(idstr);
                return ram_load_fail(errp, "ram: page offset 0x%" G_GINT64_MODIFIER "x in "
                                     "unknown block '%s'", offset, q);
            }
            block = g_ptr_array_index(ram_load_blocks(ls), idx);
        }
        if (offset >= block->used_length) {
            return ram_load_fail(errp, "ram: page offset 0x%" G_GINT64_MODIFIER "x outside "
                                 "block '%s' (size 0x%" G_GINT64_MODIFIER "x)",
                                 offset, block->idstr, block->used_length);
        }

        uint8_t *host = block->host + offset;
        if (kind == RAM_SAVE_FLAG_ZERO) {
            uint8_t fill = qemu_get_byte(f);
            if (qemu_file_get_error(f)) {
                return ram_load_stream_fail(f, errp, "reading a zero page");
            }
            if (fill != 0) {
                return ram_load_fail(errp, "ram: zero page at offset 0x%" G_GINT64_MODIFIER "x "
                                     "of block '%s' has fill byte 0x%02x (must be 0)",
                                     offset, block->idstr, fill);
            }
            /* Reading an untouched page costs no memory; writing would. */
            if (!ram_page_is_zero(host)) {
                memset(host, 0, TARGET_PAGE_SIZE);
            }
        } else {
            qemu_get_buffer(f, host, TARGET_PAGE_SIZE);
            if (qemu_file_get_error(f)) {
                g_autofree char *what = g_strdup_printf(
                    "reading page offset 0x%" G_GINT64_MODIFIER "x of block '%s'",
                    offset, block->idstr);
                return ram_load_stream_fail(f, errp, what);
            }
        }

        header = qemu_get_be64(f);
        if (qemu_file_get_error(f)) {
            return ram_load_stream_fail(f, errp, "reading a record header");
        }
    }
}

bool ram_load_payload(RAMLoadState *ls, QEMUFile *f, GError **errp)
{
    uint64_t header = qemu_get_be64(f);

    if (qemu_file_get_error(f)) {
        return ram_load_stream_fail(f, errp, "reading a record header");
    }
    if (header & RAM_SAVE_FLAG_MEM_SIZE) {
        if (ls->block_list_seen) {
            return ram_load_fail(errp, "ram: a second block list "
                                 "(record 0x%" G_GINT64_MODIFIER "x)", header);
        }
        return ram_load_block_list(ls, f, header, errp);
    }
    if (!ls->block_list_seen) {
        return ram_load_fail(errp, "ram: records before the block list "
                             "(record 0x%" G_GINT64_MODIFIER "x)", header);
    }
    return ram_load_records(ls, f, header, errp);
}
