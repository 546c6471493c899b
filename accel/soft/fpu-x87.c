/*
 * The x87 FPU and the FXSAVE image shared with SSE state.
 *
 * The register stack, tags, TOP, stack faults and the control/status words
 * are kept here; each numeric operation runs on the host's own x87 unit
 * (the host is x86-64) with the guest's precision and rounding control and
 * all exceptions masked, so results, condition code C1 and exception flags
 * are the hardware's. An exception the guest left unmasked sets ES and is
 * reported as #MF by the next waiting x87 instruction (CR0.NE=1).
 */
#include "soft-internal.h"

#define FSW_IE  0x0001
#define FSW_SF  0x0040
#define FSW_ES  0x0080
#define FSW_C0  0x0100
#define FSW_C1  0x0200
#define FSW_C2  0x0400
#define FSW_C3  0x4000
#define FSW_B   0x8000
#define FSW_CC  (FSW_C0 | FSW_C1 | FSW_C2 | FSW_C3)

/* ---- Host execution ---- */

/*
 * The host starts each operation from the guest's control word (all
 * exceptions masked) and condition codes, with an empty stack, so codes an
 * operation leaves alone stay the guest's.
 */
typedef struct HostEnv {
    uint32_t w[7];
} HostEnv;

#define HX_BEGIN    "fnstcw %[hcw]\n\tfldenv %[env]\n\t"
#define HX_END      "fldcw %[hcw]"
#define HX_CLOB     "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", \
                    "st(7)", "memory"

enum {
    HB_ADD, HB_SUB, HB_MUL, HB_DIV, HB_PREM, HB_PREM1, HB_SCALE,
    HB_PATAN, HB_YL2X, HB_YL2XP1,
};

/* r = x OP y, with x in ST0 and y in ST1 on the host. */
static long double hx_bin(int op, long double x, long double y, const HostEnv *gcw, uint16_t *sw)
{
    long double r;
    uint16_t hcw;

#define BIN(insn)                                                           \
    __asm__ volatile(HX_BEGIN "fldt %[y]\n\tfldt %[x]\n\t" insn "\n\t"       \
                     "fnstsw %[sw]\n\tfstpt %[r]\n\tfstp %%st(0)\n\t" HX_END  \
                     : [r] "=m"(r), [sw] "=m"(*sw), [hcw] "=m"(hcw)         \
                     : [x] "m"(x), [y] "m"(y), [env] "m"(*gcw) : HX_CLOB)
#define BIN1(insn)                                                          \
    __asm__ volatile(HX_BEGIN "fldt %[y]\n\tfldt %[x]\n\t" insn "\n\t"       \
                     "fnstsw %[sw]\n\tfstpt %[r]\n\t" HX_END                 \
                     : [r] "=m"(r), [sw] "=m"(*sw), [hcw] "=m"(hcw)         \
                     : [x] "m"(x), [y] "m"(y), [env] "m"(*gcw) : HX_CLOB)
    switch (op) {
    case HB_ADD: BIN("fadd %%st(1), %%st"); break;
    case HB_SUB: BIN("fsub %%st(1), %%st"); break;
    case HB_MUL: BIN("fmul %%st(1), %%st"); break;
    case HB_DIV: BIN("fdiv %%st(1), %%st"); break;
    case HB_PREM: BIN("fprem"); break;
    case HB_PREM1: BIN("fprem1"); break;
    case HB_SCALE: BIN("fscale"); break;
    case HB_PATAN: BIN1("fpatan"); break;
    case HB_YL2X: BIN1("fyl2x"); break;
    default: BIN1("fyl2xp1"); break;
    }
#undef BIN
#undef BIN1
    return r;
}

/*
 * ST0 op m: the memory forms run as such on the host, so a converted
 * operand's exceptions and NaN priority are the hardware's. @fmt: 0 m32
 * real, 1 m64 real, 2 m16 int, 3 m32 int; @r the ModRM reg (2, 3: compare).
 */
static long double hx_mem(int fmt, unsigned r, long double x, const uint8_t *m,
                          const HostEnv *gcw, uint16_t *sw)
{
    long double res;
    uint16_t hcw;

#define MOP(insn)                                                           \
    __asm__ volatile(HX_BEGIN "fldt %[x]\n\t" insn " (%[m])\n\t"            \
                     "fnstsw %[sw]\n\tfstpt %[r]\n\t" HX_END                \
                     : [r] "=m"(res), [sw] "=m"(*sw), [hcw] "=m"(hcw)       \
                     : [x] "m"(x), [m] "r"(m), [env] "m"(*gcw) : HX_CLOB)
#define MOPS(a, mu, c, s_, sr, d, dr)                                       \
    switch (r) {                                                            \
    case 0: MOP(a); break;                                                  \
    case 1: MOP(mu); break;                                                 \
    case 2: case 3: MOP(c); break;                                          \
    case 4: MOP(s_); break;                                                 \
    case 5: MOP(sr); break;                                                 \
    case 6: MOP(d); break;                                                  \
    default: MOP(dr); break;                                                \
    }
    switch (fmt) {
    case 0: MOPS("fadds", "fmuls", "fcoms", "fsubs", "fsubrs", "fdivs", "fdivrs"); break;
    case 1: MOPS("faddl", "fmull", "fcoml", "fsubl", "fsubrl", "fdivl", "fdivrl"); break;
    case 2: MOPS("fiadds", "fimuls", "ficoms", "fisubs", "fisubrs", "fidivs", "fidivrs"); break;
    default: MOPS("fiaddl", "fimull", "ficoml", "fisubl", "fisubrl", "fidivl", "fidivrl"); break;
    }
#undef MOPS
#undef MOP
    return res;
}

