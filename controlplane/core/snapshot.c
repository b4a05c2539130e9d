/* controlplane/core/snapshot.c — builds the snapshot of one scope: the config version, a fresh
 * nonce, the scope's part of the ConfigSet and its resolved endpoints (static Service endpoints,
 * then registered sidecars in connection order, draining ones marked). Every registered endpoint
 * is a Remora sidecar's and is sent with `sidecar` set; a static one carries its document's
 * `sidecar: true|false`.
 *
 * What a scope holds (see control.h): the Services its egress list names, closed over the
 * references a sidecar's validator resolves — a Route's mirror to another service brings that
 * Service in, with its own Routes, CircuitBreakers and endpoints (the mirror copy is routed by
 * them), transitively. Routes and CircuitBreakers name only their own Service otherwise, so
 * every reference in a scoped ConfigSet resolves inside it: common/config's validator and
 * dataplane/snapshot's compiler accept whatever the whole set passed. The "all" scope is the whole
 * ConfigSet and every endpoint, as before scopes existed.
 *
 * A rebuild whose content equals the scope's current snapshot (same config version, and an
 * endpoint list with the same hash) keeps it: same generation and nonce, so nothing is sent.
 * That is what keeps a scoped sidecar quiet while other services' endpoints come and go.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/core/core-int.h"
#include "remora/v1/discovery.pb-c.h"

void rm_snapshot_bytes_ref(rm_snapshot_bytes_t *b)
{
    /* Relaxed: whoever takes a reference already holds one, so nothing can free it meanwhile. */
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
}

void rm_snapshot_bytes_unref(rm_snapshot_bytes_t *b)
{
    /* Release on every drop and acquire before the free, so the freeing thread sees every other
     * holder's reads of the bytes finished (the usual refcount argument). */
    if (b != NULL && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_release) == 1) {
        atomic_thread_fence(memory_order_acquire);
        free(b);
    }
}

void rm__snapshot_clear(rm_scope_snapshot_t *s)
{
    rm_snapshot_bytes_unref(s->bytes);
    s->bytes = NULL;
    s->data = NULL;
    s->len = 0;
}

static const char *ns_of(const char *ns)
{
    return ns != NULL && *ns ? ns : "default";
}

static const char *or_empty(const char *s)
{
    return s != NULL ? s : "";
}

/*
 * Lookup tables for scoped builds, rebuilt when c->changes moved (every config install and
 * endpoint change goes through rm_control_changed, so borrowed pointers in here are valid while
 * `changes` matches): config services sorted by (namespace, name), and registered endpoints
 * sorted by (namespace, service) in connection order. With them a scope's build costs its own
 * services and endpoints (binary searches), not the whole registry: a push to 1,000 distinct
 * scopes over 1,000 endpoints stays linear-logarithmic instead of cubic.
 */
typedef struct svc_key {
    const char *ns, *name;
    size_t idx; /* in c->config->services */
} svc_key_t;

typedef struct ep_ref {
    const char *ns, *service;
    size_t order;           /* connection order, to keep it within one service */
    const rm_sidecar_t *sc; /* borrowed from the registry */
} ep_ref_t;

struct rm__snap_index {
    uint64_t changes;
    const Remora__V1__ConfigSet *config; /* borrowed: the config it indexes */
    svc_key_t *svcs;
    size_t n_svcs;
    ep_ref_t *eps;
    size_t n_eps;
};

static int cmp_svc(const void *a, const void *b)
{
    const svc_key_t *x = a, *y = b;
    int c = strcmp(x->ns, y->ns);
    return c ? c : strcmp(x->name, y->name);
}

static int cmp_ep(const void *a, const void *b)
{
    const ep_ref_t *x = a, *y = b;
    int c = strcmp(x->ns, y->ns);
    if (c == 0)
        c = strcmp(x->service, y->service);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}

void rm__snapshot_index_free(rm_control_t *c)
{
    if (c->index == NULL)
        return;
    free(c->index->svcs);
    free(c->index->eps);
    free(c->index);
    c->index = NULL;
}

static const struct rm__snap_index *index_of(rm_control_t *c)
{
    struct rm__snap_index *x = c->index;
    if (x != NULL && x->changes == c->changes && x->config == c->config)
        return x;
    rm__snapshot_index_free(c);
    x = c->index = rm_xcalloc(1, sizeof(*x));
    x->changes = c->changes;
    x->config = c->config;
    const Remora__V1__ConfigSet *cfg = c->config;
    x->svcs = rm_xcalloc(cfg->n_services ? cfg->n_services : 1, sizeof(*x->svcs));
    for (size_t i = 0; i < cfg->n_services; i++) {
        const Remora__V1__Service *s = cfg->services[i];
        if (s->name != NULL)
            x->svcs[x->n_svcs++] = (svc_key_t){ns_of(s->namespace_), s->name, i};
    }
    qsort(x->svcs, x->n_svcs, sizeof(*x->svcs), cmp_svc);
    x->eps = rm_xcalloc(c->registry.count ? c->registry.count : 1, sizeof(*x->eps));
    size_t order = 0;
    for (const rm_sidecar_t *sc = c->registry.head; sc != NULL; sc = sc->next, order++)
        if (sc->has_endpoint && x->n_eps < c->registry.count)
            x->eps[x->n_eps++] = (ep_ref_t){sc->namespace_, sc->service, order, sc};
    qsort(x->eps, x->n_eps, sizeof(*x->eps), cmp_ep);
    return x;
}

