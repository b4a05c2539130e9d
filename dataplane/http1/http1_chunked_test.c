/* dataplane/http1/http1_chunked_test.c — the chunked decoder fed whole, one byte at a time and
 * in random splits, every fragment placed against a guard page. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "dataplane/http1/http1.h"
#include "dataplane/http1/http1_test_util.h"

#define R(s) .raw = (s), .len = sizeof(s) - 1
#define D(s) .data = (s), .data_len = sizeof(s) - 1

typedef struct chunk_case {
    const char *name;
    const char *raw;
    size_t len;
    int rc;           /* RM_HTTP1_CHUNKED_DONE or the expected error */
    const char *data; /* decoded body when DONE */
    size_t data_len;
    size_t consumed; /* bytes up to the end of the body when DONE; 0 means len */
} chunk_case_t;

#define DONE RM_HTTP1_CHUNKED_DONE
#define E(x) RM_HTTP1_E_##x

static const chunk_case_t cases[] = {
    {"one chunk", R("5\r\nhello\r\n0\r\n\r\n"), DONE, D("hello")},
    {"two chunks hex", R("A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n"), DONE,
     D("0123456789abcdefghij")},
    {"empty body", R("0\r\n\r\n"), DONE, D("")},
    {"leading zeros", R("0005\r\nhello\r\n000\r\n\r\n"), DONE, D("hello")},
    {"16 hex digits", R("0000000000000005\r\nhello\r\n0\r\n\r\n"), DONE, D("hello")},
    {"binary data", R("4\r\n\r\n\0\xff\r\n0\r\n\r\n"), DONE, D("\r\n\0\xff")},
    {"extensions", R("5;name=value\r\nhello\r\n0;last\r\n\r\n"), DONE, D("hello")},
    {"several extensions", R("5;a;b=c;d=e\r\nhello\r\n0\r\n\r\n"), DONE, D("hello")},
    {"quoted extension", R("5;a=\"b c\\\"d;\"\r\nhello\r\n0\r\n\r\n"), DONE, D("hello")},
    {"BWS in extension", R("5 ; a = b ;c\r\nhello\r\n0\r\n\r\n"), DONE, D("hello")},
    {"trailers", R("5\r\nhello\r\n0\r\nX-Sum: abc\r\nY:\r\n\r\n"), DONE, D("hello")},
    {"next message follows", R("1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1\r\n"), DONE, D("x"), 11},
    {"non-hex size", R("g\r\n"), E(CHUNK_SIZE)},
    {"empty size", R("\r\nhello\r\n"), E(CHUNK_SIZE)},
    {"negative size", R("-5\r\nhello\r\n0\r\n\r\n"), E(CHUNK_SIZE)},
    {"0x prefix", R("0x5\r\nhello\r\n0\r\n\r\n"), E(CHUNK_SIZE)},
    {"17 hex digits", R("00000000000000005\r\nhello\r\n0\r\n\r\n"), E(CHUNK_SIZE)},
    {"size overflow", R("fffffffffffffffff\r\n"), E(CHUNK_SIZE)},
    {"CR without LF in size line", R("5\rhello\r\n0\r\n\r\n"), E(CHUNK_SIZE)},
    {"bare LF after size", R("5\nhello\r\n0\r\n\r\n"), E(CHUNK_SIZE)},
    {"CR inside size", R("5\r5\r\nhello"), E(CHUNK_SIZE)},
    {"data not followed by CRLF", R("5\r\nhelloX\r\n0\r\n\r\n"), E(CHUNK_DATA)},
    {"data followed by junk and LF", R("5\r\nhelloX\n0\r\n\r\n"), E(CHUNK_DATA)},
    {"data followed by LF only", R("5\r\nhello\n0\r\n\r\n"), E(CHUNK_DATA)},
    {"data followed by CR junk", R("5\r\nhello\rX0\r\n\r\n"), E(CHUNK_DATA)},
    {"short chunk", R("6\r\nhello\r\n0\r\n\r\n"), E(CHUNK_DATA)},
    {"space after size", R("5 \r\nhello\r\n0\r\n\r\n"), E(CHUNK_EXT)},
    {"empty extension name", R("5;\r\nhello\r\n0\r\n\r\n"), E(CHUNK_EXT)},
    {"empty extension value", R("5;a=\r\nhello\r\n0\r\n\r\n"), E(CHUNK_EXT)},
    {"space in extension value", R("5;a=b c\r\nhello\r\n0\r\n\r\n"), E(CHUNK_EXT)},
    {"unterminated quoted", R("5;a=\"b\r\nhello\r\n0\r\n\r\n"), E(CHUNK_EXT)},
    {"control byte in extension", R("5;a\x01=b\r\nhello\r\n0\r\n\r\n"), E(CHUNK_EXT)},
    {"trailer Content-Length", R("0\r\nContent-Length: 5\r\n\r\n"), E(TRAILER)},
    {"trailer Transfer-Encoding", R("0\r\ntransfer-encoding: chunked\r\n\r\n"), E(TRAILER)},
    {"trailer Host", R("0\r\nHOST: evil\r\n\r\n"), E(TRAILER)},
    {"trailer obs-fold", R("0\r\nX: a\r\n b\r\n\r\n"), E(TRAILER)},
    {"trailer space before colon", R("0\r\nX : a\r\n\r\n"), E(TRAILER)},
    {"trailer bare CR", R("0\r\nX: a\rb\r\n\r\n"), E(TRAILER)},
    {"trailer bare LF", R("0\r\nX: a\n\r\n"), E(TRAILER)},
    {"trailer control byte", R("0\r\nX: a\0b\r\n\r\n"), E(TRAILER)},
    {"trailer without colon", R("0\r\nX\r\n\r\n"), E(TRAILER)},
    {"final bare CR", R("0\r\n\rX"), E(TRAILER)},
    {"final bare LF", R("0\r\n\n"), E(TRAILER)},
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* Copies the string s (without its NUL) to dst; the tests build raw, unterminated buffers. */
static size_t put_str(char *dst, const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++)
        dst[n] = s[n];
    return n;
}

