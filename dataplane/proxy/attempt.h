/* dataplane/proxy/attempt.h — what one upstream attempt's outcome means, in the exchange's terms:
 * the retry verdict (dataplane/policy/retry.h) with its stats, the endpoint's outlier record
 * (dataplane/policy/outlier.h) with the ejection it may cause, and the retry budget's request
 * count. The rules themselves live in dataplane/policy; this is the glue that feeds them the
 * exchange's facts and counts what they decide. Loop thread.
 */
#ifndef REMORA_DATAPLANE_PROXY_ATTEMPT_H
#define REMORA_DATAPLANE_PROXY_ATTEMPT_H

#include "dataplane/policy/outlier.h"
#include "dataplane/policy/retry.h"
#include "dataplane/proxy/proxy-t.h"

/* Decides about the attempt that just failed, counting the retry or the refusal with its
 * reason. When it says retry, the exchange holds a retry place (ex->retry_reserved) until
 * rm_attempt_retry_done. Inbound, passthrough and routes without a retry policy: never. */
rm_retry_verdict_t rm_attempt_retry_verdict(rm_exchange_t *ex, rm_retry_cause_t cause, int status);

/* The retry attempt ended (successfully or not): gives its place back. */
void rm_attempt_retry_done(rm_exchange_t *ex);

/* Counts the request for its service's retry budget (once per request). */
void rm_attempt_note_request(rm_exchange_t *ex);

/* Records how the current attempt ended on ex->upstream for outlier detection, ejecting the
 * endpoint (and closing its pooled connections) when it trips. Only mesh endpoints count. */
void rm_attempt_record_outcome(rm_exchange_t *ex, rm_outlier_result_t result);

#endif /* REMORA_DATAPLANE_PROXY_ATTEMPT_H */
