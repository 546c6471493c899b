/*
 * CPUID for -cpu host: what KVM supports, with the topology and APIC ids
 * of this machine filled in. For -cpu qemu64 (kvm_state->portable), cut
 * down to the software CPU's features (accel/soft/cpuid.c) and without
 * KVM's paravirtual leaves, so that the guest can move to tcg and back.
 * And the guest-visible CPU a migration stream carries (AccelGuestABI).
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "accel/kvm.h"

#define MSR_IA32_ARCH_CAPABILITIES 0x10a

static bool kvm_msr_feature_supported(uint32_t index)
{
    struct kvm_msr_list probe = { .nmsrs = 0 };
    /* The first call only reports how many indexes there are. */
    if (ioctl(kvm_state->fd, KVM_GET_MSR_FEATURE_INDEX_LIST, &probe) < 0 && errno != E2BIG) {
        return false;
    }
    g_autofree struct kvm_msr_list *list =
        g_malloc0(sizeof(*list) + probe.nmsrs * sizeof(list->indices[0]));
    list->nmsrs = probe.nmsrs;
    if (ioctl(kvm_state->fd, KVM_GET_MSR_FEATURE_INDEX_LIST, list) < 0) {
        return false;
    }
    for (uint32_t i = 0; i < list->nmsrs; i++) {
        if (list->indices[i] == index) {
            return true;
        }
    }
    return false;
}

static unsigned bits_for_count(int n)
{
    unsigned bits = 0;
    while ((1 << bits) < n) {
        bits++;
    }
    return bits;
}

/*
 * The software CPU's features (accel/soft/cpuid.c): leaf 1, leaf 7.0,
 * 0x80000001, XSAVE with x87 and SSE only.
 */
#define PORTABLE_1_ECX      ((1u << 13) | (1u << 23) | (1u << 26) | (1u << 27) | (1u << 31))
#define PORTABLE_1_EDX      0x070bbb7du     /* fpu de pse tsc msr pae cx8 apic sep mtrr pge \
                                               cmov pat pse36 clflush fxsr sse sse2 */
#define PORTABLE_1_EDX_HTT  (1u << 28)
#define PORTABLE_7_EBX      (1u << 13)
#define PORTABLE_7_ECX      (1u << 22)
#define PORTABLE_E1_ECX     (1u << 0)
#define PORTABLE_E1_EDX     ((1u << 11) | (1u << 20) | (1u << 26) | (1u << 27) | (1u << 29))
#define PORTABLE_XCR0       3u
#define PORTABLE_XSAVE_SIZE 576u

static void kvm_cpuid_make_portable(struct kvm_cpuid_entry2 *e)
{
    if (e->function >= 0x40000000u && e->function <= 0x400000ffu) {
        /* No hypervisor leaves: no "KVMKVMKVM", no kvmclock. */
        e->eax = e->ebx = e->ecx = e->edx = 0;
        return;
    }
    switch (e->function) {
    case 1:
        e->ecx &= PORTABLE_1_ECX;
        e->edx &= PORTABLE_1_EDX | PORTABLE_1_EDX_HTT;
        break;
    case 7:
        if (e->index == 0) {
            e->eax = 0;
            e->ebx &= PORTABLE_7_EBX;
            e->ecx &= PORTABLE_7_ECX;
            e->edx = 0;
        } else {
            e->eax = e->ebx = e->ecx = e->edx = 0;
        }
        break;
    case 0xd:
        if (e->index == 0) {
            e->eax &= PORTABLE_XCR0;
            e->ebx = e->ecx = PORTABLE_XSAVE_SIZE;
            e->edx = 0;
        } else {
            e->eax = e->ebx = e->ecx = e->edx = 0;
        }
        break;
    case 0x80000001u:
        e->ecx &= PORTABLE_E1_ECX;
        e->edx &= PORTABLE_E1_EDX;
        break;
    default:
        break;
    }
}

struct kvm_cpuid2 *kvm_cpuid_for_vcpu(int index, int nr_cpus, GError **errp)
{
    static int arch_caps_ok = -1;
    const struct kvm_cpuid2 *sup = kvm_state->supported_cpuid;
    size_t bytes = sizeof(*sup) + sup->nent * sizeof(sup->entries[0]);
    struct kvm_cpuid2 *c = g_malloc(bytes);
    unsigned core_bits = bits_for_count(nr_cpus);

    memcpy(c, sup, bytes);
    if (arch_caps_ok < 0) {
        arch_caps_ok = kvm_msr_feature_supported(MSR_IA32_ARCH_CAPABILITIES);
    }

    for (uint32_t i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        switch (e->function) {
        case 1:
            /* APIC id and logical processor count. */
            e->ebx = (e->ebx & 0x0000ffff) | ((uint32_t)index << 24) |
                     ((uint32_t)(nr_cpus > 255 ? 255 : nr_cpus) << 16);
            if (nr_cpus > 1) {
                e->edx |= 1u << 28;     /* HTT: the count field is valid */
            }
            e->ecx |= 1u << 31;         /* running under a hypervisor */
            break;
        case 4:
            /* One package: cores per package - 1 in EAX[31:26]. */
            e->eax = (e->eax & 0x03ffffff) | ((uint32_t)(nr_cpus - 1) << 26);
            e->eax &= ~(0xfffu << 14);  /* one thread shares each cache level */
            break;
        case 7:
            if (e->index == 0 && !arch_caps_ok) {
                e->edx &= ~(1u << 29);  /* KVM refuses the MSR: don't advertise it */
            }
            break;
        case 0xb:
        case 0x1f:
            /* One thread per core, all cores in one package. */
            e->edx = (uint32_t)index;
            if (e->index == 0) {
                e->eax = 0;
                e->ebx = 1;
                e->ecx = (1u << 8) | 0;
            } else if (e->index == 1) {
                e->eax = core_bits;
                e->ebx = (uint32_t)nr_cpus;
                e->ecx = (2u << 8) | 1;
            } else {
                e->eax = 0;
                e->ebx = 0;
                e->ecx = e->index;
            }
            break;
        default:
            break;
        }
        if (kvm_state->portable) {
            kvm_cpuid_make_portable(e);
        }
    }
    return c;
}

