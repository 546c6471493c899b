/*
 * ACPI tables for the machine: RSDP, XSDT, FADT (+FACS), DSDT (the S5
 * soft-off package) and MADT (every CPU, the IOAPIC, the SCI). Guests find
 * the RSDP by scanning 0xe0000-0xfffff, or from PVH's rsdp_paddr.
 */
#ifndef HW_X86_ACPI_BUILD_H
#define HW_X86_ACPI_BUILD_H

#include <stdint.h>
#include <glib.h>

#define ACPI_TABLES_ADDR 0xe0000
#define ACPI_TABLES_SIZE 0x10000

/* The tables as one blob to be placed at ACPI_TABLES_ADDR (RSDP first). */
GBytes *acpi_build_tables(int nr_cpus);

#endif
