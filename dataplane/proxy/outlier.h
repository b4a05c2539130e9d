/* dataplane/proxy/outlier.h — outlier detection: endpoints that keep failing are ejected.
 *
 * Per worker, per endpoint: consecutive 5xx responses and consecutive gateway errors (connect
 * failure, reset, timeout, 502/503/504) are counted; a success resets both. Past the
 * CircuitBreaker's threshold the endpoint is ejected for baseEjectionTime times the number of
 * times it was ejected, and is picked again when that time is up. At most maxEjectionPercent of a
 * version's endpoints are ejected at once — but at least one may be, when the version has more
 * than one endpoint, so a small version is not left without protection.
 */
#ifndef RM_PROXY_OUTLIER_H
#define RM_PROXY_OUTLIER_H

#include "dataplane/proxy/proxy-t.h"

typedef enum rm_outlier_result {
    RM_OUTLIER_SUCCESS = 0,
    RM_OUTLIER_5XX,           /* 500, 501, 505+ */
    RM_OUTLIER_GATEWAY_ERROR, /* connect failure, reset, timeout, 502-504 */
} rm_outlier_result_t;

/* Records how the exchange's current attempt ended on ex->upstream. Loop thread. */
void rm_outlier_record(rm_exchange_t *ex, rm_outlier_result_t result);

/* Classifies a response status. */
rm_outlier_result_t rm_outlier_classify(int status);

#endif
