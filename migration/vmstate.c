/*
 * Declarative device state: walks a VMStateDescription and turns the
 * fields it names into stream bytes (big-endian) and back.
 *
 * Saving runs in two passes over the description: the first calls the
 * pre_save hooks and checks every variable-array count against its
 * maximum, the second writes. A description that cannot be saved thus
 * leaves no half-written device in the stream.
 *
 * Loading trusts nothing it reads: versions are checked against the
 * description, booleans must be 0 or 1, ranged integers must lie in their
 * range, variable-array counts are checked before any element is stored,
 * and the stream is checked for errors (end of stream included) after
 * every read, so a truncated or corrupt stream fails with a message that
 * names the device and the field, never with a crash.
 */
#include <limits.h>
#include <stdarg.h>
#include <string.h>

#include "migration/vmstate.h"

G_DEFINE_QUARK(ferry-vmstate-error-quark, vmstate_error)

/* State of one vmstate_save()/vmstate_load() call. */
typedef struct VMSContext {
    QEMUFile *f;
    const char *device;         /* the top-level description's name */
    GString *path;              /* field being handled: "vq[1].num" */
    GError **errp;
    /* Load: a subsection name read but not yet matched to a description. */
    bool have_pending;
    char pending[256];
} VMSContext;

static bool G_GNUC_PRINTF(2, 3) vms_fail(VMSContext *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (c->path->len) {
        g_set_error(c->errp, VMSTATE_ERROR, 0, "%s: field '%s': %s", c->device, c->path->str,
                    msg);
    } else {
        g_set_error(c->errp, VMSTATE_ERROR, 0, "%s: %s", c->device, msg);
    }
    return false;
}

/* A hook failed: pass its message on with the device (and field) in front. */
static bool vms_fail_hook(VMSContext *c, const char *hook, GError *err)
{
    if (err) {
        vms_fail(c, "%s", err->message);
        g_error_free(err);
    } else {
        vms_fail(c, "%s failed", hook);
    }
    return false;
}

/* Fail if the stream reported an error (end of stream, I/O). */
static bool vms_file_ok(VMSContext *c)
{
    if (!qemu_file_get_error(c->f)) {
        return true;
    }
    const char *msg = qemu_file_error_message(c->f);
    return vms_fail(c, "%s", msg && *msg ? msg : "stream error");
}

/* Field path: push returns the length to pop back to. */
static size_t vms_path_push(VMSContext *c, const char *name)
{
    size_t len = c->path->len;
    if (len) {
        g_string_append_c(c->path, '.');
    }
    g_string_append(c->path, name);
    return len;
}

static size_t vms_path_push_index(VMSContext *c, unsigned i)
{
    size_t len = c->path->len;
    g_string_append_printf(c->path, "[%u]", i);
    return len;
}

static void vms_path_pop(VMSContext *c, size_t len)
{
    g_string_truncate(c->path, len);
}

/* Bytes on the wire (and in memory) of an integer field type; 0 if not one. */
static unsigned vms_int_width(VMStateFieldType t)
{
    switch (t) {
    case VMS_BOOL:
    case VMS_UINT8:
        return 1;
    case VMS_UINT16:
        return 2;
    case VMS_UINT32:
    case VMS_INT32:
    case VMS_UINT32_ARRAY:
        return 4;
    case VMS_UINT64:
    case VMS_INT64:
    case VMS_UINT64_ARRAY:
        return 8;
    default:
        return 0;
    }
}

static bool vms_is_signed(VMStateFieldType t)
{
    return t == VMS_INT32 || t == VMS_INT64;
}

static bool vms_has_subsections(const VMStateDescription *vmsd)
{
    return vmsd->subsections && vmsd->subsections[0];
}

/* The description itself is sound (programming errors, reported not asserted). */
static bool vms_check_field(VMSContext *c, const VMStateField *field)
{
    switch (field->type) {
    case VMS_BOOL:
    case VMS_UINT8:
    case VMS_UINT16:
    case VMS_UINT32:
    case VMS_UINT64:
    case VMS_INT32:
    case VMS_INT64:
        if (field->size != vms_int_width(field->type)) {
            return vms_fail(c, "described with %zu bytes for a %u-byte type", field->size,
                            vms_int_width(field->type));
        }
        return true;
    case VMS_UINT32_ARRAY:
    case VMS_UINT64_ARRAY:
        if (field->size != vms_int_width(field->type)) {
            return vms_fail(c, "array element described with %zu bytes", field->size);
        }
        return true;
    case VMS_BUFFER:
        return true;
    case VMS_STRUCT:
    case VMS_STRUCT_ARRAY:
    case VMS_STRUCT_VARRAY_UINT32:
        if (!field->vmsd || !field->vmsd->fields) {
            return vms_fail(c, "nested struct without a description");
        }
        if (vms_has_subsections(field->vmsd)) {
            return vms_fail(c, "nested description '%s' has subsections, which only a "
                            "top-level description may have", field->vmsd->name);
        }
        return true;
    case VMS_CUSTOM:
        if (!field->info || !field->info->get || !field->info->put) {
            return vms_fail(c, "custom field without get/put");
        }
        return true;
    default:
        return vms_fail(c, "unknown field type %d", (int)field->type);
    }
}

