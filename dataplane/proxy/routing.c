/* dataplane/proxy/routing.c — request → service → rule → version → endpoint. */
#include "dataplane/proxy/routing.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "dataplane/proxy/shadow.h"
#include "dataplane/proxy/upstream.h"
#include "dataplane/proxy/worker_state.h"

/* Copies a name into a fixed field, cut to fit (runs several times per request: no snprintf). */
static void set_name(char *dst, size_t n, const char *src)
{
    size_t l = src != NULL ? strnlen(src, n - 1) : 0;
    memcpy(dst, src != NULL ? src : "", l);
    dst[l] = '\0';
}

static void local(rm_exchange_t *ex, int status, const char *reason)
{
    ex->local_status = status;
    ex->local_reason = reason;
}

rm_request_view_t rm_routing_view(rm_exchange_t *ex)
{
    rm_worker_t *w = ex->session->worker;
    const rm_request_head_t *req = &ex->req;
    size_t n = req->nfields < 128 ? req->nfields : 128;
    for (size_t i = 0; i < n; i++) {
        w->header_views[i] = (rm_header_view_t){req->fields[i].name.ptr, req->fields[i].name.len,
                                                req->fields[i].value.ptr, req->fields[i].value.len};
    }
    rm_request_view_t view = {.method = req->method_name.ptr,
                              .method_len = req->method_name.len,
                              .headers = w->header_views,
                              .nheaders = n};
    rm_route_split_target(req->path.ptr, req->path.len, &view.path, &view.path_len, &view.query,
                          &view.query_len);
    return view;
}

void rm_routing_decide(rm_exchange_t *ex)
{
    rm_session_t *s = ex->session;
    rm_worker_t *w = s->worker;
    const rm_proxy_options_t *o = &w->proxy->opt;

    if (s->kind == RM_LISTENER_INBOUND) {
        /* Inbound always goes to the local app; the caller's sidecar already chose us. */
        set_name(ex->service_name, sizeof(ex->service_name), o->service);
        set_name(ex->version_name, sizeof(ex->version_name), o->version);
        set_name(ex->route_name, sizeof(ex->route_name), "inbound");
        if (o->app_port <= 0 && !s->has_orig_dst)
            local(ex, 503, "no app port configured for inbound traffic");
        return;
    }
    if (ex->snap == NULL) {
        local(ex, 503, "no config loaded yet");
        return;
    }
    rm_span_t authority = ex->req.authority;
    const rm_service_t *svc = NULL;
    if (authority.len > 0)
        svc = rm_snapshot_service_by_host(ex->snap, authority.ptr, authority.len);
    if (svc == NULL && s->has_orig_dst)
        svc = rm_snapshot_service_by_addr(ex->snap, &s->orig_dst.sa);
    if (svc == NULL) {
        if (s->has_orig_dst) {
            /* Transparent traffic to a destination the mesh does not know: pass it through to
             * where the app meant it to go, never drop it. */
            ex->passthrough = true;
            set_name(ex->route_name, sizeof(ex->route_name), "passthrough");
            return;
        }
        local(ex, 404, "no service matches this Host");
        return;
    }
    ex->svc = svc;
    set_name(ex->service_name, sizeof(ex->service_name), svc->name);

    rm_request_view_t view = rm_routing_view(ex);
    int rc = rm_route_decide(svc, &view, rm_worker_random(w), &ex->decision);
    /* Stats and `meshctl stats --route` speak of Route documents; the rule goes to the access
     * log. Requests no rule matched are counted under "default". */
    set_name(ex->route_name, sizeof(ex->route_name),
             ex->decision.route_name && ex->decision.route_name[0] ? ex->decision.route_name
                                                                   : "default");
    set_name(ex->version_name, sizeof(ex->version_name), ex->decision.version);
    ex->timeout_ms = ex->decision.timeout_ms;
    if (rc == RM_ROUTE_NO_VERSION || rc < 0)
        local(ex, 503, "no healthy upstream");
    else if (ex->decision.mirror)
        rm_shadow_prepare(ex, &view);
}

/* Active requests of an endpoint on this worker, or -1 while outlier detection ejects it. */
static int endpoint_load(void *ctx, const rm_endpoint_ref_t *ep)
{
    rm_worker_t *w = ctx;
    rm_upstream_t *u = rm_upstream_find(w, ep->key);
    if (u == NULL)
        return 0;
    if (rm_outlier_is_ejected(&u->outlier, ev_now(w->loop)))
        return -1;
    return u->active;
}

