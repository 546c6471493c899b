/*
 * ACPI PM1a event/control blocks and the reset ports (0xcf9, i8042 0x64,
 * port 0x92). A guest powers off by writing SLP_EN with SLP_TYP 0 (the
 * S5 value the machine declares) and resets through any reset port.
 */
#include <glib.h>

#include "system/accel.h"
#include "hw/x86/pm.h"
#include "migration/register.h"
#include "migration/vmstate.h"
#include "system/ioport.h"
#include "system/runstate.h"

static PCPMState pm;

static void pc_pm_update_sci(void)
{
    accel_set_irq(PM_SCI_IRQ, (pm.pm1_sts & pm.pm1_en) ? 1 : 0);
}

static uint64_t pc_pm_read(void *opaque, uint64_t offset, unsigned size)
{
    uint8_t regs[6];
    uint64_t v = 0;

    regs[0] = pm.pm1_sts & 0xff;
    regs[1] = pm.pm1_sts >> 8;
    regs[2] = pm.pm1_en & 0xff;
    regs[3] = pm.pm1_en >> 8;
    /* No SMI_CMD: the machine is always in ACPI mode, SCI_EN reads set. */
    regs[4] = (pm.pm1_cnt | PM1_CNT_SCI_EN) & 0xff;
    regs[5] = pm.pm1_cnt >> 8;
    for (unsigned i = 0; i < size && offset + i < sizeof(regs); i++) {
        v |= (uint64_t)regs[offset + i] << (8 * i);
    }
    return v;
}

static void pc_pm_write_byte(uint64_t offset, uint8_t v)
{
    switch (offset) {
    case 0: pm.pm1_sts &= (uint16_t)~v; break;            /* write 1 to clear */
    case 1: pm.pm1_sts &= (uint16_t)~((unsigned)v << 8); break;
    case 2: pm.pm1_en = (pm.pm1_en & 0xff00) | v; break;
    case 3: pm.pm1_en = (uint16_t)((pm.pm1_en & 0x00ff) | (unsigned)v << 8); break;
    case 4: pm.pm1_cnt = (pm.pm1_cnt & 0xff00) | v; break;
    case 5: pm.pm1_cnt = (uint16_t)((pm.pm1_cnt & 0x00ff) | (unsigned)v << 8); break;
    default: break;
    }
}

static void pc_pm_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    for (unsigned i = 0; i < size; i++) {
        pc_pm_write_byte(offset + i, (uint8_t)(value >> (8 * i)));
    }
    if (pm.pm1_cnt & PM1_CNT_SLP_EN) {
        unsigned slp_typ = (pm.pm1_cnt >> PM1_CNT_SLP_TYP_SHIFT) & 7;
        pm.pm1_cnt &= (uint16_t)~PM1_CNT_SLP_EN;
        if (slp_typ == 0) {
            system_shutdown_request(SHUTDOWN_CAUSE_GUEST_SHUTDOWN);
        }
    }
    pc_pm_update_sci();
}

/* The ACPI PM timer counts at 3.579545 MHz from machine start, 24 bits wide. */
static uint64_t pc_pm_timer_read(void *opaque, uint64_t offset, unsigned size)
{
    gint64 ns = g_get_monotonic_time() * 1000;
    uint64_t ticks = (uint64_t)((__int128)ns * 3579545 / 1000000000);
    return (ticks & 0xffffff) >> (8 * offset);
}

static const IoRegionOps pc_pm_timer_ops = {
    .read = pc_pm_timer_read,
};

static const IoRegionOps pc_pm_ops = {
    .read = pc_pm_read,
    .write = pc_pm_write,
};

static void pc_reset_cf9_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    /* Bit 2 starts the reset the other bits describe. */
    if (value & 0x04) {
        system_reset_request(SHUTDOWN_CAUSE_GUEST_RESET);
    }
}

static uint64_t pc_reset_cf9_read(void *opaque, uint64_t offset, unsigned size)
{
    return 0;
}

static const IoRegionOps pc_reset_cf9_ops = {
    .read = pc_reset_cf9_read,
    .write = pc_reset_cf9_write,
};

