/* dataplane/proxy/worker.c — the per-thread loop: listeners, accept, snapshot refresh, drain,
 * and the reaper that frees closed sessions. */
#include "dataplane/proxy/worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log/log.h"
#include "dataplane/buffer/buffer.h"
#include "dataplane/proxy/admin.h"
#include "dataplane/proxy/exchange.h"
#include "dataplane/proxy/list.h"
#include "dataplane/proxy/metrics.h"
#include "dataplane/proxy/session.h"
#include "dataplane/proxy/tcp_tuning.h"
#include "dataplane/proxy/upstream.h"

/* Opens a listening socket. local_only: every connection it accepts comes over the loopback
 * device (the outbound listener serves the pod's own app; any listener bound to a loopback
 * address), so they get the loopback congestion control (tcp_tuning.h). */
static int listen_on(const char *host, int port, bool local_only, int *out_fd)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        len = sizeof(*in);
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        len = sizeof(*in6);
    } else {
        return -EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (ss.ss_family == AF_INET6) /* "::" beside "0.0.0.0": each family its own listener */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (local_only || rm_addr_is_loopback((struct sockaddr *)&ss))
        rm_tcp_use_loopback_congestion(fd);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 4096) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    *out_fd = fd;
    return 0;
}

static void accept_cb(struct ev_loop *loop, ev_io *io, int revents);

static int add_listener(rm_worker_t *w, rm_listener_kind_t kind, int port)
{
    static const char *const names[] = {"outbound", "inbound", "admin"};
    if (port <= 0)
        return 0;
    rm_listener_t *l = &w->listeners[w->nlisteners];
    int rc = listen_on(w->proxy->opt.listen_host, port, kind == RM_LISTENER_OUTBOUND, &l->fd);
    if (rc < 0) {
        rm_log_error("cannot listen on %s:%d (%s): %s", w->proxy->opt.listen_host, port,
                     names[kind], strerror(-rc));
        return rc;
    }
    l->kind = kind;
    l->worker = w;
    ev_io_init(&l->io, accept_cb, l->fd, EV_READ);
    w->nlisteners++;
    /* Bound to every IPv4 address, the data listeners take IPv6 too: in a dual-stack pod
     * remora-init redirects the app's IPv6 traffic here as well (ip6tables). Where the pod has
     * no IPv6, that listener is simply not there. */
    if (kind != RM_LISTENER_ADMIN && strcmp(w->proxy->opt.listen_host, "0.0.0.0") == 0) {
        rm_listener_t *l6 = &w->listeners[w->nlisteners];
        rc = listen_on("::", port, kind == RM_LISTENER_OUTBOUND, &l6->fd);
        if (rc < 0) {
            if (w->id == 0)
                rm_log_info("no IPv6 %s listener on [::]:%d: %s", names[kind], port, strerror(-rc));
            l6->fd = -1;
            return 0;
        }
        l6->kind = kind;
        l6->worker = w;
        ev_io_init(&l6->io, accept_cb, l6->fd, EV_READ);
        w->nlisteners++;
    }
    return 0;
}

static void close_listeners(rm_worker_t *w, bool keep_admin)
{
    for (int i = 0; i < w->nlisteners; i++) {
        rm_listener_t *l = &w->listeners[i];
        if (l->fd < 0 || (keep_admin && l->kind == RM_LISTENER_ADMIN))
            continue;
        ev_io_stop(w->loop, &l->io);
        close(l->fd);
        l->fd = -1;
    }
}

/* Accept at most this many connections per wake-up so one busy listener cannot starve the
 * others (or in-flight requests) on the same loop. */
#define ACCEPT_BATCH 64

/* Admin connections are counted apart from --max-connections (so they can never use up the
 * app's room, nor the app theirs) and bounded on their own: a stats scraper and an operator need a
 * handful. */
#define ADMIN_MAX_CONNECTIONS 64

/* Out of file descriptors, accept fails at once and the listener stays readable: polling it again
 * would spin the loop at 100% CPU. Accepting pauses this long instead (nginx disables accept
 * events the same way), and in-flight requests go on closing descriptors meanwhile. */
#define ACCEPT_PAUSE_S 0.1

static void pause_accepting(rm_worker_t *w)
{
    if (ev_is_active(&w->accept_pause))
        return;
    for (int i = 0; i < w->nlisteners; i++)
        if (w->listeners[i].fd >= 0)
            ev_io_stop(w->loop, &w->listeners[i].io);
    ev_timer_set(&w->accept_pause, ACCEPT_PAUSE_S, 0);
    ev_timer_start(w->loop, &w->accept_pause);
}

static void accept_pause_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    rm_worker_t *w = container_of(t, rm_worker_t, accept_pause);
    for (int i = 0; i < w->nlisteners; i++)
        if (w->listeners[i].fd >= 0)
            ev_io_start(loop, &w->listeners[i].io);
}

