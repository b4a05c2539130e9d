/* common/stats/stats.c — the metrics registry (see stats.h).
 *
 * Families are kept in declaration order, series in creation order, so output is stable and
 * diffable. Lookups are linear scans with a hash pre-check: they run when a snapshot is compiled
 * or a new label value first appears, never per request.
 */
#include "common/stats/stats.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double rm_histogram_bounds[RM_HISTOGRAM_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

typedef struct series {
    uint64_t hash;
    rm_stats_label_t *labels; /* owns the array and each name/value string */
    size_t nlabels;
    union {
        rm_counter_t counter;
        rm_gauge_t gauge;
        rm_histogram_t histogram;
    } m;
    struct series *next; /* creation order within the family */
} series_t;

typedef struct family {
    const char *name; /* owned copy */
    const char *help; /* borrowed (declared) or NULL */
    rm_stats_kind_t kind;
    series_t *head, *tail; /* owned */
    struct family *next;
} family_t;

struct rm_stats_registry {
    pthread_mutex_t mu;
    family_t *head, *tail; /* owned */
};

rm_stats_registry_t *rm_stats_registry_new(void)
{
    rm_stats_registry_t *reg = calloc(1, sizeof(*reg));
    if (reg == NULL)
        return NULL;
    pthread_mutex_init(&reg->mu, NULL);
    return reg;
}

static void series_free(series_t *s)
{
    for (size_t i = 0; i < s->nlabels; i++) {
        free((char *)s->labels[i].name);
        free((char *)s->labels[i].value);
    }
    free(s->labels);
    free(s);
}

void rm_stats_registry_free(rm_stats_registry_t *reg)
{
    if (reg == NULL)
        return;
    family_t *f = reg->head;
    while (f != NULL) {
        family_t *fn = f->next;
        series_t *s = f->head;
        while (s != NULL) {
            series_t *sn = s->next;
            series_free(s);
            s = sn;
        }
        free((char *)f->name);
        free(f);
        f = fn;
    }
    pthread_mutex_destroy(&reg->mu);
    free(reg);
}

static family_t *family_find(rm_stats_registry_t *reg, const char *name)
{
    for (family_t *f = reg->head; f != NULL; f = f->next)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

static family_t *family_add(rm_stats_registry_t *reg, const char *name, rm_stats_kind_t kind,
                            const char *help)
{
    family_t *f = calloc(1, sizeof(*f));
    char *n = strdup(name);
    if (f == NULL || n == NULL) {
        free(f);
        free(n);
        return NULL;
    }
    f->name = n;
    f->kind = kind;
    f->help = help;
    if (reg->tail != NULL)
        reg->tail->next = f;
    else
        reg->head = f;
    reg->tail = f;
    return f;
}

int rm_stats_declare(rm_stats_registry_t *reg, const char *name, rm_stats_kind_t kind,
                     const char *help)
{
    int rc = 0;
    pthread_mutex_lock(&reg->mu);
    family_t *f = family_find(reg, name);
    if (f == NULL) {
        if (family_add(reg, name, kind, help) == NULL)
            rc = -1;
    } else if (f->kind != kind) {
        rc = -1;
    } else {
        f->help = help;
    }
    pthread_mutex_unlock(&reg->mu);
    return rc;
}

/* FNV-1a over the label pairs; a pre-check only, equality is confirmed string by string. */
static uint64_t labels_hash(const rm_stats_label_t *labels, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        const char *parts[2] = {labels[i].name, labels[i].value ? labels[i].value : ""};
        for (int p = 0; p < 2; p++) {
            for (const unsigned char *c = (const unsigned char *)parts[p]; *c; c++)
                h = (h ^ *c) * 1099511628211ULL;
            h = (h ^ 0xff) * 1099511628211ULL;
        }
    }
    return h;
}

static int labels_equal(const series_t *s, const rm_stats_label_t *labels, size_t n)
{
    if (s->nlabels != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const char *v = labels[i].value ? labels[i].value : "";
        if (strcmp(s->labels[i].name, labels[i].name) != 0 || strcmp(s->labels[i].value, v) != 0)
            return 0;
    }
    return 1;
}

