/* dataplane/codec/h1_client.c — the HTTP/1 codec's client side (see h1_client.h). */
#include "dataplane/codec/h1_client.h"

#include <stdio.h>
#include <string.h>

#include "common/fmt.h"
#include "dataplane/codec/h1_common.h"

void rm_h1_client_init(rm_h1_client_t *st, rm_buf_t *in, rm_buf_t *out, rm_http1_header_t *scratch,
                       size_t cap, size_t max_headers)
{
    memset(st, 0, sizeof(*st));
    st->in = in;
    st->out = out;
    st->scratch = scratch;
    st->scratch_cap = cap;
    st->max_headers = max_headers;
    rm_http1_response_init(&st->resp, scratch, cap < max_headers ? cap : max_headers);
}

/* Fields the encoder writes itself (Host from the authority, the body's framing) or that are
 * hop-by-hop beyond the serializer's list. */
static const rm_span_t own_fields[] = {
    {"host", 4}, {"content-length", 14}, {"transfer-encoding", 17}, {"expect", 6}};

int rm_h1_client_write_head(rm_h1_client_t *st, const rm_request_head_t *h,
                            const rm_field_edit_t *edit)
{
    rm_span_t remove[24];
    size_t nremove = 0;
    rm_field_t add[24];
    size_t nadd = 0;
    for (size_t i = 0; i < sizeof(own_fields) / sizeof(own_fields[0]); i++)
        remove[nremove++] = own_fields[i];
    /* Expect: 100-continue passes to the upstream, which answers it (the 100 comes back). */
    if (h->flags & RM_MSG_F_EXPECT_100)
        nremove--;
    bool connect = h->method == RM_METHOD_CONNECT;
    /* Every HTTP/1.1 request has Host, empty when the target has no authority (RFC 9112 3.2):
     * an HTTP/1.0 client may have sent none. The authority is the one value rewritten into
     * another field, so it is checked here whatever decoded it (added fields are not scanned). */
    for (size_t i = 0; i < h->authority.len; i++) {
        unsigned char ch = (unsigned char)h->authority.ptr[i];
        if (ch <= ' ' || ch == 0x7f)
            return RM_HTTP1_E_ARG;
    }
    add[nadd++] = (rm_field_t){{"host", 4}, h->authority};
    char length[24];
    st->req_chunked = false;
    if (h->flags & RM_MSG_F_LENGTH) {
        int l = (int)(rm__fmt_uint(length, h->content_length) - length);
        add[nadd++] = (rm_field_t){{"content-length", 14}, {length, (size_t)l}};
    } else if (h->flags & RM_MSG_F_BODY) {
        st->req_chunked = true;
        add[nadd++] = (rm_field_t){{"transfer-encoding", 17}, {"chunked", 7}};
    }
    if ((h->flags & RM_MSG_F_UPGRADE) && !connect) {
        /* Upgrade is hop-by-hop, but a WebSocket handshake must reach the app: re-added. */
        ssize_t u = rm_http1_header_find(h->fields, h->nfields, "upgrade", 7);
        if (u >= 0) {
            add[nadd++] = (rm_field_t){{"connection", 10}, {"upgrade", 7}};
            add[nadd++] = (rm_field_t){{"upgrade", 7}, h->fields[u].value};
        }
    }
    if (edit != NULL) {
        for (size_t i = 0; i < edit->nremove && nremove < 24; i++)
            remove[nremove++] = edit->remove[i];
        for (size_t i = 0; i < edit->nadd && nadd < 24; i++)
            add[nadd++] = edit->add[i];
    }
    /* Origin-form always starts with '/': "http://svc?q" arrives as the path "?q" (rare: the
     * target is copied with its slash, within the parser's request-line limit). */
    rm_span_t target = connect ? h->authority : h->path;
    char fixed[RM_HTTP1_DEFAULT_MAX_REQUEST_LINE + 1];
    if (!connect && (target.len == 0 || (target.ptr[0] != '/' && target.ptr[0] != '*'))) {
        if (target.len >= sizeof(fixed))
            return RM_HTTP1_E_ARG;
        fixed[0] = '/';
        if (target.len > 0)
            memcpy(fixed + 1, target.ptr, target.len);
        target = (rm_span_t){fixed, target.len + 1};
    }
    rm_http1_request_t req = {
        .headers = (rm_http1_header_t *)h->fields,
        .num_headers = h->nfields,
        .method_name = h->method_name,
        .target = target,
        .flags = (h->flags & RM_MSG_F_CONN_NAMED) ? RM_HTTP1_F_CONN_OTHER : 0,
    };
    rm_http1_edit_t e = rm__h1_edit(remove, nremove, add, nadd, edit);
    size_t need = rm__h1_fields_size(h->fields, h->nfields, h->fields_size, edit) +
                  h->authority.len + target.len + h->method_name.len + 160;
    int err = 0;
    char *out = rm_buf_reserve(st->out, need, &err);
    if (out == NULL)
        return err;
    ssize_t n = rm_http1_serialize_request(&req, &e, out, need);
    if (n < 0)
        return (int)n;
    rm_buf_commit(st->out, (size_t)n);
    st->req_done = !(h->flags & RM_MSG_F_BODY);
    st->method = h->method;
    rm_http1_response_init(&st->resp, st->scratch,
                           st->scratch_cap < st->max_headers ? st->scratch_cap : st->max_headers);
    st->head_len = 0;
    st->head_done = false;
    st->resp_done = false;
    st->resp_close = false;
    st->body = RM_HTTP1_BODY_NONE;
    st->consume = 0;
    return 0;
}

