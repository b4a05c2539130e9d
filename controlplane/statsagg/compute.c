/* controlplane/statsagg/compute.c — merges the sidecars' latest digests into the rows of
 * `meshctl stats`: totals from the newest digests, rates and ratios from the difference over the
 * window, shares of each version within its service and route.
 *
 * Which numbers come from the window and which from totals: requests_total, retries, retry
 * successes, skips, shadow, overflow and ejection counts are totals (what the counters say).
 * requests_per_second is the window's difference over its duration. The success rates, latency
 * percentiles and observed share use the window when it saw requests, else the totals, so a quiet
 * mesh still shows what happened last instead of zeros. The rule is exact and visible in the
 * output: a row's success rates and percentiles are over all time exactly when its
 * requests_per_second is 0 with requests_total above 0 (the window saw none of its requests);
 * its observed share is over all time only when that holds for every version of its
 * service/route (the group saw nothing in the window), else of the window's request rates (0 for
 * an idle row).
 * Since every sidecar that reports its uptime has a window from its first report (the start
 * digest, statsagg.h), all-time numbers no longer stand in for a young sidecar's window.
 */
#include <stdlib.h>
#include <string.h>

#include "controlplane/statsagg/statsagg.h"
#include "controlplane/util/util.h"

typedef struct agg {
    const char *ns, *service, *version, *route; /* borrowed from a digest row */
    rm_statsagg_row_t total;                    /* numbers only; strings stay NULL */
    rm_statsagg_row_t window;
    double rps;
} agg_t;

typedef struct agg_set {
    agg_t *items;
    size_t n, cap;
} agg_set_t;

static agg_t *agg_find(agg_set_t *s, const rm_statsagg_row_t *r)
{
    for (size_t i = 0; i < s->n; i++) {
        agg_t *a = &s->items[i];
        if (strcmp(a->service, r->service) == 0 && strcmp(a->version, r->version) == 0 &&
            strcmp(a->route, r->route) == 0 && strcmp(a->ns, r->ns) == 0)
            return a;
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->items = rm_xrealloc(s->items, s->cap * sizeof(*s->items));
    }
    agg_t *a = &s->items[s->n++];
    memset(a, 0, sizeof(*a));
    a->ns = r->ns;
    a->service = r->service;
    a->version = r->version;
    a->route = r->route;
    return a;
}

/* Reason lists are merged by name; the strings stay borrowed from the digests. */
static void reasons_add(rm_statsagg_reason_t *dst, size_t *n, const rm_statsagg_reason_t *src,
                        size_t m, const rm_statsagg_reason_t *base, size_t nb)
{
    for (size_t i = 0; i < m; i++) {
        uint64_t v = src[i].total;
        for (size_t j = 0; j < nb; j++) {
            if (strcmp(base[j].reason, src[i].reason) == 0) {
                v = v >= base[j].total ? v - base[j].total : v;
                break;
            }
        }
        size_t k;
        for (k = 0; k < *n; k++)
            if (strcmp(dst[k].reason, src[i].reason) == 0)
                break;
        if (k == *n) {
            if (*n >= RM_STATSAGG_MAX_REASONS)
                continue;
            dst[k].reason = src[i].reason;
            dst[k].total = 0;
            (*n)++;
        }
        dst[k].total += v;
    }
}

static uint64_t diff(uint64_t cur, uint64_t base)
{
    /* A counter that went down was reset: everything it shows is new. */
    return cur >= base ? cur - base : cur;
}

/* dst += cur - base (base may be NULL: dst += cur). */
static void row_add(rm_statsagg_row_t *dst, const rm_statsagg_row_t *cur,
                    const rm_statsagg_row_t *base)
{
    static const rm_statsagg_row_t zero;
    const rm_statsagg_row_t *b = base != NULL ? base : &zero;
    dst->requests += diff(cur->requests, b->requests);
    dst->failures += diff(cur->failures, b->failures);
    dst->retry_success += diff(cur->retry_success, b->retry_success);
    dst->shadow_requests += diff(cur->shadow_requests, b->shadow_requests);
    dst->shadow_errors += diff(cur->shadow_errors, b->shadow_errors);
    dst->shadow_dropped += diff(cur->shadow_dropped, b->shadow_dropped);
    dst->overflows += diff(cur->overflows, b->overflows);
    dst->ejections += diff(cur->ejections, b->ejections);
    dst->drain_redirects += diff(cur->drain_redirects, b->drain_redirects);
    for (size_t i = 0; i <= RM_HISTOGRAM_BUCKETS; i++)
        dst->buckets[i] += diff(cur->buckets[i], b->buckets[i]);
    dst->hcount += diff(cur->hcount, b->hcount);
    reasons_add(dst->retries, &dst->n_retries, cur->retries, cur->n_retries, b->retries,
                b->n_retries);
    reasons_add(dst->skipped, &dst->n_skipped, cur->skipped, cur->n_skipped, b->skipped,
                b->n_skipped);
}

