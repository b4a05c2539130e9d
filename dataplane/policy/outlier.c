/* dataplane/policy/outlier.c — consecutive-error ejection (see outlier.h). */
#include "dataplane/policy/outlier.h"

rm_outlier_result_t rm_outlier_classify(int status)
{
    if (status >= 502 && status <= 504)
        return RM_OUTLIER_GATEWAY_ERROR;
    if (status >= 500)
        return RM_OUTLIER_5XX;
    return RM_OUTLIER_SUCCESS;
}

bool rm_outlier_may_eject(size_t nendpoints, size_t ejected, const rm_circuit_breaker_t *cb)
{
    if (nendpoints < 2)
        return false; /* ejecting the only endpoint would only turn errors into 503s */
    size_t allowed = nendpoints * cb->max_ejection_percent / 100;
    if (allowed < 1)
        allowed = 1;
    return ejected < allowed;
}

double rm_outlier_record(rm_outlier_state_t *st, const rm_circuit_breaker_t *cb,
                         rm_outlier_result_t result, double now, bool may_eject)
{
    if (result == RM_OUTLIER_SUCCESS) {
        st->consecutive_5xx = 0;
        st->consecutive_gateway = 0;
        return 0;
    }
    if (cb == NULL)
        return 0;
    /* A gateway error is also a 5xx-class failure, as in Envoy. */
    st->consecutive_5xx++;
    if (result == RM_OUTLIER_GATEWAY_ERROR)
        st->consecutive_gateway++;
    bool trip = (cb->consecutive_5xx > 0 && st->consecutive_5xx >= (int)cb->consecutive_5xx) ||
                (cb->consecutive_gateway_errors > 0 &&
                 st->consecutive_gateway >= (int)cb->consecutive_gateway_errors);
    if (!trip || rm_outlier_is_ejected(st, now) || !may_eject)
        return 0;
    st->ejections++;
    double secs = (double)cb->base_ejection_time_ms / 1000.0 * st->ejections;
    st->ejected_until = now + secs;
    st->consecutive_5xx = 0;
    st->consecutive_gateway = 0;
    return secs;
}
