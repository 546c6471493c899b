/*
 * Integer arithmetic and logic: the eight ALU operations, INC/DEC, shifts
 * and rotates, multiply and divide, bit tests and scans, XADD/CMPXCHG,
 * BCD adjustments. LOCK'ed read-modify-writes use host atomics on the
 * guest page; a page-crossing or MMIO locked access takes a global lock.
 */
#include "soft-internal.h"

enum { ALU_ADD, ALU_OR, ALU_ADC, ALU_SBB, ALU_AND, ALU_SUB, ALU_XOR, ALU_CMP };

static const uint32_t alu_cc[8] = {
    CC_ADD, CC_LOGIC, CC_ADC, CC_SBB, CC_LOGIC, CC_SUB, CC_LOGIC, CC_SUB,
};

/* CF of the last flag-setting operation, cheaper than all six flags. */
static unsigned cur_cf(const SoftCPU *cpu)
{
    uint64_t m = size_mask(cpu->cc_size);

    switch (cpu->cc_op) {
    case CC_NONE: return cpu->rflags & 1;
    case CC_LOGIC: return 0;
    case CC_INC: case CC_DEC: return cpu->cc_aux & 1;
    case CC_ADD: return (cpu->cc_res & m) < (cpu->cc_src1 & m);
    case CC_SUB: return (cpu->cc_src1 & m) < (cpu->cc_src2 & m);
    default: return soft_flags_arith(cpu) & 1;
    }
}

static uint64_t alu_calc(unsigned op, uint64_t a, uint64_t b, unsigned carry)
{
    switch (op) {
    case ALU_ADD: return a + b;
    case ALU_OR: return a | b;
    case ALU_ADC: return a + b + carry;
    case ALU_SBB: return a - b - carry;
    case ALU_AND: return a & b;
    case ALU_XOR: return a ^ b;
    default: return a - b;
    }
}

static void alu_flags(SoftCPU *cpu, unsigned op, unsigned size, uint64_t a,
                      uint64_t b, uint64_t res, unsigned carry)
{
    soft_cc_set(cpu, alu_cc[op], size, res, a, b);
    cpu->cc_aux = carry;
}

