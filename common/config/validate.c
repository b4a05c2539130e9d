/* common/config/validate.c — the rules of SPEC.md that types alone cannot say: names, ranges,
 * references between documents, duplicates, and the defaults of config.proto filled in. This
 * file holds the driver, the shared field checks, Services and CircuitBreakers; Routes are in
 * validate_route.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/config/internal.h"

/* ---- reporting ---- */

/* "Route default/reviews": names the document when there is no line to point at. */
static void doc_label(const rm__vctx_t *v, char *buf, size_t n)
{
    if (v->doc_name != NULL)
        snprintf(buf, n, "%s %s/%s", rm__kind_names[v->list], v->doc_ns ? v->doc_ns : "default",
                 v->doc_name);
    else
        snprintf(buf, n, "%s #%zu", rm__kind_names[v->list], v->index + 1);
}

void rm__verr(rm__vctx_t *v, int warn, const char *field, const char *fmt, ...)
{
    rm_config_diags_t *list = warn ? v->warnings : v->errors;
    char msg[1024], label[300];
    int line = 0, col = 0;
    size_t mark = v->path.len;
    va_list ap;

    if (list == NULL)
        return;
    if (rm__diags_full(list)) {
        list->dropped++;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (field != NULL)
        rm__path_field(&v->path, field);
    if (v->map != NULL)
        rm__srcmap_find(v->map, v->list, v->index, rm__path_str(&v->path), &line, &col);
    doc_label(v, label, sizeof(label));
    if (rm__diag_add(list, v->map ? rm__srcmap_file(v->map) : NULL, line, col,
                     line > 0 ? NULL : label, rm__path_str(&v->path), "%s", msg) < 0)
        v->nomem = 1;
    rm__path_pop(&v->path, mark);
}

char *rm__v_strdup(rm__vctx_t *v, const char *s)
{
    char *c = strdup(s);
    if (c == NULL)
        v->nomem = 1;
    return c;
}

/* ---- field checks shared by every kind ---- */

static int is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 1123 label, as Kubernetes names are: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63. */
static int is_dns_label(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    }
    return 1;
}

/* Like a Kubernetes label value (the injector takes versions from the pod label `version`). */
static int is_version(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return 0;
    }
    return 1;
}

int rm__is_token(const char *s)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if (*s == '\0')
        return 0;
    for (; *s != '\0'; s++) {
        if (!is_alnum(*s) && (*s == '\0' || strchr(extra, *s) == NULL))
            return 0;
    }
    return 1;
}

int rm__v_name(rm__vctx_t *v, const char *field, const char *value, int required)
{
    char q[RM__QUOTE_BUF];
    if (value == NULL) {
        if (required)
            rm__verr(v, 0, field, "is required");
        return required ? -1 : 0;
    }
    if (is_dns_label(value))
        return 0;
    rm__quote(value, strlen(value), q, sizeof(q));
    rm__verr(v, 0, field,
             "must be a DNS-1123 label (lowercase letters, digits and '-', starting and ending "
             "with a letter or digit, at most 63 characters), not \"%s\"",
             q);
    return -1;
}

int rm__v_version(rm__vctx_t *v, const char *field, const char *value, int required)
{
    char q[RM__QUOTE_BUF];
    if (value == NULL) {
        if (required)
            rm__verr(v, 0, field, "is required");
        return required ? -1 : 0;
    }
    if (is_version(value))
        return 0;
    rm__quote(value, strlen(value), q, sizeof(q));
    rm__verr(v, 0, field,
             "must be 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter "
             "or digit, not \"%s\"",
             q);
    return -1;
}

int rm__v_range(rm__vctx_t *v, const char *field, uint32_t value, uint32_t lo, uint32_t hi)
{
    if (value >= lo && value <= hi)
        return 0;
    rm__verr(v, 0, field, "must be between %u and %u, not %u", lo, hi, value);
    return -1;
}

int rm__v_duration_positive(rm__vctx_t *v, const char *field, const Remora__V1__Duration *d)
{
    if (d == NULL || (d->has_millis && d->millis > 0))
        return 0;
    rm__verr(v, 0, field, "must be greater than 0");
    return -1;
}

