/* dataplane/proxy/tcp_tuning.c — socket options for the proxy's TCP legs (see the header). */
#include "dataplane/proxy/tcp_tuning.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

bool rm_addr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

void rm_tcp_use_loopback_congestion(int fd)
{
    (void)setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, RM_LOOPBACK_CONGESTION,
                     (socklen_t)strlen(RM_LOOPBACK_CONGESTION));
}
