/* tests/backend/request.c — llhttp callbacks that turn request bytes into an rm__req_t. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tests/backend/backend.h"

/* Counts n more header bytes; past the limit the parser stops with 431. */
static int charge(llhttp_t *p, rm__req_t *r, size_t n)
{
    if (n > RM__HEADER_BYTES_MAX - r->header_bytes) {
        r->err_status = 431;
        llhttp_set_error_reason(p, "request header bytes over 64 KiB");
        return -1;
    }
    r->header_bytes += n;
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    rm__req_t *r = p->data;

    rm__req_reset(r);
    r->started = 1;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    rm__req_t *r = p->data;

    if (charge(p, r, n) < 0)
        return HPE_USER;
    if (rm__buf_append(&r->store, at, n) < 0) {
        llhttp_set_error_reason(p, "out of memory");
        return HPE_USER;
    }
    r->url_len += (uint32_t)n;
    return 0;
}

/* Opens the next header entry; its name follows in store. */
static int header_open(llhttp_t *p, rm__req_t *r)
{
    rm__hdr_t *h;

    if (r->nhdrs == RM__HEADER_COUNT_MAX) {
        r->err_status = 431;
        llhttp_set_error_reason(p, "more than 1024 request headers");
        return -1;
    }
    if (r->nhdrs == r->hdrs_cap) {
        uint32_t cap = r->hdrs_cap ? r->hdrs_cap * 2 : 16;
        rm__hdr_t *nh = realloc(r->hdrs, cap * sizeof(*nh));

        if (nh == NULL) {
            llhttp_set_error_reason(p, "out of memory");
            return -1;
        }
        r->hdrs = nh;
        r->hdrs_cap = cap;
    }
    h = &r->hdrs[r->nhdrs++];
    h->name_off = (uint32_t)r->store.len;
    h->name_len = 0;
    h->value_off = (uint32_t)r->store.len;
    h->value_len = 0;
    r->in_field = 1;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    rm__req_t *r = p->data;

    if (r->headers_done)
        return 0; /* a trailer: read and dropped */
    if (charge(p, r, n) < 0)
        return HPE_USER;
    if (!r->in_field && header_open(p, r) < 0)
        return HPE_USER;
    if (rm__buf_append(&r->store, at, n) < 0) {
        llhttp_set_error_reason(p, "out of memory");
        return HPE_USER;
    }
    r->hdrs[r->nhdrs - 1].name_len += (uint32_t)n;
    return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    rm__req_t *r = p->data;

    if (r->headers_done)
        return 0;
    /* llhttp 8.1 lets an empty name through without a field callback: still its own entry, so
     * its value cannot land on the previous header. */
    if (!r->in_field && header_open(p, r) < 0)
        return HPE_USER;
    r->in_field = 0;
    /* The value starts here even when no value callback comes (an empty value). */
    r->hdrs[r->nhdrs - 1].value_off = (uint32_t)r->store.len;
    /* ": " and CRLF of the line count toward the limit as they do on the wire. */
    return charge(p, r, 4) < 0 ? HPE_USER : 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    rm__req_t *r = p->data;

    if (r->headers_done || r->nhdrs == 0)
        return 0;
    if (charge(p, r, n) < 0)
        return HPE_USER;
    if (rm__buf_append(&r->store, at, n) < 0) {
        llhttp_set_error_reason(p, "out of memory");
        return HPE_USER;
    }
    r->hdrs[r->nhdrs - 1].value_len += (uint32_t)n;
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    rm__req_t *r = p->data;
    rm__hdr_t *h;

    if (r->headers_done || r->nhdrs == 0)
        return 0;
    /* llhttp strips leading whitespace but hands over trailing OWS; it is not part of a value. */
    h = &r->hdrs[r->nhdrs - 1];
    while (h->value_len > 0) {
        char c = r->store.data[h->value_off + h->value_len - 1];

        if (c != ' ' && c != '\t')
            break;
        h->value_len--;
    }
    return 0;
}

static int value_is(const char *v, size_t n, const char *want)
{
    return n == strlen(want) && strncasecmp(v, want, n) == 0;
}

int rm__fault_parse(const char *s, size_t n, rm__fault_t *out)
{
    static const struct {
        const char *name;
        rm__fault_t fault;
    } names[] = {
        {"reset", RM__FAULT_RESET},
        {"close", RM__FAULT_CLOSE},
        {"close-after-headers", RM__FAULT_CLOSE_AFTER_HEADERS},
        {"reset-mid-body", RM__FAULT_RESET_MID_BODY},
        {"hang", RM__FAULT_HANG},
        {"malformed", RM__FAULT_MALFORMED},
        {"no-read", RM__FAULT_NO_READ},
        {"none", RM__FAULT_NONE},
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (value_is(s, n, names[i].name)) {
            *out = names[i].fault;
            return 0;
        }
    }
    return -1;
}

static int flag_value(const char *v, size_t n)
{
    return value_is(v, n, "1") || value_is(v, n, "true") || value_is(v, n, "yes");
}

