/* dataplane/proxy/worker.h — one data-path thread: a libev loop with its own listeners
 * (SO_REUSEPORT spreads connections across workers), sessions and upstream pools. */
#ifndef REMORA_DATAPLANE_PROXY_WORKER_H
#define REMORA_DATAPLANE_PROXY_WORKER_H

#include "dataplane/proxy/proxy-t.h"
#include "dataplane/proxy/worker_state.h"

/* Creates the loop and binds the listeners (admin only on worker 0). Main thread, before start.
 * Returns 0 or -errno with a message logged. */
int rm_worker_init(rm_worker_t *w, rm_proxy_t *p, int id);

/* Runs the loop on a new thread. Returns 0 or -errno. */
int rm_worker_start(rm_worker_t *w);

/* Wakes the worker to pick up a new snapshot or the drain flag. Any thread. */
void rm_worker_notify(rm_worker_t *w);

/* Joins the thread and frees everything the worker owns. Main thread. */
void rm_worker_join(rm_worker_t *w);

#endif /* REMORA_DATAPLANE_PROXY_WORKER_H */
