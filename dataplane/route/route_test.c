/* dataplane/route/route_test.c — rule matching (every kind, positive and negative), rule order,
 * weighted and sticky version choice, mirror sampling, the default rule, endpoint picking. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "dataplane/route/route.h"
#include "dataplane/snapshot/hash.h"
#include "dataplane/snapshot/snapshot.h"
#include "dataplane/snapshot/testutil.h"

#define N_DECISIONS 100000

/* ---- helpers ---------------------------------------------------------------------------- */

/* A request under construction: slices point into string literals, as they would into the
 * proxy's read buffer. */
typedef struct req {
    rm_header_view_t h[16];
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
    assert_true(r->v.nheaders < 16);
    rm_header_view_t *h = &r->h[r->v.nheaders++];
    h->name = name;
    h->name_len = strlen(name);
    h->value = value;
    h->value_len = strlen(value);
}

/* Builds a snapshot of set with its static endpoints, frees set, fails the test on error. */
static rm_snapshot_t *build(Remora__V1__ConfigSet *set)
{
    Remora__V1__ResolvedEndpoint **eps;
    size_t n;
    assert_int_equal(rm_snapshot_endpoints_from_config(set, &eps, &n), 0);
    char err[256];
    rm_snapshot_t *s = rm_snapshot_build(set, eps, n, NULL, 1, err, sizeof(err));
    rm_snapshot_endpoints_free(eps, n);
    tu_set_free(set);
    if (s == NULL)
        fail_msg("build: %s", err);
    return s;
}

/* A service "svc" with one endpoint in each of v1, v2, v3 and one route "r". */
static Remora__V1__ConfigSet *base_config(Remora__V1__Route **route)
{
    Remora__V1__ConfigSet *set = tu_set_new();
    Remora__V1__Service *svc = tu_service(set, "svc", NULL, 8080);
    tu_service_endpoint(svc, "10.0.0.1:80", "v1");
    tu_service_endpoint(svc, "10.0.0.2:80", "v2");
    tu_service_endpoint(svc, "10.0.0.3:80", "v3");
    *route = tu_route(set, "r", NULL, "svc");
    return set;
}

/* Name of the rule a request lands on ("" for the default rule). */
static const char *decide_rule(const rm_service_t *svc, const req_t *r)
{
    rm_route_decision_t d;
    int rc = rm_route_decide(svc, &r->v, 0, &d);
    assert_true(rc == 0 || rc == RM_ROUTE_NO_RULE);
    assert_true((rc == RM_ROUTE_NO_RULE) == (d.rule == svc->default_rule));
    return d.rule_name;
}

/* A snapshot whose rule "hit" has the single condition added by add(), then a catch-all. */
typedef void (*cond_fn)(Remora__V1__Rule *rule);

static rm_snapshot_t *one_condition(cond_fn add)
{
    Remora__V1__Route *route;
    Remora__V1__ConfigSet *set = base_config(&route);
    Remora__V1__Rule *hit = tu_rule(route, "hit");
    add(hit);
    tu_dest(hit, "v2", 1);
    return build(set);
}

/* |count - n p| within 3 sigma of the binomial; exact when p is 0 or 1. */
static void assert_share(uint64_t count, uint64_t n, double p, const char *what)
{
    double mean = (double)n * p;
    double sigma = sqrt((double)n * p * (1.0 - p));
    double dev = fabs((double)count - mean);
    if (p == 0.0 || p == 1.0) {
        if ((double)count != mean)
            fail_msg("%s: %llu of %llu, expected exactly %.0f", what, (unsigned long long)count,
                     (unsigned long long)n, mean);
        return;
    }
    if (dev > 3.0 * sigma)
        fail_msg("%s: %llu of %llu, expected %.1f +- %.1f (3 sigma)", what,
                 (unsigned long long)count, (unsigned long long)n, mean, 3.0 * sigma);
}

/* ---- headers ---------------------------------------------------------------------------- */

static void c_hdr_exact(Remora__V1__Rule *r)
{
    tu_match_header(r, "X-User-Group", TU_EXACT, "beta");
}
static void c_hdr_prefix(Remora__V1__Rule *r)
{
    tu_match_header(r, "x-user-group", TU_PREFIX, "be");
}
static void c_hdr_suffix(Remora__V1__Rule *r)
{
    tu_match_header(r, "x-user-group", TU_SUFFIX, "ta");
}
static void c_hdr_regex(Remora__V1__Rule *r)
{
    tu_match_header(r, "x-user-group", TU_REGEX, "b[a-z]+a");
}
static void c_hdr_present(Remora__V1__Rule *r)
{
    tu_match_header(r, "x-user-group", TU_PRESENT, NULL);
}
static void c_hdr_absent(Remora__V1__Rule *r)
{
    tu_match_header(r, "x-user-group", TU_ABSENT, NULL);
}

/* Expects "hit" when the request carries header values vals (NULL-terminated), else default. */
static void check_hdr(const rm_service_t *svc, const char *const *vals, bool want_hit)
{
    req_t r;
    req_init(&r, "GET", "/");
    req_hdr(&r, "accept", "*/*");
    for (size_t i = 0; vals[i] != NULL; i++)
        req_hdr(&r, (i % 2) ? "x-user-group" : "X-USER-Group", vals[i]);
    const char *got = decide_rule(svc, &r);
    if (strcmp(got, want_hit ? "hit" : "") != 0)
        fail_msg("values [%s%s%s]: got rule \"%s\", want %s", vals[0] ? vals[0] : "",
                 vals[0] && vals[1] ? ", " : "", vals[0] && vals[1] ? vals[1] : "", got,
                 want_hit ? "hit" : "none");
}

static void test_header_kinds(void **state)
{
    (void)state;
    const char *none[] = {NULL};
    const char *beta[] = {"beta", NULL};
    const char *betas[] = {"beta2", NULL};
    const char *alpha[] = {"alpha", NULL};
    const char *Beta[] = {"Beta", NULL};
    const char *empty[] = {"", NULL};
    const char *multi[] = {"alpha", "beta", NULL}; /* second occurrence matches */
    const char *pre[] = {"xbeta", NULL};

    rm_snapshot_t *s = one_condition(c_hdr_exact);
    const rm_service_t *svc = rm_snapshot_service_at(s, 0);
    check_hdr(svc, beta, true);
    check_hdr(svc, multi, true);
    check_hdr(svc, betas, false);
    check_hdr(svc, Beta, false); /* values are case-sensitive */
    check_hdr(svc, alpha, false);
    check_hdr(svc, none, false);
    rm_snapshot_unref(s);

    s = one_condition(c_hdr_prefix);
    svc = rm_snapshot_service_at(s, 0);
    check_hdr(svc, beta, true);
    check_hdr(svc, betas, true);
    check_hdr(svc, multi, true);
    check_hdr(svc, pre, false);
    check_hdr(svc, empty, false);
    check_hdr(svc, none, false);
    rm_snapshot_unref(s);

    s = one_condition(c_hdr_suffix);
    svc = rm_snapshot_service_at(s, 0);
    check_hdr(svc, beta, true);
    check_hdr(svc, pre, true);
    check_hdr(svc, betas, false);
    check_hdr(svc, alpha, false); /* "alpha" ends in "ha" */
    check_hdr(svc, none, false);
    rm_snapshot_unref(s);

    s = one_condition(c_hdr_regex);
    svc = rm_snapshot_service_at(s, 0);
    check_hdr(svc, beta, true);
    check_hdr(svc, multi, true);
    check_hdr(svc, pre, false);   /* anchored at the start */
    check_hdr(svc, betas, false); /* anchored at the end */
    check_hdr(svc, none, false);
    rm_snapshot_unref(s);

    s = one_condition(c_hdr_present);
    svc = rm_snapshot_service_at(s, 0);
    check_hdr(svc, beta, true);
    check_hdr(svc, empty, true); /* present with an empty value is present */
    check_hdr(svc, none, false);
    rm_snapshot_unref(s);

    s = one_condition(c_hdr_absent);
    svc = rm_snapshot_service_at(s, 0);
    check_hdr(svc, none, true);
    check_hdr(svc, beta, false);
    check_hdr(svc, empty, false);
    rm_snapshot_unref(s);
}