static void accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    rm_listener_t *l = container_of(io, rm_listener_t, io);
    rm_worker_t *w = l->worker;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        int fd = accept4(l->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                rm_metrics_overflow(w, "descriptors");
                pause_accepting(w);
            } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
                rm_log_warn("accept: %s", strerror(errno));
            }
            return;
        }
        bool admin = l->kind == RM_LISTENER_ADMIN;
        if (admin ? w->nadmin_sessions >= ADMIN_MAX_CONNECTIONS
                  : w->nsessions >= w->proxy->opt.max_connections) {
            rm_metrics_overflow(w, admin ? "admin_connections" : "connections");
            close(fd); /* the kernel answers RST-free FIN; the client retries elsewhere */
            continue;
        }
        rm_session_t *s = rm_session_new(
            w, fd, l->kind, l->kind == RM_LISTENER_ADMIN ? rm_admin_handle : NULL, &peer, plen);
        if (s == NULL) {
            close(fd);
            continue;
        }
    }
}

/* A withdrawn (draining) or removed endpoint's pooled connections are closed at once: the next
 * request must not race the endpoint's shutdown on a connection it is about to close. */
static void forget_withdrawn_endpoints(rm_worker_t *w)
{
    for (size_t i = 0; i < rm_snapshot_service_count(w->snap); i++) {
        const rm_service_t *svc = rm_snapshot_service_at(w->snap, i);
        for (size_t e = 0; e < svc->nendpoints; e++) {
            rm_upstream_t *up = rm_upstream_find(w, svc->endpoints[e].key);
            if (up == NULL)
                continue;
            if (svc->endpoints[e].draining)
                rm_upstream_close_idle(w, up);
            else
                up->generation_seen = w->snap_generation;
        }
    }
    /* Endpoints the new snapshot no longer lists (raw-address upstreams — the inbound app,
     * passthrough destinations — are not the snapshot's to judge). */
    for (size_t b = 0; b < w->utable_size; b++)
        for (rm_upstream_t *u = w->utable[b]; u != NULL; u = u->hnext)
            if (u->from_snapshot && u->generation_seen != w->snap_generation && u->idle_count > 0)
                rm_upstream_close_idle(w, u);
}

static void refresh_snapshot(rm_worker_t *w)
{
    uint64_t gen = rm_snapshot_generation();
    if (gen == w->snap_generation)
        return;
    rm_snapshot_t *s = rm_snapshot_acquire();
    if (s == NULL)
        return;
    if (w->snap != NULL)
        rm_snapshot_unref(w->snap); /* exchanges in flight keep their own references */
    w->snap = s;
    w->snap_generation = gen;
    forget_withdrawn_endpoints(w);
}

static bool worker_idle(rm_worker_t *w)
{
    for (rm_list_t *n = w->sessions.next; n != &w->sessions; n = n->next) {
        rm_session_t *s = container_of(n, rm_session_t, link);
        if (s->kind == RM_LISTENER_ADMIN)
            continue;
        if (s->ex != NULL || s->out.len > 0)
            return false;
    }
    return true;
}

/* While draining: close listeners after the grace period, once the control plane has our
 * withdrawal (while it is unreachable clients still send here, and a pod that vanished without
 * withdrawing stays listed when it returns); exit the loop once nothing is in flight (idle
 * keep-alive sessions are closed then), or at the deadline whatever remains. */
static void drain_tick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    rm_worker_t *w = container_of(t, rm_worker_t, drain_timer);
    rm_proxy_t *p = w->proxy;
    ev_tstamp elapsed = ev_now(loop) - p->drain_started;
    bool deadline = elapsed * 1000.0 >= (double)p->opt.drain_deadline_ms;
    if (!w->listeners_closed && elapsed * 1000.0 >= (double)p->opt.drain_grace_ms) {
        if (atomic_load(&p->withdraw_delivered) || deadline) {
            close_listeners(w, true);
            w->listeners_closed = true;
        } else if (!w->waiting_withdraw_logged) {
            w->waiting_withdraw_logged = true;
            rm_log_warn("worker %d: draining: the control plane does not have our withdrawal "
                        "yet; accepting until it does or the drain deadline",
                        w->id);
        }
    }
    if ((w->listeners_closed && worker_idle(w)) || deadline) {
        if (deadline)
            rm_log_warn("worker %d: drain deadline reached with requests in flight", w->id);
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    /* After the grace period, idle inbound keep-alive connections are closed: their next request
     * would otherwise race our exit. During it, their next response says Connection: close.
     * Outbound ones stay: the app may still be calling out. */
    if (!w->listeners_closed)
        return;
    rm_list_t *n = w->sessions.next;
    while (n != &w->sessions) {
        rm_session_t *s = container_of(n, rm_session_t, link);
        n = n->next;
        if (s->kind == RM_LISTENER_INBOUND && s->ex == NULL && s->in.len == 0 && s->out.len == 0)
            rm_session_close(s);
    }
}

static void wakeup_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)revents;
    rm_worker_t *w = container_of(a, rm_worker_t, wakeup);
    refresh_snapshot(w);
    if (atomic_load(&w->proxy->draining) && !w->draining) {
        w->draining = true;
        rm_upstream_close_idle(w, NULL);
        ev_timer_init(&w->drain_timer, drain_tick_cb, 0.0, 0.05);
        ev_timer_start(loop, &w->drain_timer);
    }
}

