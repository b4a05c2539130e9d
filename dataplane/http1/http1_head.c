/* dataplane/http1/http1_head.c — request and response head parsers: the incremental blank-line
 * scan, start lines, field lines and the framing decision of RFC 9112 6.
 *
 * Two passes, picohttpparser style. The scan (scan_head) only looks for line ends with memchr and
 * enforces the size limits; it resumes where it stopped, so a slowloris head costs O(n) in
 * total. Once the blank line is found, the full parse runs once over a head that is known to be
 * complete and to end in CRLF CRLF, which lets every byte loop stop on the final CR without
 * bounds checks: CR is in none of the byte classes, so no loop can run past it.
 */
#include <limits.h>
#include <string.h>

#include "dataplane/http1/http1.h"
#include "dataplane/http1/http1-int.h"

static const rm_http1_limits_t default_limits = {
    .max_request_line = RM_HTTP1_DEFAULT_MAX_REQUEST_LINE,
    .max_head_bytes = RM_HTTP1_DEFAULT_MAX_HEAD_BYTES,
    .max_headers = RM_HTTP1_DEFAULT_MAX_HEADERS,
};

/* Word-at-a-time skip over bytes that are certainly valid, 8 at a time: stops before any word
 * holding a byte below lo, DEL, a byte >= 0x80 (when high_ok is 0) or the byte stop. The exact
 * byte-class loop that follows decides about the stopping word, so this only has to be
 * conservative. Loads stay below bound (never past the head), through memcpy (no alignment or
 * aliasing assumptions). */
#define RM__ONES  0x0101010101010101ull
#define RM__HIGHS 0x8080808080808080ull
static inline const unsigned char *skip_words(const unsigned char *p, const unsigned char *bound,
                                              unsigned lo, unsigned stop, int high_ok)
{
    while (bound - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        uint64_t bad = (x - RM__ONES * lo) & ~x; /* some byte < lo */
        uint64_t d = x ^ (RM__ONES * 0x7f);      /* some byte == DEL */
        bad |= (d - RM__ONES) & ~d;
        d = x ^ (RM__ONES * stop); /* some byte == stop */
        bad |= (d - RM__ONES) & ~d;
        if (!high_ok)
            bad |= x; /* some byte >= 0x80 */
        if (bad & RM__HIGHS)
            break;
        p += 8;
    }
    return p;
}

/* What the field lines said, gathered before the framing is decided. */
typedef struct fields {
    rm_http1_header_t *headers; /* borrowed from the request/response */
    size_t max_headers;
    size_t num_headers;
    int is_request;
    int minor;
    unsigned flags;
    unsigned host_count;
    rm_http1_span_t host;
    int cl_seen;
    uint64_t cl;
    int te_seen;
    int te_chunked;    /* chunked seen; anything after it is an error at once */
    int te_other;      /* a coding other than chunked seen */
    int trailing_htab; /* the current field's trailing OWS holds an HTAB */
    const char *reason;
} fields_t;

#define FAIL(reason_out, code, why)                                                                \
    do {                                                                                           \
        *(reason_out) = (why);                                                                     \
        return (code);                                                                             \
    } while (0)

void rm_http1_limits_init(rm_http1_limits_t *lim)
{
    *lim = default_limits;
}

void rm_http1_request_init(rm_http1_request_t *req, rm_http1_header_t *headers, size_t cap)
{
    memset(req, 0, sizeof(*req));
    req->headers = headers;
    req->headers_cap = headers == NULL ? 0 : cap;
}

void rm_http1_response_init(rm_http1_response_t *resp, rm_http1_header_t *headers, size_t cap)
{
    memset(resp, 0, sizeof(*resp));
    resp->headers = headers;
    resp->headers_cap = headers == NULL ? 0 : cap;
}

/* Finds the end of the head. Returns the head length, RM_HTTP1_INCOMPLETE, or an error (with
 * *reason). Only whole lines are consumed, so the state never depends on where the reads split:
 * every prefix of a valid head gives INCOMPLETE and the whole gives the same answer as one call.
 * Bare LF is refused here already, so a client that ends lines with LF alone fails at its first
 * line instead of holding a slot until the head limit. */