static uint32_t vms_varray_count(const void *opaque, const VMStateField *field)
{
    uint32_t n;
    memcpy(&n, (const uint8_t *)opaque + field->count_offset, sizeof(n));
    return n;
}

/* Host-order integer of @width bytes at @p, zero-extended (sign-extended if @sign). */
static uint64_t vms_read_host(const void *p, unsigned width, bool sign)
{
    switch (width) {
    case 1: {
        uint8_t v;
        memcpy(&v, p, 1);
        return v;
    }
    case 2: {
        uint16_t v;
        memcpy(&v, p, 2);
        return v;
    }
    case 4: {
        uint32_t v;
        memcpy(&v, p, 4);
        return sign ? (uint64_t)(int64_t)(int32_t)v : v;
    }
    default: {
        uint64_t v;
        memcpy(&v, p, 8);
        return v;
    }
    }
}

static void vms_write_host(void *p, unsigned width, uint64_t v)
{
    switch (width) {
    case 1: {
        uint8_t x = (uint8_t)v;
        memcpy(p, &x, 1);
        break;
    }
    case 2: {
        uint16_t x = (uint16_t)v;
        memcpy(p, &x, 2);
        break;
    }
    case 4: {
        uint32_t x = (uint32_t)v;
        memcpy(p, &x, 4);
        break;
    }
    default:
        memcpy(p, &v, 8);
        break;
    }
}

static void vms_put_int(QEMUFile *f, unsigned width, uint64_t v)
{
    switch (width) {
    case 1:
        qemu_put_byte(f, (uint8_t)v);
        break;
    case 2:
        qemu_put_be16(f, (uint16_t)v);
        break;
    case 4:
        qemu_put_be32(f, (uint32_t)v);
        break;
    default:
        qemu_put_be64(f, v);
        break;
    }
}

static uint64_t vms_get_int(QEMUFile *f, unsigned width)
{
    switch (width) {
    case 1:
        return qemu_get_byte(f);
    case 2:
        return qemu_get_be16(f);
    case 4:
        return qemu_get_be32(f);
    default:
        return qemu_get_be64(f);
    }
}

/* ---- Save ---- */

static bool vms_needed(const VMStateDescription *sub, void *opaque)
{
    return !sub->needed || sub->needed(opaque);
}

typedef bool (*VMSStructFn)(VMSContext *c, const VMStateDescription *vmsd, void *opaque);

/*
 * Run @fn over every element of a struct-kind field of @opaque (VMS_STRUCT,
 * VMS_STRUCT_ARRAY, VMS_STRUCT_VARRAY_UINT32), so that the save checks and
 * the load bound a variable count and name elements ("vq[1]") alike.
 */
static bool vms_for_each_struct(VMSContext *c, const VMStateField *field, void *opaque,
                                VMSStructFn fn)
{
    uint8_t *base = (uint8_t *)opaque + field->offset;
    unsigned n = field->type == VMS_STRUCT ? 1 : field->count;

    if (field->type == VMS_STRUCT_VARRAY_UINT32) {
        /* On load the count was loaded (or kept at its default) earlier in the table. */
        n = vms_varray_count(opaque, field);
        if (n > field->count) {
            return vms_fail(c, "count %u exceeds the maximum %u", n, field->count);
        }
    }
    for (unsigned i = 0; i < n; i++) {
        size_t mark = field->type == VMS_STRUCT ? c->path->len : vms_path_push_index(c, i);
        if (!fn(c, field->vmsd, base + (size_t)i * field->size)) {
            return false;
        }
        vms_path_pop(c, mark);
    }
    return true;
}

