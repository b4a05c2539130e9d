"""tests/control/scope_test.py — per-sidecar snapshot scoping (Node.egress, issue 5) against a real
remora-control: raw snapshots read with python3-grpcio, and real remora-proxy processes started
with --egress routing and mirroring to test backends.

What it proves: a sidecar with egress [a] receives only service a (plus what a's routes mirror
to) and only their endpoints; a sidecar without egress receives everything; sidecars sharing a
list share one encoded snapshot (one nonce); endpoint churn of another service never reaches the
a-scoped stream, while a new config version does (same content, new version: that ACK is what
apply --wait waits for); a bad egress entry ends the stream; ProxyStatus shows each scope; a
route whose mirror targets service b validates and mirrors in a proxy scoped to a.
"""
import unittest

from control_fixture import Control, Harness, endpoints, grpc, wait_until  # re-execs first
from remora_harness import free_port, http_request, runfile, wait_port

CONFIG = """kind: Service
name: a
port: 80
endpoints: [{address: 127.0.0.1:%d, version: v1}]
---
kind: Service
name: b
port: 80
endpoints: [{address: 127.0.0.1:%d, version: v1}]
---
kind: Service
name: c
port: 80
endpoints: [{address: 127.0.0.1:%d, version: v1}]
---
kind: Route
name: a-route
service: a
rules:
  - destinations: [{version: v1}]
    mirror: {service: b, percent: 100}
---
kind: CircuitBreaker
name: c-limits
service: c
limits: {maxConnections: 10}
"""


def names(snap):
    return sorted(s.name for s in snap.config.services)


def services_of(snap):
    return sorted({e.service for e in snap.endpoints})


def backend_requests(b):
    return http_request(b.port, "/__backend/stats").json()["requests"]


