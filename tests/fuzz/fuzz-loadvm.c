/*
 * Fuzz target: the migration stream loader. Each input is a whole stream
 * (header, configuration, sections, EOF: docs/devel/migration-stream.md)
 * fed to qemu_loadvm_state() through a QEMUFile over a memfd, into the
 * destination of fuzz-machine.h (8 MiB of RAM, globalstate, virtio-blk,
 * virtio-net, a UART, the PM block, one vCPU). The machine is created
 * once and reset before every input.
 *
 * Beyond "no crash, no leak, no hang" (the sanitizers' and the fuzzer's
 * job), each input checks that:
 *   - a refused stream comes with an error message, an accepted one without;
 *   - the BQL is not left held;
 *   - an accepted state survives what the guest does next
 *     (fuzz_machine_exercise(): device registers read, virtqueues kicked).
 * Writes just outside guest RAM fault on guard pages (when they could be
 * placed: see fuzz_machine_get()).
 *
 * Built as a libFuzzer binary (clang) and, always, with standalone-main.c.
 */
#include <stdio.h>

#include "system/main-loop.h"
#include "tests/fuzz/fuzz-machine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 1 when the last input loaded, 0 when it was refused (standalone-main.c counts them). */
int fuzz_last_result;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GError) err = NULL;

    fuzz_machine_get();
    fuzz_machine_reset();
    bool ok = fuzz_machine_load(data, size, &err);
    g_assert(!bql_locked());
    if (ok) {
        g_assert(err == NULL);
        fuzz_machine_exercise();
    } else {
        g_assert(err != NULL && err->message && err->message[0]);
        if (fuzz_verbose()) {
            fprintf(stderr, "loadvm: %s\n", err->message);
        }
    }
    fuzz_last_result = ok;
    return 0;
}
