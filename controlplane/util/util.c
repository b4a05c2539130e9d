/* controlplane/util/util.c — the abort-on-failure allocator, string building, protobuf helpers
 * and clocks of remora-control (see util.h for why aborting is the right policy here).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log/log.h"
#include "controlplane/util/util.h"

static void oom(size_t n)
{
    rm_log_error("out of memory allocating %zu bytes; exiting", n);
    abort();
}

void *rm_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom(n);
    return p;
}

void *rm_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        oom(n * size);
    return p;
}

void *rm_xcalloc_ptrs(size_t n)
{
    return rm_xcalloc(n ? n : 1, sizeof(void *));
}

void *rm_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom(n);
    return q;
}

char *rm_xstrdup(const char *s)
{
    char *d = strdup(s != NULL ? s : "");
    if (d == NULL)
        oom(s != NULL ? strlen(s) + 1 : 1);
    return d;
}

char *rm_xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom(0);
    return s;
}

static void strbuf_reserve(rm_strbuf_t *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->buf = rm_xrealloc(b->buf, cap);
    b->cap = cap;
}

void rm_strbuf_append(rm_strbuf_t *b, const char *s, size_t len)
{
    strbuf_reserve(b, len);
    memcpy(b->buf + b->len, s, len);
    b->len += len;
    b->buf[b->len] = '\0';
}

void rm_strbuf_printf(rm_strbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    strbuf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *rm_strbuf_take(rm_strbuf_t *b)
{
    char *s = b->buf != NULL ? b->buf : rm_xstrdup("");
    b->buf = NULL;
    b->len = b->cap = 0;
    return s;
}

uint8_t *rm_pb_pack(const ProtobufCMessage *msg, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = rm_xmalloc(n);
    *len = protobuf_c_message_pack(msg, buf);
    return buf;
}

ProtobufCMessage *rm_pb_copy(const ProtobufCMessage *msg)
{
    size_t len;
    uint8_t *buf = rm_pb_pack(msg, &len);
    ProtobufCMessage *copy = protobuf_c_message_unpack(msg->descriptor, NULL, len, buf);
    free(buf);
    if (copy == NULL)
        oom(len); /* our own bytes always unpack; only memory can fail */
    return copy;
}

int rm_pb_equal(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    size_t la = protobuf_c_message_get_packed_size(a);
    size_t lb = protobuf_c_message_get_packed_size(b);
    if (la != lb)
        return 0;
    size_t n;
    uint8_t *pa = rm_pb_pack(a, &n);
    uint8_t *pb = rm_pb_pack(b, &n);
    int eq = memcmp(pa, pb, la) == 0;
    free(pa);
    free(pb);
    return eq;
}

static uint64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t rm_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

uint64_t rm_wall_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}
