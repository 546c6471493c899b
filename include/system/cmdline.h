/*
 * The command line: QEMU's option names, parsed into a FerryConfig that
 * main.c turns into a machine. Parsing checks syntax and values; it
 * creates nothing.
 */
#ifndef SYSTEM_CMDLINE_H
#define SYSTEM_CMDLINE_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "util/option.h"

typedef struct QmpSpec {
    char *spec;
    bool pretty;
} QmpSpec;

typedef struct FerryConfig {
    GPtrArray *accels;          /* char *: "kvm", "qtest", ... in order */
    OptList *machine;           /* -machine/-M, merged */
    char *cpu_model;            /* "host", "max", "qemu64"; NULL: the accelerator's default */
    int smp;
    uint64_t ram_size;
    bool ram_size_given;
    GPtrArray *objects;         /* OptList * (-object) */
    char *kernel;
    char *initrd;
    char *append;
    GPtrArray *drives;          /* OptList * (-drive) */
    GPtrArray *devices;         /* OptList * (-device) */
    GPtrArray *netdevs;         /* OptList * (-netdev) */
    GPtrArray *serials;         /* char * (-serial) */
    GPtrArray *chardevs;        /* char * (-chardev) */
    GPtrArray *qmps;            /* QmpSpec * (-qmp, -qmp-pretty) */
    GPtrArray *monitors;        /* char * (-monitor) */
    GPtrArray *mons;            /* OptList * (-mon) */
    char *name;
    char *pidfile;
    char *qtest;
    char *qtest_log;
    char *incoming;
    bool nographic;
    bool nodefaults;
    bool start_paused;          /* -S */
    bool daemonize;
    bool no_reboot;
    bool no_shutdown;
    /* Requests that print something and exit. */
    bool show_version;
    bool show_help;
    bool machine_help;
    bool cpu_help;
    bool accel_help;
} FerryConfig;

/*
 * Parse argv. On error returns NULL with a one-line message naming the
 * option, e.g. "-smp 0: Invalid number of CPUs: 0 (1 to 64)".
 */
FerryConfig *ferry_cmdline_parse(int argc, char **argv, GError **errp);
void ferry_config_free(FerryConfig *cfg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FerryConfig, ferry_config_free)

void ferry_cmdline_print_help(const char *argv0);

#define FERRY_MAX_CPUS 64

#endif
