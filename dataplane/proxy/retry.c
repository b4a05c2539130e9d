/* dataplane/proxy/retry.c — retry decisions and budgets (see retry.h). */
#include "dataplane/proxy/retry.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "dataplane/proxy/metrics.h"
#include "dataplane/proxy/worker.h"
#include "dataplane/snapshot/hash.h"

/* The budget counts requests and retries over the last BUDGET_SLOTS seconds, per service, in a
 * small table shared by every worker (atomics), so budgets and maxRetries hold for the whole
 * sidecar whatever --workers says. A collision only shares a budget between two services. At a
 * second's boundary two workers may race to reset a slot and lose an increment or two: a
 * budget is a rate, and that error is far below its resolution. */
#define BUDGET_SLOTS 10
#define BUDGET_TABLE 64

typedef struct budget {
    _Atomic uint64_t key;
    _Atomic int64_t second[BUDGET_SLOTS]; /* which second each slot counts */
    atomic_uint requests[BUDGET_SLOTS];
    atomic_uint retries[BUDGET_SLOTS];
    atomic_int active_retries; /* retries in flight: bounded by the circuit breaker's maxRetries */
} budget_t;

static budget_t budgets[BUDGET_TABLE];

static budget_t *budget_for(const rm_service_t *svc)
{
    uint64_t key = svc->key; /* hashed once, in the snapshot */
    budget_t *b = &budgets[key % BUDGET_TABLE];
    uint64_t had = atomic_load_explicit(&b->key, memory_order_relaxed);
    if (had != key && atomic_compare_exchange_strong(&b->key, &had, key)) {
        for (int i = 0; i < BUDGET_SLOTS; i++) {
            atomic_store(&b->second[i], 0);
            atomic_store(&b->requests[i], 0);
            atomic_store(&b->retries[i], 0);
        }
    }
    return b;
}

/* The slot counting second now_s (reset when it still counts an older second). */
static int slot(budget_t *b, int64_t now_s)
{
    int i = (int)(now_s % BUDGET_SLOTS);
    int64_t had = atomic_load_explicit(&b->second[i], memory_order_relaxed);
    if (had != now_s && atomic_compare_exchange_strong(&b->second[i], &had, now_s)) {
        atomic_store(&b->requests[i], 0);
        atomic_store(&b->retries[i], 0);
    }
    return i;
}

void rm_retry_budget_note_request(rm_worker_t *w, const rm_service_t *svc)
{
    budget_t *b = budget_for(svc);
    int64_t now = (int64_t)ev_now(w->loop);
    atomic_fetch_add_explicit(&b->requests[slot(b, now)], 1, memory_order_relaxed);
}

static bool budget_allows(budget_t *b, const rm_retry_policy_t *p, int64_t now)
{
    uint64_t requests = 0, retries = 0;
    slot(b, now); /* rotate the current slot */
    for (int i = 0; i < BUDGET_SLOTS; i++) {
        if (now - atomic_load(&b->second[i]) < BUDGET_SLOTS) {
            requests += atomic_load_explicit(&b->requests[i], memory_order_relaxed);
            retries += atomic_load_explicit(&b->retries[i], memory_order_relaxed);
        }
    }
    double allowed = (double)requests * p->budget_percent / 100.0;
    double floor = (double)p->budget_min_per_second * BUDGET_SLOTS;
    return (double)retries < (allowed > floor ? allowed : floor);
}

bool rm_retry_status_matches(const rm_retry_policy_t *p, int status)
{
    if ((p->retry_on & RM_RETRY_ON_5XX) && status >= 500 && status <= 599)
        return true;
    if ((p->retry_on & RM_RETRY_ON_GATEWAY_ERROR) && status >= 502 && status <= 504)
        return true;
    if (p->retry_on & RM_RETRY_ON_RETRIABLE_CODES)
        for (size_t i = 0; i < p->nretriable_status_codes; i++)
            if (p->retriable_status_codes[i] == (uint32_t)status)
                return true;
    return false;
}

