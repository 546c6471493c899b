/*
 * For programs that link the RAM participant and the stream loader but
 * not the migration core (test-ram, the fuzz machine): the migration
 * options as a plain struct the program may change, and a source side of
 * multifd that is never active. The destination side (multifd-recv.c) is
 * the real one.
 */
#include "multifd-stubs.h"

static bool stub_caps[MIGRATION_CAPABILITY__MAX];
static MigrationParameters stub_params = {
    .multifd_channels = 2,
    .multifd_compression = MULTIFD_COMPRESSION_NONE,
    .multifd_zlib_level = 1,
    .multifd_zstd_level = 1,
    .zero_page_detection = ZERO_PAGE_DETECTION_MULTIFD,
};

bool migrate_cap(MigrationCapability cap)
{
    return (unsigned)cap < MIGRATION_CAPABILITY__MAX && stub_caps[cap];
}

const MigrationParameters *migrate_params(void)
{
    return &stub_params;
}

void multifd_stubs_set_cap(MigrationCapability cap, bool on)
{
    stub_caps[cap] = on;
}

MigrationParameters *multifd_stubs_params(void)
{
    return &stub_params;
}

const char *multifd_compression_name(MultiFDCompression c)
{
    static const char *const names[] = { "none", "zlib", "zstd" };
    return (unsigned)c < G_N_ELEMENTS(names) ? names[c] : "?";
}

bool multifd_send_active(void)
{
    return false;
}

const uint8_t *multifd_send_uuid(void)
{
    return NULL;
}

uint32_t multifd_send_channels(void)
{
    return 0;
}

MultiFDCompression multifd_send_compression(void)
{
    return MULTIFD_COMPRESSION_NONE;
}

bool multifd_queue_page(RAMBlock *rb, uint64_t offset)
{
    return false;
}

bool multifd_send_sync(GError **errp)
{
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "multifd: not in this program");
    return false;
}

const GError *multifd_send_error(void)
{
    return NULL;
}