static void test_header_name_boundaries(void **state)
{
    (void)state;
    rm_snapshot_t *s = one_condition(c_hdr_exact);
    const rm_service_t *svc = rm_snapshot_service_at(s, 0);
    req_t r;
    req_init(&r, "GET", "/");
    req_hdr(&r, "x-user-grou", "beta");
    req_hdr(&r, "x-user-groups", "beta");
    assert_string_equal(decide_rule(svc, &r), "");
    /* A name slice that is not NUL-terminated. */
    req_init(&r, "GET", "/");
    r.h[0] = (rm_header_view_t){"x-user-groupXX", 12, "betaYY", 4};
    r.v.nheaders = 1;
    assert_string_equal(decide_rule(svc, &r), "hit");
    rm_snapshot_unref(s);
}

/* ---- cookies ---------------------------------------------------------------------------- */

static void c_ck_exact(Remora__V1__Rule *r)
{
    tu_match_cookie(r, "ab", TU_EXACT, "b");
}
static void c_ck_prefix(Remora__V1__Rule *r)
{
    tu_match_cookie(r, "ab", TU_PREFIX, "gr");
}
static void c_ck_suffix(Remora__V1__Rule *r)
{
    tu_match_cookie(r, "ab", TU_SUFFIX, "up");
}
static void c_ck_regex(Remora__V1__Rule *r)
{
    tu_match_cookie(r, "ab", TU_REGEX, "[0-9]+");
}
static void c_ck_present(Remora__V1__Rule *r)
{
    tu_match_cookie(r, "ab", TU_PRESENT, NULL);
}
static void c_ck_absent(Remora__V1__Rule *r)
{
    tu_match_cookie(r, "ab", TU_ABSENT, NULL);
}

/* Cookie header values, NULL-terminated; each one is a separate Cookie header. */
static void check_ck(const rm_service_t *svc, const char *const *cookies, bool want_hit)
{
    req_t r;
    req_init(&r, "GET", "/");
    req_hdr(&r, "x-other", "ab=b");
    for (size_t i = 0; cookies[i] != NULL; i++)
        req_hdr(&r, (i % 2) ? "cookie" : "Cookie", cookies[i]);
    const char *got = decide_rule(svc, &r);
    if (strcmp(got, want_hit ? "hit" : "") != 0)
        fail_msg("cookies [%s%s%s]: got rule \"%s\", want %s", cookies[0] ? cookies[0] : "",
                 cookies[0] && cookies[1] ? " | " : "", cookies[0] && cookies[1] ? cookies[1] : "",
                 got, want_hit ? "hit" : "none");
}

static void test_cookie_kinds(void **state)
{
    (void)state;
    const char *none[] = {NULL};
    const char *other[] = {"abc=b; xab=b; a=b", NULL};
    const char *b_first[] = {"ab=b; session=xyz", NULL};
    const char *b_middle[] = {"session=xyz;ab=b;theme=dark", NULL};
    const char *b_last[] = {"session=xyz; theme=dark;  ab = b  ", NULL};
    const char *b_second_header[] = {"session=xyz", "theme=dark; ab=b", NULL};
    const char *b_dup[] = {"ab=a", "ab=b", NULL};
    const char *wrong[] = {"ab=c; x=b", NULL};
    const char *upper_name[] = {"AB=b", NULL};
    const char *group[] = {"ab=group", NULL};
    const char *digits[] = {"ab=12345", NULL};
    const char *digits_x[] = {"ab=123x", NULL};
    const char *empty_val[] = {"ab=", NULL};
    const char *flag_only[] = {"ab; x=1", NULL}; /* no '=': not the cookie ab */
    const char *quoted[] = {"ab=\"b\"", NULL};   /* values taken as sent */

    rm_snapshot_t *s = one_condition(c_ck_exact);
    const rm_service_t *svc = rm_snapshot_service_at(s, 0);
    check_ck(svc, b_first, true);
    check_ck(svc, b_middle, true);
    check_ck(svc, b_last, true);
    check_ck(svc, b_second_header, true);
    check_ck(svc, b_dup, true);
    check_ck(svc, none, false);
    check_ck(svc, other, false);
    check_ck(svc, wrong, false);
    check_ck(svc, upper_name, false); /* cookie names are case-sensitive */
    check_ck(svc, flag_only, false);
    check_ck(svc, quoted, false);
    rm_snapshot_unref(s);

    s = one_condition(c_ck_prefix);
    svc = rm_snapshot_service_at(s, 0);
    check_ck(svc, group, true);
    check_ck(svc, b_first, false);
    check_ck(svc, none, false);
    rm_snapshot_unref(s);

    s = one_condition(c_ck_suffix);
    svc = rm_snapshot_service_at(s, 0);
    check_ck(svc, group, true);
    check_ck(svc, digits, false);
    rm_snapshot_unref(s);

    s = one_condition(c_ck_regex);
    svc = rm_snapshot_service_at(s, 0);
    check_ck(svc, digits, true);
    check_ck(svc, digits_x, false);
    check_ck(svc, empty_val, false);
    check_ck(svc, none, false);
    rm_snapshot_unref(s);

    s = one_condition(c_ck_present);
    svc = rm_snapshot_service_at(s, 0);
    check_ck(svc, b_middle, true);
    check_ck(svc, empty_val, true);
    check_ck(svc, b_second_header, true);
    check_ck(svc, other, false);
    check_ck(svc, flag_only, false);
    check_ck(svc, none, false);
    rm_snapshot_unref(s);

    s = one_condition(c_ck_absent);
    svc = rm_snapshot_service_at(s, 0);
    check_ck(svc, none, true);
    check_ck(svc, other, true);
    check_ck(svc, b_last, false);
    check_ck(svc, b_second_header, false);
    rm_snapshot_unref(s);
}

static void test_cookie_value_helper(void **state)
{
    (void)state;
    req_t r;
    req_init(&r, "GET", "/");
    req_hdr(&r, "Cookie", " ; =x; a=1 ;b=  2 ; ;c");
    req_hdr(&r, "COOKIE", "d=4");
    size_t n;
    const char *v = rm_route_cookie_value(&r.v, "b", 1, &n);
    assert_non_null(v);
    assert_int_equal(n, 1);
    assert_memory_equal(v, "2", 1);
    v = rm_route_cookie_value(&r.v, "d", 1, &n);
    assert_non_null(v);
    assert_memory_equal(v, "4", 1);
    assert_null(rm_route_cookie_value(&r.v, "c", 1, &n));
    assert_null(rm_route_cookie_value(&r.v, "", 0, &n));
}

