/* controlplane/statsagg/statsagg_test.c — unit tests of stats aggregation: rates from the
 * difference between reports, success rates per attempt and after retries, counter resets,
 * the implicit start digest (rates from the first report, reconnects, restarts), the basis of an
 * idle row, merged histograms, shares, filters and the bounded history.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/statsagg/statsagg.h"

/* ---- building reports ---- */

typedef struct rep {
    Remora__V1__StatsReport msg;
    Remora__V1__Counter *c[32];
    Remora__V1__Counter cs[32];
    Remora__V1__Counter__LabelsEntry le[32][5];
    Remora__V1__Counter__LabelsEntry *lp[32][5];
    Remora__V1__Histogram *h[4];
    Remora__V1__Histogram hs[4];
    Remora__V1__Histogram__LabelsEntry hle[4][3];
    Remora__V1__Histogram__LabelsEntry *hlp[4][3];
    double bounds[RM_HISTOGRAM_BUCKETS];
    uint64_t counts[4][RM_HISTOGRAM_BUCKETS + 1];
} rep_t;

static void rep_init(rep_t *r)
{
    memset(r, 0, sizeof(*r));
    remora__v1__stats_report__init(&r->msg);
    r->msg.counters = r->c;
    r->msg.histograms = r->h;
    memcpy(r->bounds, rm_histogram_bounds, sizeof(r->bounds));
}

/* labels: "k=v" strings, NULL-terminated */
static void rep_counter(rep_t *r, const char *name, uint64_t v, const char *const *labels)
{
    size_t i = r->msg.n_counters++;
    Remora__V1__Counter *c = &r->cs[i];
    remora__v1__counter__init(c);
    c->name = (char *)name;
    c->value = v;
    c->labels = r->lp[i];
    for (size_t j = 0; labels[j] != NULL; j++) {
        Remora__V1__Counter__LabelsEntry *e = &r->le[i][j];
        remora__v1__counter__labels_entry__init(e);
        char *eq = strchr(labels[j], '=');
        e->key = strndup(labels[j], (size_t)(eq - labels[j]));
        e->value = strdup(eq + 1);
        r->lp[i][j] = e;
        c->n_labels++;
    }
    r->c[i] = c;
}

/* A histogram with `n` observations all in bucket `bucket` (cumulative counts). */
static void rep_hist(rep_t *r, const char *svc, const char *ver, const char *route, size_t bucket,
                     uint64_t n)
{
    size_t i = r->msg.n_histograms++;
    Remora__V1__Histogram *h = &r->hs[i];
    remora__v1__histogram__init(h);
    h->name = "remora_request_duration_seconds";
    const char *vals[3][2] = {{"service", svc}, {"version", ver}, {"route", route}};
    h->labels = r->hlp[i];
    for (size_t j = 0; j < 3; j++) {
        remora__v1__histogram__labels_entry__init(&r->hle[i][j]);
        r->hle[i][j].key = (char *)vals[j][0];
        r->hle[i][j].value = (char *)vals[j][1];
        r->hlp[i][j] = &r->hle[i][j];
    }
    h->n_labels = 3;
    h->n_bounds = RM_HISTOGRAM_BUCKETS;
    h->bounds = r->bounds;
    for (size_t b = 0; b <= RM_HISTOGRAM_BUCKETS; b++)
        r->counts[i][b] = b >= bucket ? n : 0;
    h->n_counts = RM_HISTOGRAM_BUCKETS + 1;
    h->counts = r->counts[i];
    h->count = n;
    r->h[i] = h;
}

static void rep_free(rep_t *r)
{
    for (size_t i = 0; i < r->msg.n_counters; i++)
        for (size_t j = 0; j < r->cs[i].n_labels; j++) {
            free(r->le[i][j].key);
            free(r->le[i][j].value);
        }
}