int rm__v_default_duration(rm__vctx_t *v, Remora__V1__Duration **dst, uint64_t ms)
{
    Remora__V1__Duration *d;
    if (*dst != NULL)
        return 0;
    d = malloc(sizeof(*d));
    if (d == NULL) {
        v->nomem = 1;
        return -ENOMEM;
    }
    remora__v1__duration__init(d);
    d->has_millis = 1;
    d->millis = ms;
    *dst = d;
    return 0;
}

typedef struct str_ref {
    const char *s;
    size_t index;
} str_ref_t;

static int cmp_str_ref(const void *a, const void *b)
{
    const str_ref_t *x = a, *y = b;
    int c = strcmp(x->s, y->s);
    return c ? c : (x->index < y->index ? -1 : (x->index > y->index));
}

size_t *rm__v_first_dups(rm__vctx_t *v, const char *const *strs, size_t n)
{
    size_t *first = malloc((n ? n : 1) * sizeof(*first));
    str_ref_t *refs = malloc((n ? n : 1) * sizeof(*refs));
    size_t k = 0, group = 0;

    if (first == NULL || refs == NULL) {
        free(first);
        free(refs);
        v->nomem = 1;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        first[i] = SIZE_MAX;
        if (strs[i] != NULL)
            refs[k++] = (str_ref_t){strs[i], i};
    }
    /* Sorted, equal strings sit together with the earliest first: lists of any length cost
     * n log n, so a huge endpoint list cannot stall the control plane. */
    qsort(refs, k, sizeof(*refs), cmp_str_ref);
    for (size_t i = 1; i < k; i++) {
        if (strcmp(refs[i].s, refs[group].s) != 0)
            group = i;
        else
            first[refs[i].index] = refs[group].index;
    }
    free(refs);
    return first;
}

/* ---- the index of services and endpoints that references resolve against ---- */

static int cmp_svc(const void *a, const void *b)
{
    const rm__svc_key_t *x = a, *y = b;
    int c = strcmp(x->ns, y->ns);
    return c ? c : strcmp(x->name, y->name);
}

static int cmp_ep(const void *a, const void *b)
{
    const rm__ep_key_t *x = a, *y = b;
    int c = strcmp(x->ns, y->ns);
    if (c == 0)
        c = strcmp(x->service, y->service);
    return c ? c : strcmp(x->version, y->version);
}

static int build_indexes(rm__vctx_t *v)
{
    const Remora__V1__ConfigSet *set = v->set;
    const rm_config_context_t *ctx = v->ctx;
    size_t n = set->n_services + (ctx ? ctx->n_services : 0), k = 0;

    v->svcs = calloc(n ? n : 1, sizeof(*v->svcs));
    if (v->svcs == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < set->n_services; i++) {
        const Remora__V1__Service *s = set->services[i];
        if (s->name == NULL)
            continue;
        v->svcs[k++] = (rm__svc_key_t){s->namespace_ ? s->namespace_ : "default", s->name, 0, i};
    }
    for (size_t i = 0; ctx && i < ctx->n_services; i++) {
        if (ctx->services[i].name == NULL)
            continue;
        v->svcs[k++] =
            (rm__svc_key_t){ctx->services[i].namespace_ ? ctx->services[i].namespace_ : "default",
                            ctx->services[i].name, 0, SIZE_MAX};
    }
    v->n_svcs = k;
    qsort(v->svcs, k, sizeof(*v->svcs), cmp_svc);

    if (ctx == NULL || !ctx->endpoints_known)
        return 0;
    n = ctx->n_endpoints;
    for (size_t i = 0; i < set->n_services; i++)
        n += set->services[i]->n_endpoints;
    v->eps = calloc(n ? n : 1, sizeof(*v->eps));
    if (v->eps == NULL)
        return -ENOMEM;
    k = 0;
    for (size_t i = 0; i < ctx->n_endpoints; i++) {
        const rm_config_endpoint_ref_t *e = &ctx->endpoints[i];
        if (e->service == NULL || e->version == NULL)
            continue;
        v->eps[k++] =
            (rm__ep_key_t){e->namespace_ ? e->namespace_ : "default", e->service, e->version};
    }
    for (size_t i = 0; i < set->n_services; i++) {
        const Remora__V1__Service *s = set->services[i];
        for (size_t j = 0; s->name != NULL && j < s->n_endpoints; j++) {
            if (s->endpoints[j]->version == NULL)
                continue;
            v->eps[k++] = (rm__ep_key_t){s->namespace_ ? s->namespace_ : "default", s->name,
                                         s->endpoints[j]->version};
        }
    }
    v->n_eps = k;
    qsort(v->eps, k, sizeof(*v->eps), cmp_ep);
    return 0;
}