int rm_h1_client_write_data(rm_h1_client_t *st, const char *p, size_t n)
{
    if (n == 0)
        return 0;
    return st->req_chunked ? rm__h1_put_chunk(st->out, p, n) : rm_buf_append(st->out, p, n);
}

int rm_h1_client_write_end(rm_h1_client_t *st)
{
    st->req_done = true;
    return st->req_chunked ? rm__h1_put_last_chunk(st->out) : 0;
}

size_t rm_h1_client_write_room(const rm_h1_client_t *st, size_t high_water)
{
    size_t overhead = st->req_chunked ? RM__H1_CHUNK_OVERHEAD : 0;
    return st->out->len + overhead < high_water ? high_water - st->out->len - overhead : 0;
}

int rm_h1_client_read_head(rm_h1_client_t *st, rm_response_head_t *h)
{
    if (st->in->len == 0)
        return 0;
    int n =
        rm_http1_parse_response(rm_buf_head(st->in), st->in->len, &st->resp, NULL, (int)st->method);
    if (n == RM_HTTP1_INCOMPLETE) {
        if (rm_buf_room(st->in) > 0)
            return 0;
        st->resp.error_status = 502;
        st->resp.error_reason = "response head too large";
        return RM_HTTP1_E_HEAD_TOO_LARGE;
    }
    if (n < 0)
        return n;
    const rm_http1_response_t *r = &st->resp;
    unsigned flags = 0;
    bool interim = r->status >= 100 && r->status < 200 && r->status != 101;
    if (interim)
        flags |= RM_MSG_F_INTERIM;
    if (r->body == RM_HTTP1_BODY_TUNNEL)
        flags |= RM_MSG_F_UPGRADE;
    else if (r->body == RM_HTTP1_BODY_CHUNKED || r->body == RM_HTTP1_BODY_UNTIL_CLOSE ||
             (r->body == RM_HTTP1_BODY_CONTENT_LENGTH && r->content_length > 0))
        flags |= RM_MSG_F_BODY;
    if (r->body == RM_HTTP1_BODY_CONTENT_LENGTH)
        flags |= RM_MSG_F_LENGTH;
    if (!(r->flags & RM_HTTP1_F_KEEP_ALIVE) || r->body == RM_HTTP1_BODY_UNTIL_CLOSE)
        flags |= RM_MSG_F_CLOSE;
    if (r->flags & RM_HTTP1_F_CONN_OTHER)
        flags |= RM_MSG_F_CONN_NAMED;
    *h = (rm_response_head_t){.fields_size = (size_t)n, /* the head as received bounds them */
                              .status = r->status,
                              .reason = r->status_text,
                              .fields = r->headers,
                              .nfields = r->num_headers,
                              .content_length = r->content_length,
                              .flags = flags};
    st->head_len = n;
    return 1;
}

void rm_h1_client_head_done(rm_h1_client_t *st)
{
    const rm_http1_response_t *r = &st->resp;
    rm_buf_consume(st->in, (size_t)st->head_len);
    st->head_len = 0;
    if (r->status >= 100 && r->status < 200 && r->status != 101) {
        rm_http1_response_init(&st->resp, st->scratch,
                               st->scratch_cap < st->max_headers ? st->scratch_cap
                                                                 : st->max_headers);
        return; /* the final response follows */
    }
    st->head_done = true;
    st->body = r->body;
    st->remaining = r->body == RM_HTTP1_BODY_CONTENT_LENGTH ? r->content_length : 0;
    st->resp_close = !(r->flags & RM_HTTP1_F_KEEP_ALIVE);
    if (r->body == RM_HTTP1_BODY_CHUNKED)
        rm_http1_chunked_init(&st->chunks);
    if (r->body == RM_HTTP1_BODY_NONE ||
        (r->body == RM_HTTP1_BODY_CONTENT_LENGTH && r->content_length == 0))
        st->resp_done = true;
}

rm_body_event_t rm_h1_client_body_next(rm_h1_client_t *st, size_t room, rm_span_t *data)
{
    if (st->resp_done)
        return RM_BODY_END;
    rm_body_event_t ev =
        rm__h1_body_next(st->in, st->body, &st->remaining, &st->chunks, room, data, &st->consume);
    if (ev == RM_BODY_END)
        st->resp_done = true;
    return ev;
}

void rm_h1_client_body_consume(rm_h1_client_t *st)
{
    rm_buf_consume(st->in, st->consume);
    st->consume = 0;
    if (st->body == RM_HTTP1_BODY_CONTENT_LENGTH && st->remaining == 0)
        st->resp_done = true;
}

bool rm_h1_client_ends_at_close(const rm_h1_client_t *st)
{
    return st->body == RM_HTTP1_BODY_UNTIL_CLOSE || st->body == RM_HTTP1_BODY_TUNNEL;
}

bool rm_h1_client_reusable(const rm_h1_client_t *st)
{
    return st->req_done && st->resp_done && !st->resp_close && !rm_h1_client_ends_at_close(st) &&
           st->in->len == 0 && st->out->len == 0;
}

void rm_h1_client_tunnel(rm_h1_client_t *st)
{
    st->req_chunked = false;
    st->req_done = true;
    st->head_done = true;
    st->body = RM_HTTP1_BODY_TUNNEL;
}
