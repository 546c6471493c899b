/*
 * Operand set-up shared by the integer case groups (see cases-util.h).
 */
#include "cases-util.h"

void cu_set_reg(CaseGen *g, DiffCase *c, int r, int size, uint64_t v)
{
    if (r & ENC_HI8) {
        int base = (r & 7) - 4;
        c->in.gpr[base] = (c->in.gpr[base] & ~0xff00ULL) | ((v & 0xff) << 8);
        return;
    }
    uint64_t mask = size == 8 ? ~0ULL : (1ULL << (size * 8)) - 1;
    c->in.gpr[r] = (cg_rand(g) & ~mask) | (v & mask);
}

/* A register for an operand; in legacy byte mode one of AL-BL, AH-BH. */
static int cu_pick(CaseGen *g, bool legacy8, uint32_t used)
{
    if (legacy8) {
        for (;;) {
            int r = (int)cg_below(g, 8);
            r = r < 4 ? r : (ENC_HI8 | r);
            if (!(used & cu_reg_bit(r))) {
                return r;
            }
        }
    }
    return cg_pick_reg(g, used);
}

void cu_operands(CaseGen *g, DiffCase *c, int size, bool mem, int nregs, CUOperands *o)
{
    bool legacy8 = size == 1 && cg_chance(g, 33);
    /* Registers 8-15 need REX, which would turn AH-BH into SPL-DIL. */
    uint32_t used = legacy8 ? 0xff00 : 0;

    o->reg = ENC_NONE;
    o->addr = 0;
    if (nregs == 2) {
        o->reg = cu_pick(g, legacy8, used);
        used |= cu_reg_bit(o->reg);
        cu_set_reg(g, c, o->reg, size, cg_value(g, size));
    }
    if (mem) {
        uint64_t v = cg_value(g, size);
        o->addr = cg_data_addr(g, size, 16);
        cg_patch(c, o->addr, &v, size);
        o->rm = cg_mem(g, c, o->addr, &used);
    } else if (nregs == 2 && cg_chance(g, 8)) {
        o->rm = enc_reg(o->reg);                    /* same register twice */
    } else {
        int r = cu_pick(g, legacy8, used);
        used |= cu_reg_bit(r);
        cu_set_reg(g, c, r, size, cg_value(g, size));
        o->rm = enc_reg(r);
    }
    o->used = used & 0xffff;
    if (legacy8) {
        o->used &= 0xff;
    }
}
