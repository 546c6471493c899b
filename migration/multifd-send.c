/*
 * multifd, source side: N channels, each with a thread that turns a batch
 * of page offsets into a packet and writes it.
 *
 * The migration thread fills a batch (one block, up to 128 pages) and
 * swaps it with the empty batch of an idle channel: one lock round trip
 * per packet, never per page, and no copy or allocation. The channel
 * thread owns everything it touches while it works: its batch, header
 * buffer, iovec, compression stream and payload buffer. Pages are read
 * from guest memory when the packet is written; a guest write after the
 * dirty bit was cleared is caught by the next dirty-log sync.
 *
 * Sync: every channel gets a SYNC packet after its last batch, and the
 * migration thread waits until all of them went out before it writes the
 * MULTIFD_FLUSH record on the main stream (multifd-recv.c has the other
 * half).
 */
#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <gio/gio.h>

#include "migration/migration.h"
#include "migration/multifd.h"
#include "migration/options.h"
#include "migration/ram.h"

/*
 * zlib level 1 runs at a few tens of MB/s per core on pages it cannot
 * shrink (encrypted or compressed guest data), zstd at a few hundred:
 * slower than the link. After a packet that saved less than 1/16, a
 * channel sends the next packets uncompressed (MULTIFD_FLAG_RAW), then
 * tries one compressed again: 16 packets, doubling while the tries fail,
 * up to 1024 (512 MiB).
 */
#define MULTIFD_RAW_PACKETS     16
#define MULTIFD_RAW_PACKETS_MAX 1024

typedef struct MultiFDBatch {
    RAMBlock *rb;
    unsigned n;
    uint64_t offsets[MULTIFD_PACKET_PAGES];
} MultiFDBatch;

typedef struct MultiFDSendChannel {
    unsigned id;
    MigChannel *ch;
    GThread *thread;
    GCond job_cond;             /* a job was handed over, or quit */

    /* Under MultiFDSendState.lock. */
    bool busy;                  /* a job is handed over and not done yet */
    bool job_sync;              /* the job is a SYNC packet */
    MultiFDBatch *batch;        /* the channel's batch (owned by the thread while busy) */

    /* The channel thread's own. */
    uint64_t packet_num;
    uint8_t *header;            /* MULTIFD_HEADER_MAX */
    uint64_t offsets[MULTIFD_PACKET_PAGES];
    const uint8_t *pages[MULTIFD_PACKET_PAGES];
    struct iovec iov[MULTIFD_PACKET_PAGES + 1];
    MultiFDCompressor *comp;
    uint8_t *payload;           /* compressed data */
    unsigned raw_left;          /* packets still to send uncompressed */
    unsigned raw_backoff;       /* the last such run's length; 0 after a good packet */
} MultiFDSendChannel;

typedef struct MultiFDSendState {
    unsigned nr_channels;
    MultiFDSendChannel *channels;
    MultiFDCompression compression;
    ZeroPageDetection zero_detection;
    uint8_t uuid[MULTIFD_UUID_LEN];

    GMutex lock;
    GCond idle_cond;            /* a channel finished a job, or failed */
    bool quit;
    bool failed;
    GError *error;              /* the first failure, naming its channel */
    unsigned next;              /* round-robin start for the idle search */

    MultiFDBatch *batch;        /* the migration thread's batch being filled */
    MigUri *uri;                /* where the channels connect */
} MultiFDSendState;

/* Guards the pointer: cancel (main thread) may race with cleanup. */
static GMutex multifd_send_ptr_lock;
static MultiFDSendState *multifd_send;

bool multifd_send_active(void)
{
    return multifd_send != NULL;
}

const uint8_t *multifd_send_uuid(void)
{
    return multifd_send ? multifd_send->uuid : NULL;
}

uint32_t multifd_send_channels(void)
{
    return multifd_send ? multifd_send->nr_channels : 0;
}

MultiFDCompression multifd_send_compression(void)
{
    return multifd_send ? multifd_send->compression : MULTIFD_COMPRESSION_NONE;
}

const GError *multifd_send_error(void)
{
    return multifd_send ? multifd_send->error : NULL;
}

/* Fail every channel's I/O and wake every waiter (lock held). */
static void multifd_send_shutdown_locked(MultiFDSendState *ms)
{
    ms->failed = true;
    for (unsigned i = 0; i < ms->nr_channels; i++) {
        if (ms->channels[i].ch) {
            mig_channel_shutdown(ms->channels[i].ch);
        }
        g_cond_broadcast(&ms->channels[i].job_cond);
    }
    g_cond_broadcast(&ms->idle_cond);
}

