/*
 * What the generic system code asks of the machine (hw/): reset it to its
 * power-on state, press its power button.
 */
#ifndef SYSTEM_MACHINE_H
#define SYSTEM_MACHINE_H

/* With every vCPU paused and the BQL held: put devices and vCPUs back to
 * their power-on state and load the boot payload again. */
void machine_reset(void);
/* Signal an ACPI power-button press to the guest. */
void machine_powerdown(void);
/* The machine type as the migration stream names it ("ferry"). */
const char *machine_type_name(void);

#endif