/* ---- query ------------------------------------------------------------------------------ */

static void c_q_exact(Remora__V1__Rule *r)
{
    tu_match_query(r, "variant", TU_EXACT, "b c");
}
static void c_q_prefix(Remora__V1__Rule *r)
{
    tu_match_query(r, "variant", TU_PREFIX, "b+");
}
static void c_q_suffix(Remora__V1__Rule *r)
{
    tu_match_query(r, "variant", TU_SUFFIX, "/x");
}
static void c_q_regex(Remora__V1__Rule *r)
{
    tu_match_query(r, "user id", TU_REGEX, "[0-9]{3}");
}
static void c_q_present(Remora__V1__Rule *r)
{
    tu_match_query(r, "debug", TU_PRESENT, NULL);
}
static void c_q_absent(Remora__V1__Rule *r)
{
    tu_match_query(r, "debug", TU_ABSENT, NULL);
}

static void check_q(const rm_service_t *svc, const char *target, bool want_hit)
{
    req_t r;
    req_init(&r, "GET", target);
    const char *got = decide_rule(svc, &r);
    if (strcmp(got, want_hit ? "hit" : "") != 0)
        fail_msg("target %s: got rule \"%s\", want %s", target, got, want_hit ? "hit" : "none");
}

static void test_query_kinds(void **state)
{
    (void)state;
    rm_snapshot_t *s = one_condition(c_q_exact);
    const rm_service_t *svc = rm_snapshot_service_at(s, 0);
    check_q(svc, "/p?variant=b%20c", true);
    check_q(svc, "/p?variant=b+c", true);
    check_q(svc, "/p?a=1&variant=b%20c&z", true);
    check_q(svc, "/p?var%69ant=b+c", true);         /* the name is decoded too */
    check_q(svc, "/p?variant=a&variant=b+c", true); /* any occurrence */
    check_q(svc, "/p?variant=b%2Bc", false);        /* %2B is a literal '+' */
    check_q(svc, "/p?variant=b c", true);           /* raw space (lenient clients) */
    check_q(svc, "/p?variant=bc", false);
    check_q(svc, "/p?variant=b%20c%20", false);
    check_q(svc, "/p?xvariant=b+c", false);
    check_q(svc, "/p", false);
    check_q(svc, "/p?", false);
    check_q(svc, "/b+c?x=variant", false);
    rm_snapshot_unref(s);

    s = one_condition(c_q_prefix);
    svc = rm_snapshot_service_at(s, 0);
    check_q(svc, "/?variant=b%2Bfoo", true);
    check_q(svc, "/?variant=b%2bfoo", true); /* lowercase hex */
    check_q(svc, "/?variant=b+foo", false);  /* decodes to "b foo" */
    check_q(svc, "/?variant=b%2", false);    /* malformed escape stays literal: "b%2" */
    rm_snapshot_unref(s);

    s = one_condition(c_q_suffix);
    svc = rm_snapshot_service_at(s, 0);
    check_q(svc, "/?variant=a%2Fx", true);
    check_q(svc, "/?variant=%2fx", true);
    check_q(svc, "/?variant=a%2Fy", false);
    check_q(svc, "/?variant=%zz/x", true); /* "%zz" stays literal, the suffix still holds */
    rm_snapshot_unref(s);

    s = one_condition(c_q_regex);
    svc = rm_snapshot_service_at(s, 0);
    check_q(svc, "/?user+id=123", true);
    check_q(svc, "/?user%20id=007", true);
    check_q(svc, "/?user+id=1234", false);
    check_q(svc, "/?userid=123", false);
    rm_snapshot_unref(s);

    s = one_condition(c_q_present);
    svc = rm_snapshot_service_at(s, 0);
    check_q(svc, "/?debug", true);
    check_q(svc, "/?debug=", true);
    check_q(svc, "/?a=1&&debug=0&", true);
    check_q(svc, "/?debugx=1", false);
    check_q(svc, "/?x=debug", false);
    check_q(svc, "/debug", false);
    rm_snapshot_unref(s);

    s = one_condition(c_q_absent);
    svc = rm_snapshot_service_at(s, 0);
    check_q(svc, "/", true);
    check_q(svc, "/?x=debug", true);
    check_q(svc, "/?a&debug", false);
    rm_snapshot_unref(s);
}

static void test_query_long_value(void **state)
{
    (void)state;
    Remora__V1__Route *route;
    Remora__V1__ConfigSet *set = base_config(&route);
    Remora__V1__Rule *hit = tu_rule(route, "hit");
    tu_match_query(hit, "v", TU_PREFIX, "a");
    tu_dest(hit, "v2", 1);
    Remora__V1__Rule *pres = tu_rule(route, "present");
    tu_match_query(pres, "v", TU_PRESENT, NULL);
    tu_dest(pres, "v2", 1);
    rm_snapshot_t *s = build(set);
    const rm_service_t *svc = rm_snapshot_service_at(s, 0);
    static char target[RM_ROUTE_QUERY_VALUE_MAX + 16];
    strcpy(target, "/?v=");
    size_t off = strlen(target);
    /* Exactly the buffer: still decoded and matched. */
    memset(target + off, 'a', RM_ROUTE_QUERY_VALUE_MAX);
    target[off + RM_ROUTE_QUERY_VALUE_MAX] = '\0';
    check_q(svc, target, true);
    /* One byte more: value conditions fail, present still holds. */
    target[off + RM_ROUTE_QUERY_VALUE_MAX] = 'a';
    target[off + RM_ROUTE_QUERY_VALUE_MAX + 1] = '\0';
    req_t r;
    req_init(&r, "GET", target);
    assert_string_equal(decide_rule(svc, &r), "present");
    rm_snapshot_unref(s);
}

/* ---- path, method, AND ------------------------------------------------------------------ */

static void c_path_exact(Remora__V1__Rule *r)
{
    tu_match_path(r, TU_EXACT, "/api/v1");
}
static void c_path_prefix(Remora__V1__Rule *r)
{
    tu_match_path(r, TU_PREFIX, "/api");
}
static void c_path_regex(Remora__V1__Rule *r)
{
    tu_match_path(r, TU_REGEX, "/users/[0-9]+");
}
static void c_method(Remora__V1__Rule *r)
{
    tu_match_method(r, "POST");
}

static void check_req(const rm_service_t *svc, const char *method, const char *target,
                      bool want_hit)
{
    req_t r;
    req_init(&r, method, target);
    const char *got = decide_rule(svc, &r);
    if (strcmp(got, want_hit ? "hit" : "") != 0)
        fail_msg("%s %s: got rule \"%s\", want %s", method, target, got, want_hit ? "hit" : "none");
}

