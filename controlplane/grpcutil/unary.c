/* controlplane/grpcutil/unary.c — one unary gRPC call (see unary.h). */
#include "controlplane/grpcutil/unary.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/support/time.h>

/* The control plane and the CLI may abort on a failed allocation (STYLE.md); nothing here runs
 * on a data path. */
static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fputs("out of memory\n", stderr);
        abort();
    }
    return p;
}

static char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

int rm_unary_start(rm_unary_t *u, grpc_channel *ch, grpc_completion_queue *cq, const char *method,
                   const ProtobufCMessage *req, gpr_timespec deadline, void *tag)
{
    memset(u, 0, sizeof(*u));
    grpc_metadata_array_init(&u->md_in);
    grpc_metadata_array_init(&u->md_trail);
    u->status = GRPC_STATUS_UNKNOWN;
    u->details = grpc_empty_slice();

    size_t len = protobuf_c_message_get_packed_size(req);
    uint8_t *buf = xmalloc(len);
    protobuf_c_message_pack(req, buf);
    grpc_slice body = grpc_slice_from_copied_buffer((const char *)buf, len);
    free(buf);
    u->send = grpc_raw_byte_buffer_create(&body, 1);
    grpc_slice_unref(body);

    grpc_slice mslice = grpc_slice_from_copied_string(method);
    u->call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, mslice, NULL,
                                       deadline, NULL);
    grpc_slice_unref(mslice);

    grpc_op ops[6];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = u->send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &u->md_in;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &u->recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &u->md_trail;
    ops[5].data.recv_status_on_client.status = &u->status;
    ops[5].data.recv_status_on_client.status_details = &u->details;
    u->start_err = grpc_call_start_batch(u->call, ops, 6, tag, NULL);
    u->started = u->start_err == GRPC_CALL_OK;
    return u->started ? 0 : RM_UNARY_ESTART;
}

/* The reply's bytes as one slice (caller unrefs), or -1 when the buffer cannot be read. */
static int read_reply(grpc_byte_buffer *bb, grpc_slice *out)
{
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, bb))
        return -1;
    *out = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    return 0;
}

static void fail(rm_unary_result_t *res, int rc, const char *why)
{
    res->rc = rc;
    free(res->details);
    res->details = xstrdup(why);
}

void rm_unary_finish(rm_unary_t *u, const ProtobufCMessageDescriptor *desc, rm_unary_result_t *res)
{
    memset(res, 0, sizeof(*res));
    res->status = u->status;
    res->details =
        xstrndup((const char *)GRPC_SLICE_START_PTR(u->details), GRPC_SLICE_LENGTH(u->details));
    if (!u->started) {
        char why[160];
        snprintf(why, sizeof(why), "cannot start the call: %s",
                 grpc_call_error_to_string(u->start_err));
        fail(res, RM_UNARY_ESTART, why);
    } else if (u->status != GRPC_STATUS_OK) {
        res->rc = RM_UNARY_ESTATUS;
    } else if (u->recv == NULL) {
        fail(res, RM_UNARY_ENOREPLY, "no reply message");
    } else {
        grpc_slice all;
        if (read_reply(u->recv, &all) != 0) {
            fail(res, RM_UNARY_EMALFORMED, "unreadable reply");
        } else {
            const uint8_t *p = GRPC_SLICE_START_PTR(all);
            size_t n = GRPC_SLICE_LENGTH(all);
            if (desc == NULL) {
                res->bytes = xmalloc(n);
                if (n)
                    memcpy(res->bytes, p, n);
                res->len = n;
            } else if ((res->reply = protobuf_c_message_unpack(desc, NULL, n, p)) == NULL) {
                fail(res, RM_UNARY_EMALFORMED, "malformed reply");
            }
            grpc_slice_unref(all);
        }
    }
    if (u->recv != NULL)
        grpc_byte_buffer_destroy(u->recv);
    if (u->send != NULL)
        grpc_byte_buffer_destroy(u->send);
    grpc_slice_unref(u->details);
    grpc_metadata_array_destroy(&u->md_in);
    grpc_metadata_array_destroy(&u->md_trail);
    if (u->call != NULL)
        grpc_call_unref(u->call);
    memset(u, 0, sizeof(*u));
}

int rm_unary_call(grpc_channel *ch, grpc_completion_queue *pluck_cq, const char *method,
                  const ProtobufCMessage *req, const ProtobufCMessageDescriptor *desc,
                  uint64_t timeout_ms, rm_unary_result_t *res)
{
    rm_unary_t u;
    gpr_timespec now = gpr_now(GPR_CLOCK_MONOTONIC);
    gpr_timespec deadline =
        timeout_ms ? gpr_time_add(now, gpr_time_from_millis((int64_t)timeout_ms, GPR_TIMESPAN))
                   : gpr_inf_future(GPR_CLOCK_MONOTONIC);
    /* The call's own deadline ends it; the pluck's is only a backstop a little later. */
    gpr_timespec backstop = timeout_ms
                                ? gpr_time_add(deadline, gpr_time_from_millis(2000, GPR_TIMESPAN))
                                : gpr_inf_future(GPR_CLOCK_MONOTONIC);
    if (rm_unary_start(&u, ch, pluck_cq, method, req, deadline, &u) == 0) {
        grpc_event ev = grpc_completion_queue_pluck(pluck_cq, &u, backstop, NULL);
        if (ev.type != GRPC_OP_COMPLETE) {
            /* Cannot happen with a deadline on the call; cancel and wait for the batch so the
             * queue holds nothing of this call afterwards. */
            grpc_call_cancel(u.call, NULL);
            grpc_completion_queue_pluck(pluck_cq, &u, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
            u.status = GRPC_STATUS_DEADLINE_EXCEEDED;
        }
    }
    rm_unary_finish(&u, desc, res);
    return res->rc;
}

void rm_unary_result_free(rm_unary_result_t *res)
{
    free(res->details);
    if (res->reply != NULL)
        protobuf_c_message_free_unpacked(res->reply, NULL);
    free(res->bytes);
    memset(res, 0, sizeof(*res));
}
