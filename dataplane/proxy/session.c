/* dataplane/proxy/session.c — downstream connections: bytes in and out through the transport,
 * request heads through the HTTP/1 codec (dataplane/codec/h1_server.h) to exchanges, timeouts.
 *
 * A session handles one request at a time (HTTP/1.1 has no multiplexing); pipelined requests
 * wait in the input buffer until the previous response is queued. The header timeout runs from
 * the first byte of a head until it is complete (408); the idle timeout runs between requests.
 * The exchange reaches the session only through rm_downstream_ops_t (the table at the end).
 */
#include "dataplane/proxy/session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter_ipv4.h>

/* linux/netfilter_ipv6/ip6_tables.h's value; that header does not build beside glibc's. */
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log/log.h"
#include "dataplane/proxy/deadline.h"
#include "dataplane/proxy/exchange.h"
#include "dataplane/proxy/list.h"
#include "dataplane/proxy/metrics.h"
#include "dataplane/proxy/upstream.h"
#include "dataplane/proxy/worker_state.h"
#include "dataplane/transport/transport.h"

/* Stop reading the client while this much response is waiting to be written to it. */
#define OUT_HIGH_WATER ((size_t)256 * 1024)

/* The largest admin reply (a /stats or /config_dump): past it the reply is a clear 500. */
#define ADMIN_OUT_LIMIT ((size_t)64 * 1024 * 1024)

static void session_io_cb(struct ev_loop *loop, ev_io *io, int revents);
static void session_timer_cb(struct ev_loop *loop, ev_timer *t, int revents);
static void session_process(rm_session_t *s);
static void session_linger(rm_session_t *s);

/* How long a closing connection keeps reading (and discarding) after its last response, so the
 * client reads that response instead of a reset caused by its own unread bytes. */
#define LINGER_SECONDS 1.0

static void peer_to_string(const struct sockaddr_storage *ss, char *out, size_t n)
{
    out[0] = '\0';
    if (ss->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out, (socklen_t)n);
    else if (ss->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, out, (socklen_t)n);
}

/* After an iptables REDIRECT the socket's local address is ours; the address the app dialled is
 * in SO_ORIGINAL_DST. When it equals our own listener, the app called us directly. */
static void read_original_dst(rm_session_t *s)
{
    struct sockaddr_storage dst, local;
    memset(&dst, 0, sizeof(dst));
    memset(&local, 0, sizeof(local));
    socklen_t dl = sizeof(dst), ll = sizeof(local);
    if (getsockname(s->conn.fd, (struct sockaddr *)&local, &ll) != 0)
        return;
    /* ip6tables' REDIRECT keeps the IPv6 destination under its own option. */
    if (local.ss_family == AF_INET6
            ? getsockopt(s->conn.fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &dst, &dl) != 0
            : getsockopt(s->conn.fd, SOL_IP, SO_ORIGINAL_DST, &dst, &dl) != 0)
        return;
    if (dst.ss_family == AF_INET && local.ss_family == AF_INET) {
        const struct sockaddr_in *d = (const struct sockaddr_in *)&dst;
        const struct sockaddr_in *l = (const struct sockaddr_in *)&local;
        if (d->sin_port == l->sin_port && d->sin_addr.s_addr == l->sin_addr.s_addr)
            return;
    }
    if (dst.ss_family == AF_INET6 && local.ss_family == AF_INET6) {
        const struct sockaddr_in6 *d = (const struct sockaddr_in6 *)&dst;
        const struct sockaddr_in6 *l = (const struct sockaddr_in6 *)&local;
        if (d->sin6_port == l->sin6_port &&
            memcmp(&d->sin6_addr, &l->sin6_addr, sizeof(d->sin6_addr)) == 0)
            return;
    }
    memcpy(&s->orig_dst, &dst, dl < sizeof(s->orig_dst) ? dl : sizeof(s->orig_dst));
    s->has_orig_dst = true;
}

static const rm_downstream_ops_t h1_downstream_ops;

/* Codec states kept per worker for the next request (beyond: freed). */
#define CODEC_KEEP ((int)(sizeof(((rm_worker_t *)0)->free_codecs) / sizeof(rm_h1_server_t *)))

/* The session's codec state, made when a request begins: an idle keep-alive connection holds
 * none (a third of its memory otherwise), as it holds no buffer memory. NULL when out of
 * memory. Loop thread. */
