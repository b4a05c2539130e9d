/* dataplane/proxy/shadow.c — detached shadow copies of mirrored requests (see shadow.h). */
#include "dataplane/proxy/shadow.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log/log.h"
#include "dataplane/proxy/metrics.h"
#include "dataplane/proxy/upstream.h"
#include "dataplane/proxy/worker.h"

/* A shadow gets this long for its whole exchange; then it is abandoned and counted an error. */
#define SHADOW_TIMEOUT_S 10.0

struct rm_shadow {
    rm_worker_t *worker;
    rm_upconn_t *conn; /* owned: closed with the shadow */
    ev_timer timer;
    rm_http1_response_t resp;
    char service[64];
    char version[64];
};

void rm_shadow_prepare(rm_exchange_t *ex, const rm_http1_request_t *req)
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
        rm_request_view_t view = {.method = req->method_name.ptr,
                                  .method_len = req->method_name.len,
                                  .headers = w->header_views,
                                  .nheaders = req->num_headers < 128 ? req->num_headers : 128};
        rm_route_split_target(req->path.ptr, req->path.len, &view.path, &view.path_len, &view.query,
                              &view.query_len);
        if (rm_route_decide(target, &view, rm_worker_random(w), &td) < 0 ||
            td.version_index == SIZE_MAX) {
            rm_metrics_shadow_dropped(w, target->name, "", "no_endpoint");
            return;
        }
        version = td.version_index;
    }
    char host[300];
    rm_http1_span_t h = req->host.ptr ? req->host : req->authority;
    /* The copy says who it is: Host/authority with -shadow appended to the host part. */
    const char *colon = memchr(h.ptr, ':', h.len);
    size_t hl = colon ? (size_t)(colon - h.ptr) : h.len;
    int n = snprintf(host, sizeof(host), "%.*s-shadow%.*s", (int)hl, h.ptr, (int)(h.len - hl),
                     h.ptr + hl);
    if (n < 0 || (size_t)n >= sizeof(host))
        return;
    /* Same request id as the primary, so the two can be matched in logs. */
    rm_http1_header_t add[2] = {{{"host", 4}, {host, (size_t)n}}};
    size_t nadd = 1;
    if (rm_http1_header_find(req->headers, req->num_headers, "x-request-id", 12) < 0)
        add[nadd++] =
            (rm_http1_header_t){{"x-request-id", 12}, {ex->request_id, strlen(ex->request_id)}};
    static const rm_http1_span_t remove[] = {{"host", 4}, {"x-remora-attempt", 16}};
    rm_http1_edit_t edit = {.remove = remove,
                            .num_remove = 2,
                            .add = add,
                            .num_add = nadd,
                            .flags = RM_HTTP1_EDIT_F_HOP_BY_HOP};
    size_t need = 512 + (size_t)n + req->target.len;
    for (size_t i = 0; i < req->num_headers; i++)
        need += req->headers[i].name.len + req->headers[i].value.len + 4;
    rm_buf_init(&ex->shadow_head, need);
    int err = 0;
    char *out = rm_buf_reserve(&ex->shadow_head, need, &err);
    if (out == NULL)
        return;
    rm_http1_request_t copy = *req;
    if (copy.target_form == RM_HTTP1_TARGET_ABSOLUTE)
        copy.target = copy.path.len ? copy.path : (rm_http1_span_t){"/", 1};
    ssize_t len = rm_http1_serialize_request(&copy, &edit, out, need);
    if (len <= 0) {
        rm_buf_free(&ex->shadow_head);
        return;
    }
    rm_buf_commit(&ex->shadow_head, (size_t)len);
    ex->shadow_svc = target;
    ex->shadow_version = version;
    ex->shadow_pending = true;
}

static void shadow_free(rm_shadow_t *sh, bool error)
{
    rm_worker_t *w = sh->worker;
    if (error)
        rm_metrics_shadow_error(w, sh->service, sh->version);
    ev_timer_stop(w->loop, &sh->timer);
    if (sh->conn != NULL) {
        sh->conn->shadow = NULL;
        rm_upconn_close(sh->conn);
    }
    w->shadows--;
    free(sh);
}

static void shadow_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    shadow_free(container_of(t, rm_shadow_t, timer), true);
}

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
        goto out;
    }
    if (w->shadows >= RM_SHADOW_MAX_CONCURRENCY) {
        rm_metrics_shadow_dropped(w, svc->name, vname, "concurrency");
        goto out;
    }
    const rm_endpoint_ref_t *ep = NULL;
    if (rm_route_pick_endpoint(svc, ex->shadow_version, rm_worker_random(w), load_of, w, NULL, 0,
                               &ep) != 0) {
        rm_metrics_shadow_dropped(w, svc->name, vname, "no_endpoint");
        goto out;
    }
    rm_upstream_t *up = rm_upstream_get(w, ep);
    rm_shadow_t *sh = up ? calloc(1, sizeof(*sh)) : NULL;
    if (sh == NULL)
        goto out;
    sh->worker = w;
    snprintf(sh->service, sizeof(sh->service), "%s", svc->name);
    snprintf(sh->version, sizeof(sh->version), "%s", vname);
    rm_http1_response_init(&sh->resp, w->headers, w->proxy->opt.max_headers);
    w->shadows++;
    rm_metrics_shadow_sent(w, sh->service, sh->version);
    ev_timer_init(&sh->timer, shadow_timeout_cb, SHADOW_TIMEOUT_S, 0);
    ev_timer_start(w->loop, &sh->timer);
    int err = 0;
    sh->conn = rm_upconn_connect(w, up, NULL, &err);
    if (sh->conn == NULL) {
        shadow_free(sh, true);
        goto out;
    }
    sh->conn->shadow = sh;
    if (rm_buf_append(&sh->conn->out, rm_buf_head(&ex->shadow_head), ex->shadow_head.len) != 0 ||
        rm_buf_append(&sh->conn->out, rm_buf_head(&ex->replay), ex->replay.len) != 0) {
        shadow_free(sh, true);
        goto out;
    }
    rm_upconn_update_events(sh->conn);
out:
    rm_buf_free(&ex->shadow_head);
}

void rm_shadow_on_error(rm_shadow_t *sh)
{
    shadow_free(sh, true);
}

void rm_shadow_on_io(rm_shadow_t *sh, int revents)
{
    rm_upconn_t *c = sh->conn;
    if (revents & EV_WRITE) {
        ssize_t n = rm_buf_write_fd(&c->out, c->fd);
        if (n < 0 && n != -EAGAIN) {
            shadow_free(sh, true);
            return;
        }
    }
    if (revents & EV_READ) {
        ssize_t n = rm_buf_read_fd(&c->in, c->fd, 16384);
        if (n == 0 || (n < 0 && n != -EAGAIN && n != RM_BUF_EFULL)) {
            shadow_free(sh, true); /* closed before a status: a failed shadow */
            return;
        }
        int hl = rm_http1_parse_response(rm_buf_head(&c->in), c->in.len, &sh->resp, NULL,
                                         RM_HTTP1_METHOD_GET);
        if (hl == RM_HTTP1_INCOMPLETE && rm_buf_room(&c->in) > 0)
            goto again;
        /* The status is all a shadow reports; the body is not read (the connection closes). */
        shadow_free(sh, hl < 0 || sh->resp.status >= 500);
        return;
    }
again:
    rm_upconn_update_events(c);
}
