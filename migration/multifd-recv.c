/*
 * multifd, destination side: the channels that arrive on the listener
 * (in any order, before or after the main stream), one receive thread
 * per channel, and the sync with the load thread.
 *
 * The main thread files every channel under the migration UUID of its
 * handshake. The load thread, on the configuration section, learns the
 * source's UUID, channel count and compression, checks them against this
 * side's settings, drops channels of any other migration and waits for
 * the rest to connect. The receive threads start once the RAM blocks are
 * prepared (qemu_loadvm_state() calls multifd_recv_start()).
 *
 * Each thread reads a header, checks it (multifd-packet.c), checks every
 * offset against its block, and reads the payload straight into guest
 * memory (raw) or decodes it there (zlib/zstd). A SYNC packet parks the
 * thread until the load thread reads the matching MULTIFD_FLUSH record
 * and every channel has parked: pages sent before a sync point are all in
 * place before any page sent after it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <gio/gio.h>

#include "migration/multifd.h"
#include "migration/options.h"
#include "migration/ram.h"

/* How long the load thread waits for every channel to connect. */
#define MULTIFD_RECV_CONNECT_TIMEOUT_S 60

typedef struct MultiFDArrival {
    MigChannel *ch;
    MultiFDHandshake hs;
} MultiFDArrival;

typedef struct MultiFDRecvChannel {
    unsigned id;
    MigChannel *ch;
    GThread *thread;

    /* Under MultiFDRecvState.lock. */
    bool parked;                /* read a SYNC packet; waits for release */
    bool ended;                 /* the thread is done (end of stream, error, quit) */

    /* The thread's own. */
    uint8_t *header;            /* MULTIFD_HEADER_MAX */
    uint64_t offsets[MULTIFD_PACKET_PAGES];
    uint8_t *pages[MULTIFD_PACKET_PAGES];
    struct iovec iov[MULTIFD_PACKET_PAGES];
    MultiFDDecompressor *decomp;
    uint8_t *payload;
    RAMBlock *block;            /* the last packet's block */
} MultiFDRecvChannel;

typedef struct MultiFDRecvState {
    GMutex lock;
    GCond cond;
    GPtrArray *arrived;         /* MultiFDArrival *, until setup takes them */
    bool uuid_known;
    uint8_t uuid[MULTIFD_UUID_LEN];
    unsigned nr_channels;
    MultiFDCompression compression;
    MultiFDRecvChannel *channels;
    MigChannel *main_channel;   /* shut down when a channel fails */
    gint active;                /* atomic: channels set up */
    bool quit;
    GError *error;
    unsigned parked;
} MultiFDRecvState;

static MultiFDRecvState mr;

static void multifd_arrival_free(gpointer p)
{
    MultiFDArrival *a = p;
    mig_channel_free(a->ch);
    g_free(a);
}

static GPtrArray *multifd_recv_arrived(void)
{
    if (!mr.arrived) {
        mr.arrived = g_ptr_array_new_with_free_func(multifd_arrival_free);
    }
    return mr.arrived;
}

bool multifd_recv_active(void)
{
    return g_atomic_int_get(&mr.active);
}

void multifd_recv_reset(void)
{
    g_mutex_lock(&mr.lock);
    g_ptr_array_set_size(multifd_recv_arrived(), 0);
    mr.uuid_known = false;
    g_clear_error(&mr.error);
    mr.quit = false;
    g_mutex_unlock(&mr.lock);
}

static bool multifd_arrival_matches(const MultiFDArrival *a)
{
    return !mr.uuid_known || memcmp(a->hs.uuid, mr.uuid, MULTIFD_UUID_LEN) == 0;
}

