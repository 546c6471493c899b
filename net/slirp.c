/*
 * -netdev user: a libslirp stack driven by the main loop.
 *
 * One GSource per stack. Before each poll it asks slirp which sockets to
 * watch (slirp_pollfds_fill) and adds them as unix fds, and it sleeps no
 * longer than slirp's own TCP timers or the earliest slirp timer allow;
 * after the poll it hands back what fired (slirp_pollfds_poll) and runs
 * due timers. All of it runs in the main thread with the BQL held.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libslirp.h>

#include "net/slirp.h"
#include "system/main-loop.h"

#define NET_SLIRP_ERROR net_slirp_error_quark()
G_DEFINE_QUARK(ferry-net-slirp-error-quark, net_slirp_error)

typedef struct NetSlirpTimer {
    NetSlirp *ns;
    SlirpTimerId id;
    void *cb_opaque;
    int64_t expire_ms;          /* -1 when not armed */
} NetSlirpTimer;

typedef struct NetSlirpSource {
    GSource source;
    NetSlirp *ns;
} NetSlirpSource;

struct NetSlirp {
    char *id;
    Slirp *slirp;
    GSource *source;
    GArray *fd_tags;            /* gpointer per index slirp got from add_poll */
    GPtrArray *timers;          /* NetSlirpTimer * */
    int64_t slirp_deadline_ms;  /* when slirp wants a poll call anyway; -1 none */
    NetSlirpReceive receive;
    void *receive_opaque;
};

static GHashTable *net_slirp_stacks;

static int64_t net_slirp_now_ms(void)
{
    return g_get_monotonic_time() / 1000;
}

/* Callbacks from libslirp. */

static ssize_t net_slirp_send_packet(const void *buf, size_t len, void *opaque)
{
    NetSlirp *ns = opaque;
    if (ns->receive) {
        ns->receive(ns->receive_opaque, buf, len);
    }
    return (ssize_t)len;
}

static void net_slirp_guest_error(const char *msg, void *opaque)
{
    NetSlirp *ns = opaque;
    fprintf(stderr, "ferry: netdev %s: guest error: %s\n", ns->id, msg);
}

static int64_t net_slirp_clock_get_ns(void *opaque)
{
    return g_get_monotonic_time() * 1000;
}

static void net_slirp_init_completed(Slirp *slirp, void *opaque)
{
    NetSlirp *ns = opaque;
    ns->slirp = slirp;
}

static void *net_slirp_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
    NetSlirp *ns = opaque;
    NetSlirpTimer *t = g_new0(NetSlirpTimer, 1);
    t->ns = ns;
    t->id = id;
    t->cb_opaque = cb_opaque;
    t->expire_ms = -1;
    g_ptr_array_add(ns->timers, t);
    return t;
}

static void net_slirp_timer_free(void *timer, void *opaque)
{
    NetSlirp *ns = opaque;
    g_ptr_array_remove(ns->timers, timer);
    g_free(timer);
}

static void net_slirp_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
    NetSlirpTimer *t = timer;
    t->expire_ms = expire_ms;
    main_loop_wakeup();
}

static void net_slirp_register_poll_fd(int fd, void *opaque)
{
    /* Sockets are collected afresh before every poll. */
}

static void net_slirp_unregister_poll_fd(int fd, void *opaque)
{
}

static void net_slirp_notify(void *opaque)
{
    main_loop_wakeup();
}

static const SlirpCb net_slirp_callbacks = {
    .send_packet = net_slirp_send_packet,
    .guest_error = net_slirp_guest_error,
    .clock_get_ns = net_slirp_clock_get_ns,
    .timer_free = net_slirp_timer_free,
    .timer_mod = net_slirp_timer_mod,
    .register_poll_fd = net_slirp_register_poll_fd,
    .unregister_poll_fd = net_slirp_unregister_poll_fd,
    .notify = net_slirp_notify,
    .init_completed = net_slirp_init_completed,
    .timer_new_opaque = net_slirp_timer_new_opaque,
};

