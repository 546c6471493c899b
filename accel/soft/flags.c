/*
 * Lazy arithmetic flags: ALU instructions record their operation, operands
 * and result; CF/PF/AF/ZF/SF/OF are computed only when something reads them.
 */
#include "soft-internal.h"

static uint64_t flags_zsp(uint64_t res, unsigned size)
{
    uint64_t f = 0;

    res &= size_mask(size);
    if (res == 0) {
        f |= X86_RFLAGS_ZF;
    }
    if (res & sign_bit(size)) {
        f |= X86_RFLAGS_SF;
    }
    if (parity8(res)) {
        f |= X86_RFLAGS_PF;
    }
    return f;
}

uint64_t soft_flags_arith(const SoftCPU *cpu)
{
    unsigned size;
    uint64_t m, sb, res, a, b, f;

    if (cpu->cc_op == CC_NONE) {
        return cpu->rflags & FLAGS_ARITH;   /* cc_size means nothing here */
    }
    size = cpu->cc_size;
    m = size_mask(size);
    sb = sign_bit(size);
    res = cpu->cc_res & m;
    a = cpu->cc_src1 & m;
    b = cpu->cc_src2 & m;

    switch (cpu->cc_op) {
    case CC_NONE:
        return cpu->rflags & FLAGS_ARITH;
    case CC_ADD:
    case CC_ADC: {
        unsigned carry = cpu->cc_op == CC_ADC ? cpu->cc_aux & 1 : 0;
        f = flags_zsp(res, size);
        if ((unsigned __int128)a + b + carry > m) {
            f |= X86_RFLAGS_CF;
        }
        if ((a ^ res) & (b ^ res) & sb) {
            f |= X86_RFLAGS_OF;
        }
        f |= (a ^ b ^ res) & X86_RFLAGS_AF;
        return f;
    }
    case CC_SUB:
    case CC_SBB: {
        unsigned borrow = cpu->cc_op == CC_SBB ? cpu->cc_aux & 1 : 0;
        f = flags_zsp(res, size);
        if ((unsigned __int128)a < (unsigned __int128)b + borrow) {
            f |= X86_RFLAGS_CF;
        }
        if ((a ^ b) & (a ^ res) & sb) {
            f |= X86_RFLAGS_OF;
        }
        f |= (a ^ b ^ res) & X86_RFLAGS_AF;
        return f;
    }
    case CC_LOGIC:
        return flags_zsp(res, size);
    case CC_INC:
        f = flags_zsp(res, size) | (cpu->cc_aux & X86_RFLAGS_CF);
        if (res == sb) {
            f |= X86_RFLAGS_OF;
        }
        f |= (a ^ 1 ^ res) & X86_RFLAGS_AF;
        return f;
    case CC_DEC:
        f = flags_zsp(res, size) | (cpu->cc_aux & X86_RFLAGS_CF);
        if (res == sb - 1) {
            f |= X86_RFLAGS_OF;
        }
        f |= (a ^ 1 ^ res) & X86_RFLAGS_AF;
        return f;
    }
    return 0;
}

uint64_t soft_get_rflags(const SoftCPU *cpu)
{
    return (cpu->rflags & ~FLAGS_ARITH) | soft_flags_arith(cpu) | X86_RFLAGS_FIXED;
}

/* Replace the whole register; the caller has applied privilege rules. */
void soft_set_rflags(SoftCPU *cpu, uint64_t v)
{
    cpu->rflags = (v & 0x3f7fd5ULL) | X86_RFLAGS_FIXED;
    cpu->cc_op = CC_NONE;
    soft_update_ac(cpu);
}

/* Set the six arithmetic flags to @bits. */
void soft_set_arith(SoftCPU *cpu, uint64_t bits)
{
    cpu->rflags = (cpu->rflags & ~FLAGS_ARITH) | (bits & FLAGS_ARITH);
    cpu->cc_op = CC_NONE;
}

bool soft_cond(const SoftCPU *cpu, unsigned cc)
{
    uint64_t f;
    bool r;

    /* The common compare-and-branch pairs without building all flags. */
    if (cpu->cc_op == CC_SUB && cc >= 2) {
        unsigned size = cpu->cc_size;
        uint64_t m = size_mask(size);
        uint64_t a = cpu->cc_src1 & m, b = cpu->cc_src2 & m;
        int64_t sa = sext(a, size), sbv = sext(b, size);
        switch (cc >> 1) {
        case 1: r = a < b; return (cc & 1) ? !r : r;             /* B/AE */
        case 2: r = a == b; return (cc & 1) ? !r : r;            /* E/NE */
        case 3: r = a <= b; return (cc & 1) ? !r : r;            /* BE/A */
        case 6: r = sa < sbv; return (cc & 1) ? !r : r;          /* L/GE */
        case 7: r = sa <= sbv; return (cc & 1) ? !r : r;         /* LE/G */
        default: break;
        }
    }
    if (cpu->cc_op != CC_NONE) {
        /* Every lazy operation takes ZF and SF from its result. */
        if ((cc >> 1) == 2) {
            r = (cpu->cc_res & size_mask(cpu->cc_size)) == 0;
            return (cc & 1) ? !r : r;
        }
        if ((cc >> 1) == 4) {
            r = cpu->cc_res & sign_bit(cpu->cc_size);
            return (cc & 1) ? !r : r;
        }
    }

    f = soft_flags_arith(cpu);
    switch (cc >> 1) {
    case 0: r = f & X86_RFLAGS_OF; break;
    case 1: r = f & X86_RFLAGS_CF; break;
    case 2: r = f & X86_RFLAGS_ZF; break;
    case 3: r = f & (X86_RFLAGS_CF | X86_RFLAGS_ZF); break;
    case 4: r = f & X86_RFLAGS_SF; break;
    case 5: r = f & X86_RFLAGS_PF; break;
    case 6: r = !!(f & X86_RFLAGS_SF) != !!(f & X86_RFLAGS_OF); break;
    default:
        r = (f & X86_RFLAGS_ZF) || (!!(f & X86_RFLAGS_SF) != !!(f & X86_RFLAGS_OF));
        break;
    }
    return (cc & 1) ? !r : r;
}
