/* dataplane/policy/limits.h — circuit breaking: the CircuitBreaker limits of SPEC.md.
 *
 * Past a limit a request fails at once (the caller answers 503 `x-remora-overloaded: true` and
 * counts remora_overflow_total{limit}). The counters are shared by every worker (atomics), so the
 * thresholds hold for the whole sidecar whatever --workers says. Keyed by service and version
 * (and connections by endpoint), so they survive config pushes.
 *   maxRequests         requests in flight to the service (or version)
 *   maxPendingRequests  requests waiting for an upstream connection to open
 *   maxConnections      connections open to the version's endpoints
 */
#ifndef REMORA_DATAPLANE_POLICY_LIMITS_H
#define REMORA_DATAPLANE_POLICY_LIMITS_H

#include <stdbool.h>
#include <stdint.h>

#include "dataplane/snapshot/snapshot.h"

/* The places one request holds; zero-initialised before rm_limits_admit. Owned by the request. */
typedef struct rm_limits_hold {
    void *slot;   /* the counters it holds a request place in; NULL: none */
    bool pending; /* and a pending-connection place */
} rm_limits_hold_t;

/* Admits a request routed to version_index of svc, or returns the name of the limit it hit
 * ("max_requests"). On admission h holds its place until rm_limits_release. Any thread. */
const char *rm_limits_admit(rm_limits_hold_t *h, const rm_service_t *svc, size_t version_index);

/* A new connection is about to be opened for the admitted request h (no pooled one was free):
 * checks maxConnections and maxPendingRequests. Returns the limit hit, or NULL and holds a pending
 * place until rm_limits_connected. */
const char *rm_limits_connect(rm_limits_hold_t *h, const rm_service_t *svc, size_t version_index);

/* The connection h was waiting for is up (or gone): gives the pending place back. */
void rm_limits_connected(rm_limits_hold_t *h);

/* The request ended: gives every place it holds back. */
void rm_limits_release(rm_limits_hold_t *h);

/* An upstream connection to the endpoint with this key opened / closed (any worker). */
void rm_limits_connection_opened(uint64_t endpoint_key);
void rm_limits_connection_closed(uint64_t endpoint_key);

#endif