/* requests for v1 (ok, 503) and v2 (ok), retries, skipped, on route "rollout" of "reviews". */
static void canary_report(rep_t *r, uint64_t v1_ok, uint64_t v1_5xx, uint64_t v2_ok,
                          uint64_t retries)
{
    rep_init(r);
    rep_counter(
        r, "remora_requests_total", v1_ok,
        (const char *const[]){"service=reviews", "version=v1", "route=rollout", "code=200", NULL});
    rep_counter(
        r, "remora_requests_total", v1_5xx,
        (const char *const[]){"service=reviews", "version=v1", "route=rollout", "code=503", NULL});
    rep_counter(
        r, "remora_requests_total", v2_ok,
        (const char *const[]){"service=reviews", "version=v2", "route=rollout", "code=200", NULL});
    rep_counter(r, "remora_retries_total", retries,
                (const char *const[]){"service=reviews", "version=v1", "route=rollout",
                                      "reason=gateway-error", NULL});
    rep_counter(r, "remora_retries_skipped_total", 2,
                (const char *const[]){"service=reviews", "version=v1", "route=rollout",
                                      "reason=budget", NULL});
    rep_counter(r, "remora_unrelated_total", 99, (const char *const[]){"service=reviews", NULL});
}

static Remora__V1__StatsResponse *new_resp(void)
{
    Remora__V1__StatsResponse *r = malloc(sizeof(*r));
    remora__v1__stats_response__init(r);
    return r;
}

static const Remora__V1__VersionStats *row(const Remora__V1__StatsResponse *resp,
                                           const char *version)
{
    for (size_t i = 0; i < resp->n_rows; i++)
        if (strcmp(resp->rows[i]->version, version) == 0)
            return resp->rows[i];
    return NULL;
}

static void test_rates_and_success(void **state)
{
    (void)state;
    rm_statsagg_history_t *h = NULL;
    rep_t r;
    canary_report(&r, 100, 0, 10, 0);
    assert_int_equal(rm_statsagg_record(&h, &r.msg, "default", 1000), 2);
    rep_free(&r);
    /* 10 s later: v1 got 180 more OK and 20 failures (after 30 retries), v2 got 20 more. */
    canary_report(&r, 280, 20, 30, 30);
    rm_statsagg_record(&h, &r.msg, "default", 11000);
    rep_free(&r);

    Remora__V1__StatsResponse *resp = new_resp();
    rm_statsagg_query_t q = {.now_ms = 11000, .window_ms = 10000};
    rm_statsagg_compute(&h, 1, &q, resp);
    assert_int_equal(resp->n_rows, 2);
    assert_int_equal(resp->window_ms, 10000);
    const Remora__V1__VersionStats *v1 = row(resp, "v1");
    const Remora__V1__VersionStats *v2 = row(resp, "v2");
    assert_non_null(v1);
    assert_non_null(v2);
    assert_string_equal(v1->service, "reviews");
    assert_string_equal(v1->namespace_, "default");
    assert_string_equal(v1->route, "rollout");
    assert_int_equal(v1->requests_total, 300);
    assert_true(fabs(v1->requests_per_second - 20.0) < 1e-9);
    assert_true(fabs(v2->requests_per_second - 2.0) < 1e-9);
    /* window: 200 requests, 20 failed: effective 0.9; attempts 200 + 30 retries: 180/230. */
    assert_true(fabs(v1->effective_success_rate - 0.9) < 1e-9);
    assert_true(fabs(v1->actual_success_rate - 180.0 / 230.0) < 1e-9);
    assert_int_equal(v1->n_retries, 1);
    assert_string_equal(v1->retries[0]->reason, "gateway-error");
    assert_int_equal(v1->retries[0]->total, 30);
    assert_int_equal(v1->n_retries_skipped, 1);
    assert_string_equal(v1->retries_skipped[0]->reason, "budget");
    /* observed share from the window: 200 of 220. */
    assert_true(fabs(v1->observed_share - 200.0 / 220.0) < 1e-9);
    assert_true(fabs(v2->observed_share - 20.0 / 220.0) < 1e-9);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    rm_statsagg_history_free(h);
}

static void test_single_report_uses_totals(void **state)
{
    (void)state;
    rm_statsagg_history_t *h = NULL;
    rep_t r;
    canary_report(&r, 90, 10, 0, 5);
    rm_statsagg_record(&h, &r.msg, NULL, 500);
    rep_free(&r);
    Remora__V1__StatsResponse *resp = new_resp();
    rm_statsagg_query_t q = {.now_ms = 600};
    rm_statsagg_compute(&h, 1, &q, resp);
    const Remora__V1__VersionStats *v1 = row(resp, "v1");
    assert_non_null(v1);
    assert_true(v1->requests_per_second == 0);
    assert_true(fabs(v1->effective_success_rate - 0.9) < 1e-9);
    assert_true(fabs(v1->actual_success_rate - 90.0 / 105.0) < 1e-9);
    assert_true(fabs(v1->observed_share - 1.0) < 1e-9);
    assert_int_equal(resp->window_ms, RM_STATSAGG_DEFAULT_WINDOW_MS);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    rm_statsagg_history_free(h);
}

