/* controlplane/meshctl/client.c — unary calls to remora-control's Admin API: the channel, a
 * private pluck completion queue, and what each outcome of a call (controlplane/grpcutil) means
 * to the user and to meshctl's exit code.
 *
 * gRPC rules followed: the queue is shut down and drained before it is destroyed (each call's
 * completion is awaited by rm_unary_call).
 */
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/grpcutil/unary.h"
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
    rm_unary_result_t res;
    int rc = RM__EXIT_UNREACHABLE;
    switch (rm_unary_call(cli->channel, cli->cq, path, req, rdesc, timeout_ms, &res)) {
    case 0:
        *out = res.reply;
        res.reply = NULL; /* ours now */
        rc = RM__EXIT_OK;
        break;
    case RM_UNARY_ESTATUS:
        if (res.status == GRPC_STATUS_UNAVAILABLE || res.status == GRPC_STATUS_DEADLINE_EXCEEDED) {
            fprintf(stderr, "meshctl: cannot reach the control plane at %s: %s\n", cli->server,
                    res.status == GRPC_STATUS_DEADLINE_EXCEEDED
                        ? "no answer before the deadline"
                        : (*res.details ? res.details : "unavailable"));
        } else {
            print_details(method, res.details);
            rc = RM__EXIT_REJECTED;
        }
        break;
    case RM_UNARY_ESTART:
        fprintf(stderr, "meshctl: cannot reach the control plane at %s: %s\n", cli->server,
                res.details);
        break;
    default: /* no reply message, or one that does not unpack */
        fprintf(stderr, "meshctl: the control plane at %s sent a malformed %s answer (%s)\n",
                cli->server, method, res.details);
        break;
    }
    rm_unary_result_free(&res);
    return rc;
}
