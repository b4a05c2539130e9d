/* dataplane/snapshot/testutil.c — test-only ConfigSet/ResolvedEndpoint builders (testutil.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/snapshot/testutil.h"

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL) {
        fprintf(stderr, "testutil: out of memory\n");
        abort();
    }
    return p;
}

static char *xstrdup(const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = xmalloc(n);
    memcpy(d, s, n);
    return d;
}

/* Appends item (of type T) to a protobuf-c repeated field (array of T + count). */
#define APPEND(T, arr, n, item)                                                                    \
    do {                                                                                           \
        void *p_ = realloc((arr), ((n) + 1) * sizeof(T));                                          \
        if (p_ == NULL)                                                                            \
            abort();                                                                               \
        (arr) = p_;                                                                                \
        (arr)[(n)++] = (item);                                                                     \
    } while (0)

Remora__V1__ConfigSet *tu_set_new(void)
{
    Remora__V1__ConfigSet *s = xmalloc(sizeof(*s));
    remora__v1__config_set__init(s);
    return s;
}

void tu_set_free(Remora__V1__ConfigSet *set)
{
    if (set != NULL)
        remora__v1__config_set__free_unpacked(set, NULL);
}

Remora__V1__Service *tu_service(Remora__V1__ConfigSet *set, const char *name, const char *ns,
                                uint32_t port)
{
    Remora__V1__Service *s = xmalloc(sizeof(*s));
    remora__v1__service__init(s);
    s->kind = xstrdup("Service");
    s->name = xstrdup(name);
    s->namespace_ = xstrdup(ns);
    if (port != 0) {
        s->has_port = 1;
        s->port = port;
    }
    APPEND(Remora__V1__Service *, set->services, set->n_services, s);
    return s;
}

void tu_service_host(Remora__V1__Service *svc, const char *host)
{
    APPEND(char *, svc->hosts, svc->n_hosts, xstrdup(host));
}

void tu_service_vip(Remora__V1__Service *svc, const char *vip)
{
    free(svc->vip);
    svc->vip = xstrdup(vip);
}

Remora__V1__Endpoint *tu_service_endpoint(Remora__V1__Service *svc, const char *address,
                                          const char *version)
{
    Remora__V1__Endpoint *e = xmalloc(sizeof(*e));
    remora__v1__endpoint__init(e);
    e->address = xstrdup(address);
    e->version = xstrdup(version);
    APPEND(Remora__V1__Endpoint *, svc->endpoints, svc->n_endpoints, e);
    return e;
}

Remora__V1__Route *tu_route(Remora__V1__ConfigSet *set, const char *name, const char *ns,
                            const char *service)
{
    Remora__V1__Route *r = xmalloc(sizeof(*r));
    remora__v1__route__init(r);
    r->kind = xstrdup("Route");
    r->name = xstrdup(name);
    r->namespace_ = xstrdup(ns);
    r->service = xstrdup(service);
    APPEND(Remora__V1__Route *, set->routes, set->n_routes, r);
    return r;
}

Remora__V1__Rule *tu_rule(Remora__V1__Route *route, const char *name)
{
    Remora__V1__Rule *r = xmalloc(sizeof(*r));
    remora__v1__rule__init(r);
    r->name = xstrdup(name);
    APPEND(Remora__V1__Rule *, route->rules, route->n_rules, r);
    return r;
}

void tu_dest(Remora__V1__Rule *rule, const char *version, int64_t weight)
{
    Remora__V1__Destination *d = xmalloc(sizeof(*d));
    remora__v1__destination__init(d);
    d->version = xstrdup(version);
    if (weight >= 0) {
        d->has_weight = 1;
        d->weight = (uint32_t)weight;
    }
    APPEND(Remora__V1__Destination *, rule->destinations, rule->n_destinations, d);
}

static Remora__V1__Match *match_of(Remora__V1__Rule *rule)
{
    if (rule->match == NULL) {
        rule->match = xmalloc(sizeof(*rule->match));
        remora__v1__match__init(rule->match);
    }
    return rule->match;
}

