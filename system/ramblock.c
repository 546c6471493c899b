/*
 * RAM blocks: allocation of host memory for guest RAM from anonymous
 * memory, memfd or a file, and the VMM-side dirty bitmap.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "system/ramblock.h"

static GPtrArray *ram_blocks;

GPtrArray *ramblock_list(void)
{
    if (!ram_blocks) {
        ram_blocks = g_ptr_array_new();
    }
    return ram_blocks;
}

RAMBlock *ramblock_find(const char *idstr)
{
    GPtrArray *list = ramblock_list();
    for (guint i = 0; i < list->len; i++) {
        RAMBlock *b = g_ptr_array_index(list, i);
        if (strcmp(b->idstr, idstr) == 0) {
            return b;
        }
    }
    return NULL;
}

static int ramblock_open_file(const RAMBlockOptions *opts, GError **errp)
{
    struct stat st;
    int fd;

    if (stat(opts->mem_path, &st) == 0 && S_ISDIR(st.st_mode)) {
        /* A directory (typically hugetlbfs): an unlinked file inside it. */
        g_autofree char *tmpl = g_strdup_printf("%s/ferry_back_mem.%s.XXXXXX",
                                                opts->mem_path, opts->id);
        fd = mkstemp(tmpl);
        if (fd >= 0) {
            unlink(tmpl);
        }
    } else {
        fd = open(opts->mem_path, O_RDWR | O_CREAT, 0600);
    }
    if (fd < 0) {
        g_set_error(errp, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "memory backend '%s': can't open backing store %s: %s",
                    opts->id, opts->mem_path, g_strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size < opts->size &&
        ftruncate(fd, opts->size) < 0) {
        g_set_error(errp, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "memory backend '%s': can't grow %s to %" G_GUINT64_FORMAT " bytes: %s",
                    opts->id, opts->mem_path, opts->size, g_strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

RAMBlock *ramblock_new(const RAMBlockOptions *opts, GError **errp)
{
    int fd = -1;
    int flags;
    void *host;

    if (opts->size == 0 || opts->size % TARGET_PAGE_SIZE) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "memory backend '%s': size must be a non-zero multiple of 4 KiB",
                    opts->id);
        return NULL;
    }
    if (ramblock_find(opts->id)) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_EXIST,
                    "RAM block id '%s' is used twice", opts->id);
        return NULL;
    }

    switch (opts->kind) {
    case RAM_BACKING_ANON:
        flags = MAP_ANONYMOUS | MAP_NORESERVE | (opts->shared ? MAP_SHARED : MAP_PRIVATE);
        break;
    case RAM_BACKING_MEMFD:
        fd = memfd_create(opts->id, MFD_CLOEXEC);
        if (fd < 0 || ftruncate(fd, opts->size) < 0) {
            g_set_error(errp, G_FILE_ERROR, g_file_error_from_errno(errno),
                        "memory backend '%s': memfd: %s", opts->id, g_strerror(errno));
            if (fd >= 0) {
                close(fd);
            }
            return NULL;
        }
        flags = opts->shared ? MAP_SHARED : MAP_PRIVATE;
        break;
    case RAM_BACKING_FILE:
        fd = ramblock_open_file(opts, errp);
        if (fd < 0) {
            return NULL;
        }
        flags = opts->shared ? MAP_SHARED : MAP_PRIVATE;
        break;
    default:
        g_assert_not_reached();
    }
    if (opts->prealloc) {
        flags |= MAP_POPULATE;
    }

    host = mmap(NULL, opts->size, PROT_READ | PROT_WRITE, flags, fd, 0);
    if (host == MAP_FAILED) {
        g_set_error(errp, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "memory backend '%s': cannot map %" G_GUINT64_FORMAT " bytes: %s",
                    opts->id, opts->size, g_strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return NULL;
    }
    if (opts->kind == RAM_BACKING_ANON) {
        /* Huge pages make KVM's mappings cheaper; best effort. */
        madvise(host, opts->size, MADV_HUGEPAGE);
    }
    madvise(host, opts->size, MADV_DONTDUMP);

    RAMBlock *block = g_new0(RAMBlock, 1);
    block->idstr = g_strdup(opts->id);
    block->host = host;
    block->used_length = opts->size;
    block->max_length = opts->size;
    block->page_size = (size_t)sysconf(_SC_PAGESIZE);
    block->kind = opts->kind;
    block->shared = opts->shared;
    block->fd = fd;
    block->mem_path = g_strdup(opts->mem_path);
    if (fd >= 0) {
        struct stat st;
        if (fstat(fd, &st) == 0 && st.st_blksize > (blksize_t)block->page_size &&
            opts->kind == RAM_BACKING_FILE) {
            /* hugetlbfs reports its page size as the block size. */
            block->page_size = (size_t)st.st_blksize;
        }
    }
    uint64_t pages = opts->size >> TARGET_PAGE_BITS;
    block->vmm_dirty = g_new0(unsigned long, (pages + 63) / 64);
    g_ptr_array_add(ramblock_list(), block);
    return block;
}

void ramblock_free(RAMBlock *block)
{
    if (!block) {
        return;
    }
    g_ptr_array_remove(ramblock_list(), block);
    munmap(block->host, block->max_length);
    if (block->fd >= 0) {
        close(block->fd);
    }
    g_free(block->vmm_dirty);
    g_free(block->idstr);
    g_free(block->mem_path);
    g_free(block);
}

void ramblock_mark_vmm_dirty(RAMBlock *block, uint64_t offset, uint64_t len)
{
    if (len == 0) {
        return;
    }
    uint64_t first = offset >> TARGET_PAGE_BITS;
    uint64_t last = (offset + len - 1) >> TARGET_PAGE_BITS;
    for (uint64_t page = first; page <= last; page++) {
        __atomic_fetch_or(&block->vmm_dirty[page / 64], 1UL << (page % 64),
                          __ATOMIC_RELAXED);
    }
}
