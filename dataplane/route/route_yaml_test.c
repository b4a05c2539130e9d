/* dataplane/route/route_yaml_test.c — end to end from YAML: SPEC.md's example documents go
 * through //common/config (parse, validate, defaults), rm_snapshot_build and rm_route_decide,
 * and route the way SPEC.md says. Guards the seam between the validator's defaults (lowercased
 * header names, namespaces, percentages) and what the snapshot compiles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/config/config.h"
#include "dataplane/route/route.h"
#include "dataplane/snapshot/snapshot.h"
#include "dataplane/snapshot/testutil.h"

/* SPEC.md's example, with header names in mixed case and a second namespace's service. */
static const char spec_yaml[] =
    "kind: Service\n"
    "name: reviews\n"
    "namespace: default\n"
    "port: 9080\n"
    "hosts: [reviews.example]\n"
    "vip: 10.96.0.20\n"
    "endpoints:\n"
    "  - {address: 127.0.0.1:9001, version: v1}\n"
    "  - {address: 127.0.0.1:9002, version: v2, labels: {zone: a}}\n"
    "---\n"
    "kind: Service\n"
    "name: shadow\n"
    "port: 8080\n"
    "endpoints:\n"
    "  - {address: '[::1]:9100', version: v1}\n"
    "---\n"
    "kind: Route\n"
    "name: reviews-rollout\n"
    "service: reviews\n"
    "rules:\n"
    "  - name: beta-users\n"
    "    match:\n"
    "      headers: {X-User-Group: {exact: beta}}\n"
    "      cookies: {ab: {exact: b}}\n"
    "      query:   {variant: {exact: b}}\n"
    "      path:    {prefix: /api}\n"
    "      method:  GET\n"
    "    destinations:\n"
    "      - {version: v2, weight: 100}\n"
    "  - name: canary\n"
    "    destinations:\n"
    "      - {version: v1, weight: 95}\n"
    "      - {version: v2, weight: 5}\n"
    "    stickyOn: {header: X-User-Id}\n"
    "    mirror: {version: v3, percent: 10}\n"
    "    timeout: 3s\n"
    "    retries:\n"
    "      attempts: 3\n"
    "      perTryTimeout: 1s\n"
    "      retryOn: [connect-failure, reset, gateway-error]\n"
    "      retriableStatusCodes: [409]\n"
    "      backoff: {base: 25ms, max: 250ms}\n"
    "      budget: {percent: 20, minPerSecond: 10}\n"
    "---\n"
    "kind: Route\n"
    "name: shadow-everything\n"
    "service: shadow\n"
    "rules:\n"
    "  - name: all\n"
    "    destinations: [{version: v1, weight: 1}]\n"
    "    mirror: {service: reviews}\n"
    "---\n"
    "kind: CircuitBreaker\n"
    "name: reviews-limits\n"
    "service: reviews\n"
    "version: v2\n"
    "limits: {maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 100, maxRetries: 3}\n"
    "outlierDetection:\n"
    "  consecutive5xx: 5\n"
    "  consecutiveGatewayErrors: 3\n"
    "  interval: 10s\n"
    "  baseEjectionTime: 30s\n"
    "  maxEjectionPercent: 50\n";

static rm_snapshot_t *load(const char *yaml)
{
    rm_config_diags_t errs = {0}, warns = {0};
    Remora__V1__ConfigSet *set = NULL;
    int rc = rm_config_load("spec.yaml", yaml, strlen(yaml), NULL, &set, &errs, &warns);
    if (rc != 0) {
        rm_config_diags_print(&errs, stderr, "error: ");
        rm_config_diags_free(&errs);
        rm_config_diags_free(&warns);
        fail_msg("rm_config_load failed: %d", rc);
    }
    rm_config_diags_free(&errs);
    rm_config_diags_free(&warns);
    Remora__V1__ResolvedEndpoint **eps;
    size_t n;
    assert_int_equal(rm_snapshot_endpoints_from_config(set, &eps, &n), 0);
    char err[256];
    rm_snapshot_t *s = rm_snapshot_build(set, eps, n, "default", 5, err, sizeof(err));
    rm_snapshot_endpoints_free(eps, n);
    remora__v1__config_set__free_unpacked(set, NULL);
    if (s == NULL)
        fail_msg("rm_snapshot_build: %s", err);
    return s;
}

typedef struct req {
    rm_header_view_t h[8];
    rm_request_view_t v;
} req_t;

static void req_init(req_t *r, const char *method, const char *target)
{
    memset(r, 0, sizeof(*r));
    r->v.method = method;
    r->v.method_len = strlen(method);
    rm_route_split_target(target, strlen(target), &r->v.path, &r->v.path_len, &r->v.query,
                          &r->v.query_len);
    r->v.headers = r->h;
}

static void req_hdr(req_t *r, const char *name, const char *value)
{
    r->h[r->v.nheaders++] = (rm_header_view_t){name, strlen(name), value, strlen(value)};
}

