/*
 * Choosing the accelerator (-accel, -machine accel=, their fallback
 * lists) and the generic side of the interface: the RAM slots dirty
 * tracking walks, and interrupt lines.
 */
#include <string.h>
#include <gio/gio.h>

#include "system/accel.h"

static const AccelOps *const accel_all[] = {
    &accel_kvm_ops,
    &accel_tcg_ops,
    &accel_qtest_ops,
};

static const char *const accel_all_names[] = { "kvm", "tcg", "qtest", NULL };

/* Names QEMU knows that Ferry has no accelerator for. */
static const char *const accel_foreign[] = { "xen", "hvf", "whpx", "nvmm", NULL };

static const AccelOps *current;

const char *const *accel_names(void)
{
    return accel_all_names;
}

const AccelOps *accel_find(const char *name)
{
    for (unsigned i = 0; i < G_N_ELEMENTS(accel_all); i++) {
        if (strcmp(accel_all[i]->name, name) == 0) {
            return accel_all[i];
        }
    }
    return NULL;
}

bool accel_name_known(const char *name)
{
    return accel_find(name) || g_strv_contains(accel_foreign, name);
}

const AccelOps *accel_current(void)
{
    return current;
}

bool accel_kvm_enabled(void)
{
    return current == &accel_kvm_ops;
}

bool accel_kvm_present(void)
{
    return accel_kvm_ops.available(NULL);
}

bool accel_setup(GPtrArray *names, const AccelCPUConfig *cfg, GError **errp)
{
    static const char *const fallback[] = { "kvm", "tcg" };
    g_autoptr(GString) failures = g_string_new(NULL);
    guint n = names && names->len ? names->len : G_N_ELEMENTS(fallback);

    bool named = names && names->len;

    for (guint i = 0; i < n; i++) {
        const char *name = named ? g_ptr_array_index(names, i) : fallback[i];
        const AccelOps *ops = accel_find(name);
        g_autoptr(GError) err = NULL;
        g_autofree char *why = NULL;

        if (!ops) {
            if (!accel_name_known(name)) {
                g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                            "-accel %s: invalid accelerator %s (kvm, tcg, qtest)", name, name);
                return false;
            }
            g_string_append_printf(failures, "%saccelerator '%s' is not supported by Ferry",
                                   failures->len ? "; " : "", name);
            continue;
        }
        if (!ops->available(&why)) {
            g_string_append_printf(failures, "%s%s: %s", failures->len ? "; " : "", name, why);
            continue;
        }
        if (!ops->check_cpu_model(cfg->model, &err)) {
            g_string_append_printf(failures, "%s%s: %s", failures->len ? "; " : "", name,
                                   err->message);
            continue;
        }
        current = ops;
        if (ops->init(cfg, &err)) {
            /*
             * Say why a faster choice was passed over, except the quiet
             * default of tcg on a host without KVM.
             */
            if (failures->len && (named || accel_kvm_present())) {
                g_printerr("ferry: %s; using %s\n", failures->str, name);
            }
            return true;
        }
        current = NULL;
        g_string_append_printf(failures, "%s%s: %s", failures->len ? "; " : "", name,
                               err->message);
    }
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                "no accelerator could be initialized (%s)", failures->str);
    return false;
}

#define ACCEL_MAX_SLOTS 32

static AccelSlot slots[ACCEL_MAX_SLOTS];
static int nr_slots;

bool accel_map_ram(uint64_t gpa, uint64_t size, void *host, GError **errp)
{
    if (nr_slots == ACCEL_MAX_SLOTS) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "out of guest RAM slots");
        return false;
    }
    if (!current->map_ram(nr_slots, gpa, size, host, errp)) {
        return false;
    }
    slots[nr_slots++] = (AccelSlot) { .gpa = gpa, .size = size, .host = host };
    return true;
}

int accel_slot_count(void)
{
    return nr_slots;
}

const AccelSlot *accel_slot_get(int index)
{
    return index >= 0 && index < nr_slots ? &slots[index] : NULL;
}

bool accel_slot_set_dirty_logging(int index, bool on, GError **errp)
{
    if (slots[index].logging == on) {
        return true;
    }
    if (!current->dirty_log_enable(index, on, errp)) {
        return false;
    }
    slots[index].logging = on;
    return true;
}

bool accel_slot_get_dirty_log(int index, unsigned long *bitmap, GError **errp)
{
    return current->dirty_log_fetch(index, bitmap, errp);
}

void accel_set_irq(int gsi, int level)
{
    current->set_irq(gsi, level);
}
