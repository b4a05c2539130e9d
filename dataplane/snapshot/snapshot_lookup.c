/* dataplane/snapshot/snapshot_lookup.c — the per-request lookups of a snapshot: services by
 * host, by vip:port and by name, and regex matching with per-thread match data.
 */
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>

#include "dataplane/snapshot/hash.h"
#include "dataplane/snapshot/snapshot-int.h"
#include "dataplane/snapshot/snapshot.h"

int rm__htab_init(rm__htab_t *t, rm__arena_t *a, size_t n)
{
    size_t cap = 8;
    while (cap < 2 * n) {
        if (cap > SIZE_MAX / 4)
            return -1;
        cap *= 2;
    }
    t->slots = rm__arena_calloc(a, cap, sizeof(*t->slots));
    if (t->slots == NULL)
        return -1;
    t->mask = cap - 1;
    return 0;
}

void rm__htab_put(rm__htab_t *t, uint64_t hash, const char *key, size_t len,
                  const rm_service_t *svc)
{
    hash = rm__htab_fix(hash);
    size_t i = (size_t)hash & t->mask;
    while (t->slots[i].hash != 0)
        i = (i + 1) & t->mask;
    t->slots[i].hash = hash;
    t->slots[i].key = key;
    t->slots[i].len = len;
    t->slots[i].svc = svc;
}

uint64_t rm__hash_lower(const char *s, size_t n)
{
    uint64_t h = RM_HASH_FNV64_OFFSET;
    for (size_t i = 0; i < n; i++) {
        h ^= rm__lower((unsigned char)s[i]);
        h *= RM_HASH_FNV64_PRIME;
    }
    return rm_hash_mix64(h);
}

uint64_t rm__name_hash(const char *ns, size_t nslen, const char *name, size_t namelen)
{
    uint64_t h = rm_hash_fnv1a64_update(RM_HASH_FNV64_OFFSET, ns, nslen);
    h = rm_hash_fnv1a64_update(h, "/", 1);
    h = rm_hash_fnv1a64_update(h, name, namelen);
    return rm__htab_fix(rm_hash_mix64(h));
}

size_t rm__addr_key(const struct sockaddr *sa, unsigned char *buf)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        buf[0] = 4;
        memcpy(buf + 1, &in->sin_port, 2);
        memcpy(buf + 3, &in->sin_addr, 4);
        return 7;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        memcpy(buf + 1, &in6->sin6_port, 2);
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            /* A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d. */
            buf[0] = 4;
            memcpy(buf + 3, &in6->sin6_addr.s6_addr[12], 4);
            return 7;
        }
        buf[0] = 6;
        memcpy(buf + 3, &in6->sin6_addr, 16);
        return 19;
    }
    return 0;
}

/* Parses an all-digit port of 1..65535. Returns the port or -1. */
static long parse_port(const char *p, size_t n)
{
    if (n == 0 || n > 5)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return (v >= 1 && v <= 65535) ? v : -1;
}

const rm_service_t *rm_snapshot_service_by_host(const rm_snapshot_t *s, const char *host,
                                                size_t len)
{
    if (s == NULL || host == NULL || len == 0)
        return NULL;
    const char *h = host;
    size_t hl = len;
    long port = -1; /* -1: no port given */
    const char *rest = NULL;
    size_t restlen = 0;
    if (host[0] == '[') {
        const char *close = memchr(host, ']', len);
        if (close == NULL)
            return NULL;
        h = host + 1;
        hl = (size_t)(close - h);
        rest = close + 1;
        restlen = len - (size_t)(rest - host);
        if (restlen > 0 && rest[0] != ':')
            return NULL;
    } else {
        const char *colon = memchr(host, ':', len);
        if (colon != NULL) {
            hl = (size_t)(colon - host);
            rest = colon;
            restlen = len - hl;
        }
    }
    if (restlen > 1) { /* ":" alone is an empty port: the default, as RFC 3986 allows */
        port = parse_port(rest + 1, restlen - 1);
        if (port < 0)
            return NULL;
    }
    if (hl > 1 && h[hl - 1] == '.') /* absolute FQDN "name.ns.svc.cluster.local." */
        hl--;
    if (hl == 0)
        return NULL;

    const rm__htab_t *t = &s->by_host;
    uint64_t hash = rm__htab_fix(rm__hash_lower(h, hl));
    const rm_service_t *fallback = NULL;
    for (size_t i = (size_t)hash & t->mask; t->slots[i].hash != 0; i = (i + 1) & t->mask) {
        const rm__hent_t *e = &t->slots[i];
        if (e->hash != hash || e->len != hl)
            continue;
        size_t k = 0;
        while (k < hl && (unsigned char)e->key[k] == rm__lower((unsigned char)h[k]))
            k++;
        if (k != hl)
            continue;
        if (e->svc->port == port)
            return e->svc;
        if ((port < 0 || port == 80) && fallback == NULL)
            fallback = e->svc;
    }
    return fallback;
}

