/* dataplane/proxy/upstream.c — endpoint state table and upstream connection pools. */
#include "dataplane/proxy/upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log/log.h"
#include "dataplane/proxy/deadline.h"
#include "dataplane/policy/limits.h"
#include "dataplane/proxy/list.h"
#include "dataplane/proxy/metrics.h"
#include "dataplane/proxy/tcp_tuning.h"
#include "dataplane/snapshot/hash.h"
#include "dataplane/transport/transport.h"

/* Fixed bucket count with chaining: a sidecar talks to tens or hundreds of endpoints. */
#define UTABLE_INITIAL 256

/* Raw addresses (inbound app, passthrough) get a key from their bytes; the top bit keeps them
 * apart from snapshot endpoint keys in practice, and lookups compare keys only. */
static uint64_t addr_key(const struct sockaddr *sa, socklen_t len)
{
    return rm_hash64(sa, len) | 1ULL << 63;
}

rm_upstream_t *rm_upstream_find(rm_worker_t *w, uint64_t key)
{
    if (w->utable == NULL)
        return NULL;
    for (rm_upstream_t *u = w->utable[key & (w->utable_size - 1)]; u != NULL; u = u->hnext)
        if (u->key == key)
            return u;
    return NULL;
}

static rm_upstream_t *upstream_insert(rm_worker_t *w, uint64_t key, const struct sockaddr *sa,
                                      socklen_t len)
{
    if (w->utable == NULL) {
        w->utable = calloc(UTABLE_INITIAL, sizeof(rm_upstream_t *));
        if (w->utable == NULL)
            return NULL;
        w->utable_size = UTABLE_INITIAL;
    }
    rm_upstream_t *u = calloc(1, sizeof(*u));
    if (u == NULL)
        return NULL;
    u->key = key;
    memcpy(&u->addr, sa, len);
    u->addrlen = len;
    rm_list_init(&u->idle);
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
        snprintf(u->address, sizeof(u->address), "%s:%d", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
        snprintf(u->address, sizeof(u->address), "[%s]:%d", host, port);
    }
    size_t b = key & (w->utable_size - 1);
    u->hnext = w->utable[b];
    w->utable[b] = u;
    return u;
}

rm_upstream_t *rm_upstream_get(rm_worker_t *w, const rm_endpoint_ref_t *ep)
{
    rm_upstream_t *u = rm_upstream_find(w, ep->key);
    if (u == NULL) {
        u = upstream_insert(w, ep->key, (const struct sockaddr *)&ep->addr, ep->addrlen);
        if (u != NULL) {
            u->from_snapshot = true;
            u->generation_seen = w->snap_generation;
        }
    }
    return u;
}

rm_upstream_t *rm_upstream_get_addr(rm_worker_t *w, const struct sockaddr *sa, socklen_t len)
{
    uint64_t key = addr_key(sa, len);
    rm_upstream_t *u = rm_upstream_find(w, key);
    if (u != NULL)
        return u;
    return upstream_insert(w, key, sa, len);
}

static void upconn_free(rm_upconn_t *c)
{
    rm_worker_t *w = c->worker;
    ev_io_stop(w->loop, &c->io);
    ev_timer_stop(w->loop, &c->timer);
    rm_conn_close(&c->conn);
    rm_list_remove(&c->link); /* harmless when not pooled: the link is self-linked */
    rm_limits_connection_closed(c->up->key);
    rm_metrics_upstream_connections(w, -1);
    rm_buf_free(&c->in);
    rm_buf_free(&c->out);
    free(c);
}

void rm_upconn_close(rm_upconn_t *c)
{
    // NOLINTNEXTLINE(clang-analyzer-unix.Malloc): see list.h (drain loops re-read the head)
    if (c->owner == NULL && !rm_list_empty(&c->link))
        c->up->idle_count--;
    upconn_free(c);
}

/* An idle pooled connection became readable or timed out: the server closed it, sent something
 * unsolicited, or it idled too long. In every case it can no longer be trusted: close it. */
static void idle_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    rm_upconn_close(container_of(io, rm_upconn_t, io));
}

static ev_tstamp idle_deadline(const rm_upconn_t *c)
{
    return c->idle_since + (ev_tstamp)c->worker->proxy->opt.upstream_idle_timeout_ms / 1000.0;
}

/* The timer may be one armed in an earlier idle period (deadline.h): close only when this
 * period's idle timeout has passed. */
static void idle_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    rm_upconn_t *c = container_of(t, rm_upconn_t, timer);
    ev_tstamp due = idle_deadline(c);
    if (!rm_deadline_passed(due, ev_now(loop))) {
        rm_deadline_arm(loop, t, due, due - ev_now(loop));
        return;
    }
    rm_upconn_close(c);
}