enum { HU_SQRT, HU_RNDINT, HU_2XM1, HU_SIN, HU_COS, HU_TST, HU_XAM };

static long double hx_un(int op, long double x, const HostEnv *gcw, uint16_t *sw)
{
    long double r = x;
    uint16_t hcw;

#define UN(insn)                                                            \
    __asm__ volatile(HX_BEGIN "fldt %[x]\n\t" insn "\n\t"                    \
                     "fnstsw %[sw]\n\tfstpt %[r]\n\t" HX_END                 \
                     : [r] "=m"(r), [sw] "=m"(*sw), [hcw] "=m"(hcw)         \
                     : [x] "m"(x), [env] "m"(*gcw) : HX_CLOB)
    switch (op) {
    case HU_SQRT: UN("fsqrt"); break;
    case HU_RNDINT: UN("frndint"); break;
    case HU_2XM1: UN("f2xm1"); break;
    case HU_SIN: UN("fsin"); break;
    case HU_COS: UN("fcos"); break;
    case HU_TST: UN("ftst"); break;
    default: UN("fxam"); break;
    }
#undef UN
    return r;
}

enum { HT_XTRACT, HT_SINCOS, HT_PTAN };

/* Operations that leave two results: *r0 is the new ST0, *r1 below it. */
static void hx_two(int op, long double x, const HostEnv *gcw, uint16_t *sw,
                   long double *r0, long double *r1)
{
    uint16_t hcw;

#define TWO(insn)                                                           \
    __asm__ volatile(HX_BEGIN "fldt %[x]\n\t" insn "\n\t"                    \
                     "fnstsw %[sw]\n\tfstpt %[a]\n\tfstpt %[b]\n\t" HX_END   \
                     : [a] "=m"(*r0), [b] "=m"(*r1), [sw] "=m"(*sw), [hcw] "=m"(hcw) \
                     : [x] "m"(x), [env] "m"(*gcw) : HX_CLOB)
    switch (op) {
    case HT_XTRACT: TWO("fxtract"); break;
    case HT_SINCOS: TWO("fsincos"); break;
    default: TWO("fptan"); break;
    }
#undef TWO
}

/* Compares: the status word, and for FCOMI forms the host's ZF/PF/CF. */
static void hx_cmp(bool unordered, bool to_eflags, long double x, long double y,
                   const HostEnv *gcw, uint16_t *sw, uint64_t *eflags)
{
    uint16_t hcw;
    bool zf = false, pf = false, cf = false;

    if (to_eflags) {
        if (unordered) {
            __asm__ volatile(HX_BEGIN "fldt %[y]\n\tfldt %[x]\n\tfucomi %%st(1), %%st\n\t"
                             "fnstsw %[sw]\n\tfstp %%st(0)\n\tfstp %%st(0)\n\t" HX_END
                             : "=@ccz"(zf), "=@ccp"(pf), "=@ccc"(cf), [sw] "=m"(*sw),
                               [hcw] "=m"(hcw)
                             : [x] "m"(x), [y] "m"(y), [env] "m"(*gcw) : HX_CLOB);
        } else {
            __asm__ volatile(HX_BEGIN "fldt %[y]\n\tfldt %[x]\n\tfcomi %%st(1), %%st\n\t"
                             "fnstsw %[sw]\n\tfstp %%st(0)\n\tfstp %%st(0)\n\t" HX_END
                             : "=@ccz"(zf), "=@ccp"(pf), "=@ccc"(cf), [sw] "=m"(*sw),
                               [hcw] "=m"(hcw)
                             : [x] "m"(x), [y] "m"(y), [env] "m"(*gcw) : HX_CLOB);
        }
        *eflags = (zf ? X86_RFLAGS_ZF : 0) | (pf ? X86_RFLAGS_PF : 0) | (cf ? X86_RFLAGS_CF : 0);
        return;
    }
    if (unordered) {
        __asm__ volatile(HX_BEGIN "fldt %[y]\n\tfldt %[x]\n\tfucom %%st(1)\n\t"
                         "fnstsw %[sw]\n\tfstp %%st(0)\n\tfstp %%st(0)\n\t" HX_END
                         : [sw] "=m"(*sw), [hcw] "=m"(hcw)
                         : [x] "m"(x), [y] "m"(y), [env] "m"(*gcw) : HX_CLOB);
    } else {
        __asm__ volatile(HX_BEGIN "fldt %[y]\n\tfldt %[x]\n\tfcom %%st(1)\n\t"
                         "fnstsw %[sw]\n\tfstp %%st(0)\n\tfstp %%st(0)\n\t" HX_END
                         : [sw] "=m"(*sw), [hcw] "=m"(hcw)
                         : [x] "m"(x), [y] "m"(y), [env] "m"(*gcw) : HX_CLOB);
    }
}

enum { HL_F32, HL_F64, HL_I16, HL_I32, HL_I64, HL_BCD };

/* A memory operand in format @fmt to extended precision. */
static long double hx_load(int fmt, const uint8_t *m, const HostEnv *gcw, uint16_t *sw)
{
    long double r;
    uint16_t hcw;

#define LD(insn)                                                            \
    __asm__ volatile(HX_BEGIN insn " (%[m])\n\tfnstsw %[sw]\n\tfstpt %[r]\n\t" HX_END \
                     : [r] "=m"(r), [sw] "=m"(*sw), [hcw] "=m"(hcw)         \
                     : [m] "r"(m), [env] "m"(*gcw) : HX_CLOB)
    switch (fmt) {
    case HL_F32: LD("flds"); break;
    case HL_F64: LD("fldl"); break;
    case HL_I16: LD("filds"); break;
    case HL_I32: LD("fildl"); break;
    case HL_I64: LD("fildll"); break;
    default: LD("fbld"); break;
    }
#undef LD
    return r;
}