void multifd_recv_new_channel(MigChannel *ch, const MultiFDHandshake *hs)
{
    const char *why = NULL;

    g_mutex_lock(&mr.lock);
    GPtrArray *arrived = multifd_recv_arrived();
    if (mr.quit) {
        why = "the incoming migration is over";
    } else if (mr.active) {
        why = "this migration has all its channels";
    } else if (mr.uuid_known && memcmp(hs->uuid, mr.uuid, MULTIFD_UUID_LEN) != 0) {
        why = "it belongs to another migration";
    } else if (mr.uuid_known && (hs->channels != mr.nr_channels ||
                                 hs->compression != mr.compression)) {
        why = "its channel count or compression differs from the main stream's";
    } else if (mr.uuid_known && hs->channel_id >= mr.nr_channels) {
        why = "its number is out of range";
    } else if (mr.uuid_known) {
        /*
         * Every arrival is checked from here on. Before, two channels may
         * claim one number (one of them with the wrong count): setup
         * sorts them out.
         */
        for (guint i = 0; i < arrived->len; i++) {
            MultiFDArrival *a = g_ptr_array_index(arrived, i);
            if (a->hs.channel_id == hs->channel_id && multifd_arrival_matches(a)) {
                why = "a channel with that number is already connected";
                break;
            }
        }
    }
    if (!why) {
        MultiFDArrival *a = g_new0(MultiFDArrival, 1);
        a->ch = ch;
        a->hs = *hs;
        g_ptr_array_add(arrived, a);
        g_cond_broadcast(&mr.cond);
    }
    g_mutex_unlock(&mr.lock);
    if (why) {
        fprintf(stderr, "ferry: refused multifd channel %u from %s: %s\n", hs->channel_id,
                mig_channel_desc(ch), why);
        mig_channel_free(ch);
    }
}

/* How many of channels 0..@n-1 of our migration have arrived (lock held). */
static unsigned multifd_recv_count_arrived(unsigned n)
{
    uint64_t seen[4] = { 0 };       /* channel numbers are below 256 */
    unsigned have = 0;

    for (guint i = 0; i < mr.arrived->len; i++) {
        MultiFDArrival *a = g_ptr_array_index(mr.arrived, i);
        uint32_t id = a->hs.channel_id;
        if (multifd_arrival_matches(a) && id < n && id < 256 &&
            !(seen[id / 64] & (1ULL << (id % 64)))) {
            seen[id / 64] |= 1ULL << (id % 64);
            have++;
        }
    }
    return have;
}

bool multifd_recv_wants_channels(void)
{
    if (!migrate_cap(MIGRATION_CAPABILITY_MULTIFD)) {
        return false;
    }
    g_mutex_lock(&mr.lock);
    multifd_recv_arrived();
    unsigned want = mr.active ? 0 : (mr.uuid_known ? mr.nr_channels
                                                   : migrate_params()->multifd_channels);
    bool wants = multifd_recv_count_arrived(want) < want;
    g_mutex_unlock(&mr.lock);
    return wants;
}

/* ------------------------------------------------------------ setup */

static bool multifd_recv_check_settings(uint32_t channels, MultiFDCompression compression,
                                        GError **errp)
{
    const MigrationParameters *p = migrate_params();

    if (!migrate_cap(MIGRATION_CAPABILITY_MULTIFD)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "the source uses multifd (%u channels), but the multifd capability is "
                    "off here: set it on both sides", channels);
        return false;
    }
    if (channels != p->multifd_channels) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "multifd-channels mismatch: the source uses %u, this destination is set "
                    "to %u (set the same value on both sides)", channels, p->multifd_channels);
        return false;
    }
    if (compression != p->multifd_compression) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "multifd-compression mismatch: the source uses '%s', this destination is "
                    "set to '%s' (set the same value on both sides)",
                    multifd_compression_name(compression),
                    multifd_compression_name(p->multifd_compression));
        return false;
    }
    return true;
}

static bool multifd_recv_all_arrived(void)
{
    return multifd_recv_count_arrived(mr.nr_channels) == mr.nr_channels;
}

