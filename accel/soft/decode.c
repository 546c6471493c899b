/*
 * The decoder: prefixes, opcode, ModRM/SIB, displacement and immediates
 * into an Insn that names its handler. Opcode properties come from two
 * tables (one-byte and 0F two-byte maps).
 */
#include "soft-internal.h"

/* Opcode properties. */
#define F_M     (1u << 0)   /* ModRM follows */
#define F_B     (1u << 1)   /* byte operation */
#define F_I8    (1u << 2)   /* imm8 */
#define F_IZ    (1u << 3)   /* imm16/32 by operand size */
#define F_IV    (1u << 4)   /* imm16/32/64 by operand size */
#define F_I16   (1u << 5)   /* imm16 */
#define F_ENTER (1u << 6)   /* imm16, imm8 */
#define F_AP    (1u << 7)   /* far pointer */
#define F_MO    (1u << 8)   /* memory offset of address size */
#define F_D64   (1u << 9)   /* 64-bit default operand size in 64-bit mode */
#define F_F64   (1u << 10)  /* 64-bit operand size in 64-bit mode, always */
#define F_I64   (1u << 11)  /* invalid in 64-bit mode */
#define F_GRP3  (1u << 12)  /* F6/F7: immediate only for TEST */
#define F_LK  (1u << 13)  /* LOCK allowed with a memory operand */
#define F_SSE   (1u << 14)  /* 66/F2/F3 select the operation, not the size */
#define F_REG   (1u << 15)  /* ModRM always names registers (MOV CRn) */

typedef struct OpInfo {
    uint32_t flags;
    InsnFn fn;
} OpInfo;

#define ALU_ROW(base)                                               \
    [base + 0] = { F_M | F_B | F_LK, op_alu },                    \
    [base + 1] = { F_M | F_LK, op_alu },                          \
    [base + 2] = { F_M | F_B, op_alu },                             \
    [base + 3] = { F_M, op_alu },                                   \
    [base + 4] = { F_B | F_I8, op_alu },                            \
    [base + 5] = { F_IZ, op_alu }

