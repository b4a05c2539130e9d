/* dataplane/http1/http1.h — strict, allocation-free HTTP/1.1 framing: head parsers, a chunked
 * body decoder and a head serializer for the sidecar. Types live in http1-t.h.
 *
 * Why our own parser: llhttp 8.1.0 (Debian) accepts framing tricks a proxy must refuse (see
 * DESIGN.md). This one follows RFC 9112 2.2, 3.2, 5.1, 5.2, 6.1, 6.3 and 7.1 strictly; README.md
 * in this folder lists every choice where the RFC allows leniency.
 *
 * Threads: every function works only on the caller's memory and constant tables, so any thread
 * may call any function, as long as one struct is not used by two threads at once.
 */
#ifndef REMORA_DATAPLANE_HTTP1_HTTP1_H
#define REMORA_DATAPLANE_HTTP1_HTTP1_H

#include <sys/types.h>

#include "dataplane/http1/http1-t.h"

#define RM_HTTP1_DEFAULT_MAX_REQUEST_LINE 8192
#define RM_HTTP1_DEFAULT_MAX_HEAD_BYTES   65536
#define RM_HTTP1_DEFAULT_MAX_HEADERS      100
#define RM_HTTP1_DEFAULT_MAX_CHUNK_EXT    1024
#define RM_HTTP1_DEFAULT_MAX_TRAILER      16384
#define RM_HTTP1_MAX_LEADING_EMPTY_LINES  4

/* Fills lim with the defaults above. lim is caller-owned. */
void rm_http1_limits_init(rm_http1_limits_t *lim);

/* Prepares req for a new head. headers is a caller-owned array of cap entries that the parser
 * fills; it stays borrowed by req. The effective field-line limit is min(cap, lim->max_headers).
 * Call again before parsing the next message on a kept-alive connection. */
void rm_http1_request_init(rm_http1_request_t *req, rm_http1_header_t *headers, size_t cap);

/* Same for a response head. */
void rm_http1_response_init(rm_http1_response_t *resp, rm_http1_header_t *headers, size_t cap);

/* Parses a request head from buf[0..len), the bytes received so far on the connection, with the
 * message starting at buf[0]. Call again with a longer len as bytes arrive, without
 * re-initialising req: the search for the blank line resumes where it stopped, so a head that
 * trickles in byte by byte costs O(n) in total. The bytes already passed must not change.
 *
 * Returns the head length (> 0, including up to RM_HTTP1_MAX_LEADING_EMPTY_LINES ignored empty
 * lines and the final blank line) when the head is complete and valid; RM_HTTP1_INCOMPLETE when
 * more bytes are needed; another negative RM_HTTP1_E_* code when the head is invalid, with
 * req->error_status (400, 414, 431, 501, 505; 500 for RM_HTTP1_E_ARG, a caller bug) and
 * req->error_reason set. On success every span in req borrows from buf: buf must outlive their
 * use. lim may be NULL for the defaults. */
int rm_http1_parse_request(const char *buf, size_t len, rm_http1_request_t *req,
                           const rm_http1_limits_t *lim);

/* Parses a response head like rm_http1_parse_request. request_method is the rm_http1_method_t of
 * the request it answers (HEAD and CONNECT change the framing). Errors set error_status 502
 * (500 for RM_HTTP1_E_ARG). */
int rm_http1_parse_response(const char *buf, size_t len, rm_http1_response_t *resp,
                            const rm_http1_limits_t *lim, int request_method);

/* Prepares st to decode one chunked body with the default limits; the caller may then lower or
 * raise st->max_ext_bytes and st->max_trailer_bytes. st is caller-owned. */
void rm_http1_chunked_init(rm_http1_chunked_t *st);

/* Decodes chunked framing from in[0..len), the next bytes of the body. Sets *consumed to the
 * bytes used and returns:
 *   RM_HTTP1_CHUNKED_DATA  data_out is a non-empty span of body bytes inside in (borrowed);
 *                          call again with in + *consumed;
 *   RM_HTTP1_CHUNKED_DONE  last-chunk and trailers are read; in + *consumed starts the next
 *                          message (trailers are validated, then dropped);
 *   RM_HTTP1_INCOMPLETE    all of in was used (*consumed == len); call again with more bytes;
 *   negative RM_HTTP1_E_*  malformed body; st->error_reason says why. Errors are sticky.
 * Resumable at any byte boundary; keeps no pointer into in across calls. */
int rm_http1_chunked_decode(rm_http1_chunked_t *st, const char *in, size_t len, size_t *consumed,
                            rm_http1_span_t *data_out);

/* Writes req's head into out[0..cap) as "METHOD target HTTP/1.1", the kept field lines in their
 * order, edit->add, then the blank line. A field is dropped when its name is in edit->remove, or,
 * with RM_HTTP1_EDIT_F_HOP_BY_HOP, when it is Connection, Keep-Alive, Proxy-Connection, TE,
 * Trailer or Upgrade, or is named by a Connection option (Host, Content-Length and
 * Transfer-Encoding are never dropped that way: framing stays under the proxy's control).
 * The proxy speaks its own version (RFC 9110 6.2), hence always HTTP/1.1.
 * Returns the bytes written, RM_HTTP1_E_NOSPACE if out is too small, or RM_HTTP1_E_ARG if an
 * added field has an invalid name or value (never lets CR/LF in). edit may be NULL. */
ssize_t rm_http1_serialize_request(const rm_http1_request_t *req, const rm_http1_edit_t *edit,
                                   char *out, size_t cap);

/* Same for a response: "HTTP/1.1 status reason". */
ssize_t rm_http1_serialize_response(const rm_http1_response_t *resp, const rm_http1_edit_t *edit,
                                    char *out, size_t cap);

/* Index of the first field named name (case-insensitive) in headers[0..n), or -1. */
ssize_t rm_http1_header_find(const rm_http1_header_t *headers, size_t n, const char *name,
                             size_t name_len);

/* 1 if a Connection field in headers[0..n) lists the option name (case-insensitive), else 0. */
int rm_http1_connection_lists(const rm_http1_header_t *headers, size_t n, const char *name,
                              size_t name_len);

/* The reason phrase for a status code ("Bad Gateway"); "Status" for codes without one here.
 * A static string. */
const char *rm_http1_reason_phrase(int status);

/* A static description of an RM_HTTP1_* code. */
const char *rm_http1_strerror(int code);

/* The canonical name of a known method ("GET"), or NULL for RM_HTTP1_METHOD_OTHER. */
const char *rm_http1_method_name(rm_http1_method_t method);

#endif /* REMORA_DATAPLANE_HTTP1_HTTP1_H */
