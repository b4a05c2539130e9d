/* dataplane/proxy/shadow.c — detached shadow copies of mirrored requests (see shadow.h). */
#include "dataplane/proxy/shadow.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log/log.h"
#include "dataplane/proxy/metrics.h"
#include "dataplane/proxy/upstream.h"
#include "dataplane/proxy/worker_state.h"
#include "dataplane/transport/transport.h"

/* A shadow gets this long for its whole exchange; then it is abandoned and counted an error. */
#define SHADOW_TIMEOUT_S 10.0

struct rm_shadow {
    rm_worker_t *worker;
    rm_upconn_t *conn; /* owned: closed with the shadow, or returned to the pool when clean */
    ev_timer timer;
    bool head_done;
    bool failed; /* the copy's status was 5xx */
    bool close;  /* the copy's response said the connection closes */
    char service[64];
    char version[64];
};

void rm_shadow_prepare(rm_exchange_t *ex, const rm_request_view_t *view)
{
    rm_worker_t *w = ex->session->worker;
    const rm_route_decision_t *d = &ex->decision;
    const rm_service_t *target = d->mirror_service;
    size_t version = d->mirror_version_index;
    if (target == NULL)
        return;
    if (version == SIZE_MAX) {
        /* Mirroring to another service: its own routes pick the version. */
        rm_route_decision_t td;
        if (rm_route_decide(target, view, rm_worker_random(w), &td) < 0 ||
            td.version_index == SIZE_MAX) {
            rm_metrics_shadow_dropped(w, target->name, "", "no_endpoint");
            return;
        }
        version = td.version_index;
    }
    ex->shadow_svc = target;
    ex->shadow_version = version;
    ex->shadow_pending = true;
}

/* The copy's request: the primary's, saying who it is — its authority with -shadow appended to
 * the host part, and the same request id, so the two can be matched in logs. Returns 0 or an
 * error. */
static int queue_copy(rm_shadow_t *sh, const rm_exchange_t *ex)
{
    rm_span_t a = ex->req.authority;
    const char *colon = memchr(a.ptr, ':', a.len);
    size_t hl = colon ? (size_t)(colon - a.ptr) : a.len;
    char host[300];
    int n = snprintf(host, sizeof(host), "%.*s-shadow%.*s", (int)hl, a.ptr, (int)(a.len - hl),
                     a.ptr + hl);
    if (n < 0 || (size_t)n >= sizeof(host))
        return -ENAMETOOLONG;
    rm_request_head_t copy = ex->req;
    copy.authority = (rm_span_t){host, (size_t)n};
    static const rm_span_t remove[] = {{"x-remora-attempt", 16}};
    rm_field_t add[1] = {{{"x-request-id", 12}, {ex->request_id, strlen(ex->request_id)}}};
    rm_field_edit_t edit = {.remove = remove, .nremove = 1, .add = add, .nadd = 0};
    if (ex->add_request_id)
        edit.nadd = 1;
    rm_upconn_t *c = sh->conn;
    int rc = c->codec->write_head(c, &copy, &edit);
    if (rc == 0 && ex->replay.len > 0)
        rc = c->codec->write_data(c, rm_buf_head(&ex->replay), ex->replay.len);
    if (rc == 0)
        rc = c->codec->write_end(c);
    return rc;
}

static void shadow_free(rm_shadow_t *sh, bool error)
{
    rm_worker_t *w = sh->worker;
    if (error)
        rm_metrics_shadow_error(w, sh->service, sh->version);
    ev_timer_stop(w->loop, &sh->timer);
    if (sh->conn != NULL)
        rm_upconn_close(sh->conn);
    w->shadows--;
    free(sh);
}

static void shadow_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    shadow_free(container_of(t, rm_shadow_t, timer), true);
}

static void shadow_on_io(void *owner, int revents);

static void shadow_on_connect_failed(void *owner, int err)
{
    (void)err;
    shadow_free(owner, true);
}

/* A copy reads its response whatever the client does: nobody waits for it. */
static bool shadow_wants_read(const void *owner)
{
    (void)owner;
    return true;
}

static const rm_upconn_owner_ops_t shadow_conn_ops = {
    .on_io = shadow_on_io,
    .on_connect_failed = shadow_on_connect_failed,
    .wants_read = shadow_wants_read,
};

static int load_of(void *ctx, const rm_endpoint_ref_t *ep)
{
    rm_upstream_t *u = rm_upstream_find(ctx, ep->key);
    return u == NULL ? 0 : u->active;
}

