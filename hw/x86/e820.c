/* The e820 table, built once at machine creation. */
#include <glib.h>

#include "hw/x86/e820.h"

static E820Entry e820_table[E820_MAX];
static unsigned e820_entries;

void e820_add(uint64_t addr, uint64_t size, uint32_t type)
{
    g_assert(e820_entries < E820_MAX);
    e820_table[e820_entries++] = (E820Entry) { .addr = addr, .size = size, .type = type };
}

unsigned e820_count(void)
{
    return e820_entries;
}

const E820Entry *e820_entry(unsigned index)
{
    return index < e820_entries ? &e820_table[index] : NULL;
}

void e820_reset(void)
{
    e820_entries = 0;
}
