"""tests/proxy/shadow_test.py — traffic shadowing: the copy reaches the mirror with `-shadow` on
its Host and the same body; the primary never waits for a slow shadow, a dead shadow never
changes the primary's answer, and sampling follows `percent`."""
import math
import socket
import threading
import time
import unittest

from proxy_fixture import ProxyHarness, get, metric, service_yaml
from remora_harness import free_port


class SlowCapture:
    """A mirror target that records every request (head and body) and answers after a delay."""

    def __init__(self, delay):
        self.delay = delay
        self.requests = []
        self.lock = threading.Lock()
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(256)
        self.port = self.srv.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            c.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                data += c.recv(65536)
            head, body = data.split(b"\r\n\r\n", 1)
            headers = {l.split(b":", 1)[0].strip().lower(): l.split(b":", 1)[1].strip()
                       for l in head.split(b"\r\n")[1:]}
            n = int(headers.get(b"content-length", b"0"))
            while len(body) < n:
                body += c.recv(65536)
            with self.lock:
                self.requests.append((headers, body))
            time.sleep(self.delay)
            c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.srv.close()


def config(primary, mirror_addr, percent):
    return service_yaml("svc", [("127.0.0.1:%d" % primary, "v1"), (mirror_addr, "v3")]) + """---
kind: Route
name: dark-launch
service: svc
rules:
  - name: main
    destinations: [{version: v1, weight: 100}]
    mirror: {version: v3, percent: %d}
""" % percent


class ShadowTest(unittest.TestCase):
    def setUp(self):
        self.h = ProxyHarness()
        self.addCleanup(self.h.close)
        self.primary = self.h.backend("svc", "v1")

    def test_slow_shadow_never_delays_the_primary(self):
        cap = SlowCapture(delay=2.0)
        self.addCleanup(cap.close)
        p = self.h.proxy(config(self.primary.port, "127.0.0.1:%d" % cap.port, 100))
        worst = 0
        for i in range(20):
            t = time.time()
            r = get(p.outbound, "/item/%d" % i, method="POST", body=b"payload-%d" % i,
                    host="svc:80")
            worst = max(worst, time.time() - t)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header("x-backend-version"), "v1")
        self.assertLess(worst, 0.5, "a 2 s shadow delayed the primary")
        deadline = time.time() + 5
        while len(cap.requests) < 20 and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(len(cap.requests), 20)
        hosts = {h[b"host"] for h, _ in cap.requests}
        self.assertEqual(hosts, {b"svc-shadow:80"})
        bodies = sorted(b for _, b in cap.requests)
        self.assertEqual(bodies, sorted(b"payload-%d" % i for i in range(20)))
        time.sleep(2.2)
        self.assertEqual(metric(p.admin, "remora_shadow_requests_total"), 20)

    def test_dead_shadow_is_counted_not_felt(self):
        p = self.h.proxy(config(self.primary.port, "127.0.0.1:%d" % free_port(), 100))
        for _ in range(20):
            self.assertEqual(get(p.outbound, "/").status, 200)
        time.sleep(0.3)
        self.assertEqual(metric(p.admin, "remora_shadow_errors_total"), 20)
        self.assertEqual(metric(p.admin, "remora_requests_total", code="200"), 20)

    def test_percent_sampling(self):
        cap = SlowCapture(delay=0)
        self.addCleanup(cap.close)
        p = self.h.proxy(config(self.primary.port, "127.0.0.1:%d" % cap.port, 25))
        n = 800
        for _ in range(n):
            get(p.outbound, "/")
        time.sleep(0.5)
        sent = metric(p.admin, "remora_shadow_requests_total")
        sigma = math.sqrt(n * 0.25 * 0.75)
        self.assertLess(abs(sent - n * 0.25), 4 * sigma, sent)  # 4: see routing_test


if __name__ == "__main__":
    unittest.main()
