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
#include "dataplane/transport/transport.h"

/* A shadow gets this long for its whole exchange; then it is abandoned and counted an error. */
#define SHADOW_TIMEOUT_S 10.0

struct rm_shadow {
    rm_worker_t *worker;
    rm_upconn_t *conn; /* owned: closed with the shadow, or returned to the pool when clean */
    ev_timer timer;
    rm_http1_response_t resp;
    rm_http1_method_t method;
    bool head_done;
    bool failed;          /* the copy's status was 5xx */
    rm_http1_body_t body; /* framing of the copy's response, once the head is read */
    uint64_t remaining;   /* Content-Length bytes still to discard */
    rm_http1_chunked_t chunks;
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
    sh->method = ex->method;
    w->shadows++;
    rm_metrics_shadow_sent(w, sh->service, sh->version);
    ev_timer_init(&sh->timer, shadow_timeout_cb, SHADOW_TIMEOUT_S, 0);
    ev_timer_start(w->loop, &sh->timer);
    int err = 0;
    sh->conn = rm_upconn_connect(w, up, &shadow_conn_ops, sh, &err);
    if (sh->conn == NULL) {
        shadow_free(sh, true);
        goto out;
    }
    if (rm_buf_append(&sh->conn->out, rm_buf_head(&ex->shadow_head), ex->shadow_head.len) != 0 ||
        rm_buf_append(&sh->conn->out, rm_buf_head(&ex->replay), ex->replay.len) != 0) {
        shadow_free(sh, true);
        goto out;
    }
    rm_upconn_update_events(sh->conn);
out:
    rm_buf_free(&ex->shadow_head);
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
    rm_worker_t *w = sh->worker;
    while (c->in.len > 0 || (sh->head_done && sh->body == RM_HTTP1_BODY_NONE)) {
        if (!sh->head_done) {
            int hl = rm_http1_parse_response(rm_buf_head(&c->in), c->in.len, &sh->resp, NULL,
                                             (int)sh->method);
            if (hl == RM_HTTP1_INCOMPLETE)
                return rm_buf_room(&c->in) > 0 ? 0 : -1;
            if (hl < 0)
                return -1;
            rm_buf_consume(&c->in, (size_t)hl);
            if (sh->resp.status < 200 && sh->resp.status != 101) {
                rm_http1_response_init(&sh->resp, w->headers, w->proxy->opt.max_headers);
                continue; /* interim response */
            }
            sh->head_done = true;
            sh->failed = sh->resp.status >= 500;
            sh->body = sh->resp.body;
            sh->remaining = sh->resp.content_length;
            if (sh->body == RM_HTTP1_BODY_CHUNKED)
                rm_http1_chunked_init(&sh->chunks);
            if (sh->body == RM_HTTP1_BODY_CONTENT_LENGTH && sh->remaining == 0)
                sh->body = RM_HTTP1_BODY_NONE;
            continue;
        }
        switch (sh->body) {
        case RM_HTTP1_BODY_NONE:
            return 1;
        case RM_HTTP1_BODY_CONTENT_LENGTH: {
            size_t n = c->in.len < sh->remaining ? c->in.len : (size_t)sh->remaining;
            rm_buf_consume(&c->in, n);
            sh->remaining -= n;
            if (sh->remaining == 0)
                return 1;
            break;
        }
        case RM_HTTP1_BODY_CHUNKED: {
            size_t used = 0;
            rm_http1_span_t data;
            int rc =
                rm_http1_chunked_decode(&sh->chunks, rm_buf_head(&c->in), c->in.len, &used, &data);
            rm_buf_consume(&c->in, used);
            if (rc == RM_HTTP1_CHUNKED_DONE)
                return 1;
            if (rc < 0 && rc != RM_HTTP1_INCOMPLETE)
                return -1;
            break;
        }
        default: /* until close, or a tunnel: discard what came; the close ends it */
            rm_buf_consume(&c->in, c->in.len);
            break;
        }
    }
    return 0;
}

static void shadow_on_io(void *owner, int revents)
{
    rm_shadow_t *sh = owner;
    rm_upconn_t *c = sh->conn;
    if (revents & EV_WRITE) {
        ssize_t n = rm_conn_write_buf(&c->conn, &c->out);
        if (n < 0 && n != -EAGAIN) {
            shadow_free(sh, true);
            return;
        }
    }
    if (revents & EV_READ) {
        ssize_t n = rm_conn_read_buf(&c->conn, &c->in, 16384);
        if (n == 0 || (n < 0 && n != -EAGAIN && n != RM_BUF_EFULL)) {
            /* Closed: the end of an until-close body, else a failed copy. */
            bool ok = sh->head_done && shadow_consume(sh) >= 0 &&
                      (sh->body == RM_HTTP1_BODY_UNTIL_CLOSE || sh->body == RM_HTTP1_BODY_TUNNEL);
            shadow_free(sh, !ok || sh->failed);
            return;
        }
        int done = shadow_consume(sh);
        if (done < 0) {
            shadow_free(sh, true);
            return;
        }
        if (done > 0) {
            shadow_done(sh, (sh->resp.flags & RM_HTTP1_F_KEEP_ALIVE) != 0);
            return;
        }
    }
    rm_upconn_update_events(c);
}
