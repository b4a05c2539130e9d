/* dataplane/message/message-t.h — the protocol-neutral HTTP message the exchange works on (types
 * only; helpers in message.h).
 *
 * Every codec turns its wire format into these heads and back (h2o's h2o_req_t, HAProxy's HTX):
 * the HTTP/1 codec today, HTTP/2 beside it. Routing, retries, limits, shadowing and stats read
 * only this. Bodies are not part of the head: they move as spans of decoded bytes (chunked
 * framing removed) through the codecs' body calls, ending with an end-of-stream.
 *
 * Every span borrows: from the connection's input buffer while the head is being decoded, or
 * from the owner's copy (rm_msg_request_copy) afterwards.
 */
#ifndef REMORA_DATAPLANE_MESSAGE_MESSAGE_T_H
#define REMORA_DATAPLANE_MESSAGE_MESSAGE_T_H

#include <stddef.h>
#include <stdint.h>

/* A byte range. Borrowed: ptr points into a buffer someone else owns. */
typedef struct rm_span {
    const char *ptr;
    size_t len;
} rm_span_t;

/* One header field (or trailer field). Names may keep their case from HTTP/1 callers; compare
 * them case-insensitively. */
typedef struct rm_field {
    rm_span_t name;
    rm_span_t value;
} rm_field_t;

/* The methods the proxy treats specially; every other valid token is RM_METHOD_OTHER. */
typedef enum rm_method {
    RM_METHOD_OTHER = 0,
    RM_METHOD_GET,
    RM_METHOD_HEAD,
    RM_METHOD_POST,
    RM_METHOD_PUT,
    RM_METHOD_DELETE,
    RM_METHOD_CONNECT,
    RM_METHOD_OPTIONS,
    RM_METHOD_TRACE,
    RM_METHOD_PATCH,
} rm_method_t;

/* Message flags (rm_request_head_t.flags, rm_response_head_t.flags). */
#define RM_MSG_F_BODY   (1u << 0) /* body bytes follow the head; else the head ends it */
#define RM_MSG_F_LENGTH (1u << 1) /* content_length is the body's exact length */
#define RM_MSG_F_UPGRADE                                                                           \
    (1u << 2)                         /* request: asks for a tunnel (Upgrade, CONNECT);            \
                                         response: the tunnel begins (101, 2xx to CONNECT) */
#define RM_MSG_F_EXPECT_100 (1u << 3) /* request: Expect: 100-continue */
#define RM_MSG_F_CLOSE      (1u << 4) /* the sender closes its connection after this message */
#define RM_MSG_F_INTERIM    (1u << 5) /* response: 1xx other than 101; the final one follows */
#define RM_MSG_F_CONN_NAMED                                                                        \
    (1u << 6) /* an HTTP/1 Connection field names further hop-by-hop                               \
                 fields: encoders look them up to drop them */

/* A request head. Connection-specific fields of an HTTP/1 caller (Connection and the fields it
 * names, Keep-Alive, TE, Upgrade...) may remain in `fields`: every encoder drops them. Host is
 * not among the fields an encoder writes: `authority` is the target's authority. */
typedef struct rm_request_head {
    rm_method_t method;
    rm_span_t method_name; /* as sent ("GET", or any token) */
    rm_span_t authority;   /* host[:port]: the absolute target's, :authority, or Host */
    rm_span_t path;        /* origin-form path and query ("/" at least); "*"; empty for CONNECT */
    const rm_field_t *fields;
    size_t nfields;
    uint64_t content_length; /* with RM_MSG_F_LENGTH */
    unsigned flags;          /* RM_MSG_F_* */
    uint8_t version;         /* the caller's protocol: 10, 11 (HTTP/1.x) or 20 */
    /* At least the bytes of the fields' names and values plus 4 per field (": ", CRLF), so an
     * encoder can reserve its output without walking them; 0: unknown (the encoder counts). */
    size_t fields_size;
} rm_request_head_t;

/* A response head; same conventions. */
typedef struct rm_response_head {
    int status;       /* 100..599 */
    rm_span_t reason; /* HTTP/1 reason phrase, may be empty */
    const rm_field_t *fields;
    size_t nfields;
    uint64_t content_length; /* with RM_MSG_F_LENGTH */
    unsigned flags;          /* RM_MSG_F_* */
    size_t fields_size;      /* as rm_request_head_t's */
} rm_response_head_t;

/* Changes an encoder makes to a head's fields on the way out: drop every field named in
 * `remove` or starting with `remove_prefix` (case-insensitive), then append `add`. Borrowed for
 * the call. Added fields must be valid as they are (token names; values without CR, LF, NUL or
 * another control byte: taken from a decoded head, or generated): encoders write them unchecked. */
typedef struct rm_field_edit {
    const rm_span_t *remove;
    size_t nremove;
    rm_span_t remove_prefix; /* also every field whose name starts with this; empty: none */
    const rm_field_t *add;
    size_t nadd;
} rm_field_edit_t;

/* What a body read gives. */
typedef enum rm_body_event {
    RM_BODY_WAIT = 0, /* nothing now: more input (or more room) is needed */
    RM_BODY_DATA,     /* a non-empty span of body bytes */
    RM_BODY_END,      /* the body is complete (trailers, if any, were validated) */
    RM_BODY_ERROR,    /* malformed framing: the message cannot be trusted */
} rm_body_event_t;

#endif
