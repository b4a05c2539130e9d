/* dataplane/proxy/body.h — moving a message body from an input buffer to a sink, one step at a
 * time, re-framing chunked bodies (the proxy re-encodes chunks itself, so extensions and trailers
 * never pass). Shared by requests (client -> upstream) and responses (upstream -> client). */
#ifndef RM_PROXY_BODY_H
#define RM_PROXY_BODY_H

#include <stdint.h>

#include "dataplane/buffer/buffer.h"
#include "dataplane/http1/http1.h"

typedef enum rm_body_step {
    RM_BODY_MOVED = 0, /* bytes moved; call again */
    RM_BODY_WAIT,      /* needs more input, or more room in the sink */
    RM_BODY_DONE,      /* the body is complete */
    RM_BODY_ERROR,     /* malformed chunked framing (the decoder's error_reason says why) */
} rm_body_step_t;

/* Where moved bytes go. Returns 0, or non-zero when the sink cannot take them now. */
typedef int (*rm_body_sink_t)(void *arg, const char *p, size_t n);

/* One step: takes bytes from `in` (consuming them) for a body framed as `framing`, giving at most
 * about `room` bytes to `sink` (chunk framing included). `remaining` is the Content-Length left,
 * `chunks` the decoder state. Bodies delimited by the close (and tunnels) are moved as they are
 * and never report DONE: the caller ends them at EOF. */
rm_body_step_t rm_body_step(rm_buf_t *in, rm_http1_body_t framing, uint64_t *remaining,
                            rm_http1_chunked_t *chunks, size_t room, rm_body_sink_t sink,
                            void *arg);

#endif
