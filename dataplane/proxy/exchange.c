/* dataplane/proxy/exchange.c — forwarding one request and its response, whatever the protocol.
 *
 * Data flow:  downstream --(request body, decoded)--> upstream codec --> upstream connection
 *             upstream connection --> upstream codec --(response, decoded)--> downstream
 * The exchange sees neutral heads and body spans (dataplane/message); the downstream's codec
 * (ex->down->ops) and the upstream connection's (ex->conn->codec) frame them for the wire. Each
 * arrow moves only as much as the destination can take (its write_room); a full destination
 * stops reading from the source (back-pressure), and draining it resumes reading.
 */
#include "dataplane/proxy/exchange.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log/log.h"
#include "dataplane/message/message.h"
#include "dataplane/policy/limits.h"
#include "dataplane/proxy/access_log.h"
#include "dataplane/proxy/attempt.h"
#include "common/fmt.h"
#include "dataplane/proxy/list.h"
#include "dataplane/proxy/metrics.h"
#include "dataplane/proxy/routing.h"
#include "dataplane/proxy/shadow.h"
#include "dataplane/proxy/upstream.h"
#include "dataplane/proxy/worker_state.h"
#include "dataplane/transport/transport.h"

static void finish(rm_exchange_t *ex);
static void connect_upstream(rm_exchange_t *ex);
static void try_timer_cb(struct ev_loop *loop, ev_timer *t, int revents);
static bool attempt_failed(rm_exchange_t *ex, rm_retry_cause_t cause, int status);
static void pump_request_body(rm_exchange_t *ex);
static void pump_response(rm_exchange_t *ex);
static void on_upstream_error(rm_exchange_t *ex, rm_upstream_failure_t kind, int err);
static void on_upstream_io(void *owner, int revents);
static void on_upstream_connect_failed(void *owner, int err);
static bool wants_upstream_read(const void *owner);
static void note_sent(void *owner, size_t n);
static const char *may_connect(void *owner);

/* How the exchange's upstream connection reaches it (upstream.h). */
static const rm_upconn_owner_ops_t upstream_conn_ops = {
    .on_io = on_upstream_io,
    .on_connect_failed = on_upstream_connect_failed,
    .wants_read = wants_upstream_read,
    .on_sent = note_sent,
    .may_connect = may_connect,
};

#define LIT(s) ((rm_span_t){s, sizeof(s) - 1})

/*
 * The drain hand-off ("bounce"). From its drain on, a server sidecar's app may already be
 * closing (Kubernetes signals app and sidecar together), and a request forwarded to it can be
 * lost in ways no one can tell from processed ones (a connection reset in the app's accept
 * queue). So a draining sidecar does not forward what another sidecar sent it with
 * `x-remora-bounceable: 1`: it answers 503 `x-remora-error: draining`, and the caller's sidecar
 * sends the request to another endpoint — a redirect, not a retry (no retry policy, budget or
 * outlier count is involved), at most RM_MAX_BOUNCES times. The caller marks a request
 * bounceable only when it could send it elsewhere: its body is replayable and this attempt's
 * endpoint was not already tried (with no untried endpoint left, the draining pod is the last
 * resort and forwards as before). Only sidecars set or read these headers.
 */
#define BOUNCE_HEADER       "x-remora-bounceable"
#define PEER_ERROR_DRAINING "draining"
#define RM_MAX_BOUNCES      2

/* An inbound sidecar reports how its app failed, so the caller's sidecar can apply the retry
 * rules as if it had seen the failure itself: `upstream-connect` — the app could not be reached
 * (it exited during a rolling update, or has not started), so the request was never processed and
 * may be retried elsewhere whatever its method; `upstream-reset` — the app closed or reset the
 * connection before answering (typically a kept-alive connection the draining app was closing),
 * an ambiguous failure retried only when idempotent. Only sidecars set or read this header. */
#define PEER_ERROR_HEADER "x-remora-error"

/* The mesh's own headers (SPEC.md "Sidecar admin endpoints"): a serving sidecar removes every
 * one a caller sent and every one its app's response carries; a calling sidecar sends them, and
 * acts on them, only with an endpoint that is a Remora sidecar — never with a plain endpoint,
 * which could otherwise make it replay a POST by answering `x-remora-error: upstream-connect`. */
#define MESH_PREFIX        "x-remora-"
#define PEER_ERROR_CONNECT "upstream-connect"
#define PEER_ERROR_RESET   "upstream-reset"

/* A UUID v4 (the layout most tracing systems expect). `out` holds 37 bytes. */
_Static_assert(sizeof(((rm_exchange_t *)0)->request_id) >= 37, "a UUID and its NUL");
static void generate_request_id(rm_worker_t *w, char *out)
{
    uint64_t a = rm_worker_random(w), b = rm_worker_random(w);
    char *p = rm__fmt_hex(out, a >> 32, 8);
    *p++ = '-';
    p = rm__fmt_hex(p, a >> 16, 4);
    *p++ = '-';
    *p++ = '4';
    p = rm__fmt_hex(p, a, 3);
    *p++ = '-';
    p = rm__fmt_hex(p, ((b >> 48) & 0x3fff) | 0x8000, 4);
    *p++ = '-';
    p = rm__fmt_hex(p, b, 12);
    *p = '\0';
}

