/*
 * RAM blocks: host memory that backs guest RAM. A block has an id that
 * migration uses to name it on the wire ("pc.ram", or a memory backend's
 * id), a host mapping, a size and a page size.
 */
#ifndef SYSTEM_RAMBLOCK_H
#define SYSTEM_RAMBLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <glib.h>

typedef enum RAMBackingKind {
    RAM_BACKING_ANON,
    RAM_BACKING_MEMFD,
    RAM_BACKING_FILE,
} RAMBackingKind;

typedef struct RAMBlock {
    char *idstr;
    uint8_t *host;
    uint64_t used_length;
    uint64_t max_length;
    size_t page_size;
    RAMBackingKind kind;
    bool shared;
    int fd;                     /* -1 for anonymous memory */
    char *mem_path;             /* file backends */
    /*
     * Pages written by Ferry itself (device emulation, boot loader, qtest):
     * one bit per target page (4 KiB), set atomically. KVM's dirty log only
     * sees vCPU writes; migration merges both.
     */
    unsigned long *vmm_dirty;
} RAMBlock;

#define TARGET_PAGE_BITS 12
#define TARGET_PAGE_SIZE (1ULL << TARGET_PAGE_BITS)

typedef struct RAMBlockOptions {
    const char *id;
    uint64_t size;
    RAMBackingKind kind;
    bool shared;
    const char *mem_path;       /* file: a file or a directory */
    bool prealloc;
} RAMBlockOptions;

RAMBlock *ramblock_new(const RAMBlockOptions *opts, GError **errp);
void ramblock_free(RAMBlock *block);

/* Mark [offset, offset+len) of @block written by Ferry. */
void ramblock_mark_vmm_dirty(RAMBlock *block, uint64_t offset, uint64_t len);

/* Every block, in creation order. */
GPtrArray *ramblock_list(void);
RAMBlock *ramblock_find(const char *idstr);

#endif
