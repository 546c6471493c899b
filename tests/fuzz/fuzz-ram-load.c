/*
 * Fuzz target: the RAM record decoder alone (migration/ram-load.c). Each
 * input is a sequence of "ram" payloads, as they appear inside the START,
 * PART and END sections (docs/devel/ram-migration.md): a block list, then
 * ZERO/PAGE records ended by EOS, payload after payload, decoded with
 * ram_load_payload() into two destination blocks ("pc.ram", 8 MiB, and
 * "extra.ram", 64 KiB) until the first error or the end of the input.
 *
 * Checks: a refused payload comes with a message, an accepted one
 * without; nothing is written outside the blocks (guard pages around
 * "pc.ram" when they could be placed; the sanitizers).
 */
#include <stdio.h>

#include "migration/ram.h"
#include "tests/fuzz/fuzz-machine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 1 when every payload of the last input loaded, 0 otherwise (standalone-main.c). */
int fuzz_last_result;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static GPtrArray *blocks;
    g_autoptr(GError) err = NULL;
    FuzzMachine *m = fuzz_machine_get();

    if (!blocks) {
        blocks = g_ptr_array_new();
        g_ptr_array_add(blocks, m->ram);
        g_ptr_array_add(blocks, m->extra);
    }
    fuzz_machine_reset();

    RAMLoadState ls = { .blocks = blocks };
    if (!ram_load_prepare(&ls, &err)) {
        g_error("ram_load_prepare: %s", err->message);
    }
    QEMUFile *f = fuzz_input_file(data, size);
    bool ok = true;
    unsigned payloads = 0;
    /* Every successful payload consumes at least its 8-byte EOS. */
    while (qemu_peek_byte(f) >= 0) {
        if (!ram_load_payload(&ls, f, &err)) {
            g_assert(err != NULL && err->message && err->message[0]);
            if (fuzz_verbose()) {
                fprintf(stderr, "ram-load: payload %u: %s\n", payloads, err->message);
            }
            ok = false;
            break;
        }
        g_assert(err == NULL);
        payloads++;
    }
    qemu_fclose(f);
    fuzz_last_result = ok && payloads > 0;
    return 0;
}
