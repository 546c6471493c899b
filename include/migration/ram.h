/*
 * RAM as a migration participant: every RAM block's pages, tracked dirty
 * through KVM's dirty log and the VMM's own bitmap, sent as records (zero
 * pages as a flag; pages the guest never touched not at all), loaded with
 * every offset checked. docs/devel/migration-stream.md has the records.
 */
#ifndef MIGRATION_RAM_H
#define MIGRATION_RAM_H

#include <stdint.h>

/* Register the "ram" participant. */
void ram_mig_init(void);
/* Bytes of guest RAM in all blocks (query-migrate ram.total). */
uint64_t ram_bytes_total(void);

#endif
