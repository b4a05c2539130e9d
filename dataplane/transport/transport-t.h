/* dataplane/transport/transport-t.h — the types of a connection's byte transport (types only;
 * functions in transport.h).
 *
 * A transport moves a connection's bytes and nothing else: plain TCP now, TLS beside it later,
 * without touching the callers (HAProxy's xprt_ops, Redis's ConnectionType, nginx's recv/send
 * pointers on ngx_connection_t). Codecs and the exchange above it read and write through
 * rm_conn_t; below it are sockets. Loopback tuning and SO_ORIGINAL_DST stay with whoever opens
 * or accepts the socket: they are facts of the socket, not of the byte stream.
 */
#ifndef REMORA_DATAPLANE_TRANSPORT_TRANSPORT_T_H
#define REMORA_DATAPLANE_TRANSPORT_TRANSPORT_T_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

typedef struct rm_conn rm_conn_t;

/* Poll interest, in libev's values so callers pass them straight to ev_io_set. */
#define RM_CONN_WANT_READ  0x01
#define RM_CONN_WANT_WRITE 0x02

/* Every call is non-blocking. Results follow one convention: bytes moved (> 0); 0 for the peer's
 * end of stream (recv only); -EAGAIN when nothing can move now; another -errno on failure. */
typedef struct rm_transport_ops {
    const char *name; /* "tcp", "tls": for logs and stats */
    ssize_t (*recv)(rm_conn_t *c, void *p, size_t n);
    ssize_t (*send)(rm_conn_t *c, const void *p, size_t n);
    ssize_t (*sendv)(rm_conn_t *c, const struct iovec *iov, int iovcnt);
    /* Ends our direction of the stream (TCP FIN; TLS close_notify). 0 or -errno. */
    int (*shutdown_write)(rm_conn_t *c);
    /* Releases the transport's state and closes the socket. The rm_conn_t may then be reused. */
    void (*close)(rm_conn_t *c);
    /* The poll events to wait for, given what the caller wants to do: a TLS transport in a
     * handshake or renegotiation may need to read before it can write, and the other way round.
     * TCP returns `want` unchanged. */
    int (*poll_events)(const rm_conn_t *c, int want);
} rm_transport_ops_t;

/* One connection's transport end. Embedded in its owner (a session, an upstream connection);
 * the owner owns the socket through it. */
struct rm_conn {
    int fd;                        /* -1 once closed */
    const rm_transport_ops_t *ops; /* static table: &rm_transport_tcp */
    void *state;                   /* owned by the transport (TLS session); NULL for TCP */
};

#endif
