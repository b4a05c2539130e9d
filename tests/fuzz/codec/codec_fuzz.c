/* tests/fuzz/codec/codec_fuzz.c — libFuzzer driver for //dataplane/codec's HTTP/1 codec: the
 * server side (downstream bytes -> neutral request heads and body spans; neutral responses and
 * local replies -> bytes) and the client side (neutral requests -> bytes; upstream bytes ->
 * neutral response heads and body spans), driven the way the proxy drives them.
 *
 * Input: 8 control bytes, then the stream (shorter inputs are padded with zeros).
 *   c[0]  split style of run A: bits 0-1 piece sizes, 2-3 body rooms, 4-5 run B's offset
 *   c[1]  seed of run A's piece and room sizes
 *   c[2]  limits: bits 0-1 server input buffer, 2-3 max head bytes, 4-5 max fields,
 *         6-7 client input buffer
 *   c[3..6] seed of every decision (which response, its flags, close, edits, local replies)
 *   c[7]  seed of the client side's neutral requests (with c[3..6])
 * The stream is used twice:
 *  (a) SERVER: downstream bytes fed into the connection's input buffer in pieces; every parsed
 *      request is copied (as the exchange does), forwarded through a client codec (its head and
 *      body re-parsed upstream-side), its body read with rooms from the input, then answered:
 *      100-continue and 103, a response built by parsing a synthetic upstream response with a
 *      client codec (as the exchange gets it: framing, 1.0 upstreams, HEAD/204/304, 101 and
 *      CONNECT tunnels, hop-by-hop fields), data and end, or a local reply; malformed heads and
 *      bodies get their local error reply. Every response is re-parsed as its client would.
 *  (b) CLIENT: a neutral request built from the input is written (head and body re-parsed),
 *      then the stream is fed as the upstream's response bytes: heads (interim ones too) and
 *      bodies; a keep-alive response is followed by the next request on the same connection.
 * Each side runs twice with two split patterns (piece and room sizes): the transcripts (heads,
 * decoded body bytes, outcomes, every byte written) must be identical.
 *
 * Invariants (abort on violation): body spans are non-empty, within the input buffer, within
 * the room, and (Content-Length, tunnel, until-close) start at its head; decoded bytes never
 * exceed the bytes fed; a Content-Length body delivers exactly content_length bytes; nothing
 * stalls with a full buffer; every written head re-parses with dataplane/http1 as complete and
 * valid, with at most one framing field (never both), the framing the codec chose, the body
 * that was written, Host in every request, hop-by-hop fields gone, persistence as decided, and
 * no 1xx and no Transfer-Encoding towards an HTTP/1.0 client.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dataplane/buffer/buffer.h"
#include "dataplane/codec/h1_client.h"
#include "dataplane/codec/h1_server.h"
#include "dataplane/http1/http1.h"
#include "dataplane/message/message-t.h"
#include "dataplane/message/message.h"

#define CTL            8
#define NSCRATCH       128 /* a worker's field scratch, shared by both sides as in the proxy */
#define NVERIFY        256
#define OUT_LIMIT      ((size_t)4 << 20)
#define MAX_REQUESTS   32
#define MAX_EXCHANGES  16
#define BIG_ROOM       ((size_t)1 << 20)
#define UPSTREAM_LIMIT ((size_t)64 * 1024)

#define CHECKF(cond, ...)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n  ", __FILE__, __LINE__, #cond);             \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)
#define CHECK(cond) CHECKF(cond, "%s", "")

#define LIT(s)                                                                                     \
    {                                                                                              \
        (s), sizeof(s) - 1                                                                         \
    }

static rm_http1_header_t scratch[NSCRATCH];
static rm_http1_header_t vh[NVERIFY];
static rm_http1_limits_t relaxed; /* re-parsing what we wrote: the codec's output, not limits */

/* ---- small tools ------------------------------------------------------------------------- */

typedef struct bytes {
    char *p;
    size_t len, cap;
} bytes_t;

