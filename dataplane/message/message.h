/* dataplane/message/message.h — small helpers over the neutral message (types in message-t.h).
 * Any thread; nothing here keeps state. */
#ifndef REMORA_DATAPLANE_MESSAGE_MESSAGE_H
#define REMORA_DATAPLANE_MESSAGE_MESSAGE_H

#include <stdbool.h>
#include <sys/types.h>

#include "dataplane/buffer/buffer.h"
#include "dataplane/message/message-t.h"

/* Index of the first field named name (case-insensitive) in fields[0..n), or -1. */
ssize_t rm_msg_field_find(const rm_field_t *fields, size_t n, const char *name, size_t name_len);

/* True when the field named `name` is present with exactly `value` (value compared as bytes). */
bool rm_msg_field_is(const rm_field_t *fields, size_t n, const char *name, const char *value);

/* True for a method whose request may be repeated (RFC 9110 9.2.2). */
bool rm_msg_method_idempotent(rm_method_t m);

/* Copies head's spans and fields into storage (cleared first; sized to need and capped by its
 * own limit) and points dst at the copy, so the head outlives the buffer it was decoded from.
 * Returns 0 or RM_BUF_EFULL / RM_BUF_ENOMEM. */
int rm_msg_request_copy(rm_request_head_t *dst, rm_buf_t *storage, const rm_request_head_t *head);

/* The same copy into mem[0..cap) (the caller's, e.g. inside its own struct): 0, or -1 when it
 * does not fit (nothing copied). */
int rm_msg_request_copy_into(rm_request_head_t *dst, char *mem, size_t cap,
                             const rm_request_head_t *head);

#endif
