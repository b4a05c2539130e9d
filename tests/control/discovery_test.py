"""tests/control/discovery_test.py — the discovery stream of a real remora-control, spoken by a
fake sidecar in Python: snapshots on connect and on change, ACK/NACK in ProxyStatus, endpoint
registration (also deferred: Hello not_ready, then REGISTER), withdraw, the grace after a stream ends, stats reports, and bad input."""
import unittest

from control_fixture import (SERVICES, Control, Harness, discovery_pb2, endpoints, grpc, route,
                             stats_pb2, wait_until)


def by_pod(status):
    return {s.pod: s for s in status.sidecars}


class DiscoveryTest(unittest.TestCase):
    def setUp(self):
        self.h = Harness()

    def tearDown(self):
        self.h.close()

    def control(self, *extra):
        return Control(self.h, extra=list(extra))

    def test_snapshot_on_connect_and_on_apply(self):
        c = self.control()
        c.apply(SERVICES)
        sc = c.sidecar(pod="a-1")
        s1 = sc.next_snapshot()
        self.assertEqual(s1.version, 1)
        self.assertTrue(s1.nonce)
        self.assertEqual(sorted(s.name for s in s1.config.services), ["ratings", "reviews"])
        self.assertIn(("reviews", "v1", "127.0.0.1:9001"), endpoints(s1))

        c.apply(route())
        s2 = sc.snapshot_where(lambda s: s.version == 2)
        self.assertEqual(len(s2.config.routes), 1)
        self.assertNotEqual(s1.nonce, s2.nonce)

    def test_ack_and_nack_show_in_proxy_status(self):
        c = self.control()
        c.apply(SERVICES)
        a = c.sidecar(pod="a", service="reviews", version="v1", address="127.0.0.1:7001")
        b = c.sidecar(pod="b")
        sa, sb = a.next_snapshot(), b.next_snapshot()
        a.ack(sa)
        b.nack(sb, 0, "rules[0]: I do not like it")
        st = wait_until(lambda: (lambda p: p if "a" in p and "b" in p and p["a"].state == "SYNCED"
                                 and p["b"].state == "NACKED" else None)(by_pod(c.proxy_status())),
                        what="SYNCED and NACKED")
        self.assertEqual(st["a"].config_version, 1)
        self.assertEqual((st["a"].service, st["a"].version), ("reviews", "v1"))
        self.assertIn("I do not like it", st["b"].error)
        self.assertGreater(st["a"].last_seen_ms, 0)

        # A new version: a has not answered it yet, so it is STALE until it ACKs.
        c.apply(route())
        self.assertEqual(c.proxy_status().current_version, 2)
        self.assertEqual(by_pod(c.proxy_status())["a"].state, "STALE")
        a.ack(a.snapshot_where(lambda s: s.version == 2))
        b.ack(b.snapshot_where(lambda s: s.version == 2))
        wait_until(lambda: {s.state for s in c.proxy_status().sidecars} == {"SYNCED"},
                   what="both SYNCED")
        self.assertEqual(by_pod(c.proxy_status())["b"].error, "")

    def test_ack_of_unknown_nonce_is_ignored(self):
        c = self.control()
        c.apply(SERVICES)
        a = c.sidecar(pod="a")
        a.next_snapshot()
        a.send(discovery_pb2.DiscoveryRequest(ack=discovery_pb2.Ack(version=1, nonce="made-up")))
        # A stats report after it on the same stream: once Stats shows it, the ACK before it
        # has been handled too (one stream's messages are handled in order).
        a.send(discovery_pb2.DiscoveryRequest(stats=stats_pb2.StatsReport(counters=[
            stats_pb2.Counter(name="remora_requests_total", value=1,
                              labels={"service": "marker"})])))
        wait_until(lambda: len(c.stats(service="marker").rows) == 1, what="marker stats")
        # The stream stays up and a nonce we never sent does not make the sidecar SYNCED.
        self.assertEqual(by_pod(c.proxy_status())["a"].state, "STALE")
        self.assertEqual(by_pod(c.proxy_status())["a"].config_version, 0)
        c.apply(route())
        a.snapshot_where(lambda s: s.version == 2)

    def test_endpoint_registration_reaches_other_streams(self):
        c = self.control()
        c.apply(SERVICES)
        watcher = c.sidecar(pod="watcher")
        watcher.next_snapshot()
        c.sidecar(pod="reviews-v2-1", service="reviews", version="v2", address="10.1.0.2:15006")
        s = watcher.snapshot_where(lambda s: ("reviews", "v2", "10.1.0.2:15006") in endpoints(s))
        ep = [e for e in s.endpoints if e.address == "10.1.0.2:15006"][0]
        self.assertEqual((ep.pod, ep.namespace, ep.draining), ("reviews-v2-1", "default", False))
        self.assertTrue(ep.sidecar, "a registered endpoint is a Remora sidecar")
        # Static endpoints are still there, merged (plain ones not marked as sidecars).
        self.assertIn(("reviews", "v1", "127.0.0.1:9001"), endpoints(s))
        self.assertFalse([e for e in s.endpoints if e.address == "127.0.0.1:9001"][0].sidecar)
        # The registered version now counts as having endpoints: no warning about v2.
        r = c.apply(route())
        self.assertFalse([w for w in r.warnings if "v2" in w], r.warnings)

    def test_not_ready_hello_is_listed_at_register_and_drops_an_earlier_life(self):
        c = self.control("--endpoint-grace", "1h")
        c.apply(SERVICES)
        watcher = c.sidecar(pod="watcher")
        watcher.next_snapshot()
        key = ("reviews", "v1", "10.1.0.7:15006")
        # An earlier life of the pod, gone but inside its grace: listed.
        old = c.sidecar(pod="p", service="reviews", version="v1", address="10.1.0.7:15006")
        watcher.snapshot_where(lambda s: endpoints(s).get(key) is False)
        old.cancel()
        # The pod again, its app not up yet: the earlier life goes, nothing is listed.
        new = c.sidecar(pod="p", service="reviews", version="v1", address="10.1.0.7:15006",
                        not_ready=True)
        watcher.snapshot_where(lambda s: key not in endpoints(s))
        self.assertNotIn(key, endpoints(c.sidecar(pod="late").next_snapshot()))
        # Its app is up: listed, live.
        new.register()
        watcher.snapshot_where(lambda s: endpoints(s).get(key) is False)

    def test_withdraw_marks_draining_at_once(self):
        # A debounce far longer than the wait below: only an immediate push can pass.
        c = self.control("--debounce", "60s")
        c.apply(SERVICES)
        watcher = c.sidecar(pod="watcher")
        watcher.next_snapshot()
        leaving = c.sidecar(pod="leaving", service="reviews", version="v1",
                            address="10.1.0.9:15006")
        leaving.next_snapshot()
        leaving.withdraw()
        s = watcher.snapshot_where(
            lambda s: endpoints(s).get(("reviews", "v1", "10.1.0.9:15006")) is True, timeout=20)
        self.assertTrue(s.nonce)

    def test_stream_end_keeps_endpoint_for_the_grace(self):
        c = self.control("--endpoint-grace", "1h")
        c.apply(SERVICES)
        gone = c.sidecar(pod="gone", service="reviews", version="v3", address="10.1.0.3:15006")
        gone.next_snapshot()
        gone.close()
        wait_until(lambda: "gone" not in by_pod(c.proxy_status()), what="gone off proxy-status")
        # Inside the grace a new sidecar still sees the endpoint.
        late = c.sidecar(pod="late")
        self.assertIn(("reviews", "v3", "10.1.0.3:15006"), endpoints(late.next_snapshot()))

    def test_stream_end_removes_endpoint_after_the_grace(self):
        c = self.control("--endpoint-grace", "300ms")
        c.apply(SERVICES)
        watcher = c.sidecar(pod="watcher")
        watcher.next_snapshot()
        gone = c.sidecar(pod="gone", service="reviews", version="v3", address="10.1.0.3:15006")
        watcher.snapshot_where(lambda s: ("reviews", "v3", "10.1.0.3:15006") in endpoints(s))
        gone.cancel()
        watcher.snapshot_where(lambda s: ("reviews", "v3", "10.1.0.3:15006") not in endpoints(s))

    def test_reconnect_replaces_old_entry(self):
        c = self.control("--endpoint-grace", "1h")
        c.apply(SERVICES)
        first = c.sidecar(pod="p", service="reviews", version="v1", address="10.1.0.4:15006")
        first.next_snapshot()
        # Whether or not the server has noticed the first stream's end when the second Hello
        # arrives, the address is listed once.
        again = c.sidecar(pod="p", service="reviews", version="v1", address="10.1.0.4:15006")
        s = again.next_snapshot()
        self.assertEqual([e.address for e in s.endpoints].count("10.1.0.4:15006"), 1)
        first.cancel()
        wait_until(lambda: len(c.proxy_status().sidecars) == 1, what="first stream gone")
        third = c.sidecar(pod="q")
        s = third.next_snapshot()
        self.assertEqual([e.address for e in s.endpoints].count("10.1.0.4:15006"), 1)

    def test_first_message_must_be_hello(self):
        c = self.control()
        sc = c.sidecar(pod="x", hello=False)
        sc.send(discovery_pb2.DiscoveryRequest(ack=discovery_pb2.Ack(version=1, nonce="n")))
        e = sc.wait_ended()
        self.assertEqual(e.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("Hello", e.details())

    def test_bad_hello_and_second_hello(self):
        c = self.control()
        sc = c.sidecar(pod="bad pod name")
        self.assertEqual(sc.wait_ended().code(), grpc.StatusCode.INVALID_ARGUMENT)
        sc = c.sidecar(pod="ok", service="s", address="not-an-address")
        e = sc.wait_ended()
        self.assertEqual(e.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("address", e.details())
        sc = c.sidecar(pod="twice")
        sc.next_snapshot()
        sc.send(discovery_pb2.DiscoveryRequest(hello=discovery_pb2.Hello()))
        self.assertIn("twice", sc.wait_ended().details())

    def test_malformed_protobuf_on_stream(self):
        c = self.control()
        sc = c.sidecar(pod="x", hello=False)
        sc.send(b"\xff\xff\xff\xff")
        e = sc.wait_ended()
        self.assertEqual(e.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("malformed", e.details())
        # An empty message (no field of the oneof set) is refused too.
        sc = c.sidecar(pod="y", hello=False)
        sc.send(b"")
        self.assertEqual(sc.wait_ended().code(), grpc.StatusCode.INVALID_ARGUMENT)

    def test_oversized_message_on_stream(self):
        c = self.control()
        sc = c.sidecar(pod="big")
        sc.next_snapshot()
        sc.send(discovery_pb2.DiscoveryRequest(nack=discovery_pb2.Nack(
            nonce="n", error="x" * (5 * 1024 * 1024))))
        self.assertEqual(sc.wait_ended().code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        # The server is unharmed.
        self.assertEqual(c.apply(SERVICES).version, 1)

    def test_half_close_ends_stream_cleanly(self):
        c = self.control()
        sc = c.sidecar(pod="bye")
        sc.next_snapshot()
        sc.close()
        self.assertIsNone(sc.wait_ended())

    def test_stats_reports_are_aggregated(self):
        c = self.control()
        c.apply(SERVICES + "---\n" + route(90, 10))
        sc = c.sidecar(pod="client", service="productpage", version="v1",
                       address="10.1.0.7:15006")
        sc.next_snapshot()

        def counter(name, value, **labels):
            return stats_pb2.Counter(name=name, value=value, labels=labels)

        rep = stats_pb2.StatsReport(timestamp_ms=1, counters=[
            counter("remora_requests_total", 90, service="reviews", version="v1",
                    route="reviews-rollout", code="200"),
            counter("remora_requests_total", 10, service="reviews", version="v1",
                    route="reviews-rollout", code="503"),
            counter("remora_requests_total", 20, service="reviews", version="v2",
                    route="reviews-rollout", code="200"),
            counter("remora_retries_total", 25, service="reviews", version="v1",
                    route="reviews-rollout", reason="gateway-error"),
            counter("remora_retry_success_total", 15, service="reviews", version="v1",
                    route="reviews-rollout"),
        ])
        sc.send(discovery_pb2.DiscoveryRequest(stats=rep))
        rows = wait_until(lambda: {r.version: r for r in c.stats(service="reviews").rows} or None,
                          what="stats rows")
        v1, v2 = rows["v1"], rows["v2"]
        self.assertEqual((v1.service, v1.namespace, v1.route), ("reviews", "default",
                                                                 "reviews-rollout"))
        self.assertEqual(v1.requests_total, 100)
        self.assertAlmostEqual(v1.effective_success_rate, 0.9)
        self.assertAlmostEqual(v1.actual_success_rate, 90 / 125)
        self.assertEqual([(r.reason, r.total) for r in v1.retries], [("gateway-error", 25)])
        self.assertEqual(v1.retry_successes, 15)
        self.assertAlmostEqual(v1.observed_share, 100 / 120)
        self.assertAlmostEqual(v1.configured_share, 0.9)
        self.assertAlmostEqual(v2.configured_share, 0.1)
        self.assertEqual(len(c.stats(service="nothing").rows), 0)


if __name__ == "__main__":
    unittest.main()
