/* controlplane/core/admin.c — dispatch of the Admin methods, and the ones that only read the
 * live state: ProxyStatus, Stats, WaitForAck (plus the waiting half of Apply).
 *
 * Waiting replies are completed by appending fields to the already packed response: protobuf's
 * encoding makes a concatenation of two encoded messages of one type equal to their merge, so
 * the ACK list (ApplyResponse field 4, WaitForAckResponse field 1) and the timeout flag can be
 * added without keeping the unpacked response alive while the call is parked.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log/log.h"
#include "controlplane/core/core-int.h"

static const char *const method_paths[RM_ADMIN_METHOD_COUNT] = {
    "/remora.v1.Admin/Apply",       "/remora.v1.Admin/Get",        "/remora.v1.Admin/Delete",
    "/remora.v1.Admin/History",     "/remora.v1.Admin/Rollback",   "/remora.v1.Admin/Stats",
    "/remora.v1.Admin/ProxyStatus", "/remora.v1.Admin/WaitForAck",
};

static const ProtobufCMessageDescriptor *const request_types[RM_ADMIN_METHOD_COUNT] = {
    &remora__v1__apply_request__descriptor,        &remora__v1__get_request__descriptor,
    &remora__v1__delete_request__descriptor,       &remora__v1__history_request__descriptor,
    &remora__v1__rollback_request__descriptor,     &remora__v1__stats_request__descriptor,
    &remora__v1__proxy_status_request__descriptor, &remora__v1__wait_for_ack_request__descriptor,
};

const char *rm_admin_method_path(rm_admin_method_t m)
{
    return (unsigned)m < RM_ADMIN_METHOD_COUNT ? method_paths[m] : "";
}

void rm__reply_status(rm_admin_reply_t *reply, rm_status_t code, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    rm__reply_status_take(reply, code, s != NULL ? s : rm_xstrdup("error"));
}

void rm__reply_status_take(rm_admin_reply_t *reply, rm_status_t code, char *details)
{
    reply->code = code;
    free(reply->details);
    reply->details = details;
    free(reply->body);
    reply->body = NULL;
    reply->len = 0;
    reply->wait = 0;
}

void rm__reply_body(rm_admin_reply_t *reply, const ProtobufCMessage *msg)
{
    free(reply->body);
    reply->code = RM_STATUS_OK;
    reply->body = rm_pb_pack(msg, &reply->len);
}

uint64_t rm__wait_ms(const Remora__V1__Duration *d)
{
    if (d == NULL || !d->has_millis || d->millis == 0)
        return RM_ADMIN_DEFAULT_WAIT_MS;
    return d->millis > RM_ADMIN_MAX_WAIT_MS ? RM_ADMIN_MAX_WAIT_MS : d->millis;
}

void rm_admin_reply_free(rm_admin_reply_t *reply)
{
    free(reply->details);
    free(reply->body);
    memset(reply, 0, sizeof(*reply));
}

/* ---- the live state ---- */

/* Every connected, identified sidecar as a SidecarAck, state relative to `version`. The array
 * and every entry are malloc'd (free each with free_unpacked, then the array). */
static Remora__V1__SidecarAck **sidecar_acks(const rm_control_t *c, uint64_t version,
                                             uint64_t now_ms, size_t *n)
{
    size_t count = 0;
    for (const rm_sidecar_t *sc = c->registry.head; sc != NULL; sc = sc->next)
        count += sc->connected && sc->hello;
    Remora__V1__SidecarAck **out = rm_xcalloc_ptrs(count);
    uint64_t wall = rm_wall_ms();
    *n = 0;
    for (const rm_sidecar_t *sc = c->registry.head; sc != NULL; sc = sc->next) {
        if (!sc->connected || !sc->hello)
            continue;
        Remora__V1__SidecarAck *a = rm_xmalloc(sizeof(*a));
        remora__v1__sidecar_ack__init(a);
        a->pod = rm_xstrdup(sc->pod);
        a->namespace_ = rm_xstrdup(sc->namespace_);
        a->service = rm_xstrdup(sc->service);
        a->version = rm_xstrdup(sc->version);
        a->config_version = sc->config_version;
        a->state = rm_xstrdup(rm_sidecar_state_name(rm_sidecar_state(sc, version)));
        a->error = rm_xstrdup(sc->nacked && sc->error != NULL ? sc->error : "");
        a->scope = rm_xstrdup(rm_control_sidecar_scope(sc));
        /* last seen on the wall clock: now minus how long ago, on the monotonic clock */
        uint64_t ago = now_ms > sc->last_seen_ms ? now_ms - sc->last_seen_ms : 0;
        a->last_seen_ms = wall > ago ? wall - ago : 0;
        out[(*n)++] = a;
    }
    return out;
}

