/*
 * The "ram" migration participant without a VM: RAM blocks made with
 * ramblock_new(), saved through its SaveVMHandlers into the real
 * QEMUFile over a memfd, loaded into a second set of blocks and compared
 * page by page. KVM is replaced by a few fake memory slots whose dirty
 * logs the tests fill in; the migration core by the handful of functions
 * the participant calls (registration, rate limit, statistics, BQL). The
 * transports come with their own stand-ins (stubs.c).
 *
 * Also: untouched pages are not sent, VMM-dirty pages go again in the
 * next round, and the loader refuses every malformed stream (wrong
 * offsets, flags, block ids, block lists, truncation at every byte)
 * with a message and without touching memory outside the blocks.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <gio/gio.h>

#include "system/accel.h"
#include "migration/migration.h"
#include "migration/multifd.h"
#include "multifd-stubs.h"
#include "migration/ram.h"
#include "migration/ram-format.h"
#include "migration/register.h"
#include "system/main-loop.h"
#include "system/memory.h"
#include "system/ramblock.h"

#define PAGE TARGET_PAGE_SIZE

/* ------------------------------------------------------------ stand-ins */

MigrationStats mig_stats;

static const SaveVMHandlers *ram_ops;
static void *ram_opaque;

void register_savevm_live(const char *idstr, uint32_t instance_id, int version_id,
                          const SaveVMHandlers *ops, void *opaque)
{
    g_assert_cmpstr(idstr, ==, "ram");
    g_assert_cmpuint(instance_id, ==, 0);
    g_assert_cmpint(version_id, ==, 1);
    ram_ops = ops;
    ram_opaque = opaque;
}

/* Calls left before the rate limit trips; -1: never. */
static int rate_calls_left = -1;
static int rate_trips;

bool migration_rate_exceeded(QEMUFile *f)
{
    if (rate_calls_left < 0) {
        return false;
    }
    if (rate_calls_left == 0) {
        rate_trips++;
        return true;
    }
    rate_calls_left--;
    return false;
}

static int bql_depth;

void bql_lock(void)
{
    g_assert_cmpint(bql_depth, ==, 0);
    bql_depth++;
}

void bql_unlock(void)
{
    g_assert_cmpint(bql_depth, ==, 1);
    bql_depth--;
}

bool bql_locked(void)
{
    return bql_depth > 0;
}

/* Fake KVM memory slots: each has a log the test sets bits in. */
#define FAKE_SLOTS 4
static AccelSlot fake_slots[FAKE_SLOTS];
static unsigned long *fake_logs[FAKE_SLOTS];
static int fake_nr_slots;
static int fake_log_fetches;

int accel_slot_count(void)
{
    return fake_nr_slots;
}

const AccelSlot *accel_slot_get(int index)
{
    return index >= 0 && index < fake_nr_slots ? &fake_slots[index] : NULL;
}

bool accel_slot_set_dirty_logging(int index, bool on, GError **errp)
{
    g_assert(index >= 0 && index < fake_nr_slots);
    fake_slots[index].logging = on;
    return true;
}

bool accel_slot_get_dirty_log(int index, unsigned long *bitmap, GError **errp)
{
    g_assert(index >= 0 && index < fake_nr_slots);
    g_assert(fake_slots[index].logging);
    size_t words = (fake_slots[index].size / PAGE + 63) / 64;
    memcpy(bitmap, fake_logs[index], words * sizeof(long));
    memset(fake_logs[index], 0, words * sizeof(long));
    fake_log_fetches++;
    return true;
}

static void fake_slot_add(RAMBlock *rb, uint64_t offset, uint64_t size)
{
    g_assert(fake_nr_slots < FAKE_SLOTS);
    int i = fake_nr_slots++;
    fake_slots[i] = (AccelSlot) {
        .gpa = 0x100000000ULL * i, .size = size, .host = rb->host + offset,
    };
    fake_logs[i] = g_new0(unsigned long, (size / PAGE + 63) / 64);
}

/* A vCPU write: change the page and mark it in the slot's log. */
static void fake_vcpu_write(int slot, uint64_t slot_page, uint8_t v)
{
    uint8_t *p = (uint8_t *)fake_slots[slot].host + slot_page * PAGE;
    memset(p, v, PAGE);
    fake_logs[slot][slot_page / 64] |= 1UL << (slot_page % 64);
}

static void fake_slots_clear(void)
{
    for (int i = 0; i < fake_nr_slots; i++) {
        g_assert_false(fake_slots[i].logging);
        g_clear_pointer(&fake_logs[i], g_free);
    }
    fake_nr_slots = 0;
}

/* --------------------------------------------------------------- blocks */

/* Blocks are made in the global list and then taken out of it, so a
 * source and a destination block can share an id. */
static RAMBlock *block_new(const char *id, uint64_t size, RAMBackingKind kind, bool shared)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = NULL;
    RAMBlockOptions o = { .id = id, .size = size, .kind = kind, .shared = shared };

    if (kind == RAM_BACKING_FILE) {
        dir = g_dir_make_tmp("ferry-test-ram-XXXXXX", &err);
        g_assert_no_error(err);
        o.mem_path = dir;
    }
    RAMBlock *rb = ramblock_new(&o, &err);
    g_assert_no_error(err);
    g_ptr_array_remove(ramblock_list(), rb);
    if (dir) {
        rmdir(dir);         /* the backing file is already unlinked */
    }
    return rb;
}

static void blocks_use(RAMBlock **blocks, unsigned n)
{
    GPtrArray *list = ramblock_list();
    g_ptr_array_set_size(list, 0);
    for (unsigned i = 0; i < n; i++) {
        g_ptr_array_add(list, blocks[i]);
    }
}

static void blocks_free(RAMBlock **blocks, unsigned n)
{
    g_ptr_array_set_size(ramblock_list(), 0);
    for (unsigned i = 0; i < n; i++) {
        ramblock_free(blocks[i]);
        blocks[i] = NULL;
    }
}