static void copy_span(char *dst, size_t n, rm_span_t s)
{
    size_t l = s.len < n - 1 ? s.len : n - 1;
    memcpy(dst, s.ptr, l);
    dst[l] = '\0';
}

/* x-forwarded-for as it goes upstream: the client's list (cut to fit) then this hop's peer. */
static void build_xff(rm_exchange_t *ex, const rm_request_head_t *head)
{
    const char *peer = ex->session->peer_ip;
    size_t peer_len = strlen(peer), len = 0;
    ssize_t i = rm_msg_field_find(head->fields, head->nfields, "x-forwarded-for", 15);
    if (i >= 0) {
        size_t room = sizeof(ex->xff) - peer_len - 3;
        len = head->fields[i].value.len < room ? head->fields[i].value.len : room;
        memcpy(ex->xff, head->fields[i].value.ptr, len);
        ex->xff[len++] = ',';
        ex->xff[len++] = ' ';
    }
    memcpy(ex->xff + len, peer, peer_len);
    ex->xff_len = len + peer_len;
}

/* Exchanges are per request and ~1.7 KiB: a worker keeps a few reaped ones instead of a
 * malloc/free pair per request. Returns a zeroed exchange or NULL. Worker thread only. */
static rm_exchange_t *exchange_alloc(rm_worker_t *w)
{
    if (rm_list_empty(&w->free_exchanges)) {
        rm_cache_level_missed(&w->free_exchanges_level);
        return calloc(1, sizeof(rm_exchange_t));
    }
    rm_exchange_t *ex = container_of(w->free_exchanges.next, rm_exchange_t, link);
    rm_list_remove(&ex->link);
    w->free_exchanges_level.count--;
    rm_cache_level_took(&w->free_exchanges_level);
    memset(ex, 0, offsetof(rm_exchange_t, xff)); /* the x-forwarded-for bytes are written first */
    return ex;
}

void rm_exchange_recycle(rm_worker_t *w, rm_exchange_t *ex)
{
    if (w->free_exchanges_level.count >= RM_EXCHANGE_KEEP_MAX) {
        free(ex);
        return;
    }
    rm_list_push_front(&w->free_exchanges, &ex->link);
    w->free_exchanges_level.count++;
}

void rm_exchange_trim_recycled(rm_worker_t *w)
{
    rm_cache_level_t *l = &w->free_exchanges_level;
    for (int n = rm_cache_level_excess(l, RM_EXCHANGE_KEEP); n > 0; n--) {
        /* the list is LIFO: its tail is what went unused longest */
        rm_exchange_t *ex = container_of(w->free_exchanges.prev, rm_exchange_t, link);
        rm_list_remove(&ex->link);
        free(ex);
        l->count--;
    }
    rm_cache_level_trimmed(l);
}

void rm_exchange_free_recycled(rm_worker_t *w)
{
    while (!rm_list_empty(&w->free_exchanges)) {
        rm_exchange_t *ex = container_of(w->free_exchanges.next, rm_exchange_t, link);
        rm_list_remove(&ex->link);
        free(ex);
    }
    w->free_exchanges_level = (rm_cache_level_t){0};
}

rm_exchange_t *rm_exchange_new(rm_session_t *s, rm_downstream_t *down,
                               const rm_request_head_t *head)
{
    rm_worker_t *w = s->worker;
    rm_exchange_t *ex = exchange_alloc(w);
    if (ex == NULL)
        return NULL;
    ex->session = s;
    ex->down = down;
    rm_list_init(&ex->link);
    ex->start = ev_now(w->loop);
    ex->idempotent = rm_msg_method_idempotent(head->method) ||
                     rm_msg_field_find(head->fields, head->nfields, "idempotency-key", 15) >= 0;
    ex->req_done = !(head->flags & RM_MSG_F_BODY);
    ex->upgrade = (head->flags & RM_MSG_F_UPGRADE) != 0;
    /* Only a draining sidecar acts on it (see "bounce" above). */
    ex->peer_bounceable = s->kind == RM_LISTENER_INBOUND && w->draining &&
                          rm_msg_field_find(head->fields, head->nfields, BOUNCE_HEADER,
                                            sizeof(BOUNCE_HEADER) - 1) >= 0;
    rm_buf_init(&ex->req_store, w->proxy->opt.max_head_bytes + 4096);
    rm_buf_init(&ex->replay, w->proxy->opt.retry_body_limit);
    ev_timer_init(&ex->try_timer, try_timer_cb, 0, 0);

    /* The id for logs and shadows; an over-long client id is truncated here only (the
     * upstream request carries the client's header as it was). */
    ssize_t rid = rm_msg_field_find(head->fields, head->nfields, "x-request-id", 12);
    if (rid >= 0 && head->fields[rid].value.len > 0)
        copy_span(ex->request_id, sizeof(ex->request_id), head->fields[rid].value);
    else
        generate_request_id(w, ex->request_id);
    ex->add_request_id = rid < 0;
    build_xff(ex, head);

    if (w->snap != NULL) {
        rm_snapshot_ref(w->snap);
        ex->snap = w->snap;
    }
    /* The head outlives the connection's buffer (retries, shadows): the exchange keeps a copy,
     * and routes on it. */
    if (rm_msg_request_copy_into(&ex->req, ex->head_inline, sizeof(ex->head_inline), head) != 0 &&
        rm_msg_request_copy(&ex->req, &ex->req_store, head) != 0) {
        ex->local_status = 431;
        ex->local_reason = "request head too large to forward";
        return ex;
    }
    rm_routing_decide(ex);
    rm_attempt_note_request(ex);
    return ex;
}

