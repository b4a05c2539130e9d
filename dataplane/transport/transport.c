/* dataplane/transport/transport.c — buffer reads and writes over any transport (transport.h). */
#include "dataplane/transport/transport.h"

#include <errno.h>

/* First allocation of a buffer that holds no memory (see dataplane/buffer/buffer.c: 16 KiB is
 * one of the sizes each thread's block cache keeps). */
#define FIRST_READ ((size_t)16 * 1024)

ssize_t rm_conn_read_buf(rm_conn_t *c, rm_buf_t *b, size_t max)
{
    size_t room = rm_buf_room(b);
    if (room == 0)
        return RM_BUF_EFULL;
    size_t want = room < max ? room : max;
    /* Ask for no more than what fits after compaction, but at least a useful chunk. */
    size_t free_tail = b->cap - (b->off + b->len);
    if (b->data != NULL && free_tail >= 1024 && free_tail < want)
        want = free_tail;
    /* A buffer without memory (most reads: idle connections hold none) starts with one cached
     * block whatever `max` allows; it grows only when a later read finds less than 1 KiB free. */
    if (b->data == NULL && want > FIRST_READ)
        want = FIRST_READ;
    int err = 0;
    char *t = rm_buf_reserve(b, want, &err);
    if (t == NULL)
        return err;
    ssize_t n = c->ops->recv(c, t, want);
    if (n > 0)
        rm_buf_commit(b, (size_t)n);
    return n;
}

ssize_t rm_conn_write_buf(rm_conn_t *c, rm_buf_t *b)
{
    if (b->len == 0)
        return 0;
    ssize_t n = c->ops->send(c, rm_buf_head(b), b->len);
    if (n > 0)
        rm_buf_consume(b, (size_t)n);
    return n;
}
