"""tests/proxy/forwarding_test.py — pooling, streaming, framing and headers through remora-proxy."""
import re
import socket
import subprocess
import unittest

from proxy_fixture import ProxyHarness, get, metric, service_yaml
from remora_harness import Prefixed, http_get_json, http_request, read_response


class ForwardingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = ProxyHarness()
        cls.backend = cls.h.backend("svc", "v1")
        cls.proxy = cls.h.proxy(service_yaml("svc", [("127.0.0.1:%d" % cls.backend.port, "v1")]))

    @classmethod
    def tearDownClass(cls):
        cls.h.close()

    def backend_stats(self):
        return http_get_json("http://127.0.0.1:%d/__backend/stats" % self.backend.port)

    def test_upstream_connections_are_pooled(self):
        get(self.proxy.outbound, "/warm")
        before = self.backend_stats()["connections"]
        for _ in range(50):  # fifty client connections, one request each
            self.assertEqual(get(self.proxy.outbound, "/").status, 200)
        after = self.backend_stats()["connections"]
        # the stats probe itself opens one connection per call
        self.assertLessEqual(after - before, 2, "upstream connections were not reused")

    def test_pool_keeps_up_with_high_concurrency(self):
        # 150 keep-alive clients at once, well past the 64 idle connections the pool once kept:
        # the pool must grow to the load instead of opening a connection for each request past it.
        before = self.backend_stats()["connections"]
        out = subprocess.run(["wrk", "-t1", "-c150", "-d2s", "-H", "Host: svc",
                              "http://127.0.0.1:%d/" % self.proxy.outbound],
                             capture_output=True, text=True, timeout=30).stdout
        requests = int(re.search(r"(\d+) requests in", out).group(1))
        self.assertGreater(requests, 1000, out)
        opened = self.backend_stats()["connections"] - before
        self.assertLessEqual(opened, 150 + 2, "%d upstream connections for %d requests" % (opened, requests))

    def test_client_keepalive_and_pipelining(self):
        s = socket.create_connection(("127.0.0.1", self.proxy.outbound))
        req = b"GET /a HTTP/1.1\r\nHost: svc\r\n\r\nGET /b HTTP/1.1\r\nHost: svc\r\n\r\n"
        s.sendall(req)
        r1, rest = read_response(s)
        self.assertEqual(r1.json()["path"], "/a")
        # the second response may already be in `rest`
        s2 = Prefixed(s, rest)
        r2, _ = read_response(s2)
        self.assertEqual(r2.json()["path"], "/b")
        s.close()

    def test_large_bodies_stream_both_ways(self):
        body = bytes(range(256)) * 4096 * 3  # 3 MiB, far above every proxy buffer
        r = get(self.proxy.outbound, "/upload", method="POST", body=body,
                headers={"x-backend-body-bytes": str(5 * 1024 * 1024)})
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.body), 5 * 1024 * 1024)

    def test_request_body_counted_exactly(self):
        body = b"x" * 300000
        r = get(self.proxy.outbound, "/upload", method="POST", body=body)
        self.assertEqual(r.json()["body_bytes"], 300000)

    def test_chunked_request_body(self):
        s = socket.create_connection(("127.0.0.1", self.proxy.outbound))
        chunks = b"".join(b"%x\r\n%s\r\n" % (n, b"y" * n) for n in (1, 1000, 70000, 5))
        s.sendall(b"POST /c HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks +
                  b"0\r\n\r\n")
        r, _ = read_response(s)
        self.assertEqual(r.json()["body_bytes"], 71006)
        s.close()

    def test_head_and_no_body_statuses(self):
        r = get(self.proxy.outbound, "/", method="HEAD")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")
        r = get(self.proxy.outbound, "/", headers={"x-backend-status": "204"})
        self.assertEqual(r.status, 204)

    def test_expect_100_continue(self):
        s = socket.create_connection(("127.0.0.1", self.proxy.outbound))
        s.sendall(b"POST /e HTTP/1.1\r\nHost: svc\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        s.settimeout(5)
        first = s.recv(4096)
        # either an interim 100 arrives, or the proxy waits for the body: both must end in 200
        if first.startswith(b"HTTP/1.1 100"):
            first = first.split(b"\r\n\r\n", 1)[1]
        s.sendall(b"hello")
        r, _ = read_response(Prefixed(s, first))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["body_bytes"], 5)

    def test_ipv6_listeners_beside_ipv4(self):
        """Bound to every IPv4 address (the default), the outbound and inbound listeners take
        IPv6 too: in a dual-stack pod remora-init redirects the app's IPv6 traffic to them
        (ip6tables), and a refused connection there would be an outage. Only where this machine
        has IPv6 on loopback."""
        try:
            socket.socket(socket.AF_INET6).close()
            probe = socket.socket(socket.AF_INET6)
            probe.bind(("::1", 0))
            probe.close()
        except OSError:
            self.skipTest("no IPv6 on loopback here")
        p = self.h.proxy(service_yaml("svc", [("127.0.0.1:%d" % self.backend.port, "v1")]),
                         extra=["--bind", "0.0.0.0"], name="dual")
        s = socket.create_connection(("::1", p.outbound), timeout=5)
        try:
            r = http_request(p.outbound, "/six", sock=s,
                             headers={"Host": "svc", "x-backend-echo-headers": "1"})
        finally:
            s.close()
        self.assertEqual(r.status, 200)
        hdrs = {k.lower(): v for k, v in r.json()["headers"].items()}
        self.assertEqual(hdrs["x-forwarded-for"], "::1")
        self.assertEqual(get(p.outbound, "/four").status, 200)  # and IPv4 still

    def test_headers_added_kept_and_removed(self):
        r = get(self.proxy.outbound, "/", headers={
            "x-backend-echo-headers": "1", "x-forwarded-for": "10.1.2.3",
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "Connection": "keep-alive, x-secret", "x-secret": "hop", "Keep-Alive": "timeout=5"})
        hdrs = {k.lower(): v for k, v in r.json()["headers"].items()}
        self.assertEqual(hdrs["x-forwarded-for"], "10.1.2.3, 127.0.0.1")
        self.assertEqual(hdrs["traceparent"], "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        self.assertRegex(hdrs["x-request-id"], r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
        # the mesh's own headers go only to sidecars: never to a plain app (SPEC.md)
        self.assertNotIn("x-remora-attempt", hdrs)
        self.assertNotIn("x-remora-bounceable", hdrs)
        self.assertNotIn("x-secret", hdrs)
        self.assertNotIn("keep-alive", hdrs)
        # a request id given by the client is kept end to end
        r = get(self.proxy.outbound, "/", headers={"x-request-id": "abc-123"})
        self.assertEqual(r.header("x-request-id"), "abc-123")
        long_id = "trace-" + "x" * 100  # longer than the proxy's own log field: still untouched
        r = get(self.proxy.outbound, "/", headers={"x-request-id": long_id, "x-backend-echo-headers": "1"})
        hdrs = {k.lower(): v for k, v in r.json()["headers"].items()}
        self.assertEqual(hdrs["x-request-id"], long_id)

    def test_stats_count_requests_by_code(self):
        before = metric(self.proxy.admin, "remora_requests_total", service="svc", code="503")
        get(self.proxy.outbound, "/", headers={"x-backend-status": "503"})
        after = metric(self.proxy.admin, "remora_requests_total", service="svc", code="503")
        self.assertEqual(after - before, 1)



if __name__ == "__main__":
    unittest.main()
