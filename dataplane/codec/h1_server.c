/* dataplane/codec/h1_server.c — the HTTP/1 codec's server side (see h1_server.h). */
#include "dataplane/codec/h1_server.h"

#include <stdio.h>
#include <string.h>

#include "common/fmt.h"
#include "dataplane/codec/h1_common.h"

_Static_assert((int)RM_HTTP1_METHOD_PATCH == (int)RM_METHOD_PATCH &&
                   (int)RM_HTTP1_METHOD_CONNECT == (int)RM_METHOD_CONNECT &&
                   (int)RM_HTTP1_METHOD_OTHER == (int)RM_METHOD_OTHER,
               "http1 methods are the neutral message's, value for value");

void rm_h1_server_init(rm_h1_server_t *st, rm_buf_t *in, rm_buf_t *out, rm_http1_header_t *scratch,
                       size_t cap, size_t max_head_bytes, size_t max_headers)
{
    memset(st, 0, sizeof(*st));
    st->in = in;
    st->out = out;
    st->scratch = scratch;
    st->scratch_cap = cap;
    rm_http1_limits_init(&st->limits);
    st->limits.max_head_bytes = max_head_bytes;
    st->limits.max_headers = max_headers;
    rm_http1_request_init(&st->req, scratch, cap);
}

void rm_h1_server_next(rm_h1_server_t *st)
{
    rm_http1_request_init(&st->req, st->scratch, st->scratch_cap);
    st->body = RM_HTTP1_BODY_NONE;
    st->remaining = 0;
    st->consume = 0;
    st->chunks_done = false;
    st->method = RM_METHOD_OTHER; /* a refused next head's reply carries its body */
    st->out_framing = RM_H1_OUT_NONE;
    st->close = false;
}

int rm_h1_server_read_head(rm_h1_server_t *st, rm_request_head_t *head, int *status,
                           const char **reason)
{
    const rm_http1_request_t *req = &st->req;
    if (st->in->len == 0)
        return 0;
    int n = rm_http1_parse_request(rm_buf_head(st->in), st->in->len, &st->req, &st->limits);
    if (n == RM_HTTP1_INCOMPLETE) {
        if (rm_buf_room(st->in) == 0 || st->in->len >= st->limits.max_head_bytes) {
            *status = 431;
            *reason = "request head too large";
            return RM_HTTP1_E_HEAD_TOO_LARGE;
        }
        return 0;
    }
    if (n < 0) {
        *status = req->error_status;
        *reason = req->error_reason;
        return n;
    }
    st->method = (rm_method_t)req->method;
    st->version = req->minor_version == 0 ? 10 : 11;
    st->keepalive = (req->flags & RM_HTTP1_F_KEEP_ALIVE) != 0;
    st->body = req->body;
    st->remaining = req->body == RM_HTTP1_BODY_CONTENT_LENGTH ? req->content_length : 0;
    if (req->body == RM_HTTP1_BODY_CHUNKED)
        rm_http1_chunked_init(&st->chunks);
    /* RFC 9110 7.8: Upgrade in an HTTP/1.0 request is ignored (a 101 could not go back). */
    bool tunnel_wanted = req->method == RM_HTTP1_METHOD_CONNECT ||
                         (req->minor_version == 1 && (req->flags & RM_HTTP1_F_UPGRADE) &&
                          (req->flags & RM_HTTP1_F_CONN_UPGRADE));
    if (req->body == RM_HTTP1_BODY_TUNNEL)
        st->body = RM_HTTP1_BODY_NONE; /* CONNECT: no content; the tunnel follows a 2xx */
    unsigned flags = 0;
    if (st->body == RM_HTTP1_BODY_CHUNKED ||
        (st->body == RM_HTTP1_BODY_CONTENT_LENGTH && req->content_length > 0))
        flags |= RM_MSG_F_BODY;
    if (req->body == RM_HTTP1_BODY_CONTENT_LENGTH)
        flags |= RM_MSG_F_LENGTH;
    if (tunnel_wanted)
        flags |= RM_MSG_F_UPGRADE;
    if (req->flags & RM_HTTP1_F_EXPECT_CONTINUE)
        flags |= RM_MSG_F_EXPECT_100;
    if (req->flags & RM_HTTP1_F_CONN_OTHER)
        flags |= RM_MSG_F_CONN_NAMED;
    if (!st->keepalive)
        flags |= RM_MSG_F_CLOSE;
    rm_span_t path = req->path;
    if (req->target_form == RM_HTTP1_TARGET_ORIGIN)
        path = req->target;
    *head = (rm_request_head_t){
        .method = st->method,
        .method_name = req->method_name,
        .authority = req->authority.ptr != NULL ? req->authority : req->host,
        .path = path,
        .fields = req->headers,
        .nfields = req->num_headers,
        .content_length = req->content_length,
        .flags = flags,
        .version = st->version,
        .fields_size = (size_t)n, /* the head as received bounds its fields */
    };
    return n;
}

