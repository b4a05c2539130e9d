/* controlplane/store/store_mem.c — a store that lives in memory: for unit tests and the fuzz
 * driver, where a disk per iteration would only slow things down. Same contract as SQLite; the
 * data is gone when the store is closed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/store/store-int.h"

typedef struct mem_store {
    rm_store_t base;
    rm_store_record_t *recs; /* owned; recs[i].version == first + i */
    size_t n, cap;
    uint64_t first;           /* the oldest version kept (1 until something is pruned) */
    rm_store_endpoint_t *eps; /* owned: registrations, sorted by key */
    size_t n_eps;
} mem_store_t;

static int copy_record(rm_store_t *s, const rm_store_record_t *src, rm_store_record_t *dst,
                       int with_cfg)
{
    memset(dst, 0, sizeof(*dst));
    dst->version = src->version;
    dst->created_ms = src->created_ms;
    dst->summary = strdup(src->summary);
    if (dst->summary == NULL)
        goto nomem;
    if (with_cfg) {
        dst->config = malloc(src->config_len ? src->config_len : 1);
        if (dst->config == NULL)
            goto nomem;
        if (src->config_len)
            memcpy(dst->config, src->config, src->config_len);
        dst->config_len = src->config_len;
    }
    return 0;
nomem:
    rm_store_record_free(dst);
    rm__store_fail(s, "out of memory");
    return -ENOMEM;
}

static int mem_get(rm_store_t *s, uint64_t version, rm_store_record_t *out)
{
    mem_store_t *m = (mem_store_t *)s;
    uint64_t latest = m->first - 1 + m->n;
    memset(out, 0, sizeof(*out));
    if (version == 0)
        version = latest;
    if (version == 0 || version > latest || version < m->first) {
        rm__store_fail(s, version == 0 ? "the store holds no config yet" : "no such version");
        return -ENOENT;
    }
    return copy_record(s, &m->recs[version - m->first], out, 1);
}

static int mem_append(rm_store_t *s, uint64_t expect_version, const uint8_t *config, size_t len,
                      const char *summary, uint64_t created_ms, uint64_t *out_version)
{
    mem_store_t *m = (mem_store_t *)s;
    uint64_t latest = m->first - 1 + m->n;
    if (expect_version != latest) {
        rm__store_fail(s, "the store moved on: latest version is %llu", (unsigned long long)latest);
        return -EAGAIN;
    }
    if (m->n == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 8;
        rm_store_record_t *nr = realloc(m->recs, nc * sizeof(*nr));
        if (nr == NULL)
            goto nomem;
        m->recs = nr;
        m->cap = nc;
    }
    rm_store_record_t *r = &m->recs[m->n];
    memset(r, 0, sizeof(*r));
    r->summary = rm__store_summary_dup(summary);
    r->config = malloc(len ? len : 1);
    if (r->summary == NULL || r->config == NULL) {
        rm_store_record_free(r);
        goto nomem;
    }
    if (len)
        memcpy(r->config, config, len);
    r->config_len = len;
    r->created_ms = created_ms;
    r->version = latest + 1;
    m->n++;
    *out_version = r->version;
    return 0;
nomem:
    rm__store_fail(s, "out of memory");
    return -ENOMEM;
}

