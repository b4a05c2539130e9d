/* common/cidr.c — the IPv4 and IPv6 CIDR parsers remora-init and the injector share (see cidr.h).
 */
#include "common/cidr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Splits s at its '/' into the address (copied into addr, NUL-terminated) and the prefix length
 * (*prefix, or max when there is no '/'). -EINVAL when the address part is empty or too long for
 * addr, or the prefix is not decimal digits in 0..max. */
static int split_cidr(const char *s, char *addr, size_t addr_size, long max, long *prefix)
{
    const char *slash = strchr(s, '/');
    size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= addr_size)
        return -EINVAL;
    memcpy(addr, s, alen);
    addr[alen] = '\0';
    *prefix = max;
    if (slash != NULL) {
        char *end;
        /* strtol alone would take a sign or leading spaces. */
        if (!isdigit((unsigned char)slash[1]))
            return -EINVAL;
        errno = 0;
        *prefix = strtol(slash + 1, &end, 10);
        if (errno != 0 || *end != '\0' || *prefix > max)
            return -EINVAL;
    }
    return 0;
}

/* Writes "addr/prefix" into out, measuring first so that out stays untouched when too small. */
static int format_cidr(const char *addr, long prefix, char *out, size_t n)
{
    int len = snprintf(NULL, 0, "%s/%ld", addr, prefix);
    if (out == NULL || len < 0 || (size_t)len >= n)
        return -ENOSPC;
    snprintf(out, n, "%s/%ld", addr, prefix);
    return 0;
}

int rm_cidr4_parse(const char *s, char *out, size_t n)
{
    char addr[INET_ADDRSTRLEN];
    struct in_addr a;
    long prefix;

    if (s == NULL || split_cidr(s, addr, sizeof(addr), 32, &prefix) < 0)
        return -EINVAL;
    if (inet_pton(AF_INET, addr, &a) != 1)
        return -EINVAL;
    /* inet_pton takes only the canonical dotted quad, so the text as written is normalized. */
    return format_cidr(addr, prefix, out, n);
}

int rm_cidr6_parse(const char *s, char *out, size_t n)
{
    char addr[INET6_ADDRSTRLEN], canon[INET6_ADDRSTRLEN];
    struct in6_addr a;
    long prefix;

    if (s == NULL || split_cidr(s, addr, sizeof(addr), 128, &prefix) < 0)
        return -EINVAL;
    if (inet_pton(AF_INET6, addr, &a) != 1 || IN6_IS_ADDR_V4MAPPED(&a))
        return -EINVAL;
    if (inet_ntop(AF_INET6, &a, canon, sizeof(canon)) == NULL)
        return -EINVAL;
    return format_cidr(canon, prefix, out, n);
}

int rm_cidr_parse(const char *s, char *out, size_t n)
{
    int rc;
    if (s == NULL)
        return -EINVAL;
    if (strchr(s, ':') != NULL) {
        rc = rm_cidr6_parse(s, out, n);
        return rc < 0 ? rc : 6;
    }
    rc = rm_cidr4_parse(s, out, n);
    return rc < 0 ? rc : 4;
}
