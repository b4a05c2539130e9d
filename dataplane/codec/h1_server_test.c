/* dataplane/codec/h1_server_test.c — the HTTP/1 codec's server side over real buffers: request
 * heads into neutral heads (every target form, flag, limit and error; fed whole and a byte at a
 * time), request bodies (Content-Length across reads and small rooms, chunked split at every
 * byte and in every room, malformed framing, pipelined bytes left alone), and responses back out
 * (framing per client version, interim, close, hop-by-hop, upgrade, HEAD, local replies), each
 * written response re-parsed to check what the client will read. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dataplane/buffer/buffer.h"
#include "dataplane/codec/h1_server.h"
#include "dataplane/http1/http1.h"
#include "dataplane/codec/h1_test_util.h"
#include "dataplane/message/message-t.h"

typedef struct fx {
    rm_buf_t in, out;
    rm_http1_header_t scratch[NSCRATCH];
    rm_h1_server_t st;
    rm_request_head_t head;
} fx_t;

static fx_t *fx_new(size_t in_limit, size_t max_head_bytes, size_t max_headers)
{
    fx_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    rm_buf_init(&f->in, in_limit);
    rm_buf_init(&f->out, BIG);
    rm_h1_server_init(&f->st, &f->in, &f->out, f->scratch, NSCRATCH, max_head_bytes, max_headers);
    return f;
}

static fx_t *fx_default(void)
{
    return fx_new(BIG, RM_HTTP1_DEFAULT_MAX_HEAD_BYTES, RM_HTTP1_DEFAULT_MAX_HEADERS);
}

static void fx_free(fx_t *f)
{
    rm_buf_free(&f->in);
    rm_buf_free(&f->out);
    free(f);
    rm_buf_thread_cache_free();
}

static void feedn(fx_t *f, const char *p, size_t n)
{
    assert_int_equal(rm_buf_append(&f->in, p, n), 0);
}

static void feed(fx_t *f, const char *s)
{
    feedn(f, s, strlen(s));
}

/* Reads one whole head (it must be complete and valid) and drops its bytes from `in`. */
static void read_ok(fx_t *f, const char *raw)
{
    int status = 0;
    const char *reason = NULL;
    feed(f, raw);
    int n = rm_h1_server_read_head(&f->st, &f->head, &status, &reason);
    if (n <= 0)
        fail_msg("read_head %d (%d %s) for %s", n, status, reason ? reason : "-", raw);
    rm_h1_server_head_consumed(&f->st, (size_t)n);
}

/* ---- what the client will read: the out buffer, taken and re-parsed ---- */

static void take(fx_t *f, taken_t *t)
{
    take_out(&f->out, t);
}

typedef struct parsed {
    rm_http1_header_t h[NSCRATCH];
    rm_http1_response_t r;
    int head_len;
} parsed_t;

/* Parses the response head at the start of t as the client that sent `method` would. */
static void parse_resp(const taken_t *t, int method, parsed_t *p)
{
    rm_http1_response_init(&p->r, p->h, NSCRATCH);
    p->head_len = rm_http1_parse_response(t->text, t->len, &p->r, NULL, method);
    if (p->head_len <= 0)
        fail_msg("written response does not parse (%d, %s):\n%s", p->head_len,
                 p->r.error_reason ? p->r.error_reason : "-", t->text);
}

static size_t field_count(const parsed_t *p, const char *name)
{
    return fields_named(p->h, p->r.num_headers, name);
}

#define assert_field(p, fname, fval) assert_one_field((p)->h, (p)->r.num_headers, (fname), (fval))

#define assert_no_field(p, name) assert_int_equal(field_count((p), (name)), 0)

/* Whatever the response, the client must not read a body that ends at the close while the
 * server keeps the connection. */
static void assert_framing_consistent(const fx_t *f, const parsed_t *p)
{
    if (p->r.body == RM_HTTP1_BODY_UNTIL_CLOSE)
        assert_true(f->st.close);
}

/* ---- read_head ---- */

static void test_read_get(void **state)
{
    (void)state;
    static const char raw[] =
        "GET /a/b?c=d HTTP/1.1\r\nHost: svc.local:8080\r\nUser-Agent: t/1\r\nAccept: */*\r\n\r\n";
    fx_t *f = fx_default();
    int status = 0;
    const char *reason = NULL;
    /* A byte at a time: 0 until the blank line, nothing consumed. */
    for (size_t i = 0; i + 1 < sizeof(raw) - 1; i++) {
        feedn(f, raw + i, 1);
        assert_int_equal(rm_h1_server_read_head(&f->st, &f->head, &status, &reason), 0);
        assert_int_equal(f->in.len, i + 1);
    }
    feedn(f, raw + sizeof(raw) - 2, 1);
    int n = rm_h1_server_read_head(&f->st, &f->head, &status, &reason);
    assert_int_equal(n, sizeof(raw) - 1);
    rm_request_head_t *h = &f->head;
    assert_int_equal(h->method, RM_METHOD_GET);
    assert_span(h->method_name, "GET");
    assert_span(h->authority, "svc.local:8080");
    assert_span(h->path, "/a/b?c=d");
    assert_int_equal(h->nfields, 3);
    assert_span(h->fields[0].name, "Host");
    assert_span(h->fields[1].name, "User-Agent");
    assert_span(h->fields[1].value, "t/1");
    assert_span(h->fields[2].value, "*/*");
    assert_int_equal(h->flags, 0);
    assert_int_equal(h->version, 11);
    assert_int_equal(h->content_length, 0);
    rm_h1_server_head_consumed(&f->st, (size_t)n);
    assert_int_equal(f->in.len, 0);
    assert_true(rm_h1_server_body_done(&f->st));
    rm_span_t d;
    assert_int_equal(rm_h1_server_body_next(&f->st, 100, &d), RM_BODY_END);
    fx_free(f);
}