int rm__v_service_exists(const rm__vctx_t *v, const char *ns, const char *name)
{
    rm__svc_key_t key = {ns, name, 0, 0};
    return bsearch(&key, v->svcs, v->n_svcs, sizeof(key), cmp_svc) != NULL;
}

int rm__v_endpoint_exists(const rm__vctx_t *v, const char *ns, const char *service,
                          const char *version)
{
    rm__ep_key_t key = {ns, service, version};
    return bsearch(&key, v->eps, v->n_eps, sizeof(key), cmp_ep) != NULL;
}

void rm__v_unknown_service(rm__vctx_t *v, const char *field, const char *name)
{
    const char *cands[257], *hint;
    char q[RM__QUOTE_BUF];
    size_t n = 0;

    for (size_t i = 0; i < v->n_svcs && n < 256; i++) {
        if (strcmp(v->svcs[i].ns, v->doc_ns) == 0)
            cands[n++] = v->svcs[i].name;
    }
    cands[n] = NULL;
    rm__quote(name, strlen(name), q, sizeof(q));
    hint = rm__suggest(name, strlen(name), cands);
    if (hint != NULL) {
        rm__verr(v, 0, field, "unknown service \"%s\" in namespace \"%s\" (did you mean \"%s\"?)",
                 q, v->doc_ns, hint);
        return;
    }
    for (size_t i = 0; i < v->n_svcs; i++) {
        if (strcmp(v->svcs[i].name, name) == 0) {
            rm__verr(v, 0, field,
                     "unknown service \"%s\" in namespace \"%s\" (there is one in namespace "
                     "\"%s\"; references stay within a namespace)",
                     q, v->doc_ns, v->svcs[i].ns);
            return;
        }
    }
    rm__verr(v, 0, field, "unknown service \"%s\" in namespace \"%s\"", q, v->doc_ns);
}

/* ---- Service ---- */

/* "IPv4:port" or "[IPv6]:port". Returns NULL when valid, else why not. */
static const char *check_address(const char *a)
{
    char host[64];
    const char *colon, *port;
    unsigned char buf[16];
    unsigned long p = 0;
    size_t hl;
    int family = AF_INET;

    if (a[0] == '[') {
        const char *close = strchr(a, ']');
        if (close == NULL || close[1] != ':')
            return "must be \"IPv4:port\" or \"[IPv6]:port\"";
        hl = (size_t)(close - a - 1);
        if (hl >= sizeof(host))
            return "has an invalid IPv6 address";
        memcpy(host, a + 1, hl);
        port = close + 2;
        family = AF_INET6;
    } else {
        colon = strrchr(a, ':');
        if (colon == NULL)
            return "must be \"IPv4:port\" or \"[IPv6]:port\" (the port is missing)";
        hl = (size_t)(colon - a);
        if (hl >= sizeof(host) || memchr(a, ':', hl) != NULL)
            return "must be \"IPv4:port\" or \"[IPv6]:port\" (put an IPv6 address in brackets)";
        memcpy(host, a, hl);
        port = colon + 1;
    }
    host[hl] = '\0';
    if (inet_pton(family, host, buf) != 1)
        return family == AF_INET ? "has an invalid IPv4 address" : "has an invalid IPv6 address";
    if (*port == '\0' || strlen(port) > 5)
        return "must end with a port between 1 and 65535";
    for (const char *c = port; *c; c++) {
        if (*c < '0' || *c > '9')
            return "must end with a port between 1 and 65535";
        p = p * 10 + (unsigned long)(*c - '0');
    }
    if (p < 1 || p > 65535)
        return "must end with a port between 1 and 65535";
    return NULL;
}

