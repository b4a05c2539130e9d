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
 * The implicit start digest: a report carries the sidecar's uptime (StatsReport.uptime_ms, how
 * long its counters have been counting). Every counter was zero at the sidecar's start, so the
 * first report of a history puts an empty digest at (receipt time - uptime), mapped into this
 * clock, before its own. A young sidecar then has a window from its first report: its rate is
 * requests / uptime and its shares and success rates cover exactly its life, instead of rps 0 and
 * all-time totals until a second report. A sidecar that reconnects after a long life (a restarted
 * control plane) has a large uptime, so its start digest lies far back: its first rate is its
 * lifetime average, never a spike of all its counts over one interval, and once a second report
 * arrived and the start lies more than a window before the window's start, the window's base
 * skips it (see window_base in compute.c). An uptime lower than the previous report's means the
 * counters restarted: the history starts over from a new start digest. A sidecar that sends no
 * uptime (0: an older build), or whose start lies before this clock's origin, gets no start digest
 * and behaves as before (no window until its second report).
 *
 * Memory is bounded: a history keeps RM_STATSAGG_RING digests at least RM_STATSAGG_SPACING_MS
 * apart (a newer report inside the spacing replaces the newest digest), a digest keeps at most
 * RM_STATSAGG_MAX_ROWS rows and a row at most RM_STATSAGG_MAX_REASONS reasons per kind. A window
 * longer than the history covers uses the oldest digest kept.
 *
 * Which basis a row's numbers have (exact, and visible in the output): success rates and
 * percentiles are over the window unless its requests_per_second is 0 with requests_total above
 * 0, then over all time; the observed share is of the window's request rates (so sidecars
 * whose windows span different lengths weigh by traffic, not by span) unless every version of
 * its service/route has requests_per_second 0, then of all-time totals (compute.c).
 *
 * Which counters (SPEC.md, "Stat names"): remora_requests_total{service,version,route,code},
 * remora_request_duration_seconds (histogram over rm_histogram_bounds, cumulative counts per
 * stats.proto), remora_retries_total{reason}, remora_retry_success_total,
 * remora_retries_skipped_total{reason}, remora_shadow_requests_total, remora_shadow_errors_total,
 * remora_shadow_dropped_total{reason}, remora_overflow_total{limit},
 * remora_outlier_ejections_total, remora_drain_redirects_total. Rows are keyed by the labels
 * namespace (default: the sidecar's namespace), service, version and route; a missing label is "".
 * Other names are ignored.
 *
 * Threads: none of this is shared; the caller (the completion-queue thread) owns every object.
 */
#ifndef REMORA_CONTROLPLANE_STATSAGG_STATSAGG_H
#define REMORA_CONTROLPLANE_STATSAGG_STATSAGG_H

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
    uint64_t drain_redirects;
    rm_statsagg_reason_t retries[RM_STATSAGG_MAX_REASONS];
    size_t n_retries;
    rm_statsagg_reason_t skipped[RM_STATSAGG_MAX_REASONS];
    size_t n_skipped;
    uint64_t buckets[RM_HISTOGRAM_BUCKETS + 1]; /* per bucket (not cumulative); last: +Inf */
    uint64_t hcount;
} rm_statsagg_row_t;

/* One report, digested (or the empty start digest: no rows). */
typedef struct rm_statsagg_digest {
    uint64_t t_ms;           /* receipt time, monotonic; a start digest: the sidecar's start */
    rm_statsagg_row_t *rows; /* owned array */
    size_t n_rows;
} rm_statsagg_digest_t;

/* One sidecar's recent digests: ring[(head + i) % RING] for i < n, oldest first. */
typedef struct rm_statsagg_history {
    rm_statsagg_digest_t ring[RM_STATSAGG_RING];
    size_t head, n;
    uint64_t reports;      /* reports recorded */
    uint64_t dropped_rows; /* rows past RM_STATSAGG_MAX_ROWS, or reasons past the cap */
    uint64_t last_uptime;  /* the newest report's uptime_ms; 0: none reported */
    uint64_t start_ms;     /* the sidecar's start on this clock, when has_start */
    int has_start;         /* a start digest was put (it may since have left the ring) */
    uint64_t restarts;     /* times the uptime went down: the history started over */
} rm_statsagg_history_t;

/*
 * Digests `report` (borrowed) received at now_ms into *h, creating the history when *h is NULL
 * (the caller owns it: rm_statsagg_history_free). `default_ns` (borrowed, may be NULL: "default")
 * is the namespace of rows whose counters carry no namespace label. The history's first report
 * with an uptime (and the first after the uptime went down) also puts the empty start digest at
 * now_ms - uptime_ms (see the file comment). Returns the number of rows in the new digest.
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

#endif /* REMORA_CONTROLPLANE_STATSAGG_STATSAGG_H */
