/*
 * The MP table (Intel MultiProcessor Specification 1.4): a floating
 * pointer structure and a configuration table with one processor entry
 * per vCPU, the ISA bus, the IOAPIC and the ISA interrupts wired pin for
 * pin to the IOAPIC, as KVM's default GSI routing has them.
 */
#include <string.h>

#include "hw/x86/mptable.h"

#define MP_ENTRY_PROCESSOR  0
#define MP_ENTRY_BUS        1
#define MP_ENTRY_IOAPIC     2
#define MP_ENTRY_IOINT      3
#define MP_ENTRY_LOCALINT   4

#define MP_INT_TYPE_INT     0
#define MP_INT_TYPE_NMI     1
#define MP_INT_TYPE_EXTINT  3

#define MP_IRQS 16

static uint8_t mptable_checksum(const uint8_t *p, size_t len)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < len; i++) {
        sum += p[i];
    }
    return (uint8_t)-sum;
}

static void put8(GByteArray *a, uint8_t v)
{
    g_byte_array_append(a, &v, 1);
}

static void put16(GByteArray *a, uint16_t v)
{
    g_byte_array_append(a, (const guint8 *)&v, 2);
}

static void put32(GByteArray *a, uint32_t v)
{
    g_byte_array_append(a, (const guint8 *)&v, 4);
}

static void put_int_entry(GByteArray *a, uint8_t kind, uint8_t int_type, uint8_t src_irq,
                          uint8_t dst_id, uint8_t dst_pin)
{
    put8(a, kind);
    put8(a, int_type);
    put16(a, 0);            /* polarity and trigger: conform to the bus */
    put8(a, 0);             /* source bus: ISA */
    put8(a, src_irq);
    put8(a, dst_id);
    put8(a, dst_pin);
}

GBytes *mptable_build(int nr_cpus, uint32_t cpu_signature, uint32_t cpu_features)
{
    GByteArray *t = g_byte_array_new();
    uint8_t ioapic_id = (uint8_t)nr_cpus;
    const uint32_t config_addr = MPTABLE_ADDR + 16;
    uint16_t entries = 0;

    /* Floating pointer: "_MP_", table address, length in paragraphs, rev 1.4. */
    g_byte_array_append(t, (const guint8 *)"_MP_", 4);
    put32(t, config_addr);
    put8(t, 1);
    put8(t, 4);
    put8(t, 0);             /* checksum, below */
    put8(t, 0);             /* no default configuration: the table follows */
    put32(t, 0);
    t->data[10] = mptable_checksum(t->data, 16);

    /* Configuration table header; length, count and checksum patched below. */
    const unsigned hdr = 16;
    g_byte_array_append(t, (const guint8 *)"PCMP", 4);
    put16(t, 0);
    put8(t, 4);
    put8(t, 0);
    g_byte_array_append(t, (const guint8 *)"FERRY   ", 8);
    g_byte_array_append(t, (const guint8 *)"FERRYVM     ", 12);
    put32(t, 0);
    put16(t, 0);
    put16(t, 0);            /* entry count */
    put32(t, 0xfee00000);   /* local APIC */
    put16(t, 0);
    put8(t, 0);
    put8(t, 0);

    for (int i = 0; i < nr_cpus; i++) {
        put8(t, MP_ENTRY_PROCESSOR);
        put8(t, (uint8_t)i);
        put8(t, 0x14);                       /* local APIC version */
        put8(t, 0x01 | (i == 0 ? 0x02 : 0)); /* enabled, BSP */
        put32(t, cpu_signature);
        put32(t, cpu_features);
        put32(t, 0);
        put32(t, 0);
        entries++;
    }
    put8(t, MP_ENTRY_BUS);
    put8(t, 0);
    g_byte_array_append(t, (const guint8 *)"ISA   ", 6);
    entries++;

    put8(t, MP_ENTRY_IOAPIC);
    put8(t, ioapic_id);
    put8(t, 0x11);          /* IOAPIC version */
    put8(t, 0x01);          /* enabled */
    put32(t, MPTABLE_IOAPIC_ADDR);
    entries++;

    for (uint8_t irq = 0; irq < MP_IRQS; irq++) {
        put_int_entry(t, MP_ENTRY_IOINT, MP_INT_TYPE_INT, irq, ioapic_id, irq);
        entries++;
    }
    put_int_entry(t, MP_ENTRY_LOCALINT, MP_INT_TYPE_EXTINT, 0, 0xff, 0);
    put_int_entry(t, MP_ENTRY_LOCALINT, MP_INT_TYPE_NMI, 0, 0xff, 1);
    entries += 2;

    uint16_t len = (uint16_t)(t->len - hdr);
    memcpy(t->data + hdr + 4, &len, 2);
    memcpy(t->data + hdr + 34, &entries, 2);
    t->data[hdr + 7] = mptable_checksum(t->data + hdr, len);

    return g_byte_array_free_to_bytes(t);
}
