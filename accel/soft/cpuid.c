/*
 * CPUID: what this interpreter implements, and nothing more. A guest that
 * trusts these bits never meets an unimplemented instruction.
 */
#include "soft-internal.h"

#define MAX_BASIC_LEAF  0x16
#define MAX_EXT_LEAF    0x80000008u
#define HV_LEAF         0x40000000u

/* Leaf 1 EDX. */
#define F1D_FPU     (1u << 0)
#define F1D_DE      (1u << 2)
#define F1D_PSE     (1u << 3)
#define F1D_TSC     (1u << 4)
#define F1D_MSR     (1u << 5)
#define F1D_PAE     (1u << 6)
#define F1D_CX8     (1u << 8)
#define F1D_APIC    (1u << 9)
#define F1D_SEP     (1u << 11)
#define F1D_MTRR    (1u << 12)
#define F1D_PGE     (1u << 13)
#define F1D_CMOV    (1u << 15)
#define F1D_PAT     (1u << 16)
#define F1D_PSE36   (1u << 17)
#define F1D_CLFSH   (1u << 19)
#define F1D_FXSR    (1u << 24)
#define F1D_SSE     (1u << 25)
#define F1D_SSE2    (1u << 26)
#define F1D_HTT     (1u << 28)
/* Leaf 1 ECX. */
#define F1C_CX16    (1u << 13)
#define F1C_POPCNT  (1u << 23)
#define F1C_XSAVE   (1u << 26)
#define F1C_OSXSAVE (1u << 27)
#define F1C_HV      (1u << 31)
/* Leaf 0x80000001. */
#define E1C_LAHF    (1u << 0)
#define E1D_SYSCALL (1u << 11)
#define E1D_NX      (1u << 20)
#define E1D_1G      (1u << 26)
#define E1D_RDTSCP  (1u << 27)
#define E1D_LM      (1u << 29)
/* Leaf 7 EBX and ECX. */
#define F7B_FCS_FDS (1u << 13)      /* FPU CS and DS deprecated (always 0) */
#define F7C_RDPID   (1u << 22)

static void str4(uint32_t *out, const char *s)
{
    memcpy(out, s, 4);
}

static unsigned bits_for(unsigned n)
{
    unsigned b = 0;

    while ((1u << b) < n) {
        b++;
    }
    return b;
}

#define CPUID_SIGNATURE 0x000006f1     /* family 6, model 15, stepping 1 */
#define CPUID_1_EDX (F1D_FPU | F1D_DE | F1D_PSE | F1D_TSC | F1D_MSR | F1D_PAE | \
                     F1D_CX8 | F1D_APIC | F1D_SEP | F1D_MTRR | F1D_PGE | F1D_CMOV | \
                     F1D_PAT | F1D_PSE36 | F1D_CLFSH | F1D_FXSR | F1D_SSE | F1D_SSE2)

void soft_cpu_signature(uint32_t *eax, uint32_t *edx)
{
    *eax = CPUID_SIGNATURE;
    *edx = CPUID_1_EDX;
}

static void soft_cpuid_core(SoftCPU *cpu, uint32_t leaf, uint32_t sub, uint32_t out[4]);

void soft_cpuid(SoftCPU *cpu, uint32_t leaf, uint32_t sub, uint32_t out[4])
{
    soft_cpuid_core(cpu, leaf, sub, out);
    if (cpu->hooks->cpuid_filter) {
        cpu->hooks->cpuid_filter(cpu->opaque, leaf, sub, out);
    }
}

void soft_cpu_cpuid(SoftCPU *cpu, uint32_t leaf, uint32_t sub, uint32_t out[4])
{
    soft_cpuid(cpu, leaf, sub, out);
}

static void soft_cpuid_core(SoftCPU *cpu, uint32_t leaf, uint32_t sub, uint32_t out[4])
{
    static const char brand[48] = "Ferry software x86-64 CPU";
    unsigned n = cpu->nr_cpus;
    uint32_t id = cpu->cpuid_index;

    memset(out, 0, 4 * sizeof(uint32_t));
    switch (leaf) {
    case 0:
        out[0] = MAX_BASIC_LEAF;
        str4(&out[1], "Genu");
        str4(&out[3], "ineI");
        str4(&out[2], "ntel");
        return;
    case 1:
        out[0] = CPUID_SIGNATURE;
        out[1] = (id << 24) | ((n > 255 ? 255 : n) << 16) | (8 << 8);
        out[2] = F1C_CX16 | F1C_POPCNT | F1C_XSAVE | F1C_HV;
        if (cpu->cr4 & X86_CR4_OSXSAVE) {
            out[2] |= F1C_OSXSAVE;
        }
        out[3] = CPUID_1_EDX;
        if (n > 1) {
            out[3] |= F1D_HTT;
        }
        return;
    case 2:
        out[0] = 1;                         /* one call, no descriptors */
        return;
    case 7:
        if (sub == 0) {
            out[1] = F7B_FCS_FDS;
            out[2] = F7C_RDPID;
        }
        return;
    case 0xb:
        /* One thread per core, nr_cpus cores in one package. */
        out[3] = id;
        if (sub == 0) {
            out[0] = 0;
            out[1] = 1;
            out[2] = (1u << 8) | sub;
        } else if (sub == 1) {
            out[0] = bits_for(n);
            out[1] = n;
            out[2] = (2u << 8) | sub;
        } else {
            out[2] = sub;
        }
        return;
    case 0xd:
        /* XSAVE: x87 and SSE in the standard 576-byte layout, nothing more. */
        if (sub == 0) {
            out[0] = 3;
            out[1] = 576;
            out[2] = 576;
        }
        /* Sub-leaf 1 (XSAVEOPT/XSAVEC/XSAVES) and components >= 2: none. */
        return;
    case 0x15: {
        /* TSC = crystal * EBX / EAX; the APIC timer counts the crystal. */
        uint64_t tsc = cpu->hooks->tsc_hz;
        uint64_t crystal = cpu->hooks->crystal_hz ? cpu->hooks->crystal_hz : tsc;
        uint64_t a = tsc, b = crystal;

        while (b) {                         /* the ratio in lowest terms */
            uint64_t t = a % b;
            a = b;
            b = t;
        }
        if (tsc && crystal <= UINT32_MAX && tsc / a <= UINT32_MAX) {
            out[0] = (uint32_t)(crystal / a);
            out[1] = (uint32_t)(tsc / a);
            out[2] = (uint32_t)crystal;
        }
        return;
    }
    case 0x16:
        /* Base, maximum and bus frequency in MHz. */
        out[0] = out[1] = out[2] = (uint32_t)(cpu->hooks->tsc_hz / 1000000);
        return;
    case HV_LEAF:
        out[0] = HV_LEAF + 1;
        str4(&out[1], "Ferr");
        str4(&out[2], "ySof");
        str4(&out[3], "tCPU");
        return;
    case HV_LEAF + 1:
        return;
    case 0x80000000u:
        out[0] = MAX_EXT_LEAF;
        return;
    case 0x80000001u:
        out[2] = E1C_LAHF;
        out[3] = E1D_SYSCALL | E1D_NX | E1D_1G | E1D_RDTSCP | E1D_LM;
        return;
    case 0x80000002u: case 0x80000003u: case 0x80000004u:
        memcpy(out, brand + (leaf - 0x80000002u) * 16, 16);
        return;
    case 0x80000007u:
        out[3] = 1u << 8;                   /* the host's TSC: invariant */
        return;
    case 0x80000008u:
        out[0] = 40 | (48 << 8);
        return;
    default:
        return;
    }
}
