/* dataplane/snapshot/snapshot_test.c — snapshot build, deep copy, lookups (host, vip, name),
 * endpoints and versions, circuit breakers, errors, refcounting and the published slot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "dataplane/snapshot/hash.h"
#include "dataplane/snapshot/snapshot.h"
#include "dataplane/snapshot/testutil.h"

/* reviews (default, 9080, vip 10.96.0.20, hosts reviews.example), ratings (prod, 8080, vip
 * fd00::20), and two Routes for reviews. */
static Remora__V1__ConfigSet *sample_config(void)
{
    Remora__V1__ConfigSet *set = tu_set_new();
    Remora__V1__Service *rv = tu_service(set, "reviews", NULL, 9080);
    tu_service_host(rv, "Reviews.Example");
    tu_service_vip(rv, "10.96.0.20");
    tu_service_endpoint(rv, "127.0.0.1:9001", "v1");
    tu_service_endpoint(rv, "127.0.0.1:9002", "v2");
    Remora__V1__Service *rt = tu_service(set, "ratings", "prod", 8080);
    tu_service_vip(rt, "fd00::20");
    tu_service_endpoint(rt, "[::1]:9101", "v1");

    Remora__V1__Route *r1 = tu_route(set, "first", NULL, "reviews");
    Remora__V1__Rule *a = tu_rule(r1, "a");
    tu_match_header(a, "X-User", TU_EXACT, "beta");
    tu_dest(a, "v2", 100);
    Remora__V1__Rule *b = tu_rule(r1, "b");
    tu_match_path(b, TU_PREFIX, "/api");
    tu_dest(b, "v3", 1); /* v3 has no endpoint */
    Remora__V1__Route *r2 = tu_route(set, "second", "default", "reviews");
    Remora__V1__Rule *c = tu_rule(r2, "c");
    tu_dest(c, "v1", 95);
    tu_dest(c, "v2", 5);
    return set;
}

static rm_snapshot_t *build_sample(const char *local_ns)
{
    Remora__V1__ConfigSet *set = sample_config();
    Remora__V1__ResolvedEndpoint **eps;
    size_t n;
    assert_int_equal(rm_snapshot_endpoints_from_config(set, &eps, &n), 0);
    char err[256];
    rm_snapshot_t *s = rm_snapshot_build(set, eps, n, local_ns, 7, err, sizeof(err));
    if (s == NULL)
        fail_msg("build: %s", err);
    /* The snapshot keeps nothing of the caller's: free both now (ASan checks later reads). */
    rm_snapshot_endpoints_free(eps, n);
    tu_set_free(set);
    return s;
}

static const char *host_svc(const rm_snapshot_t *s, const char *host)
{
    const rm_service_t *svc = rm_snapshot_service_by_host(s, host, strlen(host));
    return svc == NULL ? "(null)" : svc->name;
}

static void test_host_lookup(void **state)
{
    (void)state;
    rm_snapshot_t *s = build_sample("default");
    assert_string_equal(host_svc(s, "reviews"), "reviews");
    assert_string_equal(host_svc(s, "reviews.default"), "reviews");
    assert_string_equal(host_svc(s, "reviews.default.svc"), "reviews");
    assert_string_equal(host_svc(s, "reviews.default.svc.cluster.local"), "reviews");
    assert_string_equal(host_svc(s, "reviews.default.svc.cluster.local."), "reviews");
    assert_string_equal(host_svc(s, "REVIEWS.Default.SVC.cluster.LOCAL"), "reviews");
    assert_string_equal(host_svc(s, "reviews.example"), "reviews"); /* hosts, any case */
    assert_string_equal(host_svc(s, "REVIEWS.EXAMPLE:9080"), "reviews");
    /* Port: must be the service's; 80 (and none) is the implicit HTTP port. */
    assert_string_equal(host_svc(s, "reviews:9080"), "reviews");
    assert_string_equal(host_svc(s, "reviews:80"), "reviews");
    assert_string_equal(host_svc(s, "reviews:"), "reviews");
    assert_string_equal(host_svc(s, "reviews:9081"), "(null)");
    assert_string_equal(host_svc(s, "reviews:0"), "(null)");
    assert_string_equal(host_svc(s, "reviews:65536"), "(null)");
    assert_string_equal(host_svc(s, "reviews:90x0"), "(null)");
    /* ratings lives in prod: its bare name is not ours, its qualified names are. */
    assert_string_equal(host_svc(s, "ratings"), "(null)");
    assert_string_equal(host_svc(s, "ratings.prod:8080"), "ratings");
    assert_string_equal(host_svc(s, "ratings.prod.svc.cluster.local"), "ratings");
    /* VIP literals, IPv6 in brackets. */
    assert_string_equal(host_svc(s, "10.96.0.20:9080"), "reviews");
    assert_string_equal(host_svc(s, "[FD00::20]:8080"), "ratings");
    assert_string_equal(host_svc(s, "[fd00::20]"), "ratings");
    assert_string_equal(host_svc(s, "[fd00::20"), "(null)");
    assert_string_equal(host_svc(s, "[fd00::20]x"), "(null)");
    /* Unknown and malformed. */
    assert_string_equal(host_svc(s, "details"), "(null)");
    assert_string_equal(host_svc(s, "reviews.default.svc.cluster"), "(null)");
    assert_string_equal(host_svc(s, "review"), "(null)");
    assert_string_equal(host_svc(s, "reviewsx"), "(null)");
    assert_string_equal(host_svc(s, ":9080"), "(null)");
    assert_null(rm_snapshot_service_by_host(s, "", 0));
    assert_null(rm_snapshot_service_by_host(s, NULL, 3));
    /* Length is honoured: no NUL needed after the host. */
    assert_string_equal(rm_snapshot_service_by_host(s, "reviewsXYZ", 7)->name, "reviews");
    rm_snapshot_unref(s);

    /* Built for a sidecar in prod: now "ratings" is bare-name reachable and "reviews" is not. */
    s = build_sample("prod");
    assert_string_equal(host_svc(s, "ratings"), "ratings");
    assert_string_equal(host_svc(s, "reviews"), "(null)");
    assert_string_equal(host_svc(s, "reviews.default"), "reviews");
    assert_string_equal(rm_snapshot_local_namespace(s), "prod");
    rm_snapshot_unref(s);
}

