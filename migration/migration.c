/*
 * The migration state machine: the outgoing migration thread (setup,
 * iterate, switchover, completion, failure and cancel with the source VM
 * running on), the incoming side (listen or open, load thread, resume),
 * statistics, events and the query-migrate reply.
 *
 * Threads: the monitor commands run in the main thread with the BQL; the
 * outgoing work runs in "mig/src/main", the incoming load in
 * "mig/dst/load". Each thread is joined by the main thread once it has
 * posted its final state.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <gio/gio.h>
#include <glib-unix.h>

#include "migration/channel.h"
#include "migration/global-state.h"
#include "migration/migration.h"
#include "migration/multifd.h"
#include "migration/options.h"
#include "migration/ram.h"
#include "migration/savevm.h"
#include "system/cpus.h"
#include "system/main-loop.h"
#include "system/monitor.h"
#include "system/runstate.h"

MigrationStats mig_stats;

static const char *const migration_status_names[MIGRATION_STATUS__MAX] = {
    [MIGRATION_STATUS_NONE] = "none",
    [MIGRATION_STATUS_SETUP] = "setup",
    [MIGRATION_STATUS_CANCELLING] = "cancelling",
    [MIGRATION_STATUS_CANCELLED] = "cancelled",
    [MIGRATION_STATUS_ACTIVE] = "active",
    [MIGRATION_STATUS_POSTCOPY_ACTIVE] = "postcopy-active",
    [MIGRATION_STATUS_POSTCOPY_PAUSED] = "postcopy-paused",
    [MIGRATION_STATUS_POSTCOPY_RECOVER_SETUP] = "postcopy-recover-setup",
    [MIGRATION_STATUS_POSTCOPY_RECOVER] = "postcopy-recover",
    [MIGRATION_STATUS_COMPLETED] = "completed",
    [MIGRATION_STATUS_FAILED] = "failed",
    [MIGRATION_STATUS_COLO] = "colo",
    [MIGRATION_STATUS_PRE_SWITCHOVER] = "pre-switchover",
    [MIGRATION_STATUS_DEVICE] = "device",
    [MIGRATION_STATUS_WAIT_UNPLUG] = "wait-unplug",
};

const char *migration_status_name(MigrationStatus s)
{
    return s < MIGRATION_STATUS__MAX ? migration_status_names[s] : "none";
}

bool migration_status_parse(const char *name, MigrationStatus *out)
{
    for (int i = 0; i < MIGRATION_STATUS__MAX; i++) {
        if (strcmp(name, migration_status_names[i]) == 0) {
            *out = (MigrationStatus)i;
            return true;
        }
    }
    return false;
}

/* The window of the bandwidth limit, as QEMU's: 100 ms. */
#define RATE_WINDOW_MS 100

typedef struct MigrationState {
    int status;                     /* MigrationStatus, atomic */
    GThread *thread;
    GMutex lock;                    /* guards the fields below and the conds */
    GCond continue_cond;            /* migrate-continue, cancel */
    bool continue_requested;
    int cancel_fd;                  /* eventfd: wakes a connect in progress */
    QEMUFile *file;                 /* while the thread runs */
    char *uri;
    GError *error;
    bool vm_was_running;
    bool vm_stopped_by_us;
    /* Times in ms (monotonic); 0 when not yet reached. */
    gint64 start_ms;
    gint64 setup_ms;
    gint64 total_ms;
    gint64 downtime_ms;
    uint64_t expected_downtime_ms;
    /* Rate limit and bandwidth. */
    uint64_t window_start_bytes;
    gint64 window_start_ms;
    double mbps;
    double bandwidth_bytes_per_ms;
    /* Guest RAM bytes (pages x 4 KiB) sent per ms: what "remaining" counts. */
    double ram_bytes_per_ms;
    uint64_t window_start_ram;
    uint64_t pages_per_second;
    int throttle_percent;
    int dirty_rate_high_count;
    uint64_t prev_sync_transferred;
    uint64_t prev_sync_dirty_bytes;
    gint64 prev_sync_ms;
    bool committed;                 /* EOF sent: the destination owns the guest */
    uint64_t prev_pass_remaining;   /* bytes left after the previous pass */
    unsigned passes_under_threshold;
    gint64 active_start_ms;         /* when the first RAM pass began */
    uint64_t active_start_bytes;
} MigrationState;

static MigrationState outgoing = { .status = MIGRATION_STATUS_NONE, .cancel_fd = -1 };

static gint64 now_ms(void)
{
    return g_get_monotonic_time() / 1000;
}

MigrationStatus migration_outgoing_status(void)
{
    return (MigrationStatus)g_atomic_int_get(&outgoing.status);
}

static void migration_event_status(MigrationStatus s)
{
    if (!migrate_cap(MIGRATION_CAPABILITY_EVENTS)) {
        return;
    }
    JsonObject *data = json_object_new();
    json_object_set_string_member(data, "status", migration_status_name(s));
    qmp_event_emit("MIGRATION", data);
}