static void page_fill(RAMBlock *rb, uint64_t page, uint32_t seed)
{
    uint32_t *w = (uint32_t *)(rb->host + page * PAGE);
    for (size_t i = 0; i < PAGE / 4; i++) {
        w[i] = seed * 2654435761u + (uint32_t)i + 1;
    }
}

static void blocks_assert_equal(RAMBlock **a, RAMBlock **b, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        g_assert_cmpuint(a[i]->used_length, ==, b[i]->used_length);
        for (uint64_t off = 0; off < a[i]->used_length; off += PAGE) {
            if (memcmp(a[i]->host + off, b[i]->host + off, PAGE) != 0) {
                g_error("block '%s': page at 0x%" G_GINT64_MODIFIER "x differs",
                        a[i]->idstr, off);
            }
        }
    }
}

/* --------------------------------------------------------------- streams */

typedef struct Stream {
    QEMUFile *f;
    int keep_fd;        /* a second descriptor of the memfd, to read it back */
    unsigned payloads;  /* sections written, for the loader */
} Stream;

static void stream_open(Stream *s)
{
    g_autoptr(GError) err = NULL;
    int fd = memfd_create("ram-stream", MFD_CLOEXEC);
    g_assert_cmpint(fd, >=, 0);
    s->keep_fd = dup(fd);
    MigChannel *ch = mig_channel_new_fd(fd, "test stream", &err);
    g_assert_no_error(err);
    s->f = qemu_file_new_output(ch);
    s->payloads = 0;
}

static GByteArray *stream_close(Stream *s)
{
    g_assert_cmpint(qemu_fclose(s->f), ==, 0);
    s->f = NULL;
    off_t len = lseek(s->keep_fd, 0, SEEK_END);
    GByteArray *bytes = g_byte_array_sized_new((guint)len);
    g_byte_array_set_size(bytes, (guint)len);
    g_assert_cmpint(pread(s->keep_fd, bytes->data, (size_t)len, 0), ==, len);
    close(s->keep_fd);
    return bytes;
}

static QEMUFile *stream_reader(const guint8 *data, size_t len)
{
    g_autoptr(GError) err = NULL;
    int fd = memfd_create("ram-stream-in", MFD_CLOEXEC);
    g_assert_cmpint(fd, >=, 0);
    if (len) {
        g_assert_cmpint(write(fd, data, len), ==, (ssize_t)len);
    }
    lseek(fd, 0, SEEK_SET);
    MigChannel *ch = mig_channel_new_fd(fd, "test stream", &err);
    g_assert_no_error(err);
    return qemu_file_new_input(ch);
}

/* Load @payloads sections; on success the whole stream must be used. */
static bool stream_load(const guint8 *data, size_t len, unsigned payloads, GError **errp)
{
    QEMUFile *f = stream_reader(data, len);
    bool ok = ram_ops->load_setup(f, ram_opaque, errp);
    for (unsigned i = 0; ok && i < payloads; i++) {
        ok = ram_ops->load_state(f, ram_opaque, 1, errp);
    }
    if (ok) {
        g_assert_cmpint(qemu_peek_byte(f), ==, -1);
    }
    ram_ops->load_cleanup(ram_opaque);
    qemu_fclose(f);
    return ok;
}

/* Source steps, each one payload. */
static void save_setup(Stream *s)
{
    g_autoptr(GError) err = NULL;
    bql_lock();
    g_assert_true(ram_ops->save_setup(s->f, ram_opaque, &err));
    bql_unlock();
    g_assert_no_error(err);
    s->payloads++;
}

static int save_iterate(Stream *s)
{
    g_autoptr(GError) err = NULL;
    int r = ram_ops->save_live_iterate(s->f, ram_opaque, &err);
    g_assert_no_error(err);
    g_assert_cmpint(r, >=, 0);
    s->payloads++;
    return r;
}

static void save_iterate_all(Stream *s)
{
    for (int i = 0; i < 100000; i++) {
        if (save_iterate(s) == 1) {
            return;
        }
    }
    g_assert_not_reached();
}

static uint64_t pending_exact(void)
{
    uint64_t must = 0, can = 0;
    ram_ops->state_pending_exact(ram_opaque, &must, &can);
    g_assert_cmpint(bql_depth, ==, 0);
    return must + can;
}

static uint64_t pending_estimate(void)
{
    uint64_t must = 0, can = 0;
    ram_ops->state_pending_estimate(ram_opaque, &must, &can);
    return must + can;
}

static void save_complete(Stream *s)
{
    g_autoptr(GError) err = NULL;
    bql_lock();
    g_assert_true(ram_ops->save_live_complete_precopy(s->f, ram_opaque, &err));
    ram_ops->save_cleanup(ram_opaque);
    bql_unlock();
    g_assert_no_error(err);
    s->payloads++;
}

static void stats_reset(void)
{
    memset(&mig_stats, 0, sizeof(mig_stats));
}

/* ------------------------------------------------------------- round trips */

/*
 * Five kinds of backing, pages with data, pages written with zeros,
 * untouched pages, and destinations holding stale data everywhere.
 */