static void test_read_other_method_and_asterisk(void **state)
{
    (void)state;
    fx_t *f = fx_default();
    read_ok(f, "PROPFIND /d HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(f->head.method, RM_METHOD_OTHER);
    assert_span(f->head.method_name, "PROPFIND");
    rm_h1_server_next(&f->st);
    read_ok(f, "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(f->head.method, RM_METHOD_OPTIONS);
    assert_span(f->head.path, "*");
    assert_span(f->head.authority, "a");
    fx_free(f);
}

static void test_read_post_length(void **state)
{
    (void)state;
    fx_t *f = fx_default();
    read_ok(f, "POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n");
    assert_int_equal(f->head.method, RM_METHOD_POST);
    assert_int_equal(f->head.flags, RM_MSG_F_BODY | RM_MSG_F_LENGTH);
    assert_int_equal(f->head.content_length, 5);
    assert_false(rm_h1_server_body_done(&f->st));
    fx_free(f);
}

static void test_read_length_zero(void **state)
{
    (void)state;
    fx_t *f = fx_default();
    read_ok(f, "POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(f->head.flags, RM_MSG_F_LENGTH);
    assert_int_equal(f->head.content_length, 0);
    assert_true(rm_h1_server_body_done(&f->st));
    rm_span_t d;
    assert_int_equal(rm_h1_server_body_next(&f->st, 100, &d), RM_BODY_END);
    fx_free(f);
}

static void test_read_chunked(void **state)
{
    (void)state;
    fx_t *f = fx_default();
    read_ok(f, "PUT /f HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_int_equal(f->head.method, RM_METHOD_PUT);
    assert_int_equal(f->head.flags, RM_MSG_F_BODY);
    assert_false(rm_h1_server_body_done(&f->st));
    fx_free(f);
}

static void test_read_http10(void **state)
{
    (void)state;
    fx_t *f = fx_default();
    read_ok(f, "GET /old HTTP/1.0\r\n\r\n");
    assert_int_equal(f->head.version, 10);
    assert_int_equal(f->head.flags, RM_MSG_F_CLOSE);
    assert_int_equal(f->head.authority.len, 0);
    assert_span(f->head.path, "/old");
    rm_h1_server_next(&f->st);

    read_ok(f, "GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n");
    assert_int_equal(f->head.version, 10);
    assert_int_equal(f->head.flags & RM_MSG_F_CLOSE, 0);
    assert_span(f->head.authority, "a");
    rm_h1_server_next(&f->st);

    /* HTTP/1.1 Connection: close. */
    read_ok(f, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert_int_equal(f->head.version, 11);
    assert_int_equal(f->head.flags, RM_MSG_F_CLOSE);
    fx_free(f);
}

static void test_read_absolute_form(void **state)
{
    (void)state;
    fx_t *f = fx_default();
    read_ok(f, "GET http://svc/x?q=1 HTTP/1.1\r\nHost: other\r\n\r\n");
    assert_span(f->head.authority, "svc");
    assert_span(f->head.path, "/x?q=1");
    assert_int_equal(f->head.nfields, 1);
    assert_span(f->head.fields[0].value, "other");
    rm_h1_server_next(&f->st);
    /* No path: empty (the client side writes "/"). */
    read_ok(f, "GET http://svc:81 HTTP/1.1\r\nHost: svc:81\r\n\r\n");
    assert_span(f->head.authority, "svc:81");
    assert_int_equal(f->head.path.len, 0);
    fx_free(f);
}

static void test_read_upgrade(void **state)
{
    (void)state;
    fx_t *f = fx_default();
    read_ok(f, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    assert_int_equal(f->head.flags, RM_MSG_F_UPGRADE);
    rm_h1_server_next(&f->st);
    /* Upgrade without Connection: upgrade is not a request for a tunnel. */
    read_ok(f, "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n");
    assert_int_equal(f->head.flags & RM_MSG_F_UPGRADE, 0);
    rm_h1_server_next(&f->st);
    /* Connection: upgrade without Upgrade neither. */
    read_ok(f, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n");
    assert_int_equal(f->head.flags & RM_MSG_F_UPGRADE, 0);
    fx_free(f);
}

static void test_read_connect(void **state)
{
    (void)state;
    fx_t *f = fx_default();
    read_ok(f, "CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n");
    assert_int_equal(f->head.method, RM_METHOD_CONNECT);
    assert_int_equal(f->head.flags, RM_MSG_F_UPGRADE);
    assert_span(f->head.authority, "db:5432");
    assert_int_equal(f->head.path.len, 0);
    assert_true(rm_h1_server_body_done(&f->st));
    /* Tunnel bytes sent early are no request body: they wait for the 2xx. */
    feed(f, "early");
    rm_span_t d;
    assert_int_equal(rm_h1_server_body_next(&f->st, 100, &d), RM_BODY_END);
    assert_int_equal(f->in.len, 5);
    rm_h1_server_next(&f->st);
    rm_buf_consume(&f->in, f->in.len);

    read_ok(f, "CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(f->head.flags, RM_MSG_F_UPGRADE);
    fx_free(f);
}

static void test_read_expect_and_conn_named(void **state)
{
    (void)state;
    fx_t *f = fx_default();
    read_ok(f, "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    assert_int_equal(f->head.flags, RM_MSG_F_BODY | RM_MSG_F_LENGTH | RM_MSG_F_EXPECT_100);
    rm_buf_consume(&f->in, f->in.len);
    rm_h1_server_next(&f->st);
    read_ok(f, "GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Hop\r\nX-Hop: 1\r\n\r\n");
    assert_int_equal(f->head.flags, RM_MSG_F_CONN_NAMED);
    fx_free(f);
}

static void test_read_incomplete(void **state)
{
    (void)state;
    static const char raw[] = "POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
    size_t head_len = sizeof(raw) - 1 - 5;
    /* Every prefix of the head, parsed fresh: 0, nothing consumed. */
    for (size_t n = 0; n < head_len; n++) {
        fx_t *f = fx_default();
        int status = 0;
        const char *reason = NULL;
        feedn(f, raw, n);
        assert_int_equal(rm_h1_server_read_head(&f->st, &f->head, &status, &reason), 0);
        assert_int_equal(f->in.len, n);
        fx_free(f);
    }
}

typedef struct bad_case {
    const char *raw;
    int status;
} bad_case_t;

static void test_read_malformed(void **state)
{
    (void)state;
    static const bad_case_t cases[] = {
        {"GET / HTTP/1.1\r\n\r\n", 400},                       /* no Host */
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400}, /* two Hosts */
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
         "Transfer-Encoding: chunked\r\n\r\n",
         400},                                                               /* CL and TE */
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n", 400}, /* CL list */
        {"GET / HTTP/1.1\nHost: a\r\n\r\n", 400},                            /* bare LF */
        {"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n  folded\r\n\r\n", 400},      /* obs-fold */
        {"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 400},                       /* fragment */
        {"G@T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},                          /* method */
        {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},                          /* version */
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
        {"CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\nContent-Length: 4\r\n\r\n", 400},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fx_t *f = fx_default();
        int status = 0;
        const char *reason = NULL;
        feed(f, cases[i].raw);
        int n = rm_h1_server_read_head(&f->st, &f->head, &status, &reason);
        if (n >= 0 || status != cases[i].status)
            fail_msg("case %zu: rc %d status %d, want status %d", i, n, status, cases[i].status);
        assert_non_null(reason);
        fx_free(f);
    }
}

static void test_read_too_large(void **state)
{
    (void)state;
    char raw[1024];
    int status;
    const char *reason;

    /* Over max_head_bytes, still without its blank line. */
    fx_t *f = fx_new(BIG, 256, RM_HTTP1_DEFAULT_MAX_HEADERS);
    int len = snprintf(raw, sizeof(raw), "GET / HTTP/1.1\r\nHost: a\r\nX-Big: %0300d\r\n", 0);
    feedn(f, raw, (size_t)len);
    status = 0;
    reason = NULL;
    assert_true(rm_h1_server_read_head(&f->st, &f->head, &status, &reason) < 0);
    assert_int_equal(status, 431);
    assert_non_null(reason);
    fx_free(f);

    /* Complete, but over max_head_bytes. */
    f = fx_new(BIG, 256, RM_HTTP1_DEFAULT_MAX_HEADERS);
    len = snprintf(raw, sizeof(raw), "GET / HTTP/1.1\r\nHost: a\r\nX-Big: %0300d\r\n\r\n", 0);
    feedn(f, raw, (size_t)len);
    status = 0;
    assert_true(rm_h1_server_read_head(&f->st, &f->head, &status, &reason) < 0);
    assert_int_equal(status, 431);
    fx_free(f);

    /* Exactly at max_head_bytes is fine. */
    f = fx_new(BIG, 256, RM_HTTP1_DEFAULT_MAX_HEADERS);
    len =
        snprintf(raw, sizeof(raw), "GET / HTTP/1.1\r\nHost: a\r\nX-Big: %0*d\r\n\r\n", 256 - 36, 0);
    assert_int_equal(len, 256);
    feedn(f, raw, (size_t)len);
    assert_int_equal(rm_h1_server_read_head(&f->st, &f->head, &status, &reason), 256);
    fx_free(f);

    /* The input buffer full before the head ends (its limit below max_head_bytes). */
    f = fx_new(200, RM_HTTP1_DEFAULT_MAX_HEAD_BYTES, RM_HTTP1_DEFAULT_MAX_HEADERS);
    len = snprintf(raw, sizeof(raw), "GET / HTTP/1.1\r\nHost: a\r\nX-Big: %0*d", 200 - 32, 0);
    assert_int_equal(len, 200);
    feedn(f, raw, (size_t)len);
    assert_int_equal(rm_buf_room(&f->in), 0);
    status = 0;
    assert_true(rm_h1_server_read_head(&f->st, &f->head, &status, &reason) < 0);
    assert_int_equal(status, 431);
    fx_free(f);

    /* Too many field lines. */
    f = fx_new(BIG, RM_HTTP1_DEFAULT_MAX_HEAD_BYTES, 4);
    feed(f, "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n");
    status = 0;
    assert_true(rm_h1_server_read_head(&f->st, &f->head, &status, &reason) < 0);
    assert_int_equal(status, 431);
    fx_free(f);
}

/* ---- request bodies ---- */

/* Takes body spans of at most `room` bytes into acc until something other than DATA. */
static rm_body_event_t drain(fx_t *f, size_t room, char *acc, size_t *acc_len, size_t cap)
{
    for (int i = 0; i < 1000000; i++) {
        rm_span_t d = {0};
        rm_body_event_t ev = rm_h1_server_body_next(&f->st, room, &d);
        if (ev != RM_BODY_DATA)
            return ev;
        assert_true(d.len > 0);
        assert_true(d.len <= room);
        assert_true(d.ptr >= rm_buf_head(&f->in) &&
                    d.ptr + d.len <= rm_buf_head(&f->in) + f->in.len);
        assert_true(*acc_len + d.len <= cap);
        memcpy(acc + *acc_len, d.ptr, d.len);
        *acc_len += d.len;
        rm_h1_server_body_consume(&f->st);
    }
    fail_msg("body_next made no progress");
    return RM_BODY_ERROR;
}

#define NEXT_REQ "GET /next HTTP/1.1\r\nHost: a\r\n\r\n"

static void test_body_length_pieces(void **state)
{
    (void)state;
    static const size_t rooms[] = {1, 2, 4, 11, 4096};
    for (size_t r = 0; r < sizeof(rooms) / sizeof(rooms[0]); r++) {
        fx_t *f = fx_default();
        char acc[64];
        size_t acc_len = 0;
        read_ok(f, "POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhel");
        assert_int_equal(drain(f, rooms[r], acc, &acc_len, sizeof(acc)), RM_BODY_WAIT);
        assert_int_equal(acc_len, 3);
        assert_false(rm_h1_server_body_done(&f->st));
        feed(f, "lo w");
        assert_int_equal(drain(f, rooms[r], acc, &acc_len, sizeof(acc)), RM_BODY_WAIT);
        assert_int_equal(acc_len, 7);
        feed(f, "orld" NEXT_REQ);
        assert_int_equal(drain(f, rooms[r], acc, &acc_len, sizeof(acc)), RM_BODY_END);
        assert_int_equal(acc_len, 11);
        assert_memory_equal(acc, "hello world", 11);
        assert_true(rm_h1_server_body_done(&f->st));
        /* The pipelined request is untouched, and parses once this one is answered. */
        assert_int_equal(f->in.len, sizeof(NEXT_REQ) - 1);
        assert_memory_equal(rm_buf_head(&f->in), NEXT_REQ, sizeof(NEXT_REQ) - 1);
        rm_span_t d;
        assert_int_equal(rm_h1_server_body_next(&f->st, rooms[r], &d), RM_BODY_END);
        assert_int_equal(f->in.len, sizeof(NEXT_REQ) - 1);
        rm_h1_server_next(&f->st);
        int status;
        const char *reason;
        int n = rm_h1_server_read_head(&f->st, &f->head, &status, &reason);
        assert_int_equal(n, sizeof(NEXT_REQ) - 1);
        assert_span(f->head.path, "/next");
        fx_free(f);
    }
}

#define CHUNKED_HEAD "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
/* Extensions, an upper-case hex size, a 26-byte chunk, trailers; then a pipelined request. */
static const char chunked_body[] =
    "5;ext=1\r\nhello\r\n1\r\n \r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n"
    "0\r\nX-Trailer: t\r\n\r\n" NEXT_REQ;
static const char chunked_data[] = "hello abcdefghijklmnopqrstuvwxyz";

static void check_chunked_end(fx_t *f, const char *acc, size_t acc_len)
{
    assert_int_equal(acc_len, sizeof(chunked_data) - 1);
    assert_memory_equal(acc, chunked_data, acc_len);
    assert_int_equal(f->in.len, sizeof(NEXT_REQ) - 1);
    assert_memory_equal(rm_buf_head(&f->in), NEXT_REQ, sizeof(NEXT_REQ) - 1);
}

/* The body split in two at every byte, drained in every room. */
static void test_body_chunked_every_split(void **state)
{
    (void)state;
    static const size_t rooms[] = {1, 2, 3, 5, 16, 4096};
    size_t len = sizeof(chunked_body) - 1;
    for (size_t r = 0; r < sizeof(rooms) / sizeof(rooms[0]); r++) {
        for (size_t k = 0; k <= len; k++) {
            fx_t *f = fx_default();
            char acc[128];
            size_t acc_len = 0;
            read_ok(f, CHUNKED_HEAD);
            feedn(f, chunked_body, k);
            rm_body_event_t ev = drain(f, rooms[r], acc, &acc_len, sizeof(acc));
            if (ev != RM_BODY_END) {
                if (ev != RM_BODY_WAIT)
                    fail_msg("room %zu split %zu: event %d after the first part", rooms[r], k, ev);
                feedn(f, chunked_body + k, len - k);
                ev = drain(f, rooms[r], acc, &acc_len, sizeof(acc));
            } else {
                feedn(f, chunked_body + k, len - k);
            }
            if (ev != RM_BODY_END)
                fail_msg("room %zu split %zu: event %d, want END", rooms[r], k, ev);
            check_chunked_end(f, acc, acc_len);
            fx_free(f);
        }
    }
}

/* The body a byte at a time, drained after each byte. */
static void test_body_chunked_byte_at_a_time(void **state)
{
    (void)state;
    static const size_t rooms[] = {1, 3, 4096};
    size_t body_end = sizeof(chunked_body) - 1 - (sizeof(NEXT_REQ) - 1);
    for (size_t r = 0; r < sizeof(rooms) / sizeof(rooms[0]); r++) {
        fx_t *f = fx_default();
        char acc[128];
        size_t acc_len = 0;
        read_ok(f, CHUNKED_HEAD);
        for (size_t i = 0; i < body_end; i++) {
            feedn(f, chunked_body + i, 1);
            rm_body_event_t ev = drain(f, rooms[r], acc, &acc_len, sizeof(acc));
            assert_int_equal(ev, i + 1 == body_end ? RM_BODY_END : RM_BODY_WAIT);
            if (i + 1 < body_end)
                assert_false(rm_h1_server_body_done(&f->st));
        }
#if 1
        /* Was a bug, found by this test: rm_h1_server_body_done stays false after a chunked body's
         * END (its switch answers false for every framing but NONE and CONTENT_LENGTH), against
         * h1_server.h: "True once the request's body was read whole". A caller deciding whether
         * unread body bytes remain (close or keep the connection) would always close after a
         * chunked request. */
        assert_true(rm_h1_server_body_done(&f->st));
#endif
        feed(f, NEXT_REQ);
        check_chunked_end(f, acc, acc_len);
        fx_free(f);
    }
}

static void test_body_chunked_malformed(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "5\r\nhelloX\r\n0\r\n\r\n",                     /* data not followed by CRLF */
        "zz\r\nhello\r\n0\r\n\r\n",                     /* non-hex size */
        "5\nhello\r\n0\r\n\r\n",                        /* bare LF */
        "5 \r\nhello\r\n0\r\n\r\n",                     /* space after the size */
        "00000000000000005\r\nhello\r\n0\r\n\r\n",      /* 17 digits */
        "5\r\nhello\r\n0\r\nContent-Length: 1\r\n\r\n", /* forbidden trailer */
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        for (int bytewise = 0; bytewise < 2; bytewise++) {
            fx_t *f = fx_default();
            char acc[64];
            size_t acc_len = 0;
            read_ok(f, CHUNKED_HEAD);
            rm_body_event_t ev = RM_BODY_WAIT;
            size_t len = strlen(bodies[i]);
            for (size_t at = 0; at < len && ev == RM_BODY_WAIT;) {
                size_t n = bytewise ? 1 : len;
                feedn(f, bodies[i] + at, n);
                at += n;
                ev = drain(f, 4096, acc, &acc_len, sizeof(acc));
            }
            if (ev != RM_BODY_ERROR)
                fail_msg("body %zu (bytewise %d): event %d, want ERROR", i, bytewise, ev);
            assert_non_null(f->st.chunks.error_reason);
            /* Sticky. */
            rm_span_t d;
            assert_int_equal(rm_h1_server_body_next(&f->st, 4096, &d), RM_BODY_ERROR);
            fx_free(f);
        }
    }
}

/* ---- responses ---- */

static void test_write_length(void **state)
{
    (void)state;
    fx_t *f = fx_default();
    read_ok(f, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    static const rm_field_t fields[] = {
        F("Content-Type", "text/plain"),
        F("Content-Length", "999"),
        F("Transfer-Encoding", "chunked"),
        F("X-Up", "1"),
    };
    rm_response_head_t resp = {.status = 200,
                               .fields = fields,
                               .nfields = 4,
                               .content_length = 5,
                               .flags = RM_MSG_F_BODY | RM_MSG_F_LENGTH};
    assert_int_equal(rm_h1_server_write_head(&f->st, &resp, NULL, false), 0);
    assert_int_equal(f->st.out_framing, RM_H1_OUT_LENGTH);
    assert_false(f->st.close);
    assert_int_equal(rm_h1_server_write_data(&f->st, "hel", 3), 0);
    assert_int_equal(rm_h1_server_write_data(&f->st, "lo", 2), 0);
    assert_int_equal(rm_h1_server_write_end(&f->st), 0);
    taken_t t;
    parsed_t p;
    take(f, &t);
    parse_resp(&t, RM_HTTP1_METHOD_GET, &p);
    assert_memory_equal(t.text, "HTTP/1.1 200 OK\r\n", 17);
    assert_field(&p, "content-length", "5");
    assert_no_field(&p, "transfer-encoding");
    assert_no_field(&p, "connection");
    assert_field(&p, "Content-Type", "text/plain");
    assert_field(&p, "X-Up", "1");
    assert_int_equal(p.r.body, RM_HTTP1_BODY_CONTENT_LENGTH);
    assert_true(p.r.flags & RM_HTTP1_F_KEEP_ALIVE);
    assert_int_equal(t.len, (size_t)p.head_len + 5);
    assert_memory_equal(t.text + p.head_len, "hello", 5);
    fx_free(f);
}

static void test_write_reason_kept(void **state)
{
    (void)state;
    fx_t *f = fx_default();
    read_ok(f, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    rm_response_head_t resp = {.status = 404, .reason = S("Nope"), .flags = RM_MSG_F_LENGTH};
    assert_int_equal(rm_h1_server_write_head(&f->st, &resp, NULL, false), 0);
    taken_t t;
    take(f, &t);
    assert_memory_equal(t.text, "HTTP/1.1 404 Nope\r\n", 19);
    fx_free(f);
}

static void test_write_chunked_http11(void **state)
{
    (void)state;
    fx_t *f = fx_default();
    read_ok(f, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    static const rm_field_t fields[] = {F("Content-Length", "3"), F("X-Up", "1")};
    rm_response_head_t resp = {
        .status = 200, .fields = fields, .nfields = 2, .flags = RM_MSG_F_BODY};
    assert_int_equal(rm_h1_server_write_head(&f->st, &resp, NULL, false), 0);
    assert_int_equal(f->st.out_framing, RM_H1_OUT_CHUNKED);
    assert_false(f->st.close);
    taken_t t;
    parsed_t p;
    take(f, &t);
    parse_resp(&t, RM_HTTP1_METHOD_GET, &p);
    assert_field(&p, "transfer-encoding", "chunked");
    assert_no_field(&p, "content-length");
    assert_no_field(&p, "connection");
    assert_int_equal(p.r.body, RM_HTTP1_BODY_CHUNKED);

    assert_int_equal(rm_h1_server_write_data(&f->st, "hello", 5), 0);
    take(f, &t);
    assert_string_equal(t.text, "5\r\nhello\r\n");
    assert_int_equal(rm_h1_server_write_data(&f->st, "", 0), 0);
    assert_int_equal(f->out.len, 0); /* an empty chunk would end the body */
    assert_int_equal(rm_h1_server_write_data(&f->st, "abcdefghijklmnopqrstuvwxyz", 26), 0);
    take(f, &t);
    assert_string_equal(t.text, "1a\r\nabcdefghijklmnopqrstuvwxyz\r\n");
    assert_int_equal(rm_h1_server_write_end(&f->st), 0);
    take(f, &t);
    assert_string_equal(t.text, "0\r\n\r\n");
    fx_free(f);
}

static void test_write_close_http10(void **state)
{
    (void)state;
    /* Unknown length to an HTTP/1.0 client (even one that keeps alive): raw bytes, then close. */
    fx_t *f = fx_default();
    read_ok(f, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    static const rm_field_t fields[] = {F("Transfer-Encoding", "chunked"), F("X-Up", "1")};
    rm_response_head_t resp = {
        .status = 200, .fields = fields, .nfields = 2, .flags = RM_MSG_F_BODY};
    assert_int_equal(rm_h1_server_write_head(&f->st, &resp, NULL, false), 0);
    assert_int_equal(f->st.out_framing, RM_H1_OUT_CLOSE);
    assert_true(f->st.close);
    taken_t t;
    parsed_t p;
    take(f, &t);
    parse_resp(&t, RM_HTTP1_METHOD_GET, &p);
    assert_no_field(&p, "transfer-encoding");
    assert_no_field(&p, "content-length");
    assert_field(&p, "connection", "close");
    assert_int_equal(p.r.body, RM_HTTP1_BODY_UNTIL_CLOSE);
    assert_framing_consistent(f, &p);
    assert_int_equal(rm_h1_server_write_data(&f->st, "hello", 5), 0);
    assert_int_equal(rm_h1_server_write_end(&f->st), 0);
    take(f, &t);
    assert_string_equal(t.text, "hello");
    fx_free(f);

    /* HTTP/1.0 without keep-alive: close even with a length. */
    f = fx_default();
    read_ok(f, "GET / HTTP/1.0\r\n\r\n");
    resp = (rm_response_head_t){
        .status = 200, .content_length = 2, .flags = RM_MSG_F_BODY | RM_MSG_F_LENGTH};
    assert_int_equal(rm_h1_server_write_head(&f->st, &resp, NULL, false), 0);
    assert_int_equal(f->st.out_framing, RM_H1_OUT_LENGTH);
    assert_true(f->st.close);
    take(f, &t);
    parse_resp(&t, RM_HTTP1_METHOD_GET, &p);
    assert_field(&p, "content-length", "2");
    assert_field(&p, "connection", "close");
    fx_free(f);
}

static void test_write_http10_keepalive(void **state)
{
    (void)state;
    /* HTTP/1.0 with keep-alive and a length: the connection stays. */
    fx_t *f = fx_default();
    read_ok(f, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    static const rm_field_t fields[] = {F("Connection", "keep-alive")};
    rm_response_head_t resp = {.status = 200,
                               .fields = fields,
                               .nfields = 1,
                               .content_length = 2,
                               .flags = RM_MSG_F_BODY | RM_MSG_F_LENGTH};
    assert_int_equal(rm_h1_server_write_head(&f->st, &resp, NULL, false), 0);
    assert_false(f->st.close);
    taken_t t;
    parsed_t p;
    take(f, &t);
    parse_resp(&t, RM_HTTP1_METHOD_GET, &p);
    assert_field(&p, "content-length", "2");
#if 1
    /* Was a bug, found by this test: an HTTP/1.0 client only keeps a connection that the response
     * says is kept (RFC 9112 9.3, C.2.2: "Connection: keep-alive"); the upstream's own Connection
     * is dropped as hop-by-hop and nothing re-adds it, so the client (ab -k, wget) waits for a
     * close that never comes while the server keeps the connection open. Got: no Connection field.
     */
    assert_field(&p, "connection", "keep-alive");
#endif
    fx_free(f);
}

static void test_write_interim(void **state)
{
    (void)state;
    static const rm_field_t fields[] = {F("Connection", "keep-alive"), F("X-Hint", "1")};
    rm_response_head_t interim = {
        .status = 100, .fields = fields, .nfields = 2, .flags = RM_MSG_F_INTERIM};
    rm_response_head_t final = {.status = 201, .flags = RM_MSG_F_LENGTH};
    taken_t t;

    /* HTTP/1.1: the 100 goes, hop-by-hop dropped, nothing about the final response decided. */
    fx_t *f = fx_default();
    read_ok(f, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n");
    assert_int_equal(rm_h1_server_write_head(&f->st, &interim, NULL, true), 0);
    take(f, &t);
    assert_string_equal(t.text, "HTTP/1.1 100 Continue\r\nX-Hint: 1\r\n\r\n");
    assert_int_equal(f->st.out_framing, RM_H1_OUT_NONE);
    assert_false(f->st.close);
    rm_response_head_t early = {.status = 103, .flags = RM_MSG_F_INTERIM};
    assert_int_equal(rm_h1_server_write_head(&f->st, &early, NULL, false), 0);
    take(f, &t);
    assert_memory_equal(t.text, "HTTP/1.1 103 ", 13);
    assert_int_equal(rm_h1_server_write_head(&f->st, &final, NULL, false), 0);
    take(f, &t);
    assert_memory_equal(t.text, "HTTP/1.1 201 ", 13);
    fx_free(f);

    /* HTTP/1.0: no 1xx at all (RFC 9110 15.2). */
    f = fx_default();
    read_ok(f, "POST / HTTP/1.0\r\nContent-Length: 1\r\n\r\n");
    assert_int_equal(rm_h1_server_write_head(&f->st, &interim, NULL, false), 0);
    assert_int_equal(rm_h1_server_write_head(&f->st, &early, NULL, false), 0);
    assert_int_equal(f->out.len, 0);
    assert_int_equal(rm_h1_server_write_head(&f->st, &final, NULL, false), 0);
    take(f, &t);
    assert_memory_equal(t.text, "HTTP/1.1 201 ", 13);
    fx_free(f);
}

static void test_write_close_wanted(void **state)
{
    (void)state;
    fx_t *f = fx_default();
    read_ok(f, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    static const rm_field_t fields[] = {F("Connection", "keep-alive"), F("Keep-Alive", "t=5")};
    rm_response_head_t resp = {.status = 200,
                               .fields = fields,
                               .nfields = 2,
                               .content_length = 1,
                               .flags = RM_MSG_F_BODY | RM_MSG_F_LENGTH};
    assert_int_equal(rm_h1_server_write_head(&f->st, &resp, NULL, true), 0);
    assert_true(f->st.close);
    taken_t t;
    parsed_t p;
    take(f, &t);
    parse_resp(&t, RM_HTTP1_METHOD_GET, &p);
    assert_field(&p, "connection", "close");
    assert_no_field(&p, "keep-alive");
    assert_field(&p, "content-length", "1");
    fx_free(f);

    /* The client's own Connection: close is honoured without asking. */
    f = fx_default();
    read_ok(f, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert_int_equal(rm_h1_server_write_head(&f->st, &resp, NULL, false), 0);
    assert_true(f->st.close);
    take(f, &t);
    parse_resp(&t, RM_HTTP1_METHOD_GET, &p);
    assert_field(&p, "connection", "close");
    fx_free(f);
}

static void test_write_hop_by_hop(void **state)
{
    (void)state;
    static const rm_field_t fields[] = {
        F("Connection", "keep-alive, X-Hop"),
        F("Keep-Alive", "timeout=5"),
        F("X-Hop", "1"),
        F("Proxy-Connection", "keep-alive"),
        F("TE", "trailers"),
        F("Trailer", "X-Sum"),
        F("Upgrade", "h2c"),
        F("X-Keep", "1"),
    };
    rm_response_head_t resp = {.status = 200,
                               .fields = fields,
                               .nfields = 8,
                               .flags = RM_MSG_F_LENGTH | RM_MSG_F_CONN_NAMED};
    fx_t *f = fx_default();
    read_ok(f, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(rm_h1_server_write_head(&f->st, &resp, NULL, false), 0);
    taken_t t;
    parsed_t p;
    take(f, &t);
    parse_resp(&t, RM_HTTP1_METHOD_GET, &p);
    assert_int_equal(p.r.num_headers, 2); /* X-Keep, and the empty body's content-length: 0 */
    assert_field(&p, "X-Keep", "1");
    assert_field(&p, "content-length", "0");
    fx_free(f);
}

static void test_write_upgrade_tunnel(void **state)
{
    (void)state;
    static const char ws[] = "\x81\x02hi";
    fx_t *f = fx_default();
    read_ok(f, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
               "Sec-WebSocket-Key: k\r\n\r\n");
    assert_int_equal(f->head.flags, RM_MSG_F_UPGRADE);
    feedn(f, ws, 4); /* the client's first frame, early */
    rm_span_t d;
    assert_int_equal(rm_h1_server_body_next(&f->st, 100, &d), RM_BODY_END); /* no request body */
    assert_int_equal(f->in.len, 4);

    static const rm_field_t fields[] = {F("Connection", "Upgrade"), F("Upgrade", "websocket"),
                                        F("Sec-WebSocket-Accept", "acc")};
    rm_response_head_t resp = {
        .status = 101, .fields = fields, .nfields = 3, .flags = RM_MSG_F_UPGRADE};
    assert_int_equal(rm_h1_server_write_head(&f->st, &resp, NULL, false), 0);
    assert_int_equal(f->st.out_framing, RM_H1_OUT_TUNNEL);
    taken_t t;
    parsed_t p;
    take(f, &t);
    parse_resp(&t, RM_HTTP1_METHOD_GET, &p);
    assert_memory_equal(t.text, "HTTP/1.1 101 Switching Protocols\r\n", 34);
    assert_field(&p, "connection", "upgrade");
    assert_field(&p, "upgrade", "websocket");
    assert_field(&p, "Sec-WebSocket-Accept", "acc");
    assert_int_equal(p.r.body, RM_HTTP1_BODY_TUNNEL);
    assert_int_equal((size_t)p.head_len, t.len);

    /* Raw bytes both ways from now on; END never comes. */
    assert_int_equal(rm_h1_server_body_next(&f->st, 100, &d), RM_BODY_DATA);
    assert_int_equal(d.len, 4);
    assert_memory_equal(d.ptr, ws, 4);
    rm_h1_server_body_consume(&f->st);
    assert_int_equal(rm_h1_server_body_next(&f->st, 100, &d), RM_BODY_WAIT);
    feed(f, "0\r\n\r\nGET / HTTP/1.1\r\n\r\n"); /* looks like framing: still raw */
    assert_int_equal(rm_h1_server_body_next(&f->st, 3, &d), RM_BODY_DATA);
    assert_int_equal(d.len, 3);
    assert_memory_equal(d.ptr, "0\r\n", 3);
    rm_h1_server_body_consume(&f->st);
    assert_false(rm_h1_server_body_done(&f->st));
    assert_int_equal(rm_h1_server_write_data(&f->st, "0\r\n\r\n", 5), 0);
    assert_int_equal(rm_h1_server_write_end(&f->st), 0);
    take(f, &t);
    assert_string_equal(t.text, "0\r\n\r\n");
    fx_free(f);
}

static void test_write_connect_tunnel(void **state)
{
    (void)state;
    fx_t *f = fx_default();
    read_ok(f, "CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n");
    rm_response_head_t resp = {.status = 200, .flags = RM_MSG_F_UPGRADE};
    assert_int_equal(rm_h1_server_write_head(&f->st, &resp, NULL, false), 0);
    assert_int_equal(f->st.out_framing, RM_H1_OUT_TUNNEL);
    taken_t t;
    parsed_t p;
    take(f, &t);
    parse_resp(&t, RM_HTTP1_METHOD_CONNECT, &p);
    assert_int_equal(p.r.body, RM_HTTP1_BODY_TUNNEL);
    assert_no_field(&p, "content-length");
    assert_no_field(&p, "transfer-encoding");
    feed(f, "pg");
    rm_span_t d;
    assert_int_equal(rm_h1_server_body_next(&f->st, 100, &d), RM_BODY_DATA);
    assert_int_equal(d.len, 2);
    assert_memory_equal(d.ptr, "pg", 2);
    fx_free(f);
}

static void test_write_no_body(void **state)
{
    (void)state;
    taken_t t;
    parsed_t p;

    /* The response to HEAD: its Content-Length passes untouched; no body byte is written. */
    fx_t *f = fx_default();
    read_ok(f, "HEAD /big HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(f->head.method, RM_METHOD_HEAD);
    static const rm_field_t fields[] = {F("Content-Length", "1234"), F("Content-Type", "x/y")};
    rm_response_head_t resp = {.status = 200, .fields = fields, .nfields = 2};
    assert_int_equal(rm_h1_server_write_head(&f->st, &resp, NULL, false), 0);
    assert_int_equal(f->st.out_framing, RM_H1_OUT_NONE);
    assert_false(f->st.close);
    take(f, &t);
    parse_resp(&t, RM_HTTP1_METHOD_HEAD, &p);
    assert_field(&p, "Content-Length", "1234");
    assert_no_field(&p, "transfer-encoding");
    assert_int_equal((size_t)p.head_len, t.len);
    assert_int_equal(rm_h1_server_write_data(&f->st, "abc", 3), 0);
    assert_int_equal(rm_h1_server_write_end(&f->st), 0);
    assert_int_equal(f->out.len, 0);
    fx_free(f);

    /* 204 and 304: no framing added. */
    static const int statuses[] = {204, 304};
    for (size_t i = 0; i < 2; i++) {
        f = fx_default();
        read_ok(f, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        rm_response_head_t r = {.status = statuses[i]};
        assert_int_equal(rm_h1_server_write_head(&f->st, &r, NULL, false), 0);
        take(f, &t);
        parse_resp(&t, RM_HTTP1_METHOD_GET, &p);
        assert_int_equal(p.r.num_headers, 0);
        assert_int_equal(p.r.body, RM_HTTP1_BODY_NONE);
        assert_false(f->st.close);
        fx_free(f);
    }

    /* An empty 200 to a GET, the upstream's Content-Length: 0 kept: the client reads no body. */
    f = fx_default();
    read_ok(f, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    static const rm_field_t zero[] = {F("Content-Length", "0")};
    rm_response_head_t r0 = {.status = 200, .fields = zero, .nfields = 1, .flags = RM_MSG_F_LENGTH};
    assert_int_equal(rm_h1_server_write_head(&f->st, &r0, NULL, false), 0);
    take(f, &t);
    parse_resp(&t, RM_HTTP1_METHOD_GET, &p);
    assert_field(&p, "content-length", "0");
    assert_framing_consistent(f, &p);
    fx_free(f);

    /* The same without the field (an HTTP/2 upstream need not send one; a neutral head built
     * by the proxy has none): LENGTH says 0 bytes. */
    f = fx_default();
    read_ok(f, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    rm_response_head_t r1 = {.status = 200, .flags = RM_MSG_F_LENGTH};
    assert_int_equal(rm_h1_server_write_head(&f->st, &r1, NULL, false), 0);
    take(f, &t);
    parse_resp(&t, RM_HTTP1_METHOD_GET, &p);
#if 1
    /* Was a bug, found by this test: a 200 to GET with no BODY flag (LENGTH, content_length 0) and
     * no Content-Length field is written as "HTTP/1.1 200 OK\r\n\r\n": no content-length, no
     * transfer-encoding, no connection: close, st->close false. The client reads that body until
     * the close (RFC 9112 6.3 rule 8), the server keeps the connection: the client hangs. Expected:
     * "content-length: 0" (or the close). */
    assert_framing_consistent(f, &p);
    assert_field(&p, "content-length", "0");
#endif
    fx_free(f);
}

static void test_write_edit(void **state)
{
    (void)state;
    fx_t *f = fx_default();
    read_ok(f, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    static const rm_field_t fields[] = {F("x-internal", "secret"), F("X-Keep", "1")};
    static const rm_span_t remove[] = {S("X-INTERNAL")};
    static const rm_field_t add[] = {F("x-served-by", "remora")};
    rm_field_edit_t edit = {.remove = remove, .nremove = 1, .add = add, .nadd = 1};
    rm_response_head_t resp = {.status = 200,
                               .fields = fields,
                               .nfields = 2,
                               .content_length = 0,
                               .flags = RM_MSG_F_BODY | RM_MSG_F_LENGTH};
    assert_int_equal(rm_h1_server_write_head(&f->st, &resp, &edit, false), 0);
    taken_t t;
    parsed_t p;
    take(f, &t);
    parse_resp(&t, RM_HTTP1_METHOD_GET, &p);
    assert_no_field(&p, "x-internal");
    assert_field(&p, "X-Keep", "1");
    assert_field(&p, "x-served-by", "remora");
    assert_field(&p, "content-length", "0");
    fx_free(f);
}

static void test_write_full(void **state)
{
    (void)state;
    fx_t *f = fx_default();
    read_ok(f, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    rm_buf_init(&f->out, 64);
    rm_response_head_t resp = {.status = 200, .flags = RM_MSG_F_BODY | RM_MSG_F_LENGTH};
    assert_int_equal(rm_h1_server_write_head(&f->st, &resp, NULL, false), RM_BUF_EFULL);
    assert_int_equal(f->out.len, 0);
    assert_int_equal(rm_h1_server_write_reply(&f->st, 503, NULL, 0, "text/plain", "x", 1, false),
                     RM_BUF_EFULL);
    assert_int_equal(f->out.len, 0);
    fx_free(f);
}

static void test_write_room(void **state)
{
    (void)state;
    fx_t *f = fx_default();
    read_ok(f, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    rm_response_head_t resp = {.status = 200, .flags = RM_MSG_F_BODY};
    assert_int_equal(rm_h1_server_write_head(&f->st, &resp, NULL, false), 0);
    size_t queued = f->out.len;
    assert_int_equal(rm_h1_server_write_room(&f->st, queued + 100), 100 - 24);
    assert_int_equal(rm_h1_server_write_room(&f->st, queued), 0);
    assert_int_equal(rm_h1_server_write_data(&f->st, "x", 1), 0);
    assert_int_equal(rm_h1_server_write_room(&f->st, queued + 100), 100 - 24 - 6);
    fx_free(f);
}

/* A tunnel from the first byte (no request head): raw both ways, closes after. */
static void test_tunnel_from_start(void **state)
{
    (void)state;
    fx_t *f = fx_default();
    rm_h1_server_tunnel(&f->st);
    assert_true(f->st.close);
    assert_false(rm_h1_server_body_done(&f->st));
    rm_span_t d;
    assert_int_equal(rm_h1_server_body_next(&f->st, 100, &d), RM_BODY_WAIT);
    feed(f, "GET / HTTP/1.1\r\n\r\n"); /* not parsed: bytes */
    assert_int_equal(rm_h1_server_body_next(&f->st, 4, &d), RM_BODY_DATA);
    assert_int_equal(d.len, 4);
    assert_memory_equal(d.ptr, "GET ", 4);
    rm_h1_server_body_consume(&f->st);
    assert_int_equal(f->in.len, 14);
    assert_int_equal(rm_h1_server_write_data(&f->st, "5\r\nhello", 8), 0);
    assert_int_equal(rm_h1_server_write_end(&f->st), 0);
    taken_t t;
    take(f, &t);
    assert_string_equal(t.text, "5\r\nhello");
    fx_free(f);
}

/* ---- local replies ---- */

static void expect_reply(const taken_t *t, int status, const char *fields, const char *body)
{
    char want[1024];
    snprintf(want, sizeof(want),
             "HTTP/1.1 %d %s\r\ncontent-length: %zu\r\ncontent-type: text/plain\r\n%s\r\n%s",
             status, rm_http1_reason_phrase(status), strlen(body), fields, body);
    if (strcmp(t->text, want) != 0)
        fail_msg("reply:\n%s\nwant:\n%s", t->text, want);
}

static void test_write_reply(void **state)
{
    (void)state;
    static const rm_field_t extra[] = {F("x-remora-overloaded", "true"), F("retry-after", "1")};
    taken_t t;

    fx_t *f = fx_default();
    read_ok(f, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(
        rm_h1_server_write_reply(&f->st, 503, extra, 2, "text/plain", "no upstream\n", 12, false),
        0);
    assert_false(f->st.close);
    assert_int_equal(f->st.out_framing, RM_H1_OUT_NONE);
    take(f, &t);
    expect_reply(&t, 503, "x-remora-overloaded: true\r\nretry-after: 1\r\n", "no upstream\n");
    fx_free(f);

    /* close_wanted. */
    f = fx_default();
    read_ok(f, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(rm_h1_server_write_reply(&f->st, 400, NULL, 0, "text/plain", "bad\n", 4, true),
                     0);
    assert_true(f->st.close);
    take(f, &t);
    expect_reply(&t, 400, "connection: close\r\n", "bad\n");
    fx_free(f);

    /* HTTP/1.0 without keep-alive. */
    f = fx_default();
    read_ok(f, "GET / HTTP/1.0\r\n\r\n");
    assert_int_equal(
        rm_h1_server_write_reply(&f->st, 404, NULL, 0, "text/plain", "no route\n", 9, false), 0);
    assert_true(f->st.close);
    take(f, &t);
    expect_reply(&t, 404, "connection: close\r\n", "no route\n");
    fx_free(f);

    /* HTTP/1.0 with keep-alive: kept. */
    f = fx_default();
    read_ok(f, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_int_equal(
        rm_h1_server_write_reply(&f->st, 404, NULL, 0, "text/plain", "no route\n", 9, false), 0);
    assert_false(f->st.close);
    take(f, &t);
    expect_reply(&t, 404, "connection: keep-alive\r\n", "no route\n"); /* 1.0 must be told */
    fx_free(f);

    /* Before any request (a head refused before it parsed): a complete reply too. */
    f = fx_default();
    assert_int_equal(
        rm_h1_server_write_reply(&f->st, 431, NULL, 0, "text/plain", "too large\n", 10, true), 0);
    take(f, &t);
    expect_reply(&t, 431, "connection: close\r\n", "too large\n");
    fx_free(f);

    /* An empty body. */
    f = fx_default();
    read_ok(f, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(rm_h1_server_write_reply(&f->st, 200, NULL, 0, "text/plain", "", 0, false), 0);
    take(f, &t);
    expect_reply(&t, 200, "", "");
    fx_free(f);
}

static void test_write_reply_to_head(void **state)
{
    (void)state;
    /* A local reply to HEAD on a kept-alive connection, with a pipelined GET behind it. */
    fx_t *f = fx_default();
    read_ok(f, "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(rm_h1_server_write_reply(&f->st, 503, NULL, 0, "text/plain",
                                              "no healthy upstream\n", 20, false),
                     0);
    assert_false(f->st.close);
    taken_t t;
    parsed_t p;
    take(f, &t);
    parse_resp(&t, RM_HTTP1_METHOD_HEAD, &p);
    assert_int_equal(p.r.body, RM_HTTP1_BODY_NONE);
#if 1
    /* Was a bug, found by this test: write_reply ignores the request's method: to HEAD it writes
     * the body after the head
     * ("HTTP/1.1 503 ...content-length: 20...\r\n\r\nno healthy upstream\n") and keeps the
     * connection. A response to HEAD has no content (RFC 9110 9.3.2), so the client takes
     * "no healthy upstream\n" as the start of the next response: desync. Expected: the head
     * alone (its content-length may stay), or connection: close. */
    assert_true((size_t)p.head_len == t.len || f->st.close);
#endif
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_get),
        cmocka_unit_test(test_read_other_method_and_asterisk),
        cmocka_unit_test(test_read_post_length),
        cmocka_unit_test(test_read_length_zero),
        cmocka_unit_test(test_read_chunked),
        cmocka_unit_test(test_read_http10),
        cmocka_unit_test(test_read_absolute_form),
        cmocka_unit_test(test_read_upgrade),
        cmocka_unit_test(test_read_connect),
        cmocka_unit_test(test_read_expect_and_conn_named),
        cmocka_unit_test(test_read_incomplete),
        cmocka_unit_test(test_read_malformed),
        cmocka_unit_test(test_read_too_large),
        cmocka_unit_test(test_body_length_pieces),
        cmocka_unit_test(test_body_chunked_every_split),
        cmocka_unit_test(test_body_chunked_byte_at_a_time),
        cmocka_unit_test(test_body_chunked_malformed),
        cmocka_unit_test(test_write_length),
        cmocka_unit_test(test_write_reason_kept),
        cmocka_unit_test(test_write_chunked_http11),
        cmocka_unit_test(test_write_close_http10),
        cmocka_unit_test(test_write_http10_keepalive),
        cmocka_unit_test(test_write_interim),
        cmocka_unit_test(test_write_close_wanted),
        cmocka_unit_test(test_write_hop_by_hop),
        cmocka_unit_test(test_write_upgrade_tunnel),
        cmocka_unit_test(test_write_connect_tunnel),
        cmocka_unit_test(test_write_no_body),
        cmocka_unit_test(test_write_edit),
        cmocka_unit_test(test_write_full),
        cmocka_unit_test(test_write_room),
        cmocka_unit_test(test_tunnel_from_start),
        cmocka_unit_test(test_write_reply),
        cmocka_unit_test(test_write_reply_to_head),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
