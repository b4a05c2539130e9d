/* tests/backend/backend_unit_test.c — unit tests of the backend's parsers, JSON, bodies, plans. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/backend/backend.h"

static void test_duration(void **state)
{
    uint64_t us = 7;

    (void)state;
    assert_int_equal(rm__duration_parse("250ms", 5, &us), 0);
    assert_int_equal(us, 250000);
    assert_int_equal(rm__duration_parse("2s", 2, &us), 0);
    assert_int_equal(us, 2000000);
    assert_int_equal(rm__duration_parse("1.5s", 4, &us), 0);
    assert_int_equal(us, 1500000);
    assert_int_equal(rm__duration_parse("1m30s", 5, &us), 0);
    assert_int_equal(us, 90000000);
    assert_int_equal(rm__duration_parse("100us", 5, &us), 0);
    assert_int_equal(us, 100);
    assert_int_equal(rm__duration_parse("1h", 2, &us), 0);
    assert_int_equal(us, 3600000000ULL);
    assert_int_equal(rm__duration_parse("0", 1, &us), 0);
    assert_int_equal(us, 0);
    assert_int_equal(rm__duration_parse("24h", 3, &us), 0);
    us = 7;
    assert_int_equal(rm__duration_parse("25h", 3, &us), -1);
    assert_int_equal(rm__duration_parse("200", 3, &us), -1);
    assert_int_equal(rm__duration_parse("", 0, &us), -1);
    assert_int_equal(rm__duration_parse("ms", 2, &us), -1);
    assert_int_equal(rm__duration_parse("1.s", 3, &us), -1);
    assert_int_equal(rm__duration_parse("-1s", 3, &us), -1);
    assert_int_equal(rm__duration_parse("1x", 2, &us), -1);
    assert_int_equal(rm__duration_parse("1s ", 3, &us), -1);
    assert_int_equal(rm__duration_parse("99999999999999999999999s", 24, &us), -1);
    assert_int_equal(us, 7); /* untouched on failure */
    /* Length-bounded: the bytes after n are not read. */
    assert_int_equal(rm__duration_parse("5msXYZ", 3, &us), 0);
    assert_int_equal(us, 5000);
}

static void test_numbers(void **state)
{
    uint64_t v;
    uint32_t bp;

    (void)state;
    assert_int_equal(rm__u64_parse("599", 3, 599, &v), 0);
    assert_int_equal(v, 599);
    assert_int_equal(rm__u64_parse("600", 3, 599, &v), -1);
    assert_int_equal(rm__u64_parse("", 0, 599, &v), -1);
    assert_int_equal(rm__u64_parse("1a", 2, 599, &v), -1);
    assert_int_equal(rm__u64_parse("18446744073709551616", 20, UINT64_MAX, &v), -1);
    assert_int_equal(rm__u64_parse("18446744073709551615", 20, UINT64_MAX, &v), 0);
    assert_true(v == UINT64_MAX);

    assert_int_equal(rm__percent_parse("10", &bp), 0);
    assert_int_equal(bp, 1000);
    assert_int_equal(rm__percent_parse("2.5", &bp), 0);
    assert_int_equal(bp, 250);
    assert_int_equal(rm__percent_parse("0.01", &bp), 0);
    assert_int_equal(bp, 1);
    assert_int_equal(rm__percent_parse("100", &bp), 0);
    assert_int_equal(bp, 10000);
    assert_int_equal(rm__percent_parse("100.01", &bp), -1);
    assert_int_equal(rm__percent_parse("101", &bp), -1);
    assert_int_equal(rm__percent_parse("0.001", &bp), -1);
    assert_int_equal(rm__percent_parse("5%", &bp), -1);
    assert_int_equal(rm__percent_parse("", &bp), -1);
    assert_int_equal(rm__percent_parse(".5", &bp), -1);
}

