/* tests/fuzz/route/route_fuzz.c — libFuzzer driver for routing over a fixed snapshot.
 *
 * Input: "METHOD\nTARGET\nName: value\nName: value..." — the method, the request target (split
 * into path and query as the proxy does) and header lines. Every slice points straight into
 * libFuzzer's buffer, so a read past any slice's end that reaches the input's end is an ASan
 * error. The snapshot has rules of every match kind, regexes (one catastrophic), sticky
 * header/cookie keys and a mirror; each input is routed, an endpoint picked with loads taken
 * from the input, and every header value also fed to the Host lookup. Invariants checked:
 * the decision is well-formed and the picked endpoint is usable.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/route/route.h"
#include "dataplane/snapshot/hash.h"
#include "dataplane/snapshot/snapshot.h"
#include "dataplane/snapshot/testutil.h"

#define MAX_HEADERS 64

static rm_snapshot_t *snap;

static rm_snapshot_t *build_snapshot(void)
{
    Remora__V1__ConfigSet *set = tu_set_new();
    Remora__V1__Service *svc = tu_service(set, "reviews", NULL, 9080);
    tu_service_host(svc, "reviews.example");
    tu_service_vip(svc, "10.96.0.20");
    tu_service_endpoint(svc, "10.0.0.1:80", "v1");
    tu_service_endpoint(svc, "10.0.0.2:80", "v1");
    tu_service_endpoint(svc, "10.0.0.3:80", "v2");
    tu_service_endpoint(svc, "[fd00::4]:80", "v2");
    tu_service_endpoint(svc, "10.0.0.5:80", "v3");
    Remora__V1__Service *other = tu_service(set, "ratings", "prod", 8080);
    tu_service_endpoint(other, "10.0.1.1:80", "v1");

    Remora__V1__Route *route = tu_route(set, "rollout", NULL, "reviews");
    Remora__V1__Rule *r = tu_rule(route, "ab");
    tu_match_header(r, "x-user-group", TU_EXACT, "beta");
    tu_match_cookie(r, "ab", TU_PREFIX, "b");
    tu_match_query(r, "variant", TU_SUFFIX, "b");
    tu_match_path(r, TU_PREFIX, "/api");
    tu_match_method(r, "GET");
    tu_dest(r, "v2", 100);
    r = tu_rule(route, "regexes");
    tu_match_header(r, "x-evil", TU_REGEX, "(a+)+b");
    tu_match_cookie(r, "c", TU_REGEX, "[0-9]{2,4}|x.*y");
    tu_match_query(r, "q w", TU_REGEX, ".*%.*");
    tu_match_path(r, TU_REGEX, "/users/[^/]+/(profile|settings)");
    tu_dest(r, "v3", 1);
    r = tu_rule(route, "presence");
    tu_match_header(r, "x-debug", TU_PRESENT, NULL);
    tu_match_cookie(r, "session", TU_ABSENT, NULL);
    tu_match_query(r, "trace", TU_PRESENT, NULL);
    tu_dest(r, "v1", 1);
    tu_dest(r, "v4", 1); /* no endpoints */
    r = tu_rule(route, "sticky-cookie");
    tu_match_path(r, TU_EXACT, "/c");
    tu_sticky_cookie(r, "uid");
    tu_dest(r, "v1", 50);
    tu_dest(r, "v2", 50);
    r = tu_rule(route, "canary");
    tu_match_header(r, "x-canary", TU_ABSENT, NULL);
    tu_sticky_header(r, "x-user-id");
    tu_mirror(r, "v3", NULL, 10);
    tu_dest(r, "v1", 95);
    tu_dest(r, "v2", 5);

    Remora__V1__ResolvedEndpoint **eps;
    size_t n;
    rm_snapshot_t *s = NULL;
    if (rm_snapshot_endpoints_from_config(set, &eps, &n) == 0) {
        s = rm_snapshot_build(set, eps, n, NULL, 1, NULL, 0);
        rm_snapshot_endpoints_free(eps, n);
    }
    tu_set_free(set);
    if (s == NULL)
        abort();
    return s;
}

typedef struct load_ctx {
    const uint8_t *data;
    size_t size;
} load_ctx_t;

/* Loads (and ejections) derived from the input, so both pick paths get exercised. */
static int load_from_input(void *ctx, const rm_endpoint_ref_t *ep)
{
    const load_ctx_t *l = ctx;
    if (l->size == 0)
        return 0;
    uint8_t b = l->data[ep->key % l->size];
    return b >= 0xf0 ? -1 : (int)b;
}

