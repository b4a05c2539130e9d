"""tests/proxy/timeouts_test.py — connect, route, header and idle timeouts; upstream faults."""
import socket
import time
import unittest

from proxy_fixture import ProxyHarness, get, service_yaml
from remora_harness import free_port, read_response


class TimeoutsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = ProxyHarness()
        cls.backend = cls.h.backend("svc", "v1")
        dead_port = free_port()  # nothing listens here: connection refused
        # A listener whose accept queue is full: the kernel drops new SYNs, so connects hang.
        cls.full = socket.socket()
        cls.full.bind(("127.0.0.1", 0))
        cls.full.listen(0)
        cls.fillers = []
        for _ in range(4):
            f = socket.socket()
            f.setblocking(False)
            try:
                f.connect(cls.full.getsockname())
            except BlockingIOError:
                pass
            cls.fillers.append(f)
        full_port = cls.full.getsockname()[1]
        cfg = service_yaml("svc", [("127.0.0.1:%d" % cls.backend.port, "v1")]) + \
            "---\n" + service_yaml("dead", [("127.0.0.1:%d" % dead_port, "v1")]) + \
            "---\n" + service_yaml("blackhole", [("127.0.0.1:%d" % full_port, "v1")]) + \
            """---
kind: Route
name: svc-timeout
service: svc
rules:
  - name: slow
    timeout: 300ms
    destinations: [{version: v1, weight: 1}]
"""
        cls.proxy = cls.h.proxy(cfg, extra=["--connect-timeout", "200ms", "--header-timeout", "300ms",
                                            "--idle-timeout", "500ms"])

    @classmethod
    def tearDownClass(cls):
        cls.h.close()
        for f in cls.fillers:
            f.close()
        cls.full.close()

    def test_route_timeout_is_504(self):
        t = time.time()
        r = get(self.proxy.outbound, "/", headers={"x-backend-delay": "2s"})
        self.assertEqual(r.status, 504)
        self.assertLess(time.time() - t, 1.5)

    def test_refused_is_503(self):
        self.assertEqual(get(self.proxy.outbound, "/", host="dead").status, 503)

    def test_connect_timeout_is_503(self):
        t = time.time()
        r = get(self.proxy.outbound, "/", host="blackhole")
        self.assertEqual(r.status, 503)
        self.assertLess(time.time() - t, 1.5)

    def test_header_timeout_is_408(self):
        s = socket.create_connection(("127.0.0.1", self.proxy.outbound))
        s.sendall(b"GET / HTTP/1.1\r\nHost: svc\r\n")  # never finished
        r, _ = read_response(s, timeout=3)
        self.assertEqual(r.status, 408)
        s.close()

    def test_idle_keepalive_connection_closed(self):
        s = socket.create_connection(("127.0.0.1", self.proxy.outbound))
        s.settimeout(3)
        t = time.time()
        self.assertEqual(s.recv(1), b"")  # closed by the proxy after the idle timeout
        self.assertGreater(time.time() - t, 0.3)
        s.close()

    def test_upstream_reset_before_response_is_502(self):
        self.assertEqual(get(self.proxy.outbound, "/", headers={"x-backend-fault": "reset"}).status, 502)
        self.assertEqual(get(self.proxy.outbound, "/", headers={"x-backend-fault": "close"}).status, 502)

    def test_malformed_upstream_response_is_502(self):
        self.assertEqual(get(self.proxy.outbound, "/", headers={"x-backend-fault": "malformed"}).status, 502)

    def test_close_after_headers_truncates_client(self):
        with self.assertRaises(ConnectionError):
            get(self.proxy.outbound, "/", headers={"x-backend-fault": "close-after-headers"})
        # the proxy keeps serving
        self.assertEqual(get(self.proxy.outbound, "/").status, 200)


if __name__ == "__main__":
    unittest.main()
