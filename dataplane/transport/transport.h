/* dataplane/transport/transport.h — reading and writing a connection's bytes through its
 * transport (types in transport-t.h).
 *
 * Threads: a connection belongs to one loop thread; nothing here is shared.
 */
#ifndef REMORA_DATAPLANE_TRANSPORT_TRANSPORT_H
#define REMORA_DATAPLANE_TRANSPORT_TRANSPORT_H

#include "dataplane/buffer/buffer.h"
#include "dataplane/transport/transport-t.h"

/* Plain TCP over a non-blocking socket. */
extern const rm_transport_ops_t rm_transport_tcp;

/* Makes c the TCP transport of fd (non-blocking, connected or connecting); c owns fd from now. */
static inline void rm_conn_init_tcp(rm_conn_t *c, int fd)
{
    c->fd = fd;
    c->ops = &rm_transport_tcp;
    c->state = NULL;
}

/* Reads once into b's tail: at most the room left under b's limit and at most `max`. Returns the
 * bytes read (> 0), 0 at the peer's end of stream, -EAGAIN, RM_BUF_EFULL when b is at its limit,
 * RM_BUF_ENOMEM, or another -errno. */
ssize_t rm_conn_read_buf(rm_conn_t *c, rm_buf_t *b, size_t max);

/* Writes from b's head once and consumes what was written. Returns the bytes written (0 when b
 * is empty), -EAGAIN, or another -errno. */
ssize_t rm_conn_write_buf(rm_conn_t *c, rm_buf_t *b);

static inline int rm_conn_shutdown_write(rm_conn_t *c)
{
    return c->ops->shutdown_write(c);
}

/* Closes the transport and its socket; idempotent. */
static inline void rm_conn_close(rm_conn_t *c)
{
    if (c->fd >= 0)
        c->ops->close(c);
}

static inline int rm_conn_poll_events(const rm_conn_t *c, int want)
{
    return c->ops->poll_events(c, want);
}

#endif
