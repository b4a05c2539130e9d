/* dataplane/http1/http1-int.h — internals shared by the http1 source files (not for users). */
#ifndef REMORA_DATAPLANE_HTTP1_HTTP1_INT_H
#define REMORA_DATAPLANE_HTTP1_HTTP1_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "dataplane/http1/http1-t.h"

/* 256-entry byte classes (http1_tables.c): one load per byte instead of a chain of compares. */
extern const uint8_t rm__http1_tchar[256];   /* token bytes */
extern const uint8_t rm__http1_vchar[256];   /* field-value bytes: HTAB SP VCHAR obs-text */
extern const uint8_t rm__http1_target[256];  /* request-target bytes */
extern const uint8_t rm__http1_regname[256]; /* reg-name bytes */
extern const uint8_t rm__http1_hex[256];     /* hex value + 1, or 0 */
extern const uint8_t rm__http1_lower[256];   /* ASCII lowercase */

#define RM__U8(p)    ((const unsigned char *)(p))
#define RM__DIGIT(c) ((unsigned)(c) - '0' < 10u)

/* Case-insensitive compare of s[0..n) with the lowercase literal lit of the same length, eight
 * bytes at a time by OR-ing in 0x20. That lowercases ASCII letters and is exact only because
 * of what both sides may hold: s is a field name, field value or request-target the parser has
 * already validated (no control bytes), and lit holds only bytes with 0x20 set (lowercase
 * letters, digits, '-', ':', '/'). A byte that ORs into one of those from something else would
 * be a control byte (0x0d -> '-', 0x10..0x19 -> digits, 0x1a -> ':', 0x0f -> '/'). Header
 * names were compared a table lookup per byte: a tenth of the parser's instructions. */
static inline int rm__http1_ieq(const char *s, size_t n, const char *lit, size_t lit_len)
{
    if (n != lit_len)
        return 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t a, b;
        memcpy(&a, s + i, 8);
        memcpy(&b, lit + i, 8);
        if ((a | 0x2020202020202020ull) != b)
            return 0;
    }
    for (; i < n; i++) {
        if ((RM__U8(s)[i] | 0x20u) != (unsigned char)lit[i])
            return 0;
    }
    return 1;
}

#define RM__IEQ(s, n, lit) rm__http1_ieq((s), (n), lit, sizeof(lit) - 1)

/* Iterates the elements of a comma-separated list (RFC 9110 5.6.1): each call stores the next
 * element with OWS trimmed (possibly empty) in *elem and returns 1, or returns 0 at the end.
 * *pos starts at the value; NULL marks the end (no pointer past end is ever formed). */
static inline int rm__http1_list_next(const char **pos, const char *end, rm_http1_span_t *elem)
{
    const char *p = *pos;
    if (p == NULL)
        return 0;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    const char *s = p;
    while (p < end && *p != ',')
        p++;
    const char *e = p;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    elem->ptr = s;
    elem->len = (size_t)(e - s);
    *pos = p < end ? p + 1 : NULL;
    return 1;
}

/* 1 if s[0..n) is a non-empty token. */
static inline int rm__http1_is_token(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!rm__http1_tchar[RM__U8(s)[i]])
            return 0;
    }
    return 1;
}

/* Sixteen bytes at a time over the bytes nearly every head is made of: rm__http1_skip16 stops at
 * the first byte outside the fast class (or where fewer than 16 bytes remain before bound) and
 * leaves the exact decision to the caller's byte-class loop, so it only has to be conservative.
 * Loads stay below bound. Without SSE2 it skips nothing. A field line's value and name were ~40%
 * of the parser's instructions one byte-table lookup at a time. */
typedef enum rm__http1_fast_class {
    RM__FAST_VALUE, /* field-value bytes: HTAB, SP, VCHAR, obs-text (all but other controls, DEL) */
    RM__FAST_NAME,  /* the letters, digits and '-' header names are made of (other tchars: slow) */
} rm__http1_fast_class_t;

#ifdef __SSE2__
/* 0xff in each byte of v that is in the class. `cls` is a constant at every call: inlined, only
 * its own branch remains. */
static inline __m128i rm__http1_in_class16(__m128i v, rm__http1_fast_class_t cls)
{
    if (cls == RM__FAST_VALUE) {
        const __m128i sp = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7f),
                      tab = _mm_set1_epi8('\t');
        __m128i ge_sp = _mm_cmpeq_epi8(_mm_max_epu8(v, sp), v); /* unsigned v >= SP */
        return _mm_andnot_si128(_mm_cmpeq_epi8(v, del),
                                _mm_or_si128(ge_sp, _mm_cmpeq_epi8(v, tab)));
    }
    const __m128i a = _mm_set1_epi8('a'), z = _mm_set1_epi8('z'), d0 = _mm_set1_epi8('0'),
                  d9 = _mm_set1_epi8('9'), dash = _mm_set1_epi8('-'), low = _mm_set1_epi8(0x20);
    __m128i l = _mm_or_si128(v, low); /* ASCII letters to lowercase */
    __m128i alpha =
        _mm_and_si128(_mm_cmpeq_epi8(_mm_max_epu8(l, a), l), _mm_cmpeq_epi8(_mm_min_epu8(l, z), l));
    __m128i digit = _mm_and_si128(_mm_cmpeq_epi8(_mm_max_epu8(v, d0), v),
                                  _mm_cmpeq_epi8(_mm_min_epu8(v, d9), v));
    return _mm_or_si128(_mm_or_si128(alpha, digit), _mm_cmpeq_epi8(v, dash));
}
#endif

static inline const unsigned char *
rm__http1_skip16(const unsigned char *p, const unsigned char *bound, rm__http1_fast_class_t cls)
{
#ifdef __SSE2__
    while (bound - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        unsigned bad = ~(unsigned)_mm_movemask_epi8(rm__http1_in_class16(v, cls)) & 0xffffu;
        if (bad != 0)
            return p + __builtin_ctz(bad);
        p += 16;
    }
#else
    (void)bound;
    (void)cls;
#endif
    return p;
}

/* memchr(p, '\n', n) for the short distances between line ends: inline, 16 bytes a step, where
 * the libc call's setup cost more than the search for a ~30-byte header line. */
static inline const char *rm__http1_find_lf(const char *p, size_t n)
{
#ifdef __SSE2__
    const __m128i lf = _mm_set1_epi8('\n');
    while (n >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, lf));
        if (m != 0)
            return p + __builtin_ctz(m);
        p += 16;
        n -= 16;
    }
#endif
    for (; n > 0; p++, n--) {
        if (*p == '\n')
            return p;
    }
    return NULL;
}

#endif /* REMORA_DATAPLANE_HTTP1_HTTP1_INT_H */
