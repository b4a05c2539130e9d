"""tests/meshctl/history_test.py — remora-control --history N keeps the last N config versions:
`meshctl history` lists exactly those, `get --version` and `rollback` work within them, and a
pruned version is a clear error (exit 1, saying how far back one can go) that changes nothing."""
import unittest

from meshctl_fixture import Harness, Mesh

SVC = "kind: Service\nname: reviews\nport: %d\n"


class HistoryTest(unittest.TestCase):
    def setUp(self):
        self.h = Harness()
        self.m = Mesh(self.h, extra=["--history", "3"])

    def tearDown(self):
        self.m.close()
        self.h.close()

    def versions(self):
        r = self.m.meshctl("history", "-o", "json")
        self.assertEqual(r.rc, 0, r)
        return [e["version"] for e in r.json()]

    def test_history_keeps_the_last_n(self):
        for i in range(1, 6):
            self.assertEqual(self.m.apply(SVC % (9000 + i)).rc, 0)
        self.assertEqual(self.versions(), [5, 4, 3])
        r = self.m.meshctl("history")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("5 *", r.out)

        # Within what is kept.
        r = self.m.meshctl("get", "services", "--config-version", "3", "-o", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("9003", r.out)
        r = self.m.meshctl("rollback", "3")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("config version 6", r.out)
        self.assertEqual(self.versions(), [6, 5, 4])

        # Pruned: a clear error, nothing changed.
        for args in (["rollback", "3"], ["rollback", "1"], ["get", "services", "--config-version", "2"]):
            r = self.m.meshctl(*args)
            self.assertEqual(r.rc, 1, (args, r))
            self.assertIn("is no longer kept", r.err)
            self.assertIn("--history 3", r.err)
            self.assertIn("the oldest now is 4", r.err)
        self.assertEqual(self.versions(), [6, 5, 4])
        # The default rollback (the previous version) still works.
        r = self.m.meshctl("rollback")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("rolled back to the config of version 5", r.out)
        self.assertEqual(self.versions(), [7, 6, 5])
        self.assertIn("deleted from the store (keeping the last 3, --history)", self.m.log())


if __name__ == "__main__":
    unittest.main()
