/* dataplane/snapshot/snapshot_slot.c — reference counting and the process-wide "current
 * snapshot" slot that the config thread publishes to and worker loops read from.
 *
 * Memory-ordering argument.
 *
 * Refcount. rm_snapshot_ref is a relaxed increment: the caller already holds a reference, so the
 * object cannot die concurrently and no data is published by the increment itself.
 * rm_snapshot_unref is an acq_rel decrement: the release half orders every read this thread made
 * of the snapshot before its decrement; the acquire half, on the thread whose decrement reaches
 * zero, makes all other threads' reads happen-before the free. (The classic form is a release
 * decrement plus an acquire fence only on the zero path; acq_rel on the RMW is equivalent here and
 * is understood by ThreadSanitizer, which does not model standalone fences.) The snapshot's
 * contents are written only before the first reference leaves the building thread, and reach
 * other threads through the slot mutex below (or through any other synchronisation the caller
 * uses to pass a pointer), so reads never race with writes.
 *
 * Slot. A mutex guards the slot pointer. The danger a lock-free slot must solve — a reader loads
 * the pointer, the publisher swaps it and drops the last reference, the reader then increments a
 * freed count — cannot happen, because rm_snapshot_acquire reads the pointer and increments its
 * count inside the same critical section in which rm_snapshot_publish swaps it; the slot's own
 * reference to the old snapshot is dropped only after the swap, outside the lock. The lock is
 * uncontended in practice: workers take it only when the generation moved.
 *
 * Generation. rm_snapshot_publish increments the generation (release) while it still holds the
 * lock, after storing the new pointer. A worker loads the generation (acquire) and, when it
 * differs from the one it cached, calls rm_snapshot_acquire. The worker must load the generation
 * BEFORE acquiring: if a publish slips in between, the worker holds a snapshot newer than the
 * generation it records, and its next check merely re-acquires the same snapshot. Loading it
 * after could record a generation newer than the snapshot held, and the worker would keep a stale
 * snapshot until the next publish. rm_snapshot_refresh implements that order.
 *
 * Wake-up. Publishing does not signal anyone: the publisher calls ev_async_send on each worker
 * loop afterwards. ev_async_send/its callback synchronise (libev uses a memory barrier and a
 * pipe or eventfd), and in any case the generation is read with acquire ordering, so a worker that
 * wakes up sees the new generation.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "dataplane/snapshot/snapshot-int.h"
#include "dataplane/snapshot/snapshot.h"

static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;
static rm_snapshot_t *slot;              /* guarded by slot_lock; holds one reference */
static _Atomic uint64_t slot_generation; /* written under slot_lock, read without it */

void rm_snapshot_ref(rm_snapshot_t *s)
{
    if (s != NULL)
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void rm_snapshot_unref(rm_snapshot_t *s)
{
    if (s == NULL)
        return;
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        rm__snapshot_destroy(s);
}

void rm_snapshot_publish(rm_snapshot_t *s)
{
    pthread_mutex_lock(&slot_lock);
    rm_snapshot_t *old = slot;
    slot = s;
    atomic_fetch_add_explicit(&slot_generation, 1, memory_order_release);
    pthread_mutex_unlock(&slot_lock);
    /* Outside the lock: the last unref may free a large snapshot, which must not delay readers. */
    rm_snapshot_unref(old);
}

rm_snapshot_t *rm_snapshot_acquire(void)
{
    pthread_mutex_lock(&slot_lock);
    rm_snapshot_t *s = slot;
    rm_snapshot_ref(s);
    pthread_mutex_unlock(&slot_lock);
    return s;
}

uint64_t rm_snapshot_generation(void)
{
    return atomic_load_explicit(&slot_generation, memory_order_acquire);
}

int rm_snapshot_refresh(rm_snapshot_t **cached, uint64_t *gen)
{
    uint64_t g = rm_snapshot_generation(); /* before acquire: see the argument above */
    if (g == *gen)
        return 0;
    rm_snapshot_t *s = rm_snapshot_acquire();
    rm_snapshot_t *old = *cached;
    *cached = s;
    *gen = g;
    rm_snapshot_unref(old);
    return s != old;
}