/* Releases everything the exchange holds except its memory, and queues it for the reaper, so
 * code further up the call stack may still read ex->finished safely. */
static void retire(rm_exchange_t *ex)
{
    rm_worker_t *w = ex->session->worker;
    ex->finished = true;
    ev_timer_stop(w->loop, &ex->try_timer);
    rm_attempt_retry_done(ex);
    rm_limits_release(&ex->limits);
    rm_buf_free(&ex->replay);
    if (ex->conn != NULL) {
        rm_upconn_close(ex->conn);
        ex->conn = NULL;
    }
    if (ex->upstream != NULL) {
        ex->upstream->active--;
        ex->upstream = NULL;
    }
    rm_buf_free(&ex->req_store);
    if (ex->snap != NULL) {
        rm_snapshot_unref(ex->snap);
        ex->snap = NULL;
    }
    rm_list_push_back(&w->dead_exchanges, &ex->link);
}

rm_exchange_t *rm_exchange_new_tunnel(rm_session_t *s, rm_downstream_t *down)
{
    rm_worker_t *w = s->worker;
    rm_exchange_t *ex = exchange_alloc(w);
    if (ex == NULL)
        return NULL;
    ex->session = s;
    ex->down = down;
    rm_list_init(&ex->link);
    ex->start = ev_now(w->loop);
    ex->raw_tcp = true;
    ex->passthrough = true;
    ex->phase = RM_EX_TUNNEL;
    ex->req_done = true;
    ex->resp_head_done = true;
    ex->resp_started = true; /* no HTTP error reply is possible on a raw stream */
    rm_buf_init(&ex->req_store, 0);
    rm_buf_init(&ex->replay, 0);
    ev_timer_init(&ex->try_timer, NULL, 0, 0);
    snprintf(ex->route_name, sizeof(ex->route_name), "passthrough");
    return ex;
}

void rm_exchange_free(rm_exchange_t *ex)
{
    if (!ex->finished)
        retire(ex);
}

void rm_exchange_abort(rm_exchange_t *ex)
{
    if (ex->finished)
        return;
    if (ex->status == 0 || !ex->resp_done)
        ex->status = ex->resp_started ? ex->status : 499; /* client gone first, as nginx counts */
    if (!ex->raw_tcp)
        rm_metrics_request(ex->session->worker, ex->service_name, ex->version_name, ex->route_name,
                           ex->status, ev_now(ex->session->worker->loop) - ex->start);
    retire(ex);
}

/* The field an inbound sidecar adds to its own error replies for the caller's sidecar. */
static size_t peer_error_marker(const rm_exchange_t *ex, bool connect, rm_field_t *out)
{
    if (ex->session->kind != RM_LISTENER_INBOUND)
        return 0;
    *out = (rm_field_t){LIT(PEER_ERROR_HEADER),
                        connect ? LIT(PEER_ERROR_CONNECT) : LIT(PEER_ERROR_RESET)};
    return 1;
}

/* Answers from the proxy itself. Only possible before any response byte went to the client. */
static void local_reply(rm_exchange_t *ex, int status, const char *reason, const rm_field_t *extra,
                        size_t nextra)
{
    char body[256];
    int n = snprintf(body, sizeof(body), "%s\n", reason);
    ex->status = status;
    /* Unread request body bytes would be taken for the next request: close instead. */
    bool close_after = !ex->req_done;
    ex->resp_done = true;
    if (ex->conn != NULL) {
        rm_upconn_close(ex->conn);
        ex->conn = NULL;
    }
    ex->down->ops->reply(ex->down, status, extra, nextra, body, (size_t)n, close_after);
    if (ex->session->closing)
        return; /* the reply could not be queued: the session and this exchange are gone */
    finish(ex);
}

void rm_exchange_on_timeout(rm_exchange_t *ex)
{
    if (!ex->resp_started) {
        local_reply(ex, 504, "upstream request timeout", NULL, 0);
        return;
    }
    ex->status = ex->status ? ex->status : 504;
    ex->down->ops->abort(ex->down); /* mid-response: the client sees a truncated body */
}

/* Whether a draining server sidecar may send this attempt back (see "bounce" above): a request
 * to a mesh service whose body can be sent again, to an endpoint not tried before. */
static bool may_bounce(const rm_exchange_t *ex)
{
    const rm_worker_t *w = ex->session->worker;
    return ex->svc != NULL && ex->session->kind != RM_LISTENER_INBOUND && !ex->last_resort &&
           !ex->upgrade && ex->bounces < RM_MAX_BOUNCES && !ex->replay_overflow &&
           (!(ex->req.flags & RM_MSG_F_BODY) ||
            ((ex->req.flags & RM_MSG_F_LENGTH) &&
             ex->req.content_length <= w->proxy->opt.retry_body_limit));
}

/* The fields the proxy changes on the request it forwards. */
static const rm_span_t request_removed[] = {LIT("x-forwarded-for"), LIT("x-remora-attempt"),
                                            LIT("x-forwarded-proto"), LIT(BOUNCE_HEADER)};

