/* dataplane/route/route.c — the routing decision (rule, weighted or sticky version, mirror
 * sampling) and power-of-two-choices endpoint picking. See route.h for the contract.
 */
#include <limits.h>
#include <string.h>

#include "dataplane/route/route.h"
#include "dataplane/snapshot/hash.h"

/* Derives the mirror-sampling value from random64: fmix64 is a bijection with full avalanche,
 * so (mix(x ^ c) % 100) is as uniform as x and practically uncorrelated with (x % S). */
#define MIRROR_SALT 0x9e3779b97f4a7c15ULL

/* Index into rule->destinations for x, walking the cumulative ranges. weight_sum > 0. */
static size_t choose(const rm_rule_t *rule, uint64_t x)
{
    uint64_t t = x % rule->weight_sum;
    for (size_t i = 0; i < rule->ndestinations; i++) {
        uint64_t w = rule->destinations[i].weight;
        if (t < w)
            return i;
        t -= w;
    }
    return rule->ndestinations - 1; /* unreachable: the weights add up to weight_sum */
}

/* The non-empty stickyOn key of req, or NULL. */
static const char *sticky_key(const rm_sticky_t *st, const rm_request_view_t *req, size_t *len)
{
    const char *v = NULL;
    if (st->kind == RM_STICKY_HEADER)
        v = rm_route_header_value(req, st->name, st->name_len, len);
    else if (st->kind == RM_STICKY_COOKIE)
        v = rm_route_cookie_value(req, st->name, st->name_len, len);
    /* An empty key would put every user without one on the same version: random instead. */
    return (v != NULL && *len > 0) ? v : NULL;
}

int rm_route_decide(const rm_service_t *svc, const rm_request_view_t *req, uint64_t random64,
                    rm_route_decision_t *out)
{
    if (svc == NULL || req == NULL || out == NULL)
        return RM_ROUTE_EINVAL;
    const rm_rule_t *rule = NULL;
    for (size_t i = 0; i < svc->nrules; i++) {
        if (rm_route_match(&svc->rules[i].match, req)) {
            rule = &svc->rules[i];
            break;
        }
    }
    int rc = 0;
    if (rule == NULL) {
        rule = svc->default_rule;
        rc = RM_ROUTE_NO_RULE;
    }

    out->rule = rule;
    out->rule_index = rule->index;
    out->rule_name = rule->name;
    out->route_name = rule->route_name;
    out->timeout_ms = rule->timeout_ms;
    out->retry = rule->retry;
    out->version_index = SIZE_MAX;
    out->version = NULL;
    out->sticky = false;

    out->mirror_policy = rule->mirror;
    out->mirror = false;
    out->mirror_service = NULL;
    out->mirror_version_index = SIZE_MAX;
    out->mirror_version = NULL;
    if (rule->mirror != NULL) {
        const rm_mirror_t *m = rule->mirror;
        out->mirror = rm_hash_mix64(random64 ^ MIRROR_SALT) % 100 < m->percent;
        if (out->mirror) {
            out->mirror_service = m->service;
            out->mirror_version_index = m->version_index;
            out->mirror_version = m->version;
        }
    }

    if (rule->weight_sum == 0)
        return RM_ROUTE_NO_VERSION;
    uint64_t x = random64;
    if (rule->sticky.kind != RM_STICKY_NONE) {
        size_t klen;
        const char *key = sticky_key(&rule->sticky, req, &klen);
        if (key != NULL) {
            x = rm_hash64(key, klen);
            out->sticky = true;
        }
    }
    const rm_version_t *v = &svc->versions[rule->destinations[choose(rule, x)].version_index];
    out->version_index = v->index;
    out->version = v->name;
    if (v->nready == 0)
        return RM_ROUTE_NO_VERSION;
    return rc;
}

static bool excluded(uint64_t key, const uint64_t *keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (keys[i] == key)
            return true;
    return false;
}

typedef struct pick {
    const rm_version_t *v;
    int (*load)(void *ctx, const rm_endpoint_ref_t *ep);
    void *ctx;
    const uint64_t *exclude;
    size_t nexclude;
    bool allow_ejected;    /* this pass may take an ejected endpoint (as the heaviest) */
    bool skipped_excluded; /* some endpoint was passed over only because it was excluded */
    bool skipped_ejected;  /* ... only because it was ejected */
} pick_t;

