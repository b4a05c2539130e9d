/* dataplane/buffer/buffer_test.c — limits, compaction, release, the block cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dataplane/buffer/buffer.h"

static void test_limit_is_hard(void **state)
{
    (void)state;
    rm_buf_t b;
    rm_buf_init(&b, 10);
    assert_int_equal(rm_buf_append(&b, "0123456789", 10), 0);
    assert_int_equal(rm_buf_append(&b, "x", 1), RM_BUF_EFULL);
    assert_int_equal(b.len, 10);
    rm_buf_consume(&b, 4);
    assert_int_equal(rm_buf_append(&b, "abcd", 4), 0); /* compaction made room */
    assert_memory_equal(rm_buf_head(&b), "456789abcd", 10);
    rm_buf_free(&b);
}

static void test_release_only_when_empty(void **state)
{
    (void)state;
    rm_buf_t b;
    rm_buf_init(&b, 1 << 20);
    assert_int_equal(rm_buf_printf(&b, "%s %d", "hello", 42), 0);
    rm_buf_release(&b);
    assert_non_null(b.data);
    rm_buf_consume(&b, b.len);
    rm_buf_release(&b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
}

static void test_large_printf(void **state)
{
    (void)state;
    rm_buf_t b;
    rm_buf_init(&b, 1 << 20);
    char big[2000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    assert_int_equal(rm_buf_printf(&b, "<%s>", big), 0);
    assert_int_equal(b.len, 2001);
    assert_int_equal(rm_buf_head(&b)[2000], '>');
    rm_buf_free(&b);
}

/* A released first block is kept by the thread and handed to the next buffer; a grown block is
 * not (only first-size blocks are cached), and the cache can be emptied. */
static void test_first_blocks_are_recycled(void **state)
{
    (void)state;
    rm_buf_t a, b, big;
    rm_buf_init(&a, 1 << 20);
    rm_buf_init(&b, 1 << 20);
    rm_buf_init(&big, 1 << 20);
    assert_int_equal(rm_buf_append(&a, "x", 1), 0);
    char *first = a.data;
    rm_buf_consume(&a, 1);
    rm_buf_release(&a);
    assert_null(a.data);
    assert_int_equal(rm_buf_append(&b, "y", 1), 0);
    assert_ptr_equal(b.data, first);
    char chunk[10000] = {0};
    assert_int_equal(rm_buf_append(&big, chunk, sizeof(chunk)), 0);
    assert_true(big.cap > 4096);
    rm_buf_free(&big);
    rm_buf_free(&b);
    rm_buf_thread_cache_free();
    rm_buf_free(&a);
}

/* A burst's blocks stay cached (no malloc for the next burst), and what then goes unused for a
 * whole trim interval is freed down to the floor: 32 blocks of 16 KiB. */
static void test_cache_grows_with_load_and_trims_back(void **state)
{
    (void)state;
    enum { BURST = 200 };
    static rm_buf_t bufs[BURST];
    rm_buf_thread_cache_free();
    for (int i = 0; i < BURST; i++) {
        rm_buf_init(&bufs[i], 1 << 20);
        assert_non_null(rm_buf_reserve(&bufs[i], 16384, &(int){0}));
    }
    for (int i = 0; i < BURST; i++)
        rm_buf_release(&bufs[i]);
    assert_int_equal(rm_buf_thread_cache_count(), BURST); /* all kept, none freed */
    rm_buf_thread_cache_trim(); /* the interval in which they were used: nothing unused yet */
    assert_int_equal(rm_buf_thread_cache_count(), BURST);
    for (int i = 0; i < 10; i++) /* a little load: 10 of them used again */
        assert_non_null(rm_buf_reserve(&bufs[i], 16384, &(int){0}));
    for (int i = 0; i < 10; i++)
        rm_buf_release(&bufs[i]);
    rm_buf_thread_cache_trim(); /* 190 sat unused through the interval: freed down to 32 */
    assert_int_equal(rm_buf_thread_cache_count(), 32);
    rm_buf_thread_cache_trim();
    assert_int_equal(rm_buf_thread_cache_count(), 32);
    rm_buf_thread_cache_free();
    assert_int_equal(rm_buf_thread_cache_count(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit_is_hard),
        cmocka_unit_test(test_release_only_when_empty),
        cmocka_unit_test(test_large_printf),
        cmocka_unit_test(test_first_blocks_are_recycled),
        cmocka_unit_test(test_cache_grows_with_load_and_trims_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