static void acks_free(Remora__V1__SidecarAck **acks, size_t n)
{
    for (size_t i = 0; i < n; i++)
        remora__v1__sidecar_ack__free_unpacked(acks[i], NULL);
    free(acks);
}

static void proxy_status(rm_control_t *c, uint64_t now_ms, rm_admin_reply_t *reply)
{
    Remora__V1__ProxyStatusResponse resp = REMORA__V1__PROXY_STATUS_RESPONSE__INIT;
    resp.current_version = c->version;
    resp.sidecars = sidecar_acks(c, c->version, now_ms, &resp.n_sidecars);
    rm__reply_body(reply, &resp.base);
    acks_free(resp.sidecars, resp.n_sidecars);
}

static void stats(rm_control_t *c, const Remora__V1__StatsRequest *req, uint64_t now_ms,
                  rm_admin_reply_t *reply)
{
    size_t n = 0;
    rm_statsagg_history_t **hs = rm_xcalloc_ptrs(c->registry.count);
    for (rm_sidecar_t *sc = c->registry.head; sc != NULL; sc = sc->next)
        hs[n++] = sc->stats;
    rm_statsagg_query_t q = {
        .service = req->service,
        .ns = req->namespace_,
        .route = req->route,
        .window_ms = req->window != NULL && req->window->has_millis ? req->window->millis : 0,
        .now_ms = now_ms,
        .config = c->config,
    };
    Remora__V1__StatsResponse *resp = rm_xmalloc(sizeof(*resp));
    remora__v1__stats_response__init(resp);
    rm_statsagg_compute(hs, n, &q, resp);
    rm__reply_body(reply, &resp->base);
    remora__v1__stats_response__free_unpacked(resp, NULL);
    free(hs);
}

void rm_admin_wait_count(rm_control_t *c, int delta)
{
    if (delta < 0 && c->waiters > 0)
        c->waiters--;
    else if (delta > 0)
        c->waiters++;
}

int rm__wait_refused(rm_control_t *c, uint64_t now_ms, const char *what, rm_admin_reply_t *reply)
{
    if (c->waiters < c->opt.max_waiters)
        return 0;
    char msg[300];
    rm__reply_status(reply, RM_STATUS_RESOURCE_EXHAUSTED, "%s%s",
                     rm_control_cap_message(c, RM_CAP_WAITERS, msg, sizeof(msg)), what);
    rm__cap_refused(c, RM_CAP_WAITERS, now_ms);
    return 1;
}

static void wait_for_ack(rm_control_t *c, const Remora__V1__WaitForAckRequest *req, uint64_t now_ms,
                         rm_admin_reply_t *reply)
{
    uint64_t v = req->version ? req->version : c->version;
    if (v > c->version) {
        rm__reply_status(reply, RM_STATUS_FAILED_PRECONDITION,
                         "version %llu does not exist yet (current is %llu)", (unsigned long long)v,
                         (unsigned long long)c->version);
        return;
    }
    if (rm__wait_refused(c, now_ms, "", reply))
        return;
    Remora__V1__WaitForAckResponse resp = REMORA__V1__WAIT_FOR_ACK_RESPONSE__INIT;
    rm__reply_body(reply, &resp.base);
    reply->wait = 1;
    reply->wait_version = v;
    reply->wait_deadline_ms = now_ms + rm__wait_ms(req->timeout);
}