static const OpInfo one_byte[256] = {
    ALU_ROW(0x00), ALU_ROW(0x08), ALU_ROW(0x10), ALU_ROW(0x18),
    ALU_ROW(0x20), ALU_ROW(0x28), ALU_ROW(0x30), ALU_ROW(0x38),
    [0x06] = { F_I64, op_push_sreg }, [0x07] = { F_I64, op_pop_sreg },
    [0x0e] = { F_I64, op_push_sreg },
    [0x16] = { F_I64, op_push_sreg }, [0x17] = { F_I64, op_pop_sreg },
    [0x1e] = { F_I64, op_push_sreg }, [0x1f] = { F_I64, op_pop_sreg },
    [0x27] = { F_I64, op_daa }, [0x2f] = { F_I64, op_das },
    [0x37] = { F_I64, op_aaa }, [0x3f] = { F_I64, op_aas },
    [0x40 ... 0x4f] = { 0, op_incdec_r },
    [0x50 ... 0x57] = { F_D64, op_push_r },
    [0x58 ... 0x5f] = { F_D64, op_pop_r },
    [0x60] = { F_I64, op_pusha }, [0x61] = { F_I64, op_popa },
    [0x62] = { F_M | F_I64, op_bound },
    [0x63] = { F_M, op_movsxd },
    [0x68] = { F_IZ | F_D64, op_push_imm },
    [0x69] = { F_M | F_IZ, op_imul_imm },
    [0x6a] = { F_I8 | F_D64, op_push_imm },
    [0x6b] = { F_M | F_I8, op_imul_imm },
    [0x6c] = { F_B, op_ins }, [0x6d] = { 0, op_ins },
    [0x6e] = { F_B, op_outs }, [0x6f] = { 0, op_outs },
    [0x70 ... 0x7f] = { F_I8 | F_F64, op_jcc },
    [0x80] = { F_M | F_B | F_I8 | F_LK, op_grp1 },
    [0x81] = { F_M | F_IZ | F_LK, op_grp1 },
    [0x82] = { F_M | F_B | F_I8 | F_I64 | F_LK, op_grp1 },
    [0x83] = { F_M | F_I8 | F_LK, op_grp1 },
    [0x84] = { F_M | F_B, op_test }, [0x85] = { F_M, op_test },
    [0x86] = { F_M | F_B | F_LK, op_xchg }, [0x87] = { F_M | F_LK, op_xchg },
    [0x88] = { F_M | F_B, op_mov_rm_r }, [0x89] = { F_M, op_mov_rm_r },
    [0x8a] = { F_M | F_B, op_mov_r_rm }, [0x8b] = { F_M, op_mov_r_rm },
    [0x8c] = { F_M, op_mov_sreg_store }, [0x8d] = { F_M, op_lea },
    [0x8e] = { F_M, op_mov_sreg_load }, [0x8f] = { F_M | F_D64, op_pop_rm },
    [0x90 ... 0x97] = { 0, op_xchg_ax },
    [0x98] = { 0, op_cbw }, [0x99] = { 0, op_cwd },
    [0x9a] = { F_AP | F_I64, op_callf }, [0x9b] = { 0, op_fwait },
    [0x9c] = { F_D64, op_pushf }, [0x9d] = { F_D64, op_popf },
    [0x9e] = { 0, op_sahf }, [0x9f] = { 0, op_lahf },
    [0xa0] = { F_B | F_MO, op_mov_moffs }, [0xa1] = { F_MO, op_mov_moffs },
    [0xa2] = { F_B | F_MO, op_mov_moffs }, [0xa3] = { F_MO, op_mov_moffs },
    [0xa4] = { F_B, op_movs }, [0xa5] = { 0, op_movs },
    [0xa6] = { F_B, op_cmps }, [0xa7] = { 0, op_cmps },
    [0xa8] = { F_B | F_I8, op_test }, [0xa9] = { F_IZ, op_test },
    [0xaa] = { F_B, op_stos }, [0xab] = { 0, op_stos },
    [0xac] = { F_B, op_lods }, [0xad] = { 0, op_lods },
    [0xae] = { F_B, op_scas }, [0xaf] = { 0, op_scas },
    [0xb0 ... 0xb7] = { F_B | F_I8, op_mov_r_imm },
    [0xb8 ... 0xbf] = { F_IV, op_mov_r_imm },
    [0xc0] = { F_M | F_B | F_I8, op_grp2 }, [0xc1] = { F_M | F_I8, op_grp2 },
    [0xc2] = { F_I16 | F_F64, op_ret }, [0xc3] = { F_F64, op_ret },
    [0xc4] = { F_M | F_I64, op_lfp }, [0xc5] = { F_M | F_I64, op_lfp },
    [0xc6] = { F_M | F_B | F_I8, op_mov_rm_imm }, [0xc7] = { F_M | F_IZ, op_mov_rm_imm },
    [0xc8] = { F_ENTER | F_D64, op_enter }, [0xc9] = { F_D64, op_leave },
    [0xca] = { F_I16, op_retf }, [0xcb] = { 0, op_retf },
    [0xcc] = { 0, op_int3 }, [0xcd] = { F_I8, op_int },
    [0xce] = { F_I64, op_into }, [0xcf] = { 0, op_iret },
    [0xd0] = { F_M | F_B, op_grp2 }, [0xd1] = { F_M, op_grp2 },
    [0xd2] = { F_M | F_B, op_grp2 }, [0xd3] = { F_M, op_grp2 },
    [0xd4] = { F_I8 | F_I64, op_aam }, [0xd5] = { F_I8 | F_I64, op_aad },
    [0xd6] = { F_I64, op_salc }, [0xd7] = { F_B, op_xlat },
    [0xd8 ... 0xdf] = { F_M, op_x87 },
    [0xe0 ... 0xe3] = { F_I8 | F_F64, op_loop },
    [0xe4] = { F_B | F_I8, op_in }, [0xe5] = { F_I8, op_in },
    [0xe6] = { F_B | F_I8, op_out }, [0xe7] = { F_I8, op_out },
    [0xe8] = { F_IZ | F_F64, op_call_rel }, [0xe9] = { F_IZ | F_F64, op_jmp_rel },
    [0xea] = { F_AP | F_I64, op_jmpf }, [0xeb] = { F_I8 | F_F64, op_jmp_rel },
    [0xec] = { F_B, op_in }, [0xed] = { 0, op_in },
    [0xee] = { F_B, op_out }, [0xef] = { 0, op_out },
    [0xf1] = { 0, op_int1 }, [0xf4] = { 0, op_hlt },
    [0xf5] = { 0, op_flagop },
    [0xf6] = { F_M | F_B | F_GRP3 | F_LK, op_grp3 },
    [0xf7] = { F_M | F_GRP3 | F_LK, op_grp3 },
    [0xf8] = { 0, op_flagop }, [0xf9] = { 0, op_flagop },
    [0xfa] = { 0, op_cli }, [0xfb] = { 0, op_sti },
    [0xfc] = { 0, op_flagop }, [0xfd] = { 0, op_flagop },
    [0xfe] = { F_M | F_B | F_LK, op_grp4 },
    [0xff] = { F_M | F_LK, op_grp5 },
};