/* Move from @old to @new (atomically: cancel races with the thread). */
static bool migrate_set_state(int *state, MigrationStatus old, MigrationStatus new)
{
    if (!g_atomic_int_compare_and_exchange(state, (gint)old, (gint)new)) {
        return false;
    }
    migration_event_status(new);
    return true;
}

static void migration_set_error(MigrationState *s, const GError *err)
{
    g_mutex_lock(&s->lock);
    if (!s->error && err) {
        s->error = g_error_copy(err);
    }
    g_mutex_unlock(&s->lock);
}

static void migration_stats_reset(void)
{
    memset(&mig_stats, 0, sizeof(mig_stats));
}

/* Bytes on the wire so far: the main stream plus every multifd channel. */
static uint64_t migration_transferred(QEMUFile *f)
{
    return qemu_file_transferred(f) + mig_stat_get(&mig_stats.multifd_bytes);
}

/* Guest RAM sent so far, in bytes of pages (zero pages included). */
static uint64_t migration_ram_bytes_sent(void)
{
    return (mig_stat_get(&mig_stats.normal_pages) + mig_stat_get(&mig_stats.zero_pages)) *
           TARGET_PAGE_SIZE;
}

/*
 * The rate the switchover decision uses. Remaining work is counted in
 * page bytes; with multifd compression a page costs far fewer wire
 * bytes, so the wire rate alone would call a fast migration slow and
 * never switch over.
 */
static double migration_effective_bandwidth(MigrationState *s)
{
    double bw = s->bandwidth_bytes_per_ms;
    if (multifd_send_active() && multifd_send_compression() != MULTIFD_COMPRESSION_NONE) {
        bw = MAX(bw, s->ram_bytes_per_ms);
    }
    return bw;
}

/* ---------------------------------------------------------- rate limit */

bool migration_rate_exceeded(QEMUFile *f)
{
    uint64_t limit = migrate_params()->max_bandwidth;
    if (limit == 0) {
        return false;
    }
    uint64_t budget = MAX(limit / (1000 / RATE_WINDOW_MS), 1);
    return migration_transferred(f) - outgoing.window_start_bytes >= budget;
}

/* Close a bandwidth window: measure it, and wait for its end when limited. */
static void migration_rate_window(MigrationState *s, bool wait)
{
    gint64 now = now_ms();
    gint64 elapsed = now - s->window_start_ms;

    if (wait && elapsed < RATE_WINDOW_MS) {
        g_mutex_lock(&s->lock);
        gint64 end = g_get_monotonic_time() + (RATE_WINDOW_MS - elapsed) * 1000;
        while (migration_outgoing_status() != MIGRATION_STATUS_CANCELLING &&
               g_cond_wait_until(&s->continue_cond, &s->lock, end)) {
            /* A wakeup that is not a cancel: keep waiting for the window's end. */
        }
        g_mutex_unlock(&s->lock);
        now = now_ms();
        elapsed = now - s->window_start_ms;
    }
    if (elapsed >= RATE_WINDOW_MS) {
        uint64_t transferred = migration_transferred(s->file);
        uint64_t bytes = transferred - s->window_start_bytes;
        s->bandwidth_bytes_per_ms = (double)bytes / (double)elapsed;
        s->mbps = s->bandwidth_bytes_per_ms * 8.0 / 1000.0;
        s->window_start_bytes = transferred;
        uint64_t ram = migration_ram_bytes_sent();
        s->ram_bytes_per_ms = (double)(ram - s->window_start_ram) / (double)elapsed;
        s->window_start_ram = ram;
        s->window_start_ms = now;
    }
}

/* ------------------------------------------------------- auto-converge */

static void migration_auto_converge(MigrationState *s)
{
    gint64 now = now_ms();
    uint64_t transferred = migration_transferred(s->file);
    uint64_t dirtied = mig_stat_get(&mig_stats.dirty_bytes_last_sync);
    const MigrationParameters *p = migrate_params();

    if (s->prev_sync_ms && now > s->prev_sync_ms) {
        uint64_t sent = transferred - s->prev_sync_transferred;
        /* The guest dirtied more than the threshold share of what we sent. */
        if (dirtied * 100 > sent * p->throttle_trigger_threshold) {
            if (++s->dirty_rate_high_count >= 2) {
                s->dirty_rate_high_count = 0;
                int pct = s->throttle_percent == 0
                          ? p->cpu_throttle_initial
                          : s->throttle_percent + p->cpu_throttle_increment;
                s->throttle_percent = MIN(pct, (int)p->max_cpu_throttle);
                cpus_set_throttle(s->throttle_percent);
            }
        }
    }
    s->prev_sync_ms = now;
    s->prev_sync_transferred = transferred;
}

/* ------------------------------------------------------ outgoing thread */

static void migration_pass_event(void)
{
    if (!migrate_cap(MIGRATION_CAPABILITY_EVENTS)) {
        return;
    }
    JsonObject *data = json_object_new();
    json_object_set_int_member(data, "pass", (gint64)mig_stat_get(&mig_stats.dirty_sync_count));
    qmp_event_emit("MIGRATION_PASS", data);
}

/*
 * Bytes we may leave for the stop-and-copy phase: what the link moves in
 * downtime-limit. Until a rate has been measured there is no room at all,
 * so a large guest never switches over on a guess.
 */