static int scan_head(const char *buf, size_t len, rm_http1_scan_t *sc, const rm_http1_limits_t *lim,
                     size_t max_fields, const char **reason)
{
    size_t max_head = lim->max_head_bytes < INT_MAX ? lim->max_head_bytes : INT_MAX;
    size_t limit = len < max_head ? len : max_head;
    size_t pos = sc->pos;

    if (sc->head_len != 0 && sc->head_len <= len)
        return (int)sc->head_len;
    if (pos > len || sc->head_len != 0) { /* caller shrank the buffer: start over, stay safe */
        memset(sc, 0, sizeof(*sc));
        pos = 0;
    }

    while (pos < limit) {
        const char *lf = rm__http1_find_lf(buf + pos, limit - pos);
        if (lf == NULL)
            break;
        size_t i = (size_t)(lf - buf);
        if (i == pos || buf[i - 1] != '\r') {
            sc->pos = pos;
            FAIL(reason, RM_HTTP1_E_LINE_ENDING, "bare LF line ending");
        }
        size_t line_len = i - 1 - pos;
        pos = i + 1;
        if (!sc->have_start) {
            if (line_len == 0) {
                /* RFC 9112 2.2: ignore at least one empty line before the request line. A few
                 * are tolerated (clients that add CRLF after a body); more is an attack. */
                if (++sc->leading > RM_HTTP1_MAX_LEADING_EMPTY_LINES)
                    FAIL(reason, RM_HTTP1_E_SYNTAX, "too many empty lines before the start line");
                sc->start = pos;
                continue;
            }
            if (line_len > lim->max_request_line)
                FAIL(reason, RM_HTTP1_E_LINE_TOO_LONG, "start line too long");
            sc->have_start = 1;
        } else if (line_len == 0) {
            sc->pos = pos;
            sc->head_len = pos;
            return (int)pos;
        } else if (++sc->fields > max_fields) {
            FAIL(reason, RM_HTTP1_E_TOO_MANY_HEADERS, "too many header fields");
        }
    }
    sc->pos = pos;
    /* The unterminated line's content is at least len - pos - 1 bytes (its last byte may be
     * the CR of its CRLF). */
    if (!sc->have_start && len - pos > lim->max_request_line + 1)
        FAIL(reason, RM_HTTP1_E_LINE_TOO_LONG, "start line too long");
    if (len >= max_head)
        FAIL(reason, RM_HTTP1_E_HEAD_TOO_LARGE, "head too large");
    return RM_HTTP1_INCOMPLETE;
}

static rm_http1_method_t method_lookup(const char *m, size_t n)
{
    switch (n) {
    case 3:
        if (memcmp(m, "GET", 3) == 0)
            return RM_HTTP1_METHOD_GET;
        if (memcmp(m, "PUT", 3) == 0)
            return RM_HTTP1_METHOD_PUT;
        break;
    case 4:
        if (memcmp(m, "HEAD", 4) == 0)
            return RM_HTTP1_METHOD_HEAD;
        if (memcmp(m, "POST", 4) == 0)
            return RM_HTTP1_METHOD_POST;
        break;
    case 5:
        if (memcmp(m, "TRACE", 5) == 0)
            return RM_HTTP1_METHOD_TRACE;
        if (memcmp(m, "PATCH", 5) == 0)
            return RM_HTTP1_METHOD_PATCH;
        break;
    case 6:
        if (memcmp(m, "DELETE", 6) == 0)
            return RM_HTTP1_METHOD_DELETE;
        break;
    case 7:
        if (memcmp(m, "CONNECT", 7) == 0)
            return RM_HTTP1_METHOD_CONNECT;
        if (memcmp(m, "OPTIONS", 7) == 0)
            return RM_HTTP1_METHOD_OPTIONS;
        break;
    default:
        break;
    }
    return RM_HTTP1_METHOD_OTHER;
}

const char *rm_http1_method_name(rm_http1_method_t method)
{
    static const char *const names[] = {
        [RM_HTTP1_METHOD_GET] = "GET",         [RM_HTTP1_METHOD_HEAD] = "HEAD",
        [RM_HTTP1_METHOD_POST] = "POST",       [RM_HTTP1_METHOD_PUT] = "PUT",
        [RM_HTTP1_METHOD_DELETE] = "DELETE",   [RM_HTTP1_METHOD_CONNECT] = "CONNECT",
        [RM_HTTP1_METHOD_OPTIONS] = "OPTIONS", [RM_HTTP1_METHOD_TRACE] = "TRACE",
        [RM_HTTP1_METHOD_PATCH] = "PATCH",
    };
    if ((unsigned)method >= sizeof(names) / sizeof(names[0]))
        return NULL;
    return names[method];
}

/* host [":" port] (RFC 3986 3.2.2, 3.2.3). An empty value is fine for Host (RFC 9110 7.2) but
 * not for CONNECT, which needs a port. Userinfo ('@') is refused: RFC 9110 4.2.4. */