/* A pooled connection waits for READ while idle, so a server's close (EOF) or unsolicited bytes
 * show up as a pending idle watcher once the loop has polled. Whether it may be reused:
 * - its watcher is pending: the server closed it or broke the protocol — never reuse;
 * - it idled for a while (RM_POOL_PEEK_AFTER): servers close such connections on their own
 *   keep-alive timeouts, so a non-blocking peek looks for an EOF that arrived since the poll;
 * - it idled briefly: reuse. Only a close that arrived after this loop iteration's poll escapes,
 *   the same race any client has with a closing server, and reset/connect retries cover it.
 * The peek used to run for every reuse: one syscall in five of a proxied request. */
#define RM_POOL_PEEK_AFTER 1.0

static bool pooled_still_open(rm_upconn_t *c)
{
    if (ev_is_pending(&c->io))
        return false;
    /* After a response without a body (HEAD, 204, 304) a broken app's stray body bytes may
     * still be on their way: peek at once, or they would be read as the next caller's
     * response. Such responses are rare enough for the syscall. */
    if (ev_now(c->worker->loop) - c->idle_since < RM_POOL_PEEK_AFTER && !c->peek_before_reuse)
        return true;
    c->peek_before_reuse = false;
    char b;
    /* At the socket, under any transport: pending bytes (TLS's close_notify too) or an EOF both
     * mean the connection cannot be reused. */
    ssize_t n = recv(c->conn.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static void busy_io_cb(struct ev_loop *loop, ev_io *io, int revents);
static void busy_timer_cb(struct ev_loop *loop, ev_timer *t, int revents);

/* Hands the connection to its owner. The I/O watcher stays registered (a pooled connection
 * already waits for READ, which the exchange wants too) and so does the idle timer (its callback
 * ignores a busy connection): only callbacks change, so reuse costs no epoll_ctl and no timer
 * heap operation. */
static void attach(rm_upconn_t *c, const rm_upconn_owner_ops_t *ops, void *owner)
{
    c->owner_ops = ops;
    c->owner = owner;
    ev_set_cb(&c->io, busy_io_cb);
    ev_set_cb(&c->timer, busy_timer_cb);
}

static rm_upconn_t *take_pooled(rm_worker_t *w, rm_upstream_t *up, const rm_upconn_owner_ops_t *ops,
                                void *owner)
{
    while (!rm_list_empty(&up->idle)) {
        rm_upconn_t *c = container_of(up->idle.next, rm_upconn_t, link);
        rm_list_remove(&c->link);
        up->idle_count--;
        if (!pooled_still_open(c)) {
            rm_metrics_pool_stale(w);
            upconn_free(c);
            continue;
        }
        attach(c, ops, owner);
        c->reused = true;
        rm_upconn_update_events(c);
        return c;
    }
    return NULL;
}

static rm_upconn_t *connect_new(rm_worker_t *w, rm_upstream_t *up, const rm_upconn_owner_ops_t *ops,
                                void *owner, int *err)
{
    int fd = socket(up->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = -errno;
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (rm_addr_is_loopback((struct sockaddr *)&up->addr))
        rm_tcp_use_loopback_congestion(fd);
    int rc;
    do {
        rc = connect(fd, (struct sockaddr *)&up->addr, up->addrlen);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0 && errno != EINPROGRESS) {
        *err = -errno;
        close(fd);
        return NULL;
    }
    rm_upconn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        *err = -ENOMEM;
        close(fd);
        return NULL;
    }
    rm_conn_init_tcp(&c->conn, fd);
    c->up = up;
    c->worker = w;
    c->connected = rc == 0;
    rm_list_init(&c->link);
    rm_buf_init(&c->in, w->proxy->opt.buffer_limit);
    rm_buf_init(&c->out, w->proxy->opt.buffer_limit);
    /* One protocol per pool today: HTTP/1, one request at a time per connection. */
    c->codec = &rm_upstream_codec_h1;
    rm_h1_client_init(&c->h1, &c->in, &c->out, w->headers,
                      sizeof(w->headers) / sizeof(w->headers[0]), w->proxy->opt.max_headers);
    ev_io_init(&c->io, busy_io_cb, fd, EV_WRITE);
    ev_timer_init(&c->timer, busy_timer_cb, 0, 0);
    rm_limits_connection_opened(up->key);
    rm_metrics_upstream_connections(w, 1);
    attach(c, ops, owner);
    if (!c->connected) {
        ev_timer_set(&c->timer, (double)w->proxy->opt.connect_timeout_ms / 1000.0, 0);
        ev_timer_start(w->loop, &c->timer);
    }
    rm_upconn_update_events(c);
    return c;
}

rm_upconn_t *rm_upstream_stream(rm_worker_t *w, rm_upstream_t *up, const rm_upconn_owner_ops_t *ops,
                                void *owner, bool fresh, const char **refused, int *err)
{
    *refused = NULL;
    rm_upconn_t *c = fresh ? NULL : take_pooled(w, up, ops, owner);
    if (c != NULL)
        return c;
    if (ops->may_connect != NULL && (*refused = ops->may_connect(owner)) != NULL)
        return NULL;
    return connect_new(w, up, ops, owner, err);
}

ssize_t rm_upconn_flush(rm_upconn_t *c)
{
    ssize_t n = rm_conn_write_buf(&c->conn, &c->out);
    if (n > 0 && c->owner_ops != NULL && c->owner_ops->on_sent != NULL)
        c->owner_ops->on_sent(c->owner, (size_t)n);
    return n;
}

void rm_upconn_release(rm_upconn_t *c, bool reusable)
{
    rm_worker_t *w = c->worker;
    c->owner_ops = NULL;
    c->owner = NULL;
    c->requests++;
    /* Never pool past the bound (upstream.h): the idle timeout trims what load left behind. */
    if (!reusable || w->draining || c->in.len > 0 || c->out.len > 0 ||
        c->up->idle_count >= RM_UPSTREAM_MAX_IDLE) {
        upconn_free(c);
        return;
    }
    rm_buf_release(&c->in);
    rm_buf_release(&c->out);
    ev_set_cb(&c->io, idle_io_cb);
    if (!ev_is_active(&c->io) || c->io.events != EV_READ) {
        ev_io_stop(w->loop, &c->io);
        ev_io_set(&c->io, c->conn.fd, rm_conn_poll_events(&c->conn, EV_READ));
        ev_io_start(w->loop, &c->io);
    }
    ev_set_cb(&c->timer, idle_timer_cb);
    c->idle_since = ev_now(w->loop);
    ev_tstamp due = idle_deadline(c);
    rm_deadline_arm(w->loop, &c->timer, due, due - c->idle_since); /* usually armed already */
    rm_list_push_front(&c->up->idle, &c->link);
    c->up->idle_count++;
}

static void busy_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    rm_upconn_t *c = container_of(io, rm_upconn_t, io);
    if (!c->connected) {
        int soerr = 0;
        socklen_t l = sizeof(soerr);
        getsockopt(c->conn.fd, SOL_SOCKET, SO_ERROR, &soerr, &l);
        if (soerr != 0) {
            c->owner_ops->on_connect_failed(c->owner, -soerr);
            return;
        }
        c->connected = true;
        ev_timer_stop(c->worker->loop, &c->timer);
    }
    c->owner_ops->on_io(c->owner, revents);
}

static void busy_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    rm_upconn_t *c = container_of(t, rm_upconn_t, timer);
    if (c->connected)
        return; /* an idle timer left from the pool (attach): the exchange keeps its own */
    c->owner_ops->on_connect_failed(c->owner, -ETIMEDOUT);
}