static void test_path_and_method(void **state)
{
    (void)state;
    rm_snapshot_t *s = one_condition(c_path_exact);
    const rm_service_t *svc = rm_snapshot_service_at(s, 0);
    check_req(svc, "GET", "/api/v1", true);
    check_req(svc, "GET", "/api/v1?x=1", true); /* the query is not part of the path */
    check_req(svc, "GET", "/api/v1/", false);
    check_req(svc, "GET", "/api/v", false);
    check_req(svc, "GET", "/API/v1", false);
    rm_snapshot_unref(s);

    s = one_condition(c_path_prefix);
    svc = rm_snapshot_service_at(s, 0);
    check_req(svc, "GET", "/api", true);
    check_req(svc, "GET", "/api/x", true);
    check_req(svc, "GET", "/apix", true); /* plain string prefix, as Envoy */
    check_req(svc, "GET", "/ap", false);
    check_req(svc, "GET", "/x/api", false);
    check_req(svc, "GET", "/?p=/api", false);
    rm_snapshot_unref(s);

    s = one_condition(c_path_regex);
    svc = rm_snapshot_service_at(s, 0);
    check_req(svc, "GET", "/users/42", true);
    check_req(svc, "GET", "/users/42?id=x", true);
    check_req(svc, "GET", "/users/42/x", false);
    check_req(svc, "GET", "/v2/users/42", false);
    check_req(svc, "GET", "/users/", false);
    rm_snapshot_unref(s);

    s = one_condition(c_method);
    svc = rm_snapshot_service_at(s, 0);
    check_req(svc, "POST", "/", true);
    check_req(svc, "GET", "/", false);
    check_req(svc, "post", "/", false); /* methods are case-sensitive */
    check_req(svc, "POSTX", "/", false);
    check_req(svc, "POS", "/", false);
    rm_snapshot_unref(s);
}

static void c_all(Remora__V1__Rule *r)
{
    tu_match_header(r, "x-user-group", TU_EXACT, "beta");
    tu_match_cookie(r, "ab", TU_EXACT, "b");
    tu_match_query(r, "variant", TU_EXACT, "b");
    tu_match_path(r, TU_PREFIX, "/api");
    tu_match_method(r, "GET");
}

static void test_conditions_are_anded(void **state)
{
    (void)state;
    rm_snapshot_t *s = one_condition(c_all);
    const rm_service_t *svc = rm_snapshot_service_at(s, 0);
    /* Each request breaks exactly one condition, the last one none. */
    struct {
        const char *method, *target, *group, *cookie;
        bool hit;
    } cases[] = {
        {"GET", "/api/x?variant=b", "beta", "ab=b", true},
        {"PUT", "/api/x?variant=b", "beta", "ab=b", false},
        {"GET", "/web?variant=b", "beta", "ab=b", false},
        {"GET", "/api/x?variant=a", "beta", "ab=b", false},
        {"GET", "/api/x?variant=b", "alpha", "ab=b", false},
        {"GET", "/api/x?variant=b", "beta", "ab=a", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        req_t r;
        req_init(&r, cases[i].method, cases[i].target);
        req_hdr(&r, "x-user-group", cases[i].group);
        req_hdr(&r, "cookie", cases[i].cookie);
        const char *got = decide_rule(svc, &r);
        if (strcmp(got, cases[i].hit ? "hit" : "") != 0)
            fail_msg("case %zu: got \"%s\"", i, got);
    }
    rm_snapshot_unref(s);
}

/* ---- rule order, decision fields -------------------------------------------------------- */

static void test_rule_order_and_decision(void **state)
{
    (void)state;
    Remora__V1__ConfigSet *set = tu_set_new();
    Remora__V1__Service *sv = tu_service(set, "svc", NULL, 8080);
    tu_service_endpoint(sv, "10.0.0.1:80", "v1");
    tu_service_endpoint(sv, "10.0.0.2:80", "v2");
    tu_service_endpoint(sv, "10.0.0.3:80", "v3");
    Remora__V1__Route *r1 = tu_route(set, "first-route", NULL, "svc");
    Remora__V1__Rule *beta = tu_rule(r1, "beta");
    tu_match_header(beta, "x-group", TU_EXACT, "beta");
    tu_dest(beta, "v2", 100);
    tu_timeout(beta, 1234);
    Remora__V1__Rule *api = tu_rule(r1, "api");
    tu_match_path(api, TU_PREFIX, "/api");
    tu_dest(api, "v3", 100);
    Remora__V1__Route *r2 = tu_route(set, "second-route", NULL, "svc");
    Remora__V1__Rule *beta2 = tu_rule(r2, "beta-again"); /* shadowed by "beta" */
    tu_match_header(beta2, "x-group", TU_EXACT, "beta");
    tu_dest(beta2, "v1", 100);
    rm_snapshot_t *s = build(set);
    const rm_service_t *svc = rm_snapshot_service_at(s, 0);

    req_t r;
    rm_route_decision_t d;
    req_init(&r, "GET", "/api/x");
    req_hdr(&r, "x-group", "beta"); /* both "beta" and "api" match: the first wins */
    assert_int_equal(rm_route_decide(svc, &r.v, 99, &d), 0);
    assert_string_equal(d.rule_name, "beta");
    assert_string_equal(d.route_name, "first-route");
    assert_int_equal(d.rule_index, 0);
    assert_ptr_equal(d.rule, &svc->rules[0]);
    assert_string_equal(d.version, "v2");
    assert_int_equal(d.version_index, 1);
    assert_int_equal(d.timeout_ms, 1234);
    assert_non_null(d.retry);
    assert_false(d.sticky);
    assert_false(d.mirror);
    assert_null(d.mirror_policy);

    req_init(&r, "GET", "/api/x");
    assert_int_equal(rm_route_decide(svc, &r.v, 99, &d), 0);
    assert_string_equal(d.rule_name, "api");
    assert_string_equal(d.version, "v3");

    /* Nothing matches: the default rule, RM_ROUTE_NO_RULE, a version still chosen. */
    req_init(&r, "GET", "/web");
    assert_int_equal(rm_route_decide(svc, &r.v, 99, &d), RM_ROUTE_NO_RULE);
    assert_ptr_equal(d.rule, svc->default_rule);
    assert_int_equal(d.rule_index, svc->nrules);
    assert_string_equal(d.rule_name, "");
    assert_string_equal(d.route_name, "");
    assert_int_equal(d.timeout_ms, 15000);
    assert_non_null(d.version);

    assert_int_equal(rm_route_decide(NULL, &r.v, 0, &d), RM_ROUTE_EINVAL);
    assert_int_equal(rm_route_decide(svc, NULL, 0, &d), RM_ROUTE_EINVAL);
    assert_int_equal(rm_route_decide(svc, &r.v, 0, NULL), RM_ROUTE_EINVAL);
    rm_snapshot_unref(s);
}

/* ---- weights ---------------------------------------------------------------------------- */

/* Decides N_DECISIONS times with a seeded RNG and checks each version's share. */
static void check_weights(const uint32_t *weights, size_t n)
{
    Remora__V1__Route *route;
    Remora__V1__ConfigSet *set = base_config(&route);
    Remora__V1__Rule *rule = tu_rule(route, "split");
    static const char *names[] = {"v1", "v2", "v3"};
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        tu_dest(rule, names[i], weights[i]);
        sum += weights[i];
    }
    rm_snapshot_t *s = build(set);
    const rm_service_t *svc = rm_snapshot_service_at(s, 0);
    uint64_t counts[3] = {0};
    uint64_t rng = 0x1234567887654321ULL;
    req_t r;
    req_init(&r, "GET", "/");
    for (int k = 0; k < N_DECISIONS; k++) {
        rm_route_decision_t d;
        assert_int_equal(rm_route_decide(svc, &r.v, tu_rand(&rng), &d), 0);
        assert_true(d.version_index < 3);
        counts[d.version_index]++;
    }
    for (size_t i = 0; i < n; i++) {
        char what[64];
        snprintf(what, sizeof(what), "%s (weight %u of %llu)", names[i], weights[i],
                 (unsigned long long)sum);
        assert_share(counts[i], N_DECISIONS, (double)weights[i] / (double)sum, what);
        /* The stats helpers report the configured share. */
        assert_int_equal(rm_route_version_weight(&svc->rules[0], i), weights[i]);
        assert_true(fabs(rm_route_version_share(&svc->rules[0], i) -
                         (double)weights[i] / (double)sum) < 1e-12);
    }
    assert_int_equal(rm_route_weight_sum(&svc->rules[0]), sum);
    rm_snapshot_unref(s);
}

