/*
 * The fuzz targets' destination machine (see fuzz-machine.h) and the
 * stand-ins for the machine functions the migration files and device
 * models call. Nothing here opens /dev/kvm.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <gio/gio.h>

#include "accel/kvm.h"
#include "system/accel.h"
#include "chardev/char.h"
#include "hw/virtio/virtio-mmio.h"
#include "hw/x86/pm.h"
#include "migration/channel.h"
#include "migration/global-state.h"
#include "migration/migration.h"
#include "migration/ram.h"
#include "migration/register.h"
#include "migration/savevm.h"
#include "net/slirp.h"
#include "system/cpus.h"
#include "system/ioport.h"
#include "system/main-loop.h"
#include "system/memory.h"
#include "tests/fuzz/fuzz-machine.h"

/* ------------------------------------------------------------ stand-ins */

int cpus_count(void)
{
    return 1;
}

static int bql_depth;

void bql_lock(void)
{
    g_assert(bql_depth == 0);
    bql_depth++;
}

void bql_unlock(void)
{
    g_assert(bql_depth == 1);
    bql_depth--;
}

bool bql_locked(void)
{
    return bql_depth > 0;
}

void accel_set_irq(int irq, int level)
{
}

/* The fuzzed VM's machine type and accelerator, as its configuration section names them. */
const char *machine_type_name(void)
{
    return "ferry";
}

static const AccelOps fuzz_accel_ops = { .name = "kvm" };

const AccelOps *accel_current(void)
{
    return &fuzz_accel_ops;
}

/* No accelerator slots: RAM dirty tracking sees only the VMM's own writes. */
int accel_slot_count(void)
{
    return 0;
}

const AccelSlot *accel_slot_get(int index)
{
    return NULL;
}

bool accel_slot_set_dirty_logging(int index, bool on, GError **errp)
{
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "no guest RAM slot %d", index);
    return false;
}

bool accel_slot_get_dirty_log(int index, unsigned long *bitmap, GError **errp)
{
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "no guest RAM slot %d", index);
    return false;
}

MigrationStats mig_stats;

bool migration_rate_exceeded(QEMUFile *f)
{
    return false;
}

static RunState fuzz_runstate = RUN_STATE_RUNNING;

RunState runstate_get(void)
{
    return fuzz_runstate;
}

void fuzz_machine_set_runstate(RunState state)
{
    fuzz_runstate = state;
}

void system_shutdown_request(ShutdownCause cause)
{
}

void system_reset_request(ShutdownCause cause)
{
}

bool chardev_attach_frontend(Chardev *chr, const CharFrontendOps *ops, void *opaque,
                             GError **errp)
{
    return true;
}

ssize_t chardev_write(Chardev *chr, const void *buf, size_t len)
{
    return (ssize_t)len;
}

void chardev_accept_input(Chardev *chr)
{
}

/* The NIC has no peer: these are never reached. */
bool net_slirp_attach(NetSlirp *ns, NetSlirpReceive receive, void *opaque, GError **errp)
{
    return true;
}

void net_slirp_send(NetSlirp *ns, const uint8_t *buf, size_t len)
{
}

/* ------------------------------------------------------ the fake vCPU */

static KVMState fuzz_kvm_state = { .fd = -1, .vmfd = -1 };
KVMState *kvm_state = &fuzz_kvm_state;

static AccelCPUState fuzz_cpu_accel = { .fd = -1 };
static CPUState fuzz_cpu = { .index = 0, .accel = &fuzz_cpu_accel };
static FuzzVcpu fuzz_vcpu;
static FuzzVcpu fuzz_vcpu_power_on;

int kvm_check_extension(unsigned int cap)
{
    switch (cap) {
    case KVM_CAP_SREGS2:
    case KVM_CAP_XCRS:
    case KVM_CAP_GET_TSC_KHZ:
    case KVM_CAP_TSC_CONTROL:
        return 1;
    default:
        return 0;       /* KVM_CAP_XSAVE2 among them: a 4 KiB XSAVE area */
    }
}