static void test_hostport(void **state)
{
    char h[64], p[8];

    (void)state;
    assert_int_equal(rm__hostport_split("127.0.0.1:8080", h, sizeof(h), p, sizeof(p)), 0);
    assert_string_equal(h, "127.0.0.1");
    assert_string_equal(p, "8080");
    assert_int_equal(rm__hostport_split("[::1]:9", h, sizeof(h), p, sizeof(p)), 0);
    assert_string_equal(h, "::1");
    assert_string_equal(p, "9");
    assert_int_equal(rm__hostport_split(":0", h, sizeof(h), p, sizeof(p)), 0);
    assert_string_equal(h, "");
    assert_string_equal(p, "0");
    assert_int_equal(rm__hostport_split("localhost:80", h, sizeof(h), p, sizeof(p)), 0);
    assert_int_equal(rm__hostport_split("::1:80", h, sizeof(h), p, sizeof(p)), -1);
    assert_int_equal(rm__hostport_split("host", h, sizeof(h), p, sizeof(p)), -1);
    assert_int_equal(rm__hostport_split("host:", h, sizeof(h), p, sizeof(p)), -1);
    assert_int_equal(rm__hostport_split("host:65536", h, sizeof(h), p, sizeof(p)), -1);
    assert_int_equal(rm__hostport_split("[::1]80", h, sizeof(h), p, sizeof(p)), -1);
    assert_int_equal(rm__hostport_split("h:1", h, 1, p, sizeof(p)), -1); /* host too long */
}

static void test_fail_select(void **state)
{
    static const uint32_t rates[] = {1, 250, 1000, 3333, 5000, 9999, 10000};

    (void)state;
    /* Every Nth: 10% fails requests 10, 20, 30, ... */
    for (uint64_t s = 1; s <= 100; s++)
        assert_int_equal(rm__fail_select(s, 1000), s % 10 == 0);
    for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
        uint64_t fails = 0;

        for (uint64_t s = 1; s <= 20000; s++)
            fails += (uint64_t)rm__fail_select(s, rates[i]);
        assert_int_equal(fails, 2 * rates[i]);
    }
    assert_int_equal(rm__fail_select(5, 0), 0);
    assert_int_equal(rm__fail_select(UINT64_MAX, 10000), 1);
}

/* Appends s escaped and returns the buffer as a NUL-terminated string (owned by b). */
static const char *esc(rm__buf_t *b, const char *s, size_t n)
{
    b->len = 0;
    assert_int_equal(rm__buf_json_string(b, s, n), 0);
    rm__buf_append(b, "", 1);
    return b->data;
}

static void test_json_escape(void **state)
{
    rm__buf_t b;

    (void)state;
    rm__buf_init(&b);
    assert_string_equal(esc(&b, "plain", 5), "\"plain\"");
    assert_string_equal(esc(&b, "a\"b\\c", 5), "\"a\\\"b\\\\c\"");
    assert_string_equal(esc(&b, "\n\r\t\x01\x7f", 5), "\"\\n\\r\\t\\u0001\\u007f\"");
    assert_string_equal(esc(&b, "", 0), "\"\"");
    assert_string_equal(esc(&b, NULL, 0), "\"\"");
    assert_string_equal(esc(&b, "caf\xc3\xa9", 5), "\"caf\xc3\xa9\""); /* valid UTF-8 kept */
    assert_string_equal(esc(&b,
                            "\xff"
                            "a",
                            2),
                        "\"\\ufffda\"");                                          /* invalid byte */
    assert_string_equal(esc(&b, "\xc3", 1), "\"\\ufffd\"");                       /* truncated */
    assert_string_equal(esc(&b, "\xc0\xaf", 2), "\"\\ufffd\\ufffd\"");            /* overlong */
    assert_string_equal(esc(&b, "\xed\xa0\x80", 3), "\"\\ufffd\\ufffd\\ufffd\""); /* surrogate */
    assert_string_equal(esc(&b, "\xf0\x9f\x98\x80", 4), "\"\xf0\x9f\x98\x80\"");
    assert_string_equal(esc(&b, "a\0b", 3), "\"a\\u0000b\"");
    rm__buf_free(&b);
}

/* Produces the whole body (slice size max) into one buffer. */
static void drain_body(rm__body_t *body, rm__buf_t *out, size_t max)
{
    int guard = 0;

    while (!body->done) {
        assert_int_equal(rm__body_fill(body, out, max), 0);
        assert_true(++guard < 100000);
    }
}

static void body_setup(rm__body_t *body, const char *line, uint64_t total, int chunked)
{
    rm__body_init(body);
    rm__buf_puts(&body->line, line);
    body->total = total;
    body->cut = total;
    body->chunked = chunked;
}