static void test_host_shared_between_services(void **state)
{
    (void)state;
    Remora__V1__ConfigSet *set = tu_set_new();
    tu_service_host(tu_service(set, "web", NULL, 8080), "shop.example");
    tu_service_host(tu_service(set, "api", NULL, 9090), "shop.example");
    tu_service_host(tu_service(set, "plain", NULL, 80), "shop.example");
    char err[256];
    rm_snapshot_t *s = rm_snapshot_build(set, NULL, 0, NULL, 1, err, sizeof(err));
    tu_set_free(set);
    assert_non_null(s);
    assert_string_equal(host_svc(s, "shop.example:9090"), "api");
    assert_string_equal(host_svc(s, "shop.example:8080"), "web");
    assert_string_equal(host_svc(s, "shop.example:80"), "plain"); /* exact port wins */
    assert_string_equal(host_svc(s, "shop.example"), "web");      /* first in document order */
    assert_string_equal(host_svc(s, "shop.example:7070"), "(null)");
    rm_snapshot_unref(s);
}

static void test_addr_lookup(void **state)
{
    (void)state;
    rm_snapshot_t *s = build_sample(NULL);
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(9080)};
    inet_pton(AF_INET, "10.96.0.20", &in.sin_addr);
    const rm_service_t *svc = rm_snapshot_service_by_addr(s, (struct sockaddr *)&in);
    assert_non_null(svc);
    assert_string_equal(svc->name, "reviews");
    in.sin_port = htons(9081);
    assert_null(rm_snapshot_service_by_addr(s, (struct sockaddr *)&in));
    in.sin_port = htons(9080);
    inet_pton(AF_INET, "10.96.0.21", &in.sin_addr);
    assert_null(rm_snapshot_service_by_addr(s, (struct sockaddr *)&in));

    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(8080)};
    inet_pton(AF_INET6, "fd00:0::20", &in6.sin6_addr);
    svc = rm_snapshot_service_by_addr(s, (struct sockaddr *)&in6);
    assert_non_null(svc);
    assert_string_equal(svc->name, "ratings");
    in6.sin6_port = htons(9080);
    assert_null(rm_snapshot_service_by_addr(s, (struct sockaddr *)&in6));
    /* A dual-stack socket reports an IPv4 destination as ::ffff:a.b.c.d. */
    inet_pton(AF_INET6, "::ffff:10.96.0.20", &in6.sin6_addr);
    svc = rm_snapshot_service_by_addr(s, (struct sockaddr *)&in6);
    assert_non_null(svc);
    assert_string_equal(svc->name, "reviews");

    struct sockaddr_un un = {.sun_family = AF_UNIX};
    assert_null(rm_snapshot_service_by_addr(s, (struct sockaddr *)&un));
    assert_null(rm_snapshot_service_by_addr(s, NULL));
    rm_snapshot_unref(s);
}