static uint64_t migration_switchover_threshold(MigrationState *s)
{
    const MigrationParameters *p = migrate_params();
    double bw = migration_effective_bandwidth(s);
    if (bw <= 0 && s->file) {
        /* Before the first full window: the average since the stream started. */
        gint64 elapsed = now_ms() - s->active_start_ms;
        uint64_t sent = migration_transferred(s->file) - s->active_start_bytes;
        if (elapsed >= 1 && sent >= (256u << 10)) {
            bw = (double)sent / (double)elapsed;
        }
    }
    if (p->avail_switchover_bandwidth) {
        bw = (double)p->avail_switchover_bandwidth / 1000.0;
    }
    if (bw <= 0) {
        return 0;
    }
    return (uint64_t)(bw * (double)p->downtime_limit);
}

static bool migration_wait_continue(MigrationState *s)
{
    g_mutex_lock(&s->lock);
    while (!s->continue_requested &&
           migration_outgoing_status() == MIGRATION_STATUS_PRE_SWITCHOVER) {
        g_cond_wait(&s->continue_cond, &s->lock);
    }
    bool go = s->continue_requested;
    s->continue_requested = false;
    g_mutex_unlock(&s->lock);
    return go;
}

/* Stop the VM and send everything that is left. Called without the BQL. */
static bool migration_complete(MigrationState *s, GError **errp)
{
    bql_lock();
    s->vm_was_running = runstate_is_running();
    gint64 stop_ms = now_ms();
    global_state_store();
    vm_stop(RUN_STATE_FINISH_MIGRATE);
    s->vm_stopped_by_us = true;

    if (migrate_cap(MIGRATION_CAPABILITY_PAUSE_BEFORE_SWITCHOVER)) {
        if (!migrate_set_state(&s->status, MIGRATION_STATUS_ACTIVE,
                               MIGRATION_STATUS_PRE_SWITCHOVER)) {
            bql_unlock();
            return false;
        }
        bql_unlock();
        bool go = migration_wait_continue(s);
        bql_lock();
        if (!go || !migrate_set_state(&s->status, MIGRATION_STATUS_PRE_SWITCHOVER,
                                      MIGRATION_STATUS_DEVICE)) {
            bql_unlock();
            return false;
        }
    } else if (!migrate_set_state(&s->status, MIGRATION_STATUS_ACTIVE,
                                  MIGRATION_STATUS_DEVICE)) {
        bql_unlock();
        return false;
    }

    uint64_t before = migration_transferred(s->file);
    bool ok = qemu_savevm_state_complete_precopy(s->file, errp);
    mig_stat_add(&mig_stats.downtime_bytes, migration_transferred(s->file) - before);
    mig_stat_set(&mig_stats.transferred, migration_transferred(s->file));
    s->downtime_ms = now_ms() - stop_ms;
    if (ok) {
        /*
         * EOF is out: the destination may already run the guest, so a
         * cancel that arrives now must not resume the source as well.
         */
        g_atomic_int_set(&s->status, MIGRATION_STATUS_DEVICE);
        s->committed = true;
    }
    bql_unlock();
    return ok;
}

/*
 * Whether to stop the guest now, after a pass and its dirty-log sync.
 * downtime-limit is a ceiling, not a target: while another pass still
 * shrinks what is left by more than a tenth, sending it live is cheaper
 * than sending it with the guest stopped.
 */
static bool migration_should_switchover(MigrationState *s, uint64_t remaining)
{
    uint64_t threshold = migration_switchover_threshold(s);
    uint64_t prev = s->prev_pass_remaining;

    s->prev_pass_remaining = remaining;
    if (remaining > threshold) {
        s->passes_under_threshold = 0;
        return false;
    }
    s->passes_under_threshold++;
    if (remaining == 0 || prev == UINT64_MAX) {
        return remaining == 0;
    }
    bool shrinking = remaining < prev - prev / 10;
    return !shrinking || s->passes_under_threshold >= 8;
}

static bool migration_iterate(MigrationState *s, GError **errp)
{
    s->prev_pass_remaining = UINT64_MAX;
    s->passes_under_threshold = 0;
    for (;;) {
        if (migration_outgoing_status() != MIGRATION_STATUS_ACTIVE) {
            return false;
        }
        int r = qemu_savevm_state_iterate(s->file, errp);
        mig_stat_set(&mig_stats.transferred, migration_transferred(s->file));
        if (r < 0) {
            return false;
        }
        migration_rate_window(s, migration_rate_exceeded(s->file));
        if (r != 1) {
            continue;
        }
        /*
         * A pass sent everything that was dirty: sync the dirty log and
         * decide on what the guest dirtied meanwhile. Deciding mid-pass on
         * an estimate would stop the guest with first-pass data still
         * unsent, and send it all as downtime.
         */
        uint64_t must, can;
        qemu_savevm_state_pending_exact(&must, &can);
        mig_stat_set(&mig_stats.remaining, must + can);
        migration_pass_event();
        if (migrate_cap(MIGRATION_CAPABILITY_AUTO_CONVERGE)) {
            migration_auto_converge(s);
        }
        double bw = migration_effective_bandwidth(s);
        s->expected_downtime_ms = bw > 0 ? (uint64_t)((double)(must + can) / bw) : 0;
        if (migration_should_switchover(s, must + can)) {
            return true;
        }
    }
}

