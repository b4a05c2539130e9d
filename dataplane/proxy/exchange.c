/* dataplane/proxy/exchange.c — forwarding one request and its response.
 *
 * Data flow:  session.in --(request body, re-framed)--> conn.out --> upstream socket
 *             upstream socket --> conn.in --(response, re-framed)--> session.out --> client
 * Each arrow moves only as much as the destination buffer can take; a full destination stops
 * reading from the source (back-pressure), and draining it resumes reading.
 */
#include "dataplane/proxy/exchange.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log/log.h"
#include "dataplane/policy/limits.h"
#include "dataplane/proxy/access_log.h"
#include "dataplane/proxy/attempt.h"
#include "dataplane/proxy/body.h"
#include "dataplane/proxy/fmt.h"
#include "dataplane/proxy/list.h"
#include "dataplane/proxy/metrics.h"
#include "dataplane/proxy/routing.h"
#include "dataplane/proxy/session.h"
#include "dataplane/proxy/shadow.h"
#include "dataplane/proxy/upstream.h"
#include "dataplane/proxy/worker.h"
#include "dataplane/transport/transport.h"

/* Stop moving bytes into a destination buffer holding this much. */
#define HIGH_WATER ((size_t)64 * 1024)

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

/* How the exchange's upstream connection reaches it (upstream.h). */
static const rm_upconn_owner_ops_t upstream_conn_ops = {
    .on_io = on_upstream_io,
    .on_connect_failed = on_upstream_connect_failed,
    .wants_read = wants_upstream_read,
    .on_sent = note_sent,
};

static bool is_idempotent(rm_http1_method_t m)
{
    switch (m) {
    case RM_HTTP1_METHOD_GET:
    case RM_HTTP1_METHOD_HEAD:
    case RM_HTTP1_METHOD_OPTIONS:
    case RM_HTTP1_METHOD_PUT:
    case RM_HTTP1_METHOD_DELETE:
    case RM_HTTP1_METHOD_TRACE:
        return true;
    default:
        return false;
    }
}

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

static void copy_span(char *dst, size_t n, rm_http1_span_t s)
{
    size_t l = s.len < n - 1 ? s.len : n - 1;
    memcpy(dst, s.ptr, l);
    dst[l] = '\0';
}

/* Builds the upstream request head (without its final blank line: the attempt header is added
 * per attempt) into ex->up_head. Returns 0 or a negative error. */
