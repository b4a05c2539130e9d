/* dataplane/transport/transport_test.c — buffer I/O through the TCP transport, over a socketpair.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dataplane/transport/transport.h"

static void test_buffer_io(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    rm_conn_t a, b;
    rm_conn_init_tcp(&a, sv[0]);
    rm_conn_init_tcp(&b, sv[1]);
    rm_buf_t out, in;
    rm_buf_init(&out, 1 << 16);
    rm_buf_init(&in, 8);
    assert_int_equal(rm_conn_write_buf(&a, &out), 0); /* nothing to write */
    rm_buf_append(&out, "0123456789", 10);
    assert_int_equal(rm_conn_write_buf(&a, &out), 10);
    assert_int_equal(out.len, 0);
    assert_int_equal(rm_conn_read_buf(&b, &in, 1 << 16), 8); /* capped by the limit */
    assert_int_equal(rm_conn_read_buf(&b, &in, 1 << 16), RM_BUF_EFULL);
    rm_buf_consume(&in, 8);
    assert_int_equal(rm_conn_read_buf(&b, &in, 1 << 16), 2);
    assert_int_equal(rm_conn_read_buf(&b, &in, 1 << 16), -EAGAIN);
    assert_int_equal(rm_conn_shutdown_write(&a), 0);
    assert_int_equal(rm_conn_read_buf(&b, &in, 1 << 16), 0); /* end of stream */
    rm_conn_close(&a);
    assert_int_equal(a.fd, -1);
    rm_conn_close(&a); /* idempotent */
    rm_conn_close(&b);
    rm_buf_free(&in);
    rm_buf_free(&out);
}

static void test_sendv_and_errors(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    rm_conn_t a, b;
    rm_conn_init_tcp(&a, sv[0]);
    rm_conn_init_tcp(&b, sv[1]);
    struct iovec iov[2] = {{"head ", 5}, {"body", 4}};
    assert_int_equal(a.ops->sendv(&a, iov, 2), 9);
    char got[16] = {0};
    assert_int_equal(b.ops->recv(&b, got, sizeof(got)), 9);
    assert_string_equal(got, "head body");
    assert_int_equal(rm_conn_poll_events(&a, RM_CONN_WANT_WRITE), RM_CONN_WANT_WRITE);
    rm_conn_close(&b);
    /* The peer is gone: a write fails with the socket's error, never a signal. */
    assert_int_equal(a.ops->send(&a, "x", 1), -EPIPE);
    rm_conn_close(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buffer_io),
        cmocka_unit_test(test_sendv_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
