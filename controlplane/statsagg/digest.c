/* controlplane/statsagg/digest.c — turns one StatsReport into a digest (rows keyed by namespace,
 * service, version and route) and keeps a sidecar's short history of digests.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/statsagg/statsagg.h"
#include "controlplane/util/util.h"

typedef struct label_view {
    const char *ns, *service, *version, *route, *code, *reason;
} label_view_t;

static const char *label(Remora__V1__Counter__LabelsEntry *const *l, size_t n, const char *k)
{
    for (size_t i = 0; i < n; i++)
        if (l[i]->key != NULL && strcmp(l[i]->key, k) == 0)
            return l[i]->value != NULL ? l[i]->value : "";
    return NULL;
}

/* Histogram and counter label entries are distinct generated types with the same layout
 * (key, value); read both through this one accessor. */
static void read_labels(Remora__V1__Counter__LabelsEntry *const *l, size_t n, const char *def_ns,
                        label_view_t *v)
{
    v->ns = label(l, n, "namespace");
    if (v->ns == NULL || *v->ns == '\0')
        v->ns = def_ns;
    v->service = label(l, n, "service");
    v->version = label(l, n, "version");
    v->route = label(l, n, "route");
    v->code = label(l, n, "code");
    v->reason = label(l, n, "reason");
    if (v->service == NULL)
        v->service = "";
    if (v->version == NULL)
        v->version = "";
    if (v->route == NULL)
        v->route = "";
}

static rm_statsagg_row_t *find_row(rm_statsagg_digest_t *d, const label_view_t *k, size_t *cap,
                                   uint64_t *dropped)
{
    for (size_t i = 0; i < d->n_rows; i++) {
        rm_statsagg_row_t *r = &d->rows[i];
        if (strcmp(r->service, k->service) == 0 && strcmp(r->version, k->version) == 0 &&
            strcmp(r->route, k->route) == 0 && strcmp(r->ns, k->ns) == 0)
            return r;
    }
    if (d->n_rows >= RM_STATSAGG_MAX_ROWS) {
        (*dropped)++;
        return NULL;
    }
    if (d->n_rows == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        d->rows = rm_xrealloc(d->rows, *cap * sizeof(*d->rows));
    }
    rm_statsagg_row_t *r = &d->rows[d->n_rows++];
    memset(r, 0, sizeof(*r));
    r->ns = rm_xstrdup(k->ns);
    r->service = rm_xstrdup(k->service);
    r->version = rm_xstrdup(k->version);
    r->route = rm_xstrdup(k->route);
    return r;
}

/* Adds v to the reason's total, creating the entry; past the cap the value is dropped. */
static void add_reason(rm_statsagg_reason_t *arr, size_t *n, const char *reason, uint64_t v,
                       uint64_t *dropped)
{
    if (reason == NULL)
        reason = "";
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(arr[i].reason, reason) == 0) {
            arr[i].total += v;
            return;
        }
    }
    if (*n >= RM_STATSAGG_MAX_REASONS) {
        (*dropped)++;
        return;
    }
    arr[*n].reason = rm_xstrdup(reason);
    arr[*n].total = v;
    (*n)++;
}

static void add_counter(rm_statsagg_digest_t *d, size_t *cap, const Remora__V1__Counter *c,
                        const char *def_ns, uint64_t *dropped)
{
    static const char *const names[] = {
        "remora_requests_total",          "remora_retries_total",
        "remora_retry_success_total",     "remora_retries_skipped_total",
        "remora_shadow_requests_total",   "remora_shadow_errors_total",
        "remora_shadow_dropped_total",    "remora_overflow_total",
        "remora_outlier_ejections_total", "remora_drain_redirects_total",
    };
    size_t which = sizeof(names) / sizeof(names[0]);
    if (c->name == NULL)
        return;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(c->name, names[i]) == 0)
            which = i;
    if (which == sizeof(names) / sizeof(names[0]))
        return;
    label_view_t k;
    read_labels(c->labels, c->n_labels, def_ns, &k);
    rm_statsagg_row_t *r = find_row(d, &k, cap, dropped);
    if (r == NULL)
        return;
    uint64_t v = c->value;
    switch (which) {
    case 0:
        r->requests += v;
        if (k.code != NULL && k.code[0] == '5')
            r->failures += v;
        break;
    case 1:
        add_reason(r->retries, &r->n_retries, k.reason, v, dropped);
        break;
    case 2:
        r->retry_success += v;
        break;
    case 3:
        add_reason(r->skipped, &r->n_skipped, k.reason, v, dropped);
        break;
    case 4:
        r->shadow_requests += v;
        break;
    case 5:
        r->shadow_errors += v;
        break;
    case 6:
        r->shadow_dropped += v;
        break;
    case 7:
        r->overflows += v;
        break;
    case 8:
        r->ejections += v;
        break;
    default:
        r->drain_redirects += v;
        break;
    }
}

/* Only histograms over the shared bounds can be merged; others are ignored (they came from a
 * sidecar built with other buckets, and mixing them would invent latencies). */
static int bounds_match(const Remora__V1__Histogram *h)
{
    if (h->n_bounds != RM_HISTOGRAM_BUCKETS || h->n_counts != RM_HISTOGRAM_BUCKETS + 1)
        return 0;
    for (size_t i = 0; i < RM_HISTOGRAM_BUCKETS; i++)
        if (!(fabs(h->bounds[i] - rm_histogram_bounds[i]) <= 1e-9 * rm_histogram_bounds[i]))
            return 0;
    return 1;
}