static void validate_endpoint(rm__vctx_t *v, Remora__V1__Endpoint *e)
{
    char q[RM__QUOTE_BUF];
    if (e->address == NULL) {
        rm__verr(v, 0, "address", "is required");
    } else {
        const char *why = check_address(e->address);
        if (why != NULL) {
            rm__quote(e->address, strlen(e->address), q, sizeof(q));
            rm__verr(v, 0, "address", "%s, not \"%s\"", why, q);
        }
    }
    rm__v_version(v, "version", e->version, 1);
    for (size_t i = 0; i < e->n_labels; i++) {
        const Remora__V1__Endpoint__LabelsEntry *l = e->labels[i];
        size_t mark = rm__path_field(&v->path, "labels");
        if (l->key == NULL || *l->key == '\0') {
            rm__verr(v, 0, NULL, "label names must not be empty");
        } else {
            rm__path_key(&v->path, l->key, strlen(l->key));
            if (l->value == NULL || *l->value == '\0')
                rm__verr(v, 0, NULL, "must not be empty");
        }
        rm__path_pop(&v->path, mark);
    }
}

static void validate_service(rm__vctx_t *v, Remora__V1__Service *s)
{
    char q[RM__QUOTE_BUF];
    unsigned char buf[16];
    const char **addrs;
    size_t *dups;

    if (!s->has_port)
        rm__verr(v, 0, "port", "is required");
    else
        rm__v_range(v, "port", s->port, 1, 65535);
    for (size_t i = 0; i < s->n_hosts; i++) {
        if (s->hosts[i] == NULL || *s->hosts[i] == '\0') {
            size_t mark = rm__path_field(&v->path, "hosts");
            rm__path_index(&v->path, i);
            rm__verr(v, 0, NULL, "must not be empty");
            rm__path_pop(&v->path, mark);
        }
    }
    if (s->vip != NULL && inet_pton(AF_INET, s->vip, buf) != 1 &&
        inet_pton(AF_INET6, s->vip, buf) != 1) {
        rm__quote(s->vip, strlen(s->vip), q, sizeof(q));
        rm__verr(v, 0, "vip", "must be an IPv4 or IPv6 address, not \"%s\"", q);
    }
    addrs = calloc(s->n_endpoints ? s->n_endpoints : 1, sizeof(*addrs));
    if (addrs == NULL) {
        v->nomem = 1;
        return;
    }
    for (size_t i = 0; i < s->n_endpoints; i++)
        addrs[i] = s->endpoints[i]->address;
    dups = rm__v_first_dups(v, addrs, s->n_endpoints);
    for (size_t i = 0; i < s->n_endpoints; i++) {
        size_t mark = rm__path_field(&v->path, "endpoints");
        rm__path_index(&v->path, i);
        validate_endpoint(v, s->endpoints[i]);
        /* One address is one endpoint: two entries would give it two versions. */
        if (dups != NULL && dups[i] != SIZE_MAX) {
            rm__quote(addrs[i], strlen(addrs[i]), q, sizeof(q));
            rm__verr(v, 0, "address", "duplicate endpoint \"%s\" (also endpoints[%zu])", q,
                     dups[i]);
        }
        rm__path_pop(&v->path, mark);
    }
    free(dups);
    free(addrs);
}

/* ---- CircuitBreaker ---- */

static void limit(rm__vctx_t *v, const char *field, protobuf_c_boolean *has, uint32_t *value,
                  uint32_t lo, uint32_t hi, uint32_t dflt)
{
    if (*has) {
        rm__v_range(v, field, *value, lo, hi);
    } else {
        *has = 1;
        *value = dflt;
    }
}