static void test_counter_reset_counts_from_zero(void **state)
{
    (void)state;
    rm_statsagg_history_t *h = NULL;
    rep_t r;
    canary_report(&r, 1000, 0, 0, 0);
    rm_statsagg_record(&h, &r.msg, NULL, 0);
    rep_free(&r);
    canary_report(&r, 50, 0, 0, 0); /* the sidecar restarted its counters */
    rm_statsagg_record(&h, &r.msg, NULL, 5000);
    rep_free(&r);
    Remora__V1__StatsResponse *resp = new_resp();
    rm_statsagg_query_t q = {.now_ms = 5000, .window_ms = 5000};
    rm_statsagg_compute(&h, 1, &q, resp);
    const Remora__V1__VersionStats *v1 = row(resp, "v1");
    assert_true(fabs(v1->requests_per_second - 10.0) < 1e-9);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    rm_statsagg_history_free(h);
}

/* The demo's bug: a canary moved from 90/10 to 55/45 and the new traffic came from a sidecar
 * younger than two reports. Its start digest gives it a window from its first report, so the
 * rate is right at once and the share is the window's, not all-time totals mixing in the old
 * sidecar's 90/10 (which would read 955/1100 = 87% for v1). */
static void test_start_digest_rates_from_first_report(void **state)
{
    (void)state;
    rm_statsagg_history_t *hs[2] = {NULL, NULL};
    rep_t r;
    /* The old sidecar: 900/100 long ago, quiet since (same counters every 5 s). */
    canary_report(&r, 900, 0, 100, 0);
    for (uint64_t t = 1000; t <= 101000; t += 5000) {
        r.msg.uptime_ms = t;
        rm_statsagg_record(&hs[0], &r.msg, NULL, t);
    }
    rep_free(&r);
    /* The young one: first report 1.2 s after its start (receipt 101200). */
    canary_report(&r, 50, 5, 45, 10);
    r.msg.uptime_ms = 1200;
    rm_statsagg_record(&hs[1], &r.msg, NULL, 101200);
    rep_free(&r);
    assert_true(hs[1]->has_start);
    assert_int_equal(hs[1]->start_ms, 100000);
    assert_int_equal(hs[1]->n, 2); /* the start digest and the report */

    Remora__V1__StatsResponse *resp = new_resp();
    rm_statsagg_query_t q = {.now_ms = 101500};
    rm_statsagg_compute(hs, 2, &q, resp);
    const Remora__V1__VersionStats *v1 = row(resp, "v1");
    const Remora__V1__VersionStats *v2 = row(resp, "v2");
    assert_non_null(v1);
    assert_non_null(v2);
    assert_int_equal(v1->requests_total, 955);
    assert_true(fabs(v1->requests_per_second - 55.0 / 1.2) < 1e-9);
    assert_true(fabs(v2->requests_per_second - 45.0 / 1.2) < 1e-9);
    assert_true(fabs(v1->observed_share - 0.55) < 1e-9);
    assert_true(fabs(v2->observed_share - 0.45) < 1e-9);
    assert_true(fabs(v1->effective_success_rate - 50.0 / 55.0) < 1e-9);
    assert_true(fabs(v1->actual_success_rate - 50.0 / 65.0) < 1e-9);
    protobuf_c_message_free_unpacked(&resp->base, NULL);

    /* Spaced reports keep the start digest as the base until the window is full. */
    canary_report(&r, 100, 5, 95, 10);
    r.msg.uptime_ms = 6200;
    rm_statsagg_record(&hs[1], &r.msg, NULL, 106200);
    rep_free(&r);
    resp = new_resp();
    q.now_ms = 106300;
    rm_statsagg_compute(hs, 2, &q, resp);
    assert_true(fabs(row(resp, "v1")->requests_per_second - 105.0 / 6.2) < 1e-9);
    assert_true(fabs(row(resp, "v2")->observed_share - 95.0 / 200.0) < 1e-9);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    rm_statsagg_history_free(hs[0]);
    rm_statsagg_history_free(hs[1]);
}

