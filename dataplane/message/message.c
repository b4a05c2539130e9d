/* dataplane/message/message.c — helpers over the neutral message (see message.h). */
#include "dataplane/message/message.h"

#include <stdalign.h>
#include <string.h>
#include <strings.h>

ssize_t rm_msg_field_find(const rm_field_t *fields, size_t n, const char *name, size_t name_len)
{
    for (size_t i = 0; i < n; i++)
        if (fields[i].name.len == name_len && strncasecmp(fields[i].name.ptr, name, name_len) == 0)
            return (ssize_t)i;
    return -1;
}

bool rm_msg_field_is(const rm_field_t *fields, size_t n, const char *name, const char *value)
{
    ssize_t i = rm_msg_field_find(fields, n, name, strlen(name));
    size_t vl = strlen(value);
    return i >= 0 && fields[i].value.len == vl && memcmp(fields[i].value.ptr, value, vl) == 0;
}

bool rm_msg_method_idempotent(rm_method_t m)
{
    switch (m) {
    case RM_METHOD_GET:
    case RM_METHOD_HEAD:
    case RM_METHOD_OPTIONS:
    case RM_METHOD_PUT:
    case RM_METHOD_DELETE:
    case RM_METHOD_TRACE:
        return true;
    default:
        return false;
    }
}

static rm_span_t put(char **at, rm_span_t s)
{
    rm_span_t out = {*at, s.len};
    if (s.len > 0)
        memcpy(*at, s.ptr, s.len);
    *at += s.len;
    return out;
}

/* Bytes of the head's spans and fields, and the copy's whole size (array, bytes, alignment). */
static size_t copy_size(const rm_request_head_t *head, size_t *bytes_out)
{
    size_t bytes = head->method_name.len + head->authority.len + head->path.len;
    for (size_t i = 0; i < head->nfields; i++)
        bytes += head->fields[i].name.len + head->fields[i].value.len;
    *bytes_out = bytes;
    return head->nfields * sizeof(rm_field_t) + bytes + alignof(rm_field_t);
}

/* Lays the copy out at base: the fields array (aligned at the start), then every byte they and
 * the head's spans point to. Returns the bytes used. */
static size_t copy_to(rm_request_head_t *dst, char *base, const rm_request_head_t *head,
                      size_t bytes)
{
    size_t array = head->nfields * sizeof(rm_field_t);
    size_t pad =
        (alignof(rm_field_t) - ((uintptr_t)base % alignof(rm_field_t))) % alignof(rm_field_t);
    rm_field_t *fields = (rm_field_t *)(void *)(base + pad);
    char *at = base + pad + array;
    *dst = *head;
    dst->method_name = put(&at, head->method_name);
    dst->authority = put(&at, head->authority);
    dst->path = put(&at, head->path);
    for (size_t i = 0; i < head->nfields; i++) {
        fields[i].name = put(&at, head->fields[i].name);
        fields[i].value = put(&at, head->fields[i].value);
    }
    dst->fields = fields;
    dst->fields_size = bytes + 4 * head->nfields;
    return (size_t)(at - base);
}

int rm_msg_request_copy_into(rm_request_head_t *dst, char *mem, size_t cap,
                             const rm_request_head_t *head)
{
    size_t bytes = 0;
    if (copy_size(head, &bytes) > cap)
        return -1;
    copy_to(dst, mem, head, bytes);
    return 0;
}

int rm_msg_request_copy(rm_request_head_t *dst, rm_buf_t *storage, const rm_request_head_t *head)
{
    size_t bytes = 0;
    size_t need = copy_size(head, &bytes);
    rm_buf_consume(storage, storage->len);
    int err = 0;
    char *base = rm_buf_reserve(storage, need, &err);
    if (base == NULL)
        return err;
    rm_buf_commit(storage, copy_to(dst, base, head, bytes));
    return 0;
}