static void validate_circuit_breaker(rm__vctx_t *v, Remora__V1__CircuitBreaker *cb)
{
    size_t mark;

    if (cb->service == NULL)
        rm__verr(v, 0, "service", "is required");
    else if (rm__v_name(v, "service", cb->service, 1) == 0 &&
             !rm__v_service_exists(v, v->doc_ns, cb->service))
        rm__v_unknown_service(v, "service", cb->service);
    rm__v_version(v, "version", cb->version, 0);

    if (cb->limits == NULL) {
        cb->limits = malloc(sizeof(*cb->limits));
        if (cb->limits == NULL) {
            v->nomem = 1;
            return;
        }
        remora__v1__limits__init(cb->limits);
    }
    mark = rm__path_field(&v->path, "limits");
    {
        Remora__V1__Limits *l = cb->limits;
        limit(v, "maxConnections", &l->has_max_connections, &l->max_connections, 1, 1000000, 1024);
        limit(v, "maxPendingRequests", &l->has_max_pending_requests, &l->max_pending_requests, 1,
              1000000, 1024);
        limit(v, "maxRequests", &l->has_max_requests, &l->max_requests, 1, 1000000, 1024);
        limit(v, "maxRetries", &l->has_max_retries, &l->max_retries, 0, 1000000, 1024);
    }
    rm__path_pop(&v->path, mark);

    if (cb->outlier_detection == NULL) {
        cb->outlier_detection = malloc(sizeof(*cb->outlier_detection));
        if (cb->outlier_detection == NULL) {
            v->nomem = 1;
            return;
        }
        remora__v1__outlier_detection__init(cb->outlier_detection);
    }
    mark = rm__path_field(&v->path, "outlierDetection");
    {
        Remora__V1__OutlierDetection *o = cb->outlier_detection;
        limit(v, "consecutive5xx", &o->has_consecutive_5xx, &o->consecutive_5xx, 0, 1000, 5);
        limit(v, "consecutiveGatewayErrors", &o->has_consecutive_gateway_errors,
              &o->consecutive_gateway_errors, 0, 1000, 3);
        rm__v_duration_positive(v, "interval", o->interval);
        rm__v_default_duration(v, &o->interval, 10000);
        rm__v_duration_positive(v, "baseEjectionTime", o->base_ejection_time);
        rm__v_default_duration(v, &o->base_ejection_time, 30000);
        limit(v, "maxEjectionPercent", &o->has_max_ejection_percent, &o->max_ejection_percent, 0,
              100, 10);
    }
    rm__path_pop(&v->path, mark);
}

/* ---- the driver ---- */

/* kind, namespace and name: common to all documents, checked before references resolve. */
static void validate_header(rm__vctx_t *v, ProtobufCMessage *m)
{
    /* Service, Route and CircuitBreaker all start with kind, name, namespace (fields 1..3). */
    const ProtobufCMessageDescriptor *desc = m->descriptor;
    const ProtobufCFieldDescriptor *fk =
        protobuf_c_message_descriptor_get_field_by_name(desc, "kind");
    const ProtobufCFieldDescriptor *fn =
        protobuf_c_message_descriptor_get_field_by_name(desc, "name");
    const ProtobufCFieldDescriptor *fs =
        protobuf_c_message_descriptor_get_field_by_name(desc, "namespace");
    char *kind, *name, *ns;
    const char *want = rm__kind_names[v->list];

    memcpy(&kind, (char *)m + fk->offset, sizeof(kind));
    memcpy(&name, (char *)m + fn->offset, sizeof(name));
    memcpy(&ns, (char *)m + fs->offset, sizeof(ns));
    v->doc_name = name;
    v->doc_ns = ns;
    if (kind == NULL) {
        kind = rm__v_strdup(v, want);
        memcpy((char *)m + fk->offset, &kind, sizeof(kind));
    } else if (strcmp(kind, want) != 0) {
        rm__verr(v, 0, "kind", "must be \"%s\" for a document in this list", want);
    }
    rm__v_name(v, "name", name, 1);
    if (ns == NULL) {
        ns = rm__v_strdup(v, "default");
        memcpy((char *)m + fs->offset, &ns, sizeof(ns));
        v->doc_ns = ns;
    } else {
        rm__v_name(v, "namespace", ns, 1);
    }
}