/* Two client sidecars at the same rate, one to v1, one to v2; the second is young, so its window
 * spans 5 s where the first's spans 10 s. The share is of the rates (50/50), not of the window's
 * counts (100 vs 50 would read 67/33 for the older sidecar's version). */
static void test_share_is_of_rates_when_spans_differ(void **state)
{
    (void)state;
    rm_statsagg_history_t *hs[2] = {NULL, NULL};
    rep_t r;
    for (uint64_t t = 0; t <= 20000; t += 5000) { /* 10 req/s to v1 since t=0 */
        canary_report(&r, t / 100, 0, 0, 0);
        r.msg.uptime_ms = t + 1;
        rm_statsagg_record(&hs[0], &r.msg, NULL, t);
        rep_free(&r);
    }
    canary_report(&r, 0, 0, 50, 0); /* 10 req/s to v2, started 5 s before its first report */
    r.msg.uptime_ms = 5000;
    rm_statsagg_record(&hs[1], &r.msg, NULL, 20000);
    rep_free(&r);

    Remora__V1__StatsResponse *resp = new_resp();
    rm_statsagg_query_t q = {.now_ms = 20000, .window_ms = 10000};
    rm_statsagg_compute(hs, 2, &q, resp);
    const Remora__V1__VersionStats *v1 = row(resp, "v1");
    const Remora__V1__VersionStats *v2 = row(resp, "v2");
    assert_true(fabs(v1->requests_per_second - 10.0) < 1e-9);
    assert_true(fabs(v2->requests_per_second - 10.0) < 1e-9);
    assert_true(fabs(v1->observed_share - 0.5) < 1e-9);
    assert_true(fabs(v2->observed_share - 0.5) < 1e-9);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    rm_statsagg_history_free(hs[0]);
    rm_statsagg_history_free(hs[1]);
}

/* A sidecar that lived an hour reconnects to a restarted control plane: its counters are far
 * from zero, but its start lies an hour back, so the first rate is its lifetime average (10/s),
 * not its hour of counts over one interval; the next report gives the current rate. */
static void test_reconnect_without_spike(void **state)
{
    (void)state;
    const uint64_t t0 = 4000000;
    rm_statsagg_history_t *h = NULL;
    rep_t r;
    canary_report(&r, 36000, 0, 0, 0);
    r.msg.uptime_ms = 3600000;
    rm_statsagg_record(&h, &r.msg, NULL, t0);
    rep_free(&r);
    Remora__V1__StatsResponse *resp = new_resp();
    rm_statsagg_query_t q = {.now_ms = t0 + 100};
    rm_statsagg_compute(&h, 1, &q, resp);
    assert_true(fabs(row(resp, "v1")->requests_per_second - 10.0) < 1e-9);
    protobuf_c_message_free_unpacked(&resp->base, NULL);

    /* One second later, 20 more: the window skips the hour-old start for the first report. */
    canary_report(&r, 36020, 0, 0, 0);
    r.msg.uptime_ms = 3601000;
    rm_statsagg_record(&h, &r.msg, NULL, t0 + 1000);
    rep_free(&r);
    resp = new_resp();
    q.now_ms = t0 + 1500;
    rm_statsagg_compute(&h, 1, &q, resp);
    assert_true(fabs(row(resp, "v1")->requests_per_second - 20.0) < 1e-9);
    assert_int_equal(row(resp, "v1")->requests_total, 36020);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    assert_int_equal(h->restarts, 0);
    rm_statsagg_history_free(h);

    /* A start before this clock's origin (uptime > now): no start digest, no window yet. */
    h = NULL;
    canary_report(&r, 36000, 0, 0, 0);
    r.msg.uptime_ms = 3600000;
    rm_statsagg_record(&h, &r.msg, NULL, 5000);
    rep_free(&r);
    assert_false(h->has_start);
    resp = new_resp();
    q.now_ms = 5100;
    rm_statsagg_compute(&h, 1, &q, resp);
    assert_true(row(resp, "v1")->requests_per_second == 0);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    rm_statsagg_history_free(h);
}

