/*
 * What KVM keeps for the machine, across a save and a load into a second
 * VM in the same process: a vCPU (registers, system registers, XSAVE,
 * XCRs, debug registers, local APIC, events, MP state, TSC and MSRs) and
 * the in-kernel devices (both PICs, the IOAPIC, the PIT, kvmclock). No
 * vCPU ever runs: state is set with ioctls on VM A, saved through the
 * descriptions, loaded into VM B and read back with ioctls.
 *
 * The vCPU in the neutral form ("kvm-cpu" + X86CPUState + "apic") and in
 * KVM's old one ("cpu"); the in-kernel devices in the user-space models'
 * forms and in KVM's old ones; the conversions between them alone.
 *
 * Also: hostile vCPU streams (an MSR the destination does not support, a
 * count over the bound, an XSAVE area of a bad size) are refused.
 *
 * Skipped without /dev/kvm.
 */
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <glib.h>

#include "accel/kvm.h"
#include "hw/x86/pc.h"
#include "migration/vmstate.h"
#include "tests/unit/migration/vmstate-stream.h"
#include "tests/unit/migration/vmstate-stubs.h"

#define MSR_IA32_TSC            0x10
#define MSR_IA32_SYSENTER_CS    0x174
#define MSR_IA32_SYSENTER_ESP   0x175
#define MSR_IA32_CR_PAT         0x277
#define MSR_MTRR_DEF_TYPE       0x2ff
#define MSR_MTRR_PHYSBASE0      0x200
#define MSR_STAR                0xc0000081
#define MSR_LSTAR               0xc0000082
#define MSR_KERNEL_GS_BASE      0xc0000102
#define MSR_IA32_SPEC_CTRL_TEST 0x48

/* A bare vCPU on the current VM (no thread, never run). */
static CPUState *test_vcpu_new(void)
{
    g_autoptr(GError) err = NULL;
    CPUState *cpu = g_new0(CPUState, 1);

    cpu->index = 0;
    cpu->accel = g_new0(AccelCPUState, 1);
    cpu->accel->fd = ioctl(kvm_state->vmfd, KVM_CREATE_VCPU, 0UL);
    g_assert_cmpint(cpu->accel->fd, >=, 0);
    g_autofree struct kvm_cpuid2 *cpuid = kvm_cpuid_for_vcpu(0, 1, &err);
    g_assert_no_error(err);
    g_assert_cmpint(ioctl(cpu->accel->fd, KVM_SET_CPUID2, cpuid), ==, 0);
    return cpu;
}

static void test_vcpu_free(CPUState *cpu)
{
    close(cpu->accel->fd);
    g_free(cpu->accel);
    g_free(cpu);
}

/* A new VM; kvm_state points at it from here on, the previous one is closed. */
static void vm_new(void)
{
    g_autoptr(GError) err = NULL;
    KVMState *old = kvm_state;

    g_assert_true(kvm_init(&err));
    g_assert_no_error(err);
    if (old) {
        close(old->vmfd);
        close(old->fd);
        g_free(old->supported_cpuid);
        g_free(old);
    }
}

static uint64_t msr_get(CPUState *cpu, uint32_t index)
{
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry e;
    } m = { .hdr.nmsrs = 1, .e.index = index };
    g_assert_cmpint(ioctl(cpu->accel->fd, KVM_GET_MSRS, &m), ==, 1);
    return m.e.data;
}

static void msr_set(CPUState *cpu, uint32_t index, uint64_t value)
{
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry e;
    } m = { .hdr.nmsrs = 1, .e.index = index, .e.data = value };
    g_assert_cmpint(ioctl(cpu->accel->fd, KVM_SET_MSRS, &m), ==, 1);
}

static const struct {
    uint32_t index;
    uint64_t value;
} test_msrs[] = {
    { MSR_IA32_SYSENTER_CS, 0x10 },
    { MSR_IA32_SYSENTER_ESP, 0xffff880000001000ULL },
    { MSR_IA32_CR_PAT, 0x0007010600070106ULL },
    { MSR_MTRR_DEF_TYPE, 0xc06 },
    { MSR_MTRR_PHYSBASE0, 0x80000000 | 6 },
    { MSR_STAR, 0x0023001000000000ULL },
    { MSR_LSTAR, 0xffffffff81a00000ULL },
    { MSR_KERNEL_GS_BASE, 0xffff88807fc00000ULL },
};

#define TEST_TSC 1000000000000ULL
#define TEN_SECONDS_OF_TSC (100ULL * 1000 * 1000 * 1000)

/* Some hosts' KVM ignores writes to the TSC (it stays the host's). */
static bool tsc_writable;

