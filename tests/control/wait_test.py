"""tests/control/wait_test.py — WaitForAck and Apply(wait): they answer when every connected
sidecar has ACKed or NACKed the version, report who said what, time out when one never answers,
and never block the server while they wait."""
import queue
import threading
import unittest

from control_fixture import SERVICES, Control, Harness, admin_pb2, grpc, route


def answer_forever(sc, nack=None):
    """ACKs (or NACKs with `nack` as the error) every snapshot the sidecar gets, on a thread."""
    def run():
        while not sc.done.is_set():
            try:
                s = sc.snapshots.get(timeout=0.2)
            except queue.Empty:
                continue
            if nack:
                sc.nack(s, 0, nack)
            else:
                sc.ack(s)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


class WaitTest(unittest.TestCase):
    def setUp(self):
        self.h = Harness()
        self.c = Control(self.h)
        self.c.apply(SERVICES)

    def tearDown(self):
        self.h.close()

    def wait_future(self, version, timeout_ms):
        req = admin_pb2.WaitForAckRequest(version=version)
        req.timeout.millis = timeout_ms
        f = self.c.channel.unary_unary("/remora.v1.Admin/WaitForAck",
                                       request_serializer=lambda m: m.SerializeToString(),
                                       response_deserializer=admin_pb2.WaitForAckResponse.FromString)
        return f.future(req, timeout=timeout_ms / 1000.0 + 30)

    def test_returns_when_the_stream_acks(self):
        sc = self.c.sidecar(pod="a")
        snap = sc.next_snapshot()
        fut = self.wait_future(1, 120000)
        # Without an ACK it cannot be done; meanwhile the server answers other calls.
        self.assertEqual(self.c.proxy_status().current_version, 1)
        self.assertEqual(len(self.c.history().entries), 1)
        self.assertFalse(fut.done())
        sc.ack(snap)
        resp = fut.result(timeout=60)  # far below the 120 s the call asked for
        self.assertFalse(resp.timed_out)
        self.assertEqual([(a.pod, a.state, a.config_version) for a in resp.acks],
                         [("a", "SYNCED", 1)])

    def test_times_out_when_a_stream_never_acks(self):
        good = self.c.sidecar(pod="good")
        answer_forever(good)
        silent = self.c.sidecar(pod="silent")
        silent.next_snapshot()
        self.c.wait_connected("good", "silent")
        resp = self.c.wait_for_ack(version=1, timeout_ms=300)
        self.assertTrue(resp.timed_out)
        states = {a.pod: a.state for a in resp.acks}
        self.assertEqual(states, {"good": "SYNCED", "silent": "STALE"})

    def test_nack_counts_as_an_answer(self):
        answer_forever(self.c.sidecar(pod="yes"))
        answer_forever(self.c.sidecar(pod="no"), nack="cannot compile route")
        self.c.wait_connected("yes", "no")
        resp = self.c.wait_for_ack(timeout_ms=60000)  # version 0: the current one
        self.assertFalse(resp.timed_out)
        by = {a.pod: a for a in resp.acks}
        self.assertEqual(by["yes"].state, "SYNCED")
        self.assertEqual(by["no"].state, "NACKED")
        self.assertIn("cannot compile route", by["no"].error)

    def test_apply_with_wait(self):
        answer_forever(self.c.sidecar(pod="s1"))
        answer_forever(self.c.sidecar(pod="s2"))
        self.c.wait_connected("s1", "s2")
        req = admin_pb2.ApplyRequest(source=route(), filename="r.yaml", wait=True)
        req.wait_timeout.millis = 60000
        resp = self.c.call("Apply", req, admin_pb2.ApplyResponse, timeout=90)
        self.assertEqual(resp.version, 2)
        self.assertFalse(resp.wait_timed_out)
        self.assertEqual(sorted((a.pod, a.state, a.config_version) for a in resp.acks),
                         [("s1", "SYNCED", 2), ("s2", "SYNCED", 2)])
        self.assertEqual([c.change for c in resp.changes], ["created"])

    def test_apply_with_wait_times_out(self):
        silent = self.c.sidecar(pod="silent")
        silent.next_snapshot()
        req = admin_pb2.ApplyRequest(source=route(), wait=True)
        req.wait_timeout.millis = 300
        resp = self.c.call("Apply", req, admin_pb2.ApplyResponse, timeout=60)
        self.assertTrue(resp.wait_timed_out)
        self.assertEqual([(a.pod, a.state) for a in resp.acks], [("silent", "STALE")])

    def test_no_sidecars_answers_at_once(self):
        resp = self.c.wait_for_ack(timeout_ms=600000)
        self.assertFalse(resp.timed_out)
        self.assertEqual(len(resp.acks), 0)

    def test_future_version_is_refused(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.c.wait_for_ack(version=42, timeout_ms=100)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)

    def test_client_giving_up_does_not_hurt(self):
        sc = self.c.sidecar(pod="a")
        snap = sc.next_snapshot()
        fut = self.wait_future(1, 600000)
        fut.cancel()
        self.assertTrue(fut.cancelled())
        sc.ack(snap)
        resp = self.c.wait_for_ack(version=1, timeout_ms=60000)
        self.assertFalse(resp.timed_out)

    def test_stream_that_leaves_is_not_waited_for(self):
        stays = self.c.sidecar(pod="stays")
        answer_forever(stays)
        leaves = self.c.sidecar(pod="leaves")
        leaves.next_snapshot()
        self.c.wait_connected("stays", "leaves")
        self.c.apply(route())
        fut = self.wait_future(2, 120000)
        leaves.cancel()
        resp = fut.result(timeout=60)
        self.assertFalse(resp.timed_out)
        self.assertEqual([a.pod for a in resp.acks], ["stays"])


    def test_many_streams_converge(self):
        # Many concurrent streams on one connection: every one gets the new version, ACKs it,
        # and one WaitForAck sees them all.
        n = 100
        sidecars = [self.c.sidecar(pod="p%03d" % i, service="reviews", version="v1",
                                   address="10.2.%d.%d:15006" % (i // 200, i % 200 + 1))
                    for i in range(n)]
        for sc in sidecars:
            answer_forever(sc)
        self.c.wait_connected(*["p%03d" % i for i in range(n)])
        req = admin_pb2.ApplyRequest(source=route(), wait=True)
        req.wait_timeout.millis = 120000
        resp = self.c.call("Apply", req, admin_pb2.ApplyResponse, timeout=150)
        self.assertFalse(resp.wait_timed_out)
        self.assertEqual(len(resp.acks), n)
        self.assertEqual({(a.state, a.config_version) for a in resp.acks}, {("SYNCED", 2)})
        # Every registered endpoint is in the snapshot they all got.
        snap = self.c.sidecar(pod="observer").next_snapshot()
        self.assertEqual(sum(1 for e in snap.endpoints if e.address.startswith("10.2.")), n)


if __name__ == "__main__":
    unittest.main()