static bool tried(const rm_exchange_t *ex, uint64_t key)
{
    for (size_t i = 0; i < ex->ntried; i++)
        if (ex->tried_keys[i] == key)
            return true;
    return false;
}

static bool ejected(rm_worker_t *w, const rm_endpoint_ref_t *ep)
{
    return endpoint_load(w, ep) < 0;
}

/* A retry under the default spread (no Route rule chose the version): the version is not the
 * user's choice, so when the chosen one has no untried endpoint left that is not ejected (its
 * last pod is draining during a v1 -> v2 rollout), another version's endpoint serves the retry.
 * *out is the chosen version's pick (tried, ejected, or NULL); an untried endpoint of another
 * version that is ejected only replaces a tried one or none. */
static int pick_other_version(rm_exchange_t *ex, const rm_endpoint_ref_t **out)
{
    rm_worker_t *w = ex->session->worker;
    const rm_service_t *svc = ex->svc;
    bool keep_untried = *out != NULL && !tried(ex, (*out)->key);
    const rm_endpoint_ref_t *choice = NULL; /* another version's pick, healthy ones first */
    size_t choice_version = 0;
    for (size_t v = 0; v < svc->nversions; v++) {
        if (v == ex->decision.version_index || svc->versions[v].nready == 0)
            continue;
        const rm_endpoint_ref_t *ep = NULL;
        if (rm_route_pick_endpoint(svc, v, rm_worker_random(w), endpoint_load, w, ex->tried_keys,
                                   ex->ntried, &ep) != 0 ||
            tried(ex, ep->key))
            continue;
        if (ejected(w, ep)) {
            if (choice == NULL && !keep_untried) {
                choice = ep;
                choice_version = v;
            }
            continue;
        }
        choice = ep;
        choice_version = v;
        break;
    }
    if (choice != NULL) {
        size_t v = choice_version;
        ex->decision.version_index = v;
        ex->decision.version = svc->versions[v].name;
        set_name(ex->version_name, sizeof(ex->version_name), svc->versions[v].name);
        *out = choice;
        return 0;
    }
    return *out != NULL ? 0 : -1; /* nothing better: the original choice */
}

rm_upstream_t *rm_routing_pick_upstream(rm_exchange_t *ex)
{
    rm_session_t *s = ex->session;
    rm_worker_t *w = s->worker;
    rm_upstream_t *up = NULL;
    bool sidecar = false; /* the local app and passthrough destinations never are */
    if (s->kind == RM_LISTENER_INBOUND) {
        /* The port the caller dialled when iptables redirected it here, else the app port (a
         * peer sidecar calls the inbound listener itself). */
        uint16_t port = (uint16_t)w->proxy->opt.app_port;
        if (s->has_orig_dst && s->orig_dst.sa.sa_family == AF_INET)
            port = ntohs(s->orig_dst.in4.sin_port);
        else if (s->has_orig_dst && s->orig_dst.sa.sa_family == AF_INET6)
            port = ntohs(s->orig_dst.in6.sin6_port);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons(port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        up = rm_upstream_get_addr(w, (struct sockaddr *)&a, sizeof(a));
    } else if (ex->passthrough) {
        socklen_t len = s->orig_dst.sa.sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                             : sizeof(struct sockaddr_in);
        up = rm_upstream_get_addr(w, &s->orig_dst.sa, len);
    } else if (ex->svc != NULL) {
        const rm_endpoint_ref_t *ep = NULL;
        int rc = rm_route_pick_endpoint(ex->svc, ex->decision.version_index, rm_worker_random(w),
                                        endpoint_load, w, ex->tried_keys, ex->ntried, &ep);
        if (ex->ntried > 0 && ex->decision.rule != NULL && ex->decision.rule->spread &&
            (rc != 0 || tried(ex, ep->key) || ejected(w, ep)))
            rc = pick_other_version(ex, &ep);
        if (rc != 0)
            return NULL;
        up = rm_upstream_get(w, ep);
        sidecar = ep->sidecar;
    }
    if (up != NULL) {
        ex->last_resort = ex->ntried > 0 && tried(ex, up->key);
        ex->endpoint_sidecar = sidecar;
        set_name(ex->endpoint_address, sizeof(ex->endpoint_address), up->address);
        if (ex->ntried < sizeof(ex->tried_keys) / sizeof(ex->tried_keys[0]))
            ex->tried_keys[ex->ntried++] = up->key;
    }
    return up;
}