static void test_ram_roundtrip(void)
{
    enum { N = 5 };
    static const struct { const char *id; uint64_t size; RAMBackingKind kind; bool shared; }
    spec[N] = {
        { "pc.ram", 8 << 20, RAM_BACKING_ANON, false },
        { "mem1", 2 << 20, RAM_BACKING_MEMFD, true },
        { "mem2", 1 << 20, RAM_BACKING_MEMFD, false },
        { "file0", 1 << 20, RAM_BACKING_FILE, true },
        { "shm", 1 << 20, RAM_BACKING_ANON, true },
    };
    RAMBlock *src[N], *dst[N];
    uint64_t data_pages = 0;

    for (int i = 0; i < N; i++) {
        src[i] = block_new(spec[i].id, spec[i].size, spec[i].kind, spec[i].shared);
    }
    for (int i = 0; i < N; i++) {
        dst[i] = block_new(spec[i].id, spec[i].size, spec[i].kind, spec[i].shared);
    }
    for (int i = 0; i < N; i++) {
        uint64_t pages = src[i]->used_length / PAGE;
        for (uint64_t p = 0; p < pages; p += 3 + (p % 5)) {
            page_fill(src[i], p, (uint32_t)(i * 100000 + p));
            data_pages++;
        }
        /* Touched but zero. */
        memset(src[i]->host + (pages - 2) * PAGE, 0, PAGE);
        /* Stale data on the destination, where the source has nothing too. */
        for (uint64_t p = 0; p < pages; p += 2) {
            memset(dst[i]->host + p * PAGE, 0xa5, PAGE);
        }
    }

    stats_reset();
    blocks_use(src, N);
    Stream s;
    stream_open(&s);
    save_setup(&s);
    g_assert_cmpuint(pending_estimate(), >=, data_pages * PAGE);
    save_iterate_all(&s);
    g_assert_cmpuint(pending_estimate(), ==, 0);
    g_assert_cmpuint(pending_exact(), ==, 0);
    save_complete(&s);
    g_autoptr(GByteArray) bytes = stream_close(&s);

    g_assert_cmpuint(mig_stat_get(&mig_stats.normal_pages), ==, data_pages);
    g_assert_cmpuint(mig_stat_get(&mig_stats.zero_pages), >=, N);
    g_assert_cmpuint(mig_stat_get(&mig_stats.dirty_sync_count), ==, 3);
    g_assert_cmpuint(mig_stat_get(&mig_stats.precopy_bytes), >=, data_pages * PAGE);

    g_autoptr(GError) err = NULL;
    blocks_use(dst, N);
    g_assert_true(stream_load(bytes->data, bytes->len, s.payloads, &err));
    g_assert_no_error(err);
    blocks_assert_equal(src, dst, N);

    blocks_free(src, N);
    blocks_free(dst, N);
}

/*
 * Only touched pages travel: exactly where the host maps 4 KiB pages,
 * up to the huge page around a touched page where it may use THP.
 */
static void test_ram_untouched_not_sent(void)
{
    static const struct { RAMBackingKind kind; bool shared; bool exact; } kinds[] = {
        { RAM_BACKING_MEMFD, true, true },      /* SEEK_DATA */
        { RAM_BACKING_MEMFD, false, true },     /* SEEK_DATA + private copies in pagemap */
        { RAM_BACKING_ANON, true, false },      /* pagemap + mincore (shmem THP possible) */
        { RAM_BACKING_ANON, false, false },     /* pagemap (THP likely) */
    };

    for (unsigned k = 0; k < G_N_ELEMENTS(kinds); k++) {
        const uint64_t size = 64 << 20;
        RAMBlock *src = block_new("pc.ram", size, kinds[k].kind, kinds[k].shared);
        RAMBlock *dst = block_new("pc.ram", size, kinds[k].kind, kinds[k].shared);
        const unsigned touched = 10;

        for (unsigned i = 0; i < touched; i++) {
            page_fill(src, (uint64_t)i * 1000 + 7, i);
        }
        /* Stale data where the source has none: load_setup must clear it. */
        memset(dst->host + size - 3 * PAGE, 0xee, 2 * PAGE);
        memset(dst->host + 20 * PAGE, 0xee, PAGE);
        stats_reset();
        blocks_use(&src, 1);
        Stream s;
        stream_open(&s);
        save_setup(&s);
        save_iterate_all(&s);
        save_complete(&s);
        g_autoptr(GByteArray) bytes = stream_close(&s);

        uint64_t zero = mig_stat_get(&mig_stats.zero_pages);
        g_assert_cmpuint(mig_stat_get(&mig_stats.normal_pages), ==, touched);
        g_test_message("kind %d shared %d: normal %" G_GUINT64_FORMAT ", zero %"
                       G_GUINT64_FORMAT ", %u bytes", kinds[k].kind, kinds[k].shared,
                       mig_stat_get(&mig_stats.normal_pages), zero, bytes->len);
        if (kinds[k].exact) {
            g_assert_cmpuint(zero, ==, 0);
            /* block list + 10 page records + EOS per payload */
            g_assert_cmpuint(bytes->len, <=, 64 + touched * (RAM_PAGE_RECORD_SIZE + 7) + 3 * 8);
        } else {
            /* A touched page may bring its whole 2 MiB huge page. */
            g_assert_cmpuint(zero, <=, touched * 511);
            g_assert_cmpuint(bytes->len, <, 1 << 20);
        }

        g_autoptr(GError) err = NULL;
        blocks_use(&dst, 1);
        g_assert_true(stream_load(bytes->data, bytes->len, s.payloads, &err));
        g_assert_no_error(err);
        blocks_assert_equal(&src, &dst, 1);
        blocks_free(&src, 1);
        blocks_free(&dst, 1);
    }
}

