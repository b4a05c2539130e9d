/* dataplane/codec/h1_server.h — the HTTP/1 codec's server side: a downstream connection's bytes
 * into neutral request heads and decoded body spans (dataplane/message), and neutral responses
 * back into HTTP/1.1 bytes.
 *
 * Pure over the connection's two buffers: no socket, no loop, so every rule has a unit test
 * (h1_server_test.c). The strict framing stays dataplane/http1's; this layer adds what a proxy
 * facing HTTP/1 clients decides: keep-alive, the response's framing towards this client (its
 * length, chunked re-encoding, or the close), 1xx and chunked never to HTTP/1.0 clients,
 * Upgrade's switch to raw bytes, and local replies.
 *
 * One request at a time: pipelined requests wait in the input buffer until the response to the
 * one before is written. Loop thread of the connection's owner.
 */
#ifndef REMORA_DATAPLANE_CODEC_H1_SERVER_H
#define REMORA_DATAPLANE_CODEC_H1_SERVER_H

#include <stdbool.h>

#include "dataplane/buffer/buffer.h"
#include "dataplane/http1/http1.h"
#include "dataplane/message/message-t.h"

/* How the response's body goes to this client. */
typedef enum rm_h1_out {
    RM_H1_OUT_NONE = 0, /* no body (HEAD, 204, 304, 1xx), or nothing written yet */
    RM_H1_OUT_LENGTH,   /* Content-Length: the bytes as they come */
    RM_H1_OUT_CHUNKED,  /* unknown length to an HTTP/1.1 client: chunks we frame */
    RM_H1_OUT_CLOSE,    /* unknown length to an HTTP/1.0 client: delimited by our close */
    RM_H1_OUT_TUNNEL,   /* after 101 (or 2xx to CONNECT): raw bytes both ways */
} rm_h1_out_t;

typedef struct rm_h1_server {
    rm_buf_t *in, *out;         /* borrowed: the connection's buffers */
    rm_http1_header_t *scratch; /* borrowed: the parser's field array (scratch_cap entries) */
    size_t scratch_cap;
    rm_http1_limits_t limits;
    rm_http1_request_t req; /* the head being received */
    /* The request in progress, from read_head until the next one. */
    rm_http1_body_t body; /* its body's framing (TUNNEL once upgraded) */
    uint64_t remaining;   /* Content-Length bytes still to read */
    rm_http1_chunked_t chunks;
    size_t consume;   /* input bytes behind the span body_next gave, consumed by body_consume */
    bool chunks_done; /* a chunked body's last chunk was read */
    bool keepalive;   /* the client allows another request after this one */
    uint8_t version;  /* 10 or 11 */
    rm_method_t method;
    /* The response. */
    rm_h1_out_t out_framing;
    bool close; /* the connection closes after this response */
} rm_h1_server_t;

/* in/out: the connection's buffers; scratch: an array of cap fields the parser fills (a worker's
 * scratch: heads are parsed one at a time and copied by whoever keeps them). Borrowed. */
void rm_h1_server_init(rm_h1_server_t *st, rm_buf_t *in, rm_buf_t *out, rm_http1_header_t *scratch,
                       size_t cap, size_t max_head_bytes, size_t max_headers);

/* Prepares for the next request on the connection. */
void rm_h1_server_next(rm_h1_server_t *st);

/* Parses the next request head from `in`. Returns the head's length (> 0) with *head filled (its
 * spans borrow from `in` and the scratch array until rm_h1_server_head_consumed), 0 when more
 * bytes are needed, or a negative error with *status and *reason for the reply (400, 408, 414,
 * 431, 501, 505: the connection must close after it). */
int rm_h1_server_read_head(rm_h1_server_t *st, rm_request_head_t *head, int *status,
                           const char **reason);

/* The head's bytes may go (its spans were copied). */
void rm_h1_server_head_consumed(rm_h1_server_t *st, size_t head_len);

/* The next piece of the request body, at most `room` bytes: DATA with *data borrowed from `in`
 * until rm_h1_server_body_consume; END; WAIT for more input; ERROR for malformed chunked framing
 * (st->chunks.error_reason). In a tunnel every byte is DATA and END never comes (EOF ends it). */
rm_body_event_t rm_h1_server_body_next(rm_h1_server_t *st, size_t room, rm_span_t *data);
void rm_h1_server_body_consume(rm_h1_server_t *st);

/* True once the request's body was read whole (or it had none); never in a tunnel. */
bool rm_h1_server_body_done(const rm_h1_server_t *st);

/* Raw bytes both ways from now on (a tunnel from the first byte, no request head). */
void rm_h1_server_tunnel(rm_h1_server_t *st);

/* Writes a response head. An interim one (RM_MSG_F_INTERIM) goes only to HTTP/1.1 clients; 101
 * turns the connection into a tunnel; otherwise the body's framing towards this client is
 * chosen (see rm_h1_out_t) and Connection: close added when close_wanted, the client asked for
 * it, or the framing needs it. edit: fields to drop and add (NULL: none). Returns 0 or a
 * negative error (RM_BUF_EFULL, RM_BUF_ENOMEM). Added fields must be valid as they are
 * (message-t.h's rm_field_edit_t). */
int rm_h1_server_write_head(rm_h1_server_t *st, const rm_response_head_t *h,
                            const rm_field_edit_t *edit, bool close_wanted);

/* Response body bytes, framed as the head chose; then the end (the last chunk). 0 or an error. */
int rm_h1_server_write_data(rm_h1_server_t *st, const char *p, size_t n);
int rm_h1_server_write_end(rm_h1_server_t *st);

/* Body bytes write_data may take now without passing `high_water` bytes queued in `out`. */
size_t rm_h1_server_write_room(const rm_h1_server_t *st, size_t high_water);

/* A whole response of the proxy's own: status, extra fields, a text body. Closes after it when
 * close_wanted or the client does not keep alive. 0 or an error. */
int rm_h1_server_write_reply(rm_h1_server_t *st, int status, const rm_field_t *extra, size_t nextra,
                             const char *content_type, const char *body, size_t len,
                             bool close_wanted);

#endif
