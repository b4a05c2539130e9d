/* controlplane/server/server.c — the completion-queue loop of remora-control: creating the
 * server, asking gRPC for the next call of every method, dispatching events to their tags,
 * running timers off the queue's wait deadline, and the clean shutdown.
 *
 * Blocking on this thread: only the store's calls (see server.h). A slow disk or etcd therefore
 * delays other calls by one transaction; it can never deadlock them, and a failed write answers
 * the apply with UNAVAILABLE while the last good config stays in force.
 *
 * One turn of the loop takes every event that is ready (up to RM_SERVER_TURN_EVENTS) and then
 * runs the housekeeping once: in a flood of Hellos or withdraws the pushes, the waiter checks
 * and the registration writes they cause are done once per turn, not once per event.
 *
 * Shutdown, as gRPC core wants it: grpc_server_shutdown_and_notify (no new calls), cancel every
 * call, keep turning the queue until the shutdown tag arrives (all calls done), then shut the
 * queue down and drain it until GRPC_QUEUE_SHUTDOWN, then destroy server and queue.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "common/log/log.h"
#include "controlplane/server/server-int.h"

/* How often the loop looks at the stop flag when nothing else wakes it. */
#define RM_SERVER_POLL_MS 100u
/* Most events handled in one turn of the loop before timers, pushes and store writes run. */
#define RM_SERVER_TURN_EVENTS 256

static void arm(rm_server_t *srv, rm__acceptor_t *a);

uint8_t *rm__bb_read(grpc_byte_buffer *bb, size_t *len)
{
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, bb))
        return NULL;
    grpc_slice s = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    *len = GRPC_SLICE_LENGTH(s);
    uint8_t *out = rm_xmalloc(*len);
    if (*len)
        memcpy(out, GRPC_SLICE_START_PTR(s), *len);
    grpc_slice_unref(s);
    return out;
}

static void snapshot_bytes_release(void *p)
{
    rm_snapshot_bytes_unref(p);
}

grpc_slice rm__snapshot_slice(const rm_scope_snapshot_t *snap)
{
    /* Every send of one scope's snapshot shares its bytes: 1,000 streams of one scope cost one
     * encode and no copy, whatever the number of scopes a push interleaves. */
    rm_snapshot_bytes_ref(snap->bytes);
    return grpc_slice_new_with_user_data(snap->bytes->data, snap->bytes->len,
                                         snapshot_bytes_release, snap->bytes);
}

static void on_accept(rm_server_t *srv, rm__tag_t *tag, int ok)
{
    rm__acceptor_t *a = rm__container_of(tag, rm__acceptor_t, tag);
    grpc_call *call = a->call;
    a->call = NULL;
    if (!ok || call == NULL) {
        /* The server is shutting down: the request was failed, not answered. */
        if (a->payload != NULL)
            grpc_byte_buffer_destroy(a->payload);
        a->payload = NULL;
        grpc_metadata_array_destroy(&a->md);
        if (a->kind == RM__ACCEPT_OTHER)
            grpc_call_details_destroy(&a->details);
        return;
    }
    switch (a->kind) {
    case RM__ACCEPT_STREAM:
        rm__stream_start(srv, call);
        break;
    case RM__ACCEPT_ADMIN:
        rm__unary_start(srv, a->method, call, a->payload);
        break;
    default: {
        char method[256];
        size_t n = GRPC_SLICE_LENGTH(a->details.method);
        if (n >= sizeof(method))
            n = sizeof(method) - 1;
        memcpy(method, GRPC_SLICE_START_PTR(a->details.method), n);
        method[n] = '\0';
        char msg[300];
        snprintf(msg, sizeof(msg), "remora-control does not serve %.250s", method);
        rm__call_reject(srv, call, GRPC_STATUS_UNIMPLEMENTED, msg);
        grpc_call_details_destroy(&a->details);
        break;
    }
    }
    if (a->payload != NULL)
        grpc_byte_buffer_destroy(a->payload);
    a->payload = NULL;
    grpc_metadata_array_destroy(&a->md);
    if (!srv->shutting_down)
        arm(srv, a);
}

