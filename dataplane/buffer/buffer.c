/* dataplane/buffer/buffer.c — growable capped byte buffers (see buffer.h). */
#include "dataplane/buffer/buffer.h"
#include "dataplane/buffer/cache_level.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* First allocation: big enough for a typical request head, small enough that ten thousand
 * connections mid-request stay cheap. */
#define RM_BUF_MIN_ALLOC ((size_t)4096)

/* Nearly every proxied request takes a first block for five buffers (client in/out, upstream
 * in/out, the upstream head) and gives them back when it ends, because idle connections hold no
 * buffer memory. glibc serves these sizes from its bins (its per-thread cache stops at about
 * 1 KiB), which made malloc/free a visible share of a request. Each thread keeps a stack of free
 * blocks per size class instead: 4 KiB (a first block), 8 KiB and 16 KiB (what a read asks for:
 * see rm_conn_read_buf in dataplane/transport).
 *
 * The stacks grow with the load: with 200 requests in flight a fixed 32-block stack overflowed
 * and malloc/free came back as 12% of a request's instructions. What a burst leaves behind is
 * given back by rm_buf_thread_cache_trim (once a second from the worker): blocks that sat unused
 * through a whole interval, down to the `keep` floor, so an idle sidecar returns to at most
 * 64 x 4 + 16 x 8 + 32 x 16 KiB = 896 KiB per thread. */
typedef struct block_stack {
    size_t size;
    int max, keep;
    rm_cache_level_t level; /* level.count blocks in `blocks` */
    char *blocks[512];
} block_stack_t;

static __thread block_stack_t tls_stacks[3] = {
    {.size = RM_BUF_MIN_ALLOC, .max = 512, .keep = 64},
    {.size = RM_BUF_MIN_ALLOC * 2, .max = 128, .keep = 16},
    {.size = RM_BUF_MIN_ALLOC * 4, .max = 512, .keep = 32},
};

static block_stack_t *stack_for(size_t size)
{
    switch (size) {
    case RM_BUF_MIN_ALLOC:
        return &tls_stacks[0];
    case RM_BUF_MIN_ALLOC * 2:
        return &tls_stacks[1];
    case RM_BUF_MIN_ALLOC * 4:
        return &tls_stacks[2];
    default:
        return NULL;
    }
}

static char *block_alloc(size_t size)
{
    block_stack_t *st = stack_for(size);
    if (st != NULL && st->level.count > 0) {
        char *b = st->blocks[--st->level.count];
        rm_cache_level_took(&st->level);
        return b;
    }
    if (st != NULL)
        rm_cache_level_missed(&st->level);
    return malloc(size);
}

static void block_free(char *p, size_t size)
{
    block_stack_t *st = p != NULL ? stack_for(size) : NULL;
    if (st != NULL && st->level.count < st->max) {
        st->blocks[st->level.count++] = p;
        return;
    }
    free(p);
}

void rm_buf_thread_cache_trim(void)
{
    for (size_t i = 0; i < sizeof(tls_stacks) / sizeof(tls_stacks[0]); i++) {
        block_stack_t *st = &tls_stacks[i];
        for (int n = rm_cache_level_excess(&st->level, st->keep); n > 0; n--)
            free(st->blocks[--st->level.count]);
        rm_cache_level_trimmed(&st->level);
    }
}

size_t rm_buf_thread_cache_count(void)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof(tls_stacks) / sizeof(tls_stacks[0]); i++)
        n += (size_t)tls_stacks[i].level.count;
    return n;
}

void rm_buf_thread_cache_free(void)
{
    for (size_t i = 0; i < sizeof(tls_stacks) / sizeof(tls_stacks[0]); i++) {
        block_stack_t *st = &tls_stacks[i];
        while (st->level.count > 0)
            free(st->blocks[--st->level.count]);
        rm_cache_level_trimmed(&st->level);
    }
}

char *rm_buf_reserve(rm_buf_t *b, size_t n, int *err)
{
    if (b->len + n > b->limit) {
        *err = RM_BUF_EFULL;
        return NULL;
    }
    if (b->off + b->len + n <= b->cap)
        return b->data + b->off + b->len;
    /* Compact when that alone makes room and the move is cheap relative to the data. */
    if (b->data != NULL && b->len + n <= b->cap && b->off > 0) {
        memmove(b->data, b->data + b->off, b->len);
        b->off = 0;
        return b->data + b->len;
    }
    size_t want = b->cap ? b->cap : RM_BUF_MIN_ALLOC;
    while (want < b->len + n)
        want *= 2;
    if (want > b->limit)
        want = b->limit;
    char *d = block_alloc(want);
    if (d == NULL) {
        *err = RM_BUF_ENOMEM;
        return NULL;
    }
    if (b->data != NULL && b->len > 0)
        memcpy(d, b->data + b->off, b->len);
    block_free(b->data, b->cap);
    b->data = d;
    b->cap = want;
    b->off = 0;
    return b->data + b->len;
}

int rm_buf_append(rm_buf_t *b, const void *p, size_t n)
{
    int err = 0;
    if (n == 0)
        return 0;
    char *t = rm_buf_reserve(b, n, &err);
    if (t == NULL)
        return err;
    memcpy(t, p, n);
    b->len += n;
    return 0;
}

int rm_buf_printf(rm_buf_t *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return RM_BUF_ENOMEM;
    if ((size_t)n < sizeof(small))
        return rm_buf_append(b, small, (size_t)n);
    int err = 0;
    char *t = rm_buf_reserve(b, (size_t)n + 1, &err);
    if (t == NULL)
        return err;
    va_start(ap, fmt);
    vsnprintf(t, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void rm_buf_release(rm_buf_t *b)
{
    if (b->len == 0) {
        block_free(b->data, b->cap);
        b->data = NULL;
        b->cap = 0;
        b->off = 0;
    }
}

void rm_buf_free(rm_buf_t *b)
{
    block_free(b->data, b->cap);
    b->data = NULL;
    b->cap = b->off = b->len = 0;
}
