/* controlplane/core/discovery.c — what each message on a discovery stream does: Hello identifies
 * the sidecar (and registers its endpoint), ACK/NACK record its answer to a snapshot, an endpoint
 * WITHDRAW marks it draining and pushes at once, a stats report is digested for `meshctl stats`.
 * The stream is ended with INVALID_ARGUMENT on malformed protobuf, on anything before Hello, and
 * on a bad or repeated Hello; the message names what was wrong. Caps (control.h): a stream past
 * max_streams is refused before it is a registry entry, and a Hello (or REGISTER) that would add
 * a scope past max_scopes or an endpoint past max_registrations ends its stream with
 * RESOURCE_EXHAUSTED; nothing of it is kept.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/log/log.h"
#include "controlplane/core/core-int.h"
#include "remora/v1/discovery.pb-c.h"

static int fail(rm_disc_result_t *res, rm_status_t code, const char *msg)
{
    res->code = code;
    snprintf(res->message, sizeof(res->message), "%s", msg);
    return -1;
}

rm_sidecar_t *rm_discovery_open(rm_control_t *c, uint64_t now_ms)
{
    if (c->registry.connected >= c->opt.max_streams) {
        rm__cap_refused(c, RM_CAP_STREAMS, now_ms);
        return NULL;
    }
    return rm_registry_connect(&c->registry, now_ms);
}

/* Ends the stream with RESOURCE_EXHAUSTED for `cap`, counted. */
static int refuse(rm_control_t *c, rm_cap_t cap, uint64_t now_ms, rm_disc_result_t *res)
{
    rm_control_cap_message(c, cap, res->message, sizeof(res->message));
    rm__cap_refused(c, cap, now_ms);
    res->code = RM_STATUS_RESOURCE_EXHAUSTED;
    return -1;
}

static int on_hello(rm_control_t *c, rm_sidecar_t *sc, const Remora__V1__Hello *h, uint64_t now_ms,
                    rm_disc_result_t *res)
{
    char err[sizeof(res->message)];
    if (sc->hello)
        return fail(res, RM_STATUS_INVALID_ARGUMENT, "Hello sent twice on one stream");
    /* The scope first, so a bad egress list ends the stream before its endpoint is listed. Bare
     * names are in the sidecar's namespace, defaulted as the registry does. */
    const Remora__V1__Node *n = h->node;
    const char *ns =
        n != NULL && n->namespace_ != NULL && *n->namespace_ ? n->namespace_ : "default";
    rm_status_t code = RM_STATUS_INVALID_ARGUMENT;
    rm_scope_t *scope = rm__scope_acquire(c, n != NULL ? n->egress : NULL,
                                          n != NULL ? n->n_egress : 0, ns, &code, err, sizeof(err));
    if (scope == NULL && code == RM_STATUS_RESOURCE_EXHAUSTED)
        return refuse(c, RM_CAP_SCOPES, now_ms, res);
    if (scope == NULL)
        return fail(res, code, err);
    int rc = rm_registry_hello(&c->registry, sc, h, c->version, now_ms, err, sizeof(err));
    if (rc < 0) {
        rm__scope_release(c, scope);
        if (rc == -ENOSPC)
            return refuse(c, RM_CAP_REGISTRATIONS, now_ms, res);
        return fail(res, RM_STATUS_INVALID_ARGUMENT, err);
    }
    sc->scope = scope;
    if (rc > 0)
        rm_control_changed(c, now_ms, 0);
    rm_log_info("sidecar %s/%s connected (service \"%s\" version \"%s\"%s%s, serves config %llu, "
                "receives %.200s)",
                sc->namespace_, *sc->pod ? sc->pod : "(no pod)", sc->service, sc->version,
                sc->has_endpoint ? " at " : "", sc->has_endpoint ? sc->address : "",
                (unsigned long long)sc->config_version, rm_control_sidecar_scope(sc));
    res->send_now = 1;
    /* A new sidecar joins the set WaitForAck is waiting on. */
    c->answers_changed = 1;
    return 0;
}

static int on_endpoint(rm_control_t *c, rm_sidecar_t *sc, const Remora__V1__EndpointChange *e,
                       uint64_t now_ms, rm_disc_result_t *res)
{
    if (e->kind == REMORA__V1__ENDPOINT_CHANGE__KIND__WITHDRAW) {
        if (rm_registry_withdraw(sc, now_ms)) {
            rm_log_info("sidecar %s/%s withdrew %s: draining", sc->namespace_, sc->pod,
                        sc->address);
            rm_control_changed(c, now_ms, 1);
        }
        return 0;
    }
    if (e->kind != REMORA__V1__ENDPOINT_CHANGE__KIND__REGISTER)
        return fail(res, RM_STATUS_INVALID_ARGUMENT, "EndpointChange: unknown kind");
    /* REGISTER undoes a withdraw (a drain that was called off); it needs the identity from
     * Hello, since the message itself carries none. */
    if (*sc->service == '\0' || *sc->address == '\0')
        return fail(res, RM_STATUS_INVALID_ARGUMENT,
                    "EndpointChange REGISTER needs node.service and node.address in Hello");
    sc->last_seen_ms = now_ms;
    if (!sc->has_endpoint && rm_registry_full(&c->registry))
        return refuse(c, RM_CAP_REGISTRATIONS, now_ms, res);
    if (!sc->has_endpoint || sc->draining) {
        rm_log_info("sidecar %s/%s registered %s%s", sc->namespace_, sc->pod, sc->address,
                    sc->draining ? ": drain called off" : ": its app answers");
        sc->has_endpoint = 1;
        sc->draining = 0;
        rm_control_changed(c, now_ms, 0);
    }
    return 0;
}