static void arm(rm_server_t *srv, rm__acceptor_t *a)
{
    grpc_call_error e;
    a->tag.fn = on_accept;
    a->call = NULL;
    a->payload = NULL;
    grpc_metadata_array_init(&a->md);
    if (a->kind == RM__ACCEPT_OTHER) {
        grpc_call_details_init(&a->details);
        e = grpc_server_request_call(srv->server, &a->call, &a->details, &a->md, srv->cq, srv->cq,
                                     &a->tag);
    } else {
        e = grpc_server_request_registered_call(
            srv->server, a->registered, &a->call, &a->deadline, &a->md,
            a->kind == RM__ACCEPT_ADMIN ? &a->payload : NULL, srv->cq, srv->cq, &a->tag);
    }
    if (e != GRPC_CALL_OK)
        rm_log_error("cannot request calls: %s", grpc_call_error_to_string(e));
}

static void on_shutdown(rm_server_t *srv, rm__tag_t *tag, int ok)
{
    (void)tag;
    (void)ok;
    srv->shutdown_done = 1;
}

rm_server_t *rm_server_new(const char *listen, rm_control_t *ctl, char *err, size_t errlen)
{
    grpc_init();
    rm_server_t *srv = rm_xcalloc(1, sizeof(*srv));
    srv->ctl = ctl;
    srv->shutdown_tag.fn = on_shutdown;

    /* 4 MiB in: a bigger message fails with RESOURCE_EXHAUSTED inside gRPC, before us.
     * Keepalive: a sidecar whose pod vanished without a FIN is noticed within ~30 s, so its
     * endpoint does not linger; sidecars may ping every 10 s without being told off. */
    grpc_arg args[] = {
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = (int)RM_CP_MAX_MESSAGE},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_KEEPALIVE_TIME_MS, .value.integer = 20000},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_KEEPALIVE_TIMEOUT_MS, .value.integer = 10000},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
         .value.integer = 10000},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS,
         .value.integer = 1},
    };
    grpc_channel_args cargs = {.num_args = sizeof(args) / sizeof(args[0]), .args = args};
    srv->server = grpc_server_create(&cargs, NULL);
    srv->cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(srv->server, srv->cq, NULL);

    srv->stream_acc.kind = RM__ACCEPT_STREAM;
    srv->stream_acc.registered = grpc_server_register_method(
        srv->server, "/remora.v1.Discovery/Stream", NULL, GRPC_SRM_PAYLOAD_NONE, 0);
    for (int m = 0; m < RM_ADMIN_METHOD_COUNT; m++) {
        srv->admin_acc[m].kind = RM__ACCEPT_ADMIN;
        srv->admin_acc[m].method = (rm_admin_method_t)m;
        srv->admin_acc[m].registered =
            grpc_server_register_method(srv->server, rm_admin_method_path((rm_admin_method_t)m),
                                        NULL, GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    }
    srv->other_acc.kind = RM__ACCEPT_OTHER;

    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    srv->port = grpc_server_add_http2_port(srv->server, listen, creds);
    grpc_server_credentials_release(creds);
    if (srv->port == 0) {
        snprintf(err, errlen, "cannot listen on %s (address in use, or not HOST:PORT?)", listen);
        /* Never started: destroy needs no shutdown dance. */
        grpc_server_destroy(srv->server);
        grpc_completion_queue_shutdown(srv->cq);
        while (grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
               GRPC_QUEUE_SHUTDOWN)
            ;
        grpc_completion_queue_destroy(srv->cq);
        free(srv);
        grpc_shutdown();
        return NULL;
    }
    grpc_server_start(srv->server);
    arm(srv, &srv->stream_acc);
    for (int m = 0; m < RM_ADMIN_METHOD_COUNT; m++)
        arm(srv, &srv->admin_acc[m]);
    arm(srv, &srv->other_acc);
    return srv;
}

