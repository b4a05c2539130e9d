"""tests/meshctl/stats_test.py — `meshctl stats` from real sidecars with retries in play: a
backend that fails every 5th request (503) behind a server sidecar, a client sidecar whose
route retries 5xx. GETs are retried (actual success ~80%, effective 100%, retries by reason,
retry successes); POSTs are not (skipped: non_idempotent) — table and JSON agree."""
import re
import unittest

from meshctl_fixture import SERVICE, Harness, Mesh, http_request, wait_until

ROUTE = """kind: Route
name: reviews-rollout
service: reviews
rules:
  - name: reviews-rollout
    destinations: [{version: v1}]
    retries:
      attempts: 2
      retryOn: [5xx]
      backoff: {base: 1ms, max: 2ms}
      budget: {percent: 100, minPerSecond: 1000}
"""

GETS = 200
POSTS = 40


class StatsTest(unittest.TestCase):
    def setUp(self):
        self.h = Harness()
        self.m = Mesh(self.h)

    def tearDown(self):
        self.m.close()
        self.h.close()

    def test_retries_and_success_rates(self):
        b = self.h.backend("reviews", "v1", extra=["--fail-rate", "20"])
        self.m.proxy("reviews", "v1", b.port)
        client = self.m.proxy()
        wait_until(lambda: len(self.m.meshctl("proxy-status", "-o", "json").json()["sidecars"])
                   == 2, what="two sidecars")
        r = self.m.apply(SERVICE + "---\n" + ROUTE, "--wait", "--timeout", "20s")
        self.assertEqual(r.rc, 0, r)
        # The endpoint arrives with its own push; until then the client answers 503.
        wait_until(lambda: http_request(client.outbound, "/", headers={"Host": "reviews"})
                   .status == 200, what="reviews reachable")
        for _ in range(GETS):
            resp = http_request(client.outbound, "/", headers={"Host": "reviews"})
            self.assertEqual(resp.status, 200, resp.body)
        post_failures = 0
        for _ in range(POSTS):
            resp = http_request(client.outbound, "/", method="POST", body=b"x",
                                headers={"Host": "reviews"})
            post_failures += resp.status == 503
        self.assertGreater(post_failures, 0)

        def row():
            j = self.m.meshctl("stats", "reviews", "--route", "reviews-rollout", "-o",
                               "json").json()
            rs = j["rows"]
            if len(rs) == 1 and rs[0]["requests_total"] >= GETS + POSTS:
                return rs[0]
            return None
        v = wait_until(row, timeout=30, what="stats of %d requests" % (GETS + POSTS))
        retries = v["retries"].get("5xx", 0)
        self.assertGreater(retries, 0)
        self.assertEqual(v["retry_successes"], retries)  # the next try never fails
        self.assertEqual(v["retries_skipped"], {"non_idempotent": post_failures})
        n = v["requests_total"]
        self.assertAlmostEqual(v["effective_success_rate"], (n - post_failures) / n, places=6)
        self.assertAlmostEqual(v["actual_success_rate"],
                               (n - post_failures) / (n + retries), places=6)
        self.assertLess(v["actual_success_rate"], v["effective_success_rate"])
        self.assertEqual((v["observed_share"], v["configured_share"]), (1.0, 1.0))
        self.assertGreater(v["p99_seconds"], 0)

        r = self.m.meshctl("stats", "reviews", "--route", "reviews-rollout")
        self.assertEqual(r.rc, 0, r)
        line = [l for l in r.out.splitlines() if l.startswith("reviews")][0]
        self.assertRegex(line, (r"^reviews\s+v1\s+reviews-rollout\s+[\d.]+\*?\s+%d\s+%.2f%%\s+%.2f%%\s+"
                                r"%d \(5xx=%d\)\s+%d\s+%d \(non_idempotent=%d\)\s+0\s+0\s+0\s+0\s+0\s+"
                                r"[\d.]+m?s/[\d.]+m?s\s+100\.00%% / 100\.00%%$") % (
            n, v["actual_success_rate"] * 100, v["effective_success_rate"] * 100, retries, retries,
            retries, post_failures, post_failures))
        self.assertTrue(re.search(r"rates over the last 10s$", r.out.strip(), re.M), r.out)
        # A row with no requests in the window says its rates are over all time.
        idle = line.split()[3].endswith("*")
        self.assertEqual(idle, "* no requests in the window" in r.out, r.out)


if __name__ == "__main__":
    unittest.main()