static uint64_t *fuzz_vcpu_msr(uint32_t index)
{
    FuzzVcpu *v = &fuzz_vcpu;
    for (unsigned i = 0; i < v->nmsrs; i++) {
        if (v->msr_index[i] == index) {
            return &v->msr_value[i];
        }
    }
    if (v->nmsrs == FUZZ_VCPU_MAX_MSRS) {
        return NULL;
    }
    v->msr_index[v->nmsrs] = index;
    v->msr_value[v->nmsrs] = 0;
    return &v->msr_value[v->nmsrs++];
}

/* The neutral vCPU state ("x86-cpu") of the one fake vCPU, as system/cpus.c gives it. */
bool cpu_get_state(int index, X86CPUState *st, GError **errp)
{
    g_assert(index == 0);
    return kvm_vcpu_get_state(&fuzz_cpu, st, errp);
}

bool cpu_set_state(int index, const X86CPUState *st, GError **errp)
{
    g_assert(index == 0);
    return kvm_vcpu_set_state(&fuzz_cpu, st, errp);
}

bool kvm_vcpu_get_state(CPUState *cpu, X86CPUState *st, GError **errp)
{
    return kvm_cpu_get_neutral(cpu, st, errp);
}

bool kvm_vcpu_set_state(CPUState *cpu, const X86CPUState *st, GError **errp)
{
    return kvm_cpu_set_neutral(cpu, cpu->accel->mig, st, errp);
}

/* Any MSR reads (as 0 until written) and takes any value; nothing else is checked. */
int kvm_vcpu_ioctl(CPUState *cpu, unsigned long request, void *arg)
{
    FuzzVcpu *v = &fuzz_vcpu;
    struct kvm_msrs *msrs = arg;
    struct kvm_mp_state *mp = arg;

    g_assert(cpu == &fuzz_cpu);
    switch (request) {
    case KVM_GET_REGS:
        memcpy(arg, &v->regs, sizeof(v->regs));
        return 0;
    case KVM_SET_REGS:
        memcpy(&v->regs, arg, sizeof(v->regs));
        return 0;
    case KVM_GET_SREGS2:
        memcpy(arg, &v->sregs, sizeof(v->sregs));
        return 0;
    case KVM_SET_SREGS2:
        memcpy(&v->sregs, arg, sizeof(v->sregs));
        return 0;
    case KVM_GET_XSAVE:
        memcpy(arg, v->xsave, sizeof(v->xsave));
        return 0;
    case KVM_SET_XSAVE:
        memcpy(v->xsave, arg, sizeof(v->xsave));
        return 0;
    case KVM_GET_XCRS:
        memcpy(arg, &v->xcrs, sizeof(v->xcrs));
        return 0;
    case KVM_SET_XCRS:
        memcpy(&v->xcrs, arg, sizeof(v->xcrs));
        return 0;
    case KVM_GET_DEBUGREGS:
        memcpy(arg, &v->debugregs, sizeof(v->debugregs));
        return 0;
    case KVM_SET_DEBUGREGS:
        memcpy(&v->debugregs, arg, sizeof(v->debugregs));
        return 0;
    case KVM_GET_LAPIC:
        memcpy(arg, &v->lapic, sizeof(v->lapic));
        return 0;
    case KVM_SET_LAPIC:
        memcpy(&v->lapic, arg, sizeof(v->lapic));
        return 0;
    case KVM_GET_VCPU_EVENTS:
        memcpy(arg, &v->events, sizeof(v->events));
        return 0;
    case KVM_SET_VCPU_EVENTS:
        memcpy(&v->events, arg, sizeof(v->events));
        return 0;
    case KVM_GET_MP_STATE:
        *mp = v->mp;
        return 0;
    case KVM_SET_MP_STATE:
        v->mp = *mp;
        return 0;
    case KVM_GET_TSC_KHZ:
        return (int)v->tsc_khz;
    case KVM_SET_TSC_KHZ:
        v->tsc_khz = (uint32_t)(uintptr_t)arg;
        return 0;
    case KVM_GET_MSRS:
    case KVM_SET_MSRS:
        for (uint32_t i = 0; i < msrs->nmsrs; i++) {
            uint64_t *p = fuzz_vcpu_msr(msrs->entries[i].index);
            if (!p) {
                return (int)i;
            }
            if (request == KVM_GET_MSRS) {
                msrs->entries[i].data = *p;
            } else {
                *p = msrs->entries[i].data;
            }
        }
        return (int)msrs->nmsrs;
    default:
        return -ENOTTY;
    }
}

