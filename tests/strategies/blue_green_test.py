"""tests/strategies/blue_green_test.py — blue/green: v1 (blue) and v2 (green) pods run side by
side; examples/strategies/blue-green.yaml sends 100% to blue; one `meshctl apply --wait` with the
weights flipped moves everything to green. Under steady load (GET and POST, keep-alive): no request
fails, `--wait` returns only after every sidecar ACKed (proxy-status agrees), and not one request
sent after it returned reaches blue."""
import time
import unittest

from strategy_fixture import Mesh, VersionLoad, example, wait_until


class BlueGreenTest(unittest.TestCase):
    def setUp(self):
        self.mesh = Mesh()
        self.addCleanup(self.mesh.close)

    def test_one_apply_switches_everything(self):
        m = self.mesh
        with open(example("blue-green.yaml")) as f:
            blue = f.read()
        green = blue.replace("{version: v1, weight: 100}", "{version: v1, weight: 0}") \
                    .replace("{version: v2, weight: 0}", "{version: v2, weight: 100}")
        self.assertNotEqual(green, blue)
        for i in range(2):
            m.pod("reviews", "v1", "blue-%d" % i)
            m.pod("reviews", "v2", "green-%d" % i)
        m.wait_ready()
        r = m.apply_file(example("blue-green.yaml"), "--wait", "--timeout", "20s")
        self.assertEqual(r.rc, 0, r)
        m.wait_synced()
        m.wait_versions("reviews", ["v1"])
        # Green must be registered before the switch, or the switch would meet "no healthy
        # upstream": as a user would check, a dry run of the switch warns of no missing version.
        def green_registered():
            r = m.meshctl("apply", "-f", m.h.write("green-dry.yaml", green), "--dry-run")
            self.assertEqual(r.rc, 0, r)
            return "no endpoint" not in r.err
        wait_until(green_registered, what="green registered with the control plane")
        counts, failures = m.split("reviews", 200)
        self.assertEqual((dict(counts), failures), ({"v1": 200}, []))

        load = VersionLoad(m, "reviews", rate=200, connections=4).start()
        time.sleep(1.5)
        started = time.time()
        r = m.apply_text(green, "--wait", "--timeout", "20s", name="green.yaml")
        returned = time.time()
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.splitlines()[0], "config version 2", r)
        self.assertIn("waiting for 5 sidecars to answer version 2: 5 ACKed, 0 NACKed", r.out, r)
        # proxy-status agrees, at once: everyone runs version 2.
        st = m.status()
        self.assertEqual(st["current_version"], 2)
        self.assertEqual(sorted((s["config_version"], s["state"]) for s in st["sidecars"]),
                         [(2, "SYNCED")] * 5, st)
        time.sleep(1.5)
        records = load.stop()

        failed = [x for x in records if x[2] != 200]
        self.assertEqual(failed, [], "requests failed across the switch")
        before = [x for x in records if x[1] < started]
        after = [x for x in records if x[0] >= returned]
        self.assertGreater(len(after), 100)
        self.assertEqual({x[3] for x in after}, {"v2"},
                         "%d of %d requests sent after --wait returned reached blue" % (
                             sum(1 for x in after if x[3] != "v2"), len(after)))
        self.assertGreater(len(before), 100)
        self.assertEqual({x[3] for x in before}, {"v1"})
        print("%d requests, 0 failed; %d answered before the apply, all blue; %d sent after "
              "`apply --wait` returned (%.0f ms after it began), all green" % (
                  len(records), len(before), len(after), 1000 * (returned - started)))


if __name__ == "__main__":
    unittest.main()
