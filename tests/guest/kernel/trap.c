/*
 * Exceptions, ring-3 service requests, and the console/power control that
 * the BSP's timer tick polls.
 */
#include "kernel.h"
#include "virtio-test.h"

#define PM1A_STATUS     0x600
#define PM1A_ENABLE     0x602
#define PM1A_CONTROL    0x604
#define PM1_PWRBTN      0x0100
#define PM1_SLP_EN      0x2000          /* with SLP_TYP 0: soft off */
#define RESET_CONTROL   0xcf9
#define KBC_COMMAND     0x64

#define LAPIC_ICR_LOW   0x300
#define LAPIC_ICR_HIGH  0x310
#define ICR_INIT_OTHERS 0x000c4500      /* INIT, assert, all but self */

struct trap_frame {
    u64 rax, rbx, rcx, rdx, rsi, rdi, rbp;
    u64 r8, r9, r10, r11, r12, r13, r14, r15;
    u64 vector, error;
    u64 rip, cs, rflags, rsp, ss;
};

void trap(struct trap_frame *f);

static bool is_service_request(const struct trap_frame *f)
{
    const u8 *ip = (const u8 *)f->rip;

    return f->vector == VEC_UD && (f->cs & 3) == 3 &&
           ip[0] == 0x0f && ip[1] == 0x0b &&
           ip[2] == (SVC_TAG & 0xff) && ip[3] == (SVC_TAG >> 8);
}

static void service(struct trap_frame *f)
{
    f->rip += 4;
    switch (f->rax) {
    case SVC_WRITE:
        serial_write((const char *)f->rdi, f->rsi > 4096 ? 4096 : f->rsi);
        f->rax = 0;
        break;
    case SVC_IDLE:
        /* The timer interrupt nests here on this stack and ends the hlt. */
        __asm__ volatile("sti; hlt; cli" ::: "memory");
        f->rax = 0;
        break;
    default:
        f->rax = (u64)-1;
        break;
    }
}

void trap(struct trap_frame *f)
{
    struct line l;
    u64 cr2;

    if (is_service_request(f)) {
        service(f);
        return;
    }

    __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
    line_reset(&l);
    line_str(&l, "FAULT cpu=");
    line_u64(&l, this_cpu()->index);
    line_str(&l, " vector=");
    line_u64(&l, f->vector);
    line_str(&l, " error=");
    line_hex(&l, f->error);
    line_str(&l, " rip=");
    line_hex(&l, f->rip);
    line_str(&l, " cs=");
    line_hex(&l, f->cs);
    line_str(&l, " cr2=");
    line_hex(&l, cr2);
    serial_print_line(&l);
    /* Only this CPU stops; the others keep their workload going. */
    serial_puts("HALT\n");
    halt_forever();
}

static void short_wait(void)
{
    u64 t0 = rdtsc();
    u64 wait = boot.tsc_hz ? boot.tsc_hz / 20 : 100000000;

    while (rdtsc() - t0 < wait) {
        cpu_relax();
    }
}

static void stop_everything(void) __attribute__((noreturn));

static void stop_everything(void)
{
    serial_puts("HALT\n");
    /* INIT parks the other CPUs in wait-for-SIPI. */
    lapic_write(LAPIC_ICR_HIGH, 0);
    lapic_write(LAPIC_ICR_LOW, ICR_INIT_OTHERS);
    halt_forever();
}

void power_off(void)
{
    serial_puts("POWEROFF\n");
    outw(PM1A_CONTROL, PM1_SLP_EN);
    short_wait();
    stop_everything();
}

void reboot(void)
{
    struct {
        u16 limit;
        u64 base;
    } __attribute__((packed)) no_idt = { 0, 0 };

    serial_puts("REBOOT\n");
    outb(RESET_CONTROL, 0x06);
    short_wait();
    outb(KBC_COMMAND, 0xfe);
    short_wait();
    /* Last resort: an exception with no IDT escalates to a triple fault. */
    __asm__ volatile("lidt %0; ud2" : : "m"(no_idt));
    stop_everything();
}

static char command[32];
static u32 command_len;
static bool pm_absent;

static void run_command(void)
{
    static const char cmd_poweroff[] = "poweroff";
    static const char cmd_reboot[] = "reboot";
    static const char cmd_disk[] = "disktest";
    static const char cmd_net[] = "nettest";

    if (command_len == sizeof(cmd_poweroff) - 1 &&
        !memcmp(command, cmd_poweroff, command_len)) {
        power_off();
    }
    if (command_len == sizeof(cmd_reboot) - 1 &&
        !memcmp(command, cmd_reboot, command_len)) {
        reboot();
    }
    if (command_len == sizeof(cmd_disk) - 1 && !memcmp(command, cmd_disk, command_len)) {
        virtio_test_disk();
    }
    if (command_len == sizeof(cmd_net) - 1 && !memcmp(command, cmd_net, command_len)) {
        virtio_test_net();
    }
}

/* Called from the timer stub on the BSP, interrupts off: keep it short. */
void bsp_tick(void)
{
    for (int n = 0; n < 16; n++) {
        int c = serial_getc();

        if (c < 0) {
            break;
        }
        if (c == '\n' || c == '\r') {
            run_command();
            command_len = 0;
        } else if (command_len < sizeof(command)) {
            command[command_len++] = (char)c;
        } else {
            command_len = sizeof(command) + 1;  /* too long: never matches */
        }
    }

    if (!pm_absent) {
        u16 status = inw(PM1A_STATUS);

        if (status == 0xffff) {
            pm_absent = true;           /* nothing decodes the port */
        } else if (status & PM1_PWRBTN) {
            serial_puts("POWER BUTTON\n");
            power_off();
        }
    }
}

/* QEMU only latches PWRBTN_STS while PWRBTN_EN is set; Ferry always does. */
void power_button_enable(void)
{
    outw(PM1A_ENABLE, PM1_PWRBTN);
}
