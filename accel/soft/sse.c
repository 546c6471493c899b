/*
 * SSE and SSE2: the XMM registers and MXCSR.
 *
 * Arithmetic runs on the host's own SSE unit (the host is x86-64), with
 * the guest's MXCSR rounding and DAZ/FTZ modes loaded and every exception
 * masked; the flags it raises are merged into the guest's MXCSR, and an
 * exception the guest left unmasked becomes #XM before anything is
 * written. Data movement and shuffles are plain C. MMX forms (no prefix
 * on the integer opcodes) are not implemented and raise #UD, as CPUID
 * does not report MMX.
 */
#include <emmintrin.h>

#include "soft-internal.h"

typedef void (*HostOp)(XMMReg *d, const XMMReg *s, uint32_t *csr);

/* Run "insn src, dst" on the host with the guest's MXCSR modes. */
#define HOSTOP(fn, insn)                                                    \
static void fn(XMMReg *d, const XMMReg *s, uint32_t *csr)                   \
{                                                                           \
    __m128i a, b;                                                           \
    uint32_t in = (*csr & ~0x3fu) | 0x1f80, out, host;                      \
    memcpy(&a, d, 16);                                                      \
    memcpy(&b, s, 16);                                                      \
    __asm__ volatile("stmxcsr %[host]\n\t"                                  \
                     "ldmxcsr %[in]\n\t"                                    \
                     insn " %[b], %[a]\n\t"                                 \
                     "stmxcsr %[out]\n\t"                                   \
                     "ldmxcsr %[host]"                                      \
                     : [a] "+x"(a), [out] "=m"(out), [host] "=m"(host)      \
                     : [b] "x"(b), [in] "m"(in));                           \
    memcpy(d, &a, 16);                                                      \
    *csr = out;                                                             \
}

