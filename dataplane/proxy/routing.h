/* dataplane/proxy/routing.h — where an exchange goes: the glue between a parsed request and the
 * snapshot's routing decision (dataplane/route), and between a decision and an upstream. */
#ifndef REMORA_DATAPLANE_PROXY_ROUTING_H
#define REMORA_DATAPLANE_PROXY_ROUTING_H

#include "dataplane/proxy/proxy-t.h"

/* Decides service, rule and version for the exchange's request (ex->req). Fills ex->svc,
 * ex->decision, the names used in stats, ex->timeout_ms, the mirror (shadow.h); or sets
 * ex->local_status/local_reason when the proxy must answer itself (no route, no config). */
void rm_routing_decide(rm_exchange_t *ex);

/* The request as dataplane/route matches it: built once per request in the worker's scratch
 * (valid until the next request is routed on this worker), shared by routing and the mirror. */
rm_request_view_t rm_routing_view(rm_exchange_t *ex);

/* Picks the endpoint for the next attempt (a different one from earlier attempts where one
 * exists) and returns its upstream state, or NULL when none is available. Sets
 * ex->endpoint_address. */
rm_upstream_t *rm_routing_pick_upstream(rm_exchange_t *ex);

#endif /* REMORA_DATAPLANE_PROXY_ROUTING_H */
