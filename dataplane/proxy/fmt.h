/* dataplane/proxy/fmt.h — number formatting for the request path, without snprintf.
 *
 * A proxied request writes a few numbers (its attempt number, status code for the metrics key,
 * a UUID for x-request-id); snprintf's format parsing was a measurable share of a request's
 * user-space CPU, so these write digits directly. Neither writes a NUL. Pure: any thread.
 */
#ifndef RM_PROXY_FMT_H
#define RM_PROXY_FMT_H

#include <stdint.h>

/* Writes v in decimal at p (at most 20 bytes) and returns the end. */
static inline char *rm__fmt_uint(char *p, uint64_t v)
{
    char rev[20];
    int n = 0;
    do {
        rev[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        *p++ = rev[--n];
    return p;
}

/* Writes the `digits` low nibbles of v as lowercase hex at p and returns the end. */
static inline char *rm__fmt_hex(char *p, uint64_t v, int digits)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--, v >>= 4)
        p[i] = hex[v & 0xf];
    return p + digits;
}

#endif /* RM_PROXY_FMT_H */
