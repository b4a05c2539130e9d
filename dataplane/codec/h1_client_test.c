/* dataplane/codec/h1_client_test.c — the HTTP/1 codec's client side over real buffers: neutral
 * requests into HTTP/1.1 bytes (request line and target fixes, Host from the authority, body
 * framing, hop-by-hop, Upgrade, Expect, edits; each written head re-parsed by dataplane/http1),
 * and response bytes back into neutral heads and bodies (interim, HEAD, 204/304, until close,
 * chunked split at every byte, tunnels, limits, errors) with the connection's reusability. */
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
#include "dataplane/codec/h1_client.h"
#include "dataplane/http1/http1.h"
#include "dataplane/codec/h1_test_util.h"
#include "dataplane/message/message-t.h"

typedef struct cx {
    rm_buf_t in, out;
    rm_http1_header_t scratch[NSCRATCH];
    rm_h1_client_t st;
} cx_t;

static cx_t *cx_new(size_t in_limit, size_t max_headers)
{
    cx_t *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    rm_buf_init(&c->in, in_limit);
    rm_buf_init(&c->out, BIG);
    rm_h1_client_init(&c->st, &c->in, &c->out, c->scratch, NSCRATCH, max_headers);
    return c;
}

static cx_t *cx_default(void)
{
    return cx_new(BIG, RM_HTTP1_DEFAULT_MAX_HEADERS);
}

static void cx_free(cx_t *c)
{
    rm_buf_free(&c->in);
    rm_buf_free(&c->out);
    free(c);
    rm_buf_thread_cache_free();
}

static void feedn(cx_t *c, const char *p, size_t n)
{
    assert_int_equal(rm_buf_append(&c->in, p, n), 0);
}

static void feed(cx_t *c, const char *s)
{
    feedn(c, s, strlen(s));
}

/* ---- what the upstream will read: the out buffer, taken and re-parsed ---- */

static void take(cx_t *c, taken_t *t)
{
    take_out(&c->out, t);
}

typedef struct parsed {
    rm_http1_header_t h[NSCRATCH];
    rm_http1_request_t r;
    int head_len;
} parsed_t;

/* Parses the request head at the start of t as a strict upstream would; the result code. */
static int parse_req_rc(const taken_t *t, parsed_t *p)
{
    rm_http1_request_init(&p->r, p->h, NSCRATCH);
    p->head_len = rm_http1_parse_request(t->text, t->len, &p->r, NULL);
    return p->head_len;
}

static void parse_req(const taken_t *t, parsed_t *p)
{
    if (parse_req_rc(t, p) <= 0)
        fail_msg("written request does not parse (%d, %s):\n%s", p->head_len,
                 p->r.error_reason ? p->r.error_reason : "-", t->text);
}

static size_t field_count(const parsed_t *p, const char *name)
{
    return fields_named(p->h, p->r.num_headers, name);
}

#define assert_field(p, fname, fval) assert_one_field((p)->h, (p)->r.num_headers, (fname), (fval))

#define assert_no_field(p, name) assert_int_equal(field_count((p), (name)), 0)

static rm_request_head_t get_head(const char *authority, const char *path)
{
    return (rm_request_head_t){.method = RM_METHOD_GET,
                               .method_name = S("GET"),
                               .authority = {authority, strlen(authority)},
                               .path = {path, strlen(path)},
                               .version = 11};
}

/* ---- write_head ---- */

static void test_write_get(void **state)
{
    (void)state;
    static const rm_field_t fields[] = {F("Host", "other"), F("Accept", "*/*"), F("X-Two", "a"),
                                        F("x-two", "b")};
    cx_t *c = cx_default();
    rm_request_head_t h = get_head("svc:8080", "/x?q=1");
    h.fields = fields;
    h.nfields = 4;
    h.version = 10; /* the proxy speaks its own version */
    assert_int_equal(rm_h1_client_write_head(&c->st, &h, NULL), 0);
    assert_true(c->st.req_done);
    assert_false(c->st.req_chunked);
    taken_t t;
    parsed_t p;
    take(c, &t);
    parse_req(&t, &p);
    assert_memory_equal(t.text, "GET /x?q=1 HTTP/1.1\r\n", 21);
    assert_int_equal((size_t)p.head_len, t.len);
    assert_field(&p, "host", "svc:8080");
    assert_field(&p, "Accept", "*/*");
    assert_int_equal(field_count(&p, "x-two"), 2); /* repeated fields keep their order */
    assert_span(p.h[rm_http1_header_find(p.h, p.r.num_headers, "x-two", 5)].value, "a");
    assert_no_field(&p, "content-length");
    assert_no_field(&p, "transfer-encoding");
    assert_int_equal(p.r.body, RM_HTTP1_BODY_NONE);
    assert_true(p.r.flags & RM_HTTP1_F_KEEP_ALIVE);
    /* No body: write_end adds nothing. */
    assert_int_equal(rm_h1_client_write_end(&c->st), 0);
    assert_int_equal(c->out.len, 0);
    cx_free(c);
}

