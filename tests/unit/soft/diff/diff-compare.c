/*
 * What "the same" means for a case: the same way of ending (completed, or
 * the same exception at the same RIP with the same error code and CR2),
 * then the same general registers, defined flags, XMM registers, MXCSR,
 * x87 state when the case uses it, and data area.
 */
#include <string.h>

#include "hw/x86/cpu-state.h"
#include "diff-compare.h"

static const char *const gpr_names[16] = {
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
    "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15" };

static const char *const vector_names[32] = {
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM",
    "#DF", "#09", "#TS", "#NP", "#SS", "#GP", "#PF", "#15",
    "#MF", "#AC", "#MC", "#XM", "#VE", "#CP" };

static void diff_flags_text(GString *out, uint64_t f)
{
    static const struct { uint64_t bit; const char *name; } names[] = {
        { X86_RFLAGS_CF, "CF" }, { X86_RFLAGS_PF, "PF" }, { X86_RFLAGS_AF, "AF" },
        { X86_RFLAGS_ZF, "ZF" }, { X86_RFLAGS_SF, "SF" }, { X86_RFLAGS_DF, "DF" },
        { X86_RFLAGS_OF, "OF" },
    };
    bool any = false;

    g_string_append_c(out, '[');
    for (unsigned i = 0; i < G_N_ELEMENTS(names); i++) {
        if (f & names[i].bit) {
            g_string_append_printf(out, "%s%s", any ? " " : "", names[i].name);
            any = true;
        }
    }
    g_string_append_c(out, ']');
}

void diff_describe_end(const DiffResult *r, GString *out)
{
    switch (r->end) {
    case DIFF_END_OK:
        g_string_append(out, "completed");
        break;
    case DIFF_END_EXCEPTION:
        g_string_append_printf(out, "%s (vector %d) at rip %#llx",
                               r->vector >= 0 && r->vector < 32 && vector_names[r->vector]
                               ? vector_names[r->vector] : "exception",
                               r->vector, (unsigned long long)r->regs.rip);
        if (diff_vector_has_error(r->vector)) {
            g_string_append_printf(out, " error %#x", r->error_code);
        }
        if (r->vector == 14) {
            g_string_append_printf(out, " cr2 %#llx", (unsigned long long)r->cr2);
        }
        break;
    case DIFF_END_CRASH:
        g_string_append_printf(out, "crash: %s", r->note);
        break;
    case DIFF_END_ERROR:
        g_string_append_printf(out, "error: %s", r->note);
        break;
    }
}

static void diff_hex(GString *out, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        g_string_append_printf(out, "%02x", p[i]);
    }
}

/* XMM as two 64-bit halves, high first, as a debugger shows it. */
static void diff_xmm_text(GString *out, const uint8_t *x)
{
    uint64_t lo, hi;

    memcpy(&lo, x, 8);
    memcpy(&hi, x + 8, 8);
    g_string_append_printf(out, "%016llx_%016llx", (unsigned long long)hi,
                           (unsigned long long)lo);
}

static void diff_st_text(GString *out, const uint8_t *st)
{
    uint16_t se;
    uint64_t m;

    memcpy(&m, st, 8);
    memcpy(&se, st + 8, 2);
    g_string_append_printf(out, "%04x:%016llx", se, (unsigned long long)m);
}

