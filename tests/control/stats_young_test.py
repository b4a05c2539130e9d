"""tests/control/stats_young_test.py — `meshctl stats` right after a rollout, when the sidecars that
carry the new traffic are young (the `make demo` bug): real remora-control, two pod sidecars
(reviews v1 and v2 in front of test backends) and client sidecars, queried with the real meshctl.

The scenario: an old client sends 200 requests at 90/10; the route moves to 10/90 and the old
traffic leaves the rate window; a new client sidecar starts and sends 300 requests. Before the
fix the new sidecar had no window until its second report (~10 s at the 5 s interval): RPS 0.0,
and the share came from all-time totals (v2 about 58%, mixing in the 90/10 period). Now a report
carries the sidecar's uptime, the control plane puts an empty digest at its start, and the
sidecar reports every second for its first 10 s: RPS > 0 and v2's share at what the new client
saw, within a few seconds of the traffic. The bound (8 s after the traffic began) is generous
against the ~1-2 s expected, and still below the ~9 s the old code needed at best.

And a sidecar that reconnects to a restarted control plane, its counters far from zero, shows no
spike: its first rate is at most its lifetime average, and its idle rate (0) follows.
"""
import json
import subprocess
import time
import unittest

from control_fixture import Control, Harness  # re-execs under /usr/bin/python3 first
from remora_harness import free_port, http_request, runfile, wait_port

SERVICE = """kind: Service
name: reviews
port: 9080
"""

ROUTE = """kind: Route
name: reviews-rollout
service: reviews
rules:
  - name: canary
    destinations:
      - {version: v1, weight: %d}
      - {version: v2, weight: %d}
"""

OLD_REQUESTS = 200
NEW_REQUESTS = 300
# Seconds from the new client's first request by which the stats must be right.
BOUND_S = 8.0


