/* dataplane/proxy/shadow.h — traffic shadowing (a rule's `mirror`).
 *
 * A sampled request is copied, once its body is complete, to the mirror target with `-shadow`
 * appended to its Host. The copy is detached from the client's exchange: the primary response
 * never waits for it, and its failures or slowness never change the primary's status or latency.
 * The copy's response is read up to its status and discarded (the connection is then closed).
 * Shadows have their own concurrency cap per worker; what is not sent is counted by reason
 * (concurrency, body_too_large, no_endpoint).
 */
#ifndef REMORA_DATAPLANE_PROXY_SHADOW_H
#define REMORA_DATAPLANE_PROXY_SHADOW_H

#include "dataplane/proxy/proxy-t.h"

/* Shadows in flight per worker, at most. */
#define RM_SHADOW_MAX_CONCURRENCY 128

/* Settles the copy's target (for a mirror to another service, its routes choose the version,
 * from the request's view); called while routing, when the decision says to mirror. Loop
 * thread. */
void rm_shadow_prepare(rm_exchange_t *ex, const rm_request_view_t *view);

/* Sends the copy (Host/authority gets "-shadow") now that the whole request body went to the
 * primary (its bytes are in the exchange's replay buffer). No-op when the request is not
 * shadowed. Loop thread. */
void rm_shadow_launch(rm_exchange_t *ex);

#endif /* REMORA_DATAPLANE_PROXY_SHADOW_H */