static void test_name_lookup_and_indexes(void **state)
{
    (void)state;
    rm_snapshot_t *s = build_sample(NULL);
    assert_int_equal(rm_snapshot_version(s), 7);
    assert_int_equal(rm_snapshot_service_count(s), 2);
    const rm_service_t *rv = rm_snapshot_service_by_name(s, NULL, "reviews");
    const rm_service_t *rt = rm_snapshot_service_by_name(s, "prod", "ratings");
    assert_non_null(rv);
    assert_non_null(rt);
    assert_ptr_equal(rm_snapshot_service_by_name(s, "default", "reviews"), rv);
    assert_ptr_equal(rm_snapshot_service_by_name(s, "", "reviews"), rv);
    assert_null(rm_snapshot_service_by_name(s, "default", "ratings"));
    assert_null(rm_snapshot_service_by_name(s, "prod", "reviews"));
    assert_null(rm_snapshot_service_by_name(s, "prod", "rating"));
    assert_int_equal(rv->index, 0);
    assert_int_equal(rt->index, 1);
    assert_ptr_equal(rm_snapshot_service_at(s, 0), rv);
    assert_ptr_equal(rm_snapshot_service_at(s, 1), rt);
    assert_null(rm_snapshot_service_at(s, 2));
    assert_string_equal(rv->namespace_, "default");
    assert_string_equal(rt->namespace_, "prod");
    assert_int_equal(rv->port, 9080);
    assert_string_equal(rv->vip, "10.96.0.20");
    rm_snapshot_unref(s);
}

static void test_rules_concatenate_in_document_order(void **state)
{
    (void)state;
    rm_snapshot_t *s = build_sample(NULL);
    const rm_service_t *rv = rm_snapshot_service_by_name(s, NULL, "reviews");
    assert_int_equal(rv->nrules, 3);
    assert_string_equal(rv->rules[0].name, "a");
    assert_string_equal(rv->rules[0].route_name, "first");
    assert_string_equal(rv->rules[1].name, "b");
    assert_string_equal(rv->rules[2].name, "c");
    assert_string_equal(rv->rules[2].route_name, "second");
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(rv->rules[i].index, i);
    /* Header names are lowercased for matching. */
    assert_int_equal(rv->rules[0].match.nheaders, 1);
    assert_string_equal(rv->rules[0].match.headers[0].name, "x-user");
    assert_int_equal(rv->rules[2].weight_sum, 100);
    assert_int_equal(rv->rules[2].timeout_ms, 15000);
    assert_non_null(rv->rules[2].retry);
    assert_int_equal(rv->rules[2].retry->attempts, 2);
    /* The default rule: index nrules, spread over ready endpoints. */
    assert_non_null(rv->default_rule);
    assert_int_equal(rv->default_rule->index, 3);
    assert_true(rv->default_rule->spread);
    assert_int_equal(rv->default_rule->weight_sum, 2);
    /* The copy of the proto rule is reachable for anything not compiled. */
    assert_non_null(rv->rules[1].proto);
    assert_string_equal(rv->rules[1].proto->name, "b");
    rm_snapshot_unref(s);
}

static void test_versions_and_endpoints(void **state)
{
    (void)state;
    Remora__V1__ConfigSet *set = tu_set_new();
    tu_service(set, "reviews", NULL, 9080);
    tu_service(set, "other", "ns2", 80);
    Remora__V1__Rule *r = tu_rule(tu_route(set, "r", NULL, "reviews"), "x");
    tu_dest(r, "v9", 1);
    tu_mirror(r, "v8", NULL, 10);
    tu_eps_t eps = {0};
    tu_eps_add(&eps, "reviews", NULL, "v2", "10.0.0.2:80", 0);
    tu_eps_add(&eps, "reviews", "default", "v1", "10.0.0.1:80", 0);
    tu_eps_add(&eps, "reviews", "", "v2", "[fd00::3]:8080", 1);
    tu_eps_add(&eps, "reviews", NULL, "v1", "10.0.0.1:80", 1); /* duplicate: now draining */
    tu_eps_add(&eps, "reviews", NULL, "", "10.0.0.9:80", 0);   /* no version */
    tu_eps_add(&eps, "unknown", NULL, "v1", "10.0.0.7:80", 0); /* not in the config: ignored */
    tu_eps_add(&eps, "other", NULL, "v1", "10.0.0.8:80", 0);   /* wrong namespace: ignored */
    char err[256];
    rm_snapshot_t *s = rm_snapshot_build(set, eps.v, eps.n, NULL, 3, err, sizeof(err));
    tu_eps_free(&eps);
    tu_set_free(set);
    if (s == NULL)
        fail_msg("%s", err);
    const rm_service_t *svc = rm_snapshot_service_by_name(s, NULL, "reviews");
    /* Order of first appearance: endpoints, then destination and mirror versions. */
    assert_int_equal(svc->nversions, 5);
    const char *names[] = {"v2", "v1", "", "v9", "v8"};
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(svc->versions[i].name, names[i]);
        assert_int_equal(svc->versions[i].index, i);
        assert_int_equal(svc->versions[i].name_len, strlen(names[i]));
    }
    assert_int_equal(svc->nendpoints, 4);
    const rm_version_t *v2 = &svc->versions[0], *v1 = &svc->versions[1];
    assert_int_equal(v2->nendpoints, 2);
    assert_int_equal(v2->nready, 1);
    assert_int_equal(v1->nendpoints, 1);
    assert_int_equal(v1->nready, 0);
    assert_true(v1->endpoints[0].draining);
    assert_int_equal(svc->versions[3].nendpoints, 0);
    assert_string_equal(v2->endpoints[0].address, "10.0.0.2:80");
    assert_string_equal(v2->endpoints[0].version, "v2");
    assert_string_equal(v2->endpoints[0].pod, "");
    assert_false(v2->endpoints[0].draining);
    assert_string_equal(v2->endpoints[1].address, "[fd00::3]:8080");
    assert_true(v2->endpoints[1].draining);
    /* Keys: rm_hash64 of the address string, the same in every snapshot. */
    assert_true(v2->endpoints[0].key == rm_hash64("10.0.0.2:80", 11));
    /* Parsed socket addresses. */
    const struct sockaddr_in *in = (const struct sockaddr_in *)&v2->endpoints[0].addr;
    assert_int_equal(in->sin_family, AF_INET);
    assert_int_equal(ntohs(in->sin_port), 80);
    assert_int_equal(v2->endpoints[0].addrlen, sizeof(struct sockaddr_in));
    assert_int_equal(v2->endpoints[0].addrlen, sizeof(struct sockaddr_in));
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&v2->endpoints[1].addr;
    assert_int_equal(in6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(in6->sin6_port), 8080);
    assert_int_equal(v2->endpoints[1].addrlen, sizeof(struct sockaddr_in6));
    /* Mirror of a version of the same service. */
    const rm_mirror_t *m = svc->rules[0].mirror;
    assert_non_null(m);
    assert_ptr_equal(m->service, svc);
    assert_int_equal(m->version_index, 4);
    assert_string_equal(m->version, "v8");
    assert_int_equal(m->percent, 10);
    const rm_service_t *other = rm_snapshot_service_by_name(s, "ns2", "other");
    assert_int_equal(other->nendpoints, 0);
    assert_int_equal(other->default_rule->weight_sum, 0);
    rm_snapshot_unref(s);
}

