/* controlplane/server/stream.c — one discovery stream (/remora.v1.Discovery/Stream) as a state
 * machine over gRPC batches.
 *
 * Batches in flight at any time, each with its own tag embedded here:
 *   close   RECV_CLOSE_ON_SERVER, started at once and completing when the call is over (client
 *           gone, cancelled, or after our status): the one place the stream ends;
 *   recv    RECV_MESSAGE, always re-armed after a message until the stream finishes;
 *   send    SEND_MESSAGE of a snapshot (with the initial metadata the first time); at most one,
 *           and when it completes the newest snapshot is sent if the stream has not had it, so
 *           a slow sidecar gets the latest config, never a backlog;
 *   status  SEND_STATUS_FROM_SERVER, once, after any send in flight has completed.
 * `pending` counts them; the stream is freed when it reaches zero.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log/log.h"
#include "controlplane/server/server-int.h"

struct rm__stream {
    rm__tag_t recv_tag, send_tag, close_tag, status_tag;
    grpc_call *call; /* owned reference */
    grpc_byte_buffer *recv_buf;
    grpc_byte_buffer *send_buf;
    grpc_slice status_details;
    int cancelled; /* written by gRPC when the close batch completes */
    int pending;   /* batches in flight */
    int md_sent, sending, closed, finishing, status_sent, receiving;
    rm_status_t fin_code;
    char fin_msg[512];
    uint64_t sent_gen; /* snapshot generation last sent */
    rm_sidecar_t *sc;  /* the registry's entry (owned by the registry); NULL once closed */
    rm__stream_t *prev, *next;
};

static void stream_maybe_free(rm_server_t *srv, rm__stream_t *s)
{
    if (s->pending > 0)
        return;
    grpc_call_unref(s->call);
    free(s);
    srv->live_calls--;
}

static void start(rm__stream_t *s, const grpc_op *ops, size_t n, rm__tag_t *tag)
{
    grpc_call_error e = grpc_call_start_batch(s->call, ops, n, tag, NULL);
    if (e != GRPC_CALL_OK) {
        /* Only a programming error gets here (two batches of one kind): log it loudly; the call
         * will still end through its close batch. */
        rm_log_error("discovery stream: start_batch failed: %s", grpc_call_error_to_string(e));
        return;
    }
    s->pending++;
}

static void send_status(rm__stream_t *s)
{
    grpc_op ops[2];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    if (!s->md_sent) {
        ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
        n++;
        s->md_sent = 1;
    }
    s->status_details = grpc_slice_from_copied_string(s->fin_msg);
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = (grpc_status_code)s->fin_code;
    ops[n].data.send_status_from_server.status_details = s->fin_msg[0] ? &s->status_details : NULL;
    n++;
    s->status_sent = 1;
    start(s, ops, n, &s->status_tag);
}

/* Decides how the stream ends; the status goes out once no send is in flight. */
static void finish(rm__stream_t *s, rm_status_t code, const char *msg)
{
    if (s->finishing)
        return;
    s->finishing = 1;
    s->fin_code = code;
    snprintf(s->fin_msg, sizeof(s->fin_msg), "%s", msg != NULL ? msg : "");
    /* A cap's refusals are logged by the core, at most every 10 s: a flood of them must not
     * be a line each. */
    if (code == RM_STATUS_RESOURCE_EXHAUSTED)
        rm_log_debug("discovery stream ended: %s", s->fin_msg);
    else if (code != RM_STATUS_OK)
        rm_log_info("discovery stream of %s ended: %s",
                    s->sc != NULL && s->sc->hello ? s->sc->pod : "(no Hello yet)", s->fin_msg);
    if (!s->closed && !s->sending)
        send_status(s);
}

static void start_recv(rm__stream_t *s)
{
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &s->recv_buf;
    s->receiving = 1;
    start(s, &op, 1, &s->recv_tag);
}

void rm__stream_push(rm_server_t *srv, rm__stream_t *s, int first)
{
    if (s->closed || s->finishing || s->sending || s->sc == NULL || !s->sc->hello ||
        srv->shutting_down)
        return;
    /* Never a rebuild here except for Hello and the debounced push (rm__stream_push_all): a
     * stream only ever catches up to the newest snapshot built for its scope. */
    const rm_scope_snapshot_t *snap =
        rm_control_sidecar_snapshot(srv->ctl, s->sc, first ? RM_SNAP_HELLO : RM_SNAP_CURRENT);
    if (snap->gen == 0 || s->sent_gen == snap->gen)
        return;
    grpc_slice slice = rm__snapshot_slice(snap);
    s->send_buf = grpc_raw_byte_buffer_create(&slice, 1); /* takes its own slice reference */
    grpc_slice_unref(slice);
    grpc_op ops[2];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    if (!s->md_sent) {
        ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
        n++;
        s->md_sent = 1;
    }
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].data.send_message.send_message = s->send_buf;
    n++;
    rm_discovery_sent(srv->ctl, s->sc, snap);
    s->sent_gen = snap->gen;
    s->sending = 1;
    start(s, ops, n, &s->send_tag);
}