void rm_h1_server_head_consumed(rm_h1_server_t *st, size_t head_len)
{
    rm_buf_consume(st->in, head_len);
}

rm_body_event_t rm_h1_server_body_next(rm_h1_server_t *st, size_t room, rm_span_t *data)
{
    if (st->out_framing == RM_H1_OUT_TUNNEL)
        st->body = RM_HTTP1_BODY_TUNNEL;
    rm_body_event_t ev =
        rm__h1_body_next(st->in, st->body, &st->remaining, &st->chunks, room, data, &st->consume);
    if (ev == RM_BODY_END && st->body == RM_HTTP1_BODY_CHUNKED)
        st->chunks_done = true;
    return ev;
}

void rm_h1_server_body_consume(rm_h1_server_t *st)
{
    rm_buf_consume(st->in, st->consume);
    st->consume = 0;
}

bool rm_h1_server_body_done(const rm_h1_server_t *st)
{
    switch (st->body) {
    case RM_HTTP1_BODY_NONE:
        return true;
    case RM_HTTP1_BODY_CONTENT_LENGTH:
        return st->remaining == 0;
    case RM_HTTP1_BODY_CHUNKED:
        return st->chunks_done;
    default:
        return false;
    }
}

/* The framing fields the codec writes itself; the upstream's go. */
static const rm_span_t framing_fields[] = {{"content-length", 14}, {"transfer-encoding", 17}};

int rm_h1_server_write_head(rm_h1_server_t *st, const rm_response_head_t *h,
                            const rm_field_edit_t *edit, bool close_wanted)
{
    bool interim = (h->flags & RM_MSG_F_INTERIM) != 0;
    if (interim && st->version < 11)
        return 0; /* RFC 9110 15.2: no 1xx to an HTTP/1.0 client */
    rm_span_t remove[16];
    size_t nremove = 0;
    rm_field_t add[20];
    size_t nadd = 0;
    if (edit != NULL) {
        for (size_t i = 0; i < edit->nremove && nremove < 14; i++)
            remove[nremove++] = edit->remove[i];
        for (size_t i = 0; i < edit->nadd && nadd < 16; i++)
            add[nadd++] = edit->add[i];
    }
    char length[24];
    if (!interim) {
        bool upgrade = (h->flags & RM_MSG_F_UPGRADE) != 0;
        bool body = (h->flags & RM_MSG_F_BODY) != 0;
        if (upgrade) {
            st->out_framing = RM_H1_OUT_TUNNEL;
        } else if (!body) {
            st->out_framing = RM_H1_OUT_NONE;
            /* An empty body the client must not wait for: say its length, unless the status
             * or the method already says there is none (a HEAD response's Content-Length is
             * the resource's, and passes). */
            bool bodiless = st->method == RM_METHOD_HEAD || h->status == 204 || h->status == 304 ||
                            h->status < 200;
            if (!bodiless &&
                rm_http1_header_find(h->fields, h->nfields, "content-length", 14) < 0) {
                remove[nremove++] = framing_fields[1];
                add[nadd++] = (rm_field_t){{"content-length", 14}, {"0", 1}};
            } else if (h->status == 204) {
                /* RFC 9110 8.6, RFC 9112 6.1: no framing fields on a 204 */
                remove[nremove++] = framing_fields[0];
                remove[nremove++] = framing_fields[1];
            } else if (st->version < 11) {
                remove[nremove++] = framing_fields[1]; /* no chunked towards HTTP/1.0 */
            }
        } else {
            remove[nremove++] = framing_fields[0];
            remove[nremove++] = framing_fields[1];
            if (h->flags & RM_MSG_F_LENGTH) {
                st->out_framing = RM_H1_OUT_LENGTH;
                int l = (int)(rm__fmt_uint(length, h->content_length) - length);
                add[nadd++] = (rm_field_t){{"content-length", 14}, {length, (size_t)l}};
            } else if (st->version >= 11) {
                st->out_framing = RM_H1_OUT_CHUNKED;
                add[nadd++] = (rm_field_t){{"transfer-encoding", 17}, {"chunked", 7}};
            } else {
                st->out_framing = RM_H1_OUT_CLOSE; /* RFC 9112 6.1: no chunked to HTTP/1.0 */
            }
        }
        if (h->status == 101) {
            /* Upgrade is hop-by-hop, but the switch must reach the client: re-added. */
            ssize_t u = rm_http1_header_find(h->fields, h->nfields, "upgrade", 7);
            add[nadd++] = (rm_field_t){{"connection", 10}, {"upgrade", 7}};
            if (u >= 0)
                add[nadd++] = (rm_field_t){{"upgrade", 7}, h->fields[u].value};
            st->close = true; /* nothing follows a tunnel on this connection */
        } else {
            st->close =
                st->close || close_wanted || !st->keepalive || st->out_framing == RM_H1_OUT_CLOSE;
            if (st->close)
                add[nadd++] = (rm_field_t){{"connection", 10}, {"close", 5}};
            else if (st->version < 11) /* HTTP/1.0 closes unless told otherwise (RFC 9112 C.2.2) */
                add[nadd++] = (rm_field_t){{"connection", 10}, {"keep-alive", 10}};
        }
    }
    rm_http1_response_t resp = {
        .headers = (rm_http1_header_t *)h->fields,
        .num_headers = h->nfields,
        .status = h->status,
        .status_text = h->reason.len > 0 ? h->reason
                                         : (rm_span_t){rm_http1_reason_phrase(h->status),
                                                       strlen(rm_http1_reason_phrase(h->status))},
        .flags = (h->flags & RM_MSG_F_CONN_NAMED) ? RM_HTTP1_F_CONN_OTHER : 0,
    };
    rm_http1_edit_t e = rm__h1_edit(remove, nremove, add, nadd, edit);
    size_t need =
        rm__h1_fields_size(h->fields, h->nfields, h->fields_size, edit) + resp.status_text.len + 96;
    int err = 0;
    char *out = rm_buf_reserve(st->out, need, &err);
    if (out == NULL)
        return err;
    ssize_t n = rm_http1_serialize_response(&resp, &e, out, need);
    if (n < 0)
        return (int)n;
    rm_buf_commit(st->out, (size_t)n);
    return 0;
}

