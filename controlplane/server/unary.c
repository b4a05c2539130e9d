/* controlplane/server/unary.c — one Admin call (/remora.v1.Admin/<Method>), unary, as a small
 * state machine: the request message arrives with the call (the method is registered with
 * GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER); a close batch is started at once so a client that
 * gives up is noticed even while the call is parked; the answer is one batch of initial
 * metadata, the response message and the status.
 *
 * Parked calls (Apply with wait, WaitForAck) sit on the server's waiter list until every
 * connected sidecar has answered the version or the deadline passes; nothing blocks meanwhile.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log/log.h"
#include "controlplane/server/server-int.h"

struct rm__unary {
    rm__tag_t done_tag, close_tag;
    grpc_call *call; /* owned reference */
    rm_admin_method_t method;
    rm_admin_reply_t reply;
    grpc_byte_buffer *send_buf;
    grpc_slice details;
    int have_details;
    int cancelled;
    int pending;
    int closed, responded, waiting;
    rm__unary_t *prev, *next; /* the waiter list while waiting */
};

static void unary_maybe_free(rm_server_t *srv, rm__unary_t *u)
{
    if (u->pending > 0)
        return;
    rm_admin_reply_free(&u->reply);
    grpc_call_unref(u->call);
    free(u);
    srv->live_calls--;
}

static void waiter_unlink(rm_server_t *srv, rm__unary_t *u)
{
    if (!u->waiting)
        return;
    rm_admin_wait_count(srv->ctl, -1);
    if (u->prev != NULL)
        u->prev->next = u->next;
    else
        srv->waiters = u->next;
    if (u->next != NULL)
        u->next->prev = u->prev;
    u->prev = u->next = NULL;
    u->waiting = 0;
}

