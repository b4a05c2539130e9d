/* dataplane/proxy/attempt.c — an attempt's outcome fed to the policies (see attempt.h). */
#include "dataplane/proxy/attempt.h"

#include "common/log/log.h"
#include "dataplane/proxy/metrics.h"
#include "dataplane/proxy/upstream.h"
#include "dataplane/proxy/worker_state.h"

rm_retry_verdict_t rm_attempt_retry_verdict(rm_exchange_t *ex, rm_retry_cause_t cause, int status)
{
    rm_worker_t *w = ex->session->worker;
    const rm_retry_policy_t *p = ex->svc != NULL ? ex->decision.retry : NULL;
    if (p == NULL || ex->raw_tcp)
        return (rm_retry_verdict_t){0}; /* inbound and passthrough: the caller's sidecar owns
                                           retries */
    uint64_t timeout_ms = ex->timeout_ms ? ex->timeout_ms : w->proxy->opt.request_timeout_ms;
    rm_retry_attempt_t a = {
        .cause = cause,
        .status = status,
        .bytes_sent = ex->bytes_sent,
        .idempotent = ex->idempotent,
        .replay_overflow = ex->replay_overflow,
        .retries = ex->retries,
        .now_s = ev_now(w->loop),
        .deadline_s = ex->start + (double)timeout_ms / 1000.0,
        .random = rm_worker_random(w),
    };
    rm_retry_verdict_t v = rm_retry_decide(p, ex->svc->cb, rm_retry_budget_for(ex->svc->key), &a);
    if (v.retry) {
        ex->retry_reserved = true;
        rm_metrics_retry(w, ex->service_name, ex->version_name, ex->route_name, v.reason);
    } else if (v.skip_reason != NULL) {
        rm_metrics_retry_skipped(w, ex->service_name, ex->version_name, ex->route_name,
                                 v.skip_reason);
    }
    return v;
}

void rm_attempt_retry_done(rm_exchange_t *ex)
{
    if (!ex->retry_reserved)
        return;
    ex->retry_reserved = false;
    rm_retry_budget_release(rm_retry_budget_for(ex->svc->key));
}

void rm_attempt_note_request(rm_exchange_t *ex)
{
    if (ex->svc != NULL)
        rm_retry_budget_note_request(rm_retry_budget_for(ex->svc->key),
                                     (int64_t)ev_now(ex->session->worker->loop));
}

/* How many of a version's endpoints this worker has ejected now. */
static size_t ejected_count(rm_worker_t *w, const rm_version_t *v)
{
    size_t n = 0;
    for (size_t i = 0; i < v->nendpoints; i++) {
        rm_upstream_t *u = rm_upstream_find(w, v->endpoints[i].key);
        if (u != NULL && rm_outlier_is_ejected(&u->outlier, ev_now(w->loop)))
            n++;
    }
    return n;
}

void rm_attempt_record_outcome(rm_exchange_t *ex, rm_outlier_result_t result)
{
    rm_upstream_t *u = ex->upstream;
    if (u == NULL || ex->svc == NULL || !u->from_snapshot)
        return; /* only mesh endpoints; the local app and passthrough are not ours to eject */
    rm_worker_t *w = ex->session->worker;
    const rm_version_t *v = ex->decision.version_index < ex->svc->nversions
                                ? &ex->svc->versions[ex->decision.version_index]
                                : NULL;
    const rm_circuit_breaker_t *cb = v != NULL && v->cb != NULL ? v->cb : ex->svc->cb;
    bool may_eject = result != RM_OUTLIER_SUCCESS && cb != NULL && v != NULL &&
                     rm_outlier_may_eject(v->nendpoints, ejected_count(w, v), cb);
    double secs = rm_outlier_record(&u->outlier, cb, result, ev_now(w->loop), may_eject);
    if (secs <= 0)
        return;
    rm_upstream_close_idle(w, u);
    rm_metrics_ejection(w, ex->service_name, ex->version_name, u->address);
    rm_log_info("outlier: ejected %s (%s/%s) for %.1fs", u->address, ex->service_name,
                ex->version_name, secs);
}
