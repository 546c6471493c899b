/*
 * The KVM VM: /dev/kvm, the VM file descriptor, its in-kernel irqchip and
 * PIT, memory slots and interrupt lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "accel/kvm.h"

KVMState *kvm_state;

/* Where KVM may put its real-mode TSS and identity page table (Intel). */
#define KVM_TSS_ADDR          0xfffbd000
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000

bool kvm_available(char **why)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        if (why) {
            *why = g_strdup_printf("cannot open /dev/kvm: %s", g_strerror(errno));
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
    int r = ioctl(cpu->fd, request, arg);
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
    s->fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (s->fd < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "Could not access KVM kernel module: %s", g_strerror(errno));
        g_free(s);
        return false;
    }
    kvm_state = s;

    int version = ioctl(s->fd, KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "KVM API version %d, Ferry needs %d", version, KVM_API_VERSION);
        goto fail;
    }
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

#define KVM_MAX_TRACKED_SLOTS 32

static KVMSlot kvm_slots[KVM_MAX_TRACKED_SLOTS];
static int kvm_nr_slots;

int kvm_slot_count(void)
{
    return kvm_nr_slots;
}

const KVMSlot *kvm_slot_get(int index)
{
    return index >= 0 && index < kvm_nr_slots ? &kvm_slots[index] : NULL;
}

static bool kvm_slot_commit(KVMSlot *s, GError **errp)
{
    struct kvm_userspace_memory_region region = {
        .slot = (uint32_t)s->slot,
        .flags = s->flags,
        .guest_phys_addr = s->gpa,
        .memory_size = s->size,
        .userspace_addr = (uintptr_t)s->host,
    };
    if (ioctl(kvm_state->vmfd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "KVM_SET_USER_MEMORY_REGION (slot %d, gpa 0x%" G_GINT64_MODIFIER "x): %s",
                    s->slot, s->gpa, g_strerror(errno));
        return false;
    }
    return true;
}

bool kvm_slot_set_dirty_logging(int index, bool on, GError **errp)
{
    KVMSlot *s = &kvm_slots[index];
    uint32_t old = s->flags;
    s->flags = on ? (old | KVM_MEM_LOG_DIRTY_PAGES) : (old & ~KVM_MEM_LOG_DIRTY_PAGES);
    if (s->flags == old) {
        return true;
    }
    if (!kvm_slot_commit(s, errp)) {
        s->flags = old;
        return false;
    }
    return true;
}

bool kvm_slot_get_dirty_log(int index, unsigned long *bitmap, GError **errp)
{
    struct kvm_dirty_log log = { .slot = (uint32_t)kvm_slots[index].slot };
    log.dirty_bitmap = bitmap;
    if (ioctl(kvm_state->vmfd, KVM_GET_DIRTY_LOG, &log) < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "KVM_GET_DIRTY_LOG (slot %d): %s", kvm_slots[index].slot, g_strerror(errno));
        return false;
    }
    return true;
}

int kvm_add_memory_slot(uint64_t gpa, uint64_t size, void *host, GError **errp)
{
    static int next_slot;
    struct kvm_userspace_memory_region region = {
        .slot = (uint32_t)next_slot,
        .flags = 0,
        .guest_phys_addr = gpa,
        .memory_size = size,
        .userspace_addr = (uintptr_t)host,
    };
    if (next_slot >= kvm_state->nr_slots) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "out of KVM memory slots");
        return -1;
    }
    if (ioctl(kvm_state->vmfd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "KVM_SET_USER_MEMORY_REGION (gpa 0x%" G_GINT64_MODIFIER "x, "
                    "size 0x%" G_GINT64_MODIFIER "x): %s", gpa, size, g_strerror(errno));
        return -1;
    }
    if (kvm_nr_slots < KVM_MAX_TRACKED_SLOTS) {
        kvm_slots[kvm_nr_slots++] = (KVMSlot) {
            .slot = next_slot, .gpa = gpa, .size = size, .host = host, .flags = 0,
        };
    }
    return next_slot++;
}

void kvm_set_irq(int irq, int level)
{
    struct kvm_irq_level event = { .irq = (uint32_t)irq, .level = (uint32_t)level };
    if (ioctl(kvm_state->vmfd, KVM_IRQ_LINE, &event) < 0) {
        g_warning("KVM_IRQ_LINE %d: %s", irq, g_strerror(errno));
    }
}
