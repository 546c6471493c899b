/*
 * ACPI table construction. Layouts follow the ACPI specification (6.x);
 * the machine's fixed hardware is described in docs/devel/machine.md.
 */
#include <string.h>

#include "hw/x86/acpi-build.h"
#include "hw/x86/mptable.h"
#include "hw/x86/pm.h"

#define ACPI_OEM_ID        "FERRY "
#define ACPI_OEM_TABLE_ID  "FERRYVM "
#define ACPI_SDT_HEADER    36

/* FADT flags. */
#define FADT_WBINVD        (1u << 0)
#define FADT_PROC_C1       (1u << 2)
#define FADT_SLP_BUTTON    (1u << 5)   /* no fixed sleep button */
#define FADT_RESET_REG_SUP (1u << 10)
/* IA-PC boot architecture flags. */
#define FADT_BOOT_NO_VGA   (1u << 2)
#define FADT_BOOT_NO_CMOS  (1u << 5)

static uint8_t acpi_checksum(const uint8_t *p, size_t len)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < len; i++) {
        sum += p[i];
    }
    return (uint8_t)-sum;
}

static void put_le(GByteArray *t, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++) {
        guint8 b = (guint8)(v >> (8 * i));
        g_byte_array_append(t, &b, 1);
    }
}

static void set_le(GByteArray *t, size_t off, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++) {
        t->data[off + i] = (guint8)(v >> (8 * i));
    }
}

/* Start a table; returns its offset in @t. Length and checksum come at the end. */
static size_t acpi_table_begin(GByteArray *t, const char *sig, uint8_t revision)
{
    while (t->len % 16) {
        put_le(t, 0, 1);
    }
    size_t start = t->len;
    g_byte_array_append(t, (const guint8 *)sig, 4);
    put_le(t, 0, 4);                        /* length */
    put_le(t, revision, 1);
    put_le(t, 0, 1);                        /* checksum */
    g_byte_array_append(t, (const guint8 *)ACPI_OEM_ID, 6);
    g_byte_array_append(t, (const guint8 *)ACPI_OEM_TABLE_ID, 8);
    put_le(t, 1, 4);                        /* OEM revision */
    g_byte_array_append(t, (const guint8 *)"FRRY", 4);
    put_le(t, 1, 4);                        /* creator revision */
    return start;
}

static void acpi_table_end(GByteArray *t, size_t start)
{
    size_t len = t->len - start;
    set_le(t, start + 4, len, 4);
    t->data[start + 9] = acpi_checksum(t->data + start, len);
}

/* A Generic Address Structure in system I/O space. */
static void put_gas_io(GByteArray *t, uint16_t port, uint8_t bits)
{
    put_le(t, port ? 1 : 0, 1);             /* address space: system I/O */
    put_le(t, port ? bits : 0, 1);
    put_le(t, 0, 1);                        /* bit offset */
    put_le(t, port ? (bits == 8 ? 1 : bits == 16 ? 2 : 3) : 0, 1);
    put_le(t, port, 8);
}

static size_t acpi_build_dsdt(GByteArray *t)
{
    /*
     * AML for Name (_S5, Package (4) { 0, 0, 0, 0 }): S5 (soft off) is
     * SLP_TYP 0 in PM1a control, the value the PM block acts on.
     */
    static const guint8 s5[] = {
        0x08, '_', 'S', '5', '_', 0x12, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00,
    };
    size_t start = acpi_table_begin(t, "DSDT", 2);
    g_byte_array_append(t, s5, sizeof(s5));
    acpi_table_end(t, start);
    return start;
}

static size_t acpi_build_facs(GByteArray *t)
{
    while (t->len % 64) {
        put_le(t, 0, 1);
    }
    size_t start = t->len;
    g_byte_array_append(t, (const guint8 *)"FACS", 4);
    put_le(t, 64, 4);
    for (unsigned i = 8; i < 64; i++) {
        put_le(t, i == 32 ? 2 : 0, 1);      /* version 2 at offset 32 */
    }
    return start;
}