static bool in_keys(uint64_t key, const uint64_t *keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (keys[i] == key)
            return true;
    return false;
}

/* A retry takes an ejected endpoint only when it has not tried it and every endpoint it has not
 * tried is ejected (or draining). */
static bool retry_may_take_ejected(const rm_version_t *v, const rm_endpoint_ref_t *ep,
                                   const uint64_t *tried, size_t ntried, load_ctx_t *l)
{
    if (in_keys(ep->key, tried, ntried))
        return false;
    for (size_t i = 0; i < v->nendpoints; i++) {
        const rm_endpoint_ref_t *o = &v->endpoints[i];
        if (!o->draining && !in_keys(o->key, tried, ntried) && load_from_input(l, o) >= 0)
            return false;
    }
    return true;
}

/* The fuzz config builds UBSan in recover mode, where a finding only prints; make it fatal so
 * libFuzzer saves the input and the run fails. */
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
    return "halt_on_error=1:print_stacktrace=1";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (snap == NULL)
        snap = build_snapshot();
    const rm_service_t *svc = rm_snapshot_service_by_name(snap, NULL, "reviews");

    rm_header_view_t headers[MAX_HEADERS];
    rm_request_view_t req;
    memset(&req, 0, sizeof(req));
    req.headers = headers;

    const char *p = (const char *)data, *end = p + size;
    const char *lines[2] = {NULL, NULL};
    size_t lens[2] = {0, 0};
    for (int i = 0; i < 2 && p < end; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl != NULL ? nl : end;
        lines[i] = p;
        lens[i] = (size_t)(le - p);
        p = nl != NULL ? nl + 1 : end;
    }
    req.method = lines[0];
    req.method_len = lens[0];
    rm_route_split_target(lines[1], lens[1], &req.path, &req.path_len, &req.query, &req.query_len);
    while (p < end && req.nheaders < MAX_HEADERS) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl != NULL ? nl : end;
        const char *colon = memchr(p, ':', (size_t)(le - p));
        rm_header_view_t *h = &headers[req.nheaders++];
        h->name = p;
        h->name_len = colon != NULL ? (size_t)(colon - p) : (size_t)(le - p);
        const char *v = colon != NULL ? colon + 1 : le, *ve = le;
        while (v < ve && (*v == ' ' || *v == '\t')) /* the HTTP/1 parser trims OWS */
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        h->value = v;
        h->value_len = (size_t)(ve - v);
        p = nl != NULL ? nl + 1 : end;
    }

    uint64_t rnd = rm_hash64(data, size);
    rm_route_decision_t d;
    int rc = rm_route_decide(svc, &req, rnd, &d);
    if (rc != 0 && rc != RM_ROUTE_NO_RULE && rc != RM_ROUTE_NO_VERSION)
        abort();
    if (d.rule == NULL || d.retry == NULL || d.rule_name == NULL || d.route_name == NULL)
        abort();
    if (d.mirror && d.mirror_service == NULL)
        abort();
    if (d.version_index != SIZE_MAX) {
        if (d.version_index >= svc->nversions || d.version != svc->versions[d.version_index].name)
            abort();
        load_ctx_t l = {data, size};
        uint64_t excl[2] = {rnd, svc->endpoints[rnd % svc->nendpoints].key};
        const rm_endpoint_ref_t *ep = NULL;
        int prc = rm_route_pick_endpoint(svc, d.version_index, rm_hash_mix64(rnd), load_from_input,
                                         &l, excl, 2, &ep);
        if (rc == 0 || rc == RM_ROUTE_NO_RULE) {
            if (prc == 0 && (ep == NULL || ep->draining))
                abort();
            if (prc == 0 && load_from_input(&l, ep) < 0 &&
                !retry_may_take_ejected(&svc->versions[d.version_index], ep, excl, 2, &l))
                abort();
        } else if (prc == 0) {
            abort(); /* NO_VERSION: nothing ready, so nothing may be picked */
        }
    }
    for (size_t i = 0; i < req.nheaders; i++)
        (void)rm_snapshot_service_by_host(snap, headers[i].value, headers[i].value_len);
    (void)rm_snapshot_service_by_host(snap, lines[1], lens[1]);
    return 0;
}
