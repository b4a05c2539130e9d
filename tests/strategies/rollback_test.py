"""tests/strategies/rollback_test.py — rollback: apply examples/strategies/rollback.yaml (v1 90 /
v2 10), then a bad split (all traffic to v2), then `meshctl rollback`: the split measured through
a client sidecar returns to 90/10 (within 3 sigma), and `meshctl history` shows the three
versions."""
import unittest

from strategy_fixture import Mesh, example, within_sigma

N = 1000


class RollbackTest(unittest.TestCase):
    def setUp(self):
        self.mesh = Mesh()
        self.addCleanup(self.mesh.close)

    def measure(self, v1_share):
        counts, failures = self.mesh.split("reviews", N)
        self.assertEqual(failures, [])
        self.assertEqual(sum(counts.values()), N)
        self.assertTrue(within_sigma(counts["v1"], N, v1_share),
                        "v1 should be %.0f%% of %d: %r" % (100 * v1_share, N, dict(counts)))
        return counts

    def test_rollback_restores_the_split(self):
        m = self.mesh
        m.pod("reviews", "v1", "reviews-v1-a")
        m.pod("reviews", "v2", "reviews-v2-a")
        m.wait_ready()
        r = m.apply_file(example("rollback.yaml"), "--wait", "--timeout", "20s")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.splitlines()[0], "config version 1", r)
        m.wait_synced()
        m.wait_versions("reviews", ["v1", "v2"])
        good = self.measure(0.9)

        with open(example("rollback.yaml")) as f:
            text = f.read()
        bad = text.replace("{version: v1, weight: 90}", "{version: v1, weight: 0}") \
                  .replace("{version: v2, weight: 10}", "{version: v2, weight: 100}")
        self.assertNotEqual(bad, text)
        r = m.apply_text(bad, "--wait", "--timeout", "20s", name="bad.yaml")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.splitlines()[0], "config version 2", r)
        flipped = self.measure(0.0)
        self.assertEqual(dict(flipped), {"v2": N})

        r = m.meshctl("rollback")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.splitlines(), ["rolled back to the config of version 1",
                                              "config version 3"], r)
        m.wait_synced()
        after = self.measure(0.9)
        r = m.meshctl("history")
        self.assertEqual(r.rc, 0, r)
        for v in ("1", "2", "3"):
            self.assertRegex(r.out, r"(?m)^\s*%s\s" % v, r)
        print("before %s, bad %s, after rollback %s" % (dict(good), dict(flipped), dict(after)))
        print(r.out)


if __name__ == "__main__":
    unittest.main()