static const OpInfo two_byte[256] = {
    [0x00] = { F_M, op_grp6 }, [0x01] = { F_M, op_grp7 },
    [0x02] = { F_M, op_lar }, [0x03] = { F_M, op_lsl },
    [0x05] = { 0, op_syscall }, [0x06] = { 0, op_clts },
    [0x07] = { 0, op_sysret }, [0x08] = { 0, op_invd }, [0x09] = { 0, op_invd },
    [0x0b] = { 0, op_ud }, [0x0d] = { F_M, op_nop },
    [0x10 ... 0x17] = { F_M | F_SSE, op_sse },
    [0x18 ... 0x1f] = { F_M, op_nop },
    [0x20] = { F_M | F_REG, op_mov_cr }, [0x21] = { F_M | F_REG, op_mov_dr },
    [0x22] = { F_M | F_REG, op_mov_cr }, [0x23] = { F_M | F_REG, op_mov_dr },
    [0x28 ... 0x2f] = { F_M | F_SSE, op_sse },
    [0x30] = { 0, op_wrmsr }, [0x31] = { 0, op_rdtsc }, [0x32] = { 0, op_rdmsr },
    [0x33] = { 0, op_rdpmc }, [0x34] = { 0, op_sysenter }, [0x35] = { 0, op_sysexit },
    [0x40 ... 0x4f] = { F_M, op_cmov },
    [0x50 ... 0x6f] = { F_M | F_SSE, op_sse },
    [0x70 ... 0x73] = { F_M | F_SSE | F_I8, op_sse },
    [0x74 ... 0x76] = { F_M | F_SSE, op_sse },
    [0x7c ... 0x7f] = { F_M | F_SSE, op_sse },
    [0x80 ... 0x8f] = { F_IZ | F_F64, op_jcc },
    [0x90 ... 0x9f] = { F_M | F_B, op_setcc },
    [0xa0] = { F_D64, op_push_sreg }, [0xa1] = { F_D64, op_pop_sreg },
    [0xa2] = { 0, op_cpuid }, [0xa3] = { F_M, op_bt },
    [0xa4] = { F_M | F_I8, op_shld }, [0xa5] = { F_M, op_shld },
    [0xa8] = { F_D64, op_push_sreg }, [0xa9] = { F_D64, op_pop_sreg },
    [0xab] = { F_M | F_LK, op_bt },
    [0xac] = { F_M | F_I8, op_shrd }, [0xad] = { F_M, op_shrd },
    [0xae] = { F_M, op_grp15 }, [0xaf] = { F_M, op_imul_rm },
    [0xb0] = { F_M | F_B | F_LK, op_cmpxchg }, [0xb1] = { F_M | F_LK, op_cmpxchg },
    [0xb2] = { F_M, op_lfp }, [0xb3] = { F_M | F_LK, op_bt },
    [0xb4] = { F_M, op_lfp }, [0xb5] = { F_M, op_lfp },
    [0xb6] = { F_M, op_movzx }, [0xb7] = { F_M, op_movzx },
    [0xb8] = { F_M, op_popcnt }, [0xb9] = { F_M, op_ud },
    [0xba] = { F_M | F_I8 | F_LK, op_grp8 }, [0xbb] = { F_M | F_LK, op_bt },
    [0xbc] = { F_M, op_bsf }, [0xbd] = { F_M, op_bsr },
    [0xbe] = { F_M, op_movsx }, [0xbf] = { F_M, op_movsx },
    [0xc0] = { F_M | F_B | F_LK, op_xadd }, [0xc1] = { F_M | F_LK, op_xadd },
    [0xc2] = { F_M | F_SSE | F_I8, op_sse }, [0xc3] = { F_M, op_movnti },
    [0xc4 ... 0xc6] = { F_M | F_SSE | F_I8, op_sse },
    [0xc7] = { F_M | F_LK, op_grp9 },
    [0xc8 ... 0xcf] = { 0, op_bswap },
    [0xd0 ... 0xff] = { F_M | F_SSE, op_sse },
};

/* Bytes of the instruction, fetched lazily so a fault on the next page
 * is raised only if the instruction really reaches it. */
