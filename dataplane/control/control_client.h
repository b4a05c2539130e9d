/* dataplane/control/control_client.h — the sidecar's side of the discovery stream.
 *
 * A thread of its own runs a gRPC core client: one bidi call to remora-control's
 * /remora.v1.Discovery/Stream, Hello first, then every snapshot received is validated with
 * common/config, compiled into a dataplane snapshot, published (the caller's callback wakes the
 * workers) and ACKed — or NACKed with the validation errors, keeping the last good snapshot. The
 * stream is kept up with gRPC's connection backoff (1 s, x1.6, jitter 0.2,
 * RM_CONTROL_MAX_RECONNECT_MS cap); while the control plane is gone the sidecar keeps serving its
 * last good config. Stats are reported as cumulative counters with the process's uptime
 * (StatsReport.uptime_ms: the counters were zero at its start): one right after each Hello, then
 * every second for RM_CONTROL_STATS_WARMUP_MS, then every stats_interval_ms.
 */
#ifndef REMORA_DATAPLANE_CONTROL_CONTROL_CLIENT_H
#define REMORA_DATAPLANE_CONTROL_CONTROL_CLIENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/stats/stats.h"
#include "dataplane/snapshot/snapshot.h"

/* The longest wait between connection attempts while the control plane is gone. gRPC's default
 * (120 s) left sidecars on stale config for up to 2 minutes after a long outage ended, while a
 * rollout went on without them (pods gone still listed, new ones unknown). An attempt at a dead
 * address costs a refused SYN, so even 10,000 sidecars retrying every 2 s are cheap. */
#define RM_CONTROL_MAX_RECONNECT_MS 2000

typedef struct rm_control_options {
    const char *target; /* "host:port"; borrowed for the client's life */
    const char *pod, *namespace_, *service, *version, *address, *proxy_version; /* borrowed */
    /* The services this sidecar calls, comma-separated ("reviews,ratings.shop"): the control
     * plane then sends only their config and endpoints. Empty: everything. NULL: read
     * $REMORA_EGRESS (remora-proxy passes its --egress / $REMORA_EGRESS value itself). Copied
     * at start. */
    const char *egress;
    rm_stats_registry_t *stats; /* reported periodically; borrowed; may be NULL */
    /* Whether the pod's app accepts connections (the proxy's app-port probe); borrowed, read
     * from the client's thread. NULL: the endpoint is registered with Hello. Otherwise Hello
     * says not_ready while it is false, and a REGISTER follows once it turns true, so other
     * sidecars never send requests the app would refuse. */
    const atomic_bool *app_up;
    /* Whether the app has refused connections for a while (its process is gone: nothing listens
     * on its port); borrowed, may be NULL. While it is true the endpoint is withdrawn (clients
     * stop sending, as Kubernetes' readiness would make them), and a REGISTER lists it again once
     * app_up turns true. Only refusals count: a busy app whose accept queue is full makes probes
     * time out, and keeps its traffic. */
    const atomic_bool *app_refused;
    uint64_t stats_interval_ms; /* default 5000 */
    /* Called on the client thread after a new snapshot was published. */
    void (*on_published)(void *arg, uint64_t version);
    void *arg;
} rm_control_options_t;

typedef struct rm_control_client rm_control_client_t;

/* How long after a stream opens stats are reported every second (or every stats_interval_ms
 * when that is shorter) before the steady interval. */
#define RM_CONTROL_STATS_WARMUP_MS 10000u

/* Longest egress list accepted, in entries (the control plane's limit too). */
#define RM_CONTROL_EGRESS_MAX 1024

/*
 * Checks an egress list as remora-proxy --egress / $REMORA_EGRESS give it: comma-separated
 * entries, blanks around them ignored, each "name", "name.namespace" (DNS labels: lower-case
 * letters, digits, '-') or that with ".svc" / ".svc.cluster.local". Returns the number of
 * entries (0 for an empty list), or -1 with a one-line reason in err. Any thread.
 */
int rm_control_egress_check(const char *list, char *err, size_t errlen);

/* Starts the client thread. Returns NULL when out of memory or the thread cannot start. */
rm_control_client_t *rm_control_client_start(const rm_control_options_t *opt);

/* Asks the control plane to withdraw this pod's endpoint now (drain). Any thread. */
void rm_control_client_withdraw(rm_control_client_t *c);

/* True once the WITHDRAW went out on an established stream (the control plane has it), or when
 * there is nothing to withdraw (no client, or a node without an endpoint). A drain keeps its
 * listeners open until then: while the control plane is unreachable, clients still list this
 * pod, and a pod that vanished without withdrawing stays listed after the control plane
 * returns (its stored registration is restored). Any thread. */
bool rm_control_client_withdraw_delivered(const rm_control_client_t *c);

/* Whether a snapshot was ever published by this client. Any thread. */
bool rm_control_client_has_config(const rm_control_client_t *c);

/* Stops the thread, cancels the stream and frees everything. Main thread. */
void rm_control_client_stop(rm_control_client_t *c);

#endif /* REMORA_DATAPLANE_CONTROL_CONTROL_CLIENT_H */
