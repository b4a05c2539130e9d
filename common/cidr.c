/* common/cidr.c — the IPv4 CIDR parser remora-init and the injector share (see cidr.h). */
#include "common/cidr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rm_cidr4_parse(const char *s, char *out, size_t n)
{
    char addr[16]; /* INET_ADDRSTRLEN */
    struct in_addr a;
    long prefix = 32;

    if (s == NULL)
        return -EINVAL;
    const char *slash = strchr(s, '/');
    size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof(addr))
        return -EINVAL;
    memcpy(addr, s, alen);
    addr[alen] = '\0';
    if (inet_pton(AF_INET, addr, &a) != 1)
        return -EINVAL;
    if (slash != NULL) {
        char *end;
        /* strtol alone would take a sign or leading spaces. */
        if (!isdigit((unsigned char)slash[1]))
            return -EINVAL;
        errno = 0;
        prefix = strtol(slash + 1, &end, 10);
        if (errno != 0 || *end != '\0' || prefix > 32)
            return -EINVAL;
    }
    /* Measure first so that out stays untouched when it is too small. */
    int len = snprintf(NULL, 0, "%s/%ld", addr, prefix);
    if (out == NULL || len < 0 || (size_t)len >= n)
        return -ENOSPC;
    snprintf(out, n, "%s/%ld", addr, prefix);
    return 0;
}