static gboolean migration_thread_finished(gpointer opaque)
{
    MigrationState *s = opaque;
    if (s->thread) {
        g_thread_join(s->thread);
        s->thread = NULL;
    }
    return G_SOURCE_REMOVE;
}

static gpointer migration_thread(gpointer opaque)
{
    MigrationState *s = opaque;
    g_autoptr(GError) err = NULL;
    bool ok = false;
    g_autoptr(MigUri) uri = mig_uri_parse(s->uri, &err);

    MigChannel *ch = uri ? mig_channel_open_outgoing(uri, s->cancel_fd, &err) : NULL;
    if (ch) {
        g_mutex_lock(&s->lock);
        s->file = qemu_file_new_output(ch);
        g_mutex_unlock(&s->lock);
        if (migration_outgoing_status() == MIGRATION_STATUS_CANCELLING) {
            mig_channel_shutdown(ch);
        }
        ok = !migrate_cap(MIGRATION_CAPABILITY_MULTIFD) || multifd_send_setup(s->uri, &err);
        s->window_start_ms = now_ms();
        if (ok && multifd_send_active()) {
            /*
             * The header and configuration go first and alone: a
             * destination with multifd off takes the main stream as its
             * only connection and must see why the channels that follow
             * are refused.
             */
            qemu_savevm_state_header(s->file);
            qemu_fflush(s->file);
            ok = multifd_send_connect(s->cancel_fd, &err);
            if (ok && migration_outgoing_status() == MIGRATION_STATUS_CANCELLING) {
                multifd_send_shutdown();
            }
        } else if (ok) {
            qemu_savevm_state_header(s->file);
        }
        if (ok) {
            bql_lock();
            ok = qemu_savevm_state_setup(s->file, &err);
            bql_unlock();
            /* The destination learns the multifd settings from here: don't sit on it. */
            qemu_fflush(s->file);
        }
        s->setup_ms = now_ms() - s->start_ms;
        s->active_start_ms = now_ms();
        s->active_start_bytes = migration_transferred(s->file);
        ok = ok && migrate_set_state(&s->status, MIGRATION_STATUS_SETUP,
                                     MIGRATION_STATUS_ACTIVE);
        ok = ok && migration_iterate(s, &err);
        ok = ok && migration_complete(s, &err);
    }

    /*
     * Without the BQL: a send thread may still be writing to a slow peer
     * after a failure elsewhere; the shutdown makes it stop at once.
     */
    if (!ok) {
        multifd_send_shutdown();
    }
    multifd_send_cleanup();

    bql_lock();
    cpus_set_throttle(0);
    s->throttle_percent = 0;
    if (s->file) {
        qemu_savevm_state_cleanup();
        int ferr = qemu_fclose(s->file);
        if (ferr && ok) {
            ok = false;
            g_set_error(&err, G_IO_ERROR, G_IO_ERROR_FAILED, "closing the stream: %s",
                        g_strerror(-ferr));
        }
        g_mutex_lock(&s->lock);
        s->file = NULL;
        g_mutex_unlock(&s->lock);
    }
    s->total_ms = now_ms() - s->start_ms;
    MigrationStatus st = migration_outgoing_status();
    if (s->committed) {
        g_atomic_int_set(&s->status, MIGRATION_STATUS_DEVICE);
        migrate_set_state(&s->status, MIGRATION_STATUS_DEVICE, MIGRATION_STATUS_COMPLETED);
        runstate_set(RUN_STATE_POSTMIGRATE);
    } else {
        if (st == MIGRATION_STATUS_CANCELLING) {
            migrate_set_state(&s->status, MIGRATION_STATUS_CANCELLING,
                              MIGRATION_STATUS_CANCELLED);
        } else {
            if (!err) {
                g_set_error(&err, G_IO_ERROR, G_IO_ERROR_FAILED, "migration aborted");
            }
            migration_set_error(s, err);
            migrate_set_state(&s->status, st, MIGRATION_STATUS_FAILED);
        }
        /* Nothing is lost: the source guest carries on as it was. */
        if (s->vm_stopped_by_us) {
            if (s->vm_was_running) {
                vm_start(NULL);
            } else {
                runstate_set(RUN_STATE_PAUSED);
            }
        }
    }
    s->vm_stopped_by_us = false;
    migration_options_set_busy(false);
    main_loop_schedule(migration_thread_finished, s);
    bql_unlock();
    return NULL;
}

static bool migration_is_running(MigrationStatus st)
{
    switch (st) {
    case MIGRATION_STATUS_SETUP:
    case MIGRATION_STATUS_ACTIVE:
    case MIGRATION_STATUS_CANCELLING:
    case MIGRATION_STATUS_PRE_SWITCHOVER:
    case MIGRATION_STATUS_DEVICE:
        return true;
    default:
        return false;
    }
}

