/*
 * vmstate_save()/vmstate_load() through the real QEMUFile: the exact
 * big-endian wire form of every field type, nested structs and arrays,
 * variable arrays and their bounds, ranges and booleans, versions (fields
 * newer than the stream, streams newer or older than the description),
 * subsections (present, absent, unknown, nested, versioned), hooks and
 * their errors, equality fields, and hostile input: every truncation of a
 * stream and random corruption end in an error or a valid load, never a
 * crash or a write outside the device.
 */
#include <string.h>

#include <glib.h>

#include "migration/vmstate.h"
#include "tests/unit/migration/vmstate-stream.h"

/* ---- A device with one field of every kind ---- */

typedef struct Point {
    uint16_t x;
    uint32_t y;
} Point;

typedef struct Pair {
    uint32_t key;
    uint64_t value;
} Pair;

#define MAX_PAIRS 4

typedef struct Blob {
    uint8_t len;
    uint8_t data[8];
} Blob;

typedef struct Everything {
    bool flag;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    int32_t i32;
    int64_t i64;
    uint8_t buf[3];
    uint32_t a32[2];
    uint64_t a64[2];
    Point pt;
    Point pts[2];
    uint32_t npairs;
    Pair pairs[MAX_PAIRS];
    Blob blob;
    uint32_t equal;
    uint8_t canary[16];     /* never described: loading must not touch it */
} Everything;

static const VMStateDescription vmstate_point = {
    .name = "point",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT16(x, Point),
        VMSTATE_UINT32(y, Point),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_pair = {
    .name = "pair",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(key, Pair),
        VMSTATE_UINT64(value, Pair),
        VMSTATE_END_OF_LIST()
    },
};

/* A custom field: u8 length (at most 8) then that many bytes. */
static void blob_put(QEMUFile *f, const void *field, size_t size)
{
    const Blob *b = field;
    qemu_put_byte(f, b->len);
    qemu_put_buffer(f, b->data, b->len);
}

static bool blob_get(QEMUFile *f, void *field, size_t size, GError **errp)
{
    Blob *b = field;
    uint8_t len = qemu_get_byte(f);
    if (qemu_file_get_error(f)) {
        return false;
    }
    if (len > sizeof(b->data)) {
        g_set_error(errp, VMSTATE_ERROR, 0, "blob of %u bytes", len);
        return false;
    }
    qemu_get_buffer(f, b->data, len);
    b->len = len;
    return true;
}

static const VMStateInfo blob_info = {
    .name = "blob",
    .get = blob_get,
    .put = blob_put,
};

static const VMStateDescription vmstate_everything = {
    .name = "everything",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_BOOL(flag, Everything),
        VMSTATE_UINT8(u8, Everything),
        VMSTATE_UINT16(u16, Everything),
        VMSTATE_UINT32(u32, Everything),
        VMSTATE_UINT64(u64, Everything),
        VMSTATE_INT32(i32, Everything),
        VMSTATE_INT64(i64, Everything),
        VMSTATE_BUFFER(buf, Everything),
        VMSTATE_UINT32_ARRAY(a32, Everything, 2),
        VMSTATE_UINT64_ARRAY(a64, Everything, 2),
        VMSTATE_STRUCT(pt, Everything, vmstate_point, Point),
        VMSTATE_STRUCT_ARRAY(pts, Everything, 2, vmstate_point, Point),
        VMSTATE_UINT32(npairs, Everything),
        VMSTATE_STRUCT_VARRAY_UINT32(pairs, Everything, npairs, MAX_PAIRS, vmstate_pair, Pair),
        VMSTATE_CUSTOM(blob, Everything, blob_info),
        VMSTATE_EQUAL(equal, Everything),
        VMSTATE_END_OF_LIST()
    },
};