/* Queues the attempt's head: the request with this hop's fields, this attempt's number and
 * whether it may be bounced; then the body bytes kept from an earlier attempt. */
static int queue_head(rm_exchange_t *ex)
{
    rm_upconn_t *c = ex->conn;
    char attempt[24];
    char *end = rm__fmt_uint(attempt, (uint64_t)(ex->attempts > 0 ? ex->attempts : 0));
    rm_field_t add[4];
    size_t nadd = 0;
    add[nadd++] = (rm_field_t){LIT("x-forwarded-for"), {ex->xff, ex->xff_len}};
    if (ex->add_request_id)
        add[nadd++] = (rm_field_t){LIT("x-request-id"), {ex->request_id, strlen(ex->request_id)}};
    /* The mesh's own request headers go only to another sidecar (SPEC.md: they never reach an
     * app). */
    if (ex->endpoint_sidecar)
        add[nadd++] = (rm_field_t){LIT("x-remora-attempt"), {attempt, (size_t)(end - attempt)}};
    ex->bounceable = ex->endpoint_sidecar && may_bounce(ex);
    if (ex->bounceable)
        add[nadd++] = (rm_field_t){LIT(BOUNCE_HEADER), LIT("1")};
    rm_field_edit_t edit = {.remove = request_removed,
                            .nremove = sizeof(request_removed) / sizeof(request_removed[0]),
                            .add = add,
                            .nadd = nadd};
    if (ex->session->kind == RM_LISTENER_INBOUND)
        edit.remove_prefix = LIT(MESH_PREFIX); /* a serving sidecar: nothing of the caller's */
    int rc = c->codec->write_head(c, &ex->req, &edit);
    if (rc == 0 && ex->replay.len > 0)
        rc = c->codec->write_data(c, rm_buf_head(&ex->replay), ex->replay.len);
    return rc;
}

/* Past a circuit-breaker limit: fail at once, say so, count it. */
static void overloaded(rm_exchange_t *ex, const char *limit)
{
    static const rm_field_t mark = {LIT("x-remora-overloaded"), LIT("true")};
    rm_metrics_overflow(ex->session->worker, limit);
    local_reply(ex, 503, "overloaded", &mark, 1);
}

/* The per-try timeout fired, or the backoff before the next attempt ended. */
static void try_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    rm_exchange_t *ex = container_of(t, rm_exchange_t, try_timer);
    if (ex->backing_off) {
        ex->backing_off = false;
        connect_upstream(ex);
        return;
    }
    /* A per-try timeout while the connection is still being made is a connect failure: nothing
     * was written, so the request is provably unprocessed and may be retried whatever its method
     * (a perTryTimeout below the connect timeout meets this with a pod whose SYNs are dropped). */
    bool connecting = ex->conn != NULL && !ex->conn->connected;
    on_upstream_error(ex, connecting ? RM_UPSTREAM_CONNECT_FAILED : RM_UPSTREAM_TIMEOUT,
                      -ETIMEDOUT);
}

/* Ends the current attempt (its connection and endpoint let go) and starts the next one from the
 * backoff timer after delay_s (0: on the next loop iteration), so that the connection is never
 * replaced under a caller that is still using it. */
static void schedule_next_attempt(rm_exchange_t *ex, double delay_s)
{
    rm_worker_t *w = ex->session->worker;
    ev_timer_stop(w->loop, &ex->try_timer);
    if (ex->conn != NULL) {
        rm_upconn_close(ex->conn);
        ex->conn = NULL;
    }
    if (ex->upstream != NULL) {
        ex->upstream->active--;
        ex->upstream = NULL;
    }
    ex->resp_head_done = false;
    ex->status = 0;
    ex->phase = RM_EX_CONNECTING;
    ex->backing_off = true;
    ev_set_cb(&ex->try_timer, try_timer_cb);
    ev_timer_set(&ex->try_timer, delay_s, 0);
    ev_timer_start(w->loop, &ex->try_timer);
    ex->down->ops->update(ex->down);
}

/* A draining server sidecar sent the attempt back unforwarded: the same request goes to another
 * endpoint (routing skips the tried one) at once. Not a retry: no policy, budget or outlier
 * record. Returns false when it cannot be sent again (the caller then answers with the 503). */
static bool bounce(rm_exchange_t *ex)
{
    if (ex->resp_started || ex->finished || ex->replay_overflow)
        return false;
    ex->bounces++;
    rm_metrics_drain_redirect(ex->session->worker, ex->service_name, ex->version_name,
                              ex->route_name);
    schedule_next_attempt(ex, 0);
    return true;
}

/* The current attempt failed before any response byte reached the client. Returns true when a
 * retry was scheduled (the attempt's connection is gone), false when the caller must answer. */
static bool attempt_failed(rm_exchange_t *ex, rm_retry_cause_t cause, int status)
{
    if (ex->resp_started || ex->finished)
        return false;
    rm_attempt_record_outcome(ex, cause == RM_RETRY_CAUSE_STATUS ? rm_outlier_classify(status)
                                                                 : RM_OUTLIER_GATEWAY_ERROR);
    ex->outlier_recorded = true;
    rm_attempt_retry_done(ex); /* the attempt that just ended gives its retry room back */
    rm_retry_verdict_t v = rm_attempt_retry_verdict(ex, cause, status);
    if (!v.retry)
        return false;
    ex->retries++;
    ex->outlier_recorded = false;
    schedule_next_attempt(ex, v.backoff_s);
    return true;
}

