/* dataplane/proxy/outlier.c — consecutive-error ejection (see outlier.h). */
#include "dataplane/proxy/outlier.h"

#include "common/log/log.h"
#include "dataplane/proxy/metrics.h"
#include "dataplane/proxy/upstream.h"

rm_outlier_result_t rm_outlier_classify(int status)
{
    if (status >= 502 && status <= 504)
        return RM_OUTLIER_GATEWAY_ERROR;
    if (status >= 500)
        return RM_OUTLIER_5XX;
    return RM_OUTLIER_SUCCESS;
}

static bool may_eject(rm_worker_t *w, const rm_version_t *v, const rm_circuit_breaker_t *cb)
{
    if (v == NULL || v->nendpoints < 2)
        return false; /* ejecting the only endpoint would only turn errors into 503s */
    size_t ejected = 0;
    for (size_t i = 0; i < v->nendpoints; i++) {
        rm_upstream_t *u = rm_upstream_find(w, v->endpoints[i].key);
        if (u != NULL && u->ejected_until > ev_now(w->loop))
            ejected++;
    }
    size_t allowed = v->nendpoints * cb->max_ejection_percent / 100;
    if (allowed < 1)
        allowed = 1;
    return ejected < allowed;
}

void rm_outlier_record(rm_exchange_t *ex, rm_outlier_result_t result)
{
    rm_upstream_t *u = ex->upstream;
    if (u == NULL || ex->svc == NULL || !u->from_snapshot)
        return; /* only mesh endpoints; the local app and passthrough are not ours to eject */
    if (result == RM_OUTLIER_SUCCESS) {
        u->consecutive_5xx = 0;
        u->consecutive_gateway = 0;
        return;
    }
    const rm_version_t *v = ex->decision.version_index < ex->svc->nversions
                                ? &ex->svc->versions[ex->decision.version_index]
                                : NULL;
    const rm_circuit_breaker_t *cb = v != NULL && v->cb != NULL ? v->cb : ex->svc->cb;
    if (cb == NULL)
        return;
    /* A gateway error is also a 5xx-class failure, as in Envoy. */
    u->consecutive_5xx++;
    if (result == RM_OUTLIER_GATEWAY_ERROR)
        u->consecutive_gateway++;
    bool trip = (cb->consecutive_5xx > 0 && u->consecutive_5xx >= (int)cb->consecutive_5xx) ||
                (cb->consecutive_gateway_errors > 0 &&
                 u->consecutive_gateway >= (int)cb->consecutive_gateway_errors);
    rm_worker_t *w = ex->session->worker;
    if (!trip || u->ejected_until > ev_now(w->loop) || !may_eject(w, v, cb))
        return;
    u->ejections++;
    double secs = (double)cb->base_ejection_time_ms / 1000.0 * u->ejections;
    u->ejected_until = ev_now(w->loop) + secs;
    u->consecutive_5xx = 0;
    u->consecutive_gateway = 0;
    rm_upstream_close_idle(w, u);
    rm_metrics_ejection(w, ex->service_name, ex->version_name, u->address);
    rm_log_info("outlier: ejected %s (%s/%s) for %.1fs", u->address, ex->service_name,
                ex->version_name, secs);
}