static void everything_fill(Everything *e)
{
    memset(e, 0, sizeof(*e));
    e->flag = true;
    e->u8 = 0x81;
    e->u16 = 0x1234;
    e->u32 = 0xdeadbeef;
    e->u64 = 0x0102030405060708ULL;
    e->i32 = -2;
    e->i64 = -3;
    memcpy(e->buf, "abc", 3);
    e->a32[0] = 1;
    e->a32[1] = 2;
    e->a64[0] = 3;
    e->a64[1] = 4;
    e->pt = (Point) { 5, 6 };
    e->pts[0] = (Point) { 7, 8 };
    e->pts[1] = (Point) { 9, 10 };
    e->npairs = 2;
    e->pairs[0] = (Pair) { 11, 12 };
    e->pairs[1] = (Pair) { 13, 14 };
    e->blob.len = 2;
    memcpy(e->blob.data, "xy", 2);
    e->equal = 77;
    memset(e->canary, 0xcc, sizeof(e->canary));
}

/* A fresh destination: everything zero except the canary and the equal field. */
static void everything_blank(Everything *e)
{
    memset(e, 0, sizeof(*e));
    e->equal = 77;
    memset(e->canary, 0xcc, sizeof(e->canary));
}

static const uint8_t everything_wire[] = {
    0x01,                                           /* flag */
    0x81,                                           /* u8 */
    0x12, 0x34,                                     /* u16 */
    0xde, 0xad, 0xbe, 0xef,                         /* u32 */
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* u64 */
    0xff, 0xff, 0xff, 0xfe,                         /* i32 */
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfd, /* i64 */
    'a', 'b', 'c',                                  /* buf */
    0, 0, 0, 1, 0, 0, 0, 2,                         /* a32 */
    0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 4, /* a64 */
    0, 5, 0, 0, 0, 6,                               /* pt */
    0, 7, 0, 0, 0, 8, 0, 9, 0, 0, 0, 10,            /* pts */
    0, 0, 0, 2,                                     /* npairs */
    0, 0, 0, 11, 0, 0, 0, 0, 0, 0, 0, 12,           /* pairs[0] */
    0, 0, 0, 13, 0, 0, 0, 0, 0, 0, 0, 14,           /* pairs[1] */
    2, 'x', 'y',                                    /* blob */
    0, 0, 0, 77,                                    /* equal */
};

static void assert_canary(const Everything *e)
{
    for (unsigned i = 0; i < sizeof(e->canary); i++) {
        g_assert_cmphex(e->canary[i], ==, 0xcc);
    }
}

/* Load @len bytes of @data into a blank Everything; the error message or NULL. */
static char *everything_load(const uint8_t *data, size_t len, Everything *out)
{
    g_autoptr(GError) err = NULL;

    everything_blank(out);
    bool ok = vms_stream_load(data, len, &vmstate_everything, out, 1, NULL, &err);
    assert_canary(out);
    g_assert_true(ok == (err == NULL));
    return ok ? NULL : g_strdup(err->message);
}

static void test_wire_form(void)
{
    g_autoptr(GError) err = NULL;
    Everything src, dst;

    everything_fill(&src);
    g_autoptr(GByteArray) bytes = vms_stream_save(&vmstate_everything, &src, &err);
    g_assert_no_error(err);
    g_assert_cmpmem(bytes->data, bytes->len, everything_wire, sizeof(everything_wire));

    g_assert_null(everything_load(bytes->data, bytes->len, &dst));
    g_assert_true(memcmp(&src, &dst, sizeof(src)) == 0);
}

static void test_bool_refused(void)
{
    uint8_t bad[sizeof(everything_wire)];
    Everything dst;

    memcpy(bad, everything_wire, sizeof(bad));
    bad[0] = 2;
    g_autofree char *msg = everything_load(bad, sizeof(bad), &dst);
    g_assert_cmpstr(msg, ==, "everything: field 'flag': value 2 is not a boolean (0 or 1)");
}

