/*
 * Fuzz target: one multifd channel's packets, through the real receive
 * path (migration/multifd-recv.c: a receive thread, the header and offset
 * decoders of multifd-packet.c, the zlib/zstd decoders of
 * multifd-compress.c) into the fuzz machine's guarded "pc.ram".
 *
 * Input: the first byte picks the compression (byte % 3: none, zlib,
 * zstd); the rest is what a source sends on channel 0 after its handshake
 * (docs/devel/multifd.md): header, offsets, payload, packet after packet.
 * The channel is a memfd, the handshake is taken as read (uuid fixed, one
 * channel, that compression). The load thread's part is played here: every
 * SYNC packet parks the receive thread until multifd_recv_sync_main()
 * releases it, and the loop ends when that call fails, which it always
 * does in the end: the channel failed on a bad packet, or it ended at a
 * packet boundary with no SYNC to come.
 *
 * Checks: the final failure comes with a message; nothing is written
 * outside "pc.ram" (guard pages, the sanitizers); threads are joined,
 * memory (LeakSanitizer) and the channel's descriptor are released per
 * input.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "migration/multifd.h"
#include "tests/fuzz/fuzz-machine.h"
#include "tests/unit/migration/multifd-stubs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * 1 when the input had at least one packet and the channel ended between
 * packets with every packet loaded (no channel error), 0 when a packet was
 * refused or there was none (standalone-main.c counts these).
 */
int fuzz_last_result;

static const uint8_t fuzz_multifd_uuid[MULTIFD_UUID_LEN] = {
    0x66, 0x65, 0x72, 0x72, 0x79, 0x2d, 0x66, 0x75,
    0x7a, 0x7a, 0x2d, 0x6d, 0x75, 0x6c, 0x74, 0x69,
};

/*
 * Channel 0 reading @data from offset 0: a dup of one memfd kept for
 * every input, in *@fd_out (the channel owns it).
 */
static MigChannel *fuzz_multifd_channel(const uint8_t *data, size_t len, int *fd_out)
{
    static int fd = -1;
    g_autoptr(GError) err = NULL;

    if (fd < 0) {
        fd = memfd_create("ferry-fuzz-multifd", MFD_CLOEXEC);
        g_assert(fd >= 0);
    }
    if (ftruncate(fd, 0) < 0 || (len && pwrite(fd, data, len, 0) != (ssize_t)len) ||
        lseek(fd, 0, SEEK_SET) != 0) {
        g_error("fuzz: cannot fill the multifd memfd: %s", g_strerror(errno));
    }
    int dupfd = dup(fd);
    g_assert(dupfd >= 0);
    MigChannel *ch = mig_channel_new_fd(dupfd, "fuzz:multifd0", &err);
    if (!ch) {
        g_error("fuzz: %s", err->message);
    }
    *fd_out = dupfd;
    return ch;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GError) err = NULL;
    int chan_fd;
    MultiFDCompression comp = size ? (MultiFDCompression)(data[0] % 3)
                                   : MULTIFD_COMPRESSION_NONE;
    const uint8_t *stream = size ? data + 1 : data;
    size_t stream_len = size ? size - 1 : 0;

    fuzz_machine_get();
    fuzz_machine_reset();
    multifd_stubs_set_cap(MIGRATION_CAPABILITY_MULTIFD, true);
    multifd_stubs_params()->multifd_channels = 1;
    multifd_stubs_params()->multifd_compression = comp;
    multifd_recv_reset();

    MultiFDHandshake hs = { .channel_id = 0, .channels = 1, .compression = comp };
    memcpy(hs.uuid, fuzz_multifd_uuid, sizeof(hs.uuid));
    multifd_recv_new_channel(fuzz_multifd_channel(stream, stream_len, &chan_fd), &hs);
    if (!multifd_recv_setup(fuzz_multifd_uuid, 1, comp, NULL, &err)) {
        g_error("multifd_recv_setup: %s", err->message);
    }
    g_assert(multifd_recv_active());
    multifd_recv_start();

    unsigned syncs = 0;
    while (multifd_recv_sync_main(&err)) {
        g_assert(err == NULL);
        syncs++;
    }
    g_assert(err != NULL && err->message && err->message[0]);
    const GError *chan_err = multifd_recv_error();
    if (chan_err) {
        g_assert(chan_err->message && chan_err->message[0]);
        g_assert(strcmp(chan_err->message, err->message) == 0);
    }
    if (fuzz_verbose()) {
        fprintf(stderr, "multifd-recv: %s, %u sync(s): %s\n",
                multifd_compression_name(comp), syncs, err->message);
    }
    fuzz_last_result = stream_len > 0 && chan_err == NULL;

    multifd_recv_cleanup();
    g_assert(!multifd_recv_active());
    multifd_stubs_set_cap(MIGRATION_CAPABILITY_MULTIFD, false);
    /* The channel is closed (nothing else opens a descriptor meanwhile). */
    g_assert(fcntl(chan_fd, F_GETFD) < 0 && errno == EBADF);
    return 0;
}