static size_t acpi_build_fadt(GByteArray *t, uint32_t facs, uint32_t dsdt)
{
    size_t s = acpi_table_begin(t, "FACP", 6);
    put_le(t, facs, 4);                     /* 36: FIRMWARE_CTRL */
    put_le(t, dsdt, 4);                     /* 40: DSDT */
    put_le(t, 0, 1);                        /* 44: reserved */
    put_le(t, 0, 1);                        /* 45: preferred PM profile: unspecified */
    put_le(t, PM_SCI_IRQ, 2);               /* 46: SCI_INT */
    put_le(t, 0, 4);                        /* 48: SMI_CMD: always in ACPI mode */
    put_le(t, 0, 4);                        /* 52: ACPI_ENABLE..PSTATE_CNT */
    put_le(t, PM_BASE, 4);                  /* 56: PM1a_EVT_BLK */
    put_le(t, 0, 4);                        /* 60: PM1b_EVT_BLK */
    put_le(t, PM_BASE + 4, 4);              /* 64: PM1a_CNT_BLK */
    put_le(t, 0, 4);                        /* 68: PM1b_CNT_BLK */
    put_le(t, 0, 4);                        /* 72: PM2_CNT_BLK */
    put_le(t, PM_TMR_PORT, 4);              /* 76: PM_TMR_BLK */
    put_le(t, 0, 4);                        /* 80: GPE0_BLK */
    put_le(t, 0, 4);                        /* 84: GPE1_BLK */
    put_le(t, 4, 1);                        /* 88: PM1_EVT_LEN */
    put_le(t, 2, 1);                        /* 89: PM1_CNT_LEN */
    put_le(t, 0, 1);                        /* 90: PM2_CNT_LEN */
    put_le(t, 4, 1);                        /* 91: PM_TMR_LEN */
    put_le(t, 0, 4);                        /* 92: GPE lengths, GPE1_BASE, CST_CNT */
    put_le(t, 101, 2);                      /* 96: P_LVL2_LAT: no C2 */
    put_le(t, 1001, 2);                     /* 98: P_LVL3_LAT: no C3 */
    put_le(t, 0, 4);                        /* 100: FLUSH_SIZE, FLUSH_STRIDE */
    put_le(t, 0, 5);                        /* 104: DUTY_*, alarms, CENTURY */
    put_le(t, FADT_BOOT_NO_VGA | FADT_BOOT_NO_CMOS, 2);   /* 109: IAPC_BOOT_ARCH */
    put_le(t, 0, 1);                        /* 111: reserved */
    put_le(t, FADT_WBINVD | FADT_PROC_C1 | FADT_SLP_BUTTON | FADT_RESET_REG_SUP, 4);
    put_gas_io(t, 0xcf9, 8);                /* 116: RESET_REG */
    put_le(t, 0x06, 1);                     /* 128: RESET_VALUE */
    put_le(t, 0, 2);                        /* 129: ARM_BOOT_ARCH */
    put_le(t, 0, 1);                        /* 131: FADT minor version */
    put_le(t, facs, 8);                     /* 132: X_FIRMWARE_CTRL */
    put_le(t, dsdt, 8);                     /* 140: X_DSDT */
    put_gas_io(t, PM_BASE, 32);             /* 148: X_PM1a_EVT_BLK */
    put_gas_io(t, 0, 0);                    /* 160: X_PM1b_EVT_BLK */
    put_gas_io(t, PM_BASE + 4, 16);         /* 172: X_PM1a_CNT_BLK */
    put_gas_io(t, 0, 0);                    /* 184: X_PM1b_CNT_BLK */
    put_gas_io(t, 0, 0);                    /* 196: X_PM2_CNT_BLK */
    put_gas_io(t, PM_TMR_PORT, 32);         /* 208: X_PM_TMR_BLK */
    put_gas_io(t, 0, 0);                    /* 220: X_GPE0_BLK */
    put_gas_io(t, 0, 0);                    /* 232: X_GPE1_BLK */
    put_gas_io(t, 0, 0);                    /* 244: SLEEP_CONTROL_REG */
    put_gas_io(t, 0, 0);                    /* 256: SLEEP_STATUS_REG */
    g_byte_array_append(t, (const guint8 *)"FERRYKVM", 8);   /* 268: hypervisor id */
    g_assert(t->len - s == 276);
    acpi_table_end(t, s);
    return s;
}