static void respond(rm__unary_t *u)
{
    grpc_op ops[3];
    size_t n = 0;
    if (u->responded || u->closed)
        return;
    u->responded = 1;
    memset(ops, 0, sizeof(ops));
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (u->reply.code == RM_STATUS_OK) {
        grpc_slice body = grpc_slice_from_copied_buffer((const char *)u->reply.body, u->reply.len);
        u->send_buf = grpc_raw_byte_buffer_create(&body, 1);
        grpc_slice_unref(body);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = u->send_buf;
        n++;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = (grpc_status_code)u->reply.code;
    if (u->reply.details != NULL) {
        u->details = grpc_slice_from_copied_string(u->reply.details);
        u->have_details = 1;
        ops[n].data.send_status_from_server.status_details = &u->details;
    }
    n++;
    grpc_call_error e = grpc_call_start_batch(u->call, ops, n, &u->done_tag, NULL);
    if (e != GRPC_CALL_OK) {
        rm_log_error("admin call: start_batch failed: %s", grpc_call_error_to_string(e));
        return;
    }
    u->pending++;
}

static void on_done(rm_server_t *srv, rm__tag_t *tag, int ok)
{
    rm__unary_t *u = rm__container_of(tag, rm__unary_t, done_tag);
    (void)ok;
    if (u->send_buf != NULL)
        grpc_byte_buffer_destroy(u->send_buf);
    u->send_buf = NULL;
    if (u->have_details)
        grpc_slice_unref(u->details);
    u->have_details = 0;
    u->pending--;
    unary_maybe_free(srv, u);
}

static void on_close(rm_server_t *srv, rm__tag_t *tag, int ok)
{
    rm__unary_t *u = rm__container_of(tag, rm__unary_t, close_tag);
    (void)ok;
    u->closed = 1;
    u->pending--;
    /* A parked call whose client went away (deadline, cancel, shutdown) stops waiting. */
    waiter_unlink(srv, u);
    unary_maybe_free(srv, u);
}

void rm__unary_start(rm_server_t *srv, rm_admin_method_t m, grpc_call *call,
                     grpc_byte_buffer *payload)
{
    rm__unary_t *u = rm_xcalloc(1, sizeof(*u));
    u->done_tag.fn = on_done;
    u->close_tag.fn = on_close;
    u->call = call;
    u->method = m;
    srv->live_calls++;

    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &u->cancelled;
    if (grpc_call_start_batch(call, &op, 1, &u->close_tag, NULL) == GRPC_CALL_OK)
        u->pending++;

    uint8_t *data = NULL;
    size_t len = 0;
    if (payload == NULL) {
        u->reply.code = RM_STATUS_INVALID_ARGUMENT;
        u->reply.details = rm_xasprintf("%s: no request message", rm_admin_method_path(m));
    } else if ((data = rm__bb_read(payload, &len)) == NULL) {
        u->reply.code = RM_STATUS_INVALID_ARGUMENT;
        u->reply.details = rm_xstrdup("unreadable request message (bad compression?)");
    } else {
        rm_admin_handle(srv->ctl, m, data, len, rm_mono_ms(), &u->reply);
    }
    free(data);
    if (u->reply.code != RM_STATUS_OK)
        rm_log_debug("%s: status %d: %.300s", rm_admin_method_path(m), (int)u->reply.code,
                     u->reply.details != NULL ? u->reply.details : "");
    if (u->reply.wait && !rm_admin_wait_ready(srv->ctl, &u->reply)) {
        u->waiting = 1;
        rm_admin_wait_count(srv->ctl, 1);
        u->next = srv->waiters;
        if (srv->waiters != NULL)
            srv->waiters->prev = u;
        srv->waiters = u;
    } else {
        if (u->reply.wait)
            rm_admin_wait_finish(srv->ctl, m, &u->reply, 0, rm_mono_ms());
        respond(u);
    }
    unary_maybe_free(srv, u);
}

void rm__unary_check_waiters(rm_server_t *srv, uint64_t now_ms)
{
    rm__unary_t *u = srv->waiters;
    while (u != NULL) {
        rm__unary_t *next = u->next;
        int ready = rm_admin_wait_ready(srv->ctl, &u->reply);
        if (ready || now_ms >= u->reply.wait_deadline_ms) {
            waiter_unlink(srv, u);
            rm_admin_wait_finish(srv->ctl, u->method, &u->reply, !ready, now_ms);
            respond(u);
        }
        u = next;
    }
}

uint64_t rm__unary_next_deadline(const rm_server_t *srv)
{
    uint64_t next = UINT64_MAX;
    for (const rm__unary_t *u = srv->waiters; u != NULL; u = u->next)
        if (u->reply.wait_deadline_ms < next)
            next = u->reply.wait_deadline_ms;
    return next;
}

/* ---- calls ended at once: methods we do not serve, streams past the cap ---- */

typedef struct reject {
    rm__tag_t tag;
    grpc_call *call;
    grpc_slice details;
    int cancelled;
} reject_t;

static void on_reject_done(rm_server_t *srv, rm__tag_t *tag, int ok)
{
    reject_t *r = rm__container_of(tag, reject_t, tag);
    (void)ok;
    grpc_slice_unref(r->details);
    grpc_call_unref(r->call);
    free(r);
    srv->live_calls--;
}

void rm__call_reject(rm_server_t *srv, grpc_call *call, grpc_status_code status,
                     const char *message)
{
    reject_t *r = rm_xcalloc(1, sizeof(*r));
    r->tag.fn = on_reject_done;
    r->call = call;
    r->details = grpc_slice_from_copied_string(message);
    grpc_op ops[3];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[1].data.send_status_from_server.status = status;
    ops[1].data.send_status_from_server.status_details = &r->details;
    ops[2].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[2].data.recv_close_on_server.cancelled = &r->cancelled;
    srv->live_calls++;
    if (grpc_call_start_batch(call, ops, 3, &r->tag, NULL) != GRPC_CALL_OK)
        on_reject_done(srv, &r->tag, 0);
}