static rm_h1_server_t *session_codec(rm_session_t *s)
{
    if (s->h1 != NULL)
        return s->h1;
    rm_worker_t *w = s->worker;
    rm_h1_server_t *st =
        w->nfree_codecs > 0 ? w->free_codecs[--w->nfree_codecs] : malloc(sizeof(*st));
    if (st == NULL)
        return NULL;
    rm_h1_server_init(st, &s->in, &s->out, w->headers, sizeof(w->headers) / sizeof(w->headers[0]),
                      w->proxy->opt.max_head_bytes, w->proxy->opt.max_headers);
    s->h1 = st;
    return st;
}

/* The connection is idle (no request, no byte of the next): its codec state goes back. */
static void session_codec_release(rm_session_t *s)
{
    rm_worker_t *w = s->worker;
    if (s->h1 == NULL)
        return;
    if (w->nfree_codecs < CODEC_KEEP)
        w->free_codecs[w->nfree_codecs++] = s->h1;
    else
        free(s->h1);
    s->h1 = NULL;
}

void rm_session_free_codecs(rm_worker_t *w)
{
    while (w->nfree_codecs > 0)
        free(w->free_codecs[--w->nfree_codecs]);
}

rm_session_t *rm_session_new(rm_worker_t *w, int fd, rm_listener_kind_t kind,
                             rm_local_handler_t local_handler, const struct sockaddr_storage *peer,
                             socklen_t plen)
{
    rm_session_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    rm_conn_init_tcp(&s->conn, fd);
    s->kind = kind;
    s->worker = w;
    (void)plen;
    peer_to_string(peer, s->peer_ip, sizeof(s->peer_ip));
    rm_buf_init(&s->in, w->proxy->opt.buffer_limit);
    /* An admin reply is queued whole: a big mesh's /stats or /config_dump runs to megabytes,
     * and only the admin listener's few connections (worker.c bounds them) may hold that. */
    rm_buf_init(&s->out, kind == RM_LISTENER_ADMIN ? ADMIN_OUT_LIMIT
                                                   : w->proxy->opt.buffer_limit + OUT_HIGH_WATER);
    s->local_handler = local_handler;
    s->down = (rm_downstream_t){.ops = &h1_downstream_ops, .session = s};
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* Outbound: which service the app dialled. Inbound: which of the app's ports the caller
     * dialled (iptables sends every inbound port here), as Istio and Linkerd keep it. */
    if (kind != RM_LISTENER_ADMIN)
        read_original_dst(s);
    ev_io_init(&s->io, session_io_cb, fd, EV_READ);
    ev_timer_init(&s->timer, session_timer_cb, 0, 0);
    rm_list_push_back(&w->sessions, &s->link);
    if (kind == RM_LISTENER_ADMIN)
        w->nadmin_sessions++;
    else
        w->nsessions++;
    if (s->has_orig_dst && kind == RM_LISTENER_OUTBOUND &&
        (w->snap == NULL || rm_snapshot_service_by_addr(w->snap, &s->orig_dst.sa) == NULL)) {
        /* Redirected traffic for a destination the mesh does not know, in whatever protocol
         * (it may be a server-speaks-first one): a plain TCP tunnel, never dropped. */
        rm_h1_server_t *h1 = session_codec(s);
        if (h1 != NULL)
            rm_h1_server_tunnel(h1);
        s->ex = h1 != NULL ? rm_exchange_new_tunnel(s, &s->down) : NULL;
        if (s->ex == NULL) {
            rm_session_close(s);
            return s;
        }
        rm_exchange_start(s->ex);
        if (!s->closing)
            rm_session_update_events(s);
        return s;
    }
    rm_session_update_events(s);
    return s;
}

void rm_session_shutdown(rm_session_t *s)
{
    rm_worker_t *w = s->worker;
    ev_io_stop(w->loop, &s->io);
    ev_timer_stop(w->loop, &s->timer);
    if (s->ex != NULL) {
        rm_exchange_abort(s->ex);
        s->ex = NULL;
    }
    rm_conn_close(&s->conn);
}

void rm_session_free(rm_session_t *s)
{
    free(s->h1);
    rm_buf_free(&s->in);
    rm_buf_free(&s->out);
    free(s);
}

/* Bytes a client may pipeline behind a request in flight before we stop reading it. */
#define PIPELINE_READ_LIMIT ((size_t)16 * 1024)

static bool session_wants_read(const rm_session_t *s)
{
    if (s->read_eof || s->close_after)
        return false;
    if (s->ex != NULL) {
        /* Keep reading after the request is complete (so the watcher is not toggled for every
         * request), but only a little: pipelined requests wait in the buffer. */
        if (rm_exchange_request_done(s->ex))
            return s->in.len < PIPELINE_READ_LIMIT;
        return rm_exchange_wants_downstream_read(s->ex);
    }
    /* Between requests: read only when the previous response has mostly drained (pipelining
     * back-pressure) and the buffer has room for more head bytes. */
    return s->out.len < OUT_HIGH_WATER && rm_buf_room(&s->in) > 0;
}