/* The GSource. */

static int net_slirp_add_poll(int fd, int events, void *opaque)
{
    NetSlirp *ns = opaque;
    GIOCondition cond = 0;

    if (events & SLIRP_POLL_IN) {
        cond |= G_IO_IN;
    }
    if (events & SLIRP_POLL_OUT) {
        cond |= G_IO_OUT;
    }
    if (events & SLIRP_POLL_PRI) {
        cond |= G_IO_PRI;
    }
    if (events & SLIRP_POLL_ERR) {
        cond |= G_IO_ERR;
    }
    if (events & SLIRP_POLL_HUP) {
        cond |= G_IO_HUP;
    }
    gpointer tag = g_source_add_unix_fd(ns->source, fd, cond);
    g_array_append_val(ns->fd_tags, tag);
    return (int)ns->fd_tags->len - 1;
}

static int net_slirp_get_revents(int idx, void *opaque)
{
    NetSlirp *ns = opaque;
    int events = 0;

    if (idx < 0 || (guint)idx >= ns->fd_tags->len) {
        return 0;
    }
    GIOCondition cond = g_source_query_unix_fd(ns->source,
                                               g_array_index(ns->fd_tags, gpointer, idx));
    if (cond & G_IO_IN) {
        events |= SLIRP_POLL_IN;
    }
    if (cond & G_IO_OUT) {
        events |= SLIRP_POLL_OUT;
    }
    if (cond & G_IO_PRI) {
        events |= SLIRP_POLL_PRI;
    }
    if (cond & (G_IO_ERR | G_IO_NVAL)) {
        events |= SLIRP_POLL_ERR;
    }
    if (cond & G_IO_HUP) {
        events |= SLIRP_POLL_HUP;
    }
    return events;
}

static gboolean net_slirp_source_prepare(GSource *source, gint *timeout)
{
    NetSlirp *ns = ((NetSlirpSource *)source)->ns;
    uint32_t slirp_timeout = UINT32_MAX;
    int64_t now = net_slirp_now_ms();
    int64_t wait = -1;

    for (guint i = 0; i < ns->fd_tags->len; i++) {
        g_source_remove_unix_fd(source, g_array_index(ns->fd_tags, gpointer, i));
    }
    g_array_set_size(ns->fd_tags, 0);
    slirp_pollfds_fill(ns->slirp, &slirp_timeout, net_slirp_add_poll, ns);

    ns->slirp_deadline_ms = -1;
    if (slirp_timeout != UINT32_MAX) {
        wait = slirp_timeout;
        ns->slirp_deadline_ms = now + slirp_timeout;
    }
    for (guint i = 0; i < ns->timers->len; i++) {
        NetSlirpTimer *t = g_ptr_array_index(ns->timers, i);
        if (t->expire_ms >= 0) {
            int64_t left = MAX(t->expire_ms - now, 0);
            wait = wait < 0 ? left : MIN(wait, left);
        }
    }
    *timeout = wait < 0 ? -1 : (gint)MIN(wait, (int64_t)G_MAXINT);
    return wait == 0;
}

static gboolean net_slirp_source_check(GSource *source)
{
    NetSlirp *ns = ((NetSlirpSource *)source)->ns;
    int64_t now = net_slirp_now_ms();

    for (guint i = 0; i < ns->fd_tags->len; i++) {
        if (g_source_query_unix_fd(source, g_array_index(ns->fd_tags, gpointer, i))) {
            return TRUE;
        }
    }
    if (ns->slirp_deadline_ms >= 0 && now >= ns->slirp_deadline_ms) {
        return TRUE;
    }
    for (guint i = 0; i < ns->timers->len; i++) {
        NetSlirpTimer *t = g_ptr_array_index(ns->timers, i);
        if (t->expire_ms >= 0 && now >= t->expire_ms) {
            return TRUE;
        }
    }
    return FALSE;
}

