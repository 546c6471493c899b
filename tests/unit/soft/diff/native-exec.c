/*
 * The host CPU as the oracle. A forked child maps the code, data,
 * read-only and control pages at the fixed addresses of diff.h, then for
 * each case: writes the code followed by a jump to the exit trampoline,
 * fills the data area, and enters the code through native_enter with every
 * general register, RFLAGS and the whole FXSAVE image loaded from the
 * control page. The exit trampoline stores them back; a fault instead
 * lands in the signal handler, which records the state from the ucontext
 * and resumes the child at native_resume_host.
 *
 * Results go to a shared mapping the parent reads once the child exits;
 * a progress word there tells which case was running if the child died.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include <glib.h>

#include "native-exec.h"

/* The control page: fixed offsets, since the trampolines address it. */
#define CTRL_ADDR           0x0f000000
#define CTRL_SIZE           0x3000          /* page 0 data, pages 1-2 a stack */
#define CTRL_IN_GPR         0
#define CTRL_IN_RFLAGS      128
#define CTRL_OUT_GPR        136
#define CTRL_OUT_RFLAGS     264
#define CTRL_HOST_RSP       272
#define CTRL_EXIT           280
#define CTRL_ENTRY          288
#define CTRL_HOST_MXCSR     296
#define CTRL_FX_IN          512
#define CTRL_FX_OUT         1024

/* The watchdog per batch; FERRY_DIFF_WATCHDOG (seconds) overrides it. */
#define NATIVE_BATCH_SECONDS 20

typedef struct NativeCtrl {
    uint64_t in_gpr[16];
    uint64_t in_rflags;
    uint64_t out_gpr[16];
    uint64_t out_rflags;
    uint64_t host_rsp;
    uint64_t exit;
    uint64_t entry;
    uint32_t host_mxcsr;
    volatile uint32_t in_case;
    uint8_t pad[CTRL_FX_IN - 304];
    uint8_t fx_in[512];
    uint8_t fx_out[512];
} NativeCtrl;

_Static_assert(offsetof(NativeCtrl, in_rflags) == CTRL_IN_RFLAGS, "ctrl layout");
_Static_assert(offsetof(NativeCtrl, out_gpr) == CTRL_OUT_GPR, "ctrl layout");
_Static_assert(offsetof(NativeCtrl, out_rflags) == CTRL_OUT_RFLAGS, "ctrl layout");
_Static_assert(offsetof(NativeCtrl, host_rsp) == CTRL_HOST_RSP, "ctrl layout");
_Static_assert(offsetof(NativeCtrl, exit) == CTRL_EXIT, "ctrl layout");
_Static_assert(offsetof(NativeCtrl, entry) == CTRL_ENTRY, "ctrl layout");
_Static_assert(offsetof(NativeCtrl, host_mxcsr) == CTRL_HOST_MXCSR, "ctrl layout");
_Static_assert(offsetof(NativeCtrl, fx_in) == CTRL_FX_IN, "ctrl layout");
_Static_assert(offsetof(NativeCtrl, fx_out) == CTRL_FX_OUT, "ctrl layout");

#define STR_(x) #x
#define STR(x) STR_(x)
#define CTRL(off) STR(CTRL_ADDR + off)

/*
 * native_enter: called from C. Saves the callee-saved registers and RSP,
 * loads the case's state (flags last among the flag-changing steps: the
 * MOVs after POPFQ leave them alone) and jumps to the code.
 * native_case_exit: the code's last instruction jumps here through
 * ctrl.exit; it saves everything before touching a flag.
 * native_resume_host: back to the caller of native_enter with the host's
 * FPU, MXCSR and RFLAGS.DF as the C ABI expects them.
 */
