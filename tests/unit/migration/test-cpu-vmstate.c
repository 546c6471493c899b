/*
 * The neutral vCPU state in the migration stream ("x86-cpu", as the
 * software CPU and qtest carry it): every register, segment, MSR (MTRRs
 * and each vCPU's own TSC included), the FXSAVE image (x87 and SSE
 * mid-computation) and the pending events come back bit for bit through a
 * save and a load into a fresh destination, a stream of the previous
 * version still loads, and a stream with out-of-range values is refused
 * before anything reaches the vCPU.
 *
 * cpu_get_state()/cpu_set_state() are stood in for by two arrays of
 * states, one per "VM".
 */
#include <string.h>
#include <glib.h>

#include "hw/x86/cpu-vmstate.h"
#include "system/cpus.h"
#include "vmstate-stream.h"
#include "vmstate-stubs.h"

#define NR_VCPUS 2

static X86CPUState source[NR_VCPUS];
static X86CPUState dest[NR_VCPUS];
static X86CPUState *current_vm = source;
static int set_calls;

bool cpu_get_state(int index, X86CPUState *st, GError **errp)
{
    g_assert_cmpint(index, >=, 0);
    g_assert_cmpint(index, <, NR_VCPUS);
    *st = current_vm[index];
    return true;
}

bool cpu_set_state(int index, const X86CPUState *st, GError **errp)
{
    g_assert_cmpint(index, >=, 0);
    g_assert_cmpint(index, <, NR_VCPUS);
    current_vm[index] = *st;
    set_calls++;
    return true;
}

/* A busy vCPU: long mode, ring 3, SSE and x87 values in flight, an NMI pending. */
static void fill_state(X86CPUState *st, int index, GRand *rand)
{
    x86_cpu_state_reset(st, index);
    for (int i = 0; i < X86_NR_GPRS; i++) {
        st->regs[i] = ((uint64_t)g_rand_int(rand) << 32) | g_rand_int(rand);
    }
    st->rip = 0x401000 + index;
    st->rflags = X86_RFLAGS_FIXED | X86_RFLAGS_IF | X86_RFLAGS_CF | X86_RFLAGS_ZF;
    for (int i = 0; i < X86_NR_SEGS; i++) {
        st->segs[i] = (X86Segment) {
            .base = 0x1000ULL * (i + 1), .limit = 0xfffff, .selector = (uint16_t)(0x10 * i + 3),
            .type = 0xb, .s = 1, .dpl = 3, .present = 1, .l = i == X86_SEG_CS, .g = 1,
        };
    }
    st->segs[X86_SEG_FS].base = 0x7f0000001000ULL;
    st->gdt = (X86DescTable) { .base = 0xffffffff81000000ULL, .limit = 0x7f };
    st->idt = (X86DescTable) { .base = 0xffffffff81001000ULL, .limit = 0xfff };
    st->cr0 = X86_CR0_PE | X86_CR0_PG | X86_CR0_WP | X86_CR0_NE | X86_CR0_MP;
    st->cr2 = 0xdeadbeef000ULL;
    st->cr3 = 0x1234000;
    st->cr4 = X86_CR4_PAE | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT | X86_CR4_PGE;
    st->efer = X86_EFER_LME | X86_EFER_LMA | X86_EFER_NXE | X86_EFER_SCE;
    st->lstar = 0xffffffff81800000ULL;
    st->star = 0x0023001000000000ULL;
    st->sfmask = 0x47700;
    st->kernel_gs_base = 0xffff888000000000ULL;
    st->tsc_aux = (uint64_t)index;
    /*
     * The shared TSC as each vCPU's read saw it (vCPU 1 read later), and
     * vCPU 1's guest set its own TSC 5 s back.
     */
    st->tsc_adjust = index ? (uint64_t)-5000000000LL : 0;
    st->tsc = 0x123456789000ULL + 777 * (uint64_t)index + st->tsc_adjust;
    st->mtrr_def_type = 0xc06;
    for (int i = 0; i < 2 * X86_MTRR_NR_VAR; i++) {
        st->mtrr_var[i] = 0xfe00000000ULL + ((uint64_t)index << 28) + ((uint64_t)i << 12) +
                          (i & 1 ? 0x800 : 6);
    }
    for (int i = 0; i < X86_MTRR_NR_FIXED; i++) {
        st->mtrr_fixed[i] = 0x0606050504040101ULL + ((uint64_t)i << 8) + (uint64_t)index;
    }
    /* Every byte of the FXSAVE image: x87 stack, control words, XMM0-15. */
    for (unsigned i = 0; i < X86_FXSAVE_SIZE; i++) {
        st->xsave[i] = (uint8_t)g_rand_int(rand);
    }
    *x86_cpu_state_mxcsr(st) = 0x1f80 | 0x6000;     /* round toward zero */
    st->xsave_len = X86_FXSAVE_SIZE;
    st->nmi_pending = 1;
    st->interrupt_shadow = 1;
    st->exception_pending = 1;
    st->exception_vector = 14;
    st->exception_has_error = 1;
    st->exception_error = 0x7;
    st->mp_state = index ? X86_MP_HALTED : X86_MP_RUNNABLE;
}

