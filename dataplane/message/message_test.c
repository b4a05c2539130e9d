/* dataplane/message/message_test.c — field lookup and the head copy that outlives its input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "dataplane/message/message.h"

#define S(lit) ((rm_span_t){lit, sizeof(lit) - 1})

static void test_find(void **state)
{
    (void)state;
    rm_field_t f[] = {{S("Host"), S("a")}, {S("X-Request-Id"), S("42")}};
    assert_int_equal(rm_msg_field_find(f, 2, "x-request-id", 12), 1);
    assert_int_equal(rm_msg_field_find(f, 2, "x-request", 9), -1);
    assert_true(rm_msg_field_is(f, 2, "x-request-id", "42"));
    assert_false(rm_msg_field_is(f, 2, "x-request-id", "4"));
    assert_true(rm_msg_method_idempotent(RM_METHOD_PUT));
    assert_false(rm_msg_method_idempotent(RM_METHOD_POST));
}

static void test_copy_outlives_input(void **state)
{
    (void)state;
    char input[] = "GETreviews/x?q=1x-ab";
    rm_field_t f[] = {{{input + 16, 1}, {input + 17, 2}}};
    rm_request_head_t h = {.method = RM_METHOD_GET,
                           .method_name = {input, 3},
                           .authority = {input + 3, 7},
                           .path = {input + 10, 6},
                           .fields = f,
                           .nfields = 1,
                           .flags = RM_MSG_F_BODY};
    rm_buf_t store;
    rm_buf_init(&store, 4096);
    rm_request_head_t copy;
    assert_int_equal(rm_msg_request_copy(&copy, &store, &h), 0);
    memset(input, '#', sizeof(input) - 1);
    memset(f, 0, sizeof(f));
    assert_memory_equal(copy.method_name.ptr, "GET", 3);
    assert_memory_equal(copy.authority.ptr, "reviews", 7);
    assert_memory_equal(copy.path.ptr, "/x?q=1", 6);
    assert_int_equal(copy.nfields, 1);
    assert_memory_equal(copy.fields[0].name.ptr, "x", 1);
    assert_memory_equal(copy.fields[0].value.ptr, "-a", 2);
    assert_int_equal(copy.flags, RM_MSG_F_BODY);
    /* A second copy into the same storage replaces the first. */
    rm_request_head_t small = {.method_name = S("PUT"), .path = S("/")};
    assert_int_equal(rm_msg_request_copy(&copy, &store, &small), 0);
    assert_memory_equal(copy.method_name.ptr, "PUT", 3);
    assert_int_equal(copy.nfields, 0);
    /* Past the storage's limit: an error, nothing half-made. */
    rm_buf_t tiny;
    rm_buf_init(&tiny, 8);
    assert_int_equal(rm_msg_request_copy(&copy, &tiny, &h), RM_BUF_EFULL);
    rm_buf_free(&store);
    rm_buf_free(&tiny);
}

/* The same copy into memory of the caller's: whole when it fits, nothing when it does not. */
static void test_copy_into(void **state)
{
    (void)state;
    char input[] = "GETreviews/x?q=1x-ab";
    rm_field_t f[] = {{{input + 16, 1}, {input + 17, 2}}};
    rm_request_head_t h = {.method_name = {input, 3},
                           .authority = {input + 3, 7},
                           .path = {input + 10, 6},
                           .fields = f,
                           .nfields = 1};
    _Alignas(16) char mem[128];
    rm_request_head_t copy = {0};
    assert_int_equal(rm_msg_request_copy_into(&copy, mem, sizeof(mem), &h), 0);
    memset(input, '#', sizeof(input) - 1);
    assert_memory_equal(copy.authority.ptr, "reviews", 7);
    assert_memory_equal(copy.fields[0].value.ptr, "-a", 2);
    assert_true(copy.fields_size >= 1 + 2 + 4);
    rm_request_head_t none = {0};
    assert_int_equal(rm_msg_request_copy_into(&none, mem, 16, &h), -1);
    assert_null(none.fields);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_copy_outlives_input),
        cmocka_unit_test(test_copy_into),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
