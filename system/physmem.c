/*
 * The guest physical address space: RAM ranges and copies in and out of
 * them on behalf of Ferry's own code.
 */
#include <string.h>

#include "system/memory.h"

#define MAX_RAM_RANGES 16

static GuestRAMRange ram_ranges[MAX_RAM_RANGES];
static unsigned nr_ram_ranges;

int guest_ram_map(uint64_t gpa, uint64_t size, RAMBlock *block, uint64_t block_offset)
{
    g_assert(nr_ram_ranges < MAX_RAM_RANGES);
    g_assert(block_offset + size <= block->used_length);
    ram_ranges[nr_ram_ranges] = (GuestRAMRange) {
        .gpa = gpa, .size = size, .block = block, .block_offset = block_offset,
    };
    return (int)nr_ram_ranges++;
}

unsigned guest_ram_range_count(void)
{
    return nr_ram_ranges;
}

const GuestRAMRange *guest_ram_range(unsigned index)
{
    return index < nr_ram_ranges ? &ram_ranges[index] : NULL;
}

uint64_t guest_ram_size(void)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < nr_ram_ranges; i++) {
        total += ram_ranges[i].size;
    }
    return total;
}

static const GuestRAMRange *guest_ram_lookup(uint64_t gpa, uint64_t len)
{
    for (unsigned i = 0; i < nr_ram_ranges; i++) {
        const GuestRAMRange *r = &ram_ranges[i];
        /* Written to avoid overflow for any gpa/len from a guest or a test. */
        if (gpa >= r->gpa && gpa - r->gpa < r->size && len <= r->size - (gpa - r->gpa)) {
            return r;
        }
    }
    return NULL;
}

void *guest_phys_to_host(uint64_t gpa, uint64_t len)
{
    const GuestRAMRange *r = guest_ram_lookup(gpa, len);
    if (!r) {
        return NULL;
    }
    return r->block->host + r->block_offset + (gpa - r->gpa);
}

static GuestRAMWriteNotifier write_notifier;

void guest_ram_set_write_notifier(GuestRAMWriteNotifier fn)
{
    write_notifier = fn;
}

void guest_ram_mark_dirty(uint64_t gpa, uint64_t len)
{
    const GuestRAMRange *r = guest_ram_lookup(gpa, len);
    if (r) {
        ramblock_mark_vmm_dirty(r->block, r->block_offset + (gpa - r->gpa), len);
        if (write_notifier) {
            write_notifier(gpa, len);
        }
    }
}

bool guest_phys_write(uint64_t gpa, const void *buf, size_t len)
{
    const GuestRAMRange *r = guest_ram_lookup(gpa, len);
    if (!r) {
        return false;
    }
    uint64_t off = r->block_offset + (gpa - r->gpa);
    memcpy(r->block->host + off, buf, len);
    ramblock_mark_vmm_dirty(r->block, off, len);
    if (write_notifier) {
        write_notifier(gpa, len);
    }
    return true;
}

bool guest_phys_read(uint64_t gpa, void *buf, size_t len)
{
    void *host = guest_phys_to_host(gpa, len);
    if (!host) {
        return false;
    }
    memcpy(buf, host, len);
    return true;
}
