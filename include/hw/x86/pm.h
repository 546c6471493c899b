/*
 * Power management and reset ports of the machine: the ACPI PM1a event
 * and control blocks (power button, soft-off) and the PC reset ports.
 */
#ifndef HW_X86_PM_H
#define HW_X86_PM_H

#include <stdint.h>

#define PM_BASE             0x600
#define PM1_STS_PWRBTN      (1u << 8)
#define PM1_CNT_SLP_EN      (1u << 13)
#define PM1_CNT_SLP_TYP_SHIFT 10
#define PM_SCI_IRQ          9
#define PM_TMR_PORT         0x608   /* ACPI PM timer, 3.579545 MHz, 24 bits */
#define PM1_CNT_SCI_EN      (1u << 0)

typedef struct PCPMState {
    uint16_t pm1_sts;
    uint16_t pm1_en;
    uint16_t pm1_cnt;
    uint8_t port92;             /* port A: bit 1 (A20) as last written */
} PCPMState;

/* Register the ports; the state migrates as ("pc-pm", 0). */
void pc_pm_init(void);
void pc_pm_reset(void);
void pc_pm_press_power_button(void);

#endif
