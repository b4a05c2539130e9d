/* controlplane/server/server.h — remora-control's gRPC server on gRPC core's C API: one
 * completion queue, one thread, the Discovery stream and the Admin methods, all calling into
 * controlplane/core.
 *
 * Why one thread: every call's state and the control state are touched only from the thread that
 * runs rm_server_run, so nothing needs a lock; gRPC's own threads do the I/O. The only blocking
 * work on that thread is the store: the SQLite write of an apply/delete/rollback (one fsync'd
 * transaction, milliseconds, rare), or with etcd one round trip per apply, history, read of an
 * old version, or re-read after another replica's write (each bounded by a 3 s deadline, and
 * failing at once while etcd refuses connections); everything else is memory work. Timers (the
 * push debounce, the endpoint grace, WaitForAck deadlines, polling a shared store's change
 * flag) are the completion queue's wait deadline.
 */
#ifndef REMORA_CONTROLPLANE_SERVER_SERVER_H
#define REMORA_CONTROLPLANE_SERVER_SERVER_H

#include <signal.h>

#include "controlplane/core/control.h"

typedef struct rm_server rm_server_t;

/*
 * Creates the server listening on `listen` ("HOST:PORT"; port 0 picks one) over `ctl` (borrowed:
 * must outlive the server). Calls grpc_init. Returns NULL with a one-line reason in err when the
 * address cannot be bound. Main thread.
 */
rm_server_t *rm_server_new(const char *listen, rm_control_t *ctl, char *err, size_t errlen);

/* The port actually bound. */
int rm_server_port(const rm_server_t *srv);

/*
 * Serves until *stop becomes non-zero (set it from a signal handler), then shuts down cleanly:
 * no new calls, every open call cancelled, the completion queue drained. Returns 0. Call once,
 * from the thread that created the server.
 */
int rm_server_run(rm_server_t *srv, volatile sig_atomic_t *stop);

/* Frees the server (after rm_server_run returned, or instead of it) and calls grpc_shutdown.
 * NULL is a no-op. */
void rm_server_free(rm_server_t *srv);

#endif /* REMORA_CONTROLPLANE_SERVER_SERVER_H */
