/* dataplane/snapshot/arena.c — the bump allocator that holds a compiled snapshot. */
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/snapshot/snapshot-int.h"

/* Most configs compile into a few KiB; 16 KiB blocks keep the block count small without
 * wasting much on a sidecar that only knows a handful of services. */
#define ARENA_BLOCK 16384u

void *rm__arena_alloc(rm__arena_t *a, size_t n)
{
    const size_t align = alignof(max_align_t);
    if (n > SIZE_MAX - align)
        return NULL;
    n = (n + align - 1) & ~(align - 1);
    if (n == 0)
        n = align;
    rm__arena_block_t *b = a->head;
    if (b == NULL || b->cap - b->used < n) {
        size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        if (cap > SIZE_MAX - sizeof(*b))
            return NULL;
        b = malloc(sizeof(*b) + cap);
        if (b == NULL)
            return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

void *rm__arena_calloc(rm__arena_t *a, size_t n, size_t sz)
{
    if (sz != 0 && n > SIZE_MAX / sz)
        return NULL;
    return rm__arena_alloc(a, n * sz);
}

char *rm__arena_strndup(rm__arena_t *a, const char *s, size_t n)
{
    if (n == SIZE_MAX)
        return NULL;
    char *d = rm__arena_alloc(a, n + 1);
    if (d == NULL)
        return NULL;
    if (n > 0)
        memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *rm__arena_strlower(rm__arena_t *a, const char *s, size_t n)
{
    char *d = rm__arena_strndup(a, s, n);
    if (d == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        d[i] = (char)rm__lower((unsigned char)d[i]);
    return d;
}

void rm__arena_free(rm__arena_t *a)
{
    rm__arena_block_t *b = a->head;
    while (b != NULL) {
        rm__arena_block_t *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}