/* A vCPU at reset, as KVM would report it (the values only need to be plausible). */
static void fuzz_vcpu_init(FuzzVcpu *v)
{
    memset(v, 0, sizeof(*v));
    v->regs.rip = 0xfff0;
    v->regs.rflags = 0x2;
    v->regs.rdx = 0x600;
    struct kvm_segment code = { .base = 0xffff0000, .limit = 0xffff, .selector = 0xf000,
                                .type = 11, .present = 1, .s = 1 };
    struct kvm_segment data = { .limit = 0xffff, .type = 3, .present = 1, .s = 1 };
    v->sregs.cs = code;
    v->sregs.ds = v->sregs.es = v->sregs.fs = v->sregs.gs = v->sregs.ss = data;
    v->sregs.tr = (struct kvm_segment) { .limit = 0xffff, .type = 11, .present = 1 };
    v->sregs.ldt = (struct kvm_segment) { .limit = 0xffff, .type = 2, .present = 1 };
    v->sregs.gdt.limit = 0xffff;
    v->sregs.idt.limit = 0xffff;
    v->sregs.cr0 = 0x60000010;
    v->sregs.apic_base = 0xfee00900;
    /* XSAVE: the x87 control word and MXCSR at their reset values. */
    v->xsave[0] = 0x7f;
    v->xsave[1] = 0x03;
    v->xsave[24] = 0x80;
    v->xsave[25] = 0x1f;
    v->xcrs.nr_xcrs = 1;
    v->xcrs.xcrs[0].xcr = 0;
    v->xcrs.xcrs[0].value = 1;
    v->debugregs.dr6 = 0xffff0ff0;
    v->debugregs.dr7 = 0x400;
    v->lapic.regs[0x20 + 3] = 0;            /* APIC ID 0 */
    v->lapic.regs[0x30] = 0x14;             /* version */
    v->lapic.regs[0xf0] = 0xff;             /* spurious vector, APIC disabled */
    v->mp.mp_state = KVM_MP_STATE_RUNNABLE;
    v->tsc_khz = 2000000;
    v->nmsrs = 1;
    v->msr_index[0] = 0x277;                /* PAT */
    v->msr_value[0] = 0x0007040600070406ULL;
}

/* ------------------------------------------------------------- streams */

static int fuzz_memfd(void)
{
    int fd = memfd_create("ferry-fuzz", MFD_CLOEXEC);
    g_assert(fd >= 0);
    return fd;
}

static QEMUFile *fuzz_file_on(int fd, bool output)
{
    g_autoptr(GError) err = NULL;
    MigChannel *ch = mig_channel_new_fd(fd, output ? "fuzz:out" : "fuzz:in", &err);
    if (!ch) {
        g_error("fuzz: %s", err->message);
    }
    return output ? qemu_file_new_output(ch) : qemu_file_new_input(ch);
}

QEMUFile *fuzz_input_file(const uint8_t *data, size_t len)
{
    /* One memfd for every input; each QEMUFile reads a dup of it from offset 0. */
    static int fd = -1;

    if (fd < 0) {
        fd = fuzz_memfd();
    }
    if (ftruncate(fd, 0) < 0 || (len && pwrite(fd, data, len, 0) != (ssize_t)len) ||
        lseek(fd, 0, SEEK_SET) != 0) {
        g_error("fuzz: cannot fill the input memfd: %s", g_strerror(errno));
    }
    int dupfd = dup(fd);
    g_assert(dupfd >= 0);
    return fuzz_file_on(dupfd, false);
}

static int fuzz_output_fd = -1;

QEMUFile *fuzz_output_file(void)
{
    g_assert(fuzz_output_fd < 0);
    fuzz_output_fd = fuzz_memfd();
    int dupfd = dup(fuzz_output_fd);
    g_assert(dupfd >= 0);
    return fuzz_file_on(dupfd, true);
}