int rm_h1_server_write_data(rm_h1_server_t *st, const char *p, size_t n)
{
    switch (st->out_framing) {
    case RM_H1_OUT_NONE:
        return 0; /* a body where none belongs (HEAD): never written */
    case RM_H1_OUT_CHUNKED:
        return n == 0 ? 0 : rm__h1_put_chunk(st->out, p, n);
    default:
        return rm_buf_append(st->out, p, n);
    }
}

int rm_h1_server_write_end(rm_h1_server_t *st)
{
    return st->out_framing == RM_H1_OUT_CHUNKED ? rm__h1_put_last_chunk(st->out) : 0;
}

size_t rm_h1_server_write_room(const rm_h1_server_t *st, size_t high_water)
{
    size_t queued = st->out->len;
    size_t overhead = st->out_framing == RM_H1_OUT_CHUNKED ? RM__H1_CHUNK_OVERHEAD : 0;
    return queued + overhead < high_water ? high_water - queued - overhead : 0;
}

int rm_h1_server_write_reply(rm_h1_server_t *st, int status, const rm_field_t *extra, size_t nextra,
                             const char *content_type, const char *body, size_t len,
                             bool close_wanted)
{
    st->close = st->close || close_wanted || !st->keepalive;
    size_t need = 184 + len + strlen(content_type);
    for (size_t i = 0; i < nextra; i++)
        need += extra[i].name.len + extra[i].value.len + 4;
    int err = 0;
    char *out = rm_buf_reserve(st->out, need, &err);
    if (out == NULL)
        return err;
    int n = snprintf(out, need, "HTTP/1.1 %d %s\r\ncontent-length: %zu\r\ncontent-type: %s\r\n",
                     status, rm_http1_reason_phrase(status), len, content_type);
    size_t at = (size_t)n;
    for (size_t i = 0; i < nextra; i++) {
        memcpy(out + at, extra[i].name.ptr, extra[i].name.len);
        at += extra[i].name.len;
        memcpy(out + at, ": ", 2);
        at += 2;
        memcpy(out + at, extra[i].value.ptr, extra[i].value.len);
        at += extra[i].value.len;
        memcpy(out + at, "\r\n", 2);
        at += 2;
    }
    if (st->close) {
        memcpy(out + at, "connection: close\r\n", 19);
        at += 19;
    } else if (st->version < 11) {
        memcpy(out + at, "connection: keep-alive\r\n", 24);
        at += 24;
    }
    memcpy(out + at, "\r\n", 2);
    at += 2;
    if (st->method != RM_METHOD_HEAD) { /* a response to HEAD has no content (RFC 9110 9.3.2) */
        memcpy(out + at, body, len);
        at += len;
    }
    rm_buf_commit(st->out, at);
    st->out_framing = RM_H1_OUT_NONE;
    return 0;
}

void rm_h1_server_tunnel(rm_h1_server_t *st)
{
    st->body = RM_HTTP1_BODY_TUNNEL;
    st->out_framing = RM_H1_OUT_TUNNEL;
    st->close = true;
}
