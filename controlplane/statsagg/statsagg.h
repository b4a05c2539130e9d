/* controlplane/statsagg/statsagg.h — what remora-control makes of the sidecars' stats reports:
 * per sidecar, a short history of digested cumulative counters; across sidecars, the rows of
 * `meshctl stats` (per namespace/service/version/route: totals, rates over a sliding window,
 * success rates per attempt and after retries, latency percentiles, observed vs configured share).
 *
 * Sidecars report cumulative counters (stats.proto), so the rate over a window is the difference
 * between the newest report and the newest one at least `window` older, divided by the time
 * between them (receipt times on the control plane's monotonic clock, so sidecar clock skew does
 * not matter). A counter that went down (a sidecar restarted its counters) counts from zero.
 *
 * Memory is bounded: a history keeps RM_STATSAGG_RING digests at least RM_STATSAGG_SPACING_MS
 * apart (a newer report inside the spacing replaces the newest digest), a digest keeps at most
 * RM_STATSAGG_MAX_ROWS rows and a row at most RM_STATSAGG_MAX_REASONS reasons per kind. A window
 * longer than the history covers uses the oldest digest kept.
 *
 * Which counters (SPEC.md, "Stat names"): remora_requests_total{service,version,route,code},
 * remora_request_duration_seconds (histogram over rm_histogram_bounds, cumulative counts per
 * stats.proto), remora_retries_total{reason}, remora_retry_success_total,
 * remora_retries_skipped_total{reason}, remora_shadow_requests_total, remora_shadow_errors_total,
 * remora_shadow_dropped_total{reason}, remora_overflow_total{limit},
 * remora_outlier_ejections_total. Rows are keyed by the labels namespace (default: the sidecar's
 * namespace), service, version and route; a missing label is "". Other names are ignored.
 *
 * Threads: none of this is shared; the caller (the completion-queue thread) owns every object.
 */
#ifndef RM_STATSAGG_H
#define RM_STATSAGG_H

#include <stddef.h>
#include <stdint.h>

#include "common/stats/stats.h"
#include "remora/v1/admin.pb-c.h"
#include "remora/v1/config.pb-c.h"
#include "remora/v1/stats.pb-c.h"

#define RM_STATSAGG_RING              16
#define RM_STATSAGG_SPACING_MS        2000u
#define RM_STATSAGG_MAX_ROWS          512
#define RM_STATSAGG_MAX_REASONS       16
#define RM_STATSAGG_DEFAULT_WINDOW_MS 10000u
#define RM_STATSAGG_MAX_WINDOW_MS     3600000u

typedef struct rm_statsagg_reason {
    char *reason; /* owned */
    uint64_t total;
} rm_statsagg_reason_t;

/* The cumulative counters of one (namespace, service, version, route). */
typedef struct rm_statsagg_row {
    char *ns, *service, *version, *route; /* owned, never NULL */
    uint64_t requests;                    /* final responses */
    uint64_t failures;                    /* final responses with a 5xx code */
    uint64_t retry_success;
    uint64_t shadow_requests, shadow_errors, shadow_dropped;
    uint64_t overflows, ejections;
    rm_statsagg_reason_t retries[RM_STATSAGG_MAX_REASONS];
    size_t n_retries;
    rm_statsagg_reason_t skipped[RM_STATSAGG_MAX_REASONS];
    size_t n_skipped;
    uint64_t buckets[RM_HISTOGRAM_BUCKETS + 1]; /* per bucket (not cumulative); last: +Inf */
    uint64_t hcount;
} rm_statsagg_row_t;

/* One report, digested. */
typedef struct rm_statsagg_digest {
    uint64_t t_ms;           /* receipt time, monotonic */
    rm_statsagg_row_t *rows; /* owned array */
    size_t n_rows;
} rm_statsagg_digest_t;

/* One sidecar's recent digests: ring[(head + i) % RING] for i < n, oldest first. */
typedef struct rm_statsagg_history {
    rm_statsagg_digest_t ring[RM_STATSAGG_RING];
    size_t head, n;
    uint64_t reports;      /* reports recorded */
    uint64_t dropped_rows; /* rows past RM_STATSAGG_MAX_ROWS, or reasons past the cap */
} rm_statsagg_history_t;

/*
 * Digests `report` (borrowed) received at now_ms into *h, creating the history when *h is NULL
 * (the caller owns it: rm_statsagg_history_free). `default_ns` (borrowed, may be NULL: "default")
 * is the namespace of rows whose counters carry no namespace label. Returns the number of rows
 * in the new digest.
 */
size_t rm_statsagg_record(rm_statsagg_history_t **h, const Remora__V1__StatsReport *report,
                          const char *default_ns, uint64_t now_ms);

/* Frees a history; NULL is a no-op. */
void rm_statsagg_history_free(rm_statsagg_history_t *h);

/* What rm_statsagg_compute reports on. Everything is borrowed for the call. */
typedef struct rm_statsagg_query {
    const char *service;                 /* "" or NULL: all */
    const char *ns;                      /* "" or NULL: all */
    const char *route;                   /* "" or NULL: all */
    uint64_t window_ms;                  /* 0: RM_STATSAGG_DEFAULT_WINDOW_MS; capped at the max */
    uint64_t now_ms;                     /* monotonic */
    const Remora__V1__ConfigSet *config; /* for configured shares; may be NULL */
} rm_statsagg_query_t;

/*
 * Aggregates the latest digests of `n` histories (borrowed; NULL entries are skipped) into
 * out->rows (and out->window_ms), sorted by namespace, service, route, version. `out` must be a
 * freshly initialised, malloc'd StatsResponse owned by the caller; every row and string is
 * malloc'd too, so protobuf_c_message_free_unpacked(&out->base, NULL) frees all of it.
 */
void rm_statsagg_compute(rm_statsagg_history_t *const *hs, size_t n, const rm_statsagg_query_t *q,
                         Remora__V1__StatsResponse *out);

/* The configured share (0..1) of `version` on Route ns/route of `service`: the weights of the
 * route's first rule without a match (the rule that takes "all other" traffic), else of its last
 * rule. 0 when the route, or the version in it, is unknown. */
double rm_statsagg_configured_share(const Remora__V1__ConfigSet *config, const char *ns,
                                    const char *service, const char *route, const char *version);

#endif /* RM_STATSAGG_H */
