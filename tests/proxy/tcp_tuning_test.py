"""tests/proxy/tcp_tuning_test.py — which congestion control each of the proxy's TCP legs uses.

Loopback legs (the app's connections to the outbound listener, the inbound side's connections to
the local app, any connection to a loopback address) use Reno: loopback never loses a segment,
and the host default (BBR here) runs its model on every ACK for nothing. Legs over the pod
network keep the host's default. Read from the kernel with `ss -tinp`, per socket of the proxy.
"""
import socket
import subprocess
import unittest

from proxy_fixture import ProxyHarness, service_yaml
from remora_harness import read_response

LOOPBACK_ALGORITHM = "reno"


def host_default_algorithm():
    with open("/proc/sys/net/ipv4/tcp_congestion_control") as f:
        return f.read().strip()


def non_loopback_ipv4():
    """An address of this host outside 127/8, or None (connections to it still use the loopback
    device, but nothing in the address says so: the proxy must treat it as a network leg)."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        fields = line.split()
        if "inet" in fields:
            return fields[fields.index("inet") + 1].split("/")[0]
    return None


def proxy_sockets(pid):
    """{(local "ip:port", peer "ip:port"): algorithm} for every established TCP socket of pid."""
    out = subprocess.run(["ss", "-tinpH", "state", "established"], capture_output=True,
                         text=True, check=True).stdout.splitlines()
    found = {}
    for i, line in enumerate(out):
        if "pid=%d," % pid not in line or i + 1 >= len(out):
            continue
        fields = line.split()
        found[(fields[2], fields[3])] = out[i + 1].split()[0]
    return found


def leg(sockets, local_port=None, peer=None):
    """The algorithm of the one socket whose local port or peer address matches."""
    hits = [alg for (loc, pr), alg in sockets.items()
            if (local_port is not None and loc.endswith(":%d" % local_port)) or pr == peer]
    if len(hits) != 1:
        raise AssertionError("expected one socket for port %s / peer %s in %s" % (local_port, peer, sockets))
    return hits[0]


def open_exchange(port, host, addr="127.0.0.1"):
    """A kept-alive client connection to addr:port that has completed one request for host (so
    the proxy's upstream connection for it exists and sits in the pool)."""
    s = socket.create_connection((addr, port))
    s.sendall(b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % host.encode())
    r, _ = read_response(s)
    if r.status != 200:
        raise AssertionError("status %d through :%d" % (r.status, port))
    return s


class TcpTuningTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.default = host_default_algorithm()
        cls.h = ProxyHarness()

    @classmethod
    def tearDownClass(cls):
        cls.h.close()

    def setUp(self):
        if self.default == LOOPBACK_ALGORITHM:
            self.skipTest("the host default is already %s: nothing tells the legs apart" % self.default)

    def test_loopback_legs_use_reno(self):
        backend = self.h.backend("local", "v1")
        proxy = self.h.proxy(service_yaml("local", [("127.0.0.1:%d" % backend.port, "v1")]))
        client = open_exchange(proxy.outbound, "local")
        try:
            sockets = proxy_sockets(proxy.pid)
            self.assertEqual(leg(sockets, local_port=proxy.outbound), LOOPBACK_ALGORITHM,
                             "the app's connection to the outbound listener")
            self.assertEqual(leg(sockets, peer="127.0.0.1:%d" % backend.port), LOOPBACK_ALGORITHM,
                             "the proxy's connection to a loopback upstream")
        finally:
            client.close()

    def test_network_legs_keep_the_host_default(self):
        ip = non_loopback_ipv4()
        if ip is None:
            self.skipTest("this host has no address outside 127/8")
        remote = self.h.backend("remote", "v1", host=ip)
        app = self.h.backend("app", "v1")
        # Bound to every address: the inbound listener takes other pods' connections, the
        # outbound one still serves only the pod's own app.
        proxy = self.h.proxy(service_yaml("remote", [("%s:%d" % (ip, remote.port), "v1")]),
                             extra=["--bind", "0.0.0.0", "--app-port", str(app.port)])
        outbound = open_exchange(proxy.outbound, "remote")
        peer_pod = open_exchange(proxy.inbound, "app", addr=ip)
        try:
            sockets = proxy_sockets(proxy.pid)
            self.assertEqual(leg(sockets, peer="%s:%d" % (ip, remote.port)), self.default,
                             "the connection to another pod's address")
            self.assertEqual(leg(sockets, local_port=proxy.inbound), self.default,
                             "another pod's connection to the inbound listener")
            self.assertEqual(leg(sockets, local_port=proxy.outbound), LOOPBACK_ALGORITHM,
                             "the app's connection to the outbound listener bound to 0.0.0.0")
            self.assertEqual(leg(sockets, peer="127.0.0.1:%d" % app.port), LOOPBACK_ALGORITHM,
                             "the inbound side's connection to the local app")
        finally:
            outbound.close()
            peer_pod.close()


if __name__ == "__main__":
    unittest.main()