bool multifd_recv_setup(const uint8_t *uuid, uint32_t channels, MultiFDCompression compression,
                        MigChannel *main_channel, GError **errp)
{
    if (!multifd_recv_check_settings(channels, compression, errp)) {
        return false;
    }

    g_mutex_lock(&mr.lock);
    GPtrArray *arrived = multifd_recv_arrived();
    memcpy(mr.uuid, uuid, MULTIFD_UUID_LEN);
    mr.uuid_known = true;
    mr.nr_channels = channels;
    mr.compression = compression;
    mr.main_channel = main_channel;
    mr.parked = 0;
    for (guint i = 0; i < arrived->len;) {
        MultiFDArrival *a = g_ptr_array_index(arrived, i);
        const char *why = !multifd_arrival_matches(a) ? "it belongs to another migration"
            : (a->hs.channels != channels || a->hs.compression != compression)
            ? "its channel count or compression differs from the main stream's"
            : a->hs.channel_id >= channels ? "its number is out of range" : NULL;
        if (why) {
            fprintf(stderr, "ferry: refused multifd channel %u from %s: %s\n",
                    a->hs.channel_id, mig_channel_desc(a->ch), why);
            g_ptr_array_remove_index(arrived, i);
            continue;
        }
        i++;
    }
    gint64 deadline = g_get_monotonic_time() + MULTIFD_RECV_CONNECT_TIMEOUT_S * G_USEC_PER_SEC;
    bool source_gone = false;
    while (!multifd_recv_all_arrived() && !mr.quit) {
        gint64 now = g_get_monotonic_time();
        if (now >= deadline) {
            break;
        }
        /* A source that failed to connect its channels closes the main stream. */
        if (main_channel && mig_channel_peer_closed(main_channel)) {
            source_gone = true;
            break;
        }
        g_cond_wait_until(&mr.cond, &mr.lock, MIN(deadline, now + 100 * G_TIME_SPAN_MILLISECOND));
    }
    bool ok = false;
    if (source_gone) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE,
                    "multifd: the source closed the main stream before its channels "
                    "connected (the source's error says why)");
    } else if (mr.quit) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                    "multifd: cancelled while waiting for the channels");
    } else if (!multifd_recv_all_arrived()) {
        unsigned have = multifd_recv_count_arrived(channels);
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                    "multifd: only %u of %u channels connected within %d s", have, channels,
                    MULTIFD_RECV_CONNECT_TIMEOUT_S);
    } else {
        ok = true;
    }
    if (!ok) {
        g_mutex_unlock(&mr.lock);
        return false;
    }

    mr.channels = g_new0(MultiFDRecvChannel, channels);
    for (guint i = 0; i < arrived->len; i++) {
        MultiFDArrival *a = g_ptr_array_index(arrived, i);
        /* Filed under the checks above; a slot is never taken twice. */
        if (a->hs.channel_id >= channels || mr.channels[a->hs.channel_id].ch) {
            fprintf(stderr, "ferry: refused multifd channel %u from %s: a channel with that "
                    "number is already connected\n", a->hs.channel_id, mig_channel_desc(a->ch));
            continue;
        }
        MultiFDRecvChannel *c = &mr.channels[a->hs.channel_id];
        c->id = a->hs.channel_id;
        c->ch = a->ch;
        a->ch = NULL;
    }
    g_ptr_array_set_size(arrived, 0);
    for (unsigned i = 0; i < channels && ok; i++) {
        MultiFDRecvChannel *c = &mr.channels[i];
        c->header = g_malloc(MULTIFD_HEADER_MAX);
        if (compression != MULTIFD_COMPRESSION_NONE) {
            g_autoptr(GError) err = NULL;
            c->decomp = multifd_decompressor_new(compression, &err);
            c->payload = g_malloc(multifd_compress_bound(compression, MULTIFD_PACKET_PAGES));
            if (!c->decomp) {
                g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "multifd channel %u: %s", i,
                            err->message);
                ok = false;
            }
        }
    }
    g_atomic_int_set(&mr.active, 1);
    g_mutex_unlock(&mr.lock);
    return ok;
}

/* ------------------------------------------------------------ receive */

