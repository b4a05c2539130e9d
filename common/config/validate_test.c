/* common/config/validate_test.c — SPEC.md's validation rules with their exact messages, the
 * defaults of config.proto filled in, warnings, and the validation context (services and
 * endpoints known outside the set).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/config/config.h"
#include "common/config/test_util.h"

#define SVC "kind: Service\nname: s\nport: 80\n---\n" /* 4 lines */
/* A Route on s; rules follow from line 9. */
#define ROUTE SVC "kind: Route\nname: r\nservice: s\nrules:\n"

static void test_names(void **state)
{
    static const char *const want[] = {
        "t.yaml:2:1: name: must be a DNS-1123 label (lowercase letters, digits and '-', starting "
        "and ending with a letter or digit, at most 63 characters), not \"Reviews\"",
        "t.yaml:3:1: namespace: must be a DNS-1123 label (lowercase letters, digits and '-', "
        "starting and ending with a letter or digit, at most 63 characters), not \"-x\"",
        "t.yaml:6:1: name: is required",
        "t.yaml:9:1: name: must be a DNS-1123 label (lowercase letters, digits and '-', starting "
        "and ending with a letter or digit, at most 63 characters), not "
        "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\"",
        NULL,
    };
    (void)state;
    tu_expect_errors("kind: Service\nname: Reviews\nnamespace: -x\nport: 80\n---\n"
                     "kind: Service\nport: 80\n---\nname: "
                     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
                     "kind: Service\nport: 80\n",
                     want);
}

static void test_duplicate_documents(void **state)
{
    static const char *const want[] = {
        "t.yaml:6:1: name: duplicate Service \"default/s\" (first defined at line 2)",
        NULL,
    };
    (void)state;
    tu_expect_errors("kind: Service\nname: s\nport: 80\n---\nkind: Service\nname: s\nport: 81\n"
                     "---\nkind: Service\nname: s\nnamespace: other\nport: 80\n",
                     want);
    /* Same name, different kinds: fine. */
    tu_free(tu_load_ok(ROUTE "  - destinations: [{version: v1}]\n---\n"
                             "kind: CircuitBreaker\nname: s\nservice: s\n"));
}

static void test_service_rules(void **state)
{
    static const char *const want[] = {
        "t.yaml:1:1: port: is required",
        "t.yaml:3:12: hosts[1]: must not be empty",
        "t.yaml:4:1: vip: must be an IPv4 or IPv6 address, not \"10.0.0.256\"",
        "t.yaml:6:6: endpoints[0].address: must be \"IPv4:port\" or \"[IPv6]:port\" (the port is "
        "missing), not \"10.0.0.1\"",
        "t.yaml:6:5: endpoints[0].version: is required",
        "t.yaml:7:6: endpoints[1].address: must be \"IPv4:port\" or \"[IPv6]:port\" (put an IPv6 "
        "address in brackets), not \"::1:80\"",
        "t.yaml:7:25: endpoints[1].version: must be 1 to 63 letters, digits, '-', '_' or '.', "
        "starting and ending with a letter or digit, not \"v1-\"",
        "t.yaml:8:6: endpoints[2].address: must end with a port between 1 and 65535, not "
        "\"1.2.3.4:0\"",
        "t.yaml:8:39: endpoints[2].labels: label names must not be empty",
        "t.yaml:8:55: endpoints[2].labels.b: must not be empty",
        "t.yaml:9:6: endpoints[3].address: has an invalid IPv6 address, not \"[::g]:80\"",
        "t.yaml:10:6: endpoints[4].address: has an invalid IPv4 address, not \"host:80\"",
        "t.yaml:11:6: endpoints[5].address: must be \"IPv4:port\" or \"[IPv6]:port\", not "
        "\"[::1]\"",
        "t.yaml:13:6: endpoints[7].address: duplicate endpoint \"127.0.0.1:9\" (also endpoints[6])",
        NULL,
    };
    (void)state;
    tu_expect_errors("kind: Service\nname: s\nhosts: [a, \"\"]\nvip: 10.0.0.256\nendpoints:\n"
                     "  - {address: 10.0.0.1}\n"
                     "  - {address: \"::1:80\", version: v1-}\n"
                     "  - {address: 1.2.3.4:0, version: v1, labels: {\"\": a, b: \"\"}}\n"
                     "  - {address: \"[::g]:80\", version: v1}\n"
                     "  - {address: host:80, version: v1}\n"
                     "  - {address: \"[::1]\", version: v1}\n"
                     "  - {address: 127.0.0.1:9, version: v1}\n"
                     "  - {address: 127.0.0.1:9, version: v2}\n",
                     want);
    tu_expect_error("kind: Service\nname: s\nport: 65536\n",
                    "t.yaml:3:1: port: must be between 1 and 65535, not 65536");
    tu_expect_error("kind: Service\nname: s\nport: 0\n",
                    "t.yaml:3:1: port: must be between 1 and 65535, not 0");
    tu_free(tu_load_ok("kind: Service\nname: s\nport: 65535\nvip: \"::ffff:10.0.0.1\"\n"
                       "endpoints: [{address: \"[fe80::1]:1\", version: v1.2_rc-3}]\n"));
}

