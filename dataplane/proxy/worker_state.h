/* dataplane/proxy/worker_state.h — what every layer of the data path may read of the worker
 * whose loop it runs on: its random source and whether it drains. The worker itself (its loop,
 * listeners and threads: worker.h) sits above the sessions and exchanges and is never called by
 * them. Loop thread of the worker. */
#ifndef REMORA_DATAPLANE_PROXY_WORKER_STATE_H
#define REMORA_DATAPLANE_PROXY_WORKER_STATE_H

#include "dataplane/proxy/proxy-t.h"

/* True when this worker has started draining. */
static inline bool rm_worker_draining(const rm_worker_t *w)
{
    return w->draining;
}

/* A fast per-worker random number (xorshift64*). */
static inline uint64_t rm_worker_random(rm_worker_t *w)
{
    uint64_t x = w->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w->rng = x;
    return x * 2685821657736338717ULL;
}

#endif /* REMORA_DATAPLANE_PROXY_WORKER_STATE_H */