static void test_equal_refused(void)
{
    uint8_t bad[sizeof(everything_wire)];
    Everything dst;

    memcpy(bad, everything_wire, sizeof(bad));
    bad[sizeof(bad) - 1] = 78;
    g_autofree char *msg = everything_load(bad, sizeof(bad), &dst);
    g_assert_cmpstr(msg, ==, "everything: field 'equal': stream has 78, this side 77");
}

static void test_custom_refused(void)
{
    uint8_t bad[sizeof(everything_wire)];
    Everything dst;

    memcpy(bad, everything_wire, sizeof(bad));
    bad[sizeof(bad) - 7] = 9;   /* blob length */
    g_autofree char *msg = everything_load(bad, sizeof(bad), &dst);
    g_assert_cmpstr(msg, ==, "everything: field 'blob': blob of 9 bytes");
}

/* npairs sits at this offset of everything_wire. */
#define NPAIRS_OFF 73

static void test_varray_load_bound(void)
{
    uint8_t bad[sizeof(everything_wire)];
    Everything dst;

    g_assert_cmpuint(everything_wire[NPAIRS_OFF + 3], ==, 2);
    memcpy(bad, everything_wire, sizeof(bad));
    bad[NPAIRS_OFF + 3] = MAX_PAIRS + 1;
    g_autofree char *msg = everything_load(bad, sizeof(bad), &dst);
    g_assert_cmpstr(msg, ==, "everything: field 'pairs': count 5 exceeds the maximum 4");
    /* Refused before any element was stored. */
    g_assert_cmpuint(dst.pairs[0].key, ==, 0);

    /* A huge count is refused the same way, not read element by element. */
    bad[NPAIRS_OFF] = 0xff;
    g_autofree char *msg2 = everything_load(bad, sizeof(bad), &dst);
    g_assert_nonnull(strstr(msg2, "exceeds the maximum 4"));
}

static void test_varray_save_bound(void)
{
    g_autoptr(GError) err = NULL;
    Everything src;

    everything_fill(&src);
    src.npairs = MAX_PAIRS + 1;
    g_autoptr(GByteArray) bytes = vms_stream_save(&vmstate_everything, &src, &err);
    g_assert_null(bytes);
    g_assert_cmpstr(err->message, ==, "everything: field 'pairs': count 5 exceeds the maximum 4");
}

/* Nothing of a refused save reaches the stream. */
static void test_save_refused_writes_nothing(void)
{
    g_autoptr(GError) err = NULL;
    Everything src;

    everything_fill(&src);
    src.npairs = 100;
    g_autoptr(GByteArray) bytes = vms_stream_save_any(&vmstate_everything, &src, &err);
    g_assert_nonnull(err);
    g_assert_cmpuint(bytes->len, ==, 0);
}

/* Every prefix of a valid stream: an error naming the device, never a crash. */
static void test_truncated(void)
{
    for (size_t len = 0; len < sizeof(everything_wire); len++) {
        Everything dst;
        g_autofree char *msg = everything_load(everything_wire, len, &dst);
        g_assert_nonnull(msg);
        g_assert_true(g_str_has_prefix(msg, "everything: "));
    }
}

/* Random damage: any outcome but a crash or a write outside the description. */
static void test_corrupt(void)
{
    GRand *rand = g_rand_new_with_seed(42);

    for (int round = 0; round < 3000; round++) {
        uint8_t bad[sizeof(everything_wire)];
        memcpy(bad, everything_wire, sizeof(bad));
        int flips = g_rand_int_range(rand, 1, 4);
        for (int i = 0; i < flips; i++) {
            bad[g_rand_int_range(rand, 0, sizeof(bad))] = (uint8_t)g_rand_int(rand);
        }
        size_t len = g_rand_boolean(rand) ? sizeof(bad) : (size_t)g_rand_int_range(rand, 0,
                                                                                   sizeof(bad));
        Everything dst;
        g_autofree char *msg = everything_load(bad, len, &dst);
        g_assert_cmpuint(dst.npairs <= MAX_PAIRS || msg != NULL, ==, TRUE);
    }
    g_rand_free(rand);
}

/* ---- Ranges ---- */

