/* dataplane/proxy/metrics.c — per-worker cached handles into the shared stats registry. */
#include "dataplane/proxy/metrics.h"

#include "common/fmt.h"
#include "dataplane/snapshot/hash.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rm_metrics_declare(rm_stats_registry_t *reg)
{
    rm_stats_declare(reg, "remora_requests_total", RM_STATS_COUNTER,
                     "Requests answered, by service, version, route and status code.");
    rm_stats_declare(reg, "remora_request_duration_seconds", RM_STATS_HISTOGRAM,
                     "Request latency seen by the client, retries included.");
    rm_stats_declare(reg, "remora_retries_total", RM_STATS_COUNTER, "Retries taken, by reason.");
    rm_stats_declare(reg, "remora_retry_success_total", RM_STATS_COUNTER,
                     "Requests that succeeded after at least one retry.");
    rm_stats_declare(reg, "remora_retries_skipped_total", RM_STATS_COUNTER,
                     "Retries not taken, by reason.");
    rm_stats_declare(reg, "remora_shadow_requests_total", RM_STATS_COUNTER, "Shadow copies sent.");
    rm_stats_declare(reg, "remora_shadow_errors_total", RM_STATS_COUNTER,
                     "Shadow copies that failed.");
    rm_stats_declare(reg, "remora_shadow_dropped_total", RM_STATS_COUNTER,
                     "Shadow copies not sent, by reason.");
    rm_stats_declare(reg, "remora_overflow_total", RM_STATS_COUNTER,
                     "Requests or connections refused by a limit.");
    rm_stats_declare(reg, "remora_outlier_ejections_total", RM_STATS_COUNTER,
                     "Endpoints ejected by outlier detection.");
    rm_stats_declare(reg, "remora_drain_redirects_total", RM_STATS_COUNTER,
                     "Requests a draining server sidecar sent back, sent to another endpoint.");
    rm_stats_declare(reg, "remora_upstream_connections", RM_STATS_GAUGE,
                     "Open connections to upstreams.");
    rm_stats_declare(reg, "remora_upstream_pool_stale_total", RM_STATS_COUNTER,
                     "Pooled connections found closed by the server before reuse.");
    rm_stats_declare(reg, "remora_config_version", RM_STATS_GAUGE, "Config version in force.");
    rm_stats_declare(reg, "remora_config_rejected_total", RM_STATS_COUNTER,
                     "Config updates rejected by validation.");
}

/* A small open-addressing cache: label tuple -> (counter, histogram). Collisions on the 64-bit
 * hash are resolved by comparing the stored key text. */
#define CACHE_SLOTS 1024

typedef struct cache_entry {
    uint64_t hash;
    char *key; /* owned */
    rm_counter_t *counter;
    rm_histogram_t *histogram;
} cache_entry_t;

typedef struct metrics_cache {
    cache_entry_t slots[CACHE_SLOTS];
    size_t used;
    rm_gauge_t *upstream_connections;
    rm_counter_t *pool_stale;
} metrics_cache_t;

static __thread metrics_cache_t *tls_cache;

static metrics_cache_t *cache_get(void)
{
    if (tls_cache == NULL)
        tls_cache = calloc(1, sizeof(*tls_cache));
    return tls_cache;
}

/* The registry lookup behind the cache (a mutex and a short scan). Returns false when the
 * registry could not make the series. */
static bool request_lookup(rm_worker_t *w, const char *service, const char *version,
                           const char *route, const char *code, rm_counter_t **ctr,
                           rm_histogram_t **hist)
{
    rm_stats_label_t l[] = {
        {"service", service}, {"version", version}, {"route", route}, {"code", code}};
    *ctr = rm_stats_counter(w->proxy->stats, "remora_requests_total", l, 4);
    *hist = rm_stats_histogram(w->proxy->stats, "remora_request_duration_seconds", l, 3);
    return *ctr != NULL && *hist != NULL;
}

/* The cache's own hash (not the data path's contract hash, which goes a byte at a time): eight
 * bytes per step, then a full mix. */
