/*
 * A TCP forwarder for tests that need to break one connection of a
 * migration on purpose.
 *
 * The proxy listens on 127.0.0.1 (an ephemeral port) and forwards every
 * connection it accepts to TARGET_HOST:TARGET_PORT, bytes unchanged, in
 * both directions, half-closes included. One thread (named "tcp-proxy")
 * runs a poll() loop over non-blocking sockets, so a side that stops
 * reading never stalls the other connections.
 *
 * Connections are told apart by the first four bytes the client sends,
 * read as a big-endian u32 (a multifd channel of Ferry opens with "FMFC",
 * 0x464d4643; the main migration stream with "FERR"). A test can ask for
 * the Nth connection (counting from 1) that opened with a given prefix to
 * be shut down (shutdown(SHUT_RDWR) on both of its sockets, then closed)
 * once more than AFTER_BYTES bytes went from the client to the target
 * through it.
 *
 * tcp_proxy_free() stops the thread and closes everything; it never waits
 * on a peer.
 */
#ifndef TESTS_QTEST_TCP_PROXY_H
#define TESTS_QTEST_TCP_PROXY_H

#include <stdbool.h>
#include <stdint.h>

typedef struct TcpProxy TcpProxy;

/* Start a proxy to TARGET_HOST:TARGET_PORT; fails the test when it cannot listen. */
TcpProxy *tcp_proxy_new(const char *target_host, int target_port);

/* The port the proxy listens on (on 127.0.0.1). */
int tcp_proxy_port(TcpProxy *p);

/*
 * Shut down the NTH (from 1) connection whose client sent MAGIC_PREFIX
 * (big-endian) as its first four bytes, once more than AFTER_BYTES bytes
 * went from the client to the target through it. Replaces an earlier
 * request; call it before the connections open.
 */
void tcp_proxy_kill_connection_with_magic(TcpProxy *p, uint32_t magic_prefix, int nth,
                                          uint64_t after_bytes);

/* Whether the requested connection has been shut down. */
bool tcp_proxy_killed(TcpProxy *p);

/* Connections accepted so far. */
unsigned tcp_proxy_connections(TcpProxy *p);

/* Stop the thread, close every socket, free. */
void tcp_proxy_free(TcpProxy *p);

#endif
