"""tests/control/registration_test.py — endpoint registrations live in the store.

1. SQLite, one control plane: remora-control is SIGKILLed and restarted on the same store while a
   server pod's registration (its discovery stream) and a real client sidecar are connected. The
   client reconnects first; the server's stream is not back for several seconds (longer than the
   2 s endpoint grace). The client must keep routing to the restored registration — before
   registrations were stored it got an empty endpoint list and answered 503 "no healthy upstream".
   The pod's return replaces the restored entry (one endpoint, not two).
2. etcd, two replicas: a real pod sidecar registers on replica A, a real client sidecar on
   replica B routes to it (the Service has no static endpoints), and the pod's withdraw (SIGTERM:
   drain) reaches B's clients as draining, then the endpoint goes when A's grace ends.
3. A pod whose app is not up yet is not listed: its sidecar says so in Hello and registers once
   its probe of the app port succeeds (before, the endpoint was listed at Hello, other sidecars'
   requests were refused by the pod's sidecar, and their outlier detection ejected the new pod).
4. A pod drained while the control plane is down keeps accepting until its withdrawal reaches the
   restarted control plane, then exits: before, it exited after its 2 s grace, its withdrawal
   was lost, and the restored registration listed the vanished pod as live.
5. etcd: a replica that dies leaves its sidecars' registrations listed on the other replica until
   its lease expires; they are not deleted while fresh.
"""
import os
import signal
import time
import unittest

from control_fixture import ETCD, Control, Etcd, endpoints, wait_until  # first: re-execs
from remora_harness import Harness, free_port, http_request, runfile, wait_port

PROXY = "dataplane/proxy/remora-proxy"

CONFIG = """kind: Service
name: reviews
port: 9080
---
kind: Route
name: reviews
service: reviews
rules:
  - destinations: [{version: v1, weight: 100}]
"""


def start_proxy(h, control, pod, extra=()):
    out, admin = free_port(), free_port()
    p = h.start([runfile(PROXY), "--control-plane", control.target, "--bind", "127.0.0.1",
                 "--pod", pod, "--outbound-port", str(out), "--admin-port", str(admin)] +
                list(extra), log_name="proxy-" + pod)
    wait_port(admin, proc=p)
    p.outbound, p.admin = out, admin
    return p


def start_pod(h, control, app_port, name="reviews-1", extra=()):
    """A reviews v1 pod's sidecar (its app on app_port); clients reach it at .address, on the
    port .inbound."""
    inbound = free_port()
    p = start_proxy(h, control, name,
                    ["--service", "reviews", "--version", "v1", "--pod-ip", "127.0.0.1",
                     "--inbound-port", str(inbound), "--app-port", str(app_port)] + list(extra))
    p.inbound, p.address = inbound, "127.0.0.1:%d" % inbound
    return p


def get(proxy):
    """One request for reviews through the proxy's outbound port: (status, backend version)."""
    r = http_request(proxy.outbound, "/", headers={"Host": "reviews"}, timeout=5)
    return r.status, r.header("x-backend-version")


class RestartTest(unittest.TestCase):
    def setUp(self):
        self.h = Harness()
        self.addCleanup(self.h.close)

    def test_client_reconnecting_first_keeps_the_restored_endpoints(self):
        h = self.h
        ctl = Control(h)
        ctl.apply(CONFIG)
        v1 = h.backend("reviews", "v1")
        address = "127.0.0.1:%d" % v1.port
        # The server pod's registration: a discovery stream we control, so its return after the
        # restart can be delayed at will (the data path goes straight to its app).
        srv = ctl.sidecar(pod="reviews-1", service="reviews", version="v1", address=address)
        srv.next_snapshot()
        client = start_proxy(h, ctl, "client")
        wait_until(lambda: get(client) == (200, "v1"), what="client routes to reviews")

        self.assertEqual(ctl.stop(signal.SIGKILL), -signal.SIGKILL)
        srv.wait_ended()
        t_restart = time.monotonic()
        ctl.start()
        wait_until(lambda: "default/client connected" in ctl.log(), timeout=15,
                   what="client sidecar reconnected")
        t_client = time.monotonic()
        self.assertIn("1 endpoint registration(s) restored from the store", ctl.log())
        # The server's stream stays away for 3 s after the client is back: longer than the 2 s
        # endpoint grace, so this also shows restored entries get the longer restore grace.
        results = []
        while time.monotonic() < t_client + 3.0:
            results.append(get(client))
            time.sleep(0.05)
        bad = [r for r in results if r != (200, "v1")]
        print("client back %.2f s after the restart; %d requests in the next 3 s, %d failed"
              % (t_client - t_restart, len(results), len(bad)))
        self.assertEqual(bad, [], "the client must keep the restored endpoint")
        self.assertNotIn("reviews-1", {s.pod for s in ctl.proxy_status().sidecars})

        # The pod comes back: its Hello takes over the restored entry (listed once, not twice).
        srv2 = ctl.sidecar(pod="reviews-1", service="reviews", version="v1", address=address)
        snap = srv2.next_snapshot()
        eps = [e for e in snap.endpoints if e.address == address]
        self.assertEqual(len(eps), 1, snap)
        self.assertEqual(get(client), (200, "v1"))

        # A withdraw is stored too: after another restart the endpoint is still draining.
        srv2.withdraw()
        wait_until(lambda: "withdrew" in ctl.log(), what="withdraw handled")
        time.sleep(0.2)
        self.assertEqual(ctl.stop(signal.SIGKILL), -signal.SIGKILL)
        ctl.start()
        watcher = ctl.sidecar(pod="watcher")
        snap = watcher.next_snapshot()
        self.assertEqual(endpoints(snap).get(("reviews", "v1", address)), True, snap)