static void test_body(void **state)
{
    rm__body_t body;
    rm__buf_t out;

    (void)state;
    rm__buf_init(&out);
    /* Exactly the line. */
    body_setup(&body, "{\"a\":1}\n", 8, 0);
    drain_body(&body, &out, 3);
    assert_int_equal(out.len, 8);
    assert_memory_equal(out.data, "{\"a\":1}\n", 8);
    rm__body_free(&body);

    /* Padded with spaces before the newline: still one JSON value. */
    out.len = 0;
    body_setup(&body, "{\"a\":1}\n", 12, 0);
    drain_body(&body, &out, 5);
    assert_int_equal(out.len, 12);
    assert_memory_equal(out.data, "{\"a\":1}    \n", 12);
    rm__body_free(&body);

    /* Shorter than the line: filler. */
    out.len = 0;
    body_setup(&body, "{\"a\":1}\n", 3, 0);
    drain_body(&body, &out, 64);
    assert_int_equal(out.len, 3);
    assert_memory_equal(out.data, "xxx", 3);
    rm__body_free(&body);

    /* Chunked, in slices of 4: "4\r\n....\r\n" x2, then "0\r\n\r\n". */
    out.len = 0;
    body_setup(&body, "{\"a\":1}\n", 8, 1);
    drain_body(&body, &out, 4);
    rm__buf_append(&out, "", 1);
    assert_string_equal(out.data, "4\r\n{\"a\"\r\n4\r\n:1}\n\r\n0\r\n\r\n");
    rm__body_free(&body);

    /* Empty chunked body is only the last chunk. */
    out.len = 0;
    body_setup(&body, "{}\n", 0, 1);
    drain_body(&body, &out, 4);
    rm__buf_append(&out, "", 1);
    assert_string_equal(out.data, "0\r\n\r\n");
    rm__body_free(&body);

    /* Cut in half (reset-mid-body): half the bytes, no last chunk. */
    out.len = 0;
    body_setup(&body, "{}\n", 1000000, 1);
    body.cut = 500000;
    drain_body(&body, &out, RM__OUT_SLICE);
    assert_int_equal(body.produced, 500000);
    assert_true(out.len > 500000);
    assert_memory_not_equal(out.data + out.len - 5, "0\r\n\r\n", 5);
    rm__body_free(&body);

    /* A large body is produced in bounded slices. */
    out.len = 0;
    body_setup(&body, "{}\n", 5000000, 0);
    assert_int_equal(rm__body_fill(&body, &out, RM__OUT_SLICE), 0);
    assert_true(out.len <= RM__OUT_SLICE);
    assert_false(body.done);
    rm__body_free(&body);
    rm__buf_free(&out);
}

/* Feeds data to a request parser like the connection does: one request per pause. */
typedef struct feed {
    llhttp_t parser;
    rm__req_t req;
    int requests;
    llhttp_errno_t err;
} feed_t;

static void feed_init(feed_t *f)
{
    memset(f, 0, sizeof(*f));
    rm__req_init(&f->req);
    llhttp_init(&f->parser, HTTP_REQUEST, rm__req_settings());
    f->parser.data = &f->req;
}

/* Returns bytes consumed; stops at a complete request, leaving it in f->req. */
static size_t feed(feed_t *f, const char *p, size_t n)
{
    llhttp_errno_t e = llhttp_execute(&f->parser, p, n);

    if (e == HPE_OK)
        return n;
    if (e == HPE_PAUSED) {
        size_t used = (size_t)(llhttp_get_error_pos(&f->parser) - p);

        llhttp_resume(&f->parser);
        return used;
    }
    f->err = e;
    return n;
}

static const char chunked_req[] = "POST /up?x=\"1\" HTTP/1.1\r\n"
                                  "Host: svc.example  \r\n"
                                  "X-Request-Id: r-1\r\n"
                                  "X-Backend-Delay: 150ms\r\n"
                                  "x-backend-status: 503\r\n"
                                  "x-backend-body-bytes: 100\r\n"
                                  "X-Multi: a\r\n"
                                  "x-multi: b\r\n"
                                  "Empty:\r\n"
                                  "Transfer-Encoding: chunked\r\n"
                                  "\r\n"
                                  "5\r\nhello\r\n"
                                  "a;ext=1\r\n0123456789\r\n"
                                  "0\r\n"
                                  "Trailer-Name: dropped\r\n"
                                  "\r\n";

