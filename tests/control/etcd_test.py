"""tests/control/etcd_test.py — remora-control with --store etcd://: a real etcd (Debian's
etcd-server) on loopback ports, two remora-control replicas on it, and a real remora-proxy
connected to each replica, routing to two test backends. Proves that an apply through one replica
reaches the sidecars of both, that history and rollback are shared, that racing applies never
lose an update, and that an etcd outage keeps the proxies serving while changes fail clearly,
until etcd is back.
"""
import collections
import os
import re
import subprocess
import threading
import time
import unittest

from control_fixture import ETCD, Control, Etcd, wait_until  # first: re-execs under python3
import grpc
from remora_harness import Harness, free_port, http_request, runfile, wait_port

MESHCTL = "controlplane/meshctl/meshctl"

CONFIG = """kind: Service
name: reviews
port: 9080
endpoints:
  - {address: 127.0.0.1:%d, version: v1}
  - {address: 127.0.0.1:%d, version: v2}
---
kind: Route
name: reviews
service: reviews
rules:
  - destinations: [{version: v1, weight: %d}, {version: v2, weight: %d}]
"""


def split(proxy, n=40):
    """Which backend version answers n requests sent through the proxy's outbound port."""
    return collections.Counter(
        http_request(proxy.outbound, "/", headers={"Host": "reviews"}).header("x-backend-version")
        for _ in range(n))


def dump_version(proxy):
    r = http_request(proxy.admin, "/config_dump")
    return r.json().get("version", 0)


