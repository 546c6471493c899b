/*
 * CPUID for -cpu host: what KVM supports, with the topology and APIC ids
 * of this machine filled in.
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
    }
    return c;
}
