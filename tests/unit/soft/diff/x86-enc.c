/*
 * Byte encoding of the instruction forms the cases need. Written from the
 * SDM's tables (ModRM/SIB, REX); see x86-enc.h.
 */
#include <stdio.h>
#include <string.h>

#include "x86-enc.h"

EncOp enc_reg(int r)
{
    return (EncOp){ .kind = ENC_OP_REG, .reg = r, .base = ENC_NONE, .index = ENC_NONE };
}

EncOp enc_xmm(int r)
{
    return (EncOp){ .kind = ENC_OP_XMM, .reg = r, .base = ENC_NONE, .index = ENC_NONE };
}

EncOp enc_mem(int base, int index, int scale, int32_t disp)
{
    return (EncOp){ .kind = ENC_OP_MEM, .base = base, .index = index,
                    .scale = scale ? scale : 1, .disp = disp };
}

EncOp enc_rip(uint64_t target)
{
    return (EncOp){ .kind = ENC_OP_MEM, .base = ENC_NONE, .index = ENC_NONE,
                    .scale = 1, .rip = true, .target = target };
}

EncInsn enc_insn(int opsize, int oplen, uint8_t op0, uint8_t op1, uint8_t op2)
{
    EncInsn in = { .opsize = opsize, .oplen = oplen, .reg = ENC_NONE,
                   .opreg = ENC_NONE };

    in.opcode[0] = op0;
    in.opcode[1] = op1;
    in.opcode[2] = op2;
    in.rm.kind = ENC_OP_NONE;
    return in;
}

static int enc_scale_bits(int scale)
{
    switch (scale) {
    case 2: return 1;
    case 4: return 2;
    case 8: return 3;
    default: return 0;
    }
}

unsigned enc_encode(const EncInsn *in, uint64_t addr, uint8_t *out)
{
    uint8_t rex = 0;
    bool need_rex = in->force_rex, no_rex = false;
    uint8_t modrm = 0, sib = 0;
    bool has_modrm = in->reg != ENC_NONE, has_sib = false;
    int disp_size = 0;
    int32_t disp = 0;
    unsigned n = 0, rip_disp_at = 0;
    int reg_field = 0;

    if (in->opsize == 8) {
        rex |= 0x08;
    }
    /* A byte register 4-7 without REX means AH-BH; with REX, SPL-DIL. */
    if (has_modrm && !in->reg_is_digit) {
        int r = in->reg;
        if (r & ENC_HI8) {
            no_rex = true;
            reg_field = r & 7;
        } else {
            reg_field = r & 7;
            rex |= (r & 8) ? 0x04 : 0;
            if (in->opsize == 1 && r >= 4 && r <= 7) {
                need_rex = true;
            }
        }
    } else if (has_modrm) {
        reg_field = in->reg & 7;
    }
    if (in->opreg != ENC_NONE) {
        int r = in->opreg;
        if (r & ENC_HI8) {
            no_rex = true;
        } else {
            rex |= (r & 8) ? 0x01 : 0;
            if (in->opsize == 1 && r >= 4 && r <= 7) {
                need_rex = true;
            }
        }
    }

    if (has_modrm) {
        const EncOp *m = &in->rm;
        if (m->kind != ENC_OP_MEM) {
            int r = m->reg;
            if (m->kind == ENC_OP_REG && (r & ENC_HI8)) {
                no_rex = true;
            } else {
                rex |= (r & 8) ? 0x01 : 0;
                if (m->kind == ENC_OP_REG && in->opsize == 1 && r >= 4 && r <= 7) {
                    need_rex = true;
                }
            }
            modrm = 0xc0 | (reg_field << 3) | (r & 7);
        } else if (m->rip) {
            modrm = (reg_field << 3) | 5;
            disp_size = 4;
        } else if (m->base == ENC_NONE) {
            /* [index*scale + disp32] or absolute [disp32]: SIB with no base. */
            int idx = m->index == ENC_NONE ? 4 : m->index;
            if (m->index != ENC_NONE) {
                rex |= (idx & 8) ? 0x02 : 0;
            }
            modrm = (reg_field << 3) | 4;
            sib = (enc_scale_bits(m->scale) << 6) | ((idx & 7) << 3) | 5;
            has_sib = true;
            disp_size = 4;
            disp = m->disp;
        } else {
            int mod;
            if (m->index == 4) {
                return 0;               /* RSP cannot be an index */
            }
            disp = m->disp;
            if (m->disp_size) {
                disp_size = m->disp_size;
            } else if (disp == 0 && (m->base & 7) != 5) {
                disp_size = 0;
            } else if (disp >= -128 && disp <= 127) {
                disp_size = 1;
            } else {
                disp_size = 4;
            }
            if (disp_size == 0 && (m->base & 7) == 5) {
                disp_size = 1;          /* RBP/R13 need a displacement */
            }
            if (disp_size == 1 && (disp < -128 || disp > 127)) {
                return 0;
            }
            mod = disp_size == 0 ? 0 : disp_size == 1 ? 1 : 2;
            rex |= (m->base & 8) ? 0x01 : 0;
            if (m->index != ENC_NONE || (m->base & 7) == 4) {
                int idx = m->index == ENC_NONE ? 4 : m->index;
                rex |= (m->index != ENC_NONE && (idx & 8)) ? 0x02 : 0;
                modrm = (mod << 6) | (reg_field << 3) | 4;
                sib = (enc_scale_bits(m->scale) << 6) | ((idx & 7) << 3) | (m->base & 7);
                has_sib = true;
            } else {
                modrm = (mod << 6) | (reg_field << 3) | (m->base & 7);
            }
        }
    }

    if (rex) {
        need_rex = true;
    }
    if (need_rex && no_rex) {
        return 0;
    }

    for (int i = 0; i < in->nprefix; i++) {
        out[n++] = in->prefix[i];
    }
    if (has_modrm && in->rm.kind == ENC_OP_MEM && in->rm.addr32) {
        out[n++] = 0x67;
    }
    if (in->opsize == 2 && in->mandatory != 0x66) {
        out[n++] = 0x66;
    }
    if (in->mandatory) {
        out[n++] = in->mandatory;
    }
    if (need_rex) {
        out[n++] = 0x40 | rex;
    }
    for (int i = 0; i < in->oplen; i++) {
        out[n++] = in->opcode[i];
    }
    if (in->opreg != ENC_NONE) {
        out[n - 1] |= in->opreg & 7;
    }
    if (has_modrm) {
        out[n++] = modrm;
        if (has_sib) {
            out[n++] = sib;
        }
        rip_disp_at = n;
        for (int i = 0; i < disp_size; i++) {
            out[n++] = (uint8_t)((uint32_t)disp >> (8 * i));
        }
    }
    for (int i = 0; i < in->imm_size; i++) {
        out[n++] = (uint8_t)((uint64_t)in->imm >> (8 * i));
    }
    if (has_modrm && in->rm.kind == ENC_OP_MEM && in->rm.rip) {
        int64_t rel = (int64_t)(in->rm.target - (addr + n));
        for (int i = 0; i < 4; i++) {
            out[rip_disp_at + i] = (uint8_t)((uint64_t)rel >> (8 * i));
        }
    }
    return n;
}