static void test_circuit_breakers(void **state)
{
    (void)state;
    Remora__V1__ConfigSet *set = tu_set_new();
    Remora__V1__Service *svc = tu_service(set, "reviews", NULL, 9080);
    tu_service_endpoint(svc, "10.0.0.1:80", "v1");
    tu_service_endpoint(svc, "10.0.0.2:80", "v2");
    tu_service(set, "plain", NULL, 80);
    tu_cb(set, "v2-limits", "reviews", "v2", 7);
    tu_cb(set, "svc-limits", "reviews", NULL, 100);
    tu_cb(set, "second", "reviews", NULL, 5); /* a second service-wide one: ignored */
    tu_cb(set, "ghost", "reviews", "v9", 9);  /* a version nobody has: ignored */
    Remora__V1__CircuitBreaker *od = tu_cb(set, "od", "plain", NULL, 50);
    od->outlier_detection = malloc(sizeof(*od->outlier_detection));
    remora__v1__outlier_detection__init(od->outlier_detection);
    od->outlier_detection->has_consecutive_5xx = 1;
    od->outlier_detection->consecutive_5xx = 0;
    od->outlier_detection->has_max_ejection_percent = 1;
    od->outlier_detection->max_ejection_percent = 50;
    Remora__V1__ResolvedEndpoint **eps;
    size_t n;
    assert_int_equal(rm_snapshot_endpoints_from_config(set, &eps, &n), 0);
    assert_int_equal(n, 2);
    char err[256];
    rm_snapshot_t *s = rm_snapshot_build(set, eps, n, NULL, 1, err, sizeof(err));
    rm_snapshot_endpoints_free(eps, n);
    tu_set_free(set);
    if (s == NULL)
        fail_msg("%s", err);
    const rm_service_t *rv = rm_snapshot_service_by_name(s, NULL, "reviews");
    assert_string_equal(rv->cb->name, "svc-limits");
    assert_int_equal(rv->cb->max_requests, 100);
    assert_int_equal(rv->cb->max_connections, 1024); /* defaults fill the rest */
    assert_int_equal(rv->cb->consecutive_5xx, 5);
    assert_ptr_equal(rv->versions[0].cb, rv->cb);
    assert_string_equal(rv->versions[1].cb->name, "v2-limits");
    assert_int_equal(rv->versions[1].cb->max_requests, 7);
    const rm_service_t *pl = rm_snapshot_service_by_name(s, NULL, "plain");
    assert_int_equal(pl->cb->consecutive_5xx, 0);
    assert_int_equal(pl->cb->consecutive_gateway_errors, 3);
    assert_int_equal(pl->cb->max_ejection_percent, 50);
    assert_int_equal(pl->cb->interval_ms, 10000);
    assert_int_equal(pl->cb->base_ejection_time_ms, 30000);
    rm_snapshot_unref(s);

    /* No CircuitBreaker at all: built-in defaults. */
    set = tu_set_new();
    tu_service(set, "x", NULL, 1);
    s = rm_snapshot_build(set, NULL, 0, NULL, 1, err, sizeof(err));
    tu_set_free(set);
    assert_non_null(s);
    const rm_circuit_breaker_t *cb = rm_snapshot_service_at(s, 0)->cb;
    assert_null(cb->name);
    assert_int_equal(cb->max_connections, 1024);
    assert_int_equal(cb->max_pending_requests, 1024);
    assert_int_equal(cb->max_requests, 1024);
    assert_int_equal(cb->max_retries, 1024);
    assert_int_equal(cb->max_ejection_percent, 10);
    rm_snapshot_unref(s);
}