static uint64_t cache_hash(const char *p, size_t n)
{
    uint64_t h = n * 0x9E3779B97F4A7C15ULL;
    while (n >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        h = (h ^ x) * 0xff51afd7ed558ccdULL;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    uint64_t tail = 0;
    memcpy(&tail, p, n);
    return rm_hash_mix64(h ^ tail);
}

void rm_metrics_request(rm_worker_t *w, const char *service, const char *version, const char *route,
                        int code, double seconds)
{
    metrics_cache_t *c = cache_get();
    char codes[24];
    *rm__fmt_uint(codes, code < 0 ? 0 : (uint64_t)code) = '\0';
    /* The key is built by hand: two snprintf calls per request were most of this function. Each
     * label gets a quarter of the key; a longer one (rare: names are short) skips the cache. */
    char key[512];
    const char *parts[] = {service, version, route, codes};
    size_t klen = 0;
    bool cacheable = c != NULL;
    for (size_t p = 0; p < 4; p++) {
        size_t l = strnlen(parts[p], sizeof(key) / 4);
        if (l == sizeof(key) / 4) {
            cacheable = false;
            break;
        }
        memcpy(key + klen, parts[p], l);
        klen += l;
        key[klen++] = p < 3 ? '\x1f' : '\0';
    }
    rm_counter_t *ctr;
    rm_histogram_t *hist;
    if (!cacheable) {
        if (request_lookup(w, service, version, route, codes, &ctr, &hist)) {
            rm_counter_inc(ctr);
            rm_histogram_observe(hist, seconds);
        }
        return;
    }
    uint64_t h = cache_hash(key, klen - 1);
    size_t i = h & (CACHE_SLOTS - 1);
    for (size_t probe = 0; probe < CACHE_SLOTS; probe++, i = (i + 1) & (CACHE_SLOTS - 1)) {
        cache_entry_t *e = &c->slots[i];
        if (e->key != NULL && e->hash == h && strcmp(e->key, key) == 0) {
            rm_counter_inc(e->counter);
            rm_histogram_observe(e->histogram, seconds);
            return;
        }
        if (e->key == NULL) {
            if (!request_lookup(w, service, version, route, codes, &ctr, &hist))
                return;
            rm_counter_inc(ctr);
            rm_histogram_observe(hist, seconds);
            /* Keep the cache at most 3/4 full; past that, look up without caching. */
            if (c->used >= CACHE_SLOTS * 3 / 4)
                return;
            e->key = strdup(key);
            if (e->key == NULL)
                return;
            e->hash = h;
            e->counter = ctr;
            e->histogram = hist;
            c->used++;
            return;
        }
    }
}

/* Retries are rare next to requests: a registry lookup (mutex, short scan) each time is fine. */
static void count(rm_worker_t *w, const char *name, const rm_stats_label_t *l, size_t n)
{
    rm_counter_t *c = rm_stats_counter(w->proxy->stats, name, l, n);
    if (c != NULL)
        rm_counter_inc(c);
}

void rm_metrics_retry(rm_worker_t *w, const char *service, const char *version, const char *route,
                      const char *reason)
{
    rm_stats_label_t l[] = {
        {"service", service}, {"version", version}, {"route", route}, {"reason", reason}};
    count(w, "remora_retries_total", l, 4);
}

void rm_metrics_retry_skipped(rm_worker_t *w, const char *service, const char *version,
                              const char *route, const char *reason)
{
    rm_stats_label_t l[] = {
        {"service", service}, {"version", version}, {"route", route}, {"reason", reason}};
    count(w, "remora_retries_skipped_total", l, 4);
}

void rm_metrics_retry_success(rm_worker_t *w, const char *service, const char *version,
                              const char *route)
{
    rm_stats_label_t l[] = {{"service", service}, {"version", version}, {"route", route}};
    count(w, "remora_retry_success_total", l, 3);
}

void rm_metrics_ejection(rm_worker_t *w, const char *service, const char *version,
                         const char *endpoint)
{
    rm_stats_label_t l[] = {{"service", service}, {"version", version}, {"endpoint", endpoint}};
    count(w, "remora_outlier_ejections_total", l, 3);
}

void rm_metrics_drain_redirect(rm_worker_t *w, const char *service, const char *version,
                               const char *route)
{
    rm_stats_label_t l[] = {{"service", service}, {"version", version}, {"route", route}};
    count(w, "remora_drain_redirects_total", l, 3);
}

void rm_metrics_shadow_sent(rm_worker_t *w, const char *service, const char *version)
{
    rm_stats_label_t l[] = {{"service", service}, {"version", version}};
    count(w, "remora_shadow_requests_total", l, 2);
}

void rm_metrics_shadow_error(rm_worker_t *w, const char *service, const char *version)
{
    rm_stats_label_t l[] = {{"service", service}, {"version", version}};
    count(w, "remora_shadow_errors_total", l, 2);
}

void rm_metrics_shadow_dropped(rm_worker_t *w, const char *service, const char *version,
                               const char *reason)
{
    rm_stats_label_t l[] = {{"service", service}, {"version", version}, {"reason", reason}};
    count(w, "remora_shadow_dropped_total", l, 3);
}

void rm_metrics_upstream_connections(rm_worker_t *w, int delta)
{
    metrics_cache_t *c = cache_get();
    if (c == NULL)
        return;
    if (c->upstream_connections == NULL)
        c->upstream_connections =
            rm_stats_gauge(w->proxy->stats, "remora_upstream_connections", NULL, 0);
    if (c->upstream_connections != NULL)
        rm_gauge_add(c->upstream_connections, delta);
}

void rm_metrics_pool_stale(rm_worker_t *w)
{
    metrics_cache_t *c = cache_get();
    if (c == NULL)
        return;
    if (c->pool_stale == NULL)
        c->pool_stale =
            rm_stats_counter(w->proxy->stats, "remora_upstream_pool_stale_total", NULL, 0);
    if (c->pool_stale != NULL)
        rm_counter_inc(c->pool_stale);
}

void rm_metrics_overflow(rm_worker_t *w, const char *limit)
{
    rm_stats_label_t l[] = {{"limit", limit}};
    rm_counter_t *ctr = rm_stats_counter(w->proxy->stats, "remora_overflow_total", l, 1);
    if (ctr != NULL)
        rm_counter_inc(ctr);
}

void rm_metrics_config(rm_proxy_t *p, uint64_t version, bool rejected)
{
    if (rejected) {
        rm_counter_t *c = rm_stats_counter(p->stats, "remora_config_rejected_total", NULL, 0);
        if (c != NULL)
            rm_counter_inc(c);
        return;
    }
    rm_gauge_t *g = rm_stats_gauge(p->stats, "remora_config_version", NULL, 0);
    if (g != NULL)
        rm_gauge_set(g, (int64_t)version);
}

void rm_metrics_worker_free(rm_worker_t *w)
{
    (void)w;
    metrics_cache_t *c = tls_cache;
    if (c == NULL)
        return;
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        free(c->slots[i].key);
    free(c);
    tls_cache = NULL;
}
