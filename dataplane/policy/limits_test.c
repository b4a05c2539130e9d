/* dataplane/policy/limits_test.c — circuit-breaker counters: maxRequests, maxPendingRequests and
 * maxConnections, per service or per version, and every place given back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "dataplane/policy/limits.h"

/* A service with two versions of two endpoints each; v2 has its own CircuitBreaker when
 * v2_cb is set. Keys are the test's own, so the shared tables start empty. */
typedef struct fixture {
    rm_endpoint_ref_t eps[4];
    rm_version_t versions[2];
    rm_circuit_breaker_t svc_cb, v2_cb;
    rm_service_t svc;
} fixture_t;

static void fixture_init(fixture_t *f, uint64_t key, bool v2_cb)
{
    memset(f, 0, sizeof(*f));
    f->svc_cb = (rm_circuit_breaker_t){
        .max_connections = 3, .max_pending_requests = 2, .max_requests = 4, .max_retries = 3};
    f->v2_cb = (rm_circuit_breaker_t){
        .max_connections = 1, .max_pending_requests = 1, .max_requests = 1, .max_retries = 1};
    for (int i = 0; i < 4; i++)
        f->eps[i].key = key * 16 + (uint64_t)i;
    f->versions[0] = (rm_version_t){.name = "v1", .endpoints = &f->eps[0], .nendpoints = 2};
    f->versions[1] = (rm_version_t){.name = "v2",
                                    .index = 1,
                                    .endpoints = &f->eps[2],
                                    .nendpoints = 2,
                                    .cb = v2_cb ? &f->v2_cb : NULL,
                                    .limits_key = key * 7 + 1};
    f->svc.versions = f->versions;
    f->svc.nversions = 2;
    f->svc.cb = &f->svc_cb;
    f->svc.limits_key = key * 7;
}

static void test_max_requests(void **state)
{
    (void)state;
    fixture_t f;
    fixture_init(&f, 11, false);
    rm_limits_hold_t h[5] = {{0}};
    for (int i = 0; i < 4; i++)
        assert_null(rm_limits_admit(&h[i], &f.svc, i % 2));
    assert_string_equal(rm_limits_admit(&h[4], &f.svc, 0), "max_requests");
    assert_null(h[4].slot); /* refused: holds nothing */
    rm_limits_release(&h[0]);
    assert_null(rm_limits_admit(&h[4], &f.svc, 0));
    for (int i = 1; i < 5; i++)
        rm_limits_release(&h[i]);
    rm_limits_release(&h[1]); /* a second release is harmless */
    assert_null(rm_limits_admit(&h[0], &f.svc, 0));
    rm_limits_release(&h[0]);
}

/* A version's own CircuitBreaker has its own counters: v2 full does not refuse v1. */
static void test_version_breaker_has_its_own_counters(void **state)
{
    (void)state;
    fixture_t f;
    fixture_init(&f, 12, true);
    rm_limits_hold_t a = {0}, b = {0}, c = {0};
    assert_null(rm_limits_admit(&a, &f.svc, 1));
    assert_string_equal(rm_limits_admit(&b, &f.svc, 1), "max_requests");
    assert_null(rm_limits_admit(&c, &f.svc, 0));
    rm_limits_release(&a);
    rm_limits_release(&c);
}

static void test_pending_and_connections(void **state)
{
    (void)state;
    fixture_t f;
    fixture_init(&f, 13, false);
    rm_limits_hold_t h[3] = {{0}};
    for (int i = 0; i < 3; i++)
        assert_null(rm_limits_admit(&h[i], &f.svc, 0));
    assert_null(rm_limits_connect(&h[0], &f.svc, 0));
    assert_null(rm_limits_connect(&h[1], &f.svc, 0));
    assert_string_equal(rm_limits_connect(&h[2], &f.svc, 0), "max_pending_requests");
    rm_limits_connected(&h[0]); /* its connection is up: the pending place is free again */
    assert_false(h[0].pending);
    assert_null(rm_limits_connect(&h[2], &f.svc, 0));
    /* Three connections open to v1's endpoints (maxConnections 3): no fourth. */
    rm_limits_connection_opened(f.eps[0].key);
    rm_limits_connection_opened(f.eps[1].key);
    rm_limits_connection_opened(f.eps[1].key);
    rm_limits_connected(&h[1]);
    assert_string_equal(rm_limits_connect(&h[1], &f.svc, 0), "max_connections");
    /* v2's endpoints are not v1's. */
    rm_limits_hold_t other = {0};
    assert_null(rm_limits_admit(&other, &f.svc, 1));
    rm_limits_connected(&h[2]);
    assert_null(rm_limits_connect(&other, &f.svc, 1));
    rm_limits_connection_closed(f.eps[1].key);
    assert_null(rm_limits_connect(&h[1], &f.svc, 0));
    rm_limits_connection_closed(f.eps[0].key);
    rm_limits_connection_closed(f.eps[1].key);
    for (int i = 0; i < 3; i++)
        rm_limits_release(&h[i]); /* gives pending places back too */
    rm_limits_release(&other);
}

/* A connect for a request that was never admitted (passthrough) checks nothing. */
static void test_connect_without_admission(void **state)
{
    (void)state;
    fixture_t f;
    fixture_init(&f, 14, false);
    rm_limits_hold_t h = {0};
    assert_null(rm_limits_connect(&h, &f.svc, 0));
    assert_false(h.pending);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_max_requests),
        cmocka_unit_test(test_version_breaker_has_its_own_counters),
        cmocka_unit_test(test_pending_and_connections),
        cmocka_unit_test(test_connect_without_admission),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
