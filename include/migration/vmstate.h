/*
 * Declarative device state. A device describes its migratable state as a
 * table of fields (type, offset in its struct, size, the version that
 * introduced it) plus optional subsections; vmstate_save()/vmstate_load()
 * turn the table into stream bytes and back. Devices never hand-write
 * their serialisation, and the loader checks every count and size against
 * the table before writing into the device.
 *
 * Wire form (big-endian): the fields in table order, each as its type
 * says; then, for every subsection whose needed() is true, the byte
 * VMS_SUBSECTION_MARK, the subsection name (u8 length + bytes), its
 * version (be32) and its own fields and subsections. A loader that meets
 * a subsection it does not know fails with its name; one that finds no
 * subsection keeps the device's default (so an older destination takes a
 * newer source's stream while the optional state is at its default).
 */
#ifndef MIGRATION_VMSTATE_H
#define MIGRATION_VMSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#include "migration/qemu-file.h"

#define VMS_SUBSECTION_MARK 0x05

typedef enum VMStateFieldType {
    VMS_END = 0,
    VMS_BOOL,               /* 1 byte, 0 or 1 (else refused) */
    VMS_UINT8,
    VMS_UINT16,
    VMS_UINT32,
    VMS_UINT64,
    VMS_INT32,
    VMS_INT64,
    VMS_BUFFER,             /* @size raw bytes */
    VMS_UINT32_ARRAY,       /* @count elements */
    VMS_UINT64_ARRAY,
    VMS_STRUCT,             /* nested description @vmsd at @offset */
    VMS_STRUCT_ARRAY,       /* @count structs of @size bytes each */
    /*
     * Variable-length array of structs: the element count is the uint32
     * field at @count_offset (saved earlier in the same table); loading
     * refuses counts above @count.
     */
    VMS_STRUCT_VARRAY_UINT32,
    VMS_CUSTOM,             /* @info's get/put */
} VMStateFieldType;

typedef struct VMStateDescription VMStateDescription;

/* Hand-written (de)serialisation for one odd field; errors via @errp. */
typedef struct VMStateInfo {
    const char *name;
    bool (*get)(QEMUFile *f, void *field, size_t size, GError **errp);
    void (*put)(QEMUFile *f, const void *field, size_t size);
} VMStateInfo;

typedef struct VMStateField {
    const char *name;
    VMStateFieldType type;
    size_t offset;
    size_t size;            /* BUFFER: bytes; STRUCT_ARRAY/VARRAY: element size; CUSTOM */
    unsigned count;         /* arrays: element count (VARRAY: maximum) */
    size_t count_offset;    /* VARRAY: offset of the uint32 count */
    int version_id;         /* saved/loaded only when the stream version >= this */
    const VMStateDescription *vmsd;     /* STRUCT kinds */
    const VMStateInfo *info;            /* CUSTOM */
    /* Optional check on load: refuse values outside [min, max] (integers). */
    bool has_range;
    uint64_t range_min;
    uint64_t range_max;
} VMStateField;

struct VMStateDescription {
    const char *name;
    int version_id;
    int minimum_version_id;
    /* Hooks; any may be NULL. Errors fail the migration with their message. */
    bool (*pre_save)(void *opaque, GError **errp);
    bool (*post_load)(void *opaque, int version_id, GError **errp);
    bool (*needed)(void *opaque);           /* subsections: send only if true */
    const VMStateField *fields;             /* ends with VMSTATE_END_OF_LIST() */
    const VMStateDescription *const *subsections;   /* NULL-terminated */
};

/* Field constructors. @st is the struct type, @f the member. */
#define VMSTATE_FIELD_(st, f, t, ver) \
    { .name = #f, .type = (t), .offset = offsetof(st, f), .size = sizeof(((st *)0)->f), \
      .version_id = (ver) }
#define VMSTATE_BOOL(f, st)     VMSTATE_FIELD_(st, f, VMS_BOOL, 0)
#define VMSTATE_UINT8(f, st)    VMSTATE_FIELD_(st, f, VMS_UINT8, 0)
#define VMSTATE_UINT16(f, st)   VMSTATE_FIELD_(st, f, VMS_UINT16, 0)
#define VMSTATE_UINT32(f, st)   VMSTATE_FIELD_(st, f, VMS_UINT32, 0)
#define VMSTATE_UINT64(f, st)   VMSTATE_FIELD_(st, f, VMS_UINT64, 0)
#define VMSTATE_INT32(f, st)    VMSTATE_FIELD_(st, f, VMS_INT32, 0)
#define VMSTATE_INT64(f, st)    VMSTATE_FIELD_(st, f, VMS_INT64, 0)
#define VMSTATE_UINT32_V(f, st, v) VMSTATE_FIELD_(st, f, VMS_UINT32, v)
#define VMSTATE_UINT64_V(f, st, v) VMSTATE_FIELD_(st, f, VMS_UINT64, v)
/* A uint8/16/32/64 whose loaded value must lie in [lo, hi]. */
#define VMSTATE_UINT32_RANGE(f, st, lo, hi) \
    { .name = #f, .type = VMS_UINT32, .offset = offsetof(st, f), .size = 4, \
      .has_range = true, .range_min = (lo), .range_max = (hi) }