const rm_service_t *rm_snapshot_service_by_addr(const rm_snapshot_t *s, const struct sockaddr *addr)
{
    if (s == NULL || addr == NULL)
        return NULL;
    unsigned char key[RM__ADDR_KEY_MAX];
    size_t klen = rm__addr_key(addr, key);
    if (klen == 0)
        return NULL;
    const rm__htab_t *t = &s->by_addr;
    uint64_t hash = rm__htab_fix(rm_hash64(key, klen));
    for (size_t i = (size_t)hash & t->mask; t->slots[i].hash != 0; i = (i + 1) & t->mask) {
        const rm__hent_t *e = &t->slots[i];
        if (e->hash == hash && e->len == klen && memcmp(e->key, key, klen) == 0)
            return e->svc;
    }
    return NULL;
}

const rm_service_t *rm_snapshot_service_by_name(const rm_snapshot_t *s, const char *ns,
                                                const char *name)
{
    if (s == NULL || name == NULL)
        return NULL;
    if (ns == NULL || ns[0] == '\0')
        ns = "default";
    size_t nslen = strlen(ns), namelen = strlen(name);
    uint64_t hash = rm__name_hash(ns, nslen, name, namelen);
    const rm__htab_t *t = &s->by_name;
    for (size_t i = (size_t)hash & t->mask; t->slots[i].hash != 0; i = (i + 1) & t->mask) {
        const rm__hent_t *e = &t->slots[i];
        if (e->hash == hash && e->len == nslen + 1 + namelen && memcmp(e->key, ns, nslen) == 0 &&
            e->key[nslen] == '/' && memcmp(e->key + nslen + 1, name, namelen) == 0)
            return e->svc;
    }
    return NULL;
}

const rm_version_t *rm_snapshot_version_by_name(const rm_service_t *svc, const char *name)
{
    if (svc == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < svc->nversions; i++)
        if (strcmp(svc->versions[i].name, name) == 0)
            return &svc->versions[i];
    return NULL;
}

/* Match data is per thread, not per pattern: pcre2_match writes into it, several workers may
 * match the same compiled pattern at once, and allocating per request is not allowed. One
 * ovector pair is enough because only "matched or not" is used. The key's destructor frees it
 * when the thread exits. */
static pthread_key_t md_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static int md_key_ok;

static void md_free(void *p)
{
    pcre2_match_data_free(p);
}

static void md_key_create(void)
{
    md_key_ok = pthread_key_create(&md_key, md_free) == 0;
}

int rm_snapshot_regex_match(const rm_regex_t *re, const char *subject, size_t len)
{
    if (re == NULL || re->code == NULL)
        return 0;
    pthread_once(&md_once, md_key_create);
    if (!md_key_ok)
        return 0;
    pcre2_match_data *md = pthread_getspecific(md_key);
    if (md == NULL) {
        md = pcre2_match_data_create(1, NULL);
        if (md == NULL)
            return 0;
        if (pthread_setspecific(md_key, md) != 0) {
            pcre2_match_data_free(md);
            return 0;
        }
    }
    /* An empty subject may come with a NULL pointer; PCRE2 wants a valid one. */
    PCRE2_SPTR sub = (PCRE2_SPTR)(subject != NULL ? subject : "");
    /* The pattern was compiled with PCRE2_ANCHORED | PCRE2_ENDANCHORED; pcre2_match uses the JIT
     * code when pcre2_jit_compile succeeded. Any negative result (no match, match/depth/heap
     * limit, JIT stack limit, bad UTF) is "no match". */
    int rc = pcre2_match(re->code, sub, len, 0, 0, md, (pcre2_match_context *)re->mctx);
    return rc >= 0 ? 1 : 0;
}

uint64_t rm_snapshot_version(const rm_snapshot_t *s)
{
    return s->version;
}

const char *rm_snapshot_local_namespace(const rm_snapshot_t *s)
{
    return s->local_ns;
}

const Remora__V1__ConfigSet *rm_snapshot_config(const rm_snapshot_t *s)
{
    return s->cfg;
}

const uint8_t *rm_snapshot_packed(const rm_snapshot_t *s, size_t *len)
{
    if (len != NULL)
        *len = s->packed_len;
    return s->packed;
}

size_t rm_snapshot_service_count(const rm_snapshot_t *s)
{
    return s == NULL ? 0 : s->nservices;
}

const rm_service_t *rm_snapshot_service_at(const rm_snapshot_t *s, size_t index)
{
    if (s == NULL || index >= s->nservices)
        return NULL;
    return &s->services[index];
}