static size_t acpi_build_madt(GByteArray *t, int nr_cpus)
{
    size_t s = acpi_table_begin(t, "APIC", 4);
    put_le(t, 0xfee00000, 4);               /* local APIC address */
    put_le(t, 1, 4);                        /* PCAT_COMPAT: there are 8259s too */
    for (int i = 0; i < nr_cpus; i++) {
        put_le(t, 0, 1);                    /* processor local APIC */
        put_le(t, 8, 1);
        put_le(t, i, 1);                    /* ACPI processor UID */
        put_le(t, i, 1);                    /* APIC id */
        put_le(t, 1, 4);                    /* enabled */
    }
    put_le(t, 1, 1);                        /* I/O APIC */
    put_le(t, 12, 1);
    put_le(t, nr_cpus, 1);                  /* its id, after the CPUs' */
    put_le(t, 0, 1);
    put_le(t, MPTABLE_IOAPIC_ADDR, 4);
    put_le(t, 0, 4);                        /* GSI base */
    /* The SCI is level-triggered, active high (the PM block holds it up). */
    put_le(t, 2, 1);                        /* interrupt source override */
    put_le(t, 10, 1);
    put_le(t, 0, 1);                        /* ISA */
    put_le(t, PM_SCI_IRQ, 1);
    put_le(t, PM_SCI_IRQ, 4);
    put_le(t, 0x000d, 2);
    put_le(t, 4, 1);                        /* local APIC NMI on LINT1, all CPUs */
    put_le(t, 6, 1);
    put_le(t, 0xff, 1);
    put_le(t, 0, 2);
    put_le(t, 1, 1);
    acpi_table_end(t, s);
    return s;
}

GBytes *acpi_build_tables(int nr_cpus)
{
    GByteArray *t = g_byte_array_new();

    /* RSDP first (36 bytes); its pointers are patched below. */
    g_byte_array_append(t, (const guint8 *)"RSD PTR ", 8);
    put_le(t, 0, 1);                        /* checksum of the first 20 bytes */
    g_byte_array_append(t, (const guint8 *)ACPI_OEM_ID, 6);
    put_le(t, 2, 1);                        /* revision: ACPI 2.0+ */
    put_le(t, 0, 4);                        /* RSDT address */
    put_le(t, 36, 4);
    put_le(t, 0, 8);                        /* XSDT address */
    put_le(t, 0, 1);                        /* extended checksum */
    put_le(t, 0, 3);

    size_t dsdt = acpi_build_dsdt(t);
    size_t facs = acpi_build_facs(t);
    size_t fadt = acpi_build_fadt(t, ACPI_TABLES_ADDR + facs, ACPI_TABLES_ADDR + dsdt);
    size_t madt = acpi_build_madt(t, nr_cpus);

    size_t rsdt = acpi_table_begin(t, "RSDT", 1);
    put_le(t, ACPI_TABLES_ADDR + fadt, 4);
    put_le(t, ACPI_TABLES_ADDR + madt, 4);
    acpi_table_end(t, rsdt);

    size_t xsdt = acpi_table_begin(t, "XSDT", 1);
    put_le(t, ACPI_TABLES_ADDR + fadt, 8);
    put_le(t, ACPI_TABLES_ADDR + madt, 8);
    acpi_table_end(t, xsdt);

    set_le(t, 16, ACPI_TABLES_ADDR + rsdt, 4);
    set_le(t, 24, ACPI_TABLES_ADDR + xsdt, 8);
    t->data[8] = acpi_checksum(t->data, 20);
    t->data[32] = acpi_checksum(t->data, 36);
    g_assert(t->len <= ACPI_TABLES_SIZE);
    return g_byte_array_free_to_bytes(t);
}
