/*
 * Helpers for migration tests: capabilities and parameters, starting a
 * migration, waiting for its end or for passes, destination addresses,
 * and a page-by-page comparison of two VMs' memory.
 */
#ifndef TESTS_QTEST_MIGRATION_HELPERS_H
#define TESTS_QTEST_MIGRATION_HELPERS_H

#include <string.h>

#include "libferry.h"

static inline void mig_set_cap(FerryVM *vm, const char *cap, bool on)
{
    g_autoptr(JsonNode) r = ferry_qmp_ok(vm, "{'execute': 'migrate-set-capabilities', "
                                         "'arguments': {'capabilities': [{'capability': '%s', "
                                         "'state': %s}]}}", cap, on ? "true" : "false");
}

static inline void mig_set_param_int(FerryVM *vm, const char *name, gint64 value)
{
    g_autoptr(JsonNode) r = ferry_qmp_ok(vm, "{'execute': 'migrate-set-parameters', "
                                         "'arguments': {'%s': %" G_GINT64_FORMAT "}}", name,
                                         value);
}

static inline void mig_set_param_str(FerryVM *vm, const char *name, const char *value)
{
    g_autoptr(JsonNode) r = ferry_qmp_ok(vm, "{'execute': 'migrate-set-parameters', "
                                         "'arguments': {'%s': '%s'}}", name, value);
}

static inline JsonNode *mig_query(FerryVM *vm)
{
    return ferry_qmp_ok(vm, "{'execute': 'query-migrate'}");
}

static inline char *mig_status(FerryVM *vm)
{
    g_autoptr(JsonNode) q = mig_query(vm);
    return ferry_json_has(q, "status") ? g_strdup(ferry_json_get_str(q, "status"))
                                       : g_strdup("none");
}

typedef struct MigWait {
    FerryVM *vm;
    const char *const *statuses;
    char *found;
} MigWait;

static inline bool mig_status_in(void *opaque)
{
    MigWait *w = opaque;
    g_autofree char *st = mig_status(w->vm);
    for (const char *const *s = w->statuses; *s; s++) {
        if (strcmp(st, *s) == 0) {
            w->found = g_strdup(st);
            return true;
        }
    }
    return false;
}

/* Wait until query-migrate reports one of @statuses; returns it. */
static inline char *mig_wait_status(FerryVM *vm, const char *const *statuses, int timeout_ms)
{
    MigWait w = { vm, statuses, NULL };
    if (!ferry_wait_until(mig_status_in, &w, timeout_ms)) {
        g_autoptr(JsonNode) q = mig_query(vm);
        g_autofree char *text = ferry_json_to_string(q);
        g_error("migration did not reach the expected status: %s", text);
    }
    return w.found;
}

/* Wait for the outgoing migration to end; returns completed/failed/cancelled. */
static inline char *mig_wait_end(FerryVM *vm, int timeout_ms)
{
    static const char *const ends[] = { "completed", "failed", "cancelled", NULL };
    return mig_wait_status(vm, ends, timeout_ms);
}

typedef struct MigPassWait {
    FerryVM *vm;
    gint64 passes;
} MigPassWait;

static inline bool mig_passes_reached(void *opaque)
{
    MigPassWait *w = opaque;
    g_autoptr(JsonNode) q = mig_query(w->vm);
    return ferry_json_has(q, "ram.dirty-sync-count") &&
           ferry_json_get_int(q, "ram.dirty-sync-count") >= w->passes;
}

/* Wait until the source has synced its dirty log @passes times. */
static inline void mig_wait_passes(FerryVM *vm, gint64 passes, int timeout_ms)
{
    MigPassWait w = { vm, passes };
    g_assert_true(ferry_wait_until(mig_passes_reached, &w, timeout_ms));
}

static inline void mig_migrate(FerryVM *src, const char *uri)
{
    g_autoptr(JsonNode) r = ferry_qmp_ok(src, "{'execute': 'migrate', 'arguments': "
                                         "{'uri': '%s'}}", uri);
}

/* A destination listening on tcp port 0; returns the URI the source should use. */
static inline char *mig_dest_tcp_uri(FerryVM *dst)
{
    g_autoptr(JsonNode) q = mig_query(dst);
    const char *host = ferry_json_get_str(q, "socket-address.0.host");
    const char *port = ferry_json_get_str(q, "socket-address.0.port");
    return g_strdup_printf("tcp:%s:%s", host, port);
}