static void connect_upstream(rm_exchange_t *ex)
{
    rm_worker_t *w = ex->session->worker;
    int err = 0;
    if (ex->peer_bounceable) { /* drain: the caller's sidecar sends it elsewhere (bounce) */
        static const rm_field_t mark = {LIT(PEER_ERROR_HEADER), LIT(PEER_ERROR_DRAINING)};
        local_reply(ex, 503, "draining: not forwarded to the app", &mark, 1);
        return;
    }
    rm_upstream_t *up = rm_routing_pick_upstream(ex);
    if (up == NULL) {
        if (ex->raw_tcp) {
            ex->down->ops->abort(ex->down);
            return;
        }
        local_reply(ex, 503, "no healthy upstream", NULL, 0);
        return;
    }
    ex->upstream = up;
    up->active++;
    ex->attempts++;
    const char *limit = NULL;
    ex->conn = rm_upstream_stream(w, up, &upstream_conn_ops, ex, ex->raw_tcp, &limit, &err);
    ex->bytes_sent = 0;
    if (limit != NULL) {
        overloaded(ex, limit);
        return;
    }
    if (ex->conn == NULL) {
        if (ex->raw_tcp) {
            ex->down->ops->abort(ex->down); /* the client sees the refusal as a close */
            return;
        }
        if (!attempt_failed(ex, RM_RETRY_CAUSE_CONNECT_FAILURE, 0)) {
            rm_field_t mark;
            local_reply(ex, 503, "upstream connect error", &mark,
                        peer_error_marker(ex, true, &mark));
        }
        return;
    }
    if (ex->raw_tcp) {
        ex->conn->codec->tunnel(ex->conn);
        rm_exchange_on_downstream_data(ex); /* bytes the client already sent */
        return;
    }
    if (queue_head(ex) != 0) {
        local_reply(ex, 503, "out of memory", NULL, 0);
        return;
    }
    if (ex->req_done && ex->conn->codec->write_end(ex->conn) != 0) {
        local_reply(ex, 503, "out of memory", NULL, 0);
        return;
    }
    const rm_retry_policy_t *p = ex->svc != NULL ? ex->decision.retry : NULL;
    if (p != NULL && p->per_try_timeout_ms > 0) {
        ex->backing_off = false;
        ev_timer_set(&ex->try_timer, (double)p->per_try_timeout_ms / 1000.0, 0);
        ev_timer_start(w->loop, &ex->try_timer);
    }
    ex->phase = RM_EX_FORWARDING;
    pump_request_body(ex);
    if (ex->finished || ex->session->closing)
        return; /* a malformed body was answered locally */
    rm_upconn_update_events(ex->conn);
    ex->down->ops->update(ex->down);
}

void rm_exchange_start(rm_exchange_t *ex)
{
    rm_worker_t *w = ex->session->worker;
    if (ex->local_status != 0) {
        local_reply(ex, ex->local_status, ex->local_reason, NULL, 0);
        return;
    }
    const char *limit =
        ex->svc != NULL ? rm_limits_admit(&ex->limits, ex->svc, ex->decision.version_index) : NULL;
    if (limit != NULL) {
        overloaded(ex, limit);
        return;
    }
    if (ex->req_done)
        rm_shadow_launch(ex); /* no body to wait for: the copy goes out with the primary */
    if (!ex->raw_tcp) {       /* a raw tunnel lives as long as both sides keep it open */
        uint64_t ms = ex->timeout_ms ? ex->timeout_ms : w->proxy->opt.request_timeout_ms;
        ex->deadline = ev_now(w->loop) + (ev_tstamp)ms / 1000.0;
        ex->down->ops->update(ex->down); /* the downstream's timer keeps this deadline */
    }
    connect_upstream(ex);
}

/* Request body bytes for the upstream, with a copy kept for a retry while the body fits the
 * replay buffer. */
static int send_body(rm_exchange_t *ex, const char *p, size_t n)
{
    int rc = ex->conn->codec->write_data(ex->conn, p, n);
    if (rc != 0 || ex->replay_overflow || ex->phase == RM_EX_TUNNEL)
        return rc;
    if (rm_buf_append(&ex->replay, p, n) != 0) {
        ex->replay_overflow = true; /* larger than the limit: not retried once sent */
        rm_buf_free(&ex->replay);
    }
    return 0;
}

/* Moves request body bytes (or, in a tunnel, whatever the client sends) from the downstream to
 * the upstream connection. */
