/* dataplane/buffer/cache_level.h — how many objects a load-sized free-object cache may give back.
 *
 * A worker keeps freed objects (buffer blocks, exchanges) for the next request instead of calling
 * malloc/free per request. How many it needs depends on the requests in flight, so such a cache
 * grows with the load and is trimmed periodically: whatever sat in it through a whole interval
 * was not needed, and goes back to malloc, down to a floor kept for the next burst. The cache
 * tracks its count and the fewest it held since the last trim (its low-water mark); this file is
 * that bookkeeping, shared by every such cache. One thread per cache: no locking.
 */
#ifndef REMORA_DATAPLANE_BUFFER_CACHE_LEVEL_H
#define REMORA_DATAPLANE_BUFFER_CACHE_LEVEL_H

typedef struct rm_cache_level {
    int count; /* objects in the cache now */
    int low;   /* fewest since the last trim: that many went unused through the interval */
} rm_cache_level_t;

/* One object was taken from the cache (count already includes the take). */
static inline void rm_cache_level_took(rm_cache_level_t *l)
{
    if (l->count < l->low)
        l->low = l->count;
}

/* The cache was empty when an object was wanted: every object it held was used. */
static inline void rm_cache_level_missed(rm_cache_level_t *l)
{
    l->low = 0;
}

/* How many objects to free now: those unused through the interval, but none below `keep`.
 * Call rm_cache_level_trimmed once they are freed. */
static inline int rm_cache_level_excess(const rm_cache_level_t *l, int keep)
{
    int over = l->count - keep;
    int n = l->low < over ? l->low : over;
    return n > 0 ? n : 0;
}

/* A trim ended: the next interval starts from what the cache holds now. */
static inline void rm_cache_level_trimmed(rm_cache_level_t *l)
{
    l->low = l->count;
}

#endif /* REMORA_DATAPLANE_BUFFER_CACHE_LEVEL_H */