/* Writes made by Ferry itself (VMM bitmap) go again in the next round. */
static void test_ram_vmm_dirty_resent(void)
{
    RAMBlock *src = block_new("pc.ram", 4 << 20, RAM_BACKING_ANON, false);
    RAMBlock *dst = block_new("pc.ram", 4 << 20, RAM_BACKING_ANON, false);

    for (uint64_t p = 0; p < 64; p++) {
        page_fill(src, p, (uint32_t)p);
    }
    /* Stale VMM bits from before the migration are not sent twice. */
    ramblock_mark_vmm_dirty(src, 0, 64 * PAGE);

    stats_reset();
    blocks_use(&src, 1);
    guest_ram_map(0x40000000, src->used_length, src, 0);
    Stream s;
    stream_open(&s);
    save_setup(&s);
    save_iterate_all(&s);
    uint64_t sent_first = mig_stat_get(&mig_stats.normal_pages);
    uint64_t zero_first = mig_stat_get(&mig_stats.zero_pages);
    g_assert_cmpuint(sent_first, ==, 64);

    /* A device writes three pages, one of them never touched before, one with zeros. */
    uint8_t buf[PAGE];
    memset(buf, 0x5a, sizeof(buf));
    g_assert_true(guest_phys_write(0x40000000 + 5 * PAGE, buf, sizeof(buf)));
    g_assert_true(guest_phys_write(0x40000000 + 900 * PAGE + 100, buf, 10));
    memset(buf, 0, sizeof(buf));
    g_assert_true(guest_phys_write(0x40000000 + 6 * PAGE, buf, sizeof(buf)));
    g_assert_cmpuint(pending_estimate(), ==, 0);
    g_assert_cmpuint(pending_exact(), ==, 3 * PAGE);
    g_assert_cmpuint(mig_stat_get(&mig_stats.dirty_bytes_last_sync), ==, 3 * PAGE);
    g_assert_cmpint(save_iterate(&s), ==, 1);
    g_assert_cmpuint(mig_stat_get(&mig_stats.normal_pages), ==, sent_first + 2);
    g_assert_cmpuint(mig_stat_get(&mig_stats.zero_pages), ==, zero_first + 1);

    /* And one more with the VM "stopped": completion's own sync finds it. */
    memset(buf, 0x77, sizeof(buf));
    g_assert_true(guest_phys_write(0x40000000 + 63 * PAGE, buf, sizeof(buf)));
    save_complete(&s);
    g_assert_cmpuint(mig_stat_get(&mig_stats.normal_pages), ==, sent_first + 3);
    g_autoptr(GByteArray) bytes = stream_close(&s);

    g_autoptr(GError) err = NULL;
    blocks_use(&dst, 1);
    g_assert_true(stream_load(bytes->data, bytes->len, s.payloads, &err));
    g_assert_no_error(err);
    blocks_assert_equal(&src, &dst, 1);
    blocks_free(&src, 1);
    blocks_free(&dst, 1);
}

/*
 * KVM's log: slots that start at a page that is not a multiple of 64 in
 * their block (the bitmap merge shifts), bits fetched before setup's
 * scan are discarded, and later ones are sent.
 */
static void test_ram_kvm_dirty_log(void)
{
    RAMBlock *src[2], *dst[2];
    src[0] = block_new("pc.ram", 8 << 20, RAM_BACKING_ANON, false);
    src[1] = block_new("high", 1 << 20, RAM_BACKING_MEMFD, true);
    dst[0] = block_new("pc.ram", 8 << 20, RAM_BACKING_ANON, false);
    dst[1] = block_new("high", 1 << 20, RAM_BACKING_MEMFD, true);

    fake_slot_add(src[0], 0, 4 << 20);
    fake_slot_add(src[0], 1027 * PAGE, 2 << 20);      /* pages 1027..1538 */
    fake_slot_add(src[1], 0, 1 << 20);

    /* Dirty before migration: in the log, but also existing pages. */
    fake_vcpu_write(0, 3, 1);
    fake_vcpu_write(1, 0, 2);

    stats_reset();
    blocks_use(src, 2);
    Stream s;
    stream_open(&s);
    save_setup(&s);
    g_assert_cmpint(fake_log_fetches, ==, 3);
    g_assert_true(fake_slots[0].logging);
    save_iterate_all(&s);
    g_assert_cmpuint(mig_stat_get(&mig_stats.normal_pages), ==, 2);

    /* Round two: pages across word boundaries of the shifted slot. */
    static const uint64_t slot1_pages[] = { 0, 36, 37, 63, 64, 100, 511 };
    for (unsigned i = 0; i < G_N_ELEMENTS(slot1_pages); i++) {
        fake_vcpu_write(1, slot1_pages[i], (uint8_t)(10 + i));
    }
    fake_vcpu_write(0, 1023, 3);
    fake_vcpu_write(2, 255, 4);
    uint64_t expect = G_N_ELEMENTS(slot1_pages) + 2;
    g_assert_cmpuint(pending_exact(), ==, expect * PAGE);
    save_iterate_all(&s);
    g_assert_cmpuint(mig_stat_get(&mig_stats.normal_pages), ==, 2 + expect);

    /* A write both logs saw counts once. */
    fake_vcpu_write(0, 9, 5);
    ramblock_mark_vmm_dirty(src[0], 9 * PAGE, PAGE);
    fake_vcpu_write(2, 0, 6);
    bql_lock();
    g_autoptr(GError) err = NULL;
    g_assert_true(ram_ops->save_live_complete_precopy(s.f, ram_opaque, &err));
    g_assert_no_error(err);
    ram_ops->save_cleanup(ram_opaque);
    bql_unlock();
    s.payloads++;
    g_assert_cmpuint(mig_stat_get(&mig_stats.normal_pages), ==, 4 + expect);
    for (int i = 0; i < fake_nr_slots; i++) {
        g_assert_false(fake_slots[i].logging);
    }
    g_autoptr(GByteArray) bytes = stream_close(&s);

    blocks_use(dst, 2);
    g_assert_true(stream_load(bytes->data, bytes->len, s.payloads, &err));
    g_assert_no_error(err);
    blocks_assert_equal(src, dst, 2);
    fake_slots_clear();
    blocks_free(src, 2);
    blocks_free(dst, 2);
}