static guard_t guard;
static char out[4096];

static int setup(void **state)
{
    (void)state;
    return guard_init(&guard);
}

static int teardown(void **state)
{
    (void)state;
    guard_free(&guard);
    return 0;
}

/* Decodes raw[0..len) in fragments whose lengths come from next_len; each fragment is placed
 * against the guard page. Collects data into out; returns the final code and the bytes
 * consumed in total. */
typedef size_t (*split_fn)(size_t remaining, uint64_t *seed);

static size_t split_whole(size_t remaining, uint64_t *seed)
{
    (void)seed;
    return remaining;
}

static size_t split_bytes(size_t remaining, uint64_t *seed)
{
    (void)seed;
    return remaining < 1 ? remaining : 1;
}

static size_t split_random(size_t remaining, uint64_t *seed)
{
    size_t n = (size_t)(test_rand(seed) % 8);
    return n < remaining ? n : remaining;
}

static int decode(rm_http1_chunked_t *st, const char *raw, size_t len, split_fn split,
                  uint64_t seed, size_t *out_len, size_t *total)
{
    size_t off = 0;
    int rc = RM_HTTP1_INCOMPLETE;
    *out_len = 0;
    *total = 0;
    rm_http1_chunked_init(st);
    for (int guard_loops = 0; guard_loops < 100000; guard_loops++) {
        size_t frag = split(len - off, &seed);
        const char *p = guard_place(&guard, raw + off, frag);
        size_t used = 0;
        for (;;) {
            size_t consumed;
            rm_http1_span_t data;
            rc = rm_http1_chunked_decode(st, p + used, frag - used, &consumed, &data);
            assert_true(consumed <= frag - used);
            used += consumed;
            if (rc == RM_HTTP1_CHUNKED_DATA) {
                assert_true(data.len > 0);
                assert_true(*out_len + data.len <= sizeof(out));
                memcpy(out + *out_len, data.ptr, data.len);
                *out_len += data.len;
                continue;
            }
            break;
        }
        off += used;
        if (rc != RM_HTTP1_INCOMPLETE || off == len) {
            *total = off;
            return rc;
        }
    }
    fail_msg("decoder made no progress");
    return 0;
}

static void run_cases(split_fn split, int rounds)
{
    rm_http1_chunked_t st;
    for (size_t i = 0; i < NCASES; i++) {
        const chunk_case_t *c = &cases[i];
        for (int r = 0; r < rounds; r++) {
            size_t out_len, total;
            int rc = decode(&st, c->raw, c->len, split, 0x9e3779b97f4a7c15ull + (uint64_t)r,
                            &out_len, &total);
            if (rc != c->rc) {
                print_error("%s (round %d): rc %d (%s), want %d\n", c->name, r, rc,
                            st.error_reason ? st.error_reason : "-", c->rc);
                fail();
            }
            if (rc == DONE) {
                assert_int_equal(out_len, c->data_len);
                assert_memory_equal(out, c->data, c->data_len);
                assert_int_equal(total, c->consumed ? c->consumed : c->len);
            } else {
                assert_non_null(st.error_reason);
            }
        }
    }
}

static void test_chunked_whole(void **state)
{
    (void)state;
    run_cases(split_whole, 1);
}

static void test_chunked_byte_at_a_time(void **state)
{
    (void)state;
    run_cases(split_bytes, 1);
}

static void test_chunked_random_splits(void **state)
{
    (void)state;
    run_cases(split_random, 200);
}

/* Every prefix of a valid body is INCOMPLETE, never an error. */
static void test_chunked_prefixes(void **state)
{
    (void)state;
    rm_http1_chunked_t st;
    for (size_t i = 0; i < NCASES; i++) {
        const chunk_case_t *c = &cases[i];
        if (c->rc != DONE)
            continue;
        size_t end = c->consumed ? c->consumed : c->len;
        for (size_t n = 0; n < end; n++) {
            size_t out_len, total;
            int rc = decode(&st, c->raw, n, split_whole, 1, &out_len, &total);
            if (rc != RM_HTTP1_INCOMPLETE) {
                print_error("%s: prefix %zu gave %d\n", c->name, n, rc);
                fail();
            }
        }
    }
}