static void bytes_put(bytes_t *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    if (b->len + n > b->cap) {
        size_t c = b->cap ? b->cap : 1024;
        while (c < b->len + n)
            c *= 2;
        b->p = realloc(b->p, c);
        CHECK(b->p != NULL);
        b->cap = c;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void bytes_str(bytes_t *b, const char *s)
{
    bytes_put(b, s, strlen(s));
}

static bool bytes_eq(const bytes_t *b, const char *p, size_t n)
{
    return b->len == n && (n == 0 || memcmp(b->p, p, n) == 0);
}

/* Transcript of one run: tagged values and raw decoded bytes (untagged, so how a body was cut
 * into spans does not show). */
static void tr_val(bytes_t *t, char tag, uint64_t v)
{
    char b[9];
    b[0] = tag;
    memcpy(b + 1, &v, 8);
    bytes_put(t, b, 9);
}

typedef struct rng {
    uint64_t s;
} rng_t;

static uint64_t rnext(rng_t *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint32_t rbelow(rng_t *r, uint32_t n)
{
    return n == 0 ? 0 : (uint32_t)(rnext(r) % n);
}

/* True one time in n. */
static bool one_in(rng_t *r, uint32_t n)
{
    return rbelow(r, n) == 0;
}

static void rand_bytes(rng_t *r, bytes_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = (char)rnext(r);
        bytes_put(b, &c, 1);
    }
}

/* rm_buf_head of a buffer that may never have been allocated (data NULL: NULL + 0 is UB). */
static const char *bhead(const rm_buf_t *b)
{
    return b->data != NULL ? rm_buf_head(b) : "";
}

static bool span_in(rm_span_t s, const char *base, size_t len)
{
    return s.len == 0 || (s.ptr >= base && s.ptr + s.len <= base + len);
}

static bool span_eq(rm_span_t a, rm_span_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static size_t count_fields(const rm_field_t *f, size_t n, const char *name)
{
    size_t c = 0, l = strlen(name);
    for (size_t i = 0; i < n; i++)
        if (f[i].name.len == l && strncasecmp(f[i].name.ptr, name, l) == 0)
            c++;
    return c;
}

static bool names_option(const rm_field_t *f, size_t n, const char *option)
{
    return rm_http1_connection_lists(f, n, option, strlen(option)) != 0;
}

/* Decimal value of the only field `name` (it must be there once, digits only). */
static uint64_t field_u64(const rm_field_t *f, size_t n, const char *name)
{
    ssize_t i = rm_http1_header_find(f, n, name, strlen(name));
    CHECK(i >= 0);
    uint64_t v = 0;
    CHECK(f[i].value.len > 0 && f[i].value.len <= 19);
    for (size_t k = 0; k < f[i].value.len; k++) {
        char c = f[i].value.ptr[k];
        CHECK(c >= '0' && c <= '9');
        v = v * 10 + (uint64_t)(c - '0');
    }
    return v;
}

/* Decodes a chunked body from p[0..n). Returns the decoder's last result; *used is the bytes
 * consumed; data goes to out. */
static int dechunk(const char *p, size_t n, bytes_t *out, size_t *used)
{
    rm_http1_chunked_t ch;
    rm_http1_chunked_init(&ch);
    size_t off = 0;
    int rc = RM_HTTP1_INCOMPLETE;
    while (off < n) {
        size_t c = 0;
        rm_span_t span = {0};
        rc = rm_http1_chunked_decode(&ch, p + off, n - off, &c, &span);
        CHECK(c <= n - off);
        off += c;
        if (rc == RM_HTTP1_CHUNKED_DATA) {
            bytes_put(out, span.ptr, span.len);
            continue;
        }
        break;
    }
    *used = off;
    return rc;
}

/* ---- the split patterns ------------------------------------------------------------------- */

typedef struct params {
    size_t srv_in_limit, max_head_bytes, max_headers;
    size_t cli_in_limit, cli_max_headers;
    uint64_t dseed, cseed;
    int piece[2], room[2];
    uint64_t sseed[2];
} params_t;

typedef struct splitter {
    int piece, room;
    rng_t r;
} splitter_t;

static size_t next_piece(splitter_t *s)
{
    switch (s->piece) {
    case 0:
        return SIZE_MAX; /* everything there is */
    case 1:
        return 1;
    case 2:
        return 1 + rbelow(&s->r, 16);
    default:
        return 1 + rbelow(&s->r, one_in(&s->r, 4) ? 2048 : 200);
    }
}

static size_t next_room(splitter_t *s)
{
    switch (s->room) {
    case 0:
        return BIG_ROOM;
    case 1:
        return 1;
    case 2:
        return 1 + rbelow(&s->r, 16);
    default:
        return 1 + rbelow(&s->r, one_in(&s->r, 4) ? 4096 : 64);
    }
}

/* Feeds the stream into a connection's input buffer, a piece at a time. */
typedef struct feeder {
    const uint8_t *p;
    size_t len, at;
    rm_buf_t *in;
    splitter_t *sp;
    size_t fed;
} feeder_t;

/* One more piece; false at the end of the stream (the peer closed). Never called with a full
 * buffer: that would be a stall, and every caller checks it first. */
static bool feed(feeder_t *f)
{
    CHECKF(rm_buf_room(f->in) > 0, "needs more input with a full buffer (%zu bytes): a stall",
           f->in->len);
    if (f->at >= f->len)
        return false;
    size_t n = next_piece(f->sp);
    size_t left = f->len - f->at;
    size_t room = rm_buf_room(f->in);
    n = n < left ? n : left;
    n = n < room ? n : room;
    CHECK(rm_buf_append(f->in, f->p + f->at, n) == 0);
    f->at += n;
    f->fed += n;
    return true;
}

/* ---- request heads the codec writes ------------------------------------------------------- */

/* Checks the request head at out[0..len) (all of it) that rm_h1_client_write_head wrote for h
 * with `edit`; fills r. */
static void check_written_request(const char *p, size_t len, const rm_request_head_t *h,
                                  const rm_field_edit_t *edit, rm_http1_request_t *r)
{
    rm_http1_request_init(r, vh, NVERIFY);
    int rc = rm_http1_parse_request(p, len, r, &relaxed);
    CHECKF(rc > 0 && (size_t)rc == len,
           "written request head does not re-parse whole (%d/%zu, %s):\n%.*s", rc, len,
           r->error_reason ? r->error_reason : "-", (int)len, p);
    const rm_field_t *f = r->headers;
    size_t n = r->num_headers;
    CHECK(r->minor_version == 1);
    CHECKF((r->flags & RM_HTTP1_F_HAS_HOST) && count_fields(f, n, "host") == 1,
           "request without exactly one Host:\n%.*s", (int)len, p);
    CHECK(span_eq(r->host, h->authority));
    CHECK(span_eq(r->method_name, h->method_name));
    CHECK((int)r->method == (int)h->method);
    bool connect = h->method == RM_METHOD_CONNECT;
    if (connect) {
        CHECK(span_eq(r->target, h->authority));
    } else if (h->path.len > 0 && (h->path.ptr[0] == '/' || h->path.ptr[0] == '*')) {
        CHECK(span_eq(r->target, h->path));
    } else {
        CHECK(r->target.len == h->path.len + 1 && r->target.ptr[0] == '/');
        CHECK(h->path.len == 0 || memcmp(r->target.ptr + 1, h->path.ptr, h->path.len) == 0);
    }
    size_t ncl = count_fields(f, n, "content-length"),
           nte = count_fields(f, n, "transfer-encoding");
    CHECKF(ncl + nte <= 1, "request with %zu Content-Length and %zu Transfer-Encoding:\n%.*s", ncl,
           nte, (int)len, p);
    if (connect)
        CHECK(r->body == RM_HTTP1_BODY_TUNNEL);
    else if (h->flags & RM_MSG_F_LENGTH)
        CHECK(r->body == RM_HTTP1_BODY_CONTENT_LENGTH && r->content_length == h->content_length);
    else if (h->flags & RM_MSG_F_BODY)
        CHECK(r->body == RM_HTTP1_BODY_CHUNKED);
    else
        CHECK(r->body == RM_HTTP1_BODY_NONE && ncl + nte == 0);
    /* Hop-by-hop fields stay on this hop; Upgrade comes back only for a tunnel asked for. */
    CHECK(count_fields(f, n, "keep-alive") == 0 && count_fields(f, n, "te") == 0 &&
          count_fields(f, n, "trailer") == 0 && count_fields(f, n, "proxy-connection") == 0);
    if ((h->flags & RM_MSG_F_CONN_NAMED) && names_option(h->fields, h->nfields, "x-hop"))
        CHECK(count_fields(f, n, "x-hop") == 0);
    bool up = (h->flags & RM_MSG_F_UPGRADE) && !connect &&
              rm_http1_header_find(h->fields, h->nfields, "upgrade", 7) >= 0;
    if (up)
        CHECK((r->flags & RM_HTTP1_F_UPGRADE) && (r->flags & RM_HTTP1_F_CONN_UPGRADE));
    else
        CHECK(count_fields(f, n, "upgrade") == 0 && count_fields(f, n, "connection") == 0);
    if (!(h->flags & RM_MSG_F_EXPECT_100))
        CHECK(count_fields(f, n, "expect") == 0);
    if (edit != NULL)
        for (size_t i = 0; i < edit->nadd; i++)
            CHECK(rm_http1_header_find(f, n, edit->add[i].name.ptr, edit->add[i].name.len) >= 0);
}

/* Checks the body bytes after a written request head: `body` is what was written; complete:
 * its end was written too. */
static void check_request_body(const char *p, size_t len, const rm_http1_request_t *r,
                               const bytes_t *body, bool complete)
{
    static bytes_t dec;
    dec.len = 0;
    switch (r->body) {
    case RM_HTTP1_BODY_CONTENT_LENGTH:
        CHECK(len <= r->content_length);
        CHECK(!complete || len == r->content_length);
        CHECK(bytes_eq(body, p, len));
        break;
    case RM_HTTP1_BODY_CHUNKED: {
        size_t used = 0;
        int rc = dechunk(p, len, &dec, &used);
        CHECKF(complete ? (rc == RM_HTTP1_CHUNKED_DONE && used == len) : rc == RM_HTTP1_INCOMPLETE,
               "request body re-encoding: rc %d used %zu of %zu", rc, used, len);
        CHECK(bytes_eq(body, dec.p, dec.len));
        break;
    }
    default:
        CHECK(len == 0 && body->len == 0);
    }
}

/* ---- response heads the codec reads ------------------------------------------------------- */

/* After rm_h1_client_read_head returned 1: the neutral head against the parsed one. */
static void check_client_head(const rm_h1_client_t *c, const rm_response_head_t *h, int method)
{
    const char *base = bhead(c->in);
    size_t hl = (size_t)c->head_len;
    CHECK(c->head_len > 0 && hl <= c->in->len);
    CHECK(h->status >= 100 && h->status <= 599);
    CHECK(span_in(h->reason, base, hl));
    for (size_t i = 0; i < h->nfields; i++) {
        CHECK(h->fields[i].name.len > 0 && span_in(h->fields[i].name, base, hl));
        CHECK(span_in(h->fields[i].value, base, hl));
    }
    bool interim = h->status < 200 && h->status != 101;
    bool tunnel =
        h->status == 101 || (method == RM_METHOD_CONNECT && h->status < 300 && h->status >= 200);
    CHECK(!!(h->flags & RM_MSG_F_INTERIM) == interim);
    CHECK(!!(h->flags & RM_MSG_F_UPGRADE) == tunnel);
    if (h->flags & RM_MSG_F_BODY)
        CHECK(!tunnel && !interim && method != RM_METHOD_HEAD && h->status != 204 &&
              h->status != 304);
    if (h->flags & RM_MSG_F_LENGTH)
        CHECK(c->resp.body == RM_HTTP1_BODY_CONTENT_LENGTH &&
              h->content_length == c->resp.content_length);
    else if (h->flags & RM_MSG_F_BODY)
        CHECK(c->resp.body == RM_HTTP1_BODY_CHUNKED || c->resp.body == RM_HTTP1_BODY_UNTIL_CLOSE);
    if (c->resp.body == RM_HTTP1_BODY_UNTIL_CLOSE)
        CHECK(h->flags & RM_MSG_F_CLOSE);
}

/* ---- synthetic upstream responses (the neutral heads the server side writes) --------------- */

typedef struct upstream {
    rm_buf_t in, out;
    rm_h1_client_t c;
    bytes_t text;
} upstream_t;

static const char *const resp_fields[] = {
    "Server: up/1",
    "Content-Type: text/plain",
    "Date: Mon, 01 Jan 2024 00:00:00 GMT",
    "Connection: close",
    "Connection: keep-alive",
    "Connection: x-hop",
    "x-hop: 1",
    "Keep-Alive: timeout=5",
    "Proxy-Connection: keep-alive",
    "Trailer: x-t",
    "TE: trailers",
    "Set-Cookie: a=b; Path=/",
    "x-empty:",
    "x-obs: \x80\xff",
    "Link: </s.css>; rel=preload",
    "Upgrade: h2c",
};

static const char *const reasons[] = {"OK", "", "Fine Thanks", "\x80\xfe"};

enum { UP_FINAL, UP_CONTINUE, UP_EARLY_HINTS };

/* Builds an upstream response head from d and parses it with a client codec that sent `method`
 * (shared scratch), as the exchange gets it. *h borrows from u until the next call. */
static void upstream_head(upstream_t *u, rng_t *d, rm_method_t method, bool upgrade_asked, int kind,
                          rm_response_head_t *h)
{
    bytes_t *t = &u->text;
    t->len = 0;
    int minor = kind == UP_FINAL && one_in(d, 4) ? 0 : 1;
    int status;
    if (kind == UP_CONTINUE) {
        status = 100;
    } else if (kind == UP_EARLY_HINTS) {
        status = 103;
    } else if (method == RM_METHOD_CONNECT) {
        static const int no[] = {403, 407, 502};
        status = one_in(d, 4) ? no[rbelow(d, 3)] : 200;
    } else if (upgrade_asked && !one_in(d, 3)) {
        status = 101;
    } else {
        static const int st[] = {200, 200, 200, 201, 204, 206, 301, 304, 400, 404, 500, 503};
        status = st[rbelow(d, sizeof(st) / sizeof(st[0]))];
    }
    if (status < 200)
        minor = 1;
    char line[64];
    const char *reason = reasons[rbelow(d, 4)];
    snprintf(line, sizeof(line), "HTTP/1.%d %d%s%s\r\n", minor, status,
             reason[0] == '\0' && one_in(d, 2) ? "" : " ", reason);
    bytes_str(t, line);
    unsigned nf = rbelow(d, 5);
    for (unsigned i = 0; i < nf; i++) {
        bytes_str(t, resp_fields[rbelow(d, sizeof(resp_fields) / sizeof(resp_fields[0]))]);
        bytes_str(t, "\r\n");
    }
    if (status == 101) {
        if (!one_in(d, 4))
            bytes_str(t, "Upgrade: websocket\r\n");
        bytes_str(t, "Connection: upgrade\r\n");
    } else if (status >= 200 && !(method == RM_METHOD_CONNECT && status < 300)) {
        /* Framing: Content-Length n, chunked (HTTP/1.1), none (until close), or length 0. A
         * HEAD/204/304 answer may carry either field too, as real servers send them. */
        switch (rbelow(d, 4)) {
        case 0:
            snprintf(line, sizeof(line), "Content-Length: %u\r\n", 1 + rbelow(d, 300));
            bytes_str(t, line);
            break;
        case 1:
            bytes_str(t, minor == 1 ? "Transfer-Encoding: chunked\r\n" : "Content-Length: 7\r\n");
            break;
        case 2:
            break;
        default:
            bytes_str(t, "Content-Length: 0\r\n");
        }
    }
    bytes_str(t, "\r\n");

    rm_buf_consume(&u->in, u->in.len);
    rm_h1_client_init(&u->c, &u->in, &u->out, scratch, NSCRATCH, RM_HTTP1_DEFAULT_MAX_HEADERS);
    rm_h1_client_expect(&u->c, method);
    CHECK(rm_buf_append(&u->in, t->p, t->len) == 0);
    int rc = rm_h1_client_read_head(&u->c, h);
    CHECKF(rc == 1, "fuzzer bug: synthetic upstream response refused (%d %s):\n%.*s", rc,
           u->c.resp.error_reason ? u->c.resp.error_reason : "-", (int)t->len, t->p);
    check_client_head(&u->c, h, (int)method);
}

/* ---- the server side ---------------------------------------------------------------------- */

typedef struct req_info {
    rm_method_t method;
    uint8_t version;
    bool keepalive;
} req_info_t;

/* Checks the response the server codec wrote into out (all of out) for h, and the body bytes
 * `body` written after it; close_wanted as passed to write_head. */
static void check_response(const rm_buf_t *out, const req_info_t *q, const rm_response_head_t *h,
                           const rm_h1_server_t *st, bool close_wanted, const bytes_t *body,
                           bool upstream_named_hop)
{
    const char *p = bhead(out);
    size_t len = out->len;
    bool interim = (h->flags & RM_MSG_F_INTERIM) != 0;
    if (interim && q->version < 11) {
        CHECKF(len == 0, "1xx written to an HTTP/1.0 client:\n%.*s", (int)len, p);
        return;
    }
    rm_http1_response_t r;
    rm_http1_response_init(&r, vh, NVERIFY);
    int rc = rm_http1_parse_response(p, len, &r, &relaxed, (int)q->method);
    CHECKF(rc > 0, "written response head does not re-parse (%d %s):\n%.*s", rc,
           r.error_reason ? r.error_reason : "-", (int)len, p);
    const rm_field_t *f = r.headers;
    size_t n = r.num_headers;
    CHECK(r.status == h->status);
    size_t ncl = count_fields(f, n, "content-length"),
           nte = count_fields(f, n, "transfer-encoding");
    CHECKF(ncl + nte <= 1, "response with %zu Content-Length and %zu Transfer-Encoding:\n%.*s", ncl,
           nte, (int)rc, p);
    if (q->version < 11) {
        CHECKF(r.status >= 200, "%d written to an HTTP/1.0 client:\n%.*s", r.status, rc, p);
        CHECKF(nte == 0 && st->out_framing != RM_H1_OUT_CHUNKED,
               "Transfer-Encoding written to an HTTP/1.0 client (%s request):\n%.*s",
               q->method == RM_METHOD_HEAD ? "HEAD" : "non-HEAD", rc, p);
    }
    CHECK(count_fields(f, n, "keep-alive") == 0 && count_fields(f, n, "proxy-connection") == 0 &&
          count_fields(f, n, "trailer") == 0 && count_fields(f, n, "te") == 0);
    CHECK(count_fields(f, n, "connection") <= 1);
    if (upstream_named_hop)
        CHECK(count_fields(f, n, "x-hop") == 0);
    if (h->status != 101)
        CHECK(count_fields(f, n, "upgrade") == 0);
    const char *b = p + rc;
    size_t rest = len - (size_t)rc;
    if (interim) {
        CHECK(rest == 0 && r.body == RM_HTTP1_BODY_NONE);
        return;
    }
    bool bodiless = q->method == RM_METHOD_HEAD || h->status == 204 || h->status == 304;
    switch (st->out_framing) {
    case RM_H1_OUT_LENGTH:
        CHECK(r.body == RM_HTTP1_BODY_CONTENT_LENGTH && r.content_length == h->content_length);
        CHECK(bytes_eq(body, b, rest));
        break;
    case RM_H1_OUT_CHUNKED: {
        static bytes_t dec;
        dec.len = 0;
        size_t used = 0;
        CHECK(r.body == RM_HTTP1_BODY_CHUNKED);
        int drc = dechunk(b, rest, &dec, &used);
        CHECKF(drc == RM_HTTP1_CHUNKED_DONE && used == rest, "chunked response body: %d %zu/%zu",
               drc, used, rest);
        CHECK(bytes_eq(body, dec.p, dec.len));
        break;
    }
    case RM_H1_OUT_CLOSE:
        CHECK(r.body == RM_HTTP1_BODY_UNTIL_CLOSE && st->close);
        CHECK(bytes_eq(body, b, rest));
        break;
    case RM_H1_OUT_NONE:
        CHECK(rest == 0);
        if (bodiless)
            CHECK(r.body == RM_HTTP1_BODY_NONE);
        else
            CHECKF(r.body == RM_HTTP1_BODY_CONTENT_LENGTH && r.content_length == 0,
                   "an empty response the client must wait for (body %d):\n%.*s", (int)r.body, rc,
                   p);
        break;
    case RM_H1_OUT_TUNNEL:
        CHECK(r.body == RM_HTTP1_BODY_TUNNEL && rest == 0 && (h->flags & RM_MSG_F_UPGRADE));
        break;
    }
    if (h->status == 101) {
        CHECK((r.flags & RM_HTTP1_F_CONN_UPGRADE) && st->close);
    } else {
        bool want_close = close_wanted || !q->keepalive || st->out_framing == RM_H1_OUT_CLOSE;
        CHECK(st->close == want_close);
        CHECKF(!!(r.flags & RM_HTTP1_F_CONN_CLOSE) == want_close, "close %d:\n%.*s", want_close, rc,
               p);
        if (!want_close && st->out_framing != RM_H1_OUT_TUNNEL) {
            CHECK(r.flags & RM_HTTP1_F_KEEP_ALIVE);
            if (q->version < 11)
                CHECK(r.flags & RM_HTTP1_F_CONN_KEEP_ALIVE);
        }
    }
}

/* Checks a local reply: the status, Content-Length and exactly the body (none for HEAD). */
static void check_reply(const rm_buf_t *out, rm_method_t method, int version, int status,
                        const char *body, size_t blen, bool want_close)
{
    const char *p = bhead(out);
    size_t len = out->len;
    rm_http1_response_t r;
    rm_http1_response_init(&r, vh, NVERIFY);
    int rc = rm_http1_parse_response(p, len, &r, &relaxed, (int)method);
    CHECKF(rc > 0, "local reply does not re-parse (%d %s):\n%.*s", rc,
           r.error_reason ? r.error_reason : "-", (int)len, p);
    CHECK(r.status == status);
    CHECK(count_fields(r.headers, r.num_headers, "content-length") == 1 &&
          count_fields(r.headers, r.num_headers, "transfer-encoding") == 0);
    CHECK(field_u64(r.headers, r.num_headers, "content-length") == blen);
    if (method == RM_METHOD_HEAD)
        CHECK((size_t)rc == len);
    else
        CHECKF((size_t)rc + blen == len && memcmp(p + rc, body, blen) == 0,
               "local reply to a non-HEAD (or refused) request: Content-Length %zu, %zu body "
               "bytes:\n%.*s",
               blen, len - (size_t)rc, (int)len, p);
    CHECK(!!(r.flags & RM_HTTP1_F_CONN_CLOSE) == want_close);
    if (!want_close) {
        CHECK(r.flags & RM_HTTP1_F_KEEP_ALIVE);
        if (version < 11)
            CHECK(r.flags & RM_HTTP1_F_CONN_KEEP_ALIVE);
    }
}

typedef struct server_run {
    const params_t *pp;
    splitter_t sp;
    rm_buf_t in, out, store;
    rm_h1_server_t st;
    upstream_t up;
    feeder_t fd;
    bytes_t *tr;
    size_t head_bytes, decoded;
    bool primary;
    /* The request forwarded through a client codec (primary run only). */
    rm_buf_t fin, fout;
    rm_h1_client_t fwd;
    rm_http1_request_t fwd_req;
    size_t fwd_head_len;
    bytes_t body;
} server_run_t;

enum { BODY_END, BODY_ERROR, BODY_EOF };

/* Reads the request body (or the tunnel's bytes) with rooms from the split pattern. */
static int server_body(server_run_t *x, rm_http1_body_t framing, uint64_t content_length,
                       bool tunnel)
{
    for (;;) {
        size_t room = next_room(&x->sp);
        rm_span_t data = {0};
        rm_body_event_t ev = rm_h1_server_body_next(&x->st, room, &data);
        switch (ev) {
        case RM_BODY_DATA: {
            const char *base = bhead(&x->in);
            CHECKF(data.len > 0 && data.len <= room, "span of %zu bytes, room %zu", data.len, room);
            CHECKF(data.ptr >= base && data.ptr + data.len <= base + x->in.len,
                   "span outside the input buffer");
            if (tunnel || framing == RM_HTTP1_BODY_CONTENT_LENGTH)
                CHECK(data.ptr == base);
            x->decoded += data.len;
            CHECKF(x->decoded + x->head_bytes <= x->fd.fed, "decoded %zu + heads %zu > fed %zu",
                   x->decoded, x->head_bytes, x->fd.fed);
            if (!tunnel && framing == RM_HTTP1_BODY_CONTENT_LENGTH)
                CHECK(x->body.len + data.len <= content_length);
            if (!tunnel && x->primary)
                CHECK(rm_h1_client_write_data(&x->fwd, data.ptr, data.len) == 0);
            bytes_put(&x->body, data.ptr, data.len);
            bytes_put(x->tr, data.ptr, data.len);
            rm_h1_server_body_consume(&x->st);
            break;
        }
        case RM_BODY_WAIT:
            if (!feed(&x->fd))
                return BODY_EOF;
            break;
        case RM_BODY_END:
            CHECK(!tunnel && rm_h1_server_body_done(&x->st));
            if (framing == RM_HTTP1_BODY_CONTENT_LENGTH)
                CHECKF(x->body.len == content_length, "Content-Length %llu, %zu bytes delivered",
                       (unsigned long long)content_length, x->body.len);
            else if (framing != RM_HTTP1_BODY_CHUNKED)
                CHECK(x->body.len == 0);
            return BODY_END;
        case RM_BODY_ERROR:
            CHECK(!tunnel && framing == RM_HTTP1_BODY_CHUNKED);
            CHECK(x->st.chunks.error != 0 && x->st.chunks.error_reason != NULL);
            return BODY_ERROR;
        default:
            CHECK(0);
        }
    }
}

/* A local reply of the proxy's (after a refused head or body, or an exchange's own). */
static void server_reply(server_run_t *x, rm_method_t method, int version, int status,
                         const rm_field_t *extra, size_t nextra, const char *body, size_t blen,
                         bool close_wanted, bool keepalive)
{
    CHECK(x->out.len == 0);
    CHECK(rm_h1_server_write_reply(&x->st, status, extra, nextra, "text/plain", body, blen,
                                   close_wanted) == 0);
    bool want_close = close_wanted || !keepalive;
    CHECK(x->st.close == want_close);
    check_reply(&x->out, method, version, status, body, blen, want_close);
    bytes_put(x->tr, bhead(&x->out), x->out.len);
    rm_buf_consume(&x->out, x->out.len);
}

/* Writes a head built from a synthetic upstream response (the checks on it are the caller's).
 * Returns the write_head result. */
static int server_head(server_run_t *x, rng_t *d, const req_info_t *q, bool upgrade_asked, int kind,
                       bool close_wanted, rm_response_head_t *h, bool *named_hop)
{
    upstream_head(&x->up, d, q->method, upgrade_asked, kind, h);
    *named_hop = (h->flags & RM_MSG_F_CONN_NAMED) && names_option(h->fields, h->nfields, "x-hop");
    static const rm_span_t rm_server[] = {LIT("server")};
    static const rm_field_t add_ok[] = {{LIT("x-fuzz"), LIT("1")}, {LIT("via"), LIT("1.1 r")}};
    /* Added fields are valid by contract (message-t.h: encoders write them unchecked). */
    rm_field_edit_t edit = {.remove = rm_server, .nremove = 1, .add = add_ok, .nadd = 2};
    const rm_field_edit_t *e = one_in(d, 4) ? &edit : NULL;
    CHECK(x->out.len == 0);
    int rc = rm_h1_server_write_head(&x->st, h, e, close_wanted);
    tr_val(x->tr, 'w', (uint64_t)(int64_t)rc);
    CHECKF(rc == 0, "write_head %d", rc);
    if (e != NULL && x->out.len > 0) {
        rm_http1_response_t r;
        rm_http1_response_init(&r, vh, NVERIFY);
        CHECK(rm_http1_parse_response(bhead(&x->out), x->out.len, &r, &relaxed, (int)q->method) >
              0);
        CHECK(count_fields(r.headers, r.num_headers, "server") == 0 &&
              count_fields(r.headers, r.num_headers, "x-fuzz") == 1);
    }
    return 0;
}

static const rm_field_t reply_extra[] = {
    {LIT("x-remora-overloaded"), LIT("true")},
    {LIT("retry-after"), LIT("1")},
    {LIT("x-remora-peer-error"), LIT("connect")},
};

/* The proxy's edit of a forwarded request (exchange.c queue_head). */
static const rm_span_t fwd_removed[] = {LIT("x-forwarded-for"), LIT("x-remora-attempt"),
                                        LIT("x-forwarded-proto"), LIT("x-remora-bounce")};
static const rm_field_t fwd_added[] = {{LIT("x-forwarded-for"), LIT("10.0.0.1")},
                                       {LIT("x-request-id"), LIT("0123456789abcdef")},
                                       {LIT("x-remora-attempt"), LIT("1")}};

static void run_server(const uint8_t *s, size_t slen, const params_t *pp, int which, bytes_t *tr)
{
    static server_run_t x;
    x.pp = pp;
    x.sp = (splitter_t){pp->piece[which], pp->room[which], {pp->sseed[which]}};
    x.tr = tr;
    x.primary = which == 0;
    x.head_bytes = x.decoded = 0;
    rm_buf_init(&x.in, pp->srv_in_limit);
    rm_buf_init(&x.out, OUT_LIMIT);
    rm_buf_init(&x.store, pp->max_head_bytes + 4096);
    rm_buf_init(&x.up.in, UPSTREAM_LIMIT);
    rm_buf_init(&x.up.out, UPSTREAM_LIMIT);
    rm_buf_init(&x.fin, UPSTREAM_LIMIT);
    rm_buf_init(&x.fout, OUT_LIMIT);
    rm_h1_server_init(&x.st, &x.in, &x.out, scratch, NSCRATCH, pp->max_head_bytes, pp->max_headers);
    x.fd = (feeder_t){s, slen, 0, &x.in, &x.sp, 0};

    for (unsigned i = 0; i < MAX_REQUESTS; i++) {
        rng_t d = {pp->dseed ^ ((uint64_t)(i + 1) * 0xD1B54A32D192ED03ull)};
        rm_request_head_t head;
        int status = 0;
        const char *reason = NULL;
        int n;
        for (;;) { /* as session_process: a head is looked for once bytes are there */
            n = x.in.len > 0 ? rm_h1_server_read_head(&x.st, &head, &status, &reason) : 0;
            if (n != 0 || !feed(&x.fd))
                break;
        }
        tr_val(tr, 'H', (uint64_t)(int64_t)n);
        if (n == 0)
            break; /* the client closed between requests, or mid-head */
        if (n < 0) {
            CHECK(reason != NULL);
            CHECK(status == 400 || status == 408 || status == 414 || status == 431 ||
                  status == 501 || status == 505);
            tr_val(tr, 'S', (uint64_t)status);
            char body[256];
            int blen = snprintf(body, sizeof(body), "%s\n", reason);
            /* The method is unknown (and may be stale from the request before): the body is
             * sent whatever it was, harmless to a HEAD client since the connection closes. */
            server_reply(&x, RM_METHOD_OTHER, 11, status, NULL, 0, body, (size_t)blen, true, true);
            break;
        }

        /* An accepted head: its spans are in the head's bytes; the exchange copies it. */
        const char *base = bhead(&x.in);
        CHECK((size_t)n <= x.in.len);
        CHECK(head.method_name.len > 0 && span_in(head.method_name, base, (size_t)n));
        CHECK(span_in(head.authority, base, (size_t)n) && span_in(head.path, base, (size_t)n));
        CHECK(head.nfields <= pp->max_headers && head.nfields <= NSCRATCH);
        for (size_t k = 0; k < head.nfields; k++)
            CHECK(span_in(head.fields[k].name, base, (size_t)n) &&
                  span_in(head.fields[k].value, base, (size_t)n));
        CHECK(head.version == 10 || head.version == 11);
        if (head.version == 11)
            CHECK(head.authority.ptr != NULL);
        bool connect = head.method == RM_METHOD_CONNECT;
        if (connect)
            CHECK((head.flags & RM_MSG_F_UPGRADE) && head.authority.len > 0 && head.path.len == 0 &&
                  !(head.flags & RM_MSG_F_BODY));
        rm_http1_body_t framing = x.st.body;
        uint64_t cl = head.content_length;
        if (head.flags & RM_MSG_F_LENGTH)
            CHECK(framing == RM_HTTP1_BODY_CONTENT_LENGTH && x.st.remaining == cl);
        if (head.flags & RM_MSG_F_BODY)
            CHECK(framing == RM_HTTP1_BODY_CHUNKED ||
                  (framing == RM_HTTP1_BODY_CONTENT_LENGTH && cl > 0));
        else
            CHECK(framing == RM_HTTP1_BODY_NONE ||
                  (framing == RM_HTTP1_BODY_CONTENT_LENGTH && cl == 0));
        if (framing == RM_HTTP1_BODY_CHUNKED)
            CHECK(head.version == 11);
        req_info_t q = {head.method, head.version, !(head.flags & RM_MSG_F_CLOSE)};
        rm_request_head_t req;
        CHECK(rm_msg_request_copy(&req, &x.store, &head) == 0);
        CHECK(span_eq(req.method_name, head.method_name) && span_eq(req.path, head.path) &&
              span_eq(req.authority, head.authority) && req.nfields == head.nfields);
        rm_h1_server_head_consumed(&x.st, (size_t)n);
        x.head_bytes += (size_t)n;
        tr_val(tr, 'm', (uint64_t)req.method);
        tr_val(tr, 'v', req.version);
        tr_val(tr, 'f', req.flags);
        tr_val(tr, 'l', req.content_length);
        bytes_put(tr, req.path.ptr, req.path.len);

        /* Forwarded upstream as the exchange does: the head re-parses as a valid request. */
        if (x.primary) {
            rm_buf_consume(&x.fout, x.fout.len);
            rm_h1_client_init(&x.fwd, &x.fin, &x.fout, scratch, NSCRATCH,
                              RM_HTTP1_DEFAULT_MAX_HEADERS);
            rm_field_edit_t edit = {
                .remove = fwd_removed, .nremove = 4, .add = fwd_added, .nadd = 3};
            int rc = rm_h1_client_write_head(&x.fwd, &req, &edit);
            CHECKF(rc == 0, "forwarding an accepted request head: %d", rc);
            x.fwd_head_len = x.fout.len;
            check_written_request(bhead(&x.fout), x.fout.len, &req, &edit, &x.fwd_req);
        }

        bool upgrade_asked = (req.flags & RM_MSG_F_UPGRADE) != 0;
        rm_response_head_t h;
        bool named_hop = false;
        if ((req.flags & RM_MSG_F_EXPECT_100) && !one_in(&d, 3)) {
            if (server_head(&x, &d, &q, false, UP_CONTINUE, false, &h, &named_hop) != 0)
                break;
            check_response(&x.out, &q, &h, &x.st, false, &x.body, named_hop);
            bytes_put(tr, bhead(&x.out), x.out.len);
            rm_buf_consume(&x.out, x.out.len);
        }

        /* The body, unless the answer comes first (then the connection closes after it). */
        x.body.len = 0;
        int outcome = -1;
        if (!one_in(&d, 8)) {
            outcome = server_body(&x, framing, cl, false);
            tr_val(tr, 'B', (uint64_t)outcome);
            if (x.primary) {
                if (outcome == BODY_END && (req.flags & RM_MSG_F_BODY))
                    CHECK(rm_h1_client_write_end(&x.fwd) == 0);
                check_request_body(bhead(&x.fout) + x.fwd_head_len, x.fout.len - x.fwd_head_len,
                                   &x.fwd_req, &x.body, outcome == BODY_END);
            }
            if (outcome == BODY_EOF)
                break; /* the client went away mid-body: nothing to answer */
            if (outcome == BODY_ERROR) {
                static const char bad[] = "malformed chunked request body\n";
                server_reply(&x, q.method, q.version, 400, NULL, 0, bad, sizeof(bad) - 1, true,
                             q.keepalive);
                break;
            }
        }
        /* As the exchange decides: a request without a body is done from its head; unread
         * body bytes would be taken for the next request, so the connection closes. */
        bool body_done = rm_h1_server_body_done(&x.st);
        CHECK(body_done || outcome != BODY_END);
        bool close_wanted = !body_done || one_in(&d, 8);

        if (one_in(&d, 4)) { /* an answer of the proxy's own */
            static const int sts[] = {400, 403, 404, 408, 413, 429, 431, 500, 502, 503, 504, 200};
            size_t nsts = sizeof(sts) / sizeof(sts[0]) - (q.method == RM_METHOD_CONNECT);
            int rs = sts[rbelow(&d, (uint32_t)nsts)]; /* no 200 to CONNECT: it opens a tunnel */
            size_t nextra = rbelow(&d, 4);
            bytes_t rb = {0};
            rand_bytes(&d, &rb, rbelow(&d, 64));
            server_reply(&x, q.method, q.version, rs, reply_extra, nextra, rb.p ? rb.p : "", rb.len,
                         close_wanted, q.keepalive);
            free(rb.p);
        } else {
            if (one_in(&d, 8)) {
                if (server_head(&x, &d, &q, false, UP_EARLY_HINTS, false, &h, &named_hop) != 0)
                    break;
                check_response(&x.out, &q, &h, &x.st, false, &x.body, named_hop);
                bytes_put(tr, bhead(&x.out), x.out.len);
                rm_buf_consume(&x.out, x.out.len);
            }
            if (server_head(&x, &d, &q, upgrade_asked && body_done, UP_FINAL, close_wanted, &h,
                            &named_hop) != 0)
                break;
            /* The response body, in pieces, then its end. */
            static bytes_t rbody;
            rbody.len = 0;
            if (h.flags & RM_MSG_F_BODY) {
                size_t total =
                    (h.flags & RM_MSG_F_LENGTH) ? (size_t)h.content_length : rbelow(&d, 300);
                rand_bytes(&d, &rbody, total);
                size_t off = 0;
                while (off < total) {
                    size_t k = rbelow(&d, 4) == 0 ? 0 : 1 + rbelow(&d, 100);
                    k = k < total - off ? k : total - off;
                    size_t room = rm_h1_server_write_room(&x.st, (size_t)64 * 1024);
                    CHECK(room <= (size_t)64 * 1024);
                    CHECK(rm_h1_server_write_data(&x.st, rbody.p + off, k) == 0);
                    off += k;
                }
            }
            if (!(h.flags & RM_MSG_F_UPGRADE))
                CHECK(rm_h1_server_write_end(&x.st) == 0);
            check_response(&x.out, &q, &h, &x.st, close_wanted, &rbody, named_hop);
            bytes_put(tr, bhead(&x.out), x.out.len);
            rm_buf_consume(&x.out, x.out.len);
            if (h.flags & RM_MSG_F_UPGRADE) {
                /* A tunnel: every byte after the head is the new protocol's, as it came. */
                size_t before = x.fd.fed - x.in.len;
                x.body.len = 0;
                CHECK(server_body(&x, RM_HTTP1_BODY_TUNNEL, 0, true) == BODY_EOF);
                CHECK(!rm_h1_server_body_done(&x.st));
                CHECK(x.body.len == slen - before &&
                      memcmp(x.body.p ? x.body.p : "", s + before, x.body.len) == 0);
                tr_val(tr, 'T', x.body.len);
                break;
            }
        }
        tr_val(tr, 'C', x.st.close);
        if (x.st.close)
            break; /* pipelined bytes after a close are dropped */
        rm_h1_server_next(&x.st);
    }

    rm_buf_free(&x.in);
    rm_buf_free(&x.out);
    rm_buf_free(&x.store);
    rm_buf_free(&x.up.in);
    rm_buf_free(&x.up.out);
    rm_buf_free(&x.fin);
    rm_buf_free(&x.fout);
}

/* ---- the client side ---------------------------------------------------------------------- */

static const struct {
    rm_method_t m;
    const char *name;
} methods[] = {
    {RM_METHOD_GET, "GET"},         {RM_METHOD_HEAD, "HEAD"},     {RM_METHOD_POST, "POST"},
    {RM_METHOD_PUT, "PUT"},         {RM_METHOD_DELETE, "DELETE"}, {RM_METHOD_CONNECT, "CONNECT"},
    {RM_METHOD_OPTIONS, "OPTIONS"}, {RM_METHOD_TRACE, "TRACE"},   {RM_METHOD_PATCH, "PATCH"},
    {RM_METHOD_OTHER, "PROPFIND"},  {RM_METHOD_OTHER, "get"},     {RM_METHOD_OTHER, "M-SEARCH"},
    {RM_METHOD_GET, "GET"},         {RM_METHOD_POST, "POST"},
};

static const char *const authorities[] = {"svc",        "svc.ns.svc.cluster.local:8080",
                                          "[::1]:9000", "10.0.0.1:80",
                                          "",           "a-b.c_d~e:65535",
                                          "%41b.local"};
static const char *const connect_authorities[] = {"svc:443", "[::1]:443", "10.1.2.3:8443"};
static const char *const bad_authorities[] = {"svc\r\nx-evil: 1", "a\x7f"};
static const char *const paths[] = {"/",    "/a/b?c=d", "/%7Euser/x;p", "/?",
                                    "?q=1", "",         "x/y",          "/a//b"};

static const rm_field_t req_fields[] = {
    {LIT("Accept"), LIT("*/*")},
    {LIT("User-Agent"), LIT("fuzz/1")},
    {LIT("Host"), LIT("other.example")},
    {LIT("Content-Length"), LIT("99")},
    {LIT("Transfer-Encoding"), LIT("chunked")},
    {LIT("Connection"), LIT("keep-alive, x-hop")},
    {LIT("x-hop"), LIT("1")},
    {LIT("Keep-Alive"), LIT("timeout=5")},
    {LIT("TE"), LIT("trailers")},
    {LIT("Upgrade"), LIT("websocket")},
    {LIT("Expect"), LIT("100-continue")},
    {LIT("X-Forwarded-For"), LIT("1.2.3.4")},
    {LIT("Proxy-Connection"), LIT("close")},
    {LIT("x-empty"), LIT("")},
    {LIT("x-obs"), LIT("\x80\xff")},
    {LIT("x-request-id"), LIT("abc")},
    {LIT("Trailer"), LIT("x-t")},
};

typedef struct synth_req {
    rm_request_head_t h;
    rm_field_t fields[16];
    rm_field_edit_t edit;
    const rm_field_edit_t *e;
    bool bad; /* an authority with a control byte or space: write_head must refuse it */
    char long_path[9001];
} synth_req_t;

/* A neutral request as a server codec would hand it over (flags consistent with its fields). */
static void synth_request(rng_t *d, synth_req_t *sr)
{
    rm_request_head_t *h = &sr->h;
    size_t nm = sizeof(methods) / sizeof(methods[0]);
    unsigned mi = rbelow(d, (uint32_t)nm);
    *h = (rm_request_head_t){0};
    h->method = methods[mi].m;
    h->method_name = (rm_span_t){methods[mi].name, strlen(methods[mi].name)};
    static const uint8_t versions[] = {11, 11, 10, 20};
    h->version = versions[rbelow(d, 4)];
    bool connect = h->method == RM_METHOD_CONNECT;
    sr->bad = false;
    const char *auth;
    if (one_in(d, 24)) {
        auth = bad_authorities[rbelow(d, 2)];
        sr->bad = true;
    } else if (connect) {
        auth = connect_authorities[rbelow(d, 3)];
    } else {
        auth = authorities[rbelow(d, sizeof(authorities) / sizeof(authorities[0]))];
    }
    h->authority = (rm_span_t){auth, strlen(auth)};
    if (connect) {
        h->path = (rm_span_t){"", 0};
    } else if (h->method == RM_METHOD_OPTIONS && one_in(d, 3)) {
        h->path = (rm_span_t){"*", 1};
    } else if (one_in(d, 32)) {
        size_t len = 1 + rbelow(d, sizeof(sr->long_path) - 1);
        memset(sr->long_path, 'a', len);
        sr->long_path[0] = '/';
        h->path = (rm_span_t){sr->long_path, len};
    } else {
        const char *p = paths[rbelow(d, sizeof(paths) / sizeof(paths[0]))];
        h->path = (rm_span_t){p, strlen(p)};
    }
    size_t nf = 0;
    unsigned want = rbelow(d, 7);
    for (unsigned i = 0; i < want; i++)
        sr->fields[nf++] = req_fields[rbelow(d, sizeof(req_fields) / sizeof(req_fields[0]))];
    if (connect) {
        h->flags |= RM_MSG_F_UPGRADE;
    } else {
        switch (rbelow(d, 4)) {
        case 0:
            break;
        case 1:
            h->flags |= RM_MSG_F_LENGTH; /* Content-Length: 0 */
            break;
        case 2:
            h->flags |= RM_MSG_F_BODY | RM_MSG_F_LENGTH;
            h->content_length = 1 + rbelow(d, 300);
            break;
        default:
            h->flags |= RM_MSG_F_BODY; /* chunked */
        }
        if (one_in(d, 4)) {
            h->flags |= RM_MSG_F_UPGRADE;
            if (!one_in(d, 4))
                sr->fields[nf++] = (rm_field_t){LIT("Upgrade"), LIT("websocket")};
            sr->fields[nf++] = (rm_field_t){LIT("Connection"), LIT("upgrade")};
        }
    }
    if (one_in(d, 4)) {
        h->flags |= RM_MSG_F_EXPECT_100;
        sr->fields[nf++] = (rm_field_t){LIT("Expect"), LIT("100-continue")};
    }
    if (one_in(d, 4)) {
        h->flags |= RM_MSG_F_CLOSE;
        sr->fields[nf++] = (rm_field_t){LIT("Connection"), LIT("close")};
    }
    h->fields = sr->fields;
    h->nfields = nf;
    /* As a server codec says it: the Connection field names more than the standard options. */
    for (size_t i = 0; i < nf; i++)
        if (names_option(&sr->fields[i], 1, "x-hop"))
            h->flags |= RM_MSG_F_CONN_NAMED;

    /* The proxy's edit (its added fields are valid by contract), or none. */
    sr->e = NULL;
    switch (rbelow(d, 8)) {
    case 0:
        break;
    default:
        sr->edit = (rm_field_edit_t){
            .remove = fwd_removed, .nremove = 4, .add = fwd_added, .nadd = 1 + rbelow(d, 3)};
        sr->e = &sr->edit;
    }
}

typedef struct client_run {
    splitter_t sp;
    rm_buf_t in, out;
    rm_h1_client_t c;
    feeder_t fd;
    size_t head_bytes, decoded;
    bytes_t body, wbody;
    synth_req_t sr;
} client_run_t;

static void run_client(const uint8_t *s, size_t slen, const params_t *pp, int which, bytes_t *tr)
{
    static client_run_t x;
    x.sp = (splitter_t){pp->piece[which], pp->room[which], {~pp->sseed[which]}};
    x.head_bytes = x.decoded = 0;
    rm_buf_init(&x.in, pp->cli_in_limit);
    rm_buf_init(&x.out, OUT_LIMIT);
    rm_h1_client_init(&x.c, &x.in, &x.out, scratch, NSCRATCH, pp->cli_max_headers);
    x.fd = (feeder_t){s, slen, 0, &x.in, &x.sp, 0};

    for (unsigned e = 0; e < MAX_EXCHANGES; e++) {
        rng_t d = {pp->cseed ^ ((uint64_t)(e + 1) * 0xA0761D6478BD642Full)};
        synth_request(&d, &x.sr);
        rm_request_head_t *h = &x.sr.h;
        CHECK(x.out.len == 0);
        int rc = rm_h1_client_write_head(&x.c, h, x.sr.e);
        tr_val(tr, 'W', (uint64_t)(int64_t)rc);
        if (x.sr.bad) {
            CHECKF(rc == RM_HTTP1_E_ARG && x.out.len == 0,
                   "authority with a control byte: rc %d, %zu bytes written", rc, x.out.len);
            break;
        }
        CHECKF(rc == 0, "write_head %d", rc);
        rm_http1_request_t r;
        size_t head_len = x.out.len;
        check_written_request(bhead(&x.out), head_len, h, x.sr.e, &r);
        x.wbody.len = 0;
        if (h->flags & RM_MSG_F_BODY) {
            size_t total =
                (h->flags & RM_MSG_F_LENGTH) ? (size_t)h->content_length : rbelow(&d, 300);
            rand_bytes(&d, &x.wbody, total);
            size_t off = 0;
            while (off < total) {
                size_t k = one_in(&d, 4) ? 0 : 1 + rbelow(&d, 100);
                k = k < total - off ? k : total - off;
                CHECK(rm_h1_client_write_room(&x.c, (size_t)64 * 1024) <= (size_t)64 * 1024);
                CHECK(rm_h1_client_write_data(&x.c, x.wbody.p + off, k) == 0);
                off += k;
            }
            CHECK(rm_h1_client_write_end(&x.c) == 0);
        }
        check_request_body(bhead(&x.out) + head_len, x.out.len - head_len, &r, &x.wbody, true);
        bytes_put(tr, bhead(&x.out), x.out.len);
        rm_buf_consume(&x.out, x.out.len); /* sent */

        /* The response: interim heads, then the final one. */
        rm_response_head_t rh;
        int hrc;
        for (;;) {
            hrc = rm_h1_client_read_head(&x.c, &rh);
            if (hrc == 0) {
                if (!feed(&x.fd))
                    break;
                continue;
            }
            tr_val(tr, 'h', (uint64_t)(int64_t)hrc);
            if (hrc < 0) {
                CHECK(x.c.resp.error_reason != NULL);
                break;
            }
            check_client_head(&x.c, &rh, (int)h->method);
            tr_val(tr, 's', (uint64_t)rh.status);
            tr_val(tr, 'f', rh.flags);
            tr_val(tr, 'l', rh.content_length);
            x.head_bytes += (size_t)x.c.head_len;
            rm_h1_client_head_done(&x.c);
            if (!(rh.flags & RM_MSG_F_INTERIM))
                break;
        }
        if (hrc <= 0) {
            tr_val(tr, 'E', (uint64_t)(int64_t)hrc);
            break;
        }
        bool at_close = rm_h1_client_ends_at_close(&x.c);
        CHECK(at_close == ((rh.flags & RM_MSG_F_UPGRADE) || x.c.body == RM_HTTP1_BODY_UNTIL_CLOSE));
        bool raw = at_close || x.c.body == RM_HTTP1_BODY_CONTENT_LENGTH;
        uint64_t cl = rh.content_length;
        x.body.len = 0;
        int outcome = -1;
        while (outcome < 0) {
            size_t room = next_room(&x.sp);
            rm_span_t data = {0};
            rm_body_event_t ev = rm_h1_client_body_next(&x.c, room, &data);
            switch (ev) {
            case RM_BODY_DATA: {
                const char *base = bhead(&x.in);
                CHECKF(data.len > 0 && data.len <= room, "span of %zu bytes, room %zu", data.len,
                       room);
                CHECKF(data.ptr >= base && data.ptr + data.len <= base + x.in.len,
                       "span outside the input buffer");
                CHECK(!(rh.flags & RM_MSG_F_INTERIM));
                if (raw)
                    CHECK(data.ptr == base);
                CHECK((rh.flags & RM_MSG_F_BODY) || at_close);
                x.decoded += data.len;
                CHECKF(x.decoded + x.head_bytes <= x.fd.fed, "decoded %zu + heads %zu > fed %zu",
                       x.decoded, x.head_bytes, x.fd.fed);
                if (rh.flags & RM_MSG_F_LENGTH)
                    CHECK(x.body.len + data.len <= cl);
                bytes_put(&x.body, data.ptr, data.len);
                bytes_put(tr, data.ptr, data.len);
                rm_h1_client_body_consume(&x.c);
                break;
            }
            case RM_BODY_WAIT:
                if (!feed(&x.fd))
                    outcome = BODY_EOF;
                break;
            case RM_BODY_END:
                CHECK(!at_close);
                if (rh.flags & RM_MSG_F_LENGTH)
                    CHECKF(x.body.len == cl, "Content-Length %llu, %zu bytes delivered",
                           (unsigned long long)cl, x.body.len);
                else if (!(rh.flags & RM_MSG_F_BODY))
                    CHECK(x.body.len == 0);
                outcome = BODY_END;
                break;
            case RM_BODY_ERROR:
                CHECK(x.c.body == RM_HTTP1_BODY_CHUNKED && x.c.chunks.error_reason != NULL);
                outcome = BODY_ERROR;
                break;
            default:
                CHECK(0);
            }
        }
        tr_val(tr, 'B', (uint64_t)outcome);
        if (rm_h1_client_reusable(&x.c))
            CHECK(outcome == BODY_END && !x.c.resp_close && x.in.len == 0 && !at_close);
        if (outcome != BODY_END || x.c.resp_close)
            break;
        /* Kept alive: the next request on this connection (whatever bytes remain are the
         * upstream's next answer, as far as this test goes). */
    }
    rm_buf_free(&x.in);
    rm_buf_free(&x.out);
}

/* ---- the driver --------------------------------------------------------------------------- */

static void compare(const char *side, const bytes_t *a, const bytes_t *b, const params_t *pp)
{
    if (a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0))
        return;
    size_t at = 0;
    while (at < a->len && at < b->len && a->p[at] == b->p[at])
        at++;
    fprintf(stderr,
            "%s side: split patterns disagree (pieces %d/%d, rooms %d/%d): transcripts of %zu "
            "and %zu bytes differ at %zu\n",
            side, pp->piece[0], pp->piece[1], pp->room[0], pp->room[1], a->len, b->len, at);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    rm_http1_limits_init(&relaxed);
    relaxed.max_request_line = (size_t)1 << 20;
    relaxed.max_head_bytes = (size_t)1 << 22;
    relaxed.max_headers = NVERIFY;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bytes_t tra, trb;
    uint8_t c[CTL] = {0};
    memcpy(c, data, size < CTL ? size : CTL);
    const uint8_t *s = size > CTL ? data + CTL : data;
    size_t slen = size > CTL ? size - CTL : 0;

    static const size_t in_limits[] = {(size_t)64 * 1024 + 4096, 512, 2048, 8192};
    static const size_t head_limits[] = {RM_HTTP1_DEFAULT_MAX_HEAD_BYTES, 256, 1024, 4096};
    static const size_t field_limits[] = {RM_HTTP1_DEFAULT_MAX_HEADERS, 4, 16, NSCRATCH};
    static const size_t cli_in_limits[] = {(size_t)64 * 1024 + 4096, 256, 1024, 8192};
    params_t pp = {
        .srv_in_limit = in_limits[c[2] & 3],
        .max_head_bytes = head_limits[(c[2] >> 2) & 3],
        .max_headers = field_limits[(c[2] >> 4) & 3],
        .cli_in_limit = cli_in_limits[(c[2] >> 6) & 3],
        .cli_max_headers = (c[7] & 0x80) ? 8 : RM_HTTP1_DEFAULT_MAX_HEADERS,
        .dseed = (uint64_t)c[3] | (uint64_t)c[4] << 8 | (uint64_t)c[5] << 16 | (uint64_t)c[6] << 24,
    };
    pp.cseed = pp.dseed ^ ((uint64_t)c[7] << 32);
    pp.piece[0] = c[0] & 3;
    pp.room[0] = (c[0] >> 2) & 3;
    /* Run B always differs from run A in its piece sizes. */
    pp.piece[1] = (pp.piece[0] + 1 + ((c[0] >> 4) & 3) % 3) & 3;
    pp.room[1] = (pp.room[0] + 1 + ((c[0] >> 6) & 3) % 3) & 3;
    pp.sseed[0] = (uint64_t)c[1] * 0x9E3779B97F4A7C15ull + 1;
    pp.sseed[1] = ~pp.sseed[0];

    tra.len = trb.len = 0;
    run_server(s, slen, &pp, 0, &tra);
    run_server(s, slen, &pp, 1, &trb);
    compare("server", &tra, &trb, &pp);

    tra.len = trb.len = 0;
    run_client(s, slen, &pp, 0, &tra);
    run_client(s, slen, &pp, 1, &trb);
    compare("client", &tra, &trb, &pp);

    rm_buf_thread_cache_free();
    return 0;
}
