/*
 * "globalstate": the source's run state, as a one-field vmstate section.
 */
#include <string.h>
#include <gio/gio.h>

#include "migration/global-state.h"
#include "migration/register.h"

typedef struct GlobalState {
    uint8_t runstate[32];       /* NUL-terminated run state name */
    bool received;
} GlobalState;

static GlobalState global_state;

void global_state_store(void)
{
    memset(global_state.runstate, 0, sizeof(global_state.runstate));
    g_strlcpy((char *)global_state.runstate, runstate_name(runstate_get()),
              sizeof(global_state.runstate));
}

static bool global_state_post_load(void *opaque, int version_id, GError **errp)
{
    GlobalState *s = opaque;
    if (memchr(s->runstate, '\0', sizeof(s->runstate)) == NULL) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "globalstate: run state name is not terminated");
        return false;
    }
    s->received = true;
    return true;
}

bool global_state_received(void)
{
    return global_state.received;
}

RunState global_state_get_runstate(void)
{
    for (int i = 0; i < RUN_STATE__MAX; i++) {
        if (strcmp((const char *)global_state.runstate, runstate_name((RunState)i)) == 0) {
            return (RunState)i;
        }
    }
    return RUN_STATE_RUNNING;
}

static const VMStateField global_state_fields[] = {
    VMSTATE_BUFFER(runstate, GlobalState),
    VMSTATE_END_OF_LIST(),
};

static const VMStateDescription vmstate_global_state = {
    .name = "globalstate",
    .version_id = 1,
    .minimum_version_id = 1,
    .post_load = global_state_post_load,
    .fields = global_state_fields,
};

void global_state_register(void)
{
    vmstate_register(NULL, 0, &vmstate_global_state, &global_state);
}
