/* dataplane/http1/http1-t.h — types of the strict HTTP/1.1 framing layer (types only; see http1.h).
 *
 * Every span points into a buffer the caller owns; nothing here owns memory. The parser never
 * allocates, so these structs can live in a connection object or on the stack.
 */
#ifndef REMORA_DATAPLANE_HTTP1_HTTP1_T_H
#define REMORA_DATAPLANE_HTTP1_HTTP1_T_H

#include <stddef.h>
#include <stdint.h>

#include "dataplane/message/message-t.h"

/* Return codes. Positive results (a head length, a decoder event) are documented per function.
 * Each error maps to the status a proxy answers; the parsers also store that status and a short,
 * more specific reason string in the struct they fill. Responses always map to 502: the proxy
 * answers its client, not the upstream. */
#define RM_HTTP1_E_SYNTAX            (-1)  /* 400 malformed start line or field line */
#define RM_HTTP1_INCOMPLETE          (-2)  /* not an error: more bytes are needed */
#define RM_HTTP1_E_LINE_ENDING       (-3)  /* 400 bare LF or bare CR */
#define RM_HTTP1_E_OBS_FOLD          (-4)  /* 400 field line starting with SP/HTAB */
#define RM_HTTP1_E_METHOD            (-5)  /* 400 method is not a token */
#define RM_HTTP1_E_TARGET            (-6)  /* 400 bad request-target or wrong form for the method */
#define RM_HTTP1_E_VERSION           (-7)  /* 505 HTTP/0.9, HTTP/2.0, anything but 1.0 and 1.1 */
#define RM_HTTP1_E_HEADER_NAME       (-8)  /* 400 empty name, bad byte, whitespace before ':' */
#define RM_HTTP1_E_HEADER_VALUE      (-9)  /* 400 NUL or another control byte in a value */
#define RM_HTTP1_E_HOST              (-10) /* 400 missing (HTTP/1.1), duplicate or invalid Host */
#define RM_HTTP1_E_CONTENT_LENGTH    (-11) /* 400 not digits, overflow, list, duplicate */
#define RM_HTTP1_E_TRANSFER_ENCODING (-12) /* 400 chunked not final, twice, syntax, on HTTP/1.0 */
#define RM_HTTP1_E_CL_AND_TE         (-13) /* 400 Content-Length together with Transfer-Encoding */
#define RM_HTTP1_E_TE_UNSUPPORTED    (-14) /* 501 a coding other than chunked precedes chunked */
#define RM_HTTP1_E_LINE_TOO_LONG     (-15) /* 414 request line over limits.max_request_line */
#define RM_HTTP1_E_HEAD_TOO_LARGE    (-16) /* 431 head over limits.max_head_bytes */
#define RM_HTTP1_E_TOO_MANY_HEADERS  (-17) /* 431 more field lines than limits.max_headers */
#define RM_HTTP1_E_STATUS            (-18) /* 502 response status code not 100..599 */
#define RM_HTTP1_E_CONNECTION        (-19) /* 400 Connection option that is not a token */
#define RM_HTTP1_E_CHUNK_SIZE        (-20) /* chunk-size line: non-hex, > 16 digits, CR without LF */
#define RM_HTTP1_E_CHUNK_EXT         (-21) /* chunk extension malformed or over its limit */
#define RM_HTTP1_E_CHUNK_DATA        (-22) /* chunk data not followed by CRLF */
#define RM_HTTP1_E_TRAILER           (-23) /* malformed or forbidden trailer field */
#define RM_HTTP1_E_TRAILER_TOO_LARGE (-24) /* trailer section over its limit */
#define RM_HTTP1_E_NOSPACE           (-25) /* serializer: output buffer too small */
#define RM_HTTP1_E_ARG               (-26) /* caller error: bad argument */

/* Chunked decoder events (positive). */
#define RM_HTTP1_CHUNKED_DATA 1 /* a span of body data is ready */
#define RM_HTTP1_CHUNKED_DONE 2 /* last-chunk and trailer section read; message complete */

