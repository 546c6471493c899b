/*
 * The guest-visible CPU a migration stream's configuration section
 * carries (include/system/accel.h, AccelGuestABI): which CPUID bits move
 * with CPU state rather than with the model, and the bits' names for the
 * messages that refuse a stream.
 */
#include <string.h>
#include <glib.h>

#include "system/accel.h"

#define CPUID_1_ECX_OSXSAVE     (1u << 27)
#define CPUID_7_ECX_OSPKE       (1u << 4)
/* Not features: "FPU CS/DS deprecated", "FDP on exceptions only" (7.EBX bits 13, 6). */
#define CPUID_7_EBX_FPU_NOTES   ((1u << 13) | (1u << 6))

void accel_guest_abi_mask(AccelGuestABI *abi)
{
    abi->cpuid[ACCEL_CPUID_1_ECX] &= ~CPUID_1_ECX_OSXSAVE;
    abi->cpuid[ACCEL_CPUID_7_ECX] &= ~CPUID_7_ECX_OSPKE;
    abi->cpuid[ACCEL_CPUID_7_EBX] &= ~CPUID_7_EBX_FPU_NOTES;
}

/* Linux's /proc/cpuinfo names where it has one. */
static const char *const cpuid_names[ACCEL_CPUID_WORDS][32] = {
    [ACCEL_CPUID_1_ECX] = {
        "pni", "pclmulqdq", "dtes64", "monitor", "ds_cpl", "vmx", "smx", "est",
        "tm2", "ssse3", "cid", "sdbg", "fma", "cx16", "xtpr", "pdcm",
        NULL, "pcid", "dca", "sse4_1", "sse4_2", "x2apic", "movbe", "popcnt",
        "tsc_deadline_timer", "aes", "xsave", "osxsave", "avx", "f16c", "rdrand", "hypervisor",
    },
    [ACCEL_CPUID_1_EDX] = {
        "fpu", "vme", "de", "pse", "tsc", "msr", "pae", "mce",
        "cx8", "apic", NULL, "sep", "mtrr", "pge", "mca", "cmov",
        "pat", "pse36", "pn", "clflush", NULL, "ds", "acpi", "mmx",
        "fxsr", "sse", "sse2", "ss", "ht", "tm", "ia64", "pbe",
    },
    [ACCEL_CPUID_7_EBX] = {
        "fsgsbase", "tsc_adjust", "sgx", "bmi1", "hle", "avx2", "fdp_excptn_only", "smep",
        "bmi2", "erms", "invpcid", "rtm", "pqm", "fpcsds", "mpx", "rdt_a",
        "avx512f", "avx512dq", "rdseed", "adx", "smap", "avx512ifma", "pcommit", "clflushopt",
        "clwb", "intel_pt", "avx512pf", "avx512er", "avx512cd", "sha_ni", "avx512bw", "avx512vl",
    },
    [ACCEL_CPUID_7_ECX] = {
        "prefetchwt1", "avx512vbmi", "umip", "pku", "ospke", "waitpkg", "avx512_vbmi2", "cet_ss",
        "gfni", "vaes", "vpclmulqdq", "avx512_vnni", "avx512_bitalg", "tme", "avx512_vpopcntdq",
        NULL, "la57", NULL, NULL, NULL, NULL, NULL, "rdpid", "kl",
        "bus_lock_detect", "cldemote", NULL, "movdiri", "movdir64b", "enqcmd", "sgx_lc", "pks",
    },
    [ACCEL_CPUID_7_EDX] = {
        NULL, NULL, "avx512_4vnniw", "avx512_4fmaps", "fsrm", NULL, NULL, NULL,
        "avx512_vp2intersect", "srbds_ctrl", "md_clear", "rtm_always_abort", NULL, "tsx_force_abort",
        "serialize", "hybrid", "tsxldtrk", NULL, "pconfig", "arch_lbr", "ibt", NULL,
        "amx_bf16", "avx512_fp16", "amx_tile", "amx_int8", "spec_ctrl", "intel_stibp",
        "flush_l1d", "arch_capabilities", "core_capabilities", "spec_ctrl_ssbd",
    },
    [ACCEL_CPUID_80000001_ECX] = {
        "lahf_lm", "cmp_legacy", "svm", "extapic", "cr8_legacy", "abm", "sse4a", "misalignsse",
        "3dnowprefetch", "osvw", "ibs", "xop", "skinit", "wdt", NULL, "lwp",
        "fma4", "tce", NULL, "nodeid_msr", NULL, "tbm", "topoext", "perfctr_core",
        "perfctr_nb", NULL, "bpext", "ptsc", "perfctr_llc", "mwaitx", NULL, NULL,
    },
    /* AMD repeats most of leaf 1 EDX here. */
    [ACCEL_CPUID_80000001_EDX] = {
        "fpu", "vme", "de", "pse", "tsc", "msr", "pae", "mce",
        "cx8", "apic", NULL, "syscall", "mtrr", "pge", "mca", "cmov",
        "pat", "pse36", NULL, "mp", "nx", NULL, "mmxext", "mmx",
        "fxsr", "fxsr_opt", "pdpe1gb", "rdtscp", NULL, "lm", "3dnowext", "3dnow",
    },
    [ACCEL_CPUID_D_EAX] = {
        "x87", "sse", "avx", "mpx_bndregs", "mpx_bndcsr", "avx512_opmask", "avx512_zmm_hi256",
        "avx512_hi16_zmm", NULL, "pkru", NULL, NULL, NULL, NULL, NULL, NULL,
        NULL, "amx_tilecfg", "amx_tiledata",
    },
};

static const char *const word_names[ACCEL_CPUID_WORDS] = {
    "1.ecx", "1.edx", "7.ebx", "7.ecx", "7.edx", "80000001.ecx", "80000001.edx", "xcr0",
};

char *accel_cpuid_bit_names(int word, uint32_t bits)
{
    GString *s = g_string_new(NULL);

    for (int b = 0; b < 32; b++) {
        if (!(bits & (1u << b))) {
            continue;
        }
        if (s->len) {
            g_string_append_c(s, ' ');
        }
        const char *name = cpuid_names[word][b];
        if (word == ACCEL_CPUID_D_EAX) {
            g_string_append_printf(s, "xsave-%s", name ? name : "");
            if (!name) {
                g_string_append_printf(s, "%d", b);
            }
        } else if (name) {
            g_string_append(s, name);
        } else {
            g_string_append_printf(s, "%s[%d]", word_names[word], b);
        }
    }
    return g_string_free(s, FALSE);
}
