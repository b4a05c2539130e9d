"""tests/strategies/ab_testing_test.py — A/B testing: the header and cookie cohorts of
examples/strategies/ab-testing.yaml reach v2 on every request, everyone else v1: exact, not one
request leaks either way."""
import unittest

from strategy_fixture import Mesh, example

N = 200

# (description, headers, expected version). Cookies are matched across every Cookie header and
# by exact name, so look-alikes must fall through to the default cohort.
CASES = [
    ("no cohort", {}, "v1"),
    ("header beta", {"x-user-group": "beta"}, "v2"),
    ("header other group", {"x-user-group": "alpha"}, "v1"),
    ("header value with a beta prefix", {"x-user-group": "beta-tester"}, "v1"),
    ("cookie ab=b", {"Cookie": "ab=b"}, "v2"),
    ("cookie ab=b among others", {"Cookie": "session=42; ab=b; theme=dark"}, "v2"),
    ("cookie ab=a", {"Cookie": "ab=a"}, "v1"),
    ("cookie with a look-alike name", {"Cookie": "xab=b; abc=b"}, "v1"),
    ("both cohorts", {"x-user-group": "beta", "Cookie": "ab=b"}, "v2"),
]


class ABTestingTest(unittest.TestCase):
    def setUp(self):
        self.mesh = Mesh()
        self.addCleanup(self.mesh.close)

    def test_cohorts_are_exact(self):
        m = self.mesh
        m.pod("reviews", "v1", "reviews-v1-a")
        m.pod("reviews", "v1", "reviews-v1-b")
        m.pod("reviews", "v2", "reviews-v2-a")
        r = m.apply_file(example("ab-testing.yaml"), "--wait", "--timeout", "20s")
        self.assertEqual(r.rc, 0, r)
        m.wait_ready()
        m.wait_synced()
        m.wait_versions("reviews", ["v1"])
        m.wait_versions("reviews", ["v2"], headers={"x-user-group": "beta"})
        for what, headers, want in CASES:
            counts, failures = m.split("reviews", N, headers)
            self.assertEqual(failures, [], what)
            self.assertEqual(dict(counts), {want: N}, "%s: %r leaked" % (what, dict(counts)))
            print("%-32s -> %s" % (what, dict(counts)))


if __name__ == "__main__":
    unittest.main()
