/*
 * Memory backends from the command line, with QEMU's object types:
 * memory-backend-ram (anonymous), -memfd and -file.
 */
#include <string.h>

#include "system/memory-backend.h"

static bool memory_backend_create(OptList *o, GError **errp)
{
    const char *type = opts_get(o, "qom-type");
    const char *id = opts_get(o, "id");
    RAMBlockOptions ro = { 0 };
    uint64_t size;

    if (strcmp(type, "memory-backend-ram") == 0) {
        ro.kind = RAM_BACKING_ANON;
    } else if (strcmp(type, "memory-backend-memfd") == 0) {
        ro.kind = RAM_BACKING_MEMFD;
        ro.shared = true;
    } else if (strcmp(type, "memory-backend-file") == 0) {
        ro.kind = RAM_BACKING_FILE;
    } else {
        g_set_error(errp, FERRY_OPTION_ERROR, 0, "invalid object type: %s", type);
        return false;
    }
    if (!id || !*id) {
        g_set_error(errp, FERRY_OPTION_ERROR, 0, "Parameter 'id' is missing");
        return false;
    }
    if (!opts_has(o, "size")) {
        g_set_error(errp, FERRY_OPTION_ERROR, 0, "%s '%s': Parameter 'size' is missing",
                    type, id);
        return false;
    }
    if (!opts_get_size(o, "size", 0, &size, errp)) {
        return false;
    }
    g_autoptr(GError) local = NULL;
    ro.shared = opts_get_bool(o, "share", ro.shared, &local);
    ro.prealloc = local ? false : opts_get_bool(o, "prealloc", false, &local);
    if (local) {
        g_propagate_error(errp, g_steal_pointer(&local));
        return false;
    }
    ro.mem_path = opts_get(o, "mem-path");
    if (ro.kind == RAM_BACKING_FILE && !ro.mem_path) {
        g_set_error(errp, FERRY_OPTION_ERROR, 0,
                    "memory-backend-file '%s': Parameter 'mem-path' is missing", id);
        return false;
    }
    if (ro.kind != RAM_BACKING_FILE && ro.mem_path) {
        g_set_error(errp, FERRY_OPTION_ERROR, 0, "%s '%s': Invalid parameter 'mem-path'",
                    type, id);
        return false;
    }
    opts_get(o, "merge");
    opts_get(o, "dump");
    if (!opts_check_all_used(o, errp)) {
        return false;
    }
    ro.id = id;
    ro.size = size;
    return ramblock_new(&ro, errp) != NULL;
}

RAMBlock *memory_backend_create_machine_ram(FerryConfig *cfg, GError **errp)
{
    for (guint i = 0; i < cfg->objects->len; i++) {
        if (!memory_backend_create(g_ptr_array_index(cfg->objects, i), errp)) {
            return NULL;
        }
    }

    const char *backend = opts_get(cfg->machine, "memory-backend");
    if (backend) {
        RAMBlock *ram = ramblock_find(backend);
        if (!ram) {
            g_set_error(errp, FERRY_OPTION_ERROR, 0,
                        "-machine memory-backend=%s: no memory backend with that id", backend);
            return NULL;
        }
        if (cfg->ram_size_given && cfg->ram_size != ram->used_length) {
            g_set_error(errp, FERRY_OPTION_ERROR, 0,
                        "-m %" G_GUINT64_FORMAT "M does not match the size of memory backend "
                        "'%s' (%" G_GUINT64_FORMAT "M)", cfg->ram_size >> 20, backend,
                        ram->used_length >> 20);
            return NULL;
        }
        return ram;
    }
    RAMBlockOptions ro = { .id = "pc.ram", .size = cfg->ram_size, .kind = RAM_BACKING_ANON };
    return ramblock_new(&ro, errp);
}
