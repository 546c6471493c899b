/*
 * Exceptions: #UD for opcodes that do not exist in 64-bit mode and for
 * misused prefixes, #GP for privileged instructions at CPL 3 and for
 * non-canonical or misaligned-SSE accesses, #SS for a non-canonical stack,
 * #PF for reads, writes and fetches of the unmapped page and writes to the
 * read-only page (including accesses that straddle into them), #DE, #BP,
 * #AC with EFLAGS.AC set, and #XM for an unmasked SSE exception. For each:
 * the vector, the faulting RIP, the error code and CR2, and the registers
 * at the fault (nothing the faulting instruction would have changed).
 */
#include <string.h>

#include "case-gen.h"

static void fault_bytes(CaseGen *g, const uint8_t *b, unsigned n, const char *name)
{
    DiffCase c;
    static const uint8_t nop_mov[] = { 0xb0, 0x01 };    /* mov al, 1 before it */

    cg_begin(g, &c);
    if (cg_chance(g, 50)) {
        cg_emit_bytes(&c, nop_mov, 2, "mov al, 1");
    }
    cg_emit_bytes(&c, b, n, "%s", name);
    cg_commit(g, &c);
}

/* "op reg, [reg]" or "op [reg], reg" at address @addr, 64-bit. */
static void fault_access(CaseGen *g, uint64_t addr, bool store, int size, const char *what)
{
    DiffCase c;
    EncInsn in = enc_insn(size, 1, (store ? 0x88 : 0x8a) + (size != 1), 0, 0);
    int b = cg_pick_reg(g, 1u << X86_RAX);

    cg_begin(g, &c);
    c.in.gpr[b] = addr;
    in.reg = X86_RAX;
    in.rm = enc_mem(b, ENC_NONE, 1, 0);
    cg_emit(&c, &in, "mov %s [%s], %s (%s)", store ? "to" : "from", enc_reg_name(b, 8),
            enc_reg_name(X86_RAX, size), what);
    cg_commit(g, &c);
}