class ScopeTest(unittest.TestCase):
    def setUp(self):
        self.h = Harness()
        self.addCleanup(self.h.close)
        self.c = Control(self.h)

    def test_scoped_snapshot_contents_and_sharing(self):
        self.c.apply(CONFIG % (9001, 9002, 9003))
        a1 = self.c.sidecar(pod="a1", egress=["a"])
        a2 = self.c.sidecar(pod="a2", egress=["a.default.svc.cluster.local", "a"])
        full = self.c.sidecar(pod="full")
        s1, s2, sf = a1.next_snapshot(), a2.next_snapshot(), full.next_snapshot()
        # a, plus b because a's route mirrors to it; c and its breaker are not a's business.
        self.assertEqual(names(s1), ["a", "b"])
        self.assertEqual([r.name for r in s1.config.routes], ["a-route"])
        self.assertEqual(len(s1.config.circuit_breakers), 0)
        self.assertEqual(services_of(s1), ["a", "b"])
        self.assertNotIn(("c", "v1", "127.0.0.1:9003"), endpoints(s1))
        # The same normalized list: the same snapshot bytes, nonce included.
        self.assertEqual(s1.SerializeToString(), s2.SerializeToString())
        # No egress: everything, as before.
        self.assertEqual(names(sf), ["a", "b", "c"])
        self.assertEqual(len(sf.config.circuit_breakers), 1)
        self.assertIn(("c", "v1", "127.0.0.1:9003"), endpoints(sf))
        st = {s.pod: s.scope for s in wait_until(
            lambda: (lambda p: p if len(p.sidecars) == 3 else None)(self.c.proxy_status()))
            .sidecars}
        self.assertEqual(st, {"a1": "a.default", "a2": "a.default", "full": "all"})

    def test_other_services_endpoints_do_not_reach_a_scope(self):
        self.c.apply(CONFIG % (9001, 9002, 9003))
        a = self.c.sidecar(pod="a1", egress=["a"])
        full = self.c.sidecar(pod="full")
        a.ack(a.next_snapshot())
        full.ack(full.next_snapshot())
        # A pod of c registers: the full sidecar sees it...
        pc = self.c.sidecar(pod="c-pod", service="c", version="v1", address="127.0.0.1:7003")
        full.snapshot_where(lambda s: ("c", "v1", "127.0.0.1:7003") in endpoints(s))
        # ...then a pod of a: the a-scoped stream's very next snapshot is that one, so nothing
        # was sent to it for c's pod in between.
        pa = self.c.sidecar(pod="a-pod", service="a", version="v1", address="127.0.0.1:7001")
        full.snapshot_where(lambda s: ("a", "v1", "127.0.0.1:7001") in endpoints(s))
        nxt = a.next_snapshot()
        self.assertIn(("a", "v1", "127.0.0.1:7001"), endpoints(nxt))
        self.assertNotIn("c", services_of(nxt))
        # A config change that touches only c still moves every scope to the new version
        # (identical content for a), so apply --wait hears from every sidecar.
        a.ack(nxt)
        r = self.c.apply(CONFIG.replace("maxConnections: 10", "maxConnections: 11")
                         % (9001, 9002, 9003))
        s3 = a.snapshot_where(lambda s: s.version == r.version)
        self.assertEqual(names(s3), names(nxt))
        self.assertEqual(set(endpoints(s3)), set(endpoints(nxt)))
        for s in (pc, pa):
            s.close()

    def test_bad_egress_ends_the_stream(self):
        bad = self.c.sidecar(pod="x", egress=["Not_A_Name"])
        err = bad.wait_ended()
        self.assertIsNotNone(err)
        self.assertEqual(err.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("egress", err.details())

    def proxy(self, name, *extra):
        out, admin = free_port(), free_port()
        p = self.h.start([runfile("dataplane/proxy/remora-proxy"), "--control-plane",
                          self.c.target, "--bind", "127.0.0.1", "--pod", name,
                          "--outbound-port", str(out), "--inbound-port", "0", "--admin-port",
                          str(admin)] + list(extra), log_name="proxy-" + name)
        wait_port(out, proc=p)
        p.outbound, p.admin = out, admin
        return p

    def test_real_proxy_scoped_to_a_validates_and_mirrors_to_b(self):
        ba, bb, bc = (self.h.backend(s) for s in ("a", "b", "c"))
        r = self.c.apply(CONFIG % (ba.port, bb.port, bc.port))
        scoped = self.proxy("scoped", "--egress", "a")
        every = self.proxy("every")

        def dump(p):
            return http_request(p.admin, "/config_dump").json()

        wait_until(lambda: dump(scoped)["version"] == r.version and
                   dump(every)["version"] == r.version, what="both proxies at the version")
        kinds = sorted((d["kind"], d["name"]) for d in dump(scoped)["config"])
        self.assertEqual(kinds, [("Route", "a-route"), ("Service", "a"), ("Service", "b")])
        self.assertEqual(len(dump(every)["config"]), 5)
        # Both ACKed: the scoped snapshot passed the proxy's validation.
        st = wait_until(lambda: (lambda p: p if len(p) == 2 and all(
            s.state == "SYNCED" for s in p) else None)(self.c.proxy_status().sidecars))
        self.assertEqual(sorted(s.scope for s in st), ["a.default", "all"])

        before_b = backend_requests(bb)
        for _ in range(5):
            resp = http_request(scoped.outbound, "/", headers={"Host": "a"})
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.header("x-backend-service"), "a")
        # The mirror copies reach b (fire and forget: wait for them).
        wait_until(lambda: backend_requests(bb) >= before_b + 5, what="5 mirrored requests at b")
        # c is outside the scope: the scoped proxy has no service for that Host.
        self.assertNotEqual(http_request(scoped.outbound, "/", headers={"Host": "c"})
                            .header("x-backend-service"), "c")
        self.assertEqual(http_request(every.outbound, "/", headers={"Host": "c"})
                         .header("x-backend-service"), "c")

    def test_env_default_and_bad_flag(self):
        # REMORA_EGRESS is what the injector sets; --egress overrides it.
        p = self.h.start([runfile("dataplane/proxy/remora-proxy"), "--control-plane",
                          self.c.target, "--egress", "a,Bad"], log_name="proxy-bad")
        self.assertEqual(p.wait(timeout=10), 2)
        self.assertIn('"Bad" is not a service name', self.h.log_of(p))
        self.c.apply(CONFIG % (9001, 9002, 9003))
        out, admin = free_port(), free_port()
        q = self.h.start([runfile("dataplane/proxy/remora-proxy"), "--control-plane",
                          self.c.target, "--bind", "127.0.0.1", "--pod", "env",
                          "--outbound-port", str(out), "--inbound-port", "0",
                          "--admin-port", str(admin)], log_name="proxy-env",
                         env={"REMORA_EGRESS": "c"})
        wait_port(admin, proc=q)
        wait_until(lambda: [d["name"] for d in http_request(admin, "/config_dump").json()
                            ["config"] if d["kind"] == "Service"] == ["c"],
                   what="the env-scoped proxy holds only c")


if __name__ == "__main__":
    unittest.main()