static void pump_request_body(rm_exchange_t *ex)
{
    rm_upconn_t *c = ex->conn;
    rm_downstream_t *d = ex->down;
    bool tunnel = ex->phase == RM_EX_TUNNEL; /* raw bytes, as long as the client sends */
    if (c == NULL || (ex->req_done && !tunnel))
        return;
    while (!ex->req_done || tunnel) {
        size_t room = c->codec->write_room(c);
        if (room == 0 && c->connected) {
            /* Full: write now rather than stop. Stopping here and letting the connection's
             * optimistic write empty the buffer afterwards left the rest of a body that had
             * already arrived (its last read) waiting for a client event that never came. */
            rm_upconn_flush(c); /* counts what left in ex->bytes_sent (note_sent) */
            room = c->codec->write_room(c);
        }
        if (room == 0)
            break; /* the write watcher resumes it (rm_upconn_update_events) */
        rm_span_t data;
        rm_body_event_t ev = d->ops->body_next(d, room, &data);
        if (ev == RM_BODY_WAIT)
            break;
        if (ev == RM_BODY_DATA) {
            int rc = send_body(ex, data.ptr, data.len);
            d->ops->body_consume(d);
            if (rc != 0) {
                d->ops->abort(d);
                return;
            }
            continue;
        }
        if (ev == RM_BODY_END) {
            ex->req_done = true;
            if (c->codec->write_end(c) != 0) {
                d->ops->abort(d);
                return;
            }
            rm_shadow_launch(ex);
            break;
        }
        /* Malformed body: the upstream got a partial request; tell the client. */
        if (!ex->resp_started) {
            ex->req_done = true;
            local_reply(ex, 400, "malformed chunked request body", NULL, 0);
        } else {
            d->ops->abort(d);
        }
        return;
    }
}

bool rm_exchange_wants_downstream_read(const rm_exchange_t *ex)
{
    const rm_upconn_t *c = ex->conn;
    if (c == NULL)
        return false;
    if (ex->phase == RM_EX_TUNNEL)
        return c->codec->write_room(c) > 0;
    return ex->phase == RM_EX_FORWARDING && !ex->req_done && c->codec->write_room(c) > 0;
}

static bool wants_upstream_read(const void *owner)
{
    const rm_exchange_t *ex = owner;
    /* After the response, keep READ on: the connection goes back to the pool, where READ
     * detects the server closing it. */
    if (ex->resp_done)
        return true;
    return ex->down->ops->write_room(ex->down) > 0;
}

static void note_sent(void *owner, size_t n)
{
    ((rm_exchange_t *)owner)->bytes_sent += n;
}

/* Circuit breaking before a new connection (a pooled one needs no room). Passthrough and
 * inbound requests have no service's limits. */
static const char *may_connect(void *owner)
{
    rm_exchange_t *ex = owner;
    return ex->svc != NULL ? rm_limits_connect(&ex->limits, ex->svc, ex->decision.version_index)
                           : NULL;
}

static void on_upstream_connect_failed(void *owner, int err)
{
    on_upstream_error(owner, RM_UPSTREAM_CONNECT_FAILED, err);
}

bool rm_exchange_request_done(const rm_exchange_t *ex)
{
    return ex->req_done && ex->phase != RM_EX_TUNNEL;
}

bool rm_exchange_keepalive(const rm_exchange_t *ex)
{
    return ex->req_done && !ex->client_close && ex->phase != RM_EX_TUNNEL;
}

void rm_exchange_on_downstream_data(rm_exchange_t *ex)
{
    pump_request_body(ex);
    if (ex->session->closing || ex->finished)
        return;
    if (ex->conn != NULL)
        rm_upconn_update_events(ex->conn);
    ex->down->ops->update(ex->down);
}

void rm_exchange_on_downstream_eof(rm_exchange_t *ex)
{
    if (ex->phase == RM_EX_TUNNEL && ex->conn != NULL) {
        /* Half-close: pass the client's FIN on once its bytes are out; the upstream's answer
         * still flows back until it closes too. */
        ex->client_close = true;
        if (ex->conn->out.len == 0)
            rm_conn_shutdown_write(&ex->conn->conn);
        ex->down->ops->update(ex->down);
        return;
    }
    if (ex->phase == RM_EX_TUNNEL || !ex->req_done) {
        /* The client gave up mid-request: nothing left to answer. */
        ex->down->ops->abort(ex->down);
        return;
    }
    /* Half-close after a complete request: finish the response, then close. */
    ex->client_close = true;
    ex->down->ops->update(ex->down);
}

void rm_exchange_on_downstream_drained(rm_exchange_t *ex)
{
    if (ex->conn != NULL) {
        pump_response(ex); /* bytes may be waiting in the connection for room downstream */
        if (ex->finished || ex->session->closing)
            return;
        if (ex->conn != NULL)
            rm_upconn_update_events(ex->conn);
    }
    ex->down->ops->update(ex->down);
}

/* Whether the response of the current attempt decides a bounce or a retry instead of going to
 * the client. Returns true when the attempt was replaced (its connection is gone). */
static bool response_diverted(rm_exchange_t *ex, const rm_response_head_t *h)
{
    const rm_field_t *f = h->fields;
    size_t n = h->nfields;
    if (!ex->endpoint_sidecar) /* a plain endpoint's x-remora-* mean nothing */
        return ex->svc != NULL && rm_retry_status_matches(ex->decision.retry, h->status) &&
               attempt_failed(ex, RM_RETRY_CAUSE_STATUS, h->status);
    if (ex->bounceable && h->status == 503 &&
        rm_msg_field_is(f, n, PEER_ERROR_HEADER, PEER_ERROR_DRAINING) && bounce(ex))
        return true; /* a draining peer sent it back unforwarded */
    if (ex->svc == NULL)
        return false;
    if (h->status == 503 && rm_msg_field_is(f, n, PEER_ERROR_HEADER, PEER_ERROR_CONNECT) &&
        attempt_failed(ex, RM_RETRY_CAUSE_CONNECT_FAILURE, 0))
        return true; /* the peer sidecar could not reach its app: provably unprocessed */
    if (h->status == 502 && rm_msg_field_is(f, n, PEER_ERROR_HEADER, PEER_ERROR_RESET) &&
        attempt_failed(ex, RM_RETRY_CAUSE_RESET, 0))
        return true; /* the peer's app reset: ambiguous, retried when idempotent */
    return rm_retry_status_matches(ex->decision.retry, h->status) &&
           attempt_failed(ex, RM_RETRY_CAUSE_STATUS, h->status);
}

