/*
 * RAM records on the wire: the one place that defines them.
 * docs/devel/ram-migration.md describes them byte by byte.
 *
 * Every record starts with a be64 header word: the page's byte offset in
 * its block (a multiple of 4 KiB) ORed with flags in the low 12 bits.
 *
 *   ZERO:  header [u8 idlen, id]  u8 fill (always 0)
 *   PAGE:  header [u8 idlen, id]  4096 bytes of page data
 *   EOS:   header == RAM_SAVE_FLAG_EOS, ends every payload
 *   MULTIFD_FLUSH: header == RAM_SAVE_FLAG_MULTIFD_FLUSH, a multifd sync point
 *
 * The bracketed block id is present unless CONTINUE is set, which says
 * "same block as the previous record of this payload". A payload never
 * starts with CONTINUE: each one names its first block, so payloads can
 * be decoded on their own.
 *
 * START payload (save_setup):
 *   be64 total_bytes | MEM_SIZE
 *   per block: u8 idlen, id, be64 used_length   (until the sizes add up to total_bytes)
 *   be64 EOS
 *
 * PART and END payloads (iterate, completion): records, then be64 EOS.
 */
#ifndef MIGRATION_RAM_FORMAT_H
#define MIGRATION_RAM_FORMAT_H

#include <stdint.h>

#include "system/ramblock.h"

/* Flag bits in a record header (QEMU's values for the ones Ferry uses). */
#define RAM_SAVE_FLAG_ZERO      0x002u   /* page is all zero: one fill byte follows */
#define RAM_SAVE_FLAG_MEM_SIZE  0x004u   /* START: total size and block list follow */
#define RAM_SAVE_FLAG_PAGE      0x008u   /* 4096 bytes of data follow */
#define RAM_SAVE_FLAG_EOS       0x010u   /* end of this payload */
#define RAM_SAVE_FLAG_CONTINUE  0x020u   /* same block as the previous record */
/*
 * multifd sync point: every page the channels carried before it is loaded
 * before the stream goes on. The header is exactly this value.
 */
#define RAM_SAVE_FLAG_MULTIFD_FLUSH 0x200u

/* Every flag this version reads; any other bit in the low 12 is refused. */
#define RAM_SAVE_FLAGS_KNOWN    (RAM_SAVE_FLAG_ZERO | RAM_SAVE_FLAG_MEM_SIZE | \
                                 RAM_SAVE_FLAG_PAGE | RAM_SAVE_FLAG_EOS | \
                                 RAM_SAVE_FLAG_CONTINUE | RAM_SAVE_FLAG_MULTIFD_FLUSH)
/*
 * Bits QEMU's format may use for flags (up to 0x200). A header with bits
 * set above these but below the page size carries an offset that is not
 * page-aligned rather than an unknown flag; both are refused.
 */
#define RAM_SAVE_FLAGS_DEFINED  0x3ffu
#define RAM_SAVE_FLAGS_MASK     ((uint64_t)TARGET_PAGE_SIZE - 1)

/* Stream version of the "ram" participant. */
#define RAM_MIG_VERSION         1

/* Fixed sizes, for byte accounting. */
#define RAM_RECORD_HEADER_SIZE  8u
#define RAM_ZERO_RECORD_SIZE    (RAM_RECORD_HEADER_SIZE + 1u)
#define RAM_PAGE_RECORD_SIZE    (RAM_RECORD_HEADER_SIZE + (unsigned)TARGET_PAGE_SIZE)

#endif