typedef struct Ranged {
    uint8_t fcr;
    uint16_t w;
    uint32_t d;
    int32_t s;
} Ranged;

static const VMStateDescription vmstate_ranged = {
    .name = "serial",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT8_RANGE(fcr, Ranged, 0, 0xc9),
        VMSTATE_UINT16_RANGE(w, Ranged, 10, 300),
        VMSTATE_UINT32_RANGE(d, Ranged, 1, 16),
        { .name = "s", .type = VMS_INT32, .offset = offsetof(Ranged, s), .size = 4,
          .has_range = true, .range_min = (uint64_t)-5, .range_max = 5 },
        VMSTATE_END_OF_LIST()
    },
};

static char *ranged_load(const uint8_t *data, size_t len, Ranged *out)
{
    g_autoptr(GError) err = NULL;
    memset(out, 0, sizeof(*out));
    if (vms_stream_load(data, len, &vmstate_ranged, out, 1, NULL, &err)) {
        return NULL;
    }
    return g_strdup(err->message);
}

static void test_ranges(void)
{
    Ranged r;
    const uint8_t ok[] = { 0xc9, 0x01, 0x2c, 0, 0, 0, 16, 0xff, 0xff, 0xff, 0xfb };
    g_assert_null(ranged_load(ok, sizeof(ok), &r));
    g_assert_cmpuint(r.fcr, ==, 0xc9);
    g_assert_cmpuint(r.w, ==, 300);
    g_assert_cmpuint(r.d, ==, 16);
    g_assert_cmpint(r.s, ==, -5);

    const uint8_t bad_fcr[] = { 0xca, 0x01, 0x2c, 0, 0, 0, 16, 0, 0, 0, 0 };
    g_autofree char *m1 = ranged_load(bad_fcr, sizeof(bad_fcr), &r);
    g_assert_cmpstr(m1, ==, "serial: field 'fcr': value 202 out of range (0 to 201)");
    g_assert_cmpuint(r.fcr, ==, 0);     /* refused values are not stored */

    const uint8_t bad_w[] = { 0, 0x01, 0x2d, 0, 0, 0, 16, 0, 0, 0, 0 };
    g_autofree char *m2 = ranged_load(bad_w, sizeof(bad_w), &r);
    g_assert_cmpstr(m2, ==, "serial: field 'w': value 301 out of range (10 to 300)");

    const uint8_t bad_d[] = { 0, 0x00, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0 };
    g_autofree char *m3 = ranged_load(bad_d, sizeof(bad_d), &r);
    g_assert_cmpstr(m3, ==, "serial: field 'd': value 0 out of range (1 to 16)");

    const uint8_t bad_s[] = { 0, 0x00, 0x0a, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfa };
    g_autofree char *m4 = ranged_load(bad_s, sizeof(bad_s), &r);
    g_assert_cmpstr(m4, ==, "serial: field 's': value -6 out of range (-5 to 5)");

    const uint8_t big_s[] = { 0, 0x00, 0x0a, 0, 0, 0, 1, 0, 0, 0, 6 };
    g_autofree char *m5 = ranged_load(big_s, sizeof(big_s), &r);
    g_assert_cmpstr(m5, ==, "serial: field 's': value 6 out of range (-5 to 5)");
}

/* ---- Versions ---- */

typedef struct Versioned {
    uint32_t old;
    uint32_t added_v2;
    uint64_t added_v3;
} Versioned;

static const VMStateDescription vmstate_versioned = {
    .name = "dev",
    .version_id = 3,
    .minimum_version_id = 2,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(old, Versioned),
        VMSTATE_UINT32_V(added_v2, Versioned, 2),
        VMSTATE_UINT64_V(added_v3, Versioned, 3),
        VMSTATE_END_OF_LIST()
    },
};

