/* common/duration.c — parsing and printing of config durations ("250ms", "1.5s", "1m30s"). */
#include "common/duration.h"

#include <stdio.h>

/* One part's unit; "ms" must be tried before "m". */
typedef struct {
    const char *name;
    size_t len;
    uint64_t ms;
} unit_t;

static const unit_t units[] = {
    {"ms", 2, 1},
    {"s", 1, 1000},
    {"m", 1, 60000},
    {"h", 1, 3600000},
};

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Adds a*b to *acc; fails instead of wrapping, so "99999999999999999999h" is ERANGE. */
static int mul_add(uint64_t *acc, uint64_t a, uint64_t b)
{
    uint64_t prod;
    if (__builtin_mul_overflow(a, b, &prod))
        return RM_DURATION_ERANGE;
    if (__builtin_add_overflow(*acc, prod, acc))
        return RM_DURATION_ERANGE;
    return 0;
}

/* Parses one <number><unit> part at *pp, adds it to *total and advances *pp past it. */
static int parse_part(const char **pp, uint64_t *total)
{
    const char *p = *pp;
    uint64_t whole = 0, frac = 0, scale = 1;
    int rc;

    if (!is_digit(*p))
        return RM_DURATION_ESYNTAX;
    for (; is_digit(*p); p++) {
        if (__builtin_mul_overflow(whole, 10, &whole) ||
            __builtin_add_overflow(whole, (uint64_t)(*p - '0'), &whole))
            return RM_DURATION_ERANGE;
    }
    if (*p == '.') {
        const char *f = ++p, *end;
        if (!is_digit(*p))
            return RM_DURATION_ESYNTAX;
        while (is_digit(*p))
            p++;
        /* Trailing zeros carry no precision: "1.500s" is 1.5s. */
        end = p;
        while (end > f && end[-1] == '0')
            end--;
        /*
         * A fraction is exact in milliseconds only if 10^k divides frac * unit; the largest
         * unit (3,600,000 ms = 2^7 * 3^2 * 5^5) allows at most 7 significant decimals, so more
         * than 9 can never be exact and the arithmetic below cannot overflow.
         */
        if (end - f > 9)
            return RM_DURATION_EPRECISION;
        for (; f < end; f++) {
            frac = frac * 10 + (uint64_t)(*f - '0');
            scale *= 10;
        }
    }
    if (*p == '\0')
        return RM_DURATION_ENOUNIT;
    if (!is_alpha(*p))
        return RM_DURATION_ESYNTAX;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        const unit_t *u = &units[i];
        size_t k;
        for (k = 0; k < u->len && p[k] == u->name[k]; k++)
            ;
        if (k != u->len || is_alpha(p[k]))
            continue;
        if ((frac * u->ms) % scale != 0)
            return RM_DURATION_EPRECISION;
        rc = mul_add(total, whole, u->ms);
        if (rc == 0)
            rc = mul_add(total, frac * u->ms / scale, 1);
        if (rc < 0)
            return rc;
        *pp = p + u->len;
        return 0;
    }
    return RM_DURATION_EUNIT;
}

int rm_duration_parse(const char *s, uint64_t *out_ms)
{
    uint64_t total = 0;
    const char *p = s;
    int rc;

    if (s == NULL || *s == '\0')
        return RM_DURATION_EEMPTY;
    if (*s == '-')
        return RM_DURATION_ENEGATIVE;
    while (*p != '\0') {
        rc = parse_part(&p, &total);
        if (rc < 0)
            return rc;
    }
    *out_ms = total;
    return 0;
}

int rm_duration_format(uint64_t ms, char *buf, size_t n)
{
    if (buf == NULL && n > 0)
        return -1;
    if (ms == 0)
        return snprintf(buf, n, "0s");
    /* Largest unit first; the table is ordered smallest first. */
    for (size_t i = sizeof(units) / sizeof(units[0]); i-- > 0;) {
        if (ms % units[i].ms == 0)
            return snprintf(buf, n, "%llu%s", (unsigned long long)(ms / units[i].ms),
                            units[i].name);
    }
    return -1; /* unreachable: ms always divides by 1 */
}

const char *rm_duration_strerror(int code)
{
    switch (code) {
    case 0:
        return "ok";
    case RM_DURATION_EEMPTY:
        return "is empty";
    case RM_DURATION_ENEGATIVE:
        return "must not be negative";
    case RM_DURATION_ENOUNIT:
        return "is missing a unit (use ms, s, m or h)";
    case RM_DURATION_EUNIT:
        return "has an unknown unit (use ms, s, m or h)";
    case RM_DURATION_ERANGE:
        return "is too large";
    case RM_DURATION_ESYNTAX:
        return "is not a number followed by a unit (like 250ms, 1.5s, 2m)";
    case RM_DURATION_EPRECISION:
        return "is finer than a millisecond";
    default:
        return "is not a valid duration";
    }
}