/* Reads the response head (forwarding interim ones), deciding bounces and retries on the final
 * one. Returns true when the body may follow, false when the exchange moved on (retry, error,
 * or finished) or needs more bytes. */
static bool pump_response_head(rm_exchange_t *ex)
{
    rm_upconn_t *c = ex->conn;
    rm_downstream_t *d = ex->down;
    rm_worker_t *w = ex->session->worker;
    for (;;) {
        rm_response_head_t h;
        int rc = c->codec->read_head(c, &h);
        if (rc == 0)
            return false;
        if (rc < 0) {
            rm_log_debug("upstream %s: bad response", ex->upstream->address);
            on_upstream_error(ex, RM_UPSTREAM_PROTOCOL, 0);
            return false;
        }
        bool interim = (h.flags & RM_MSG_F_INTERIM) != 0;
        if ((h.flags & RM_MSG_F_UPGRADE) && !ex->upgrade) {
            /* A switch nobody asked for (101 to a plain request): forwarding it would turn the
             * client's next bytes into an unparsed, timeout-free tunnel. */
            rm_log_debug("upstream %s: unsolicited %d", ex->upstream->address, h.status);
            on_upstream_error(ex, RM_UPSTREAM_PROTOCOL, 0);
            return false;
        }
        if (!interim) {
            ev_timer_stop(w->loop, &ex->try_timer); /* per-try timeout ends at the head */
            if (response_diverted(ex, &h))
                return false;
            if (!ex->outlier_recorded) {
                rm_attempt_record_outcome(ex, rm_outlier_classify(h.status));
                ex->outlier_recorded = true;
            }
        }
        bool close = !interim && (!ex->req_done || ex->client_close);
        /* A serving sidecar lets none of its app's x-remora-* through to the caller. */
        rm_field_edit_t from_app = {.remove_prefix = LIT(MESH_PREFIX)};
        bool inbound = ex->session->kind == RM_LISTENER_INBOUND;
        if (d->ops->write_head(d, &h, inbound ? &from_app : NULL, close) != 0) {
            d->ops->abort(d);
            return false;
        }
        ex->resp_started = true; /* bytes went to the client: no local reply any more */
        c->codec->head_done(c);
        if (interim)
            continue; /* the final response follows */
        ex->status = h.status;
        ex->resp_head_done = true;
        if (h.flags & RM_MSG_F_UPGRADE) {
            ex->phase = RM_EX_TUNNEL;
            /* The request timeout covered the handshake; the tunnel (a WebSocket) lives as long
             * as both ends keep it open, as Envoy's route timeout stops at the upgrade. */
            ex->deadline = 0;
            /* Bytes the client sent after the handshake belong to the new protocol. */
            rm_exchange_on_downstream_data(ex);
            return !ex->session->closing && !ex->finished;
        }
        if (!(h.flags & RM_MSG_F_BODY)) {
            /* A broken app may send a body anyway, in a later segment: the connection is
             * checked for stray bytes before its next use (upstream.c, pooled_still_open). */
            c->peek_before_reuse = true;
            ex->resp_done = true;
            if (d->ops->write_end(d) != 0) {
                d->ops->abort(d);
                return false;
            }
        }
        return true;
    }
}

/* Moves the response from the upstream connection to the downstream. */
static void pump_response(rm_exchange_t *ex)
{
    rm_downstream_t *d = ex->down;
    while (ex->conn != NULL && !ex->resp_done) {
        rm_upconn_t *c = ex->conn;
        if (!ex->resp_head_done) {
            if (!pump_response_head(ex))
                return;
            continue;
        }
        size_t room = d->ops->write_room(d);
        if (room == 0)
            return;
        rm_span_t data;
        rm_body_event_t ev = c->codec->body_next(c, room, &data);
        if (ev == RM_BODY_WAIT)
            return;
        if (ev == RM_BODY_DATA) {
            int rc = d->ops->write_data(d, data.ptr, data.len);
            c->codec->body_consume(c);
            if (rc != 0) {
                d->ops->abort(d);
                return;
            }
            continue;
        }
        if (ev == RM_BODY_ERROR) {
            rm_log_debug("upstream %s: bad response body", ex->upstream->address);
            d->ops->abort(d); /* response already started: truncate */
            return;
        }
        ex->resp_done = true;
        if (d->ops->write_end(d) != 0) {
            d->ops->abort(d);
            return;
        }
    }
    if (ex->resp_done && !ex->finished)
        finish(ex);
}