void rm_session_update_events(rm_session_t *s)
{
    if (s->closing || s->lingering)
        return;
    rm_worker_t *w = s->worker;
    int have = ev_is_active(&s->io) ? (s->io.events & (EV_READ | EV_WRITE)) : 0;
    /* Optimistic write: most responses fit the socket buffer, so write now instead of asking
     * epoll for writability (two epoll_ctl calls saved per response). Errors are left for the
     * write watcher to find. */
    if (s->out.len > 0 && !(have & EV_WRITE)) {
        ssize_t n = rm_conn_write_buf(&s->conn, &s->out);
        if (n > 0 && s->out.len == 0) {
            rm_buf_release(&s->out);
            if (s->ex != NULL && s->ex->conn != NULL)
                rm_upconn_update_events(s->ex->conn); /* room again: resume the upstream */
            else if (s->close_after && s->ex == NULL) {
                session_linger(s);
                return;
            }
        }
    }
    int want = (session_wants_read(s) ? EV_READ : 0) | (s->out.len > 0 ? EV_WRITE : 0);
    if (want != have) {
        ev_io_stop(w->loop, &s->io);
        if (want) {
            ev_io_set(&s->io, s->conn.fd, rm_conn_poll_events(&s->conn, want));
            ev_io_start(w->loop, &s->io);
        }
    }
    rm_session_arm_timer(s);
}

/* The deadline of what the session waits for now: the exchange's, or the header or idle timeout
 * from the moment the wait began. 0 when there is none (a tunnel). */
static ev_tstamp session_deadline(const rm_session_t *s)
{
    const rm_proxy_options_t *o = &s->worker->proxy->opt;
    switch (s->waiting) {
    case RM_WAIT_EXCHANGE:
        return s->ex != NULL ? s->ex->deadline : 0;
    case RM_WAIT_HEAD:
        return s->wait_since + (ev_tstamp)o->header_timeout_ms / 1000.0;
    default:
        return s->wait_since + (ev_tstamp)o->idle_timeout_ms / 1000.0;
    }
}

void rm_session_arm_timer(rm_session_t *s)
{
    rm_worker_t *w = s->worker;
    int waiting = s->ex != NULL ? RM_WAIT_EXCHANGE : s->in.len > 0 ? RM_WAIT_HEAD : RM_WAIT_IDLE;
    if (waiting != s->waiting) {
        s->waiting = (uint8_t)waiting;
        s->wait_since = ev_now(w->loop);
    }
    rm_deadline_arm(w->loop, &s->timer, session_deadline(s), w->timer_slice);
}

/* Inbound connections of a draining sidecar close after their response: the caller's sidecar
 * then opens its next connection to a pod that stays. */
static bool draining_inbound(const rm_session_t *s)
{
    return rm_worker_draining(s->worker) && s->kind == RM_LISTENER_INBOUND;
}

void rm_session_reply(rm_session_t *s, int status, const rm_field_t *extra, size_t nextra,
                      const char *content_type, const char *body, size_t body_len, bool close_after)
{
    close_after = close_after || draining_inbound(s);
    rm_h1_server_t *h1 = session_codec(s);
    if (h1 == NULL || rm_h1_server_write_reply(h1, status, extra, nextra,
                                               content_type ? content_type : "text/plain", body,
                                               body_len, close_after) != 0) {
        rm_session_close(s);
        return;
    }
    if (h1->close)
        s->close_after = true;
}

/* Answers a malformed or refused head with its status and closes: after a framing error the
 * rest of the stream cannot be trusted (it could be a smuggled request). */
static void reject_head(rm_session_t *s, int status, const char *reason)
{
    char body[256];
    int n = snprintf(body, sizeof(body), "%s\n", reason ? reason : rm_http1_reason_phrase(status));
    rm_session_reply(s, status, NULL, 0, NULL, body, (size_t)n, true);
    rm_metrics_request(s->worker, "", "", "", status, 0);
    rm_buf_consume(&s->in, s->in.len);
}