/* Just enough of an i8042 for its reset command; status reads "idle". */
static uint64_t pc_i8042_read(void *opaque, uint64_t offset, unsigned size)
{
    return 0;
}

static void pc_i8042_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    bool command_port = GPOINTER_TO_INT(opaque) == 0x64;
    if (command_port && (value & 0xff) == 0xfe) {
        system_reset_request(SHUTDOWN_CAUSE_GUEST_RESET);
    }
}

static const IoRegionOps pc_i8042_ops = {
    .read = pc_i8042_read,
    .write = pc_i8042_write,
};

static uint64_t pc_port92_read(void *opaque, uint64_t offset, unsigned size)
{
    return pm.port92 | 0x02;    /* A20 is always on */
}

static void pc_port92_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    pm.port92 = value & 0x02;
    if (value & 0x01) {
        system_reset_request(SHUTDOWN_CAUSE_GUEST_RESET);
    }
}

static const IoRegionOps pc_port92_ops = {
    .read = pc_port92_read,
    .write = pc_port92_write,
};

/*
 * Migration: PM1 status, enable and control, and port 0x92. Loading
 * refuses bits the machine never sets (a status bit other than the power
 * button, SLP_EN, which a write consumes at once, port 0x92 bits other
 * than A20) and drives the SCI to the level the loaded state implies.
 */
static bool pc_pm_post_load(void *opaque, int version_id, GError **errp)
{
    PCPMState *s = opaque;

    if (s->pm1_sts & ~PM1_STS_PWRBTN) {
        g_set_error(errp, VMSTATE_ERROR, 0, "PM1 status 0x%04x has bits this machine "
                    "never sets", s->pm1_sts);
        return false;
    }
    if (s->pm1_cnt & PM1_CNT_SLP_EN) {
        g_set_error(errp, VMSTATE_ERROR, 0, "PM1 control 0x%04x has SLP_EN set", s->pm1_cnt);
        return false;
    }
    if (s->port92 & ~0x02) {
        g_set_error(errp, VMSTATE_ERROR, 0, "port 0x92 value 0x%02x has bits other than A20",
                    s->port92);
        return false;
    }
    pc_pm_update_sci();
    return true;
}

static const VMStateDescription vmstate_pc_pm = {
    .name = "pc-pm",
    .version_id = 1,
    .minimum_version_id = 1,
    .post_load = pc_pm_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT16(pm1_sts, PCPMState),
        VMSTATE_UINT16(pm1_en, PCPMState),
        VMSTATE_UINT16(pm1_cnt, PCPMState),
        VMSTATE_UINT8(port92, PCPMState),
        VMSTATE_END_OF_LIST()
    },
};

void pc_pm_init(void)
{
    vmstate_register(NULL, 0, &vmstate_pc_pm, &pm);
    io_region_register(IO_SPACE_PIO, PM_BASE, 6, "acpi-pm1a", &pc_pm_ops, NULL);
    io_region_register(IO_SPACE_PIO, PM_TMR_PORT, 4, "acpi-pm-timer", &pc_pm_timer_ops, NULL);
    io_region_register(IO_SPACE_PIO, 0xcf9, 1, "reset-control", &pc_reset_cf9_ops, NULL);
    /* Data and command ports only: 0x61 belongs to the PIT's speaker gate. */
    io_region_register(IO_SPACE_PIO, 0x60, 1, "i8042-data", &pc_i8042_ops,
                       GINT_TO_POINTER(0x60));
    io_region_register(IO_SPACE_PIO, 0x64, 1, "i8042-cmd", &pc_i8042_ops,
                       GINT_TO_POINTER(0x64));
    io_region_register(IO_SPACE_PIO, 0x92, 1, "port92", &pc_port92_ops, NULL);
}

void pc_pm_reset(void)
{
    pm = (PCPMState) { 0 };
    pc_pm_update_sci();
}

void pc_pm_press_power_button(void)
{
    pm.pm1_sts |= PM1_STS_PWRBTN;
    pc_pm_update_sci();
}