/* `sidecar` changes nothing about an endpoint's rules: true or false, its address and version
 * are checked as any endpoint's, and one address is still one endpoint. */
static void test_sidecar_endpoints(void **state)
{
    static const char *const want[] = {
        "t.yaml:5:5: endpoints[0].address: is required",
        "t.yaml:5:5: endpoints[0].version: is required",
        "t.yaml:7:6: endpoints[2].address: duplicate endpoint \"10.0.0.2:80\" (also "
        "endpoints[1])",
        NULL,
    };
    Remora__V1__ConfigSet *set;
    (void)state;
    tu_expect_errors("kind: Service\nname: s\nport: 80\nendpoints:\n"
                     "  - {sidecar: true}\n"
                     "  - {address: 10.0.0.2:80, version: v1, sidecar: true}\n"
                     "  - {address: 10.0.0.2:80, version: v1, sidecar: false}\n",
                     want);
    set = tu_load_ok("kind: Service\nname: s\nport: 80\nendpoints:\n"
                     "  - {address: 10.0.0.1:15006, version: v1, sidecar: true}\n"
                     "  - {address: 10.0.0.2:80, version: v1, sidecar: false}\n"
                     "  - {address: 10.0.0.3:80, version: v2}\n");
    /* Validation fills no default: an absent flag stays absent (false). */
    assert_true(set->services[0]->endpoints[0]->sidecar);
    assert_true(set->services[0]->endpoints[1]->has_sidecar);
    assert_false(set->services[0]->endpoints[1]->sidecar);
    assert_false(set->services[0]->endpoints[2]->has_sidecar);
    assert_false(set->services[0]->endpoints[2]->sidecar);
    tu_free(set);
}

static void test_route_references(void **state)
{
    (void)state;
    tu_expect_error(SVC "kind: Route\nname: r\nrules: [{destinations: [{version: v1}]}]\n",
                    "t.yaml:5:1: service: is required");
    tu_expect_error(SVC "kind: Route\nname: r\nservice: z\nrules: [{destinations: [{version: "
                        "v1}]}]\n",
                    "t.yaml:7:1: service: unknown service \"z\" in namespace \"default\"");
    tu_expect_error("kind: Service\nname: reviews\nport: 80\n---\n"
                    "kind: Route\nname: r\nservice: reveiws\nrules: [{destinations: [{version: "
                    "v1}]}]\n",
                    "t.yaml:7:1: service: unknown service \"reveiws\" in namespace \"default\" "
                    "(did you mean \"reviews\"?)");
    /* A service of the same name in another namespace does not count. */
    tu_expect_error(SVC "kind: Route\nname: r\nnamespace: other\nservice: s\n"
                        "rules: [{destinations: [{version: v1}]}]\n",
                    "t.yaml:8:1: service: unknown service \"s\" in namespace \"other\" (there is "
                    "one in namespace \"default\"; references stay within a namespace)");
}