static series_t *series_new(const rm_stats_label_t *labels, size_t n, uint64_t hash)
{
    series_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->hash = hash;
    if (n > 0) {
        s->labels = calloc(n, sizeof(*s->labels));
        if (s->labels == NULL)
            goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        s->labels[i].name = strdup(labels[i].name);
        s->labels[i].value = strdup(labels[i].value ? labels[i].value : "");
        s->nlabels = i + 1;
        if (s->labels[i].name == NULL || s->labels[i].value == NULL)
            goto fail;
    }
    return s;
fail:
    series_free(s);
    return NULL;
}

static series_t *series_lookup(rm_stats_registry_t *reg, const char *name, rm_stats_kind_t kind,
                               const rm_stats_label_t *labels, size_t n)
{
    series_t *found = NULL;
    uint64_t hash = labels_hash(labels, n);
    pthread_mutex_lock(&reg->mu);
    family_t *f = family_find(reg, name);
    if (f == NULL)
        f = family_add(reg, name, kind, NULL);
    if (f == NULL || f->kind != kind)
        goto out;
    for (series_t *s = f->head; s != NULL; s = s->next) {
        if (s->hash == hash && labels_equal(s, labels, n)) {
            found = s;
            goto out;
        }
    }
    found = series_new(labels, n, hash);
    if (found == NULL)
        goto out;
    if (f->tail != NULL)
        f->tail->next = found;
    else
        f->head = found;
    f->tail = found;
out:
    pthread_mutex_unlock(&reg->mu);
    return found;
}

rm_counter_t *rm_stats_counter(rm_stats_registry_t *reg, const char *name,
                               const rm_stats_label_t *labels, size_t nlabels)
{
    series_t *s = series_lookup(reg, name, RM_STATS_COUNTER, labels, nlabels);
    return s ? &s->m.counter : NULL;
}

rm_gauge_t *rm_stats_gauge(rm_stats_registry_t *reg, const char *name,
                           const rm_stats_label_t *labels, size_t nlabels)
{
    series_t *s = series_lookup(reg, name, RM_STATS_GAUGE, labels, nlabels);
    return s ? &s->m.gauge : NULL;
}

rm_histogram_t *rm_stats_histogram(rm_stats_registry_t *reg, const char *name,
                                   const rm_stats_label_t *labels, size_t nlabels)
{
    series_t *s = series_lookup(reg, name, RM_STATS_HISTOGRAM, labels, nlabels);
    return s ? &s->m.histogram : NULL;
}

void rm_histogram_observe(rm_histogram_t *h, double seconds)
{
    if (!(seconds >= 0))
        seconds = 0; /* NaN or negative clock skew: count it in the first bucket */
    size_t i = 0;
    while (i < RM_HISTOGRAM_BUCKETS && seconds > rm_histogram_bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_micros, (uint64_t)(seconds * 1e6 + 0.5),
                              memory_order_relaxed);
}

double rm_histogram_quantile(const uint64_t *counts, double q)
{
    uint64_t total = 0;
    for (size_t i = 0; i <= RM_HISTOGRAM_BUCKETS; i++)
        total += counts[i];
    if (total == 0)
        return 0;
    double rank = q * (double)total;
    uint64_t cum = 0;
    for (size_t i = 0; i <= RM_HISTOGRAM_BUCKETS; i++) {
        if (counts[i] == 0)
            continue;
        if ((double)(cum + counts[i]) >= rank) {
            if (i == RM_HISTOGRAM_BUCKETS) /* +Inf bucket: report its lower bound */
                return rm_histogram_bounds[RM_HISTOGRAM_BUCKETS - 1];
            double lo = i == 0 ? 0 : rm_histogram_bounds[i - 1];
            double hi = rm_histogram_bounds[i];
            double frac = (rank - (double)cum) / (double)counts[i];
            return lo + (hi - lo) * (frac < 0 ? 0 : frac);
        }
        cum += counts[i];
    }
    return rm_histogram_bounds[RM_HISTOGRAM_BUCKETS - 1];
}