#define HOSTOP4(base, ins)                                                  \
    HOSTOP(h_##base##ps, #ins "ps") HOSTOP(h_##base##pd, #ins "pd")         \
    HOSTOP(h_##base##ss, #ins "ss") HOSTOP(h_##base##sd, #ins "sd")

HOSTOP4(add, add) HOSTOP4(mul, mul) HOSTOP4(sub, sub) HOSTOP4(min, min)
HOSTOP4(div, div) HOSTOP4(max, max) HOSTOP4(sqrt, sqrt)
HOSTOP(h_rsqrtps, "rsqrtps") HOSTOP(h_rsqrtss, "rsqrtss")
HOSTOP(h_rcpps, "rcpps") HOSTOP(h_rcpss, "rcpss")
HOSTOP(h_andps, "andps") HOSTOP(h_andnps, "andnps") HOSTOP(h_orps, "orps")
HOSTOP(h_xorps, "xorps")
HOSTOP(h_unpcklps, "unpcklps") HOSTOP(h_unpcklpd, "unpcklpd")
HOSTOP(h_unpckhps, "unpckhps") HOSTOP(h_unpckhpd, "unpckhpd")
HOSTOP(h_cvtps2pd, "cvtps2pd") HOSTOP(h_cvtpd2ps, "cvtpd2ps")
HOSTOP(h_cvtss2sd, "cvtss2sd") HOSTOP(h_cvtsd2ss, "cvtsd2ss")
HOSTOP(h_cvtdq2ps, "cvtdq2ps") HOSTOP(h_cvtps2dq, "cvtps2dq")
HOSTOP(h_cvttps2dq, "cvttps2dq") HOSTOP(h_cvttpd2dq, "cvttpd2dq")
HOSTOP(h_cvtdq2pd, "cvtdq2pd") HOSTOP(h_cvtpd2dq, "cvtpd2dq")
HOSTOP(h_punpcklbw, "punpcklbw") HOSTOP(h_punpcklwd, "punpcklwd")
HOSTOP(h_punpckldq, "punpckldq") HOSTOP(h_packsswb, "packsswb")
HOSTOP(h_pcmpgtb, "pcmpgtb") HOSTOP(h_pcmpgtw, "pcmpgtw") HOSTOP(h_pcmpgtd, "pcmpgtd")
HOSTOP(h_packuswb, "packuswb") HOSTOP(h_punpckhbw, "punpckhbw")
HOSTOP(h_punpckhwd, "punpckhwd") HOSTOP(h_punpckhdq, "punpckhdq")
HOSTOP(h_packssdw, "packssdw") HOSTOP(h_punpcklqdq, "punpcklqdq")
HOSTOP(h_punpckhqdq, "punpckhqdq")
HOSTOP(h_pcmpeqb, "pcmpeqb") HOSTOP(h_pcmpeqw, "pcmpeqw") HOSTOP(h_pcmpeqd, "pcmpeqd")
HOSTOP(h_psrlw, "psrlw") HOSTOP(h_psrld, "psrld") HOSTOP(h_psrlq, "psrlq")
HOSTOP(h_paddq, "paddq") HOSTOP(h_pmullw, "pmullw")
HOSTOP(h_psubusb, "psubusb") HOSTOP(h_psubusw, "psubusw") HOSTOP(h_pminub, "pminub")
HOSTOP(h_pand, "pand") HOSTOP(h_paddusb, "paddusb") HOSTOP(h_paddusw, "paddusw")
HOSTOP(h_pmaxub, "pmaxub") HOSTOP(h_pandn, "pandn")
HOSTOP(h_pavgb, "pavgb") HOSTOP(h_psraw, "psraw") HOSTOP(h_psrad, "psrad")
HOSTOP(h_pavgw, "pavgw") HOSTOP(h_pmulhuw, "pmulhuw") HOSTOP(h_pmulhw, "pmulhw")
HOSTOP(h_psubsb, "psubsb") HOSTOP(h_psubsw, "psubsw") HOSTOP(h_pminsw, "pminsw")
HOSTOP(h_por, "por") HOSTOP(h_paddsb, "paddsb") HOSTOP(h_paddsw, "paddsw")
HOSTOP(h_pmaxsw, "pmaxsw") HOSTOP(h_pxor, "pxor")
HOSTOP(h_psllw, "psllw") HOSTOP(h_pslld, "pslld") HOSTOP(h_psllq, "psllq")
HOSTOP(h_pmuludq, "pmuludq") HOSTOP(h_pmaddwd, "pmaddwd") HOSTOP(h_psadbw, "psadbw")
HOSTOP(h_psubb, "psubb") HOSTOP(h_psubw, "psubw") HOSTOP(h_psubd, "psubd")
HOSTOP(h_psubq, "psubq") HOSTOP(h_paddb, "paddb") HOSTOP(h_paddw, "paddw")
HOSTOP(h_paddd, "paddd")

#define HOSTCMP(t)                                                          \
    HOSTOP(h_cmp##t##0, "cmp" #t " $0,") HOSTOP(h_cmp##t##1, "cmp" #t " $1,") \
    HOSTOP(h_cmp##t##2, "cmp" #t " $2,") HOSTOP(h_cmp##t##3, "cmp" #t " $3,") \
    HOSTOP(h_cmp##t##4, "cmp" #t " $4,") HOSTOP(h_cmp##t##5, "cmp" #t " $5,") \
    HOSTOP(h_cmp##t##6, "cmp" #t " $6,") HOSTOP(h_cmp##t##7, "cmp" #t " $7,") \
    static const HostOp h_cmp##t[8] = {                                     \
        h_cmp##t##0, h_cmp##t##1, h_cmp##t##2, h_cmp##t##3,                 \
        h_cmp##t##4, h_cmp##t##5, h_cmp##t##6, h_cmp##t##7,                 \
    };
HOSTCMP(ps) HOSTCMP(pd) HOSTCMP(ss) HOSTCMP(sd)

/* Prefix index: none, 66, F3, F2 (F2/F3 win over 66). */
enum { P_NONE, P_66, P_F3, P_F2 };

typedef struct SseOp {
    HostOp fn;
    uint8_t msize;      /* memory operand bytes; 16 means aligned m128 */
} SseOp;

#define PS4(b, base) \
    [b][P_NONE] = { h_##base##ps, 16 }, [b][P_66] = { h_##base##pd, 16 }, \
    [b][P_F3] = { h_##base##ss, 4 }, [b][P_F2] = { h_##base##sd, 8 }
#define I66(b, name) [b][P_66] = { h_##name, 16 }

static const SseOp sse_ops[256][4] = {
    PS4(0x58, add), PS4(0x59, mul), PS4(0x5c, sub), PS4(0x5d, min),
    PS4(0x5e, div), PS4(0x5f, max), PS4(0x51, sqrt),
    [0x52][P_NONE] = { h_rsqrtps, 16 }, [0x52][P_F3] = { h_rsqrtss, 4 },
    [0x53][P_NONE] = { h_rcpps, 16 }, [0x53][P_F3] = { h_rcpss, 4 },
    [0x54][P_NONE] = { h_andps, 16 }, [0x54][P_66] = { h_andps, 16 },
    [0x55][P_NONE] = { h_andnps, 16 }, [0x55][P_66] = { h_andnps, 16 },
    [0x56][P_NONE] = { h_orps, 16 }, [0x56][P_66] = { h_orps, 16 },
    [0x57][P_NONE] = { h_xorps, 16 }, [0x57][P_66] = { h_xorps, 16 },
    [0x14][P_NONE] = { h_unpcklps, 16 }, [0x14][P_66] = { h_unpcklpd, 16 },
    [0x15][P_NONE] = { h_unpckhps, 16 }, [0x15][P_66] = { h_unpckhpd, 16 },
    [0x5a][P_NONE] = { h_cvtps2pd, 8 }, [0x5a][P_66] = { h_cvtpd2ps, 16 },
    [0x5a][P_F3] = { h_cvtss2sd, 4 }, [0x5a][P_F2] = { h_cvtsd2ss, 8 },
    [0x5b][P_NONE] = { h_cvtdq2ps, 16 }, [0x5b][P_66] = { h_cvtps2dq, 16 },
    [0x5b][P_F3] = { h_cvttps2dq, 16 },
    [0xe6][P_66] = { h_cvttpd2dq, 16 }, [0xe6][P_F3] = { h_cvtdq2pd, 8 },
    [0xe6][P_F2] = { h_cvtpd2dq, 16 },
    I66(0x60, punpcklbw), I66(0x61, punpcklwd), I66(0x62, punpckldq),
    I66(0x63, packsswb), I66(0x64, pcmpgtb), I66(0x65, pcmpgtw), I66(0x66, pcmpgtd),
    I66(0x67, packuswb), I66(0x68, punpckhbw), I66(0x69, punpckhwd),
    I66(0x6a, punpckhdq), I66(0x6b, packssdw), I66(0x6c, punpcklqdq),
    I66(0x6d, punpckhqdq), I66(0x74, pcmpeqb), I66(0x75, pcmpeqw), I66(0x76, pcmpeqd),
    I66(0xd1, psrlw), I66(0xd2, psrld), I66(0xd3, psrlq), I66(0xd4, paddq),
    I66(0xd5, pmullw), I66(0xd8, psubusb), I66(0xd9, psubusw), I66(0xda, pminub),
    I66(0xdb, pand), I66(0xdc, paddusb), I66(0xdd, paddusw), I66(0xde, pmaxub),
    I66(0xdf, pandn), I66(0xe0, pavgb), I66(0xe1, psraw), I66(0xe2, psrad),
    I66(0xe3, pavgw), I66(0xe4, pmulhuw), I66(0xe5, pmulhw), I66(0xe8, psubsb),
    I66(0xe9, psubsw), I66(0xea, pminsw), I66(0xeb, por), I66(0xec, paddsb),
    I66(0xed, paddsw), I66(0xee, pmaxsw), I66(0xef, pxor), I66(0xf1, psllw),
    I66(0xf2, pslld), I66(0xf3, psllq), I66(0xf4, pmuludq), I66(0xf5, pmaddwd),
    I66(0xf6, psadbw), I66(0xf8, psubb), I66(0xf9, psubw), I66(0xfa, psubd),
    I66(0xfb, psubq), I66(0xfc, paddb), I66(0xfd, paddw), I66(0xfe, paddd),
};

static void sse_check(SoftCPU *cpu)
{
    if ((cpu->cr0 & X86_CR0_EM) || !(cpu->cr4 & X86_CR4_OSFXSR)) {
        soft_ud(cpu);
    }
    if (cpu->cr0 & X86_CR0_TS) {
        soft_raise_noerr(cpu, EXC_NM);
    }
}

/* Merge flags the host raised; an unmasked one faults before any write. */
static void mxcsr_merge(SoftCPU *cpu, uint32_t out)
{
    uint32_t raised = out & 0x3f;
    uint32_t unmasked = raised & ~(cpu->mxcsr >> 7) & 0x3f;

    cpu->mxcsr |= raised;
    if (unmasked) {
        if (cpu->cr4 & X86_CR4_OSXMMEXCPT) {
            soft_raise_noerr(cpu, EXC_XM);
        }
        soft_ud(cpu);
    }
}

static uint64_t mem_lin(SoftCPU *cpu, const Insn *in, unsigned size, bool write, bool aligned)
{
    uint64_t ea = insn_ea(cpu, in);
    uint64_t lin = soft_seg_check(cpu, in->seg, ea, size, write);

    if (aligned && (lin & 15)) {
        soft_gp0(cpu);
    }
    return ea;
}

/* The xmm/m source: @size bytes from memory (16: aligned m128). */
static void load_src(SoftCPU *cpu, const Insn *in, XMMReg *t, unsigned size, bool aligned)
{
    uint64_t ea;

    if (in->mod == 3) {
        *t = cpu->xmm[in->rm];
        return;
    }
    ea = mem_lin(cpu, in, size, false, aligned && size == 16);
    memset(t, 0, sizeof(*t));
    soft_read_bytes(cpu, in->seg, ea, t, size);
}

static void store_dst(SoftCPU *cpu, const Insn *in, const void *v, unsigned size, bool aligned)
{
    uint64_t ea = mem_lin(cpu, in, size, true, aligned && size == 16);

    soft_write_bytes(cpu, in->seg, ea, v, size);
}

static void run_host(SoftCPU *cpu, const Insn *in, const SseOp *op)
{
    XMMReg s, d = cpu->xmm[in->reg];
    uint32_t csr = cpu->mxcsr;

    load_src(cpu, in, &s, op->msize, true);
    op->fn(&d, &s, &csr);
    mxcsr_merge(cpu, csr);
    cpu->xmm[in->reg] = d;
}

/* GPR <-> scalar conversions. */
static void cvt_to_int(SoftCPU *cpu, const Insn *in, bool dbl, bool trunc)
{
    XMMReg s;
    uint32_t in_csr = (cpu->mxcsr & ~0x3fu) | 0x1f80, out, host;
    uint64_t r;

    load_src(cpu, in, &s, dbl ? 8 : 4, false);
    if (in->osize == 8) {
        int64_t v;
        __m128d x;
        memcpy(&x, &s, 16);
        if (dbl && trunc) {
            __asm__ volatile("stmxcsr %[h]; ldmxcsr %[i]; cvttsd2si %[x], %[v]; stmxcsr %[o]; ldmxcsr %[h]"
                             : [v] "=r"(v), [o] "=m"(out), [h] "=m"(host) : [x] "x"(x), [i] "m"(in_csr));
        } else if (dbl) {
            __asm__ volatile("stmxcsr %[h]; ldmxcsr %[i]; cvtsd2si %[x], %[v]; stmxcsr %[o]; ldmxcsr %[h]"
                             : [v] "=r"(v), [o] "=m"(out), [h] "=m"(host) : [x] "x"(x), [i] "m"(in_csr));
        } else if (trunc) {
            __asm__ volatile("stmxcsr %[h]; ldmxcsr %[i]; cvttss2si %[x], %[v]; stmxcsr %[o]; ldmxcsr %[h]"
                             : [v] "=r"(v), [o] "=m"(out), [h] "=m"(host) : [x] "x"(x), [i] "m"(in_csr));
        } else {
            __asm__ volatile("stmxcsr %[h]; ldmxcsr %[i]; cvtss2si %[x], %[v]; stmxcsr %[o]; ldmxcsr %[h]"
                             : [v] "=r"(v), [o] "=m"(out), [h] "=m"(host) : [x] "x"(x), [i] "m"(in_csr));
        }
        r = v;
    } else {
        int32_t v;
        __m128d x;
        memcpy(&x, &s, 16);
        if (dbl && trunc) {
            __asm__ volatile("stmxcsr %[h]; ldmxcsr %[i]; cvttsd2si %[x], %[v]; stmxcsr %[o]; ldmxcsr %[h]"
                             : [v] "=r"(v), [o] "=m"(out), [h] "=m"(host) : [x] "x"(x), [i] "m"(in_csr));
        } else if (dbl) {
            __asm__ volatile("stmxcsr %[h]; ldmxcsr %[i]; cvtsd2si %[x], %[v]; stmxcsr %[o]; ldmxcsr %[h]"
                             : [v] "=r"(v), [o] "=m"(out), [h] "=m"(host) : [x] "x"(x), [i] "m"(in_csr));
        } else if (trunc) {
            __asm__ volatile("stmxcsr %[h]; ldmxcsr %[i]; cvttss2si %[x], %[v]; stmxcsr %[o]; ldmxcsr %[h]"
                             : [v] "=r"(v), [o] "=m"(out), [h] "=m"(host) : [x] "x"(x), [i] "m"(in_csr));
        } else {
            __asm__ volatile("stmxcsr %[h]; ldmxcsr %[i]; cvtss2si %[x], %[v]; stmxcsr %[o]; ldmxcsr %[h]"
                             : [v] "=r"(v), [o] "=m"(out), [h] "=m"(host) : [x] "x"(x), [i] "m"(in_csr));
        }
        r = (uint32_t)v;
    }
    mxcsr_merge(cpu, out);
    reg_write(cpu, in, in->reg, in->osize == 8 ? 8 : 4, r);
}

static void cvt_from_int(SoftCPU *cpu, const Insn *in, bool dbl)
{
    unsigned size = in->osize == 8 ? 8 : 4;
    uint64_t v = rm_read(cpu, in, size);
    uint32_t in_csr = (cpu->mxcsr & ~0x3fu) | 0x1f80, out, host;
    __m128d x;

    memcpy(&x, &cpu->xmm[in->reg], 16);
    if (size == 8) {
        int64_t s = v;
        if (dbl) {
            __asm__ volatile("stmxcsr %[h]; ldmxcsr %[i]; cvtsi2sdq %[s], %[x]; stmxcsr %[o]; ldmxcsr %[h]"
                             : [x] "+x"(x), [o] "=m"(out), [h] "=m"(host) : [s] "r"(s), [i] "m"(in_csr));
        } else {
            __asm__ volatile("stmxcsr %[h]; ldmxcsr %[i]; cvtsi2ssq %[s], %[x]; stmxcsr %[o]; ldmxcsr %[h]"
                             : [x] "+x"(x), [o] "=m"(out), [h] "=m"(host) : [s] "r"(s), [i] "m"(in_csr));
        }
    } else {
        int32_t s = v;
        if (dbl) {
            __asm__ volatile("stmxcsr %[h]; ldmxcsr %[i]; cvtsi2sdl %[s], %[x]; stmxcsr %[o]; ldmxcsr %[h]"
                             : [x] "+x"(x), [o] "=m"(out), [h] "=m"(host) : [s] "r"(s), [i] "m"(in_csr));
        } else {
            __asm__ volatile("stmxcsr %[h]; ldmxcsr %[i]; cvtsi2ssl %[s], %[x]; stmxcsr %[o]; ldmxcsr %[h]"
                             : [x] "+x"(x), [o] "=m"(out), [h] "=m"(host) : [s] "r"(s), [i] "m"(in_csr));
        }
    }
    mxcsr_merge(cpu, out);
    memcpy(&cpu->xmm[in->reg], &x, 16);
}

/* COMISS/UCOMISS/COMISD/UCOMISD: ZF, PF, CF from the host. */
static void comis(SoftCPU *cpu, const Insn *in, bool dbl, bool ordered)
{
    XMMReg s;
    __m128d a, b;
    uint32_t in_csr = (cpu->mxcsr & ~0x3fu) | 0x1f80, out, host;
    bool zf, pf, cf;

    load_src(cpu, in, &s, dbl ? 8 : 4, false);
    memcpy(&a, &cpu->xmm[in->reg], 16);
    memcpy(&b, &s, 16);
#define COMIS(insn)                                                         \
    __asm__ volatile("stmxcsr %[h]; ldmxcsr %[i]; " insn " %[b], %[a]; stmxcsr %[o]; ldmxcsr %[h]" \
                     : "=@ccz"(zf), "=@ccp"(pf), "=@ccc"(cf), [o] "=m"(out), [h] "=m"(host) \
                     : [a] "x"(a), [b] "x"(b), [i] "m"(in_csr))
    if (dbl) {
        if (ordered) {
            COMIS("comisd");
        } else {
            COMIS("ucomisd");
        }
    } else {
        if (ordered) {
            COMIS("comiss");
        } else {
            COMIS("ucomiss");
        }
    }
#undef COMIS
    mxcsr_merge(cpu, out);
    soft_set_arith(cpu, (zf ? X86_RFLAGS_ZF : 0) | (pf ? X86_RFLAGS_PF : 0) |
                   (cf ? X86_RFLAGS_CF : 0));
}

static void shuffle_ps(XMMReg *d, const XMMReg *s, uint8_t imm)
{
    XMMReg r;

    r.d[0] = d->d[imm & 3];
    r.d[1] = d->d[(imm >> 2) & 3];
    r.d[2] = s->d[(imm >> 4) & 3];
    r.d[3] = s->d[(imm >> 6) & 3];
    *d = r;
}

/* PSRLDQ/PSLLDQ: whole-register byte shifts. */
static void byte_shift(XMMReg *d, unsigned n, bool left)
{
    XMMReg r;

    memset(&r, 0, sizeof(r));
    if (n < 16) {
        if (left) {
            memcpy(r.b + n, d->b, 16 - n);
        } else {
            memcpy(r.b, d->b + n, 16 - n);
        }
    }
    *d = r;
}

void op_sse(SoftCPU *cpu, const Insn *in)
{
    unsigned b = in->op & 0xff;
    int p = in->rep == 0xf3 ? P_F3 : in->rep == 0xf2 ? P_F2 : in->has66 ? P_66 : P_NONE;
    const SseOp *op = &sse_ops[b][p];
    XMMReg t, *d = &cpu->xmm[in->reg];

    sse_check(cpu);
    if (op->fn) {
        run_host(cpu, in, op);
        return;
    }
    switch (b) {
    case 0x10:      /* MOVUPS/MOVUPD/MOVSS/MOVSD load */
        if (p == P_F3 || p == P_F2) {
            unsigned n = p == P_F3 ? 4 : 8;
            if (in->mod == 3) {
                memcpy(d, &cpu->xmm[in->rm], n);
            } else {
                load_src(cpu, in, &t, n, false);
                *d = t;     /* a load clears the upper part */
            }
        } else {
            load_src(cpu, in, &t, 16, false);
            *d = t;
        }
        return;
    case 0x11:      /* stores */
        if (p == P_F3 || p == P_F2) {
            unsigned n = p == P_F3 ? 4 : 8;
            if (in->mod == 3) {
                memcpy(&cpu->xmm[in->rm], d, n);
            } else {
                store_dst(cpu, in, d, n, false);
            }
        } else if (in->mod == 3) {
            cpu->xmm[in->rm] = *d;
        } else {
            store_dst(cpu, in, d, 16, false);
        }
        return;
    case 0x12: case 0x16:   /* MOVLPS/MOVHLPS/MOVLPD, MOVHPS/MOVLHPS/MOVHPD */
        if (p == P_F3 || p == P_F2) {
            break;          /* SSE3 */
        }
        if (in->mod == 3) {
            if (p == P_66) {
                break;
            }
            if (b == 0x12) {
                d->q[0] = cpu->xmm[in->rm].q[1];
            } else {
                d->q[1] = cpu->xmm[in->rm].q[0];
            }
            return;
        }
        load_src(cpu, in, &t, 8, false);
        d->q[b == 0x12 ? 0 : 1] = t.q[0];
        return;
    case 0x13: case 0x17:
        if (p == P_F3 || p == P_F2 || in->mod == 3) {
            break;
        }
        store_dst(cpu, in, &d->q[b == 0x13 ? 0 : 1], 8, false);
        return;
    case 0x28:      /* MOVAPS/MOVAPD */
        if (p == P_F3 || p == P_F2) {
            break;
        }
        load_src(cpu, in, &t, 16, true);
        *d = t;
        return;
    case 0x29:
    case 0x2b:      /* MOVNTPS/MOVNTPD */
        if (p == P_F3 || p == P_F2 || (b == 0x2b && in->mod == 3)) {
            break;
        }
        if (in->mod == 3) {
            cpu->xmm[in->rm] = *d;
        } else {
            store_dst(cpu, in, d, 16, true);
        }
        return;
    case 0x2a:
        if (p == P_F3 || p == P_F2) {
            cvt_from_int(cpu, in, p == P_F2);
            return;
        }
        break;
    case 0x2c: case 0x2d:
        if (p == P_F3 || p == P_F2) {
            cvt_to_int(cpu, in, p == P_F2, b == 0x2c);
            return;
        }
        break;
    case 0x2e: case 0x2f:
        if (p == P_NONE || p == P_66) {
            comis(cpu, in, p == P_66, b == 0x2f);
            return;
        }
        break;
    case 0x50:      /* MOVMSKPS/MOVMSKPD */
        if (in->mod != 3 || p == P_F3 || p == P_F2) {
            break;
        }
        if (p == P_66) {
            t = cpu->xmm[in->rm];
            reg_write(cpu, in, in->reg, 4, (t.q[0] >> 63) | ((t.q[1] >> 63) << 1));
        } else {
            t = cpu->xmm[in->rm];
            reg_write(cpu, in, in->reg, 4, (t.d[0] >> 31) | ((t.d[1] >> 31) << 1) |
                      ((t.d[2] >> 31) << 2) | ((t.d[3] >> 31) << 3));
        }
        return;
    case 0x6e:      /* MOVD/MOVQ xmm, r/m */
        if (p != P_66) {
            break;
        }
        memset(&t, 0, sizeof(t));
        t.q[0] = rm_read(cpu, in, in->osize == 8 ? 8 : 4);
        *d = t;
        return;
    case 0x7e:
        if (p == P_66) {    /* MOVD/MOVQ r/m, xmm */
            rm_write(cpu, in, in->osize == 8 ? 8 : 4, d->q[0]);
            return;
        }
        if (p == P_F3) {    /* MOVQ xmm, xmm/m64 */
            load_src(cpu, in, &t, 8, false);
            t.q[1] = 0;
            *d = t;
            return;
        }
        break;
    case 0x6f:      /* MOVDQA/MOVDQU load */
        if (p != P_66 && p != P_F3) {
            break;
        }
        load_src(cpu, in, &t, 16, p == P_66);
        *d = t;
        return;
    case 0x7f:
        if (p != P_66 && p != P_F3) {
            break;
        }
        if (in->mod == 3) {
            cpu->xmm[in->rm] = *d;
        } else {
            store_dst(cpu, in, d, 16, p == P_66);
        }
        return;
    case 0xe7:      /* MOVNTDQ */
        if (p != P_66 || in->mod == 3) {
            break;
        }
        store_dst(cpu, in, d, 16, true);
        return;
    case 0xd6:      /* MOVQ xmm/m64, xmm */
        if (p != P_66) {
            break;
        }
        if (in->mod == 3) {
            cpu->xmm[in->rm].q[0] = d->q[0];
            cpu->xmm[in->rm].q[1] = 0;
        } else {
            store_dst(cpu, in, &d->q[0], 8, false);
        }
        return;
    case 0xd7:      /* PMOVMSKB */
        if (p != P_66 || in->mod != 3) {
            break;
        }
        {
            uint32_t m = 0;
            t = cpu->xmm[in->rm];
            for (int i = 0; i < 16; i++) {
                m |= (uint32_t)(t.b[i] >> 7) << i;
            }
            reg_write(cpu, in, in->reg, 4, m);
        }
        return;
    case 0xf7:      /* MASKMOVDQU to DS:rDI */
        if (p != P_66 || in->mod != 3) {
            break;
        }
        t = cpu->xmm[in->rm];
        for (int i = 0; i < 16; i++) {
            if (t.b[i] & 0x80) {
                uint64_t ea = (cpu->regs[X86_RDI] + i) & size_mask(in->asize);
                soft_write(cpu, in->seg, ea, 1, d->b[i]);
            }
        }
        return;
    case 0x70: {    /* PSHUFD/PSHUFHW/PSHUFLW */
        uint8_t imm = in->imm;
        if (p == P_NONE) {
            break;
        }
        load_src(cpu, in, &t, 16, true);
        XMMReg r = t;
        if (p == P_66) {
            for (int i = 0; i < 4; i++) {
                r.d[i] = t.d[(imm >> (2 * i)) & 3];
            }
        } else if (p == P_F3) {
            for (int i = 0; i < 4; i++) {
                r.w[4 + i] = t.w[4 + ((imm >> (2 * i)) & 3)];
            }
        } else {
            for (int i = 0; i < 4; i++) {
                r.w[i] = t.w[(imm >> (2 * i)) & 3];
            }
        }
        *d = r;
        return;
    }
    case 0x71: case 0x72: case 0x73: {  /* shifts by immediate */
        static const HostOp grp[3][8] = {
            [0] = { [2] = h_psrlw, [4] = h_psraw, [6] = h_psllw },
            [1] = { [2] = h_psrld, [4] = h_psrad, [6] = h_pslld },
            [2] = { [2] = h_psrlq, [6] = h_psllq },
        };
        unsigned r = in->reg & 7;
        XMMReg *dst;
        uint32_t csr = cpu->mxcsr;
        if (p != P_66 || in->mod != 3) {
            break;
        }
        dst = &cpu->xmm[in->rm];
        if (b == 0x73 && (r == 3 || r == 7)) {
            byte_shift(dst, in->imm & 0xff, r == 7);
            return;
        }
        if (!grp[b - 0x71][r]) {
            break;
        }
        memset(&t, 0, sizeof(t));
        t.q[0] = in->imm & 0xff;
        grp[b - 0x71][r](dst, &t, &csr);
        return;
    }
    case 0xc2: {    /* CMPPS/CMPPD/CMPSS/CMPSD */
        static const HostOp *tabs[4] = { h_cmpps, h_cmppd, h_cmpss, h_cmpsd };
        static const uint8_t sizes[4] = { 16, 16, 4, 8 };
        SseOp c = { tabs[p][in->imm & 7], sizes[p] };
        if ((in->imm & 0xff) > 7) {
            break;              /* AVX predicates */
        }
        run_host(cpu, in, &c);
        return;
    }
    case 0xc4:      /* PINSRW */
        if (p != P_66) {
            break;
        }
        d->w[in->imm & 7] = rm_read(cpu, in, 2);
        return;
    case 0xc5:      /* PEXTRW */
        if (p != P_66 || in->mod != 3) {
            break;
        }
        reg_write(cpu, in, in->reg, 4, cpu->xmm[in->rm].w[in->imm & 7]);
        return;
    case 0xc6:      /* SHUFPS/SHUFPD */
        if (p == P_F3 || p == P_F2) {
            break;
        }
        load_src(cpu, in, &t, 16, true);
        if (p == P_66) {
            XMMReg r;
            r.q[0] = d->q[in->imm & 1];
            r.q[1] = t.q[(in->imm >> 1) & 1];
            *d = r;
        } else {
            shuffle_ps(d, &t, in->imm);
        }
        return;
    default:
        break;
    }
    soft_ud(cpu);
}