static const char *doc_ns_of(const ProtobufCMessage *m)
{
    const ProtobufCFieldDescriptor *fs =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, "namespace");
    const char *ns;
    memcpy(&ns, (const char *)m + fs->offset, sizeof(ns));
    return ns ? ns : "default";
}

static const char *doc_name_of(const ProtobufCMessage *m)
{
    const ProtobufCFieldDescriptor *fn =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, "name");
    const char *name;
    memcpy(&name, (const char *)m + fn->offset, sizeof(name));
    return name;
}

static void enter(rm__vctx_t *v, rm__list_t list, size_t index)
{
    ProtobufCMessage *m = rm__list_get(v->set, list, index);
    v->list = list;
    v->index = index;
    v->doc_ns = doc_ns_of(m);
    v->doc_name = doc_name_of(m);
    rm__path_pop(&v->path, 0);
}

typedef struct dup_key {
    const char *a, *b, *c; /* (ns, name) or (ns, service, version) */
    size_t index;
} dup_key_t;

static int cmp_dup(const void *x, const void *y)
{
    const dup_key_t *p = x, *q = y;
    int c = strcmp(p->a, q->a);
    if (c == 0)
        c = strcmp(p->b, q->b);
    if (c == 0)
        c = strcmp(p->c, q->c);
    if (c == 0)
        c = p->index < q->index ? -1 : (p->index > q->index);
    return c;
}

/* The line where document `index` of the current list defines `field`, for "first at line N". */
static int line_of(const rm__vctx_t *v, size_t index, const char *field)
{
    int line = 0, col = 0;
    if (v->map != NULL)
        rm__srcmap_find(v->map, v->list, index, field, &line, &col);
    return line;
}

typedef struct dup_pair {
    size_t dup;   /* the later document */
    size_t first; /* the earliest one with the same key */
} dup_pair_t;

static int cmp_pair(const void *x, const void *y)
{
    const dup_pair_t *p = x, *q = y;
    return p->dup < q->dup ? -1 : (p->dup > q->dup);
}

static int same_key(const dup_key_t *x, const dup_key_t *y)
{
    return strcmp(x->a, y->a) == 0 && strcmp(x->b, y->b) == 0 && strcmp(x->c, y->c) == 0;
}

/*
 * Sorts keys, then lists each document whose key an earlier document already has, in document
 * order (so messages come out in file order). Returns the number of pairs written to `pairs`.
 */
static size_t find_dups(dup_key_t *keys, size_t k, dup_pair_t *pairs)
{
    size_t n = 0, first = 0;
    qsort(keys, k, sizeof(*keys), cmp_dup);
    for (size_t i = 1; i < k; i++) {
        if (!same_key(&keys[i], &keys[first])) {
            first = i;
            continue;
        }
        pairs[n].dup = keys[i].index;
        pairs[n++].first = keys[first].index;
    }
    qsort(pairs, n, sizeof(*pairs), cmp_pair);
    return n;
}