static void test_weights(void **state)
{
    (void)state;
    const uint32_t canary[] = {95, 5};
    const uint32_t thirds[] = {1, 1, 1};
    const uint32_t all_v2[] = {0, 100};
    const uint32_t odd[] = {7, 0, 3};
    const uint32_t big[] = {4000000000u, 4000000000u, 294967295u};
    check_weights(canary, 2);
    check_weights(thirds, 3);
    check_weights(all_v2, 2); /* weight 0: never chosen, exactly */
    check_weights(odd, 3);
    check_weights(big, 3); /* sums above 2^32 */
}

/* ---- stickiness ------------------------------------------------------------------------- */

static rm_snapshot_t *sticky_snapshot(bool cookie, uint32_t w1, uint32_t w2)
{
    Remora__V1__Route *route;
    Remora__V1__ConfigSet *set = base_config(&route);
    Remora__V1__Rule *rule = tu_rule(route, "sticky");
    tu_dest(rule, "v1", w1);
    tu_dest(rule, "v2", w2);
    if (cookie)
        tu_sticky_cookie(rule, "uid");
    else
        tu_sticky_header(rule, "X-User-Id");
    return build(set);
}

static size_t sticky_version(const rm_service_t *svc, const char *user, uint64_t rnd, bool *sticky)
{
    req_t r;
    req_init(&r, "GET", "/");
    req_hdr(&r, "x-user-id", user);
    rm_route_decision_t d;
    assert_int_equal(rm_route_decide(svc, &r.v, rnd, &d), 0);
    *sticky = d.sticky;
    return d.version_index;
}

static void test_sticky_same_key_same_version(void **state)
{
    (void)state;
    rm_snapshot_t *a = sticky_snapshot(false, 50, 50);
    rm_snapshot_t *b = sticky_snapshot(false, 50, 50); /* "another sidecar" */
    const rm_service_t *sa = rm_snapshot_service_at(a, 0), *sb = rm_snapshot_service_at(b, 0);
    uint64_t rng = 42;
    char user[32];
    for (int u = 0; u < 50; u++) {
        snprintf(user, sizeof(user), "user-%d", u);
        bool sticky;
        size_t first = sticky_version(sa, user, tu_rand(&rng), &sticky);
        assert_true(sticky);
        for (int k = 0; k < 1000; k++) {
            assert_int_equal(sticky_version(sa, user, tu_rand(&rng), &sticky), first);
            assert_int_equal(sticky_version(sb, user, tu_rand(&rng), &sticky), first);
        }
    }
    /* The documented hash, pinned: rm_hash64("user-42") % 100 == 53, so with 50/50 the user
     * lands on v2, on every sidecar of every build. */
    assert_true(rm_hash64("user-42", 7) == 0xa39532c7ab051e8dULL);
    assert_true(rm_hash64("", 0) == 0xefd01f60ba992926ULL);
    bool sticky;
    assert_int_equal(sticky_version(sa, "user-42", 0, &sticky), 1);
    rm_snapshot_unref(a);
    rm_snapshot_unref(b);

    /* Raising the canary from 5 to 10 (same sum) keeps every v2 user on v2. */
    rm_snapshot_t *c5 = sticky_snapshot(false, 95, 5), *c10 = sticky_snapshot(false, 90, 10);
    for (int u = 0; u < 2000; u++) {
        snprintf(user, sizeof(user), "u%d", u);
        size_t before = sticky_version(rm_snapshot_service_at(c5, 0), user, 0, &sticky);
        size_t after = sticky_version(rm_snapshot_service_at(c10, 0), user, 0, &sticky);
        if (before == 1)
            assert_int_equal(after, 1);
    }
    rm_snapshot_unref(c5);
    rm_snapshot_unref(c10);
}

static void test_sticky_keys_spread_by_weight(void **state)
{
    (void)state;
    rm_snapshot_t *s = sticky_snapshot(false, 80, 20);
    const rm_service_t *svc = rm_snapshot_service_at(s, 0);
    uint64_t counts[2] = {0};
    char user[32];
    const int users = 20000;
    for (int u = 0; u < users; u++) {
        snprintf(user, sizeof(user), "%d@example.com", u);
        bool sticky;
        counts[sticky_version(svc, user, 0, &sticky)]++; /* random part fixed: only the key */
        assert_true(sticky);
    }
    assert_share(counts[0], users, 0.8, "sticky v1 (80/20)");
    assert_share(counts[1], users, 0.2, "sticky v2 (80/20)");
    rm_snapshot_unref(s);
}

static void test_sticky_cookie_and_fallback(void **state)
{
    (void)state;
    rm_snapshot_t *s = sticky_snapshot(true, 50, 50);
    const rm_service_t *svc = rm_snapshot_service_at(s, 0);
    req_t r;
    rm_route_decision_t d;
    req_init(&r, "GET", "/");
    req_hdr(&r, "cookie", "theme=dark; uid=user-42");
    assert_int_equal(rm_route_decide(svc, &r.v, 0, &d), 0);
    assert_true(d.sticky);
    assert_int_equal(d.version_index, 1); /* same hash as the header form */
    for (uint64_t k = 1; k < 100; k++) {
        assert_int_equal(rm_route_decide(svc, &r.v, k * 0x9e3779b97f4a7c15ULL, &d), 0);
        assert_int_equal(d.version_index, 1);
    }

    /* No key, or an empty one: random choice, reported as not sticky, spread by weight. */
    const char *cookies[] = {NULL, "theme=dark", "uid="};
    for (size_t c = 0; c < 3; c++) {
        req_init(&r, "GET", "/");
        if (cookies[c] != NULL)
            req_hdr(&r, "cookie", cookies[c]);
        uint64_t rng = 7, counts[2] = {0};
        for (int k = 0; k < N_DECISIONS; k++) {
            assert_int_equal(rm_route_decide(svc, &r.v, tu_rand(&rng), &d), 0);
            assert_false(d.sticky);
            counts[d.version_index]++;
        }
        assert_share(counts[0], N_DECISIONS, 0.5, "fallback v1");
    }
    rm_snapshot_unref(s);
}

