/* common/stats/stats.h — a small metrics registry: counters, gauges and latency histograms with
 * labels, rendered as Prometheus text or JSON. Shared by remora-proxy and remora-control.
 *
 * Hot path contract: look a series up once (rm_stats_counter() and friends take a mutex and may
 * allocate), keep the returned pointer, and update it with the inline functions below, which are
 * single relaxed atomic operations and safe from any thread. Series live as long as the registry:
 * a returned pointer is never invalidated by later lookups.
 */
#ifndef REMORA_COMMON_STATS_STATS_H
#define REMORA_COMMON_STATS_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef enum rm_stats_kind {
    RM_STATS_COUNTER = 0,
    RM_STATS_GAUGE = 1,
    RM_STATS_HISTOGRAM = 2,
} rm_stats_kind_t;

/* Latency buckets in seconds, shared by every histogram so reports from many sidecars add up. */
#define RM_HISTOGRAM_BUCKETS 14
extern const double rm_histogram_bounds[RM_HISTOGRAM_BUCKETS];

typedef struct rm_stats_label {
    const char *name;  /* borrowed for the call */
    const char *value; /* borrowed for the call; NULL is rendered as "" */
} rm_stats_label_t;

typedef struct rm_counter {
    _Atomic uint64_t value;
} rm_counter_t;

typedef struct rm_gauge {
    _Atomic int64_t value;
} rm_gauge_t;

typedef struct rm_histogram {
    _Atomic uint64_t
        buckets[RM_HISTOGRAM_BUCKETS + 1]; /* per bucket (not cumulative); last: +Inf */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_micros;
} rm_histogram_t;

typedef struct rm_stats_registry rm_stats_registry_t;

/* Returns a new empty registry, or NULL when out of memory. Owned by the caller. */
rm_stats_registry_t *rm_stats_registry_new(void);
void rm_stats_registry_free(rm_stats_registry_t *reg);

/* Declares a metric family with its help text (both borrowed: string literals expected).
 * Returns 0, or -1 when the name is already declared with another kind. Declaring is optional for
 * lookups below, but undeclared families are rendered without HELP. */
int rm_stats_declare(rm_stats_registry_t *reg, const char *name, rm_stats_kind_t kind,
                     const char *help);

/* Find-or-create the series `name{labels}`. Labels are copied. Returns NULL when out of memory
 * or when `name` was declared with another kind. Thread-safe (takes the registry's mutex). */
rm_counter_t *rm_stats_counter(rm_stats_registry_t *reg, const char *name,
                               const rm_stats_label_t *labels, size_t nlabels);
rm_gauge_t *rm_stats_gauge(rm_stats_registry_t *reg, const char *name,
                           const rm_stats_label_t *labels, size_t nlabels);
rm_histogram_t *rm_stats_histogram(rm_stats_registry_t *reg, const char *name,
                                   const rm_stats_label_t *labels, size_t nlabels);

static inline void rm_counter_add(rm_counter_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

static inline void rm_counter_inc(rm_counter_t *c)
{
    rm_counter_add(c, 1);
}

static inline uint64_t rm_counter_get(const rm_counter_t *c)
{
    return atomic_load_explicit(&c->value, memory_order_relaxed);
}

static inline void rm_gauge_set(rm_gauge_t *g, int64_t v)
{
    atomic_store_explicit(&g->value, v, memory_order_relaxed);
}

static inline void rm_gauge_add(rm_gauge_t *g, int64_t d)
{
    atomic_fetch_add_explicit(&g->value, d, memory_order_relaxed);
}

static inline int64_t rm_gauge_get(const rm_gauge_t *g)
{
    return atomic_load_explicit(&g->value, memory_order_relaxed);
}

/* Records one observation, in seconds. */
void rm_histogram_observe(rm_histogram_t *h, double seconds);

/* Estimates quantile q (0..1) from cumulative-or-not bucket counts over rm_histogram_bounds by
 * linear interpolation within the bucket, as Prometheus' histogram_quantile does. `counts` has
 * RM_HISTOGRAM_BUCKETS + 1 per-bucket (non-cumulative) entries. Returns 0 when empty. */
double rm_histogram_quantile(const uint64_t *counts, double q);

/* Renders every series. Returns a malloc'd NUL-terminated string (caller frees) and its length in
 * *len when len is not NULL; NULL when out of memory. Thread-safe. */
char *rm_stats_render_prometheus(rm_stats_registry_t *reg, size_t *len);
char *rm_stats_render_json(rm_stats_registry_t *reg, size_t *len);

/* One series as seen by rm_stats_visit(): labels and values are borrowed for the callback. */
typedef struct rm_stats_series_view {
    const char *name;
    rm_stats_kind_t kind;
    const rm_stats_label_t *labels;
    size_t nlabels;
    uint64_t counter;
    int64_t gauge;
    uint64_t buckets[RM_HISTOGRAM_BUCKETS + 1];
    uint64_t count;
    double sum;
} rm_stats_series_view_t;

/* Calls fn for every series in declaration order, under the registry's mutex (fn must not call
 * back into the registry). Stops early and returns fn's value when it is non-zero. */
int rm_stats_visit(rm_stats_registry_t *reg, int (*fn)(const rm_stats_series_view_t *, void *),
                   void *arg);

#endif /* REMORA_COMMON_STATS_STATS_H */