static bool multifd_recv_fail(MultiFDRecvChannel *c, const GError *err)
{
    g_mutex_lock(&mr.lock);
    if (!mr.quit && !mr.error) {
        mr.error = g_error_new(G_IO_ERROR, G_IO_ERROR_FAILED, "multifd channel %u: %s", c->id,
                               err->message);
        /* The source stops at once, and so does the load thread. */
        for (unsigned i = 0; i < mr.nr_channels; i++) {
            if (mr.channels[i].ch) {
                mig_channel_shutdown(mr.channels[i].ch);
            }
        }
        if (mr.main_channel) {
            mig_channel_shutdown(mr.main_channel);
        }
    }
    g_cond_broadcast(&mr.cond);
    g_mutex_unlock(&mr.lock);
    return false;
}

static bool multifd_recv_read(MultiFDRecvChannel *c, void *buf, size_t len, GError **errp)
{
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    int r = mig_channel_readv_all(c->ch, &iov, 1, errp);
    if (r == 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE,
                    "the stream ended inside a packet");
    }
    return r > 0;
}

/* The pages of one packet whose header is in c->header. */
static bool multifd_recv_pages(MultiFDRecvChannel *c, const MultiFDPacketHeader *h,
                               GError **errp)
{
    unsigned count = h->normal + h->zero;

    if (!c->block || strcmp(c->block->idstr, h->block) != 0) {
        c->block = ramblock_find(h->block);
        if (!c->block) {
            g_autofree char *q = g_strescape(h->block, NULL);
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                        "packet %" G_GUINT64_FORMAT " names RAM block '%s', which does not "
                        "exist here", h->packet_num, q);
            return false;
        }
    }
    uint8_t *raw = c->header + MULTIFD_HEADER_SIZE;
    if (!multifd_recv_read(c, raw, 8 * (size_t)count, errp) ||
        !multifd_packet_decode_offsets(raw, count, c->block->used_length, c->offsets, errp)) {
        return false;
    }
    uint8_t *host = c->block->host;
    for (unsigned i = 0; i < h->normal; i++) {
        c->pages[i] = host + c->offsets[i];
    }
    if (h->normal) {
        if (mr.compression == MULTIFD_COMPRESSION_NONE || (h->flags & MULTIFD_FLAG_RAW)) {
            for (unsigned i = 0; i < h->normal; i++) {
                c->iov[i] = (struct iovec) { .iov_base = c->pages[i],
                                             .iov_len = TARGET_PAGE_SIZE };
            }
            int r = mig_channel_readv_all(c->ch, c->iov, (int)h->normal, errp);
            if (r == 0) {
                g_set_error(errp, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE,
                            "the stream ended inside a packet");
            }
            if (r <= 0) {
                return false;
            }
        } else if (!multifd_recv_read(c, c->payload, h->payload_size, errp) ||
                   !multifd_decompress_pages(c->decomp, c->payload, h->payload_size,
                                             c->pages, h->normal, errp)) {
            return false;
        }
    }
    for (unsigned i = h->normal; i < count; i++) {
        uint8_t *page = host + c->offsets[i];
        /* Reading an untouched page costs no memory; writing would. */
        if (!ram_page_is_zero(page)) {
            memset(page, 0, TARGET_PAGE_SIZE);
        }
    }
    return true;
}

/* Park after a SYNC packet until the load thread releases every channel. */
static bool multifd_recv_park(MultiFDRecvChannel *c)
{
    g_mutex_lock(&mr.lock);
    c->parked = true;
    mr.parked++;
    g_cond_broadcast(&mr.cond);
    while (c->parked && !mr.quit && !mr.error) {
        g_cond_wait(&mr.cond, &mr.lock);
    }
    bool go = !c->parked;
    g_mutex_unlock(&mr.lock);
    return go;
}

