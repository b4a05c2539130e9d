/* dataplane/proxy/routing.h — where an exchange goes: the glue between a parsed request and the
 * snapshot's routing decision (dataplane/route), and between a decision and an upstream. */
#ifndef RM_PROXY_ROUTING_H
#define RM_PROXY_ROUTING_H

#include "dataplane/proxy/proxy-t.h"

/* Decides service, rule and version for the request whose head is req (still in the session's
 * buffer). Fills ex->svc, ex->decision, the names used in stats, ex->timeout_ms; or sets
 * ex->local_status/local_reason when the proxy must answer itself (no route, no config). */
void rm_routing_decide(rm_exchange_t *ex, rm_http1_request_t *req);

/* Picks the endpoint for the next attempt (a different one from earlier attempts where one
 * exists) and returns its upstream state, or NULL when none is available. Sets
 * ex->endpoint_address. */
rm_upstream_t *rm_routing_pick_upstream(rm_exchange_t *ex);

#endif
