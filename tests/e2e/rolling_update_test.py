"""tests/e2e/rolling_update_test.py — the promise: a rolling update costs zero failed requests.

A client sidecar sends 500 requests/s (GET and POST alternating, keep-alive) to a service of three
pods, each a test backend behind its own sidecar, all under remora-control. The pods are replaced
one by one as Kubernetes does (start new, wait ready, SIGTERM old app and sidecar together, wait
exit). Every request must succeed. With SIGKILL instead, idempotent requests must all succeed and
every failed POST must be accounted for by the retry counters.
"""
import signal
import time
import unittest

from mesh_fixture import Load, Mesh
from proxy_fixture import metric

CONFIG = """kind: Service
name: reviews
port: 9080
---
kind: Route
name: reviews
service: reviews
rules:
  - name: all
    destinations: [{version: v1, weight: 1}]
    retries: {attempts: 3, retryOn: [connect-failure, reset], backoff: {base: 5ms, max: 50ms}}
"""


class RollingUpdateTest(unittest.TestCase):
    def setUp(self):
        self.mesh = Mesh()
        self.addCleanup(self.mesh.close)
        self.mesh.control.apply(CONFIG)
        self.pods = [self.mesh.pod("reviews", "v1", "reviews-%d" % i) for i in range(3)]
        self.client = self.mesh.client_sidecar()
        self.mesh.wait_ready(*self.pods)
        time.sleep(0.3)  # the client's snapshot lists all three endpoints

    def test_rolling_update_has_zero_errors(self):
        load = Load(self.client.outbound, "reviews", rate=500).start()
        time.sleep(1.0)
        for i, old in enumerate(list(self.pods)):
            new = self.mesh.pod("reviews", "v1", "reviews-new-%d" % i)
            self.mesh.wait_ready(new)
            time.sleep(0.3)
            old.terminate(signal.SIGTERM)
            rc_sidecar, rc_app = old.wait_exit()
            self.assertEqual((rc_sidecar, rc_app), (0, 0))
        time.sleep(1.0)
        load.stop()
        total = sum(load.sent.values())
        self.assertGreater(total, 1500)
        self.assertEqual(load.failures, [], "client-visible errors during the rolling update")
        print("rolling update: %d requests (%s), 0 errors, retries %s" % (
            total, dict(load.sent), metric(self.client.admin, "remora_retries_total")))

    def test_sigkill_loses_no_idempotent_request(self):
        load = Load(self.client.outbound, "reviews", rate=500).start()
        time.sleep(1.0)
        victim = self.pods[0]
        victim.terminate(signal.SIGKILL)
        victim.wait_exit()
        time.sleep(2.0)
        load.stop()
        failed_gets = [f for f in load.failures if f[0] == "GET"]
        failed_posts = [f for f in load.failures if f[0] == "POST"]
        self.assertEqual(failed_gets, [], "idempotent requests failed after a SIGKILL")
        skipped = metric(self.client.admin, "remora_retries_skipped_total", reason="non_idempotent")
        # every POST the client saw fail is one the sidecar refused to replay, and says so
        self.assertGreaterEqual(skipped, len(failed_posts), "failed POSTs: %r" % failed_posts)
        print("sigkill: %d requests, failed POSTs %d (accounted: %d non_idempotent), retries %d" % (
            sum(load.sent.values()), len(failed_posts), skipped,
            metric(self.client.admin, "remora_retries_total")))


if __name__ == "__main__":
    unittest.main()