bool qmp_migrate_start(const char *uri, bool resume, GError **errp)
{
    MigrationState *s = &outgoing;

    if (resume) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "Cannot resume: there is no paused postcopy migration");
        return false;
    }
    if (migration_is_running(migration_outgoing_status()) || s->thread) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "There's a migration process in progress");
        return false;
    }
    if (migration_incoming_status() != MIGRATION_STATUS_NONE &&
        migration_incoming_status() != MIGRATION_STATUS_COMPLETED) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "Guest is waiting for an incoming migration");
        return false;
    }
    switch (runstate_get()) {
    case RUN_STATE_INMIGRATE:
    case RUN_STATE_POSTMIGRATE:
    case RUN_STATE_SHUTDOWN:
    case RUN_STATE_INTERNAL_ERROR:
    case RUN_STATE_GUEST_PANICKED:
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "Cannot migrate a VM in state '%s'", runstate_name(runstate_get()));
        return false;
    default:
        break;
    }
    /* Check the URI here so a typo fails the command, not the thread. */
    g_autoptr(MigUri) parsed = mig_uri_parse(uri, errp);
    if (!parsed) {
        return false;
    }
    if (migrate_cap(MIGRATION_CAPABILITY_MULTIFD) && parsed->kind != MIG_URI_TCP &&
        parsed->kind != MIG_URI_UNIX) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "multifd needs a tcp: or unix: migration URI, not '%s'", uri);
        return false;
    }

    migration_stats_reset();
    g_clear_error(&s->error);
    g_free(s->uri);
    s->uri = g_strdup(uri);
    if (s->cancel_fd < 0) {
        s->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    } else {
        uint64_t drain;
        while (read(s->cancel_fd, &drain, sizeof(drain)) > 0) {
            /* Empty the previous migration's cancel. */
        }
    }
    s->start_ms = now_ms();
    s->setup_ms = s->total_ms = s->downtime_ms = 0;
    s->expected_downtime_ms = 0;
    s->window_start_bytes = 0;
    s->bandwidth_bytes_per_ms = 0;
    s->ram_bytes_per_ms = 0;
    s->window_start_ram = 0;
    s->mbps = 0;
    s->throttle_percent = 0;
    s->dirty_rate_high_count = 0;
    s->prev_sync_ms = 0;
    s->continue_requested = false;
    s->vm_stopped_by_us = false;
    s->committed = false;
    g_atomic_int_set(&s->status, MIGRATION_STATUS_NONE);
    migrate_set_state(&s->status, MIGRATION_STATUS_NONE, MIGRATION_STATUS_SETUP);
    migration_options_set_busy(true);
    s->thread = g_thread_new("mig/src/main", migration_thread, s);
    return true;
}

void qmp_migrate_cancel_now(void)
{
    MigrationState *s = &outgoing;
    MigrationStatus st = migration_outgoing_status();

    if (!migration_is_running(st) || st == MIGRATION_STATUS_CANCELLING) {
        migration_incoming_cancel();
        return;
    }
    if (!migrate_set_state(&s->status, st, MIGRATION_STATUS_CANCELLING)) {
        return;
    }
    uint64_t one = 1;
    if (write(s->cancel_fd, &one, sizeof(one)) < 0) {
        /* The eventfd is only a wakeup: a full counter already wakes. */
    }
    g_mutex_lock(&s->lock);
    if (s->file) {
        mig_channel_shutdown(qemu_file_channel(s->file));
    }
    multifd_send_shutdown();
    g_cond_broadcast(&s->continue_cond);
    g_mutex_unlock(&s->lock);
}

bool qmp_migrate_continue_from(MigrationStatus state, GError **errp)
{
    MigrationState *s = &outgoing;
    if (migration_outgoing_status() != state) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "Migration not in expected state: %s",
                    migration_status_name(migration_outgoing_status()));
        return false;
    }
    g_mutex_lock(&s->lock);
    s->continue_requested = true;
    g_cond_broadcast(&s->continue_cond);
    g_mutex_unlock(&s->lock);
    return true;
}

/* ------------------------------------------------------------- incoming */

typedef struct IncomingState {
    int status;                     /* MigrationStatus, atomic */
    MigListener *listener;
    GThread *thread;
    MigChannel *channel;
    GMutex lock;
    char *error_desc;
    gint64 start_ms;
    gint64 total_ms;
} IncomingState;

static IncomingState incoming = { .status = MIGRATION_STATUS_NONE };
static bool incoming_deferred;

MigrationStatus migration_incoming_status(void)
{
    return (MigrationStatus)g_atomic_int_get(&incoming.status);
}

typedef struct IncomingResult {
    bool ok;
    char *error;
} IncomingResult;

static void incoming_pending_drop_all(void);