static void test_write_target_fixes(void **state)
{
    (void)state;
    static const struct {
        const char *path, *line;
    } cases[] = {
        {"?q", "GET /?q HTTP/1.1\r\n"},
        {"", "GET / HTTP/1.1\r\n"},
        {"/", "GET / HTTP/1.1\r\n"},
        {"/a?b=c&d", "GET /a?b=c&d HTTP/1.1\r\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cx_t *c = cx_default();
        rm_request_head_t h = get_head("svc", cases[i].path);
        assert_int_equal(rm_h1_client_write_head(&c->st, &h, NULL), 0);
        taken_t t;
        parsed_t p;
        take(c, &t);
        parse_req(&t, &p);
        assert_memory_equal(t.text, cases[i].line, strlen(cases[i].line));
        cx_free(c);
    }

    /* OPTIONS * stays. */
    cx_t *c = cx_default();
    rm_request_head_t h = get_head("svc", "*");
    h.method = RM_METHOD_OPTIONS;
    h.method_name = (rm_span_t)S("OPTIONS");
    assert_int_equal(rm_h1_client_write_head(&c->st, &h, NULL), 0);
    taken_t t;
    take(c, &t);
    assert_memory_equal(t.text, "OPTIONS * HTTP/1.1\r\n", 20);
    cx_free(c);

    /* A path needing the slash but too long for the request line: refused, nothing written. */
    static char longpath[RM_HTTP1_DEFAULT_MAX_REQUEST_LINE + 10];
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '?';
    c = cx_default();
    h = get_head("svc", longpath);
    assert_int_equal(rm_h1_client_write_head(&c->st, &h, NULL), RM_HTTP1_E_ARG);
    assert_int_equal(c->out.len, 0);
    cx_free(c);
}

static void test_write_length(void **state)
{
    (void)state;
    static const rm_field_t fields[] = {F("Content-Length", "99"),
                                        F("Transfer-Encoding", "chunked"), F("X-A", "1")};
    cx_t *c = cx_default();
    rm_request_head_t h = get_head("svc", "/f");
    h.method = RM_METHOD_POST;
    h.method_name = (rm_span_t)S("POST");
    h.fields = fields;
    h.nfields = 3;
    h.content_length = 5;
    h.flags = RM_MSG_F_BODY | RM_MSG_F_LENGTH;
    assert_int_equal(rm_h1_client_write_head(&c->st, &h, NULL), 0);
    assert_false(c->st.req_done);
    assert_false(c->st.req_chunked);
    assert_int_equal(rm_h1_client_write_data(&c->st, "hel", 3), 0);
    assert_int_equal(rm_h1_client_write_data(&c->st, "lo", 2), 0);
    assert_int_equal(rm_h1_client_write_end(&c->st), 0);
    assert_true(c->st.req_done);
    taken_t t;
    parsed_t p;
    take(c, &t);
    parse_req(&t, &p);
    assert_field(&p, "content-length", "5");
    assert_no_field(&p, "transfer-encoding");
    assert_field(&p, "X-A", "1");
    assert_int_equal(p.r.body, RM_HTTP1_BODY_CONTENT_LENGTH);
    assert_int_equal(p.r.content_length, 5);
    assert_int_equal(t.len, (size_t)p.head_len + 5);
    assert_memory_equal(t.text + p.head_len, "hello", 5);
    cx_free(c);

    /* LENGTH without BODY: an explicit zero. */
    c = cx_default();
    h.flags = RM_MSG_F_LENGTH;
    h.content_length = 0;
    h.nfields = 0;
    assert_int_equal(rm_h1_client_write_head(&c->st, &h, NULL), 0);
    assert_true(c->st.req_done);
    take(c, &t);
    parse_req(&t, &p);
    assert_field(&p, "content-length", "0");
    cx_free(c);
}

static void test_write_chunked(void **state)
{
    (void)state;
    static const rm_field_t fields[] = {F("Content-Length", "3")};
    cx_t *c = cx_default();
    rm_request_head_t h = get_head("svc", "/up");
    h.method = RM_METHOD_PUT;
    h.method_name = (rm_span_t)S("PUT");
    h.fields = fields;
    h.nfields = 1;
    h.flags = RM_MSG_F_BODY;
    assert_int_equal(rm_h1_client_write_head(&c->st, &h, NULL), 0);
    assert_true(c->st.req_chunked);
    assert_false(c->st.req_done);
    taken_t t;
    parsed_t p;
    take(c, &t);
    parse_req(&t, &p);
    assert_field(&p, "transfer-encoding", "chunked");
    assert_no_field(&p, "content-length");
    assert_int_equal(p.r.body, RM_HTTP1_BODY_CHUNKED);
    assert_int_equal((size_t)p.head_len, t.len);

    assert_int_equal(rm_h1_client_write_room(&c->st, 100), 100 - 24);
    assert_int_equal(rm_h1_client_write_data(&c->st, "hello", 5), 0);
    take(c, &t);
    assert_string_equal(t.text, "5\r\nhello\r\n");
    assert_int_equal(rm_h1_client_write_data(&c->st, "", 0), 0);
    assert_int_equal(c->out.len, 0); /* never an empty chunk: it would end the body */
    char big[300];
    memset(big, 'z', sizeof(big));
    assert_int_equal(rm_h1_client_write_data(&c->st, big, sizeof(big)), 0);
    take(c, &t);
    assert_memory_equal(t.text, "12c\r\nzzz", 8);
    assert_int_equal(t.len, 5 + 300 + 2);
    assert_memory_equal(t.text + 305, "\r\n", 2);
    assert_int_equal(rm_h1_client_write_end(&c->st), 0);
    assert_true(c->st.req_done);
    take(c, &t);
    assert_string_equal(t.text, "0\r\n\r\n");
    cx_free(c);
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
    cx_t *c = cx_default();
    rm_request_head_t h = get_head("svc", "/");
    h.fields = fields;
    h.nfields = 8;
    h.flags = RM_MSG_F_CONN_NAMED;
    assert_int_equal(rm_h1_client_write_head(&c->st, &h, NULL), 0);
    taken_t t;
    parsed_t p;
    take(c, &t);
    parse_req(&t, &p);
    assert_int_equal(p.r.num_headers, 2);
    assert_field(&p, "X-Keep", "1");
    assert_field(&p, "host", "svc");
    cx_free(c);
}

static void test_write_upgrade(void **state)
{
    (void)state;
    static const rm_field_t fields[] = {F("Connection", "Upgrade"), F("Upgrade", "websocket"),
                                        F("Sec-WebSocket-Key", "k")};
    cx_t *c = cx_default();
    rm_request_head_t h = get_head("svc", "/ws");
    h.fields = fields;
    h.nfields = 3;
    h.flags = RM_MSG_F_UPGRADE;
    assert_int_equal(rm_h1_client_write_head(&c->st, &h, NULL), 0);
    taken_t t;
    parsed_t p;
    take(c, &t);
    parse_req(&t, &p);
    assert_field(&p, "connection", "upgrade");
    assert_field(&p, "upgrade", "websocket");
    assert_field(&p, "Sec-WebSocket-Key", "k");
    assert_true(p.r.flags & RM_HTTP1_F_UPGRADE);
    assert_true(p.r.flags & RM_HTTP1_F_CONN_UPGRADE);
    cx_free(c);

    /* Without the flag, Upgrade is hop-by-hop like the rest. */
    c = cx_default();
    h.flags = 0;
    assert_int_equal(rm_h1_client_write_head(&c->st, &h, NULL), 0);
    take(c, &t);
    parse_req(&t, &p);
    assert_no_field(&p, "connection");
    assert_no_field(&p, "upgrade");
    cx_free(c);
}

static void test_write_expect(void **state)
{
    (void)state;
    static const rm_field_t fields[] = {F("Expect", "100-continue")};
    cx_t *c = cx_default();
    rm_request_head_t h = get_head("svc", "/u");
    h.method = RM_METHOD_POST;
    h.method_name = (rm_span_t)S("POST");
    h.fields = fields;
    h.nfields = 1;
    h.content_length = 3;
    h.flags = RM_MSG_F_BODY | RM_MSG_F_LENGTH;
    assert_int_equal(rm_h1_client_write_head(&c->st, &h, NULL), 0);
    taken_t t;
    parsed_t p;
    take(c, &t);
    parse_req(&t, &p);
    assert_no_field(&p, "expect");
    cx_free(c);

    c = cx_default();
    h.flags |= RM_MSG_F_EXPECT_100;
    assert_int_equal(rm_h1_client_write_head(&c->st, &h, NULL), 0);
    take(c, &t);
    parse_req(&t, &p);
    assert_field(&p, "Expect", "100-continue");
    assert_true(p.r.flags & RM_HTTP1_F_EXPECT_CONTINUE);
    cx_free(c);
}

static void test_write_edit(void **state)
{
    (void)state;
    static const rm_field_t fields[] = {F("x-remove-me", "1"), F("X-Keep", "1"),
                                        F("X-Remove-Me", "2")};
    static const rm_span_t remove[] = {S("X-REMOVE-ME")};
    static const rm_field_t add[] = {F("x-request-id", "abc"), F("x-forwarded-for", "10.0.0.1")};
    rm_field_edit_t edit = {.remove = remove, .nremove = 1, .add = add, .nadd = 2};
    cx_t *c = cx_default();
    rm_request_head_t h = get_head("svc", "/");
    h.fields = fields;
    h.nfields = 3;
    assert_int_equal(rm_h1_client_write_head(&c->st, &h, &edit), 0);
    taken_t t;
    parsed_t p;
    take(c, &t);
    parse_req(&t, &p);
    assert_no_field(&p, "x-remove-me");
    assert_field(&p, "X-Keep", "1");
    assert_field(&p, "x-request-id", "abc");
    assert_field(&p, "x-forwarded-for", "10.0.0.1");
    /* Added fields come last, in order. */
    assert_span(p.h[p.r.num_headers - 1].name, "x-forwarded-for");
    assert_span(p.h[p.r.num_headers - 2].name, "x-request-id");
    cx_free(c);

    /* Added fields are the caller's (message-t.h: valid as they are, not scanned again), but an
     * authority that would inject a field is refused, nothing written: it becomes Host. */
    c = cx_default();
    rm_request_head_t h2 = get_head("svc\r\nx-b: 2", "/");
    assert_int_equal(rm_h1_client_write_head(&c->st, &h2, NULL), RM_HTTP1_E_ARG);
    assert_int_equal(c->out.len, 0);
    cx_free(c);
}

static void test_write_connect(void **state)
{
    (void)state;
    static const rm_field_t fields[] = {F("Host", "db:5432"), F("Proxy-Authorization", "x")};
    cx_t *c = cx_default();
    rm_request_head_t h = {.method = RM_METHOD_CONNECT,
                           .method_name = S("CONNECT"),
                           .authority = S("db:5432"),
                           .fields = fields,
                           .nfields = 2,
                           .flags = RM_MSG_F_UPGRADE,
                           .version = 11};
    assert_int_equal(rm_h1_client_write_head(&c->st, &h, NULL), 0);
    taken_t t;
    parsed_t p;
    take(c, &t);
    assert_memory_equal(t.text, "CONNECT db:5432 HTTP/1.1\r\n", 26);
    int rc = parse_req_rc(&t, &p);
    (void)rc;
#if 1
    /* Was a bug, found by this test: the CONNECT request goes out without any Host field: the codec
     * drops the caller's Host (own_fields) and adds one only when !connect. RFC 9112 3.2: "A client
     * MUST send a Host header field in all HTTP/1.1 request messages" (RFC 9110 9.3.6's example has
     * "Host: server.example.com:80"). Got: "CONNECT db:5432 HTTP/1.1\r\n
     * Proxy-Authorization: x\r\n\r\n", which dataplane/http1's own parser (a peer sidecar)
     * rejects with 400 "missing Host in an HTTP/1.1 request". Expected: "host: db:5432". */
    assert_true(rc > 0);
    assert_field(&p, "host", "db:5432");
#endif
    assert_true(strstr(t.text, "Proxy-Authorization: x\r\n") != NULL);
    assert_null(strstr(t.text, "pgrade"));
    cx_free(c);
}

static void test_write_no_authority(void **state)
{
    (void)state;
    /* An HTTP/1.0 client's request without Host has an empty authority. */
    cx_t *c = cx_default();
    rm_request_head_t h = get_head("", "/health");
    h.version = 10;
    assert_int_equal(rm_h1_client_write_head(&c->st, &h, NULL), 0);
    taken_t t;
    parsed_t p;
    take(c, &t);
    assert_memory_equal(t.text, "GET /health HTTP/1.1\r\n", 22);
    int rc = parse_req_rc(&t, &p);
    (void)rc;
#if 1
    /* Was a bug, found by this test: with an empty authority no Host is written at all ("GET
     * /health HTTP/1.1\r\n\r\n"). RFC 9112 3.2: a client MUST send Host in HTTP/1.1, empty when the
     * target has no authority; dataplane/http1's parser answers 400 "missing Host". Expected:
     * "host: ". */
    assert_true(rc > 0);
    assert_field(&p, "host", "");
#endif
    cx_free(c);
}

/* ---- responses ---- */

/* What a client drove out of the response bytes. */
typedef struct result {
    int interim[4];
    size_t ninterim;
    bool have_final;
    int status;
    unsigned flags;
    uint64_t content_length;
    char reason[64];
    char body[512];
    size_t body_len;
    rm_body_event_t last; /* the last body event other than DATA */
    bool in_body;
} result_t;

/* Drives the client as far as the bytes in `in` allow: heads (interim ones included), then body
 * spans of at most `room` bytes. Returns a read_head error, else 0. */
static int step(cx_t *c, size_t room, result_t *r)
{
    for (int guard = 0; guard < 100000; guard++) {
        if (!r->in_body) {
            rm_response_head_t h;
            int rc = rm_h1_client_read_head(&c->st, &h);
            if (rc <= 0)
                return rc;
            assert_int_equal(rc, 1);
            if (h.flags & RM_MSG_F_INTERIM) {
                assert_true(r->ninterim < 4);
                r->interim[r->ninterim++] = h.status;
                rm_h1_client_head_done(&c->st);
                continue;
            }
            r->have_final = true;
            r->status = h.status;
            r->flags = h.flags;
            r->content_length = h.content_length;
            assert_true(h.reason.len < sizeof(r->reason));
            memcpy(r->reason, h.reason.ptr, h.reason.len);
            r->reason[h.reason.len] = '\0';
            rm_h1_client_head_done(&c->st);
            r->in_body = true;
            continue;
        }
        rm_span_t d = {0};
        rm_body_event_t ev = rm_h1_client_body_next(&c->st, room, &d);
        if (ev != RM_BODY_DATA) {
            r->last = ev;
            return 0;
        }
        assert_true(d.len > 0 && d.len <= room);
        assert_true(r->body_len + d.len <= sizeof(r->body));
        memcpy(r->body + r->body_len, d.ptr, d.len);
        r->body_len += d.len;
        rm_h1_client_body_consume(&c->st);
    }
    fail_msg("client made no progress");
    return -1;
}

/* A client that sent `method` (no body, its bytes gone) and got raw[0..len) split at k. */
static void exchange(cx_t *c, rm_method_t method, const char *raw, size_t len, size_t k,
                     size_t room, result_t *r)
{
    static const char *const names[] = {
        [RM_METHOD_GET] = "GET", [RM_METHOD_HEAD] = "HEAD", [RM_METHOD_CONNECT] = "CONNECT"};
    rm_request_head_t h = get_head("svc:1", method == RM_METHOD_CONNECT ? "" : "/");
    h.method = method;
    h.method_name = (rm_span_t){names[method], strlen(names[method])};
    assert_int_equal(rm_h1_client_write_head(&c->st, &h, NULL), 0);
    rm_buf_consume(&c->out, c->out.len);
    memset(r, 0, sizeof(*r));
    r->last = RM_BODY_WAIT;
    feedn(c, raw, k);
    assert_int_equal(step(c, room, r), 0);
    feedn(c, raw + k, len - k);
    assert_int_equal(step(c, room, r), 0);
}

static void exchange_whole(cx_t *c, rm_method_t method, const char *raw, result_t *r)
{
    exchange(c, method, raw, strlen(raw), strlen(raw), 4096, r);
}

static void test_read_interim_then_final(void **state)
{
    (void)state;
    static const char raw[] =
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n"
        "Link: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    size_t len = sizeof(raw) - 1;
    for (size_t k = 0; k <= len; k++) {
        cx_t *c = cx_default();
        result_t r;
        exchange(c, RM_METHOD_GET, raw, len, k, 1, &r);
        assert_int_equal(r.ninterim, 2);
        assert_int_equal(r.interim[0], 100);
        assert_int_equal(r.interim[1], 103);
        assert_true(r.have_final);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.reason, "OK");
        assert_int_equal(r.flags, RM_MSG_F_BODY | RM_MSG_F_LENGTH);
        assert_int_equal(r.content_length, 2);
        assert_int_equal(r.body_len, 2);
        assert_memory_equal(r.body, "ok", 2);
        assert_int_equal(r.last, RM_BODY_END);
        assert_true(rm_h1_client_reusable(&c->st));
        cx_free(c);
    }

    /* The interim head itself: flags and fields. */
    cx_t *c = cx_default();
    rm_request_head_t h = get_head("svc", "/");
    assert_int_equal(rm_h1_client_write_head(&c->st, &h, NULL), 0);
    feed(c, "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n");
    rm_response_head_t resp;
    assert_int_equal(rm_h1_client_read_head(&c->st, &resp), 1);
    assert_int_equal(resp.status, 103);
    assert_int_equal(resp.flags, RM_MSG_F_INTERIM);
    assert_int_equal(resp.nfields, 1);
    assert_span(resp.fields[0].value, "</s.css>");
    rm_h1_client_head_done(&c->st);
    assert_int_equal(c->in.len, 0);
    assert_int_equal(rm_h1_client_read_head(&c->st, &resp), 0);
    cx_free(c);
}