void diff_describe_case(const DiffCase *c, GString *out)
{
    static const uint8_t zero[16];
    uint16_t fcw, fsw;
    uint32_t mxcsr;

    g_string_append_printf(out, "  case: %s\n  bytes:", c->name);
    for (unsigned i = 0; i < c->code_len; i++) {
        g_string_append_printf(out, " %02x", c->code[i]);
    }
    g_string_append(out, "\n  in:");
    for (int i = 0; i < 16; i++) {
        g_string_append_printf(out, "%s%-3s=%016llx", i % 4 ? "  " : "\n    ",
                               gpr_names[i], (unsigned long long)c->in.gpr[i]);
    }
    g_string_append_printf(out, "\n    rflags=%#llx ", (unsigned long long)c->in.rflags);
    diff_flags_text(out, c->in.rflags);
    memcpy(&mxcsr, c->in.fx + DIFF_FX_MXCSR, 4);
    memcpy(&fcw, c->in.fx + DIFF_FX_FCW, 2);
    memcpy(&fsw, c->in.fx + DIFF_FX_FSW, 2);
    g_string_append_printf(out, "  mxcsr=%#x", mxcsr);
    if (c->flags & DIFF_F_X87) {
        g_string_append_printf(out, "  fcw=%#x fsw=%#x ftw=%#x", fcw, fsw,
                               c->in.fx[DIFF_FX_FTW]);
        for (int i = 0; i < 8; i++) {
            int phys = (((fsw >> 11) & 7) + i) & 7;
            if (c->in.fx[DIFF_FX_FTW] & (1 << phys)) {
                g_string_append_printf(out, "\n    st%d=", i);
                diff_st_text(out, c->in.fx + DIFF_FX_ST + 16 * i);
            }
        }
    }
    for (int i = 0; i < 16; i++) {
        const uint8_t *x = c->in.fx + DIFF_FX_XMM + 16 * i;
        if (memcmp(x, zero, 16)) {
            g_string_append_printf(out, "\n    xmm%d=", i);
            diff_xmm_text(out, x);
        }
    }
    g_string_append_printf(out, "\n    data seed %#x", c->data_seed);
    for (unsigned i = 0; i < c->npatch; i++) {
        g_string_append_printf(out, "; [%#llx]=",
                               (unsigned long long)(DIFF_DATA_ADDR + c->patch[i].off));
        diff_hex(out, c->patch[i].bytes, c->patch[i].len);
        g_string_append(out, " (bytes in memory order)");
    }
    g_string_append_printf(out, "\n    undefined flags masked: %#x\n", c->flags_undef);
}

static bool diff_st_is_nan(const uint8_t *st)
{
    uint16_t se;
    uint64_t m;

    memcpy(&m, st, 8);
    memcpy(&se, st + 8, 2);
    return (se & 0x7fff) == 0x7fff && (m << 1) != 0;
}

static void diff_field(GString *d, const char *name, uint64_t n, uint64_t s)
{
    g_string_append_printf(d, "    %-8s native %#018llx  soft %#018llx\n", name,
                           (unsigned long long)n, (unsigned long long)s);
}