static gboolean migration_incoming_finished(gpointer opaque)
{
    IncomingResult *res = opaque;
    IncomingState *s = &incoming;

    g_thread_join(s->thread);
    s->thread = NULL;
    s->total_ms = now_ms() - s->start_ms;
    /* Whatever has not connected by now is too late. */
    if (s->listener) {
        mig_listener_free(s->listener);
        s->listener = NULL;
    }
    incoming_pending_drop_all();
    if (!res->ok) {
        fprintf(stderr, "ferry: load of migration failed: %s\n", res->error);
        g_mutex_lock(&s->lock);
        g_free(s->error_desc);
        s->error_desc = g_strdup(res->error);
        g_mutex_unlock(&s->lock);
        migrate_set_state(&s->status, migration_incoming_status(), MIGRATION_STATUS_FAILED);
        if (migrate_incoming_exit_on_error()) {
            /* The destination has nothing worth keeping: say why and go. */
            main_loop_quit(1);
        }
        /* exit-on-error=false: stay, so management can read error-desc. */
    } else {
        migrate_set_state(&s->status, MIGRATION_STATUS_ACTIVE, MIGRATION_STATUS_COMPLETED);
        RunState src = global_state_received() ? global_state_get_runstate() : RUN_STATE_RUNNING;
        runstate_set(RUN_STATE_PAUSED);
        if (src == RUN_STATE_RUNNING && migration_autostart) {
            vm_start(NULL);
        }
    }
    g_free(res->error);
    g_free(res);
    return G_SOURCE_REMOVE;
}

static gpointer migration_incoming_thread(gpointer opaque)
{
    IncomingState *s = opaque;
    g_autoptr(GError) err = NULL;
    QEMUFile *f = qemu_file_new_input(s->channel);

    bool ok = qemu_loadvm_state(f, &err);
    multifd_recv_cleanup();
    /* A failed channel shuts the main stream down: report the channel's cause. */
    if (!ok && multifd_recv_error()) {
        g_clear_error(&err);
        err = g_error_copy(multifd_recv_error());
    }
    g_mutex_lock(&s->lock);
    s->channel = NULL;
    g_mutex_unlock(&s->lock);
    qemu_fclose(f);

    IncomingResult *res = g_new0(IncomingResult, 1);
    res->ok = ok;
    if (!ok) {
        res->error = g_strdup(err ? err->message : "unknown error");
    }
    main_loop_schedule(migration_incoming_finished, res);
    return NULL;
}

static void migration_incoming_start_load(MigChannel *ch)
{
    IncomingState *s = &incoming;
    migrate_set_state(&s->status, MIGRATION_STATUS_SETUP, MIGRATION_STATUS_ACTIVE);
    g_mutex_lock(&s->lock);
    s->channel = ch;
    g_mutex_unlock(&s->lock);
    s->thread = g_thread_new("mig/dst/load", migration_incoming_thread, s);
}

/* Stop listening once every expected connection is in: nobody else may reach this VM. */
static void migration_incoming_maybe_close_listener(void)
{
    IncomingState *s = &incoming;
    if (s->listener && s->thread && !multifd_recv_wants_channels()) {
        mig_listener_free(s->listener);
        s->listener = NULL;
    }
}

static void migration_incoming_main_channel(MigChannel *ch)
{
    IncomingState *s = &incoming;
    if (s->thread || migration_incoming_status() != MIGRATION_STATUS_SETUP) {
        /* One stream per migration: later connections are refused. */
        mig_channel_free(ch);
        return;
    }
    migration_incoming_start_load(ch);
    migration_incoming_maybe_close_listener();
}

/*
 * With multifd, connections arrive in any order: the first bytes tell a
 * multifd channel (its handshake) from the main stream (anything else,
 * so that a stream that is not ours still gets the loader's error).
 */
typedef struct IncomingPending {
    MigChannel *ch;
    GSource *source;
    int retries;
} IncomingPending;

static GList *incoming_pending;

static void incoming_pending_watch(IncomingPending *p);

static void incoming_pending_drop(IncomingPending *p, bool free_channel)
{
    incoming_pending = g_list_remove(incoming_pending, p);
    if (p->source) {
        g_source_destroy(p->source);
        g_source_unref(p->source);
    }
    if (free_channel) {
        mig_channel_free(p->ch);
    }
    g_free(p);
}

static void incoming_pending_drop_all(void)
{
    while (incoming_pending) {
        incoming_pending_drop(incoming_pending->data, true);
    }
}

static gboolean incoming_pending_retry(gpointer opaque)
{
    IncomingPending *p = opaque;
    g_source_unref(p->source);
    p->source = NULL;
    incoming_pending_watch(p);
    return G_SOURCE_REMOVE;
}