/* Reads the x-backend-* headers; the first bad one is remembered and answered with 400. */
static void parse_controls(rm__req_t *r)
{
    rm__ctl_t *c = &r->ctl;
    const char *v;
    size_t n;
    uint64_t u;

    if ((v = rm__req_header(r, "x-backend-delay", &n)) != NULL) {
        if (rm__duration_parse(v, n, &c->delay_us) == 0)
            c->has_delay = 1;
        else if (c->error == NULL)
            c->error = "bad x-backend-delay (want a duration such as 200ms or 2s, at most 24h)";
    }
    if ((v = rm__req_header(r, "x-backend-status", &n)) != NULL) {
        if (rm__u64_parse(v, n, 599, &u) == 0 && u >= 200)
            c->status = (int)u;
        else if (c->error == NULL)
            c->error = "bad x-backend-status (want 200..599)";
    }
    if ((v = rm__req_header(r, "x-backend-body-bytes", &n)) != NULL) {
        if (rm__u64_parse(v, n, RM__BODY_BYTES_MAX, &c->body_bytes) == 0)
            c->has_body_bytes = 1;
        else if (c->error == NULL)
            c->error = "bad x-backend-body-bytes (want 0..1099511627776)";
    }
    if ((v = rm__req_header(r, "x-backend-fault", &n)) != NULL) {
        if (rm__fault_parse(v, n, &c->fault) < 0 && c->error == NULL)
            c->error = "bad x-backend-fault (want reset, close, close-after-headers, "
                       "reset-mid-body, hang, malformed or no-read)";
    }
    if ((v = rm__req_header(r, "x-backend-echo-headers", &n)) != NULL)
        c->echo_headers = flag_value(v, n);
    if ((v = rm__req_header(r, "x-backend-chunked", &n)) != NULL)
        c->chunked = flag_value(v, n);
}

static int on_headers_complete(llhttp_t *p)
{
    rm__req_t *r = p->data;
    const char *v, *path;
    size_t n, plen;

    r->headers_done = 1;
    r->method = llhttp_get_method(p);
    r->http_major = llhttp_get_http_major(p);
    r->http_minor = llhttp_get_http_minor(p);
    path = rm__req_path(r, &plen);
    r->admin = plen >= 11 && memcmp(path, "/__backend/", 11) == 0;
    if (r->admin)
        return 0; /* admin endpoints ignore control headers */
    parse_controls(r);
    v = rm__req_header(r, "expect", &n);
    r->expect_continue =
        v != NULL && value_is(v, n, "100-continue") && r->http_major == 1 && r->http_minor >= 1;
    if (r->ctl.error == NULL && r->ctl.fault == RM__FAULT_NO_READ) {
        /* Stop right here so the connection reads nothing more, not even the body. */
        r->no_read = 1;
        return HPE_PAUSED;
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    rm__req_t *r = p->data;

    (void)at;
    r->body_bytes += n;
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    rm__req_t *r = p->data;

    r->complete = 1;
    r->keep_alive = llhttp_should_keep_alive(p);
    r->upgrade = llhttp_get_upgrade(p) || r->method == HTTP_CONNECT;
    /* Pausing after every request keeps pipelined requests in order: the next is parsed only
     * once this one's response is done, and the rest waits in the socket buffer meanwhile. */
    return HPE_PAUSED;
}

const llhttp_settings_t *rm__req_settings(void)
{
    static llhttp_settings_t settings;
    static int ready;

    /* Filled on first use from the loop thread; llhttp_settings_init zeroes the rest. */
    if (!ready) {
        llhttp_settings_init(&settings);
        settings.on_message_begin = on_message_begin;
        settings.on_url = on_url;
        settings.on_header_field = on_header_field;
        settings.on_header_field_complete = on_header_field_complete;
        settings.on_header_value = on_header_value;
        settings.on_header_value_complete = on_header_value_complete;
        settings.on_headers_complete = on_headers_complete;
        settings.on_body = on_body;
        settings.on_message_complete = on_message_complete;
        ready = 1;
    }
    return &settings;
}

void rm__req_init(rm__req_t *r)
{
    memset(r, 0, sizeof(*r));
    rm__buf_init(&r->store);
}

void rm__req_free(rm__req_t *r)
{
    rm__buf_free(&r->store);
    free(r->hdrs);
    memset(r, 0, sizeof(*r));
}

void rm__req_reset(rm__req_t *r)
{
    rm__buf_t store = r->store;
    rm__hdr_t *hdrs = r->hdrs;
    uint32_t cap = r->hdrs_cap;

    /* A request that needed a big header block should not pin 64 KiB to an idle connection. */
    if (store.cap > 8192 || store.oom) {
        rm__buf_free(&store);
    }
    if (cap > 64) {
        free(hdrs);
        hdrs = NULL;
        cap = 0;
    }
    store.len = 0;
    memset(r, 0, sizeof(*r));
    r->store = store;
    r->hdrs = hdrs;
    r->hdrs_cap = cap;
}

const char *rm__req_header(const rm__req_t *r, const char *name, size_t *len)
{
    size_t nl = strlen(name);

    for (uint32_t i = 0; i < r->nhdrs; i++) {
        const rm__hdr_t *h = &r->hdrs[i];

        if (h->name_len == nl && strncasecmp(r->store.data + h->name_off, name, nl) == 0) {
            *len = h->value_len;
            return r->store.data + h->value_off;
        }
    }
    return NULL;
}

const char *rm__req_path(const rm__req_t *r, size_t *len)
{
    const char *u = r->store.data;
    const char *q;

    if (u == NULL || r->url_len == 0) {
        *len = 0;
        return "";
    }
    q = memchr(u, '?', r->url_len);
    *len = q ? (size_t)(q - u) : r->url_len;
    return u;
}