__asm__(
    "    .text\n"
    "    .globl native_enter\n"
    "    .type native_enter, @function\n"
    "native_enter:\n"
    "    push %rbx\n    push %rbp\n    push %r12\n"
    "    push %r13\n    push %r14\n    push %r15\n"
    "    mov %rsp, " CTRL(CTRL_HOST_RSP) "\n"
    "    fxrstor64 " CTRL(CTRL_FX_IN) "\n"
    "    pushq " CTRL(CTRL_IN_RFLAGS) "\n"
    "    popfq\n"
    "    mov " CTRL(CTRL_IN_GPR + 0) ", %rax\n"
    "    mov " CTRL(CTRL_IN_GPR + 8) ", %rcx\n"
    "    mov " CTRL(CTRL_IN_GPR + 16) ", %rdx\n"
    "    mov " CTRL(CTRL_IN_GPR + 24) ", %rbx\n"
    "    mov " CTRL(CTRL_IN_GPR + 40) ", %rbp\n"
    "    mov " CTRL(CTRL_IN_GPR + 48) ", %rsi\n"
    "    mov " CTRL(CTRL_IN_GPR + 56) ", %rdi\n"
    "    mov " CTRL(CTRL_IN_GPR + 64) ", %r8\n"
    "    mov " CTRL(CTRL_IN_GPR + 72) ", %r9\n"
    "    mov " CTRL(CTRL_IN_GPR + 80) ", %r10\n"
    "    mov " CTRL(CTRL_IN_GPR + 88) ", %r11\n"
    "    mov " CTRL(CTRL_IN_GPR + 96) ", %r12\n"
    "    mov " CTRL(CTRL_IN_GPR + 104) ", %r13\n"
    "    mov " CTRL(CTRL_IN_GPR + 112) ", %r14\n"
    "    mov " CTRL(CTRL_IN_GPR + 120) ", %r15\n"
    "    mov " CTRL(CTRL_IN_GPR + 32) ", %rsp\n"
    "    jmp *" CTRL(CTRL_ENTRY) "\n"
    "    .size native_enter, . - native_enter\n"
    "\n"
    "    .globl native_case_exit\n"
    "    .type native_case_exit, @function\n"
    "native_case_exit:\n"
    "    mov %rsp, " CTRL(CTRL_OUT_GPR + 32) "\n"
    "    mov $" STR(CTRL_ADDR + CTRL_SIZE) ", %rsp\n"
    "    pushfq\n"
    "    popq " CTRL(CTRL_OUT_RFLAGS) "\n"
    "    mov %rax, " CTRL(CTRL_OUT_GPR + 0) "\n"
    "    mov %rcx, " CTRL(CTRL_OUT_GPR + 8) "\n"
    "    mov %rdx, " CTRL(CTRL_OUT_GPR + 16) "\n"
    "    mov %rbx, " CTRL(CTRL_OUT_GPR + 24) "\n"
    "    mov %rbp, " CTRL(CTRL_OUT_GPR + 40) "\n"
    "    mov %rsi, " CTRL(CTRL_OUT_GPR + 48) "\n"
    "    mov %rdi, " CTRL(CTRL_OUT_GPR + 56) "\n"
    "    mov %r8, " CTRL(CTRL_OUT_GPR + 64) "\n"
    "    mov %r9, " CTRL(CTRL_OUT_GPR + 72) "\n"
    "    mov %r10, " CTRL(CTRL_OUT_GPR + 80) "\n"
    "    mov %r11, " CTRL(CTRL_OUT_GPR + 88) "\n"
    "    mov %r12, " CTRL(CTRL_OUT_GPR + 96) "\n"
    "    mov %r13, " CTRL(CTRL_OUT_GPR + 104) "\n"
    "    mov %r14, " CTRL(CTRL_OUT_GPR + 112) "\n"
    "    mov %r15, " CTRL(CTRL_OUT_GPR + 120) "\n"
    "    fxsave64 " CTRL(CTRL_FX_OUT) "\n"
    "    .globl native_resume_host\n"
    "native_resume_host:\n"
    "    mov " CTRL(CTRL_HOST_RSP) ", %rsp\n"
    "    fninit\n"
    "    ldmxcsr " CTRL(CTRL_HOST_MXCSR) "\n"
    "    pushq $0x202\n"
    "    popfq\n"
    "    pop %r15\n    pop %r14\n    pop %r13\n"
    "    pop %r12\n    pop %rbp\n    pop %rbx\n"
    "    ret\n"
    "    .size native_case_exit, . - native_case_exit\n"
);

void native_enter(void);
void native_case_exit(void);
void native_resume_host(void);

/* The shared mapping between the parent and the child. */
typedef struct NativeShm {
    volatile size_t progress;   /* index of the case the child is running */
    char error[128];            /* set when the child could not set up */
    DiffResult results[];
} NativeShm;

#define NATIVE_CTRL ((NativeCtrl *)(uintptr_t)CTRL_ADDR)

static DiffResult *native_cur;  /* the result the signal handler fills */

/* ucontext greg index of each GPR in encoding order. */
static const int native_greg[16] = {
    REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP, REG_RSI, REG_RDI,
    REG_R8, REG_R9, REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15,
};