enum { HS_F32, HS_F64, HS_I16, HS_I32, HS_I64, HS_TI16, HS_TI32, HS_TI64, HS_BCD };

/* Extended precision to a memory format, with the host's rounding. */
static void hx_store(int fmt, long double x, uint8_t *m, const HostEnv *gcw, uint16_t *sw)
{
    uint16_t hcw;

#define ST(insn)                                                            \
    __asm__ volatile(HX_BEGIN "fldt %[x]\n\t" insn " (%[m])\n\tfnstsw %[sw]\n\t" HX_END \
                     : [sw] "=m"(*sw), [hcw] "=m"(hcw)                      \
                     : [x] "m"(x), [m] "r"(m), [env] "m"(*gcw) : HX_CLOB)
    switch (fmt) {
    case HS_F32: ST("fstps"); break;
    case HS_F64: ST("fstpl"); break;
    case HS_I16: ST("fistps"); break;
    case HS_I32: ST("fistpl"); break;
    case HS_I64: ST("fistpll"); break;
    case HS_TI16: ST("fisttps"); break;
    case HS_TI32: ST("fisttpl"); break;
    case HS_TI64: ST("fisttpll"); break;
    default: ST("fbstp"); break;
    }
#undef ST
}

static long double hx_const(unsigned which, const HostEnv *gcw, uint16_t *sw)
{
    long double r;
    uint16_t hcw;

#define CONST(insn)                                                         \
    __asm__ volatile(HX_BEGIN insn "\n\tfnstsw %[sw]\n\tfstpt %[r]\n\t" HX_END \
                     : [r] "=m"(r), [sw] "=m"(*sw), [hcw] "=m"(hcw)         \
                     : [env] "m"(*gcw) : HX_CLOB)
    switch (which) {
    case 0: CONST("fld1"); break;
    case 1: CONST("fldl2t"); break;
    case 2: CONST("fldl2e"); break;
    case 3: CONST("fldpi"); break;
    case 4: CONST("fldlg2"); break;
    case 5: CONST("fldln2"); break;
    default: CONST("fldz"); break;
    }
#undef CONST
    return r;
}

/* ---- Stack and status word ---- */

static long double indefinite(void)
{
    long double r = 0;
    uint64_t m = 0xc000000000000000ULL;
    uint16_t se = 0xffff;

    memcpy(&r, &m, 8);
    memcpy((uint8_t *)&r + 8, &se, 2);
    return r;
}

static inline unsigned phys(const FPUState *f, unsigned i)
{
    return (f->top + i) & 7;
}

static inline bool is_empty(const FPUState *f, unsigned i)
{
    return f->tag_empty & (1u << phys(f, i));
}

static inline long double *st(FPUState *f, unsigned i)
{
    return &f->st[phys(f, i)];
}

static void set_valid(FPUState *f, unsigned i)
{
    f->tag_empty &= ~(1u << phys(f, i));
}

static void pop(FPUState *f)
{
    f->tag_empty |= 1u << f->top;
    f->top = (f->top + 1) & 7;
}

static HostEnv host_env(const FPUState *f)
{
    HostEnv e = { { f->fcw | 0x3fu | 0xffff0000u, (f->fsw & FSW_CC) | 0xffff0000u,
                    0xffffffffu, 0, 0, 0, 0xffff0000u } };
    return e;
}

#define gcw(f) (&(HostEnv[1]){ host_env(f) }[0])

static void update_es(FPUState *f)
{
    if (f->fsw & ~f->fcw & 0x3f) {
        f->fsw |= FSW_ES | FSW_B;
    } else {
        f->fsw &= ~(FSW_ES | FSW_B);
    }
}

/*
 * Merge the host's status: its exception flags, and the condition codes
 * in @cc_mask. Returns false when an unmasked exception among @noresult
 * means the destination must not be written.
 */
static bool merge_sw(FPUState *f, uint16_t sw, uint16_t cc_mask)
{
    uint16_t exc = sw & 0x3f;

    f->fsw = (f->fsw & ~cc_mask) | (sw & cc_mask) | exc;
    if (exc & ~f->fcw & 0x3f) {
        f->fsw |= FSW_ES | FSW_B;
        /* Invalid, denormal and zero-divide leave the destination alone. */
        return !(exc & ~f->fcw & 0x7);
    }
    return true;
}

/* Stack underflow or overflow; true when the masked response applies. */
static bool stack_fault(FPUState *f, bool overflow)
{
    f->fsw = (f->fsw & ~FSW_C1) | FSW_IE | FSW_SF | (overflow ? FSW_C1 : 0);
    if (!(f->fcw & FSW_IE)) {
        f->fsw |= FSW_ES | FSW_B;
        return false;
    }
    return true;
}

static void push(FPUState *f, long double v)
{
    unsigned t = (f->top - 1) & 7;

    if (!(f->tag_empty & (1u << t))) {
        if (!stack_fault(f, true)) {
            return;
        }
        v = indefinite();
    }
    f->top = t;
    f->st[t] = v;
    f->tag_empty &= ~(1u << t);
}

/* ---- Reset and FXSAVE ---- */

static void fninit(FPUState *f)
{
    f->fcw = 0x37f;
    f->fsw = 0;
    f->top = 0;
    f->tag_empty = 0xff;
    f->fop = 0;
    f->fip = f->fdp = 0;
    f->fcs = f->fds = 0;
}