/* The first usable endpoint at or after start (wrapping), other than skip; SIZE_MAX if none.
 * Stores its load in *load_out. */
static size_t probe(pick_t *pk, size_t start, size_t skip, int *load_out)
{
    size_t n = pk->v->nendpoints;
    for (size_t k = 0; k < n; k++) {
        size_t i = start + k < n ? start + k : start + k - n;
        const rm_endpoint_ref_t *ep = &pk->v->endpoints[i];
        if (i == skip || ep->draining)
            continue;
        if (pk->nexclude > 0 && excluded(ep->key, pk->exclude, pk->nexclude)) {
            pk->skipped_excluded = true;
            continue;
        }
        int l = pk->load != NULL ? pk->load(pk->ctx, ep) : 0;
        if (l < 0) { /* ejected */
            pk->skipped_ejected = true;
            if (!pk->allow_ejected)
                continue;
            l = INT_MAX;
        }
        *load_out = l;
        return i;
    }
    return SIZE_MAX;
}

/* One power-of-two-choices draw under pk's current rules; SIZE_MAX when nothing qualifies. */
static size_t draw(pick_t *pk, size_t a, size_t b)
{
    int la = 0, lb = 0;
    size_t ia = probe(pk, a, SIZE_MAX, &la);
    if (ia == SIZE_MAX)
        return SIZE_MAX;
    size_t ib = probe(pk, b, ia, &lb);
    return (ib != SIZE_MAX && lb < la) ? ib : ia;
}

int rm_route_pick_endpoint(const rm_service_t *svc, size_t version_index, uint64_t random64,
                           int (*load)(void *ctx, const rm_endpoint_ref_t *ep), void *ctx,
                           const uint64_t *exclude_keys, size_t nexclude,
                           const rm_endpoint_ref_t **out)
{
    if (svc == NULL || out == NULL || version_index >= svc->nversions ||
        (exclude_keys == NULL && nexclude > 0))
        return RM_ROUTE_EINVAL;
    pick_t pk = {
        .v = &svc->versions[version_index],
        .load = load,
        .ctx = ctx,
        .exclude = exclude_keys,
        .nexclude = nexclude,
    };
    size_t n = pk.v->nendpoints;
    if (n == 0)
        return RM_ROUTE_NO_ENDPOINT;
    /* Two start points: a uniform, b uniform over the others (so two usable endpoints are
     * always two distinct candidates). The halves of random64 are independent bits. */
    size_t a = (size_t)((random64 & 0xffffffffu) % n);
    size_t b = n > 1 ? (a + 1 + (size_t)((random64 >> 32) % (n - 1))) % n : a;
    size_t i = draw(&pk, a, b);
    if (i == SIZE_MAX && nexclude > 0 && pk.skipped_ejected) {
        /* A retry whose untried endpoints are all ejected takes one of those before going back
         * to one it tried: an ejection predicts failure from other requests' past, while the
         * tried endpoints just failed this very request. During a rollout the ejected one is
         * often a new pod ejected while its app was starting, the tried ones pods going away. */
        pk.allow_ejected = true;
        i = draw(&pk, a, b);
        pk.allow_ejected = false;
    }
    if (i == SIZE_MAX && pk.skipped_excluded) {
        /* Everything usable was excluded: a retry may go back to an endpoint it tried. */
        pk.nexclude = 0;
        i = draw(&pk, a, b);
    }
    if (i == SIZE_MAX)
        return RM_ROUTE_NO_ENDPOINT;
    *out = &pk.v->endpoints[i];
    return 0;
}

uint64_t rm_route_version_weight(const rm_rule_t *rule, size_t version_index)
{
    if (rule == NULL)
        return 0;
    uint64_t w = 0;
    for (size_t i = 0; i < rule->ndestinations; i++)
        if (rule->destinations[i].version_index == version_index)
            w += rule->destinations[i].weight;
    return w;
}

uint64_t rm_route_weight_sum(const rm_rule_t *rule)
{
    return rule == NULL ? 0 : rule->weight_sum;
}

double rm_route_version_share(const rm_rule_t *rule, size_t version_index)
{
    if (rule == NULL || rule->weight_sum == 0)
        return 0.0;
    return (double)rm_route_version_weight(rule, version_index) / (double)rule->weight_sum;
}
