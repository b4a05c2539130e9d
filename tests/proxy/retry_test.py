"""tests/proxy/retry_test.py — safe retries: what is retried, what is not, and the counters."""
import json
import socket
import threading
import unittest

from proxy_fixture import ProxyHarness, get, metric, service_yaml
from remora_harness import free_port, http_get_json


def closing_server():
    """A server that reads each request and closes without answering: an ambiguous failure."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)

    def run():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            try:
                c.settimeout(2)
                data = b""
                while b"\r\n\r\n" not in data:
                    more = c.recv(65536)
                    if not more:
                        break
                    data += more
            except OSError:
                pass
            c.close()

    threading.Thread(target=run, daemon=True).start()
    return srv


def blackhole_server():
    """A listener whose accept queue is full and never drained: the kernel drops further SYNs,
    so a connect to it hangs (like a pod whose network was cut) instead of being refused."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    fillers = []
    for _ in range(3):  # fill the queue (backlog 0 still admits one or two)
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(srv.getsockname())
        fillers.append(c)
    return srv, fillers


NO_EJECTION = """---
kind: CircuitBreaker
name: no-ejection
service: svc
outlierDetection: {consecutive5xx: 0, consecutiveGatewayErrors: 0}
"""


EJECT_AFTER_THREE = """---
kind: CircuitBreaker
name: cb
service: svc
outlierDetection: {consecutiveGatewayErrors: 3, interval: 1s, baseEjectionTime: 60s,
                   maxEjectionPercent: 50}
"""


def eject_one_and_revive(h, p, ports, requests):
    """Sends requests while nothing listens on ports (all in one version): outlier detection
    ejects exactly one of them (at most half may be). Then starts a backend on the ejected
    port — a pod ejected while its app was starting, now up — and returns it."""
    for _ in range(requests):
        get(p.outbound, "/")
    ejected = [port for port in ports if metric(p.admin, "remora_outlier_ejections_total",
                                                endpoint="127.0.0.1:%d" % port) > 0]
    if len(ejected) != 1:
        raise AssertionError("expected exactly one ejection, got ports %s" % ejected)
    return h.backend("svc", "v1", port=ejected[0])


def route(retry):
    return """---
kind: Route
name: r
service: svc
rules:
  - name: main
    destinations: [{version: v1, weight: 1}]
    retries: %s
""" % retry