void rm__stream_push_all(rm_server_t *srv)
{
    /* Each scope is rebuilt by the first of its streams met here, then found built by the rest:
     * one encode per scope per push. Also for a stream with a send in flight, which picks the new
     * snapshot up when that send completes (without a rebuild of its own). */
    for (rm__stream_t *s = srv->streams; s != NULL; s = s->next) {
        if (s->sc != NULL && s->sc->hello && !s->closed)
            rm_control_sidecar_snapshot(srv->ctl, s->sc, RM_SNAP_PUSH);
        rm__stream_push(srv, s, 0);
    }
}

static void on_recv(rm_server_t *srv, rm__tag_t *tag, int ok)
{
    rm__stream_t *s = rm__container_of(tag, rm__stream_t, recv_tag);
    grpc_byte_buffer *bb = s->recv_buf;
    s->recv_buf = NULL;
    s->receiving = 0;
    s->pending--;
    if (!ok || s->closed || s->finishing) {
        /* The call failed or is over (e.g. a message above the size limit: gRPC has already
         * failed the call with RESOURCE_EXHAUSTED); the close batch tells us the rest. */
        if (bb != NULL)
            grpc_byte_buffer_destroy(bb);
        stream_maybe_free(srv, s);
        return;
    }
    if (bb == NULL) {
        /* The sidecar half-closed: it has nothing more to say, so the stream is done. */
        finish(s, RM_STATUS_OK, "");
        stream_maybe_free(srv, s);
        return;
    }
    size_t len;
    uint8_t *data = rm__bb_read(bb, &len);
    grpc_byte_buffer_destroy(bb);
    if (data == NULL) {
        finish(s, RM_STATUS_INVALID_ARGUMENT, "unreadable message (bad compression?)");
        stream_maybe_free(srv, s);
        return;
    }
    rm_disc_result_t res;
    int rc = rm_discovery_handle(srv->ctl, s->sc, data, len, rm_mono_ms(), &res);
    free(data);
    if (rc < 0) {
        finish(s, res.code, res.message);
    } else {
        if (res.send_now)
            rm__stream_push(srv, s, 1);
        start_recv(s);
    }
    stream_maybe_free(srv, s);
}

static void on_send(rm_server_t *srv, rm__tag_t *tag, int ok)
{
    rm__stream_t *s = rm__container_of(tag, rm__stream_t, send_tag);
    (void)ok; /* a failed send means the call is going away; the close batch handles that */
    grpc_byte_buffer_destroy(s->send_buf);
    s->send_buf = NULL;
    s->sending = 0;
    s->pending--;
    if (s->finishing && !s->status_sent && !s->closed)
        send_status(s);
    else if (ok)
        rm__stream_push(srv, s, 0);
    stream_maybe_free(srv, s);
}

static void on_status(rm_server_t *srv, rm__tag_t *tag, int ok)
{
    rm__stream_t *s = rm__container_of(tag, rm__stream_t, status_tag);
    (void)ok;
    grpc_slice_unref(s->status_details);
    s->pending--;
    stream_maybe_free(srv, s);
}

static void on_close(rm_server_t *srv, rm__tag_t *tag, int ok)
{
    rm__stream_t *s = rm__container_of(tag, rm__stream_t, close_tag);
    (void)ok;
    s->closed = 1;
    s->pending--;
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        srv->streams = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    srv->n_streams--;
    rm_discovery_close(srv->ctl, s->sc, rm_mono_ms());
    s->sc = NULL;
    stream_maybe_free(srv, s);
}

void rm__stream_start(rm_server_t *srv, grpc_call *call)
{
    rm_sidecar_t *sc = rm_discovery_open(srv->ctl, rm_mono_ms());
    if (sc == NULL) {
        /* --max-streams: refused before it costs anything but this answer; the streams open
         * are unaffected. */
        char msg[300];
        rm_control_cap_message(srv->ctl, RM_CAP_STREAMS, msg, sizeof(msg));
        rm__call_reject(srv, call, GRPC_STATUS_RESOURCE_EXHAUSTED, msg);
        return;
    }
    rm__stream_t *s = rm_xcalloc(1, sizeof(*s));
    s->recv_tag.fn = on_recv;
    s->send_tag.fn = on_send;
    s->close_tag.fn = on_close;
    s->status_tag.fn = on_status;
    s->call = call;
    s->sc = sc;
    s->next = srv->streams;
    if (srv->streams != NULL)
        srv->streams->prev = s;
    srv->streams = s;
    srv->n_streams++;
    srv->live_calls++;

    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &s->cancelled;
    start(s, &op, 1, &s->close_tag);
    start_recv(s);
}