void cases_faults(CaseGen *g)
{
    static const struct {
        uint8_t b[4];
        unsigned n;
        const char *name;
    } ud[] = {
        { { 0x0f, 0x0b }, 2, "ud2" },
        { { 0x06 }, 1, "push es (invalid in 64-bit)" },
        { { 0x07 }, 1, "pop es (invalid in 64-bit)" },
        { { 0x0e }, 1, "push cs (invalid in 64-bit)" },
        { { 0x16 }, 1, "push ss (invalid in 64-bit)" },
        { { 0x1f }, 1, "pop ds (invalid in 64-bit)" },
        { { 0x27 }, 1, "daa (invalid in 64-bit)" },
        { { 0x2f }, 1, "das (invalid in 64-bit)" },
        { { 0x37 }, 1, "aaa (invalid in 64-bit)" },
        { { 0x3f }, 1, "aas (invalid in 64-bit)" },
        { { 0x60 }, 1, "pusha (invalid in 64-bit)" },
        { { 0x61 }, 1, "popa (invalid in 64-bit)" },
        { { 0xce }, 1, "into (invalid in 64-bit)" },
        { { 0xd4, 0x0a }, 2, "aam (invalid in 64-bit)" },
        { { 0xd5, 0x0a }, 2, "aad (invalid in 64-bit)" },
        { { 0xd6 }, 1, "salc (invalid in 64-bit)" },
        { { 0x82, 0xc0, 0x01 }, 3, "82 /0 (invalid in 64-bit)" },
        { { 0x9a, 0, 0, 0 }, 4, "call far (invalid in 64-bit)" },
        { { 0xea, 0, 0, 0 }, 4, "jmp far (invalid in 64-bit)" },
        { { 0xf0, 0x01, 0xd8 }, 3, "lock add eax, ebx (register destination)" },
        { { 0xf0, 0x8b, 0x03 }, 3, "lock mov eax, [rbx]" },
        { { 0xf0, 0x90 }, 2, "lock nop" },
        { { 0x8d, 0xc0 }, 2, "lea eax, eax" },
        { { 0x8e, 0xc8 }, 2, "mov cs, eax" },
        { { 0x0f, 0xff, 0xc0 }, 3, "ud0" },
        { { 0x0f, 0xb9, 0xc0 }, 3, "ud1" },
        { { 0xfe, 0xd0 }, 2, "fe /2 (reserved)" },
        { { 0xff, 0xd8 }, 2, "call far eax (register form)" },
    };
    static const struct {
        uint8_t b[4];
        unsigned n;
        const char *name;
    } gp[] = {
        { { 0xf4 }, 1, "hlt" },
        { { 0xfa }, 1, "cli" },
        { { 0xfb }, 1, "sti" },
        { { 0xec }, 1, "in al, dx" },
        { { 0xee }, 1, "out dx, al" },
        { { 0xe4, 0x80 }, 2, "in al, 0x80" },
        { { 0xe6, 0x80 }, 2, "out 0x80, al" },
        { { 0x0f, 0x20, 0xc0 }, 3, "mov rax, cr0" },
        { { 0x0f, 0x22, 0xd8 }, 3, "mov cr3, rax" },
        { { 0x0f, 0x21, 0xc0 }, 3, "mov rax, dr0" },
        { { 0x0f, 0x06 }, 2, "clts" },
        { { 0x0f, 0x08 }, 2, "invd" },
        { { 0x0f, 0x09 }, 2, "wbinvd" },
        { { 0x0f, 0x30 }, 2, "wrmsr" },
        { { 0x0f, 0x32 }, 2, "rdmsr" },
        { { 0x0f, 0x01, 0xf8 }, 3, "swapgs" },
        { { 0x0f, 0x01, 0x3b }, 3, "invlpg [rbx]" },
        { { 0x0f, 0x01, 0x13 }, 3, "lgdt [rbx]" },
        { { 0x0f, 0x01, 0x1b }, 3, "lidt [rbx]" },
        { { 0x0f, 0x00, 0xd8 }, 3, "ltr ax" },
        { { 0xcd, 0x20 }, 2, "int 0x20 (gate DPL 0)" },
        { { 0xcd, 0x0d }, 2, "int 0x0d (gate DPL 0)" },
    };

    for (int n = 0; n < 3; n++) {
        for (unsigned i = 0; i < G_N_ELEMENTS(ud); i++) {
            fault_bytes(g, ud[i].b, ud[i].n, ud[i].name);
        }
        for (unsigned i = 0; i < G_N_ELEMENTS(gp); i++) {
            fault_bytes(g, gp[i].b, gp[i].n, gp[i].name);
        }
    }
    {
        static const uint8_t int3[] = { 0xcc }, int3b[] = { 0xcd, 0x03 };
        fault_bytes(g, int3, 1, "int3");
        fault_bytes(g, int3b, 2, "int 3");
    }

    /* Page faults: unmapped and read-only pages, straddling accesses. */
    for (int n = 0; n < 4; n++) {
        static const int sizes[4] = { 1, 2, 4, 8 };
        int size = sizes[n];
        fault_access(g, DIFF_UNMAPPED_ADDR + cg_below(g, 0x1000 - 8), false, size,
                     "unmapped read");
        fault_access(g, DIFF_UNMAPPED_ADDR + cg_below(g, 0x1000 - 8), true, size,
                     "unmapped write");
        fault_access(g, DIFF_RO_ADDR + cg_below(g, 0x1000 - 8), false, size,
                     "read-only page read: no fault");
        fault_access(g, DIFF_RO_ADDR + cg_below(g, 0x1000 - 8), true, size,
                     "read-only page write");
        if (size > 1) {
            fault_access(g, DIFF_RO_ADDR - 1 - cg_below(g, size - 1), true, size,
                         "write straddling into the read-only page");
            fault_access(g, DIFF_UNMAPPED_ADDR - 1 - cg_below(g, size - 1), false, size,
                         "read straddling into the unmapped page");
        }
        fault_access(g, 0x8000000000000000ULL + cg_below(g, 0x1000), false, size,
                     "non-canonical read");
        fault_access(g, 0x0000800000000000ULL, true, size, "non-canonical write");
    }
    for (int n = 0; n < 4; n++) {
        DiffCase c;
        /* push with RSP just above the unmapped page / into the read-only page. */
        static const uint8_t push[] = { 0x53 }, pop[] = { 0x5b }, ret[] = { 0xc3 };
        static const uint8_t jmp_rax[] = { 0xff, 0xe0 }, call_rax[] = { 0xff, 0xd0 };

        cg_begin(g, &c);
        c.in.gpr[X86_RSP] = n & 1 ? DIFF_RO_ADDR + 0x800 : DIFF_UNMAPPED_ADDR + 0x800;
        cg_emit_bytes(&c, push, 1, "push rbx (stack %s)", n & 1 ? "read-only" : "unmapped");
        cg_commit(g, &c);

        cg_begin(g, &c);
        c.in.gpr[X86_RSP] = DIFF_UNMAPPED_ADDR + 8 * n;
        cg_emit_bytes(&c, pop, 1, "pop rbx (stack unmapped)");
        cg_commit(g, &c);

        cg_begin(g, &c);
        cg_patch(&c, DIFF_STACK_TOP, &(uint64_t){ DIFF_UNMAPPED_ADDR + 16 * n }, 8);
        cg_emit_bytes(&c, ret, 1, "ret to the unmapped page");
        cg_commit(g, &c);

        cg_begin(g, &c);
        c.in.gpr[X86_RAX] = n & 1 ? DIFF_UNMAPPED_ADDR + n : DIFF_DATA_ADDR + 0x40 * n;
        cg_emit_bytes(&c, jmp_rax, 2, "jmp rax (%s)", n & 1 ? "unmapped" : "no-execute data");
        cg_commit(g, &c);

        cg_begin(g, &c);
        c.in.gpr[X86_RAX] = n < 2 ? 0x0000800000000000ULL + n : DIFF_UNMAPPED_ADDR;
        cg_emit_bytes(&c, call_rax, 2, "call rax (%s)", n < 2 ? "non-canonical" : "unmapped");
        cg_commit(g, &c);

        cg_begin(g, &c);
        c.in.gpr[X86_RSP] = 0x8000000000001000ULL;
        cg_emit_bytes(&c, push, 1, "push rbx (non-canonical stack: #SS)");
        cg_commit(g, &c);
    }

    /* Misaligned MOVAPS/MOVDQA: #GP(0). */
    for (int n = 0; n < 4; n++) {
        DiffCase c;
        uint8_t movaps[] = { 0x0f, 0x28, 0x03 }, movdqa[] = { 0x66, 0x0f, 0x7f, 0x03 };
        cg_begin(g, &c);
        c.in.gpr[X86_RBX] = DIFF_DATA_ADDR + 0x100 + 1 + cg_below(g, 15);
        if (n & 1) {
            cg_emit_bytes(&c, movdqa, 4, "movdqa [rbx], xmm0 (misaligned)");
        } else {
            cg_emit_bytes(&c, movaps, 3, "movaps xmm0, [rbx] (misaligned)");
        }
        cg_commit(g, &c);
    }

    /* #DE in the middle of a sequence: earlier instructions stay done. */
    for (int n = 0; n < 4; n++) {
        DiffCase c;
        static const uint8_t seq[] = { 0x48, 0x01, 0xd8, 0x48, 0xf7, 0xf1, 0x48, 0x01, 0xd8 };
        cg_begin(g, &c);
        c.in.gpr[X86_RCX] = 0;
        cg_emit_bytes(&c, seq, sizeof(seq), "add rax, rbx; div rcx (zero); add rax, rbx");
        cg_commit(g, &c);
    }

    /* #AC: EFLAGS.AC set through POPF, then a misaligned access. */
    for (int n = 0; n < 3; n++) {
        DiffCase c;
        static const uint8_t seq[] = { 0x9d, 0x8b, 0x03 };  /* popf; mov eax, [rbx] */
        uint64_t fl = X86_RFLAGS_FIXED | X86_RFLAGS_AC;
        cg_begin(g, &c);
        cg_patch(&c, DIFF_STACK_TOP, &fl, 8);
        c.in.gpr[X86_RBX] = DIFF_DATA_ADDR + 0x200 + (n == 2 ? 4 : 1 + n);
        cg_emit_bytes(&c, seq, sizeof(seq), "popf (AC); mov eax, [rbx] (%s)",
                      n == 2 ? "aligned" : "misaligned");
        cg_commit(g, &c);
    }

    /* #XM: invalid operation unmasked (MXCSR.IM clear), SNaN operand. */
    for (int n = 0; n < 3; n++) {
        DiffCase c;
        static const uint8_t addss[] = { 0xf3, 0x0f, 0x58, 0xc1 };    /* addss xmm0, xmm1 */
        cg_begin(g, &c);
        cg_set_mxcsr(&c, 0x1f80 & ~0x80u);
        cg_set_xmm(&c, 0, 0x3f800000, 0);
        cg_set_xmm(&c, 1, n == 2 ? 0x40000000 : 0x7fa00000, 0);
        cg_emit_bytes(&c, addss, 4, "addss xmm0, xmm1 (IM clear, %s)",
                      n == 2 ? "no exception" : "SNaN: #XM");
        cg_commit(g, &c);
    }

    /* LDMXCSR with a reserved bit: #GP(0). */
    {
        DiffCase c;
        static const uint8_t ld[] = { 0x0f, 0xae, 0x13 };      /* ldmxcsr [rbx] */
        uint32_t bad = 0x1f80 | (1u << 20);
        cg_begin(g, &c);
        c.in.gpr[X86_RBX] = DIFF_DATA_ADDR + 0x300;
        cg_patch(&c, DIFF_DATA_ADDR + 0x300, &bad, 4);
        cg_emit_bytes(&c, ld, 3, "ldmxcsr [rbx] (reserved bit 20)");
        cg_commit(g, &c);
    }
}
