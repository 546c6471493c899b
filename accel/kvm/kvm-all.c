/*
 * The KVM VM: /dev/kvm, the VM file descriptor, its in-kernel irqchip and
 * PIT, memory slots and interrupt lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "accel/kvm.h"
#include "system/accel.h"

KVMState *kvm_state;

/* Where KVM may put its real-mode TSS and identity page table (Intel). */
#define KVM_TSS_ADDR          0xfffbd000
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000

/*
 * Open /dev/kvm, making sure it is KVM: a regular file of that name (a
 * probe that created it, on a host without KVM) must not pass for one.
 */
static int kvm_open_device(GError **errp)
{
    struct stat st;
    if (stat("/dev/kvm", &st) < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "/dev/kvm: %s (this host does not expose KVM)", g_strerror(errno));
        return -1;
    }
    if (!S_ISCHR(st.st_mode)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "/dev/kvm is not a KVM device (it is not a character device)");
        return -1;
    }
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "Could not access KVM kernel module: %s", g_strerror(errno));
        return -1;
    }
    int version = ioctl(fd, KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    version < 0 ? "/dev/kvm does not answer KVM_GET_API_VERSION: "
                                  "it is not a KVM device"
                                : "KVM API version %d, Ferry needs %d",
                    version, KVM_API_VERSION);
        close(fd);
        return -1;
    }
    return fd;
}

bool kvm_available(char **why)
{
    g_autoptr(GError) err = NULL;
    int fd = kvm_open_device(&err);
    if (fd < 0) {
        if (why) {
            *why = g_strdup(err->message);
        }
        return false;
    }
    close(fd);
    return true;
}

int kvm_check_extension(unsigned int cap)
{
    int r = ioctl(kvm_state->vmfd >= 0 ? kvm_state->vmfd : kvm_state->fd,
                  KVM_CHECK_EXTENSION, cap);
    return r < 0 ? 0 : r;
}

int kvm_vm_ioctl(unsigned long request, void *arg)
{
    int r = ioctl(kvm_state->vmfd, request, arg);
    return r < 0 ? -errno : r;
}

int kvm_vcpu_ioctl(CPUState *cpu, unsigned long request, void *arg)
{
    int r = ioctl(cpu->accel->fd, request, arg);
    return r < 0 ? -errno : r;
}

static bool kvm_require_cap(unsigned int cap, const char *name, GError **errp)
{
    if (!kvm_check_extension(cap)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "KVM lacks %s, which Ferry needs", name);
        return false;
    }
    return true;
}

static struct kvm_cpuid2 *kvm_get_supported_cpuid(GError **errp)
{
    for (int nent = 64; nent <= 4096; nent *= 2) {
        struct kvm_cpuid2 *c = g_malloc0(sizeof(*c) + nent * sizeof(c->entries[0]));
        c->nent = nent;
        if (ioctl(kvm_state->fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
            return c;
        }
        int err = errno;
        g_free(c);
        if (err != E2BIG) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED,
                        "KVM_GET_SUPPORTED_CPUID: %s", g_strerror(err));
            return NULL;
        }
    }
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "KVM_GET_SUPPORTED_CPUID: too many entries");
    return NULL;
}

bool kvm_init(GError **errp)
{
    KVMState *s = g_new0(KVMState, 1);
    s->vmfd = -1;
    s->fd = kvm_open_device(errp);
    if (s->fd < 0) {
        g_free(s);
        return false;
    }
    kvm_state = s;

    do {
        s->vmfd = ioctl(s->fd, KVM_CREATE_VM, 0);
    } while (s->vmfd < 0 && errno == EINTR);
    if (s->vmfd < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "KVM_CREATE_VM: %s", g_strerror(errno));
        goto fail;
    }
    if (!kvm_require_cap(KVM_CAP_IRQCHIP, "an in-kernel irqchip", errp) ||
        !kvm_require_cap(KVM_CAP_PIT2, "an in-kernel PIT", errp) ||
        !kvm_require_cap(KVM_CAP_USER_MEMORY, "user memory slots", errp) ||
        !kvm_require_cap(KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT", errp)) {
        goto fail;
    }
    s->nr_slots = kvm_check_extension(KVM_CAP_NR_MEMSLOTS);
    s->vcpu_mmap_size = ioctl(s->fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (s->vcpu_mmap_size <= 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "KVM_GET_VCPU_MMAP_SIZE failed");
        goto fail;
    }
    /* Only VMX needs these; elsewhere failure is harmless. */
    ioctl(s->vmfd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR);
    uint64_t idmap = KVM_IDENTITY_MAP_ADDR;
    ioctl(s->vmfd, KVM_SET_IDENTITY_MAP_ADDR, &idmap);

    if (ioctl(s->vmfd, KVM_CREATE_IRQCHIP, 0) < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "KVM_CREATE_IRQCHIP: %s", g_strerror(errno));
        goto fail;
    }
    struct kvm_pit_config pit = { .flags = 0 };
    if (ioctl(s->vmfd, KVM_CREATE_PIT2, &pit) < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "KVM_CREATE_PIT2: %s", g_strerror(errno));
        goto fail;
    }
    s->supported_cpuid = kvm_get_supported_cpuid(errp);
    if (!s->supported_cpuid) {
        goto fail;
    }
    return true;

fail:
    if (s->vmfd >= 0) {
        close(s->vmfd);
    }
    close(s->fd);
    g_free(s);
    kvm_state = NULL;
    return false;
}