void rm_admin_handle(rm_control_t *c, rm_admin_method_t m, const uint8_t *data, size_t len,
                     uint64_t now_ms, rm_admin_reply_t *reply)
{
    memset(reply, 0, sizeof(*reply));
    if ((unsigned)m >= RM_ADMIN_METHOD_COUNT) {
        rm__reply_status(reply, RM_STATUS_UNIMPLEMENTED, "unknown method");
        return;
    }
    if (len > RM_CP_MAX_MESSAGE) {
        rm__reply_status(reply, RM_STATUS_RESOURCE_EXHAUSTED, "request larger than 4 MiB");
        return;
    }
    ProtobufCMessage *req = protobuf_c_message_unpack(request_types[m], NULL, len, data);
    if (req == NULL) {
        rm__reply_status(reply, RM_STATUS_INVALID_ARGUMENT,
                         "malformed %s request: the bytes are not a valid %s message",
                         method_paths[m] + strlen("/remora.v1.Admin/"), request_types[m]->name);
        return;
    }
    switch (m) {
    case RM_ADMIN_APPLY:
        rm__admin_apply(c, (const Remora__V1__ApplyRequest *)req, now_ms, reply);
        break;
    case RM_ADMIN_GET:
        rm__admin_get(c, (const Remora__V1__GetRequest *)req, reply);
        break;
    case RM_ADMIN_DELETE:
        rm__admin_delete(c, (const Remora__V1__DeleteRequest *)req, now_ms, reply);
        break;
    case RM_ADMIN_HISTORY:
        rm__admin_history(c, (const Remora__V1__HistoryRequest *)req, reply);
        break;
    case RM_ADMIN_ROLLBACK:
        rm__admin_rollback(c, (const Remora__V1__RollbackRequest *)req, now_ms, reply);
        break;
    case RM_ADMIN_STATS:
        stats(c, (const Remora__V1__StatsRequest *)req, now_ms, reply);
        break;
    case RM_ADMIN_PROXY_STATUS:
        proxy_status(c, now_ms, reply);
        break;
    case RM_ADMIN_WAIT_FOR_ACK:
        wait_for_ack(c, (const Remora__V1__WaitForAckRequest *)req, now_ms, reply);
        break;
    default:
        break;
    }
    protobuf_c_message_free_unpacked(req, NULL);
}

int rm_admin_wait_ready(const rm_control_t *c, const rm_admin_reply_t *reply)
{
    for (const rm_sidecar_t *sc = c->registry.head; sc != NULL; sc = sc->next)
        if (sc->connected && sc->hello && !rm_sidecar_answered(sc, reply->wait_version))
            return 0;
    return 1;
}

void rm_admin_wait_finish(rm_control_t *c, rm_admin_method_t m, rm_admin_reply_t *reply,
                          int timed_out, uint64_t now_ms)
{
    size_t n = 0, extra_len = 0;
    Remora__V1__SidecarAck **acks = sidecar_acks(c, reply->wait_version, now_ms, &n);
    uint8_t *extra;
    if (m == RM_ADMIN_APPLY) {
        Remora__V1__ApplyResponse tail = REMORA__V1__APPLY_RESPONSE__INIT;
        tail.n_acks = n;
        tail.acks = acks;
        tail.wait_timed_out = timed_out;
        extra = rm_pb_pack(&tail.base, &extra_len);
    } else {
        Remora__V1__WaitForAckResponse tail = REMORA__V1__WAIT_FOR_ACK_RESPONSE__INIT;
        tail.n_acks = n;
        tail.acks = acks;
        tail.timed_out = timed_out;
        extra = rm_pb_pack(&tail.base, &extra_len);
    }
    reply->body = rm_xrealloc(reply->body, reply->len + extra_len);
    memcpy(reply->body + reply->len, extra, extra_len);
    reply->len += extra_len;
    reply->wait = 0;
    free(extra);
    acks_free(acks, n);
    if (timed_out)
        rm_log_info("wait for version %llu timed out", (unsigned long long)reply->wait_version);
}