static void view_fill(rm_stats_series_view_t *v, const family_t *f, const series_t *s)
{
    memset(v, 0, sizeof(*v));
    v->name = f->name;
    v->kind = f->kind;
    v->labels = s->labels;
    v->nlabels = s->nlabels;
    switch (f->kind) {
    case RM_STATS_COUNTER:
        v->counter = rm_counter_get(&s->m.counter);
        break;
    case RM_STATS_GAUGE:
        v->gauge = rm_gauge_get(&s->m.gauge);
        break;
    case RM_STATS_HISTOGRAM:
        for (size_t i = 0; i <= RM_HISTOGRAM_BUCKETS; i++)
            v->buckets[i] = atomic_load_explicit(&s->m.histogram.buckets[i], memory_order_relaxed);
        v->count = atomic_load_explicit(&s->m.histogram.count, memory_order_relaxed);
        v->sum =
            (double)atomic_load_explicit(&s->m.histogram.sum_micros, memory_order_relaxed) / 1e6;
        break;
    }
}

int rm_stats_visit(rm_stats_registry_t *reg, int (*fn)(const rm_stats_series_view_t *, void *),
                   void *arg)
{
    int rc = 0;
    rm_stats_series_view_t v;
    pthread_mutex_lock(&reg->mu);
    for (family_t *f = reg->head; f != NULL && rc == 0; f = f->next) {
        for (series_t *s = f->head; s != NULL && rc == 0; s = s->next) {
            view_fill(&v, f, s);
            rc = fn(&v, arg);
        }
    }
    pthread_mutex_unlock(&reg->mu);
    return rc;
}

/* ---- Prometheus text ---- */

typedef struct strbuf {
    char *data;
    size_t len, cap;
    int failed;
} strbuf_t;