static void check_chunked_req(const rm__req_t *r)
{
    const char *v;
    size_t n;

    assert_true(r->complete);
    assert_int_equal(r->method, HTTP_POST);
    assert_int_equal(r->body_bytes, 15);
    assert_int_equal(r->url_len, strlen("/up?x=\"1\""));
    assert_memory_equal(r->store.data, "/up?x=\"1\"", r->url_len);
    v = rm__req_header(r, "host", &n);
    assert_non_null(v);
    assert_int_equal(n, strlen("svc.example")); /* trailing OWS trimmed */
    assert_memory_equal(v, "svc.example", n);
    v = rm__req_header(r, "x-multi", &n);
    assert_int_equal(n, 1);
    assert_memory_equal(v, "a", 1);
    v = rm__req_header(r, "empty", &n);
    assert_non_null(v);
    assert_int_equal(n, 0);
    assert_null(rm__req_header(r, "trailer-name", &n));
    assert_true(r->ctl.has_delay);
    assert_int_equal(r->ctl.delay_us, 150000);
    assert_int_equal(r->ctl.status, 503);
    assert_true(r->ctl.has_body_bytes);
    assert_int_equal(r->ctl.body_bytes, 100);
    assert_null(r->ctl.error);
    assert_true(r->keep_alive);
}

/* The request split at every byte (and byte by byte) parses to the same result. */
static void test_request_split(void **state)
{
    size_t len = strlen(chunked_req);

    (void)state;
    for (size_t cut = 0; cut <= len; cut++) {
        feed_t f;
        size_t off = 0;

        feed_init(&f);
        while (off < cut && !f.req.complete)
            off += feed(&f, chunked_req + off, cut - off);
        while (off < len && !f.req.complete)
            off += feed(&f, chunked_req + off, len - off);
        assert_int_equal(f.err, HPE_OK);
        assert_int_equal(off, len);
        check_chunked_req(&f.req);
        rm__req_free(&f.req);
    }
    {
        feed_t f;
        size_t off = 0;

        feed_init(&f);
        while (off < len && !f.req.complete)
            off += feed(&f, chunked_req + off, 1);
        check_chunked_req(&f.req);
        rm__req_free(&f.req);
    }
}

static void test_request_pipelined(void **state)
{
    const char *two = "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.0\r\n\r\n";
    size_t len = strlen(two), off;
    feed_t f;

    (void)state;
    feed_init(&f);
    off = feed(&f, two, len);
    assert_true(f.req.complete);
    assert_memory_equal(f.req.store.data, "/a", 2);
    assert_true(f.req.keep_alive);
    assert_true(off < len);
    off += feed(&f, two + off, len - off);
    assert_int_equal(off, len);
    assert_true(f.req.complete);
    assert_memory_equal(f.req.store.data, "/b", 2);
    assert_false(f.req.keep_alive); /* HTTP/1.0 without keep-alive */
    rm__req_free(&f.req);
}

static void test_request_limits(void **state)
{
    rm__buf_t big;
    feed_t f;

    (void)state;
    /* Header bytes over 64 KiB: 431. */
    rm__buf_init(&big);
    rm__buf_puts(&big, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 70; i++) {
        rm__buf_printf(&big, "x-h%d: ", i);
        for (int k = 0; k < 1000; k++)
            rm__buf_append(&big, "v", 1);
        rm__buf_puts(&big, "\r\n");
    }
    rm__buf_puts(&big, "\r\n");
    feed_init(&f);
    feed(&f, big.data, big.len);
    assert_int_equal(f.err, HPE_USER);
    assert_int_equal(f.req.err_status, 431);
    rm__req_free(&f.req);

    /* More than 1024 headers: 431. */
    big.len = 0;
    rm__buf_puts(&big, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 1100; i++)
        rm__buf_puts(&big, "a: b\r\n");
    rm__buf_puts(&big, "\r\n");
    feed_init(&f);
    feed(&f, big.data, big.len);
    assert_int_equal(f.err, HPE_USER);
    assert_int_equal(f.req.err_status, 431);
    rm__req_free(&f.req);

    /* Just under the count limit is fine. */
    big.len = 0;
    rm__buf_puts(&big, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 1000; i++)
        rm__buf_puts(&big, "a: b\r\n");
    rm__buf_puts(&big, "\r\n");
    feed_init(&f);
    feed(&f, big.data, big.len);
    assert_int_equal(f.err, HPE_OK);
    assert_true(f.req.complete);
    assert_int_equal(f.req.nhdrs, 1000);
    rm__req_free(&f.req);
    rm__buf_free(&big);

    /* Malformed request line. */
    feed_init(&f);
    feed(&f, "GET / HTTX/1.1\r\n\r\n", 18);
    assert_true(f.err != HPE_OK);
    assert_int_equal(f.req.err_status, 0);
    rm__req_free(&f.req);
}