static void finish(rm_exchange_t *ex)
{
    rm_worker_t *w = ex->session->worker;
    if (ex->finished)
        return;
    ex->deadline = 0;
    if (ex->conn != NULL) {
        /* Reuse needs both messages complete, no stray bytes, and no close announced. */
        bool reusable = ex->req_done && ex->resp_done && ex->phase != RM_EX_TUNNEL &&
                        ex->conn->codec->reusable(ex->conn);
        rm_upconn_release(ex->conn, reusable);
        ex->conn = NULL;
    }
    double dur = ev_now(w->loop) - ex->start;
    if (ex->retries > 0 && ex->status > 0 && ex->status < 500)
        rm_metrics_retry_success(w, ex->service_name, ex->version_name, ex->route_name);
    if (!ex->raw_tcp) {
        rm_metrics_request(w, ex->service_name, ex->version_name, ex->route_name, ex->status, dur);
        rm_access_log_write(ex, dur);
    }
    ex->down->ops->finished(ex->down);
}

static void on_upstream_error(rm_exchange_t *ex, rm_upstream_failure_t kind, int err)
{
    rm_limits_connected(&ex->limits);
    (void)err;
    if (ex->phase == RM_EX_TUNNEL || ex->resp_started) {
        /* Mid-response: the only honest signal left is to cut the client connection. */
        ex->down->ops->abort(ex->down);
        return;
    }
    static const rm_retry_cause_t causes[] = {
        [RM_UPSTREAM_CONNECT_FAILED] = RM_RETRY_CAUSE_CONNECT_FAILURE,
        [RM_UPSTREAM_RESET] = RM_RETRY_CAUSE_RESET,
        [RM_UPSTREAM_TIMEOUT] = RM_RETRY_CAUSE_TIMEOUT,
        [RM_UPSTREAM_PROTOCOL] = RM_RETRY_CAUSE_STATUS,
    };
    if (attempt_failed(ex, causes[kind], kind == RM_UPSTREAM_PROTOCOL ? 502 : 0))
        return;
    if (!ex->outlier_recorded) {
        rm_attempt_record_outcome(ex, RM_OUTLIER_GATEWAY_ERROR);
        ex->outlier_recorded = true;
    }
    rm_field_t mark;
    switch (kind) {
    case RM_UPSTREAM_CONNECT_FAILED:
        local_reply(ex, 503, "upstream connect error", &mark, peer_error_marker(ex, true, &mark));
        break;
    case RM_UPSTREAM_TIMEOUT:
        local_reply(ex, 504, "upstream request timeout", NULL, 0);
        break;
    case RM_UPSTREAM_PROTOCOL:
        local_reply(ex, 502, "upstream sent a malformed response", NULL, 0);
        break;
    default:
        local_reply(ex, 502, "upstream connection reset before response", &mark,
                    peer_error_marker(ex, false, &mark));
        break;
    }
}

/* The upstream closed its end: the end of a body delimited by the close (or of a tunnel), else a
 * failure. */
static void upstream_closed(rm_exchange_t *ex, ssize_t n)
{
    rm_upconn_t *c = ex->conn;
    if (ex->phase == RM_EX_TUNNEL) {
        pump_response(ex);
        if (ex->session->closing || ex->finished)
            return;
        rm_upconn_close(c); /* the downstream closes after a tunnel (rm_exchange_keepalive) */
        ex->conn = NULL;
        ex->resp_done = true;
        ex->req_done = true;
        finish(ex);
        return;
    }
    pump_response(ex); /* flush what is buffered; then the close may end the body */
    if (ex->finished || ex->session->closing || ex->conn != c)
        return;
    if (ex->resp_head_done && c->codec->ends_at_close(c)) {
        if (c->in.len == 0) {
            ex->resp_done = true;
            if (ex->down->ops->write_end(ex->down) != 0) {
                ex->down->ops->abort(ex->down);
                return;
            }
            rm_upconn_close(c); /* never reused: its body ended with it */
            ex->conn = NULL;
            finish(ex);
        }
        return; /* the rest is written when the downstream drains */
    }
    on_upstream_error(ex, RM_UPSTREAM_RESET, (int)n);
}

/* Any call below may end this attempt (a retry closes `c` and may open another connection), or
 * the whole exchange: after each, stop unless the exchange still uses `c`. */
static void on_upstream_io(void *owner, int revents)
{
    rm_exchange_t *ex = owner;
    rm_upconn_t *c = ex->conn;
    rm_session_t *s = ex->session;
    rm_limits_connected(&ex->limits); /* the connection is up: no longer pending */
    if (revents & EV_WRITE) {
        ssize_t n = rm_upconn_flush(c); /* counts what left in ex->bytes_sent (note_sent) */
        if (n < 0 && n != -EAGAIN) {
            on_upstream_error(ex, RM_UPSTREAM_RESET, (int)n);
            return;
        }
        if (ex->phase == RM_EX_TUNNEL && ex->client_close && c->out.len == 0)
            rm_conn_shutdown_write(&c->conn);
        pump_request_body(ex);
        if (ex->finished || s->closing || ex->conn != c)
            return;
    }
    if (revents & EV_READ) {
        ssize_t n = rm_conn_read_buf(&c->conn, &c->in, (size_t)64 * 1024);
        if (n == 0 || (n < 0 && n != -EAGAIN && n != RM_BUF_EFULL)) {
            upstream_closed(ex, n);
            return;
        }
        pump_response(ex);
        if (ex->finished || s->closing || ex->conn != c)
            return;
    }
    rm_upconn_update_events(c);
    ex->down->ops->update(ex->down);
}