static void test_policies_compile(void **state)
{
    (void)state;
    Remora__V1__ConfigSet *set = tu_set_new();
    tu_service(set, "reviews", NULL, 9080);
    tu_service(set, "shadow", NULL, 9080);
    Remora__V1__Route *route = tu_route(set, "r", NULL, "reviews");
    Remora__V1__Rule *r = tu_rule(route, "x");
    tu_timeout(r, 3000);
    Remora__V1__RetryPolicy *rp = tu_retries(r, 3);
    tu_retry_on(rp, "gateway-error");
    tu_retry_on(rp, "5xx");
    rp->n_retriable_status_codes = 1;
    rp->retriable_status_codes = malloc(sizeof(uint32_t));
    rp->retriable_status_codes[0] = 409;
    tu_mirror(r, NULL, "shadow", -1);
    tu_dest(r, "v1", -1); /* no weight anywhere: equal shares */
    tu_dest(r, "v2", -1);
    Remora__V1__Rule *r2 = tu_rule(route, NULL);
    tu_retries(r2, 4); /* retryOn left out: the safe default */
    tu_sticky_header(r2, "X-User-Id");
    char err[256];
    rm_snapshot_t *s = rm_snapshot_build(set, NULL, 0, NULL, 1, err, sizeof(err));
    tu_set_free(set);
    if (s == NULL)
        fail_msg("%s", err);
    const rm_service_t *svc = rm_snapshot_service_at(s, 0);
    const rm_rule_t *x = &svc->rules[0];
    assert_int_equal(x->timeout_ms, 3000);
    assert_int_equal(x->retry->attempts, 3);
    assert_int_equal(x->retry->retry_on,
                     RM_RETRY_ON_GATEWAY_ERROR | RM_RETRY_ON_5XX | RM_RETRY_ON_RETRIABLE_CODES);
    assert_int_equal(x->retry->nretriable_status_codes, 1);
    assert_int_equal(x->retry->retriable_status_codes[0], 409);
    assert_int_equal(x->retry->backoff_base_ms, 25);
    assert_int_equal(x->retry->backoff_max_ms, 250);
    assert_int_equal(x->retry->budget_percent, 20);
    assert_int_equal(x->retry->budget_min_per_second, 10);
    assert_ptr_equal(x->mirror->service, rm_snapshot_service_at(s, 1));
    assert_int_equal(x->mirror->version_index, SIZE_MAX);
    assert_null(x->mirror->version);
    assert_int_equal(x->mirror->percent, 100);
    assert_int_equal(x->weight_sum, 2);
    assert_false(x->spread);
    const rm_rule_t *y = &svc->rules[1];
    assert_string_equal(y->name, "");
    assert_int_equal(y->retry->attempts, 4);
    assert_int_equal(y->retry->retry_on, RM_RETRY_ON_CONNECT_FAILURE | RM_RETRY_ON_RESET);
    assert_true(y->spread);
    assert_int_equal(y->sticky.kind, RM_STICKY_HEADER);
    assert_string_equal(y->sticky.name, "x-user-id");
    assert_int_equal(y->sticky.name_len, 9);
    assert_null(y->mirror);
    rm_snapshot_unref(s);
}

/* Builds set and expects failure with a message containing want. */
static void expect_build_error(Remora__V1__ConfigSet *set, tu_eps_t *eps, const char *want)
{
    char err[256] = "unset";
    rm_snapshot_t *s =
        rm_snapshot_build(set, eps ? eps->v : NULL, eps ? eps->n : 0, NULL, 1, err, sizeof(err));
    tu_set_free(set);
    if (eps != NULL)
        tu_eps_free(eps);
    if (s != NULL) {
        rm_snapshot_unref(s);
        fail_msg("build succeeded, expected an error containing \"%s\"", want);
    }
    if (strstr(err, want) == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"", err, want);
}

