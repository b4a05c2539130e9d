/* controlplane/grpcutil/unary_test.c — rm_unary_call against a small gRPC core server in the
 * same process (its own thread and queue): a reply, a non-OK status with details, OK without a
 * message, a reply that does not unpack, raw bytes, and a port nobody listens on (bounded by the
 * deadline).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "controlplane/grpcutil/unary.h"

/* The message both ways: one string field (text = 1), with a hand-written protobuf-c descriptor
 * so the test needs no .proto of its own. */
typedef struct {
    ProtobufCMessage base;
    char *text;
} echo_t;

static const ProtobufCFieldDescriptor echo_fields[] = {
    {"text", 1, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_STRING, 0, offsetof(echo_t, text), NULL,
     &protobuf_c_empty_string, 0, 0, NULL, NULL},
};
static const unsigned echo_by_name[] = {0};
static const ProtobufCIntRange echo_ranges[] = {{1, 0}, {0, 1}};
static void echo_init(ProtobufCMessage *m);
static const ProtobufCMessageDescriptor echo_desc = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
    "test.Echo",
    "Echo",
    "Echo",
    "test",
    sizeof(echo_t),
    1,
    echo_fields,
    echo_by_name,
    1,
    echo_ranges,
    (ProtobufCMessageInit)echo_init,
    NULL,
    NULL,
    NULL,
};
static void echo_init(ProtobufCMessage *m)
{
    static const echo_t init = {PROTOBUF_C_MESSAGE_INIT(&echo_desc),
                                (char *)protobuf_c_empty_string};
    *(echo_t *)m = init;
}

/* ---- the server: answers by method name ---- */

typedef struct server {
    grpc_server *srv;
    grpc_completion_queue *cq;
    int port;
    pthread_t thread;
} server_t;