static void native_on_fault(int sig, siginfo_t *si, void *opaque)
{
    ucontext_t *uc = opaque;
    greg_t *g = uc->uc_mcontext.gregs;
    NativeCtrl *ctl = NATIVE_CTRL;
    DiffResult *r = native_cur;

    /*
     * The kernel leaves EFLAGS.AC as the case had it: clear it before this
     * handler makes a misaligned access of its own.
     */
    __asm__ volatile("pushfq; andq $~0x40000, (%%rsp); popfq" ::: "memory", "cc");

    if (!ctl->in_case || !r) {
        /* Not the case's fault: die of it, the parent reports the case. */
        signal(sig, SIG_DFL);
        return;
    }
    r->end = DIFF_END_EXCEPTION;
    r->vector = (int)g[REG_TRAPNO];
    r->error_code = (uint32_t)g[REG_ERR];
    r->cr2 = r->vector == 14 ? (uint64_t)g[REG_CR2] : 0;
    for (int i = 0; i < 16; i++) {
        r->regs.gpr[i] = (uint64_t)g[native_greg[i]];
    }
    r->regs.rip = (uint64_t)g[REG_RIP];
    r->regs.rflags = (uint64_t)g[REG_EFL];
    memcpy(r->regs.fx, uc->uc_mcontext.fpregs, 512);
    ctl->in_case = 0;

    /* Resume in the trampoline's epilogue with a sane FPU and stack. */
    g[REG_RIP] = (greg_t)(uintptr_t)native_resume_host;
    g[REG_RSP] = CTRL_ADDR + CTRL_SIZE;
    g[REG_EFL] = 0x202;
    uc->uc_mcontext.fpregs->mxcsr = 0x1f80;
    uc->uc_mcontext.fpregs->cwd = 0x37f;
    uc->uc_mcontext.fpregs->swd = 0;
}

static bool native_map(uint64_t addr, size_t len, int prot, NativeShm *shm)
{
    void *p = mmap((void *)(uintptr_t)addr, len, prot,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

    if (p != (void *)(uintptr_t)addr) {
        snprintf(shm->error, sizeof(shm->error), "mmap at %#llx: %s",
                 (unsigned long long)addr, strerror(errno));
        return false;
    }
    return true;
}

static bool native_child_setup(NativeShm *shm)
{
    static uint8_t altstack[64 * 1024] __attribute__((aligned(16)));
    stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack) };
    struct sigaction sa = { 0 };
    static const int sigs[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP };
    const char *wd = getenv("FERRY_DIFF_WATCHDOG");
    struct itimerval watchdog = {
        .it_value.tv_sec = wd ? atoi(wd) : NATIVE_BATCH_SECONDS,
    };

    if (!native_map(CTRL_ADDR, CTRL_SIZE, PROT_READ | PROT_WRITE, shm) ||
        !native_map(DIFF_CODE_ADDR, DIFF_CODE_SIZE,
                    PROT_READ | PROT_WRITE | PROT_EXEC, shm) ||
        !native_map(DIFF_DATA_ADDR, DIFF_DATA_SIZE, PROT_READ | PROT_WRITE, shm) ||
        !native_map(DIFF_RO_ADDR, 0x1000, PROT_READ | PROT_WRITE, shm) ||
        /* Claim and release: proves nothing else lives there. */
        !native_map(DIFF_UNMAPPED_ADDR, 0x1000, PROT_NONE, shm)) {
        return false;
    }
    munmap((void *)(uintptr_t)DIFF_UNMAPPED_ADDR, 0x1000);
    diff_fill_ro((uint8_t *)(uintptr_t)DIFF_RO_ADDR);
    mprotect((void *)(uintptr_t)DIFF_RO_ADDR, 0x1000, PROT_READ);
    memset((void *)(uintptr_t)DIFF_CODE_ADDR, 0xcc, DIFF_CODE_SIZE);

    NATIVE_CTRL->exit = (uint64_t)(uintptr_t)native_case_exit;
    NATIVE_CTRL->entry = DIFF_CODE_ADDR;
    NATIVE_CTRL->host_mxcsr = 0x1f80;

    if (sigaltstack(&ss, NULL) < 0) {
        snprintf(shm->error, sizeof(shm->error), "sigaltstack: %s", strerror(errno));
        return false;
    }
    sa.sa_sigaction = native_on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigfillset(&sa.sa_mask);
    for (unsigned i = 0; i < G_N_ELEMENTS(sigs); i++) {
        sigaction(sigs[i], &sa, NULL);
    }
    /* SIGALRM keeps its default action: a hung case kills the child. */
    setitimer(ITIMER_REAL, &watchdog, NULL);
    return true;
}

