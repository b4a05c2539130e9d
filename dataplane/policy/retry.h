/* dataplane/policy/retry.h — when a failed attempt may be tried again (SPEC.md "Retries, safe by
 * default"), and the retry budget shared by every worker.
 *
 * Safety: a request the upstream provably never processed (connect failure, or not one request
 * byte written) may be retried whatever its method. An ambiguous failure (reset after bytes went
 * out, a retriable status, a per-try timeout) only for idempotent methods or with
 * Idempotency-Key. A condition that matched but was refused comes back with its reason, for the
 * caller to count.
 *
 * Pure decisions over the facts the caller gives (no clock, no randomness of its own), so every
 * rule has a unit test (retry_test.c). The budget is process-wide state: atomics, any thread.
 */
#ifndef REMORA_DATAPLANE_POLICY_RETRY_H
#define REMORA_DATAPLANE_POLICY_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/snapshot/snapshot.h"

typedef enum rm_retry_cause {
    RM_RETRY_CAUSE_CONNECT_FAILURE = 0, /* refused, unreachable, connect timeout */
    RM_RETRY_CAUSE_RESET,               /* closed/reset before a response began */
    RM_RETRY_CAUSE_STATUS,              /* a response status the policy retries */
    RM_RETRY_CAUSE_TIMEOUT,             /* per-try timeout */
} rm_retry_cause_t;

/* What the caller knows about the attempt that just failed. */
typedef struct rm_retry_attempt {
    rm_retry_cause_t cause;
    int status;           /* the response status, for RM_RETRY_CAUSE_STATUS */
    size_t bytes_sent;    /* request bytes this attempt wrote to the upstream */
    bool idempotent;      /* method, Idempotency-Key, or the rule's `idempotent: true` */
    bool replay_overflow; /* the body outgrew the replay buffer */
    int retries;          /* retries taken so far for this request */
    double now_s;         /* the loop's clock */
    double deadline_s;    /* the request's deadline on that clock */
    uint64_t random;      /* uniform random bits, for the backoff's jitter */
} rm_retry_attempt_t;

typedef struct rm_retry_verdict {
    bool retry;
    const char *reason;      /* stats label of the retry (connect-failure, reset, 5xx...) */
    const char *skip_reason; /* when a condition matched but the retry was refused; NULL when no
                                condition matched (nothing to count) */
    double backoff_s;        /* wait before the next attempt */
} rm_retry_verdict_t;

/* One service's budget: requests and retries over the last ten seconds, and retries in flight.
 * Shared by every worker (atomics). */
typedef struct rm_retry_budget rm_retry_budget_t;

/* The budget of the service with this key (rm_service_t.key). Never NULL: a small fixed table,
 * where a collision only shares a budget between two services. Any thread. */
rm_retry_budget_t *rm_retry_budget_for(uint64_t service_key);

/* Counts one request (once per request, not per attempt). now_s: whole seconds of any clock. */
void rm_retry_budget_note_request(rm_retry_budget_t *b, int64_t now_s);

/* Decides about a failed attempt under policy p (the route's; must not be NULL) and the
 * service's circuit breaker cb (maxRetries; NULL: none). When it says retry, the retry is counted
 * in budget b and holds a place among the retries in flight: give it back with
 * rm_retry_budget_release once that attempt ends. */
rm_retry_verdict_t rm_retry_decide(const rm_retry_policy_t *p, const rm_circuit_breaker_t *cb,
                                   rm_retry_budget_t *b, const rm_retry_attempt_t *a);

/* A retry decided by rm_retry_decide ended (successfully or not). */
void rm_retry_budget_release(rm_retry_budget_t *b);

/* True when status is one the policy retries (5xx, gateway-error, listed codes). */
bool rm_retry_status_matches(const rm_retry_policy_t *p, int status);

#endif