/* ---- mirror ----------------------------------------------------------------------------- */

static void test_mirror_sampling(void **state)
{
    (void)state;
    const int percents[] = {10, 0, 100, 50};
    for (size_t p = 0; p < sizeof(percents) / sizeof(percents[0]); p++) {
        Remora__V1__Route *route;
        Remora__V1__ConfigSet *set = base_config(&route);
        Remora__V1__Rule *rule = tu_rule(route, "m");
        tu_dest(rule, "v1", 95);
        tu_dest(rule, "v2", 5);
        tu_mirror(rule, "v3", NULL, percents[p]);
        rm_snapshot_t *s = build(set);
        const rm_service_t *svc = rm_snapshot_service_at(s, 0);
        req_t r;
        req_init(&r, "GET", "/");
        uint64_t rng = 99, mirrored = 0, mirrored_v2 = 0, v2 = 0;
        for (int k = 0; k < N_DECISIONS; k++) {
            rm_route_decision_t d;
            assert_int_equal(rm_route_decide(svc, &r.v, tu_rand(&rng), &d), 0);
            assert_non_null(d.mirror_policy);
            if (d.mirror) {
                mirrored++;
                assert_ptr_equal(d.mirror_service, svc);
                assert_int_equal(d.mirror_version_index, 2);
                assert_string_equal(d.mirror_version, "v3");
            } else {
                assert_null(d.mirror_service);
            }
            if (d.version_index == 1) {
                v2++;
                mirrored_v2 += d.mirror;
            }
        }
        char what[64];
        snprintf(what, sizeof(what), "mirrored at %d%%", percents[p]);
        assert_share(mirrored, N_DECISIONS, percents[p] / 100.0, what);
        /* Independence: the requests sent to v2 are mirrored at the same rate. */
        snprintf(what, sizeof(what), "mirrored among v2 at %d%%", percents[p]);
        assert_share(mirrored_v2, v2, percents[p] / 100.0, what);
        rm_snapshot_unref(s);
    }
}

static void test_mirror_other_service(void **state)
{
    (void)state;
    Remora__V1__Route *route;
    Remora__V1__ConfigSet *set = base_config(&route);
    tu_service_endpoint(tu_service(set, "shadow", NULL, 9000), "10.0.1.1:80", "v1");
    Remora__V1__Rule *rule = tu_rule(route, "m");
    tu_dest(rule, "v1", 1);
    tu_mirror(rule, NULL, "shadow", -1); /* percent left out: 100 */
    rm_snapshot_t *s = build(set);
    const rm_service_t *svc = rm_snapshot_service_at(s, 0);
    req_t r;
    req_init(&r, "GET", "/");
    rm_route_decision_t d;
    assert_int_equal(rm_route_decide(svc, &r.v, 5, &d), 0);
    assert_true(d.mirror);
    assert_ptr_equal(d.mirror_service, rm_snapshot_service_by_name(s, NULL, "shadow"));
    assert_int_equal(d.mirror_version_index, SIZE_MAX);
    assert_null(d.mirror_version);
    rm_snapshot_unref(s);
}

/* ---- no version, default spread --------------------------------------------------------- */

static void test_no_version(void **state)
{
    (void)state;
    Remora__V1__ConfigSet *set = tu_set_new();
    Remora__V1__Service *sv = tu_service(set, "svc", NULL, 8080);
    tu_service_endpoint(sv, "10.0.0.1:80", "v1");
    Remora__V1__Route *route = tu_route(set, "r", NULL, "svc");
    Remora__V1__Rule *to_v2 = tu_rule(route, "to-v2");
    tu_match_path(to_v2, TU_EXACT, "/v2");
    tu_dest(to_v2, "v2", 100); /* v2 has no endpoint */
    Remora__V1__Rule *zero = tu_rule(route, "zero");
    tu_match_path(zero, TU_EXACT, "/zero");
    tu_dest(zero, "v1", 0);
    rm_snapshot_t *s = build(set);
    const rm_service_t *svc = rm_snapshot_service_at(s, 0);
    req_t r;
    rm_route_decision_t d;
    req_init(&r, "GET", "/v2");
    assert_int_equal(rm_route_decide(svc, &r.v, 1, &d), RM_ROUTE_NO_VERSION);
    assert_string_equal(d.rule_name, "to-v2"); /* still named, for stats */
    assert_string_equal(d.version, "v2");
    assert_int_equal(rm_route_pick_endpoint(svc, d.version_index, 1, NULL, NULL, NULL, 0,
                                            &(const rm_endpoint_ref_t *){NULL}),
                     RM_ROUTE_NO_ENDPOINT);
    req_init(&r, "GET", "/zero");
    assert_int_equal(rm_route_decide(svc, &r.v, 1, &d), RM_ROUTE_NO_VERSION);
    assert_int_equal(d.version_index, SIZE_MAX);
    assert_null(d.version);
    req_init(&r, "GET", "/other");
    assert_int_equal(rm_route_decide(svc, &r.v, 1, &d), RM_ROUTE_NO_RULE);
    assert_string_equal(d.version, "v1");
    rm_snapshot_unref(s);

    /* Only draining endpoints: no version either (nothing to pick). */
    set = tu_set_new();
    tu_service(set, "svc", NULL, 8080);
    tu_eps_t eps = {0};
    tu_eps_add(&eps, "svc", NULL, "v1", "10.0.0.1:80", 1);
    s = rm_snapshot_build(set, eps.v, eps.n, NULL, 1, NULL, 0);
    tu_eps_free(&eps);
    tu_set_free(set);
    assert_non_null(s);
    req_init(&r, "GET", "/");
    assert_int_equal(rm_route_decide(rm_snapshot_service_at(s, 0), &r.v, 1, &d),
                     RM_ROUTE_NO_VERSION);
    rm_snapshot_unref(s);
}

static void test_default_spread_by_ready_endpoints(void **state)
{
    (void)state;
    Remora__V1__ConfigSet *set = tu_set_new();
    tu_service(set, "svc", NULL, 8080);
    Remora__V1__Route *route = tu_route(set, "r", NULL, "svc");
    tu_match_path(tu_rule(route, "nodest"), TU_PREFIX, "/n"); /* no destinations: spread */
    tu_eps_t eps = {0};
    tu_eps_add(&eps, "svc", NULL, "v1", "10.0.0.1:80", 0);
    tu_eps_add(&eps, "svc", NULL, "v1", "10.0.0.2:80", 0);
    tu_eps_add(&eps, "svc", NULL, "v1", "10.0.0.3:80", 0);
    tu_eps_add(&eps, "svc", NULL, "v2", "10.0.0.4:80", 0);
    tu_eps_add(&eps, "svc", NULL, "v2", "10.0.0.5:80", 1); /* draining: not counted */
    rm_snapshot_t *s = rm_snapshot_build(set, eps.v, eps.n, NULL, 1, NULL, 0);
    tu_eps_free(&eps);
    tu_set_free(set);
    assert_non_null(s);
    const rm_service_t *svc = rm_snapshot_service_at(s, 0);
    const char *targets[] = {"/", "/n"};
    for (int t = 0; t < 2; t++) {
        req_t r;
        req_init(&r, "GET", targets[t]);
        uint64_t rng = 3, counts[2] = {0};
        for (int k = 0; k < N_DECISIONS; k++) {
            rm_route_decision_t d;
            int rc = rm_route_decide(svc, &r.v, tu_rand(&rng), &d);
            assert_int_equal(rc, t == 0 ? RM_ROUTE_NO_RULE : 0);
            counts[d.version_index]++;
        }
        assert_share(counts[0], N_DECISIONS, 0.75, "spread v1 (3 of 4 ready)");
    }
    assert_int_equal(rm_route_version_weight(svc->default_rule, 0), 3);
    assert_int_equal(rm_route_version_weight(svc->default_rule, 1), 1);
    rm_snapshot_unref(s);
}