static void native_run_one(const DiffCase *c, DiffResult *r)
{
    NativeCtrl *ctl = NATIVE_CTRL;
    uint8_t *code = (uint8_t *)(uintptr_t)DIFF_CODE_ADDR;
    uint8_t *data = (uint8_t *)(uintptr_t)DIFF_DATA_ADDR;
    /* jmp qword [ctrl.exit], absolute disp32 */
    const uint8_t jmp_exit[7] = { 0xff, 0x24, 0x25,
                                  (CTRL_ADDR + CTRL_EXIT) & 0xff,
                                  ((CTRL_ADDR + CTRL_EXIT) >> 8) & 0xff,
                                  ((CTRL_ADDR + CTRL_EXIT) >> 16) & 0xff,
                                  ((CTRL_ADDR + CTRL_EXIT) >> 24) & 0xff };

    memset(r, 0, offsetof(DiffResult, data));
    memset(code, 0xcc, DIFF_CODE_MAX + sizeof(jmp_exit));
    memcpy(code, c->code, c->code_len);
    memcpy(code + c->code_len, jmp_exit, sizeof(jmp_exit));
    diff_fill_data(c, data);

    memcpy(ctl->in_gpr, c->in.gpr, sizeof(ctl->in_gpr));
    ctl->in_rflags = (c->in.rflags & DIFF_FLAGS_USER) | 0x202;
    memcpy(ctl->fx_in, c->in.fx, 512);

    native_cur = r;
    r->end = DIFF_END_OK;
    ctl->in_case = 1;
    native_enter();
    ctl->in_case = 0;
    native_cur = NULL;

    if (r->end == DIFF_END_OK) {
        memcpy(r->regs.gpr, ctl->out_gpr, sizeof(r->regs.gpr));
        r->regs.rflags = ctl->out_rflags;
        r->regs.rip = DIFF_CODE_ADDR + c->code_len;
        memcpy(r->regs.fx, ctl->fx_out, 512);
    }
    memcpy(r->data, data, DIFF_DATA_SIZE);
}

static void G_GNUC_NORETURN native_child(const DiffCase *cases, size_t start, size_t n,
                                         NativeShm *shm)
{
    if (!native_child_setup(shm)) {
        _exit(2);
    }
    for (size_t i = start; i < n; i++) {
        shm->progress = i;
        native_run_one(&cases[i], &shm->results[i]);
    }
    shm->progress = n;
    _exit(0);
}

bool native_run_cases(const DiffCase *cases, size_t n, DiffResult *out, char **err)
{
    size_t len = sizeof(NativeShm) + n * sizeof(DiffResult);
    NativeShm *shm = mmap(NULL, len, PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    size_t start = 0;
    bool ok = true;

    if (shm == MAP_FAILED) {
        *err = g_strdup_printf("mmap results: %s", g_strerror(errno));
        return false;
    }
    fflush(stdout);
    fflush(stderr);
    while (start < n) {
        int status;
        pid_t pid;

        shm->progress = start;
        pid = fork();
        if (pid < 0) {
            *err = g_strdup_printf("fork: %s", g_strerror(errno));
            ok = false;
            break;
        }
        if (pid == 0) {
            native_child(cases, start, n, shm);
        }
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && shm->progress == n) {
            break;
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 2) {
            *err = g_strdup_printf("native child setup: %s", shm->error);
            ok = false;
            break;
        }
        /* The case at shm->progress took the child down; go on past it. */
        size_t bad = shm->progress;
        DiffResult *r = &shm->results[bad];
        memset(r, 0, offsetof(DiffResult, data));
        r->end = DIFF_END_CRASH;
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
            snprintf(r->note, sizeof(r->note), "native child hung (watchdog)");
        } else if (WIFSIGNALED(status)) {
            snprintf(r->note, sizeof(r->note), "native child killed by signal %d",
                     WTERMSIG(status));
        } else {
            snprintf(r->note, sizeof(r->note), "native child exited with %d",
                     WEXITSTATUS(status));
        }
        start = bad + 1;
    }
    if (ok) {
        memcpy(out, shm->results, n * sizeof(DiffResult));
    }
    munmap(shm, len);
    return ok;
}