#define VMSTATE_UINT16_RANGE(f, st, lo, hi) \
    { .name = #f, .type = VMS_UINT16, .offset = offsetof(st, f), .size = 2, \
      .has_range = true, .range_min = (lo), .range_max = (hi) }
#define VMSTATE_UINT8_RANGE(f, st, lo, hi) \
    { .name = #f, .type = VMS_UINT8, .offset = offsetof(st, f), .size = 1, \
      .has_range = true, .range_min = (lo), .range_max = (hi) }
#define VMSTATE_BUFFER(f, st)   VMSTATE_FIELD_(st, f, VMS_BUFFER, 0)
#define VMSTATE_UINT32_ARRAY(f, st, n) \
    { .name = #f, .type = VMS_UINT32_ARRAY, .offset = offsetof(st, f), .size = 4, .count = (n) }
#define VMSTATE_UINT64_ARRAY(f, st, n) VMSTATE_UINT64_ARRAY_V(f, st, n, 0)
#define VMSTATE_UINT64_ARRAY_V(f, st, n, v) \
    { .name = #f, .type = VMS_UINT64_ARRAY, .offset = offsetof(st, f), .size = 8, .count = (n), \
      .version_id = (v) }
/* (@elem_type, not "type": a parameter named so would replace the ".type" designator.) */
#define VMSTATE_STRUCT(f, st, desc, elem_type) \
    { .name = #f, .type = VMS_STRUCT, .offset = offsetof(st, f), .size = sizeof(elem_type), \
      .vmsd = &(desc) }
#define VMSTATE_STRUCT_ARRAY(f, st, n, desc, elem_type) \
    { .name = #f, .type = VMS_STRUCT_ARRAY, .offset = offsetof(st, f), \
      .size = sizeof(elem_type), .count = (n), .vmsd = &(desc) }
#define VMSTATE_STRUCT_VARRAY_UINT32(f, st, count_field, max, desc, elem_type) \
    { .name = #f, .type = VMS_STRUCT_VARRAY_UINT32, .offset = offsetof(st, f), \
      .size = sizeof(elem_type), .count = (max), .count_offset = offsetof(st, count_field), \
      .vmsd = &(desc) }
#define VMSTATE_CUSTOM(f, st, inf) \
    { .name = #f, .type = VMS_CUSTOM, .offset = offsetof(st, f), .size = sizeof(((st *)0)->f), \
      .info = &(inf) }
#define VMSTATE_END_OF_LIST() { .name = NULL, .type = VMS_END }

/*
 * A value the destination must already have (a disk's size, a device's
 * type): saved as a big-endian integer of the field's width (1, 2, 4 or
 * 8 bytes); loading compares it with the field instead of storing it and
 * refuses a difference ("stream has 2048, this side 4096").
 */
extern const VMStateInfo vmstate_info_equal;
#define VMSTATE_EQUAL(f, st)    VMSTATE_CUSTOM(f, st, vmstate_info_equal)

/* Error domain of vmstate_save()/vmstate_load() messages. */
#define VMSTATE_ERROR vmstate_error_quark()
GQuark vmstate_error_quark(void);

/*
 * Serialise @opaque's state. First every pre_save hook runs and every
 * variable-array count is checked against its maximum (nested structs and
 * needed subsections included); only then is anything written, so a
 * refused save leaves nothing of this device in the stream. needed() is
 * asked twice and must depend on the state only.
 *
 * Subsections may hang off the top-level description and off its
 * subsections, not off a description nested with VMS_STRUCT* (its end in
 * the stream could not be told from the parent's next field).
 */
bool vmstate_save(QEMUFile *f, const VMStateDescription *vmsd, void *opaque, GError **errp);
/*
 * Load state written by vmstate_save() at stream version @version_id.
 * Refuses versions above vmsd->version_id or below minimum_version_id,
 * out-of-range values and unknown subsections, naming the device and the
 * field ("serial: field 'fcr': value 300 out of range").
 */
bool vmstate_load(QEMUFile *f, const VMStateDescription *vmsd, void *opaque, int version_id,
                  GError **errp);

#endif
