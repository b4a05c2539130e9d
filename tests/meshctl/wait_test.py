"""tests/meshctl/wait_test.py — `meshctl apply --wait` with fake sidecars (python3-grpcio
discovery streams): every ACK (exit 0), one NACK (exit 1, the sidecar's error shown), silence
until --timeout (exit 1); proxy-status then shows NACKED with the error."""
import unittest

from meshctl_fixture import Harness, Mesh, SERVICE, route, wait_until


class WaitTest(unittest.TestCase):
    def setUp(self):
        self.h = Harness()
        self.m = Mesh(self.h)
        r = self.m.apply(SERVICE + "---\n" + route(90, 10))
        self.assertEqual(r.rc, 0, r)
        self.sidecars = []

    def tearDown(self):
        for s in self.sidecars:
            s.close()
        self.m.close()
        self.h.close()

    def connect(self, *pods):
        for i, pod in enumerate(pods):
            s = self.m.fake_sidecar(pod=pod, version="v%d" % (i + 1))
            s.ack(s.snapshot_where(lambda sn: sn.version == 1))
            self.sidecars.append(s)
        wait_until(lambda: all(sc["state"] == "SYNCED" for sc in
                               self.m.meshctl("proxy-status", "-o", "json").json()["sidecars"])
                   and len(self.m.meshctl("proxy-status", "-o", "json").json()["sidecars"]) ==
                   len(pods), what="sidecars synced")

    def test_all_ack(self):
        self.connect("pod-a", "pod-b")
        self.h.write("w.yaml", route(50, 50))
        p = self.m.popen("apply", "-f", "w.yaml", "--wait", "--timeout", "20s")
        for s in self.sidecars:
            s.ack(s.snapshot_where(lambda sn: sn.version == 2))
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, out + err)
        lines = out.splitlines()
        self.assertEqual(lines[0], "config version 2")
        self.assertIn("waiting for 2 sidecars to answer version 2: 2 ACKed, 0 NACKed", out)
        rows = [l.split() for l in lines if l.startswith("  pod-")]
        self.assertEqual(sorted(rows), [["pod-a", "reviews", "v1", "2", "ACK"],
                                        ["pod-b", "reviews", "v2", "2", "ACK"]])

    def test_one_nack(self):
        self.connect("pod-a", "pod-b")
        self.h.write("w.yaml", route(50, 50))
        p = self.m.popen("apply", "-f", "w.yaml", "--wait", "--timeout", "20s")
        a, b = self.sidecars
        a.ack(a.snapshot_where(lambda sn: sn.version == 2))
        b.nack(b.snapshot_where(lambda sn: sn.version == 2), 1, "regex too expensive in rule 0")
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 1, out + err)
        self.assertIn("waiting for 2 sidecars to answer version 2: 1 ACKed, 1 NACKed", out)
        nack = [l for l in out.splitlines() if l.startswith("  pod-b")]
        self.assertEqual(len(nack), 1, out)
        self.assertRegex(nack[0], r"^  pod-b\s+reviews\s+v2\s+1\s+NACK\s+regex too expensive "
                                  r"in rule 0$")
        self.assertIn("version 2 was NACKed by 1 sidecar", err)
        # The version is stored (a NACK keeps the sidecar on its last good config).
        self.assertEqual(self.m.meshctl("history", "-o", "json").json()[0]["version"], 2)
        j = self.m.meshctl("proxy-status", "-o", "json").json()
        states = {s["pod"]: (s["state"], s["config_version"], s["error"]) for s in j["sidecars"]}
        self.assertEqual(states, {"pod-a": ("SYNCED", 2, ""),
                                  "pod-b": ("NACKED", 1, "regex too expensive in rule 0")})
        r = self.m.meshctl("proxy-status")
        row = [l for l in r.out.splitlines() if l.startswith("pod-b")][0]
        self.assertRegex(row, r"NACKED\s+\d+s ago\s+regex too expensive in rule 0$")

    def test_silent_sidecar_times_out(self):
        self.connect("pod-a")
        self.h.write("w.yaml", route(50, 50))
        r = self.m.meshctl("apply", "-f", "w.yaml", "--wait", "--timeout", "1500ms")
        self.assertEqual(r.rc, 1, r)
        self.assertIn("waiting for 1 sidecar to answer version 2: 0 ACKed, 0 NACKed", r.out)
        self.assertRegex(r.out, r"  pod-a\s+reviews\s+v1\s+1\s+no answer")
        self.assertIn("timed out: 1 sidecar did not answer version 2", r.err)

    def test_no_sidecars(self):
        self.h.write("w.yaml", route(50, 50))
        r = self.m.meshctl("apply", "-f", "w.yaml", "--wait")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("no sidecars connected; nothing to wait for", r.out)


if __name__ == "__main__":
    unittest.main()
