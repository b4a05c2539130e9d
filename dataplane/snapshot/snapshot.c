/* dataplane/snapshot/snapshot.c — compiles a ConfigSet plus resolved endpoints into an immutable
 * snapshot: services, versions, endpoints, compiled rules, circuit breakers and lookup tables.
 *
 * Everything the data path reads per request is prepared here once: names lowercased, lengths
 * stored, regexes compiled (with JIT where available), weights summed, addresses parsed and
 * keyed. Build-time work may allocate and be linear; the per-request code in snapshot_lookup.c
 * and //dataplane/route must not.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/snapshot/hash.h"
#include "dataplane/snapshot/snapshot-int.h"
#include "dataplane/snapshot/snapshot.h"

#define DEFAULT_NS         "default"
#define DEFAULT_TIMEOUT_MS 15000u

/* SPEC.md / config.proto defaults, used when a document leaves a field out. */
static const rm_circuit_breaker_t default_cb = {
    .name = NULL,
    .max_connections = 1024,
    .max_pending_requests = 1024,
    .max_requests = 1024,
    .max_retries = 1024, /* as Istio: retries are bounded by the budget first */
    .consecutive_5xx = 5,
    .consecutive_gateway_errors = 3,
    .interval_ms = 10000,
    .base_ejection_time_ms = 30000,
    .max_ejection_percent = 10,
};

#define DEFAULT_RETRY_ON (RM_RETRY_ON_CONNECT_FAILURE | RM_RETRY_ON_RESET)

static const rm_retry_policy_t default_retry = {
    .attempts = 2,
    .per_try_timeout_ms = 0,
    .retry_on = DEFAULT_RETRY_ON,
    .retriable_status_codes = NULL,
    .nretriable_status_codes = 0,
    .backoff_base_ms = 25,
    .backoff_max_ms = 250,
    .budget_percent = 20,
    .budget_min_per_second = 10,
};

/* Build-time state of one endpoint, before endpoints are grouped by version. */
typedef struct bep {
    const char *address; /* arena */
    const char *version; /* arena */
    const char *pod;     /* arena */
    struct sockaddr_storage addr;
    socklen_t len;
    bool draining;
    bool sidecar;
    uint64_t key;
} bep_t;

/* Build-time state of one service (malloc'ed arrays, freed when the build ends). */
typedef struct bsvc {
    bep_t *eps;
    size_t neps, epcap;
    const char **vnames; /* version names in order of first appearance; borrowed */
    size_t nv, vcap;
    size_t nrules; /* rules counted in pass 1 */
    size_t filled; /* rules compiled so far in pass 2 */
} bsvc_t;

typedef struct build {
    rm_snapshot_t *s;
    bsvc_t *b; /* one per service */
    char *err;
    size_t errlen;
} build_t;

