/* controlplane/util/util.h — small helpers every part of remora-control uses: an allocator that
 * aborts on failure, protobuf-c pack/copy helpers, clocks, and gRPC status codes as plain ints.
 *
 * Why abort on out-of-memory here: STYLE.md allows it for the control plane (unlike the data
 * path). A control plane that cannot allocate cannot do anything useful, and every sidecar keeps
 * serving its last good config while it restarts; checking every allocation in the protobuf
 * building code would triple its size and hide its logic.
 *
 * Threads: everything here is reentrant; any thread.
 */
#ifndef REMORA_CONTROLPLANE_UTIL_UTIL_H
#define REMORA_CONTROLPLANE_UTIL_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* gRPC status codes (fixed by the gRPC protocol), so that code below the server need not include
 * gRPC headers. The server passes them through unchanged. */
typedef enum rm_status {
    RM_STATUS_OK = 0,
    RM_STATUS_CANCELLED = 1,
    RM_STATUS_UNKNOWN = 2,
    RM_STATUS_INVALID_ARGUMENT = 3,
    RM_STATUS_DEADLINE_EXCEEDED = 4,
    RM_STATUS_NOT_FOUND = 5,
    RM_STATUS_ALREADY_EXISTS = 6,
    RM_STATUS_PERMISSION_DENIED = 7,
    RM_STATUS_RESOURCE_EXHAUSTED = 8,
    RM_STATUS_FAILED_PRECONDITION = 9,
    RM_STATUS_ABORTED = 10,
    RM_STATUS_OUT_OF_RANGE = 11,
    RM_STATUS_UNIMPLEMENTED = 12,
    RM_STATUS_INTERNAL = 13,
    RM_STATUS_UNAVAILABLE = 14,
} rm_status_t;

/* Largest message remora-control accepts or unpacks (4 MiB), as gRPC's default receive limit. */
#define RM_CP_MAX_MESSAGE ((size_t)4 * 1024 * 1024)

/* malloc/calloc/realloc/strdup that abort with a log line instead of returning NULL. */
void *rm_xmalloc(size_t n);
void *rm_xcalloc(size_t n, size_t size);
void *rm_xrealloc(void *p, size_t n);
/* A zeroed array of n pointers (protobuf-c's repeated message fields); at least one slot. */
void *rm_xcalloc_ptrs(size_t n);
/* NULL gives a copy of "". */
char *rm_xstrdup(const char *s);
/* printf into a new string. */
char *rm_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growing NUL-terminated string. Zero-initialise; the caller owns `buf` (free()). */
typedef struct rm_strbuf {
    char *buf;
    size_t len;
    size_t cap;
} rm_strbuf_t;
void rm_strbuf_printf(rm_strbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rm_strbuf_append(rm_strbuf_t *b, const char *s, size_t len);
/* Takes the string out (never NULL: "" when empty) and resets the buffer. */
char *rm_strbuf_take(rm_strbuf_t *b);

/* Packs `msg` into a new buffer the caller frees; *len gets its size. Never NULL (a zero-length
 * message still gets a 1-byte allocation). */
uint8_t *rm_pb_pack(const ProtobufCMessage *msg, size_t *len);

/* A deep copy of `msg` (pack + unpack), owned by the caller: free with
 * protobuf_c_message_free_unpacked(copy, NULL). Aborts only when out of memory. */
ProtobufCMessage *rm_pb_copy(const ProtobufCMessage *msg);

/*
 * Whether two messages of the same type encode to the same bytes. Repeated fields and map
 * entries compare in order, which is what we want: documents as written.
 */
int rm_pb_equal(const ProtobufCMessage *a, const ProtobufCMessage *b);

/* Milliseconds of CLOCK_MONOTONIC (timers, windows) and of the wall clock (shown to users). */
uint64_t rm_mono_ms(void);
uint64_t rm_wall_ms(void);

#endif /* REMORA_CONTROLPLANE_UTIL_UTIL_H */