int rm_discovery_handle(rm_control_t *c, rm_sidecar_t *sc, const uint8_t *data, size_t len,
                        uint64_t now_ms, rm_disc_result_t *res)
{
    memset(res, 0, sizeof(*res));
    if (len > RM_CP_MAX_MESSAGE)
        return fail(res, RM_STATUS_RESOURCE_EXHAUSTED, "DiscoveryRequest larger than 4 MiB");
    Remora__V1__DiscoveryRequest *req = remora__v1__discovery_request__unpack(NULL, len, data);
    if (req == NULL)
        return fail(res, RM_STATUS_INVALID_ARGUMENT,
                    "malformed DiscoveryRequest: the bytes are not a valid protobuf message");
    int rc = 0;
    if (req->msg_case == REMORA__V1__DISCOVERY_REQUEST__MSG__NOT_SET) {
        rc = fail(res, RM_STATUS_INVALID_ARGUMENT,
                  "empty DiscoveryRequest: set one of hello, ack, nack, endpoint, stats");
        goto out;
    }
    if (!sc->hello && req->msg_case != REMORA__V1__DISCOVERY_REQUEST__MSG_HELLO) {
        rc = fail(res, RM_STATUS_INVALID_ARGUMENT,
                  "the first message on a discovery stream must be Hello");
        goto out;
    }
    switch (req->msg_case) {
    case REMORA__V1__DISCOVERY_REQUEST__MSG_HELLO:
        rc = on_hello(c, sc, req->hello, now_ms, res);
        break;
    case REMORA__V1__DISCOVERY_REQUEST__MSG_ACK:
        if (rm_registry_ack(sc, req->ack->nonce, now_ms) < 0)
            rm_log_debug("sidecar %s/%s acked unknown nonce \"%.64s\": ignored", sc->namespace_,
                         sc->pod, req->ack->nonce);
        else
            c->answers_changed = 1;
        break;
    case REMORA__V1__DISCOVERY_REQUEST__MSG_NACK:
        if (rm_registry_nack(sc, req->nack->version, req->nack->nonce, req->nack->error, now_ms) <
            0) {
            rm_log_debug("sidecar %s/%s nacked unknown nonce \"%.64s\": ignored", sc->namespace_,
                         sc->pod, req->nack->nonce);
        } else {
            c->answers_changed = 1;
            rm_log_warn("sidecar %s/%s rejected config %llu (keeps %llu): %.300s", sc->namespace_,
                        sc->pod, (unsigned long long)sc->nacked_version,
                        (unsigned long long)sc->config_version, sc->error);
        }
        break;
    case REMORA__V1__DISCOVERY_REQUEST__MSG_ENDPOINT:
        rc = on_endpoint(c, sc, req->endpoint, now_ms, res);
        break;
    case REMORA__V1__DISCOVERY_REQUEST__MSG_STATS:
        sc->last_seen_ms = now_ms;
        rm_statsagg_record(&sc->stats, req->stats, sc->namespace_, now_ms);
        break;
    default:
        rc = fail(res, RM_STATUS_INVALID_ARGUMENT, "DiscoveryRequest: unknown message");
        break;
    }
out:
    remora__v1__discovery_request__free_unpacked(req, NULL);
    return rc;
}

void rm_discovery_sent(rm_control_t *c, rm_sidecar_t *sc, const rm_scope_snapshot_t *snap)
{
    (void)c;
    rm_registry_sent(sc, snap->version, snap->nonce);
}

void rm_discovery_close(rm_control_t *c, rm_sidecar_t *sc, uint64_t now_ms)
{
    if (sc->hello)
        rm_log_info("sidecar %s/%s disconnected%s", sc->namespace_, sc->pod,
                    sc->has_endpoint && c->opt.grace_ms > 0 ? "; endpoint kept for the grace" : "");
    c->answers_changed = 1;
    rm__scope_release(c, sc->scope);
    sc->scope = NULL;
    if (rm_registry_disconnect(&c->registry, sc, now_ms, c->opt.grace_ms))
        rm_control_changed(c, now_ms, 0);
}