bool diff_compare(const DiffCase *c, const DiffResult *native, const DiffResult *soft,
                  GString *report)
{
    g_autoptr(GString) d = g_string_new(NULL);
    const DiffRegs *n = &native->regs, *s = &soft->regs;

    if (native->end == DIFF_END_CRASH) {
        g_string_append(d, "    the native run crashed: the case itself is broken\n");
        goto report;
    }
    if (native->end != soft->end ||
        (native->end == DIFF_END_EXCEPTION && native->vector != soft->vector)) {
        g_string_append(d, "    different outcome\n");
    } else if (native->end == DIFF_END_EXCEPTION) {
        uint32_t emask = native->vector == 14 ? 0x1f : ~0U;
        if (diff_vector_has_error(native->vector) &&
            (native->error_code & emask) != (soft->error_code & emask)) {
            diff_field(d, "error", native->error_code, soft->error_code);
        }
        if (native->vector == 14 && native->cr2 != soft->cr2) {
            diff_field(d, "cr2", native->cr2, soft->cr2);
        }
    }
    if (soft->end == DIFF_END_ERROR) {
        goto report;
    }
    if (n->rip != s->rip) {
        diff_field(d, "rip", n->rip, s->rip);
    }
    for (int i = 0; i < 16; i++) {
        if (n->gpr[i] != s->gpr[i]) {
            diff_field(d, gpr_names[i], n->gpr[i], s->gpr[i]);
        }
    }
    {
        uint64_t mask = DIFF_FLAGS_USER & ~(uint64_t)c->flags_undef;
        if ((n->rflags & mask) != (s->rflags & mask)) {
            diff_field(d, "rflags", n->rflags & mask, s->rflags & mask);
            g_string_append(d, "             native ");
            diff_flags_text(d, n->rflags & mask);
            g_string_append(d, " soft ");
            diff_flags_text(d, s->rflags & mask);
            g_string_append(d, " differ ");
            diff_flags_text(d, (n->rflags ^ s->rflags) & mask);
            g_string_append_c(d, '\n');
        }
    }
    {
        uint32_t nm, sm;
        memcpy(&nm, n->fx + DIFF_FX_MXCSR, 4);
        memcpy(&sm, s->fx + DIFF_FX_MXCSR, 4);
        if (nm != sm) {
            diff_field(d, "mxcsr", nm, sm);
        }
    }
    for (int i = 0; i < 16; i++) {
        const uint8_t *nx = n->fx + DIFF_FX_XMM + 16 * i, *sx = s->fx + DIFF_FX_XMM + 16 * i;
        if (memcmp(nx, sx, 16)) {
            g_string_append_printf(d, "    xmm%-5d native ", i);
            diff_xmm_text(d, nx);
            g_string_append(d, "\n             soft   ");
            diff_xmm_text(d, sx);
            g_string_append_c(d, '\n');
        }
    }
    if (c->flags & DIFF_F_X87) {
        uint16_t nfcw, sfcw, nfsw, sfsw;
        memcpy(&nfcw, n->fx + DIFF_FX_FCW, 2);
        memcpy(&sfcw, s->fx + DIFF_FX_FCW, 2);
        memcpy(&nfsw, n->fx + DIFF_FX_FSW, 2);
        memcpy(&sfsw, s->fx + DIFF_FX_FSW, 2);
        if (nfcw != sfcw) {
            diff_field(d, "fcw", nfcw, sfcw);
        }
        uint16_t fsw_mask = ~c->fsw_undef;
        if ((c->flags & DIFF_F_X87_CC_IE) && ((nfsw & 1) || diff_st_is_nan(n->fx + DIFF_FX_ST))) {
            fsw_mask &= ~0x4700;        /* C0-C3 */
        }
        if ((nfsw & fsw_mask) != (sfsw & fsw_mask)) {
            diff_field(d, "fsw", nfsw & fsw_mask, sfsw & fsw_mask);
        }
        if (n->fx[DIFF_FX_FTW] != s->fx[DIFF_FX_FTW]) {
            diff_field(d, "ftw", n->fx[DIFF_FX_FTW], s->fx[DIFF_FX_FTW]);
        }
        for (int i = 0; i < 8; i++) {
            int phys = (((nfsw >> 11) & 7) + i) & 7;
            const uint8_t *ns = n->fx + DIFF_FX_ST + 16 * i, *ss = s->fx + DIFF_FX_ST + 16 * i;
            if ((n->fx[DIFF_FX_FTW] & (1 << phys)) && memcmp(ns, ss, 10)) {
                g_string_append_printf(d, "    st%-6d native ", i);
                diff_st_text(d, ns);
                g_string_append(d, "  soft ");
                diff_st_text(d, ss);
                g_string_append_c(d, '\n');
            }
        }
    }
    {
        unsigned shown = 0;
        for (size_t off = 0; off < DIFF_DATA_SIZE; off += 16) {
            if (!memcmp(native->data + off, soft->data + off, 16)) {
                continue;
            }
            if (shown++ == 4) {
                g_string_append(d, "    data     (more differences)\n");
                break;
            }
            g_string_append_printf(d, "    data %#llx native ",
                                   (unsigned long long)(DIFF_DATA_ADDR + off));
            diff_hex(d, native->data + off, 16);
            g_string_append(d, "\n                    soft   ");
            diff_hex(d, soft->data + off, 16);
            g_string_append_c(d, '\n');
        }
    }
    if (!d->len) {
        return true;
    }

report:
    diff_describe_case(c, report);
    g_string_append(report, "  native: ");
    diff_describe_end(native, report);
    g_string_append(report, "\n  soft:   ");
    diff_describe_end(soft, report);
    g_string_append(report, "\n  differences:\n");
    g_string_append(report, d->str);
    return false;
}