static void test_rules_and_destinations(void **state)
{
    static const char *const want[] = {
        "t.yaml:10:5: rules[0].destinations: must have at least one destination",
        "t.yaml:12:11: rules[1].destinations[0].weight: is required when a rule has several "
        "destinations",
        "t.yaml:13:12: rules[1].destinations[1].version: duplicate version \"v1\" (also "
        "destinations[0])",
        "t.yaml:14:5: rules[2].destinations: weights must not all be 0",
        "t.yaml:18:9: rules[3].destinations[1].version: is required",
        "t.yaml:16:5: rules[3].destinations: weights add up to 1000001; the sum must be at most "
        "1000000",
        "t.yaml:19:5: rules[4].name: duplicate rule name \"a\" (also rules[0])",
        "t.yaml:21:5: rules[5].name: must not be empty (leave it out instead)",
        NULL,
    };
    (void)state;
    tu_expect_error(ROUTE "", "t.yaml:8:1: rules: must have at least one rule");
    tu_expect_error(ROUTE "  []\n", "t.yaml:8:1: rules: must have at least one rule");
    tu_expect_errors(ROUTE "  - name: a\n    destinations: []\n"
                           "  - destinations:\n        - {version: v1}\n"
                           "        - {version: v1, weight: 1}\n"
                           "  - destinations:\n      - {version: v1, weight: 0}\n"
                           "  - destinations:\n      - {version: v1, weight: 1000000}\n"
                           "      - {weight: 1}\n"
                           "  - name: a\n    destinations: [{version: v1}]\n"
                           "  - name: \"\"\n    destinations: [{version: v1}]\n",
                     want);
}

static void test_match_rules(void **state)
{
    static const char *const want[] = {
        "t.yaml:13:9: rules[0].match.headers.x y: \"x y\" is not a valid name (letters, digits and "
        "!#$%&'*+-.^_`|~ only)",
        "t.yaml:14:9: rules[0].match.headers.x-b: must set one of exact, prefix, suffix, regex, "
        "present, absent",
        "t.yaml:15:9: rules[0].match.headers.x-c: must set one of exact, prefix, suffix, regex, "
        "present, absent",
        "t.yaml:16:15: rules[0].match.headers.x-d.present: must be true when given (to require "
        "that it is missing, use absent: true)",
        "t.yaml:17:15: rules[0].match.headers.x-e.absent: must be true when given (to require that "
        "it is there, use present: true)",
        "t.yaml:18:15: rules[0].match.headers.x-f.regex: invalid regex: quantifier does not follow "
        "a repeatable item (at offset 0)",
        "t.yaml:19:9: rules[0].match.headers.x-a: duplicate header name \"x-a\" (header names "
        "ignore case)",
        "t.yaml:20:17: rules[0].match.cookies.a;b: \"a;b\" is not a valid name (letters, digits "
        "and !#$%&'*+-.^_`|~ only)",
        "t.yaml:21:14: rules[0].match.path.exact: must start with \"/\"",
        "t.yaml:22:7: rules[0].match.method: must be one of GET, HEAD, POST, PUT, DELETE, CONNECT, "
        "OPTIONS, TRACE, PATCH (upper case), not \"get\"",
        "t.yaml:26:14: rules[1].match.path.prefix: must start with \"/\"",
        "t.yaml:29:14: rules[2].match.path.regex: invalid regex: missing closing parenthesis (at "
        "offset 2)",
        "t.yaml:32:7: rules[3].match.path: must set one of exact, prefix, regex",
        NULL,
    };
    (void)state;
    tu_expect_errors(ROUTE "  - destinations: [{version: v1}]\n"
                           "    match:\n"
                           "      headers:\n"
                           "        X-A: {exact: a}\n"
                           "        x y: {exact: a}\n"
                           "        x-b: {}\n"
                           "        x-c:\n"
                           "        x-d: {present: false}\n"
                           "        x-e: {absent: false}\n"
                           "        x-f: {regex: \"*a\"}\n"
                           "        x-a: {prefix: b}\n"
                           "      cookies: {\"a;b\": {exact: c}}\n"
                           "      path: {exact: a}\n"
                           "      method: get\n"
                           "      query: {\"a b\": {exact: c}}\n"
                           "  - destinations: [{version: v1}]\n"
                           "    match:\n"
                           "      path: {prefix: api}\n"
                           "  - destinations: [{version: v1}]\n    match:\n"
                           "      path: {regex: \"a(\"}\n"
                           "  - destinations: [{version: v1}]\n    match:\n"
                           "      path: {}\n",
                     want);
}

