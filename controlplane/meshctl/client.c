/* controlplane/meshctl/client.c — unary calls to remora-control's Admin API with gRPC core's C
 * API: one batch per call (send metadata, message and close; receive metadata, message and
 * status), plucked from a private completion queue with the call's deadline.
 *
 * gRPC rules followed: the batch's single completion is awaited before the call is unref'd, and
 * the queue is shut down and drained before it is destroyed.
 */
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/meshctl/meshctl.h"

/* Configs and stats can be large; the server accepts up to 4 MiB requests, answers may be more. */
#define MAX_RECV_BYTES (64 * 1024 * 1024)

static int ensure_channel(rm__cli_t *cli)
{
    if (cli->channel != NULL)
        return 0;
    grpc_init();
    grpc_arg arg;
    memset(&arg, 0, sizeof(arg));
    arg.type = GRPC_ARG_INTEGER;
    arg.key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    arg.value.integer = MAX_RECV_BYTES;
    grpc_channel_args args = {1, &arg};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    cli->channel = grpc_channel_create(cli->server, creds, &args);
    grpc_channel_credentials_release(creds);
    cli->cq = grpc_completion_queue_create_for_pluck(NULL);
    return cli->channel != NULL && cli->cq != NULL ? 0 : -1;
}

void rm__rpc_close(rm__cli_t *cli)
{
    if (cli->cq != NULL) {
        grpc_completion_queue_shutdown(cli->cq);
        /* Nothing is pending (every call was plucked); this only sees the shutdown event. */
        while (grpc_completion_queue_pluck(cli->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
                   .type != GRPC_QUEUE_SHUTDOWN)
            ;
        grpc_completion_queue_destroy(cli->cq);
        cli->cq = NULL;
    }
    if (cli->channel != NULL) {
        grpc_channel_destroy(cli->channel);
        cli->channel = NULL;
        grpc_shutdown();
    }
}

/* Prints every line of the server's details, so each file:line:col error is its own line. */
static void print_details(const char *method, const char *details)
{
    if (details == NULL || *details == '\0') {
        fprintf(stderr, "meshctl: %s failed without details\n", method);
        return;
    }
    const char *p = details;
    while (*p != '\0') {
        size_t len = strcspn(p, "\n");
        fprintf(stderr, "error: %.*s\n", (int)len, p);
        p += len;
        if (*p == '\n')
            p++;
    }
}

int rm__rpc(rm__cli_t *cli, const char *method, const ProtobufCMessage *req,
            const ProtobufCMessageDescriptor *rdesc, uint64_t timeout_ms, ProtobufCMessage **out)
{
    int rc = RM__EXIT_UNREACHABLE;
    *out = NULL;
    if (ensure_channel(cli) < 0) {
        fprintf(stderr, "meshctl: cannot reach the control plane at %s: cannot create a channel\n",
                cli->server);
        return RM__EXIT_UNREACHABLE;
    }
    if (timeout_ms == 0)
        timeout_ms = cli->timeout_ms;

    char path[96];
    snprintf(path, sizeof(path), "/remora.v1.Admin/%s", method);
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                                         gpr_time_from_millis((int64_t)timeout_ms, GPR_TIMESPAN));
    grpc_slice mslice = grpc_slice_from_copied_string(path);
    grpc_call *call = grpc_channel_create_call(cli->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cli->cq,
                                               mslice, NULL, deadline, NULL);
    grpc_slice_unref(mslice);

    size_t len = protobuf_c_message_get_packed_size(req);
    uint8_t *bytes = rm__xmalloc(len);
    protobuf_c_message_pack(req, bytes);
    grpc_slice body = grpc_slice_from_copied_buffer((const char *)bytes, len);
    free(bytes);
    grpc_byte_buffer *send_buf = grpc_raw_byte_buffer_create(&body, 1);
    grpc_slice_unref(body);

    grpc_metadata_array init_md, trailing_md;
    grpc_metadata_array_init(&init_md);
    grpc_metadata_array_init(&trailing_md);
    grpc_byte_buffer *recv_buf = NULL;
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();

    grpc_op ops[6];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send_buf;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv_buf;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing_md;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;

    void *tag = (void *)call;
    if (grpc_call_start_batch(call, ops, 6, tag, NULL) != GRPC_CALL_OK) {
        fprintf(stderr, "meshctl: cannot reach the control plane at %s: cannot start the call\n",
                cli->server);
        goto out;
    }
    /* The call has its own deadline, so its completion always arrives; waiting without a limit
     * here cannot hang past it. */
    grpc_event ev =
        grpc_completion_queue_pluck(cli->cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type != GRPC_OP_COMPLETE) {
        fprintf(stderr, "meshctl: cannot reach the control plane at %s: the call was lost\n",
                cli->server);
        goto out;
    }

    char *text = grpc_slice_to_c_string(details);
    if (status == GRPC_STATUS_UNAVAILABLE || status == GRPC_STATUS_DEADLINE_EXCEEDED) {
        fprintf(stderr, "meshctl: cannot reach the control plane at %s: %s\n", cli->server,
                status == GRPC_STATUS_DEADLINE_EXCEEDED ? "no answer before the deadline"
                                                        : (*text ? text : "unavailable"));
        rc = RM__EXIT_UNREACHABLE;
    } else if (status != GRPC_STATUS_OK) {
        print_details(method, text);
        rc = RM__EXIT_REJECTED;
    } else {
        uint8_t *data = NULL;
        size_t n = 0;
        grpc_slice all = grpc_empty_slice();
        if (recv_buf != NULL) {
            grpc_byte_buffer_reader reader;
            if (grpc_byte_buffer_reader_init(&reader, recv_buf)) {
                all = grpc_byte_buffer_reader_readall(&reader);
                grpc_byte_buffer_reader_destroy(&reader);
            }
            data = GRPC_SLICE_START_PTR(all);
            n = GRPC_SLICE_LENGTH(all);
        }
        *out = protobuf_c_message_unpack(rdesc, NULL, n, data);
        grpc_slice_unref(all);
        if (*out == NULL) {
            fprintf(stderr, "meshctl: the control plane at %s sent a malformed %s answer\n",
                    cli->server, method);
            rc = RM__EXIT_UNREACHABLE;
        } else {
            rc = RM__EXIT_OK;
        }
    }
    gpr_free(text);

out:
    if (recv_buf != NULL)
        grpc_byte_buffer_destroy(recv_buf);
    grpc_byte_buffer_destroy(send_buf);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&init_md);
    grpc_metadata_array_destroy(&trailing_md);
    grpc_call_unref(call);
    return rc;
}