GByteArray *fuzz_output_finish(QEMUFile *f)
{
    int fd = fuzz_output_fd;
    g_assert(fd >= 0);
    fuzz_output_fd = -1;
    g_assert(qemu_fclose(f) == 0);
    off_t size = lseek(fd, 0, SEEK_END);
    g_assert(size >= 0);
    GByteArray *out = g_byte_array_sized_new((guint)size);
    g_byte_array_set_size(out, (guint)size);
    if (size && pread(fd, out->data, (size_t)size, 0) != size) {
        g_error("fuzz: cannot read the output memfd back: %s", g_strerror(errno));
    }
    close(fd);
    return out;
}

bool fuzz_machine_load(const uint8_t *data, size_t len, GError **errp)
{
    QEMUFile *f = fuzz_input_file(data, len);
    bool ok = qemu_loadvm_state(f, errp);
    qemu_fclose(f);
    return ok;
}

bool fuzz_verbose(void)
{
    static int verbose = -1;
    if (verbose < 0) {
        const char *v = g_getenv("FUZZ_VERBOSE");
        verbose = v && *v && strcmp(v, "0") != 0;
    }
    return verbose;
}

/* ------------------------------------------------------------- machine */

static FuzzMachine machine;
static bool machine_created;
static const uint8_t fuzz_mac[6] = VIRTIO_NET_DEFAULT_MAC;

/*
 * Put inaccessible pages right before and after the block when nothing
 * else is mapped there, so that a write just outside guest RAM faults.
 */
static bool fuzz_guard_ram(RAMBlock *rb)
{
    const size_t guard = 64 * 1024;
    uint8_t *before = rb->host - guard;
    uint8_t *after = rb->host + rb->max_length;
    void *a = mmap(before, guard, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                   -1, 0);
    if (a == MAP_FAILED || a != before) {
        if (a != MAP_FAILED) {
            munmap(a, guard);
        }
        return false;
    }
    void *b = mmap(after, guard, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                   -1, 0);
    if (b == MAP_FAILED || b != after) {
        if (b != MAP_FAILED) {
            munmap(b, guard);
        }
        munmap(a, guard);
        return false;
    }
    return true;
}

static RAMBlock *fuzz_ram_new(const char *id, uint64_t size)
{
    g_autoptr(GError) err = NULL;
    RAMBlockOptions o = { .id = id, .size = size, .kind = RAM_BACKING_ANON };
    RAMBlock *rb = ramblock_new(&o, &err);
    if (!rb) {
        g_error("fuzz: %s", err->message);
    }
    /* 4 KiB pages: a record must not cost a 2 MiB page fault. */
    madvise(rb->host, rb->max_length, MADV_NOHUGEPAGE);
    return rb;
}

static char *fuzz_disk_image(void)
{
    g_autoptr(GError) err = NULL;
    char *path = NULL;
    int fd = g_file_open_tmp("ferry-fuzz-disk-XXXXXX", &path, &err);
    if (fd < 0) {
        g_error("fuzz: %s", err->message);
    }
    uint8_t sector[512];
    for (unsigned s = 0; s < FUZZ_DISK_SIZE / sizeof(sector); s++) {
        for (unsigned i = 0; i < sizeof(sector); i++) {
            sector[i] = (uint8_t)(s * 7 + i);
        }
        if (write(fd, sector, sizeof(sector)) != (ssize_t)sizeof(sector)) {
            g_error("fuzz: cannot write %s: %s", path, g_strerror(errno));
        }
    }
    close(fd);
    return path;
}

FuzzMachine *fuzz_machine_get(void)
{
    g_autoptr(GError) err = NULL;

    if (machine_created) {
        return &machine;
    }
    machine_created = true;

    machine.ram = fuzz_ram_new("pc.ram", FUZZ_RAM_SIZE);
    machine.ram_guarded = fuzz_guard_ram(machine.ram);
    if (fuzz_verbose()) {
        fprintf(stderr, "fuzz: pc.ram at %p, %s guard pages\n", (void *)machine.ram->host,
                machine.ram_guarded ? "with" : "without");
    }
    guest_ram_map(0, FUZZ_RAM_SIZE, machine.ram, 0);
    machine.extra = fuzz_ram_new("extra.ram", FUZZ_EXTRA_RAM_SIZE);
    g_ptr_array_remove(ramblock_list(), machine.extra);

    fuzz_vcpu_init(&fuzz_vcpu_power_on);
    fuzz_vcpu = fuzz_vcpu_power_on;
    machine.vcpu = &fuzz_vcpu;

    /* In the order the real machine registers them (system/main.c, pc_machine_init). */
    ram_mig_init();
    global_state_register();
    g_autofree char *disk = fuzz_disk_image();
    machine.blk = virtio_blk_new(0, disk, true, "FUZZ-DISK", &err);
    unlink(disk);
    if (!machine.blk) {
        g_error("fuzz: %s", err->message);
    }
    machine.net = virtio_net_new(1, fuzz_mac, NULL, &err);
    if (!machine.net) {
        g_error("fuzz: %s", err->message);
    }
    machine.serial = serial_isa_init(0, FUZZ_COM1, 4, NULL, &err);
    if (!machine.serial) {
        g_error("fuzz: %s", err->message);
    }
    pc_pm_init();
    fuzz_cpu_accel.mig = kvm_cpu_mig_state_new(&fuzz_cpu);
    kvm_cpu_state_register(&fuzz_cpu);

    fuzz_machine_reset();
    return &machine;
}

