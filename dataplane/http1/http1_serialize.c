/* dataplane/http1/http1_serialize.c — writes a parsed head back out with field removals and
 * additions (hop-by-hop removal, x-forwarded-for, x-request-id, Connection: close) into a
 * caller buffer, without allocating. */
#include <string.h>

#include "dataplane/http1/http1.h"
#include "dataplane/http1/http1-int.h"

/* A bounded writer: once it overflows it keeps counting nothing and reports NOSPACE at the end,
 * so call sites need no check after every piece. */
typedef struct writer {
    char *out;
    size_t cap;
    size_t len;
    int overflow;
} writer_t;

static inline void put(writer_t *w, const char *s, size_t n)
{
    if (__builtin_expect(n > w->cap - w->len, 0)) {
        w->overflow = 1;
        w->cap = w->len; /* nothing more fits: every later put of a byte overflows too */
        return;
    }
    if (n != 0)
        memcpy(w->out + w->len, s, n);
    w->len += n;
}

#define PUT_LIT(w, lit) put((w), lit, sizeof(lit) - 1)

ssize_t rm_http1_header_find(const rm_http1_header_t *headers, size_t n, const char *name,
                             size_t name_len)
{
    for (size_t i = 0; i < n; i++) {
        if (headers[i].name.len != name_len)
            continue;
        size_t j = 0;
        while (j < name_len &&
               rm__http1_lower[RM__U8(headers[i].name.ptr)[j]] == rm__http1_lower[RM__U8(name)[j]])
            j++;
        if (j == name_len)
            return (ssize_t)i;
    }
    return -1;
}

static int span_ieq(rm_http1_span_t a, const char *b, size_t n)
{
    if (a.len != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (rm__http1_lower[RM__U8(a.ptr)[i]] != rm__http1_lower[RM__U8(b)[i]])
            return 0;
    }
    return 1;
}

int rm_http1_connection_lists(const rm_http1_header_t *headers, size_t n, const char *name,
                              size_t name_len)
{
    for (size_t i = 0; i < n; i++) {
        if (!RM__IEQ(headers[i].name.ptr, headers[i].name.len, "connection"))
            continue;
        const char *pos = headers[i].value.ptr;
        const char *end = pos + headers[i].value.len;
        rm_http1_span_t e;
        while (rm__http1_list_next(&pos, end, &e)) {
            if (span_ieq(e, name, name_len))
                return 1;
        }
    }
    return 0;
}

/* RFC 9110 7.6.1 plus the usual de-facto ones (Keep-Alive, Proxy-Connection). */
static int is_hop_by_hop(rm_http1_span_t name)
{
    switch (name.len) {
    case 2:
        return RM__IEQ(name.ptr, name.len, "te");
    case 7:
        return RM__IEQ(name.ptr, name.len, "trailer") || RM__IEQ(name.ptr, name.len, "upgrade");
    case 10:
        return RM__IEQ(name.ptr, name.len, "connection") ||
               RM__IEQ(name.ptr, name.len, "keep-alive");
    case 16:
        return RM__IEQ(name.ptr, name.len, "proxy-connection");
    default:
        return 0;
    }
}

/* Fields a Connection option may not remove: dropping Content-Length or Transfer-Encoding while
 * forwarding the body ("Connection: content-length") would desynchronise the next hop. */
static int is_protected(rm_http1_span_t name)
{
    return RM__IEQ(name.ptr, name.len, "host") || RM__IEQ(name.ptr, name.len, "content-length") ||
           RM__IEQ(name.ptr, name.len, "transfer-encoding");
}

static int should_drop(const rm_http1_header_t *headers, size_t n, rm_http1_span_t name,
                       const rm_http1_edit_t *edit, int nominated)
{
    if (edit == NULL)
        return 0;
    for (size_t i = 0; i < edit->num_remove; i++) {
        if (span_ieq(name, edit->remove[i].ptr, edit->remove[i].len))
            return 1;
    }
    if (edit->remove_prefix.len > 0 && name.len >= edit->remove_prefix.len &&
        span_ieq((rm_http1_span_t){name.ptr, edit->remove_prefix.len}, edit->remove_prefix.ptr,
                 edit->remove_prefix.len))
        return 1;
    if (!(edit->flags & RM_HTTP1_EDIT_F_HOP_BY_HOP))
        return 0;
    if (is_hop_by_hop(name))
        return 1;
    return nominated && !is_protected(name) &&
           rm_http1_connection_lists(headers, n, name.ptr, name.len);
}