void soft_fpu_reset(SoftCPU *cpu)
{
    FPUState *f = &cpu->fpu;

    memset(f, 0, sizeof(*f));
    fninit(f);
    memset(cpu->xmm, 0, sizeof(cpu->xmm));
    cpu->mxcsr = 0x1f80;
}

void soft_fxsave(SoftCPU *cpu, uint8_t *img)
{
    FPUState *f = &cpu->fpu;
    uint16_t fsw = (f->fsw & ~0x3800) | ((f->top & 7) << 11);
    uint32_t mxcsr_mask = 0xffff;

    memset(img, 0, X86_FXSAVE_SIZE);
    memcpy(img + 0, &f->fcw, 2);
    memcpy(img + 2, &fsw, 2);
    img[4] = ~f->tag_empty;
    memcpy(img + 6, &f->fop, 2);
    memcpy(img + 8, &f->fip, 8);
    memcpy(img + 16, &f->fdp, 8);
    memcpy(img + 24, &cpu->mxcsr, 4);
    memcpy(img + 28, &mxcsr_mask, 4);
    for (int i = 0; i < 8; i++) {
        memcpy(img + 32 + 16 * i, &f->st[(f->top + i) & 7], 10);
    }
    memcpy(img + 160, cpu->xmm, 16 * 16);
}

void soft_fxrstor(SoftCPU *cpu, const uint8_t *img)
{
    FPUState *f = &cpu->fpu;
    uint16_t fsw;

    memcpy(&f->fcw, img + 0, 2);
    memcpy(&fsw, img + 2, 2);
    f->top = (fsw >> 11) & 7;
    f->fsw = fsw & ~0x3800;
    f->tag_empty = ~img[4];
    memcpy(&f->fop, img + 6, 2);
    memcpy(&f->fip, img + 8, 8);
    memcpy(&f->fdp, img + 16, 8);
    memcpy(&cpu->mxcsr, img + 24, 4);
    for (int i = 0; i < 8; i++) {
        memset(&f->st[(f->top + i) & 7], 0, sizeof(long double));
        memcpy(&f->st[(f->top + i) & 7], img + 32 + 16 * i, 10);
    }
    memcpy(cpu->xmm, img + 160, 16 * 16);
}

/* ---- Environment (FLDENV/FNSTENV/FNSAVE/FRSTOR) ---- */

/* The full two-bit tag of a register from its contents. */
static unsigned full_tag(const FPUState *f, unsigned p)
{
    uint8_t b[10];
    uint64_t m;
    uint16_t e;

    if (f->tag_empty & (1u << p)) {
        return 3;
    }
    memcpy(b, &f->st[p], 10);
    memcpy(&m, b, 8);
    memcpy(&e, b + 8, 2);
    e &= 0x7fff;
    if (e == 0 && m == 0) {
        return 1;
    }
    if (e == 0x7fff || e == 0 || !(m >> 63)) {
        return 2;
    }
    return 0;
}

static unsigned env_size(const Insn *in)
{
    return in->osize == 2 ? 14 : 28;
}

static void store_env(SoftCPU *cpu, const Insn *in, uint8_t *buf)
{
    FPUState *f = &cpu->fpu;
    uint16_t fsw = (f->fsw & ~0x3800) | ((f->top & 7) << 11);
    uint16_t tw = 0;

    for (unsigned p = 0; p < 8; p++) {
        tw |= full_tag(f, p) << (2 * p);
    }
    memset(buf, 0, 28);
    if (in->osize == 2) {
        uint16_t v[7] = { f->fcw, fsw, tw, (uint16_t)f->fip, f->fcs,
                          (uint16_t)f->fdp, f->fds };
        memcpy(buf, v, 14);
    } else {
        uint32_t v[7] = { f->fcw | 0xffff0000u, fsw | 0xffff0000u, tw | 0xffff0000u,
                          (uint32_t)f->fip, f->fcs | ((uint32_t)(f->fop & 0x7ff) << 16),
                          (uint32_t)f->fdp, f->fds | 0xffff0000u };
        memcpy(buf, v, 28);
    }
}

static void load_env(SoftCPU *cpu, const Insn *in, const uint8_t *buf)
{
    FPUState *f = &cpu->fpu;
    uint16_t fcw, fsw, tw;

    if (in->osize == 2) {
        memcpy(&fcw, buf, 2);
        memcpy(&fsw, buf + 2, 2);
        memcpy(&tw, buf + 4, 2);
    } else {
        memcpy(&fcw, buf, 2);
        memcpy(&fsw, buf + 4, 2);
        memcpy(&tw, buf + 8, 2);
    }
    f->fcw = fcw;
    f->top = (fsw >> 11) & 7;
    f->fsw = fsw & ~0x3800;
    f->tag_empty = 0;
    for (unsigned p = 0; p < 8; p++) {
        if (((tw >> (2 * p)) & 3) == 3) {
            f->tag_empty |= 1u << p;
        }
    }
    update_es(f);
}

/* ---- Instructions ---- */

static void check_pending(SoftCPU *cpu)
{
    if (cpu->cr0 & (X86_CR0_EM | X86_CR0_TS)) {
        soft_raise_noerr(cpu, EXC_NM);
    }
}

static void check_mf(SoftCPU *cpu)
{
    if ((cpu->fpu.fsw & FSW_ES) && (cpu->cr0 & X86_CR0_NE)) {
        soft_raise_noerr(cpu, EXC_MF);
    }
}

/* ST0 and ST(i) for a two-operand op; false after a masked-off stack fault. */
static bool operands(FPUState *f, unsigned i, long double *a, long double *b)
{
    if (is_empty(f, 0) || is_empty(f, i)) {
        return false;
    }
    *a = *st(f, 0);
    *b = *st(f, i);
    return true;
}