static void test_build_errors(void **state)
{
    (void)state;
    Remora__V1__ConfigSet *set = tu_set_new();
    tu_service(set, "a", NULL, 80);
    tu_route(set, "r1", NULL, "nope");
    expect_build_error(set, NULL, "route default/r1: service \"nope\" is not defined");

    set = tu_set_new();
    tu_service(set, "a", NULL, 80);
    tu_service(set, "a", "default", 81);
    expect_build_error(set, NULL, "service default/a: defined twice");

    set = tu_set_new();
    tu_service(set, "a", NULL, 80);
    tu_match_header(tu_rule(tu_route(set, "r", NULL, "a"), "bad"), "x", TU_REGEX, "(ab");
    expect_build_error(set, NULL, "rule #1 (bad): header \"x\": regex \"(ab\": missing closing");

    set = tu_set_new();
    tu_service(set, "a", NULL, 80);
    tu_match_path(tu_rule(tu_route(set, "r", NULL, "a"), NULL), TU_REGEX, "[z-a]");
    expect_build_error(set, NULL, "path: regex \"[z-a]\"");

    set = tu_set_new();
    tu_service_vip(tu_service(set, "a", NULL, 80), "10.0.0.1");
    tu_service_vip(tu_service(set, "b", NULL, 80), "10.0.0.1");
    expect_build_error(set, NULL, "share vip 10.0.0.1 port 80");

    set = tu_set_new();
    tu_service_vip(tu_service(set, "a", NULL, 80), "not-an-ip");
    expect_build_error(set, NULL, "vip \"not-an-ip\"");

    const char *bad_addrs[] = {"10.0.0.1", "10.0.0.1:0",      "10.0.0.1:70000", "::1:80",
                               "[::1]80",  "host.example:80", "10.0.0.1:8x",    ""};
    for (size_t i = 0; i < sizeof(bad_addrs) / sizeof(bad_addrs[0]); i++) {
        set = tu_set_new();
        tu_service(set, "a", NULL, 80);
        tu_eps_t eps = {0};
        tu_eps_add(&eps, "a", NULL, "v1", bad_addrs[i], 0);
        expect_build_error(set, &eps, "is not IPv4:port or [IPv6]:port");
    }

    set = tu_set_new();
    tu_service(set, "a", NULL, 80);
    tu_mirror(tu_rule(tu_route(set, "r", NULL, "a"), NULL), NULL, "elsewhere", 5);
    expect_build_error(set, NULL, "mirror service \"elsewhere\" is not defined");

    set = tu_set_new();
    tu_service(set, "a", NULL, 80);
    tu_cb(set, "c", "b", NULL, 1);
    expect_build_error(set, NULL, "circuitbreaker default/c: service \"b\"");

    set = tu_set_new();
    tu_service(set, "a", NULL, 80);
    tu_retry_on(tu_retries(tu_rule(tu_route(set, "r", NULL, "a"), NULL), 1), "sometimes");
    expect_build_error(set, NULL, "retryOn \"sometimes\"");

    /* A NULL err buffer is allowed. */
    assert_null(rm_snapshot_build(NULL, NULL, 0, NULL, 1, NULL, 0));
}

static void test_packed_copy_for_config_dump(void **state)
{
    (void)state;
    Remora__V1__ConfigSet *set = sample_config();
    size_t want_len = protobuf_c_message_get_packed_size(&set->base);
    uint8_t *want = malloc(want_len);
    protobuf_c_message_pack(&set->base, want);
    rm_snapshot_t *s = rm_snapshot_build(set, NULL, 0, NULL, 42, NULL, 0);
    tu_set_free(set);
    assert_non_null(s);
    size_t len;
    const uint8_t *packed = rm_snapshot_packed(s, &len);
    assert_int_equal(len, want_len);
    assert_memory_equal(packed, want, len);
    free(want);
    const Remora__V1__ConfigSet *copy = rm_snapshot_config(s);
    assert_int_equal(copy->n_services, 2);
    assert_string_equal(copy->services[0]->name, "reviews");
    assert_int_equal(copy->n_routes, 2);
    rm_snapshot_unref(s);
}

static void test_endpoints_from_config(void **state)
{
    (void)state;
    Remora__V1__ConfigSet *set = sample_config();
    Remora__V1__ResolvedEndpoint **eps;
    size_t n;
    assert_int_equal(rm_snapshot_endpoints_from_config(set, &eps, &n), 0);
    tu_set_free(set);
    assert_int_equal(n, 3);
    assert_string_equal(eps[0]->service, "reviews");
    assert_string_equal(eps[0]->namespace_, "default");
    assert_string_equal(eps[0]->version, "v1");
    assert_string_equal(eps[0]->address, "127.0.0.1:9001");
    assert_string_equal(eps[0]->pod, "");
    assert_false(eps[0]->draining);
    assert_string_equal(eps[2]->service, "ratings");
    assert_string_equal(eps[2]->namespace_, "prod");
    assert_string_equal(eps[2]->address, "[::1]:9101");
    rm_snapshot_endpoints_free(eps, n);

    set = tu_set_new();
    assert_int_equal(rm_snapshot_endpoints_from_config(set, &eps, &n), 0);
    assert_int_equal(n, 0);
    rm_snapshot_endpoints_free(eps, n);
    tu_set_free(set);
}