/* ---- endpoint picking ------------------------------------------------------------------- */

typedef struct loads {
    int by_last_octet[256]; /* load per endpoint 10.0.0.N; < 0: ejected */
    int calls;
} loads_t;

static int last_octet(const rm_endpoint_ref_t *ep)
{
    const char *dot = strrchr(ep->address, '.');
    return atoi(dot + 1);
}

static int load_cb(void *ctx, const rm_endpoint_ref_t *ep)
{
    loads_t *l = ctx;
    l->calls++;
    return l->by_last_octet[last_octet(ep)];
}

/* One version "v1" with endpoints 10.0.0.1..n:80, those in draining[] withdrawn. */
static rm_snapshot_t *pool(int n, const int *draining, size_t ndraining)
{
    Remora__V1__ConfigSet *set = tu_set_new();
    tu_service(set, "svc", NULL, 8080);
    tu_eps_t eps = {0};
    for (int i = 1; i <= n; i++) {
        char a[32];
        snprintf(a, sizeof(a), "10.0.0.%d:80", i);
        int dr = 0;
        for (size_t k = 0; k < ndraining; k++)
            dr |= draining[k] == i;
        tu_eps_add(&eps, "svc", NULL, "v1", a, dr);
    }
    rm_snapshot_t *s = rm_snapshot_build(set, eps.v, eps.n, NULL, 1, NULL, 0);
    tu_eps_free(&eps);
    tu_set_free(set);
    assert_non_null(s);
    return s;
}

static uint64_t key_of(int octet)
{
    char a[32];
    snprintf(a, sizeof(a), "10.0.0.%d:80", octet);
    return rm_hash64(a, strlen(a));
}

static void test_pick_skips_draining_excluded_ejected(void **state)
{
    (void)state;
    const int draining[] = {2};
    rm_snapshot_t *s = pool(6, draining, 1);
    const rm_service_t *svc = rm_snapshot_service_at(s, 0);
    loads_t l;
    memset(&l, 0, sizeof(l));
    l.by_last_octet[4] = -1; /* ejected */
    uint64_t excl[] = {key_of(1), key_of(5)};
    int counts[7] = {0};
    uint64_t rng = 11;
    for (int k = 0; k < 30000; k++) {
        const rm_endpoint_ref_t *ep = NULL;
        assert_int_equal(rm_route_pick_endpoint(svc, 0, tu_rand(&rng), load_cb, &l, excl, 2, &ep),
                         0);
        counts[last_octet(ep)]++;
    }
    assert_int_equal(counts[1], 0); /* excluded */
    assert_int_equal(counts[2], 0); /* draining */
    assert_int_equal(counts[4], 0); /* ejected */
    assert_int_equal(counts[5], 0); /* excluded */
    assert_true(counts[3] > 0 && counts[6] > 0);
    assert_int_equal(counts[3] + counts[6], 30000);
    rm_snapshot_unref(s);
}

static void test_pick_allows_excluded_when_nothing_else(void **state)
{
    (void)state;
    const int draining[] = {3};
    rm_snapshot_t *s = pool(3, draining, 1);
    const rm_service_t *svc = rm_snapshot_service_at(s, 0);
    loads_t l;
    memset(&l, 0, sizeof(l));
    l.by_last_octet[2] = -1;
    uint64_t excl[] = {key_of(1)};
    /* 1 is excluded, 2 ejected, 3 draining: the retry takes 2, untried though ejected. */
    const rm_endpoint_ref_t *ep = NULL;
    assert_int_equal(rm_route_pick_endpoint(svc, 0, 5, load_cb, &l, excl, 1, &ep), 0);
    assert_int_equal(last_octet(ep), 2);
    /* When it tried 2 as well, it goes back to 1, the one tried endpoint not ejected. */
    uint64_t both[] = {key_of(1), key_of(2)};
    assert_int_equal(rm_route_pick_endpoint(svc, 0, 5, load_cb, &l, both, 2, &ep), 0);
    assert_int_equal(last_octet(ep), 1);
    /* Never to a draining one, nor to an ejected one it tried, nor on a first attempt. */
    l.by_last_octet[1] = -1;
    assert_int_equal(rm_route_pick_endpoint(svc, 0, 5, load_cb, &l, both, 2, &ep),
                     RM_ROUTE_NO_ENDPOINT);
    assert_int_equal(rm_route_pick_endpoint(svc, 0, 5, load_cb, &l, NULL, 0, &ep),
                     RM_ROUTE_NO_ENDPOINT);
    assert_int_equal(rm_route_pick_endpoint(svc, 1, 5, load_cb, &l, NULL, 0, &ep), RM_ROUTE_EINVAL);
    assert_int_equal(rm_route_pick_endpoint(svc, 0, 5, load_cb, &l, NULL, 1, &ep), RM_ROUTE_EINVAL);
    rm_snapshot_unref(s);

    /* A single endpoint, excluded: allowed again. */
    s = pool(1, NULL, 0);
    uint64_t only[] = {key_of(1)};
    assert_int_equal(
        rm_route_pick_endpoint(rm_snapshot_service_at(s, 0), 0, 9, NULL, NULL, only, 1, &ep), 0);
    assert_int_equal(last_octet(ep), 1);
    rm_snapshot_unref(s);
}

static void test_pick_retry_prefers_untried_ejected_to_tried(void **state)
{
    (void)state;
    /* A rollout seen by a client whose config is stale: 1 and 3 are pods going away (the retry
     * tried both, both refused), 2 is a new pod ejected while its app was starting. */
    rm_snapshot_t *s = pool(4, NULL, 0);
    const rm_service_t *svc = rm_snapshot_service_at(s, 0);
    loads_t l;
    memset(&l, 0, sizeof(l));
    l.by_last_octet[2] = -1;
    l.by_last_octet[4] = -1;
    uint64_t tried[] = {key_of(1), key_of(3)};
    uint64_t rng = 7;
    int counts[5] = {0};
    for (int k = 0; k < 1000; k++) {
        const rm_endpoint_ref_t *ep = NULL;
        assert_int_equal(rm_route_pick_endpoint(svc, 0, tu_rand(&rng), load_cb, &l, tried, 2, &ep),
                         0);
        counts[last_octet(ep)]++;
    }
    assert_int_equal(counts[1] + counts[3], 0);
    assert_true(counts[2] > 0 && counts[4] > 0);
    /* An untried endpoint that is not ejected still comes first. */
    l.by_last_octet[4] = 0;
    for (int k = 0; k < 1000; k++) {
        const rm_endpoint_ref_t *ep = NULL;
        assert_int_equal(rm_route_pick_endpoint(svc, 0, tu_rand(&rng), load_cb, &l, tried, 2, &ep),
                         0);
        assert_int_equal(last_octet(ep), 4);
    }
    rm_snapshot_unref(s);
}

