/* dataplane/proxy/session.c — downstream connections: read heads, dispatch, write responses.
 *
 * A session handles one request at a time (HTTP/1.1 has no multiplexing); pipelined requests
 * wait in the input buffer until the previous response is queued. The header timeout runs from
 * the first byte of a head until it is complete (408); the idle timeout runs between requests.
 */
#include "dataplane/proxy/session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log/log.h"
#include "dataplane/proxy/admin.h"
#include "dataplane/proxy/deadline.h"
#include "dataplane/proxy/exchange.h"
#include "dataplane/proxy/list.h"
#include "dataplane/proxy/metrics.h"
#include "dataplane/proxy/upstream.h"
#include "dataplane/proxy/worker.h"
#include "dataplane/transport/transport.h"

/* Stop reading the client while this much response is waiting to be written to it. */
#define OUT_HIGH_WATER ((size_t)256 * 1024)

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
    if (getsockopt(s->conn.fd, SOL_IP, SO_ORIGINAL_DST, &dst, &dl) != 0)
        return;
    if (getsockname(s->conn.fd, (struct sockaddr *)&local, &ll) != 0)
        return;
    if (dst.ss_family == AF_INET && local.ss_family == AF_INET) {
        const struct sockaddr_in *d = (const struct sockaddr_in *)&dst;
        const struct sockaddr_in *l = (const struct sockaddr_in *)&local;
        if (d->sin_port == l->sin_port && d->sin_addr.s_addr == l->sin_addr.s_addr)
            return;
    }
    memcpy(&s->orig_dst, &dst, dl < sizeof(s->orig_dst) ? dl : sizeof(s->orig_dst));
    s->has_orig_dst = true;
}

rm_session_t *rm_session_new(rm_worker_t *w, int fd, rm_listener_kind_t kind,
                             const struct sockaddr_storage *peer, socklen_t plen)
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
    rm_buf_init(&s->out, w->proxy->opt.buffer_limit + OUT_HIGH_WATER);
    rm_http1_request_init(&s->req, w->headers, w->proxy->opt.max_headers);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (kind == RM_LISTENER_OUTBOUND)
        read_original_dst(s);
    ev_io_init(&s->io, session_io_cb, fd, EV_READ);
    ev_timer_init(&s->timer, session_timer_cb, 0, 0);
    rm_list_push_back(&w->sessions, &s->link);
    w->nsessions++;
    if (s->has_orig_dst &&
        (w->snap == NULL || rm_snapshot_service_by_addr(w->snap, &s->orig_dst.sa) == NULL)) {
        /* Redirected traffic for a destination the mesh does not know, in whatever protocol
         * (it may be a server-speaks-first one): a plain TCP tunnel, never dropped. */
        s->ex = rm_exchange_new_tunnel(s);
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

void rm_session_reply(rm_session_t *s, int status, const char *extra_headers,
                      const char *content_type, const char *body, size_t body_len, bool close_after)
{
    if (rm_worker_draining(s->worker) && s->kind == RM_LISTENER_INBOUND)
        close_after = true;
    int rc = rm_buf_printf(
        &s->out, "HTTP/1.1 %d %s\r\ncontent-length: %zu\r\ncontent-type: %s\r\n%s%s\r\n", status,
        rm_http1_reason_phrase(status), body_len, content_type ? content_type : "text/plain",
        extra_headers ? extra_headers : "", close_after ? "connection: close\r\n" : "");
    if (rc == 0)
        rc = rm_buf_append(&s->out, body, body_len);
    if (rc != 0) {
        rm_session_close(s);
        return;
    }
    if (close_after)
        s->close_after = true;
}

/* Answers a malformed or refused head with its status and closes: after a framing error the
 * rest of the stream cannot be trusted (it could be a smuggled request). */
static void reject_head(rm_session_t *s, int status, const char *reason)
{
    char body[256];
    int n = snprintf(body, sizeof(body), "%s\n", reason ? reason : rm_http1_reason_phrase(status));
    rm_session_reply(s, status, NULL, NULL, body, (size_t)n, true);
    rm_metrics_request(s->worker, "", "", "", status, 0);
    rm_buf_consume(&s->in, s->in.len);
}

void rm_session_exchange_done(rm_session_t *s)
{
    rm_exchange_t *ex = s->ex;
    bool keep = ex != NULL && rm_exchange_keepalive(ex);
    if (ex != NULL) {
        s->ex = NULL;
        rm_exchange_free(ex);
    }
    s->requests++;
    if (s->in.len == 0)
        rm_buf_release(&s->in); /* an idle keep-alive connection holds no buffer memory */
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
    rm_http1_request_init(&s->req, s->worker->headers, s->worker->proxy->opt.max_headers);
    session_process(s); /* a pipelined request may already be buffered */
}

/* Tries to parse a head from the input buffer and starts its exchange. */
static void session_process(rm_session_t *s)
{
    while (!s->closing && s->ex == NULL && !s->close_after && s->in.len > 0) {
        rm_http1_limits_t lim;
        rm_http1_limits_init(&lim);
        lim.max_head_bytes = s->worker->proxy->opt.max_head_bytes;
        lim.max_headers = s->worker->proxy->opt.max_headers;
        int n = rm_http1_parse_request(rm_buf_head(&s->in), s->in.len, &s->req, &lim);
        if (n == RM_HTTP1_INCOMPLETE) {
            if (rm_buf_room(&s->in) == 0 || s->in.len >= lim.max_head_bytes)
                reject_head(s, 431, "request head too large");
            break;
        }
        if (n < 0) {
            reject_head(s, s->req.error_status, s->req.error_reason);
            break;
        }
        if (s->kind == RM_LISTENER_ADMIN) {
            rm_admin_handle(s, &s->req);
            rm_buf_consume(&s->in, (size_t)n);
            s->requests++;
            rm_http1_request_init(&s->req, s->worker->headers, s->worker->proxy->opt.max_headers);
            continue;
        }
        /* The exchange copies what it needs from the head, then the head bytes are consumed. */
        rm_exchange_t *ex = rm_exchange_new(s, &s->req, (size_t)n);
        if (ex == NULL) {
            reject_head(s, 503, "out of memory");
            break;
        }
        s->ex = ex;
        rm_exchange_start(ex); /* may finish synchronously (local reply) */
        return;
    }
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
    if (!s->closing && s->ex == NULL && s->in.len == 0)
        rm_buf_release(&s->in); /* idle connections hold no buffer memory */
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
