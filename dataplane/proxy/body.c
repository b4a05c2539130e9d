/* dataplane/proxy/body.c — one step of body forwarding (see body.h). */
#include "dataplane/proxy/body.h"

#include <stdio.h>

/* Room kept for chunk framing ("%zx\r\n" ... "\r\n") around one re-encoded span. */
#define CHUNK_OVERHEAD 24

rm_body_step_t rm_body_step(rm_buf_t *in, rm_http1_body_t framing, uint64_t *remaining,
                            rm_http1_chunked_t *chunks, size_t room, rm_body_sink_t sink, void *arg)
{
    switch (framing) {
    case RM_HTTP1_BODY_NONE:
        return RM_BODY_DONE;
    case RM_HTTP1_BODY_CONTENT_LENGTH: {
        if (*remaining == 0)
            return RM_BODY_DONE;
        size_t n = in->len;
        if (n > *remaining)
            n = (size_t)*remaining;
        if (n > room)
            n = room;
        if (n == 0 || sink(arg, rm_buf_head(in), n) != 0)
            return RM_BODY_WAIT;
        rm_buf_consume(in, n);
        *remaining -= n;
        return *remaining == 0 ? RM_BODY_DONE : RM_BODY_MOVED;
    }
    case RM_HTTP1_BODY_CHUNKED: {
        if (room <= CHUNK_OVERHEAD || in->len == 0)
            return RM_BODY_WAIT;
        size_t consumed = 0;
        rm_http1_span_t data = {0};
        size_t feed = in->len < room - CHUNK_OVERHEAD ? in->len : room - CHUNK_OVERHEAD;
        int rc = rm_http1_chunked_decode(chunks, rm_buf_head(in), feed, &consumed, &data);
        if (rc < 0 && rc != RM_HTTP1_INCOMPLETE)
            return RM_BODY_ERROR;
        if (rc == RM_HTTP1_CHUNKED_DATA) {
            char size[24];
            int sl = snprintf(size, sizeof(size), "%zx\r\n", data.len);
            sink(arg, size, (size_t)sl);
            sink(arg, data.ptr, data.len);
            sink(arg, "\r\n", 2);
        } else if (rc == RM_HTTP1_CHUNKED_DONE) {
            sink(arg, "0\r\n\r\n", 5);
        }
        rm_buf_consume(in, consumed);
        if (rc == RM_HTTP1_CHUNKED_DONE)
            return RM_BODY_DONE;
        return rc == RM_HTTP1_INCOMPLETE ? RM_BODY_WAIT : RM_BODY_MOVED;
    }
    default: { /* until close, tunnel: as it comes */
        size_t n = in->len < room ? in->len : room;
        if (n == 0 || sink(arg, rm_buf_head(in), n) != 0)
            return RM_BODY_WAIT;
        rm_buf_consume(in, n);
        return RM_BODY_MOVED;
    }
    }
}
