/* dataplane/proxy/tcp_tuning.h — socket options for the proxy's TCP legs.
 *
 * A sidecar's traffic has two kinds of legs: app <-> sidecar inside the pod, always over the
 * loopback device, and sidecar <-> sidecar over the pod network. Congestion control only means
 * something on the second kind: loopback never drops or queues a segment. Yet the host's default
 * algorithm applies to every socket, and on hosts that choose BBR (a pacing, model-based
 * algorithm) each ACK on a loopback leg runs BBR's bandwidth and RTT model for nothing: ~2.5% of
 * the proxy's CPU per request in a profile here. Loopback legs therefore use Reno, the cheapest
 * algorithm the kernel always has; network legs keep the operator's choice.
 */
#ifndef REMORA_DATAPLANE_PROXY_TCP_TUNING_H
#define REMORA_DATAPLANE_PROXY_TCP_TUNING_H

#include <stdbool.h>
#include <sys/socket.h>

/* The algorithm loopback legs use. */
#define RM_LOOPBACK_CONGESTION "reno"

/* True for 127.0.0.0/8, ::1 and IPv4-mapped 127.0.0.0/8. */
bool rm_addr_is_loopback(const struct sockaddr *sa);

/* Sets RM_LOOPBACK_CONGESTION on fd: a socket about to connect to a loopback address, or a
 * listener whose accepted connections all come from the pod's own app (Linux hands a listener's
 * algorithm, when set explicitly, to the connections it accepts). Best effort: a kernel or
 * sandbox that refuses keeps its default, which is only slower. */
void rm_tcp_use_loopback_congestion(int fd);

#endif /* REMORA_DATAPLANE_PROXY_TCP_TUNING_H */