/* Two documents of one kind with one (namespace, name); two CircuitBreakers for one target. */
static void check_duplicates(rm__vctx_t *v, rm__list_t list)
{
    size_t n = rm__list_len(v->set, list), k = 0, np;
    dup_key_t *keys = calloc(n ? n : 1, sizeof(*keys));
    dup_pair_t *pairs = calloc(n ? n : 1, sizeof(*pairs));

    if (keys == NULL || pairs == NULL) {
        v->nomem = 1;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const ProtobufCMessage *m = rm__list_get(v->set, list, i);
        if (doc_name_of(m) != NULL)
            keys[k++] = (dup_key_t){doc_ns_of(m), doc_name_of(m), "", i};
    }
    np = find_dups(keys, k, pairs);
    for (size_t i = 0; i < np; i++) {
        const ProtobufCMessage *m = rm__list_get(v->set, list, pairs[i].dup);
        char q[RM__QUOTE_BUF];
        enter(v, list, pairs[i].dup);
        rm__quote(doc_name_of(m), strlen(doc_name_of(m)), q, sizeof(q));
        if (v->map != NULL)
            rm__verr(v, 0, "name", "duplicate %s \"%s/%s\" (first defined at line %d)",
                     rm__kind_names[list], doc_ns_of(m), q, line_of(v, pairs[i].first, "name"));
        else
            rm__verr(v, 0, "name", "duplicate %s \"%s/%s\" (first defined as document #%zu)",
                     rm__kind_names[list], doc_ns_of(m), q, pairs[i].first + 1);
    }
    if (list != RM__LIST_CIRCUIT_BREAKERS)
        goto out;
    k = 0;
    for (size_t i = 0; i < n; i++) {
        const Remora__V1__CircuitBreaker *c = v->set->circuit_breakers[i];
        if (c->service != NULL)
            keys[k++] =
                (dup_key_t){doc_ns_of(&c->base), c->service, c->version ? c->version : "", i};
    }
    np = find_dups(keys, k, pairs);
    for (size_t i = 0; i < np; i++) {
        const Remora__V1__CircuitBreaker *dup = v->set->circuit_breakers[pairs[i].dup];
        const Remora__V1__CircuitBreaker *first = v->set->circuit_breakers[pairs[i].first];
        char q[RM__QUOTE_BUF], name[RM__QUOTE_BUF], target[2 * RM__QUOTE_BUF + 64];
        enter(v, list, pairs[i].dup);
        rm__quote(dup->service, strlen(dup->service), q, sizeof(q));
        rm__quote(first->name ? first->name : "", first->name ? strlen(first->name) : 0, name,
                  sizeof(name));
        if (dup->version != NULL)
            snprintf(target, sizeof(target), "service \"%s\" version \"%s\"", q, dup->version);
        else
            snprintf(target, sizeof(target), "service \"%s\" (all versions)", q);
        if (v->map != NULL)
            rm__verr(v, 0, "service",
                     "CircuitBreaker \"%s\" at line %d already covers %s; use one CircuitBreaker "
                     "per service and version",
                     name, line_of(v, pairs[i].first, "name"), target);
        else
            rm__verr(v, 0, "service",
                     "CircuitBreaker \"%s\" already covers %s; use one CircuitBreaker per service "
                     "and version",
                     name, target);
    }
out:
    free(keys);
    free(pairs);
}

int rm_config_validate(Remora__V1__ConfigSet *set, const rm_config_context_t *ctx,
                       rm_config_diags_t *errors, rm_config_diags_t *warnings)
{
    rm_config_diags_t discard = {0};
    rm__vctx_t v;
    size_t before;
    int rc = 0;

    if (errors == NULL)
        errors = &discard;
    before = errors->count + errors->dropped;

    memset(&v, 0, sizeof(v));
    v.set = set;
    v.ctx = ctx;
    v.map = rm__srcmap_get(set);
    v.errors = errors;
    v.warnings = warnings;

    /* Names first: references below resolve against defaulted namespaces. */
    for (int l = 0; l < RM__LIST_COUNT; l++) {
        for (size_t i = 0; i < rm__list_len(set, (rm__list_t)l); i++) {
            enter(&v, (rm__list_t)l, i);
            validate_header(&v, rm__list_get(set, (rm__list_t)l, i));
        }
    }
    if (v.nomem || build_indexes(&v) < 0) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < set->n_services; i++) {
        enter(&v, RM__LIST_SERVICES, i);
        validate_service(&v, set->services[i]);
    }
    for (size_t i = 0; i < set->n_routes; i++) {
        enter(&v, RM__LIST_ROUTES, i);
        rm__validate_route(&v, set->routes[i]);
    }
    for (size_t i = 0; i < set->n_circuit_breakers; i++) {
        enter(&v, RM__LIST_CIRCUIT_BREAKERS, i);
        validate_circuit_breaker(&v, set->circuit_breakers[i]);
    }
    for (int l = 0; l < RM__LIST_COUNT; l++)
        check_duplicates(&v, (rm__list_t)l);
    if (v.nomem || v.path.nomem)
        rc = -ENOMEM;
    else if (errors->count + errors->dropped > before)
        rc = -EINVAL;
out:
    free(v.svcs);
    free(v.eps);
    rm__path_free(&v.path);
    rm_config_diags_free(&discard);
    return rc;
}
