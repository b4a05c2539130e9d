/* dataplane/buffer/buffer.h — a growable byte buffer with a hard cap, for the data path.
 *
 * Bytes live in data[off, off+len). Appends grow the allocation up to `limit`; allocation failure
 * or the limit returns an error instead of aborting, so the caller can close one connection and
 * keep the process alive. An empty buffer can be released (rm_buf_release) so idle connections
 * hold no buffer memory at all. Single-threaded: a buffer belongs to one connection on one loop.
 */
#ifndef REMORA_DATAPLANE_BUFFER_BUFFER_H
#define REMORA_DATAPLANE_BUFFER_BUFFER_H

#include <stddef.h>
#include <string.h>
#include <sys/types.h>

typedef struct rm_buf {
    char *data;   /* owned; NULL until first use and after rm_buf_release */
    size_t off;   /* start of unread bytes */
    size_t len;   /* number of unread bytes */
    size_t cap;   /* allocated bytes */
    size_t limit; /* never grow past this many bytes */
} rm_buf_t;

#define RM_BUF_ENOMEM (-12)
#define RM_BUF_EFULL  (-28)

static inline void rm_buf_init(rm_buf_t *b, size_t limit)
{
    memset(b, 0, sizeof(*b));
    b->limit = limit;
}

static inline char *rm_buf_head(const rm_buf_t *b)
{
    return b->data + b->off;
}

/* Free space at the tail after compaction would still fit `n` more bytes without exceeding limit.
 */
static inline size_t rm_buf_room(const rm_buf_t *b)
{
    return b->limit > b->len ? b->limit - b->len : 0;
}

/* Makes room for at least `n` bytes at the tail (compacting, then growing up to the limit).
 * Returns a pointer to the tail, or NULL with *err set to RM_BUF_EFULL or RM_BUF_ENOMEM. */
char *rm_buf_reserve(rm_buf_t *b, size_t n, int *err);

/* Marks `n` bytes written at the tail returned by rm_buf_reserve. */
static inline void rm_buf_commit(rm_buf_t *b, size_t n)
{
    b->len += n;
}

/* Appends bytes. Returns 0 or RM_BUF_EFULL / RM_BUF_ENOMEM (nothing appended). */
int rm_buf_append(rm_buf_t *b, const void *p, size_t n);

/* Appends printf-formatted text. Returns 0 or an error (nothing appended). */
int rm_buf_printf(rm_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Drops `n` bytes from the head. */
static inline void rm_buf_consume(rm_buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->off = 0;
        b->len = 0;
    } else {
        b->off += n;
        b->len -= n;
    }
}

/* Frees the memory of an empty buffer (no-op when bytes remain). */
void rm_buf_release(rm_buf_t *b);

/* Frees the memory whatever it holds. */
void rm_buf_free(rm_buf_t *b);

/* Frees the calling thread's cache of free buffer blocks (see buffer.c). Call it on a thread
 * that used buffers before the thread exits; buffers freed afterwards refill the cache. */
void rm_buf_thread_cache_free(void);

/* Frees the calling thread's cached blocks that went unused since the previous call, down to the
 * cache's floor (see buffer.c). Call it periodically (a second apart) from a thread that uses
 * buffers, so what a burst left behind goes back. */
void rm_buf_thread_cache_trim(void);

/* Blocks in the calling thread's cache (for tests and diagnostics). */
size_t rm_buf_thread_cache_count(void);

#endif /* REMORA_DATAPLANE_BUFFER_BUFFER_H */
