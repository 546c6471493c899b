/*
 * QEMUFile: the buffered stream over a migration channel.
 *
 * Output: small puts are copied into a buffer; the stream is described by
 * an iovec array whose entries point either into that buffer or straight
 * at a caller's payload (qemu_put_buffer_nocopy: guest pages). A flush is
 * one mig_channel_writev_all() of the whole array, so a batch of pages
 * costs one system call and no copy in user space. Contiguous entries are
 * merged, which lets adjacent payloads share an entry.
 *
 * Input: reads ahead into a buffer; gets are served from it, and large
 * gets bypass it.
 *
 * The first error sticks: later puts are dropped, gets return zeros, and
 * qemu_file_get_error() reports it. Callers check at record boundaries,
 * which keeps the per-put path free of error handling.
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "migration/qemu-file.h"

/* Output: enough for many records' headers between two payloads. */
#define QEMU_FILE_BUF_SIZE (32 * 1024)
/*
 * Entries per vectored write. A page record takes two (header, page), so
 * a batch is 32 pages (128 KiB) when pages are 4 KiB: large enough that
 * the system call cost is small next to the copy into the socket.
 */
#define QEMU_FILE_IOV_MAX 64
/* Input read-ahead. */
#define QEMU_FILE_INBUF_SIZE (64 * 1024)
/* qemu_put_buffer() of this much or more is written from the caller's memory. */
#define QEMU_FILE_DIRECT_PUT (QEMU_FILE_BUF_SIZE / 2)

struct QEMUFile {
    MigChannel *ch;
    bool output;
    uint8_t *buf;
    size_t buf_size;
    /*
     * Output: buf[0, buf_len) is queued; buf[buf_pos, buf_len) is not yet
     * described by an iovec (it is added lazily, so consecutive small puts
     * grow one entry). Input: buf[buf_pos, buf_len) is unread.
     */
    size_t buf_len;
    size_t buf_pos;
    /* Never full between calls: a flush may still have to add buf's tail. */
    struct iovec iov[QEMU_FILE_IOV_MAX];
    int iovcnt;
    uint64_t transferred;
    bool eof;               /* input: the channel reported end of stream */
    int error;              /* atomic: 0 or -errno; set once */
    char *error_msg;
    GMutex error_lock;
};

static QEMUFile *qemu_file_new(MigChannel *ch, bool output)
{
    QEMUFile *f = g_new0(QEMUFile, 1);

    f->ch = ch;
    f->output = output;
    f->buf_size = output ? QEMU_FILE_BUF_SIZE : QEMU_FILE_INBUF_SIZE;
    f->buf = g_malloc(f->buf_size);
    g_mutex_init(&f->error_lock);
    return f;
}

QEMUFile *qemu_file_new_output(MigChannel *ch)
{
    return qemu_file_new(ch, true);
}

QEMUFile *qemu_file_new_input(MigChannel *ch)
{
    return qemu_file_new(ch, false);
}

MigChannel *qemu_file_channel(QEMUFile *f)
{
    return f->ch;
}

/* Errors */

static inline bool qf_failed(QEMUFile *f)
{
    return __atomic_load_n(&f->error, __ATOMIC_ACQUIRE) != 0;
}

static void qf_set_error_msg(QEMUFile *f, int err, char *msg)
{
    g_mutex_lock(&f->error_lock);
    if (f->error == 0) {
        f->error_msg = msg;
        msg = NULL;
        /* Publishes the message with the code: readers check the code first. */
        __atomic_store_n(&f->error, err, __ATOMIC_RELEASE);
    }
    g_mutex_unlock(&f->error_lock);
    g_free(msg);
}

void qemu_file_set_error(QEMUFile *f, int err, const char *fmt, ...)
{
    if (err == 0 || qf_failed(f)) {
        return;
    }
    if (err > 0) {
        err = -err;
    }
    char *msg;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        msg = g_strdup_vprintf(fmt, ap);
        va_end(ap);
    } else {
        msg = g_strdup(g_strerror(-err));
    }
    qf_set_error_msg(f, err, msg);
}

static void qf_set_gerror(QEMUFile *f, GError *err)
{
    int code = err->domain == MIG_CHANNEL_ERROR && err->code > 0 ? -err->code : -EIO;

    qf_set_error_msg(f, code, g_strdup(err->message));
    g_error_free(err);
}

int qemu_file_get_error(QEMUFile *f)
{
    return __atomic_load_n(&f->error, __ATOMIC_ACQUIRE);
}

const char *qemu_file_error_message(QEMUFile *f)
{
    return qf_failed(f) ? f->error_msg : NULL;
}

