/* dataplane/policy/limits.c — process-wide circuit-breaker counters (see limits.h). */
#include "dataplane/policy/limits.h"

#include <stdatomic.h>

#define LIMITS_TABLE 256
#define CONN_TABLE   4096

/* Shared by every worker, so the thresholds hold for the whole sidecar whatever --workers says.
 * A slot is claimed by the first key that finds it idle; a collision only shares counters (the
 * limits then bind a little early, never late). */
typedef struct limit_slot {
    _Atomic uint64_t key;
    atomic_int requests; /* in flight */
    atomic_int pending;  /* waiting for a new connection */
} limit_slot_t;

static limit_slot_t slots[LIMITS_TABLE];

/* Open upstream connections per endpoint (by endpoint key), over every worker's pool. */
static atomic_int endpoint_connections[CONN_TABLE];

void rm_limits_connection_opened(uint64_t endpoint_key)
{
    atomic_fetch_add_explicit(&endpoint_connections[endpoint_key % CONN_TABLE], 1,
                              memory_order_relaxed);
}

void rm_limits_connection_closed(uint64_t endpoint_key)
{
    atomic_fetch_sub_explicit(&endpoint_connections[endpoint_key % CONN_TABLE], 1,
                              memory_order_relaxed);
}

/* Takes a place in counter `c` unless that would pass `max` (max < 0: no limit). */
static bool take_place(atomic_int *c, long max)
{
    int before = atomic_fetch_add(c, 1);
    if (max >= 0 && before >= max) {
        atomic_fetch_sub(c, 1);
        return false;
    }
    return true;
}

static const rm_version_t *version_of(const rm_service_t *svc, size_t version_index)
{
    return version_index < svc->nversions ? &svc->versions[version_index] : NULL;
}

/* The counters a request's CircuitBreaker applies to: its version's when a CircuitBreaker names
 * the version, else the service's. Collisions in the table only share counters. */
static limit_slot_t *slot_for(const rm_service_t *svc, size_t version_index,
                              const rm_circuit_breaker_t **cb_out)
{
    const rm_version_t *v = version_of(svc, version_index);
    const rm_circuit_breaker_t *cb = v != NULL && v->cb != NULL ? v->cb : svc->cb;
    uint64_t h = cb != svc->cb && v != NULL ? v->limits_key : svc->limits_key; /* in the snapshot */
    limit_slot_t *s = &slots[h % LIMITS_TABLE];
    uint64_t k = atomic_load(&s->key);
    if (k != h && atomic_load(&s->requests) == 0 && atomic_load(&s->pending) == 0)
        atomic_compare_exchange_strong(&s->key, &k, h);
    *cb_out = cb;
    return s;
}

const char *rm_limits_admit(rm_limits_hold_t *h, const rm_service_t *svc, size_t version_index)
{
    const rm_circuit_breaker_t *cb;
    limit_slot_t *s = slot_for(svc, version_index, &cb);
    if (!take_place(&s->requests, cb != NULL ? (long)cb->max_requests : -1))
        return "max_requests";
    h->slot = s;
    return NULL;
}

static int version_connections(const rm_version_t *v)
{
    int n = 0;
    for (size_t i = 0; v != NULL && i < v->nendpoints; i++)
        n += atomic_load_explicit(&endpoint_connections[v->endpoints[i].key % CONN_TABLE],
                                  memory_order_relaxed);
    return n;
}

const char *rm_limits_connect(rm_limits_hold_t *h, const rm_service_t *svc, size_t version_index)
{
    if (h->slot == NULL)
        return NULL;
    const rm_circuit_breaker_t *cb;
    limit_slot_t *s = slot_for(svc, version_index, &cb);
    if (cb == NULL)
        return NULL;
    if (version_connections(version_of(svc, version_index)) >= (int)cb->max_connections)
        return "max_connections";
    if (!take_place(&s->pending, (long)cb->max_pending_requests))
        return "max_pending_requests";
    h->pending = true;
    return NULL;
}

void rm_limits_connected(rm_limits_hold_t *h)
{
    limit_slot_t *s = h->slot;
    if (s != NULL && h->pending) {
        atomic_fetch_sub(&s->pending, 1);
        h->pending = false;
    }
}

void rm_limits_release(rm_limits_hold_t *h)
{
    limit_slot_t *s = h->slot;
    if (s == NULL)
        return;
    rm_limits_connected(h);
    atomic_fetch_sub(&s->requests, 1);
    h->slot = NULL;
}