/* Pass one: hooks and checks, nothing written. */
static bool vms_prepare_desc(VMSContext *c, const VMStateDescription *vmsd, void *opaque)
{
    if (vmsd->pre_save) {
        GError *err = NULL;
        if (!vmsd->pre_save(opaque, &err)) {
            return vms_fail_hook(c, "pre_save", err);
        }
    }
    for (const VMStateField *field = vmsd->fields; field && field->name; field++) {
        if (field->version_id > vmsd->version_id) {
            continue;       /* not part of the version we write */
        }
        size_t mark = vms_path_push(c, field->name);
        if (!vms_check_field(c, field)) {
            return false;
        }
        switch (field->type) {
        case VMS_STRUCT:
        case VMS_STRUCT_ARRAY:
        case VMS_STRUCT_VARRAY_UINT32:
            if (!vms_for_each_struct(c, field, opaque, vms_prepare_desc)) {
                return false;
            }
            break;
        default:
            break;
        }
        vms_path_pop(c, mark);
    }
    for (const VMStateDescription *const *sub = vmsd->subsections; sub && *sub; sub++) {
        if (!vms_needed(*sub, opaque)) {
            continue;
        }
        if (strlen((*sub)->name) > 255) {
            return vms_fail(c, "subsection name '%s' is longer than 255 bytes", (*sub)->name);
        }
        size_t mark = vms_path_push(c, (*sub)->name);
        if (!vms_prepare_desc(c, *sub, opaque)) {
            return false;
        }
        vms_path_pop(c, mark);
    }
    return true;
}

static void vms_write_desc(QEMUFile *f, const VMStateDescription *vmsd, void *opaque);

static void vms_write_field(QEMUFile *f, const VMStateField *field, void *opaque)
{
    void *ptr = (uint8_t *)opaque + field->offset;
    unsigned width = vms_int_width(field->type);

    switch (field->type) {
    case VMS_BOOL: {
        bool b;
        memcpy(&b, ptr, 1);
        qemu_put_byte(f, b ? 1 : 0);
        break;
    }
    case VMS_UINT8:
    case VMS_UINT16:
    case VMS_UINT32:
    case VMS_UINT64:
    case VMS_INT32:
    case VMS_INT64:
        vms_put_int(f, width, vms_read_host(ptr, width, false));
        break;
    case VMS_UINT32_ARRAY:
    case VMS_UINT64_ARRAY:
        for (unsigned i = 0; i < field->count; i++) {
            vms_put_int(f, width, vms_read_host((uint8_t *)ptr + (size_t)i * width, width, false));
        }
        break;
    case VMS_BUFFER:
        qemu_put_buffer(f, ptr, field->size);
        break;
    case VMS_STRUCT:
        vms_write_desc(f, field->vmsd, ptr);
        break;
    case VMS_STRUCT_ARRAY:
    case VMS_STRUCT_VARRAY_UINT32: {
        unsigned n = field->type == VMS_STRUCT_ARRAY ? field->count
                                                     : vms_varray_count(opaque, field);
        for (unsigned i = 0; i < n; i++) {
            vms_write_desc(f, field->vmsd, (uint8_t *)ptr + (size_t)i * field->size);
        }
        break;
    }
    case VMS_CUSTOM:
        field->info->put(f, ptr, field->size);
        break;
    default:
        break;      /* refused by the first pass */
    }
}

/* Pass two: the bytes. Everything was checked in pass one. */
static void vms_write_desc(QEMUFile *f, const VMStateDescription *vmsd, void *opaque)
{
    for (const VMStateField *field = vmsd->fields; field && field->name; field++) {
        if (field->version_id <= vmsd->version_id) {
            vms_write_field(f, field, opaque);
        }
    }
    for (const VMStateDescription *const *sub = vmsd->subsections; sub && *sub; sub++) {
        if (!vms_needed(*sub, opaque)) {
            continue;
        }
        qemu_put_byte(f, VMS_SUBSECTION_MARK);
        qemu_put_counted_string(f, (*sub)->name);
        qemu_put_be32(f, (uint32_t)(*sub)->version_id);
        vms_write_desc(f, *sub, opaque);
    }
}

bool vmstate_save(QEMUFile *f, const VMStateDescription *vmsd, void *opaque, GError **errp)
{
    g_autoptr(GString) path = g_string_new(NULL);
    VMSContext c = { .f = f, .device = vmsd->name, .path = path, .errp = errp };

    if (!vms_prepare_desc(&c, vmsd, opaque)) {
        return false;
    }
    vms_write_desc(f, vmsd, opaque);
    return vms_file_ok(&c);
}

