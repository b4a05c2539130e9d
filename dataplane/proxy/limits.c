/* dataplane/proxy/limits.c — per-worker circuit-breaker counters (see limits.h). */
#include "dataplane/proxy/limits.h"

#include <stdio.h>
#include <string.h>

#include "dataplane/proxy/upstream.h"
#include "dataplane/snapshot/hash.h"

#define LIMITS_TABLE 256

typedef struct limit_slot {
    uint64_t key;
    int requests; /* in flight */
    int pending;  /* waiting for a new connection */
} limit_slot_t;

static __thread limit_slot_t slots[LIMITS_TABLE];

/* The counters a request's CircuitBreaker applies to: its version's when a CircuitBreaker names
 * the version, else the service's. Collisions in the table only share counters. */
static limit_slot_t *slot_for(const rm_exchange_t *ex, const rm_circuit_breaker_t **cb_out)
{
    const rm_service_t *svc = ex->svc;
    const rm_version_t *v = ex->decision.version_index < svc->nversions
                                ? &svc->versions[ex->decision.version_index]
                                : NULL;
    const rm_circuit_breaker_t *cb = v != NULL && v->cb != NULL ? v->cb : svc->cb;
    /* The hash of "namespace/service/version", computed over the parts in place (a per-request
     * snprintf into a key buffer cost more than the rest of this function). */
    const char *parts[] = {svc->namespace_, svc->name, cb != svc->cb && v != NULL ? v->name : ""};
    uint64_t h = RM_HASH_FNV64_OFFSET;
    for (size_t p = 0; p < 3; p++) {
        if (p > 0)
            h = rm_hash_fnv1a64_update(h, "/", 1);
        h = rm_hash_fnv1a64_update(h, parts[p], strlen(parts[p]));
    }
    h = rm_hash_mix64(h) | 1;
    limit_slot_t *s = &slots[h % LIMITS_TABLE];
    if (s->key != h && s->requests == 0 && s->pending == 0)
        s->key = h;
    *cb_out = cb;
    return s;
}

const char *rm_limits_admit(rm_exchange_t *ex)
{
    if (ex->svc == NULL)
        return NULL;
    const rm_circuit_breaker_t *cb;
    limit_slot_t *s = slot_for(ex, &cb);
    if (cb != NULL && s->requests >= (int)cb->max_requests)
        return "max_requests";
    s->requests++;
    ex->limits_slot = s;
    return NULL;
}

static int version_connections(rm_worker_t *w, const rm_exchange_t *ex)
{
    const rm_service_t *svc = ex->svc;
    if (ex->decision.version_index >= svc->nversions)
        return 0;
    const rm_version_t *v = &svc->versions[ex->decision.version_index];
    int n = 0;
    for (size_t i = 0; i < v->nendpoints; i++) {
        rm_upstream_t *u = rm_upstream_find(w, v->endpoints[i].key);
        if (u != NULL)
            n += u->connections;
    }
    return n;
}

const char *rm_limits_connect(rm_exchange_t *ex)
{
    if (ex->svc == NULL || ex->limits_slot == NULL)
        return NULL;
    const rm_circuit_breaker_t *cb;
    limit_slot_t *s = slot_for(ex, &cb);
    if (cb == NULL)
        return NULL;
    if (version_connections(ex->session->worker, ex) >= (int)cb->max_connections)
        return "max_connections";
    if (s->pending >= (int)cb->max_pending_requests)
        return "max_pending_requests";
    s->pending++;
    ex->limits_pending = true;
    return NULL;
}

void rm_limits_connected(rm_exchange_t *ex)
{
    limit_slot_t *s = ex->limits_slot;
    if (s != NULL && ex->limits_pending) {
        s->pending--;
        ex->limits_pending = false;
    }
}

void rm_limits_release(rm_exchange_t *ex)
{
    limit_slot_t *s = ex->limits_slot;
    if (s == NULL)
        return;
    rm_limits_connected(ex);
    s->requests--;
    ex->limits_slot = NULL;
}
