/* dataplane/http1/http1_test_util.h — shared helpers for the http1 unit tests: a guard page that
 * turns any read past the input into a crash, and a deterministic PRNG for random splits. */
#ifndef REMORA_DATAPLANE_HTTP1_HTTP1_TEST_UTIL_H
#define REMORA_DATAPLANE_HTTP1_HTTP1_TEST_UTIL_H

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Readable area before the guard page: big enough for the largest test input. */
#define GUARD_AREA (256 * 1024)

typedef struct guard {
    char *base;  /* owned mapping: area + one PROT_NONE page */
    size_t area; /* readable bytes before the guard page */
} guard_t;

/* Maps the area and the guard page behind it; returns 0 or -1. */
static inline int guard_init(guard_t *g)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    g->area = (GUARD_AREA + page - 1) / page * page;
    void *m =
        mmap(NULL, g->area + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return -1;
    g->base = m;
    if (mprotect(g->base + g->area, page, PROT_NONE) != 0)
        return -1;
    return 0;
}

static inline void guard_free(guard_t *g)
{
    munmap(g->base, g->area + (size_t)sysconf(_SC_PAGESIZE));
}

/* Copies s[0..n) so that its last byte is the last readable byte before the guard page, and
 * returns the copy. Reading s[n] through the copy faults. n must be <= GUARD_AREA. */
static inline const char *guard_place(guard_t *g, const char *s, size_t n)
{
    char *dst = g->base + g->area - n;
    memmove(dst, s, n);
    return dst;
}

/* xorshift64: deterministic, so a failing split is reproducible from the seed. */
static inline uint64_t test_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

#endif /* REMORA_DATAPLANE_HTTP1_HTTP1_TEST_UTIL_H */
