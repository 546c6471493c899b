/*
 * Migration participants. Anything with state to move registers here
 * under an id string and instance number: live participants (RAM) with
 * SaveVMHandlers, plain devices with a vmstate description. The migration
 * core walks the registry and never names a device.
 */
#ifndef MIGRATION_REGISTER_H
#define MIGRATION_REGISTER_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "migration/qemu-file.h"
#include "migration/vmstate.h"

typedef struct SaveVMHandlers {
    /* ---- Source ---- */
    /* Start of migration (migration thread, BQL held). Writes the START payload. */
    bool (*save_setup)(QEMUFile *f, void *opaque, GError **errp);
    /*
     * One round of live data (migration thread, BQL not held). Writes a
     * PART payload; returns 1 when nothing is left to send this round,
     * 0 when it stopped early (rate limit), -1 on error.
     */
    int (*save_live_iterate)(QEMUFile *f, void *opaque, GError **errp);
    /* With the VM stopped (BQL held): everything that is left (END payload). */
    bool (*save_live_complete_precopy)(QEMUFile *f, void *opaque, GError **errp);
    /*
     * How much is still to send. The estimate is cheap and may be stale;
     * the exact one may sync (e.g. the dirty log, taking the BQL itself).
     */
    void (*state_pending_estimate)(void *opaque, uint64_t *must_precopy, uint64_t *can_postcopy);
    void (*state_pending_exact)(void *opaque, uint64_t *must_precopy, uint64_t *can_postcopy);
    /* After success, failure or cancel (BQL held): undo setup (dirty logging off). */
    void (*save_cleanup)(void *opaque);

    /* ---- Destination ---- */
    bool (*load_setup)(QEMUFile *f, void *opaque, GError **errp);
    /* One START/PART/END/FULL payload at stream version @version_id. */
    bool (*load_state)(QEMUFile *f, void *opaque, int version_id, GError **errp);
    void (*load_cleanup)(void *opaque);

    /* ---- Reserved for postcopy (later issues) ---- */
    bool (*save_postcopy_prepare)(QEMUFile *f, void *opaque, GError **errp);
    bool (*resume_prepare)(void *opaque, GError **errp);
} SaveVMHandlers;

/*
 * Register a live participant. @idstr + @instance_id name its sections on
 * the wire; @version_id is written in START/FULL sections.
 */
void register_savevm_live(const char *idstr, uint32_t instance_id, int version_id,
                          const SaveVMHandlers *ops, void *opaque);

/*
 * Register a device whose whole state is @vmsd over @opaque: saved in one
 * FULL section at completion, loaded with vmstate_load(). The section id
 * string is vmsd->name unless @idstr is given.
 */
void vmstate_register(const char *idstr, uint32_t instance_id,
                      const VMStateDescription *vmsd, void *opaque);

/*
 * Register the load side of an older form of some state: a section
 * (@idstr or vmsd->name, @instance_id) that an older Ferry wrote for what
 * the registrations named in @replaces (NULL-terminated, same instance)
 * carry today. It is never saved and may be absent; when a stream has it,
 * it is loaded with @vmsd and the registrations it replaces count as
 * loaded.
 */
void vmstate_register_old_form(const char *idstr, uint32_t instance_id,
                               const VMStateDescription *vmsd, void *opaque,
                               const char *const *replaces);

/*
 * Register a device whose section a stream may lack (another accelerator
 * has no such state): saved as usual; when a stream has none, the device
 * keeps its state.
 */
void vmstate_register_optional(const char *idstr, uint32_t instance_id,
                               const VMStateDescription *vmsd, void *opaque);
/*
 * Register the load side of a section another accelerator's stream
 * carries and this VM has no state for: never saved, may be absent; when
 * present, @vmsd reads (and checks) it.
 */
void vmstate_register_load_only(const char *idstr, uint32_t instance_id,
                                const VMStateDescription *vmsd, void *opaque);

void unregister_savevm(const char *idstr, uint32_t instance_id);

#endif