/* Arithmetic by /reg: 0 add, 1 mul, 4 sub, 5 subr, 6 div, 7 divr. */
static long double arith_raw(FPUState *f, unsigned r, long double a, long double b,
                             uint16_t *sw)
{
    static const int ops[8] = { HB_ADD, HB_MUL, 0, 0, HB_SUB, HB_SUB, HB_DIV, HB_DIV };
    bool rev = r == 5 || r == 7;

    return hx_bin(ops[r], rev ? b : a, rev ? a : b, gcw(f), sw);
}

static bool arith(FPUState *f, unsigned r, long double a, long double b, long double *res)
{
    uint16_t sw;

    *res = arith_raw(f, r, a, b, &sw);
    return merge_sw(f, sw, FSW_C1);
}

static uint16_t compare_raw(FPUState *f, long double a, long double b, bool unordered)
{
    uint16_t sw;
    uint64_t ef;

    hx_cmp(unordered, false, a, b, gcw(f), &sw, &ef);
    return sw;
}

static void compare(FPUState *f, long double a, long double b, bool unordered)
{
    merge_sw(f, compare_raw(f, a, b, unordered), FSW_CC);
}


/* Stack underflow on a compare: C3, C2, C0 set as for unordered. */
static bool compare_empty(FPUState *f)
{
    if (stack_fault(f, false)) {
        f->fsw |= FSW_C0 | FSW_C2 | FSW_C3;
        return true;
    }
    return false;
}

static void mem_arith(SoftCPU *cpu, const Insn *in, int fmt, unsigned size)
{
    FPUState *f = &cpu->fpu;
    unsigned r = in->reg & 7;
    uint8_t m[8];
    uint16_t sw;
    long double res;

    soft_read_bytes(cpu, in->seg, insn_ea(cpu, in), m, size);
    if (is_empty(f, 0)) {
        if (r == 2 || r == 3) {
            if (compare_empty(f) && r == 3) {
                pop(f);
            }
            return;
        }
        if (stack_fault(f, false)) {
            *st(f, 0) = indefinite();
            set_valid(f, 0);
        }
        return;
    }
    res = hx_mem(fmt, r, *st(f, 0), m, gcw(f), &sw);
    if (r == 2 || r == 3) {
        if (merge_sw(f, sw, FSW_CC) && r == 3) {
            pop(f);
        }
        return;
    }
    if (merge_sw(f, sw, FSW_C1)) {
        *st(f, 0) = res;
    }
}

static void fld_mem(SoftCPU *cpu, const Insn *in, int fmt, unsigned size)
{
    FPUState *f = &cpu->fpu;
    uint8_t m[10];
    uint16_t sw;
    long double v;

    soft_read_bytes(cpu, in->seg, insn_ea(cpu, in), m, size);
    if (!is_empty(f, 7)) {
        push(f, 0);
        return;
    }
    if (size == 10 && fmt < 0) {
        memset(&v, 0, sizeof(v));
        memcpy(&v, m, 10);
        f->fsw &= ~FSW_C1;
    } else {
        v = hx_load(fmt, m, gcw(f), &sw);
        if (!merge_sw(f, sw, FSW_C1)) {
            return;
        }
    }
    push(f, v);
}

/* FST/FIST/FISTTP to memory; pops if @do_pop. */
static void fst_mem(SoftCPU *cpu, const Insn *in, int fmt, unsigned size, bool do_pop)
{
    FPUState *f = &cpu->fpu;
    uint64_t ea = insn_ea(cpu, in);
    uint8_t m[10];
    uint16_t sw;

    /* The destination must be writable before anything changes. */
    soft_lin_ptr(cpu, soft_seg_check(cpu, in->seg, ea, size, true), size, ACC_WRITE, cpu->midx);
    if (is_empty(f, 0)) {
        if (!stack_fault(f, false)) {
            return;
        }
        long double ind = indefinite();
        if (fmt < 0) {
            memcpy(m, &ind, 10);
        } else {
            hx_store(fmt, ind, m, gcw(f), &sw);
        }
    } else if (fmt < 0) {
        memcpy(m, st(f, 0), 10);
        f->fsw &= ~FSW_C1;
    } else {
        hx_store(fmt, *st(f, 0), m, gcw(f), &sw);
        if (!merge_sw(f, sw, FSW_C1)) {
            return;
        }
    }
    soft_write_bytes(cpu, in->seg, ea, m, size);
    if (do_pop) {
        pop(f);
    }
}