/* Host atomics by size; *expected is updated on failure. */
static bool cas_host(uint8_t *p, unsigned size, uint64_t *expected, uint64_t desired)
{
    switch (size) {
    case 1: {
        uint8_t e = *expected;
        bool ok = __atomic_compare_exchange_n(p, &e, (uint8_t)desired, false,
                                              __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        *expected = e;
        return ok;
    }
    case 2: {
        uint16_t e = *expected;
        bool ok = __atomic_compare_exchange_n((uint16_t *)p, &e, (uint16_t)desired, false,
                                              __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        *expected = e;
        return ok;
    }
    case 4: {
        uint32_t e = *expected;
        bool ok = __atomic_compare_exchange_n((uint32_t *)p, &e, (uint32_t)desired, false,
                                              __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        *expected = e;
        return ok;
    }
    default:
        return __atomic_compare_exchange_n((uint64_t *)p, expected, desired, false,
                                           __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    }
}

/* Read-modify-write operations beyond the eight ALU ones. */
enum { RMW_NOT = 8, RMW_NEG, RMW_BTS, RMW_BTR, RMW_BTC };

static inline uint64_t rmw_calc(unsigned op, uint64_t a, uint64_t b, unsigned c)
{
    switch (op) {
    case ALU_ADD: return a + b;
    case ALU_OR: return a | b;
    case ALU_ADC: return a + b + c;
    case ALU_SBB: return a - b - c;
    case ALU_AND: return a & b;
    case ALU_XOR: return a ^ b;
    case RMW_NOT: return ~a;
    case RMW_NEG: return -a;
    case RMW_BTS: return a | b;
    case RMW_BTR: return a & ~b;
    case RMW_BTC: return a ^ b;
    default: return a - b;          /* SUB, CMP */
    }
}

/*
 * Read-modify-write of the r/m operand: returns the old value, the new one
 * in *res. Atomic when the instruction has LOCK.
 */
static inline __attribute__((always_inline))
uint64_t rmw(SoftCPU *cpu, const Insn *in, unsigned size, unsigned op,
                           uint64_t arg, unsigned carry, uint64_t *res)
{
    uint64_t old, ea, lin;
    uint8_t *p = NULL;

    if (in->mod == 3) {
        old = reg_read(cpu, in, in->rm, size);
        *res = rmw_calc(op, old, arg, carry);
        reg_write(cpu, in, in->rm, size, *res);
        return old;
    }
    ea = insn_ea(cpu, in);
    if (soft_fast_lin(cpu, in->seg, ea, &lin)) {
        p = soft_tlb_write_ptr(cpu, lin, size);
    }
    if (!p) {
        p = soft_rmw_ptr(cpu, in->seg, ea, size);
    }
    if (p && in->lock && ((uintptr_t)p & (size - 1))) {
        p = NULL;               /* a split lock: host atomics need alignment */
    }
    if (p) {
        if (in->lock) {
            old = soft_host_load(p, size);
            do {
                *res = rmw_calc(op, old, arg, carry);
            } while (!cas_host(p, size, &old, *res));
        } else {
            old = soft_host_load(p, size);
            *res = rmw_calc(op, old, arg, carry);
            soft_host_store(p, size, *res);
        }
        return old;
    }
    if (in->lock) {
        SoftLockedAccess la;

        soft_locked_prepare(cpu, in->seg, ea, size, &la);
        soft_lock_global();
        old = soft_locked_load(cpu, &la, 0, size);
        *res = rmw_calc(op, old, arg, carry);
        soft_locked_store(cpu, &la, 0, size, *res);
        soft_unlock_global();
        return old;
    }
    old = soft_read(cpu, in->seg, ea, size);
    *res = rmw_calc(op, old, arg, carry);
    soft_write(cpu, in->seg, ea, size, *res);
    return old;
}


/* ALU op on the r/m destination. */
static void alu_rm(SoftCPU *cpu, const Insn *in, unsigned op, unsigned size, uint64_t src)
{
    unsigned carry = (op == ALU_ADC || op == ALU_SBB) ? cur_cf(cpu) : 0;
    uint64_t a, res;

    src &= size_mask(size);
    if (op == ALU_CMP) {
        a = rm_read(cpu, in, size);
        alu_flags(cpu, op, size, a, src, a - src, 0);
        return;
    }
    a = rmw(cpu, in, size, op, src, carry, &res);
    alu_flags(cpu, op, size, a, src, res, carry);
}

void op_alu(SoftCPU *cpu, const Insn *in)
{
    unsigned op = (in->op >> 3) & 7, size = in->osize;
    uint64_t a, b, res;
    unsigned carry;

    switch (in->op & 7) {
    case 0: case 1:
        b = reg_read(cpu, in, in->reg, size);
        if (in->mod == 3) {
            a = reg_read(cpu, in, in->rm, size);
            carry = (op == ALU_ADC || op == ALU_SBB) ? cur_cf(cpu) : 0;
            res = alu_calc(op, a, b, carry);
            alu_flags(cpu, op, size, a, b, res, carry);
            if (op != ALU_CMP) {
                reg_write(cpu, in, in->rm, size, res);
            }
            return;
        }
        alu_rm(cpu, in, op, size, b);
        return;
    case 2: case 3:
        a = reg_read(cpu, in, in->reg, size);
        b = rm_read(cpu, in, size);
        carry = (op == ALU_ADC || op == ALU_SBB) ? cur_cf(cpu) : 0;
        res = alu_calc(op, a, b, carry);
        alu_flags(cpu, op, size, a, b, res, carry);
        if (op != ALU_CMP) {
            reg_write(cpu, in, in->reg, size, res);
        }
        return;
    default:
        a = reg_read(cpu, in, X86_RAX, size);
        b = in->imm & size_mask(size);
        carry = (op == ALU_ADC || op == ALU_SBB) ? cur_cf(cpu) : 0;
        res = alu_calc(op, a, b, carry);
        alu_flags(cpu, op, size, a, b, res, carry);
        if (op != ALU_CMP) {
            reg_write(cpu, in, X86_RAX, size, res);
        }
        return;
    }
}

void op_grp1(SoftCPU *cpu, const Insn *in)
{
    unsigned op = in->reg & 7;

    if (in->lock && op == ALU_CMP) {
        soft_ud(cpu);
    }
    alu_rm(cpu, in, op, in->osize, in->imm);
}

void op_test(SoftCPU *cpu, const Insn *in)
{
    unsigned size = in->osize;
    uint64_t a, b;

    if (in->op == 0xa8 || in->op == 0xa9) {
        a = reg_read(cpu, in, X86_RAX, size);
        b = in->imm;
    } else {
        a = rm_read(cpu, in, size);
        b = reg_read(cpu, in, in->reg, size);
    }
    soft_cc_set(cpu, CC_LOGIC, size, a & b, 0, 0);
}

static void incdec_flags(SoftCPU *cpu, bool dec, unsigned size, uint64_t a, uint64_t res)
{
    unsigned cf = cur_cf(cpu);

    soft_cc_set(cpu, dec ? CC_DEC : CC_INC, size, res, a, 1);
    cpu->cc_aux = cf;
}

void op_incdec_r(SoftCPU *cpu, const Insn *in)
{
    unsigned r = in->op & 7;
    bool dec = in->op & 8;
    uint64_t a = reg_read(cpu, in, r, in->osize);
    uint64_t res = dec ? a - 1 : a + 1;

    incdec_flags(cpu, dec, in->osize, a, res);
    reg_write(cpu, in, r, in->osize, res);
}

void soft_incdec_rm(SoftCPU *cpu, const Insn *in, bool dec)
{
    uint64_t a, res;

    a = rmw(cpu, in, in->osize, dec ? ALU_SUB : ALU_ADD, 1, 0, &res);
    incdec_flags(cpu, dec, in->osize, a, res);
}

void op_grp4(SoftCPU *cpu, const Insn *in)
{
    if ((in->reg & 7) > 1) {
        soft_ud(cpu);
    }
    soft_incdec_rm(cpu, in, in->reg & 1);
}

/* Shifts and rotates compute their flags at once: counts make them rare. */
static uint64_t shift_op(SoftCPU *cpu, unsigned op, unsigned size, uint64_t a, unsigned count)
{
    unsigned bits = size * 8;
    uint64_t m = size_mask(size), sb = sign_bit(size);
    uint64_t f = soft_flags_arith(cpu);
    uint64_t res = a;
    unsigned cf = 0, of = 0;

    a &= m;
    switch (op) {
    case 0: {   /* ROL */
        unsigned c = count % bits;
        res = c ? ((a << c) | (a >> (bits - c))) & m : a;
        cf = res & 1;
        of = !!(res & sb) ^ cf;
        f = (f & ~(X86_RFLAGS_CF | X86_RFLAGS_OF)) | (cf ? X86_RFLAGS_CF : 0) |
            (of ? X86_RFLAGS_OF : 0);
        soft_set_arith(cpu, f);
        return res;
    }
    case 1: {   /* ROR */
        unsigned c = count % bits;
        res = c ? ((a >> c) | (a << (bits - c))) & m : a;
        cf = !!(res & sb);
        of = cf ^ !!(res & (sb >> 1));
        f = (f & ~(X86_RFLAGS_CF | X86_RFLAGS_OF)) | (cf ? X86_RFLAGS_CF : 0) |
            (of ? X86_RFLAGS_OF : 0);
        soft_set_arith(cpu, f);
        return res;
    }
    case 2: case 3: {   /* RCL, RCR through a (bits+1)-bit value */
        unsigned c = count % (bits + 1);
        unsigned __int128 v = ((unsigned __int128)(f & 1) << bits) | a;
        unsigned __int128 vm = ((unsigned __int128)1 << (bits + 1)) - 1;
        if (c) {
            if (op == 2) {
                v = ((v << c) | (v >> (bits + 1 - c))) & vm;
            } else {
                v = ((v >> c) | (v << (bits + 1 - c))) & vm;
            }
        }
        res = (uint64_t)v & m;
        cf = (v >> bits) & 1;
        if (op == 2) {
            of = !!(res & sb) ^ cf;
        } else {
            of = !!(res & sb) ^ !!(res & (sb >> 1));
        }
        f = (f & ~(X86_RFLAGS_CF | X86_RFLAGS_OF)) | (cf ? X86_RFLAGS_CF : 0) |
            (of ? X86_RFLAGS_OF : 0);
        soft_set_arith(cpu, f);
        return res;
    }
    case 4: case 6:     /* SHL/SAL */
        res = count >= 64 ? 0 : (a << count) & m;
        cf = count <= bits ? (a >> (bits - count)) & 1 : 0;
        of = !!(res & sb) ^ cf;
        break;
    case 5:             /* SHR */
        res = count >= 64 ? 0 : a >> count;
        cf = count <= 64 ? (a >> (count - 1)) & 1 : 0;
        if (count > bits) {
            cf = 0;
        }
        of = !!(a & sb);
        break;
    default: {          /* SAR */
        int64_t s = sext(a, size);
        unsigned c = count >= bits ? bits - 1 : count;
        res = (uint64_t)(s >> c) & m;
        cf = (s >> (count > bits ? bits - 1 : count - 1)) & 1;
        of = 0;
        break;
    }
    }
    f = 0;
    if (cf) {
        f |= X86_RFLAGS_CF;
    }
    if (of) {
        f |= X86_RFLAGS_OF;
    }
    if ((res & m) == 0) {
        f |= X86_RFLAGS_ZF;
    }
    if (res & sb) {
        f |= X86_RFLAGS_SF;
    }
    if (parity8(res)) {
        f |= X86_RFLAGS_PF;
    }
    soft_set_arith(cpu, f);
    return res;
}

void op_grp2(SoftCPU *cpu, const Insn *in)
{
    unsigned op = in->reg & 7, size = in->osize;
    unsigned count;
    uint64_t a, res;

    if (in->op == 0xc0 || in->op == 0xc1) {
        count = in->imm & 0xff;
    } else if (in->op == 0xd0 || in->op == 0xd1) {
        count = 1;
    } else {
        count = cpu->regs[X86_RCX] & 0xff;
    }
    count &= size == 8 ? 63 : 31;
    a = rm_read(cpu, in, size);
    if (count == 0) {
        if (in->mod == 3 && size == 4) {
            reg_write(cpu, in, in->rm, 4, a);   /* still zero-extends */
        }
        return;
    }
    /* Flags are committed only once the write has succeeded. */
    uint64_t saved_rflags = cpu->rflags, newf;
    uint32_t saved_op = cpu->cc_op;

    res = shift_op(cpu, op, size, a, count);
    newf = cpu->rflags;
    cpu->rflags = saved_rflags;
    cpu->cc_op = saved_op;
    rm_write(cpu, in, size, res);
    cpu->rflags = newf;
    cpu->cc_op = CC_NONE;
}

static void mul_flags(SoftCPU *cpu, bool overflow, uint64_t low, unsigned size)
{
    uint64_t f = 0;

    if (overflow) {
        f |= X86_RFLAGS_CF | X86_RFLAGS_OF;
    }
    if (low & sign_bit(size)) {
        f |= X86_RFLAGS_SF;
    }
    if (parity8(low)) {
        f |= X86_RFLAGS_PF;
    }
    soft_set_arith(cpu, f);
}

/* a * b at @size, signed; returns the truncated product, sets *ovf. */
static uint64_t imul_trunc(uint64_t a, uint64_t b, unsigned size, bool *ovf)
{
    __int128 p = (__int128)sext(a, size) * (__int128)sext(b, size);
    uint64_t low = (uint64_t)p & size_mask(size);

    *ovf = (__int128)sext(low, size) != p;
    return low;
}

void op_imul_imm(SoftCPU *cpu, const Insn *in)
{
    bool ovf;
    uint64_t res = imul_trunc(rm_read(cpu, in, in->osize), in->imm, in->osize, &ovf);

    reg_write(cpu, in, in->reg, in->osize, res);
    mul_flags(cpu, ovf, res, in->osize);
}

void op_imul_rm(SoftCPU *cpu, const Insn *in)
{
    bool ovf;
    uint64_t b = rm_read(cpu, in, in->osize);
    uint64_t res = imul_trunc(reg_read(cpu, in, in->reg, in->osize), b, in->osize, &ovf);

    reg_write(cpu, in, in->reg, in->osize, res);
    mul_flags(cpu, ovf, res, in->osize);
}

static void set_dx_ax(SoftCPU *cpu, const Insn *in, unsigned size, uint64_t lo, uint64_t hi)
{
    if (size == 1) {
        reg_write(cpu, in, X86_RAX, 2, (lo & 0xff) | ((hi & 0xff) << 8));
    } else {
        reg_write(cpu, in, X86_RAX, size, lo);
        reg_write(cpu, in, X86_RDX, size, hi);
    }
}

static void divide(SoftCPU *cpu, const Insn *in, bool is_signed, uint64_t d)
{
    unsigned size = in->osize, bits = size * 8;
    uint64_t m = size_mask(size);
    unsigned __int128 n;
    uint64_t q, r;

    if ((d & m) == 0) {
        soft_raise_noerr(cpu, EXC_DE);
    }
    if (size == 1) {
        n = cpu->regs[X86_RAX] & 0xffff;
    } else {
        n = ((unsigned __int128)(cpu->regs[X86_RDX] & m) << bits) | (cpu->regs[X86_RAX] & m);
    }
    if (!is_signed) {
        unsigned __int128 qq = n / (d & m);
        if (qq > m) {
            soft_raise_noerr(cpu, EXC_DE);
        }
        q = (uint64_t)qq;
        r = (uint64_t)(n % (d & m));
    } else {
        __int128 sn, sd = sext(d, size), qq, rr;
        /* Sign-extend the 2*bits dividend. */
        if (bits * 2 == 128) {
            sn = (__int128)n;
        } else {
            unsigned sh = 128 - bits * 2;
            sn = (__int128)(n << sh) >> sh;
        }
        if (sd == -1 && bits * 2 == 128 && sn == (__int128)((unsigned __int128)1 << 127)) {
            soft_raise_noerr(cpu, EXC_DE);
        }
        qq = sn / sd;
        rr = sn % sd;
        if (qq > (__int128)(int64_t)(m >> 1) || qq < -(__int128)(int64_t)(m >> 1) - 1) {
            soft_raise_noerr(cpu, EXC_DE);
        }
        q = (uint64_t)qq & m;
        r = (uint64_t)rr & m;
    }
    set_dx_ax(cpu, in, size, q, r);
}

void op_grp3(SoftCPU *cpu, const Insn *in)
{
    unsigned size = in->osize;
    uint64_t a, res;

    switch (in->reg & 7) {
    case 0: case 1:
        if (in->lock) {
            soft_ud(cpu);
        }
        a = rm_read(cpu, in, size);
        soft_cc_set(cpu, CC_LOGIC, size, a & in->imm, 0, 0);
        return;
    case 2:
        rmw(cpu, in, size, RMW_NOT, 0, 0, &res);
        return;
    case 3:
        a = rmw(cpu, in, size, RMW_NEG, 0, 0, &res);
        soft_cc_set(cpu, CC_SUB, size, res, 0, a);
        return;
    }
    if (in->lock) {
        soft_ud(cpu);
    }
    a = rm_read(cpu, in, size);
    switch (in->reg & 7) {
    case 4: {
        unsigned __int128 p = (unsigned __int128)(cpu->regs[X86_RAX] & size_mask(size)) *
                              (a & size_mask(size));
        uint64_t lo = (uint64_t)p & size_mask(size);
        uint64_t hi = (uint64_t)(p >> (size * 8)) & size_mask(size);
        set_dx_ax(cpu, in, size, lo, hi);
        mul_flags(cpu, hi != 0, lo, size);
        return;
    }
    case 5: {
        __int128 p = (__int128)sext(cpu->regs[X86_RAX], size) * (__int128)sext(a, size);
        uint64_t lo = (uint64_t)p & size_mask(size);
        uint64_t hi = (uint64_t)(p >> (size * 8)) & size_mask(size);
        set_dx_ax(cpu, in, size, lo, hi);
        mul_flags(cpu, (__int128)sext(lo, size) != p, lo, size);
        return;
    }
    case 6:
        divide(cpu, in, false, a);
        return;
    default:
        divide(cpu, in, true, a);
        return;
    }
}

static void shxd(SoftCPU *cpu, const Insn *in, bool left)
{
    unsigned size = in->osize, bits = size * 8;
    unsigned count = ((in->op & 1) ? cpu->regs[X86_RCX] : in->imm) & (size == 8 ? 63 : 31);
    uint64_t m = size_mask(size), sb = sign_bit(size);
    uint64_t a, b = reg_read(cpu, in, in->reg, size), res, f = 0;
    unsigned cf;

    a = rm_read(cpu, in, size);
    if (count == 0) {
        if (in->mod == 3 && size == 4) {
            reg_write(cpu, in, in->rm, 4, a);
        }
        return;
    }
    if (size == 2) {
        /* Counts above 16 shift through a:b:a, as hardware does. */
        uint64_t v = left ? (a << 32) | (b << 16) | a : a | (b << 16) | (a << 32);
        if (left) {
            res = (v << count) >> 32 & 0xffff;
            cf = (v >> (48 - count)) & 1;
        } else {
            res = (v >> count) & 0xffff;
            cf = (v >> (count - 1)) & 1;
        }
    } else if (left) {
        res = ((a << count) | (b >> (bits - count))) & m;
        cf = (a >> (bits - count)) & 1;
    } else {
        res = ((a >> count) | (b << (bits - count))) & m;
        cf = (a >> (count - 1)) & 1;
    }
    rm_write(cpu, in, size, res);
    if (cf) {
        f |= X86_RFLAGS_CF;
    }
    if ((a ^ res) & sb) {
        f |= X86_RFLAGS_OF;
    }
    if ((res & m) == 0) {
        f |= X86_RFLAGS_ZF;
    }
    if (res & sb) {
        f |= X86_RFLAGS_SF;
    }
    if (parity8(res)) {
        f |= X86_RFLAGS_PF;
    }
    soft_set_arith(cpu, f);
}

void op_shld(SoftCPU *cpu, const Insn *in)
{
    shxd(cpu, in, true);
}

void op_shrd(SoftCPU *cpu, const Insn *in)
{
    shxd(cpu, in, false);
}

/* BT/BTS/BTR/BTC: @kind 0 test, 1 set, 2 reset, 3 complement. */
static void bit_op(SoftCPU *cpu, const Insn *in, unsigned kind, int64_t bitoff, bool reg_offset)
{
    unsigned size = in->osize, bits = size * 8;
    uint64_t v, res, mask;
    unsigned bit;

    if (in->lock && kind == 0) {
        soft_ud(cpu);
    }
    if (in->mod == 3 || !reg_offset) {
        bit = bitoff & (bits - 1);
        mask = 1ULL << bit;
        if (kind == 0) {
            v = rm_read(cpu, in, size);
        } else {
            v = rmw(cpu, in, size, RMW_BTS + kind - 1, mask, 0, &res);
        }
    } else {
        /* A register offset reaches memory beyond the operand. */
        Insn tmp = *in;
        int64_t byteoff = (bitoff >> (size == 8 ? 6 : size == 4 ? 5 : 4)) * (int64_t)size;
        bit = bitoff & (bits - 1);
        mask = 1ULL << bit;
        tmp.disp += byteoff;
        if (kind == 0) {
            v = rm_read(cpu, &tmp, size);
        } else {
            v = rmw(cpu, &tmp, size, RMW_BTS + kind - 1, mask, 0, &res);
        }
    }
    soft_set_arith(cpu, (soft_flags_arith(cpu) & ~X86_RFLAGS_CF) | ((v >> bit) & 1));
}

void op_bt(SoftCPU *cpu, const Insn *in)
{
    unsigned kind;

    switch (in->op) {
    case 0x1a3: kind = 0; break;
    case 0x1ab: kind = 1; break;
    case 0x1b3: kind = 2; break;
    default: kind = 3; break;
    }
    bit_op(cpu, in, kind, sext(reg_read(cpu, in, in->reg, in->osize), in->osize), true);
}

void op_grp8(SoftCPU *cpu, const Insn *in)
{
    unsigned r = in->reg & 7;

    if (r < 4) {
        soft_ud(cpu);
    }
    bit_op(cpu, in, r - 4, in->imm & 0xff, false);
}

void op_bsf(SoftCPU *cpu, const Insn *in)
{
    uint64_t v = rm_read(cpu, in, in->osize) & size_mask(in->osize);
    uint64_t f = soft_flags_arith(cpu) & ~X86_RFLAGS_ZF;

    if (v == 0) {
        soft_set_arith(cpu, f | X86_RFLAGS_ZF);
        return;
    }
    reg_write(cpu, in, in->reg, in->osize, __builtin_ctzll(v));
    soft_set_arith(cpu, f);
}

void op_bsr(SoftCPU *cpu, const Insn *in)
{
    uint64_t v = rm_read(cpu, in, in->osize) & size_mask(in->osize);
    uint64_t f = soft_flags_arith(cpu) & ~X86_RFLAGS_ZF;

    if (v == 0) {
        soft_set_arith(cpu, f | X86_RFLAGS_ZF);
        return;
    }
    reg_write(cpu, in, in->reg, in->osize, 63 - __builtin_clzll(v));
    soft_set_arith(cpu, f);
}

void op_popcnt(SoftCPU *cpu, const Insn *in)
{
    uint64_t v;

    if (in->rep != 0xf3) {
        soft_ud(cpu);
    }
    v = rm_read(cpu, in, in->osize) & size_mask(in->osize);
    reg_write(cpu, in, in->reg, in->osize, __builtin_popcountll(v));
    soft_set_arith(cpu, v ? 0 : X86_RFLAGS_ZF);
}

void op_xadd(SoftCPU *cpu, const Insn *in)
{
    unsigned size = in->osize;
    uint64_t b = reg_read(cpu, in, in->reg, size), a, res;

    a = rmw(cpu, in, size, ALU_ADD, b, 0, &res);
    if (in->mod != 3 || in->rm != in->reg) {
        reg_write(cpu, in, in->reg, size, a);
    }
    alu_flags(cpu, ALU_ADD, size, a, b, res, 0);
}

void op_cmpxchg(SoftCPU *cpu, const Insn *in)
{
    unsigned size = in->osize;
    uint64_t m = size_mask(size);
    uint64_t acc = reg_read(cpu, in, X86_RAX, size);
    uint64_t src = reg_read(cpu, in, in->reg, size);
    uint64_t old;

    if (in->mod == 3) {
        old = reg_read(cpu, in, in->rm, size);
        if (old == acc) {
            reg_write(cpu, in, in->rm, size, src);
        } else {
            reg_write(cpu, in, X86_RAX, size, old);
        }
    } else {
        uint64_t ea = insn_ea(cpu, in);
        uint8_t *p = soft_rmw_ptr(cpu, in->seg, ea, size);
        if (p && ((uintptr_t)p & (size - 1))) {
            p = NULL;
        }
        if (p) {
            old = acc;
            if (!cas_host(p, size, &old, src)) {
                reg_write(cpu, in, X86_RAX, size, old);
            }
        } else {
            SoftLockedAccess la;

            soft_locked_prepare(cpu, in->seg, ea, size, &la);
            soft_lock_global();
            old = soft_locked_load(cpu, &la, 0, size);
            soft_locked_store(cpu, &la, 0, size, old == acc ? src : old);
            soft_unlock_global();
            if (old != acc) {
                reg_write(cpu, in, X86_RAX, size, old);
            }
        }
    }
    alu_flags(cpu, ALU_CMP, size, acc, old & m, acc - old, 0);
}

static bool cas16_host(uint8_t *p, uint64_t *lo, uint64_t *hi, uint64_t nlo, uint64_t nhi)
{
    bool ok;

    __asm__ volatile("lock cmpxchg16b %1"
                     : "=@ccz"(ok), "+m"(*(unsigned __int128 *)p), "+a"(*lo), "+d"(*hi)
                     : "b"(nlo), "c"(nhi)
                     : "memory");
    return ok;
}

void op_grp9(SoftCPU *cpu, const Insn *in)
{
    unsigned r = in->reg & 7;

    if (r == 7 && in->mod == 3 && in->rep == 0xf3) {
        /* RDPID */
        reg_write(cpu, in, in->rm, cpu->long64 ? 8 : 4, cpu->tsc_aux);
        return;
    }
    if (r != 1 || in->mod == 3) {
        soft_ud(cpu);
    }
    uint64_t ea = insn_ea(cpu, in);
    uint64_t f = soft_flags_arith(cpu) & ~X86_RFLAGS_ZF;
    if (in->rex & 8) {
        uint64_t lo = cpu->regs[X86_RAX], hi = cpu->regs[X86_RDX];
        uint8_t *p;
        if (ea & 15) {
            soft_gp0(cpu);
        }
        p = soft_rmw_ptr(cpu, in->seg, ea, 16);
        if (p) {
            if (cas16_host(p, &lo, &hi, cpu->regs[X86_RBX], cpu->regs[X86_RCX])) {
                f |= X86_RFLAGS_ZF;
            } else {
                cpu->regs[X86_RAX] = lo;
                cpu->regs[X86_RDX] = hi;
            }
        } else {
            uint64_t ml, mh;
            SoftLockedAccess la;

            soft_locked_prepare(cpu, in->seg, ea, 16, &la);
            soft_lock_global();
            ml = soft_locked_load(cpu, &la, 0, 8);
            mh = soft_locked_load(cpu, &la, 8, 8);
            if (ml == lo && mh == hi) {
                soft_locked_store(cpu, &la, 0, 8, cpu->regs[X86_RBX]);
                soft_locked_store(cpu, &la, 8, 8, cpu->regs[X86_RCX]);
                f |= X86_RFLAGS_ZF;
            }
            soft_unlock_global();
            if (!(f & X86_RFLAGS_ZF)) {
                cpu->regs[X86_RAX] = ml;
                cpu->regs[X86_RDX] = mh;
            }
        }
    } else {
        uint64_t expect = (cpu->regs[X86_RAX] & 0xffffffff) | (cpu->regs[X86_RDX] << 32);
        uint64_t desired = (cpu->regs[X86_RBX] & 0xffffffff) | (cpu->regs[X86_RCX] << 32);
        uint8_t *p = soft_rmw_ptr(cpu, in->seg, ea, 8);
        uint64_t old = expect;
        if (p && ((uintptr_t)p & 7)) {
            p = NULL;
        }
        bool ok;
        if (p) {
            ok = cas_host(p, 8, &old, desired);
        } else {
            SoftLockedAccess la;

            soft_locked_prepare(cpu, in->seg, ea, 8, &la);
            soft_lock_global();
            old = soft_locked_load(cpu, &la, 0, 8);
            ok = old == expect;
            soft_locked_store(cpu, &la, 0, 8, ok ? desired : old);
            soft_unlock_global();
        }
        if (ok) {
            f |= X86_RFLAGS_ZF;
        } else {
            cpu->regs[X86_RAX] = (uint32_t)old;
            cpu->regs[X86_RDX] = old >> 32;
        }
    }
    soft_set_arith(cpu, f);
}

void op_bswap(SoftCPU *cpu, const Insn *in)
{
    unsigned r = (in->op & 7) | ((in->rex & 1) << 3);

    if (in->osize == 8) {
        cpu->regs[r] = __builtin_bswap64(cpu->regs[r]);
    } else if (in->osize == 4) {
        cpu->regs[r] = __builtin_bswap32((uint32_t)cpu->regs[r]);
    } else {
        reg_write(cpu, in, r, 2, 0);
    }
}

void op_cbw(SoftCPU *cpu, const Insn *in)
{
    unsigned half = in->osize / 2;

    reg_write(cpu, in, X86_RAX, in->osize, sext(cpu->regs[X86_RAX], half));
}

void op_cwd(SoftCPU *cpu, const Insn *in)
{
    bool neg = cpu->regs[X86_RAX] & sign_bit(in->osize);

    reg_write(cpu, in, X86_RDX, in->osize, neg ? ~0ULL : 0);
}

void op_salc(SoftCPU *cpu, const Insn *in)
{
    reg_write(cpu, in, X86_RAX, 1, cur_cf(cpu) ? 0xff : 0);
}

static void set_zsp8(SoftCPU *cpu, uint64_t f, uint8_t v)
{
    f &= ~(X86_RFLAGS_ZF | X86_RFLAGS_SF | X86_RFLAGS_PF);
    if (v == 0) {
        f |= X86_RFLAGS_ZF;
    }
    if (v & 0x80) {
        f |= X86_RFLAGS_SF;
    }
    if (parity8(v)) {
        f |= X86_RFLAGS_PF;
    }
    soft_set_arith(cpu, f);
}

void op_daa(SoftCPU *cpu, const Insn *in)
{
    uint64_t f = soft_flags_arith(cpu);
    uint8_t al = cpu->regs[X86_RAX], old = al;
    bool cf = f & X86_RFLAGS_CF;

    f &= ~(X86_RFLAGS_CF | X86_RFLAGS_AF | X86_RFLAGS_OF);
    if ((old & 0xf) > 9 || (soft_flags_arith(cpu) & X86_RFLAGS_AF)) {
        al += 6;
        f |= X86_RFLAGS_AF;
    }
    if (old > 0x99 || cf) {
        al += 0x60;
        f |= X86_RFLAGS_CF;
    }
    reg_write(cpu, in, X86_RAX, 1, al);
    set_zsp8(cpu, f, al);
}

void op_das(SoftCPU *cpu, const Insn *in)
{
    uint64_t f0 = soft_flags_arith(cpu), f = f0;
    uint8_t al = cpu->regs[X86_RAX], old = al;
    bool cf = f & X86_RFLAGS_CF;

    f &= ~(X86_RFLAGS_CF | X86_RFLAGS_AF | X86_RFLAGS_OF);
    if ((old & 0xf) > 9 || (f0 & X86_RFLAGS_AF)) {
        al -= 6;
        f |= X86_RFLAGS_AF;
    }
    if (old > 0x99 || cf) {
        al -= 0x60;
        f |= X86_RFLAGS_CF;
    }
    reg_write(cpu, in, X86_RAX, 1, al);
    set_zsp8(cpu, f, al);
}

static void aaa_aas(SoftCPU *cpu, bool sub)
{
    uint64_t f = soft_flags_arith(cpu);
    uint16_t ax = cpu->regs[X86_RAX];

    if ((ax & 0xf) > 9 || (f & X86_RFLAGS_AF)) {
        ax = sub ? ax - 6 : ax + 0x106;
        if (sub) {
            ax = (ax & 0xff) | ((((ax >> 8) - 1) & 0xff) << 8);
        }
        f |= X86_RFLAGS_AF | X86_RFLAGS_CF;
    } else {
        f &= ~(X86_RFLAGS_AF | X86_RFLAGS_CF);
    }
    ax &= 0xff0f;
    cpu->regs[X86_RAX] = (cpu->regs[X86_RAX] & ~0xffffULL) | ax;
    soft_set_arith(cpu, f);
}

void op_aaa(SoftCPU *cpu, const Insn *in)
{
    aaa_aas(cpu, false);
}

void op_aas(SoftCPU *cpu, const Insn *in)
{
    aaa_aas(cpu, true);
}

void op_aam(SoftCPU *cpu, const Insn *in)
{
    uint8_t base = in->imm, al = cpu->regs[X86_RAX];

    if (base == 0) {
        soft_raise_noerr(cpu, EXC_DE);
    }
    reg_write(cpu, in, X86_RAX, 2, ((al / base) << 8) | (al % base));
    set_zsp8(cpu, 0, al % base);
}

void op_aad(SoftCPU *cpu, const Insn *in)
{
    uint8_t base = in->imm, al = cpu->regs[X86_RAX], ah = cpu->regs[X86_RAX] >> 8;
    uint8_t r = al + ah * base;

    reg_write(cpu, in, X86_RAX, 2, r);
    set_zsp8(cpu, 0, r);
}