static void test_chunked_limits(void **state)
{
    (void)state;
    static char buf[40000];
    rm_http1_chunked_t st;
    size_t consumed;
    rm_http1_span_t data;

    /* Extensions over the limit. */
    size_t n = 0;
    buf[n++] = '1';
    buf[n++] = ';';
    memset(buf + n, 'e', RM_HTTP1_DEFAULT_MAX_CHUNK_EXT + 10);
    n += RM_HTTP1_DEFAULT_MAX_CHUNK_EXT + 10;
    rm_http1_chunked_init(&st);
    assert_int_equal(rm_http1_chunked_decode(&st, buf, n, &consumed, &data), RM_HTTP1_E_CHUNK_EXT);
    /* Errors are sticky. */
    assert_int_equal(rm_http1_chunked_decode(&st, "0\r\n\r\n", 5, &consumed, &data),
                     RM_HTTP1_E_CHUNK_EXT);

    /* An extension at the limit is fine: ";" plus (limit - 1) name bytes. */
    n = 0;
    buf[n++] = '1';
    buf[n++] = ';';
    memset(buf + n, 'e', RM_HTTP1_DEFAULT_MAX_CHUNK_EXT - 1);
    n += RM_HTTP1_DEFAULT_MAX_CHUNK_EXT - 1;
    put_str(buf + n, "\r\nx\r\n0\r\n\r\n");
    n += 10;
    rm_http1_chunked_init(&st);
    assert_int_equal(rm_http1_chunked_decode(&st, buf, n, &consumed, &data), RM_HTTP1_CHUNKED_DATA);

    /* Trailer section over the limit. */
    put_str(buf, "0\r\n");
    n = 3;
    while (n + 12 < sizeof(buf)) {
        put_str(buf + n, "X: 0123456\r\n");
        n += 12;
    }
    rm_http1_chunked_init(&st);
    assert_int_equal(rm_http1_chunked_decode(&st, buf, n, &consumed, &data),
                     RM_HTTP1_E_TRAILER_TOO_LARGE);
    /* A lowered limit applies. */
    rm_http1_chunked_init(&st);
    st.max_trailer_bytes = 20;
    assert_int_equal(rm_http1_chunked_decode(&st, buf, 3 + 12, &consumed, &data),
                     RM_HTTP1_INCOMPLETE);
    assert_int_equal(rm_http1_chunked_decode(&st, buf + 15, 12, &consumed, &data),
                     RM_HTTP1_E_TRAILER_TOO_LARGE);
}

/* A huge chunk is handed out in spans as bytes arrive; remaining counts down exactly. */
static void test_chunked_large_chunk(void **state)
{
    (void)state;
    rm_http1_chunked_t st;
    size_t consumed;
    rm_http1_span_t data;
    char body[100];

    memset(body, 'z', sizeof(body));
    rm_http1_chunked_init(&st);
    assert_int_equal(rm_http1_chunked_decode(&st, "ffffffffffffffff\r\n", 18, &consumed, &data),
                     RM_HTTP1_INCOMPLETE);
    assert_int_equal(consumed, 18);
    assert_int_equal(st.remaining, UINT64_MAX);
    assert_int_equal(rm_http1_chunked_decode(&st, body, sizeof(body), &consumed, &data),
                     RM_HTTP1_CHUNKED_DATA);
    assert_int_equal(data.len, sizeof(body));
    assert_ptr_equal(data.ptr, body);
    assert_int_equal(st.remaining, UINT64_MAX - sizeof(body));
}

static void test_chunked_done_is_sticky(void **state)
{
    (void)state;
    rm_http1_chunked_t st;
    size_t consumed;
    rm_http1_span_t data;

    rm_http1_chunked_init(&st);
    assert_int_equal(rm_http1_chunked_decode(&st, "0\r\n\r\nXYZ", 8, &consumed, &data),
                     RM_HTTP1_CHUNKED_DONE);
    assert_int_equal(consumed, 5);
    assert_int_equal(rm_http1_chunked_decode(&st, "XYZ", 3, &consumed, &data),
                     RM_HTTP1_CHUNKED_DONE);
    assert_int_equal(consumed, 0);
    assert_int_equal(rm_http1_chunked_decode(NULL, "XYZ", 3, &consumed, &data), RM_HTTP1_E_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunked_whole),
        cmocka_unit_test(test_chunked_byte_at_a_time),
        cmocka_unit_test(test_chunked_random_splits),
        cmocka_unit_test(test_chunked_prefixes),
        cmocka_unit_test(test_chunked_limits),
        cmocka_unit_test(test_chunked_large_chunk),
        cmocka_unit_test(test_chunked_done_is_sticky),
    };
    printf("http1_chunked_test: %zu cases\n", NCASES);
    return cmocka_run_group_tests(tests, setup, teardown);
}