int rm_server_port(const rm_server_t *srv)
{
    return srv->port;
}

/* Timers and pushes, after every event and every wake-up. */
static void housekeeping(rm_server_t *srv)
{
    uint64_t now = rm_mono_ms();
    if (srv->shutting_down)
        return;
    rm_control_sync(srv->ctl, now);
    rm_control_tick(srv->ctl, now);
    if (rm_control_push_due(srv->ctl, now)) {
        uint64_t encoded = srv->ctl->pushes;
        rm__stream_push_all(srv);
        rm_control_push_done(srv->ctl);
        rm_log_debug("push: %llu snapshot(s) encoded for %zu stream(s)",
                     (unsigned long long)(srv->ctl->pushes - encoded), srv->n_streams);
    }
    if (srv->ctl->answers_changed || rm__unary_next_deadline(srv) <= now) {
        srv->ctl->answers_changed = 0;
        rm__unary_check_waiters(srv, now);
    }
}

static gpr_timespec next_wakeup(rm_server_t *srv)
{
    uint64_t now = rm_mono_ms();
    uint64_t at = now + RM_SERVER_POLL_MS;
    if (!srv->shutting_down) {
        uint64_t t = rm_control_next_deadline(srv->ctl);
        if (t < at)
            at = t;
        t = rm__unary_next_deadline(srv);
        if (t < at)
            at = t;
        /* A store other replicas write (etcd) is polled for their versions; see store.h. */
        t = rm_control_sync_interval(srv->ctl);
        if (t != UINT64_MAX && now + t < at)
            at = now + t;
    }
    uint64_t wait = at > now ? at - now : 0;
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                        gpr_time_from_millis((int64_t)wait, GPR_TIMESPAN));
}

static void begin_shutdown(rm_server_t *srv)
{
    rm_log_info("shutting down: %zu stream(s), %llu call(s) open", srv->n_streams,
                (unsigned long long)srv->live_calls);
    srv->shutting_down = 1;
    grpc_server_shutdown_and_notify(srv->server, srv->cq, &srv->shutdown_tag);
    grpc_server_cancel_all_calls(srv->server);
}

int rm_server_run(rm_server_t *srv, volatile sig_atomic_t *stop)
{
    int queue_shut = 0;
    for (;;) {
        if (*stop && !srv->shutting_down)
            begin_shutdown(srv);
        if (srv->shutdown_done && !queue_shut) {
            grpc_completion_queue_shutdown(srv->cq);
            queue_shut = 1;
        }
        grpc_event ev = grpc_completion_queue_next(srv->cq, next_wakeup(srv), NULL);
        int events = 0;
        while (ev.type == GRPC_OP_COMPLETE) {
            rm__tag_t *tag = ev.tag;
            tag->fn(srv, tag, ev.success);
            if (++events == RM_SERVER_TURN_EVENTS)
                break;
            /* Whatever else is ready, without waiting. */
            ev = grpc_completion_queue_next(srv->cq, gpr_inf_past(GPR_CLOCK_MONOTONIC), NULL);
        }
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        housekeeping(srv);
    }
    if (srv->live_calls != 0)
        rm_log_warn("%llu call(s) still open after shutdown", (unsigned long long)srv->live_calls);
    return 0;
}

void rm_server_free(rm_server_t *srv)
{
    if (srv == NULL)
        return;
    if (!srv->shutting_down) {
        /* Never run: do the shutdown dance here. */
        volatile sig_atomic_t stop = 1;
        rm_server_run(srv, &stop);
    }
    grpc_server_destroy(srv->server);
    grpc_completion_queue_destroy(srv->cq);
    free(srv);
    grpc_shutdown();
}