@unittest.skipUnless(os.path.exists(ETCD), "etcd-server is not installed")
class AppStartTest(unittest.TestCase):
    def test_endpoint_is_listed_once_the_app_is_up(self):
        h = Harness()
        self.addCleanup(h.close)
        control = Control(h)
        control.apply(CONFIG)
        app_port = free_port()
        address = start_pod(h, control, app_port).address
        control.wait_connected("reviews-1")
        watcher = control.sidecar(pod="watcher")
        time.sleep(1.5)  # three probes of the app port: all refused
        listed = [address in {a for (_, _, a) in endpoints(s)} for s in watcher.drain_snapshots()]
        self.assertGreater(len(listed), 0, "the watcher got no snapshot")
        self.assertFalse(any(listed), "listed before its app accepts connections")
        h.backend("reviews", "v1", port=app_port)
        key = ("reviews", "v1", address)
        snap = watcher.snapshot_where(lambda s: key in endpoints(s))
        self.assertFalse(endpoints(snap)[key], "listed as draining")

    def test_endpoint_is_withdrawn_while_the_app_is_gone(self):
        h = Harness()
        self.addCleanup(h.close)
        control = Control(h)
        control.apply(CONFIG)
        app = h.backend("reviews", "v1")
        address = start_pod(h, control, app.port).address
        key = ("reviews", "v1", address)
        watcher = control.sidecar(pod="watcher")
        watcher.snapshot_where(lambda s: endpoints(s).get(key) is False)

        # A stopped app still completes handshakes (the kernel does): probes succeed, and a busy
        # or paused app keeps its traffic.
        app.send_signal(signal.SIGSTOP)
        time.sleep(2.5)
        self.assertTrue(all(endpoints(s).get(key) is False for s in watcher.drain_snapshots()),
                        "withdrawn while the app was only paused")
        app.send_signal(signal.SIGCONT)

        # The app's process gone (nothing listens: probes are refused): withdrawn, then listed
        # again once a new process answers on the port.
        app.kill()
        app.wait()
        t0 = time.monotonic()
        watcher.snapshot_where(lambda s: endpoints(s).get(key) is True)
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 1.0, "withdrawn before the app refused for a while")
        h.backend("reviews", "v1", port=app.port)
        watcher.snapshot_where(lambda s: endpoints(s).get(key) is False)
        print("withdrawn %.1f s after the app died; listed again once it answered" % took)