/* ---- Load ---- */

static bool vms_load_desc(VMSContext *c, const VMStateDescription *vmsd, void *opaque,
                          int version_id, bool top);

static bool vms_check_range(VMSContext *c, const VMStateField *field, uint64_t v)
{
    if (!field->has_range) {
        return true;
    }
    if (vms_is_signed(field->type)) {
        int64_t s = (int64_t)v;
        if (s < (int64_t)field->range_min || s > (int64_t)field->range_max) {
            return vms_fail(c, "value %" G_GINT64_FORMAT " out of range (%" G_GINT64_FORMAT
                            " to %" G_GINT64_FORMAT ")", s, (int64_t)field->range_min,
                            (int64_t)field->range_max);
        }
    } else if (v < field->range_min || v > field->range_max) {
        return vms_fail(c, "value %" G_GUINT64_FORMAT " out of range (%" G_GUINT64_FORMAT
                        " to %" G_GUINT64_FORMAT ")", v, field->range_min, field->range_max);
    }
    return true;
}

/* One integer of @field from the stream into @ptr, checked. */
static bool vms_load_int(VMSContext *c, const VMStateField *field, void *ptr)
{
    unsigned width = vms_int_width(field->type);
    uint64_t v = vms_get_int(c->f, width);

    if (!vms_file_ok(c)) {
        return false;
    }
    if (field->type == VMS_BOOL) {
        if (v > 1) {
            return vms_fail(c, "value %" G_GUINT64_FORMAT " is not a boolean (0 or 1)", v);
        }
        bool b = v;
        memcpy(ptr, &b, 1);
        return true;
    }
    if (vms_is_signed(field->type) && width == 4) {
        v = (uint64_t)(int64_t)(int32_t)(uint32_t)v;
    }
    if (!vms_check_range(c, field, v)) {
        return false;
    }
    vms_write_host(ptr, width, v);
    return true;
}

/* A nested struct: its fields as of its own version (no version on the wire). */
static bool vms_load_nested(VMSContext *c, const VMStateDescription *vmsd, void *opaque)
{
    return vms_load_desc(c, vmsd, opaque, vmsd->version_id, false);
}

static bool vms_load_field(VMSContext *c, const VMStateField *field, void *opaque)
{
    void *ptr = (uint8_t *)opaque + field->offset;
    unsigned width = vms_int_width(field->type);

    switch (field->type) {
    case VMS_BOOL:
    case VMS_UINT8:
    case VMS_UINT16:
    case VMS_UINT32:
    case VMS_UINT64:
    case VMS_INT32:
    case VMS_INT64:
        return vms_load_int(c, field, ptr);
    case VMS_UINT32_ARRAY:
    case VMS_UINT64_ARRAY:
        for (unsigned i = 0; i < field->count; i++) {
            size_t mark = vms_path_push_index(c, i);
            VMStateField elem = *field;
            elem.type = width == 4 ? VMS_UINT32 : VMS_UINT64;
            if (!vms_load_int(c, &elem, (uint8_t *)ptr + (size_t)i * width)) {
                return false;
            }
            vms_path_pop(c, mark);
        }
        return true;
    case VMS_BUFFER:
        qemu_get_buffer(c->f, ptr, field->size);
        return vms_file_ok(c);
    case VMS_STRUCT:
    case VMS_STRUCT_ARRAY:
    case VMS_STRUCT_VARRAY_UINT32:
        return vms_for_each_struct(c, field, opaque, vms_load_nested);
    case VMS_CUSTOM: {
        GError *err = NULL;
        if (!field->info->get(c->f, ptr, field->size, &err)) {
            if (!err && qemu_file_get_error(c->f)) {
                return vms_file_ok(c);
            }
            return vms_fail_hook(c, field->info->name ? field->info->name : "get", err);
        }
        return vms_file_ok(c);
    }
    default:
        return vms_fail(c, "unknown field type %d", (int)field->type);
    }
}

static const VMStateDescription *vms_find_subsection(const VMStateDescription *vmsd,
                                                     const char *name)
{
    for (const VMStateDescription *const *sub = vmsd->subsections; sub && *sub; sub++) {
        if (strcmp((*sub)->name, name) == 0) {
            return *sub;
        }
    }
    return NULL;
}

/*
 * Subsections of @vmsd, in any order. A name that is not one of them is
 * left pending for the enclosing description (a subsection of a
 * subsection ends where its parent's next subsection starts); the top
 * level refuses it.
 */