/* Record the first failure and wake everybody (lock held). */
static void multifd_send_fail_locked(MultiFDSendState *ms, unsigned id, const GError *err)
{
    if (!ms->error) {
        ms->error = g_error_new(G_IO_ERROR, G_IO_ERROR_FAILED, "multifd channel %u: %s", id,
                                err->message);
    }
    /* The other channels would block on a destination that is going away. */
    multifd_send_shutdown_locked(ms);
}

/* Build and write one packet for the channel's batch (or a SYNC packet). */
static bool multifd_send_packet(MultiFDSendState *ms, MultiFDSendChannel *c, bool sync,
                                GError **errp)
{
    MultiFDBatch *b = c->batch;
    MultiFDPacketHeader h = { .flags = sync ? MULTIFD_FLAG_SYNC : 0 };
    unsigned normal = 0, zero = 0;
    uint64_t zero_offsets[MULTIFD_PACKET_PAGES];

    if (!sync && b->n) {
        const uint8_t *base = b->rb->host;
        bool detect = ms->zero_detection == ZERO_PAGE_DETECTION_MULTIFD;
        for (unsigned i = 0; i < b->n; i++) {
            const uint8_t *page = base + b->offsets[i];
            if (detect && ram_page_is_zero(page)) {
                zero_offsets[zero++] = b->offsets[i];
            } else {
                c->offsets[normal] = b->offsets[i];
                c->pages[normal++] = page;
            }
        }
        memcpy(c->offsets + normal, zero_offsets, zero * sizeof(uint64_t));
        g_strlcpy(h.block, b->rb->idstr, sizeof(h.block));
    }
    h.normal = normal;
    h.zero = zero;
    h.packet_num = c->packet_num++;

    int iovcnt = 1;
    bool compress = normal && ms->compression != MULTIFD_COMPRESSION_NONE;
    if (compress && c->raw_left) {
        c->raw_left--;
        compress = false;
        h.flags |= MULTIFD_FLAG_RAW;
    }
    if (compress) {
        size_t len = 0;
        size_t raw = (size_t)normal * TARGET_PAGE_SIZE;
        if (!multifd_compress_pages(c->comp, c->pages, normal, c->payload, &len, errp)) {
            return false;
        }
        if (len > raw - raw / 16) {
            /* Each probe that fails again doubles the wait before the next. */
            c->raw_backoff = c->raw_backoff ? MIN(c->raw_backoff * 2, MULTIFD_RAW_PACKETS_MAX)
                                            : MULTIFD_RAW_PACKETS;
            c->raw_left = c->raw_backoff;
        } else {
            c->raw_backoff = 0;
        }
        h.payload_size = (uint32_t)len;
        c->iov[1] = (struct iovec) { .iov_base = c->payload, .iov_len = len };
        iovcnt = 2;
    } else {
        h.payload_size = normal * (uint32_t)TARGET_PAGE_SIZE;
        for (unsigned i = 0; i < normal; i++) {
            c->iov[1 + i] = (struct iovec) {
                .iov_base = (void *)c->pages[i], .iov_len = TARGET_PAGE_SIZE,
            };
        }
        iovcnt = 1 + (int)normal;
    }
    size_t hlen = multifd_packet_encode(&h, c->offsets, c->header);
    c->iov[0] = (struct iovec) { .iov_base = c->header, .iov_len = hlen };
    if (!mig_channel_writev_all(c->ch, c->iov, iovcnt, errp)) {
        return false;
    }
    mig_stat_add(&mig_stats.multifd_bytes, hlen + h.payload_size);
    mig_stat_add(&mig_stats.normal_pages, normal);
    mig_stat_add(&mig_stats.zero_pages, zero);
    return true;
}

static gpointer multifd_send_thread(gpointer opaque)
{
    MultiFDSendChannel *c = opaque;
    MultiFDSendState *ms = multifd_send;

    for (;;) {
        g_mutex_lock(&ms->lock);
        while (!c->busy && !ms->quit) {
            g_cond_wait(&c->job_cond, &ms->lock);
        }
        if (!c->busy || ms->failed) {
            c->busy = false;
            g_mutex_unlock(&ms->lock);
            break;
        }
        bool sync = c->job_sync;
        g_mutex_unlock(&ms->lock);

        g_autoptr(GError) err = NULL;
        bool ok = multifd_send_packet(ms, c, sync, &err);

        g_mutex_lock(&ms->lock);
        c->batch->n = 0;
        c->busy = false;
        c->job_sync = false;
        if (!ok) {
            multifd_send_fail_locked(ms, c->id, err);
        }
        g_cond_broadcast(&ms->idle_cond);
        g_mutex_unlock(&ms->lock);
        if (!ok) {
            break;
        }
    }
    return NULL;
}

