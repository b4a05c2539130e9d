/* dataplane/proxy/limits.h — circuit breaking: the CircuitBreaker limits of SPEC.md.
 *
 * Past a limit a request fails at once with 503 and `x-remora-overloaded: true`, and the refusal
 * is counted in remora_overflow_total{limit}. The counters are shared by every worker (atomics),
 * so the thresholds hold for the whole sidecar whatever --workers says. Keyed by service and
 * version (and connections by endpoint), so they survive config pushes.
 *   maxRequests         requests in flight to the service (or version)
 *   maxPendingRequests  requests waiting for an upstream connection to open
 *   maxConnections      connections open to the version's endpoints
 */
#ifndef RM_PROXY_LIMITS_H
#define RM_PROXY_LIMITS_H

#include "dataplane/proxy/proxy-t.h"

/* Admits the routed request or returns the name of the limit it hit ("max_requests"). On
 * admission the request holds its place until rm_limits_release. Loop thread. */
const char *rm_limits_admit(rm_exchange_t *ex);

/* A new connection is about to be opened for ex (no pooled one was free): checks
 * maxConnections and maxPendingRequests. Returns the limit hit, or NULL and holds a pending
 * place until rm_limits_connected. */
const char *rm_limits_connect(rm_exchange_t *ex);

/* The connection ex was waiting for is up (or gone): gives the pending place back. */
void rm_limits_connected(rm_exchange_t *ex);

/* The request ended: gives every place it holds back. */
void rm_limits_release(rm_exchange_t *ex);

/* An upstream connection to the endpoint with this key opened / closed (any worker). */
void rm_limits_connection_opened(uint64_t endpoint_key);
void rm_limits_connection_closed(uint64_t endpoint_key);

#endif