class DrainWithoutControlPlaneTest(unittest.TestCase):
    def test_drain_waits_for_the_withdrawal_to_reach_the_control_plane(self):
        h = Harness()
        self.addCleanup(h.close)
        ctl = Control(h)
        ctl.apply(CONFIG)
        app = h.backend("reviews", "v1")
        pod = start_pod(h, ctl, app.port, extra=["--drain-seconds", "20", "--drain-grace", "300ms"])
        address = pod.address
        watcher = ctl.sidecar(pod="watcher")
        watcher.snapshot_where(lambda s: endpoints(s).get(("reviews", "v1", address)) is False)

        self.assertEqual(ctl.stop(signal.SIGKILL), -signal.SIGKILL)
        pod.send_signal(signal.SIGTERM)
        time.sleep(2.0)  # well past the 300 ms grace
        self.assertIsNone(pod.poll(), "the pod exited without its withdrawal reaching anyone")
        r = http_request(pod.inbound, "/", headers={"Host": "reviews"}, timeout=5)
        self.assertEqual(r.status, 200, "a client with the old endpoint list is still served")

        ctl.start()
        t_restart = time.monotonic()
        pod.wait(timeout=15)
        took = time.monotonic() - t_restart
        self.assertEqual(pod.returncode, 0)
        # Its reconnect said not_ready (no longer listed, the restored registration dropped),
        # then its withdrawal went out: the restored registration no longer lists it as live.
        watcher = ctl.sidecar(pod="watcher-2")
        snap = watcher.next_snapshot()
        self.assertNotEqual(endpoints(snap).get(("reviews", "v1", address)), False,
                            "the drained pod is listed as live")
        print("drained pod exited %.1f s after the control plane's restart" % took)


class EtcdReplicasTest(unittest.TestCase):
    def setUp(self):
        self.h = Harness()
        self.addCleanup(self.h.close)
        self.etcd = Etcd(self.h)
        uri = "etcd://127.0.0.1:%d/remora/reg/" % self.etcd.client
        self.a = Control(self.h, store_uri=uri)
        self.b = Control(self.h, store_uri=uri)
        self.a.apply(CONFIG)
        wait_until(lambda: self.b.proxy_status().current_version == 1, what="B at version 1")
        self.v1 = self.h.backend("reviews", "v1")

    def pod(self, control, name="reviews-1"):
        return start_pod(self.h, control, self.v1.port, name,
                         ["--drain-seconds", "2", "--drain-grace", "500ms"])

    def test_registration_on_a_routes_from_b_and_withdraw_reaches_b(self):
        pod = self.pod(self.a)
        client = start_proxy(self.h, self.b, "client")
        watcher = self.b.sidecar(pod="watcher")
        key = ("reviews", "v1", pod.address)
        t0 = time.monotonic()
        watcher.snapshot_where(lambda s: endpoints(s).get(key) is False)
        print("registration on A listed by B after %.0f ms" % ((time.monotonic() - t0) * 1000))
        wait_until(lambda: get(client) == (200, "v1"), what="client on B routes to the pod on A")
        self.assertEqual([get(client) for _ in range(20)], [(200, "v1")] * 20)
        # Only A lists the pod as connected; B shows it as an endpoint, not as its sidecar.
        self.assertIn("reviews-1", {s.pod for s in self.a.proxy_status().sidecars})
        self.assertNotIn("reviews-1", {s.pod for s in self.b.proxy_status().sidecars})

        t0 = time.monotonic()
        pod.send_signal(signal.SIGTERM)
        watcher.snapshot_where(lambda s: endpoints(s).get(key) is True)
        print("withdraw on A seen draining on B after %.0f ms" % ((time.monotonic() - t0) * 1000))
        pod.wait(timeout=20)
        # The stream ended after the withdraw: gone on B once A's grace is over.
        watcher.snapshot_where(lambda s: key not in endpoints(s), timeout=15)

    def test_dead_replica_leaves_registrations_to_its_lease(self):
        pod = self.pod(self.a)
        watcher = self.b.sidecar(pod="watcher")
        key = ("reviews", "v1", pod.address)
        watcher.snapshot_where(lambda s: endpoints(s).get(key) is False)
        # Stop the pod's sidecar from reconnecting anywhere, then kill A: the lease is fresh, so
        # B keeps listing the endpoint; it goes when the lease (10 s) runs out.
        pod.send_signal(signal.SIGSTOP)
        t_kill = time.monotonic()
        self.assertEqual(self.a.stop(signal.SIGKILL), -signal.SIGKILL)
        time.sleep(3.0)  # past the 2 s endpoint grace
        snap = self.b.sidecar(pod="late-watcher").next_snapshot()
        self.assertIn(key, endpoints(snap), "deleted while its owner's lease was fresh")
        watcher.snapshot_where(lambda s: key not in endpoints(s), timeout=20)
        gone = time.monotonic() - t_kill
        print("registration of the dead replica gone from B after %.1f s" % gone)
        self.assertGreater(gone, 5.0)
        pod.send_signal(signal.SIGCONT)


if __name__ == "__main__":
    unittest.main()
