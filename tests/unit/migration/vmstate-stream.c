/*
 * Device state to bytes and back through the real QEMUFile: the channel
 * is a memfd (a regular file to the channel layer), so a save needs no
 * reader thread and a load can be fed any prefix or mutation of a stream.
 */
#include <sys/mman.h>
#include <unistd.h>

#include "migration/channel.h"
#include "migration/qemu-file.h"
#include "tests/unit/migration/vmstate-stream.h"

static int vms_stream_memfd(void)
{
    int fd = memfd_create("vmstate-test", MFD_CLOEXEC);
    g_assert_cmpint(fd, >=, 0);
    return fd;
}

GByteArray *vms_stream_save(const VMStateDescription *vmsd, void *opaque, GError **errp)
{
    GError *err = NULL;
    GByteArray *out = vms_stream_save_any(vmsd, opaque, &err);

    if (err) {
        g_propagate_error(errp, err);
        g_byte_array_unref(out);
        return NULL;
    }
    return out;
}

GByteArray *vms_stream_save_any(const VMStateDescription *vmsd, void *opaque, GError **errp)
{
    g_autoptr(GError) cerr = NULL;
    int fd = vms_stream_memfd();
    MigChannel *ch = mig_channel_new_fd(dup(fd), "memfd:out", &cerr);
    g_assert_no_error(cerr);
    QEMUFile *f = qemu_file_new_output(ch);

    vmstate_save(f, vmsd, opaque, errp);
    g_assert_cmpint(qemu_fclose(f), ==, 0);
    GByteArray *out = g_byte_array_new();
    off_t size = lseek(fd, 0, SEEK_END);
    g_assert_cmpint(size, >=, 0);
    g_byte_array_set_size(out, (guint)size);
    if (size) {
        g_assert_cmpint(pread(fd, out->data, (size_t)size, 0), ==, size);
    }
    close(fd);
    return out;
}

bool vms_stream_load(const void *data, size_t len, const VMStateDescription *vmsd,
                     void *opaque, int version_id, size_t *unread, GError **errp)
{
    g_autoptr(GError) cerr = NULL;
    int fd = vms_stream_memfd();

    if (len) {
        g_assert_cmpint(pwrite(fd, data, len, 0), ==, (ssize_t)len);
    }
    MigChannel *ch = mig_channel_new_fd(fd, "memfd:in", &cerr);
    g_assert_no_error(cerr);
    QEMUFile *f = qemu_file_new_input(ch);

    bool ok = vmstate_load(f, vmsd, opaque, version_id, errp);
    if (unread) {
        size_t n = 0;
        while (qemu_peek_byte(f) >= 0) {
            qemu_get_byte(f);
            n++;
        }
        *unread = n;
    }
    qemu_fclose(f);
    return ok;
}