typedef struct Fetch {
    SoftCPU *cpu;
    uint64_t lin;           /* linear address of byte 0 */
    const uint8_t *page;    /* host bytes of the current page, or NULL */
    unsigned avail;         /* bytes of the instruction on that page */
    unsigned n;             /* bytes consumed */
    uint8_t buf[16];
} Fetch;

static void fetch_more(Fetch *f)
{
    SoftCPU *cpu = f->cpu;
    uint64_t lin = f->lin + f->n;
    unsigned off = lin & 0xfff;
    unsigned chunk = PAGE_SIZE - off;
    uint8_t *host;
    uint64_t gpa;

    if (!cpu->long64 && !(cpu->efer & X86_EFER_LMA)) {
        lin &= 0xffffffff;
    }
    if (f->n >= 15) {
        soft_gp0(cpu);
    }
    if (chunk > 15 - f->n) {
        chunk = 15 - f->n;
    }
    gpa = soft_translate(cpu, lin, ACC_FETCH, cpu->midx, &host);
    if (host) {
        memcpy(f->buf + f->n, host, chunk);
    } else {
        /* Code in MMIO (ROM devices): byte by byte through the hook. */
        for (unsigned k = 0; k < chunk; k++) {
            f->buf[f->n + k] = cpu->hooks->mmio_read(cpu->opaque, gpa + k, 1);
        }
    }
    f->avail = f->n + chunk;
}

static inline uint8_t fetch8(Fetch *f)
{
    if (unlikely(f->n >= f->avail)) {
        fetch_more(f);
    }
    return f->buf[f->n++];
}

static uint64_t fetchn(Fetch *f, unsigned size)
{
    uint64_t v = 0;

    for (unsigned k = 0; k < size; k++) {
        v |= (uint64_t)fetch8(f) << (8 * k);
    }
    return v;
}

static void decode_modrm(Fetch *f, Insn *in, uint8_t modrm, bool seg_override)
{
    SoftCPU *cpu = f->cpu;
    unsigned mod = modrm >> 6, rm = modrm & 7;
    int seg = X86_SEG_DS;

    in->mod = mod;
    in->reg = ((modrm >> 3) & 7) | ((in->rex & 4) << 1);
    in->base = -1;
    in->index = -1;
    in->scale = 0;
    in->disp = 0;
    if (mod == 3) {
        in->rm = rm | ((in->rex & 1) << 3);
        return;
    }
    in->rm = rm;
    if (in->asize == 2) {
        static const int8_t b16[8] = { X86_RBX, X86_RBX, X86_RBP, X86_RBP, -1, -1, X86_RBP, X86_RBX };
        static const int8_t i16[8] = { X86_RSI, X86_RDI, X86_RSI, X86_RDI, X86_RSI, X86_RDI, -1, -1 };
        if (mod == 0 && rm == 6) {
            in->disp = (uint16_t)fetchn(f, 2);
        } else {
            in->base = b16[rm];
            in->index = i16[rm];
            if (rm == 4 || rm == 5) {
                in->base = in->index;
                in->index = -1;
            }
            if (in->base == X86_RBP) {
                seg = X86_SEG_SS;
            }
            if (mod == 1) {
                in->disp = (int8_t)fetch8(f);
            } else if (mod == 2) {
                in->disp = (int16_t)fetchn(f, 2);
            }
        }
    } else {
        unsigned base = rm;
        if (rm == 4) {
            uint8_t sib = fetch8(f);
            unsigned idx = ((sib >> 3) & 7) | ((in->rex & 2) << 2);
            base = sib & 7;
            in->scale = sib >> 6;
            if (idx != 4) {
                in->index = idx;
            }
            if (base == 5 && mod == 0) {
                in->disp = (int32_t)fetchn(f, 4);
            } else {
                in->base = base | ((in->rex & 1) << 3);
            }
        } else if (rm == 5 && mod == 0) {
            in->disp = (int32_t)fetchn(f, 4);
            if (cpu->long64) {
                in->base = BASE_RIP;
            }
        } else {
            in->base = base | ((in->rex & 1) << 3);
        }
        if (in->base == X86_RSP || in->base == X86_RBP) {
            seg = X86_SEG_SS;
        }
        if (mod == 1) {
            in->disp = (int8_t)fetch8(f);
        } else if (mod == 2) {
            in->disp = (int32_t)fetchn(f, 4);
        }
    }
    if (!seg_override) {
        in->seg = seg;
    }
}

