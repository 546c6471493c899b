/*
 * Migration options and an inactive multifd source for programs without
 * the migration core (multifd-stubs.c).
 */
#ifndef TESTS_MULTIFD_STUBS_H
#define TESTS_MULTIFD_STUBS_H

#include <gio/gio.h>

#include "migration/multifd.h"
#include "migration/options.h"
#include "system/ramblock.h"

void multifd_stubs_set_cap(MigrationCapability cap, bool on);
/* Writable: a test sets multifd-channels, compression, ... here. */
MigrationParameters *multifd_stubs_params(void);

#endif
