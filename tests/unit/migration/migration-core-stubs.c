/*
 * Stand-ins for the migration core, for the tests of the migration
 * monitor commands (options.c, migration-qmp.c, migration-hmp.c).
 */
#include <string.h>

#include "system/monitor.h"
#include "tests/unit/migration/migration-core-stubs.h"

MigrationStatus stub_outgoing_status = MIGRATION_STATUS_NONE;
MigrationStatus stub_incoming_status = MIGRATION_STATUS_NONE;
char *stub_migrate_uri;
bool stub_migrate_resume;
char *stub_incoming_uri;
const char *stub_start_error;
MigrationStatus stub_status_after_start = MIGRATION_STATUS_SETUP;
int stub_cancel_calls;
int stub_continue_calls;
JsonObject *stub_query_info;

static const char *const status_names[MIGRATION_STATUS__MAX] = {
    "none", "setup", "cancelling", "cancelled", "active", "postcopy-active",
    "postcopy-paused", "postcopy-recover-setup", "postcopy-recover", "completed",
    "failed", "colo", "pre-switchover", "device", "wait-unplug",
};

void migration_core_stubs_reset(void)
{
    stub_outgoing_status = MIGRATION_STATUS_NONE;
    stub_incoming_status = MIGRATION_STATUS_NONE;
    g_clear_pointer(&stub_migrate_uri, g_free);
    g_clear_pointer(&stub_incoming_uri, g_free);
    stub_migrate_resume = false;
    stub_start_error = NULL;
    stub_status_after_start = MIGRATION_STATUS_SETUP;
    stub_cancel_calls = 0;
    stub_continue_calls = 0;
    g_clear_pointer(&stub_query_info, json_object_unref);
}

const char *migration_status_name(MigrationStatus s)
{
    return s < MIGRATION_STATUS__MAX ? status_names[s] : "none";
}

bool migration_status_parse(const char *name, MigrationStatus *out)
{
    for (int i = 0; i < MIGRATION_STATUS__MAX; i++) {
        if (!strcmp(name, status_names[i])) {
            *out = i;
            return true;
        }
    }
    return false;
}

MigrationStatus migration_outgoing_status(void)
{
    return stub_outgoing_status;
}

MigrationStatus migration_incoming_status(void)
{
    return stub_incoming_status;
}

bool qmp_migrate_start(const char *uri, bool resume, GError **errp)
{
    if (stub_start_error) {
        g_set_error_literal(errp, QMP_ERROR, QMP_ERROR_GENERIC, stub_start_error);
        stub_start_error = NULL;
        return false;
    }
    g_free(stub_migrate_uri);
    stub_migrate_uri = g_strdup(uri);
    stub_migrate_resume = resume;
    stub_outgoing_status = stub_status_after_start;
    return true;
}

bool qmp_migrate_incoming_start(const char *uri, GError **errp)
{
    if (stub_start_error) {
        /* Not QMP_ERROR: the command must still report a GenericError. */
        g_set_error_literal(errp, G_IO_ERROR, G_IO_ERROR_FAILED, stub_start_error);
        stub_start_error = NULL;
        return false;
    }
    g_free(stub_incoming_uri);
    stub_incoming_uri = g_strdup(uri);
    stub_incoming_status = MIGRATION_STATUS_SETUP;
    return true;
}

void qmp_migrate_cancel_now(void)
{
    stub_cancel_calls++;
}

bool qmp_migrate_continue_from(MigrationStatus state, GError **errp)
{
    if (stub_outgoing_status != state) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC, "Migration not in expected state: %s",
                    migration_status_name(stub_outgoing_status));
        return false;
    }
    stub_continue_calls++;
    return true;
}

JsonObject *migration_query_info(void)
{
    return stub_query_info ? json_object_ref(stub_query_info) : json_object_new();
}