uint64_t qemu_file_transferred(QEMUFile *f)
{
    return f->transferred;
}

/* Output */

static void qf_add_iov(QEMUFile *f, const void *base, size_t len)
{
    if (f->iovcnt > 0) {
        struct iovec *last = &f->iov[f->iovcnt - 1];
        if ((const uint8_t *)last->iov_base + last->iov_len == (const uint8_t *)base) {
            last->iov_len += len;
            return;
        }
    }
    f->iov[f->iovcnt].iov_base = (void *)base;
    f->iov[f->iovcnt].iov_len = len;
    f->iovcnt++;
}

/* Describe the buffered bytes not yet covered by an entry. */
static void qf_close_pending(QEMUFile *f)
{
    if (f->buf_len > f->buf_pos) {
        qf_add_iov(f, f->buf + f->buf_pos, f->buf_len - f->buf_pos);
        f->buf_pos = f->buf_len;
    }
}

int qemu_fflush(QEMUFile *f)
{
    if (!f->output) {
        return qemu_file_get_error(f);
    }
    if (!qf_failed(f)) {
        qf_close_pending(f);
        GError *err = NULL;
        if (f->iovcnt && !mig_channel_writev_all(f->ch, f->iov, f->iovcnt, &err)) {
            qf_set_gerror(f, err);
        }
    }
    f->iovcnt = 0;
    f->buf_len = 0;
    f->buf_pos = 0;
    return qemu_file_get_error(f);
}

/* Room for @n (small) bytes in the buffer; NULL once the file failed. */
static inline uint8_t *qf_reserve(QEMUFile *f, size_t n)
{
    if (G_UNLIKELY(qf_failed(f))) {
        return NULL;
    }
    if (G_UNLIKELY(f->buf_len + n > f->buf_size)) {
        if (qemu_fflush(f) < 0) {
            return NULL;
        }
    }
    uint8_t *p = f->buf + f->buf_len;
    f->buf_len += n;
    f->transferred += n;
    return p;
}

void qemu_put_byte(QEMUFile *f, uint8_t v)
{
    uint8_t *p = qf_reserve(f, 1);

    if (p) {
        p[0] = v;
    }
}

void qemu_put_be16(QEMUFile *f, uint16_t v)
{
    uint8_t *p = qf_reserve(f, 2);

    if (p) {
        v = GUINT16_TO_BE(v);
        memcpy(p, &v, 2);
    }
}

void qemu_put_be32(QEMUFile *f, uint32_t v)
{
    uint8_t *p = qf_reserve(f, 4);

    if (p) {
        v = GUINT32_TO_BE(v);
        memcpy(p, &v, 4);
    }
}

void qemu_put_be64(QEMUFile *f, uint64_t v)
{
    uint8_t *p = qf_reserve(f, 8);

    if (p) {
        v = GUINT64_TO_BE(v);
        memcpy(p, &v, 8);
    }
}

void qemu_put_buffer_nocopy(QEMUFile *f, const void *buf, size_t len)
{
    if (len == 0 || qf_failed(f)) {
        return;
    }
    /* Room for the buffer's pending tail and this payload. */
    if (f->iovcnt + 2 > QEMU_FILE_IOV_MAX && qemu_fflush(f) < 0) {
        return;
    }
    qf_close_pending(f);
    qf_add_iov(f, buf, len);
    f->transferred += len;
    if (f->iovcnt == QEMU_FILE_IOV_MAX) {
        qemu_fflush(f);
    }
}

void qemu_put_buffer(QEMUFile *f, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    if (len >= QEMU_FILE_DIRECT_PUT) {
        /* The flush sends it before we return, so the caller may reuse @buf at once. */
        qemu_put_buffer_nocopy(f, buf, len);
        qemu_fflush(f);
        return;
    }
    while (len > 0 && !qf_failed(f)) {
        size_t room = f->buf_size - f->buf_len;
        if (room == 0) {
            qemu_fflush(f);
            continue;
        }
        size_t n = MIN(room, len);
        memcpy(f->buf + f->buf_len, p, n);
        f->buf_len += n;
        f->transferred += n;
        p += n;
        len -= n;
    }
}

void qemu_put_counted_string(QEMUFile *f, const char *s)
{
    size_t len = strlen(s);

    if (len > 255) {
        qemu_file_set_error(f, -EINVAL, "string '%.32s...' is %zu bytes, more than 255",
                            s, len);
        return;
    }
    qemu_put_byte(f, (uint8_t)len);
    qemu_put_buffer(f, s, len);
}

/* Input */

