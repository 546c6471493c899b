/*
 * Stand-ins for the migration core (migration/migration.c) for the tests
 * of the migration monitor commands: they record what the commands asked
 * for and report whatever state a test sets.
 */
#ifndef TESTS_UNIT_MIGRATION_CORE_STUBS_H
#define TESTS_UNIT_MIGRATION_CORE_STUBS_H

#include "migration/migration.h"

extern MigrationStatus stub_outgoing_status;
extern MigrationStatus stub_incoming_status;

/* qmp_migrate_start / qmp_migrate_incoming_start: the last call. */
extern char *stub_migrate_uri;
extern bool stub_migrate_resume;
extern char *stub_incoming_uri;
/* When set, the next start fails with this text (GenericError). */
extern const char *stub_start_error;
/* qmp_migrate_start sets the outgoing status to this (default: setup). */
extern MigrationStatus stub_status_after_start;

extern int stub_cancel_calls;
extern int stub_continue_calls;

/* What migration_query_info() returns (a copy); NULL: {}. */
extern JsonObject *stub_query_info;

void migration_core_stubs_reset(void);

#endif