/* Which endpoints are Remora sidecars: a static one configured with `sidecar: true` (running
 * from a file, and as discovery lists it), a registered one, never a plain one; two copies of
 * one address are a sidecar if either is. */
static void test_sidecar_endpoints(void **state)
{
    (void)state;
    Remora__V1__ConfigSet *set = tu_set_new();
    Remora__V1__Service *svc = tu_service(set, "reviews", NULL, 9080);
    tu_service_endpoint(svc, "127.0.0.1:9001", "v1");
    Remora__V1__Endpoint *sc = tu_service_endpoint(svc, "127.0.0.1:9003", "v1");
    sc->has_sidecar = 1;
    sc->sidecar = 1;
    Remora__V1__Endpoint *plain = tu_service_endpoint(svc, "127.0.0.1:9004", "v1");
    plain->has_sidecar = 1; /* an explicit `sidecar: false` */
    plain->sidecar = 0;

    /* From a config file: the static endpoints' own flags. */
    Remora__V1__ResolvedEndpoint **feps;
    size_t n;
    assert_int_equal(rm_snapshot_endpoints_from_config(set, &feps, &n), 0);
    assert_int_equal(n, 3);
    assert_false(feps[0]->sidecar);
    assert_true(feps[1]->sidecar);
    assert_false(feps[2]->sidecar);
    char err[256];
    rm_snapshot_t *s = rm_snapshot_build(set, feps, n, NULL, 1, err, sizeof(err));
    rm_snapshot_endpoints_free(feps, n);
    if (s == NULL)
        fail_msg("%s", err);
    const rm_version_t *v1 = &rm_snapshot_service_by_name(s, NULL, "reviews")->versions[0];
    assert_int_equal(v1->nendpoints, 3);
    assert_string_equal(v1->endpoints[0].address, "127.0.0.1:9001");
    assert_false(v1->endpoints[0].sidecar);
    assert_string_equal(v1->endpoints[1].address, "127.0.0.1:9003");
    assert_true(v1->endpoints[1].sidecar);
    assert_string_equal(v1->endpoints[2].address, "127.0.0.1:9004");
    assert_false(v1->endpoints[2].sidecar);
    rm_snapshot_unref(s);

    /* From discovery: static endpoints first (as the control plane marks them), then
     * registered ones. 10.0.0.5 is listed plain and registered: one endpoint, a sidecar. */
    tu_eps_t eps = {0};
    tu_eps_add(&eps, "reviews", NULL, "v1", "127.0.0.1:9001", 0);
    tu_eps_add(&eps, "reviews", NULL, "v1", "127.0.0.1:9003", 0);
    eps.v[eps.n - 1]->sidecar = 1;
    tu_eps_add(&eps, "reviews", NULL, "v2", "10.0.0.5:15006", 0);
    tu_eps_add_registered(&eps, "reviews", NULL, "v2", "10.0.0.4:15006", "reviews-v2-a");
    tu_eps_add_registered(&eps, "reviews", NULL, "v2", "10.0.0.5:15006", "reviews-v2-b");
    s = rm_snapshot_build(set, eps.v, eps.n, NULL, 2, err, sizeof(err));
    tu_eps_free(&eps);
    tu_set_free(set);
    if (s == NULL)
        fail_msg("%s", err);
    const rm_service_t *rv = rm_snapshot_service_by_name(s, NULL, "reviews");
    assert_int_equal(rv->nendpoints, 4);
    v1 = rm_snapshot_version_by_name(rv, "v1");
    const rm_version_t *v2 = rm_snapshot_version_by_name(rv, "v2");
    assert_int_equal(v1->nendpoints, 2);
    assert_false(v1->endpoints[0].sidecar); /* plain */
    assert_true(v1->endpoints[1].sidecar);  /* static, sidecar: true */
    assert_int_equal(v2->nendpoints, 2);
    assert_string_equal(v2->endpoints[0].address, "10.0.0.5:15006");
    assert_true(v2->endpoints[0].sidecar); /* plain copy, then registered: a sidecar */
    assert_string_equal(v2->endpoints[1].address, "10.0.0.4:15006");
    assert_string_equal(v2->endpoints[1].pod, "reviews-v2-a");
    assert_true(v2->endpoints[1].sidecar); /* registered */
    rm_snapshot_unref(s);
}