static gboolean net_slirp_source_dispatch(GSource *source, GSourceFunc callback,
                                          gpointer user_data)
{
    NetSlirp *ns = ((NetSlirpSource *)source)->ns;

    slirp_pollfds_poll(ns->slirp, 0, net_slirp_get_revents, ns);

    /* A timer callback may re-arm or free timers: look each one up afresh. */
    for (guint i = 0; i < ns->timers->len; i++) {
        NetSlirpTimer *t = g_ptr_array_index(ns->timers, i);
        if (t->expire_ms >= 0 && net_slirp_now_ms() >= t->expire_ms) {
            t->expire_ms = -1;
            slirp_handle_timer(ns->slirp, t->id, t->cb_opaque);
        }
    }
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs net_slirp_source_funcs = {
    .prepare = net_slirp_source_prepare,
    .check = net_slirp_source_check,
    .dispatch = net_slirp_source_dispatch,
};

/* Options. */

static bool net_slirp_parse_addr(const char *key, const char *str, struct in_addr *out,
                                 GError **errp)
{
    if (inet_pton(AF_INET, str, out) != 1) {
        g_set_error(errp, NET_SLIRP_ERROR, 0, "Parameter '%s' expects an IPv4 address, not '%s'",
                    key, str);
        return false;
    }
    return true;
}

/* "10.0.2.0/24", "10.0.2.0/255.255.255.0" or "10.0.2.0" (a /24). */
static bool net_slirp_parse_net(const char *str, struct in_addr *net, struct in_addr *mask,
                                GError **errp)
{
    g_auto(GStrv) parts = g_strsplit(str, "/", 2);
    uint32_t m = 0xffffff00;

    if (!net_slirp_parse_addr("net", parts[0], net, errp)) {
        return false;
    }
    if (parts[1]) {
        char *end;
        unsigned long bits = strtoul(parts[1], &end, 10);
        if (*parts[1] && *end == '\0') {
            if (bits < 1 || bits > 30) {
                g_set_error(errp, NET_SLIRP_ERROR, 0, "net=%s: prefix length must be 1 to 30",
                            str);
                return false;
            }
            m = (uint32_t)(0xffffffffULL << (32 - bits));
        } else {
            struct in_addr ma;
            if (!net_slirp_parse_addr("net", parts[1], &ma, errp)) {
                return false;
            }
            m = ntohl(ma.s_addr);
            if (m == 0 || (~m & (~m + 1)) != 0) {
                g_set_error(errp, NET_SLIRP_ERROR, 0, "net=%s: invalid netmask", str);
                return false;
            }
        }
    }
    mask->s_addr = htonl(m);
    if (net->s_addr & ~mask->s_addr) {
        g_set_error(errp, NET_SLIRP_ERROR, 0, "net=%s: host bits set in the network address",
                    str);
        return false;
    }
    return true;
}

/* An address option: @def when absent; must lie in the network. */
static bool net_slirp_opt_addr(OptList *opts, const char *key, struct in_addr net,
                               struct in_addr mask, uint32_t def_host, struct in_addr *out,
                               GError **errp)
{
    const char *str = opts_get(opts, key);

    if (!str) {
        out->s_addr = htonl(ntohl(net.s_addr) | def_host);
        return true;
    }
    if (!net_slirp_parse_addr(key, str, out, errp)) {
        return false;
    }
    if ((out->s_addr & mask.s_addr) != net.s_addr) {
        g_set_error(errp, NET_SLIRP_ERROR, 0, "%s=%s: address is not in the guest network",
                    key, str);
        return false;
    }
    return true;
}

static bool net_slirp_parse_port(const char *rule, const char *str, int *port, GError **errp)
{
    char *end;
    unsigned long v = strtoul(str, &end, 10);

    if (!*str || *end || v > 65535) {
        g_set_error(errp, NET_SLIRP_ERROR, 0, "hostfwd=%s: invalid port '%s'", rule, str);
        return false;
    }
    *port = (int)v;
    return true;
}

/* "[ADDR]:PORT" with ADDR defaulting to @def. */
static bool net_slirp_parse_endpoint(const char *rule, const char *str, struct in_addr def,
                                     struct in_addr *addr, int *port, GError **errp)
{
    const char *colon = strrchr(str, ':');

    if (!colon) {
        g_set_error(errp, NET_SLIRP_ERROR, 0, "hostfwd=%s: expected [addr]:port", rule);
        return false;
    }
    g_autofree char *a = g_strndup(str, (gsize)(colon - str));
    *addr = def;
    if (*a && inet_pton(AF_INET, a, addr) != 1) {
        g_set_error(errp, NET_SLIRP_ERROR, 0, "hostfwd=%s: invalid address '%s'", rule, a);
        return false;
    }
    return net_slirp_parse_port(rule, colon + 1, port, errp);
}

static bool net_slirp_add_hostfwd(NetSlirp *ns, const char *rule, struct in_addr guest_def,
                                  GError **errp)
{
    const char *p = rule;
    bool udp = false;
    const char *colon = strchr(p, ':');
    struct in_addr haddr, gaddr, any = { .s_addr = htonl(INADDR_ANY) };
    int hport, gport;

    if (!colon) {
        g_set_error(errp, NET_SLIRP_ERROR, 0,
                    "hostfwd=%s: expected [tcp|udp]:[haddr]:hport-[gaddr]:gport", rule);
        return false;
    }
    g_autofree char *proto = g_strndup(p, (gsize)(colon - p));
    if (strcmp(proto, "udp") == 0) {
        udp = true;
    } else if (*proto && strcmp(proto, "tcp") != 0) {
        g_set_error(errp, NET_SLIRP_ERROR, 0, "hostfwd=%s: protocol must be tcp or udp", rule);
        return false;
    }
    p = colon + 1;
    const char *dash = strchr(p, '-');
    if (!dash) {
        g_set_error(errp, NET_SLIRP_ERROR, 0,
                    "hostfwd=%s: expected [tcp|udp]:[haddr]:hport-[gaddr]:gport", rule);
        return false;
    }
    g_autofree char *host = g_strndup(p, (gsize)(dash - p));
    if (!net_slirp_parse_endpoint(rule, host, any, &haddr, &hport, errp) ||
        !net_slirp_parse_endpoint(rule, dash + 1, guest_def, &gaddr, &gport, errp)) {
        return false;
    }
    if (slirp_add_hostfwd(ns->slirp, udp, haddr, hport, gaddr, gport) < 0) {
        g_set_error(errp, NET_SLIRP_ERROR, 0,
                    "hostfwd=%s: could not set up host forwarding rule: %s", rule,
                    g_strerror(errno));
        return false;
    }
    return true;
}

NetSlirp *net_slirp_new(OptList *opts, GError **errp)
{
    const char *id = opts_get(opts, "id");
    const char *net_str = opts_get(opts, "net");
    const char *hostname = opts_get(opts, "hostname");
    const char *hostfwd = opts_get(opts, "hostfwd");
    struct in_addr net = { .s_addr = htonl(0x0a000200) };     /* 10.0.2.0 */
    struct in_addr mask = { .s_addr = htonl(0xffffff00) };
    struct in_addr host, dhcp, dns;
    bool restricted, ipv6;
    GError *local = NULL;

    if (!id || !*id) {
        g_set_error(errp, NET_SLIRP_ERROR, 0, "Parameter 'id' is missing");
        return NULL;
    }
    if (net_slirp_stacks && g_hash_table_contains(net_slirp_stacks, id)) {
        g_set_error(errp, NET_SLIRP_ERROR, 0, "Duplicate ID '%s' for netdev", id);
        return NULL;
    }
    if (net_str && !net_slirp_parse_net(net_str, &net, &mask, errp)) {
        return NULL;
    }
    if (!net_slirp_opt_addr(opts, "host", net, mask, 2, &host, errp) ||
        !net_slirp_opt_addr(opts, "dhcpstart", net, mask, 15, &dhcp, errp) ||
        !net_slirp_opt_addr(opts, "dns", net, mask, 3, &dns, errp)) {
        return NULL;
    }
    restricted = opts_get_bool(opts, "restrict", false, &local);
    if (!local) {
        ipv6 = opts_get_bool(opts, "ipv6", true, &local);
    }
    if (local) {
        g_propagate_error(errp, local);
        return NULL;
    }
    if (!opts_check_all_used(opts, errp)) {
        return NULL;
    }

    SlirpConfig cfg = {
        .version = 4,
        .restricted = restricted,
        .in_enabled = true,
        .vnetwork = net,
        .vnetmask = mask,
        .vhost = host,
        .in6_enabled = ipv6,
        .vprefix_len = 64,
        .vhostname = hostname,
        .vdhcp_start = dhcp,
        .vnameserver = dns,
    };
    /* IPv6 as QEMU sets it up: fec0::/64, host ::2, DNS ::3. */
    inet_pton(AF_INET6, "fec0::", &cfg.vprefix_addr6);
    inet_pton(AF_INET6, "fec0::2", &cfg.vhost6);
    inet_pton(AF_INET6, "fec0::3", &cfg.vnameserver6);

    NetSlirp *ns = g_new0(NetSlirp, 1);
    ns->id = g_strdup(id);
    ns->fd_tags = g_array_new(FALSE, FALSE, sizeof(gpointer));
    ns->timers = g_ptr_array_new();
    ns->slirp_deadline_ms = -1;
    ns->slirp = slirp_new(&cfg, &net_slirp_callbacks, ns);
    if (!ns->slirp) {
        g_set_error(errp, NET_SLIRP_ERROR, 0, "could not create the user network stack");
        g_ptr_array_unref(ns->timers);
        g_array_unref(ns->fd_tags);
        g_free(ns->id);
        g_free(ns);
        return NULL;
    }
    if (hostfwd && !net_slirp_add_hostfwd(ns, hostfwd, dhcp, errp)) {
        /* Leaks the stack: a failed option ends the process. */
        return NULL;
    }

    ns->source = g_source_new(&net_slirp_source_funcs, sizeof(NetSlirpSource));
    ((NetSlirpSource *)ns->source)->ns = ns;
    g_source_set_name(ns->source, "netdev-user");
    g_source_attach(ns->source, main_loop_context());

    if (!net_slirp_stacks) {
        net_slirp_stacks = g_hash_table_new(g_str_hash, g_str_equal);
    }
    g_hash_table_insert(net_slirp_stacks, ns->id, ns);
    return ns;
}

NetSlirp *net_slirp_find(const char *id)
{
    return net_slirp_stacks ? g_hash_table_lookup(net_slirp_stacks, id) : NULL;
}

const char *net_slirp_id(NetSlirp *ns)
{
    return ns->id;
}

bool net_slirp_attach(NetSlirp *ns, NetSlirpReceive receive, void *opaque, GError **errp)
{
    if (ns->receive) {
        g_set_error(errp, NET_SLIRP_ERROR, 0, "netdev '%s' is already in use", ns->id);
        return false;
    }
    ns->receive = receive;
    ns->receive_opaque = opaque;
    return true;
}

void net_slirp_send(NetSlirp *ns, const uint8_t *buf, size_t len)
{
    if (len > (size_t)G_MAXINT) {
        return;
    }
    slirp_input(ns->slirp, buf, (int)len);
    /* slirp may have opened sockets or armed timers the next poll must see. */
    main_loop_wakeup();
}