static void x87_memory(SoftCPU *cpu, const Insn *in, unsigned esc)
{
    FPUState *f = &cpu->fpu;
    unsigned r = in->reg & 7;
    uint64_t ea = insn_ea(cpu, in);

    switch (esc) {
    case 0: mem_arith(cpu, in, 0, 4); return;
    case 2: mem_arith(cpu, in, 3, 4); return;
    case 4: mem_arith(cpu, in, 1, 8); return;
    case 6: mem_arith(cpu, in, 2, 2); return;
    case 1:
        switch (r) {
        case 0: fld_mem(cpu, in, HL_F32, 4); return;
        case 2: fst_mem(cpu, in, HS_F32, 4, false); return;
        case 3: fst_mem(cpu, in, HS_F32, 4, true); return;
        case 4: {
            uint8_t buf[28];
            soft_read_bytes(cpu, in->seg, ea, buf, env_size(in));
            load_env(cpu, in, buf);
            return;
        }
        case 5:
            f->fcw = soft_read(cpu, in->seg, ea, 2);
            update_es(f);
            return;
        case 6: {
            uint8_t buf[28];
            store_env(cpu, in, buf);
            soft_write_bytes(cpu, in->seg, ea, buf, env_size(in));
            f->fcw |= 0x3f;             /* FNSTENV masks all exceptions */
            return;
        }
        case 7:
            soft_write(cpu, in->seg, ea, 2, f->fcw);
            return;
        }
        break;
    case 3:
        switch (r) {
        case 0: fld_mem(cpu, in, HL_I32, 4); return;
        case 1: fst_mem(cpu, in, HS_TI32, 4, true); return;
        case 2: fst_mem(cpu, in, HS_I32, 4, false); return;
        case 3: fst_mem(cpu, in, HS_I32, 4, true); return;
        case 5: fld_mem(cpu, in, -1, 10); return;
        case 7: fst_mem(cpu, in, -1, 10, true); return;
        }
        break;
    case 5:
        switch (r) {
        case 0: fld_mem(cpu, in, HL_F64, 8); return;
        case 1: fst_mem(cpu, in, HS_TI64, 8, true); return;
        case 2: fst_mem(cpu, in, HS_F64, 8, false); return;
        case 3: fst_mem(cpu, in, HS_F64, 8, true); return;
        case 4: {   /* FRSTOR */
            uint8_t buf[28 + 80];
            unsigned n = env_size(in);
            soft_read_bytes(cpu, in->seg, ea, buf, n + 80);
            load_env(cpu, in, buf);
            for (int i = 0; i < 8; i++) {
                memset(st(f, i), 0, sizeof(long double));
                memcpy(st(f, i), buf + n + 10 * i, 10);
            }
            return;
        }
        case 6: {   /* FNSAVE */
            uint8_t buf[28 + 80];
            unsigned n = env_size(in);
            store_env(cpu, in, buf);
            for (int i = 0; i < 8; i++) {
                memcpy(buf + n + 10 * i, st(f, i), 10);
            }
            soft_write_bytes(cpu, in->seg, ea, buf, n + 80);
            fninit(f);
            return;
        }
        case 7:
            soft_write(cpu, in->seg, ea, 2, (f->fsw & ~0x3800) | ((f->top & 7) << 11));
            return;
        }
        break;
    case 7:
        switch (r) {
        case 0: fld_mem(cpu, in, HL_I16, 2); return;
        case 1: fst_mem(cpu, in, HS_TI16, 2, true); return;
        case 2: fst_mem(cpu, in, HS_I16, 2, false); return;
        case 3: fst_mem(cpu, in, HS_I16, 2, true); return;
        case 4: fld_mem(cpu, in, HL_BCD, 10); return;
        case 5: fld_mem(cpu, in, HL_I64, 8); return;
        case 6: fst_mem(cpu, in, HS_BCD, 10, true); return;
        case 7: fst_mem(cpu, in, HS_I64, 8, true); return;
        }
        break;
    }
    soft_ud(cpu);
}

/* FCOMI/FUCOMI (and the popping forms) into RFLAGS. */
static void comi(SoftCPU *cpu, unsigned i, bool unordered, bool do_pop)
{
    FPUState *f = &cpu->fpu;
    long double a, b;
    uint16_t sw;
    uint64_t ef;

    if (!operands(f, i, &a, &b)) {
        if (!stack_fault(f, false)) {
            return;
        }
        soft_set_arith(cpu, X86_RFLAGS_ZF | X86_RFLAGS_PF | X86_RFLAGS_CF);
    } else {
        hx_cmp(unordered, true, a, b, gcw(f), &sw, &ef);
        /* Hardware leaves C0-C3 alone here, whatever the manual says of C1. */
        if (!merge_sw(f, sw, 0)) {
            return;
        }
        soft_set_arith(cpu, ef);
    }
    if (do_pop) {
        pop(f);
    }
}

static void unary(FPUState *f, int op, uint16_t cc)
{
    uint16_t sw;
    long double r;

    if (is_empty(f, 0)) {
        if (stack_fault(f, false)) {
            *st(f, 0) = indefinite();
            set_valid(f, 0);
        }
        return;
    }
    r = hx_un(op, *st(f, 0), gcw(f), &sw);
    if (merge_sw(f, sw, cc)) {
        *st(f, 0) = r;
    }
}

/* Two-operand stack ops on ST0 and ST1: @pop_after for FPATAN/FYL2X. */
static void binary_st01(FPUState *f, int op, bool pop_after, uint16_t cc)
{
    uint16_t sw;
    long double a, b, r;

    if (!operands(f, 1, &a, &b)) {
        if (stack_fault(f, false)) {
            if (pop_after) {
                pop(f);
            }
            *st(f, 0) = indefinite();
            set_valid(f, 0);
        }
        return;
    }
    r = hx_bin(op, a, b, gcw(f), &sw);
    if (sw & FSW_IE) {
        cc &= ~(FSW_C0 | FSW_C3);           /* an invalid FPREM keeps C0 and C3 */
    }
    if (!merge_sw(f, sw, cc)) {
        return;
    }
    if (pop_after) {
        pop(f);
    }
    *st(f, 0) = r;
}

static void two_results(FPUState *f, int op)
{
    uint16_t sw;
    long double r0, r1;

    if (is_empty(f, 0)) {
        if (stack_fault(f, false)) {
            *st(f, 0) = indefinite();
            set_valid(f, 0);
            push(f, indefinite());
        }
        return;
    }
    if (!is_empty(f, 7)) {
        if (stack_fault(f, true)) {
            *st(f, 0) = indefinite();
            push(f, indefinite());
        }
        return;
    }
    hx_two(op, *st(f, 0), gcw(f), &sw, &r0, &r1);
    if (!merge_sw(f, sw, FSW_C1 | FSW_C2)) {
        return;
    }
    if ((op == HT_SINCOS || op == HT_PTAN) && (sw & FSW_C2)) {
        return;                 /* out of range: operand unchanged, nothing pushed */
    }
    *st(f, 0) = r1;
    push(f, r0);
}