/* Iterate stops when the rate limit trips and goes on from there. */
static void test_ram_rate_limit(void)
{
    RAMBlock *src[2], *dst[2];
    src[0] = block_new("a", 1 << 20, RAM_BACKING_ANON, false);
    src[1] = block_new("b", 1 << 20, RAM_BACKING_MEMFD, true);
    dst[0] = block_new("a", 1 << 20, RAM_BACKING_ANON, false);
    dst[1] = block_new("b", 1 << 20, RAM_BACKING_MEMFD, true);
    for (int b = 0; b < 2; b++) {
        for (uint64_t p = 0; p < 256; p++) {
            page_fill(src[b], p, (uint32_t)(p + b * 1000));
        }
    }

    stats_reset();
    blocks_use(src, 2);
    Stream s;
    stream_open(&s);
    save_setup(&s);
    unsigned rounds = 0;
    for (;;) {
        rate_calls_left = 9;      /* 10 pages per window */
        int r = save_iterate(&s);
        rounds++;
        if (r == 1) {
            break;
        }
        g_assert_cmpuint(pending_estimate(), ==, (512 - rounds * 10) * PAGE);
    }
    rate_calls_left = -1;
    g_assert_cmpuint(rounds, ==, 52);
    save_complete(&s);
    g_autoptr(GByteArray) bytes = stream_close(&s);

    g_autoptr(GError) err = NULL;
    blocks_use(dst, 2);
    g_assert_true(stream_load(bytes->data, bytes->len, s.payloads, &err));
    g_assert_no_error(err);
    blocks_assert_equal(src, dst, 2);
    blocks_free(src, 2);
    blocks_free(dst, 2);
}

/* -------------------------------------------------------- malformed streams */

static void put_be64(GByteArray *a, uint64_t v)
{
    v = GUINT64_TO_BE(v);
    g_byte_array_append(a, (const guint8 *)&v, 8);
}

static void put_u8(GByteArray *a, uint8_t v)
{
    g_byte_array_append(a, &v, 1);
}

static void put_id(GByteArray *a, const char *id)
{
    put_u8(a, (uint8_t)strlen(id));
    g_byte_array_append(a, (const guint8 *)id, (guint)strlen(id));
}

static void put_page(GByteArray *a, uint64_t off, const char *id, uint8_t v)
{
    guint8 data[PAGE];
    put_be64(a, off | RAM_SAVE_FLAG_PAGE | (id ? 0 : RAM_SAVE_FLAG_CONTINUE));
    if (id) {
        put_id(a, id);
    }
    memset(data, v, sizeof(data));
    g_byte_array_append(a, data, sizeof(data));
}

static void put_zero(GByteArray *a, uint64_t off, const char *id, uint8_t fill)
{
    put_be64(a, off | RAM_SAVE_FLAG_ZERO | (id ? 0 : RAM_SAVE_FLAG_CONTINUE));
    if (id) {
        put_id(a, id);
    }
    put_u8(a, fill);
}

/* The destination of the malformed-stream tests: 64 KiB and 8 KiB. */
static RAMBlock *mf_blocks[2];

static void put_start(GByteArray *a)
{
    put_be64(a, (64 << 10) + (8 << 10) + RAM_SAVE_FLAG_MEM_SIZE);
    put_id(a, "pc.ram");
    put_be64(a, 64 << 10);
    put_id(a, "b2");
    put_be64(a, 8 << 10);
    put_be64(a, RAM_SAVE_FLAG_EOS);
}

static void mf_setup(void)
{
    mf_blocks[0] = block_new("pc.ram", 64 << 10, RAM_BACKING_ANON, false);
    mf_blocks[1] = block_new("b2", 8 << 10, RAM_BACKING_MEMFD, true);
    blocks_use(mf_blocks, 2);
}

static void mf_teardown(void)
{
    blocks_free(mf_blocks, 2);
}

/* A START payload, then @part as the second payload: must fail with @expect. */
static void mf_expect(GByteArray *part, unsigned payloads, const char *expect)
{
    g_autoptr(GByteArray) all = g_byte_array_new();
    g_autoptr(GError) err = NULL;
    put_start(all);
    g_byte_array_append(all, part->data, part->len);
    g_assert_false(stream_load(all->data, all->len, payloads, &err));
    g_assert_nonnull(err);
    if (!strstr(err->message, expect)) {
        g_error("expected '%s' in '%s'", expect, err->message);
    }
}

/* The second payload of malformed case @i (in the order of test_ram_load_checks). */
static void mf_build(unsigned i, GByteArray *a)
{
    switch (i) {
    case 0:
        put_page(a, 16 * PAGE, "pc.ram", 1);
        break;
    case 1:
        put_zero(a, ~(uint64_t)0xfff, "b2", 0);
        break;
    case 2:
        put_page(a, PAGE, "b2", 1);
        put_page(a, 2 * PAGE, NULL, 2);
        break;
    case 3:
        put_be64(a, 0x1800 | RAM_SAVE_FLAG_PAGE);
        put_id(a, "pc.ram");
        break;
    case 4:
        put_be64(a, 0x1000 | RAM_SAVE_FLAG_PAGE | 0x40);
        put_id(a, "pc.ram");
        break;
    case 5:
        put_be64(a, RAM_SAVE_FLAG_ZERO | 0x100);
        put_id(a, "pc.ram");
        break;
    case 6:
        put_be64(a, RAM_SAVE_FLAG_ZERO | RAM_SAVE_FLAG_PAGE);
        put_id(a, "pc.ram");
        break;
    case 7:
        put_be64(a, 0x3000);
        put_id(a, "pc.ram");
        break;
    case 8:
        put_be64(a, 0x1000 | RAM_SAVE_FLAG_EOS);
        break;
    case 9:
        put_page(a, 0, "nope", 1);
        break;
    case 10:
        put_page(a, 0, "", 1);
        break;
    case 11:
        put_page(a, 0, "x\n", 1);
        break;
    case 12:
        put_page(a, 0, NULL, 1);
        break;
    case 13:
        put_zero(a, 0, "pc.ram", 1);
        break;
    case 14:
        put_start(a);
        break;
    case 15:
        put_be64(a, RAM_SAVE_FLAG_PAGE);
        put_id(a, "pc.ram");
        put_u8(a, 1);
        break;
    case 16:
        put_zero(a, 0, "pc.ram", 0);
        break;
    case 17:
        put_be64(a, RAM_SAVE_FLAG_MULTIFD_FLUSH);
        break;
    default:
        g_assert_not_reached();
    }
}

