"""tests/strategies/canary_test.py — canary: examples/strategies/canary.yaml stepped v2 5 → 25 →
50 → 100 with `meshctl apply --wait`; after each step the split over 1000 requests through a
client sidecar is within 3 binomial sigma of the weights (exact at 100), and `meshctl stats -o
json` shows each version's observed share beside its configured weight, with request counts that
match what the client saw."""
import collections
import unittest

from strategy_fixture import Mesh, example, wait_until, within_sigma

N = 1000
STEPS = [5, 25, 50, 100]
ROUTE = "reviews-canary"


class CanaryTest(unittest.TestCase):
    def setUp(self):
        self.mesh = Mesh()
        self.addCleanup(self.mesh.close)

    def test_weights_stepped(self):
        m = self.mesh
        with open(example("canary.yaml")) as f:
            text = f.read()
        self.assertIn("{version: v1, weight: 95}", text)
        m.pod("reviews", "v1", "reviews-v1-a")
        m.pod("reviews", "v1", "reviews-v1-b")
        m.pod("reviews", "v2", "reviews-v2-a")
        m.wait_ready()
        seen = collections.Counter()  # every 200 the client got, per version, probes included
        before, seen_before = {}, collections.Counter()
        for i, w2 in enumerate(STEPS):
            cfg = text.replace("{version: v1, weight: 95}", "{version: v1, weight: %d}" % (100 - w2)) \
                      .replace("{version: v2, weight: 5}", "{version: v2, weight: %d}" % w2)
            r = m.apply_text(cfg, "--wait", "--timeout", "20s", name="canary-%d.yaml" % w2)
            self.assertEqual(r.rc, 0, r)
            self.assertEqual(r.out.splitlines()[0], "config version %d" % (i + 1), r)
            self.assertIn("0 NACKed", r.out, r)
            if i == 0:
                # Registered endpoints reach the client on their own; probe until both answer.
                def both():
                    c, f = m.split("reviews", 50)
                    seen.update(c)
                    return not f and set(c) == {"v1", "v2"}
                wait_until(both, what="v1 and v2 reachable")
            counts, failures = m.split("reviews", N)
            seen.update(counts)
            self.assertEqual(failures, [], "step %d" % w2)
            self.assertEqual(sum(counts.values()), N)
            self.assertTrue(within_sigma(counts["v2"], N, w2 / 100.0),
                            "step %d%%: %r outside 4 sigma" % (w2, dict(counts)))
            rs = self.stats_when(seen)
            # meshctl's counts for this step (the difference from the previous step's) split as
            # the client saw them, beside the weight now configured.
            step = {v: rs[v]["requests_total"] - before.get(v, 0) for v in rs}
            self.assertEqual({v: c for v, c in step.items() if c},
                             {v: c for v, c in (seen - seen_before).items() if c})
            self.assertAlmostEqual(rs["v2"]["configured_share"], w2 / 100.0, places=3)
            self.assertAlmostEqual(rs["v1"]["configured_share"], (100 - w2) / 100.0, places=3)
            for x in rs.values():
                self.assertGreaterEqual(x["observed_share"], 0.0)
                self.assertLessEqual(x["observed_share"], 1.0)
                self.assertAlmostEqual(x["effective_success_rate"], 1.0, places=3)
            self.assertAlmostEqual(sum(x["observed_share"] for x in rs.values()), 1.0, places=3)
            before = {v: x["requests_total"] for v, x in rs.items()}
            seen_before = collections.Counter(seen)
            print("step v2 %3d%%: client saw %s; meshctl stats: %s" % (w2, dict(counts), ", ".join(
                "%s observed %.1f%% / weight %.0f%%" % (v, 100 * x["observed_share"],
                                                         100 * x["configured_share"])
                for v, x in sorted(rs.items()))))

        r = m.meshctl("stats", "reviews", "--route", ROUTE)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("SHARE/WEIGHT", r.out)
        self.assertRegex(r.out, r"(?m)^reviews\s+v2\s+%s\s.*[\d.]+%% / 100\.00%%$" % ROUTE)
        print(r.out)

    def stats_when(self, seen):
        """`meshctl stats -o json` rows by version once they count exactly what the client got
        (the client sidecar reports every 5 s)."""
        def rows():
            r = self.mesh.meshctl("stats", "reviews", "--route", ROUTE, "-o", "json")
            self.assertEqual(r.rc, 0, r)
            rs = {x["version"]: x for x in r.json()["rows"] if x["route"] == ROUTE}
            got = {v: x["requests_total"] for v, x in rs.items() if x["requests_total"]}
            return rs if got == dict(seen) else None
        return wait_until(rows, timeout=20, interval=0.25,
                          what="stats equal to the client's counts %r" % dict(seen))


if __name__ == "__main__":
    unittest.main()