/* The uptime went down: new counters from zero at a new start. The history starts over, so the
 * rate is the new process's (30 in 1 s), not a guess from the old digests. */
static void test_uptime_down_restarts_history(void **state)
{
    (void)state;
    rm_statsagg_history_t *h = NULL;
    rep_t r;
    canary_report(&r, 1000, 0, 0, 0);
    r.msg.uptime_ms = 10000;
    rm_statsagg_record(&h, &r.msg, NULL, 10000);
    rep_free(&r);
    canary_report(&r, 1100, 0, 0, 0);
    r.msg.uptime_ms = 15000;
    rm_statsagg_record(&h, &r.msg, NULL, 15000);
    rep_free(&r);
    canary_report(&r, 30, 0, 0, 0);
    r.msg.uptime_ms = 1000;
    rm_statsagg_record(&h, &r.msg, NULL, 17000);
    rep_free(&r);
    assert_int_equal(h->restarts, 1);
    assert_int_equal(h->start_ms, 16000);
    assert_int_equal(h->n, 2);
    Remora__V1__StatsResponse *resp = new_resp();
    rm_statsagg_query_t q = {.now_ms = 17000};
    rm_statsagg_compute(&h, 1, &q, resp);
    const Remora__V1__VersionStats *v1 = row(resp, "v1");
    assert_true(fabs(v1->requests_per_second - 30.0) < 1e-9);
    assert_int_equal(v1->requests_total, 30);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    rm_statsagg_history_free(h);
}

/* An idle window: rps 0 exactly, and then (only then) success rates and percentiles are over
 * all time; the share is the window's (0) while another version of the group saw traffic. */
static void test_idle_row_basis(void **state)
{
    (void)state;
    rm_statsagg_history_t *h = NULL;
    rep_t r;
    canary_report(&r, 90, 10, 0, 0);
    rep_hist(&r, "reviews", "v1", "rollout", 3, 100);
    r.msg.uptime_ms = 1000;
    rm_statsagg_record(&h, &r.msg, NULL, 1000);
    rep_free(&r);
    /* v1 idle since; v2 got 40. */
    canary_report(&r, 90, 10, 40, 0);
    rep_hist(&r, "reviews", "v1", "rollout", 3, 100);
    r.msg.uptime_ms = 30000;
    rm_statsagg_record(&h, &r.msg, NULL, 30000);
    rep_free(&r);
    canary_report(&r, 90, 10, 80, 0);
    rep_hist(&r, "reviews", "v1", "rollout", 3, 100);
    r.msg.uptime_ms = 34000;
    rm_statsagg_record(&h, &r.msg, NULL, 34000);
    rep_free(&r);
    Remora__V1__StatsResponse *resp = new_resp();
    rm_statsagg_query_t q = {.now_ms = 34000, .window_ms = 4000};
    rm_statsagg_compute(&h, 1, &q, resp);
    const Remora__V1__VersionStats *v1 = row(resp, "v1");
    const Remora__V1__VersionStats *v2 = row(resp, "v2");
    assert_true(v1->requests_per_second == 0);
    assert_true(fabs(v1->effective_success_rate - 0.9) < 1e-9);
    assert_true(v1->p50_seconds > 0);
    assert_true(v1->observed_share == 0);
    assert_true(fabs(v2->requests_per_second - 10.0) < 1e-9);
    assert_true(fabs(v2->observed_share - 1.0) < 1e-9);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    rm_statsagg_history_free(h);
}