@unittest.skipUnless(os.path.exists(ETCD), "etcd-server is not installed")
class EtcdStoreTest(unittest.TestCase):
    def setUp(self):
        self.h = Harness()
        self.addCleanup(self.h.close)
        self.etcd = Etcd(self.h)
        self.uri = "etcd://%s/remora/test/" % self.etcd.target
        self.a = Control(self.h, store_uri=self.uri)
        self.b = Control(self.h, store_uri=self.uri)
        self.v1 = self.h.backend("reviews", "v1")
        self.v2 = self.h.backend("reviews", "v2")
        self.pa = self.proxy(self.a, "client-a")
        self.pb = self.proxy(self.b, "client-b")

    def proxy(self, control, name):
        out, admin = free_port(), free_port()
        p = self.h.start([runfile("dataplane/proxy/remora-proxy"), "--control-plane",
                          control.target, "--bind", "127.0.0.1", "--pod", name,
                          "--outbound-port", str(out), "--inbound-port", "0", "--admin-port",
                          str(admin)], log_name="proxy-" + name)
        wait_port(out, proc=p)
        p.outbound, p.admin = out, admin
        return p

    def config(self, w1, w2):
        return CONFIG % (self.v1.port, self.v2.port, w1, w2)

    def meshctl(self, server, *args, stdin=None):
        p = subprocess.run([runfile(MESHCTL), "--server", server.target] + list(args),
                           input=stdin, capture_output=True, text=True, timeout=30)
        return p.returncode, p.stdout + p.stderr

    def wait_split(self, want, *proxies):
        """Both proxies route every request to version `want` (the config reached them)."""
        for p in proxies:
            wait_until(lambda: split(p, 10) == {want: 10}, timeout=10,
                       what="%s routes to %s" % (p.log_path, want))
            self.assertEqual(split(p), {want: 40})

    def test_apply_on_one_replica_reaches_both_and_history_is_shared(self):
        rc, out = self.meshctl(self.a, "apply", "-f", "-", stdin=self.config(100, 0))
        self.assertEqual(rc, 0, out)
        self.wait_split("v1", self.pa, self.pb)
        t0 = time.time()
        rc, out = self.meshctl(self.a, "apply", "-f", "-", stdin=self.config(0, 100))
        self.assertEqual(rc, 0, out)
        # Replica B learns version 2 from its etcd watch and pushes it to its own proxy.
        wait_until(lambda: dump_version(self.pb) == 2, timeout=10, what="proxy B at version 2")
        print("apply on A -> proxy of B at version 2 in %.0f ms" % ((time.time() - t0) * 1000))
        self.wait_split("v2", self.pa, self.pb)
        self.assertIn("written by another replica", self.b.log())

        # The same history through either replica; a rollback through B reaches both proxies.
        ha = [(e.version, e.summary) for e in self.a.history().entries]
        hb = [(e.version, e.summary) for e in self.b.history().entries]
        self.assertEqual(ha, hb)
        self.assertEqual([v for v, _ in ha], [2, 1])
        rc, out = self.meshctl(self.b, "rollback")
        self.assertEqual(rc, 0, out)
        self.wait_split("v1", self.pa, self.pb)
        ha = [(e.version, e.summary) for e in self.a.history().entries]
        self.assertEqual(ha[0], (3, "rollback to version 1"))
        self.assertEqual(self.a.get(version=1).config, self.b.get(version=3).config)
        rc, out = self.meshctl(self.b, "history")
        self.assertEqual(rc, 0, out)
        self.assertIn("rollback to version 1", out)

        # A replica started later on the same etcd starts at the shared latest version.
        c = Control(self.h, store_uri=self.uri)
        self.assertEqual(c.proxy_status().current_version, 3)
        self.assertEqual(c.stop(), 0, c.log())

    def test_racing_applies_never_lose_an_update(self):
        self.a.apply(self.config(100, 0))
        wait_until(lambda: self.b.proxy_status().current_version == 1, what="B at version 1")
        ok, aborted, unexpected = [], [], []
        lock = threading.Lock()

        def apply(ctl, name):
            doc = "kind: Service\nname: %s\nport: 80\n" % name
            try:
                r = ctl.apply(doc)
                with lock:
                    ok.append((r.version, name))
            except grpc.RpcError as e:
                with lock:
                    if e.code() == grpc.StatusCode.ABORTED and \
                            "another replica wrote to etcd" in e.details():
                        aborted.append(name)
                    else:
                        unexpected.append((name, e.code(), e.details()))

        for i in range(8):
            ts = [threading.Thread(target=apply, args=(self.a, "svc-a-%d" % i)),
                  threading.Thread(target=apply, args=(self.b, "svc-b-%d" % i))]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
        print("racing applies: %d stored, %d refused as conflicts" % (len(ok), len(aborted)))
        self.assertEqual(unexpected, [])
        versions = sorted(v for v, _ in ok)
        self.assertEqual(versions, list(range(2, 2 + len(ok))), "versions not distinct/dense")
        # Every apply that was answered with a version is in the final config of both
        # replicas: nothing built on a stale config overwrote it.
        for ctl in (self.a, self.b):
            wait_until(lambda: ctl.get().version == 1 + len(ok), what="replica at the latest")
            names = {s.name for s in ctl.get(kind="services").config.services}
            self.assertLessEqual({n for _, n in ok}, names)
            self.assertFalse(set(aborted) & names, "a refused apply was stored")
        # A refused apply succeeds when retried once its replica caught up with the store.
        for name in aborted:
            ctl = self.a if "-a-" in name else self.b
            latest = self.a.history(limit=1).entries[0].version
            wait_until(lambda: ctl.get().version == latest, what="replica caught up")
            self.assertEqual(ctl.apply("kind: Service\nname: %s\nport: 80\n" % name).version,
                             latest + 1)

    def test_etcd_outage_keeps_serving_and_recovers(self):
        self.a.apply(self.config(100, 0))
        self.wait_split("v1", self.pa, self.pb)
        self.etcd.stop()
        # The proxies keep their config and keep routing; the replicas keep their streams.
        time.sleep(1.0)
        self.assertEqual(split(self.pa), {"v1": 40})
        self.assertEqual(split(self.pb), {"v1": 40})
        t0 = time.time()
        rc, out = self.meshctl(self.a, "apply", "-f", "-", stdin=self.config(0, 100))
        took = time.time() - t0
        self.assertNotEqual(rc, 0, out)
        self.assertIn("etcd %s unavailable" % self.etcd.target, out)
        self.assertLess(took, 10, "an apply against a stopped etcd must fail in bounded time")
        e = None
        try:
            self.b.history()
        except grpc.RpcError as x:
            e = x
        self.assertIsNotNone(e)
        self.assertEqual(e.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(self.b.get().version, 1, "the last config is still served")
        time.sleep(1.5)  # several watch retries: the outage must still be logged once
        for ctl in (self.a, self.b):
            self.assertEqual(len(re.findall("serving the last config", ctl.log())), 1, ctl.log())

        self.etcd.start()
        for ctl in (self.a, self.b):
            wait_until(lambda: "reachable again" in ctl.log(), timeout=15, what="watch resumed")

        def applied():
            try:
                return self.a.apply(self.config(0, 100)).version
            except grpc.RpcError:
                return 0  # the replica's channel may still be reconnecting

        self.assertEqual(wait_until(applied, timeout=10, what="apply after etcd is back"), 2)
        self.wait_split("v2", self.pa, self.pb)
        self.assertEqual(self.b.history().entries[0].version, 2)

        # A replica stops cleanly (exit 0, watcher joined) even while etcd is gone.
        self.etcd.stop()
        for ctl in (self.a, self.b):
            self.assertEqual(ctl.stop(), 0, ctl.log())

    def test_unreachable_etcd_at_start_fails_clearly(self):
        port = free_port()
        t0 = time.time()
        p = subprocess.run([runfile("controlplane/remora-control"), "--listen",
                            "127.0.0.1:%d" % free_port(), "--store",
                            "etcd://127.0.0.1:%d" % port], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("etcd 127.0.0.1:%d unavailable" % port, p.stderr)
        self.assertLess(time.time() - t0, 15)


if __name__ == "__main__":
    unittest.main()