void rm_shadow_launch(rm_exchange_t *ex)
{
    if (!ex->shadow_pending)
        return;
    ex->shadow_pending = false;
    rm_worker_t *w = ex->session->worker;
    const rm_service_t *svc = ex->shadow_svc;
    const char *vname = svc->versions[ex->shadow_version].name;
    if (ex->replay_overflow) {
        rm_metrics_shadow_dropped(w, svc->name, vname, "body_too_large");
        return;
    }
    if (w->shadows >= RM_SHADOW_MAX_CONCURRENCY) {
        rm_metrics_shadow_dropped(w, svc->name, vname, "concurrency");
        return;
    }
    const rm_endpoint_ref_t *ep = NULL;
    if (rm_route_pick_endpoint(svc, ex->shadow_version, rm_worker_random(w), load_of, w, NULL, 0,
                               &ep) != 0) {
        rm_metrics_shadow_dropped(w, svc->name, vname, "no_endpoint");
        return;
    }
    rm_upstream_t *up = rm_upstream_get(w, ep);
    rm_shadow_t *sh = up ? calloc(1, sizeof(*sh)) : NULL;
    if (sh == NULL)
        return;
    sh->worker = w;
    snprintf(sh->service, sizeof(sh->service), "%s", svc->name);
    snprintf(sh->version, sizeof(sh->version), "%s", vname);
    w->shadows++;
    rm_metrics_shadow_sent(w, sh->service, sh->version);
    ev_timer_init(&sh->timer, shadow_timeout_cb, SHADOW_TIMEOUT_S, 0);
    ev_timer_start(w->loop, &sh->timer);
    int err = 0;
    const char *refused = NULL;
    sh->conn = rm_upstream_stream(w, up, &shadow_conn_ops, sh, true, &refused, &err);
    if (sh->conn == NULL) {
        shadow_free(sh, true);
        return;
    }
    if (queue_copy(sh, ex) != 0) {
        shadow_free(sh, true);
        return;
    }
    rm_upconn_update_events(sh->conn);
}

/* The copy's response is complete: count it and return a clean connection to the pool. */
static void shadow_done(rm_shadow_t *sh, bool reusable)
{
    rm_upconn_t *c = sh->conn;
    if (reusable && c->in.len == 0 && c->out.len == 0) {
        sh->conn = NULL;
        rm_upconn_release(c, true);
    }
    shadow_free(sh, sh->failed);
}

/* Discards response bytes. Returns 1 when the response is complete, 0 when more is needed, -1 on
 * a malformed response. */
static int shadow_consume(rm_shadow_t *sh)
{
    rm_upconn_t *c = sh->conn;
    while (!sh->head_done) {
        rm_response_head_t h;
        int rc = c->codec->read_head(c, &h);
        if (rc <= 0)
            return rc < 0 ? -1 : 0;
        c->codec->head_done(c);
        if (h.flags & RM_MSG_F_INTERIM)
            continue;
        sh->head_done = true;
        sh->failed = h.status >= 500;
        sh->close = (h.flags & RM_MSG_F_CLOSE) != 0;
    }
    for (;;) {
        rm_span_t data;
        switch (c->codec->body_next(c, SIZE_MAX, &data)) {
        case RM_BODY_DATA:
            c->codec->body_consume(c);
            continue;
        case RM_BODY_END:
            return 1;
        case RM_BODY_WAIT:
            return 0;
        default:
            return -1;
        }
    }
}

static void shadow_on_io(void *owner, int revents)
{
    rm_shadow_t *sh = owner;
    rm_upconn_t *c = sh->conn;
    if (revents & EV_WRITE) {
        ssize_t n = rm_upconn_flush(c);
        if (n < 0 && n != -EAGAIN) {
            shadow_free(sh, true);
            return;
        }
    }
    if (revents & EV_READ) {
        ssize_t n = rm_conn_read_buf(&c->conn, &c->in, 16384);
        if (n == 0 || (n < 0 && n != -EAGAIN && n != RM_BUF_EFULL)) {
            /* Closed: the end of an until-close body, else a failed copy. */
            bool ok = sh->head_done && shadow_consume(sh) >= 0 && c->codec->ends_at_close(c);
            shadow_free(sh, !ok || sh->failed);
            return;
        }
        int done = shadow_consume(sh);
        if (done < 0) {
            shadow_free(sh, true);
            return;
        }
        if (done > 0) {
            shadow_done(sh, !sh->close && c->codec->reusable(c));
            return;
        }
    }
    rm_upconn_update_events(c);
}
