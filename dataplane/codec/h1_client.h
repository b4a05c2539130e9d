/* dataplane/codec/h1_client.h — the HTTP/1 codec's client side: neutral requests into HTTP/1.1
 * bytes towards an upstream, and its response bytes into neutral heads and decoded body spans.
 *
 * Pure over the connection's two buffers, like h1_server.h. One request at a time per
 * connection (HTTP/1 has no multiplexing); a connection is reusable once both messages ended
 * cleanly and no close was announced. Loop thread of the connection's owner.
 */
#ifndef REMORA_DATAPLANE_CODEC_H1_CLIENT_H
#define REMORA_DATAPLANE_CODEC_H1_CLIENT_H

#include <stdbool.h>

#include "dataplane/buffer/buffer.h"
#include "dataplane/http1/http1.h"
#include "dataplane/message/message-t.h"

typedef struct rm_h1_client {
    rm_buf_t *in, *out;         /* borrowed: the connection's buffers */
    rm_http1_header_t *scratch; /* borrowed: the parser's field array */
    size_t scratch_cap;
    size_t max_headers;
    /* The request being written. */
    bool req_chunked; /* its body goes out in chunks we frame */
    bool req_done;
    rm_method_t method;
    /* The response being read. */
    rm_http1_response_t resp;
    int head_len; /* of the head read_head returned, until head_done */
    bool head_done;
    rm_http1_body_t body;
    uint64_t remaining;
    rm_http1_chunked_t chunks;
    size_t consume;
    bool resp_done;
    bool resp_close; /* the upstream closes after this response */
} rm_h1_client_t;

void rm_h1_client_init(rm_h1_client_t *st, rm_buf_t *in, rm_buf_t *out, rm_http1_header_t *scratch,
                       size_t cap, size_t max_headers);

/* Writes a request head for `h` (always HTTP/1.1, origin-form, Host from h->authority; Upgrade
 * kept for a tunnel; the body's framing from h's flags: Content-Length, else chunked), then
 * resets the response state for its answer. edit: fields to drop and add. 0 or an error. */
int rm_h1_client_write_head(rm_h1_client_t *st, const rm_request_head_t *h,
                            const rm_field_edit_t *edit);

/* Request body bytes (framed as the head said), then its end. 0 or an error. */
int rm_h1_client_write_data(rm_h1_client_t *st, const char *p, size_t n);
int rm_h1_client_write_end(rm_h1_client_t *st);

/* Body bytes write_data may take now without passing `high_water` queued bytes. */
size_t rm_h1_client_write_room(const rm_h1_client_t *st, size_t high_water);

/* Parses the response head from `in`: 1 with *h filled (spans borrow from `in` until
 * rm_h1_client_head_done), 0 when more bytes are needed, a negative error for a malformed or
 * oversized head (st->resp.error_reason). An interim head (RM_MSG_F_INTERIM) is followed by
 * another: call read_head again after head_done. */
int rm_h1_client_read_head(rm_h1_client_t *st, rm_response_head_t *h);
void rm_h1_client_head_done(rm_h1_client_t *st);

/* The response body, as rm_h1_server_body_next. A body delimited by the close (and a tunnel)
 * never ENDs: the caller ends it at EOF. */
rm_body_event_t rm_h1_client_body_next(rm_h1_client_t *st, size_t room, rm_span_t *data);
void rm_h1_client_body_consume(rm_h1_client_t *st);

/* True when the response's body ends with the connection (until close, or a tunnel). */
bool rm_h1_client_ends_at_close(const rm_h1_client_t *st);

/* True when the connection may carry another request: both messages complete, nothing stray,
 * no close announced. */
bool rm_h1_client_reusable(const rm_h1_client_t *st);

/* Raw bytes both ways from now on (a tunnel from the first byte): no heads, nothing framed, the
 * response body ends at the close. */
void rm_h1_client_tunnel(rm_h1_client_t *st);

/* The request's method, for framing its response (HEAD, CONNECT). */
static inline void rm_h1_client_expect(rm_h1_client_t *st, rm_method_t method)
{
    st->method = method;
}

#endif