static int authority_valid(const char *p, size_t n, int need_port)
{
    const unsigned char *u = RM__U8(p);
    size_t i = 0;

    if (n == 0)
        return !need_port;
    if (u[0] == '[') {
        i = 1;
        while (i < n && (rm__http1_hex[u[i]] || u[i] == ':' || u[i] == '.'))
            i++;
        if (i == 1 || i >= n || u[i] != ']')
            return 0;
        i++;
    } else {
        while (i < n && u[i] != ':') {
            if (!rm__http1_regname[u[i]])
                return 0;
            if (u[i] == '%') {
                if (i + 2 >= n || !rm__http1_hex[u[i + 1]] || !rm__http1_hex[u[i + 2]])
                    return 0;
                i += 3;
                continue;
            }
            i++;
        }
        if (i == 0)
            return 0;
    }
    if (i == n)
        return !need_port;
    if (u[i] != ':')
        return 0;
    i++;
    if (i == n)
        return !need_port;
    if (n - i > 5)
        return 0;
    unsigned port = 0;
    for (; i < n; i++) {
        unsigned d = (unsigned)u[i] - '0';
        if (d > 9)
            return 0;
        port = port * 10 + d;
    }
    return port <= 65535;
}

/* Content-Length = 1*DIGIT. Strict: a second Content-Length field, even with the same value, and
 * list forms such as "5, 5" are refused (RFC 9112 6.3 allows folding equal values; refusing is
 * simpler and closes the door on every disagreement between hops). Values above INT64_MAX are
 * refused so that no later signed use can overflow. */
static int parse_content_length(fields_t *f, const char *v, size_t n)
{
    uint64_t x = 0;

    if (f->cl_seen)
        FAIL(&f->reason, RM_HTTP1_E_CONTENT_LENGTH, "duplicate Content-Length");
    if (f->trailing_htab)
        FAIL(&f->reason, RM_HTTP1_E_CONTENT_LENGTH, "HTAB after the Content-Length value");
    if (n == 0)
        FAIL(&f->reason, RM_HTTP1_E_CONTENT_LENGTH, "empty Content-Length");
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)RM__U8(v)[i] - '0';
        if (d > 9)
            FAIL(&f->reason, RM_HTTP1_E_CONTENT_LENGTH, "Content-Length is not a number");
        if (x > ((uint64_t)INT64_MAX - d) / 10)
            FAIL(&f->reason, RM_HTTP1_E_CONTENT_LENGTH, "Content-Length too large");
        x = x * 10 + d;
    }
    f->cl_seen = 1;
    f->cl = x;
    return 0;
}

/* Transfer-Encoding, possibly over several field lines. Each element must be a bare token (no
 * parameters, no empty elements); nothing may follow chunked (RFC 9112 6.1 and 7: chunked is
 * final and applied once). Whether other codings may precede chunked is decided later (501).
 * Trailing HTAB is refused although it is OWS: llhttp 8.1.0 reads "chunked<HTAB>" as not
 * chunked, and two hops must never disagree on framing. Content-Length does the same. */
static int parse_transfer_encoding(fields_t *f, const char *v, size_t n)
{
    const char *pos = v;
    rm_http1_span_t e;

    f->te_seen = 1;
    if (f->trailing_htab)
        FAIL(&f->reason, RM_HTTP1_E_TRANSFER_ENCODING, "HTAB after the Transfer-Encoding value");
    while (rm__http1_list_next(&pos, v + n, &e)) {
        if (e.len == 0)
            FAIL(&f->reason, RM_HTTP1_E_TRANSFER_ENCODING, "empty Transfer-Encoding element");
        if (!rm__http1_is_token(e.ptr, e.len))
            FAIL(&f->reason, RM_HTTP1_E_TRANSFER_ENCODING, "malformed Transfer-Encoding");
        int chunked = RM__IEQ(e.ptr, e.len, "chunked");
        if (f->te_chunked)
            FAIL(&f->reason, RM_HTTP1_E_TRANSFER_ENCODING,
                 chunked ? "chunked applied more than once" : "chunked is not the final coding");
        if (chunked)
            f->te_chunked = 1;
        else
            f->te_other = 1;
    }
    return 0;
}