/* Compare guest RAM [start, end) of two stopped VMs, 1 MiB at a time. */
static inline void mig_assert_same_memory(FerryVM *a, FerryVM *b, uint64_t start, uint64_t end)
{
    const size_t chunk = 1 << 20;
    g_autofree guint8 *ba = g_malloc(chunk);
    g_autofree guint8 *bb = g_malloc(chunk);
    for (uint64_t addr = start; addr < end; addr += chunk) {
        size_t len = MIN(chunk, end - addr);
        ferry_memread(a, addr, ba, len);
        ferry_memread(b, addr, bb, len);
        if (memcmp(ba, bb, len) != 0) {
            for (size_t off = 0; off < len; off += 4096) {
                if (memcmp(ba + off, bb + off, MIN(4096, len - off)) != 0) {
                    g_error("guest page at 0x%" G_GINT64_MODIFIER "x differs between source "
                            "and destination", addr + off);
                }
            }
        }
    }
}

/*
 * Guest RAM [addr, addr + len) through qtest b64read, 512 KiB a request
 * (a reply stays under the 1 MiB a chardev buffers): many times faster
 * than ferry_memread()'s hex for whole-RAM reads.
 */
static inline void mig_memread_b64(FerryVM *vm, uint64_t addr, void *buf, size_t len)
{
    const size_t chunk = 512 << 10;
    guint8 *out = buf;
    while (len > 0) {
        size_t n = MIN(chunk, len);
        g_autofree char *reply = ferry_qtest(vm, "b64read 0x%" G_GINT64_MODIFIER "x 0x%zx",
                                             addr, n);
        gsize dlen = 0;
        g_autofree guchar *data = g_base64_decode(reply, &dlen);
        if (dlen != n) {
            g_error("qtest b64read of %zu bytes at 0x%" G_GINT64_MODIFIER "x returned %zu",
                    n, addr, (size_t)dlen);
        }
        memcpy(out, data, n);
        out += n;
        addr += n;
        len -= n;
    }
}

/* mig_assert_same_memory() through mig_memread_b64(). */
static inline void mig_assert_same_memory_b64(FerryVM *a, FerryVM *b, uint64_t start,
                                              uint64_t end)
{
    const size_t chunk = 4 << 20;
    g_autofree guint8 *ba = g_malloc(chunk);
    g_autofree guint8 *bb = g_malloc(chunk);
    for (uint64_t addr = start; addr < end; addr += chunk) {
        size_t len = MIN(chunk, end - addr);
        mig_memread_b64(a, addr, ba, len);
        mig_memread_b64(b, addr, bb, len);
        if (memcmp(ba, bb, len) != 0) {
            for (size_t off = 0; off < len; off += 4096) {
                if (memcmp(ba + off, bb + off, MIN(4096, len - off)) != 0) {
                    g_error("guest page at 0x%" G_GINT64_MODIFIER "x differs between source "
                            "and destination", addr + off);
                }
            }
        }
    }
}


/* ---- The boot-sector guest and the run state, as migration tests use them ---- */

#define BOOTSECT_RAM_MB 128

static inline FerryVM *start_bootsect_vm(const char *extra)
{
    const char *img = ferry_guest_path("bootsect");
    g_assert_nonnull(img);
    return ferry_vm_start("-m %d -drive file=%s,format=raw %s", BOOTSECT_RAM_MB, img,
                          extra ? extra : "");
}

/* The guest finishes one more pass over its memory (one more 'B'). */
static inline void assert_bootsect_runs(FerryVM *vm)
{
    unsigned passes = ferry_serial_count(vm, "B");
    ferry_serial_wait_count(vm, "B", passes + 1, 30000);
}

static inline void assert_runstate(FerryVM *vm, const char *want)
{
    g_autoptr(JsonNode) st = ferry_qmp_ok(vm, "{'execute': 'query-status'}");
    g_assert_cmpstr(ferry_json_get_str(st, "status"), ==, want);
}

/*
 * Hold the migration live: a switchover bandwidth of 1 byte/s leaves no
 * room for even one dirty page in the downtime, while pages still flow at
 * full speed. A pass that finds nothing dirty still completes, so a test
 * that must stay live needs a guest with work.
 */
static inline void mig_hold_live(FerryVM *src)
{
    mig_set_param_int(src, "downtime-limit", 1);
    mig_set_param_int(src, "avail-switchover-bandwidth", 1);
    mig_set_param_int(src, "max-bandwidth", 1LL << 30);
}

static inline void mig_let_converge(FerryVM *src)
{
    mig_set_param_int(src, "avail-switchover-bandwidth", 0);
    mig_set_param_int(src, "downtime-limit", 10000);
}

#endif
