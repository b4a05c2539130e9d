/* dataplane/http1/http1_serialize_test.c — the head serializer: removals, hop-by-hop handling,
 * additions, exact buffer bounds, and that its output parses back to the same message. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "dataplane/http1/http1.h"

#define SPAN(s)                                                                                    \
    {                                                                                              \
        (s), sizeof(s) - 1                                                                         \
    }
#define HDR(n, v)                                                                                  \
    {                                                                                              \
        SPAN(n), SPAN(v)                                                                           \
    }

static rm_http1_header_t hdrs[32];

static void parse(const char *raw, rm_http1_request_t *req)
{
    rm_http1_request_init(req, hdrs, 32);
    assert_int_equal(rm_http1_parse_request(raw, strlen(raw), req, NULL), (int)strlen(raw));
}

static void test_serialize_identity(void **state)
{
    (void)state;
    static const char raw[] =
        "POST /a?b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nX-A: 1\r\n\r\n";
    rm_http1_request_t req;
    char out[256];

    parse(raw, &req);
    ssize_t n = rm_http1_serialize_request(&req, NULL, out, sizeof(out));
    assert_int_equal(n, sizeof(raw) - 1);
    assert_memory_equal(out, raw, sizeof(raw) - 1);
}

static void test_serialize_normalises(void **state)
{
    (void)state;
    static const char raw[] = "GET / HTTP/1.0\r\nX-A:   v  \r\n\r\n";
    static const char want[] = "GET / HTTP/1.1\r\nX-A: v\r\n\r\n";
    rm_http1_request_t req;
    char out[256];

    parse(raw, &req);
    ssize_t n = rm_http1_serialize_request(&req, NULL, out, sizeof(out));
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(out, want, sizeof(want) - 1);
}

static void test_serialize_edits(void **state)
{
    (void)state;
    static const char raw[] = "POST /x HTTP/1.1\r\n"
                              "Host: h\r\n"
                              "Connection: keep-alive, X-Secret, Content-Length\r\n"
                              "Keep-Alive: timeout=5\r\n"
                              "Proxy-Connection: keep-alive\r\n"
                              "TE: trailers\r\n"
                              "Upgrade: h2c\r\n"
                              "Trailer: X-Sum\r\n"
                              "x-secret: s\r\n"
                              "X-Drop-Me: 1\r\n"
                              "Content-Length: 2\r\n"
                              "X-Keep: k\r\n"
                              "\r\n";
    static const char want[] = "POST /x HTTP/1.1\r\n"
                               "Host: h\r\n"
                               "Content-Length: 2\r\n"
                               "X-Keep: k\r\n"
                               "x-forwarded-for: 10.0.0.1\r\n"
                               "Connection: close\r\n"
                               "\r\n";
    static const rm_http1_span_t remove[] = {SPAN("x-drop-me")};
    static const rm_http1_header_t add[] = {HDR("x-forwarded-for", "10.0.0.1"),
                                            HDR("Connection", "close")};
    rm_http1_edit_t edit = {.remove = remove,
                            .num_remove = 1,
                            .add = add,
                            .num_add = 2,
                            .flags = RM_HTTP1_EDIT_F_HOP_BY_HOP};
    rm_http1_request_t req;
    char out[512];

    parse(raw, &req);
    assert_true(req.flags & RM_HTTP1_F_CONN_OTHER);
    assert_true(rm_http1_connection_lists(req.headers, req.num_headers, "x-SECRET", 8));
    assert_false(rm_http1_connection_lists(req.headers, req.num_headers, "x-keep", 6));
    ssize_t n = rm_http1_serialize_request(&req, &edit, out, sizeof(out));
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(out, want, sizeof(want) - 1);

    /* Every smaller buffer is refused, never overrun. */
    for (size_t cap = 0; cap < (size_t)n; cap++) {
        char small[512];
        memset(small, 0x5a, sizeof(small));
        assert_int_equal(rm_http1_serialize_request(&req, &edit, small, cap), RM_HTTP1_E_NOSPACE);
        for (size_t i = cap; i < sizeof(small); i++)
            assert_int_equal(small[i], 0x5a);
    }

    /* The output parses back to the same framing. */
    rm_http1_request_t again;
    rm_http1_header_t h2[32];
    rm_http1_request_init(&again, h2, 32);
    assert_int_equal(rm_http1_parse_request(out, (size_t)n, &again, NULL), n);
    assert_int_equal(again.body, RM_HTTP1_BODY_CONTENT_LENGTH);
    assert_int_equal(again.content_length, 2);
    assert_false(again.flags & RM_HTTP1_F_KEEP_ALIVE);
}

