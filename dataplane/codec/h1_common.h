/* dataplane/codec/h1_common.h — what both sides of the HTTP/1 codec share: body spans from a
 * framing and a buffer, chunk framing, and the neutral view of a parsed head's flags. Internal
 * to dataplane/codec. */
#ifndef REMORA_DATAPLANE_CODEC_H1_COMMON_H
#define REMORA_DATAPLANE_CODEC_H1_COMMON_H

#include "dataplane/buffer/buffer.h"
#include "dataplane/http1/http1.h"
#include "dataplane/message/message-t.h"

/* Room kept for chunk framing ("%zx\r\n" ... "\r\n") around one span. */
#define RM__H1_CHUNK_OVERHEAD 24

/* The next body span under `framing` from `in` (see rm_h1_server_body_next); *consume is set to
 * the input bytes to drop once the span was used (framing bytes included). UNTIL_CLOSE and
 * TUNNEL bodies never END: the caller ends them at EOF. */
rm_body_event_t rm__h1_body_next(rm_buf_t *in, rm_http1_body_t framing, uint64_t *remaining,
                                 rm_http1_chunked_t *chunks, size_t room, rm_span_t *data,
                                 size_t *consume);

/* Appends one chunk ("%zx\r\n" data "\r\n") or the last chunk ("0\r\n\r\n"). 0 or an error. */
int rm__h1_put_chunk(rm_buf_t *out, const char *p, size_t n);
int rm__h1_put_last_chunk(rm_buf_t *out);

/* The serializer's edit for an encoder: its own removals and additions (remove, add), the
 * caller's prefix removal, hop-by-hop fields dropped, added fields trusted (message-t.h). */
static inline rm_http1_edit_t rm__h1_edit(const rm_span_t *remove, size_t nremove,
                                          const rm_field_t *add, size_t nadd,
                                          const rm_field_edit_t *edit)
{
    return (rm_http1_edit_t){.remove = remove,
                             .num_remove = nremove,
                             .remove_prefix = edit != NULL ? edit->remove_prefix : (rm_span_t){0},
                             .add = add,
                             .num_add = nadd,
                             .flags = RM_HTTP1_EDIT_F_HOP_BY_HOP | RM_HTTP1_EDIT_F_ADDS_VALID};
}

/* Bytes to reserve for fields[0..n) and the edit's additions, with room for the start line's
 * framing; `known` is the head's fields_size when its decoder said (0: the fields are counted). */
size_t rm__h1_fields_size(const rm_field_t *fields, size_t n, size_t known,
                          const rm_field_edit_t *edit);

#endif
