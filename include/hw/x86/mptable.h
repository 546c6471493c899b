/* The Intel MultiProcessor table: how a guest without ACPI finds its CPUs and IOAPIC. */
#ifndef HW_X86_MPTABLE_H
#define HW_X86_MPTABLE_H

#include <stdint.h>
#include <glib.h>

#define MPTABLE_ADDR 0x9fc00    /* start of the EBDA, which guests scan first */
#define MPTABLE_IOAPIC_ADDR 0xfec00000

/* Build the floating pointer and configuration table for @nr_cpus CPUs. */
GBytes *mptable_build(int nr_cpus, uint32_t cpu_signature, uint32_t cpu_features);

#endif