void soft_decode(SoftCPU *cpu, Insn *in)
{
    Fetch f = { .cpu = cpu, .n = 0, .avail = 0 };
    bool seg_override = false, op66 = false, ad67 = false;
    const OpInfo *info;
    uint8_t b;
    uint32_t fl;

    f.lin = cpu->segs[X86_SEG_CS].base + cpu->rip;
    in->rep = 0;
    in->lock = 0;
    in->rex = 0;
    in->seg = X86_SEG_DS;
    in->imm = 0;
    in->imm2 = 0;
    in->mod = 3;
    in->reg = in->rm = 0;
    in->base = in->index = -1;
    in->disp = 0;

    for (;;) {
        b = fetch8(&f);
        switch (b) {
        case 0x26: case 0x2e: case 0x36: case 0x3e:
            if (!cpu->long64) {
                in->seg = (b >> 3) & 3;
                seg_override = true;
            }
            in->rex = 0;
            continue;
        case 0x64: case 0x65:
            in->seg = X86_SEG_FS + (b & 1);
            seg_override = true;
            in->rex = 0;
            continue;
        case 0x66:
            op66 = true;
            in->rex = 0;
            continue;
        case 0x67:
            ad67 = true;
            in->rex = 0;
            continue;
        case 0xf0:
            in->lock = 1;
            in->rex = 0;
            continue;
        case 0xf2: case 0xf3:
            in->rep = b;
            in->rex = 0;
            continue;
        default:
            break;
        }
        if (cpu->long64 && (b & 0xf0) == 0x40) {
            in->rex = b;
            continue;
        }
        break;
    }

    if (b == 0x0f) {
        b = fetch8(&f);
        if (b == 0x38 || b == 0x3a) {
            /* No SSSE3/SSE4 or later extensions are implemented. */
            soft_ud(cpu);
        }
        in->op = 0x100 | b;
        info = &two_byte[b];
    } else {
        in->op = b;
        info = &one_byte[b];
    }
    fl = info->flags;
    if (!info->fn || (cpu->long64 && (fl & F_I64))) {
        soft_ud(cpu);
    }
    in->fn = info->fn;
    in->has66 = op66;

    if (cpu->long64) {
        in->asize = ad67 ? 4 : 8;
        if (fl & F_B) {
            in->osize = 1;
        } else if (fl & F_F64) {
            in->osize = 8;
        } else if (in->rex & 8) {
            in->osize = 8;
        } else if (op66 && !(fl & F_SSE)) {
            in->osize = 2;
        } else {
            in->osize = (fl & F_D64) ? 8 : 4;
        }
    } else {
        bool big = cpu->code32;
        in->asize = (big ^ ad67) ? 4 : 2;
        if (fl & F_B) {
            in->osize = 1;
        } else if (fl & F_SSE) {
            in->osize = big ? 4 : 2;
        } else {
            in->osize = (big ^ op66) ? 4 : 2;
        }
    }

    if (fl & F_M) {
        uint8_t modrm = fetch8(&f);
        if (fl & F_REG) {
            /* MOV CRn/DRn ignore mod and always name registers. */
            modrm |= 0xc0;
        }
        decode_modrm(&f, in, modrm, seg_override);
    }
    if (in->lock && (!(fl & F_LK) || in->mod == 3)) {
        soft_ud(cpu);
    }

    if (fl & F_GRP3) {
        if ((in->reg & 7) < 2) {
            fl |= (fl & F_B) ? F_I8 : F_IZ;
        }
    }
    if (fl & F_I8) {
        in->imm = (int8_t)fetch8(&f);
    } else if (fl & F_IZ) {
        in->imm = in->osize == 2 ? (uint64_t)(int16_t)fetchn(&f, 2)
                                 : (uint64_t)(int32_t)fetchn(&f, 4);
    } else if (fl & F_IV) {
        in->imm = fetchn(&f, in->osize);
    } else if (fl & F_I16) {
        in->imm = fetchn(&f, 2);
    } else if (fl & F_ENTER) {
        in->imm = fetchn(&f, 2);
        in->imm2 = fetch8(&f);
    } else if (fl & F_AP) {
        in->imm = fetchn(&f, in->osize == 2 ? 2 : 4);
        in->imm2 = fetchn(&f, 2);
    } else if (fl & F_MO) {
        in->disp = fetchn(&f, in->asize);
        in->mod = 0;
    }
    in->len = f.n;

    /* The instruction must lie inside CS in legacy modes. */
    if (!cpu->long64 && cpu->rip + in->len - 1 > cpu->segs[X86_SEG_CS].limit) {
        soft_gp0(cpu);
    }
}
