"""tests/proxy/admin_test.py — admin endpoints, config reload, and the drain on SIGTERM."""
import json
import os
import signal
import socket
import threading
import time
import unittest

from proxy_fixture import ProxyHarness, get, metric, service_yaml
from remora_harness import http_request, read_response


def two_versions(backends, w1, w2):
    svc = service_yaml("svc", [("127.0.0.1:%d" % backends["v1"].port, "v1"),
                               ("127.0.0.1:%d" % backends["v2"].port, "v2")])
    return svc + """---
kind: Route
name: split
service: svc
rules:
  - destinations: [{version: v1, weight: %d}, {version: v2, weight: %d}]
""" % (w1, w2)


def wait_for(pred, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


class AdminTest(unittest.TestCase):
    def setUp(self):
        self.h = ProxyHarness()
        self.backends = {v: self.h.backend("svc", v) for v in ("v1", "v2")}

    def tearDown(self):
        self.h.close()

    def versions(self, port, n=20):
        return {get(port, "/").header("x-backend-version") for _ in range(n)}

    def test_endpoints(self):
        p = self.h.proxy(two_versions(self.backends, 1, 0), extra=["--app-port", str(self.backends["v1"].port)])
        self.assertEqual(http_request(p.admin, "/healthz").status, 200)
        self.assertTrue(wait_for(lambda: http_request(p.admin, "/ready").status == 200))
        get(p.outbound, "/")
        stats = json.loads(http_request(p.admin, "/stats?format=json").body)
        names = {m["name"] for m in stats["metrics"]}
        self.assertIn("remora_requests_total", names)
        self.assertIn("remora_request_duration_seconds", names)
        prom = http_request(p.admin, "/stats").body.decode()
        self.assertIn('remora_requests_total{service="svc",version="v1",route="split",code="200"}', prom)
        self.assertIn("remora_config_version 1", prom)
        dump = json.loads(http_request(p.admin, "/config_dump").body)
        self.assertEqual(dump["version"], 1)
        kinds = sorted(d["kind"] for d in dump["config"])
        self.assertEqual(kinds, ["Route", "Service"])
        self.assertEqual(http_request(p.admin, "/nope").status, 404)
        self.assertEqual(http_request(p.admin, "/drain").status, 405)  # GET is not allowed

    def test_large_replies_are_whole(self):
        """Issue 18 item 6: a big mesh's /config_dump (and /stats) ran past the admin session's
        output buffer (~384 KiB) and the connection was closed with nothing said. 3,000
        services make a /config_dump of about a megabyte; it comes back whole and parses."""
        docs = ["kind: Service\nname: svc-%04d\nport: 80\nhosts: [svc-%04d.example.internal]\n"
                "endpoints:\n  - {address: 127.0.0.1:%d, version: v1}\n"
                % (i, i, self.backends["v1"].port) for i in range(3000)]
        p = self.h.proxy("---\n".join(docs))
        r = http_request(p.admin, "/config_dump", timeout=20)
        self.assertEqual(r.status, 200)
        self.assertGreater(len(r.body), 384 * 1024)
        dump = json.loads(r.body)
        self.assertEqual(len(dump["config"]), 3000)
        self.assertEqual(http_request(p.admin, "/healthz").status, 200)

    def test_ready_needs_the_app(self):
        p = self.h.proxy(two_versions(self.backends, 1, 0), extra=["--app-port", "1"])
        time.sleep(0.8)
        r = http_request(p.admin, "/ready")
        self.assertEqual(r.status, 503)
        self.assertIn(b"app port", r.body)

    def test_reload_on_sighup_and_bad_config_kept_out(self):
        p = self.h.proxy(two_versions(self.backends, 1, 0))
        self.assertEqual(self.versions(p.outbound), {"v1"})
        with open(p.config_path, "w") as f:
            f.write(two_versions(self.backends, 0, 1))
        os.kill(p.pid, signal.SIGHUP)
        self.assertTrue(wait_for(lambda: self.versions(p.outbound, 5) == {"v2"}))
        self.assertEqual(metric(p.admin, "remora_config_version"), 2)
        # a broken file is rejected: traffic and version stay, the rejection is counted and logged
        with open(p.config_path, "w") as f:
            f.write(two_versions(self.backends, 0, 1).replace("weight: 1", "weight: -1"))
        os.kill(p.pid, signal.SIGHUP)
        self.assertTrue(wait_for(lambda: metric(p.admin, "remora_config_rejected_total") >= 1))
        self.assertEqual(self.versions(p.outbound), {"v2"})
        self.assertEqual(metric(p.admin, "remora_config_version"), 2)
        self.assertIn("must be a non-negative integer", self.h.log_of(p))

    def test_reload_on_file_change(self):
        p = self.h.proxy(two_versions(self.backends, 1, 0))
        self.assertEqual(self.versions(p.outbound), {"v1"})
        time.sleep(1.1)  # a different mtime second, so the change is visible to stat
        with open(p.config_path, "w") as f:
            f.write(two_versions(self.backends, 0, 1))
        self.assertTrue(wait_for(lambda: self.versions(p.outbound, 5) == {"v2"}, timeout=5))

    def test_drain_finishes_in_flight_and_exits(self):
        p = self.h.proxy(two_versions(self.backends, 1, 0), extra=["--drain-grace", "300ms", "--drain-seconds", "10"])
        # a slow request through the inbound listener would need an app; use outbound
        result = {}

        def slow():
            result["r"] = get(p.outbound, "/", headers={"x-backend-delay": "1s"})

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.2)
        p.send_signal(signal.SIGTERM)
        time.sleep(0.1)
        self.assertEqual(http_request(p.admin, "/ready").status, 503)
        t.join(5)
        self.assertEqual(result["r"].status, 200)
        self.assertEqual(p.wait(timeout=10), 0)

    def test_post_drain_and_connection_close_on_inbound(self):
        p = self.h.proxy(two_versions(self.backends, 1, 0),
                         extra=["--app-port", str(self.backends["v1"].port), "--drain-grace", "2s"])
        s = socket.create_connection(("127.0.0.1", p.inbound))
        s.sendall(b"GET / HTTP/1.1\r\nHost: svc\r\n\r\n")
        r, _ = read_response(s)
        self.assertIsNone(r.header("connection"))
        self.assertEqual(http_request(p.admin, "/drain", method="POST").status, 200)
        s.sendall(b"GET / HTTP/1.1\r\nHost: svc\r\n\r\n")
        r, _ = read_response(s)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("connection"), "close")
        s.close()
        self.assertEqual(p.wait(timeout=10), 0)


if __name__ == "__main__":
    unittest.main()