static const rm_statsagg_row_t *digest_row(const rm_statsagg_digest_t *d,
                                           const rm_statsagg_row_t *k)
{
    for (size_t i = 0; i < d->n_rows; i++) {
        const rm_statsagg_row_t *r = &d->rows[i];
        if (strcmp(r->service, k->service) == 0 && strcmp(r->version, k->version) == 0 &&
            strcmp(r->route, k->route) == 0 && strcmp(r->ns, k->ns) == 0)
            return r;
    }
    return NULL;
}

static int wanted(const rm_statsagg_query_t *q, const rm_statsagg_row_t *r)
{
    if (q->service != NULL && *q->service && strcmp(q->service, r->service) != 0)
        return 0;
    if (q->ns != NULL && *q->ns && strcmp(q->ns, r->ns) != 0)
        return 0;
    if (q->route != NULL && *q->route && strcmp(q->route, r->route) != 0)
        return 0;
    return 1;
}

static uint64_t retries_sum(const rm_statsagg_row_t *r)
{
    uint64_t s = 0;
    for (size_t i = 0; i < r->n_retries; i++)
        s += r->retries[i].total;
    return s;
}

static Remora__V1__RetryCount **reasons_out(const rm_statsagg_reason_t *src, size_t n)
{
    if (n == 0)
        return NULL;
    Remora__V1__RetryCount **out = rm_xcalloc_ptrs(n);
    for (size_t i = 0; i < n; i++) {
        Remora__V1__RetryCount *c = rm_xmalloc(sizeof(*c));
        remora__v1__retry_count__init(c);
        c->reason = rm_xstrdup(src[i].reason);
        c->total = src[i].total;
        out[i] = c;
    }
    return out;
}

static int agg_cmp(const void *pa, const void *pb)
{
    const agg_t *a = pa, *b = pb;
    int c = strcmp(a->ns, b->ns);
    if (c == 0)
        c = strcmp(a->service, b->service);
    if (c == 0)
        c = strcmp(a->route, b->route);
    if (c == 0)
        c = strcmp(a->version, b->version);
    return c;
}

/* The rows the success rates, percentiles and shares are computed from (see the file comment). */
static const rm_statsagg_row_t *basis(const agg_t *a)
{
    /* Keyed on requests alone, as requests_per_second is: rps 0 <=> totals (file comment). */
    return a->window.requests > 0 ? &a->window : &a->total;
}

/*
 * The digest the window is measured from: the newest older digest received at least `window`
 * before now; when the history is shorter than the window, the oldest one (for a sidecar with a
 * start digest, its start: the window is then its whole life). One exception: a base more than a
 * whole window older than the window's start, with a newer digest before the latest, is skipped
 * for that newer one. That gap only happens when the oldest digest is the start digest of a
 * sidecar that lived long before it reported here (a reconnect to a restarted control plane):
 * a rate over its lifetime would hide what it does now, and the shorter span is the closer one.
 * NULL when the history holds one digest.
 */
static const rm_statsagg_digest_t *window_base(const rm_statsagg_history_t *h, uint64_t now_ms,
                                               uint64_t window)
{
    if (h->n < 2)
        return NULL;
    uint64_t cutoff = now_ms > window ? now_ms - window : 0;
    size_t j = h->n - 1;
    while (j-- > 0) {
        if (h->ring[(h->head + j) % RM_STATSAGG_RING].t_ms <= cutoff)
            break;
    }
    if (j == SIZE_MAX)
        j = 0; /* every older digest is inside the window: the oldest */
    const rm_statsagg_digest_t *base = &h->ring[(h->head + j) % RM_STATSAGG_RING];
    if (base->t_ms <= cutoff && cutoff - base->t_ms > window && j + 2 < h->n)
        base = &h->ring[(h->head + j + 1) % RM_STATSAGG_RING];
    return base;
}

static const Remora__V1__Route *find_route(const Remora__V1__ConfigSet *cfg, const char *ns,
                                           const char *service, const char *route)
{
    if (cfg == NULL || route == NULL || *route == '\0')
        return NULL;
    for (size_t i = 0; i < cfg->n_routes; i++) {
        const Remora__V1__Route *r = cfg->routes[i];
        const char *rns = r->namespace_ != NULL ? r->namespace_ : "default";
        if (r->name != NULL && strcmp(r->name, route) == 0 && strcmp(rns, ns) == 0 &&
            (r->service == NULL || service == NULL || *service == '\0' ||
             strcmp(r->service, service) == 0))
            return r;
    }
    return NULL;
}

