/*
 * vmstate_save()/vmstate_load() to and from bytes, through the real
 * QEMUFile over a memfd channel: what device-state tests use to save a
 * device, look at (or damage) the bytes, and load them into another one.
 */
#ifndef TESTS_UNIT_MIGRATION_VMSTATE_STREAM_H
#define TESTS_UNIT_MIGRATION_VMSTATE_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <glib.h>

#include "migration/vmstate.h"

/* The bytes vmstate_save() wrote; NULL with @errp if it failed. */
GByteArray *vms_stream_save(const VMStateDescription *vmsd, void *opaque, GError **errp);

/* The bytes written even if vmstate_save() failed (@errp says whether it did). */
GByteArray *vms_stream_save_any(const VMStateDescription *vmsd, void *opaque, GError **errp);

/*
 * vmstate_load() from @data; *@unread (if not NULL) gets the number of
 * bytes the load left in the stream.
 */
bool vms_stream_load(const void *data, size_t len, const VMStateDescription *vmsd,
                     void *opaque, int version_id, size_t *unread, GError **errp);

#endif