static void test_regex_anchoring_and_limits(void **state)
{
    (void)state;
    Remora__V1__ConfigSet *set = tu_set_new();
    tu_service(set, "a", NULL, 80);
    Remora__V1__Route *route = tu_route(set, "r", NULL, "a");
    tu_match_header(tu_rule(route, "alt"), "x", TU_REGEX, "a|ab");
    tu_match_header(tu_rule(route, "evil"), "x", TU_REGEX, "(a+)+b");
    tu_match_header(tu_rule(route, "mid"), "x", TU_REGEX, "b");
    rm_snapshot_t *s = rm_snapshot_build(set, NULL, 0, NULL, 1, NULL, 0);
    tu_set_free(set);
    assert_non_null(s);
    const rm_service_t *svc = rm_snapshot_service_at(s, 0);
    const rm_regex_t *alt = &svc->rules[0].match.headers[0].re;
    const rm_regex_t *evil = &svc->rules[1].match.headers[0].re;
    const rm_regex_t *mid = &svc->rules[2].match.headers[0].re;
    /* Anchored at both ends, with backtracking into alternatives. */
    assert_int_equal(rm_snapshot_regex_match(alt, "a", 1), 1);
    assert_int_equal(rm_snapshot_regex_match(alt, "ab", 2), 1);
    assert_int_equal(rm_snapshot_regex_match(alt, "abc", 3), 0);
    assert_int_equal(rm_snapshot_regex_match(alt, "xab", 3), 0);
    assert_int_equal(rm_snapshot_regex_match(mid, "abc", 3), 0);
    assert_int_equal(rm_snapshot_regex_match(mid, "b", 1), 1);
    /* The length is honoured, not a NUL. */
    assert_int_equal(rm_snapshot_regex_match(mid, "bbb", 1), 1);
    /* Catastrophic backtracking stops at the match limit and counts as no match. */
    char subject[64];
    memset(subject, 'a', sizeof(subject));
    assert_int_equal(rm_snapshot_regex_match(evil, subject, sizeof(subject)), 0);
    assert_int_equal(rm_snapshot_regex_match(evil, "aab", 3), 1);
    assert_int_equal(rm_snapshot_regex_match(NULL, "x", 1), 0);
    rm_snapshot_unref(s);
}

static void test_refcount(void **state)
{
    (void)state;
    rm_snapshot_t *s = build_sample(NULL);
    rm_snapshot_ref(s);
    rm_snapshot_ref(s);
    rm_snapshot_unref(s);
    rm_snapshot_unref(s);
    /* Still alive: one reference left. */
    assert_non_null(rm_snapshot_service_by_host(s, "reviews", 7));
    rm_snapshot_unref(s); /* freed; ASan reports a leak if not, LSan a use if twice */
    rm_snapshot_ref(NULL);
    rm_snapshot_unref(NULL);
}

static void test_publish_acquire(void **state)
{
    (void)state;
    uint64_t g0 = rm_snapshot_generation();
    rm_snapshot_t *cached = NULL;
    uint64_t gen = g0;
    assert_int_equal(rm_snapshot_refresh(&cached, &gen), 0);

    rm_snapshot_t *a = build_sample(NULL);
    rm_snapshot_publish(a); /* the slot owns a's only reference */
    assert_int_equal(rm_snapshot_generation(), g0 + 1);
    rm_snapshot_t *req = rm_snapshot_acquire(); /* a request holding the current snapshot */
    assert_ptr_equal(req, a);
    assert_int_equal(rm_snapshot_refresh(&cached, &gen), 1);
    assert_ptr_equal(cached, a);
    assert_int_equal(gen, g0 + 1);
    assert_int_equal(rm_snapshot_refresh(&cached, &gen), 0);

    rm_snapshot_t *b = build_sample(NULL);
    rm_snapshot_publish(b);
    /* The request still reads the snapshot it started with. */
    assert_int_equal(rm_snapshot_version(req), 7);
    assert_non_null(rm_snapshot_service_by_host(req, "reviews", 7));
    assert_int_equal(rm_snapshot_refresh(&cached, &gen), 1);
    assert_ptr_equal(cached, b);
    rm_snapshot_unref(req); /* a's last reference: freed here */

    rm_snapshot_publish(NULL);
    assert_null(rm_snapshot_acquire());
    assert_int_equal(rm_snapshot_refresh(&cached, &gen), 1);
    assert_null(cached); /* b freed by the refresh */
    assert_int_equal(gen, g0 + 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_lookup),
        cmocka_unit_test(test_host_shared_between_services),
        cmocka_unit_test(test_addr_lookup),
        cmocka_unit_test(test_name_lookup_and_indexes),
        cmocka_unit_test(test_rules_concatenate_in_document_order),
        cmocka_unit_test(test_versions_and_endpoints),
        cmocka_unit_test(test_circuit_breakers),
        cmocka_unit_test(test_policies_compile),
        cmocka_unit_test(test_build_errors),
        cmocka_unit_test(test_packed_copy_for_config_dump),
        cmocka_unit_test(test_endpoints_from_config),
        cmocka_unit_test(test_sidecar_endpoints),
        cmocka_unit_test(test_regex_anchoring_and_limits),
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_publish_acquire),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
