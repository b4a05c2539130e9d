"""tests/proxy/workers_test.py — several event-loop workers (SO_REUSEPORT) serve one sidecar:
every connection is answered, stats add up across workers, a config reload reaches them all, and
the drain ends every worker."""
import collections
import os
import signal
import time
import unittest

from proxy_fixture import ProxyHarness, get, metric, service_yaml


class WorkersTest(unittest.TestCase):
    def test_two_workers(self):
        with ProxyHarness() as h:
            b1, b2 = h.backend("svc", "v1"), h.backend("svc", "v2")
            eps = [("127.0.0.1:%d" % b1.port, "v1"), ("127.0.0.1:%d" % b2.port, "v2")]
            route = "---\nkind: Route\nname: r\nservice: svc\nrules:\n  - destinations: [{version: v1, weight: %d}, {version: v2, weight: %d}]\n"
            p = h.proxy(service_yaml("svc", eps) + route % (1, 0), extra=["--workers", "2"])
            for _ in range(300):  # a new connection each time: both workers take some
                self.assertEqual(get(p.outbound, "/").header("x-backend-version"), "v1")
            self.assertEqual(metric(p.admin, "remora_requests_total", service="svc"), 300)
            with open(p.config_path, "w") as f:
                f.write(service_yaml("svc", eps) + route % (0, 1))
            os.kill(p.pid, signal.SIGHUP)
            time.sleep(0.3)
            seen = collections.Counter(get(p.outbound, "/").header("x-backend-version")
                                       for _ in range(100))
            self.assertEqual(seen, {"v2": 100}, "a worker kept the old config")
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(timeout=10), 0)


if __name__ == "__main__":
    unittest.main()