static void test_controls(void **state)
{
    static const char *bad[] = {
        "x-backend-delay: 10\r\n",   "x-backend-status: 99\r\n",     "x-backend-status: 600\r\n",
        "x-backend-status: abc\r\n", "x-backend-body-bytes: -1\r\n", "x-backend-fault: explode\r\n",
        "x-backend-delay: 1s5\r\n",
    };
    char req[256];
    feed_t f;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(req, sizeof(req), "GET / HTTP/1.1\r\n%s\r\n", bad[i]);
        feed_init(&f);
        feed(&f, req, strlen(req));
        assert_true(f.req.complete);
        assert_non_null(f.req.ctl.error);
        rm__req_free(&f.req);
    }
    /* no-read pauses right after the headers, before any body byte. */
    snprintf(req, sizeof(req),
             "POST / HTTP/1.1\r\nx-backend-fault: no-read\r\ncontent-length: 5\r\n\r\nhello");
    feed_init(&f);
    assert_int_equal(feed(&f, req, strlen(req)), strlen(req) - 5);
    assert_true(f.req.no_read);
    assert_false(f.req.complete);
    assert_int_equal(f.req.body_bytes, 0);
    rm__req_free(&f.req);
    /* Admin paths ignore control headers. */
    snprintf(req, sizeof(req), "GET /__backend/stats HTTP/1.1\r\nx-backend-fault: bogus\r\n\r\n");
    feed_init(&f);
    feed(&f, req, strlen(req));
    assert_true(f.req.complete);
    assert_true(f.req.admin);
    assert_null(f.req.ctl.error);
    rm__req_free(&f.req);
}

static rm__server_t *test_server(void)
{
    rm__server_t *srv = calloc(1, sizeof(*srv));

    assert_non_null(srv);
    srv->cfg.service = "svc";
    srv->cfg.version = "v\"2";
    srv->cfg.instance = "i-1";
    srv->cfg.status = 200;
    srv->cfg.fail_status = 503;
    return srv;
}

static void parse_one(feed_t *f, const char *req)
{
    feed_init(f);
    feed(f, req, strlen(req));
    assert_true(f->req.complete);
}

