/* dataplane/proxy/admin.c — admin endpoints, answered on worker 0's loop. */
#include "dataplane/proxy/admin.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log/log.h"
#include "dataplane/proxy/config_source.h"
#include "dataplane/proxy/session.h"
#include "dataplane/proxy/worker.h"

static bool span_is(rm_span_t s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

static void reply_text(rm_session_t *s, int status, const char *text)
{
    rm_session_reply(s, status, NULL, 0, "text/plain", text, strlen(text), false);
}

static void reply_owned(rm_session_t *s, int status, const char *type, char *body, size_t len)
{
    if (body == NULL) {
        reply_text(s, 500, "out of memory\n");
        return;
    }
    if (len + 1024 > rm_buf_room(&s->out)) {
        /* Never a silent close: say what happened (the limit is session.c's ADMIN_OUT_LIMIT). */
        free(body);
        reply_text(s, 500, "reply too large for the admin port\n");
        return;
    }
    rm_session_reply(s, status, NULL, 0, type, body, len, false);
    free(body);
}

void rm_admin_handle(rm_session_t *s, const rm_request_head_t *req)
{
    rm_proxy_t *p = s->worker->proxy;
    rm_span_t path = req->path;
    rm_span_t query = {NULL, 0};
    const char *q = memchr(path.ptr, '?', path.len);
    if (q != NULL) {
        query.ptr = q + 1;
        query.len = path.len - (size_t)(q + 1 - path.ptr);
        path.len = (size_t)(q - path.ptr);
    }
    bool get = req->method == RM_METHOD_GET || req->method == RM_METHOD_HEAD;
    if (req->flags & RM_MSG_F_BODY) {
        /* Admin requests carry no body; refusing keeps the connection's framing simple. */
        rm_session_reply(s, 413, NULL, 0, "text/plain", "admin requests take no body\n", 28, true);
        return;
    }
    if (span_is(path, "/healthz") && get) {
        reply_text(s, 200, "ok\n");
    } else if (span_is(path, "/ready") && get) {
        if (atomic_load(&p->draining))
            reply_text(s, 503, "draining\n");
        else if (!atomic_load(&p->ready))
            reply_text(s, 503, "no config loaded\n");
        else if (!rm_admin_app_up(p))
            reply_text(s, 503, "app port not answering\n");
        else
            reply_text(s, 200, "ready\n");
    } else if (span_is(path, "/stats") && get) {
        size_t len = 0;
        bool json = query.len >= 11 && memmem(query.ptr, query.len, "format=json", 11) != NULL;
        if (json) {
            char *body = rm_stats_render_json(p->stats, &len);
            reply_owned(s, 200, "application/json", body, len);
        } else {
            char *body = rm_stats_render_prometheus(p->stats, &len);
            reply_owned(s, 200, "text/plain; version=0.0.4", body, len);
        }
    } else if (span_is(path, "/config_dump") && get) {
        size_t len = 0;
        char *body = rm_proxy_source_dump_json(p, s->worker->snap, &len);
        reply_owned(s, 200, "application/json", body, len);
    } else if (span_is(path, "/drain") && req->method == RM_METHOD_POST) {
        rm_proxy_source_begin_drain(p);
        reply_text(s, 200, "draining\n");
    } else if (span_is(path, "/healthz") || span_is(path, "/ready") || span_is(path, "/stats") ||
               span_is(path, "/config_dump") || span_is(path, "/drain")) {
        reply_text(s, 405, "method not allowed\n");
    } else {
        reply_text(s, 404, "unknown admin path; try /healthz /ready /stats /config_dump /drain\n");
    }
}

/* ---- app probe: a non-blocking connect to 127.0.0.1:app_port every 500ms ---- */

/* How long the app port must refuse every probe before the app counts as gone (app_refused). */
#define RM_APP_REFUSED_FOR_S 1.5

typedef struct app_probe {
    ev_timer timer;
    ev_io io;
    int fd;
    rm_proxy_t *proxy;
    ev_tstamp refused_since; /* 0: the last probe was not refused */
} app_probe_t;

static app_probe_t probe;

/* err: 0 connected, else why not (ETIMEDOUT for a probe that never completed). */
static void probe_done(struct ev_loop *loop, int err)
{
    ev_io_stop(loop, &probe.io);
    if (probe.fd >= 0) {
        close(probe.fd);
        probe.fd = -1;
    }
    atomic_store(&probe.proxy->app_up, err == 0);
    if (err != ECONNREFUSED) {
        probe.refused_since = 0;
        atomic_store(&probe.proxy->app_refused, false);
        return;
    }
    ev_tstamp now = ev_now(loop);
    if (probe.refused_since == 0)
        probe.refused_since = now;
    if (now - probe.refused_since >= RM_APP_REFUSED_FOR_S)
        atomic_store(&probe.proxy->app_refused, true);
}

static void probe_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)io;
    (void)revents;
    int err = 0;
    socklen_t l = sizeof(err);
    getsockopt(probe.fd, SOL_SOCKET, SO_ERROR, &err, &l);
    probe_done(loop, err);
}

static void probe_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)t;
    (void)revents;
    if (probe.fd >= 0)
        probe_done(loop, ETIMEDOUT); /* the previous attempt never completed */
    probe.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (probe.fd < 0)
        return;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)probe.proxy->opt.app_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int rc = connect(probe.fd, (struct sockaddr *)&a, sizeof(a));
    if (rc == 0) {
        probe_done(loop, 0);
    } else if (errno == EINPROGRESS) {
        ev_io_set(&probe.io, probe.fd, EV_WRITE);
        ev_io_start(loop, &probe.io);
    } else {
        probe_done(loop, errno);
    }
}

void rm_admin_start_app_probe(rm_worker_t *w)
{
    rm_proxy_t *p = w->proxy;
    if (p->opt.app_port <= 0) {
        atomic_store(&p->app_up, true);
        return;
    }
    probe.proxy = p;
    probe.fd = -1;
    ev_io_init(&probe.io, probe_io_cb, -1, EV_WRITE);
    ev_timer_init(&probe.timer, probe_timer_cb, 0.0, 0.5);
    ev_timer_start(w->loop, &probe.timer);
}

bool rm_admin_app_up(const rm_proxy_t *p)
{
    return atomic_load(&p->app_up);
}
