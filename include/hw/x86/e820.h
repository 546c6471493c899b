/* The BIOS e820 memory map the boot protocols hand to the guest. */
#ifndef HW_X86_E820_H
#define HW_X86_E820_H

#include <stdint.h>

#define E820_RAM        1
#define E820_RESERVED   2
#define E820_MAX        32

typedef struct E820Entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
} E820Entry;

void e820_add(uint64_t addr, uint64_t size, uint32_t type);
unsigned e820_count(void);
const E820Entry *e820_entry(unsigned index);
void e820_reset(void);

#endif
