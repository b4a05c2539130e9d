"""tests/pods/rolling_update_netns_test.py — a zero-error rolling update with real pods.

Three pods of reviews v1, each its own network namespace with remora-init's iptables rules, a
test backend and remora-proxy as uid 1337, behind a Service vip (10.96.0.10:9080) applied with
meshctl. A client pod's app (open_loop.py --tally, run inside the client pod's namespace as root)
calls the vip at 200 requests/s, GET and POST alternating over keep-alive connections, counting
who answered and whether the backend saw both sidecars in x-forwarded-for; the only way its requests reach a
backend is transparent interception by its sidecar. The pods are replaced one by one (maxSurge 1,
maxUnavailable 0) by pods of v2: no request may fail. The test also checks that
traffic really went through the sidecars: the backends saw both sidecars in x-forwarded-for, the client sidecar's
/stats (read inside the client pod) counted the requests, each server sidecar's inbound counted
its share, and both versions answered.
Needs root, iproute2, iptables, setpriv and curl; skipped otherwise.
"""
import json
import time
import unittest

from pod_load import instances_reached, start_load, stop_load
from pod_runner import PodRunner, available, metric_sum

VIP = "10.96.0.10"

SERVICE = """kind: Service
name: reviews
port: 9080
vip: %s
""" % VIP

# Explicit version routing with retries, as tests/e2e/rolling_update_test.py uses on loopback.
ROUTED = """kind: Service
name: reviews
port: 9080
vip: %s
---
kind: Route
name: reviews
service: reviews
rules:
  - name: all
    destinations: [{version: v1, weight: 1}]
    retries: {attempts: 3, retryOn: [connect-failure, reset], backoff: {base: 5ms, max: 50ms}}
""" % VIP


@unittest.skipUnless(available(), "needs root, iproute2, iptables, setpriv and curl")
class RollingUpdateNetnsTest(unittest.TestCase):
    def setUp(self):
        self.runner = PodRunner()
        self.addCleanup(self.runner.close)
        self.runner.setup()

    def wait_client_sees(self, pods, timeout=10):
        """Until requests through the vip from the client pod reach every one of pods (the client
        sidecar's snapshot lists their endpoints)."""
        names = [p.name for p in pods]
        self.assertEqual(instances_reached(self.client, "%s:9080" % VIP, names, timeout),
                         set(names), "instances reached via the vip")

    def start_load(self, rate=200):
        # 200 req/s in total over up to 8 keep-alive connections, as the README's figures
        p = start_load(self.client, "%s:9080" % VIP, rate, authority="reviews", connections=8,
                       tally=True)
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.wait()))
        return p

    def rollout(self, config, new_version, expect_versions, **update_args):
        """Applies config, starts 3 reviews v1 pods and the client pod, runs the load through the
        vip and a rolling update of the three pods to new_version; checks zero errors and that
        every request went through both sidecars. Returns the load summary."""
        r = self.runner
        r.apply(config)
        self.pods = [r.start_pod("reviews", "v1", wait_ready=False) for _ in range(3)]
        self.client = r.start_pod(None, None, name="client", wait_ready=False)
        r.wait_ready(*self.pods)
        self.wait_client_sees(self.pods)

        before = self.client.admin("/stats")
        load = self.start_load(200)
        time.sleep(2.0)
        new, codes = r.rolling_update("reviews", self.pods, new_version, **update_args)
        time.sleep(2.0)
        # the new pods' inbound counters, read before the load stops (all pods still up)
        server_stats = {p.name: p.admin("/stats") for p in new}
        app_stats = {p.name: json.loads(p.app_stats()) for p in new}
        summary = stop_load(load)
        after = self.client.admin("/stats")
        timeline = "\n".join("%6.2fs %s" % e for e in r.events) + "\nclient sidecar:\n" + "\n".join(
            line for line in after.splitlines()
            if line.startswith(("remora_retr", "remora_outlier", "remora_requests_total")))
        print("\n%s: %s\n%s" % (self.id(), json.dumps(summary), timeline))

        self.assertEqual(summary["failures"], 0, "client-visible errors: %s\n%s" % (
            summary["failure_samples"], timeline))
        # 200 req/s for at least the 4 s of sleeps plus the update itself
        self.assertGreater(summary["total"], 900)
        self.assertGreater(summary["sent"].get("POST", 0), 400)
        self.assertEqual(len(new), 3)
        for c in codes:
            self.assertEqual(c, (0, 0), "old pod exit codes (sidecar, app)")
        self.assertEqual(set(summary["versions"]), set(expect_versions))
        # the vip was served by the old pods and by every new one, and by nothing else
        old_names, new_names = {p.name for p in self.pods}, {p.name for p in new}
        self.assertLessEqual(set(summary["instances"]), old_names | new_names)
        self.assertLessEqual(new_names, set(summary["instances"]))
        self.assertTrue(old_names & set(summary["instances"]))
        # every answer shows both sidecars' hops: nothing bypassed the mesh
        self.assertEqual(summary["through_mesh"], summary["total"])
        # the client sidecar counted them (outbound, service reviews)
        counted = (metric_sum(after, "remora_requests_total", service="reviews") -
                   metric_sum(before, "remora_requests_total", service="reviews"))
        self.assertGreaterEqual(counted, summary["total"])
        # each new pod's sidecar took inbound traffic and handed it to its app
        for p in new:
            self.assertGreater(metric_sum(server_stats[p.name], "remora_requests_total"), 0, p.name)
            self.assertGreater(app_stats[p.name]["requests"], 0, p.name)
        # only the new pods remain, and the vip now reaches exactly them
        self.assertEqual(sorted(p.name for p in r.pods if p.app), sorted(new_names))
        self.wait_client_sees(new)
        return summary

    def test_rolling_update_surge(self):
        """New pods of the same version (a restart or config rollout) under an explicit Route
        with retries; maxSurge 1, maxUnavailable 0: start one, wait ready, SIGTERM one old."""
        self.rollout(ROUTED, "v1", {"v1"}, max_surge=1, max_unavailable=0)

    def test_rolling_update_unavailable(self):
        """The other rollingUpdate path: maxSurge 0, maxUnavailable 1 (SIGTERM one old pod and
        wait for its exit, then start its replacement): two pods carry the load meanwhile."""
        self.rollout(ROUTED, "v1", {"v1"}, max_surge=0, max_unavailable=1)

    def test_rolling_update_v1_to_v2_service_only(self):
        """A Deployment's image change as Kubernetes does it: the Service (no Route) spreads over
        every ready endpoint whatever its version, so v1 and v2 both answer during the rollout.
        This lost 1-3 of ~2,500 requests while the last v1 pod drained, until a retry under the
        default spread could move to another version (dataplane/proxy/routing.c)."""
        summary = self.rollout(SERVICE, "v2", {"v1", "v2"}, max_surge=1, max_unavailable=0)
        self.assertGreater(summary["versions"]["v2"], 0)


if __name__ == "__main__":
    unittest.main()
