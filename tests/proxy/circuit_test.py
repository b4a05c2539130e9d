"""tests/proxy/circuit_test.py — circuit-breaker limits answer 503 x-remora-overloaded at once,
exactly at the configured thresholds; outlier detection ejects a failing endpoint, which gets no
traffic until its ejection time is up."""
import threading
import time
import unittest

from proxy_fixture import ProxyHarness, get, metric, service_yaml
from remora_harness import http_get_json

NO_RETRY = """---
kind: Route
name: r
service: svc
rules:
  - name: main
    destinations: [{version: v1, weight: 1}]
    retries: {attempts: 0}
"""


def concurrent(n, fn):
    results = [None] * n

    def run(i):
        t = time.time()
        r = fn()
        results[i] = (r.status, r.header("x-remora-overloaded"), time.time() - t)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
        time.sleep(0.02)  # in order, so the first ones hold their places
    for t in threads:
        t.join(10)
    return results


class CircuitTest(unittest.TestCase):
    def setUp(self):
        self.h = ProxyHarness()
        self.addCleanup(self.h.close)

    def breaker(self, limits):
        return "---\nkind: CircuitBreaker\nname: cb\nservice: svc\nlimits: %s\n" % limits

    def test_max_requests_exact(self):
        b = self.h.backend("svc", "v1")
        p = self.h.proxy(service_yaml("svc", [("127.0.0.1:%d" % b.port, "v1")]) + NO_RETRY +
                         self.breaker("{maxRequests: 2}"))
        res = concurrent(5, lambda: get(p.outbound, "/", headers={"x-backend-delay": "600ms"}))
        ok = [r for r in res if r[0] == 200]
        over = [r for r in res if r[0] == 503]
        self.assertEqual(len(ok), 2, res)
        self.assertEqual(len(over), 3, res)
        self.assertTrue(all(r[1] == "true" and r[2] < 0.3 for r in over), res)
        self.assertEqual(metric(p.admin, "remora_overflow_total", limit="max_requests"), 3)

    def test_limits_hold_across_workers(self):
        """With two workers (SO_REUSEPORT spreads the 12 client connections over both), the
        limits are the sidecar's, not each worker's: exactly maxRequests in flight."""
        b = self.h.backend("svc", "v1")
        p = self.h.proxy(service_yaml("svc", [("127.0.0.1:%d" % b.port, "v1")]) + NO_RETRY +
                         self.breaker("{maxRequests: 3, maxConnections: 3}"),
                         extra=["--workers", "2"])
        res = concurrent(12, lambda: get(p.outbound, "/", headers={"x-backend-delay": "800ms"}))
        self.assertEqual(sorted(r[0] for r in res), [200] * 3 + [503] * 9, res)
        self.assertEqual(metric(p.admin, "remora_overflow_total"), 9)

    def test_max_connections(self):
        b = self.h.backend("svc", "v1")
        p = self.h.proxy(service_yaml("svc", [("127.0.0.1:%d" % b.port, "v1")]) + NO_RETRY +
                         self.breaker("{maxConnections: 1}"))
        res = concurrent(3, lambda: get(p.outbound, "/", headers={"x-backend-delay": "500ms"}))
        self.assertEqual(sorted(r[0] for r in res), [200, 503, 503], res)
        self.assertEqual(metric(p.admin, "remora_overflow_total", limit="max_connections"), 2)
        # once the connection is free again, requests reuse it
        self.assertEqual(get(p.outbound, "/").status, 200)

    def test_outlier_ejection_and_return(self):
        good = [self.h.backend("svc", "v1") for _ in range(2)]
        bad = self.h.backend("svc", "v1", extra=["--status", "503"])
        eps = [("127.0.0.1:%d" % b.port, "v1") for b in good + [bad]]
        cfg = service_yaml("svc", eps) + NO_RETRY + """---
kind: CircuitBreaker
name: cb
service: svc
outlierDetection: {consecutive5xx: 3, consecutiveGatewayErrors: 3, interval: 1s,
                   baseEjectionTime: 2s, maxEjectionPercent: 50}
"""
        p = self.h.proxy(cfg)

        def bad_count():
            return http_get_json("http://127.0.0.1:%d/__backend/stats" % bad.port)["requests"]

        statuses = [get(p.outbound, "/").status for _ in range(60)]
        self.assertEqual(bad_count(), 3, "the failing endpoint got more than its threshold")
        self.assertEqual(statuses.count(503), 3)
        self.assertEqual(metric(p.admin, "remora_outlier_ejections_total"), 1)
        more = [get(p.outbound, "/").status for _ in range(30)]
        self.assertEqual(more.count(503), 0, "traffic reached the ejected endpoint")
        time.sleep(2.2)  # the ejection time is up: the endpoint is picked again
        for _ in range(60):
            get(p.outbound, "/")
        self.assertGreater(bad_count(), 3)


if __name__ == "__main__":
    unittest.main()