static void test_ram_load_checks(void)
{
    mf_setup();

    /* A good stream loads. */
    {
        g_autoptr(GByteArray) a = g_byte_array_new();
        g_autoptr(GError) err = NULL;
        put_start(a);
        put_page(a, 0, "pc.ram", 0x11);
        put_page(a, 15 * PAGE, NULL, 0x22);
        put_zero(a, PAGE, "b2", 0);
        put_be64(a, RAM_SAVE_FLAG_EOS);
        g_assert_true(stream_load(a->data, a->len, 2, &err));
        g_assert_no_error(err);
        g_assert_cmpint(mf_blocks[0]->host[0], ==, 0x11);
        g_assert_cmpint(mf_blocks[0]->host[15 * PAGE + 4095], ==, 0x22);
    }
    static const struct {
        const char *what;
        const char *expect;
    } cases[] = {
        { "offset past the block", "page offset 0x10000 outside block 'pc.ram' (size 0x10000)" },
        { "far offset", "page offset 0xfffffffffffff000 outside block 'b2' (size 0x2000)" },
        { "continue past the block", "page offset 0x2000 outside block 'b2' (size 0x2000)" },
        { "unaligned", "not page-aligned" },
        { "unknown flag", "unknown flags 0x40" },
        { "unknown flag 0x100", "unknown flags 0x100" },
        { "zero and page", "invalid flag combination" },
        { "no kind", "invalid flag combination" },
        { "EOS with an offset", "invalid flag combination" },
        { "unknown block", "unknown block 'nope'" },
        { "empty block id", "unknown block ''" },
        { "unprintable block id", "unknown block 'x\\n'" },
        { "continue first", "none was named" },
        { "fill byte", "has fill byte 0x01" },
        { "second block list", "a second block list" },
        { "truncated page", "unexpected end of stream" },
        { "no EOS", "unexpected end of stream" },
        { "multifd flush without multifd", "this migration has no multifd channels" },
    };
    for (unsigned i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GByteArray) a = g_byte_array_new();
        g_test_message("case: %s", cases[i].what);
        mf_build(i, a);
        mf_expect(a, 2, cases[i].expect);
    }

    /* Records before the block list. */
    {
        g_autoptr(GByteArray) a = g_byte_array_new();
        g_autoptr(GError) err = NULL;
        put_page(a, 0, "pc.ram", 1);
        put_be64(a, RAM_SAVE_FLAG_EOS);
        g_assert_false(stream_load(a->data, a->len, 1, &err));
        g_assert_nonnull(strstr(err->message, "before the block list"));
    }
    /* Another stream version. */
    {
        g_autoptr(GByteArray) a = g_byte_array_new();
        g_autoptr(GError) err = NULL;
        put_start(a);
        QEMUFile *f = stream_reader(a->data, a->len);
        g_assert_true(ram_ops->load_setup(f, ram_opaque, &err));
        g_assert_false(ram_ops->load_state(f, ram_opaque, 2, &err));
        g_assert_nonnull(strstr(err->message, "version 2"));
        ram_ops->load_cleanup(ram_opaque);
        qemu_fclose(f);
    }
    mf_teardown();
}

/* START payloads that do not describe exactly the destination's blocks. */
static void test_ram_load_block_list(void)
{
    static const struct {
        const char *what;
        uint64_t total;
        const char *ids[3];
        uint64_t sizes[3];
        const char *expect;
    } cases[] = {
        { "block missing", 64 << 10, { "pc.ram" }, { 64 << 10 },
          "block 'b2' (size 0x2000) is missing from the source's block list" },
        { "block unknown", (64 << 10) + (8 << 10) + PAGE, { "pc.ram", "b2", "b3" },
          { 64 << 10, 8 << 10, PAGE }, "the source has RAM block 'b3'" },
        { "size differs", (64 << 10) + (16 << 10), { "pc.ram", "b2" }, { 64 << 10, 16 << 10 },
          "block 'b2' has size 0x4000 on the source but 0x2000 here" },
        { "listed twice", 128 << 10, { "pc.ram", "pc.ram" }, { 64 << 10, 64 << 10 },
          "block 'pc.ram' is listed twice" },
        { "total too small", (64 << 10) + PAGE, { "pc.ram", "b2" }, { 64 << 10, 8 << 10 },
          "goes past the total RAM size" },
        { "total zero", 0, { NULL }, { 0 },
          "block 'pc.ram' (size 0x10000) is missing" },
    };

    mf_setup();
    for (unsigned i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GByteArray) a = g_byte_array_new();
        g_autoptr(GError) err = NULL;
        g_test_message("case: %s", cases[i].what);
        put_be64(a, cases[i].total | RAM_SAVE_FLAG_MEM_SIZE);
        for (int j = 0; j < 3 && cases[i].ids[j]; j++) {
            put_id(a, cases[i].ids[j]);
            put_be64(a, cases[i].sizes[j]);
        }
        put_be64(a, RAM_SAVE_FLAG_EOS);
        g_assert_false(stream_load(a->data, a->len, 1, &err));
        if (!strstr(err->message, cases[i].expect)) {
            g_error("expected '%s' in '%s'", cases[i].expect, err->message);
        }
    }
    /* MEM_SIZE with more flags; a list without its EOS. */
    {
        g_autoptr(GByteArray) a = g_byte_array_new();
        g_autoptr(GError) err = NULL;
        put_be64(a, (72 << 10) | RAM_SAVE_FLAG_MEM_SIZE | RAM_SAVE_FLAG_ZERO);
        g_assert_false(stream_load(a->data, a->len, 1, &err));
        g_assert_nonnull(strstr(err->message, "other flags than MEM_SIZE"));
    }
    {
        g_autoptr(GByteArray) a = g_byte_array_new();
        g_autoptr(GError) err = NULL;
        put_start(a);
        a->data[a->len - 1] = RAM_SAVE_FLAG_ZERO;
        g_assert_false(stream_load(a->data, a->len, 1, &err));
        g_assert_nonnull(strstr(err->message, "not followed by EOS"));
    }
    mf_teardown();
}

/*
 * A small real stream cut at every byte: always an error, never a crash;
 * changed bytes: an error or a load, never a crash.
 */