void rm_session_exchange_done(rm_session_t *s)
{
    rm_exchange_t *ex = s->ex;
    bool keep = ex != NULL && rm_exchange_keepalive(ex) && s->h1 != NULL && !s->h1->close;
    if (ex != NULL) {
        s->ex = NULL;
        rm_exchange_free(ex);
    }
    s->requests++;
    if (s->in.len == 0) { /* an idle keep-alive connection holds no buffer or codec memory */
        rm_buf_release(&s->in);
        session_codec_release(s);
    }
    if (!keep)
        s->close_after = true;
    if (s->close_after) {
        rm_buf_consume(&s->in, s->in.len); /* pipelined requests after a close are dropped */
        if (s->out.len == 0) {
            session_linger(s);
            return;
        }
        rm_session_update_events(s);
        return;
    }
    if (s->h1 != NULL)
        rm_h1_server_next(s->h1);
    session_process(s); /* a pipelined request may already be buffered */
}

/* Tries to parse a head from the input buffer and starts its exchange. */
static void session_process(rm_session_t *s)
{
    /* Pipelined requests answered at once (local replies) finish their exchange inside
     * rm_exchange_start, whose end starts the next request: that call comes back here, and
     * returns, and this loop takes the next one. Recursing instead went one stack frame deeper
     * per request: thousands deep for one write of pipelined requests. */
    if (s->processing)
        return;
    s->processing = true;
    while (!s->closing && s->ex == NULL && !s->close_after && s->in.len > 0) {
        /* Responses pile up unsent: write them now, and stop taking requests while the client
         * does not read them (the write watcher resumes this through session_write). */
        if (s->out.len >= OUT_HIGH_WATER &&
            (rm_conn_write_buf(&s->conn, &s->out) <= 0 || s->out.len >= OUT_HIGH_WATER))
            break;
        rm_h1_server_t *h1 = session_codec(s);
        if (h1 == NULL) {
            rm_session_close(s);
            return;
        }
        rm_request_head_t head;
        int status = 0;
        const char *reason = NULL;
        int n = rm_h1_server_read_head(h1, &head, &status, &reason);
        if (n == 0)
            break;
        if (n < 0) {
            reject_head(s, status, reason);
            break;
        }
        if (s->local_handler != NULL) {
            s->local_handler(s, &head);
            rm_h1_server_head_consumed(h1, (size_t)n);
            s->requests++;
            rm_h1_server_next(h1);
            continue;
        }
        /* The exchange copies the head, then its bytes are consumed. */
        rm_exchange_t *ex = rm_exchange_new(s, &s->down, &head);
        if (ex == NULL) {
            reject_head(s, 503, "out of memory");
            break;
        }
        rm_h1_server_head_consumed(h1, (size_t)n);
        s->ex = ex;
        rm_exchange_start(ex); /* may finish synchronously (local reply): then the loop goes on */
    }
    s->processing = false;
    if (!s->closing)
        rm_session_update_events(s);
}

static void session_read(rm_session_t *s)
{
    ssize_t n = rm_conn_read_buf(&s->conn, &s->in, (size_t)64 * 1024);
    if (n == -EAGAIN || n == RM_BUF_EFULL) {
        if (n == RM_BUF_EFULL && s->ex == NULL)
            session_process(s);
        return;
    }
    if (n <= 0) {
        s->read_eof = true;
        if (s->ex != NULL) {
            rm_exchange_on_downstream_eof(s->ex);
            return;
        }
        if (s->out.len == 0) {
            rm_session_close(s);
            return;
        }
        s->close_after = true;
        rm_session_update_events(s);
        return;
    }
    if (s->ex != NULL)
        rm_exchange_on_downstream_data(s->ex);
    else
        session_process(s);
}

static void session_write(rm_session_t *s)
{
    ssize_t n = rm_conn_write_buf(&s->conn, &s->out);
    if (n < 0 && n != -EAGAIN) {
        rm_session_close(s); /* the client went away; an exchange in progress is aborted */
        return;
    }
    if (s->out.len == 0) {
        rm_buf_release(&s->out);
        if (s->close_after && s->ex == NULL) {
            session_linger(s);
            return;
        }
    }
    if (s->ex != NULL)
        rm_exchange_on_downstream_drained(s->ex);
    else
        session_process(s);
}

static void linger_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    rm_session_t *s = container_of(io, rm_session_t, io);
    char scratch[16384];
    for (int i = 0; i < 16; i++) {
        ssize_t n = s->conn.ops->recv(&s->conn, scratch, sizeof(scratch));
        if (n > 0)
            continue;
        if (n == -EAGAIN)
            return;
        break; /* EOF or error: the client has seen our close */
    }
    rm_session_close(s);
}

static void linger_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    rm_session_close(container_of(t, rm_session_t, timer));
}