const char *enc_reg_name(int r, int size)
{
    static const char *const n64[16] = {
        "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15" };
    static const char *const n32[16] = {
        "eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi",
        "r8d", "r9d", "r10d", "r11d", "r12d", "r13d", "r14d", "r15d" };
    static const char *const n16[16] = {
        "ax", "cx", "dx", "bx", "sp", "bp", "si", "di",
        "r8w", "r9w", "r10w", "r11w", "r12w", "r13w", "r14w", "r15w" };
    static const char *const n8[16] = {
        "al", "cl", "dl", "bl", "spl", "bpl", "sil", "dil",
        "r8b", "r9b", "r10b", "r11b", "r12b", "r13b", "r14b", "r15b" };
    static const char *const hi8[4] = { "ah", "ch", "dh", "bh" };

    if (r & ENC_HI8) {
        return hi8[(r & 7) - 4];
    }
    switch (size) {
    case 1: return n8[r & 15];
    case 2: return n16[r & 15];
    case 4: return n32[r & 15];
    default: return n64[r & 15];
    }
}

const char *enc_mem_size_name(int size)
{
    switch (size) {
    case 1: return "byte ";
    case 2: return "word ";
    case 4: return "dword ";
    case 8: return "qword ";
    case 10: return "tword ";
    case 16: return "xmmword ";
    default: return "";
    }
}

void enc_op_text(char *buf, size_t len, const EncOp *op, int size)
{
    switch (op->kind) {
    case ENC_OP_REG:
        snprintf(buf, len, "%s", enc_reg_name(op->reg, size));
        return;
    case ENC_OP_XMM:
        snprintf(buf, len, "xmm%d", op->reg);
        return;
    case ENC_OP_STI:
        snprintf(buf, len, "st(%d)", op->reg);
        return;
    case ENC_OP_MEM: {
        char tmp[64] = "";
        size_t n = 0;
        int areg = op->addr32 ? 4 : 8;
        if (op->rip) {
            snprintf(buf, len, "%s[rip->%#llx]", enc_mem_size_name(size),
                     (unsigned long long)op->target);
            return;
        }
        if (op->base != ENC_NONE) {
            n += snprintf(tmp + n, sizeof(tmp) - n, "%s", enc_reg_name(op->base, areg));
        }
        if (op->index != ENC_NONE) {
            n += snprintf(tmp + n, sizeof(tmp) - n, "%s%s*%d", n ? "+" : "",
                          enc_reg_name(op->index, areg), op->scale);
        }
        if (op->disp || n == 0 || op->disp_size) {
            if (n == 0) {
                n += snprintf(tmp + n, sizeof(tmp) - n, "%#x", (uint32_t)op->disp);
            } else if (op->disp < 0) {
                n += snprintf(tmp + n, sizeof(tmp) - n, "-%#x", -(uint32_t)op->disp);
            } else {
                n += snprintf(tmp + n, sizeof(tmp) - n, "+%#x", (uint32_t)op->disp);
            }
        }
        snprintf(buf, len, "%s[%s]", enc_mem_size_name(size), tmp);
        return;
    }
    default:
        snprintf(buf, len, "?");
        return;
    }
}