/* Version 2 of the same device, as an older build describes it. */
static const VMStateDescription vmstate_versioned_v2 = {
    .name = "dev",
    .version_id = 2,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(old, Versioned),
        VMSTATE_UINT32_V(added_v2, Versioned, 2),
        VMSTATE_UINT64_V(added_v3, Versioned, 3),
        VMSTATE_END_OF_LIST()
    },
};

static void test_versions(void)
{
    g_autoptr(GError) err = NULL;
    Versioned src = { 1, 2, 3 }, dst;

    /* Current version: everything travels. */
    g_autoptr(GByteArray) v3 = vms_stream_save(&vmstate_versioned, &src, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(v3->len, ==, 16);
    dst = (Versioned) { 0, 0, 0 };
    g_assert_true(vms_stream_load(v3->data, v3->len, &vmstate_versioned, &dst, 3, NULL, &err));
    g_assert_cmpuint(dst.added_v3, ==, 3);

    /* An older source: the v3 field is absent and keeps this side's value. */
    g_autoptr(GByteArray) v2 = vms_stream_save(&vmstate_versioned_v2, &src, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(v2->len, ==, 8);
    dst = (Versioned) { 0, 0, 99 };
    size_t unread;
    g_assert_true(vms_stream_load(v2->data, v2->len, &vmstate_versioned, &dst, 2, &unread,
                                  &err));
    g_assert_cmpuint(unread, ==, 0);
    g_assert_cmpuint(dst.old, ==, 1);
    g_assert_cmpuint(dst.added_v2, ==, 2);
    g_assert_cmpuint(dst.added_v3, ==, 99);

    /* A newer stream than this side knows. */
    g_assert_false(vms_stream_load(v3->data, v3->len, &vmstate_versioned_v2, &dst, 3, NULL,
                                   &err));
    g_assert_cmpstr(err->message, ==, "dev: state of version 3 in the stream, this side loads "
                    "versions 1 to 2");
    g_clear_error(&err);

    /* Older than the minimum. */
    g_assert_false(vms_stream_load(v2->data, v2->len, &vmstate_versioned, &dst, 1, NULL, &err));
    g_assert_cmpstr(err->message, ==, "dev: state of version 1 in the stream, this side loads "
                    "versions 2 to 3");
}

/* ---- Subsections ---- */

typedef struct WithSubs {
    uint32_t base;
    bool has_extra;
    uint16_t extra;
    bool has_more;
    uint8_t more;
    bool has_inner;
    uint32_t inner;
    int post_loads;
    int sub_post_loads;
    int pre_saves;
} WithSubs;

static bool extra_needed(void *opaque)
{
    return ((WithSubs *)opaque)->has_extra;
}

static bool more_needed(void *opaque)
{
    return ((WithSubs *)opaque)->has_more;
}

static bool inner_needed(void *opaque)
{
    return ((WithSubs *)opaque)->has_inner;
}

static bool extra_post_load(void *opaque, int version_id, GError **errp)
{
    WithSubs *w = opaque;
    w->has_extra = true;
    w->sub_post_loads++;
    return true;
}

static bool withsubs_post_load(void *opaque, int version_id, GError **errp)
{
    WithSubs *w = opaque;
    w->post_loads++;
    if (w->base == 666) {
        g_set_error(errp, VMSTATE_ERROR, 0, "base 666 is cursed");
        return false;
    }
    return true;
}

static bool withsubs_pre_save(void *opaque, GError **errp)
{
    WithSubs *w = opaque;
    w->pre_saves++;
    if (w->base == 13) {
        return false;       /* no message: the core supplies one */
    }
    return true;
}

static const VMStateDescription vmstate_sub_inner = {
    .name = "dev/extra/inner",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = inner_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(inner, WithSubs),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_sub_extra = {
    .name = "dev/extra",
    .version_id = 2,
    .minimum_version_id = 1,
    .needed = extra_needed,
    .post_load = extra_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT16(extra, WithSubs),
        VMSTATE_END_OF_LIST()
    },
    .subsections = (const VMStateDescription *const[]) {
        &vmstate_sub_inner,
        NULL
    },
};

static const VMStateDescription vmstate_sub_more = {
    .name = "dev/more",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = more_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT8(more, WithSubs),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_withsubs = {
    .name = "dev",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = withsubs_pre_save,
    .post_load = withsubs_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(base, WithSubs),
        VMSTATE_END_OF_LIST()
    },
    .subsections = (const VMStateDescription *const[]) {
        &vmstate_sub_extra,
        &vmstate_sub_more,
        NULL
    },
};

/* The same device as an older build sees it: no subsections at all. */
static const VMStateDescription vmstate_withsubs_old = {
    .name = "dev",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(base, WithSubs),
        VMSTATE_END_OF_LIST()
    },
};

static void test_subsection_absent(void)
{
    g_autoptr(GError) err = NULL;
    WithSubs src = { .base = 5 }, dst = { .extra = 1234 };

    g_autoptr(GByteArray) b = vms_stream_save(&vmstate_withsubs, &src, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(src.pre_saves, ==, 1);
    g_assert_cmpuint(b->len, ==, 4);        /* no subsection on the wire */

    /* Followed by what the stream has next (a section footer): left unread. */
    g_byte_array_append(b, (const guint8 *)"\x7e", 1);
    size_t unread;
    g_assert_true(vms_stream_load(b->data, b->len, &vmstate_withsubs, &dst, 1, &unread, &err));
    g_assert_cmpuint(unread, ==, 1);
    g_assert_cmpuint(dst.base, ==, 5);
    g_assert_cmpuint(dst.extra, ==, 1234);  /* the default stays */
    g_assert_cmpint(dst.post_loads, ==, 1);
    g_assert_cmpint(dst.sub_post_loads, ==, 0);

    /* An older destination takes it. */
    WithSubs old = { 0 };
    g_assert_true(vms_stream_load(b->data, b->len, &vmstate_withsubs_old, &old, 1, NULL, &err));
    g_assert_cmpuint(old.base, ==, 5);
}

static void test_subsection_present(void)
{
    g_autoptr(GError) err = NULL;
    WithSubs src = { .base = 5, .has_extra = true, .extra = 0xabcd, .has_more = true,
                     .more = 9, .has_inner = true, .inner = 0x01020304 };
    WithSubs dst = { 0 };

    g_autoptr(GByteArray) b = vms_stream_save(&vmstate_withsubs, &src, &err);
    g_assert_no_error(err);
    static const uint8_t wire[] = {
        0, 0, 0, 5,
        VMS_SUBSECTION_MARK, 9, 'd', 'e', 'v', '/', 'e', 'x', 't', 'r', 'a', 0, 0, 0, 2,
        0xab, 0xcd,
        VMS_SUBSECTION_MARK, 15, 'd', 'e', 'v', '/', 'e', 'x', 't', 'r', 'a', '/', 'i', 'n',
        'n', 'e', 'r', 0, 0, 0, 1,
        1, 2, 3, 4,
        VMS_SUBSECTION_MARK, 8, 'd', 'e', 'v', '/', 'm', 'o', 'r', 'e', 0, 0, 0, 1,
        9,
    };
    g_assert_cmpmem(b->data, b->len, wire, sizeof(wire));

    g_assert_true(vms_stream_load(b->data, b->len, &vmstate_withsubs, &dst, 1, NULL, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(dst.extra, ==, 0xabcd);
    g_assert_cmpuint(dst.inner, ==, 0x01020304);
    g_assert_cmpuint(dst.more, ==, 9);
    g_assert_true(dst.has_extra);
    g_assert_cmpint(dst.sub_post_loads, ==, 1);
    g_assert_cmpint(dst.post_loads, ==, 1);

    /* Only the second one. */
    src.has_extra = false;
    src.has_inner = false;
    g_autoptr(GByteArray) b2 = vms_stream_save(&vmstate_withsubs, &src, &err);
    g_assert_no_error(err);
    WithSubs dst2 = { 0 };
    g_assert_true(vms_stream_load(b2->data, b2->len, &vmstate_withsubs, &dst2, 1, NULL, &err));
    g_assert_cmpuint(dst2.more, ==, 9);
    g_assert_cmpint(dst2.sub_post_loads, ==, 0);

    /* An older destination that does not know them refuses by name. */
    WithSubs old = { 0 };
    g_assert_false(vms_stream_load(b->data, b->len, &vmstate_withsubs_old, &old, 1, NULL, &err));
    g_assert_cmpstr(err->message, ==, "unknown subsection 'dev/extra' in 'dev'");
}

static void test_subsection_unknown_and_versions(void)
{
    g_autoptr(GError) err = NULL;
    WithSubs dst = { 0 };

    static const uint8_t unknown[] = {
        0, 0, 0, 5, VMS_SUBSECTION_MARK, 5, 'd', 'e', 'v', '/', 'x', 0, 0, 0, 1, 7,
    };
    g_assert_false(vms_stream_load(unknown, sizeof(unknown), &vmstate_withsubs, &dst, 1, NULL,
                                   &err));
    g_assert_cmpstr(err->message, ==, "unknown subsection 'dev/x' in 'dev'");
    g_assert_cmpint(dst.post_loads, ==, 0);     /* refused before post_load */
    g_clear_error(&err);

    /* After a known subsection, an unknown nested one still fails. */
    static const uint8_t unknown2[] = {
        0, 0, 0, 5,
        VMS_SUBSECTION_MARK, 9, 'd', 'e', 'v', '/', 'e', 'x', 't', 'r', 'a', 0, 0, 0, 1,
        0, 1,
        VMS_SUBSECTION_MARK, 3, 'z', 'z', 'z', 0, 0, 0, 1,
    };
    g_assert_false(vms_stream_load(unknown2, sizeof(unknown2), &vmstate_withsubs, &dst, 1,
                                   NULL, &err));
    g_assert_cmpstr(err->message, ==, "unknown subsection 'zzz' in 'dev'");
    g_clear_error(&err);

    /* A subsection newer than this side. */
    static const uint8_t newer[] = {
        0, 0, 0, 5,
        VMS_SUBSECTION_MARK, 9, 'd', 'e', 'v', '/', 'e', 'x', 't', 'r', 'a', 0, 0, 0, 3,
        0, 1,
    };
    g_assert_false(vms_stream_load(newer, sizeof(newer), &vmstate_withsubs, &dst, 1, NULL,
                                   &err));
    g_assert_cmpstr(err->message, ==, "dev: subsection 'dev/extra' of version 3 in the stream, "
                    "this side loads versions 1 to 2");
    g_clear_error(&err);

    /* Every prefix of a stream with subsections. */
    WithSubs src = { .base = 5, .has_extra = true, .extra = 1, .has_more = true, .more = 2,
                     .has_inner = true, .inner = 3 };
    g_autoptr(GByteArray) b = vms_stream_save(&vmstate_withsubs, &src, &err);
    g_assert_no_error(err);
    for (size_t len = 0; len < b->len; len++) {
        WithSubs d = { 0 };
        bool ok = vms_stream_load(b->data, len, &vmstate_withsubs, &d, 1, NULL, &err);
        /* Cut exactly between two subsections is a shorter valid stream. */
        bool boundary = len == 4 || len == 21 || len == 46;
        g_assert_true(ok == boundary);
        if (!ok) {
            g_assert_true(g_str_has_prefix(err->message, "dev: ") ||
                          g_str_has_prefix(err->message, "unknown subsection"));
        }
        g_clear_error(&err);
    }
}

static void test_hooks(void)
{
    g_autoptr(GError) err = NULL;
    WithSubs src = { .base = 13 };

    g_assert_null(vms_stream_save(&vmstate_withsubs, &src, &err));
    g_assert_cmpstr(err->message, ==, "dev: pre_save failed");
    g_clear_error(&err);

    static const uint8_t cursed[] = { 0, 0, 0x02, 0x9a };
    WithSubs dst = { 0 };
    g_assert_false(vms_stream_load(cursed, sizeof(cursed), &vmstate_withsubs, &dst, 1, NULL,
                                   &err));
    g_assert_cmpstr(err->message, ==, "dev: base 666 is cursed");
}

/* ---- Descriptions the core refuses ---- */

typedef struct Outer {
    WithSubs inner;
} Outer;

static const VMStateDescription vmstate_outer = {
    .name = "outer",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT(inner, Outer, vmstate_withsubs, WithSubs),
        VMSTATE_END_OF_LIST()
    },
};

static void test_nested_subsections_refused(void)
{
    g_autoptr(GError) err = NULL;
    Outer o = { { .base = 1 } };

    g_assert_null(vms_stream_save(&vmstate_outer, &o, &err));
    g_assert_cmpstr(err->message, ==, "outer: field 'inner': nested description 'dev' has "
                    "subsections, which only a top-level description may have");
    g_clear_error(&err);
    static const uint8_t b[] = { 0, 0, 0, 1 };
    g_assert_false(vms_stream_load(b, sizeof(b), &vmstate_outer, &o, 1, NULL, &err));
    g_assert_nonnull(strstr(err->message, "nested description 'dev' has subsections"));
}

static const VMStateDescription vmstate_point_ranged = {
    .name = "point-ranged",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT16_RANGE(x, Point, 0, 100),
        VMSTATE_UINT32(y, Point),
        VMSTATE_END_OF_LIST()
    },
};
static const VMStateDescription vmstate_pts = {
    .name = "pts-only",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT_ARRAY(pts, Everything, 2, vmstate_point_ranged, Point),
        VMSTATE_END_OF_LIST()
    },
};

/* Errors name the path to a nested field. */
static void test_nested_error_path(void)
{
    uint8_t bad[sizeof(everything_wire)];
    Everything dst;
    g_autoptr(GError) err = NULL;

    memset(bad, 0, sizeof(bad));
    bad[6] = 0x01;      /* pts[1].x = 256 */
    everything_blank(&dst);
    g_assert_false(vms_stream_load(bad, 12, &vmstate_pts, &dst, 1, NULL, &err));
    g_assert_cmpstr(err->message, ==, "pts-only: field 'pts[1].x': value 256 out of range "
                    "(0 to 100)");
    g_clear_error(&err);
    bad[6] = 0;
    g_assert_false(vms_stream_load(bad, 9, &vmstate_pts, &dst, 1, NULL, &err));
    g_assert_true(g_str_has_prefix(err->message, "pts-only: field 'pts[1].y': "));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vmstate/wire-form", test_wire_form);
    g_test_add_func("/vmstate/bool-refused", test_bool_refused);
    g_test_add_func("/vmstate/equal-refused", test_equal_refused);
    g_test_add_func("/vmstate/custom-refused", test_custom_refused);
    g_test_add_func("/vmstate/varray-load-bound", test_varray_load_bound);
    g_test_add_func("/vmstate/varray-save-bound", test_varray_save_bound);
    g_test_add_func("/vmstate/save-refused-writes-nothing", test_save_refused_writes_nothing);
    g_test_add_func("/vmstate/truncated", test_truncated);
    g_test_add_func("/vmstate/corrupt", test_corrupt);
    g_test_add_func("/vmstate/ranges", test_ranges);
    g_test_add_func("/vmstate/versions", test_versions);
    g_test_add_func("/vmstate/subsection-absent", test_subsection_absent);
    g_test_add_func("/vmstate/subsection-present", test_subsection_present);
    g_test_add_func("/vmstate/subsection-unknown-versions", test_subsection_unknown_and_versions);
    g_test_add_func("/vmstate/hooks", test_hooks);
    g_test_add_func("/vmstate/nested-subsections-refused", test_nested_subsections_refused);
    g_test_add_func("/vmstate/nested-error-path", test_nested_error_path);
    return g_test_run();
}