/* Without the hop-by-hop flag, only explicit removals apply. */
static void test_serialize_remove_only(void **state)
{
    (void)state;
    static const char raw[] = "GET / HTTP/1.1\r\nHost: h\r\nConnection: x-a\r\nX-A: 1\r\n\r\n";
    static const char want[] = "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\n";
    static const rm_http1_span_t remove[] = {SPAN("CONNECTION")};
    rm_http1_edit_t edit = {.remove = remove, .num_remove = 1};
    rm_http1_request_t req;
    char out[256];

    parse(raw, &req);
    ssize_t n = rm_http1_serialize_request(&req, &edit, out, sizeof(out));
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(out, want, sizeof(want) - 1);
}

/* A prefix removes a family of fields (the mesh's x-remora-* at a trust boundary), in any
 * case, but never a field that only shares part of it, and never the fields added. */
static void test_serialize_remove_prefix(void **state)
{
    (void)state;
    static const char raw[] = "GET / HTTP/1.1\r\nHost: h\r\nX-Remora-Error: draining\r\n"
                              "x-remora-attempt: 2\r\nX-Remorable: 1\r\nx-remora-: e\r\n\r\n";
    static const char want[] = "GET / HTTP/1.1\r\nHost: h\r\nX-Remorable: 1\r\n"
                               "x-remora-peer-identity: spiffe://td/ns/a/sa/b\r\n\r\n";
    static const rm_http1_header_t add[] = {HDR("x-remora-peer-identity", "spiffe://td/ns/a/sa/b")};
    rm_http1_edit_t edit = {.remove_prefix = SPAN("x-remora-"), .add = add, .num_add = 1};
    rm_http1_request_t req;
    char out[256];

    parse(raw, &req);
    ssize_t n = rm_http1_serialize_request(&req, &edit, out, sizeof(out));
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(out, want, sizeof(want) - 1);
}

static void test_serialize_rejects_injection(void **state)
{
    (void)state;
    static const rm_http1_header_t bad_value[] = {HDR("X-A", "a\r\nEvil: 1")};
    static const rm_http1_header_t bad_name[] = {HDR("X A", "a")};
    static const rm_http1_header_t empty_name[] = {HDR("", "a")};
    rm_http1_edit_t edit = {.add = bad_value, .num_add = 1};
    rm_http1_request_t req;
    char out[256];

    parse("GET / HTTP/1.1\r\nHost: h\r\n\r\n", &req);
    assert_int_equal(rm_http1_serialize_request(&req, &edit, out, sizeof(out)), RM_HTTP1_E_ARG);
    edit.add = bad_name;
    assert_int_equal(rm_http1_serialize_request(&req, &edit, out, sizeof(out)), RM_HTTP1_E_ARG);
    edit.add = empty_name;
    assert_int_equal(rm_http1_serialize_request(&req, &edit, out, sizeof(out)), RM_HTTP1_E_ARG);
    edit.add = NULL;
    assert_int_equal(rm_http1_serialize_request(&req, &edit, out, sizeof(out)), RM_HTTP1_E_ARG);
    assert_int_equal(rm_http1_serialize_request(NULL, NULL, out, sizeof(out)), RM_HTTP1_E_ARG);
}

static void test_serialize_response(void **state)
{
    (void)state;
    static const char raw[] =
        "HTTP/1.0 404 Not Found\r\nKeep-Alive: 1\r\nContent-Length: 0\r\n\r\n";
    static const char want[] =
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nx-request-id: r1\r\n\r\n";
    static const rm_http1_header_t add[] = {HDR("x-request-id", "r1")};
    rm_http1_edit_t edit = {.add = add, .num_add = 1, .flags = RM_HTTP1_EDIT_F_HOP_BY_HOP};
    rm_http1_header_t h[8];
    rm_http1_response_t resp;
    char out[256];

    rm_http1_response_init(&resp, h, 8);
    assert_int_equal(
        rm_http1_parse_response(raw, sizeof(raw) - 1, &resp, NULL, RM_HTTP1_METHOD_GET),
        sizeof(raw) - 1);
    ssize_t n = rm_http1_serialize_response(&resp, &edit, out, sizeof(out));
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(out, want, sizeof(want) - 1);
    assert_int_equal(rm_http1_serialize_response(&resp, &edit, out, 10), RM_HTTP1_E_NOSPACE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serialize_identity),
        cmocka_unit_test(test_serialize_normalises),
        cmocka_unit_test(test_serialize_edits),
        cmocka_unit_test(test_serialize_remove_only),
        cmocka_unit_test(test_serialize_remove_prefix),
        cmocka_unit_test(test_serialize_rejects_injection),
        cmocka_unit_test(test_serialize_response),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
