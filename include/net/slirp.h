/*
 * User-mode networking (-netdev user) over libslirp: a NAT'd IPv4 network
 * (10.0.2.0/24 by default: gateway 10.0.2.2, DNS 10.0.2.3, DHCP from
 * 10.0.2.15) and optional host port forwarding.
 *
 * Threads: slirp runs in the main thread's GLib context under the BQL
 * (its sockets and timers are one GSource). Frames from the guest are fed
 * in with net_slirp_send() from any thread holding the BQL, typically a
 * vCPU thread; frames for the guest reach the attached receiver under the
 * BQL, from the main thread or from inside net_slirp_send().
 */
#ifndef NET_SLIRP_H
#define NET_SLIRP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#include "util/option.h"

typedef struct NetSlirp NetSlirp;

/* A frame (Ethernet, no FCS) for the guest; drop it if there is no room. */
typedef void (*NetSlirpReceive)(void *opaque, const uint8_t *buf, size_t len);

/*
 * Create a stack from "-netdev user,id=ID[,net=ADDR[/MASK]][,host=ADDR]
 * [,dhcpstart=ADDR][,dns=ADDR][,ipv6=on|off][,restrict=on|off]
 * [,hostname=NAME][,hostfwd=[tcp|udp]:[HADDR]:HPORT-[GADDR]:GPORT]" and
 * register it under its id. The caller has read "type"; every other key
 * is read here and unknown keys fail. Messages do not name the option.
 */
NetSlirp *net_slirp_new(OptList *opts, GError **errp);

NetSlirp *net_slirp_find(const char *id);
const char *net_slirp_id(NetSlirp *ns);

/* Connect the one guest-side peer (a NIC); fails if one is attached. */
bool net_slirp_attach(NetSlirp *ns, NetSlirpReceive receive, void *opaque, GError **errp);

/* A frame from the guest. BQL held. */
void net_slirp_send(NetSlirp *ns, const uint8_t *buf, size_t len);

#endif