void rm_upconn_update_events(rm_upconn_t *c)
{
    int have = ev_is_active(&c->io) ? c->io.events & (EV_READ | EV_WRITE) : 0;
    int want = 0;
    if (!c->connected) {
        want = EV_WRITE;
    } else {
        /* Optimistic write, as for sessions: only wait for writability when the socket is full.
         * A failed write leaves the bytes queued; the write watcher then meets the error. */
        if (c->out.len > 0 && !(have & EV_WRITE))
            rm_upconn_flush(c);
        if (c->out.len > 0)
            want |= EV_WRITE;
        if (c->owner_ops != NULL && c->owner_ops->wants_read(c->owner))
            want |= EV_READ;
    }
    if (want == have)
        return;
    ev_io_stop(c->worker->loop, &c->io);
    if (want) {
        ev_io_set(&c->io, c->conn.fd, rm_conn_poll_events(&c->conn, want));
        ev_io_start(c->worker->loop, &c->io);
    }
}

void rm_upstream_close_idle(rm_worker_t *w, rm_upstream_t *only)
{
    for (size_t b = 0; b < w->utable_size; b++) {
        for (rm_upstream_t *u = w->utable[b]; u != NULL; u = u->hnext) {
            if (only != NULL && u != only)
                continue;
            while (!rm_list_empty(&u->idle))
                rm_upconn_close(container_of(u->idle.next, rm_upconn_t, link));
        }
    }
}

void rm_upstream_table_free(rm_worker_t *w)
{
    rm_upstream_close_idle(w, NULL);
    for (size_t b = 0; b < w->utable_size; b++) {
        rm_upstream_t *u = w->utable[b];
        while (u != NULL) {
            rm_upstream_t *n = u->hnext;
            free(u);
            u = n;
        }
    }
    free(w->utable);
    w->utable = NULL;
    w->utable_size = 0;
}