static void test_ram_load_truncated(void)
{
    RAMBlock *src[2];
    src[0] = block_new("pc.ram", 64 << 10, RAM_BACKING_ANON, false);
    src[1] = block_new("b2", 8 << 10, RAM_BACKING_MEMFD, true);
    page_fill(src[0], 0, 1);
    memset(src[0]->host + 3 * PAGE, 0, PAGE);
    page_fill(src[0], 15, 2);
    page_fill(src[1], 1, 3);

    blocks_use(src, 2);
    Stream s;
    stream_open(&s);
    save_setup(&s);
    save_iterate_all(&s);
    save_complete(&s);
    g_autoptr(GByteArray) bytes = stream_close(&s);
    blocks_free(src, 2);

    mf_setup();
    g_autoptr(GError) err = NULL;
    g_assert_true(stream_load(bytes->data, bytes->len, s.payloads, &err));
    g_assert_no_error(err);
    for (guint len = 0; len < bytes->len; len++) {
        g_autoptr(GError) cut_err = NULL;
        g_assert_false(stream_load(bytes->data, len, s.payloads, &cut_err));
        g_assert_nonnull(cut_err);
    }
    /* Every byte flipped in turn: errors or a load, never a crash. */
    g_autoptr(GByteArray) copy = g_byte_array_new();
    g_byte_array_append(copy, bytes->data, bytes->len);
    for (guint i = 0; i < copy->len; i++) {
        g_autoptr(GError) flip_err = NULL;
        copy->data[i] ^= 0xff;
        if (!stream_load(copy->data, copy->len, s.payloads, &flip_err)) {
            g_assert_nonnull(flip_err);
        }
        copy->data[i] ^= 0xff;
    }
    /* A few random bytes changed at a time (seeded by the test run). */
    for (unsigned round = 0; round < 2000; round++) {
        g_autoptr(GError) rnd_err = NULL;
        g_autoptr(GByteArray) m = g_byte_array_new();
        g_byte_array_append(m, bytes->data, bytes->len);
        int changes = g_test_rand_int_range(1, 9);
        for (int c = 0; c < changes; c++) {
            guint at = (guint)g_test_rand_int_range(0, (gint32)m->len);
            m->data[at] = (guint8)g_test_rand_int_range(0, 256);
        }
        if (!stream_load(m->data, m->len, s.payloads, &rnd_err)) {
            g_assert_nonnull(rnd_err);
        }
    }
    mf_teardown();
}

/* ---------------------------------------------------------- benchmarks */

static double now_ms(void)
{
    return (double)g_get_monotonic_time() / 1000.0;
}

static QEMUFile *devnull_file(void)
{
    g_autoptr(GError) err = NULL;
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    g_assert_cmpint(fd, >=, 0);
    MigChannel *ch = mig_channel_new_fd(fd, "/dev/null", &err);
    g_assert_no_error(err);
    return qemu_file_new_output(ch);
}

static gpointer drain_thread(gpointer opaque)
{
    int fd = GPOINTER_TO_INT(opaque);
    static char buf[1 << 20];
    while (read(fd, buf, sizeof(buf)) > 0) {
        /* discard */
    }
    close(fd);
    return NULL;
}

/*
 * 512 MiB written once, sent to /dev/null (the encoder's own speed) and
 * through a Unix socket drained by another thread (one channel).
 */
static void test_ram_bench_encode(void)
{
    const uint64_t size = 512ULL << 20;
    static const char *const modes[] = {
        "data pages to /dev/null", "data pages over a socket", "zero pages to /dev/null",
    };
    RAMBlock *rb = block_new("pc.ram", size, RAM_BACKING_ANON, false);
    for (uint64_t off = 0; off < size; off += PAGE) {
        memset(rb->host + off, (int)(off / PAGE) | 1, PAGE);
    }
    for (unsigned mode = 0; mode < G_N_ELEMENTS(modes); mode++) {
        GThread *drain = NULL;
        Stream s = { 0 };
        if (mode == 2) {
            memset(rb->host, 0, size);      /* touched, all zero */
        }
        if (mode == 1) {
            g_autoptr(GError) err = NULL;
            int sv[2];
            g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
            drain = g_thread_new("drain", drain_thread, GINT_TO_POINTER(sv[1]));
            MigChannel *ch = mig_channel_new_fd(sv[0], "socket", &err);
            g_assert_no_error(err);
            s.f = qemu_file_new_output(ch);
        } else {
            s.f = devnull_file();
        }
        stats_reset();
        blocks_use(&rb, 1);
        double t0 = now_ms();
        save_setup(&s);
        double t1 = now_ms();
        save_iterate_all(&s);
        save_complete(&s);
        qemu_fclose(s.f);
        double t2 = now_ms();
        if (drain) {
            g_thread_join(drain);
        }
        g_test_message("512 MiB, %s: setup %.1f ms, send %.1f ms: %.0f MB/s "
                       "(normal %" G_GUINT64_FORMAT ", zero %" G_GUINT64_FORMAT ")",
                       modes[mode], t1 - t0, t2 - t1,
                       (double)size / 1e6 / ((t2 - t0) / 1000.0),
                       mig_stat_get(&mig_stats.normal_pages),
                       mig_stat_get(&mig_stats.zero_pages));
    }
    blocks_free(&rb, 1);
}

/* An idle 1 GiB guest: a few MiB touched, the rest never. */
static void test_ram_bench_idle(void)
{
    const uint64_t size = 1ULL << 30;
    RAMBlock *src = block_new("pc.ram", size, RAM_BACKING_ANON, false);
    RAMBlock *dst = block_new("pc.ram", size, RAM_BACKING_ANON, false);
    for (uint64_t off = 0; off < (2 << 20); off += PAGE) {
        memset(src->host + off, 0x42, 64);
    }
    stats_reset();
    blocks_use(&src, 1);
    Stream s;
    stream_open(&s);
    double t0 = now_ms();
    save_setup(&s);
    save_iterate_all(&s);
    double ts = now_ms();
    pending_exact();
    double sync_ms = now_ms() - ts;
    save_complete(&s);
    double t1 = now_ms();
    g_autoptr(GByteArray) bytes = stream_close(&s);
    blocks_use(&dst, 1);
    double t2 = now_ms();
    g_autoptr(GError) err = NULL;
    g_assert_true(stream_load(bytes->data, bytes->len, s.payloads, &err));
    double t3 = now_ms();
    g_test_message("idle 1 GiB: save %.2f ms (one sync %.3f ms), load %.2f ms, %u bytes",
                   t1 - t0, sync_ms, t3 - t2, bytes->len);
    blocks_free(&src, 1);
    blocks_free(&dst, 1);
}