static void sb_printf(strbuf_t *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(strbuf_t *sb, const char *fmt, ...)
{
    if (sb->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(sb->data + sb->len, sb->cap - sb->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            sb->failed = 1;
            return;
        }
        if ((size_t)n < sb->cap - sb->len) {
            sb->len += (size_t)n;
            return;
        }
        size_t cap = (sb->cap + (size_t)n + 1) * 2;
        char *d = realloc(sb->data, cap);
        if (d == NULL) {
            sb->failed = 1;
            return;
        }
        sb->data = d;
        sb->cap = cap;
    }
}

/* Label values escape backslash, double quote and newline (Prometheus text format 0.0.4). */
static void sb_label_value(strbuf_t *sb, const char *v)
{
    for (const char *c = v; *c; c++) {
        if (*c == '\\')
            sb_printf(sb, "\\\\");
        else if (*c == '"')
            sb_printf(sb, "\\\"");
        else if (*c == '\n')
            sb_printf(sb, "\\n");
        else
            sb_printf(sb, "%c", *c);
    }
}

static void sb_labels(strbuf_t *sb, const series_t *s, const char *extra_name,
                      const char *extra_value)
{
    if (s->nlabels == 0 && extra_name == NULL)
        return;
    sb_printf(sb, "{");
    for (size_t i = 0; i < s->nlabels; i++) {
        sb_printf(sb, "%s%s=\"", i ? "," : "", s->labels[i].name);
        sb_label_value(sb, s->labels[i].value);
        sb_printf(sb, "\"");
    }
    if (extra_name != NULL)
        sb_printf(sb, "%s%s=\"%s\"", s->nlabels ? "," : "", extra_name, extra_value);
    sb_printf(sb, "}");
}

static const char *const kind_names[] = {"counter", "gauge", "histogram"};

char *rm_stats_render_prometheus(rm_stats_registry_t *reg, size_t *len)
{
    strbuf_t sb = {.data = malloc(4096), .cap = 4096};
    if (sb.data == NULL)
        return NULL;
    sb.data[0] = '\0';
    pthread_mutex_lock(&reg->mu);
    for (family_t *f = reg->head; f != NULL; f = f->next) {
        if (f->head == NULL)
            continue;
        if (f->help != NULL)
            sb_printf(&sb, "# HELP %s %s\n", f->name, f->help);
        sb_printf(&sb, "# TYPE %s %s\n", f->name, kind_names[f->kind]);
        for (series_t *s = f->head; s != NULL; s = s->next) {
            rm_stats_series_view_t v;
            view_fill(&v, f, s);
            if (f->kind == RM_STATS_COUNTER) {
                sb_printf(&sb, "%s", f->name);
                sb_labels(&sb, s, NULL, NULL);
                sb_printf(&sb, " %llu\n", (unsigned long long)v.counter);
            } else if (f->kind == RM_STATS_GAUGE) {
                sb_printf(&sb, "%s", f->name);
                sb_labels(&sb, s, NULL, NULL);
                sb_printf(&sb, " %lld\n", (long long)v.gauge);
            } else {
                uint64_t cum = 0;
                for (size_t i = 0; i <= RM_HISTOGRAM_BUCKETS; i++) {
                    char le[32];
                    cum += v.buckets[i];
                    if (i < RM_HISTOGRAM_BUCKETS)
                        snprintf(le, sizeof(le), "%g", rm_histogram_bounds[i]);
                    else
                        snprintf(le, sizeof(le), "+Inf");
                    sb_printf(&sb, "%s_bucket", f->name);
                    sb_labels(&sb, s, "le", le);
                    sb_printf(&sb, " %llu\n", (unsigned long long)cum);
                }
                sb_printf(&sb, "%s_sum", f->name);
                sb_labels(&sb, s, NULL, NULL);
                sb_printf(&sb, " %.6f\n", v.sum);
                sb_printf(&sb, "%s_count", f->name);
                sb_labels(&sb, s, NULL, NULL);
                sb_printf(&sb, " %llu\n", (unsigned long long)v.count);
            }
        }
    }
    pthread_mutex_unlock(&reg->mu);
    if (sb.failed) {
        free(sb.data);
        return NULL;
    }
    if (len != NULL)
        *len = sb.len;
    return sb.data;
}

/* ---- JSON: {"metrics":[{"name":..,"type":..,"labels":{..},"value":..}, ...]} ---- */

static json_t *series_json(const rm_stats_series_view_t *v)
{
    json_t *o = json_object();
    json_t *labels = json_object();
    for (size_t i = 0; i < v->nlabels; i++)
        json_object_set_new(labels, v->labels[i].name, json_string(v->labels[i].value));
    json_object_set_new(o, "name", json_string(v->name));
    json_object_set_new(o, "type", json_string(kind_names[v->kind]));
    json_object_set_new(o, "labels", labels);
    if (v->kind == RM_STATS_COUNTER) {
        json_object_set_new(o, "value", json_integer((json_int_t)v->counter));
    } else if (v->kind == RM_STATS_GAUGE) {
        json_object_set_new(o, "value", json_integer((json_int_t)v->gauge));
    } else {
        json_t *buckets = json_array();
        for (size_t i = 0; i <= RM_HISTOGRAM_BUCKETS; i++)
            json_array_append_new(buckets, json_integer((json_int_t)v->buckets[i]));
        json_object_set_new(o, "buckets", buckets);
        json_object_set_new(o, "count", json_integer((json_int_t)v->count));
        json_object_set_new(o, "sum", json_real(v->sum));
        json_object_set_new(o, "p50", json_real(rm_histogram_quantile(v->buckets, 0.5)));
        json_object_set_new(o, "p99", json_real(rm_histogram_quantile(v->buckets, 0.99)));
    }
    return o;
}

static int append_json(const rm_stats_series_view_t *v, void *arg)
{
    return json_array_append_new((json_t *)arg, series_json(v));
}

char *rm_stats_render_json(rm_stats_registry_t *reg, size_t *len)
{
    json_t *root = json_object();
    json_t *metrics = json_array();
    json_t *bounds = json_array();
    if (root == NULL || metrics == NULL || bounds == NULL)
        goto fail;
    for (size_t i = 0; i < RM_HISTOGRAM_BUCKETS; i++)
        json_array_append_new(bounds, json_real(rm_histogram_bounds[i]));
    json_object_set_new(root, "histogram_bounds", bounds);
    bounds = NULL;
    if (rm_stats_visit(reg, append_json, metrics) != 0)
        goto fail;
    json_object_set_new(root, "metrics", metrics);
    metrics = NULL;
    char *out = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (out != NULL && len != NULL)
        *len = strlen(out);
    return out;
fail:
    json_decref(bounds);
    json_decref(metrics);
    json_decref(root);
    return NULL;
}
