/*
 * Dispatch of port I/O and MMIO exits to device models. Devices register
 * a range with read/write callbacks; vCPU threads call io_dispatch_*()
 * with the BQL held. Accesses nobody claims read as all-ones and writes
 * are dropped, as on a PC bus.
 */
#ifndef SYSTEM_IOPORT_H
#define SYSTEM_IOPORT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct IoRegionOps {
    /* @offset is relative to the region base; @size is 1, 2, 4 or 8. */
    uint64_t (*read)(void *opaque, uint64_t offset, unsigned size);
    void (*write)(void *opaque, uint64_t offset, uint64_t value, unsigned size);
} IoRegionOps;

typedef enum IoSpace {
    IO_SPACE_PIO,
    IO_SPACE_MMIO,
} IoSpace;

void io_region_register(IoSpace space, uint64_t base, uint64_t len, const char *name,
                        const IoRegionOps *ops, void *opaque);

uint64_t io_dispatch_read(IoSpace space, uint64_t addr, unsigned size);
void io_dispatch_write(IoSpace space, uint64_t addr, uint64_t value, unsigned size);

#endif