static bool vms_load_subsections(VMSContext *c, const VMStateDescription *vmsd, void *opaque)
{
    for (;;) {
        if (!c->have_pending) {
            if (qemu_peek_byte(c->f) != VMS_SUBSECTION_MARK) {
                return true;
            }
            qemu_get_byte(c->f);
            bool named = qemu_get_counted_string(c->f, c->pending);
            if (!vms_file_ok(c)) {
                return false;
            }
            if (!named) {
                return vms_fail(c, "cannot read a subsection name");
            }
            c->have_pending = true;
        }
        const VMStateDescription *sub = vms_find_subsection(vmsd, c->pending);
        if (!sub) {
            return true;
        }
        c->have_pending = false;
        size_t mark = vms_path_push(c, sub->name);
        uint32_t version = qemu_get_be32(c->f);
        if (!vms_file_ok(c)) {
            return false;
        }
        if (version > INT_MAX) {
            return vms_fail(c, "subsection version %u is not valid", version);
        }
        if (!vms_load_desc(c, sub, opaque, (int)version, false)) {
            return false;
        }
        vms_path_pop(c, mark);
    }
}

static bool vms_load_desc(VMSContext *c, const VMStateDescription *vmsd, void *opaque,
                          int version_id, bool top)
{
    if (version_id > vmsd->version_id || version_id < vmsd->minimum_version_id) {
        g_autofree char *what = top ? g_strdup("state")
                                    : g_strdup_printf("subsection '%s'", vmsd->name);
        g_autofree char *range = vmsd->minimum_version_id >= vmsd->version_id
            ? g_strdup_printf("version %d only", vmsd->version_id)
            : g_strdup_printf("versions %d to %d", vmsd->minimum_version_id, vmsd->version_id);
        g_set_error(c->errp, VMSTATE_ERROR, 0, "%s: %s of version %d in the stream, this side "
                    "loads %s", c->device, what, version_id, range);
        return false;
    }
    for (const VMStateField *field = vmsd->fields; field && field->name; field++) {
        if (field->version_id > version_id) {
            continue;       /* newer than the stream: keeps this side's value */
        }
        size_t mark = vms_path_push(c, field->name);
        if (!vms_check_field(c, field) || !vms_load_field(c, field, opaque)) {
            return false;
        }
        vms_path_pop(c, mark);
    }
    if (vms_has_subsections(vmsd) || top) {
        if (!vms_load_subsections(c, vmsd, opaque)) {
            return false;
        }
    }
    if (top && c->have_pending) {
        g_set_error(c->errp, VMSTATE_ERROR, 0, "unknown subsection '%s' in '%s'", c->pending,
                    c->device);
        return false;
    }
    if (vmsd->post_load) {
        GError *err = NULL;
        if (!vmsd->post_load(opaque, version_id, &err)) {
            return vms_fail_hook(c, "post_load", err);
        }
    }
    return true;
}

bool vmstate_load(QEMUFile *f, const VMStateDescription *vmsd, void *opaque, int version_id,
                  GError **errp)
{
    g_autoptr(GString) path = g_string_new(NULL);
    VMSContext c = { .f = f, .device = vmsd->name, .path = path, .errp = errp };

    return vms_load_desc(&c, vmsd, opaque, version_id, true);
}

/* ---- VMSTATE_EQUAL ---- */

static void vms_equal_put(QEMUFile *f, const void *field, size_t size)
{
    unsigned width = size >= 8 ? 8 : size >= 4 ? 4 : size >= 2 ? 2 : 1;
    vms_put_int(f, width, vms_read_host(field, width, false));
}

static bool vms_equal_get(QEMUFile *f, void *field, size_t size, GError **errp)
{
    if (size != 1 && size != 2 && size != 4 && size != 8) {
        g_set_error(errp, VMSTATE_ERROR, 0, "an equality check needs a 1, 2, 4 or 8-byte field");
        return false;
    }
    uint64_t theirs = vms_get_int(f, (unsigned)size);
    uint64_t ours = vms_read_host(field, (unsigned)size, false);
    if (qemu_file_get_error(f)) {
        return false;
    }
    if (theirs != ours) {
        g_set_error(errp, VMSTATE_ERROR, 0, "stream has %" G_GUINT64_FORMAT ", this side %"
                    G_GUINT64_FORMAT, theirs, ours);
        return false;
    }
    return true;
}

const VMStateInfo vmstate_info_equal = {
    .name = "equal",
    .get = vms_equal_get,
    .put = vms_equal_put,
};
