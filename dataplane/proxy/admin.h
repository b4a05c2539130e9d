/* dataplane/proxy/admin.h — the admin endpoints on port 15000 (SPEC.md "Sidecar admin
 * endpoints"): /healthz, /ready, /stats (Prometheus or ?format=json), /config_dump, POST /drain. */
#ifndef REMORA_DATAPLANE_PROXY_ADMIN_H
#define REMORA_DATAPLANE_PROXY_ADMIN_H

#include "dataplane/proxy/proxy-t.h"

/* Answers one admin request on session s (loop thread of worker 0): the admin listener's
 * rm_local_handler_t. */
void rm_admin_handle(rm_session_t *s, const rm_request_head_t *req);

/* Starts the app-port probe on w's loop: /ready needs the app to answer. No-op without an app
 * port. */
void rm_admin_start_app_probe(rm_worker_t *w);

/* True once the app port accepted a connection at the last probe (or when there is no app). */
bool rm_admin_app_up(const rm_proxy_t *p);

#endif /* REMORA_DATAPLANE_PROXY_ADMIN_H */