static gboolean incoming_pending_ready(gint fd, GIOCondition cond, gpointer opaque)
{
    IncomingPending *p = opaque;
    uint8_t buf[MULTIFD_HANDSHAKE_SIZE];
    static const uint8_t magic[4] = {
        MULTIFD_CHANNEL_MAGIC >> 24, (MULTIFD_CHANNEL_MAGIC >> 16) & 0xff,
        (MULTIFD_CHANNEL_MAGIC >> 8) & 0xff, MULTIFD_CHANNEL_MAGIC & 0xff,
    };

    ssize_t n = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return G_SOURCE_CONTINUE;
    }
    if (n <= 0) {
        /* Closed before it said anything: nothing to keep. */
        incoming_pending_drop(p, true);
        return G_SOURCE_REMOVE;
    }
    bool multifd = memcmp(buf, magic, MIN((size_t)n, sizeof(magic))) == 0;
    if (multifd && (size_t)n < sizeof(buf)) {
        /* Part of a handshake: look again shortly rather than spin on it. */
        if (++p->retries > 1000) {
            fprintf(stderr, "ferry: dropped a migration connection from %s: incomplete "
                    "multifd handshake\n", mig_channel_desc(p->ch));
            incoming_pending_drop(p, true);
            return G_SOURCE_REMOVE;
        }
        g_source_destroy(p->source);
        g_source_unref(p->source);
        p->source = g_timeout_source_new(10);
        g_source_set_callback(p->source, incoming_pending_retry, p, NULL);
        g_source_attach(p->source, main_loop_context());
        return G_SOURCE_REMOVE;
    }
    MigChannel *ch = p->ch;
    incoming_pending_drop(p, false);
    if (!multifd) {
        migration_incoming_main_channel(ch);
        return G_SOURCE_REMOVE;
    }
    g_autoptr(GError) err = NULL;
    MultiFDHandshake hs;
    if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) != (ssize_t)sizeof(buf) ||
        !multifd_handshake_decode(buf, &hs, &err)) {
        fprintf(stderr, "ferry: refused a multifd channel from %s: %s\n", mig_channel_desc(ch),
                err ? err->message : "short read");
        mig_channel_free(ch);
        return G_SOURCE_REMOVE;
    }
    multifd_recv_new_channel(ch, &hs);
    migration_incoming_maybe_close_listener();
    return G_SOURCE_REMOVE;
}

static void incoming_pending_watch(IncomingPending *p)
{
    p->source = g_unix_fd_source_new(mig_channel_fd(p->ch), G_IO_IN | G_IO_HUP | G_IO_ERR);
    g_source_set_callback(p->source, G_SOURCE_FUNC(incoming_pending_ready), p, NULL);
    g_source_attach(p->source, main_loop_context());
}

static void migration_incoming_accepted(MigChannel *ch, void *opaque)
{
    if (!migrate_cap(MIGRATION_CAPABILITY_MULTIFD)) {
        migration_incoming_main_channel(ch);
        return;
    }
    IncomingPending *p = g_new0(IncomingPending, 1);
    p->ch = ch;
    incoming_pending = g_list_prepend(incoming_pending, p);
    incoming_pending_watch(p);
}

bool migration_autostart = true;

bool qmp_migrate_incoming_start(const char *uri, GError **errp)
{
    IncomingState *s = &incoming;

    if (!incoming_deferred) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "'-incoming' was not specified on the command line");
        return false;
    }
    if (migration_incoming_status() != MIGRATION_STATUS_NONE) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "The incoming migration has already been started");
        return false;
    }
    g_autoptr(MigUri) parsed = mig_uri_parse(uri, errp);
    if (!parsed) {
        return false;
    }
    if (migrate_cap(MIGRATION_CAPABILITY_MULTIFD) && parsed->kind != MIG_URI_TCP &&
        parsed->kind != MIG_URI_UNIX) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "multifd needs a tcp: or unix: migration URI, not '%s'", uri);
        return false;
    }
    s->start_ms = now_ms();
    multifd_recv_reset();
    g_atomic_int_set(&s->status, MIGRATION_STATUS_NONE);
    if (parsed->kind == MIG_URI_TCP || parsed->kind == MIG_URI_UNIX) {
        s->listener = mig_listener_new(parsed, migration_incoming_accepted, NULL, errp);
        if (!s->listener) {
            return false;
        }
        migrate_set_state(&s->status, MIGRATION_STATUS_NONE, MIGRATION_STATUS_SETUP);
        return true;
    }
    MigChannel *ch = mig_channel_open_incoming(parsed, errp);
    if (!ch) {
        return false;
    }
    migrate_set_state(&s->status, MIGRATION_STATUS_NONE, MIGRATION_STATUS_SETUP);
    migration_incoming_start_load(ch);
    return true;
}

bool migration_incoming_init(const char *uri, GError **errp)
{
    runstate_set(RUN_STATE_INMIGRATE);
    incoming_deferred = true;
    if (strcmp(uri, "defer") == 0) {
        return true;
    }
    return qmp_migrate_incoming_start(uri, errp);
}

void migration_incoming_cancel(void)
{
    IncomingState *s = &incoming;
    MigrationStatus st = migration_incoming_status();
    if (st != MIGRATION_STATUS_SETUP && st != MIGRATION_STATUS_ACTIVE) {
        return;
    }
    g_mutex_lock(&s->lock);
    if (s->channel) {
        mig_channel_shutdown(s->channel);
    }
    g_mutex_unlock(&s->lock);
    multifd_recv_shutdown();
    if (st == MIGRATION_STATUS_SETUP && !s->thread) {
        /* Nothing connected yet: the incoming migration ends here. */
        fprintf(stderr, "ferry: incoming migration cancelled\n");
        migrate_set_state(&s->status, st, MIGRATION_STATUS_CANCELLED);
        main_loop_quit(1);
    }
}