void fuzz_machine_reset(void)
{
    FuzzMachine *m = &machine;

    g_assert(machine_created);
    serial_reset(m->serial);
    pc_pm_reset();
    virtio_mmio_reset(&m->blk->vdev);
    virtio_mmio_reset(&m->net->vdev);
    /* The NIC takes the source's MAC when it loads; give it its own back. */
    memcpy(m->net->mac, fuzz_mac, sizeof(fuzz_mac));
    memcpy(m->net->vdev.config + VIRTIO_NET_CFG_MAC, fuzz_mac, sizeof(fuzz_mac));
    m->net->vdev.config[VIRTIO_NET_CFG_STATUS] = VIRTIO_NET_S_LINK_UP;
    m->net->vdev.config[VIRTIO_NET_CFG_STATUS + 1] = 0;
    fuzz_vcpu = fuzz_vcpu_power_on;
    fuzz_runstate = RUN_STATE_RUNNING;
    /* Anonymous private memory: dropped pages read as zero again. */
    madvise(m->ram->host, m->ram->max_length, MADV_DONTNEED);
    madvise(m->extra->host, m->extra->max_length, MADV_DONTNEED);
    memset(m->ram->vmm_dirty, 0, (FUZZ_RAM_SIZE / TARGET_PAGE_SIZE + 63) / 64 * sizeof(long));
    memset(m->extra->vmm_dirty, 0,
           (FUZZ_EXTRA_RAM_SIZE / TARGET_PAGE_SIZE + 63) / 64 * sizeof(long));
}

static void fuzz_exercise_virtio(VirtioDevice *vdev)
{
    for (uint64_t off = 0; off < VIRTIO_MMIO_CONFIG; off += 4) {
        io_dispatch_read(IO_SPACE_MMIO, vdev->mmio_base + off, 4);
    }
    for (uint64_t off = 0; off < vdev->config_len; off++) {
        io_dispatch_read(IO_SPACE_MMIO, vdev->mmio_base + VIRTIO_MMIO_CONFIG + off, 1);
    }
    /* The driver kicks every queue: requests and waiting frames meet guest RAM. */
    for (unsigned q = 0; q <= VIRTIO_MAX_QUEUES; q++) {
        io_dispatch_write(IO_SPACE_MMIO, vdev->mmio_base + VIRTIO_MMIO_QUEUE_NOTIFY, q, 4);
    }
}

void fuzz_machine_exercise(void)
{
    FuzzMachine *m = &machine;

    fuzz_exercise_virtio(&m->blk->vdev);
    fuzz_exercise_virtio(&m->net->vdev);
    for (unsigned reg = 0; reg < 8; reg++) {
        io_dispatch_read(IO_SPACE_PIO, FUZZ_COM1 + reg, 1);
    }
    io_dispatch_write(IO_SPACE_PIO, FUZZ_COM1, 'x', 1);     /* THR, or the divisor latch */
    for (unsigned reg = 0; reg < 8; reg++) {
        io_dispatch_read(IO_SPACE_PIO, FUZZ_COM1 + reg, 1);
    }
    for (unsigned off = 0; off < 6; off += 2) {
        io_dispatch_read(IO_SPACE_PIO, PM_BASE + off, 2);
    }
    io_dispatch_read(IO_SPACE_PIO, 0x92, 1);
}
