/* tests/fuzz/snapshot/snapshot_fuzz.c — libFuzzer driver for rm_snapshot_build.
 *
 * Input: a packed remora.v1.Snapshot (discovery.proto), as a sidecar receives it. Inputs that
 * protobuf-c cannot unpack are skipped. The config has NOT been validated here, which is the
 * point: the build must reject or accept anything without crashing or leaking, and whatever it
 * accepts must be internally consistent. Checked invariants: service indexes and name lookups
 * agree, every service answers to name.ns, vips resolve, every rule's weights add up, and a
 * decision plus an endpoint pick on an empty request are well-formed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/route/route.h"
#include "dataplane/snapshot/snapshot.h"
#include "remora/v1/discovery.pb-c.h"

static void check_service(const rm_snapshot_t *s, const rm_service_t *svc, size_t i)
{
    if (svc == NULL || svc->index != i)
        abort();
    if (rm_snapshot_service_by_name(s, svc->namespace_, svc->name) != svc)
        abort();
    char host[512];
    size_t n = (size_t)snprintf(host, sizeof(host), "%s.%s", svc->name, svc->namespace_);
    if (n < sizeof(host) && strchr(host, ':') == NULL && strchr(host, '[') == NULL &&
        rm_snapshot_service_by_host(s, host, n) == NULL)
        abort();
    if (svc->vip != NULL &&
        rm_snapshot_service_by_addr(s, (const struct sockaddr *)&svc->vip_addr) != svc)
        abort();
    for (size_t r = 0; r <= svc->nrules; r++) {
        const rm_rule_t *rule = r < svc->nrules ? &svc->rules[r] : svc->default_rule;
        if (rule->index != r || rule->retry == NULL)
            abort();
        uint64_t sum = 0;
        for (size_t v = 0; v < svc->nversions; v++)
            sum += rm_route_version_weight(rule, v);
        if (sum != rule->weight_sum)
            abort();
    }
    size_t total = 0;
    for (size_t v = 0; v < svc->nversions; v++)
        total += svc->versions[v].nendpoints;
    if (total != svc->nendpoints)
        abort();

    rm_request_view_t req;
    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.method_len = 3;
    req.path = "/";
    req.path_len = 1;
    rm_route_decision_t d;
    int rc = rm_route_decide(svc, &req, 0x12345678u * (i + 1), &d);
    if (rc != 0 && rc != RM_ROUTE_NO_RULE && rc != RM_ROUTE_NO_VERSION)
        abort();
    if (d.rule == NULL || (rc != RM_ROUTE_NO_VERSION && d.version_index >= svc->nversions))
        abort();
    if (d.version_index != SIZE_MAX) {
        const rm_endpoint_ref_t *ep = NULL;
        int prc = rm_route_pick_endpoint(svc, d.version_index, 99, NULL, NULL, NULL, 0, &ep);
        if ((prc == 0) != (rc != RM_ROUTE_NO_VERSION) || (prc == 0 && ep->draining))
            abort();
    }
}

/* The fuzz config builds UBSan in recover mode, where a finding only prints; make it fatal so
 * libFuzzer saves the input and the run fails. */
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
    return "halt_on_error=1:print_stacktrace=1";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Remora__V1__Snapshot *m = remora__v1__snapshot__unpack(NULL, size, data);
    if (m == NULL)
        return 0;
    char err[256];
    rm_snapshot_t *s = rm_snapshot_build(m->config, m->endpoints, m->n_endpoints, "default",
                                         m->version, err, sizeof(err));
    if (s != NULL) {
        for (size_t i = 0; i < rm_snapshot_service_count(s); i++)
            check_service(s, rm_snapshot_service_at(s, i), i);
        size_t len;
        if (rm_snapshot_packed(s, &len) == NULL || rm_snapshot_version(s) != m->version)
            abort();
        rm_snapshot_unref(s);
    } else if (err[0] == '\0') {
        abort(); /* a failure always says why */
    }
    remora__v1__snapshot__free_unpacked(m, NULL);
    return 0;
}
