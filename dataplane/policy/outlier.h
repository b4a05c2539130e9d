/* dataplane/policy/outlier.h — outlier detection: endpoints that keep failing are ejected.
 *
 * Per endpoint (per worker): consecutive 5xx responses and consecutive gateway errors (connect
 * failure, reset, timeout, 502/503/504) are counted; a success resets both. Past the
 * CircuitBreaker's threshold the endpoint is ejected for baseEjectionTime times the number of
 * times it was ejected, and is picked again when that time is up. At most maxEjectionPercent of a
 * version's endpoints are ejected at once — but at least one may be, when the version has more
 * than one endpoint, so a small version is not left without protection.
 *
 * Pure: the caller gives the clock and how many of the version's endpoints are ejected now.
 */
#ifndef REMORA_DATAPLANE_POLICY_OUTLIER_H
#define REMORA_DATAPLANE_POLICY_OUTLIER_H

#include <stdbool.h>
#include <stddef.h>

#include "dataplane/snapshot/snapshot.h"

typedef enum rm_outlier_result {
    RM_OUTLIER_SUCCESS = 0,
    RM_OUTLIER_5XX,           /* 500, 501, 505+ */
    RM_OUTLIER_GATEWAY_ERROR, /* connect failure, reset, timeout, 502-504 */
} rm_outlier_result_t;

/* One endpoint's record, embedded in its runtime state. Zero-initialised: healthy. */
typedef struct rm_outlier_state {
    int consecutive_5xx;
    int consecutive_gateway;
    double ejected_until; /* on the caller's clock; 0: never ejected */
    int ejections;        /* times ejected so far: the next ejection lasts this many base times */
} rm_outlier_state_t;

/* Classifies a response status. */
rm_outlier_result_t rm_outlier_classify(int status);

static inline bool rm_outlier_is_ejected(const rm_outlier_state_t *st, double now)
{
    return st->ejected_until > now;
}

/* Whether one more of a version's nendpoints endpoints may be ejected while `ejected` are. */
bool rm_outlier_may_eject(size_t nendpoints, size_t ejected, const rm_circuit_breaker_t *cb);

/* Records one outcome under cb (NULL: no outlier detection, nothing counted but the reset on
 * success). may_eject: rm_outlier_may_eject for the endpoint's version now. Returns the length
 * of the ejection in seconds when this outcome ejects the endpoint, else 0. */
double rm_outlier_record(rm_outlier_state_t *st, const rm_circuit_breaker_t *cb,
                         rm_outlier_result_t result, double now, bool may_eject);

#endif