static void put_fields(writer_t *w, const rm_http1_header_t *headers, size_t n,
                       const rm_http1_edit_t *edit, unsigned flags)
{
    /* Only look up Connection options when the message has some beyond the standard ones. */
    int nominated = (flags & RM_HTTP1_F_CONN_OTHER) != 0;
    for (size_t i = 0; i < n; i++) {
        if (should_drop(headers, n, headers[i].name, edit, nominated))
            continue;
        put(w, headers[i].name.ptr, headers[i].name.len);
        PUT_LIT(w, ": ");
        put(w, headers[i].value.ptr, headers[i].value.len);
        PUT_LIT(w, "\r\n");
    }
}

static int adds_valid(const rm_http1_edit_t *edit)
{
    if (edit == NULL)
        return 1;
    if (edit->flags & RM_HTTP1_EDIT_F_ADDS_VALID)
        return (edit->num_remove == 0 || edit->remove != NULL) &&
               (edit->num_add == 0 || edit->add != NULL);
    if ((edit->num_remove != 0 && edit->remove == NULL) ||
        (edit->num_add != 0 && edit->add == NULL))
        return 0;
    for (size_t i = 0; i < edit->num_add; i++) {
        const rm_http1_header_t *h = &edit->add[i];
        if (!rm__http1_is_token(h->name.ptr, h->name.len))
            return 0;
        const unsigned char *v = RM__U8(h->value.ptr), *end = v + h->value.len;
        for (v = rm__http1_skip16(v, end, RM__FAST_VALUE); v < end; v++) {
            if (!rm__http1_vchar[*v])
                return 0;
        }
    }
    return 1;
}

static ssize_t finish(writer_t *w, const rm_http1_edit_t *edit)
{
    if (edit != NULL) {
        for (size_t i = 0; i < edit->num_add; i++) {
            put(w, edit->add[i].name.ptr, edit->add[i].name.len);
            PUT_LIT(w, ": ");
            put(w, edit->add[i].value.ptr, edit->add[i].value.len);
            PUT_LIT(w, "\r\n");
        }
    }
    PUT_LIT(w, "\r\n");
    return w->overflow ? RM_HTTP1_E_NOSPACE : (ssize_t)w->len;
}

ssize_t rm_http1_serialize_request(const rm_http1_request_t *req, const rm_http1_edit_t *edit,
                                   char *out, size_t cap)
{
    writer_t w = {.out = out, .cap = cap};

    if (req == NULL || (out == NULL && cap != 0) || !adds_valid(edit))
        return RM_HTTP1_E_ARG;
    put(&w, req->method_name.ptr, req->method_name.len);
    PUT_LIT(&w, " ");
    put(&w, req->target.ptr, req->target.len);
    PUT_LIT(&w, " HTTP/1.1\r\n");
    put_fields(&w, req->headers, req->num_headers, edit, req->flags);
    return finish(&w, edit);
}

ssize_t rm_http1_serialize_response(const rm_http1_response_t *resp, const rm_http1_edit_t *edit,
                                    char *out, size_t cap)
{
    writer_t w = {.out = out, .cap = cap};
    char code[3];

    if (resp == NULL || (out == NULL && cap != 0) || !adds_valid(edit) || resp->status < 100 ||
        resp->status > 599)
        return RM_HTTP1_E_ARG;
    code[0] = (char)('0' + resp->status / 100);
    code[1] = (char)('0' + resp->status / 10 % 10);
    code[2] = (char)('0' + resp->status % 10);
    PUT_LIT(&w, "HTTP/1.1 ");
    put(&w, code, 3);
    PUT_LIT(&w, " ");
    put(&w, resp->status_text.ptr, resp->status_text.len);
    PUT_LIT(&w, "\r\n");
    put_fields(&w, resp->headers, resp->num_headers, edit, resp->flags);
    return finish(&w, edit);
}