/* The index of Service ns/name in the config, or -1. */
static long find_service(const struct rm__snap_index *x, const char *ns, const char *name)
{
    if (name == NULL)
        return -1;
    svc_key_t key = {ns, name, 0};
    const svc_key_t *k = bsearch(&key, x->svcs, x->n_svcs, sizeof(key), cmp_svc);
    return k != NULL ? (long)k->idx : -1;
}

static int selected(const struct rm__snap_index *x, const unsigned char *sel, const char *ns,
                    const char *name)
{
    long i = find_service(x, ns, name);
    return i >= 0 && sel[i];
}

/* Marks the services of `scope` in sel[], then the services their routes mirror to, until no
 * more come in. Returns how many are selected. */
static size_t select_services(const Remora__V1__ConfigSet *cfg, const struct rm__snap_index *x,
                              const rm_scope_t *scope, unsigned char *sel)
{
    size_t n = 0;
    for (size_t i = 0; i < scope->n_items; i++) {
        /* items are "name.ns" with a DNS-label name: the first dot splits them */
        const char *it = scope->items[i], *dot = strchr(it, '.');
        char name[64];
        if (dot == NULL || (size_t)(dot - it) >= sizeof(name))
            continue;
        memcpy(name, it, (size_t)(dot - it));
        name[dot - it] = '\0';
        long k = find_service(x, dot + 1, name);
        if (k >= 0 && !sel[k]) {
            sel[k] = 1;
            n++;
        }
    }
    for (int more = 1; more;) {
        more = 0;
        for (size_t i = 0; i < cfg->n_routes; i++) {
            const Remora__V1__Route *r = cfg->routes[i];
            const char *ns = ns_of(r->namespace_);
            if (!selected(x, sel, ns, r->service))
                continue;
            for (size_t j = 0; j < r->n_rules; j++) {
                const Remora__V1__Mirror *m = r->rules[j]->mirror;
                if (m == NULL || m->service == NULL || *m->service == '\0')
                    continue;
                long k = find_service(x, ns, m->service);
                if (k >= 0 && !sel[k]) {
                    sel[k] = 1;
                    n++;
                    more = 1;
                }
            }
        }
    }
    return n;
}

static void put_registered(Remora__V1__ResolvedEndpoint *r, const rm_sidecar_t *sc)
{
    remora__v1__resolved_endpoint__init(r);
    r->service = sc->service;
    r->namespace_ = sc->namespace_;
    r->version = sc->version;
    r->address = sc->address;
    r->pod = sc->pod;
    r->draining = sc->draining;
    r->sidecar = 1; /* only sidecars register */
}

/* FNV-1a, 64 bits: over the endpoint list, to tell "nothing changed for this scope". */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t fnv_str(uint64_t h, const char *s)
{
    return fnv(h, s, strlen(s) + 1); /* the NUL separates fields */
}

static uint64_t endpoints_hash(Remora__V1__ResolvedEndpoint *const *eps, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    h = fnv(h, &n, sizeof(n));
    for (size_t i = 0; i < n; i++) {
        const Remora__V1__ResolvedEndpoint *e = eps[i];
        h = fnv_str(h, e->service);
        h = fnv_str(h, e->namespace_);
        h = fnv_str(h, e->version);
        h = fnv_str(h, e->address);
        h = fnv_str(h, e->pod);
        h = fnv(h, &e->draining, sizeof(e->draining));
        h = fnv(h, &e->sidecar, sizeof(e->sidecar));
    }
    return h;
}