def wait_until(pred, timeout=20, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


class YoungSidecarStatsTest(unittest.TestCase):
    def setUp(self):
        self.h = Harness()
        self.c = Control(self.h)
        self.sent = 0

    def tearDown(self):
        self.c.stop()
        self.h.close()

    def proxy(self, name, service="", version="", app_port=0):
        out, inb, adm = free_port(), free_port(), free_port()
        argv = [runfile("dataplane/proxy/remora-proxy"), "--control-plane", self.c.target,
                "--bind", "127.0.0.1", "--pod", name, "--outbound-port", str(out),
                "--inbound-port", str(inb), "--admin-port", str(adm)]
        if service:
            argv += ["--service", service, "--version", version, "--app-port", str(app_port)]
        p = self.h.start(argv, log_name="proxy-" + name)
        wait_port(adm, proc=p)
        p.outbound, p.admin = out, adm
        return p

    def stats(self):
        p = subprocess.run([runfile("controlplane/meshctl/meshctl"), "--server", self.c.target,
                            "stats", "reviews", "--route", "reviews-rollout", "-o", "json"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        return {r["version"]: r for r in json.loads(p.stdout)["rows"]}

    def send(self, client, n):
        """n GETs to reviews through `client`; returns {version: count} from the backends."""
        seen = {}
        for _ in range(n):
            r = http_request(client.outbound, "/", headers={"Host": "reviews"})
            self.assertEqual(r.status, 200, r.body)
            v = r.header("x-backend-version")
            seen[v] = seen.get(v, 0) + 1
            self.sent += 1
        return seen

    def apply_and_sync(self, text, n_sidecars):
        v = self.c.apply(text).version

        def synced():
            s = self.c.proxy_status().sidecars
            return len(s) == n_sidecars and all(x.config_version == v for x in s)
        wait_until(synced, what="%d sidecars at version %d" % (n_sidecars, v))

    def both_versions_reachable(self, client):
        def ok():
            seen = self.send(client, 20)
            return "v1" in seen and "v2" in seen
        wait_until(ok, what="both versions reachable")

    def test_rollout_to_young_sidecar_is_right_at_once(self):
        b1 = self.h.backend("reviews", "v1")
        b2 = self.h.backend("reviews", "v2")
        self.proxy("reviews-v1", "reviews", "v1", b1.port)
        self.proxy("reviews-v2", "reviews", "v2", b2.port)
        old = self.proxy("client-old")
        self.apply_and_sync(SERVICE + "---\n" + ROUTE % (90, 10), 3)
        self.both_versions_reachable(old)
        seen_old = self.send(old, OLD_REQUESTS)
        self.assertGreater(seen_old.get("v1", 0), seen_old.get("v2", 0))

        # The rollout, then the old traffic leaves the window (every row at rps 0).
        self.apply_and_sync(SERVICE + "---\n" + ROUTE % (10, 90), 3)
        wait_until(lambda: (lambda s: s and all(r["requests_per_second"] == 0
                                                for r in s.values()))(self.stats()),
                   timeout=40, what="the old traffic out of the window")

        new = self.proxy("client-new")
        wait_until(lambda: http_request(new.admin, "/config_dump").json().get("version", 0) > 0,
                   what="the new client configured")
        wait_until(lambda: len(self.c.proxy_status().sidecars) == 4, what="4 sidecars")
        t0 = time.time()
        seen = self.send(new, NEW_REQUESTS)
        sent_s = time.time() - t0
        truth = seen.get("v2", 0) / NEW_REQUESTS
        self.assertGreater(truth, 0.75)  # 10/90 within noise; the totals would say ~0.58

        history = []
        while True:
            elapsed = time.time() - t0
            rows = self.stats()
            rps = sum(r["requests_per_second"] for r in rows.values())
            share = rows["v2"]["observed_share"] if "v2" in rows else None
            history.append((round(elapsed, 2), round(rps, 1), share))
            if rps > 0 and share is not None and abs(share - truth) < 0.02:
                break
            if elapsed > BOUND_S:
                self.fail("after %.1fs (requests sent in %.1fs): rps %.1f, v2 share %s, want "
                          "rps > 0 and share %.3f; polls (s, rps, share): %s"
                          % (elapsed, sent_s, rps, share, truth, history))
            time.sleep(0.25)
        print("stats right %.2fs after the first request (sent in %.2fs); polls: %s"
              % (elapsed, sent_s, history))
        # Totals still count every request once, the old client's included.
        self.assertEqual(rows["v2"]["configured_share"], 0.9)
        self.assertEqual(sum(r["requests_total"] for r in rows.values()), self.sent)

    def test_reconnect_to_restarted_control_plane_is_no_spike(self):
        # A client that sent its traffic, then lived past a window; the control plane restarts
        # and the client reconnects with counters far from zero. Its start lies back where it
        # started, so the rate is at most its lifetime average (a spike would be all its
        # requests over about a second), and then the idle client's 0.
        b1 = self.h.backend("reviews", "v1")
        self.proxy("reviews-v1", "reviews", "v1", b1.port)
        client = self.proxy("client")
        started = time.time()
        self.apply_and_sync(SERVICE + "---\n" + ROUTE % (100, 0), 2)
        wait_until(lambda: http_request(client.outbound, "/", headers={"Host": "reviews"})
                   .status == 200, what="reviews reachable")
        self.send(client, NEW_REQUESTS)
        while time.time() - started < 12:  # older than the 10 s window
            time.sleep(0.2)
        self.c.restart()
        rows = wait_until(lambda: (lambda s: s if "v1" in s and s["v1"]["requests_total"] >=
                                   self.sent else None)(self.stats()),
                          what="the client's report after reconnecting")
        lifetime = rows["v1"]["requests_total"] / (time.time() - started)
        polls = [round(rows["v1"]["requests_per_second"], 1)]
        # Until the start is more than a window before the window's start (20 s after it), it
        # is the window's base: the rate is the average since the start; then the base is the
        # first report after the reconnect, and the idle client shows 0. 6 s of slack.
        deadline = started + 26
        while rows["v1"]["requests_per_second"] > 0:
            self.assertLessEqual(rows["v1"]["requests_per_second"], 1.5 * lifetime,
                                 "a spike after the reconnect: polls %s" % polls)
            self.assertLess(time.time(), deadline, "rate still not the idle client's: polls %s"
                            % polls)
            time.sleep(0.25)
            rows = self.stats()
            polls.append(round(rows["v1"]["requests_per_second"], 1))
        print("after the reconnect (lifetime %.1f/s), rps polls: %s" % (lifetime, polls))


if __name__ == "__main__":
    unittest.main()