static void test_sum_across_sidecars_and_filters(void **state)
{
    (void)state;
    rm_statsagg_history_t *h[3] = {NULL, NULL, NULL};
    rep_t r;
    canary_report(&r, 10, 0, 10, 0);
    rm_statsagg_record(&h[0], &r.msg, "default", 0);
    rm_statsagg_record(&h[1], &r.msg, "default", 0);
    rep_free(&r);
    rep_init(&r);
    rep_counter(&r, "remora_requests_total", 7,
                (const char *const[]){"service=ratings", "version=v1", "route=", "code=200", NULL});
    rep_counter(&r, "remora_overflow_total", 3, (const char *const[]){"limit=requests", NULL});
    rep_counter(&r, "remora_drain_redirects_total", 2,
                (const char *const[]){"service=ratings", "version=v1", "route=", NULL});
    rm_statsagg_record(&h[2], &r.msg, "prod", 0);
    rep_free(&r);

    Remora__V1__StatsResponse *resp = new_resp();
    rm_statsagg_query_t q = {.now_ms = 1};
    rm_statsagg_compute(h, 3, &q, resp);
    /* default/reviews v1, v2; prod/"" (overflow without service); prod/ratings v1 */
    assert_int_equal(resp->n_rows, 4);
    assert_string_equal(resp->rows[0]->namespace_, "default");
    assert_int_equal(row(resp, "v2")->requests_total, 20);
    assert_string_equal(resp->rows[2]->namespace_, "prod");
    assert_string_equal(resp->rows[2]->service, "");
    assert_int_equal(resp->rows[2]->overflows, 3);
    assert_int_equal(resp->rows[3]->drain_redirects, 2); /* prod/ratings v1 */
    protobuf_c_message_free_unpacked(&resp->base, NULL);

    Remora__V1__StatsResponse *r2 = new_resp();
    rm_statsagg_query_t q2 = {.now_ms = 1, .service = "ratings", .ns = "prod"};
    rm_statsagg_compute(h, 3, &q2, r2);
    assert_int_equal(r2->n_rows, 1);
    assert_int_equal(r2->rows[0]->requests_total, 7);
    protobuf_c_message_free_unpacked(&r2->base, NULL);

    Remora__V1__StatsResponse *r3 = new_resp();
    rm_statsagg_query_t q3 = {.now_ms = 1, .route = "nope"};
    rm_statsagg_compute(h, 3, &q3, r3);
    assert_int_equal(r3->n_rows, 0);
    protobuf_c_message_free_unpacked(&r3->base, NULL);
    for (int i = 0; i < 3; i++)
        rm_statsagg_history_free(h[i]);
}

static void test_histogram_percentiles(void **state)
{
    (void)state;
    rm_statsagg_history_t *h = NULL;
    rep_t r;
    rep_init(&r);
    rep_hist(&r, "reviews", "v1", "rollout", 3, 100);
    rm_statsagg_record(&h, &r.msg, NULL, 0);
    /* A histogram with foreign bounds is ignored, never mixed in. */
    r.bounds[0] = 42;
    rm_statsagg_record(&h, &r.msg, NULL, 10);
    Remora__V1__StatsResponse *resp = new_resp();
    rm_statsagg_query_t q = {.now_ms = 10};
    rm_statsagg_compute(&h, 1, &q, resp);
    /* latest digest has no rows: the foreign histogram was dropped */
    assert_int_equal(resp->n_rows, 0);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    r.bounds[0] = rm_histogram_bounds[0];
    rm_statsagg_record(&h, &r.msg, NULL, 20);
    Remora__V1__StatsResponse *r2 = new_resp();
    rm_statsagg_compute(&h, 1, &q, r2);
    assert_int_equal(r2->n_rows, 1);
    double lo = rm_histogram_bounds[2], hi = rm_histogram_bounds[3];
    assert_true(r2->rows[0]->p50_seconds > lo && r2->rows[0]->p50_seconds <= hi);
    assert_true(r2->rows[0]->p99_seconds > lo && r2->rows[0]->p99_seconds <= hi);
    protobuf_c_message_free_unpacked(&r2->base, NULL);
    rm_statsagg_history_free(h);
}

static void test_histogram_per_bucket_counts(void **state)
{
    (void)state;
    rm_statsagg_history_t *h = NULL;
    rep_t r;
    rep_init(&r);
    rep_hist(&r, "reviews", "v1", "rollout", 3, 100);
    /* The same 100 observations as per-bucket counts: only bucket 3 holds them. */
    for (size_t b = 0; b <= RM_HISTOGRAM_BUCKETS; b++)
        r.counts[0][b] = b == 3 ? 100 : 0;
    rm_statsagg_record(&h, &r.msg, NULL, 0);
    Remora__V1__StatsResponse *resp = new_resp();
    rm_statsagg_query_t q = {.now_ms = 0};
    rm_statsagg_compute(&h, 1, &q, resp);
    assert_int_equal(resp->n_rows, 1);
    double lo = rm_histogram_bounds[2], hi = rm_histogram_bounds[3];
    assert_true(resp->rows[0]->p50_seconds > lo && resp->rows[0]->p50_seconds <= hi);
    assert_int_equal(h->ring[h->head].rows[0].hcount, 100);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    rm_statsagg_history_free(h);
}