/* ---- What the guest sees, for the migration stream ---- */

static const struct kvm_cpuid_entry2 *kvm_cpuid_find(const struct kvm_cpuid2 *c,
                                                     uint32_t function, uint32_t index)
{
    for (uint32_t i = 0; i < c->nent; i++) {
        if (c->entries[i].function == function &&
            (c->entries[i].index == index || !(c->entries[i].flags &
                                               KVM_CPUID_FLAG_SIGNIFCANT_INDEX))) {
            return &c->entries[i];
        }
    }
    return NULL;
}

#define KVM_TSC_TOLERANCE_PPM   250

/* KVM_FEATURE_CLOCKSOURCE and KVM_FEATURE_CLOCKSOURCE2 in leaf 0x40000001 EAX. */
#define KVM_FEATURES_KVMCLOCK   ((1u << 0) | (1u << 3))

void kvm_guest_abi(AccelGuestABI *abi)
{
    g_autoptr(GError) err = NULL;
    g_autofree struct kvm_cpuid2 *c = kvm_cpuid_for_vcpu(0, MAX(cpus_count(), 1), &err);
    static const struct { uint32_t function, index; int reg; } where[ACCEL_CPUID_WORDS] = {
        [ACCEL_CPUID_1_ECX] = { 1, 0, 2 }, [ACCEL_CPUID_1_EDX] = { 1, 0, 3 },
        [ACCEL_CPUID_7_EBX] = { 7, 0, 1 }, [ACCEL_CPUID_7_ECX] = { 7, 0, 2 },
        [ACCEL_CPUID_7_EDX] = { 7, 0, 3 }, [ACCEL_CPUID_80000001_ECX] = { 0x80000001u, 0, 2 },
        [ACCEL_CPUID_80000001_EDX] = { 0x80000001u, 0, 3 }, [ACCEL_CPUID_D_EAX] = { 0xd, 0, 0 },
    };

    memset(abi, 0, sizeof(*abi));
    for (int w = 0; c && w < ACCEL_CPUID_WORDS; w++) {
        const struct kvm_cpuid_entry2 *e = kvm_cpuid_find(c, where[w].function, where[w].index);
        if (e) {
            const uint32_t regs[4] = { e->eax, e->ebx, e->ecx, e->edx };
            abi->cpuid[w] = regs[where[w].reg];
        }
    }
    /*
     * No vCPU ioctl here: the source's vCPUs run (KVM_RUN holds each
     * vCPU's lock). The TSC rate was read at creation; kvmclock counts as
     * soon as the CPU offers it, as the guest may turn it on at any time.
     */
    abi->tsc_khz = kvm_state->tsc_khz;
    const struct kvm_cpuid_entry2 *pv = c ? kvm_cpuid_find(c, 0x40000001u, 0) : NULL;
    abi->kvmclock = pv && (pv->eax & KVM_FEATURES_KVMCLOCK);
}

/*
 * The guest's TSC keeps the source's rate: KVM scales it where it can
 * (KVM_CAP_TSC_CONTROL); without scaling a difference within KVM's own
 * tolerance passes, anything more is refused. (CPUID: savevm.c checked
 * this side offers every feature the source did; KVM's table is set.)
 */
bool kvm_adopt_guest_abi(const AccelGuestABI *src, GError **errp)
{
    CPUState *cpu0 = cpu_get(0);
    if (!src->tsc_khz || !cpu0 || !kvm_check_extension(KVM_CAP_GET_TSC_KHZ)) {
        return true;
    }
    int here = kvm_vcpu_ioctl(cpu0, KVM_GET_TSC_KHZ, NULL);
    if (here <= 0 || (uint32_t)here == src->tsc_khz) {
        return true;
    }
    if (kvm_check_extension(KVM_CAP_TSC_CONTROL)) {
        for (int i = 0; i < cpus_count(); i++) {
            int r = kvm_vcpu_ioctl(cpu_get(i), KVM_SET_TSC_KHZ,
                                   (void *)(uintptr_t)src->tsc_khz);
            if (r < 0) {
                g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "TSC rate: the source "
                            "ran at %u kHz, this VM at %d kHz, and KVM_SET_TSC_KHZ failed: %s",
                            src->tsc_khz, here, g_strerror(-r));
                return false;
            }
        }
        kvm_state->tsc_khz = src->tsc_khz;
        return true;
    }
    uint64_t diff = (uint32_t)here > src->tsc_khz ? (uint32_t)here - src->tsc_khz
                                                  : src->tsc_khz - (uint32_t)here;
    if (diff * 1000000 <= (uint64_t)src->tsc_khz * KVM_TSC_TOLERANCE_PPM) {
        return true;
    }
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "TSC rate: the source ran at %u "
                "kHz, this VM at %d kHz, and KVM cannot scale its TSC on this host (no "
                "KVM_CAP_TSC_CONTROL)", src->tsc_khz, here);
    return false;
}
