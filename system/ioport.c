/*
 * Port I/O and MMIO dispatch: a small sorted table searched by binary
 * search, since a PC has a few dozen ranges at most.
 */
#include <glib.h>

#include "system/ioport.h"

typedef struct IoRegion {
    uint64_t base;
    uint64_t len;
    const char *name;
    const IoRegionOps *ops;
    void *opaque;
} IoRegion;

static GArray *io_regions[2];

static gint io_region_cmp(gconstpointer a, gconstpointer b)
{
    const IoRegion *ra = a, *rb = b;
    return ra->base < rb->base ? -1 : ra->base > rb->base;
}

void io_region_register(IoSpace space, uint64_t base, uint64_t len, const char *name,
                        const IoRegionOps *ops, void *opaque)
{
    if (!io_regions[space]) {
        io_regions[space] = g_array_new(FALSE, FALSE, sizeof(IoRegion));
    }
    IoRegion r = { .base = base, .len = len, .name = name, .ops = ops, .opaque = opaque };
    g_array_append_val(io_regions[space], r);
    g_array_sort(io_regions[space], io_region_cmp);
}

static const IoRegion *io_region_find(IoSpace space, uint64_t addr)
{
    GArray *arr = io_regions[space];
    if (!arr) {
        return NULL;
    }
    guint lo = 0, hi = arr->len;
    while (lo < hi) {
        guint mid = (lo + hi) / 2;
        const IoRegion *r = &g_array_index(arr, IoRegion, mid);
        if (addr < r->base) {
            hi = mid;
        } else if (addr - r->base >= r->len) {
            lo = mid + 1;
        } else {
            return r;
        }
    }
    return NULL;
}

uint64_t io_dispatch_read(IoSpace space, uint64_t addr, unsigned size)
{
    const IoRegion *r = io_region_find(space, addr);
    if (!r || !r->ops->read) {
        return size >= 8 ? UINT64_MAX : (1ULL << (size * 8)) - 1;
    }
    return r->ops->read(r->opaque, addr - r->base, size);
}

void io_dispatch_write(IoSpace space, uint64_t addr, uint64_t value, unsigned size)
{
    const IoRegion *r = io_region_find(space, addr);
    if (r && r->ops->write) {
        r->ops->write(r->opaque, addr - r->base, value, size);
    }
}
