/* tests/backend/util.c — small parsers (durations, numbers, HOST:PORT) and HTTP status names. */
#include <string.h>

#include "tests/backend/backend.h"

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int rm__u64_parse(const char *s, size_t n, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return -1;
        if (v > (max - (uint64_t)(s[i] - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Microseconds per unit at s[0..n); *ulen gets the unit's length. 0 when no unit is there. */
static uint64_t unit_us(const char *s, size_t n, size_t *ulen)
{
    if (n >= 2 && s[0] == 'm' && s[1] == 's') {
        *ulen = 2;
        return 1000;
    }
    if (n >= 2 && s[0] == 'u' && s[1] == 's') {
        *ulen = 2;
        return 1;
    }
    *ulen = 1;
    if (n >= 1 && s[0] == 's')
        return 1000000;
    if (n >= 1 && s[0] == 'm')
        return 60ULL * 1000000;
    if (n >= 1 && s[0] == 'h')
        return 3600ULL * 1000000;
    return 0;
}

int rm__duration_parse(const char *s, size_t n, uint64_t *out_us)
{
    uint64_t total = 0;
    size_t i = 0;

    if (n == 1 && s[0] == '0') {
        *out_us = 0;
        return 0;
    }
    if (n == 0)
        return -1;
    /* One or more <number><unit> parts, as in "1m30s"; the sum is bounded by RM__DELAY_US_MAX. */
    while (i < n) {
        uint64_t ip = 0, frac = 0, scale = 1, unit, part;
        size_t start = i, ulen;

        while (i < n && is_digit(s[i])) {
            if (ip > RM__DELAY_US_MAX)
                return -1;
            ip = ip * 10 + (uint64_t)(s[i] - '0');
            i++;
        }
        if (i == start)
            return -1;
        if (i < n && s[i] == '.') {
            size_t fstart = ++i;

            while (i < n && is_digit(s[i])) {
                /* Digits past the ninth are below a microsecond for every unit: dropped. */
                if (i - fstart < 9) {
                    frac = frac * 10 + (uint64_t)(s[i] - '0');
                    scale *= 10;
                }
                i++;
            }
            if (i == fstart)
                return -1;
        }
        unit = unit_us(s + i, n - i, &ulen);
        if (unit == 0)
            return -1;
        i += ulen;
        if (ip > RM__DELAY_US_MAX / unit)
            return -1;
        part = ip * unit + frac * unit / scale;
        if (part > RM__DELAY_US_MAX - total)
            return -1;
        total += part;
    }
    *out_us = total;
    return 0;
}

int rm__percent_parse(const char *s, uint32_t *out_bp)
{
    uint64_t ip = 0;
    uint32_t frac = 0;
    size_t i = 0, start;

    if (s == NULL)
        return -1;
    while (is_digit(s[i])) {
        ip = ip * 10 + (uint64_t)(s[i] - '0');
        if (ip > 100)
            return -1;
        i++;
    }
    if (i == 0)
        return -1;
    if (s[i] == '.') {
        start = ++i;
        while (is_digit(s[i])) {
            if (i - start >= 2)
                return -1; /* finer than a basis point */
            frac = frac * 10 + (uint32_t)(s[i] - '0');
            i++;
        }
        if (i == start)
            return -1;
        if (i - start == 1)
            frac *= 10;
    }
    if (s[i] != '\0' || ip * 100 + frac > 10000)
        return -1;
    *out_bp = (uint32_t)(ip * 100 + frac);
    return 0;
}

int rm__hostport_split(const char *s, char *host, size_t hostcap, char *port, size_t portcap)
{
    const char *hs, *he, *ps;
    size_t hl, pl;
    uint64_t pv;

    if (s == NULL)
        return -1;
    if (s[0] == '[') {
        hs = s + 1;
        he = strchr(hs, ']');
        if (he == NULL || he[1] != ':')
            return -1;
        ps = he + 2;
    } else {
        he = strrchr(s, ':');
        if (he == NULL || memchr(s, ':', (size_t)(he - s)) != NULL)
            return -1; /* no port, or a bare IPv6 address that needs brackets */
        hs = s;
        ps = he + 1;
    }
    hl = (size_t)(he - hs);
    pl = strlen(ps);
    if (hl + 1 > hostcap || pl + 1 > portcap || rm__u64_parse(ps, pl, 65535, &pv) < 0)
        return -1;
    memcpy(host, hs, hl);
    host[hl] = '\0';
    memcpy(port, ps, pl);
    port[pl] = '\0';
    return 0;
}

int rm__fail_select(uint64_t seq, uint32_t bp)
{
    uint64_t a, b;

    if (seq == 0 || bp == 0)
        return 0;
    /* floor(k * bp / 10000) without overflow: split k into whole ten-thousands and the rest. */
    a = (seq / 10000) * bp + (seq % 10000) * bp / 10000;
    b = ((seq - 1) / 10000) * bp + ((seq - 1) % 10000) * bp / 10000;
    return a > b;
}
