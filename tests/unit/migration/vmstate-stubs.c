/*
 * Recording stand-ins for the migration registry, and for the two machine
 * functions the migration transports reference (main loop context,
 * monitor fd table), so device models and QEMUFile link without the
 * machine. All weak: see vmstate-stubs.h.
 */
#include <string.h>

#include <glib.h>

#include "migration/register.h"
#include "system/main-loop.h"
#include "tests/unit/migration/vmstate-stubs.h"

int monitor_fd_take(const char *fdname);

static GPtrArray *stub_entries;

static void stub_entry_free(gpointer p)
{
    StubVMStateEntry *e = p;
    g_free(e->idstr);
    g_free(e);
}

static GPtrArray *stub_list(void)
{
    if (!stub_entries) {
        stub_entries = g_ptr_array_new_with_free_func(stub_entry_free);
    }
    return stub_entries;
}

__attribute__((weak)) void vmstate_register(const char *idstr, uint32_t instance_id,
                                            const VMStateDescription *vmsd, void *opaque)
{
    StubVMStateEntry *e = g_new0(StubVMStateEntry, 1);
    e->idstr = g_strdup(idstr ? idstr : vmsd->name);
    e->instance_id = instance_id;
    e->vmsd = vmsd;
    e->opaque = opaque;
    g_ptr_array_add(stub_list(), e);
}

__attribute__((weak)) void vmstate_register_old_form(const char *idstr, uint32_t instance_id,
                                                     const VMStateDescription *vmsd,
                                                     void *opaque,
                                                     const char *const *replaces)
{
    vmstate_register(idstr, instance_id, vmsd, opaque);
    StubVMStateEntry *e = g_ptr_array_index(stub_list(), stub_list()->len - 1);
    e->old_form = true;
}

__attribute__((weak)) void vmstate_register_optional(const char *idstr, uint32_t instance_id,
                                                     const VMStateDescription *vmsd,
                                                     void *opaque)
{
    vmstate_register(idstr, instance_id, vmsd, opaque);
}

__attribute__((weak)) void vmstate_register_load_only(const char *idstr, uint32_t instance_id,
                                                      const VMStateDescription *vmsd,
                                                      void *opaque)
{
    static const char *const nothing[] = { NULL };
    vmstate_register_old_form(idstr, instance_id, vmsd, opaque, nothing);
}

__attribute__((weak)) void register_savevm_live(const char *idstr, uint32_t instance_id,
                                                int version_id, const SaveVMHandlers *ops,
                                                void *opaque)
{
}

__attribute__((weak)) void unregister_savevm(const char *idstr, uint32_t instance_id)
{
    GPtrArray *list = stub_list();
    for (guint i = 0; i < list->len; i++) {
        StubVMStateEntry *e = g_ptr_array_index(list, i);
        if (e->instance_id == instance_id && strcmp(e->idstr, idstr) == 0) {
            g_ptr_array_remove_index(list, i);
            return;
        }
    }
}

const StubVMStateEntry *stub_vmstate_find(const char *idstr, uint32_t instance_id)
{
    GPtrArray *list = stub_list();
    /* The latest registration wins: tests create devices again. */
    for (guint i = list->len; i-- > 0;) {
        StubVMStateEntry *e = g_ptr_array_index(list, i);
        if (!e->old_form && e->instance_id == instance_id && strcmp(e->idstr, idstr) == 0) {
            return e;
        }
    }
    return NULL;
}

const StubVMStateEntry *stub_vmstate_find_old_form(const char *idstr, uint32_t instance_id)
{
    GPtrArray *list = stub_list();
    for (guint i = list->len; i-- > 0;) {
        StubVMStateEntry *e = g_ptr_array_index(list, i);
        if (e->old_form && e->instance_id == instance_id && strcmp(e->idstr, idstr) == 0) {
            return e;
        }
    }
    return NULL;
}

unsigned stub_vmstate_count(void)
{
    return stub_list()->len;
}

const StubVMStateEntry *stub_vmstate_get(unsigned index)
{
    return index < stub_list()->len ? g_ptr_array_index(stub_list(), index) : NULL;
}

void stub_vmstate_clear(void)
{
    g_ptr_array_set_size(stub_list(), 0);
}

__attribute__((weak)) GMainContext *main_loop_context(void)
{
    return g_main_context_default();
}

__attribute__((weak)) int monitor_fd_take(const char *fdname)
{
    return -1;
}