/* Connection = #connection-option; empty elements are allowed (RFC 9110 5.6.1). */
static int parse_connection(fields_t *f, const char *v, size_t n)
{
    const char *pos = v;
    rm_http1_span_t e;

    f->flags |= RM_HTTP1_F_HAS_CONNECTION;
    while (rm__http1_list_next(&pos, v + n, &e)) {
        if (e.len == 0)
            continue;
        if (!rm__http1_is_token(e.ptr, e.len))
            FAIL(&f->reason, RM_HTTP1_E_CONNECTION, "malformed Connection option");
        if (RM__IEQ(e.ptr, e.len, "close"))
            f->flags |= RM_HTTP1_F_CONN_CLOSE;
        else if (RM__IEQ(e.ptr, e.len, "keep-alive"))
            f->flags |= RM_HTTP1_F_CONN_KEEP_ALIVE;
        else if (RM__IEQ(e.ptr, e.len, "upgrade"))
            f->flags |= RM_HTTP1_F_CONN_UPGRADE;
        else
            f->flags |= RM_HTTP1_F_CONN_OTHER;
    }
    return 0;
}

/* Dispatches the fields that change framing or routing. The length switch keeps the common
 * case (any other name) to one compare. */
static int field_semantics(fields_t *f, const char *name, size_t name_len, const char *v, size_t n)
{
    switch (name_len) {
    case 4:
        if (f->is_request && RM__IEQ(name, name_len, "host")) {
            if (++f->host_count > 1)
                FAIL(&f->reason, RM_HTTP1_E_HOST, "duplicate Host");
            if (!authority_valid(v, n, 0))
                FAIL(&f->reason, RM_HTTP1_E_HOST, "invalid Host");
            f->host.ptr = v;
            f->host.len = n;
        }
        break;
    case 6:
        if (f->is_request && f->minor == 1 && RM__IEQ(name, name_len, "expect") &&
            RM__IEQ(v, n, "100-continue"))
            f->flags |= RM_HTTP1_F_EXPECT_CONTINUE;
        break;
    case 7:
        if (RM__IEQ(name, name_len, "upgrade"))
            f->flags |= RM_HTTP1_F_UPGRADE;
        break;
    case 10:
        if (RM__IEQ(name, name_len, "connection"))
            return parse_connection(f, v, n);
        break;
    case 14:
        if (RM__IEQ(name, name_len, "content-length"))
            return parse_content_length(f, v, n);
        break;
    case 17:
        if (RM__IEQ(name, name_len, "transfer-encoding"))
            return parse_transfer_encoding(f, v, n);
        break;
    default:
        break;
    }
    return 0;
}