static MultiFDSendChannel *multifd_send_wait_idle_locked(MultiFDSendState *ms)
{
    for (;;) {
        if (ms->failed) {
            return NULL;
        }
        for (unsigned k = 0; k < ms->nr_channels; k++) {
            unsigned i = (ms->next + k) % ms->nr_channels;
            if (!ms->channels[i].busy) {
                ms->next = (i + 1) % ms->nr_channels;
                return &ms->channels[i];
            }
        }
        g_cond_wait(&ms->idle_cond, &ms->lock);
    }
}

/* Hand the filled batch to an idle channel and take its empty one. */
static bool multifd_send_flush_batch(MultiFDSendState *ms)
{
    if (ms->batch->n == 0) {
        return !ms->failed;
    }
    g_mutex_lock(&ms->lock);
    MultiFDSendChannel *c = multifd_send_wait_idle_locked(ms);
    if (c) {
        MultiFDBatch *empty = c->batch;
        c->batch = ms->batch;
        ms->batch = empty;
        c->job_sync = false;
        c->busy = true;
        g_cond_signal(&c->job_cond);
    }
    g_mutex_unlock(&ms->lock);
    return c != NULL;
}

bool multifd_queue_page(RAMBlock *rb, uint64_t offset)
{
    MultiFDSendState *ms = multifd_send;
    MultiFDBatch *b = ms->batch;

    if (b->n && (b->rb != rb || b->n == MULTIFD_PACKET_PAGES)) {
        if (!multifd_send_flush_batch(ms)) {
            return false;
        }
        b = ms->batch;
    }
    b->rb = rb;
    b->offsets[b->n++] = offset;
    return true;
}

bool multifd_send_sync(GError **errp)
{
    MultiFDSendState *ms = multifd_send;
    bool ok = multifd_send_flush_batch(ms);

    g_mutex_lock(&ms->lock);
    /* Each channel's SYNC goes after its last batch: wait for it to be idle. */
    for (unsigned i = 0; ok && i < ms->nr_channels; i++) {
        MultiFDSendChannel *c = &ms->channels[i];
        while (c->busy && !ms->failed) {
            g_cond_wait(&ms->idle_cond, &ms->lock);
        }
        if (ms->failed) {
            break;
        }
        c->job_sync = true;
        c->busy = true;
        g_cond_signal(&c->job_cond);
    }
    for (unsigned i = 0; i < ms->nr_channels; i++) {
        while (ms->channels[i].busy && !ms->failed) {
            g_cond_wait(&ms->idle_cond, &ms->lock);
        }
    }
    ok = !ms->failed;
    if (!ok) {
        if (ms->error) {
            g_propagate_error(errp, g_error_copy(ms->error));
        } else {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_CANCELLED, "multifd: cancelled");
        }
    }
    g_mutex_unlock(&ms->lock);
    return ok;
}

static bool multifd_send_channel_open(MultiFDSendState *ms, MultiFDSendChannel *c,
                                      const MigUri *uri, int cancel_fd, GError **errp)
{
    g_autoptr(GError) err = NULL;
    MultiFDHandshake hs = {
        .channel_id = c->id,
        .channels = ms->nr_channels,
        .compression = ms->compression,
    };
    uint8_t buf[MULTIFD_HANDSHAKE_SIZE];

    memcpy(hs.uuid, ms->uuid, sizeof(hs.uuid));
    MigChannel *ch = mig_channel_open_outgoing(uri, cancel_fd, &err);
    /* Published under the lock: a cancel may be shutting the channels down. */
    g_mutex_lock(&ms->lock);
    c->ch = ch;
    if (ch && ms->failed) {
        mig_channel_shutdown(ch);
    }
    g_mutex_unlock(&ms->lock);
    if (c->ch) {
        multifd_handshake_encode(&hs, buf);
        struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
        mig_channel_writev_all(c->ch, &iov, 1, &err);
    }
    if (!err && ms->compression != MULTIFD_COMPRESSION_NONE) {
        const MigrationParameters *p = migrate_params();
        int level = ms->compression == MULTIFD_COMPRESSION_ZLIB ? p->multifd_zlib_level
                                                                : p->multifd_zstd_level;
        c->comp = multifd_compressor_new(ms->compression, level, &err);
        c->payload = g_malloc(multifd_compress_bound(ms->compression, MULTIFD_PACKET_PAGES));
    }
    if (err) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "multifd channel %u: %s", c->id,
                    err->message);
        return false;
    }
    return true;
}