static void test_plan_and_response(void **state)
{
    rm__server_t *srv = test_server();
    rm__plan_t plan;
    rm__body_t body;
    rm__buf_t out;
    feed_t f;
    int fails = 0;

    (void)state;
    srv->cfg.fail_rate_bp = 1000;
    parse_one(&f, "GET /p HTTP/1.1\r\nhost: h\r\n\r\n");
    for (int i = 0; i < 100; i++) {
        rm__plan_make(srv, &f.req, &plan);
        fails += plan.status == 503;
    }
    assert_int_equal(fails, 10);
    assert_int_equal(srv->stats.requests, 100);
    assert_int_equal(srv->stats.by_method[HTTP_GET], 100);
    rm__req_free(&f.req);

    /* Header override beats the fail rate; faults are counted. */
    parse_one(&f, "GET / HTTP/1.1\r\nx-backend-status: 201\r\nx-backend-fault: hang\r\n\r\n");
    rm__plan_make(srv, &f.req, &plan);
    assert_int_equal(plan.status, 201);
    assert_int_equal(plan.fault, RM__FAULT_HANG);
    assert_int_equal(srv->stats.faults, 1);
    rm__req_free(&f.req);

    /* Admin requests are not counted. */
    parse_one(&f, "GET /__backend/stats HTTP/1.1\r\n\r\n");
    rm__plan_make(srv, &f.req, &plan);
    assert_int_equal(plan.kind, RM__KIND_STATS);
    assert_int_equal(srv->stats.requests, 101);
    rm__req_free(&f.req);

    /* The identity response, with echoes and a quote in the version. */
    parse_one(&f, "POST /x HTTP/1.1\r\nHost: h\r\nX-Request-Id: abc\r\nx-remora-attempt: 2\r\n"
                  "x-backend-echo-headers: 1\r\nA: 1\r\na: 2\r\ncontent-length: 2\r\n\r\nhi");
    rm__plan_make(srv, &f.req, &plan);
    rm__buf_init(&out);
    rm__body_init(&body);
    assert_int_equal(rm__response_start(srv, &f.req, &plan, 1, &out, &body), 0);
    rm__buf_append(&out, "", 1);
    assert_non_null(strstr(out.data, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(out.data, "\r\nx-request-id: abc\r\n"));
    assert_non_null(strstr(out.data, "\r\nx-remora-attempt: 2\r\n"));
    assert_non_null(strstr(out.data, "\r\nconnection: close\r\n"));
    assert_non_null(strstr(out.data, "\r\nx-backend-service: svc\r\n"));
    assert_true(out.len >= 5 && memcmp(out.data + out.len - 5, "\r\n\r\n", 4) == 0);
    out.len = 0;
    drain_body(&body, &out, RM__OUT_SLICE);
    rm__buf_append(&out, "", 1);
    assert_string_equal(out.data,
                        "{\"service\":\"svc\",\"version\":\"v\\\"2\",\"instance\":\"i-1\","
                        "\"method\":\"POST\",\"path\":\"/x\",\"body_bytes\":2,\"host\":\"h\","
                        "\"headers\":{\"host\":\"h\",\"x-request-id\":\"abc\","
                        "\"x-remora-attempt\":\"2\",\"x-backend-echo-headers\":\"1\","
                        "\"a\":\"1, 2\",\"content-length\":\"2\"}}\n");
    assert_int_equal(srv->stats.by_status[200], 1);
    rm__req_free(&f.req);

    /* HEAD keeps the length but sends no body; 204 has neither. */
    parse_one(&f, "HEAD / HTTP/1.1\r\nx-backend-body-bytes: 777\r\n\r\n");
    rm__plan_make(srv, &f.req, &plan);
    out.len = 0;
    assert_int_equal(rm__response_start(srv, &f.req, &plan, 0, &out, &body), 0);
    rm__buf_append(&out, "", 1);
    assert_non_null(strstr(out.data, "content-length: 777\r\n"));
    assert_null(strstr(out.data, "connection:"));
    assert_true(body.done);
    rm__req_free(&f.req);
    parse_one(&f, "GET / HTTP/1.0\r\nconnection: keep-alive\r\nx-backend-status: 204\r\n\r\n");
    rm__plan_make(srv, &f.req, &plan);
    out.len = 0;
    assert_int_equal(rm__response_start(srv, &f.req, &plan, 0, &out, &body), 0);
    rm__buf_append(&out, "", 1);
    assert_non_null(strstr(out.data, "HTTP/1.1 204 No Content\r\n"));
    assert_null(strstr(out.data, "content-length"));
    assert_non_null(strstr(out.data, "connection: keep-alive\r\n"));
    assert_true(body.done);
    rm__req_free(&f.req);

    /* close-after-headers announces the length and produces nothing. */
    parse_one(&f, "GET / HTTP/1.1\r\nx-backend-fault: close-after-headers\r\n\r\n");
    rm__plan_make(srv, &f.req, &plan);
    out.len = 0;
    assert_int_equal(rm__response_start(srv, &f.req, &plan, 0, &out, &body), 0);
    out.len = 0;
    drain_body(&body, &out, RM__OUT_SLICE);
    assert_int_equal(out.len, 0);
    assert_true(body.total > 0);
    rm__req_free(&f.req);

    rm__body_free(&body);
    rm__buf_free(&out);
    free(srv);
}

static void test_stats_json(void **state)
{
    rm__stats_t st;
    rm__buf_t b;

    (void)state;
    memset(&st, 0, sizeof(st));
    st.requests = 3;
    st.by_status[200] = 2;
    st.by_status[503] = 1;
    st.by_method[HTTP_GET] = 3;
    st.connections = 4;
    st.active = 1;
    st.faults = 0;
    rm__buf_init(&b);
    rm__stats_json(&st, &b);
    rm__buf_append(&b, "", 1);
    assert_string_equal(b.data, "{\"requests\":3,\"by_status\":{\"200\":2,\"503\":1},"
                                "\"by_method\":{\"GET\":3},\"connections\":4,\"active\":1,"
                                "\"faults\":0}\n");
    rm__buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration),          cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_hostport),          cmocka_unit_test(test_fail_select),
        cmocka_unit_test(test_json_escape),       cmocka_unit_test(test_body),
        cmocka_unit_test(test_request_split),     cmocka_unit_test(test_request_pipelined),
        cmocka_unit_test(test_request_limits),    cmocka_unit_test(test_controls),
        cmocka_unit_test(test_plan_and_response), cmocka_unit_test(test_stats_json),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