static void test_header_names_lowercased(void **state)
{
    Remora__V1__ConfigSet *set =
        tu_load_ok(ROUTE "  - destinations: [{version: v1}]\n"
                         "    match: {headers: {X-User-Group: {exact: Beta}}, method: PATCH}\n"
                         "    stickyOn: {header: X-User-Id}\n");
    const Remora__V1__Rule *rule;
    (void)state;
    rule = set->routes[0]->rules[0];
    assert_string_equal(rule->match->headers[0]->key, "x-user-group");
    assert_string_equal(rule->match->headers[0]->value->exact, "Beta"); /* values keep case */
    assert_string_equal(rule->sticky_on->header, "x-user-id");
    tu_free(set);
}

static void test_sticky_and_mirror(void **state)
{
    static const char *const want[] = {
        "t.yaml:10:5: rules[0].stickyOn: must set one of header, cookie",
        "t.yaml:11:5: rules[0].mirror: must set one of version, service",
        "t.yaml:11:14: rules[0].mirror.percent: must be between 0 and 100, not 101",
        "t.yaml:13:16: rules[1].stickyOn.cookie: must not be empty",
        "t.yaml:14:27: rules[1].mirror.service: \"version\" and \"service\" are both set; set only "
        "one",
        "t.yaml:16:16: rules[2].stickyOn.header: \"a b\" is not a valid name (letters, digits and "
        "!#$%&'*+-.^_`|~ only)",
        "t.yaml:17:14: rules[2].mirror.service: \"version\" and \"service\" are both set; set only "
        "one",
        "t.yaml:17:29: rules[2].mirror.version: must be 1 to 63 letters, digits, '-', '_' or '.', "
        "starting and ending with a letter or digit, not \"-v\"",
        "t.yaml:17:14: rules[2].mirror.service: unknown service \"nope\" in namespace \"default\"",
        NULL,
    };
    (void)state;
    tu_expect_errors(ROUTE "  - destinations: [{version: v1}]\n"
                           "    stickyOn: {}\n"
                           "    mirror: {percent: 101}\n"
                           "  - destinations: [{version: v1}]\n"
                           "    stickyOn: {cookie: \"\"}\n"
                           "    mirror: {version: v2, service: s}\n"
                           "  - destinations: [{version: v1}]\n"
                           "    stickyOn: {header: a b}\n"
                           "    mirror: {service: nope, version: -v}\n",
                     want);
}

static void test_timeouts_and_retries(void **state)
{
    static const char *const want[] = {
        "t.yaml:10:5: rules[0].timeout: must be greater than 0",
        "t.yaml:12:7: rules[0].retries.attempts: must be between 0 and 10, not 11",
        "t.yaml:13:7: rules[0].retries.perTryTimeout: must be greater than 0",
        "t.yaml:14:17: rules[0].retries.retryOn[0]: unknown retry condition \"5XX\" (did you mean "
        "\"5xx\"?)",
        "t.yaml:14:29: rules[0].retries.retryOn[2]: duplicate retry condition \"reset\" (also "
        "retryOn[1])",
        "t.yaml:14:36: rules[0].retries.retryOn[3]: unknown retry condition \"timeout\" (must be "
        "one of connect-failure, reset, gateway-error, 5xx, retriable-status-codes)",
        "t.yaml:15:30: rules[0].retries.retriableStatusCodes[0]: must be between 100 and 599, not "
        "99",
        "t.yaml:15:39: rules[0].retries.retriableStatusCodes[2]: duplicate status code 503 (also "
        "retriableStatusCodes[1])",
        "t.yaml:16:17: rules[0].retries.backoff.base: must be greater than 0",
        "t.yaml:17:16: rules[0].retries.budget.percent: must be between 0 and 100, not 101",
        "t.yaml:20:27: rules[1].retries.backoff.max: must be at least base (1s), not 100ms",
        NULL,
    };
    (void)state;
    tu_expect_errors(ROUTE "  - destinations: [{version: v1}]\n"
                           "    timeout: 0s\n"
                           "    retries:\n"
                           "      attempts: 11\n"
                           "      perTryTimeout: 0ms\n"
                           "      retryOn: [5XX, reset, reset, timeout]\n"
                           "      retriableStatusCodes: [99, 503, 503]\n"
                           "      backoff: {base: 0s}\n"
                           "      budget: {percent: 101}\n"
                           "  - destinations: [{version: v1}]\n"
                           "    retries:\n"
                           "      backoff: {base: 1s, max: 100ms}\n",
                     want);
}

