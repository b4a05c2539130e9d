/* controlplane/server/server-int.h — the server's call state machines and what they share.
 *
 * Every event on the completion queue carries a tag that points at an rm__tag_t embedded in the
 * object the event is about (an acceptor, a stream, a unary call); the tag's function knows how
 * to get from the tag to its object (container_of). A call object counts its outstanding batches
 * and is freed when the last one completes after the call closed, so no event can ever arrive
 * for freed memory.
 */
#ifndef REMORA_CONTROLPLANE_SERVER_SERVER_INT_H
#define REMORA_CONTROLPLANE_SERVER_SERVER_INT_H

#include <stddef.h>
#include <stdint.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/slice.h>

#include "controlplane/core/admin.h"
#include "controlplane/server/server.h"

#define rm__container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

typedef struct rm__tag rm__tag_t;
typedef void (*rm__tag_fn)(rm_server_t *srv, rm__tag_t *tag, int ok);
struct rm__tag {
    rm__tag_fn fn;
};

typedef enum rm__acceptor_kind {
    RM__ACCEPT_STREAM = 0,
    RM__ACCEPT_ADMIN = 1,
    RM__ACCEPT_OTHER = 2, /* any method we do not serve: answered UNIMPLEMENTED */
} rm__acceptor_kind_t;

/* One outstanding "give me the next call of this method" request. */
typedef struct rm__acceptor {
    rm__tag_t tag;
    rm__acceptor_kind_t kind;
    rm_admin_method_t method; /* RM__ACCEPT_ADMIN */
    void *registered;         /* gRPC's handle of the registered method; NULL for OTHER */
    grpc_call *call;          /* filled by gRPC when the tag completes */
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_byte_buffer *payload; /* ADMIN: the request message, read by gRPC for us */
    grpc_call_details details; /* OTHER */
} rm__acceptor_t;

typedef struct rm__stream rm__stream_t;
typedef struct rm__unary rm__unary_t;

struct rm_server {
    grpc_server *server;       /* owned */
    grpc_completion_queue *cq; /* owned */
    rm_control_t *ctl;         /* borrowed */
    int port;
    rm__acceptor_t stream_acc;
    rm__acceptor_t admin_acc[RM_ADMIN_METHOD_COUNT];
    rm__acceptor_t other_acc;
    rm__tag_t shutdown_tag;
    int shutting_down;
    int shutdown_done;
    rm__stream_t *streams; /* open discovery streams (owned list) */
    size_t n_streams;
    rm__unary_t *waiters; /* Admin calls parked until every sidecar answered (owned list) */
    uint64_t live_calls;
};

/* stream.c */
void rm__stream_start(rm_server_t *srv, grpc_call *call);
/* Sends the stream its scope's current snapshot unless it has it (or a send is in flight, in
 * which case the completion sends the newest). `first`: the reply to Hello (see
 * rm_control_snapshot_for_hello). Never rebuilds otherwise. */
void rm__stream_push(rm_server_t *srv, rm__stream_t *s, int first);
/* Pushes to every open stream its scope's snapshot, rebuilding each dirty scope once. */
void rm__stream_push_all(rm_server_t *srv);

/* unary.c */
void rm__unary_start(rm_server_t *srv, rm_admin_method_t m, grpc_call *call,
                     grpc_byte_buffer *payload);
/* Completes parked calls that are ready or past their deadline. */
void rm__unary_check_waiters(rm_server_t *srv, uint64_t now_ms);
/* The earliest deadline of a parked call (UINT64_MAX: none). */
uint64_t rm__unary_next_deadline(const rm_server_t *srv);
/* Ends a call at once with `status` and `message` (copied), reading nothing: a method we do not
 * serve (UNIMPLEMENTED), a discovery stream past --max-streams (RESOURCE_EXHAUSTED). */
void rm__call_reject(rm_server_t *srv, grpc_call *call, grpc_status_code status,
                     const char *message);

/* server.c: a byte buffer's bytes as one malloc'd block (caller frees), *len its size. */
uint8_t *rm__bb_read(grpc_byte_buffer *bb, size_t *len);
/* A slice over a snapshot's bytes, without a copy: it holds a reference to them (dropped by gRPC,
 * possibly on its own threads, when the last user of the slice is done). The caller owns the
 * returned slice reference. */
grpc_slice rm__snapshot_slice(const rm_scope_snapshot_t *snap);

#endif /* REMORA_CONTROLPLANE_SERVER_SERVER_INT_H */