/* Give vCPU @cpu a state worth migrating. */
static void vcpu_set_state(CPUState *cpu)
{
    struct kvm_regs regs = {
        .rax = 0x1111, .rbx = 0x2222, .rcx = 0x3333, .rdx = 0x4444, .rsi = 0x5555,
        .rdi = 0x6666, .rsp = 0x7000, .rbp = 0x8888, .r8 = 8, .r9 = 9, .r10 = 10,
        .r11 = 11, .r12 = 12, .r13 = 13, .r14 = 14, .r15 = 15, .rip = 0x100123,
        .rflags = 0x46,
    };
    g_assert_cmpint(ioctl(cpu->accel->fd, KVM_SET_REGS, &regs), ==, 0);

    /* 32-bit protected mode, flat segments, paging off. */
    struct kvm_sregs sregs;
    g_assert_cmpint(ioctl(cpu->accel->fd, KVM_GET_SREGS, &sregs), ==, 0);
    struct kvm_segment code = {
        .base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 0xb, .present = 1,
        .dpl = 0, .db = 1, .s = 1, .g = 1,
    };
    struct kvm_segment data = code;
    data.selector = 0x18;
    data.type = 0x3;
    sregs.cs = code;
    sregs.ds = sregs.es = sregs.ss = sregs.fs = data;
    sregs.gs = data;
    sregs.gs.base = 0x12340000;
    sregs.gdt.base = 0x5000;
    sregs.gdt.limit = 0x27;
    sregs.idt.base = 0x6000;
    sregs.idt.limit = 0x7ff;
    sregs.cr0 = 0x11;
    sregs.cr2 = 0xdead000;
    sregs.cr3 = 0x9000;
    sregs.cr4 = 0x200;      /* OSFXSR */
    g_assert_cmpint(ioctl(cpu->accel->fd, KVM_SET_SREGS, &sregs), ==, 0);

    for (unsigned i = 0; i < G_N_ELEMENTS(test_msrs); i++) {
        msr_set(cpu, test_msrs[i].index, test_msrs[i].value);
    }
    msr_set(cpu, MSR_IA32_TSC, TEST_TSC);
    tsc_writable = msr_get(cpu, MSR_IA32_TSC) < TEST_TSC + TEN_SECONDS_OF_TSC;
    if (!tsc_writable) {
        g_test_message("this KVM ignores TSC writes: TSC continuity is not checked");
    }

    /* An XMM register and MXCSR, in the legacy area. */
    struct kvm_xsave *xs = g_malloc0(MAX(4096, kvm_check_extension(KVM_CAP_XSAVE2)));
    g_assert_cmpint(ioctl(cpu->accel->fd, KVM_GET_XSAVE, xs), ==, 0);
    uint8_t *area = (uint8_t *)xs->region;
    uint32_t mxcsr = 0x1f80 | 0x6000;   /* round toward zero */
    memcpy(area + 24, &mxcsr, 4);
    for (int i = 0; i < 16; i++) {
        area[160 + i] = (uint8_t)(0xa0 + i);        /* XMM0 */
    }
    uint64_t xstate_bv;
    memcpy(&xstate_bv, area + 512, 8);
    xstate_bv |= 3;                                 /* x87, SSE in use */
    memcpy(area + 512, &xstate_bv, 8);
    g_assert_cmpint(ioctl(cpu->accel->fd, KVM_SET_XSAVE, xs), ==, 0);
    g_free(xs);

    struct kvm_debugregs dbg = { .db = { 0x1000, 0x2000, 0, 0 }, .dr6 = 0xffff0ff0,
                                 .dr7 = 0x403 };
    g_assert_cmpint(ioctl(cpu->accel->fd, KVM_SET_DEBUGREGS, &dbg), ==, 0);

    struct kvm_lapic_state lapic;
    g_assert_cmpint(ioctl(cpu->accel->fd, KVM_GET_LAPIC, &lapic), ==, 0);
    uint32_t tpr = 0x20, svr = 0x1ff, lvt_err = 0xfe;
    memcpy(&lapic.regs[0x80], &tpr, 4);
    memcpy(&lapic.regs[0xf0], &svr, 4);
    memcpy(&lapic.regs[0x370], &lvt_err, 4);
    g_assert_cmpint(ioctl(cpu->accel->fd, KVM_SET_LAPIC, &lapic), ==, 0);

    struct kvm_vcpu_events ev;
    g_assert_cmpint(ioctl(cpu->accel->fd, KVM_GET_VCPU_EVENTS, &ev), ==, 0);
    ev.flags = KVM_VCPUEVENT_VALID_SHADOW;
    ev.interrupt.shadow = KVM_X86_SHADOW_INT_MOV_SS;
    ev.nmi.masked = 1;
    g_assert_cmpint(ioctl(cpu->accel->fd, KVM_SET_VCPU_EVENTS, &ev), ==, 0);

    struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_HALTED };
    g_assert_cmpint(ioctl(cpu->accel->fd, KVM_SET_MP_STATE, &mp), ==, 0);
}

static void vcpu_assert_state(CPUState *cpu)
{
    struct kvm_regs regs;
    g_assert_cmpint(ioctl(cpu->accel->fd, KVM_GET_REGS, &regs), ==, 0);
    g_assert_cmphex(regs.rax, ==, 0x1111);
    g_assert_cmphex(regs.rbp, ==, 0x8888);
    g_assert_cmphex(regs.r15, ==, 15);
    g_assert_cmphex(regs.rip, ==, 0x100123);
    g_assert_cmphex(regs.rflags, ==, 0x46);

    struct kvm_sregs sregs;
    g_assert_cmpint(ioctl(cpu->accel->fd, KVM_GET_SREGS, &sregs), ==, 0);
    g_assert_cmphex(sregs.cr0 & 0x11, ==, 0x11);
    g_assert_cmphex(sregs.cr2, ==, 0xdead000);
    g_assert_cmphex(sregs.cr3, ==, 0x9000);
    g_assert_cmphex(sregs.cr4, ==, 0x200);
    g_assert_cmphex(sregs.cs.selector, ==, 0x10);
    g_assert_cmpuint(sregs.cs.db, ==, 1);
    g_assert_cmphex(sregs.gs.base, ==, 0x12340000);
    g_assert_cmphex(sregs.gdt.base, ==, 0x5000);
    g_assert_cmphex(sregs.idt.limit, ==, 0x7ff);

    for (unsigned i = 0; i < G_N_ELEMENTS(test_msrs); i++) {
        g_assert_cmphex(msr_get(cpu, test_msrs[i].index), ==, test_msrs[i].value);
    }
    /* The TSC continues from the saved value (a little time passes). */
    uint64_t tsc = msr_get(cpu, MSR_IA32_TSC);
    g_assert_cmpuint(tsc, >=, TEST_TSC);
    if (tsc_writable) {
        g_assert_cmpuint(tsc, <, TEST_TSC + TEN_SECONDS_OF_TSC);
    }

    struct kvm_xsave *xs = g_malloc0(MAX(4096, kvm_check_extension(KVM_CAP_XSAVE2)));
    g_assert_cmpint(ioctl(cpu->accel->fd, KVM_GET_XSAVE, xs), ==, 0);
    uint8_t *area = (uint8_t *)xs->region;
    uint32_t mxcsr;
    memcpy(&mxcsr, area + 24, 4);
    g_assert_cmphex(mxcsr, ==, 0x7f80);
    for (int i = 0; i < 16; i++) {
        g_assert_cmphex(area[160 + i], ==, 0xa0 + i);
    }
    g_free(xs);

    struct kvm_debugregs dbg;
    g_assert_cmpint(ioctl(cpu->accel->fd, KVM_GET_DEBUGREGS, &dbg), ==, 0);
    g_assert_cmphex(dbg.db[0], ==, 0x1000);
    g_assert_cmphex(dbg.db[1], ==, 0x2000);
    g_assert_cmphex(dbg.dr7, ==, 0x403);

    struct kvm_lapic_state lapic;
    g_assert_cmpint(ioctl(cpu->accel->fd, KVM_GET_LAPIC, &lapic), ==, 0);
    uint32_t tpr, svr, lvt_err;
    memcpy(&tpr, &lapic.regs[0x80], 4);
    memcpy(&svr, &lapic.regs[0xf0], 4);
    memcpy(&lvt_err, &lapic.regs[0x370], 4);
    g_assert_cmphex(tpr, ==, 0x20);
    g_assert_cmphex(svr, ==, 0x1ff);
    g_assert_cmphex(lvt_err, ==, 0xfe);

    struct kvm_vcpu_events ev;
    g_assert_cmpint(ioctl(cpu->accel->fd, KVM_GET_VCPU_EVENTS, &ev), ==, 0);
    g_assert_cmpuint(ev.interrupt.shadow, ==, KVM_X86_SHADOW_INT_MOV_SS);
    g_assert_cmpuint(ev.nmi.masked, ==, 1);

    struct kvm_mp_state mp;
    g_assert_cmpint(ioctl(cpu->accel->fd, KVM_GET_MP_STATE, &mp), ==, 0);
    g_assert_cmpuint(mp.mp_state, ==, KVM_MP_STATE_HALTED);
}