/* Caches sized by load (buffer blocks, exchanges) give back what went unused for a second. */
static void housekeeping_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    rm_worker_t *w = container_of(t, rm_worker_t, housekeeping);
    rm_buf_thread_cache_trim();
    rm_exchange_trim_recycled(w);
}

static void reaper_cb(struct ev_loop *loop, ev_prepare *pr, int revents)
{
    (void)loop;
    (void)revents;
    rm_worker_t *w = container_of(pr, rm_worker_t, reaper);
    while (!rm_list_empty(&w->dead_exchanges)) {
        rm_exchange_t *ex = container_of(w->dead_exchanges.next, rm_exchange_t, link);
        rm_list_remove(&ex->link);
        rm_exchange_recycle(w, ex);
    }
    while (!rm_list_empty(&w->dead)) {
        rm_session_t *s = container_of(w->dead.next, rm_session_t, link);
        rm_list_remove(&s->link);
        rm_session_free(s);
    }
}

int rm_worker_init(rm_worker_t *w, rm_proxy_t *p, int id)
{
    memset(w, 0, sizeof(*w));
    w->proxy = p;
    w->id = id;
    w->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    if (w->loop == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < sizeof(w->listeners) / sizeof(w->listeners[0]); i++)
        w->listeners[i].fd = -1;
    rm_list_init(&w->sessions);
    rm_list_init(&w->dead);
    rm_list_init(&w->dead_exchanges);
    rm_list_init(&w->free_exchanges);
    /* Sessions and pooled connections arm their timers at most this far ahead (deadline.h): the
     * shortest of the timeouts they start on every request, so those never re-arm. */
    uint64_t slice_ms = p->opt.header_timeout_ms;
    if (p->opt.request_timeout_ms < slice_ms)
        slice_ms = p->opt.request_timeout_ms;
    if (p->opt.idle_timeout_ms < slice_ms)
        slice_ms = p->opt.idle_timeout_ms;
    w->timer_slice = slice_ms > 0 ? (ev_tstamp)slice_ms / 1000.0 : 1.0;
    w->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ ((uint64_t)id << 48) ^
             0x9E3779B97F4A7C15ULL;
    int rc;
    if ((rc = add_listener(w, RM_LISTENER_OUTBOUND, p->opt.outbound_port)) < 0 ||
        (rc = add_listener(w, RM_LISTENER_INBOUND, p->opt.inbound_port)) < 0 ||
        (id == 0 && (rc = add_listener(w, RM_LISTENER_ADMIN, p->opt.admin_port)) < 0))
        return rc;
    ev_timer_init(&w->accept_pause, accept_pause_cb, ACCEPT_PAUSE_S, 0);
    ev_async_init(&w->wakeup, wakeup_cb);
    ev_async_start(w->loop, &w->wakeup);
    ev_prepare_init(&w->reaper, reaper_cb);
    ev_prepare_start(w->loop, &w->reaper);
    ev_timer_init(&w->housekeeping, housekeeping_cb, 1.0, 1.0);
    ev_timer_start(w->loop, &w->housekeeping);
    ev_unref(w->loop); /* housekeeping alone does not keep the loop running */
    for (int i = 0; i < w->nlisteners; i++)
        ev_io_start(w->loop, &w->listeners[i].io);
    refresh_snapshot(w);
    return 0;
}

static void *worker_main(void *arg)
{
    rm_worker_t *w = arg;
    /* Signals belong to the main thread's loop. */
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    refresh_snapshot(w);
    ev_run(w->loop, 0);
    rm_metrics_worker_free(w); /* its handle cache is thread-local: free it on this thread */
    rm_buf_thread_cache_free();
    rm_exchange_free_recycled(w);
    rm_session_free_codecs(w);
    /* The main loop exits after the last worker (config_source.c). */
    atomic_fetch_sub(&w->proxy->running_workers, 1);
    ev_async_send(w->proxy->main_loop, &w->proxy->main_wakeup);
    return NULL;
}

int rm_worker_start(rm_worker_t *w)
{
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    return rc == 0 ? 0 : -rc;
}

void rm_worker_notify(rm_worker_t *w)
{
    /* ev_async_send is the one libev call documented as safe from other threads; the shared
     * state it announces (snapshot slot, draining flag) is published before it with atomics. */
    ev_async_send(w->loop, &w->wakeup);
}

void rm_worker_join(rm_worker_t *w)
{
    pthread_join(w->thread, NULL);
    while (!rm_list_empty(&w->sessions))
        rm_session_close(container_of(w->sessions.next, rm_session_t, link));
    reaper_cb(w->loop, &w->reaper, 0);
    close_listeners(w, false);
    rm_upstream_table_free(w);
    if (w->snap != NULL)
        rm_snapshot_unref(w->snap);
    ev_loop_destroy(w->loop);
}