/* The registry does not own the registered objects: free them first. */
static void unregister_all(void)
{
    for (unsigned i = 0; i < stub_vmstate_count(); i++) {
        g_free(stub_vmstate_get(i)->opaque);
    }
    stub_vmstate_clear();
}

static void register_all(void)
{
    unregister_all();
    for (int i = 0; i < NR_VCPUS; i++) {
        x86_cpu_vmstate_register(i);
    }
    g_assert_cmpuint(stub_vmstate_count(), ==, NR_VCPUS);
}

static GByteArray *save_vcpu(int index)
{
    g_autoptr(GError) err = NULL;
    const StubVMStateEntry *e = stub_vmstate_find("x86-cpu", (uint32_t)index);
    g_assert_nonnull(e);
    current_vm = source;
    GByteArray *b = vms_stream_save(e->vmsd, e->opaque, &err);
    g_assert_no_error(err);
    return b;
}

/* Bytes of a vCPU's section body in version 1 and in version 2. */
#define X86_CPU_V1_BYTES    4688
#define X86_CPU_V2_BYTES    (X86_CPU_V1_BYTES + 8 * (2 * X86_MTRR_NR_VAR + X86_MTRR_NR_FIXED + 1))

static void test_round_trip(void)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(0x5eed);
    GByteArray *saved[NR_VCPUS];

    for (int i = 0; i < NR_VCPUS; i++) {
        fill_state(&source[i], i, rand);
        memset(&dest[i], 0, sizeof(dest[i]));
    }
    register_all();
    for (int i = 0; i < NR_VCPUS; i++) {
        saved[i] = save_vcpu(i);
        g_assert_cmpuint(saved[i]->len, ==, X86_CPU_V2_BYTES);
    }
    /* The destination's objects have never saved: all they get is the stream. */
    register_all();
    for (int i = 0; i < NR_VCPUS; i++) {
        g_autoptr(GError) err = NULL;
        const StubVMStateEntry *e = stub_vmstate_find("x86-cpu", (uint32_t)i);
        size_t unread;
        current_vm = dest;
        g_assert_true(vms_stream_load(saved[i]->data, saved[i]->len, e->vmsd, e->opaque,
                                      e->vmsd->version_id, &unread, &err));
        g_assert_no_error(err);
        g_assert_cmpuint(unread, ==, 0);
        g_assert_cmpmem(&dest[i], sizeof(dest[i]), &source[i], sizeof(source[i]));
        g_byte_array_unref(saved[i]);
    }
    /* Each vCPU's own TSC offset, and the shared TSC each read saw. */
    g_assert_cmphex(dest[0].tsc_adjust, ==, 0);
    g_assert_cmphex(dest[1].tsc_adjust, ==, (uint64_t)-5000000000LL);
    g_assert_cmphex(dest[1].tsc - dest[1].tsc_adjust - (dest[0].tsc - dest[0].tsc_adjust), ==,
                    777);
    g_assert_cmphex(dest[1].mtrr_var[2 * X86_MTRR_NR_VAR - 1], ==,
                    0xfe00000000ULL + (1ULL << 28) + ((2ULL * X86_MTRR_NR_VAR - 1) << 12) + 0x800);
    g_assert_cmphex(dest[1].mtrr_fixed[X86_MTRR_NR_FIXED - 1], ==,
                    0x0606050504040101ULL + ((X86_MTRR_NR_FIXED - 1ULL) << 8) + 1);
}

