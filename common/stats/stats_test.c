/* common/stats/stats_test.c — registry lookups, Prometheus and JSON rendering, quantiles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/stats/stats.h"

static void test_same_labels_same_series(void **state)
{
    (void)state;
    rm_stats_registry_t *reg = rm_stats_registry_new();
    rm_stats_label_t a[] = {{"service", "reviews"}, {"version", "v1"}};
    rm_stats_label_t b[] = {{"service", "reviews"}, {"version", "v2"}};
    rm_counter_t *c1 = rm_stats_counter(reg, "remora_requests_total", a, 2);
    rm_counter_t *c2 = rm_stats_counter(reg, "remora_requests_total", a, 2);
    rm_counter_t *c3 = rm_stats_counter(reg, "remora_requests_total", b, 2);
    assert_non_null(c1);
    assert_ptr_equal(c1, c2);
    assert_ptr_not_equal(c1, c3);
    /* A family keeps its kind: asking for a gauge under a counter's name fails. */
    assert_null(rm_stats_gauge(reg, "remora_requests_total", a, 2));
    assert_int_equal(rm_stats_declare(reg, "remora_requests_total", RM_STATS_GAUGE, "x"), -1);
    rm_stats_registry_free(reg);
}

static void test_prometheus_text(void **state)
{
    (void)state;
    rm_stats_registry_t *reg = rm_stats_registry_new();
    assert_int_equal(
        rm_stats_declare(reg, "remora_retries_total", RM_STATS_COUNTER, "Retries by reason."), 0);
    rm_stats_label_t l[] = {{"service", "re\"v\\x\n"}, {"reason", "reset"}};
    rm_counter_add(rm_stats_counter(reg, "remora_retries_total", l, 2), 7);
    rm_gauge_set(rm_stats_gauge(reg, "remora_config_version", NULL, 0), 42);
    rm_histogram_t *h = rm_stats_histogram(reg, "remora_request_duration_seconds", NULL, 0);
    rm_histogram_observe(h, 0.0007);
    rm_histogram_observe(h, 0.2);
    rm_histogram_observe(h, 99);
    char *out = rm_stats_render_prometheus(reg, NULL);
    assert_non_null(out);
    assert_non_null(
        strstr(out, "# HELP remora_retries_total Retries by reason.\n"
                    "# TYPE remora_retries_total counter\n"
                    "remora_retries_total{service=\"re\\\"v\\\\x\\n\",reason=\"reset\"} 7\n"));
    assert_non_null(strstr(out, "# TYPE remora_config_version gauge\nremora_config_version 42\n"));
    assert_non_null(strstr(out, "remora_request_duration_seconds_bucket{le=\"0.0005\"} 0\n"));
    assert_non_null(strstr(out, "remora_request_duration_seconds_bucket{le=\"0.001\"} 1\n"));
    assert_non_null(strstr(out, "remora_request_duration_seconds_bucket{le=\"0.25\"} 2\n"));
    assert_non_null(strstr(out, "remora_request_duration_seconds_bucket{le=\"10\"} 2\n"));
    assert_non_null(strstr(out, "remora_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(out, "remora_request_duration_seconds_count 3\n"));
    assert_non_null(strstr(out, "remora_request_duration_seconds_sum 99.200700\n"));
    free(out);
    rm_stats_registry_free(reg);
}

static void test_json(void **state)
{
    (void)state;
    rm_stats_registry_t *reg = rm_stats_registry_new();
    rm_stats_label_t l[] = {{"code", "503"}};
    rm_counter_add(rm_stats_counter(reg, "remora_requests_total", l, 1), 3);
    char *out = rm_stats_render_json(reg, NULL);
    assert_non_null(out);
    assert_non_null(strstr(out, "{\"name\":\"remora_requests_total\",\"type\":\"counter\","
                                "\"labels\":{\"code\":\"503\"},\"value\":3}"));
    free(out);
    rm_stats_registry_free(reg);
}

static void test_quantile(void **state)
{
    (void)state;
    uint64_t counts[RM_HISTOGRAM_BUCKETS + 1] = {0};
    assert_true(rm_histogram_quantile(counts, 0.5) == 0);
    counts[4] = 100; /* all in (0.005, 0.01] */
    double p50 = rm_histogram_quantile(counts, 0.5);
    assert_true(p50 > 0.0074 && p50 < 0.0076);
    counts[RM_HISTOGRAM_BUCKETS] = 100; /* half beyond 10s */
    assert_true(rm_histogram_quantile(counts, 0.99) == 10);
}

static void *hammer(void *arg)
{
    for (int i = 0; i < 100000; i++)
        rm_counter_inc((rm_counter_t *)arg);
    return NULL;
}

static void test_concurrent_increments(void **state)
{
    (void)state;
    rm_stats_registry_t *reg = rm_stats_registry_new();
    rm_counter_t *c = rm_stats_counter(reg, "x_total", NULL, 0);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, hammer, c);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(rm_counter_get(c), 400000);
    rm_stats_registry_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_labels_same_series),
        cmocka_unit_test(test_prometheus_text),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_quantile),
        cmocka_unit_test(test_concurrent_increments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