static void test_circuit_breaker_rules(void **state)
{
    static const char *const want[] = {
        "t.yaml:5:1: service: is required",
        "t.yaml:8:10: limits.maxConnections: must be between 1 and 1000000, not 0",
        "t.yaml:8:44: limits.maxRequests: must be between 1 and 1000000, not 1000001",
        "t.yaml:10:3: outlierDetection.consecutive5xx: must be between 0 and 1000, not 1001",
        "t.yaml:11:3: outlierDetection.interval: must be greater than 0",
        "t.yaml:12:3: outlierDetection.maxEjectionPercent: must be between 0 and 100, not 101",
        "t.yaml:16:1: service: unknown service \"t\" in namespace \"default\"",
        /* one message split over two literals: */
        // NOLINTNEXTLINE(bugprone-suspicious-missing-comma)
        "t.yaml:17:1: version: must be 1 to 63 letters, digits, '-', '_' or '.', starting and "
        "ending with a letter or digit, not \"v/2\"",
        NULL,
    };
    (void)state;
    tu_expect_errors(SVC "kind: CircuitBreaker\nname: a\n\n"
                         "limits: {maxConnections: 0, maxRetries: 0, maxRequests: 1000001}\n"
                         "outlierDetection:\n"
                         "  consecutive5xx: 1001\n"
                         "  interval: 0s\n"
                         "  maxEjectionPercent: 101\n"
                         "---\n"
                         "kind: CircuitBreaker\n"
                         "name: b\n"
                         "service: t\n"
                         "version: v/2\n"
                         "limits: {maxPendingRequests: 1000000, maxRetries: 1000000}\n",
                     want);
}

static void test_circuit_breaker_overlap(void **state)
{
    static const char *const want[] = {
        "t.yaml:17:1: service: CircuitBreaker \"a\" at line 6 already covers service \"s\" version "
        "\"v1\"; use one CircuitBreaker per service and version",
        "t.yaml:26:1: service: CircuitBreaker \"c\" at line 21 already covers service \"s\" (all "
        "versions); use one CircuitBreaker per service and version",
        NULL,
    };
    (void)state;
    tu_expect_errors(SVC "kind: CircuitBreaker\nname: a\nservice: s\nversion: v1\n---\n"
                         "kind: CircuitBreaker\nname: b\nservice: s\nversion: v2\n---\n"
                         "kind: CircuitBreaker\nname: dup\nservice: s\nversion: v1\n---\n"
                         "kind: CircuitBreaker\nname: c\nservice: s\n---\n"
                         "kind: CircuitBreaker\nname: d\nservice: s\n",
                     want);
}

/* Every default documented in config.proto is filled in by validation. */
static void test_defaults(void **state)
{
    Remora__V1__ConfigSet *set = tu_load_ok(ROUTE "  - destinations: [{version: v1}]\n"
                                                  "    mirror: {version: v2}\n"
                                                  "    retries: {}\n"
                                                  "  - destinations: [{version: v1}]\n"
                                                  "    retries: {backoff: {base: 1s}}\n"
                                                  "---\n"
                                                  "kind: CircuitBreaker\nname: c\nservice: s\n");
    const Remora__V1__Rule *rule;
    const Remora__V1__RetryPolicy *rp;
    const Remora__V1__CircuitBreaker *cb;
    (void)state;

    assert_string_equal(set->services[0]->namespace_, "default");
    assert_string_equal(set->routes[0]->namespace_, "default");
    assert_string_equal(set->circuit_breakers[0]->namespace_, "default");

    rule = set->routes[0]->rules[0];
    assert_true(rule->destinations[0]->has_weight); /* a lone destination takes all traffic */
    assert_int_equal(rule->destinations[0]->weight, 1);
    assert_true(rule->mirror->has_percent);
    assert_int_equal(rule->mirror->percent, 100);
    assert_int_equal(rule->timeout->millis, 15000);
    rp = rule->retries;
    assert_true(rp->has_attempts);
    assert_int_equal(rp->attempts, 2);
    assert_null(rp->per_try_timeout); /* no default: the route timeout bounds the whole */
    assert_int_equal(rp->n_retry_on, 0);
    assert_int_equal(rp->backoff->base_->millis, 25);
    assert_int_equal(rp->backoff->max->millis, 250);
    assert_true(rp->budget->has_percent);
    assert_int_equal(rp->budget->percent, 20);
    assert_true(rp->budget->has_min_per_second);
    assert_int_equal(rp->budget->min_per_second, 10);
    /* An explicit base above the default max raises the max with it. */
    rp = set->routes[0]->rules[1]->retries;
    assert_int_equal(rp->backoff->base_->millis, 1000);
    assert_int_equal(rp->backoff->max->millis, 1000);

    cb = set->circuit_breakers[0];
    assert_null(cb->version);
    assert_int_equal(cb->limits->max_connections, 1024);
    assert_int_equal(cb->limits->max_pending_requests, 1024);
    assert_int_equal(cb->limits->max_requests, 1024);
    assert_int_equal(cb->limits->max_retries, 1024);
    assert_true(cb->outlier_detection->has_consecutive_5xx);
    assert_int_equal(cb->outlier_detection->consecutive_5xx, 5);
    assert_int_equal(cb->outlier_detection->consecutive_gateway_errors, 3);
    assert_int_equal(cb->outlier_detection->interval->millis, 10000);
    assert_int_equal(cb->outlier_detection->base_ejection_time->millis, 30000);
    assert_int_equal(cb->outlier_detection->max_ejection_percent, 10);
    tu_free(set);
}

