/* dataplane/proxy/worker.h — one data-path thread: a libev loop with its own listeners
 * (SO_REUSEPORT spreads connections across workers), sessions and upstream pools. */
#ifndef RM_PROXY_WORKER_H
#define RM_PROXY_WORKER_H

#include "dataplane/proxy/proxy-t.h"

/* Creates the loop and binds the listeners (admin only on worker 0). Main thread, before start.
 * Returns 0 or -errno with a message logged. */
int rm_worker_init(rm_worker_t *w, rm_proxy_t *p, int id);

/* Runs the loop on a new thread. Returns 0 or -errno. */
int rm_worker_start(rm_worker_t *w);

/* Wakes the worker to pick up a new snapshot or the drain flag. Any thread. */
void rm_worker_notify(rm_worker_t *w);

/* Joins the thread and frees everything the worker owns. Main thread. */
void rm_worker_join(rm_worker_t *w);

/* True when this worker has started draining (loop thread). */
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

#endif