/* The last response is written: half-close and discard input briefly before closing. */
static void session_linger(rm_session_t *s)
{
    rm_worker_t *w = s->worker;
    if (s->lingering)
        return;
    s->lingering = true;
    rm_buf_free(&s->in);
    rm_conn_shutdown_write(&s->conn);
    ev_io_stop(w->loop, &s->io);
    ev_set_cb(&s->io, linger_io_cb);
    ev_io_set(&s->io, s->conn.fd, rm_conn_poll_events(&s->conn, EV_READ));
    ev_io_start(w->loop, &s->io);
    ev_timer_stop(w->loop, &s->timer);
    ev_set_cb(&s->timer, linger_timer_cb);
    ev_timer_set(&s->timer, LINGER_SECONDS, 0);
    ev_timer_start(w->loop, &s->timer);
}

static void session_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    rm_session_t *s = container_of(io, rm_session_t, io);
    if (revents & EV_WRITE) {
        session_write(s);
        if (s->closing)
            return;
    }
    if (revents & EV_READ)
        session_read(s);
    if (!s->closing && s->ex == NULL && s->in.len == 0) {
        rm_buf_release(&s->in); /* idle connections hold no buffer or codec memory */
        if (!s->close_after)
            session_codec_release(s);
    }
}

static void session_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    rm_session_t *s = container_of(t, rm_session_t, timer);
    ev_tstamp due = session_deadline(s);
    if (!rm_deadline_passed(due, ev_now(loop))) {
        rm_deadline_arm(loop, t, due, s->worker->timer_slice); /* woke early: the rest */
        return;
    }
    if (s->ex != NULL) {
        rm_exchange_on_timeout(s->ex);
        return;
    }
    if (s->waiting == RM_WAIT_HEAD && !s->close_after) {
        reject_head(s, 408, "request head not received in time");
        rm_session_update_events(s);
        return;
    }
    rm_session_close(s);
}

void rm_session_close(rm_session_t *s)
{
    if (s->closing)
        return;
    rm_session_shutdown(s);
    s->closing = true;
    rm_list_remove(&s->link);
    rm_list_push_back(&s->worker->dead, &s->link);
    if (s->kind == RM_LISTENER_ADMIN)
        s->worker->nadmin_sessions--;
    else
        s->worker->nsessions--;
}

/* The exchange's view of an HTTP/1 session (proxy-t.h's rm_downstream_ops_t). */

/* Stop moving response bytes into the session while this much waits to be written. */
#define DOWNSTREAM_HIGH_WATER ((size_t)64 * 1024)

static rm_body_event_t h1_body_next(rm_downstream_t *d, size_t room, rm_span_t *data)
{
    return rm_h1_server_body_next(d->session->h1, room, data);
}

static void h1_body_consume(rm_downstream_t *d)
{
    rm_h1_server_body_consume(d->session->h1);
}

static int h1_write_head(rm_downstream_t *d, const rm_response_head_t *h,
                         const rm_field_edit_t *edit, bool close)
{
    rm_session_t *s = d->session;
    int rc = rm_h1_server_write_head(s->h1, h, edit, close || draining_inbound(s));
    if (rc == 0 && s->h1->close && !(h->flags & RM_MSG_F_INTERIM) && h->status != 101)
        s->close_after = true;
    return rc;
}

static int h1_write_data(rm_downstream_t *d, const char *p, size_t n)
{
    return rm_h1_server_write_data(d->session->h1, p, n);
}

static int h1_write_end(rm_downstream_t *d)
{
    return rm_h1_server_write_end(d->session->h1);
}

static size_t h1_write_room(const rm_downstream_t *d)
{
    return rm_h1_server_write_room(d->session->h1, DOWNSTREAM_HIGH_WATER);
}

static void h1_reply(rm_downstream_t *d, int status, const rm_field_t *extra, size_t nextra,
                     const char *body, size_t len, bool close)
{
    rm_session_reply(d->session, status, extra, nextra, "text/plain", body, len, close);
}

static void h1_update(rm_downstream_t *d)
{
    if (!d->session->closing)
        rm_session_update_events(d->session);
}

static void h1_finished(rm_downstream_t *d)
{
    rm_session_exchange_done(d->session);
}

static void h1_abort(rm_downstream_t *d)
{
    rm_session_close(d->session);
}

static const rm_downstream_ops_t h1_downstream_ops = {
    .body_next = h1_body_next,
    .body_consume = h1_body_consume,
    .write_head = h1_write_head,
    .write_data = h1_write_data,
    .write_end = h1_write_end,
    .write_room = h1_write_room,
    .reply = h1_reply,
    .update = h1_update,
    .finished = h1_finished,
    .abort = h1_abort,
};