static gpointer multifd_recv_thread(gpointer opaque)
{
    MultiFDRecvChannel *c = opaque;
    MultiFDPacketHeader h;

    for (;;) {
        g_autoptr(GError) err = NULL;
        struct iovec iov = { .iov_base = c->header, .iov_len = MULTIFD_HEADER_SIZE };
        int r = mig_channel_readv_all(c->ch, &iov, 1, &err);
        if (r == 0) {
            break;      /* the source closed the channel between packets */
        }
        if (r < 0 ||
            !multifd_packet_decode_header(c->header, mr.compression, &h, &err) ||
            (h.normal + h.zero && !multifd_recv_pages(c, &h, &err))) {
            multifd_recv_fail(c, err);
            break;
        }
        if ((h.flags & MULTIFD_FLAG_SYNC) && !multifd_recv_park(c)) {
            break;
        }
    }
    g_mutex_lock(&mr.lock);
    c->ended = true;
    g_cond_broadcast(&mr.cond);
    g_mutex_unlock(&mr.lock);
    return NULL;
}

void multifd_recv_start(void)
{
    if (!multifd_recv_active()) {
        return;
    }
    for (unsigned i = 0; i < mr.nr_channels; i++) {
        g_autofree char *name = g_strdup_printf("mig/dst/mfd%u", i);
        mr.channels[i].thread = g_thread_new(name, multifd_recv_thread, &mr.channels[i]);
    }
}

bool multifd_recv_sync_main(GError **errp)
{
    if (!multifd_recv_active()) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "a multifd flush record, but this migration has no multifd channels");
        return false;
    }
    g_mutex_lock(&mr.lock);
    int ended = -1;
    for (;;) {
        if (mr.error || mr.quit || mr.parked == mr.nr_channels) {
            break;
        }
        for (unsigned i = 0; i < mr.nr_channels && ended < 0; i++) {
            if (mr.channels[i].ended && !mr.channels[i].parked) {
                ended = (int)i;
            }
        }
        if (ended >= 0) {
            break;
        }
        g_cond_wait(&mr.cond, &mr.lock);
    }
    bool ok = false;
    if (mr.error) {
        g_propagate_error(errp, g_error_copy(mr.error));
    } else if (mr.quit) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_CANCELLED, "multifd: cancelled");
    } else if (ended >= 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE,
                    "multifd channel %d: the source closed it before its sync packet", ended);
    } else {
        for (unsigned i = 0; i < mr.nr_channels; i++) {
            mr.channels[i].parked = false;
        }
        mr.parked = 0;
        g_cond_broadcast(&mr.cond);
        ok = true;
    }
    g_mutex_unlock(&mr.lock);
    return ok;
}

const GError *multifd_recv_error(void)
{
    return mr.error;
}

void multifd_recv_shutdown(void)
{
    g_mutex_lock(&mr.lock);
    mr.quit = true;
    for (unsigned i = 0; mr.channels && i < mr.nr_channels; i++) {
        if (mr.channels[i].ch) {
            mig_channel_shutdown(mr.channels[i].ch);
        }
    }
    g_cond_broadcast(&mr.cond);
    g_mutex_unlock(&mr.lock);
}

void multifd_recv_cleanup(void)
{
    g_mutex_lock(&mr.lock);
    MultiFDRecvChannel *channels = mr.channels;
    unsigned n = mr.nr_channels;
    g_mutex_unlock(&mr.lock);

    /* Every page before the last sync is in place: stop whatever still reads, refuse more. */
    multifd_recv_shutdown();
    if (channels) {
        for (unsigned i = 0; i < n; i++) {
            if (channels[i].thread) {
                g_thread_join(channels[i].thread);
            }
        }
    }
    g_mutex_lock(&mr.lock);
    g_atomic_int_set(&mr.active, 0);
    mr.channels = NULL;
    mr.main_channel = NULL;
    g_ptr_array_set_size(multifd_recv_arrived(), 0);
    g_mutex_unlock(&mr.lock);
    for (unsigned i = 0; channels && i < n; i++) {
        MultiFDRecvChannel *c = &channels[i];
        mig_channel_free(c->ch);
        if (c->decomp) {
            multifd_decompressor_free(c->decomp);
        }
        g_free(c->payload);
        g_free(c->header);
    }
    g_free(channels);
}