static Remora__V1__StringMatch *string_match(int kind, const char *value)
{
    Remora__V1__StringMatch *m = xmalloc(sizeof(*m));
    remora__v1__string_match__init(m);
    switch (kind) {
    case TU_EXACT:
        m->kind_case = REMORA__V1__STRING_MATCH__KIND_EXACT;
        m->exact = xstrdup(value);
        break;
    case TU_PREFIX:
        m->kind_case = REMORA__V1__STRING_MATCH__KIND_PREFIX;
        m->prefix = xstrdup(value);
        break;
    case TU_SUFFIX:
        m->kind_case = REMORA__V1__STRING_MATCH__KIND_SUFFIX;
        m->suffix = xstrdup(value);
        break;
    case TU_REGEX:
        m->kind_case = REMORA__V1__STRING_MATCH__KIND_REGEX;
        m->regex = xstrdup(value);
        break;
    case TU_PRESENT:
        m->kind_case = REMORA__V1__STRING_MATCH__KIND_PRESENT;
        m->present = 1;
        break;
    case TU_ABSENT:
        m->kind_case = REMORA__V1__STRING_MATCH__KIND_ABSENT;
        m->absent = 1;
        break;
    default:
        abort();
    }
    return m;
}

void tu_match_header(Remora__V1__Rule *rule, const char *name, int kind, const char *value)
{
    Remora__V1__Match *m = match_of(rule);
    Remora__V1__Match__HeadersEntry *e = xmalloc(sizeof(*e));
    remora__v1__match__headers_entry__init(e);
    e->key = xstrdup(name);
    e->value = string_match(kind, value);
    APPEND(Remora__V1__Match__HeadersEntry *, m->headers, m->n_headers, e);
}

void tu_match_cookie(Remora__V1__Rule *rule, const char *name, int kind, const char *value)
{
    Remora__V1__Match *m = match_of(rule);
    Remora__V1__Match__CookiesEntry *e = xmalloc(sizeof(*e));
    remora__v1__match__cookies_entry__init(e);
    e->key = xstrdup(name);
    e->value = string_match(kind, value);
    APPEND(Remora__V1__Match__CookiesEntry *, m->cookies, m->n_cookies, e);
}

void tu_match_query(Remora__V1__Rule *rule, const char *name, int kind, const char *value)
{
    Remora__V1__Match *m = match_of(rule);
    Remora__V1__Match__QueryEntry *e = xmalloc(sizeof(*e));
    remora__v1__match__query_entry__init(e);
    e->key = xstrdup(name);
    e->value = string_match(kind, value);
    APPEND(Remora__V1__Match__QueryEntry *, m->query, m->n_query, e);
}

void tu_match_path(Remora__V1__Rule *rule, int kind, const char *value)
{
    Remora__V1__Match *m = match_of(rule);
    Remora__V1__PathMatch *p = xmalloc(sizeof(*p));
    remora__v1__path_match__init(p);
    switch (kind) {
    case TU_EXACT:
        p->kind_case = REMORA__V1__PATH_MATCH__KIND_EXACT;
        p->exact = xstrdup(value);
        break;
    case TU_PREFIX:
        p->kind_case = REMORA__V1__PATH_MATCH__KIND_PREFIX;
        p->prefix = xstrdup(value);
        break;
    case TU_REGEX:
        p->kind_case = REMORA__V1__PATH_MATCH__KIND_REGEX;
        p->regex = xstrdup(value);
        break;
    default:
        abort();
    }
    if (m->path != NULL)
        remora__v1__path_match__free_unpacked(m->path, NULL);
    m->path = p;
}

void tu_match_method(Remora__V1__Rule *rule, const char *method)
{
    Remora__V1__Match *m = match_of(rule);
    free(m->method);
    m->method = xstrdup(method);
}

static Remora__V1__StickyOn *sticky_of(Remora__V1__Rule *rule)
{
    if (rule->sticky_on != NULL)
        remora__v1__sticky_on__free_unpacked(rule->sticky_on, NULL);
    rule->sticky_on = xmalloc(sizeof(*rule->sticky_on));
    remora__v1__sticky_on__init(rule->sticky_on);
    return rule->sticky_on;
}

