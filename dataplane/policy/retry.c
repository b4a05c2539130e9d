/* dataplane/policy/retry.c — retry decisions and budgets (see retry.h). */
#include "dataplane/policy/retry.h"

#include <math.h>
#include <stdatomic.h>

/* The budget counts requests and retries over the last BUDGET_SLOTS seconds, per service, in a
 * small table shared by every worker (atomics), so budgets and maxRetries hold for the whole
 * sidecar whatever --workers says. A collision only shares a budget between two services. At a
 * second's boundary two workers may race to reset a slot and lose an increment or two: a
 * budget is a rate, and that error is far below its resolution. */
#define BUDGET_SLOTS 10
#define BUDGET_TABLE 64

struct rm_retry_budget {
    _Atomic uint64_t key;
    _Atomic int64_t second[BUDGET_SLOTS]; /* which second each slot counts */
    atomic_uint requests[BUDGET_SLOTS];
    atomic_uint retries[BUDGET_SLOTS];
    atomic_int active_retries; /* retries in flight: bounded by the circuit breaker's maxRetries */
};

static rm_retry_budget_t budgets[BUDGET_TABLE];

rm_retry_budget_t *rm_retry_budget_for(uint64_t key)
{
    rm_retry_budget_t *b = &budgets[key % BUDGET_TABLE];
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
static int slot(rm_retry_budget_t *b, int64_t now_s)
{
    int i = (int)(now_s % BUDGET_SLOTS);
    int64_t had = atomic_load_explicit(&b->second[i], memory_order_relaxed);
    if (had != now_s && atomic_compare_exchange_strong(&b->second[i], &had, now_s)) {
        atomic_store(&b->requests[i], 0);
        atomic_store(&b->retries[i], 0);
    }
    return i;
}

void rm_retry_budget_note_request(rm_retry_budget_t *b, int64_t now_s)
{
    atomic_fetch_add_explicit(&b->requests[slot(b, now_s)], 1, memory_order_relaxed);
}

static bool budget_allows(rm_retry_budget_t *b, const rm_retry_policy_t *p, int64_t now)
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

/* Which retryOn condition the failure meets: its stats label, or NULL when none does. */
static const char *matching_condition(const rm_retry_policy_t *p, const rm_retry_attempt_t *a,
                                      bool unprocessed)
{
    switch (a->cause) {
    case RM_RETRY_CAUSE_CONNECT_FAILURE:
        return p->retry_on & (RM_RETRY_ON_CONNECT_FAILURE | RM_RETRY_ON_RESET) ? "connect-failure"
                                                                               : NULL;
    case RM_RETRY_CAUSE_RESET:
        if (!(p->retry_on & (RM_RETRY_ON_RESET | RM_RETRY_ON_CONNECT_FAILURE)))
            return NULL;
        /* connect-failure alone covers a reset only when nothing was written */
        return unprocessed || (p->retry_on & RM_RETRY_ON_RESET) ? "reset" : NULL;
    case RM_RETRY_CAUSE_STATUS:
        if (!rm_retry_status_matches(p, a->status))
            return NULL;
        if (a->status >= 502 && a->status <= 504 && (p->retry_on & RM_RETRY_ON_GATEWAY_ERROR))
            return "gateway-error";
        return (p->retry_on & RM_RETRY_ON_5XX) && a->status >= 500 ? "5xx"
                                                                   : "retriable-status-codes";
    case RM_RETRY_CAUSE_TIMEOUT:
        return p->retry_on & (RM_RETRY_ON_GATEWAY_ERROR | RM_RETRY_ON_5XX) ? "per-try-timeout"
                                                                           : NULL;
    }
    return NULL;
}

rm_retry_verdict_t rm_retry_decide(const rm_retry_policy_t *p, const rm_circuit_breaker_t *cb,
                                   rm_retry_budget_t *b, const rm_retry_attempt_t *a)
{
    rm_retry_verdict_t v = {0};
    /* Provably unprocessed: nothing of this attempt's request reached the upstream. */
    bool unprocessed = a->cause == RM_RETRY_CAUSE_CONNECT_FAILURE ||
                       (a->cause == RM_RETRY_CAUSE_RESET && a->bytes_sent == 0);
    v.reason = matching_condition(p, a, unprocessed);
    if (v.reason == NULL)
        return v;

    /* A condition matched: from here on, a refusal has a reason. */
    int64_t now = (int64_t)a->now_s;
    if (a->retries >= (int)p->attempts) {
        v.skip_reason = "exhausted";
    } else if (!unprocessed && !a->idempotent) {
        v.skip_reason = "non_idempotent";
    } else if (a->replay_overflow) {
        /* Even an unprocessed request cannot go again once its body was not kept whole: the next
         * endpoint would get the head and wait for body bytes that are gone. */
        v.skip_reason = "body_too_large";
    } else if (!budget_allows(b, p, now)) {
        v.skip_reason = "budget";
    } else if (cb != NULL && atomic_load(&b->active_retries) >= (int)cb->max_retries) {
        v.skip_reason = "limit";
    } else {
        /* Exponential backoff with full jitter: uniform in [0, min(max, base * 2^n)]. */
        double cap = (double)p->backoff_base_ms * pow(2.0, a->retries);
        if (cap > (double)p->backoff_max_ms)
            cap = (double)p->backoff_max_ms;
        v.backoff_s = cap * ((double)(a->random >> 11) / 9007199254740992.0) / 1000.0;
        if (a->now_s + v.backoff_s >= a->deadline_s) {
            v.skip_reason = "deadline";
        } else {
            v.retry = true;
            atomic_fetch_add_explicit(&b->retries[slot(b, now)], 1, memory_order_relaxed);
            atomic_fetch_add(&b->active_retries, 1);
        }
    }
    return v;
}

void rm_retry_budget_release(rm_retry_budget_t *b)
{
    int had = atomic_load(&b->active_retries);
    while (had > 0 && !atomic_compare_exchange_weak(&b->active_retries, &had, had - 1))
        ;
}
