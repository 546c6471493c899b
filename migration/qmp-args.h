/*
 * What the migration QMP commands (migration-qmp.c, options.c) share to
 * check arguments the dispatcher does not look into: the members of
 * objects inside migrate's "channels", migrate-set-capabilities' list and
 * block-bitmap-mapping. The texts are those of QEMU's input visitor, with
 * @path naming the enclosing object ("channels[0].addr"); every error is
 * a GenericError. Defined in migration-qmp.c. Not for use outside
 * migration/.
 */
#ifndef MIGRATION_QMP_ARGS_H
#define MIGRATION_QMP_ARGS_H

#include <stdbool.h>
#include <glib.h>
#include <json-glib/json-glib.h>

/* Set @errp to a GenericError with the formatted text. */
void mig_qmp_error(GError **errp, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

typedef enum MigQmpType {
    MIG_QMP_STR,
    MIG_QMP_BOOL,
    MIG_QMP_UINT,       /* any JSON integer: the sign is the caller's to check */
    MIG_QMP_OBJECT,
    MIG_QMP_ARRAY,
} MigQmpType;

/* @path.@member, present and of @type; NULL with @errp set otherwise. */
JsonNode *mig_qmp_member(JsonObject *obj, const char *path, const char *member,
                         MigQmpType type, GError **errp);

/* @path.@member is absent or of @type; false with @errp set otherwise. */
bool mig_qmp_optional_member(JsonObject *obj, const char *path, const char *member,
                             MigQmpType type, GError **errp);

/*
 * Every member of @obj is in the NULL-terminated @known; else @errp names
 * the first that is not.
 */
bool mig_qmp_no_extra_members(JsonObject *obj, const char *path, const char *const *known,
                              GError **errp);

/* The list element @el (at @path) as an object; NULL with @errp set otherwise. */
JsonObject *mig_qmp_object_element(JsonNode *el, const char *path, GError **errp);

#endif
