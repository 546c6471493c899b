/*
 * /init of Ferry's Linux test guest.
 *
 * A C program rather than a shell script because on kvm_pvm every fork and
 * exec runs through the emulated guest kernel and costs seconds: a script
 * that mounted three file systems with busybox took 8-29 s to say hello.
 * This one makes only system calls on the paths tests use most (smoke and
 * workload) and hands the rest (disk, net, shell) to busybox sh running
 * /etc/ferry-test.sh.
 *
 * The same binary is /bin/ferry-workload (chosen by argv[0]), so the
 * workload can also be started by hand from the shell.
 *
 * Kernel command line options:
 *   ferry.test=smoke|workload|disk|net|devices|devices+workload|shell
 *                                               what to run (default: shell)
 *   ferry.exit=reboot|poweroff|halt|shell      how to end (default: reboot)
 *   ferry.mem= ferry.rate= ferry.cpus= ferry.hb= ferry.verify=
 *                                              the workload's (workload.c)
 *
 * Lines: "LINUX-INIT up", "LINUX-CMDLINE <command line>", then
 * "LINUX-SMOKE OK", the workload's lines, or ferry-test.sh's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/wait.h>
#include <unistd.h>

int workload_main(int argc, char **argv);

static void put(const char *s)
{
    size_t n = strlen(s);

    while (n) {
        ssize_t w = write(STDOUT_FILENO, s, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return;
        }
        s += w;
        n -= w;
    }
}

static void say(const char *a, const char *b)
{
    put(a);
    put(b);
    put("\n");
}

static void mount_fs(const char *type, const char *dir)
{
    if (mount(type, dir, type, 0, NULL) < 0 && errno != EBUSY) {
        char msg[128];

        snprintf(msg, sizeof(msg), "%s on %s: %s", type, dir, strerror(errno));
        say("LINUX-INIT mount failed: ", msg);
    }
}

/* The value of ferry.KEY= in the command line, copied to out. */
static void option(const char *cmdline, const char *key, char *out, size_t size)
{
    size_t klen = strlen(key);

    for (const char *p = cmdline; *p;) {
        while (*p == ' ') {
            p++;
        }
        const char *end = p + strcspn(p, " ");
        if (!strncmp(p, "ferry.", 6) && !strncmp(p + 6, key, klen) && p[6 + klen] == '=') {
            const char *v = p + 7 + klen;
            size_t n = (size_t)(end - v) < size - 1 ? (size_t)(end - v) : size - 1;

            memcpy(out, v, n);
            out[n] = 0;
        }
        p = end;
    }
}

static void run_shell(void)
{
    execl("/bin/sh", "sh", (char *)NULL);
    say("LINUX-INIT exec /bin/sh failed: ", strerror(errno));
}

/* PID 1 must never exit: the kernel would panic. */
static void finish(const char *how)
{
    sync();
    if (!strcmp(how, "shell")) {
        run_shell();
    } else if (!strcmp(how, "poweroff")) {
        /* Without ACPI tables Linux only halts here. */
        reboot(RB_POWER_OFF);
    } else if (!strcmp(how, "halt")) {
        reboot(RB_HALT_SYSTEM);
    } else {
        /* A reset: under -no-reboot, Ferry and QEMU end the VM. */
        reboot(RB_AUTOBOOT);
    }
    for (;;) {
        pause();
    }
}

int main(int argc, char **argv)
{
    static char cmdline[4096];
    char test[32] = "shell";
    char how[32] = "reboot";
    const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    ssize_t n;
    int fd;

    if (!strcmp(base, "ferry-workload")) {
        return workload_main(argc, argv);
    }

    mount_fs("proc", "/proc");
    mount_fs("sysfs", "/sys");
    mount_fs("devtmpfs", "/dev");
    say("LINUX-INIT up", "");

    fd = open("/proc/cmdline", O_RDONLY);
    n = fd >= 0 ? read(fd, cmdline, sizeof(cmdline) - 1) : -1;
    if (fd >= 0) {
        close(fd);
    }
    cmdline[n > 0 ? n : 0] = 0;
    cmdline[strcspn(cmdline, "\n")] = 0;
    say("LINUX-CMDLINE ", cmdline);

    option(cmdline, "test", test, sizeof(test));
    option(cmdline, "exit", how, sizeof(how));
    setenv("PATH", "/bin", 1);

    if (!strcmp(test, "smoke")) {
        say("LINUX-SMOKE OK", "");
    } else if (!strcmp(test, "workload") || !strcmp(test, "devices+workload")) {
        char *wargv[] = { "ferry-workload", NULL };

        if (!strcmp(test, "devices+workload")) {
            /* The disk and network tests first, so a migration carries used devices. */
            pid_t pid = fork();
            if (pid == 0) {
                execl("/bin/sh", "sh", "/etc/ferry-test.sh", "devices", "return", (char *)NULL);
                _exit(127);
            }
            if (pid > 0) {
                waitpid(pid, NULL, 0);
            }
        }
        workload_main(1, wargv);
    } else {
        /* disk, net, shell and anything else: busybox. */
        execl("/bin/sh", "sh", "/etc/ferry-test.sh", test, how, (char *)NULL);
        say("LINUX-INIT exec /bin/sh failed: ", strerror(errno));
    }
    finish(how);
    return 0;
}