/* Codes without the condition turn it on (SPEC.md's own example does this). */
static void test_status_codes_enable_condition(void **state)
{
    Remora__V1__ConfigSet *set =
        tu_load_ok(ROUTE "  - destinations: [{version: v1}]\n"
                         "    retries: {retryOn: [reset], retriableStatusCodes: [409]}\n");
    const Remora__V1__RetryPolicy *rp;
    (void)state;
    rp = set->routes[0]->rules[0]->retries;
    assert_int_equal(rp->n_retry_on, 2);
    assert_string_equal(rp->retry_on[0], "reset");
    assert_string_equal(rp->retry_on[1], "retriable-status-codes");
    tu_free(set);
}

static void test_warnings(void **state)
{
    static const rm_config_endpoint_ref_t eps[] = {{NULL, "s", "v1"}, {"default", "s", "v2"}};
    rm_config_context_t ctx = {.endpoints_known = 1, .endpoints = eps, .n_endpoints = 2};
    static const char *const want[] = {
        "t.yaml:12:10: rules[0].destinations[2].version: no endpoint of service \"s\" has version "
        "\"v3\"; its share of traffic will get 503 no healthy upstream",
        "t.yaml:16:7: rules[1].retries.perTryTimeout: perTryTimeout (20s) is not shorter than the "
        "rule's timeout (15s), so a retry never has time to run",
        "t.yaml:19:7: rules[2].retries.retryOn: \"retriable-status-codes\" is listed but "
        "retriableStatusCodes is empty, so it never matches",
        NULL,
    };
    static const char *const none[] = {NULL};
    (void)state;
    tu_expect_warnings(ROUTE "  - destinations:\n"
                             "      - {version: v1, weight: 1}\n"
                             "      - {version: v2, weight: 1}\n"
                             "      - {version: v3, weight: 1}\n"
                             "      - {version: v4, weight: 0}\n"
                             "  - destinations: [{version: v1}]\n"
                             "    retries:\n"
                             "      perTryTimeout: 20s\n"
                             "  - destinations: [{version: v1}]\n"
                             "    retries:\n"
                             "      retryOn: [retriable-status-codes]\n",
                       &ctx, want);
    /* Endpoints unknown (no context): no endpoint warnings. */
    tu_expect_warnings(ROUTE "  - destinations: [{version: v9}]\n", NULL, none);
    /* The set's own static endpoints count as known endpoints. */
    ctx.n_endpoints = 0;
    tu_expect_warnings("kind: Service\nname: s\nport: 80\nendpoints: [{address: 1.2.3.4:80, "
                       "version: v9}]\n---\nkind: Route\nname: r\nservice: s\nrules:\n"
                       "  - destinations: [{version: v9}]\n",
                       &ctx, none);
}

