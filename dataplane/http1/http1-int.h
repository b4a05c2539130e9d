/* dataplane/http1/http1-int.h — internals shared by the http1 source files (not for users). */
#ifndef REMORA_DATAPLANE_HTTP1_HTTP1_INT_H
#define REMORA_DATAPLANE_HTTP1_HTTP1_INT_H

#include <stddef.h>
#include <stdint.h>

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

/* Case-insensitive compare of s[0..n) with the lowercase literal lit of the same length. */
static inline int rm__http1_ieq(const char *s, size_t n, const char *lit, size_t lit_len)
{
    if (n != lit_len)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (rm__http1_lower[RM__U8(s)[i]] != (unsigned char)lit[i])
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

#endif /* REMORA_DATAPLANE_HTTP1_HTTP1_INT_H */