__attribute__((format(printf, 2, 3))) static int fail(build_t *bd, const char *fmt, ...)
{
    if (bd->err != NULL && bd->errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(bd->err, bd->errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static const char *ns_or_default(const char *ns)
{
    return (ns != NULL && ns[0] != '\0') ? ns : DEFAULT_NS;
}

static const char *str_or_empty(const char *s)
{
    return s != NULL ? s : "";
}

static int parse_port(const char *p, uint16_t *out)
{
    if (*p == '\0')
        return -1;
    unsigned long v = 0;
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (unsigned long)(*p - '0');
        if (v > 65535)
            return -1;
    }
    if (v == 0)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

/* Parses an IP literal (IPv4, or IPv6 with or without brackets) into ss with the given port. */
static int parse_ip(const char *ip, size_t n, uint16_t port, struct sockaddr_storage *ss,
                    socklen_t *len)
{
    char buf[INET6_ADDRSTRLEN + 2];
    if (n >= 2 && ip[0] == '[' && ip[n - 1] == ']') {
        ip++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, ip, n);
    buf[n] = '\0';
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, buf, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        *len = sizeof(*in);
        return 0;
    }
    if (inet_pton(AF_INET6, buf, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        *len = sizeof(*in6);
        return 0;
    }
    return -1;
}

/* "a.b.c.d:port" or "[v6]:port". */
static int parse_endpoint_addr(const char *a, struct sockaddr_storage *ss, socklen_t *len)
{
    const char *colon;
    if (a[0] == '[') {
        const char *close = strchr(a, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        colon = close + 1;
    } else {
        colon = strrchr(a, ':');
        if (colon == NULL || memchr(a, ':', (size_t)(colon - a)) != NULL)
            return -1; /* an unbracketed IPv6 address is ambiguous with its port */
    }
    uint16_t port;
    if (parse_port(colon + 1, &port) != 0)
        return -1;
    return parse_ip(a, (size_t)(colon - a), port, ss, len);
}

static char *arena_printf(rm__arena_t *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static char *arena_printf(rm__arena_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *p = rm__arena_alloc(a, (size_t)n + 1);
    if (p == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

/* Index of a version name in a build-time service, or SIZE_MAX. */
static size_t vname_find(const bsvc_t *b, const char *name)
{
    for (size_t i = 0; i < b->nv; i++)
        if (strcmp(b->vnames[i], name) == 0)
            return i;
    return SIZE_MAX;
}

static int vname_add(build_t *bd, bsvc_t *b, const char *name)
{
    if (vname_find(b, name) != SIZE_MAX)
        return 0;
    if (b->nv == b->vcap) {
        size_t cap = b->vcap ? b->vcap * 2 : 4;
        const char **v = realloc(b->vnames, cap * sizeof(*v));
        if (v == NULL)
            return fail(bd, "out of memory");
        b->vnames = v;
        b->vcap = cap;
    }
    b->vnames[b->nv++] = name;
    return 0;
}

static rm_service_t *svc_lookup(build_t *bd, const char *ns, const char *name)
{
    if (name == NULL)
        return NULL;
    return (rm_service_t *)rm_snapshot_service_by_name(bd->s, ns_or_default(ns), name);
}

/* Pass: services, their names table and vips. */
static int build_services(build_t *bd)
{
    rm_snapshot_t *s = bd->s;
    const Remora__V1__ConfigSet *cfg = s->cfg;
    s->nservices = cfg->n_services;
    s->services = rm__arena_calloc(&s->arena, s->nservices, sizeof(*s->services));
    bd->b = calloc(s->nservices ? s->nservices : 1, sizeof(*bd->b));
    if (s->services == NULL || bd->b == NULL ||
        rm__htab_init(&s->by_name, &s->arena, s->nservices) != 0)
        return fail(bd, "out of memory");
    for (size_t i = 0; i < s->nservices; i++) {
        const Remora__V1__Service *p = cfg->services[i];
        rm_service_t *svc = &s->services[i];
        if (p == NULL || p->name == NULL || p->name[0] == '\0')
            return fail(bd, "service #%zu: no name", i + 1);
        const char *ns = ns_or_default(p->namespace_);
        if (rm_snapshot_service_by_name(s, ns, p->name) != NULL)
            return fail(bd, "service %s/%s: defined twice", ns, p->name);
        if (p->has_port && (p->port == 0 || p->port > 65535))
            return fail(bd, "service %s/%s: port %u out of range 1..65535", ns, p->name, p->port);
        svc->name = p->name;
        svc->namespace_ = ns;
        svc->key = rm_hash64(p->name, strlen(p->name)) | 1;
        svc->limits_key = rm_snapshot_limits_key(ns, p->name, "");
        svc->index = i;
        svc->port = p->has_port ? (uint16_t)p->port : 0;
        svc->proto = p;
        svc->cb = &default_cb;
        if (p->vip != NULL && p->vip[0] != '\0') {
            if (parse_ip(p->vip, strlen(p->vip), svc->port, &svc->vip_addr, &svc->vip_len) != 0)
                return fail(bd, "service %s/%s: vip \"%s\" is not an IPv4 or IPv6 address", ns,
                            p->name, p->vip);
            svc->vip = p->vip;
        }
        char *key = arena_printf(&s->arena, "%s/%s", ns, p->name);
        if (key == NULL)
            return fail(bd, "out of memory");
        size_t nslen = strlen(ns), namelen = strlen(p->name);
        rm__htab_put(&s->by_name, rm__name_hash(ns, nslen, p->name, namelen), key,
                     nslen + 1 + namelen, svc);
    }
    return 0;
}

/* Pass: endpoints, deduplicated per service, and the versions they name. */
static int collect_endpoints(build_t *bd, Remora__V1__ResolvedEndpoint *const *eps, size_t neps)
{
    rm_snapshot_t *s = bd->s;
    for (size_t i = 0; i < neps; i++) {
        const Remora__V1__ResolvedEndpoint *e = eps[i];
        if (e == NULL || e->service == NULL || e->service[0] == '\0')
            continue;
        rm_service_t *svc = svc_lookup(bd, e->namespace_, e->service);
        if (svc == NULL)
            continue; /* discovery knows services this config does not route: not ours */
        const char *ns = svc->namespace_;
        const char *addr = str_or_empty(e->address);
        bep_t ep;
        memset(&ep, 0, sizeof(ep));
        if (parse_endpoint_addr(addr, &ep.addr, &ep.len) != 0)
            return fail(bd,
                        "service %s/%s: endpoint address \"%s\" is not IPv4:port or "
                        "[IPv6]:port",
                        ns, svc->name, addr);
        ep.key = rm_hash64(addr, strlen(addr));
        bsvc_t *b = &bd->b[svc->index];
        bool dup = false;
        for (size_t k = 0; k < b->neps; k++) {
            if (b->eps[k].key == ep.key && strcmp(b->eps[k].address, addr) == 0) {
                /* Static and registered copies of one pod: one endpoint; withdrawn wins, and
                 * it is a sidecar if either copy says so (a registered copy always does). */
                b->eps[k].draining = b->eps[k].draining || e->draining;
                b->eps[k].sidecar = b->eps[k].sidecar || e->sidecar;
                dup = true;
                break;
            }
        }
        if (dup)
            continue;
        ep.address = rm__arena_strndup(&s->arena, addr, strlen(addr));
        ep.version = rm__arena_strndup(&s->arena, str_or_empty(e->version),
                                       strlen(str_or_empty(e->version)));
        ep.pod = rm__arena_strndup(&s->arena, str_or_empty(e->pod), strlen(str_or_empty(e->pod)));
        ep.draining = e->draining != 0;
        ep.sidecar = e->sidecar != 0;
        if (ep.address == NULL || ep.version == NULL || ep.pod == NULL)
            return fail(bd, "out of memory");
        if (b->neps == b->epcap) {
            size_t cap = b->epcap ? b->epcap * 2 : 4;
            bep_t *v = realloc(b->eps, cap * sizeof(*v));
            if (v == NULL)
                return fail(bd, "out of memory");
            b->eps = v;
            b->epcap = cap;
        }
        b->eps[b->neps++] = ep;
        if (vname_add(bd, b, ep.version) != 0)
            return -1;
    }
    return 0;
}

/* Pass 1 over routes: which service each belongs to, how many rules, versions they name. */
static int scan_routes(build_t *bd)
{
    const Remora__V1__ConfigSet *cfg = bd->s->cfg;
    for (size_t r = 0; r < cfg->n_routes; r++) {
        const Remora__V1__Route *route = cfg->routes[r];
        if (route == NULL)
            continue;
        const char *ns = ns_or_default(route->namespace_);
        const char *rname = str_or_empty(route->name);
        rm_service_t *svc = svc_lookup(bd, ns, route->service);
        if (svc == NULL)
            return fail(bd, "route %s/%s: service \"%s\" is not defined in namespace %s", ns, rname,
                        str_or_empty(route->service), ns);
        bsvc_t *b = &bd->b[svc->index];
        b->nrules += route->n_rules;
        for (size_t i = 0; i < route->n_rules; i++) {
            const Remora__V1__Rule *rule = route->rules[i];
            if (rule == NULL)
                return fail(bd, "route %s/%s: rule #%zu is empty", ns, rname, i + 1);
            for (size_t d = 0; d < rule->n_destinations; d++) {
                const Remora__V1__Destination *dst = rule->destinations[d];
                if (dst == NULL || dst->version == NULL)
                    return fail(bd, "route %s/%s: rule #%zu: destination #%zu has no version", ns,
                                rname, i + 1, d + 1);
                if (vname_add(bd, b, dst->version) != 0)
                    return -1;
            }
            const Remora__V1__Mirror *m = rule->mirror;
            if (m != NULL && m->version != NULL && m->version[0] != '\0') {
                rm_service_t *target = svc;
                if (m->service != NULL && m->service[0] != '\0')
                    target = svc_lookup(bd, ns, m->service);
                if (target == NULL)
                    return fail(bd,
                                "route %s/%s: rule #%zu: mirror service \"%s\" is not defined "
                                "in namespace %s",
                                ns, rname, i + 1, m->service, ns);
                if (vname_add(bd, &bd->b[target->index], m->version) != 0)
                    return -1;
            }
        }
    }
    return 0;
}

/* Versions and the endpoint array grouped by version, for every service. */
static int build_versions(build_t *bd)
{
    rm_snapshot_t *s = bd->s;
    for (size_t i = 0; i < s->nservices; i++) {
        rm_service_t *svc = &s->services[i];
        bsvc_t *b = &bd->b[i];
        rm_version_t *vers = rm__arena_calloc(&s->arena, b->nv, sizeof(*vers));
        rm_endpoint_ref_t *eps = rm__arena_calloc(&s->arena, b->neps, sizeof(*eps));
        if (vers == NULL || eps == NULL)
            return fail(bd, "out of memory");
        size_t n = 0;
        for (size_t v = 0; v < b->nv; v++) {
            rm_version_t *ver = &vers[v];
            ver->name = b->vnames[v];
            ver->name_len = strlen(ver->name);
            ver->index = v;
            ver->endpoints = &eps[n];
            ver->cb = svc->cb;
            ver->limits_key = rm_snapshot_limits_key(svc->namespace_, svc->name, ver->name);
            for (size_t k = 0; k < b->neps; k++) {
                const bep_t *src = &b->eps[k];
                if (strcmp(src->version, ver->name) != 0)
                    continue;
                rm_endpoint_ref_t *dst = &eps[n++];
                dst->address = src->address;
                dst->addr = src->addr;
                dst->addrlen = src->len;
                dst->version = ver->name;
                dst->pod = src->pod;
                dst->draining = src->draining;
                dst->sidecar = src->sidecar;
                dst->key = src->key;
                ver->nendpoints++;
                if (!dst->draining)
                    ver->nready++;
            }
        }
        svc->versions = vers;
        svc->nversions = b->nv;
        svc->endpoints = eps;
        svc->nendpoints = n;
    }
    return 0;
}

uint64_t rm_snapshot_limits_key(const char *namespace_, const char *service, const char *version)
{
    const char *parts[] = {namespace_, service, version};
    uint64_t h = RM_HASH_FNV64_OFFSET;
    for (size_t p = 0; p < 3; p++) {
        if (p > 0)
            h = rm_hash_fnv1a64_update(h, "/", 1);
        h = rm_hash_fnv1a64_update(h, parts[p], strlen(parts[p]));
    }
    return rm_hash_mix64(h) | 1;
}

static uint64_t duration_ms(const Remora__V1__Duration *d, uint64_t dflt)
{
    return (d != NULL && d->has_millis) ? d->millis : dflt;
}

static rm_circuit_breaker_t *compile_cb(build_t *bd, const Remora__V1__CircuitBreaker *p)
{
    rm_circuit_breaker_t *cb = rm__arena_alloc(&bd->s->arena, sizeof(*cb));
    if (cb == NULL)
        return NULL;
    *cb = default_cb;
    cb->name = str_or_empty(p->name);
    const Remora__V1__Limits *l = p->limits;
    if (l != NULL) {
        if (l->has_max_connections)
            cb->max_connections = l->max_connections;
        if (l->has_max_pending_requests)
            cb->max_pending_requests = l->max_pending_requests;
        if (l->has_max_requests)
            cb->max_requests = l->max_requests;
        if (l->has_max_retries)
            cb->max_retries = l->max_retries;
    }
    const Remora__V1__OutlierDetection *o = p->outlier_detection;
    if (o != NULL) {
        if (o->has_consecutive_5xx)
            cb->consecutive_5xx = o->consecutive_5xx;
        if (o->has_consecutive_gateway_errors)
            cb->consecutive_gateway_errors = o->consecutive_gateway_errors;
        cb->interval_ms = duration_ms(o->interval, default_cb.interval_ms);
        cb->base_ejection_time_ms =
            duration_ms(o->base_ejection_time, default_cb.base_ejection_time_ms);
        if (o->has_max_ejection_percent)
            cb->max_ejection_percent =
                o->max_ejection_percent > 100 ? 100 : o->max_ejection_percent;
    }
    return cb;
}

/* CircuitBreakers: the first service-wide one per service wins, then the first per version; a
 * version-specific one for a version that has no endpoints and no route is ignored (it takes
 * effect in the snapshot where that version appears). */
static int build_circuit_breakers(build_t *bd)
{
    rm_snapshot_t *s = bd->s;
    const Remora__V1__ConfigSet *cfg = s->cfg;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < cfg->n_circuit_breakers; i++) {
            const Remora__V1__CircuitBreaker *p = cfg->circuit_breakers[i];
            if (p == NULL)
                continue;
            const char *ns = ns_or_default(p->namespace_);
            rm_service_t *svc = svc_lookup(bd, ns, p->service);
            if (svc == NULL)
                return fail(bd,
                            "circuitbreaker %s/%s: service \"%s\" is not defined in namespace "
                            "%s",
                            ns, str_or_empty(p->name), str_or_empty(p->service), ns);
            bool versioned = p->version != NULL && p->version[0] != '\0';
            if (pass == 0 && !versioned && svc->cb == &default_cb) {
                if ((svc->cb = compile_cb(bd, p)) == NULL)
                    return fail(bd, "out of memory");
            } else if (pass == 1 && versioned) {
                rm_version_t *v = (rm_version_t *)rm_snapshot_version_by_name(svc, p->version);
                if (v != NULL && v->cb == svc->cb && (v->cb = compile_cb(bd, p)) == NULL)
                    return fail(bd, "out of memory");
            }
        }
        if (pass == 0) { /* versions not named by a CircuitBreaker follow their service */
            for (size_t i = 0; i < s->nservices; i++) {
                rm_service_t *svc = &s->services[i];
                for (size_t v = 0; v < svc->nversions; v++)
                    ((rm_version_t *)&svc->versions[v])->cb = svc->cb;
            }
        }
    }
    return 0;
}

static int compile_regex(build_t *bd, const char *where, const char *pattern, rm_regex_t *out)
{
    rm_snapshot_t *s = bd->s;
    int errcode;
    PCRE2_SIZE erroff;
    /* Anchored at both ends: a route regex describes the whole value, as in Envoy and Istio. No
     * PCRE2_UTF: values are bytes from the wire and need not be valid UTF-8. */
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                     PCRE2_ANCHORED | PCRE2_ENDANCHORED, &errcode, &erroff, NULL);
    if (code == NULL) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(errcode, msg, sizeof(msg));
        return fail(bd, "%s: regex \"%s\": %s at offset %zu", where, pattern, (char *)msg,
                    (size_t)erroff);
    }
    rm__regex_node_t *node = rm__arena_alloc(&s->arena, sizeof(*node));
    if (node == NULL) {
        pcre2_code_free(code);
        return fail(bd, "out of memory");
    }
    node->code = code;
    node->next = s->regexes;
    s->regexes = node;
    /* JIT is an optimisation: when it is unavailable the interpreter runs under the same
     * limits. */
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    out->code = code;
    out->mctx = s->mctx;
    out->pattern = pattern;
    return 0;
}

/* One header/cookie/query condition. lower: lowercase the name (headers). */
static int compile_kv(build_t *bd, const char *where, const char *name,
                      const Remora__V1__StringMatch *m, bool lower, rm_kv_match_t *out)
{
    rm__arena_t *a = &bd->s->arena;
    if (name == NULL || name[0] == '\0')
        return fail(bd, "%s: empty name", where);
    size_t nlen = strlen(name);
    out->name = lower ? rm__arena_strlower(a, name, nlen) : name;
    out->name_len = nlen;
    if (out->name == NULL)
        return fail(bd, "out of memory");
    if (m == NULL)
        return fail(bd, "%s \"%s\": no match kind", where, name);
    const char *v = NULL;
    switch (m->kind_case) {
    case REMORA__V1__STRING_MATCH__KIND_EXACT:
        out->kind = RM_MATCH_EXACT;
        v = m->exact;
        break;
    case REMORA__V1__STRING_MATCH__KIND_PREFIX:
        out->kind = RM_MATCH_PREFIX;
        v = m->prefix;
        break;
    case REMORA__V1__STRING_MATCH__KIND_SUFFIX:
        out->kind = RM_MATCH_SUFFIX;
        v = m->suffix;
        break;
    case REMORA__V1__STRING_MATCH__KIND_REGEX: {
        out->kind = RM_MATCH_REGEX;
        char w[256];
        snprintf(w, sizeof(w), "%s \"%s\"", where, name);
        return compile_regex(bd, w, str_or_empty(m->regex), &out->re);
    }
    /* `present: false` reads as "absent" and `absent: false` as "present"; validation may
     * reject both, but if they get here this is the only sensible meaning. */
    case REMORA__V1__STRING_MATCH__KIND_PRESENT:
        out->kind = m->present ? RM_MATCH_PRESENT : RM_MATCH_ABSENT;
        return 0;
    case REMORA__V1__STRING_MATCH__KIND_ABSENT:
        out->kind = m->absent ? RM_MATCH_ABSENT : RM_MATCH_PRESENT;
        return 0;
    default:
        return fail(bd, "%s \"%s\": no match kind", where, name);
    }
    out->value = str_or_empty(v);
    out->value_len = strlen(out->value);
    return 0;
}

#define KV_COMPILE(bd, where, entries, n, lower, outp, outn)                                       \
    do {                                                                                           \
        rm_kv_match_t *arr_ = rm__arena_calloc(&(bd)->s->arena, (n), sizeof(*arr_));               \
        if (arr_ == NULL)                                                                          \
            return fail((bd), "out of memory");                                                    \
        for (size_t k_ = 0; k_ < (n); k_++) {                                                      \
            if ((entries)[k_] == NULL)                                                             \
                return fail((bd), "%s: empty entry", (where));                                     \
            if (compile_kv((bd), (where), (entries)[k_]->key, (entries)[k_]->value, (lower),       \
                           &arr_[k_]) != 0)                                                        \
                return -1;                                                                         \
        }                                                                                          \
        (outp) = arr_;                                                                             \
        (outn) = (n);                                                                              \
    } while (0)

static int compile_match(build_t *bd, const char *where, const Remora__V1__Match *m,
                         rm_match_t *out)
{
    char w[200];
    if (m == NULL)
        return 0;
    snprintf(w, sizeof(w), "%s: header", where);
    KV_COMPILE(bd, w, m->headers, m->n_headers, true, out->headers, out->nheaders);
    snprintf(w, sizeof(w), "%s: cookie", where);
    KV_COMPILE(bd, w, m->cookies, m->n_cookies, false, out->cookies, out->ncookies);
    snprintf(w, sizeof(w), "%s: query parameter", where);
    KV_COMPILE(bd, w, m->query, m->n_query, false, out->query, out->nquery);
    if (m->path != NULL) {
        const Remora__V1__PathMatch *p = m->path;
        switch (p->kind_case) {
        case REMORA__V1__PATH_MATCH__KIND_EXACT:
            out->path.kind = RM_MATCH_EXACT;
            out->path.value = str_or_empty(p->exact);
            break;
        case REMORA__V1__PATH_MATCH__KIND_PREFIX:
            out->path.kind = RM_MATCH_PREFIX;
            out->path.value = str_or_empty(p->prefix);
            break;
        case REMORA__V1__PATH_MATCH__KIND_REGEX:
            out->path.kind = RM_MATCH_REGEX;
            out->path.value = str_or_empty(p->regex);
            snprintf(w, sizeof(w), "%s: path", where);
            if (compile_regex(bd, w, out->path.value, &out->path.re) != 0)
                return -1;
            break;
        default:
            return fail(bd, "%s: path: no match kind", where);
        }
        out->path.value_len = strlen(out->path.value);
    }
    if (m->method != NULL && m->method[0] != '\0') {
        out->method = m->method;
        out->method_len = strlen(m->method);
    }
    return 0;
}

static int compile_retry(build_t *bd, const char *where, const Remora__V1__RetryPolicy *p,
                         const rm_retry_policy_t **out)
{
    if (p == NULL) {
        *out = &default_retry;
        return 0;
    }
    rm_retry_policy_t *r = rm__arena_alloc(&bd->s->arena, sizeof(*r));
    if (r == NULL)
        return fail(bd, "out of memory");
    *r = default_retry;
    if (p->has_attempts)
        r->attempts = p->attempts;
    r->per_try_timeout_ms = duration_ms(p->per_try_timeout, 0);
    r->retry_on = 0;
    for (size_t i = 0; i < p->n_retry_on; i++) {
        const char *on = str_or_empty(p->retry_on[i]);
        if (strcmp(on, "connect-failure") == 0)
            r->retry_on |= RM_RETRY_ON_CONNECT_FAILURE;
        else if (strcmp(on, "reset") == 0)
            r->retry_on |= RM_RETRY_ON_RESET;
        else if (strcmp(on, "gateway-error") == 0)
            r->retry_on |= RM_RETRY_ON_GATEWAY_ERROR;
        else if (strcmp(on, "5xx") == 0)
            r->retry_on |= RM_RETRY_ON_5XX;
        else if (strcmp(on, "retriable-status-codes") == 0)
            r->retry_on |= RM_RETRY_ON_RETRIABLE_CODES;
        else
            return fail(bd,
                        "%s: retryOn \"%s\" is not one of connect-failure, reset, "
                        "gateway-error, 5xx, retriable-status-codes",
                        where, on);
    }
    if (r->retry_on == 0)
        r->retry_on = DEFAULT_RETRY_ON;
    if (p->n_retriable_status_codes > 0) {
        uint32_t *codes =
            rm__arena_calloc(&bd->s->arena, p->n_retriable_status_codes, sizeof(*codes));
        if (codes == NULL)
            return fail(bd, "out of memory");
        memcpy(codes, p->retriable_status_codes, p->n_retriable_status_codes * sizeof(*codes));
        r->retriable_status_codes = codes;
        r->nretriable_status_codes = p->n_retriable_status_codes;
        /* Listing codes is asking for them to be retried; do not also require the flag. */
        r->retry_on |= RM_RETRY_ON_RETRIABLE_CODES;
    }
    if (p->backoff != NULL) {
        r->backoff_base_ms = duration_ms(p->backoff->base_, default_retry.backoff_base_ms);
        r->backoff_max_ms = duration_ms(p->backoff->max, default_retry.backoff_max_ms);
    }
    if (p->budget != NULL) {
        if (p->budget->has_percent)
            r->budget_percent = p->budget->percent;
        if (p->budget->has_min_per_second)
            r->budget_min_per_second = p->budget->min_per_second;
    }
    *out = r;
    return 0;
}

static int compile_mirror(build_t *bd, const char *where, const char *ns, rm_service_t *svc,
                          const Remora__V1__Mirror *p, const rm_mirror_t **out)
{
    if (p == NULL)
        return 0;
    rm_mirror_t *m = rm__arena_alloc(&bd->s->arena, sizeof(*m));
    if (m == NULL)
        return fail(bd, "out of memory");
    m->percent = p->has_percent ? p->percent : 100;
    if (m->percent > 100)
        return fail(bd, "%s: mirror percent %u is above 100", where, m->percent);
    bool has_service = p->service != NULL && p->service[0] != '\0';
    bool has_version = p->version != NULL && p->version[0] != '\0';
    if (!has_service && !has_version)
        return fail(bd, "%s: mirror names neither a version nor a service", where);
    m->service = has_service ? svc_lookup(bd, ns, p->service) : svc;
    if (m->service == NULL)
        return fail(bd, "%s: mirror service \"%s\" is not defined in namespace %s", where,
                    p->service, ns);
    m->version_index = SIZE_MAX;
    if (has_version) {
        const rm_version_t *v = rm_snapshot_version_by_name(m->service, p->version);
        if (v == NULL) /* scan_routes added it; cannot happen */
            return fail(bd, "%s: mirror version \"%s\" unknown", where, p->version);
        m->version_index = v->index;
        m->version = v->name;
    }
    *out = m;
    return 0;
}

/* Every version weighted by its ready endpoints: what "no rule" and "no destinations" mean,
 * like a Kubernetes Service spreading over its pods. */
static int build_spread(build_t *bd, rm_service_t *svc, rm_rule_t *def)
{
    rm_destination_t *d = rm__arena_calloc(&bd->s->arena, svc->nversions, sizeof(*d));
    if (d == NULL)
        return fail(bd, "out of memory");
    uint64_t sum = 0;
    for (size_t v = 0; v < svc->nversions; v++) {
        d[v].version_index = v;
        size_t n = svc->versions[v].nready;
        d[v].weight = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
        sum += d[v].weight;
    }
    def->name = "";
    def->route_name = "";
    def->destinations = d;
    def->ndestinations = svc->nversions;
    def->weight_sum = sum;
    def->spread = true;
    def->timeout_ms = DEFAULT_TIMEOUT_MS;
    def->retry = &default_retry;
    return 0;
}

static int compile_rule(build_t *bd, rm_service_t *svc, const Remora__V1__Route *route,
                        size_t ruleno, rm_rule_t *out)
{
    const Remora__V1__Rule *p = route->rules[ruleno];
    const char *ns = svc->namespace_;
    out->name = str_or_empty(p->name);
    out->route_name = str_or_empty(route->name);
    out->proto = p;
    char where[160];
    snprintf(where, sizeof(where), "route %s/%s: rule #%zu%s%s%s", ns, out->route_name, ruleno + 1,
             out->name[0] ? " (" : "", out->name, out->name[0] ? ")" : "");

    if (compile_match(bd, where, p->match, &out->match) != 0)
        return -1;

    if (p->n_destinations == 0) {
        out->destinations = svc->default_rule->destinations;
        out->ndestinations = svc->default_rule->ndestinations;
        out->weight_sum = svc->default_rule->weight_sum;
        out->spread = true;
    } else {
        rm_destination_t *d = rm__arena_calloc(&bd->s->arena, p->n_destinations, sizeof(*d));
        if (d == NULL)
            return fail(bd, "out of memory");
        /* A weight left out: equal shares when no destination sets one (a single destination
         * takes everything), else 0 (validation requires weights when there are several). */
        bool any_weight = false;
        for (size_t i = 0; i < p->n_destinations; i++)
            any_weight = any_weight || p->destinations[i]->has_weight;
        uint64_t sum = 0;
        for (size_t i = 0; i < p->n_destinations; i++) {
            const Remora__V1__Destination *dst = p->destinations[i];
            const rm_version_t *v = rm_snapshot_version_by_name(svc, dst->version);
            if (v == NULL) /* scan_routes added it; cannot happen */
                return fail(bd, "%s: version \"%s\" unknown", where, dst->version);
            d[i].version_index = v->index;
            d[i].weight = dst->has_weight ? dst->weight : (any_weight ? 0 : 1);
            sum += d[i].weight;
        }
        out->destinations = d;
        out->ndestinations = p->n_destinations;
        out->weight_sum = sum;
    }

    if (p->sticky_on != NULL) {
        const Remora__V1__StickyOn *st = p->sticky_on;
        const char *key = NULL;
        if (st->key_case == REMORA__V1__STICKY_ON__KEY_HEADER) {
            out->sticky.kind = RM_STICKY_HEADER;
            key = st->header;
        } else if (st->key_case == REMORA__V1__STICKY_ON__KEY_COOKIE) {
            out->sticky.kind = RM_STICKY_COOKIE;
            key = st->cookie;
        }
        if (key == NULL || key[0] == '\0')
            return fail(bd, "%s: stickyOn needs a header or a cookie name", where);
        out->sticky.name_len = strlen(key);
        out->sticky.name = out->sticky.kind == RM_STICKY_HEADER
                               ? rm__arena_strlower(&bd->s->arena, key, out->sticky.name_len)
                               : key;
        if (out->sticky.name == NULL)
            return fail(bd, "out of memory");
    }

    if (compile_mirror(bd, where, ns, svc, p->mirror, &out->mirror) != 0)
        return -1;
    out->timeout_ms = duration_ms(p->timeout, DEFAULT_TIMEOUT_MS);
    return compile_retry(bd, where, p->retries, &out->retry);
}

/* Pass 2 over routes: compile every rule into its service's array, in document order. */
static int build_rules(build_t *bd)
{
    rm_snapshot_t *s = bd->s;
    for (size_t i = 0; i < s->nservices; i++) {
        rm_service_t *svc = &s->services[i];
        /* One array: the rules, then the default rule at index nrules. */
        rm_rule_t *rules = rm__arena_calloc(&s->arena, bd->b[i].nrules + 1, sizeof(*rules));
        if (rules == NULL)
            return fail(bd, "out of memory");
        rm_rule_t *def = &rules[bd->b[i].nrules];
        def->index = bd->b[i].nrules;
        if (build_spread(bd, svc, def) != 0)
            return -1;
        svc->rules = rules;
        svc->nrules = bd->b[i].nrules;
        svc->default_rule = def;
    }
    const Remora__V1__ConfigSet *cfg = s->cfg;
    for (size_t r = 0; r < cfg->n_routes; r++) {
        const Remora__V1__Route *route = cfg->routes[r];
        if (route == NULL)
            continue;
        rm_service_t *svc = svc_lookup(bd, route->namespace_, route->service);
        bsvc_t *b = &bd->b[svc->index];
        for (size_t i = 0; i < route->n_rules; i++) {
            rm_rule_t *rule = (rm_rule_t *)&svc->rules[b->filled];
            rule->index = b->filled++;
            if (compile_rule(bd, svc, route, i, rule) != 0)
                return -1;
        }
    }
    return 0;
}

static int host_put(build_t *bd, const rm_service_t *svc, const char *name)
{
    size_t n = strlen(name);
    if (n > 1 && name[n - 1] == '.')
        n--;
    if (n == 0)
        return 0;
    char *key = rm__arena_strlower(&bd->s->arena, name, n);
    if (key == NULL)
        return fail(bd, "out of memory");
    rm__htab_put(&bd->s->by_host, rm__hash_lower(key, n), key, n, svc);
    return 0;
}

static int build_host_tables(build_t *bd)
{
    rm_snapshot_t *s = bd->s;
    size_t nhosts = 0, nvips = 0;
    for (size_t i = 0; i < s->nservices; i++) {
        nhosts += 5 + s->services[i].proto->n_hosts;
        nvips += s->services[i].vip != NULL;
    }
    if (rm__htab_init(&s->by_host, &s->arena, nhosts) != 0 ||
        rm__htab_init(&s->by_addr, &s->arena, nvips) != 0)
        return fail(bd, "out of memory");
    for (size_t i = 0; i < s->nservices; i++) {
        const rm_service_t *svc = &s->services[i];
        const char *nm = svc->name, *ns = svc->namespace_;
        char *forms[3] = {
            arena_printf(&s->arena, "%s.%s", nm, ns),
            arena_printf(&s->arena, "%s.%s.svc", nm, ns),
            arena_printf(&s->arena, "%s.%s.svc.cluster.local", nm, ns),
        };
        for (int f = 0; f < 3; f++)
            if (forms[f] == NULL || host_put(bd, svc, forms[f]) != 0)
                return fail(bd, "out of memory");
        if (strcmp(ns, s->local_ns) == 0 && host_put(bd, svc, nm) != 0)
            return -1;
        for (size_t h = 0; h < svc->proto->n_hosts; h++)
            if (svc->proto->hosts[h] != NULL && host_put(bd, svc, svc->proto->hosts[h]) != 0)
                return -1;
        if (svc->vip != NULL) {
            if (host_put(bd, svc, svc->vip) != 0)
                return -1;
            unsigned char key[RM__ADDR_KEY_MAX];
            size_t klen = rm__addr_key((const struct sockaddr *)&svc->vip_addr, key);
            const rm_service_t *other =
                rm_snapshot_service_by_addr(s, (const struct sockaddr *)&svc->vip_addr);
            if (other != NULL)
                return fail(bd, "services %s/%s and %s/%s share vip %s port %u", other->namespace_,
                            other->name, ns, nm, svc->vip, svc->port);
            char *k = rm__arena_strndup(&s->arena, (const char *)key, klen);
            if (k == NULL)
                return fail(bd, "out of memory");
            rm__htab_put(&s->by_addr, rm_hash64(key, klen), k, klen, svc);
        }
    }
    return 0;
}

void rm__snapshot_destroy(rm_snapshot_t *s)
{
    for (rm__regex_node_t *n = s->regexes; n != NULL; n = n->next)
        pcre2_code_free(n->code);
    pcre2_match_context_free(s->mctx);
    if (s->cfg != NULL)
        remora__v1__config_set__free_unpacked(s->cfg, NULL);
    free(s->packed);
    rm__arena_free(&s->arena);
    free(s);
}

rm_snapshot_t *rm_snapshot_build(const Remora__V1__ConfigSet *cfg,
                                 Remora__V1__ResolvedEndpoint *const *eps, size_t neps,
                                 const char *local_namespace, uint64_t version, char *err,
                                 size_t errlen)
{
    build_t bd = {.err = err, .errlen = errlen};
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (cfg == NULL || (eps == NULL && neps > 0)) {
        fail(&bd, "no config");
        return NULL;
    }
    rm_snapshot_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        fail(&bd, "out of memory");
        return NULL;
    }
    bd.s = s;
    atomic_init(&s->refs, 1);
    s->version = version;
    const char *lns = ns_or_default(local_namespace);
    s->local_ns = rm__arena_strndup(&s->arena, lns, strlen(lns));
    if (s->local_ns == NULL) {
        fail(&bd, "out of memory");
        goto fail_snapshot;
    }

    /* The deep copy: pack (kept for /config_dump), then unpack our own ConfigSet from it, which
     * every compiled table below borrows strings and messages from. */
    s->packed_len = protobuf_c_message_get_packed_size(&cfg->base);
    s->packed = malloc(s->packed_len ? s->packed_len : 1);
    if (s->packed == NULL) {
        fail(&bd, "out of memory");
        goto fail_snapshot;
    }
    protobuf_c_message_pack(&cfg->base, s->packed);
    s->cfg = remora__v1__config_set__unpack(NULL, s->packed_len, s->packed);
    if (s->cfg == NULL) {
        fail(&bd, "config could not be copied (pack/unpack failed)");
        goto fail_snapshot;
    }

    s->mctx = pcre2_match_context_create(NULL);
    if (s->mctx == NULL) {
        fail(&bd, "out of memory");
        goto fail_snapshot;
    }
    pcre2_set_match_limit(s->mctx, RM_SNAPSHOT_REGEX_MATCH_LIMIT);
    pcre2_set_depth_limit(s->mctx, RM_SNAPSHOT_REGEX_DEPTH_LIMIT);
    pcre2_set_heap_limit(s->mctx, RM_SNAPSHOT_REGEX_HEAP_LIMIT_KIB);

    if (build_services(&bd) != 0 || collect_endpoints(&bd, eps, neps) != 0 ||
        scan_routes(&bd) != 0 || build_versions(&bd) != 0 || build_circuit_breakers(&bd) != 0 ||
        build_rules(&bd) != 0 || build_host_tables(&bd) != 0)
        goto fail_build;

    for (size_t i = 0; i < s->nservices; i++) {
        free(bd.b[i].eps);
        free(bd.b[i].vnames);
    }
    free(bd.b);
    return s;

fail_build:
    if (bd.b != NULL) {
        for (size_t i = 0; i < s->nservices; i++) {
            free(bd.b[i].eps);
            free(bd.b[i].vnames);
        }
        free(bd.b);
    }
fail_snapshot:
    rm__snapshot_destroy(s);
    return NULL;
}

static char *dup_or_empty(const char *s)
{
    return strdup(s != NULL ? s : "");
}

static void endpoint_free(Remora__V1__ResolvedEndpoint *e)
{
    if (e == NULL)
        return;
    free(e->service);
    free(e->namespace_);
    free(e->version);
    free(e->address);
    free(e->pod);
    free(e);
}

void rm_snapshot_endpoints_free(Remora__V1__ResolvedEndpoint **eps, size_t n)
{
    if (eps == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        endpoint_free(eps[i]);
    free(eps);
}

int rm_snapshot_endpoints_from_config(const Remora__V1__ConfigSet *cfg,
                                      Remora__V1__ResolvedEndpoint ***out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (cfg == NULL)
        return 0;
    size_t total = 0;
    for (size_t i = 0; i < cfg->n_services; i++)
        if (cfg->services[i] != NULL)
            total += cfg->services[i]->n_endpoints;
    Remora__V1__ResolvedEndpoint **eps =
        calloc(total ? total : 1, sizeof(Remora__V1__ResolvedEndpoint *));
    if (eps == NULL)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_services; i++) {
        const Remora__V1__Service *svc = cfg->services[i];
        if (svc == NULL)
            continue;
        for (size_t k = 0; k < svc->n_endpoints; k++) {
            const Remora__V1__Endpoint *ep = svc->endpoints[k];
            if (ep == NULL)
                continue;
            Remora__V1__ResolvedEndpoint *e = malloc(sizeof(*e));
            if (e == NULL)
                goto fail;
            remora__v1__resolved_endpoint__init(e);
            /* Our own strings, so endpoint_free never frees protobuf-c's shared "" default. */
            e->service = dup_or_empty(svc->name);
            e->namespace_ = strdup(ns_or_default(svc->namespace_));
            e->version = dup_or_empty(ep->version);
            e->address = dup_or_empty(ep->address);
            e->pod = strdup("");
            e->draining = 0;
            e->sidecar = ep->has_sidecar && ep->sidecar;
            eps[n++] = e;
            if (e->service == NULL || e->namespace_ == NULL || e->version == NULL ||
                e->address == NULL || e->pod == NULL)
                goto fail;
        }
    }
    *out = eps;
    *nout = n;
    return 0;

fail:
    rm_snapshot_endpoints_free(eps, n);
    return -1;
}
