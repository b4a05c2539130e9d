/* common/cidr.h — IPv4 CIDRs as users write them ("10.0.0.0/8", "169.254.169.254"), for
 * remora-init's --exclude-outbound-cidrs and the injector's remora.io/exclude-outbound-cidrs
 * annotation, which must accept exactly the same strings: the injector checks the annotation
 * before it hands the list to remora-init. */
#ifndef REMORA_COMMON_CIDR_H
#define REMORA_COMMON_CIDR_H

#include <stddef.h>

/* Longest normalized CIDR with its NUL: "255.255.255.255/32". */
#define RM_CIDR4_BUF 19

/*
 * Parses an IPv4 CIDR: a dotted-quad address (inet_pton's rules: four decimal parts, no leading
 * zeros) and an optional "/N" with N in 0..32 (decimal digits only); a bare address means /32.
 * Nothing else: no spaces, no IPv6 (remora-init programs iptables, not ip6tables). Host bits
 * are kept as written ("10.1.2.3/8"), as iptables accepts them.
 *
 * `s` is NUL-terminated and borrowed. On success writes the normalized form "A.B.C.D/N" into
 * out (n bytes; RM_CIDR4_BUF always suffice) and returns 0. Returns -EINVAL when s is not such a
 * CIDR (or is NULL), -ENOSPC when out is too small; out is untouched on failure. Pure: any
 * thread.
 */
int rm_cidr4_parse(const char *s, char *out, size_t n);

#endif /* REMORA_COMMON_CIDR_H */