static int build_upstream_head(rm_exchange_t *ex, rm_http1_request_t *req)
{
    rm_session_t *s = ex->session;
    /* x-forwarded-for: the client's list (cut to fit) then this hop's peer. */
    char xff[512];
    size_t peer_len = strlen(s->peer_ip), xff_len = 0;
    ssize_t i = rm_http1_header_find(req->headers, req->num_headers, "x-forwarded-for", 15);
    if (i >= 0) {
        size_t room = sizeof(xff) - peer_len - 3;
        xff_len = req->headers[i].value.len < room ? req->headers[i].value.len : room;
        memcpy(xff, req->headers[i].value.ptr, xff_len);
        xff[xff_len++] = ',';
        xff[xff_len++] = ' ';
    }
    memcpy(xff + xff_len, s->peer_ip, peer_len + 1);
    /* x-request-id passes untouched when the client sent one (whatever its length); otherwise
     * the generated one is added. x-remora-attempt is the proxy's own: added per attempt. */
    static const rm_http1_span_t remove[] = {{"x-forwarded-for", 15},
                                             {"x-remora-attempt", 16},
                                             {"x-forwarded-proto", 17},
                                             {BOUNCE_HEADER, sizeof(BOUNCE_HEADER) - 1}};
    rm_http1_header_t add[3] = {{{"x-forwarded-for", 15}, {xff, xff_len + peer_len}}};
    size_t nadd = 1;
    if (rm_http1_header_find(req->headers, req->num_headers, "x-request-id", 12) < 0)
        add[nadd++] =
            (rm_http1_header_t){{"x-request-id", 12}, {ex->request_id, strlen(ex->request_id)}};
    if (ex->upgrade) {
        /* Upgrade is hop-by-hop, but a WebSocket handshake must reach the app: re-add it. */
        ssize_t u = rm_http1_header_find(req->headers, req->num_headers, "upgrade", 7);
        if (u >= 0) {
            add[nadd].name = (rm_http1_span_t){"upgrade", 7};
            add[nadd++].value = req->headers[u].value;
        }
    }
    rm_http1_edit_t edit = {.remove = remove,
                            .num_remove = sizeof(remove) / sizeof(remove[0]),
                            .add = add,
                            .num_add = nadd,
                            .flags = RM_HTTP1_EDIT_F_HOP_BY_HOP};
    /* Upstreams get origin-form: the authority moved to Host already (the parser checked it). */
    if (req->target_form == RM_HTTP1_TARGET_ABSOLUTE)
        req->target = req->path.len ? req->path : (rm_http1_span_t){"/", 1};
    size_t need = 512 + xff_len + peer_len + strlen(ex->request_id);
    for (size_t h = 0; h < req->num_headers; h++)
        need += req->headers[h].name.len + req->headers[h].value.len + 4;
    need += req->target.len + req->method_name.len + 64;
    int err = 0;
    char *out = rm_buf_reserve(&ex->up_head, need, &err);
    if (out == NULL)
        return err;
    ssize_t n = rm_http1_serialize_request(req, &edit, out, need);
    if (n < 2)
        return n < 0 ? (int)n : -EINVAL;
    rm_buf_commit(&ex->up_head, (size_t)n - 2); /* drop the blank line; added per attempt */
    if (ex->upgrade) {
        static const char conn_upgrade[] = "connection: upgrade\r\n";
        if (rm_buf_append(&ex->up_head, conn_upgrade, sizeof(conn_upgrade) - 1) != 0)
            return -ENOMEM;
    }
    return 0;
}

/* Exchanges are per request and ~1.2 KiB: a worker keeps a few reaped ones instead of a
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
    memset(ex, 0, sizeof(*ex));
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

rm_exchange_t *rm_exchange_new(rm_session_t *s, rm_http1_request_t *req, size_t head_len)
{
    rm_worker_t *w = s->worker;
    rm_exchange_t *ex = exchange_alloc(w);
    if (ex == NULL)
        return NULL;
    ex->session = s;
    rm_list_init(&ex->link);
    ex->start = ev_now(w->loop);
    ex->method = req->method;
    ex->idempotent =
        is_idempotent(req->method) ||
        rm_http1_header_find(req->headers, req->num_headers, "idempotency-key", 15) >= 0;
    ex->req_keepalive = (req->flags & RM_HTTP1_F_KEEP_ALIVE) != 0;
    ex->req_body = req->body;
    ex->req_remaining = req->body == RM_HTTP1_BODY_CONTENT_LENGTH ? req->content_length : 0;
    ex->req_done = req->body == RM_HTTP1_BODY_NONE ||
                   (req->body == RM_HTTP1_BODY_CONTENT_LENGTH && req->content_length == 0);
    if (req->body == RM_HTTP1_BODY_CHUNKED)
        rm_http1_chunked_init(&ex->req_chunks);
    ex->upgrade = (req->flags & RM_HTTP1_F_UPGRADE) && (req->flags & RM_HTTP1_F_CONN_UPGRADE);
    /* Only a draining sidecar acts on it (see "bounce" above). */
    ex->peer_bounceable = s->kind == RM_LISTENER_INBOUND && w->draining &&
                          rm_http1_header_find(req->headers, req->num_headers, BOUNCE_HEADER,
                                               sizeof(BOUNCE_HEADER) - 1) >= 0;
    rm_buf_init(&ex->up_head, w->proxy->opt.max_head_bytes + 4096);
    rm_buf_init(&ex->replay, w->proxy->opt.retry_body_limit);
    ev_timer_init(&ex->try_timer, try_timer_cb, 0, 0);

    /* The id for logs and shadows; an over-long client id is truncated here only (the
     * upstream request carries the client's header as it was). */
    ssize_t rid = rm_http1_header_find(req->headers, req->num_headers, "x-request-id", 12);
    if (rid >= 0 && req->headers[rid].value.len > 0)
        copy_span(ex->request_id, sizeof(ex->request_id), req->headers[rid].value);
    else
        generate_request_id(w, ex->request_id);

    if (w->snap != NULL) {
        rm_snapshot_ref(w->snap);
        ex->snap = w->snap;
    }
    /* Route while the head's bytes are still in the session buffer. */
    rm_routing_decide(ex, req);
    if (ex->local_status == 0 && build_upstream_head(ex, req) != 0) {
        ex->local_status = 431;
        ex->local_reason = "request head too large to forward";
    }
    rm_buf_consume(&s->in, head_len);
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
    rm_buf_free(&ex->shadow_head);
    if (ex->conn != NULL) {
        rm_upconn_close(ex->conn);
        ex->conn = NULL;
    }
    if (ex->upstream != NULL) {
        ex->upstream->active--;
        ex->upstream = NULL;
    }
    rm_buf_free(&ex->up_head);
    if (ex->snap != NULL) {
        rm_snapshot_unref(ex->snap);
        ex->snap = NULL;
    }
    rm_list_push_back(&w->dead_exchanges, &ex->link);
}

