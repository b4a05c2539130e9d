/* dataplane/proxy/metrics.h — the sidecar's stats, with SPEC.md's names.
 *
 * Series handles are looked up in the shared registry once and cached per worker, keyed by the
 * label values, so the per-request cost is a hash probe and relaxed atomic adds.
 */
#ifndef REMORA_DATAPLANE_PROXY_METRICS_H
#define REMORA_DATAPLANE_PROXY_METRICS_H

#include "dataplane/proxy/proxy-t.h"

/* Declares every family (so /stats shows them, with HELP, from the start). Main thread. */
void rm_metrics_declare(rm_stats_registry_t *reg);

/* One finished request: counts remora_requests_total{service,version,route,code} and observes
 * remora_request_duration_seconds{service,version,route}. Empty strings are allowed. */
void rm_metrics_request(rm_worker_t *w, const char *service, const char *version, const char *route,
                        int code, double seconds);

/* Retries taken (reason: connect-failure, reset, gateway-error, 5xx, ...), retries refused
 * (exhausted, budget, limit, non_idempotent, body_too_large, deadline), and requests that
 * succeeded after a retry. */
void rm_metrics_retry(rm_worker_t *w, const char *service, const char *version, const char *route,
                      const char *reason);
void rm_metrics_retry_skipped(rm_worker_t *w, const char *service, const char *version,
                              const char *route, const char *reason);
void rm_metrics_retry_success(rm_worker_t *w, const char *service, const char *version,
                              const char *route);

void rm_metrics_ejection(rm_worker_t *w, const char *service, const char *version,
                         const char *endpoint);

/* A request a draining server sidecar sent back, redirected to another endpoint (exchange.c). */
void rm_metrics_drain_redirect(rm_worker_t *w, const char *service, const char *version,
                               const char *route);

/* Shadow copies: sent, failed (5xx, reset, timeout), and not sent with the reason. */
void rm_metrics_shadow_sent(rm_worker_t *w, const char *service, const char *version);
void rm_metrics_shadow_error(rm_worker_t *w, const char *service, const char *version);
void rm_metrics_shadow_dropped(rm_worker_t *w, const char *service, const char *version,
                               const char *reason);

void rm_metrics_upstream_connections(rm_worker_t *w, int delta);
void rm_metrics_pool_stale(rm_worker_t *w);
void rm_metrics_overflow(rm_worker_t *w, const char *limit);
void rm_metrics_config(rm_proxy_t *p, uint64_t version, bool rejected);

/* Frees the worker's handle cache (worker exit). */
void rm_metrics_worker_free(rm_worker_t *w);

#endif /* REMORA_DATAPLANE_PROXY_METRICS_H */
