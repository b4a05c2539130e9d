/* dataplane/proxy/upstream.h — per-endpoint runtime state and connection pools (one worker).
 *
 * An rm_upstream_t is found by the endpoint's address key; it outlives snapshots, so a config push
 * keeps warm connections. Connections are acquired for one exchange at a time and released back
 * to the pool only when both sides of the exchange ended cleanly and the response allowed reuse.
 */
#ifndef REMORA_DATAPLANE_PROXY_UPSTREAM_H
#define REMORA_DATAPLANE_PROXY_UPSTREAM_H

#include "dataplane/proxy/proxy-t.h"

/* Idle pooled connections kept per endpoint per worker: a bound against pathological bursts
 * only. The pool is LIFO, so connections beyond what recent load needs stay at its tail unused
 * and leave by the upstream idle timeout. A tight bound (it was nginx's customary 64) made every
 * request past that concurrency open and close its own connection: at 200 concurrent requests
 * 30% of requests paid a connect, and the proxy's CPU per request nearly doubled. */
#define RM_UPSTREAM_MAX_IDLE 1024

/* HTTP/1 on an upstream connection (upstream_h1.c): the exchange's codec ops for it. */
extern const rm_upstream_codec_ops_t rm_upstream_codec_h1;

/* Finds or creates the state for an endpoint. NULL when out of memory. */
rm_upstream_t *rm_upstream_get(rm_worker_t *w, const rm_endpoint_ref_t *ep);

/* Finds the state for a key, or NULL (used as the load callback for endpoint picking). */
rm_upstream_t *rm_upstream_find(rm_worker_t *w, uint64_t key);

/* Finds or creates state for a raw address (passthrough, inbound app). */
rm_upstream_t *rm_upstream_get_addr(rm_worker_t *w, const struct sockaddr *sa, socklen_t len);

/* A stream to the endpoint for `owner` (its events go to `ops`): today one HTTP/1 connection,
 * taken from the pool when one is still open (a readable EOF or stray bytes mean the server
 * closed it: those are discarded), else opened once ops->may_connect allows a new connection.
 * HTTP/2, many streams per connection, goes behind this same call. fresh: always a new
 * connection (raw tunnels, shadow copies). Returns NULL with *refused naming the limit that
 * refused a new connection, or with *err = -errno when connect() failed at once. */
rm_upconn_t *rm_upstream_stream(rm_worker_t *w, rm_upstream_t *up, const rm_upconn_owner_ops_t *ops,
                                void *owner, bool fresh, const char **refused, int *err);

/* Writes the connection's queued bytes once; the owner hears how many left (its on_sent).
 * Returns what rm_conn_write_buf returns. */
ssize_t rm_upconn_flush(rm_upconn_t *c);

/* Returns a connection to its pool (reusable) or closes it. Detaches it from its owner. */
void rm_upconn_release(rm_upconn_t *c, bool reusable);

/* Closes and frees a connection whatever its state. */
void rm_upconn_close(rm_upconn_t *c);

/* Closes every pooled idle connection of every upstream (drain, or endpoints withdrawn). */
void rm_upstream_close_idle(rm_worker_t *w, rm_upstream_t *only);

/* Frees the whole table (worker exit). */
void rm_upstream_table_free(rm_worker_t *w);

/* Recomputes which I/O events the connection waits for, from its owner's state. */
void rm_upconn_update_events(rm_upconn_t *c);

#endif /* REMORA_DATAPLANE_PROXY_UPSTREAM_H */