static void test_spec_example_compiles(void **state)
{
    (void)state;
    rm_snapshot_t *s = load(spec_yaml);
    const rm_service_t *svc = rm_snapshot_service_by_host(s, "Reviews.Example:9080", 20);
    assert_non_null(svc);
    assert_string_equal(svc->name, "reviews");
    assert_ptr_equal(rm_snapshot_service_by_host(s, "reviews", 7), svc);
    assert_ptr_equal(rm_snapshot_service_by_host(s, "reviews.default.svc.cluster.local:9080", 38),
                     svc);
    assert_int_equal(svc->nrules, 2);
    const rm_rule_t *canary = &svc->rules[1];
    assert_string_equal(canary->name, "canary");
    assert_int_equal(canary->timeout_ms, 3000);
    assert_int_equal(canary->retry->attempts, 3);
    assert_int_equal(canary->retry->per_try_timeout_ms, 1000);
    assert_int_equal(canary->retry->retry_on, RM_RETRY_ON_CONNECT_FAILURE | RM_RETRY_ON_RESET |
                                                  RM_RETRY_ON_GATEWAY_ERROR |
                                                  RM_RETRY_ON_RETRIABLE_CODES);
    assert_int_equal(canary->retry->backoff_base_ms, 25);
    assert_int_equal(canary->retry->backoff_max_ms, 250);
    assert_int_equal(canary->mirror->percent, 10);
    assert_string_equal(canary->mirror->version, "v3");
    assert_true(fabs(rm_route_version_share(canary, 0) - 0.95) < 1e-12);
    const rm_version_t *v2 = rm_snapshot_version_by_name(svc, "v2");
    assert_non_null(v2);
    assert_string_equal(v2->cb->name, "reviews-limits");
    assert_int_equal(v2->cb->max_requests, 100);
    assert_int_equal(v2->cb->max_ejection_percent, 50);
    assert_null(svc->cb->name); /* no service-wide CircuitBreaker: defaults */
    assert_int_equal(rm_snapshot_version_by_name(svc, "v3")->nendpoints, 0);
    rm_snapshot_unref(s);
}

static void test_spec_example_routes(void **state)
{
    (void)state;
    rm_snapshot_t *s = load(spec_yaml);
    const rm_service_t *svc = rm_snapshot_service_by_name(s, NULL, "reviews");
    req_t r;
    rm_route_decision_t d;

    /* A/B: every condition holds -> beta-users, v2. */
    req_init(&r, "GET", "/api/reviews?variant=b");
    req_hdr(&r, "x-user-group", "beta");
    req_hdr(&r, "Cookie", "theme=dark; ab=b");
    assert_int_equal(rm_route_decide(svc, &r.v, 1, &d), 0);
    assert_string_equal(d.rule_name, "beta-users");
    assert_string_equal(d.version, "v2");

    /* One condition off (POST) -> falls to the canary rule. */
    req_init(&r, "POST", "/api/reviews?variant=b");
    req_hdr(&r, "X-User-Group", "beta");
    req_hdr(&r, "Cookie", "ab=b");
    assert_int_equal(rm_route_decide(svc, &r.v, 1, &d), 0);
    assert_string_equal(d.rule_name, "canary");

    /* Canary: 95/5 over users, sticky per user. */
    uint64_t counts[2] = {0}, rng = 2024;
    char user[32];
    const int users = 20000;
    for (int u = 0; u < users; u++) {
        snprintf(user, sizeof(user), "user-%d", u);
        req_init(&r, "GET", "/");
        req_hdr(&r, "x-user-id", user);
        assert_int_equal(rm_route_decide(svc, &r.v, tu_rand(&rng), &d), 0);
        assert_true(d.sticky);
        counts[d.version_index]++;
        size_t first = d.version_index;
        assert_int_equal(rm_route_decide(svc, &r.v, tu_rand(&rng), &d), 0);
        assert_int_equal(d.version_index, first);
    }
    double mean = users * 0.05, sigma = sqrt(users * 0.05 * 0.95);
    if (fabs((double)counts[1] - mean) > 3 * sigma)
        fail_msg("v2 got %llu of %d users, expected %.0f +- %.0f", (unsigned long long)counts[1],
                 users, mean, 3 * sigma);

    /* The shadow service mirrors everything to reviews, whose own routes then decide. */
    const rm_service_t *shadow = rm_snapshot_service_by_name(s, "default", "shadow");
    req_init(&r, "GET", "/");
    assert_int_equal(rm_route_decide(shadow, &r.v, 77, &d), 0);
    assert_true(d.mirror);
    assert_ptr_equal(d.mirror_service, svc);
    assert_int_equal(d.mirror_version_index, SIZE_MAX);
    rm_snapshot_unref(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_example_compiles),
        cmocka_unit_test(test_spec_example_routes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