static void test_context_services(void **state)
{
    static const rm_config_service_ref_t svcs[] = {{NULL, "stored"}, {"prod", "api"}};
    rm_config_context_t ctx = {.services = svcs, .n_services = 2};
    static const char *const want[] = {
        "t.yaml:3:1: service: unknown service \"api\" in namespace \"default\" (there is one in "
        "namespace \"prod\"; references stay within a namespace)",
        NULL,
    };
    rm_config_diags_t warns = {0};
    (void)state;
    tu_free(tu_load_ok_ctx("kind: Route\nname: r\nservice: stored\n"
                           "rules: [{destinations: [{version: v1}], mirror: {service: stored}}]\n"
                           "---\nkind: CircuitBreaker\nname: c\nnamespace: prod\nservice: api\n",
                           &ctx, &warns));
    assert_int_equal(warns.count, 0);
    tu_expect_errors_ctx("kind: Route\nname: r\nservice: api\nrules: [{destinations: [{version: "
                         "v1}]}]\n",
                         &ctx, want);
}

/* A set without a source map (built in code, or a store copy) names documents instead. */
static void test_validate_without_positions(void **state)
{
    Remora__V1__ConfigSet set = REMORA__V1__CONFIG_SET__INIT;
    Remora__V1__Route route = REMORA__V1__ROUTE__INIT, *routes[1] = {&route};
    Remora__V1__Service svc = REMORA__V1__SERVICE__INIT, *svcs[1] = {&svc};
    rm_config_diags_t errs = {0};
    char line[256];
    (void)state;
    route.name = "r";
    route.service = "s";
    svc.name = "s";
    svc.has_port = 1;
    svc.port = 80;
    set.n_routes = 1;
    set.routes = routes;
    set.n_services = 1;
    set.services = svcs;
    assert_int_equal(rm_config_validate(&set, NULL, &errs, NULL), -EINVAL);
    assert_int_equal(errs.count, 1);
    rm_config_diag_format(&errs.items[0], line, sizeof(line));
    assert_string_equal(line, "Route default/r: rules: must have at least one rule");
    assert_string_equal(route.kind, "Route"); /* filled in */
    free(route.kind);
    free(route.namespace_);
    free(svc.kind);
    free(svc.namespace_);
    rm_config_diags_free(&errs);
}

/* Validation is idempotent, and errors may be discarded (NULL) by callers that only need rc. */
static void test_validate_twice_and_null_errors(void **state)
{
    Remora__V1__ConfigSet *set = tu_load_ok(ROUTE "  - destinations: [{version: v1}]\n"
                                                  "    match: {headers: {X-A: {exact: a}}}\n"
                                                  "    retries: {retriableStatusCodes: [503]}\n");
    size_t len = protobuf_c_message_get_packed_size(&set->base);
    uint8_t *before = malloc(len), *after = malloc(len);
    Remora__V1__ConfigSet *bad = NULL;
    static const char text[] = "kind: Service\nname: s\nport: 0\n";
    (void)state;
    assert_non_null(before);
    assert_non_null(after);
    protobuf_c_message_pack(&set->base, before);
    assert_int_equal(rm_config_validate(set, NULL, NULL, NULL), 0);
    assert_int_equal(protobuf_c_message_get_packed_size(&set->base), len);
    protobuf_c_message_pack(&set->base, after);
    assert_memory_equal(before, after, len);
    assert_int_equal(rm_config_load("t.yaml", text, strlen(text), NULL, &bad, NULL, NULL), -EINVAL);
    assert_null(bad);
    assert_int_equal(rm_config_parse("t.yaml", "kind: [", 7, &bad, NULL), -EINVAL);
    assert_null(bad);
    free(before);
    free(after);
    tu_free(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_duplicate_documents),
        cmocka_unit_test(test_service_rules),
        cmocka_unit_test(test_sidecar_endpoints),
        cmocka_unit_test(test_route_references),
        cmocka_unit_test(test_rules_and_destinations),
        cmocka_unit_test(test_match_rules),
        cmocka_unit_test(test_header_names_lowercased),
        cmocka_unit_test(test_sticky_and_mirror),
        cmocka_unit_test(test_timeouts_and_retries),
        cmocka_unit_test(test_circuit_breaker_rules),
        cmocka_unit_test(test_circuit_breaker_overlap),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_status_codes_enable_condition),
        cmocka_unit_test(test_warnings),
        cmocka_unit_test(test_context_services),
        cmocka_unit_test(test_validate_without_positions),
        cmocka_unit_test(test_validate_twice_and_null_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