static void test_pick_prefers_lower_load(void **state)
{
    (void)state;
    rm_snapshot_t *s = pool(2, NULL, 0);
    const rm_service_t *svc = rm_snapshot_service_at(s, 0);
    loads_t l;
    memset(&l, 0, sizeof(l));
    l.by_last_octet[1] = 10;
    l.by_last_octet[2] = 3;
    uint64_t rng = 1;
    /* With two usable endpoints both are always candidates: the lighter always wins. */
    for (int k = 0; k < 1000; k++) {
        const rm_endpoint_ref_t *ep;
        assert_int_equal(rm_route_pick_endpoint(svc, 0, tu_rand(&rng), load_cb, &l, NULL, 0, &ep),
                         0);
        assert_int_equal(last_octet(ep), 2);
    }
    rm_snapshot_unref(s);

    /* Ten endpoints with loads 0..9: the heaviest never wins, picks skew to light ones, and a
     * pick normally costs two load() calls. */
    s = pool(10, NULL, 0);
    svc = rm_snapshot_service_at(s, 0);
    memset(&l, 0, sizeof(l));
    for (int i = 1; i <= 10; i++)
        l.by_last_octet[i] = i - 1;
    int counts[11] = {0};
    const int picks = 45000;
    for (int k = 0; k < picks; k++) {
        const rm_endpoint_ref_t *ep;
        assert_int_equal(rm_route_pick_endpoint(svc, 0, tu_rand(&rng), load_cb, &l, NULL, 0, &ep),
                         0);
        counts[last_octet(ep)]++;
    }
    assert_int_equal(l.calls, 2 * picks);
    assert_int_equal(counts[10], 0);
    /* P2C over distinct pairs: endpoint with rank r (0 = lightest) of n wins with probability
     * 2 (n - 1 - r) / (n (n - 1)). */
    for (int r = 0; r < 10; r++) {
        char what[48];
        snprintf(what, sizeof(what), "P2C endpoint with load %d", r);
        assert_share(counts[r + 1], picks, 2.0 * (9 - r) / 90.0, what);
    }
    rm_snapshot_unref(s);
}

static void test_pick_uniform_without_load(void **state)
{
    (void)state;
    rm_snapshot_t *s = pool(5, NULL, 0);
    const rm_service_t *svc = rm_snapshot_service_at(s, 0);
    int counts[6] = {0};
    uint64_t rng = 77;
    const int picks = 50000;
    for (int k = 0; k < picks; k++) {
        const rm_endpoint_ref_t *ep;
        assert_int_equal(rm_route_pick_endpoint(svc, 0, tu_rand(&rng), NULL, NULL, NULL, 0, &ep),
                         0);
        counts[last_octet(ep)]++;
    }
    for (int i = 1; i <= 5; i++)
        assert_share(counts[i], picks, 0.2, "uniform pick");
    rm_snapshot_unref(s);
}

/* A request with nothing in it (NULL slices, zero lengths) is valid input. */
static void test_empty_request_view(void **state)
{
    (void)state;
    Remora__V1__Route *route;
    Remora__V1__ConfigSet *set = base_config(&route);
    Remora__V1__Rule *q = tu_rule(route, "q");
    tu_match_query(q, "x", TU_PRESENT, NULL);
    tu_dest(q, "v2", 1);
    Remora__V1__Rule *h = tu_rule(route, "h");
    tu_match_header(h, "x", TU_PRESENT, NULL);
    tu_dest(h, "v2", 1);
    Remora__V1__Rule *c = tu_rule(route, "c");
    tu_match_cookie(c, "x", TU_PRESENT, NULL);
    tu_dest(c, "v2", 1);
    Remora__V1__Rule *p = tu_rule(route, "p");
    tu_match_path(p, TU_PREFIX, "/");
    tu_dest(p, "v2", 1);
    Remora__V1__Rule *none = tu_rule(route, "absent-all");
    tu_match_query(none, "x", TU_ABSENT, NULL);
    tu_match_header(none, "x", TU_ABSENT, NULL);
    tu_match_cookie(none, "x", TU_ABSENT, NULL);
    tu_match_path(none, TU_EXACT, "");
    tu_dest(none, "v3", 1);
    rm_snapshot_t *s = build(set);
    rm_request_view_t req;
    memset(&req, 0, sizeof(req));
    rm_route_decision_t d;
    assert_int_equal(rm_route_decide(rm_snapshot_service_at(s, 0), &req, 1, &d), 0);
    assert_string_equal(d.rule_name, "absent-all");
    rm_snapshot_unref(s);
}

/* ---- helpers of the API ----------------------------------------------------------------- */

static void test_split_target(void **state)
{
    (void)state;
    const char *p, *q;
    size_t pl, ql;
    rm_route_split_target("/a/b?x=1&y", 10, &p, &pl, &q, &ql);
    assert_int_equal(pl, 4);
    assert_memory_equal(p, "/a/b", 4);
    assert_int_equal(ql, 5);
    assert_memory_equal(q, "x=1&y", 5);
    rm_route_split_target("/a?", 3, &p, &pl, &q, &ql);
    assert_int_equal(pl, 2);
    assert_int_equal(ql, 0);
    rm_route_split_target("/a", 2, &p, &pl, &q, &ql);
    assert_int_equal(pl, 2);
    assert_int_equal(ql, 0);
    rm_route_split_target("/a?b?c", 6, &p, &pl, &q, &ql);
    assert_int_equal(pl, 2);
    assert_int_equal(ql, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_kinds),
        cmocka_unit_test(test_header_name_boundaries),
        cmocka_unit_test(test_cookie_kinds),
        cmocka_unit_test(test_cookie_value_helper),
        cmocka_unit_test(test_query_kinds),
        cmocka_unit_test(test_query_long_value),
        cmocka_unit_test(test_path_and_method),
        cmocka_unit_test(test_conditions_are_anded),
        cmocka_unit_test(test_rule_order_and_decision),
        cmocka_unit_test(test_weights),
        cmocka_unit_test(test_sticky_same_key_same_version),
        cmocka_unit_test(test_sticky_keys_spread_by_weight),
        cmocka_unit_test(test_sticky_cookie_and_fallback),
        cmocka_unit_test(test_mirror_sampling),
        cmocka_unit_test(test_mirror_other_service),
        cmocka_unit_test(test_no_version),
        cmocka_unit_test(test_default_spread_by_ready_endpoints),
        cmocka_unit_test(test_pick_skips_draining_excluded_ejected),
        cmocka_unit_test(test_pick_allows_excluded_when_nothing_else),
        cmocka_unit_test(test_pick_retry_prefers_untried_ejected_to_tried),
        cmocka_unit_test(test_pick_prefers_lower_load),
        cmocka_unit_test(test_pick_uniform_without_load),
        cmocka_unit_test(test_empty_request_view),
        cmocka_unit_test(test_split_target),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
