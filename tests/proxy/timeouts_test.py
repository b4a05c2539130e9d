"""tests/proxy/timeouts_test.py — connect, route, header and idle timeouts; upstream faults."""
import json
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

    # The deadlines below move with every request on a kept-alive connection without restarting a
    # timer (dataplane/proxy/deadline.h): each must count from the latest request, not the first.

    def test_idle_timeout_counts_from_the_last_request(self):
        s = socket.create_connection(("127.0.0.1", self.proxy.outbound))
        for _ in range(5):  # 5 x 0.3 s: past 500 ms from the first request, never from the last
            s.sendall(b"GET / HTTP/1.1\r\nHost: svc\r\n\r\n")
            r, _ = read_response(s, timeout=3)
            self.assertEqual(r.status, 200)
            time.sleep(0.3)
        t = time.time()
        s.settimeout(3)
        self.assertEqual(s.recv(1), b"")
        waited = time.time() - t + 0.3
        self.assertGreater(waited, 0.45)
        self.assertLess(waited, 1.5)
        s.close()

    def test_route_timeout_counts_from_its_request_on_a_reused_connection(self):
        s = socket.create_connection(("127.0.0.1", self.proxy.outbound))
        for _ in range(3):
            s.sendall(b"GET / HTTP/1.1\r\nHost: svc\r\n\r\n")
            self.assertEqual(read_response(s, timeout=3)[0].status, 200)
            time.sleep(0.2)
        t = time.time()
        s.sendall(b"GET / HTTP/1.1\r\nHost: svc\r\nx-backend-delay: 2s\r\n\r\n")
        r, _ = read_response(s, timeout=3)
        self.assertEqual(r.status, 504)
        self.assertGreater(time.time() - t, 0.25)  # not cut short by an earlier deadline
        self.assertLess(time.time() - t, 1.0)
        s.close()

    def test_pooled_upstream_idle_timeout_counts_from_its_last_use(self):
        backend = self.h.backend("pool", "v1")
        proxy = self.h.proxy(service_yaml("pool", [("127.0.0.1:%d" % backend.port, "v1")]),
                             extra=["--upstream-idle-timeout", "400ms"])

        def backend_stats():
            return json.loads(get(backend.port, "/__backend/stats", host="pool").body)

        before = backend_stats()["connections"]  # the harness's port check counts too
        for _ in range(6):  # one request every 0.25 s for 1.5 s: the pooled connection is reused
            self.assertEqual(get(proxy.outbound, "/", host="pool").status, 200)
            time.sleep(0.25)
        st = backend_stats()
        self.assertEqual(st["connections"] - before, 2,  # the pooled one, and this stats request's
                         "the pool closed its connection while in use or idle < 400 ms: %r" % st)
        time.sleep(0.8)
        st = backend_stats()
        self.assertEqual(st["active"], 1, "only this stats request's own connection is left")

    def test_upstream_reset_before_response_is_502(self):
        self.assertEqual(get(self.proxy.outbound, "/", headers={"x-backend-fault": "reset"}).status, 502)
        self.assertEqual(get(self.proxy.outbound, "/", headers={"x-backend-fault": "close"}).status, 502)

    def test_malformed_upstream_response_is_502(self):
        self.assertEqual(get(self.proxy.outbound, "/", headers={"x-backend-fault": "malformed"}).status, 502)

    def test_hanging_upstream_is_504_and_others_unaffected(self):
        t = time.time()
        r = get(self.proxy.outbound, "/", headers={"x-backend-fault": "hang"})
        self.assertEqual(r.status, 504)
        self.assertLess(time.time() - t, 1.5)
        self.assertEqual(get(self.proxy.outbound, "/").status, 200)

    def test_upstream_that_never_reads(self):
        # A 16 MiB body to an upstream that accepts but never reads: the proxy's buffers stay
        # bounded (back-pressure), the route timeout answers 504, the proxy keeps serving.
        def private_kb():
            with open("/proc/%d/status" % self.proxy.pid) as f:
                return int([l for l in f if l.startswith("RssAnon:")][0].split()[1])

        before = private_kb()
        s = socket.create_connection(("127.0.0.1", self.proxy.outbound))
        body = b"z" * (16 * 1024 * 1024)
        s.sendall(b"POST / HTTP/1.1\r\nHost: svc\r\nx-backend-fault: no-read\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body))
        s.setblocking(False)
        sent, t = 0, time.time()
        peak = before
        # send for 0.6 s: past the 300 ms route timeout, inside the proxy's 1 s lingering close
        while sent < len(body) and time.time() - t < 0.6:
            try:
                sent += s.send(body[sent:sent + 65536])
            except BlockingIOError:
                time.sleep(0.01)
            except OSError:
                break
            peak = max(peak, private_kb())
        s.setblocking(True)
        r, _ = read_response(s, timeout=5)
        self.assertEqual(r.status, 504)
        self.assertEqual(r.header("connection"), "close")
        s.close()
        self.assertLess(peak - before, 2048, "the proxy buffered what the upstream never read")
        self.assertEqual(get(self.proxy.outbound, "/").status, 200)

    def test_close_after_headers_truncates_client(self):
        with self.assertRaises(ConnectionError):
            get(self.proxy.outbound, "/", headers={"x-backend-fault": "close-after-headers"})
        # the proxy keeps serving
        self.assertEqual(get(self.proxy.outbound, "/").status, 200)


if __name__ == "__main__":
    unittest.main()