static int mem_history(rm_store_t *s, uint32_t limit, rm_store_record_t **out, size_t *n)
{
    mem_store_t *m = (mem_store_t *)s;
    size_t count = m->n < limit ? m->n : limit;
    *out = NULL;
    *n = 0;
    if (count == 0)
        return 0;
    rm_store_record_t *arr = calloc(count, sizeof(*arr));
    if (arr == NULL) {
        rm__store_fail(s, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        if (copy_record(s, &m->recs[m->n - 1 - i], &arr[i], 0) < 0) {
            rm_store_records_free(arr, i);
            return -ENOMEM;
        }
    }
    *out = arr;
    *n = count;
    return 0;
}

static int mem_prune(rm_store_t *s, uint64_t keep_from, uint64_t *pruned)
{
    mem_store_t *m = (mem_store_t *)s;
    size_t k = 0;
    while (k < m->n && m->recs[k].version < keep_from)
        rm_store_record_free(&m->recs[k++]);
    if (k > 0)
        memmove(m->recs, m->recs + k, (m->n - k) * sizeof(*m->recs));
    m->n -= k;
    m->first += k;
    if (pruned != NULL)
        *pruned = k;
    return 0;
}

static int mem_oldest(rm_store_t *s, uint64_t *out)
{
    mem_store_t *m = (mem_store_t *)s;
    *out = m->n > 0 ? m->first : 0;
    return 0;
}

static int ep_copy(const rm_store_endpoint_t *src, rm_store_endpoint_t *dst)
{
    memset(dst, 0, sizeof(*dst));
    dst->pod = strdup(src->pod != NULL ? src->pod : "");
    dst->namespace_ = strdup(src->namespace_ != NULL ? src->namespace_ : "");
    dst->service = strdup(src->service != NULL ? src->service : "");
    dst->version = strdup(src->version != NULL ? src->version : "");
    dst->address = strdup(src->address != NULL ? src->address : "");
    dst->owner = strdup(src->owner != NULL ? src->owner : "");
    dst->draining = src->draining ? 1 : 0;
    dst->held_until_ms = src->held_until_ms;
    if (!dst->pod || !dst->namespace_ || !dst->service || !dst->version || !dst->address ||
        !dst->owner) {
        rm_store_endpoint_free(dst);
        return -ENOMEM;
    }
    return 0;
}

/* The index of e's key, or where it would go (*found 0). */
static size_t ep_find(const mem_store_t *m, const rm_store_endpoint_t *e, int *found)
{
    char key[RM_STORE_EP_KEY_MAX], k2[RM_STORE_EP_KEY_MAX];
    rm_store_endpoint_key(e, key, sizeof(key));
    *found = 0;
    for (size_t i = 0; i < m->n_eps; i++) {
        rm_store_endpoint_key(&m->eps[i], k2, sizeof(k2));
        int c = strcmp(k2, key);
        if (c == 0)
            *found = 1;
        if (c >= 0)
            return i;
    }
    return m->n_eps;
}

static int mem_ep_put(rm_store_t *s, const rm_store_endpoint_t *e)
{
    mem_store_t *m = (mem_store_t *)s;
    rm_store_endpoint_t copy;
    int found;
    if (ep_copy(e, &copy) < 0)
        goto nomem;
    size_t i = ep_find(m, e, &found);
    if (found) {
        rm_store_endpoint_free(&m->eps[i]);
        m->eps[i] = copy;
        return 0;
    }
    rm_store_endpoint_t *n = realloc(m->eps, (m->n_eps + 1) * sizeof(*n));
    if (n == NULL) {
        rm_store_endpoint_free(&copy);
        goto nomem;
    }
    m->eps = n;
    memmove(&m->eps[i + 1], &m->eps[i], (m->n_eps - i) * sizeof(*n));
    m->eps[i] = copy;
    m->n_eps++;
    return 0;
nomem:
    rm__store_fail(s, "out of memory");
    return -ENOMEM;
}

static int same(const char *a, const char *b)
{
    return strcmp(a != NULL ? a : "", b != NULL ? b : "") == 0;
}

static int mem_ep_remove(rm_store_t *s, const rm_store_endpoint_t *e)
{
    mem_store_t *m = (mem_store_t *)s;
    int found;
    size_t i = ep_find(m, e, &found);
    if (!found)
        return 0;
    const rm_store_endpoint_t *o = &m->eps[i];
    if (!same(o->owner, e->owner) || !same(o->service, e->service) ||
        !same(o->version, e->version) || !same(o->address, e->address) ||
        o->draining != (e->draining ? 1 : 0))
        return 0; /* rewritten by someone else since: theirs now */
    rm_store_endpoint_free(&m->eps[i]);
    memmove(&m->eps[i], &m->eps[i + 1], (m->n_eps - i - 1) * sizeof(m->eps[0]));
    m->n_eps--;
    return 0;
}

static int mem_ep_list(rm_store_t *s, rm_store_endpoint_t **out, size_t *n)
{
    mem_store_t *m = (mem_store_t *)s;
    *out = NULL;
    *n = 0;
    if (m->n_eps == 0)
        return 0;
    rm_store_endpoint_t *arr = calloc(m->n_eps, sizeof(*arr));
    if (arr == NULL)
        goto nomem;
    for (size_t i = 0; i < m->n_eps; i++) {
        if (ep_copy(&m->eps[i], &arr[i]) < 0) {
            rm_store_endpoints_free(arr, i);
            goto nomem;
        }
    }
    *out = arr;
    *n = m->n_eps;
    return 0;
nomem:
    rm__store_fail(s, "out of memory");
    return -ENOMEM;
}

static void mem_close(rm_store_t *s)
{
    mem_store_t *m = (mem_store_t *)s;
    rm_store_endpoints_free(m->eps, m->n_eps);
    for (size_t i = 0; i < m->n; i++)
        rm_store_record_free(&m->recs[i]);
    free(m->recs);
    free(m);
}

static const rm_store_ops_t mem_ops = {
    .scheme = "mem",
    .get = mem_get,
    .append = mem_append,
    .history = mem_history,
    .close = mem_close,
    .prune = mem_prune,
    .oldest = mem_oldest,
    .ep_put = mem_ep_put,
    .ep_remove = mem_ep_remove,
    .ep_list = mem_ep_list,
};

int rm__store_mem_open(rm_store_t **out)
{
    mem_store_t *m = calloc(1, sizeof(*m));
    *out = NULL;
    if (m == NULL)
        return -ENOMEM;
    m->base.ops = &mem_ops;
    m->first = 1;
    *out = &m->base;
    return 0;
}