/* Flags of a parsed head (rm_http1_request_t.flags, rm_http1_response_t.flags). */
#define RM_HTTP1_F_KEEP_ALIVE      (1u << 0) /* connection may carry another message after this */
#define RM_HTTP1_F_EXPECT_CONTINUE (1u << 1) /* HTTP/1.1 request with Expect: 100-continue */
#define RM_HTTP1_F_UPGRADE         (1u << 2) /* an Upgrade header field is present */
#define RM_HTTP1_F_CONN_UPGRADE    (1u << 3) /* Connection lists "upgrade" */
#define RM_HTTP1_F_CONN_CLOSE      (1u << 4) /* Connection lists "close" */
#define RM_HTTP1_F_CONN_KEEP_ALIVE (1u << 5) /* Connection lists "keep-alive" */
#define RM_HTTP1_F_CONN_OTHER      (1u << 6) /* Connection names other options: hop-by-hop fields */
#define RM_HTTP1_F_HAS_CONNECTION  (1u << 7) /* at least one Connection field line */
#define RM_HTTP1_F_HAS_HOST        (1u << 8) /* exactly one Host field line (requests) */

/* Serializer edit flags (rm_http1_edit_t.flags). */
#define RM_HTTP1_EDIT_F_HOP_BY_HOP (1u << 0) /* drop hop-by-hop fields, see http1.h */
/* The caller vouches for its added fields (token names; values without CR, LF, NUL or another
 * control byte: taken from a head this parser accepted, or generated), so they are not scanned
 * again: the proxy adds half a dozen per request. */
#define RM_HTTP1_EDIT_F_ADDS_VALID (1u << 1)

/* A byte range and a field line are the neutral message's (dataplane/message), so a parsed head's
 * fields are the exchange's without a copy. Spans borrow from the parsed buffer; a field's value
 * has its OWS trimmed. */
typedef rm_span_t rm_http1_span_t;
typedef rm_field_t rm_http1_header_t;

/* Limits for one head. rm_http1_limits_init fills the defaults. */
typedef struct rm_http1_limits {
    size_t max_request_line; /* start line bytes without CRLF; 8192; over it: 414 */
    size_t max_head_bytes;   /* whole head with its blank line; 65536; over it: 431 */
    size_t max_headers;      /* field lines; 100; over it: 431 */
} rm_http1_limits_t;

/* Request methods the proxy cares about; every other valid token is OTHER. */
typedef enum rm_http1_method {
    RM_HTTP1_METHOD_OTHER = 0,
    RM_HTTP1_METHOD_GET,
    RM_HTTP1_METHOD_HEAD,
    RM_HTTP1_METHOD_POST,
    RM_HTTP1_METHOD_PUT,
    RM_HTTP1_METHOD_DELETE,
    RM_HTTP1_METHOD_CONNECT,
    RM_HTTP1_METHOD_OPTIONS,
    RM_HTTP1_METHOD_TRACE,
    RM_HTTP1_METHOD_PATCH,
} rm_http1_method_t;

/* How the message body is delimited (RFC 9112 6.3). */
typedef enum rm_http1_body {
    RM_HTTP1_BODY_NONE = 0,       /* no body */
    RM_HTTP1_BODY_CONTENT_LENGTH, /* exactly content_length bytes (may be 0) */
    RM_HTTP1_BODY_CHUNKED,        /* chunked coding: feed rm_http1_chunked_decode */
    RM_HTTP1_BODY_UNTIL_CLOSE,    /* responses only: the body ends when the server closes */
    RM_HTTP1_BODY_TUNNEL,         /* CONNECT, or a 101/2xx-to-CONNECT response: raw bytes */
} rm_http1_body_t;

/* RFC 9112 3.2 request-target forms. */
typedef enum rm_http1_target_form {
    RM_HTTP1_TARGET_ORIGIN = 0, /* /path?query */
    RM_HTTP1_TARGET_ABSOLUTE,   /* http://authority/path?query (http and https only) */
    RM_HTTP1_TARGET_AUTHORITY,  /* host:port, CONNECT only */
    RM_HTTP1_TARGET_ASTERISK,   /* "*", OPTIONS only */
} rm_http1_target_form_t;

