/* tests/backend/buf.c — growable byte buffer and the JSON string escaper of the test backend. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/backend/backend.h"

void rm__buf_init(rm__buf_t *b)
{
    memset(b, 0, sizeof(*b));
}

void rm__buf_free(rm__buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

int rm__buf_reserve(rm__buf_t *b, size_t extra)
{
    size_t want;
    size_t cap;
    char *p;

    if (b->oom)
        return -1;
    if (extra <= b->cap - b->len)
        return 0;
    if (extra > SIZE_MAX / 2 - b->len)
        goto fail;
    want = b->len + extra;
    cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap *= 2;
    p = realloc(b->data, cap);
    if (p == NULL)
        goto fail;
    b->data = p;
    b->cap = cap;
    return 0;
fail:
    b->oom = 1;
    return -1;
}

int rm__buf_append(rm__buf_t *b, const void *p, size_t n)
{
    if (n == 0)
        return b->oom ? -1 : 0;
    if (rm__buf_reserve(b, n) < 0)
        return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int rm__buf_puts(rm__buf_t *b, const char *s)
{
    return rm__buf_append(b, s, strlen(s));
}

int rm__buf_printf(rm__buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    /* Try in the free space first: nearly every call fits, so one vsnprintf is the common case. */
    if (rm__buf_reserve(b, 64) < 0)
        return -1;
    va_start(ap, fmt);
    n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return -1;
    }
    if ((size_t)n >= b->cap - b->len) {
        if (rm__buf_reserve(b, (size_t)n + 1) < 0)
            return -1;
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
    return 0;
}

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0 if it is not valid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t need;
    unsigned int cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        need = 2;
        cp = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        need = 3;
        cp = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        need = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (n < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    /* Overlong forms, surrogates and code points past U+10FFFF are not valid UTF-8. */
    if ((need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return need;
}

int rm__buf_json_string(rm__buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    size_t run = 0; /* start of the pending run of bytes that need no escape */

    /* Worst case is six bytes out per byte in; reserving it once keeps the loop branch-light. */
    if (n > (SIZE_MAX - 2) / 6 || rm__buf_reserve(b, n * 6 + 2) < 0)
        return -1;
    b->data[b->len++] = '"';
    while (i < n) {
        unsigned char c = u[i];
        size_t k;
        char *o;

        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            i++;
            continue;
        }
        if (c >= 0x80 && (k = utf8_len(u + i, n - i)) > 0) {
            i += k;
            continue;
        }
        memcpy(b->data + b->len, s + run, i - run);
        b->len += i - run;
        o = b->data + b->len;
        o[0] = '\\';
        if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t') {
            o[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : (char)c;
            b->len += 2;
        } else {
            /* Other control bytes as \u00XX; a byte that is not UTF-8 as U+FFFD. */
            unsigned int cp = c < 0x80 ? c : 0xfffd;

            o[1] = 'u';
            o[2] = hex[(cp >> 12) & 15];
            o[3] = hex[(cp >> 8) & 15];
            o[4] = hex[(cp >> 4) & 15];
            o[5] = hex[cp & 15];
            b->len += 6;
        }
        i++;
        run = i;
    }
    if (n > run) {
        memcpy(b->data + b->len, s + run, n - run);
        b->len += n - run;
    }
    b->data[b->len++] = '"';
    return 0;
}
