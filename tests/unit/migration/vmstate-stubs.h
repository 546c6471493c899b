/*
 * A stand-in for the migration registry (vmstate_register() and friends)
 * for unit tests that build device models without the migration core:
 * registrations are recorded so a test can save and load a device the
 * way the core would, by id string and instance.
 *
 * Every definition is weak: a test or library that brings its own (the
 * real savevm.c, a test's main_loop_context) takes precedence.
 */
#ifndef TESTS_UNIT_MIGRATION_VMSTATE_STUBS_H
#define TESTS_UNIT_MIGRATION_VMSTATE_STUBS_H

#include <stdint.h>

#include "migration/vmstate.h"

typedef struct StubVMStateEntry {
    char *idstr;
    uint32_t instance_id;
    const VMStateDescription *vmsd;
    void *opaque;
    bool old_form;              /* vmstate_register_old_form() */
} StubVMStateEntry;

/* The registration of (@idstr, @instance_id), or NULL (old forms apart). */
const StubVMStateEntry *stub_vmstate_find(const char *idstr, uint32_t instance_id);
/* The old form registered for (@idstr, @instance_id), or NULL. */
const StubVMStateEntry *stub_vmstate_find_old_form(const char *idstr, uint32_t instance_id);
/* Registrations so far, in order. */
unsigned stub_vmstate_count(void);
const StubVMStateEntry *stub_vmstate_get(unsigned index);
/* Forget every registration. */
void stub_vmstate_clear(void);

#endif
