/* dataplane/codec/h1_common.c — body spans and chunk framing for both sides (h1_common.h). */
#include "dataplane/codec/h1_common.h"

#include <string.h>

#include "dataplane/buffer/buffer.h"

rm_body_event_t rm__h1_body_next(rm_buf_t *in, rm_http1_body_t framing, uint64_t *remaining,
                                 rm_http1_chunked_t *chunks, size_t room, rm_span_t *data,
                                 size_t *consume)
{
    *consume = 0;
    switch (framing) {
    case RM_HTTP1_BODY_NONE:
        return RM_BODY_END;
    case RM_HTTP1_BODY_CONTENT_LENGTH: {
        if (*remaining == 0)
            return RM_BODY_END;
        size_t n = in->len;
        if (n > *remaining)
            n = (size_t)*remaining;
        if (n > room)
            n = room;
        if (n == 0)
            return RM_BODY_WAIT;
        *data = (rm_span_t){rm_buf_head(in), n};
        *remaining -= n;
        *consume = n;
        return RM_BODY_DATA;
    }
    case RM_HTTP1_BODY_CHUNKED:
        /* A span never exceeds the room: whatever the decoder hands out is taken whole. */
        while (in->len > 0 && room > 0) {
            size_t used = 0;
            rm_span_t span = {0};
            size_t feed = in->len < room ? in->len : room;
            int rc = rm_http1_chunked_decode(chunks, rm_buf_head(in), feed, &used, &span);
            if (rc == RM_HTTP1_CHUNKED_DATA) {
                *data = span;
                *consume = used;
                return RM_BODY_DATA;
            }
            if (rc == RM_HTTP1_CHUNKED_DONE) {
                rm_buf_consume(in, used);
                return RM_BODY_END;
            }
            if (rc != RM_HTTP1_INCOMPLETE)
                return RM_BODY_ERROR;
            rm_buf_consume(in, used); /* framing bytes only: the decoder keeps its state */
            if (feed == in->len + used)
                break; /* all input used: wait for more */
        }
        return chunks->error != 0 ? RM_BODY_ERROR : RM_BODY_WAIT;
    default: { /* until close, tunnel: as it comes */
        size_t n = in->len < room ? in->len : room;
        if (n == 0)
            return RM_BODY_WAIT;
        *data = (rm_span_t){rm_buf_head(in), n};
        *consume = n;
        return RM_BODY_DATA;
    }
    }
}

int rm__h1_put_chunk(rm_buf_t *out, const char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char size[20];
    size_t at = sizeof(size);
    size[--at] = '\n';
    size[--at] = '\r';
    size_t v = n;
    do {
        size[--at] = hex[v & 15];
        v >>= 4;
    } while (v != 0);
    int err = 0;
    char *t = rm_buf_reserve(out, sizeof(size) - at + n + 2, &err);
    if (t == NULL)
        return err;
    memcpy(t, size + at, sizeof(size) - at);
    memcpy(t + sizeof(size) - at, p, n);
    memcpy(t + sizeof(size) - at + n, "\r\n", 2);
    rm_buf_commit(out, sizeof(size) - at + n + 2);
    return 0;
}

int rm__h1_put_last_chunk(rm_buf_t *out)
{
    return rm_buf_append(out, "0\r\n\r\n", 5);
}

size_t rm__h1_fields_size(const rm_field_t *fields, size_t n, size_t known,
                          const rm_field_edit_t *edit)
{
    size_t need = 256 + known;
    for (size_t i = 0; known == 0 && i < n; i++)
        need += fields[i].name.len + fields[i].value.len + 4;
    if (edit != NULL)
        for (size_t i = 0; i < edit->nadd; i++)
            need += edit->add[i].name.len + edit->add[i].value.len + 4;
    return need;
}