bool multifd_send_setup(const char *uri_str, GError **errp)
{
    const MigrationParameters *p = migrate_params();
    g_autoptr(MigUri) uri = mig_uri_parse(uri_str, errp);

    if (!uri) {
        return false;
    }
    if (uri->kind != MIG_URI_TCP && uri->kind != MIG_URI_UNIX) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "multifd needs a tcp: or unix: migration URI, not '%s'", uri_str);
        return false;
    }

    MultiFDSendState *ms = g_new0(MultiFDSendState, 1);
    g_mutex_init(&ms->lock);
    g_cond_init(&ms->idle_cond);
    ms->nr_channels = MAX(p->multifd_channels, 1);
    ms->compression = p->multifd_compression;
    ms->zero_detection = p->zero_page_detection;
    for (unsigned i = 0; i < MULTIFD_UUID_LEN; i += 4) {
        guint32 r = g_random_int();
        memcpy(ms->uuid + i, &r, 4);
    }
    ms->batch = g_new0(MultiFDBatch, 1);
    ms->channels = g_new0(MultiFDSendChannel, ms->nr_channels);
    for (unsigned i = 0; i < ms->nr_channels; i++) {
        MultiFDSendChannel *c = &ms->channels[i];
        c->id = i;
        g_cond_init(&c->job_cond);
        c->batch = g_new0(MultiFDBatch, 1);
        c->header = g_malloc(MULTIFD_HEADER_MAX);
    }
    ms->uri = g_steal_pointer(&uri);
    g_mutex_lock(&multifd_send_ptr_lock);
    multifd_send = ms;
    g_mutex_unlock(&multifd_send_ptr_lock);
    return true;
}

bool multifd_send_connect(int cancel_fd, GError **errp)
{
    MultiFDSendState *ms = multifd_send;

    for (unsigned i = 0; i < ms->nr_channels; i++) {
        if (!multifd_send_channel_open(ms, &ms->channels[i], ms->uri, cancel_fd, errp)) {
            return false;
        }
    }
    for (unsigned i = 0; i < ms->nr_channels; i++) {
        g_autofree char *name = g_strdup_printf("mig/src/mfd%u", i);
        ms->channels[i].thread = g_thread_new(name, multifd_send_thread, &ms->channels[i]);
    }
    return true;
}

void multifd_send_shutdown(void)
{
    g_mutex_lock(&multifd_send_ptr_lock);
    MultiFDSendState *ms = multifd_send;
    if (ms) {
        g_mutex_lock(&ms->lock);
        multifd_send_shutdown_locked(ms);
        g_mutex_unlock(&ms->lock);
    }
    g_mutex_unlock(&multifd_send_ptr_lock);
}

void multifd_send_cleanup(void)
{
    MultiFDSendState *ms = multifd_send;

    if (!ms) {
        return;
    }
    g_mutex_lock(&ms->lock);
    ms->quit = true;
    for (unsigned i = 0; i < ms->nr_channels; i++) {
        /* A thread still working only writes to a channel that failed or was cancelled. */
        if (ms->failed && ms->channels[i].ch) {
            mig_channel_shutdown(ms->channels[i].ch);
        }
        g_cond_broadcast(&ms->channels[i].job_cond);
    }
    g_mutex_unlock(&ms->lock);
    for (unsigned i = 0; i < ms->nr_channels; i++) {
        if (ms->channels[i].thread) {
            g_thread_join(ms->channels[i].thread);
        }
    }

    g_mutex_lock(&multifd_send_ptr_lock);
    multifd_send = NULL;
    g_mutex_unlock(&multifd_send_ptr_lock);

    for (unsigned i = 0; i < ms->nr_channels; i++) {
        MultiFDSendChannel *c = &ms->channels[i];
        mig_channel_free(c->ch);
        if (c->comp) {
            multifd_compressor_free(c->comp);
        }
        g_free(c->payload);
        g_free(c->header);
        g_free(c->batch);
        g_cond_clear(&c->job_cond);
    }
    g_free(ms->channels);
    g_free(ms->batch);
    mig_uri_free(ms->uri);
    g_clear_error(&ms->error);
    g_cond_clear(&ms->idle_cond);
    g_mutex_clear(&ms->lock);
    g_free(ms);
}