/*
 * A version 1 stream (no MTRR ranges, no tsc_adjust) still loads, and
 * those fields take their power-on values even where the loading object
 * still holds another state (a VM that saved, then loads an old
 * snapshot).
 */
static void test_version_1(void)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(0x1d);
    VMStateDescription v1 = vmstate_x86_cpu;

    v1.version_id = 1;
    fill_state(&source[1], 1, rand);
    register_all();
    const StubVMStateEntry *e = stub_vmstate_find("x86-cpu", 1);
    g_autoptr(GError) err = NULL;
    current_vm = source;
    g_autoptr(GByteArray) b = vms_stream_save(&v1, e->opaque, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(b->len, ==, X86_CPU_V1_BYTES);

    size_t unread;
    current_vm = dest;
    memset(&dest[1], 0xff, sizeof(dest[1]));
    g_assert_true(vms_stream_load(b->data, b->len, e->vmsd, e->opaque, 1, &unread, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(unread, ==, 0);

    X86CPUState want = source[1];
    memset(want.mtrr_var, 0, sizeof(want.mtrr_var));
    memset(want.mtrr_fixed, 0, sizeof(want.mtrr_fixed));
    want.tsc_adjust = 0;
    g_assert_cmpmem(&dest[1], sizeof(dest[1]), &want, sizeof(want));
    /* Version 1's TSC (the shared one then) and MTRRdefType travel as before. */
    g_assert_cmphex(dest[1].tsc, ==, source[1].tsc);
    g_assert_cmphex(dest[1].mtrr_def_type, ==, 0xc06);
}

/* Truncated anywhere, the load fails and the vCPU is not written. */
static void test_truncated(void)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(7);
    fill_state(&source[0], 0, rand);
    register_all();
    g_autoptr(GByteArray) b = save_vcpu(0);
    const StubVMStateEntry *e = stub_vmstate_find("x86-cpu", 0);
    for (guint len = 0; len < b->len; len += 97) {
        g_autoptr(GError) err = NULL;
        set_calls = 0;
        current_vm = dest;
        g_assert_false(vms_stream_load(b->data, len, e->vmsd, e->opaque, e->vmsd->version_id,
                                       NULL, &err));
        g_assert_nonnull(err);
        g_assert_cmpint(set_calls, ==, 0);
    }
}

/* A value outside its field's range is refused with the field's name. */
static void test_out_of_range(void)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(11);
    fill_state(&source[0], 0, rand);
    register_all();
    g_autoptr(GByteArray) good = save_vcpu(0);
    const StubVMStateEntry *e = stub_vmstate_find("x86-cpu", 0);

    /* mp_state is the last field of version 1: 4 bytes, big-endian. */
    g_autoptr(GByteArray) bad = g_byte_array_new();
    g_byte_array_append(bad, good->data, good->len);
    bad->data[X86_CPU_V1_BYTES - 1] = 9;
    g_autoptr(GError) err = NULL;
    set_calls = 0;
    current_vm = dest;
    g_assert_false(vms_stream_load(bad->data, bad->len, e->vmsd, e->opaque,
                                   e->vmsd->version_id, NULL, &err));
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err->message, "mp_state"));
    g_assert_cmpint(set_calls, ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/cpu-vmstate/round-trip", test_round_trip);
    g_test_add_func("/cpu-vmstate/version-1", test_version_1);
    g_test_add_func("/cpu-vmstate/truncated", test_truncated);
    g_test_add_func("/cpu-vmstate/out-of-range", test_out_of_range);
    int ret = g_test_run();
    unregister_all();
    return ret;
}