static void x87_register(SoftCPU *cpu, const Insn *in, unsigned esc)
{
    FPUState *f = &cpu->fpu;
    unsigned r = in->reg & 7, i = in->rm & 7;
    uint8_t modrm = 0xc0 | (r << 3) | i;
    long double a, b, res;

    switch (esc) {
    case 0:     /* D8: ST0 op ST(i) */
        if (r == 2 || r == 3) {
            bool ok = true;
            if (!operands(f, i, &a, &b)) {
                ok = compare_empty(f);
            } else {
                compare(f, a, b, false);
            }
            if (r == 3 && ok) {
                pop(f);
            }
            return;
        }
        if (!operands(f, i, &a, &b)) {
            if (stack_fault(f, false)) {
                *st(f, 0) = indefinite();
                set_valid(f, 0);
            }
            return;
        }
        if (arith(f, r, a, b, &res)) {
            *st(f, 0) = res;
        }
        return;
    case 4: case 6:     /* DC/DE: ST(i) op ST0, DE pops */
        if (r == 2 || r == 3) {
            /* DC: FCOM/FCOMP aliases; DE: FCOMP alias and FCOMPP (DE D9). */
            int pops = esc == 4 ? (r == 3) : (r == 3 ? 2 : 1);
            bool ok = true;
            if (esc == 6 && r == 3 && modrm != 0xd9) {
                break;
            }
            if (!operands(f, i, &a, &b)) {
                ok = compare_empty(f);
            } else {
                compare(f, a, b, false);
            }
            while (ok && pops--) {
                pop(f);
            }
            return;
        }
        if (!operands(f, i, &a, &b)) {
            if (stack_fault(f, false)) {
                *st(f, i) = indefinite();
                set_valid(f, i);
                if (esc == 6) {
                    pop(f);
                }
            }
            return;
        }
        /* With the destination in ST(i), /4 and /5 (and /6, /7) swap. */
        {
            static const unsigned swap[8] = { 0, 1, 2, 3, 5, 4, 7, 6 };
            if (arith(f, swap[r], b, a, &res)) {
                *st(f, i) = res;
                if (esc == 6) {
                    pop(f);
                }
            }
        }
        return;
    case 1:
        switch (r) {
        case 0:     /* FLD ST(i) */
            if (is_empty(f, i)) {
                if (stack_fault(f, false)) {
                    push(f, indefinite());
                }
                return;
            }
            a = *st(f, i);
            f->fsw &= ~FSW_C1;
            push(f, a);
            return;
        case 1:     /* FXCH */
            if (is_empty(f, 0) || is_empty(f, i)) {
                if (!stack_fault(f, false)) {
                    return;
                }
                if (is_empty(f, 0)) {
                    *st(f, 0) = indefinite();
                    set_valid(f, 0);
                }
                if (is_empty(f, i)) {
                    *st(f, i) = indefinite();
                    set_valid(f, i);
                }
            }
            a = *st(f, 0);
            *st(f, 0) = *st(f, i);
            *st(f, i) = a;
            f->fsw &= ~FSW_C1;
            return;
        case 2:
            if (i == 0) {
                return;     /* FNOP */
            }
            break;
        case 4:
            switch (i) {
            case 0: case 1:     /* FCHS, FABS */
                if (is_empty(f, 0)) {
                    if (stack_fault(f, false)) {
                        *st(f, 0) = indefinite();
                        set_valid(f, 0);
                    }
                    return;
                }
                {
                    uint8_t *p = (uint8_t *)st(f, 0);
                    p[9] = i == 0 ? p[9] ^ 0x80 : p[9] & 0x7f;
                }
                f->fsw &= ~FSW_C1;
                return;
            case 4:             /* FTST */
                if (is_empty(f, 0)) {
                    compare_empty(f);
                    return;
                }
                {
                    uint16_t sw;
                    hx_un(HU_TST, *st(f, 0), gcw(f), &sw);
                    merge_sw(f, sw, FSW_CC);
                }
                return;
            case 5:             /* FXAM */
                if (is_empty(f, 0)) {
                    uint8_t *p = (uint8_t *)st(f, 0);
                    f->fsw = (f->fsw & ~FSW_CC) | FSW_C3 | FSW_C0 |
                             ((p[9] & 0x80) ? FSW_C1 : 0);
                    return;
                }
                {
                    uint16_t sw;
                    hx_un(HU_XAM, *st(f, 0), gcw(f), &sw);
                    f->fsw = (f->fsw & ~FSW_CC) | (sw & FSW_CC);
                }
                return;
            }
            break;
        case 5:
            if (i == 7) {
                break;
            }
            {
                uint16_t sw;
                long double c = hx_const(i, gcw(f), &sw);
                if (!is_empty(f, 7)) {
                    push(f, 0);
                    return;
                }
                merge_sw(f, sw, FSW_C1);
                push(f, c);
            }
            return;
        case 6:
            switch (i) {
            case 0: unary(f, HU_2XM1, FSW_C1); return;
            case 1: binary_st01(f, HB_YL2X, true, FSW_C1); return;
            case 2: two_results(f, HT_PTAN); return;
            case 3: binary_st01(f, HB_PATAN, true, FSW_C1); return;
            case 4: two_results(f, HT_XTRACT); return;
            case 5: binary_st01(f, HB_PREM1, false, FSW_CC); return;
            case 6: f->top = (f->top - 1) & 7; f->fsw &= ~FSW_C1; return;
            default: f->top = (f->top + 1) & 7; f->fsw &= ~FSW_C1; return;
            }
        case 7:
            switch (i) {
            case 0: binary_st01(f, HB_PREM, false, FSW_CC); return;
            case 1: binary_st01(f, HB_YL2XP1, true, FSW_C1); return;
            case 2: unary(f, HU_SQRT, FSW_C1); return;
            case 3: two_results(f, HT_SINCOS); return;
            case 4: unary(f, HU_RNDINT, FSW_C1); return;
            case 5: binary_st01(f, HB_SCALE, false, FSW_C1); return;
            case 6: unary(f, HU_SIN, FSW_C1 | FSW_C2); return;
            default: unary(f, HU_COS, FSW_C1 | FSW_C2); return;
            }
        }
        break;
    case 2: case 3:     /* DA: FCMOVcc, FUCOMPP; DB: FCMOVNcc, FNCLEX, FNINIT, FUCOMI, FCOMI */
        if (r < 4) {
            static const unsigned cc[4] = { 2, 4, 6, 10 };     /* B, E, BE, P */
            bool cond = soft_cond(cpu, cc[r]);
            if (esc == 3) {
                cond = !cond;
            }
            if (is_empty(f, 0) || is_empty(f, i)) {
                if (stack_fault(f, false)) {
                    *st(f, 0) = indefinite();
                    set_valid(f, 0);
                }
                return;
            }
            /* Hardware leaves C1 alone. */
            if (cond) {
                *st(f, 0) = *st(f, i);
            }
            return;
        }
        if (esc == 2) {
            if (modrm == 0xe9) {
                bool ok = true;
                if (!operands(f, 1, &a, &b)) {
                    ok = compare_empty(f);
                } else {
                    compare(f, a, b, true);
                }
                if (ok) {
                    pop(f);
                    pop(f);
                }
                return;
            }
            break;
        }
        if (r == 4) {
            switch (i) {
            case 2:
                f->fsw &= ~(0x3f | FSW_SF | FSW_ES | FSW_B);
                return;
            case 3:
                fninit(f);
                return;
            case 0: case 1: case 4:
                return;     /* FENI/FDISI/FSETPM: no-ops since the 387 */
            }
            break;
        }
        if (r == 5 || r == 6) {
            comi(cpu, i, r == 5, false);
            return;
        }
        break;
    case 5:     /* DD */
        switch (r) {
        case 0:     /* FFREE */
            f->tag_empty |= 1u << phys(f, i);
            return;
        case 2: case 3:     /* FST/FSTP ST(i) */
            if (is_empty(f, 0)) {
                if (!stack_fault(f, false)) {
                    return;
                }
                *st(f, i) = indefinite();
            } else {
                *st(f, i) = *st(f, 0);
                f->fsw &= ~FSW_C1;
            }
            set_valid(f, i);
            if (r == 3) {
                pop(f);
            }
            return;
        case 4: case 5: {   /* FUCOM/FUCOMP */
            bool ok = true;
            if (!operands(f, i, &a, &b)) {
                ok = compare_empty(f);
            } else {
                compare(f, a, b, true);
            }
            if (r == 5 && ok) {
                pop(f);
            }
            return;
        }
        }
        break;
    case 7:     /* DF */
        if (modrm == 0xe0) {    /* FNSTSW AX */
            reg_write(cpu, in, X86_RAX, 2, (f->fsw & ~0x3800) | ((f->top & 7) << 11));
            return;
        }
        if (r == 5 || r == 6) {
            comi(cpu, i, r == 5, true);
            return;
        }
        if (r == 0) {           /* FFREEP */
            f->tag_empty |= 1u << phys(f, i);
            pop(f);
            return;
        }
        break;
    }
    soft_ud(cpu);
}