void rm__snapshot_build(rm_control_t *c, rm_scope_t *scope)
{
    const Remora__V1__ConfigSet *cfg = c->config;
    int all = scope->n_items == 0;
    const struct rm__snap_index *x = all ? NULL : index_of(c);
    unsigned char *sel = rm_xcalloc(cfg->n_services ? cfg->n_services : 1, 1);
    size_t n_sel = all ? cfg->n_services : select_services(cfg, x, scope, sel);

    /* The scope's ConfigSet: borrowed pointers into c->config, in the config's order. */
    Remora__V1__ConfigSet view = REMORA__V1__CONFIG_SET__INIT;
    view.services = rm_xcalloc_ptrs(n_sel);
    view.routes = rm_xcalloc_ptrs(cfg->n_routes);
    view.circuit_breakers = rm_xcalloc_ptrs(cfg->n_circuit_breakers);
    size_t n_static = 0;
    for (size_t i = 0; i < cfg->n_services; i++) {
        if (all || sel[i]) {
            view.services[view.n_services++] = cfg->services[i];
            n_static += cfg->services[i]->n_endpoints;
        }
    }
    for (size_t i = 0; i < cfg->n_routes; i++) {
        const Remora__V1__Route *r = cfg->routes[i];
        if (all || selected(x, sel, ns_of(r->namespace_), r->service))
            view.routes[view.n_routes++] = cfg->routes[i];
    }
    for (size_t i = 0; i < cfg->n_circuit_breakers; i++) {
        const Remora__V1__CircuitBreaker *b = cfg->circuit_breakers[i];
        if (all || selected(x, sel, ns_of(b->namespace_), b->service))
            view.circuit_breakers[view.n_circuit_breakers++] = cfg->circuit_breakers[i];
    }

    size_t cap = n_static + c->registry.count, k = 0;
    Remora__V1__ResolvedEndpoint *eps = rm_xcalloc(cap ? cap : 1, sizeof(*eps));
    Remora__V1__ResolvedEndpoint **ptrs = rm_xcalloc_ptrs(cap);

    /* Every string below is borrowed from the config or the registry for the pack. */
    for (size_t i = 0; i < view.n_services; i++) {
        const Remora__V1__Service *s = view.services[i];
        for (size_t j = 0; j < s->n_endpoints; j++) {
            const Remora__V1__Endpoint *e = s->endpoints[j];
            Remora__V1__ResolvedEndpoint *r = &eps[k];
            remora__v1__resolved_endpoint__init(r);
            r->service = (char *)or_empty(s->name);
            r->namespace_ = (char *)ns_of(s->namespace_);
            r->version = (char *)or_empty(e->version);
            r->address = (char *)or_empty(e->address);
            r->sidecar = e->has_sidecar && e->sidecar;
            ptrs[k++] = r;
        }
    }
    if (all) {
        /* Everything, in connection order (also endpoints of services no document describes
         * yet). */
        for (rm_sidecar_t *sc = c->registry.head; sc != NULL && k < cap; sc = sc->next) {
            if (!sc->has_endpoint)
                continue;
            put_registered(&eps[k], sc);
            ptrs[k] = &eps[k];
            k++;
        }
    } else {
        /* Only the selected services' registered endpoints: a range of the sorted index each. */
        for (size_t i = 0; i < view.n_services; i++) {
            const Remora__V1__Service *s = view.services[i];
            ep_ref_t key = {ns_of(s->namespace_), or_empty(s->name), 0, NULL};
            size_t lo = 0, hi = x->n_eps;
            while (lo < hi) { /* the first entry >= (ns, service, order 0) */
                size_t mid = lo + (hi - lo) / 2;
                if (cmp_ep(&x->eps[mid], &key) < 0)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            for (; lo < x->n_eps && k < cap && strcmp(x->eps[lo].ns, key.ns) == 0 &&
                   strcmp(x->eps[lo].service, key.service) == 0;
                 lo++) {
                if (!x->eps[lo].sc->has_endpoint)
                    continue;
                put_registered(&eps[k], x->eps[lo].sc);
                ptrs[k] = &eps[k];
                k++;
            }
        }
    }

    rm_scope_snapshot_t *sn = &scope->snap;
    uint64_t content = endpoints_hash(ptrs, k);
    scope->built = c->changes;
    if (sn->gen != 0 && sn->version == c->version && scope->content == content)
        goto out; /* the same content: keep the snapshot every stream of the scope has */

    sn->gen = ++c->gen;
    sn->version = c->version;
    sn->n_endpoints = k;
    scope->content = content;
    snprintf(sn->nonce, sizeof(sn->nonce), "%s-%llu", c->boot_id, (unsigned long long)sn->gen);

    Remora__V1__Snapshot snap = REMORA__V1__SNAPSHOT__INIT;
    snap.version = c->version;
    snap.nonce = sn->nonce;
    snap.config = &view;
    snap.n_endpoints = k;
    snap.endpoints = ptrs;
    Remora__V1__DiscoveryResponse resp = REMORA__V1__DISCOVERY_RESPONSE__INIT;
    resp.snapshot = &snap;
    size_t len = protobuf_c_message_get_packed_size(&resp.base);
    rm_snapshot_bytes_t *b = rm_xmalloc(sizeof(*b) + (len ? len : 1));
    atomic_init(&b->refs, 1);
    b->len = protobuf_c_message_pack(&resp.base, b->data);
    rm__snapshot_clear(sn);
    sn->bytes = b;
    sn->data = b->data;
    sn->len = b->len;
    c->pushes++;
out:
    free(ptrs);
    free(eps);
    free(view.services);
    free(view.routes);
    free(view.circuit_breakers);
    free(sel);
}