static void test_history_is_bounded_and_spaced(void **state)
{
    (void)state;
    rm_statsagg_history_t *h = NULL;
    rep_t r;
    canary_report(&r, 1, 0, 0, 0);
    /* One report every 500 ms for 60 s. */
    for (uint64_t t = 0; t <= 60000; t += 500)
        rm_statsagg_record(&h, &r.msg, NULL, t);
    rep_free(&r);
    assert_int_equal(h->n, RM_STATSAGG_RING);
    for (size_t i = 0; i + 2 < h->n; i++) {
        uint64_t a = h->ring[(h->head + i) % RM_STATSAGG_RING].t_ms;
        uint64_t b = h->ring[(h->head + i + 1) % RM_STATSAGG_RING].t_ms;
        assert_true(b - a >= RM_STATSAGG_SPACING_MS);
    }
    assert_int_equal(h->ring[(h->head + h->n - 1) % RM_STATSAGG_RING].t_ms, 60000);
    rm_statsagg_history_free(h);
}

static void test_configured_share(void **state)
{
    (void)state;
    Remora__V1__Destination d1 = REMORA__V1__DESTINATION__INIT, d2 = REMORA__V1__DESTINATION__INIT,
                            d3 = REMORA__V1__DESTINATION__INIT;
    d1.version = "v1";
    d1.has_weight = 1;
    d1.weight = 95;
    d2.version = "v2";
    d2.has_weight = 1;
    d2.weight = 5;
    d3.version = "v2";
    d3.has_weight = 1;
    d3.weight = 100;
    Remora__V1__Destination *all[] = {&d1, &d2}, *beta[] = {&d3};
    Remora__V1__Match m = REMORA__V1__MATCH__INIT;
    Remora__V1__Rule r1 = REMORA__V1__RULE__INIT, r2 = REMORA__V1__RULE__INIT;
    r1.match = &m;
    r1.n_destinations = 1;
    r1.destinations = beta;
    r2.n_destinations = 2;
    r2.destinations = all;
    Remora__V1__Rule *rules[] = {&r1, &r2};
    Remora__V1__Route route = REMORA__V1__ROUTE__INIT;
    route.name = "rollout";
    route.service = "reviews";
    route.n_rules = 2;
    route.rules = rules;
    Remora__V1__Route *routes[] = {&route};
    Remora__V1__ConfigSet cfg = REMORA__V1__CONFIG_SET__INIT;
    cfg.n_routes = 1;
    cfg.routes = routes;
    assert_true(fabs(rm_statsagg_configured_share(&cfg, "default", "reviews", "rollout", "v2") -
                     0.05) < 1e-9);
    assert_true(fabs(rm_statsagg_configured_share(&cfg, "default", "reviews", "rollout", "v1") -
                     0.95) < 1e-9);
    assert_true(rm_statsagg_configured_share(&cfg, "default", "reviews", "rollout", "v9") == 0);
    assert_true(rm_statsagg_configured_share(&cfg, "prod", "reviews", "rollout", "v1") == 0);
    assert_true(rm_statsagg_configured_share(NULL, "default", "reviews", "rollout", "v1") == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rates_and_success),
        cmocka_unit_test(test_single_report_uses_totals),
        cmocka_unit_test(test_counter_reset_counts_from_zero),
        cmocka_unit_test(test_start_digest_rates_from_first_report),
        cmocka_unit_test(test_share_is_of_rates_when_spans_differ),
        cmocka_unit_test(test_reconnect_without_spike),
        cmocka_unit_test(test_uptime_down_restarts_history),
        cmocka_unit_test(test_idle_row_basis),
        cmocka_unit_test(test_sum_across_sidecars_and_filters),
        cmocka_unit_test(test_histogram_percentiles),
        cmocka_unit_test(test_histogram_per_bucket_counts),
        cmocka_unit_test(test_history_is_bounded_and_spaced),
        cmocka_unit_test(test_configured_share),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