/* The slot's current flags (dirty logging), indexed like the generic slots. */
static uint32_t kvm_slot_flags[64];

static bool kvm_slot_commit(int slot, uint32_t flags, GError **errp)
{
    const AccelSlot *s = accel_slot_get(slot);
    struct kvm_userspace_memory_region region = {
        .slot = (uint32_t)slot,
        .flags = flags,
        .guest_phys_addr = s->gpa,
        .memory_size = s->size,
        .userspace_addr = (uintptr_t)s->host,
    };
    if (ioctl(kvm_state->vmfd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "KVM_SET_USER_MEMORY_REGION (slot %d, gpa 0x%" G_GINT64_MODIFIER "x): %s",
                    slot, s->gpa, g_strerror(errno));
        return false;
    }
    kvm_slot_flags[slot] = flags;
    return true;
}

static bool kvm_dirty_log_enable(int slot, bool on, GError **errp)
{
    uint32_t flags = kvm_slot_flags[slot];
    flags = on ? (flags | KVM_MEM_LOG_DIRTY_PAGES) : (flags & ~KVM_MEM_LOG_DIRTY_PAGES);
    return flags == kvm_slot_flags[slot] || kvm_slot_commit(slot, flags, errp);
}

static bool kvm_dirty_log_fetch(int slot, unsigned long *bitmap, GError **errp)
{
    struct kvm_dirty_log log = { .slot = (uint32_t)slot };
    log.dirty_bitmap = bitmap;
    if (ioctl(kvm_state->vmfd, KVM_GET_DIRTY_LOG, &log) < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "KVM_GET_DIRTY_LOG (slot %d): %s", slot, g_strerror(errno));
        return false;
    }
    return true;
}

static bool kvm_map_ram(int slot, uint64_t gpa, uint64_t size, void *host, GError **errp)
{
    struct kvm_userspace_memory_region region = {
        .slot = (uint32_t)slot,
        .flags = 0,
        .guest_phys_addr = gpa,
        .memory_size = size,
        .userspace_addr = (uintptr_t)host,
    };
    if (slot >= kvm_state->nr_slots || slot >= (int)G_N_ELEMENTS(kvm_slot_flags)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "out of KVM memory slots");
        return false;
    }
    if (ioctl(kvm_state->vmfd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "KVM_SET_USER_MEMORY_REGION (gpa 0x%" G_GINT64_MODIFIER "x, "
                    "size 0x%" G_GINT64_MODIFIER "x): %s", gpa, size, g_strerror(errno));
        return false;
    }
    kvm_slot_flags[slot] = 0;
    return true;
}

static void kvm_set_irq(int irq, int level)
{
    struct kvm_irq_level event = { .irq = (uint32_t)irq, .level = (uint32_t)level };
    if (ioctl(kvm_state->vmfd, KVM_IRQ_LINE, &event) < 0) {
        g_warning("KVM_IRQ_LINE %d: %s", irq, g_strerror(errno));
    }
}

static bool kvm_check_cpu_model(const char *model, GError **errp)
{
    if (model && strcmp(model, "host") != 0 && strcmp(model, "max") != 0 &&
        strcmp(model, "qemu64") != 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "-cpu %s: KVM offers 'host' and 'max' (the host's CPU) and 'qemu64' (the "
                    "software CPU's features)", model);
        return false;
    }
    return true;
}

static bool kvm_accel_init(const AccelCPUConfig *cfg, GError **errp)
{
    if (!kvm_init(errp)) {
        return false;
    }
    kvm_state->portable = cfg->model && strcmp(cfg->model, "qemu64") == 0;
    return true;
}

static void kvm_cpu_signature(uint32_t *eax, uint32_t *edx)
{
    const struct kvm_cpuid2 *cpuid = kvm_state->supported_cpuid;

    *eax = *edx = 0;
    for (uint32_t i = 0; i < cpuid->nent; i++) {
        if (cpuid->entries[i].function == 1) {
            *eax = cpuid->entries[i].eax;
            *edx = cpuid->entries[i].edx;
        }
    }
}

static bool kvm_irqchip_init(GError **errp)
{
    return kvm_irqchip_capture_reset(errp);
}

static bool kvm_vcpu_init(CPUState *cpu, GError **errp)
{
    return kvm_vcpu_create(cpu, cpus_count(), errp);
}

const AccelOps accel_kvm_ops = {
    .name = "kvm",
    .runs_guest_code = true,
    .available = kvm_available,
    .check_cpu_model = kvm_check_cpu_model,
    .init = kvm_accel_init,
    .map_ram = kvm_map_ram,
    .dirty_log_enable = kvm_dirty_log_enable,
    .dirty_log_fetch = kvm_dirty_log_fetch,
    .vcpu_init = kvm_vcpu_init,
    .vcpu_exec = kvm_vcpu_exec,
    .vcpu_park = kvm_vcpu_park,
    .vcpu_kick = kvm_vcpu_kick,
    .vcpu_reset = kvm_vcpu_reset,
    .vcpu_get_state = kvm_vcpu_get_state,
    .vcpu_set_state = kvm_vcpu_set_state,
    .irqchip_init = kvm_irqchip_init,
    .irqchip_reset = kvm_irqchip_reset,
    .register_vmstate = kvm_irqchip_register_vmstate,
    .set_irq = kvm_set_irq,
    .cpu_signature = kvm_cpu_signature,
    .guest_abi = kvm_guest_abi,
    .adopt_guest_abi = kvm_adopt_guest_abi,
};