/* One read into the buffer; sets eof or the error when it brings nothing. */
static void qf_fill(QEMUFile *f)
{
    size_t avail = f->buf_len - f->buf_pos;
    GError *err = NULL;

    if (f->buf_pos > 0) {
        memmove(f->buf, f->buf + f->buf_pos, avail);
        f->buf_pos = 0;
        f->buf_len = avail;
    }
    ssize_t n = mig_channel_read(f->ch, f->buf + f->buf_len, f->buf_size - f->buf_len, &err);
    if (n < 0) {
        qf_set_gerror(f, err);
    } else if (n == 0) {
        f->eof = true;
    } else {
        f->buf_len += n;
    }
}

static void qf_set_eof_error(QEMUFile *f)
{
    qemu_file_set_error(f, -EIO, "reading from %s: unexpected end of stream",
                        mig_channel_desc(f->ch));
}

/* @n (at most 8) bytes from the stream, or NULL with the error set. */
static inline const uint8_t *qf_take(QEMUFile *f, size_t n)
{
    while (G_UNLIKELY(f->buf_len - f->buf_pos < n)) {
        if (qf_failed(f)) {
            return NULL;
        }
        if (f->eof) {
            qf_set_eof_error(f);
            return NULL;
        }
        qf_fill(f);
    }
    if (G_UNLIKELY(qf_failed(f))) {
        return NULL;
    }
    const uint8_t *p = f->buf + f->buf_pos;
    f->buf_pos += n;
    f->transferred += n;
    return p;
}

uint8_t qemu_get_byte(QEMUFile *f)
{
    const uint8_t *p = qf_take(f, 1);

    return p ? p[0] : 0;
}

uint16_t qemu_get_be16(QEMUFile *f)
{
    const uint8_t *p = qf_take(f, 2);
    uint16_t v;

    if (!p) {
        return 0;
    }
    memcpy(&v, p, 2);
    return GUINT16_FROM_BE(v);
}

uint32_t qemu_get_be32(QEMUFile *f)
{
    const uint8_t *p = qf_take(f, 4);
    uint32_t v;

    if (!p) {
        return 0;
    }
    memcpy(&v, p, 4);
    return GUINT32_FROM_BE(v);
}

uint64_t qemu_get_be64(QEMUFile *f)
{
    const uint8_t *p = qf_take(f, 8);
    uint64_t v;

    if (!p) {
        return 0;
    }
    memcpy(&v, p, 8);
    return GUINT64_FROM_BE(v);
}

size_t qemu_get_buffer(QEMUFile *f, void *buf, size_t len)
{
    uint8_t *out = buf;
    size_t done = 0;

    while (done < len && !qf_failed(f)) {
        size_t avail = f->buf_len - f->buf_pos;
        if (avail) {
            size_t n = MIN(avail, len - done);
            memcpy(out + done, f->buf + f->buf_pos, n);
            f->buf_pos += n;
            done += n;
            continue;
        }
        if (f->eof) {
            qf_set_eof_error(f);
            break;
        }
        if (len - done >= f->buf_size) {
            /* Big enough to skip the buffer and its copy. */
            GError *err = NULL;
            ssize_t n = mig_channel_read(f->ch, out + done, len - done, &err);
            if (n < 0) {
                qf_set_gerror(f, err);
            } else if (n == 0) {
                f->eof = true;
            } else {
                done += n;
            }
            continue;
        }
        qf_fill(f);
    }
    f->transferred += done;
    if (done < len) {
        /* The caller sees zeros, never stale memory, past what arrived. */
        memset(out + done, 0, len - done);
    }
    return done;
}

int qemu_peek_byte(QEMUFile *f)
{
    if (f->buf_pos == f->buf_len && !f->eof && !qf_failed(f)) {
        qf_fill(f);
    }
    if (qf_failed(f) || f->buf_pos == f->buf_len) {
        return -1;
    }
    return f->buf[f->buf_pos];
}

bool qemu_get_counted_string(QEMUFile *f, char buf[256])
{
    size_t len = qemu_get_byte(f);

    if (qemu_get_buffer(f, buf, len) != len || qf_failed(f)) {
        buf[0] = 0;
        return false;
    }
    buf[len] = 0;
    return true;
}

bool qemu_file_at_eof(QEMUFile *f)
{
    return !f->output && f->eof && f->buf_pos == f->buf_len && !qf_failed(f);
}

int qemu_fclose(QEMUFile *f)
{
    if (f->output) {
        qemu_fflush(f);
    }
    int err = qemu_file_get_error(f);
    mig_channel_free(f->ch);
    g_mutex_clear(&f->error_lock);
    g_free(f->error_msg);
    g_free(f->buf);
    g_free(f);
    return err;
}
