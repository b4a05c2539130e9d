/* common/fmt.h — number formatting for the request path, without snprintf.
 *
 * A proxied request writes a few numbers (its attempt number, status code for the metrics key,
 * a UUID for x-request-id); snprintf's format parsing was a measurable share of a request's
 * user-space CPU, so these write digits directly. Neither writes a NUL. Pure: any thread.
 */
#ifndef REMORA_COMMON_FMT_H
#define REMORA_COMMON_FMT_H

#include <stdint.h>
#include <string.h>

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

/* Writes the `digits` low nibbles of v as lowercase hex at p and returns the end. Two digits a
 * step from a 256-entry table: a request id is 32 digits. */
static inline char *rm__fmt_hex(char *p, uint64_t v, int digits)
{
    static const char pairs[513] =
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
        "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
        "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
        "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
        "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
        "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
        "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
        "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
    int i = digits;
    for (; i >= 2; i -= 2, v >>= 8)
        memcpy(p + i - 2, &pairs[(v & 0xff) * 2], 2);
    if (i == 1)
        p[0] = pairs[(v & 0xf) * 2 + 1];
    return p + digits;
}

#endif /* REMORA_COMMON_FMT_H */