/* Private state of the "is the head complete" scan, so that a head arriving a byte at a time is
 * scanned once in total. Offsets, not pointers: the caller may move its buffer between calls as
 * long as the bytes already received stay the same. */
typedef struct rm_http1_scan {
    size_t pos;         /* first byte of the line not yet terminated */
    size_t start;       /* offset of the start line (after ignored empty lines) */
    size_t head_len;    /* non-zero once the head is complete */
    size_t fields;      /* field lines seen so far */
    uint8_t leading;    /* empty lines before the start line */
    uint8_t have_start; /* start line terminated */
} rm_http1_scan_t;

/* A parsed request head. rm_http1_request_init sets the first three fields; the parser fills
 * the rest. Every span borrows from the buffer passed to rm_http1_parse_request. */
typedef struct rm_http1_request {
    rm_http1_header_t *headers; /* borrowed: caller's array with headers_cap entries */
    size_t headers_cap;
    rm_http1_scan_t scan; /* private */

    size_t num_headers;
    rm_http1_span_t method_name;
    rm_http1_method_t method;
    rm_http1_span_t target;
    rm_http1_target_form_t target_form;
    rm_http1_span_t authority; /* absolute/authority-form: from the target; else the Host value */
    rm_http1_span_t path;      /* origin: the target; absolute: after the authority (may be
                                  empty); asterisk: "*"; authority-form: empty */
    rm_http1_span_t host;      /* the Host value; ptr NULL when there is none */
    int minor_version;         /* 0 or 1 */
    rm_http1_body_t body;
    uint64_t content_length; /* when body is CONTENT_LENGTH */
    unsigned flags;          /* RM_HTTP1_F_* */

    int error_status;         /* on error: 400, 414, 431, 501 or 505 */
    const char *error_reason; /* on error: static string naming what was wrong */
} rm_http1_request_t;

/* A parsed response head; same conventions as rm_http1_request_t. */
typedef struct rm_http1_response {
    rm_http1_header_t *headers; /* borrowed: caller's array with headers_cap entries */
    size_t headers_cap;
    rm_http1_scan_t scan; /* private */

    size_t num_headers;
    int minor_version;
    int status;                  /* 100..599 */
    rm_http1_span_t status_text; /* reason-phrase, may be empty */
    rm_http1_body_t body;
    uint64_t content_length;
    unsigned flags;

    int error_status; /* on error: 502 */
    const char *error_reason;
} rm_http1_response_t;

/* Resumable chunked-body decoder state; rm_http1_chunked_init sets it up. */
typedef struct rm_http1_chunked {
    uint64_t remaining;         /* data bytes left in the current chunk */
    uint32_t state;             /* private */
    uint32_t count;             /* private: digits of chunk-size, or bytes of extension */
    uint32_t trailer_bytes;     /* private: trailer section bytes so far */
    uint32_t max_ext_bytes;     /* limit on one chunk line's extensions; default 1024 */
    uint32_t max_trailer_bytes; /* limit on the trailer section; default 16384 */
    uint8_t name_len;           /* private: trailer field name length (saturates) */
    char name[18];              /* private: lowercased trailer field name prefix */
    int error;                  /* sticky error code once failed */
    const char *error_reason;   /* on error: static string */
} rm_http1_chunked_t;

/* Serializer edits: remove fields by name, then append fields. All borrowed for the call. */
typedef struct rm_http1_edit {
    const rm_http1_span_t *remove; /* names, compared case-insensitively */
    size_t num_remove;
    rm_http1_span_t remove_prefix; /* also every name starting with this (case-insensitive);
                                      empty: none */
    const rm_http1_header_t *add;  /* appended after the kept fields, in order */
    size_t num_add;
    unsigned flags; /* RM_HTTP1_EDIT_F_* */
} rm_http1_edit_t;

#endif /* REMORA_DATAPLANE_HTTP1_HTTP1_T_H */