double rm_statsagg_configured_share(const Remora__V1__ConfigSet *config, const char *ns,
                                    const char *service, const char *route, const char *version)
{
    const Remora__V1__Route *r = find_route(config, ns, service, route);
    if (r == NULL || r->n_rules == 0 || version == NULL)
        return 0;
    const Remora__V1__Rule *rule = r->rules[r->n_rules - 1];
    for (size_t i = 0; i < r->n_rules; i++) {
        if (r->rules[i]->match == NULL) {
            rule = r->rules[i];
            break;
        }
    }
    uint64_t sum = 0, mine = 0;
    for (size_t i = 0; i < rule->n_destinations; i++) {
        const Remora__V1__Destination *d = rule->destinations[i];
        uint64_t w = d->has_weight ? d->weight : 0;
        sum += w;
        if (d->version != NULL && strcmp(d->version, version) == 0)
            mine += w;
    }
    return sum > 0 ? (double)mine / (double)sum : 0;
}

void rm_statsagg_compute(rm_statsagg_history_t *const *hs, size_t n, const rm_statsagg_query_t *q,
                         Remora__V1__StatsResponse *out)
{
    uint64_t window = q->window_ms ? q->window_ms : RM_STATSAGG_DEFAULT_WINDOW_MS;
    if (window > RM_STATSAGG_MAX_WINDOW_MS)
        window = RM_STATSAGG_MAX_WINDOW_MS;
    out->window_ms = window;
    agg_set_t set = {0};

    for (size_t i = 0; i < n; i++) {
        const rm_statsagg_history_t *h = hs[i];
        if (h == NULL || h->n == 0)
            continue;
        const rm_statsagg_digest_t *latest = &h->ring[(h->head + h->n - 1) % RM_STATSAGG_RING];
        const rm_statsagg_digest_t *base = window_base(h, q->now_ms, window);
        double dt = base != NULL && latest->t_ms > base->t_ms
                        ? (double)(latest->t_ms - base->t_ms) / 1000.0
                        : 0;
        for (size_t r = 0; r < latest->n_rows; r++) {
            const rm_statsagg_row_t *row = &latest->rows[r];
            if (!wanted(q, row))
                continue;
            agg_t *a = agg_find(&set, row);
            row_add(&a->total, row, NULL);
            if (base != NULL && dt > 0) {
                const rm_statsagg_row_t *b = digest_row(base, row);
                uint64_t before = a->window.requests;
                row_add(&a->window, row, b);
                a->rps += (double)(a->window.requests - before) / dt;
            }
        }
    }

    if (set.n > 0)
        qsort(set.items, set.n, sizeof(*set.items), agg_cmp);
    out->n_rows = set.n;
    out->rows = set.n ? rm_xcalloc_ptrs(set.n) : NULL;
    for (size_t i = 0; i < set.n; i++) {
        const agg_t *a = &set.items[i];
        const rm_statsagg_row_t *bs = basis(a);
        Remora__V1__VersionStats *v = rm_xmalloc(sizeof(*v));
        remora__v1__version_stats__init(v);
        v->service = rm_xstrdup(a->service);
        v->namespace_ = rm_xstrdup(a->ns);
        v->version = rm_xstrdup(a->version);
        v->route = rm_xstrdup(a->route);
        v->requests_per_second = a->rps;
        v->requests_total = a->total.requests;
        if (bs->requests > 0) {
            uint64_t ok = bs->requests - (bs->failures <= bs->requests ? bs->failures : 0);
            v->effective_success_rate = (double)ok / (double)bs->requests;
            v->actual_success_rate = (double)ok / (double)(bs->requests + retries_sum(bs));
        }
        v->n_retries = a->total.n_retries;
        v->retries = reasons_out(a->total.retries, a->total.n_retries);
        v->retry_successes = a->total.retry_success;
        v->n_retries_skipped = a->total.n_skipped;
        v->retries_skipped = reasons_out(a->total.skipped, a->total.n_skipped);
        v->shadowed = a->total.shadow_requests;
        v->shadow_dropped = a->total.shadow_dropped;
        v->overflows = a->total.overflows;
        v->ejections = a->total.ejections;
        v->drain_redirects = a->total.drain_redirects;
        v->p50_seconds = rm_histogram_quantile(bs->buckets, 0.50);
        v->p99_seconds = rm_histogram_quantile(bs->buckets, 0.99);

        /* Observed share among the versions of the same namespace/service/route: of the
         * group's request rate when the group saw requests in the window, else of its totals.
         * Rates, not the window's request counts: each sidecar's window spans the time between
         * its own reports, so spans differ (a young sidecar's is shorter), and summed counts
         * would weigh each sidecar by how long its span is instead of by its traffic. */
        double grps = 0;
        uint64_t gtot = 0;
        for (size_t j = 0; j < set.n; j++) {
            const agg_t *o = &set.items[j];
            if (strcmp(o->ns, a->ns) == 0 && strcmp(o->service, a->service) == 0 &&
                strcmp(o->route, a->route) == 0) {
                grps += o->rps;
                gtot += o->total.requests;
            }
        }
        if (grps > 0)
            v->observed_share = a->rps / grps;
        else if (gtot > 0)
            v->observed_share = (double)a->total.requests / (double)gtot;
        v->configured_share =
            rm_statsagg_configured_share(q->config, a->ns, a->service, a->route, a->version);
        out->rows[i] = v;
    }
    free(set.items);
}