static void add_histogram(rm_statsagg_digest_t *d, size_t *cap, const Remora__V1__Histogram *h,
                          const char *def_ns, uint64_t *dropped)
{
    if (h->name == NULL || strcmp(h->name, "remora_request_duration_seconds") != 0 ||
        !bounds_match(h))
        return;
    label_view_t k;
    /* Same layout as the counter's entries: see read_labels. */
    read_labels((Remora__V1__Counter__LabelsEntry *const *)h->labels, h->n_labels, def_ns, &k);
    rm_statsagg_row_t *r = find_row(d, &k, cap, dropped);
    if (r == NULL)
        return;
    /* stats.proto says counts are cumulative. Some senders put per-bucket counts instead; the
     * `count` field tells the two apart without ambiguity (when both readings fit, every bucket
     * but the last is empty and they mean the same). Anything else is read as cumulative, with a
     * count lower than the one before it taken as an empty bucket rather than a wrap-around. */
    uint64_t sum = 0, last = h->counts[RM_HISTOGRAM_BUCKETS];
    int monotonic = 1;
    for (size_t i = 0; i <= RM_HISTOGRAM_BUCKETS; i++) {
        sum += h->counts[i];
        if (i > 0 && h->counts[i] < h->counts[i - 1])
            monotonic = 0;
    }
    int per_bucket = !(monotonic && last == h->count) && sum == h->count;
    uint64_t prev = 0, total = 0;
    for (size_t i = 0; i <= RM_HISTOGRAM_BUCKETS; i++) {
        uint64_t c = h->counts[i], b;
        if (per_bucket) {
            b = c;
        } else {
            b = c >= prev ? c - prev : 0;
            if (c > prev)
                prev = c;
        }
        r->buckets[i] += b;
        total += b;
    }
    r->hcount += total;
}

static void digest_free(rm_statsagg_digest_t *d)
{
    for (size_t i = 0; i < d->n_rows; i++) {
        rm_statsagg_row_t *r = &d->rows[i];
        free(r->ns);
        free(r->service);
        free(r->version);
        free(r->route);
        for (size_t j = 0; j < r->n_retries; j++)
            free(r->retries[j].reason);
        for (size_t j = 0; j < r->n_skipped; j++)
            free(r->skipped[j].reason);
    }
    free(d->rows);
    memset(d, 0, sizeof(*d));
}

/* Drops every digest: the counters they hold are not comparable with the next report's. */
static void history_clear(rm_statsagg_history_t *h)
{
    for (size_t i = 0; i < h->n; i++)
        digest_free(&h->ring[(h->head + i) % RM_STATSAGG_RING]);
    h->head = 0;
    h->n = 0;
}

/* Puts the empty start digest first when this report is the history's first with an uptime, or
 * the first of restarted counters (see statsagg.h). */
static void note_start(rm_statsagg_history_t *h, uint64_t uptime, uint64_t now_ms)
{
    if (uptime == 0)
        return; /* a sender without uptime: nothing known about its start */
    /* The same process's uptime only grows, whatever the network delays, so a lower one is
     * exact evidence of new counters; a later start estimate alone is not (a report delayed in
     * a queue moves the estimate too). */
    if (h->last_uptime != 0 && uptime < h->last_uptime) {
        history_clear(h);
        h->has_start = 0;
        h->restarts++;
    }
    h->last_uptime = uptime;
    if (h->has_start || h->n > 0 || uptime >= now_ms)
        return; /* known already; reports without uptime came first; or before our clock began */
    h->has_start = 1;
    h->start_ms = now_ms - uptime;
    h->ring[h->head] = (rm_statsagg_digest_t){.t_ms = h->start_ms};
    h->n = 1;
}

size_t rm_statsagg_record(rm_statsagg_history_t **hp, const Remora__V1__StatsReport *report,
                          const char *default_ns, uint64_t now_ms)
{
    if (*hp == NULL)
        *hp = rm_xcalloc(1, sizeof(**hp));
    rm_statsagg_history_t *h = *hp;
    note_start(h, report->uptime_ms, now_ms);
    rm_statsagg_digest_t d = {.t_ms = now_ms};
    size_t cap = 0;
    const char *def_ns = default_ns != NULL && *default_ns ? default_ns : "default";
    for (size_t i = 0; i < report->n_counters; i++)
        add_counter(&d, &cap, report->counters[i], def_ns, &h->dropped_rows);
    for (size_t i = 0; i < report->n_histograms; i++)
        add_histogram(&d, &cap, report->histograms[i], def_ns, &h->dropped_rows);
    h->reports++;

    if (h->n >= 2) {
        rm_statsagg_digest_t *newest = &h->ring[(h->head + h->n - 1) % RM_STATSAGG_RING];
        rm_statsagg_digest_t *before = &h->ring[(h->head + h->n - 2) % RM_STATSAGG_RING];
        /* Until the newest digest is a full spacing away from the one before it, a newer
         * cumulative report simply supersedes it (it holds everything the older one did), so
         * the kept digests stay at least RM_STATSAGG_SPACING_MS apart, whatever the report
         * interval, and the newest is always the latest report. */
        if (newest->t_ms < before->t_ms + RM_STATSAGG_SPACING_MS) {
            digest_free(newest);
            *newest = d;
            return d.n_rows;
        }
    }
    if (h->n == RM_STATSAGG_RING) {
        digest_free(&h->ring[h->head]);
        h->head = (h->head + 1) % RM_STATSAGG_RING;
        h->n--;
    }
    h->ring[(h->head + h->n) % RM_STATSAGG_RING] = d;
    h->n++;
    return d.n_rows;
}

void rm_statsagg_history_free(rm_statsagg_history_t *h)
{
    if (h == NULL)
        return;
    history_clear(h);
    free(h);
}
