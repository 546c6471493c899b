/*
 * Guest physical address space: which guest-physical ranges map which RAM
 * block, and reads and writes into guest RAM on behalf of devices, the
 * boot loader and qtest. Every write made through here is recorded in the
 * block's VMM dirty bitmap, so migration sees it.
 */
#ifndef SYSTEM_MEMORY_H
#define SYSTEM_MEMORY_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "system/ramblock.h"

typedef struct GuestRAMRange {
    uint64_t gpa;
    uint64_t size;
    RAMBlock *block;
    uint64_t block_offset;
} GuestRAMRange;

/* Map [gpa, gpa+size) onto @block at @block_offset. Returns the range index. */
int guest_ram_map(uint64_t gpa, uint64_t size, RAMBlock *block, uint64_t block_offset);
unsigned guest_ram_range_count(void);
const GuestRAMRange *guest_ram_range(unsigned index);

/*
 * Host pointer for [gpa, gpa+len) when the whole range is RAM of one
 * mapping, else NULL. Reading through it is fine; writers must also call
 * guest_ram_mark_dirty() (or use guest_phys_write()).
 */
void *guest_phys_to_host(uint64_t gpa, uint64_t len);
void guest_ram_mark_dirty(uint64_t gpa, uint64_t len);

/*
 * Told of every write made through guest_ram_mark_dirty() and
 * guest_phys_write(): the software CPU drops code it decoded from those
 * bytes. One notifier; NULL turns it off.
 */
typedef void (*GuestRAMWriteNotifier)(uint64_t gpa, uint64_t len);
void guest_ram_set_write_notifier(GuestRAMWriteNotifier fn);

/*
 * Copy to or from guest RAM. Fails (returns false) if any byte lies
 * outside RAM; nothing is written then.
 */
bool guest_phys_write(uint64_t gpa, const void *buf, size_t len);
bool guest_phys_read(uint64_t gpa, void *buf, size_t len);

/* Total guest RAM in bytes. */
uint64_t guest_ram_size(void);

#endif
