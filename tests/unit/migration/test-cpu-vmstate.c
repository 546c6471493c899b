/*
 * The neutral vCPU state in the migration stream ("x86-cpu", as the
 * software CPU and qtest carry it): every register, segment, MSR, the
 * FXSAVE image (x87 and SSE mid-computation) and the pending events come
 * back bit for bit through a save and a load, and a stream with
 * out-of-range values is refused before anything reaches the vCPU.
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

static void test_round_trip(void)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(0x5eed);
    for (int i = 0; i < NR_VCPUS; i++) {
        fill_state(&source[i], i, rand);
        memset(&dest[i], 0, sizeof(dest[i]));
    }
    register_all();
    for (int i = 0; i < NR_VCPUS; i++) {
        g_autoptr(GByteArray) b = save_vcpu(i);
        g_autoptr(GError) err = NULL;
        const StubVMStateEntry *e = stub_vmstate_find("x86-cpu", (uint32_t)i);
        current_vm = dest;
        g_assert_true(vms_stream_load(b->data, b->len, e->vmsd, e->opaque, 1, NULL, &err));
        g_assert_no_error(err);
        g_assert_cmpmem(&dest[i], sizeof(dest[i]), &source[i], sizeof(source[i]));
    }
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
        g_assert_false(vms_stream_load(b->data, len, e->vmsd, e->opaque, 1, NULL, &err));
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

    /* mp_state is the last field: 4 bytes, big-endian. */
    g_autoptr(GByteArray) bad = g_byte_array_new();
    g_byte_array_append(bad, good->data, good->len);
    bad->data[bad->len - 1] = 9;
    g_autoptr(GError) err = NULL;
    set_calls = 0;
    current_vm = dest;
    g_assert_false(vms_stream_load(bad->data, bad->len, e->vmsd, e->opaque, 1, NULL, &err));
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err->message, "mp_state"));
    g_assert_cmpint(set_calls, ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/cpu-vmstate/round-trip", test_round_trip);
    g_test_add_func("/cpu-vmstate/truncated", test_truncated);
    g_test_add_func("/cpu-vmstate/out-of-range", test_out_of_range);
    int ret = g_test_run();
    unregister_all();
    return ret;
}