class RetryTest(unittest.TestCase):
    def setUp(self):
        self.h = ProxyHarness()
        self.addCleanup(self.h.close)

    def test_connect_failure_is_retried_for_every_method(self):
        good = self.h.backend("svc", "v1")
        dead = free_port()
        cfg = service_yaml("svc", [("127.0.0.1:%d" % dead, "v1"), ("127.0.0.1:%d" % good.port, "v1")]) + \
            route("{attempts: 3, retryOn: [connect-failure]}")
        p = self.h.proxy(cfg)
        for method in ("GET", "POST", "PATCH"):
            for _ in range(10):
                r = get(p.outbound, "/", method=method, body=b"x" if method != "GET" else b"")
                self.assertEqual(r.status, 200, method)
        self.assertGreater(metric(p.admin, "remora_retries_total", reason="connect-failure"), 0)
        self.assertGreater(metric(p.admin, "remora_retry_success_total"), 0)

    def test_per_try_timeout_while_connecting_is_a_connect_failure(self):
        """A POST whose attempt times out before the connection is up was never sent: retried."""
        good = self.h.backend("svc", "v1")
        hole, fillers = blackhole_server()
        self.addCleanup(lambda: [c.close() for c in fillers + [hole]])
        cfg = service_yaml("svc", [("127.0.0.1:%d" % hole.getsockname()[1], "v1"),
                                   ("127.0.0.1:%d" % good.port, "v1")]) + \
            route("{attempts: 3, perTryTimeout: 150ms, retryOn: [connect-failure]}") + NO_EJECTION
        p = self.h.proxy(cfg)
        for _ in range(8):
            r = get(p.outbound, "/", method="POST", body=b"x")
            self.assertEqual(r.status, 200)
        self.assertGreater(metric(p.admin, "remora_retries_total", reason="connect-failure"), 0)
        self.assertEqual(metric(p.admin, "remora_retries_skipped_total", reason="non_idempotent"), 0)

    def test_retry_takes_an_untried_ejected_endpoint_before_a_tried_one(self):
        """A rollout seen by a client with stale config: the endpoint not ejected is a pod gone
        (refuses), the ejected one is a pod ejected while its app was starting and now up. A
        retry must reach the up one rather than knock on the gone one again."""
        ports = [free_port(), free_port()]
        cfg = service_yaml("svc", [("127.0.0.1:%d" % port, "v1") for port in ports]) + \
            route("{attempts: 3, retryOn: [connect-failure]}") + EJECT_AFTER_THREE
        p = self.h.proxy(cfg)
        eject_one_and_revive(self.h, p, ports, 10)
        statuses = [get(p.outbound, "/").status for _ in range(20)]
        self.assertEqual(statuses, [200] * 20)
        self.assertGreater(metric(p.admin, "remora_retry_success_total"), 0)

    def test_default_spread_retry_prefers_another_versions_healthy_endpoint(self):
        """No Route (the default spread over every ready endpoint): a retry whose version has
        only an ejected endpoint left goes to another version's healthy one first."""
        v1_ports = [free_port(), free_port()]
        v2 = self.h.backend("svc", "v2")
        cfg = service_yaml("svc", [("127.0.0.1:%d" % port, "v1") for port in v1_ports] +
                           [("127.0.0.1:%d" % v2.port, "v2")]) + EJECT_AFTER_THREE
        p = self.h.proxy(cfg)
        revived = eject_one_and_revive(self.h, p, v1_ports, 30)
        statuses = [get(p.outbound, "/").status for _ in range(30)]
        self.assertEqual(statuses, [200] * 30)
        self.assertEqual(http_get_json("http://127.0.0.1:%d/__backend/stats" % revived.port)["requests"], 0,
                         "a retry went to v1's ejected endpoint while v2 had a healthy one")

    def test_reset_retried_only_when_safe(self):
        good = self.h.backend("svc", "v1")
        bad = closing_server()
        self.addCleanup(bad.close)
        cfg = service_yaml("svc", [("127.0.0.1:%d" % bad.getsockname()[1], "v1"),
                                   ("127.0.0.1:%d" % good.port, "v1")]) + \
            route("{attempts: 3, retryOn: [connect-failure, reset], backoff: {base: 1ms, max: 5ms}}") + \
            NO_EJECTION  # keep the bad endpoint in rotation: this test is about retries alone
        p = self.h.proxy(cfg)
        statuses = {"GET": set(), "POST": set(), "POST+key": set()}
        for _ in range(30):
            statuses["GET"].add(get(p.outbound, "/").status)
            statuses["POST"].add(get(p.outbound, "/", method="POST", body=b"order").status)
            statuses["POST+key"].add(get(p.outbound, "/", method="POST", body=b"order",
                                         headers={"Idempotency-Key": "k1"}).status)
        self.assertEqual(statuses["GET"], {200})
        self.assertEqual(statuses["POST+key"], {200})
        self.assertIn(502, statuses["POST"])  # the upstream may have processed it: not retried
        self.assertGreater(metric(p.admin, "remora_retries_skipped_total", reason="non_idempotent"), 0)
        self.assertGreater(metric(p.admin, "remora_retries_total", reason="reset"), 0)

    def test_peer_sidecar_reports_its_apps_reset(self):
        # client sidecar -> two server sidecars (inbound) -> apps; one app resets every request.
        # The server sidecar answers 502 with x-remora-error: upstream-reset, and the client's
        # sidecar treats it as the reset it is: GET retried elsewhere, POST not (ambiguous).
        bad_app = closing_server()
        self.addCleanup(bad_app.close)
        good_app = self.h.backend("svc", "v1")
        dummy = service_yaml("none", [("127.0.0.1:1", "v1")])
        bad_side = self.h.proxy(dummy, extra=["--app-port", str(bad_app.getsockname()[1])], name="bad")
        good_side = self.h.proxy(dummy, extra=["--app-port", str(good_app.port)], name="good")
        cfg = service_yaml("svc", [("127.0.0.1:%d" % bad_side.inbound, "v1"),
                                   ("127.0.0.1:%d" % good_side.inbound, "v1")],
                           sidecar=True) + \
            route("{attempts: 2, retryOn: [connect-failure, reset], backoff: {base: 1ms, max: 2ms}}") + \
            NO_EJECTION
        client = self.h.proxy(cfg, name="client")
        gets = {get(client.outbound, "/").status for _ in range(20)}
        posts = {get(client.outbound, "/", method="POST", body=b"x").status for _ in range(20)}
        self.assertEqual(gets, {200})
        self.assertIn(502, posts)
        self.assertGreater(metric(client.admin, "remora_retries_total", reason="reset"), 0)
        self.assertGreater(metric(client.admin, "remora_retries_skipped_total", reason="non_idempotent"), 0)

    def test_status_retry_goes_to_another_endpoint(self):
        good = self.h.backend("svc", "v1")
        failing = self.h.backend("svc", "v1", extra=["--status", "503"])
        cfg = service_yaml("svc", [("127.0.0.1:%d" % failing.port, "v1"),
                                   ("127.0.0.1:%d" % good.port, "v1")]) + \
            route("{attempts: 2, retryOn: [gateway-error], backoff: {base: 1ms, max: 2ms}}")
        log = self.h.path("access.log")
        p = self.h.proxy(cfg, extra=["--access-log", log])
        for _ in range(30):
            r = get(p.outbound, "/", headers={"x-backend-echo-headers": "1"})
            self.assertEqual(r.status, 200)
            # a plain app never sees the mesh's attempt header (it goes only to sidecars)
            self.assertNotIn("x-remora-attempt", r.json()["headers"])
        with open(log) as f:
            entries = [json.loads(line) for line in f]
        self.assertEqual(len(entries), 30)
        self.assertEqual({e["attempts"] for e in entries}, {1, 2})
        self.assertEqual({e["status"] for e in entries}, {200})
        self.assertGreater(metric(p.admin, "remora_retries_total", reason="gateway-error"), 0)

    def test_budget_bounds_retries_against_a_failing_upstream(self):
        failing = self.h.backend("svc", "v1", extra=["--status", "503"])
        cfg = service_yaml("svc", [("127.0.0.1:%d" % failing.port, "v1")]) + \
            route("{attempts: 3, retryOn: [5xx], backoff: {base: 1ms, max: 1ms}, "
                  "budget: {percent: 20, minPerSecond: 1}}")
        p = self.h.proxy(cfg)
        n = 300
        for _ in range(n):
            self.assertEqual(get(p.outbound, "/").status, 503)
        retries = metric(p.admin, "remora_retries_total")
        # at most 20% of requests plus the floor (1/s over the 10 s window)
        self.assertLessEqual(retries, 0.2 * n + 10)
        self.assertGreater(retries, 0)
        self.assertGreater(metric(p.admin, "remora_retries_skipped_total", reason="budget"), 0)

    def test_budget_is_the_sidecars_not_each_workers(self):
        """Two workers, twelve client connections (SO_REUSEPORT spreads them): the budget floor
        of 1 retry/s over the 10 s window allows 10 retries for the sidecar, not 10 per worker."""
        failing = self.h.backend("svc", "v1", extra=["--status", "503"])
        cfg = service_yaml("svc", [("127.0.0.1:%d" % failing.port, "v1")]) + \
            route("{attempts: 3, retryOn: [5xx], backoff: {base: 1ms, max: 1ms}, "
                  "budget: {percent: 0, minPerSecond: 1}}")
        p = self.h.proxy(cfg, extra=["--workers", "2"])
        socks = [socket.create_connection(("127.0.0.1", p.outbound)) for _ in range(12)]
        self.addCleanup(lambda: [s.close() for s in socks])
        for _ in range(5):
            for s in socks:
                self.assertEqual(get(p.outbound, "/", sock=s).status, 503)
        self.assertEqual(metric(p.admin, "remora_retries_total"), 10)

    def test_exhausted_is_counted(self):
        failing = self.h.backend("svc", "v1", extra=["--status", "503"])
        cfg = service_yaml("svc", [("127.0.0.1:%d" % failing.port, "v1")]) + \
            route("{attempts: 1, retryOn: [5xx], backoff: {base: 1ms, max: 1ms}}")
        p = self.h.proxy(cfg)
        self.assertEqual(get(p.outbound, "/").status, 503)
        self.assertEqual(metric(p.admin, "remora_retries_total"), 1)
        self.assertEqual(metric(p.admin, "remora_retries_skipped_total", reason="exhausted"), 1)


if __name__ == "__main__":
    unittest.main()