static void answer(grpc_completion_queue *cq, grpc_call *call, const char *method)
{
    grpc_byte_buffer *in = NULL, *out = NULL;
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &in;
    grpc_call_start_batch(call, &op, 1, &op, NULL);
    grpc_completion_queue_pluck(cq, &op, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (in != NULL)
        grpc_byte_buffer_destroy(in);

    grpc_status_code status = GRPC_STATUS_OK;
    const char *details = NULL;
    grpc_slice body = grpc_empty_slice();
    if (strcmp(method, "/test.T/Ok") == 0) {
        static const uint8_t reply[] = {0x0a, 0x02, 'h', 'i'}; /* text: "hi" */
        body = grpc_slice_from_copied_buffer((const char *)reply, sizeof(reply));
        out = grpc_raw_byte_buffer_create(&body, 1);
    } else if (strcmp(method, "/test.T/Bad") == 0) {
        body = grpc_slice_from_copied_string("\x0a\x05hi"); /* length past the end */
        out = grpc_raw_byte_buffer_create(&body, 1);
    } else if (strcmp(method, "/test.T/Refuse") == 0) {
        status = GRPC_STATUS_INVALID_ARGUMENT;
        details = "line 1\nline 2";
    } /* /test.T/Empty: OK and no message */
    grpc_slice dslice = grpc_slice_from_copied_string(details ? details : "");
    grpc_op ops[3];
    memset(ops, 0, sizeof(ops));
    size_t n = 0;
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (out != NULL) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = out;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = status;
    ops[n++].data.send_status_from_server.status_details = details ? &dslice : NULL;
    grpc_call_start_batch(call, ops, n, ops, NULL);
    grpc_completion_queue_pluck(cq, ops, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (out != NULL)
        grpc_byte_buffer_destroy(out);
    grpc_slice_unref(body);
    grpc_slice_unref(dslice);
}

static void *serve(void *arg)
{
    server_t *s = arg;
    for (;;) {
        grpc_call *call = NULL;
        grpc_call_details d;
        grpc_metadata_array md;
        grpc_call_details_init(&d);
        grpc_metadata_array_init(&md);
        grpc_server_request_call(s->srv, &call, &d, &md, s->cq, s->cq, &d);
        grpc_event ev =
            grpc_completion_queue_pluck(s->cq, &d, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_OP_COMPLETE && ev.success) {
            char *m = grpc_slice_to_c_string(d.method);
            answer(s->cq, call, m);
            gpr_free(m);
            grpc_call_unref(call);
        }
        grpc_call_details_destroy(&d);
        grpc_metadata_array_destroy(&md);
        if (ev.type != GRPC_OP_COMPLETE || !ev.success)
            return NULL;
    }
}

static int setup(void **state)
{
    static server_t s;
    grpc_init();
    s.srv = grpc_server_create(NULL, NULL);
    s.cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_server_register_completion_queue(s.srv, s.cq, NULL);
    grpc_server_credentials *cr = grpc_insecure_server_credentials_create();
    s.port = grpc_server_add_http2_port(s.srv, "127.0.0.1:0", cr);
    grpc_server_credentials_release(cr);
    grpc_server_start(s.srv);
    pthread_create(&s.thread, NULL, serve, &s);
    *state = &s;
    return s.port > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    server_t *s = *state;
    int tag;
    grpc_server_shutdown_and_notify(s->srv, s->cq, &tag);
    grpc_server_cancel_all_calls(s->srv);
    pthread_join(s->thread, NULL);
    grpc_completion_queue_pluck(s->cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_server_destroy(s->srv);
    grpc_completion_queue_shutdown(s->cq);
    while (
        grpc_completion_queue_pluck(s->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
        GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(s->cq);
    grpc_shutdown();
    return 0;
}

typedef struct client {
    grpc_channel *ch;
    grpc_completion_queue *cq;
} client_t;

static client_t client_to(int port)
{
    char target[32];
    snprintf(target, sizeof(target), "127.0.0.1:%d", port);
    grpc_channel_credentials *cr = grpc_insecure_credentials_create();
    client_t c = {grpc_channel_create(target, cr, NULL),
                  grpc_completion_queue_create_for_pluck(NULL)};
    grpc_channel_credentials_release(cr);
    return c;
}

static void client_close(client_t *c)
{
    grpc_channel_destroy(c->ch);
    grpc_completion_queue_shutdown(c->cq);
    while (
        grpc_completion_queue_pluck(c->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
        GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(c->cq);
}

static void test_outcomes(void **state)
{
    server_t *s = *state;
    client_t c = client_to(s->port);
    echo_t req;
    echo_init(&req.base);
    req.text = "ping";
    rm_unary_result_t r;

    assert_int_equal(rm_unary_call(c.ch, c.cq, "/test.T/Ok", &req.base, &echo_desc, 5000, &r), 0);
    assert_int_equal(r.status, GRPC_STATUS_OK);
    assert_non_null(r.reply);
    assert_string_equal(((echo_t *)r.reply)->text, "hi");
    assert_string_equal(r.details, "");
    rm_unary_result_free(&r);

    assert_int_equal(rm_unary_call(c.ch, c.cq, "/test.T/Ok", &req.base, NULL, 5000, &r), 0);
    assert_int_equal(r.len, 4);
    assert_memory_equal(r.bytes, "\x0a\x02hi", 4);
    rm_unary_result_free(&r);

    assert_int_equal(rm_unary_call(c.ch, c.cq, "/test.T/Refuse", &req.base, &echo_desc, 5000, &r),
                     RM_UNARY_ESTATUS);
    assert_int_equal(r.status, GRPC_STATUS_INVALID_ARGUMENT);
    assert_string_equal(r.details, "line 1\nline 2");
    assert_null(r.reply);
    rm_unary_result_free(&r);

    assert_int_equal(rm_unary_call(c.ch, c.cq, "/test.T/Empty", &req.base, &echo_desc, 5000, &r),
                     RM_UNARY_ENOREPLY);
    assert_string_equal(r.details, "no reply message");
    rm_unary_result_free(&r);

    assert_int_equal(rm_unary_call(c.ch, c.cq, "/test.T/Bad", &req.base, &echo_desc, 5000, &r),
                     RM_UNARY_EMALFORMED);
    assert_null(r.reply);
    rm_unary_result_free(&r);
    client_close(&c);
}

static void test_nobody_listening(void **state)
{
    (void)state;
    /* A port just closed: nobody listens there. The deadline bounds the wait either way. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    client_t c = client_to(ntohs(a.sin_port));
    echo_t req;
    echo_init(&req.base);
    rm_unary_result_t r;
    assert_int_equal(rm_unary_call(c.ch, c.cq, "/test.T/Ok", &req.base, &echo_desc, 300, &r),
                     RM_UNARY_ESTATUS);
    assert_true(r.status == GRPC_STATUS_UNAVAILABLE || r.status == GRPC_STATUS_DEADLINE_EXCEEDED);
    rm_unary_result_free(&r);
    client_close(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outcomes),
        cmocka_unit_test(test_nobody_listening),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
