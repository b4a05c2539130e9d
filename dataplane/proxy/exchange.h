/* dataplane/proxy/exchange.h — one request/response through the proxy, whatever the protocol.
 *
 * The exchange routes the neutral request (service, rule, version, endpoint), takes an upstream
 * connection, streams the request body up and the response down with bounded buffers and
 * back-pressure, retries, bounces, mirrors and counts, and answers locally (502/503/504) when the
 * upstream fails before a response began. It reaches its downstream only through
 * rm_downstream_ops_t and its upstream connection through the connection's codec ops
 * (proxy-t.h), so a codec is added without editing it. Calls that can finish the exchange free it
 * (the downstream's `finished`): callers must not touch the exchange after calling any
 * rm_exchange_on_* function unless the session is still open and ex->finished is false.
 */
#ifndef REMORA_DATAPLANE_PROXY_EXCHANGE_H
#define REMORA_DATAPLANE_PROXY_EXCHANGE_H

#include "dataplane/proxy/proxy-t.h"

typedef enum rm_upstream_failure {
    RM_UPSTREAM_CONNECT_FAILED = 1, /* refused, unreachable, connect timeout: never processed */
    RM_UPSTREAM_RESET,              /* closed or reset before a complete response */
    RM_UPSTREAM_TIMEOUT,            /* no progress within the time allowed */
    RM_UPSTREAM_PROTOCOL,           /* malformed response */
} rm_upstream_failure_t;

/* Creates an exchange for the request head (decoded by the downstream's codec; its spans may go
 * once this returns: the exchange keeps a copy) arriving on session s through down (borrowed,
 * outlives the exchange). Routes it. Returns NULL when out of memory. */
rm_exchange_t *rm_exchange_new(rm_session_t *s, rm_downstream_t *down,
                               const rm_request_head_t *head);

/* Creates an exchange that tunnels the session's bytes, unparsed, to its original destination
 * (transparently redirected traffic for a destination the mesh does not know). NULL when out of
 * memory. Start it with rm_exchange_start. */
rm_exchange_t *rm_exchange_new_tunnel(rm_session_t *s, rm_downstream_t *down);

/* Routes and begins forwarding; may finish at once with a local reply. */
void rm_exchange_start(rm_exchange_t *ex);

void rm_exchange_on_downstream_data(rm_exchange_t *ex);
void rm_exchange_on_downstream_eof(rm_exchange_t *ex);
void rm_exchange_on_downstream_drained(rm_exchange_t *ex);

bool rm_exchange_wants_downstream_read(const rm_exchange_t *ex);

/* True once the whole request body was forwarded (or there was none). */
bool rm_exchange_request_done(const rm_exchange_t *ex);

/* True when the exchange leaves the client connection able to carry another request (the codec
 * has its own say: the client's keep-alive, the response's framing). */
bool rm_exchange_keepalive(const rm_exchange_t *ex);

/* The request timeout passed (the session's timer keeps ex->deadline): 504, or a cut response. */
void rm_exchange_on_timeout(rm_exchange_t *ex);

/* The session is closing under the exchange: release everything without replying. */
void rm_exchange_abort(rm_exchange_t *ex);

/* Frees a finished exchange (called by the session). */
void rm_exchange_free(rm_exchange_t *ex);

/* Reaped exchanges a worker keeps for reuse: up to RM_EXCHANGE_KEEP_MAX while load needs them,
 * trimmed back towards RM_EXCHANGE_KEEP by rm_exchange_trim_recycled (as buffer blocks are). */
#define RM_EXCHANGE_KEEP     64
#define RM_EXCHANGE_KEEP_MAX 1024

/* The reaper's end of an exchange's life: its memory is kept for the next request or freed.
 * Worker thread only. */
void rm_exchange_recycle(rm_worker_t *w, rm_exchange_t *ex);
/* Frees kept exchanges that went unused since the previous call, down to RM_EXCHANGE_KEEP. */
void rm_exchange_trim_recycled(rm_worker_t *w);
/* Frees the exchanges a worker keeps; call before the worker's thread exits. */
void rm_exchange_free_recycled(rm_worker_t *w);

#endif /* REMORA_DATAPLANE_PROXY_EXCHANGE_H */
