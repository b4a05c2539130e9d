/* dataplane/proxy/retry.h — when a failed attempt may be tried again (SPEC.md "Retries, safe by
 * default"), and the retry budget (shared by every worker).
 *
 * Safety: a request the upstream provably never processed (connect failure, or not one request
 * byte written) may be retried whatever its method. An ambiguous failure (reset after bytes went
 * out, a retriable status, a per-try timeout) only for idempotent methods or with
 * Idempotency-Key. Every retry not taken is counted with its reason.
 */
#ifndef RM_PROXY_RETRY_H
#define RM_PROXY_RETRY_H

#include "dataplane/proxy/proxy-t.h"

typedef enum rm_retry_cause {
    RM_RETRY_CAUSE_CONNECT_FAILURE = 0, /* refused, unreachable, connect timeout */
    RM_RETRY_CAUSE_RESET,               /* closed/reset before a response began */
    RM_RETRY_CAUSE_STATUS,              /* a response status the policy retries */
    RM_RETRY_CAUSE_TIMEOUT,             /* per-try timeout */
} rm_retry_cause_t;

/* What to do with a failed attempt. */
typedef struct rm_retry_verdict {
    bool retry;
    const char *reason;      /* stats label of the retry (connect-failure, reset, 5xx...) */
    const char *skip_reason; /* when a condition matched but the retry was refused */
    double backoff_s;        /* wait before the next attempt */
} rm_retry_verdict_t;

/* Decides about the attempt that just failed. `status` is the response status for
 * RM_RETRY_CAUSE_STATUS. Reserves budget and circuit-breaker room when it says yes (release it
 * with rm_retry_done once the retry attempt ends). Loop thread. */
rm_retry_verdict_t rm_retry_decide(rm_exchange_t *ex, rm_retry_cause_t cause, int status);

/* A retry attempt ended (successfully or not): gives back its circuit-breaker room. */
void rm_retry_done(rm_exchange_t *ex);

/* Counts a request for the retry budget of its service (once per request). Loop thread. */
void rm_retry_budget_note_request(rm_worker_t *w, const rm_service_t *svc);

/* True when status is one the rule's policy retries (5xx, gateway-error, listed codes). */
bool rm_retry_status_matches(const rm_retry_policy_t *p, int status);

#endif