/* Parses the field lines in [p, end), where end is the CR of the final blank line. */
static int parse_fields(fields_t *f, const char *p, const char *end)
{
    const unsigned char *bound = RM__U8(end); /* word loads stop before the final CR */

    while (p < end) {
        const unsigned char *s = RM__U8(p);
        const unsigned char *name = s;

        /* RFC 9112 5.2: obs-fold, and RFC 9112 2.2: whitespace before the first field line. */
        if (*s == ' ' || *s == '\t')
            FAIL(&f->reason, RM_HTTP1_E_OBS_FOLD, "obs-fold or whitespace-led field line");
        s = rm__http1_skip16(s, bound, RM__FAST_NAME);
        while (rm__http1_tchar[*s])
            s++;
        if (*s != ':') {
            if (*s == ' ' || *s == '\t')
                FAIL(&f->reason, RM_HTTP1_E_HEADER_NAME, "whitespace between field name and colon");
            if (*s == '\r' && s[1] != '\n')
                FAIL(&f->reason, RM_HTTP1_E_LINE_ENDING, "bare CR in field name");
            if (*s == '\r')
                FAIL(&f->reason, RM_HTTP1_E_HEADER_NAME, "field line without a colon");
            FAIL(&f->reason, RM_HTTP1_E_HEADER_NAME, "invalid byte in field name");
        }
        if (s == name)
            FAIL(&f->reason, RM_HTTP1_E_HEADER_NAME, "empty field name");
        size_t name_len = (size_t)(s - name);
        s++;
        while (*s == ' ' || *s == '\t')
            s++;
        const unsigned char *v = s;
        s = rm__http1_skip16(s, bound, RM__FAST_VALUE);
        s = skip_words(s, bound, 0x20, 0x7f, 1);
        while (rm__http1_vchar[*s])
            s++;
        if (s[0] != '\r' || s[1] != '\n') {
            if (*s == '\r')
                FAIL(&f->reason, RM_HTTP1_E_LINE_ENDING, "bare CR in field value");
            FAIL(&f->reason, RM_HTTP1_E_HEADER_VALUE, "control byte in field value");
        }
        const unsigned char *ve = s;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        p = (const char *)s + 2;
        /* Look at the next line before using this one: a folded value must be refused as
         * obs-fold, not judged on its first half. p is at most the final CR, so this is safe. */
        if (*p == ' ' || *p == '\t')
            FAIL(&f->reason, RM_HTTP1_E_OBS_FOLD, "obs-fold (line folding)");

        /* The scan already counted the lines; this guards the array whatever happens. */
        if (f->num_headers >= f->max_headers)
            FAIL(&f->reason, RM_HTTP1_E_TOO_MANY_HEADERS, "too many header fields");
        rm_http1_header_t *h = &f->headers[f->num_headers++];
        h->name.ptr = (const char *)name;
        h->name.len = name_len;
        h->value.ptr = (const char *)v;
        h->value.len = (size_t)(ve - v);
        f->trailing_htab = ve != s && memchr(ve, '\t', (size_t)(s - ve)) != NULL;
        int rc = field_semantics(f, h->name.ptr, name_len, h->value.ptr, h->value.len);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* "HTTP/" DIGIT "." DIGIT at s. The && chain stops at the first mismatch, and the line's CR
 * matches none of the expected bytes, so this never reads past the line. */
static int version_syntax(const unsigned char *s)
{
    return s[0] == 'H' && s[1] == 'T' && s[2] == 'T' && s[3] == 'P' && s[4] == '/' &&
           RM__DIGIT(s[5]) && s[6] == '.' && RM__DIGIT(s[7]);
}

/* Transfer-Encoding checks common to requests and responses (RFC 9112 6.1, 6.3). */
static int check_transfer_encoding(fields_t *f)
{
    if (!f->te_seen)
        return 0;
    if (f->cl_seen)
        FAIL(&f->reason, RM_HTTP1_E_CL_AND_TE, "Content-Length together with Transfer-Encoding");
    if (f->minor == 0)
        FAIL(&f->reason, RM_HTTP1_E_TRANSFER_ENCODING, "Transfer-Encoding in an HTTP/1.0 message");
    if (!f->te_chunked)
        FAIL(&f->reason, RM_HTTP1_E_TRANSFER_ENCODING, "chunked is not the final coding");
    if (f->te_other)
        FAIL(&f->reason, RM_HTTP1_E_TE_UNSUPPORTED, "transfer coding other than chunked");
    return 0;
}

static unsigned keep_alive_flags(const fields_t *f)
{
    unsigned flags = f->flags;
    int keep = f->minor == 1
                   ? !(flags & RM_HTTP1_F_CONN_CLOSE)
                   : (flags & RM_HTTP1_F_CONN_KEEP_ALIVE) && !(flags & RM_HTTP1_F_CONN_CLOSE);
    if (keep)
        flags |= RM_HTTP1_F_KEEP_ALIVE;
    return flags;
}

static int request_status(int code)
{
    switch (code) {
    case RM_HTTP1_E_LINE_TOO_LONG:
        return 414;
    case RM_HTTP1_E_HEAD_TOO_LARGE:
    case RM_HTTP1_E_TOO_MANY_HEADERS:
        return 431;
    case RM_HTTP1_E_TE_UNSUPPORTED:
        return 501;
    case RM_HTTP1_E_VERSION:
        return 505;
    case RM_HTTP1_E_ARG:
        return 500;
    default:
        return 400;
    }
}

static int request_fail(rm_http1_request_t *req, int code, const char *reason)
{
    req->error_status = request_status(code);
    req->error_reason = reason;
    return code;
}

/* Classifies the request-target (RFC 9112 3.2) for the method. */
static int parse_target(rm_http1_request_t *req, const char **reason)
{
    const char *t = req->target.ptr;
    size_t n = req->target.len;

    req->path.ptr = t;
    req->path.len = 0;
    if (req->method == RM_HTTP1_METHOD_CONNECT) {
        if (!authority_valid(t, n, 1))
            FAIL(reason, RM_HTTP1_E_TARGET, "CONNECT needs an authority-form target host:port");
        req->target_form = RM_HTTP1_TARGET_AUTHORITY;
        req->authority = req->target;
        return 0;
    }
    if (t[0] == '/') {
        req->target_form = RM_HTTP1_TARGET_ORIGIN;
        req->path = req->target;
        return 0;
    }
    if (n == 1 && t[0] == '*') {
        if (req->method != RM_HTTP1_METHOD_OPTIONS)
            FAIL(reason, RM_HTTP1_E_TARGET, "asterisk-form target is only for OPTIONS");
        req->target_form = RM_HTTP1_TARGET_ASTERISK;
        req->path = req->target;
        return 0;
    }
    /* absolute-form: a proxy only forwards http and https. */
    size_t skip = 0;
    if (n >= 7 && RM__IEQ(t, 7, "http://"))
        skip = 7;
    else if (n >= 8 && RM__IEQ(t, 8, "https://"))
        skip = 8;
    if (skip == 0)
        FAIL(reason, RM_HTTP1_E_TARGET, "request target in no form allowed for the method");
    const char *a = t + skip;
    size_t alen = 0;
    while (skip + alen < n && a[alen] != '/' && a[alen] != '?')
        alen++;
    if (alen == 0 || !authority_valid(a, alen, 0))
        FAIL(reason, RM_HTTP1_E_TARGET, "invalid authority in absolute-form target");
    req->target_form = RM_HTTP1_TARGET_ABSOLUTE;
    req->authority.ptr = a;
    req->authority.len = alen;
    req->path.ptr = a + alen;
    req->path.len = n - skip - alen;
    return 0;
}

int rm_http1_parse_request(const char *buf, size_t len, rm_http1_request_t *req,
                           const rm_http1_limits_t *lim)
{
    const char *reason = NULL;
    fields_t f;
    int rc;

    if (req == NULL)
        return RM_HTTP1_E_ARG;
    if (buf == NULL && len != 0)
        return request_fail(req, RM_HTTP1_E_ARG, "NULL buffer");
    if (lim == NULL)
        lim = &default_limits;
    size_t max_fields = req->headers_cap < lim->max_headers ? req->headers_cap : lim->max_headers;
    int head_len = scan_head(buf, len, &req->scan, lim, max_fields, &reason);
    if (head_len == RM_HTTP1_INCOMPLETE)
        return head_len;
    if (head_len < 0)
        return request_fail(req, head_len, reason);

    /* request-line = method SP request-target SP HTTP-version CRLF, single SPs (RFC 9112 3). */
    const unsigned char *s = RM__U8(buf + req->scan.start);
    const unsigned char *m = s;
    while (rm__http1_tchar[*s])
        s++;
    if (s == m)
        return request_fail(req, RM_HTTP1_E_METHOD, "method is not a token");
    if (*s != ' ') {
        if (*s == '\r' && s[1] == '\n')
            return request_fail(req, RM_HTTP1_E_SYNTAX, "request line without a target");
        return request_fail(req, RM_HTTP1_E_METHOD, "invalid byte in method");
    }
    req->method_name.ptr = (const char *)m;
    req->method_name.len = (size_t)(s - m);
    req->method = method_lookup(req->method_name.ptr, req->method_name.len);

    const unsigned char *t = ++s;
    s = skip_words(s, RM__U8(buf + head_len), 0x21, '#', 0);
    while (rm__http1_target[*s])
        s++;
    if (s == t)
        return request_fail(req, RM_HTTP1_E_TARGET, "empty request target");
    if (*s == '\r' && s[1] == '\n')
        return request_fail(req, RM_HTTP1_E_VERSION, "HTTP/0.9 request (no version)");
    if (*s != ' ') {
        if (*s == '#')
            return request_fail(req, RM_HTTP1_E_TARGET, "fragment in request target");
        if (*s == '\r')
            return request_fail(req, RM_HTTP1_E_LINE_ENDING, "bare CR in request line");
        return request_fail(req, RM_HTTP1_E_TARGET, "invalid byte in request target");
    }
    req->target.ptr = (const char *)t;
    req->target.len = (size_t)(s - t);

    s++;
    if (!version_syntax(s) || s[8] != '\r' || s[9] != '\n') {
        if (version_syntax(s) && s[8] == '\r')
            return request_fail(req, RM_HTTP1_E_LINE_ENDING, "bare CR in request line");
        return request_fail(req, RM_HTTP1_E_SYNTAX, "malformed HTTP version");
    }
    if (s[5] != '1' || (s[7] != '0' && s[7] != '1'))
        return request_fail(req, RM_HTTP1_E_VERSION, "HTTP version not supported");
    req->minor_version = s[7] - '0';

    rc = parse_target(req, &reason);
    if (rc < 0)
        return request_fail(req, rc, reason);

    memset(&f, 0, sizeof(f));
    f.headers = req->headers;
    f.max_headers = max_fields;
    f.is_request = 1;
    f.minor = req->minor_version;
    rc = parse_fields(&f, (const char *)s + 10, buf + head_len - 2);
    req->num_headers = f.num_headers;
    if (rc < 0)
        return request_fail(req, rc, f.reason);

    /* RFC 9112 3.2: exactly one Host in HTTP/1.1 (duplicates were refused as they came). */
    if (f.minor == 1 && f.host_count == 0)
        return request_fail(req, RM_HTTP1_E_HOST, "missing Host in an HTTP/1.1 request");
    rc = check_transfer_encoding(&f);
    if (rc < 0)
        return request_fail(req, rc, f.reason);

    req->host = f.host;
    if (req->target_form == RM_HTTP1_TARGET_ORIGIN || req->target_form == RM_HTTP1_TARGET_ASTERISK)
        req->authority = f.host;
    req->content_length = 0;
    if (req->method == RM_HTTP1_METHOD_CONNECT) {
        /* A CONNECT request has no content (RFC 9110 9.3.6); bytes after the head belong to
         * the tunnel, so any body framing would be a smuggling vector. */
        if (f.te_seen)
            return request_fail(req, RM_HTTP1_E_TRANSFER_ENCODING, "CONNECT request with a body");
        if (f.cl_seen && f.cl != 0)
            return request_fail(req, RM_HTTP1_E_CONTENT_LENGTH, "CONNECT request with a body");
        req->body = RM_HTTP1_BODY_TUNNEL;
    } else if (f.te_seen) {
        req->body = RM_HTTP1_BODY_CHUNKED;
    } else if (f.cl_seen) {
        req->body = RM_HTTP1_BODY_CONTENT_LENGTH;
        req->content_length = f.cl;
    } else {
        req->body = RM_HTTP1_BODY_NONE;
    }
    req->flags = keep_alive_flags(&f);
    if (f.host_count == 1)
        req->flags |= RM_HTTP1_F_HAS_HOST;
    req->error_status = 0;
    req->error_reason = NULL;
    return head_len;
}

static int response_fail(rm_http1_response_t *resp, int code, const char *reason)
{
    resp->error_status = code == RM_HTTP1_E_ARG ? 500 : 502;
    resp->error_reason = reason;
    return code;
}

int rm_http1_parse_response(const char *buf, size_t len, rm_http1_response_t *resp,
                            const rm_http1_limits_t *lim, int request_method)
{
    const char *reason = NULL;
    fields_t f;
    int rc;

    if (resp == NULL)
        return RM_HTTP1_E_ARG;
    if (buf == NULL && len != 0)
        return response_fail(resp, RM_HTTP1_E_ARG, "NULL buffer");
    if (lim == NULL)
        lim = &default_limits;
    size_t max_fields = resp->headers_cap < lim->max_headers ? resp->headers_cap : lim->max_headers;
    int head_len = scan_head(buf, len, &resp->scan, lim, max_fields, &reason);
    if (head_len == RM_HTTP1_INCOMPLETE)
        return head_len;
    if (head_len < 0)
        return response_fail(resp, head_len, reason);

    /* status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF (RFC 9112 4). A
     * missing SP after the code is tolerated: many servers send "HTTP/1.1 200\r\n". */
    const unsigned char *s = RM__U8(buf + resp->scan.start);
    if (!version_syntax(s) || s[8] != ' ')
        return response_fail(resp, RM_HTTP1_E_SYNTAX, "malformed status line");
    if (s[5] != '1' || (s[7] != '0' && s[7] != '1'))
        return response_fail(resp, RM_HTTP1_E_VERSION, "HTTP version not supported");
    resp->minor_version = s[7] - '0';
    s += 9;
    if (!(RM__DIGIT(s[0]) && RM__DIGIT(s[1]) && RM__DIGIT(s[2])))
        return response_fail(resp, RM_HTTP1_E_STATUS, "malformed status code");
    int status = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    if (status < 100 || status > 599)
        return response_fail(resp, RM_HTTP1_E_STATUS, "status code out of range");
    resp->status = status;
    const unsigned char *r = s + 3;
    if (*r == ' ') {
        const unsigned char *text = ++r;
        while (rm__http1_vchar[*r])
            r++;
        resp->status_text.ptr = (const char *)text;
        resp->status_text.len = (size_t)(r - text);
    } else {
        resp->status_text.ptr = (const char *)r;
        resp->status_text.len = 0;
    }
    if (r[0] != '\r' || r[1] != '\n') {
        if (*r == '\r')
            return response_fail(resp, RM_HTTP1_E_LINE_ENDING, "bare CR in status line");
        return response_fail(resp, RM_HTTP1_E_STATUS, "invalid byte in status line");
    }

    memset(&f, 0, sizeof(f));
    f.headers = resp->headers;
    f.max_headers = max_fields;
    f.is_request = 0;
    f.minor = resp->minor_version;
    rc = parse_fields(&f, (const char *)r + 2, buf + head_len - 2);
    resp->num_headers = f.num_headers;
    if (rc < 0)
        return response_fail(resp, rc, f.reason);
    /* Refused even where the body is ignored (HEAD, 204, 304): a proxy forwards these fields,
     * and the next hop might not ignore them. */
    rc = check_transfer_encoding(&f);
    if (rc < 0)
        return response_fail(resp, rc, f.reason);

    /* RFC 9112 6.3. Any 2xx to CONNECT, 204 included, switches to a tunnel (RFC 9110 9.3.6),
     * so that rule is tested before the no-content statuses. */
    resp->content_length = 0;
    if (status < 200)
        resp->body = status == 101 ? RM_HTTP1_BODY_TUNNEL : RM_HTTP1_BODY_NONE;
    else if (request_method == RM_HTTP1_METHOD_CONNECT && status < 300)
        resp->body = RM_HTTP1_BODY_TUNNEL;
    else if (request_method == RM_HTTP1_METHOD_HEAD || status == 204 || status == 304)
        resp->body = RM_HTTP1_BODY_NONE;
    else if (f.te_seen)
        resp->body = RM_HTTP1_BODY_CHUNKED;
    else if (f.cl_seen)
        resp->body = RM_HTTP1_BODY_CONTENT_LENGTH, resp->content_length = f.cl;
    else
        resp->body = RM_HTTP1_BODY_UNTIL_CLOSE;
    resp->flags = keep_alive_flags(&f);
    if (resp->body == RM_HTTP1_BODY_UNTIL_CLOSE || resp->body == RM_HTTP1_BODY_TUNNEL)
        resp->flags &= ~RM_HTTP1_F_KEEP_ALIVE;
    resp->error_status = 0;
    resp->error_reason = NULL;
    return head_len;
}

const char *rm_http1_strerror(int code)
{
    switch (code) {
    case RM_HTTP1_INCOMPLETE:
        return "incomplete";
    case RM_HTTP1_E_SYNTAX:
        return "malformed message";
    case RM_HTTP1_E_LINE_ENDING:
        return "bare CR or LF";
    case RM_HTTP1_E_OBS_FOLD:
        return "obsolete line folding";
    case RM_HTTP1_E_METHOD:
        return "invalid method";
    case RM_HTTP1_E_TARGET:
        return "invalid request target";
    case RM_HTTP1_E_VERSION:
        return "HTTP version not supported";
    case RM_HTTP1_E_HEADER_NAME:
        return "invalid field name";
    case RM_HTTP1_E_HEADER_VALUE:
        return "invalid field value";
    case RM_HTTP1_E_HOST:
        return "missing, duplicate or invalid Host";
    case RM_HTTP1_E_CONTENT_LENGTH:
        return "invalid Content-Length";
    case RM_HTTP1_E_TRANSFER_ENCODING:
        return "invalid Transfer-Encoding";
    case RM_HTTP1_E_CL_AND_TE:
        return "Content-Length with Transfer-Encoding";
    case RM_HTTP1_E_TE_UNSUPPORTED:
        return "unsupported transfer coding";
    case RM_HTTP1_E_LINE_TOO_LONG:
        return "start line too long";
    case RM_HTTP1_E_HEAD_TOO_LARGE:
        return "head too large";
    case RM_HTTP1_E_TOO_MANY_HEADERS:
        return "too many header fields";
    case RM_HTTP1_E_STATUS:
        return "invalid status code";
    case RM_HTTP1_E_CONNECTION:
        return "invalid Connection option";
    case RM_HTTP1_E_CHUNK_SIZE:
        return "invalid chunk size line";
    case RM_HTTP1_E_CHUNK_EXT:
        return "invalid chunk extension";
    case RM_HTTP1_E_CHUNK_DATA:
        return "chunk data not followed by CRLF";
    case RM_HTTP1_E_TRAILER:
        return "invalid trailer field";
    case RM_HTTP1_E_TRAILER_TOO_LARGE:
        return "trailer section too large";
    case RM_HTTP1_E_NOSPACE:
        return "output buffer too small";
    case RM_HTTP1_E_ARG:
        return "invalid argument";
    default:
        return code >= 0 ? "success" : "unknown error";
    }
}