static void test_read_head_response(void **state)
{
    (void)state;
    cx_t *c = cx_default();
    result_t r;
    exchange_whole(c, RM_METHOD_HEAD, "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.flags & (RM_MSG_F_BODY | RM_MSG_F_CLOSE), 0);
    assert_int_equal(r.body_len, 0);
    assert_int_equal(r.last, RM_BODY_END);
    assert_false(rm_h1_client_ends_at_close(&c->st));
    assert_true(rm_h1_client_reusable(&c->st));
    cx_free(c);

    /* Same through rm_h1_client_expect (the method set after the head was written). */
    c = cx_default();
    rm_request_head_t h = get_head("svc", "/");
    assert_int_equal(rm_h1_client_write_head(&c->st, &h, NULL), 0);
    rm_h1_client_expect(&c->st, RM_METHOD_HEAD);
    feed(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    rm_response_head_t resp;
    assert_int_equal(rm_h1_client_read_head(&c->st, &resp), 1);
    assert_int_equal(resp.flags & RM_MSG_F_BODY, 0);
    cx_free(c);
}

static void test_read_no_content(void **state)
{
    (void)state;
    static const char *const raws[] = {
        "HTTP/1.1 204 No Content\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"x\"\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(raws) / sizeof(raws[0]); i++) {
        cx_t *c = cx_default();
        result_t r;
        exchange_whole(c, RM_METHOD_GET, raws[i], &r);
        assert_int_equal(r.flags & (RM_MSG_F_BODY | RM_MSG_F_LENGTH | RM_MSG_F_CLOSE), 0);
        assert_int_equal(r.last, RM_BODY_END);
        assert_true(rm_h1_client_reusable(&c->st));
        cx_free(c);
    }
}

static void test_read_until_close(void **state)
{
    (void)state;
    cx_t *c = cx_default();
    result_t r;
    exchange_whole(c, RM_METHOD_GET, "HTTP/1.1 200 OK\r\nContent-Type: x/y\r\n\r\nabc", &r);
    assert_int_equal(r.flags, RM_MSG_F_BODY | RM_MSG_F_CLOSE);
    assert_int_equal(r.body_len, 3);
    assert_int_equal(r.last, RM_BODY_WAIT);
    assert_true(rm_h1_client_ends_at_close(&c->st));
    assert_false(rm_h1_client_reusable(&c->st));
    /* Whatever comes is body, never the end. */
    feed(c, "0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n");
    assert_int_equal(step(c, 4096, &r), 0);
    assert_int_equal(r.body_len, 3 + 24);
    assert_int_equal(r.last, RM_BODY_WAIT);
    assert_false(rm_h1_client_reusable(&c->st));
    cx_free(c);
}

static void test_read_chunked_every_split(void **state)
{
    (void)state;
    static const char raw[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n"
                              "5;e=1\r\nhello\r\n1\r\n \r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n"
                              "0\r\nX-Sum: 1\r\n\r\n";
    static const char data[] = "hello abcdefghijklmnopqrstuvwxyz";
    static const size_t rooms[] = {1, 3, 7, 4096};
    size_t len = sizeof(raw) - 1;
    for (size_t ri = 0; ri < sizeof(rooms) / sizeof(rooms[0]); ri++) {
        for (size_t k = 0; k <= len; k++) {
            cx_t *c = cx_default();
            result_t r;
            exchange(c, RM_METHOD_GET, raw, len, k, rooms[ri], &r);
            if (r.last != RM_BODY_END)
                fail_msg("room %zu split %zu: last event %d", rooms[ri], k, r.last);
            assert_int_equal(r.flags, RM_MSG_F_BODY);
            assert_int_equal(r.body_len, sizeof(data) - 1);
            assert_memory_equal(r.body, data, r.body_len);
            assert_int_equal(c->in.len, 0);
            assert_true(rm_h1_client_reusable(&c->st));
            cx_free(c);
        }
    }

    /* A byte at a time. */
    cx_t *c = cx_default();
    rm_request_head_t h = get_head("svc", "/");
    assert_int_equal(rm_h1_client_write_head(&c->st, &h, NULL), 0);
    rm_buf_consume(&c->out, c->out.len);
    result_t r;
    memset(&r, 0, sizeof(r));
    for (size_t i = 0; i < len; i++) {
        feedn(c, raw + i, 1);
        assert_int_equal(step(c, 4096, &r), 0);
        if (i + 1 < len) {
            assert_int_not_equal(r.last, RM_BODY_END);
            assert_false(rm_h1_client_reusable(&c->st));
        }
    }
    assert_int_equal(r.last, RM_BODY_END);
    assert_int_equal(r.body_len, sizeof(data) - 1);
    assert_memory_equal(r.body, data, r.body_len);
    assert_true(rm_h1_client_reusable(&c->st));
    cx_free(c);
}

static void test_read_chunked_malformed(void **state)
{
    (void)state;
    cx_t *c = cx_default();
    result_t r;
    exchange_whole(c, RM_METHOD_GET,
                   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n",
                   &r);
    assert_int_equal(r.last, RM_BODY_ERROR);
    assert_non_null(c->st.chunks.error_reason);
    assert_false(rm_h1_client_reusable(&c->st));
    cx_free(c);
}

static void test_read_length_rooms(void **state)
{
    (void)state;
    static const char raw[] = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world";
    size_t len = sizeof(raw) - 1;
    for (size_t room = 1; room <= 12; room++) {
        for (size_t k = 0; k <= len; k++) {
            cx_t *c = cx_default();
            result_t r;
            exchange(c, RM_METHOD_GET, raw, len, k, room, &r);
            assert_int_equal(r.last, RM_BODY_END);
            assert_int_equal(r.body_len, 11);
            assert_memory_equal(r.body, "hello world", 11);
            assert_true(rm_h1_client_reusable(&c->st));
            cx_free(c);
        }
    }
}

static void test_read_close_and_reuse(void **state)
{
    (void)state;
    static const struct {
        const char *raw;
        bool reusable;
        unsigned close;
    } cases[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true, 0},
        {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", false,
         RM_MSG_F_CLOSE},
        {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, close\r\n\r\nok", false,
         RM_MSG_F_CLOSE},
        {"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false, RM_MSG_F_CLOSE},
        {"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok", true, 0},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", true, 0},
        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cx_t *c = cx_default();
        result_t r;
        exchange_whole(c, RM_METHOD_GET, cases[i].raw, &r);
        assert_int_equal(r.last, RM_BODY_END);
        assert_int_equal(r.flags & RM_MSG_F_CLOSE, cases[i].close);
        if (rm_h1_client_reusable(&c->st) != cases[i].reusable)
            fail_msg("case %zu: reusable %d", i, !cases[i].reusable);
        cx_free(c);
    }
}

static void test_reusable_needs_everything(void **state)
{
    (void)state;
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    rm_response_head_t resp;
    rm_span_t d;

    /* Before the response ends: not yet. */
    cx_t *c = cx_default();
    rm_request_head_t h = get_head("svc", "/");
    assert_int_equal(rm_h1_client_write_head(&c->st, &h, NULL), 0);
    rm_buf_consume(&c->out, c->out.len);
    assert_false(rm_h1_client_reusable(&c->st));
    feedn(c, ok, sizeof(ok) - 2);
    assert_int_equal(rm_h1_client_read_head(&c->st, &resp), 1);
    rm_h1_client_head_done(&c->st);
    assert_false(rm_h1_client_reusable(&c->st));
    assert_int_equal(rm_h1_client_body_next(&c->st, 100, &d), RM_BODY_DATA);
    rm_h1_client_body_consume(&c->st);
    assert_false(rm_h1_client_reusable(&c->st));
    feed(c, "k");
    assert_int_equal(rm_h1_client_body_next(&c->st, 100, &d), RM_BODY_DATA);
    rm_h1_client_body_consume(&c->st);
    assert_true(rm_h1_client_reusable(&c->st));
    assert_int_equal(rm_h1_client_body_next(&c->st, 100, &d), RM_BODY_END);
    /* Stray bytes after the response: not reusable. */
    feed(c, "X");
    assert_false(rm_h1_client_reusable(&c->st));
    cx_free(c);

    /* The request's body not ended (an early response): not reusable. */
    c = cx_default();
    h.method = RM_METHOD_POST;
    h.method_name = (rm_span_t)S("POST");
    h.flags = RM_MSG_F_BODY;
    assert_int_equal(rm_h1_client_write_head(&c->st, &h, NULL), 0);
    rm_buf_consume(&c->out, c->out.len);
    feed(c, ok);
    assert_int_equal(rm_h1_client_read_head(&c->st, &resp), 1);
    rm_h1_client_head_done(&c->st);
    assert_int_equal(rm_h1_client_body_next(&c->st, 100, &d), RM_BODY_DATA);
    rm_h1_client_body_consume(&c->st);
    assert_int_equal(rm_h1_client_body_next(&c->st, 100, &d), RM_BODY_END);
    assert_false(rm_h1_client_reusable(&c->st));
    assert_int_equal(rm_h1_client_write_end(&c->st), 0);
    assert_false(rm_h1_client_reusable(&c->st)); /* the last chunk not sent yet */
    rm_buf_consume(&c->out, c->out.len);
    assert_true(rm_h1_client_reusable(&c->st));

    /* The next request on the same connection starts clean. */
    h = get_head("svc", "/2");
    assert_int_equal(rm_h1_client_write_head(&c->st, &h, NULL), 0);
    rm_buf_consume(&c->out, c->out.len);
    assert_false(rm_h1_client_reusable(&c->st));
    feed(c, "HTTP/1.1 204 No Content\r\n\r\n");
    assert_int_equal(rm_h1_client_read_head(&c->st, &resp), 1);
    assert_int_equal(resp.status, 204);
    rm_h1_client_head_done(&c->st);
    assert_int_equal(rm_h1_client_body_next(&c->st, 100, &d), RM_BODY_END);
    assert_true(rm_h1_client_reusable(&c->st));
    cx_free(c);
}

static void test_read_tunnels(void **state)
{
    (void)state;
    cx_t *c = cx_default();
    result_t r;
    exchange_whole(c, RM_METHOD_GET,
                   "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                   "Upgrade: websocket\r\n\r\n\x81\x02hi",
                   &r);
    assert_int_equal(r.ninterim, 0);
    assert_int_equal(r.status, 101);
    assert_true(r.flags & RM_MSG_F_UPGRADE);
    assert_int_equal(r.flags & (RM_MSG_F_INTERIM | RM_MSG_F_BODY | RM_MSG_F_LENGTH), 0);
    assert_int_equal(r.body_len, 4);
    assert_memory_equal(r.body, "\x81\x02hi", 4);
    assert_int_equal(r.last, RM_BODY_WAIT);
    assert_true(rm_h1_client_ends_at_close(&c->st));
    assert_false(rm_h1_client_reusable(&c->st));
    cx_free(c);

    /* 2xx to CONNECT, even with a Content-Length. */
    c = cx_default();
    exchange_whole(c, RM_METHOD_CONNECT,
                   "HTTP/1.1 200 Connection Established\r\nContent-Length: 5\r\n\r\nraw", &r);
    assert_int_equal(r.status, 200);
    assert_true(r.flags & RM_MSG_F_UPGRADE);
    assert_int_equal(r.flags & RM_MSG_F_BODY, 0);
    assert_int_equal(r.body_len, 3);
    assert_true(rm_h1_client_ends_at_close(&c->st));
    assert_false(rm_h1_client_reusable(&c->st));
    cx_free(c);

    /* A refused CONNECT is an ordinary response. */
    c = cx_default();
    exchange_whole(c, RM_METHOD_CONNECT, "HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno",
                   &r);
    assert_int_equal(r.flags, RM_MSG_F_BODY | RM_MSG_F_LENGTH);
    assert_int_equal(r.last, RM_BODY_END);
    assert_false(rm_h1_client_ends_at_close(&c->st));
    cx_free(c);
}

/* A tunnel from the first byte: no heads, nothing framed, the body ends at the close. */
static void test_tunnel_from_start(void **state)
{
    (void)state;
    cx_t *c = cx_default();
    rm_h1_client_tunnel(&c->st);
    assert_true(rm_h1_client_ends_at_close(&c->st));
    assert_int_equal(rm_h1_client_write_data(&c->st, "hello", 5), 0);
    assert_int_equal(rm_h1_client_write_end(&c->st), 0);
    taken_t t;
    take(c, &t);
    assert_string_equal(t.text, "hello");
    feed(c, "HTTP/1.1 200 OK\r\n\r\n"); /* bytes, not a head */
    rm_span_t d;
    assert_int_equal(rm_h1_client_body_next(&c->st, 100, &d), RM_BODY_DATA);
    assert_int_equal(d.len, 19);
    assert_memory_equal(d.ptr, "HTTP/1.1 200 OK\r\n\r\n", 19);
    rm_h1_client_body_consume(&c->st);
    assert_int_equal(rm_h1_client_body_next(&c->st, 100, &d), RM_BODY_WAIT);
    assert_false(rm_h1_client_reusable(&c->st));
    cx_free(c);
}

static void test_read_too_large(void **state)
{
    (void)state;
    char raw[512];
    rm_response_head_t resp;

    /* A head larger than the input buffer's limit: an error once the buffer is full. */
    cx_t *c = cx_new(256, RM_HTTP1_DEFAULT_MAX_HEADERS);
    rm_request_head_t h = get_head("svc", "/");
    assert_int_equal(rm_h1_client_write_head(&c->st, &h, NULL), 0);
    int n = snprintf(raw, sizeof(raw), "HTTP/1.1 200 OK\r\nX-Big: %0*d", 256 - 24, 0);
    assert_int_equal(n, 256);
    feedn(c, raw, 255);
    assert_int_equal(rm_h1_client_read_head(&c->st, &resp), 0);
    feedn(c, raw + 255, 1);
    assert_int_equal(rm_buf_room(&c->in), 0);
    int rc = rm_h1_client_read_head(&c->st, &resp);
    assert_true(rc < 0);
#if 1
    /* Was a bug, found by this test: this error leaves st->resp.error_reason NULL (the codec
     * returns RM_HTTP1_E_HEAD_TOO_LARGE itself without setting it), though h1_client.h says an
     * oversized head's error is described in st->resp.error_reason; a caller logging it
     * prints "(null)" or crashes on strlen. Expected: a reason ("response head too large"). */
    assert_non_null(c->st.resp.error_reason);
#endif
    cx_free(c);

    /* More field lines than max_headers. */
    c = cx_new(BIG, 4);
    assert_int_equal(rm_h1_client_write_head(&c->st, &h, NULL), 0);
    feed(c, "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n");
    assert_true(rm_h1_client_read_head(&c->st, &resp) < 0);
    assert_non_null(c->st.resp.error_reason);
    cx_free(c);

    /* At max_headers: fine. */
    c = cx_new(BIG, 4);
    assert_int_equal(rm_h1_client_write_head(&c->st, &h, NULL), 0);
    feed(c, "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(rm_h1_client_read_head(&c->st, &resp), 1);
    assert_int_equal(resp.nfields, 4);
    cx_free(c);
}

static void test_read_malformed(void **state)
{
    (void)state;
    static const char *const raws[] = {
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "HTTP/1.1 600 Nope\r\n\r\n",
        "HTTP/2.0 200 OK\r\n\r\n",
        "http/1.1 200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(raws) / sizeof(raws[0]); i++) {
        cx_t *c = cx_default();
        rm_request_head_t h = get_head("svc", "/");
        assert_int_equal(rm_h1_client_write_head(&c->st, &h, NULL), 0);
        feed(c, raws[i]);
        rm_response_head_t resp;
        int rc = rm_h1_client_read_head(&c->st, &resp);
        if (rc >= 0)
            fail_msg("case %zu: rc %d, want an error", i, rc);
        assert_non_null(c->st.resp.error_reason);
        cx_free(c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_get),
        cmocka_unit_test(test_write_target_fixes),
        cmocka_unit_test(test_write_length),
        cmocka_unit_test(test_write_chunked),
        cmocka_unit_test(test_write_hop_by_hop),
        cmocka_unit_test(test_write_upgrade),
        cmocka_unit_test(test_write_expect),
        cmocka_unit_test(test_write_edit),
        cmocka_unit_test(test_write_connect),
        cmocka_unit_test(test_write_no_authority),
        cmocka_unit_test(test_read_interim_then_final),
        cmocka_unit_test(test_read_head_response),
        cmocka_unit_test(test_read_no_content),
        cmocka_unit_test(test_read_until_close),
        cmocka_unit_test(test_read_chunked_every_split),
        cmocka_unit_test(test_read_chunked_malformed),
        cmocka_unit_test(test_read_length_rooms),
        cmocka_unit_test(test_read_close_and_reuse),
        cmocka_unit_test(test_reusable_needs_everything),
        cmocka_unit_test(test_read_tunnels),
        cmocka_unit_test(test_tunnel_from_start),
        cmocka_unit_test(test_read_too_large),
        cmocka_unit_test(test_read_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