/* ------------------------------------------------------------ query-migrate */

static JsonObject *migration_query_ram(const MigrationState *s)
{
    JsonObject *ram = json_object_new();
    uint64_t normal = mig_stat_get(&mig_stats.normal_pages);
    json_object_set_int_member(ram, "transferred", (gint64)mig_stat_get(&mig_stats.transferred));
    json_object_set_int_member(ram, "remaining", (gint64)mig_stat_get(&mig_stats.remaining));
    json_object_set_int_member(ram, "total", (gint64)ram_bytes_total());
    json_object_set_int_member(ram, "duplicate", (gint64)mig_stat_get(&mig_stats.zero_pages));
    json_object_set_int_member(ram, "normal", (gint64)normal);
    json_object_set_int_member(ram, "normal-bytes", (gint64)(normal * 4096));
    json_object_set_int_member(ram, "dirty-pages-rate",
                               (gint64)mig_stat_get(&mig_stats.dirty_pages_rate));
    json_object_set_double_member(ram, "mbps", s->mbps);
    json_object_set_int_member(ram, "dirty-sync-count",
                               (gint64)mig_stat_get(&mig_stats.dirty_sync_count));
    json_object_set_int_member(ram, "postcopy-requests", 0);
    json_object_set_int_member(ram, "page-size", 4096);
    json_object_set_int_member(ram, "multifd-bytes", (gint64)mig_stat_get(&mig_stats.multifd_bytes));
    json_object_set_int_member(ram, "pages-per-second",
                               (gint64)(s->bandwidth_bytes_per_ms * 1000.0 / 4096.0));
    json_object_set_int_member(ram, "precopy-bytes", (gint64)mig_stat_get(&mig_stats.precopy_bytes));
    json_object_set_int_member(ram, "downtime-bytes",
                               (gint64)mig_stat_get(&mig_stats.downtime_bytes));
    json_object_set_int_member(ram, "postcopy-bytes", 0);
    json_object_set_int_member(ram, "dirty-sync-missed-zero-copy", 0);
    return ram;
}

static JsonObject *migration_query_incoming(void)
{
    IncomingState *s = &incoming;
    JsonObject *info = json_object_new();
    MigrationStatus st = migration_incoming_status();
    json_object_set_string_member(info, "status", migration_status_name(st));
    if (s->listener) {
        g_autoptr(GError) err = NULL;
        g_autoptr(MigUri) addr = mig_uri_parse(mig_listener_address(s->listener), &err);
        if (addr) {
            JsonArray *arr = json_array_new();
            JsonObject *sa = json_object_new();
            if (addr->kind == MIG_URI_TCP) {
                json_object_set_string_member(sa, "type", "inet");
                json_object_set_string_member(sa, "host", addr->host);
                json_object_set_string_member(sa, "port", addr->port);
            } else {
                json_object_set_string_member(sa, "type", "unix");
                json_object_set_string_member(sa, "path", addr->path);
            }
            json_array_add_object_element(arr, sa);
            json_object_set_array_member(info, "socket-address", arr);
        }
    }
    if (st == MIGRATION_STATUS_COMPLETED) {
        json_object_set_int_member(info, "total-time", s->total_ms);
    }
    g_mutex_lock(&s->lock);
    if (st == MIGRATION_STATUS_FAILED && s->error_desc) {
        json_object_set_string_member(info, "error-desc", s->error_desc);
    }
    g_mutex_unlock(&s->lock);
    return info;
}

JsonObject *migration_query_info(void)
{
    MigrationState *s = &outgoing;
    MigrationStatus st = migration_outgoing_status();

    if (st == MIGRATION_STATUS_NONE && migration_incoming_status() != MIGRATION_STATUS_NONE) {
        return migration_query_incoming();
    }
    JsonObject *info = json_object_new();
    if (st == MIGRATION_STATUS_NONE) {
        return info;        /* as QEMU: {} before any migration */
    }
    json_object_set_string_member(info, "status", migration_status_name(st));
    bool running = migration_is_running(st);
    json_object_set_int_member(info, "total-time",
                               running ? now_ms() - s->start_ms : s->total_ms);
    if (st != MIGRATION_STATUS_SETUP) {
        json_object_set_int_member(info, "setup-time", s->setup_ms);
    }
    if (running) {
        json_object_set_int_member(info, "expected-downtime", (gint64)s->expected_downtime_ms);
    } else if (st == MIGRATION_STATUS_COMPLETED) {
        json_object_set_int_member(info, "downtime", s->downtime_ms);
    }
    json_object_set_object_member(info, "ram", migration_query_ram(s));
    if (s->throttle_percent) {
        json_object_set_int_member(info, "cpu-throttle-percentage", s->throttle_percent);
    }
    g_mutex_lock((GMutex *)&s->lock);
    if (st == MIGRATION_STATUS_FAILED && s->error) {
        json_object_set_string_member(info, "error-desc", s->error->message);
    }
    g_mutex_unlock((GMutex *)&s->lock);
    return info;
}

void migration_init(void)
{
    ram_mig_init();
    global_state_register();
}
