/* dataplane/codec/h1_test_util.h — what both sides' codec tests share: literal spans and fields,
 * taking what a codec wrote out of its buffer, and asserting on the fields of a head re-parsed by
 * dataplane/http1. Test code only (include after cmocka.h). */
#ifndef REMORA_DATAPLANE_CODEC_H1_TEST_UTIL_H
#define REMORA_DATAPLANE_CODEC_H1_TEST_UTIL_H

#include <string.h>
#include <strings.h>

#include "dataplane/buffer/buffer.h"
#include "dataplane/http1/http1.h"

#define S(s)                                                                                       \
    {                                                                                              \
        (s), sizeof(s) - 1                                                                         \
    }
#define F(n, v)                                                                                    \
    {                                                                                              \
        S(n), S(v)                                                                                 \
    }
#define NSCRATCH 64
#define BIG      (1u << 20)

#define assert_span(sp, s)                                                                         \
    do {                                                                                           \
        rm_span_t sp_ = (sp);                                                                      \
        const char *s_ = (s);                                                                      \
        assert_int_equal(sp_.len, strlen(s_));                                                     \
        if (sp_.len > 0)                                                                           \
            assert_memory_equal(sp_.ptr, s_, sp_.len);                                             \
    } while (0)

/* What a codec wrote, taken out of its output buffer as a NUL-terminated text. */
typedef struct taken {
    char text[16384];
    size_t len;
} taken_t;

static inline void take_out(rm_buf_t *out, taken_t *t)
{
    assert_true(out->len < sizeof(t->text));
    t->len = out->len;
    if (t->len > 0)
        memcpy(t->text, rm_buf_head(out), t->len);
    t->text[t->len] = '\0';
    rm_buf_consume(out, out->len);
}

/* How many of fields[0..n) are named `name` (case-insensitive). */
static inline size_t fields_named(const rm_http1_header_t *fields, size_t n, const char *name)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        if (fields[i].name.len == strlen(name) &&
            strncasecmp(fields[i].name.ptr, name, fields[i].name.len) == 0)
            count++;
    return count;
}

/* Exactly one field `fname` among fields[0..n), with the value `fval` (case-sensitive value). */
#define assert_one_field(fields, n, fname, fval)                                                   \
    do {                                                                                           \
        assert_int_equal(fields_named((fields), (n), (fname)), 1);                                 \
        ssize_t i_ = rm_http1_header_find((fields), (n), (fname), strlen(fname));                  \
        assert_span((fields)[i_].value, (fval));                                                   \
    } while (0)

#endif /* REMORA_DATAPLANE_CODEC_H1_TEST_UTIL_H */
