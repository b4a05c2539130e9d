/* common/cidr.h — CIDRs as users write them ("10.0.0.0/8", "169.254.169.254", "fd00::/8"), for
 * remora-init's --exclude-outbound-cidrs and the injector's remora.io/exclude-outbound-cidrs
 * annotation, which must accept exactly the same strings: the injector checks the annotation
 * before it hands the list to remora-init, which gives the IPv4 ones to iptables and the IPv6
 * ones to ip6tables. */
#ifndef REMORA_COMMON_CIDR_H
#define REMORA_COMMON_CIDR_H

#include <stddef.h>

/* Longest normalized IPv4 CIDR with its NUL: "255.255.255.255/32". */
#define RM_CIDR4_BUF 19
/* Longest normalized IPv6 CIDR with its NUL: inet_ntop's longest form (45 characters,
 * INET6_ADDRSTRLEN - 1) and "/128". */
#define RM_CIDR6_BUF 50
/* Enough for either family (rm_cidr_parse). */
#define RM_CIDR_BUF RM_CIDR6_BUF

/*
 * Parses an IPv4 CIDR: a dotted-quad address (inet_pton's rules: four decimal parts, no leading
 * zeros) and an optional "/N" with N in 0..32 (decimal digits only); a bare address means /32.
 * Nothing else: no spaces, no IPv6 (see rm_cidr6_parse). Host bits are kept as written
 * ("10.1.2.3/8"), as iptables accepts them.
 *
 * `s` is NUL-terminated and borrowed. On success writes the normalized form "A.B.C.D/N" into
 * out (n bytes; RM_CIDR4_BUF always suffice) and returns 0. Returns -EINVAL when s is not such a
 * CIDR (or is NULL), -ENOSPC when out is too small; out is untouched on failure. Pure: any
 * thread.
 */
int rm_cidr4_parse(const char *s, char *out, size_t n);

/*
 * Parses an IPv6 CIDR: an address in any form inet_pton(AF_INET6) takes ("fd00::", "2001:db8::1",
 * "::", a trailing dotted quad) and an optional "/N" with N in 0..128 (decimal digits only); a bare
 * address means /128. Refused besides what inet_pton refuses (zone ids "fe80::1%eth0", brackets,
 * spaces): IPv4-mapped addresses (::ffff:a.b.c.d), because IPv4 traffic from a dual-stack socket
 * leaves as IPv4 and is matched by iptables, so an ip6tables rule for them would never match —
 * write the IPv4 CIDR instead. Host bits are kept, as ip6tables accepts them.
 *
 * Same contract as rm_cidr4_parse; the normalized form is inet_ntop's (lower case, the longest
 * run of zero groups as "::"), then "/N": "FD00:0::/08" becomes "fd00::/8". RM_CIDR6_BUF always
 * suffice.
 */
int rm_cidr6_parse(const char *s, char *out, size_t n);

/*
 * Either family: returns 4 when s is an IPv4 CIDR (rm_cidr4_parse), 6 when it is an IPv6 one
 * (rm_cidr6_parse), with the normalized form in out (RM_CIDR_BUF always suffice); otherwise the
 * error of the parser that the string's form selects (a ':' means IPv6). Pure: any thread.
 */
int rm_cidr_parse(const char *s, char *out, size_t n);

#endif /* REMORA_COMMON_CIDR_H */
