"""tests/control/caps_test.py — remora-control's caps (--max-streams, --max-scopes,
--max-registrations, --max-waiters): past each one the caller that would exceed it gets
RESOURCE_EXHAUSTED naming the flag, the refusal is logged (at most every 10 s per cap), and
every stream or call already in keeps working: it still gets the next push, its parked call
still completes."""
import re
import unittest

from control_fixture import (SERVICES, Control, Harness, StreamFlood, admin_pb2, grpc, route,
                             rpc_error, wait_until)

EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


class CapsTest(unittest.TestCase):
    def setUp(self):
        self.h = Harness()
        self.floods = []

    def tearDown(self):
        for f in self.floods:
            f.close()
        self.h.close()

    def refusals(self, c, flag):
        return len(re.findall(r"limit reached: .*\(%s \d+\)" % re.escape(flag), c.log()))

    def assert_still_pushed(self, c, sidecars):
        """A new version reaches every sidecar that was let in."""
        v = c.apply(route(70, 30)).version
        for sc in sidecars:
            sc.snapshot_where(lambda s: s.version == v)

    def test_max_streams(self):
        c = Control(self.h, extra=["--max-streams", "3"])
        c.apply(SERVICES)
        ins = [c.sidecar(pod="in-%d" % i) for i in range(3)]
        for sc in ins:
            sc.next_snapshot()
        out = c.sidecar(pod="out")
        e = out.wait_ended()
        self.assertEqual(e.code(), EXHAUSTED)
        self.assertIn("already serves 3 discovery streams (--max-streams 3)", e.details())
        self.assertTrue(out.snapshots.empty())
        self.assert_still_pushed(c, ins)
        self.assertEqual(sorted(s.pod for s in c.proxy_status().sidecars),
                         ["in-0", "in-1", "in-2"])
        # One leaves: there is room again.
        ins[0].close()
        wait_until(lambda: len(c.proxy_status().sidecars) == 2, what="in-0 gone")
        again = c.sidecar(pod="again")
        again.next_snapshot()
        self.assertEqual(self.refusals(c, "--max-streams"), 1)

    def test_max_streams_under_a_flood(self):
        # 150 streams at once against a cap of 100: exactly 100 are served, 50 refused, one log
        # line for all of them (rate-limited), and the server answers Admin calls throughout.
        c = Control(self.h, extra=["--max-streams", "100"])
        c.apply(SERVICES)
        f = StreamFlood(c, 150)
        self.floods.append(f)
        f.wait_first(timeout=60)
        codes = [e for e in f.ended if e is not None]
        self.assertEqual(codes, [EXHAUSTED] * 50)
        self.assertTrue(all("--max-streams 100" in d for i, d in enumerate(f.details)
                            if f.ended[i] is not None))
        self.assertEqual(len(c.proxy_status().sidecars), 100)
        v = c.apply(route(60, 40)).version
        wait_until(lambda: f.all_at(v), timeout=30, what="the 100 streams at version %d" % v)
        self.assertEqual(self.refusals(c, "--max-streams"), 1)
        # Every refusal is counted: the stop says how many.
        f.close()
        self.assertEqual(c.stop(), 0)
        self.assertIn("refused over the caps since start: 50 stream(s) (--max-streams), 0 ",
                      c.log())

    def test_max_scopes(self):
        c = Control(self.h, extra=["--max-scopes", "2"])
        c.apply(SERVICES)
        a = c.sidecar(pod="a", egress=["reviews"])
        b = c.sidecar(pod="b", egress=["ratings"])
        a2 = c.sidecar(pod="a2", egress=["reviews.default"])  # the same list, normalized
        everything = c.sidecar(pod="all")  # no egress: the "all" scope, never counted
        for sc in (a, b, a2, everything):
            sc.next_snapshot()
        third = c.sidecar(pod="third", egress=["reviews", "ratings"])
        e = third.wait_ended()
        self.assertEqual(e.code(), EXHAUSTED)
        self.assertIn("(--max-scopes 2)", e.details())
        self.assert_still_pushed(c, [a, b, a2, everything])
        self.assertNotIn("third", [s.pod for s in c.proxy_status().sidecars])
        # The last user of a scope leaves: its slot is free.
        b.close()
        wait_until(lambda: "b" not in [s.pod for s in c.proxy_status().sidecars], what="b gone")
        c.sidecar(pod="third", egress=["reviews", "ratings"]).next_snapshot()
        self.assertEqual(self.refusals(c, "--max-scopes"), 1)

    def test_refusals_are_one_log_line(self):
        # 100 Hellos with 100 new egress lists against --max-scopes 1: the cap's line, once;
        # no line per refused stream above debug.
        c = Control(self.h, extra=["--max-scopes", "1"])
        c.apply(SERVICES)
        f = StreamFlood(c, 100, address=False, egress_of=lambda i: ["svc-%d" % i])
        self.floods.append(f)
        f.wait_first(timeout=60)
        self.assertEqual(sum(1 for e in f.ended if e == EXHAUSTED), 99)
        self.assertEqual(self.refusals(c, "--max-scopes"), 1)
        self.assertEqual([l for l in c.log().splitlines()
                          if "--max-scopes" in l and " debug " not in l and
                          "limit reached" not in l], [])

    def test_max_registrations(self):
        c = Control(self.h, extra=["--max-registrations", "2", "--endpoint-grace", "300ms"])
        c.apply(SERVICES)
        watcher = c.sidecar(pod="watcher")  # no endpoint: not a registration
        watcher.next_snapshot()
        p1 = c.sidecar(pod="p1", service="reviews", version="v2", address="10.1.0.1:15006")
        p2 = c.sidecar(pod="p2", service="reviews", version="v2", address="10.1.0.2:15006")
        p1.next_snapshot()
        p2.next_snapshot()
        p3 = c.sidecar(pod="p3", service="reviews", version="v2", address="10.1.0.3:15006")
        e = p3.wait_ended()
        self.assertEqual(e.code(), EXHAUSTED)
        self.assertIn("already lists 2 endpoints of its own (--max-registrations 2)",
                      e.details())
        s = watcher.snapshot_where(lambda s: {"10.1.0.1:15006", "10.1.0.2:15006"} <=
                                   {x.address for x in s.endpoints})
        self.assertNotIn("10.1.0.3:15006", {x.address for x in s.endpoints})
        # p1 reconnecting (its old stream not even closed) replaces its own entry: let in.
        p1b = c.sidecar(pod="p1", service="reviews", version="v2", address="10.1.0.1:15006")
        p1b.next_snapshot()
        self.assert_still_pushed(c, [watcher, p1b, p2])
        # p2 leaves; once its grace is over, p3 fits.
        p2.cancel()
        watcher.snapshot_where(lambda s: "10.1.0.2:15006" not in {x.address for x in s.endpoints})
        p3 = c.sidecar(pod="p3", service="reviews", version="v2", address="10.1.0.3:15006")
        p3.next_snapshot()
        watcher.snapshot_where(lambda s: "10.1.0.3:15006" in {x.address for x in s.endpoints})

    def test_max_waiters(self):
        c = Control(self.h, extra=["--max-waiters", "1"])
        c.apply(SERVICES)
        silent = c.sidecar(pod="silent")  # never ACKs: every wait parks
        snap = silent.next_snapshot()
        req = admin_pb2.WaitForAckRequest(version=1)
        req.timeout.millis = 60000
        f = c.channel.unary_unary("/remora.v1.Admin/WaitForAck",
                                  request_serializer=lambda m: m.SerializeToString(),
                                  response_deserializer=admin_pb2.WaitForAckResponse.FromString)
        parked = f.future(req, timeout=90)

        def second_wait():
            try:
                c.wait_for_ack(1, 100)  # let in (the first not parked yet): times out quickly
                return None
            except grpc.RpcError as e:
                return e
        e = wait_until(second_wait, what="a second wait refused")
        self.assertEqual(e.code(), EXHAUSTED)
        self.assertFalse(parked.done())
        self.assertIn("1 calls already wait for sidecars to answer (--max-waiters 1)", e.details())
        # Apply with wait is refused before anything is applied; without wait it works.
        e = rpc_error(c.apply, route(50, 50), wait=True)
        self.assertEqual(e.code(), EXHAUSTED)
        self.assertIn("nothing applied", e.details())
        self.assertEqual(c.history().entries[0].version, 1)
        self.assertEqual(c.apply(route(50, 50)).version, 2)
        # The parked call is unaffected: the ACK completes it.
        silent.ack(snap)
        resp = parked.result(timeout=30)
        self.assertFalse(resp.timed_out)
        self.assertEqual([(a.pod, a.state) for a in resp.acks], [("silent", "SYNCED")])
        self.assertEqual(c.wait_for_ack(1, 10000).timed_out, False)
        self.assertEqual(self.refusals(c, "--max-waiters"), 1)


if __name__ == "__main__":
    unittest.main()