rm_retry_verdict_t rm_retry_decide(rm_exchange_t *ex, rm_retry_cause_t cause, int status)
{
    rm_retry_verdict_t v = {0};
    rm_worker_t *w = ex->session->worker;
    const rm_retry_policy_t *p = ex->svc != NULL ? ex->decision.retry : NULL;
    if (p == NULL || ex->raw_tcp)
        return v; /* inbound and passthrough: the caller's sidecar owns retries */

    /* Provably unprocessed: nothing of this attempt's request reached the upstream. */
    bool unprocessed = cause == RM_RETRY_CAUSE_CONNECT_FAILURE ||
                       (cause == RM_RETRY_CAUSE_RESET && ex->bytes_sent == 0);
    switch (cause) {
    case RM_RETRY_CAUSE_CONNECT_FAILURE:
        if (!(p->retry_on & (RM_RETRY_ON_CONNECT_FAILURE | RM_RETRY_ON_RESET)))
            return v;
        v.reason = "connect-failure";
        break;
    case RM_RETRY_CAUSE_RESET:
        if (!(p->retry_on & (RM_RETRY_ON_RESET | RM_RETRY_ON_CONNECT_FAILURE)))
            return v;
        if (!unprocessed && !(p->retry_on & RM_RETRY_ON_RESET))
            return v;
        v.reason = "reset";
        break;
    case RM_RETRY_CAUSE_STATUS:
        if (!rm_retry_status_matches(p, status))
            return v;
        v.reason = status >= 502 && status <= 504 && (p->retry_on & RM_RETRY_ON_GATEWAY_ERROR)
                       ? "gateway-error"
                   : (p->retry_on & RM_RETRY_ON_5XX) && status >= 500 ? "5xx"
                                                                      : "retriable-status-codes";
        break;
    case RM_RETRY_CAUSE_TIMEOUT:
        if (!(p->retry_on & (RM_RETRY_ON_GATEWAY_ERROR | RM_RETRY_ON_5XX)))
            return v;
        v.reason = "per-try-timeout";
        break;
    }

    /* A condition matched: from here on, a refusal is counted with its reason. */
    budget_t *b = budget_for(ex->svc);
    int64_t now = (int64_t)ev_now(w->loop);
    const rm_circuit_breaker_t *cb = ex->svc->cb;
    if (ex->retries >= (int)p->attempts) {
        v.skip_reason = "exhausted";
    } else if (!unprocessed && !ex->idempotent) {
        v.skip_reason = "non_idempotent";
    } else if (ex->replay_overflow && !unprocessed) {
        v.skip_reason = "body_too_large";
    } else if (!budget_allows(b, p, now)) {
        v.skip_reason = "budget";
    } else if (cb != NULL && atomic_load(&b->active_retries) >= (int)cb->max_retries) {
        v.skip_reason = "limit";
    } else {
        /* Exponential backoff with full jitter: uniform in [0, min(max, base * 2^n)]. */
        double cap = (double)p->backoff_base_ms * pow(2.0, ex->retries);
        if (cap > (double)p->backoff_max_ms)
            cap = (double)p->backoff_max_ms;
        v.backoff_s = cap * ((double)(rm_worker_random(w) >> 11) / 9007199254740992.0) / 1000.0;
        double deadline =
            ex->start +
            (double)(ex->timeout_ms ? ex->timeout_ms : w->proxy->opt.request_timeout_ms) / 1000.0;
        if (ev_now(w->loop) + v.backoff_s >= deadline) {
            v.skip_reason = "deadline";
        } else {
            v.retry = true;
            atomic_fetch_add_explicit(&b->retries[slot(b, now)], 1, memory_order_relaxed);
            atomic_fetch_add(&b->active_retries, 1);
            ex->retry_reserved = true;
        }
    }
    if (v.retry)
        rm_metrics_retry(w, ex->service_name, ex->version_name, ex->route_name, v.reason);
    else
        rm_metrics_retry_skipped(w, ex->service_name, ex->version_name, ex->route_name,
                                 v.skip_reason);
    return v;
}

void rm_retry_done(rm_exchange_t *ex)
{
    if (!ex->retry_reserved)
        return;
    ex->retry_reserved = false;
    budget_t *b = budget_for(ex->svc);
    int had = atomic_load(&b->active_retries);
    while (had > 0 && !atomic_compare_exchange_weak(&b->active_retries, &had, had - 1))
        ;
}