/* Wire offset of the MSR count in a "cpu" stream: the bytes before it. */
static size_t cpu_stream_msr_count_at(const GByteArray *b)
{
    /*
     * The stream ends with nmsrs and nmsrs * (index, value) = 12 bytes
     * each; find the count that makes the tail add up.
     */
    for (size_t at = b->len - 4; at > 0; at--) {
        uint32_t n = (uint32_t)b->data[at] << 24 | (uint32_t)b->data[at + 1] << 16 |
                     (uint32_t)b->data[at + 2] << 8 | b->data[at + 3];
        /* At least the MSRs this test set; a trailing zero value is no count. */
        if (n >= G_N_ELEMENTS(test_msrs) && n <= 256 && at + 4 + (size_t)n * 12 == b->len) {
            return at;
        }
    }
    g_assert_not_reached();
}

static void test_vcpu(void)
{
    g_autoptr(GError) err = NULL;

    if (!kvm_available(NULL)) {
        g_test_skip("no /dev/kvm");
        return;
    }
    vm_new();
    CPUState *a = test_vcpu_new();
    vcpu_set_state(a);
    KVMCPUMigState *sa = kvm_cpu_mig_state_new(a);
    g_autoptr(GByteArray) b = vms_stream_save(&vmstate_kvm_cpu, sa, &err);
    g_assert_no_error(err);
    g_test_message("vCPU state: %u bytes", b->len);

    vm_new();   /* VM B: kvm_state now points at it */
    CPUState *cpu_b = test_vcpu_new();
    KVMCPUMigState *sb = kvm_cpu_mig_state_new(cpu_b);
    g_assert_true(vms_stream_load(b->data, b->len, &vmstate_kvm_cpu, sb, 1, NULL, &err));
    g_assert_no_error(err);
    vcpu_assert_state(cpu_b);

    /* Saving B again gives the same bytes but for the TSC's progress. */
    g_autoptr(GByteArray) b2 = vms_stream_save(&vmstate_kvm_cpu, sb, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(b2->len, ==, b->len);

    /* An MSR this KVM does not save: refused by index. */
    size_t at = cpu_stream_msr_count_at(b);
    g_autoptr(GByteArray) bad = g_byte_array_new();
    g_byte_array_append(bad, b->data, b->len);
    bad->data[at + 4] = 0x00;
    bad->data[at + 5] = 0x00;
    bad->data[at + 6] = 0x0f;
    bad->data[at + 7] = 0xff;
    g_assert_false(vms_stream_load(bad->data, bad->len, &vmstate_kvm_cpu, sb, 1, NULL, &err));
    g_assert_cmpstr(err->message, ==, "cpu: vCPU 0: the source saved MSR 0xfff, which this "
                    "host's KVM does not support");
    g_clear_error(&err);

    /* A count over the bound: refused before any entry is read. */
    memcpy(bad->data, b->data, b->len);
    bad->data[at + 2] = 0x01;
    bad->data[at + 3] = 0x01;
    g_assert_false(vms_stream_load(bad->data, bad->len, &vmstate_kvm_cpu, sb, 1, NULL, &err));
    g_assert_cmpstr(err->message, ==, "cpu: field 'nmsrs': value 257 out of range (0 to 256)");
    g_clear_error(&err);

    /* Every prefix: an error, never a crash. */
    for (size_t len = 0; len < b->len; len += (len < 200 || len > b->len - 200) ? 1 : 61) {
        g_assert_false(vms_stream_load(b->data, len, &vmstate_kvm_cpu, sb, 1, NULL, &err));
        g_assert_true(g_str_has_prefix(err->message, "cpu: "));
        g_clear_error(&err);
    }
    kvm_cpu_mig_state_free(sa);
    kvm_cpu_mig_state_free(sb);
    test_vcpu_free(a);
    test_vcpu_free(cpu_b);
}


/*
 * The neutral form a KVM vCPU migrates in: ("kvm-cpu", n), loaded first
 * and parked, then the neutral state that ("x86-cpu", n) carries (its
 * wire form is test-cpu-vmstate's), written by kvm_cpu_set_neutral().
 * Everything the old "cpu" section carried arrives (vcpu_assert_state).
 */
static void test_vcpu_neutral(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree X86CPUState *st = g_new0(X86CPUState, 1);

    if (!kvm_available(NULL)) {
        g_test_skip("no /dev/kvm");
        return;
    }
    vm_new();
    CPUState *a = test_vcpu_new();
    vcpu_set_state(a);
    msr_set(a, MSR_IA32_SPEC_CTRL_TEST, 0);     /* an MSR only "kvm-cpu" carries */
    KVMCPUMigState *sa = kvm_cpu_mig_state_new(a);
    g_autoptr(GByteArray) extra = vms_stream_save(&vmstate_kvm_cpu_extra, sa, &err);
    g_assert_no_error(err);
    g_assert_true(kvm_vcpu_get_state(a, st, &err));
    g_assert_no_error(err);
    g_test_message("kvm-cpu: %u bytes", extra->len);

    /* The neutral part holds what it has fields for. */
    g_assert_cmphex(st->regs[X86_RBX], ==, 0x2222);
    g_assert_cmphex(st->rip, ==, 0x100123);
    g_assert_cmphex(st->segs[X86_SEG_GS].base, ==, 0x12340000);
    g_assert_cmphex(st->sysenter_esp, ==, 0xffff880000001000ULL);
    g_assert_cmphex(st->mtrr_def_type, ==, 0xc06);
    g_assert_cmphex(st->mtrr_var[0], ==, 0x80000000 | 6);
    g_assert_cmphex(st->dr[1], ==, 0x2000);
    g_assert_cmpuint(st->interrupt_shadow, ==, KVM_X86_SHADOW_INT_MOV_SS);
    g_assert_cmpuint(st->nmi_masked, ==, 1);
    g_assert_cmpuint(st->mp_state, ==, X86_MP_HALTED);
    g_assert_cmpuint(st->xsave_len, ==, X86_XSAVE_MAX);
    g_assert_cmphex(*x86_cpu_state_mxcsr(st), ==, 0x7f80);
    g_assert_cmphex(st->xcr0 & 1, ==, 1);

    g_autofree KVMApicMig *apic_a = kvm_apic_mig_new(a);
    g_autoptr(GByteArray) apic = vms_stream_save(&vmstate_kvm_apic, apic_a, &err);
    g_assert_no_error(err);

    vm_new();
    CPUState *b = test_vcpu_new();
    KVMCPUMigState *sb = kvm_cpu_mig_state_new(b);
    b->accel->mig = sb;
    g_autofree KVMApicMig *apic_b = kvm_apic_mig_new(b);
    /* In registration order: "kvm-cpu", "x86-cpu", then (after the other controllers) "apic". */
    g_assert_true(vms_stream_load(extra->data, extra->len, &vmstate_kvm_cpu_extra, sb, 1, NULL,
                                  &err));
    g_assert_no_error(err);
    g_assert_true(kvm_cpu_set_neutral(b, sb, st, &err));
    g_assert_no_error(err);
    g_assert_true(vms_stream_load(apic->data, apic->len, &vmstate_kvm_apic, apic_b, 1, NULL,
                                  &err));
    g_assert_no_error(err);
    vcpu_assert_state(b);

    /* The KVM-only section never carries an MSR the neutral state has a field for. */
    g_autoptr(GByteArray) bad = g_byte_array_new();
    g_byte_array_append(bad, extra->data, extra->len);
    size_t at = extra->len - 12;                  /* the last (index, value) */
    bad->data[at] = 0x00;
    bad->data[at + 1] = 0x00;
    bad->data[at + 2] = 0x01;
    bad->data[at + 3] = 0x74;                     /* SYSENTER_CS */
    g_assert_false(vms_stream_load(bad->data, bad->len, &vmstate_kvm_cpu_extra, sb, 1, NULL,
                                   &err));
    g_assert_cmpstr(err->message, ==, "kvm-cpu: vCPU 0: MSR 0x174 belongs in the neutral "
                    "state ('x86-cpu')");
    g_clear_error(&err);
    bad->data[at + 2] = 0x0f;
    bad->data[at + 3] = 0xff;
    g_assert_false(vms_stream_load(bad->data, bad->len, &vmstate_kvm_cpu_extra, sb, 1, NULL,
                                   &err));
    g_assert_cmpstr(err->message, ==, "kvm-cpu: vCPU 0: the source saved MSR 0xfff, which "
                    "this host's KVM does not support");
    g_clear_error(&err);

    /* Every prefix: an error, never a crash. */
    for (size_t len = 0; len < extra->len; len += (len < 100 || len > extra->len - 100) ? 1 : 37) {
        g_assert_false(vms_stream_load(extra->data, len, &vmstate_kvm_cpu_extra, sb, 1, NULL,
                                       &err));
        g_assert_true(g_str_has_prefix(err->message, "kvm-cpu: "));
        g_clear_error(&err);
    }
    kvm_cpu_mig_state_free(sa);
    kvm_cpu_mig_state_free(sb);
    b->accel->mig = NULL;
    test_vcpu_free(a);
    test_vcpu_free(b);
}

/*
 * A KVM source's "kvm-cpu" in a VM of another accelerator: read and
 * dropped, but refused once the guest turned kvmclock on.
 */
static void test_vcpu_foreign(void)
{
    g_autoptr(GError) err = NULL;

    if (!kvm_available(NULL)) {
        g_test_skip("no /dev/kvm");
        return;
    }
    vm_new();
    CPUState *a = test_vcpu_new();
    KVMCPUMigState *sa = kvm_cpu_mig_state_new(a);
    g_autoptr(GByteArray) b = vms_stream_save(&vmstate_kvm_cpu_extra, sa, &err);
    g_assert_no_error(err);

    stub_vmstate_clear();
    kvm_cpu_state_register_foreign(0);
    const StubVMStateEntry *e = stub_vmstate_find_old_form("kvm-cpu", 0);
    g_assert_nonnull(e);
    g_assert_true(vms_stream_load(b->data, b->len, e->vmsd, e->opaque, 1, NULL, &err));
    g_assert_no_error(err);

    /* The kvmclock MSR, (index, value) among the MSRs: turn its enable bit on. */
    static const uint8_t kvmclock[4] = { 0x4b, 0x56, 0x4d, 0x01 };
    uint8_t *at = memmem(b->data, b->len, kvmclock, sizeof(kvmclock));
    if (!at) {
        g_test_skip("this KVM does not list the kvmclock MSR");
    } else {
        at[4 + 7] |= 1;
        g_assert_false(vms_stream_load(b->data, b->len, e->vmsd, e->opaque, 1, NULL, &err));
        g_assert_cmpstr(err->message, ==, "kvm-cpu: the guest enabled KVM's paravirtual MSR "
                        "0x4b564d01 (kvmclock, async PF, steal time or PV EOI), which this "
                        "accelerator does not emulate");
        g_clear_error(&err);
    }
    /* The registration's state lives as long as the process; not this test's. */
    kvm_cpu_mig_state_free(e->opaque);
    kvm_cpu_mig_state_free(sa);
    test_vcpu_free(a);
}

/*
 * A neutral state with nothing KVM-only beside it (another accelerator's
 * stream, the boot loader): what the software CPU saves, an FXSAVE image
 * alone, pending events and MSRs, lands in a fresh KVM vCPU.
 */
static void test_vcpu_neutral_only(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree X86CPUState *st = g_new0(X86CPUState, 1);
    g_autofree X86CPUState *back = g_new0(X86CPUState, 1);

    if (!kvm_available(NULL)) {
        g_test_skip("no /dev/kvm");
        return;
    }
    vm_new();
    CPUState *b = test_vcpu_new();
    g_assert_true(kvm_vcpu_get_state(b, st, &err));
    g_assert_no_error(err);
    /* 64-bit long mode as the software CPU would report it. */
    st->cr0 = X86_CR0_PE | X86_CR0_PG | X86_CR0_ET | X86_CR0_NE;
    st->cr4 = X86_CR4_PAE | X86_CR4_OSFXSR;
    st->cr3 = 0x9000;
    st->efer = X86_EFER_LME | X86_EFER_LMA | X86_EFER_SCE;
    st->segs[X86_SEG_CS] = (X86Segment) { .selector = 8, .limit = 0xffffffff, .type = 0xb,
                                          .s = 1, .present = 1, .l = 1, .g = 1 };
    st->regs[X86_R12] = 0x1212;
    st->rip = 0x200000;
    st->rflags = 0x202;
    st->lstar = 0xffffffff81a00000ULL;
    st->kernel_gs_base = 0xffff88807fc00000ULL;
    st->pat = 0x0007010600070106ULL;
    st->tsc = TEST_TSC;
    st->tsc_adjust = 0;
    memset(st->xsave, 0, sizeof(st->xsave));
    st->xsave[0] = 0x7f;                              /* FCW 0x37f */
    st->xsave[1] = 0x03;
    *x86_cpu_state_mxcsr(st) = 0x7f80;
    for (int i = 0; i < 16; i++) {
        st->xsave[160 + i] = (uint8_t)(0xc0 + i);     /* XMM0 */
    }
    st->xsave_len = X86_FXSAVE_SIZE;                  /* no XSAVE header at all */
    st->xcr0 = 1;
    st->interrupt_injected = 1;
    st->interrupt_vector = 0x31;
    st->nmi_masked = 1;
    st->mp_state = X86_MP_RUNNABLE;
    g_assert_true(kvm_vcpu_set_state(b, st, &err));
    g_assert_no_error(err);

    g_assert_true(kvm_vcpu_get_state(b, back, &err));
    g_assert_no_error(err);
    g_assert_cmphex(back->regs[X86_R12], ==, 0x1212);
    g_assert_cmphex(back->rip, ==, 0x200000);
    g_assert_cmphex(back->efer & X86_EFER_LMA, ==, X86_EFER_LMA);
    g_assert_cmphex(back->lstar, ==, 0xffffffff81a00000ULL);
    g_assert_cmphex(back->kernel_gs_base, ==, 0xffff88807fc00000ULL);
    g_assert_cmphex(back->pat, ==, 0x0007010600070106ULL);
    g_assert_cmphex(*x86_cpu_state_mxcsr(back), ==, 0x7f80);
    for (int i = 0; i < 16; i++) {
        g_assert_cmphex(back->xsave[160 + i], ==, 0xc0 + i);
    }
    g_assert_cmpuint(back->interrupt_injected, ==, 1);
    g_assert_cmphex(back->interrupt_vector, ==, 0x31);
    g_assert_cmpuint(back->nmi_masked, ==, 1);
    if (tsc_writable) {
        g_assert_cmpuint(back->tsc, >=, TEST_TSC);
        g_assert_cmpuint(back->tsc, <, TEST_TSC + TEN_SECONDS_OF_TSC);
    }
    test_vcpu_free(b);
}

/*
 * The neutral state (kvm_vcpu_get_state/set_state, what the boot loader
 * and "info registers" use) carries the MTRRs: those set on a vCPU of VM
 * A come out in X86CPUState and go into a vCPU of VM B.
 */
static void test_neutral_mtrrs(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree X86CPUState *st = g_new0(X86CPUState, 1);

    if (!kvm_available(NULL)) {
        g_test_skip("no /dev/kvm");
        return;
    }
    vm_new();
    CPUState *a = test_vcpu_new();
    uint64_t cap = msr_get(a, X86_MSR_MTRRCAP);
    int last = (int)(cap & X86_MTRRCAP_VCNT_MASK) - 1;
    g_assert_cmpint(last, >=, 0);
    g_assert_cmpint(last, <, X86_MTRR_NR_VAR);
    msr_set(a, X86_MSR_MTRR_DEF_TYPE, 0xc06);
    msr_set(a, X86_MSR_MTRR_PHYSBASE0, 0x80000006);
    msr_set(a, X86_MSR_MTRR_PHYSBASE0 + 1, 0xff80000800ULL);
    msr_set(a, X86_MSR_MTRR_PHYSBASE0 + 2 * (uint32_t)last, 0x40000005);
    msr_set(a, X86_MSR_MTRR_PHYSBASE0 + 2 * (uint32_t)last + 1, 0xfff0000800ULL);
    msr_set(a, x86_mtrr_fixed_msr(0), 0x0505050506060606ULL);
    msr_set(a, x86_mtrr_fixed_msr(X86_MTRR_NR_FIXED - 1), 0x0606060601000504ULL);
    g_assert_true(kvm_vcpu_get_state(a, st, &err));
    g_assert_no_error(err);
    g_assert_cmphex(st->mtrr_def_type, ==, 0xc06);
    g_assert_cmphex(st->mtrr_var[0], ==, 0x80000006);
    g_assert_cmphex(st->mtrr_var[1], ==, 0xff80000800ULL);
    g_assert_cmphex(st->mtrr_var[2 * last], ==, 0x40000005);
    g_assert_cmphex(st->mtrr_var[2 * last + 1], ==, 0xfff0000800ULL);
    g_assert_cmphex(st->mtrr_fixed[0], ==, 0x0505050506060606ULL);
    g_assert_cmphex(st->mtrr_fixed[X86_MTRR_NR_FIXED - 1], ==, 0x0606060601000504ULL);

    vm_new();
    CPUState *b = test_vcpu_new();
    g_assert_true(kvm_vcpu_set_state(b, st, &err));
    g_assert_no_error(err);
    g_assert_cmphex(msr_get(b, X86_MSR_MTRR_DEF_TYPE), ==, 0xc06);
    g_assert_cmphex(msr_get(b, X86_MSR_MTRR_PHYSBASE0), ==, 0x80000006);
    g_assert_cmphex(msr_get(b, X86_MSR_MTRR_PHYSBASE0 + 1), ==, 0xff80000800ULL);
    g_assert_cmphex(msr_get(b, X86_MSR_MTRR_PHYSBASE0 + 2 * (uint32_t)last), ==, 0x40000005);
    g_assert_cmphex(msr_get(b, X86_MSR_MTRR_PHYSBASE0 + 2 * (uint32_t)last + 1), ==,
                    0xfff0000800ULL);
    g_assert_cmphex(msr_get(b, x86_mtrr_fixed_msr(0)), ==, 0x0505050506060606ULL);
    g_assert_cmphex(msr_get(b, x86_mtrr_fixed_msr(X86_MTRR_NR_FIXED - 1)), ==,
                    0x0606060601000504ULL);
    test_vcpu_free(a);
    test_vcpu_free(b);
}

static void test_irqchip_pit_clock(void)
{
    g_autoptr(GError) err = NULL;

    if (!kvm_available(NULL)) {
        g_test_skip("no /dev/kvm");
        return;
    }
    vm_new();

    struct kvm_irqchip pic = { .chip_id = KVM_IRQCHIP_PIC_MASTER };
    g_assert_cmpint(ioctl(kvm_state->vmfd, KVM_GET_IRQCHIP, &pic), ==, 0);
    pic.chip.pic.imr = 0xfa;
    pic.chip.pic.irq_base = 0x20;
    pic.chip.pic.elcr = 0x08;
    g_assert_cmpint(ioctl(kvm_state->vmfd, KVM_SET_IRQCHIP, &pic), ==, 0);
    struct kvm_irqchip slave = { .chip_id = KVM_IRQCHIP_PIC_SLAVE };
    g_assert_cmpint(ioctl(kvm_state->vmfd, KVM_GET_IRQCHIP, &slave), ==, 0);
    slave.chip.pic.imr = 0xbf;
    slave.chip.pic.irq_base = 0x28;
    g_assert_cmpint(ioctl(kvm_state->vmfd, KVM_SET_IRQCHIP, &slave), ==, 0);
    struct kvm_irqchip ioapic = { .chip_id = KVM_IRQCHIP_IOAPIC };
    g_assert_cmpint(ioctl(kvm_state->vmfd, KVM_GET_IRQCHIP, &ioapic), ==, 0);
    ioapic.chip.ioapic.id = 1;
    ioapic.chip.ioapic.redirtbl[4].bits = 0x24;         /* vector 0x24, unmasked, edge */
    ioapic.chip.ioapic.redirtbl[9].bits = 0x0000000000018039ULL; /* level, masked */
    g_assert_cmpint(ioctl(kvm_state->vmfd, KVM_SET_IRQCHIP, &ioapic), ==, 0);

    struct kvm_pit_state2 pit;
    g_assert_cmpint(ioctl(kvm_state->vmfd, KVM_GET_PIT2, &pit), ==, 0);
    pit.channels[0].count = 0x1234;
    pit.channels[0].mode = 2;
    pit.channels[0].rw_mode = 3;
    pit.channels[2].gate = 0;
    pit.flags = KVM_PIT_FLAGS_SPEAKER_DATA_ON;
    g_assert_cmpint(ioctl(kvm_state->vmfd, KVM_SET_PIT2, &pit), ==, 0);

    const uint64_t clock_ns = 5000ULL * 1000 * 1000 * 1000;
    struct kvm_clock_data clock = { .clock = clock_ns };
    g_assert_cmpint(ioctl(kvm_state->vmfd, KVM_SET_CLOCK, &clock), ==, 0);

    stub_vmstate_clear();
    kvm_irqchip_register_vmstate();
    if (stub_vmstate_count() == 0) {
        /* savevm.c came in with libferry and its registry took the registrations. */
        g_test_skip("the real migration registry is linked in; cannot look registrations up");
        return;
    }
    /* The user-space models' sections (new form), KVM's structs (old form), kvmclock. */
    g_assert_cmpuint(stub_vmstate_count(), ==, 9);
    static const char *const ids[] = { "i8259", "i8259", "ioapic", "i8254", "kvmclock" };
    static const uint32_t instances[] = { 0, 1, 0, 0, 0 };
    GByteArray *saved[5], *saved_old[4];
    const StubVMStateEntry *e, *old;
    for (unsigned i = 0; i < 5; i++) {
        e = stub_vmstate_find(ids[i], instances[i]);
        g_assert_nonnull(e);
        saved[i] = vms_stream_save(e->vmsd, e->opaque, &err);
        g_assert_no_error(err);
        if (i < 4) {
            old = stub_vmstate_find_old_form(ids[i], instances[i]);
            g_assert_nonnull(old);
            g_assert_cmpint(old->vmsd->version_id, ==, 1);
            g_assert_cmpint(e->vmsd->minimum_version_id, ==, 2);
            saved_old[i] = vms_stream_save(old->vmsd, old->opaque, &err);
            g_assert_no_error(err);
        }
    }

    /* Twice into a new VM: the neutral forms, then (a stream of older Ferry) KVM's structs. */
    for (int form = 0; form < 2; form++) {
        vm_new();   /* VM B */
        for (unsigned i = 0; i < 5; i++) {
            e = form == 0 || i == 4 ? stub_vmstate_find(ids[i], instances[i])
                                    : stub_vmstate_find_old_form(ids[i], instances[i]);
            GByteArray *b = form == 0 || i == 4 ? saved[i] : saved_old[i];
            bool ok = vms_stream_load(b->data, b->len, e->vmsd, e->opaque,
                                      e->vmsd->version_id, NULL, &err);
            g_assert_no_error(err);
            g_assert_true(ok);
        }

        struct kvm_irqchip got = { .chip_id = KVM_IRQCHIP_PIC_MASTER };
        g_assert_cmpint(ioctl(kvm_state->vmfd, KVM_GET_IRQCHIP, &got), ==, 0);
        g_assert_cmpmem(&got.chip.pic, sizeof(got.chip.pic), &pic.chip.pic,
                        sizeof(pic.chip.pic));
        got.chip_id = KVM_IRQCHIP_PIC_SLAVE;
        g_assert_cmpint(ioctl(kvm_state->vmfd, KVM_GET_IRQCHIP, &got), ==, 0);
        g_assert_cmpmem(&got.chip.pic, sizeof(got.chip.pic), &slave.chip.pic,
                        sizeof(slave.chip.pic));
        got.chip_id = KVM_IRQCHIP_IOAPIC;
        g_assert_cmpint(ioctl(kvm_state->vmfd, KVM_GET_IRQCHIP, &got), ==, 0);
        g_assert_cmphex(got.chip.ioapic.id, ==, ioapic.chip.ioapic.id);
        for (int i = 0; i < KVM_IOAPIC_NUM_PINS; i++) {
            g_assert_cmphex(got.chip.ioapic.redirtbl[i].bits, ==,
                            ioapic.chip.ioapic.redirtbl[i].bits);
        }

        struct kvm_pit_state2 pit_got;
        g_assert_cmpint(ioctl(kvm_state->vmfd, KVM_GET_PIT2, &pit_got), ==, 0);
        g_assert_cmpuint(pit_got.channels[0].count, ==, 0x1234);
        g_assert_cmpuint(pit_got.channels[0].mode, ==, 2);
        g_assert_cmpuint(pit_got.channels[0].rw_mode, ==, 3);
        g_assert_cmpuint(pit_got.channels[2].gate, ==, 0);
        g_assert_cmpuint(pit_got.channels[1].mode, ==, pit.channels[1].mode);
        g_assert_cmphex(pit_got.flags, ==, KVM_PIT_FLAGS_SPEAKER_DATA_ON);

        struct kvm_clock_data clock_got = { 0 };
        g_assert_cmpint(ioctl(kvm_state->vmfd, KVM_GET_CLOCK, &clock_got), ==, 0);
        g_assert_cmpuint(clock_got.clock, >=, clock_ns);
        g_assert_cmpuint(clock_got.clock, <, clock_ns + 60ULL * 1000 * 1000 * 1000);
    }

    /* A moved IOAPIC is refused (KVM's old form carries the base). */
    old = stub_vmstate_find_old_form("ioapic", 0);
    saved_old[2]->data[5] = 0xd0;   /* base 0xfec00000 -> 0xfed00000 (big-endian u64) */
    g_assert_false(vms_stream_load(saved_old[2]->data, saved_old[2]->len, old->vmsd, old->opaque,
                                   1, NULL, &err));
    g_assert_true(g_str_has_prefix(err->message, "ioapic: field 'base_address': value "));
    g_clear_error(&err);
    /* An ELCR bit on an input that is edge-only (IRQ 0) is refused, as the model refuses it. */
    e = stub_vmstate_find("i8259", 0);
    saved[0]->data[4] |= 0x01;      /* I8259Mig.elcr */
    g_assert_false(vms_stream_load(saved[0]->data, saved[0]->len, e->vmsd, e->opaque, 2, NULL,
                                   &err));
    g_assert_cmpstr(err->message, ==, "i8259: ELCR 0x09 sets edge-only inputs");
    g_clear_error(&err);
    for (unsigned i = 0; i < 5; i++) {
        g_byte_array_unref(saved[i]);
        if (i < 4) {
            g_byte_array_unref(saved_old[i]);
        }
    }
}

/*
 * The conversions between KVM's structs and the user-space models' forms
 * (kvm-intc-conv.c), without KVM: the PIT's load time becomes ticks
 * counted and back, its access states map both ways, and the LAPIC's
 * current count becomes elapsed and remaining time and back.
 */
static void test_conv_pit(void)
{
    struct kvm_pit_state2 k, back;
    I8254Mig m;
    const int64_t now = 1000LL * 1000 * 1000 * 1000;

    memset(&k, 0, sizeof(k));
    /* Channel 0: mode 2, 10 ms period, loaded 25 ms ago. */
    k.channels[0] = (struct kvm_pit_channel_state) {
        .count = 11932, .mode = 2, .rw_mode = RW_WORD, .gate = 1, .read_state = 4,
        .write_state = 3, .count_load_time = now - 25 * 1000 * 1000,
    };
    /* Channel 1: never programmed. */
    k.channels[1] = (struct kvm_pit_channel_state) { .count = 0x10000, .mode = 0xff, .gate = 1 };
    /* Channel 2: mode 0 one-shot, gate low, a word latched, the LSB being written. */
    k.channels[2] = (struct kvm_pit_channel_state) {
        .count = 0x10000, .mode = 0, .rw_mode = RW_WORD, .gate = 0, .latched_count = 0xbeef,
        .count_latched = 3, .write_state = 4, .write_latch = 0x34, .read_state = 3,
        .status = 0x30, .status_latched = 1, .count_load_time = now - 1000,
    };
    k.flags = KVM_PIT_FLAGS_SPEAKER_DATA_ON;
    kvm_pit_to_mig(&k, now, &m);

    g_assert_cmpuint(m.ch[0].mode, ==, 2);
    g_assert_true(m.ch[0].loaded && m.ch[0].running);
    /* 25 ms of a 1.193182 MHz clock. */
    g_assert_cmpuint(m.ch[0].ticks_base, ==, 29829);
    g_assert_true(m.ch[0].read_msb_next);
    g_assert_false(m.ch[0].write_msb_next);
    g_assert_true(m.irq_level);                 /* past the first terminal count */
    g_assert_false(m.ch[1].loaded);
    g_assert_cmpuint(m.ch[1].rw_mode, ==, RW_WORD);
    g_assert_cmpuint(m.ch[1].count, ==, 0x10000);
    g_assert_false(m.ch[2].running);
    g_assert_cmpuint(m.ch[2].ticks_base, ==, 0);
    g_assert_cmpuint(m.ch[2].latch, ==, 0xbeef);
    g_assert_cmpuint(m.ch[2].latch_left, ==, 2);
    g_assert_true(m.ch[2].write_msb_next);
    g_assert_cmpuint(m.ch[2].write_lsb, ==, 0x34);
    g_assert_true(m.ch[2].status_latched);
    g_assert_cmphex(m.port61, ==, PORT61_SPEAKER);

    memset(&back, 0, sizeof(back));
    kvm_pit_from_mig(&m, now, &back);
    for (int i = 0; i < 3; i++) {
        g_assert_cmpuint(back.channels[i].count, ==, k.channels[i].count);
        g_assert_cmpuint(back.channels[i].mode, ==, k.channels[i].mode);
        g_assert_cmpuint(back.channels[i].gate, ==, k.channels[i].gate);
        g_assert_cmpuint(back.channels[i].latched_count, ==, k.channels[i].latched_count);
        g_assert_cmpuint(back.channels[i].count_latched, ==, k.channels[i].count_latched);
        g_assert_cmpuint(back.channels[i].status_latched, ==, k.channels[i].status_latched);
        g_assert_cmpuint(back.channels[i].write_latch, ==, k.channels[i].write_latch);
    }
    g_assert_cmpuint(back.channels[0].read_state, ==, 4);
    g_assert_cmpuint(back.channels[2].write_state, ==, 4);
    /* The load time comes back to within a tick. */
    g_assert_cmpint(back.channels[0].count_load_time, <=, k.channels[0].count_load_time + 839);
    g_assert_cmpint(back.channels[0].count_load_time, >=, k.channels[0].count_load_time - 839);
    g_assert_cmphex(back.flags, ==, KVM_PIT_FLAGS_SPEAKER_DATA_ON);
}

static void lapic_set(struct kvm_lapic_state *l, unsigned off, uint32_t v)
{
    memcpy(&l->regs[off], &v, 4);
}

static uint32_t lapic_get(const struct kvm_lapic_state *l, unsigned off)
{
    uint32_t v;
    memcpy(&v, &l->regs[off], 4);
    return v;
}

static void test_conv_lapic(void)
{
    struct kvm_lapic_state l, back;
    APICMig m;

    memset(&l, 0, sizeof(l));
    lapic_set(&l, 0x20, 3u << 24);                          /* ID 3 */
    lapic_set(&l, 0x80, 0x20);                              /* TPR */
    lapic_set(&l, 0xf0, 0x1ff);                             /* SVR: enabled, vector 0xff */
    lapic_set(&l, 0x100 + 0x10 * 1, 1u << 16);              /* ISR: vector 0x30 */
    lapic_set(&l, 0x200 + 0x10 * 2, 1u << 1);               /* IRR: vector 0x41 */
    lapic_set(&l, 0x320, (TIMER_PERIODIC << LVT_TIMER_MODE_SHIFT) | 0xec);
    lapic_set(&l, 0x350, 7u << 8);                          /* LINT0 ExtINT */
    lapic_set(&l, 0x380, 1000000);                          /* TMICT */
    lapic_set(&l, 0x390, 400000);                           /* TMCCT: 40% left */
    lapic_set(&l, 0x3e0, 0xb);                              /* divide by 1 */
    kvm_lapic_to_mig(&l, 0xfee00900, 0, &m);

    g_assert_cmphex(m.regs.apic_base, ==, 0xfee00900);
    g_assert_cmphex(m.regs.id, ==, 3u << 24);
    g_assert_cmphex(m.regs.tpr, ==, 0x20);
    g_assert_cmphex(m.regs.isr[1], ==, 1u << 16);
    g_assert_cmphex(m.regs.irr[2], ==, 1u << 1);
    g_assert_cmphex(m.regs.lvt[LVT_LINT0], ==, 7u << 8);
    g_assert_true(m.regs.timer_armed);
    /* A 1 GHz bus: one count is 1 ns at divide-by-1. */
    g_assert_cmpint(m.timer_elapsed, ==, 600000);
    g_assert_cmpint(m.timer_remaining, ==, 400000);

    memset(&back, 0, sizeof(back));
    kvm_lapic_from_mig(&m, &back);
    for (unsigned off = 0x20; off < 0x3f0; off += 0x10) {
        g_assert_cmphex(lapic_get(&back, off), ==, lapic_get(&l, off));
    }

    /* Divide by 16, one-shot, expired: not armed, all time elapsed. */
    lapic_set(&l, 0x320, (TIMER_ONESHOT << LVT_TIMER_MODE_SHIFT) | 0xec);
    lapic_set(&l, 0x3e0, 0x3);
    lapic_set(&l, 0x390, 0);
    kvm_lapic_to_mig(&l, 0xfee00900, 0, &m);
    g_assert_false(m.regs.timer_armed);
    g_assert_cmpint(m.timer_elapsed, ==, 16000000);
    g_assert_cmpint(m.timer_remaining, ==, 0);

    /* TSC-deadline mode: the deadline is what counts. */
    lapic_set(&l, 0x320, (TIMER_TSC_DEADLINE << LVT_TIMER_MODE_SHIFT) | 0xec);
    kvm_lapic_to_mig(&l, 0xfee00900, 123456789, &m);
    g_assert_true(m.regs.timer_armed);
    g_assert_cmpuint(m.regs.tsc_deadline, ==, 123456789);
}

static void test_conv_pic_ioapic(void)
{
    struct kvm_pic_state k = {
        .last_irr = 0x01, .irr = 0x05, .imr = 0xfa, .isr = 0x04, .priority_add = 3,
        .irq_base = 0x20, .read_reg_select = 1, .poll = 0, .special_mask = 1, .init_state = 0,
        .auto_eoi = 1, .rotate_on_auto_eoi = 0, .special_fully_nested_mode = 1, .init4 = 1,
        .elcr = 0x08, .elcr_mask = 0xf8,
    }, back = { .elcr_mask = 0xf8 };
    I8259Mig m;

    kvm_pic_to_mig(&k, &m);
    g_assert_cmphex(m.vector_base, ==, 0x20);
    g_assert_cmpuint(m.priority_base, ==, 3);
    g_assert_true(m.read_isr && m.special_mask && m.auto_eoi && m.sfnm && m.icw4_expected);
    kvm_pic_from_mig(&m, &back);
    g_assert_cmpmem(&back, sizeof(back), &k, sizeof(k));

    struct kvm_ioapic_state io = { .base_address = 0xfec00000, .ioregsel = 0x10, .id = 4,
                                   .irr = (1u << 9) | (1u << 2) };
    io.redirtbl[9].bits = 0x0000000000008039ULL;    /* level, unmasked */
    io.redirtbl[2].bits = 0x0000000000000030ULL;    /* edge */
    IOAPICMig im;
    kvm_ioapic_to_mig(&io, &im);
    g_assert_cmpuint(im.id, ==, 4);
    g_assert_cmphex(im.levels, ==, (1u << 9) | (1u << 2));
    struct kvm_ioapic_state io_back = { .base_address = 0xfec00000 };
    kvm_ioapic_from_mig(&im, &io_back);
    g_assert_cmphex(io_back.redirtbl[9].bits, ==, io.redirtbl[9].bits);
    /* Only a level input goes back into KVM's IRR (KVM delivers it again). */
    g_assert_cmphex(io_back.irr, ==, 1u << 9);
    g_assert_cmpuint(io_back.id, ==, 4);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/kvm-state/vcpu", test_vcpu);
    g_test_add_func("/kvm-state/vcpu-neutral", test_vcpu_neutral);
    g_test_add_func("/kvm-state/vcpu-neutral-only", test_vcpu_neutral_only);
    g_test_add_func("/kvm-state/vcpu-foreign", test_vcpu_foreign);
    g_test_add_func("/kvm-state/neutral-mtrrs", test_neutral_mtrrs);
    g_test_add_func("/kvm-state/irqchip-pit-clock", test_irqchip_pit_clock);
    g_test_add_func("/kvm-state/conv/pit", test_conv_pit);
    g_test_add_func("/kvm-state/conv/lapic", test_conv_lapic);
    g_test_add_func("/kvm-state/conv/pic-ioapic", test_conv_pic_ioapic);
    return g_test_run();
}