/* ------------------------------------------------ multifd channel filing */

typedef struct MfdSetup {
    uint8_t uuid[MULTIFD_UUID_LEN];
    gboolean ok;
    char *error;
} MfdSetup;

static gpointer mfd_setup_thread(gpointer opaque)
{
    MfdSetup *m = opaque;
    g_autoptr(GError) err = NULL;
    m->ok = multifd_recv_setup(m->uuid, 2, MULTIFD_COMPRESSION_NONE, NULL, &err);
    m->error = err ? g_strdup(err->message) : NULL;
    return NULL;
}

/* A channel socket whose far end the test keeps (closed at the end). */
static MigChannel *mfd_channel(int *peer)
{
    int sv[2];
    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
    *peer = sv[1];
    return mig_channel_new_socket(sv[0], "test");
}

static void mfd_arrive(const uint8_t *uuid, uint32_t id, uint32_t channels, int *peer)
{
    MultiFDHandshake hs = { .channel_id = id, .channels = channels };
    memcpy(hs.uuid, uuid, MULTIFD_UUID_LEN);
    multifd_recv_new_channel(mfd_channel(peer), &hs);
}

/*
 * Channels are filed under the migration they name: before the main
 * stream's settings are known and while the load thread waits for them,
 * a channel of another migration, with another count or with a number out
 * of range is refused, and only 0..n-1 are taken.
 */
static void test_multifd_recv_filing(void)
{
    MfdSetup m = { .uuid = "0123456789abcdef" };
    static const uint8_t other[MULTIFD_UUID_LEN] = "fedcba9876543210";
    int peers[8], np = 0;

    multifd_stubs_set_cap(MIGRATION_CAPABILITY_MULTIFD, true);
    multifd_stubs_params()->multifd_channels = 2;
    multifd_stubs_params()->multifd_compression = MULTIFD_COMPRESSION_NONE;
    multifd_recv_reset();

    /* Before the settings are known: kept for now, sorted out at setup. */
    mfd_arrive(other, 0, 2, &peers[np++]);
    mfd_arrive(m.uuid, 1, 255, &peers[np++]);
    GThread *t = g_thread_new("setup", mfd_setup_thread, &m);
    /* While setup waits: refused at once (a number past the array, too). */
    mfd_arrive(m.uuid, 254, 255, &peers[np++]);
    mfd_arrive(m.uuid, 5, 2, &peers[np++]);
    mfd_arrive(other, 1, 2, &peers[np++]);
    g_assert_false(multifd_recv_active());
    mfd_arrive(m.uuid, 0, 2, &peers[np++]);
    mfd_arrive(m.uuid, 0, 2, &peers[np++]);      /* a duplicate */
    mfd_arrive(m.uuid, 1, 2, &peers[np++]);
    g_thread_join(t);
    g_assert_null(m.error);
    g_assert_true(m.ok);
    g_assert_true(multifd_recv_active());
    g_assert_false(multifd_recv_wants_channels());
    multifd_recv_cleanup();
    g_assert_false(multifd_recv_active());

    for (int i = 0; i < np; i++) {
        close(peers[i]);
    }
    multifd_stubs_set_cap(MIGRATION_CAPABILITY_MULTIFD, false);
}

/* The destination stops waiting when the source closes the main stream. */
static void test_multifd_recv_source_gone(void)
{
    uint8_t uuid[MULTIFD_UUID_LEN] = "0123456789abcdef";
    g_autoptr(GError) err = NULL;
    int peer;

    multifd_stubs_set_cap(MIGRATION_CAPABILITY_MULTIFD, true);
    multifd_stubs_params()->multifd_channels = 2;
    multifd_recv_reset();
    MigChannel *main_ch = mfd_channel(&peer);
    close(peer);
    g_assert_false(multifd_recv_setup(uuid, 2, MULTIFD_COMPRESSION_NONE, main_ch, &err));
    g_assert_nonnull(strstr(err->message, "closed the main stream before its channels"));
    multifd_recv_cleanup();
    mig_channel_free(main_ch);
    multifd_stubs_set_cap(MIGRATION_CAPABILITY_MULTIFD, false);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    ram_mig_init();
    g_assert_nonnull(ram_ops);

    g_test_add_func("/ram/roundtrip", test_ram_roundtrip);
    g_test_add_func("/ram/untouched-not-sent", test_ram_untouched_not_sent);
    g_test_add_func("/ram/vmm-dirty-resent", test_ram_vmm_dirty_resent);
    g_test_add_func("/ram/kvm-dirty-log", test_ram_kvm_dirty_log);
    g_test_add_func("/ram/rate-limit", test_ram_rate_limit);
    g_test_add_func("/ram/load/checks", test_ram_load_checks);
    g_test_add_func("/ram/load/block-list", test_ram_load_block_list);
    g_test_add_func("/ram/load/truncated", test_ram_load_truncated);
    g_test_add_func("/ram/multifd/recv-filing", test_multifd_recv_filing);
    g_test_add_func("/ram/multifd/recv-source-gone", test_multifd_recv_source_gone);
    if (g_test_perf()) {
        g_test_add_func("/ram/bench/encode-512m", test_ram_bench_encode);
        g_test_add_func("/ram/bench/idle-1g", test_ram_bench_idle);
    }
    return g_test_run();
}