void tu_sticky_header(Remora__V1__Rule *rule, const char *name)
{
    Remora__V1__StickyOn *s = sticky_of(rule);
    s->key_case = REMORA__V1__STICKY_ON__KEY_HEADER;
    s->header = xstrdup(name);
}

void tu_sticky_cookie(Remora__V1__Rule *rule, const char *name)
{
    Remora__V1__StickyOn *s = sticky_of(rule);
    s->key_case = REMORA__V1__STICKY_ON__KEY_COOKIE;
    s->cookie = xstrdup(name);
}

void tu_mirror(Remora__V1__Rule *rule, const char *version, const char *service, int percent)
{
    if (rule->mirror != NULL)
        remora__v1__mirror__free_unpacked(rule->mirror, NULL);
    Remora__V1__Mirror *m = xmalloc(sizeof(*m));
    remora__v1__mirror__init(m);
    m->version = xstrdup(version);
    m->service = xstrdup(service);
    if (percent >= 0) {
        m->has_percent = 1;
        m->percent = (uint32_t)percent;
    }
    rule->mirror = m;
}

void tu_timeout(Remora__V1__Rule *rule, uint64_t ms)
{
    if (rule->timeout == NULL) {
        rule->timeout = xmalloc(sizeof(*rule->timeout));
        remora__v1__duration__init(rule->timeout);
    }
    rule->timeout->has_millis = 1;
    rule->timeout->millis = ms;
}

Remora__V1__RetryPolicy *tu_retries(Remora__V1__Rule *rule, uint32_t attempts)
{
    if (rule->retries == NULL) {
        rule->retries = xmalloc(sizeof(*rule->retries));
        remora__v1__retry_policy__init(rule->retries);
    }
    rule->retries->has_attempts = 1;
    rule->retries->attempts = attempts;
    return rule->retries;
}

void tu_retry_on(Remora__V1__RetryPolicy *rp, const char *on)
{
    APPEND(char *, rp->retry_on, rp->n_retry_on, xstrdup(on));
}

Remora__V1__CircuitBreaker *tu_cb(Remora__V1__ConfigSet *set, const char *name, const char *service,
                                  const char *version, uint32_t max_requests)
{
    Remora__V1__CircuitBreaker *cb = xmalloc(sizeof(*cb));
    remora__v1__circuit_breaker__init(cb);
    cb->kind = xstrdup("CircuitBreaker");
    cb->name = xstrdup(name);
    cb->service = xstrdup(service);
    cb->version = xstrdup(version);
    cb->limits = xmalloc(sizeof(*cb->limits));
    remora__v1__limits__init(cb->limits);
    cb->limits->has_max_requests = 1;
    cb->limits->max_requests = max_requests;
    APPEND(Remora__V1__CircuitBreaker *, set->circuit_breakers, set->n_circuit_breakers, cb);
    return cb;
}

void tu_eps_add(tu_eps_t *eps, const char *service, const char *ns, const char *version,
                const char *address, int draining)
{
    Remora__V1__ResolvedEndpoint *e = xmalloc(sizeof(*e));
    remora__v1__resolved_endpoint__init(e);
    e->service = xstrdup(service ? service : "");
    e->namespace_ = xstrdup(ns ? ns : "");
    e->version = xstrdup(version ? version : "");
    e->address = xstrdup(address ? address : "");
    e->pod = xstrdup("");
    e->draining = draining != 0;
    APPEND(Remora__V1__ResolvedEndpoint *, eps->v, eps->n, e);
}

void tu_eps_add_registered(tu_eps_t *eps, const char *service, const char *ns, const char *version,
                           const char *address, const char *pod)
{
    tu_eps_add(eps, service, ns, version, address, 0);
    Remora__V1__ResolvedEndpoint *e = eps->v[eps->n - 1];
    free(e->pod);
    e->pod = xstrdup(pod ? pod : "");
    e->sidecar = 1;
}

void tu_eps_free(tu_eps_t *eps)
{
    for (size_t i = 0; i < eps->n; i++) {
        Remora__V1__ResolvedEndpoint *e = eps->v[i];
        free(e->service);
        free(e->namespace_);
        free(e->version);
        free(e->address);
        free(e->pod);
        free(e);
    }
    free(eps->v);
    eps->v = NULL;
    eps->n = 0;
}
