/* dataplane/snapshot/testutil.h — test-only builders of ConfigSet and ResolvedEndpoint structs.
 *
 * The route and snapshot tests describe configs in a few lines of C instead of YAML because the
 * YAML loader (//common/config) was still being written when these tests were; every builder
 * allocates the protobuf-c way (malloc + init, strdup'ed strings), so tu_set_free (protobuf-c's
 * free_unpacked) releases everything. Allocation failure aborts: test code only.
 */
#ifndef REMORA_DATAPLANE_SNAPSHOT_TESTUTIL_H
#define REMORA_DATAPLANE_SNAPSHOT_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "remora/v1/config.pb-c.h"
#include "remora/v1/discovery.pb-c.h"

/* Match kinds for tu_match_* (value ignored for PRESENT/ABSENT). */
enum { TU_EXACT = 1, TU_PREFIX, TU_SUFFIX, TU_REGEX, TU_PRESENT, TU_ABSENT };

Remora__V1__ConfigSet *tu_set_new(void);
void tu_set_free(Remora__V1__ConfigSet *set);

/* ns NULL leaves the namespace unset ("default"); port 0 leaves it unset. */
Remora__V1__Service *tu_service(Remora__V1__ConfigSet *set, const char *name, const char *ns,
                                uint32_t port);
void tu_service_host(Remora__V1__Service *svc, const char *host);
void tu_service_vip(Remora__V1__Service *svc, const char *vip);
/* Returns the endpoint, for fields no argument sets (sidecar: has_sidecar and sidecar). */
Remora__V1__Endpoint *tu_service_endpoint(Remora__V1__Service *svc, const char *address,
                                          const char *version);

Remora__V1__Route *tu_route(Remora__V1__ConfigSet *set, const char *name, const char *ns,
                            const char *service);
Remora__V1__Rule *tu_rule(Remora__V1__Route *route, const char *name);
/* weight < 0 leaves the weight unset. */
void tu_dest(Remora__V1__Rule *rule, const char *version, int64_t weight);
void tu_match_header(Remora__V1__Rule *rule, const char *name, int kind, const char *value);
void tu_match_cookie(Remora__V1__Rule *rule, const char *name, int kind, const char *value);
void tu_match_query(Remora__V1__Rule *rule, const char *name, int kind, const char *value);
/* kind: TU_EXACT, TU_PREFIX or TU_REGEX. */
void tu_match_path(Remora__V1__Rule *rule, int kind, const char *value);
void tu_match_method(Remora__V1__Rule *rule, const char *method);
void tu_sticky_header(Remora__V1__Rule *rule, const char *name);
void tu_sticky_cookie(Remora__V1__Rule *rule, const char *name);
/* version or service may be NULL; percent < 0 leaves it unset. */
void tu_mirror(Remora__V1__Rule *rule, const char *version, const char *service, int percent);
void tu_timeout(Remora__V1__Rule *rule, uint64_t ms);
Remora__V1__RetryPolicy *tu_retries(Remora__V1__Rule *rule, uint32_t attempts);
void tu_retry_on(Remora__V1__RetryPolicy *rp, const char *on);

Remora__V1__CircuitBreaker *tu_cb(Remora__V1__ConfigSet *set, const char *name, const char *service,
                                  const char *version, uint32_t max_requests);

/* A growable list of resolved endpoints. */
typedef struct tu_eps {
    Remora__V1__ResolvedEndpoint **v;
    size_t n;
} tu_eps_t;

void tu_eps_add(tu_eps_t *eps, const char *service, const char *ns, const char *version,
                const char *address, int draining);
/* A registered endpoint as the control plane sends it: pod set, sidecar true, not draining. */
void tu_eps_add_registered(tu_eps_t *eps, const char *service, const char *ns, const char *version,
                           const char *address, const char *pod);
void tu_eps_free(tu_eps_t *eps);

/* xorshift64* — a small seeded RNG for deterministic statistical tests. */
static inline uint64_t tu_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dULL;
}

#endif /* REMORA_DATAPLANE_SNAPSHOT_TESTUTIL_H */