rm_exchange_t *rm_exchange_new_tunnel(rm_session_t *s)
{
    rm_worker_t *w = s->worker;
    rm_exchange_t *ex = exchange_alloc(w);
    if (ex == NULL)
        return NULL;
    ex->session = s;
    rm_list_init(&ex->link);
    ex->start = ev_now(w->loop);
    ex->raw_tcp = true;
    ex->passthrough = true;
    ex->phase = RM_EX_TUNNEL;
    ex->req_done = true;
    ex->resp_head_done = true;
    ex->resp_started = true; /* no HTTP error reply is possible on a raw stream */
    rm_buf_init(&ex->up_head, 0);
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

/* An inbound sidecar reports how its app failed, so the caller's sidecar can apply the retry
 * rules as if it had seen the failure itself: `upstream-connect` — the app could not be reached
 * (it exited during a rolling update, or has not started), so the request was never processed and
 * may be retried elsewhere whatever its method; `upstream-reset` — the app closed or reset the
 * connection before answering (typically a kept-alive connection the draining app was closing),
 * an ambiguous failure retried only when idempotent. Only sidecars set or read this header. */
#define PEER_ERROR_HEADER  "x-remora-error"
#define PEER_ERROR_CONNECT "upstream-connect"
#define PEER_ERROR_RESET   "upstream-reset"

static const char *peer_error_marker(const rm_exchange_t *ex, bool connect)
{
    if (ex->session->kind != RM_LISTENER_INBOUND)
        return NULL;
    return connect ? PEER_ERROR_HEADER ": " PEER_ERROR_CONNECT "\r\n"
                   : PEER_ERROR_HEADER ": " PEER_ERROR_RESET "\r\n";
}

/* Answers from the proxy itself. Only possible before any response byte went to the client. */
static void local_reply(rm_exchange_t *ex, int status, const char *reason, const char *extra)
{
    rm_session_t *s = ex->session;
    char body[256];
    int n = snprintf(body, sizeof(body), "%s\n", reason);
    ex->status = status;
    /* Unread request body bytes would be taken for the next request: close instead. */
    bool close_after = !ex->req_done || !ex->req_keepalive;
    rm_session_reply(s, status, extra, "text/plain", body, (size_t)n, close_after);
    ex->resp_done = true;
    ex->req_keepalive = ex->req_keepalive && !close_after;
    if (ex->conn != NULL) {
        rm_upconn_close(ex->conn);
        ex->conn = NULL;
    }
    finish(ex);
}

void rm_exchange_on_timeout(rm_exchange_t *ex)
{
    if (!ex->resp_started) {
        local_reply(ex, 504, "upstream request timeout", NULL);
        return;
    }
    ex->status = ex->status ? ex->status : 504;
    rm_session_close(ex->session); /* mid-response: the client sees a truncated body */
}

/* Whether a draining server sidecar may send this attempt back (see "bounce" above): a request
 * to a mesh service whose body can be sent again, to an endpoint not tried before. */
static bool may_bounce(const rm_exchange_t *ex)
{
    const rm_worker_t *w = ex->session->worker;
    return ex->svc != NULL && ex->session->kind != RM_LISTENER_INBOUND && !ex->last_resort &&
           !ex->upgrade && ex->bounces < RM_MAX_BOUNCES &&
           (ex->req_body == RM_HTTP1_BODY_NONE ||
            (ex->req_body == RM_HTTP1_BODY_CONTENT_LENGTH &&
             ex->req_remaining + ex->replay.len <= w->proxy->opt.retry_body_limit &&
             !ex->replay_overflow));
}

/* Queues the attempt's head: the stored head plus this attempt's number (and whether it may be
 * bounced) and the blank line. */
static int queue_head(rm_exchange_t *ex)
{
    rm_upconn_t *c = ex->conn;
    static const char bounce[] = BOUNCE_HEADER ": 1\r\n";
    char tail[48 + sizeof(bounce)] = "x-remora-attempt: ";
    char *end = rm__fmt_uint(tail + 18, (uint64_t)(ex->attempts > 0 ? ex->attempts : 0));
    *end++ = '\r';
    *end++ = '\n';
    ex->bounceable = may_bounce(ex);
    if (ex->bounceable) {
        memcpy(end, bounce, sizeof(bounce) - 1);
        end += sizeof(bounce) - 1;
    }
    *end++ = '\r';
    *end++ = '\n';
    int rc = rm_buf_append(&c->out, rm_buf_head(&ex->up_head), ex->up_head.len);
    if (rc == 0)
        rc = rm_buf_append(&c->out, tail, (size_t)(end - tail));
    return rc;
}

/* Past a circuit-breaker limit: fail at once, say so, count it. */
static void overloaded(rm_exchange_t *ex, const char *limit)
{
    rm_metrics_overflow(ex->session->worker, limit);
    local_reply(ex, 503, "overloaded", "x-remora-overloaded: true\r\n");
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
    rm_session_update_events(ex->session);
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
        local_reply(ex, 503, "draining: not forwarded to the app",
                    PEER_ERROR_HEADER ": " PEER_ERROR_DRAINING "\r\n");
        return;
    }
    rm_upstream_t *up = rm_routing_pick_upstream(ex);
    if (up == NULL) {
        if (ex->raw_tcp) {
            rm_session_close(ex->session);
            return;
        }
        local_reply(ex, 503, "no healthy upstream", NULL);
        return;
    }
    ex->upstream = up;
    up->active++;
    ex->attempts++;
    rm_http1_response_init(&ex->resp, w->headers, w->proxy->opt.max_headers);
    ex->conn = ex->raw_tcp ? NULL : rm_upconn_take_pooled(w, up, &upstream_conn_ops, ex);
    if (ex->conn == NULL && !ex->raw_tcp) {
        const char *limit =
            ex->svc != NULL ? rm_limits_connect(&ex->limits, ex->svc, ex->decision.version_index)
                            : NULL;
        if (limit != NULL) {
            overloaded(ex, limit);
            return;
        }
    }
    if (ex->conn == NULL)
        ex->conn = rm_upconn_connect(w, up, &upstream_conn_ops, ex, &err);
    ex->bytes_sent = 0;
    if (ex->conn == NULL) {
        if (ex->raw_tcp) {
            rm_session_close(ex->session); /* the client sees the refusal as a close */
            return;
        }
        if (!attempt_failed(ex, RM_RETRY_CAUSE_CONNECT_FAILURE, 0))
            local_reply(ex, 503, "upstream connect error", peer_error_marker(ex, true));
        return;
    }
    if (ex->raw_tcp) {
        rm_exchange_on_downstream_data(ex); /* bytes the client already sent */
        return;
    }
    if (queue_head(ex) != 0 ||
        (ex->replay.len > 0 &&
         rm_buf_append(&ex->conn->out, rm_buf_head(&ex->replay), ex->replay.len) != 0)) {
        local_reply(ex, 503, "out of memory", NULL);
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
    rm_session_update_events(ex->session);
}

void rm_exchange_start(rm_exchange_t *ex)
{
    rm_worker_t *w = ex->session->worker;
    if (ex->local_status != 0) {
        local_reply(ex, ex->local_status, ex->local_reason, NULL);
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
        rm_session_arm_timer(ex->session); /* the session's timer keeps this deadline */
    }
    connect_upstream(ex);
}

/* Queues request body bytes (already framed) for the upstream, keeping a copy for a retry while
 * the body fits the replay buffer. */
static int send_body(rm_exchange_t *ex, const char *p, size_t n)
{
    int rc = rm_buf_append(&ex->conn->out, p, n);
    if (rc != 0 || ex->replay_overflow)
        return rc;
    if (rm_buf_append(&ex->replay, p, n) != 0) {
        ex->replay_overflow = true; /* larger than the limit: not retried once sent */
        rm_buf_free(&ex->replay);
    }
    return 0;
}

static int sink_upstream(void *arg, const char *p, size_t n)
{
    return send_body(arg, p, n);
}

static int sink_client(void *arg, const char *p, size_t n)
{
    return rm_buf_append(&((rm_session_t *)arg)->out, p, n);
}

/* Moves request body bytes from the session to the upstream connection, re-framing chunked. */
static void pump_request_body(rm_exchange_t *ex)
{
    rm_session_t *s = ex->session;
    rm_upconn_t *c = ex->conn;
    if (c == NULL || ex->req_done)
        return;
    while (!ex->req_done && c->out.len < HIGH_WATER) {
        rm_body_step_t st = rm_body_step(&s->in, ex->req_body, &ex->req_remaining, &ex->req_chunks,
                                         HIGH_WATER - c->out.len, sink_upstream, ex);
        if (st == RM_BODY_ERROR) {
            /* Malformed body: the upstream got a partial request; tell the client. */
            ex->req_keepalive = false;
            if (!ex->resp_started) {
                ex->req_done = true;
                local_reply(ex, 400, ex->req_chunks.error_reason, NULL);
            } else {
                rm_session_close(s);
            }
            return;
        }
        if (st == RM_BODY_DONE) {
            ex->req_done = true;
            rm_shadow_launch(ex);
        }
        if (st == RM_BODY_WAIT)
            break;
    }
}

bool rm_exchange_wants_downstream_read(const rm_exchange_t *ex)
{
    if (ex->phase == RM_EX_TUNNEL)
        return ex->conn != NULL && ex->conn->out.len < HIGH_WATER;
    return ex->phase == RM_EX_FORWARDING && !ex->req_done && ex->conn != NULL &&
           ex->conn->out.len < HIGH_WATER;
}

static bool wants_upstream_read(const void *owner)
{
    const rm_exchange_t *ex = owner;
    /* After the response, keep READ on: the connection goes back to the pool, where READ
     * detects the server closing it. */
    if (ex->resp_done)
        return true;
    return ex->session->out.len < HIGH_WATER;
}

bool rm_exchange_request_done(const rm_exchange_t *ex)
{
    return ex->req_done && ex->phase != RM_EX_TUNNEL;
}

static void note_sent(void *owner, size_t n)
{
    ((rm_exchange_t *)owner)->bytes_sent += n;
}

static void on_upstream_connect_failed(void *owner, int err)
{
    on_upstream_error(owner, RM_UPSTREAM_CONNECT_FAILED, err);
}

bool rm_exchange_keepalive(const rm_exchange_t *ex)
{
    return ex->req_keepalive && ex->req_done && !ex->client_close;
}

void rm_exchange_on_downstream_data(rm_exchange_t *ex)
{
    if (ex->phase == RM_EX_TUNNEL) {
        rm_session_t *s = ex->session;
        if (rm_buf_append(&ex->conn->out, rm_buf_head(&s->in), s->in.len) == 0)
            rm_buf_consume(&s->in, s->in.len);
    } else {
        pump_request_body(ex);
        if (ex->session->closing || ex->finished)
            return;
    }
    if (ex->conn != NULL)
        rm_upconn_update_events(ex->conn);
    rm_session_update_events(ex->session);
}

void rm_exchange_on_downstream_eof(rm_exchange_t *ex)
{
    rm_session_t *s = ex->session;
    if (ex->phase == RM_EX_TUNNEL && ex->conn != NULL) {
        /* Half-close: pass the client's FIN on once its bytes are out; the upstream's answer
         * still flows back until it closes too. */
        ex->client_close = true;
        if (ex->conn->out.len == 0)
            rm_conn_shutdown_write(&ex->conn->conn);
        rm_session_update_events(s);
        return;
    }
    if (ex->phase == RM_EX_TUNNEL || !ex->req_done) {
        /* The client gave up mid-request: nothing left to answer. */
        rm_session_close(s);
        return;
    }
    /* Half-close after a complete request: finish the response, then close. */
    ex->client_close = true;
    rm_session_update_events(s);
}

void rm_exchange_on_downstream_drained(rm_exchange_t *ex)
{
    if (ex->conn != NULL) {
        pump_response(ex); /* bytes may be waiting in conn->in for room in session->out */
        if (ex->finished || ex->session->closing)
            return;
        if (ex->conn != NULL)
            rm_upconn_update_events(ex->conn);
    }
    rm_session_update_events(ex->session);
}

/* Rewrites and queues the response head. Returns 0, or a negative error. */
static int forward_response_head(rm_exchange_t *ex, rm_http1_response_t *resp)
{
    rm_session_t *s = ex->session;
    rm_worker_t *w = s->worker;
    bool informational = resp->status >= 100 && resp->status < 200 && resp->status != 101;
    bool client_keep = ex->req_keepalive && ex->req_done && !ex->client_close &&
                       resp->body != RM_HTTP1_BODY_UNTIL_CLOSE &&
                       !(rm_worker_draining(w) && s->kind == RM_LISTENER_INBOUND);
    if (!informational && !client_keep && resp->status != 101)
        ex->req_keepalive = false;
    rm_http1_header_t add[2];
    size_t nadd = 0;
    if (resp->status == 101) {
        ssize_t u = rm_http1_header_find(resp->headers, resp->num_headers, "upgrade", 7);
        add[nadd++] = (rm_http1_header_t){{"connection", 10}, {"upgrade", 7}};
        if (u >= 0)
            add[nadd++] = (rm_http1_header_t){{"upgrade", 7}, resp->headers[u].value};
    } else if (!informational && !client_keep) {
        add[nadd++] = (rm_http1_header_t){{"connection", 10}, {"close", 5}};
    }
    rm_http1_edit_t edit = {.add = add, .num_add = nadd, .flags = RM_HTTP1_EDIT_F_HOP_BY_HOP};
    size_t need = 256;
    for (size_t h = 0; h < resp->num_headers; h++)
        need += resp->headers[h].name.len + resp->headers[h].value.len + 4;
    need += resp->status_text.len;
    int err = 0;
    char *out = rm_buf_reserve(&s->out, need, &err);
    if (out == NULL)
        return err;
    ssize_t n = rm_http1_serialize_response(resp, &edit, out, need);
    if (n < 0)
        return (int)n;
    rm_buf_commit(&s->out, (size_t)n);
    ex->resp_started = true;
    return 0;
}

static bool header_is(const rm_http1_response_t *resp, const char *name, const char *value)
{
    ssize_t i = rm_http1_header_find(resp->headers, resp->num_headers, name, strlen(name));
    return i >= 0 && resp->headers[i].value.len == strlen(value) &&
           memcmp(resp->headers[i].value.ptr, value, strlen(value)) == 0;
}

/* Parses response heads (skipping 1xx interim responses after forwarding them) and moves body
 * bytes from the upstream connection to the session. */
static void pump_response(rm_exchange_t *ex)
{
    rm_session_t *s = ex->session;
    rm_upconn_t *c = ex->conn;
    rm_worker_t *w = s->worker;
    while (c != NULL && !ex->resp_done) {
        if (!ex->resp_head_done) {
            if (c->in.len == 0)
                return;
            int n = rm_http1_parse_response(rm_buf_head(&c->in), c->in.len, &ex->resp, NULL,
                                            ex->method);
            if (n == RM_HTTP1_INCOMPLETE) {
                if (rm_buf_room(&c->in) == 0)
                    on_upstream_error(ex, RM_UPSTREAM_PROTOCOL, 0);
                return;
            }
            if (n < 0) {
                rm_log_debug("upstream %s: bad response: %s", ex->upstream->address,
                             ex->resp.error_reason);
                on_upstream_error(ex, RM_UPSTREAM_PROTOCOL, 0);
                return;
            }
            rm_http1_response_t *resp = &ex->resp;
            bool interim = resp->status >= 100 && resp->status < 200 && resp->status != 101;
            if (!interim) {
                ev_timer_stop(w->loop, &ex->try_timer); /* per-try timeout ends at the head */
                if (ex->bounceable && resp->status == 503 &&
                    header_is(resp, PEER_ERROR_HEADER, PEER_ERROR_DRAINING) && bounce(ex))
                    return; /* a draining peer sent it back unforwarded */
                if (ex->svc != NULL && resp->status == 503 &&
                    header_is(resp, PEER_ERROR_HEADER, PEER_ERROR_CONNECT) &&
                    attempt_failed(ex, RM_RETRY_CAUSE_CONNECT_FAILURE, 0))
                    return; /* the peer sidecar could not reach its app: provably unprocessed */
                if (ex->svc != NULL && resp->status == 502 &&
                    header_is(resp, PEER_ERROR_HEADER, PEER_ERROR_RESET) &&
                    attempt_failed(ex, RM_RETRY_CAUSE_RESET, 0))
                    return; /* the peer's app reset: ambiguous, retried when idempotent */
                if (ex->svc != NULL && rm_retry_status_matches(ex->decision.retry, resp->status) &&
                    attempt_failed(ex, RM_RETRY_CAUSE_STATUS, resp->status))
                    return;
            }
            if (!interim && !ex->outlier_recorded) {
                rm_attempt_record_outcome(ex, rm_outlier_classify(resp->status));
                ex->outlier_recorded = true;
            }
            if (forward_response_head(ex, resp) != 0) {
                rm_session_close(s);
                return;
            }
            rm_buf_consume(&c->in, (size_t)n);
            if (resp->status >= 100 && resp->status < 200 && resp->status != 101) {
                rm_http1_response_init(&ex->resp, w->headers, w->proxy->opt.max_headers);
                continue; /* an interim response; the final one follows */
            }
            ex->status = resp->status;
            ex->resp_head_done = true;
            ex->resp_body = resp->body;
            ex->resp_close = !(resp->flags & RM_HTTP1_F_KEEP_ALIVE);
            ex->resp_remaining = resp->content_length;
            if (resp->status == 101) {
                ex->phase = RM_EX_TUNNEL;
                ex->req_keepalive = false;
                /* The request timeout covered the handshake; the tunnel (a WebSocket) lives as
                 * long as both ends keep it open, as Envoy's route timeout stops at the upgrade. */
                ex->deadline = 0;
                /* Bytes the client sent after the handshake belong to the new protocol. */
                rm_exchange_on_downstream_data(ex);
                if (s->closing)
                    return;
                continue;
            }
            if (resp->body == RM_HTTP1_BODY_CHUNKED)
                rm_http1_chunked_init(&ex->resp_chunks);
            if (resp->body == RM_HTTP1_BODY_NONE ||
                (resp->body == RM_HTTP1_BODY_CONTENT_LENGTH && resp->content_length == 0)) {
                ex->resp_done = true;
                break;
            }
            continue;
        }
        if (c->in.len == 0 || s->out.len >= HIGH_WATER)
            return;
        rm_http1_body_t framing = ex->phase == RM_EX_TUNNEL ? RM_HTTP1_BODY_TUNNEL : ex->resp_body;
        rm_body_step_t st = rm_body_step(&c->in, framing, &ex->resp_remaining, &ex->resp_chunks,
                                         HIGH_WATER - s->out.len, sink_client, s);
        if (st == RM_BODY_ERROR) {
            rm_log_debug("upstream %s: bad chunked body: %s", ex->upstream->address,
                         ex->resp_chunks.error_reason);
            ex->resp_close = true;
            rm_session_close(s); /* response already started: truncate */
            return;
        }
        if (st == RM_BODY_DONE)
            ex->resp_done = true;
        else if (st == RM_BODY_WAIT)
            return;
    }
    if (ex->resp_done && !ex->finished)
        finish(ex);
}

static void finish(rm_exchange_t *ex)
{
    rm_session_t *s = ex->session;
    rm_worker_t *w = s->worker;
    if (ex->finished)
        return;
    ex->deadline = 0;
    if (ex->conn != NULL) {
        /* Reuse needs both messages complete, no stray bytes, and no close announced. */
        bool reusable = ex->req_done && ex->resp_done && !ex->resp_close &&
                        ex->resp_body != RM_HTTP1_BODY_UNTIL_CLOSE && ex->phase != RM_EX_TUNNEL;
        rm_upconn_release(ex->conn, reusable);
        ex->conn = NULL;
    }
    if (!ex->req_done)
        ex->req_keepalive = false; /* the rest of the request body is still on the wire */
    double dur = ev_now(w->loop) - ex->start;
    if (ex->retries > 0 && ex->status > 0 && ex->status < 500)
        rm_metrics_retry_success(w, ex->service_name, ex->version_name, ex->route_name);
    if (!ex->raw_tcp) {
        rm_metrics_request(w, ex->service_name, ex->version_name, ex->route_name, ex->status, dur);
        rm_access_log_write(ex, dur);
    }
    rm_session_exchange_done(s);
}

static void on_upstream_error(rm_exchange_t *ex, rm_upstream_failure_t kind, int err)
{
    rm_limits_connected(&ex->limits);
    (void)err;
    if (ex->phase == RM_EX_TUNNEL) {
        rm_session_close(ex->session);
        return;
    }
    if (ex->resp_started) {
        /* Mid-response: the only honest signal left is to cut the client connection. */
        rm_session_close(ex->session);
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
    switch (kind) {
    case RM_UPSTREAM_CONNECT_FAILED:
        local_reply(ex, 503, "upstream connect error", peer_error_marker(ex, true));
        break;
    case RM_UPSTREAM_TIMEOUT:
        local_reply(ex, 504, "upstream request timeout", NULL);
        break;
    case RM_UPSTREAM_PROTOCOL:
        local_reply(ex, 502, "upstream sent a malformed response", NULL);
        break;
    default:
        local_reply(ex, 502, "upstream connection reset before response",
                    peer_error_marker(ex, false));
        break;
    }
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
        ssize_t n = rm_conn_write_buf(&c->conn, &c->out);
        if (n < 0 && n != -EAGAIN) {
            on_upstream_error(ex, RM_UPSTREAM_RESET, (int)n);
            return;
        }
        if (n > 0)
            ex->bytes_sent += (size_t)n;
        if (ex->phase == RM_EX_TUNNEL && ex->client_close && c->out.len == 0)
            rm_conn_shutdown_write(&c->conn);
        pump_request_body(ex);
        if (ex->finished || s->closing || ex->conn != c)
            return;
    }
    if (revents & EV_READ) {
        ssize_t n = rm_conn_read_buf(&c->conn, &c->in, (size_t)64 * 1024);
        if (n == 0 || (n < 0 && n != -EAGAIN && n != RM_BUF_EFULL)) {
            if (ex->phase == RM_EX_TUNNEL) {
                pump_response(ex);
                if (s->closing)
                    return;
                s->close_after = true;
                rm_upconn_close(c);
                ex->conn = NULL;
                ex->resp_done = true;
                ex->req_done = true;
                finish(ex);
                return;
            }
            if (ex->resp_head_done && ex->resp_body == RM_HTTP1_BODY_UNTIL_CLOSE) {
                pump_response(ex); /* flush what is buffered; then the close ends the body */
                if (ex->finished || s->closing || ex->conn != c)
                    return;
                if (ex->conn->in.len == 0) {
                    ex->resp_done = true;
                    ex->resp_close = true;
                    finish(ex);
                }
                return;
            }
            pump_response(ex);
            if (ex->finished || s->closing || ex->conn != c)
                return;
            on_upstream_error(ex, RM_UPSTREAM_RESET, (int)n);
            return;
        }
        pump_response(ex);
        if (ex->finished || s->closing || ex->conn != c)
            return;
    }
    rm_upconn_update_events(c);
    rm_session_update_events(s);
}
