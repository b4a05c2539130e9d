/* controlplane/grpcutil/unary.h — one unary gRPC call over gRPC core's C API: a single batch
 * (send initial metadata, the message and close; receive initial metadata, the reply and the
 * status) whose one completion ends the call, and the reply unpacked with protobuf-c.
 *
 * Two ways to run it:
 *   - rm_unary_call: blocking, on a pluck completion queue the caller owns (meshctl, the etcd
 *     store); the call carries a deadline, so it always completes.
 *   - rm_unary_start + rm_unary_finish: the batch on any queue with the caller's tag, for a
 *     caller that keeps turning its own completion queue for other calls meanwhile (the load
 *     tool); rm_unary_finish is called once the tag completed.
 *
 * gRPC rules kept here: the batch's completion is always awaited before the call is unref'd;
 * nothing of a finished call is left on the queue.
 *
 * Threads: a call and its result belong to the thread that started it; the channel and queue are
 * gRPC's to share as gRPC allows (a pluck queue: one plucking thread per tag).
 */
#ifndef REMORA_CONTROLPLANE_GRPCUTIL_UNARY_H
#define REMORA_CONTROLPLANE_GRPCUTIL_UNARY_H

#include <stddef.h>
#include <stdint.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

/* What went wrong, in rm_unary_result_t.rc (0: a reply, unpacked). */
#define RM_UNARY_ESTART     -1 /* the batch could not be started (details say why) */
#define RM_UNARY_ESTATUS    -2 /* the call ended with a non-OK status (see status, details) */
#define RM_UNARY_ENOREPLY   -3 /* status OK but no reply message */
#define RM_UNARY_EMALFORMED -4 /* the reply does not unpack as the expected message */

/* One call in flight. Caller-owned storage; everything in it is released by rm_unary_finish. */
typedef struct rm_unary {
    grpc_call *call; /* owned reference */
    grpc_byte_buffer *send, *recv;
    grpc_metadata_array md_in, md_trail;
    grpc_status_code status;
    grpc_slice details;
    int started;               /* the batch is in flight: its completion must be awaited */
    grpc_call_error start_err; /* why the batch did not start */
} rm_unary_t;

typedef struct rm_unary_result {
    int rc;                  /* 0 or RM_UNARY_E* */
    grpc_status_code status; /* the call's status (UNKNOWN when it never started) */
    char *details;           /* owned, never NULL after finish: status details or the local
                                reason; "" when there is none */
    ProtobufCMessage *reply; /* owned: the reply unpacked with the given descriptor */
    uint8_t *bytes;          /* owned: the raw reply, when no descriptor was given */
    size_t len;
} rm_unary_result_t;

/*
 * Starts `method` ("/pkg.Service/Method", borrowed for the call) with `req` (packed here;
 * borrowed) on `ch`, completing `tag` on `cq` once, at the latest at `deadline`. Returns 0, or
 * RM_UNARY_ESTART, in which case the tag never completes and rm_unary_finish still releases u
 * and says why. Aborts when out of memory (control plane and CLI only, as STYLE.md allows).
 */
int rm_unary_start(rm_unary_t *u, grpc_channel *ch, grpc_completion_queue *cq, const char *method,
                   const ProtobufCMessage *req, gpr_timespec deadline, void *tag);

/*
 * After the tag completed (or the start failed): fills *res (see rm_unary_result_t) and
 * releases everything in u. `desc` NULL: the reply's raw bytes in res->bytes; else the reply
 * unpacked in res->reply. The caller frees res with rm_unary_result_free.
 */
void rm_unary_finish(rm_unary_t *u, const ProtobufCMessageDescriptor *desc, rm_unary_result_t *res);

/*
 * Blocking call on a pluck queue: start, pluck this call's completion, finish. `timeout_ms` 0
 * means no deadline. Returns res->rc. Never returns while the call could still complete.
 */
int rm_unary_call(grpc_channel *ch, grpc_completion_queue *pluck_cq, const char *method,
                  const ProtobufCMessage *req, const ProtobufCMessageDescriptor *desc,
                  uint64_t timeout_ms, rm_unary_result_t *res);

/* Frees what res owns (NULL fields are fine) and zeroes it. */
void rm_unary_result_free(rm_unary_result_t *res);

#endif /* REMORA_CONTROLPLANE_GRPCUTIL_UNARY_H */