/* Control instructions that neither wait for nor record FIP/FOP. */
static bool is_control(unsigned esc, const Insn *in)
{
    unsigned r = in->reg & 7;

    if (in->mod != 3) {
        return (esc == 1 && r >= 4) || (esc == 5 && (r == 4 || r == 6 || r == 7));
    }
    return (esc == 3 && r == 4) || (esc == 7 && r == 4 && (in->rm & 7) == 0);
}

/* The FN* forms (and FLDCW/FLDENV/FRSTOR) do not wait for pending exceptions. */
static bool no_wait(unsigned esc, const Insn *in)
{
    unsigned r = in->reg & 7;

    if (in->mod != 3) {
        return (esc == 1 && r >= 4) || (esc == 5 && (r == 4 || r == 6 || r == 7));
    }
    return (esc == 3 && r == 4 && ((in->rm & 7) == 2 || (in->rm & 7) == 3)) ||
           (esc == 7 && r == 4 && (in->rm & 7) == 0);
}

void op_x87(SoftCPU *cpu, const Insn *in)
{
    unsigned esc = in->op & 7;
    FPUState *f = &cpu->fpu;

    check_pending(cpu);
    if (!no_wait(esc, in)) {
        check_mf(cpu);
    }
    if (in->mod == 3) {
        x87_register(cpu, in, esc);
    } else {
        x87_memory(cpu, in, esc);
    }
    if (!is_control(esc, in)) {
        /* FCS and FDS stay 0: CPUID says they are deprecated, as on current CPUs. */
        f->fop = ((esc & 7) << 8) | (in->mod << 6) | ((in->reg & 7) << 3) | (in->rm & 7);
        f->fip = cpu->rip;
        if (in->mod != 3) {
            f->fdp = insn_ea(cpu, in);
        }
    }
}
